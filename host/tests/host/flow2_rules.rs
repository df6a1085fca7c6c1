//! Flow 2 (Microsoft 365 users → Autotask contacts), rule by rule, through every real
//! part: the Graph simulator, the `graph` connector, the `m365-psa-contacts` mapper, the
//! engine with a stored profile, the `autotask` connector and the Autotask simulator.
//!
//! One test per rule of the vendor's document (`../shared/seeds/m365-to-psa-contact-sync.txt`),
//! each asserting what would break without the rule, plus the flow's own properties:
//! incremental runs, throttling, an expired delta token and an interrupted run.

use crate::common;
use crate::common::m365::{
    self, licence, merge, rules_for, upn, user, Scenario, E3, EXO, PROFILE, SPB, TENANT,
};
use crate::common::psa::{self, many_users, Psa};
use std::sync::Arc;
use syncbridge::hub::Hub;

use serde_json::{json, Value};
use std::time::Duration;
use syncbridge::control::runs::RunMode;

use syncbridge::engine::FieldRules;
use syncbridge::hub::NewConnection;
use syncbridge::secrets::Credential;
use syncbridge_sim::{FaultRule, Seed, Services, SimConfig, Simulator};

const COMPANY: i64 = 1;
/// Route keys of the simulator's request counters.
const CREATES: &str = "POST /ATServicesRest/V1.0/Companies/{id}/Contacts";
const UPDATES: &str = "PATCH /ATServicesRest/V1.0/Companies/{id}/Contacts";

/// An Autotask contact of the company.
fn psa_contact(id: i64, email: &str, extra: Value) -> Value {
    merge(
        json!({"id": id, "companyID": COMPANY, "firstName": "Old", "lastName": "Name",
               "emailAddress": email, "isActive": 1}),
        extra,
    )
}

fn autotask_options(extra: Value) -> Value {
    merge(json!({"target": "autotask"}), extra)
}

struct Env {
    sim: Simulator,
    t: common::TestHub,
}

impl Env {
    async fn start(s: Scenario) -> Env {
        let doc = json!({
            "graph": m365::graph_seed(&s),
            "autotask": {
                "apiUsers": [{"userName": "api@msp.example", "secret": "at-secret", "integrationCode": "TRACKING"}],
                "entities": {
                    "Companies": [{"id": COMPANY, "companyName": "Contoso"}],
                    "CompanyLocations": (10..=26).map(|id| json!({"id": id, "companyID": COMPANY, "name": format!("Site {id}")})).collect::<Vec<_>>(),
                    "Contacts": s.contacts
                }
            }
        });
        let sim = Simulator::start(SimConfig {
            services: Services {
                graph: true,
                autotask: true,
                ..Services::NONE
            },
            seed: Some(Seed::from_json(&doc.to_string()).unwrap()),
            ..SimConfig::all()
        })
        .await
        .unwrap();
        let t = common::hub().await;
        for p in ["graph", "m365-psa-contacts", "autotask"] {
            common::install(&t.hub, p).await;
        }
        m365::graph_connection(&t.hub, &sim, s.with_groups).await;
        let at_cred = json!({"kind": "headers", "headers": {"ApiIntegrationCode": "TRACKING", "UserName": "api@msp.example", "Secret": "at-secret"}});
        let at_config = json!({"api_user": "api@msp.example", "zone_lookup_url": format!("{}/atservicesrest", sim.base_url())});
        t.hub
            .add_connection(NewConnection {
                id: "psa".into(),
                plugin_id: "autotask".into(),
                config: at_config.to_string(),
                allowed_hosts: vec!["127.0.0.1".into(), "localhost".into()],
                allow_private_network: true,
                max_concurrent: s.psa_max_concurrent,
                credentials: [(
                    "default".to_string(),
                    Credential::from_json(&at_cred.to_string()).unwrap(),
                )]
                .into(),
            })
            .await
            .expect("connection is added");
        let env = Env { sim, t };
        env.save_profile(s.options, s.rules, s.page_size).await;
        env
    }

    async fn save_profile(&self, options: Value, rules: FieldRules, page_size: u32) {
        m365::save_profile(&self.t.hub, COMPANY, options, rules, page_size).await;
    }

