//! The real binary as an operator runs it: set up with the CLI, then
//! `syncbridge serve`; a profile saved through the REST API runs within
//! seconds (the scheduler claims the queued run), a dry run's filter
//! preview is served, the runs list and `/metrics` show what happened. A gzip bomb
//! uploaded as a plugin package is refused with the server's memory bounded.

use crate::common;

use serde_json::{json, Value};
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use syncbridge_sim::{Seed, Services, SimConfig, Simulator};

const TENANT: &str = "contoso.onmicrosoft.com";
const CLIENT: &str = "22222222-2222-4222-8222-222222222222";
const E3: &str = "c7df2760-2c81-4ef7-b578-5b5392b571df";

fn cli(data: &std::path::Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_syncbridge"))
        .args(["--data-dir", data.to_str().unwrap(), "--log", "warn"])
        .args(args)
        .env_remove("SYNCBRIDGE_MASTER_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "syncbridge {args:?} failed:\n{stdout}\n{stderr}"
    );
    stdout
}

/// Kills the server when the test ends, however it ends.
struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn simulators() -> Simulator {
    let users: Vec<Value> = (1..=4)
        .map(|n| {
            json!({"id": format!("u{n}"), "userPrincipalName": format!("user{n}@{TENANT}"),
                   "givenName": format!("Given{n}"), "surname": "Sur", "accountEnabled": true,
                   "assignedLicenses": if n == 4 { json!([]) } else { json!([{"skuId": E3, "disabledPlans": []}]) }})
        })
        .collect();
    let doc = json!({
        "graph": {"tenants": [{"id": "11111111-1111-4111-8111-111111111111", "domain": TENANT,
            "apps": [{"client_id": CLIENT, "client_secret": "s3cret"}],
            "subscribedSkus": [{"skuId": E3, "skuPartNumber": "ENTERPRISEPACK"}], "users": users}]},
        "autotask": {
            "apiUsers": [{"userName": "api@msp.example", "secret": "at-secret", "integrationCode": "TRACKING"}],
            "entities": {"Companies": [{"id": 1, "companyName": "Contoso"}],
                         "CompanyLocations": [{"id": 11, "companyID": 1, "name": "Main"}]}
        }
    });
    Simulator::start(SimConfig {
        services: Services {
            graph: true,
            autotask: true,
            ..Services::NONE
        },
        seed: Some(Seed::from_json(&doc.to_string()).unwrap()),
        ..SimConfig::all()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_saved_through_the_api_runs_within_seconds() {
    let sim = simulators().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for p in ["graph", "autotask", "m365-psa-contacts"] {
        cli(
            &data,
            &["plugin", "install", common::package(p).to_str().unwrap()],
            None,
        );
    }
    cli(
        &data,
        &["company", "add", "contoso", "--name", "Contoso Ltd"],
        None,
    );
    let graph_config = json!({"graph_url": sim.graph_url(), "tenant": TENANT}).to_string();
    let graph_cred = json!({"default": {"kind": "oauth2-client-credentials", "token_url": sim.token_url(TENANT),
        "client_id": CLIENT, "client_secret": "s3cret", "scope": "https://graph.microsoft.com/.default"}});
    cli(
        &data,
        &[
            "connection",
            "add",
            "m365",
            "--plugin",
            "graph",
            "--config",
            &graph_config,
            "--allow-host",
            "127.0.0.1",
            "--allow-private-network",
            "--credentials-stdin",
        ],
        Some(&graph_cred.to_string()),
    );
    let at_config = json!({"api_user": "api@msp.example", "zone_lookup_url": format!("{}/atservicesrest", sim.base_url())}).to_string();
    let at_cred = json!({"default": {"kind": "headers", "headers": {"ApiIntegrationCode": "TRACKING", "UserName": "api@msp.example", "Secret": "at-secret"}}});
    cli(
        &data,
        &[
            "connection",
            "add",
            "psa",
            "--plugin",
            "autotask",
            "--config",
            &at_config,
            "--allow-host",
            "127.0.0.1",
            "--allow-private-network",
            "--credentials-stdin",
        ],
        Some(&at_cred.to_string()),
    );
    let token_out = cli(
        &data,
        &[
            "token",
            "create",
            "--name",
            "ops",
            "--role",
            "operator",
            "--company",
            "contoso",
        ],
        None,
    );
    let admin_out = cli(
        &data,
        &["token", "create", "--name", "admin", "--role", "admin"],
        None,
    );
    let token_of = |out: &str| {
        out.split_whitespace()
            .find(|w| w.starts_with("sbt_"))
            .expect("the token is printed")
            .to_owned()
    };
    let (operator, admin) = (token_of(&token_out), token_of(&admin_out));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_syncbridge"))
            .args([
                "--data-dir",
                data.to_str().unwrap(),
                "--log",
                "warn",
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .env_remove("SYNCBRIDGE_MASTER_KEY")
            .env_remove("SYNCBRIDGE_SMTP_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Save the profile through the API: the scheduler runs it within seconds.
    let saved_at = Instant::now();
    let r = http
        .post(format!("{base}/profiles"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(json!({
            "id": "contoso-contacts", "company_id": "contoso",
            "source_connection": "m365", "source_scope": "users",
            "mapper_plugin": "m365-psa-contacts",
            "mapper_options": {"target": "autotask", "filters": [{"priority": 1, "kind": "all-licensed", "site": {"id": "11", "name": "Main"}}]},
            "target_connection": "psa", "target_scope": "contacts:company=1",
            "daily_at": "02:00"
        }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let runs_of = |token: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let v: Value = http
                .get(format!("{base}/runs?profile=contoso-contacts"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
                .parse::<Value>()
                .unwrap();
            v["items"].as_array().cloned().unwrap_or_default()
        }
    };
    let first = loop {
        let runs = runs_of(operator.clone()).await;
        if let Some(done) = runs.iter().find(|r| {
            r["trigger"] == "saved" && r["status"] != "queued" && r["status"] != "running"
        }) {
            break done.clone();
        }
        assert!(
            saved_at.elapsed() < Duration::from_secs(30),
            "no run finished: {runs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = saved_at.elapsed();
    assert_eq!(first["status"], "succeeded", "{first}");
    assert!(
        took < Duration::from_secs(10),
        "the saved profile ran after {took:?}"
    );
    eprintln!("saved profile ran and finished {took:?} after the save");
    let contacts = sim.autotask().rows("Contacts");
    assert_eq!(contacts.len(), 3, "three licensed users: {contacts:?}");

    // The filter preview from the API: a dry run over a full pass, so every
    // user shows (a plain dry run after the sync would show no change).
    let r = http
        .post(format!("{base}/profiles/contoso-contacts/preview"))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let run: Value = r.text().await.unwrap().parse().unwrap();
    let run_id = run["id"].as_str().unwrap().to_owned();
    let plan_id = loop {
        let v: Value = http
            .get(format!("{base}/runs/{run_id}"))
            .bearer_auth(&operator)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .parse::<Value>()
            .unwrap();
        let status = v["run"]["status"]
            .as_str()
            .or(v["status"].as_str())
            .unwrap_or_default()
            .to_owned();
        if status == "planned" {
            let plan = v["run"]["plan_id"]
                .as_str()
                .or(v["plan_id"].as_str())
                .unwrap()
                .to_owned();
            break plan;
        }
        assert!(
            !["failed", "succeeded", "stale"].contains(&status.as_str()),
            "{v}"
        );
        assert!(
            saved_at.elapsed() < Duration::from_secs(60),
            "the dry run did not finish: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let preview: Value = http
        .get(format!("{base}/plans/{plan_id}/preview"))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .parse::<Value>()
        .unwrap();
    let rows = preview["items"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{preview}");
    assert!(
        rows.iter().filter(|r| r["action"] == "noop").count() == 4,
        "everything is in sync: {preview}"
    );
    let u4 = rows.iter().find(|r| r["source_id"] == "u4").unwrap();
    assert!(u4["reason"].as_str().unwrap().contains("licence"), "{u4}");

    // What Prometheus scrapes: a token not scoped to a company is needed.
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let scrape = |token: Option<&str>| {
        let mut req = http.get(&metrics);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(scrape(None).await.0, 401);
    assert_eq!(scrape(Some(&operator)).await.0, 403, "scoped to contoso");
    let (status, text) = scrape(Some(&admin)).await;
    assert_eq!(status, 200, "{text}");
    let value = |name: &str, labels: &[(&str, &str)]| {
        crate::metrics::sample(&text, name, labels)
            .unwrap_or_else(|| panic!("no {name}{labels:?} in\n{text}"))
    };
    let profile = ("profile", "contoso-contacts");
    assert_eq!(
        value(
            "syncbridge_runs_total",
            &[profile, ("mode", "run"), ("status", "succeeded")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "syncbridge_runs_total",
            &[profile, ("mode", "preview"), ("status", "planned")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "syncbridge_items_total",
            &[profile, ("action", "create"), ("outcome", "applied")]
        ),
        3.0
    );
    for (plugin, export) in [
        ("graph", "pull"),
        ("m365-psa-contacts", "decide"),
        ("autotask", "push"),
    ] {
        assert!(
            value(
                "syncbridge_plugin_call_duration_seconds_count",
                &[("plugin", plugin), ("export", export)]
            ) >= 1.0
        );
    }
    assert!(value("syncbridge_scheduler_lag_seconds_count", &[]) >= 2.0);
    // Every request of the Microsoft 365 connection is counted, its OAuth token
    // requests included: as many as the simulator answered on Graph and Entra routes.
    let requests = sim.requests();
    let tokens = requests.count_matching("/oauth2/v2.0/token");
    assert!(tokens >= 1, "{requests:?}");
    let answered = requests.count_matching(" /v1.0/") + tokens;
    let counted: f64 = ["2xx", "3xx", "4xx", "5xx"]
        .into_iter()
        .filter_map(|class| {
            crate::metrics::sample(
                &text,
                "syncbridge_outbound_requests_total",
                &[
                    ("connection", "m365"),
                    ("host", "127.0.0.1"),
                    ("status_class", class),
                ],
            )
        })
        .sum();
    assert_eq!(counted, answered as f64, "{requests:?}\n{text}");
}

/// Peak resident memory (VmHWM) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// A gzip bomb shaped like the one in the security review: a tar of many
/// top-level files of zeros, each under the 64 MiB component limit, 2.3 GiB
/// in all, about 2.4 MB compressed. Written streaming: the test never holds
/// the uncompressed bytes.
fn gzip_bomb() -> Vec<u8> {
    use std::io::Read as _;
    const ENTRY: u64 = 60 << 20;
    let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::best(),
    ));
    for n in 0..40 {
        let mut header = tar::Header::new_gnu();
        header.set_size(ENTRY);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        archive
            .append_data(
                &mut header,
                format!("blob-{n:02}.wasm"),
                std::io::repeat(0).take(ENTRY),
            )
            .unwrap();
    }
    archive.into_inner().unwrap().finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_bomb_upload_is_refused_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The server's temporary directory, to see what uploads leave behind.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let out = cli(
        &data,
        &["token", "create", "--name", "admin", "--role", "admin"],
        None,
    );
    let admin = out
        .split_whitespace()
        .find(|w| w.starts_with("sbt_"))
        .expect("the token is printed")
        .to_owned();
    let bomb = tokio::task::spawn_blocking(gzip_bomb).await.unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_syncbridge"))
            .args(["--data-dir", data.to_str().unwrap(), "--log", "warn"])
            .args(["serve", "--no-scheduler", "--metrics-public", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .env_remove("SYNCBRIDGE_MASTER_KEY")
            .env_remove("SYNCBRIDGE_SMTP_URL")
            .env("TMPDIR", &tmp)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // --metrics-public: served without a token.
    let r = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("syncbridge_scheduler_lag_seconds_count 0"));
    let upload = |body: Vec<u8>| {
        http.post(format!("{base}/plugins"))
            .bearer_auth(&admin)
            .header("content-type", "application/gzip")
            .body(body)
            .send()
    };

    let pid = server.0.id();
    let before = peak_rss_kib(pid);
    let response = upload(bomb.clone()).await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let peak = peak_rss_kib(pid);
    let grown_mib = peak.saturating_sub(before) / 1024;
    eprintln!(
        "gzip bomb of {} bytes: HTTP {status} {text}; server peak RSS {} MiB, {} MiB before the upload (+{grown_mib} MiB)",
        bomb.len(),
        peak / 1024,
        before / 1024
    );
    assert!(status.is_client_error(), "{status}: {text}");
    assert!(
        grown_mib < 300,
        "the server's peak memory grew by {grown_mib} MiB unpacking the upload"
    );
    assert!(
        text.contains("more than 100 times its compressed size"),
        "the error names the limit: {text}"
    );

    // A real package still installs.
    let response = upload(common::package_archive("http-probe")).await.unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());

    // Neither upload left anything in the temporary directory.
    let left: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("syncbridge-upload"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
