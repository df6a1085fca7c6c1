//! Tests of the recurring appointments scope: the pattern → RRULE mapping and the first
//! occurrence (pure), then pulls, lookups and writes over a recorded HTTP exchange whose answers
//! are filtered by the request's `$filter` as Dataverse (and the simulator) does.

use super::cursor::Cursor;
use super::query::{first_page_url, row_url, RECURRING_SELECT};
use super::recurring::{
    civil, days_from_civil, exdates, instant, rfc3339, series, update_body, weekday, Bad, Clock,
    Rule,
};
use super::*;
use crate::tests::{invalid_fields, recorder, with_header, Log, API, CFG};
use crate::Dynamics;
use serde_json::json;
use std::cell::RefCell;
use std::rc::Rc;
use syncbridge_sdk::bindings::connector::syncbridge::plugin::http::{
    Method as WitMethod, Request as WitRequest, Response as WitResponse,
};
use syncbridge_sdk::exports;
use syncbridge_sdk::testing::{response, with_http};
use syncbridge_sdk::url::percent_encoding::percent_decode_str;

const MBX: &str = "ann@contoso.com";
const OWNER: &str = "5b0c6a52-6a3f-4d1e-9a0b-1c2d3e4f5a00";
const OTHER: &str = "5b0c6a52-6a3f-4d1e-9a0b-1c2d3e4f5aff";
const R1: &str = "9a1c6a52-6a3f-4d1e-9a0b-1c2d3e4f5a71";
const R2: &str = "9a1c6a52-6a3f-4d1e-9a0b-1c2d3e4f5a72";
const R3: &str = "9a1c6a52-6a3f-4d1e-9a0b-1c2d3e4f5a73";
const SCOPE: &str = "recurring-appointments:mailbox=ann@contoso.com";

fn with(mut row: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        row[k] = v.clone();
    }
    row
}

/// A weekly master (Mondays and Thursdays from Monday 2 February 2026, 09:00–10:00 UTC, ten
/// occurrences) owned by `OWNER`, as Dataverse answers it.
fn master(id: &str, extra: Value) -> Value {
    with(
        json!({
            "@odata.etag": "W/\"6001\"",
            "activityid": id,
            "_ownerid_value": OWNER,
            "subject": "Stand-up",
            "description": "Daily notes",
            "location": "Room 2",
            "starttime": "2026-02-02T09:00:00Z",
            "endtime": "2026-02-02T10:00:00Z",
            "isalldayevent": false,
            "patternstartdate": "2026-02-02",
            "patternenddate": null,
            "patternendtype": 2,
            "occurrences": 10,
            "recurrencepatterntype": 1,
            "interval": 1,
            "daysofweekmask": 0x12,
            "dayofmonth": null,
            "monthofyear": null,
            "instance": null,
            "isweekdaypattern": false,
            "isnthmonthly": false,
            "isnthyearly": false,
            "firstdayofweek": 1,
            "deletedexceptionslist": null,
            "statecode": 3,
            "statuscode": 5,
            "modifiedon": "2026-02-01T00:00:00Z"
        }),
        extra,
    )
}

fn rule(extra: Value) -> Result<String, Bad> {
    Rule::read(&master(R1, extra), Clock(None)).map(|r| r.rrule())
}

fn bad_column(extra: Value) -> &'static str {
    match Rule::read(&master(R1, extra.clone()), Clock(None)) {
        Err(b) => b.column,
        Ok(r) => panic!("{extra} reads as {}", r.rrule()),
    }
}

// ---------------------------------------------------------------------------------------------
// dates

#[test]
fn civil_dates_round_trip() {
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(weekday(0), 4, "1 January 1970 was a Thursday");
    assert_eq!(weekday(days_from_civil(2026, 2, 2)), 1, "a Monday");
    for d in days_from_civil(1899, 12, 25)..days_from_civil(2101, 1, 7) {
        let (y, m, day) = civil(d);
        assert_eq!(days_from_civil(y, m, day), d);
    }
    assert_eq!(civil(days_from_civil(2028, 2, 29)), (2028, 2, 29));
    assert_eq!(
        instant("2026-02-02T09:00:00.1234567Z")
            .map(rfc3339)
            .as_deref(),
        Some("2026-02-02T09:00:00Z")
    );
    assert_eq!(instant("2026-02-02T09:00:00+01:00"), None, "UTC only");
    assert_eq!(instant("2026-02-30T09:00:00Z"), None);
}

// ---------------------------------------------------------------------------------------------
// pattern → RRULE

#[test]
fn daily_patterns() {
    assert_eq!(
        rule(
            json!({"recurrencepatterntype": 0, "interval": 3, "daysofweekmask": null,
                    "patternendtype": 1})
        ),
        Ok("FREQ=DAILY;INTERVAL=3".into())
    );
}

