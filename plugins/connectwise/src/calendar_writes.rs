//! Writes of the calendar scopes: schedule entries from appointments and activities from tasks
//! (create, update of the named fields by JSON-Patch, delete). Members are read-only.

use serde_json::{json, Map, Value};
use syncbridge_sdk::http::Method;
use syncbridge_sdk::prelude::*;

use crate::calendar::{activity_statuses, CalendarEntity, CalendarScope};
use crate::overlap::{instant, stamp};
use crate::{checked, id_of, json_of, replace, request, target, version_of, with_json, Config};

/// Writes one batch's operations to a calendar scope.
pub struct CalendarWriter<'a> {
    cfg: &'a Config,
    root: &'a str,
    scope: &'a CalendarScope,
    /// The activity statuses, read once per batch when a write needs them.
    statuses: Option<Vec<Value>>,
    /// The schedule statuses, read once per batch when a write needs them.
    schedule_statuses: Option<Vec<Value>>,
}

/// `value` as ConnectWise writes a date-time (`2026-03-01T10:00:00Z`); `field` names it.
fn date(field: &str, value: &str) -> Result<String, PluginError> {
    instant(value).map(stamp).ok_or_else(|| {
        PluginError::invalid_field(
            field,
            format!("{value:?} is not an RFC 3339 date-time such as 2026-03-01T10:00:00Z"),
        )
    })
}

/// The canonical field names an update may carry, per kind, and what ConnectWise cannot hold.
fn field(entity: CalendarEntity, name: &str) -> Result<Option<&'static str>, PluginError> {
    let n = name.to_ascii_lowercase().replace('-', "_");
    let known = match entity {
        CalendarEntity::ScheduleEntries => match n.as_str() {
            "subject" | "name" => Some("subject"),
            "start" => Some("start"),
            "end" => Some("end"),
            "show_as" => Some("show_as"),
            // a schedule entry holds none of these: nothing to write
            "location" | "body" | "categories" | "all_day" | "sensitivity" | "organizer"
            | "attendees" | "recurrence" | "series" | "reminder_minutes" | "anchor" => None,
            _ => return Err(unknown(name, "subject, start, end, show_as")),
        },
        CalendarEntity::Activities => match n.as_str() {
            "title" | "subject" | "name" => Some("title"),
            "body" | "notes" => Some("body"),
            "start" => Some("start"),
            "due" => Some("due"),
            "status" | "completed" | "percent_complete" => Some("status"),
            "categories" | "anchor" => None,
            _ => return Err(unknown(name, "title, body, start, due, status")),
        },
        CalendarEntity::Members => return Err(read_only()),
    };
    Ok(known)
}

fn unknown(name: &str, writable: &str) -> PluginError {
    PluginError::invalid_field(
        name,
        format!("not a field this connector writes; it writes {writable}"),
    )
}

fn read_only() -> PluginError {
    PluginError::Unsupported(
        "members are read-only: ConnectWise members are managed in System > Members".into(),
    )
}

impl<'a> CalendarWriter<'a> {
    pub fn new(cfg: &'a Config, root: &'a str, scope: &'a CalendarScope) -> Self {
        Self {
            cfg,
            root,
            scope,
            statuses: None,
            schedule_statuses: None,
        }
    }

    fn url(&self, id: Option<i64>) -> String {
        match id {
            Some(id) => format!("{}/{}/{id}", self.root, self.scope.path()),
            None => format!("{}/{}", self.root, self.scope.path()),
        }
    }

    /// Applies one operation.
    pub fn write(&mut self, op: &WriteOp) -> Result<WriteOk, PluginError> {
        if self.scope.entity == CalendarEntity::Members {
            return Err(read_only());
        }
        match op.action {
            WriteAction::Create => {
                let body = self.create_body(op)?;
                let row = json_of(
                    with_json(request(self.cfg, Method::Post, self.url(None)), &body).send()?,
                )?;
                let id = id_of(&row);
                if id.is_empty() {
                    return Err(PluginError::Remote(RemoteFailure {
                        status: 201,
                        message: "ConnectWise answered the create without an id".into(),
                    }));
                }
                Ok(WriteOk {
                    target_id: id,
                    version: version_of(&row),
                })
            }
            WriteAction::Update => {
                let id = target(op)?;
                let ops = self.patch_ops(op)?;
                if ops.is_empty() {
                    return Ok(WriteOk {
                        target_id: id.to_string(),
                        version: None,
                    });
                }
                let row = json_of(
                    with_json(
                        request(self.cfg, Method::Patch, self.url(Some(id))),
                        &Value::Array(ops),
                    )
                    .send()?,
                )?;
                Ok(WriteOk {
                    target_id: id.to_string(),
                    version: version_of(&row),
                })
            }
            WriteAction::Delete => {
                let id = target(op)?;
                checked(request(self.cfg, Method::Delete, self.url(Some(id))).send()?)?;
                Ok(WriteOk {
                    target_id: id.to_string(),
                    version: None,
                })
            }
            WriteAction::Deactivate | WriteAction::Reactivate => Err(PluginError::Unsupported(
                "schedule entries and activities are not deactivated: delete them, or close an activity with an update of its status".into(),
            )),
        }
    }

    fn member(&self) -> Value {
        json!({"identifier": self.scope.member.clone().unwrap_or_default()})
    }

