//! Tests of the appointments, tasks and contacts scopes: pure functions first, then the exported
//! calls over a recorded HTTP exchange.

use super::cursor::Cursor;
use super::query::{first_page_url, pass_filter, row_url, APPOINTMENT_SELECT, CONTACT_SELECT};
use super::*;
use crate::emails::cursor::{Mark, Seen};
use crate::tests::{invalid_fields, recorder, with_header, Log, API, CFG};
use crate::Dynamics;
use serde_json::json;
use syncbridge_sdk::bindings::connector::syncbridge::plugin::http::{
    Method as WitMethod, Request as WitRequest, Response as WitResponse,
};
use syncbridge_sdk::exports;
use syncbridge_sdk::testing::{response, state as test_state, with_http};
use syncbridge_sdk::url::percent_encoding::percent_decode_str;

const MBX: &str = "ann@contoso.com";
const OWNER: &str = "5b0c6a52-6a3f-4d1e-9a0b-1c2d3e4f5a00";
const OTHER: &str = "5b0c6a52-6a3f-4d1e-9a0b-1c2d3e4f5aff";
const A1: &str = "8a1c6a52-6a3f-4d1e-9a0b-1c2d3e4f5a61";
const A2: &str = "8a1c6a52-6a3f-4d1e-9a0b-1c2d3e4f5a62";
const A3: &str = "8a1c6a52-6a3f-4d1e-9a0b-1c2d3e4f5a63";
const APPOINTMENTS: &str = "appointments:mailbox=ann@contoso.com";
const TASKS: &str = "tasks:mailbox=ann@contoso.com";
const CONTACTS: &str = "contacts:mailbox=ann@contoso.com";

fn scope(kind: Kind) -> ActScope {
    ActScope {
        kind,
        mailbox: MBX.into(),
    }
}

fn strings(f: &[&str]) -> Vec<String> {
    f.iter().map(|s| s.to_string()).collect()
}

/// The decoded value of the query parameter `name` of `url`.
fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == name).then(|| percent_decode_str(v).decode_utf8().unwrap().into_owned())
    })
}

fn with(mut row: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        row[k] = v.clone();
    }
    row
}

fn appointment_row(id: &str, modified: &str, extra: Value) -> Value {
    with(
        json!({
            "@odata.etag": "W/\"3001\"",
            "activityid": id,
            "subject": "Review",
            "description": "Agenda",
            "scheduledstart": "2026-02-03T09:00:00Z",
            "scheduledend": "2026-02-03T10:00:00Z",
            "isalldayevent": false,
            "location": "Room 1",
            "statecode": 3,
            "statuscode": 5,
            "modifiedon": modified
        }),
        extra,
    )
}

fn task_row(id: &str, extra: Value) -> Value {
    with(
        json!({
            "@odata.etag": "W/\"4001\"",
            "activityid": id,
            "subject": "Call back",
            "description": "About the quote",
            "scheduledstart": "2026-02-03T09:00:00Z",
            "scheduledend": "2026-02-05T17:00:00Z",
            "actualend": null,
            "percentcomplete": 0,
            "statecode": 0,
            "statuscode": 2,
            "modifiedon": "2026-02-01T00:00:00Z"
        }),
        extra,
    )
}

fn contact_row(id: &str, extra: Value) -> Value {
    with(
        json!({
            "@odata.etag": "W/\"5001\"",
            "contactid": id,
            "firstname": "Bob",
            "lastname": "Fisher",
            "fullname": "Bob Fisher",
            "jobtitle": "Buyer",
            "emailaddress1": "bob@fabrikam.com",
            "emailaddress2": null,
            "telephone1": "+1 555 0100",
            "mobilephone": "+1 555 0199",
            "department": "Purchasing",
            "address1_city": "  ",
            "statecode": 0,
            "statuscode": 1,
            "modifiedon": "2026-02-01T00:00:00Z"
        }),
        extra,
    )
}

fn zt(utc: &str) -> ZonedTime {
    ZonedTime {
        utc: utc.into(),
        time_zone: Some("W. Europe Standard Time".into()),
    }
}

fn appt() -> Appointment {
    Appointment {
        subject: Some("Review".into()),
        start: zt("2026-02-03T09:00:00Z"),
        end: zt("2026-02-03T10:00:00+01:00"),
        all_day: true,
        show_as: ShowAs::Tentative,
        sensitivity: Sensitivity::Private,
        recurrence: None,
        organizer: Some("carl@contoso.com".into()),
        attendees: Vec::new(),
        location: Some("Room 1".into()),
        body: Some("Agenda".into()),
        categories: vec!["Red".into()],
    }
}

fn todo() -> Task {
    Task {
        title: "Call back".into(),
        body: Some("About the quote".into()),
        start: Some(zt("2026-02-03T09:00:00Z")),
        due: Some(zt("2026-02-05T17:00:00Z")),
        completed: Some(zt("2026-02-04T12:00:00Z")),
        status: TaskStatus::Completed,
        categories: Vec::new(),
    }
}

fn person() -> Contact {
    Contact {
        first_name: Some("Bob".into()),
        last_name: Some("Fisher".into()),
        display_name: Some("Fisher, Bob".into()),
        title: Some("Buyer".into()),
        email: Some("bob@fabrikam.com".into()),
        phone: None,
        mobile: Some("+1 555 0199".into()),
        company: Some(CompanyRef {
            id: "42".into(),
            name: None,
        }),
        site: None,
        contact_types: Vec::new(),
        active: true,
        extra: vec![
            Attribute {
                name: "Department".into(),
                value: "Purchasing".into(),
            },
            Attribute {
                name: "nickname".into(),
                value: "Bobby".into(),
            },
        ],
    }
}

fn appointment_of(item: &Item) -> &Appointment {
    match &item.body {
        Some(ItemBody::Appointment(a)) => a,
        other => panic!("expected an appointment, got {other:?}"),
    }
}

fn task_of(item: &Item) -> &Task {
    match &item.body {
        Some(ItemBody::Task(t)) => t,
        other => panic!("expected a task, got {other:?}"),
    }
}

fn contact_of(item: &Item) -> &Contact {
    match &item.body {
        Some(ItemBody::Contact(c)) => c,
        other => panic!("expected a contact, got {other:?}"),
    }
}

