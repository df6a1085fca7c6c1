//! Flow 3 at scale: a Dynamics organization of N mailboxes (Dataverse simulator) whose
//! Exchange is the EWS simulator, reached through one email server profile with its own
//! credentials and impersonation (maximum concurrent connections: the seed's default, 10).
//! Measured, through the real `dynamics` and `ews` plugins:
//! - reading the organization's mailboxes from Dynamics (`refresh`);
//! - Test & Enable of all of them ("Apply Default Email Settings", which tests by default):
//!   each mailbox's calendar, contacts and tasks opened as the sync will, the organization's
//!   mark read in the mailbox and written (one mailbox, one organization), the statuses
//!   recorded and written back to Dynamics, an alert for each owner;
//! - the first processing cycle with one new message in each Inbox and one e-mail pending
//!   send per mailbox in Dynamics: each mailbox's six processing profiles run (e-mail in:
//!   the Inbox read in full, the message tracked as an e-mail activity; e-mail out: sent
//!   through Exchange and marked sent; appointments, tasks and contacts: the owner's rows and
//!   the mailbox's folders read, nothing to write), 10 runs at a time;
//! - a no-change polling cycle: the mailbox list read again, the test queue polled and every
//!   processing profile run again with nothing new (the organization's mark read in each
//!   mailbox first, as once per polling interval).
//!
//! Run: `./scripts/build-plugins.sh && cargo bench -p syncbridge --bench flow3`.
//! `FLOW3_BENCH_MAILBOXES` (default 1000), `FLOW3_BENCH_LATENCY_MS` (default 0: none; a
//! latency added to every simulated request).
//!
//! The simulators run in this process on their own tokio runtime (threads `flow3-sim`) over
//! plain HTTP on loopback (the profile allows credentials over HTTP explicitly); "host CPU" is
//! the process's CPU time minus the simulator's threads.

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
use syncbridge::control::dynamics_flow::{self, FlowKind};
use syncbridge::control::dynamics_mailboxes::{self as mailboxes, ProcessingDefaults};
use syncbridge::control::email_server_profiles::{self as profiles, ProfileSecrets};
use syncbridge::control::runs::RunMode;
use syncbridge::control::Actor;
use syncbridge::hub::Hub;
use syncbridge::secrets::SecretString;
use syncbridge::store::now_ms;
use syncbridge_sim::{Seed, Services, SimConfig, Simulator};

const SIM_THREADS: &str = "flow3-sim";
const TOKEN: &str = "bench-dataverse-token";
const SERVICE_PASSWORD: &str = "Svc-bench-pw";
const ORG: &str = "org";
/// Processing runs at once (the profile's maximum concurrent connections).
const RUNS_AT_ONCE: usize = 10;
const TYPES: &str = "http://schemas.microsoft.com/exchange/services/2006/types";

