//! One calendar item in both models: a core `appointment` (what PSA and Dynamics connectors
//! speak) and a mailbox `event` (what the mailbox connectors speak), for plugins that read one
//! and write the other.

use crate::types::mailbox::{BodyType, Event, EventKind, EventTime, RichText, Series, Zone};
use crate::types::{Appointment, ZonedTime};

/// `a` as an event whose times are in `zone`: a series master (its RRULE, the recurrence's
/// excluded dates as deleted occurrences, no modified ones) when it recurs, else a single;
/// its body of `body_type`; no anchor, organizer or attendees.
pub fn event_of(a: &Appointment, zone: &Zone, body_type: BodyType) -> Event {
    let at = |t: &ZonedTime| EventTime {
        utc: t.utc.clone(),
        zone: Some(zone.clone()),
    };
    let series = a.recurrence.as_ref().map(|r| Series {
        rrule: r.rrule.clone(),
        zone: zone.clone(),
        modified: Vec::new(),
        deleted: r.exdates.clone(),
    });
    Event {
        kind: if series.is_some() {
            EventKind::SeriesMaster
        } else {
            EventKind::Single
        },
        series_id: None,
        original_start: None,
        subject: a.subject.clone(),
        start: at(&a.start),
        end: at(&a.end),
        all_day: a.all_day,
        show_as: a.show_as,
        sensitivity: a.sensitivity,
        series,
        organizer: None,
        attendees: Vec::new(),
        location: a.location.clone(),
        categories: a.categories.clone(),
        body: a.body.as_ref().map(|b| RichText {
            content: b.clone(),
            body_type,
        }),
        reminder_minutes: None,
        anchor: None,
    }
}

/// `e`'s fields as an appointment (times named by their IANA zone; the organizer's address;
/// the body's text whatever its type): no recurrence and no attendees, which a writer of the
/// item's plain fields does not take.
pub fn appointment_of(e: &Event) -> Appointment {
    let zoned = |t: &EventTime| ZonedTime {
        utc: t.utc.clone(),
        time_zone: t.zone.as_ref().map(|z| z.iana.clone()),
    };
    Appointment {
        subject: e.subject.clone(),
        start: zoned(&e.start),
        end: zoned(&e.end),
        all_day: e.all_day,
        show_as: e.show_as,
        sensitivity: e.sensitivity,
        recurrence: None,
        organizer: e.organizer.as_ref().map(|o| o.address.clone()),
        attendees: Vec::new(),
        location: e.location.clone(),
        body: e.body.as_ref().map(|b| b.content.clone()),
        categories: e.categories.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Recurrence, Sensitivity, ShowAs};

    fn berlin() -> Zone {
        Zone {
            iana: "Europe/Berlin".into(),
            windows: Some("W. Europe Standard Time".into()),
        }
    }

    fn appointment(recurrence: Option<Recurrence>) -> Appointment {
        let at = |utc: &str| ZonedTime {
            utc: utc.into(),
            time_zone: Some("W. Europe Standard Time".into()),
        };
        Appointment {
            subject: Some("Review".into()),
            start: at("2026-12-01T08:00:00Z"),
            end: at("2026-12-01T09:00:00Z"),
            all_day: false,
            show_as: ShowAs::Tentative,
            sensitivity: Sensitivity::Normal,
            recurrence,
            organizer: None,
            attendees: Vec::new(),
            location: Some("Room 1".into()),
            body: Some("<p>Agenda</p>".into()),
            categories: vec!["Blue".into()],
        }
    }

    #[test]
    fn a_recurring_appointment_is_a_series_master_and_back_its_plain_fields() {
        let a = appointment(Some(Recurrence {
            rrule: "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU".into(),
            exdates: vec!["2026-12-08T08:00:00Z".into()],
        }));
        let e = event_of(&a, &berlin(), BodyType::Html);
        assert_eq!(e.kind, EventKind::SeriesMaster);
        let s = e.series.as_ref().unwrap();
        assert_eq!(s.rrule, "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU");
        assert_eq!(s.zone.iana, "Europe/Berlin");
        assert_eq!(s.deleted, ["2026-12-08T08:00:00Z"]);
        assert!(s.modified.is_empty());
        assert_eq!(e.start.zone.as_ref().unwrap().iana, "Europe/Berlin");
        assert_eq!(e.end.utc, "2026-12-01T09:00:00Z");
        assert_eq!(e.body.as_ref().unwrap().body_type, BodyType::Html);
        assert_eq!(e.show_as, ShowAs::Tentative);
        assert_eq!(e.anchor, None);

        let back = appointment_of(&e);
        assert!(back.recurrence.is_none());
        assert_eq!(back.start.time_zone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(back.start.utc, a.start.utc);
        assert_eq!(back.body, a.body);
        assert_eq!(back.location, a.location);
        assert_eq!(back.categories, a.categories);
    }

    #[test]
    fn an_appointment_without_recurrence_is_a_single_event() {
        let e = event_of(&appointment(None), &berlin(), BodyType::Text);
        assert_eq!(e.kind, EventKind::Single);
        assert!(e.series.is_none());
        assert_eq!(e.body.unwrap().body_type, BodyType::Text);
    }
}
