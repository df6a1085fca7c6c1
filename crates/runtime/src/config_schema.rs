//! Checking a connection's configuration against the JSON Schema its connector
//! describes (`describe().config-schema`), and a profile's mapper options
//! against its mapper's `options-schema`; both derived from the plugin's type.
//!
//! Nothing is fetched while validating: remote `$ref`s are not resolved.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigSchemaError {
    /// The configuration does not fit the schema; each problem names its path.
    #[error("the {what} does not match the schema of plugin {plugin}: {}; fix these fields (the plugin's schema lists every field and its type)", problems.join("; "))]
    Mismatch {
        /// `configuration` or `mapper options`.
        what: &'static str,
        plugin: String,
        problems: Vec<String>,
    },
    /// The plugin describes a schema that cannot be used.
    #[error("plugin {plugin} describes a configuration schema that is not a valid JSON Schema ({reason}); fix or reinstall the plugin")]
    BadSchema { plugin: String, reason: String },
}

/// Validates a connection's `config` against `schema` (JSON text) of `plugin`.
pub fn check(plugin: &str, schema: &str, config: &Value) -> Result<(), ConfigSchemaError> {
    check_value("configuration", plugin, schema, config)
}

/// Validates a profile's mapper `options` against `schema` (JSON text) of `plugin`.
pub fn check_options(plugin: &str, schema: &str, options: &Value) -> Result<(), ConfigSchemaError> {
    check_value("mapper options", plugin, schema, options)
}

fn check_value(
    what: &'static str,
    plugin: &str,
    schema: &str,
    config: &Value,
) -> Result<(), ConfigSchemaError> {
    let bad = |reason: String| ConfigSchemaError::BadSchema {
        plugin: plugin.to_owned(),
        reason,
    };
    let schema: Value = serde_json::from_str(schema).map_err(|e| bad(e.to_string()))?;
    let validator = jsonschema::validator_for(&schema).map_err(|e| bad(e.to_string()))?;
    let problems: Vec<String> = validator
        .iter_errors(config)
        .map(|e| describe(&e))
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(ConfigSchemaError::Mismatch {
        what,
        plugin: plugin.to_owned(),
        problems,
    })
}

/// `at /path: problem`, without echoing the offending value (it may be a misplaced secret).
fn describe(e: &jsonschema::ValidationError<'_>) -> String {
    let path = e.instance_path().to_string();
    let at = if path.is_empty() { "/" } else { &path };
    let problem = match e.kind() {
        ValidationErrorKind::Type {
            kind: TypeKind::Single(t),
        } => format!("must be of type {t}"),
        ValidationErrorKind::Required { property } => {
            format!("the required field {property} is missing")
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => format!(
            "unknown field(s) {}; this plugin refuses fields it does not know",
            unexpected.join(", ")
        ),
        ValidationErrorKind::Enum { options } => format!("must be one of {options}"),
        _ => e.to_string(),
    };
    format!("at {at}: {problem}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCHEMA: &str = r#"{
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["api_user"],
        "additionalProperties": false,
        "properties": {
            "api_user": {"type": "string"},
            "mode": {"enum": ["a", "b"]},
            "nested": {"type": "object", "properties": {"limit": {"type": "integer"}}}
        }
    }"#;

    fn problems(config: Value) -> Vec<String> {
        match check("p", SCHEMA, &config) {
            Err(ConfigSchemaError::Mismatch { problems, .. }) => problems,
            other => panic!("expected a mismatch, got {other:?}"),
        }
    }

    #[test]
    fn names_the_path_and_the_problem() {
        assert!(check("p", SCHEMA, &json!({"api_user": "a@b.c"})).is_ok());
        assert_eq!(
            problems(json!({"api_user": "s3cret-value-x", "nested": {"limit": "s3cret"}})),
            ["at /nested/limit: must be of type integer"]
        );
        assert_eq!(
            problems(json!({})),
            ["at /: the required field \"api_user\" is missing"]
        );
        let p = problems(json!({"api_user": 1, "colour": 2}));
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p.iter().any(|p| p.contains("colour")), "{p:?}");
        assert!(problems(json!({"api_user": "x", "mode": "c"}))[0]
            .starts_with("at /mode: must be one of"));
    }

    #[test]
    fn a_broken_schema_blames_the_plugin() {
        for schema in ["not json", r#"{"type": 5}"#] {
            assert!(matches!(
                check("p", schema, &json!({})),
                Err(ConfigSchemaError::BadSchema { .. })
            ));
        }
    }
}