/// Runs every processing profile of every mailbox (e-mail in and out, appointments, tasks,
/// contacts), `RUNS_AT_ONCE` at a time; answers (applied, failed) over all runs.
async fn processing_cycle(hub: &Arc<Hub>, n: usize) -> (u64, u64) {
    let mut ids = Vec::with_capacity(FlowKind::ALL.len() * n);
    for m in 0..n {
        for kind in FlowKind::ALL {
            ids.push(dynamics_flow::profile_id(
                &format!("{ORG}:{}", address(m)),
                kind,
            ));
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    let (mut applied, mut failed) = (0, 0);
    for id in ids {
        while tasks.len() >= RUNS_AT_ONCE {
            let (a, f) = tasks.join_next().await.unwrap().unwrap();
            (applied, failed) = (applied + a, failed + f);
        }
        let hub = hub.clone();
        tasks.spawn(async move {
            let r = common::outcome(common::run_now(&hub, &id, RunMode::Run).await)
                .unwrap_or_else(|e| panic!("{id}: {e}"));
            (r.applied, r.failed)
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (a, f) = done.unwrap();
        (applied, failed) = (applied + a, failed + f);
    }
    (applied, failed)
}

fn address(m: usize) -> String {
    format!("user{m}@contoso.com")
}

fn seed(n: usize) -> Seed {
    let mut accounts = vec![
        json!({"email": "svc@contoso.com", "password": SERVICE_PASSWORD, "canImpersonate": true}),
    ];
    let mut rows = Vec::with_capacity(n);
    let mut users = Vec::with_capacity(n);
    for m in 0..n {
        accounts.push(json!({"email": address(m), "password": format!("pw-{m}")}));
        users.push(
            json!({"systemuserid": format!("00000000-0000-4000-9000-{m:012}"),
            "internalemailaddress": address(m), "firstname": "User", "lastname": format!("{m}")}),
        );
        rows.push(
            json!({"mailboxid": format!("00000000-0000-4000-8000-{m:012}"),
            "name": format!("User {m}"), "emailaddress": address(m),
            "emailrouteraccessapproval": 1}),
        );
    }
    let doc = json!({
        "ews": {"accounts": accounts},
        "dynamics": {"tokens": [TOKEN], "rows": {"mailboxes": rows, "systemusers": users}}
    });
    Seed::from_json(&doc.to_string()).unwrap()
}

/// Wall time, host CPU and simulator CPU (seconds) of `f`.
async fn measured<T>(f: impl std::future::Future<Output = T>) -> (T, Duration, f64, f64) {
    let (p0, s0) = cpu::process_and_threads(SIM_THREADS);
    let t0 = Instant::now();
    let out = f.await;
    let wall = t0.elapsed();
    let (p1, s1) = cpu::process_and_threads(SIM_THREADS);
    (out, wall, (p1 - p0) - (s1 - s0), s1 - s0)
}

fn print(label: &str, n: usize, wall: Duration, host: f64, sim_cpu: f64, sim: &Simulator) {
    let stats = sim.requests();
    let dataverse: u64 = stats
        .routes
        .iter()
        .filter(|(k, _)| k.contains("/api/data/"))
        .map(|(_, v)| *v)
        .sum();
    println!(
        "{label}: {:.2} s; {} requests ({:.2}/mailbox: {dataverse} to Dataverse, {} to EWS); host CPU {:.2} s = {:.3} ms/mailbox; simulator CPU {:.2} s",
        wall.as_secs_f64(),
        stats.total,
        stats.total as f64 / n as f64,
        stats.total - dataverse,
        host,
        host * 1e3 / n as f64,
        sim_cpu,
    );
    let mut ops: Vec<(String, u64)> = stats.operations.into_iter().collect();
    ops.sort_by_key(|o| std::cmp::Reverse(o.1));
    let ops: Vec<String> = ops.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
    if !ops.is_empty() {
        println!("    EWS operations: {}", ops.join(", "));
    }
}

fn main() {
    let n = env_or("FLOW3_BENCH_MAILBOXES", 1_000) as usize;
    let latency = env_or("FLOW3_BENCH_LATENCY_MS", 0);
    let host = runtime("flow3-host");
    let sim_rt = runtime(SIM_THREADS);
    let label = if latency > 0 {
        format!("{latency} ms latency per request")
    } else {
        "no latency".into()
    };
    println!("\n== flow 3, {n} mailboxes, one email server profile (10 concurrent connections), {label} ==");
    let t0 = Instant::now();
    let sim = sim_rt.block_on(async {
        Simulator::start(SimConfig {
            services: Services {
                ews: true,
                dynamics: true,
                graph: true,
                ..Services::NONE
            },
            seed: Some(seed(n)),
            ..SimConfig::all()
        })
        .await
        .expect("the simulators start")
    });
    if latency > 0 {
        sim.set_latency(Some(Duration::from_millis(latency)));
    }
    host.block_on(async {
        let t = common::hub().await;
        let hub = &t.hub;
        for p in ["dynamics", "ews", "dynamics-exchange"] {
            common::install(hub, p).await;
        }
        let config = json!({"url": sim.base_url()}).to_string();
        let bearer = json!({"kind": "bearer", "token": TOKEN}).to_string();
        common::loopback_connection(hub, ORG, "dynamics", &config, &[("default", &bearer)]).await;
        let settings = serde_json::from_value(json!({
            "name": "Contoso Exchange", "server_type": "exchange",
            "incoming_location": sim.ews_url(), "outgoing_location": sim.ews_url(),
            "incoming": {"credentials": "profile", "username": "svc@contoso.com"},
            "allow_credentials_over_http": true, "allow_private_network": true
        }))
        .unwrap();
        profiles::create(
            hub,
            Actor::Msp,
            "exch",
            None,
            settings,
            ProfileSecrets {
                incoming: Some(SecretString::new(SERVICE_PASSWORD)),
                outgoing: None,
            },
        )
        .await
        .unwrap();
        mailboxes::set_defaults(
            hub,
            Actor::Msp,
            ORG,
            ProcessingDefaults {
                server_profile: Some("exch".into()),
                ..ProcessingDefaults::default()
            },
        )
        .await
        .unwrap();
        println!(
            "set-up (seed, profile saved): {:.1} s",
            t0.elapsed().as_secs_f64()
        );

        sim.reset_requests();
        let (found, wall, host_cpu, sim_cpu) =
            measured(mailboxes::refresh(hub, Actor::Msp, ORG)).await;
        let found = found.unwrap();
        assert_eq!(found.new as usize, n);
        print(
            "read the mailboxes from Dynamics",
            n,
            wall,
            host_cpu,
            sim_cpu,
            &sim,
        );

        let ids: Vec<String> = (0..n).map(|m| format!("{ORG}:{}", address(m))).collect();
        sim.reset_requests();
        let ((), wall, host_cpu, sim_cpu) = measured(async {
            mailboxes::apply_defaults(hub, Actor::Msp, &ids, true)
                .await
                .unwrap();
            let mut succeeded = 0;
            loop {
                let run = mailboxes::run_due(hub, now_ms(), 500).await.unwrap();
                if run.tested == 0 {
                    break;
                }
                assert_eq!(run.not_written, 0, "every status reaches Dynamics");
                succeeded += run.succeeded;
            }
            assert_eq!(succeeded as usize, n, "every mailbox passes");
        })
        .await;
        print(
            "Test & Enable (apply default settings, test, write back)",
            n,
            wall,
            host_cpu,
            sim_cpu,
            &sim,
        );
        let last = sim
            .dynamics()
            .get(
                "mailboxes",
                &format!("00000000-0000-4000-8000-{:012}", n - 1),
            )
            .unwrap();
        assert_eq!(last["actstatus"], json!(1), "statuses reach Dynamics");

        for m in 0..n {
            let a = address(m);
            let xml = format!(
                r#"<t:Message xmlns:t="{TYPES}"><t:Subject>Order {m}</t:Subject><t:Body BodyType="HTML">&lt;p&gt;5 printers&lt;/p&gt;</t:Body><t:ToRecipients><t:Mailbox><t:EmailAddress>{a}</t:EmailAddress></t:Mailbox></t:ToRecipients><t:From><t:Mailbox><t:EmailAddress>customer@fabrikam.com</t:EmailAddress></t:Mailbox></t:From><t:InternetMessageId>&lt;order-{m}@fabrikam.com&gt;</t:InternetMessageId></t:Message>"#
            );
            sim.ews().add_item(&a, "inbox", &xml, None).unwrap();
            sim.dynamics().insert(
                "emails",
                json!({"subject": format!("Quote {m}"), "directioncode": true, "sender": a,
                       "torecipients": "customer@fabrikam.com", "statecode": 1, "statuscode": 6}),
            );
        }
        let hub_arc: Arc<Hub> = hub.clone();
        sim.reset_requests();
        let ((applied, failed), wall, host_cpu, sim_cpu) =
            measured(processing_cycle(&hub_arc, n)).await;
        assert_eq!((applied as usize, failed), (2 * n, 0), "one tracked and one sent each");
        print(
            "first processing cycle (1 message in, 1 e-mail out per mailbox)",
            n,
            wall,
            host_cpu,
            sim_cpu,
            &sim,
        );

        sim.reset_requests();
        let ((), wall, host_cpu, sim_cpu) = measured(async {
            let again = mailboxes::refresh(hub, Actor::Msp, ORG).await.unwrap();
            assert_eq!((again.new, again.known as usize), (0, n));
            let run = mailboxes::run_due(hub, now_ms(), 500).await.unwrap();
            assert_eq!(run.tested, 0, "nothing is due");
            // The e-mails sent last cycle left the pending ones: each link notes it once.
            let (_, failed) = processing_cycle(&hub_arc, n).await;
            assert_eq!(failed, 0);
        })
        .await;
        print(
            "polling cycle after sending (each sent e-mail noted gone from pending)",
            n,
            wall,
            host_cpu,
            sim_cpu,
            &sim,
        );
        // A polling interval later (5 minutes or more), the organization's mark in each
        // mailbox is due to be read again before its appointments, tasks and contacts run.
        sqlx::query("UPDATE dynamics_sync_owner_checks SET checked_at = 0")
            .execute(hub.store().pool())
            .await
            .unwrap();
        sim.reset_requests();
        let ((), wall, host_cpu, sim_cpu) = measured(async {
            let again = mailboxes::refresh(hub, Actor::Msp, ORG).await.unwrap();
            assert_eq!((again.new, again.known as usize), (0, n));
            let run = mailboxes::run_due(hub, now_ms(), 500).await.unwrap();
            assert_eq!(run.tested, 0, "nothing is due");
            let (applied, failed) = processing_cycle(&hub_arc, n).await;
            assert_eq!((applied, failed), (0, 0), "nothing new");
        })
        .await;
        print("no-change polling cycle", n, wall, host_cpu, sim_cpu, &sim);
    });
    drop(sim);
}
