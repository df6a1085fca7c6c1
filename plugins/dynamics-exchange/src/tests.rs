//! Native tests of the rules, through the same export functions the component answers.

use crate::DynamicsExchange;
use syncbridge_sdk::exports;
use syncbridge_sdk::prelude::*;

const INCOMING: &str = r#"{"kind":"incoming-email","process_from":"2026-11-01T00:00:00+01:00"}"#;
const OUTGOING: &str = r#"{"kind":"outgoing-email"}"#;

fn message(received: Option<&str>, message_id: Option<&str>) -> EmailMessage {
    EmailMessage {
        subject: Some("Printer on fire".into()),
        from: Some(EmailAddress {
            address: "customer@fabrikam.com".into(),
            name: Some("A Customer".into()),
        }),
        to: vec![EmailAddress {
            address: "alice@contoso.com".into(),
            name: None,
        }],
        cc: Vec::new(),
        body: Some("<p>Help</p>".into()),
        body_is_html: true,
        sent: received.map(str::to_owned),
        received: received.map(str::to_owned),
        internet_message_id: message_id.map(str::to_owned),
    }
}

fn item(id: &str, m: EmailMessage) -> AnyItem {
    AnyItem {
        id: id.into(),
        version: Some("ck1".into()),
        removed: None,
        body: Some(AnyBody::Core(ItemBody::EmailMessage(m))),
    }
}

fn decide(item: AnyItem, options: &str) -> AnyDecision {
    let mut d = exports::decide_any::<DynamicsExchange>(vec![item], options).expect("decides");
    assert_eq!(d.len(), 1);
    d.remove(0)
}

/// The decision of an appointments profile on Dynamics appointment `id`.
fn appointments(id: &str, a: Appointment) -> AnyDecision {
    decide(
        core(id, ItemBody::Appointment(a)),
        r#"{"kind":"appointments"}"#,
    )
}

/// The event a decision writes.
fn event(d: AnyDecision) -> syncbridge_sdk::types::mailbox::Event {
    match d.intent.body {
        Some(AnyBody::Mailbox(syncbridge_sdk::types::mailbox::MailboxBody::Event(e))) => e,
        other => panic!("an event: {other:?}"),
    }
}

