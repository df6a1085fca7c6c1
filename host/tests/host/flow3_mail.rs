//! Flow 3's e-mail processing end to end: a mailbox that passed Test &
//! Enable has its Inbox tracked as Dynamics e-mail activities (Process Email
//! From, one activity per message, failed ones moved to Undeliverable) and
//! its Dynamics e-mails pending send sent through Exchange and marked sent —
//! through the real `ews`, `dynamics` and `dynamics-exchange` plugins
//! against the EWS and Dataverse simulators.

use crate::common;
use crate::flow3::{
    call, configure, id, onprem, run_tests, secret, world, world_on, World, APP_ID, APP_SECRET,
    ORG, SENDER_APP_ID, SENDER_APP_SECRET, TENANT,
};
use serde_json::{json, Value};
use std::sync::Arc;
use syncbridge::control::alerts;
use syncbridge::control::dynamics_flow::{self, FlowKind};
use syncbridge::control::dynamics_mailboxes::{self as mailboxes, FAILURE, SUCCESS};
use syncbridge::control::email_server_profiles::{
    self as profiles, EmailServerSettings, ProfileSecrets,
};
use syncbridge::control::runs::RunMode;
use syncbridge::control::Actor;
use syncbridge::hub::Hub;
use syncbridge::model::ItemBody;
use syncbridge::secrets::SecretString;
use syncbridge_sim::FaultRule;

const ANN: &str = "ann@contoso.com";
const BOB: &str = "bob@contoso.com";
const TYPES: &str = "http://schemas.microsoft.com/exchange/services/2006/types";

/// The world with profile `exch` (Process Email From 2026-11-01, moving
/// failed e-mail to Undeliverable), the mapper installed, and Ann's mailbox
/// tested and enabled with the organization's defaults.
async fn enabled(settings: impl FnOnce(&mut EmailServerSettings)) -> World {
    enabled_in(world().await, settings).await
}

/// [`enabled`] in a given world (PostgreSQL, say).
async fn enabled_in(w: World, settings: impl FnOnce(&mut EmailServerSettings)) -> World {
    common::install(&w.hub, "dynamics-exchange").await;
    let mut s = onprem(&w.sim);
    s.process_email_from = Some("2026-11-01T00:00:00Z".into());
    s.move_failed_to_undeliverable = true;
    settings(&mut s);
    profiles::create(&w.hub, Actor::Msp, "exch", None, s, secret())
        .await
        .unwrap();
    let w = configure_defaults(w).await;
    let ann = id(ANN);
    mailboxes::apply_defaults(&w.hub, Actor::Msp, std::slice::from_ref(&ann), true)
        .await
        .unwrap();
    let run = run_tests(&w.hub).await;
    assert_eq!(run.succeeded, 1, "{run:?}");
    let test = mailboxes::test_of(w.hub.store(), &ann)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (test.incoming_status, test.outgoing_status),
        (SUCCESS, SUCCESS)
    );
    assert_eq!(
        run.processing, 6,
        "e-mail in and out, appointments, recurring appointments, tasks and contacts start"
    );
    w
}

/// [`configure`] without creating the profile again: defaults and mailboxes.
async fn configure_defaults(w: World) -> World {
    mailboxes::set_defaults(
        &w.hub,
        Actor::Msp,
        ORG,
        mailboxes::ProcessingDefaults {
            server_profile: Some("exch".into()),
            ..mailboxes::ProcessingDefaults::default()
        },
    )
    .await
    .unwrap();
    mailboxes::refresh(&w.hub, Actor::Msp, ORG).await.unwrap();
    w
}

fn profile(kind: FlowKind) -> String {
    dynamics_flow::profile_id(&id(ANN), kind)
}

/// Runs one processing profile of Ann's now: (applied, failed).
async fn run(hub: &Arc<Hub>, kind: FlowKind) -> (u64, u64) {
    let r = common::outcome(common::run_now(hub, &profile(kind), RunMode::Run).await)
        .unwrap_or_else(|e| panic!("{}: {e}", profile(kind)));
    (r.applied, r.failed)
}

/// A message in `mailbox`'s Inbox, received at `received`.
fn deliver(w: &World, mailbox: &str, subject: &str, received: &str, message_id: &str) -> String {
    let message_id = message_id.replace('<', "&lt;").replace('>', "&gt;");
    let xml = format!(
        r#"<t:Message xmlns:t="{TYPES}"><t:Subject>{subject}</t:Subject><t:Body BodyType="HTML">&lt;p&gt;{subject}&lt;/p&gt;</t:Body><t:DateTimeReceived>{received}</t:DateTimeReceived><t:DateTimeSent>{received}</t:DateTimeSent><t:ToRecipients><t:Mailbox><t:EmailAddress>{mailbox}</t:EmailAddress></t:Mailbox></t:ToRecipients><t:From><t:Mailbox><t:Name>A Customer</t:Name><t:EmailAddress>customer@fabrikam.com</t:EmailAddress></t:Mailbox></t:From><t:InternetMessageId>{message_id}</t:InternetMessageId></t:Message>"#
    );
    w.sim
        .ews()
        .add_item(mailbox, "inbox", &xml, None)
        .expect("the message is stored")
}

fn emails(w: &World) -> Vec<Value> {
    w.sim.dynamics().rows("emails")
}

fn with_message_id<'a>(rows: &'a [Value], message_id: &str) -> Vec<&'a Value> {
    rows.iter()
        .filter(|r| r["messageid"] == json!(message_id))
        .collect()
}

#[tokio::test]
async fn incoming_email_received_after_process_email_from_is_tracked_once() {
    let w = enabled(|_| {}).await;
    // Already tracked (by another mailbox of the organization): linked, not tracked twice.
    w.sim.dynamics().insert(
        "emails",
        json!({"subject": "Already tracked", "directioncode": false, "messageid": "<m3@fabrikam.com>",
               "torecipients": "bob@contoso.com;ann@contoso.com", "statecode": 1, "statuscode": 4}),
    );
    deliver(
        &w,
        ANN,
        "Old news",
        "2026-10-15T09:00:00Z",
        "<m1@fabrikam.com>",
    );
    deliver(
        &w,
        ANN,
        "Printer on fire",
        "2026-11-20T09:00:00Z",
        "<m2@fabrikam.com>",
    );
    deliver(
        &w,
        ANN,
        "Already tracked",
        "2026-11-21T09:00:00Z",
        "<m3@fabrikam.com>",
    );
    let (applied, failed) = run(&w.hub, FlowKind::IncomingEmail).await;
    assert_eq!((applied, failed), (2, 0), "one created, one linked");
    let rows = emails(&w);
    assert!(
        with_message_id(&rows, "<m1@fabrikam.com>").is_empty(),
        "received before Process Email From: not processed"
    );
    let tracked = with_message_id(&rows, "<m2@fabrikam.com>");
    assert_eq!(tracked.len(), 1, "{rows:#?}");
    let e = tracked[0];
    assert_eq!(e["subject"], json!("Printer on fire"));
    assert_eq!(e["directioncode"], json!(false));
    assert_eq!(e["sender"], json!("customer@fabrikam.com"));
    assert!(e["torecipients"].as_str().unwrap().contains(ANN), "{e}");
    assert_eq!(
        (e["statecode"].clone(), e["statuscode"].clone()),
        (json!(1), json!(4)),
        "Completed, Received"
    );
    assert_eq!(
        with_message_id(&rows, "<m3@fabrikam.com>").len(),
        1,
        "no duplicate"
    );

    // Nothing new: nothing written; a new message: exactly one more activity.
    assert_eq!(run(&w.hub, FlowKind::IncomingEmail).await, (0, 0));
    deliver(
        &w,
        ANN,
        "Second",
        "2026-11-22T09:00:00Z",
        "<m4@fabrikam.com>",
    );
    assert_eq!(run(&w.hub, FlowKind::IncomingEmail).await, (1, 0));
    assert_eq!(emails(&w).len(), rows.len() + 1);
}

