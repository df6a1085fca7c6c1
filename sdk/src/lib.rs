//! # syncbridge-sdk
//!
//! Everything a syncbridge plugin author needs:
//!
//! - the canonical records and the typed [`PluginError`] of the WIT contract ([`types`]);
//! - the [`Connector`] and [`Mapper`] traits, whose methods default to "not implemented" and
//!   receive the typed configuration ([`Connector::Config`], [`Mapper::Options`]), parsed once
//!   per call; its derived JSON Schema ([`config::schema_of`]) is what the host validates
//!   connections against;
//! - [`export_connector!`] and [`export_mapper!`], which export a type as a component
//!   (they expand to nothing outside `wasm32`, so plugin logic is unit-tested natively through
//!   the same [`exports`] functions);
//! - helpers: [`http`] (JSON/XML bodies, status classification, `Retry-After`), [`paging`],
//!   [`url`] (percent-encoding, origins), [`scope`] (scope strings), [`batch`] (writes that stop
//!   after a throttle), [`state`], [`logging`] (the `log` facade forwarded to the host),
//!   [`clock`], [`appointments`] (a calendar item as a core appointment and as a mailbox
//!   event), and with the `series` feature `series` (recurring series as occurrences).
//!
//! ```ignore
//! use syncbridge_sdk::prelude::*;
//!
//! /// Connection configuration.
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Config {
//!     /// Service root, e.g. https://api.example.com
//!     base_url: String,
//! }
//!
//! struct Hello;
//! impl Connector for Hello {
//!     type Config = Config;
//!     fn describe() -> Description { Description::named("Hello") }
//! }
//! syncbridge_sdk::export_connector!(Hello);
//! ```

pub mod appointments;
pub mod batch;
#[doc(hidden)]
pub mod bindings;
#[cfg(feature = "changes")]
pub mod changes;
pub mod clock;
pub mod config;
pub mod exports;
pub mod http;
pub mod logging;
mod mapped;
pub mod paging;
pub mod scope;
#[cfg(feature = "series")]
pub mod series;
pub mod state;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
mod traits;
pub mod url;
#[cfg(feature = "zones")]
pub mod zones;

pub use log;
pub use schemars;
pub use traits::{Connector, Mapper};

/// Canonical records and errors shared by every plugin.
pub mod types {
    pub use crate::bindings::connector::exports::syncbridge::plugin::connector_api::{
        Description, Finding, ItemKind, Outcome, Page, PullRequest, WriteAction, WriteOk, WriteOp,
        WriteResult,
    };
    pub use crate::bindings::connector::syncbridge::plugin::types::*;
    pub use crate::bindings::mapper::exports::syncbridge::plugin::mailbox_mapper_api::{
        AnyBody, AnyDecision, AnyIntent, AnyItem,
    };
    pub use crate::bindings::mapper::exports::syncbridge::plugin::mapper_api::{
        ContactTypesMode, Decision, Explanation, Intent, IntentAction, WritePolicy,
    };
    /// The canonical mailbox model (WIT 0.1.3).
    pub mod mailbox {
        pub use crate::bindings::connector::exports::syncbridge::plugin::mailbox_api::{
            MailboxPage, MailboxWriteOp,
        };
        pub use crate::bindings::connector::syncbridge::plugin::mailbox_types::*;
    }
}

/// Glob-import this in a plugin.
pub mod prelude {
    pub use crate::types::*;
    pub use crate::{Connector, Mapper};
}

/// A plugin result.
pub type Result<T, E = types::PluginError> = core::result::Result<T, E>;

impl Default for types::WritePolicy {
    /// Update existing target items; write exactly the desired contact types.
    fn default() -> Self {
        Self {
            update_existing: true,
            contact_types: types::ContactTypesMode::Replace,
        }
    }
}

impl types::PluginError {
    /// Short name of the error class, as the host reports it.
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

    /// A one-line description for logs and operators.
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

    /// An `invalid` error without field details.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(types::InvalidInput {
            message: message.into(),
            fields: Vec::new(),
        })
    }

    /// An `invalid` error about one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        Self::Invalid(types::InvalidInput {
            message: format!("{field}: {message}"),
            fields: vec![types::FieldError { field, message }],
        })
    }
}

impl types::Description {
    /// A description with a name and nothing else; fill in the rest with struct update syntax.
    /// `config_schema` is filled by the export from [`Connector::config_schema`].
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            reads: Vec::new(),
            writes: Vec::new(),
            config_schema: "{}".into(),
            credential_slots: Vec::new(),
        }
    }
}

impl types::Finding {
    /// A passed check.
    pub fn ok(check: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            outcome: types::Outcome::Ok,
            cause: None,
            remedy: None,
        }
    }

    /// A failed check with its cause and remedy.
    pub fn failed(
        check: impl Into<String>,
        cause: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Self {
        Self {
            check: check.into(),
            outcome: types::Outcome::Failed,
            cause: Some(cause.into()),
            remedy: Some(remedy.into()),
        }
    }
}

