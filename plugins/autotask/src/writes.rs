//! Writes of the calendar scopes: Appointments (`POST`/`PATCH /Appointments`, `DELETE
//! /Appointments/{id}`) and to-dos (`POST`/`PATCH /Companies/{companyID}/ToDos`, `DELETE
//! /Companies/{companyID}/ToDos/{id}`). An update writes only the fields it names; a named
//! field that is empty in the body is cleared.

use serde_json::{json, Map, Value};
use syncbridge_sdk::http::{Method, Request};
use syncbridge_sdk::prelude::*;

use super::{checked, item_id, number, target, text, CREDENTIAL};
use crate::calendar::{join_description, split_description};
use crate::changes::format_time;

/// Canonical fields Autotask has no place for: an update naming them writes nothing for them.
pub const IGNORED_EVENT_FIELDS: &[&str] = &[
    "allday",
    "showas",
    "sensitivity",
    "series",
    "recurrence",
    "organizer",
    "attendees",
    "location",
    "categories",
    "reminderminutes",
    "anchor",
];

/// Canonical to-do fields Autotask has no place for.
pub const IGNORED_TODO_FIELDS: &[&str] = &["categories", "anchor", "percentcomplete"];

fn norm(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '-'], "")
}

fn opt_str(v: Option<&str>) -> Value {
    v.map(str::trim)
        .filter(|s| !s.is_empty())
        .map_or(Value::Null, |s| json!(s))
}

fn now() -> String {
    let ms = syncbridge_sdk::clock::now_ms() as i64;
    chrono::DateTime::from_timestamp_millis(ms)
        .map(format_time)
        .unwrap_or_default()
}

fn ok(id: String) -> WriteOk {
    WriteOk {
        target_id: id,
        version: None,
    }
}

/// Deletes, treating "already gone" (404) as done.
fn delete(url: String, id: i64) -> Result<WriteOk, PluginError> {
    let r = Request::new(Method::Delete, url)
        .credential(CREDENTIAL)
        .header("Accept", "application/json")
        .send()?;
    if r.status() == 404 {
        return Ok(ok(id.to_string()));
    }
    checked(r)?;
    Ok(ok(id.to_string()))
}

fn appointment_of(op: &WriteOp) -> Result<Option<&Appointment>, PluginError> {
    match &op.body {
        None => Ok(None),
        Some(ItemBody::Appointment(a)) => Ok(Some(a)),
        Some(_) => Err(PluginError::invalid_field(
            "body",
            "expected an appointment",
        )),
    }
}

/// The Autotask fields of an appointment update naming `fields`.
pub fn appointment_fields(
    a: &Appointment,
    fields: &[String],
) -> Result<Map<String, Value>, PluginError> {
    let mut body = Map::new();
    for name in fields {
        match norm(name).as_str() {
            "subject" | "title" => {
                body.insert(
                    "title".into(),
                    json!(a.subject.as_deref().unwrap_or("").trim()),
                );
            }
            "start" | "startdatetime" => {
                body.insert("startDateTime".into(), json!(a.start.utc));
            }
            "end" | "enddatetime" => {
                body.insert("endDateTime".into(), json!(a.end.utc));
            }
            "body" | "description" => {
                body.insert("description".into(), opt_str(a.body.as_deref()));
            }
            n if IGNORED_EVENT_FIELDS.contains(&n) => {}
            _ => return Err(PluginError::invalid_field(
                name.clone(),
                "not an appointment field; Autotask appointments have subject, start, end and body",
            )),
        }
    }
    Ok(body)
}

/// One appointment write of `resource`'s calendar.
pub fn write_appointment(root: &str, resource: i64, op: &WriteOp) -> Result<WriteOk, PluginError> {
    let appointment = appointment_of(op)?;
    match op.action {
        WriteAction::Create => {
            let a = appointment
                .ok_or_else(|| PluginError::invalid_field("body", "create needs an appointment"))?;
            let mut body =
                appointment_fields(a, &["subject", "start", "end", "body"].map(String::from))?;
            if body["title"] == json!("") {
                body.insert("title".into(), json!("(no subject)"));
            }
            body.insert("resourceID".into(), json!(resource));
            let v = checked(
                Request::post(format!("{root}/Appointments"))
                    .credential(CREDENTIAL)
                    .json(&Value::Object(body))?
                    .send()?,
            )?;
            Ok(ok(item_id(&v)?))
        }
        WriteAction::Update => {
            let a = appointment
                .ok_or_else(|| PluginError::invalid_field("body", "update needs an appointment"))?;
            let id = target(op)?;
            let mut body = appointment_fields(a, &op.fields)?;
            if body.is_empty() {
                return Ok(ok(id.to_string()));
            }
            body.insert("id".into(), json!(id));
            let v = checked(
                Request::patch(format!("{root}/Appointments"))
                    .credential(CREDENTIAL)
                    .json(&Value::Object(body))?
                    .send()?,
            )?;
            Ok(ok(item_id(&v)?))
        }
        WriteAction::Delete => {
            let id = target(op)?;
            delete(format!("{root}/Appointments/{id}"), id)
        }
        WriteAction::Deactivate | WriteAction::Reactivate => Err(PluginError::Unsupported(
            "Autotask appointments are created, updated and deleted, never deactivated".into(),
        )),
    }
}

fn task_of(op: &WriteOp) -> Result<Option<&Task>, PluginError> {
    match &op.body {
        None => Ok(None),
        Some(ItemBody::Task(t)) => Ok(Some(t)),
        Some(_) => Err(PluginError::invalid_field("body", "expected a task")),
    }
}

