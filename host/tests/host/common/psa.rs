//! Flow-2 scenarios written once for every PSA: each suite (`flow2_rules`
//! for Autotask, `flow2_connectwise`) implements [`Psa`] over its simulator
//! and calls these, then adds what only its PSA has (sites, contact types,
//! communication items).

use super::m365::{self, rules_for, upn, user, Scenario, PROFILE, TENANT};
use serde_json::{json, Value};
use std::sync::Arc;
use syncbridge::control::profiles::{self, ProfileChange};
use syncbridge::control::runs::RunMode;
use syncbridge::control::Actor;
use syncbridge::engine::RunReport;
use syncbridge::hub::Hub;
use syncbridge_sim::Simulator;

/// A change a person makes in the PSA by hand.
#[derive(Debug, Clone, Copy)]
pub enum HandEdit {
    FirstName(&'static str),
    Deactivate,
    Delete,
}

/// A PSA behind the flow-2 profile, as the shared scenarios see it.
#[allow(async_fn_in_trait)]
pub trait Psa: Sized {
    /// Mapper options naming this PSA (with its defaults), `extra` set over them.
    fn options(extra: Value) -> Value;
    /// The "update existing contacts" off scenario: users `matched` (contact 101, with
    /// PSA-only data), `inactive` (contact 102, inactive) and `new` (no contact).
    fn update_off_scenario() -> Scenario;
    /// A contact of the profile's company in the PSA's wire shape.
    fn seed_contact(id: i64, email: &str) -> Value;
    /// The hub, the simulators and the profile of scenario `s`.
    async fn start(s: Scenario) -> Self;
    fn sim(&self) -> &Simulator;
    fn hub(&self) -> &Arc<Hub>;
    /// Every contact row of the PSA simulator.
    fn rows(&self) -> Vec<Value>;
    fn contact(&self, id: i64) -> Value;
    /// Creates and updates the PSA simulator received since the last reset.
    fn writes(&self) -> (u64, u64);
    /// Every e-mail address the contact holds.
    fn emails_of(c: &Value) -> Vec<String>;
    fn mobile_of(c: &Value) -> Option<String>;
    fn is_inactive(c: &Value) -> bool;
    /// The site (Autotask location) a contact is routed to.
    fn site_of(c: &Value) -> i64;
    /// Changes contact `id` as a person in the PSA would (its modification
    /// stamp moves, so the PSA's change feed reports it).
    fn edit_by_hand(&self, id: i64, edit: HandEdit);

    /// The id of the one contact with this e-mail address.
    fn id_of(&self, email: &str) -> i64 {
        self.the(email)["id"].as_i64().expect("numeric contact id")
    }

    /// One run; asserts it completed and failed nothing.
    async fn run(&self) -> RunReport {
        m365::run_clean(self.hub()).await
    }

    /// The contacts with this e-mail address (case-insensitive).
    fn with_email(&self, email: &str) -> Vec<Value> {
        self.rows()
            .into_iter()
            .filter(|c| {
                Self::emails_of(c)
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case(email))
            })
            .collect()
    }

    /// The one contact with this e-mail address.
    fn the(&self, email: &str) -> Value {
        let found = self.with_email(email);
        assert_eq!(
            found.len(),
            1,
            "exactly one contact with {email}: {found:#?}"
        );
        found.into_iter().next().unwrap()
    }

    fn count(&self) -> usize {
        self.rows().len()
    }

    /// No contact holds this address, active or not.
    fn assert_absent(&self, email: &str) {
        let found = self.with_email(email);
        assert!(found.is_empty(), "{email} must not be synced: {found:#?}");
    }

    /// Every address in the PSA appears once (no duplicates).
    fn assert_no_duplicates(&self) {
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for c in self.rows() {
            for e in Self::emails_of(&c) {
                *seen.entry(e.to_ascii_lowercase()).or_default() += 1;
            }
        }
        let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(dups.is_empty(), "duplicated contacts: {dups:?}");
    }
}

