//! Quarantine as operators see it: items that failed and why, with the
//! actions retry (on the next run), skip (stop retrying until the source
//! changes) and relink (point the item's link at another target record).

use serde::{Deserialize, Serialize};
use sqlx::Row;
use syncbridge_store::{Store, StoreError};

/// One quarantined item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantinedItem {
    pub profile_id: String,
    pub source_id: String,
    pub error_class: String,
    pub error: String,
    pub attempts: i64,
    pub at: i64,
    pub skipped: bool,
}

/// Quarantined items of the given profiles (all when `None`).
pub async fn list(
    store: &Store,
    profile: Option<&str>,
) -> Result<Vec<QuarantinedItem>, StoreError> {
    let rows = sqlx::query(
        "SELECT profile_id, source_id, error_class, error, attempts, at, skipped FROM quarantine
         WHERE ($1 IS NULL OR profile_id = $1) ORDER BY profile_id, at DESC LIMIT 1000",
    )
    .bind(profile)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(QuarantinedItem {
                profile_id: r.try_get("profile_id")?,
                source_id: r.try_get("source_id")?,
                error_class: r.try_get("error_class")?,
                error: r.try_get("error")?,
                attempts: r.try_get("attempts")?,
                at: r.try_get("at")?,
                skipped: r.try_get::<i64, _>("skipped")? != 0,
            })
        })
        .collect()
}

async fn set_skipped(
    store: &Store,
    profile: &str,
    source_id: &str,
    skipped: bool,
) -> Result<(), StoreError> {
    let done =
        sqlx::query("UPDATE quarantine SET skipped = $1 WHERE profile_id = $2 AND source_id = $3")
            .bind(i64::from(skipped))
            .bind(profile)
            .bind(source_id)
            .execute(store.pool())
            .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            what: "quarantined item",
            id: format!("{source_id} in profile {profile}"),
        });
    }
    Ok(())
}

/// Retries the item on the next run (undoes a skip).
pub async fn retry(store: &Store, profile: &str, source_id: &str) -> Result<(), StoreError> {
    set_skipped(store, profile, source_id, false).await
}

/// Stops retrying the item until the source brings it again.
pub async fn skip(store: &Store, profile: &str, source_id: &str) -> Result<(), StoreError> {
    set_skipped(store, profile, source_id, true).await
}

/// Points the item's link at `target_id` (an existing target record the
/// operator chose), marked as matched so the profile does not own it, and
/// retries the item on the next run against that record.
pub async fn relink(
    store: &Store,
    profile: &str,
    source_id: &str,
    target_id: &str,
) -> Result<(), StoreError> {
    let now = syncbridge_store::now_ms();
    let mut tx = store.begin_write().await?;
    let updated = sqlx::query(
        "UPDATE links SET target_id = $1, origin = 'matched', fields = '{}', updated_at = $2 WHERE profile_id = $3 AND source_id = $4",
    )
    .bind(target_id)
    .bind(now)
    .bind(profile)
    .bind(source_id)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        sqlx::query(
            "INSERT INTO links (profile_id, source_id, target_id, fields, provenance, origin, active, updated_at)
             VALUES ($1, $2, $3, '{}', '{}', 'matched', 1, $4)",
        )
        .bind(profile)
        .bind(source_id)
        .bind(target_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE quarantine SET skipped = 0 WHERE profile_id = $1 AND source_id = $2")
        .bind(profile)
        .bind(source_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Items of `profile` that have failed exactly `runs` runs in a row (so each
/// is reported once, when it reaches that count; a success clears its row).
pub async fn failing_for(
    store: &Store,
    profile: &str,
    runs: i64,
) -> Result<Vec<QuarantinedItem>, StoreError> {
    Ok(list(store, Some(profile))
        .await?
        .into_iter()
        .filter(|i| i.attempts == runs && !i.skipped)
        .collect())
}

/// What an operator does about an item failing with error class `class`.
pub fn remedy(class: &str) -> &'static str {
    match class {
        "invalid" => "The target refused the item's data: correct it in the source (or the mapper's options), then `syncbridge quarantine retry`; or `syncbridge quarantine skip` it.",
        "conflict" => "The target holds a conflicting item (a duplicate or a changed record): resolve it there, or `syncbridge quarantine relink` the item to the right target item.",
        "not-found" => "The target item it addresses is gone: `syncbridge run PROFILE --full` creates it again (or unlinks it, as the rules say).",
        "auth" | "forbidden" => "The target connection lacks a right this item needs: check the API user's permissions, then `syncbridge quarantine retry`.",
        "throttled" | "transient" => "The target kept refusing for the moment: check its health and limits; the next run retries.",
        _ => "Read the error; fix its cause; `syncbridge quarantine retry` tries it now, `syncbridge quarantine skip` stops retrying it.",
    }
}
