//! Alerts: conditions an operator must act on (a connection stopped by an
//! auth error, a plan held by the brakes, a failed run).

use super::new_id;
use serde::{Deserialize, Serialize};
use syncbridge_store::{now_ms, Store, StoreError};

/// One alert (a row of `alerts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Alert {
    pub id: String,
    pub company_id: Option<String>,
    pub connection_id: Option<String>,
    pub profile_id: Option<String>,
    pub run_id: Option<String>,
    /// The mailbox whose owner the alert is for (its alerts wall).
    pub mailbox_id: Option<String>,
    /// error | warning | info
    pub severity: String,
    /// Stable code, e.g. `connection_auth_failed`, `plan_held`, `run_failed`.
    pub code: String,
    pub message: String,
    pub at: i64,
    pub resolved_at: Option<i64>,
}

/// An alert to raise.
#[derive(Debug, Clone, Default)]
pub struct NewAlert<'a> {
    pub company_id: Option<&'a str>,
    pub connection_id: Option<&'a str>,
    pub profile_id: Option<&'a str>,
    pub run_id: Option<&'a str>,
    pub mailbox_id: Option<&'a str>,
    pub severity: &'a str,
    pub code: &'a str,
    pub message: &'a str,
}

/// Raises an alert.
pub async fn raise(store: &Store, a: NewAlert<'_>) -> Result<Alert, StoreError> {
    let id = new_id("alert");
    let at = now_ms();
    sqlx::query(
        "INSERT INTO alerts (id, company_id, connection_id, profile_id, run_id, mailbox_id, severity, code, message, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&id)
    .bind(a.company_id)
    .bind(a.connection_id)
    .bind(a.profile_id)
    .bind(a.run_id)
    .bind(a.mailbox_id)
    .bind(a.severity)
    .bind(a.code)
    .bind(a.message)
    .bind(at)
    .execute(store.pool())
    .await?;
    let owned = |s: Option<&str>| s.map(str::to_owned);
    Ok(Alert {
        id,
        company_id: owned(a.company_id),
        connection_id: owned(a.connection_id),
        profile_id: owned(a.profile_id),
        run_id: owned(a.run_id),
        mailbox_id: owned(a.mailbox_id),
        severity: a.severity.to_owned(),
        code: a.code.to_owned(),
        message: a.message.to_owned(),
        at,
        resolved_at: None,
    })
}

/// Alerts, newest first; open ones only unless `all`; only those of one
/// mailbox's owner when `mailbox` is given.
pub async fn list(
    store: &Store,
    company: Option<&str>,
    mailbox: Option<&str>,
    all: bool,
) -> Result<Vec<Alert>, StoreError> {
    Ok(sqlx::query_as::<_, Alert>(
        "SELECT * FROM alerts WHERE ($1 IS NULL OR company_id = $1) AND ($2 IS NULL OR mailbox_id = $2)
         AND ($3 = 1 OR resolved_at IS NULL)
         ORDER BY at DESC LIMIT 500",
    )
    .bind(company)
    .bind(mailbox)
    .bind(i64::from(all))
    .fetch_all(store.pool())
    .await?)
}

/// One alert.
pub async fn get(store: &Store, id: &str) -> Result<Alert, StoreError> {
    sqlx::query_as::<_, Alert>("SELECT * FROM alerts WHERE id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "alert",
            id: id.to_owned(),
        })
}

/// Marks an alert resolved.
pub async fn resolve(store: &Store, id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE alerts SET resolved_at = $1 WHERE id = $2 AND resolved_at IS NULL")
        .bind(now_ms())
        .bind(id)
        .execute(store.pool())
        .await?;
    Ok(())
}
