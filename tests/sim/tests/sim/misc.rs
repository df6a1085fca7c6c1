//! Generator, TLS modes and the `syncbridge-sim` binary.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use syncbridge_sim::generate::{self, GENERATED_DYNAMICS_TOKEN, GENERATED_SECRET};
use syncbridge_sim::{GeneratorSpec, SimConfig, Simulator, TlsMode};

#[tokio::test]
async fn generated_data_is_served_by_every_simulator() {
    let sim = Simulator::start(SimConfig {
        generate: Some(GeneratorSpec::parse("tenants=3,users=50").unwrap()),
        ..SimConfig::all()
    })
    .await
    .unwrap();
    let c = reqwest::Client::new();
    // Graph: tenant 2, licensed & enabled users only
    let (_, tok) = common::request_token(
        &sim,
        &c,
        &generate::tenant_id(2),
        &generate::client_id(2),
        GENERATED_SECRET,
        common::GRAPH_SCOPE,
    )
    .await;
    let tok = tok["access_token"].as_str().unwrap();
    let v: Value = common::json_of(c.get(format!("{}/users?$filter=accountEnabled eq true and assignedLicenses/$count ne 0&$count=true&$top=999", sim.graph_url())).bearer_auth(tok).header("ConsistencyLevel", "eventual")).await;
    // 50 users, unlicensed: 10,20,30,40; disabled: 15,30,45 → 50 - 4 - 2 = 44
    assert_eq!(v["@odata.count"], 44);
    let events = format!(
        "{}/users/{}/events",
        sim.graph_url(),
        generate::user_id(2, 1)
    );
    let b: Value = common::json_of(c.get(events).bearer_auth(tok)).await;
    assert_eq!(b["value"].as_array().unwrap().len(), 2);
    // Autotask
    let v: Value = common::json_of(
        c.post(format!("{}/Contacts/query/count", sim.autotask_url()))
            .header("ApiIntegrationCode", "SIMCODE")
            .header("UserName", "api@msp.example")
            .header("Secret", GENERATED_SECRET)
            .json(&json!({"filter": [{"op": "exist", "field": "id"}]})),
    )
    .await;
    assert_eq!(v["queryCount"], 150);
    // ConnectWise
    let v: Value = common::json_of(
        c.get(format!("{}/company/contacts/count", sim.connectwise_url()))
            .basic_auth("msp+sim-public", Some(GENERATED_SECRET))
            .header("clientId", "any"),
    )
    .await;
    assert_eq!(v["count"], 150);
    // Dynamics
    let v: Value = common::json_of(
        c.get(format!(
            "{}/mailboxes?$count=true&$top=1",
            sim.dynamics_url()
        ))
        .bearer_auth(GENERATED_DYNAMICS_TOKEN),
    )
    .await;
    assert_eq!(v["@odata.count"], 150);
    // EWS: service account impersonates a generated user
    assert_eq!(sim.ews().items(&generate::upn(1, 3), "contacts").len(), 2);
    let env = format!(
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><s:Header><t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation></s:Header><s:Body><m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:ParentFolderIds><t:DistinguishedFolderId Id="calendar"/></m:ParentFolderIds></m:FindItem></s:Body></s:Envelope>"#,
        generate::upn(1, 3)
    );
    let b = c
        .post(sim.ews_url())
        .basic_auth(
            format!("svc@{}", generate::domain(1)),
            Some(GENERATED_SECRET),
        )
        .body(env)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(b.contains("TotalItemsInView=\"2\""), "{b}");
}

