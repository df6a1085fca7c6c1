//! The REST API under `/api/v1` (see `docs/api.md`).
//!
//! JSON in and out; list endpoints answer `{"items": [...]}`; every error is
//! `{"error": {"code", "message"}}` ([`error`]). Callers authenticate with a
//! bearer token and see only their company's objects ([`auth`]). Runs are
//! only queued here (202 with the run record); the background worker
//! executes them. The OpenAPI document is generated from the handlers
//! ([`openapi`]) and served without authentication at `/openapi.json`.

pub mod alerts;
pub mod auth;
pub mod companies;
pub mod conflicts;
pub mod connections;
pub mod dynamics;
pub mod error;
pub mod exchange;
pub mod exchange_diagnose;
pub mod mailboxes;
pub mod openapi;
pub mod plans;
pub mod plugins;
pub mod profiles;
pub mod quarantine;
pub mod runs;
pub mod server;

use auth::Caller;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use error::{ApiError, ApiResult};
use serde::Serialize;
use sqlx::Row;
use std::collections::BTreeSet;
use std::sync::Arc;
use syncbridge_service::control::companies as company_records;
use syncbridge_service::hub::Hub;
use syncbridge_store::{ConnectionRecord, StoreError};
use utoipa::ToSchema;

/// The notifier the API mails through (the confirmation to newly enabled
/// Exchange resources), when `syncbridge serve` has one (SMTP configured).
#[derive(Clone, Default)]
pub struct Mailer(pub Option<Arc<dyn syncbridge_service::notify::Notifier>>);

/// Largest plugin package accepted by `POST /plugins`.
pub const MAX_PACKAGE_BYTES: usize = 96 << 20;

/// The API's routes, relative to where they are nested (`/api/v1`).
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/openapi.json", get(openapi::serve))
        .route(
            "/plugins",
            get(plugins::list)
                .post(plugins::install)
                .layer(DefaultBodyLimit::max(MAX_PACKAGE_BYTES)),
        )
        .route("/plugins/{id}", axum::routing::delete(plugins::remove))
        .route("/companies", get(companies::list).post(companies::create))
        .route(
            "/companies/{id}",
            get(companies::show)
                .put(companies::update)
                .delete(companies::remove),
        )
        .route(
            "/connections",
            get(connections::list).post(connections::create),
        )
        .route(
            "/connections/{id}",
            get(connections::show)
                .put(connections::update)
                .delete(connections::remove),
        )
        .route("/connections/{id}/test", post(connections::test))
        .route(
            "/connections/{id}/discover-mailboxes",
            post(mailboxes::discover),
        )
        .route("/mailboxes", get(mailboxes::list))
        .route("/mailboxes/settings", post(mailboxes::apply_to_many))
        .route("/mailboxes/{id}/enable", post(mailboxes::enable))
        .route("/mailboxes/{id}/disable", post(mailboxes::disable))
        .route("/mailboxes/{id}/approve", post(mailboxes::approve))
        .route(
            "/mailboxes/{id}/settings",
            axum::routing::put(mailboxes::put_settings),
        )
        .route(
            "/exchange-profiles",
            get(exchange::list).post(exchange::create),
        )
        .route(
            "/exchange-profiles/{id}",
            get(exchange::show)
                .put(exchange::update)
                .delete(exchange::remove),
        )
        .route(
            "/exchange-profiles/{id}/resources",
            get(exchange::list_resources),
        )
        .route(
            "/exchange-profiles/{id}/resources/discover",
            post(exchange::discover),
        )
        .route(
            "/exchange-profiles/{id}/resources/enable",
            post(exchange::enable),
        )
        .route(
            "/exchange-profiles/{id}/resources/disable",
            post(exchange::disable),
        )
        .route(
            "/exchange-profiles/{id}/resources/{resource}/settings",
            axum::routing::put(exchange::put_resource_settings),
        )
        .route(
            "/exchange-profiles/{id}/resources/{resource}/credential",
            axum::routing::put(exchange::put_resource_credential),
        )
        .route(
            "/exchange-profiles/{id}/diagnose",
            post(exchange_diagnose::diagnose),
        )
        .route(
            "/email-server-profiles",
            get(dynamics::list_profiles).post(dynamics::create_profile),
        )
        .route(
            "/email-server-profiles/{id}",
            get(dynamics::show_profile)
                .put(dynamics::update_profile)
                .delete(dynamics::remove_profile),
        )
        .route(
            "/email-server-profiles/{id}/mailbox-credentials",
            axum::routing::put(dynamics::put_mailbox_credential),
        )
        .route(
            "/email-server-profiles/{id}/test",
            post(dynamics::test_profile),
        )
        .route(
            "/dynamics/{org}/email-settings",
            get(dynamics::show_defaults).put(dynamics::put_defaults),
        )
        .route("/dynamics/{org}/mailboxes/refresh", post(dynamics::refresh))
        .route("/dynamics/{org}/mailboxes", get(dynamics::list_mailboxes))
        .route("/dynamics/mailboxes/{id}", get(dynamics::show_mailbox))
        .route(
            "/dynamics/mailboxes/{id}/processing",
            get(dynamics::processing),
        )
        .route(
            "/dynamics/mailboxes/{id}/diagnose",
            post(dynamics::diagnose),
        )
        .route(
            "/dynamics/mailboxes/apply-defaults",
            post(dynamics::apply_defaults),
        )
        .route("/dynamics/mailboxes/edit", post(dynamics::edit))
        .route("/dynamics/mailboxes/approve", post(dynamics::approve))
        .route(
            "/dynamics/mailboxes/test-and-enable",
            post(dynamics::test_and_enable),
        )
        .route("/profiles", get(profiles::list).post(profiles::create))
        .route(
            "/profiles/{id}",
            get(profiles::show)
                .put(profiles::update)
                .delete(profiles::remove),
        )
        .route("/profiles/{id}/run", post(profiles::run))
        .route("/profiles/{id}/dry-run", post(profiles::dry_run))
        .route("/profiles/{id}/preview", post(profiles::preview))
        .route("/profiles/{id}/enable", post(profiles::enable))
        .route("/profiles/{id}/disable", post(profiles::disable))
        .route("/profiles/{id}/explain", get(profiles::explain))
        .route("/plans", get(plans::list))
        .route("/plans/{id}", get(plans::show))
        .route("/plans/{id}/preview", get(plans::preview))
        .route("/plans/{id}/apply", post(plans::apply))
        .route("/plans/{id}/discard", post(plans::discard))
        .route("/runs", get(runs::list))
        .route("/runs/{id}", get(runs::show))
        .route("/conflicts", get(conflicts::list))
        .route(
            "/conflicts/{profile}/{source_id}/{field}/resolve",
            post(conflicts::resolve),
        )
        .route("/quarantine", get(quarantine::list))
        .route(
            "/quarantine/{profile}/{source_id}/retry",
            post(quarantine::retry),
        )
        .route(
            "/quarantine/{profile}/{source_id}/skip",
            post(quarantine::skip),
        )
        .route(
            "/quarantine/{profile}/{source_id}/relink",
            post(quarantine::relink),
        )
        .route("/alerts", get(alerts::list))
        .route("/alerts/{id}/resolve", post(alerts::resolve))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(hub)
}