fn users(ids: &[&str]) -> String {
    json!({"value": ids.iter().map(|id| json!({"systemuserid": id})).collect::<Vec<_>>()})
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// scope

#[test]
fn scopes_parse_and_print() {
    let s = ActScope::parse(" Appointments: mailbox= Ann@Contoso.com ").unwrap();
    assert_eq!(s, scope(Kind::Appointments));
    assert_eq!(s.to_string(), APPOINTMENTS);
    assert_eq!(ActScope::parse(TASKS).unwrap(), scope(Kind::Tasks));
    assert_eq!(
        ActScope::parse("contacts;mailbox=ann@contoso.com")
            .unwrap_err()
            .class(),
        "invalid",
        "the options follow a colon"
    );
    assert_eq!(ActScope::parse(CONTACTS).unwrap(), scope(Kind::Contacts));
    assert_eq!(Kind::named_by("Tasks:mailbox=x"), Some(Kind::Tasks));
    assert_eq!(Kind::named_by("emails:mailbox=x"), None);
    assert_eq!(
        (Kind::Contacts.set(), Kind::Contacts.key()),
        ("contacts", "contactid")
    );
    assert_eq!(Kind::Tasks.key(), "activityid");
}

#[test]
fn bad_scopes_name_the_grammar() {
    for (bad, grammar) in [
        ("appointments", "appointments:mailbox=<address>"),
        ("appointments:mailbox=", "appointments:mailbox=<address>"),
        ("tasks:mailbox=ann", "tasks:mailbox=<address>"),
        (
            "tasks:mailbox=ann@contoso.com,folder=x",
            "tasks:mailbox=<address>",
        ),
        (
            "contacts:mailbox=<ann@contoso.com>",
            "contacts:mailbox=<address>",
        ),
        (
            "contacts:mailbox=ann@contoso.com,direction=incoming",
            "contacts:mailbox=<address>",
        ),
    ] {
        let e = ActScope::parse(bad).unwrap_err();
        assert_eq!(invalid_fields(&e), ["scope"], "{bad}");
        assert!(e.describe().contains(grammar), "{bad}: {e:?}");
    }
    // Through the exports, before anything is sent.
    let never = |_: &WitRequest| -> Result<WitResponse, PluginError> { panic!("nothing is sent") };
    let e = with_http(never, || {
        exports::pull::<Dynamics>(
            CFG,
            PullRequest {
                scope: "tasks:mailbox=nobody".into(),
                cursor: None,
                max_items: 10,
            },
        )
    })
    .unwrap_err();
    assert_eq!(invalid_fields(&e), ["scope"]);
    let e = with_http(never, || {
        exports::lookup::<Dynamics>(CFG, "contacts", vec![A1.into()])
    })
    .unwrap_err();
    assert_eq!(invalid_fields(&e), ["scope"]);
    let e = exports::push::<Dynamics>(CFG, "appointments:colour=red", vec![]).unwrap_err();
    assert!(
        e.describe().contains("appointments:mailbox=<address>"),
        "{e:?}"
    );
    let e = exports::push::<Dynamics>(CFG, "calendar:mailbox=ann@contoso.com", vec![]).unwrap_err();
    assert!(
        e.describe().contains("contacts:mailbox=<address>"),
        "unknown scopes list the served ones: {e:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// owner

#[test]
fn the_owner_is_the_user_with_the_address_as_primary_email() {
    let url = owner::lookup_url(API, "o'brien@contoso.com");
    assert!(url.starts_with(&format!("{API}/systemusers?$select=systemuserid&$filter=")));
    assert_eq!(
        param(&url, "$filter").as_deref(),
        Some("internalemailaddress eq 'o''brien@contoso.com'")
    );
    let v: Value = serde_json::from_str(&users(&[&OWNER.to_uppercase()])).unwrap();
    assert_eq!(owner::owner_of(MBX, &v).unwrap(), OWNER);

    let e = owner::owner_of(MBX, &json!({"value": []})).unwrap_err();
    assert_eq!(e.class(), "not-found");
    assert!(
        e.describe().contains("no Dynamics user's primary e-mail")
            && e.describe().contains("Primary Email"),
        "{e:?}"
    );
    let v: Value = serde_json::from_str(&users(&[OWNER, OTHER])).unwrap();
    let e = owner::owner_of(MBX, &v).unwrap_err();
    assert_eq!(invalid_fields(&e), ["mailbox"]);
    assert!(e.describe().contains(OTHER), "{e:?}");
    assert_eq!(
        owner::owner_of(MBX, &json!({"value": [{"systemuserid": "42"}]}))
            .unwrap_err()
            .class(),
        "remote"
    );
    assert_eq!(
        owner::owner_of(MBX, &json!({})).unwrap_err().class(),
        "remote"
    );
}

#[test]
fn the_owner_is_cached_per_address() {
    let log = Log::default();
    let ids = with_http(
        recorder(&log, |_| Ok(response(200, &users(&[OWNER])))),
        || {
            (
                owner::resolve(API, MBX).unwrap(),
                owner::resolve(API, MBX).unwrap(),
            )
        },
    );
    assert_eq!(ids, (OWNER.to_owned(), OWNER.to_owned()));
    assert_eq!(
        log.borrow().len(),
        1,
        "the second answer comes from the cache"
    );
    assert_eq!(log.borrow()[0].url, owner::lookup_url(API, MBX));
    assert_eq!(
        test_state::get("dynamics:owner:ann@contoso.com").as_deref(),
        Some(OWNER)
    );
    // Not found: nothing cached.
    let e = with_http(
        |_| Ok(response(200, &users(&[]))),
        || owner::resolve(API, "bob@contoso.com"),
    )
    .unwrap_err();
    assert_eq!(e.class(), "not-found");
    assert_eq!(test_state::get("dynamics:owner:bob@contoso.com"), None);
}

#[test]
fn answers_about_the_owner_drop_the_cache() {
    test_state::set(&owner::cache_key(MBX), OWNER);
    let about = syncbridge_sdk::http::Response(response(
        400,
        &format!(
            r#"{{"error":{{"code":"0x80040217","message":"systemuser With Id = {OWNER} Does Not Exist"}}}}"#
        ),
    ));
    let other = syncbridge_sdk::http::Response(response(
        400,
        r#"{"error":{"code":"0x80044331","message":"A validation error occurred."}}"#,
    ));
    assert!(owner::is_about_owner(&about, OWNER));
    assert!(!owner::is_about_owner(&other, OWNER));
    let e = owner::failure(&other, MBX, OWNER);
    assert_eq!(e.class(), "invalid");
    assert!(test_state::get(&owner::cache_key(MBX)).is_some());
    let e = owner::failure(&about, MBX, OWNER);
    assert_eq!(e.class(), "invalid");
    assert!(e.describe().contains("was dropped"), "{e:?}");
    assert_eq!(test_state::get(&owner::cache_key(MBX)), None);
    // A throttled answer never drops it.
    test_state::set(&owner::cache_key(MBX), OWNER);
    let busy = syncbridge_sdk::http::Response(response(503, OWNER));
    assert!(!owner::is_about_owner(&busy, OWNER));
}

// ---------------------------------------------------------------------------------------------
// queries

#[test]
fn filters_select_the_owner_s_rows() {
    assert_eq!(
        pass_filter(Kind::Appointments, OWNER, None),
        format!("_ownerid_value eq {OWNER} and instancetypecode eq 0")
    );
    assert_eq!(
        pass_filter(Kind::Tasks, OWNER, Some("2026-01-02T03:04:05Z")),
        format!("_ownerid_value eq {OWNER} and modifiedon ge 2026-01-02T03:04:05Z")
    );
    assert_eq!(
        pass_filter(Kind::Contacts, OWNER, None),
        format!("_ownerid_value eq {OWNER}")
    );
    let url = first_page_url(API, Kind::Appointments, OWNER, Some("2026-01-02T03:04:05Z"));
    assert!(url.starts_with(&format!("{API}/appointments?$select={APPOINTMENT_SELECT}&")));
    assert_eq!(
        param(&url, "$filter"),
        Some(pass_filter(
            Kind::Appointments,
            OWNER,
            Some("2026-01-02T03:04:05Z")
        ))
    );
    assert_eq!(param(&url, "$orderby").as_deref(), Some("modifiedon asc"));
    assert!(!url.contains(' '), "the query is percent-encoded: {url}");
    assert_eq!(
        row_url(API, Kind::Contacts, A1),
        format!("{API}/contacts({A1})?$select={CONTACT_SELECT}")
    );
}

// ---------------------------------------------------------------------------------------------
// appointments

#[test]
fn appointment_rows_map_to_appointments() {
    let item = appointment::item(
        &appointment_row(&A1.to_uppercase(), "2026-02-01T00:00:00Z", json!({})),
        &Zones::default(),
    )
    .unwrap();
    assert_eq!(
        (item.id.as_str(), item.version.as_deref(), item.removed),
        (A1, Some("W/\"3001\""), None)
    );
    let a = appointment_of(&item);
    assert_eq!(a.subject.as_deref(), Some("Review"));
    assert_eq!(
        (a.start.utc.as_str(), a.start.time_zone.as_deref()),
        ("2026-02-03T09:00:00Z", None)
    );
    assert_eq!(a.end.utc, "2026-02-03T10:00:00Z");
    assert!(!a.all_day);
    assert_eq!(a.location.as_deref(), Some("Room 1"));
    assert_eq!(a.body.as_deref(), Some("Agenda"));
    assert_eq!(a.show_as, ShowAs::Busy);
    assert_eq!(a.sensitivity, Sensitivity::Normal);
    assert!(a.recurrence.is_none() && a.organizer.is_none());
    assert!(a.attendees.is_empty() && a.categories.is_empty());

    let all_day = appointment::item(
        &appointment_row(
            A1,
            "x",
            json!({"isalldayevent": true, "description": " ", "location": null}),
        ),
        &Zones::default(),
    )
    .unwrap();
    let a = appointment_of(&all_day);
    assert!(a.all_day);
    assert_eq!((a.body.as_deref(), a.location.as_deref()), (None, None));

    // Canceled: removed; completed: live.
    let gone = appointment::item(
        &appointment_row(A1, "x", json!({"statecode": 2, "statuscode": 4})),
        &Zones::default(),
    )
    .unwrap();
    assert_eq!(gone.removed, Some(Removal::Deleted));
    assert!(gone.body.is_none());
    let done = appointment::item(
        &appointment_row(A1, "x", json!({"statecode": 1, "statuscode": 3})),
        &Zones::default(),
    )
    .unwrap();
    assert_eq!(done.removed, None);
    assert_eq!(appointment_of(&done).show_as, ShowAs::Busy);

    // Without times a live appointment cannot be one; without an id nothing can.
    let none = Zones::default();
    assert!(appointment::item(
        &appointment_row(A1, "x", json!({"scheduledend": null})),
        &none
    )
    .is_none());
    assert!(appointment::item(&json!({"subject": "x"}), &none).is_none());

    // Named in the zone it was entered in; a code that does not read keeps the instants.
    let zones = Zones::of([(110, "W. Europe Standard Time".to_owned())]);
    let berlin = appointment::item(
        &appointment_row(A1, "x", json!({"utcconversiontimezonecode": 110})),
        &zones,
    )
    .unwrap();
    let berlin = appointment_of(&berlin);
    assert_eq!(
        (berlin.start.utc.as_str(), berlin.start.time_zone.as_deref()),
        ("2026-02-03T09:00:00Z", Some("W. Europe Standard Time"))
    );
    assert_eq!(berlin.end.time_zone, berlin.start.time_zone);
    let unknown = appointment::item(
        &appointment_row(A1, "x", json!({"utcconversiontimezonecode": 7})),
        &zones,
    )
    .unwrap();
    let unknown = appointment_of(&unknown);
    assert_eq!(
        (
            unknown.start.utc.as_str(),
            unknown.start.time_zone.as_deref()
        ),
        ("2026-02-03T09:00:00Z", None)
    );
}

#[test]
fn show_as_follows_the_status_reason() {
    use appointment::statuses::*;
    for (code, want) in [
        (Some(FREE), ShowAs::Free),
        (Some(TENTATIVE), ShowAs::Tentative),
        (Some(BUSY), ShowAs::Busy),
        (Some(OUT_OF_OFFICE), ShowAs::Oof),
        (Some(COMPLETED), ShowAs::Busy),
        (None, ShowAs::Busy),
    ] {
        assert_eq!(appointment::show_as(code), want, "{code:?}");
    }
}

#[test]
fn appointment_bodies_write_the_named_fields() {
    let b = appointment::create_body(&appt()).unwrap();
    assert_eq!(
        Value::Object(b),
        json!({"subject": "Review", "scheduledstart": "2026-02-03T09:00:00Z",
               "scheduledend": "2026-02-03T10:00:00+01:00", "isalldayevent": true,
               "location": "Room 1", "description": "Agenda"})
    );
    let bare = Appointment {
        subject: None,
        location: None,
        body: None,
        all_day: false,
        ..appt()
    };
    let b = appointment::create_body(&bare).unwrap();
    let mut keys: Vec<&str> = b.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["isalldayevent", "scheduledend", "scheduledstart"]);

    for (field, want) in [
        ("subject", json!({"subject": "Review"})),
        ("Start", json!({"scheduledstart": "2026-02-03T09:00:00Z"})),
        ("end", json!({"scheduledend": "2026-02-03T10:00:00+01:00"})),
        ("all-day", json!({"isalldayevent": true})),
        ("location", json!({"location": "Room 1"})),
        ("body", json!({"description": "Agenda"})),
    ] {
        let b = appointment::update_body(&appt(), &strings(&[field])).unwrap();
        assert_eq!(Value::Object(b), want, "{field}");
    }
    let b = appointment::update_body(&bare, &strings(&["location", "body", "subject"])).unwrap();
    assert_eq!(
        Value::Object(b),
        json!({"location": null, "description": null, "subject": null}),
        "absent values clear their columns"
    );

    let e = appointment::update_body(&appt(), &strings(&["subject", "show_as"])).unwrap_err();
    assert_eq!(invalid_fields(&e), ["show_as"]);
    assert!(
        e.describe()
            .contains("subject, start, end, all_day, location, body"),
        "{e:?}"
    );
    let e = appointment::update_body(
        &Appointment {
            start: zt("tomorrow"),
            ..appt()
        },
        &strings(&["start"]),
    )
    .unwrap_err();
    assert_eq!(invalid_fields(&e), ["start"]);
    let e = appointment::create_body(&Appointment {
        subject: Some("x".repeat(201)),
        ..appt()
    })
    .unwrap_err();
    assert_eq!(invalid_fields(&e), ["subject"]);
    assert!(e.describe().contains("200"), "{e:?}");
}

// ---------------------------------------------------------------------------------------------
// tasks

#[test]
fn task_statuses_follow_state_and_status_reason() {
    use task::statuses;
    let status = |extra: Value| task::status_of(&task_row(A1, extra));
    assert_eq!(status(json!({})), TaskStatus::NotStarted);
    assert_eq!(
        status(json!({"statuscode": statuses::IN_PROGRESS})),
        TaskStatus::InProgress
    );
    assert_eq!(
        status(json!({"statuscode": statuses::WAITING})),
        TaskStatus::Waiting
    );
    assert_eq!(
        status(json!({"statuscode": statuses::DEFERRED})),
        TaskStatus::Deferred
    );
    assert_eq!(
        status(json!({"statecode": 1, "statuscode": statuses::COMPLETED})),
        TaskStatus::Completed
    );
    assert_eq!(
        status(json!({"statuscode": 2, "percentcomplete": 50})),
        TaskStatus::NotStarted,
        "the status reason decides"
    );
    assert_eq!(
        status(json!({"statuscode": 100000001, "percentcomplete": 50})),
        TaskStatus::InProgress,
        "a custom reason: the percentage"
    );
    assert_eq!(
        status(json!({"statuscode": null, "percentcomplete": 0})),
        TaskStatus::NotStarted
    );
    // Every status is written as a state and a reason of that state, and read back as itself.
    for s in [
        TaskStatus::NotStarted,
        TaskStatus::InProgress,
        TaskStatus::Waiting,
        TaskStatus::Deferred,
        TaskStatus::Completed,
    ] {
        let (state, reason) = task::codes(s);
        assert_eq!(
            task::status_of(&task_row(
                A1,
                json!({"statecode": state, "statuscode": reason, "percentcomplete": 30})
            )),
            s
        );
    }
    assert_eq!(task::codes(TaskStatus::Completed), (1, 5));
    assert_eq!(task::codes(TaskStatus::NotStarted), (0, 2));
}

#[test]
fn task_rows_map_to_tasks() {
    let item = task::item(&task_row(A2, json!({}))).unwrap();
    assert_eq!(
        (item.id.as_str(), item.version.as_deref()),
        (A2, Some("W/\"4001\""))
    );
    let t = task_of(&item);
    assert_eq!(t.title, "Call back");
    assert_eq!(t.body.as_deref(), Some("About the quote"));
    assert_eq!(t.start.as_ref().unwrap().utc, "2026-02-03T09:00:00Z");
    assert_eq!(t.due.as_ref().unwrap().utc, "2026-02-05T17:00:00Z");
    assert_eq!(t.status, TaskStatus::NotStarted);
    assert!(t.completed.is_none());
    assert!(t.categories.is_empty());

    let done = task::item(&task_row(
        A2,
        json!({"statecode": 1, "statuscode": 5, "actualend": "2026-02-04T12:00:00Z",
               "subject": null, "scheduledstart": null}),
    ))
    .unwrap();
    let t = task_of(&done);
    assert_eq!(t.status, TaskStatus::Completed);
    assert_eq!(t.completed.as_ref().unwrap().utc, "2026-02-04T12:00:00Z");
    assert_eq!(t.title, "");
    assert!(t.start.is_none());
    // An open task's actualend is no completion time.
    let open = task::item(&task_row(A2, json!({"actualend": "2026-02-04T12:00:00Z"}))).unwrap();
    assert!(task_of(&open).completed.is_none());
    let gone = task::item(&task_row(A2, json!({"statecode": 2, "statuscode": 6}))).unwrap();
    assert_eq!(
        (gone.removed, gone.body.is_none()),
        (Some(Removal::Deleted), true)
    );
}

#[test]
fn task_bodies_write_the_named_fields() {
    let b = task::create_body(&todo()).unwrap();
    assert_eq!(
        Value::Object(b),
        json!({"subject": "Call back", "description": "About the quote",
               "scheduledstart": "2026-02-03T09:00:00Z", "scheduledend": "2026-02-05T17:00:00Z",
               "statecode": 1, "statuscode": 5, "actualend": "2026-02-04T12:00:00Z"})
    );
    let open = Task {
        title: String::new(),
        body: None,
        start: None,
        status: TaskStatus::Waiting,
        ..todo()
    };
    let b = task::create_body(&open).unwrap();
    assert_eq!(
        Value::Object(b),
        json!({"scheduledend": "2026-02-05T17:00:00Z", "statuscode": 4}),
        "an open task: its reason only, no completion time"
    );

    for (field, want) in [
        ("title", json!({"subject": "Call back"})),
        ("body", json!({"description": "About the quote"})),
        ("start", json!({"scheduledstart": "2026-02-03T09:00:00Z"})),
        ("due", json!({"scheduledend": "2026-02-05T17:00:00Z"})),
        ("status", json!({"statecode": 1, "statuscode": 5})),
        ("completed", json!({"actualend": "2026-02-04T12:00:00Z"})),
    ] {
        let b = task::update_body(&todo(), &strings(&[field])).unwrap();
        assert_eq!(Value::Object(b), want, "{field}");
    }
    let reopened = Task {
        status: TaskStatus::InProgress,
        completed: None,
        start: None,
        ..todo()
    };
    let b = task::update_body(&reopened, &strings(&["status", "completed", "start"])).unwrap();
    assert_eq!(
        Value::Object(b),
        json!({"statecode": 0, "statuscode": 3, "actualend": null, "scheduledstart": null})
    );
    let e = task::update_body(&todo(), &strings(&["priority"])).unwrap_err();
    assert_eq!(invalid_fields(&e), ["priority"]);
    assert!(
        e.describe()
            .contains("title, body, start, due, status, completed"),
        "{e:?}"
    );
    let e = task::create_body(&Task {
        body: Some("x".repeat(2001)),
        ..todo()
    })
    .unwrap_err();
    assert_eq!(invalid_fields(&e), ["body"]);
    let e = task::update_body(
        &Task {
            due: Some(zt("2026-02-05")),
            ..todo()
        },
        &strings(&["due"]),
    )
    .unwrap_err();
    assert_eq!(invalid_fields(&e), ["due"]);
}

// ---------------------------------------------------------------------------------------------
// contacts

#[test]
fn contact_rows_map_to_contacts() {
    let item = contact::item(&contact_row(&A3.to_uppercase(), json!({}))).unwrap();
    assert_eq!(
        (item.id.as_str(), item.version.as_deref()),
        (A3, Some("W/\"5001\""))
    );
    let c = contact_of(&item);
    assert_eq!(
        (
            c.first_name.as_deref(),
            c.last_name.as_deref(),
            c.display_name.as_deref()
        ),
        (Some("Bob"), Some("Fisher"), Some("Bob Fisher"))
    );
    assert_eq!(c.title.as_deref(), Some("Buyer"));
    assert_eq!(c.email.as_deref(), Some("bob@fabrikam.com"));
    assert_eq!(c.phone.as_deref(), Some("+1 555 0100"));
    assert_eq!(c.mobile.as_deref(), Some("+1 555 0199"));
    assert!(c.active);
    assert!(c.company.is_none() && c.site.is_none() && c.contact_types.is_empty());
    assert_eq!(
        c.extra
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_str()))
            .collect::<Vec<_>>(),
        [("department", "Purchasing")],
        "only present extras"
    );
    let c = contact::item(&contact_row(
        A3,
        json!({"statecode": 1, "statuscode": 2, "emailaddress2": "bob@home.example",
               "address1_city": "Oslo"}),
    ))
    .unwrap();
    let c = contact_of(&c);
    assert!(!c.active);
    assert_eq!(c.extra.len(), 3);
    assert!(contact::item(&json!({"fullname": "x"})).is_none());
}

