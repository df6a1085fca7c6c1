//! API tokens: `sbt_<id>_<secret>`, stored as the SHA-256 of the secret,
//! each with a role and optionally scoped to one company.

use super::new_id;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use syncbridge_store::{now_ms, Store, StoreError};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Read everything in scope.
    Viewer,
    /// Viewer + run, dry run, approve plans, quarantine actions, enable/disable.
    Operator,
    /// Operator + plugins, connections, credentials, profiles, companies.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?}: use admin, operator or viewer"
            )),
        }
    }
}

/// A token as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// `None` = every company.
    pub company_id: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked: bool,
}

/// Who is calling, once a token checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: String,
    pub role: Role,
    pub company_id: Option<String>,
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A token row; a role this version does not know is an error naming the
/// token, never a weaker or stronger role in its place.
fn from_row(r: &sqlx::any::AnyRow) -> Result<TokenInfo, StoreError> {
    let id: String = r.try_get("id")?;
    let role: String = r.try_get("role")?;
    let role = role.parse().map_err(|_| StoreError::Invalid {
        what: "API token",
        id: id.clone(),
        detail: format!(
            "unknown role {role:?}; revoke it (`syncbridge token revoke {id}`) and create a new one"
        ),
    })?;
    Ok(TokenInfo {
        id,
        name: r.try_get("name")?,
        role,
        company_id: r.try_get("company_id")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
        revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
    })
}

/// Creates a token; returns its info and the full token text, shown once.
/// A scoped token is bound to the company's current incarnation: it stops
/// working when the company is deleted, even if the id is created again.
pub async fn create(
    store: &Store,
    name: &str,
    role: Role,
    company_id: Option<&str>,
) -> Result<(TokenInfo, String), StoreError> {
    let incarnation = match company_id {
        Some(c) => Some(super::companies::incarnation(store, c).await?),
        None => None,
    };
    let id = new_id("tok").replace('-', "");
    let mut secret = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut secret);
    let secret = hex::encode(secret);
    let created_at = now_ms();
    sqlx::query(
        "INSERT INTO api_tokens (id, name, role, company_id, company_incarnation, secret_hash, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(name)
    .bind(role.as_str())
    .bind(company_id)
    .bind(incarnation.as_deref())
    .bind(hash(&secret))
    .bind(created_at)
    .execute(store.pool())
    .await?;
    let token = format!("sbt_{id}_{secret}");
    let info = TokenInfo {
        id,
        name: name.to_owned(),
        role,
        company_id: company_id.map(str::to_owned),
        created_at,
        last_used_at: None,
        revoked: false,
    };
    Ok((info, token))
}

/// Every token, newest first.
pub async fn list(store: &Store) -> Result<Vec<TokenInfo>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, name, role, company_id, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY created_at DESC",
    )
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Revokes a token.
pub async fn revoke(store: &Store, id: &str) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(store.pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            what: "token",
            id: id.to_owned(),
        });
    }
    Ok(())
}

/// Checks a presented token; `None` when it is unknown, malformed, revoked,
/// or scoped to a company that no longer exists as the one it was made for.
pub async fn authenticate(store: &Store, presented: &str) -> Result<Option<Principal>, StoreError> {
    let Some((id, secret)) = presented
        .strip_prefix("sbt_")
        .and_then(|rest| rest.split_once('_'))
    else {
        return Ok(None);
    };
    let Some(row) = sqlx::query(
        "SELECT t.role, t.company_id, t.secret_hash FROM api_tokens t
         LEFT JOIN companies c ON c.id = t.company_id
         WHERE t.id = $1 AND t.revoked_at IS NULL
           AND (t.company_id IS NULL OR (c.incarnation IS NOT NULL AND c.incarnation = t.company_incarnation))",
    )
    .bind(id)
    .fetch_optional(store.pool())
    .await?
    else {
        return Ok(None);
    };
    let stored: String = row.try_get("secret_hash")?;
    if !constant_time_eq(stored.as_bytes(), hash(secret).as_bytes()) {
        return Ok(None);
    }
    sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(store.pool())
        .await?;
    Ok(Some(Principal {
        token_id: id.to_owned(),
        role: row
            .try_get::<String, _>("role")?
            .parse()
            .unwrap_or(Role::Viewer),
        company_id: row.try_get("company_id")?,
    }))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
