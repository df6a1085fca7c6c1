//! The sandbox holds: plugins that loop, hog memory, call forbidden hosts or
//! panic are stopped and classified, the host keeps serving, and a
//! well-behaved plugin running at the same time is unaffected.

use crate::common;

use axum::routing::get;
use axum::Router;
use std::time::{Duration, Instant};
use syncbridge::model::PluginError;
use syncbridge::model::PullRequest;
use syncbridge::runtime::{CallError, TrapKind};

fn request(scope: &str) -> PullRequest {
    PullRequest {
        scope: scope.into(),
        cursor: None,
        max_items: 100,
    }
}

/// Pulls `scope` from the misbehave connector on connection `conn`.
async fn misbehave(
    hub: &syncbridge::hub::Hub,
    conn: &str,
    scope: &str,
) -> Result<Result<Option<String>, PluginError>, CallError> {
    let (record, plugin, ctx) = hub.connection_context(conn).await.unwrap();
    let called = hub
        .runtime()
        .pull(&plugin, ctx, &record.config, request(scope))
        .await?;
    Ok(called.value.map(|page| page.cursor))
}

async fn setup() -> common::TestHub {
    let t = common::hub().await;
    common::install(&t.hub, "misbehave").await;
    common::install(&t.hub, "http-probe").await;
    common::loopback_connection(&t.hub, "bad", "misbehave", "{}", &[]).await;
    t
}

#[tokio::test]
async fn an_endless_loop_is_stopped_as_a_timeout() {
    let t = setup().await;
    let started = Instant::now();
    let err = misbehave(&t.hub, "bad", "loop").await.unwrap_err();
    assert_eq!(err.trap_kind(), Some(TrapKind::Timeout), "{err}");
    // The manifest allows 2 s; the epoch deadline must stop it close to that.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("misbehave") && text.contains("0.1.0") && text.contains("`pull`"),
        "{text}"
    );
}

#[tokio::test]
async fn unbounded_allocation_is_stopped_as_out_of_memory() {
    let t = setup().await;
    let err = misbehave(&t.hub, "bad", "hog").await.unwrap_err();
    assert_eq!(err.trap_kind(), Some(TrapKind::OutOfMemory), "{err}");
    assert!(err.to_string().contains("16 MiB"), "{err}");
}

#[tokio::test]
async fn a_panic_is_classified_with_its_message() {
    let t = setup().await;
    let err = misbehave(&t.hub, "bad", "panic").await.unwrap_err();
    assert_eq!(err.trap_kind(), Some(TrapKind::Panic), "{err}");
    assert!(
        err.to_string().contains("misbehave was asked to panic"),
        "{err}"
    );
}

