//! The typed error every plugin operation returns.

use serde::{Deserialize, Serialize};

/// One invalid field in an `invalid` error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Details of a throttled call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    /// How long the caller must wait before trying again, if the service said.
    pub retry_after_ms: Option<u64>,
    pub message: String,
}

/// Details of a rejected input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidInput {
    pub message: String,
    pub fields: Vec<FieldError>,
}

/// An error answered by the remote service that fits no other class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteFailure {
    pub status: u16,
    pub message: String,
}

/// The class decides what the engine does: retry, wait, quarantine the item,
/// or stop the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PluginError {
    /// Credentials were rejected (HTTP 401, bad password, MFA required).
    Auth(String),
    /// Credentials are valid but lack a right (HTTP 403, impersonation denied).
    Forbidden(String),
    /// The addressed record or mailbox does not exist.
    NotFound(String),
    /// The service asked us to slow down.
    Throttled(Throttle),
    /// A failure that may go away when retried (timeouts, 5xx, dropped connections).
    Transient(String),
    /// The input was rejected; retrying the same input will fail again.
    Invalid(InvalidInput),
    /// The record changed underneath us (version or etag mismatch, duplicate).
    Conflict(String),
    /// Any other answer of the remote service.
    Remote(RemoteFailure),
    /// The plugin does not implement this operation.
    Unsupported(String),
}

impl PluginError {
    /// Short name of the error class (`auth`, `throttled`, ...).
    pub fn class(&self) -> &'static str {
        use PluginError::*;
        match self {
            Auth(_) => "auth",
            Forbidden(_) => "forbidden",
            NotFound(_) => "not-found",
            Throttled(_) => "throttled",
            Transient(_) => "transient",
            Invalid(_) => "invalid",
            Conflict(_) => "conflict",
            Remote(_) => "remote",
            Unsupported(_) => "unsupported",
        }
    }

    /// One line for operators.
    pub fn describe(&self) -> String {
        use PluginError::*;
        match self {
            Auth(m) | Forbidden(m) | NotFound(m) | Transient(m) | Conflict(m) | Unsupported(m) => {
                format!("{}: {m}", self.class())
            }
            Throttled(t) => match t.retry_after_ms {
                Some(ms) => format!("throttled (retry after {ms} ms): {}", t.message),
                None => format!("throttled: {}", t.message),
            },
            Invalid(i) => format!("invalid: {}", i.message),
            Remote(r) => format!("remote status {}: {}", r.status, r.message),
        }
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl std::error::Error for PluginError {}
