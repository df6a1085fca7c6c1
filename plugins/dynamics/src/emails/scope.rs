//! The `emails` scope: `emails:mailbox=<address>,direction=incoming|outgoing`.

use serde::{Deserialize, Serialize};
use syncbridge_sdk::prelude::*;
use syncbridge_sdk::scope::Scope;

/// The scope's name.
pub const NAME: &str = "emails";
/// The scope's grammar, named by every error about it.
pub const GRAMMAR: &str = "emails:mailbox=<address>,direction=incoming|outgoing";

/// Which e-mail activities of the mailbox the scope reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Received e-mail tracked for the mailbox (`directioncode` false).
    Incoming,
    /// E-mail written in Dynamics, pending send through the mailbox (`directioncode` true,
    /// `statuscode` 6 Pending Send).
    Outgoing,
}

impl Direction {
    /// The scope option's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Incoming => "incoming",
            Direction::Outgoing => "outgoing",
        }
    }
}

/// A parsed `emails` scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailScope {
    /// The mailbox's address, lower case.
    pub mailbox: String,
    /// Incoming or outgoing e-mail.
    pub direction: Direction,
}

fn invalid(message: String) -> PluginError {
    PluginError::invalid_field("scope", format!("{message}; use {GRAMMAR}"))
}

impl EmailScope {
    /// Whether `scope` names the `emails` scope (whatever its options).
    pub fn names(scope: &str) -> bool {
        let name = scope.split_once(':').map_or(scope, |(n, _)| n);
        name.trim().to_ascii_lowercase().replace(['-', '_'], "") == NAME
    }

    /// Parses `emails:mailbox=<address>,direction=incoming|outgoing`.
    pub fn parse(scope: &str) -> Result<Self, PluginError> {
        let s = Scope::parse(scope, &["mailbox", "direction"], None, GRAMMAR)?;
        if s.name() != NAME {
            return Err(invalid(format!("{scope:?} is not an emails scope")));
        }
        let mailbox = match s.option("mailbox") {
            None => return Err(invalid(format!("{scope:?} names no mailbox"))),
            Some(m) if !is_address(m) => {
                return Err(invalid(format!("mailbox {m:?} is not an e-mail address")))
            }
            Some(m) => m.to_lowercase(),
        };
        let direction = match s
            .option("direction")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("incoming") => Direction::Incoming,
            Some("outgoing") => Direction::Outgoing,
            None => return Err(invalid(format!("{scope:?} names no direction"))),
            Some(other) => {
                return Err(invalid(format!(
                    "direction {other:?} is neither incoming nor outgoing"
                )))
            }
        };
        Ok(EmailScope { mailbox, direction })
    }
}

impl std::fmt::Display for EmailScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{NAME}:mailbox={},direction={}",
            self.mailbox,
            self.direction.as_str()
        )
    }
}

/// Whether `s` looks like an e-mail address: a local part, `@` and a domain with a dot, without
/// spaces, control characters or angle brackets, at most 320 characters.
pub fn is_address(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && s.len() <= 320
        && domain.contains('.')
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>'))
        && !domain.contains(['@', '\''])
}
