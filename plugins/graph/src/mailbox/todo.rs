//! `tasks:mailbox=UPN`: the mailbox's default Microsoft To Do list.
//!
//! The list is the one with `wellknownListName eq 'defaultList'`; its id travels in the cursor.
//! Reads `GET /users/{upn}/todo/lists/{list}/tasks/delta` (the delta link is the cursor; 410 →
//! full pass). To Do tasks carry no extended properties, so the anchor is a `linkedResource`
//! (documented as the task's link to "the object in the partner system"): `applicationName`
//! `syncbridge`, `externalId` = the anchor, read with `$expand=linkedResources`. Task times are
//! read without `Prefer: outlook.timezone`, so each keeps the zone it was written in.
//! Graph tasks have no percentage: `percent-complete` reads 100 for completed tasks, 0
//! otherwise, and is not written.

use serde_json::{json, Map, Value};
use syncbridge_sdk::http::{Method, Request};
use syncbridge_sdk::types::mailbox::*;
use syncbridge_sdk::types::{PluginError, WriteAction, WriteOk};
use syncbridge_sdk::url;

use super::zone::{self, fmt_utc};
use super::*;

/// The `applicationName` of syncbridge's linked resource.
pub const LINK_APP: &str = "syncbridge";

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

fn get_plain(url: &str) -> Result<Value, PluginError> {
    Request::get(url)
        .credential(CREDENTIAL)
        .header("Accept", "application/json")
        .send()
        .and_then(super::mailbox_checked)?
        .json()
}

/// The id of the mailbox's default To Do list.
pub fn default_list(cfg: &Config, mailbox: &str) -> Result<String, PluginError> {
    let url = format!(
        "{}/todo/lists?$filter={}",
        user_root(cfg, mailbox),
        url::encode_query_value("wellknownListName eq 'defaultList'")
    );
    let body = get_plain(&url)?;
    body["value"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["wellknownListName"].as_str() == Some("defaultList"))
        .and_then(|l| text(l, "id"))
        .ok_or_else(|| {
            PluginError::NotFound(format!(
                "mailbox {mailbox} has no default To Do list; open To Do once for the mailbox"
            ))
        })
}

fn tasks_root(cfg: &Config, mailbox: &str, list: &str) -> String {
    format!(
        "{}/todo/lists/{}/tasks",
        user_root(cfg, mailbox),
        url::encode_path_segment(list)
    )
}

/// One page of the tasks scope.
pub fn pull(
    cfg: &Config,
    mailbox: &str,
    mut cursor: DeltaCursor,
    max_items: u32,
) -> Result<MailboxPage, PluginError> {
    if cursor.link.is_none() || cursor.list.is_none() {
        let list = default_list(cfg, mailbox)?;
        cursor = DeltaCursor {
            link: Some(format!("{}/delta", tasks_root(cfg, mailbox, &list))),
            full: true,
            list: Some(list),
            ..DeltaCursor::default()
        };
    }
    let list = cursor.list.clone().unwrap_or_default();
    let link = cursor.link.clone().unwrap_or_default();
    let (values, next, more) = match read_delta(cfg, &link, max_items, false) {
        Ok(DeltaRead::Gone) | Err(PluginError::NotFound(_)) => return Ok(restart_page()),
        Ok(DeltaRead::Page { values, link, more }) => (values, link, more),
        Err(e) => return Err(e),
    };
    let mut items = Vec::new();
    for v in &values {
        let Some(id) = v["id"].as_str() else { continue };
        items.extend(if v.get("@removed").is_some() {
            vec![removed(id)]
        } else {
            read(cfg, mailbox, &list, id)?
        });
    }
    Ok(delta_page(items, cursor, next, more))
}

fn read(
    cfg: &Config,
    mailbox: &str,
    list: &str,
    id: &str,
) -> Result<Vec<MailboxItem>, PluginError> {
    let url = format!(
        "{}/{}?$expand=linkedResources",
        tasks_root(cfg, mailbox, list),
        url::encode_path_segment(id)
    );
    Ok(vec![match get_plain(&url) {
        Ok(v) => item(&v),
        Err(PluginError::NotFound(_)) => removed(id),
        Err(e) => return Err(e),
    }])
}

