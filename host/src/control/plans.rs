//! Stored plans: every dry run and every run the brakes held keeps its plan
//! here, op by op with per-field diffs, until it is applied or discarded.

use crate::engine::plan::{PlanCounts, PlannedOp};
use crate::engine::run::{PagePlan, Plan};
use crate::store::{now_ms, Store, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// Where a stored plan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanStatus {
    /// From a dry run; may be applied.
    Proposed,
    /// Held by the brakes; waits for approval.
    Held,
    Applied,
    Discarded,
    /// Refused at apply time: the source or target changed underneath.
    Stale,
}

impl PlanStatus {
    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Proposed => "proposed",
            PlanStatus::Held => "held",
            PlanStatus::Applied => "applied",
            PlanStatus::Discarded => "discarded",
            PlanStatus::Stale => "stale",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "held" => PlanStatus::Held,
            "applied" => PlanStatus::Applied,
            "discarded" => PlanStatus::Discarded,
            "stale" => PlanStatus::Stale,
            _ => PlanStatus::Proposed,
        }
    }

    /// Whether it can still be applied.
    pub fn open(self) -> bool {
        matches!(self, PlanStatus::Proposed | PlanStatus::Held)
    }
}

/// A stored plan's header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanInfo {
    pub id: String,
    pub profile_id: String,
    /// The run that made it.
    pub run_id: String,
    pub status: PlanStatus,
    /// Why it is held or stale.
    pub reason: Option<String>,
    pub counts: PlanCounts,
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

fn info_from_row(r: &sqlx::any::AnyRow) -> Result<PlanInfo, StoreError> {
    let counts: String = r.try_get("counts")?;
    Ok(PlanInfo {
        id: r.try_get("id")?,
        profile_id: r.try_get("profile_id")?,
        run_id: r.try_get("run_id")?,
        status: PlanStatus::parse(&r.try_get::<String, _>("status")?),
        reason: r.try_get("reason")?,
        counts: serde_json::from_str(&counts).unwrap_or_default(),
        created_at: r.try_get("created_at")?,
        decided_at: r.try_get("decided_at")?,
    })
}

const INFO_COLUMNS: &str = "id, profile_id, run_id, status, reason, counts, created_at, decided_at";

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
    let mut tx = store.pool().begin().await?;
    sqlx::query(
        "INSERT INTO plans (id, profile_id, run_id, status, reason, counts, base_cursor, pages, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
    rows.iter()
        .map(|r| {
            let op: String = r.try_get("op")?;
            Ok(PlanItem {
                seq: r.try_get("seq")?,
                page: r.try_get("page")?,
                op: serde_json::from_str(&op).map_err(|e| {
                    StoreError::InUse(format!("stored plan {id} has an unreadable item: {e}"))
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
    let metas: Vec<PageMeta> = serde_json::from_str(&pages)
        .map_err(|e| StoreError::InUse(format!("stored plan {id} is unreadable: {e}")))?;
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
    };
    for item in items(store, id, false, 0, u32::MAX).await? {
        if let Some(page) = plan.pages.get_mut(item.page as usize) {
            page.ops.push(item.op);
        }
    }
    Ok((info, plan, base_cursor))
}

/// Moves an open plan to `status`; fails if it was already decided.
pub async fn decide(
    store: &Store,
    id: &str,
    status: PlanStatus,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE plans SET status = $1, reason = COALESCE($2, reason), decided_at = $3
         WHERE id = $4 AND status IN ('proposed', 'held')",
    )
    .bind(status.as_str())
    .bind(reason)
    .bind(now_ms())
    .bind(id)
    .execute(store.pool())
    .await?;
    if done.rows_affected() == 0 {
        let info = get(store, id).await?;
        return Err(StoreError::InUse(format!(
            "plan {id} is {} already; make a new dry run",
            info.status.as_str()
        )));
    }
    Ok(())
}