#[test]
fn contact_bodies_write_the_named_fields_never_the_full_name() {
    let b = contact::create_body(&person()).unwrap();
    assert_eq!(
        Value::Object(b),
        json!({"firstname": "Bob", "lastname": "Fisher", "jobtitle": "Buyer",
               "emailaddress1": "bob@fabrikam.com", "mobilephone": "+1 555 0199",
               "department": "Purchasing"}),
        "no fullname, no unknown extras, no state of an active contact"
    );
    let b = contact::create_body(&Contact {
        active: false,
        ..person()
    })
    .unwrap();
    assert_eq!(
        (b["statecode"].clone(), b["statuscode"].clone()),
        (json!(1), json!(2))
    );

    for (field, want) in [
        ("first_name", json!({"firstname": "Bob"})),
        ("last-name", json!({"lastname": "Fisher"})),
        ("title", json!({"jobtitle": "Buyer"})),
        ("email", json!({"emailaddress1": "bob@fabrikam.com"})),
        ("phone", json!({"telephone1": null})),
        ("mobile", json!({"mobilephone": "+1 555 0199"})),
        ("extra.department", json!({"department": "Purchasing"})),
        ("extra.address1_city", json!({"address1_city": null})),
        ("extra.emailaddress2", json!({"emailaddress2": null})),
    ] {
        let b = contact::update_body(&person(), &strings(&[field])).unwrap();
        assert_eq!(Value::Object(b), want, "{field}");
    }
    let e = contact::update_body(&person(), &strings(&["display_name"])).unwrap_err();
    assert_eq!(invalid_fields(&e), ["display_name"]);
    assert!(e.describe().contains("fullname"), "{e:?}");
    for bad in ["company", "extra.nickname", "extra.", "active"] {
        let e = contact::update_body(&person(), &strings(&[bad])).unwrap_err();
        assert_eq!(invalid_fields(&e), [bad]);
        assert!(e.describe().contains("extra.emailaddress2"), "{e:?}");
    }
    assert_eq!(
        Value::Object(contact::state_body(true)),
        json!({"statecode": 0, "statuscode": 1})
    );
    assert_eq!(
        Value::Object(contact::state_body(false)),
        json!({"statecode": 1, "statuscode": 2})
    );
}

