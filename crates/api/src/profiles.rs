//! `/profiles`: what a run reads, how it maps, where it writes, and when it
//! runs; plus run now, dry run, enable/disable and explain.

use super::auth::Caller;
use super::error::{ApiJson, ApiQuery, ApiResult, ErrorBody};
use super::runs::RunOut;
use super::Items;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use syncbridge_service::control::profiles::{self as service, NewProfile, ProfileChange};
use syncbridge_service::control::runs::{NewRun, RunMode, Runs};
use syncbridge_service::control::tokens::Role;
use syncbridge_service::hub::Hub;
use syncbridge_sync::explain::{self, Explanation};
use syncbridge_sync::profiles::{self, Profile, ProfileSettings};
use syncbridge_sync::rules::FieldRules;
use utoipa::{IntoParams, ToSchema};

/// A profile with its settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileOut {
    pub id: String,
    pub company_id: Option<String>,
    pub source_connection: String,
    /// What to read from the source, e.g. `users`.
    pub source_scope: String,
    pub mapper_plugin: String,
    #[schema(value_type = Object)]
    pub mapper_options: serde_json::Value,
    pub target_connection: String,
    /// Where to write in the target, e.g. `contacts:company=12`.
    pub target_scope: String,
    /// Engine rules (truth, blank_never_overwrites, match_existing, brakes, ...).
    #[schema(value_type = Object)]
    pub rules: FieldRules,
    pub page_size: u32,
    /// Scheduled runs happen only while enabled; manual runs always.
    pub enabled: bool,
    /// Seconds between scheduled runs: from `minimum_interval_secs` up to
    /// 2678400 (31 days). Null when none is set, or when the stored one is
    /// out of range (then `schedule_error` says so).
    #[schema(minimum = 60, maximum = 2678400)]
    pub interval_secs: Option<u64>,
    /// "HH:MM" of a daily run, in the company's time zone (UTC without a
    /// company); once per local day, DST included.
    pub daily_at: Option<String>,
    /// The shortest interval this flow may be scheduled at (60, or 600 for calendar flows).
    pub minimum_interval_secs: u64,
    /// Why the scheduler skips this profile: its stored schedule is invalid
    /// (e.g. an interval an older version stored out of range). Null when it
    /// is fine; set `interval_secs` / `daily_at` again to fix it.
    pub schedule_error: Option<String>,
}

impl ProfileOut {
    pub fn new(p: Profile, s: ProfileSettings) -> Self {
        Self {
            minimum_interval_secs: profiles::minimum_interval(&p).as_secs(),
            interval_secs: s.interval(&p).ok().flatten().map(|d| d.as_secs()),
            schedule_error: s.validate(&p).err().map(|e| e.to_string()),
            mapper_options: serde_json::from_str(&p.mapper_options)
                .unwrap_or(serde_json::Value::Null),
            id: p.id,
            company_id: s.company_id,
            source_connection: p.source_connection,
            source_scope: p.source_scope,
            mapper_plugin: p.mapper_plugin,
            target_connection: p.target_connection,
            target_scope: p.target_scope,
            rules: p.rules,
            page_size: p.page_size,
            enabled: s.enabled,
            daily_at: s.daily_at,
        }
    }
}

/// Body of `POST /profiles`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileCreate {
    /// Letters, digits, '-' and '_' (at most 64), optionally in a company
    /// namespace `<company>.<name>`; company-scoped tokens must use theirs.
    #[schema(
        pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)?$",
        min_length = 1,
        max_length = 64
    )]
    pub id: String,
    /// Defaults to the token's company; scoped tokens cannot name another.
    pub company_id: Option<String>,
    pub source_connection: String,
    pub source_scope: String,
    /// A mapper plugin.
    pub mapper_plugin: String,
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub mapper_options: serde_json::Value,
    pub target_connection: String,
    pub target_scope: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub rules: FieldRules,
    /// Items read and planned per page (default 100).
    #[serde(default = "default_page_size")]
    #[schema(minimum = 1, maximum = 10000)]
    pub page_size: u32,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Seconds between scheduled runs: from the flow's minimum (60, or 600 for
    /// calendar flows) up to 2678400 (31 days); anything else is refused (400).
    #[schema(minimum = 60, maximum = 2678400)]
    pub interval_secs: Option<u64>,
    /// "HH:MM" of a daily run, in the company's time zone (UTC without a
    /// company); once per local day, DST included.
    pub daily_at: Option<String>,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}