fn item(v: &Value) -> MailboxItem {
    MailboxItem {
        id: v["id"].as_str().unwrap_or_default().to_owned(),
        version: version_of(v),
        removed: None,
        body: Some(MailboxBody::Todo(map_todo(v))),
    }
}

/// A task by id in the default list.
pub fn by_id(cfg: &Config, mailbox: &str, id: &str) -> Result<Vec<MailboxItem>, PluginError> {
    read(cfg, mailbox, &default_list(cfg, mailbox)?, id)
}

/// Tasks of the default list whose syncbridge link has `externalId` `value`.
pub fn by_anchor(
    cfg: &Config,
    mailbox: &str,
    value: &str,
) -> Result<Vec<MailboxItem>, PluginError> {
    let list = default_list(cfg, mailbox)?;
    let url = format!(
        "{}?$expand=linkedResources",
        tasks_root(cfg, mailbox, &list)
    );
    let mut out = Vec::new();
    let mut next = Some(url);
    while let Some(u) = next.take() {
        let body = get_plain(&u)?;
        for v in body["value"].as_array().into_iter().flatten() {
            if anchor_link(v).is_some_and(|(_, a)| a == value) {
                out.push(item(v));
            }
        }
        next = body["@odata.nextLink"]
            .as_str()
            .map(|n| syncbridge_sdk::paging::same_origin(cfg.root(), n))
            .transpose()?;
    }
    Ok(out)
}

/// The syncbridge linked resource: its id and `externalId`.
fn anchor_link(v: &Value) -> Option<(String, String)> {
    v["linkedResources"]
        .as_array()?
        .iter()
        .find(|l| l["applicationName"].as_str() == Some(LINK_APP))
        .map(|l| {
            (
                l["id"].as_str().unwrap_or_default().to_owned(),
                l["externalId"].as_str().unwrap_or_default().to_owned(),
            )
        })
}

fn time_of(v: &Value) -> Option<EventTime> {
    let utc = zone::dttz_to_utc(v)?;
    let z = v["timeZone"]
        .as_str()
        .filter(|z| !z.eq_ignore_ascii_case("UTC"))
        .and_then(zone::zone_of);
    Some(EventTime {
        utc: fmt_utc(utc),
        zone: z,
    })
}

fn status(s: Option<&str>) -> TaskStatus {
    match s.unwrap_or_default() {
        "inProgress" => TaskStatus::InProgress,
        "completed" => TaskStatus::Completed,
        "waitingOnOthers" => TaskStatus::Waiting,
        "deferred" => TaskStatus::Deferred,
        _ => TaskStatus::NotStarted,
    }
}

fn status_name(s: TaskStatus) -> &'static str {
    match s {
        TaskStatus::NotStarted => "notStarted",
        TaskStatus::InProgress => "inProgress",
        TaskStatus::Completed => "completed",
        TaskStatus::Waiting => "waitingOnOthers",
        TaskStatus::Deferred => "deferred",
    }
}

/// A Graph `todoTask` (read with `$expand=linkedResources`) as the canonical todo.
pub fn map_todo(v: &Value) -> Todo {
    let status = status(v["status"].as_str());
    Todo {
        subject: v["title"].as_str().unwrap_or_default().to_owned(),
        body: rich_text(&v["body"]),
        start: time_of(&v["startDateTime"]),
        due: time_of(&v["dueDateTime"]),
        status,
        percent_complete: if status == TaskStatus::Completed {
            100
        } else {
            0
        },
        completed: zone::dttz_to_utc(&v["completedDateTime"]).map(fmt_utc),
        categories: strings(v, "categories"),
        anchor: anchor_link(v).map(|(_, a)| a).filter(|a| !a.is_empty()),
    }
}

fn dttz(t: Option<&EventTime>, field: &str) -> Result<Value, PluginError> {
    match t {
        Some(t) => zone::to_dttz(t, false)
            .ok_or_else(|| PluginError::invalid_field(field, "not an RFC 3339 instant")),
        None => Ok(Value::Null),
    }
}

