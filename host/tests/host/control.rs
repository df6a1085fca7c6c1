//! The control plane through real plugins and the Autotask simulator: runs
//! recorded with leases, dry-run plans stored and applied exactly (or
//! refused when the target changed), brakes that hold a plan for approval,
//! auth errors that stop a connection and raise an alert and a mail, and
//! the scheduler claiming runs across two processes sharing one database.

use crate::common;

use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use syncbridge::control::alerts;
use syncbridge::control::approval::{self, ApplyError, Start};
use syncbridge::control::companies::{self, Company};
use syncbridge::control::plans::{self, PlanError, PlanStatus};
use syncbridge::control::runs::{NewRun, RunMode, RunRecord, RunStatus, Runs, RunsError};
use syncbridge::engine::explain::explain;
use syncbridge::engine::profiles::{self, Profile, ProfileSettings};
use syncbridge::engine::FieldRules;
use syncbridge::hub::Hub;
use syncbridge::notify::{Notification, Notifier, NotifyFuture, Recipients};
use syncbridge::runner::{NoProgress, RunNow, RunNowError, Runner};
use syncbridge::scheduler::{self, SchedulerConfig};
use syncbridge::store::now_ms;
use syncbridge_sim::Simulator;

use common::feed::{autotask_sim, feed_server, person, Feed};

/// Mail handed to the notifier (the SMTP notifier itself is tested against a
/// real SMTP server in `notify.rs`).
#[derive(Default)]
struct Outbox(Mutex<Vec<(String, Notification)>>);

impl Notifier for Outbox {
    fn send<'a>(&'a self, to: &'a Recipients, n: &'a Notification) -> NotifyFuture<'a> {
        self.0.lock().unwrap().push((to.to_string(), n.clone()));
        Box::pin(async { Ok(()) })
    }
}

struct Setup {
    t: common::TestHub,
    sim: Simulator,
    feed: Feed,
}

