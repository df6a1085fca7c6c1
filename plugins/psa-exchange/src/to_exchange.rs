//! `to-exchange`: PSA items as mailbox items anchored `sb:<source id>`, with the PSA fields
//! Exchange has no field for as text; and, for write-back, mailbox events and to-dos as PSA
//! appointments and tasks again.

use crate::details::{with_block, without_block, Lines};
use crate::zones::{utc, zone_of};
use crate::Outcome;
use syncbridge_sdk::prelude::*;
use syncbridge_sdk::types::mailbox::{
    BodyType, Event, EventKind, EventTime, MailboxBody, MailboxContact, Participant, Phone,
    PhoneKind, Response, RichText, Series, Todo,
};

/// The category every service-call event carries.
pub const SERVICE_CALL_CATEGORY: &str = "Service call";

/// The anchor of a PSA-originated mailbox item.
fn anchor(source_id: &str) -> String {
    format!("sb:{source_id}")
}

fn text(content: String) -> RichText {
    RichText {
        content,
        body_type: BodyType::Text,
    }
}

fn event_time(t: &ZonedTime) -> EventTime {
    EventTime {
        utc: t.utc.clone(),
        zone: t
            .time_zone
            .as_deref()
            .filter(|z| !z.trim().is_empty())
            .map(zone_of),
    }
}

fn zoned(t: &EventTime) -> ZonedTime {
    ZonedTime {
        utc: t.utc.clone(),
        time_zone: t.zone.as_ref().map(|z| z.iana.clone()),
    }
}

fn response_of(text: Option<&str>) -> Response {
    match text
        .map(|t| t.trim().to_ascii_lowercase().replace(['_', ' '], "-"))
        .as_deref()
    {
        Some("organizer") => Response::Organizer,
        Some("accepted") => Response::Accepted,
        Some("tentative") | Some("tentatively-accepted") => Response::Tentative,
        Some("declined") => Response::Declined,
        Some("not-responded") | Some("no-response-received") => Response::NotResponded,
        _ => Response::None,
    }
}

/// The response as the core model spells it (`accepted`...); none for `none`.
pub fn response_name(response: Response) -> Option<String> {
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

/// A PSA appointment as a mailbox event: a series master when it recurs.
pub fn event_of_appointment(source_id: &str, a: &Appointment) -> Event {
    let start = event_time(&a.start);
    let series = a.recurrence.as_ref().map(|r| Series {
        rrule: r.rrule.clone(),
        zone: start.zone.clone().unwrap_or_else(utc),
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
        start,
        end: event_time(&a.end),
        all_day: a.all_day,
        show_as: a.show_as,
        sensitivity: a.sensitivity,
        series,
        organizer: a.organizer.as_ref().map(|address| EmailAddress {
            address: address.clone(),
            name: None,
        }),
        attendees: a
            .attendees
            .iter()
            .map(|at| Participant {
                address: EmailAddress {
                    address: at.email.clone(),
                    name: at.name.clone(),
                },
                role: at.role,
                response: response_of(at.response.as_deref()),
            })
            .collect(),
        location: a.location.clone(),
        categories: a.categories.clone(),
        // A core appointment has no field Exchange lacks: no block.
        body: with_block(a.body.as_deref(), &Lines::default()).map(text),
        reminder_minutes: None,
        anchor: Some(anchor(source_id)),
    }
}

/// A PSA to-do as a mailbox to-do.
pub fn todo_of_task(source_id: &str, t: &Task) -> Todo {
    let done = t.status == TaskStatus::Completed;
    Todo {
        subject: t.title.clone(),
        body: with_block(t.body.as_deref(), &Lines::default()).map(text),
        start: t.start.as_ref().map(event_time),
        due: t.due.as_ref().map(event_time),
        status: t.status,
        percent_complete: if done { 100 } else { 0 },
        completed: t.completed.as_ref().map(|c| c.utc.clone()),
        categories: t.categories.clone(),
        anchor: Some(anchor(source_id)),
    }
}

/// `ticket 12` or `tickets 12, task:7`.
fn tickets_phrase(ids: &[String]) -> Option<String> {
    match ids {
        [] => None,
        [one] => Some(format!("ticket {one}")),
        many => Some(format!("tickets {}", many.join(", "))),
    }
}

/// A reference as `Name (id)`, or the id alone.
fn label(id: &str, name: Option<&str>) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => format!("{name} ({id})"),
        None => id.to_owned(),
    }
}

