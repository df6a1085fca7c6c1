//! The engine's tables: links, cursors, journal, quarantine.
//!
//! Everything a page changes is written by [`Ledger::commit_batch`] in one
//! transaction: links, journal rows and (on the page's last batch) the cursor.

use super::fields::FieldMap;
use super::merge::Side;
use super::plan::{Action, Link, Origin, PlannedOp, TargetSnapshot};
use sqlx::{Any, Row, Transaction};
use std::collections::BTreeMap;
use std::collections::HashMap;
use syncbridge_model::Item;
use syncbridge_store::{now_ms, Backend, Store, StoreError};

/// The outcome of one applied op.
#[derive(Debug, Clone)]
pub enum Applied {
    /// Written (or linked); the target id to record and the target item as
    /// read back after the write (`None` when it could not be read).
    Ok {
        target_id: String,
        seen: Option<TargetSnapshot>,
    },
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

/// What happened to one item in a run, as journaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub seq: i64,
    /// planned | applied | failed | recovered | abandoned
    pub phase: String,
    /// create | update | deactivate | reactivate | delete | link | noop
    pub action: String,
    pub source_id: String,
    pub target_id: Option<String>,
    pub changes: Vec<super::plan::FieldChange>,
    /// Why it failed, or other detail.
    pub detail: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
}

/// A journal row left `planned` by a run that died before recording its outcome.
#[derive(Debug, Clone)]
pub struct Unfinished {
    pub op_id: String,
    pub source_id: String,
    pub action: Action,
    pub match_keys: Vec<String>,
    pub fields_after: FieldMap,
    /// The target item an update/deactivate/reactivate/delete addressed.
    pub target_id: Option<String>,
}

