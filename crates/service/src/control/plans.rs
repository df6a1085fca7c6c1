//! Stored plans: every dry run and every run the brakes held keeps its plan
//! here, op by op with per-field diffs, until it is applied or discarded.
//!
//! A plan's status is a state machine: open (proposed | held) → applying →
//! applied | failed | stale, or open → discarded. Each transition is one
//! conditional `UPDATE` whose affected rows decide, so of concurrent apply
//! and discard calls exactly one wins.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use syncbridge_store::{now_ms, Store, StoreError};
use syncbridge_sync::plan::{PlanCounts, PlannedOp};
use syncbridge_sync::run::{PagePlan, Plan};

/// Where a stored plan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanStatus {
    /// From a dry run; may be applied or discarded.
    Proposed,
    /// Held by the brakes; waits for approval (apply) or discard.
    Held,
    /// Claimed by an apply-plan run (`apply_run`) that is queued or running.
    Applying,
    Applied,
    /// The apply-plan run failed; some writes may have landed.
    Failed,
    Discarded,
    /// Refused at apply time: the source or target changed underneath.
    Stale,
}

const ALL: [PlanStatus; 7] = [
    PlanStatus::Proposed,
    PlanStatus::Held,
    PlanStatus::Applying,
    PlanStatus::Applied,
    PlanStatus::Failed,
    PlanStatus::Discarded,
    PlanStatus::Stale,
];

/// A stored status this version does not know.
#[derive(Debug, thiserror::Error)]
#[error("status {0:?} is not a plan status (proposed, held, applying, applied, failed, discarded, stale)")]
pub struct UnknownStatus(pub String);

impl PlanStatus {
    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Proposed => "proposed",
            PlanStatus::Held => "held",
            PlanStatus::Applying => "applying",
            PlanStatus::Applied => "applied",
            PlanStatus::Failed => "failed",
            PlanStatus::Discarded => "discarded",
            PlanStatus::Stale => "stale",
        }
    }

    /// Whether it can still be applied or discarded.
    pub fn open(self) -> bool {
        matches!(self, PlanStatus::Proposed | PlanStatus::Held)
    }
}

impl std::str::FromStr for PlanStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL.into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

impl std::fmt::Display for PlanStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an apply ends for its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    Applied,
    Failed,
    Stale,
}

impl ApplyOutcome {
    fn status(self) -> PlanStatus {
        match self {
            ApplyOutcome::Applied => PlanStatus::Applied,
            ApplyOutcome::Failed => PlanStatus::Failed,
            ApplyOutcome::Stale => PlanStatus::Stale,
        }
    }
}

/// Why a plan could not change state.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("plan {id} is {status} and can no longer be applied or discarded (only proposed or held plans can); make a new dry run")]
    NotOpen { id: String, status: PlanStatus },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A stored plan's header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanInfo {
    pub id: String,
    pub profile_id: String,
    /// The run that made it.
    pub run_id: String,
    pub status: PlanStatus,
    /// Why it is held, stale or failed.
    pub reason: Option<String>,
    /// The apply-plan run that claimed it (applying, applied, failed, stale).
    pub apply_run: Option<String>,
    pub counts: PlanCounts,
    /// The format its items were stored in ([`PLAN_FORMAT`] is the one this version reads).
    pub format: i64,
    pub created_at: i64,
    pub decided_at: Option<i64>,
}

/// One item of a stored plan, as shown to operators.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanItem {
    pub seq: i64,
    pub page: i64,
    pub op: PlannedOp,
}

/// Page metadata stored beside the ops.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PageMeta {
    cursor: Option<Option<String>>,
    pass: Option<String>,
    more_in_pass: bool,
    seen: Vec<String>,
}

/// The format this version stores plan items in, and the only one it reads
/// (see the `0009_plan_format` migration). Format 2: items are the host
/// model's records (not WIT bindings) and name the deciding rules typed
/// (`decided`), where format 1 had one `rule` sentence.
pub const PLAN_FORMAT: i64 = 2;

