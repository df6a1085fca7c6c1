//! Unit tests of the calendar scopes: scope parsing, mapping, the change cursor, and the
//! requests pulls and writes send.

use super::*;
use std::cell::RefCell;
use std::rc::Rc;
use syncbridge_sdk::bindings::connector::syncbridge::plugin::http::Method;
use syncbridge_sdk::exports;
use syncbridge_sdk::testing::{response, with_http};

const CFG: &str = r#"{"api_user":"api@msp.example","base_url":"http://ws2.test/ATServicesRest"}"#;

type Log = Rc<RefCell<Vec<(Method, String, Option<Value>)>>>;

/// Answers every request with `answer(url, body)`, recording it.
fn serve(
    log: &Log,
    answer: impl Fn(&str, &Value) -> String + 'static,
) -> impl FnMut(
    &syncbridge_sdk::bindings::connector::syncbridge::plugin::http::Request,
) -> Result<
    syncbridge_sdk::bindings::connector::syncbridge::plugin::http::Response,
    PluginError,
> + 'static {
    let log = log.clone();
    move |r| {
        let body = r
            .body
            .as_deref()
            .map(|b| serde_json::from_slice::<Value>(b).unwrap())
            .unwrap_or(Value::Null);
        log.borrow_mut()
            .push((r.method, r.url.clone(), Some(body.clone())));
        Ok(response(200, &answer(&r.url, &body)))
    }
}

fn page(items: Value) -> String {
    json!({"items": items, "pageDetails": {"count": 0, "nextPageUrl": null}}).to_string()
}

fn pull_req(scope: &str, cursor: Option<&str>) -> PullRequest {
    PullRequest {
        scope: scope.into(),
        cursor: cursor.map(str::to_owned),
        max_items: 500,
    }
}

#[test]
fn calendar_scopes_need_their_resource_and_refuse_foreign_options() {
    let s = Scope::parse("appointments:resource=30").unwrap();
    assert_eq!((s.entity, s.resource), (Entity::Appointments, Some(30)));
    let s = Scope::parse("todos:resource=30,company=5,action=2").unwrap();
    assert_eq!(
        (s.entity, s.company, s.action),
        (Entity::ToDos, Some(5), Some(2))
    );
    assert_eq!(
        Scope::parse("service-calls:resource=3").unwrap().entity,
        Entity::ServiceCalls
    );
    assert_eq!(Scope::parse("contacts:owner=30").unwrap().owner, Some(30));
    for bad in [
        "appointments",
        "todos:company=1",
        "service-calls:resource=1,owner=2",
        "resources:resource=1",
        "contacts:resource=1",
        "calendar:resource=1",
    ] {
        let e = Scope::parse(bad).unwrap_err();
        assert!(matches!(e, PluginError::Invalid(_)), "{bad}: {e:?}");
    }
}

#[test]
fn the_cursor_reads_from_before_the_newest_change_and_skips_what_it_already_read() {
    let parse = |c: Option<&str>| ChangeCursor::parse(c, changes::OVERLAP).unwrap();
    let seen = |id: &str, stamp: &str| syncbridge_sdk::changes::Seen {
        id: id.into(),
        stamp: stamp.into(),
    };
    let mut c = parse(None);
    assert!(c.observe("1", Some("2026-03-01T10:00:00Z")));
    assert!(c.observe("2", Some("2026-03-01T10:00:04.500Z")));
    assert!(c.observe("3", Some("2026-03-01T09:00:00Z")));
    let page = c.page(vec![], None);
    assert!(page.full && !page.more);
    let c = parse(page.cursor.as_deref());
    assert_eq!(c.since.as_deref(), Some("2026-03-01T10:00:04.500Z"));
    assert_eq!(
        c.read_from().unwrap().map(changes::format_time).as_deref(),
        Some("2026-03-01T09:59:59.500Z")
    );
    // Rows 1 and 2 are inside the overlap: read again unchanged they are dropped; row 1 changed
    // and a row committed late with an earlier time are kept.
    let mut next = c.clone();
    assert!(!next.observe("2", Some("2026-03-01T10:00:04.500Z")));
    assert!(!next.observe("1", Some("2026-03-01T10:00:00Z")));
    assert!(next.observe("4", Some("2026-03-01T10:00:01Z")));
    let page = next.page(vec![], None);
    assert!(!page.full);
    let c2 = parse(page.cursor.as_deref());
    assert_eq!(
        c2.since, c.since,
        "an older late row does not move the start back"
    );
    assert!(c2.seen.contains(&seen("4", "2026-03-01T10:00:01Z")));
    assert!(c2.seen.contains(&seen("2", "2026-03-01T10:00:04.500Z")));
    assert!(ChangeCursor::parse(Some("{nope"), changes::OVERLAP).is_err());
}

