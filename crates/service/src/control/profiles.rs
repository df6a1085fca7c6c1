//! Creating, changing, showing and removing sync profiles: the rules the
//! REST API's `/profiles` and the CLI's `profile` commands share.
//!
//! - Ids are checked once ([`crate::ids`]); a company-scoped caller creates
//!   only in its namespace and sees only its company's profiles and connections.
//! - The mapper must be a mapper plugin, its options a JSON object; the page
//!   size and the schedule within their ranges.
//! - Saving an enabled profile queues its first run (trigger `saved`) unless
//!   the caller asks not to; nothing is removed while a run of it is queued
//!   or running.

use super::runs::{NewRun, RunMode, RunRecord, Runs, RunsError};
use super::{companies, Actor};
use crate::hub::{Hub, HubError};
use crate::ids;
use syncbridge_store::StoreError;
use syncbridge_sync::profiles::{self, Profile, ProfileSettings, MAX_PAGE_SIZE};
use syncbridge_sync::rules::FieldRules;

/// A profile to create.
#[derive(Debug, Clone)]
pub struct NewProfile {
    pub profile: Profile,
    pub settings: ProfileSettings,
}

/// A change to a profile: `None` keeps a value; the doubled options clear
/// theirs with `Some(None)`.
#[derive(Debug, Clone, Default)]
pub struct ProfileChange {
    pub source_connection: Option<String>,
    pub source_scope: Option<String>,
    pub mapper_plugin: Option<String>,
    /// The mapper's options, JSON text.
    pub mapper_options: Option<String>,
    pub target_connection: Option<String>,
    pub target_scope: Option<String>,
    pub rules: Option<FieldRules>,
    pub page_size: Option<u32>,
    pub enabled: Option<bool>,
    pub interval_secs: Option<Option<u64>>,
    pub daily_at: Option<Option<String>>,
    /// Callers for every company only: move the profile to a company.
    pub company_id: Option<Option<String>>,
}

/// A saved profile, and the run saving it queued.
#[derive(Debug, Clone)]
pub struct ProfileSaved {
    pub profile: Profile,
    pub settings: ProfileSettings,
    /// None when the profile is disabled, the caller asked for no run, or a
    /// run is already queued or running.
    pub queued_run: Option<RunRecord>,
}

/// Why a profile was not saved, shown or removed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Missing records (the profile, a connection, plugin or company) among them.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    /// The mapper could not be asked for its options schema, or the options
    /// do not match it (`HubError::ConfigSchema`, naming each field).
    #[error(transparent)]
    Mapper(#[from] HubError),
    #[error("profile {0:?} already exists; change it with `syncbridge profile update {0}` or PUT /api/v1/profiles/{0}")]
    Exists(String),
    #[error("this caller is scoped to company {company:?} and cannot move profiles to another")]
    ScopeViolation { company: String },
    #[error("a run of profile {profile} is queued or in progress (run {run}); try again when it finishes")]
    SyncInProgress { profile: String, run: String },
}

impl From<ids::IdError> for ProfileError {
    fn from(e: ids::IdError) -> Self {
        ProfileError::Invalid(e.to_string())
    }
}

impl From<RunsError> for ProfileError {
    fn from(e: RunsError) -> Self {
        match e {
            RunsError::InProgress { profile, run_id } => ProfileError::SyncInProgress {
                profile,
                run: run_id,
            },
            RunsError::Store(e) => ProfileError::Store(e),
        }
    }
}

fn not_found(what: &'static str, id: &str) -> ProfileError {
    ProfileError::Store(StoreError::NotFound {
        what,
        id: id.to_owned(),
    })
}

/// Profile `id` with its settings, if `actor` may see it (not found otherwise).
pub async fn get(
    hub: &Hub,
    actor: Actor<'_>,
    id: &str,
) -> Result<(Profile, ProfileSettings), ProfileError> {
    let profile = profiles::get(hub.store(), id).await?;
    let settings = profiles::settings(hub.store(), id).await?;
    if !actor.sees(settings.company_id.as_deref()) {
        return Err(not_found("profile", id));
    }
    Ok((profile, settings))
}

/// The profiles `actor` may see, with their settings, by id.
pub async fn list(
    hub: &Hub,
    actor: Actor<'_>,
) -> Result<Vec<(Profile, ProfileSettings)>, ProfileError> {
    let mut out = Vec::new();
    for profile in profiles::list(hub.store()).await? {
        let settings = profiles::settings(hub.store(), &profile.id).await?;
        if actor.sees(settings.company_id.as_deref()) {
            out.push((profile, settings));
        }
    }
    Ok(out)
}

/// Creates a profile for `actor`; with `queue_run`, an enabled profile's
/// first run is queued.
pub async fn create(
    hub: &Hub,
    actor: Actor<'_>,
    new: NewProfile,
    queue_run: bool,
) -> Result<ProfileSaved, ProfileError> {
    let NewProfile { profile, settings } = new;
    ids::check_new_object_id(
        "profile",
        &profile.id,
        settings.company_id.as_deref(),
        actor.company(),
    )?;
    if profiles::get(hub.store(), &profile.id).await.is_ok() {
        return Err(ProfileError::Exists(profile.id));
    }
    validate(hub, actor, &profile, &settings).await?;
    save(hub, profile, settings, queue_run).await
}

