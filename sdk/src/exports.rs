//! The string-level entry points that [`export_connector!`](crate::export_connector)
//! and [`export_mapper!`](crate::export_mapper) export: each parses the
//! configuration once and calls the trait method with it.
//!
//! Call them in native tests to go through the same parsing as the host's calls.

use crate::types::*;
use crate::{Connector, Mapper};

/// `describe`, with the configuration schema of [`Connector::config_schema`].
pub fn describe<C: Connector>() -> Description {
    Description {
        config_schema: C::config_schema(),
        ..C::describe()
    }
}

/// `validate-config`.
pub fn validate_config<C: Connector>(config: &str) -> Vec<Finding> {
    C::validate_config(config)
}

/// `test-connection`.
pub fn test_connection<C: Connector>(config: &str) -> Result<Vec<Finding>, PluginError> {
    C::test_connection(&C::parse_config(config)?)
}

/// `pull`.
pub fn pull<C: Connector>(config: &str, request: PullRequest) -> Result<Page, PluginError> {
    C::pull(&C::parse_config(config)?, request)
}

/// `lookup-items`.
pub fn lookup<C: Connector>(
    config: &str,
    scope: &str,
    keys: Vec<String>,
) -> Result<Vec<Item>, PluginError> {
    C::lookup(&C::parse_config(config)?, scope, keys)
}

/// `push`.
pub fn push<C: Connector>(
    config: &str,
    scope: &str,
    batch: Vec<WriteOp>,
) -> Result<Vec<WriteResult>, PluginError> {
    C::push(&C::parse_config(config)?, scope, batch)
}

/// `select-fields` (WIT 0.1.2).
pub fn select_fields<C: Connector>(
    config: &str,
    scope: &str,
    fields: Vec<String>,
) -> Result<String, PluginError> {
    C::select_fields(&C::parse_config(config)?, scope, fields)
}

/// `read-sync-owner` (WIT 0.1.5).
pub fn read_sync_owner<C: Connector>(
    config: &str,
    mailbox: &str,
) -> Result<Option<String>, PluginError> {
    C::read_sync_owner(&C::parse_config(config)?, mailbox)
}

/// `write-sync-owner` (WIT 0.1.5).
pub fn write_sync_owner<C: Connector>(
    config: &str,
    mailbox: &str,
    owner: &str,
) -> Result<(), PluginError> {
    C::write_sync_owner(&C::parse_config(config)?, mailbox, owner)
}

/// `mailbox-scopes` (WIT 0.1.3).
pub fn mailbox_scopes<C: Connector>() -> Vec<String> {
    C::mailbox_scopes()
}

/// `pull-mailbox` (WIT 0.1.3).
pub fn pull_mailbox<C: Connector>(
    config: &str,
    request: PullRequest,
) -> Result<mailbox::MailboxPage, PluginError> {
    C::pull_mailbox(&C::parse_config(config)?, request)
}

/// `lookup-mailbox-items` (WIT 0.1.3).
pub fn lookup_mailbox<C: Connector>(
    config: &str,
    scope: &str,
    keys: Vec<String>,
) -> Result<Vec<mailbox::MailboxItem>, PluginError> {
    C::lookup_mailbox(&C::parse_config(config)?, scope, keys)
}

/// `push-mailbox` (WIT 0.1.3).
pub fn push_mailbox<C: Connector>(
    config: &str,
    scope: &str,
    batch: Vec<mailbox::MailboxWriteOp>,
) -> Result<Vec<WriteResult>, PluginError> {
    C::push_mailbox(&C::parse_config(config)?, scope, batch)
}

/// `source-fields` (WIT 0.1.2).
pub fn source_fields<M: Mapper>(options: &str) -> Result<Vec<String>, PluginError> {
    M::source_fields(&M::parse_options(options)?)
}

/// `map-items`: the decisions' intents. Hosts since WIT 0.1.1 call `decide`.
pub fn map<M: Mapper>(items: Vec<Item>, options: &str) -> Result<Vec<Intent>, PluginError> {
    Ok(decide::<M>(items, options)?
        .into_iter()
        .map(|d| d.intent)
        .collect())
}

/// `decide`.
pub fn decide<M: Mapper>(items: Vec<Item>, options: &str) -> Result<Vec<Decision>, PluginError> {
    M::decide(items, &M::parse_options(options)?)
}

/// `explain`.
pub fn explain<M: Mapper>(item: Item, options: &str) -> Result<Explanation, PluginError> {
    M::explain(item, &M::parse_options(options)?)
}

/// `mailbox-mapper-api.decide` (WIT 0.1.4): items of either model.
pub fn decide_any<M: Mapper>(
    items: Vec<AnyItem>,
    options: &str,
) -> Result<Vec<AnyDecision>, PluginError> {
    M::decide_any(items, &M::parse_options(options)?)
}

/// `mailbox-mapper-api.explain` (WIT 0.1.4).
pub fn explain_any<M: Mapper>(item: AnyItem, options: &str) -> Result<Explanation, PluginError> {
    M::explain_any(item, &M::parse_options(options)?)
}