#[test]
fn every_weekday_is_a_weekly_rule() {
    for kind in [0, 1] {
        assert_eq!(
            rule(
                json!({"recurrencepatterntype": kind, "isweekdaypattern": true, "interval": 1,
                        "daysofweekmask": 62, "patternendtype": 1})
            ),
            Ok("FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,TU,WE,TH,FR".into()),
            "{kind}"
        );
    }
}

#[test]
fn weekly_patterns_name_their_days_and_week_start() {
    assert_eq!(
        rule(
            json!({"interval": 2, "daysofweekmask": 0x01 | 0x02 | 0x10 | 0x40,
                    "firstdayofweek": 0, "patternendtype": 1})
        ),
        Ok("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH,SA,SU;WKST=SU".into())
    );
    assert_eq!(
        rule(json!({"firstdayofweek": null})),
        Ok("FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,TH;COUNT=10".into()),
        "no WKST: RFC 5545's Monday"
    );
}

#[test]
fn monthly_patterns_by_day_and_by_position() {
    let monthly = json!({"recurrencepatterntype": 2, "daysofweekmask": null, "patternendtype": 1,
                         "firstdayofweek": null});
    assert_eq!(
        rule(with(monthly.clone(), json!({"dayofmonth": 15}))),
        Ok("FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=15".into())
    );
    assert_eq!(
        rule(with(
            monthly.clone(),
            json!({"isnthmonthly": true, "instance": 2, "daysofweekmask": 0x04, "interval": 2})
        )),
        Ok("FREQ=MONTHLY;INTERVAL=2;BYDAY=TU;BYSETPOS=2".into())
    );
    assert_eq!(
        rule(with(
            monthly,
            json!({"isnthmonthly": true, "instance": 5, "daysofweekmask": 62})
        )),
        Ok("FREQ=MONTHLY;INTERVAL=1;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1".into()),
        "the last weekday"
    );
}

#[test]
fn yearly_patterns_by_day_and_by_position() {
    let yearly = json!({"recurrencepatterntype": 3, "daysofweekmask": null, "patternendtype": 1,
                        "monthofyear": 11, "firstdayofweek": null});
    assert_eq!(
        rule(with(yearly.clone(), json!({"dayofmonth": 23}))),
        Ok("FREQ=YEARLY;INTERVAL=1;BYMONTH=11;BYMONTHDAY=23".into())
    );
    assert_eq!(
        rule(with(
            yearly,
            json!({"isnthyearly": true, "instance": 4, "daysofweekmask": 0x10})
        )),
        Ok("FREQ=YEARLY;INTERVAL=1;BYMONTH=11;BYDAY=TH;BYSETPOS=4".into())
    );
}

#[test]
fn ranges_end_by_count_date_or_never() {
    assert_eq!(
        rule(json!({})),
        Ok("FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,TH;WKST=MO;COUNT=10".into())
    );
    assert_eq!(
        rule(json!({"patternendtype": 3, "patternenddate": "2026-06-30", "occurrences": null})),
        Ok("FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,TH;WKST=MO;UNTIL=20260630T235959Z".into())
    );
    assert_eq!(
        rule(json!({"patternendtype": 3, "patternenddate": "2026-06-29T22:00:00Z"})),
        Ok("FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,TH;WKST=MO;UNTIL=20260630T215959Z".into()),
        "a UserLocal date: the user's midnight, to the end of that day"
    );
    assert_eq!(
        rule(json!({"patternendtype": 1})),
        Ok("FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,TH;WKST=MO".into())
    );
}

#[test]
fn patterns_that_do_not_read_name_their_column() {
    for (extra, column) in [
        (json!({"recurrencepatterntype": 7}), "recurrencepatterntype"),
        (
            json!({"recurrencepatterntype": null}),
            "recurrencepatterntype",
        ),
        (
            json!({"recurrencepatterntype": "1"}),
            "recurrencepatterntype",
        ),
        (json!({"interval": 0}), "interval"),
        (json!({"interval": null}), "interval"),
        (json!({"daysofweekmask": 0}), "daysofweekmask"),
        (json!({"daysofweekmask": null}), "daysofweekmask"),
        (json!({"daysofweekmask": 128}), "daysofweekmask"),
        (json!({"firstdayofweek": 7}), "firstdayofweek"),
        (json!({"isweekdaypattern": "yes"}), "isweekdaypattern"),
        (
            json!({"recurrencepatterntype": 2, "dayofmonth": null}),
            "dayofmonth",
        ),
        (
            json!({"recurrencepatterntype": 2, "dayofmonth": 32}),
            "dayofmonth",
        ),
        (
            json!({"recurrencepatterntype": 2, "isnthmonthly": true, "instance": 6}),
            "instance",
        ),
        (
            json!({"recurrencepatterntype": 2, "isnthmonthly": true, "instance": 1,
                   "daysofweekmask": null}),
            "daysofweekmask",
        ),
        (
            json!({"recurrencepatterntype": 3, "monthofyear": 0, "dayofmonth": 1}),
            "monthofyear",
        ),
        (
            json!({"recurrencepatterntype": 3, "monthofyear": 2, "dayofmonth": 30}),
            "dayofmonth",
        ),
        (json!({"patternendtype": 4}), "patternendtype"),
        (json!({"patternendtype": null}), "patternendtype"),
        (json!({"occurrences": null}), "occurrences"),
        (json!({"occurrences": 0}), "occurrences"),
        (
            json!({"patternendtype": 3, "patternenddate": null}),
            "patternenddate",
        ),
        (
            json!({"patternendtype": 3, "patternenddate": "30/06/2026"}),
            "patternenddate",
        ),
    ] {
        assert_eq!(bad_column(extra.clone()), column, "{extra}");
    }
}

