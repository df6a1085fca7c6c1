//! Flow 1 at scale: N Autotask resources and their N mailboxes in the EWS simulator, each
//! with 50 appointments — 25 entered in Autotask (sent to the calendar) and 25 in Outlook
//! (imported into Autotask), 5 of them weekly series with a moved and a deleted occurrence —
//! synchronized by the engine profiles one Exchange profile derives per resource
//! (`control::exchange_flow`: appointments, to-dos, service calls, import) through the real
//! `autotask`, `psa-exchange` and `ews` plugins. Measured: the first full sync, the next
//! cycle (which reads the echoes of the full sync's writes), then a no-change cycle; each
//! once without latency and once with a latency on every request.
//!
//! Run: `./scripts/build-plugins.sh && cargo bench -p syncbridge --bench flow1`.
//! `FLOW1_BENCH_MAILBOXES` (default 1000; 0 skips the case without latency),
//! `FLOW1_BENCH_LATENCY_MAILBOXES` (default 200; 0 skips the latency case), `FLOW1_BENCH_LATENCY_MS` (default 50), `FLOW1_BENCH_CONCURRENCY`
//! (resources synchronized at once, default 8; one resource's profiles run one after another,
//! as the runner makes them take turns). The connections keep their plugins' request limits
//! (`ews` 4 at once per connection, `autotask` 3). `FLOW1_BENCH_STATEMENTS=1` also counts the
//! SQL statements of each cycle (which makes sqlx log them: its CPU figures are then not the
//! bench's).
//!
//! The simulators run in this process on their own tokio runtime (threads `flow1-sim`), on
//! https://localhost:2610 with a generated CA the hub is told to trust; "host CPU" is the
//! process's CPU time minus the simulator's threads: the runner, engine, store, wasmtime and
//! the three plugins.

#[path = "../tests/host/common/mod.rs"]
mod common;
#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/setup.rs"]
mod setup;
#[path = "support/statements.rs"]
mod statements;

use serde_json::json;
use setup::{env_or, runtime};
use statements::Statements;
use std::sync::Arc;
use std::time::{Duration, Instant};
use syncbridge::capability::http::HttpSettings;
use syncbridge::control::exchange_flow::{self, FlowKind};
use syncbridge::control::exchange_profiles::{
    self as exchange, AccountAuth, ExchangeSettings, ExchangeVersion, ServerDetails, SyncAccount,
    SyncSettings,
};
use syncbridge::control::exchange_resources::{self as resources, Selection};
use syncbridge::control::runs::RunMode;
use syncbridge::control::Actor;
use syncbridge::hub::Hub;
use syncbridge::runtime::EngineOptions;
use syncbridge::secrets::SecretString;
use syncbridge_sim::{Seed, Services, SimConfig, Simulator, TlsMode};

const SIM_THREADS: &str = "flow1-sim";
const XP: &str = "bench";
const PORT: u16 = 2610;
const SERVICE_PASSWORD: &str = "Svc-bench-pw";
const TYPES: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
/// Appointments per mailbox entered on each side.
const FROM_PSA: usize = 25;
const FROM_OUTLOOK: usize = 25;
/// Of the Outlook ones, weekly series (each with a moved and a deleted occurrence).
const SERIES: usize = 5;
/// Occurrences of each series left in the 30 recurring days (four, the third deleted): each
/// becomes an Autotask appointment of its own.
const OCCURRENCES: usize = 3;
/// The flow kinds a resource runs with the profile's default allows, in the order the
/// scheduler queues them (the import, which relays calendar changes, first).
const KINDS: [FlowKind; 4] = [
    FlowKind::Import,
    FlowKind::Appointments,
    FlowKind::Todos,
    FlowKind::ServiceCalls,
];

fn mailbox(m: usize) -> String {
    format!("tech{m}@msp.example")
}

fn resource_id(m: usize) -> i64 {
    1000 + m as i64
}

