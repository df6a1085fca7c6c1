//! The profile's options: which e-mail a profile processes and, for received mail, the email
//! server profile's "Process Email From".
//!
//! Parsing is strict (`deny_unknown_fields`): an unknown or mistyped field is refused as
//! `invalid`, naming it, and the derived schema lets the host refuse it when the profile is
//! saved.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Deserialize;
use syncbridge_sdk::prelude::*;

/// Which e-mail the profile processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Messages of a mailbox's Inbox become Dynamics e-mail activities.
    IncomingEmail,
    /// Dynamics e-mails pending send are sent through the mailbox.
    OutgoingEmail,
    /// The owner's Dynamics appointments ⇄ the mailbox's calendar.
    Appointments,
    /// The owner's Dynamics recurring series (mailbox events, with their modified and deleted
    /// occurrences) ⇄ the mailbox's calendar.
    RecurringAppointments,
    /// The owner's Dynamics tasks ⇄ the mailbox's tasks.
    Tasks,
    /// The owner's Dynamics contacts → the mailbox's contacts.
    Contacts,
}

impl Kind {
    /// The option's value, as written in the options.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::IncomingEmail => "incoming-email",
            Kind::OutgoingEmail => "outgoing-email",
            Kind::Appointments => "appointments",
            Kind::RecurringAppointments => "recurring-appointments",
            Kind::Tasks => "tasks",
            Kind::Contacts => "contacts",
        }
    }
}

/// "Process Email From": the instant and the text it was given as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessFrom {
    pub at: DateTime<Utc>,
    pub text: String,
}

impl TryFrom<String> for ProcessFrom {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        instant(&text)
            .map(|at| ProcessFrom {
                at,
                text: text.clone(),
            })
            .ok_or_else(|| {
                format!("{text:?} is not an RFC 3339 date and time, e.g. 2026-11-01T00:00:00Z")
            })
    }
}

impl<'de> Deserialize<'de> for ProcessFrom {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ProcessFrom::try_from(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// An RFC 3339 instant, any offset.
pub fn instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Options of a `dynamics-exchange` profile.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `incoming-email`: Inbox messages become e-mail activities; `outgoing-email`: e-mails
    /// pending send in Dynamics are sent through the mailbox.
    pub kind: Kind,
    /// `incoming-email` only: messages received before this RFC 3339 instant are not
    /// processed (the email server profile's "Process Email From"). Absent: all are.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub process_from: Option<ProcessFrom>,
}

impl Options {
    /// Parses and cross-checks the options JSON.
    pub fn parse(json: &str) -> Result<Options, PluginError> {
        let options: Options = syncbridge_sdk::config::parse(json)?;
        if options.kind != Kind::IncomingEmail && options.process_from.is_some() {
            return Err(PluginError::invalid_field(
                "process_from",
                format!(
                    "Process Email From applies to received e-mail only; remove it from a {} profile",
                    options.kind.as_str()
                ),
            ));
        }
        Ok(options)
    }
}