// ---------------------------------------------------------------------------------------------
// cursor

#[test]
fn cursors_round_trip_and_foreign_ones_are_refused() {
    let s = scope(Kind::Tasks);
    let c = Cursor {
        since: Some(Mark {
            at: "2026-01-02T03:04:05Z".into(),
            seen: vec![Seen {
                id: A1.into(),
                version: Some("W/\"1\"".into()),
            }],
        }),
        next: Some(format!("{API}/tasks?$skiptoken=x")),
        ..Cursor::new(&s, OWNER)
    };
    let raw = c.encode();
    assert!(
        raw.starts_with(&format!(
            r#"{{"v":1,"kind":"tasks","mailbox":"ann@contoso.com","owner":"{OWNER}","since":"#
        )),
        "{raw}"
    );
    assert_eq!(Cursor::decode(&raw, API, &s).unwrap(), c);

    let good = serde_json::to_value(Cursor::new(&s, OWNER)).unwrap();
    let changed = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c.to_string()
    };
    let mark = |at: &str, id: &str| json!({"at": at, "seen": [{"id": id, "version": null}]});
    for bad in [
        "not json".to_owned(),
        changed("v", json!(2)),
        changed("kind", json!("contacts")),
        changed("mailbox", json!("bob@contoso.com")),
        changed("owner", json!("x")),
        changed("colour", json!("red")),
        changed("since", mark("2026-01-02T03:04:05Z) or (1 eq 1", A1)),
        changed("newest", mark("2026-01-02T03:04:05Z", "x")),
        changed(
            "next",
            json!("https://evil.example/api/data/v9.2/tasks?x=1"),
        ),
        changed("next", json!(format!("{API}/appointments?$skiptoken=1"))),
    ] {
        let e = Cursor::decode(&bad, API, &s).unwrap_err();
        assert_eq!(invalid_fields(&e), ["cursor"], "{bad}");
        assert!(
            e.describe().contains("full read of the tasks"),
            "{bad}: {e:?}"
        );
    }
}

