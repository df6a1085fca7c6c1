//! `POST /exchange-profiles/{id}/diagnose`: flow 1's troubleshooting tree,
//! run by `control::exchange_diagnose` (the call `syncbridge diagnose`
//! makes). The resource to limit it to is the query parameter `resource`.

use super::auth::Caller;
use super::error::{ApiError, ApiQuery, ApiResult, ErrorBody};
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use std::sync::Arc;
use syncbridge_service::control::exchange_diagnose::{self as service, DiagnoseError, Diagnosis};
use syncbridge_service::control::tokens::Role;
use syncbridge_service::hub::Hub;
use utoipa::IntoParams;

/// Query of `POST /exchange-profiles/{id}/diagnose`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiagnoseQuery {
    /// Only this PSA resource (it must be enabled); default every enabled resource.
    #[serde(default)]
    pub resource: Option<String>,
}

impl From<DiagnoseError> for ApiError {
    fn from(e: DiagnoseError) -> Self {
        match e {
            DiagnoseError::Profile(e) => e.into(),
            DiagnoseError::Resource(e) => e.into(),
        }
    }
}

#[utoipa::path(post, path = "/exchange-profiles/{id}/diagnose", tag = "exchange",
    params(("id" = String, Path, description = "Exchange profile id"), DiagnoseQuery),
    responses(
        (status = 200, description = "The troubleshooting tree's findings (step, check, outcome, cause, remedy), the step it stopped at and the conclusion; a failed step is an answer, not an error", body = Diagnosis),
        (status = 404, description = "No such profile or resource in the token's scope", body = ErrorBody),
        (status = 409, description = "The resource is not enabled", body = ErrorBody),
    ))]
pub async fn diagnose(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DiagnoseQuery>,
) -> ApiResult<Json<Diagnosis>> {
    caller.require(Role::Operator)?;
    let d = service::diagnose(&hub, caller.actor(), &id, q.resource.as_deref()).await?;
    Ok(Json(d))
}