// ---------------------------------------------------------------------------------------------
// the series: first occurrence, exdates

fn first(extra: Value) -> (String, String) {
    let s = series(&master(R1, extra), None).unwrap();
    (rfc3339(s.start), rfc3339(s.end))
}

#[test]
fn the_first_occurrence_is_the_first_day_the_pattern_selects() {
    assert_eq!(
        first(json!({})),
        ("2026-02-02T09:00:00Z".into(), "2026-02-02T10:00:00Z".into()),
        "Monday 2 February is a Monday of the pattern"
    );
    assert_eq!(
        first(json!({"daysofweekmask": 0x10})).0,
        "2026-02-05T09:00:00Z",
        "Thursdays only: Thursday 5 February"
    );
    assert_eq!(
        first(json!({"patternstartdate": "2026-02-01T23:00:00Z",
                     "starttime": "2026-02-02T08:00:00Z", "endtime": "2026-02-02T08:30:00Z"})),
        ("2026-02-02T08:00:00Z".into(), "2026-02-02T08:30:00Z".into()),
        "a UserLocal range start (the user's midnight in UTC+1)"
    );
    assert_eq!(
        first(json!({"patternstartdate": null})).0,
        "2026-02-02T09:00:00Z",
        "no range start: from the start time"
    );
    assert_eq!(
        first(
            json!({"recurrencepatterntype": 2, "isnthmonthly": true, "instance": 5,
                     "daysofweekmask": 0x20})
        )
        .0,
        "2026-02-27T09:00:00Z",
        "the last Friday of February 2026"
    );
    assert_eq!(
        first(
            json!({"recurrencepatterntype": 2, "isnthmonthly": true, "instance": 2,
                     "daysofweekmask": 0x04, "patternstartdate": "2026-02-11"})
        )
        .0,
        "2026-03-10T09:00:00Z",
        "the second Tuesday after 10 February"
    );
    assert_eq!(
        first(json!({"recurrencepatterntype": 2, "dayofmonth": 31,
                     "patternstartdate": "2026-02-02"}))
        .0,
        "2026-03-31T09:00:00Z",
        "February has no 31st"
    );
    assert_eq!(
        first(
            json!({"recurrencepatterntype": 3, "monthofyear": 2, "dayofmonth": 29,
                     "patternstartdate": "2026-03-01"})
        )
        .0,
        "2028-02-29T09:00:00Z"
    );
    assert_eq!(
        first(json!({"recurrencepatterntype": 0, "isweekdaypattern": true,
                     "patternstartdate": "2026-02-07"}))
        .0,
        "2026-02-09T09:00:00Z",
        "Saturday 7 February: the next weekday is Monday"
    );
}

#[test]
fn series_that_do_not_read_name_their_column() {
    for (extra, column) in [
        (json!({"starttime": null}), "starttime"),
        (json!({"endtime": "soon"}), "endtime"),
        (json!({"endtime": "2026-02-02T08:00:00Z"}), "endtime"),
        (json!({"patternstartdate": "tomorrow"}), "patternstartdate"),
        (
            json!({"patternendtype": 3, "patternenddate": "2026-02-01"}),
            "patternenddate",
        ),
        (
            json!({"deletedexceptionslist": "2026-02-05;next week"}),
            "deletedexceptionslist",
        ),
    ] {
        assert_eq!(
            series(&master(R1, extra.clone()), None).unwrap_err().column,
            column,
            "{extra}"
        );
    }
}

#[test]
fn deleted_occurrences_are_exdates_at_the_occurrence_start() {
    let nine = 9 * 3600;
    let list = "2026-02-12; 2026-02-19T09:00:00Z,2026-02-25T23:00:00Z\n2026-02-12";
    let got: Vec<String> = exdates(Some(list), nine, Clock(None))
        .unwrap()
        .into_iter()
        .map(rfc3339)
        .collect();
    assert_eq!(
        got,
        [
            "2026-02-12T09:00:00Z",
            "2026-02-19T09:00:00Z",
            "2026-02-26T09:00:00Z"
        ],
        "a date at the start's time; an instant: the occurrence in the day from it; once each"
    );
    assert_eq!(exdates(None, nine, Clock(None)), Ok(vec![]));
    assert_eq!(exdates(Some(" "), nine, Clock(None)), Ok(vec![]));
}

