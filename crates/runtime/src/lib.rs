//! The plugin runtime: one wasmtime engine, compiled components cached by
//! digest, a fresh store per invocation with memory and time limits, and traps
//! classified by cause; the capabilities the host grants plugins; plugin
//! manifests; and the process's metrics.

pub mod bindings;
pub mod capability;
pub mod config_schema;
mod engine;
mod host;
mod invoke;
mod limits;
pub mod manifest;
mod memo;
pub mod metrics;
mod trap;

pub use engine::{EngineOptions, Runtime, RuntimeError};
pub use host::{ConnectionContext, StateChanges};
pub use invoke::{CallError, Called, LoadedPlugin};
pub use trap::TrapKind;
