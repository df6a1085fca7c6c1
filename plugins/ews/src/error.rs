//! What can go wrong talking to EWS, as types; each maps to the engine's error class.

use syncbridge_sdk::types::{PluginError, RemoteFailure, Throttle};

/// An EWS failure: an HTTP status, a SOAP fault or an error response message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EwsError {
    /// `ErrorServerBusy` (fault or response message), or a 503 with `Retry-After`.
    #[error("the Exchange server is busy (ErrorServerBusy); wait {} ms before retrying", backoff_ms.map_or("a while".into(), |m| m.to_string()))]
    ServerBusy { backoff_ms: Option<u64> },
    /// HTTP 401: the server refused the credentials.
    #[error("{}", if *basic_offered {
        "Exchange refused the credentials (HTTP 401): check the user name and password; an account with multi-factor authentication needs an app password"
    } else {
        "Exchange refused the credentials (HTTP 401) and offers no Basic authentication: enable Basic on the EWS virtual directory or use an OAuth credential"
    })]
    Unauthorized {
        /// Whether a `WWW-Authenticate: Basic` challenge came with it.
        basic_offered: bool,
    },
    /// `ErrorImpersonateUserDenied` / `ErrorImpersonationDenied`.
    #[error("the service account may not impersonate this mailbox ({code}): grant it the ApplicationImpersonation role")]
    ImpersonationDenied { code: String },
    /// `ErrorNonExistentMailbox` and kin: the address names no mailbox.
    #[error("no mailbox has this address ({code}{}): check the mailbox address", address.as_deref().map(|a| format!(": {a}")).unwrap_or_default())]
    NoMailbox {
        code: String,
        address: Option<String>,
    },
    /// `ErrorAccessDenied` and other missing rights.
    #[error("access denied ({code}): {message}")]
    AccessDenied { code: String, message: String },
    /// `ErrorItemNotFound`, `ErrorFolderNotFound`.
    #[error("not found ({code}): {message}")]
    NotFound { code: String, message: String },
    /// `ErrorInvalidSyncStateData`: the sync state is no longer usable.
    #[error("the sync state is no longer valid (ErrorInvalidSyncStateData)")]
    InvalidSyncState,
    /// `ErrorIrresolvableConflict` and change-key mismatches.
    #[error("conflict ({code}): {message}")]
    Conflict { code: String, message: String },
    /// The request was refused as invalid (schema validation, bad property, bad id).
    #[error("the request was refused ({code}): {message}")]
    Invalid { code: String, message: String },
    /// Any other error response code.
    #[error("Exchange answered {code}: {message}")]
    Other { code: String, message: String },
    /// The answer is not a SOAP document we can read.
    #[error("Exchange answered HTTP {status} with a body that is not EWS SOAP: {detail}")]
    Malformed { status: u16, detail: String },
}

impl EwsError {
    /// An error response message about `mailbox`, naming it when Exchange did not.
    pub fn of_mailbox(self, mailbox: &str) -> Self {
        match self {
            Self::NoMailbox {
                code,
                address: None,
            } => Self::NoMailbox {
                code,
                address: Some(mailbox.to_owned()),
            },
            e => e,
        }
    }

    /// The error for a response code and its message text.
    pub fn from_code(code: &str, message: &str, backoff_ms: Option<u64>) -> Self {
        let (c, m) = (code.to_owned(), message.to_owned());
        match code {
            "ErrorServerBusy" => Self::ServerBusy { backoff_ms },
            "ErrorImpersonateUserDenied" | "ErrorImpersonationDenied" => {
                Self::ImpersonationDenied { code: c }
            }
            "ErrorNonExistentMailbox"
            | "ErrorMailboxStoreUnavailable"
            | "ErrorInvalidSmtpAddress" => Self::NoMailbox {
                code: c,
                address: None,
            },
            "ErrorAccessDenied"
            | "ErrorInsufficientResources"
            | "ErrorQuotaExceeded"
            | "ErrorSendAsDenied" => Self::AccessDenied {
                code: c,
                message: m,
            },
            "ErrorItemNotFound"
            | "ErrorFolderNotFound"
            | "ErrorCalendarOccurrenceIsDeletedFromRecurrence" => Self::NotFound {
                code: c,
                message: m,
            },
            "ErrorInvalidSyncStateData" => Self::InvalidSyncState,
            "ErrorIrresolvableConflict" | "ErrorChangeKeyRequiredForWriteOperations" => {
                Self::Conflict {
                    code: c,
                    message: m,
                }
            }
            _ if code.starts_with("ErrorInvalid")
                || code.starts_with("ErrorSchemaValidation")
                || code.starts_with("ErrorCannotCreate")
                || code.starts_with("ErrorCalendarInvalid") =>
            {
                Self::Invalid {
                    code: c,
                    message: m,
                }
            }
            _ => Self::Other {
                code: c,
                message: m,
            },
        }
    }
}

impl From<EwsError> for PluginError {
    fn from(e: EwsError) -> Self {
        let message = e.to_string();
        match e {
            EwsError::ServerBusy { backoff_ms } => PluginError::Throttled(Throttle {
                retry_after_ms: backoff_ms,
                message,
            }),
            EwsError::Unauthorized { .. } => PluginError::Auth(message),
            EwsError::ImpersonationDenied { .. } | EwsError::AccessDenied { .. } => {
                PluginError::Forbidden(message)
            }
            EwsError::NoMailbox { .. } | EwsError::NotFound { .. } => {
                PluginError::NotFound(message)
            }
            EwsError::Conflict { .. } => PluginError::Conflict(message),
            EwsError::Invalid { .. } => PluginError::invalid(message),
            EwsError::InvalidSyncState => PluginError::Transient(message),
            EwsError::Other { .. } => PluginError::Remote(RemoteFailure {
                status: 200,
                message,
            }),
            EwsError::Malformed { status, .. } => {
                PluginError::Remote(RemoteFailure { status, message })
            }
        }
    }
}
