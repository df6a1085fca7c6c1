//! The `autotask` connector's calendar scopes through the real runtime against the Autotask
//! simulator: resources as directory users, appointments, to-dos, service calls and the contacts
//! a resource owns; full reads, change-since-cursor reads that return only what changed, and
//! create/update/delete round trips visible in the simulator.

use crate::common;

use serde_json::{json, Value};
use syncbridge::hub::Hub;
use syncbridge::model::{Appointment, Item, ItemBody, PluginError, Sensitivity, ShowAs, Task};
use syncbridge::model::{
    Page, PullRequest, TaskStatus, WriteAction, WriteOp, WriteResult, ZonedTime,
};
use syncbridge_sim::{Seed, Services, SimConfig, Simulator};

const API_USER: &str = "api@msp.example";

async fn sim() -> Simulator {
    let doc = json!({"autotask": {
        "apiUsers": [{"userName": API_USER, "secret": "at-secret", "integrationCode": "TRACKING"}],
        "entities": {
            "Companies": [{"id": 0, "companyName": "MSP"},
                          {"id": 1, "companyName": "Contoso", "ownerResourceID": 30},
                          {"id": 2, "companyName": "Fabrikam", "ownerResourceID": 31},
                          {"id": 3, "companyName": "Tailspin", "ownerResourceID": 31}],
            "Contacts": [{"id": 101, "companyID": 1, "firstName": "Ann", "lastName": "Lee", "isActive": 1},
                         {"id": 102, "companyID": 1, "firstName": "Bo", "lastName": "Lee", "isActive": 1},
                         {"id": 201, "companyID": 2, "firstName": "Fab", "lastName": "Rikam", "isActive": 1},
                         {"id": 301, "companyID": 3, "firstName": "Tai", "lastName": "Spin", "isActive": 1}],
            "Opportunities": [{"id": 700, "companyID": 3, "contactID": 301, "ownerResourceID": 30, "title": "Renewal"}],
            "Resources": [{"id": 30, "firstName": "Tess", "lastName": "Tech", "email": "tess@msp.example", "userName": "tess", "isActive": true, "title": "Engineer"},
                          {"id": 31, "firstName": "Old", "lastName": "Timer", "email": "old@msp.example", "isActive": false}],
            "Appointments": [{"id": 500, "resourceID": 30, "title": "Lunch", "description": "Noodles", "startDateTime": "2026-03-02T12:00:00Z", "endDateTime": "2026-03-02T13:00:00Z"},
                             {"id": 501, "resourceID": 30, "title": "Gym", "startDateTime": "2026-03-03T07:00:00Z", "endDateTime": "2026-03-03T08:00:00Z"},
                             {"id": 502, "resourceID": 31, "title": "Not hers", "startDateTime": "2026-03-03T07:00:00Z", "endDateTime": "2026-03-03T08:00:00Z"}],
            "ToDos": [{"id": 600, "companyID": 1, "assignedToResourceID": 30, "actionType": 1, "activityDescription": "Call Ann\nabout the quote",
                       "startDateTime": "2026-03-03T09:00:00Z", "endDateTime": "2026-03-03T09:30:00Z"},
                      {"id": 601, "companyID": 2, "assignedToResourceID": 31, "actionType": 1, "activityDescription": "Other",
                       "startDateTime": "2026-03-03T09:00:00Z", "endDateTime": "2026-03-03T09:30:00Z"}],
            "ServiceCalls": [{"id": 800, "companyID": 1, "description": "Server swap", "status": 1, "startDateTime": "2026-03-04T10:00:00Z", "endDateTime": "2026-03-04T11:00:00Z"},
                             {"id": 801, "companyID": 2, "description": "Printer", "startDateTime": "2026-03-05T10:00:00Z", "endDateTime": "2026-03-05T11:00:00Z"},
                             {"id": 802, "companyID": 2, "description": "Not hers", "startDateTime": "2026-03-05T10:00:00Z", "endDateTime": "2026-03-05T11:00:00Z"}],
            "ServiceCallTickets": [{"id": 810, "serviceCallID": 800, "ticketID": 77}, {"id": 812, "serviceCallID": 802, "ticketID": 78}],
            "ServiceCallTicketResources": [{"id": 811, "serviceCallTicketID": 810, "resourceID": 30},
                                           {"id": 813, "serviceCallTicketID": 810, "resourceID": 31},
                                           {"id": 814, "serviceCallTicketID": 812, "resourceID": 31}],
            "ServiceCallTasks": [{"id": 820, "serviceCallID": 801, "taskID": 88}],
            "ServiceCallTaskResources": [{"id": 821, "serviceCallTaskID": 820, "resourceID": 30}]
        }
    }});
    Simulator::start(SimConfig {
        services: Services {
            autotask: true,
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
    common::install(&t.hub, "autotask").await;
    let config = json!({"api_user": API_USER, "zone_lookup_url": format!("{}/atservicesrest", sim.base_url())}).to_string();
    let headers = json!({"kind": "headers", "headers": {"ApiIntegrationCode": "TRACKING", "UserName": API_USER, "Secret": "at-secret"}}).to_string();
    common::loopback_connection(&t.hub, "psa", "autotask", &config, &[("default", &headers)]).await;
    t
}

async fn pull(hub: &Hub, scope: &str, cursor: Option<String>) -> Result<Page, PluginError> {
    let (record, plugin, ctx) = hub.connection_context("psa").await.unwrap();
    let request = PullRequest {
        scope: scope.into(),
        cursor,
        max_items: 500,
    };
    let called = hub
        .runtime()
        .pull(&plugin, ctx, &record.config, request)
        .await
        .expect("no trap");
    hub.store()
        .apply_state_changes("psa", &called.state_changes)
        .await
        .unwrap();
    called.value
}

/// A whole pass: its items, whether it was full, and the cursor it ends with.
async fn pass(hub: &Hub, scope: &str, cursor: Option<String>) -> (Vec<Item>, bool, Option<String>) {
    let mut cursor = cursor;
    let mut items = Vec::new();
    for _ in 0..50 {
        let page = pull(hub, scope, cursor).await.expect("page");
        items.extend(page.items);
        if !page.more {
            return (items, page.full, page.cursor);
        }
        cursor = page.cursor;
    }
    panic!("runaway paging");
}

async fn push(hub: &Hub, scope: &str, batch: Vec<WriteOp>) -> Vec<WriteResult> {
    let (record, plugin, ctx) = hub.connection_context("psa").await.unwrap();
    let called = hub
        .runtime()
        .push(&plugin, ctx, &record.config, scope, batch)
        .await
        .expect("no trap");
    hub.store()
        .apply_state_changes("psa", &called.state_changes)
        .await
        .unwrap();
    called.value.expect("push answers")
}

fn ids(items: &[Item]) -> Vec<&str> {
    let mut v: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    v.sort();
    v
}

fn op(
    action: WriteAction,
    target: Option<&str>,
    body: Option<ItemBody>,
    fields: &[&str],
) -> WriteOp {
    WriteOp {
        op_id: "op".into(),
        action,
        target_id: target.map(str::to_owned),
        body,
        fields: fields.iter().map(|f| f.to_string()).collect(),
    }
}

fn zoned(utc: &str) -> ZonedTime {
    ZonedTime {
        utc: utc.into(),
        time_zone: None,
    }
}

fn created_id(results: &[WriteResult]) -> i64 {
    match &results[0].outcome {
        Ok(ok) => ok.target_id.parse().expect("numeric id"),
        Err(e) => panic!("write failed: {e:?}"),
    }
}

/// Waits so a write's modification time is after the cursor's (the simulator stamps ms).
async fn tick() {
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
}

#[tokio::test]
async fn resources_read_as_directory_users_in_full_passes() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let (items, full, cursor) = pass(&t.hub, "resources", None).await;
    assert!(full);
    assert_eq!(ids(&items), ["30", "31"]);
    let Some(ItemBody::DirectoryUser(u)) = &items.iter().find(|i| i.id == "30").unwrap().body
    else {
        panic!()
    };
    assert_eq!(
        (
            u.user_principal_name.as_str(),
            u.mail.as_deref(),
            u.account_enabled
        ),
        ("tess", Some("tess@msp.example"), true)
    );
    assert_eq!(u.job_title.as_deref(), Some("Engineer"));
    let Some(ItemBody::DirectoryUser(old)) = &items.iter().find(|i| i.id == "31").unwrap().body
    else {
        panic!()
    };
    assert_eq!(
        (old.user_principal_name.as_str(), old.account_enabled),
        ("old@msp.example", false)
    );
    // Resources have no modification date: the next pass is full again.
    let (again, full, _) = pass(&t.hub, "resources", cursor).await;
    assert!(full && again.len() == 2);
}

#[tokio::test]
async fn appointments_read_then_only_changes_since_the_cursor() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let scope = "appointments:resource=30";
    let (items, full, cursor) = pass(&t.hub, scope, None).await;
    assert!(full);
    assert_eq!(ids(&items), ["500", "501"]);
    let Some(ItemBody::Appointment(a)) = &items.iter().find(|i| i.id == "500").unwrap().body else {
        panic!()
    };
    assert_eq!(
        (
            a.subject.as_deref(),
            a.body.as_deref(),
            a.start.utc.as_str()
        ),
        (Some("Lunch"), Some("Noodles"), "2026-03-02T12:00:00Z")
    );
    // Nothing changed: the overlap's repeats are dropped.
    let (none, full, cursor) = pass(&t.hub, scope, cursor).await;
    assert!(!full);
    assert!(none.is_empty(), "{none:?}");
    tick().await;
    assert!(sim
        .autotask()
        .edit("appointments", 501, json!({"title": "Gym (moved)"})));
    let (changed, full, _) = pass(&t.hub, scope, cursor).await;
    assert!(!full);
    assert_eq!(ids(&changed), ["501"]);
}

#[tokio::test]
async fn appointments_round_trip_create_update_delete() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let scope = "appointments:resource=30";
    let appt = Appointment {
        subject: Some("Dentist".into()),
        start: zoned("2026-03-06T08:00:00Z"),
        end: zoned("2026-03-06T09:00:00Z"),
        all_day: false,
        show_as: ShowAs::Busy,
        sensitivity: Sensitivity::Normal,
        recurrence: None,
        organizer: None,
        attendees: Vec::new(),
        location: Some("Main St".into()),
        body: Some("Bring card".into()),
        categories: Vec::new(),
    };
    let id = created_id(
        &push(
            &t.hub,
            scope,
            vec![op(
                WriteAction::Create,
                None,
                Some(ItemBody::Appointment(appt.clone())),
                &[],
            )],
        )
        .await,
    );
    let row = sim.autotask().get("appointments", id).expect("created");
    assert_eq!(
        (
            row["resourceID"].clone(),
            row["title"].clone(),
            row["description"].clone()
        ),
        (json!(30), json!("Dentist"), json!("Bring card"))
    );
    assert_eq!(row["startDateTime"], "2026-03-06T08:00:00Z");
    // An update writes the named fields only; a named empty body clears the description.
    let moved = Appointment {
        subject: Some("Ignored".into()),
        end: zoned("2026-03-06T09:30:00Z"),
        body: None,
        ..appt
    };
    let r = push(
        &t.hub,
        scope,
        vec![op(
            WriteAction::Update,
            Some(&id.to_string()),
            Some(ItemBody::Appointment(moved)),
            &["end", "body", "location"],
        )],
    )
    .await;
    assert!(r[0].outcome.is_ok(), "{r:?}");
    let row = sim.autotask().get("appointments", id).unwrap();
    assert_eq!(
        (
            row["title"].clone(),
            row["endDateTime"].clone(),
            row["description"].clone()
        ),
        (json!("Dentist"), json!("2026-03-06T09:30:00Z"), Value::Null)
    );
    let r = push(
        &t.hub,
        scope,
        vec![op(WriteAction::Delete, Some(&id.to_string()), None, &[])],
    )
    .await;
    assert!(r[0].outcome.is_ok(), "{r:?}");
    assert!(sim.autotask().get("appointments", id).is_none());
}