/// Access to the engine tables of one store.
#[derive(Clone)]
pub struct Ledger {
    store: Store,
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
        self.links_where(profile, "source_id", source_ids).await
    }

    /// Links whose target item is one of `target_ids`, by source id.
    pub async fn links_by_target(
        &self,
        profile: &str,
        target_ids: &[String],
    ) -> Result<HashMap<String, Link>, StoreError> {
        self.links_where(profile, "target_id", target_ids).await
    }

    /// Which of `ids` are the target items of links of any of `profiles`
    /// (items those profiles wrote or matched, and own), with the profile
    /// that owns each.
    pub async fn owners_of(
        &self,
        profiles: &[String],
        ids: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut owned = HashMap::new();
        for profile in profiles {
            for row in self
                .rows_with_ids("SELECT target_id FROM links", profile, "target_id", ids)
                .await?
            {
                owned.insert(row.try_get::<String, _>("target_id")?, profile.clone());
            }
        }
        Ok(owned)
    }

    /// Relays target items read elsewhere to `profile`, which owns them
    /// (`relay_written_by`): the latest state of each replaces an earlier one.
    pub async fn relay(&self, profile: &str, items: &[Item]) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut tx = self.store.begin_write().await?;
        for item in items {
            let json = serde_json::to_string(item).map_err(|e| StoreError::Invalid {
                what: "relayed item",
                id: item.id.clone(),
                detail: e.to_string(),
            })?;
            sqlx::query(
                "INSERT INTO relayed_changes (profile_id, target_id, item, relayed_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (profile_id, target_id) DO UPDATE SET item = excluded.item, relayed_at = excluded.relayed_at",
            )
            .bind(profile)
            .bind(&item.id)
            .bind(json)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The target items relayed to `profile`, oldest first, each with the
    /// stored text [`Ledger::drop_relayed`] takes back.
    pub async fn relayed(&self, profile: &str) -> Result<Vec<(Item, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT target_id, item FROM relayed_changes WHERE profile_id = $1 ORDER BY relayed_at, target_id",
        )
        .bind(profile)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("target_id")?;
                let text: String = row.try_get("item")?;
                let item = serde_json::from_str(&text).map_err(|e| StoreError::Invalid {
                    what: "relayed item",
                    id: format!("{profile}/{id}"),
                    detail: format!("{e}; the next full reconcile reads the item again"),
                })?;
                Ok((item, text))
            })
            .collect()
    }

    /// Removes relayed items a run has dealt with: each only while it still
    /// holds the state that run saw (a newer relay of the same item stays).
    pub async fn drop_relayed(
        &self,
        profile: &str,
        taken: &[(String, String)],
    ) -> Result<(), StoreError> {
        if taken.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.begin_write().await?;
        for (target_id, text) in taken {
            sqlx::query(
                "DELETE FROM relayed_changes WHERE profile_id = $1 AND target_id = $2 AND item = $3",
            )
            .bind(profile)
            .bind(target_id)
            .bind(text)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Links whose `column` (`source_id` or `target_id`) is one of `ids`, by source id.
    async fn links_where(
        &self,
        profile: &str,
        column: &'static str,
        ids: &[String],
    ) -> Result<HashMap<String, Link>, StoreError> {
        const SELECT: &str = "SELECT source_id, target_id, fields, origin, active, provenance, target_seen FROM links";
        self.rows_with_ids(SELECT, profile, column, ids)
            .await?
            .iter()
            .map(|row| link_of(profile, row))
            .collect()
    }

    /// Held conflicts of the given source items: source id → field → the
    /// side an operator chose, if one did.
    pub async fn conflicts(
        &self,
        profile: &str,
        source_ids: &[String],
    ) -> Result<HashMap<String, BTreeMap<String, Option<Side>>>, StoreError> {
        const SELECT: &str = "SELECT source_id, field, resolution FROM conflicts";
        let mut out: HashMap<String, BTreeMap<String, Option<Side>>> = HashMap::new();
        for row in self
            .rows_with_ids(SELECT, profile, "source_id", source_ids)
            .await?
        {
            let source_id: String = row.try_get("source_id")?;
            let field: String = row.try_get("field")?;
            let resolution: Option<String> = row.try_get("resolution")?;
            let side = Side::parse_stored(resolution.as_deref(), || {
                format!("{profile}/{source_id}/{field}")
            })?;
            out.entry(source_id).or_default().insert(field, side);
        }
        Ok(out)
    }

    /// The rows of `select` (`SELECT … FROM table`) of `profile` whose
    /// `column` is one of `ids`, 500 ids a query.
    async fn rows_with_ids(
        &self,
        select: &str,
        profile: &str,
        column: &'static str,
        ids: &[String],
    ) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
        let backend = self.store.backend();
        let mut rows = Vec::new();
        for chunk in ids.chunks(500) {
            let placeholders: Vec<String> =
                (0..chunk.len()).map(|i| param(backend, i + 2)).collect();
            let sql = format!(
                "{select} WHERE profile_id = {} AND {column} IN ({})",
                param(backend, 1),
                placeholders.join(",")
            );
            let mut q = sqlx::query(&sql).bind(profile);
            for id in chunk {
                q = q.bind(id);
            }
            rows.extend(q.fetch_all(self.store.pool()).await?);
        }
        Ok(rows)
    }

    /// Stores the cursor of `scope` outside any page commit (the target's
    /// change feed, stored once a run has applied everything it planned).
    pub async fn set_cursor(
        &self,
        profile: &str,
        scope: &str,
        cursor: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO cursors (profile_id, scope, cursor, pass, updated_at) VALUES ($1, $2, $3, NULL, $4)
             ON CONFLICT (profile_id, scope) DO UPDATE SET cursor = excluded.cursor, pass = NULL, updated_at = excluded.updated_at",
        )
        .bind(profile)
        .bind(scope)
        .bind(cursor)
        .bind(now_ms())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// When the profile last finished a full reconcile (ms since the epoch).
    pub async fn last_full_reconcile(&self, profile: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT full_at FROM reconciles WHERE profile_id = $1")
            .bind(profile)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("full_at")?),
            None => None,
        })
    }

    /// Records that the profile finished a full reconcile now.
    pub async fn full_reconcile_done(&self, profile: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO reconciles (profile_id, full_at) VALUES ($1, $2)
             ON CONFLICT (profile_id) DO UPDATE SET full_at = excluded.full_at",
        )
        .bind(profile)
        .bind(now_ms())
        .execute(self.store.pool())
        .await?;
        Ok(())
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

    /// Forgets the cursor of `scope`: the next run starts a full pass (a
    /// full re-sync after the source's server settings changed).
    pub async fn reset_cursor(&self, profile: &str, scope: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM cursors WHERE profile_id = $1 AND scope = $2")
            .bind(profile)
            .bind(scope)
            .execute(self.store.pool())
            .await?;
        Ok(())
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

    /// The active links' source ids that are members of `parent`: ids of the
    /// form `<parent>#…` (a series' occurrences).
    pub async fn linked_members(
        &self,
        profile: &str,
        parent: &str,
    ) -> Result<Vec<String>, StoreError> {
        let prefix = format!("{parent}#");
        // A prefix compare, not LIKE: ids may hold `_` and `%`.
        let rows = sqlx::query(
            "SELECT source_id FROM links WHERE profile_id = $1 AND active = 1 AND substr(source_id, 1, length($2)) = $2",
        )
        .bind(profile)
        .bind(&prefix)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| r.try_get("source_id").map_err(StoreError::from))
            .collect()
    }

    /// Records ops as planned before anything is sent to the target
    /// (write-ahead): journal rows and pending rows, one statement each.
    pub async fn record_planned(
        &self,
        run: &str,
        profile: &str,
        ops: &[&PlannedOp],
    ) -> Result<(), StoreError> {
        let mut tx = self.store.begin_write().await?;
        let rows: Vec<JournalRow> = ops
            .iter()
            .map(|op| JournalRow::new(run, profile, op, "planned", op.target_id.as_deref(), None))
            .collect();
        insert_journal(&mut tx, self.store.backend(), &rows).await?;
        for chunk in ops.chunks(CHUNK) {
            let sql = values_sql(
                self.store.backend(),
                "INSERT INTO pending_ops (profile_id, op_id, source_id, action, detail) VALUES",
                chunk.len(),
                5,
                "",
            );
            let mut q = sqlx::query(&sql);
            for op in chunk {
                let detail = serde_json::json!({"match_keys": op.match_keys, "fields_after": op.fields_after, "target_id": op.target_id}).to_string();
                q = q
                    .bind(profile)
                    .bind(&op.op_id)
                    .bind(&op.source_id)
                    .bind(op.action.as_str())
                    .bind(detail);
            }
            q.execute(&mut *tx).await?;
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
        let mut tx = self.store.begin_write().await?;
        let mut journal_rows = Vec::new();
        let mut links = Vec::new();
        let mut unlinked = Vec::new();
        let mut failures = Vec::new();
        for (op, applied) in outcomes {
            match applied {
                Applied::Ok { .. } | Applied::Failed { .. } if !op.records() => {}
                Applied::Ok { target_id, .. } if op.action == Action::Unlink => {
                    unlinked.push(op.source_id.as_str());
                    journal_rows.push(JournalRow::new(
                        run,
                        profile,
                        op,
                        "applied",
                        Some(target_id),
                        Some("the target item is gone; the link is forgotten".into()),
                    ));
                }
                Applied::Ok { target_id, seen } => {
                    links.push((*op, target_id.as_str(), seen.as_ref()));
                    journal_rows.push(JournalRow::new(
                        run,
                        profile,
                        op,
                        "applied",
                        Some(target_id),
                        two_way_detail(op),
                    ));
                }
                Applied::Failed { class, message } => {
                    journal_rows.push(JournalRow::new(
                        run,
                        profile,
                        op,
                        "failed",
                        op.target_id.as_deref(),
                        Some(message.clone()),
                    ));
                    failures.push((*op, class.as_str(), message.as_str()));
                }
            }
        }
        upsert_links(&mut tx, self.store.backend(), profile, &links, run, now).await?;
        // Held conflicts: an applied pair's rows are replaced by what it still holds.
        let settled: Vec<&str> = links
            .iter()
            .map(|(op, _, _)| op.source_id.as_str())
            .collect();
        delete_in(
            &mut tx,
            self.store.backend(),
            "conflicts",
            "source_id",
            profile,
            &settled,
        )
        .await?;
        for (op, target_id, _) in &links {
            for c in &op.held {
                sqlx::query(
                    "INSERT INTO conflicts (profile_id, source_id, field, target_id, base_value, source_value, target_value, reason, resolution, at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9)",
                )
                .bind(profile)
                .bind(&op.source_id)
                .bind(&c.field)
                .bind(*target_id)
                .bind(c.base.as_deref())
                .bind(c.source.as_deref())
                .bind(c.target.as_deref())
                .bind(&c.reason)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        delete_in(
            &mut tx,
            self.store.backend(),
            "links",
            "source_id",
            profile,
            &unlinked,
        )
        .await?;
        insert_journal(&mut tx, self.store.backend(), &journal_rows).await?;
        for (op, class, message) in failures {
            sqlx::query(
                "INSERT INTO quarantine (profile_id, source_id, op_id, error_class, error, attempts, at) VALUES ($1, $2, $3, $4, $5, 1, $6)
                 ON CONFLICT (profile_id, source_id) DO UPDATE SET op_id = excluded.op_id, error_class = excluded.error_class,
                 error = excluded.error, attempts = quarantine.attempts + 1, at = excluded.at, skipped = 0",
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
        let written: Vec<&str> = outcomes
            .iter()
            .filter(|(op, _)| op.action.writes())
            .map(|(op, _)| op.op_id.as_str())
            .collect();
        delete_in(
            &mut tx,
            self.store.backend(),
            "pending_ops",
            "op_id",
            profile,
            &written,
        )
        .await?;
        let cleared: Vec<&str> = outcomes
            .iter()
            .filter(|(op, applied)| op.retry && matches!(applied, Applied::Ok { .. }))
            .map(|(op, _)| op.source_id.as_str())
            .collect();
        delete_in(
            &mut tx,
            self.store.backend(),
            "quarantine",
            "source_id",
            profile,
            &cleared,
        )
        .await?;
        if let Some(end) = page_end {
            if let Some(pass) = end.pass {
                for chunk in end.seen.chunks(500) {
                    let backend = self.store.backend();
                    let placeholders: Vec<String> =
                        (0..chunk.len()).map(|i| param(backend, i + 3)).collect();
                    let sql = format!(
                        "UPDATE links SET seen_pass = {} WHERE profile_id = {} AND source_id IN ({})",
                        param(backend, 1),
                        param(backend, 2),
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
    /// Up to `limit` journal entries of run `run` from `offset`, in order,
    /// and whether more follow. A row this version cannot read is an error
    /// naming it.
    pub async fn run_entries(
        &self,
        run: &str,
        offset: u32,
        limit: u32,
    ) -> Result<(Vec<JournalEntry>, bool), StoreError> {
        let rows = sqlx::query(
            "SELECT seq, phase, action, source_id, target_id, changes, detail, at FROM journal
             WHERE run_id = $1 ORDER BY seq LIMIT $2 OFFSET $3",
        )
        .bind(run)
        .bind(i64::from(limit) + 1)
        .bind(i64::from(offset))
        .fetch_all(self.store.pool())
        .await?;
        let more = rows.len() > limit as usize;
        let entries = rows
            .iter()
            .take(limit as usize)
            .map(|r| {
                let seq: i64 = r.try_get("seq")?;
                let changes: String = r.try_get("changes")?;
                let changes = serde_json::from_str(&changes).map_err(|e| StoreError::Invalid {
                    what: "journal row",
                    id: format!("{run}#{seq}"),
                    detail: format!("its stored changes cannot be read: {e}"),
                })?;
                Ok(JournalEntry {
                    seq,
                    phase: r.try_get("phase")?,
                    action: r.try_get("action")?,
                    source_id: r.try_get("source_id")?,
                    target_id: r.try_get("target_id")?,
                    changes,
                    detail: r.try_get("detail")?,
                    at: r.try_get("at")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((entries, more))
    }

    pub async fn unfinished(&self, profile: &str) -> Result<Vec<Unfinished>, StoreError> {
        let rows = sqlx::query("SELECT op_id, source_id, action, detail FROM pending_ops WHERE profile_id = $1 ORDER BY op_id")
            .bind(profile)
            .fetch_all(self.store.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get("detail")?;
                let op_id: String = r.try_get("op_id")?;
                let detail: serde_json::Value =
                    serde_json::from_str(&detail).map_err(|e| StoreError::Invalid {
                        what: "pending operation",
                        id: format!("{profile}/{op_id}"),
                        detail: format!("its stored detail cannot be read: {e}"),
                    })?;
                let action: String = r.try_get("action")?;
                let action = Action::parse(&action).ok_or_else(|| StoreError::Invalid {
                    what: "pending operation",
                    id: op_id.clone(),
                    detail: format!("its action {action:?} is unknown to this version"),
                })?;
                Ok(Unfinished {
                    op_id,
                    source_id: r.try_get("source_id")?,
                    action,
                    match_keys: serde_json::from_value(detail["match_keys"].clone())
                        .unwrap_or_default(),
                    fields_after: serde_json::from_value(detail["fields_after"].clone())
                        .unwrap_or_default(),
                    target_id: detail["target_id"].as_str().map(str::to_owned),
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
        let mut tx = self.store.begin_write().await?;
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
            decided: super::plan::Decided::by_host(
                "recovery",
                "a write of an interrupted run, finished from the outbox",
            ),
            retry: false,
            prior_provenance: None,
            inactive_after: false,
            target_seen: None,
            back: Vec::new(),
            back_body: None,
            held: Vec::new(),
            resolved: Vec::new(),
        };
        match target {
            Some(t) => {
                upsert_links(
                    &mut tx,
                    self.store.backend(),
                    profile,
                    &[(&op, t, None)],
                    run,
                    now,
                )
                .await?;
                let row = JournalRow::new(
                    run,
                    profile,
                    &op,
                    "recovered",
                    Some(t),
                    Some("found in the target after an interrupted run".into()),
                );
                insert_journal(&mut tx, self.store.backend(), &[row]).await?;
            }
            None => {
                let row = JournalRow::new(
                    run,
                    profile,
                    &op,
                    "abandoned",
                    None,
                    Some("interrupted before its outcome was recorded; retried".into()),
                );
                insert_journal(&mut tx, self.store.backend(), &[row]).await?;
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
        delete_in(
            &mut tx,
            self.store.backend(),
            "pending_ops",
            "op_id",
            profile,
            &[u.op_id.as_str()],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces what a link believes the target holds with what the target
    /// answered (after an interrupted write left it unknown).
    pub async fn refresh_link(
        &self,
        profile: &str,
        source_id: &str,
        fields: &FieldMap,
        active: bool,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE links SET fields = $1, active = $2, updated_at = $3 WHERE profile_id = $4 AND source_id = $5")
            .bind(serde_json::to_string(fields).expect("fields serialise"))
            .bind(active as i64)
            .bind(now_ms())
            .bind(profile)
            .bind(source_id)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// Source ids in quarantine, each with whether it is retried (not skipped by an operator).
    pub async fn quarantine_retried(
        &self,
        profile: &str,
    ) -> Result<Vec<(String, bool)>, StoreError> {
        let rows = sqlx::query(
            "SELECT source_id, skipped FROM quarantine WHERE profile_id = $1 ORDER BY source_id",
        )
        .bind(profile)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let skipped: i64 = r.try_get("skipped")?;
                Ok((r.try_get("source_id")?, skipped == 0))
            })
            .collect()
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

/// What an op did besides writing the target: two-way fields written back
/// to the source, conflicts held for review.
fn two_way_detail(op: &PlannedOp) -> Option<String> {
    let mut parts = Vec::new();
    if !op.back.is_empty() {
        let fields: Vec<String> = op
            .back
            .iter()
            .map(|c| format!("{} = {:?}", c.field, c.after.as_deref().unwrap_or("")))
            .collect();
        parts.push(format!("written back to the source: {}", fields.join(", ")));
    }
    if !op.held.is_empty() {
        let fields: Vec<&str> = op.held.iter().map(|c| c.field.as_str()).collect();
        parts.push(format!(
            "held for review (`syncbridge conflicts list`): {}",
            fields.join(", ")
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// One `links` row as (source id, link); a stored value this version cannot
/// read is an error naming the link, never a default.
fn link_of(profile: &str, row: &sqlx::any::AnyRow) -> Result<(String, Link), StoreError> {
    let source_id: String = row.try_get("source_id")?;
    let corrupt = |what: &str, e: serde_json::Error| StoreError::Invalid {
        what: "link",
        id: format!("{profile}/{source_id}"),
        detail: format!("its stored {what} cannot be read: {e}"),
    };
    let fields: String = row.try_get("fields")?;
    let fields = serde_json::from_str(&fields).map_err(|e| corrupt("fields", e))?;
    let seen: Option<String> = row.try_get("target_seen")?;
    let seen = seen
        .map(|s| serde_json::from_str(&s))
        .transpose()
        .map_err(|e| corrupt("target state", e))?;
    let origin = match row.try_get::<String, _>("origin")?.as_str() {
        "matched" => Origin::Matched,
        "created" => Origin::Created,
        other => {
            return Err(StoreError::Invalid {
                what: "link",
                id: format!("{profile}/{source_id}"),
                detail: format!("its origin {other:?} is neither created nor matched"),
            })
        }
    };
    let link = Link {
        target_id: row.try_get("target_id")?,
        fields,
        origin,
        active: row.try_get::<i64, _>("active")? != 0,
        provenance: row.try_get("provenance")?,
        seen,
    };
    Ok((source_id, link))
}

/// Rows per multi-row statement (well under both databases' parameter limits).
const CHUNK: usize = 500;

/// The placeholder of the `n`th (1-based) bound parameter. SQLite gets
/// anonymous `?`: sqlx looks each named parameter up by name, which SQLite
/// answers with a linear scan, so `$n` makes wide statements quadratic.
fn param(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => "?".to_owned(),
        Backend::Postgres => format!("${n}"),
    }
}

/// `head ($1,...,$k), (...)` for `rows` rows of `cols` columns, then `tail`.
fn values_sql(backend: Backend, head: &str, rows: usize, cols: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(head.len() + rows * cols * 5 + tail.len());
    sql.push_str(head);
    for r in 0..rows {
        sql.push_str(if r == 0 { " (" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                sql.push(',');
            }
            sql.push_str(&param(backend, r * cols + c + 1));
        }
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

/// `DELETE FROM table WHERE profile_id = ? AND column IN (...)`, chunked.
async fn delete_in(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    table: &str,
    column: &str,
    profile: &str,
    ids: &[&str],
) -> Result<(), StoreError> {
    for chunk in ids.chunks(CHUNK) {
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| param(backend, i + 2)).collect();
        let sql = format!(
            "DELETE FROM {table} WHERE profile_id = {} AND {column} IN ({})",
            param(backend, 1),
            placeholders.join(",")
        );
        let mut q = sqlx::query(&sql).bind(profile);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// One journal row.
struct JournalRow {
    run: String,
    profile: String,
    op_id: String,
    phase: &'static str,
    action: &'static str,
    source_id: String,
    target_id: Option<String>,
    changes: String,
    detail: Option<String>,
}

impl JournalRow {
    fn new(
        run: &str,
        profile: &str,
        op: &PlannedOp,
        phase: &'static str,
        target_id: Option<&str>,
        detail: Option<String>,
    ) -> Self {
        Self {
            run: run.to_owned(),
            profile: profile.to_owned(),
            op_id: op.op_id.clone(),
            phase,
            action: op.action.as_str(),
            source_id: op.source_id.clone(),
            target_id: target_id.map(str::to_owned),
            changes: serde_json::to_string(&op.changes).expect("changes serialise"),
            detail,
        }
    }
}

async fn insert_journal(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    rows: &[JournalRow],
) -> Result<(), StoreError> {
    let at = now_ms();
    for chunk in rows.chunks(CHUNK) {
        let sql = values_sql(
            backend,
            "INSERT INTO journal (run_id, profile_id, op_id, phase, action, source_id, target_id, changes, detail, at) VALUES",
            chunk.len(),
            10,
            "",
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(&r.run)
                .bind(&r.profile)
                .bind(&r.op_id)
                .bind(r.phase)
                .bind(r.action)
                .bind(&r.source_id)
                .bind(r.target_id.as_deref())
                .bind(&r.changes)
                .bind(r.detail.as_deref())
                .bind(at);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Upserts the links of applied ops, merging each written field's provenance.
async fn upsert_links(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    profile: &str,
    links: &[(&PlannedOp, &str, Option<&TargetSnapshot>)],
    run: &str,
    now: i64,
) -> Result<(), StoreError> {
    for chunk in links.chunks(CHUNK) {
        let sql = values_sql(
            backend,
            "INSERT INTO links (profile_id, source_id, target_id, fields, provenance, origin, active, updated_at, target_seen) VALUES",
            chunk.len(),
            9,
            "ON CONFLICT (profile_id, source_id) DO UPDATE SET target_id = excluded.target_id, fields = excluded.fields,
               provenance = excluded.provenance, origin = excluded.origin, active = excluded.active, updated_at = excluded.updated_at,
               target_seen = excluded.target_seen",
        );
        let mut q = sqlx::query(&sql);
        for (op, target_id, seen) in chunk {
            let mut provenance: serde_json::Map<String, serde_json::Value> = op
                .prior_provenance
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok())
                .unwrap_or_default();
            for c in &op.changes {
                provenance.insert(
                    c.field.clone(),
                    serde_json::json!({"system": "source", "run": run, "at": now, "rule": op.decided.to_string()}),
                );
            }
            for c in &op.back {
                provenance.insert(
                    c.field.clone(),
                    serde_json::json!({"system": "target", "run": run, "at": now, "rule": op.decided.to_string()}),
                );
            }
            let origin = match op.origin {
                Origin::Created => "created",
                Origin::Matched => "matched",
            };
            q = q
                .bind(profile)
                .bind(&op.source_id)
                .bind(*target_id)
                .bind(serde_json::to_string(&op.fields_after).expect("fields serialise"))
                .bind(serde_json::Value::Object(provenance).to_string())
                .bind(origin)
                .bind(!(op.action.removes() || op.inactive_after) as i64)
                .bind(now)
                .bind(seen.map(|s| serde_json::to_string(s).expect("snapshot serialises")));
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}
