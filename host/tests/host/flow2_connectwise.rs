//! Flow 2 (Microsoft 365 users → ConnectWise contacts), rule by rule, through every real
//! part: the Graph simulator, the `graph` connector, the `m365-psa-contacts` mapper (target
//! `connectwise`), the engine with a stored profile, the `connectwise` connector and the
//! ConnectWise simulator.
//!
//! One test per rule of the vendor's document (`../shared/seeds/m365-to-psa-contact-sync.txt`),
//! each asserting what would break without the rule on the simulator's contact rows, plus the
//! flow's own properties: incremental runs, throttling and interrupted runs.

use crate::common;
use crate::common::m365::{
    self, licence, merge, rules_for, upn, user, Scenario, E3, EXO, PROFILE, SPB, TENANT,
};
use crate::common::psa::{self, many_users, Psa};
use std::sync::Arc;
use syncbridge::hub::Hub;

use crate::common::run_profile;
use serde_json::{json, Value};
use std::time::Duration;
use syncbridge::control::runs::RunMode;

use syncbridge::engine::FieldRules;
use syncbridge_sim::{FaultRule, Seed, Services, SimConfig, Simulator};

const CW_PRIVATE_KEY: &str = "cw-Priv4te-k3y";
const CW_CLIENT_ID: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
/// The ConnectWise company the profile writes to.
const COMPANY: i64 = 10;
const CONTACTS: &str = "company/contacts";
/// Route keys of the simulator's request counters (and globs of its fault rules).
const CREATES: &str = "POST /v4_6_release/apis/3.0/company/contacts";
const UPDATES: &str = "PATCH /v4_6_release/apis/3.0/company/contacts/";
/// Contact types of the ConnectWise simulator.
const END_USER: i64 = 1;
const VENDOR: i64 = 5;
const IT: i64 = 7;
const MANAGEMENT: i64 = 8;
const MAIL_ONLY: i64 = 9;

/// A communication item of the simulator's types (Email 1, Direct 2, Fax 3, Cell 4).
fn comm(type_id: i64, value: &str) -> Value {
    let name = match type_id {
        1 => "Email",
        2 => "Direct",
        3 => "Fax",
        _ => "Cell",
    };
    json!({"type": {"id": type_id, "name": name}, "value": value, "defaultFlag": true})
}

/// A ConnectWise contact of the company at site 10 with an e-mail address and type End User.
fn psa_contact(id: i64, email: &str, extra: Value) -> Value {
    merge(
        json!({"id": id, "firstName": "Old", "lastName": "Name",
               "company": {"id": COMPANY, "identifier": "Contoso", "name": "Contoso Ltd"},
               "site": {"id": 10, "name": "Main"},
               "types": [{"id": END_USER, "description": "End User"}],
               "communicationItems": [comm(1, email)],
               "inactiveFlag": false}),
        extra,
    )
}

/// Mapper options for ConnectWise with the integration-level default contact type End User.
fn cw_options(extra: Value) -> Value {
    merge(
        json!({"target": "connectwise",
               "default_contact_type": {"id": END_USER.to_string(), "name": "End User"}}),
        extra,
    )
}

struct Env {
    sim: Simulator,
    t: common::TestHub,
}