fn info_from_row(r: &sqlx::any::AnyRow) -> Result<PlanInfo, StoreError> {
    let counts: String = r.try_get("counts")?;
    let id: String = r.try_get("id")?;
    let counts = serde_json::from_str(&counts).map_err(|e| StoreError::Invalid {
        what: "plan",
        id: id.clone(),
        detail: format!("its stored counts cannot be read: {e}"),
    })?;
    let status = r
        .try_get::<String, _>("status")?
        .parse()
        .map_err(|e: UnknownStatus| StoreError::Invalid {
            what: "plan",
            id: id.clone(),
            detail: e.to_string(),
        })?;
    Ok(PlanInfo {
        id,
        profile_id: r.try_get("profile_id")?,
        run_id: r.try_get("run_id")?,
        status,
        reason: r.try_get("reason")?,
        apply_run: r.try_get("apply_run")?,
        counts,
        format: r.try_get("format")?,
        created_at: r.try_get("created_at")?,
        decided_at: r.try_get("decided_at")?,
    })
}

const INFO_COLUMNS: &str =
    "id, profile_id, run_id, status, reason, apply_run, counts, created_at, decided_at, format";

/// Stores a plan under `id` with the cursor it was pulled from.
pub async fn save(
    store: &Store,
    id: &str,
    profile_id: &str,
    run_id: &str,
    plan: &Plan,
    base_cursor: Option<&str>,
) -> Result<PlanInfo, StoreError> {
    let status = if plan.held.is_some() {
        PlanStatus::Held
    } else {
        PlanStatus::Proposed
    };
    let pages: Vec<PageMeta> = plan
        .pages
        .iter()
        .map(|p| PageMeta {
            cursor: p.cursor.clone(),
            pass: p.pass.clone(),
            more_in_pass: p.more_in_pass,
            seen: p.seen.clone(),
        })
        .collect();
    let mut tx = store.begin_write().await?;
    sqlx::query(
        "INSERT INTO plans (id, profile_id, run_id, status, reason, counts, base_cursor, pages, created_at, format)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(id)
    .bind(profile_id)
    .bind(run_id)
    .bind(status.as_str())
    .bind(plan.held.as_deref())
    .bind(serde_json::to_string(&plan.counts).expect("counts serialise"))
    .bind(base_cursor)
    .bind(serde_json::to_string(&pages).expect("pages serialise"))
    .bind(now_ms())
    .bind(PLAN_FORMAT)
    .execute(&mut *tx)
    .await?;
    let mut seq = 0i64;
    for (page_no, page) in plan.pages.iter().enumerate() {
        for op in &page.ops {
            seq += 1;
            sqlx::query(
                "INSERT INTO plan_items (plan_id, seq, page, source_id, action, op) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(seq)
            .bind(page_no as i64)
            .bind(&op.source_id)
            .bind(op.action.as_str())
            .bind(serde_json::to_string(op).expect("op serialises"))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    get(store, id).await
}

/// A plan's header.
pub async fn get(store: &Store, id: &str) -> Result<PlanInfo, StoreError> {
    let row = sqlx::query(&format!("SELECT {INFO_COLUMNS} FROM plans WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "plan",
            id: id.to_owned(),
        })?;
    info_from_row(&row)
}

/// Plans of a profile (or all), newest first.
pub async fn list(store: &Store, profile_id: Option<&str>) -> Result<Vec<PlanInfo>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {INFO_COLUMNS} FROM plans WHERE ($1 IS NULL OR profile_id = $1) ORDER BY created_at DESC LIMIT 200"
    ))
    .bind(profile_id)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(info_from_row).collect()
}

/// A page of a plan's items; `changes_only` leaves out no-ops.
pub async fn items(
    store: &Store,
    id: &str,
    changes_only: bool,
    offset: u32,
    limit: u32,
) -> Result<Vec<PlanItem>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, page, op FROM plan_items WHERE plan_id = $1 AND ($2 = 0 OR action <> 'noop')
         ORDER BY seq LIMIT $3 OFFSET $4",
    )
    .bind(id)
    .bind(i64::from(changes_only))
    .bind(i64::from(limit.clamp(1, 10_000)))
    .bind(i64::from(offset))
    .fetch_all(store.pool())
    .await?;
    // The header says which format the items are in.
    readable(&get(store, id).await?)?;
    rows.iter()
        .map(|r| {
            let op: String = r.try_get("op")?;
            Ok(PlanItem {
                seq: r.try_get("seq")?,
                page: r.try_get("page")?,
                op: serde_json::from_str(&op).map_err(|e| StoreError::Invalid {
                    what: "plan",
                    id: id.to_owned(),
                    detail: format!(
                        "a stored item cannot be read: {e}; discard it and make a new dry run"
                    ),
                })?,
            })
        })
        .collect()
}

