//! Profiles (integrations): what a run reads, how it maps, where it writes.

use super::rules::FieldRules;
use crate::store::{now_ms, Store, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// A stored profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub id: String,
    pub source_connection: String,
    pub source_scope: String,
    pub mapper_plugin: String,
    /// Mapper options JSON.
    pub mapper_options: String,
    pub target_connection: String,
    pub target_scope: String,
    pub rules: FieldRules,
    pub page_size: u32,
}

/// Creates or replaces a profile.
pub async fn save(store: &Store, p: &Profile) -> Result<(), StoreError> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO profiles (id, source_connection, source_scope, mapper_plugin, mapper_options, target_connection, target_scope, rules, page_size, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (id) DO UPDATE SET source_connection = excluded.source_connection, source_scope = excluded.source_scope,
           mapper_plugin = excluded.mapper_plugin, mapper_options = excluded.mapper_options, target_connection = excluded.target_connection,
           target_scope = excluded.target_scope, rules = excluded.rules, page_size = excluded.page_size, updated_at = excluded.updated_at",
    )
    .bind(&p.id)
    .bind(&p.source_connection)
    .bind(&p.source_scope)
    .bind(&p.mapper_plugin)
    .bind(&p.mapper_options)
    .bind(&p.target_connection)
    .bind(&p.target_scope)
    .bind(serde_json::to_string(&p.rules).expect("rules serialise"))
    .bind(i64::from(p.page_size))
    .bind(now)
    .bind(now)
    .execute(store.pool())
    .await?;
    Ok(())
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<Profile, StoreError> {
    let rules: String = r.try_get("rules")?;
    Ok(Profile {
        id: r.try_get("id")?,
        source_connection: r.try_get("source_connection")?,
        source_scope: r.try_get("source_scope")?,
        mapper_plugin: r.try_get("mapper_plugin")?,
        mapper_options: r.try_get("mapper_options")?,
        target_connection: r.try_get("target_connection")?,
        target_scope: r.try_get("target_scope")?,
        rules: serde_json::from_str(&rules).unwrap_or_default(),
        page_size: u32::try_from(r.try_get::<i64, _>("page_size")?).unwrap_or(100),
    })
}

/// One profile.
pub async fn get(store: &Store, id: &str) -> Result<Profile, StoreError> {
    let row = sqlx::query("SELECT * FROM profiles WHERE id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "profile",
            id: id.to_owned(),
        })?;
    from_row(&row)
}

/// All profiles.
pub async fn list(store: &Store) -> Result<Vec<Profile>, StoreError> {
    let rows = sqlx::query("SELECT * FROM profiles ORDER BY id")
        .fetch_all(store.pool())
        .await?;
    rows.iter().map(from_row).collect()
}