impl Env {
    async fn start(s: Scenario) -> Env {
        let doc = json!({
            "graph": m365::graph_seed(&s),
            "connectwise": {
                "credentials": [{"companyId": "msp", "publicKey": "pubkey", "privateKey": CW_PRIVATE_KEY}],
                "clientIds": [CW_CLIENT_ID],
                "contactTypes": [
                    {"id": END_USER, "description": "End User", "defaultFlag": true},
                    {"id": VENDOR, "description": "Vendor"},
                    {"id": IT, "description": "IT"},
                    {"id": MANAGEMENT, "description": "Management"},
                    {"id": MAIL_ONLY, "description": "Mail only"}
                ],
                "companies": [{"id": COMPANY, "identifier": "Contoso", "name": "Contoso Ltd",
                               "sites": (std::iter::once(10).chain(21..=26))
                                   .map(|id| json!({"id": id, "name": format!("Site {id}")}))
                                   .collect::<Vec<_>>()}],
                "contacts": s.contacts
            }
        });
        let sim = Simulator::start(SimConfig {
            services: Services {
                graph: true,
                connectwise: true,
                ..Services::NONE
            },
            seed: Some(Seed::from_json(&doc.to_string()).unwrap()),
            ..SimConfig::all()
        })
        .await
        .unwrap();
        let t = common::hub().await;
        for p in ["graph", "m365-psa-contacts", "connectwise"] {
            common::install(&t.hub, p).await;
        }
        m365::graph_connection(&t.hub, &sim, s.with_groups).await;
        let cw_cred =
            json!({"kind": "basic", "username": "msp+pubkey", "password": CW_PRIVATE_KEY});
        common::loopback_connection(
            &t.hub,
            "psa",
            "connectwise",
            &json!({"base_url": sim.connectwise_url(), "client_id": CW_CLIENT_ID}).to_string(),
            &[("default", &cw_cred.to_string())],
        )
        .await;
        let env = Env { sim, t };
        env.save_profile(s.options, s.rules, s.page_size).await;
        env
    }

    async fn save_profile(&self, options: Value, rules: FieldRules, page_size: u32) {
        m365::save_profile(&self.t.hub, COMPANY, options, rules, page_size).await;
    }

    /// Edits a contact directly in ConnectWise (as a PSA user would).
    fn psa_edit(&self, id: i64, patch: Value) {
        let row = merge(self.contact(id), patch);
        self.sim.connectwise().insert(CONTACTS, row);
    }
}

