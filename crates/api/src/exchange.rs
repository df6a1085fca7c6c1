//! `/exchange-profiles`: flow 1's Exchange server profiles (server,
//! synchronization account, synchronization settings, failure
//! notifications) and their PSA resources. Every rule is in
//! `control::exchange_profiles` / `control::exchange_resources`; this module
//! extracts, authorizes, calls once and shapes the answer.

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use super::runs::RunOut;
use super::{Items, Mailer};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use syncbridge_secrets::{Credential, SecretString};
use syncbridge_service::control::exchange_notify;
use syncbridge_service::control::exchange_profiles::{
    self as service, ConnectionTest, ExchangeError, ExchangeProfile, ExchangeSaved,
    ExchangeSettings, PUBLIC_FOLDER_WARNING,
};
use syncbridge_service::control::exchange_resources::{
    self as resources, Resource, ResourceError, ResourceSettings, ResourcesFound, Selection,
};
use syncbridge_service::control::tokens::Role;
use syncbridge_service::hub::Hub;
use utoipa::ToSchema;

/// A profile as shown (secrets never are).
#[derive(Debug, Serialize, ToSchema)]
pub struct ExchangeProfileOut {
    pub id: String,
    pub company_id: Option<String>,
    /// The whole form (see the schema: server, account, sync, notify_to, interval_minutes).
    pub settings: ExchangeSettings,
    /// The connection the profile owns (`ews`, or `graph` with use_graph).
    pub connection_id: String,
    pub last_test: Option<ConnectionTest>,
    pub last_tested_at: Option<i64>,
    /// Set when a server change made every item re-synchronize.
    pub resync_requested_at: Option<i64>,
    /// Warnings about the settings themselves (the public folder's exposure).
    pub warnings: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<ExchangeProfile> for ExchangeProfileOut {
    fn from(p: ExchangeProfile) -> Self {
        let warnings = p
            .settings
            .sync
            .public_folder_all_contacts
            .then(|| PUBLIC_FOLDER_WARNING.to_owned())
            .into_iter()
            .collect();
        Self {
            id: p.id,
            company_id: p.company_id,
            settings: p.settings,
            connection_id: p.connection_id,
            last_test: p.last_test,
            last_tested_at: p.last_tested_at,
            resync_requested_at: p.resync_requested_at,
            warnings,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// What a save answers: the profile, the connection test, the re-sync and the queued runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExchangeSavedOut {
    pub profile: ExchangeProfileOut,
    /// success | warning (saved; items not validated) | error (saved, nothing synchronizes until a save passes).
    pub test: ConnectionTest,
    /// Server fields that changed: every item re-synchronizes.
    pub resync_fields: Vec<String>,
    /// Runs queued (none when disabled or the test failed).
    pub queued_runs: Vec<RunOut>,
}

impl From<ExchangeSaved> for ExchangeSavedOut {
    fn from(s: ExchangeSaved) -> Self {
        Self {
            profile: s.profile.into(),
            test: s.test,
            resync_fields: s.resync_fields.into_iter().map(str::to_owned).collect(),
            queued_runs: s.queued_runs.into_iter().map(RunOut::from).collect(),
        }
    }
}

/// Body of `POST /exchange-profiles`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeCreate {
    #[schema(example = "contoso-exchange")]
    pub id: String,
    /// The owning company (a company-scoped token: its own, the default).
    #[serde(default)]
    pub company_id: Option<String>,
    /// The whole form (see the schema: server, account, sync, notify_to, interval_minutes).
    pub settings: ExchangeSettings,
    /// The synchronization account's password (OAuth: client secret). Write-only.
    #[schema(value_type = String)]
    pub secret: SecretString,
}

/// Body of `PUT /exchange-profiles/{id}`: the whole form.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeUpdate {
    /// The whole form (see the schema: server, account, sync, notify_to, interval_minutes).
    pub settings: ExchangeSettings,
    /// Re-enters the account's secret; required when the server or the account changes.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub secret: Option<SecretString>,
}

/// A resource of a profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceOut {
    pub resource_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub enabled: bool,
    pub mailbox_id: Option<String>,
    /// untested | ok | disabled-auth; none before the resource is enabled.
    pub status: Option<String>,
    pub status_detail: Option<String>,
    pub settings: Option<ResourceSettings>,
    /// Whether the user's own credential is entered (without impersonation).
    pub has_own_credential: bool,
    /// "Last Attempted Synchronization" (ms since the epoch).
    pub last_attempted_at: Option<i64>,
    /// When the confirmation e-mail went out (ms since the epoch); empty
    /// until one did (the server mails only with SMTP configured).
    pub confirmation_sent_at: Option<i64>,
}