#[test]
fn master_rows_map_to_appointments_with_their_recurrence() {
    let item = recurring::item(
        &master(
            &R1.to_uppercase(),
            json!({"deletedexceptionslist": "2026-02-05"}),
        ),
        &Zones::default(),
    )
    .unwrap();
    assert_eq!(item.id, R1);
    assert_eq!(item.version.as_deref(), Some("W/\"6001\""));
    let Some(ItemBody::Appointment(a)) = &item.body else {
        panic!("an appointment: {item:?}");
    };
    assert_eq!(a.subject.as_deref(), Some("Stand-up"));
    assert_eq!(a.start.utc, "2026-02-02T09:00:00Z");
    assert_eq!(a.end.utc, "2026-02-02T10:00:00Z");
    assert_eq!(a.show_as, ShowAs::Busy);
    assert_eq!(a.location.as_deref(), Some("Room 2"));
    assert_eq!(a.body.as_deref(), Some("Daily notes"));
    let r = a.recurrence.as_ref().expect("a recurrence");
    assert_eq!(
        r.rrule,
        "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,TH;WKST=MO;COUNT=10"
    );
    assert_eq!(r.exdates, ["2026-02-05T09:00:00Z"]);
    let canceled = recurring::item(
        &master(R1, json!({"statecode": 2, "statuscode": 4})),
        &Zones::default(),
    )
    .unwrap();
    assert_eq!(canceled.removed, Some(Removal::Deleted));
    assert!(canceled.body.is_none());
    assert!(
        recurring::item(&master(R1, json!({"interval": 0})), &Zones::default()).is_none(),
        "a pattern that does not read leaves the row out"
    );
}

// ---------------------------------------------------------------------------------------------
// the series' zone

const BERLIN: i64 = 110;
const PACIFIC: i64 = 4;

/// Dataverse's definitions of two zones (`timezonecode` → `standardname`).
fn defined() -> Zones {
    Zones::of([
        (BERLIN, "W. Europe Standard Time".to_owned()),
        (PACIFIC, "Pacific Standard Time".to_owned()),
    ])
}

fn appointment_of(row: &Value, zones: &Zones) -> Appointment {
    match recurring::item(row, zones).and_then(|i| i.body) {
        Some(ItemBody::Appointment(a)) => a,
        other => panic!("an appointment: {other:?}"),
    }
}

#[test]
fn a_series_in_a_zone_keeps_its_wall_clock_time_across_daylight_saving() {
    // Tuesdays 09:00–10:00 in Berlin from 3 March 2026 (CET, UTC+1) until 28 April (CEST,
    // UTC+2); the date columns are the user's midnights, as Dataverse answers UserLocal ones.
    let row = master(
        R1,
        json!({"utcconversiontimezonecode": BERLIN,
               "starttime": "2026-03-03T08:00:00Z", "endtime": "2026-03-03T09:00:00Z",
               "patternstartdate": "2026-03-02T23:00:00Z", "daysofweekmask": 0x04,
               "patternendtype": 3, "patternenddate": "2026-04-27T22:00:00Z",
               "deletedexceptionslist": "2026-04-07;2026-04-13T22:00:00Z"}),
    );
    let a = appointment_of(&row, &defined());
    assert_eq!(a.start.utc, "2026-03-03T08:00:00Z");
    assert_eq!(a.end.utc, "2026-03-03T09:00:00Z");
    assert_eq!(
        a.start.time_zone.as_deref(),
        Some("W. Europe Standard Time"),
        "the zone travels with the series, by the id Dataverse names it"
    );
    assert_eq!(a.end.time_zone, a.start.time_zone);
    let r = a.recurrence.unwrap();
    assert_eq!(
        r.rrule, "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;WKST=MO;UNTIL=20260428T215959Z",
        "the series ends at the end of 28 April in Berlin"
    );
    assert_eq!(
        r.exdates,
        ["2026-04-07T07:00:00Z", "2026-04-14T07:00:00Z"],
        "deleted occurrences after the change to summer time are at 09:00 CEST"
    );
}

#[test]
fn an_all_day_series_stays_on_its_days_across_daylight_saving() {
    // Every Tuesday, all day in Berlin: from the user's midnight to the next.
    let row = master(
        R1,
        json!({"utcconversiontimezonecode": BERLIN, "isalldayevent": true,
               "starttime": "2026-03-02T23:00:00Z", "endtime": "2026-03-03T23:00:00Z",
               "patternstartdate": "2026-03-02T23:00:00Z", "daysofweekmask": 0x04,
               "deletedexceptionslist": "2026-04-07"}),
    );
    let a = appointment_of(&row, &defined());
    assert!(a.all_day);
    assert_eq!(
        (a.start.utc.as_str(), a.end.utc.as_str()),
        ("2026-03-02T23:00:00Z", "2026-03-03T23:00:00Z"),
        "Tuesday 3 March, midnight to midnight in Berlin"
    );
    assert_eq!(
        a.recurrence.unwrap().exdates,
        ["2026-04-06T22:00:00Z"],
        "Tuesday 7 April starts at midnight CEST"
    );
    let utc = appointment_of(
        &with(row, json!({"utcconversiontimezonecode": null})),
        &defined(),
    );
    assert_eq!(
        utc.start.utc, "2026-03-03T23:00:00Z",
        "read in UTC, 23:00 on UTC's Tuesdays: Wednesdays in Berlin"
    );
}

