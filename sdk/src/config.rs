//! Reading a connection's or profile's JSON configuration.

use crate::types::PluginError;

/// Parses a JSON configuration into `T`, answering `invalid` with the reason.
pub fn parse<T: serde::de::DeserializeOwned>(config: &str) -> Result<T, PluginError> {
    serde_json::from_str(config).map_err(|e| {
        PluginError::invalid(format!(
            "the configuration does not match this plugin's schema: {e}"
        ))
    })
}
