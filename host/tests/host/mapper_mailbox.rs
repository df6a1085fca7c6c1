//! WIT 0.1.4 `mailbox-mapper-api`: mappers over core and mailbox items
//! through the real runtime. The `calendar-mapper` turns a core appointment
//! into a mailbox event and back, every field checked on the way out; a
//! mapper built against 0.1.3 still maps core items and is refused mailbox
//! items by name; and a run writes a source's core appointments into a
//! mailbox calendar as events.

use crate::common;
use crate::common::run_profile;

use syncbridge::engine::profiles::{self, Profile};
use syncbridge::engine::{FieldRules, Ledger};
use syncbridge::model::{
    Appointment, Attendee, AttendeeRole, BodyType, EmailAddress, Event, EventKind, EventTime,
    Intent, Item, ItemBody, Participant, Recurrence, Response, RichText, Sensitivity, Series,
    ShowAs, Zone, ZonedTime,
};

fn berlin() -> Zone {
    Zone {
        iana: "Europe/Berlin".into(),
        windows: Some("W. Europe Standard Time".into()),
    }
}

/// A weekly appointment as a PSA reads it: the zone by its Windows id.
fn appointment() -> Appointment {
    let at = |utc: &str| ZonedTime {
        utc: utc.into(),
        time_zone: Some("W. Europe Standard Time".into()),
    };
    Appointment {
        subject: Some("Standup".into()),
        start: at("2026-11-24T08:00:00Z"),
        end: at("2026-11-24T08:15:00Z"),
        all_day: false,
        show_as: ShowAs::Busy,
        sensitivity: Sensitivity::Confidential,
        recurrence: Some(Recurrence {
            rrule: "FREQ=WEEKLY;BYDAY=TU;UNTIL=20271231T235959Z".into(),
            exdates: vec!["2026-12-29T08:00:00Z".into()],
        }),
        organizer: Some("ada@contoso.test".into()),
        attendees: vec![
            Attendee {
                email: "bob@contoso.test".into(),
                name: Some("Bob".into()),
                role: AttendeeRole::Required,
                response: Some("accepted".into()),
            },
            Attendee {
                email: "room1@contoso.test".into(),
                name: None,
                role: AttendeeRole::Resource,
                response: None,
            },
        ],
        location: Some("Room 1".into()),
        body: Some("Daily, but weekly".into()),
        categories: vec!["Team".into()],
    }
}

/// A series master as a mailbox connector reads it.
fn event() -> Event {
    let at = |utc: &str| EventTime {
        utc: utc.into(),
        zone: Some(berlin()),
    };
    Event {
        kind: EventKind::SeriesMaster,
        series_id: None,
        original_start: None,
        subject: Some("Review".into()),
        start: at("2026-11-25T13:00:00Z"),
        end: at("2026-11-25T14:00:00Z"),
        all_day: false,
        show_as: ShowAs::Tentative,
        sensitivity: Sensitivity::Private,
        series: Some(Series {
            rrule: "FREQ=MONTHLY;BYMONTHDAY=25;COUNT=6".into(),
            zone: berlin(),
            modified: Vec::new(),
            deleted: vec!["2027-01-25T13:00:00Z".into()],
        }),
        organizer: Some(EmailAddress {
            address: "cy@contoso.test".into(),
            name: Some("Cy".into()),
        }),
        attendees: vec![Participant {
            address: EmailAddress {
                address: "dee@contoso.test".into(),
                name: Some("Dee".into()),
            },
            role: AttendeeRole::Optional,
            response: Response::Tentative,
        }],
        location: Some("Online".into()),
        categories: vec!["Clients".into(), "Review".into()],
        body: Some(RichText {
            content: "<p>Agenda</p>".into(),
            body_type: BodyType::Html,
        }),
        reminder_minutes: Some(30),
        anchor: Some("link-42".into()),
    }
}

fn item(id: &str, body: ItemBody) -> Item {
    Item {
        id: id.into(),
        version: None,
        removed: None,
        body: Some(body),
    }
}

fn route<'a>(intent: &'a Intent, name: &str) -> Option<&'a str> {
    intent
        .route
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.value.as_str())
}