#[test]
fn a_series_near_midnight_reads_its_days_on_its_own_calendar() {
    // Mondays 17:00 in Los Angeles: Tuesdays 01:00 in UTC.
    let row = master(
        R1,
        json!({"utcconversiontimezonecode": PACIFIC,
               "starttime": "2026-02-03T01:00:00Z", "endtime": "2026-02-03T02:00:00Z",
               "patternstartdate": "2026-02-02T08:00:00Z", "daysofweekmask": 0x02}),
    );
    let a = appointment_of(&row, &defined());
    assert_eq!(
        a.start.utc, "2026-02-03T01:00:00Z",
        "Monday 2 February 17:00 PST is the first Monday"
    );
    assert_eq!(a.start.time_zone.as_deref(), Some("Pacific Standard Time"));
    let without = appointment_of(
        &with(row, json!({"utcconversiontimezonecode": null})),
        &defined(),
    );
    assert_eq!(
        (without.start.utc.as_str(), without.start.time_zone),
        ("2026-02-09T01:00:00Z", None),
        "without a zone the days are UTC's"
    );
}

#[test]
fn wall_clock_times_a_zone_skips_or_repeats_land_as_exchange_places_them() {
    let berlin = Clock(Some(chrono_tz::Tz::Europe__Berlin));
    let day = |y, m, d| days_from_civil(y, m, d);
    let at = |s: &str| instant(s).unwrap();
    assert_eq!(
        berlin.instant(day(2026, 3, 29), 2 * 3600 + 1800),
        at("2026-03-29T01:30:00Z"),
        "02:30 does not exist on 29 March: 03:30 CEST"
    );
    assert_eq!(
        berlin.instant(day(2026, 10, 25), 2 * 3600 + 1800),
        at("2026-10-25T00:30:00Z"),
        "02:30 happens twice on 25 October: the first (CEST)"
    );
    assert_eq!(
        berlin.split(at("2026-10-24T22:00:00Z")),
        (day(2026, 10, 25), 0)
    );
    assert_eq!(
        Clock(None).split(at("2026-10-24T22:00:00Z")),
        (day(2026, 10, 24), 22 * 3600)
    );
}

#[test]
fn a_zone_that_does_not_read_leaves_the_series_out_naming_the_column() {
    let zones = Zones::of([(999, "Mars Standard Time".to_owned())]);
    for (code, why) in [
        (json!(12345), "does not define"),
        (json!(999), "CLDR"),
        (json!("110"), "not a whole number"),
    ] {
        let row = master(R1, json!({"utcconversiontimezonecode": code}));
        let err = zones.zone_of(&row).unwrap_err();
        assert_eq!(err.column, "utcconversiontimezonecode");
        assert!(err.why.contains(why), "{code}: {}", err.why);
        assert!(recurring::item(&row, &zones).is_none(), "{code}");
    }
    assert_eq!(
        zones.zone_of(&master(R1, json!({}))),
        Ok(None),
        "no code: UTC"
    );
}

// ---------------------------------------------------------------------------------------------
// scope

#[test]
fn the_recurring_scope_parses_and_prints() {
    for s in [
        SCOPE,
        "Recurring_Appointments: mailbox=Ann@Contoso.com",
        "recurringappointments:mailbox=ann@contoso.com",
    ] {
        let parsed = ActScope::parse(s).unwrap();
        assert_eq!(parsed.kind, Kind::RecurringAppointments, "{s}");
        assert_eq!(parsed.to_string(), SCOPE);
    }
    assert_eq!(
        Kind::named_by("recurringappointmentmasters:mailbox=x"),
        None
    );
    assert_eq!(
        Kind::named_by("appointments:mailbox=x"),
        Some(Kind::Appointments)
    );
    let k = Kind::RecurringAppointments;
    assert_eq!(
        (k.set(), k.key(), k.item_kind()),
        (
            "recurringappointmentmasters",
            "activityid",
            ItemKind::Appointment
        )
    );
    let e = ActScope::parse("recurring-appointments:mailbox=ann").unwrap_err();
    assert_eq!(invalid_fields(&e), ["scope"]);
    assert!(e
        .describe()
        .contains("recurring-appointments:mailbox=<address>"));
    let e = ActScope::parse("series:mailbox=ann@contoso.com").unwrap_err();
    assert!(e
        .describe()
        .contains("recurring-appointments:mailbox=<address>"));
    let d = exports::describe::<Dynamics>();
    assert_eq!(
        d.reads
            .iter()
            .filter(|k| **k == ItemKind::Appointment)
            .count(),
        1,
        "appointments are read once in the description"
    );
}