#[test]
fn resources_are_directory_users_named_by_login_or_email() {
    let item = calendar::resource_item(&json!({"id": 30, "firstName": "Ann", "lastName": "Tech",
        "email": "ann@msp.example", "userName": null, "isActive": false, "title": "Engineer",
        "officePhone": "555-1", "resourceType": "Employee", "licenseType": 1}));
    let Some(ItemBody::DirectoryUser(u)) = item.body else {
        panic!()
    };
    assert_eq!(item.id, "30");
    assert_eq!(u.user_principal_name, "ann@msp.example");
    assert_eq!(u.display_name.as_deref(), Some("Ann Tech"));
    assert!(!u.account_enabled);
    assert!(u
        .attributes
        .iter()
        .any(|a| a.name == "resourceType" && a.value == "Employee"));
    assert!(u
        .attributes
        .iter()
        .any(|a| a.name == "licenseType" && a.value == "1"));
    let item = calendar::resource_item(
        &json!({"id": 31, "email": "b@x", "userName": "bob", "isActive": true}),
    );
    let Some(ItemBody::DirectoryUser(u)) = item.body else {
        panic!()
    };
    assert_eq!(
        (u.user_principal_name.as_str(), u.account_enabled),
        ("bob", true)
    );
}

#[test]
fn to_do_descriptions_split_into_title_and_body() {
    assert_eq!(
        split_description(Some("Call back\nabout the quote\n")),
        ("Call back".into(), Some("about the quote".into()))
    );
    assert_eq!(split_description(Some("Call")), ("Call".into(), None));
    assert_eq!(join_description("Call", Some(" ")), "Call");
    let item = calendar::todo_item(
        &json!({"id": 6, "activityDescription": "A\nB", "completedDate": "2026-03-01T10:00:00.000Z",
        "startDateTime": "2026-03-01T09:00:00", "lastModifiedDate": "2026-03-01T10:00:00.123Z"}),
    );
    let Some(ItemBody::Task(t)) = item.body else {
        panic!()
    };
    assert_eq!(t.status, TaskStatus::Completed);
    assert_eq!(t.completed.unwrap().utc, "2026-03-01T10:00:00Z");
    assert_eq!(
        t.start.unwrap().utc,
        "2026-03-01T09:00:00Z",
        "offset-less Autotask times are UTC"
    );
}

#[test]
fn a_pull_from_a_cursor_asks_only_for_changes_since_it() {
    let log = Log::default();
    let cursor = json!({"since": "2026-03-01T10:00:00.000Z"}).to_string();
    let page_out = with_http(
        serve(&log, |_, _| {
            page(json!([{"id": 5, "title": "Lunch", "resourceID": 30,
            "startDateTime": "2026-03-02T12:00:00Z", "endDateTime": "2026-03-02T13:00:00Z",
            "updateDateTime": "2026-03-01T11:00:00.000Z"}]))
        }),
        || exports::pull::<Autotask>(CFG, pull_req("appointments:resource=30", Some(&cursor))),
    )
    .unwrap();
    assert!(!page_out.full);
    let (_, url, body) = &log.borrow()[0];
    assert!(url.ends_with("/V1.0/Appointments/query"), "{url}");
    let filter = &body.as_ref().unwrap()["filter"];
    assert_eq!(
        filter[0],
        json!({"op": "eq", "field": "resourceID", "value": 30})
    );
    assert_eq!(
        filter[1],
        json!({"op": "gte", "field": "updateDateTime", "value": "2026-03-01T09:59:55.000Z"})
    );
    let Some(ItemBody::Appointment(a)) = &page_out.items[0].body else {
        panic!()
    };
    assert_eq!(a.subject.as_deref(), Some("Lunch"));
    let next = ChangeCursor::parse(page_out.cursor.as_deref(), changes::OVERLAP).unwrap();
    assert_eq!(next.since.as_deref(), Some("2026-03-01T11:00:00.000Z"));
}

