//! Property test of the engine's core promise: whatever the source does,
//! whatever people do to the target by hand (edit, deactivate, delete),
//! wherever a run is killed and whichever items fail, a full reconcile and
//! the clean runs after it leave the target equal to the mapped source — no
//! duplicate, nothing lost, nothing removed that the profile does not own,
//! and no ping-pong (a settled profile's run writes nothing).
//!
//! Source and target here are in-memory endpoints (the connectors' wire
//! behaviour is tested against the simulators elsewhere); the store is real
//! SQLite and, when available, real PostgreSQL.

use crate::common;

use proptest::prelude::*;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use syncbridge::engine::fields::{flatten, FieldMap};
use syncbridge::engine::{
    EndpointError, Engine, FieldRules, Ledger, RunSpec, Source, Target, Transform,
};
use syncbridge::model::{Contact, Item, ItemBody, PluginError, Removal};
use syncbridge::model::{Intent, IntentAction};
use syncbridge::model::{Page, WriteAction, WriteOk, WriteOp, WriteResult};
use syncbridge::store::Store;

// ---- the source: full passes, then a paged delta log -------------------------

#[derive(Default)]
struct SourceState {
    live: BTreeMap<String, (String, String)>, // id -> (first name, title)
    log: Vec<String>,
}

#[derive(Default)]
struct MemSource(Mutex<SourceState>);

fn email(id: &str) -> String {
    format!("{id}@example.test")
}

fn contact_item(id: &str, rec: Option<&(String, String)>) -> Item {
    Item {
        id: id.into(),
        version: None,
        removed: rec.is_none().then_some(Removal::Deleted),
        body: rec.map(|(first, title)| {
            ItemBody::Contact(Contact {
                first_name: Some(first.clone()),
                last_name: Some(format!("Last-{id}")),
                display_name: None,
                title: Some(title.clone()),
                email: Some(email(id)),
                phone: None,
                mobile: None,
                company: None,
                site: None,
                contact_types: vec![],
                active: true,
                extra: vec![],
            })
        }),
    }
}

impl Source for MemSource {
    async fn pull(
        &self,
        _scope: &str,
        cursor: Option<String>,
        max: u32,
    ) -> Result<Page, EndpointError> {
        let s = self.0.lock().unwrap();
        let max = max as usize;
        // A full pass remembers where the change log stood when it began, and
        // ends with a delta cursor from there (as Graph's delta rounds do), so
        // changes made while it pages are delivered by the next round.
        let cursor = cursor.unwrap_or_else(|| format!("full::{}", s.log.len()));
        let mut parts = cursor.split(':');
        let kind = parts.next().unwrap();
        let after = parts.next().unwrap().to_owned();
        if kind == "full" {
            // Keyset paging (ids after the last one seen), like Autotask's nextPageUrl.
            let start: usize = parts.next().unwrap().parse().unwrap();
            let ids: Vec<&String> = s
                .live
                .keys()
                .filter(|id| after.is_empty() || id.as_str() > after.as_str())
                .collect();
            let end = max.min(ids.len());
            let items = ids[..end]
                .iter()
                .map(|id| contact_item(id, s.live.get(*id)))
                .collect();
            let more = end < ids.len();
            let cursor = if more {
                format!("full:{}:{start}", ids[end - 1])
            } else {
                format!("delta:{start}")
            };
            Ok(Page {
                items,
                cursor: Some(cursor),
                more,
                full: true,
            })
        } else {
            let n: usize = after.parse().unwrap();
            let end = (n + max).min(s.log.len());
            let items = s.log[n..end]
                .iter()
                .map(|id| contact_item(id, s.live.get(id)))
                .collect();
            Ok(Page {
                items,
                cursor: Some(format!("delta:{end}")),
                more: end < s.log.len(),
                full: false,
            })
        }
    }

    async fn lookup(&self, _scope: &str, ids: Vec<String>) -> Result<Vec<Item>, EndpointError> {
        let s = self.0.lock().unwrap();
        Ok(ids
            .iter()
            .filter_map(|id| s.live.get(id).map(|r| contact_item(id, Some(r))))
            .collect())
    }