// ---------------------------------------------------------------------------------------------
// pull, lookup, push over a recorded exchange

/// The decoded value of the query parameter `name` of `url`.
fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == name).then(|| percent_decode_str(v).decode_utf8().unwrap().into_owned())
    })
}

/// Dataverse's `recurringappointmentmasters` for the test: the rows whose owner the `$filter`
/// names (`_ownerid_value eq <id>`), changed at or after its `modifiedon ge <at>`, oldest first.
type Table = Rc<RefCell<Vec<Value>>>;

fn dataverse(
    log: &Log,
    table: &Table,
) -> impl FnMut(&WitRequest) -> Result<WitResponse, PluginError> {
    let table = table.clone();
    recorder(log, move |r| {
        if r.url.contains("/systemusers?") {
            return Ok(response(
                200,
                &json!({"value": [{"systemuserid": OWNER}]}).to_string(),
            ));
        }
        if r.url.starts_with(&format!("{API}/timezonedefinitions?")) {
            let filter = param(&r.url, "$filter").unwrap_or_default();
            let rows: Vec<Value> = [
                (BERLIN, "W. Europe Standard Time"),
                (PACIFIC, "Pacific Standard Time"),
            ]
            .into_iter()
            .filter(|(code, _)| {
                filter
                    .split(" or ")
                    .any(|c| c == format!("timezonecode eq {code}"))
            })
            .map(|(code, name)| json!({"timezonecode": code, "standardname": name}))
            .collect();
            return Ok(response(200, &json!({ "value": rows }).to_string()));
        }
        assert!(
            r.url
                .starts_with(&format!("{API}/recurringappointmentmasters")),
            "{}",
            r.url
        );
        let filter = param(&r.url, "$filter").unwrap_or_default();
        let since = filter
            .split(" and ")
            .find_map(|c| c.strip_prefix("modifiedon ge "))
            .map(str::to_owned);
        let mut rows: Vec<Value> = table
            .borrow()
            .iter()
            .filter(|row| {
                filter.contains(&format!(
                    "_ownerid_value eq {}",
                    row["_ownerid_value"].as_str().unwrap()
                ))
            })
            .filter(|row| {
                since
                    .as_deref()
                    .is_none_or(|at| row["modifiedon"].as_str().unwrap() >= at)
            })
            .cloned()
            .collect();
        rows.sort_by(|a, b| a["modifiedon"].as_str().cmp(&b["modifiedon"].as_str()));
        Ok(response(200, &json!({ "value": rows }).to_string()))
    })
}

fn pull(log: &Log, table: &Table, cursor: Option<&str>) -> Page {
    with_http(dataverse(log, table), || {
        exports::pull::<Dynamics>(
            CFG,
            PullRequest {
                scope: SCOPE.into(),
                cursor: cursor.map(str::to_owned),
                max_items: 50,
            },
        )
    })
    .unwrap()
}

fn ids(page: &Page) -> Vec<&str> {
    page.items.iter().map(|i| i.id.as_str()).collect()
}