#[tokio::test]
async fn tls_with_generated_ca_is_trusted_and_self_signed_is_refused() {
    let sim = Simulator::start(SimConfig {
        tls: TlsMode::GeneratedCa,
        ..SimConfig::all()
    })
    .await
    .unwrap();
    assert!(sim.base_url().starts_with("https://"));
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().unwrap().as_bytes()).unwrap();
    let trusting = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let r = trusting
        .get(format!("{}/users", sim.graph_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "TLS handshake succeeded and Graph answered"
    );
    let plain = reqwest::Client::new();
    assert!(
        plain
            .get(format!("{}/users", sim.graph_url()))
            .send()
            .await
            .is_err(),
        "unknown CA must be refused"
    );

    let ss = Simulator::start(SimConfig {
        tls: TlsMode::SelfSigned,
        ..SimConfig::all()
    })
    .await
    .unwrap();
    let err = plain.get(format!("{}/users", ss.graph_url())).send().await;
    assert!(err.is_err(), "self-signed certificate must be refused");
    // still reachable after refused handshakes
    let ca2 = reqwest::Certificate::from_pem(sim.ca_pem().unwrap().as_bytes()).unwrap();
    let again = reqwest::Client::builder()
        .add_root_certificate(ca2)
        .build()
        .unwrap();
    assert_eq!(
        again
            .get(format!("{}/users", sim.graph_url()))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[test]
fn binary_help_is_clear() {
    let out = Command::new(env!("CARGO_BIN_EXE_syncbridge-sim"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--graph",
        "--autotask",
        "--connectwise",
        "--ews",
        "--dynamics",
        "--port",
        "--seed",
        "--generate",
        "--latency",
        "--tls",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}:\n{text}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_syncbridge-sim"))
        .args(["--latency", "fast"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid duration"));
}

#[tokio::test]
async fn binary_prints_urls_and_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_syncbridge-sim"))
        .args([
            "--autotask",
            "--graph",
            "--generate",
            "tenants=1,users=3",
            "--latency",
            "1ms",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut urls = std::collections::HashMap::new();
    for _ in 0..6 {
        let Some(Ok(l)) = lines.next() else { break };
        let mut p = l.split_whitespace();
        if let (Some(k), Some(v)) = (p.next(), p.next()) {
            urls.insert(k.to_string(), v.to_string());
        }
        if urls.contains_key("admin") {
            break;
        }
    }
    let at = urls.get("autotask").cloned();
    let admin = urls.get("admin").cloned();
    let r = async {
        let at = at.expect("autotask URL printed");
        assert!(
            !urls.contains_key("ews"),
            "only requested services are printed"
        );
        let c = reqwest::Client::new();
        let v: Value = common::json_of(
            c.get(format!("{at}/Companies/1000"))
                .header("ApiIntegrationCode", "SIMCODE")
                .header("UserName", "api@msp.example")
                .header("Secret", GENERATED_SECRET),
        )
        .await;
        assert_eq!(v["item"]["companyName"], "Tenant 0 Ltd");
        let st: Value = common::get_json(&c, admin.unwrap().replace("/state", "/requests")).await;
        assert_eq!(st["total"], 1);
    };
    let res = tokio::time::timeout(std::time::Duration::from_secs(20), r).await;
    child.kill().unwrap();
    let _ = child.wait();
    res.expect("binary answered in time");
}

/// The JSON fault rules `docs/simulators.md` shows in its "Fault injection" section (table rows
/// and the `curl` example), in order.
fn documented_fault_rules() -> Vec<Value> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/simulators.md"
    ))
    .expect("docs/simulators.md");
    let start = doc.find("## Fault injection").expect("fault section");
    let section = &doc[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut rules = Vec::new();
    for line in section.lines() {
        // `{"route": …}` in a table row, or -d '{…}' in the curl example
        let mut rest = line;
        while let Some(i) = rest.find("{\"route\"") {
            let tail = &rest[i..];
            let end = tail.find(['`', '\'']).expect("closing quote");
            rules.push(serde_json::from_str(&tail[..end]).expect("documented rule is JSON"));
            rest = &tail[end..];
        }
    }
    rules
}

/// A request path of the running services that the rule's route glob matches.
fn path_for(route: &str) -> String {
    let glob = route.rsplit(' ').next().unwrap();
    [
        "/v1.0/users",
        "/EWS/Exchange.asmx",
        "/api/data/v9.2/contacts",
        "/v4_6_release/apis/3.0/company/contacts",
    ]
    .iter()
    .find(|p| {
        syncbridge_sim::faults::glob_match(&glob.to_ascii_lowercase(), &p.to_ascii_lowercase())
    })
    .unwrap_or_else(|| panic!("no known path matches {route}"))
    .to_string()
}

#[tokio::test]
async fn every_documented_fault_rule_is_accepted_and_fires() {
    let rules = documented_fault_rules();
    assert!(rules.len() >= 6, "found only {rules:?}");
    // generated data: the Dynamics token makes `/api/data/v9.2/contacts` answer with JSON
    let sim = Simulator::start(SimConfig {
        generate: Some(GeneratorSpec::parse("tenants=1,users=2").unwrap()),
        ..SimConfig::all()
    })
    .await
    .unwrap();
    let c = reqwest::Client::new();
    let admin = format!("{}/_admin/faults", sim.base_url());
    for rule in rules {
        c.delete(&admin).send().await.unwrap();
        let r = common::post_json(&c, &admin, &rule).await;
        assert_eq!(
            r.status(),
            201,
            "{rule} refused: {}",
            r.text().await.unwrap()
        );
        let route = rule["route"].as_str().unwrap();
        let method = rule["method"]
            .as_str()
            .or_else(|| route.split_once(' ').map(|(m, _)| m))
            .unwrap_or("GET");
        let url = format!("{}{}", sim.base_url(), path_for(route));
        let send = || {
            c.request(method.parse().unwrap(), &url)
                .bearer_auth(GENERATED_DYNAMICS_TOKEN)
                .body("{}")
                .send()
        };
        match rule["kind"].as_str().unwrap() {
            "sequence" => {
                let statuses = rule["statuses"].as_array().unwrap();
                for s in statuses {
                    let got = send().await.unwrap().status().as_u16();
                    if s == 0 {
                        assert!(!statuses.contains(&json!(got)), "{rule}: {got}");
                    } else {
                        assert_eq!(json!(got), *s, "{rule}");
                    }
                }
                if let Some(ra) = rule["retry_after"].as_str() {
                    c.delete(&admin).send().await.unwrap();
                    common::post_json(&c, &admin, &rule).await;
                    let r = send().await.unwrap();
                    assert_eq!(r.headers()["retry-after"], ra, "{rule}");
                }
            }
            "rate" => {
                let status = rule["status"].as_u64().unwrap() as u16;
                let rate = rule["rate"].as_f64().unwrap();
                let mut hit = 0;
                for _ in 0..200 {
                    if send().await.unwrap().status().as_u16() == status {
                        hit += 1;
                    }
                }
                let expected = 200.0 * rate;
                assert!(
                    (hit as f64) > expected * 0.4 && (hit as f64) < expected * 1.8,
                    "{rule}: {hit} of 200"
                );
            }
            "latency" => {
                let t = std::time::Instant::now();
                send().await.unwrap();
                let ms = rule["ms"].as_u64().unwrap() as u128;
                assert!(t.elapsed().as_millis() >= ms, "{rule}: {:?}", t.elapsed());
            }
            "malformed" => {
                let body = send().await.unwrap().text().await.unwrap_or_default();
                assert!(
                    serde_json::from_str::<Value>(&body).is_err(),
                    "{rule}: {body}"
                );
                c.delete(&admin).send().await.unwrap();
                let r = send().await.unwrap();
                assert_eq!(r.status(), 200, "{url}");
                let body = r.text().await.unwrap();
                assert!(serde_json::from_str::<Value>(&body).is_ok(), "{body}");
            }
            "drop" => {
                let r = send().await;
                let failed = match r {
                    Err(_) => true,
                    Ok(r) => r.bytes().await.is_err(),
                };
                assert!(failed, "{rule}: the connection was not dropped");
            }
            k => panic!("undocumented kind {k}"),
        }
    }
}

#[tokio::test]
async fn fault_rules_in_an_unknown_form_are_refused() {
    let sim = Simulator::start(SimConfig::all()).await.unwrap();
    let c = reqwest::Client::new();
    let admin = format!("{}/_admin/faults", sim.base_url());
    for bad in [
        json!({"route": "/v1.0/users*", "kind": "sequence", "statuses": [429], "retryAfter": "2"}),
        json!({"route": "/v1.0/users*", "kind": "sequence", "status": 429}),
        json!({"route": "v1.0/users*", "kind": "drop"}),
        json!({"route": "GET /v1.0/users*", "method": "POST", "kind": "drop"}),
        json!({"route": "FETCH /v1.0/users*", "kind": "drop"}),
    ] {
        let r = common::post_json(&c, &admin, &bad).await;
        assert_eq!(r.status(), 400, "{bad} accepted");
    }
    let listed: Value = common::get_json(&c, &admin).await;
    assert_eq!(listed, json!([]));
    // the method prefix is split off and shown as `method`
    common::post_json(
        &c,
        &admin,
        &json!({"route": "get /v1.0/users*", "kind": "sequence", "statuses": [429]}),
    )
    .await;
    let listed: Value = common::get_json(&c, &admin).await;
    assert_eq!(listed[0]["route"], "/v1.0/users*");
    assert_eq!(listed[0]["method"], "GET");
}
