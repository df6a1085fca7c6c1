//! Explain: for a linked record (and optionally one field), which source
//! value, rule and run produced what the target holds, with the history of
//! applied changes from the journal.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use syncbridge_store::{Store, StoreError};

/// Where one field's current value came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldExplanation {
    pub field: String,
    /// The value last written to (or found in) the target.
    pub value: Option<String>,
    /// `source` when this profile wrote it; `None` when the value was already
    /// in the target when the record was matched and was never written.
    pub system: Option<String>,
    pub run_id: Option<String>,
    /// Milliseconds since the epoch.
    pub at: Option<i64>,
    /// The mapper rule and engine rule that decided the write.
    pub rule: Option<String>,
    /// Applied changes of this field, oldest first.
    pub history: Vec<FieldHistory>,
}

/// One applied change of a field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldHistory {
    pub run_id: String,
    pub action: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub at: i64,
}

/// A linked record explained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub profile_id: String,
    pub source_id: String,
    pub target_id: String,
    /// `created` (the profile owns it) or `matched` (found by a match key).
    pub origin: String,
    pub active: bool,
    pub fields: Vec<FieldExplanation>,
}

/// Explains the link of `record` (a source id or a target id) in `profile`.
/// With `field`, only that field is explained.
pub async fn explain(
    store: &Store,
    profile: &str,
    record: &str,
    field: Option<&str>,
) -> Result<Explanation, StoreError> {
    let row = sqlx::query(
        "SELECT source_id, target_id, fields, provenance, origin, active FROM links
         WHERE profile_id = $1 AND (source_id = $2 OR target_id = $2) ORDER BY source_id LIMIT 1",
    )
    .bind(profile)
    .bind(record)
    .fetch_optional(store.pool())
    .await?
    .ok_or_else(|| StoreError::NotFound {
        what: "linked record",
        id: format!("{record} in profile {profile}"),
    })?;
    let source_id: String = row.try_get("source_id")?;
    // Stored data this version cannot read is an error naming the record, never a default.
    let corrupt = |what: &'static str, id: String| {
        move |e: serde_json::Error| StoreError::Invalid {
            what,
            id,
            detail: format!("its stored JSON cannot be read: {e}"),
        }
    };
    let link_id = format!("{profile}/{source_id}");
    let fields: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&row.try_get::<String, _>("fields")?)
            .map_err(corrupt("link fields", link_id.clone()))?;
    let provenance: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&row.try_get::<String, _>("provenance")?)
            .map_err(corrupt("link provenance", link_id.clone()))?;

    let journal = sqlx::query(
        "SELECT run_id, action, changes, at FROM journal
         WHERE profile_id = $1 AND source_id = $2 AND phase = 'applied' ORDER BY seq",
    )
    .bind(profile)
    .bind(&source_id)
    .fetch_all(store.pool())
    .await?;
    let mut history: Vec<(String, FieldHistory)> = Vec::new();
    for j in &journal {
        let run_id: String = j.try_get("run_id")?;
        let changes: Vec<serde_json::Value> =
            serde_json::from_str(&j.try_get::<String, _>("changes")?).map_err(corrupt(
                "journal entry",
                format!("{link_id} in run {run_id}"),
            ))?;
        for c in changes {
            let text = |k: &str| c[k].as_str().map(str::to_owned);
            if let Some(name) = text("field") {
                history.push((
                    name,
                    FieldHistory {
                        run_id: run_id.clone(),
                        action: j.try_get("action")?,
                        before: text("before"),
                        after: text("after"),
                        at: j.try_get("at")?,
                    },
                ));
            }
        }
    }

    let mut names: std::collections::BTreeSet<String> = fields.keys().cloned().collect();
    names.extend(provenance.keys().cloned());
    if let Some(f) = field {
        if !names.contains(f) {
            return Err(StoreError::NotFound {
                what: "field",
                id: format!(
                    "{f} (the record has: {})",
                    names.into_iter().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        names.retain(|n| n == f);
    }
    let fields = names
        .into_iter()
        .map(|name| {
            let p = provenance.get(&name);
            let get = |k: &str| p.and_then(|p| p[k].as_str()).map(str::to_owned);
            FieldExplanation {
                value: fields.get(&name).cloned(),
                system: get("system"),
                run_id: get("run"),
                at: p.and_then(|p| p["at"].as_i64()),
                rule: get("rule"),
                history: history
                    .iter()
                    .filter(|(n, _)| *n == name)
                    .map(|(_, h)| h.clone())
                    .collect(),
                field: name,
            }
        })
        .collect();
    Ok(Explanation {
        profile_id: profile.to_owned(),
        source_id,
        target_id: row.try_get("target_id")?,
        origin: row.try_get("origin")?,
        active: row.try_get::<i64, _>("active")? != 0,
        fields,
    })
}
