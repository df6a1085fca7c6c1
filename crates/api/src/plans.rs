//! `/plans`: stored plans of dry runs and of runs the brakes held, item by
//! item with per-field changes; apply (claims the plan and queues an
//! apply-plan run) or discard.

use super::auth::Caller;
use super::error::{ApiError, ApiQuery, ApiResult, ErrorBody};
use super::runs::RunOut;
use super::{check_profile, visible_profile_ids, Items};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use syncbridge_service::control::approval::{self, Start};
use syncbridge_service::control::plans::{self, PlanInfo, PlanItem};
use syncbridge_service::control::tokens::Role;
use syncbridge_service::hub::Hub;
use syncbridge_sync::plan::PlanCounts;
use utoipa::{IntoParams, ToSchema};

/// How many items of each action a plan holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct CountsOut {
    pub create: u64,
    pub update: u64,
    pub deactivate: u64,
    pub reactivate: u64,
    pub delete: u64,
    pub link: u64,
    /// Links forgotten because their target item is gone (`on_target_gone: unlink`).
    pub unlink: u64,
    /// Pairs where only the source is written (two-way fields changed in the target).
    pub write_back: u64,
    /// Unchanged items.
    pub noop: u64,
}

impl From<PlanCounts> for CountsOut {
    fn from(c: PlanCounts) -> Self {
        Self {
            create: c.create,
            update: c.update,
            deactivate: c.deactivate,
            reactivate: c.reactivate,
            delete: c.delete,
            link: c.link,
            unlink: c.unlink,
            write_back: c.write_back,
            noop: c.noop,
        }
    }
}

/// A stored plan's header.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanOut {
    pub id: String,
    pub profile_id: String,
    /// The run that made it.
    pub run_id: String,
    /// proposed | held (open: may be applied or discarded) → applying (an
    /// apply-plan run claimed it) → applied | failed | stale; or discarded.
    #[schema(example = "proposed")]
    pub status: String,
    /// Whether it can still be applied or discarded (proposed or held).
    pub open: bool,
    /// Why it is held, stale or failed.
    pub reason: Option<String>,
    /// The apply-plan run that claimed it (once applying).
    pub apply_run: Option<String>,
    pub counts: CountsOut,
    pub created_at: i64,
    pub decided_at: Option<i64>,
}

impl From<PlanInfo> for PlanOut {
    fn from(p: PlanInfo) -> Self {
        Self {
            open: p.status.open(),
            status: p.status.as_str().to_owned(),
            id: p.id,
            profile_id: p.profile_id,
            run_id: p.run_id,
            reason: p.reason,
            apply_run: p.apply_run,
            counts: p.counts.into(),
            created_at: p.created_at,
            decided_at: p.decided_at,
        }
    }
}

/// One field before and after.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldChangeOut {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// One planned operation.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanItemOut {
    pub seq: i64,
    /// The source page it came from (0-based).
    pub page: i64,
    pub source_id: String,
    /// create | update | deactivate | reactivate | delete | link | noop
    pub action: String,
    pub target_id: Option<String>,
    /// `created` or `matched`.
    pub origin: String,
    /// The per-field changes it writes.
    pub changes: Vec<FieldChangeOut>,
    /// The mapper rule and engine rule that decided it.
    pub rule: String,
    /// Whether it retries a quarantined item.
    pub retry: bool,
}

fn text<T: Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl From<PlanItem> for PlanItemOut {
    fn from(i: PlanItem) -> Self {
        Self {
            seq: i.seq,
            page: i.page,
            source_id: i.op.source_id,
            action: i.op.action.as_str().to_owned(),
            target_id: i.op.target_id,
            origin: text(i.op.origin),
            changes: i
                .op
                .changes
                .into_iter()
                .map(|c| FieldChangeOut {
                    field: c.field,
                    before: c.before,
                    after: c.after,
                })
                .collect(),
            rule: i.op.decided.to_string(),
            retry: i.op.retry,
        }
    }
}

/// A plan with a page of its items.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanDetail {
    #[serde(flatten)]
    pub plan: PlanOut,
    pub items: Vec<PlanItemOut>,
    /// Pass as `offset` for the next page; absent on the last page.
    pub next_offset: Option<u32>,
}

/// Query of `GET /plans`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlansQuery {
    /// Only this profile's plans.
    pub profile: Option<String>,
}

/// Query of `GET /plans/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlanItemsQuery {
    /// Leave out unchanged items.
    #[serde(default)]
    pub changes_only: bool,
    /// Items to skip.
    #[serde(default)]
    #[param(minimum = 0, maximum = 2147483647)]
    pub offset: u32,
    /// Items to return (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// A plan the caller may see (404 otherwise).
async fn visible_plan(hub: &Hub, caller: &Caller, id: &str) -> ApiResult<PlanInfo> {
    let plan = plans::get(hub.store(), id).await?;
    if check_profile(hub, caller, &plan.profile_id).await.is_err() && caller.company().is_some() {
        return Err(ApiError::not_found("plan", id));
    }
    Ok(plan)
}