impl From<Resource> for ResourceOut {
    fn from(r: Resource) -> Self {
        Self {
            resource_id: r.resource_id,
            name: r.name,
            email: r.email,
            enabled: r.enabled,
            mailbox_id: r.mailbox_id,
            status: r.status,
            status_detail: r.status_detail,
            settings: r.settings,
            has_own_credential: r.has_own_credential,
            last_attempted_at: r.last_attempted_at,
            confirmation_sent_at: r.confirmation_sent_at,
        }
    }
}

/// Body of `POST /exchange-profiles/{id}/resources/enable` and `/disable`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceSelection {
    /// Every listed resource (those without an e-mail address are left out).
    #[serde(default)]
    pub all: bool,
    /// Resource ids (when not `all`).
    #[serde(default)]
    pub ids: Vec<String>,
}

/// Answer of `POST /exchange-profiles/{id}/resources/discover`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResourcesFoundOut {
    pub new: u64,
    pub known: u64,
}

impl From<ResourcesFound> for ResourcesFoundOut {
    fn from(f: ResourcesFound) -> Self {
        Self {
            new: f.new,
            known: f.known,
        }
    }
}

impl From<ExchangeError> for ApiError {
    fn from(e: ExchangeError) -> Self {
        match e {
            ExchangeError::Store(e) => e.into(),
            ExchangeError::Hub(e) => e.into(),
            ExchangeError::Connection(e) => e.into(),
            ExchangeError::Exists(_) => ApiError::conflict(e.to_string()),
            ExchangeError::SyncInProgress { .. } => ApiError::sync_in_progress(e.to_string()),
            ExchangeError::SecretRequired(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                super::error::code::CREDENTIALS_REQUIRED,
                e.to_string(),
            ),
            _ => ApiError::invalid(e.to_string()),
        }
    }
}

impl From<ResourceError> for ApiError {
    fn from(e: ResourceError) -> Self {
        match e {
            ResourceError::Profile(e) => e.into(),
            ResourceError::Store(e) => e.into(),
            ResourceError::Source(_) | ResourceError::TooManyPages(_) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                super::error::code::UPSTREAM,
                format!("{e}; test the PSA connection and try again"),
            ),
            ResourceError::NotEnabled { .. } | ResourceError::Impersonating => {
                ApiError::conflict(e.to_string())
            }
            _ => ApiError::invalid(e.to_string()),
        }
    }
}

#[utoipa::path(get, path = "/exchange-profiles", tag = "exchange",
    responses((status = 200, description = "Exchange profiles in the token's scope, by id", body = Items<ExchangeProfileOut>)))]
pub async fn list(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
) -> ApiResult<Json<Items<ExchangeProfileOut>>> {
    let all = service::list(&hub, caller.actor()).await?;
    Ok(Json(
        all.into_iter()
            .map(ExchangeProfileOut::from)
            .collect::<Vec<_>>()
            .into(),
    ))
}

#[utoipa::path(post, path = "/exchange-profiles", tag = "exchange",
    request_body = ExchangeCreate,
    responses(
        (status = 201, description = "Saved; `test` says whether the connection works (success, warning, error)", body = ExchangeSavedOut),
        (status = 400, description = "`invalid_request`: a rule refused a field; the message names the field and what to enter", body = ErrorBody),
        (status = 404, description = "No such PSA connection or company in the token's scope", body = ErrorBody),
        (status = 409, description = "`conflict`: the id exists", body = ErrorBody),
    ))]
