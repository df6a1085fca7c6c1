//! The `connectwise` connector's calendar scopes through the real runtime against the
//! ConnectWise simulator over loopback HTTP: `members` (directory users), and per member
//! `schedule-entries` (appointments) and `activities` (tasks), each read (a full pass, then
//! only what changed since the cursor) and written (create, update of the named fields, closing,
//! delete), checked in the simulator's rows.

use crate::common;

use serde_json::{json, Value};
use syncbridge::hub::Hub;
use syncbridge::model::{
    Appointment, DirectoryUser, Item, ItemBody, Page, PluginError, PullRequest, Sensitivity,
    ShowAs, Task, TaskStatus, WriteAction, WriteOp, WriteResult, ZonedTime,
};
use syncbridge_sim::{Seed, Services, SimConfig, Simulator};

const PRIVATE_KEY: &str = "cw-Cal3ndar-k3y";
const CLIENT_ID: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3302";

async fn sim() -> Simulator {
    let doc = json!({"connectwise": {
        "credentials": [{"companyId": "msp", "publicKey": "pubkey", "privateKey": PRIVATE_KEY}],
        "clientIds": [CLIENT_ID],
        "companies": [{"id": 10, "identifier": "Contoso", "name": "Contoso Ltd"}],
        "members": [
            {"id": 5, "identifier": "jdoe", "firstName": "John", "lastName": "Doe",
             "primaryEmail": "john.doe@msp.example", "timeZone": {"name": "Pacific Standard Time"}},
            {"id": 6, "identifier": "asmith", "firstName": "Ann", "lastName": "Smith",
             "primaryEmail": "ann.smith@msp.example", "timeZone": {"name": "W. Europe Standard Time"}},
            {"id": 7, "identifier": "gone", "firstName": "Gone", "lastName": "Away", "inactiveFlag": true}
        ],
        "activities": [
            {"id": 70, "name": "Call Contoso", "assignTo": {"identifier": "jdoe"}, "company": {"id": 10},
             "notes": "about the renewal", "dateStart": "2026-03-02T09:00:00Z"},
            {"id": 71, "name": "Old follow-up", "assignTo": {"identifier": "jdoe"}, "status": {"name": "Closed"}},
            {"id": 72, "name": "Not mine", "assignTo": {"identifier": "asmith"}}
        ],
        "scheduleEntries": [
            {"id": 80, "objectId": 70, "member": {"identifier": "jdoe"}, "type": {"identifier": "C"},
             "name": "Call Contoso", "dateStart": "2026-03-02T09:00:00Z", "dateEnd": "2026-03-02T09:30:00Z"},
            {"id": 81, "member": {"identifier": "jdoe"}, "type": {"identifier": "M"}, "status": {"name": "Tentative"},
             "name": "Planning", "dateStart": "2026-03-03T13:00:00Z", "dateEnd": "2026-03-03T14:00:00Z"},
            {"id": 82, "member": {"identifier": "asmith"}, "type": {"identifier": "M"},
             "name": "Standup", "dateStart": "2026-03-03T08:00:00Z", "dateEnd": "2026-03-03T08:15:00Z"}
        ]
    }});
    Simulator::start(SimConfig {
        services: Services {
            connectwise: true,
            ..Services::NONE
        },
        seed: Some(Seed::from_json(&doc.to_string()).unwrap()),
        ..SimConfig::all()
    })
    .await
    .expect("simulator starts")
}

async fn setup(sim: &Simulator) -> common::TestHub {
    let t = common::hub().await;
    common::install(&t.hub, "connectwise").await;
    let config = json!({"base_url": sim.connectwise_url(), "client_id": CLIENT_ID});
    let credential =
        json!({"kind": "basic", "username": "msp+pubkey", "password": PRIVATE_KEY}).to_string();
    common::loopback_connection(
        &t.hub,
        "psa",
        "connectwise",
        &config.to_string(),
        &[("default", &credential)],
    )
    .await;
    t
}

async fn pull(hub: &Hub, scope: &str, cursor: Option<String>, max_items: u32) -> Page {
    let (record, plugin, ctx) = hub.connection_context("psa").await.unwrap();
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
    called.value.expect("a page")
}

/// Every page of one pass: its items, the cursor it ends with, whether it was full, pages.
async fn pass(
    hub: &Hub,
    scope: &str,
    from: Option<String>,
    max_items: u32,
) -> (Vec<Item>, Option<String>, bool, usize) {
    let mut cursor = from;
    let mut items = Vec::new();
    let mut pages = 0;
    loop {
        let page = pull(hub, scope, cursor, max_items).await;
        pages += 1;
        items.extend(page.items);
        cursor = page.cursor;
        if !page.more {
            return (items, cursor, page.full, pages);
        }
        assert!(pages < 20, "runaway paging");
    }
}

