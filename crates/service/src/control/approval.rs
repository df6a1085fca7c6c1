//! Starting the apply of a stored plan, the one way the API and the CLI do
//! it: claim the plan for a new apply-plan run (open → applying), record
//! that run, and give the claim back if the run cannot be recorded. The
//! runner then applies only a plan its own run claimed.

use super::new_id;
use super::plans::{self, PlanError};
use super::runs::{NewRun, RunMode, RunRecord, Runs, RunsError};
use std::time::Duration;
use syncbridge_store::{Store, StoreError};
use syncbridge_sync::profiles;

/// How the apply-plan run is recorded.
#[derive(Debug, Clone, Copy)]
pub enum Start<'a> {
    /// Queued for a worker of `syncbridge serve` (the API).
    Queue,
    /// Started now in this process, holding a lease (the CLI).
    Now { owner: &'a str, lease: Duration },
}

/// Why a plan's apply could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Not open (another call applied or discarded it first), or unreadable.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A run of the profile is queued or running; the claim was given back.
    #[error(transparent)]
    Runs(#[from] RunsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Claims plan `plan_id` and records its apply-plan run (trigger `trigger`).
/// Of concurrent calls (and discards) exactly one claims the plan; the
/// others fail with [`PlanError::NotOpen`].
pub async fn start(
    store: &Store,
    plan_id: &str,
    trigger: &str,
    how: Start<'_>,
) -> Result<RunRecord, ApplyError> {
    let plan = plans::get(store, plan_id).await?;
    let company = profiles::settings(store, &plan.profile_id)
        .await?
        .company_id;
    let run_id = new_id("run");
    plans::claim(store, plan_id, &run_id).await?;
    let new = NewRun {
        profile_id: &plan.profile_id,
        company_id: company.as_deref(),
        trigger,
        mode: RunMode::ApplyPlan,
        plan_id: Some(plan_id),
    };
    let runs = Runs::new(store.clone());
    let recorded = match how {
        Start::Queue => runs.enqueue_as(&run_id, new).await,
        Start::Now { owner, lease } => runs.start_now_as(&run_id, new, owner, lease).await,
    };
    match recorded {
        Ok(run) => Ok(run),
        Err(e) => {
            if let Err(release) = plans::release(store, plan_id, &run_id).await {
                tracing::error!(plan = plan_id, run = %run_id, error = %release, "cannot give back the claim on a plan whose run was not recorded; it stays applying");
            }
            Err(e.into())
        }
    }
}

/// Gives back the plan a cancelled apply-plan run claimed (the run never
/// started); `false` when `run` claimed none.
pub async fn release_cancelled(store: &Store, run: &RunRecord) -> Result<bool, StoreError> {
    match (&run.mode, &run.plan_id) {
        (RunMode::ApplyPlan, Some(plan)) => plans::release(store, plan, &run.id).await,
        _ => Ok(false),
    }
}
