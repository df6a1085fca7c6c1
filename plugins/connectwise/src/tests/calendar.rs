//! The calendar scopes natively: members, schedule entries and activities, against recorded
//! ConnectWise answers.

use super::*;

fn member_rows() -> Value {
    json!([
        {"id": 5, "identifier": "jdoe", "firstName": "John", "lastName": "Doe", "title": "Tech",
         "primaryEmail": "john.doe@msp.example", "officePhone": "555 0100", "inactiveFlag": false,
         "licenseClass": "F", "timeZone": {"id": 1, "name": "Eastern Standard Time"},
         "defaultDepartment": {"id": 2, "name": "Services"},
         "_info": {"lastUpdated": "2026-03-01T10:00:00Z"}},
        {"id": 6, "identifier": "old", "firstName": "Old", "lastName": "Timer", "inactiveFlag": true,
         "_info": {"lastUpdated": "2026-03-01T10:00:20Z"}}
    ])
}

fn user(item: &Item) -> &DirectoryUser {
    match &item.body {
        Some(ItemBody::DirectoryUser(u)) => u,
        other => panic!("not a user: {other:?}"),
    }
}

fn attr<'a>(u: &'a DirectoryUser, name: &str) -> Option<&'a str> {
    u.attributes
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.value.as_str())
}

#[test]
fn members_are_directory_users_read_again_from_an_overlapping_cursor() {
    let log = Log::default();
    let rows = member_rows();
    let page = with_http(
        recorder(&log, move |_| response(200, &rows.to_string())),
        || exports::pull::<ConnectWise>(CFG, pull_req("members", None)),
    )
    .unwrap();
    assert!(page.full && !page.more);
    assert_eq!(log.borrow()[0].path(), format!("{ROOT}/system/members"));
    assert_eq!(
        log.borrow()[0].query("conditions"),
        None,
        "no cursor: everything"
    );
    let jdoe = user(&page.items[0]);
    assert_eq!(page.items[0].id, "5");
    assert_eq!(jdoe.user_principal_name, "john.doe@msp.example");
    assert_eq!(jdoe.mail.as_deref(), Some("john.doe@msp.example"));
    assert_eq!(jdoe.display_name.as_deref(), Some("John Doe"));
    assert_eq!(jdoe.business_phone.as_deref(), Some("555 0100"));
    assert_eq!(jdoe.department.as_deref(), Some("Services"));
    assert!(jdoe.account_enabled);
    assert_eq!(attr(jdoe, "identifier"), Some("jdoe"));
    assert_eq!(attr(jdoe, "timeZone"), Some("Eastern Standard Time"));
    assert_eq!(attr(jdoe, "timeZone.iana"), Some("America/New_York"));
    let old = user(&page.items[1]);
    assert_eq!(old.user_principal_name, "old", "no e-mail: the identifier");
    assert!(!old.account_enabled, "inactiveFlag");

    // the next pass asks for what changed after the newest stamp less the overlap, and drops
    // what the last pass already reported unchanged
    let log = Log::default();
    let again = json!([
        member_rows()[0].clone(),
        {"id": 7, "identifier": "late", "firstName": "Late", "lastName": "Write",
         "_info": {"lastUpdated": "2026-03-01T10:00:20Z"}}
    ]);
    let next = with_http(
        recorder(&log, move |_| response(200, &again.to_string())),
        || exports::pull::<ConnectWise>(CFG, pull_req("members", page.cursor.as_deref())),
    )
    .unwrap();
    assert_eq!(
        log.borrow()[0].query("conditions").as_deref(),
        Some("lastUpdated > [2026-03-01T09:59:50Z]")
    );
    assert!(!next.full);
    assert_eq!(
        next.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        ["7"]
    );
}

fn entry_row() -> Value {
    json!({"id": 80, "objectId": 70, "name": "Visit Contoso",
        "member": {"id": 5, "identifier": "jdoe", "name": "John Doe"},
        "type": {"id": 1, "identifier": "S", "name": "Service"},
        "status": {"id": 2, "name": "Tentative"}, "where": {"id": 1, "name": "On-Site"},
        "dateStart": "2026-03-02T09:00:00Z", "dateEnd": "2026-03-02T10:30:00Z",
        "doneFlag": false, "hours": 1.5, "_info": {"lastUpdated": "2026-03-01T08:00:00Z"}})
}

