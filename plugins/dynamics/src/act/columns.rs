//! Reading and writing single columns: date-times, bounded text, field names.

use super::scope::Kind;
use crate::emails::time::is_rfc3339;
use crate::text;
use serde_json::{json, Value};
use syncbridge_sdk::prelude::*;

/// A date-time column as a zoned time without a zone (Dataverse answers UTC; appointments add
/// the zone they were entered in from `utcconversiontimezonecode`, see [`super::zones`]).
pub fn zoned(row: &Value, column: &str) -> Option<ZonedTime> {
    text(row, column).map(|utc| ZonedTime {
        utc,
        time_zone: None,
    })
}

/// The column value of a zoned time: its RFC 3339 `utc`.
pub fn time(field: &str, t: &ZonedTime) -> Result<Value, PluginError> {
    let utc = t.utc.trim();
    if is_rfc3339(utc) {
        return Ok(json!(utc));
    }
    Err(PluginError::invalid_field(
        field,
        format!("{utc:?} is not an RFC 3339 date-time, e.g. 2026-01-02T03:04:05Z"),
    ))
}

/// The column value of an optional zoned time (none clears the column).
pub fn time_or_null(field: &str, t: Option<&ZonedTime>) -> Result<Value, PluginError> {
    match t {
        Some(t) => time(field, t),
        None => Ok(Value::Null),
    }
}

/// The column value of optional text of at most `max` characters (Dataverse's column length);
/// blank text clears the column, longer text is refused.
pub fn bounded(field: &str, value: Option<&str>, max: usize) -> Result<Value, PluginError> {
    match value.filter(|v| !v.trim().is_empty()) {
        None => Ok(Value::Null),
        Some(v) if v.chars().count() > max => Err(PluginError::invalid_field(
            field,
            format!(
                "the value has {} characters; Dataverse's column holds at most {max}",
                v.chars().count()
            ),
        )),
        Some(v) => Ok(json!(v)),
    }
}

/// Optional text as a column value (blank clears it).
pub fn optional(value: Option<&str>) -> Value {
    match value.filter(|v| !v.trim().is_empty()) {
        Some(v) => json!(v),
        None => Value::Null,
    }
}

/// A field name as the engine writes it, canonical: trimmed, lower case, `-` as `_`.
pub fn field_name(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('-', "_")
}

/// The error for a field the scope does not write.
pub fn not_written(name: &str, kind: Kind, allowed: &[&str]) -> PluginError {
    PluginError::invalid_field(
        name,
        format!(
            "not a field this connector writes on {}; it writes {}",
            kind.name(),
            allowed.join(", ")
        ),
    )
}

/// `statecode` of a row.
pub fn state(row: &Value) -> Option<i64> {
    row.get("statecode").and_then(Value::as_i64)
}

/// `statuscode` of a row.
pub fn status(row: &Value) -> Option<i64> {
    row.get("statuscode").and_then(Value::as_i64)
}
