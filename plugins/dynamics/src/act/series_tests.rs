//! Tests of the series as mailbox events: the event of a master and its exceptions (pure), and
//! what a pass asks Dataverse for, over a recorded HTTP exchange.

use super::exceptions::{self, Exception, SERIES_PER_QUERY};
use super::series::{self, event};
use super::*;
use crate::tests::{recorder, Log, API, CFG};
use crate::Dynamics;
use serde_json::json;
use std::cell::RefCell;
use std::rc::Rc;
use syncbridge_sdk::exports;
use syncbridge_sdk::testing::{response, with_http};
use syncbridge_sdk::types::mailbox::{EventKind, MailboxBody, MailboxPage, Zone};
use syncbridge_sdk::url::percent_encoding::percent_decode_str;

const OWNER: &str = "5b0c6a52-6a3f-4d1e-9a0b-1c2d3e4f5a00";
const R1: &str = "9a1c6a52-6a3f-4d1e-9a0b-1c2d3e4f5a71";
const E1: &str = "9a1c6a52-6a3f-4d1e-9a0b-1c2d3e4f5ae1";
const SCOPE: &str = "recurring-appointments:mailbox=ann@contoso.com";

fn berlin() -> Zone {
    Zone {
        iana: "Europe/Berlin".into(),
        windows: Some("W. Europe Standard Time".into()),
    }
}

fn is_berlin(z: Option<&Zone>) -> bool {
    z.is_some_and(|z| {
        z.iana == "Europe/Berlin" && z.windows.as_deref() == Some("W. Europe Standard Time")
    })
}

fn master(zone: Option<&str>, exdates: &[&str]) -> Appointment {
    let at = |utc: &str| ZonedTime {
        utc: utc.into(),
        time_zone: zone.map(str::to_owned),
    };
    Appointment {
        subject: Some("Stand-up".into()),
        start: at("2026-02-02T08:00:00Z"),
        end: at("2026-02-02T09:00:00Z"),
        all_day: false,
        show_as: ShowAs::Busy,
        sensitivity: Sensitivity::Normal,
        recurrence: Some(Recurrence {
            rrule: "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO;COUNT=5".into(),
            exdates: exdates.iter().map(|d| (*d).to_owned()).collect(),
        }),
        organizer: None,
        attendees: Vec::new(),
        location: Some("Room 2".into()),
        body: Some("<p>notes</p>".into()),
        categories: Vec::new(),
    }
}

fn exception_row(extra: Value) -> Value {
    let mut row = json!({
        "@odata.etag": "W/\"7001\"",
        "activityid": E1,
        "seriesid": R1,
        "originalstartdate": "2026-02-09T08:00:00Z",
        "scheduledstart": "2026-02-09T13:00:00.000Z",
        "scheduledend": "2026-02-09T14:00:00Z",
        "subject": "Stand-up (afternoon)",
        "location": "Room 5",
        "description": "<p>moved</p>",
        "statecode": 3,
        "statuscode": 2,
        "modifiedon": "2026-02-03T00:00:00Z"
    });
    for (k, v) in extra.as_object().unwrap() {
        row[k] = v.clone();
    }
    row
}