#[test]
fn pulls_read_the_owner_s_series_then_their_changes() {
    let table: Table = Rc::new(RefCell::new(vec![
        master(R1, json!({})),
        master(R2, json!({"_ownerid_value": OTHER, "subject": "Not Ann's"})),
        master(
            R3,
            json!({"modifiedon": "2026-02-01T00:00:05Z", "recurrencepatterntype": 3,
                   "monthofyear": 11, "dayofmonth": 23, "daysofweekmask": null,
                   "patternendtype": 1, "patternstartdate": "2026-01-01"}),
        ),
    ]));
    let log = Log::default();
    let page = pull(&log, &table, None);
    {
        let log = log.borrow();
        assert_eq!(log[0].url, owner::lookup_url(API, MBX));
        assert_eq!(
            log[1].url,
            first_page_url(API, Kind::RecurringAppointments, OWNER, None)
        );
        assert_eq!(
            param(&log[1].url, "$select").as_deref(),
            Some(RECURRING_SELECT)
        );
        assert_eq!(
            param(&log[1].url, "$filter"),
            Some(format!("_ownerid_value eq {OWNER}")),
            "masters only live in their own table: no instancetypecode"
        );
        assert_eq!(
            param(&log[1].url, "$orderby").as_deref(),
            Some("modifiedon asc")
        );
    }
    assert!(page.full && !page.more);
    assert_eq!(ids(&page), [R1, R3], "another user's series is not read");
    let Some(ItemBody::Appointment(a)) = &page.items[0].body else {
        panic!("an appointment");
    };
    assert_eq!(
        (a.start.utc.as_str(), a.end.utc.as_str()),
        ("2026-02-02T09:00:00Z", "2026-02-02T10:00:00Z")
    );
    assert_eq!(
        a.recurrence.as_ref().unwrap().rrule,
        "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,TH;WKST=MO;COUNT=10"
    );
    let Some(ItemBody::Appointment(yearly)) = &page.items[1].body else {
        panic!("an appointment");
    };
    assert_eq!(yearly.start.utc, "2026-11-23T09:00:00Z");
    assert_eq!(
        yearly.recurrence.as_ref().unwrap().rrule,
        "FREQ=YEARLY;INTERVAL=1;BYMONTH=11;BYMONTHDAY=23"
    );
    let cursor = page.cursor.unwrap();
    let parsed: Value = serde_json::from_str(&cursor).unwrap();
    assert_eq!(parsed["kind"], "recurring-appointments");
    assert_eq!(parsed["since"]["at"], "2026-02-01T00:00:05Z");

    // Nothing changed: nothing comes again.
    let log = Log::default();
    let page = pull(&log, &table, Some(&cursor));
    assert_eq!(
        log.borrow()[0].url,
        first_page_url(
            API,
            Kind::RecurringAppointments,
            OWNER,
            Some("2026-02-01T00:00:05Z")
        ),
        "the owner comes from the cache"
    );
    assert!(!page.full);
    assert!(ids(&page).is_empty(), "{:?}", ids(&page));
    let cursor = page.cursor.unwrap();

    // R1 moves to 10:00 and is canceled later; R3 is unchanged.
    table.borrow_mut()[0] = master(
        R1,
        json!({"@odata.etag": "W/\"6002\"", "modifiedon": "2026-02-03T00:00:00Z",
               "starttime": "2026-02-02T10:00:00Z", "endtime": "2026-02-02T11:00:00Z"}),
    );
    let page = pull(&Log::default(), &table, Some(&cursor));
    assert_eq!(
        ids(&page),
        [R1],
        "the modified series comes again, the unchanged one not"
    );
    let Some(ItemBody::Appointment(a)) = &page.items[0].body else {
        panic!("an appointment");
    };
    assert_eq!(a.start.utc, "2026-02-02T10:00:00Z");
    let cursor = page.cursor.unwrap();
    table.borrow_mut()[0] = master(
        R1,
        json!({"@odata.etag": "W/\"6003\"", "modifiedon": "2026-02-04T00:00:00Z",
               "statecode": 2, "statuscode": 4}),
    );
    let page = pull(&Log::default(), &table, Some(&cursor));
    assert_eq!(ids(&page), [R1]);
    assert_eq!(page.items[0].removed, Some(Removal::Deleted), "canceled");
    let c = Cursor::decode(
        page.cursor.as_deref().unwrap(),
        API,
        &ActScope::parse(SCOPE).unwrap(),
    )
    .unwrap();
    assert_eq!(c.kind, Kind::RecurringAppointments);
}

#[test]
fn a_page_of_series_reads_the_definitions_of_its_zones_once() {
    let table: Table = Rc::new(RefCell::new(vec![
        master(R1, json!({"utcconversiontimezonecode": BERLIN})),
        master(R2, json!({"utcconversiontimezonecode": PACIFIC})),
        master(R3, json!({"utcconversiontimezonecode": BERLIN})),
    ]));
    let log = Log::default();
    let page = pull(&log, &table, None);
    let zones: Vec<Option<String>> = page
        .items
        .iter()
        .map(|i| match &i.body {
            Some(ItemBody::Appointment(a)) => a.start.time_zone.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        zones,
        [
            Some("W. Europe Standard Time".into()),
            Some("Pacific Standard Time".into()),
            Some("W. Europe Standard Time".into())
        ]
    );
    let log = log.borrow();
    let definitions: Vec<&str> = log
        .iter()
        .map(|r| r.url.as_str())
        .filter(|u| u.contains("/timezonedefinitions?"))
        .collect();
    assert_eq!(definitions.len(), 1, "one query per page: {definitions:?}");
    assert_eq!(
        param(definitions[0], "$filter").as_deref(),
        Some("timezonecode eq 4 or timezonecode eq 110")
    );
    assert_eq!(
        param(definitions[0], "$select").as_deref(),
        Some("timezonecode,standardname")
    );

    // Nothing changed: the pass reads its edge again (R3, the newest), and asks nothing more.
    let cursor = page.cursor.clone().unwrap();
    drop(log);
    let log = Log::default();
    let again = pull(&log, &table, Some(&cursor));
    assert!(ids(&again).is_empty());
    assert!(
        !log.borrow()
            .iter()
            .any(|r| r.url.contains("timezonedefinitions")),
        "no zones are read for rows that did not change"
    );

    // A page naming no zone asks nothing more.
    let log = Log::default();
    let table: Table = Rc::new(RefCell::new(vec![master(R1, json!({}))]));
    pull(&log, &table, None);
    assert!(!log
        .borrow()
        .iter()
        .any(|r| r.url.contains("timezonedefinitions")));
}

#[test]
fn lookups_get_series_by_id() {
    let log = Log::default();
    let items = with_http(
        recorder(&log, |r| {
            Ok(if r.url.contains(R1) {
                response(200, &master(R1, json!({})).to_string())
            } else {
                response(
                    404,
                    r#"{"error":{"code":"0x80040217","message":"recurringappointmentmaster With Id = x Does Not Exist"}}"#,
                )
            })
        }),
        || exports::lookup::<Dynamics>(CFG, SCOPE, vec![R1.into(), format!("id:{R2}")]),
    )
    .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].id, R1);
    let log = log.borrow();
    assert_eq!(log[0].url, row_url(API, Kind::RecurringAppointments, R1));
    assert!(log[0]
        .url
        .starts_with(&format!("{API}/recurringappointmentmasters({R1})?$select=")));
    assert_eq!(log[1].url, row_url(API, Kind::RecurringAppointments, R2));
}

