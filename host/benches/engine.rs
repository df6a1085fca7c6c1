//! Benchmark of the engine alone: in-memory source and target endpoints (no
//! plugins, no network), the real store on SQLite.
//!
//! - a full run of N items into an empty target (creates, each batch read back);
//! - a no-change two-sided run: one delta round of the source, one of the target's feed;
//! - a full two-sided reconcile of the N linked items: every source item read again and
//!   every linked target item looked up by id, nothing to write.
//!
//! Each phase prints its calls to each side (a call stands for one request round of a
//! connector: a page pulled, a batch of ids looked up, a batch pushed).
//!
//! Run: `cargo bench -p syncbridge --bench engine` (N from ENGINE_BENCH_ITEMS, default 100000).

#[path = "support/cpu.rs"]
mod cpu;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use syncbridge::engine::{
    EndpointError, Engine, FieldRules, Ledger, RunSpec, Source, Target, Transform,
};
use syncbridge::model::{Contact, Item, ItemBody};
use syncbridge::model::{Intent, IntentAction};
use syncbridge::model::{Page, WriteOk, WriteOp, WriteResult};
use syncbridge::store::Store;

struct BenchSource {
    n: usize,
    calls: AtomicU64,
}

fn item(i: usize) -> Item {
    Item {
        id: format!("u{i:07}"),
        version: Some("1".into()),
        removed: None,
        body: Some(ItemBody::Contact(Contact {
            first_name: Some(format!("First{i}")),
            last_name: Some(format!("Last{i}")),
            display_name: None,
            title: Some("Engineer".into()),
            email: Some(format!("u{i}@example.test")),
            phone: Some("+1 555 0100".into()),
            mobile: None,
            company: None,
            site: None,
            contact_types: vec![],
            active: true,
            extra: vec![],
        })),
    }
}

impl Source for BenchSource {
    async fn pull(
        &self,
        _scope: &str,
        cursor: Option<String>,
        max: u32,
    ) -> Result<Page, EndpointError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match cursor.as_deref() {
            Some("delta") => Ok(Page {
                items: vec![],
                cursor: Some("delta".into()),
                more: false,
                full: false,
            }),
            other => {
                let start: usize = other.map(|c| c.parse().unwrap()).unwrap_or(0);
                let end = (start + max as usize).min(self.n);
                let more = end < self.n;
                Ok(Page {
                    items: (start..end).map(item).collect(),
                    cursor: Some(if more {
                        end.to_string()
                    } else {
                        "delta".into()
                    }),
                    more,
                    full: true,
                })
            }
        }
    }

    async fn lookup(&self, _scope: &str, _ids: Vec<String>) -> Result<Vec<Item>, EndpointError> {
        Ok(vec![])
    }
    async fn push(
        &self,
        _scope: &str,
        _ops: Vec<WriteOp>,
    ) -> Result<Vec<WriteResult>, EndpointError> {
        unreachable!("the bench's fields all flow source → target")
    }
}

struct Echo;

impl Transform for Echo {
    async fn map(&self, items: Vec<Item>) -> Result<Vec<Intent>, EndpointError> {
        Ok(items
            .into_iter()
            .map(|i| Intent {
                source_id: i.id,
                action: IntentAction::Upsert,
                body: i.body,
                match_keys: vec![],
                route: vec![],
                rule: "echo".into(),
                reason: String::new(),
                policy: Default::default(),
            })
            .collect())
    }
}

/// A target with a change feed: writes are kept by id, lookups by id answer
/// them, and the feed reports nothing changed by anyone else.
#[derive(Default)]
struct BenchTarget(Mutex<BTreeMap<String, WriteOp>>, AtomicU64);

