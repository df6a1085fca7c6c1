//! Writes of a mailbox owner's rows: create (owned by the mailbox's user), update of the named
//! fields, delete; contacts are also deactivated and reactivated. Recurring appointment masters
//! are only updated (their two-way fields): a series flows from Dynamics to Exchange, so its
//! create, delete and pattern are `unsupported`.

use super::scope::{ActScope, Kind};
use super::{appointment, contact, owner, recurring, task};
use crate::emails::write::created;
use crate::{action_name, classify, is_guid, patch_row, request};
use serde_json::{json, Map, Value};
use syncbridge_sdk::http::Method;
use syncbridge_sdk::prelude::*;

/// The row's key of a write other than a create.
pub fn target(kind: Kind, op: &WriteOp) -> Result<String, PluginError> {
    let id = op.target_id.as_deref().map(str::trim).ok_or_else(|| {
        PluginError::invalid_field("target-id", format!("the write needs the {}", kind.key()))
    })?;
    if !is_guid(id) {
        return Err(PluginError::invalid_field(
            "target-id",
            format!("{id:?} is not a {} (a GUID)", kind.key()),
        ));
    }
    Ok(id.to_ascii_lowercase())
}

fn wrong_body(kind: Kind, op: &WriteOp) -> PluginError {
    let what = match kind {
        Kind::Appointments => "an appointment",
        Kind::RecurringAppointments => "an appointment (the series)",
        Kind::Tasks => "a task",
        Kind::Contacts => "a contact",
    };
    match op.body {
        Some(_) => PluginError::invalid_field("body", format!("expected {what}")),
        None => PluginError::invalid_field(
            "body",
            format!("a {} needs {what}'s desired state", action_name(op.action)),
        ),
    }
}

/// The POST body of a new row of `kind` (without its owner).
pub fn create_body(kind: Kind, op: &WriteOp) -> Result<Map<String, Value>, PluginError> {
    match (kind, &op.body) {
        (Kind::Appointments, Some(ItemBody::Appointment(a))) => appointment::create_body(a),
        (Kind::RecurringAppointments, _) => Err(series_refused(op.action)),
        (Kind::Tasks, Some(ItemBody::Task(t))) => task::create_body(t),
        (Kind::Contacts, Some(ItemBody::Contact(c))) => contact::create_body(c),
        _ => Err(wrong_body(kind, op)),
    }
}

/// The PATCH body of an update of the operation's fields.
pub fn update_body(kind: Kind, op: &WriteOp) -> Result<Map<String, Value>, PluginError> {
    if op.fields.is_empty() {
        return Ok(Map::new());
    }
    match (kind, &op.body) {
        (Kind::Appointments, Some(ItemBody::Appointment(a))) => {
            appointment::update_body(a, &op.fields)
        }
        (Kind::RecurringAppointments, Some(ItemBody::Appointment(a))) => {
            recurring::update_body(a, &op.fields)
        }
        (Kind::Tasks, Some(ItemBody::Task(t))) => task::update_body(t, &op.fields),
        (Kind::Contacts, Some(ItemBody::Contact(c))) => contact::update_body(c, &op.fields),
        _ => Err(wrong_body(kind, op)),
    }
}

/// The binding of a new row to its owner.
pub fn owner_binding(owner: &str) -> (String, Value) {
    (
        "ownerid@odata.bind".into(),
        json!(format!("/systemusers({owner})")),
    )
}

/// The refusal of a write of a recurring appointment master other than an update.
pub fn series_refused(action: WriteAction) -> PluginError {
    PluginError::Unsupported(format!(
        "{} is not supported on recurring appointments: a series flows from Dynamics to Exchange only, so this scope only updates an existing series ({}); create, delete or change the pattern of a series in Dynamics",
        action_name(action),
        recurring::FIELDS.join(", ")
    ))
}

/// One write of `scope`.
pub fn write(api: &str, scope: &ActScope, op: &WriteOp) -> Result<WriteOk, PluginError> {
    let kind = scope.kind;
    match (kind, op.action) {
        (Kind::RecurringAppointments, WriteAction::Update) => update(api, kind, op, Map::new()),
        (Kind::RecurringAppointments, action) => Err(series_refused(action)),
        (_, WriteAction::Create) => create(api, scope, op),
        (_, WriteAction::Update) => update(api, kind, op, Map::new()),
        (_, WriteAction::Delete) => delete(api, kind, &target(kind, op)?),
        (Kind::Contacts, WriteAction::Deactivate) => {
            update(api, kind, op, contact::state_body(false))
        }
        (Kind::Contacts, WriteAction::Reactivate) => {
            update(api, kind, op, contact::state_body(true))
        }
        (Kind::Appointments, action) => Err(PluginError::Unsupported(format!(
            "{} is not supported on appointments: this scope creates, updates ({}) and deletes them",
            action_name(action),
            appointment::FIELDS.join(", ")
        ))),
        (Kind::Tasks, action) => Err(PluginError::Unsupported(format!(
            "{} is not supported on tasks: a task is completed or reopened by an update of its status; this scope creates, updates ({}) and deletes tasks",
            action_name(action),
            task::FIELDS.join(", ")
        ))),
    }
}

fn create(api: &str, scope: &ActScope, op: &WriteOp) -> Result<WriteOk, PluginError> {
    let kind = scope.kind;
    let mut body = create_body(kind, op)?;
    let owner = owner::resolve(api, &scope.mailbox)?;
    let (bind, to) = owner_binding(&owner);
    body.insert(bind, to);
    let payload = serde_json::to_vec(&Value::Object(body))
        .map_err(|e| PluginError::invalid(format!("cannot encode the new row: {e}")))?;
    let r = request(
        Method::Post,
        format!("{api}/{}?$select={}", kind.set(), kind.key()),
    )
    .header("Prefer", "return=representation")
    .header("Content-Type", "application/json")
    .body(payload)
    .send()?;
    if !(200..300).contains(&r.status()) {
        return Err(owner::failure(&r, &scope.mailbox, &owner));
    }
    let (id, version) = created(r, kind.key())?;
    let target_id = id.ok_or_else(|| {
        PluginError::Remote(RemoteFailure {
            status: 200,
            message: format!(
                "Dataverse created the row in {} but named no {} (neither in the answer nor in OData-EntityId); find it in Dynamics before trying again, or it is created twice",
                kind.set(),
                kind.key()
            ),
        })
    })?;
    Ok(WriteOk { target_id, version })
}

fn update(
    api: &str,
    kind: Kind,
    op: &WriteOp,
    state: Map<String, Value>,
) -> Result<WriteOk, PluginError> {
    let id = target(kind, op)?;
    let mut body = update_body(kind, op)?;
    body.extend(state);
    if body.is_empty() {
        return Ok(WriteOk {
            target_id: id,
            version: None,
        });
    }
    let version = patch_row(api, kind.set(), kind.key(), &id, body)?;
    Ok(WriteOk {
        target_id: id,
        version,
    })
}

fn delete(api: &str, kind: Kind, id: &str) -> Result<WriteOk, PluginError> {
    let r = request(Method::Delete, format!("{api}/{}({id})", kind.set())).send()?;
    // Already gone is what a delete wants.
    if !(200..300).contains(&r.status()) && r.status() != 404 {
        return Err(classify(&r));
    }
    Ok(WriteOk {
        target_id: id.to_owned(),
        version: None,
    })
}
