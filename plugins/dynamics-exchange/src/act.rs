//! Appointments, contacts and tasks ("ACT"): Dynamics rows (core items of the `dynamics`
//! connector's `appointments:`, `contacts:` and `tasks:` scopes) become mailbox items anchored
//! `d365:<row id>`, and mailbox items come back into Dynamics' model for the fields that flow
//! both ways (the write-back).
//!
//! | source body | rule | result |
//! |---|---|---|
//! | `appointment` | `appointment-to-event` | `event`: single (a series master with its RRULE and deleted occurrences when the row is a recurring appointment master), subject, start/end as instants (Dataverse keeps them), all-day, show-as, sensitivity, location, body as HTML (Dataverse's description is HTML); times and series in the zone the connector names (a series' `utcconversiontimezonecode`, by Windows id), else UTC |
//! | `task` | `task-to-todo` | `todo`: subject = title, body, start, due, status, completed (percent complete 100 when completed, else 0) |
//! | `contact` (active) | `contact-to-mailbox-contact` | `mailbox-contact`: given name, surname, display name, job title, e-mails (`email`, then the attribute `emailaddress2`), business and mobile phone, department and business city from the attributes `department`, `address1_city` |
//! | `contact` (inactive) | `contact-inactive` | `remove`: deactivated in Dynamics, gone from the mailbox |
//! | mailbox `event` (kind `recurring-appointments`) | `series-to-series` | the same `event`, anchored `d365:<row id>` unless it carries an anchor, its modified occurrences without ids: the `dynamics` connector serves series as mailbox events with their modified and deleted occurrences, so one rule serves both directions |
//! | mailbox `event` | `event-to-appointment-write-back` | `appointment` (the two-way fields' source form) |
//! | mailbox `todo` | `todo-to-task-write-back` | `task` |
//! | mailbox `mailbox-contact` | `mailbox-contact-to-contact-write-back` | `contact` |

use crate::Outcome;
use syncbridge_sdk::appointments;
use syncbridge_sdk::prelude::*;
use syncbridge_sdk::types::mailbox::{
    AddressKind, BodyType, Event, EventTime, MailboxBody, MailboxContact, Phone, PhoneKind,
    PostalAddress, RichText, Todo, Zone,
};

/// The anchor written into Exchange for Dynamics row `id`.
pub fn anchor(id: &str) -> String {
    format!("d365:{id}")
}

/// The zone of a Dynamics time: the one the connector named (a recurring series' zone, by its
/// Windows id), else UTC (with a warning for a name nobody knows).
fn zone_of(t: &ZonedTime) -> Zone {
    syncbridge_sdk::zones::zone_or_utc(t.time_zone.as_deref())
}

fn event_time(t: &ZonedTime) -> EventTime {
    EventTime {
        utc: t.utc.clone(),
        zone: Some(zone_of(t)),
    }
}

fn zoned(t: &EventTime) -> ZonedTime {
    ZonedTime {
        utc: t.utc.clone(),
        time_zone: t.zone.as_ref().map(|z| z.iana.clone()),
    }
}

fn html(content: &str) -> RichText {
    RichText {
        content: content.to_owned(),
        body_type: BodyType::Html,
    }
}

/// A Dynamics appointment as a mailbox event: a series master when it recurs (a recurring
/// appointment master of the `recurring-appointments:` scope), its RRULE in the zone the
/// connector computed it in (the start's; UTC when it names none), its deleted occurrences as
/// the series' deleted starts.
pub fn event_of_appointment(id: &str, a: &Appointment) -> Event {
    Event {
        anchor: Some(anchor(id)),
        ..appointments::event_of(a, &zone_of(&a.start), BodyType::Html)
    }
}

/// A recurring series as the mailbox keeps it: the event as the `dynamics` connector gives it
/// (a series master in its zone, with its modified and deleted occurrences), anchored
/// `d365:<row id>` unless it already carries an anchor, its occurrences without Dynamics' own
/// ids (the mailbox matches them by original start). Both sides use the mailbox model for
/// series, so the rule is the same both ways: an event read back from the mailbox keeps its
/// anchor and is written back to Dynamics as it is (the connector takes the master's two-way
/// fields from it).
pub fn series_in_mailbox(id: &str, e: &Event) -> Event {
    let mut out = e.clone();
    if out.anchor.is_none() {
        out.anchor = Some(anchor(id));
    }
    if let Some(series) = &mut out.series {
        for change in &mut series.modified {
            change.id = None;
        }
    }
    out
}