impl Target for BenchTarget {
    async fn lookup(&self, _scope: &str, keys: Vec<String>) -> Result<Vec<Item>, EndpointError> {
        self.1.fetch_add(1, Ordering::Relaxed);
        let t = self.0.lock().unwrap();
        Ok(keys
            .iter()
            .filter_map(|k| k.strip_prefix("id:"))
            .filter_map(|id| {
                t.get(id).map(|op| Item {
                    id: id.to_owned(),
                    version: None,
                    removed: None,
                    body: op.body.clone(),
                })
            })
            .collect())
    }
    async fn push(
        &self,
        _scope: &str,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<WriteResult>, EndpointError> {
        self.1.fetch_add(1, Ordering::Relaxed);
        let mut t = self.0.lock().unwrap();
        Ok(ops
            .into_iter()
            .map(|op| {
                let id = match &op.target_id {
                    Some(id) => id.clone(),
                    None => format!("t{}", t.len() + 1),
                };
                let op_id = op.op_id.clone();
                t.insert(id.clone(), op);
                WriteResult {
                    op_id,
                    outcome: Ok(WriteOk {
                        target_id: id,
                        version: None,
                    }),
                }
            })
            .collect())
    }
    async fn changes(
        &self,
        _scope: &str,
        _cursor: Option<String>,
        _max_items: u32,
    ) -> Result<Page, EndpointError> {
        self.1.fetch_add(1, Ordering::Relaxed);
        Ok(Page {
            items: vec![],
            cursor: Some("now".into()),
            more: false,
            full: false,
        })
    }
}

fn cpu_seconds() -> f64 {
    cpu::process_seconds()
}

fn main() {
    let n: usize = std::env::var("ENGINE_BENCH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    rt.block_on(async {
        let store = Store::open(&url).await.unwrap();
        let ledger = Ledger::new(store);
        let source = BenchSource {
            n,
            calls: AtomicU64::new(0),
        };
        let target = BenchTarget::default();
        let calls = || {
            (
                source.calls.swap(0, Ordering::Relaxed),
                target.1.swap(0, Ordering::Relaxed),
            )
        };
        let engine = Engine { ledger: &ledger, source: &source, transform: &Echo, target: &target };
        let spec = RunSpec {
            profile_id: "bench".into(),
            source_scope: "users".into(),
            source_read_scope: None,
            target_scope: "contacts".into(),
            rules: FieldRules::default(),
            page_size: 500,
            dry_run: false,
            retry: Default::default(),
            push_concurrency: 1,
            from_start: false,
        };
        let (t0, c0) = (Instant::now(), cpu_seconds());
        let report = engine.run(&spec, "full").await.unwrap();
        let (full, full_cpu) = (t0.elapsed(), cpu_seconds() - c0);
        assert_eq!(report.planned.create as usize, n);
        assert_eq!(target.0.lock().unwrap().len(), n);
        let (s_calls, t_calls) = calls();
        println!(
            "full run: {n} items in {:.2} s = {:.0} items/s, host CPU {:.1} µs/item; calls: source {s_calls}, target {t_calls}",
            full.as_secs_f64(),
            n as f64 / full.as_secs_f64(),
            full_cpu * 1e6 / n as f64
        );
        let (t1, c1) = (Instant::now(), cpu_seconds());
        let report = engine.run(&spec, "again").await.unwrap();
        let (again, again_cpu) = (t1.elapsed(), cpu_seconds() - c1);
        assert_eq!(report.planned.create + report.planned.update, 0);
        let (s_calls, t_calls) = calls();
        println!(
            "no-change two-sided run over {n} linked items: {:.2} ms ({:.3} % of the full run), host CPU {:.2} ms; calls: source {s_calls}, target {t_calls}",
            again.as_secs_f64() * 1e3,
            again.as_secs_f64() * 100.0 / full.as_secs_f64(),
            again_cpu * 1e3
        );
        let reconcile = RunSpec {
            from_start: true,
            ..spec.clone()
        };
        let (t2, c2) = (Instant::now(), cpu_seconds());
        let report = engine.run(&reconcile, "reconcile").await.unwrap();
        let (took, cpu) = (t2.elapsed(), cpu_seconds() - c2);
        assert_eq!(report.planned.noop as usize, n, "{report:?}");
        let (s_calls, t_calls) = calls();
        println!(
            "full two-sided reconcile of {n} linked items: {:.2} s = {:.0} items/s, host CPU {:.1} µs/item; calls: source {s_calls}, target {t_calls}",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64(),
            cpu * 1e6 / n as f64
        );
    });
}
