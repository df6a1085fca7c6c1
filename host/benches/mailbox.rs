//! Mailbox polling at scale through the runtime: N mailboxes in the EWS simulator, each with
//! contacts, calendar items (a recurring series among them) and tasks, read by the `ews`
//! connector (`mailbox-api`, WIT 0.1.3) with a service account that impersonates them. A
//! first full pass per folder stores each folder's sync state; then a no-change polling cycle
//! (one `SyncFolderItems` round per folder) is measured: host CPU and requests per mailbox.
//!
//! Run: `./scripts/build-plugins.sh && cargo bench -p syncbridge --bench mailbox`.
//! `MAILBOX_BENCH_MAILBOXES` (default 1000), `MAILBOX_BENCH_CONCURRENCY` (mailboxes polled at
//! once, default 8).
//!
//! The simulator runs in this process on its own tokio runtime whose threads are named
//! `mailbox-sim`; "host CPU" is the process's CPU time minus those threads', i.e. the runtime,
//! the plugin and the store.

#[path = "../tests/host/common/mod.rs"]
mod common;
#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/setup.rs"]
mod setup;

use serde_json::json;
use setup::{env_or, runtime};
use std::sync::Arc;
use std::time::{Duration, Instant};
use syncbridge::hub::Hub;
use syncbridge::model::PullRequest;
use syncbridge_sim::{Seed, Services, SimConfig, Simulator};

const SIM_THREADS: &str = "mailbox-sim";
const FOLDERS: [&str; 3] = ["calendar", "contacts", "tasks"];
const TYPES: &str = "http://schemas.microsoft.com/exchange/services/2006/types";

/// CPU seconds of the whole process and of the simulator's threads.
fn cpu_seconds() -> (f64, f64) {
    cpu::process_and_threads(SIM_THREADS)
}

fn mailbox(m: usize) -> String {
    format!("user{m}@contoso.com")
}

fn seed(n: usize) -> Seed {
    let mut accounts = vec![json!({"email": "svc@contoso.com", "password": "svc-pw",
                                    "canImpersonate": true, "hasMailbox": false})];
    let mut items = serde_json::Map::new();
    let day = chrono_day();
    for m in 0..n {
        accounts.push(
            json!({"email": mailbox(m), "password": "pw", "displayName": format!("User {m}")}),
        );
        let mut list = Vec::new();
        for c in 0..5 {
            list.push(json!({"folder": "contacts", "xml": format!(
                "<t:Contact xmlns:t=\"{TYPES}\"><t:GivenName>Given{c}</t:GivenName><t:Surname>Sur{m}</t:Surname><t:EmailAddresses><t:Entry Key=\"EmailAddress1\">c{c}.u{m}@fabrikam.com</t:Entry></t:EmailAddresses></t:Contact>")}));
        }
        for a in 0..4 {
            list.push(json!({"folder": "calendar", "xml": format!(
                "<t:CalendarItem xmlns:t=\"{TYPES}\"><t:Subject>Visit {a}</t:Subject><t:Start>{day}T0{a}:00:00Z</t:Start><t:End>{day}T0{a}:30:00Z</t:End></t:CalendarItem>")}));
        }
        list.push(json!({"folder": "calendar", "xml": format!(
            "<t:CalendarItem xmlns:t=\"{TYPES}\"><t:Subject>Weekly</t:Subject><t:Start>{day}T08:00:00Z</t:Start><t:End>{day}T09:00:00Z</t:End><t:Recurrence><t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Tuesday</t:DaysOfWeek></t:WeeklyRecurrence><t:NoEndRecurrence><t:StartDate>{day}</t:StartDate></t:NoEndRecurrence></t:Recurrence></t:CalendarItem>")}));
        for k in 0..3 {
            list.push(json!({"folder": "tasks", "xml": format!(
                "<t:Task xmlns:t=\"{TYPES}\"><t:Subject>Task {k}</t:Subject></t:Task>")}));
        }
        items.insert(mailbox(m), serde_json::Value::Array(list));
    }
    let doc = json!({"ews": {"accounts": accounts, "items": items}});
    Seed::from_json(&doc.to_string()).unwrap()
}

/// Today's date (UTC), `YYYY-MM-DD`, so the seeded items fall in the calendar window.
fn chrono_day() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let days = secs.div_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Reads one folder of one mailbox from `cursor` to the end of the pass; answers the items
/// read and the cursor the pass ended with. State changes are committed as the engine does.
async fn pass(hub: &Hub, scope: &str, mut cursor: Option<String>) -> (usize, Option<String>) {
    let mut items = 0;
    loop {
        let (record, plugin, ctx) = hub.connection_context("exchange").await.unwrap();
        let request = PullRequest {
            scope: scope.into(),
            cursor: cursor.clone(),
            max_items: 512,
        };
        let called = hub
            .runtime()
            .pull(&plugin, ctx, &record.config, request)
            .await
            .expect("no trap");
        hub.store()
            .apply_state_changes("exchange", &called.state_changes)
            .await
            .unwrap();
        let page = called
            .value
            .unwrap_or_else(|e| panic!("{scope}: {}", e.describe()));
        items += page.items.len();
        cursor = page.cursor;
        if !page.more {
            return (items, cursor);
        }
    }
}

