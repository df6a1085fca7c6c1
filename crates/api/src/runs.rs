//! `/runs`: queued, running and finished runs with their counts and, per
//! run, the journal of item outcomes.

use super::auth::Caller;
use super::error::{ApiError, ApiQuery, ApiResult, ErrorBody};
use super::{check_profile, Items};
use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use syncbridge_service::control::runs::{RunFilter, RunRecord, Runs};
use syncbridge_service::hub::Hub;
use syncbridge_sync::Ledger;
use utoipa::{IntoParams, ToSchema};

/// A run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunOut {
    pub id: String,
    pub profile_id: String,
    pub company_id: Option<String>,
    /// What asked for it: manual, schedule, daily, saved, api, approval.
    pub trigger: String,
    /// run | dry-run | apply-plan
    pub mode: String,
    /// The plan applied (apply-plan) or made (a finished dry run, or a run the brakes held).
    pub plan_id: Option<String>,
    /// queued | running | succeeded | failed | held | planned | stale
    pub status: String,
    /// Milliseconds since the Unix epoch.
    pub requested_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// How many times a worker claimed it (more than 1 = taken over after a crash).
    pub attempts: i64,
    /// Counts once finished (planned, applied, failed, ...).
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
    pub error: Option<String>,
}

impl From<RunRecord> for RunOut {
    fn from(r: RunRecord) -> Self {
        Self {
            id: r.id,
            profile_id: r.profile_id,
            company_id: r.company_id,
            trigger: r.trigger,
            mode: r.mode.as_str().to_owned(),
            plan_id: r.plan_id,
            status: r.status.as_str().to_owned(),
            requested_at: r.requested_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            attempts: r.attempts,
            report: r
                .report
                .map(|s| serde_json::to_value(s).expect("a run summary serialises")),
            error: r.error,
        }
    }
}

/// One journal row of a run: what happened to one item.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunItem {
    pub seq: i64,
    /// planned | applied | failed | recovered | abandoned
    pub phase: String,
    /// create | update | deactivate | reactivate | delete | link | noop
    pub action: String,
    pub source_id: String,
    pub target_id: Option<String>,
    /// Per-field changes: `[{"field", "before", "after"}]`.
    #[schema(value_type = Vec<Object>)]
    pub changes: serde_json::Value,
    /// Why it failed, or other detail.
    pub detail: Option<String>,
    pub at: i64,
}

/// A run with a page of its item outcomes.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: RunOut,
    pub items: Vec<RunItem>,
    /// Pass as `offset` for the next page; absent on the last page.
    pub next_offset: Option<u32>,
}

/// Query of `GET /runs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Only this profile's runs.
    pub profile: Option<String>,
    /// At most this many (default 100, at most 1000), newest first.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Query of `GET /runs/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunItemsQuery {
    /// Item outcomes to skip.
    #[serde(default)]
    #[param(minimum = 0, maximum = 2147483647)]
    pub offset: u32,
    /// Item outcomes to return (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/runs", tag = "runs",
    params(RunsQuery),
    responses((status = 200, description = "Runs in the token's scope, newest first", body = Items<RunOut>),
        (status = 404, description = "`profile` names no profile in the token's scope", body = ErrorBody)))]
pub async fn list(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> ApiResult<Json<Items<RunOut>>> {
    // Scoped tokens get 404 for another company's profile; unscoped ones may
    // list the runs of a removed profile.
    if let (Some(p), Some(_)) = (&q.profile, caller.company()) {
        check_profile(&hub, &caller, p).await?;
    }
    let runs = Runs::new(hub.store().clone())
        .list(RunFilter {
            profile_id: q.profile.as_deref(),
            company_id: caller.company(),
            limit: Some(super::page_limit(q.limit)?),
        })
        .await?;
    Ok(Json(
        runs.into_iter()
            .map(RunOut::from)
            .collect::<Vec<_>>()
            .into(),
    ))
}

/// A run the caller may see (404 otherwise).
pub(crate) async fn visible_run(hub: &Hub, caller: &Caller, id: &str) -> ApiResult<RunRecord> {
    let run = Runs::new(hub.store().clone()).get(id).await?;
    if !caller.sees(run.company_id.as_deref()) {
        return Err(ApiError::not_found("run", id));
    }
    Ok(run)
}

#[utoipa::path(get, path = "/runs/{id}", tag = "runs",
    params(("id" = String, Path, description = "Run id"), RunItemsQuery),
    responses(
        (status = 200, description = "The run, its counts and a page of item outcomes", body = RunDetail),
        (status = 404, description = "No such run in the token's scope", body = ErrorBody),
    ))]
pub async fn show(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<RunItemsQuery>,
) -> ApiResult<Json<RunDetail>> {
    let run = visible_run(&hub, &caller, &id).await?;
    let limit = super::page_limit(q.limit)?;
    super::page_offset(q.offset)?;
    let (entries, more) = Ledger::new(hub.store().clone())
        .run_entries(&id, q.offset, limit)
        .await?;
    let items = entries
        .into_iter()
        .map(|e| RunItem {
            seq: e.seq,
            phase: e.phase,
            action: e.action,
            source_id: e.source_id,
            target_id: e.target_id,
            changes: serde_json::to_value(e.changes).expect("field changes serialise"),
            detail: e.detail,
            at: e.at,
        })
        .collect();
    Ok(Json(RunDetail {
        run: run.into(),
        items,
        next_offset: more.then_some(q.offset + limit),
    }))
}