#[test]
fn contact_marks_are_kept_by_contactid() {
    let row = contact_row(A3, json!({}));
    let mut m = None;
    Mark::observe_by(&mut m, &row, "contactid");
    let mark = m.unwrap();
    assert_eq!(mark.seen[0].id, A3);
    assert!(mark.has_seen_by(&row, "contactid"));
    assert!(!mark.has_seen(&row), "an activity mark looks at activityid");
}

// ---------------------------------------------------------------------------------------------
// pull

/// Answers the user query with `owner` and every other GET with `page`.
fn pull_with(
    scope: &str,
    cursor: Option<&str>,
    owner: &'static str,
    page: Value,
    log: &Log,
) -> Result<Page, PluginError> {
    let body = page.to_string();
    with_http(
        recorder(log, move |r| {
            Ok(if r.url.contains("/systemusers?") {
                response(200, &users(&[owner]))
            } else {
                response(200, &body)
            })
        }),
        || {
            exports::pull::<Dynamics>(
                CFG,
                PullRequest {
                    scope: scope.into(),
                    cursor: cursor.map(str::to_owned),
                    max_items: 50,
                },
            )
        },
    )
}

fn ids(page: &Page) -> Vec<&str> {
    page.items.iter().map(|i| i.id.as_str()).collect()
}

