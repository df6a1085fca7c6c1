//! The `graph` connector's mailbox scopes (WIT 0.1.3 `mailbox-api`) through the real runtime
//! against the Graph simulator: calendars (series with modified, moved and deleted
//! occurrences, all-day, private and free items, DST), contacts and To Do tasks read and
//! written, delta from a cursor, 410 restarts and `Retry-After`.

use crate::common;

use syncbridge::hub::Hub;
use syncbridge::model::{
    BodyType, EmailAddress, Event, EventKind, EventTime, Item, ItemBody, MailboxContact,
    OccurrenceChange, Page, Phone, PhoneKind, PluginError, PullRequest, Removal, RichText,
    Sensitivity, Series, ShowAs, TaskStatus, Todo, WriteAction, WriteOp, WriteResult, Zone,
};
use syncbridge_sim::{FaultRule, Seed, Services, SimConfig, Simulator};

const TENANT: &str = "contoso.onmicrosoft.com";
const TENANT_ID: &str = "11111111-1111-4111-8111-111111111111";
const CLIENT: &str = "22222222-2222-4222-8222-222222222222";
const E3: &str = "c7df2760-2c81-4ef7-b578-5b5392b571df";
const UPN: &str = "alice@contoso.onmicrosoft.com";
const BERLIN: &str = "W. Europe Standard Time";
const CALENDAR: &str = "calendar:mailbox=alice@contoso.onmicrosoft.com,past=3,future=3";
const CONTACTS: &str = "contacts:mailbox=alice@contoso.onmicrosoft.com";
const TASKS: &str = "tasks:mailbox=alice@contoso.onmicrosoft.com";

/// `YYYY-MM-DD` of today (UTC) plus `days`.
fn day(days: i64) -> String {
    (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * days))
        .strftime("%Y-%m-%d")
        .to_string()
}

fn compact(date: &str) -> String {
    date.replace('-', "")
}

fn seed() -> Seed {
    let at = |d: &str, t: &str, z: &str| serde_json::json!({"dateTime": format!("{d}T{t}"), "timeZone": z});
    let doc = serde_json::json!({"graph": {"tenants": [{
        "id": TENANT_ID, "domain": TENANT,
        "apps": [{"client_id": CLIENT, "client_secret": "s3cret"}],
        "subscribedSkus": [{"skuId": E3, "skuPartNumber": "ENTERPRISEPACK"}],
        "users": [{"id": "u1", "userPrincipalName": UPN, "mail": UPN,
            "assignedLicenses": [{"skuId": E3, "disabledPlans": []}]}],
        "mailboxes": {"u1": {"events": [
            // A daily series that started before the window.
            {"subject": "Standup", "start": at(&day(-14), "09:00:00", BERLIN), "end": at(&day(-14), "09:15:00", BERLIN),
             "recurrence": {"pattern": {"type": "daily", "interval": 1},
                "range": {"type": "noEnd", "startDate": day(-14), "recurrenceTimeZone": BERLIN}}},
            {"subject": "Private", "sensitivity": "private", "start": at(&day(0), "13:00:00", "UTC"), "end": at(&day(0), "14:00:00", "UTC")},
            {"subject": "Free", "showAs": "free", "start": at(&day(1), "15:00:00", "UTC"), "end": at(&day(1), "16:00:00", "UTC")},
            {"subject": "Holiday", "isAllDay": true, "start": at(&day(2), "00:00:00", "Tokyo Standard Time"),
             "end": at(&day(3), "00:00:00", "Tokyo Standard Time")},
        ]}}
    }]}});
    Seed::from_json(&doc.to_string()).unwrap()
}

async fn sim() -> Simulator {
    Simulator::start(SimConfig {
        services: Services {
            graph: true,
            ..Services::NONE
        },
        seed: Some(seed()),
        ..SimConfig::all()
    })
    .await
    .expect("simulator starts")
}