    /// Two-way fields written back: the source records them as its own change.
    async fn push(
        &self,
        _scope: &str,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<WriteResult>, EndpointError> {
        let mut s = self.0.lock().unwrap();
        Ok(ops
            .into_iter()
            .map(|op| {
                let id = op.target_id.clone().unwrap_or_default();
                let fields = op.body.as_ref().map(flatten).unwrap_or_default();
                let outcome = match s.live.get_mut(&id) {
                    None => Err(PluginError::NotFound(id.clone())),
                    Some(rec) => {
                        for f in &op.fields {
                            match (f.as_str(), fields.get(f)) {
                                ("first_name", Some(v)) => rec.0 = v.clone(),
                                ("title", Some(v)) => rec.1 = v.clone(),
                                _ => {}
                            }
                        }
                        s.log.push(id.clone());
                        Ok(WriteOk {
                            target_id: id,
                            version: None,
                        })
                    }
                };
                WriteResult {
                    op_id: op.op_id,
                    outcome,
                }
            })
            .collect())
    }
}

/// Copies source items, appending the configured suffix to the title: the
/// stand-in for a mapper whose options an operator changes.
#[derive(Default)]
struct Echo {
    title_suffix: Mutex<String>,
}

impl Transform for Echo {
    async fn map(&self, items: Vec<Item>) -> Result<Vec<Intent>, EndpointError> {
        let suffix = self.title_suffix.lock().unwrap().clone();
        Ok(items
            .into_iter()
            .map(|mut i| {
                if let Some(ItemBody::Contact(c)) = &mut i.body {
                    c.title = c.title.take().map(|t| format!("{t}{suffix}"));
                }
                i
            })
            .map(|i| Intent {
                match_keys: vec![format!("email:{}", email(&i.id))],
                action: if i.removed.is_some() {
                    IntentAction::Remove
                } else {
                    IntentAction::Upsert
                },
                source_id: i.id,
                body: i.body,
                route: vec![],
                rule: "echo".into(),
                reason: "copy".into(),
                policy: Default::default(),
            })
            .collect())
    }
}

// ---- the target: applies writes, can fail items or die mid-batch -------------

#[derive(Debug, Clone)]
enum Fault {
    /// Apply the first `k` ops of the next push, then the process "dies".
    KillAfter(usize),
    /// The op at this index of the next push fails (transient); the rest apply.
    FailItem(usize),
}

#[derive(Default)]
struct TargetState {
    items: BTreeMap<String, (FieldMap, bool)>,
    next: u64,
    faults: VecDeque<Fault>,
    kills: u64,
    item_failures: u64,
    creates: u64,
    /// Writes received (creates, updates, (de)activations, deletes).
    writes: u64,
    /// Changes made "by hand" in the target.
    hand_edits: u64,
}

#[derive(Default)]
struct MemTarget(Mutex<TargetState>);

fn apply(t: &mut TargetState, op: &WriteOp) -> Result<String, PluginError> {
    t.writes += 1;
    let body = op.body.as_ref().map(flatten).unwrap_or_default();
    match op.action {
        WriteAction::Create => {
            t.next += 1;
            t.creates += 1;
            let id = format!("t{}", t.next);
            t.items.insert(id.clone(), (body, true));
            Ok(id)
        }
        _ => {
            let id = op.target_id.clone().expect("target id");
            let Some(entry) = t.items.get_mut(&id) else {
                return Err(PluginError::NotFound(id));
            };
            for f in &op.fields {
                match body.get(f) {
                    Some(v) => entry.0.insert(f.clone(), v.clone()),
                    None => entry.0.remove(f),
                };
            }
            match op.action {
                WriteAction::Deactivate => entry.1 = false,
                WriteAction::Reactivate => entry.1 = true,
                WriteAction::Delete => {
                    t.items.remove(&id);
                }
                _ => {}
            }
            Ok(id)
        }
    }
}

fn target_item(id: &str, fields: &BTreeMap<String, String>, active: bool) -> Item {
    Item {
        id: id.to_owned(),
        version: None,
        removed: None,
        body: Some(ItemBody::Contact(Contact {
            first_name: fields.get("first_name").cloned(),
            last_name: fields.get("last_name").cloned(),
            display_name: None,
            title: fields.get("title").cloned(),
            email: fields.get("email").cloned(),
            phone: None,
            mobile: None,
            company: None,
            site: None,
            contact_types: vec![],
            active,
            extra: vec![],
        })),
    }
}

impl Target for MemTarget {
    async fn lookup(&self, _scope: &str, keys: Vec<String>) -> Result<Vec<Item>, EndpointError> {
        let t = self.0.lock().unwrap();
        let mut out = vec![];
        for (id, (fields, active)) in &t.items {
            let hit = keys.iter().any(|k| {
                k.strip_prefix("email:")
                    .is_some_and(|e| fields.get("email").map(String::as_str) == Some(e))
                    || k.strip_prefix("id:") == Some(id.as_str())
            });
            if hit {
                out.push(target_item(id, fields, *active));
            }
        }
        Ok(out)
    }