    /// Edits a contact directly in Autotask (as a PSA user would).
    fn psa_edit(&self, id: i64, patch: Value) {
        let mut row = self.contact(id);
        for (k, v) in patch.as_object().unwrap() {
            row[k] = v.clone();
        }
        self.sim.autotask().insert("Contacts", row);
    }
}

impl Psa for Env {
    fn options(extra: Value) -> Value {
        autotask_options(extra)
    }

    fn update_off_scenario() -> Scenario {
        update_off_scenario()
    }

    fn seed_contact(id: i64, email: &str) -> Value {
        psa_contact(id, email, json!({}))
    }

    async fn start(s: Scenario) -> Env {
        Env::start(s).await
    }

    fn sim(&self) -> &Simulator {
        &self.sim
    }

    fn hub(&self) -> &Arc<Hub> {
        &self.t.hub
    }

    fn rows(&self) -> Vec<Value> {
        self.sim.autotask().rows("Contacts")
    }

    fn contact(&self, id: i64) -> Value {
        self.sim.autotask().get("Contacts", id).expect("contact")
    }

    fn writes(&self) -> (u64, u64) {
        let r = self.sim.requests();
        (r.count_matching(CREATES), r.count_matching(UPDATES))
    }

    fn emails_of(c: &Value) -> Vec<String> {
        c["emailAddress"]
            .as_str()
            .map(str::to_owned)
            .into_iter()
            .collect()
    }

    fn mobile_of(c: &Value) -> Option<String> {
        c["mobilePhone"].as_str().map(str::to_owned)
    }

    fn site_of(c: &Value) -> i64 {
        site(c)
    }

    fn is_inactive(c: &Value) -> bool {
        c["isActive"] == 0
    }

    fn edit_by_hand(&self, id: i64, edit: psa::HandEdit) {
        let at = self.sim.autotask();
        let done = match edit {
            psa::HandEdit::FirstName(name) => at.edit("Contacts", id, json!({"firstName": name})),
            psa::HandEdit::Deactivate => at.edit("Contacts", id, json!({"isActive": 0})),
            psa::HandEdit::Delete => at.delete("Contacts", id),
        };
        assert!(done, "contact {id} exists");
    }
}

// ------------------------------------------------------------------------------------------
// "We will only sync enabled (licensed and sign in enabled) contacts"

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_enabled_and_licensed_users_are_synced() {
    psa::only_enabled_and_licensed_users_are_synced::<Env>().await;
}

// ------------------------------------------------------------------------------------------
// Contact mapping filters, in priority order, each routing to a site/location.

/// The seed's example, one site per filter so every route is visible:
/// group Management → 21, department IT → 22, UPN domain fabrikam.example → 23,
/// Exchange Online → 24, Business Premium → 25, all licensed → 26.
async fn filter_env(catch_all: bool) -> Env {
    let mut filters = vec![
        json!({"priority": 1, "kind": "group", "group_id": "g-mgmt", "group_name": "Management", "site": {"id": "21", "name": "New Site"}}),
        json!({"priority": 2, "kind": "field", "field": "department", "value": "IT", "site": {"id": "22"}}),
        json!({"priority": 3, "kind": "upn-domain", "domain": "fabrikam.example", "site": {"id": "23"}}),
        json!({"priority": 4, "kind": "license", "sku": "EXCHANGESTANDARD", "site": {"id": "24", "name": "Site 2"}}),
        json!({"priority": 5, "kind": "license", "sku": "SPB", "site": {"id": "25", "name": "Main site"}}),
    ];
    if catch_all {
        filters.push(
            json!({"priority": 6, "kind": "all-licensed", "site": {"id": "26", "name": "Site 3"}}),
        );
    }
    // Listed out of order: priority decides, not position.
    filters.reverse();
    let mut s = Scenario::new(
        vec![
            // In Management directly, but also IT and Business Premium: the group wins.
            user(
                "u-boss",
                "boss",
                json!({"department": "IT", "assignedLicenses": [licence(SPB)]}),
            ),
            // In Executives, which is a member of Management: transitive membership counts.
            user("u-exec", "exec", json!({})),
            // Department IT (written differently) and Exchange Online: the field filter wins.
            user(
                "u-it",
                "it",
                json!({"department": " it ", "assignedLicenses": [licence(EXO)]}),
            ),
            // Another UPN domain.
            json!({"id": "u-fab", "userPrincipalName": "fab@fabrikam.example", "givenName": "Fab", "surname": "Rikam",
                   "accountEnabled": true, "assignedLicenses": [licence(E3)], "department": "Sales"}),
            user("u-exo", "exo", json!({"assignedLicenses": [licence(EXO)]})),
            user("u-spb", "spb", json!({"assignedLicenses": [licence(SPB)]})),
            // E3 in Sales: only the catch-all takes it.
            user("u-rest", "rest", json!({})),
            // In Management but unlicensed: never synced, whatever the filters.
            user("u-nolic", "nolic", json!({"assignedLicenses": []})),
        ],
        autotask_options(json!({"filters": filters})),
    );
    s.groups = vec![
        json!({"id": "g-mgmt", "displayName": "Management", "members": ["u-boss", "g-exec", "u-nolic"]}),
        json!({"id": "g-exec", "displayName": "Executives", "members": ["u-exec"]}),
    ];
    s.with_groups = true;
    let env = Env::start(s).await;
    env.run().await;
    env
}

