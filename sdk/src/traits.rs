//! The traits a plugin implements. Every method has a default that answers
//! `unsupported`, so a plugin implements only what it offers.
//!
//! Exports receive the configuration already parsed: the export glue
//! ([`crate::exports`]) parses the JSON text once per call into
//! [`Connector::Config`] / [`Mapper::Options`] and answers `invalid` naming the
//! field when it does not fit.

use crate::config;
use crate::types::*;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

fn unsupported<T>(what: &str) -> Result<T, PluginError> {
    Err(PluginError::Unsupported(format!(
        "this plugin does not implement `{what}`"
    )))
}

/// A connector to one outside system.
pub trait Connector {
    /// The connection configuration. Its derived JSON Schema is the one the host
    /// validates connections against; doc comments become field descriptions.
    /// [`config::AnyObject`] takes any JSON object.
    type Config: DeserializeOwned + JsonSchema;

    /// Names the connector and what it reads and writes. The export replaces
    /// `config_schema` with [`Connector::config_schema`].
    fn describe() -> Description {
        Description::named("unnamed connector")
    }

    /// The JSON Schema of the configuration. Default: derived from [`Connector::Config`].
    fn config_schema() -> String {
        config::schema_of::<Self::Config>()
    }

    /// Parses the configuration JSON. Default: serde into [`Connector::Config`]
    /// ([`config::parse`]).
    fn parse_config(config: &str) -> Result<Self::Config, PluginError> {
        config::parse(config)
    }

    /// Checks a configuration offline: parses it, then runs [`Connector::check_config`].
    fn validate_config(config: &str) -> Vec<Finding> {
        match Self::parse_config(config) {
            Ok(cfg) => Self::check_config(&cfg),
            Err(e) => vec![Finding::failed(
                "config",
                e.describe(),
                "fix the configuration: the plugin's config schema lists every field and its type",
            )],
        }
    }

    /// Offline checks of a parsed configuration beyond its schema. Default: passes.
    fn check_config(_config: &Self::Config) -> Vec<Finding> {
        vec![Finding::ok("config")]
    }

    /// Checks reachability and credentials.
    fn test_connection(_config: &Self::Config) -> Result<Vec<Finding>, PluginError> {
        unsupported("test-connection")
    }

    /// Reads one page of `request.scope`.
    fn pull(_config: &Self::Config, _request: PullRequest) -> Result<Page, PluginError> {
        unsupported("pull")
    }

    /// Looks up items by id or key.
    fn lookup(
        _config: &Self::Config,
        _scope: &str,
        _keys: Vec<String>,
    ) -> Result<Vec<Item>, PluginError> {
        unsupported("lookup")
    }

    /// The scope whose items also carry `fields` as attributes. Default: a
    /// connector that reads nothing beyond its canonical fields answers an
    /// empty request with `scope` and refuses any field.
    fn select_fields(
        _config: &Self::Config,
        scope: &str,
        fields: Vec<String>,
    ) -> Result<String, PluginError> {
        match fields.first() {
            None => Ok(scope.to_owned()),
            Some(field) => Err(PluginError::invalid_field(
                field.as_str(),
                "this connector reads no fields beyond its canonical ones",
            )),
        }
    }

    /// Applies a batch of writes; see [`crate::batch::push_each`].
    fn push(
        _config: &Self::Config,
        _scope: &str,
        _batch: Vec<WriteOp>,
    ) -> Result<Vec<WriteResult>, PluginError> {
        unsupported("push")
    }

    /// Scope kinds (the name before `:`) whose items are mailbox items, read
    /// and written by the `*_mailbox` methods (WIT 0.1.3). Default: none.
    fn mailbox_scopes() -> Vec<String> {
        Vec::new()
    }

    /// Reads one page of a mailbox scope.
    fn pull_mailbox(
        _config: &Self::Config,
        _request: PullRequest,
    ) -> Result<mailbox::MailboxPage, PluginError> {
        unsupported("pull-mailbox")
    }