/// A service call as a busy mailbox event (one way), its PSA fields listed in the body.
pub fn event_of_service_call(source_id: &str, c: &ServiceCall) -> Event {
    let description = c
        .description
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty());
    let (first_line, rest) = match description {
        Some(d) => match d.split_once('\n') {
            Some((first, rest)) => (Some(first.trim()), Some(rest.trim())),
            None => (Some(d), None),
        },
        None => (None, None),
    };
    let subject = match (first_line, tickets_phrase(&c.ticket_ids)) {
        (Some(line), _) => format!("Service call: {line}"),
        (None, Some(tickets)) => format!("Service call: {tickets}"),
        (None, None) => format!("Service call {source_id}"),
    };
    let mut lines = Lines::default();
    if let Some(company) = &c.company {
        lines.add("Company", label(&company.id, company.name.as_deref()));
    }
    lines.add_list("Tickets", &c.ticket_ids);
    lines.add_list("Resources", &c.resource_ids);
    if let Some(status) = &c.status {
        lines.add("Status", status);
    }
    if c.canceled {
        lines.add("Canceled", "yes");
    }
    Event {
        kind: EventKind::Single,
        series_id: None,
        original_start: None,
        subject: Some(subject),
        start: event_time(&c.start),
        end: event_time(&c.end),
        all_day: false,
        show_as: ShowAs::Busy,
        sensitivity: Sensitivity::Normal,
        series: None,
        organizer: None,
        attendees: Vec::new(),
        location: None,
        categories: vec![SERVICE_CALL_CATEGORY.into()],
        body: with_block(rest, &lines).map(text),
        reminder_minutes: None,
        anchor: Some(anchor(source_id)),
    }
}

/// Contact attributes that are e-mail addresses (the mailbox contact's second and third).
const EMAIL_ATTRIBUTES: &[&str] = &["emailAddress2", "emailAddress3"];

/// The label of a contact attribute in the notes.
fn attribute_label(name: &str) -> String {
    match name {
        "extension" => "Extension".into(),
        "externalID" => "External ID".into(),
        other => other.into(),
    }
}