/// Applies `change` to profile `id` for `actor`.
pub async fn update(
    hub: &Hub,
    actor: Actor<'_>,
    id: &str,
    change: ProfileChange,
    queue_run: bool,
) -> Result<ProfileSaved, ProfileError> {
    let (mut p, mut s) = get(hub, actor, id).await?;
    let before = p.clone();
    let ProfileChange {
        source_connection,
        source_scope,
        mapper_plugin,
        mapper_options,
        target_connection,
        target_scope,
        rules,
        page_size,
        enabled,
        interval_secs,
        daily_at,
        company_id,
    } = change;
    let set = |field: &mut String, value: Option<String>| {
        if let Some(v) = value {
            *field = v;
        }
    };
    set(&mut p.source_connection, source_connection);
    set(&mut p.source_scope, source_scope);
    set(&mut p.mapper_plugin, mapper_plugin);
    set(&mut p.mapper_options, mapper_options);
    set(&mut p.target_connection, target_connection);
    set(&mut p.target_scope, target_scope);
    if let Some(v) = rules {
        p.rules = v;
    }
    if let Some(v) = page_size {
        p.page_size = v;
    }
    if let Some(v) = enabled {
        s.enabled = v;
    }
    if let Some(v) = interval_secs {
        s.interval_secs = v;
        s.unreadable_interval = None;
    }
    if let Some(v) = daily_at {
        s.daily_at = v;
    }
    if let Some(requested) = company_id {
        if let Some(mine) = actor.company() {
            if requested.as_deref() != Some(mine) {
                return Err(ProfileError::ScopeViolation {
                    company: mine.to_owned(),
                });
            }
        }
        s.company_id = requested;
    }
    ids::check_object_id("profile", &p.id, s.company_id.as_deref())?;
    validate(hub, actor, &p, &s).await?;
    let reevaluate = profiles::changes_what_runs_write(&before, &p);
    let saved = save(hub, p, s, queue_run).await?;
    if reevaluate {
        // The next run reads every source item and every linked target item,
        // so the new configuration reaches users that do not change.
        profiles::request_profile_resync(hub.store(), id).await?;
    }
    Ok(saved)
}

/// Makes the next run of profile `id` a full reconcile: every source item
/// and every linked target item read and evaluated again.
pub async fn request_full_reconcile(
    hub: &Hub,
    actor: Actor<'_>,
    id: &str,
) -> Result<(), ProfileError> {
    get(hub, actor, id).await?;
    profiles::request_profile_resync(hub.store(), id).await?;
    Ok(())
}

/// Removes profile `id` with its links, cursors, plans and quarantine,
/// unless a run of it is queued or running.
pub async fn remove(hub: &Hub, actor: Actor<'_>, id: &str) -> Result<(), ProfileError> {
    get(hub, actor, id).await?;
    if let Some(run) = Runs::new(hub.store().clone())
        .active_for_profile(id)
        .await?
    {
        return Err(ProfileError::SyncInProgress {
            profile: id.to_owned(),
            run: run.id,
        });
    }
    profiles::remove(hub.store(), id).await?;
    Ok(())
}

/// Checks references and settings before a save.
async fn validate(
    hub: &Hub,
    actor: Actor<'_>,
    p: &Profile,
    s: &ProfileSettings,
) -> Result<(), ProfileError> {
    let options =
        profiles::check_mapper_options(&p.mapper_options).map_err(ProfileError::Invalid)?;
    if let Some(c) = &s.company_id {
        companies::get(hub.store(), c).await?;
    }
    for conn in [&p.source_connection, &p.target_connection] {
        hub.store().get_connection(conn).await?;
        let company = companies::of_connection(hub.store(), conn).await?;
        if !actor.sees(company.as_deref()) {
            return Err(not_found("connection", conn));
        }
    }
    let mapper = hub.store().get_plugin(&p.mapper_plugin).await?;
    if mapper.kind != "mapper" {
        return Err(ProfileError::Invalid(format!(
            "plugin {} is a {}; the profile's mapper must be a mapper plugin (`syncbridge plugin list` shows the kinds)",
            p.mapper_plugin, mapper.kind
        )));
    }
    let plugin = hub.plugin(&p.mapper_plugin).await?;
    hub.check_options(&plugin, &options).await?;
    // The rules may read source fields beyond the canonical ones (a field
    // filter on `companyName`): the source connector must be able to read them.
    hub.source_read_scope(
        &p.mapper_plugin,
        &p.mapper_options,
        &p.source_connection,
        &p.source_scope,
    )
    .await?;
    if !(1..=MAX_PAGE_SIZE).contains(&p.page_size) {
        return Err(ProfileError::Invalid(format!(
            "page_size {} is out of range: use 1 to {MAX_PAGE_SIZE}",
            p.page_size
        )));
    }
    s.validate(p)
        .map_err(|e| ProfileError::Invalid(e.to_string()))?;
    Ok(())
}

/// Saves, then queues the "a run within seconds of saving" run.
async fn save(
    hub: &Hub,
    profile: Profile,
    settings: ProfileSettings,
    queue_run: bool,
) -> Result<ProfileSaved, ProfileError> {
    profiles::save(hub.store(), &profile).await?;
    profiles::set_settings(hub.store(), &profile.id, &settings).await?;
    let queued_run = if settings.enabled && queue_run {
        let queued = Runs::new(hub.store().clone())
            .enqueue(NewRun {
                profile_id: &profile.id,
                company_id: settings.company_id.as_deref(),
                trigger: "saved",
                mode: RunMode::Run,
                plan_id: None,
            })
            .await;
        match queued {
            Ok(run) => Some(run),
            Err(RunsError::InProgress { .. }) => None,
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    Ok(ProfileSaved {
        profile,
        settings,
        queued_run,
    })
}
