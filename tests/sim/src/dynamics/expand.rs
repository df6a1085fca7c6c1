//! Collection-valued navigation properties: deep insert of their rows and `$expand`
//! (`email_activity_parties($select=addressused,participationtypemask)`).

use serde_json::{json, Map, Value};

use super::tables::{self, Collection, Table};

/// A Dataverse error: status, code, message.
pub type Failure = (axum::http::StatusCode, String, String);

fn bad_request(code: &str, message: String) -> Failure {
    (axum::http::StatusCode::BAD_REQUEST, code.into(), message)
}

/// One expanded property and the columns asked of its rows (all when `None`).
pub struct Expansion {
    /// The property.
    pub collection: &'static Collection,
    /// `$select` inside the parentheses.
    pub select: Option<Vec<String>>,
}

/// Splits `s` at the commas outside parentheses.
fn top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Parses `$expand` of `table`: collection-valued properties, each with an optional
/// `($select=…)`; other properties, options or columns are refused as Dataverse does.
pub fn parse(table: &Table, raw: &str) -> Result<Vec<Expansion>, Failure> {
    let mut out = Vec::new();
    for part in top_level(raw) {
        let part = part.trim();
        let (name, options) = match part.find('(') {
            Some(i) if part.ends_with(')') => (&part[..i], Some(&part[i + 1..part.len() - 1])),
            _ => (part, None),
        };
        let Some(collection) = tables::collection(table.set, name.trim()) else {
            return Err(bad_request(
                "0x80060888",
                format!(
                    "Could not find a property named '{}' on type 'Microsoft.Dynamics.CRM.{}'.",
                    name.trim(),
                    table.logical
                ),
            ));
        };
        let mut select = None;
        for option in options.map(|o| o.split(';')).into_iter().flatten() {
            let option = option.trim();
            if option.is_empty() {
                continue;
            }
            let Some(columns) = option.strip_prefix("$select=") else {
                return Err(bad_request(
                    "0x80060888",
                    format!("The query option '{option}' inside $expand is not supported by the simulator; use $select."),
                ));
            };
            let columns: Vec<String> = columns.split(',').map(|c| c.trim().to_string()).collect();
            if let Some(bad) = columns
                .iter()
                .find(|c| !collection.columns.contains(&c.as_str()))
            {
                return Err(bad_request(
                    "0x80060888",
                    format!(
                        "Could not find a property named '{bad}' on type 'Microsoft.Dynamics.CRM.{}'.",
                        collection.logical
                    ),
                ));
            }
            select = Some(columns);
        }
        out.push(Expansion { collection, select });
    }
    Ok(out)
}

/// Adds the expanded properties of the stored `row` to the answer `out`.
pub fn apply(row: &Value, out: &mut Value, expansions: &[Expansion]) {
    for e in expansions {
        let c = e.collection;
        let related: Vec<Value> = row[c.nav]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let mut o = Map::new();
                for col in c.columns {
                    let keep = *col == c.key
                        || e.select.as_ref().is_none_or(|s| s.iter().any(|x| x == col));
                    if keep {
                        o.insert(col.to_string(), r[*col].clone());
                    }
                }
                Value::Object(o)
            })
            .collect();
        out[c.nav] = Value::Array(related);
    }
}

/// The rows of a deep insert into `collection`: objects of its columns (option sets checked),
/// each given its key.
pub fn related_rows(collection: &Collection, given: &Value) -> Result<Value, Failure> {
    let Some(items) = given.as_array() else {
        return Err(bad_request(
            "0x80048d19",
            format!(
                "The value of '{}' must be a collection of '{}' objects.",
                collection.nav, collection.logical
            ),
        ));
    };
    let mut rows = Vec::new();
    for item in items {
        let Some(fields) = item.as_object() else {
            return Err(bad_request(
                "0x80048d19",
                format!("An item of '{}' is not an object.", collection.nav),
            ));
        };
        let mut row = Map::new();
        for col in collection.columns {
            row.insert(col.to_string(), Value::Null);
        }
        for (k, v) in fields {
            if k.starts_with('@') {
                continue;
            }
            if !collection.columns.contains(&k.as_str()) {
                return Err(bad_request("0x80060888", format!("The property '{k}' does not exist on type 'Microsoft.Dynamics.CRM.{}'. Make sure to only use property names that are defined by the type or mark the type as open type.", collection.logical)));
            }
            if let (Some(n), Some(allowed)) =
                (v.as_i64(), tables::choices(collection.related_set, k))
            {
                if !allowed.iter().any(|(val, _)| *val == n) {
                    return Err(bad_request("0x80044331", format!("A validation error occurred. The value {n} of '{k}' on record of type '{}' is outside the valid range.", collection.logical)));
                }
            }
            row.insert(k.clone(), v.clone());
        }
        if row[collection.key].is_null() {
            row.insert(
                collection.key.into(),
                json!(uuid::Uuid::new_v4().to_string()),
            );
        }
        rows.push(Value::Object(row));
    }
    Ok(Value::Array(rows))
}
