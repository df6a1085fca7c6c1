//! The profile's options: which way the profile runs, and how Exchange appointments are
//! imported (the MS Exchange extension's Synchronization tab).
//!
//! Parsing is strict (`deny_unknown_fields`): an unknown or mistyped field is refused as
//! `invalid`, naming it, and the derived schema (`additionalProperties: false`) lets the host
//! refuse it when the profile is saved.

use schemars::JsonSchema;
use serde::Deserialize;

/// Which way the profile's items go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// PSA appointments, to-dos, service calls and contacts become mailbox events, to-dos and
    /// contacts (and, for write-back, mailbox events and to-dos become PSA appointments and
    /// tasks again).
    ToExchange,
    /// Exchange appointments (mailbox events) are imported as PSA appointments.
    ToPsa,
}

impl Direction {
    /// The option's value, as written in the options.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ToExchange => "to-exchange",
            Direction::ToPsa => "to-psa",
        }
    }
}

/// How much of an Exchange appointment is imported into the PSA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Import {
    /// "Appointments with ALL detail information": subject, body, location, attendees...
    #[default]
    All,
    /// "Appointments with no detail information": start, end, all-day, show-as and the
    /// recurrence only, under a fixed title.
    NoDetail,
}

impl Import {
    /// The option's value, as written in the options.
    pub fn as_str(self) -> &'static str {
        match self {
            Import::All => "all",
            Import::NoDetail => "no-detail",
        }
    }
}

fn yes() -> bool {
    true
}

/// Options of a `psa-exchange` profile.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `to-exchange`: PSA items become mailbox items; `to-psa`: Exchange appointments become
    /// PSA appointments.
    pub direction: Direction,
    /// `to-psa` only: `all` imports every field, `no-detail` only start, end, all-day, show-as
    /// and the recurrence. Default `all`. Private and confidential appointments are always
    /// imported without detail.
    #[serde(default)]
    pub import: Import,
    /// `to-psa` only: import appointments shown as free time; `false` skips them. Default
    /// `true`.
    #[serde(default = "yes")]
    pub import_free_time: bool,
}
