//! One run of a profile: recover, plan every page, check the brakes, apply
//! page by page with write-ahead journaling, commit links + journal + cursor
//! per page.

use super::endpoint::{EndpointError, Source, Target, Transform};
use super::fields::flatten;
use super::ledger::{Applied, Ledger, PageEnd};
use super::merge::Side;
use super::plan::{
    brakes_hold, plan_intent, Action, PairContext, PlanCounts, PlannedOp, TargetMatch, TargetNow,
    TargetSnapshot,
};
use super::rules::FieldRules;
use std::collections::{BTreeMap, BTreeSet};
use std::collections::{HashMap, HashSet};
use syncbridge_model::{
    Intent, IntentAction, Item, ItemBody, Removal, WriteAction, WriteOp, WritePolicy,
};
use syncbridge_store::StoreError;

/// What a run needs to know about its profile.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub profile_id: String,
    /// The source scope as declared: cursors are kept under it.
    pub source_scope: String,
    /// The scope the source is pulled and looked up with when it differs from
    /// `source_scope`: the source fields the rules read added (WIT 0.1.2).
    pub source_read_scope: Option<String>,
    pub target_scope: String,
    pub rules: FieldRules,
    /// Items per pulled page and per pushed batch.
    pub page_size: u32,
    /// Stop after planning; apply nothing.
    pub dry_run: bool,
    /// In-run retries of items the target reports throttled or transient.
    pub retry: super::retry::RetryPolicy,
    /// Batches of one page pushed at once (1 = one after the other). The
    /// target connection's request limit still bounds its HTTP calls; this
    /// lets latency overlap within that limit.
    pub push_concurrency: usize,
    /// Plan from the start (a full pass) whatever the stored cursor: the
    /// filter preview shows every source item, not only changes; a full
    /// reconcile re-evaluates every item against the target as it is.
    pub from_start: bool,
}

impl RunSpec {
    /// The scope the source is pulled and looked up with.
    pub fn source_read(&self) -> &str {
        self.source_read_scope
            .as_deref()
            .unwrap_or(&self.source_scope)
    }

    /// The cursors-table key of the target's change feed.
    pub fn target_feed(&self) -> String {
        format!("target:{}", self.target_scope)
    }
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{side} failed: {error}")]
    Endpoint {
        side: &'static str,
        #[source]
        error: EndpointError,
    },
}

fn endpoint(side: &'static str) -> impl Fn(EndpointError) -> RunError {
    move |error| RunError::Endpoint { side, error }
}

/// The page-by-page plan of a run.
#[derive(Debug, Default)]
pub struct Plan {
    pub pages: Vec<PagePlan>,
    pub counts: PlanCounts,
    /// Set when the brakes hold the plan for approval.
    pub held: Option<String>,
    /// Where the target's change feed continues once this plan is applied.
    pub target_cursor: Option<Option<String>>,
    /// The plan read every source item (a full pass from the start).
    pub full: bool,
    /// With `feed_relayed`: the relayed target items the plan looked at
    /// (id, stored text), dropped once it is applied.
    pub relayed: Vec<(String, String)>,
}

impl Plan {
    /// Takes the cursor (and the ids it saw) off the last source page that has one, for a
    /// page of removals planned after the pages to commit it with: a run that dies before
    /// them pulls that page again and finds the removals again.
    fn take_last_cursor(&mut self) -> (Option<Option<String>>, Vec<String>) {
        self.pages
            .iter_mut()
            .rev()
            .find(|p| p.cursor.is_some())
            .map(|p| (p.cursor.take(), std::mem::take(&mut p.seen)))
            .unwrap_or_default()
    }
}

/// The ops of one source page and the cursor to store once they are done.
#[derive(Debug, Default)]
pub struct PagePlan {
    pub ops: Vec<PlannedOp>,
    /// `Some(cursor)` to store after this page; `None` = leave the cursor.
    pub cursor: Option<Option<String>>,
    /// The full pass this page belongs to.
    pub pass: Option<String>,
    /// Whether the full pass continues after this page.
    pub more_in_pass: bool,
    /// Source ids the page brought.
    pub seen: Vec<String>,
}

/// Counts of a finished run.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunReport {
    pub planned: PlanCounts,
    pub applied: u64,
    pub failed: u64,
    pub recovered: u64,
    pub pages: u64,
    pub held: Option<String>,
}

/// What applying a page (or a batch) did to its items: how many ended
/// applied or failed, by planned action, and the failures by error class
/// (`invalid`, `conflict`, `throttled`, ...). Link and quarantine-retry
/// items count as applied without a write.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PageTally {
    pub applied: HashMap<Action, u64>,
    pub failed: HashMap<Action, u64>,
    pub errors: HashMap<String, u64>,
}

impl PageTally {
    /// Items applied, whatever their action.
    pub fn applied_total(&self) -> u64 {
        self.applied.values().sum()
    }

    /// Items failed, whatever their action.
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    fn count(&mut self, action: Action, outcome: &Applied) {
        match outcome {
            Applied::Ok { .. } => *self.applied.entry(action).or_default() += 1,
            Applied::Failed { class, .. } => {
                *self.failed.entry(action).or_default() += 1;
                *self.errors.entry(class.clone()).or_default() += 1;
            }
        }
    }

    fn add(&mut self, other: PageTally) {
        for (action, n) in other.applied {
            *self.applied.entry(action).or_default() += n;
        }
        for (action, n) in other.failed {
            *self.failed.entry(action).or_default() += n;
        }
        for (class, n) in other.errors {
            *self.errors.entry(class).or_default() += n;
        }
    }
}

