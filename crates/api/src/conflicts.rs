//! `/conflicts`: two-way fields both sides changed differently, held for
//! review, and their resolution.

use super::auth::Caller;
use super::error::{ApiJson, ApiQuery, ApiResult, ErrorBody};
use super::{check_profile, visible_profile_ids, Items};
use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use syncbridge_service::control::conflicts::{self, Conflict};
use syncbridge_service::control::tokens::Role;
use syncbridge_service::hub::Hub;
use syncbridge_sync::merge::Side;
use utoipa::{IntoParams, ToSchema};

/// One held conflict.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConflictOut {
    pub profile_id: String,
    pub source_id: String,
    pub target_id: String,
    /// The canonical field, e.g. `start`.
    pub field: String,
    /// The value both sides last agreed on.
    pub base: Option<String>,
    /// The source's value now.
    pub source: Option<String>,
    /// The target's value now.
    pub target: Option<String>,
    /// Why it is held.
    pub reason: String,
    /// `source` or `target` once an operator chose; applied by the next run.
    pub resolution: Option<String>,
    /// When it was last seen (milliseconds since the Unix epoch).
    pub at: i64,
}

impl From<Conflict> for ConflictOut {
    fn from(c: Conflict) -> Self {
        Self {
            profile_id: c.profile_id,
            source_id: c.source_id,
            target_id: c.target_id,
            field: c.field,
            base: c.base,
            source: c.source,
            target: c.target,
            reason: c.reason,
            resolution: c.resolution.map(|s| s.as_str().to_owned()),
            at: c.at,
        }
    }
}

/// Query of `GET /conflicts`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConflictsQuery {
    /// Only this profile's conflicts.
    pub profile: Option<String>,
}

/// The side whose value wins.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Winner {
    Source,
    Target,
}

/// Body of `POST /conflicts/{profile}/{source_id}/{field}/resolve`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    pub winner: Winner,
}

/// Answer of a resolution.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resolved {
    pub profile_id: String,
    pub source_id: String,
    pub field: String,
    /// source | target
    pub winner: String,
    /// What happens next.
    pub message: String,
}

#[utoipa::path(get, path = "/conflicts", tag = "conflicts",
    params(ConflictsQuery),
    responses((status = 200, description = "Held conflicts in the token's scope", body = Items<ConflictOut>),
        (status = 404, description = "`profile` names no profile in the token's scope", body = ErrorBody)))]
pub async fn list(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ConflictsQuery>,
) -> ApiResult<Json<Items<ConflictOut>>> {
    if let Some(p) = &q.profile {
        check_profile(&hub, &caller, p).await?;
    }
    let visible = visible_profile_ids(&hub, &caller).await?;
    let items = conflicts::list(hub.store(), q.profile.as_deref()).await?;
    Ok(Json(
        items
            .into_iter()
            .filter(|c| visible.as_ref().is_none_or(|v| v.contains(&c.profile_id)))
            .map(ConflictOut::from)
            .collect::<Vec<_>>()
            .into(),
    ))
}

#[utoipa::path(post, path = "/conflicts/{profile}/{source_id}/{field}/resolve", tag = "conflicts",
    params(("profile" = String, Path, description = "Profile id"),
        ("source_id" = String, Path, description = "Source id of the item"),
        ("field" = String, Path, description = "The conflicting field")),
    request_body = ResolveBody,
    responses(
        (status = 200, description = "Resolved; the next run writes the winner's value to the other side", body = Resolved),
        (status = 404, description = "No such conflict in the token's scope", body = ErrorBody),
    ))]
pub async fn resolve(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path((profile, source_id, field)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<ResolveBody>,
) -> ApiResult<Json<Resolved>> {
    caller.require(Role::Operator)?;
    check_profile(&hub, &caller, &profile).await?;
    let side = match body.winner {
        Winner::Source => Side::Source,
        Winner::Target => Side::Target,
    };
    conflicts::resolve(hub.store(), &profile, &source_id, &field, side).await?;
    Ok(Json(Resolved {
        message: format!(
            "the {} value of {field} wins; the next run of {profile} writes it to the other side",
            side.as_str()
        ),
        winner: side.as_str().to_owned(),
        profile_id: profile,
        source_id,
        field,
    }))
}