/// "We will only sync enabled (licensed and sign in enabled) contacts". Answers the
/// environment so the suite can check what its PSA adds to the one contact.
pub async fn only_enabled_and_licensed_users_are_synced<P: Psa>() -> P {
    let env = P::start(Scenario::new(
        vec![
            user("u1", "active", json!({})),
            user("u2", "blocked", json!({"accountEnabled": false})),
            user("u3", "unlicensed", json!({"assignedLicenses": []})),
            user(
                "u4",
                "neither",
                json!({"accountEnabled": false, "assignedLicenses": []}),
            ),
        ],
        P::options(json!({})),
    ))
    .await;
    let r = env.run().await;
    assert_eq!(r.planned.create, 1, "{r:?}");
    assert!(!P::is_inactive(&env.the(&upn("active"))));
    env.assert_absent(&upn("blocked"));
    env.assert_absent(&upn("unlicensed"));
    env.assert_absent(&upn("neither"));
    assert_eq!(env.count(), 1);
    env
}

/// "Update existing contacts" off: a contact the sync created is an existing contact on
/// the next run, so no Microsoft 365 change reaches any linked contact.
pub async fn update_existing_off_never_updates_contacts_it_created_either<P: Psa>() {
    let env = P::start(P::update_off_scenario()).await;
    env.run().await;
    let created = env.the(&upn("new"));
    for id in ["u1", "u2", "u3"] {
        assert!(env.sim().graph().update_user(
            TENANT,
            id,
            json!({"givenName": "Changed", "jobTitle": "Changed"})
        ));
    }
    env.sim().reset_requests();
    let r = env.run().await;
    assert_eq!(env.writes(), (0, 0), "nothing is written: {r:?}");
    assert_eq!(
        env.the(&upn("new")),
        created,
        "a contact created by the sync is an existing contact on the next run"
    );
    assert_eq!(env.contact(101)["firstName"], "Old");
}

/// "Update existing contacts" off never deactivates, not even after a full pass.
pub async fn update_existing_off_never_deactivates<P: Psa>() {
    let env = P::start(P::update_off_scenario()).await;
    env.run().await;
    assert!(env.sim().graph().delete_user(TENANT, "u1", true));
    assert!(env
        .sim()
        .graph()
        .update_user(TENANT, "u3", json!({"assignedLicenses": []})));
    let r = env.run().await;
    assert_eq!(r.planned.deactivate, 0, "{r:?}");
    assert!(!P::is_inactive(&env.contact(101)));
    assert!(!P::is_inactive(&env.the(&upn("new"))));
    // A full pass (expired delta token) does not deactivate the deleted user's contact either.
    env.sim().graph().expire_delta_tokens();
    let r = env.run().await;
    assert_eq!(r.planned.deactivate, 0, "{r:?}");
    assert!(!P::is_inactive(&env.contact(101)));
}

/// Deleted, unlicensed and sign-in-blocked users deactivate their linked contacts
/// (created or matched), which are never deleted.
pub async fn deleted_disabled_or_unlicensed_users_deactivate_their_linked_contacts<P: Psa>() {
    let mut s = Scenario::new(
        vec![
            user("u1", "created", json!({})),
            user("u2", "matched", json!({})),
            user("u3", "blocked", json!({})),
            user("u4", "stays", json!({})),
        ],
        P::options(json!({})),
    );
    s.contacts = vec![P::seed_contact(101, &upn("matched"))];
    let env = P::start(s).await;
    env.run().await;
    assert!(env.sim().graph().delete_user(TENANT, "u1", true));
    assert!(env
        .sim()
        .graph()
        .update_user(TENANT, "u2", json!({"assignedLicenses": []})));
    assert!(env
        .sim()
        .graph()
        .update_user(TENANT, "u3", json!({"accountEnabled": false})));
    let r = env.run().await;
    assert_eq!(r.planned.deactivate, 3, "{r:?}");
    assert!(P::is_inactive(&env.the(&upn("created"))), "deleted");
    assert!(P::is_inactive(&env.contact(101)), "licence removed");
    assert!(P::is_inactive(&env.the(&upn("blocked"))), "sign-in blocked");
    assert!(!P::is_inactive(&env.the(&upn("stays"))));
    assert_eq!(env.count(), 4, "deactivated, never deleted");
}

