use super::*;

const NO_DETAIL: &str = r#"{"direction":"to-psa","import":"no-detail"}"#;
const NO_FREE_TIME: &str = r#"{"direction":"to-psa","import_free_time":false}"#;

fn assert_import(d: &AnyDecision, rule: &str) {
    assert_eq!(d.intent.action, IntentAction::Upsert, "{d:?}");
    assert_eq!(d.intent.rule, rule);
    assert!(d.intent.match_keys.is_empty());
    assert!(!d.intent.reason.is_empty());
    assert_default_policy(d);
}

#[test]
fn an_exchange_event_becomes_a_psa_appointment_with_all_detail() {
    let d = decide(item("AAMkEv1", MailboxBody::Event(event())), TO_PSA);
    assert_import(&d, "event-to-appointment");
    assert_eq!(d.intent.source_id, "AAMkEv1");
    let a = appointment_body(&d);
    assert_eq!(a.subject.as_deref(), Some("Dentist"));
    assert_eq!(a.start.utc, "2026-12-02T14:00:00Z");
    assert_eq!(a.start.time_zone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(a.end.utc, "2026-12-02T15:00:00Z");
    assert_eq!(a.end.time_zone.as_deref(), Some("Europe/Berlin"));
    assert!(!a.all_day);
    assert_eq!(a.show_as, ShowAs::Busy);
    assert_eq!(a.sensitivity, Sensitivity::Normal);
    let r = a.recurrence.as_ref().expect("recurrence");
    assert_eq!(r.rrule, "FREQ=MONTHLY;BYMONTHDAY=2");
    assert_eq!(r.exdates, ["2027-01-02T14:00:00Z"]);
    assert_eq!(a.organizer.as_deref(), Some("alice@contoso.example"));
    assert_eq!(a.attendees.len(), 1);
    let at = &a.attendees[0];
    assert_eq!(at.email, "bob@contoso.example");
    assert_eq!(at.name, None);
    assert_eq!(at.role, AttendeeRole::Optional);
    assert_eq!(at.response.as_deref(), Some("declined"));
    assert_eq!(a.location.as_deref(), Some("Main street 1"));
    assert_eq!(a.body.as_deref(), Some("Bring the card"));
    assert_eq!(a.categories, ["Private stuff"]);
    assert_eq!(
        route(&d, "windows_zone").as_deref(),
        Some("W. Europe Standard Time")
    );
    assert_eq!(route(&d, "reminder_minutes").as_deref(), Some("15"));
    assert_eq!(route(&d, "anchor"), None);
}

#[test]
fn an_html_body_is_imported_as_text() {
    let mut e = event();
    e.body = Some(RichText {
        content: "<html><body><p>Bring&nbsp;the <b>card</b></p><div>and &amp; the form&lt;1&gt;<br>please</div></body></html>".into(),
        body_type: BodyType::Html,
    });
    let d = decide(item("AAMkEv2", MailboxBody::Event(e)), TO_PSA);
    assert_eq!(
        appointment_body(&d).body.as_deref(),
        Some("Bring the card\nand & the form<1>\nplease")
    );
}

#[test]
fn psa_originated_events_are_skipped() {
    let mut e = event();
    e.anchor = Some("sb:4711".into());
    let d = decide(item("AAMkEv3", MailboxBody::Event(e.clone())), TO_PSA);
    assert_skip(&d, "skip-psa-originated");
    assert_eq!(
        d.intent.reason,
        "PSA-originated: its changes flow back through the PSA → Exchange profile, date and time only"
    );
    // Whatever else the options say.
    assert_skip(
        &decide(item("AAMkEv3", MailboxBody::Event(e.clone())), NO_DETAIL),
        "skip-psa-originated",
    );
    // Another program's anchor is no PSA origin.
    e.anchor = Some("crm:1".into());
    let d = decide(item("AAMkEv3", MailboxBody::Event(e)), TO_PSA);
    assert_import(&d, "event-to-appointment");
    assert_eq!(route(&d, "anchor").as_deref(), Some("crm:1"));
}

#[test]
fn free_time_is_skipped_only_when_import_free_time_is_off() {
    let mut free = event();
    free.show_as = ShowAs::Free;
    let d = decide(
        item("AAMkFree", MailboxBody::Event(free.clone())),
        NO_FREE_TIME,
    );
    assert_skip(&d, "skip-free-time");
    assert!(
        d.intent.reason.contains("import_free_time is off"),
        "{}",
        d.intent.reason
    );

    let d = decide(item("AAMkFree", MailboxBody::Event(free.clone())), TO_PSA);
    assert_import(&d, "event-to-appointment");
    assert_eq!(appointment_body(&d).show_as, ShowAs::Free);

    // Only free time: tentative, out of office... are imported with the option off.
    for show_as in [
        ShowAs::Busy,
        ShowAs::Tentative,
        ShowAs::Oof,
        ShowAs::Elsewhere,
    ] {
        let e = Event {
            show_as,
            ..free.clone()
        };
        let d = decide(item("AAMkBusy", MailboxBody::Event(e)), NO_FREE_TIME);
        assert_import(&d, "event-to-appointment");
    }

    let steps = explain(item("AAMkFree", MailboxBody::Event(free)), NO_FREE_TIME);
    assert_eq!(steps[0], "direction: to-psa");
    assert_eq!(steps[1], "event body");
    assert_eq!(
        steps[2],
        "rule skip-free-time: event is free time and import_free_time is off: skipped"
    );
    assert_eq!(steps[3], "action: skip");
}

/// Only start, end, all-day, show-as, sensitivity and the recurrence are left.
fn assert_without_detail(a: &Appointment, title: &str) {
    assert_eq!(a.subject.as_deref(), Some(title));
    assert_eq!(a.start.utc, "2026-12-02T14:00:00Z");
    assert_eq!(a.start.time_zone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(a.end.utc, "2026-12-02T15:00:00Z");
    let r = a.recurrence.as_ref().expect("the recurrence is kept");
    assert_eq!(r.rrule, "FREQ=MONTHLY;BYMONTHDAY=2");
    assert_eq!(r.exdates, ["2027-01-02T14:00:00Z"]);
    assert!(a.body.is_none(), "{a:?}");
    assert!(a.location.is_none(), "{a:?}");
    assert!(a.attendees.is_empty(), "{a:?}");
    assert!(a.organizer.is_none(), "{a:?}");
    assert!(a.categories.is_empty(), "{a:?}");
}

#[test]
fn no_detail_keeps_only_times_show_as_and_recurrence_under_a_fixed_title() {
    let mut e = event();
    e.all_day = true;
    e.show_as = ShowAs::Oof;
    let d = decide(item("AAMkEv4", MailboxBody::Event(e)), NO_DETAIL);
    assert_import(&d, "no-detail");
    let a = appointment_body(&d);
    assert_without_detail(a, "Busy");
    assert!(a.all_day);
    assert_eq!(a.show_as, ShowAs::Oof);
    assert_eq!(route(&d, "reminder_minutes"), None);
    assert!(d.intent.reason.contains("Busy"), "{}", d.intent.reason);
}

#[test]
fn private_and_confidential_events_arrive_without_detail_whatever_import_says() {
    for sensitivity in [Sensitivity::Private, Sensitivity::Confidential] {
        for options in [TO_PSA, NO_DETAIL] {
            let e = Event {
                sensitivity,
                ..event()
            };
            let d = decide(item("AAMkPriv", MailboxBody::Event(e)), options);
            assert_import(&d, "private-no-detail");
            let a = appointment_body(&d);
            assert_without_detail(a, "Private appointment");
            assert_eq!(a.sensitivity, sensitivity);
            assert!(
                d.intent
                    .reason
                    .contains("private appointments arrive without detail"),
                "{}",
                d.intent.reason
            );
        }
    }
    // Personal is not private.
    let e = Event {
        sensitivity: Sensitivity::Personal,
        ..event()
    };
    let d = decide(item("AAMkPers", MailboxBody::Event(e)), TO_PSA);
    assert_import(&d, "event-to-appointment");
    assert_eq!(appointment_body(&d).subject.as_deref(), Some("Dentist"));

    // A private free-time event with free time off is skipped: skipping wins.
    let e = Event {
        sensitivity: Sensitivity::Private,
        show_as: ShowAs::Free,
        ..event()
    };
    assert_skip(
        &decide(item("AAMkPF", MailboxBody::Event(e)), NO_FREE_TIME),
        "skip-free-time",
    );
}

#[test]
fn removed_events_are_removed_and_other_kinds_skipped() {
    let gone = |removed| AnyItem {
        id: "AAMkGone".into(),
        version: None,
        removed: Some(removed),
        body: None,
    };
    let d = decide(gone(Removal::Deleted), TO_PSA);
    assert_eq!(d.intent.action, IntentAction::Remove);
    assert_eq!(d.intent.rule, "removed");
    // An event that only left the calendar's window keeps what it was imported as.
    let d = decide(gone(Removal::OutOfScope), TO_PSA);
    assert_eq!(d.intent.action, IntentAction::Skip);
    assert_eq!(d.intent.rule, "left-window");

    let todo = Todo {
        subject: "x".into(),
        body: None,
        start: None,
        due: None,
        status: TaskStatus::NotStarted,
        percent_complete: 0,
        completed: None,
        categories: Vec::new(),
        anchor: None,
    };
    let d = decide(item("AAMkTodo", MailboxBody::Todo(todo)), TO_PSA);
    assert_skip(&d, "skip-kind");
    assert!(d.intent.reason.contains("todo"), "{}", d.intent.reason);

    let d = decide(item("4711", ItemBody::Appointment(appointment())), TO_PSA);
    assert_skip(&d, "skip-kind");
    assert!(
        d.intent.reason.contains("appointment"),
        "{}",
        d.intent.reason
    );
}