    /// A service without a change feed: every read is a full read.
    async fn changes(
        &self,
        _scope: &str,
        _cursor: Option<String>,
        _max_items: u32,
    ) -> Result<Page, EndpointError> {
        let t = self.0.lock().unwrap();
        Ok(Page {
            items: t
                .items
                .iter()
                .map(|(id, (fields, active))| target_item(id, fields, *active))
                .collect(),
            cursor: None,
            more: false,
            full: true,
        })
    }

    async fn push(
        &self,
        _scope: &str,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<WriteResult>, EndpointError> {
        let mut t = self.0.lock().unwrap();
        let fault = t.faults.pop_front();
        if let Some(Fault::KillAfter(k)) = fault {
            for op in ops.iter().take(k) {
                let _ = apply(&mut t, op);
            }
            t.kills += 1;
            return Err(EndpointError::Interrupted(format!(
                "killed after {k} of {} writes",
                ops.len()
            )));
        }
        let mut results = vec![];
        for (i, op) in ops.iter().enumerate() {
            let outcome = if matches!(fault, Some(Fault::FailItem(j)) if j == i) {
                t.item_failures += 1;
                Err(PluginError::Transient("injected failure".into()))
            } else {
                apply(&mut t, op).map(|target_id| WriteOk {
                    target_id,
                    version: None,
                })
            };
            results.push(WriteResult {
                op_id: op.op_id.clone(),
                outcome,
            });
        }
        Ok(results)
    }
}

// ---- the property ------------------------------------------------------------

#[derive(Debug, Clone)]
enum Change {
    Add,
    Edit(usize, String),
    Delete(usize),
    /// A person renames a target item.
    TargetEdit(usize, String),
    /// A person deactivates a target item.
    TargetDeactivate(usize),
    /// A person deletes a target item.
    TargetDelete(usize),
    /// An operator changes the mapping (the title suffix) and saves the
    /// profile: the next run re-reads every source item, as a profile save
    /// that changes what runs write makes it do.
    Configure(String),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => Just(Change::Add),
        3 => (any::<usize>(), "[A-Z][a-z]{0,5}").prop_map(|(i, s)| Change::Edit(i, s)),
        2 => any::<usize>().prop_map(Change::Delete),
        2 => (any::<usize>(), "[A-Z][a-z]{0,5}").prop_map(|(i, s)| Change::TargetEdit(i, s)),
        1 => any::<usize>().prop_map(Change::TargetDeactivate),
        1 => any::<usize>().prop_map(Change::TargetDelete),
        1 => "( [a-z]{1,3})?".prop_map(Change::Configure),
    ]
}

/// Applies a change a person makes in the target; false when there is nothing to change.
fn by_hand(t: &mut TargetState, change: &Change) -> bool {
    let pick = |t: &TargetState, i: usize| {
        (!t.items.is_empty()).then(|| t.items.keys().nth(i % t.items.len()).unwrap().clone())
    };
    let done = match change {
        Change::TargetEdit(i, name) => pick(t, *i).map(|id| {
            t.items
                .get_mut(&id)
                .unwrap()
                .0
                .insert("first_name".into(), name.clone());
        }),
        Change::TargetDeactivate(i) => {
            pick(t, *i).map(|id| t.items.get_mut(&id).unwrap().1 = false)
        }
        Change::TargetDelete(i) => pick(t, *i).map(|id| {
            t.items.remove(&id);
        }),
        _ => None,
    };
    t.hand_edits += done.is_some() as u64;
    done.is_some()
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        (0usize..6).prop_map(Fault::KillAfter),
        (0usize..6).prop_map(Fault::FailItem)
    ]
}