async fn setup(sim: &Simulator) -> common::TestHub {
    let t = common::hub().await;
    common::install(&t.hub, "graph").await;
    let config = serde_json::json!({"graph_url": sim.graph_url(), "tenant": TENANT}).to_string();
    let credential = serde_json::json!({
        "kind": "oauth2-client-credentials",
        "token_url": sim.token_url(TENANT),
        "client_id": CLIENT,
        "client_secret": "s3cret",
        "scope": "https://graph.microsoft.com/.default",
    })
    .to_string();
    common::loopback_connection(
        &t.hub,
        "m365",
        "graph",
        &config,
        &[("default", &credential)],
    )
    .await;
    t
}

/// A request to the simulator as the app (for changes made "in Outlook").
async fn outlook(
    sim: &Simulator,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> u16 {
    let token = sim.graph().issue_token(TENANT, CLIENT).expect("token");
    let mut rq = reqwest::Client::new()
        .request(method, format!("{}/users/{UPN}/{path}", sim.graph_url()))
        .bearer_auth(token);
    if !body.is_null() {
        rq = rq
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    rq.send()
        .await
        .expect("simulator answers")
        .status()
        .as_u16()
}

async fn pull(hub: &Hub, scope: &str, cursor: Option<String>) -> Result<Page, PluginError> {
    let (record, plugin, ctx) = hub.connection_context("m365").await.unwrap();
    let request = PullRequest {
        scope: scope.into(),
        cursor,
        max_items: 5,
    };
    let called = hub
        .runtime()
        .pull(&plugin, ctx, &record.config, request)
        .await
        .expect("no trap");
    hub.store()
        .apply_state_changes("m365", &called.state_changes)
        .await
        .unwrap();
    called.value
}

/// A whole pass from `cursor`: its items, whether it was full, and the cursor it ends with.
async fn pass(hub: &Hub, scope: &str, cursor: Option<String>) -> (Vec<Item>, bool, String) {
    let (mut cursor, mut items, mut full, mut pages) = (cursor, Vec::new(), None, 0);
    loop {
        let page = pull(hub, scope, cursor.clone()).await.expect("page");
        full.get_or_insert(page.full);
        items.extend(page.items);
        cursor = page.cursor;
        pages += 1;
        assert!(pages < 50, "runaway paging");
        if !page.more {
            return (items, full.unwrap_or(false), cursor.expect("a delta link"));
        }
    }
}

async fn push(hub: &Hub, scope: &str, ops: Vec<WriteOp>) -> Vec<WriteResult> {
    let (record, plugin, ctx) = hub.connection_context("m365").await.unwrap();
    let called = hub
        .runtime()
        .push(&plugin, ctx, &record.config, scope, ops)
        .await
        .expect("no trap");
    called.value.expect("batch accepted")
}

async fn lookup(hub: &Hub, scope: &str, key: &str) -> Vec<Item> {
    let (record, plugin, ctx) = hub.connection_context("m365").await.unwrap();
    let called = hub
        .runtime()
        .lookup_items(&plugin, ctx, &record.config, scope, vec![key.to_owned()])
        .await
        .expect("no trap");
    called.value.expect("lookup")
}

fn op(action: WriteAction, target: Option<&str>, body: ItemBody, fields: &[&str]) -> WriteOp {
    WriteOp {
        op_id: "op".into(),
        action,
        target_id: target.map(str::to_owned),
        body: Some(body),
        fields: fields.iter().map(|f| f.to_string()).collect(),
    }
}

fn created(results: &[WriteResult]) -> String {
    match &results[0].outcome {
        Ok(ok) => ok.target_id.clone(),
        Err(e) => panic!("write failed: {e:?}"),
    }
}

fn event(item: &Item) -> &Event {
    match &item.body {
        Some(ItemBody::Event(e)) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn by_subject<'a>(items: &'a [Item], subject: &str) -> &'a Event {
    items
        .iter()
        .filter(|i| i.body.is_some())
        .map(event)
        .find(|e| e.subject.as_deref() == Some(subject))
        .unwrap_or_else(|| panic!("{subject} in {items:#?}"))
}

#[tokio::test]
async fn calendar_reads_series_singles_and_changes() {
    let sim = sim().await;
    // In Outlook: yesterday's standup moved three weeks ahead (out of the window), tomorrow's deleted.
    let master = sim.graph().events(TENANT, "u1")[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let moved = format!("events/{master}_{}", compact(&day(-1)));
    let later = day(21);
    let status = outlook(
        &sim,
        reqwest::Method::PATCH,
        &moved,
        serde_json::json!({"subject": "Standup (moved)",
        "start": {"dateTime": format!("{later}T12:00:00"), "timeZone": "UTC"},
        "end": {"dateTime": format!("{later}T12:15:00"), "timeZone": "UTC"}}),
    )
    .await;
    assert_eq!(status, 200);
    let gone = format!("events/{master}_{}", compact(&day(1)));
    assert_eq!(
        outlook(
            &sim,
            reqwest::Method::DELETE,
            &gone,
            serde_json::Value::Null
        )
        .await,
        204
    );

    let t = setup(&sim).await;
    let (items, full, cursor) = pass(&t.hub, CALENDAR, None).await;
    assert!(full);
    // One item per series, never an occurrence on its own.
    assert_eq!(items.len(), 4, "{items:#?}");
    assert!(items
        .iter()
        .map(event)
        .all(|e| matches!(e.kind, EventKind::Single | EventKind::SeriesMaster)));
    let standup = by_subject(&items, "Standup");
    assert_eq!(standup.kind, EventKind::SeriesMaster);
    let series = standup.series.as_ref().expect("series");
    assert_eq!(series.rrule, "FREQ=DAILY;INTERVAL=1");
    assert_eq!(series.zone.iana, "Europe/Berlin");
    assert_eq!(series.zone.windows.as_deref(), Some(BERLIN));
    assert!(
        standup.start.utc.starts_with(&day(-14)),
        "the master starts the series: {:?}",
        standup.start
    );
    assert_eq!(series.modified.len(), 1, "{series:#?}");
    assert!(series.modified[0].original_start.starts_with(&day(-1)));
    assert!(series.modified[0]
        .start
        .utc
        .starts_with(&format!("{later}T12:00")));
    assert_eq!(
        series.modified[0].subject.as_deref(),
        Some("Standup (moved)")
    );
    assert_eq!(series.deleted.len(), 1, "{series:#?}");
    assert!(series.deleted[0].starts_with(&day(1)));
    assert_eq!(
        by_subject(&items, "Private").sensitivity,
        Sensitivity::Private
    );
    assert_eq!(by_subject(&items, "Free").show_as, ShowAs::Free);
    let holiday = by_subject(&items, "Holiday");
    assert!(holiday.all_day);
    // Midnight in Tokyo is 15:00 UTC the day before.
    assert_eq!(holiday.start.utc, format!("{}T15:00:00Z", day(1)));
    assert_eq!(holiday.start.zone.as_ref().unwrap().iana, "Asia/Tokyo");

    // A delta round from the cursor brings only what changed.
    let (items, full, cursor) = pass(&t.hub, CALENDAR, Some(cursor)).await;
    assert!(!full && items.is_empty(), "{items:#?}");
    let private = sim
        .graph()
        .events(TENANT, "u1")
        .into_iter()
        .find(|e| e["subject"] == "Private")
        .unwrap();
    let path = format!("events/{}", private["id"].as_str().unwrap());
    assert_eq!(
        outlook(
            &sim,
            reqwest::Method::PATCH,
            &path,
            serde_json::json!({"subject": "Private (moved)"})
        )
        .await,
        200
    );
    let (items, full, cursor) = pass(&t.hub, CALENDAR, Some(cursor)).await;
    assert!(!full);
    assert_eq!(items.len(), 1, "{items:#?}");
    assert_eq!(event(&items[0]).subject.as_deref(), Some("Private (moved)"));

    // An expired delta token restarts a full pass.
    sim.graph().expire_delta_tokens();
    let page = pull(&t.hub, CALENDAR, Some(cursor)).await.expect("page");
    assert!(page.items.is_empty() && page.more && page.full && page.cursor.is_none());
    let (items, full, _) = pass(&t.hub, CALENDAR, None).await;
    assert!(full && items.len() == 4);
}

#[tokio::test]
async fn a_series_across_dst_expands_in_its_zone() {
    let sim = sim().await;
    let t = setup(&sim).await;
    // A year back: the series crosses both DST changes of Europe/Berlin. Expanding in UTC
    // instead of the zone would report occurrences as deleted.
    let scope = "calendar:mailbox=alice@contoso.onmicrosoft.com,past=370,future=0";
    let mut e = by_subject(&pass(&t.hub, CALENDAR, None).await.0, "Standup").clone();
    e.subject = Some("Weekly".into());
    e.start = EventTime {
        utc: format!("{}T08:00:00Z", day(-360)),
        zone: e.start.zone.clone(),
    };
    e.end = EventTime {
        utc: format!("{}T08:30:00Z", day(-360)),
        zone: e.end.zone.clone(),
    };
    e.series = Some(Series {
        rrule: "FREQ=WEEKLY;INTERVAL=1".into(),
        zone: Zone {
            iana: "Europe/Berlin".into(),
            windows: Some(BERLIN.into()),
        },
        modified: vec![],
        deleted: vec![],
    });
    e.anchor = Some("weekly-1".into());
    let id = created(
        &push(
            &t.hub,
            scope,
            vec![op(WriteAction::Create, None, ItemBody::Event(e), &[])],
        )
        .await,
    );
    let stored = sim
        .graph()
        .events(TENANT, "u1")
        .into_iter()
        .find(|v| v["id"] == id.as_str())
        .unwrap();
    assert_eq!(stored["recurrence"]["pattern"]["type"], "weekly");
    assert_eq!(stored["recurrence"]["range"]["recurrenceTimeZone"], BERLIN);
    let found = lookup(&t.hub, scope, "anchor:weekly-1").await;
    assert_eq!(found.len(), 1);
    let s = event(&found[0]).series.clone().unwrap();
    // Graph stores a weekly rule with its day.
    assert!(
        s.rrule.starts_with("FREQ=WEEKLY;INTERVAL=1;BYDAY="),
        "{}",
        s.rrule
    );
    assert!(s.deleted.is_empty() && s.modified.is_empty(), "{s:#?}");
}

fn sample_event(subject: &str, anchor: &str) -> Event {
    let d = day(2);
    Event {
        kind: EventKind::Single,
        series_id: None,
        original_start: None,
        subject: Some(subject.into()),
        start: EventTime {
            utc: format!("{d}T09:00:00Z"),
            zone: Some(Zone {
                iana: "Europe/Berlin".into(),
                windows: Some(BERLIN.into()),
            }),
        },
        end: EventTime {
            utc: format!("{d}T10:00:00Z"),
            zone: Some(Zone {
                iana: "Europe/Berlin".into(),
                windows: Some(BERLIN.into()),
            }),
        },
        all_day: false,
        show_as: ShowAs::Tentative,
        sensitivity: Sensitivity::Confidential,
        series: None,
        organizer: None,
        attendees: vec![],
        location: Some("Room 7".into()),
        categories: vec!["PSA".into()],
        body: Some(RichText {
            content: "<p>Ticket 42</p>".into(),
            body_type: BodyType::Html,
        }),
        reminder_minutes: Some(30),
        anchor: Some(anchor.into()),
    }
}

#[tokio::test]
async fn calendar_writes_create_update_and_delete() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let id = created(
        &push(
            &t.hub,
            CALENDAR,
            vec![op(
                WriteAction::Create,
                None,
                ItemBody::Event(sample_event("Visit", "appt-9")),
                &[],
            )],
        )
        .await,
    );
    let found = lookup(&t.hub, CALENDAR, "anchor:appt-9").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, id);
    let e = event(&found[0]);
    assert_eq!(
        (e.show_as, e.sensitivity, e.reminder_minutes),
        (ShowAs::Tentative, Sensitivity::Confidential, Some(30))
    );
    assert_eq!(e.location.as_deref(), Some("Room 7"));
    // An update writes only the named fields.
    let mut changed = sample_event("Visit (new)", "appt-9");
    changed.location = None;
    push(
        &t.hub,
        CALENDAR,
        vec![op(
            WriteAction::Update,
            Some(&id),
            ItemBody::Event(changed),
            &["subject"],
        )],
    )
    .await;
    let e = event(&lookup(&t.hub, CALENDAR, &format!("id:{id}")).await[0]).clone();
    assert_eq!(e.subject.as_deref(), Some("Visit (new)"));
    assert_eq!(
        e.location.as_deref(),
        Some("Room 7"),
        "location was not named"
    );
    let r = push(
        &t.hub,
        CALENDAR,
        vec![op(WriteAction::Delete, Some(&id), ItemBody::Event(e), &[])],
    )
    .await;
    assert!(r[0].outcome.is_ok());
    let after = lookup(&t.hub, CALENDAR, &format!("id:{id}")).await;
    assert_eq!(after[0].removed, Some(Removal::Deleted));
}

#[tokio::test]
async fn a_series_is_written_with_its_deleted_and_modified_occurrences() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let scope = "calendar:mailbox=alice@contoso.onmicrosoft.com,past=3,future=30";
    let at = |days: i64, time: &str| EventTime {
        utc: format!("{}T{time}Z", day(days)),
        zone: Some(Zone {
            iana: "UTC".into(),
            windows: None,
        }),
    };
    // Daily at 09:00 UTC from tomorrow, five times: the second deleted, the third moved.
    let series = Event {
        kind: EventKind::SeriesMaster,
        start: at(1, "09:00:00"),
        end: at(1, "09:30:00"),
        series: Some(Series {
            rrule: "FREQ=DAILY;INTERVAL=1;COUNT=5".into(),
            zone: Zone {
                iana: "UTC".into(),
                windows: None,
            },
            modified: vec![OccurrenceChange {
                original_start: at(3, "09:00:00").utc,
                id: None,
                start: at(3, "14:00:00"),
                end: at(3, "14:30:00"),
                subject: Some("Planning (moved)".into()),
                location: None,
                body: None,
                show_as: ShowAs::Busy,
            }],
            deleted: vec![at(2, "09:00:00").utc],
        }),
        sensitivity: Sensitivity::Normal,
        reminder_minutes: None,
        ..sample_event("Planning", "series-1")
    };
    let results = push(
        &t.hub,
        scope,
        vec![op(
            WriteAction::Create,
            None,
            ItemBody::Event(series.clone()),
            &[],
        )],
    )
    .await;
    let id = created(&results);
    let found = lookup(&t.hub, scope, &format!("id:{id}")).await;
    let e = event(&found[0]);
    let s = e.series.as_ref().expect("a series master");
    assert_eq!(s.deleted, [at(2, "09:00:00").utc], "the deleted occurrence");
    assert_eq!(s.modified.len(), 1, "{:?}", s.modified);
    assert_eq!(s.modified[0].original_start, at(3, "09:00:00").utc);
    assert_eq!(s.modified[0].start.utc, at(3, "14:00:00").utc);
    assert_eq!(s.modified[0].subject.as_deref(), Some("Planning (moved)"));
    // The version answered is the master's after its exceptions were written.
    assert_eq!(
        results[0].outcome.as_ref().unwrap().version,
        found[0].version,
        "no stale version"
    );

    // The source takes the move back: the occurrence is put back where the series places it,
    // with the series' subject, and is no exception any more.
    let mut taken_back = series;
    taken_back.series.as_mut().unwrap().modified.clear();
    let r = push(
        &t.hub,
        scope,
        vec![op(
            WriteAction::Update,
            Some(&id),
            ItemBody::Event(taken_back),
            &["series"],
        )],
    )
    .await;
    assert!(r[0].outcome.is_ok(), "{r:?}");
    let found = lookup(&t.hub, scope, &format!("id:{id}")).await;
    let s = event(&found[0]).series.clone().expect("a series master");
    assert!(
        s.modified.is_empty(),
        "an occurrence back in place is no exception: {:?}",
        s.modified
    );
    assert_eq!(s.deleted, [at(2, "09:00:00").utc]);
    let occurrences = format!("{scope},series=occurrences");
    let third = lookup(&t.hub, &occurrences, &format!("id:{id}#{}", day(3))).await;
    let third = event(&third[0]);
    assert_eq!(
        (third.start.utc.as_str(), third.subject.as_deref()),
        (at(3, "09:00:00").utc.as_str(), Some("Planning"))
    );
}