fn blank(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A PSA contact as a mailbox contact, its PSA fields in the notes.
pub fn contact_of(source_id: &str, c: &Contact) -> MailboxContact {
    let given = blank(&c.first_name);
    let surname = blank(&c.last_name);
    let display = blank(&c.display_name).or_else(|| {
        let joined = [given.as_deref(), surname.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        (!joined.is_empty()).then_some(joined)
    });
    let mut emails: Vec<EmailAddress> = Vec::new();
    let addresses = std::iter::once(blank(&c.email)).chain(EMAIL_ATTRIBUTES.iter().map(|name| {
        c.extra
            .iter()
            .find(|a| a.name == *name)
            .and_then(|a| blank(&Some(a.value.clone())))
    }));
    for address in addresses.flatten() {
        if !emails
            .iter()
            .any(|e| e.address.eq_ignore_ascii_case(&address))
        {
            emails.push(EmailAddress {
                address,
                name: None,
            });
        }
    }
    let phones = [
        (PhoneKind::Business, blank(&c.phone)),
        (PhoneKind::Mobile, blank(&c.mobile)),
    ]
    .into_iter()
    .filter_map(|(kind, number)| number.map(|number| Phone { kind, number }))
    .collect();

    let mut lines = Lines::default();
    if let Some(company) = &c.company {
        lines.add("Company ID", &company.id);
    }
    if let Some(site) = &c.site {
        lines.add("Site", label(&site.id, site.name.as_deref()));
    }
    let types: Vec<String> = c
        .contact_types
        .iter()
        .map(|t| label(&t.id, t.name.as_deref()))
        .collect();
    lines.add_list("Contact types", &types);
    if !c.active {
        lines.add("Active", "no");
    }
    let others: Vec<Attribute> = c
        .extra
        .iter()
        .filter(|a| !EMAIL_ATTRIBUTES.contains(&a.name.as_str()))
        .cloned()
        .collect();
    lines.add_attributes(&others, attribute_label);

    MailboxContact {
        given_name: given,
        middle_name: None,
        surname,
        display_name: display,
        company_name: c.company.as_ref().and_then(|r| blank(&r.name)),
        job_title: blank(&c.title),
        department: None,
        emails,
        phones,
        addresses: Vec::new(),
        business_home_page: None,
        birthday: None,
        notes: lines.block(),
        categories: Vec::new(),
        anchor: Some(anchor(source_id)),
    }
}

/// A body's text: HTML turned into plain text.
pub fn plain(body: &RichText) -> String {
    match body.body_type {
        BodyType::Text => body.content.clone(),
        BodyType::Html => html_to_text(&body.content),
    }
}

/// Plain text of an HTML body: paragraphs, divs and line breaks become line breaks, other tags
/// go, the common entities are decoded, runs of blank lines become one.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    // Drop what is not shown: head, style and script.
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let Some(close) = after.find('>') else {
            out.push_str(after);
            rest = "";
            break;
        };
        let tag = after[1..close].trim().to_ascii_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        rest = &after[close + 1..];
        if !tag.starts_with('/') && matches!(name.as_str(), "head" | "style" | "script") {
            let end = format!("</{name}");
            match rest.to_ascii_lowercase().find(&end) {
                Some(at) => {
                    rest = &rest[at..];
                    if let Some(gt) = rest.find('>') {
                        rest = &rest[gt + 1..];
                    }
                }
                None => rest = "",
            }
            continue;
        }
        if matches!(
            name.as_str(),
            "br" | "p" | "div" | "li" | "tr" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6"
        ) && (name == "br" || tag.starts_with('/'))
        {
            out.push('\n');
        }
    }
    out.push_str(rest);
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&#160;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
        .replace('\u{a0}', " ");
    let mut lines: Vec<&str> = Vec::new();
    for line in decoded.lines().map(str::trim) {
        if !line.is_empty() || lines.last().is_some_and(|l| !l.is_empty()) {
            lines.push(line);
        }
    }
    while lines.last() == Some(&"") {
        lines.pop();
    }
    lines.join("\n")
}

/// A mailbox event as a PSA appointment with all detail (without the block of PSA fields
/// this mapper wrote), and the route attributes holding what an appointment has no field for:
/// `windows_zone`, `anchor`, `reminder_minutes`.
pub fn appointment_of_event(e: &Event) -> (Appointment, Vec<Attribute>) {
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
    note("anchor", e.anchor.clone());
    note(
        "reminder_minutes",
        e.reminder_minutes.map(|m| m.to_string()),
    );
    let appointment = Appointment {
        subject: e.subject.clone(),
        start: zoned(&e.start),
        end: zoned(&e.end),
        all_day: e.all_day,
        show_as: e.show_as,
        sensitivity: e.sensitivity,
        recurrence: e.series.as_ref().map(|s| Recurrence {
            rrule: s.rrule.clone(),
            exdates: s.deleted.clone(),
        }),
        organizer: e.organizer.as_ref().map(|o| o.address.clone()),
        attendees: e
            .attendees
            .iter()
            .map(|p| Attendee {
                email: p.address.address.clone(),
                name: p.address.name.clone(),
                role: p.role,
                response: response_name(p.response),
            })
            .collect(),
        location: e.location.clone(),
        body: e.body.as_ref().and_then(|b| without_block(&plain(b))),
        categories: e.categories.clone(),
    };
    (appointment, route)
}