fn default_page_size() -> u32 {
    100
}
fn yes() -> bool {
    true
}

/// Body of `PUT /profiles/{id}`: fields left out keep their value
/// (`interval_secs` and `daily_at` are cleared with `null`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    pub source_connection: Option<String>,
    pub source_scope: Option<String>,
    pub mapper_plugin: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub mapper_options: Option<serde_json::Value>,
    pub target_connection: Option<String>,
    pub target_scope: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub rules: Option<FieldRules>,
    /// Items read and planned per page.
    #[schema(minimum = 1, maximum = 10000)]
    pub page_size: Option<u32>,
    pub enabled: Option<bool>,
    /// Seconds between scheduled runs: from the flow's minimum (60, or 600 for
    /// calendar flows) up to 2678400 (31 days); `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u64>, minimum = 60, maximum = 2678400)]
    pub interval_secs: Option<Option<u64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub daily_at: Option<Option<String>>,
    /// Unscoped tokens only: move the profile to a company (`null`: none).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub company_id: Option<Option<String>>,
}

fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Answer of saving a profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileSaved {
    pub profile: ProfileOut,
    /// The run queued because the profile was saved (trigger `saved`); none
    /// when the profile is disabled or a run is already queued or running.
    pub queued_run: Option<RunOut>,
}

/// Query of `GET /profiles/{id}/explain`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExplainQuery {
    /// A source id or a target id of a linked record.
    pub record: String,
    /// Only this field.
    pub field: Option<String>,
}

/// Where a linked record's fields came from.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplanationOut {
    pub profile_id: String,
    pub source_id: String,
    pub target_id: String,
    /// `created` (the profile owns it) or `matched` (found by a match key).
    pub origin: String,
    pub active: bool,
    pub fields: Vec<FieldExplanationOut>,
}

/// Where one field's value came from.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldExplanationOut {
    pub field: String,
    /// The value last written to (or found in) the target.
    pub value: Option<String>,
    /// `source` when this profile wrote it; null when the target already held it.
    pub system: Option<String>,
    pub run_id: Option<String>,
    pub at: Option<i64>,
    /// The mapper rule and engine rule that decided the write.
    pub rule: Option<String>,
    /// Applied changes of the field, oldest first.
    pub history: Vec<FieldHistoryOut>,
}

/// One applied change of a field.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldHistoryOut {
    pub run_id: String,
    pub action: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub at: i64,
}

