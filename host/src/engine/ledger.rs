//! The engine's tables: links, cursors, journal, quarantine.
//!
//! Everything a page changes is written by [`Ledger::commit_batch`] in one
//! transaction: links, journal rows and (on the page's last batch) the cursor.

use super::fields::FieldMap;
use super::plan::{Action, FieldChange, Link, Origin, PlannedOp};
use crate::store::{Store, StoreError};
use sqlx::{Any, Row, Transaction};
use std::collections::HashMap;

/// The outcome of one applied op.
#[derive(Debug, Clone)]
pub enum Applied {
    /// Written (or linked); the target id to record.
    Ok { target_id: String },
    /// Failed; the item is quarantined and retried on a later run.
    Failed { class: String, message: String },
}

/// What the last batch of a page also commits.
#[derive(Debug, Clone, Copy)]
pub struct PageEnd<'a> {
    pub scope: &'a str,
    pub cursor: Option<&'a str>,
    /// The full pass the page belongs to, if it is part of one.
    pub pass: Option<&'a str>,
    /// Whether the pass continues after this page (the cursor is inside it).
    pub more_in_pass: bool,
    /// Source ids the page brought.
    pub seen: &'a [String],
}

/// A journal row left `planned` by a run that died before recording its outcome.
#[derive(Debug, Clone)]
pub struct Unfinished {
    pub op_id: String,
    pub source_id: String,
    pub action: Action,
    pub match_keys: Vec<String>,
    pub fields_after: FieldMap,
}

/// Access to the engine tables of one store.
#[derive(Clone)]
pub struct Ledger {
    store: Store,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Create => "create",
        Action::Update => "update",
        Action::Deactivate => "deactivate",
        Action::Reactivate => "reactivate",
        Action::Delete => "delete",
        Action::Link => "link",
        Action::Noop => "noop",
    }
}

fn parse_action(s: &str) -> Action {
    match s {
        "create" => Action::Create,
        "update" => Action::Update,
        "deactivate" => Action::Deactivate,
        "reactivate" => Action::Reactivate,
        "delete" => Action::Delete,
        "link" => Action::Link,
        _ => Action::Noop,
    }
}

impl Ledger {
    /// The ledger of a store.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Links of the given source ids.
    pub async fn links(
        &self,
        profile: &str,
        source_ids: &[String],
    ) -> Result<HashMap<String, Link>, StoreError> {
        let mut out = HashMap::new();
        for chunk in source_ids.chunks(500) {
            let placeholders: Vec<String> =
                (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT source_id, target_id, fields, origin, active FROM links WHERE profile_id = $1 AND source_id IN ({})",
                placeholders.join(",")
            );
            let mut q = sqlx::query(&sql).bind(profile);
            for id in chunk {
                q = q.bind(id);
            }
            for row in q.fetch_all(self.store.pool()).await? {
                let fields: String = row.try_get("fields")?;
                out.insert(
                    row.try_get::<String, _>("source_id")?,
                    Link {
                        target_id: row.try_get("target_id")?,
                        fields: serde_json::from_str(&fields).unwrap_or_default(),
                        origin: if row.try_get::<String, _>("origin")? == "matched" {
                            Origin::Matched
                        } else {
                            Origin::Created
                        },
                        active: row.try_get::<i64, _>("active")? != 0,
                    },
                );
            }
        }
        Ok(out)
    }