/// Runs one profile against its endpoints.
pub struct Engine<'a, S, M, T> {
    pub ledger: &'a Ledger,
    pub source: &'a S,
    pub transform: &'a M,
    pub target: &'a T,
}

fn key_matches(key: &str, item: &Item) -> bool {
    if let Some(id) = key.strip_prefix("id:") {
        return item.id == id;
    }
    let fields = item.body.as_ref().map(flatten).unwrap_or_default();
    match key.split_once(':') {
        Some(("email", addr)) => fields
            .get("email")
            .is_some_and(|e| e.eq_ignore_ascii_case(addr)),
        Some((name, value)) => fields.get(name).is_some_and(|v| v == value),
        None => false,
    }
}

fn is_active(item: &Item) -> bool {
    match &item.body {
        Some(ItemBody::Contact(c)) => c.active,
        _ => item.removed.is_none(),
    }
}

impl<S: Source, M: Transform, T: Target> Engine<'_, S, M, T> {
    /// Runs: recovery, planning, brakes, apply.
    pub async fn run(&self, spec: &RunSpec, run_id: &str) -> Result<RunReport, RunError> {
        let mut report = RunReport::default();
        if !spec.dry_run {
            report.recovered = self.recover(spec, run_id).await?;
        }
        let plan = self.plan(spec, run_id).await?;
        report.planned = plan.counts;
        report.pages = plan.pages.len() as u64;
        if plan.held.is_some() || spec.dry_run {
            report.held = plan.held;
            return Ok(report);
        }
        self.apply(spec, run_id, &plan, &mut report).await?;
        Ok(report)
    }

    /// Applies a plan page by page, adding to `report`.
    pub async fn apply(
        &self,
        spec: &RunSpec,
        run_id: &str,
        plan: &Plan,
        report: &mut RunReport,
    ) -> Result<(), RunError> {
        for page in &plan.pages {
            let tally = self.apply_page(spec, run_id, page).await?;
            report.applied += tally.applied_total();
            report.failed += tally.failed_total();
        }
        self.finish(spec, plan, report.applied > 0).await
    }

    /// What a run stores once every page of its plan is applied: where the
    /// target's change feed continues, and when a full reconcile ended.
    ///
    /// A run that wrote to the target reads the feed on past its own writes:
    /// when all it finds there are their echoes (the target as read back), the
    /// cursor moves past them, so the next run without changes costs one feed
    /// round. When someone else changed a linked item meanwhile, the cursor
    /// stays where planning read it, and the next run sees that change.
    pub async fn finish(&self, spec: &RunSpec, plan: &Plan, wrote: bool) -> Result<(), RunError> {
        if let Some(cursor) = &plan.target_cursor {
            let mut keep = cursor.clone();
            if wrote {
                let (changed, after) = self.read_feed(spec, cursor.clone()).await?;
                if self
                    .drifted_links(spec, &changed, &HashSet::new())
                    .await?
                    .is_empty()
                {
                    keep = after;
                }
            }
            self.ledger
                .set_cursor(&spec.profile_id, &spec.target_feed(), keep.as_deref())
                .await?;
        }
        self.ledger
            .drop_relayed(&spec.profile_id, &plan.relayed)
            .await?;
        if plan.full {
            self.ledger.full_reconcile_done(&spec.profile_id).await?;
        }
        Ok(())
    }

    /// Checks a stored plan against the target as it is now: an item a
    /// planned write addresses must still hold the values the plan diffed
    /// against, and nothing may have appeared under a planned create's match
    /// keys. Returns one line per conflict; empty = safe to apply.
    pub async fn verify(&self, spec: &RunSpec, plan: &Plan) -> Result<Vec<String>, RunError> {
        let ops: Vec<&PlannedOp> = plan
            .pages
            .iter()
            .flat_map(|p| &p.ops)
            .filter(|op| op.action.writes())
            .collect();
        let mut conflicts = Vec::new();
        let ids: Vec<String> = ops
            .iter()
            .filter_map(|op| op.target_id.as_ref().map(|t| format!("id:{t}")))
            .collect();
        let mut current: HashMap<String, Item> = HashMap::new();
        for chunk in ids.chunks(spec.page_size.max(1) as usize) {
            for item in self
                .target
                .lookup(&spec.target_scope, chunk.to_vec())
                .await
                .map_err(endpoint("target lookup"))?
            {
                current.insert(item.id.clone(), item);
            }
        }
        let keys: Vec<String> = ops
            .iter()
            .filter(|op| op.action == Action::Create)
            .flat_map(|op| op.match_keys.iter().cloned())
            .collect();
        let mut appeared: Vec<Item> = Vec::new();
        for chunk in keys.chunks(spec.page_size.max(1) as usize) {
            appeared.extend(
                self.target
                    .lookup(&spec.target_scope, chunk.to_vec())
                    .await
                    .map_err(endpoint("target lookup"))?,
            );
        }
        for op in ops {
            match (&op.target_id, op.action) {
                (_, Action::Create) => {
                    if let Some(found) = appeared
                        .iter()
                        .find(|i| op.match_keys.iter().any(|k| key_matches(k, i)))
                    {
                        conflicts.push(format!(
                            "{}: a target item {} now exists under its match keys; the plan would create a duplicate",
                            op.source_id, found.id
                        ));
                    }
                }
                (Some(target_id), _) => match current.get(target_id) {
                    None => {
                        conflicts.push(format!("{}: target item {target_id} is gone", op.source_id))
                    }
                    Some(item) => {
                        let fields = item.body.as_ref().map(flatten).unwrap_or_default();
                        for change in &op.changes {
                            let now = fields.get(&change.field).filter(|v| !v.trim().is_empty());
                            let was = change.before.as_ref().filter(|v| !v.trim().is_empty());
                            if now != was {
                                conflicts.push(format!(
                                    "{}: field {} of target item {target_id} is now {:?}, the plan expected {:?}",
                                    op.source_id, change.field, now, was
                                ));
                            }
                        }
                    }
                },
                (None, _) => {}
            }
        }
        Ok(conflicts)
    }

    /// Closes ops a dead run left planned: a create that reached the target is
    /// found by its match keys and linked, so it is never created twice.
    pub async fn recover(&self, spec: &RunSpec, run_id: &str) -> Result<u64, RunError> {
        let mut recovered = 0;
        for u in self.ledger.unfinished(&spec.profile_id).await? {
            let mut found = None;
            if u.action == Action::Create && !u.match_keys.is_empty() {
                let items = self
                    .target
                    .lookup(&spec.target_scope, u.match_keys.clone())
                    .await
                    .map_err(endpoint("target lookup"))?;
                found = items
                    .into_iter()
                    .find(|i| u.match_keys.iter().any(|k| key_matches(k, i)))
                    .map(|i| i.id);
            } else if let Some(target_id) = &u.target_id {
                // The write may or may not have landed: learn what the target
                // holds now, so the re-plan diffs against the truth, not the link.
                let items = self
                    .target
                    .lookup(&spec.target_scope, vec![format!("id:{target_id}")])
                    .await
                    .map_err(endpoint("target lookup"))?;
                if let Some(item) = items.iter().find(|i| &i.id == target_id) {
                    let fields = item.body.as_ref().map(flatten).unwrap_or_default();
                    self.ledger
                        .refresh_link(&spec.profile_id, &u.source_id, &fields, is_active(item))
                        .await?;
                }
            }
            recovered += found.is_some() as u64;
            self.ledger
                .close_unfinished(run_id, &spec.profile_id, &u, found.as_deref())
                .await?;
        }
        Ok(recovered)
    }

    /// Pulls every page from the stored cursor and plans it; quarantined items
    /// are looked up again and re-planned; a full pass also plans removals
    /// for linked items it did not see.
    pub async fn plan(&self, spec: &RunSpec, run_id: &str) -> Result<Plan, RunError> {
        let mut plan = Plan::default();
        let (mut cursor, stored_pass) = if spec.from_start {
            (None, None)
        } else {
            self.ledger
                .cursor(&spec.profile_id, &spec.source_scope)
                .await?
        };
        let started_fresh = cursor.is_none();
        let mut pass: Option<String> = None;
        let mut seen: HashSet<String> = HashSet::new();
        // Series whose occurrences this run brought (`expanded_series`).
        let mut families: BTreeSet<String> = BTreeSet::new();
        let mut full_pass = true;
        let mut op_seq = 0u64;
        let mut next_op = || {
            op_seq += 1;
            format!("{run_id}-{op_seq}")
        };

        loop {
            let page = self
                .source
                .pull(spec.source_read(), cursor.clone(), spec.page_size)
                .await
                .map_err(endpoint("source pull"))?;
            full_pass &= page.full;
            if page.full && pass.is_none() {
                // A pass resumed from a stored cursor keeps its id, so the ids
                // its earlier pages saw (marked on the links) still count.
                pass = Some(match (&stored_pass, started_fresh) {
                    (Some(p), false) => p.clone(),
                    _ => run_id.to_owned(),
                });
            }
            let page_seen: Vec<String> = page.items.iter().map(|i| i.id.clone()).collect();
            seen.extend(page_seen.iter().cloned());
            let mut items = self.without_written_by(spec, page.items).await?;
            if spec.rules.expanded_series {
                // A series that left the window comes as its own id, out of scope.
                families.extend(
                    items
                        .iter()
                        .filter_map(|i| match (i.removed, series_of(&i.id)) {
                            (None, series) => series,
                            (Some(Removal::OutOfScope), None) => Some(i.id.as_str()),
                            _ => None,
                        })
                        .map(str::to_owned),
                );
                self.remove_members_of_removed(spec, &mut items).await?;
            }
            let versions = versions_of(&items);
            // An empty page (a delta round with nothing new) costs no mapper call.
            let intents = if items.is_empty() {
                Vec::new()
            } else {
                self.transform
                    .map(items)
                    .await
                    .map_err(endpoint("mapper"))?
            };
            let ops = self
                .plan_intents(spec, intents, &versions, &mut next_op)
                .await?;
            cursor = page.cursor.clone();
            plan.pages.push(PagePlan {
                ops,
                cursor: Some(page.cursor),
                pass: pass.clone().filter(|_| page.full),
                more_in_pass: page.full && page.more,
                seen: page_seen,
            });
            if !page.more {
                break;
            }
        }

        // The target's own changes: a linked item edited, deactivated or
        // deleted there by someone else is re-evaluated against its source.
        let drifted = self.target_drift(spec, &seen, &mut plan).await?;
        if !drifted.is_empty() {
            let (ops, found) = self.replan_by_id(spec, &drifted, &mut next_op).await?;
            seen.extend(found);
            plan.pages.push(PagePlan {
                ops,
                ..PagePlan::default()
            });
        }

        // Quarantined items the pass did not bring again are looked up and retried.
        let quarantine = self.ledger.quarantine_retried(&spec.profile_id).await?;
        let quarantined: Vec<String> = quarantine
            .iter()
            .filter(|(id, retried)| *retried && !seen.contains(id))
            .map(|(id, _)| id.clone())
            .collect();
        let in_quarantine: HashSet<String> = quarantine.into_iter().map(|(id, _)| id).collect();
        if !quarantined.is_empty() {
            // Quarantined items the source no longer has are removals.
            let (ops, _) = self.replan_by_id(spec, &quarantined, &mut next_op).await?;
            plan.pages.push(PagePlan {
                ops,
                ..PagePlan::default()
            });
        }

        // A changed series brings all of its occurrences: a linked one it
        // did not bring is looked up, and removed when gone. (A full pass
        // finds them among the unseen below.)
        if !full_pass && !families.is_empty() {
            let (ops, checked) = self
                .members_not_brought(spec, &families, &seen, &mut next_op)
                .await?;
            seen.extend(checked);
            if !ops.is_empty() {
                // The cursor commits with these removals, as with the unseen below.
                let (cursor, page_seen) = plan.take_last_cursor();
                plan.pages.push(PagePlan {
                    ops,
                    cursor,
                    seen: page_seen,
                    ..PagePlan::default()
                });
            }
        }

        plan.full = full_pass;
        if let (true, Some(pass)) = (full_pass, &pass) {
            let mut unseen: Vec<String> = self
                .ledger
                .unseen_in_pass(&spec.profile_id, pass)
                .await?
                .into_iter()
                .filter(|id| !seen.contains(id))
                .collect();
            if spec.rules.confirm_unseen && !unseen.is_empty() {
                let still_there = self.still_in_source(spec, &unseen).await?;
                unseen.retain(|id| !still_there.contains(id));
                // Seen in this pass after all: not looked up again until they change.
                if let Some(last) = plan.pages.iter_mut().rev().find(|p| p.cursor.is_some()) {
                    last.seen.extend(still_there);
                }
            }
            let missing: Vec<Intent> = unseen.iter().map(|id| removal_intent(id)).collect();
            if !missing.is_empty() {
                let ops = self
                    .plan_intents(spec, missing, &HashMap::new(), &mut next_op)
                    .await?;
                // The pass ends only once its removals are applied: the last
                // source page's cursor (and the ids it saw) commit with them. A run
                // that dies before re-pulls that page and finds the removals again.
                let (cursor, seen) = plan.take_last_cursor();
                plan.pages.push(PagePlan {
                    ops,
                    cursor,
                    pass: Some(pass.clone()),
                    more_in_pass: false,
                    seen,
                });
            }
        }

        // An item can come twice in one pass (delta rounds may repeat it):
        // keep only its last op, so nothing is created twice.
        let mut planned: HashSet<String> = HashSet::new();
        for page in plan.pages.iter_mut().rev() {
            page.ops.reverse();
            page.ops.retain(|op| planned.insert(op.source_id.clone()));
            page.ops.reverse();
        }
        for page in &mut plan.pages {
            for op in &mut page.ops {
                // Success clears the item's quarantine row, however it was planned.
                op.retry = in_quarantine.contains(&op.source_id);
                plan.counts.add(op.action);
            }
        }
        // The brakes only matter when something is removed; counting links is not free.
        if plan.counts.removals() > 0 {
            let linked = self.ledger.linked_count(&spec.profile_id).await?;
            let counts = if spec.rules.expanded_series {
                series_as_one(&plan)
            } else {
                plan.counts
            };
            plan.held = brakes_hold(&counts, linked, &spec.rules);
        }
        Ok(plan)
    }

    /// Reads source items by id and plans them again; ids the source no
    /// longer has become removals. Answers the ops and the ids it found.
    async fn replan_by_id(
        &self,
        spec: &RunSpec,
        ids: &[String],
        next_op: &mut impl FnMut() -> String,
    ) -> Result<(Vec<PlannedOp>, HashSet<String>), RunError> {
        let items = self
            .source
            .lookup(spec.source_read(), ids.to_vec())
            .await
            .map_err(endpoint("source lookup"))?;
        let found: HashSet<String> = items.iter().map(|i| i.id.clone()).collect();
        let versions = versions_of(&items);
        let mut intents = self
            .transform
            .map(items)
            .await
            .map_err(endpoint("mapper"))?;
        intents.extend(
            ids.iter()
                .filter(|id| !found.contains(*id))
                .map(|id| removal_intent(id)),
        );
        let ops = self.plan_intents(spec, intents, &versions, next_op).await?;
        Ok((ops, found))
    }

    /// Reads the target's change feed from its stored cursor and answers the
    /// source ids (not `seen` this run) whose linked target item someone
    /// else changed. The feed's next cursor goes into `plan`. With
    /// `feed_relayed` the changes are the ones relayed to this profile, and
    /// the plan remembers them to drop once applied.
    async fn target_drift(
        &self,
        spec: &RunSpec,
        seen: &HashSet<String>,
        plan: &mut Plan,
    ) -> Result<Vec<String>, RunError> {
        if spec.rules.feed_relayed {
            let mut changed = Vec::new();
            for (item, text) in self.ledger.relayed(&spec.profile_id).await? {
                plan.relayed.push((item.id.clone(), text));
                changed.push(item);
            }
            return self.drifted_links(spec, &changed, seen).await;
        }
        let (cursor, _) = self
            .ledger
            .cursor(&spec.profile_id, &spec.target_feed())
            .await?;
        let (changed, cursor) = self.read_feed(spec, cursor).await?;
        plan.target_cursor = Some(cursor);
        self.drifted_links(spec, &changed, seen).await
    }

    /// Reads the target's change feed from `cursor` to its end: the items and
    /// the cursor to continue from.
    async fn read_feed(
        &self,
        spec: &RunSpec,
        mut cursor: Option<String>,
    ) -> Result<(Vec<Item>, Option<String>), RunError> {
        let mut changed: Vec<Item> = Vec::new();
        loop {
            let page = self
                .target
                .changes(&spec.target_scope, cursor.clone(), spec.page_size)
                .await
                .map_err(endpoint("target changes"))?;
            changed.extend(page.items);
            cursor = page.cursor;
            if !page.more {
                return Ok((changed, cursor));
            }
        }
    }

    /// The source ids (not in `skip`) whose linked target item, among
    /// `changed`, differs from what the link last read: changed by someone else.
    async fn drifted_links(
        &self,
        spec: &RunSpec,
        changed: &[Item],
        skip: &HashSet<String>,
    ) -> Result<Vec<String>, RunError> {
        if changed.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = changed.iter().map(|i| i.id.clone()).collect();
        let links = self.ledger.links_by_target(&spec.profile_id, &ids).await?;
        // An item that only left the target's window (a calendar's past days)
        // was not changed by anyone: it is not drift.
        let by_target: HashMap<&str, &Item> = changed
            .iter()
            .filter(|i| i.removed != Some(Removal::OutOfScope))
            .map(|i| (i.id.as_str(), i))
            .collect();
        let mut drifted: Vec<String> = links
            .iter()
            .filter(|(source_id, _)| !skip.contains(*source_id))
            .filter(|(_, link)| {
                by_target
                    .get(link.target_id.as_str())
                    .is_some_and(|item| link.drifted(&snapshot(item)))
            })
            .map(|(source_id, _)| source_id.clone())
            .collect();
        drifted.sort();
        Ok(drifted)
    }

    async fn plan_intents(
        &self,
        spec: &RunSpec,
        intents: Vec<Intent>,
        versions: &HashMap<String, String>,
        next_op: &mut impl FnMut() -> String,
    ) -> Result<Vec<PlannedOp>, RunError> {
        let ids: Vec<String> = intents.iter().map(|i| i.source_id.clone()).collect();
        let links = self.ledger.links(&spec.profile_id, &ids).await?;
        let mut conflicts: HashMap<String, BTreeMap<String, Option<Side>>> = if spec.rules.two_way()
        {
            self.ledger.conflicts(&spec.profile_id, &ids).await?
        } else {
            HashMap::new()
        };
        let keys: Vec<String> = if spec.rules.match_existing {
            intents
                .iter()
                .filter(|i| i.action == IntentAction::Upsert && !links.contains_key(&i.source_id))
                .flat_map(|i| i.match_keys.iter().cloned())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect()
        } else {
            Vec::new()
        };
        // Linked target items are read as they are now (one lookup with the
        // match keys): planning diffs against the target, not the link's memory.
        let linked_ids: HashSet<&str> = intents
            .iter()
            .filter_map(|i| links.get(&i.source_id))
            .map(|l| l.target_id.as_str())
            .collect();
        let mut keys = keys;
        keys.extend(linked_ids.iter().map(|id| format!("id:{id}")));
        let found = if keys.is_empty() {
            Vec::new()
        } else {
            self.target
                .lookup(&spec.target_scope, keys)
                .await
                .map_err(endpoint("target lookup"))?
        };
        let (linked, candidates): (Vec<Item>, Vec<Item>) = found
            .into_iter()
            .partition(|i| linked_ids.contains(i.id.as_str()));
        let now: HashMap<String, TargetNow> = linked_ids
            .iter()
            .map(|id| {
                let state = match linked.iter().find(|i| i.id == *id) {
                    Some(item) => TargetNow::Present(snapshot(item)),
                    None => TargetNow::Gone,
                };
                (id.to_string(), state)
            })
            .collect();
        // A target item matched once in this page is not matched again (no two sources share it).
        let mut taken: HashSet<String> = links.values().map(|l| l.target_id.clone()).collect();
        let mut ops = Vec::with_capacity(intents.len());
        for intent in &intents {
            let link = links.get(&intent.source_id);
            let matched = if link.is_none() && intent.action == IntentAction::Upsert {
                candidates
                    .iter()
                    .find(|c| {
                        !taken.contains(&c.id)
                            && intent.match_keys.iter().any(|k| key_matches(k, c))
                    })
                    .map(|c| TargetMatch {
                        target_id: c.id.clone(),
                        fields: c.body.as_ref().map(flatten).unwrap_or_default(),
                        active: is_active(c),
                    })
            } else {
                None
            };
            if let Some(m) = &matched {
                taken.insert(m.target_id.clone());
            }
            let pair = PairContext {
                source_version: versions.get(&intent.source_id).cloned(),
                conflicts: conflicts.remove(&intent.source_id).unwrap_or_default(),
            };
            ops.push(plan_intent(
                next_op(),
                intent,
                link,
                link.and_then(|l| now.get(&l.target_id)),
                matched.as_ref(),
                &spec.rules,
                &pair,
            ));
        }
        Ok(ops)
    }

    /// Applies one page: journal the writes as planned, push, commit outcomes
    /// (and the page's cursor after the last batch) in one transaction per
    /// batch. With `push_concurrency` > 1 the page is split into that many
    /// batches pushed at once, and the cursor commits on its own once every
    /// batch has committed: it never passes an item not applied or recorded.
    /// Answers what became of the page's items.
    pub async fn apply_page(
        &self,
        spec: &RunSpec,
        run_id: &str,
        page: &PagePlan,
    ) -> Result<PageTally, RunError> {
        let page_end = page.cursor.as_ref().map(|c| PageEnd {
            scope: spec.source_scope.as_str(),
            cursor: c.as_deref(),
            pass: page.pass.as_deref(),
            more_in_pass: page.more_in_pass,
            seen: &page.seen,
        });
        let concurrency = spec.push_concurrency.max(1);
        let page_size = spec.page_size.max(1) as usize;
        if concurrency > 1 && page.ops.len() > 1 {
            use futures::stream::{self, StreamExt};
            let size = page.ops.len().div_ceil(concurrency).clamp(1, page_size);
            // Collected first: a lazy `map` closure here makes the future
            // fail the `Send` check the scheduler's spawn needs.
            let mut pushes = Vec::new();
            for batch in page.ops.chunks(size) {
                pushes.push(self.apply_batch(spec, run_id, batch, None));
            }
            let results: Vec<Result<PageTally, RunError>> = stream::iter(pushes)
                .buffer_unordered(concurrency)
                .collect()
                .await;
            let mut tally = PageTally::default();
            for r in results {
                tally.add(r?);
            }
            if page_end.is_some() {
                self.ledger
                    .commit_batch(run_id, &spec.profile_id, &[], page_end)
                    .await?;
            }
            return Ok(tally);
        }
        let batches: Vec<&[PlannedOp]> = if page.ops.is_empty() {
            vec![&[]]
        } else {
            page.ops.chunks(page_size).collect()
        };
        let last = batches.len() - 1;
        let mut tally = PageTally::default();
        for (i, batch) in batches.into_iter().enumerate() {
            let end = if i == last { page_end } else { None };
            tally.add(self.apply_batch(spec, run_id, batch, end).await?);
        }
        Ok(tally)
    }

    /// Journals one batch's writes as planned, pushes them (waiting out and
    /// resending throttled or transient items), and commits the outcomes,
    /// with `page_end` if given, in one transaction.
    async fn apply_batch(
        &self,
        spec: &RunSpec,
        run_id: &str,
        batch: &[PlannedOp],
        page_end: Option<PageEnd<'_>>,
    ) -> Result<PageTally, RunError> {
        let mut tally = PageTally::default();
        let writes: Vec<&PlannedOp> = batch.iter().filter(|op| op.action.writes()).collect();
        if !writes.is_empty() {
            self.ledger
                .record_planned(run_id, &spec.profile_id, &writes)
                .await?;
        }
        let mut results: HashMap<String, Applied> = HashMap::new();
        let mut to_send: Vec<WriteOp> = writes.iter().map(|op| write_op(op)).collect();
        let mut attempt = 0;
        while !to_send.is_empty() {
            let answers = self
                .target
                .push(&spec.target_scope, to_send.clone())
                .await
                .map_err(endpoint("target push"))?;
            let mut again = Vec::new();
            let mut wait: Option<std::time::Duration> = None;
            for answer in answers {
                match answer.outcome {
                    Ok(ok) => {
                        results.insert(
                            answer.op_id,
                            Applied::Ok {
                                target_id: ok.target_id,
                                seen: None,
                            },
                        );
                    }
                    Err(e) => {
                        // Throttled or transient items did not land: wait, send them again.
                        match spec.retry.wait(attempt, &EndpointError::Plugin(e.clone())) {
                            Some(w) => {
                                wait = Some(wait.map_or(w, |cur| cur.max(w)));
                                if let Some(op) = to_send.iter().find(|o| o.op_id == answer.op_id) {
                                    again.push(op.clone());
                                }
                            }
                            None => {
                                results.insert(
                                    answer.op_id,
                                    Applied::Failed {
                                        class: e.class().to_owned(),
                                        message: e.describe(),
                                    },
                                );
                            }
                        }
                    }
                }
            }
            if let Some(w) = wait {
                tracing::info!(profile = %spec.profile_id, items = again.len(), wait_ms = w.as_millis() as u64, "target asked to retry items");
                tokio::time::sleep(w).await;
            }
            to_send = again;
            attempt += 1;
        }
        self.write_back(spec, batch, &mut results).await?;
        let seen = self.read_back(spec, batch, &results).await;
        let outcomes: Vec<(&PlannedOp, Applied)> = batch
            .iter()
            .filter(|op| op.records() || op.retry)
            .map(|op| {
                let outcome = if let Some(Applied::Failed { class, message }) =
                    results.remove(&back_op_id(op))
                {
                    Applied::Failed { class, message }
                } else if op.action.writes() {
                    match results.remove(&op.op_id) {
                        Some(Applied::Ok { target_id, .. }) => Applied::Ok {
                            seen: seen.get(&target_id).cloned(),
                            target_id,
                        },
                        Some(failed) => failed,
                        None => Applied::Failed {
                            class: "remote".into(),
                            message: "the target connector returned no result for this item".into(),
                        },
                    }
                } else {
                    Applied::Ok {
                        target_id: op.target_id.clone().unwrap_or_default(),
                        seen: op.target_seen.clone(),
                    }
                };
                tally.count(op.action, &outcome);
                (op, outcome)
            })
            .collect();
        self.ledger
            .commit_batch(run_id, &spec.profile_id, &outcomes, page_end)
            .await?;
        Ok(tally)
    }
}

