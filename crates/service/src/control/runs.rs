//! Runs: queued by a trigger, claimed through a lease renewed by heartbeats,
//! finished with a status and counts. The unique index `runs_one_active`
//! guarantees at most one queued or running run per profile, across every
//! process sharing the database.

use super::{is_unique_violation, new_id};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::time::Duration;
use syncbridge_store::{now_ms, Backend, Store, StoreError};
use syncbridge_sync::RunReport;

/// What a run does.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum RunMode {
    /// Plan and apply.
    Run,
    /// Plan and store the plan; write nothing.
    DryRun,
    /// Apply a stored plan exactly.
    ApplyPlan,
    /// A dry run over a full pass (every source item, not only changes): the
    /// filter preview.
    Preview,
}

/// Where a run is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum RunStatus {
    Queued,
    Running,
    /// Applied; every item succeeded.
    Succeeded,
    /// Applied, but some items failed: they are quarantined and retried on
    /// the next run (see the report and `syncbridge quarantine list`).
    Partial,
    /// Stopped by an error; nothing after the last committed page was applied.
    Failed,
    /// The brakes held the plan for approval.
    Held,
    /// A dry run stored its plan.
    Planned,
    /// A stored plan was not applied because the data changed underneath.
    Stale,
    /// Queued, then replaced by a run started by hand before it began.
    Cancelled,
}