/// A contact no user was ever matched to is never deactivated, not even after a full pass.
pub async fn unmatched_contacts_are_never_deactivated<P: Psa>() {
    let mut s = Scenario::new(
        vec![
            user("u1", "synced", json!({})),
            // Unlicensed from the start: never matched to the PSA contact with its address.
            user("u2", "never", json!({"assignedLicenses": []})),
        ],
        P::options(json!({})),
    );
    s.contacts = vec![
        P::seed_contact(900, "someone@else.example"),
        P::seed_contact(901, &upn("never")),
    ];
    let env = P::start(s).await;
    env.run().await;
    assert!(env.sim().graph().delete_user(TENANT, "u1", true));
    assert!(env.sim().graph().delete_user(TENANT, "u2", true));
    let r = env.run().await;
    assert_eq!(r.planned.deactivate, 1, "only the linked one: {r:?}");
    assert!(P::is_inactive(&env.the(&upn("synced"))));
    assert!(!P::is_inactive(&env.contact(900)), "no Microsoft 365 user");
    assert!(
        !P::is_inactive(&env.contact(901)),
        "never matched by e-mail"
    );
    // A full pass (expired delta token) does not either.
    env.sim().graph().expire_delta_tokens();
    env.run().await;
    assert!(!P::is_inactive(&env.contact(900)));
    assert!(!P::is_inactive(&env.contact(901)));
}

/// Eight users `user1..user8`.
pub fn many_users(n: usize) -> Vec<Value> {
    (1..=n)
        .map(|i| user(&format!("u{i}"), &format!("user{i}"), json!({})))
        .collect()
}

/// A change of one user is one delta round and one update of its contact.
pub async fn an_incremental_run_writes_only_the_changed_contact<P: Psa>() {
    let env = P::start(Scenario::new(many_users(8), P::options(json!({})))).await;
    env.run().await;
    assert_eq!(env.count(), 8);
    assert!(env
        .sim()
        .graph()
        .update_user(TENANT, "u5", json!({"mobilePhone": "+1 555 7777"})));
    env.sim().reset_requests();
    let r = env.run().await;
    assert_eq!((r.planned.create, r.planned.update), (0, 1), "{r:?}");
    let requests = env.sim().requests();
    assert_eq!(env.writes(), (0, 1), "one update, no create: {requests:?}");
    assert_eq!(
        requests.count_matching("GET /v1.0/users/delta"),
        1,
        "one delta round: {requests:?}"
    );
    assert_eq!(
        P::mobile_of(&env.the(&upn("user5"))).as_deref(),
        Some("+1 555 7777")
    );
    assert_eq!(
        P::mobile_of(&env.the(&upn("user4"))).as_deref(),
        Some("+1 555 0199")
    );
    assert_eq!(env.count(), 8);
}

// ------------------------------------------------------------------------------------------
// Two-sided: what people change in the PSA by hand.

/// "If you modify a contact name in Autotask/Connectwise, and there is different
/// information in Microsoft, this will be updated on the next sync": on the next sync,
/// with no change in Microsoft 365, written once (its echo is no edit: no ping-pong).
pub async fn a_name_edited_in_the_psa_is_restored_on_the_next_sync<P: Psa>() {
    let env = P::start(Scenario::new(many_users(3), P::options(json!({})))).await;
    env.run().await;
    let id = env.id_of(&upn("user2"));
    let before = env.contact(id)["firstName"].clone();
    env.edit_by_hand(id, HandEdit::FirstName("Edited in the PSA"));
    env.sim().reset_requests();
    let r = env.run().await;
    assert_eq!(r.planned.update, 1, "{r:?}");
    assert_eq!(env.contact(id)["firstName"], before);
    assert_eq!(env.writes(), (0, 1), "only the edited contact is written");
    env.sim().reset_requests();
    let r = env.run().await;
    assert_eq!(env.writes(), (0, 0), "no ping-pong: {r:?}");
    assert_eq!(r.planned.update, 0, "{r:?}");
}

/// A contact deactivated by hand while its user stays active is reactivated on the next
/// sync; a later Microsoft 365 change updates it and leaves it active.
pub async fn a_contact_deactivated_in_the_psa_is_reactivated_while_its_user_is_active<P: Psa>() {
    let env = P::start(Scenario::new(many_users(3), P::options(json!({})))).await;
    env.run().await;
    let id = env.id_of(&upn("user1"));
    env.edit_by_hand(id, HandEdit::Deactivate);
    assert!(P::is_inactive(&env.contact(id)));
    let r = env.run().await;
    assert_eq!(r.planned.reactivate, 1, "{r:?}");
    assert!(!P::is_inactive(&env.contact(id)), "reactivated");
    env.edit_by_hand(id, HandEdit::Deactivate);
    assert!(env
        .sim()
        .graph()
        .update_user(TENANT, "u1", json!({"jobTitle": "Lead"})));
    let r = env.run().await;
    assert_eq!(r.planned.reactivate, 1, "{r:?}");
    let c = env.contact(id);
    assert!(!P::is_inactive(&c), "a change does not leave it inactive");
    assert_eq!(c["title"], "Lead");
    env.sim().reset_requests();
    env.run().await;
    assert_eq!(env.writes(), (0, 0), "settled");
}

