//! Mailboxes of a connection: discovered from the directory (the connector's
//! `mailboxes` pull scope), then approved and enabled by an operator, each
//! with its own settings.
//!
//! - A discovered mailbox arrives **disabled and unapproved**; discovering
//!   again keeps the flags and settings of known mailboxes (only the display
//!   name follows the directory).
//! - A mailbox is enabled only once approved ("approve it first").
//! - A permanent authentication error of one mailbox (HTTP 401) disables it
//!   with status `disabled-auth` ([`disable_for_auth`]); enabling it again
//!   puts it back to `untested`.
//!
//! Ids are `<connection>:<address in lower case>` ([`mailbox_id`]).

use crate::hub::Hub;
use crate::plugin_endpoints::ConnectionEndpoint;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::Row;
use syncbridge_model::ItemBody;
use syncbridge_store::{now_ms, Store, StoreError};
use syncbridge_sync::endpoint::Source;
use syncbridge_sync::retry::RetryPolicy;
use syncbridge_sync::EndpointError;

/// Status of a mailbox that was never tested.
pub const STATUS_UNTESTED: &str = "untested";
/// Status of a mailbox that works.
pub const STATUS_OK: &str = "ok";
/// Status of a mailbox disabled by a permanent authentication error.
pub const STATUS_DISABLED_AUTH: &str = "disabled-auth";

/// The connector scope that lists a connection's mailboxes.
pub const DISCOVERY_SCOPE: &str = "mailboxes";

/// One mailbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mailbox {
    /// `<connection>:<address in lower case>`.
    pub id: String,
    pub connection_id: String,
    /// The company of the connection (what API tokens are scoped to).
    pub company_id: Option<String>,
    pub address: String,
    pub display_name: Option<String>,
    pub enabled: bool,
    pub approved: bool,
    /// A JSON object.
    pub settings: Value,
    /// untested | ok | disabled-auth
    pub status: String,
    /// Why (for `disabled-auth`: the error).
    pub status_detail: Option<String>,
    pub discovered_at: i64,
    pub updated_at: i64,
}

/// What one discovery found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovered {
    /// Mailboxes seen for the first time (disabled, unapproved).
    pub new: u64,
    /// Mailboxes already known (flags and settings kept).
    pub known: u64,
}

/// How [`set_settings`] combines the given object with the stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsMode {
    /// The given object becomes the settings.
    Replace,
    /// Top-level keys of the given object overwrite the stored ones; a key
    /// set to `null` is removed; other keys are kept.
    Merge,
}

/// The id of the mailbox `address` of `connection`.
pub fn mailbox_id(connection: &str, address: &str) -> String {
    format!("{connection}:{}", address.trim().to_lowercase())
}

const SELECT: &str =
    "SELECT m.id, m.connection_id, c.company_id, m.address, m.display_name, m.enabled, m.approved,
    m.settings, m.status, m.status_detail, m.discovered_at, m.updated_at
    FROM mailboxes m JOIN connections c ON c.id = m.connection_id";

