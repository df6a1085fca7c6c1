//! Writes of the `emails` scope: incoming e-mail is created (as received), updated (subject,
//! body) and deleted; outgoing e-mail is only marked sent.
//!
//! Column limits (Dataverse's e-mail table): `subject` 800 characters (longer subjects are cut),
//! `sender` 250, `torecipients` 500 (only the addresses that fit; every recipient is also an
//! activity party), `messageid` 320 (a longer id is refused: cutting it would break lookups).
//! `senton` is read-only in Dataverse (valid neither for create nor for update), so a message's
//! sent time is not written; `actualend` ("can be edited to capture the actual time to create and
//! send the email") takes the received time of an incoming e-mail and the sent time of an
//! outgoing one marked sent.

use super::query::{status, SET};
use super::row::{CC, SENDER, TO};
use super::scope::{Direction, EmailScope};
use super::time::is_rfc3339;
use crate::{action_name, classify, is_guid, patch_row, read_json, request};
use serde_json::{json, Map, Value};
use syncbridge_sdk::http::Method;
use syncbridge_sdk::prelude::*;

/// Fields an update of incoming e-mail writes.
pub const INCOMING_FIELDS: &[&str] = &["subject", "body"];
/// The field an update of outgoing e-mail writes.
pub const OUTGOING_FIELDS: &[&str] = &["sent"];
/// `subject`'s length in Dataverse.
pub const SUBJECT_MAX: usize = 800;
/// `sender`'s length in Dataverse.
pub const SENDER_MAX: usize = 250;
/// `torecipients`' length in Dataverse.
pub const TO_RECIPIENTS_MAX: usize = 500;
/// `messageid`'s length in Dataverse.
pub const MESSAGE_ID_MAX: usize = 320;

/// The body as Dataverse's `description` holds it (HTML): an HTML body as it is, plain text
/// escaped with its line breaks as `<br>`.
pub fn html_of(m: &EmailMessage) -> Option<String> {
    let body = m.body.as_deref()?;
    if m.body_is_html {
        return Some(body.to_owned());
    }
    let mut out = String::with_capacity(body.len());
    for c in body.replace("\r\n", "\n").chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    Some(out)
}

fn subject_of(m: &EmailMessage) -> Value {
    match m.subject.as_deref() {
        Some(s) => json!(s.chars().take(SUBJECT_MAX).collect::<String>()),
        None => Value::Null,
    }
}

/// The addresses that fit a `;`-separated column of `max` characters, in order.
pub fn joined(addresses: &[&str], max: usize) -> String {
    let mut out = String::new();
    for a in addresses {
        let extra = usize::from(!out.is_empty()) + a.chars().count();
        if out.chars().count() + extra > max {
            break;
        }
        if !out.is_empty() {
            out.push(';');
        }
        out.push_str(a);
    }
    out
}

fn time(field: &str, value: Option<&str>) -> Result<Option<String>, PluginError> {
    match value.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) if is_rfc3339(t) => Ok(Some(t.to_owned())),
        Some(t) => Err(PluginError::invalid_field(
            field,
            format!("{t:?} is not an RFC 3339 date-time, e.g. 2026-01-02T03:04:05Z"),
        )),
    }
}

fn message_id(m: &EmailMessage) -> Result<Option<String>, PluginError> {
    match m
        .internet_message_id
        .as_deref()
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        None => Ok(None),
        Some(id) if id.chars().count() > MESSAGE_ID_MAX => Err(PluginError::invalid_field(
            "internet_message_id",
            format!(
                "the internet message id has {} characters; Dataverse's messageid holds at most {MESSAGE_ID_MAX}",
                id.chars().count()
            ),
        )),
        Some(id) => Ok(Some(id.to_owned())),
    }
}