#[tokio::test]
async fn todos_read_then_only_changes_since_the_cursor() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let scope = "todos:resource=30";
    let (items, full, cursor) = pass(&t.hub, scope, None).await;
    assert!(full);
    assert_eq!(ids(&items), ["600"]);
    let Some(ItemBody::Task(task)) = &items[0].body else {
        panic!()
    };
    assert_eq!(
        (task.title.as_str(), task.body.as_deref(), task.status),
        ("Call Ann", Some("about the quote"), TaskStatus::NotStarted)
    );
    tick().await;
    let new = sim.autotask().insert("ToDos", json!({"companyID": 1, "assignedToResourceID": 30, "actionType": 1, "activityDescription": "New one",
        "startDateTime": "2026-03-07T09:00:00Z", "endDateTime": "2026-03-07T09:30:00Z"}));
    let (changed, full, _) = pass(&t.hub, scope, cursor).await;
    assert!(!full);
    assert_eq!(ids(&changed), [new.to_string().as_str()]);
}

#[tokio::test]
async fn todos_round_trip_create_complete_delete() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let scope = "todos:resource=30,action=1";
    let task = Task {
        title: "Order parts".into(),
        body: Some("two disks".into()),
        start: Some(zoned("2026-03-08T09:00:00Z")),
        due: Some(zoned("2026-03-08T17:00:00Z")),
        completed: None,
        status: TaskStatus::NotStarted,
        categories: Vec::new(),
    };
    let id = created_id(
        &push(
            &t.hub,
            scope,
            vec![op(
                WriteAction::Create,
                None,
                Some(ItemBody::Task(task.clone())),
                &[],
            )],
        )
        .await,
    );
    let row = sim.autotask().get("todos", id).expect("created");
    assert_eq!(
        (
            row["companyID"].clone(),
            row["assignedToResourceID"].clone()
        ),
        (json!(0), json!(30))
    );
    assert_eq!(row["activityDescription"], "Order parts\ntwo disks");
    assert!(row["completedDate"].is_null());
    let done = Task {
        status: TaskStatus::Completed,
        completed: Some(zoned("2026-03-08T12:00:00Z")),
        title: "Renamed".into(),
        ..task
    };
    let r = push(
        &t.hub,
        scope,
        vec![op(
            WriteAction::Update,
            Some(&id.to_string()),
            Some(ItemBody::Task(done)),
            &["status", "completed"],
        )],
    )
    .await;
    assert!(r[0].outcome.is_ok(), "{r:?}");
    let row = sim.autotask().get("todos", id).unwrap();
    assert_eq!(row["completedDate"], "2026-03-08T12:00:00Z");
    assert_eq!(
        row["activityDescription"], "Order parts\ntwo disks",
        "the title was not named"
    );
    let r = push(
        &t.hub,
        scope,
        vec![op(WriteAction::Delete, Some(&id.to_string()), None, &[])],
    )
    .await;
    assert!(r[0].outcome.is_ok(), "{r:?}");
    assert!(sim.autotask().get("todos", id).is_none());
}

