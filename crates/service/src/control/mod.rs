//! The control plane: the services the REST API and the CLI share
//! (companies, connections, profiles, mailboxes, flow 1's Exchange profiles and their resources, flow 3's email server profiles and Dynamics mailboxes, plans and their approval,
//! quarantine, tokens) and the records of runs, their leases and alerts.
//!
//! What runs a profile lives in `runner` and `engine`, what decides when in
//! `scheduler`, and the REST API in `api`; they call down into this module,
//! never the other way.

pub mod alerts;
pub mod approval;
pub mod companies;
pub mod conflicts;
pub mod connections;
pub mod dynamics_diagnose;
pub mod dynamics_flow;
pub mod dynamics_mailboxes;
pub mod dynamics_owner;
pub mod email_server_profiles;
pub mod exchange_diagnose;
pub mod exchange_flow;
pub mod exchange_notify;
pub mod exchange_profiles;
pub mod exchange_resources;
pub mod mailboxes;
pub mod plans;
pub mod preview;
pub mod profiles;
pub mod quarantine;
pub mod runs;
pub mod tokens;

use rand::RngCore;

/// Who asks: the whole installation, or one company.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor<'a> {
    /// An operator of the whole installation (CLI, unscoped API token).
    Msp,
    /// An API token scoped to one company.
    Company(&'a str),
}

impl<'a> Actor<'a> {
    /// The company the actor is scoped to.
    pub fn company(self) -> Option<&'a str> {
        match self {
            Actor::Msp => None,
            Actor::Company(c) => Some(c),
        }
    }

    /// Whether the actor sees records of `company` (`None`: the MSP's own).
    pub fn sees(self, company: Option<&str>) -> bool {
        match self {
            Actor::Msp => true,
            Actor::Company(mine) => company == Some(mine),
        }
    }
}

/// A new id: a readable prefix and 12 random hex digits.
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}-{}", hex::encode(bytes))
}

/// Whether a database error is a unique-constraint violation.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation() || d.message().contains("UNIQUE constraint"))
}
