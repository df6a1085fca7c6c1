//! When runs happen: per-profile intervals (from the flow's minimum up to 31
//! days), daily runs, and the runs the API and CLI queue; and which process
//! runs them. Every `syncbridge serve` sharing a database runs a scheduler;
//! they coordinate only through the store: a due run is queued at most once
//! (the `runs_one_active` index), a queued run is claimed by one process
//! through a lease it renews, and a run whose process died is taken over
//! when its lease expires.

use crate::control::runs::{NewRun, RunMode, RunRecord, Runs, RunsError};
use crate::engine::profiles::{self, SettingsError};
use crate::runner::{NoProgress, Runner};
use crate::store::{now_ms, Store, StoreError};
use std::collections::HashMap;
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

/// Why a profile is due now, if it is: `schedule` or `daily`. All arithmetic
/// saturates: a huge interval is never due again, and a last run "in the
/// future" (a clock that went back) is not due.
pub fn due(
    now: i64,
    last_requested: Option<i64>,
    interval: Option<Duration>,
    daily_minute: Option<u32>,
) -> Option<&'static str> {
    if let Some(minute) = daily_minute {
        let today = now
            .saturating_sub(now.rem_euclid(DAY_MS))
            .saturating_add(i64::from(minute) * 60_000);
        let slot = if now >= today {
            today
        } else {
            today.saturating_sub(DAY_MS)
        };
        // Only the most recent slot counts: a process down for a week runs once.
        if last_requested.is_none_or(|last| last < slot) {
            return Some("daily");
        }
    }
    if let Some(every) = interval {
        let every = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
        if last_requested.is_none_or(|last| now.saturating_sub(last) >= every) {
            return Some("schedule");
        }
    }
    None
}

/// A profile the scheduler skips because its stored schedule is invalid.
#[derive(Debug, thiserror::Error)]
#[error("profile {profile} is not scheduled: {error}. Fix it with PUT /api/v1/profiles/{profile} (interval_secs, daily_at) or `syncbridge profile add {profile} ... --every SECONDS`; manual runs still work and other profiles are scheduled as usual")]
pub struct BadSchedule {
    pub profile: String,
    pub error: SettingsError,
}

/// What one pass over the schedules did.
#[derive(Debug, Default)]
pub struct Enqueued {
    /// Runs queued because their profile was due.
    pub runs: Vec<RunRecord>,
    /// Enabled profiles skipped because their stored schedule is invalid.
    pub skipped: Vec<BadSchedule>,
}

/// Queues a run for every enabled profile that is due at `now`. Profiles
/// with a run queued or in progress are skipped (never two at once), and so
/// are profiles whose stored schedule is invalid (reported in `skipped`).
pub async fn enqueue_due(store: &Store, now: i64) -> Result<Enqueued, StoreError> {
    let runs = Runs::new(store.clone());
    let mut out = Enqueued::default();
    let last_requested = runs.last_requested().await?;
    for (profile, settings) in profiles::list_with_settings(store).await? {
        if !settings.enabled {
            continue;
        }
        let schedule = match settings.validate(&profile) {
            Ok(s) => s,
            Err(error) => {
                out.skipped.push(BadSchedule {
                    profile: profile.id,
                    error,
                });
                continue;
            }
        };
        if schedule.every.is_none() && schedule.daily_minute.is_none() {
            continue;
        }
        let last = last_requested.get(&profile.id).copied();
        let Some(trigger) = due(now, last, schedule.every, schedule.daily_minute) else {
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
                out.runs.push(run);
            }
            Err(RunsError::InProgress { .. }) => {}
            Err(RunsError::Store(e)) => return Err(e),
        }
    }
    Ok(out)
}

/// Logs each invalid schedule once (again when its problem changes), not every tick.
fn report_skipped(skipped: &[BadSchedule], reported: &mut HashMap<String, String>) {
    reported.retain(|profile, _| skipped.iter().any(|b| &b.profile == profile));
    for bad in skipped {
        let message = bad.to_string();
        if reported.get(&bad.profile) != Some(&message) {
            tracing::error!(profile = %bad.profile, "{message}");
            reported.insert(bad.profile.clone(), message);
        }
    }
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
    let mut reported = HashMap::new();
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
        match enqueue_due(&store, now_ms()).await {
            Ok(done) => report_skipped(&done.skipped, &mut reported),
            Err(e) => tracing::error!(error = %e, "cannot check schedules"),
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
            } else {
                let waited = now_ms().saturating_sub(claimed.requested_at).max(0);
                runner
                    .metrics()
                    .scheduler_lag(Duration::from_millis(waited as u64));
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
    fn a_huge_interval_is_never_due_again() {
        for secs in [u64::MAX, u64::MAX / 1000, i64::MAX as u64, 1 << 62] {
            let every = Some(Duration::from_secs(secs));
            assert_eq!(
                due(MIDNIGHT + 1_000, Some(MIDNIGHT), every, None),
                None,
                "{secs} s"
            );
            assert_eq!(
                due(i64::MAX, Some(MIDNIGHT), every, None),
                None,
                "{secs} s at the end of time"
            );
        }
        // Far past, far future: the difference saturates instead of wrapping.
        let minute = Some(Duration::from_secs(60));
        assert_eq!(
            due(i64::MAX, Some(i64::MIN), minute, None),
            Some("schedule")
        );
    }

    #[test]
    fn a_clock_that_went_back_is_not_due() {
        let every = Some(Duration::from_secs(600));
        // The last run was requested "in the future" (clock skew between processes).
        assert_eq!(due(MIDNIGHT, Some(MIDNIGHT + H), every, None), None);
        assert_eq!(due(i64::MIN, Some(i64::MAX), every, None), None);
        // The daily slot arithmetic saturates at the ends of the clock too.
        assert_eq!(due(i64::MIN, Some(i64::MAX), None, Some(120)), None);
        assert_eq!(
            due(i64::MAX, Some(i64::MAX), None, Some(23 * 60 + 59)),
            None
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
