//! Customer companies (tenants): the unit API tokens are scoped to.

use crate::store::{now_ms, Store, StoreError};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// One customer company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Company {
    pub id: String,
    pub name: String,
    /// `;`-separated recipients of failure notices and confirmations.
    #[serde(default)]
    pub notify_to: String,
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<Company, sqlx::Error> {
    Ok(Company {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        notify_to: r.try_get("notify_to")?,
    })
}

/// Creates or updates a company. A new row gets a fresh incarnation, which
/// the company's scoped API tokens are bound to; an update keeps it.
pub async fn save(store: &Store, c: &Company) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO companies (id, name, notify_to, created_at, incarnation) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, notify_to = excluded.notify_to",
    )
    .bind(&c.id)
    .bind(&c.name)
    .bind(&c.notify_to)
    .bind(now_ms())
    .bind(new_incarnation())
    .execute(store.pool())
    .await?;
    Ok(())
}

fn new_incarnation() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The incarnation of company `id`: what its scoped tokens are bound to.
pub async fn incarnation(store: &Store, id: &str) -> Result<String, StoreError> {
    let row = sqlx::query("SELECT incarnation FROM companies WHERE id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "company",
            id: id.to_owned(),
        })?;
    let value: Option<String> = row.try_get("incarnation")?;
    value.ok_or_else(|| {
        StoreError::InUse(format!(
            "company {id:?} has no incarnation (its row was written outside syncbridge); save it again with `syncbridge company add {id}`"
        ))
    })
}

/// One company.
pub async fn get(store: &Store, id: &str) -> Result<Company, StoreError> {
    let row = sqlx::query("SELECT id, name, notify_to FROM companies WHERE id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "company",
            id: id.to_owned(),
        })?;
    Ok(from_row(&row)?)
}

/// All companies, or only `only` when set.
pub async fn list(store: &Store, only: Option<&str>) -> Result<Vec<Company>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, name, notify_to FROM companies WHERE ($1 IS NULL OR id = $1) ORDER BY id",
    )
    .bind(only)
    .fetch_all(store.pool())
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

/// Removes a company that owns nothing any more and, in the same
/// transaction, revokes every API token scoped to it.
pub async fn remove(store: &Store, id: &str) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await?;
    let owned: i64 = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM connections WHERE company_id = $1) + (SELECT COUNT(*) FROM profiles WHERE company_id = $1) AS n",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?
    .try_get("n")?;
    if owned > 0 {
        return Err(StoreError::InUse(format!(
            "company {id:?} still owns {owned} connection(s) or profile(s); remove those first"
        )));
    }
    sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1 WHERE company_id = $2 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let done = sqlx::query("DELETE FROM companies WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            what: "company",
            id: id.to_owned(),
        });
    }
    tx.commit().await?;
    Ok(())
}

/// Assigns a connection to a company (or none).
pub async fn assign_connection(
    store: &Store,
    connection: &str,
    company: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE connections SET company_id = $1 WHERE id = $2")
        .bind(company)
        .bind(connection)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// The company a connection belongs to.
pub async fn of_connection(store: &Store, connection: &str) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT company_id FROM connections WHERE id = $1")
        .bind(connection)
        .fetch_optional(store.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "connection",
            id: connection.to_owned(),
        })?;
    Ok(row.try_get("company_id")?)
}