#[test]
fn a_master_and_its_exceptions_are_one_series_master_in_the_zone_it_was_entered_in() {
    let moved = exceptions::exception(&exception_row(json!({})), &berlin()).unwrap();
    let canceled = exceptions::exception(
        &exception_row(json!({"originalstartdate": "2026-02-16T08:00:00Z", "statecode": 2})),
        &berlin(),
    )
    .unwrap();
    assert!(
        matches!(&canceled, Exception::Canceled(at) if at == "2026-02-16T08:00:00Z"),
        "{canceled:?}"
    );
    let e = event(
        &master(Some("W. Europe Standard Time"), &["2026-02-23T08:00:00Z"]),
        &[moved, canceled],
    );
    assert_eq!(e.kind, EventKind::SeriesMaster);
    assert!(is_berlin(e.start.zone.as_ref()), "{:?}", e.start.zone);
    assert!(is_berlin(e.end.zone.as_ref()));
    assert_eq!(e.anchor, None, "the mapper anchors it");
    let s = e.series.unwrap();
    assert!(is_berlin(Some(&s.zone)));
    assert_eq!(s.rrule, "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO;COUNT=5");
    assert_eq!(
        s.deleted,
        ["2026-02-23T08:00:00Z", "2026-02-16T08:00:00Z"],
        "the pattern's deleted occurrences and the canceled exception"
    );
    assert_eq!(s.modified.len(), 1);
    let m = &s.modified[0];
    assert_eq!(m.original_start, "2026-02-09T08:00:00Z");
    assert_eq!(
        (m.start.utc.as_str(), m.end.utc.as_str()),
        ("2026-02-09T13:00:00Z", "2026-02-09T14:00:00Z"),
        "normalized to whole seconds"
    );
    assert!(is_berlin(m.start.zone.as_ref()));
    assert_eq!(m.subject.as_deref(), Some("Stand-up (afternoon)"));
    assert_eq!(m.location.as_deref(), Some("Room 5"));
    assert_eq!(m.body.as_ref().unwrap().content, "<p>moved</p>");
    assert_eq!(m.show_as, ShowAs::Tentative, "status reason 2");
    assert_eq!(m.id.as_deref(), Some(E1));
    assert_eq!(e.body.unwrap().content, "<p>notes</p>");
}

#[test]
fn an_exception_of_a_deleted_occurrence_or_without_times_is_left_out() {
    let moved = exceptions::exception(&exception_row(json!({})), &berlin()).unwrap();
    let e = event(&master(None, &["2026-02-09T08:00:00Z"]), &[moved]);
    let s = e.series.unwrap();
    assert!(s.modified.is_empty(), "the occurrence is deleted");
    assert_eq!(s.zone.iana, "Etc/UTC", "no zone code: UTC");
    for missing in ["originalstartdate", "scheduledstart", "scheduledend"] {
        let mut row = exception_row(json!({}));
        row[missing] = Value::Null;
        assert!(
            exceptions::exception(&row, &berlin()).is_none(),
            "{missing}"
        );
    }
    let local = exception_row(json!({"originalstartdate": "2026-02-09T09:00:00+01:00"}));
    assert!(
        exceptions::exception(&local, &berlin()).is_none(),
        "UTC only"
    );
}

#[test]
fn exceptions_are_asked_for_twenty_series_to_a_query() {
    let ids: Vec<String> = (0..SERIES_PER_QUERY + 1)
        .map(|n| format!("9a1c6a52-6a3f-4d1e-9a0b-1c2d3e4f{n:04x}"))
        .collect();
    let urls = exceptions::of_series_urls(API, &ids);
    assert_eq!(urls.len(), 2);
    let first = param(&urls[0], "$filter").unwrap();
    assert!(
        first.starts_with("(instancetypecode eq 3 or instancetypecode eq 4) and (seriesid eq "),
        "{first}"
    );
    assert_eq!(first.matches("seriesid eq").count(), SERIES_PER_QUERY);
    assert_eq!(
        param(&urls[1], "$filter").unwrap(),
        format!(
            "(instancetypecode eq 3 or instancetypecode eq 4) and (seriesid eq {})",
            ids[SERIES_PER_QUERY]
        )
    );
}

fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == name).then(|| percent_decode_str(v).decode_utf8().unwrap().into_owned())
    })
}

fn master_row(modified: &str) -> Value {
    json!({
        "@odata.etag": "W/\"6001\"",
        "activityid": R1,
        "_ownerid_value": OWNER,
        "subject": "Stand-up",
        "starttime": "2026-02-02T08:00:00Z",
        "endtime": "2026-02-02T09:00:00Z",
        "patternstartdate": "2026-02-02",
        "patternendtype": 2,
        "occurrences": 5,
        "recurrencepatterntype": 1,
        "interval": 1,
        "daysofweekmask": 2,
        "statecode": 3,
        "statuscode": 5,
        "modifiedon": modified
    })
}