#[utoipa::path(get, path = "/plans", tag = "plans",
    params(PlansQuery),
    responses((status = 200, description = "Plans in the token's scope, newest first", body = Items<PlanOut>),
        (status = 404, description = "`profile` names no profile in the token's scope", body = ErrorBody)))]
pub async fn list(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PlansQuery>,
) -> ApiResult<Json<Items<PlanOut>>> {
    if let Some(p) = &q.profile {
        check_profile(&hub, &caller, p).await?;
    }
    let visible = visible_profile_ids(&hub, &caller).await?;
    let list = plans::list(hub.store(), q.profile.as_deref()).await?;
    Ok(Json(
        list.into_iter()
            .filter(|p| visible.as_ref().is_none_or(|v| v.contains(&p.profile_id)))
            .map(PlanOut::from)
            .collect::<Vec<_>>()
            .into(),
    ))
}

#[utoipa::path(get, path = "/plans/{id}", tag = "plans",
    params(("id" = String, Path, description = "Plan id"), PlanItemsQuery),
    responses(
        (status = 200, description = "The plan and a page of its items with per-field changes", body = PlanDetail),
        (status = 404, description = "No such plan in the token's scope", body = ErrorBody),
    ))]
pub async fn show(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PlanItemsQuery>,
) -> ApiResult<Json<PlanDetail>> {
    let plan = visible_plan(&hub, &caller, &id).await?;
    let limit = super::page_limit(q.limit)?;
    super::page_offset(q.offset)?;
    let mut items = plans::items(hub.store(), &id, q.changes_only, q.offset, limit + 1).await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    Ok(Json(PlanDetail {
        plan: plan.into(),
        items: items.into_iter().map(PlanItemOut::from).collect(),
        next_offset: more.then_some(q.offset + limit),
    }))
}

/// One line of a filter preview.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewRowOut {
    pub source_id: String,
    /// The person as the target will know them (e-mail or name), if mapped.
    pub who: Option<String>,
    /// The mapper rule that decided: the filter, or why no filter took the item.
    pub rule: String,
    pub reason: String,
    pub site: Option<String>,
    pub contact_types: Vec<String>,
    /// create | update | link | deactivate | reactivate | delete | noop
    pub action: String,
    pub target_id: Option<String>,
}

/// A plan's filter preview.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewOut {
    pub plan: PlanOut,
    pub items: Vec<PreviewRowOut>,
}

#[utoipa::path(get, path = "/plans/{id}/preview", tag = "plans",
    params(("id" = String, Path, description = "Plan id (from a dry run: POST /profiles/{id}/dry-run, then the run's plan_id)")),
    responses(
        (status = 200, description = "For every source item: the filter that matched (or why none did), site, contact types and the planned action", body = PreviewOut),
        (status = 404, description = "No such plan in the token's scope", body = ErrorBody),
    ))]
pub async fn preview(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<PreviewOut>> {
    let plan = visible_plan(&hub, &caller, &id).await?;
    let items = plans::items(hub.store(), &id, false, 0, 100_000).await?;
    let rows = syncbridge_service::control::preview::rows(&items)
        .into_iter()
        .map(|r| PreviewRowOut {
            source_id: r.source_id,
            who: r.who,
            rule: r.rule,
            reason: r.reason,
            site: r.site,
            contact_types: r.contact_types,
            action: r.action.as_str().to_owned(),
            target_id: r.target_id,
        })
        .collect();
    Ok(Json(PreviewOut {
        plan: plan.into(),
        items: rows,
    }))
}

#[utoipa::path(post, path = "/plans/{id}/apply", tag = "plans",
    params(("id" = String, Path, description = "Plan id")),
    responses(
        (status = 202, description = "The plan is claimed (status `applying`) and an apply-plan run is queued (trigger `approval`); poll GET /runs/{id}. The run ends the plan applied, failed or stale", body = RunOut),
        (status = 404, description = "No such plan in the token's scope", body = ErrorBody),
        (status = 409, description = "`plan_not_open`: not proposed or held (another apply or discard came first); or `sync_in_progress`: a run of the profile is queued or running (the plan stays open)", body = ErrorBody),
    ))]
pub async fn apply(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<RunOut>)> {
    caller.require(Role::Operator)?;
    visible_plan(&hub, &caller, &id).await?;
    let run = approval::start(hub.store(), &id, "approval", Start::Queue).await?;
    Ok((StatusCode::ACCEPTED, Json(run.into())))
}

#[utoipa::path(post, path = "/plans/{id}/discard", tag = "plans",
    params(("id" = String, Path, description = "Plan id")),
    responses(
        (status = 200, description = "Discarded", body = PlanOut),
        (status = 404, description = "No such plan in the token's scope", body = ErrorBody),
        (status = 409, description = "`plan_not_open`: not proposed or held (being applied, applied, failed, discarded or stale)", body = ErrorBody),
    ))]
pub async fn discard(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<PlanOut>> {
    caller.require(Role::Operator)?;
    visible_plan(&hub, &caller, &id).await?;
    Ok(Json(plans::discard(hub.store(), &id).await?.into()))
}