    fn create_body(&mut self, op: &WriteOp) -> Result<Value, PluginError> {
        let mut body = Map::new();
        match (&self.scope.entity, &op.body) {
            (CalendarEntity::ScheduleEntries, Some(ItemBody::Appointment(a))) => {
                body.insert("member".into(), self.member());
                body.insert("type".into(), json!({"identifier": self.scope.entry_type}));
                let name = a
                    .subject
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .unwrap_or("(no subject)");
                body.insert("name".into(), json!(name));
                body.insert("dateStart".into(), json!(date("start", &a.start.utc)?));
                body.insert("dateEnd".into(), json!(date("end", &a.end.utc)?));
                // a synced calendar overlaps whatever is booked already
                body.insert("allowScheduleConflictsFlag".into(), json!(true));
                if a.show_as == ShowAs::Tentative {
                    body.insert("status".into(), self.schedule_status(true)?);
                }
            }
            (CalendarEntity::Activities, Some(ItemBody::Task(t))) => {
                body.insert("assignTo".into(), self.member());
                let name = Some(t.title.trim())
                    .filter(|s| !s.is_empty())
                    .unwrap_or("(no subject)");
                body.insert("name".into(), json!(name));
                if let Some(notes) = t.body.as_deref().filter(|b| !b.trim().is_empty()) {
                    body.insert("notes".into(), json!(notes));
                }
                if let Some(s) = &t.start {
                    body.insert("dateStart".into(), json!(date("start", &s.utc)?));
                }
                if let Some(d) = &t.due {
                    body.insert("dateEnd".into(), json!(date("due", &d.utc)?));
                }
                body.insert(
                    "status".into(),
                    self.activity_status(t.status == TaskStatus::Completed)?,
                );
            }
            (CalendarEntity::ScheduleEntries, _) => {
                return Err(PluginError::invalid_field(
                    "body",
                    "create needs an appointment",
                ))
            }
            _ => return Err(PluginError::invalid_field("body", "create needs a task")),
        }
        Ok(Value::Object(body))
    }

    /// The JSON-Patch of the named fields; a field named but empty is cleared where
    /// ConnectWise allows it (notes, an activity's dates) and refused where it does not.
    pub fn patch_ops(&mut self, op: &WriteOp) -> Result<Vec<Value>, PluginError> {
        let mut names = Vec::new();
        for f in &op.fields {
            if let Some(n) = field(self.scope.entity, f)? {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        let mut ops = Vec::new();
        match (&self.scope.entity, &op.body) {
            (CalendarEntity::ScheduleEntries, Some(ItemBody::Appointment(a))) => {
                for n in names {
                    match n {
                        "subject" => ops.push(replace(
                            "name",
                            json!(a.subject.as_deref().unwrap_or("").trim()),
                        )),
                        "start" => {
                            ops.push(replace("dateStart", json!(date("start", &a.start.utc)?)))
                        }
                        "end" => ops.push(replace("dateEnd", json!(date("end", &a.end.utc)?))),
                        _ => {
                            let s = self.schedule_status(a.show_as == ShowAs::Tentative)?;
                            ops.push(replace("status", s));
                        }
                    }
                }
            }
            (CalendarEntity::Activities, Some(ItemBody::Task(t))) => {
                for n in names {
                    match n {
                        "title" => ops.push(replace("name", json!(t.title.trim()))),
                        "body" => ops.push(replace(
                            "notes",
                            t.body.as_deref().map_or(Value::Null, |b| json!(b)),
                        )),
                        "start" => ops.push(replace(
                            "dateStart",
                            match &t.start {
                                Some(s) => json!(date("start", &s.utc)?),
                                None => Value::Null,
                            },
                        )),
                        "due" => ops.push(replace(
                            "dateEnd",
                            match &t.due {
                                Some(d) => json!(date("due", &d.utc)?),
                                None => Value::Null,
                            },
                        )),
                        _ => {
                            let s = self.activity_status(t.status == TaskStatus::Completed)?;
                            ops.push(replace("status", s));
                        }
                    }
                }
            }
            (CalendarEntity::ScheduleEntries, _) => {
                return Err(PluginError::invalid_field(
                    "body",
                    "update needs an appointment",
                ))
            }
            _ => return Err(PluginError::invalid_field("body", "update needs a task")),
        }
        Ok(ops)
    }

    /// `{id}` of the activity status a task of this completion gets: a closed one (`closedFlag`)
    /// or the default open one.
    fn activity_status(&mut self, done: bool) -> Result<Value, PluginError> {
        if self.statuses.is_none() {
            self.statuses = Some(activity_statuses(self.cfg, self.root)?);
        }
        let rows = self.statuses.as_deref().unwrap_or_default();
        let closed = |s: &&Value| s["closedFlag"].as_bool() == Some(true);
        let pick = if done {
            rows.iter().find(closed)
        } else {
            rows.iter()
                .filter(|s| !closed(s) && s["inactiveFlag"].as_bool() != Some(true))
                .max_by_key(|s| s["defaultFlag"].as_bool() == Some(true))
        };
        pick.map(|s| json!({"id": s["id"]})).ok_or_else(|| {
            PluginError::invalid_field(
                "status",
                format!(
                    "ConnectWise has no {} activity status (Setup Tables > Activity Status)",
                    if done { "closed" } else { "open" }
                ),
            )
        })
    }

    /// `{id}` of schedule status `Tentative` or `Firm`.
    fn schedule_status(&mut self, tentative: bool) -> Result<Value, PluginError> {
        if self.schedule_statuses.is_none() {
            let (rows, _) = crate::get_page(
                self.cfg,
                &format!(
                    "{}/schedule/statuses?pageSize={}",
                    self.root,
                    crate::MAX_PAGE
                ),
            )?;
            self.schedule_statuses = Some(rows);
        }
        let name = if tentative { "Tentative" } else { "Firm" };
        self.schedule_statuses
            .iter()
            .flatten()
            .find(|s| s["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .map(|s| json!({"id": s["id"]}))
            .ok_or_else(|| {
                PluginError::invalid_field(
                    "show_as",
                    format!("ConnectWise has no schedule status {name:?} (Setup Tables > Schedule Status)"),
                )
            })
    }
}