/// A contact deleted by hand is created again, never failed forever: when its user
/// changes, and, with no change at all, by the next full reconcile.
pub async fn a_contact_deleted_in_the_psa_is_created_again<P: Psa>() {
    let env = P::start(Scenario::new(many_users(3), P::options(json!({})))).await;
    env.run().await;
    let first = env.id_of(&upn("user1"));
    env.edit_by_hand(first, HandEdit::Delete);
    assert!(env
        .sim()
        .graph()
        .update_user(TENANT, "u1", json!({"jobTitle": "Lead"})));
    let r = env.run().await;
    assert_eq!((r.planned.create, r.failed), (1, 0), "{r:?}");
    let again = env.the(&upn("user1"));
    assert_ne!(again["id"].as_i64(), Some(first), "a new contact");
    assert_eq!(again["title"], "Lead");

    let second = env.id_of(&upn("user2"));
    env.edit_by_hand(second, HandEdit::Delete);
    profiles::request_full_reconcile(env.hub(), Actor::Msp, PROFILE)
        .await
        .unwrap();
    let r = env.run().await;
    assert_eq!((r.planned.create, r.failed), (1, 0), "{r:?}");
    env.the(&upn("user2"));
    assert_eq!(env.count(), 3);
    env.assert_no_duplicates();
}

/// Switching "Update existing contacts" on reaches the contacts whose users do not
/// change: saving the profile re-evaluates every user on the next run.
pub async fn switching_update_existing_on_reaches_users_that_do_not_change<P: Psa>() {
    let env = P::start(P::update_off_scenario()).await;
    env.run().await;
    assert_eq!(env.contact(101)["firstName"], "Old");
    assert!(P::is_inactive(&env.contact(102)));
    let change = ProfileChange {
        mapper_options: Some(P::options(json!({"update_existing": true})).to_string()),
        rules: Some(rules_for(true)),
        ..ProfileChange::default()
    };
    profiles::update(env.hub(), Actor::Msp, PROFILE, change, false)
        .await
        .unwrap();
    let r = env.run().await;
    assert_eq!(env.contact(101)["firstName"], "Matt", "{r:?}");
    assert!(!P::is_inactive(&env.contact(102)), "reactivated: {r:?}");
    env.sim().reset_requests();
    let r = env.run().await;
    assert_eq!(env.writes(), (0, 0), "settled: {r:?}");
}

/// A preview and the run after it agree: what the preview shows (here a contact deleted
/// by hand, which no change feed reports) is what the next run applies.
pub async fn the_run_after_a_preview_applies_what_the_preview_showed<P: Psa>() {
    let env = P::start(Scenario::new(many_users(3), P::options(json!({})))).await;
    env.run().await;
    let id = env.id_of(&upn("user3"));
    env.edit_by_hand(id, HandEdit::Delete);
    let preview = super::run_now(env.hub(), PROFILE, RunMode::Preview).await;
    let planned = preview.report.expect("a report").report.planned;
    assert_eq!(
        planned.create, 1,
        "the preview shows the contact created again"
    );
    let run = super::run_now(env.hub(), PROFILE, RunMode::Run).await;
    let summary = run.report.expect("a report");
    assert_eq!(
        summary.report.planned.create, 1,
        "the run applies it: {summary:?}"
    );
    assert!(summary.differs_from_preview.is_empty(), "{summary:?}");
    env.the(&upn("user3"));
    assert_eq!(env.count(), 3);

    // When the data moves between the preview and the run, the run says how it differs.
    let id = env.id_of(&upn("user2"));
    env.edit_by_hand(id, HandEdit::Delete);
    super::run_now(env.hub(), PROFILE, RunMode::Preview).await;
    assert!(env
        .sim()
        .graph()
        .update_user(TENANT, "u2", json!({"accountEnabled": false})));
    let run = super::run_now(env.hub(), PROFILE, RunMode::Run).await;
    let summary = run.report.expect("a report");
    assert_eq!(summary.differs_from_preview.len(), 1, "{summary:?}");
    let line = &summary.differs_from_preview[0];
    assert!(
        line.starts_with("u2: the preview showed create") && line.contains("the run did unlink"),
        "{line}"
    );
    // Compared once: the next run is not measured against that preview again.
    let run = super::run_now(env.hub(), PROFILE, RunMode::Run).await;
    assert!(run.report.unwrap().differs_from_preview.is_empty());
}