#[derive(Debug, Clone)]
struct Round {
    changes: Vec<Change>,
    faults: Vec<Fault>,
}

fn round() -> impl Strategy<Value = Round> {
    (
        prop::collection::vec(change(), 0..6),
        prop::collection::vec(fault(), 0..3),
    )
        .prop_map(|(changes, faults)| Round { changes, faults })
}

/// What one property run injected, for the report.
#[derive(Default)]
struct Stats {
    cases: AtomicU64,
    runs: AtomicU64,
    kills: AtomicU64,
    item_failures: AtomicU64,
    hand_edits: AtomicU64,
    config_changes: AtomicU64,
}

async fn check_case(
    stats: &Stats,
    store: &Store,
    profile: &str,
    initial: usize,
    rounds: Vec<Round>,
    page_size: u32,
    two_way: bool,
) -> Result<(), TestCaseError> {
    let source = MemSource::default();
    let target = MemTarget::default();
    let ledger = Ledger::new(store.clone());
    let mut next_id = 0usize;
    let mut add = |s: &mut SourceState| {
        next_id += 1;
        let id = format!("s{next_id:03}");
        s.live
            .insert(id.clone(), (format!("First{next_id}"), "Engineer".into()));
        s.log.push(id);
    };
    {
        let mut s = source.0.lock().unwrap();
        for _ in 0..initial {
            add(&mut s);
        }
    }
    let mut rules = FieldRules {
        brakes: syncbridge::engine::rules::Brakes {
            max_removals: u64::MAX,
            max_removal_share: 1.0,
            share_from: 0,
        },
        ..FieldRules::default()
    };
    if two_way {
        // First names flow both ways (a target rename reaches the source);
        // when both sides renamed, the source wins, so every case settles.
        rules.direction.insert(
            "first_name".into(),
            syncbridge::engine::rules::Direction::Both,
        );
    }
    let spec = RunSpec {
        profile_id: profile.into(),
        source_scope: "contacts".into(),
        source_read_scope: None,
        target_scope: "contacts".into(),
        rules,
        page_size,
        dry_run: false,
        // Failed items go to quarantine at once (the path under test).
        retry: syncbridge::engine::retry::RetryPolicy {
            attempts: 1,
            ..Default::default()
        },
        // Even page sizes push a page's batches concurrently: the cursor and
        // the write-ahead must hold either way.
        push_concurrency: if page_size.is_multiple_of(2) { 3 } else { 1 },
        from_start: false,
    };
    let echo = Echo::default();
    let engine = Engine {
        ledger: &ledger,
        source: &source,
        transform: &echo,
        target: &target,
    };
    let mut run_no = 0;
    let mut configure: Option<String> = None;
    for round in rounds {
        {
            let mut s = source.0.lock().unwrap();
            for c in round.changes {
                match c {
                    Change::Add => add(&mut s),
                    Change::Edit(i, name) if !s.live.is_empty() => {
                        let id = s.live.keys().nth(i % s.live.len()).unwrap().clone();
                        s.live.get_mut(&id).unwrap().0 = name;
                        s.log.push(id);
                    }
                    Change::Delete(i) if !s.live.is_empty() => {
                        let id = s.live.keys().nth(i % s.live.len()).unwrap().clone();
                        s.live.remove(&id);
                        s.log.push(id);
                    }
                    c @ (Change::TargetEdit(..)
                    | Change::TargetDeactivate(_)
                    | Change::TargetDelete(_)) => {
                        by_hand(&mut target.0.lock().unwrap(), &c);
                    }
                    Change::Configure(suffix) => configure = Some(suffix),
                    _ => {}
                }
            }
        }
        if let Some(suffix) = configure.take() {
            // What the runner does for a profile whose save asked for a resync.
            *echo.title_suffix.lock().unwrap() = suffix;
            ledger
                .reset_cursor(profile, &spec.source_scope)
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            stats.config_changes.fetch_add(1, Ordering::Relaxed);
        }
        target.0.lock().unwrap().faults = round.faults.into();
        run_no += 1;
        let _ = engine.run(&spec, &format!("{profile}-r{run_no}")).await;
        stats.runs.fetch_add(1, Ordering::Relaxed);
    }
    // Clean runs: no faults. A full reconcile (what the daily one does: it
    // finds target items deleted by hand, which no change feed reports), a
    // run that retries what it left, and one that must write nothing at all.
    target.0.lock().unwrap().faults.clear();
    for extra in 0..3 {
        run_no += 1;
        let spec = RunSpec {
            from_start: extra == 0,
            ..spec.clone()
        };
        let writes_before = target.0.lock().unwrap().writes;
        engine
            .run(&spec, &format!("{profile}-clean{extra}-{run_no}"))
            .await
            .map_err(|e| TestCaseError::fail(format!("clean run failed: {e}")))?;
        stats.runs.fetch_add(1, Ordering::Relaxed);
        if extra == 2 {
            let writes = target.0.lock().unwrap().writes - writes_before;
            prop_assert_eq!(writes, 0, "a settled profile writes nothing (no ping-pong)");
        }
    }

    let quarantine = ledger.quarantined(profile).await.unwrap();
    prop_assert!(
        quarantine.is_empty(),
        "quarantine not drained: {:?}",
        quarantine
    );
    let s = source.0.lock().unwrap();
    let t = target.0.lock().unwrap();
    stats.kills.fetch_add(t.kills, Ordering::Relaxed);
    stats.hand_edits.fetch_add(t.hand_edits, Ordering::Relaxed);
    stats
        .item_failures
        .fetch_add(t.item_failures, Ordering::Relaxed);
    stats.cases.fetch_add(1, Ordering::Relaxed);
    // No duplicates: every e-mail is held by at most one target item.
    let mut by_email: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
    for (id, (fields, _)) in &t.items {
        by_email
            .entry(fields.get("email").map(String::as_str).unwrap_or(""))
            .or_default()
            .push(id);
    }
    for (email, ids) in &by_email {
        prop_assert_eq!(
            ids.len(),
            1,
            "duplicate target items for {}: {:?}",
            email,
            ids
        );
    }
    // Nothing lost: every live source item is active in the target with its fields.
    for (id, (first, title)) in &s.live {
        let e = email(id);
        let tid = by_email.get(e.as_str()).map(|v| v[0]);
        prop_assert!(tid.is_some(), "source item {} missing from the target", id);
        let (fields, active) = &t.items[tid.unwrap()];
        prop_assert!(
            *active,
            "source item {} is live but its target item is inactive",
            id
        );
        prop_assert_eq!(fields.get("first_name"), Some(first));
        let suffix = echo.title_suffix.lock().unwrap().clone();
        prop_assert_eq!(
            fields.get("title"),
            Some(&format!("{title}{suffix}")),
            "the current configuration applies to every item"
        );
    }
    // Removed source items are inactive, never deleted (default rule: deactivate).
    let active = t.items.values().filter(|(_, a)| *a).count();
    prop_assert_eq!(active, s.live.len());
    Ok(())
}

