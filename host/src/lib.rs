//! The syncbridge host: plugin runtime, capabilities, store and CLI.
pub mod api;
pub mod capability;
pub mod cli;
pub mod console;
pub mod control;
pub mod engine;
pub mod hub;
pub mod ids;
pub mod manifest;
pub mod metrics;
pub mod notify;
pub mod owner_only;
pub mod package;
pub mod plugin_endpoints;
pub mod runner;
pub mod runtime;
pub mod scheduler;
pub mod secrets;
pub mod server;
pub mod store;

/// The host-side model every layer speaks (re-exported for tests and benches).
pub use syncbridge_model as model;
