//! The recurrence / time-zone corpus: each rule of the calendar window and of the series
//! mapping has a test that fails when the rule is broken. The host clock is 2026-01-01T00:00Z;
//! scopes read 30 days back and 30 days ahead unless they say otherwise.

use super::*;
use std::collections::HashMap;
use syncbridge_sdk::exports;
use syncbridge_sdk::testing::{set_now_ms, with_http};
use syncbridge_sdk::types::mailbox::*;
use syncbridge_sdk::types::{Removal, Sensitivity, ShowAs};

const NOW_MS: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn cal(id: &str, kind: &str, start: &str, end: &str, extra: &str) -> String {
    format!(
        r#"<t:CalendarItem><t:ItemId Id="{id}" ChangeKey="ck-{id}"/><t:Subject>{id}</t:Subject><t:Sensitivity>Normal</t:Sensitivity><t:ReminderIsSet>false</t:ReminderIsSet><t:ReminderMinutesBeforeStart>15</t:ReminderMinutesBeforeStart><t:Start>{start}</t:Start><t:End>{end}</t:End><t:IsAllDayEvent>false</t:IsAllDayEvent><t:LegacyFreeBusyStatus>Busy</t:LegacyFreeBusyStatus><t:CalendarItemType>{kind}</t:CalendarItemType>{extra}</t:CalendarItem>"#
    )
}

const WEEKLY_BERLIN: &str = r#"<t:Recurrence><t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Tuesday</t:DaysOfWeek><t:FirstDayOfWeek>Monday</t:FirstDayOfWeek></t:WeeklyRecurrence><t:NoEndRecurrence><t:StartDate>2025-06-03</t:StartDate></t:NoEndRecurrence></t:Recurrence>"#;
const BERLIN: &str = r#"<t:StartTimeZone Id="W. Europe Standard Time"/><t:EndTimeZone Id="W. Europe Standard Time"/>"#;

