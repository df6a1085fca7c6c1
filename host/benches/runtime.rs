//! Benchmark of the plugin runtime (a bench binary, not a timed test):
//!
//! - instantiate + first call: a fresh store and instance per call of `describe`;
//! - one host call: the cost of `clock.now-ms` and `state.set` from inside a plugin,
//!   from the difference between N calls and zero calls in one invocation.
//!
//! Run: `scripts/build-plugins.sh && cargo bench -p syncbridge --bench runtime`. The plugin is
//! the `misbehave` test plugin; `RUNTIME_BENCH_PLUGIN=<package directory>` (e.g.
//! `target/plugins/dynamics`) measures another one's instantiation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use syncbridge::capability::hosts::AllowList;
use syncbridge::capability::http::ConnectionHttp;
use syncbridge::manifest::Manifest;
use syncbridge::model::PullRequest;
use syncbridge::package::Package;
use syncbridge::runtime::{ConnectionContext, EngineOptions, Runtime};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    // As the `syncbridge` binary does: no library backtraces (see main.rs).
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: first thing in main, single-threaded.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    let root = match std::env::var_os("RUNTIME_BENCH_PLUGIN") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/test-plugins/misbehave"),
    };
    println!("plugin: {}", root.display());
    let package = Package::open(&root, None)
        .unwrap_or_else(|e| panic!("{e}; run scripts/build-plugins.sh first"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new(EngineOptions::default()).expect("runtime");
    let manifest: Manifest = package.manifest.clone();
    let plugin = runtime
        .load(manifest, &package.digest, &package.component)
        .expect("load");
    println!("pooling allocator: {}", runtime.pooling());

    rt.block_on(async {
        // --- instantiate + first call -------------------------------------
        for _ in 0..200 {
            runtime.describe(&plugin).await.unwrap();
        }
        let mut samples = Vec::with_capacity(20_000);
        let total = Instant::now();
        for _ in 0..20_000 {
            let t = Instant::now();
            let d = runtime.describe(&plugin).await.unwrap();
            samples.push(t.elapsed());
            std::hint::black_box(d);
        }
        let total = total.elapsed();
        samples.sort();
        println!(
            "instantiate + first call (describe): median {:.2} µs, p90 {:.2} µs, p99 {:.2} µs, mean {:.2} µs over {} calls",
            percentile(&samples, 0.5).as_secs_f64() * 1e6,
            percentile(&samples, 0.9).as_secs_f64() * 1e6,
            percentile(&samples, 0.99).as_secs_f64() * 1e6,
            total.as_secs_f64() * 1e6 / samples.len() as f64,
            samples.len()
        );

        if std::env::var_os("BENCH_INSTANTIATE_ONLY").is_some() {
            return;
        }
        // --- host calls ------------------------------------------------------
        let ctx = ConnectionContext {
            http: ConnectionHttp {
                connection_id: "bench".into(),
                allow: AllowList::default(),
                allow_private_network: false,
                credentials: Arc::new(BTreeMap::new()),
                concurrency: Arc::new(tokio::sync::Semaphore::new(1)),
                mailbox: None,
            },
            state: Arc::new(BTreeMap::new()),
        };
        for (name, scope, n) in [("clock.now-ms", "host-calls", 1_000_000u64), ("state.set", "state", 200_000u64)] {
            let mut per_call = Vec::new();
            for _ in 0..7 {
                let time = |count: u64| {
                    let ctx = ctx.clone();
                    let plugin = &plugin;
                    let runtime = &runtime;
                    async move {
                        let request = PullRequest { scope: format!("{scope}:{count}"), cursor: None, max_items: 1 };
                        let t = Instant::now();
                        runtime.pull(plugin, ctx, "{}", request).await.unwrap().value.unwrap();
                        t.elapsed()
                    }
                };
                let base = time(0).await;
                let full = time(n).await;
                per_call.push(full.saturating_sub(base).as_secs_f64() * 1e9 / n as f64);
            }
            per_call.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!(
                "host call {name}: median {:.1} ns, min {:.1} ns per call ({} calls per invocation, 7 runs)",
                per_call[3], per_call[0], n
            );
        }
    });
}
