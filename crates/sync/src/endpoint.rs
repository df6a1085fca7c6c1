//! What the engine needs of the systems it syncs. The production
//! implementations call plugins through the runtime (`plugin_endpoints`);
//! tests may plug in their own.

use syncbridge_model::Intent;
use syncbridge_model::{Item, PluginError};
use syncbridge_model::{Page, WriteOp, WriteResult};

/// Why an endpoint call produced nothing usable.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The plugin answered with a typed error.
    #[error("{}", .0.describe())]
    Plugin(PluginError),
    /// The plugin was stopped (it trapped, ran too long or out of memory);
    /// the runtime's error, kept as it is, says which and what to do.
    #[error(transparent)]
    Stopped(Box<dyn std::error::Error + Send + Sync>),
    /// The process is going away mid-call (used to test crash safety).
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// The host could not make the call at all (a connection that no longer
    /// exists, credentials the loaded master key cannot open, a plugin that
    /// does not compile): never retried, since only an operator can fix it.
    #[error(transparent)]
    Host(Box<dyn std::error::Error + Send + Sync>),
}

impl From<PluginError> for EndpointError {
    fn from(e: PluginError) -> Self {
        EndpointError::Plugin(e)
    }
}

/// Where items come from.
#[allow(async_fn_in_trait)]
pub trait Source {
    /// Reads one page of `scope` from `cursor`.
    async fn pull(
        &self,
        scope: &str,
        cursor: Option<String>,
        max_items: u32,
    ) -> Result<Page, EndpointError>;
    /// Reads items by id (retries of quarantined items).
    async fn lookup(&self, scope: &str, ids: Vec<String>) -> Result<Vec<Item>, EndpointError>;
    /// Writes two-way fields changed in the target back to source items
    /// (`target_id` of each op is the source item's id); one result per op.
    async fn push(&self, scope: &str, ops: Vec<WriteOp>)
        -> Result<Vec<WriteResult>, EndpointError>;
}

/// The rules of the flow.
#[allow(async_fn_in_trait)]
pub trait Transform {
    /// Maps items to intents.
    async fn map(&self, items: Vec<Item>) -> Result<Vec<Intent>, EndpointError>;
}

/// Where items go.
#[allow(async_fn_in_trait)]
pub trait Target {
    /// Finds existing items by keys such as `email:...` or `id:...`.
    async fn lookup(&self, scope: &str, keys: Vec<String>) -> Result<Vec<Item>, EndpointError>;
    /// Reads one page of what changed in `scope` since `cursor` (the
    /// target's own change feed; a full read where the service has none).
    async fn changes(
        &self,
        scope: &str,
        cursor: Option<String>,
        max_items: u32,
    ) -> Result<Page, EndpointError>;
    /// Applies writes; one result per op.
    async fn push(&self, scope: &str, ops: Vec<WriteOp>)
        -> Result<Vec<WriteResult>, EndpointError>;
}