/// What the pass asked for, by kind of query.
fn asked(log: &Log) -> Vec<&'static str> {
    log.borrow()
        .iter()
        .map(|r| {
            let filter = param(&r.url, "$filter").unwrap_or_default();
            if r.url.contains("/systemusers?") {
                "owner"
            } else if r
                .url
                .contains(&format!("/recurringappointmentmasters({R1})"))
            {
                "master by id"
            } else if r.url.contains("/recurringappointmentmasters?") {
                "masters"
            } else if r.url.contains("$top=1") {
                "newest exception"
            } else if filter.contains("seriesid eq") {
                "exceptions of series"
            } else if filter.contains("instancetypecode eq 3") {
                "changed exceptions"
            } else {
                panic!("unexpected request {}", r.url)
            }
        })
        .collect()
}

fn since(filter: &str) -> Option<String> {
    filter
        .split(" and ")
        .find_map(|c| c.strip_prefix("modifiedon ge "))
        .map(str::to_owned)
}

fn pull(
    log: &Log,
    masters: &[Value],
    rows: &Rc<RefCell<Vec<Value>>>,
    cursor: Option<&str>,
) -> MailboxPage {
    let masters = masters.to_vec();
    let rows = rows.clone();
    with_http(
        recorder(log, move |r| {
            let filter = param(&r.url, "$filter").unwrap_or_default();
            let value: Vec<Value> = if r.url.contains("/systemusers?") {
                vec![json!({"systemuserid": OWNER})]
            } else if r
                .url
                .contains(&format!("/recurringappointmentmasters({R1})"))
            {
                return Ok(response(200, &masters[0].to_string()));
            } else if r.url.contains("/recurringappointmentmasters?") {
                masters
                    .iter()
                    .filter(|m| {
                        since(&filter)
                            .is_none_or(|s| m["modifiedon"].as_str().unwrap() >= s.as_str())
                    })
                    .cloned()
                    .collect()
            } else {
                let rows = rows.borrow();
                let mut found: Vec<Value> = rows
                    .iter()
                    .filter(|e| {
                        since(&filter)
                            .is_none_or(|s| e["modifiedon"].as_str().unwrap() >= s.as_str())
                    })
                    .cloned()
                    .collect();
                if r.url.contains("$top=1") {
                    found.sort_by(|a, b| b["modifiedon"].as_str().cmp(&a["modifiedon"].as_str()));
                    found.truncate(1);
                }
                found
            };
            Ok(response(200, &json!({ "value": value }).to_string()))
        }),
        || {
            exports::pull_mailbox::<Dynamics>(
                CFG,
                PullRequest {
                    scope: SCOPE.into(),
                    cursor: cursor.map(str::to_owned),
                    max_items: 50,
                },
            )
        },
    )
    .unwrap()
}

fn modified_starts(page: &MailboxPage) -> Vec<String> {
    let mut starts = Vec::new();
    for item in &page.items {
        let Some(MailboxBody::Event(e)) = &item.body else {
            panic!("an event: {:?}", item.body);
        };
        starts.extend(
            e.series
                .as_ref()
                .unwrap()
                .modified
                .iter()
                .map(|m| m.start.utc.clone()),
        );
    }
    starts
}