#[test]
fn an_owner_of_nothing_reads_no_contacts() {
    let log = Log::default();
    let out = with_http(serve(&log, |_, _| page(json!([]))), || {
        exports::pull::<Autotask>(CFG, pull_req("contacts:owner=30", None))
    })
    .unwrap();
    assert!(out.items.is_empty() && out.full && !out.more);
    let urls: Vec<String> = log.borrow().iter().map(|(_, u, _)| u.clone()).collect();
    assert_eq!(urls.len(), 2, "{urls:?}");
    assert!(urls[0].ends_with("/Companies/query") && urls[1].ends_with("/Opportunities/query"));
}

fn todo_op(action: WriteAction, target: Option<&str>, task: Task, fields: &[&str]) -> WriteOp {
    WriteOp {
        op_id: "1".into(),
        action,
        target_id: target.map(str::to_owned),
        body: Some(ItemBody::Task(task)),
        fields: fields.iter().map(|f| f.to_string()).collect(),
    }
}

fn task(title: &str, status: TaskStatus) -> Task {
    Task {
        title: title.into(),
        body: None,
        start: None,
        due: None,
        completed: None,
        status,
        categories: Vec::new(),
    }
}

#[test]
fn a_to_do_update_writes_only_the_named_fields_under_its_company() {
    let log = Log::default();
    let results = with_http(
        serve(&log, |url, _| {
            if url.ends_with("/CompanyToDos/query") {
                page(json!([{"id": 6, "companyID": 4, "activityDescription": "Old\nkeep me", "completedDate": null}]))
            } else {
                json!({"itemId": 6}).to_string()
            }
        }),
        || {
            exports::push::<Autotask>(CFG, "todos:resource=30", vec![
                todo_op(WriteAction::Update, Some("6"), task("New", TaskStatus::Completed), &["subject", "status", "categories"]),
            ])
        },
    )
    .unwrap();
    assert!(results[0].outcome.is_ok(), "{results:?}");
    let log = log.borrow();
    let (m, url, body) = &log[1];
    assert_eq!(*m, Method::Patch);
    assert!(url.ends_with("/Companies/4/ToDos"), "{url}");
    let body = body.as_ref().unwrap();
    assert_eq!(body["activityDescription"], "New\nkeep me");
    assert!(
        body["completedDate"].is_string(),
        "completing sets completedDate: {body}"
    );
    assert!(body.get("startDateTime").is_none());
}

#[test]
fn writes_refuse_what_autotask_cannot_take() {
    let log = Log::default();
    let out = with_http(serve(&log, |_, _| page(json!([]))), || {
        exports::push::<Autotask>(CFG, "service-calls:resource=30", vec![])
    });
    assert!(matches!(out, Err(PluginError::Unsupported(_))), "{out:?}");
    // A to-do needs an action type to be created; nothing is sent without one.
    let results = with_http(serve(&log, |_, _| page(json!([]))), || {
        exports::push::<Autotask>(
            CFG,
            "todos:resource=30",
            vec![todo_op(
                WriteAction::Create,
                None,
                task("x", TaskStatus::NotStarted),
                &[],
            )],
        )
    })
    .unwrap();
    assert!(results[0].outcome.is_err());
    assert!(log.borrow().is_empty());
    // An appointment update naming only fields Autotask has no place for sends nothing.
    let appt = Appointment {
        subject: Some("S".into()),
        start: ZonedTime {
            utc: "2026-03-02T12:00:00Z".into(),
            time_zone: None,
        },
        end: ZonedTime {
            utc: "2026-03-02T13:00:00Z".into(),
            time_zone: None,
        },
        all_day: false,
        show_as: ShowAs::Busy,
        sensitivity: Sensitivity::Normal,
        recurrence: None,
        organizer: None,
        attendees: Vec::new(),
        location: Some("Room".into()),
        body: None,
        categories: Vec::new(),
    };
    let fields = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    assert!(
        writes::appointment_fields(&appt, &fields(&["location", "show_as"]))
            .unwrap()
            .is_empty()
    );
    let body = writes::appointment_fields(&appt, &fields(&["body", "subject"])).unwrap();
    assert_eq!(
        body["description"],
        Value::Null,
        "a named empty field is cleared"
    );
    assert_eq!(body["title"], "S");
    assert!(writes::appointment_fields(&appt, &fields(&["colour"])).is_err());
}