fn cases() -> u32 {
    std::env::var("ENGINE_PROP_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

/// Runs the property on the store at `url`, on one runtime: the pool's
/// connections and every run share its reactor.
fn run_property(url: &str, backend: &str, two_way: bool) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt.block_on(Store::open(url)).unwrap();
    let counter = AtomicU64::new(0);
    let stats = Stats::default();
    // CI replays a fixed seed (a red main must mean a regression); set
    // ENGINE_PROP_SEED=random to explore, or to a number to replay that seed.
    let rng_seed = match std::env::var("ENGINE_PROP_SEED").as_deref() {
        Ok("random") => proptest::test_runner::RngSeed::Random,
        Ok(n) => proptest::test_runner::RngSeed::Fixed(
            n.parse().expect("ENGINE_PROP_SEED is a number or `random`"),
        ),
        Err(_) => proptest::test_runner::RngSeed::Fixed(0x5eed_2026),
    };
    let config = ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        rng_seed,
        ..ProptestConfig::default()
    };
    proptest!(config, |(initial in 0usize..12, rounds in prop::collection::vec(round(), 1..6), page_size in 1u32..5)| {
        let profile = format!("{backend}-case-{}", counter.fetch_add(1, Ordering::Relaxed));
        rt.block_on(check_case(&stats, &store, &profile, initial, rounds, page_size, two_way))?;
    });
    eprintln!(
        "engine property on {backend}{}: {} case executions (incl. shrinking), {} runs, {} kills injected, {} item failures injected, {} target edits by hand, {} configuration changes",
        if two_way { " (two-way first names)" } else { "" },
        stats.cases.load(Ordering::Relaxed),
        stats.runs.load(Ordering::Relaxed),
        stats.kills.load(Ordering::Relaxed),
        stats.item_failures.load(Ordering::Relaxed),
        stats.hand_edits.load(Ordering::Relaxed),
        stats.config_changes.load(Ordering::Relaxed)
    );
}