#[tokio::test]
async fn outgoing_email_pending_send_is_sent_through_the_mailbox_once_and_marked_sent() {
    let w = enabled(|_| {}).await;
    let activity = w
        .sim
        .dynamics()
        .insert(
            "emails",
            json!({"subject": "Your quote", "description": "<p>Attached.</p>", "directioncode": true,
                   "sender": ANN, "torecipients": BOB, "statecode": 1, "statuscode": 6}),
        )
        .unwrap();
    // A draft is not sent.
    w.sim.dynamics().insert(
        "emails",
        json!({"subject": "Draft", "directioncode": true, "sender": ANN, "torecipients": BOB,
               "statecode": 0, "statuscode": 1}),
    );
    assert_eq!(run(&w.hub, FlowKind::OutgoingEmail).await, (1, 0));
    let received: Vec<_> = w
        .sim
        .ews()
        .items(BOB, "inbox")
        .into_iter()
        .filter(|(_, _, subject)| subject == "Your quote")
        .collect();
    assert_eq!(received.len(), 1, "delivered to Bob");
    assert!(
        w.sim
            .ews()
            .items(ANN, "sentitems")
            .iter()
            .any(|(_, _, s)| s == "Your quote"),
        "a copy in Ann's Sent Items"
    );
    assert!(
        !w.sim
            .ews()
            .items(BOB, "inbox")
            .iter()
            .any(|(_, _, s)| s == "Draft"),
        "a draft is not sent"
    );
    let row = w.sim.dynamics().get("emails", &activity).unwrap();
    assert_eq!(
        (row["statecode"].clone(), row["statuscode"].clone()),
        (json!(1), json!(3)),
        "marked Sent: {row}"
    );
    assert!(row["actualend"].is_string(), "when it was sent: {row}");
    // Marked sent: the next cycles send nothing (the first notes it left the pending ones).
    assert_eq!(run(&w.hub, FlowKind::OutgoingEmail).await.1, 0);
    assert_eq!(run(&w.hub, FlowKind::OutgoingEmail).await, (0, 0));
    assert_eq!(
        w.sim
            .ews()
            .items(BOB, "inbox")
            .iter()
            .filter(|(_, _, s)| s == "Your quote")
            .count(),
        1
    );
}

/// The account of profile `exch` that sends ("Use same settings for Outgoing" off).
const SENDER: &str = "sender@contoso.com";
const SENDER_PASSWORD: &str = "Sender-Passw0rd!";

/// Profile `exch` (Process Email From 2026-11-01) whose outgoing e-mail goes as its own
/// account, [`SENDER`], entered with `outgoing_secret`; the mapper installed.
async fn with_outgoing_account(w: &World, outgoing_secret: &str) {
    w.sim.ews().add_account(SENDER, SENDER_PASSWORD, true);
    common::install(&w.hub, "dynamics-exchange").await;
    let mut s = onprem(&w.sim);
    s.process_email_from = Some("2026-11-01T00:00:00Z".into());
    s.same_settings_for_outgoing = false;
    s.outgoing = Some(
        serde_json::from_value(json!({"credentials": "profile", "username": SENDER})).unwrap(),
    );
    let secrets = ProfileSecrets {
        outgoing: Some(SecretString::new(outgoing_secret)),
        ..secret()
    };
    profiles::create(&w.hub, Actor::Msp, "exch", None, s, secrets)
        .await
        .unwrap();
}

/// Enters the outgoing account's secret of profile `exch` again.
async fn enter_outgoing_secret(w: &World, outgoing_secret: &str) {
    let p = profiles::get(&w.hub, Actor::Msp, "exch").await.unwrap();
    profiles::update(
        &w.hub,
        Actor::Msp,
        "exch",
        p.settings,
        ProfileSecrets {
            incoming: None,
            outgoing: Some(SecretString::new(outgoing_secret)),
        },
    )
    .await
    .unwrap();
}

/// Whether the processing profile `kind` of Ann's mailbox runs (one never started has none).
async fn processing(w: &World, kind: FlowKind) -> bool {
    match syncbridge::engine::profiles::settings(w.hub.store(), &profile(kind)).await {
        Ok(p) => p.enabled,
        Err(syncbridge::store::StoreError::NotFound { .. }) => false,
        Err(e) => panic!("{e}"),
    }
}

/// Ann's test after Test & Enable ran: its statuses, then the Dataverse row's.
async fn tested(w: &World) -> (mailboxes::MailboxTest, (Value, Value)) {
    let t = mailboxes::test_of(w.hub.store(), &id(ANN))
        .await
        .unwrap()
        .unwrap();
    let row = w
        .sim
        .dynamics()
        .get("mailboxes", crate::flow3::ANN)
        .unwrap();
    (
        t,
        (
            row["incomingemailstatus"].clone(),
            row["outgoingemailstatus"].clone(),
        ),
    )
}

#[tokio::test]
async fn outgoing_email_is_sent_with_the_profiles_outgoing_account() {
    let w = world().await;
    with_outgoing_account(&w, SENDER_PASSWORD).await;
    let w = configure_defaults(w).await;
    mailboxes::apply_defaults(&w.hub, Actor::Msp, &[id(ANN)], true)
        .await
        .unwrap();
    assert_eq!(run_tests(&w.hub).await.succeeded, 1);
    // The incoming account's password changes: only the outgoing account can send now.
    w.sim
        .ews()
        .add_account("svc@contoso.com", "changed-elsewhere", true);
    w.sim.dynamics().insert(
        "emails",
        json!({"subject": "Sent by the outgoing account", "directioncode": true, "sender": ANN,
               "torecipients": BOB, "statecode": 1, "statuscode": 6}),
    );
    assert_eq!(run(&w.hub, FlowKind::OutgoingEmail).await, (1, 0));
    assert!(
        w.sim
            .ews()
            .items(BOB, "inbox")
            .iter()
            .any(|(_, _, s)| s == "Sent by the outgoing account"),
        "delivered to Bob"
    );
}