    /// Number of active links.
    pub async fn linked_count(&self, profile: &str) -> Result<u64, StoreError> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM links WHERE profile_id = $1 AND active = 1")
                .bind(profile)
                .fetch_one(self.store.pool())
                .await?;
        Ok(row.try_get::<i64, _>("n")? as u64)
    }

    /// The stored cursor of (profile, scope) and the full pass it is inside, if any.
    pub async fn cursor(
        &self,
        profile: &str,
        scope: &str,
    ) -> Result<(Option<String>, Option<String>), StoreError> {
        let row =
            sqlx::query("SELECT cursor, pass FROM cursors WHERE profile_id = $1 AND scope = $2")
                .bind(profile)
                .bind(scope)
                .fetch_optional(self.store.pool())
                .await?;
        Ok(match row {
            Some(r) => (r.try_get("cursor")?, r.try_get("pass")?),
            None => (None, None),
        })
    }

    /// Active links not seen by full pass `pass` (candidates for removal at its end).
    pub async fn unseen_in_pass(
        &self,
        profile: &str,
        pass: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT source_id FROM links WHERE profile_id = $1 AND active = 1 AND (seen_pass IS NULL OR seen_pass <> $2)",
        )
        .bind(profile)
        .bind(pass)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| r.try_get("source_id").map_err(StoreError::from))
            .collect()
    }

    /// Records ops as planned before anything is sent to the target (write-ahead).
    pub async fn record_planned(
        &self,
        run: &str,
        profile: &str,
        ops: &[&PlannedOp],
    ) -> Result<(), StoreError> {
        let mut tx = self.store.pool().begin().await?;
        for op in ops {
            let detail =
                serde_json::json!({"match_keys": op.match_keys, "fields_after": op.fields_after})
                    .to_string();
            journal(
                &mut tx,
                run,
                profile,
                op,
                "planned",
                op.target_id.as_deref(),
                &op.changes,
                Some(&detail),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Commits a batch's outcomes: links, journal and quarantine, plus the
    /// page's cursor and the ids it saw in a full pass when `page_end` is
    /// given (the page's last batch), in one transaction.
    pub async fn commit_batch(
        &self,
        run: &str,
        profile: &str,
        outcomes: &[(&PlannedOp, Applied)],
        page_end: Option<PageEnd<'_>>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.store.pool().begin().await?;
        for (op, applied) in outcomes {
            match applied {
                Applied::Ok { .. } if op.action == Action::Noop => {}
                Applied::Ok { target_id } => {
                    upsert_link(&mut tx, profile, op, target_id, run, now).await?;
                    journal(
                        &mut tx,
                        run,
                        profile,
                        op,
                        "applied",
                        Some(target_id),
                        &op.changes,
                        None,
                    )
                    .await?;
                }
                Applied::Failed { .. } if op.action == Action::Noop => {}
                Applied::Failed { class, message } => {
                    journal(
                        &mut tx,
                        run,
                        profile,
                        op,
                        "failed",
                        op.target_id.as_deref(),
                        &op.changes,
                        Some(message),
                    )
                    .await?;
                    sqlx::query(
                        "INSERT INTO quarantine (profile_id, source_id, op_id, error_class, error, attempts, at) VALUES ($1, $2, $3, $4, $5, 1, $6)
                         ON CONFLICT (profile_id, source_id) DO UPDATE SET op_id = excluded.op_id, error_class = excluded.error_class,
                         error = excluded.error, attempts = quarantine.attempts + 1, at = excluded.at",
                    )
                    .bind(profile)
                    .bind(&op.source_id)
                    .bind(&op.op_id)
                    .bind(class)
                    .bind(message)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        for (op, applied) in outcomes {
            if matches!(applied, Applied::Ok { .. }) && op.retry {
                sqlx::query("DELETE FROM quarantine WHERE profile_id = $1 AND source_id = $2")
                    .bind(profile)
                    .bind(&op.source_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        if let Some(end) = page_end {
            if let Some(pass) = end.pass {
                for chunk in end.seen.chunks(500) {
                    let placeholders: Vec<String> =
                        (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
                    let sql = format!(
                        "UPDATE links SET seen_pass = $1 WHERE profile_id = $2 AND source_id IN ({})",
                        placeholders.join(",")
                    );
                    let mut q = sqlx::query(&sql).bind(pass).bind(profile);
                    for id in chunk {
                        q = q.bind(id);
                    }
                    q.execute(&mut *tx).await?;
                }
            }
            sqlx::query(
                "INSERT INTO cursors (profile_id, scope, cursor, pass, updated_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (profile_id, scope) DO UPDATE SET cursor = excluded.cursor, pass = excluded.pass, updated_at = excluded.updated_at",
            )
            .bind(profile)
            .bind(end.scope)
            .bind(end.cursor)
            .bind(if end.more_in_pass { end.pass } else { None })
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Ops journaled as planned whose outcome was never recorded (the run died).
    pub async fn unfinished(&self, profile: &str) -> Result<Vec<Unfinished>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.op_id, p.source_id, p.action, p.detail FROM journal p
             WHERE p.profile_id = $1 AND p.phase = 'planned'
               AND NOT EXISTS (SELECT 1 FROM journal d WHERE d.profile_id = p.profile_id AND d.op_id = p.op_id AND d.phase <> 'planned')
             ORDER BY p.seq",
        )
        .bind(profile)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let detail: Option<String> = r.try_get("detail")?;
                let detail: serde_json::Value = detail
                    .and_then(|d| serde_json::from_str(&d).ok())
                    .unwrap_or_default();
                Ok(Unfinished {
                    op_id: r.try_get("op_id")?,
                    source_id: r.try_get("source_id")?,
                    action: parse_action(&r.try_get::<String, _>("action")?),
                    match_keys: serde_json::from_value(detail["match_keys"].clone())
                        .unwrap_or_default(),
                    fields_after: serde_json::from_value(detail["fields_after"].clone())
                        .unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Closes an unfinished op: `target` links a create that did reach the target.
    pub async fn close_unfinished(
        &self,
        run: &str,
        profile: &str,
        u: &Unfinished,
        target: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.store.pool().begin().await?;
        let op = PlannedOp {
            op_id: u.op_id.clone(),
            source_id: u.source_id.clone(),
            action: u.action,
            target_id: target.map(str::to_owned),
            changes: Vec::new(),
            body: None,
            fields_after: u.fields_after.clone(),
            origin: Origin::Created,
            match_keys: u.match_keys.clone(),
            rule: "recovery".into(),
            retry: false,
        };
        match target {
            Some(t) => {
                upsert_link(&mut tx, profile, &op, t, run, now).await?;
                journal(
                    &mut tx,
                    run,
                    profile,
                    &op,
                    "recovered",
                    Some(t),
                    &[],
                    Some("found in the target after an interrupted run"),
                )
                .await?;
            }
            None => {
                journal(
                    &mut tx,
                    run,
                    profile,
                    &op,
                    "abandoned",
                    None,
                    &[],
                    Some("interrupted before its outcome was recorded; retried"),
                )
                .await?;
                // Retried like a quarantined item: the source is read again and the
                // item re-planned, even if no page will bring it again (removals
                // found at the end of a full pass, retries).
                sqlx::query(
                    "INSERT INTO quarantine (profile_id, source_id, op_id, error_class, error, attempts, at) VALUES ($1, $2, $3, 'interrupted', 'the run stopped before this item was recorded', 0, $4)
                     ON CONFLICT (profile_id, source_id) DO NOTHING",
                )
                .bind(profile)
                .bind(&u.source_id)
                .bind(&u.op_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Source ids in quarantine.
    pub async fn quarantined(&self, profile: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT source_id FROM quarantine WHERE profile_id = $1 ORDER BY source_id",
        )
        .bind(profile)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| r.try_get("source_id").map_err(StoreError::from))
            .collect()
    }
}

#[allow(clippy::too_many_arguments)]
async fn journal(
    tx: &mut Transaction<'_, Any>,
    run: &str,
    profile: &str,
    op: &PlannedOp,
    phase: &str,
    target_id: Option<&str>,
    changes: &[FieldChange],
    detail: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO journal (run_id, profile_id, op_id, phase, action, source_id, target_id, changes, detail, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(run)
    .bind(profile)
    .bind(&op.op_id)
    .bind(phase)
    .bind(action_name(op.action))
    .bind(&op.source_id)
    .bind(target_id)
    .bind(serde_json::to_string(changes).expect("changes serialise"))
    .bind(detail)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn upsert_link(
    tx: &mut Transaction<'_, Any>,
    profile: &str,
    op: &PlannedOp,
    target_id: &str,
    run: &str,
    now: i64,
) -> Result<(), StoreError> {
    let active = !op.action.removes();
    let provenance: serde_json::Map<String, serde_json::Value> = op
        .changes
        .iter()
        .map(|c| {
            (
                c.field.clone(),
                serde_json::json!({"system": "source", "run": run, "at": now, "rule": op.rule}),
            )
        })
        .collect();
    let origin = match op.origin {
        Origin::Created => "created",
        Origin::Matched => "matched",
    };
    sqlx::query(
        "INSERT INTO links (profile_id, source_id, target_id, fields, provenance, origin, active, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (profile_id, source_id) DO UPDATE SET target_id = excluded.target_id, fields = excluded.fields,
           provenance = links.provenance, origin = excluded.origin, active = excluded.active, updated_at = excluded.updated_at",
    )
    .bind(profile)
    .bind(&op.source_id)
    .bind(target_id)
    .bind(serde_json::to_string(&op.fields_after).expect("fields serialise"))
    .bind(serde_json::Value::Object(provenance.clone()).to_string())
    .bind(origin)
    .bind(active as i64)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if !provenance.is_empty() {
        // Merge field provenance: fields written now replace their entries.
        let row =
            sqlx::query("SELECT provenance FROM links WHERE profile_id = $1 AND source_id = $2")
                .bind(profile)
                .bind(&op.source_id)
                .fetch_one(&mut **tx)
                .await?;
        let mut merged: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&row.try_get::<String, _>("provenance")?).unwrap_or_default();
        merged.extend(provenance);
        sqlx::query("UPDATE links SET provenance = $1 WHERE profile_id = $2 AND source_id = $3")
            .bind(serde_json::Value::Object(merged).to_string())
            .bind(profile)
            .bind(&op.source_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
