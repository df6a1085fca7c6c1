//! Task rows (`tasks`) as `task` items and back.
//!
//! - title `subject` (empty without one), body `description`, start `scheduledstart`, due
//!   `scheduledend`, completed `actualend` of a completed task.
//! - status from the state and status reason, whose Open reasons are Exchange's task statuses:
//!   state 1 Completed → completed; status reason 3 In Progress → in-progress, 4 Waiting on
//!   someone else → waiting, 7 Deferred → deferred, 2 Not Started → not-started; any other
//!   (custom) reason of an open task by `percentcomplete`: above 0 in-progress, else
//!   not-started. Writing a status writes its state and reason (completed: 1/5; not started
//!   0/2, in progress 0/3, waiting 0/4, deferred 0/7).
//! - state 2 Canceled is a removal (`deleted`). Dataverse keeps completed and canceled tasks
//!   read-only, so it may refuse an update of a completed task that does not reopen it.

use super::columns::{bounded, field_name, not_written, state, status, time, time_or_null, zoned};
use super::scope::Kind;
use crate::text;
use serde_json::{json, Map, Value};
use syncbridge_sdk::prelude::*;

/// `statecode` of the task table.
pub mod states {
    /// Open.
    pub const OPEN: i64 = 0;
    /// Completed.
    pub const COMPLETED: i64 = 1;
    /// Canceled.
    pub const CANCELED: i64 = 2;
}

/// `statuscode` of the task table.
pub mod statuses {
    /// Not Started (state Open).
    pub const NOT_STARTED: i64 = 2;
    /// In Progress (state Open).
    pub const IN_PROGRESS: i64 = 3;
    /// Waiting on someone else (state Open).
    pub const WAITING: i64 = 4;
    /// Completed (state Completed).
    pub const COMPLETED: i64 = 5;
    /// Canceled (state Canceled).
    pub const CANCELED: i64 = 6;
    /// Deferred (state Open).
    pub const DEFERRED: i64 = 7;
}

/// Fields an update writes.
pub const FIELDS: &[&str] = &["title", "body", "start", "due", "status", "completed"];
/// `subject`'s length in Dataverse.
pub const SUBJECT_MAX: usize = 200;
/// `description`'s length in Dataverse.
pub const DESCRIPTION_MAX: usize = 2000;

/// The status of a task row.
pub fn status_of(row: &Value) -> TaskStatus {
    if state(row) == Some(states::COMPLETED) {
        return TaskStatus::Completed;
    }
    match status(row) {
        Some(statuses::NOT_STARTED) => TaskStatus::NotStarted,
        Some(statuses::IN_PROGRESS) => TaskStatus::InProgress,
        Some(statuses::WAITING) => TaskStatus::Waiting,
        Some(statuses::DEFERRED) => TaskStatus::Deferred,
        _ if row
            .get("percentcomplete")
            .and_then(Value::as_i64)
            .is_some_and(|p| p > 0) =>
        {
            TaskStatus::InProgress
        }
        _ => TaskStatus::NotStarted,
    }
}

/// The `statecode` and `statuscode` of a status.
pub fn codes(s: TaskStatus) -> (i64, i64) {
    match s {
        TaskStatus::NotStarted => (states::OPEN, statuses::NOT_STARTED),
        TaskStatus::InProgress => (states::OPEN, statuses::IN_PROGRESS),
        TaskStatus::Waiting => (states::OPEN, statuses::WAITING),
        TaskStatus::Deferred => (states::OPEN, statuses::DEFERRED),
        TaskStatus::Completed => (states::COMPLETED, statuses::COMPLETED),
    }
}

/// A task row as an item: canceled ones as removals; none without an `activityid`.
pub fn item(row: &Value) -> Option<Item> {
    let id = text(row, "activityid")?.to_ascii_lowercase();
    let version = text(row, "@odata.etag");
    if state(row) == Some(states::CANCELED) {
        return Some(Item {
            id,
            version,
            removed: Some(Removal::Deleted),
            body: None,
        });
    }
    let status = status_of(row);
    Some(Item {
        id,
        version,
        removed: None,
        body: Some(ItemBody::Task(Task {
            title: text(row, "subject").unwrap_or_default(),
            body: row
                .get("description")
                .and_then(Value::as_str)
                .filter(|b| !b.trim().is_empty())
                .map(str::to_owned),
            start: zoned(row, "scheduledstart"),
            due: zoned(row, "scheduledend"),
            completed: match status {
                TaskStatus::Completed => zoned(row, "actualend"),
                _ => None,
            },
            status,
            categories: Vec::new(),
        })),
    })
}

/// The columns and values of the canonical field `field` (`written` as the engine named it).
fn columns(
    t: &Task,
    field: &str,
    written: &str,
) -> Result<Vec<(&'static str, Value)>, PluginError> {
    Ok(match field {
        "title" => vec![("subject", bounded("title", Some(&t.title), SUBJECT_MAX)?)],
        "body" => vec![(
            "description",
            bounded("body", t.body.as_deref(), DESCRIPTION_MAX)?,
        )],
        "start" => vec![("scheduledstart", time_or_null("start", t.start.as_ref())?)],
        "due" => vec![("scheduledend", time_or_null("due", t.due.as_ref())?)],
        "status" => {
            let (state, status) = codes(t.status);
            vec![("statecode", json!(state)), ("statuscode", json!(status))]
        }
        "completed" => vec![(
            "actualend",
            time_or_null("completed", t.completed.as_ref())?,
        )],
        _ => return Err(not_written(written, Kind::Tasks, FIELDS)),
    })
}

/// The POST body of a new task: every field that has a value, its status as its status reason
/// (and, completed, its state and `actualend`).
pub fn create_body(t: &Task) -> Result<Map<String, Value>, PluginError> {
    let mut b = Map::new();
    for field in ["title", "body", "start", "due"] {
        for (name, value) in columns(t, field, field)? {
            if !value.is_null() {
                b.insert(name.into(), value);
            }
        }
    }
    let (state, status) = codes(t.status);
    if state != states::OPEN {
        b.insert("statecode".into(), json!(state));
    }
    b.insert("statuscode".into(), json!(status));
    if t.status == TaskStatus::Completed {
        if let Some(done) = &t.completed {
            b.insert("actualend".into(), time("completed", done)?);
        }
    }
    Ok(b)
}

/// The PATCH body of an update of `fields` to `t` (an absent value clears its column).
pub fn update_body(t: &Task, fields: &[String]) -> Result<Map<String, Value>, PluginError> {
    let mut b = Map::new();
    for name in fields {
        for (column, value) in columns(t, &field_name(name), name)? {
            b.insert(column.into(), value);
        }
    }
    Ok(b)
}
