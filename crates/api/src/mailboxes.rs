//! `/mailboxes`: mailboxes of connections, discovered from the directory,
//! approved and enabled by an operator, with per-mailbox settings. A
//! mailbox belongs to its connection's company.

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiQuery, ApiResult, ErrorBody};
use super::{visible_connection, Items};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use syncbridge_model::PluginError;
use syncbridge_service::control::mailboxes::{
    self, DiscoverError, Discovered, Mailbox, SettingsMode,
};
use syncbridge_service::control::tokens::Role;
use syncbridge_service::hub::Hub;
use syncbridge_sync::EndpointError;
use utoipa::{IntoParams, ToSchema};

/// One mailbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailboxOut {
    /// `<connection>:<address in lower case>`.
    pub id: String,
    pub connection_id: String,
    pub company_id: Option<String>,
    pub address: String,
    pub display_name: Option<String>,
    /// Synchronised (only approved mailboxes can be enabled).
    pub enabled: bool,
    pub approved: bool,
    /// Per-mailbox settings (a JSON object).
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// untested | ok | disabled-auth (a permanent authentication error
    /// disabled it; enabling it again retries).
    pub status: String,
    pub status_detail: Option<String>,
    pub discovered_at: i64,
    pub updated_at: i64,
}

impl From<Mailbox> for MailboxOut {
    fn from(m: Mailbox) -> Self {
        Self {
            id: m.id,
            connection_id: m.connection_id,
            company_id: m.company_id,
            address: m.address,
            display_name: m.display_name,
            enabled: m.enabled,
            approved: m.approved,
            settings: m.settings,
            status: m.status,
            status_detail: m.status_detail,
            discovered_at: m.discovered_at,
            updated_at: m.updated_at,
        }
    }
}

/// Query of `GET /mailboxes`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MailboxesQuery {
    /// Only mailboxes of this connection.
    pub connection: Option<String>,
}

/// Answer of `POST /connections/{id}/discover-mailboxes`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiscoverOut {
    /// Mailboxes seen for the first time (disabled and unapproved).
    pub new: u64,
    /// Mailboxes already known (their flags and settings are kept).
    pub known: u64,
}

impl From<Discovered> for DiscoverOut {
    fn from(d: Discovered) -> Self {
        Self {
            new: d.new,
            known: d.known,
        }
    }
}

/// Query of `PUT /mailboxes/{id}/settings`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SettingsQuery {
    /// Merge into the stored settings (top-level keys; `null` removes a key)
    /// instead of replacing them.
    #[serde(default)]
    pub merge: bool,
}

/// Body of `POST /mailboxes/settings`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplySettings {
    /// Mailbox ids.
    #[schema(min_items = 1)]
    pub ids: Vec<String>,
    /// Merged into each mailbox's settings (top-level keys; `null` removes a key).
    #[schema(value_type = Object, example = json!({"sync_calendar": true}))]
    pub settings: serde_json::Value,
}

/// A mailbox the caller may see (404 otherwise).
async fn visible_mailbox(hub: &Hub, caller: &Caller, id: &str) -> ApiResult<Mailbox> {
    let m = mailboxes::get(hub.store(), id).await?;
    if !caller.sees(m.company_id.as_deref()) {
        return Err(ApiError::not_found("mailbox", id));
    }
    Ok(m)
}

fn object_or_400(v: &serde_json::Value) -> ApiResult<()> {
    if v.is_object() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "settings must be a JSON object, e.g. {\"sync_calendar\": true}",
        ))
    }
}

#[utoipa::path(get, path = "/mailboxes", tag = "mailboxes",
    params(MailboxesQuery),
    responses(
        (status = 200, description = "Mailboxes in the token's scope, by connection and address", body = Items<MailboxOut>),
        (status = 404, description = "No such connection in the token's scope", body = ErrorBody),
    ))]
pub async fn list(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<MailboxesQuery>,
) -> ApiResult<Json<Items<MailboxOut>>> {
    if let Some(c) = &q.connection {
        visible_connection(&hub, &caller, c).await?;
    }
    let list = mailboxes::list(hub.store(), q.connection.as_deref(), caller.company()).await?;
    Ok(Json(
        list.into_iter()
            .map(MailboxOut::from)
            .collect::<Vec<_>>()
            .into(),
    ))
}

#[utoipa::path(post, path = "/connections/{id}/discover-mailboxes", tag = "mailboxes",
    params(("id" = String, Path, description = "Connection id")),
    responses(
        (status = 200, description = "The connection's mailboxes were listed and recorded; new ones are disabled and unapproved", body = DiscoverOut),
        (status = 400, description = "The connector cannot list mailboxes", body = ErrorBody),
        (status = 403, description = "Needs the operator role", body = ErrorBody),
        (status = 404, description = "No such connection in the token's scope", body = ErrorBody),
        (status = 422, description = "`configuration`: the connection's own settings stop the call (a host not allowed, a private address, credentials refused or entered for another host); the message says what to change", body = ErrorBody),
        (status = 502, description = "The outside system failed", body = ErrorBody),
    ))]