async fn setup_with(t: common::TestHub, secret: &str) -> Setup {
    let sim = autotask_sim().await;
    let feed: Feed = Arc::new(Mutex::new(
        json!({"items": [person("f1", "Ann"), person("f2", "Bob"), person("f3", "Cy")], "next": null}),
    ));
    let feed_url = feed_server(feed.clone()).await;
    for p in ["http-probe", "echo-mapper", "autotask"] {
        common::install(&t.hub, p).await;
    }
    common::loopback_connection(
        &t.hub,
        "feed",
        "http-probe",
        &json!({"base_url": feed_url}).to_string(),
        &[("default", r#"{"kind":"bearer","token":"x"}"#)],
    )
    .await;
    let at_config = json!({"api_user": "api@msp.example", "zone_lookup_url": format!("{}/atservicesrest", sim.base_url())});
    let at_cred = json!({"kind": "headers", "headers": {"ApiIntegrationCode": "TRACKING", "UserName": "api@msp.example", "Secret": secret}});
    common::loopback_connection(
        &t.hub,
        "psa",
        "autotask",
        &at_config.to_string(),
        &[("default", &at_cred.to_string())],
    )
    .await;
    companies::save(
        t.hub.store(),
        &Company {
            id: "contoso".into(),
            name: "Contoso Ltd".into(),
            notify_to: "ops@msp.example; noc@msp.example".into(),
            time_zone: "UTC".into(),
        },
    )
    .await
    .unwrap();
    profiles::save(
        t.hub.store(),
        &Profile {
            id: "contacts".into(),
            source_connection: "feed".into(),
            source_scope: "contacts".into(),
            mapper_plugin: "echo-mapper".into(),
            mapper_options: "{}".into(),
            target_connection: "psa".into(),
            target_scope: "contacts:company=1".into(),
            rules: FieldRules::default(),
            page_size: 2,
        },
    )
    .await
    .unwrap();
    profiles::set_settings(
        t.hub.store(),
        "contacts",
        &ProfileSettings {
            company_id: Some("contoso".into()),
            ..ProfileSettings::default()
        },
    )
    .await
    .unwrap();
    Setup { t, sim, feed }
}

async fn setup() -> Setup {
    setup_with(common::hub().await, "at-secret").await
}

fn contacts(sim: &Simulator) -> Vec<serde_json::Value> {
    sim.autotask().rows("Contacts")
}

/// Runs a profile in this process, as the CLI does; an apply claims its
/// plan first (`None` when the plan is not open).
async fn try_run(
    hub: &Arc<Hub>,
    mode: RunMode,
    plan: Option<&str>,
    outbox: Option<Arc<Outbox>>,
) -> Option<RunRecord> {
    let mut runner = Runner::new(hub.clone(), "test", Duration::from_secs(30));
    if let Some(o) = outbox {
        runner = runner.with_notifier(o, None);
    }
    let request = RunNow {
        profile: "contacts",
        mode,
        plan,
        trigger: "manual",
    };
    match runner.run_now(request, &NoProgress).await {
        Ok(record) => Some(record),
        Err(
            RunNowError::Plan(PlanError::NotOpen { .. })
            | RunNowError::Apply(ApplyError::Plan(PlanError::NotOpen { .. })),
        ) => None,
        Err(e) => panic!("{e}"),
    }
}

async fn run(
    hub: &Arc<Hub>,
    mode: RunMode,
    plan: Option<&str>,
    outbox: Option<Arc<Outbox>>,
) -> RunRecord {
    try_run(hub, mode, plan, outbox)
        .await
        .expect("the plan is open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_stores_its_plan_and_apply_executes_exactly_it() {
    let s = setup().await;
    let hub = &s.t.hub;
    let dry = run(hub, RunMode::DryRun, None, None).await;
    assert_eq!(dry.status, RunStatus::Planned, "{dry:?}");
    assert_eq!(contacts(&s.sim).len(), 1, "a dry run writes nothing");
    let plan_id = dry.plan_id.clone().expect("the dry run names its plan");
    let info = plans::get(hub.store(), &plan_id).await.unwrap();
    assert_eq!(info.status, PlanStatus::Proposed);
    assert_eq!((info.counts.create, info.counts.update), (2, 1));
    let items = plans::items(hub.store(), &plan_id, true, 0, 100)
        .await
        .unwrap();
    let f2 = items.iter().find(|i| i.op.source_id == "f2").unwrap();
    let first = f2
        .op
        .changes
        .iter()
        .find(|c| c.field == "first_name")
        .unwrap();
    assert_eq!(
        (first.before.as_deref(), first.after.as_deref()),
        (Some("Old"), Some("Bob")),
        "per-field diff of the matched contact"
    );

    // The source changes after the dry run: applying the plan writes what
    // was planned, not what the source says now.
    *s.feed.lock().unwrap() = json!({"items": [person("f1", "Zed"), person("f2", "Bob"), person("f3", "Cy")], "next": null});
    let applied = run(hub, RunMode::ApplyPlan, Some(&plan_id), None).await;
    assert_eq!(applied.status, RunStatus::Succeeded, "{applied:?}");
    let rows = contacts(&s.sim);
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().any(|r| r["firstName"] == "Ann"), "{rows:?}");
    assert!(!rows.iter().any(|r| r["firstName"] == "Zed"));
    assert_eq!(
        plans::get(hub.store(), &plan_id).await.unwrap().status,
        PlanStatus::Applied
    );

    let info = plans::get(hub.store(), &plan_id).await.unwrap();
    assert_eq!(info.apply_run.as_deref(), Some(applied.id.as_str()));

    // A plan is applied once: a second apply does not even start a run.
    assert!(try_run(hub, RunMode::ApplyPlan, Some(&plan_id), None)
        .await
        .is_none());

    // Explain: the first name of f2 was written from the source by the apply run.
    let e = explain(hub.store(), "contacts", "f2", Some("first_name"))
        .await
        .unwrap();
    assert_eq!(e.target_id, "101");
    assert_eq!(e.origin, "matched");
    let f = &e.fields[0];
    assert_eq!(f.value.as_deref(), Some("Bob"));
    assert_eq!(f.system.as_deref(), Some("source"));
    assert_eq!(f.run_id.as_deref(), Some(applied.id.as_str()));
    assert_eq!(f.history.len(), 1);
    assert_eq!(f.history[0].before.as_deref(), Some("Old"));
    // By target id too.
    assert_eq!(
        explain(hub.store(), "contacts", "101", None)
            .await
            .unwrap()
            .source_id,
        "f2"
    );

    // Run records: newest first, with counts.
    let listed = Runs::new(hub.store().clone())
        .list(Default::default())
        .await
        .unwrap();
    assert_eq!(listed.len(), 2, "the refused second apply recorded no run");
    assert_eq!(listed[0].id, applied.id);
    assert_eq!(listed[0].report.as_ref().unwrap().report.applied, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_refuses_a_plan_when_the_target_or_the_source_moved() {
    let s = setup().await;
    let hub = &s.t.hub;
    let dry = run(hub, RunMode::DryRun, None, None).await;
    let plan_id = dry.plan_id.unwrap();
    // Someone edits the matched contact in the PSA after the dry run.
    let mut row = s.sim.autotask().get("Contacts", 101).unwrap();
    row["firstName"] = json!("Edited");
    s.sim.autotask().insert("Contacts", row);
    let before = contacts(&s.sim);
    let refused = run(hub, RunMode::ApplyPlan, Some(&plan_id), None).await;
    assert_eq!(refused.status, RunStatus::Stale, "{refused:?}");
    assert!(
        refused.error.as_deref().unwrap().contains("first_name"),
        "{refused:?}"
    );
    assert_eq!(contacts(&s.sim), before, "nothing written");
    assert_eq!(
        plans::get(hub.store(), &plan_id).await.unwrap().status,
        PlanStatus::Stale
    );

    // A plan made before another run synced the profile is stale too.
    let dry = run(hub, RunMode::DryRun, None, None).await;
    let plan_id = dry.plan_id.unwrap();
    assert_eq!(
        run(hub, RunMode::Run, None, None).await.status,
        RunStatus::Succeeded
    );
    let refused = run(hub, RunMode::ApplyPlan, Some(&plan_id), None).await;
    assert_eq!(refused.status, RunStatus::Stale, "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_did_not_claim_the_plan_does_not_apply_it() {
    let s = setup().await;
    let hub = &s.t.hub;
    let plan_id = run(hub, RunMode::DryRun, None, None).await.plan_id.unwrap();
    // An apply-plan run recorded without claiming the plan (not through
    // POST /plans/{id}/apply or `run --apply`).
    let runner = Runner::new(hub.clone(), "rogue", Duration::from_secs(30));
    let record = Runs::new(hub.store().clone())
        .start_now(
            NewRun {
                profile_id: "contacts",
                company_id: Some("contoso"),
                trigger: "manual",
                mode: RunMode::ApplyPlan,
                plan_id: Some(&plan_id),
            },
            "rogue",
            runner.lease(),
        )
        .await
        .unwrap();
    let done = runner.execute(record, &NoProgress).await.unwrap();
    assert_eq!(done.status, RunStatus::Failed, "{done:?}");
    assert!(
        done.error.as_deref().unwrap().contains("not claimed"),
        "{done:?}"
    );
    assert_eq!(contacts(&s.sim).len(), 1, "nothing written");
    assert_eq!(
        plans::get(hub.store(), &plan_id).await.unwrap().status,
        PlanStatus::Proposed,
        "the plan is still open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_that_errors_out_leaves_the_plan_failed() {
    let s = setup().await;
    let hub = &s.t.hub;
    let first = run(hub, RunMode::DryRun, None, None).await.plan_id.unwrap();
    let second = run(hub, RunMode::DryRun, None, None).await.plan_id.unwrap();
    // The PSA refuses every call while the first plan is applied (the CLI path).
    s.sim
        .add_fault(syncbridge_sim::FaultRule::rate("*", 401, 1.0))
        .unwrap();
    let done = syncbridge::console::run_now(
        hub.clone(),
        "contacts",
        RunMode::ApplyPlan,
        Some(&first),
        true,
    )
    .await
    .unwrap();
    assert_eq!(done.status, RunStatus::Failed, "{done:?}");
    let info = plans::get(hub.store(), &first).await.unwrap();
    assert_eq!(info.status, PlanStatus::Failed, "{info:?}");
    assert!(
        info.reason.as_deref().is_some_and(|r| r.contains("auth")),
        "{info:?}"
    );
    // The 401 stopped the connection: the next apply fails before it starts.
    s.sim.clear_faults();
    let done = syncbridge::console::run_now(
        hub.clone(),
        "contacts",
        RunMode::ApplyPlan,
        Some(&second),
        true,
    )
    .await
    .unwrap();
    assert_eq!(done.status, RunStatus::Failed, "{done:?}");
    let info = plans::get(hub.store(), &second).await.unwrap();
    assert_eq!(info.status, PlanStatus::Failed, "{info:?}");
    assert!(
        info.reason
            .as_deref()
            .is_some_and(|r| r.contains("stopped")),
        "{info:?}"
    );
    assert_eq!(contacts(&s.sim).len(), 1, "nothing written");
}

/// The plan's header, asserting its status.
async fn plan_is(hub: &Hub, id: &str, status: PlanStatus) -> plans::PlanInfo {
    let info = plans::get(hub.store(), id).await.unwrap();
    assert_eq!(info.status, status, "{info:?}");
    info
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_is_given_back_when_its_run_cannot_start_or_is_cancelled() {
    let s = setup().await;
    let hub = &s.t.hub;
    let plan_id = run(hub, RunMode::DryRun, None, None).await.plan_id.unwrap();
    // Another process runs the profile: neither the API nor the CLI path can
    // record the apply-plan run, and the plan stays proposed.
    let runs = Runs::new(hub.store().clone());
    let busy = runs
        .start_now(
            NewRun {
                profile_id: "contacts",
                company_id: Some("contoso"),
                trigger: "schedule",
                mode: RunMode::Run,
                plan_id: None,
            },
            "other",
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let refused = approval::start(hub.store(), &plan_id, "approval", Start::Queue).await;
    assert!(
        matches!(refused, Err(ApplyError::Runs(RunsError::InProgress { .. }))),
        "{refused:?}"
    );
    assert_eq!(
        plan_is(hub, &plan_id, PlanStatus::Proposed).await.apply_run,
        None
    );
    let refused = syncbridge::console::run_now(
        hub.clone(),
        "contacts",
        RunMode::ApplyPlan,
        Some(&plan_id),
        true,
    )
    .await;
    assert!(refused.is_err());
    plan_is(hub, &plan_id, PlanStatus::Proposed).await;
    assert!(runs
        .finish(&busy.id, "other", RunStatus::Succeeded, None, None, None)
        .await
        .unwrap()
        .is_some());

    // Queued through the API, then replaced by a run started by hand: the
    // cancelled run never applies, so the plan is open again.
    let queued = approval::start(hub.store(), &plan_id, "approval", Start::Queue)
        .await
        .unwrap();
    assert_eq!(
        plan_is(hub, &plan_id, PlanStatus::Applying)
            .await
            .apply_run
            .as_deref(),
        Some(queued.id.as_str())
    );
    let manual = syncbridge::console::run_now(hub.clone(), "contacts", RunMode::DryRun, None, true)
        .await
        .unwrap();
    assert_eq!(manual.status, RunStatus::Planned);
    assert_eq!(
        runs.get(&queued.id).await.unwrap().status,
        RunStatus::Cancelled
    );
    assert_eq!(
        plan_is(hub, &plan_id, PlanStatus::Proposed).await.apply_run,
        None
    );
    // A plan of another profile is not applied through this one.
    let mut other = profiles::get(hub.store(), "contacts").await.unwrap();
    other.id = "other".into();
    profiles::save(hub.store(), &other).await.unwrap();
    let refused = syncbridge::console::run_now(
        hub.clone(),
        "other",
        RunMode::ApplyPlan,
        Some(&plan_id),
        true,
    )
    .await
    .unwrap_err();
    assert!(
        refused.to_string().contains("belongs to profile contacts"),
        "{refused}"
    );
    plan_is(hub, &plan_id, PlanStatus::Proposed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brakes_park_the_plan_until_it_is_approved_and_mail_both() {
    let s = setup().await;
    let hub = &s.t.hub;
    let outbox = Arc::new(Outbox::default());
    assert_eq!(
        run(hub, RunMode::Run, None, None).await.status,
        RunStatus::Succeeded
    );
    *s.feed.lock().unwrap() = json!({"items": [person("f1", "Ann"), person("f2", "Bob"), {"id": "f3", "deleted": true}], "next": null});
    let held = run(hub, RunMode::Run, None, Some(outbox.clone())).await;
    assert_eq!(held.status, RunStatus::Held, "{held:?}");
    let plan_id = held.plan_id.clone().unwrap();
    assert_eq!(
        plans::get(hub.store(), &plan_id).await.unwrap().status,
        PlanStatus::Held
    );
    assert!(
        contacts(&s.sim)
            .iter()
            .all(|r| r["isActive"] == 1 || r["isActive"] == true),
        "nothing deactivated yet"
    );
    let open = alerts::list(hub.store(), Some("contoso"), None, false)
        .await
        .unwrap();
    assert!(
        open.iter()
            .any(|a| a.code == "plan_held" && a.message.contains(&plan_id)),
        "{open:?}"
    );
    {
        let sent = outbox.0.lock().unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, "ops@msp.example; noc@msp.example");
        assert!(sent[0].1.body.contains(&plan_id), "{}", sent[0].1.body);
    }

    let approved = run(
        hub,
        RunMode::ApplyPlan,
        Some(&plan_id),
        Some(outbox.clone()),
    )
    .await;
    assert_eq!(approved.status, RunStatus::Succeeded, "{approved:?}");
    let rows = contacts(&s.sim);
    let cy = rows.iter().find(|r| r["firstName"] == "Cy").unwrap();
    assert!(cy["isActive"] == 0 || cy["isActive"] == false, "{cy}");
    let sent = outbox.0.lock().unwrap();
    assert_eq!(sent.len(), 2, "a confirmation after the approved apply");
    assert!(
        sent[1].1.subject.contains("contacts"),
        "{}",
        sent[1].1.subject
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auth_error_stops_the_connection_until_a_test_passes() {
    let s = setup_with(common::hub().await, "wrong-secret").await;
    let hub = &s.t.hub;
    let outbox = Arc::new(Outbox::default());
    let failed = run(hub, RunMode::Run, None, Some(outbox.clone())).await;
    assert_eq!(failed.status, RunStatus::Failed, "{failed:?}");
    assert!(hub
        .store()
        .connection_stopped("psa")
        .await
        .unwrap()
        .is_some());
    let open = alerts::list(hub.store(), Some("contoso"), None, false)
        .await
        .unwrap();
    let alert = open
        .iter()
        .find(|a| a.code == "connection_auth_failed")
        .expect("an alert");
    assert_eq!(alert.connection_id.as_deref(), Some("psa"));
    assert!(!alert.message.contains("wrong-secret"));
    assert_eq!(outbox.0.lock().unwrap().len(), 1);
    assert!(!outbox.0.lock().unwrap()[0].1.body.contains("wrong-secret"));

    // While stopped, runs fail at once without calling the PSA.
    let calls = s.sim.requests().total;
    let again = run(hub, RunMode::Run, None, None).await;
    assert_eq!(again.status, RunStatus::Failed);
    assert!(
        again.error.as_deref().unwrap().contains("stopped"),
        "{again:?}"
    );
    assert_eq!(s.sim.requests().total, calls, "no request while stopped");

    // A failing test keeps it stopped; once the PSA accepts the key, a passing test restarts it.
    let _ = hub.test_connection("psa").await.unwrap();
    assert!(hub
        .store()
        .connection_stopped("psa")
        .await
        .unwrap()
        .is_some());
    s.sim
        .autotask()
        .add_api_user("api@msp.example", "wrong-secret", "TRACKING");
    let _ = hub.test_connection("psa").await.unwrap();
    assert!(hub
        .store()
        .connection_stopped("psa")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        run(hub, RunMode::Run, None, None).await.status,
        RunStatus::Succeeded
    );
}

async fn lease_semantics(runs: Runs) {
    // One claimer per run, even when two race for it.
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
    // Never two runs of a profile at once.
    let second = runs
        .enqueue(NewRun {
            profile_id: "contacts",
            company_id: None,
            trigger: "api",
            mode: RunMode::Run,
            plan_id: None,
        })
        .await;
    assert!(
        matches!(second, Err(RunsError::InProgress { ref run_id, .. }) if *run_id == queued.id),
        "{second:?}"
    );
    let lease = Duration::from_millis(400);
    let (a, b) = tokio::join!(
        runs.claim_next("proc-a", lease),
        runs.claim_next("proc-b", lease)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        a.is_some() != b.is_some(),
        "exactly one process claims the run: {a:?} {b:?}"
    );
    let (holder, other) = if a.is_some() {
        ("proc-a", "proc-b")
    } else {
        ("proc-b", "proc-a")
    };

    // Heartbeats keep the lease past its first expiry.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(runs.heartbeat(&queued.id, holder, lease).await.unwrap());
        assert!(runs.claim_next(other, lease).await.unwrap().is_none());
    }
    // The holder dies (stops renewing): the other takes the run over.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let taken = runs
        .claim_next(other, lease)
        .await
        .unwrap()
        .expect("taken over");
    assert_eq!((taken.id.as_str(), taken.attempts), (queued.id.as_str(), 2));
    assert!(
        !runs.heartbeat(&queued.id, holder, lease).await.unwrap(),
        "the old holder learns it lost the run"
    );
    assert!(runs
        .finish(&queued.id, holder, RunStatus::Succeeded, None, None, None)
        .await
        .unwrap()
        .is_none());
    assert!(runs
        .finish(&queued.id, other, RunStatus::Succeeded, None, None, None)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        runs.get(&queued.id).await.unwrap().status,
        RunStatus::Succeeded
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_hold_one_claimer_and_are_taken_over_on_sqlite() {
    let s = setup().await;
    lease_semantics(Runs::new(s.t.hub.store().clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_hold_one_claimer_and_are_taken_over_on_postgres() {
    let Some(url) = common::postgres_url("control_leases").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = setup_with(common::hub_with(dir, &url).await, "at-secret").await;
    lease_semantics(Runs::new(s.t.hub.store().clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_share_one_database_and_run_each_run_once() {
    let s = setup().await;
    let hub = &s.t.hub;
    // Every minute (the contacts flow's minimum): due once now.
    let mut settings = profiles::settings(hub.store(), "contacts").await.unwrap();
    settings.interval_secs = Some(60);
    profiles::set_settings(hub.store(), "contacts", &settings)
        .await
        .unwrap();
    let now = now_ms();
    assert_eq!(
        scheduler::enqueue_due(hub.store(), now)
            .await
            .unwrap()
            .runs
            .len(),
        1
    );
    assert!(
        scheduler::enqueue_due(hub.store(), now)
            .await
            .unwrap()
            .runs
            .is_empty(),
        "already queued"
    );

    let config = SchedulerConfig {
        tick: Duration::from_millis(50),
        workers: 2,
    };
    let (stop_a, rx_a) = tokio::sync::oneshot::channel::<()>();
    let (stop_b, rx_b) = tokio::sync::oneshot::channel::<()>();
    let runner_a = Arc::new(Runner::new(hub.clone(), "serve-a", Duration::from_secs(5)));
    let runner_b = Arc::new(Runner::new(hub.clone(), "serve-b", Duration::from_secs(5)));
    let a = tokio::spawn(scheduler::run(
        runner_a,
        hub.store().clone(),
        config.clone(),
        async move {
            let _ = rx_a.await;
        },
    ));
    let b = tokio::spawn(scheduler::run(
        runner_b,
        hub.store().clone(),
        config,
        async move {
            let _ = rx_b.await;
        },
    ));
    let runs = Runs::new(hub.store().clone());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let done = loop {
        let listed = runs.list(Default::default()).await.unwrap();
        if listed.iter().all(|r| r.status.finished()) {
            break listed;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not finish: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        done.len(),
        1,
        "not queued again within the minimum interval: {done:?}"
    );
    assert_eq!(done[0].status, RunStatus::Succeeded, "{done:?}");
    assert_eq!(done[0].attempts, 1);
    assert_eq!(done[0].trigger, "schedule");
    assert_eq!(contacts(&s.sim).len(), 3, "created once");
    // The next interval is a minute away.
    assert!(scheduler::enqueue_due(hub.store(), now + 30_000)
        .await
        .unwrap()
        .runs
        .is_empty());
    assert_eq!(
        scheduler::enqueue_due(hub.store(), now + 61_000)
            .await
            .unwrap()
            .runs
            .len(),
        1
    );
    let _ = (stop_a.send(()), stop_b.send(()));
    let _ = tokio::join!(a, b);
}

/// Milliseconds since the epoch of an RFC 3339 instant.
fn instant(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

/// Whether the scheduler queues a daily run of `contacts` at `at`. A queued
/// run is cancelled and dated `at`, as if it had been requested then.
async fn daily_queued_at(hub: &Arc<Hub>, at: &str) -> bool {
    let at = instant(at);
    let done = scheduler::enqueue_due(hub.store(), at).await.unwrap();
    assert!(done.skipped.is_empty(), "{:?}", done.skipped);
    let Some(run) = done.runs.first() else {
        return false;
    };
    assert_eq!(run.trigger, "daily");
    Runs::new(hub.store().clone())
        .cancel_queued("contacts", "test")
        .await
        .unwrap();
    sqlx::query("UPDATE runs SET requested_at = $1 WHERE id = $2")
        .bind(at)
        .bind(&run.id)
        .execute(hub.store().pool())
        .await
        .unwrap();
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_run_is_local_time_in_the_company_time_zone() {
    let s = setup().await;
    let hub = &s.t.hub;
    let mut contoso = companies::get(hub.store(), "contoso").await.unwrap();
    assert_eq!(contoso.time_zone, "UTC", "the default");
    contoso.time_zone = "Europe/Berlin".into();
    companies::save(hub.store(), &contoso).await.unwrap();
    let mut settings = profiles::settings(hub.store(), "contacts").await.unwrap();
    settings.daily_at = Some("02:00".into());
    profiles::set_settings(hub.store(), "contacts", &settings)
        .await
        .unwrap();

    // Never ran: due at once.
    assert!(daily_queued_at(hub, "2026-01-14T12:00:00Z").await);
    // Winter (CET): 02:00 in Berlin is 01:00 UTC.
    assert!(!daily_queued_at(hub, "2026-01-15T00:59:59Z").await);
    assert!(daily_queued_at(hub, "2026-01-15T01:00:00Z").await);
    assert!(!daily_queued_at(hub, "2026-01-15T23:00:00Z").await);
    // Summer (CEST): 02:00 in Berlin is 00:00 UTC.
    assert!(daily_queued_at(hub, "2026-07-14T12:00:00Z").await);
    assert!(!daily_queued_at(hub, "2026-07-14T23:59:59Z").await);
    assert!(daily_queued_at(hub, "2026-07-15T00:00:00Z").await);

    // Without a company the same profile's 02:00 is UTC: that day's slot
    // comes two hours after the Berlin one that just ran.
    settings.company_id = None;
    profiles::set_settings(hub.store(), "contacts", &settings)
        .await
        .unwrap();
    assert!(!daily_queued_at(hub, "2026-07-15T01:59:59Z").await);
    assert!(daily_queued_at(hub, "2026-07-15T02:00:00Z").await);
    settings.company_id = Some("contoso".into());
    profiles::set_settings(hub.store(), "contacts", &settings)
        .await
        .unwrap();

    // A stored zone this version cannot resolve skips the daily run with an
    // error naming the company, never UTC in its place.
    sqlx::query("UPDATE companies SET time_zone = 'Gone/Zone' WHERE id = 'contoso'")
        .execute(hub.store().pool())
        .await
        .unwrap();
    let done = scheduler::enqueue_due(hub.store(), instant("2026-07-18T12:00:00Z"))
        .await
        .unwrap();
    assert!(done.runs.is_empty(), "{:?}", done.runs);
    let message = done.skipped[0].to_string();
    for part in ["contacts", "contoso", "Gone/Zone", "--time-zone"] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_interval_out_of_range_skips_that_profile_only() {
    let s = setup().await;
    let hub = &s.t.hub;
    let mut settings = profiles::settings(hub.store(), "contacts").await.unwrap();
    settings.interval_secs = Some(60);
    profiles::set_settings(hub.store(), "contacts", &settings)
        .await
        .unwrap();
    // Profiles whose stored intervals an older version wrote: -1 (for a
    // value above i64::MAX) and 30 (below the minimum, silently raised then).
    let base = profiles::get(hub.store(), "contacts").await.unwrap();
    for (id, stored) in [("minus-one", -1i64), ("too-fast", 30)] {
        profiles::save(
            hub.store(),
            &Profile {
                id: id.into(),
                ..base.clone()
            },
        )
        .await
        .unwrap();
        sqlx::query("UPDATE profiles SET interval_secs = $1 WHERE id = $2")
            .bind(stored)
            .bind(id)
            .execute(hub.store().pool())
            .await
            .unwrap();
    }
    let done = scheduler::enqueue_due(hub.store(), now_ms()).await.unwrap();
    let runs = Runs::new(hub.store().clone());
    for (id, stored) in [("minus-one", "-1"), ("too-fast", "30")] {
        assert!(
            runs.active_for_profile(id).await.unwrap().is_none(),
            "{id} is skipped"
        );
        let bad = done
            .skipped
            .iter()
            .find(|b| b.profile == id)
            .unwrap_or_else(|| panic!("{id} is reported: {:?}", done.skipped));
        // What the log says: which profile, what is wrong, what to do.
        let message = bad.to_string();
        for part in [id, stored, "60 to 2678400", "PUT /api/v1/profiles/"] {
            assert!(message.contains(part), "{part:?} in {message}");
        }
    }
    assert_eq!(done.skipped.len(), 2, "{:?}", done.skipped);
    assert_eq!(done.runs.len(), 1, "{:?}", done.runs);
    assert_eq!(done.runs[0].profile_id, "contacts");
    assert!(
        runs.active_for_profile("contacts").await.unwrap().is_some(),
        "the good profile is still queued"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_setting_change_schedules_a_full_resync() {
    let s = setup().await;
    let hub = &s.t.hub;
    // The feed hands out a delta cursor: later runs read changes only.
    *s.feed.lock().unwrap() = json!({"items": [person("f1", "Ann"), person("f2", "Bob"), person("f3", "Cy")], "next": "delta-1", "more": false});
    assert_eq!(
        run(hub, RunMode::Run, None, None).await.status,
        RunStatus::Succeeded
    );
    // f3 disappears without a deletion marker: only a full pass can notice.
    *s.feed.lock().unwrap() = json!({"items": [person("f1", "Ann"), person("f2", "Bob")], "next": "delta-1", "more": false});
    let delta = run(hub, RunMode::Run, None, None).await;
    assert_eq!(
        delta.report.as_ref().unwrap().report.planned.deactivate,
        0,
        "{delta:?}"
    );
    // The source's server settings changed: the cursor is forgotten, the
    // next run is a full pass and plans f3's deactivation.
    assert_eq!(
        profiles::request_resync(hub.store(), "feed").await.unwrap(),
        1
    );
    let full = run(hub, RunMode::Run, None, None).await;
    assert_eq!(
        full.report.as_ref().unwrap().report.planned.deactivate,
        1,
        "{full:?}"
    );
    assert!(
        !profiles::take_resync(hub.store(), "contacts")
            .await
            .unwrap(),
        "the request is consumed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_profile_never_stops_the_others() {
    let s = setup().await;
    let hub = &s.t.hub;
    // A second PSA connection with a wrong key, and a profile writing to it.
    let at_config = json!({"api_user": "api@msp.example", "zone_lookup_url": format!("{}/atservicesrest", s.sim.base_url())});
    let bad = json!({"kind": "headers", "headers": {"ApiIntegrationCode": "TRACKING", "UserName": "api@msp.example", "Secret": "nope"}});
    common::loopback_connection(
        hub,
        "psa-bad",
        "autotask",
        &at_config.to_string(),
        &[("default", &bad.to_string())],
    )
    .await;
    let mut broken = profiles::get(hub.store(), "contacts").await.unwrap();
    broken.id = "broken".into();
    broken.target_connection = "psa-bad".into();
    profiles::save(hub.store(), &broken).await.unwrap();
    let runs = Runs::new(hub.store().clone());
    for profile in ["broken", "contacts"] {
        runs.enqueue(NewRun {
            profile_id: profile,
            company_id: Some("contoso"),
            trigger: "api",
            mode: RunMode::Run,
            plan_id: None,
        })
        .await
        .unwrap();
    }
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
    let done = loop {
        let listed = runs.list(Default::default()).await.unwrap();
        if listed.len() == 2 && listed.iter().all(|r| r.status.finished()) {
            break listed;
        }
        assert!(std::time::Instant::now() < deadline, "{listed:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let status = |p: &str| done.iter().find(|r| r.profile_id == p).unwrap().status;
    assert_eq!(status("broken"), RunStatus::Failed);
    assert_eq!(status("contacts"), RunStatus::Succeeded, "{done:?}");
    assert_eq!(contacts(&s.sim).len(), 3);
    assert!(hub
        .store()
        .connection_stopped("psa-bad")
        .await
        .unwrap()
        .is_some());
    assert!(hub
        .store()
        .connection_stopped("psa")
        .await
        .unwrap()
        .is_none());
    let _ = stop.send(());
    let _ = task.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_stored_rows_are_errors_naming_the_row_never_defaults() {
    let s = setup().await;
    let hub = &s.t.hub;
    let sql = |q: &'static str| async move {
        sqlx::query(q).execute(hub.store().pool()).await.unwrap();
    };
    // Stored rules this version cannot read: the run fails naming the
    // profile, and nothing runs under default rules.
    sql("UPDATE profiles SET rules = '{\"brakes\": 7}' WHERE id = 'contacts'").await;
    let err = profiles::get(hub.store(), "contacts")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("profile \"contacts\"") && err.contains("rules"),
        "{err}"
    );
    let failed = run(hub, RunMode::Run, None, None).await;
    assert_eq!(failed.status, RunStatus::Failed, "{failed:?}");
    assert!(
        failed.error.as_deref().unwrap_or("").contains("rules"),
        "{failed:?}"
    );
    assert_eq!(contacts(&s.sim).len(), 1, "nothing was written");

    // A page size no version accepts is not raised to one that works.
    sql("UPDATE profiles SET rules = '{}', page_size = 0 WHERE id = 'contacts'").await;
    let err = profiles::get(hub.store(), "contacts")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("page_size 0"), "{err}");

    // An unknown stored run mode is an error naming the run, never a real run.
    sql("UPDATE runs SET mode = 'turbo'").await;
    let err = Runs::new(hub.store().clone())
        .get(&failed.id)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&failed.id) && err.contains("unknown run mode \"turbo\""),
        "{err}"
    );

    // A link whose stored provenance cannot be read: explain names the link
    // instead of explaining it without provenance.
    sql("INSERT INTO links (profile_id, source_id, target_id, fields, provenance, origin, updated_at) VALUES ('contacts', 'f9', '909', '{}', 'not json', 'created', 0)").await;
    let err = explain(hub.store(), "contacts", "f9", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("contacts/f9") && err.contains("provenance"),
        "{err}"
    );

    // A connection whose allowed hosts cannot be read is an error naming it,
    // never a connection allowed nowhere (or anywhere).
    sql("UPDATE connections SET allowed_hosts = 'not json' WHERE id = 'psa'").await;
    let err = hub
        .store()
        .get_connection("psa")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("psa") && err.contains("allowed hosts"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_stored_in_another_format_is_refused_by_name_never_misread() {
    let s = setup().await;
    let hub = &s.t.hub;
    let dry = run(hub, RunMode::DryRun, None, None).await;
    let plan_id = dry.plan_id.clone().expect("the dry run names its plan");
    assert_eq!(
        plans::get(hub.store(), &plan_id).await.unwrap().format,
        plans::PLAN_FORMAT
    );
    // An earlier version stored it in a shape this one no longer reads
    // (format 1: WIT records and one `rule` sentence per item).
    sqlx::query("UPDATE plans SET format = 1")
        .execute(hub.store().pool())
        .await
        .unwrap();
    let err = plans::items(hub.store(), &plan_id, false, 0, 100)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&plan_id) && err.contains("plan format 1") && err.contains("new dry run"),
        "{err}"
    );
    // Listing still works; applying it fails naming the format and writes nothing.
    assert_eq!(plans::list(hub.store(), None).await.unwrap().len(), 1);
    let applied = run(hub, RunMode::ApplyPlan, Some(&plan_id), None).await;
    assert_eq!(applied.status, RunStatus::Failed, "{applied:?}");
    assert!(
        applied
            .error
            .as_deref()
            .unwrap_or("")
            .contains("plan format 1"),
        "{applied:?}"
    );
    assert_eq!(contacts(&s.sim).len(), 1, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_key_that_opens_nothing_fails_the_run_at_once_without_stopping_the_connection() {
    let s = setup().await;
    // The same database and plugins, started with another master key.
    let dir = s.t.dir.path();
    let store =
        syncbridge::store::Store::open(&format!("sqlite://{}", dir.join("test.db").display()))
            .await
            .unwrap();
    let runtime = syncbridge::runtime::Runtime::new(syncbridge::runtime::EngineOptions {
        cache_dir: Some(dir.join("cache")),
        ..Default::default()
    })
    .unwrap();
    let hub = Arc::new(Hub::new(
        store,
        Arc::new(runtime),
        syncbridge::secrets::MasterKey::generate(),
        dir.join("plugins"),
    ));
    let started = std::time::Instant::now();
    let failed = run(&hub, RunMode::Run, None, None).await;
    assert_eq!(failed.status, RunStatus::Failed, "{failed:?}");
    let error = failed.error.as_deref().unwrap_or("");
    assert!(
        error.contains("master key") && !error.contains("transient"),
        "the cause, not a retried transient error: {error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "not retried with back-off: {:?}",
        started.elapsed()
    );
    for conn in ["feed", "psa"] {
        assert!(
            hub.store()
                .connection_stopped(conn)
                .await
                .unwrap()
                .is_none(),
            "the connection is not at fault: {conn} stays started"
        );
    }
}

/// A stored token role this version does not know is an error naming the
/// token, never a viewer (or any other role) in its place.
#[tokio::test]
async fn a_token_with_an_unknown_stored_role_is_an_error_naming_it() {
    let t = common::hub().await;
    let (info, _) = syncbridge::control::tokens::create(
        t.hub.store(),
        "ci",
        syncbridge::control::tokens::Role::Operator,
        None,
    )
    .await
    .unwrap();
    sqlx::query("UPDATE api_tokens SET role = 'superuser' WHERE id = $1")
        .bind(&info.id)
        .execute(t.hub.store().pool())
        .await
        .unwrap();
    let err = syncbridge::control::tokens::list(t.hub.store())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&info.id) && err.contains("unknown role \"superuser\""),
        "{err}"
    );
}
