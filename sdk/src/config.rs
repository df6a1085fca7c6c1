//! Reading a connection's configuration or a profile's mapper options.
//!
//! The export glue parses the JSON text once per call into the plugin's
//! [`Connector::Config`](crate::Connector::Config) or
//! [`Mapper::Options`](crate::Mapper::Options); the schema the host validates
//! connections against is derived from the same type ([`schema_of`]), so the
//! doc comments of its fields are the descriptions operators read.

use crate::types::{FieldError, InvalidInput, PluginError};

/// A configuration that is any JSON object, for plugins that take none of their own.
pub type AnyObject = serde_json::Map<String, serde_json::Value>;

/// Parses a JSON configuration into `T`. A mismatch answers `invalid` naming
/// the field (as a path such as `filters[1].site`) and what is wrong with it.
pub fn parse<T: serde::de::DeserializeOwned>(config: &str) -> Result<T, PluginError> {
    let de = &mut serde_json::Deserializer::from_str(config);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let problem = e.inner().to_string();
        if path == "." {
            return PluginError::invalid(format!(
                "the configuration does not match this plugin's schema: {problem}; fix it (the plugin's config schema lists every field)"
            ));
        }
        PluginError::Invalid(InvalidInput {
            message: format!(
                "the configuration does not match this plugin's schema: {path}: {problem}; fix that field (the plugin's config schema lists every field)"
            ),
            fields: vec![FieldError {
                field: path,
                message: problem,
            }],
        })
    })
}

/// The JSON Schema of `T` as JSON text, with `T`'s doc comments as descriptions.
pub fn schema_of<T: schemars::JsonSchema>() -> String {
    schemars::schema_for!(T).as_value().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// A test configuration.
    #[derive(Debug, Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        /// Service root.
        base_url: String,
        #[serde(default)]
        retries: u32,
        #[serde(default)]
        nested: Option<Nested>,
    }

    #[derive(Debug, Deserialize, schemars::JsonSchema)]
    struct Nested {
        limit: u32,
    }

    fn invalid(e: PluginError) -> InvalidInput {
        match e {
            PluginError::Invalid(i) => i,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn parse_names_the_field() {
        let cfg: Cfg = parse(r#"{"base_url":"https://x.test","retries":2}"#).unwrap();
        assert_eq!((cfg.base_url.as_str(), cfg.retries), ("https://x.test", 2));
        assert!(cfg.nested.is_none());
        let cfg: Cfg = parse(r#"{"base_url":"x","nested":{"limit":3}}"#).unwrap();
        assert_eq!(cfg.nested.map(|n| n.limit), Some(3));

        let e = invalid(parse::<Cfg>(r#"{"base_url":5}"#).unwrap_err());
        assert_eq!(e.fields[0].field, "base_url");
        assert!(
            e.message.contains("base_url: invalid type"),
            "{}",
            e.message
        );

        let e = invalid(parse::<Cfg>(r#"{"base_url":"x","nested":{"limit":"ten"}}"#).unwrap_err());
        assert_eq!(e.fields[0].field, "nested.limit");

        let e = invalid(parse::<Cfg>("{}").unwrap_err());
        assert!(
            e.message.contains("missing field `base_url`"),
            "{}",
            e.message
        );

        let e = invalid(parse::<Cfg>(r#"{"base_url":"x","colour":1}"#).unwrap_err());
        assert!(
            e.message.contains("unknown field `colour`"),
            "{}",
            e.message
        );

        assert!(parse::<Cfg>("not json").is_err());
        assert!(parse::<AnyObject>("[]").is_err());
        assert!(parse::<AnyObject>(r#"{"a":1}"#).is_ok());
    }

    #[test]
    fn schema_carries_docs_and_required_fields() {
        let schema: serde_json::Value = serde_json::from_str(&schema_of::<Cfg>()).unwrap();
        assert_eq!(schema["required"], serde_json::json!(["base_url"]));
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(
            schema["properties"]["base_url"]["description"],
            "Service root."
        );
        assert_eq!(schema["description"], "A test configuration.");
    }
}
