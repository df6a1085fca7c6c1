//! `/plugins`: list (every token), install by upload and remove (an admin
//! token not scoped to a company: plugins are shared).

use super::auth::Caller;
use super::error::{ApiError, ApiQuery, ApiResult, ErrorBody};
use super::Items;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use syncbridge_service::hub::Hub;
use syncbridge_store::PluginRecord;
use utoipa::{IntoParams, ToSchema};

/// An installed plugin.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginOut {
    pub id: String,
    pub version: String,
    pub vendor: String,
    /// `connector` or `mapper`.
    pub kind: String,
    pub wit_version: String,
    /// sha256 of the component, hex.
    pub digest: String,
    /// The manifest (`plugin.toml`) as JSON: outbound hosts, config schema, limits.
    #[schema(value_type = Object)]
    pub manifest: serde_json::Value,
    /// Milliseconds since the Unix epoch.
    pub installed_at: i64,
}

impl From<PluginRecord> for PluginOut {
    fn from(p: PluginRecord) -> Self {
        Self {
            manifest: serde_json::from_str(&p.manifest).unwrap_or(serde_json::Value::Null),
            id: p.id,
            version: p.version,
            vendor: p.vendor,
            kind: p.kind,
            wit_version: p.wit_version,
            digest: p.digest,
            installed_at: p.installed_at,
        }
    }
}

/// A plugin package: a `.tar.gz` holding plugin.toml and the component it
/// names, sent as the raw request body (at most 96 MiB, 64 entries, 96 MiB
/// unpacked, 100:1 compression).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct PackageArchive(pub Vec<u8>);

/// Query of `POST /plugins`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InstallQuery {
    /// Expected sha256 of the component (hex). Archives must be pinned here
    /// or by `sha256 = "..."` in their plugin.toml.
    pub sha256: Option<String>,
}

#[utoipa::path(get, path = "/plugins", tag = "plugins",
    responses(
        (status = 200, description = "Installed plugins", body = Items<PluginOut>),
        (status = 401, description = "No valid token", body = ErrorBody),
    ))]
pub async fn list(
    State(hub): State<Arc<Hub>>,
    _caller: Caller,
) -> ApiResult<Json<Items<PluginOut>>> {
    let plugins = hub.store().list_plugins().await?;
    Ok(Json(
        plugins
            .into_iter()
            .map(PluginOut::from)
            .collect::<Vec<_>>()
            .into(),
    ))
}

#[utoipa::path(post, path = "/plugins", tag = "plugins",
    params(InstallQuery),
    request_body(content = PackageArchive, content_type = "application/gzip",
        description = "The package: a `.tar.gz` holding plugin.toml and the component it names"),
    responses(
        (status = 201, description = "Installed (or updated)", body = PluginOut),
        (status = 400, description = "The package was refused (digest, WIT version, manifest, archive limits)", body = ErrorBody),
        (status = 403, description = "Needs an admin token not scoped to a company", body = ErrorBody),
    ))]
pub async fn install(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<InstallQuery>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<PluginOut>)> {
    caller.require_global_admin()?;
    if body.is_empty() {
        return Err(ApiError::invalid(
            "the body is empty: send the package .tar.gz as the request body",
        ));
    }
    // Unpacked from memory within the archive limits, on the blocking pool;
    // no temporary files.
    let record = hub
        .install_plugin_archive(body, "upload", query.sha256.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

#[utoipa::path(delete, path = "/plugins/{id}", tag = "plugins",
    params(("id" = String, Path, description = "Plugin id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such plugin", body = ErrorBody),
        (status = 409, description = "A connection or profile still uses it", body = ErrorBody),
    ))]
pub async fn remove(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_global_admin()?;
    let rows = sqlx::query("SELECT id FROM profiles WHERE mapper_plugin = $1 ORDER BY id")
        .bind(&id)
        .fetch_all(hub.store().pool())
        .await?;
    if !rows.is_empty() {
        let users: Vec<String> = rows
            .iter()
            .map(|r| sqlx::Row::try_get::<String, _>(r, "id"))
            .collect::<Result<_, _>>()?;
        return Err(ApiError::conflict(format!(
            "plugin {id:?} is the mapper of profile(s) {}; remove or change those first",
            users.join(", ")
        )));
    }
    hub.remove_plugin(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