fn appt() -> Appointment {
    Appointment {
        subject: Some("Stand-up (moved)".into()),
        start: ZonedTime {
            utc: "2026-02-02T09:30:00Z".into(),
            time_zone: Some("Etc/UTC".into()),
        },
        end: ZonedTime {
            utc: "2026-02-02T10:30:00Z".into(),
            time_zone: None,
        },
        all_day: false,
        show_as: ShowAs::Busy,
        sensitivity: Sensitivity::Normal,
        recurrence: Some(Recurrence {
            rrule: "FREQ=DAILY;INTERVAL=1".into(),
            exdates: Vec::new(),
        }),
        organizer: None,
        attendees: Vec::new(),
        location: None,
        body: Some("Notes".into()),
        categories: Vec::new(),
    }
}

fn op(op_id: &str, action: WriteAction, target: Option<&str>, fields: &[&str]) -> WriteOp {
    WriteOp {
        op_id: op_id.into(),
        action,
        target_id: target.map(str::to_owned),
        body: Some(ItemBody::Appointment(appt())),
        fields: fields.iter().map(|f| f.to_string()).collect(),
    }
}

#[test]
fn series_are_updated_never_created_or_deleted_from_here() {
    let log = Log::default();
    let results = with_http(
        recorder(&log, |_| {
            Ok(with_header(response(204, ""), "ETag", "W/\"6009\""))
        }),
        || {
            exports::push::<Dynamics>(
                CFG,
                SCOPE,
                vec![
                    op(
                        "u",
                        WriteAction::Update,
                        Some(R1),
                        &["subject", "start", "end"],
                    ),
                    op("c", WriteAction::Create, None, &[]),
                    op("d", WriteAction::Delete, Some(R1), &[]),
                    op(
                        "r",
                        WriteAction::Update,
                        Some(R1),
                        &["subject", "recurrence"],
                    ),
                    op("x", WriteAction::Update, Some(R1), &["attendees"]),
                    op("z", WriteAction::Deactivate, Some(R1), &[]),
                    op(
                        "all",
                        WriteAction::Update,
                        Some(R1),
                        &["all_day", "location", "body"],
                    ),
                ],
            )
        },
    )
    .unwrap();
    let ok = results[0].outcome.as_ref().unwrap();
    assert_eq!(
        (ok.target_id.as_str(), ok.version.as_deref()),
        (R1, Some("W/\"6009\""))
    );
    for (i, what) in [(1, "create"), (2, "delete"), (5, "deactivate")] {
        let e = results[i].outcome.as_ref().unwrap_err();
        assert_eq!(e.class(), "unsupported", "{what}");
        assert!(
            e.describe().contains(&format!(
                "{what} is not supported on recurring appointments"
            )),
            "{e:?}"
        );
    }
    let e = results[3].outcome.as_ref().unwrap_err();
    assert_eq!(e.class(), "unsupported");
    assert!(e.describe().contains("flows one way"), "{e:?}");
    assert_eq!(
        invalid_fields(results[4].outcome.as_ref().unwrap_err()),
        ["attendees"]
    );
    assert!(results[6].outcome.is_ok());

    let log = log.borrow();
    assert_eq!(log.len(), 2, "refused writes send nothing; no owner lookup");
    let patch = &log[0];
    assert_eq!(patch.method, WitMethod::Patch);
    assert_eq!(
        patch.url,
        format!("{API}/recurringappointmentmasters({R1})?$select=activityid")
    );
    assert_eq!(patch.header("If-Match"), Some("*"));
    assert_eq!(
        patch.body,
        Some(
            json!({"subject": "Stand-up (moved)", "starttime": "2026-02-02T09:30:00Z",
                    "endtime": "2026-02-02T10:30:00Z"})
        )
    );
    assert_eq!(
        log[1].body,
        Some(json!({"isalldayevent": false, "location": null, "description": "Notes"}))
    );
    // The body alone, as the write module builds it.
    let b = update_body(&appt(), &["Start".into()]).unwrap();
    assert_eq!(
        Value::Object(b),
        json!({"starttime": "2026-02-02T09:30:00Z"})
    );
    let bad_time = Appointment {
        start: ZonedTime {
            utc: "9:30".into(),
            time_zone: None,
        },
        ..appt()
    };
    assert_eq!(
        invalid_fields(&update_body(&bad_time, &["start".into()]).unwrap_err()),
        ["start"]
    );
}