async fn push(hub: &Hub, scope: &str, batch: Vec<WriteOp>) -> Vec<WriteResult> {
    let (record, plugin, ctx) = hub.connection_context("psa").await.unwrap();
    let called = hub
        .runtime()
        .push(&plugin, ctx, &record.config, scope, batch)
        .await
        .expect("no trap");
    called.value.expect("results")
}

async fn lookup(hub: &Hub, scope: &str, keys: &[&str]) -> Result<Vec<Item>, PluginError> {
    let (record, plugin, ctx) = hub.connection_context("psa").await.unwrap();
    hub.runtime()
        .lookup_items(
            &plugin,
            ctx,
            &record.config,
            scope,
            keys.iter().map(|k| k.to_string()).collect(),
        )
        .await
        .expect("no trap")
        .value
}

fn ids(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.id.as_str()).collect()
}

fn op(
    id: &str,
    action: WriteAction,
    target: Option<&str>,
    body: Option<ItemBody>,
    fields: &[&str],
) -> WriteOp {
    WriteOp {
        op_id: id.into(),
        action,
        target_id: target.map(str::to_owned),
        body,
        fields: fields.iter().map(|f| f.to_string()).collect(),
    }
}

fn ok_id(r: &WriteResult) -> i64 {
    match &r.outcome {
        Ok(ok) => ok.target_id.parse().unwrap(),
        Err(e) => panic!("{}: {e:?}", r.op_id),
    }
}

/// ConnectWise stamps `lastUpdated` to the second: let the next one begin.
async fn next_second() {
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
}

fn user(item: &Item) -> &DirectoryUser {
    match &item.body {
        Some(ItemBody::DirectoryUser(u)) => u,
        other => panic!("not a user: {other:?}"),
    }
}

#[tokio::test]
async fn members_read_as_directory_users_then_only_changes() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let (items, cursor, full, pages) = pass(&t.hub, "members", None, 2).await;
    assert!(full);
    assert_eq!(pages, 2, "Link paging at two a page");
    assert_eq!(ids(&items), ["5", "6", "7"]);
    let jdoe = user(&items[0]);
    assert_eq!(jdoe.user_principal_name, "john.doe@msp.example");
    assert_eq!(jdoe.given_name.as_deref(), Some("John"));
    assert!(jdoe.account_enabled);
    let attr = |u: &DirectoryUser, n: &str| {
        u.attributes
            .iter()
            .find(|a| a.name == n)
            .map(|a| a.value.clone())
    };
    assert_eq!(attr(jdoe, "identifier").as_deref(), Some("jdoe"));
    assert_eq!(
        attr(jdoe, "timeZone").as_deref(),
        Some("Pacific Standard Time")
    );
    assert_eq!(
        attr(jdoe, "timeZone.iana").as_deref(),
        Some("America/Los_Angeles")
    );
    let gone = user(&items[2]);
    assert!(!gone.account_enabled);
    assert_eq!(gone.user_principal_name, "gone");

    next_second().await;
    next_second().await;
    assert!(sim
        .connectwise()
        .edit("system/members", 6, json!({"inactiveFlag": true})));
    let (changed, cursor2, full, _) = pass(&t.hub, "members", cursor.clone(), 100).await;
    assert!(!full, "a pass from a cursor is not full");
    // the seeded rows share the last pass's newest second, so they come again (a write in that
    // second after the read would carry the same stamp); the edit comes with them
    assert_eq!(ids(&changed), ["5", "6", "7"]);
    assert!(!user(&changed[1]).account_enabled);
    let c: Value = serde_json::from_str(cursor2.as_deref().unwrap()).unwrap();
    assert_eq!(
        c["since"],
        sim.connectwise().get("system/members", 6).unwrap()["_info"]["lastUpdated"]
    );
    // nothing changed since: the overlap reads 5 and 7 back (older than since, reported
    // already) and drops them; 6 carries since's own second and comes again
    let (quiet, _, full, _) = pass(&t.hub, "members", cursor2, 100).await;
    assert!(!full);
    assert_eq!(ids(&quiet), ["6"]);
    let by_mail = lookup(&t.hub, "members", &["email:ann.smith@msp.example"])
        .await
        .unwrap();
    assert_eq!(ids(&by_mail), ["6"]);
}

