//! Shared helpers of the host's integration tests: built plugin packages,
//! hubs on temporary SQLite stores, small loopback HTTP servers.
#![allow(dead_code)]

pub mod by_hand;
pub mod feed;
pub mod m365;
pub mod psa;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use syncbridge::control::runs::{RunMode, RunRecord, RunStatus, Runs};
use syncbridge::engine::RunReport;
use syncbridge::hub::{Hub, NewConnection};
use syncbridge::runner::{NoProgress, RunNow, Runner};
use syncbridge::runtime::{EngineOptions, Runtime};
use syncbridge::secrets::{Credential, MasterKey};
use syncbridge::store::Store;

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A built plugin package; panics with the command to run when it is missing.
pub fn package(id: &str) -> PathBuf {
    let root = workspace().join("target");
    for dir in ["plugins", "test-plugins"] {
        let p = root.join(dir).join(id);
        if p.join("plugin.toml").exists() {
            return p;
        }
    }
    panic!("plugin package {id} is not built; run scripts/build-plugins.sh first (the README test command does)");
}

/// A built package as an upload would send it: a `.tar.gz` of its files.
pub fn package_archive(id: &str) -> Vec<u8> {
    let dir = package(id);
    let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            archive
                .append_path_with_name(&path, path.file_name().unwrap())
                .unwrap();
        }
    }
    archive.into_inner().unwrap().finish().unwrap()
}

/// A hub on a fresh SQLite file in a temporary directory.
pub struct TestHub {
    pub hub: Arc<Hub>,
    pub dir: tempfile::TempDir,
}

pub async fn hub() -> TestHub {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    hub_with(dir, &url).await
}

pub async fn hub_with(dir: tempfile::TempDir, url: &str) -> TestHub {
    hub_with_options(dir, url, EngineOptions::default()).await
}

pub async fn hub_with_options(
    dir: tempfile::TempDir,
    url: &str,
    options: EngineOptions,
) -> TestHub {
    let store = Store::open(url).await.expect("store opens");
    // One compile cache for every test and bench (compiled components by digest; wasmtime
    // refuses an artifact of other engine settings, which is then compiled again), unless
    // the caller names its own.
    let cache_dir = options
        .cache_dir
        .clone()
        .unwrap_or_else(|| workspace().join("target").join("test-compile-cache"));
    let runtime = Runtime::new(EngineOptions {
        cache_dir: Some(cache_dir),
        ..options
    })
    .expect("runtime starts");
    let hub = Hub::new(
        store,
        Arc::new(runtime),
        MasterKey::generate(),
        dir.path().join("plugins"),
    );
    TestHub {
        hub: Arc::new(hub),
        dir,
    }
}

/// Installs a built package.
pub async fn install(hub: &Hub, id: &str) {
    hub.install_plugin(&package(id), None)
        .await
        .expect("plugin installs");
}

/// Adds a connection of `plugin` allowed to reach loopback.
pub async fn loopback_connection(
    hub: &Hub,
    name: &str,
    plugin: &str,
    config: &str,
    credentials: &[(&str, &str)],
) {
    let credentials: BTreeMap<String, Credential> = credentials
        .iter()
        .map(|(slot, json)| (slot.to_string(), Credential::from_json(json).unwrap()))
        .collect();
    hub.add_connection(NewConnection {
        id: name.into(),
        plugin_id: plugin.into(),
        config: config.into(),
        allowed_hosts: vec!["127.0.0.1".into(), "localhost".into()],
        allow_private_network: true,
        max_concurrent: None,
        credentials,
    })
    .await
    .expect("connection is added");
}

/// Serves an axum router on an ephemeral loopback port; returns its base URL.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{addr}")
}

/// A loopback service that answers "ok" to anything and records the
/// `Authorization` header of every request ("(none)" when absent).
pub async fn recording_service() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let base = serve(
        axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
            let log = log.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("(none)")
                    .to_owned();
                log.lock().unwrap().push(auth);
                "ok"
            }
        }),
    )
    .await;
    (base, seen)
}

