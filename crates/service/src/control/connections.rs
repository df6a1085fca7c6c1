//! Changing a configured connection: the rules the REST API's
//! `PUT /connections/{id}` and the CLI's `connection update` share.
//!
//! - A credential goes only where it was entered for: changing a URL-like
//!   configuration key, the allowed hosts or the private-network flag needs
//!   every stored credential entered again (or removed) in the same change.
//! - A connection that profiles of other companies use is the MSP's: a
//!   company-scoped caller cannot change it.
//! - Nothing changes while a run uses the connection.
//! - Changing a server setting makes the next run of every profile using the
//!   connection a full re-sync.

pub use super::Actor;
use crate::control::companies;
use crate::control::runs::Runs;
use crate::hub::{Hub, HubError, NewConnection};
use crate::ids;
use sqlx::Row;
use std::collections::BTreeMap;
use syncbridge_runtime::capability::binding::CredentialBinding;
use syncbridge_secrets::Credential;
use syncbridge_store::{ConnectionRecord, StoreError};
use syncbridge_sync::profiles;

/// Configuration keys that say *which* data a connection reads: changing
/// one of them (or any key ending in `_url`) makes every profile using the
/// connection start its next run with a full re-sync, since cursors and
/// links from the old server or tenant no longer apply.
pub const SERVER_KEYS: &[&str] = &[
    "server",
    "url",
    "base_url",
    "host",
    "hostname",
    "endpoint",
    "directory",
    "domain",
    "tenant",
    "tenant_id",
    "version",
    "api_version",
    "zone",
    "site",
    "instance",
    "environment",
    "company",
    "company_id",
    "organization",
];

/// Whether a top-level configuration key is a server setting.
pub fn is_server_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SERVER_KEYS.contains(&key.as_str()) || key.ends_with("_url")
}

