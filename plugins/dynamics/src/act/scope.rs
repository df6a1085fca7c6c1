//! The scopes of a mailbox owner's rows: `appointments:mailbox=<address>`,
//! `recurring-appointments:mailbox=<address>`, `tasks:mailbox=<address>` and
//! `contacts:mailbox=<address>` (a scope's name is read without case, `-` or `_`:
//! `recurring_appointments` and `RecurringAppointments` name the recurring one too).

use crate::emails::scope::is_address;
use serde::{Deserialize, Serialize};
use syncbridge_sdk::prelude::*;
use syncbridge_sdk::scope::Scope;

/// Which table of the owner's rows a scope reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `appointments` (key `activityid`), as `appointment` items.
    Appointments,
    /// `tasks` (key `activityid`), as `task` items.
    Tasks,
    /// `contacts` (key `contactid`), as `contact` items.
    Contacts,
    /// `recurringappointmentmasters` (key `activityid`), the series, as `appointment` items
    /// with a recurrence.
    #[serde(rename = "recurring-appointments")]
    RecurringAppointments,
}

impl Kind {
    /// Every kind, in the order errors list them.
    pub const ALL: [Kind; 4] = [
        Kind::Appointments,
        Kind::RecurringAppointments,
        Kind::Tasks,
        Kind::Contacts,
    ];

    /// The scope's name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Appointments => "appointments",
            Kind::RecurringAppointments => "recurring-appointments",
            Kind::Tasks => "tasks",
            Kind::Contacts => "contacts",
        }
    }

    /// The entity set.
    pub fn set(self) -> &'static str {
        match self {
            Kind::RecurringAppointments => "recurringappointmentmasters",
            other => other.name(),
        }
    }

    /// The primary key column.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Appointments | Kind::RecurringAppointments | Kind::Tasks => "activityid",
            Kind::Contacts => "contactid",
        }
    }

    /// The scope's grammar, named by every error about it.
    pub fn grammar(self) -> &'static str {
        match self {
            Kind::Appointments => "appointments:mailbox=<address>",
            Kind::RecurringAppointments => "recurring-appointments:mailbox=<address>",
            Kind::Tasks => "tasks:mailbox=<address>",
            Kind::Contacts => "contacts:mailbox=<address>",
        }
    }

    /// The item kind of the scope.
    pub fn item_kind(self) -> ItemKind {
        match self {
            Kind::Appointments | Kind::RecurringAppointments => ItemKind::Appointment,
            Kind::Tasks => ItemKind::Task,
            Kind::Contacts => ItemKind::Contact,
        }
    }

    /// The kind a scope string names (whatever its options), if any: names compare without
    /// case, `-` or `_`.
    pub fn named_by(scope: &str) -> Option<Kind> {
        let bare = |n: &str| n.trim().to_ascii_lowercase().replace(['-', '_'], "");
        let name = bare(scope.split_once(':').map_or(scope, |(n, _)| n));
        Kind::ALL.into_iter().find(|k| bare(k.name()) == name)
    }
}

/// A parsed scope of a mailbox owner's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActScope {
    /// The table.
    pub kind: Kind,
    /// The mailbox's address, lower case.
    pub mailbox: String,
}

impl ActScope {
    /// Parses `<kind>:mailbox=<address>`; an unknown option, a missing or malformed mailbox is
    /// `invalid`, naming the grammar.
    pub fn parse(scope: &str) -> Result<Self, PluginError> {
        let Some(kind) = Kind::named_by(scope) else {
            return Err(PluginError::invalid_field(
                "scope",
                format!(
                    "{scope:?} is none of the scopes {}",
                    Kind::ALL.map(Kind::grammar).join(", ")
                ),
            ));
        };
        let invalid = |message: String| {
            PluginError::invalid_field("scope", format!("{message}; use {}", kind.grammar()))
        };
        let s = Scope::parse(scope, &["mailbox"], None, kind.grammar())?;
        let mailbox = match s.option("mailbox") {
            None => return Err(invalid(format!("{scope:?} names no mailbox"))),
            Some(m) if !is_address(m) => {
                return Err(invalid(format!("mailbox {m:?} is not an e-mail address")))
            }
            Some(m) => m.to_lowercase(),
        };
        Ok(ActScope { kind, mailbox })
    }
}

impl std::fmt::Display for ActScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:mailbox={}", self.kind.name(), self.mailbox)
    }
}