#[tokio::test]
async fn schedule_entries_of_a_member_read_as_appointments_then_only_changes() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let scope = "schedule-entries:member=jdoe";
    let (items, cursor, full, _) = pass(&t.hub, scope, None, 100).await;
    assert!(full);
    assert_eq!(
        ids(&items),
        ["80", "81"],
        "asmith's entry is not in jdoe's scope"
    );
    let Some(ItemBody::Appointment(a)) = &items[1].body else {
        panic!()
    };
    assert_eq!(a.subject.as_deref(), Some("Planning"));
    assert_eq!(a.start.utc, "2026-03-03T13:00:00Z");
    assert_eq!(a.end.utc, "2026-03-03T14:00:00Z");
    assert_eq!(a.show_as, ShowAs::Tentative);
    assert_eq!(a.categories, ["Meeting"]);
    next_second().await;
    next_second().await;
    assert!(sim.connectwise().edit(
        "schedule/entries",
        80,
        json!({"name": "Call Contoso (moved)"})
    ));
    assert!(sim
        .connectwise()
        .edit("schedule/entries", 82, json!({"name": "Standup (moved)"})));
    let (changed, cursor, full, _) = pass(&t.hub, scope, cursor, 100).await;
    assert!(!full);
    // 81 shares the first pass's newest second and comes again; 82 is asmith's
    assert_eq!(ids(&changed), ["80", "81"]);
    let (quiet, _, _, _) = pass(&t.hub, scope, cursor, 100).await;
    assert_eq!(ids(&quiet), ["80"], "81 is an older repeat now: dropped");
    let Some(ItemBody::Appointment(a)) = &changed[0].body else {
        panic!()
    };
    assert_eq!(a.subject.as_deref(), Some("Call Contoso (moved)"));
}

fn appointment(subject: &str, start: &str, end: &str, show_as: ShowAs) -> Appointment {
    Appointment {
        subject: Some(subject.into()),
        start: ZonedTime {
            utc: start.into(),
            time_zone: Some("America/Los_Angeles".into()),
        },
        end: ZonedTime {
            utc: end.into(),
            time_zone: Some("America/Los_Angeles".into()),
        },
        all_day: false,
        show_as,
        sensitivity: Sensitivity::Normal,
        recurrence: None,
        organizer: Some("john.doe@msp.example".into()),
        attendees: Vec::new(),
        location: Some("Room 4".into()),
        body: Some("agenda".into()),
        categories: Vec::new(),
    }
}

#[tokio::test]
async fn appointments_create_update_and_delete_schedule_entries() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let scope = "schedule-entries:member=jdoe";
    let created = push(
        &t.hub,
        scope,
        vec![op(
            "c",
            WriteAction::Create,
            None,
            Some(ItemBody::Appointment(appointment(
                "Quarterly review",
                "2026-03-05T17:00:00.0000000Z",
                "2026-03-05T18:30:00Z",
                ShowAs::Busy,
            ))),
            &[],
        )],
    )
    .await;
    let id = ok_id(&created[0]);
    let row = sim.connectwise().get("schedule/entries", id).unwrap();
    assert_eq!(row["member"]["identifier"], "jdoe");
    assert_eq!(row["type"]["identifier"], "M");
    assert_eq!(row["name"], "Quarterly review");
    assert_eq!(row["dateStart"], "2026-03-05T17:00:00Z");
    assert_eq!(row["hours"], 1.5);
    assert_eq!(row["status"]["name"], "Firm");
    assert_eq!(
        created[0].outcome.as_ref().unwrap().version.as_ref(),
        row["_info"]["lastUpdated"]
            .as_str()
            .map(str::to_owned)
            .as_ref()
    );

    let mut moved = appointment(
        "Renamed but not written",
        "2026-03-05T17:00:00Z",
        "2026-03-05T19:00:00Z",
        ShowAs::Tentative,
    );
    moved.location = Some("elsewhere".into());
    let updated = push(
        &t.hub,
        scope,
        vec![op(
            "u",
            WriteAction::Update,
            Some(&id.to_string()),
            Some(ItemBody::Appointment(moved)),
            &["end", "show_as", "location"],
        )],
    )
    .await;
    ok_id(&updated[0]);
    let row = sim.connectwise().get("schedule/entries", id).unwrap();
    assert_eq!(row["name"], "Quarterly review", "subject was not named");
    assert_eq!(row["dateEnd"], "2026-03-05T19:00:00Z");
    assert_eq!(row["hours"], 2.0);
    assert_eq!(row["status"]["name"], "Tentative");
    let found = lookup(&t.hub, scope, &[&format!("id:{id}"), "id:82"])
        .await
        .unwrap();
    assert_eq!(
        ids(&found),
        [id.to_string().as_str()],
        "asmith's entry 82 is not jdoe's"
    );

    let deleted = push(
        &t.hub,
        scope,
        vec![op(
            "d",
            WriteAction::Delete,
            Some(&id.to_string()),
            None,
            &[],
        )],
    )
    .await;
    ok_id(&deleted[0]);
    assert!(sim.connectwise().get("schedule/entries", id).is_none());
    let again = push(
        &t.hub,
        scope,
        vec![op(
            "d",
            WriteAction::Delete,
            Some(&id.to_string()),
            None,
            &[],
        )],
    )
    .await;
    assert!(
        matches!(again[0].outcome, Err(PluginError::NotFound(_))),
        "{:?}",
        again[0].outcome
    );
}

