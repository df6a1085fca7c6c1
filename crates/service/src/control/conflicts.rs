//! Conflicts: two-way fields both sides changed differently, held for an
//! operator (the field's policy is `hold`, or `newest-wins` without
//! modification times). Resolving one picks the side whose value wins; the
//! next run writes it to the other side and clears the conflict.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use syncbridge_store::{now_ms, Store, StoreError};
use syncbridge_sync::merge::Side;

/// One held conflict (a row of `conflicts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub profile_id: String,
    pub source_id: String,
    pub field: String,
    pub target_id: String,
    /// The value both sides last agreed on.
    pub base: Option<String>,
    pub source: Option<String>,
    pub target: Option<String>,
    /// Why it is held.
    pub reason: String,
    /// The side an operator chose, applied by the next run.
    pub resolution: Option<Side>,
    /// When it was last seen (milliseconds since the Unix epoch).
    pub at: i64,
}

/// Held conflicts of one profile, or of all (`None`), oldest first.
pub async fn list(store: &Store, profile: Option<&str>) -> Result<Vec<Conflict>, StoreError> {
    let rows = sqlx::query(
        "SELECT profile_id, source_id, field, target_id, base_value, source_value, target_value, reason, resolution, at
         FROM conflicts WHERE ($1 IS NULL OR profile_id = $1) ORDER BY profile_id, at, source_id, field LIMIT 1000",
    )
    .bind(profile)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let (profile_id, source_id, field): (String, String, String) = (
                r.try_get("profile_id")?,
                r.try_get("source_id")?,
                r.try_get("field")?,
            );
            let stored: Option<String> = r.try_get("resolution")?;
            let resolution = Side::parse_stored(stored.as_deref(), || {
                format!("{profile_id}/{source_id}/{field}")
            })?;
            Ok(Conflict {
                target_id: r.try_get("target_id")?,
                base: r.try_get("base_value")?,
                source: r.try_get("source_value")?,
                target: r.try_get("target_value")?,
                reason: r.try_get("reason")?,
                at: r.try_get("at")?,
                resolution,
                profile_id,
                source_id,
                field,
            })
        })
        .collect()
}

/// Resolves a held conflict: `winner`'s value is written to the other side
/// by the next run of the profile (the item is re-evaluated then, whether
/// or not either side changes again).
pub async fn resolve(
    store: &Store,
    profile: &str,
    source_id: &str,
    field: &str,
    winner: Side,
) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await?;
    let done = sqlx::query(
        "UPDATE conflicts SET resolution = $1 WHERE profile_id = $2 AND source_id = $3 AND field = $4",
    )
    .bind(winner.as_str())
    .bind(profile)
    .bind(source_id)
    .bind(field)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            what: "conflict",
            id: format!("field {field} of {source_id} in profile {profile}"),
        });
    }
    // Re-evaluated on the next run like a quarantined item (cleared once applied).
    sqlx::query(
        "INSERT INTO quarantine (profile_id, source_id, op_id, error_class, error, attempts, at)
         VALUES ($1, $2, 'resolution', 'resolved', 'a held conflict was resolved; applied on the next run', 0, $3)
         ON CONFLICT (profile_id, source_id) DO NOTHING",
    )
    .bind(profile)
    .bind(source_id)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
