//! Host-side bindings of the `syncbridge:plugin` worlds.
//!
//! The connector world's bindings own the shared interfaces; the mapper world
//! reuses them with `with:`, so a type exists once. When a new major WIT
//! version ships, its bindings go into a sibling module and the runtime
//! dispatches on the plugin's declared version (see docs/wit-versioning.md).

/// The `connector` world.
pub mod connector {
    wasmtime::component::bindgen!({
        world: "connector",
        path: "../wit",
        imports: {
            "syncbridge:plugin/http.send": async | trappable,
            default: trappable,
        },
        exports: { default: async },
        // Plans are stored and served as JSON, bodies included.
        additional_derives: [serde::Serialize, serde::Deserialize],
    });
}

/// The `mapper` world.
pub mod mapper {
    wasmtime::component::bindgen!({
        world: "mapper",
        path: "../wit",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "syncbridge:plugin/types": super::connector::syncbridge::plugin::types,
            "syncbridge:plugin/log": super::connector::syncbridge::plugin::log,
        },
        additional_derives: [serde::Serialize, serde::Deserialize],
    });
}

pub use connector::exports::syncbridge::plugin::connector_api;
pub use connector::syncbridge::plugin::types;
pub use mapper::exports::syncbridge::plugin::mapper_api;

impl types::PluginError {
    /// Short name of the error class (`auth`, `throttled`, ...).
    pub fn class(&self) -> &'static str {
        use types::PluginError::*;
        match self {
            Auth(_) => "auth",
            Forbidden(_) => "forbidden",
            NotFound(_) => "not-found",
            Throttled(_) => "throttled",
            Transient(_) => "transient",
            Invalid(_) => "invalid",
            Conflict(_) => "conflict",
            Remote(_) => "remote",
            Unsupported(_) => "unsupported",
        }
    }

    /// One line for operators.
    pub fn describe(&self) -> String {
        use types::PluginError::*;
        match self {
            Auth(m) | Forbidden(m) | NotFound(m) | Transient(m) | Conflict(m) | Unsupported(m) => {
                format!("{}: {m}", self.class())
            }
            Throttled(t) => match t.retry_after_ms {
                Some(ms) => format!("throttled (retry after {ms} ms): {}", t.message),
                None => format!("throttled: {}", t.message),
            },
            Invalid(i) => format!("invalid: {}", i.message),
            Remote(r) => format!("remote status {}: {}", r.status, r.message),
        }
    }
}
