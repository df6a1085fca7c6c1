//! The `syncbridge` command: its arguments (`cli`) and how it prints
//! (`console`). Everything else lives in the crates below it, re-exported
//! here under the module names the binary, the tests and the benches use
//! (docs/architecture.md draws the crate graph).
pub mod cli;
pub mod console;

pub use syncbridge_api as api;
pub use syncbridge_api::server;
pub use syncbridge_model as model;
pub use syncbridge_runtime as runtime;
pub use syncbridge_runtime::{capability, manifest, metrics};
pub use syncbridge_secrets as secrets;
pub use syncbridge_service::{
    control, hub, ids, notify, package, plugin_endpoints, runner, scheduler,
};
pub use syncbridge_store as store;
pub use syncbridge_store::owner_only;
pub use syncbridge_sync as engine;