    /// Looks mailbox items up by id or key (e.g. `anchor:<link id>`).
    fn lookup_mailbox(
        _config: &Self::Config,
        _scope: &str,
        _keys: Vec<String>,
    ) -> Result<Vec<mailbox::MailboxItem>, PluginError> {
        unsupported("lookup-mailbox-items")
    }

    /// Applies a batch of mailbox writes; see [`crate::batch::push_each`].
    fn push_mailbox(
        _config: &Self::Config,
        _scope: &str,
        _batch: Vec<mailbox::MailboxWriteOp>,
    ) -> Result<Vec<WriteResult>, PluginError> {
        unsupported("push-mailbox")
    }

    /// The organization marked in `mailbox` as the one it syncs with, none
    /// when unmarked (WIT 0.1.5). Default: unsupported.
    fn read_sync_owner(
        _config: &Self::Config,
        _mailbox: &str,
    ) -> Result<Option<String>, PluginError> {
        unsupported("read-sync-owner")
    }

    /// Marks `owner` in `mailbox`, replacing any earlier mark (WIT 0.1.5).
    fn write_sync_owner(
        _config: &Self::Config,
        _mailbox: &str,
        _owner: &str,
    ) -> Result<(), PluginError> {
        unsupported("write-sync-owner")
    }
}

/// The rules of one flow: source items in, target intents out. Pure.
pub trait Mapper {
    /// The profile's options; [`config::AnyObject`] takes any JSON object.
    type Options: DeserializeOwned + JsonSchema;

    /// The JSON Schema of the options. Default: derived from [`Mapper::Options`].
    fn options_schema() -> String {
        config::schema_of::<Self::Options>()
    }

    /// Parses the options JSON. Default: serde into [`Mapper::Options`]
    /// ([`config::parse`]); override it to normalise or cross-check fields.
    fn parse_options(options: &str) -> Result<Self::Options, PluginError> {
        config::parse(options)
    }

    /// Maps items under the profile's options; each intent gets the default
    /// [`WritePolicy`] (update existing items, replace contact types).
    /// Implement [`Mapper::decide`] instead to choose the policy per item.
    fn map(_items: Vec<Item>, _options: &Self::Options) -> Result<Vec<Intent>, PluginError> {
        unsupported("map")
    }

    /// Decides, per item, the intent and what the engine may do to an
    /// existing target item. Default: [`Mapper::map`] with the default policy.
    fn decide(items: Vec<Item>, options: &Self::Options) -> Result<Vec<Decision>, PluginError> {
        Ok(Self::map(items, options)?
            .into_iter()
            .map(|intent| Decision {
                intent,
                policy: WritePolicy::default(),
            })
            .collect())
    }

    /// The source attributes the rules read under these options (beyond the
    /// canonical fields), so the source connector reads them. Default: none.
    fn source_fields(_options: &Self::Options) -> Result<Vec<String>, PluginError> {
        Ok(Vec::new())
    }

    /// Explains how the rules treat one item.
    fn explain(_item: Item, _options: &Self::Options) -> Result<Explanation, PluginError> {
        unsupported("explain")
    }

    /// Decides over items whose body is a core or a mailbox body (WIT 0.1.4:
    /// hosts since then call this instead of [`Mapper::decide`]); a decision's
    /// body is the one the target scope takes, e.g. a mailbox
    /// [`mailbox::MailboxBody::Event`] for a `calendar:mailbox=…` target.
    /// Default: core items go to [`Mapper::decide`], a mailbox item is
    /// refused as unsupported.
    fn decide_any(
        items: Vec<AnyItem>,
        options: &Self::Options,
    ) -> Result<Vec<AnyDecision>, PluginError> {
        let items = items
            .into_iter()
            .map(Item::try_from)
            .collect::<Result<_, _>>()?;
        Ok(Self::decide(items, options)?
            .into_iter()
            .map(AnyDecision::from)
            .collect())
    }

    /// Explains how the rules treat one item of either model. Default: a
    /// core item goes to [`Mapper::explain`], a mailbox item is refused.
    fn explain_any(item: AnyItem, options: &Self::Options) -> Result<Explanation, PluginError> {
        Self::explain(Item::try_from(item)?, options)
    }
}
