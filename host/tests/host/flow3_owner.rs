//! Flow 3's "one mailbox syncs with one organization": the mark of the
//! organization lives in the mailbox (the `ews` connector's
//! `mailbox-owner-api`, an extended property of the root folder in the EWS
//! simulator); Test & Enable claims an unmarked mailbox, refuses one marked by
//! another organization unless "Sync items with Exchange from this org only"
//! is set, and a mailbox taken over later stops its appointments, contacts
//! and tasks here.

use crate::common;
use crate::flow3::{configure, id, run_tests, world, World, ORG};
use std::sync::Arc;
use syncbridge::control::alerts;
use syncbridge::control::dynamics_flow::{self, FlowKind};
use syncbridge::control::dynamics_mailboxes::{self as mailboxes, MailboxEdit, FAILURE, SUCCESS};
use syncbridge::control::dynamics_owner;
use syncbridge::control::runs::RunMode;
use syncbridge::control::Actor;
use syncbridge::hub::Hub;

const ANN: &str = "ann@contoso.com";
const FABRIKAM: &str = "https://fabrikam.crm4.dynamics.com";

/// The world with profile `exch` as the default and the mapper installed;
/// Ann's mailbox configured with the defaults, not yet tested.
async fn ready() -> World {
    let w = configure(world().await).await;
    common::install(&w.hub, "dynamics-exchange").await;
    mailboxes::apply_defaults(&w.hub, Actor::Msp, &[id(ANN)], false)
        .await
        .unwrap();
    w
}

async fn ours(hub: &Hub) -> String {
    dynamics_owner::organization_mark(hub, ORG)
        .await
        .unwrap()
        .unwrap()
}

async fn test_ann(hub: &Arc<Hub>) -> mailboxes::MailboxTest {
    mailboxes::test_and_enable(hub, Actor::Msp, &[id(ANN)])
        .await
        .unwrap();
    run_tests(hub).await;
    mailboxes::test_of(hub.store(), &id(ANN))
        .await
        .unwrap()
        .unwrap()
}

/// The kinds of Ann's processing that run, sorted.
async fn enabled_kinds(hub: &Arc<Hub>) -> Vec<String> {
    let mut kinds: Vec<String> = dynamics_flow::processing(hub, Actor::Msp, &id(ANN))
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.enabled)
        .map(|p| p.kind)
        .collect();
    kinds.sort();
    kinds
}

const E_MAIL: [&str; 2] = ["incoming-email", "outgoing-email"];

async fn open_alerts(hub: &Hub, code: &str) -> Vec<String> {
    alerts::list(hub.store(), None, Some(&id(ANN)), false)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.code == code)
        .map(|a| a.message)
        .collect()
}

#[tokio::test]
async fn test_and_enable_marks_an_unmarked_mailbox_with_this_organization() {
    let w = ready().await;
    assert_eq!(w.sim.ews().sync_owner(ANN), None, "unmarked to begin with");
    let test = test_ann(&w.hub).await;
    assert_eq!(test.act_status, SUCCESS, "{test:?}");
    let mark = ours(&w.hub).await;
    assert!(
        mark.starts_with("http://127.0.0.1"),
        "the org's URL: {mark}"
    );
    assert_eq!(w.sim.ews().sync_owner(ANN), Some(mark));
    assert_eq!(enabled_kinds(&w.hub).await.len(), 6);
}

#[tokio::test]
async fn a_mailbox_another_organization_marked_processes_e_mail_but_not_its_appointments() {
    let w = ready().await;
    w.sim.ews().set_sync_owner(ANN, Some(FABRIKAM));
    let test = test_ann(&w.hub).await;
    assert_eq!(
        (test.incoming_status, test.outgoing_status, test.act_status),
        (SUCCESS, SUCCESS, FAILURE),
        "{test:?}"
    );
    assert_eq!(test.error_class.as_deref(), Some("act"));
    assert_eq!(test.error_code.as_deref(), Some(dynamics_owner::OTHER_ORG));
    let message = test.error_message.unwrap();
    assert!(message.contains(FABRIKAM), "{message}");
    assert!(test
        .error_remedy
        .unwrap()
        .contains("Sync items with Exchange from this org only"),);
    let m = mailboxes::get(&w.hub, Actor::Msp, &id(ANN)).await.unwrap();
    assert!(m.mailbox.enabled, "e-mail is processed");
    assert_eq!(enabled_kinds(&w.hub).await, E_MAIL);
    assert_eq!(
        w.sim.ews().sync_owner(ANN).as_deref(),
        Some(FABRIKAM),
        "the other organization's mark stays"
    );
    let alerts = open_alerts(&w.hub, "mailbox_act_other_org").await;
    assert!(
        alerts.len() == 1 && alerts[0].contains(FABRIKAM),
        "{alerts:?}"
    );
}

#[tokio::test]
async fn sync_items_from_this_org_only_takes_the_mailbox_over_at_the_next_test() {
    let w = ready().await;
    w.sim.ews().set_sync_owner(ANN, Some(FABRIKAM));
    assert_eq!(test_ann(&w.hub).await.act_status, FAILURE);
    mailboxes::edit_many(
        &w.hub,
        Actor::Msp,
        &[id(ANN)],
        &MailboxEdit {
            sync_from_this_org_only: Some(true),
            ..MailboxEdit::default()
        },
    )
    .await
    .unwrap();
    let test = test_ann(&w.hub).await;
    assert_eq!(test.act_status, SUCCESS, "{test:?}");
    assert_eq!(test.error_code, None);
    assert_eq!(w.sim.ews().sync_owner(ANN), Some(ours(&w.hub).await));
    assert_eq!(enabled_kinds(&w.hub).await.len(), 6);
}

#[tokio::test]
async fn a_mailbox_taken_over_later_stops_its_appointments_here_with_an_alert() {
    let w = ready().await;
    crate::flow3_mail::owned_by_ann(&w);
    assert_eq!(test_ann(&w.hub).await.act_status, SUCCESS);
    let appointments = dynamics_flow::profile_id(&id(ANN), FlowKind::Appointments);
    let first = common::outcome(common::run_now(&w.hub, &appointments, RunMode::Run).await);
    assert!(first.is_ok(), "{first:?}");

    // Another organization's Test & Enable, with its check box, took the mailbox.
    w.sim.ews().set_sync_owner(ANN, Some(FABRIKAM));
    // The mark is read again once the last check is older than CHECK_EVERY.
    sqlx::query("UPDATE dynamics_sync_owner_checks SET checked_at = 0")
        .execute(w.hub.store().pool())
        .await
        .unwrap();
    let refused = common::outcome(common::run_now(&w.hub, &appointments, RunMode::Run).await)
        .expect_err("the run does not go");
    assert!(refused.contains(FABRIKAM), "{refused}");
    let test = mailboxes::test_of(w.hub.store(), &id(ANN))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (test.incoming_status, test.act_status),
        (SUCCESS, FAILURE),
        "{test:?}"
    );
    assert_eq!(
        enabled_kinds(&w.hub).await,
        E_MAIL,
        "appointments, tasks and contacts stop; e-mail goes on"
    );
    assert_eq!(
        w.sim.ews().sync_owner(ANN).as_deref(),
        Some(FABRIKAM),
        "a run never takes a mailbox back"
    );
    assert_eq!(open_alerts(&w.hub, "mailbox_act_other_org").await.len(), 1);
}