#[tokio::test]
async fn throttled_reads_carry_the_retry_after() {
    let sim = sim().await;
    let t = setup(&sim).await;
    sim.add_fault(
        FaultRule::sequence("GET /v1.0/users/*/calendarView/delta*", &[429]).with_retry_after("3"),
    )
    .expect("fault rule");
    match pull(&t.hub, CALENDAR, None).await {
        Err(PluginError::Throttled(th)) => assert_eq!(th.retry_after_ms, Some(3000)),
        other => panic!("expected throttled, got {other:?}"),
    }
    // The rule is spent: the same call succeeds now.
    assert!(pull(&t.hub, CALENDAR, None).await.is_ok());
}

fn contact(anchor: &str) -> MailboxContact {
    MailboxContact {
        given_name: Some("Ada".into()),
        middle_name: None,
        surname: Some("Lovelace".into()),
        display_name: Some("Ada Lovelace".into()),
        company_name: Some("Analytical Engines".into()),
        job_title: Some("Engineer".into()),
        department: None,
        emails: vec![EmailAddress {
            address: "ada@example.com".into(),
            name: Some("Ada".into()),
        }],
        phones: vec![
            Phone {
                kind: PhoneKind::Business,
                number: "+44 20 7946 0000".into(),
            },
            Phone {
                kind: PhoneKind::Mobile,
                number: "+44 7700 900000".into(),
            },
        ],
        addresses: vec![],
        business_home_page: None,
        birthday: Some("1815-12-10".into()),
        notes: Some("first programmer".into()),
        categories: vec![],
        anchor: Some(anchor.into()),
    }
}