fn site(c: &Value) -> i64 {
    c["companyLocationID"].as_i64().expect("a site")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_filter_routes_direct_and_transitive_members_to_its_site() {
    let env = filter_env(true).await;
    assert_eq!(site(&env.the(&upn("boss"))), 21, "direct member");
    assert_eq!(
        site(&env.the(&upn("exec"))),
        21,
        "member through a nested group"
    );
    env.assert_absent(&upn("nolic"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_upn_domain_and_license_filters_route_to_their_sites() {
    let env = filter_env(true).await;
    assert_eq!(site(&env.the(&upn("it"))), 22, "department = IT");
    assert_eq!(site(&env.the("fab@fabrikam.example")), 23, "UPN domain");
    assert_eq!(site(&env.the(&upn("exo"))), 24, "licence EXCHANGESTANDARD");
    assert_eq!(site(&env.the(&upn("spb"))), 25, "licence SPB");
    assert_eq!(
        site(&env.the(&upn("rest"))),
        26,
        "all licensed users: the rest"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn highest_priority_filter_wins_and_every_user_lands_once() {
    let env = filter_env(true).await;
    // boss matches group (1), field (2) and licence SPB (5): only the group's site.
    assert_eq!(site(&env.the(&upn("boss"))), 21);
    // it matches field (2) and licence EXCHANGESTANDARD (4).
    assert_eq!(site(&env.the(&upn("it"))), 22);
    env.assert_no_duplicates();
    assert_eq!(env.count(), 7, "seven licensed users, seven contacts");
    // A second run adds nothing and moves nothing.
    env.sim.reset_requests();
    let again = env.run().await;
    assert_eq!(env.writes(), (0, 0), "{again:?}");
    assert_eq!(env.count(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_filters_read_any_directory_property_they_name() {
    psa::field_filters_read_any_directory_property_they_name::<Env>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_filter_on_an_unreadable_property_is_refused_on_save() {
    psa::a_field_filter_on_an_unreadable_property_is_refused_on_save::<Env>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_in_no_filter_are_not_synced_when_there_is_no_catch_all() {
    let env = filter_env(false).await;
    env.assert_absent(&upn("rest"));
    assert_eq!(env.count(), 6);
}

// ------------------------------------------------------------------------------------------
// Matching: by UPN, or by the assigned e-mail with "Use Email".

fn upn_vs_mail_users() -> Vec<Value> {
    vec![user(
        "u1",
        "ada.l",
        json!({"mail": "ada@contoso.com", "givenName": "Ada", "surname": "Lovelace"}),
    )]
}

fn upn_vs_mail_contacts() -> Vec<Value> {
    vec![
        psa_contact(500, "ada@contoso.com", json!({})),
        psa_contact(501, &upn("ada.l"), json!({})),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_existing_contacts_by_upn_by_default() {
    let mut s = Scenario::new(upn_vs_mail_users(), autotask_options(json!({})));
    s.contacts = upn_vs_mail_contacts();
    let env = Env::start(s).await;
    let r = env.run().await;
    assert_eq!((r.planned.create, r.planned.update), (0, 1), "{r:?}");
    assert_eq!(env.contact(501)["firstName"], "Ada", "matched by UPN");
    assert_eq!(
        env.contact(500)["firstName"],
        "Old",
        "the mail address is not the key"
    );
    assert_eq!(env.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn use_email_matches_and_writes_the_assigned_email() {
    let mut s = Scenario::new(
        upn_vs_mail_users(),
        autotask_options(json!({"use_email": true})),
    );
    s.contacts = upn_vs_mail_contacts();
    let env = Env::start(s).await;
    let r = env.run().await;
    assert_eq!((r.planned.create, r.planned.update), (0, 1), "{r:?}");
    assert_eq!(env.contact(500)["firstName"], "Ada", "matched by mail");
    assert_eq!(env.contact(500)["emailAddress"], "ada@contoso.com");
    assert_eq!(
        env.contact(501)["firstName"],
        "Old",
        "the UPN is not the key"
    );

    // Without a matching contact, the new contact carries the mail address, not the UPN.
    let mut s = Scenario::new(
        upn_vs_mail_users(),
        autotask_options(json!({"use_email": true})),
    );
    s.contacts = vec![];
    let env = Env::start(s).await;
    env.run().await;
    assert_eq!(env.the("ada@contoso.com")["firstName"], "Ada");
    env.assert_absent(&upn("ada.l"));
}

// ------------------------------------------------------------------------------------------
// "Update existing contacts" on and off.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_existing_on_updates_matched_contacts() {
    let mut s = Scenario::new(
        vec![user("u1", "ann", json!({"givenName": "Ann"}))],
        autotask_options(json!({})),
    );
    s.contacts = vec![psa_contact(101, &upn("ann"), json!({}))];
    let env = Env::start(s).await;
    env.run().await;
    let c = env.contact(101);
    assert_eq!(
        (c["firstName"].as_str(), c["lastName"].as_str()),
        (Some("Ann"), Some("Sur-ann"))
    );
    assert_eq!(env.count(), 1, "matched, not created");
}

/// Off: "we will match any existing contacts to Microsoft 365 users but not update any
/// information and create any new contacts" — and never reactivate or deactivate.
fn update_off_scenario() -> Scenario {
    let mut s = Scenario::new(
        vec![
            user("u1", "matched", json!({"givenName": "Matt"})),
            user("u2", "inactive", json!({"givenName": "Ina"})),
            user("u3", "new", json!({"givenName": "Nina"})),
        ],
        autotask_options(json!({"update_existing": false})),
    );
    s.contacts = vec![
        psa_contact(101, &upn("matched"), json!({"title": "PSA title"})),
        psa_contact(102, &upn("inactive"), json!({"isActive": 0})),
    ];
    s.rules = rules_for(false);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_existing_off_matches_but_never_updates_and_still_creates() {
    let env = Env::start(update_off_scenario()).await;
    let before = (env.contact(101), env.contact(102));
    let r = env.run().await;
    assert_eq!(r.planned.create, 1, "{r:?}");
    assert_eq!(env.contact(101), before.0, "matched contact untouched");
    assert_eq!(
        env.contact(102),
        before.1,
        "inactive matched contact not reactivated"
    );
    assert_eq!(
        env.the(&upn("new"))["firstName"],
        "Nina",
        "new users created"
    );
    assert_eq!(env.count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_existing_off_never_updates_contacts_it_created_either() {
    psa::update_existing_off_never_updates_contacts_it_created_either::<Env>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_existing_off_never_deactivates() {
    psa::update_existing_off_never_deactivates::<Env>().await;
}

// ------------------------------------------------------------------------------------------
// Deactivation: deleted or unlicensed users, only matched contacts, only with update on.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_disabled_or_unlicensed_users_deactivate_their_linked_contacts() {
    psa::deleted_disabled_or_unlicensed_users_deactivate_their_linked_contacts::<Env>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_contacts_are_never_deactivated() {
    psa::unmatched_contacts_are_never_deactivated::<Env>().await;
}

// ------------------------------------------------------------------------------------------
// Reactivation.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_user_reactivates_its_inactive_matched_contact() {
    let mut s = Scenario::new(
        vec![user("u1", "back", json!({}))],
        autotask_options(json!({})),
    );
    s.contacts = vec![psa_contact(102, &upn("back"), json!({"isActive": 0}))];
    let env = Env::start(s).await;
    let r = env.run().await;
    assert_eq!(r.planned.reactivate, 1, "{r:?}");
    assert_eq!(env.contact(102)["isActive"], 1);
    assert_eq!(env.count(), 1, "reactivated, not created");
    // Deactivated by an unlicence, reactivated by a new licence.
    assert!(env
        .sim
        .graph()
        .update_user(TENANT, "u1", json!({"assignedLicenses": []})));
    env.run().await;
    assert_eq!(env.contact(102)["isActive"], 0);
    assert!(env
        .sim
        .graph()
        .update_user(TENANT, "u1", json!({"assignedLicenses": [licence(SPB)]})));
    env.run().await;
    assert_eq!(env.contact(102)["isActive"], 1);
    assert_eq!(env.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reactivated_contact_also_gets_the_microsoft_365_fields() {
    let mut s = Scenario::new(
        vec![user("u1", "back", json!({"givenName": "Bea"}))],
        autotask_options(json!({})),
    );
    s.contacts = vec![psa_contact(102, &upn("back"), json!({"isActive": 0}))];
    let env = Env::start(s).await;
    env.run().await;
    let c = env.contact(102);
    assert_eq!(c["isActive"], 1);
    assert_eq!(
        (c["firstName"].as_str(), c["title"].as_str()),
        (Some("Bea"), Some("Engineer")),
        "update existing is on: the reactivated contact is updated too"
    );
}

// ------------------------------------------------------------------------------------------
// Fields.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blank_microsoft_365_fields_never_overwrite_psa_values() {
    let mut s = Scenario::new(
        vec![user(
            "u1",
            "blank",
            json!({"givenName": "Bo", "jobTitle": null, "businessPhones": [], "mobilePhone": null}),
        )],
        autotask_options(json!({})),
    );
    s.contacts = vec![psa_contact(
        101,
        &upn("blank"),
        json!({"title": "CEO", "phone": "+44 20 1111", "mobilePhone": "+44 77 2222"}),
    )];
    let env = Env::start(s).await;
    env.run().await;
    let c = env.contact(101);
    assert_eq!(c["firstName"], "Bo", "the name is updated");
    assert_eq!(c["title"], "CEO");
    assert_eq!(c["phone"], "+44 20 1111");
    assert_eq!(c["mobilePhone"], "+44 77 2222");
    // A title set in Microsoft 365 is written; blanked again, the PSA keeps it.
    assert!(env
        .sim
        .graph()
        .update_user(TENANT, "u1", json!({"jobTitle": "Chair"})));
    env.run().await;
    assert_eq!(env.contact(101)["title"], "Chair");
    assert!(env.sim.graph().update_user(
        TENANT,
        "u1",
        json!({"jobTitle": null, "givenName": "Bob"})
    ));
    env.run().await;
    let c = env.contact(101);
    assert_eq!(
        (c["firstName"].as_str(), c["title"].as_str()),
        (Some("Bob"), Some("Chair"))
    );
}

/// Keys whose values differ between two rows, bar the simulator's own timestamps.
fn changed_keys(before: &Value, after: &Value) -> Vec<String> {
    let (b, a) = (before.as_object().unwrap(), after.as_object().unwrap());
    let mut keys: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| !k.starts_with("lastModified") && !k.starts_with("lastActivity"))
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_the_six_fields_are_synced_and_nothing_else_changes() {
    let rich = json!({
        "givenName": "Sam", "surname": "Six", "jobTitle": "CTO", "businessPhones": ["+1 555 0001"],
        "mobilePhone": "+1 555 0002", "department": "Board", "displayName": "Sam Six (CTO)",
        "companyName": "Contoso Holdings", "officeLocation": "HQ", "city": "Seattle",
        "streetAddress": "1 Main St", "postalCode": "98101", "faxNumber": "+1 555 0003"
    });
    let mut s = Scenario::new(
        vec![
            user("u1", "matched", rich.clone()),
            user("u2", "created", rich.clone()),
        ],
        autotask_options(json!({"default_site": {"id": "10"}})),
    );
    s.contacts = vec![psa_contact(
        101,
        &upn("matched"),
        json!({"companyLocationID": 10, "city": "Portland", "addressLine": "2 Side St", "zipCode": "97201",
               "faxNumber": "+1 555 9999", "note": "VIP", "alternatePhone": "+1 555 8888", "middleInitial": "Q"}),
    )];
    let env = Env::start(s).await;
    let before = env.contact(101);
    env.run().await;
    let after = env.contact(101);
    assert_eq!(
        changed_keys(&before, &after),
        ["firstName", "lastName", "mobilePhone", "phone", "title"],
        "the e-mail address is the one matched by; nothing else may change"
    );
    assert_eq!(after["title"], "CTO");
    assert_eq!(after["phone"], "+1 555 0001");
    assert_eq!(after["mobilePhone"], "+1 555 0002");
    // A created contact carries the six fields, its site and company, nothing else.
    let created = env.the(&upn("created"));
    let set: Vec<&str> = created
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, v)| {
            !v.is_null()
                && !matches!(
                    k.as_str(),
                    "id" | "createDate" | "userDefinedFields" | "isActive"
                )
                && !k.starts_with("lastModified")
                && !k.starts_with("lastActivity")
                && v.as_bool() != Some(false)
        })
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        set,
        [
            "companyID",
            "companyLocationID",
            "emailAddress",
            "firstName",
            "lastName",
            "mobilePhone",
            "phone",
            "title"
        ]
    );
    // A change of a field that is not synced writes nothing.
    assert!(env.sim.graph().update_user(
        TENANT,
        "u1",
        json!({"department": "Ops", "city": "Austin"})
    ));
    env.sim.reset_requests();
    env.run().await;
    assert_eq!(env.writes(), (0, 0));
}

// ------------------------------------------------------------------------------------------
// "We are using Microsoft 365 as the source of truth"

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_psa_edit_is_overwritten_by_the_next_microsoft_365_change() {
    let env = Env::start(Scenario::new(
        vec![user("u1", "truth", json!({"givenName": "Tess"}))],
        autotask_options(json!({})),
    ))
    .await;
    env.run().await;
    let id = env.the(&upn("truth"))["id"].as_i64().unwrap();
    env.psa_edit(
        id,
        json!({"firstName": "Edited in PSA", "lastName": "Edited"}),
    );
    // The user changes in Microsoft 365 (another field): the contact is brought back in line.
    assert!(env
        .sim
        .graph()
        .update_user(TENANT, "u1", json!({"jobTitle": "Lead"})));
    env.run().await;
    let c = env.contact(id);
    assert_eq!(
        (
            c["firstName"].as_str(),
            c["lastName"].as_str(),
            c["title"].as_str()
        ),
        (Some("Tess"), Some("Sur-truth"), Some("Lead"))
    );
}

// ------------------------------------------------------------------------------------------
// The flow: incremental runs, throttling, an expired delta token, an interrupted run.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_writes_only_the_changed_contact() {
    psa::an_incremental_run_writes_only_the_changed_contact::<Env>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_graph_and_autotask_calls_are_waited_out_without_duplicates() {
    let env = Env::start(Scenario::new(many_users(6), autotask_options(json!({})))).await;
    env.sim
        .add_fault(
            FaultRule::sequence("GET /v1.0/users/delta*", &[429, 0, 429]).with_retry_after("1"),
        )
        .unwrap();
    env.sim
        .add_fault(
            FaultRule::sequence("POST */Companies/*/Contacts", &[0, 429, 0, 0, 429])
                .with_retry_after("1"),
        )
        .unwrap();
    let r = env.run().await;
    assert_eq!((r.planned.create, r.applied), (6, 6), "{r:?}");
    let req = env.sim.requests();
    assert!(
        req.count_matching("GET /v1.0/users/delta") >= 4,
        "the throttled pulls were sent again: {req:?}"
    );
    assert_eq!(
        req.count_matching(CREATES),
        8,
        "six creates and two throttled ones"
    );
    env.assert_no_duplicates();
    assert_eq!(env.count(), 6);
    // And the next run has nothing left to do.
    env.sim.reset_requests();
    env.run().await;
    assert_eq!(env.writes(), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_delta_token_reconciles_against_links_without_reimporting() {
    let mut s = Scenario::new(many_users(6), autotask_options(json!({})));
    s.contacts = vec![psa_contact(101, &upn("user2"), json!({}))];
    let env = Env::start(s).await;
    env.run().await;
    assert_eq!(env.count(), 6);
    // Changes while the token expires: a rename, a deletion, a new user.
    assert!(env
        .sim
        .graph()
        .update_user(TENANT, "u1", json!({"givenName": "Renamed"})));
    assert!(env.sim.graph().delete_user(TENANT, "u3", true));
    env.sim
        .graph()
        .add_user(TENANT, user("u7", "user7", json!({})));
    env.sim.graph().expire_delta_tokens();
    env.sim.reset_requests();
    let r = env.run().await;
    assert_eq!(
        (
            r.planned.create,
            r.planned.update,
            r.planned.deactivate,
            r.planned.reactivate
        ),
        (1, 1, 1, 0),
        "a full pass reconciled against the links: {r:?}"
    );
    assert_eq!(
        env.writes(),
        (1, 2),
        "one create, one update, one deactivation"
    );
    assert_eq!(env.the(&upn("user1"))["firstName"], "Renamed");
    assert_eq!(env.the(&upn("user3"))["isActive"], 0);
    assert_eq!(
        env.the(&upn("user2"))["id"],
        101,
        "still the matched contact"
    );
    env.assert_no_duplicates();
    assert_eq!(env.count(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_resumes_without_duplicates() {
    let mut s = Scenario::new(many_users(9), autotask_options(json!({})));
    s.page_size = 3;
    // One request at a time, so a page is pushed as one batch of three and the kill below
    // lands between a create reaching Autotask and its batch committing (with concurrent
    // pushes every batch is one create and commits at once: recovery has nothing to find).
    s.psa_max_concurrent = Some(1);
    let env = Env::start(s).await;
    // Slow creates, so the run is surely mid-push when it is killed.
    env.sim
        .add_fault(FaultRule::latency("POST */Companies/*/Contacts", 150))
        .unwrap();
    // A short lease, so that another process can take the killed run over.
    let run = common::run_now_leased(&env.t.hub, PROFILE, RunMode::Run, Duration::from_secs(2));
    let kill = async {
        while env.sim.requests().count_matching(CREATES) < 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The fourth create is on the wire; let it land, then kill the run.
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::select! {
        r = run => panic!("the run should have been killed: {r:?}"),
        _ = kill => {}
    }
    let landed = env.count();
    assert!((4..9).contains(&landed), "killed midway: {landed} contacts");
    env.sim.clear_faults();
    env.sim.reset_requests();
    // The dead run's lease lapses and another process finishes it.
    let r = common::take_over(&env.t.hub)
        .await
        .expect("the taken-over run succeeds");
    assert!(
        r.recovered >= 1,
        "the last create was found by lookup: {r:?}"
    );
    env.assert_no_duplicates();
    assert_eq!(env.count(), 9);
    assert_eq!(
        env.writes().0 as usize,
        9 - landed,
        "only the missing contacts were created"
    );
    for i in 1..=9 {
        assert_eq!(
            env.the(&upn(&format!("user{i}")))["firstName"],
            format!("Given-user{i}")
        );
    }
}

// ------------------------------------------------------------------------------------------
// Two-sided: what people change in the PSA by hand.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_edited_in_the_psa_is_restored_on_the_next_sync() {
    psa::a_name_edited_in_the_psa_is_restored_on_the_next_sync::<Env>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_deactivated_in_the_psa_is_reactivated_while_its_user_is_active() {
    psa::a_contact_deactivated_in_the_psa_is_reactivated_while_its_user_is_active::<Env>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_deleted_in_the_psa_is_created_again() {
    psa::a_contact_deleted_in_the_psa_is_created_again::<Env>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_update_existing_on_reaches_users_that_do_not_change() {
    psa::switching_update_existing_on_reaches_users_that_do_not_change::<Env>().await;
}

// ------------------------------------------------------------------------------------------
// Honest outcomes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_items_make_the_run_partial_and_three_in_a_row_raise_an_alert() {
    use syncbridge::control::alerts;
    use syncbridge::control::runs::RunStatus;
    let env = Env::start(Scenario::new(
        vec![
            user("u1", "stuck", json!({})),
            user("u2", "fine", json!({})),
        ],
        autotask_options(json!({})),
    ))
    .await;
    // Autotask refuses one contact's creation three runs in a row (HTTP 400: invalid).
    env.sim
        .add_fault(FaultRule::sequence(
            "POST */Companies/*/Contacts",
            &[400, 0, 400, 400],
        ))
        .unwrap();
    let failing_alerts = || async {
        alerts::list(env.t.hub.store(), None, None, false)
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.code == "item_failing")
            .collect::<Vec<_>>()
    };
    for n in 1..=3 {
        let run = common::run_now(&env.t.hub, PROFILE, RunMode::Run).await;
        assert_eq!(run.status, RunStatus::Partial, "run {n}: {run:?}");
        let report = run.report.unwrap().report;
        assert_eq!(report.failed, 1, "run {n}: {report:?}");
        assert_eq!(
            failing_alerts().await.len(),
            usize::from(n == 3),
            "an alert once the item failed three runs in a row (run {n})"
        );
    }
    let alert = failing_alerts().await.remove(0);
    // Which create the PSA refused depends on the order the batch went out in.
    let stuck = syncbridge::control::quarantine::list(env.t.hub.store(), Some(PROFILE))
        .await
        .unwrap();
    assert_eq!(stuck.len(), 1, "{stuck:?}");
    assert!(
        alert
            .message
            .contains(&format!("item {} of", stuck[0].source_id)),
        "names the item: {}",
        alert.message
    );
    assert!(alert.message.contains("invalid"), "{}", alert.message);
    assert!(
        alert.message.contains("quarantine"),
        "says what to do: {}",
        alert.message
    );
    // It succeeds once the PSA accepts it: the run is no longer partial, no new alert.
    let run = common::run_now(&env.t.hub, PROFILE, RunMode::Run).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(failing_alerts().await.len(), 1);
    env.the(&upn("stuck"));
    env.the(&upn("fine"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_after_a_preview_applies_what_the_preview_showed() {
    psa::the_run_after_a_preview_applies_what_the_preview_showed::<Env>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_full_reconcile_finds_a_contact_deleted_by_hand() {
    let mut s = Scenario::new(many_users(3), autotask_options(json!({})));
    // Due on every run (the default is daily): no change feed reports a deletion.
    s.rules.full_reconcile_secs = Some(0);
    let env = Env::start(s).await;
    env.run().await;
    let id = env.id_of(&upn("user2"));
    env.edit_by_hand(id, psa::HandEdit::Delete);
    let r = env.run().await;
    assert_eq!(r.planned.create, 1, "{r:?}");
    env.the(&upn("user2"));
    // Turned off, nothing finds it until something changes.
    let mut rules = rules_for(true);
    rules.full_reconcile_secs = None;
    env.save_profile(autotask_options(json!({})), rules, 500)
        .await;
    env.run().await;
    let id = env.id_of(&upn("user3"));
    env.edit_by_hand(id, psa::HandEdit::Delete);
    let r = env.run().await;
    assert_eq!(r.planned.create, 0, "{r:?}");
}

// ---- group membership (groups/delta) --------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_added_to_the_filter_group_moves_to_its_site_on_the_next_run() {
    psa::a_user_added_to_the_filter_group_moves_to_its_site_on_the_next_run::<Env>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_removed_from_the_filter_group_moves_back_to_the_catch_all() {
    psa::a_user_removed_from_the_filter_group_moves_back_to_the_catch_all::<Env>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_through_nested_groups_moves_users_both_ways() {
    psa::membership_through_nested_groups_moves_users_both_ways::<Env>().await;
}
