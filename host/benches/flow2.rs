//! Flow 2 end to end at scale: one tenant of N licensed users in the Graph simulator, synced
//! through the `graph` connector, the `m365-psa-contacts` mapper, the engine and the
//! `autotask` connector into an empty Autotask simulator; then a no-change re-run (one
//! `users/delta` round). The same again with a simulated latency on every request.
//!
//! Run: `./scripts/build-plugins.sh && cargo bench -p syncbridge --bench flow2`.
//! `FLOW2_BENCH_USERS` (default 10000), `FLOW2_BENCH_LATENCY_USERS` (default 1000: with
//! 50 ms a request and 3 pushes in flight that is ~19 s), `FLOW2_BENCH_LATENCY_MS`
//! (default 50), `FLOW2_BENCH_PAGE` (profile page size, default 500).
//!
//! The simulator runs in this process on its own tokio runtime whose threads are named
//! `flow2-sim`; "host CPU" is the process's CPU time minus those threads', i.e. the runtime,
//! the plugins, the engine and the store.

#[path = "../tests/host/common/mod.rs"]
mod common;
#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/setup.rs"]
mod setup;

use serde_json::{json, Value};
use setup::{env_or, runtime};
use std::time::{Duration, Instant};
use syncbridge::control::runs::{RunMode, RunStatus};
use syncbridge::engine::profiles::{self, Profile};
use syncbridge::engine::rules::FieldRules;
use syncbridge::engine::RunReport;
use syncbridge::runner::{NoProgress, RunNow, Runner};
use syncbridge_sim::{Seed, Services, SimConfig, Simulator};

const TENANT: &str = "bench.onmicrosoft.com";
const TENANT_ID: &str = "33333333-3333-4333-8333-333333333333";
const CLIENT: &str = "44444444-4444-4444-8444-444444444444";
const E3: &str = "6fd2c87f-b296-42f0-b197-1e91e994b900";
const COMPANY: i64 = 1;
const SIM_THREADS: &str = "flow2-sim";

/// CPU seconds of the whole process and of the simulator's threads.
fn cpu_seconds() -> (f64, f64) {
    cpu::process_and_threads(SIM_THREADS)
}

fn seed(n: usize) -> Seed {
    let depts = ["IT", "Sales", "HR", "Finance"];
    let users: Vec<Value> = (0..n)
        .map(|u| {
            json!({
                "id": format!("00000000-0000-4000-8000-{u:012x}"),
                "userPrincipalName": format!("user{u}@{TENANT}"),
                "givenName": format!("Given{u}"),
                "surname": format!("Surname{u}"),
                "jobTitle": if u % 3 == 0 { json!("Engineer") } else { json!(null) },
                "department": depts[u % depts.len()],
                "businessPhones": [format!("+1 555 2{u:06}")],
                "mobilePhone": format!("+1 555 1{u:06}"),
                "accountEnabled": true,
                "assignedLicenses": [{"skuId": E3, "disabledPlans": []}],
            })
        })
        .collect();
    let doc = json!({
        "graph": {"tenants": [{
            "id": TENANT_ID, "domain": TENANT,
            "apps": [{"client_id": CLIENT, "client_secret": "s3cret"}],
            "subscribedSkus": [{"skuId": E3, "skuPartNumber": "ENTERPRISEPACK", "consumedUnits": n}],
            "users": users
        }]},
        "autotask": {
            "apiUsers": [{"userName": "api@msp.example", "secret": "at-secret", "integrationCode": "TRACKING"}],
            "entities": {
                "Companies": [{"id": COMPANY, "companyName": "Bench"}],
                "CompanyLocations": [{"id": 11, "companyID": COMPANY, "name": "IT"}, {"id": 12, "companyID": COMPANY, "name": "Main"}]
            }
        }
    });
    Seed::from_json(&doc.to_string()).unwrap()
}

struct Measured {
    wall: Duration,
    requests: u64,
    routes: Vec<(String, u64)>,
    host_cpu: f64,
    sim_cpu: f64,
    report: RunReport,
}

async fn measured(hub: &std::sync::Arc<syncbridge::hub::Hub>, sim: &Simulator) -> Measured {
    sim.reset_requests();
    let ((p0, s0), t0) = (cpu_seconds(), Instant::now());
    // The production path: a recorded, leased run, as `syncbridge run` makes.
    let request = RunNow {
        profile: "bench",
        mode: RunMode::Run,
        plan: None,
        trigger: "manual",
    };
    let run = Runner::new(hub.clone(), "bench", Duration::from_secs(60))
        .run_now(request, &NoProgress)
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let report = run.report.expect("a finished run has its counts").report;
    let (wall, (p1, s1)) = (t0.elapsed(), cpu_seconds());
    assert_eq!(report.failed, 0, "{report:?}");
    let stats = sim.requests();
    let mut routes: Vec<(String, u64)> = stats.routes.into_iter().collect();
    routes.sort_by_key(|r| std::cmp::Reverse(r.1));
    Measured {
        wall,
        requests: stats.total,
        routes,
        host_cpu: (p1 - p0) - (s1 - s0),
        sim_cpu: s1 - s0,
        report,
    }
}