pub async fn create(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    ApiJson(b): ApiJson<ExchangeCreate>,
) -> ApiResult<(StatusCode, Json<ExchangeSavedOut>)> {
    caller.require(Role::Admin)?;
    let company = caller.company_for_new(b.company_id)?;
    let saved = service::create(
        &hub,
        caller.actor(),
        &b.id,
        company.as_deref(),
        b.settings,
        Some(b.secret),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(saved.into())))
}

#[utoipa::path(get, path = "/exchange-profiles/{id}", tag = "exchange",
    params(("id" = String, Path, description = "Exchange profile id")),
    responses(
        (status = 200, description = "The profile", body = ExchangeProfileOut),
        (status = 404, description = "No such profile in the token's scope", body = ErrorBody),
    ))]
pub async fn show(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ExchangeProfileOut>> {
    Ok(Json(service::get(&hub, caller.actor(), &id).await?.into()))
}

#[utoipa::path(put, path = "/exchange-profiles/{id}", tag = "exchange",
    params(("id" = String, Path, description = "Exchange profile id")),
    request_body = ExchangeUpdate,
    responses(
        (status = 200, description = "Saved and tested; a changed version, address, virtual directory or domain re-synchronizes every item (`resync_fields`)", body = ExchangeSavedOut),
        (status = 400, description = "`invalid_request`: a rule refused a field", body = ErrorBody),
        (status = 404, description = "No such profile in the token's scope", body = ErrorBody),
        (status = 409, description = "`sync_in_progress`: a sync of the profile runs; try later", body = ErrorBody),
        (status = 422, description = "`credentials_required`: the change needs the account's secret entered again", body = ErrorBody),
    ))]
pub async fn update(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ExchangeUpdate>,
) -> ApiResult<Json<ExchangeSavedOut>> {
    caller.require(Role::Admin)?;
    let saved = service::update(&hub, caller.actor(), &id, b.settings, b.secret).await?;
    Ok(Json(saved.into()))
}

#[utoipa::path(delete, path = "/exchange-profiles/{id}", tag = "exchange",
    params(("id" = String, Path, description = "Exchange profile id")),
    responses(
        (status = 204, description = "Removed with its resources and its connection"),
        (status = 404, description = "No such profile in the token's scope", body = ErrorBody),
        (status = 409, description = "A sync runs, or profiles still use its connection", body = ErrorBody),
    ))]
pub async fn remove(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    service::remove(&hub, caller.actor(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/exchange-profiles/{id}/resources", tag = "exchange",
    params(("id" = String, Path, description = "Exchange profile id")),
    responses(
        (status = 200, description = "Every PSA resource listed for the profile, by name", body = Items<ResourceOut>),
        (status = 404, description = "No such profile in the token's scope", body = ErrorBody),
    ))]
pub async fn list_resources(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Items<ResourceOut>>> {
    let all = resources::list(&hub, caller.actor(), &id).await?;
    Ok(Json(
        all.into_iter()
            .map(ResourceOut::from)
            .collect::<Vec<_>>()
            .into(),
    ))
}

#[utoipa::path(post, path = "/exchange-profiles/{id}/resources/discover", tag = "exchange",
    params(("id" = String, Path, description = "Exchange profile id")),
    responses(
        (status = 200, description = "The PSA connection's resources were read and recorded; new ones are disabled", body = ResourcesFoundOut),
        (status = 404, description = "No such profile in the token's scope", body = ErrorBody),
        (status = 502, description = "The PSA could not list its resources", body = ErrorBody),
    ))]
pub async fn discover(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ResourcesFoundOut>> {
    caller.require(Role::Operator)?;
    Ok(Json(
        resources::discover(&hub, caller.actor(), &id).await?.into(),
    ))
}

fn selection(b: ResourceSelection) -> ApiResult<Selection> {
    match (b.all, b.ids.is_empty()) {
        (true, true) => Ok(Selection::All),
        (false, false) => Ok(Selection::Ids(b.ids)),
        (true, false) => Err(ApiError::invalid(
            "give either `all: true` or `ids`, not both",
        )),
        (false, true) => Err(ApiError::invalid(
            "name the resources in `ids`, or send `all: true`",
        )),
    }
}

#[utoipa::path(post, path = "/exchange-profiles/{id}/resources/enable", tag = "exchange",
    params(("id" = String, Path, description = "Exchange profile id")),
    request_body = ResourceSelection,
    responses(
        (status = 200, description = "The resources enabled now (those already enabled are left out)", body = Items<ResourceOut>),
        (status = 400, description = "A named resource has no e-mail address", body = ErrorBody),
        (status = 404, description = "No such profile or resource", body = ErrorBody),
    ))]