impl From<Explanation> for ExplanationOut {
    fn from(e: Explanation) -> Self {
        Self {
            profile_id: e.profile_id,
            source_id: e.source_id,
            target_id: e.target_id,
            origin: e.origin,
            active: e.active,
            fields: e
                .fields
                .into_iter()
                .map(|f| FieldExplanationOut {
                    field: f.field,
                    value: f.value,
                    system: f.system,
                    run_id: f.run_id,
                    at: f.at,
                    rule: f.rule,
                    history: f
                        .history
                        .into_iter()
                        .map(|h| FieldHistoryOut {
                            run_id: h.run_id,
                            action: h.action,
                            before: h.before,
                            after: h.after,
                            at: h.at,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

impl From<service::ProfileSaved> for ProfileSaved {
    fn from(saved: service::ProfileSaved) -> Self {
        Self {
            profile: ProfileOut::new(saved.profile, saved.settings),
            queued_run: saved.queued_run.map(RunOut::from),
        }
    }
}

#[utoipa::path(get, path = "/profiles", tag = "profiles",
    responses((status = 200, description = "Profiles in the token's scope", body = Items<ProfileOut>)))]
pub async fn list(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
) -> ApiResult<Json<Items<ProfileOut>>> {
    let out: Vec<ProfileOut> = service::list(&hub, caller.actor())
        .await?
        .into_iter()
        .map(|(p, s)| ProfileOut::new(p, s))
        .collect();
    Ok(Json(out.into()))
}

#[utoipa::path(post, path = "/profiles", tag = "profiles",
    request_body = ProfileCreate,
    responses(
        (status = 201, description = "Created; a run is queued within seconds (trigger `saved`)", body = ProfileSaved),
        (status = 400, description = "Invalid settings or mapper; an `interval_secs` outside the profile's range (its flow's minimum to 2678400) is refused with the range in the message", body = ErrorBody),
        (status = 404, description = "No such connection, plugin or company in the token's scope", body = ErrorBody),
        (status = 409, description = "The id is taken", body = ErrorBody),
        (status = 422, description = "`configuration`: `mapper_options` do not match the mapper's options schema; each bad field's path is named and nothing is stored", body = ErrorBody),
    ))]
pub async fn create(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    ApiJson(b): ApiJson<ProfileCreate>,
) -> ApiResult<(StatusCode, Json<ProfileSaved>)> {
    caller.require(Role::Admin)?;
    let company_id = caller.company_for_new(b.company_id)?;
    let new = NewProfile {
        profile: Profile {
            id: b.id,
            source_connection: b.source_connection,
            source_scope: b.source_scope,
            mapper_plugin: b.mapper_plugin,
            mapper_options: b.mapper_options.to_string(),
            target_connection: b.target_connection,
            target_scope: b.target_scope,
            rules: b.rules,
            page_size: b.page_size,
        },
        settings: ProfileSettings {
            company_id,
            enabled: b.enabled,
            interval_secs: b.interval_secs,
            daily_at: b.daily_at,
            unreadable_interval: None,
        },
    };
    let saved = service::create(&hub, caller.actor(), new, true).await?;
    Ok((StatusCode::CREATED, Json(saved.into())))
}

#[utoipa::path(get, path = "/profiles/{id}", tag = "profiles",
    params(("id" = String, Path, description = "Profile id")),
    responses(
        (status = 200, description = "The profile with its settings", body = ProfileOut),
        (status = 404, description = "No such profile in the token's scope", body = ErrorBody),
    ))]
pub async fn show(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ProfileOut>> {
    let (p, s) = service::get(&hub, caller.actor(), &id).await?;
    Ok(Json(ProfileOut::new(p, s)))
}

#[utoipa::path(put, path = "/profiles/{id}", tag = "profiles",
    params(("id" = String, Path, description = "Profile id")),
    request_body = ProfileUpdate,
    responses(
        (status = 200, description = "Saved; a run is queued within seconds (trigger `saved`)", body = ProfileSaved),
        (status = 400, description = "Invalid settings or mapper; an `interval_secs` outside the profile's range (its flow's minimum to 2678400) is refused with the range in the message", body = ErrorBody),
        (status = 404, description = "No such profile, connection or plugin in the token's scope", body = ErrorBody),
        (status = 422, description = "`configuration`: `mapper_options` do not match the mapper's options schema; each bad field's path is named and nothing is stored", body = ErrorBody),
    ))]
pub async fn update(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ProfileUpdate>,
) -> ApiResult<Json<ProfileSaved>> {
    caller.require(Role::Admin)?;
    let change = ProfileChange {
        source_connection: b.source_connection,
        source_scope: b.source_scope,
        mapper_plugin: b.mapper_plugin,
        mapper_options: b.mapper_options.map(|v| v.to_string()),
        target_connection: b.target_connection,
        target_scope: b.target_scope,
        rules: b.rules,
        page_size: b.page_size,
        enabled: b.enabled,
        interval_secs: b.interval_secs,
        daily_at: b.daily_at,
        company_id: b.company_id,
    };
    let saved = service::update(&hub, caller.actor(), &id, change, true).await?;
    Ok(Json(saved.into()))
}