#[tokio::test]
async fn hosts_outside_the_allow_list_are_refused() {
    let t = setup().await;
    // Not in the manifest (which allows only 127.0.0.1 and localhost).
    let answer = misbehave(&t.hub, "bad", "forbidden:https://example.org/")
        .await
        .unwrap();
    match answer {
        Err(PluginError::Forbidden(m)) => {
            assert!(m.contains("example.org") && m.contains("manifest"), "{m}")
        }
        other => panic!("expected forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn private_addresses_need_the_operators_consent() {
    let t = setup().await;
    let base = common::serve(Router::new().route("/", get(|| async { "hi" }))).await;
    t.hub
        .add_connection(syncbridge::hub::NewConnection {
            id: "no-private".into(),
            plugin_id: "misbehave".into(),
            config: "{}".into(),
            allowed_hosts: vec!["127.0.0.1".into(), "localhost".into()],
            allow_private_network: false,
            max_concurrent: None,
            credentials: Default::default(),
        })
        .await
        .unwrap();
    match misbehave(&t.hub, "no-private", &format!("fetch:{base}/"))
        .await
        .unwrap()
    {
        Err(PluginError::Forbidden(m)) => assert!(m.contains("private"), "{m}"),
        other => panic!("expected forbidden, got {other:?}"),
    }
    // By name too: localhost resolves only to loopback.
    let by_name = base.replace("127.0.0.1", "localhost");
    match misbehave(&t.hub, "no-private", &format!("fetch:{by_name}/"))
        .await
        .unwrap()
    {
        Err(PluginError::Forbidden(m)) => assert!(m.contains("private"), "{m}"),
        other => panic!("expected forbidden, got {other:?}"),
    }
    // The same request on a connection that allows private networks goes through.
    assert_eq!(
        misbehave(&t.hub, "bad", &format!("fetch:{base}/"))
            .await
            .unwrap()
            .unwrap(),
        Some("200".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_keeps_serving_and_a_good_plugin_is_unaffected() {
    let t = setup().await;
    let feed = common::serve(Router::new().route(
        "/contacts",
        get(|| async {
            r#"{"items":[{"id":"1","first_name":"Ada","email":"ada@example.test"}],"next":null}"#
        }),
    ))
    .await;
    common::loopback_connection(
        &t.hub,
        "good",
        "http-probe",
        &format!(r#"{{"base_url":"{feed}"}}"#),
        &[("default", r#"{"kind":"bearer","token":"t0k"}"#)],
    )
    .await;
    let api = common::serve(syncbridge::server::router(t.hub.clone())).await;

    let hub = t.hub.clone();
    let looping = tokio::spawn(async move { misbehave(&hub, "bad", "loop").await });
    let hub = t.hub.clone();
    let hog = tokio::spawn(async move { misbehave(&hub, "bad", "hog").await });
    let hub = t.hub.clone();
    let panics = tokio::spawn(async move { misbehave(&hub, "bad", "panic").await });

    // While those run, a well-behaved plugin answers promptly and correctly, many times.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    for _ in 0..10 {
        let (record, plugin, ctx) = t.hub.connection_context("good").await.unwrap();
        let page = t
            .hub
            .runtime()
            .pull(&plugin, ctx, &record.config, request("contacts"))
            .await
            .unwrap()
            .value
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].id, "1");
    }
    let good_time = started.elapsed();
    eprintln!("good plugin: 10 pulls in {good_time:?}");
    assert!(
        !looping.is_finished(),
        "the looping plugin should still be running while the good one finishes ({good_time:?})"
    );
    assert!(
        good_time < Duration::from_millis(1500),
        "good plugin took {good_time:?}"
    );

    // And the service still answers its health check.
    let health = reqwest::get(format!("{api}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);

    assert_eq!(
        looping.await.unwrap().unwrap_err().trap_kind(),
        Some(TrapKind::Timeout)
    );
    assert_eq!(
        hog.await.unwrap().unwrap_err().trap_kind(),
        Some(TrapKind::OutOfMemory)
    );
    assert_eq!(
        panics.await.unwrap().unwrap_err().trap_kind(),
        Some(TrapKind::Panic)
    );
}

#[tokio::test]
async fn plugin_state_persists_between_invocations_but_not_after_a_trap() {
    let t = setup().await;
    let (record, plugin, ctx) = t.hub.connection_context("bad").await.unwrap();
    let called = t
        .hub
        .runtime()
        .pull(&plugin, ctx, &record.config, request("state:5"))
        .await
        .unwrap();
    assert_eq!(called.value.unwrap().cursor.as_deref(), Some("4"));
    t.hub
        .store()
        .apply_state_changes("bad", &called.state_changes)
        .await
        .unwrap();
    let stored = t.hub.store().load_state("bad").await.unwrap();
    assert_eq!(stored.get("counter").map(String::as_str), Some("4"));
    // A trapped call returns no state changes at all.
    assert!(misbehave(&t.hub, "bad", "panic").await.is_err());
    assert_eq!(t.hub.store().load_state("bad").await.unwrap(), stored);
}

#[tokio::test]
async fn mappers_run_in_their_own_world_and_connectors_cannot_be_called_as_mappers() {
    let t = setup().await;
    common::install(&t.hub, "echo-mapper").await;
    let mapper = t.hub.plugin("echo-mapper").await.unwrap();
    let items = vec![syncbridge::model::Item {
        id: "u1".into(),
        version: None,
        removed: None,
        body: Some(syncbridge::model::ItemBody::Company(
            syncbridge::model::CompanyRef {
                id: "c1".into(),
                name: Some("Contoso".into()),
            },
        )),
    }];
    let intents = t
        .hub
        .runtime()
        .decide(&mapper, items, "{}")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(intents.len(), 1);
    assert_eq!(intents[0].source_id, "u1");
    assert_eq!(intents[0].rule, "echo");
    let connector = t.hub.plugin("misbehave").await.unwrap();
    assert!(matches!(
        t.hub.runtime().decide(&connector, vec![], "{}").await,
        Err(CallError::WrongKind { .. })
    ));
}
