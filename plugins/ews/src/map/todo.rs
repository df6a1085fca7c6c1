//! `t:Task` ↔ [`Todo`].

use super::*;
use syncbridge_sdk::types::mailbox::{EventTime, Todo};
use syncbridge_sdk::types::TaskStatus;

/// Canonical todo fields an update may name.
pub const FIELDS: &[&str] = &[
    "subject",
    "body",
    "start",
    "due",
    "status",
    "percent_complete",
    "completed",
    "categories",
    "anchor",
];

/// `t:TaskType` children this connector writes, in schema order.
const ORDER: &[&str] = &[
    "CompleteDate",
    "DueDate",
    "PercentComplete",
    "StartDate",
    "Status",
];

fn status_of(v: Option<&str>) -> TaskStatus {
    match v {
        Some("InProgress") => TaskStatus::InProgress,
        Some("Completed") => TaskStatus::Completed,
        Some("WaitingOnOthers") => TaskStatus::Waiting,
        Some("Deferred") => TaskStatus::Deferred,
        _ => TaskStatus::NotStarted,
    }
}

fn status_text(s: TaskStatus) -> &'static str {
    match s {
        TaskStatus::NotStarted => "NotStarted",
        TaskStatus::InProgress => "InProgress",
        TaskStatus::Completed => "Completed",
        TaskStatus::Waiting => "WaitingOnOthers",
        TaskStatus::Deferred => "Deferred",
    }
}

fn time(item: &mut Elem, name: &str) -> Option<EventTime> {
    item.take_text_of(name)
        .and_then(|t| utc_owned(t).ok())
        .map(|utc| EventTime { utc, zone: None })
}

/// Reads a task (of a copy: see [`take`]).
pub fn read(item: &Elem) -> Todo {
    take(&mut item.clone())
}

/// Reads a task, moving the texts it keeps out of the element.
pub fn take(item: &mut Elem) -> Todo {
    Todo {
        subject: item.take_text_of("Subject").unwrap_or_default(),
        body: take_body(item),
        start: time(item, "StartDate"),
        due: time(item, "DueDate"),
        status: status_of(item.text_of("Status")),
        percent_complete: item
            .text_of("PercentComplete")
            .and_then(|p| p.parse::<f64>().ok())
            .map(|p| p.clamp(0.0, 100.0) as u8)
            .unwrap_or(0),
        completed: item
            .take_text_of("CompleteDate")
            .and_then(|t| utc_owned(t).ok()),
        categories: take_categories(item),
        anchor: take_anchor(item),
    }
}

/// The properties one canonical field writes.
pub fn props(td: &Todo, field: &str) -> Result<Vec<Prop>, PluginError> {
    let at = |name: &'static str, v: Option<&str>| -> Result<Prop, PluginError> {
        let v = v
            .map(|v| instant(field, v).map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string()))
            .transpose()?;
        Ok(Prop::text(&format!("task:{name}"), name, v.as_deref()))
    };
    Ok(match field {
        "subject" => vec![Prop::text("item:Subject", "Subject", Some(&td.subject))],
        "body" => vec![body_prop(td.body.as_ref())],
        "start" => vec![at("StartDate", td.start.as_ref().map(|s| s.utc.as_str()))?],
        "due" => vec![at("DueDate", td.due.as_ref().map(|s| s.utc.as_str()))?],
        "status" => vec![Prop::text(
            "task:Status",
            "Status",
            Some(status_text(td.status)),
        )],
        "percent_complete" => vec![Prop::text(
            "task:PercentComplete",
            "PercentComplete",
            Some(&td.percent_complete.min(100).to_string()),
        )],
        "completed" => vec![at("CompleteDate", td.completed.as_deref())?],
        "categories" => vec![categories_prop(&td.categories)],
        "anchor" => vec![anchor_prop(td.anchor.as_deref())],
        other => return Err(unknown_field(other, FIELDS)),
    })
}

/// The `t:Task` of a CreateItem.
pub fn create_xml(td: &Todo) -> Result<String, PluginError> {
    let mut all = Vec::new();
    for f in FIELDS {
        all.extend(props(td, f)?);
    }
    let order: Vec<&str> = ITEM_ORDER.iter().chain(ORDER).copied().collect();
    Ok(format!("<t:Task>{}</t:Task>", in_schema_order(all, &order)))
}

/// The `UpdateItem` changes of the named fields.
pub fn update_xml(td: &Todo, fields: &[String]) -> Result<String, PluginError> {
    let mut all = Vec::new();
    for f in fields {
        all.extend(props(td, f)?);
    }
    Ok(changes("Task", &all))
}