impl RunStatus {
    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether the run is over.
    pub fn finished(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

impl RunMode {
    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One run as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub profile_id: String,
    pub company_id: Option<String>,
    /// What asked for it: manual, schedule, daily, saved, api, approval.
    pub trigger: String,
    pub mode: RunMode,
    pub plan_id: Option<String>,
    pub status: RunStatus,
    pub requested_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// The process holding the lease while running.
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    /// How many times it was claimed (more than 1 = taken over).
    pub attempts: i64,
    /// What it did, once finished.
    pub report: Option<RunSummary>,
    pub error: Option<String>,
}

/// A run to queue.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub profile_id: &'a str,
    pub company_id: Option<&'a str>,
    pub trigger: &'a str,
    pub mode: RunMode,
    pub plan_id: Option<&'a str>,
}

/// Why a run could not be queued or claimed.
#[derive(Debug, thiserror::Error)]
pub enum RunsError {
    #[error("a run of profile {profile:?} is already queued or in progress ({run_id}); wait for it to finish, then try again")]
    InProgress { profile: String, run_id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for RunsError {
    fn from(e: sqlx::Error) -> Self {
        RunsError::Store(StoreError::Query(e))
    }
}

const COLUMNS: &str = "id, profile_id, company_id, trigger_kind, mode, plan_id, status, requested_at, started_at, finished_at, lease_owner, lease_until, attempts, report, error";

/// What a finished run did: the plan's counts, the apply's outcome and,
/// for a stale plan, what changed underneath.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    #[serde(flatten)]
    pub report: RunReport,
    #[serde(default)]
    pub conflicts: Vec<String>,
    /// How this run's plan differs from the preview made just before it,
    /// item by item (empty when it applied what the preview showed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differs_from_preview: Vec<String>,
}

/// A stored run; a value this version cannot read is an error naming the run.
fn from_row(r: &sqlx::any::AnyRow) -> Result<RunRecord, StoreError> {
    let id: String = r.try_get("id")?;
    let invalid = |column: &str, detail: String| StoreError::Invalid {
        what: "run",
        id: id.clone(),
        detail: format!("stored {column} cannot be read: {detail}"),
    };
    let mode: String = r.try_get("mode")?;
    let mode = mode
        .parse()
        .map_err(|_| invalid("mode", format!("unknown run mode {mode:?}")))?;
    let status: String = r.try_get("status")?;
    let status = status
        .parse()
        .map_err(|_| invalid("status", format!("unknown run status {status:?}")))?;
    let report = match r.try_get::<Option<String>, _>("report")? {
        Some(text) => {
            Some(serde_json::from_str(&text).map_err(|e| invalid("report", e.to_string()))?)
        }
        None => None,
    };
    Ok(RunRecord {
        id: id.clone(),
        profile_id: r.try_get("profile_id")?,
        company_id: r.try_get("company_id")?,
        trigger: r.try_get("trigger_kind")?,
        mode,
        plan_id: r.try_get("plan_id")?,
        status,
        requested_at: r.try_get("requested_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        lease_owner: r.try_get("lease_owner")?,
        lease_until: r.try_get("lease_until")?,
        attempts: r.try_get("attempts")?,
        report,
        error: r.try_get("error")?,
    })
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter<'a> {
    pub profile_id: Option<&'a str>,
    pub company_id: Option<&'a str>,
    pub limit: Option<u32>,
}

/// Access to the `runs` table.
#[derive(Clone)]
pub struct Runs {
    store: Store,
}

impl Runs {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Queues a run. Fails with [`RunsError::InProgress`] if the profile
    /// already has a queued or running run.
    pub async fn enqueue(&self, new: NewRun<'_>) -> Result<RunRecord, RunsError> {
        self.insert(&new_id("run"), new, RunStatus::Queued, None)
            .await
    }

    /// [`Runs::enqueue`] under an id chosen beforehand (from [`new_id`]), so
    /// a plan can be claimed for the run before it is queued.
    pub async fn enqueue_as(&self, id: &str, new: NewRun<'_>) -> Result<RunRecord, RunsError> {
        self.insert(id, new, RunStatus::Queued, None).await
    }

    /// Records a run that starts now in this process (the CLI), holding a
    /// lease like a claimed one.
    pub async fn start_now(
        &self,
        new: NewRun<'_>,
        owner: &str,
        lease: Duration,
    ) -> Result<RunRecord, RunsError> {
        self.insert(
            &new_id("run"),
            new,
            RunStatus::Running,
            Some((owner, lease)),
        )
        .await
    }

    /// [`Runs::start_now`] under an id chosen beforehand.
    pub async fn start_now_as(
        &self,
        id: &str,
        new: NewRun<'_>,
        owner: &str,
        lease: Duration,
    ) -> Result<RunRecord, RunsError> {
        self.insert(id, new, RunStatus::Running, Some((owner, lease)))
            .await
    }

    async fn insert(
        &self,
        id: &str,
        new: NewRun<'_>,
        status: RunStatus,
        lease: Option<(&str, Duration)>,
    ) -> Result<RunRecord, RunsError> {
        let now = now_ms();
        let (owner, until, started) = match lease {
            Some((o, d)) => (Some(o), Some(now + d.as_millis() as i64), Some(now)),
            None => (None, None, None),
        };
        // Runs queued in the same millisecond keep the order they were
        // queued in (claims go by `requested_at`): a run is requested after
        // every run still queued.
        let result = sqlx::query(
            "INSERT INTO runs (id, profile_id, company_id, trigger_kind, mode, plan_id, status, requested_at, started_at, lease_owner, lease_until, attempts)
             VALUES ($1, $2, $3, $4, $5, $6, $7,
                     (SELECT CASE WHEN MAX(requested_at) >= $8 THEN MAX(requested_at) + 1 ELSE $8 END
                        FROM runs WHERE status = 'queued'),
                     $9, $10, $11, $12)",
        )
        .bind(id)
        .bind(new.profile_id)
        .bind(new.company_id)
        .bind(new.trigger)
        .bind(new.mode.as_str())
        .bind(new.plan_id)
        .bind(status.as_str())
        .bind(now)
        .bind(started)
        .bind(owner)
        .bind(until)
        .bind(i64::from(lease.is_some()))
        .execute(self.store.pool())
        .await;
        match result {
            Ok(_) => Ok(self.get(id).await?),
            Err(e) if is_unique_violation(&e) => {
                let active = self.active_for_profile(new.profile_id).await?;
                Err(RunsError::InProgress {
                    profile: new.profile_id.to_owned(),
                    run_id: active.map(|r| r.id).unwrap_or_else(|| "unknown".into()),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Claims the oldest queued run, or a running one whose lease expired
    /// (its process died), for `owner`. On PostgreSQL the row is chosen with
    /// `FOR UPDATE SKIP LOCKED`, so concurrent claimers never block on or
    /// take the same run; SQLite serialises writers.
    pub async fn claim_next(
        &self,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<RunRecord>, RunsError> {
        let now = now_ms();
        let lock = match self.store.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE runs SET status = 'running', lease_owner = $1, lease_until = $2,
                 started_at = COALESCE(started_at, $3), attempts = attempts + 1
             WHERE id = (SELECT id FROM runs
                         WHERE status = 'queued' OR (status = 'running' AND lease_until < $3)
                         ORDER BY requested_at LIMIT 1{lock})
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(owner)
            .bind(now + lease.as_millis() as i64)
            .bind(now)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Renews the lease; `false` when another process took the run over.
    pub async fn heartbeat(
        &self,
        id: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<bool, RunsError> {
        let done = sqlx::query(
            "UPDATE runs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3 AND status = 'running'",
        )
        .bind(now_ms() + lease.as_millis() as i64)
        .bind(id)
        .bind(owner)
        .execute(self.store.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records how a run ended and answers the finished run; `None` if `owner` no longer held it.
    pub async fn finish(
        &self,
        id: &str,
        owner: &str,
        status: RunStatus,
        plan_id: Option<&str>,
        report: Option<&RunSummary>,
        error: Option<&str>,
    ) -> Result<Option<RunRecord>, RunsError> {
        let row = sqlx::query(&format!(
            "UPDATE runs SET status = $1, finished_at = $2, lease_until = NULL, report = $3, error = $4,
                 plan_id = COALESCE($5, plan_id)
             WHERE id = $6 AND lease_owner = $7 AND status = 'running' RETURNING {COLUMNS}"
        ))
        .bind(status.as_str())
        .bind(now_ms())
        .bind(report.map(|r| serde_json::to_string(r).expect("a run summary serialises")))
        .bind(error)
        .bind(plan_id)
        .bind(id)
        .bind(owner)
        .fetch_optional(self.store.pool())
        .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Cancels the profile's queued (not yet claimed) run, so a run started
    /// by hand can take its place; returns it.
    pub async fn cancel_queued(
        &self,
        profile_id: &str,
        why: &str,
    ) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE runs SET status = 'cancelled', finished_at = $1, error = $2
             WHERE profile_id = $3 AND status = 'queued' RETURNING {COLUMNS}"
        ))
        .bind(now_ms())
        .bind(why)
        .bind(profile_id)
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// One run.
    pub async fn get(&self, id: &str) -> Result<RunRecord, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM runs WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "run",
                id: id.to_owned(),
            })?;
        from_row(&row)
    }

    /// Runs, newest first.
    pub async fn list(&self, filter: RunFilter<'_>) -> Result<Vec<RunRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM runs
             WHERE ($1 IS NULL OR profile_id = $1) AND ($2 IS NULL OR company_id = $2)
             ORDER BY requested_at DESC, id DESC LIMIT $3"
        ))
        .bind(filter.profile_id)
        .bind(filter.company_id)
        .bind(i64::from(filter.limit.unwrap_or(100).min(1000)))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(from_row).collect::<Result<_, _>>()
    }

    /// The queued or running run of a profile, if any.
    pub async fn active_for_profile(
        &self,
        profile_id: &str,
    ) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM runs WHERE profile_id = $1 AND status IN ('queued', 'running')"
        ))
        .bind(profile_id)
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// A running run of any profile reading from or writing to `connection`.
    pub async fn running_for_connection(
        &self,
        connection: &str,
    ) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM runs WHERE status = 'running' AND profile_id IN
               (SELECT id FROM profiles WHERE source_connection = $1 OR target_connection = $1)
             LIMIT 1"
        ))
        .bind(connection)
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// When each profile's last run (mode `run`) was requested, for schedules.
    pub async fn last_requested(
        &self,
    ) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT profile_id, MAX(requested_at) AS at FROM runs WHERE mode = 'run' GROUP BY profile_id",
        )
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("profile_id")?, r.try_get("at")?)))
            .collect()
    }
}
