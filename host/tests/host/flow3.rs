//! Flow 3 (Dynamics 365 server-side synchronization) end to end: email
//! server profiles, an organization's default email processing, its
//! mailboxes read from the Dataverse simulator through the real `dynamics`
//! plugin, and Test & Enable through the real `ews` plugin against the EWS
//! simulator, with the statuses written back to the Dynamics rows. One test
//! per rule of `../shared/seeds/dynamics-exchange-server-side-sync.txt`.

use crate::common;
use serde_json::{json, Value};
use std::sync::Arc;
use syncbridge::control::alerts;
use syncbridge::control::dynamics_mailboxes::{
    self as mailboxes, Delivery, MailboxEdit, ProcessingDefaults, FAILURE, NOT_RUN, SUCCESS,
};
use syncbridge::control::email_server_profiles::{
    self as profiles, EmailServerSettings, ProfileError, ProfileSecrets,
};
use syncbridge::control::Actor;
use syncbridge::hub::Hub;
use syncbridge::secrets::SecretString;
use syncbridge::store::now_ms;
use syncbridge_sim::{FaultRule, Scenarios, Seed, SimConfig, Simulator};

pub(crate) const TOKEN: &str = "dataverse-test-token";
pub(crate) const SVC_PASSWORD: &str = "Svc-Passw0rd!";
pub(crate) const ORG: &str = "contoso-crm";
pub(crate) const ANN: &str = "11111111-0000-4000-8000-000000000001";
pub(crate) const BOB: &str = "11111111-0000-4000-8000-000000000002";
const CY: &str = "11111111-0000-4000-8000-000000000003";
const DEE: &str = "11111111-0000-4000-8000-000000000004";
pub(crate) const TENANT: &str = "33333333-3333-4333-8333-333333333333";
pub(crate) const APP_ID: &str = "22222222-2222-4222-8222-222222222222";
pub(crate) const APP_SECRET: &str = "App-S3cret-never-shown";
/// The app an Exchange Online profile may send with ("Use same settings for Outgoing" off).
pub(crate) const SENDER_APP_ID: &str = "22222222-2222-4222-8222-222222222299";
pub(crate) const SENDER_APP_SECRET: &str = "Sender-App-S3cret";
const SKU: &str = "c7df2760-2c81-4ef7-b578-5b5392b571df";

pub(crate) fn seed() -> Seed {
    let mailbox = |id: &str, name: &str, address: Option<&str>, approval: i64| {
        let mut row = json!({"mailboxid": id, "name": name, "emailrouteraccessapproval": approval});
        if let Some(a) = address {
            row["emailaddress"] = json!(a);
        }
        row
    };
    let doc = json!({
        "ews": {"accounts": [
            {"email": "svc@contoso.com", "password": SVC_PASSWORD, "canImpersonate": true},
            {"email": "ann@contoso.com", "password": "ann-pw", "displayName": "Ann Archer"},
            {"email": "bob@contoso.com", "password": "bob-pw", "displayName": "Bob Baker"},
            {"email": "cy@contoso.com", "password": "cy-pw", "displayName": "Cy Cole"}
        ]},
        "graph": {"tenants": [{
            "id": TENANT, "domain": "contoso.com",
            "apps": [{"client_id": APP_ID, "client_secret": APP_SECRET},
                     {"client_id": SENDER_APP_ID, "client_secret": SENDER_APP_SECRET}],
            "subscribedSkus": [{"skuId": SKU, "skuPartNumber": "ENTERPRISEPACK"}],
            "users": [
                {"id": "u-ann", "userPrincipalName": "ann@contoso.com", "mail": "ann@contoso.com",
                 "assignedLicenses": [{"skuId": SKU, "disabledPlans": []}]}
            ]
        }]},
        "dynamics": {
            "tokens": [TOKEN],
            "rows": {"mailboxes": [
                mailbox(ANN, "Ann Archer", Some("ann@contoso.com"), 1),
                mailbox(BOB, "Bob Baker", Some("bob@contoso.com"), 2),
                mailbox(CY, "Cy Cole", Some("cy@contoso.com"), 0),
                mailbox("11111111-0000-4000-8000-000000000009", "Queue without address", None, 0)
            ]}
        }
    });
    Seed::from_json(&doc.to_string()).unwrap()
}

pub(crate) struct World {
    pub(crate) sim: Simulator,
    pub(crate) hub: Arc<Hub>,
    _t: common::TestHub,
}

/// The simulators over plain HTTP on loopback, a hub with the `dynamics`
/// and `ews` plugins, and the organization's connection.
pub(crate) async fn world() -> World {
    world_on(common::hub().await).await
}

/// [`world`] on a given hub (PostgreSQL, say).
pub(crate) async fn world_on(t: common::TestHub) -> World {
    let sim = Simulator::start(SimConfig {
        seed: Some(seed()),
        ..SimConfig::all()
    })
    .await
    .unwrap();
    let hub = t.hub.clone();
    common::install(&hub, "dynamics").await;
    common::install(&hub, "ews").await;
    let config = json!({"url": sim.base_url()}).to_string();
    let bearer = json!({"kind": "bearer", "token": TOKEN}).to_string();
    common::loopback_connection(&hub, ORG, "dynamics", &config, &[("default", &bearer)]).await;
    World { sim, hub, _t: t }
}

