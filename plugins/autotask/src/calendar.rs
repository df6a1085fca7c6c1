//! Autotask calendar rows as canonical records: Resources → `directory-user`, Appointments →
//! `appointment`, CompanyToDos → `task`, ServiceCalls (with their tickets, tasks and resources)
//! → `service-call`.

use serde_json::Value;
use syncbridge_sdk::prelude::*;

use super::{id_of, number, text};
use crate::changes::parse_time;

/// An Autotask date-time as a canonical UTC instant (`2026-03-02T12:00:00Z`).
pub fn utc(s: &str) -> String {
    parse_time(s)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| s.to_owned())
}

fn zoned(row: &Value, field: &str) -> Option<ZonedTime> {
    text(row, field).map(|s| ZonedTime {
        utc: utc(&s),
        time_zone: None,
    })
}

fn attribute(name: &str, value: String) -> Attribute {
    Attribute {
        name: name.into(),
        value,
    }
}

/// Resource fields carried as attributes (named as Autotask spells them).
pub const RESOURCE_ATTRIBUTES: &[&str] = &[
    "userName",
    "email2",
    "email3",
    "middleName",
    "initials",
    "homePhone",
    "officeExtension",
    "resourceType",
    "userType",
    "licenseType",
    "locationID",
    "hireDate",
    "accountingReferenceID",
];

/// A Resource as a directory user: `user-principal-name` is the login (`userName`), or the
/// e-mail address when the resource has none.
pub fn resource_item(row: &Value) -> Item {
    let first = text(row, "firstName");
    let last = text(row, "lastName");
    let display = [first.as_deref(), last.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let email = text(row, "email");
    let attributes = RESOURCE_ATTRIBUTES
        .iter()
        .filter_map(|f| match &row[*f] {
            Value::String(s) if !s.trim().is_empty() => Some(attribute(f, s.trim().to_owned())),
            Value::Number(n) => Some(attribute(f, n.to_string())),
            _ => None,
        })
        .collect();
    Item {
        id: id_of(row),
        version: None,
        removed: None,
        body: Some(ItemBody::DirectoryUser(DirectoryUser {
            user_principal_name: text(row, "userName")
                .or_else(|| email.clone())
                .unwrap_or_default(),
            mail: email,
            given_name: first,
            surname: last,
            display_name: (!display.is_empty()).then_some(display),
            job_title: text(row, "title"),
            business_phone: text(row, "officePhone"),
            mobile_phone: text(row, "mobilePhone"),
            department: None,
            account_enabled: super::truthy(&row["isActive"]),
            licenses: Vec::new(),
            groups: Vec::new(),
            attributes,
        })),
    }
}

/// An Appointment (a block of a resource's time: title, description, start, end).
pub fn appointment_item(row: &Value) -> Item {
    let start = zoned(row, "startDateTime").unwrap_or(ZonedTime {
        utc: String::new(),
        time_zone: None,
    });
    let end = zoned(row, "endDateTime").unwrap_or_else(|| start.clone());
    Item {
        id: id_of(row),
        version: text(row, "updateDateTime"),
        removed: None,
        body: Some(ItemBody::Appointment(Appointment {
            subject: text(row, "title"),
            start,
            end,
            all_day: false,
            show_as: ShowAs::Busy,
            sensitivity: Sensitivity::Normal,
            recurrence: None,
            organizer: None,
            attendees: Vec::new(),
            location: None,
            body: text(row, "description"),
            categories: Vec::new(),
        })),
    }
}

/// Splits a to-do's `activityDescription` into a title (its first line) and a body (the rest).
pub fn split_description(description: Option<&str>) -> (String, Option<String>) {
    let d = description.unwrap_or_default().trim();
    match d.split_once('\n') {
        Some((title, rest)) => (
            title.trim().to_owned(),
            Some(rest.trim().to_owned()).filter(|r| !r.is_empty()),
        ),
        None => (d.to_owned(), None),
    }
}

/// The `activityDescription` of a title and a body (the inverse of [`split_description`]).
pub fn join_description(title: &str, body: Option<&str>) -> String {
    match body.map(str::trim).filter(|b| !b.is_empty()) {
        Some(b) => format!("{}\n{b}", title.trim()),
        None => title.trim().to_owned(),
    }
}

/// A CompanyToDo as a task: completed when it has a `completedDate`.
pub fn todo_item(row: &Value) -> Item {
    let description = text(row, "activityDescription");
    let (title, body) = split_description(description.as_deref());
    let completed = zoned(row, "completedDate");
    Item {
        id: id_of(row),
        version: text(row, "lastModifiedDate"),
        removed: None,
        body: Some(ItemBody::Task(Task {
            title,
            body,
            start: zoned(row, "startDateTime"),
            due: zoned(row, "endDateTime"),
            status: if completed.is_some() {
                TaskStatus::Completed
            } else {
                TaskStatus::NotStarted
            },
            completed,
            categories: Vec::new(),
        })),
    }
}

/// What a service call is attached to: its tickets and project tasks and their resources.
#[derive(Debug, Default, Clone)]
pub struct CallLinks {
    /// Ticket ids; project tasks as `task:<id>`.
    pub ticket_ids: Vec<String>,
    /// Resource ids of the tickets' and tasks' resources.
    pub resource_ids: Vec<String>,
}

/// A ServiceCall with its links.
pub fn service_call_item(row: &Value, links: CallLinks) -> Item {
    let start = zoned(row, "startDateTime").unwrap_or(ZonedTime {
        utc: String::new(),
        time_zone: None,
    });
    let end = zoned(row, "endDateTime").unwrap_or_else(|| start.clone());
    Item {
        id: id_of(row),
        version: text(row, "lastModifiedDateTime"),
        removed: None,
        body: Some(ItemBody::ServiceCall(ServiceCall {
            description: text(row, "description"),
            start,
            end,
            company: number(row, "companyID").map(|id| CompanyRef {
                id: id.to_string(),
                name: None,
            }),
            ticket_ids: links.ticket_ids,
            resource_ids: links.resource_ids,
            status: number(row, "status").map(|s| s.to_string()),
            canceled: text(row, "canceledDateTime").is_some(),
        })),
    }
}
