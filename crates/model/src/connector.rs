//! What a connector describes, checks, reads and writes.

use crate::{Item, ItemBody, PluginError};
use serde::{Deserialize, Serialize};

/// Kinds of canonical items a connector reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemKind {
    Contact,
    DirectoryUser,
    Appointment,
    Task,
    ServiceCall,
    EmailMessage,
    Mailbox,
    Company,
    Site,
    ContactType,
}

/// What a connector says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    /// Human name, e.g. "Autotask PSA".
    pub name: String,
    /// Kinds `pull` can return.
    pub reads: Vec<ItemKind>,
    /// Kinds `push` accepts.
    pub writes: Vec<ItemKind>,
    /// JSON Schema of the connection configuration.
    pub config_schema: String,
    /// Credential slots the connector expects, e.g. ["default"].
    pub credential_slots: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Ok,
    Warning,
    Failed,
    Skipped,
}

impl Outcome {
    /// The name operators read (`ok`, `warning`, `failed`, `skipped`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Warning => "warning",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One result of a configuration or connection check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// What was checked, e.g. "credentials", "impersonation".
    pub check: String,
    pub outcome: Outcome,
    /// Why it failed, in words an operator understands.
    pub cause: Option<String>,
    /// What to do about it.
    pub remedy: Option<String>,
}

/// One page to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    /// What to read, e.g. "users", "contacts", "calendar:alice@contoso.com".
    pub scope: String,
    /// The cursor a previous page returned; none starts a full read.
    pub cursor: Option<String>,
    /// Upper bound on items in the page the host wants.
    pub max_items: u32,
}

/// One page read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    pub items: Vec<Item>,
    /// Where the next call continues; durable across restarts.
    pub cursor: Option<String>,
    /// True when more pages follow in this pass.
    pub more: bool,
    /// True when this pass is a full read (every live item is listed).
    pub full: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteAction {
    Create,
    Update,
    Deactivate,
    Reactivate,
    Delete,
}

/// One write sent to a target connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteOp {
    /// Host-chosen id of the operation, echoed in the result.
    pub op_id: String,
    pub action: WriteAction,
    /// Target id for anything but `create`.
    pub target_id: Option<String>,
    /// The desired state (for create/update) of the item.
    pub body: Option<ItemBody>,
    /// Names of the canonical fields to change (for `update` and `reactivate`).
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteOk {
    pub target_id: String,
    pub version: Option<String>,
}

/// The answer to one write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteResult {
    pub op_id: String,
    pub outcome: Result<WriteOk, PluginError>,
}
