use super::recurrence::{expand, from_rrule, to_rrule};
use super::*;
use crate::Graph;
use chrono::NaiveDate;
use chrono_tz::Tz;
use std::cell::RefCell;
use std::rc::Rc;
use syncbridge_sdk::exports;
use syncbridge_sdk::testing::{response, with_http};
use syncbridge_sdk::types::{PluginError, Throttle, WriteAction};

const CFG: &str = r#"{"graph_url":"http://graph.test/v1.0/"}"#;
const BERLIN: &str = "W. Europe Standard Time";

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn utc(s: &str) -> chrono::DateTime<chrono::Utc> {
    zone::parse_utc(s).unwrap()
}

/// Graph pattern → RRULE → Graph pattern, for every pattern type and range type.
#[test]
fn recurrence_patterns_round_trip_through_rrule() {
    let tz: Tz = "Europe/Berlin".parse().unwrap();
    let cases = [
        (
            json!({"pattern": {"type": "daily", "interval": 2},
                "range": {"type": "numbered", "startDate": "2026-03-02", "numberOfOccurrences": 10, "recurrenceTimeZone": BERLIN}}),
            "FREQ=DAILY;INTERVAL=2;COUNT=10",
        ),
        (
            json!({"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "thursday"], "firstDayOfWeek": "monday"},
                "range": {"type": "endDate", "startDate": "2026-03-02", "endDate": "2026-06-30", "recurrenceTimeZone": BERLIN}}),
            // The end of 30 June in Berlin (CEST, UTC+2) is 21:59:59 UTC.
            "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,TH;WKST=MO;UNTIL=20260630T215959Z",
        ),
        (
            json!({"pattern": {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 15},
                "range": {"type": "noEnd", "startDate": "2026-03-02", "recurrenceTimeZone": BERLIN}}),
            "FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=15",
        ),
        (
            json!({"pattern": {"type": "relativeMonthly", "interval": 3, "daysOfWeek": ["tuesday"], "index": "second"},
                "range": {"type": "noEnd", "startDate": "2026-03-02", "recurrenceTimeZone": BERLIN}}),
            "FREQ=MONTHLY;INTERVAL=3;BYDAY=2TU",
        ),
        (
            json!({"pattern": {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"], "index": "last"},
                "range": {"type": "noEnd", "startDate": "2026-03-02", "recurrenceTimeZone": BERLIN}}),
            "FREQ=MONTHLY;INTERVAL=1;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
        ),
        (
            json!({"pattern": {"type": "absoluteYearly", "interval": 1, "dayOfMonth": 24, "month": 12},
                "range": {"type": "numbered", "startDate": "2026-03-02", "numberOfOccurrences": 5, "recurrenceTimeZone": BERLIN}}),
            "FREQ=YEARLY;INTERVAL=1;BYMONTH=12;BYMONTHDAY=24;COUNT=5",
        ),
        (
            json!({"pattern": {"type": "relativeYearly", "interval": 1, "daysOfWeek": ["friday"], "index": "last", "month": 11},
                "range": {"type": "endDate", "startDate": "2026-03-02", "endDate": "2030-12-31", "recurrenceTimeZone": BERLIN}}),
            "FREQ=YEARLY;INTERVAL=1;BYMONTH=11;BYDAY=-1FR;UNTIL=20301231T225959Z",
        ),
    ];
    for (graph, rrule) in cases {
        assert_eq!(to_rrule(&graph, tz).unwrap(), rrule, "{graph}");
        let back = from_rrule(rrule, d("2026-03-02"), tz, BERLIN).unwrap();
        let p = &back["pattern"];
        for k in [
            "type",
            "interval",
            "daysOfWeek",
            "index",
            "dayOfMonth",
            "month",
        ] {
            if graph["pattern"].get(k).is_some() {
                assert_eq!(p[k], graph["pattern"][k], "{k} of {rrule}");
            }
        }
        for k in [
            "type",
            "endDate",
            "numberOfOccurrences",
            "startDate",
            "recurrenceTimeZone",
        ] {
            if graph["range"].get(k).is_some() {
                assert_eq!(back["range"][k], graph["range"][k], "range {k} of {rrule}");
            }
        }
    }
    assert!(to_rrule(&json!({"pattern": {"type": "hourly"}}), tz).is_err());
    assert!(from_rrule("FREQ=HOURLY", d("2026-03-02"), tz, BERLIN).is_err());
}

#[test]
fn weekly_rules_without_days_take_the_start_day() {
    let tz: Tz = "UTC".parse().unwrap();
    // 2026-03-04 is a Wednesday.
    let g = from_rrule("FREQ=WEEKLY", d("2026-03-04"), tz, "UTC").unwrap();
    assert_eq!(g["pattern"]["daysOfWeek"], json!(["wednesday"]));
    assert_eq!(g["range"]["type"], "noEnd");
}

#[test]
fn expansion_keeps_wall_clock_time_across_dst() {
    let tz: Tz = "Europe/Berlin".parse().unwrap();
    // Weekly Monday 09:00 Berlin from 2026-03-16 (CET, 08:00 UTC); DST starts 2026-03-29.
    let starts = expand(
        "FREQ=WEEKLY;BYDAY=MO",
        utc("2026-03-16T08:00:00Z"),
        tz,
        utc("2026-03-01T00:00:00Z"),
        utc("2026-04-07T00:00:00Z"),
    )
    .unwrap();
    let got: Vec<String> = starts.into_iter().map(zone::fmt_utc).collect();
    assert_eq!(
        got,
        [
            "2026-03-16T08:00:00Z",
            "2026-03-23T08:00:00Z",
            "2026-03-30T07:00:00Z",
            "2026-04-06T07:00:00Z"
        ]
    );
}

fn series_master(extra: Value) -> Value {
    let mut m = json!({
        "id": "M1", "type": "seriesMaster", "subject": "Standup", "changeKey": "ck1",
        "start": {"dateTime": "2026-03-02T08:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-03-02T08:15:00.0000000", "timeZone": "UTC"},
        "originalStartTimeZone": BERLIN, "isAllDay": false, "showAs": "busy", "sensitivity": "private",
        "recurrence": {"pattern": {"type": "daily", "interval": 1},
            "range": {"type": "noEnd", "startDate": "2026-03-02", "recurrenceTimeZone": BERLIN}},
        "exceptionOccurrences": [],
        "isReminderOn": true, "reminderMinutesBeforeStart": 10,
        "singleValueExtendedProperties": [{"id": ANCHOR_PROPERTY, "value": "link-7"}],
    });
    if let (Some(o), Some(e)) = (m.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    m
}

fn occurrence(day: &str, kind: &str) -> Value {
    json!({"id": format!("M1_{day}"), "type": kind, "seriesMasterId": "M1",
        "originalStart": format!("{day}T08:00:00Z"),
        "start": {"dateTime": format!("{day}T08:00:00.0000000"), "timeZone": "UTC"},
        "end": {"dateTime": format!("{day}T08:15:00.0000000"), "timeZone": "UTC"},
        "originalStartTimeZone": BERLIN})
}

/// A series that started before the window: modified occurrences (one moved out of the
/// window), deleted ones = expected in the window but neither listed nor modified.
#[test]
fn series_reads_modified_and_deleted_occurrences() {
    let moved = json!({"id": "X2", "type": "exception", "seriesMasterId": "M1",
        "originalStart": "2026-03-11T08:00:00Z", "subject": "Standup (moved)",
        "start": {"dateTime": "2026-04-20T10:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-04-20T10:15:00.0000000", "timeZone": "UTC"},
        "originalStartTimeZone": BERLIN, "showAs": "tentative"});
    let master = series_master(json!({"exceptionOccurrences": [moved]}));
    let instances = vec![
        occurrence("2026-03-10", "occurrence"),
        // 2026-03-11 moved out of the window; 2026-03-12 deleted.
        occurrence("2026-03-13", "occurrence"),
    ];
    let e = calendar::series_event(
        &master,
        &instances,
        utc("2026-03-10T00:00:00Z"),
        utc("2026-03-14T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(e.kind, EventKind::SeriesMaster);
    assert_eq!(e.anchor.as_deref(), Some("link-7"));
    assert_eq!(e.sensitivity, Sensitivity::Private);
    assert_eq!(e.reminder_minutes, Some(10));
    let s = e.series.unwrap();
    assert_eq!(s.rrule, "FREQ=DAILY;INTERVAL=1");
    assert_eq!(s.zone.iana, "Europe/Berlin");
    assert_eq!(s.zone.windows.as_deref(), Some(BERLIN));
    assert_eq!(s.modified.len(), 1);
    assert_eq!(s.modified[0].original_start, "2026-03-11T08:00:00Z");
    assert_eq!(s.modified[0].start.utc, "2026-04-20T10:00:00Z");
    assert_eq!(s.modified[0].show_as, ShowAs::Tentative);
    assert_eq!(s.deleted, ["2026-03-12T08:00:00Z"]);
    assert_eq!(
        e.start.utc, "2026-03-02T08:00:00Z",
        "the master starts with the series"
    );
}

#[test]
fn singles_map_every_field() {
    let v = json!({"id": "E1", "type": "singleInstance", "subject": "Review", "changeKey": "ck",
        "start": {"dateTime": "2026-07-01T07:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-07-01T08:00:00.0000000", "timeZone": "UTC"},
        "originalStartTimeZone": "Pacific Standard Time", "isAllDay": false,
        "showAs": "free", "sensitivity": "normal", "isReminderOn": false, "reminderMinutesBeforeStart": 15,
        "organizer": {"emailAddress": {"name": "Alice", "address": "alice@contoso.com"}},
        "attendees": [{"type": "optional", "emailAddress": {"address": "bob@contoso.com", "name": "Bob"}, "status": {"response": "tentativelyAccepted"}}],
        "location": {"displayName": "Room 1"}, "categories": ["Blue"],
        "body": {"contentType": "html", "content": "<p>x</p>"}});
    let e = calendar::map_event(&v, EventKind::Single).unwrap();
    assert_eq!(e.start.utc, "2026-07-01T07:00:00Z");
    assert_eq!(e.start.zone.as_ref().unwrap().iana, "America/Los_Angeles");
    assert_eq!(e.show_as, ShowAs::Free);
    assert_eq!(e.reminder_minutes, None);
    assert_eq!(e.organizer.unwrap().address, "alice@contoso.com");
    assert_eq!(e.attendees[0].role, AttendeeRole::Optional);
    assert_eq!(e.attendees[0].response, Response::Tentative);
    assert_eq!(e.location.as_deref(), Some("Room 1"));
    assert_eq!(e.body.unwrap().body_type, BodyType::Html);
    assert_eq!(e.anchor, None);
}

fn event_op(action: WriteAction, fields: &[&str], e: Event) -> MailboxWriteOp {
    MailboxWriteOp {
        op_id: "1".into(),
        action,
        target_id: (action != WriteAction::Create).then(|| "E1".into()),
        body: Some(MailboxBody::Event(e)),
        fields: fields.iter().map(|f| f.to_string()).collect(),
    }
}

fn sample_event() -> Event {
    let v = json!({"id": "E1", "subject": "Review",
        "start": {"dateTime": "2026-07-01T07:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-07-01T08:00:00.0000000", "timeZone": "UTC"},
        "originalStartTimeZone": BERLIN, "isReminderOn": true, "reminderMinutesBeforeStart": 5,
        "singleValueExtendedProperties": [{"id": ANCHOR_PROPERTY, "value": "L1"}]});
    calendar::map_event(&v, EventKind::Single).unwrap()
}

#[test]
fn updates_write_only_the_named_fields() {
    let op = event_op(
        WriteAction::Update,
        &["subject", "reminder_minutes"],
        sample_event(),
    );
    let j = calendar::event_json(&sample_event(), &op).unwrap();
    assert_eq!(
        j,
        json!({"subject": "Review", "isReminderOn": true, "reminderMinutesBeforeStart": 5})
    );
    let mut cleared = sample_event();
    cleared.location = None;
    let op = event_op(WriteAction::Update, &["location"], cleared.clone());
    assert_eq!(
        calendar::event_json(&cleared, &op).unwrap(),
        json!({"location": {"displayName": ""}})
    );
    let op = event_op(WriteAction::Update, &["colour"], sample_event());
    assert_eq!(
        calendar::event_json(&sample_event(), &op)
            .unwrap_err()
            .class(),
        "invalid"
    );
    // A create writes everything, the anchor as the extended property, times in the event zone.
    let op = event_op(WriteAction::Create, &[], sample_event());
    let j = calendar::event_json(&sample_event(), &op).unwrap();
    assert_eq!(
        j["start"],
        json!({"dateTime": "2026-07-01T09:00:00", "timeZone": BERLIN})
    );
    assert_eq!(
        j["singleValueExtendedProperties"],
        json!([{"id": ANCHOR_PROPERTY, "value": "L1"}])
    );
    assert_eq!(j["recurrence"], Value::Null);
}

#[test]
fn a_series_is_created_from_its_rrule() {
    let mut e = sample_event();
    e.series = Some(Series {
        rrule: "FREQ=WEEKLY;BYDAY=WE;COUNT=4".into(),
        zone: zone::zone_of(BERLIN).unwrap(),
        modified: vec![],
        deleted: vec![],
    });
    let op = event_op(WriteAction::Create, &[], e.clone());
    let j = calendar::event_json(&e, &op).unwrap();
    assert_eq!(
        j["recurrence"],
        json!({"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["wednesday"], "firstDayOfWeek": "sunday"},
            "range": {"type": "numbered", "startDate": "2026-07-01", "numberOfOccurrences": 4, "recurrenceTimeZone": BERLIN}})
    );
}

#[test]
fn scopes_parse_and_refuse_what_they_do_not_know() {
    assert_eq!(
        MailboxScope::parse("calendar:mailbox=alice@contoso.com,past=7,future=90").unwrap(),
        MailboxScope::Calendar {
            mailbox: "alice@contoso.com".into(),
            past: 7,
            future: 90,
            occurrences: false,
        }
    );
    assert!(matches!(
        MailboxScope::parse("calendar:mailbox=a@b.c,series=occurrences").unwrap(),
        MailboxScope::Calendar {
            occurrences: true,
            ..
        }
    ));
    for bad in [
        "calendar:mailbox=a@b.c,series=all",
        "tasks:mailbox=a@b.c,series=occurrences",
    ] {
        assert_eq!(
            MailboxScope::parse(bad).unwrap_err().class(),
            "invalid",
            "{bad}"
        );
    }
    assert_eq!(
        MailboxScope::parse("tasks:mailbox=a@b.c").unwrap(),
        MailboxScope::Tasks {
            mailbox: "a@b.c".into()
        }
    );
    for bad in [
        "calendar",
        "calendar:mailbox=alice",
        "notes:mailbox=a@b.c",
        "contacts:mailbox=a@b.c,folder=x",
        "calendar:mailbox=a@b.c,past=-1",
    ] {
        assert_eq!(
            MailboxScope::parse(bad).unwrap_err().class(),
            "invalid",
            "{bad}"
        );
    }
}

fn cal_req(cursor: Option<&str>) -> PullRequest {
    PullRequest {
        scope: "calendar:mailbox=alice@contoso.com,past=1,future=1".into(),
        cursor: cursor.map(str::to_owned),
        max_items: 25,
    }
}

#[test]
fn a_gone_delta_token_restarts_a_full_pass() {
    let cursor = json!({"link": "http://graph.test/v1.0/users/alice%40contoso.com/calendarView/delta?$deltatoken=old",
        "from": "2026-01-01"})
    .to_string();
    syncbridge_sdk::testing::set_now_ms(1_767_225_600_000); // 2026-01-01
    let page = with_http(
        |_| {
            Ok(response(
                410,
                r#"{"error":{"code":"SyncStateNotFound","message":"gone"}}"#,
            ))
        },
        || exports::pull_mailbox::<Graph>(CFG, cal_req(Some(&cursor))),
    )
    .unwrap();
    assert!(page.items.is_empty() && page.more && page.full && page.cursor.is_none());
}

#[test]
fn calendar_pages_group_occurrences_under_their_master() {
    syncbridge_sdk::testing::set_now_ms(1_773_100_800_000); // 2026-03-10
    let seen = Rc::new(RefCell::new(Vec::<String>::new()));
    let s = seen.clone();
    let page = with_http(
        move |r| {
            s.borrow_mut().push(r.url.clone());
            let u = r.url.as_str();
            let body = if u.contains("/calendarView/delta") {
                let prefer = r
                    .headers
                    .iter()
                    .find(|h| h.name == "Prefer")
                    .map(|h| h.value.clone())
                    .unwrap_or_default();
                assert_eq!(prefer, "outlook.timezone=\"UTC\", odata.maxpagesize=25");
                json!({"@odata.deltaLink": "http://graph.test/v1.0/users/alice%40contoso.com/calendarView/delta?$deltatoken=d1",
                    "value": [occurrence("2026-03-10", "occurrence"), occurrence("2026-03-11", "occurrence"),
                        {"id": "gone", "@removed": {"reason": "deleted"}}]})
            } else if u.contains("/events/M1/instances") {
                json!({"value": [occurrence("2026-03-10", "occurrence"), occurrence("2026-03-11", "occurrence")]})
            } else if u.contains("/events/M1?") {
                series_master(json!({}))
            } else {
                panic!("unexpected request {u}");
            };
            Ok(response(200, &body.to_string()))
        },
        || exports::pull_mailbox::<Graph>(CFG, cal_req(None)),
    )
    .unwrap();
    let urls = seen.borrow();
    assert!(urls[0].starts_with("http://graph.test/v1.0/users/alice%40contoso.com/calendarView/delta?startDateTime=2026-03-09T00%3A00%3A00Z&endDateTime=2026-03-12T00%3A00%3A00Z"), "{}", urls[0]);
    assert_eq!(urls.len(), 3, "the master is read once: {urls:?}");
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.items[0].removed, Some(Removal::Deleted));
    assert_eq!(page.items[1].id, "M1");
    let Some(MailboxBody::Event(e)) = &page.items[1].body else {
        panic!("an event")
    };
    assert_eq!(e.kind, EventKind::SeriesMaster);
    // The window is 9–12 March; 9 March is expected but missing from the view: deleted.
    assert_eq!(e.series.as_ref().unwrap().deleted, ["2026-03-09T08:00:00Z"]);
    assert!(!page.more && page.full);
    let c = DeltaCursor::parse(page.cursor.as_deref()).unwrap();
    assert!(c.link.unwrap().ends_with("$deltatoken=d1"));
    assert_eq!(c.from.as_deref(), Some("2026-03-09"));
}

#[test]
fn contacts_map_both_ways() {
    let v = json!({"id": "C1", "givenName": "Ada", "surname": "Lovelace", "companyName": "Contoso",
        "emailAddresses": [{"name": "Ada", "address": "ada@contoso.com"}],
        "businessPhones": ["+1 1"], "homePhones": [], "mobilePhone": "+1 2",
        "businessAddress": {"street": "1 Main St", "city": "Redmond", "countryOrRegion": "US"},
        "homeAddress": {}, "birthday": "1815-12-10T00:00:00Z", "personalNotes": "n",
        "singleValueExtendedProperties": [{"id": ANCHOR_PROPERTY, "value": "L2"}]});
    let c = contacts::map_contact(&v);
    assert_eq!(c.phones.len(), 2);
    assert_eq!(c.addresses.len(), 1);
    assert_eq!(c.addresses[0].city.as_deref(), Some("Redmond"));
    assert_eq!(c.birthday.as_deref(), Some("1815-12-10"));
    assert_eq!(c.anchor.as_deref(), Some("L2"));
    let op = MailboxWriteOp {
        op_id: "1".into(),
        action: WriteAction::Update,
        target_id: Some("C1".into()),
        body: Some(MailboxBody::Contact(c.clone())),
        fields: vec!["phones".into(), "anchor".into()],
    };
    assert_eq!(
        contacts::contact_json(&c, &op).unwrap(),
        json!({"businessPhones": ["+1 1"], "homePhones": [], "mobilePhone": "+1 2",
            "singleValueExtendedProperties": [{"id": ANCHOR_PROPERTY, "value": "L2"}]})
    );
}

#[test]
fn todos_keep_their_zone_and_link() {
    let v = json!({"id": "T1", "title": "Call", "status": "completed",
        "dueDateTime": {"dateTime": "2026-07-25T16:00:00.0000000", "timeZone": "Eastern Standard Time"},
        "completedDateTime": {"dateTime": "2026-07-24T10:00:00.0000000", "timeZone": "UTC"},
        "linkedResources": [{"id": "lr", "applicationName": "syncbridge", "externalId": "L3"}]});
    let t = todo::map_todo(&v);
    assert_eq!(t.status, TaskStatus::Completed);
    assert_eq!(t.percent_complete, 100);
    let due = t.due.clone().unwrap();
    assert_eq!(due.utc, "2026-07-25T20:00:00Z");
    assert_eq!(due.zone.as_ref().unwrap().iana, "America/New_York");
    assert_eq!(t.completed.as_deref(), Some("2026-07-24T10:00:00Z"));
    assert_eq!(t.anchor.as_deref(), Some("L3"));
    let op = MailboxWriteOp {
        op_id: "1".into(),
        action: WriteAction::Create,
        target_id: None,
        body: Some(MailboxBody::Todo(t.clone())),
        fields: vec![],
    };
    let j = todo::todo_json(&t, &op).unwrap();
    assert_eq!(
        j["dueDateTime"],
        json!({"dateTime": "2026-07-25T16:00:00", "timeZone": "Eastern Standard Time"})
    );
    assert_eq!(j["linkedResources"][0]["externalId"], "L3");
}

#[test]
fn throttling_stops_the_batch_with_its_retry_after() {
    let calls = Rc::new(RefCell::new(0));
    let c = calls.clone();
    let results = with_http(
        move |_| {
            *c.borrow_mut() += 1;
            Err(PluginError::Throttled(Throttle {
                message: "429".into(),
                retry_after_ms: Some(2000),
            }))
        },
        || {
            exports::push_mailbox::<Graph>(
                CFG,
                "calendar:mailbox=alice@contoso.com",
                vec![
                    event_op(WriteAction::Create, &[], sample_event()),
                    event_op(WriteAction::Create, &[], sample_event()),
                ],
            )
        },
    )
    .unwrap();
    assert_eq!(*calls.borrow(), 1, "nothing is sent after the throttle");
    for r in results {
        match r.outcome {
            Err(PluginError::Throttled(t)) => assert_eq!(t.retry_after_ms, Some(2000)),
            other => panic!("expected throttled, got {other:?}"),
        }
    }
}

/// An all-day daily series in Tokyo: occurrences' original starts come as floating dates;
/// an exception moved a day later (across the UTC date line of the zone), one deleted.
#[test]
fn all_day_series_compare_dates_in_their_zone() {
    let tokyo = "Tokyo Standard Time";
    let master = json!({"id": "A1", "type": "seriesMaster", "subject": "Off-site", "isAllDay": true,
        "start": {"dateTime": "2026-05-01T00:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-05-02T00:00:00.0000000", "timeZone": "UTC"},
        "originalStartTimeZone": tokyo,
        "recurrence": {"pattern": {"type": "daily", "interval": 1},
            "range": {"type": "numbered", "startDate": "2026-05-01", "numberOfOccurrences": 5, "recurrenceTimeZone": tokyo}},
        "exceptionOccurrences": [{"id": "A1_x", "type": "exception", "seriesMasterId": "A1", "isAllDay": true,
            "originalStart": "2026-05-02T00:00:00Z", "originalStartTimeZone": tokyo,
            "start": {"dateTime": "2026-05-09T00:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-05-10T00:00:00.0000000", "timeZone": "UTC"}}]});
    let occ = |d: &str| {
        json!({"id": format!("A1_{d}"), "type": "occurrence", "seriesMasterId": "A1", "isAllDay": true,
        "originalStart": format!("{d}T00:00:00Z"), "originalStartTimeZone": tokyo,
        "start": {"dateTime": format!("{d}T00:00:00.0000000"), "timeZone": "UTC"},
        "end": {"dateTime": format!("{d}T00:00:00.0000000"), "timeZone": "UTC"}})
    };
    // 3 May deleted; 2 May moved to 9 May.
    let instances = vec![occ("2026-05-01"), occ("2026-05-04"), occ("2026-05-05")];
    let e = calendar::series_event(
        &master,
        &instances,
        utc("2026-04-30T00:00:00Z"),
        utc("2026-05-07T00:00:00Z"),
    )
    .unwrap();
    assert!(e.all_day);
    assert_eq!(e.start.utc, "2026-04-30T15:00:00Z", "midnight in Tokyo");
    let s = e.series.unwrap();
    assert_eq!(s.rrule, "FREQ=DAILY;INTERVAL=1;COUNT=5");
    assert_eq!(s.modified.len(), 1);
    assert_eq!(s.modified[0].original_start, "2026-05-01T15:00:00Z");
    assert_eq!(s.modified[0].start.utc, "2026-05-08T15:00:00Z");
    assert_eq!(s.deleted, ["2026-05-02T15:00:00Z"]);
}

/// A mailbox Graph cannot serve answers 404 like a missing item. Before, a lookup of a linked
/// event read as "deleted by hand" (so the engine created it again), a delete counted as done
/// and a To Do pass restarted for ever; now each is the mailbox's error.
#[test]
fn a_mailbox_graph_cannot_serve_is_an_error_not_a_missing_item() {
    let unlicensed = || {
        Ok(response(
            404,
            r#"{"error":{"code":"MailboxNotEnabledForRESTAPI","message":"The mailbox is either inactive, soft-deleted, or is hosted on-premise."}}"#,
        ))
    };
    let found = with_http(
        move |_| unlicensed(),
        || {
            exports::lookup_mailbox::<Graph>(
                CFG,
                "calendar:mailbox=alice@contoso.com",
                vec!["id:E1".into()],
            )
        },
    );
    assert!(
        matches!(&found, Err(PluginError::Forbidden(m)) if m.contains("Exchange Online licence")),
        "{found:?}"
    );
    let deleted = with_http(
        move |_| unlicensed(),
        || {
            exports::push_mailbox::<Graph>(
                CFG,
                "calendar:mailbox=alice@contoso.com",
                vec![MailboxWriteOp {
                    op_id: "1".into(),
                    action: WriteAction::Delete,
                    target_id: Some("E1".into()),
                    body: None,
                    fields: Vec::new(),
                }],
            )
        },
    );
    let refused = match &deleted {
        Err(e) => matches!(e, PluginError::Forbidden(_)),
        Ok(results) => results
            .iter()
            .all(|r| matches!(r.outcome, Err(PluginError::Forbidden(_)))),
    };
    assert!(refused, "a delete in that mailbox is not done: {deleted:?}");
    let tasks = with_http(
        move |_| unlicensed(),
        || {
            exports::pull_mailbox::<Graph>(
                CFG,
                PullRequest {
                    scope: "tasks:mailbox=alice@contoso.com".into(),
                    cursor: None,
                    max_items: 10,
                },
            )
        },
    );
    assert!(matches!(tasks, Err(PluginError::Forbidden(_))), "{tasks:?}");
    // No such user: the scope's mailbox is invalid.
    let unknown = with_http(
        |_| {
            Ok(response(
                404,
                r#"{"error":{"code":"ErrorInvalidUser","message":"The requested user 'x@contoso.com' is invalid."}}"#,
            ))
        },
        || exports::pull_mailbox::<Graph>(CFG, cal_req(None)),
    );
    assert!(
        matches!(&unknown, Err(PluginError::Invalid(i)) if i.fields.iter().any(|f| f.field == "mailbox")),
        "{unknown:?}"
    );
    // An item's own 404 is still a missing item (answered as removed).
    let gone = with_http(
        |_| {
            Ok(response(
                404,
                r#"{"error":{"code":"ErrorItemNotFound","message":"The specified object was not found in the store."}}"#,
            ))
        },
        || {
            exports::lookup_mailbox::<Graph>(
                CFG,
                "calendar:mailbox=alice@contoso.com",
                vec!["id:E1".into()],
            )
        },
    );
    assert!(
        matches!(&gone, Ok(v) if v.iter().all(|i| i.removed.is_some())),
        "{gone:?}"
    );
}
