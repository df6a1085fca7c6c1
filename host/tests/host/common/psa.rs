//! Flow-2 scenarios written once for every PSA: each suite (`flow2_rules`
//! for Autotask, `flow2_connectwise`) implements [`Psa`] over its simulator
//! and calls these, then adds what only its PSA has (sites, contact types,
//! communication items).

use super::m365::{self, upn, user, Scenario, TENANT};
use serde_json::{json, Value};
use std::sync::Arc;
use syncbridge::engine::RunReport;
use syncbridge::hub::Hub;
use syncbridge_sim::Simulator;

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