/// A mailbox event in Dynamics' model (the write-back).
pub fn appointment_of_event(e: &Event) -> Appointment {
    appointments::appointment_of(e)
}

/// A Dynamics task as a mailbox to-do.
pub fn todo_of_task(id: &str, t: &Task) -> Todo {
    let done = t.status == TaskStatus::Completed;
    Todo {
        subject: t.title.clone(),
        body: t.body.as_deref().map(html),
        start: t.start.as_ref().map(event_time),
        due: t.due.as_ref().map(event_time),
        status: t.status,
        percent_complete: if done { 100 } else { 0 },
        completed: t.completed.as_ref().map(|c| c.utc.clone()),
        categories: t.categories.clone(),
        anchor: Some(anchor(id)),
    }
}

/// A mailbox to-do in Dynamics' model (the write-back).
pub fn task_of_todo(t: &Todo) -> Task {
    Task {
        title: t.subject.clone(),
        body: t.body.as_ref().map(|b| b.content.clone()),
        start: t.start.as_ref().map(zoned),
        due: t.due.as_ref().map(zoned),
        completed: t.completed.as_ref().map(|utc| ZonedTime {
            utc: utc.clone(),
            time_zone: None,
        }),
        status: t.status,
        categories: t.categories.clone(),
    }
}

fn attribute<'a>(c: &'a Contact, name: &str) -> Option<&'a str> {
    c.extra
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
        .map(|a| a.value.as_str())
        .filter(|v| !v.trim().is_empty())
}