fn task_of(item: &Item) -> &Task {
    match &item.body {
        Some(ItemBody::Task(t)) => t,
        other => panic!("not a task: {other:?}"),
    }
}

#[tokio::test]
async fn activities_of_a_member_read_as_tasks_then_only_changes() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let scope = "activities:member=jdoe";
    let (items, cursor, full, _) = pass(&t.hub, scope, None, 100).await;
    assert!(full);
    assert_eq!(ids(&items), ["70", "71"]);
    let call = task_of(&items[0]);
    assert_eq!(call.title, "Call Contoso");
    assert_eq!(call.body.as_deref(), Some("about the renewal"));
    assert_eq!(call.status, TaskStatus::NotStarted);
    assert_eq!(
        task_of(&items[1]).status,
        TaskStatus::Completed,
        "status Closed has closedFlag"
    );
    next_second().await;
    next_second().await;
    assert!(sim.connectwise().edit(
        "sales/activities",
        70,
        json!({"status": {"id": 2, "name": "Closed"}})
    ));
    let (changed, _, full, _) = pass(&t.hub, scope, cursor, 100).await;
    assert!(!full);
    // 71 shares the first pass's newest second and comes again
    assert_eq!(ids(&changed), ["70", "71"]);
    assert_eq!(task_of(&changed[0]).status, TaskStatus::Completed);
}

#[tokio::test]
async fn tasks_create_update_close_and_delete_activities() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let scope = "activities:member=jdoe";
    let new = Task {
        title: "Send the quote".into(),
        body: Some("v2 with discount".into()),
        start: None,
        due: Some(ZonedTime {
            utc: "2026-03-06T17:00:00Z".into(),
            time_zone: None,
        }),
        completed: None,
        status: TaskStatus::NotStarted,
        categories: Vec::new(),
    };
    let created = push(
        &t.hub,
        scope,
        vec![op(
            "c",
            WriteAction::Create,
            None,
            Some(ItemBody::Task(new.clone())),
            &[],
        )],
    )
    .await;
    let id = ok_id(&created[0]);
    let row = sim.connectwise().get("sales/activities", id).unwrap();
    assert_eq!(row["assignTo"]["identifier"], "jdoe");
    assert_eq!(row["name"], "Send the quote");
    assert_eq!(row["notes"], "v2 with discount");
    assert_eq!(row["dateEnd"], "2026-03-06T17:00:00Z");
    assert_eq!(row["status"]["name"], "Open");

    let done = Task {
        title: "Quote sent".into(),
        body: None,
        status: TaskStatus::Completed,
        ..new
    };
    let closed = push(
        &t.hub,
        scope,
        vec![op(
            "close",
            WriteAction::Update,
            Some(&id.to_string()),
            Some(ItemBody::Task(done)),
            &["status", "body"],
        )],
    )
    .await;
    ok_id(&closed[0]);
    let row = sim.connectwise().get("sales/activities", id).unwrap();
    assert_eq!(row["status"]["name"], "Closed");
    assert!(row["notes"].is_null(), "a named, empty body is cleared");
    assert_eq!(row["name"], "Send the quote", "title was not named");
    let found = lookup(&t.hub, scope, &[&format!("id:{id}")]).await.unwrap();
    assert_eq!(task_of(&found[0]).status, TaskStatus::Completed);

    let deleted = push(
        &t.hub,
        scope,
        vec![op(
            "d",
            WriteAction::Delete,
            Some(&id.to_string()),
            None,
            &[],
        )],
    )
    .await;
    ok_id(&deleted[0]);
    assert!(sim.connectwise().get("sales/activities", id).is_none());
    let refused = push(
        &t.hub,
        "members",
        vec![op("u", WriteAction::Update, Some("5"), None, &["mail"])],
    )
    .await;
    assert!(matches!(
        refused[0].outcome,
        Err(PluginError::Unsupported(_))
    ));
}
