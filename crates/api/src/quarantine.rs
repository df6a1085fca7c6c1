//! `/quarantine`: items that failed and why, with retry, skip and relink.

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiQuery, ApiResult, ErrorBody};
use super::{check_profile, visible_profile_ids, Items};
use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use syncbridge_service::control::quarantine::{self, QuarantinedItem};
use syncbridge_service::control::tokens::Role;
use syncbridge_service::hub::Hub;
use utoipa::{IntoParams, ToSchema};

/// One quarantined item.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuarantinedOut {
    pub profile_id: String,
    pub source_id: String,
    /// The error class: throttled, transient, invalid, conflict, auth, ...
    pub error_class: String,
    pub error: String,
    pub attempts: i64,
    /// When it last failed (milliseconds since the Unix epoch).
    pub at: i64,
    /// Skipped: not retried until the source brings it again.
    pub skipped: bool,
}

impl From<QuarantinedItem> for QuarantinedOut {
    fn from(q: QuarantinedItem) -> Self {
        Self {
            profile_id: q.profile_id,
            source_id: q.source_id,
            error_class: q.error_class,
            error: q.error,
            attempts: q.attempts,
            at: q.at,
            skipped: q.skipped,
        }
    }
}

/// Query of `GET /quarantine`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuarantineQuery {
    /// Only this profile's items.
    pub profile: Option<String>,
}

/// Body of `POST /quarantine/{profile}/{source_id}/relink`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelinkBody {
    /// The existing target record the item should be linked to.
    pub target_id: String,
}

/// Answer of a quarantine action.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuarantineAction {
    pub profile_id: String,
    pub source_id: String,
    /// retried | skipped | relinked
    pub done: String,
    /// What happens next.
    pub message: String,
}

#[utoipa::path(get, path = "/quarantine", tag = "quarantine",
    params(QuarantineQuery),
    responses((status = 200, description = "Quarantined items in the token's scope", body = Items<QuarantinedOut>),
        (status = 404, description = "`profile` names no profile in the token's scope", body = ErrorBody)))]
pub async fn list(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<QuarantineQuery>,
) -> ApiResult<Json<Items<QuarantinedOut>>> {
    if let Some(p) = &q.profile {
        check_profile(&hub, &caller, p).await?;
    }
    let visible = visible_profile_ids(&hub, &caller).await?;
    let items = quarantine::list(hub.store(), q.profile.as_deref()).await?;
    Ok(Json(
        items
            .into_iter()
            .filter(|i| visible.as_ref().is_none_or(|v| v.contains(&i.profile_id)))
            .map(QuarantinedOut::from)
            .collect::<Vec<_>>()
            .into(),
    ))
}

async fn act(hub: &Hub, caller: &Caller, profile: &str) -> ApiResult<()> {
    caller.require(Role::Operator)?;
    check_profile(hub, caller, profile).await
}

#[utoipa::path(post, path = "/quarantine/{profile}/{source_id}/retry", tag = "quarantine",
    params(("profile" = String, Path, description = "Profile id"), ("source_id" = String, Path, description = "Source id of the item")),
    responses(
        (status = 200, description = "Retried on the next run", body = QuarantineAction),
        (status = 404, description = "No such quarantined item in the token's scope", body = ErrorBody),
    ))]
pub async fn retry(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path((profile, source_id)): Path<(String, String)>,
) -> ApiResult<Json<QuarantineAction>> {
    act(&hub, &caller, &profile).await?;
    quarantine::retry(hub.store(), &profile, &source_id).await?;
    Ok(Json(QuarantineAction {
        message: format!("{source_id} is retried on the next run of {profile}"),
        profile_id: profile,
        source_id,
        done: "retried".into(),
    }))
}

#[utoipa::path(post, path = "/quarantine/{profile}/{source_id}/skip", tag = "quarantine",
    params(("profile" = String, Path, description = "Profile id"), ("source_id" = String, Path, description = "Source id of the item")),
    responses(
        (status = 200, description = "Not retried until the source brings the item again", body = QuarantineAction),
        (status = 404, description = "No such quarantined item in the token's scope", body = ErrorBody),
    ))]
pub async fn skip(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path((profile, source_id)): Path<(String, String)>,
) -> ApiResult<Json<QuarantineAction>> {
    act(&hub, &caller, &profile).await?;
    quarantine::skip(hub.store(), &profile, &source_id).await?;
    Ok(Json(QuarantineAction {
        message: format!(
            "{source_id} is not retried until the source brings it again; POST .../retry undoes this"
        ),
        profile_id: profile,
        source_id,
        done: "skipped".into(),
    }))
}

#[utoipa::path(post, path = "/quarantine/{profile}/{source_id}/relink", tag = "quarantine",
    params(("profile" = String, Path, description = "Profile id"), ("source_id" = String, Path, description = "Source id of the item")),
    request_body = RelinkBody,
    responses(
        (status = 200, description = "Linked to the given target record (as matched) and retried on the next run", body = QuarantineAction),
        (status = 404, description = "No such profile in the token's scope", body = ErrorBody),
    ))]
pub async fn relink(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path((profile, source_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<RelinkBody>,
) -> ApiResult<Json<QuarantineAction>> {
    act(&hub, &caller, &profile).await?;
    if body.target_id.trim().is_empty() {
        return Err(ApiError::invalid("target_id must not be empty"));
    }
    quarantine::relink(hub.store(), &profile, &source_id, &body.target_id).await?;
    Ok(Json(QuarantineAction {
        message: format!(
            "{source_id} is linked to target {} (matched, not owned) and retried on the next run",
            body.target_id
        ),
        profile_id: profile,
        source_id,
        done: "relinked".into(),
    }))
}