/// Pulls a calendar page: SyncFolderItems lists `items` (created, or updated when `cursor`
/// is given); GetItem answers from `items` and `occurrences` by id.
fn pull(
    items: &[(&str, String)],
    occurrences: &[(&str, String)],
    cursor: Option<&str>,
    scope: &str,
) -> (MailboxPage, Vec<(String, String)>) {
    set_now_ms(NOW_MS);
    let by_id: HashMap<String, String> = items
        .iter()
        .chain(occurrences)
        .map(|(i, x)| (i.to_string(), x.clone()))
        .collect();
    let tag = if cursor.is_some() { "Update" } else { "Create" };
    let changes: String = items.iter().map(|(id, _)| format!(r#"<t:{tag}><t:CalendarItem><t:ItemId Id="{id}" ChangeKey="x"/></t:CalendarItem></t:{tag}>"#)).collect();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let page = with_http(
        stub(seen.clone(), move |op, body| match op {
            "SyncFolderItems" => (200, sync_response("S", true, &changes)),
            "GetItem" => {
                let doc = xml::parse(body).unwrap();
                let ids: Vec<String> = doc
                    .find("ItemIds")
                    .unwrap()
                    .children
                    .iter()
                    .map(|i| i.attr("Id").unwrap().to_owned())
                    .collect();
                let xs: Vec<&str> = ids
                    .iter()
                    .map(|i| {
                        by_id
                            .get(i)
                            .unwrap_or_else(|| panic!("GetItem of unknown {i}"))
                            .as_str()
                    })
                    .collect();
                (200, get_item_response(&xs))
            }
            other => panic!("unexpected {other}"),
        }),
        || {
            exports::pull_mailbox::<Ews>(
                CFG,
                PullRequest {
                    scope: scope.into(),
                    cursor: cursor.map(str::to_owned),
                    max_items: 100,
                },
            )
        },
    )
    .unwrap();
    let calls = seen.borrow().clone();
    (page, calls)
}

const SCOPE: &str = "calendar:mailbox=alice@contoso.com,past=30,future=30";

fn event(page: &MailboxPage, id: &str) -> Event {
    match page
        .items
        .iter()
        .find(|i| i.id == id)
        .and_then(|i| i.body.clone())
    {
        Some(MailboxBody::Event(e)) => e,
        other => panic!(
            "{id}: {other:?} in {:?}",
            page.items.iter().map(|i| &i.id).collect::<Vec<_>>()
        ),
    }
}

fn ids(page: &MailboxPage) -> Vec<&str> {
    page.items.iter().map(|i| i.id.as_str()).collect()
}

#[test]
fn a_series_that_started_before_the_window_is_kept_with_its_zone() {
    let master = cal(
        "m1",
        "RecurringMaster",
        "2025-06-03T07:00:00Z",
        "2025-06-03T08:00:00Z",
        &format!("{WEEKLY_BERLIN}{BERLIN}"),
    );
    let (page, _) = pull(&[("m1", master)], &[], None, SCOPE);
    let ev = event(&page, "m1");
    assert_eq!(ev.kind, EventKind::SeriesMaster);
    let s = ev.series.expect("a series");
    assert_eq!(s.rrule, "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;WKST=MO");
    assert_eq!(
        (s.zone.iana.as_str(), s.zone.windows.as_deref()),
        ("Europe/Berlin", Some("W. Europe Standard Time"))
    );
    assert_eq!(ev.start.zone.map(|z| z.iana), Some("Europe/Berlin".into()));
    // ReminderIsSet false: no reminder, whatever the minutes say.
    assert_eq!(ev.reminder_minutes, None);
}

#[test]
fn singles_outside_the_window_are_dropped_and_future_singles_kept() {
    let old = cal(
        "old",
        "Single",
        "2025-11-01T09:00:00Z",
        "2025-11-01T10:00:00Z",
        "",
    );
    let recent = cal(
        "recent",
        "Single",
        "2025-12-20T09:00:00Z",
        "2025-12-20T10:00:00Z",
        "",
    );
    let far = cal(
        "far",
        "Single",
        "2026-06-01T09:00:00Z",
        "2026-06-01T10:00:00Z",
        "",
    );
    let items = [("old", old), ("recent", recent), ("far", far)];
    let (page, _) = pull(&items, &[], None, SCOPE);
    assert_eq!(ids(&page), ["recent", "far"]);
    // In an incremental pass an item that left the window leaves the scope.
    let (page, _) = pull(&items, &[], Some("S0"), SCOPE);
    assert_eq!(page.items[0].id, "old");
    assert_eq!(page.items[0].removed, Some(Removal::OutOfScope));
    // A longer window keeps it.
    let (page, _) = pull(
        &items,
        &[],
        None,
        "calendar:mailbox=alice@contoso.com,past=90",
    );
    assert_eq!(ids(&page), ["old", "recent", "far"]);
}

#[test]
fn a_series_that_ended_before_the_window_or_starts_after_its_future_is_left_out() {
    let ended = cal("ended", "RecurringMaster", "2025-06-03T07:00:00Z", "2025-06-03T08:00:00Z", &format!("{WEEKLY_BERLIN}<t:LastOccurrence><t:ItemId Id=\"ended_OCC\"/><t:Start>2025-09-30T07:00:00Z</t:Start><t:End>2025-09-30T08:00:00Z</t:End><t:OriginalStart>2025-09-30T07:00:00Z</t:OriginalStart></t:LastOccurrence>{BERLIN}"));
    let later = cal(
        "later",
        "RecurringMaster",
        "2026-03-03T08:00:00Z",
        "2026-03-03T09:00:00Z",
        &format!("{WEEKLY_BERLIN}{BERLIN}"),
    );
    let (page, _) = pull(
        &[("ended", ended.clone()), ("later", later)],
        &[],
        None,
        SCOPE,
    );
    assert!(page.items.is_empty(), "{:?}", ids(&page));
    let (page, _) = pull(
        &[("ended", ended)],
        &[],
        None,
        "calendar:mailbox=alice@contoso.com,past=120",
    );
    assert_eq!(ids(&page), ["ended"]);
}

fn modified_master(moved_start: &str, moved_end: &str, last: &str) -> String {
    cal(
        "m2",
        "RecurringMaster",
        "2025-06-03T07:00:00Z",
        "2025-06-03T08:00:00Z",
        &format!(
            r#"{WEEKLY_BERLIN}{last}<t:ModifiedOccurrences><t:Occurrence><t:ItemId Id="m2_OCC20251216" ChangeKey="o"/><t:Start>{moved_start}</t:Start><t:End>{moved_end}</t:End><t:OriginalStart>2025-12-16T08:00:00Z</t:OriginalStart></t:Occurrence></t:ModifiedOccurrences><t:DeletedOccurrences><t:DeletedOccurrence><t:Start>2025-12-23T08:00:00Z</t:Start></t:DeletedOccurrence></t:DeletedOccurrences>{BERLIN}"#
        ),
    )
}

fn exception(start: &str, end: &str, extra: &str) -> String {
    cal("m2_OCC20251216", "Exception", start, end, &format!("<t:Location>Room 7</t:Location><t:OriginalStart>2025-12-16T08:00:00Z</t:OriginalStart>{extra}"))
        .replace("<t:Subject>m2_OCC20251216</t:Subject>", "<t:Subject>Moved review</t:Subject>")
        .replace("<t:LegacyFreeBusyStatus>Busy</t:LegacyFreeBusyStatus>", "<t:LegacyFreeBusyStatus>Tentative</t:LegacyFreeBusyStatus>")
}

#[test]
fn a_modified_occurrence_moved_outside_the_window_stays_in_its_master_once() {
    let master = modified_master("2026-06-02T08:00:00Z", "2026-06-02T09:00:00Z", "");
    let exc = exception("2026-06-02T08:00:00Z", "2026-06-02T09:00:00Z", BERLIN);
    // The sync also lists the exception on its own (as some servers do): never emitted twice.
    let (page, calls) = pull(
        &[("m2", master), ("m2_OCC20251216", exc.clone())],
        &[],
        None,
        SCOPE,
    );
    assert_eq!(ids(&page), ["m2"]);
    let s = event(&page, "m2").series.unwrap();
    assert_eq!(s.modified.len(), 1);
    let m = &s.modified[0];
    assert_eq!(
        (m.original_start.as_str(), m.start.utc.as_str()),
        ("2025-12-16T08:00:00Z", "2026-06-02T08:00:00Z")
    );
    // Its changed fields come from GetItem of the occurrence.
    assert_eq!(
        (m.subject.as_deref(), m.location.as_deref(), m.show_as),
        (Some("Moved review"), Some("Room 7"), ShowAs::Tentative)
    );
    assert_eq!(m.id.as_deref(), Some("m2_OCC20251216"));
    assert!(calls
        .iter()
        .filter(|(op, _)| op == "GetItem")
        .any(
            |(_, b)| b.contains(r#"<t:ItemId Id="m2_OCC20251216"/>"#) && !b.contains(r#"Id="m2""#)
        ));
    // A deleted occurrence is listed by its original start.
    assert_eq!(s.deleted, ["2025-12-23T08:00:00Z"]);
}

#[test]
fn an_occurrence_moved_into_the_window_keeps_an_otherwise_finished_series() {
    let last = r#"<t:LastOccurrence><t:ItemId Id="m2_OCC20251007"/><t:Start>2025-10-07T07:00:00Z</t:Start><t:End>2025-10-07T08:00:00Z</t:End><t:OriginalStart>2025-10-07T07:00:00Z</t:OriginalStart></t:LastOccurrence>"#;
    let master = modified_master("2025-12-30T08:00:00Z", "2025-12-30T09:00:00Z", last);
    let exc = exception("2025-12-30T08:00:00Z", "2025-12-30T09:00:00Z", BERLIN);
    let (page, _) = pull(
        &[("m2", master.clone())],
        &[("m2_OCC20251216", exc)],
        None,
        SCOPE,
    );
    assert_eq!(ids(&page), ["m2"]);
    // Without the moved occurrence the same series is over.
    let over = master
        .replace("2025-12-30T08:00:00Z", "2025-09-30T08:00:00Z")
        .replace("2025-12-30T09:00:00Z", "2025-09-30T09:00:00Z");
    let exc = exception("2025-09-30T08:00:00Z", "2025-09-30T09:00:00Z", BERLIN);
    let (page, _) = pull(&[("m2", over)], &[("m2_OCC20251216", exc)], None, SCOPE);
    assert!(page.items.is_empty());
}

#[test]
fn an_all_day_exception_keeps_its_own_zone() {
    // The series is in Berlin; the exception was made an all-day event in Tokyo:
    // midnight in Tokyo is 15:00Z the day before.
    let master = modified_master("2026-01-14T15:00:00Z", "2026-01-15T15:00:00Z", "");
    let tokyo =
        r#"<t:StartTimeZone Id="Tokyo Standard Time"/><t:EndTimeZone Id="Tokyo Standard Time"/>"#;
    let exc = exception("2026-01-14T15:00:00Z", "2026-01-15T15:00:00Z", tokyo)
        .replace("<t:IsAllDayEvent>false", "<t:IsAllDayEvent>true");
    let (page, _) = pull(&[("m2", master)], &[("m2_OCC20251216", exc)], None, SCOPE);
    let ev = event(&page, "m2");
    let s = ev.series.unwrap();
    assert_eq!(s.zone.iana, "Europe/Berlin");
    let m = &s.modified[0];
    assert_eq!(
        m.start.zone.as_ref().map(|z| z.iana.as_str()),
        Some("Asia/Tokyo")
    );
    assert_eq!(m.start.utc, "2026-01-14T15:00:00Z");
    assert_eq!(m.end.utc, "2026-01-15T15:00:00Z");
}

#[test]
fn private_and_free_items_keep_their_flags_both_ways() {
    let x = cal(
        "p",
        "Single",
        "2025-12-20T09:00:00Z",
        "2025-12-20T10:00:00Z",
        "",
    )
    .replace("<t:Sensitivity>Normal", "<t:Sensitivity>Private")
    .replace(
        "<t:LegacyFreeBusyStatus>Busy",
        "<t:LegacyFreeBusyStatus>Free",
    );
    let y = cal(
        "w",
        "Single",
        "2025-12-21T09:00:00Z",
        "2025-12-21T10:00:00Z",
        "",
    )
    .replace(
        "<t:LegacyFreeBusyStatus>Busy",
        "<t:LegacyFreeBusyStatus>WorkingElsewhere",
    );
    let (page, _) = pull(&[("p", x), ("w", y)], &[], None, SCOPE);
    let ev = event(&page, "p");
    assert_eq!(
        (ev.sensitivity, ev.show_as),
        (Sensitivity::Private, ShowAs::Free)
    );
    assert_eq!(event(&page, "w").show_as, ShowAs::Elsewhere);
    let upd = map::event::update_xml(&ev, &["sensitivity".into(), "show_as".into()]).unwrap();
    assert!(
        upd.contains("<t:Sensitivity>Private</t:Sensitivity>")
            && upd.contains("<t:LegacyFreeBusyStatus>Free</t:LegacyFreeBusyStatus>"),
        "{upd}"
    );
    assert_eq!(
        upd.matches("SetItemField>").count(),
        4,
        "exactly two fields set: {upd}"
    );
}

#[test]
fn occurrences_listed_on_their_own_are_never_emitted() {
    let occ = cal(
        "m1_OCC20251216",
        "Occurrence",
        "2025-12-16T08:00:00Z",
        "2025-12-16T09:00:00Z",
        "",
    );
    let exc = cal(
        "m1_OCC20251223",
        "Exception",
        "2025-12-23T10:00:00Z",
        "2025-12-23T11:00:00Z",
        "",
    );
    for cursor in [None, Some("S0")] {
        let (page, _) = pull(
            &[
                ("m1_OCC20251216", occ.clone()),
                ("m1_OCC20251223", exc.clone()),
            ],
            &[],
            cursor,
            SCOPE,
        );
        assert!(page.items.is_empty(), "{cursor:?}: {:?}", ids(&page));
    }
}

#[test]
fn until_follows_dst_in_the_series_zone() {
    let rec = |end: &str| {
        let x = format!(
            r#"<t:Recurrence xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><t:DailyRecurrence><t:Interval>1</t:Interval></t:DailyRecurrence><t:EndDateRecurrence><t:StartDate>2026-03-01</t:StartDate><t:EndDate>{end}</t:EndDate></t:EndDateRecurrence></t:Recurrence>"#
        );
        recurrence::to_rrule(&xml::parse(&x).unwrap(), chrono_tz::Europe::Berlin).unwrap()
    };
    // Before the change (CET, +01:00) and after it (CEST, +02:00).
    assert!(rec("2026-03-28").ends_with("UNTIL=20260328T225959Z"));
    assert!(rec("2026-03-29").ends_with("UNTIL=20260329T215959Z"));
}

fn series_event(start_utc: &str, rrule: &str) -> Event {
    let zone = Zone {
        iana: "Europe/Berlin".into(),
        windows: None,
    };
    Event {
        kind: EventKind::SeriesMaster,
        series_id: None,
        original_start: None,
        subject: Some("Standup".into()),
        start: EventTime {
            utc: start_utc.into(),
            zone: Some(zone.clone()),
        },
        end: EventTime {
            utc: start_utc.into(),
            zone: Some(zone.clone()),
        },
        all_day: false,
        show_as: ShowAs::Busy,
        sensitivity: Sensitivity::Normal,
        series: Some(Series {
            rrule: rrule.into(),
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
        anchor: Some("link-1".into()),
    }
}

#[test]
fn writing_a_series_uses_the_local_start_date_and_the_windows_zone() {
    // 23:30Z on 28 March is 00:30 on the 29th in Berlin (the DST change day).
    let xml = map::event::create_xml(&series_event(
        "2026-03-28T23:30:00Z",
        "FREQ=WEEKLY;INTERVAL=1;BYDAY=SU;UNTIL=20260628T215959Z",
    ))
    .unwrap();
    assert!(
        xml.contains("<t:StartDate>2026-03-29</t:StartDate>"),
        "{xml}"
    );
    assert!(xml.contains("<t:EndDate>2026-06-28</t:EndDate>"), "{xml}");
    assert_eq!(
        xml.matches(r#"<t:StartTimeZone Id="W. Europe Standard Time"/>"#)
            .count(),
        1,
        "{xml}"
    );
    assert!(xml.contains("<t:ReminderIsSet>true</t:ReminderIsSet><t:ReminderMinutesBeforeStart>10</t:ReminderMinutesBeforeStart>"), "{xml}");
    // Schema order: Start … Recurrence … StartTimeZone.
    let pos = |s: &str| xml.find(s).unwrap_or_else(|| panic!("{s}"));
    assert!(
        pos("<t:ExtendedProperty>") < pos("<t:Start>")
            && pos("<t:Start>") < pos("<t:Recurrence>")
            && pos("<t:Recurrence>") < pos("<t:StartTimeZone")
    );
    assert!(
        map::event::create_xml(&series_event("2026-03-28T23:30:00Z", "FREQ=SECONDLY")).is_err()
    );
}
