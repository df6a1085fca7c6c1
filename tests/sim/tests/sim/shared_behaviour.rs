//! Core features: start-up, admin API, fault injection, latency and request counting.

use crate::common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use syncbridge_sim::{FaultRule, Services, SimConfig, Simulator};

#[tokio::test]
async fn starts_on_ephemeral_port_and_counts_requests() {
    let sim = common::start(common::graph_seed()).await;
    assert!(sim.base_url().starts_with("http://127.0.0.1:"));
    assert_ne!(sim.addr().port(), 0);
    let c = reqwest::Client::new();
    let tok = common::graph_token(&sim, &c).await;
    for _ in 0..3 {
        let r = c
            .get(format!("{}/users/u1", sim.graph_url()))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let stats = sim.requests();
    assert_eq!(
        stats.routes.get("GET /v1.0/users/u1").copied(),
        Some(3),
        "{stats:?}"
    );
    assert_eq!(stats.total, 4);
    // Admin view agrees, and admin calls are not counted.
    let v: Value = common::get_json(&c, format!("{}/_admin/requests", sim.base_url())).await;
    assert_eq!(v["total"], 4);
    c.delete(format!("{}/_admin/requests", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(sim.requests().total, 0);
}

#[tokio::test]
async fn unmounted_service_is_404() {
    let sim = Simulator::start(SimConfig::with_services(Services {
        graph: true,
        ..Services::NONE
    }))
    .await
    .unwrap();
    let r = reqwest::get(format!("{}/api/data/v9.2/contacts", sim.base_url()))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn sequence_fault_then_success_with_decimal_retry_after() {
    let (sim, c, tok) = common::graph_session().await;
    sim.add_fault(FaultRule::sequence("GET /v1.0/users*", &[429, 503]).with_retry_after("2.128"))
        .unwrap();
    let url = format!("{}/users", sim.graph_url());
    let r1 = c.get(&url).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r1.status(), 429);
    assert_eq!(r1.headers()["retry-after"], "2.128");
    let b: Value = r1.json().await.unwrap();
    assert_eq!(b["error"]["code"], "TooManyRequests");
    assert!(b["error"]["innerError"]["request-id"].is_string());
    let r2 = c.get(&url).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r2.status(), 503);
    let r3 = c.get(&url).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r3.status(), 200);
}

#[tokio::test]
async fn admin_faults_endpoint_rate_and_clear() {
    let (sim, c, tok) = common::graph_session().await;
    let r = common::post_json(
        &c,
        format!("{}/_admin/faults", sim.base_url()),
        &json!({"route": "/v1.0/subscribedSkus", "kind": "rate", "status": 500, "rate": 1.0}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let bad = common::post_json(
        &c,
        format!("{}/_admin/faults", sim.base_url()),
        &json!({"route": "x", "kind": "rate", "status": 500, "rate": 3.0}),
    )
    .await;
    assert_eq!(bad.status(), 400);
    let listed: Value = common::get_json(&c, format!("{}/_admin/faults", sim.base_url())).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let url = format!("{}/subscribedSkus", sim.graph_url());
    assert_eq!(
        c.get(&url).bearer_auth(&tok).send().await.unwrap().status(),
        500
    );
    c.delete(format!("{}/_admin/faults", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        c.get(&url).bearer_auth(&tok).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn latency_malformed_and_dropped_connections() {
    let (sim, c, tok) = common::graph_session().await;
    let url = format!("{}/users/u1", sim.graph_url());

    sim.add_fault(FaultRule::latency("/v1.0/users/u1", 150).times(1))
        .unwrap();
    let t = Instant::now();
    assert_eq!(
        c.get(&url).bearer_auth(&tok).send().await.unwrap().status(),
        200
    );
    assert!(t.elapsed() >= Duration::from_millis(150));
    sim.clear_faults();

    sim.add_fault(FaultRule::malformed("/v1.0/users/u1").times(1))
        .unwrap();
    let text = c
        .get(&url)
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "body should be corrupt: {text}"
    );
    assert!(serde_json::from_str::<Value>(
        &c.get(&url)
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    )
    .is_ok());

    sim.add_fault(FaultRule::drop_connection("/v1.0/users/u1").times(1))
        .unwrap();
    let res = match c.get(&url).bearer_auth(&tok).send().await {
        Ok(r) => r.bytes().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(res.is_err(), "connection should have been dropped");
}

#[tokio::test]
async fn global_latency_option_and_admin_latency() {
    let sim = Simulator::start(SimConfig {
        latency: Some(Duration::from_millis(300)),
        ..SimConfig::all()
    })
    .await
    .unwrap();
    let c = reqwest::Client::new();
    let t = Instant::now();
    let r = c
        .get(format!("{}/users", sim.graph_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(t.elapsed() >= Duration::from_millis(300));
    let r = common::post_json(
        &c,
        format!("{}/_admin/latency", sim.base_url()),
        &json!({"latency": null}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let t = Instant::now();
    c.get(format!("{}/users", sim.graph_url()))
        .send()
        .await
        .unwrap();
    assert!(t.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn admin_seed_and_state() {
    let sim = Simulator::start(SimConfig::all()).await.unwrap();
    let c = reqwest::Client::new();
    let seed = json!({"graph": {"tenants": [{"id": "t9", "domain": "nine.onmicrosoft.com", "users": [{"userPrincipalName": "z@nine.onmicrosoft.com"}]}]}});
    let r = common::post_json(&c, format!("{}/_admin/seed", sim.base_url()), &seed).await;
    assert_eq!(r.status(), 200);
    let st: Value = common::get_json(&c, format!("{}/_admin/state", sim.base_url())).await;
    assert_eq!(
        st["graph"][0]["users"][0]["userPrincipalName"],
        "z@nine.onmicrosoft.com"
    );
    let bad = c
        .post(format!("{}/_admin/seed", sim.base_url()))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn admin_scenarios_and_token_expiry() {
    let (sim, c, tok) = common::graph_session().await;
    let r = common::post_json(
        &c,
        format!("{}/_admin/scenarios", sim.base_url()),
        &json!({"mfa_required": true}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let sc: Value = common::get_json(&c, format!("{}/_admin/scenarios", sim.base_url())).await;
    assert_eq!(sc["mfa_required"], true);
    assert_eq!(sc["wrong_password"], false);
    let (_, e) = common::request_token(
        &sim,
        &c,
        common::TENANT,
        common::CLIENT_ID,
        common::SECRET,
        common::GRAPH_SCOPE,
    )
    .await;
    assert!(e["error_description"]
        .as_str()
        .unwrap()
        .starts_with("AADSTS50076"));
    assert_eq!(
        c.get(format!("{}/users", sim.graph_url()))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    c.post(format!(
        "{}/_admin/graph/expire-access-tokens",
        sim.base_url()
    ))
    .send()
    .await
    .unwrap();
    let r = c
        .get(format!("{}/users", sim.graph_url()))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let b: Value = r.json().await.unwrap();
    assert!(b["error"]["message"].as_str().unwrap().contains("expired"));
}