#[tokio::test]
async fn a_0_1_4_mapper_turns_appointments_into_events_and_events_into_appointments() {
    let t = common::hub().await;
    common::install(&t.hub, "calendar-mapper").await;
    let mapper = t.hub.plugin("calendar-mapper").await.unwrap();
    assert_eq!(mapper.manifest().wit.to_string(), "0.1.4");
    let runtime = t.hub.runtime();

    let items = vec![
        item("ap-1", ItemBody::Appointment(appointment())),
        item("ev-1", ItemBody::Event(event())),
    ];
    let intents = runtime.decide(&mapper, items, "{}").await.unwrap().unwrap();
    assert_eq!(intents.len(), 2);

    // Core appointment in, mailbox event out.
    let out = &intents[0];
    assert_eq!(
        (out.source_id.as_str(), out.rule.as_str()),
        ("ap-1", "appointment-to-event")
    );
    let Some(ItemBody::Event(e)) = &out.body else {
        panic!("expected an event, got {:?}", out.body);
    };
    assert_eq!(e.kind, EventKind::SeriesMaster);
    assert_eq!(e.subject.as_deref(), Some("Standup"));
    assert_eq!(e.start.utc, "2026-11-24T08:00:00Z");
    assert_eq!(e.start.zone, Some(berlin()), "iana and windows ids");
    assert_eq!(e.end.utc, "2026-11-24T08:15:00Z");
    assert_eq!(e.end.zone, Some(berlin()));
    assert!(!e.all_day);
    assert_eq!(e.show_as, ShowAs::Busy);
    assert_eq!(e.sensitivity, Sensitivity::Confidential);
    let series = e.series.as_ref().expect("the recurrence became a series");
    assert_eq!(series.rrule, "FREQ=WEEKLY;BYDAY=TU;UNTIL=20271231T235959Z");
    assert_eq!(series.zone, berlin());
    assert_eq!(series.deleted, ["2026-12-29T08:00:00Z"]);
    assert!(series.modified.is_empty());
    assert_eq!(
        e.organizer.as_ref().map(|o| o.address.as_str()),
        Some("ada@contoso.test")
    );
    assert_eq!(e.attendees.len(), 2);
    assert_eq!(e.attendees[0].address.address, "bob@contoso.test");
    assert_eq!(e.attendees[0].address.name.as_deref(), Some("Bob"));
    assert_eq!(e.attendees[0].role, AttendeeRole::Required);
    assert_eq!(e.attendees[0].response, Response::Accepted);
    assert_eq!(e.attendees[1].role, AttendeeRole::Resource);
    assert_eq!(e.attendees[1].response, Response::None);
    assert_eq!(e.location.as_deref(), Some("Room 1"));
    assert_eq!(e.categories, ["Team"]);
    assert_eq!(
        e.body,
        Some(RichText {
            content: "Daily, but weekly".into(),
            body_type: BodyType::Text,
        })
    );
    assert_eq!(e.reminder_minutes, None);
    assert_eq!(e.anchor.as_deref(), Some("sb:ap-1"));

    // Mailbox event in, core appointment out; what an appointment cannot
    // hold came back in route attributes, so it reached the mapper too.
    let back = &intents[1];
    assert_eq!(
        (back.source_id.as_str(), back.rule.as_str()),
        ("ev-1", "event-to-appointment")
    );
    let Some(ItemBody::Appointment(a)) = &back.body else {
        panic!("expected an appointment, got {:?}", back.body);
    };
    let in_berlin = |utc: &str| ZonedTime {
        utc: utc.into(),
        time_zone: Some("Europe/Berlin".into()),
    };
    let expected = Appointment {
        subject: Some("Review".into()),
        start: in_berlin("2026-11-25T13:00:00Z"),
        end: in_berlin("2026-11-25T14:00:00Z"),
        all_day: false,
        show_as: ShowAs::Tentative,
        sensitivity: Sensitivity::Private,
        recurrence: Some(Recurrence {
            rrule: "FREQ=MONTHLY;BYMONTHDAY=25;COUNT=6".into(),
            exdates: vec!["2027-01-25T13:00:00Z".into()],
        }),
        organizer: Some("cy@contoso.test".into()),
        attendees: vec![Attendee {
            email: "dee@contoso.test".into(),
            name: Some("Dee".into()),
            role: AttendeeRole::Optional,
            response: Some("tentative".into()),
        }],
        location: Some("Online".into()),
        body: Some("<p>Agenda</p>".into()),
        categories: vec!["Clients".into(), "Review".into()],
    };
    assert_eq!(a, &expected);
    assert_eq!(route(back, "windows_zone"), Some("W. Europe Standard Time"));
    assert_eq!(route(back, "anchor"), Some("link-42"));
    assert_eq!(route(back, "reminder_minutes"), Some("30"));

    // explain goes through mailbox-mapper-api too, with either model.
    for (body, step) in [
        (
            ItemBody::Appointment(appointment()),
            "appointment body: rule appointment-to-event",
        ),
        (
            ItemBody::Event(event()),
            "event body: rule event-to-appointment",
        ),
    ] {
        let explained = runtime
            .explain(&mapper, item("x", body), "{}")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(explained.steps, [step]);
    }
}

