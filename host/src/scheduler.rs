//! When runs happen: per-profile intervals (raised to the flow's minimum),
//! daily runs, and the runs the API and CLI queue; and which process runs
//! them. Every `syncbridge serve` sharing a database runs a scheduler; they
//! coordinate only through the store: a due run is queued at most once (the
//! `runs_one_active` index), a queued run is claimed by one process through
//! a lease it renews, and a run whose process died is taken over when its
//! lease expires.

use crate::control::runs::{NewRun, RunMode, RunRecord, Runs, RunsError};
use crate::engine::profiles;
use crate::runner::{NoProgress, Runner};
use crate::store::{now_ms, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How a scheduler behaves.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// How often due profiles are checked and queued runs claimed.
    pub tick: Duration,
    /// Runs executed at once by this process.
    pub workers: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(1),
            workers: 4,
        }
    }
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Why a profile is due now, if it is: `schedule` or `daily`.
pub fn due(
    now: i64,
    last_requested: Option<i64>,
    interval: Option<Duration>,
    daily_minute: Option<u32>,
) -> Option<&'static str> {
    if let Some(minute) = daily_minute {
        let today = now - now.rem_euclid(DAY_MS) + i64::from(minute) * 60_000;
        let slot = if now >= today { today } else { today - DAY_MS };
        // Only the most recent slot counts: a process down for a week runs once.
        if last_requested.is_none_or(|last| last < slot) {
            return Some("daily");
        }
    }
    if let Some(every) = interval {
        if last_requested.is_none_or(|last| now - last >= every.as_millis() as i64) {
            return Some("schedule");
        }
    }
    None
}

/// Queues a run for every enabled profile that is due at `now`. Profiles
/// with a run queued or in progress are skipped (never two at once).
pub async fn enqueue_due(store: &Store, now: i64) -> Result<Vec<RunRecord>, StoreError> {
    let runs = Runs::new(store.clone());
    let mut queued = Vec::new();
    let last_requested = runs.last_requested().await?;
    for (profile, settings) in profiles::list_with_settings(store).await? {
        if !settings.enabled {
            continue;
        }
        let interval = settings
            .interval_secs
            .map(|s| Duration::from_secs(s).max(profiles::minimum_interval(&profile)));
        let daily = settings.daily_at.as_deref().and_then(profiles::parse_hhmm);
        if interval.is_none() && daily.is_none() {
            continue;
        }
        let last = last_requested.get(&profile.id).copied();
        let Some(trigger) = due(now, last, interval, daily) else {
            continue;
        };
        match runs
            .enqueue(NewRun {
                profile_id: &profile.id,
                company_id: settings.company_id.as_deref(),
                trigger,
                mode: RunMode::Run,
                plan_id: None,
            })
            .await
        {
            Ok(run) => {
                tracing::info!(profile = %profile.id, run = %run.id, trigger, "queued a run");
                queued.push(run);
            }
            Err(RunsError::InProgress { .. }) => {}
            Err(RunsError::Store(e)) => return Err(e),
        }
    }
    Ok(queued)
}

/// Queues runs when due and executes claimed runs until `shutdown` resolves.
pub async fn run(
    runner: Arc<Runner>,
    store: Store,
    config: SchedulerConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let runs = Runs::new(store.clone());
    let slots = Arc::new(Semaphore::new(config.workers.max(1)));
    let mut tick = tokio::time::interval(config.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    tracing::info!(
        owner = runner.owner(),
        workers = config.workers,
        "scheduler started"
    );
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {}
        }
        if let Err(e) = enqueue_due(&store, now_ms()).await {
            tracing::error!(error = %e, "cannot check schedules");
        }
        // Claim as many runs as there are free workers.
        while let Ok(permit) = slots.clone().try_acquire_owned() {
            let claimed = match runs.claim_next(runner.owner(), runner.lease()).await {
                Ok(Some(run)) => run,
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "cannot claim a run");
                    break;
                }
            };
            if claimed.attempts > 1 {
                tracing::warn!(run = %claimed.id, attempts = claimed.attempts, "took over a run whose process stopped renewing its lease");
            }
            let runner = runner.clone();
            tokio::spawn(async move {
                let id = claimed.id.clone();
                match runner.execute(claimed, &NoProgress).await {
                    Ok(done) => tracing::info!(run = %id, status = ?done.status, "run finished"),
                    Err(e) => tracing::error!(run = %id, error = %e, "run not recorded"),
                }
                drop(permit);
            });
        }
    }
    tracing::info!("scheduler stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 60 * 60 * 1000;
    // 2026-11-23T00:00:00Z
    const MIDNIGHT: i64 = 1_795_392_000_000;

    #[test]
    fn interval_is_due_after_it_passed() {
        let every = Some(Duration::from_secs(600));
        assert_eq!(due(MIDNIGHT, None, every, None), Some("schedule"));
        assert_eq!(due(MIDNIGHT + 599_000, Some(MIDNIGHT), every, None), None);
        assert_eq!(
            due(MIDNIGHT + 600_000, Some(MIDNIGHT), every, None),
            Some("schedule")
        );
    }

    #[test]
    fn daily_runs_once_after_its_time() {
        let at_2 = Some(120);
        assert_eq!(due(MIDNIGHT + H, Some(MIDNIGHT - H), None, at_2), None);
        assert_eq!(
            due(MIDNIGHT + 2 * H, Some(MIDNIGHT - H), None, at_2),
            Some("daily")
        );
        // Already ran after today's slot.
        assert_eq!(
            due(MIDNIGHT + 3 * H, Some(MIDNIGHT + 2 * H), None, at_2),
            None
        );
        // Next day it is due again.
        assert_eq!(
            due(MIDNIGHT + 26 * H, Some(MIDNIGHT + 2 * H), None, at_2),
            Some("daily")
        );
        // Never ran: due once today's slot has passed.
        assert_eq!(due(MIDNIGHT + 5 * H, None, None, at_2), Some("daily"));
    }
}
