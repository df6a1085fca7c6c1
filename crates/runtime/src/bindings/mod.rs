//! Host-side bindings of the `syncbridge:plugin` worlds, one module per WIT
//! version, each converting its records to and from the host model
//! ([`syncbridge_model`]) at the runtime boundary.
//!
//! - [`connector`] and [`mapper`]: the core of the current contract (`wit/`,
//!   0.1.5), in host-side worlds that leave out the exports added since, so
//!   plugins built against older minors load through them: their interfaces
//!   did not change, and wasmtime links semver-compatible interface versions.
//!   The connector world's bindings own the shared interfaces; the others
//!   reuse them with `with:`, so a type exists once.
//! - [`connector_fields`] and [`mapper_fields`]: the 0.1.2 exports, bound on
//!   their own and instantiated only for the calls that need them.
//! - [`connector_mailbox`]: the 0.1.3 `mailbox-api` of connectors, and
//!   [`mapper_mailbox`]: the 0.1.4 `mailbox-mapper-api` of mappers, each bound
//!   on its own likewise.
//! - [`connector_owner`]: the 0.1.5 `mailbox-owner-api` of connectors (the
//!   mark of the organization a mailbox syncs with), bound on its own.
//! - [`v0_1_0`]: the 0.1.0 mapper world (a frozen copy in `wit-history/0.1.0`),
//!   whose mappers answer `map-items` with the write policy in route attributes.
//!
//! See docs/wit-versioning.md.

mod lift;
pub mod v0_1_0;

pub(crate) use lift::{Lift, Lower, OtherApi};

/// The `connector` world's core: what every connector since 0.1.0 exports.
/// The world in `wit/` also exports `field-selection` since 0.1.2; this
/// host-side world leaves it out so older connectors load here, and
/// [`connector_fields`] reaches it where a plugin has it.
pub mod connector {
    wasmtime::component::bindgen!({
        inline: "
            package syncbridge:host-bindings;
            world connector {
                import syncbridge:plugin/http@0.1.5;
                import syncbridge:plugin/state@0.1.5;
                import syncbridge:plugin/log@0.1.5;
                import syncbridge:plugin/clock@0.1.5;
                export syncbridge:plugin/connector-api@0.1.5;
            }
        ",
        path: "../../wit",
        world: "connector",
        imports: {
            "syncbridge:plugin/http.send": async | trappable,
            default: trappable,
        },
        exports: { default: async },
    });
}

/// The `mapper` world's core: what every mapper since 0.1.1 exports (0.1.0
/// mappers load through [`v0_1_0`]); `source-fields` is reached through
/// [`mapper_fields`].
pub mod mapper {
    wasmtime::component::bindgen!({
        inline: "
            package syncbridge:host-bindings;
            world mapper {
                import syncbridge:plugin/log@0.1.5;
                export syncbridge:plugin/mapper-api@0.1.5;
            }
        ",
        path: "../../wit",
        world: "mapper",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "syncbridge:plugin/types": super::connector::syncbridge::plugin::types,
            "syncbridge:plugin/log": super::connector::syncbridge::plugin::log,
        },
    });
}

/// The `field-selection` export of connectors built against 0.1.2 or later.
pub mod connector_fields {
    wasmtime::component::bindgen!({
        inline: "
            package syncbridge:host-bindings;
            world connector-fields {
                export syncbridge:plugin/field-selection@0.1.5;
            }
        ",
        path: "../../wit",
        world: "connector-fields",
        exports: { default: async },
        with: {
            "syncbridge:plugin/types": super::connector::syncbridge::plugin::types,
        },
    });
}

/// The `mailbox-api` export of connectors built against 0.1.3 or later (with
/// the `connector-api` it uses types of), bound on its own.
pub mod connector_mailbox {
    wasmtime::component::bindgen!({
        inline: "
            package syncbridge:host-bindings;
            world connector-mailbox {
                export syncbridge:plugin/connector-api@0.1.5;
                export syncbridge:plugin/mailbox-api@0.1.5;
            }
        ",
        path: "../../wit",
        world: "connector-mailbox",
        exports: { default: async },
        with: {
            "syncbridge:plugin/types": super::connector::syncbridge::plugin::types,
        },
    });
}

/// The `mailbox-owner-api` export of connectors built against 0.1.5 or
/// later, bound on its own: the organization marked in a mailbox.
pub mod connector_owner {
    wasmtime::component::bindgen!({
        inline: "
            package syncbridge:host-bindings;
            world connector-owner {
                export syncbridge:plugin/mailbox-owner-api@0.1.5;
            }
        ",
        path: "../../wit",
        world: "connector-owner",
        exports: { default: async },
        with: {
            "syncbridge:plugin/types": super::connector::syncbridge::plugin::types,
        },
    });
}

/// The `source-fields` export of mappers built against 0.1.2 or later.
pub mod mapper_fields {
    wasmtime::component::bindgen!({
        inline: "
            package syncbridge:host-bindings;
            world mapper-fields {
                export syncbridge:plugin/source-fields@0.1.5;
            }
        ",
        path: "../../wit",
        world: "mapper-fields",
        exports: { default: async },
        with: {
            "syncbridge:plugin/types": super::connector::syncbridge::plugin::types,
        },
    });
}

/// The `mailbox-mapper-api` export of mappers built against 0.1.4 or later
/// (with the `mapper-api` it uses types of), bound on its own: their
/// `decide` and `explain` over core and mailbox items.
pub mod mapper_mailbox {
    wasmtime::component::bindgen!({
        inline: "
            package syncbridge:host-bindings;
            world mapper-mailbox {
                export syncbridge:plugin/mapper-api@0.1.5;
                export syncbridge:plugin/mailbox-mapper-api@0.1.5;
            }
        ",
        path: "../../wit",
        world: "mapper-mailbox",
        exports: { default: async },
        with: {
            "syncbridge:plugin/types": super::connector::syncbridge::plugin::types,
            "syncbridge:plugin/mailbox-types": super::connector_mailbox::syncbridge::plugin::mailbox_types,
        },
    });
}

pub use connector::exports::syncbridge::plugin::connector_api;
pub use connector::syncbridge::plugin::types;
pub use mapper::exports::syncbridge::plugin::mapper_api;
pub use mapper_mailbox::exports::syncbridge::plugin::mailbox_mapper_api;
