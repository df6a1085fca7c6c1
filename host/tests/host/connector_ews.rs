//! The `ews` connector through the real runtime (`mailbox-api`, WIT 0.1.3) against the EWS
//! simulator: a full pass and an incremental round of contacts, writes with the anchor and
//! lookups by it, a recurring series with a moved and a deleted occurrence, throttling, and
//! test-connection findings for the usual causes.

use crate::common;

use syncbridge::hub::Hub;
use syncbridge::model::{
    EmailAddress, Event, EventKind, EventTime, Item, ItemBody, MailboxContact, Outcome, Page,
    PluginError, PullRequest, Removal, Sensitivity, Series, ShowAs, WriteAction, WriteOp,
    WriteResult, Zone,
};
use syncbridge_sim::{FaultRule, Scenarios, Seed, Services, SimConfig, Simulator};

const SEED: &str = r#"{"ews": {
  "accounts": [{"email": "svc@contoso.com", "password": "svc-pw", "canImpersonate": true, "hasMailbox": false},
               {"email": "alice@contoso.com", "password": "alice-pw", "displayName": "Alice Wong"}],
  "items": {"alice@contoso.com": [
    {"folder": "contacts", "xml": "<t:Contact xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\"><t:GivenName>Ann</t:GivenName><t:EmailAddresses><t:Entry Key=\"EmailAddress1\">ann@fabrikam.com</t:Entry></t:EmailAddresses><t:Surname>Lee</t:Surname></t:Contact>"},
    {"folder": "contacts", "xml": "<t:Contact xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\"><t:GivenName>Ben</t:GivenName><t:Surname>Ode</t:Surname></t:Contact>"},
    {"folder": "contacts", "xml": "<t:Contact xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\"><t:GivenName>Cy</t:GivenName><t:Surname>Park</t:Surname></t:Contact>"}]}
}}"#;

const CONTACTS: &str = "contacts:mailbox=alice@contoso.com";

async fn sim() -> Simulator {
    Simulator::start(SimConfig {
        services: Services {
            ews: true,
            ..Services::NONE
        },
        seed: Some(Seed::from_json(SEED).unwrap()),
        ..SimConfig::all()
    })
    .await
    .expect("simulator starts")
}

async fn setup(sim: &Simulator, password: &str) -> common::TestHub {
    let t = common::hub().await;
    common::install(&t.hub, "ews").await;
    let config = serde_json::json!({
        "ews_url": sim.ews_url(), "impersonate": true, "mailbox": "alice@contoso.com"
    })
    .to_string();
    let basic =
        serde_json::json!({"kind": "basic", "username": "svc@contoso.com", "password": password})
            .to_string();
    common::loopback_connection(&t.hub, "exchange", "ews", &config, &[("default", &basic)]).await;
    t
}

/// One `pull` through the runtime; state changes committed as the engine does.
async fn pull(
    hub: &Hub,
    scope: &str,
    cursor: Option<String>,
    max_items: u32,
) -> Result<Page, PluginError> {
    let (record, plugin, ctx) = hub.connection_context("exchange").await.unwrap();
    let request = PullRequest {
        scope: scope.into(),
        cursor,
        max_items,
    };
    let called = hub
        .runtime()
        .pull(&plugin, ctx, &record.config, request)
        .await
        .expect("no trap");
    hub.store()
        .apply_state_changes("exchange", &called.state_changes)
        .await
        .unwrap();
    called.value
}

async fn pass(
    hub: &Hub,
    scope: &str,
    cursor: Option<String>,
) -> (Vec<Item>, Vec<Page>, Option<String>) {
    let (mut cursor, mut items, mut pages) = (cursor, Vec::new(), Vec::new());
    loop {
        let page = pull(hub, scope, cursor.clone(), 2).await.expect("page");
        items.extend(page.items.clone());
        cursor = page.cursor.clone();
        let more = page.more;
        pages.push(page);
        if !more {
            return (items, pages, cursor);
        }
        assert!(pages.len() < 50, "runaway paging");
    }
}

async fn push(hub: &Hub, scope: &str, batch: Vec<WriteOp>) -> Vec<WriteResult> {
    let (record, plugin, ctx) = hub.connection_context("exchange").await.unwrap();
    let called = hub
        .runtime()
        .push(&plugin, ctx, &record.config, scope, batch)
        .await
        .expect("no trap");
    called.value.expect("the batch is answered")
}

async fn lookup(hub: &Hub, scope: &str, keys: &[&str]) -> Vec<Item> {
    let (record, plugin, ctx) = hub.connection_context("exchange").await.unwrap();
    let keys = keys.iter().map(|k| k.to_string()).collect();
    let called = hub
        .runtime()
        .lookup_items(&plugin, ctx, &record.config, scope, keys)
        .await
        .expect("no trap");
    called.value.expect("lookup")
}

fn contact(item: &Item) -> &MailboxContact {
    match &item.body {
        Some(ItemBody::MailboxContact(c)) => c,
        other => panic!("expected a mailbox contact, got {other:?}"),
    }
}