#[test]
fn no_duplicates_no_losses_across_kills_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("engine.db").display());
    run_property(&url, "sqlite", false);
}

#[test]
fn two_way_fields_settle_without_duplicates_or_losses_across_kills_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("engine.db").display());
    run_property(&url, "sqlite", true);
}

#[test]
fn no_duplicates_no_losses_across_kills_on_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(url) = rt.block_on(common::postgres_url("engine")) else {
        return;
    };
    drop(rt);
    run_property(&url, "postgres", false);
}

#[test]
fn two_way_fields_settle_without_duplicates_or_losses_across_kills_on_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(url) = rt.block_on(common::postgres_url("engine2")) else {
        return;
    };
    drop(rt);
    run_property(&url, "postgres", true);
}

/// Found by the property: an update applied by a run that was then killed,
/// followed by a source edit back to the value the link remembers, must still
/// reach the target (recovery reads the target instead of trusting the link).
#[test]
fn regression_interrupted_update_then_edit_back_is_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("regression.db").display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt.block_on(Store::open(&url)).unwrap();
    let rounds = vec![
        Round {
            changes: vec![Change::Edit(1159142460308320609, "I".into())],
            faults: vec![],
        },
        Round {
            changes: vec![Change::Add],
            faults: vec![],
        },
        Round {
            changes: vec![
                Change::Add,
                Change::Edit(13923847455551086281, "A".into()),
                Change::Add,
            ],
            faults: vec![Fault::KillAfter(2)],
        },
        Round {
            changes: vec![
                Change::Add,
                Change::Delete(277384743969427616),
                Change::Edit(7456641802635668416, "I".into()),
            ],
            faults: vec![],
        },
    ];
    let stats = Stats::default();
    rt.block_on(check_case(
        &stats,
        &store,
        "regression",
        2,
        rounds,
        2,
        false,
    ))
    .unwrap();
    assert_eq!(
        stats.kills.load(Ordering::Relaxed),
        1,
        "the kill was injected"
    );
}

/// Found by the property on PostgreSQL: deletions in a delta round whose
/// runs are killed before and after item failures must still deactivate.
#[test]
fn regression_delete_during_interrupted_runs_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("regression2.db").display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt.block_on(Store::open(&url)).unwrap();
    let rounds = vec![
        Round {
            changes: vec![Change::Add, Change::Add],
            faults: vec![Fault::KillAfter(1)],
        },
        Round {
            changes: vec![Change::Delete(0)],
            faults: vec![Fault::KillAfter(0)],
        },
        Round {
            changes: vec![Change::Add],
            faults: vec![Fault::FailItem(0), Fault::KillAfter(0)],
        },
        Round {
            changes: vec![],
            faults: vec![Fault::FailItem(0), Fault::KillAfter(0)],
        },
    ];
    let stats = Stats::default();
    rt.block_on(check_case(
        &stats,
        &store,
        "regression2",
        5,
        rounds,
        4,
        false,
    ))
    .unwrap();
}