impl<S: Source, M: Transform, T: Target> Engine<'_, S, M, T> {
    /// Which of `ids` the source still has (looked up by id): items a
    /// windowed full pass did not bring because they left the window.
    async fn still_in_source(
        &self,
        spec: &RunSpec,
        ids: &[String],
    ) -> Result<HashSet<String>, RunError> {
        let found = self
            .source
            .lookup(spec.source_read(), ids.to_vec())
            .await
            .map_err(endpoint("source lookup"))?;
        let asked: HashSet<&String> = ids.iter().collect();
        Ok(found
            .into_iter()
            .filter(|i| i.removed.is_none() && asked.contains(&i.id))
            .map(|i| i.id)
            .collect())
    }

    /// Adds a removal for every linked occurrence of a series the page
    /// removes (`expanded_series`): the source reports the series' id, the
    /// links hold its occurrences' ids.
    async fn remove_members_of_removed(
        &self,
        spec: &RunSpec,
        items: &mut Vec<Item>,
    ) -> Result<(), RunError> {
        let parents: Vec<String> = items
            .iter()
            .filter(|i| i.removed == Some(Removal::Deleted) && series_of(&i.id).is_none())
            .map(|i| i.id.clone())
            .collect();
        for parent in parents {
            for member in self
                .ledger
                .linked_members(&spec.profile_id, &parent)
                .await?
            {
                if !items.iter().any(|i| i.id == member) {
                    items.push(Item {
                        id: member,
                        version: None,
                        removed: Some(Removal::Deleted),
                        body: None,
                    });
                }
            }
        }
        Ok(())
    }

    /// Plans removals of the linked occurrences of `families` the run did not
    /// bring and the source no longer has; answers the ops and every linked
    /// occurrence it checked.
    async fn members_not_brought(
        &self,
        spec: &RunSpec,
        families: &BTreeSet<String>,
        seen: &HashSet<String>,
        next_op: &mut impl FnMut() -> String,
    ) -> Result<(Vec<PlannedOp>, Vec<String>), RunError> {
        let mut missing = Vec::new();
        for family in families {
            missing.extend(
                self.ledger
                    .linked_members(&spec.profile_id, family)
                    .await?
                    .into_iter()
                    .filter(|id| !seen.contains(id)),
            );
        }
        if missing.is_empty() {
            return Ok((Vec::new(), missing));
        }
        let still_there = self.still_in_source(spec, &missing).await?;
        let gone: Vec<Intent> = missing
            .iter()
            .filter(|id| !still_there.contains(*id))
            .map(|id| removal_intent(id))
            .collect();
        let ops = self
            .plan_intents(spec, gone, &HashMap::new(), next_op)
            .await?;
        Ok((ops, missing))
    }

    /// The items of a page that are not the writes of a profile named in
    /// `written_by` (the reverse flow's own items stay with their link).
    /// With `relay_written_by` the items left out are relayed to the profile
    /// that owns each, as its target's changes.
    async fn without_written_by(
        &self,
        spec: &RunSpec,
        items: Vec<Item>,
    ) -> Result<Vec<Item>, RunError> {
        if spec.rules.written_by.is_empty() || items.is_empty() {
            return Ok(items);
        }
        let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
        let owners = self.ledger.owners_of(&spec.rules.written_by, &ids).await?;
        if owners.is_empty() {
            return Ok(items);
        }
        tracing::debug!(profile = %spec.profile_id, items = owners.len(), "left to the profiles that wrote them");
        let mut kept = Vec::with_capacity(items.len() - owners.len().min(items.len()));
        let mut relays: BTreeMap<&str, Vec<Item>> = BTreeMap::new();
        for item in items {
            match owners.get(&item.id) {
                None => kept.push(item),
                // Relayed only when this source is read exactly as the owner
                // reads its target (no extra source fields).
                Some(owner) if spec.rules.relay_written_by && spec.source_read_scope.is_none() => {
                    relays.entry(owner.as_str()).or_default().push(item)
                }
                Some(_) => {}
            }
        }
        for (owner, items) in relays {
            self.ledger.relay(owner, &items).await?;
        }
        Ok(kept)
    }

    /// With `back_through_mapper`, turns each write-back's body (the target
    /// item as read) into the source's model through the mapper; an op the
    /// mapper gives no body for fails rather than writing the other model.
    async fn back_bodies(
        &self,
        spec: &RunSpec,
        ops: &mut Vec<WriteOp>,
        results: &mut HashMap<String, Applied>,
    ) -> Result<(), RunError> {
        if !spec.rules.back_through_mapper || ops.is_empty() {
            return Ok(());
        }
        // The op id names each item, so every answer finds its op.
        let items: Vec<Item> = ops
            .iter()
            .map(|op| Item {
                id: op.op_id.clone(),
                version: None,
                removed: None,
                body: op.body.clone(),
            })
            .collect();
        let intents = self
            .transform
            .map(items)
            .await
            .map_err(endpoint("mapper (write-back)"))?;
        let mut mapped: HashMap<String, ItemBody> = intents
            .into_iter()
            .filter(|i| i.action == IntentAction::Upsert)
            .filter_map(|i| Some((i.source_id, i.body?)))
            .collect();
        ops.retain_mut(|op| match mapped.remove(&op.op_id) {
            Some(body) => {
                op.body = Some(body);
                true
            }
            None => {
                results.insert(
                    op.op_id.clone(),
                    Applied::Failed {
                        class: "invalid".into(),
                        message: "the mapper gave no source item for this write-back (back_through_mapper is on): check that it maps the target's items back".into(),
                    },
                );
                false
            }
        });
        Ok(())
    }

    /// Writes the two-way fields a batch's ops carry back to the source, for
    /// ops whose target write (if any) succeeded. A failed back write fails
    /// its op (recorded under [`back_op_id`] in `results`).
    async fn write_back(
        &self,
        spec: &RunSpec,
        batch: &[PlannedOp],
        results: &mut HashMap<String, Applied>,
    ) -> Result<(), RunError> {
        let ops: Vec<WriteOp> = batch
            .iter()
            .filter(|op| !op.back.is_empty())
            .filter(|op| {
                !op.action.writes() || matches!(results.get(&op.op_id), Some(Applied::Ok { .. }))
            })
            .map(|op| WriteOp {
                op_id: back_op_id(op),
                action: WriteAction::Update,
                target_id: Some(op.source_id.clone()),
                body: op.back_body.clone(),
                fields: op.back.iter().map(|c| c.field.clone()).collect(),
            })
            .collect();
        let mut ops = ops;
        self.back_bodies(spec, &mut ops, results).await?;
        if ops.is_empty() {
            return Ok(());
        }
        let sent: HashSet<String> = ops.iter().map(|o| o.op_id.clone()).collect();
        let answers = self
            .source
            .push(&spec.source_scope, ops)
            .await
            .map_err(endpoint("source push"))?;
        let mut answered = HashSet::new();
        for answer in answers {
            answered.insert(answer.op_id.clone());
            if let Err(e) = answer.outcome {
                results.insert(
                    answer.op_id,
                    Applied::Failed {
                        class: e.class().to_owned(),
                        message: format!("writing back to the source: {}", e.describe()),
                    },
                );
            }
        }
        for missing in sent.difference(&answered) {
            results.insert(
                missing.clone(),
                Applied::Failed {
                    class: "remote".into(),
                    message: "the source connector returned no result for this write-back".into(),
                },
            );
        }
        Ok(())
    }

    /// Reads the items a batch wrote back from the target, so the links
    /// remember the target's own form of each write (its echo in the change
    /// feed is then not taken for an edit). A failed read only costs that
    /// knowledge: the next read is compared with what was written.
    async fn read_back(
        &self,
        spec: &RunSpec,
        batch: &[PlannedOp],
        results: &HashMap<String, Applied>,
    ) -> HashMap<String, TargetSnapshot> {
        let keys: Vec<String> = batch
            .iter()
            .filter(|op| op.action.writes() && op.action != Action::Delete)
            .filter_map(|op| match results.get(&op.op_id) {
                Some(Applied::Ok { target_id, .. }) => Some(format!("id:{target_id}")),
                _ => None,
            })
            .collect();
        if keys.is_empty() {
            return HashMap::new();
        }
        match self.target.lookup(&spec.target_scope, keys).await {
            Ok(items) => items.iter().map(|i| (i.id.clone(), snapshot(i))).collect(),
            Err(e) => {
                tracing::warn!(profile = %spec.profile_id, error = %e, "could not read written items back; their next read is compared with what was written");
                HashMap::new()
            }
        }
    }
}

