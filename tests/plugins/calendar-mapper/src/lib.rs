//! A mapper over both item models (WIT 0.1.4 `mailbox-mapper-api`): a core
//! `appointment` becomes a mailbox `event` and a mailbox `event` a core
//! `appointment`, field by field, so the host's conversions of either model
//! can be checked end to end; other items are copied as they are.
//!
//! - appointment → event: the zone is completed to IANA and Windows ids from
//!   a small table, the recurrence becomes the series (exdates its deleted
//!   occurrences), attendees' responses are parsed, and the anchor is
//!   `sb:<source id>`;
//! - event → appointment: the zone's IANA id, the series' rrule and deleted
//!   occurrences; what an appointment cannot hold (the Windows zone id, the
//!   anchor, the reminder) goes into route attributes of those names.

use syncbridge_sdk::prelude::*;
use syncbridge_sdk::types::mailbox::{
    BodyType, Event, EventKind, EventTime, MailboxBody, Participant, Response, RichText, Series,
    Zone,
};

/// The mapper.
pub struct CalendarMapper;

/// IANA ids and the Windows ids of the same zones.
const ZONES: &[(&str, &str)] = &[
    ("Europe/Berlin", "W. Europe Standard Time"),
    ("America/New_York", "Eastern Standard Time"),
    ("Etc/UTC", "UTC"),
];

/// A zone named either way, with both ids where the table knows them.
fn zone_of(name: &str) -> Zone {
    match ZONES
        .iter()
        .find(|(iana, windows)| *iana == name || *windows == name)
    {
        Some((iana, windows)) => Zone {
            iana: (*iana).into(),
            windows: Some((*windows).into()),
        },
        None => Zone {
            iana: name.into(),
            windows: None,
        },
    }
}

fn response_of(text: Option<&str>) -> Response {
    match text.map(str::to_ascii_lowercase).as_deref() {
        Some("organizer") => Response::Organizer,
        Some("accepted") => Response::Accepted,
        Some("tentative") => Response::Tentative,
        Some("declined") => Response::Declined,
        Some("not-responded") => Response::NotResponded,
        _ => Response::None,
    }
}

fn response_name(response: Response) -> Option<String> {
    Some(
        match response {
            Response::None => return None,
            Response::Organizer => "organizer",
            Response::Accepted => "accepted",
            Response::Tentative => "tentative",
            Response::Declined => "declined",
            Response::NotResponded => "not-responded",
        }
        .into(),
    )
}

fn event_time(time: ZonedTime) -> EventTime {
    EventTime {
        utc: time.utc,
        zone: time.time_zone.as_deref().map(zone_of),
    }
}

/// A core appointment as a mailbox event anchored to its source item.
pub fn event_of(source_id: &str, a: Appointment) -> Event {
    let start = event_time(a.start);
    let series = a.recurrence.map(|r| Series {
        rrule: r.rrule,
        zone: start.zone.clone().unwrap_or_else(|| zone_of("Etc/UTC")),
        modified: Vec::new(),
        deleted: r.exdates,
    });
    Event {
        kind: if series.is_some() {
            EventKind::SeriesMaster
        } else {
            EventKind::Single
        },
        series_id: None,
        original_start: None,
        subject: a.subject,
        start,
        end: event_time(a.end),
        all_day: a.all_day,
        show_as: a.show_as,
        sensitivity: a.sensitivity,
        series,
        organizer: a.organizer.map(|address| EmailAddress {
            address,
            name: None,
        }),
        attendees: a
            .attendees
            .into_iter()
            .map(|at| Participant {
                response: response_of(at.response.as_deref()),
                address: EmailAddress {
                    address: at.email,
                    name: at.name,
                },
                role: at.role,
            })
            .collect(),
        location: a.location,
        categories: a.categories,
        body: a.body.map(|content| RichText {
            content,
            body_type: BodyType::Text,
        }),
        reminder_minutes: None,
        anchor: Some(format!("sb:{source_id}")),
    }
}

/// A mailbox event as a core appointment, and the route attributes holding
/// what an appointment has no field for.
pub fn appointment_of(e: Event) -> (Appointment, Vec<Attribute>) {
    let mut route = Vec::new();
    let mut note = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            route.push(Attribute {
                name: name.into(),
                value,
            });
        }
    };
    note(
        "windows_zone",
        e.start.zone.as_ref().and_then(|z| z.windows.clone()),
    );
    note("anchor", e.anchor);
    note(
        "reminder_minutes",
        e.reminder_minutes.map(|m| m.to_string()),
    );
    let zoned = |t: EventTime| ZonedTime {
        utc: t.utc,
        time_zone: t.zone.map(|z| z.iana),
    };
    let appointment = Appointment {
        subject: e.subject,
        start: zoned(e.start),
        end: zoned(e.end),
        all_day: e.all_day,
        show_as: e.show_as,
        sensitivity: e.sensitivity,
        recurrence: e.series.map(|s| Recurrence {
            rrule: s.rrule,
            exdates: s.deleted,
        }),
        organizer: e.organizer.map(|o| o.address),
        attendees: e
            .attendees
            .into_iter()
            .map(|p| Attendee {
                email: p.address.address,
                name: p.address.name,
                role: p.role,
                response: response_name(p.response),
            })
            .collect(),
        location: e.location,
        body: e.body.map(|b| b.content),
        categories: e.categories,
    };
    (appointment, route)
}

fn decision_for(item: AnyItem) -> AnyDecision {
    let removed = item.removed.is_some();
    let (body, route, rule) = match item.body {
        _ if removed => (None, Vec::new(), "removed"),
        Some(AnyBody::Core(ItemBody::Appointment(a))) => (
            Some(AnyBody::Mailbox(MailboxBody::Event(event_of(&item.id, a)))),
            Vec::new(),
            "appointment-to-event",
        ),
        Some(AnyBody::Mailbox(MailboxBody::Event(e))) => {
            let (a, route) = appointment_of(e);
            (
                Some(AnyBody::Core(ItemBody::Appointment(a))),
                route,
                "event-to-appointment",
            )
        }
        other => (other, Vec::new(), "copy"),
    };
    AnyDecision {
        intent: AnyIntent {
            source_id: item.id,
            action: if removed {
                IntentAction::Remove
            } else {
                IntentAction::Upsert
            },
            body,
            match_keys: Vec::new(),
            route,
            rule: rule.into(),
            reason: if removed {
                "removed at the source".into()
            } else {
                "calendar items change model, others are copied".into()
            },
        },
        policy: WritePolicy::default(),
    }
}

impl Mapper for CalendarMapper {
    type Options = syncbridge_sdk::config::AnyObject;

    fn decide_any(
        items: Vec<AnyItem>,
        _options: &Self::Options,
    ) -> Result<Vec<AnyDecision>, PluginError> {
        Ok(items.into_iter().map(decision_for).collect())
    }

    fn explain_any(item: AnyItem, _options: &Self::Options) -> Result<Explanation, PluginError> {
        let kind = item.body.as_ref().map_or("no", AnyBody::kind_name);
        let decision = decision_for(item);
        Ok(Explanation {
            source_id: decision.intent.source_id,
            steps: vec![format!("{kind} body: rule {}", decision.intent.rule)],
        })
    }
}

syncbridge_sdk::export_mapper!(CalendarMapper);
