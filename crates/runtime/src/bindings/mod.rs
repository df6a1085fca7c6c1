//! Host-side bindings of the `syncbridge:plugin` worlds, one module per WIT
//! version, each converting its records to and from the host model
//! ([`syncbridge_model`]) at the runtime boundary.
//!
//! - [`connector`] and [`mapper`]: the current contract (`wit/`, 0.1.1). The
//!   connector world's bindings own the shared interfaces; the mapper world
//!   reuses them with `with:`, so a type exists once. Connectors built against
//!   0.1.0 load through these too: their interfaces did not change, and
//!   wasmtime links semver-compatible interface versions.
//! - [`v0_1_0`]: the 0.1.0 mapper world (a frozen copy in `wit-history/0.1.0`),
//!   whose mappers answer `map-items` with the write policy in route attributes.
//!
//! See docs/wit-versioning.md.

mod lift;
pub mod v0_1_0;

pub(crate) use lift::Lift;

/// The `connector` world.
pub mod connector {
    wasmtime::component::bindgen!({
        world: "connector",
        path: "../../wit",
        imports: {
            "syncbridge:plugin/http.send": async | trappable,
            default: trappable,
        },
        exports: { default: async },
    });
}

/// The `mapper` world.
pub mod mapper {
    wasmtime::component::bindgen!({
        world: "mapper",
        path: "../../wit",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "syncbridge:plugin/types": super::connector::syncbridge::plugin::types,
            "syncbridge:plugin/log": super::connector::syncbridge::plugin::log,
        },
    });
}

pub use connector::exports::syncbridge::plugin::connector_api;
pub use connector::syncbridge::plugin::types;
pub use mapper::exports::syncbridge::plugin::mapper_api;