#[tokio::test]
async fn contacts_full_pass_incremental_round_writes_and_anchor_lookups() {
    let sim = sim().await;
    let t = setup(&sim, "svc-pw").await;
    let (items, pages, cursor) = pass(&t.hub, CONTACTS, None).await;
    assert_eq!(pages.len(), 2, "3 contacts at 2 a page");
    assert!(pages.iter().all(|p| p.full));
    assert_eq!(items.len(), 3);
    let ann = items
        .iter()
        .find(|i| contact(i).given_name.as_deref() == Some("Ann"))
        .unwrap();
    assert_eq!(contact(ann).emails[0].address, "ann@fabrikam.com");

    let new = MailboxContact {
        given_name: Some("Pavel".into()),
        middle_name: None,
        surname: Some("Bansky".into()),
        display_name: None,
        company_name: None,
        job_title: None,
        department: None,
        emails: vec![EmailAddress {
            address: "pavel@contoso.com".into(),
            name: None,
        }],
        phones: vec![],
        addresses: vec![],
        business_home_page: None,
        birthday: None,
        notes: Some("from the PSA".into()),
        categories: vec![],
        anchor: Some("link-42".into()),
    };
    let op =
        |id: &str, action, target: Option<&str>, body: MailboxContact, fields: &[&str]| WriteOp {
            op_id: id.into(),
            action,
            target_id: target.map(str::to_owned),
            body: Some(ItemBody::MailboxContact(body)),
            fields: fields.iter().map(|f| f.to_string()).collect(),
        };
    let mut changed = new.clone();
    changed.surname = None;
    let results = push(
        &t.hub,
        CONTACTS,
        vec![
            op("c", WriteAction::Create, None, new.clone(), &[]),
            op(
                "u",
                WriteAction::Update,
                Some(&ann.id),
                changed,
                &["surname"],
            ),
        ],
    )
    .await;
    let created = results[0]
        .outcome
        .as_ref()
        .expect("created")
        .target_id
        .clone();
    assert!(results[1].outcome.is_ok(), "{results:?}");

    let found = lookup(
        &t.hub,
        CONTACTS,
        &["anchor:link-42", &format!("id:{}", ann.id)],
    )
    .await;
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].id, created);
    assert_eq!(contact(&found[0]).notes.as_deref(), Some("from the PSA"));
    // Only the named field changed: the surname is gone, the given name stays.
    assert_eq!(
        (
            contact(&found[1]).given_name.as_deref(),
            contact(&found[1]).surname.as_deref()
        ),
        (Some("Ann"), None)
    );

    let results = push(
        &t.hub,
        CONTACTS,
        vec![op("d", WriteAction::Delete, Some(&items[2].id), new, &[])],
    )
    .await;
    assert!(results[0].outcome.is_ok());
    let (round, pages, _) = pass(&t.hub, CONTACTS, cursor).await;
    assert!(pages.iter().all(|p| !p.full), "an incremental round");
    let ids: Vec<(&str, Option<Removal>)> =
        round.iter().map(|i| (i.id.as_str(), i.removed)).collect();
    assert!(ids.contains(&(created.as_str(), None)), "{ids:?}");
    assert!(ids.contains(&(ann.id.as_str(), None)), "{ids:?}");
    assert!(
        ids.contains(&(items[2].id.as_str(), Some(Removal::Deleted))),
        "{ids:?}"
    );
}

