//! `/companies`: the customer companies tokens are scoped to.
//!
//! A scoped token sees (and, as admin, updates) only its own company;
//! creating and deleting companies needs an admin token for every company.

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use super::Items;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use syncbridge_service::control::companies::{self, Company};
use syncbridge_service::control::tokens::Role;
use syncbridge_service::hub::Hub;
use syncbridge_service::ids;
use utoipa::ToSchema;

/// A customer company.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompanyOut {
    pub id: String,
    pub name: String,
    /// `;`-separated recipients of failure notices and confirmations.
    pub notify_to: String,
    /// IANA time zone of the company: its profiles' `daily_at` is local time
    /// there, daylight saving time included.
    #[schema(example = "Europe/Berlin")]
    pub time_zone: String,
}

impl From<Company> for CompanyOut {
    fn from(c: Company) -> Self {
        Self {
            id: c.id,
            name: c.name,
            notify_to: c.notify_to,
            time_zone: c.time_zone,
        }
    }
}

/// Body of `POST /companies`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyCreate {
    /// Letters, digits, '-' and '_' (at most 64; no dots: a dot separates a
    /// company namespace from a name).
    #[schema(pattern = "^[A-Za-z0-9_-]+$", min_length = 1, max_length = 64)]
    pub id: String,
    /// Not blank.
    #[schema(pattern = r"\S")]
    pub name: String,
    /// `;`-separated e-mail recipients.
    #[serde(default)]
    pub notify_to: String,
    /// IANA time zone name; its profiles' `daily_at` is local time there.
    /// Default `UTC`. An unknown name is a 400.
    #[schema(example = "Europe/Berlin")]
    pub time_zone: Option<String>,
}

/// Body of `PUT /companies/{id}`: fields left out keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyUpdate {
    /// Not blank.
    #[schema(pattern = r"\S")]
    pub name: Option<String>,
    pub notify_to: Option<String>,
    /// IANA time zone name; its profiles' `daily_at` is local time there.
    /// An unknown name is a 400.
    #[schema(example = "America/New_York")]
    pub time_zone: Option<String>,
}

/// 400 unless `zone` is an IANA time zone name; answers it as the time zone
/// database spells it.
fn check_time_zone(zone: &str) -> ApiResult<String> {
    companies::check_time_zone(zone).map_err(|e| ApiError::invalid(format!("time_zone: {e}")))
}

/// 400 unless `list` is empty or a `;`-separated list of addresses.
fn check_recipients(list: &str) -> ApiResult<()> {
    if list.trim().is_empty() {
        return Ok(());
    }
    syncbridge_service::notify::Recipients::parse(list)
        .map(|_| ())
        .map_err(|e| ApiError::invalid(format!("notify_to: {e}")))
}

async fn visible(hub: &Hub, caller: &Caller, id: &str) -> ApiResult<Company> {
    if !caller.sees(Some(id)) {
        return Err(ApiError::not_found("company", id));
    }
    Ok(companies::get(hub.store(), id).await?)
}

#[utoipa::path(get, path = "/companies", tag = "companies",
    responses((status = 200, description = "Companies in the token's scope", body = Items<CompanyOut>)))]
pub async fn list(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
) -> ApiResult<Json<Items<CompanyOut>>> {
    let list = companies::list(hub.store(), caller.company()).await?;
    Ok(Json(
        list.into_iter()
            .map(CompanyOut::from)
            .collect::<Vec<_>>()
            .into(),
    ))
}

#[utoipa::path(post, path = "/companies", tag = "companies",
    request_body = CompanyCreate,
    responses(
        (status = 201, description = "Created", body = CompanyOut),
        (status = 400, description = "An invalid id, name, recipient list or time zone", body = ErrorBody),
        (status = 403, description = "Needs an admin token for every company", body = ErrorBody),
        (status = 409, description = "The id is taken", body = ErrorBody),
    ))]
pub async fn create(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    ApiJson(body): ApiJson<CompanyCreate>,
) -> ApiResult<(StatusCode, Json<CompanyOut>)> {
    caller.require(Role::Admin)?;
    if caller.company().is_some() {
        return Err(ApiError::forbidden(
            "this token is scoped to one company and cannot create companies; use an admin token for every company",
        ));
    }
    ids::check_company_id(&body.id).map_err(|e| ApiError::invalid(e.to_string()))?;
    if body.name.trim().is_empty() {
        return Err(ApiError::invalid("name must not be empty"));
    }
    check_recipients(&body.notify_to)?;
    let time_zone = match &body.time_zone {
        Some(zone) => check_time_zone(zone)?,
        None => companies::DEFAULT_TIME_ZONE.to_owned(),
    };
    if companies::get(hub.store(), &body.id).await.is_ok() {
        return Err(ApiError::conflict(format!(
            "company {:?} already exists; update it with PUT /companies/{}",
            body.id, body.id
        )));
    }
    let company = Company {
        id: body.id,
        name: body.name,
        notify_to: body.notify_to,
        time_zone,
    };
    companies::save(hub.store(), &company).await?;
    Ok((StatusCode::CREATED, Json(company.into())))
}

#[utoipa::path(get, path = "/companies/{id}", tag = "companies",
    params(("id" = String, Path, description = "Company id")),
    responses(
        (status = 200, description = "The company", body = CompanyOut),
        (status = 404, description = "No such company in the token's scope", body = ErrorBody),
    ))]
pub async fn show(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<CompanyOut>> {
    Ok(Json(visible(&hub, &caller, &id).await?.into()))
}

#[utoipa::path(put, path = "/companies/{id}", tag = "companies",
    params(("id" = String, Path, description = "Company id")),
    request_body = CompanyUpdate,
    responses(
        (status = 200, description = "Updated", body = CompanyOut),
        (status = 400, description = "An invalid name, recipient list or time zone", body = ErrorBody),
        (status = 404, description = "No such company in the token's scope", body = ErrorBody),
    ))]
pub async fn update(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CompanyUpdate>,
) -> ApiResult<Json<CompanyOut>> {
    caller.require(Role::Admin)?;
    let mut company = visible(&hub, &caller, &id).await?;
    if let Some(name) = body.name {
        if name.trim().is_empty() {
            return Err(ApiError::invalid("name must not be empty"));
        }
        company.name = name;
    }
    if let Some(notify_to) = body.notify_to {
        check_recipients(&notify_to)?;
        company.notify_to = notify_to;
    }
    if let Some(zone) = body.time_zone {
        company.time_zone = check_time_zone(&zone)?;
    }
    companies::save(hub.store(), &company).await?;
    Ok(Json(company.into()))
}

#[utoipa::path(delete, path = "/companies/{id}", tag = "companies",
    params(("id" = String, Path, description = "Company id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such company in the token's scope", body = ErrorBody),
        (status = 409, description = "It still owns connections or profiles", body = ErrorBody),
    ))]
pub async fn remove(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    visible(&hub, &caller, &id).await?;
    if caller.company().is_some() {
        return Err(ApiError::forbidden(
            "a token scoped to a company cannot delete it; use an admin token for every company",
        ));
    }
    companies::remove(hub.store(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