/// A mailbox to-do as a PSA task (without the block of PSA fields).
pub fn task_of_todo(t: &Todo) -> Task {
    Task {
        title: t.subject.clone(),
        body: t.body.as_ref().and_then(|b| without_block(&plain(b))),
        start: t.start.as_ref().map(zoned),
        due: t.due.as_ref().map(zoned),
        completed: t.completed.as_ref().map(|c| ZonedTime {
            utc: c.clone(),
            time_zone: None,
        }),
        status: t.status,
        categories: t.categories.clone(),
    }
}

/// `id:<n>` of the PSA item a mailbox item's `sb:` anchor names.
fn psa_key(anchor: Option<&str>) -> Vec<String> {
    anchor
        .and_then(|a| a.strip_prefix("sb:"))
        .filter(|id| !id.is_empty())
        .map(|id| vec![format!("id:{id}")])
        .unwrap_or_default()
}

/// The rule for one item `to-exchange`.
pub fn outcome(source_id: &str, body: &AnyBody) -> Outcome {
    let written = |body: MailboxBody, rule: &'static str, reason: String| Outcome {
        match_keys: vec![format!("anchor:{}", anchor(source_id))],
        ..Outcome::upsert(AnyBody::Mailbox(body), rule, reason)
    };
    match body {
        AnyBody::Core(ItemBody::Appointment(a)) => written(
            MailboxBody::Event(event_of_appointment(source_id, a)),
            "appointment-to-event",
            format!(
                "a PSA appointment is written as a mailbox event anchored {}",
                anchor(source_id)
            ),
        ),
        AnyBody::Core(ItemBody::Task(t)) => written(
            MailboxBody::Todo(todo_of_task(source_id, t)),
            "task-to-todo",
            format!(
                "a PSA to-do is written as a mailbox to-do anchored {}",
                anchor(source_id)
            ),
        ),
        AnyBody::Core(ItemBody::ServiceCall(c)) => written(
            MailboxBody::Event(event_of_service_call(source_id, c)),
            "service-call-to-event",
            format!(
                "a service call is written one way as a busy event in category \"{SERVICE_CALL_CATEGORY}\", its PSA fields listed in the body, anchored {}",
                anchor(source_id)
            ),
        ),
        AnyBody::Core(ItemBody::Contact(c)) => written(
            MailboxBody::Contact(contact_of(source_id, c)),
            "contact-to-mailbox-contact",
            format!(
                "a PSA contact is written as a mailbox contact, its PSA fields in the notes, anchored {}",
                anchor(source_id)
            ),
        ),
        AnyBody::Mailbox(MailboxBody::Event(e)) => {
            let (a, route) = appointment_of_event(e);
            Outcome {
                match_keys: psa_key(e.anchor.as_deref()),
                route,
                ..Outcome::upsert(
                    AnyBody::Core(ItemBody::Appointment(a)),
                    "event-to-appointment-write-back",
                    "a mailbox event is turned back into a PSA appointment with all detail, for writing its date and time back",
                )
            }
        }
        AnyBody::Mailbox(MailboxBody::Todo(t)) => {
            let mut route = Vec::new();
            if let Some(a) = &t.anchor {
                route.push(Attribute {
                    name: "anchor".into(),
                    value: a.clone(),
                });
            }
            Outcome {
                match_keys: psa_key(t.anchor.as_deref()),
                route,
                ..Outcome::upsert(
                    AnyBody::Core(ItemBody::Task(task_of_todo(t))),
                    "todo-to-task-write-back",
                    "a mailbox to-do is turned back into a PSA task, for writing its dates back",
                )
            }
        }
        other => Outcome::skip(
            "skip-kind",
            format!(
                "{} items have no rule to-exchange: it maps appointment, task, service-call and contact items (and event and todo back, for write-back)",
                other.kind_name()
            ),
        ),
    }
}