#[tokio::test]
async fn contacts_are_read_and_written() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let (items, full, cursor) = pass(&t.hub, CONTACTS, None).await;
    assert!(full && items.is_empty());
    let id = created(
        &push(
            &t.hub,
            CONTACTS,
            vec![op(
                WriteAction::Create,
                None,
                ItemBody::MailboxContact(contact("c-1")),
                &[],
            )],
        )
        .await,
    );
    let (items, full, cursor) = pass(&t.hub, CONTACTS, Some(cursor)).await;
    assert!(!full);
    assert_eq!(items.len(), 1);
    let Some(ItemBody::MailboxContact(c)) = &items[0].body else {
        panic!("a contact")
    };
    assert_eq!(c.anchor.as_deref(), Some("c-1"));
    assert_eq!(c.birthday.as_deref(), Some("1815-12-10"));
    assert_eq!(c.phones.len(), 2);
    let mut new = contact("c-1");
    new.job_title = Some("Countess".into());
    push(
        &t.hub,
        CONTACTS,
        vec![op(
            WriteAction::Update,
            Some(&id),
            ItemBody::MailboxContact(new),
            &["job_title"],
        )],
    )
    .await;
    let found = lookup(&t.hub, CONTACTS, "anchor:c-1").await;
    let Some(ItemBody::MailboxContact(c)) = &found[0].body else {
        panic!("a contact")
    };
    assert_eq!(c.job_title.as_deref(), Some("Countess"));
    push(
        &t.hub,
        CONTACTS,
        vec![op(
            WriteAction::Delete,
            Some(&id),
            ItemBody::MailboxContact(contact("c-1")),
            &[],
        )],
    )
    .await;
    let (items, _, _) = pass(&t.hub, CONTACTS, Some(cursor)).await;
    assert_eq!(items.last().unwrap().removed, Some(Removal::Deleted));
}