#[utoipa::path(delete, path = "/profiles/{id}", tag = "profiles",
    params(("id" = String, Path, description = "Profile id")),
    responses(
        (status = 204, description = "Removed with its links, cursors, plans and quarantine"),
        (status = 404, description = "No such profile in the token's scope", body = ErrorBody),
        (status = 409, description = "`sync_in_progress`: a run of the profile is queued or running", body = ErrorBody),
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

async fn queue(
    hub: &Hub,
    caller: &Caller,
    id: &str,
    mode: RunMode,
) -> ApiResult<(StatusCode, Json<RunOut>)> {
    caller.require(Role::Operator)?;
    let (_, s) = service::get(hub, caller.actor(), id).await?;
    let run = Runs::new(hub.store().clone())
        .enqueue(NewRun {
            profile_id: id,
            company_id: s.company_id.as_deref(),
            trigger: "api",
            mode,
            plan_id: None,
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(run.into())))
}

#[utoipa::path(post, path = "/profiles/{id}/run", tag = "profiles",
    params(("id" = String, Path, description = "Profile id")),
    responses(
        (status = 202, description = "Queued; poll GET /runs/{id}", body = RunOut),
        (status = 404, description = "No such profile in the token's scope", body = ErrorBody),
        (status = 409, description = "`sync_in_progress`: a run of the profile is queued or running", body = ErrorBody),
    ))]
pub async fn run(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<RunOut>)> {
    queue(&hub, &caller, &id, RunMode::Run).await
}

#[utoipa::path(post, path = "/profiles/{id}/dry-run", tag = "profiles",
    params(("id" = String, Path, description = "Profile id")),
    responses(
        (status = 202, description = "Queued; when finished the run's `plan_id` names the stored plan", body = RunOut),
        (status = 404, description = "No such profile in the token's scope", body = ErrorBody),
        (status = 409, description = "`sync_in_progress`: a run of the profile is queued or running", body = ErrorBody),
    ))]
pub async fn dry_run(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<RunOut>)> {
    queue(&hub, &caller, &id, RunMode::DryRun).await
}

#[utoipa::path(post, path = "/profiles/{id}/preview", tag = "profiles",
    params(("id" = String, Path, description = "Profile id")),
    responses(
        (status = 202, description = "Queued: a dry run over a full pass (every source item, not only changes); when finished, GET /plans/{plan_id}/preview shows which filter took each item, where it lands and the planned action", body = RunOut),
        (status = 404, description = "No such profile in the token's scope", body = ErrorBody),
        (status = 409, description = "`sync_in_progress`: a run of the profile is queued or running", body = ErrorBody),
    ))]
pub async fn preview(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<RunOut>)> {
    queue(&hub, &caller, &id, RunMode::Preview).await
}

async fn set_enabled(
    hub: &Hub,
    caller: &Caller,
    id: &str,
    enabled: bool,
) -> ApiResult<Json<ProfileOut>> {
    caller.require(Role::Operator)?;
    let (p, mut s) = service::get(hub, caller.actor(), id).await?;
    profiles::set_enabled(hub.store(), id, enabled).await?;
    s.enabled = enabled;
    Ok(Json(ProfileOut::new(p, s)))
}

#[utoipa::path(post, path = "/profiles/{id}/enable", tag = "profiles",
    params(("id" = String, Path, description = "Profile id")),
    responses(
        (status = 200, description = "Scheduled runs happen again", body = ProfileOut),
        (status = 404, description = "No such profile in the token's scope", body = ErrorBody),
    ))]
pub async fn enable(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ProfileOut>> {
    set_enabled(&hub, &caller, &id, true).await
}

#[utoipa::path(post, path = "/profiles/{id}/disable", tag = "profiles",
    params(("id" = String, Path, description = "Profile id")),
    responses(
        (status = 200, description = "No scheduled runs until enabled (manual runs still work)", body = ProfileOut),
        (status = 404, description = "No such profile in the token's scope", body = ErrorBody),
    ))]
pub async fn disable(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ProfileOut>> {
    set_enabled(&hub, &caller, &id, false).await
}

#[utoipa::path(get, path = "/profiles/{id}/explain", tag = "profiles",
    params(("id" = String, Path, description = "Profile id"), ExplainQuery),
    responses(
        (status = 200, description = "Which source value, rule and run produced each field", body = ExplanationOut),
        (status = 404, description = "No such profile, linked record or field", body = ErrorBody),
    ))]
pub async fn explain(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ExplainQuery>,
) -> ApiResult<Json<ExplanationOut>> {
    service::get(&hub, caller.actor(), &id).await?;
    let e = explain::explain(hub.store(), &id, &q.record, q.field.as_deref()).await?;
    Ok(Json(e.into()))
}