#[tokio::test]
async fn service_calls_read_with_tickets_tasks_and_resources_and_only_changes_since_the_cursor() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let scope = "service-calls:resource=30";
    let (items, full, cursor) = pass(&t.hub, scope, None).await;
    assert!(full);
    assert_eq!(ids(&items), ["800", "801"]);
    let Some(ItemBody::ServiceCall(call)) = &items.iter().find(|i| i.id == "800").unwrap().body
    else {
        panic!()
    };
    assert_eq!(call.ticket_ids, ["77"]);
    assert_eq!(call.resource_ids, ["30", "31"]);
    assert_eq!(
        (
            call.company.as_ref().map(|c| c.id.as_str()),
            call.status.as_deref()
        ),
        (Some("1"), Some("1"))
    );
    let Some(ItemBody::ServiceCall(task_call)) =
        &items.iter().find(|i| i.id == "801").unwrap().body
    else {
        panic!()
    };
    assert_eq!(
        (task_call.ticket_ids.clone(), task_call.resource_ids.clone()),
        (vec!["task:88".to_string()], vec!["30".to_string()])
    );
    tick().await;
    assert!(sim.autotask().edit(
        "servicecalls",
        801,
        json!({"canceledDateTime": "2026-03-01T00:00:00Z"})
    ));
    let (changed, full, _) = pass(&t.hub, scope, cursor).await;
    assert!(!full);
    assert_eq!(ids(&changed), ["801"]);
    let Some(ItemBody::ServiceCall(c)) = &changed[0].body else {
        panic!()
    };
    assert!(c.canceled);
    // Read only: service calls go one way.
    let (record, plugin, ctx) = t.hub.connection_context("psa").await.unwrap();
    let refused = t
        .hub
        .runtime()
        .push(&plugin, ctx, &record.config, scope, vec![])
        .await
        .expect("no trap")
        .value;
    assert!(
        matches!(refused, Err(PluginError::Unsupported(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn owned_contacts_are_account_manager_and_opportunity_contacts() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let scope = "contacts:owner=30";
    let (items, full, cursor) = pass(&t.hub, scope, None).await;
    assert!(full);
    // Contoso's contacts (Tess is its account manager) and Tailspin's Tai (her opportunity).
    assert_eq!(ids(&items), ["101", "102", "301"]);
    tick().await;
    assert!(sim
        .autotask()
        .edit("contacts", 102, json!({"title": "CFO"})));
    assert!(sim
        .autotask()
        .edit("contacts", 201, json!({"title": "not hers"})));
    let (changed, full, _) = pass(&t.hub, scope, cursor).await;
    assert!(!full);
    assert_eq!(ids(&changed), ["102"]);
}