/// An instant `days` from now at `hour`:`minute` UTC, as Autotask and EWS write it.
fn at(days: i64, hour: i8, minute: i8) -> String {
    let day = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .checked_add(jiff::Span::new().days(days))
        .unwrap();
    day.at(hour, minute, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn seed(n: usize) -> Seed {
    let mut accounts = vec![
        json!({"email": "svc@msp.example", "password": SERVICE_PASSWORD,
                                    "canImpersonate": true}),
    ];
    let mut items = serde_json::Map::new();
    let mut resources = Vec::new();
    let mut appointments = Vec::new();
    for m in 0..n {
        accounts.push(json!({"email": mailbox(m), "password": "pw",
                             "displayName": format!("Tech {m}")}));
        resources.push(json!({"id": resource_id(m), "firstName": "Tech", "lastName": format!("{m}"),
                              "email": mailbox(m), "userName": format!("tech{m}"), "isActive": true}));
        for a in 0..FROM_PSA {
            let day = 1 + (a % 20) as i64;
            let hour = 7 + (a / 20) as i8;
            appointments.push(json!({"resourceID": resource_id(m),
                "title": format!("Visit {a} of tech {m}"), "description": "On site",
                "startDateTime": at(day, hour, 0), "endDateTime": at(day, hour, 30)}));
        }
        let mut list = Vec::new();
        for a in 0..FROM_OUTLOOK - SERIES {
            let day = 1 + (a % 20) as i64;
            list.push(json!({"folder": "calendar", "xml": format!(
                "<t:CalendarItem xmlns:t=\"{TYPES}\"><t:Subject>Meeting {a}</t:Subject><t:Body BodyType=\"Text\">Agenda {a}</t:Body><t:Start>{}</t:Start><t:End>{}</t:End><t:Location>Room {a}</t:Location></t:CalendarItem>",
                at(day, 12, 0), at(day, 13, 0))}));
        }
        for s in 0..SERIES {
            let first = at(1 + s as i64, 15, 0);
            let date = &first[..10];
            list.push(json!({"folder": "calendar", "xml": format!(
                "<t:CalendarItem xmlns:t=\"{TYPES}\"><t:Subject>Weekly {s}</t:Subject><t:Start>{first}</t:Start><t:End>{}</t:End><t:Recurrence><t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>{}</t:DaysOfWeek></t:WeeklyRecurrence><t:NumberedRecurrence><t:StartDate>{date}</t:StartDate><t:NumberOfOccurrences>4</t:NumberOfOccurrences></t:NumberedRecurrence></t:Recurrence></t:CalendarItem>",
                at(1 + s as i64, 16, 0), weekday(date))}));
        }
        items.insert(mailbox(m), serde_json::Value::Array(list));
    }
    let doc = json!({
        "ews": {"accounts": accounts, "items": items},
        "autotask": {
            "apiUsers": [{"userName": "api@msp.example", "secret": "at-secret", "integrationCode": "TRACKING"}],
            "entities": {"Resources": resources, "Appointments": appointments}
        }
    });
    Seed::from_json(&doc.to_string()).unwrap()
}

/// The English day name of a `YYYY-MM-DD` date, as EWS's `DaysOfWeek` spells it.
fn weekday(date: &str) -> &'static str {
    let d: jiff::civil::Date = date.parse().unwrap();
    match d.weekday() {
        jiff::civil::Weekday::Monday => "Monday",
        jiff::civil::Weekday::Tuesday => "Tuesday",
        jiff::civil::Weekday::Wednesday => "Wednesday",
        jiff::civil::Weekday::Thursday => "Thursday",
        jiff::civil::Weekday::Friday => "Friday",
        jiff::civil::Weekday::Saturday => "Saturday",
        jiff::civil::Weekday::Sunday => "Sunday",
    }
}

/// Outlook moves the second occurrence of every series an hour later and deletes the third,
/// over the wire as each user.
async fn make_exceptions(sim: &Simulator, n: usize, ca: &reqwest::Certificate) {
    let client = reqwest::Client::builder()
        .add_root_certificate(ca.clone())
        .build()
        .unwrap();
    let url = format!("https://localhost:{PORT}/EWS/Exchange.asmx");
    let limit = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for m in 0..n {
        let masters: Vec<String> = sim
            .ews()
            .items(&mailbox(m), "calendar")
            .into_iter()
            .filter(|(_, _, subject)| subject.starts_with("Weekly"))
            .map(|(id, _, _)| id)
            .collect();
        assert_eq!(masters.len(), SERIES);
        for (s, master) in masters.into_iter().enumerate() {
            let (client, url, limit) = (client.clone(), url.clone(), limit.clone());
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await.unwrap();
                let occ = |i: u32| format!(r#"<t:OccurrenceItemId RecurringMasterId="{master}" InstanceIndex="{i}"/>"#);
                let moved_start = at(1 + s as i64 + 7, 16, 0);
                let moved_end = at(1 + s as i64 + 7, 17, 0);
                for body in [
                    format!(r#"<m:UpdateItem ConflictResolution="AlwaysOverwrite" SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges><t:ItemChange>{}<t:Updates><t:SetItemField><t:FieldURI FieldURI="calendar:Start"/><t:CalendarItem><t:Start>{moved_start}</t:Start></t:CalendarItem></t:SetItemField><t:SetItemField><t:FieldURI FieldURI="calendar:End"/><t:CalendarItem><t:End>{moved_end}</t:End></t:CalendarItem></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"#, occ(2)),
                    format!(r#"<m:DeleteItem DeleteType="HardDelete" SendMeetingCancellations="SendToNone"><m:ItemIds>{}</m:ItemIds></m:DeleteItem>"#, occ(3)),
                ] {
                    let envelope = format!(
                        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="{TYPES}"><s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header><s:Body>{body}</s:Body></s:Envelope>"#
                    );
                    let text = client
                        .post(&url)
                        .basic_auth(mailbox(m), Some("pw"))
                        .header("Content-Type", "text/xml; charset=utf-8")
                        .body(envelope)
                        .send()
                        .await
                        .unwrap()
                        .text()
                        .await
                        .unwrap();
                    assert!(text.contains(r#"ResponseClass="Success""#), "{text}");
                }
            });
        }
    }
    tasks.join_all().await;
}

/// The Exchange profile form: EWS on localhost:2610, Basic, impersonation, default allows.
fn form() -> ExchangeSettings {
    ExchangeSettings {
        name: "Bench Exchange".into(),
        enabled: true,
        psa_connection: "psa".into(),
        server: ServerDetails {
            address: format!("localhost:{PORT}"),
            virtual_directory: None,
            domain: None,
            version: ExchangeVersion::Exchange2016,
            hosted_by_third_party: false,
            use_graph: false,
        },
        interval_minutes: 15,
        account: SyncAccount {
            auth: AccountAuth::Basic,
            username: "svc@msp.example".into(),
            mailbox: "svc@msp.example".into(),
            tenant: None,
            token_url: None,
            use_for_users: true,
        },
        notify_to: "ops@msp.example".into(),
        sync: SyncSettings::default(),
        allow_private_network: true,
    }
}

/// What one cycle over every resource did.
#[derive(Default)]
struct Cycle {
    runs: u64,
    applied: u64,
    failed: u64,
}

/// Runs every resource's flow profiles, `concurrency` resources at a time, each resource's
/// one after another.
async fn cycle(hub: &Arc<Hub>, n: usize, concurrency: usize) -> Cycle {
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for m in 0..n {
        let (hub, limit) = (hub.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            let mut c = Cycle::default();
            for kind in KINDS {
                let id = exchange_flow::profile_id(XP, kind, Some(&resource_id(m).to_string()));
                let report = common::outcome(common::run_now(&hub, &id, RunMode::Run).await)
                    .unwrap_or_else(|e| panic!("{id}: {e}"));
                c.runs += 1;
                c.applied += report.applied;
                c.failed += report.failed;
            }
            c
        });
    }
    let mut all = Cycle::default();
    for c in tasks.join_all().await {
        all.runs += c.runs;
        all.applied += c.applied;
        all.failed += c.failed;
    }
    all
}

/// A measured cycle: what it did, its wall time, host CPU and simulator CPU (seconds).
struct Measured {
    cycle: Cycle,
    wall: Duration,
    host_cpu: f64,
    sim_cpu: f64,
}

async fn measured(f: impl std::future::Future<Output = Cycle>) -> Measured {
    let (p0, s0) = cpu::process_and_threads(SIM_THREADS);
    let t0 = Instant::now();
    let cycle = f.await;
    let wall = t0.elapsed();
    let (p1, s1) = cpu::process_and_threads(SIM_THREADS);
    Measured {
        cycle,
        wall,
        host_cpu: (p1 - p0) - (s1 - s0),
        sim_cpu: s1 - s0,
    }
}

fn print(
    label: &str,
    n: usize,
    m: &Measured,
    sim: &Simulator,
    latency: Option<Duration>,
    statements: Option<&Statements>,
) {
    let Measured {
        cycle: c,
        wall,
        host_cpu: host,
        sim_cpu,
    } = m;
    let stats = sim.requests();
    println!(
        "{label}: {} runs, {} applied, {} failed, in {:.2} s; {} requests ({:.1}/mailbox); host CPU {:.2} s = {:.2} ms/mailbox; simulator CPU {:.2} s",
        c.runs,
        c.applied,
        c.failed,
        wall.as_secs_f64(),
        stats.total,
        stats.total as f64 / n as f64,
        host,
        host * 1e3 / n as f64,
        sim_cpu,
    );
    let mut ops: Vec<(String, u64)> = stats.operations.into_iter().collect();
    ops.sort_by_key(|o| std::cmp::Reverse(o.1));
    let ops: Vec<String> = ops.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
    println!("    EWS operations: {}", ops.join(", "));
    let mut routes: Vec<(String, u64)> = stats
        .routes
        .into_iter()
        .filter(|(k, _)| !k.contains("Exchange.asmx"))
        .collect();
    routes.sort_by_key(|r| std::cmp::Reverse(r.1));
    let routes: Vec<String> = routes
        .iter()
        .take(6)
        .map(|(k, v)| format!("{k} ×{v}"))
        .collect();
    println!("    other requests: {}", routes.join(", "));
    if let Some(counted) = statements.map(Statements::take) {
        let total: u64 = counted.iter().map(|(_, c)| c).sum();
        println!(
            "    SQL statements: {total} ({:.1}/mailbox); the most frequent, per mailbox:",
            total as f64 / n as f64
        );
        for (statement, count) in counted.iter().take(40) {
            println!("      {:>6.2}  {statement}", *count as f64 / n as f64);
        }
    }
    if let Some(l) = latency {
        let serial = stats.total as f64 * l.as_secs_f64();
        println!(
            "    {} requests × {} ms = {serial:.1} s one after another; wall {:.1} s → {:.0} % of the latency hidden",
            stats.total,
            l.as_millis(),
            wall.as_secs_f64(),
            (1.0 - wall.as_secs_f64() / serial).max(0.0) * 100.0
        );
    }
}

fn scenario(
    host: &tokio::runtime::Runtime,
    sim_rt: &tokio::runtime::Runtime,
    n: usize,
    latency: Option<Duration>,
    concurrency: usize,
    statements: Option<&Statements>,
) {
    let label = match latency {
        Some(l) => format!("{} ms latency per request", l.as_millis()),
        None => "no latency".into(),
    };
    println!("\n== flow 1, {n} resources × {} appointments ({FROM_PSA} from Autotask, {FROM_OUTLOOK} from Outlook of which {SERIES} weekly series with a moved and a deleted occurrence), {label}, {concurrency} resources at a time ==", FROM_PSA + FROM_OUTLOOK);
    let t0 = Instant::now();
    let config = SimConfig {
        services: Services {
            ews: true,
            autotask: true,
            ..Services::NONE
        },
        port: PORT,
        tls: TlsMode::GeneratedCa,
        seed: Some(seed(n)),
        ..SimConfig::all()
    };
    // The previous scenario's listener may still be closing.
    let sim = sim_rt.block_on(async {
        for _ in 0..300 {
            match Simulator::start(config.clone()).await {
                Ok(sim) => return sim,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        panic!("port {PORT} stayed in use for 30 s");
    });
    sim.autotask().set_threshold(u64::MAX / 4, Some(0));
    let ca_pem = sim.ca_pem().unwrap().to_owned();
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    sim_rt.block_on(make_exceptions(&sim, n, &ca));
    if let Some(l) = latency {
        sim.set_latency(Some(l));
    }
    host.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let t = common::hub_with_options(
            dir,
            &url,
            EngineOptions {
                http: HttpSettings {
                    extra_ca_pems: vec![ca_pem.as_bytes().to_vec()],
                    ..HttpSettings::default()
                },
                ..EngineOptions::default()
            },
        )
        .await;
        for p in ["ews", "autotask", "psa-exchange"] {
            common::install(&t.hub, p).await;
        }
        let config = json!({"api_user": "api@msp.example",
            "zone_lookup_url": format!("{}/atservicesrest", sim.base_url())})
        .to_string();
        let headers = json!({"kind": "headers", "headers": {"ApiIntegrationCode": "TRACKING",
            "UserName": "api@msp.example", "Secret": "at-secret"}})
        .to_string();
        common::loopback_connection(&t.hub, "psa", "autotask", &config, &[("default", &headers)])
            .await;
        let hub = &t.hub;
        exchange::create(hub, Actor::Msp, XP, None, form(), Some(SecretString::new(SERVICE_PASSWORD)))
            .await
            .expect("the profile saves and its connection test passes");
        let found = resources::discover(hub, Actor::Msp, XP).await.unwrap();
        resources::enable(hub, Actor::Msp, XP, &Selection::All).await.unwrap();
        println!(
            "set-up (seed, {} exceptions over the wire, profile saved, {} resources found and enabled): {:.1} s",
            n * SERIES * 2,
            found.new,
            t0.elapsed().as_secs_f64()
        );

        sim.reset_requests();
        if let Some(s) = statements {
            s.take();
        }
        let full = measured(cycle(hub, n, concurrency)).await;
        print("full sync", n, &full, &sim, latency, statements);
        assert_eq!(full.cycle.failed, 0, "nothing fails");
        let calendar = sim.ews().items(&mailbox(n - 1), "calendar").len();
        assert_eq!(calendar, FROM_PSA + FROM_OUTLOOK, "the last mailbox holds both sides' appointments");
        let imported = sim
            .autotask()
            .rows("Appointments")
            .into_iter()
            .filter(|r| r["resourceID"] == json!(resource_id(n - 1)))
            .count();
        assert_eq!(
            imported,
            FROM_PSA + FROM_OUTLOOK - SERIES + SERIES * OCCURRENCES,
            "the last resource holds both sides' appointments, a series as its occurrences"
        );

        // The cycle after a full sync reads the echoes of its writes once, wherever the
        // flow reads them (for the calendar: the import, which relays them).
        sim.reset_requests();
        if let Some(s) = statements {
            s.take();
        }
        let settle = measured(cycle(hub, n, concurrency)).await;
        print("next cycle (the full sync's echoes)", n, &settle, &sim, latency, statements);
        assert_eq!(
            (settle.cycle.applied, settle.cycle.failed),
            (0, 0),
            "the echoes of the full sync are not changes"
        );

        sim.reset_requests();
        if let Some(s) = statements {
            s.take();
        }
        let again = measured(cycle(hub, n, concurrency)).await;
        print("no-change cycle", n, &again, &sim, latency, statements);
        assert_eq!(
            (again.cycle.applied, again.cycle.failed),
            (0, 0),
            "nothing changed, nothing is written"
        );
    });
    drop(sim);
}

fn main() {
    let n = env_or("FLOW1_BENCH_MAILBOXES", 1_000) as usize;
    let latency_n = env_or("FLOW1_BENCH_LATENCY_MAILBOXES", 200) as usize;
    let latency_ms = env_or("FLOW1_BENCH_LATENCY_MS", 50);
    let concurrency = env_or("FLOW1_BENCH_CONCURRENCY", 8) as usize;
    let statements = Statements::install_if("FLOW1_BENCH_STATEMENTS");
    let host = runtime("flow1-host");
    let sim_rt = runtime(SIM_THREADS);
    if n > 0 {
        scenario(&host, &sim_rt, n, None, concurrency, statements.as_ref());
    }
    if latency_n > 0 {
        scenario(
            &host,
            &sim_rt,
            latency_n,
            Some(Duration::from_millis(latency_ms)),
            concurrency,
            statements.as_ref(),
        );
    }
}