fn scope_of(folder: &str, m: usize) -> String {
    match folder {
        "calendar" => format!("calendar:mailbox={},past=30,future=30", mailbox(m)),
        other => format!("{other}:mailbox={}", mailbox(m)),
    }
}

/// Every folder of every mailbox, `concurrency` mailboxes at a time; answers the items read
/// and each folder's cursor.
async fn cycle(
    hub: &Arc<Hub>,
    cursors: Vec<Vec<Option<String>>>,
    concurrency: usize,
) -> (usize, Vec<Vec<Option<String>>>) {
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for (m, folders) in cursors.into_iter().enumerate() {
        let (hub, limit) = (hub.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            let mut read = 0;
            let mut next = Vec::with_capacity(FOLDERS.len());
            for (folder, cursor) in FOLDERS.iter().zip(folders) {
                let (n, c) = pass(&hub, &scope_of(folder, m), cursor).await;
                read += n;
                next.push(c);
            }
            (m, read, next)
        });
    }
    let mut results: Vec<(usize, usize, Vec<Option<String>>)> = tasks.join_all().await;
    results.sort_by_key(|r| r.0);
    let read = results.iter().map(|r| r.1).sum();
    (read, results.into_iter().map(|r| r.2).collect())
}

fn main() {
    let n = env_or("MAILBOX_BENCH_MAILBOXES", 1_000) as usize;
    let concurrency = env_or("MAILBOX_BENCH_CONCURRENCY", 8) as usize;
    let host = runtime("mailbox-host");
    let sim_rt = runtime(SIM_THREADS);
    let sim = sim_rt
        .block_on(Simulator::start(SimConfig {
            services: Services {
                ews: true,
                ..Services::NONE
            },
            seed: Some(seed(n)),
            ..SimConfig::all()
        }))
        .unwrap();
    host.block_on(async {
        let t = common::hub().await;
        common::install(&t.hub, "ews").await;
        let config = json!({"ews_url": sim.ews_url(), "impersonate": true, "mailbox": mailbox(0)});
        let basic = json!({"kind": "basic", "username": "svc@contoso.com", "password": "svc-pw"});
        common::loopback_connection(
            &t.hub,
            "exchange",
            "ews",
            &config.to_string(),
            &[("default", &basic.to_string())],
        )
        .await;
        println!("\n== {n} mailboxes × {} folders (calendar, contacts, tasks), {concurrency} mailboxes at a time ==", FOLDERS.len());

        let measure = |label: &'static str, read: usize, wall: Duration, cpu: (f64, f64), sim: &Simulator| {
            let stats = sim.requests();
            let host_cpu = cpu.0 - cpu.1;
            println!(
                "{label}: {read} items in {:.2} s; {} requests ({:.2}/mailbox); host CPU {:.2} s = {:.3} ms/mailbox; simulator CPU {:.2} s",
                wall.as_secs_f64(),
                stats.total,
                stats.total as f64 / n as f64,
                host_cpu,
                host_cpu * 1e3 / n as f64,
                cpu.1,
            );
            let mut routes: Vec<(String, u64)> = stats.routes.into_iter().collect();
            routes.sort_by_key(|r| std::cmp::Reverse(r.1));
            let top: Vec<String> = routes.iter().take(4).map(|(k, v)| format!("{k} ×{v}")).collect();
            println!("    requests: {}", top.join(", "));
        };

        sim.reset_requests();
        let ((p0, s0), t0) = (cpu_seconds(), Instant::now());
        let (read, cursors) = cycle(&t.hub, vec![vec![None; FOLDERS.len()]; n], concurrency).await;
        let ((p1, s1), wall) = (cpu_seconds(), t0.elapsed());
        measure("first full pass", read, wall, (p1 - p0, s1 - s0), &sim);
        assert!(read >= n * 12, "every seeded item is read ({read})");

        sim.reset_requests();
        let ((p0, s0), t0) = (cpu_seconds(), Instant::now());
        let (read, _) = cycle(&t.hub, cursors, concurrency).await;
        let ((p1, s1), wall) = (cpu_seconds(), t0.elapsed());
        measure("no-change polling cycle", read, wall, (p1 - p0, s1 - s0), &sim);
        assert_eq!(read, 0, "nothing changed, nothing is read");
    });
    drop(sim);
}