/// The mapper's own documented example: a field filter on `companyName`, a directory
/// property the contact flow does not read for itself, and one on an on-premises
/// extension attribute. The connector reads what the filters name, in the full pass and
/// in delta rounds, so the filters match and a change moves the user.
pub async fn field_filters_read_any_directory_property_they_name<P: Psa>() {
    let filters = vec![
        json!({"priority": 1, "kind": "field", "field": "companyName", "value": "Fabrikam", "site": {"id": "21"}}),
        json!({"priority": 2, "kind": "field", "field": "extensionAttribute3", "value": "vip", "site": {"id": "22"}}),
        json!({"priority": 3, "kind": "all-licensed", "site": {"id": "26"}}),
    ];
    let env = P::start(Scenario::new(
        vec![
            user("u-fab", "fab", json!({"companyName": "Fabrikam"})),
            user(
                "u-vip",
                "vip",
                json!({"onPremisesExtensionAttributes": {"extensionAttribute3": "VIP"}}),
            ),
            user("u-rest", "rest", json!({"companyName": "Contoso"})),
        ],
        P::options(json!({"filters": filters})),
    ))
    .await;
    env.run().await;
    assert_eq!(
        P::site_of(&env.the(&upn("fab"))),
        21,
        "companyName = Fabrikam"
    );
    assert_eq!(
        P::site_of(&env.the(&upn("vip"))),
        22,
        "extensionAttribute3 = vip"
    );
    assert_eq!(P::site_of(&env.the(&upn("rest"))), 26, "the catch-all");
    // The property changes in Microsoft 365: the delta round reads it and moves the user.
    assert!(env
        .sim()
        .graph()
        .update_user(TENANT, "u-rest", json!({"companyName": "Fabrikam"})));
    let r = env.run().await;
    assert_eq!(
        P::site_of(&env.the(&upn("rest"))),
        21,
        "moved by a delta round: {r:?}"
    );
    assert_eq!(P::site_of(&env.the(&upn("fab"))), 21);
}

/// A field filter on a property the source cannot read is refused when the profile is
/// saved, naming it and listing the properties that can be read; nothing is saved.
pub async fn a_field_filter_on_an_unreadable_property_is_refused_on_save<P: Psa>() {
    let env = P::start(Scenario::new(
        vec![user("u1", "one", json!({}))],
        P::options(json!({})),
    ))
    .await;
    let before = profiles::get(env.hub(), Actor::Msp, PROFILE)
        .await
        .unwrap()
        .0;
    let options = P::options(json!({"filters": [
        {"priority": 1, "kind": "field", "field": "shoeSize", "value": "44", "site": {"id": "21"}}
    ]}));
    let change = ProfileChange {
        mapper_options: Some(options.to_string()),
        ..ProfileChange::default()
    };
    let err = profiles::update(env.hub(), Actor::Msp, PROFILE, change, false)
        .await
        .expect_err("an unreadable property is refused")
        .to_string();
    assert!(err.contains("\"shoeSize\""), "{err}");
    for readable in [
        "companyName",
        "employeeId",
        "extensionAttribute1",
        "department",
    ] {
        assert!(err.contains(readable), "lists {readable}: {err}");
    }
    let after = profiles::get(env.hub(), Actor::Msp, PROFILE)
        .await
        .unwrap()
        .0;
    assert_eq!(after.mapper_options, before.mapper_options, "nothing saved");
}

// ---- group membership moves users between sites ------------------------------------------
// `users/delta` does not report membership changes, so the `graph` connector reads
// `groups/delta` too.

/// The site of the group filter (Management) and of the catch-all.
const GROUP_SITE: i64 = 21;
const CATCH_ALL: i64 = 26;

/// Management (`g-mgmt`) routes to site 21, every other licensed user to site 26;
/// `g-exec` is a member of Management.
async fn group_env<P: Psa>(users: Vec<Value>) -> P {
    let filters = json!([
        {"priority": 1, "kind": "group", "group_id": "g-mgmt", "group_name": "Management", "site": {"id": GROUP_SITE.to_string()}},
        {"priority": 2, "kind": "all-licensed", "site": {"id": CATCH_ALL.to_string()}}
    ]);
    let mut s = Scenario::new(users, P::options(json!({"filters": filters})));
    s.groups = vec![
        json!({"id": "g-mgmt", "displayName": "Management", "members": ["u-leave", "g-exec"]}),
        json!({"id": "g-exec", "displayName": "Executives", "members": []}),
        json!({"id": "g-team", "displayName": "Team", "members": ["u-team"]}),
    ];
    s.with_groups = true;
    P::start(s).await
}