/// An on-premises profile with the profile's credentials (impersonation),
/// reached over plain HTTP on loopback (explicitly allowed).
pub(crate) fn onprem(sim: &Simulator) -> EmailServerSettings {
    serde_json::from_value(json!({
        "name": "Contoso Exchange",
        "description": "the on-premises Exchange 2016",
        "server_type": "exchange",
        "incoming_location": sim.ews_url(),
        "outgoing_location": sim.ews_url(),
        "incoming": {"credentials": "profile", "username": "svc@contoso.com"},
        "allow_credentials_over_http": true,
        "allow_private_network": true
    }))
    .unwrap()
}

pub(crate) fn secret() -> ProfileSecrets {
    ProfileSecrets {
        incoming: Some(SecretString::new(SVC_PASSWORD)),
        outgoing: None,
    }
}

pub(crate) fn id(address: &str) -> String {
    format!("{ORG}:{address}")
}

/// World with profile `exch` as the organization's default and its mailboxes read.
pub(crate) async fn configured() -> World {
    configure(world().await).await
}

pub(crate) async fn configure(w: World) -> World {
    profiles::create(&w.hub, Actor::Msp, "exch", None, onprem(&w.sim), secret())
        .await
        .unwrap();
    mailboxes::set_defaults(
        &w.hub,
        Actor::Msp,
        ORG,
        ProcessingDefaults {
            server_profile: Some("exch".into()),
            ..ProcessingDefaults::default()
        },
    )
    .await
    .unwrap();
    mailboxes::refresh(&w.hub, Actor::Msp, ORG).await.unwrap();
    w
}

fn dataverse_row(sim: &Simulator, id: &str) -> Value {
    sim.dynamics().get("mailboxes", id).expect("row exists")
}

pub(crate) async fn run_tests(hub: &Arc<Hub>) -> mailboxes::TestsRun {
    mailboxes::run_due(hub, now_ms(), 100).await.unwrap()
}

#[tokio::test]
async fn anonymous_and_integrated_authentication_are_refused() {
    let w = world().await;
    let mut s = onprem(&w.sim);
    s.incoming = serde_json::from_value(json!({"credentials": "anonymous"})).unwrap();
    let e = profiles::create(
        &w.hub,
        Actor::Msp,
        "anon",
        None,
        s,
        ProfileSecrets::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ProfileError::Anonymous { .. }), "{e}");
    assert!(e.to_string().contains("not a valid setting"), "{e}");
    let mut s = onprem(&w.sim);
    s.incoming = serde_json::from_value(json!({"credentials": "integrated"})).unwrap();
    let e = profiles::create(
        &w.hub,
        Actor::Msp,
        "integ",
        None,
        s,
        ProfileSecrets::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ProfileError::Integrated { .. }), "{e}");
    assert!(profiles::list(&w.hub, Actor::Msp).await.unwrap().is_empty());
    assert!(
        w.hub.store().get_connection("anon-mail").await.is_err(),
        "a refused profile leaves no connection"
    );
}

#[tokio::test]
async fn credentials_over_plain_http_are_refused_unless_explicitly_allowed() {
    let w = world().await;
    let mut s = onprem(&w.sim);
    s.allow_credentials_over_http = false;
    let e = profiles::create(&w.hub, Actor::Msp, "plain", None, s.clone(), secret())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ProfileError::CredentialsOverHttp {
                field: "incoming_location",
                ..
            }
        ),
        "{e}"
    );
    assert!(e
        .to_string()
        .contains("AllowCredentialsEntryViaNonSecureChannels"));
    s.allow_credentials_over_http = true;
    profiles::create(&w.hub, Actor::Msp, "plain", None, s, secret())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_profile_owns_a_connection_with_its_sealed_credentials_and_its_connection_limit() {
    let w = world().await;
    let e = profiles::create(
        &w.hub,
        Actor::Msp,
        "exch",
        None,
        onprem(&w.sim),
        ProfileSecrets::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ProfileError::SecretRequired(_)), "{e}");
    let p = profiles::create(&w.hub, Actor::Msp, "exch", None, onprem(&w.sim), secret())
        .await
        .unwrap();
    assert_eq!(
        p.settings.max_concurrent_connections, 10,
        "the seed's default"
    );
    assert_eq!(p.settings.min_polling_minutes, 5);
    let c = w
        .hub
        .store()
        .get_connection(&p.connection_id)
        .await
        .unwrap();
    assert_eq!(c.plugin_id, "ews");
    assert_eq!(c.max_concurrent, Some(10));
    assert!(!c.config.contains(SVC_PASSWORD));
    let config: Value = serde_json::from_str(&c.config).unwrap();
    assert_eq!(config["impersonate"], json!(true));
    assert_eq!(config["ews_url"], json!(w.sim.ews_url()));
    // Exchange Online: the graph plugin, OAuth only, a tenant.
    let online: EmailServerSettings = serde_json::from_value(json!({
        "name": "Exchange Online", "server_type": "exchange-online",
        "incoming_location": w.sim.graph_url(),
        "incoming": {"credentials": "profile", "username": "22222222-2222-4222-8222-222222222222", "protocol": "basic"},
        "tenant": "contoso.onmicrosoft.com", "token_url": w.sim.token_url("contoso.onmicrosoft.com"),
        "allow_credentials_over_http": true, "allow_private_network": true
    }))
    .unwrap();
    let e = profiles::create(&w.hub, Actor::Msp, "online", None, online.clone(), secret())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("OAuth"), "{e}");
    let mut online = online;
    online.incoming.protocol = Default::default();
    common::install(&w.hub, "graph").await;
    let p = profiles::create(&w.hub, Actor::Msp, "online", None, online, secret())
        .await
        .unwrap();
    let c = w
        .hub
        .store()
        .get_connection(&p.connection_id)
        .await
        .unwrap();
    assert_eq!(c.plugin_id, "graph");
}