#[test]
fn pulls_are_full_then_deltas_of_the_owner_s_rows() {
    let next = format!("{API}/appointments?$select={APPOINTMENT_SELECT}&$skiptoken=2");
    let log = Log::default();
    let page = pull_with(
        APPOINTMENTS,
        None,
        OWNER,
        json!({"value": [
            appointment_row(A1, "2026-02-01T00:00:00Z", json!({})),
            appointment_row(A2, "2026-02-01T00:00:01Z", json!({"statecode": 2, "statuscode": 4})),
        ], "@odata.nextLink": next}),
        &log,
    )
    .unwrap();
    {
        let log = log.borrow();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].url, owner::lookup_url(API, MBX));
        assert_eq!(
            log[1].url,
            first_page_url(API, Kind::Appointments, OWNER, None)
        );
        assert_eq!(log[1].header("Prefer"), Some("odata.maxpagesize=50"));
        assert!(log
            .iter()
            .all(|s| s.credential.as_deref() == Some("default")));
    }
    assert!(page.full && page.more);
    assert_eq!(ids(&page), [A1, A2]);
    assert_eq!(page.items[1].removed, Some(Removal::Deleted));
    let c1 = page.cursor.unwrap();

    // The last page: the owner comes from the cache, the cursor becomes a delta mark.
    let log = Log::default();
    let page = pull_with(
        APPOINTMENTS,
        Some(&c1),
        OWNER,
        json!({"value": [appointment_row(A3, "2026-02-01T00:00:01Z", json!({}))]}),
        &log,
    )
    .unwrap();
    assert_eq!(log.borrow().len(), 1);
    assert_eq!(log.borrow()[0].url, next);
    assert!(page.full && !page.more);
    let c2 = page.cursor.unwrap();
    let parsed: Value = serde_json::from_str(&c2).unwrap();
    assert_eq!(
        parsed,
        json!({"v": 1, "kind": "appointments", "mailbox": MBX, "owner": OWNER, "since": {
            "at": "2026-02-01T00:00:01Z",
            "seen": [{"id": A2, "version": "W/\"3001\""}, {"id": A3, "version": "W/\"3001\""}]}})
    );

    // A delta: modifiedon ge the mark; unchanged rows at the mark left out.
    let log = Log::default();
    let page = pull_with(
        APPOINTMENTS,
        Some(&c2),
        OWNER,
        json!({"value": [
            appointment_row(A3, "2026-02-01T00:00:01Z", json!({})),
            appointment_row(A1, "2026-02-02T00:00:00Z", json!({"@odata.etag": "W/\"3009\""})),
        ]}),
        &log,
    )
    .unwrap();
    assert_eq!(
        log.borrow()[0].url,
        first_page_url(API, Kind::Appointments, OWNER, Some("2026-02-01T00:00:01Z"))
    );
    assert!(!page.full && !page.more);
    assert_eq!(ids(&page), [A1]);

    // The address now belongs to another user: a full pass over that user's rows.
    test_state::set(&owner::cache_key(MBX), OTHER);
    let log = Log::default();
    let page = pull_with(APPOINTMENTS, Some(&c2), OTHER, json!({"value": []}), &log).unwrap();
    assert_eq!(
        log.borrow()[0].url,
        first_page_url(API, Kind::Appointments, OTHER, None)
    );
    assert!(page.full);
    let parsed: Value = serde_json::from_str(page.cursor.as_deref().unwrap()).unwrap();
    assert_eq!(parsed["owner"], OTHER);
    assert!(
        parsed.get("since").is_none(),
        "nothing read: the next pass is full too"
    );
}

#[test]
fn task_and_contact_pulls_map_their_rows() {
    let log = Log::default();
    let page = pull_with(
        TASKS,
        None,
        OWNER,
        json!({"value": [task_row(A1, json!({"statuscode": 3}))]}),
        &log,
    )
    .unwrap();
    assert_eq!(task_of(&page.items[0]).status, TaskStatus::InProgress);
    assert!(log.borrow()[1].url.starts_with(&format!("{API}/tasks?")));
    let log = Log::default();
    let page = pull_with(
        CONTACTS,
        None,
        OWNER,
        json!({"value": [contact_row(A3, json!({}))]}),
        &log,
    )
    .unwrap();
    assert_eq!(
        contact_of(&page.items[0]).email.as_deref(),
        Some("bob@fabrikam.com")
    );
    let parsed: Value = serde_json::from_str(page.cursor.as_deref().unwrap()).unwrap();
    assert_eq!(parsed["since"]["seen"][0]["id"], A3);
}