/// A fresh PostgreSQL database named `syncbridge_{purpose}_{pid}` for one test, from `SYNCBRIDGE_TEST_POSTGRES` (default
/// postgres://postgres@127.0.0.1:5432/test). When the server is unreachable
/// this panics under `CI=true` and returns `None` (skip, loudly) elsewhere.
pub async fn postgres_url(purpose: &str) -> Option<String> {
    let admin = std::env::var("SYNCBRIDGE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    sqlx::any::install_default_drivers();
    let pool = match sqlx::AnyPool::connect(&admin).await {
        Ok(pool) => pool,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("PostgreSQL is required in CI but {admin} is unreachable: {e}");
            }
            eprintln!("\n*** SKIPPING the PostgreSQL {purpose} test: {admin} is unreachable ({e}). Start PostgreSQL to run it. ***\n");
            return None;
        }
    };
    let name = format!("syncbridge_{purpose}_{}", std::process::id());
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&pool)
        .await;
    // CREATE DATABASE fails while another session copies template1 (a parallel
    // test process doing the same): retry briefly.
    let mut attempt = 0;
    while let Err(e) = sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
    {
        attempt += 1;
        assert!(attempt < 20, "cannot create test database {name}: {e}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .expect("URL has a database");
    Some(format!("{base}/{name}"))
}

/// The lease of the runs tests start: long enough never to lapse on a busy machine.
pub const LEASE: Duration = Duration::from_secs(30);

/// Runs `profile` now in `mode` on the production path (`syncbridge run`):
/// a recorded run under a lease, stopped connections refused, a requested
/// re-sync honoured, dry runs and held runs storing their plan.
pub async fn run_now(hub: &Arc<Hub>, profile: &str, mode: RunMode) -> RunRecord {
    run_now_leased(hub, profile, mode, LEASE).await
}

/// [`run_now`] under a lease of `lease`: a test that kills the run lets a
/// short lease lapse and [`take_over`] the run, as another process would.
pub async fn run_now_leased(
    hub: &Arc<Hub>,
    profile: &str,
    mode: RunMode,
    lease: Duration,
) -> RunRecord {
    let request = RunNow {
        profile,
        mode,
        plan: None,
        trigger: "manual",
    };
    Runner::new(hub.clone(), "test", lease)
        .run_now(request, &NoProgress)
        .await
        .unwrap_or_else(|e| panic!("run of {profile} could not be recorded: {e}"))
}

/// A run (or, with `dry_run`, a dry run) of `profile` on the production
/// path: its counts, or the error it failed with.
pub async fn run_profile(
    hub: &Arc<Hub>,
    profile: &str,
    dry_run: bool,
) -> Result<RunReport, String> {
    let mode = if dry_run {
        RunMode::DryRun
    } else {
        RunMode::Run
    };
    outcome(run_now(hub, profile, mode).await)
}

/// The counts of a finished run, or its error when it failed or went stale.
pub fn outcome(run: RunRecord) -> Result<RunReport, String> {
    match run.status {
        RunStatus::Succeeded | RunStatus::Partial | RunStatus::Planned | RunStatus::Held => {
            Ok(run.report.map(|s| s.report).unwrap_or_default())
        }
        _ => Err(format!(
            "run {} {}: {}",
            run.id,
            run.status.as_str(),
            run.error.as_deref().unwrap_or("(no error recorded)")
        )),
    }
}

/// Waits for the lease of a killed run to lapse, then claims and finishes
/// it as another process would (attempt 2); its outcome.
pub async fn take_over(hub: &Arc<Hub>) -> Result<RunReport, String> {
    let runs = Runs::new(hub.store().clone());
    let deadline = std::time::Instant::now() + LEASE;
    loop {
        if let Some(run) = runs.claim_next("test-takeover", LEASE).await.unwrap() {
            assert!(run.attempts >= 2, "a killed run is taken over: {run:?}");
            let runner = Runner::new(hub.clone(), "test-takeover", LEASE);
            return outcome(runner.execute(run, &NoProgress).await.unwrap());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no run to take over: was one killed?"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
