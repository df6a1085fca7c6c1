//! `/alerts`: conditions an operator must act on.

use super::auth::Caller;
use super::error::{ApiError, ApiQuery, ApiResult, ErrorBody};
use super::Items;
use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use syncbridge_service::control::alerts::{self, Alert};
use syncbridge_service::control::tokens::Role;
use syncbridge_service::hub::Hub;
use utoipa::{IntoParams, ToSchema};

/// One alert.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertOut {
    pub id: String,
    pub company_id: Option<String>,
    pub connection_id: Option<String>,
    pub profile_id: Option<String>,
    pub run_id: Option<String>,
    /// The mailbox whose owner the alert is for.
    pub mailbox_id: Option<String>,
    /// error | warning | info
    pub severity: String,
    /// Stable code, e.g. `connection_auth_failed`, `plan_held`, `run_failed`.
    pub code: String,
    pub message: String,
    pub at: i64,
    pub resolved_at: Option<i64>,
}

impl From<Alert> for AlertOut {
    fn from(a: Alert) -> Self {
        Self {
            id: a.id,
            company_id: a.company_id,
            connection_id: a.connection_id,
            profile_id: a.profile_id,
            run_id: a.run_id,
            mailbox_id: a.mailbox_id,
            severity: a.severity,
            code: a.code,
            message: a.message,
            at: a.at,
            resolved_at: a.resolved_at,
        }
    }
}

/// Query of `GET /alerts`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// Include resolved alerts.
    #[serde(default)]
    pub all: bool,
    /// Only the alerts for the owner of this mailbox (its alerts wall).
    #[serde(default)]
    pub mailbox: Option<String>,
}

#[utoipa::path(get, path = "/alerts", tag = "alerts",
    params(AlertsQuery),
    responses((status = 200, description = "Open (or, with all=true, all) alerts in the token's scope, newest first", body = Items<AlertOut>)))]
pub async fn list(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AlertsQuery>,
) -> ApiResult<Json<Items<AlertOut>>> {
    let list = alerts::list(hub.store(), caller.company(), q.mailbox.as_deref(), q.all).await?;
    Ok(Json(
        list.into_iter()
            .map(AlertOut::from)
            .collect::<Vec<_>>()
            .into(),
    ))
}

#[utoipa::path(post, path = "/alerts/{id}/resolve", tag = "alerts",
    params(("id" = String, Path, description = "Alert id")),
    responses(
        (status = 200, description = "Resolved", body = AlertOut),
        (status = 404, description = "No such alert in the token's scope", body = ErrorBody),
    ))]
pub async fn resolve(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AlertOut>> {
    caller.require(Role::Operator)?;
    let alert = alerts::get(hub.store(), &id).await?;
    if !caller.sees(alert.company_id.as_deref()) {
        return Err(ApiError::not_found("alert", &id));
    }
    alerts::resolve(hub.store(), &id).await?;
    Ok(Json(alerts::get(hub.store(), &id).await?.into()))
}