/// The modification times the items carry, by id.
fn versions_of(items: &[Item]) -> HashMap<String, String> {
    items
        .iter()
        .filter_map(|i| i.version.clone().map(|v| (i.id.clone(), v)))
        .collect()
}

/// A target item as a snapshot of its fields and state.
fn snapshot(item: &Item) -> TargetSnapshot {
    TargetSnapshot {
        fields: item.body.as_ref().map(flatten).unwrap_or_default(),
        active: is_active(item),
        version: item.version.clone(),
        body: item.body.clone().map(Box::new),
    }
}

/// The op id of an op's write back to the source.
fn back_op_id(op: &PlannedOp) -> String {
    format!("{}-back", op.op_id)
}

/// A plan's counts for the brakes when a series' occurrences are items of their own
/// (`expanded_series`): the removed occurrences of one series count as one removal, so a
/// series deleted in the calendar is one change, not one per occurrence.
fn series_as_one(plan: &Plan) -> PlanCounts {
    let mut counts = plan.counts;
    let removals: Vec<&PlannedOp> = plan
        .pages
        .iter()
        .flat_map(|p| &p.ops)
        .filter(|op| matches!(op.action, Action::Delete | Action::Deactivate))
        .collect();
    let groups: HashSet<&str> = removals
        .iter()
        .map(|op| series_of(&op.source_id).unwrap_or(&op.source_id))
        .collect();
    let extra = (removals.len() - groups.len()) as u64;
    let from_deletes = extra.min(counts.delete);
    counts.delete -= from_deletes;
    counts.deactivate -= (extra - from_deletes).min(counts.deactivate);
    counts
}