/// The Graph JSON writing the fields of `op` except the anchor (a linked resource).
pub fn todo_json(t: &Todo, op: &MailboxWriteOp) -> Result<Value, PluginError> {
    check_fields(op, FIELDS)?;
    let mut o = Map::new();
    let w = |f: &str| named(op, f);
    if w("subject") {
        o.insert("title".into(), json!(t.subject));
    }
    if w("body") {
        o.insert("body".into(), item_body(t.body.as_ref()));
    }
    if w("start") {
        o.insert("startDateTime".into(), dttz(t.start.as_ref(), "start")?);
    }
    if w("due") {
        o.insert("dueDateTime".into(), dttz(t.due.as_ref(), "due")?);
    }
    if w("status") {
        o.insert("status".into(), json!(status_name(t.status)));
    }
    if w("completed") {
        let c = t.completed.as_ref().map(|c| EventTime {
            utc: c.clone(),
            zone: None,
        });
        o.insert("completedDateTime".into(), dttz(c.as_ref(), "completed")?);
    }
    if w("categories") {
        o.insert("categories".into(), json!(t.categories));
    }
    if op.action == WriteAction::Create {
        if let Some(a) = t.anchor.as_deref().filter(|a| !a.is_empty()) {
            o.insert("linkedResources".into(), json!([link_json(a)]));
        }
    }
    Ok(Value::Object(o))
}

fn link_json(anchor: &str) -> Value {
    json!({"applicationName": LINK_APP, "displayName": "syncbridge link", "externalId": anchor})
}

/// Writes the anchor of task `url` as its syncbridge linked resource (none removes it).
fn write_anchor(url: &str, anchor: Option<&str>) -> Result<(), PluginError> {
    let links = get_plain(&format!("{url}/linkedResources"))?;
    let existing = links["value"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["applicationName"].as_str() == Some(LINK_APP))
        .and_then(|l| text(l, "id"));
    let anchor = anchor.filter(|a| !a.is_empty());
    match (existing, anchor) {
        (Some(id), Some(a)) => {
            send_write(
                Method::Patch,
                &format!("{url}/linkedResources/{}", url::encode_path_segment(&id)),
                Some(&json!({"externalId": a})),
            )?;
        }
        (Some(id), None) => {
            send_write(
                Method::Delete,
                &format!("{url}/linkedResources/{}", url::encode_path_segment(&id)),
                None,
            )?;
        }
        (None, Some(a)) => {
            send_write(
                Method::Post,
                &format!("{url}/linkedResources"),
                Some(&link_json(a)),
            )?;
        }
        (None, None) => {}
    }
    Ok(())
}

/// Applies one write to the mailbox's default To Do list.
pub fn write(cfg: &Config, mailbox: &str, op: &MailboxWriteOp) -> Result<WriteOk, PluginError> {
    let root = tasks_root(cfg, mailbox, &default_list(cfg, mailbox)?);
    let todo = || match &op.body {
        Some(MailboxBody::Todo(t)) => Ok(t),
        _ => Err(wrong_body("todo")),
    };
    match op.action {
        WriteAction::Create => {
            let body = todo_json(todo()?, op)?;
            Ok(write_ok(&send_write(Method::Post, &root, Some(&body))?, ""))
        }
        WriteAction::Update => {
            let id = target(op)?;
            let t = todo()?;
            let body = todo_json(t, op)?;
            let url = format!("{root}/{}", url::encode_path_segment(id));
            let answer = if body.as_object().is_some_and(|o| !o.is_empty()) {
                send_write(Method::Patch, &url, Some(&body))?
            } else {
                Value::Null
            };
            if named(op, "anchor") {
                write_anchor(&url, t.anchor.as_deref())?;
            }
            Ok(write_ok(&answer, id))
        }
        WriteAction::Delete => {
            let id = target(op)?;
            let url = format!("{root}/{}", url::encode_path_segment(id));
            match send_write(Method::Delete, &url, None) {
                Ok(_) | Err(PluginError::NotFound(_)) => Ok(WriteOk {
                    target_id: id.to_owned(),
                    version: None,
                }),
                Err(e) => Err(e),
            }
        }
        other => Err(unsupported_action(other)),
    }
}