fn items(c: &Value) -> Vec<Value> {
    c["communicationItems"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The value of the contact's communication item of this type name (`Direct`, `Cell`, …).
fn comm_value(c: &Value, type_name: &str) -> Option<String> {
    let of: Vec<Value> = items(c)
        .into_iter()
        .filter(|i| i["type"]["name"] == type_name)
        .collect();
    assert!(of.len() <= 1, "one {type_name} item: {c:#}");
    of.first()
        .and_then(|i| i["value"].as_str())
        .map(str::to_owned)
}

fn inactive(c: &Value) -> bool {
    c["inactiveFlag"].as_bool().expect("inactiveFlag")
}

fn site(c: &Value) -> i64 {
    c["site"]["id"].as_i64().expect("a site")
}

/// The contact type ids, sorted.
fn types(c: &Value) -> Vec<i64> {
    let mut t: Vec<i64> = c["types"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["id"].as_i64())
        .collect();
    t.sort();
    t
}

impl Psa for Env {
    fn options(extra: Value) -> Value {
        cw_options(extra)
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
        self.sim.connectwise().rows(CONTACTS)
    }

    fn contact(&self, id: i64) -> Value {
        self.sim.connectwise().get(CONTACTS, id).expect("contact")
    }

    fn writes(&self) -> (u64, u64) {
        let r = self.sim.requests();
        (r.count_matching(CREATES), r.count_matching(UPDATES))
    }

    /// The values of its Email communication items.
    fn emails_of(c: &Value) -> Vec<String> {
        items(c)
            .iter()
            .filter(|i| i["communicationType"] == "Email")
            .filter_map(|i| i["value"].as_str().map(str::to_owned))
            .collect()
    }

    fn mobile_of(c: &Value) -> Option<String> {
        comm_value(c, "Cell")
    }

    fn site_of(c: &Value) -> i64 {
        site(c)
    }

    fn is_inactive(c: &Value) -> bool {
        inactive(c)
    }

    fn edit_by_hand(&self, id: i64, edit: psa::HandEdit) {
        let cw = self.sim.connectwise();
        let done = match edit {
            psa::HandEdit::FirstName(name) => cw.edit(CONTACTS, id, json!({"firstName": name})),
            psa::HandEdit::Deactivate => cw.edit(CONTACTS, id, json!({"inactiveFlag": true})),
            psa::HandEdit::Delete => cw.delete(CONTACTS, id),
        };
        assert!(done, "contact {id} exists");
    }
}

// ------------------------------------------------------------------------------------------
// "We will only sync enabled (licensed and sign in enabled) contacts"

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_enabled_and_licensed_users_are_synced() {
    let env = psa::only_enabled_and_licensed_users_are_synced::<Env>().await;
    assert_eq!(env.the(&upn("active"))["company"]["id"], COMPANY);
}

// ------------------------------------------------------------------------------------------
// Contact mapping filters, in priority order, each routing to a site and a contact type.

/// The seed's example, one site per filter so every route is visible:
/// group Management → 21 (type Management), department IT → 22 (type IT), UPN domain
/// fabrikam.example → 23, Exchange Online → 24 (type Mail only), Business Premium → 25,
/// all licensed → 26; filters without a type get the integration default End User.
async fn filter_env(catch_all: bool) -> Env {
    let mut filters = vec![
        json!({"priority": 1, "kind": "group", "group_id": "g-mgmt", "group_name": "Management",
               "site": {"id": "21", "name": "New Site"}, "contact_type": {"id": MANAGEMENT.to_string(), "name": "Management"}}),
        json!({"priority": 2, "kind": "field", "field": "department", "value": "IT",
               "site": {"id": "22"}, "contact_type": {"id": IT.to_string(), "name": "IT"}}),
        json!({"priority": 3, "kind": "upn-domain", "domain": "fabrikam.example", "site": {"id": "23"}}),
        json!({"priority": 4, "kind": "license", "sku": "EXCHANGESTANDARD", "site": {"id": "24", "name": "Site 2"},
               "contact_type": {"id": MAIL_ONLY.to_string()}}),
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
        cw_options(json!({"filters": filters})),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_filter_routes_direct_and_transitive_members_to_its_site_and_type() {
    let env = filter_env(true).await;
    let boss = env.the(&upn("boss"));
    assert_eq!(
        (site(&boss), types(&boss)),
        (21, vec![MANAGEMENT]),
        "direct member"
    );
    let exec = env.the(&upn("exec"));
    assert_eq!(
        (site(&exec), types(&exec)),
        (21, vec![MANAGEMENT]),
        "member through a nested group"
    );
    env.assert_absent(&upn("nolic"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_upn_domain_and_license_filters_route_to_their_sites_and_types() {
    let env = filter_env(true).await;
    let route = |email: &str| {
        let c = env.the(email);
        (site(&c), types(&c))
    };
    assert_eq!(route(&upn("it")), (22, vec![IT]), "department = IT");
    assert_eq!(
        route("fab@fabrikam.example"),
        (23, vec![END_USER]),
        "UPN domain; no filter type: the default"
    );
    assert_eq!(
        route(&upn("exo")),
        (24, vec![MAIL_ONLY]),
        "licence EXCHANGESTANDARD"
    );
    assert_eq!(route(&upn("spb")), (25, vec![END_USER]), "licence SPB");
    assert_eq!(
        route(&upn("rest")),
        (26, vec![END_USER]),
        "all licensed users: the rest"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn highest_priority_filter_wins_and_every_user_lands_once() {
    let env = filter_env(true).await;
    // boss matches group (1), field (2) and licence SPB (5): only the group's site and type.
    let boss = env.the(&upn("boss"));
    assert_eq!((site(&boss), types(&boss)), (21, vec![MANAGEMENT]));
    // it matches field (2) and licence EXCHANGESTANDARD (4).
    let it = env.the(&upn("it"));
    assert_eq!((site(&it), types(&it)), (22, vec![IT]));
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
// "You can specify the default contact type … also at a per filter/site level."
// "NOTE: Contact Types are only added and not removed."

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_contact_type_applies_without_filters_and_a_filter_type_overrides_it() {
    // No filters: every licensed user gets the integration default at the default site.
    let env = Env::start(Scenario::new(
        vec![user("u1", "plain", json!({}))],
        cw_options(json!({"default_site": {"id": "10", "name": "Main"}})),
    ))
    .await;
    env.run().await;
    let c = env.the(&upn("plain"));
    assert_eq!((site(&c), types(&c)), (10, vec![END_USER]));

    // A filter with its own type overrides the default; one without keeps the default.
    let env = Env::start(Scenario::new(
        vec![
            user("u1", "vendor", json!({"department": "Purchasing"})),
            user("u2", "other", json!({})),
        ],
        cw_options(json!({"filters": [
            {"priority": 1, "kind": "field", "field": "department", "value": "purchasing",
             "site": {"id": "22"}, "contact_type": {"id": VENDOR.to_string(), "name": "Vendor"}},
            {"priority": 2, "kind": "all-licensed", "site": {"id": "26"}}
        ]})),
    ))
    .await;
    env.run().await;
    let v = env.the(&upn("vendor"));
    assert_eq!(
        (site(&v), types(&v)),
        (22, vec![VENDOR]),
        "the filter's type"
    );
    let o = env.the(&upn("other"));
    assert_eq!((site(&o), types(&o)), (26, vec![END_USER]), "the default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_types_are_only_added_never_removed() {
    let mut s = Scenario::new(
        vec![user("u1", "typed", json!({"department": "IT"}))],
        cw_options(json!({"filters": [
            {"priority": 1, "kind": "field", "field": "department", "value": "IT",
             "site": {"id": "10"}, "contact_type": {"id": IT.to_string(), "name": "IT"}},
            {"priority": 2, "kind": "all-licensed", "site": {"id": "10"}}
        ]})),
    );
    s.contacts = vec![psa_contact(
        101,
        &upn("typed"),
        json!({"types": [{"id": VENDOR, "description": "Vendor"}]}),
    )];
    let env = Env::start(s).await;
    env.run().await;
    assert_eq!(
        types(&env.contact(101)),
        vec![VENDOR, IT],
        "the filter's type is added, the PSA's type kept"
    );
    // The user moves to the catch-all (default type): End User is added, IT stays.
    assert!(env
        .sim
        .graph()
        .update_user(TENANT, "u1", json!({"department": "Sales"})));
    env.run().await;
    assert_eq!(types(&env.contact(101)), vec![END_USER, VENDOR, IT]);
    assert_eq!(env.count(), 1);
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
    let mut s = Scenario::new(upn_vs_mail_users(), cw_options(json!({})));
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
    let mut s = Scenario::new(upn_vs_mail_users(), cw_options(json!({"use_email": true})));
    s.contacts = upn_vs_mail_contacts();
    let env = Env::start(s).await;
    let r = env.run().await;
    assert_eq!((r.planned.create, r.planned.update), (0, 1), "{r:?}");
    let c = env.contact(500);
    assert_eq!(c["firstName"], "Ada", "matched by mail");
    assert_eq!(comm_value(&c, "Email").as_deref(), Some("ada@contoso.com"));
    assert_eq!(
        env.contact(501)["firstName"],
        "Old",
        "the UPN is not the key"
    );

    // Without a matching contact, the new contact carries the mail address, not the UPN.
    let env = Env::start(Scenario::new(
        upn_vs_mail_users(),
        cw_options(json!({"use_email": true})),
    ))
    .await;
    env.run().await;
    assert_eq!(env.the("ada@contoso.com")["firstName"], "Ada");
    env.assert_absent(&upn("ada.l"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matching_by_address_ignores_case() {
    let mut s = Scenario::new(
        vec![user("u1", "casey", json!({"givenName": "Casey"}))],
        cw_options(json!({})),
    );
    s.contacts = vec![psa_contact(
        101,
        &upn("casey").to_ascii_uppercase(),
        json!({}),
    )];
    let env = Env::start(s).await;
    let r = env.run().await;
    assert_eq!((r.planned.create, r.planned.update), (0, 1), "{r:?}");
    assert_eq!(env.contact(101)["firstName"], "Casey");
    assert_eq!(env.count(), 1, "matched, not duplicated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_address_rewrites_the_email_item_in_place() {
    let env = Env::start(Scenario::new(
        vec![user(
            "u1",
            "old.name",
            json!({"mail": "old.name@contoso.com"}),
        )],
        cw_options(json!({"use_email": true})),
    ))
    .await;
    env.run().await;
    let before = env.the("old.name@contoso.com");
    assert!(env
        .sim
        .graph()
        .update_user(TENANT, "u1", json!({"mail": "new.name@contoso.com"})));
    env.run().await;
    let after = env.the("new.name@contoso.com");
    assert_eq!(after["id"], before["id"], "the same contact");
    let emails: Vec<Value> = items(&after)
        .into_iter()
        .filter(|i| i["communicationType"] == "Email")
        .collect();
    assert_eq!(emails.len(), 1, "replaced, not added: {emails:#?}");
    let old_item = items(&before)
        .into_iter()
        .find(|i| i["communicationType"] == "Email")
        .unwrap();
    assert_eq!(emails[0]["id"], old_item["id"], "changed in place");
    env.assert_absent("old.name@contoso.com");
    assert_eq!(env.count(), 1);
}

// ------------------------------------------------------------------------------------------
// "Update existing contacts" on and off.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_existing_on_updates_matched_contacts() {
    let mut s = Scenario::new(
        vec![user("u1", "ann", json!({"givenName": "Ann"}))],
        cw_options(json!({})),
    );
    s.contacts = vec![psa_contact(101, &upn("ann"), json!({}))];
    let env = Env::start(s).await;
    env.run().await;
    let c = env.contact(101);
    assert_eq!(
        (c["firstName"].as_str(), c["lastName"].as_str()),
        (Some("Ann"), Some("Sur-ann"))
    );
    assert_eq!(comm_value(&c, "Direct").as_deref(), Some("+1 555 0100"));
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
        cw_options(json!({"update_existing": false})),
    );
    s.contacts = vec![
        psa_contact(
            101,
            &upn("matched"),
            json!({"title": "PSA title", "types": [{"id": VENDOR}]}),
        ),
        psa_contact(102, &upn("inactive"), json!({"inactiveFlag": true})),
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
    assert_eq!(
        env.contact(101),
        before.0,
        "matched contact untouched (no name, no type added)"
    );
    assert_eq!(
        env.contact(102),
        before.1,
        "inactive matched contact not reactivated"
    );
    let new = env.the(&upn("new"));
    assert_eq!(new["firstName"], "Nina", "new users created");
    assert_eq!(types(&new), vec![END_USER]);
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
        vec![user("u1", "back", json!({"givenName": "Bea"}))],
        cw_options(json!({})),
    );
    s.contacts = vec![psa_contact(
        102,
        &upn("back"),
        json!({"inactiveFlag": true}),
    )];
    let env = Env::start(s).await;
    let r = env.run().await;
    assert_eq!(r.planned.reactivate, 1, "{r:?}");
    let c = env.contact(102);
    assert!(!inactive(&c));
    assert_eq!(
        (c["firstName"].as_str(), c["title"].as_str()),
        (Some("Bea"), Some("Engineer")),
        "update existing is on: the reactivated contact is updated too"
    );
    assert_eq!(env.count(), 1, "reactivated, not created");
    // Deactivated by an unlicence, reactivated by a new licence.
    assert!(env
        .sim
        .graph()
        .update_user(TENANT, "u1", json!({"assignedLicenses": []})));
    env.run().await;
    assert!(inactive(&env.contact(102)));
    assert!(env
        .sim
        .graph()
        .update_user(TENANT, "u1", json!({"assignedLicenses": [licence(SPB)]})));
    env.run().await;
    assert!(!inactive(&env.contact(102)));
    assert_eq!(env.count(), 1);
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
        cw_options(json!({})),
    );
    s.contacts = vec![psa_contact(
        101,
        &upn("blank"),
        json!({"title": "CEO", "communicationItems": [
            comm(1, &upn("blank")), comm(2, "+44 20 1111"), comm(4, "+44 77 2222")]}),
    )];
    let env = Env::start(s).await;
    env.run().await;
    let c = env.contact(101);
    assert_eq!(c["firstName"], "Bo", "the name is updated");
    assert_eq!(c["title"], "CEO");
    assert_eq!(comm_value(&c, "Direct").as_deref(), Some("+44 20 1111"));
    assert_eq!(comm_value(&c, "Cell").as_deref(), Some("+44 77 2222"));
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
    assert_eq!(comm_value(&c, "Direct").as_deref(), Some("+44 20 1111"));
}

/// Keys whose values differ between two rows, bar the simulator's own `_info`.
fn changed_keys(before: &Value, after: &Value) -> Vec<String> {
    let (b, a) = (before.as_object().unwrap(), after.as_object().unwrap());
    let mut keys: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| *k != "_info")
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
        cw_options(json!({"default_site": {"id": "10"}})),
    );
    s.contacts = vec![psa_contact(
        101,
        &upn("matched"),
        json!({"addressLine1": "2 Side St", "city": "Portland", "zip": "97201", "nickName": "Q",
        "department": {"id": 3, "name": "Ops"}, "relationship": {"id": 2, "name": "VIP"},
        "communicationItems": [
            comm(1, &upn("matched")),
            comm(3, "+1 555 9999"),
            comm(2, "+1 555 8888")
        ]}),
    )];
    let env = Env::start(s).await;
    let before = env.contact(101);
    env.run().await;
    let after = env.contact(101);
    assert_eq!(
        changed_keys(&before, &after),
        ["communicationItems", "firstName", "lastName", "title"],
        "the e-mail address is the one matched by; nothing else may change"
    );
    assert_eq!(after["title"], "CTO");
    assert_eq!(comm_value(&after, "Direct").as_deref(), Some("+1 555 0001"));
    assert_eq!(comm_value(&after, "Cell").as_deref(), Some("+1 555 0002"));
    assert_eq!(
        comm_value(&after, "Fax").as_deref(),
        Some("+1 555 9999"),
        "a communication item that is not synced is kept"
    );
    assert_eq!(comm_value(&after, "Email"), Some(upn("matched")));
    let id_of = |c: &Value, t: &str| {
        items(c)
            .into_iter()
            .find(|i| i["type"]["name"] == t)
            .map(|i| i["id"].clone())
    };
    for t in ["Email", "Direct", "Fax"] {
        assert_eq!(
            id_of(&before, t),
            id_of(&after, t),
            "the {t} item is changed in place"
        );
    }
    // A created contact carries the six fields, its company, site and type, nothing else.
    let created = env.the(&upn("created"));
    let mut set: Vec<&str> = created
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, v)| !v.is_null() && !matches!(k.as_str(), "id" | "_info" | "inactiveFlag"))
        .map(|(k, _)| k.as_str())
        .collect();
    set.sort();
    assert_eq!(
        set,
        [
            "communicationItems",
            "company",
            "firstName",
            "lastName",
            "site",
            "title",
            "types"
        ]
    );
    let mut kinds: Vec<(String, String)> = items(&created)
        .iter()
        .map(|i| {
            (
                i["type"]["name"].as_str().unwrap_or_default().to_owned(),
                i["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("Cell".to_owned(), "+1 555 0002".to_owned()),
            ("Direct".to_owned(), "+1 555 0001".to_owned()),
            ("Email".to_owned(), upn("created")),
        ],
        "no fax, no other item"
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
        cw_options(json!({})),
    ))
    .await;
    env.run().await;
    let id = env.the(&upn("truth"))["id"].as_i64().unwrap();
    env.psa_edit(
        id,
        json!({"firstName": "Edited in PSA", "lastName": "Edited"}),
    );
    assert_eq!(env.contact(id)["firstName"], "Edited in PSA");
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
    assert_eq!(env.count(), 1);
}

// ------------------------------------------------------------------------------------------
// The flow: incremental runs, throttling, an interrupted run.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_writes_only_the_changed_contact() {
    psa::an_incremental_run_writes_only_the_changed_contact::<Env>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_connectwise_create_is_waited_out_without_duplicates() {
    let env = Env::start(Scenario::new(many_users(6), cw_options(json!({})))).await;
    // The third create is answered 429 with Retry-After: 0.2.
    env.sim
        .add_fault(
            FaultRule::sequence(&format!("{CREATES}*"), &[0, 0, 429]).with_retry_after("0.2"),
        )
        .unwrap();
    let started = std::time::Instant::now();
    let r = env.run().await;
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "Retry-After was honoured"
    );
    assert_eq!((r.planned.create, r.applied), (6, 6), "{r:?}");
    assert_eq!(
        env.sim.requests().count_matching(CREATES),
        7,
        "six creates and the throttled one"
    );
    env.assert_no_duplicates();
    assert_eq!(env.count(), 6);
    // And the next run has nothing left to do.
    env.sim.reset_requests();
    env.run().await;
    assert_eq!(env.writes(), (0, 0));
}

/// Nine users; four creates succeed, then ConnectWise answers every create with 500, so the
/// first run fails midway. The faults cleared (and with `full_pass` the delta token expired),
/// the next run completes the sync: every user once, only the missing contacts created.
async fn failing_midway_then_clean(full_pass: bool) {
    let mut s = Scenario::new(many_users(9), cw_options(json!({})));
    s.page_size = 3;
    let env = Env::start(s).await;
    let mut statuses = vec![0u16; 4];
    statuses.extend([500u16; 200]);
    env.sim
        .add_fault(FaultRule::sequence(&format!("{CREATES}*"), &statuses))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2)).await;
    let first = run_profile(&env.t.hub, PROFILE, false).await;
    match &first {
        Ok(r) => assert!(r.failed > 0, "the creates after the fourth failed: {r:?}"),
        Err(e) => eprintln!("the first run failed: {e}"),
    }
    let landed = env.count();
    assert_eq!(landed, 4, "failed midway: {first:?}");
    env.sim.clear_faults();
    if full_pass {
        env.sim.graph().expire_delta_tokens();
    }
    env.sim.reset_requests();
    let r = env.run().await;
    env.assert_no_duplicates();
    assert_eq!(env.count(), 9, "{r:?}");
    assert_eq!(
        env.writes().0 as usize,
        9 - landed,
        "only the missing contacts were created: {r:?}"
    );
    for i in 1..=9 {
        assert_eq!(
            env.the(&upn(&format!("user{i}")))["firstName"],
            format!("Given-user{i}")
        );
    }
    // And the run after that has nothing left to do.
    env.sim.reset_requests();
    env.run().await;
    assert_eq!(env.writes(), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_failing_midway_then_a_clean_run_leaves_no_duplicates() {
    failing_midway_then_clean(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_failing_midway_then_a_full_pass_leaves_no_duplicates() {
    failing_midway_then_clean(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_resumes_without_duplicates() {
    let mut s = Scenario::new(many_users(9), cw_options(json!({})));
    // Pages of nine pushed as three concurrent batches of three: the kill lands
    // while creates have reached ConnectWise but no batch has committed.
    s.page_size = 9;
    let env = Env::start(s).await;
    // Slow creates, so the run is surely mid-push when it is killed.
    env.sim
        .add_fault(FaultRule::latency(&format!("{CREATES}*"), 150))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_after_a_preview_applies_what_the_preview_showed() {
    psa::the_run_after_a_preview_applies_what_the_preview_showed::<Env>().await;
}

/// Reordering filters and changing the default contact type reach users that do not
/// change: saving the profile's options re-evaluates every user on the next run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_filters_and_a_new_default_type_reach_users_that_do_not_change() {
    use syncbridge::control::profiles::{self, ProfileChange};
    use syncbridge::control::Actor;
    let filters = |it_first: bool| {
        let (it, all) = if it_first { (1, 2) } else { (2, 1) };
        json!([
            {"priority": it, "kind": "field", "field": "department", "value": "IT", "site": {"id": "22"}},
            {"priority": all, "kind": "all-licensed", "site": {"id": "26"}}
        ])
    };
    let env = Env::start(Scenario::new(
        vec![user("u1", "tech", json!({"department": "IT"}))],
        cw_options(json!({"filters": filters(true)})),
    ))
    .await;
    env.run().await;
    let c = env.the(&upn("tech"));
    assert_eq!((site(&c), types(&c)), (22, vec![END_USER]));
    let hub = env.hub().clone();
    let save = |options: Value| {
        let hub = hub.clone();
        async move {
            let change = ProfileChange {
                mapper_options: Some(options.to_string()),
                ..ProfileChange::default()
            };
            profiles::update(&hub, Actor::Msp, m365::PROFILE, change, false)
                .await
                .unwrap();
        }
    };
    save(cw_options(json!({"filters": filters(false)}))).await;
    let r = env.run().await;
    assert_eq!(
        site(&env.the(&upn("tech"))),
        26,
        "the catch-all comes first now: {r:?}"
    );
    save(cw_options(json!({
        "filters": filters(false),
        "default_contact_type": {"id": VENDOR.to_string(), "name": "Vendor"}
    })))
    .await;
    let r = env.run().await;
    assert!(
        types(&env.the(&upn("tech"))).contains(&VENDOR),
        "the new default type is added: {r:?}"
    );
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