pub async fn discover(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<DiscoverOut>> {
    caller.require(Role::Operator)?;
    visible_connection(&hub, &caller, &id).await?;
    match mailboxes::discover(&hub, &id).await {
        Ok(d) => Ok(Json(d.into())),
        Err(DiscoverError::Store(e)) => Err(e.into()),
        Err(DiscoverError::Source(EndpointError::Plugin(
            e @ (PluginError::Invalid(_) | PluginError::Unsupported(_)),
        ))) => Err(ApiError::invalid(format!(
            "the connection's plugin cannot list mailboxes: {}; only connectors with a \"mailboxes\" scope (graph) can",
            e.describe()
        ))),
        Err(DiscoverError::Source(EndpointError::Plugin(
            e @ (PluginError::Forbidden(_) | PluginError::Auth(_)),
        ))) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            super::error::code::CONFIGURATION,
            format!(
                "the connection's settings stop mailbox discovery: {}; fix the connection (allowed hosts, private network, credentials: PUT /connections/{id}) and test it",
                e.describe()
            ),
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            super::error::code::UPSTREAM,
            format!("{e}; test the connection and try again"),
        )),
    }
}

async fn set_enabled(hub: &Hub, caller: &Caller, id: &str, on: bool) -> ApiResult<MailboxOut> {
    caller.require(Role::Operator)?;
    visible_mailbox(hub, caller, id).await?;
    Ok(mailboxes::set_enabled(hub.store(), id, on).await?.into())
}

#[utoipa::path(post, path = "/mailboxes/{id}/enable", tag = "mailboxes",
    params(("id" = String, Path, description = "Mailbox id")),
    responses(
        (status = 200, description = "Enabled", body = MailboxOut),
        (status = 403, description = "Needs the operator role", body = ErrorBody),
        (status = 404, description = "No such mailbox in the token's scope", body = ErrorBody),
        (status = 409, description = "Not approved: approve it first", body = ErrorBody),
    ))]
pub async fn enable(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<MailboxOut>> {
    Ok(Json(set_enabled(&hub, &caller, &id, true).await?))
}

#[utoipa::path(post, path = "/mailboxes/{id}/disable", tag = "mailboxes",
    params(("id" = String, Path, description = "Mailbox id")),
    responses(
        (status = 200, description = "Disabled", body = MailboxOut),
        (status = 403, description = "Needs the operator role", body = ErrorBody),
        (status = 404, description = "No such mailbox in the token's scope", body = ErrorBody),
    ))]
pub async fn disable(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<MailboxOut>> {
    Ok(Json(set_enabled(&hub, &caller, &id, false).await?))
}

#[utoipa::path(post, path = "/mailboxes/{id}/approve", tag = "mailboxes",
    params(("id" = String, Path, description = "Mailbox id")),
    responses(
        (status = 200, description = "Approved (still disabled until enabled)", body = MailboxOut),
        (status = 403, description = "Needs the operator role", body = ErrorBody),
        (status = 404, description = "No such mailbox in the token's scope", body = ErrorBody),
    ))]
pub async fn approve(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<MailboxOut>> {
    caller.require(Role::Operator)?;
    visible_mailbox(&hub, &caller, &id).await?;
    Ok(Json(mailboxes::approve(hub.store(), &id).await?.into()))
}

#[utoipa::path(put, path = "/mailboxes/{id}/settings", tag = "mailboxes",
    params(("id" = String, Path, description = "Mailbox id"), SettingsQuery),
    request_body(content = Object, description = "The settings (a JSON object): replace them, or with merge=true merge top-level keys (null removes a key)"),
    responses(
        (status = 200, description = "Saved", body = MailboxOut),
        (status = 400, description = "Not a JSON object", body = ErrorBody),
        (status = 403, description = "Needs the operator role", body = ErrorBody),
        (status = 404, description = "No such mailbox in the token's scope", body = ErrorBody),
    ))]
pub async fn put_settings(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<SettingsQuery>,
    ApiJson(settings): ApiJson<serde_json::Value>,
) -> ApiResult<Json<MailboxOut>> {
    caller.require(Role::Operator)?;
    visible_mailbox(&hub, &caller, &id).await?;
    object_or_400(&settings)?;
    let mode = if q.merge {
        SettingsMode::Merge
    } else {
        SettingsMode::Replace
    };
    Ok(Json(
        mailboxes::set_settings(hub.store(), &id, &settings, mode)
            .await?
            .into(),
    ))
}

#[utoipa::path(post, path = "/mailboxes/settings", tag = "mailboxes",
    request_body = ApplySettings,
    responses(
        (status = 200, description = "The settings were merged into every listed mailbox (all or none)", body = Items<MailboxOut>),
        (status = 400, description = "Settings not a JSON object, or no ids", body = ErrorBody),
        (status = 403, description = "Needs the operator role", body = ErrorBody),
        (status = 404, description = "A mailbox is not in the token's scope; none was changed", body = ErrorBody),
    ))]
pub async fn apply_to_many(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    ApiJson(body): ApiJson<ApplySettings>,
) -> ApiResult<Json<Items<MailboxOut>>> {
    caller.require(Role::Operator)?;
    object_or_400(&body.settings)?;
    if body.ids.is_empty() {
        return Err(ApiError::invalid(
            "list the mailbox ids to change in \"ids\" (GET /mailboxes lists them)",
        ));
    }
    for id in &body.ids {
        visible_mailbox(&hub, &caller, id).await?;
    }
    let updated = mailboxes::apply_settings_to_many(hub.store(), &body.ids, &body.settings).await?;
    Ok(Json(
        updated
            .into_iter()
            .map(MailboxOut::from)
            .collect::<Vec<_>>()
            .into(),
    ))
}