#[tokio::test]
async fn refresh_reads_the_active_mailboxes_with_their_dataverse_ids() {
    let w = configured().await;
    let list = mailboxes::list(&w.hub, Actor::Msp, ORG).await.unwrap();
    let ids: Vec<&str> = list.iter().map(|m| m.mailbox.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            id("ann@contoso.com"),
            id("bob@contoso.com"),
            id("cy@contoso.com")
        ],
        "the row without an address is left out"
    );
    let ann = &list[0];
    assert_eq!(ann.remote_id.as_deref(), Some(ANN));
    assert!(ann.mailbox.approved, "approved in Dynamics");
    assert!(!list[1].mailbox.approved, "pending approval in Dynamics");
    assert!(!ann.mailbox.enabled, "nothing is enabled before a test");
    // A second read keeps what was configured here.
    mailboxes::approve_many(&w.hub, Actor::Msp, &[id("cy@contoso.com")])
        .await
        .unwrap();
    let again = mailboxes::refresh(&w.hub, Actor::Msp, ORG).await.unwrap();
    assert_eq!((again.new, again.known), (0, 3));
    let cy = mailboxes::get(&w.hub, Actor::Msp, &id("cy@contoso.com"))
        .await
        .unwrap();
    assert!(cy.mailbox.approved);
}

#[tokio::test]
async fn apply_default_settings_then_test_and_enable_fills_every_status_and_writes_it_to_dynamics()
{
    let w = configured().await;
    let ann = id("ann@contoso.com");
    let applied = mailboxes::apply_defaults(&w.hub, Actor::Msp, std::slice::from_ref(&ann), true)
        .await
        .unwrap();
    let m = &applied[0];
    assert_eq!(m.mailbox.settings["server_profile"], json!("exch"));
    assert_eq!(m.mailbox.settings["act"], json!("server-side-sync"));
    assert!(m.test.as_ref().unwrap().scheduled, "tested by default");
    let run = run_tests(&w.hub).await;
    assert_eq!((run.tested, run.succeeded, run.not_written), (1, 1, 0));
    let m = mailboxes::get(&w.hub, Actor::Msp, &ann).await.unwrap();
    let t = m.test.unwrap();
    assert_eq!(
        (t.incoming_status, t.outgoing_status, t.act_status),
        (SUCCESS, SUCCESS, SUCCESS)
    );
    assert!(!t.scheduled);
    assert!(m.mailbox.enabled);
    assert_eq!(m.mailbox.status, "ok");
    let row = dataverse_row(&w.sim, ANN);
    assert_eq!(row["incomingemailstatus"], json!(1));
    assert_eq!(row["outgoingemailstatus"], json!(1));
    assert_eq!(row["actstatus"], json!(1));
    assert!(row["testmailboxaccesscompletedon"].is_string(), "{row}");
    // The owner's alert on success: on the mailbox's wall, not open for an operator.
    let wall = alerts::list(w.hub.store(), None, Some(&ann), true)
        .await
        .unwrap();
    assert_eq!(wall.len(), 1);
    assert_eq!(wall[0].code, "mailbox_test_succeeded");
    assert!(alerts::list(w.hub.store(), None, Some(&ann), false)
        .await
        .unwrap()
        .is_empty());
    // Nothing is due any more.
    assert_eq!(run_tests(&w.hub).await.tested, 0);
}

