//! Autotask QueryModel evaluation.

use serde_json::{json, Value};

use super::{entity_display, errors, next_url};
use crate::store::Store;
use crate::util::{json_response, lock};
use axum::http::StatusCode;
use axum::response::Response;

fn prop<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    crate::odata::get_ci(v, name)
}

/// A QueryModel parsed with case-insensitive property names.
struct QueryModel {
    max: usize,
    include: Vec<String>,
    filter: Vec<Value>,
}

fn parse_model(v: &Value) -> Result<QueryModel, String> {
    if !v.is_object() {
        return Err("The query model must be a JSON object.".into());
    }
    let max = match prop(v, "MaxRecords") {
        None | Some(Value::Null) => 500,
        Some(n) => match n.as_u64() {
            Some(n) if (1..=500).contains(&n) => n as usize,
            _ => return Err("MaxRecords must be between 1 and 500.".into()),
        },
    };
    let include = prop(v, "IncludeFields")
        .and_then(|f| f.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let filter = prop(v, "Filter")
        .and_then(|f| f.as_array())
        .cloned()
        .unwrap_or_default();
    if filter.is_empty() {
        return Err(
            "A filter is required: the query model must contain at least one filter condition."
                .into(),
        );
    }
    Ok(QueryModel {
        max,
        include,
        filter,
    })
}

fn field_value<'a>(row: &'a Value, field: &str, udf: bool) -> Option<&'a Value> {
    if udf {
        row.get("userDefinedFields")?
            .as_array()?
            .iter()
            .find(|u| {
                prop(u, "name")
                    .and_then(|n| n.as_str())
                    .is_some_and(|n| n.eq_ignore_ascii_case(field))
            })
            .and_then(|u| prop(u, "value"))
    } else {
        prop(row, field)
    }
}

/// A date-time string as an instant (RFC 3339, or without an offset = UTC, as Autotask sends).
fn instant(v: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    let s = v.as_str()?.trim();
    if s.len() < 19 || s.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
}

/// Compares like the service: date-times as instants (whatever their precision), the rest as
/// OData values.
fn cmp(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (instant(a), instant(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => crate::odata::compare(a, b),
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_lowercase(),
        Value::Null => String::new(),
        other => other.to_string().to_lowercase(),
    }
}

/// Evaluates one filter item.
fn eval(
    row: &Value,
    f: &Value,
    entity: &str,
    known: &dyn Fn(&str) -> bool,
) -> Result<bool, String> {
    let op = prop(f, "op")
        .and_then(|o| o.as_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if op == "and" || op == "or" {
        let items = prop(f, "items")
            .and_then(|i| i.as_array())
            .cloned()
            .unwrap_or_default();
        let mut results = Vec::new();
        for i in &items {
            results.push(eval(row, i, entity, known)?);
        }
        return Ok(if op == "and" {
            results.iter().all(|x| *x)
        } else {
            results.iter().any(|x| *x)
        });
    }
    let field = prop(f, "field").and_then(|x| x.as_str()).unwrap_or("");
    let udf = prop(f, "udf").and_then(|x| x.as_bool()).unwrap_or(false);
    if !udf && !known(field) {
        return Err(format!(
            "Unable to find {field} in the {} entity.",
            entity_display(entity)
        ));
    }
    let actual = field_value(row, field, udf).cloned().unwrap_or(Value::Null);
    let value = prop(f, "value").cloned().unwrap_or(Value::Null);
    use std::cmp::Ordering::*;
    Ok(match op.as_str() {
        "eq" => cmp(&actual, &value) == Some(Equal),
        "noteq" => cmp(&actual, &value) != Some(Equal),
        "gt" => cmp(&actual, &value) == Some(Greater),
        "gte" => matches!(cmp(&actual, &value), Some(Greater | Equal)),
        "lt" => cmp(&actual, &value) == Some(Less),
        "lte" => matches!(cmp(&actual, &value), Some(Less | Equal)),
        "beginswith" => !actual.is_null() && as_text(&actual).starts_with(&as_text(&value)),
        "endswith" => !actual.is_null() && as_text(&actual).ends_with(&as_text(&value)),
        "contains" => !actual.is_null() && as_text(&actual).contains(&as_text(&value)),
        "exist" => !actual.is_null() && actual != json!(""),
        "notexist" => actual.is_null() || actual == json!(""),
        "in" | "notin" => {
            let list = value.as_array().cloned().unwrap_or_default();
            let hit = list.iter().any(|x| cmp(&actual, x) == Some(Equal));
            if op == "in" {
                hit
            } else {
                !hit
            }
        }
        other => return Err(format!("Invalid filter operator '{other}'.")),
    })
}

fn matching(store: &Store, entity: &str, model: &QueryModel) -> Result<Vec<Value>, String> {
    let s = lock(&store.autotask);
    let fields = super::entity_fields(entity).unwrap_or(&[]);
    let known = |f: &str| {
        f.eq_ignore_ascii_case("id") || fields.iter().any(|(n, _)| n.eq_ignore_ascii_case(f))
    };
    let mut out = Vec::new();
    if let Some(rows) = s.entities.get(entity) {
        for row in rows.values() {
            let mut ok = true;
            for f in &model.filter {
                if !eval(row, f, entity, &known)? {
                    ok = false;
                    break;
                }
            }
            if ok {
                out.push(row.clone());
            }
        }
    }
    Ok(out)
}

/// Runs a query page.
pub fn run(
    store: &Store,
    entity: &str,
    root: &str,
    search: &Value,
    paging: Option<&Value>,
) -> Response {
    let model = match parse_model(search) {
        Ok(m) => m,
        Err(e) => return errors(StatusCode::INTERNAL_SERVER_ERROR, &[&e]),
    };
    let rows = match matching(store, entity, &model) {
        Ok(r) => r,
        Err(e) => return errors(StatusCode::INTERNAL_SERVER_ERROR, &[&e]),
    };
    let offset = paging
        .and_then(|p| p.get("offset"))
        .and_then(|o| o.as_u64())
        .unwrap_or(0) as usize;
    let size = model.max;
    let page: Vec<Value> = rows
        .iter()
        .skip(offset)
        .take(size)
        .map(|r| {
            if model.include.is_empty() {
                r.clone()
            } else {
                let o = r.as_object().cloned().unwrap_or_default();
                Value::Object(
                    o.into_iter()
                        .filter(|(k, _)| {
                            k == "id" || model.include.iter().any(|f| f.eq_ignore_ascii_case(k))
                        })
                        .collect(),
                )
            }
        })
        .collect();
    let next = (offset + page.len() < rows.len())
        .then(|| next_url(root, entity, search, offset + page.len(), size));
    let prev =
        (offset > 0).then(|| next_url(root, entity, search, offset.saturating_sub(size), size));
    json_response(
        StatusCode::OK,
        &json!({
            "items": page,
            "pageDetails": {
                "count": page.len(),
                "requestCount": size,
                "prevPageUrl": prev,
                "nextPageUrl": next,
            }
        }),
    )
}

/// `…/query/count`.
pub fn count(store: &Store, entity: &str, search: &Value) -> Response {
    let model = match parse_model(search) {
        Ok(m) => m,
        Err(e) => return errors(StatusCode::INTERNAL_SERVER_ERROR, &[&e]),
    };
    match matching(store, entity, &model) {
        Ok(r) => json_response(StatusCode::OK, &json!({ "queryCount": r.len() })),
        Err(e) => errors(StatusCode::INTERNAL_SERVER_ERROR, &[&e]),
    }
}