/// One run from fresh request counters: what it wrote is `writes()` afterwards.
async fn counted_run<P: Psa>(env: &P) -> RunReport {
    env.sim().reset_requests();
    env.run().await
}

fn site_of_user<P: Psa>(env: &P, local: &str) -> i64 {
    P::site_of(&env.the(&upn(local)))
}

pub async fn a_user_added_to_the_filter_group_moves_to_its_site_on_the_next_run<P: Psa>() {
    let env: P = group_env(vec![
        user("u-join", "join", json!({})),
        user("u-other", "other", json!({})),
    ])
    .await;
    let first = counted_run(&env).await;
    assert_eq!(first.planned.create, 2, "{first:?}");
    assert_eq!(
        site_of_user(&env, "join"),
        CATCH_ALL,
        "not in Management yet"
    );
    // Nothing about the user changes but the membership.
    assert!(env.sim().graph().add_member(TENANT, "g-mgmt", "u-join"));
    let moved = counted_run(&env).await;
    assert_eq!(
        site_of_user(&env, "join"),
        GROUP_SITE,
        "the new member of Management moved to its site: {moved:?}"
    );
    assert_eq!(env.writes(), (0, 1), "one update, nothing else: {moved:?}");
    assert_eq!(site_of_user(&env, "other"), CATCH_ALL);
    // And the run after has nothing to do.
    let again = counted_run(&env).await;
    assert_eq!(env.writes(), (0, 0), "{again:?}");
    assert_eq!(site_of_user(&env, "join"), GROUP_SITE);
    assert_eq!(env.count(), 2);
}

pub async fn a_user_removed_from_the_filter_group_moves_back_to_the_catch_all<P: Psa>() {
    let env: P = group_env(vec![
        user("u-leave", "leave", json!({})),
        user("u-other", "other", json!({})),
    ])
    .await;
    counted_run(&env).await;
    assert_eq!(site_of_user(&env, "leave"), GROUP_SITE);
    assert!(env.sim().graph().remove_member(TENANT, "g-mgmt", "u-leave"));
    let moved = counted_run(&env).await;
    assert_eq!(site_of_user(&env, "leave"), CATCH_ALL, "{moved:?}");
    assert_eq!(env.writes(), (0, 1), "{moved:?}");
    let again = counted_run(&env).await;
    assert_eq!(env.writes(), (0, 0), "{again:?}");
    assert_eq!(site_of_user(&env, "leave"), CATCH_ALL);
}

pub async fn membership_through_nested_groups_moves_users_both_ways<P: Psa>() {
    let env: P = group_env(vec![
        user("u-exec", "exec", json!({})),
        user("u-team", "team", json!({})),
    ])
    .await;
    counted_run(&env).await;
    assert_eq!(site_of_user(&env, "exec"), CATCH_ALL);
    assert_eq!(site_of_user(&env, "team"), CATCH_ALL);
    // Joins Executives, which is a member of Management; and the whole Team group joins
    // Management (only the group appears in Management's members@delta).
    let g = env.sim().graph();
    assert!(g.add_member(TENANT, "g-exec", "u-exec"));
    assert!(g.add_member(TENANT, "g-mgmt", "g-team"));
    let moved = counted_run(&env).await;
    assert_eq!(site_of_user(&env, "exec"), GROUP_SITE, "{moved:?}");
    assert_eq!(site_of_user(&env, "team"), GROUP_SITE, "{moved:?}");
    assert_eq!(env.writes(), (0, 2), "{moved:?}");
    let again = counted_run(&env).await;
    assert_eq!(env.writes(), (0, 0), "{again:?}");
    // Team leaves Management again: its members move back.
    assert!(env.sim().graph().remove_member(TENANT, "g-mgmt", "g-team"));
    let back = counted_run(&env).await;
    assert_eq!(site_of_user(&env, "team"), CATCH_ALL, "{back:?}");
    assert_eq!(site_of_user(&env, "exec"), GROUP_SITE);
    assert_eq!(env.writes(), (0, 1), "{back:?}");
}