/// A mailbox row; settings that are not a JSON object are an error naming
/// the mailbox, never empty settings in their place.
fn from_row(r: &sqlx::any::AnyRow) -> Result<Mailbox, StoreError> {
    let id: String = r.try_get("id")?;
    let settings: String = r.try_get("settings")?;
    let settings = match serde_json::from_str::<Value>(&settings) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) | Err(_) => {
            return Err(StoreError::Invalid {
                what: "mailbox",
                id: id.clone(),
                detail: format!(
                    "its stored settings are not a JSON object; set them again with PUT /api/v1/mailboxes/{id}/settings"
                ),
            })
        }
    };
    Ok(Mailbox {
        id,
        connection_id: r.try_get("connection_id")?,
        company_id: r.try_get("company_id")?,
        address: r.try_get("address")?,
        display_name: r.try_get("display_name")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        approved: r.try_get::<i64, _>("approved")? != 0,
        settings,
        status: r.try_get("status")?,
        status_detail: r.try_get("status_detail")?,
        discovered_at: r.try_get("discovered_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        what: "mailbox",
        id: id.to_owned(),
    }
}

/// Records mailboxes `(address, display name)` seen on `connection`: new
/// ones arrive disabled and unapproved; known ones keep their flags,
/// settings and status (their display name is updated). Blank addresses are
/// ignored; an address listed twice counts once.
pub async fn upsert_discovered(
    store: &Store,
    connection: &str,
    found: &[(String, Option<String>)],
) -> Result<Discovered, StoreError> {
    // A missing connection is a clear error, not a foreign-key failure.
    let exists = sqlx::query("SELECT id FROM connections WHERE id = $1")
        .bind(connection)
        .fetch_optional(store.pool())
        .await?;
    if exists.is_none() {
        return Err(StoreError::NotFound {
            what: "connection",
            id: connection.to_owned(),
        });
    }
    let now = now_ms();
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Discovered::default();
    let mut tx = store.begin_write().await?;
    for (address, display_name) in found {
        let address = address.trim();
        if address.is_empty() {
            continue;
        }
        let id = mailbox_id(connection, address);
        if !seen.insert(id.clone()) {
            continue;
        }
        let display_name = display_name
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let inserted = sqlx::query(
            "INSERT INTO mailboxes (id, connection_id, address, display_name, enabled, approved, settings, status, discovered_at, updated_at)
             VALUES ($1, $2, $3, $4, 0, 0, '{}', $5, $6, $6)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&id)
        .bind(connection)
        .bind(address)
        .bind(display_name)
        .bind(STATUS_UNTESTED)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() > 0 {
            out.new += 1;
        } else {
            out.known += 1;
            sqlx::query("UPDATE mailboxes SET display_name = $1 WHERE id = $2")
                .bind(display_name)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(out)
}

/// Mailboxes ordered by connection and address, optionally only those of
/// `connection` and/or of connections of `company`.
pub async fn list(
    store: &Store,
    connection: Option<&str>,
    company: Option<&str>,
) -> Result<Vec<Mailbox>, StoreError> {
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE ($1 IS NULL OR m.connection_id = $1) AND ($2 IS NULL OR c.company_id = $2)
         ORDER BY m.connection_id, m.address"
    ))
    .bind(connection)
    .bind(company)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// One mailbox.
pub async fn get(store: &Store, id: &str) -> Result<Mailbox, StoreError> {
    let row = sqlx::query(&format!("{SELECT} WHERE m.id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await?
        .ok_or_else(|| not_found(id))?;
    from_row(&row)
}

/// Whether a mailbox is enabled (an unknown one is not).
pub async fn is_enabled(store: &Store, id: &str) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT enabled FROM mailboxes WHERE id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
    Ok(match row {
        Some(r) => r.try_get::<i64, _>("enabled")? != 0,
        None => false,
    })
}

/// Enables or disables a mailbox. Enabling an unapproved mailbox is refused
/// ([`StoreError::InUse`], "approve it first"); enabling one disabled by an
/// authentication error puts its status back to `untested`.
pub async fn set_enabled(store: &Store, id: &str, enabled: bool) -> Result<Mailbox, StoreError> {
    let current = get(store, id).await?;
    if enabled && !current.approved {
        return Err(StoreError::InUse(format!(
            "mailbox {id:?} is not approved: approve it first, then enable it"
        )));
    }
    if enabled {
        sqlx::query(
            "UPDATE mailboxes SET enabled = 1, updated_at = $1,
                 status = CASE WHEN status = $2 THEN $3 ELSE status END,
                 status_detail = CASE WHEN status = $2 THEN NULL ELSE status_detail END
             WHERE id = $4",
        )
        .bind(now_ms())
        .bind(STATUS_DISABLED_AUTH)
        .bind(STATUS_UNTESTED)
        .bind(id)
        .execute(store.pool())
        .await?;
    } else {
        sqlx::query("UPDATE mailboxes SET enabled = 0, updated_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(store.pool())
            .await?;
    }
    get(store, id).await
}

/// Approves a mailbox (it stays disabled until enabled).
pub async fn approve(store: &Store, id: &str) -> Result<Mailbox, StoreError> {
    let done = sqlx::query("UPDATE mailboxes SET approved = 1, updated_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(store.pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(not_found(id));
    }
    get(store, id).await
}

fn combine(stored: &Value, given: &Map<String, Value>, mode: SettingsMode) -> Value {
    match mode {
        SettingsMode::Replace => Value::Object(given.clone()),
        SettingsMode::Merge => {
            let mut out = stored.as_object().cloned().unwrap_or_default();
            for (k, v) in given {
                if v.is_null() {
                    out.remove(k);
                } else {
                    out.insert(k.clone(), v.clone());
                }
            }
            Value::Object(out)
        }
    }
}

fn settings_object(settings: &Value) -> Result<&Map<String, Value>, StoreError> {
    settings.as_object().ok_or_else(|| {
        StoreError::InUse(
            "mailbox settings must be a JSON object, e.g. {\"sync_calendar\": true}".to_owned(),
        )
    })
}

/// Sets a mailbox's settings (a JSON object), replacing or merging
/// ([`SettingsMode`]). A non-object is refused ([`StoreError::InUse`]).
pub async fn set_settings(
    store: &Store,
    id: &str,
    settings: &Value,
    mode: SettingsMode,
) -> Result<Mailbox, StoreError> {
    let given = settings_object(settings)?;
    let current = get(store, id).await?;
    let next = combine(&current.settings, given, mode);
    sqlx::query("UPDATE mailboxes SET settings = $1, updated_at = $2 WHERE id = $3")
        .bind(next.to_string())
        .bind(now_ms())
        .bind(id)
        .execute(store.pool())
        .await?;
    get(store, id).await
}

/// Merges `settings` (a JSON object, [`SettingsMode::Merge`]) into every
/// mailbox of `ids`, all or nothing: an unknown id changes none
/// ([`StoreError::NotFound`]). Answers the updated mailboxes.
pub async fn apply_settings_to_many(
    store: &Store,
    ids: &[String],
    settings: &Value,
) -> Result<Vec<Mailbox>, StoreError> {
    let given = settings_object(settings)?;
    let mut tx = store.begin_write().await?;
    let now = now_ms();
    for id in ids {
        let row = sqlx::query("SELECT settings FROM mailboxes WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| not_found(id))?;
        let stored: String = row.try_get("settings")?;
        let stored: Value = serde_json::from_str(&stored).unwrap_or(Value::Null);
        let next = combine(&stored, given, SettingsMode::Merge);
        sqlx::query("UPDATE mailboxes SET settings = $1, updated_at = $2 WHERE id = $3")
            .bind(next.to_string())
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(get(store, id).await?);
    }
    Ok(out)
}

/// Disables a mailbox after a permanent authentication error (HTTP 401):
/// `enabled = 0`, status `disabled-auth` with `why` as detail. It stays
/// disabled until an operator enables it again.
pub async fn disable_for_auth(store: &Store, id: &str, why: &str) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE mailboxes SET enabled = 0, status = $1, status_detail = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(STATUS_DISABLED_AUTH)
    .bind(why)
    .bind(now_ms())
    .bind(id)
    .execute(store.pool())
    .await?;
    if done.rows_affected() == 0 {
        return Err(not_found(id));
    }
    Ok(())
}

/// Why a discovery failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The connector could not list the mailboxes.
    #[error("the connection could not list its mailboxes: {0}")]
    Source(#[from] EndpointError),
    /// The connector never finished the pass.
    #[error("the connection's mailbox list did not end after {0} pages")]
    TooManyPages(usize),
}

/// Most pages one discovery reads (999 mailboxes a page).
pub const MAX_DISCOVERY_PAGES: usize = 10_000;

/// Pulls the connection's `mailboxes` scope (a full pass) and records what
/// it lists ([`upsert_discovered`]).
pub async fn discover(hub: &Hub, connection: &str) -> Result<Discovered, DiscoverError> {
    // The connection must exist before the plugin is called.
    hub.store().get_connection(connection).await?;
    let source = ConnectionEndpoint {
        hub,
        connection: connection.to_owned(),
        retry: RetryPolicy::default(),
    };
    let mut found = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        pages += 1;
        if pages > MAX_DISCOVERY_PAGES {
            return Err(DiscoverError::TooManyPages(MAX_DISCOVERY_PAGES));
        }
        let page = source.pull(DISCOVERY_SCOPE, cursor.take(), 999).await?;
        for item in page.items {
            if item.removed.is_some() {
                continue;
            }
            if let Some(ItemBody::Mailbox(m)) = item.body {
                found.push((m.address, m.display_name));
            }
        }
        if !page.more {
            break;
        }
        cursor = page.cursor;
    }
    Ok(upsert_discovered(hub.store(), connection, &found).await?)
}
