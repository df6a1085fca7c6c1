//! When runs happen: per-profile intervals (from the flow's minimum up to 31
//! days), daily runs, and the runs the API and CLI queue; and which process
//! runs them. Every `syncbridge serve` sharing a database runs a scheduler;
//! they coordinate only through the store: a due run is queued at most once
//! (the `runs_one_active` index), a queued run is claimed by one process
//! through a lease it renews, and a run whose process died is taken over
//! when its lease expires.

use crate::control::companies::{self, Company};
use crate::control::dynamics_mailboxes;
use crate::control::runs::{NewRun, RunMode, RunRecord, Runs, RunsError};
use crate::runner::{NoProgress, Runner};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{civil, Timestamp};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use syncbridge_store::{now_ms, Store, StoreError};
use syncbridge_sync::profiles::{self, SettingsError};
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

/// A daily run: `minute` after midnight, local time in `zone` (the profile's
/// company's zone, UTC for a profile without a company).
#[derive(Debug, Clone, Copy)]
pub struct Daily<'z> {
    pub minute: u32,
    pub zone: &'z TimeZone,
}

/// Why a profile is due now, if it is: `schedule` or `daily`. All arithmetic
/// saturates: a huge interval is never due again, and a last run "in the
/// future" (a clock that went back) is not due. A daily run is due once per
/// local day, at or after its slot ([`daily_slot`]).
pub fn due(
    now: i64,
    last_requested: Option<i64>,
    interval: Option<Duration>,
    daily: Option<Daily<'_>>,
) -> Option<&'static str> {
    if let Some(slot) = daily.and_then(|d| daily_slot(now, d)) {
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

/// The most recent daily slot at or before `now` (milliseconds since the
/// epoch): HH:MM local time in the zone on the latest local day where that
/// instant has come. On a day the clocks skip the time (spring forward:
/// 02:30 does not exist) the slot is the first instant after the gap; on a
/// day the time happens twice (fall back) it is the first occurrence, so a
/// day has exactly one slot. `None` for instants outside the calendar
/// (beyond the years -9999 to 9999).
pub fn daily_slot(now: i64, daily: Daily<'_>) -> Option<i64> {
    let now = Timestamp::from_millisecond(now).ok()?;
    let hour = i8::try_from(daily.minute / 60).ok()?;
    let minute = i8::try_from(daily.minute % 60).ok()?;
    let time = civil::Time::new(hour, minute, 0, 0).ok()?;
    let mut date = now.to_zoned(daily.zone.clone()).date();
    // Today's slot, or yesterday's if today's is still to come (a day the
    // zone skipped entirely has its slot at the jump, so two days suffice;
    // a third is a safety net).
    for _ in 0..3 {
        let slot = slot_on(date.to_datetime(time), daily.zone)?;
        if slot <= now {
            return Some(slot.as_millisecond());
        }
        date = date.yesterday().ok()?;
    }
    None
}

/// The instant of local time `at` in `zone`: in a gap, the end of the gap;
/// in a fold, the earlier of the two.
fn slot_on(at: civil::DateTime, zone: &TimeZone) -> Option<Timestamp> {
    match zone.to_ambiguous_timestamp(at).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(at).ok(),
        // `before` is the offset in force before the clocks went back: the
        // first time the wall clock shows `at`.
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(at).ok(),
        // `at` read with the new offset lies before the jump; the first
        // transition after it is where the wall clock resumes.
        AmbiguousOffset::Gap { after, .. } => {
            let inside = after.to_timestamp(at).ok()?;
            zone.following(inside).next().map(|t| t.timestamp())
        }
    }
}

/// Why the scheduler skips a profile.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// Its stored schedule is invalid.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// Its company (whose time zone its daily run is in) cannot be read, or
    /// its stored time zone is not one this version knows.
    #[error(transparent)]
    Company(StoreError),
}

/// A profile the scheduler skips because its stored schedule, or its
/// company's time zone, is invalid.
#[derive(Debug)]
pub struct BadSchedule {
    pub profile: String,
    pub error: ScheduleError,
}

impl std::fmt::Display for BadSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let profile = &self.profile;
        match &self.error {
            ScheduleError::Settings(error) => write!(
                f,
                "profile {profile} is not scheduled: {error}. Fix it with PUT /api/v1/profiles/{profile} (interval_secs, daily_at) or `syncbridge profile add {profile} ... --every SECONDS`; manual runs still work and other profiles are scheduled as usual"
            ),
            ScheduleError::Company(error) => write!(
                f,
                "profile {profile} has no daily run: {error}. Manual runs still work and other profiles are scheduled as usual"
            ),
        }
    }
}

