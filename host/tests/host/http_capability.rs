//! The `http` capability: credentials injected by the host (never seen by the
//! plugin), OAuth2 token caching and refresh, throttling, size and
//! concurrency limits, deadlines.

use crate::common;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use syncbridge::model::PluginError;
use syncbridge::model::PullRequest;

const BEARER: &str = r#"{"kind":"bearer","token":"b"}"#;
const FEED: &str = r#"{"items":[{"id":"7","first_name":"Grace"}],"next":null}"#;

#[derive(Default)]
struct Seen {
    headers: Mutex<Vec<HeaderMap>>,
    token_calls: AtomicUsize,
    current_token: Mutex<String>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

type Shared = Arc<Seen>;

async fn record(State(seen): State<Shared>, headers: HeaderMap) -> &'static str {
    seen.headers.lock().unwrap().push(headers);
    FEED
}

async fn token(State(seen): State<Shared>, body: String) -> axum::response::Response {
    seen.token_calls.fetch_add(1, Ordering::SeqCst);
    if !body.contains("client_secret=right-secret") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x"
            })),
        )
            .into_response();
    }
    let n = seen.token_calls.load(Ordering::SeqCst);
    let token = format!("tok-{n}");
    *seen.current_token.lock().unwrap() = token.clone();
    axum::Json(serde_json::json!({"token_type":"Bearer","expires_in":3599,"access_token":token}))
        .into_response()
}

async fn bearer_only(State(seen): State<Shared>, headers: HeaderMap) -> axum::response::Response {
    let expected = format!("Bearer {}", seen.current_token.lock().unwrap());
    if headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str()) {
        FEED.into_response()
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    }
}

async fn slow(State(seen): State<Shared>) -> &'static str {
    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    seen.peak.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    seen.in_flight.fetch_sub(1, Ordering::SeqCst);
    FEED
}

async fn server() -> (String, Shared) {
    let seen = Shared::default();
    let router = Router::new()
        .route("/basic/contacts", get(record))
        .route("/tenant/oauth2/v2.0/token", post(token))
        .route("/oauth/contacts", get(bearer_only))
        .route("/slow/contacts", get(slow))
        .route(
            "/throttled/contacts",
            get(|| async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("Retry-After", "2.5")],
                    "slow down",
                )
            }),
        )
        .route("/huge/contacts", get(|| async { vec![b'x'; 17 << 20] }))
        .route(
            "/sleepy",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(6)).await;
                "late"
            }),
        )
        .route(
            "/marker",
            get(|| async { "here is MARKER-5150 in the body" }),
        )
        .with_state(seen.clone());
    (common::serve(router).await, seen)
}

async fn pull(
    hub: &syncbridge::hub::Hub,
    conn: &str,
    scope: &str,
) -> Result<syncbridge::model::Page, PluginError> {
    let (record, plugin, ctx) = hub.connection_context(conn).await.unwrap();
    let request = PullRequest {
        scope: scope.into(),
        cursor: None,
        max_items: 10,
    };
    let called = hub
        .runtime()
        .pull(&plugin, ctx, &record.config, request)
        .await
        .expect("no trap");
    hub.store()
        .apply_state_changes(conn, &called.state_changes)
        .await
        .unwrap();
    called.value
}

