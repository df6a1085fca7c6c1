//! The admin HTTP API under `/_admin`: faults, seed, state, request counters, scenarios,
//! latency.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::faults::FaultRule;
use crate::scenarios::Scenarios;
use crate::seed::Seed;
use crate::store::Store;
use crate::util::json_response;

/// Routes under `/_admin`.
pub fn router() -> Router<Arc<Store>> {
    Router::new()
        .route(
            "/_admin/faults",
            get(list_faults).post(add_faults).delete(clear_faults),
        )
        .route("/_admin/seed", post(seed))
        .route("/_admin/generate", post(generate))
        .route("/_admin/state", get(state))
        .route("/_admin/requests", get(requests).delete(reset_requests))
        .route("/_admin/scenarios", get(get_scenarios).post(set_scenarios))
        .route("/_admin/latency", post(set_latency))
        .route("/_admin/graph/expire-delta-tokens", post(expire_delta))
        .route("/_admin/graph/expire-access-tokens", post(expire_access))
        .route("/_admin/autotask/threshold", post(at_threshold))
}

fn bad(msg: String) -> Response {
    json_response(StatusCode::BAD_REQUEST, &json!({ "error": msg }))
}

async fn list_faults(State(s): State<Arc<Store>>) -> Response {
    json_response(StatusCode::OK, &json!(s.faults.list()))
}

/// Accepts one rule or an array of rules.
async fn add_faults(State(s): State<Arc<Store>>, body: String) -> Response {
    let v: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => return bad(e.to_string()),
    };
    let rules: Vec<Value> = match v {
        Value::Array(a) => a,
        other => vec![other],
    };
    let mut added = 0;
    for r in rules {
        let rule: FaultRule = match serde_json::from_value(r) {
            Ok(r) => r,
            Err(e) => return bad(e.to_string()),
        };
        if let Err(e) = s.faults.add(rule) {
            return bad(e.to_string());
        }
        added += 1;
    }
    json_response(StatusCode::CREATED, &json!({ "added": added }))
}

async fn clear_faults(State(s): State<Arc<Store>>) -> Response {
    s.faults.clear();
    json_response(StatusCode::OK, &json!({ "cleared": true }))
}

async fn seed(State(s): State<Arc<Store>>, body: String) -> Response {
    match serde_json::from_str::<Seed>(&body)
        .map_err(crate::error::SimError::from)
        .and_then(|seed| seed.apply(&s))
    {
        Ok(()) => json_response(StatusCode::OK, &json!({ "seeded": true })),
        Err(e) => bad(e.to_string()),
    }
}

#[derive(Deserialize)]
struct GenerateBody {
    spec: String,
}

async fn generate(State(s): State<Arc<Store>>, Json(b): Json<GenerateBody>) -> Response {
    match crate::generate::GeneratorSpec::parse(&b.spec)
        .and_then(|spec| crate::generate::generate(&spec).apply(&s))
    {
        Ok(()) => json_response(StatusCode::OK, &json!({ "generated": b.spec })),
        Err(e) => bad(e.to_string()),
    }
}

async fn state(State(s): State<Arc<Store>>) -> Response {
    json_response(StatusCode::OK, &s.dump())
}

async fn requests(State(s): State<Arc<Store>>) -> Response {
    json_response(StatusCode::OK, &json!(s.counters.snapshot()))
}

async fn reset_requests(State(s): State<Arc<Store>>) -> Response {
    s.counters.reset();
    json_response(StatusCode::OK, &json!({ "reset": true }))
}

async fn get_scenarios(State(s): State<Arc<Store>>) -> Response {
    json_response(StatusCode::OK, &json!(s.scenarios()))
}

async fn set_scenarios(State(s): State<Arc<Store>>, body: String) -> Response {
    match serde_json::from_str::<Scenarios>(&body) {
        Ok(sc) => {
            *s.scenarios.write().unwrap_or_else(|e| e.into_inner()) = sc.clone();
            json_response(StatusCode::OK, &json!(sc))
        }
        Err(e) => bad(e.to_string()),
    }
}

#[derive(Deserialize)]
struct LatencyBody {
    /// e.g. "50ms"; null or "0" disables.
    latency: Option<String>,
}

async fn set_latency(State(s): State<Arc<Store>>, Json(b): Json<LatencyBody>) -> Response {
    let parsed = match b.latency.as_deref().map(crate::config::parse_duration) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => return bad(e.to_string()),
    };
    *s.latency.write().unwrap_or_else(|e| e.into_inner()) = parsed.filter(|d| !d.is_zero());
    json_response(
        StatusCode::OK,
        &json!({ "latency_ms": parsed.map(|d| d.as_millis() as u64) }),
    )
}

async fn expire_delta(State(s): State<Arc<Store>>) -> Response {
    crate::graph::GraphHandle(&s).expire_delta_tokens();
    json_response(StatusCode::OK, &json!({ "expired": true }))
}

async fn expire_access(State(s): State<Arc<Store>>) -> Response {
    crate::graph::GraphHandle(&s).expire_access_tokens();
    json_response(StatusCode::OK, &json!({ "expired": true }))
}

#[derive(Deserialize)]
struct ThresholdBody {
    limit: u64,
    #[serde(default)]
    used: Option<u64>,
}

async fn at_threshold(State(s): State<Arc<Store>>, Json(b): Json<ThresholdBody>) -> Response {
    crate::autotask::AutotaskHandle(&s).set_threshold(b.limit, b.used);
    json_response(StatusCode::OK, &json!({ "limit": b.limit }))
}