#[tokio::test]
async fn tasks_are_read_and_written_with_a_linked_anchor() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let (items, full, cursor) = pass(&t.hub, TASKS, None).await;
    assert!(full && items.is_empty());
    let todo = Todo {
        subject: "Call back".into(),
        body: None,
        start: None,
        due: Some(EventTime {
            utc: format!("{}T20:00:00Z", day(3)),
            zone: Some(Zone {
                iana: "America/New_York".into(),
                windows: Some("Eastern Standard Time".into()),
            }),
        }),
        status: TaskStatus::InProgress,
        percent_complete: 0,
        completed: None,
        categories: vec![],
        anchor: Some("t-1".into()),
    };
    let id = created(
        &push(
            &t.hub,
            TASKS,
            vec![op(
                WriteAction::Create,
                None,
                ItemBody::Todo(todo.clone()),
                &[],
            )],
        )
        .await,
    );
    let (items, full, cursor) = pass(&t.hub, TASKS, Some(cursor)).await;
    assert!(!full && items.len() == 1, "{items:#?}");
    let Some(ItemBody::Todo(read)) = &items[0].body else {
        panic!("a todo")
    };
    assert_eq!(read.anchor.as_deref(), Some("t-1"));
    assert_eq!(read.status, TaskStatus::InProgress);
    assert_eq!(
        read.due.as_ref().unwrap().utc,
        todo.due.as_ref().unwrap().utc
    );
    assert_eq!(
        read.due.as_ref().unwrap().zone.as_ref().unwrap().iana,
        "America/New_York"
    );
    // A new anchor replaces the link; only named fields change.
    let mut relinked = todo.clone();
    relinked.anchor = Some("t-2".into());
    relinked.subject = "not written".into();
    push(
        &t.hub,
        TASKS,
        vec![op(
            WriteAction::Update,
            Some(&id),
            ItemBody::Todo(relinked),
            &["anchor", "status"],
        )],
    )
    .await;
    assert!(lookup(&t.hub, TASKS, "anchor:t-1").await.is_empty());
    let found = lookup(&t.hub, TASKS, "anchor:t-2").await;
    let Some(ItemBody::Todo(read)) = &found[0].body else {
        panic!("a todo")
    };
    assert_eq!(read.subject, "Call back");
    let (items, _, _) = pass(&t.hub, TASKS, Some(cursor)).await;
    assert_eq!(items.len(), 1, "the relinked task is a change");
}

