//! The sync engine: plan → apply with links, cursors and a journal.
//!
//! A run pulls pages from a [`Source`], maps them through a [`Transform`],
//! plans operations against the link table and matched target items, holds
//! the plan when the brakes trip, then applies it page by page: ops are
//! journaled as planned before they are pushed, and links, journal rows and
//! the page's cursor are committed in one transaction after. A run that dies
//! anywhere is recovered by the next: creates that reached the target are
//! found by their match keys and linked, the rest is re-planned.

pub mod endpoint;
pub mod explain;
pub mod fields;
pub mod ledger;
pub mod merge;
pub mod plan;
pub mod profiles;
pub mod retry;
pub mod rules;
pub mod run;

pub use endpoint::{EndpointError, Source, Target, Transform};
pub use ledger::Ledger;
pub use rules::FieldRules;
pub use run::{Engine, RunError, RunReport, RunSpec};