async fn not_found() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        error::code::NOT_FOUND,
        "no such API endpoint; GET /api/v1/openapi.json lists them",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        error::code::INVALID_REQUEST,
        "this endpoint does not take that method; GET /api/v1/openapi.json lists the methods",
    )
}

/// Largest page any paged endpoint returns.
pub const MAX_PAGE: u32 = 1000;

/// The page size asked for (default 100), refused outside 1..=[`MAX_PAGE`].
pub(crate) fn page_limit(limit: Option<u32>) -> ApiResult<u32> {
    match limit {
        None => Ok(100),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::invalid(format!(
            "limit {n} is out of range: ask for 1 to {MAX_PAGE} items and page with offset"
        ))),
    }
}

/// An offset, refused above `i32::MAX` (what the OpenAPI document promises).
pub(crate) fn page_offset(offset: u32) -> ApiResult<u32> {
    if offset > i32::MAX as u32 {
        return Err(ApiError::invalid(format!(
            "offset {offset} is out of range: at most {}",
            i32::MAX
        )));
    }
    Ok(offset)
}

/// Every list endpoint answers `{"items": [...]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

impl<T> From<Vec<T>> for Items<T> {
    fn from(items: Vec<T>) -> Self {
        Self { items }
    }
}

// ---- scope helpers shared by the resources --------------------------------

/// A connection the caller may see (404 otherwise) with its company.
pub(crate) async fn visible_connection(
    hub: &Hub,
    caller: &Caller,
    id: &str,
) -> ApiResult<(ConnectionRecord, Option<String>)> {
    let record = hub.store().get_connection(id).await?;
    let company = company_records::of_connection(hub.store(), id).await?;
    if !caller.sees(company.as_deref()) {
        return Err(ApiError::not_found("connection", id));
    }
    Ok((record, company))
}

/// 404 unless the caller may see profile `id` (which must exist).
pub(crate) async fn check_profile(hub: &Hub, caller: &Caller, id: &str) -> ApiResult<()> {
    let company = profile_company(hub, id).await?;
    if !caller.sees(company.as_deref()) {
        return Err(ApiError::not_found("profile", id));
    }
    Ok(())
}

async fn profile_company(hub: &Hub, id: &str) -> ApiResult<Option<String>> {
    let row = sqlx::query("SELECT company_id FROM profiles WHERE id = $1")
        .bind(id)
        .fetch_optional(hub.store().pool())
        .await?
        .ok_or_else(|| {
            ApiError::from(StoreError::NotFound {
                what: "profile",
                id: id.to_owned(),
            })
        })?;
    Ok(row.try_get("company_id")?)
}

/// Ids of the profiles the caller may see; `None` = every profile.
pub(crate) async fn visible_profile_ids(
    hub: &Hub,
    caller: &Caller,
) -> ApiResult<Option<BTreeSet<String>>> {
    let Some(company) = caller.company() else {
        return Ok(None);
    };
    let rows = sqlx::query("SELECT id FROM profiles WHERE company_id = $1")
        .bind(company)
        .fetch_all(hub.store().pool())
        .await?;
    Ok(Some(
        rows.iter()
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<Result<_, _>>()?,
    ))
}