#[tokio::test]
async fn a_series_reads_back_with_its_moved_and_deleted_occurrences_only_once() {
    let sim = sim().await;
    let t = setup(&sim, "svc-pw").await;
    let scope = "calendar:mailbox=alice@contoso.com,past=3650,future=30";
    let zone = Zone {
        iana: "Europe/Berlin".into(),
        windows: None,
    };
    let series = Event {
        kind: EventKind::SeriesMaster,
        series_id: None,
        original_start: None,
        subject: Some("Weekly".into()),
        start: EventTime {
            utc: "2025-12-02T08:00:00Z".into(),
            zone: Some(zone.clone()),
        },
        end: EventTime {
            utc: "2025-12-02T09:00:00Z".into(),
            zone: Some(zone.clone()),
        },
        all_day: false,
        show_as: ShowAs::Free,
        sensitivity: Sensitivity::Private,
        series: Some(Series {
            rrule: "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;COUNT=10".into(),
            zone,
            modified: vec![],
            deleted: vec![],
        }),
        organizer: None,
        attendees: vec![],
        location: None,
        categories: vec![],
        body: None,
        reminder_minutes: Some(10),
        anchor: Some("appt-7".into()),
    };
    let results = push(
        &t.hub,
        scope,
        vec![WriteOp {
            op_id: "s".into(),
            action: WriteAction::Create,
            target_id: None,
            body: Some(ItemBody::Event(series)),
            fields: vec![],
        }],
    )
    .await;
    let id = results[0]
        .outcome
        .as_ref()
        .expect("created")
        .target_id
        .clone();

    // Outlook moves the second occurrence and deletes the third.
    let soap = |body: String| {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Header><t:RequestServerVersion Version="Exchange2013_SP1"/></s:Header><s:Body>{body}</s:Body></s:Envelope>"#
        )
    };
    let occ =
        |i: u32| format!(r#"<t:OccurrenceItemId RecurringMasterId="{id}" InstanceIndex="{i}"/>"#);
    let client = reqwest::Client::new();
    for body in [
        format!(
            r#"<m:UpdateItem ConflictResolution="AlwaysOverwrite" SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges><t:ItemChange>{}<t:Updates><t:SetItemField><t:FieldURI FieldURI="calendar:Start"/><t:CalendarItem><t:Start>2025-12-10T13:00:00Z</t:Start></t:CalendarItem></t:SetItemField><t:SetItemField><t:FieldURI FieldURI="calendar:End"/><t:CalendarItem><t:End>2025-12-10T14:00:00Z</t:End></t:CalendarItem></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#,
            occ(2)
        ),
        format!(
            r#"<m:DeleteItem DeleteType="HardDelete" SendMeetingCancellations="SendToNone"><m:ItemIds>{}</m:ItemIds></m:DeleteItem>"#,
            occ(3)
        ),
    ] {
        let r = client
            .post(sim.ews_url())
            .basic_auth("alice@contoso.com", Some("alice-pw"))
            .header("Content-Type", "text/xml")
            .body(soap(body))
            .send()
            .await
            .unwrap();
        let text = r.text().await.unwrap();
        assert!(text.contains(r#"ResponseClass="Success""#), "{text}");
    }

    let (items, _, _) = pass(&t.hub, scope, None).await;
    assert_eq!(
        items.len(),
        1,
        "the master alone carries its occurrences: {items:?}"
    );
    let Some(ItemBody::Event(ev)) = &items[0].body else {
        panic!("an event")
    };
    assert_eq!(
        (ev.kind, ev.sensitivity, ev.show_as, ev.reminder_minutes),
        (
            EventKind::SeriesMaster,
            Sensitivity::Private,
            ShowAs::Free,
            Some(10)
        )
    );
    assert_eq!(ev.anchor.as_deref(), Some("appt-7"));
    let s = ev.series.as_ref().expect("a series");
    assert_eq!(s.zone.iana, "Europe/Berlin");
    assert_eq!(s.modified.len(), 1);
    assert_eq!(
        (
            s.modified[0].original_start.as_str(),
            s.modified[0].start.utc.as_str()
        ),
        ("2025-12-09T08:00:00Z", "2025-12-10T13:00:00Z")
    );
    assert_eq!(s.deleted, ["2025-12-16T08:00:00Z"]);
}

#[tokio::test]
async fn exchange_busy_is_throttled_with_its_back_off() {
    let sim = sim().await;
    let t = setup(&sim, "svc-pw").await;
    sim.add_fault(FaultRule::sequence("/EWS/*", &[500]).with_retry_after("3"))
        .unwrap();
    match pull(&t.hub, CONTACTS, None, 10).await {
        Err(PluginError::Throttled(th)) => assert_eq!(th.retry_after_ms, Some(3000)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn test_connection_names_the_cause_and_the_remedy() {
    let sim = sim().await;
    let t = setup(&sim, "svc-pw").await;
    let report = t.hub.test_connection("exchange").await.unwrap();
    let findings = report.connection.expect("checks ran");
    assert!(
        findings.iter().all(|f| f.outcome == Outcome::Ok),
        "{findings:?}"
    );
    for (scenario, check, words) in [
        (
            Scenarios {
                impersonation_not_granted: true,
                ..Default::default()
            },
            "impersonation:alice@contoso.com",
            "ApplicationImpersonation",
        ),
        (
            Scenarios {
                basic_disabled: true,
                ..Default::default()
            },
            "credentials",
            "Basic authentication is disabled",
        ),
        (
            Scenarios {
                mfa_required: true,
                ..Default::default()
            },
            "credentials",
            "app password",
        ),
        (
            Scenarios {
                mailbox_address_mismatch: true,
                ..Default::default()
            },
            "mailbox:alice@contoso.com",
            "primary SMTP address",
        ),
    ] {
        sim.set_scenarios(scenario);
        let findings = t
            .hub
            .test_connection("exchange")
            .await
            .unwrap()
            .connection
            .expect("checks ran");
        let f = findings
            .iter()
            .find(|f| f.check == check)
            .unwrap_or_else(|| panic!("{check}: {findings:?}"));
        assert_eq!(f.outcome, Outcome::Failed);
        let text = format!(
            "{} {}",
            f.cause.as_deref().unwrap_or_default(),
            f.remedy.as_deref().unwrap_or_default()
        );
        assert!(text.contains(words), "{check}: {text}");
        assert!(!text.contains("svc-pw"), "no secret in findings");
    }
}