/// Eight writes at once to one mailbox through the runtime: the request limits (the manifest's
/// `max-concurrent-per-mailbox = 4` within `max-concurrent-requests = 4`, semaphores in the
/// `http` capability) keep the mailbox within Exchange Online's 4 concurrent requests, which the simulator enforces
/// with 429 `ApplicationThrottled`. With the mailbox's limit lowered to 2 the same load is
/// throttled, so the check can fail.
#[tokio::test]
async fn concurrent_writes_stay_within_the_mailbox_limit() {
    let sim = sim().await;
    let t = setup(&sim).await;
    sim.set_latency(Some(std::time::Duration::from_millis(100)));
    async fn burst(hub: &std::sync::Arc<Hub>) -> (usize, std::time::Duration) {
        let started = std::time::Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for n in 0..8 {
            let hub = hub.clone();
            set.spawn(async move {
                let c = contact(&format!("burst-{n}"));
                push(
                    &hub,
                    CONTACTS,
                    vec![op(
                        WriteAction::Create,
                        None,
                        ItemBody::MailboxContact(c),
                        &[],
                    )],
                )
                .await
            });
        }
        let mut throttled = 0;
        while let Some(r) = set.join_next().await {
            if matches!(r.unwrap()[0].outcome, Err(PluginError::Throttled(_))) {
                throttled += 1;
            }
        }
        (throttled, started.elapsed())
    }
    let (throttled, took) = burst(&t.hub).await;
    assert_eq!(
        throttled, 0,
        "the request limits keep the mailbox at 4 requests"
    );
    eprintln!("8 concurrent contact creates at 100 ms latency: {took:?}");
    assert!(
        took >= std::time::Duration::from_millis(200),
        "at most 4 at a time: {took:?}"
    );
    sim.graph().set_mailbox_concurrency_limit(2);
    let (throttled, _) = burst(&t.hub).await;
    assert!(
        throttled > 0,
        "a mailbox limit of 2 is exceeded by 4 concurrent requests"
    );
}