/// The series an occurrence id `<series id>#<YYYY-MM-DD>` belongs to.
fn series_of(id: &str) -> Option<&str> {
    let (series, date) = id.rsplit_once('#')?;
    let b = date.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    (shaped && !series.is_empty()).then_some(series)
}

fn removal_intent(source_id: &str) -> Intent {
    Intent {
        source_id: source_id.to_owned(),
        action: IntentAction::Remove,
        body: None,
        match_keys: Vec::new(),
        route: Vec::new(),
        rule: "engine".into(),
        reason: "not in the source any more".into(),
        policy: WritePolicy::default(),
    }
}

fn write_op(op: &PlannedOp) -> WriteOp {
    WriteOp {
        op_id: op.op_id.clone(),
        action: match op.action {
            Action::Create => WriteAction::Create,
            Action::Update => WriteAction::Update,
            Action::Deactivate => WriteAction::Deactivate,
            Action::Reactivate => WriteAction::Reactivate,
            Action::Delete => WriteAction::Delete,
            Action::Link | Action::Unlink | Action::WriteBack | Action::Noop => {
                unreachable!("not sent to the target")
            }
        },
        target_id: op.target_id.clone(),
        body: op.body.clone(),
        fields: op.changes.iter().map(|c| c.field.clone()).collect(),
    }
}
