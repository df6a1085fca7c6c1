//! Native tests of the rules, through the same export functions the component answers.

mod details;
mod options;
mod to_exchange;
mod to_psa;
mod write_back;

use crate::PsaExchange;
use syncbridge_sdk::exports;
pub use syncbridge_sdk::prelude::*;
pub use syncbridge_sdk::types::mailbox::{
    BodyType, Event, EventKind, EventTime, MailboxBody, MailboxContact, Participant, PhoneKind,
    Response, RichText, Series, Todo, Zone,
};

pub const TO_EXCHANGE: &str = r#"{"direction":"to-exchange"}"#;
pub const TO_PSA: &str = r#"{"direction":"to-psa"}"#;

/// An item of either model.
pub fn item(id: &str, body: impl Into<AnyBody>) -> AnyItem {
    AnyItem {
        id: id.into(),
        version: Some("v1".into()),
        removed: None,
        body: Some(body.into()),
    }
}

/// One decision, through `mailbox-mapper-api.decide` with options as JSON text.
pub fn decide(item: AnyItem, options: &str) -> AnyDecision {
    let mut d = exports::decide_any::<PsaExchange>(vec![item], options).expect("decides");
    assert_eq!(d.len(), 1);
    d.remove(0)
}

/// The explanation's steps.
pub fn explain(item: AnyItem, options: &str) -> Vec<String> {
    exports::explain_any::<PsaExchange>(item, options)
        .expect("explains")
        .steps
}

pub fn zoned(utc: &str, zone: Option<&str>) -> ZonedTime {
    ZonedTime {
        utc: utc.into(),
        time_zone: zone.map(str::to_owned),
    }
}

pub fn at(utc: &str, iana: Option<&str>, windows: Option<&str>) -> EventTime {
    EventTime {
        utc: utc.into(),
        zone: iana.map(|i| Zone {
            iana: i.into(),
            windows: windows.map(str::to_owned),
        }),
    }
}

/// An appointment with every field set.
pub fn appointment() -> Appointment {
    Appointment {
        subject: Some("Quarterly review".into()),
        start: zoned("2026-12-01T09:00:00Z", Some("W. Europe Standard Time")),
        end: zoned("2026-12-01T10:00:00Z", Some("W. Europe Standard Time")),
        all_day: false,
        show_as: ShowAs::Tentative,
        sensitivity: Sensitivity::Personal,
        recurrence: Some(Recurrence {
            rrule: "FREQ=WEEKLY;BYDAY=TU;COUNT=5".into(),
            exdates: vec!["2026-12-08T09:00:00Z".into()],
        }),
        organizer: Some("boss@msp.example".into()),
        attendees: vec![
            Attendee {
                email: "ann@contoso.example".into(),
                name: Some("Ann".into()),
                role: AttendeeRole::Required,
                response: Some("accepted".into()),
            },
            Attendee {
                email: "room1@msp.example".into(),
                name: None,
                role: AttendeeRole::Resource,
                response: Some("Tentative".into()),
            },
        ],
        location: Some("Room 1".into()),
        body: Some("Agenda:\n1. numbers".into()),
        categories: vec!["Customer".into(), "Review".into()],
    }
}

/// A mailbox event with every field set, as Exchange answers it.
pub fn event() -> Event {
    Event {
        kind: EventKind::SeriesMaster,
        series_id: None,
        original_start: None,
        subject: Some("Dentist".into()),
        start: at(
            "2026-12-02T14:00:00Z",
            Some("Europe/Berlin"),
            Some("W. Europe Standard Time"),
        ),
        end: at(
            "2026-12-02T15:00:00Z",
            Some("Europe/Berlin"),
            Some("W. Europe Standard Time"),
        ),
        all_day: false,
        show_as: ShowAs::Busy,
        sensitivity: Sensitivity::Normal,
        series: Some(Series {
            rrule: "FREQ=MONTHLY;BYMONTHDAY=2".into(),
            zone: Zone {
                iana: "Europe/Berlin".into(),
                windows: Some("W. Europe Standard Time".into()),
            },
            modified: Vec::new(),
            deleted: vec!["2027-01-02T14:00:00Z".into()],
        }),
        organizer: Some(EmailAddress {
            address: "alice@contoso.example".into(),
            name: Some("Alice".into()),
        }),
        attendees: vec![Participant {
            address: EmailAddress {
                address: "bob@contoso.example".into(),
                name: None,
            },
            role: AttendeeRole::Optional,
            response: Response::Declined,
        }],
        location: Some("Main street 1".into()),
        categories: vec!["Private stuff".into()],
        body: Some(RichText {
            content: "Bring the card".into(),
            body_type: BodyType::Text,
        }),
        reminder_minutes: Some(15),
        anchor: None,
    }
}

pub fn event_body(d: &AnyDecision) -> &Event {
    match &d.intent.body {
        Some(AnyBody::Mailbox(MailboxBody::Event(e))) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

pub fn appointment_body(d: &AnyDecision) -> &Appointment {
    match &d.intent.body {
        Some(AnyBody::Core(ItemBody::Appointment(a))) => a,
        other => panic!("expected an appointment, got {other:?}"),
    }
}

pub fn route(d: &AnyDecision, name: &str) -> Option<String> {
    d.intent
        .route
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.value.clone())
}

/// A decision that is a skip under `rule`, with the policy every decision has.
pub fn assert_skip(d: &AnyDecision, rule: &str) {
    assert_eq!(d.intent.action, IntentAction::Skip, "{d:?}");
    assert_eq!(d.intent.rule, rule, "{d:?}");
    assert!(d.intent.body.is_none(), "{d:?}");
    assert!(!d.intent.reason.is_empty());
}

/// The default write policy.
pub fn assert_default_policy(d: &AnyDecision) {
    assert!(d.policy.update_existing);
    assert!(matches!(d.policy.contact_types, ContactTypesMode::Replace));
}