/// A mapper built against 0.1.3 has no `mailbox-mapper-api`: core items reach
/// its `mapper-api` unchanged, and a mailbox item is refused before the call,
/// naming the mapper, the kind, its WIT and the version that carries them.
/// A 0.1.4 mapper that maps only core items (the SDK's default) refuses them
/// itself.
#[tokio::test]
async fn older_mappers_get_core_items_and_refuse_mailbox_items_by_name() {
    let t = common::hub().await;
    for p in ["legacy-mapper-0-1-3", "echo-mapper"] {
        common::install(&t.hub, p).await;
    }
    let runtime = t.hub.runtime();
    let legacy = t.hub.plugin("legacy-mapper-0-1-3").await.unwrap();
    assert_eq!(legacy.manifest().wit.to_string(), "0.1.3");

    let intents = runtime
        .decide(
            &legacy,
            vec![item("ap-1", ItemBody::Appointment(appointment()))],
            "{}",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(intents[0].rule, "legacy-0.1.3");
    assert_eq!(intents[0].body, Some(ItemBody::Appointment(appointment())));

    let refused = runtime
        .decide(&legacy, vec![item("ev-1", ItemBody::Event(event()))], "{}")
        .await
        .unwrap()
        .unwrap_err()
        .describe();
    for needle in ["legacy-mapper-0-1-3", "event", "0.1.3", "0.1.4"] {
        assert!(refused.contains(needle), "{needle} in {refused}");
    }
    let refused = runtime
        .explain(&legacy, item("ev-1", ItemBody::Event(event())), "{}")
        .await
        .unwrap()
        .unwrap_err()
        .describe();
    assert!(
        refused.contains("event") && refused.contains("0.1.4"),
        "{refused}"
    );

    let echo = t.hub.plugin("echo-mapper").await.unwrap();
    let copied = runtime
        .decide(
            &echo,
            vec![item("ap-1", ItemBody::Appointment(appointment()))],
            "{}",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(copied[0].body, Some(ItemBody::Appointment(appointment())));
    let refused = runtime
        .decide(&echo, vec![item("ev-1", ItemBody::Event(event()))], "{}")
        .await
        .unwrap()
        .unwrap_err()
        .describe();
    assert!(
        refused.starts_with("unsupported")
            && refused.contains("ev-1")
            && refused.contains("event")
            && refused.contains("decide_any"),
        "{refused}"
    );
}

/// A profile whose source serves core appointments and whose target is a
/// mailbox calendar (served through `mailbox-api`): the run writes an event.
/// The `misbehave` connector is both sides; its `push-mailbox` answers
/// `create:<subject>` for an event and refuses anything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_writes_core_appointments_into_a_mailbox_calendar_as_events() {
    let t = common::hub().await;
    for p in ["misbehave", "calendar-mapper"] {
        common::install(&t.hub, p).await;
    }
    common::loopback_connection(&t.hub, "mb", "misbehave", "{}", &[]).await;
    profiles::save(
        t.hub.store(),
        &Profile {
            id: "calendar".into(),
            source_connection: "mb".into(),
            source_scope: "appointments".into(),
            mapper_plugin: "calendar-mapper".into(),
            mapper_options: "{}".into(),
            target_connection: "mb".into(),
            target_scope: "calendar:mailbox=ada@contoso.test".into(),
            rules: FieldRules::default(),
            page_size: 10,
        },
    )
    .await
    .unwrap();

    let report = run_profile(&t.hub, "calendar", false).await.unwrap();
    assert_eq!((report.applied, report.failed), (1, 0), "{report:?}");

    let links = Ledger::new(t.hub.store().clone())
        .links("calendar", &["ap-1".into()])
        .await
        .unwrap();
    let link = &links["ap-1"];
    assert_eq!(link.target_id, "create:Standup", "the target took an event");
    assert_eq!(link.fields["anchor"], "sb:ap-1");
    assert!(
        link.fields["series"].contains("FREQ=WEEKLY;BYDAY=TU;UNTIL=20271231T235959Z"),
        "{:?}",
        link.fields
    );
    assert!(
        link.fields["start"].contains("Europe/Berlin"),
        "{:?}",
        link.fields
    );
}