/// Loads a whole plan for applying, with the cursor it was pulled from.
pub async fn load(store: &Store, id: &str) -> Result<(PlanInfo, Plan, Option<String>), StoreError> {
    let info = get(store, id).await?;
    let row = sqlx::query("SELECT base_cursor, pages FROM plans WHERE id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await?;
    let base_cursor: Option<String> = row.try_get("base_cursor")?;
    let pages: String = row.try_get("pages")?;
    let metas: Vec<PageMeta> = serde_json::from_str(&pages).map_err(|e| StoreError::Invalid {
        what: "plan",
        id: id.to_owned(),
        detail: format!("its stored pages cannot be read: {e}; discard it and make a new dry run"),
    })?;
    let mut plan = Plan {
        pages: metas
            .into_iter()
            .map(|m| PagePlan {
                ops: Vec::new(),
                cursor: m.cursor,
                pass: m.pass,
                more_in_pass: m.more_in_pass,
                seen: m.seen,
            })
            .collect(),
        counts: info.counts,
        held: info.reason.clone(),
        // Where the target's change feed stood is not kept with a plan: the
        // feed is read again from its stored cursor by the next run.
        ..Plan::default()
    };
    for item in items(store, id, false, 0, u32::MAX).await? {
        if let Some(page) = plan.pages.get_mut(item.page as usize) {
            page.ops.push(item.op);
        }
    }
    Ok((info, plan, base_cursor))
}

/// Refuses a plan whose items were stored in a format this version does not read.
fn readable(info: &PlanInfo) -> Result<(), StoreError> {
    if info.format == PLAN_FORMAT {
        return Ok(());
    }
    Err(StoreError::Invalid {
        what: "plan",
        id: info.id.clone(),
        detail: format!(
            "its items were stored in plan format {} by another version of syncbridge; this version reads format {PLAN_FORMAT}. Discard it and make a new dry run",
            info.format
        ),
    })
}

/// The error for a plan a transition did not match: what it is now.
async fn not_open(store: &Store, id: &str) -> PlanError {
    match get(store, id).await {
        Ok(info) => PlanError::NotOpen {
            id: id.to_owned(),
            status: info.status,
        },
        Err(e) => e.into(),
    }
}

/// open → discarded.
pub async fn discard(store: &Store, id: &str) -> Result<PlanInfo, PlanError> {
    let done = sqlx::query(
        "UPDATE plans SET status = 'discarded', decided_at = $1
         WHERE id = $2 AND status IN ('proposed', 'held')",
    )
    .bind(now_ms())
    .bind(id)
    .execute(store.pool())
    .await
    .map_err(StoreError::from)?;
    if done.rows_affected() == 0 {
        return Err(not_open(store, id).await);
    }
    Ok(get(store, id).await?)
}

/// open → applying, claimed by the apply-plan run `run_id` (which need not
/// be recorded yet). Returns the open status it had.
pub async fn claim(store: &Store, id: &str, run_id: &str) -> Result<PlanStatus, PlanError> {
    let row = sqlx::query(
        "UPDATE plans SET status = 'applying', claimed_from = status, apply_run = $1, decided_at = $2
         WHERE id = $3 AND status IN ('proposed', 'held')
         RETURNING claimed_from",
    )
    .bind(run_id)
    .bind(now_ms())
    .bind(id)
    .fetch_optional(store.pool())
    .await
    .map_err(StoreError::from)?;
    let Some(row) = row else {
        return Err(not_open(store, id).await);
    };
    let from: String = row.try_get("claimed_from").map_err(StoreError::from)?;
    from.parse().map_err(|e: UnknownStatus| {
        PlanError::Store(StoreError::Invalid {
            what: "plan",
            id: id.to_owned(),
            detail: e.to_string(),
        })
    })
}

/// applying (claimed by `run_id`) → the open status it had: the run could
/// not be recorded, or was cancelled before it started. `false` if the plan
/// is no longer applying for that run.
pub async fn release(store: &Store, id: &str, run_id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE plans SET status = claimed_from, apply_run = NULL, claimed_from = NULL, decided_at = NULL
         WHERE id = $1 AND status = 'applying' AND apply_run = $2 AND claimed_from IN ('proposed', 'held')",
    )
    .bind(id)
    .bind(run_id)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// applying (claimed by `run_id`) → applied | failed | stale. `false` if the
/// plan is no longer applying for that run.
pub async fn settle(
    store: &Store,
    id: &str,
    run_id: &str,
    outcome: ApplyOutcome,
    reason: Option<&str>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE plans SET status = $1, reason = COALESCE($2, reason), decided_at = $3
         WHERE id = $4 AND status = 'applying' AND apply_run = $5",
    )
    .bind(outcome.status().as_str())
    .bind(reason)
    .bind(now_ms())
    .bind(id)
    .bind(run_id)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How `run` differs from the items a preview showed, one line per item whose
/// action or written fields differ, saying what each planned and why the run
/// decided as it did. Empty when the run applies what the preview showed.
pub fn differences(shown: &[PlanItem], run: &Plan) -> Vec<String> {
    use std::collections::BTreeMap;
    let fields = |op: &PlannedOp| -> Vec<String> {
        op.changes
            .iter()
            .map(|c| format!("{} = {:?}", c.field, c.after.as_deref().unwrap_or("")))
            .collect()
    };
    let before: BTreeMap<&str, &PlannedOp> = shown
        .iter()
        .map(|i| (i.op.source_id.as_str(), &i.op))
        .collect();
    let now: BTreeMap<&str, &PlannedOp> = run
        .pages
        .iter()
        .flat_map(|p| &p.ops)
        .map(|op| (op.source_id.as_str(), op))
        .collect();
    let mut out = Vec::new();
    for (id, op) in &now {
        match before.get(id) {
            Some(was) if was.action == op.action && fields(was) == fields(op) => {}
            Some(was) => out.push(format!(
                "{id}: the preview showed {} [{}], the run did {} [{}] because {}",
                was.action.as_str(),
                fields(was).join(", "),
                op.action.as_str(),
                fields(op).join(", "),
                op.decided
            )),
            None if op.action.writes() => out.push(format!(
                "{id}: not in the preview, the run did {} [{}] because {}",
                op.action.as_str(),
                fields(op).join(", "),
                op.decided
            )),
            None => {}
        }
    }
    for (id, was) in &before {
        if !now.contains_key(id) && was.action.writes() {
            out.push(format!(
                "{id}: the preview showed {}, the run did not read the item (it did not change since)",
                was.action.as_str()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_and_unknown_ones_are_errors() {
        for status in ALL {
            assert_eq!(status.as_str().parse::<PlanStatus>().unwrap(), status);
        }
        let error = "approved".parse::<PlanStatus>().unwrap_err();
        assert!(error.to_string().contains("\"approved\""), "{error}");
        assert!("".parse::<PlanStatus>().is_err());
        assert!("Proposed".parse::<PlanStatus>().is_err());
    }

    #[test]
    fn only_proposed_and_held_are_open() {
        let open: Vec<_> = ALL.into_iter().filter(|s| s.open()).collect();
        assert_eq!(open, [PlanStatus::Proposed, PlanStatus::Held]);
    }
}