#[tokio::test]
async fn test_and_enable_checks_the_outgoing_account_without_sending_mail() {
    let w = world().await;
    const WRONG: &str = "not-the-senders-password";
    with_outgoing_account(&w, WRONG).await;
    let w = configure_defaults(w).await;
    let ann = id(ANN);
    mailboxes::apply_defaults(&w.hub, Actor::Msp, std::slice::from_ref(&ann), true)
        .await
        .unwrap();
    w.sim.dynamics().insert(
        "emails",
        json!({"subject": "Waiting to be sent", "directioncode": true, "sender": ANN,
               "torecipients": BOB, "statecode": 1, "statuscode": 6}),
    );
    let run = run_tests(&w.hub).await;
    assert_eq!(
        (run.succeeded, run.failed, run.postponed),
        (1, 0, 0),
        "incoming e-mail works, so the mailbox is enabled: {run:?}"
    );
    assert_eq!(run.processing, 5, "everything but outgoing e-mail starts");
    assert!(processing(&w, FlowKind::IncomingEmail).await);
    assert!(!processing(&w, FlowKind::OutgoingEmail).await);
    let (t, row) = tested(&w).await;
    assert_eq!(
        (t.incoming_status, t.outgoing_status, t.act_status),
        (SUCCESS, FAILURE, SUCCESS)
    );
    assert_eq!(row, (json!(1), json!(2)), "the Dataverse row says so too");
    assert_eq!(t.error_class.as_deref(), Some("outgoing"));
    assert_eq!(t.error_code.as_deref(), Some("401"));
    let (message, remedy) = (t.error_message.unwrap(), t.error_remedy.unwrap());
    assert!(
        message.contains("outgoing account") && message.contains(SENDER),
        "{message}"
    );
    assert!(
        remedy.contains("outgoing") && remedy.contains(SENDER) && remedy.contains("exch"),
        "{remedy}"
    );
    assert!(!format!("{message}{remedy}").contains(WRONG), "no secret");
    let open = alerts::list(w.hub.store(), None, Some(&ann), false)
        .await
        .unwrap();
    assert!(
        open.iter()
            .any(|a| a.code == "mailbox_outgoing_failed" && a.message.contains(SENDER)),
        "the owner's alert names the outgoing account: {open:?}"
    );
    // The check sent nothing.
    assert!(w.sim.ews().items(ANN, "sentitems").is_empty());
    assert!(w.sim.ews().items(BOB, "inbox").is_empty());

    // The right password: outgoing e-mail passes and starts.
    enter_outgoing_secret(&w, SENDER_PASSWORD).await;
    mailboxes::test_and_enable(&w.hub, Actor::Msp, std::slice::from_ref(&ann))
        .await
        .unwrap();
    let run = run_tests(&w.hub).await;
    assert_eq!((run.succeeded, run.processing), (1, 6), "{run:?}");
    let (t, row) = tested(&w).await;
    assert_eq!(
        (t.incoming_status, t.outgoing_status, t.act_status),
        (SUCCESS, SUCCESS, SUCCESS)
    );
    assert_eq!(row, (json!(1), json!(1)));
    assert_eq!((t.error_class, t.error_code), (None, None));
    assert!(processing(&w, FlowKind::OutgoingEmail).await);
    assert!(
        w.sim.ews().items(ANN, "sentitems").is_empty(),
        "still nothing sent"
    );
    assert!(alerts::list(w.hub.store(), None, Some(&ann), false)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_message_dynamics_refuses_is_moved_to_undeliverable_when_the_profile_says_so() {
    let w = enabled(|_| {}).await;
    let bad = deliver(
        &w,
        ANN,
        "Refused",
        "2026-11-20T09:00:00Z",
        "<bad@fabrikam.com>",
    );
    w.sim
        .add_fault(FaultRule::sequence("POST */emails", &[400]))
        .unwrap();
    let (_, failed) = run(&w.hub, FlowKind::IncomingEmail).await;
    assert_eq!(failed, 1);
    let inbox = w.sim.ews().items(ANN, "inbox");
    assert!(
        !inbox.iter().any(|(i, _, _)| *i == bad),
        "moved out of the Inbox: {inbox:?}"
    );
    let moved: Vec<_> = w
        .sim
        .ews()
        .items(ANN, "Undeliverable")
        .into_iter()
        .filter(|(_, _, s)| s == "Refused")
        .collect();
    assert_eq!(moved.len(), 1, "in the Undeliverable folder");
    // Nothing left to retry, nothing tracked.
    assert_eq!(run(&w.hub, FlowKind::IncomingEmail).await, (0, 0));
    assert!(with_message_id(&emails(&w), "<bad@fabrikam.com>").is_empty());
    // The operator's view names it and why.
    let view = dynamics_flow::processing(&w.hub, Actor::Msp, &id(ANN))
        .await
        .unwrap();
    let incoming = view.iter().find(|p| p.kind == "incoming-email").unwrap();
    assert_eq!(incoming.undeliverable.len(), 1, "{incoming:?}");
    assert_eq!(incoming.undeliverable[0].message_id, bad);
    assert!(!incoming.undeliverable[0].error.is_empty());
}

#[tokio::test]
async fn without_the_undeliverable_setting_a_failed_message_stays_and_is_retried() {
    let w = enabled(|s| s.move_failed_to_undeliverable = false).await;
    let msg = deliver(
        &w,
        ANN,
        "Retried",
        "2026-11-20T09:00:00Z",
        "<retry@fabrikam.com>",
    );
    w.sim
        .add_fault(FaultRule::sequence("POST */emails", &[400]))
        .unwrap();
    assert_eq!(run(&w.hub, FlowKind::IncomingEmail).await.1, 1);
    assert!(w
        .sim
        .ews()
        .items(ANN, "inbox")
        .iter()
        .any(|(i, _, _)| *i == msg));
    // The next cycle retries it and tracks it.
    assert_eq!(run(&w.hub, FlowKind::IncomingEmail).await, (1, 0));
    assert_eq!(
        with_message_id(&emails(&w), "<retry@fabrikam.com>").len(),
        1
    );
}

#[tokio::test]
async fn exchange_refusing_the_mailbox_disables_only_that_mailbox_with_an_alert() {
    let w = enabled(|_| {}).await;
    deliver(&w, ANN, "Hello", "2026-11-20T09:00:00Z", "<h@fabrikam.com>");
    w.sim
        .add_fault(FaultRule::rate("POST /EWS/Exchange.asmx", 401, 1.0))
        .unwrap();
    let record = common::run_now(&w.hub, &profile(FlowKind::IncomingEmail), RunMode::Run).await;
    assert!(common::outcome(record).is_err(), "the run failed");
    let m = mailboxes::get(&w.hub, Actor::Msp, &id(ANN)).await.unwrap();
    assert!(!m.mailbox.enabled, "the mailbox is disabled");
    assert_eq!(m.mailbox.status, "disabled-auth");
    let connection = w.hub.store().get_connection("exch-mail").await.unwrap();
    assert!(
        w.hub
            .store()
            .connection_stopped(&connection.id)
            .await
            .unwrap()
            .is_none(),
        "the profile's connection serves the other mailboxes"
    );
    let settings =
        syncbridge::engine::profiles::settings(w.hub.store(), &profile(FlowKind::IncomingEmail))
            .await
            .unwrap();
    assert!(!settings.enabled, "its processing stopped");
    let wall = alerts::list(w.hub.store(), None, Some(&id(ANN)), false)
        .await
        .unwrap();
    let refused = wall
        .iter()
        .find(|a| a.code == "mailbox_processing_refused")
        .expect("an alert on the mailbox's wall");
    assert!(
        refused.message.contains("dynamics diagnose"),
        "{}",
        refused.message
    );
}

#[tokio::test]
async fn turning_incoming_email_off_stops_its_processing_and_keeps_its_links() {
    let w = enabled(|_| {}).await;
    deliver(&w, ANN, "Kept", "2026-11-20T09:00:00Z", "<k@fabrikam.com>");
    assert_eq!(run(&w.hub, FlowKind::IncomingEmail).await, (1, 0));
    mailboxes::edit_many(
        &w.hub,
        Actor::Msp,
        &[id(ANN)],
        &mailboxes::MailboxEdit {
            incoming: Some(mailboxes::Delivery::None),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let s = |kind| {
        let hub = w.hub.clone();
        async move {
            syncbridge::engine::profiles::settings(hub.store(), &profile(kind))
                .await
                .unwrap()
                .enabled
        }
    };
    assert!(!s(FlowKind::IncomingEmail).await, "incoming stopped");
    assert!(s(FlowKind::OutgoingEmail).await, "outgoing goes on");
    let links = syncbridge::engine::ledger::Ledger::new(w.hub.store().clone())
        .linked_count(&profile(FlowKind::IncomingEmail))
        .await
        .unwrap();
    assert_eq!(links, 1, "its links are kept");
}

#[tokio::test]
async fn nothing_is_processed_before_test_and_enable_succeeds() {
    let w = configure(world().await).await;
    common::install(&w.hub, "dynamics-exchange").await;
    let derived = dynamics_flow::rows(&w.hub, &id(ANN)).await.unwrap();
    assert!(derived.is_empty(), "never tested: no processing");
    mailboxes::apply_defaults(&w.hub, Actor::Msp, &[id(BOB)], true)
        .await
        .unwrap();
    let run = run_tests(&w.hub).await;
    assert_eq!(run.failed, 1, "Bob's e-mail is not approved: {run:?}");
    assert!(
        dynamics_flow::rows(&w.hub, &id(BOB))
            .await
            .unwrap()
            .is_empty(),
        "a mailbox whose test failed gets no processing"
    );
    // Approved and tested again, it passes and its processing starts.
    mailboxes::approve_many(&w.hub, Actor::Msp, &[id(BOB)])
        .await
        .unwrap();
    mailboxes::test_and_enable(&w.hub, Actor::Msp, &[id(BOB)])
        .await
        .unwrap();
    assert_eq!(run_tests(&w.hub).await.processing, 6);
    assert_eq!(
        dynamics_flow::rows(&w.hub, &id(BOB)).await.unwrap().len(),
        6
    );
}

/// An Exchange Online profile over the Graph simulator (Process Email From 2026-11-01).
fn online(w: &World) -> EmailServerSettings {
    serde_json::from_value(json!({
        "name": "Exchange Online", "server_type": "exchange-online",
        "incoming_location": w.sim.graph_url(),
        "incoming": {"credentials": "profile", "username": APP_ID, "protocol": "oauth"},
        "tenant": TENANT, "token_url": w.sim.token_url(TENANT),
        "process_email_from": "2026-11-01T00:00:00Z",
        "allow_credentials_over_http": true, "allow_private_network": true
    }))
    .unwrap()
}

/// The world with the Exchange Online profile `exch` (its own app secret), the mapper and the
/// `graph` connector installed, and the organization's defaults.
async fn online_world() -> World {
    let w = world().await;
    common::install(&w.hub, "dynamics-exchange").await;
    common::install(&w.hub, "graph").await;
    profiles::create(
        &w.hub,
        Actor::Msp,
        "exch",
        None,
        online(&w),
        ProfileSecrets {
            incoming: Some(SecretString::new(APP_SECRET)),
            outgoing: None,
        },
    )
    .await
    .unwrap();
    configure_defaults(w).await
}

/// Ann's e-mail (in and out, no appointments, contacts or tasks) on profile `exch`, tested.
async fn e_mail_only(w: &World) -> mailboxes::TestsRun {
    let ann = id(ANN);
    mailboxes::edit_many(
        &w.hub,
        Actor::Msp,
        std::slice::from_ref(&ann),
        &mailboxes::MailboxEdit {
            server_profile: Some("exch".into()),
            incoming: Some(mailboxes::Delivery::ServerSideSync),
            outgoing: Some(mailboxes::Delivery::ServerSideSync),
            act: Some(mailboxes::Delivery::None),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    mailboxes::test_and_enable(&w.hub, Actor::Msp, std::slice::from_ref(&ann))
        .await
        .unwrap();
    run_tests(&w.hub).await
}

#[tokio::test]
async fn test_and_enable_checks_the_outgoing_app_of_exchange_online_without_sending_mail() {
    let w = world().await;
    common::install(&w.hub, "dynamics-exchange").await;
    common::install(&w.hub, "graph").await;
    const WRONG: &str = "not-the-sender-apps-secret";
    let mut settings = online(&w);
    settings.same_settings_for_outgoing = false;
    settings.outgoing = Some(
        serde_json::from_value(
            json!({"credentials": "profile", "username": SENDER_APP_ID, "protocol": "oauth"}),
        )
        .unwrap(),
    );
    let secrets = ProfileSecrets {
        incoming: Some(SecretString::new(APP_SECRET)),
        outgoing: Some(SecretString::new(WRONG)),
    };
    profiles::create(&w.hub, Actor::Msp, "exch", None, settings, secrets)
        .await
        .unwrap();
    let w = configure_defaults(w).await;
    let run = e_mail_only(&w).await;
    assert_eq!(
        (run.succeeded, run.processing),
        (1, 1),
        "incoming only: {run:?}"
    );
    let (t, row) = tested(&w).await;
    assert_eq!((t.incoming_status, t.outgoing_status), (SUCCESS, FAILURE));
    assert_eq!(row, (json!(1), json!(2)));
    assert_eq!(
        (t.error_class.as_deref(), t.error_code.as_deref()),
        (Some("outgoing"), Some("401"))
    );
    let (message, remedy) = (t.error_message.unwrap(), t.error_remedy.unwrap());
    assert!(
        message.contains("outgoing") && message.contains(SENDER_APP_ID),
        "{message}"
    );
    assert!(
        remedy.contains("exch") && remedy.contains("outgoing"),
        "{remedy}"
    );
    assert!(!format!("{message}{remedy}").contains(WRONG), "no secret");
    assert!(!processing(&w, FlowKind::OutgoingEmail).await);
    assert!(
        w.sim.graph().messages(TENANT, "u-ann").is_empty(),
        "the check sent nothing"
    );

    enter_outgoing_secret(&w, SENDER_APP_SECRET).await;
    let run = e_mail_only(&w).await;
    assert_eq!((run.succeeded, run.processing), (1, 2), "{run:?}");
    let (t, row) = tested(&w).await;
    assert_eq!((t.incoming_status, t.outgoing_status), (SUCCESS, SUCCESS));
    assert_eq!(row, (json!(1), json!(1)));
    assert_eq!(t.error_class, None);
    assert!(w.sim.graph().messages(TENANT, "u-ann").is_empty());
}

#[tokio::test]
async fn exchange_online_mailboxes_track_and_send_e_mail_through_graph() {
    let w = online_world().await;
    let tested = e_mail_only(&w).await;
    assert_eq!((tested.succeeded, tested.processing), (1, 2), "{tested:?}");

    let graph = w.sim.graph();
    graph
        .add_message(
            TENANT,
            "u-ann",
            json!({"subject": "Old", "receivedDateTime": "2026-10-01T08:00:00Z",
                   "internetMessageId": "<old@fabrikam.com>",
                   "from": {"emailAddress": {"address": "customer@fabrikam.com"}},
                   "toRecipients": [{"emailAddress": {"address": ANN}}]}),
        )
        .unwrap();
    graph
        .add_message(
            TENANT,
            "u-ann",
            json!({"subject": "New order", "receivedDateTime": "2026-11-25T08:00:00Z",
                   "internetMessageId": "<order@fabrikam.com>",
                   "body": {"contentType": "html", "content": "<p>5 printers</p>"},
                   "from": {"emailAddress": {"address": "customer@fabrikam.com"}},
                   "toRecipients": [{"emailAddress": {"address": ANN}}]}),
        )
        .unwrap();
    assert_eq!(run(&w.hub, FlowKind::IncomingEmail).await, (1, 0));
    let rows = emails(&w);
    assert!(with_message_id(&rows, "<old@fabrikam.com>").is_empty());
    let tracked = with_message_id(&rows, "<order@fabrikam.com>");
    assert_eq!(tracked.len(), 1, "{rows:#?}");
    assert_eq!(tracked[0]["sender"], json!("customer@fabrikam.com"));
    assert_eq!(
        run(&w.hub, FlowKind::IncomingEmail).await,
        (0, 0),
        "the delta round finds nothing new"
    );

    let activity = w
        .sim
        .dynamics()
        .insert(
            "emails",
            json!({"subject": "Re: New order", "description": "<p>Shipped.</p>", "directioncode": true,
                   "sender": ANN, "torecipients": "customer@fabrikam.com", "statecode": 1, "statuscode": 6}),
        )
        .unwrap();
    assert_eq!(run(&w.hub, FlowKind::OutgoingEmail).await, (1, 0));
    let sent: Vec<Value> = graph
        .messages(TENANT, "u-ann")
        .into_iter()
        .filter(|m| m["subject"] == json!("Re: New order"))
        .collect();
    assert_eq!(sent.len(), 1, "the copy in Sent Items");
    assert_eq!(sent[0]["parentFolderId"], json!("sentitems"));
    let row = w.sim.dynamics().get("emails", &activity).unwrap();
    assert_eq!(row["statuscode"], json!(3), "marked Sent: {row}");
}

/// Ann's systemuser in Dynamics: the owner of her appointments, tasks and contacts.
const ANN_USER: &str = "44444444-0000-4000-8000-000000000001";
/// Another user of the organization.
const OTHER_USER: &str = "44444444-0000-4000-8000-000000000099";

/// The ids of the items in Ann's calendar with this subject.
fn in_calendar(w: &World, subject: &str) -> Vec<String> {
    w.sim
        .ews()
        .items(ANN, "calendar")
        .into_iter()
        .filter(|(_, _, s)| s == subject)
        .map(|(id, _, _)| id)
        .collect()
}

pub(crate) fn owned_by_ann(w: &World) {
    for (id, address, first) in [(ANN_USER, ANN, "Ann"), (OTHER_USER, "cy@contoso.com", "Cy")] {
        w.sim
            .dynamics()
            .insert(
                "systemusers",
                json!({"systemuserid": id, "internalemailaddress": address,
                       "firstname": first, "lastname": "Archer"}),
            )
            .expect("a valid systemuser");
    }
}

fn calendar_scope() -> String {
    format!(
        "calendar:mailbox={ANN},past={},future={}",
        dynamics_flow::CALENDAR_PAST_DAYS,
        dynamics_flow::CALENDAR_FUTURE_DAYS
    )
}

#[tokio::test]
async fn the_owners_appointments_reach_the_calendar_and_outlook_edits_flow_back() {
    let w = enabled(|_| {}).await;
    owned_by_ann(&w);
    let row = w
        .sim
        .dynamics()
        .insert(
            "appointments",
            json!({"subject": "Quarterly review", "scheduledstart": "2026-12-01T09:00:00Z",
                   "scheduledend": "2026-12-01T10:00:00Z", "location": "Room 1",
                   "description": "<p>Bring the numbers</p>", "ownerid@odata.bind": format!("/systemusers({ANN_USER})"),
                   "statecode": 3, "statuscode": 5}),
        )
        .unwrap();
    w.sim
        .dynamics()
        .insert(
            "appointments",
            json!({"subject": "Someone else's", "scheduledstart": "2026-12-01T09:00:00Z",
               "scheduledend": "2026-12-01T10:00:00Z",
               "ownerid@odata.bind": format!("/systemusers({OTHER_USER})"),
               "statecode": 3, "statuscode": 5}),
        )
        .expect("a valid appointment");
    assert_eq!(run(&w.hub, FlowKind::Appointments).await, (1, 0));
    let calendar = w.sim.ews().items(ANN, "calendar");
    let (event, _, _) = calendar
        .iter()
        .find(|(_, _, s)| s == "Quarterly review")
        .expect("in Ann's calendar")
        .clone();
    assert!(!calendar.iter().any(|(_, _, s)| s == "Someone else's"));
    assert_eq!(run(&w.hub, FlowKind::Appointments).await, (0, 0), "no echo");

    // In Outlook: moved by two hours and renamed; both flow back to Dynamics.
    common::by_hand::edit(
        &w.hub,
        "exch-mail",
        &calendar_scope(),
        &event,
        &["start", "end", "subject"],
        |b| {
            let ItemBody::Event(e) = b else {
                unreachable!()
            };
            e.start.utc = "2026-12-01T11:00:00Z".into();
            e.end.utc = "2026-12-01T12:00:00Z".into();
            e.subject = Some("Review, moved".into());
        },
    )
    .await;
    assert_eq!(run(&w.hub, FlowKind::Appointments).await.1, 0);
    let back = w.sim.dynamics().get("appointments", &row).unwrap();
    assert_eq!(back["subject"], json!("Review, moved"), "{back}");
    assert!(
        back["scheduledstart"]
            .as_str()
            .unwrap()
            .starts_with("2026-12-01T11:00:00"),
        "{back}"
    );
    assert_eq!(back["location"], json!("Room 1"), "untouched fields stay");
    assert_eq!(
        run(&w.hub, FlowKind::Appointments).await,
        (0, 0),
        "no ping-pong"
    );
    assert_eq!(
        w.sim
            .ews()
            .items(ANN, "calendar")
            .iter()
            .filter(|(_, _, s)| s.starts_with("Review"))
            .count(),
        1,
        "no duplicate"
    );
}

#[tokio::test]
async fn the_owners_recurring_appointments_reach_the_calendar_as_one_series() {
    let w = enabled(|_| {}).await;
    owned_by_ann(&w);
    let master = w
        .sim
        .dynamics()
        .insert(
            "recurringappointmentmasters",
            json!({"subject": "Weekly sync", "starttime": "2026-12-01T09:00:00Z",
                   "endtime": "2026-12-01T10:00:00Z", "patternstartdate": "2026-12-01",
                   "recurrencepatterntype": 1, "interval": 1, "daysofweekmask": 4,
                   "patternendtype": 2, "occurrences": 10, "location": "Room 2",
                   "ownerid@odata.bind": format!("/systemusers({ANN_USER})"),
                   "statecode": 3, "statuscode": 5}),
        )
        .unwrap();
    assert_eq!(run(&w.hub, FlowKind::RecurringAppointments).await, (1, 0));
    let series = in_calendar(&w, "Weekly sync");
    assert_eq!(
        series.len(),
        1,
        "one series, never its occurrences: {series:?}"
    );
    let id = &series[0];
    assert_eq!(
        w.sim.ews().item_prop(id, "CalendarItemType").as_deref(),
        Some("RecurringMaster")
    );
    assert_eq!(
        run(&w.hub, FlowKind::RecurringAppointments).await,
        (0, 0),
        "no echo"
    );
    // The single appointments' profile leaves the series alone.
    assert_eq!(run(&w.hub, FlowKind::Appointments).await, (0, 0));

    // Renamed in Dynamics: the series is renamed in the mailbox, not duplicated.
    let renamed = reqwest::Client::new()
        .patch(format!(
            "{}/api/data/v9.2/recurringappointmentmasters({master})",
            w.sim.base_url()
        ))
        .bearer_auth(crate::flow3::TOKEN)
        .header("Content-Type", "application/json")
        .body(json!({"subject": "Weekly sync, new time"}).to_string())
        .send()
        .await
        .unwrap();
    assert!(renamed.status().is_success(), "{renamed:?}");
    assert_eq!(run(&w.hub, FlowKind::RecurringAppointments).await, (1, 0));
    assert_eq!(
        w.sim.ews().item_prop(id, "Subject").as_deref(),
        Some("Weekly sync, new time")
    );
    assert_eq!(
        w.sim
            .ews()
            .items(ANN, "calendar")
            .iter()
            .filter(|(_, _, s)| s.starts_with("Weekly sync"))
            .count(),
        1
    );
}

/// PATCHes a Dataverse row over the wire, as a Dynamics user's edit.
async fn edit_in_dynamics(w: &World, set: &str, id: &str, body: Value) {
    let r = reqwest::Client::new()
        .patch(format!("{}/api/data/v9.2/{set}({id})", w.sim.base_url()))
        .bearer_auth(crate::flow3::TOKEN)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{r:?}");
}

/// Ann's weekly series in Dynamics (Tuesdays 09:00–10:00 UTC from 1 December, ten times) with
/// two of Dataverse's exception rows: the second occurrence moved to the afternoon and renamed,
/// the third canceled. Answers the master's and the moved occurrence's row ids.
fn series_with_exceptions(w: &World) -> (String, String) {
    let master = w
        .sim
        .dynamics()
        .insert(
            "recurringappointmentmasters",
            json!({"subject": "Weekly sync", "starttime": "2026-12-01T09:00:00Z",
                   "endtime": "2026-12-01T10:00:00Z", "patternstartdate": "2026-12-01",
                   "recurrencepatterntype": 1, "interval": 1, "daysofweekmask": 4,
                   "patternendtype": 2, "occurrences": 10,
                   "ownerid@odata.bind": format!("/systemusers({ANN_USER})"),
                   "statecode": 3, "statuscode": 5}),
        )
        .unwrap();
    let exception = |original: &str, start: &str, end: &str, extra: Value| {
        let mut row = json!({"subject": "Weekly sync (afternoon)", "scheduledstart": start,
                             "scheduledend": end, "instancetypecode": 3, "seriesid": master,
                             "originalstartdate": original,
                             "ownerid@odata.bind": format!("/systemusers({ANN_USER})"),
                             "statecode": 3, "statuscode": 5});
        for (k, v) in extra.as_object().unwrap() {
            row[k] = v.clone();
        }
        w.sim.dynamics().insert("appointments", row).unwrap()
    };
    let moved = exception(
        "2026-12-08T09:00:00Z",
        "2026-12-08T13:00:00Z",
        "2026-12-08T14:00:00Z",
        json!({}),
    );
    exception(
        "2026-12-15T09:00:00Z",
        "2026-12-15T09:00:00Z",
        "2026-12-15T10:00:00Z",
        json!({"statecode": 2, "statuscode": 4}),
    );
    (master, moved)
}

#[tokio::test]
async fn a_series_modified_occurrences_in_dynamics_reach_the_mailbox() {
    let w = enabled(|_| {}).await;
    owned_by_ann(&w);
    let (_, moved) = series_with_exceptions(&w);
    assert_eq!(run(&w.hub, FlowKind::RecurringAppointments).await, (1, 0));
    let series = in_calendar(&w, "Weekly sync");
    assert_eq!(series.len(), 1, "one series: {series:?}");
    let id = &series[0];
    assert_eq!(
        w.sim.ews().modified_occurrences(id),
        [(
            "2026-12-08T09:00:00Z".to_owned(),
            "2026-12-08T13:00:00Z".to_owned(),
            Some("Weekly sync (afternoon)".to_owned())
        )],
        "the moved and renamed occurrence"
    );
    let starts = w.sim.ews().occurrence_starts(id);
    assert!(
        !starts.contains(&"2026-12-15T09:00:00Z".to_owned()),
        "the canceled occurrence is deleted: {starts:?}"
    );
    assert_eq!(starts.len(), 9, "{starts:?}");
    assert_eq!(
        run(&w.hub, FlowKind::RecurringAppointments).await,
        (0, 0),
        "no echo"
    );
    assert_eq!(
        run(&w.hub, FlowKind::Appointments).await,
        (0, 0),
        "an exception is not a single appointment"
    );

    // Only the occurrence changes in Dynamics (its master's row is untouched): the series
    // follows.
    edit_in_dynamics(
        &w,
        "appointments",
        &moved,
        json!({"scheduledstart": "2026-12-08T15:00:00Z", "scheduledend": "2026-12-08T16:00:00Z"}),
    )
    .await;
    assert_eq!(run(&w.hub, FlowKind::RecurringAppointments).await, (1, 0));
    assert_eq!(
        w.sim.ews().modified_occurrences(id),
        [(
            "2026-12-08T09:00:00Z".to_owned(),
            "2026-12-08T15:00:00Z".to_owned(),
            Some("Weekly sync (afternoon)".to_owned())
        )]
    );
    assert_eq!(run(&w.hub, FlowKind::RecurringAppointments).await, (0, 0));
    assert_eq!(in_calendar(&w, "Weekly sync").len(), 1, "no duplicate");

    // The move is taken back in Dynamics (the exception canceled): the occurrence is gone.
    edit_in_dynamics(
        &w,
        "appointments",
        &moved,
        json!({"statecode": 2, "statuscode": 4}),
    )
    .await;
    assert_eq!(run(&w.hub, FlowKind::RecurringAppointments).await, (1, 0));
    assert!(w.sim.ews().modified_occurrences(id).is_empty());
    assert_eq!(w.sim.ews().occurrence_starts(id).len(), 8);
}

#[tokio::test]
async fn a_series_modified_occurrences_reach_exchange_online_through_graph() {
    let w = online_world().await;
    let ann = id(ANN);
    mailboxes::apply_defaults(&w.hub, Actor::Msp, std::slice::from_ref(&ann), true)
        .await
        .unwrap();
    let tested = run_tests(&w.hub).await;
    assert_eq!((tested.succeeded, tested.processing), (1, 6), "{tested:?}");
    owned_by_ann(&w);
    series_with_exceptions(&w);
    assert_eq!(run(&w.hub, FlowKind::RecurringAppointments).await, (1, 0));

    let events = w.sim.graph().events(TENANT, "u-ann");
    let masters: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == json!("seriesMaster") && e["subject"] == json!("Weekly sync"))
        .collect();
    assert_eq!(masters.len(), 1, "one series: {events:#?}");
    let master = masters[0];
    let exceptions: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == json!("exception") && e["seriesMasterId"] == master["id"])
        .collect();
    assert_eq!(exceptions.len(), 1, "{events:#?}");
    assert_eq!(exceptions[0]["subject"], json!("Weekly sync (afternoon)"));
    assert!(
        exceptions[0]["start"]["dateTime"]
            .as_str()
            .unwrap()
            .starts_with("2026-12-08T13:00:00"),
        "{}",
        exceptions[0]
    );
    assert!(
        exceptions[0]["originalStart"]
            .as_str()
            .unwrap()
            .starts_with("2026-12-08T09:00:00"),
        "{}",
        exceptions[0]
    );
    let cancelled = master["cancelledOccurrences"].to_string();
    assert!(cancelled.contains("2026-12-15"), "{master}");
    assert_eq!(
        run(&w.hub, FlowKind::RecurringAppointments).await,
        (0, 0),
        "no echo"
    );
}

#[tokio::test]
async fn appointments_and_series_reach_the_calendar_in_the_zone_they_were_entered_in() {
    let w = enabled(|_| {}).await;
    owned_by_ann(&w);
    // Tuesdays 09:00–10:00 in Berlin (code 110) from 3 March 2026, ten times, the second
    // Tuesday after the change to summer time (7 April) deleted; the date column is the
    // user's midnight, as Dataverse answers a UserLocal one.
    w.sim
        .dynamics()
        .insert(
            "recurringappointmentmasters",
            json!({"subject": "Berlin stand-up", "starttime": "2026-03-03T08:00:00Z",
                   "endtime": "2026-03-03T09:00:00Z", "patternstartdate": "2026-03-02T23:00:00Z",
                   "recurrencepatterntype": 1, "interval": 1, "daysofweekmask": 4,
                   "patternendtype": 2, "occurrences": 10, "utcconversiontimezonecode": 110,
                   "deletedexceptionslist": "2026-04-07",
                   "ownerid@odata.bind": format!("/systemusers({ANN_USER})"),
                   "statecode": 3, "statuscode": 5}),
        )
        .unwrap();
    assert_eq!(run(&w.hub, FlowKind::RecurringAppointments).await, (1, 0));
    let series = in_calendar(&w, "Berlin stand-up");
    assert_eq!(series.len(), 1, "{series:?}");
    let id = &series[0];
    assert_eq!(
        w.sim.ews().item_attr(id, "StartTimeZone", "Id").as_deref(),
        Some("W. Europe Standard Time")
    );
    let starts = w.sim.ews().occurrence_starts(id);
    assert_eq!(
        starts,
        [
            "2026-03-03T08:00:00Z",
            "2026-03-10T08:00:00Z",
            "2026-03-17T08:00:00Z",
            "2026-03-24T08:00:00Z",
            "2026-03-31T07:00:00Z",
            "2026-04-14T07:00:00Z",
            "2026-04-21T07:00:00Z",
            "2026-04-28T07:00:00Z",
            "2026-05-05T07:00:00Z",
        ],
        "09:00 in Berlin on both sides of the change to summer time; 7 April deleted"
    );
    assert_eq!(
        run(&w.hub, FlowKind::RecurringAppointments).await,
        (0, 0),
        "no echo"
    );

    // A single appointment is named in its zone too.
    w.sim
        .dynamics()
        .insert(
            "appointments",
            json!({"subject": "Berlin review", "scheduledstart": "2026-12-03T08:00:00Z",
                   "scheduledend": "2026-12-03T09:00:00Z", "utcconversiontimezonecode": 110,
                   "ownerid@odata.bind": format!("/systemusers({ANN_USER})"),
                   "statecode": 3, "statuscode": 5}),
        )
        .unwrap();
    assert_eq!(run(&w.hub, FlowKind::Appointments).await, (1, 0));
    let single = in_calendar(&w, "Berlin review");
    assert_eq!(single.len(), 1, "{single:?}");
    assert_eq!(
        w.sim
            .ews()
            .item_attr(&single[0], "StartTimeZone", "Id")
            .as_deref(),
        Some("W. Europe Standard Time")
    );
    assert_eq!(
        w.sim.ews().item_prop(&single[0], "Start").as_deref(),
        Some("2026-12-03T08:00:00Z")
    );
    assert_eq!(run(&w.hub, FlowKind::Appointments).await, (0, 0), "no echo");
}

#[tokio::test]
async fn the_owners_tasks_and_contacts_reach_the_mailbox() {
    let w = enabled(|_| {}).await;
    owned_by_ann(&w);
    w.sim
        .dynamics()
        .insert(
        "tasks",
        json!({"subject": "Call Fabrikam back", "scheduledend": "2026-12-02T17:00:00Z",
               "ownerid@odata.bind": format!("/systemusers({ANN_USER})"), "statecode": 0, "statuscode": 2, "percentcomplete": 0}),
        )
        .expect("a valid task");
    w.sim
        .dynamics()
        .insert(
        "contacts",
        json!({"firstname": "Dan", "lastname": "Drake", "emailaddress1": "dan@fabrikam.com",
               "jobtitle": "Buyer", "ownerid@odata.bind": format!("/systemusers({ANN_USER})"), "statecode": 0, "statuscode": 1}),
        )
        .expect("a valid contact");
    assert_eq!(run(&w.hub, FlowKind::Tasks).await, (1, 0));
    assert_eq!(run(&w.hub, FlowKind::Contacts).await, (1, 0));
    assert!(w
        .sim
        .ews()
        .items(ANN, "tasks")
        .iter()
        .any(|(_, _, s)| s == "Call Fabrikam back"));
    let contacts = w.sim.ews().items(ANN, "contacts");
    assert!(
        contacts.iter().any(|(_, _, s)| s.contains("Dan")),
        "{contacts:?}"
    );
    assert_eq!(run(&w.hub, FlowKind::Tasks).await, (0, 0));
    assert_eq!(run(&w.hub, FlowKind::Contacts).await, (0, 0));
}

#[tokio::test]
async fn the_rest_api_shows_a_mailboxs_processing() {
    use reqwest::Method;
    use syncbridge::control::tokens::{self, Role};
    let w = enabled(|_| {}).await;
    deliver(
        &w,
        ANN,
        "Hello",
        "2026-11-20T09:00:00Z",
        "<api@fabrikam.com>",
    );
    run(&w.hub, FlowKind::IncomingEmail).await;
    let base = common::serve(syncbridge::server::router(w.hub.clone())).await;
    let (_, token) = tokens::create(w.hub.store(), "noc", Role::Viewer, None)
        .await
        .unwrap();
    let path = format!("/dynamics/mailboxes/{}/processing", id(ANN));
    let (status, body) = call(&base, token.as_str(), Method::GET, &path, None).await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "appointments",
            "contacts",
            "incoming-email",
            "outgoing-email",
            "recurring-appointments",
            "tasks"
        ],
        "by profile id"
    );
    let incoming = items
        .iter()
        .find(|i| i["kind"] == "incoming-email")
        .unwrap();
    assert_eq!(incoming["enabled"], json!(true));
    assert_eq!(
        incoming["interval_secs"],
        json!(300),
        "the profile's minimum polling interval"
    );
    assert_eq!(incoming["last_run"]["status"], json!("succeeded"));
    let appointments = items.iter().find(|i| i["kind"] == "appointments").unwrap();
    assert_eq!(
        appointments["interval_secs"],
        json!(600),
        "a calendar polls every 10 minutes at most"
    );
    let (status, _) = call(
        &base,
        token.as_str(),
        Method::GET,
        "/dynamics/mailboxes/nobody/processing",
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn e_mail_processing_on_postgresql() {
    let Some(url) = common::postgres_url("flow3_mail").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let w = enabled_in(world_on(common::hub_with(dir, &url).await).await, |_| {}).await;
    let delivered = [
        deliver(
            &w,
            ANN,
            "First",
            "2026-11-20T09:00:00Z",
            "<pg-1@fabrikam.com>",
        ),
        deliver(
            &w,
            ANN,
            "Second",
            "2026-11-20T10:00:00Z",
            "<pg-2@fabrikam.com>",
        ),
    ];
    // Dynamics takes one and refuses the other.
    w.sim
        .add_fault(FaultRule::sequence("POST */emails", &[0, 400]))
        .unwrap();
    let (applied, failed) = run(&w.hub, FlowKind::IncomingEmail).await;
    assert_eq!((applied, failed), (1, 1));
    assert_eq!(
        w.sim.ews().items(ANN, "Undeliverable").len(),
        1,
        "the refused one was moved"
    );
    w.sim.dynamics().insert(
        "emails",
        json!({"subject": "From PostgreSQL", "directioncode": true, "sender": ANN,
               "torecipients": BOB, "statecode": 1, "statuscode": 6}),
    );
    assert_eq!(run(&w.hub, FlowKind::OutgoingEmail).await, (1, 0));
    let view = dynamics_flow::processing(&w.hub, Actor::Msp, &id(ANN))
        .await
        .unwrap();
    let incoming = view.iter().find(|p| p.kind == "incoming-email").unwrap();
    assert_eq!(incoming.undeliverable.len(), 1);
    assert!(delivered.contains(&incoming.undeliverable[0].message_id));
    let outgoing = view.iter().find(|p| p.kind == "outgoing-email").unwrap();
    assert_eq!(outgoing.unmarked_sent, 0, "marked sent");
    assert!(emails(&w)
        .iter()
        .any(|e| e["subject"] == json!("From PostgreSQL") && e["statuscode"] == json!(3)));
}

#[tokio::test]
async fn exchange_failing_ten_polls_in_a_row_disables_the_mailbox_with_the_cause() {
    let w = enabled(|_| {}).await;
    w.sim
        .add_fault(FaultRule::malformed("POST /EWS/Exchange.asmx"))
        .unwrap();
    let mailbox = || async {
        mailboxes::get(&w.hub, Actor::Msp, &id(ANN))
            .await
            .unwrap()
            .mailbox
    };
    for attempt in 1..dynamics_flow::MAX_FAILED_RUNS {
        let record = common::run_now(&w.hub, &profile(FlowKind::IncomingEmail), RunMode::Run).await;
        assert!(common::outcome(record).is_err(), "attempt {attempt} fails");
        assert!(
            mailbox().await.enabled,
            "still tried again after {attempt} failures"
        );
    }
    let record = common::run_now(&w.hub, &profile(FlowKind::IncomingEmail), RunMode::Run).await;
    assert!(common::outcome(record).is_err());
    let m = mailbox().await;
    assert!(
        !m.enabled,
        "disabled after {} failures",
        dynamics_flow::MAX_FAILED_RUNS
    );
    assert_eq!(m.status, mailboxes::STATUS_PROCESSING_FAILED);
    assert!(m
        .status_detail
        .unwrap()
        .contains("10 synchronizations in a row failed"));
    let wall = alerts::list(w.hub.store(), None, Some(&id(ANN)), false)
        .await
        .unwrap();
    assert!(wall.iter().any(|a| a.code == "mailbox_processing_failed"));
}

#[tokio::test]
async fn without_the_mapper_test_and_enable_says_processing_cannot_start() {
    let w = configure(world().await).await;
    let ann = id(ANN);
    mailboxes::apply_defaults(&w.hub, Actor::Msp, std::slice::from_ref(&ann), true)
        .await
        .unwrap();
    let run = run_tests(&w.hub).await;
    assert_eq!(run.succeeded, 1);
    assert!(run.mapper_missing, "{run:?}");
    assert_eq!(run.processing, 0);
    common::install(&w.hub, "dynamics-exchange").await;
    mailboxes::test_and_enable(&w.hub, Actor::Msp, std::slice::from_ref(&ann))
        .await
        .unwrap();
    let run = run_tests(&w.hub).await;
    assert!(!run.mapper_missing);
    assert_eq!(run.processing, 6, "{run:?}");
}