impl std::error::Error for BadSchedule {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
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
    let companies: HashMap<String, Company> = companies::list(store, None)
        .await?
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
    let utc = TimeZone::UTC;
    let mut listed = profiles::list_with_settings(store).await?;
    // A profile that relays target changes to others (`relay_written_by`)
    // is queued first, so the profiles it relays to see this pass's changes.
    listed.sort_by_key(|(profile, _)| profile.rules.queue_rank());
    for (profile, settings) in listed {
        if !settings.enabled {
            continue;
        }
        let schedule = match settings.validate(&profile) {
            Ok(s) => s,
            Err(error) => {
                out.skipped.push(BadSchedule {
                    profile: profile.id,
                    error: error.into(),
                });
                continue;
            }
        };
        if schedule.every.is_none() && schedule.daily_minute.is_none() {
            continue;
        }
        // A daily run is local time in the profile's company's zone.
        let zone = match (schedule.daily_minute, settings.company_id.as_deref()) {
            (None, _) | (Some(_), None) => None,
            (Some(_), Some(company)) => {
                let zone = match companies.get(company) {
                    Some(c) => c.zone(),
                    None => Err(StoreError::NotFound {
                        what: "company",
                        id: company.to_owned(),
                    }),
                };
                match zone {
                    Ok(zone) => Some(zone),
                    Err(e) => {
                        out.skipped.push(BadSchedule {
                            profile: profile.id,
                            error: ScheduleError::Company(e),
                        });
                        continue;
                    }
                }
            }
        };
        let daily = schedule.daily_minute.map(|minute| Daily {
            minute,
            zone: zone.as_ref().unwrap_or(&utc),
        });
        let last = last_requested.get(&profile.id).copied();
        let Some(trigger) = due(now, last, schedule.every, daily) else {
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

/// Most mailbox tests one scheduler tick starts.
pub const MAILBOX_TESTS_PER_TICK: i64 = 500;

/// Queues runs when due and executes claimed runs, and runs due mailbox
/// tests, until `shutdown` resolves.
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
    let mut mailbox_tests: Option<tokio::task::JoinHandle<()>> = None;
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
        // Flow 3's Test & Enable runs in the background, apart from the runs.
        if mailbox_tests.as_ref().is_none_or(|t| t.is_finished()) {
            let hub = runner.hub().clone();
            mailbox_tests = Some(tokio::spawn(async move {
                match dynamics_mailboxes::run_due(&hub, now_ms(), MAILBOX_TESTS_PER_TICK).await {
                    Ok(done) if done.tested > 0 => tracing::info!(?done, "mailbox tests"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "cannot run mailbox tests"),
                }
            }));
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
    const M: i64 = 60 * 1000;
    // 2026-11-23T00:00:00Z
    const MIDNIGHT: i64 = 1_795_392_000_000;

    fn utc(minute: u32) -> Option<Daily<'static>> {
        static UTC: TimeZone = TimeZone::UTC;
        Some(Daily { minute, zone: &UTC })
    }

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    /// Milliseconds since the epoch of an RFC 3339 instant.
    fn at(instant: &str) -> i64 {
        instant.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn hm(h: u32, m: u32) -> u32 {
        h * 60 + m
    }

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
        assert_eq!(due(i64::MIN, Some(i64::MAX), None, utc(120)), None);
        assert_eq!(due(i64::MAX, Some(i64::MAX), None, utc(23 * 60 + 59)), None);
    }

    #[test]
    fn daily_runs_once_after_its_time() {
        let at_2 = utc(120);
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

    #[test]
    fn daily_is_local_time_in_the_zone_winter_and_summer() {
        let berlin = zone("Europe/Berlin");
        let daily = Some(Daily {
            minute: hm(2, 0),
            zone: &berlin,
        });
        // Winter (CET, UTC+1): 02:00 is 01:00 UTC.
        let last = Some(at("2026-01-14T01:00:00Z"));
        assert_eq!(due(at("2026-01-15T00:59:59Z"), last, None, daily), None);
        assert_eq!(
            due(at("2026-01-15T01:00:00Z"), last, None, daily),
            Some("daily")
        );
        // Summer (CEST, UTC+2): 02:00 is 00:00 UTC, the previous UTC day's end.
        let last = Some(at("2026-07-14T00:00:00Z"));
        assert_eq!(due(at("2026-07-14T23:59:59Z"), last, None, daily), None);
        assert_eq!(
            due(at("2026-07-15T00:00:00Z"), last, None, daily),
            Some("daily")
        );
        // Once per local day: not again later that day.
        let last = Some(at("2026-07-15T00:00:00Z"));
        assert_eq!(due(at("2026-07-15T21:59:59Z"), last, None, daily), None);
        assert_eq!(due(at("2026-07-15T23:59:59Z"), last, None, daily), None);
        // East of UTC the local day starts the UTC day before.
        let tokyo = zone("Asia/Tokyo");
        let tokyo_8 = Daily {
            minute: hm(8, 0),
            zone: &tokyo,
        };
        assert_eq!(
            daily_slot(at("2026-07-15T12:00:00Z"), tokyo_8),
            Some(at("2026-07-14T23:00:00Z"))
        );
    }

    #[test]
    fn spring_forward_runs_at_the_first_instant_after_the_gap() {
        // Europe/Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        let berlin = zone("Europe/Berlin");
        for minute in [hm(2, 0), hm(2, 30), hm(2, 59)] {
            let daily = Daily {
                minute,
                zone: &berlin,
            };
            assert_eq!(
                daily_slot(at("2026-03-29T12:00:00Z"), daily),
                Some(at("2026-03-29T01:00:00Z")),
                "{minute}"
            );
        }
        let daily = Some(Daily {
            minute: hm(2, 30),
            zone: &berlin,
        });
        let last = Some(at("2026-03-28T01:30:00Z")); // 02:30 CET the day before
        assert_eq!(due(at("2026-03-29T00:59:59Z"), last, None, daily), None);
        assert_eq!(
            due(at("2026-03-29T01:00:00Z"), last, None, daily),
            Some("daily")
        );
        // The day after, 02:30 CEST is 00:30 UTC.
        let last = Some(at("2026-03-29T01:00:00Z"));
        assert_eq!(due(at("2026-03-30T00:29:59Z"), last, None, daily), None);
        assert_eq!(
            due(at("2026-03-30T00:30:00Z"), last, None, daily),
            Some("daily")
        );

        // America/New_York, 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
        let new_york = zone("America/New_York");
        let daily = Some(Daily {
            minute: hm(2, 30),
            zone: &new_york,
        });
        let last = Some(at("2026-03-07T07:30:00Z")); // 02:30 EST the day before
        assert_eq!(due(at("2026-03-08T06:59:59Z"), last, None, daily), None);
        assert_eq!(
            due(at("2026-03-08T07:00:00Z"), last, None, daily),
            Some("daily")
        );
        // A time outside the gap that day is unaffected: 03:30 EDT.
        let after_gap = Daily {
            minute: hm(3, 30),
            zone: &new_york,
        };
        assert_eq!(
            daily_slot(at("2026-03-08T12:00:00Z"), after_gap),
            Some(at("2026-03-08T07:30:00Z"))
        );
    }

    #[test]
    fn fall_back_runs_once_at_the_first_occurrence() {
        // Europe/Berlin, 2026-10-25: 03:00 CEST goes back to 02:00 CET (01:00
        // UTC), so 02:30 happens at 00:30 UTC and again at 01:30 UTC.
        let berlin = zone("Europe/Berlin");
        let daily = Some(Daily {
            minute: hm(2, 30),
            zone: &berlin,
        });
        let last = Some(at("2026-10-24T00:30:00Z"));
        assert_eq!(due(at("2026-10-25T00:29:59Z"), last, None, daily), None);
        assert_eq!(
            due(at("2026-10-25T00:30:00Z"), last, None, daily),
            Some("daily")
        );
        let ran = Some(at("2026-10-25T00:30:00Z"));
        assert_eq!(
            due(at("2026-10-25T01:30:00Z"), ran, None, daily),
            None,
            "the second 02:30 is the same local day"
        );
        assert_eq!(due(at("2026-10-25T23:59:59Z"), ran, None, daily), None);
        // The next day 02:30 CET is 01:30 UTC.
        assert_eq!(due(at("2026-10-26T01:29:59Z"), ran, None, daily), None);
        assert_eq!(
            due(at("2026-10-26T01:30:00Z"), ran, None, daily),
            Some("daily")
        );

        // America/New_York, 2026-11-01: 02:00 EDT goes back to 01:00 EST
        // (06:00 UTC), so 01:30 happens at 05:30 UTC and at 06:30 UTC.
        let new_york = zone("America/New_York");
        let daily = Some(Daily {
            minute: hm(1, 30),
            zone: &new_york,
        });
        let last = Some(at("2026-10-31T05:30:00Z"));
        assert_eq!(due(at("2026-11-01T05:29:59Z"), last, None, daily), None);
        assert_eq!(
            due(at("2026-11-01T05:30:00Z"), last, None, daily),
            Some("daily")
        );
        let ran = Some(at("2026-11-01T05:30:00Z"));
        assert_eq!(due(at("2026-11-01T06:30:00Z"), ran, None, daily), None);
        assert_eq!(
            due(at("2026-11-02T06:30:00Z"), ran, None, daily),
            Some("daily"),
            "01:30 EST the day after"
        );
        assert_eq!(due(at("2026-11-02T06:30:00Z") - M, ran, None, daily), None);
    }

    #[test]
    fn utc_daily_is_unchanged_and_out_of_calendar_instants_are_not_due() {
        let at_2 = utc(120).unwrap();
        assert_eq!(daily_slot(MIDNIGHT + 3 * H, at_2), Some(MIDNIGHT + 2 * H));
        assert_eq!(daily_slot(MIDNIGHT + H, at_2), Some(MIDNIGHT - 22 * H));
        assert_eq!(daily_slot(i64::MAX, at_2), None);
        assert_eq!(daily_slot(i64::MIN, at_2), None);
    }
}