#[test]
fn pulls_report_a_missing_owner_and_drop_a_stale_one() {
    let log = Log::default();
    let e = with_http(recorder(&log, |_| Ok(response(200, &users(&[])))), || {
        exports::pull::<Dynamics>(
            CFG,
            PullRequest {
                scope: TASKS.into(),
                cursor: None,
                max_items: 10,
            },
        )
    })
    .unwrap_err();
    assert_eq!(e.class(), "not-found");
    assert!(e.describe().contains(MBX), "{e:?}");
    assert_eq!(log.borrow().len(), 1, "no rows are read without an owner");

    test_state::set(&owner::cache_key(MBX), OWNER);
    let e = with_http(
        |_| {
            Ok(response(
                404,
                &format!(r#"{{"error":{{"code":"0x80040217","message":"systemuser With Id = {OWNER} Does Not Exist"}}}}"#),
            ))
        },
        || {
            exports::pull::<Dynamics>(
                CFG,
                PullRequest {
                    scope: TASKS.into(),
                    cursor: None,
                    max_items: 10,
                },
            )
        },
    )
    .unwrap_err();
    assert_eq!(e.class(), "not-found");
    assert_eq!(test_state::get(&owner::cache_key(MBX)), None);

    // A foreign next link is refused.
    let log = Log::default();
    let e = pull_with(
        TASKS,
        None,
        OWNER,
        json!({"value": [], "@odata.nextLink": format!("{API}/contacts?$skiptoken=1")}),
        &log,
    )
    .unwrap_err();
    assert_eq!(e.class(), "remote");
    // A broken cursor is refused before anything is sent.
    let never = |_: &WitRequest| -> Result<WitResponse, PluginError> { panic!("nothing is sent") };
    let e = with_http(never, || {
        exports::pull::<Dynamics>(
            CFG,
            PullRequest {
                scope: TASKS.into(),
                cursor: Some("{".into()),
                max_items: 10,
            },
        )
    })
    .unwrap_err();
    assert_eq!(invalid_fields(&e), ["cursor"]);
}

// ---------------------------------------------------------------------------------------------
// lookup

#[test]
fn lookups_get_rows_by_id() {
    let log = Log::default();
    let items = with_http(
        recorder(&log, |r| {
            Ok(if r.url.contains(A1) {
                response(200, &task_row(A1, json!({})).to_string())
            } else {
                response(
                    404,
                    r#"{"error":{"code":"0x80040217","message":"task With Id = x Does Not Exist"}}"#,
                )
            })
        }),
        || exports::lookup::<Dynamics>(CFG, TASKS, strings(&[A1, &format!("id:{A2}"), A1])),
    )
    .unwrap();
    assert_eq!(ids_of(&items), [A1]);
    let log = log.borrow();
    assert_eq!(
        log.len(),
        2,
        "duplicate keys are asked once; no owner lookup"
    );
    assert_eq!(log[0].url, row_url(API, Kind::Tasks, A1));
    assert_eq!(log[1].url, row_url(API, Kind::Tasks, A2));
    for bad in ["email:bob@fabrikam.com", "42", "id:"] {
        let e = parse_keys(Kind::Contacts, &strings(&[bad])).unwrap_err();
        assert_eq!(invalid_fields(&e), ["keys"], "{bad}");
        assert!(e.describe().contains("contactid"), "{e:?}");
    }
}

fn ids_of(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.id.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// push

fn op(
    op_id: &str,
    action: WriteAction,
    target: Option<&str>,
    body: ItemBody,
    fields: &[&str],
) -> WriteOp {
    WriteOp {
        op_id: op_id.into(),
        action,
        target_id: target.map(str::to_owned),
        body: Some(body),
        fields: strings(fields),
    }
}

#[test]
fn appointments_are_created_for_the_owner_updated_and_deleted() {
    let log = Log::default();
    let results = with_http(
        recorder(&log, |r| {
            Ok(match r.method {
                WitMethod::Get => response(200, &users(&[OWNER])),
                WitMethod::Post => response(
                    201,
                    &json!({"@odata.etag": "W/\"7001\"", "activityid": A3.to_uppercase()})
                        .to_string(),
                ),
                WitMethod::Patch => with_header(response(204, ""), "ETag", "W/\"7002\""),
                WitMethod::Delete if r.url.contains(A2) => response(404, ""),
                _ => response(204, ""),
            })
        }),
        || {
            let a = || ItemBody::Appointment(appt());
            exports::push::<Dynamics>(
                CFG,
                APPOINTMENTS,
                vec![
                    op("c", WriteAction::Create, None, a(), &[]),
                    op("u", WriteAction::Update, Some(A1), a(), &["start", "end"]),
                    op("d", WriteAction::Delete, Some(A1), a(), &[]),
                    op("gone", WriteAction::Delete, Some(A2), a(), &[]),
                    op("x", WriteAction::Deactivate, Some(A1), a(), &[]),
                    op("bad", WriteAction::Update, Some(A1), a(), &["attendees"]),
                    op(
                        "kind",
                        WriteAction::Update,
                        Some(A1),
                        ItemBody::Task(todo()),
                        &["start"],
                    ),
                    op("noid", WriteAction::Update, Some("42"), a(), &["start"]),
                    op("c2", WriteAction::Create, None, a(), &[]),
                ],
            )
        },
    )
    .unwrap();
    let ok = results[0].outcome.as_ref().unwrap();
    assert_eq!(
        (ok.target_id.as_str(), ok.version.as_deref()),
        (A3, Some("W/\"7001\""))
    );
    let ok = results[1].outcome.as_ref().unwrap();
    assert_eq!(
        (ok.target_id.as_str(), ok.version.as_deref()),
        (A1, Some("W/\"7002\""))
    );
    assert_eq!(results[2].outcome.as_ref().unwrap().target_id, A1);
    assert_eq!(
        results[3].outcome.as_ref().unwrap().target_id,
        A2,
        "already gone"
    );
    assert_eq!(
        results[4].outcome.as_ref().unwrap_err().class(),
        "unsupported"
    );
    assert_eq!(
        invalid_fields(results[5].outcome.as_ref().unwrap_err()),
        ["attendees"]
    );
    assert_eq!(
        invalid_fields(results[6].outcome.as_ref().unwrap_err()),
        ["body"]
    );
    assert_eq!(
        invalid_fields(results[7].outcome.as_ref().unwrap_err()),
        ["target-id"]
    );
    assert!(results[8].outcome.is_ok());

    let log = log.borrow();
    let methods: Vec<WitMethod> = log.iter().map(|s| s.method).collect();
    assert_eq!(
        methods,
        [
            WitMethod::Get,
            WitMethod::Post,
            WitMethod::Patch,
            WitMethod::Delete,
            WitMethod::Delete,
            WitMethod::Post
        ],
        "the owner is looked up once; invalid writes send nothing"
    );
    assert_eq!(log[0].url, owner::lookup_url(API, MBX));
    let post = &log[1];
    assert_eq!(post.url, format!("{API}/appointments?$select=activityid"));
    assert_eq!(post.header("Prefer"), Some("return=representation"));
    let mut want = appointment::create_body(&appt()).unwrap();
    want.insert(
        "ownerid@odata.bind".into(),
        json!(format!("/systemusers({OWNER})")),
    );
    assert_eq!(post.body, Some(Value::Object(want)));
    let patch = &log[2];
    assert_eq!(
        patch.url,
        format!("{API}/appointments({A1})?$select=activityid")
    );
    assert_eq!(patch.header("If-Match"), Some("*"));
    assert_eq!(
        patch.body,
        Some(json!({"scheduledstart": "2026-02-03T09:00:00Z",
                    "scheduledend": "2026-02-03T10:00:00+01:00"}))
    );
    assert_eq!(log[3].url, format!("{API}/appointments({A1})"));
}

#[test]
fn tasks_change_status_by_update_only() {
    let log = Log::default();
    let results = with_http(
        recorder(&log, |_| {
            Ok(response(
                200,
                &json!({"@odata.etag": "W/\"8001\"", "activityid": A1}).to_string(),
            ))
        }),
        || {
            let t = || ItemBody::Task(todo());
            exports::push::<Dynamics>(
                CFG,
                TASKS,
                vec![
                    op(
                        "s",
                        WriteAction::Update,
                        Some(A1),
                        t(),
                        &["status", "completed"],
                    ),
                    op("r", WriteAction::Reactivate, Some(A1), t(), &[]),
                    op("none", WriteAction::Update, Some(A1), t(), &[]),
                ],
            )
        },
    )
    .unwrap();
    assert_eq!(
        results[0].outcome.as_ref().unwrap().version.as_deref(),
        Some("W/\"8001\"")
    );
    let e = results[1].outcome.as_ref().unwrap_err();
    assert_eq!(e.class(), "unsupported");
    assert!(e.describe().contains("status"), "{e:?}");
    assert_eq!(
        results[2].outcome.as_ref().unwrap().version,
        None,
        "nothing to write, nothing sent"
    );
    let log = log.borrow();
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0].body,
        Some(json!({"statecode": 1, "statuscode": 5, "actualend": "2026-02-04T12:00:00Z"}))
    );
}