/// Server settings whose value differs between two configurations.
pub fn changed_server_keys(before: &serde_json::Value, after: &serde_json::Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let mut keys: Vec<String> = b
        .keys()
        .chain(a.keys())
        .filter(|k| is_server_key(k) && b.get(*k) != a.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// A change of a connection; fields left `None` keep their value.
#[derive(Debug, Default)]
pub struct ConnectionChange {
    /// Replaces the whole configuration (a JSON object).
    pub config: Option<serde_json::Value>,
    pub allowed_hosts: Option<Vec<String>>,
    pub allow_private_network: Option<bool>,
    /// `Some(None)` goes back to the plugin's limit.
    pub max_concurrent: Option<Option<u32>>,
    /// Slots to set (`Some`) or remove (`None`); slots left out are kept.
    pub credentials: BTreeMap<String, Option<Credential>>,
    /// Moves the connection to a company (`Some(None)`: to none).
    pub company_id: Option<Option<String>>,
}

/// What a change did.
#[derive(Debug)]
pub struct ConnectionUpdated {
    pub record: ConnectionRecord,
    pub company_id: Option<String>,
    /// Server settings that changed (the profiles using it re-sync fully).
    pub changed_server_settings: Vec<String>,
    /// Profiles marked for a full re-sync.
    pub resync_profiles: Vec<String>,
    /// Credential slots set or removed.
    pub credentials_changed: Vec<String>,
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    /// The plugin refused the configuration (its schema) or could not check it.
    #[error(transparent)]
    Plugin(#[from] HubError),
    /// Profiles still use the connection.
    #[error("{0}")]
    InUse(String),
    /// The change would send stored credentials somewhere they were not entered for.
    #[error("changing {} of connection {connection:?} needs its credentials entered again in the same request (set or remove slot(s) {}); credentials are only sent where they were entered for", changed.join(", "), quoted(slots))]
    CredentialsRequired {
        connection: String,
        changed: Vec<String>,
        slots: Vec<String>,
    },
    /// A company-scoped caller tried to change the MSP's shared connection.
    #[error("connection {connection:?} is shared with profiles of other companies and belongs to the MSP; ask an administrator with a token for every company to change it")]
    Shared { connection: String },
    /// A company-scoped caller tried to move a connection out of its company.
    #[error("this token is scoped to company {company:?} and cannot move connections to another")]
    ScopeViolation { company: String },
    #[error("a sync using connection {connection} is in progress (run {run}, profile {profile}); try again when it finishes")]
    SyncInProgress {
        connection: String,
        run: String,
        profile: String,
    },
}

fn quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("{i:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds a connection for `actor`, owned by `company` (a company-scoped
/// actor adds only to its own, in its namespace `<company>.<name>`): the id
/// checked once, the company known, the configuration a JSON object that
/// fits the plugin's schema, the credentials sealed and bound.
pub async fn create(
    hub: &Hub,
    actor: Actor<'_>,
    new: NewConnection,
    company: Option<&str>,
) -> Result<ConnectionRecord, ConnectionError> {
    if let Some(mine) = actor.company() {
        if company != Some(mine) {
            return Err(ConnectionError::ScopeViolation {
                company: mine.to_owned(),
            });
        }
    }
    ids::check_new_object_id("connection", &new.id, company, actor.company())
        .map_err(|e| ConnectionError::Invalid(e.to_string()))?;
    if let Some(c) = company {
        companies::get(hub.store(), c).await?;
    }
    match serde_json::from_str::<serde_json::Value>(&new.config) {
        Ok(v) if v.is_object() => {}
        _ => {
            return Err(ConnectionError::Invalid(
                "config must be a JSON object (the plugin's configuration)".into(),
            ))
        }
    }
    Ok(hub.add_connection_of(new, company).await?)
}

/// Whether a connection is used by a profile of a company other than its
/// own (or of no company): then it is the MSP's, whatever company it names.
pub async fn is_shared(hub: &Hub, id: &str, owner: Option<&str>) -> Result<bool, StoreError> {
    let rows = sqlx::query(
        "SELECT DISTINCT company_id FROM profiles WHERE source_connection = $1 OR target_connection = $1",
    )
    .bind(id)
    .fetch_all(hub.store().pool())
    .await?;
    for row in rows {
        let company: Option<String> = row.try_get("company_id")?;
        if company.as_deref() != owner || owner.is_none() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Refuses while a run using the connection is queued or running.
pub async fn refuse_while_running(hub: &Hub, id: &str) -> Result<(), ConnectionError> {
    if let Some(run) = Runs::new(hub.store().clone())
        .running_for_connection(id)
        .await?
    {
        return Err(ConnectionError::SyncInProgress {
            connection: id.to_owned(),
            run: run.id,
            profile: run.profile_id,
        });
    }
    Ok(())
}

/// Removes connection `id` with its credentials and state, unless a run
/// uses it now or a profile uses it at all.
pub async fn remove(hub: &Hub, id: &str) -> Result<(), ConnectionError> {
    hub.store().get_connection(id).await?;
    refuse_while_running(hub, id).await?;
    let users = profiles::using_connection(hub.store(), id).await?;
    if !users.is_empty() {
        return Err(ConnectionError::InUse(format!(
            "connection {id} is used by profile(s) {}; remove or change those first",
            users.join(", ")
        )));
    }
    hub.store().remove_connection(id).await?;
    hub.forget_connection(id);
    Ok(())
}

/// Applies `change` to connection `id` for `actor` (who must be able to see it).
pub async fn update(
    hub: &Hub,
    actor: Actor<'_>,
    id: &str,
    change: ConnectionChange,
) -> Result<ConnectionUpdated, ConnectionError> {
    let record = hub.store().get_connection(id).await?;
    let company = companies::of_connection(hub.store(), id).await?;
    if let Actor::Company(mine) = actor {
        if is_shared(hub, id, company.as_deref()).await? {
            return Err(ConnectionError::Shared {
                connection: id.to_owned(),
            });
        }
        if let Some(requested) = &change.company_id {
            if requested.as_deref() != Some(mine) {
                return Err(ConnectionError::ScopeViolation {
                    company: mine.to_owned(),
                });
            }
        }
    }
    let new_company = match change.company_id {
        None => company,
        Some(requested) => {
            if let Some(c) = &requested {
                companies::get(hub.store(), c).await?;
            }
            ids::check_object_id("connection", id, requested.as_deref())
                .map_err(|e| ConnectionError::Invalid(e.to_string()))?;
            requested
        }
    };
    let before: serde_json::Value = serde_json::from_str(&record.config).map_err(|e| {
        ConnectionError::Invalid(format!(
            "the stored configuration of connection {id} is not valid JSON ({e}); replace it with a full `config`"
        ))
    })?;
    let config = match change.config {
        Some(c) if !c.is_object() => {
            return Err(ConnectionError::Invalid(
                "config must be a JSON object (the plugin's configuration)".into(),
            ))
        }
        Some(c) => {
            let plugin = hub.plugin(&record.plugin_id).await?;
            hub.check_config(&plugin, &c).await?;
            c
        }
        None => before.clone(),
    };
    if let Some(limit) = change.max_concurrent {
        crate::hub::check_max_concurrent(limit).map_err(ConnectionError::Invalid)?;
    }
    if change.credentials.keys().any(String::is_empty) {
        return Err(ConnectionError::Invalid(
            "credential slot names must not be empty".into(),
        ));
    }
    let updated = ConnectionRecord {
        config: config.to_string(),
        allowed_hosts: change
            .allowed_hosts
            .unwrap_or_else(|| record.allowed_hosts.clone()),
        allow_private_network: change
            .allow_private_network
            .unwrap_or(record.allow_private_network),
        max_concurrent: change.max_concurrent.unwrap_or(record.max_concurrent),
        ..record.clone()
    };

    let old_binding = CredentialBinding::of(&record);
    let new_binding = CredentialBinding::of(&updated);
    let rebound = old_binding.differences(&new_binding);
    let stored = hub.store().credentials(id).await?;
    if !rebound.is_empty() {
        let missing: Vec<String> = stored
            .iter()
            .filter(|c| !change.credentials.contains_key(&c.slot))
            .map(|c| c.slot.clone())
            .collect();
        if !missing.is_empty() {
            return Err(ConnectionError::CredentialsRequired {
                connection: id.to_owned(),
                changed: rebound,
                slots: missing,
            });
        }
    }

    let mut set = Vec::new();
    let mut removed = Vec::new();
    for (slot, credential) in &change.credentials {
        match credential {
            Some(credential) => set.push(hub.seal_credential(id, slot, credential, &new_binding)),
            None => removed.push(slot.clone()),
        }
    }
    refuse_while_running(hub, id).await?;
    hub.store()
        .update_connection(&updated, new_company.as_deref(), &set, &removed)
        .await?;
    hub.forget_connection(id);

    let changed = changed_server_keys(&before, &config);
    let mut resync_profiles = Vec::new();
    if !changed.is_empty() {
        profiles::request_resync(hub.store(), id).await?;
        resync_profiles = profiles::using_connection(hub.store(), id).await?;
        tracing::info!(connection = %id, settings = ?changed, profiles = ?resync_profiles,
            "server settings changed: full re-sync scheduled");
    }
    if !rebound.is_empty() {
        tracing::info!(connection = %id, changed = ?rebound,
            "credentials entered again for the connection's new hosts and endpoints");
    }
    Ok(ConnectionUpdated {
        record: updated,
        company_id: new_company,
        changed_server_settings: changed,
        resync_profiles,
        credentials_changed: change.credentials.into_keys().collect(),
    })
}