#[tokio::test]
async fn an_unapproved_mailbox_fails_its_test_until_email_is_approved() {
    let w = configured().await;
    let bob = id("bob@contoso.com");
    mailboxes::apply_defaults(&w.hub, Actor::Msp, std::slice::from_ref(&bob), true)
        .await
        .unwrap();
    let run = run_tests(&w.hub).await;
    assert_eq!((run.tested, run.failed), (1, 1));
    let m = mailboxes::get(&w.hub, Actor::Msp, &bob).await.unwrap();
    let t = m.test.clone().unwrap();
    assert_eq!(t.error_code.as_deref(), Some("NotApproved"));
    assert_eq!(t.incoming_status, FAILURE);
    assert!(!m.mailbox.enabled);
    assert_eq!(dataverse_row(&w.sim, BOB)["incomingemailstatus"], json!(2));
    let wall = alerts::list(w.hub.store(), None, Some(&bob), false)
        .await
        .unwrap();
    assert_eq!(wall[0].code, "mailbox_test_failed");
    assert!(wall[0].message.contains("Approve"), "{}", wall[0].message);
    // Approve email, test again: it passes.
    mailboxes::approve_many(&w.hub, Actor::Msp, std::slice::from_ref(&bob))
        .await
        .unwrap();
    mailboxes::test_and_enable(&w.hub, Actor::Msp, std::slice::from_ref(&bob))
        .await
        .unwrap();
    assert_eq!(run_tests(&w.hub).await.succeeded, 1);
    assert!(
        mailboxes::get(&w.hub, Actor::Msp, &bob)
            .await
            .unwrap()
            .mailbox
            .enabled
    );
    assert!(
        alerts::list(w.hub.store(), None, Some(&bob), false)
            .await
            .unwrap()
            .is_empty(),
        "the failure is over once a test passes"
    );
    // With approval not required, an unapproved mailbox is tested as any other.
    let cy = id("cy@contoso.com");
    let mut d = mailboxes::defaults(&w.hub, Actor::Msp, ORG).await.unwrap();
    d.require_approval = false;
    mailboxes::set_defaults(&w.hub, Actor::Msp, ORG, d)
        .await
        .unwrap();
    mailboxes::apply_defaults(&w.hub, Actor::Msp, std::slice::from_ref(&cy), true)
        .await
        .unwrap();
    assert_eq!(run_tests(&w.hub).await.succeeded, 1);
}

#[tokio::test]
async fn a_401_disables_the_mailbox_in_both_places_and_the_alert_names_the_cause() {
    let w = configured().await;
    let ann = id("ann@contoso.com");
    mailboxes::apply_defaults(&w.hub, Actor::Msp, std::slice::from_ref(&ann), true)
        .await
        .unwrap();
    w.sim.set_scenarios(Scenarios {
        basic_disabled: true,
        ..Scenarios::default()
    });
    let run = run_tests(&w.hub).await;
    assert_eq!(
        (run.tested, run.failed, run.postponed),
        (1, 1, 0),
        "{run:?}"
    );
    let m = mailboxes::get(&w.hub, Actor::Msp, &ann).await.unwrap();
    let t = m.test.unwrap();
    assert_eq!(t.error_code.as_deref(), Some("401"));
    assert_eq!(t.error_class.as_deref(), Some("permanent"));
    assert!(!t.scheduled, "a permanent error is not retried");
    assert_eq!(m.mailbox.status, "disabled-auth");
    assert!(!m.mailbox.enabled);
    let row = dataverse_row(&w.sim, ANN);
    assert_eq!(row["enabledforincomingemail"], json!(false));
    assert_eq!(row["actstatus"], json!(2));
    let wall = alerts::list(w.hub.store(), None, Some(&ann), false)
        .await
        .unwrap();
    assert!(
        wall[0].message.contains("401") && wall[0].message.contains("Basic"),
        "the alert names the 401 and its cause: {}",
        wall[0].message
    );
}

#[tokio::test]
async fn a_transient_failure_is_tried_again_every_5_minutes_10_times_then_disables() {
    let w = configured().await;
    let ann = id("ann@contoso.com");
    mailboxes::apply_defaults(&w.hub, Actor::Msp, std::slice::from_ref(&ann), true)
        .await
        .unwrap();
    w.sim
        .add_fault(FaultRule::rate("/EWS/Exchange.asmx", 503, 1.0))
        .unwrap();
    let start = now_ms();
    let minute = 60_000;
    for attempt in 1..=9 {
        let at = start + (attempt - 1) * 5 * minute;
        let run = mailboxes::run_due(&w.hub, at, 100).await.unwrap();
        assert_eq!(run.postponed, 1, "attempt {attempt}: {run:?}");
        let t = mailboxes::get(&w.hub, Actor::Msp, &ann)
            .await
            .unwrap()
            .test
            .unwrap();
        assert_eq!(t.retry_count, attempt);
        assert_eq!(t.error_class.as_deref(), Some("transient"));
        assert!(
            t.due_at >= at + 5 * minute - 1000,
            "not before 5 minutes later"
        );
        // Not due a minute later.
        assert_eq!(
            mailboxes::run_due(&w.hub, at + minute, 100)
                .await
                .unwrap()
                .tested,
            0
        );
    }
    let run = mailboxes::run_due(&w.hub, start + 9 * 5 * minute, 100)
        .await
        .unwrap();
    assert_eq!(
        (run.failed, run.postponed),
        (1, 0),
        "the 10th failure is final"
    );
    let m = mailboxes::get(&w.hub, Actor::Msp, &ann).await.unwrap();
    assert!(!m.mailbox.enabled);
    assert_eq!(m.test.unwrap().error_class.as_deref(), Some("permanent"));
}