fn probe_config(base: &str, prefix: &str) -> String {
    format!(r#"{{"base_url":"{base}/{prefix}"}}"#)
}

#[tokio::test]
async fn basic_and_header_credentials_are_injected_by_the_host() {
    let t = common::hub().await;
    common::install(&t.hub, "http-probe").await;
    let (base, seen) = server().await;
    common::loopback_connection(
        &t.hub,
        "basic",
        "http-probe",
        &probe_config(&base, "basic"),
        &[(
            "default",
            r#"{"kind":"basic","username":"ada","password":"pa:ss"}"#,
        )],
    )
    .await;
    common::loopback_connection(
        &t.hub,
        "autotask",
        "http-probe",
        &probe_config(&base, "basic"),
        &[("default", r#"{"kind":"headers","headers":{"ApiIntegrationCode":"ICODE","UserName":"api@x.test","Secret":"S3CRET"}}"#)],
    )
    .await;
    assert_eq!(
        pull(&t.hub, "basic", "contacts").await.unwrap().items[0].id,
        "7"
    );
    assert_eq!(
        pull(&t.hub, "autotask", "contacts")
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let headers = seen.headers.lock().unwrap();
    // base64("ada:pa:ss")
    assert_eq!(headers[0]["authorization"], "Basic YWRhOnBhOnNz");
    assert_eq!(headers[1]["apiintegrationcode"], "ICODE");
    assert_eq!(headers[1]["username"], "api@x.test");
    assert_eq!(headers[1]["secret"], "S3CRET");
    assert!(headers[1].get("authorization").is_none());
}

#[tokio::test]
async fn oauth2_tokens_are_cached_and_refreshed_after_a_401() {
    let t = common::hub().await;
    common::install(&t.hub, "http-probe").await;
    let (base, seen) = server().await;
    let cred = format!(
        r#"{{"kind":"oauth2-client-credentials","token_url":"{base}/tenant/oauth2/v2.0/token","client_id":"app","client_secret":"right-secret","scope":"https://graph.microsoft.com/.default"}}"#
    );
    common::loopback_connection(
        &t.hub,
        "graph",
        "http-probe",
        &probe_config(&base, "oauth"),
        &[("default", &cred)],
    )
    .await;
    for _ in 0..3 {
        pull(&t.hub, "graph", "contacts").await.unwrap();
    }
    assert_eq!(
        seen.token_calls.load(Ordering::SeqCst),
        1,
        "token is cached"
    );
    // The service revokes the token: the next call gets a 401, the host fetches a new token once.
    *seen.current_token.lock().unwrap() = "rotated-elsewhere".into();
    seen.token_calls.store(5, Ordering::SeqCst);
    let page = pull(&t.hub, "graph", "contacts").await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(seen.token_calls.load(Ordering::SeqCst), 6);
}

#[tokio::test]
async fn a_refused_client_secret_is_an_auth_error_naming_the_entra_code() {
    let t = common::hub().await;
    common::install(&t.hub, "http-probe").await;
    let (base, _seen) = server().await;
    let cred = format!(
        r#"{{"kind":"oauth2-client-credentials","token_url":"{base}/tenant/oauth2/v2.0/token","client_id":"app","client_secret":"wrong-secret"}}"#
    );
    common::loopback_connection(
        &t.hub,
        "graph",
        "http-probe",
        &probe_config(&base, "oauth"),
        &[("default", &cred)],
    )
    .await;
    match pull(&t.hub, "graph", "contacts").await {
        Err(PluginError::Auth(m)) => {
            assert!(
                m.contains("AADSTS7000215") && m.contains("invalid_client"),
                "{m}"
            );
            assert!(!m.contains("wrong-secret"), "{m}");
        }
        other => panic!("expected auth error, got {other:?}"),
    }
}

#[tokio::test]
async fn retry_after_surfaces_as_throttled_with_decimal_seconds() {
    let t = common::hub().await;
    common::install(&t.hub, "http-probe").await;
    let (base, _seen) = server().await;
    common::loopback_connection(
        &t.hub,
        "c",
        "http-probe",
        &probe_config(&base, "throttled"),
        &[("default", BEARER)],
    )
    .await;
    match pull(&t.hub, "c", "contacts").await {
        Err(PluginError::Throttled(t)) => assert_eq!(t.retry_after_ms, Some(2500)),
        other => panic!("expected throttled, got {other:?}"),
    }
}

#[tokio::test]
async fn oversized_responses_are_cut_off() {
    let t = common::hub().await;
    common::install(&t.hub, "http-probe").await;
    let (base, _seen) = server().await;
    common::loopback_connection(
        &t.hub,
        "c",
        "http-probe",
        &probe_config(&base, "huge"),
        &[("default", BEARER)],
    )
    .await;
    match pull(&t.hub, "c", "contacts").await {
        Err(PluginError::Remote(r)) => assert!(r.message.contains("larger than"), "{}", r.message),
        other => panic!("expected a size error, got {other:?}"),
    }
}

#[tokio::test]
async fn requests_per_connection_are_bounded() {
    let t = common::hub().await;
    common::install(&t.hub, "http-probe").await;
    let (base, seen) = server().await;
    t.hub
        .add_connection(syncbridge::hub::NewConnection {
            id: "c".into(),
            plugin_id: "http-probe".into(),
            config: probe_config(&base, "slow"),
            allowed_hosts: vec!["127.0.0.1".into()],
            allow_private_network: true,
            max_concurrent: Some(2),
            credentials: [(
                "default".to_string(),
                syncbridge::secrets::Credential::from_json(BEARER).unwrap(),
            )]
            .into(),
        })
        .await
        .unwrap();
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let hub = t.hub.clone();
            tokio::spawn(async move { pull(&hub, "c", "contacts").await.map(|p| p.items.len()) })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), 1);
    }
    assert_eq!(seen.peak.load(Ordering::SeqCst), 2);
}

/// 198.18.0.0/15 (benchmarking) is not on the public internet: a connection
/// that may not reach private networks is refused before any connection attempt.
#[tokio::test]
async fn a_benchmarking_address_literal_is_refused_without_private_network_consent() {
    let t = common::hub().await;
    common::install(&t.hub, "http-probe").await;
    t.hub
        .add_connection(syncbridge::hub::NewConnection {
            id: "bench".into(),
            plugin_id: "http-probe".into(),
            config: probe_config("http://198.18.0.1", "feed"),
            allowed_hosts: vec!["198.18.0.1".into()],
            allow_private_network: false,
            max_concurrent: None,
            credentials: [(
                "default".to_string(),
                syncbridge::secrets::Credential::from_json(BEARER).unwrap(),
            )]
            .into(),
        })
        .await
        .unwrap();
    let started = Instant::now();
    match pull(&t.hub, "bench", "contacts").await {
        Err(PluginError::Forbidden(m)) => {
            assert!(
                m.contains("198.18.0.1") && m.contains("benchmarking") && m.contains("private"),
                "{m}"
            )
        }
        other => panic!("expected the address to be refused, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused only after {:?}: a connection was attempted",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_hung_server_is_cut_off_at_the_call_deadline() {
    let t = common::hub().await;
    common::install(&t.hub, "misbehave").await;
    let (base, _seen) = server().await;
    common::loopback_connection(&t.hub, "c", "misbehave", "{}", &[]).await;
    let (record, plugin, ctx) = t.hub.connection_context("c").await.unwrap();
    let started = Instant::now();
    let request = PullRequest {
        scope: format!("sleep-http:{base}/sleepy"),
        cursor: None,
        max_items: 1,
    };
    let result = t
        .hub
        .runtime()
        .pull(&plugin, ctx, &record.config, request)
        .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(4),
        "took {elapsed:?} against a 2 s deadline"
    );
    match result {
        Err(e) => assert_eq!(
            e.trap_kind(),
            Some(syncbridge::runtime::TrapKind::Timeout),
            "{e}"
        ),
        Ok(called) => assert!(
            matches!(called.value, Err(PluginError::Transient(_))),
            "{:?}",
            called.value
        ),
    }
}

#[tokio::test]
async fn secrets_never_enter_plugin_memory() {
    let t = common::hub().await;
    common::install(&t.hub, "misbehave").await;
    let (base, _seen) = server().await;
    let secret = "Very-Secret-Passw0rd-4711";
    common::loopback_connection(
        &t.hub,
        "c",
        "misbehave",
        "{}",
        &[(
            "default",
            &format!(r#"{{"kind":"basic","username":"svc","password":"{secret}"}}"#),
        )],
    )
    .await;
    let reversed = |s: &str| s.chars().rev().collect::<String>();
    // Positive control: text from the response body IS found by the scan.
    let found = pull(
        &t.hub,
        "c",
        &format!("fetch-scan:{base}/marker|{}", reversed("MARKER-5150")),
    )
    .await
    .unwrap();
    assert_eq!(found.cursor.as_deref(), Some("found"));
    // The password the host used for the same request is not.
    let scan = pull(
        &t.hub,
        "c",
        &format!("fetch-scan:{base}/marker|{}", reversed(secret)),
    )
    .await
    .unwrap();
    assert_eq!(scan.cursor.as_deref(), Some("absent"));
    // Nor is the Basic header value the host built from it.
    use base64::Engine as _;
    let header = base64::engine::general_purpose::STANDARD.encode(format!("svc:{secret}"));
    let scan = pull(
        &t.hub,
        "c",
        &format!("fetch-scan:{base}/marker|{}", reversed(&header)),
    )
    .await
    .unwrap();
    assert_eq!(scan.cursor.as_deref(), Some("absent"));
}

/// A token fetched with a credential is never sent after the connection was
/// re-pointed and the credential entered again: the new host gets a token
/// from its own token endpoint, not the cached one of the old host.
#[tokio::test]
async fn a_cached_token_does_not_follow_a_repointed_connection() {
    use syncbridge::control::connections::{self, Actor, ConnectionChange};
    let t = common::hub().await;
    common::install(&t.hub, "http-probe").await;
    let (old_base, old_seen) = server().await;
    let (new_base, new_seen) = server().await;
    old_seen.token_calls.store(100, Ordering::SeqCst);
    let cred = |base: &str| {
        format!(
            r#"{{"kind":"oauth2-client-credentials","token_url":"{base}/tenant/oauth2/v2.0/token","client_id":"app","client_secret":"right-secret"}}"#
        )
    };
    common::loopback_connection(
        &t.hub,
        "graph",
        "http-probe",
        &probe_config(&old_base, "oauth"),
        &[("default", &cred(&old_base))],
    )
    .await;
    pull(&t.hub, "graph", "contacts").await.unwrap();
    assert_eq!(*old_seen.current_token.lock().unwrap(), "tok-101");

    connections::update(
        &t.hub,
        Actor::Msp,
        "graph",
        ConnectionChange {
            config: Some(serde_json::from_str(&probe_config(&new_base, "basic")).unwrap()),
            credentials: [(
                "default".to_owned(),
                Some(syncbridge::secrets::Credential::from_json(&cred(&new_base)).unwrap()),
            )]
            .into(),
            ..ConnectionChange::default()
        },
    )
    .await
    .unwrap();
    pull(&t.hub, "graph", "contacts").await.unwrap();
    assert_eq!(new_seen.token_calls.load(Ordering::SeqCst), 1);
    let headers = new_seen.headers.lock().unwrap();
    let sent: Vec<&str> = headers
        .iter()
        .filter_map(|h| h.get("authorization").and_then(|v| v.to_str().ok()))
        .collect();
    assert_eq!(
        sent,
        ["Bearer tok-1"],
        "the old host's token never reaches the new one"
    );
}
