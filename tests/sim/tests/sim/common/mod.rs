//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use serde::{de::DeserializeOwned, Serialize};
use serde_json::{json, Value};
use syncbridge_sim::{Seed, SimConfig, Simulator};

/// `../shared/oracles` relative to the repository root; panics clearly when missing.
pub fn oracles() -> PathBuf {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/oracles"
    ));
    assert!(
        p.join("README.md").exists(),
        "oracle material missing: expected ../shared/oracles (relative to the repo root) at {}",
        p.display()
    );
    p
}

pub const TENANT: &str = "11111111-1111-4111-8111-111111111111";
pub const DOMAIN: &str = "contoso.onmicrosoft.com";
pub const CLIENT_ID: &str = "22222222-2222-4222-8222-222222222222";
pub const SECRET: &str = "s3cr3t~value";
pub const SKU: &str = "c7df2760-2c81-4ef7-b578-5b5392b571df";

/// A small Graph tenant: 3 users (one disabled, one unlicensed), 2 nested groups.
pub fn graph_seed() -> Seed {
    serde_json::from_value(json!({
        "graph": {"tenants": [{
            "id": TENANT, "domain": DOMAIN,
            "apps": [{"client_id": CLIENT_ID, "client_secret": SECRET}],
            "subscribedSkus": [{"skuId": SKU, "skuPartNumber": "ENTERPRISEPACK"}],
            "users": [
                {"id": "u1", "userPrincipalName": "adele@contoso.onmicrosoft.com", "givenName": "Adele", "surname": "Vance",
                 "department": "IT", "jobTitle": "Retail Manager", "mobilePhone": "+1 425 555 0109",
                 "businessPhones": ["+1 425 555 0100"], "assignedLicenses": [{"skuId": SKU, "disabledPlans": []}]},
                {"id": "u2", "userPrincipalName": "bob@contoso.onmicrosoft.com", "givenName": "Bob", "surname": "Lee",
                 "department": "Sales", "assignedLicenses": [{"skuId": SKU, "disabledPlans": []}]},
                {"id": "u3", "userPrincipalName": "carl@contoso.onmicrosoft.com", "givenName": "Carl", "surname": "Ito",
                 "department": "IT", "accountEnabled": false}
            ],
            "groups": [
                {"id": "g-outer", "displayName": "All Staff", "members": ["u1", "g-inner"]},
                {"id": "g-inner", "displayName": "Sales", "members": ["u2"]}
            ],
            "mailboxes": {"u1": {
                "events": [
                    {"subject": "Single", "start": {"dateTime": "2026-03-02T10:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2026-03-02T11:00:00", "timeZone": "UTC"}},
                    {"subject": "Daily standup", "start": {"dateTime": "2026-03-01T09:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2026-03-01T09:15:00", "timeZone": "UTC"},
                     "recurrence": {"pattern": {"type": "daily", "interval": 1}, "range": {"type": "numbered", "startDate": "2026-03-01", "numberOfOccurrences": 5}}}
                ],
                "contacts": [{"givenName": "Pavel", "surname": "Bansky", "emailAddresses": [{"address": "pavelb@fabrikam.com", "name": "Pavel"}]}],
                "todoLists": [{"displayName": "Tasks", "wellknownListName": "defaultList", "tasks": [{"title": "Call Pavel"}]}]
            }}
        }]}
    }))
    .unwrap()
}

/// Starts all services with `seed`.
pub async fn start(seed: Seed) -> Simulator {
    Simulator::start(SimConfig {
        seed: Some(seed),
        ..SimConfig::all()
    })
    .await
    .expect("simulator starts")
}

/// All services with [`graph_seed`], a client, and a Graph token for the test tenant.
pub async fn graph_session() -> (Simulator, reqwest::Client, String) {
    let sim = start(graph_seed()).await;
    let c = reqwest::Client::new();
    let tok = graph_token(&sim, &c).await;
    (sim, c, tok)
}

/// Sends `rq` and parses the answer as JSON, whatever its status; panics when it is not JSON.
pub async fn json_of<T: DeserializeOwned>(rq: reqwest::RequestBuilder) -> T {
    rq.send().await.unwrap().json().await.unwrap()
}

/// Sends `rq`: the status and the JSON answer; panics when it is not JSON.
pub async fn status_json(rq: reqwest::RequestBuilder) -> (u16, Value) {
    let r = rq.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// GETs `url` and parses the answer as JSON, whatever its status.
pub async fn get_json<T: DeserializeOwned>(c: &reqwest::Client, url: impl reqwest::IntoUrl) -> T {
    json_of(c.get(url)).await
}

/// POSTs `body` as JSON to `url`.
pub async fn post_json<B: Serialize + ?Sized>(
    c: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    body: &B,
) -> reqwest::Response {
    c.post(url).json(body).send().await.unwrap()
}

/// PATCHes `url` with `body` as JSON.
pub async fn patch_json<B: Serialize + ?Sized>(
    c: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    body: &B,
) -> reqwest::Response {
    c.patch(url).json(body).send().await.unwrap()
}

/// The scope of a client-credentials token for Graph.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Asks `tenant`'s token endpoint for a client-credentials token for `scope`: the status and
/// the JSON answer.
pub async fn request_token(
    sim: &Simulator,
    c: &reqwest::Client,
    tenant: &str,
    client_id: &str,
    secret: &str,
    scope: &str,
) -> (u16, Value) {
    status_json(c.post(sim.token_url(tenant)).form(&[
        ("client_id", client_id),
        ("client_secret", secret),
        ("scope", scope),
        ("grant_type", "client_credentials"),
    ]))
    .await
}

/// Fetches a Graph token for the test tenant.
pub async fn graph_token(sim: &Simulator, c: &reqwest::Client) -> String {
    let (s, v) = request_token(sim, c, TENANT, CLIENT_ID, SECRET, GRAPH_SCOPE).await;
    assert_eq!(s, 200);
    v["access_token"].as_str().unwrap().to_string()
}

/// Recursively compares key sets/types of `actual` against `expected` (only keys present in
/// `expected`, one array element deep).
pub fn shape_diff(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                match a.get(k) {
                    None => out.push(format!("{path}/{k}: missing")),
                    Some(av) => shape_diff(ev, av, &format!("{path}/{k}"), out),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if let (Some(e0), Some(a0)) = (e.first(), a.first()) {
                shape_diff(e0, a0, &format!("{path}[0]"), out)
            }
        }
        (Value::Null, _) | (_, Value::Null) => {}
        (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Number(_), Value::Number(_)) => {}
        (e, a) => out.push(format!("{path}: expected {} got {}", kind(e), kind(a))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
