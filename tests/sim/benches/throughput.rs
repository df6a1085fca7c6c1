//! Requests/s of a typical list call of each simulator over loopback.
//!
//! Run: `cargo bench -p syncbridge-sim --bench throughput` (add `--profile dev` for a quick
//! unoptimised run). Bounded: at most `SIM_BENCH_REQUESTS` requests (default 2000) or
//! `SIM_BENCH_SECS` seconds (default 5) per service, with 8 concurrent clients.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use syncbridge_sim::generate::{self, GENERATED_DYNAMICS_TOKEN, GENERATED_SECRET};
use syncbridge_sim::{GeneratorSpec, SimConfig, Simulator};

const CONCURRENCY: usize = 8;

type Req = Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync>;

async fn run(
    name: &str,
    sim: &Simulator,
    client: &reqwest::Client,
    make: Req,
    max: u64,
    secs: u64,
) {
    // warm-up and sanity check
    let r = make(client).send().await.expect("request");
    assert!(r.status().is_success(), "{name}: {}", r.status());
    sim.reset_requests();
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = vec![];
    let lat = Arc::new(std::sync::Mutex::new(Vec::new()));
    for _ in 0..CONCURRENCY {
        let (c, make, done, lat) = (client.clone(), make.clone(), done.clone(), lat.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline && done.fetch_add(1, Ordering::Relaxed) < max {
                let t = Instant::now();
                let r = make(&c).send().await.expect("request");
                let _ = r.bytes().await;
                lat.lock().unwrap().push(t.elapsed());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed();
    let n = sim.requests().total;
    let mut l = lat.lock().unwrap().clone();
    l.sort();
    let p50 = l.get(l.len() / 2).copied().unwrap_or_default();
    let p99 = l.get(l.len() * 99 / 100).copied().unwrap_or_default();
    println!(
        "{name:<12} {n:>6} requests in {:>5.2}s = {:>8.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0
    );
}

fn main() {
    let max: u64 = std::env::var("SIM_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let secs: u64 = std::env::var("SIM_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let sim = Simulator::start(SimConfig { generate: Some(GeneratorSpec::parse("tenants=1,users=200,contacts=2,appointments=2,tasks=1").unwrap()), ..SimConfig::all() })
            .await
            .unwrap();
        let c = reqwest::Client::new();
        let tok: serde_json::Value = c
            .post(sim.token_url(&generate::tenant_id(0)))
            .form(&[("client_id", generate::client_id(0).as_str()), ("client_secret", GENERATED_SECRET), ("scope", "https://graph.microsoft.com/.default"), ("grant_type", "client_credentials")])
            .send().await.unwrap().json().await.unwrap();
        let tok = tok["access_token"].as_str().unwrap().to_string();
        println!("list calls returning 100 records (users/contacts), {CONCURRENCY} concurrent clients, max {max} requests or {secs}s each");
        let g = format!("{}/users?$top=100&$select=id,displayName,mail,accountEnabled", sim.graph_url());
        run("graph", &sim, &c, Arc::new(move |c| c.get(&g).bearer_auth(&tok)), max, secs).await;
        let a = format!("{}/Contacts/query", sim.autotask_url());
        run("autotask", &sim, &c, Arc::new(move |c| c.post(&a).header("ApiIntegrationCode", "SIMCODE").header("UserName", "api@msp.example").header("Secret", GENERATED_SECRET).json(&json!({"MaxRecords": 100, "filter": [{"op": "exist", "field": "id"}]}))), max, secs).await;
        let w = format!("{}/company/contacts?pageSize=100", sim.connectwise_url());
        run("connectwise", &sim, &c, Arc::new(move |c| c.get(&w).basic_auth("msp+sim-public", Some(GENERATED_SECRET)).header("clientId", "bench")), max, secs).await;
        let e = sim.ews_url();
        let user = generate::upn(0, 1);
        for i in 0..98 {
            sim.ews().add_item(&user, "contacts", &format!(r#"<t:Contact xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><t:GivenName>B{i}</t:GivenName><t:Surname>Bench</t:Surname><t:EmailAddresses><t:Entry Key="EmailAddress1">b{i}@example.com</t:Entry></t:EmailAddresses></t:Contact>"#), None);
        }
        let body = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><s:Body><m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape><m:IndexedPageItemView MaxEntriesReturned="100" Offset="0" BasePoint="Beginning"/><m:ParentFolderIds><t:DistinguishedFolderId Id="contacts"/></m:ParentFolderIds></m:FindItem></s:Body></s:Envelope>"#;
        run("ews", &sim, &c, Arc::new(move |c| c.post(&e).basic_auth(&user, Some(GENERATED_SECRET)).body(body)), max, secs).await;
        let d = format!("{}/contacts?$top=100&$select=fullname,emailaddress1", sim.dynamics_url());
        run("dynamics", &sim, &c, Arc::new(move |c| c.get(&d).bearer_auth(GENERATED_DYNAMICS_TOKEN)), max, secs).await;
    });
}