/// Exports a type implementing [`Connector`] as the component's `connector-api`.
///
/// Expands to nothing when not compiling for `wasm32`.
#[macro_export]
macro_rules! export_connector {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::bindings::connector::exports::syncbridge::plugin::connector_api as api;
            use $crate::types as t;
            struct Exported;
            impl api::Guest for Exported {
                fn describe() -> t::Description {
                    $crate::logging::init();
                    $crate::exports::describe::<$ty>()
                }
                fn validate_config(config: String) -> Vec<t::Finding> {
                    $crate::logging::init();
                    $crate::exports::validate_config::<$ty>(&config)
                }
                fn test_connection(config: String) -> Result<Vec<t::Finding>, t::PluginError> {
                    $crate::logging::init();
                    $crate::exports::test_connection::<$ty>(&config)
                }
                fn pull(
                    config: String,
                    request: t::PullRequest,
                ) -> Result<t::Page, t::PluginError> {
                    $crate::logging::init();
                    $crate::exports::pull::<$ty>(&config, request)
                }
                fn lookup_items(
                    config: String,
                    scope: String,
                    keys: Vec<String>,
                ) -> Result<Vec<t::Item>, t::PluginError> {
                    $crate::logging::init();
                    $crate::exports::lookup::<$ty>(&config, &scope, keys)
                }
                fn push(
                    config: String,
                    scope: String,
                    batch: Vec<t::WriteOp>,
                ) -> Result<Vec<t::WriteResult>, t::PluginError> {
                    $crate::logging::init();
                    $crate::exports::push::<$ty>(&config, &scope, batch)
                }
            }
            impl $crate::bindings::connector::exports::syncbridge::plugin::field_selection::Guest
                for Exported
            {
                fn select_fields(
                    config: String,
                    scope: String,
                    fields: Vec<String>,
                ) -> Result<String, t::PluginError> {
                    $crate::logging::init();
                    $crate::exports::select_fields::<$ty>(&config, &scope, fields)
                }
            }
            impl $crate::bindings::connector::exports::syncbridge::plugin::mailbox_api::Guest
                for Exported
            {
                fn mailbox_scopes() -> Vec<String> {
                    $crate::exports::mailbox_scopes::<$ty>()
                }
                fn pull_mailbox(
                    config: String,
                    request: t::PullRequest,
                ) -> Result<t::mailbox::MailboxPage, t::PluginError> {
                    $crate::logging::init();
                    $crate::exports::pull_mailbox::<$ty>(&config, request)
                }
                fn lookup_mailbox_items(
                    config: String,
                    scope: String,
                    keys: Vec<String>,
                ) -> Result<Vec<t::mailbox::MailboxItem>, t::PluginError> {
                    $crate::logging::init();
                    $crate::exports::lookup_mailbox::<$ty>(&config, &scope, keys)
                }
                fn push_mailbox(
                    config: String,
                    scope: String,
                    batch: Vec<t::mailbox::MailboxWriteOp>,
                ) -> Result<Vec<t::WriteResult>, t::PluginError> {
                    $crate::logging::init();
                    $crate::exports::push_mailbox::<$ty>(&config, &scope, batch)
                }
            }
            impl $crate::bindings::connector::exports::syncbridge::plugin::mailbox_owner_api::Guest
                for Exported
            {
                fn read_sync_owner(
                    config: String,
                    mailbox: String,
                ) -> Result<Option<String>, t::PluginError> {
                    $crate::logging::init();
                    $crate::exports::read_sync_owner::<$ty>(&config, &mailbox)
                }
                fn write_sync_owner(
                    config: String,
                    mailbox: String,
                    owner: String,
                ) -> Result<(), t::PluginError> {
                    $crate::logging::init();
                    $crate::exports::write_sync_owner::<$ty>(&config, &mailbox, &owner)
                }
            }
            $crate::bindings::connector::export_connector_world!(
                Exported with_types_in $crate::bindings::connector
            );
        };
    };
}

/// Exports a type implementing [`Mapper`] as the component's `mapper-api`,
/// `source-fields` and `mailbox-mapper-api`.
///
/// Expands to nothing when not compiling for `wasm32`.
#[macro_export]
macro_rules! export_mapper {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::bindings::mapper::exports::syncbridge::plugin::mapper_api as api;
            use $crate::types as t;
            struct Exported;
            impl api::Guest for Exported {
                fn map_items(
                    items: Vec<t::Item>,
                    options: String,
                ) -> Result<Vec<t::Intent>, t::PluginError> {
                    $crate::logging::init();
                    $crate::exports::map::<$ty>(items, &options)
                }
                fn explain(
                    item: t::Item,
                    options: String,
                ) -> Result<t::Explanation, t::PluginError> {
                    $crate::logging::init();
                    $crate::exports::explain::<$ty>(item, &options)
                }
                fn decide(
                    items: Vec<t::Item>,
                    options: String,
                ) -> Result<Vec<t::Decision>, t::PluginError> {
                    $crate::logging::init();
                    $crate::exports::decide::<$ty>(items, &options)
                }
                fn options_schema() -> String {
                    <$ty as $crate::Mapper>::options_schema()
                }
            }
            impl $crate::bindings::mapper::exports::syncbridge::plugin::mailbox_mapper_api::Guest
                for Exported
            {
                fn decide(
                    items: Vec<t::AnyItem>,
                    options: String,
                ) -> Result<Vec<t::AnyDecision>, t::PluginError> {
                    $crate::logging::init();
                    $crate::exports::decide_any::<$ty>(items, &options)
                }
                fn explain(
                    item: t::AnyItem,
                    options: String,
                ) -> Result<t::Explanation, t::PluginError> {
                    $crate::logging::init();
                    $crate::exports::explain_any::<$ty>(item, &options)
                }
            }
            impl $crate::bindings::mapper::exports::syncbridge::plugin::source_fields::Guest
                for Exported
            {
                fn source_fields(options: String) -> Result<Vec<String>, t::PluginError> {
                    $crate::logging::init();
                    $crate::exports::source_fields::<$ty>(&options)
                }
            }
            $crate::bindings::mapper::export_mapper_world!(
                Exported with_types_in $crate::bindings::mapper
            );
        };
    };
}