#[test]
fn a_message_received_after_process_from_is_tracked_with_its_message_id_as_match_key() {
    let m = message(Some("2026-11-02T09:00:00Z"), Some("<a1@fabrikam.com>"));
    let d = decide(item("AAMk1", m.clone()), INCOMING);
    assert_eq!(d.intent.action, IntentAction::Upsert);
    assert_eq!(d.intent.rule, "track-incoming");
    assert_eq!(d.intent.match_keys, vec!["messageid:<a1@fabrikam.com>"]);
    match d.intent.body {
        Some(AnyBody::Core(ItemBody::EmailMessage(out))) => {
            assert_eq!(
                format!("{out:?}"),
                format!("{m:?}"),
                "passed through as it is"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !d.policy.update_existing,
        "a tracked activity is Dynamics' own"
    );
}

#[test]
fn a_message_received_before_process_from_is_skipped_with_the_date_in_the_reason() {
    // 2026-10-31T23:30Z is before 2026-11-01T00:00+01:00? No: that is 2026-10-31T23:00Z.
    let after = decide(
        item("a", message(Some("2026-10-31T23:30:00Z"), Some("<a@x>"))),
        INCOMING,
    );
    assert_eq!(
        after.intent.action,
        IntentAction::Upsert,
        "offsets are compared as instants"
    );
    let before = decide(
        item("b", message(Some("2026-10-31T22:59:59Z"), Some("<b@x>"))),
        INCOMING,
    );
    assert_eq!(before.intent.action, IntentAction::Skip);
    assert_eq!(before.intent.rule, "before-process-from");
    assert!(
        before.intent.reason.contains("2026-10-31T22:59:59Z"),
        "{}",
        before.intent.reason
    );
    assert!(before.intent.reason.contains("2026-11-01T00:00:00+01:00"));
}

#[test]
fn without_process_from_every_message_is_tracked_and_without_a_message_id_no_match_key() {
    let d = decide(
        item("c", message(Some("2001-01-01T00:00:00Z"), None)),
        r#"{"kind":"incoming-email"}"#,
    );
    assert_eq!(d.intent.action, IntentAction::Upsert);
    assert!(d.intent.match_keys.is_empty());
}

#[test]
fn a_message_without_times_or_removed_from_the_inbox_is_skipped() {
    let d = decide(item("d", message(None, Some("<d@x>"))), INCOMING);
    assert_eq!(d.intent.rule, "no-received-time");
    let mut gone = item("e", message(Some("2026-11-02T09:00:00Z"), None));
    gone.removed = Some(Removal::Deleted);
    gone.body = None;
    let d = decide(gone, INCOMING);
    assert_eq!(
        d.intent.action,
        IntentAction::Skip,
        "tracked mail stays in Dynamics"
    );
    assert_eq!(d.intent.rule, "left-inbox");
}

#[test]
fn other_kinds_are_skipped_naming_the_kind() {
    let contact = AnyItem {
        id: "x".into(),
        version: None,
        removed: None,
        body: Some(AnyBody::Core(ItemBody::Company(CompanyRef {
            id: "1".into(),
            name: None,
        }))),
    };
    let d = decide(contact, INCOMING);
    assert_eq!(d.intent.rule, "skip-kind");
    assert!(d.intent.reason.contains("company"), "{}", d.intent.reason);
}

#[test]
fn outgoing_email_is_sent_once_and_never_updated() {
    let m = message(None, None);
    let d = decide(item("act-1", m.clone()), OUTGOING);
    assert_eq!(d.intent.action, IntentAction::Upsert);
    assert_eq!(d.intent.rule, "send-outgoing");
    assert!(d.intent.match_keys.is_empty());
    assert!(!d.policy.update_existing);
    let mut sent = item("act-1", m);
    sent.removed = Some(Removal::OutOfScope);
    let d = decide(sent, OUTGOING);
    assert_eq!(d.intent.action, IntentAction::Skip);
    assert_eq!(d.intent.rule, "no-longer-pending");
}

#[test]
fn options_are_strict() {
    let bad = |json: &str| exports::decide_any::<DynamicsExchange>(Vec::new(), json).unwrap_err();
    let e = bad(r#"{"kind":"incoming-email","process_from":"yesterday"}"#);
    assert!(format!("{e:?}").contains("RFC 3339"), "{e:?}");
    let e = bad(r#"{"kind":"outgoing-email","process_from":"2026-11-01T00:00:00Z"}"#);
    assert!(format!("{e:?}").contains("process_from"), "{e:?}");
    let e = bad(r#"{"kind":"incoming-email","colour":"red"}"#);
    assert!(format!("{e:?}").contains("colour"), "{e:?}");
    let e = bad(r#"{"kind":"calendar"}"#);
    assert!(format!("{e:?}").contains("kind"), "{e:?}");
}

#[test]
fn explain_names_kind_rule_action_and_match_key() {
    let steps = exports::explain_any::<DynamicsExchange>(
        item("f", message(Some("2026-11-02T09:00:00Z"), Some("<f@x>"))),
        INCOMING,
    )
    .expect("explains")
    .steps;
    assert_eq!(steps[0], "kind: incoming-email");
    assert_eq!(steps[1], "email-message body");
    assert!(steps[2].starts_with(
        "rule track-incoming: received 2026-11-02T09:00:00Z, after Process Email From"
    ));
    assert_eq!(steps[3], "action: upsert");
    assert_eq!(steps[4], "match key: messageid:<f@x>");
}

fn appointment() -> Appointment {
    Appointment {
        subject: Some("Quarterly review".into()),
        start: ZonedTime {
            utc: "2026-12-01T09:00:00Z".into(),
            time_zone: None,
        },
        end: ZonedTime {
            utc: "2026-12-01T10:00:00Z".into(),
            time_zone: None,
        },
        all_day: false,
        show_as: ShowAs::Busy,
        sensitivity: Sensitivity::Normal,
        recurrence: None,
        organizer: None,
        attendees: Vec::new(),
        location: Some("Room 1".into()),
        body: Some("<p>Agenda</p>".into()),
        categories: Vec::new(),
    }
}

fn core(id: &str, body: ItemBody) -> AnyItem {
    AnyItem {
        id: id.into(),
        version: None,
        removed: None,
        body: Some(AnyBody::Core(body)),
    }
}

#[test]
fn a_dynamics_appointment_becomes_an_event_anchored_to_its_row() {
    let d = appointments("act-1", appointment());
    assert_eq!(d.intent.rule, "appointment-to-event");
    assert_eq!(d.intent.match_keys, vec!["anchor:d365:act-1"]);
    assert!(d.policy.update_existing);
    let e = event(d);
    assert_eq!(e.anchor.as_deref(), Some("d365:act-1"));
    assert_eq!(e.start.utc, "2026-12-01T09:00:00Z");
    assert_eq!(e.location.as_deref(), Some("Room 1"));
    // And back: the write-back form is the appointment again.
    let back = decide(
        AnyItem {
            id: "op-1".into(),
            version: None,
            removed: None,
            body: Some(AnyBody::Mailbox(
                syncbridge_sdk::types::mailbox::MailboxBody::Event(e),
            )),
        },
        r#"{"kind":"appointments"}"#,
    );
    assert_eq!(back.intent.rule, "event-to-appointment-write-back");
    let Some(AnyBody::Core(ItemBody::Appointment(a))) = back.intent.body else {
        panic!("an appointment");
    };
    assert_eq!(a.start.utc, "2026-12-01T09:00:00Z");
    assert_eq!(a.subject.as_deref(), Some("Quarterly review"));
    assert_eq!(a.body.as_deref(), Some("<p>Agenda</p>"));
}

#[test]
fn a_recurring_appointment_master_becomes_a_series_master_with_its_rule_and_deleted_occurrences() {
    let mut a = appointment();
    a.recurrence = Some(Recurrence {
        rrule: "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;COUNT=10".into(),
        exdates: vec!["2026-12-08T09:00:00Z".into()],
    });
    let d = appointments("series-1", a);
    let e = event(d);
    assert_eq!(
        e.kind,
        syncbridge_sdk::types::mailbox::EventKind::SeriesMaster
    );
    let series = e.series.expect("a series");
    assert_eq!(series.rrule, "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;COUNT=10");
    assert_eq!(series.zone.iana, "Etc/UTC");
    assert_eq!(series.deleted, ["2026-12-08T09:00:00Z"]);
    assert!(series.modified.is_empty());
    assert_eq!(e.anchor.as_deref(), Some("d365:series-1"));
    // A single appointment stays single.
    let d = appointments("act-1", appointment());
    let e = event(d);
    assert_eq!(e.kind, syncbridge_sdk::types::mailbox::EventKind::Single);
    assert!(e.series.is_none());
}

#[test]
fn a_series_keeps_the_zone_dynamics_computed_it_in() {
    let mut a = appointment();
    for t in [&mut a.start, &mut a.end] {
        t.time_zone = Some("W. Europe Standard Time".into());
    }
    a.recurrence = Some(Recurrence {
        rrule: "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;COUNT=10".into(),
        exdates: vec![],
    });
    let d = appointments("series-1", a.clone());
    let e = event(d);
    let berlin = |z: &syncbridge_sdk::types::mailbox::Zone| {
        (z.iana.clone(), z.windows.clone())
            == (
                "Europe/Berlin".into(),
                Some("W. Europe Standard Time".into()),
            )
    };
    assert!(
        berlin(&e.series.expect("a series").zone),
        "the series' zone"
    );
    assert!(berlin(e.start.zone.as_ref().unwrap()), "the start's zone");
    assert!(berlin(e.end.zone.as_ref().unwrap()), "the end's zone");
    assert_eq!(e.start.utc, a.start.utc, "the instant is kept");

    // A zone nobody knows: the instants in UTC.
    a.start.time_zone = Some("Mars Standard Time".into());
    let d = appointments("series-1", a);
    let e = event(d);
    assert_eq!(e.series.unwrap().zone.iana, "Etc/UTC");
}

#[test]
fn a_completed_task_is_a_done_todo_and_an_inactive_contact_is_removed() {
    let task = Task {
        title: "Call back".into(),
        body: None,
        start: None,
        due: Some(ZonedTime {
            utc: "2026-12-02T17:00:00Z".into(),
            time_zone: None,
        }),
        completed: Some(ZonedTime {
            utc: "2026-12-02T12:00:00Z".into(),
            time_zone: None,
        }),
        status: TaskStatus::Completed,
        categories: Vec::new(),
    };
    let d = decide(core("t-1", ItemBody::Task(task)), r#"{"kind":"tasks"}"#);
    let Some(AnyBody::Mailbox(syncbridge_sdk::types::mailbox::MailboxBody::Todo(t))) =
        d.intent.body
    else {
        panic!("a todo");
    };
    assert_eq!((t.percent_complete, t.subject.as_str()), (100, "Call back"));
    let contact = Contact {
        first_name: Some("Ann".into()),
        last_name: Some("Lee".into()),
        display_name: None,
        title: None,
        email: Some("ann@fabrikam.com".into()),
        phone: None,
        mobile: None,
        company: None,
        site: None,
        contact_types: Vec::new(),
        active: false,
        extra: Vec::new(),
    };
    let d = decide(
        core("c-1", ItemBody::Contact(contact)),
        r#"{"kind":"contacts"}"#,
    );
    assert_eq!(d.intent.action, IntentAction::Remove);
    assert_eq!(d.intent.rule, "contact-inactive");
    // A kind the profile does not keep is skipped, naming both.
    let d = decide(
        core("x", ItemBody::Appointment(appointment())),
        r#"{"kind":"tasks"}"#,
    );
    assert_eq!(d.intent.rule, "skip-kind");
    assert!(d.intent.reason.contains("tasks") && d.intent.reason.contains("appointment"));
}

#[test]
fn a_recurring_series_is_kept_as_the_event_it_is_anchored_to_its_row_both_ways() {
    use syncbridge_sdk::types::mailbox::{
        Event, EventKind, EventTime, MailboxBody, OccurrenceChange, Series, Zone,
    };
    const SERIES: &str = r#"{"kind":"recurring-appointments"}"#;
    let berlin = Zone {
        iana: "Europe/Berlin".into(),
        windows: Some("W. Europe Standard Time".into()),
    };
    let at = |utc: &str| EventTime {
        utc: utc.into(),
        zone: Some(berlin.clone()),
    };
    let from_dynamics = Event {
        kind: EventKind::SeriesMaster,
        series_id: None,
        original_start: None,
        subject: Some("Weekly".into()),
        start: at("2026-12-01T08:00:00Z"),
        end: at("2026-12-01T09:00:00Z"),
        all_day: false,
        show_as: ShowAs::Busy,
        sensitivity: Sensitivity::Normal,
        series: Some(Series {
            rrule: "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;COUNT=10".into(),
            zone: berlin.clone(),
            modified: vec![OccurrenceChange {
                original_start: "2026-12-08T08:00:00Z".into(),
                id: Some("exception-row".into()),
                start: at("2026-12-08T13:00:00Z"),
                end: at("2026-12-08T14:00:00Z"),
                subject: Some("Weekly (afternoon)".into()),
                location: None,
                body: None,
                show_as: ShowAs::Busy,
            }],
            deleted: vec!["2026-12-15T08:00:00Z".into()],
        }),
        organizer: None,
        attendees: Vec::new(),
        location: None,
        categories: Vec::new(),
        body: None,
        reminder_minutes: None,
        anchor: None,
    };
    let mailbox = |id: &str, e: Event| AnyItem {
        id: id.into(),
        version: None,
        removed: None,
        body: Some(AnyBody::Mailbox(MailboxBody::Event(e))),
    };
    let d = decide(mailbox("series-1", from_dynamics.clone()), SERIES);
    assert_eq!(d.intent.rule, "series-to-series");
    assert_eq!(d.intent.action, IntentAction::Upsert);
    assert_eq!(d.intent.match_keys, vec!["anchor:d365:series-1"]);
    assert!(d.policy.update_existing);
    let e = event(d);
    assert_eq!(e.anchor.as_deref(), Some("d365:series-1"));
    let s = e.series.clone().unwrap();
    assert_eq!(s.modified.len(), 1);
    assert_eq!(
        s.modified[0].id, None,
        "the mailbox matches by original start"
    );
    assert_eq!(s.modified[0].start.utc, "2026-12-08T13:00:00Z");
    assert_eq!(s.deleted, ["2026-12-15T08:00:00Z"]);
    assert_eq!(
        format!("{:?}", e.start),
        format!("{:?}", from_dynamics.start)
    );

    // Read back from the mailbox (the write-back): the same rule, the anchor it carries kept.
    let back = decide(mailbox("op-7-back", e.clone()), SERIES);
    assert_eq!(back.intent.rule, "series-to-series");
    assert_eq!(format!("{:?}", event(back)), format!("{e:?}"), "unchanged");

    // A core appointment is not what this profile keeps.
    let d = decide(core("act-1", ItemBody::Appointment(appointment())), SERIES);
    assert_eq!(d.intent.action, IntentAction::Skip);
    assert!(
        d.intent.reason.contains("recurring series"),
        "{}",
        d.intent.reason
    );
}