#[test]
fn a_delta_reads_the_series_whose_exceptions_changed_and_nothing_more_when_none_did() {
    let masters = [master_row("2026-02-01T00:00:00Z")];
    let rows = Rc::new(RefCell::new(vec![exception_row(json!({}))]));

    let log = Log::default();
    let page = pull(&log, &masters, &rows, None);
    assert_eq!(
        asked(&log),
        [
            "owner",
            "masters",
            "newest exception",
            "exceptions of series"
        ]
    );
    assert!(page.full);
    assert_eq!(modified_starts(&page), ["2026-02-09T13:00:00Z"]);
    let cursor = page.cursor.unwrap();
    let parsed: Value = serde_json::from_str(&cursor).unwrap();
    assert_eq!(parsed["exceptions"]["at"], "2026-02-03T00:00:00Z");

    // Nothing changed: the masters and the changed exceptions are asked for, nothing more.
    let log = Log::default();
    let page = pull(&log, &masters, &rows, Some(&cursor));
    assert_eq!(asked(&log), ["masters", "changed exceptions"]);
    assert!(page.items.is_empty() && !page.full);
    let cursor = page.cursor.unwrap();

    // Only the exception moves: its series is read again, with it.
    rows.borrow_mut()[0] = exception_row(json!({
        "@odata.etag": "W/\"7002\"",
        "scheduledstart": "2026-02-09T15:00:00Z",
        "scheduledend": "2026-02-09T16:00:00Z",
        "modifiedon": "2026-02-04T00:00:00Z"
    }));
    let log = Log::default();
    let page = pull(&log, &masters, &rows, Some(&cursor));
    assert_eq!(
        asked(&log),
        [
            "masters",
            "changed exceptions",
            "master by id",
            "exceptions of series"
        ]
    );
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, R1);
    assert_eq!(modified_starts(&page), ["2026-02-09T15:00:00Z"]);
    let cursor = page.cursor.unwrap();

    // And then nothing again.
    let log = Log::default();
    let page = pull(&log, &masters, &rows, Some(&cursor));
    assert_eq!(asked(&log), ["masters", "changed exceptions"]);
    assert!(page.items.is_empty());
}

#[test]
fn the_master_s_two_way_fields_are_written_from_an_event() {
    let log = Log::default();
    let e = event(&master(Some("W. Europe Standard Time"), &[]), &[]);
    let op = syncbridge_sdk::types::mailbox::MailboxWriteOp {
        op_id: "op-1".into(),
        action: WriteAction::Update,
        target_id: Some(R1.into()),
        body: Some(MailboxBody::Event(e.clone())),
        fields: vec!["subject".into(), "start".into(), "location".into()],
    };
    let results = with_http(
        recorder(&log, |_| {
            Ok(response(
                200,
                &json!({"activityid": R1, "@odata.etag": "W/\"6002\""}).to_string(),
            ))
        }),
        || exports::push_mailbox::<Dynamics>(CFG, SCOPE, vec![op.clone()]),
    )
    .unwrap();
    assert!(results[0].outcome.is_ok(), "{results:?}");
    let log = log.borrow();
    assert_eq!(
        log[0].url,
        format!("{API}/recurringappointmentmasters({R1})?$select=activityid")
    );
    assert_eq!(
        log[0].body.as_ref().unwrap(),
        &json!({"subject": "Stand-up", "starttime": "2026-02-02T08:00:00Z", "location": "Room 2"})
    );
    drop(log);

    // The pattern and its occurrences flow from Dynamics only.
    let mut series = op.clone();
    series.fields = vec!["series".into()];
    let results = with_http(recorder(&Log::default(), |_| unreachable!()), || {
        exports::push_mailbox::<Dynamics>(CFG, SCOPE, vec![series])
    })
    .unwrap();
    assert!(
        matches!(&results[0].outcome, Err(PluginError::Unsupported(m)) if m.contains("from Dynamics")),
        "{results:?}"
    );
    // Only the series are served as mailbox items.
    let e = with_http(recorder(&Log::default(), |_| unreachable!()), || {
        exports::pull_mailbox::<Dynamics>(
            CFG,
            PullRequest {
                scope: "appointments:mailbox=ann@contoso.com".into(),
                cursor: None,
                max_items: 5,
            },
        )
    })
    .unwrap_err();
    assert!(
        e.describe()
            .contains("recurring-appointments:mailbox=<address>"),
        "{e:?}"
    );
    assert_eq!(
        series::SCOPE_NAMES
            .iter()
            .filter(|n| Kind::named_by(n) == Some(Kind::RecurringAppointments))
            .count(),
        3
    );
}