#[test]
fn schedule_entries_of_a_member_are_appointments() {
    let log = Log::default();
    let page = with_http(
        recorder(&log, |_| response(200, &json!([entry_row()]).to_string())),
        || exports::pull::<ConnectWise>(CFG, pull_req("schedule-entries:member=jdoe", None)),
    )
    .unwrap();
    let c = log.borrow()[0].clone();
    assert_eq!(c.path(), format!("{ROOT}/schedule/entries"));
    assert_eq!(
        c.query("conditions").as_deref(),
        Some(r#"member/identifier = "jdoe""#)
    );
    let Some(ItemBody::Appointment(a)) = &page.items[0].body else {
        panic!("not an appointment")
    };
    assert_eq!(a.subject.as_deref(), Some("Visit Contoso"));
    assert_eq!(a.start.utc, "2026-03-02T09:00:00Z");
    assert_eq!(a.end.utc, "2026-03-02T10:30:00Z");
    assert_eq!(a.show_as, ShowAs::Tentative);
    assert_eq!(a.location.as_deref(), Some("On-Site"));
    assert_eq!(a.categories, ["Service"]);
    for bad in [
        "schedule-entries",
        "activities",
        "members:member=x",
        "activities:member=x,type=S",
    ] {
        let e = exports::pull::<ConnectWise>(CFG, pull_req(bad, None)).unwrap_err();
        assert!(matches!(e, PluginError::Invalid(_)), "{bad}: {e:?}");
    }
}

fn appointment(subject: &str, start: &str, end: &str) -> Appointment {
    Appointment {
        subject: Some(subject.into()),
        start: ZonedTime {
            utc: start.into(),
            time_zone: Some("Europe/Berlin".into()),
        },
        end: ZonedTime {
            utc: end.into(),
            time_zone: None,
        },
        all_day: false,
        show_as: ShowAs::Busy,
        sensitivity: Sensitivity::Normal,
        recurrence: None,
        organizer: None,
        attendees: Vec::new(),
        location: Some("Room 1".into()),
        body: Some("agenda".into()),
        categories: Vec::new(),
    }
}

fn cal_op(
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

const SCHEDULE_STATUSES: &str = r#"[{"id":1,"name":"Firm"},{"id":2,"name":"Tentative"}]"#;

#[test]
fn appointments_create_patch_only_named_fields_and_delete_entries() {
    let log = Log::default();
    let results = with_http(
        recorder(&log, |c| match (c.method, c.path()) {
            (_, p) if p.ends_with("/schedule/statuses") => response(200, SCHEDULE_STATUSES),
            (Method::Post, _) => response(
                201,
                r#"{"id":90,"_info":{"lastUpdated":"2026-03-01T11:00:00Z"}}"#,
            ),
            (Method::Patch, _) => response(
                200,
                r#"{"id":80,"_info":{"lastUpdated":"2026-03-01T11:00:01Z"}}"#,
            ),
            _ => response(204, ""),
        }),
        || {
            let mut tentative = appointment(
                "Review",
                "2026-03-04T10:00:00.0000000Z",
                "2026-03-04T11:00:00+01:00",
            );
            tentative.show_as = ShowAs::Tentative;
            exports::push::<ConnectWise>(
                CFG,
                "schedule-entries:member=jdoe",
                vec![
                    cal_op(
                        "c",
                        WriteAction::Create,
                        None,
                        Some(ItemBody::Appointment(tentative.clone())),
                        &[],
                    ),
                    cal_op(
                        "u",
                        WriteAction::Update,
                        Some("80"),
                        Some(ItemBody::Appointment(tentative)),
                        &["subject", "end", "location", "show_as"],
                    ),
                    cal_op(
                        "x",
                        WriteAction::Update,
                        Some("80"),
                        Some(ItemBody::Appointment(appointment(
                            "a",
                            "2026-03-04T10:00:00Z",
                            "2026-03-04T11:00:00Z",
                        ))),
                        &["colour"],
                    ),
                    cal_op("d", WriteAction::Delete, Some("81"), None, &[]),
                ],
            )
        },
    )
    .unwrap();
    let log = log.borrow();
    let post = log.iter().find(|c| c.method == Method::Post).unwrap();
    assert_eq!(post.path(), format!("{ROOT}/schedule/entries"));
    assert_eq!(
        post.body.clone().unwrap(),
        json!({"member": {"identifier": "jdoe"}, "type": {"identifier": "M"}, "name": "Review",
               "dateStart": "2026-03-04T10:00:00Z", "dateEnd": "2026-03-04T10:00:00Z",
               "allowScheduleConflictsFlag": true, "status": {"id": 2}})
    );
    assert_eq!(results[0].outcome.as_ref().unwrap().target_id, "90");
    let patch = log.iter().find(|c| c.method == Method::Patch).unwrap();
    assert_eq!(patch.path(), format!("{ROOT}/schedule/entries/80"));
    assert_eq!(
        patch.body.clone().unwrap(),
        json!([{"op": "replace", "path": "name", "value": "Review"},
               {"op": "replace", "path": "dateEnd", "value": "2026-03-04T10:00:00Z"},
               {"op": "replace", "path": "status", "value": {"id": 2}}]),
        "only the named fields; a location is not something an entry holds"
    );
    assert_eq!(
        results[1].outcome.as_ref().unwrap().version.as_deref(),
        Some("2026-03-01T11:00:01Z")
    );
    match &results[2].outcome {
        Err(PluginError::Invalid(i)) => assert_eq!(i.fields[0].field, "colour"),
        other => panic!("{other:?}"),
    }
    assert!(log
        .iter()
        .any(|c| c.method == Method::Delete && c.path() == format!("{ROOT}/schedule/entries/81")));
    assert_eq!(
        log.iter()
            .filter(|c| c.path().ends_with("/schedule/statuses"))
            .count(),
        1,
        "statuses read once a batch"
    );
}

const ACTIVITY_STATUSES: &str = r#"[{"id":1,"name":"Open","defaultFlag":true,"closedFlag":false},
    {"id":2,"name":"Closed","closedFlag":true},{"id":3,"name":"Waiting","closedFlag":false}]"#;

fn task(title: &str, status: TaskStatus) -> Task {
    Task {
        title: title.into(),
        body: Some("call back".into()),
        start: None,
        due: Some(ZonedTime {
            utc: "2026-03-06T17:00:00Z".into(),
            time_zone: None,
        }),
        completed: None,
        status,
        categories: Vec::new(),
    }
}

#[test]
fn activities_are_tasks_closed_by_a_closed_status() {
    let log = Log::default();
    let rows = json!([
        {"id": 70, "name": "Call Contoso", "assignTo": {"id": 5, "identifier": "jdoe"}, "notes": "re: quote",
         "status": {"id": 2, "name": "Closed"}, "type": {"id": 1, "name": "Call"},
         "dateStart": "2026-03-02T09:00:00Z", "_info": {"lastUpdated": "2026-03-01T08:00:00Z"}},
        {"id": 71, "name": "Send quote", "assignTo": {"id": 5, "identifier": "jdoe"},
         "status": {"id": 3, "name": "Waiting"}, "_info": {"lastUpdated": "2026-03-01T08:00:00Z"}}
    ]);
    let page = with_http(
        recorder(&log, move |c| {
            if c.path().ends_with("/statuses") {
                response(200, ACTIVITY_STATUSES)
            } else {
                response(200, &rows.to_string())
            }
        }),
        || exports::pull::<ConnectWise>(CFG, pull_req("activities:member=jdoe", None)),
    )
    .unwrap();
    let list = log
        .borrow()
        .iter()
        .find(|c| c.path() == format!("{ROOT}/sales/activities"))
        .cloned()
        .unwrap();
    assert_eq!(
        list.query("conditions").as_deref(),
        Some(r#"assignTo/identifier = "jdoe""#)
    );
    let tasks: Vec<&Task> = page
        .items
        .iter()
        .map(|i| match &i.body {
            Some(ItemBody::Task(t)) => t,
            _ => panic!(),
        })
        .collect();
    assert_eq!(tasks[0].title, "Call Contoso");
    assert_eq!(tasks[0].body.as_deref(), Some("re: quote"));
    assert_eq!(tasks[0].status, TaskStatus::Completed);
    assert_eq!(tasks[0].start.as_ref().unwrap().utc, "2026-03-02T09:00:00Z");
    assert_eq!(
        tasks[1].status,
        TaskStatus::NotStarted,
        "Waiting is not closed"
    );

    let log = Log::default();
    let results = with_http(
        recorder(&log, |c| match c.method {
            _ if c.path().ends_with("/statuses") => response(200, ACTIVITY_STATUSES),
            Method::Post => response(201, r#"{"id":72}"#),
            Method::Patch => response(200, r#"{"id":70}"#),
            _ => response(204, ""),
        }),
        || {
            let mut cleared = task("Call Contoso", TaskStatus::Completed);
            cleared.body = None;
            exports::push::<ConnectWise>(
                CFG,
                "activities:member=jdoe",
                vec![
                    cal_op(
                        "c",
                        WriteAction::Create,
                        None,
                        Some(ItemBody::Task(task("New", TaskStatus::NotStarted))),
                        &[],
                    ),
                    cal_op(
                        "close",
                        WriteAction::Update,
                        Some("70"),
                        Some(ItemBody::Task(cleared)),
                        &["status", "body"],
                    ),
                    cal_op("d", WriteAction::Delete, Some("71"), None, &[]),
                    cal_op("off", WriteAction::Deactivate, Some("71"), None, &[]),
                ],
            )
        },
    )
    .unwrap();
    let log = log.borrow();
    let post = log.iter().find(|c| c.method == Method::Post).unwrap();
    assert_eq!(
        post.body.clone().unwrap(),
        json!({"assignTo": {"identifier": "jdoe"}, "name": "New", "notes": "call back",
               "dateEnd": "2026-03-06T17:00:00Z", "status": {"id": 1}})
    );
    let patch = log.iter().find(|c| c.method == Method::Patch).unwrap();
    assert_eq!(patch.path(), format!("{ROOT}/sales/activities/70"));
    assert_eq!(
        patch.body.clone().unwrap(),
        json!([{"op": "replace", "path": "status", "value": {"id": 2}},
               {"op": "replace", "path": "notes", "value": null}])
    );
    assert!(
        results[..3].iter().all(|r| r.outcome.is_ok()),
        "{results:?}"
    );
    assert!(matches!(
        results[3].outcome,
        Err(PluginError::Unsupported(_))
    ));
    assert!(log
        .iter()
        .any(|c| c.method == Method::Delete && c.path() == format!("{ROOT}/sales/activities/71")));
}

#[test]
fn lookups_stay_within_the_member_and_members_are_read_only() {
    let log = Log::default();
    let found = with_http(
        recorder(&log, |_| response(200, &json!([entry_row()]).to_string())),
        || {
            exports::lookup::<ConnectWise>(
                CFG,
                "schedule-entries:member=jdoe",
                vec!["id:80".into(), "id:81".into()],
            )
        },
    )
    .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        log.borrow()[0].query("conditions").as_deref(),
        Some(r#"(member/identifier = "jdoe") and (id in (80,81))"#)
    );
    let log = Log::default();
    with_http(
        recorder(&log, |_| response(200, &member_rows().to_string())),
        || {
            exports::lookup::<ConnectWise>(
                CFG,
                "members",
                vec!["email:john.doe@msp.example".into()],
            )
        },
    )
    .unwrap();
    assert_eq!(
        log.borrow()[0].query("conditions").as_deref(),
        Some(r#"primaryEmail = "john.doe@msp.example""#)
    );
    let e =
        exports::lookup::<ConnectWise>(CFG, "activities:member=jdoe", vec!["email:a@b.c".into()])
            .unwrap_err();
    assert!(matches!(e, PluginError::Invalid(_)));
    let r = exports::push::<ConnectWise>(
        CFG,
        "members",
        vec![cal_op("u", WriteAction::Update, Some("5"), None, &["mail"])],
    )
    .unwrap();
    assert!(matches!(r[0].outcome, Err(PluginError::Unsupported(_))));
}