#[test]
fn contacts_are_deactivated_and_reactivated() {
    let log = Log::default();
    let results = with_http(
        recorder(&log, |_| {
            Ok(with_header(response(204, ""), "ETag", "W/\"9001\""))
        }),
        || {
            let c = || ItemBody::Contact(person());
            exports::push::<Dynamics>(
                CFG,
                CONTACTS,
                vec![
                    op("off", WriteAction::Deactivate, Some(A3), c(), &[]),
                    op("on", WriteAction::Reactivate, Some(A3), c(), &["mobile"]),
                    op(
                        "name",
                        WriteAction::Update,
                        Some(A3),
                        c(),
                        &["display_name"],
                    ),
                ],
            )
        },
    )
    .unwrap();
    assert!(results[0].outcome.is_ok() && results[1].outcome.is_ok());
    assert_eq!(
        invalid_fields(results[2].outcome.as_ref().unwrap_err()),
        ["display_name"]
    );
    let log = log.borrow();
    assert_eq!(log.len(), 2);
    assert_eq!(
        log[0].url,
        format!("{API}/contacts({A3})?$select=contactid")
    );
    assert_eq!(log[0].body, Some(json!({"statecode": 1, "statuscode": 2})));
    assert_eq!(
        log[1].body,
        Some(json!({"mobilephone": "+1 555 0199", "statecode": 0, "statuscode": 1}))
    );
}

#[test]
fn a_create_refused_about_the_owner_drops_it() {
    test_state::set(&owner::cache_key(MBX), OWNER);
    let results = with_http(
        |_| {
            Ok(response(
                400,
                &format!(r#"{{"error":{{"code":"0x80040217","message":"systemuser With Id = {OWNER} Does Not Exist"}}}}"#),
            ))
        },
        || {
            exports::push::<Dynamics>(
                CFG,
                CONTACTS,
                vec![op("c", WriteAction::Create, None, ItemBody::Contact(person()), &[])],
            )
        },
    )
    .unwrap();
    let e = results[0].outcome.as_ref().unwrap_err();
    assert_eq!(e.class(), "invalid");
    assert!(e.describe().contains("looks the user up again"), "{e:?}");
    assert_eq!(test_state::get(&owner::cache_key(MBX)), None);
    // Created without an id in the answer: a remote failure that says what to do.
    test_state::set(&owner::cache_key(MBX), OWNER);
    let results = with_http(
        |_| Ok(response(204, "")),
        || {
            exports::push::<Dynamics>(
                CFG,
                CONTACTS,
                vec![op(
                    "c",
                    WriteAction::Create,
                    None,
                    ItemBody::Contact(person()),
                    &[],
                )],
            )
        },
    )
    .unwrap();
    let e = results[0].outcome.as_ref().unwrap_err();
    assert_eq!(e.class(), "remote");
    assert!(e.describe().contains("contactid"), "{e:?}");
    // The entity id header names it on a 204.
    let results = with_http(
        |_| {
            Ok(with_header(
                response(204, ""),
                "OData-EntityId",
                &format!("{API}/contacts({A3})"),
            ))
        },
        || {
            exports::push::<Dynamics>(
                CFG,
                CONTACTS,
                vec![op(
                    "c",
                    WriteAction::Create,
                    None,
                    ItemBody::Contact(person()),
                    &[],
                )],
            )
        },
    )
    .unwrap();
    assert_eq!(results[0].outcome.as_ref().unwrap().target_id, A3);
}
