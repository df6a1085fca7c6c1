//! `/connections`: configured instances of connector plugins, with their
//! credentials (write-only: responses name slots and kinds, never values).

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use super::{visible_connection, Items};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use syncbridge_model::{Finding, Outcome};
use syncbridge_secrets::Credential;
use syncbridge_service::control::connections::{self, ConnectionChange};
use syncbridge_service::control::tokens::Role;
use syncbridge_service::hub::{Hub, NewConnection};
use syncbridge_store::ConnectionRecord;
use utoipa::ToSchema;

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

/// A credential to set, or `null` to remove the slot (documentation only).
pub struct CredentialChange;

impl utoipa::PartialSchema for CredentialChange {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(utoipa::openapi::Ref::from_schema_name("Credential"))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .into()
    }
}

impl ToSchema for CredentialChange {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            "Credential".to_owned(),
            <Credential as utoipa::PartialSchema>::schema(),
        ));
        <Credential as ToSchema>::schemas(schemas);
    }
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
    /// Letters, digits, '-' and '_' (at most 64), optionally in a company
    /// namespace `<company>.<name>`; company-scoped tokens must use theirs.
    #[schema(
        pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)?$",
        min_length = 1,
        max_length = 64
    )]
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
    /// Outbound requests in flight at once (default: the plugin's limit).
    #[schema(minimum = 1, maximum = 64)]
    pub max_concurrent: Option<u32>,
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, Credential>, example = json!({"api": {"kind": "basic", "username": "sync@example.com", "password": "..."}}))]
    pub credentials: CredentialsIn,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

/// Body of `PUT /connections/{id}`: fields left out keep their value.
///
/// Credentials are bound to the hosts and endpoints they were entered for:
/// changing a URL-like configuration key (`url`, `server`, `host`,
/// `endpoint`, `domain`, keys ending in `_url`, `_host`, `_endpoint`, …, or
/// any value that is an http(s) URL), `allowed_hosts` or
/// `allow_private_network` needs every stored credential slot set again (or
/// removed with `null`) in the same request; otherwise 422
/// `credentials_required`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionUpdate {
    /// Replaces the whole configuration. Changing a server setting (see
    /// `docs/api.md`) schedules a full re-sync of the profiles using it.
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    pub allowed_hosts: Option<Vec<String>>,
    pub allow_private_network: Option<bool>,
    /// Outbound requests in flight at once; `null` goes back to the plugin's limit.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 64)]
    pub max_concurrent: Option<Option<u32>>,
    /// Slots to set (or, with `null`, remove); slots left out are kept.
    #[schema(value_type = Option<BTreeMap<String, CredentialChange>>)]
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
        (status = 400, description = "Invalid name, configuration or credentials; a company-scoped token names new connections `<company>.<name>`", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 404, description = "No such plugin or company", body = ErrorBody),
        (status = 409, description = "The name is taken (for a company-scoped token: by one of its own company's connections)", body = ErrorBody),
        (status = 422, description = "`configuration`: the configuration does not match the plugin's schema; the message names each field's path and problem", body = ErrorBody),
    ))]
pub async fn create(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    ApiJson(body): ApiJson<ConnectionCreate>,
) -> ApiResult<(StatusCode, Json<ConnectionOut>)> {
    caller.require(Role::Admin)?;
    let company = caller.company_for_new(body.company_id)?;
    let credentials = parse_credentials(body.credentials)?;
    let new = NewConnection {
        id: body.id,
        plugin_id: body.plugin_id,
        config: body.config.to_string(),
        allowed_hosts: body.allowed_hosts,
        allow_private_network: body.allow_private_network,
        max_concurrent: body.max_concurrent,
        credentials,
    };
    let record = connections::create(&hub, caller.actor(), new, company.as_deref()).await?;
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
    let stopped = hub.store().connection_stopped(&id).await?;
    Ok(Json(show_record(&hub, record, company, stopped).await?))
}

#[utoipa::path(put, path = "/connections/{id}", tag = "connections",
    params(("id" = String, Path, description = "Connection name")),
    request_body = ConnectionUpdate,
    responses(
        (status = 200, description = "Updated; says whether a full re-sync was scheduled", body = ConnectionUpdated),
        (status = 400, description = "Invalid configuration or credentials", body = ErrorBody),
        (status = 403, description = "Needs the admin role; or the connection is shared with other companies' profiles (the MSP's) and the token is scoped to one company", body = ErrorBody),
        (status = 404, description = "No such connection (or company) in the token's scope", body = ErrorBody),
        (status = 409, description = "`sync_in_progress`: a run using the connection is running", body = ErrorBody),
        (status = 422, description = "`credentials_required`: a URL-like configuration key, `allowed_hosts` or `allow_private_network` changes, so every stored credential must be entered again (or removed) in the same request; `configuration`: the new configuration does not match the plugin's schema (each field's path and problem named)", body = ErrorBody),
    ))]
pub async fn update(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ConnectionUpdate>,
) -> ApiResult<Json<ConnectionUpdated>> {
    caller.require(Role::Admin)?;
    visible_connection(&hub, &caller, &id).await?;
    let mut credentials = BTreeMap::new();
    for (slot, value) in body.credentials.unwrap_or_default() {
        let credential = value.map(|v| parse_credential(&slot, &v)).transpose()?;
        credentials.insert(slot, credential);
    }
    let done = connections::update(
        &hub,
        caller.actor(),
        &id,
        ConnectionChange {
            config: body.config,
            allowed_hosts: body.allowed_hosts,
            allow_private_network: body.allow_private_network,
            max_concurrent: body.max_concurrent,
            credentials,
            company_id: body.company_id,
        },
    )
    .await?;
    let stopped = hub.store().connection_stopped(&id).await?;
    Ok(Json(ConnectionUpdated {
        connection: show_record(&hub, done.record, done.company_id, stopped).await?,
        full_resync_scheduled: !done.changed_server_settings.is_empty(),
        changed_server_settings: done.changed_server_settings,
        resync_profiles: done.resync_profiles,
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
    let (_, company) = visible_connection(&hub, &caller, &id).await?;
    if caller.company().is_some() && connections::is_shared(&hub, &id, company.as_deref()).await? {
        return Err(connections::ConnectionError::Shared { connection: id }.into());
    }
    connections::remove(&hub, &id).await?;
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