/// A Dynamics contact as a mailbox contact.
pub fn mailbox_contact_of(id: &str, c: &Contact) -> MailboxContact {
    let emails = c
        .email
        .as_deref()
        .into_iter()
        .chain(attribute(c, "emailaddress2"))
        .filter(|e| !e.trim().is_empty())
        .map(|e| EmailAddress {
            address: e.to_owned(),
            name: None,
        })
        .collect();
    let phones = [
        (PhoneKind::Business, &c.phone),
        (PhoneKind::Mobile, &c.mobile),
    ]
    .into_iter()
    .filter_map(|(kind, n)| {
        n.as_ref().map(|number| Phone {
            kind,
            number: number.clone(),
        })
    })
    .collect();
    let addresses = attribute(c, "address1_city")
        .map(|city| PostalAddress {
            kind: AddressKind::Business,
            street: None,
            city: Some(city.to_owned()),
            state: None,
            postal_code: None,
            country: None,
        })
        .into_iter()
        .collect();
    let display = c.display_name.clone().or_else(|| {
        let joined = [c.first_name.as_deref(), c.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        (!joined.is_empty()).then_some(joined)
    });
    MailboxContact {
        given_name: c.first_name.clone(),
        middle_name: None,
        surname: c.last_name.clone(),
        display_name: display,
        company_name: c.company.as_ref().and_then(|r| r.name.clone()),
        job_title: c.title.clone(),
        department: attribute(c, "department").map(str::to_owned),
        emails,
        phones,
        addresses,
        business_home_page: None,
        birthday: None,
        notes: None,
        categories: Vec::new(),
        anchor: Some(anchor(id)),
    }
}

/// A mailbox contact in Dynamics' model (the write-back).
pub fn contact_of_mailbox_contact(m: &MailboxContact) -> Contact {
    let phone = |kind: PhoneKind| {
        m.phones
            .iter()
            .find(|p| p.kind == kind)
            .map(|p| p.number.clone())
    };
    let mut extra = Vec::new();
    if let Some(d) = &m.department {
        extra.push(Attribute {
            name: "department".into(),
            value: d.clone(),
        });
    }
    if let Some(second) = m.emails.get(1) {
        extra.push(Attribute {
            name: "emailaddress2".into(),
            value: second.address.clone(),
        });
    }
    if let Some(city) = m.addresses.iter().find_map(|a| a.city.clone()) {
        extra.push(Attribute {
            name: "address1_city".into(),
            value: city,
        });
    }
    Contact {
        first_name: m.given_name.clone(),
        last_name: m.surname.clone(),
        display_name: m.display_name.clone(),
        title: m.job_title.clone(),
        email: m.emails.first().map(|e| e.address.clone()),
        phone: phone(PhoneKind::Business),
        mobile: phone(PhoneKind::Mobile),
        company: None,
        site: None,
        contact_types: Vec::new(),
        active: true,
        extra,
    }
}

fn upsert(id: &str, body: AnyBody, rule: &'static str, reason: &str) -> Outcome {
    Outcome {
        action: IntentAction::Upsert,
        body: Some(body),
        match_keys: vec![format!("anchor:{}", anchor(id))],
        rule,
        reason: reason.to_owned(),
    }
}

fn back(body: AnyBody, rule: &'static str) -> Outcome {
    Outcome {
        action: IntentAction::Upsert,
        body: Some(body),
        match_keys: Vec::new(),
        rule,
        reason:
            "a mailbox item in Dynamics' model: the fields that flow both ways are written back"
                .into(),
    }
}

/// What the ACT rules do with a live item a profile expects to be an `appointment`, a
/// (recurring) `series`, a `task` or a `contact`.
pub fn outcome(id: &str, body: &AnyBody, expected: &'static str) -> Outcome {
    match body {
        AnyBody::Core(ItemBody::Appointment(a)) if expected == "appointment" => upsert(
            id,
            AnyBody::Mailbox(MailboxBody::Event(event_of_appointment(id, a))),
            "appointment-to-event",
            "a Dynamics appointment of the mailbox's owner: kept in the mailbox's calendar",
        ),
        AnyBody::Core(ItemBody::Task(t)) if expected == "task" => upsert(
            id,
            AnyBody::Mailbox(MailboxBody::Todo(todo_of_task(id, t))),
            "task-to-todo",
            "a Dynamics task of the mailbox's owner: kept in the mailbox's tasks",
        ),
        AnyBody::Core(ItemBody::Contact(c)) if expected == "contact" => {
            if !c.active {
                return Outcome {
                    action: IntentAction::Remove,
                    body: None,
                    match_keys: Vec::new(),
                    rule: "contact-inactive",
                    reason: "deactivated in Dynamics: removed from the mailbox's contacts".into(),
                };
            }
            upsert(
                id,
                AnyBody::Mailbox(MailboxBody::Contact(mailbox_contact_of(id, c))),
                "contact-to-mailbox-contact",
                "a Dynamics contact of the mailbox's owner: kept in the mailbox's contacts",
            )
        }
        AnyBody::Mailbox(MailboxBody::Event(e)) if expected == "series" => {
            let series = series_in_mailbox(id, e);
            let key = series.anchor.clone().unwrap_or_else(|| anchor(id));
            Outcome {
                action: IntentAction::Upsert,
                body: Some(AnyBody::Mailbox(MailboxBody::Event(series))),
                match_keys: vec![format!("anchor:{key}")],
                rule: "series-to-series",
                reason: "a recurring series of the mailbox's owner, with its modified and deleted occurrences: kept in the mailbox's calendar (its two-way fields written back as they are)".into(),
            }
        }
        AnyBody::Mailbox(MailboxBody::Event(e)) if expected == "appointment" => back(
            AnyBody::Core(ItemBody::Appointment(appointment_of_event(e))),
            "event-to-appointment-write-back",
        ),
        AnyBody::Mailbox(MailboxBody::Todo(t)) if expected == "task" => back(
            AnyBody::Core(ItemBody::Task(task_of_todo(t))),
            "todo-to-task-write-back",
        ),
        AnyBody::Mailbox(MailboxBody::Contact(m)) if expected == "contact" => back(
            AnyBody::Core(ItemBody::Contact(contact_of_mailbox_contact(m))),
            "mailbox-contact-to-contact-write-back",
        ),
        other => Outcome {
            action: IntentAction::Skip,
            body: None,
            match_keys: Vec::new(),
            rule: "skip-kind",
            reason: format!(
                "this profile keeps {} in step, not a {}",
                match expected {
                    "series" => "recurring series",
                    "appointment" => "appointments",
                    "task" => "tasks",
                    _ => "contacts",
                },
                other.kind_name()
            ),
        },
    }
}