fn completed_date(t: &Task, current: Option<&str>) -> Value {
    if t.status != TaskStatus::Completed && t.completed.is_none() {
        return Value::Null;
    }
    match (&t.completed, current) {
        (Some(c), _) => json!(c.utc),
        (None, Some(c)) => json!(c),
        (None, None) => json!(now()),
    }
}

/// The Autotask fields of a to-do update naming `fields`, given the current row.
pub fn todo_fields(
    t: &Task,
    fields: &[String],
    current: &Value,
) -> Result<Map<String, Value>, PluginError> {
    let mut body = Map::new();
    let (mut title, mut text_body) =
        split_description(text(current, "activityDescription").as_deref());
    let mut description = false;
    for name in fields {
        match norm(name).as_str() {
            "subject" | "title" => {
                title = t.title.clone();
                description = true;
            }
            "body" => {
                text_body = t.body.clone();
                description = true;
            }
            "start" | "startdatetime" => {
                if let Some(s) = &t.start {
                    body.insert("startDateTime".into(), json!(s.utc));
                }
            }
            "due" | "enddatetime" => {
                if let Some(d) = &t.due {
                    body.insert("endDateTime".into(), json!(d.utc));
                }
            }
            "status" | "completed" | "completeddate" => {
                body.insert(
                    "completedDate".into(),
                    completed_date(t, text(current, "completedDate").as_deref()),
                );
            }
            n if IGNORED_TODO_FIELDS.contains(&n) => {}
            _ => {
                return Err(PluginError::invalid_field(
                    name.clone(),
                    "not a to-do field; Autotask to-dos have subject, body, start, due, status and completed",
                ))
            }
        }
    }
    if description {
        body.insert(
            "activityDescription".into(),
            json!(join_description(&title, text_body.as_deref())),
        );
    }
    Ok(body)
}

/// Where new to-dos go: the company (default 0, the Autotask instance's own company) and the
/// to-do action type.
#[derive(Debug, Clone, Copy)]
pub struct TodoTarget {
    pub resource: i64,
    pub company: i64,
    pub action: Option<i64>,
}

/// The current to-do row (for its company and description).
fn current_todo(root: &str, id: i64) -> Result<Value, PluginError> {
    let v = checked(
        Request::post(format!("{root}/CompanyToDos/query"))
            .credential(CREDENTIAL)
            .json(&json!({"MaxRecords": 1, "filter": [{"op": "eq", "field": "id", "value": id}]}))?
            .send()?,
    )?;
    v["items"]
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .ok_or_else(|| PluginError::NotFound(format!("Autotask has no to-do {id}")))
}

/// One to-do write of `target.resource`'s to-do list.
pub fn write_todo(root: &str, target_of: TodoTarget, op: &WriteOp) -> Result<WriteOk, PluginError> {
    let task = task_of(op)?;
    match op.action {
        WriteAction::Create => {
            let t =
                task.ok_or_else(|| PluginError::invalid_field("body", "create needs a task"))?;
            let action = target_of.action.ok_or_else(|| {
                PluginError::invalid_field(
                    "scope",
                    "a new Autotask to-do needs an action type: add action=<id> to the scope (Admin > Features & Settings > Activities, Notes & To-Dos > Action Types)",
                )
            })?;
            let start = t
                .start
                .as_ref()
                .or(t.due.as_ref())
                .map(|z| z.utc.clone())
                .unwrap_or_else(now);
            let end = t
                .due
                .as_ref()
                .map(|z| z.utc.clone())
                .unwrap_or_else(|| start.clone());
            let mut body = Map::new();
            body.insert(
                "activityDescription".into(),
                json!(join_description(&t.title, t.body.as_deref())),
            );
            body.insert("assignedToResourceID".into(), json!(target_of.resource));
            body.insert("actionType".into(), json!(action));
            body.insert("startDateTime".into(), json!(start));
            body.insert("endDateTime".into(), json!(end));
            let completed = completed_date(t, None);
            if !completed.is_null() {
                body.insert("completedDate".into(), completed);
            }
            let v = checked(
                Request::post(format!("{root}/Companies/{}/ToDos", target_of.company))
                    .credential(CREDENTIAL)
                    .json(&Value::Object(body))?
                    .send()?,
            )?;
            Ok(ok(item_id(&v)?))
        }
        WriteAction::Update => {
            let t =
                task.ok_or_else(|| PluginError::invalid_field("body", "update needs a task"))?;
            let id = target(op)?;
            let current = current_todo(root, id)?;
            let mut body = todo_fields(t, &op.fields, &current)?;
            if body.is_empty() {
                return Ok(ok(id.to_string()));
            }
            let company = number(&current, "companyID")
                .ok_or_else(|| PluginError::NotFound(format!("to-do {id} has no companyID")))?;
            body.insert("id".into(), json!(id));
            let v = checked(
                Request::patch(format!("{root}/Companies/{company}/ToDos"))
                    .credential(CREDENTIAL)
                    .json(&Value::Object(body))?
                    .send()?,
            )?;
            Ok(ok(item_id(&v)?))
        }
        WriteAction::Delete => {
            let id = target(op)?;
            let company = match current_todo(root, id) {
                Ok(row) => number(&row, "companyID"),
                Err(PluginError::NotFound(_)) => return Ok(ok(id.to_string())),
                Err(e) => return Err(e),
            }
            .ok_or_else(|| PluginError::NotFound(format!("to-do {id} has no companyID")))?;
            delete(format!("{root}/Companies/{company}/ToDos/{id}"), id)
        }
        WriteAction::Deactivate | WriteAction::Reactivate => Err(PluginError::Unsupported(
            "Autotask to-dos are completed or deleted, never deactivated".into(),
        )),
    }
}
