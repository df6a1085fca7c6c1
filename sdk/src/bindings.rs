//! Generated bindings of the `syncbridge:plugin` WIT package.
//!
//! The connector world's bindings own the shared `types`, `log` and
//! `mailbox-types` interfaces;
//! the mapper world reuses them, so one Rust type exists per WIT type.

/// Bindings of the `connector` world.
pub mod connector {
    wit_bindgen::generate!({
        world: "connector",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_connector_world",
        default_bindings_module: "syncbridge_sdk::bindings::connector",
        generate_all,
    });
}

/// Bindings of the `mapper` world.
pub mod mapper {
    wit_bindgen::generate!({
        world: "mapper",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_mapper_world",
        default_bindings_module: "syncbridge_sdk::bindings::mapper",
        with: {
            "syncbridge:plugin/types@0.1.5": crate::bindings::connector::syncbridge::plugin::types,
            "syncbridge:plugin/log@0.1.5": crate::bindings::connector::syncbridge::plugin::log,
            "syncbridge:plugin/mailbox-types@0.1.5": crate::bindings::connector::syncbridge::plugin::mailbox_types,
        },
    });
}
