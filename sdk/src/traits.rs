//! The traits a plugin implements. Every method has a default that answers
//! `unsupported`, so a plugin implements only what it offers.

use crate::types::*;

fn unsupported<T>(what: &str) -> Result<T, PluginError> {
    Err(PluginError::Unsupported(format!(
        "this plugin does not implement `{what}`"
    )))
}

/// A connector to one outside system.
pub trait Connector {
    /// Names the connector and what it reads and writes.
    fn describe() -> Description {
        Description::named("unnamed connector")
    }

    /// Checks a configuration offline. The default accepts any JSON object.
    fn validate_config(config: &str) -> Vec<Finding> {
        match serde_json::from_str::<serde_json::Value>(config) {
            Ok(v) if v.is_object() => vec![Finding::ok("config")],
            Ok(_) => vec![Finding::failed(
                "config",
                "the configuration is not a JSON object",
                "pass a JSON object such as {\"base_url\": \"https://...\"}",
            )],
            Err(e) => vec![Finding::failed(
                "config",
                format!("the configuration is not valid JSON: {e}"),
                "fix the JSON syntax",
            )],
        }
    }

    /// Checks reachability and credentials.
    fn test_connection(_config: &str) -> Result<Vec<Finding>, PluginError> {
        unsupported("test-connection")
    }

    /// Reads one page of `request.scope`.
    fn pull(_config: &str, _request: PullRequest) -> Result<Page, PluginError> {
        unsupported("pull")
    }

    /// Looks up items by id or key.
    fn lookup(_config: &str, _scope: &str, _keys: Vec<String>) -> Result<Vec<Item>, PluginError> {
        unsupported("lookup")
    }

    /// Applies a batch of writes.
    fn push(
        _config: &str,
        _scope: &str,
        _batch: Vec<WriteOp>,
    ) -> Result<Vec<WriteResult>, PluginError> {
        unsupported("push")
    }
}

/// The rules of one flow: source items in, target intents out. Pure.
pub trait Mapper {
    /// Maps items under the profile's options (JSON).
    fn map(_items: Vec<Item>, _options: &str) -> Result<Vec<Intent>, PluginError> {
        unsupported("map")
    }

    /// Explains how the rules treat one item.
    fn explain(_item: Item, _options: &str) -> Result<Explanation, PluginError> {
        unsupported("explain")
    }
}