/// Two-way fields: a target edit flows back to the source, both sides changing
/// the same field is a conflict held for an operator, and the resolution is
/// written by the next run.
#[test]
fn two_way_fields_flow_back_and_held_conflicts_wait_for_an_operator() {
    use syncbridge::control::conflicts;
    use syncbridge::engine::merge::Side;
    use syncbridge::engine::rules::{ConflictPolicy, Direction};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("two-way.db").display());
    rt.block_on(async {
        let store = Store::open(&url).await.unwrap();
        let ledger = Ledger::new(store.clone());
        let source = MemSource::default();
        let target = MemTarget::default();
        {
            let mut s = source.0.lock().unwrap();
            s.live
                .insert("s001".into(), ("Ada".into(), "Engineer".into()));
            s.log.push("s001".into());
        }
        let mut rules = FieldRules::default();
        rules.direction.insert("first_name".into(), Direction::Both);
        rules
            .conflict
            .insert("first_name".into(), ConflictPolicy::Hold);
        let spec = RunSpec {
            profile_id: "two-way".into(),
            source_scope: "contacts".into(),
            source_read_scope: None,
            target_scope: "contacts".into(),
            rules,
            page_size: 10,
            dry_run: false,
            retry: Default::default(),
            push_concurrency: 1,
            from_start: false,
        };
        let engine = Engine {
            ledger: &ledger,
            source: &source,
            transform: &Echo::default(),
            target: &target,
        };
        let first = |t: &MemTarget| {
            let t = t.0.lock().unwrap();
            t.items.values().next().unwrap().0["first_name"].clone()
        };
        engine.run(&spec, "run-1").await.unwrap();
        assert_eq!(first(&target), "Ada");

        // Renamed in the target: the name flows back to the source.
        let id = target
            .0
            .lock()
            .unwrap()
            .items
            .keys()
            .next()
            .unwrap()
            .clone();
        target
            .0
            .lock()
            .unwrap()
            .items
            .get_mut(&id)
            .unwrap()
            .0
            .insert("first_name".into(), "Augusta".into());
        let r = engine.run(&spec, "run-2").await.unwrap();
        assert_eq!(r.planned.write_back, 1, "{r:?}");
        assert_eq!(source.0.lock().unwrap().live["s001"].0, "Augusta");
        // Settled: nothing is written either way, not even the echo of the write-back.
        let writes = target.0.lock().unwrap().writes;
        let r = engine.run(&spec, "run-3").await.unwrap();
        assert_eq!(target.0.lock().unwrap().writes, writes, "{r:?}");
        assert_eq!(r.planned.write_back, 0, "{r:?}");
        // A one-way field edited in the target is put back.
        target
            .0
            .lock()
            .unwrap()
            .items
            .get_mut(&id)
            .unwrap()
            .0
            .insert("title".into(), "Edited".into());
        engine.run(&spec, "run-4").await.unwrap();
        assert_eq!(target.0.lock().unwrap().items[&id].0["title"], "Engineer");

        // Both sides change the two-way field: held, nothing written.
        {
            let mut s = source.0.lock().unwrap();
            s.live.get_mut("s001").unwrap().0 = "Countess".into();
            s.log.push("s001".into());
        }
        target
            .0
            .lock()
            .unwrap()
            .items
            .get_mut(&id)
            .unwrap()
            .0
            .insert("first_name".into(), "Lady".into());
        engine.run(&spec, "run-5").await.unwrap();
        assert_eq!(first(&target), "Lady");
        assert_eq!(source.0.lock().unwrap().live["s001"].0, "Countess");
        let held = conflicts::list(&store, Some("two-way")).await.unwrap();
        assert_eq!(held.len(), 1, "{held:?}");
        assert_eq!(
            (
                held[0].base.as_deref(),
                held[0].source.as_deref(),
                held[0].target.as_deref()
            ),
            (Some("Augusta"), Some("Countess"), Some("Lady"))
        );
        // Still held on the next run; then an operator picks the target's value.
        engine.run(&spec, "run-6").await.unwrap();
        assert_eq!(
            conflicts::list(&store, Some("two-way"))
                .await
                .unwrap()
                .len(),
            1
        );
        conflicts::resolve(&store, "two-way", "s001", "first_name", Side::Target)
            .await
            .unwrap();
        engine.run(&spec, "run-7").await.unwrap();
        assert_eq!(source.0.lock().unwrap().live["s001"].0, "Lady");
        assert_eq!(first(&target), "Lady");
        assert!(conflicts::list(&store, Some("two-way"))
            .await
            .unwrap()
            .is_empty());
        assert!(ledger.quarantined("two-way").await.unwrap().is_empty());
    });
}
