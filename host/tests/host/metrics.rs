//! `GET /metrics`: what runs, items, plugin calls, outbound requests and the
//! scheduler did, counted per hub (tests run in parallel, each on its own
//! hub, so every count here is exact), and who may read it.

use crate::common;

use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use syncbridge::control::companies::{self, Company};
use syncbridge::control::runs::{NewRun, RunMode, RunStatus, Runs};
use syncbridge::control::tokens::{self, Role};
use syncbridge::hub::Hub;
use syncbridge::model::PullRequest;
use syncbridge::runner::Runner;
use syncbridge::scheduler::{self, SchedulerConfig};
use syncbridge::server::{self, ServeOptions};
use syncbridge_sim::FaultRule;

use common::feed::{autotask_sim, contacts_profile, feed_server, person, Feed};

/// The value of sample `name` with exactly `labels` (in any order) in a
/// Prometheus text exposition.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    wanted.sort();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, mut found) = match series.split_once('{') {
                Some((m, rest)) => (
                    m,
                    rest.trim_end_matches('}')
                        .split(",")
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                ),
                None => (series, Vec::new()),
            };
            found.sort();
            (metric == name && found == wanted).then(|| value.parse().unwrap())
        })
}

/// `GET /metrics` of `router` with `token`: status, content type, body.
async fn scrape(base: &str, token: Option<&str>) -> (u16, String, String) {
    let mut req = reqwest::Client::new().get(format!("{base}/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, r.text().await.unwrap())
}

/// The metrics of `hub` as an unscoped viewer token reads them.
async fn metrics_of(hub: &Arc<Hub>) -> String {
    let (_, viewer) = tokens::create(hub.store(), "scraper", Role::Viewer, None)
        .await
        .unwrap();
    let base = common::serve(server::router(hub.clone())).await;
    let (status, _, body) = scrape(&base, Some(&viewer)).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_counts_its_outcome_items_errors_plugin_calls_and_throttles() {
    let sim = autotask_sim().await;
    let feed: Feed = Arc::new(Mutex::new(json!({"items": [
        person("f1", "Ann"), person("f3", "Cy"), person("f4", "Di"), person("f5", "Ed")
    ], "next": null})));
    let feed_url = feed_server(feed).await;
    let t = common::hub().await;
    contacts_profile(&t.hub, &sim, &feed_url, 10).await;
    // The first create is throttled (the batch stops and is sent again at
    // once), the next one is refused as invalid input.
    sim.add_fault(
        FaultRule::sequence(
            "POST /ATServicesRest/V1.0/Companies/*/Contacts",
            &[429, 400],
        )
        .with_retry_after("0"),
    )
    .unwrap();

    let report = common::run_profile(&t.hub, "contacts", false)
        .await
        .unwrap();
    assert_eq!((report.applied, report.failed), (3, 1), "{report:?}");

    let text = metrics_of(&t.hub).await;
    let value = |name: &str, labels: &[(&str, &str)]| {
        sample(&text, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in\n{text}"))
    };
    let run = [("profile", "contacts"), ("mode", "run")];
    assert_eq!(
        value(
            "syncbridge_runs_total",
            &[run[0], run[1], ("status", "partial")]
        ),
        1.0,
        "an item failed: the run is partial, not succeeded"
    );
    assert_eq!(value("syncbridge_run_duration_seconds_count", &run), 1.0);
    let items = |action, outcome| {
        value(
            "syncbridge_items_total",
            &[
                ("profile", "contacts"),
                ("action", action),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(items("create", "applied"), 3.0);
    assert_eq!(items("create", "failed"), 1.0);
    assert_eq!(
        value(
            "syncbridge_item_errors_total",
            &[("profile", "contacts"), ("class", "invalid")]
        ),
        1.0
    );
    let calls = |plugin, export| {
        value(
            "syncbridge_plugin_call_duration_seconds_count",
            &[("plugin", plugin), ("export", export)],
        )
    };
    assert_eq!(calls("http-probe", "pull"), 1.0);
    assert_eq!(calls("echo-mapper", "decide"), 1.0);
    assert!(
        calls("autotask", "push") >= 2.0,
        "throttled, then sent again"
    );
    assert!(calls("autotask", "lookup-items") >= 1.0);
    let psa = [("connection", "psa"), ("host", "127.0.0.1")];
    assert_eq!(value("syncbridge_outbound_throttles_total", &psa), 1.0);
    assert_eq!(
        value(
            "syncbridge_outbound_requests_total",
            &[psa[0], psa[1], ("status_class", "4xx")]
        ),
        2.0,
        "the 429 and the 400"
    );
    assert!(
        value(
            "syncbridge_outbound_requests_total",
            &[psa[0], psa[1], ("status_class", "2xx")]
        ) >= 3.0
    );
    assert!(
        value(
            "syncbridge_outbound_requests_total",
            &[
                ("connection", "feed"),
                ("host", "127.0.0.1"),
                ("status_class", "2xx")
            ]
        ) >= 1.0
    );
    assert!(
        sample(&text, "syncbridge_plugin_traps_total", &[]).is_none()
            && !text.contains("syncbridge_plugin_traps_total{"),
        "no plugin trapped"
    );
    // Nothing unbounded in a label: no item ids, no URLs, no secrets.
    for never in ["f1", "/ATServicesRest", "at-secret", "http://"] {
        assert!(!text.contains(never), "{never} in\n{text}");
    }
}

#[tokio::test]
async fn traps_are_counted_by_plugin_export_and_kind() {
    let t = common::hub().await;
    common::install(&t.hub, "misbehave").await;
    common::loopback_connection(&t.hub, "bad", "misbehave", "{}", &[]).await;
    for scope in ["panic", "hog", "panic"] {
        let (record, plugin, ctx) = t.hub.connection_context("bad").await.unwrap();
        let request = PullRequest {
            scope: scope.into(),
            cursor: None,
            max_items: 10,
        };
        let err = t
            .hub
            .runtime()
            .pull(&plugin, ctx, &record.config, request)
            .await
            .unwrap_err();
        assert!(err.trap_kind().is_some(), "{err}");
    }
    let text = metrics_of(&t.hub).await;
    let traps = |kind| {
        sample(
            &text,
            "syncbridge_plugin_traps_total",
            &[("plugin", "misbehave"), ("export", "pull"), ("kind", kind)],
        )
    };
    assert_eq!(traps("panic"), Some(2.0), "{text}");
    assert_eq!(traps("out-of-memory"), Some(1.0), "{text}");
    assert_eq!(traps("timeout"), None, "{text}");
    assert_eq!(
        sample(
            &text,
            "syncbridge_plugin_call_duration_seconds_count",
            &[("plugin", "misbehave"), ("export", "pull")]
        ),
        Some(3.0),
        "trapped calls are timed too: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_reports_how_late_it_claimed_a_run() {
    let sim = autotask_sim().await;
    let feed: Feed = Arc::new(Mutex::new(
        json!({"items": [person("f1", "Ann")], "next": null}),
    ));
    let feed_url = feed_server(feed).await;
    let t = common::hub().await;
    let hub = &t.hub;
    contacts_profile(hub, &sim, &feed_url, 10).await;
    let runs = Runs::new(hub.store().clone());
    let queued = runs
        .enqueue(NewRun {
            profile_id: "contacts",
            company_id: None,
            trigger: "api",
            mode: RunMode::Run,
            plan_id: None,
        })
        .await
        .unwrap();
    // Requested 5 s ago: no scheduler was running to claim it.
    sqlx::query("UPDATE runs SET requested_at = requested_at - 5000 WHERE id = $1")
        .bind(&queued.id)
        .execute(hub.store().pool())
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = Arc::new(Runner::new(hub.clone(), "serve", Duration::from_secs(5)));
    let task = tokio::spawn(scheduler::run(
        runner,
        hub.store().clone(),
        SchedulerConfig {
            tick: Duration::from_millis(50),
            workers: 1,
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let run = runs.get(&queued.id).await.unwrap();
        if run.status.finished() {
            assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{run:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    let _ = task.await;

    let text = metrics_of(hub).await;
    assert_eq!(
        sample(&text, "syncbridge_scheduler_lag_seconds_count", &[]),
        Some(1.0),
        "{text}"
    );
    let lag = sample(&text, "syncbridge_scheduler_lag_seconds_sum", &[]).unwrap();
    assert!((5.0..35.0).contains(&lag), "{lag} s\n{text}");
    assert_eq!(
        sample(
            &text,
            "syncbridge_scheduler_lag_seconds_bucket",
            &[("le", "2")]
        ),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "syncbridge_runs_total",
            &[
                ("profile", "contacts"),
                ("mode", "run"),
                ("status", "succeeded")
            ]
        ),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_need_an_unscoped_token_unless_served_public() {
    let t = common::hub().await;
    let store = t.hub.store();
    companies::save(
        store,
        &Company {
            id: "contoso".into(),
            name: "Contoso".into(),
            notify_to: String::new(),
            time_zone: "UTC".into(),
        },
    )
    .await
    .unwrap();
    let (_, viewer) = tokens::create(store, "scraper", Role::Viewer, None)
        .await
        .unwrap();
    let (_, scoped) = tokens::create(store, "contoso-admin", Role::Admin, Some("contoso"))
        .await
        .unwrap();
    let (old, revoked) = tokens::create(store, "old", Role::Admin, None)
        .await
        .unwrap();
    tokens::revoke(store, &old.id).await.unwrap();

    let base = common::serve(server::router(t.hub.clone())).await;
    let (status, _, body) = scrape(&base, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body.contains("--metrics-public"),
        "says how to open it: {body}"
    );
    assert_eq!(scrape(&base, Some(&revoked)).await.0, 401);
    let (status, _, body) = scrape(&base, Some(&scoped)).await;
    assert_eq!(
        status, 403,
        "a company's token sees other companies' names: {body}"
    );
    let (status, content_type, body) = scrape(&base, Some(&viewer)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    // Labelled series appear once counted; the scheduler lag from the start.
    assert!(
        body.contains("# TYPE syncbridge_scheduler_lag_seconds histogram"),
        "{body}"
    );

    let public = common::serve(server::router_with(
        t.hub.clone(),
        ServeOptions {
            metrics_public: true,
            ..ServeOptions::default()
        },
    ))
    .await;
    let (status, content_type, body) = scrape(&public, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    // The API itself still needs a token.
    let r = reqwest::get(format!("{public}/api/v1/runs")).await.unwrap();
    assert_eq!(r.status(), 401);
}
