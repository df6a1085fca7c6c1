//! The plugin runtime: one wasmtime engine, compiled components cached by
//! digest, a fresh store per invocation with memory and time limits, and traps
//! classified by cause.

pub mod bindings;
pub mod config_schema;
mod engine;
mod host;
mod invoke;
mod limits;
mod trap;

pub use engine::{EngineOptions, Runtime, RuntimeError};
pub use host::{ConnectionContext, StateChanges};
pub use invoke::{CallError, Called, LoadedPlugin};
pub use trap::TrapKind;
