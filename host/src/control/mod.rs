//! The control plane's records: customer companies, runs and their leases,
//! stored plans, API tokens and alerts.
//!
//! Everything here is plain store access; what runs a profile lives in
//! [`crate::engine`], what decides when lives in [`crate::scheduler`], and
//! the REST API in [`crate::api`].

pub mod alerts;
pub mod approval;
pub mod companies;
pub mod connections;
pub mod mailboxes;
pub mod plans;
pub mod preview;
pub mod quarantine;
pub mod runs;
pub mod tokens;

use rand::RngCore;

/// A new id: a readable prefix and 12 random hex digits.
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}-{}", hex::encode(bytes))
}

/// Whether a database error is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation() || d.message().contains("UNIQUE constraint"))
}
