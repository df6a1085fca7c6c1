//! Error types of the simulator crate.

use thiserror::Error;

/// Everything that can go wrong while configuring or starting a simulator.
#[derive(Debug, Error)]
pub enum SimError {
    /// Binding or serving the listening socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A seed or admin payload was not valid JSON for its schema.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A generator specification such as `tenants=2,users=10` could not be parsed.
    #[error("invalid generator spec `{0}`: expected e.g. `tenants=2,users=10`")]
    GeneratorSpec(String),
    /// A duration such as `50ms` could not be parsed.
    #[error("invalid duration `{0}`: expected e.g. `50ms`, `2s`")]
    Duration(String),
    /// Building TLS material failed.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// A fault rule was not valid.
    #[error("invalid fault rule: {0}")]
    Fault(String),
}