pub async fn enable(
    State(hub): State<Arc<Hub>>,
    mailer: Option<Extension<Mailer>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ResourceSelection>,
) -> ApiResult<Json<Items<ResourceOut>>> {
    caller.require(Role::Operator)?;
    let which = selection(b)?;
    let notifier = mailer.and_then(|Extension(Mailer(n))| n);
    let enabled =
        exchange_notify::enable_and_confirm(&hub, caller.actor(), &id, &which, notifier.as_deref())
            .await?;
    // A mail that fails is logged; `confirmation_sent_at` stays empty.
    if let Some(Err(e)) = &enabled.mailed {
        tracing::warn!(profile = %id, error = %e, "confirmation mail not sent");
    }
    let done = enabled.resources;
    Ok(Json(
        done.into_iter()
            .map(ResourceOut::from)
            .collect::<Vec<_>>()
            .into(),
    ))
}

#[utoipa::path(post, path = "/exchange-profiles/{id}/resources/disable", tag = "exchange",
    params(("id" = String, Path, description = "Exchange profile id")),
    request_body = ResourceSelection,
    responses(
        (status = 200, description = "The resources, now disabled (their settings are kept)", body = Items<ResourceOut>),
        (status = 404, description = "No such profile or resource", body = ErrorBody),
    ))]
pub async fn disable(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ResourceSelection>,
) -> ApiResult<Json<Items<ResourceOut>>> {
    caller.require(Role::Operator)?;
    let which = selection(b)?;
    let done = resources::disable(&hub, caller.actor(), &id, &which).await?;
    Ok(Json(
        done.into_iter()
            .map(ResourceOut::from)
            .collect::<Vec<_>>()
            .into(),
    ))
}

#[utoipa::path(put, path = "/exchange-profiles/{id}/resources/{resource}/settings", tag = "exchange",
    params(("id" = String, Path, description = "Exchange profile id"),
           ("resource" = String, Path, description = "PSA resource id")),
    request_body = ResourceSettings,
    responses(
        (status = 200, description = "The resource with its new toggles", body = ResourceOut),
        (status = 400, description = "A toggle the profile does not allow", body = ErrorBody),
        (status = 404, description = "No such profile or resource", body = ErrorBody),
        (status = 409, description = "The resource is not enabled", body = ErrorBody),
    ))]
pub async fn put_resource_settings(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path((id, resource)): Path<(String, String)>,
    ApiJson(b): ApiJson<ResourceSettings>,
) -> ApiResult<Json<ResourceOut>> {
    caller.require(Role::Operator)?;
    Ok(Json(
        resources::set_settings(&hub, caller.actor(), &id, &resource, b)
            .await?
            .into(),
    ))
}

#[utoipa::path(put, path = "/exchange-profiles/{id}/resources/{resource}/credential", tag = "exchange",
    params(("id" = String, Path, description = "Exchange profile id"),
           ("resource" = String, Path, description = "PSA resource id")),
    request_body = Credential,
    responses(
        (status = 200, description = "The user's own credential is sealed; it is never shown", body = ResourceOut),
        (status = 404, description = "No such profile or resource", body = ErrorBody),
        (status = 409, description = "The profile's account impersonates every user", body = ErrorBody),
    ))]
pub async fn put_resource_credential(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path((id, resource)): Path<(String, String)>,
    ApiJson(b): ApiJson<Credential>,
) -> ApiResult<Json<ResourceOut>> {
    caller.require(Role::Operator)?;
    Ok(Json(
        resources::set_own_credential(&hub, caller.actor(), &id, &resource, b)
            .await?
            .into(),
    ))
}
