//! `/connections`: configured instances of connector plugins, with their
//! credentials (write-only: responses name slots and kinds, never values).

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use super::{check_company_exists, visible_connection, Items};
use crate::control::companies;
use crate::control::runs::Runs;
use crate::control::tokens::Role;
use crate::engine::profiles;
use crate::hub::{Hub, NewConnection};
use crate::runtime::bindings::connector_api::{Finding, Outcome};
use crate::secrets::Credential;
use crate::store::{now_ms, ConnectionRecord};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use utoipa::ToSchema;

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

/// A credential slot as shown: its name and kind, never its value.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialSlot {
    pub slot: String,
    /// basic | headers | oauth2-client-credentials | bearer
    pub kind: String,
}

/// A connection as shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionOut {
    pub id: String,
    pub plugin_id: String,
    pub company_id: Option<String>,
    /// The plugin configuration (never secrets).
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// Host patterns the plugin may call for this connection.
    pub allowed_hosts: Vec<String>,
    pub allow_private_network: bool,
    pub max_concurrent: Option<u32>,
    /// Credential slots (values are never returned).
    pub credentials: Vec<CredentialSlot>,
    /// Why the connection is stopped (a permanent authentication error);
    /// a passing connection test restarts it.
    pub stopped: Option<String>,
}

/// Credentials by slot, as `syncbridge connection add` reads them, e.g.
/// `{"api": {"kind": "basic", "username": "u", "password": "p"}}`. Kinds:
/// basic (username, password), headers ({"headers": {...}}),
/// oauth2-client-credentials (token_url, client_id, client_secret, scope),
/// bearer (token).
pub type CredentialsIn = BTreeMap<String, serde_json::Value>;

/// Body of `POST /connections`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionCreate {
    /// Letters, digits, '-' and '_' (at most 64).
    pub id: String,
    /// A connector plugin.
    pub plugin_id: String,
    /// Defaults to the token's company; scoped tokens cannot name another.
    pub company_id: Option<String>,
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    #[serde(default)]
    pub allow_private_network: bool,
    pub max_concurrent: Option<u32>,
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"api": {"kind": "basic", "username": "sync@example.com", "password": "..."}}))]
    pub credentials: CredentialsIn,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

/// Body of `PUT /connections/{id}`: fields left out keep their value.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionUpdate {
    /// Replaces the whole configuration. Changing a server setting (see
    /// `docs/api.md`) schedules a full re-sync of the profiles using it.
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    pub allowed_hosts: Option<Vec<String>>,
    pub allow_private_network: Option<bool>,
    /// `null` goes back to the plugin's limit.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u32>)]
    pub max_concurrent: Option<Option<u32>>,
    /// Slots to set (or, with `null`, remove); slots left out are kept.
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<BTreeMap<String, Option<serde_json::Value>>>,
    /// Unscoped tokens only: move the connection to a company (`null`: none).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub company_id: Option<Option<String>>,
}

fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Answer of `PUT /connections/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionUpdated {
    pub connection: ConnectionOut,
    /// Whether a server setting changed, so the profiles using the connection
    /// start their next run with a full re-sync.
    pub full_resync_scheduled: bool,
    /// The server settings that changed.
    pub changed_server_settings: Vec<String>,
    /// Profiles marked for the full re-sync.
    pub resync_profiles: Vec<String>,
}

/// One check of a connection test.
#[derive(Debug, Serialize, ToSchema)]
pub struct FindingOut {
    /// What was checked.
    pub check: String,
    /// ok | warning | failed | skipped
    pub outcome: String,
    pub cause: Option<String>,
    pub remedy: Option<String>,
}

impl From<&Finding> for FindingOut {
    fn from(f: &Finding) -> Self {
        Self {
            check: f.check.clone(),
            outcome: match f.outcome {
                Outcome::Ok => "ok",
                Outcome::Warning => "warning",
                Outcome::Failed => "failed",
                Outcome::Skipped => "skipped",
            }
            .to_owned(),
            cause: f.cause.clone(),
            remedy: f.remedy.clone(),
        }
    }
}

/// Answer of `POST /connections/{id}/test`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestOut {
    /// No check failed and the plugin's test ran.
    pub passed: bool,
    /// Offline checks of the configuration.
    pub config: Vec<FindingOut>,
    /// The plugin's checks of the service.
    pub connection: Vec<FindingOut>,
    /// What stopped the plugin's test, if it could not run.
    pub error: Option<String>,
}

/// Parses credentials; errors name the slot, never the value.
pub fn parse_credentials(raw: CredentialsIn) -> ApiResult<BTreeMap<String, Credential>> {
    raw.into_iter()
        .map(|(slot, value)| {
            let credential = parse_credential(&slot, &value)?;
            Ok((slot, credential))
        })
        .collect()
}

fn parse_credential(slot: &str, value: &serde_json::Value) -> ApiResult<Credential> {
    if slot.is_empty() {
        return Err(ApiError::invalid("credential slot names must not be empty"));
    }
    Credential::from_json(&value.to_string())
        .map_err(|e| ApiError::invalid(format!("credential slot {slot:?}: {e}")))
}

async fn show_record(
    hub: &Hub,
    record: ConnectionRecord,
    company_id: Option<String>,
    stopped: Option<String>,
) -> ApiResult<ConnectionOut> {
    let credentials = hub
        .store()
        .credentials(&record.id)
        .await?
        .into_iter()
        .map(|c| CredentialSlot {
            slot: c.slot,
            kind: c.kind,
        })
        .collect();
    Ok(ConnectionOut {
        config: serde_json::from_str(&record.config).unwrap_or(serde_json::Value::Null),
        id: record.id,
        plugin_id: record.plugin_id,
        company_id,
        allowed_hosts: record.allowed_hosts,
        allow_private_network: record.allow_private_network,
        max_concurrent: record.max_concurrent,
        credentials,
        stopped,
    })
}

/// Company and stop reason of every connection.
async fn control_columns(
    hub: &Hub,
) -> ApiResult<HashMap<String, (Option<String>, Option<String>)>> {
    let rows = sqlx::query("SELECT id, company_id, stopped FROM connections")
        .fetch_all(hub.store().pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("id")?,
                (r.try_get("company_id")?, r.try_get("stopped")?),
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(ApiError::from)
}

async fn stopped(hub: &Hub, id: &str) -> ApiResult<Option<String>> {
    let row = sqlx::query("SELECT stopped FROM connections WHERE id = $1")
        .bind(id)
        .fetch_optional(hub.store().pool())
        .await?;
    Ok(match row {
        Some(r) => r.try_get("stopped")?,
        None => None,
    })
}

/// 409 `sync_in_progress` while a run using the connection is running.
async fn refuse_while_running(hub: &Hub, id: &str) -> ApiResult<()> {
    if let Some(run) = Runs::new(hub.store().clone())
        .running_for_connection(id)
        .await?
    {
        return Err(ApiError::sync_in_progress(format!(
            "a sync using connection {id} is in progress (run {}, profile {}); try again when it finishes",
            run.id, run.profile_id
        )));
    }
    Ok(())
}

#[utoipa::path(get, path = "/connections", tag = "connections",
    responses((status = 200, description = "Connections in the token's scope", body = Items<ConnectionOut>)))]
pub async fn list(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
) -> ApiResult<Json<Items<ConnectionOut>>> {
    let columns = control_columns(&hub).await?;
    let mut out = Vec::new();
    for record in hub.store().list_connections().await? {
        let (company, stopped) = columns.get(&record.id).cloned().unwrap_or_default();
        if caller.sees(company.as_deref()) {
            out.push(show_record(&hub, record, company, stopped).await?);
        }
    }
    Ok(Json(out.into()))
}

#[utoipa::path(post, path = "/connections", tag = "connections",
    request_body = ConnectionCreate,
    responses(
        (status = 201, description = "Created (credentials are sealed; never returned)", body = ConnectionOut),
        (status = 400, description = "Invalid name, configuration or credentials", body = ErrorBody),
        (status = 404, description = "No such plugin or company", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
    ))]
pub async fn create(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    ApiJson(body): ApiJson<ConnectionCreate>,
) -> ApiResult<(StatusCode, Json<ConnectionOut>)> {
    caller.require(Role::Admin)?;
    let company = caller.company_for_new(body.company_id)?;
    if let Some(c) = &company {
        check_company_exists(&hub, c).await?;
    }
    if !body.config.is_object() {
        return Err(ApiError::invalid(
            "config must be a JSON object (the plugin's configuration)",
        ));
    }
    let credentials = parse_credentials(body.credentials)?;
    let record = hub
        .add_connection(NewConnection {
            id: body.id,
            plugin_id: body.plugin_id,
            config: body.config.to_string(),
            allowed_hosts: body.allowed_hosts,
            allow_private_network: body.allow_private_network,
            max_concurrent: body.max_concurrent,
            credentials,
        })
        .await?;
    if company.is_some() {
        if let Err(e) =
            companies::assign_connection(hub.store(), &record.id, company.as_deref()).await
        {
            let _ = hub.store().remove_connection(&record.id).await;
            return Err(e.into());
        }
    }
    let out = show_record(&hub, record, company, None).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/connections/{id}", tag = "connections",
    params(("id" = String, Path, description = "Connection name")),
    responses(
        (status = 200, description = "The connection (credential slots and kinds only)", body = ConnectionOut),
        (status = 404, description = "No such connection in the token's scope", body = ErrorBody),
    ))]
pub async fn show(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ConnectionOut>> {
    let (record, company) = visible_connection(&hub, &caller, &id).await?;
    let stopped = stopped(&hub, &id).await?;
    Ok(Json(show_record(&hub, record, company, stopped).await?))
}

#[utoipa::path(put, path = "/connections/{id}", tag = "connections",
    params(("id" = String, Path, description = "Connection name")),
    request_body = ConnectionUpdate,
    responses(
        (status = 200, description = "Updated; says whether a full re-sync was scheduled", body = ConnectionUpdated),
        (status = 400, description = "Invalid configuration or credentials", body = ErrorBody),
        (status = 404, description = "No such connection in the token's scope", body = ErrorBody),
        (status = 409, description = "`sync_in_progress`: a run using the connection is running", body = ErrorBody),
    ))]
pub async fn update(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ConnectionUpdate>,
) -> ApiResult<Json<ConnectionUpdated>> {
    caller.require(Role::Admin)?;
    let (record, company) = visible_connection(&hub, &caller, &id).await?;
    let new_company = match body.company_id {
        None => company,
        Some(requested) => {
            if caller.company().is_some() && requested.as_deref() != caller.company() {
                return Err(ApiError::invalid(format!(
                    "this token is scoped to company {:?} and cannot move connections to another",
                    caller.company().unwrap_or_default()
                )));
            }
            if let Some(c) = &requested {
                check_company_exists(&hub, c).await?;
            }
            requested
        }
    };
    let before: serde_json::Value = serde_json::from_str(&record.config).unwrap_or_default();
    let config = match body.config {
        Some(c) if !c.is_object() => {
            return Err(ApiError::invalid(
                "config must be a JSON object (the plugin's configuration)",
            ))
        }
        Some(c) => c,
        None => before.clone(),
    };
    let mut set = Vec::new();
    let mut removed = Vec::new();
    for (slot, value) in body.credentials.unwrap_or_default() {
        match value {
            Some(value) => {
                let credential = parse_credential(&slot, &value)?;
                set.push(hub.seal_credential(&id, &slot, &credential));
            }
            None => removed.push(slot),
        }
    }
    refuse_while_running(&hub, &id).await?;

    let updated = ConnectionRecord {
        config: config.to_string(),
        allowed_hosts: body.allowed_hosts.unwrap_or(record.allowed_hosts),
        allow_private_network: body
            .allow_private_network
            .unwrap_or(record.allow_private_network),
        max_concurrent: body.max_concurrent.unwrap_or(record.max_concurrent),
        ..record
    };
    let now = now_ms();
    let mut tx = hub.store().pool().begin().await?;
    sqlx::query(
        "UPDATE connections SET config = $1, allowed_hosts = $2, allow_private_network = $3,
             max_concurrent = $4, company_id = $5, updated_at = $6 WHERE id = $7",
    )
    .bind(&updated.config)
    .bind(serde_json::to_string(&updated.allowed_hosts).expect("list serialises"))
    .bind(i64::from(updated.allow_private_network))
    .bind(updated.max_concurrent.map(i64::from))
    .bind(new_company.as_deref())
    .bind(now)
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    for slot in removed.iter().chain(set.iter().map(|c| &c.slot)) {
        sqlx::query("DELETE FROM credentials WHERE connection_id = $1 AND slot = $2")
            .bind(&id)
            .bind(slot)
            .execute(&mut *tx)
            .await?;
    }
    for cred in &set {
        sqlx::query(
            "INSERT INTO credentials (connection_id, slot, kind, key_id, nonce, ciphertext, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(&cred.slot)
        .bind(&cred.kind)
        .bind(&cred.sealed.key_id)
        .bind(&cred.sealed.nonce)
        .bind(&cred.sealed.ciphertext)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    hub.forget_connection(&id);

    let changed = changed_server_keys(&before, &config);
    let mut resync_profiles = Vec::new();
    if !changed.is_empty() {
        profiles::request_resync(hub.store(), &id).await?;
        resync_profiles = profiles::using_connection(hub.store(), &id).await?;
        tracing::info!(connection = %id, settings = ?changed, profiles = ?resync_profiles,
            "server settings changed: full re-sync scheduled");
    }
    let stopped = stopped(&hub, &id).await?;
    Ok(Json(ConnectionUpdated {
        connection: show_record(&hub, updated, new_company, stopped).await?,
        full_resync_scheduled: !changed.is_empty(),
        changed_server_settings: changed,
        resync_profiles,
    }))
}

#[utoipa::path(delete, path = "/connections/{id}", tag = "connections",
    params(("id" = String, Path, description = "Connection name")),
    responses(
        (status = 204, description = "Removed with its credentials and state"),
        (status = 404, description = "No such connection in the token's scope", body = ErrorBody),
        (status = 409, description = "Profiles use it, or a run using it is running", body = ErrorBody),
    ))]
pub async fn remove(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    visible_connection(&hub, &caller, &id).await?;
    refuse_while_running(&hub, &id).await?;
    let users = profiles::using_connection(hub.store(), &id).await?;
    if !users.is_empty() {
        return Err(ApiError::conflict(format!(
            "connection {id} is used by profile(s) {}; remove or change those first",
            users.join(", ")
        )));
    }
    hub.store().remove_connection(&id).await?;
    hub.forget_connection(&id);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/connections/{id}/test", tag = "connections",
    params(("id" = String, Path, description = "Connection name")),
    responses(
        (status = 200, description = "The findings; a passing test restarts a stopped connection", body = TestOut),
        (status = 404, description = "No such connection in the token's scope", body = ErrorBody),
    ))]
pub async fn test(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<TestOut>> {
    caller.require(Role::Operator)?;
    visible_connection(&hub, &caller, &id).await?;
    let report = hub.test_connection(&id).await?;
    let config: Vec<FindingOut> = report.config.iter().map(FindingOut::from).collect();
    let (connection, error) = match &report.connection {
        Ok(findings) => (findings.iter().map(FindingOut::from).collect(), None),
        Err(e) => (Vec::new(), Some(e.clone())),
    };
    let passed = error.is_none()
        && config
            .iter()
            .chain(&connection)
            .all(|f| f.outcome != "failed");
    Ok(Json(TestOut {
        passed,
        config,
        connection,
        error,
    }))
}