fn print(what: &str, n: usize, m: &Measured, latency: Option<Duration>) {
    let secs = m.wall.as_secs_f64();
    println!(
        "{what}: {n} users in {secs:.2} s = {:.0} items/s; {} requests ({:.0}/s); host CPU {:.2} s ({:.0} µs/user), simulator CPU {:.2} s",
        n as f64 / secs,
        m.requests,
        m.requests as f64 / secs,
        m.host_cpu,
        m.host_cpu * 1e6 / n as f64,
        m.sim_cpu,
    );
    let r = &m.report.planned;
    println!(
        "    planned create {} update {} link {} noop {}; applied {}; pages {}",
        r.create, r.update, r.link, r.noop, m.report.applied, m.report.pages
    );
    let top: Vec<String> = m
        .routes
        .iter()
        .take(5)
        .map(|(k, v)| format!("{k} ×{v}"))
        .collect();
    println!("    requests: {}", top.join(", "));
    if let Some(l) = latency {
        let serial = m.requests as f64 * l.as_secs_f64();
        println!(
            "    {} requests × {} ms = {serial:.1} s if sent one after another; wall {secs:.1} s → {:.0} % of the latency hidden by concurrency",
            m.requests,
            l.as_millis(),
            (1.0 - secs / serial).max(0.0) * 100.0
        );
    }
}

fn scenario(
    host: &tokio::runtime::Runtime,
    sim_rt: &tokio::runtime::Runtime,
    n: usize,
    latency: Option<Duration>,
    page: u32,
) {
    let label = match latency {
        Some(l) => format!("{} ms latency", l.as_millis()),
        None => "no latency".into(),
    };
    println!("\n== flow 2, {n} licensed users, {label}, page size {page} ==");
    let sim = sim_rt
        .block_on(Simulator::start(SimConfig {
            services: Services {
                graph: true,
                autotask: true,
                ..Services::NONE
            },
            seed: Some(seed(n)),
            latency,
            ..SimConfig::all()
        }))
        .unwrap();
    // The hourly API threshold (10,000 by default) would stop a 10,000-user import.
    sim.autotask().set_threshold(u64::MAX / 4, Some(0));
    host.block_on(async {
        let t = common::hub().await;
        for p in ["graph", "m365-psa-contacts", "autotask"] {
            common::install(&t.hub, p).await;
        }
        let graph_cred = json!({"kind": "oauth2-client-credentials", "token_url": sim.token_url(TENANT), "client_id": CLIENT,
                                "client_secret": "s3cret", "scope": "https://graph.microsoft.com/.default"});
        common::loopback_connection(
            &t.hub,
            "m365",
            "graph",
            &json!({"graph_url": sim.graph_url(), "tenant": TENANT}).to_string(),
            &[("default", &graph_cred.to_string())],
        )
        .await;
        let at_cred = json!({"kind": "headers", "headers": {"ApiIntegrationCode": "TRACKING", "UserName": "api@msp.example", "Secret": "at-secret"}});
        let at_config = json!({"api_user": "api@msp.example", "zone_lookup_url": format!("{}/atservicesrest", sim.base_url())});
        common::loopback_connection(
            &t.hub,
            "psa",
            "autotask",
            &at_config.to_string(),
            &[("default", &at_cred.to_string())],
        )
        .await;
        let mut rules = FieldRules {
            rewrite_on_change: true,
            ..FieldRules::default()
        };
        rules.brakes.max_removal_share = 1.0;
        let options = json!({"target": "autotask", "filters": [
            {"priority": 1, "kind": "field", "field": "department", "value": "IT", "site": {"id": "11"}},
            {"priority": 2, "kind": "all-licensed", "site": {"id": "12"}}
        ]});
        profiles::save(
            t.hub.store(),
            &Profile {
                id: "bench".into(),
                source_connection: "m365".into(),
                source_scope: "users".into(),
                mapper_plugin: "m365-psa-contacts".into(),
                mapper_options: options.to_string(),
                target_connection: "psa".into(),
                target_scope: format!("contacts:company={COMPANY}"),
                rules,
                page_size: page,
            },
        )
        .await
        .unwrap();

        let full = measured(&t.hub, &sim).await;
        assert_eq!(full.report.planned.create as usize, n, "{:?}", full.report);
        assert_eq!(sim.autotask().rows("Contacts").len(), n);
        print("full sync into an empty Autotask", n, &full, latency);

        tokio::time::sleep(Duration::from_millis(2)).await;
        let again = measured(&t.hub, &sim).await;
        assert_eq!(again.report.applied, 0, "{:?}", again.report);
        print("no-change re-run (users/delta)", n, &again, latency);
        println!(
            "    re-run / full: {:.3} % of the wall time",
            again.wall.as_secs_f64() * 100.0 / full.wall.as_secs_f64()
        );
    });
    drop(sim);
}

fn main() {
    let users = env_or("FLOW2_BENCH_USERS", 10_000) as usize;
    let latency_users = env_or("FLOW2_BENCH_LATENCY_USERS", 1_000) as usize;
    let latency_ms = env_or("FLOW2_BENCH_LATENCY_MS", 50);
    let page = env_or("FLOW2_BENCH_PAGE", 500) as u32;
    let host = runtime("flow2-host");
    let sim_rt = runtime(SIM_THREADS);
    scenario(&host, &sim_rt, users, None, page);
    if latency_users > 0 && latency_ms > 0 {
        scenario(
            &host,
            &sim_rt,
            latency_users,
            Some(Duration::from_millis(latency_ms)),
            page,
        );
    }
}