/// The POST body of a received e-mail: `directioncode` false, state Completed, status Received,
/// the participants as activity parties (and `sender`/`torecipients`).
pub fn create_body(m: &EmailMessage) -> Result<Map<String, Value>, PluginError> {
    let mut b = Map::new();
    b.insert("subject".into(), subject_of(m));
    if let Some(html) = html_of(m) {
        b.insert("description".into(), json!(html));
    }
    b.insert("directioncode".into(), json!(false));
    let from = m
        .from
        .as_ref()
        .map(|f| f.address.trim())
        .filter(|a| !a.is_empty());
    if let Some(from) = from {
        if from.chars().count() > SENDER_MAX {
            return Err(PluginError::invalid_field(
                "from",
                format!("the sender's address is longer than Dataverse's {SENDER_MAX} characters"),
            ));
        }
        b.insert("sender".into(), json!(from));
    }
    let clean = |list: &[EmailAddress]| -> Vec<String> {
        list.iter()
            .map(|a| a.address.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect()
    };
    let to = clean(&m.to);
    let cc = clean(&m.cc);
    let to_refs: Vec<&str> = to.iter().map(String::as_str).collect();
    let to_column = joined(&to_refs, TO_RECIPIENTS_MAX);
    if !to_column.is_empty() {
        b.insert("torecipients".into(), json!(to_column));
    }
    if let Some(id) = message_id(m)? {
        b.insert("messageid".into(), json!(id));
    }
    if let Some(received) = time("received", m.received.as_deref())? {
        b.insert("actualend".into(), json!(received));
    }
    b.insert("statecode".into(), json!(status::STATE_COMPLETED));
    b.insert("statuscode".into(), json!(status::RECEIVED));
    let party =
        |address: &str, mask: i64| json!({"addressused": address, "participationtypemask": mask});
    let parties: Vec<Value> = from
        .map(|f| party(f, SENDER))
        .into_iter()
        .chain(to.iter().map(|a| party(a, TO)))
        .chain(cc.iter().map(|a| party(a, CC)))
        .collect();
    if !parties.is_empty() {
        b.insert("email_activity_parties".into(), Value::Array(parties));
    }
    Ok(b)
}

fn field_name(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('-', "_")
}

fn not_written(name: &str, allowed: &[&str], direction: Direction) -> PluginError {
    PluginError::invalid_field(
        name,
        format!(
            "not a field this connector writes on {} e-mail; it writes {}",
            direction.as_str(),
            allowed.join(", ")
        ),
    )
}

/// The PATCH body of an update of `fields` to `m` in `direction`: `subject`/`body` of incoming
/// e-mail; `sent` of outgoing e-mail (state Completed, status Sent, `actualend` the sent time,
/// `messageid` the message's id when given).
pub fn update_body(
    direction: Direction,
    m: &EmailMessage,
    fields: &[String],
) -> Result<Map<String, Value>, PluginError> {
    let mut b = Map::new();
    for name in fields {
        match (direction, field_name(name).as_str()) {
            (Direction::Incoming, "subject") => {
                b.insert("subject".into(), subject_of(m));
            }
            (Direction::Incoming, "body") => {
                b.insert("description".into(), json!(html_of(m)));
            }
            (Direction::Outgoing, "sent") => {
                let sent = time("sent", m.sent.as_deref())?.ok_or_else(|| {
                    PluginError::invalid_field(
                        "sent",
                        "marking an e-mail sent needs the time it was sent (RFC 3339)",
                    )
                })?;
                b.insert("statecode".into(), json!(status::STATE_COMPLETED));
                b.insert("statuscode".into(), json!(status::SENT));
                b.insert("actualend".into(), json!(sent));
                if let Some(id) = message_id(m)? {
                    b.insert("messageid".into(), json!(id));
                }
            }
            (Direction::Incoming, _) => return Err(not_written(name, INCOMING_FIELDS, direction)),
            (Direction::Outgoing, _) => return Err(not_written(name, OUTGOING_FIELDS, direction)),
        }
    }
    Ok(b)
}

fn target(op: &WriteOp) -> Result<String, PluginError> {
    let id =
        op.target_id.as_deref().map(str::trim).ok_or_else(|| {
            PluginError::invalid_field("target-id", "the write needs the activityid")
        })?;
    if !is_guid(id) {
        return Err(PluginError::invalid_field(
            "target-id",
            format!("{id:?} is not an activityid (a GUID)"),
        ));
    }
    Ok(id.to_ascii_lowercase())
}

fn message(op: &WriteOp) -> Result<&EmailMessage, PluginError> {
    match &op.body {
        Some(ItemBody::EmailMessage(m)) => Ok(m),
        Some(_) => Err(PluginError::invalid_field(
            "body",
            "expected an e-mail message",
        )),
        None => Err(PluginError::invalid_field(
            "body",
            format!("a {} needs the e-mail message", action_name(op.action)),
        )),
    }
}

/// The `activityid` in an `OData-EntityId` header (`…/emails(<id>)`).
pub fn entity_id(header: &str) -> Option<String> {
    let inner = header.trim().strip_suffix(')')?;
    let id = &inner[inner.rfind('(')? + 1..];
    is_guid(id).then(|| id.to_ascii_lowercase())
}

/// One write of `scope`.
pub fn write(api: &str, scope: &EmailScope, op: &WriteOp) -> Result<WriteOk, PluginError> {
    match (scope.direction, op.action) {
        (Direction::Incoming, WriteAction::Create) => create(api, message(op)?),
        (_, WriteAction::Update) => update(api, scope.direction, op),
        (Direction::Incoming, WriteAction::Delete) => delete(api, &target(op)?),
        (Direction::Incoming, action) => Err(PluginError::Unsupported(format!(
            "{} is not supported on e-mail activities: Dataverse closes or cancels an e-mail by its state; this scope creates, updates ({}) and deletes incoming e-mail",
            action_name(action),
            INCOMING_FIELDS.join(", ")
        ))),
        (Direction::Outgoing, action) => Err(PluginError::Unsupported(format!(
            "{} is not supported on outgoing e-mail: this scope only marks e-mail pending send as sent (update of the field `sent`); Dynamics users write and delete it",
            action_name(action)
        ))),
    }
}

fn create(api: &str, m: &EmailMessage) -> Result<WriteOk, PluginError> {
    let payload = serde_json::to_vec(&Value::Object(create_body(m)?))
        .map_err(|e| PluginError::invalid(format!("cannot encode the e-mail: {e}")))?;
    let r = request(Method::Post, format!("{api}/{SET}?$select=activityid"))
        .header("Prefer", "return=representation")
        .header("Content-Type", "application/json")
        .body(payload)
        .send()?;
    if !(200..300).contains(&r.status()) {
        return Err(classify(&r));
    }
    let (id, version) = created(r, "activityid")?;
    let target_id = id.ok_or_else(|| {
        PluginError::Remote(RemoteFailure {
            status: 200,
            message: "Dataverse created the e-mail but named no activityid (neither in the answer nor in OData-EntityId); look it up by its message id before trying again".into(),
        })
    })?;
    Ok(WriteOk { target_id, version })
}

/// The id (column `key` of the answer, else `OData-EntityId`) and the etag of
/// the row a successful `POST` created.
pub fn created(
    r: syncbridge_sdk::http::Response,
    key: &str,
) -> Result<(Option<String>, Option<String>), PluginError> {
    let from_header = r.header("OData-EntityId").and_then(entity_id);
    let etag = r.header("ETag").map(str::to_owned);
    if r.status() == 204 {
        return Ok((from_header, etag));
    }
    let row = read_json(r)?;
    let id = row
        .get(key)
        .and_then(Value::as_str)
        .filter(|id| is_guid(id))
        .map(str::to_ascii_lowercase)
        .or(from_header);
    let version = row
        .get("@odata.etag")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or(etag);
    Ok((id, version))
}

fn update(api: &str, direction: Direction, op: &WriteOp) -> Result<WriteOk, PluginError> {
    let id = target(op)?;
    let body = update_body(direction, message(op)?, &op.fields)?;
    if body.is_empty() {
        return Ok(WriteOk {
            target_id: id,
            version: None,
        });
    }
    let version = patch_row(api, SET, "activityid", &id, body)?;
    Ok(WriteOk {
        target_id: id,
        version,
    })
}

fn delete(api: &str, id: &str) -> Result<WriteOk, PluginError> {
    let r = request(Method::Delete, format!("{api}/{SET}({id})")).send()?;
    // Already gone is what a delete wants.
    if !(200..300).contains(&r.status()) && r.status() != 404 {
        return Err(classify(&r));
    }
    Ok(WriteOk {
        target_id: id.to_owned(),
        version: None,
    })
}