#[tokio::test]
async fn delivery_methods_decide_which_statuses_are_tested() {
    let w = configured().await;
    let ann = id("ann@contoso.com");
    mailboxes::edit_many(
        &w.hub,
        Actor::Msp,
        std::slice::from_ref(&ann),
        &MailboxEdit {
            server_profile: Some("exch".into()),
            incoming: Some(Delivery::ServerSideSync),
            outgoing: Some(Delivery::None),
            act: Some(Delivery::None),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    mailboxes::test_and_enable(&w.hub, Actor::Msp, std::slice::from_ref(&ann))
        .await
        .unwrap();
    let ews_calls = |sim: &Simulator| -> u64 {
        sim.requests()
            .operations
            .iter()
            .filter(|(k, _)| k.starts_with("EWS "))
            .map(|(_, n)| *n)
            .sum()
    };
    w.sim.reset_requests();
    assert_eq!(run_tests(&w.hub).await.succeeded, 1);
    let calendar_only = ews_calls(&w.sim);
    let t = mailboxes::get(&w.hub, Actor::Msp, &ann)
        .await
        .unwrap()
        .test
        .unwrap();
    assert_eq!(
        (t.incoming_status, t.outgoing_status, t.act_status),
        (SUCCESS, NOT_RUN, NOT_RUN)
    );
    assert_eq!(dataverse_row(&w.sim, ANN)["outgoingemailstatus"], json!(0));
    // With appointments, contacts and tasks on, their folders are opened too.
    mailboxes::edit_many(
        &w.hub,
        Actor::Msp,
        std::slice::from_ref(&ann),
        &MailboxEdit {
            act: Some(Delivery::ServerSideSync),
            ..MailboxEdit::default()
        },
    )
    .await
    .unwrap();
    mailboxes::test_and_enable(&w.hub, Actor::Msp, std::slice::from_ref(&ann))
        .await
        .unwrap();
    w.sim.reset_requests();
    assert_eq!(run_tests(&w.hub).await.succeeded, 1);
    assert!(
        ews_calls(&w.sim) > calendar_only,
        "{} EWS calls with ACT, {calendar_only} without",
        ews_calls(&w.sim)
    );
    let t = mailboxes::get(&w.hub, Actor::Msp, &ann)
        .await
        .unwrap()
        .test
        .unwrap();
    assert_eq!(t.act_status, SUCCESS);
    // An edit naming an unknown profile changes nothing.
    let e = mailboxes::edit_many(
        &w.hub,
        Actor::Msp,
        std::slice::from_ref(&ann),
        &MailboxEdit {
            server_profile: Some("nope".into()),
            ..MailboxEdit::default()
        },
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
}

#[tokio::test]
async fn testing_a_profile_tests_every_mailbox_that_uses_it() {
    let w = configured().await;
    let all = [
        id("ann@contoso.com"),
        id("bob@contoso.com"),
        id("cy@contoso.com"),
    ];
    mailboxes::approve_many(&w.hub, Actor::Msp, &all)
        .await
        .unwrap();
    mailboxes::apply_defaults(&w.hub, Actor::Msp, &all[..2], false)
        .await
        .unwrap();
    let scheduled = mailboxes::test_profile(&w.hub, Actor::Msp, "exch")
        .await
        .unwrap();
    assert_eq!(scheduled, all[..2].to_vec(), "cy has no profile");
    let run = run_tests(&w.hub).await;
    assert_eq!((run.tested, run.succeeded), (2, 2));
    // A profile in use is not removed.
    let e = profiles::remove(&w.hub, Actor::Msp, "exch")
        .await
        .unwrap_err();
    assert!(matches!(e, ProfileError::InUse { .. }), "{e}");
}

#[tokio::test]
async fn mailboxes_of_a_user_or_queue_profile_need_their_own_credentials() {
    let w = world().await;
    let mut s = onprem(&w.sim);
    s.incoming = serde_json::from_value(json!({"credentials": "user-or-queue"})).unwrap();
    profiles::create(
        &w.hub,
        Actor::Msp,
        "own",
        None,
        s,
        ProfileSecrets::default(),
    )
    .await
    .unwrap();
    mailboxes::set_defaults(
        &w.hub,
        Actor::Msp,
        ORG,
        ProcessingDefaults {
            server_profile: Some("own".into()),
            ..ProcessingDefaults::default()
        },
    )
    .await
    .unwrap();
    mailboxes::refresh(&w.hub, Actor::Msp, ORG).await.unwrap();
    let ann = id("ann@contoso.com");
    mailboxes::apply_defaults(&w.hub, Actor::Msp, std::slice::from_ref(&ann), true)
        .await
        .unwrap();
    assert_eq!(run_tests(&w.hub).await.failed, 1);
    let t = mailboxes::get(&w.hub, Actor::Msp, &ann)
        .await
        .unwrap()
        .test
        .unwrap();
    assert_eq!(t.error_code.as_deref(), Some("CredentialsMissing"));
    profiles::set_mailbox_credential(
        &w.hub,
        Actor::Msp,
        "own",
        "ann@contoso.com",
        "ann@contoso.com",
        SecretString::new("ann-pw"),
    )
    .await
    .unwrap();
    mailboxes::test_and_enable(&w.hub, Actor::Msp, std::slice::from_ref(&ann))
        .await
        .unwrap();
    assert_eq!(run_tests(&w.hub).await.succeeded, 1);
}

/// One call of the served API with `token`: status and JSON body (Null when empty).
pub(crate) async fn call(
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{base}/api/v1{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, json)
}

#[tokio::test]
async fn the_rest_api_configures_and_tests_an_organizations_mailboxes() {
    use reqwest::Method;
    use syncbridge::control::tokens::{self, Role};
    let w = world().await;
    let base = common::serve(syncbridge::server::router(w.hub.clone())).await;
    let (_, token) = tokens::create(w.hub.store(), "ops", Role::Admin, None)
        .await
        .unwrap();
    let t = token.as_str();
    let mut form = serde_json::to_value(onprem(&w.sim)).unwrap();
    form["incoming"] = json!({"credentials": "anonymous"});
    let (status, body) = call(
        &base,
        t,
        Method::POST,
        "/email-server-profiles",
        Some(json!({"id": "exch", "settings": form})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not a valid setting"));
    let (status, body) = call(
        &base,
        t,
        Method::POST,
        "/email-server-profiles",
        Some(json!({"id": "exch", "settings": onprem(&w.sim), "secret": SVC_PASSWORD})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(!body.to_string().contains(SVC_PASSWORD));
    assert_eq!(body["settings"]["max_concurrent_connections"], json!(10));
    let (status, body) = call(
        &base,
        t,
        Method::PUT,
        &format!("/dynamics/{ORG}/email-settings"),
        Some(
            json!({"server_profile": "exch", "incoming": "server-side-sync",
            "outgoing": "server-side-sync", "act": "none"}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["require_approval"], json!(true));
    let (status, body) = call(
        &base,
        t,
        Method::POST,
        &format!("/dynamics/{ORG}/mailboxes/refresh"),
        None,
    )
    .await;
    assert_eq!((status, body["new"].as_u64()), (200, Some(3)), "{body}");
    let ids = json!([id("ann@contoso.com"), id("bob@contoso.com")]);
    let (status, _) = call(
        &base,
        t,
        Method::POST,
        "/dynamics/mailboxes/approve",
        Some(json!({"ids": ids})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(
        &base,
        t,
        Method::POST,
        "/dynamics/mailboxes/apply-defaults",
        Some(json!({"ids": ids})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["settings"]["act"], json!("none"));
    assert_eq!(body["items"][0]["test"]["scheduled"], json!(true));
    // The background job (here called directly; `serve` runs it every tick).
    assert_eq!(run_tests(&w.hub).await.succeeded, 2);
    let (_, body) = call(
        &base,
        t,
        Method::GET,
        &format!("/dynamics/{ORG}/mailboxes"),
        None,
    )
    .await;
    let ann = &body["items"][0];
    assert_eq!(ann["enabled"], json!(true), "{body}");
    assert_eq!(ann["test"]["incoming_status"], json!(1));
    assert_eq!(ann["test"]["act_status"], json!(0), "appointments are off");
    let (_, body) = call(
        &base,
        t,
        Method::GET,
        &format!("/alerts?all=true&mailbox={}", id("bob@contoso.com")),
        None,
    )
    .await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1, "{body}");
    let (status, body) = call(
        &base,
        t,
        Method::POST,
        "/email-server-profiles/exch/test",
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["scheduled"], ids);
    let (status, body) = call(
        &base,
        t,
        Method::POST,
        &format!("/dynamics/mailboxes/{}/diagnose", id("ann@contoso.com")),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cause"], Value::Null, "{body}");
    assert!(body["evidence"].as_array().unwrap().len() >= 3, "{body}");
    let (status, body) = call(
        &base,
        t,
        Method::DELETE,
        "/email-server-profiles/exch",
        None,
    )
    .await;
    assert_eq!(status, 409, "a profile in use stays: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_saves_a_profile_and_tests_mailboxes_with_wait() {
    use std::process::Command;
    let w = world().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sb = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_syncbridge"))
            .args(["--data-dir", data.to_str().unwrap()])
            .args(args)
            .env_remove("SYNCBRIDGE_MASTER_KEY")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    for plugin in ["dynamics", "ews"] {
        let (ok, out) = sb(&[
            "plugin",
            "install",
            common::package(plugin).to_str().unwrap(),
        ]);
        assert!(ok, "{out}");
    }
    let creds = dir.path().join("creds.json");
    std::fs::write(
        &creds,
        json!({"default": {"kind": "bearer", "token": TOKEN}}).to_string(),
    )
    .unwrap();
    let config = json!({"url": w.sim.base_url()}).to_string();
    let (ok, out) = sb(&[
        "connection",
        "add",
        ORG,
        "--plugin",
        "dynamics",
        "--config",
        &config,
        "--allow-host",
        "127.0.0.1",
        "--allow-private-network",
        "--credentials-file",
        creds.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let settings = dir.path().join("profile.json");
    let mut form = serde_json::to_value(onprem(&w.sim)).unwrap();
    form["allow_credentials_over_http"] = json!(false);
    std::fs::write(&settings, form.to_string()).unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SVC_PASSWORD).unwrap();
    let add = |id: &str| {
        sb(&[
            "email-profile",
            "add",
            id,
            "--settings-file",
            settings.to_str().unwrap(),
            "--secret-file",
            secret.to_str().unwrap(),
        ])
    };
    let (ok, out) = add("exch");
    assert!(!ok, "credentials over HTTP are refused: {out}");
    assert!(out.contains("allow_credentials_over_http"), "{out}");
    form["allow_credentials_over_http"] = json!(true);
    std::fs::write(&settings, form.to_string()).unwrap();
    let (ok, out) = add("exch");
    assert!(ok, "{out}");
    assert!(!out.contains(SVC_PASSWORD));
    let (ok, out) = sb(&["dynamics", "defaults", ORG, "--server-profile", "exch"]);
    assert!(ok && out.contains("exch"), "{out}");
    let (ok, out) = sb(&["dynamics", "refresh", ORG]);
    assert!(ok && out.contains("3 new"), "{out}");
    let ann = id("ann@contoso.com");
    let (ok, out) = sb(&["dynamics", "apply-defaults", &ann, "--no-test"]);
    assert!(ok, "{out}");
    let (ok, out) = sb(&["dynamics", "test-enable", &ann, "--wait"]);
    assert!(ok, "{out}");
    assert!(out.contains("1 succeeded"), "{out}");
    assert!(out.contains("Success"), "{out}");
    assert_eq!(dataverse_row(&w.sim, ANN)["incomingemailstatus"], json!(1));
    let (ok, out) = sb(&["dynamics", "diagnose", &ann]);
    assert!(ok && out.contains("every check passed"), "{out}");
    let (ok, out) = sb(&["email-profile", "--help"]);
    assert!(ok && out.contains("Test & Enable"), "{out}");
}

/// An Exchange Online profile: the app registration's client credentials, the simulator's
/// Graph root and token endpoint for the tenant.
async fn online_profile(w: &World, id: &str) {
    common::install(&w.hub, "graph").await;
    let settings: EmailServerSettings = serde_json::from_value(json!({
        "name": "Exchange Online", "server_type": "exchange-online",
        "incoming_location": w.sim.graph_url(),
        "incoming": {"credentials": "profile", "username": APP_ID, "protocol": "oauth"},
        "tenant": TENANT, "token_url": w.sim.token_url(TENANT),
        "allow_credentials_over_http": true, "allow_private_network": true
    }))
    .unwrap();
    profiles::create(
        &w.hub,
        Actor::Msp,
        id,
        None,
        settings,
        ProfileSecrets {
            incoming: Some(SecretString::new(APP_SECRET)),
            outgoing: None,
        },
    )
    .await
    .unwrap();
}

async fn use_profile(w: &World, mailbox: &str, profile: &str) {
    mailboxes::edit_many(
        &w.hub,
        Actor::Msp,
        &[mailbox.to_owned()],
        &MailboxEdit {
            server_profile: Some(profile.into()),
            incoming: Some(Delivery::ServerSideSync),
            outgoing: Some(Delivery::ServerSideSync),
            act: Some(Delivery::ServerSideSync),
            ..MailboxEdit::default()
        },
    )
    .await
    .unwrap();
}

async fn cause_of(w: &World, mailbox: &str, scenarios: Scenarios) -> Option<u8> {
    w.sim.set_scenarios(scenarios);
    let d = mailboxes::diagnose(&w.hub, Actor::Msp, mailbox)
        .await
        .unwrap();
    w.sim.set_scenarios(Scenarios::default());
    if let Some(n) = d.cause_number {
        assert!(d.resolution.is_some(), "a cause comes with its resolution");
        assert!(
            d.evidence.iter().any(|e| e.outcome == "failed"),
            "a cause rests on a failed check: {d:?}"
        );
        assert!(d.summary.contains(&format!("cause {n}")), "{}", d.summary);
    }
    d.cause_number
}

#[tokio::test]
async fn the_401_diagnosis_names_each_of_the_five_causes_from_its_evidence() {
    let w = configured().await;
    // Dee's mailbox was moved to Exchange Online; on premises a remote mailbox remains.
    w.sim
        .seed(
            &Seed::from_json(
                &json!({
                    "ews": {"accounts": [{"email": "dee@contoso.com", "password": "dee-pw",
                        "inExchangeOnline": true}]},
                    "dynamics": {"rows": {"mailboxes": [{"mailboxid": DEE, "name": "Dee Dunn",
                        "emailaddress": "dee@contoso.com", "emailrouteraccessapproval": 1}]}}
                })
                .to_string(),
            )
            .unwrap(),
        )
        .unwrap();
    mailboxes::refresh(&w.hub, Actor::Msp, ORG).await.unwrap();
    let mut hybrid = onprem(&w.sim);
    hybrid.server_type = profiles::ServerType::ExchangeHybrid;
    hybrid.name = "Contoso hybrid".into();
    profiles::create(&w.hub, Actor::Msp, "hybrid", None, hybrid, secret())
        .await
        .unwrap();
    online_profile(&w, "online").await;
    let ann = id("ann@contoso.com");
    let dee = id("dee@contoso.com");

    // Nothing wrong: no cause.
    use_profile(&w, &ann, "exch").await;
    assert_eq!(cause_of(&w, &ann, Scenarios::default()).await, None);
    // 1. The address in Dynamics names no mailbox in Exchange.
    let mismatch = Scenarios {
        mailbox_address_mismatch: true,
        ..Scenarios::default()
    };
    assert_eq!(cause_of(&w, &ann, mismatch).await, Some(1));
    // 5. Basic authentication is off for EWS on premises.
    let basic_off = Scenarios {
        basic_disabled: true,
        ..Scenarios::default()
    };
    assert_eq!(cause_of(&w, &ann, basic_off).await, Some(5));
    // 2. A hybrid profile for a mailbox in Exchange Online (Autodiscover redirects it).
    use_profile(&w, &dee, "hybrid").await;
    assert_eq!(cause_of(&w, &dee, Scenarios::default()).await, Some(2));
    // 3 and 4 through Exchange Online.
    use_profile(&w, &ann, "online").await;
    assert_eq!(cause_of(&w, &ann, Scenarios::default()).await, None);
    let unlicensed = Scenarios {
        no_exchange_online_license: true,
        ..Scenarios::default()
    };
    assert_eq!(cause_of(&w, &ann, unlicensed).await, Some(3));
    // A profile whose application Entra ID does not know in the tenant (its first sign-in:
    // the host caches a token once it has one).
    online_profile(&w, "online-elsewhere").await;
    use_profile(&w, &ann, "online-elsewhere").await;
    let other_tenant = Scenarios {
        other_tenant: true,
        ..Scenarios::default()
    };
    assert_eq!(cause_of(&w, &ann, other_tenant).await, Some(4));

    // Test & Enable of Dee's mailbox fails with the 401 and its alert names cause 2.
    mailboxes::test_and_enable(&w.hub, Actor::Msp, std::slice::from_ref(&dee))
        .await
        .unwrap();
    let run = run_tests(&w.hub).await;
    assert_eq!(run.failed, 1, "{run:?}");
    let wall = alerts::list(w.hub.store(), None, Some(&dee), false)
        .await
        .unwrap();
    assert!(
        wall[0].message.contains("401") && wall[0].message.contains("cause 2 of KB 3212785"),
        "{}",
        wall[0].message
    );
    assert!(wall[0]
        .message
        .contains("Exchange Online email server profile"));
}

#[tokio::test(flavor = "multi_thread")]
async fn test_and_enable_on_postgresql_tests_each_mailbox_once_with_two_workers() {
    let Some(url) = common::postgres_url("flow3").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let w = configure(world_on(common::hub_with(dir, &url).await).await).await;
    let all = [
        id("ann@contoso.com"),
        id("bob@contoso.com"),
        id("cy@contoso.com"),
    ];
    mailboxes::approve_many(&w.hub, Actor::Msp, &all)
        .await
        .unwrap();
    mailboxes::apply_defaults(&w.hub, Actor::Msp, &all, true)
        .await
        .unwrap();
    // Two workers (two hosts on one database) poll at once: each test runs once.
    let (a, b) = tokio::join!(run_tests(&w.hub), run_tests(&w.hub));
    assert_eq!(a.tested + b.tested, 3, "{a:?} {b:?}");
    assert_eq!(a.succeeded + b.succeeded, 3);
    for (m, remote) in all.iter().zip([ANN, BOB, CY]) {
        let t = mailboxes::get(&w.hub, Actor::Msp, m)
            .await
            .unwrap()
            .test
            .unwrap();
        assert_eq!(t.act_status, SUCCESS, "{m}");
        assert_eq!(dataverse_row(&w.sim, remote)["actstatus"], json!(1));
    }
    let defaults = mailboxes::defaults(&w.hub, Actor::Msp, ORG).await.unwrap();
    assert_eq!(defaults.server_profile.as_deref(), Some("exch"));
}

#[tokio::test]
async fn a_stored_profile_that_does_not_read_fails_the_test_by_name() {
    let w = configured().await;
    let ann = id("ann@contoso.com");
    sqlx::query("UPDATE email_server_profiles SET settings = '{\"name\": 1}' WHERE id = 'exch'")
        .execute(w.hub.store().pool())
        .await
        .unwrap();
    mailboxes::apply_defaults(&w.hub, Actor::Msp, std::slice::from_ref(&ann), true)
        .await
        .unwrap();
    assert_eq!(run_tests(&w.hub).await.failed, 1);
    let t = mailboxes::get(&w.hub, Actor::Msp, &ann)
        .await
        .unwrap()
        .test
        .unwrap();
    assert_eq!(t.error_code.as_deref(), Some("InvalidServerProfile"));
    assert!(
        t.error_message.as_deref().unwrap().contains("exch"),
        "{t:?}"
    );
}
