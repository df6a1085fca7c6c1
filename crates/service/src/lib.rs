//! The application layer: one service per aggregate (`control`), the hub that
//! installs plugins and opens connections, the runner and scheduler that start
//! runs, and notifications. The API and the CLI both call it; it knows
//! neither.

pub mod control;
pub mod hub;
pub mod ids;
pub mod notify;
pub mod package;
pub mod plugin_endpoints;
pub mod runner;
pub mod scheduler;
