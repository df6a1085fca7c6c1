//! The REST API over real HTTP on loopback: tokens and roles, company
//! scoping, connections with write-only credentials, conflicts while a sync
//! runs, re-sync on server changes, profiles and runs, plans, quarantine,
//! alerts, plugin upload, error shape and the OpenAPI document. The key
//! checks run on SQLite and on PostgreSQL.

use crate::common;

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use syncbridge::control::alerts::{self, NewAlert};
use syncbridge::control::companies::{self, Company};
use syncbridge::control::plans;
use syncbridge::control::runs::{NewRun, RunMode, RunStatus, Runs};
use syncbridge::control::tokens::{self, Role};
use syncbridge::engine::plan::{Action, FieldChange, Origin, PlanCounts, PlannedOp};
use syncbridge::engine::profiles::{self, Profile, ProfileSettings};
use syncbridge::engine::rules::FieldRules;
use syncbridge::engine::run::{PagePlan, Plan};
use syncbridge::hub::Hub;

const SECRET: &str = "s3cr3t-Pa55word-never-shown";
const OTHER_SECRET: &str = "an0ther-S3CRET-never-shown";

/// A client of the served API.
struct Api {
    base: String,
    http: reqwest::Client,
}

/// A response: status, parsed JSON (Null when empty), raw text.
#[derive(Debug)]
struct Reply {
    status: u16,
    json: Value,
    text: String,
    headers: reqwest::header::HeaderMap,
}

impl Reply {
    fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

impl Api {
    async fn start(hub: &Arc<Hub>) -> Self {
        let base = common::serve(syncbridge::server::router(hub.clone())).await;
        Self {
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<reqwest::Body>,
        content_type: &str,
    ) -> Reply {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req.header("Content-Type", content_type).body(b);
        }
        let resp = req.send().await.expect("request is answered");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{path} answered non-JSON ({e}): {text}"))
        };
        Reply {
            status,
            json,
            text,
            headers,
        }
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(reqwest::Method::GET, path, Some(token), None, "")
            .await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(
            reqwest::Method::POST,
            path,
            Some(token),
            Some(body.to_string().into()),
            "application/json",
        )
        .await
    }

    async fn post_empty(&self, path: &str, token: &str) -> Reply {
        self.send(reqwest::Method::POST, path, Some(token), None, "")
            .await
    }

    async fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(
            reqwest::Method::PUT,
            path,
            Some(token),
            Some(body.to_string().into()),
            "application/json",
        )
        .await
    }

    async fn delete(&self, path: &str, token: &str) -> Reply {
        self.send(reqwest::Method::DELETE, path, Some(token), None, "")
            .await
    }
}

fn ids(reply: &Reply) -> Vec<String> {
    reply.json["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {}", reply.text))
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Tokens of every kind, two companies with a profile each.
struct World {
    t: common::TestHub,
    api: Api,
    /// Admin for every company.
    admin: String,
    operator: String,
    viewer: String,
    /// Scoped to acme.
    acme_admin: String,
    acme_operator: String,
    acme_viewer: String,
    /// Scoped to globex.
    globex_viewer: String,
}

impl World {
    fn hub(&self) -> &Arc<Hub> {
        &self.t.hub
    }
    fn runs(&self) -> Runs {
        Runs::new(self.hub().store().clone())
    }
}

async fn token(hub: &Hub, role: Role, company: Option<&str>) -> String {
    tokens::create(hub.store(), "test", role, company)
        .await
        .unwrap()
        .1
}

/// A connection of http-probe (loopback allowed) owned by `company`.
async fn connection(hub: &Hub, id: &str, company: Option<&str>) {
    common::loopback_connection(
        hub,
        id,
        "http-probe",
        &json!({"base_url": "http://127.0.0.1:9", "health_path": "/health"}).to_string(),
        &[(
            "default",
            &json!({"kind": "bearer", "token": SECRET}).to_string(),
        )],
    )
    .await;
    companies::assign_connection(hub.store(), id, company)
        .await
        .unwrap();
}

/// A profile `id` from `source` to `target` owned by `company`, stored directly.
async fn profile(hub: &Hub, id: &str, source: &str, target: &str, company: Option<&str>) {
    profiles::save(
        hub.store(),
        &Profile {
            id: id.into(),
            source_connection: source.into(),
            source_scope: "contacts".into(),
            mapper_plugin: "echo-mapper".into(),
            mapper_options: "{}".into(),
            target_connection: target.into(),
            target_scope: "contacts".into(),
            rules: FieldRules::default(),
            page_size: 10,
        },
    )
    .await
    .unwrap();
    profiles::set_settings(
        hub.store(),
        id,
        &ProfileSettings {
            company_id: company.map(str::to_owned),
            ..ProfileSettings::default()
        },
    )
    .await
    .unwrap();
}

async fn world_on(t: common::TestHub) -> World {
    for p in ["http-probe", "echo-mapper"] {
        common::install(&t.hub, p).await;
    }
    let hub = &t.hub;
    for (id, name) in [("acme", "Acme Corp"), ("globex", "Globex")] {
        companies::save(
            hub.store(),
            &Company {
                id: id.into(),
                name: name.into(),
                notify_to: String::new(),
                time_zone: "UTC".into(),
            },
        )
        .await
        .unwrap();
    }
    for (conn, company) in [
        ("acme-src", "acme"),
        ("acme-dst", "acme"),
        ("globex-src", "globex"),
        ("globex-dst", "globex"),
    ] {
        connection(hub, conn, Some(company)).await;
    }
    profile(hub, "acme-contacts", "acme-src", "acme-dst", Some("acme")).await;
    profile(
        hub,
        "globex-contacts",
        "globex-src",
        "globex-dst",
        Some("globex"),
    )
    .await;
    World {
        admin: token(hub, Role::Admin, None).await,
        operator: token(hub, Role::Operator, None).await,
        viewer: token(hub, Role::Viewer, None).await,
        acme_admin: token(hub, Role::Admin, Some("acme")).await,
        acme_operator: token(hub, Role::Operator, Some("acme")).await,
        acme_viewer: token(hub, Role::Viewer, Some("acme")).await,
        globex_viewer: token(hub, Role::Viewer, Some("globex")).await,
        api: Api::start(&t.hub).await,
        t,
    }
}

async fn world() -> World {
    world_on(common::hub().await).await
}

/// Finishes whatever run of `profile` is queued or running, as a worker would.
async fn finish_active(w: &World, profile: &str) {
    let runs = w.runs();
    if let Some(run) = runs.active_for_profile(profile).await.unwrap() {
        if run.status == RunStatus::Queued {
            // Claim this very run (claim_next would take the oldest of any profile).
            sqlx::query(
                "UPDATE runs SET status = 'running', lease_owner = 'test-worker', lease_until = $1,
                     started_at = $1, attempts = attempts + 1 WHERE id = $2",
            )
            .bind(syncbridge::store::now_ms() + 60_000)
            .bind(&run.id)
            .execute(w.hub().store().pool())
            .await
            .unwrap();
        }
        let owner = runs.get(&run.id).await.unwrap().lease_owner.unwrap();
        assert!(runs
            .finish(&run.id, &owner, RunStatus::Succeeded, None, None, None)
            .await
            .unwrap()
            .is_some());
    }
}

// ---- scenarios, shared by the SQLite tests and the PostgreSQL one --------

async fn auth_scenario(w: &World) {
    let api = &w.api;
    // Missing token.
    let r = api
        .send(reqwest::Method::GET, "/profiles", None, None, "")
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.code(), "unauthorized");
    assert!(r.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    // Not a bearer token; garbage; a well-formed but unknown token.
    let r = api
        .http
        .get(format!("{}/api/v1/profiles", api.base))
        .header("Authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    for bad in ["garbage", "sbt_nope_nope", "sbt_"] {
        let r = api.get("/profiles", bad).await;
        assert_eq!(r.status, 401, "{bad}: {}", r.text);
        assert_eq!(r.code(), "unauthorized");
    }
    // Revoked.
    let (info, revoked) = tokens::create(w.hub().store(), "old", Role::Admin, None)
        .await
        .unwrap();
    assert_eq!(api.get("/profiles", &revoked).await.status, 200);
    tokens::revoke(w.hub().store(), &info.id).await.unwrap();
    let r = api.get("/profiles", &revoked).await;
    assert_eq!(r.status, 401);
    assert!(r.headers.contains_key("www-authenticate"));
    // A tampered secret of a live token.
    let tampered = format!("{}x", &w.viewer[..w.viewer.len() - 1]);
    assert_eq!(api.get("/profiles", &tampered).await.status, 401);

    // Viewer: reads, never writes.
    assert_eq!(api.get("/profiles", &w.viewer).await.status, 200);
    for (path, body) in [
        ("/profiles/acme-contacts/run", None),
        ("/profiles/acme-contacts/dry-run", None),
        ("/profiles/acme-contacts/disable", None),
        ("/connections/acme-src/test", None),
        ("/companies", Some(json!({"id": "x", "name": "X"}))),
    ] {
        let r = match body {
            Some(b) => api.post(path, &w.viewer, b).await,
            None => api.post_empty(path, &w.viewer).await,
        };
        assert_eq!(r.status, 403, "{path}: {}", r.text);
        assert_eq!(r.code(), "forbidden");
    }
    let r = api.delete("/connections/acme-src", &w.viewer).await;
    assert_eq!(r.status, 403);
    // Operator: runs and enable/disable, not configuration.
    let r = api
        .post_empty("/profiles/acme-contacts/disable", &w.operator)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["enabled"], false);
    let r = api
        .post_empty("/profiles/acme-contacts/enable", &w.operator)
        .await;
    assert_eq!(r.json["enabled"], true);
    let r = api
        .put(
            "/connections/acme-src",
            &w.operator,
            json!({"allowed_hosts": ["x"]}),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = api.delete("/profiles/acme-contacts", &w.operator).await;
    assert_eq!(r.status, 403);
    // Plugins: visible to all, installed only by an unscoped admin.
    assert_eq!(api.get("/plugins", &w.acme_viewer).await.status, 200);
    let r = api.delete("/plugins/echo-mapper", &w.acme_admin).await;
    assert_eq!(r.status, 403, "{}", r.text);
}

async fn scoping_scenario(w: &World) {
    let api = &w.api;
    // Lists.
    let r = api.get("/connections", &w.acme_viewer).await;
    assert_eq!(ids(&r), ["acme-dst", "acme-src"]);
    let r = api.get("/connections", &w.viewer).await;
    assert_eq!(ids(&r).len(), 4);
    assert_eq!(
        ids(&api.get("/profiles", &w.acme_viewer).await),
        ["acme-contacts"]
    );
    assert_eq!(
        ids(&api.get("/profiles", &w.globex_viewer).await),
        ["globex-contacts"]
    );
    assert_eq!(ids(&api.get("/companies", &w.acme_viewer).await), ["acme"]);
    assert_eq!(ids(&api.get("/companies", &w.viewer).await).len(), 2);

    // Another company's objects are 404, not 403.
    for path in [
        "/profiles/globex-contacts",
        "/connections/globex-src",
        "/companies/globex",
        "/profiles/globex-contacts/explain?record=x",
        "/runs?profile=globex-contacts",
        "/plans?profile=globex-contacts",
        "/quarantine?profile=globex-contacts",
    ] {
        let r = api.get(path, &w.acme_viewer).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert_eq!(r.code(), "not_found");
    }
    let r = api
        .post_empty("/profiles/globex-contacts/run", &w.acme_operator)
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = api
        .put(
            "/connections/globex-src",
            &w.acme_admin,
            json!({"allowed_hosts": []}),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = api.delete("/profiles/globex-contacts", &w.acme_admin).await;
    assert_eq!(r.status, 404);

    // Runs are listed per company.
    let acme = api
        .post_empty("/profiles/acme-contacts/run", &w.acme_operator)
        .await;
    assert_eq!(acme.status, 202, "{}", acme.text);
    assert_eq!(acme.json["company_id"], "acme");
    let globex = w
        .runs()
        .enqueue(NewRun {
            profile_id: "globex-contacts",
            company_id: Some("globex"),
            trigger: "manual",
            mode: RunMode::Run,
            plan_id: None,
        })
        .await
        .unwrap();
    let listed = ids(&api.get("/runs", &w.acme_viewer).await);
    assert_eq!(listed, [acme.json["id"].as_str().unwrap()]);
    assert_eq!(ids(&api.get("/runs", &w.viewer).await).len(), 2);
    let r = api
        .get(&format!("/runs/{}", globex.id), &w.acme_viewer)
        .await;
    assert_eq!(r.status, 404);
    let r = api
        .get(
            &format!("/runs/{}", acme.json["id"].as_str().unwrap()),
            &w.acme_viewer,
        )
        .await;
    assert_eq!(r.status, 200);
    finish_active(w, "acme-contacts").await;
    finish_active(w, "globex-contacts").await;

    // Alerts per company.
    let a = alerts::raise(
        w.hub().store(),
        NewAlert {
            company_id: Some("acme"),
            severity: "error",
            code: "run_failed",
            message: "acme failed",
            ..NewAlert::default()
        },
    )
    .await
    .unwrap();
    let g = alerts::raise(
        w.hub().store(),
        NewAlert {
            company_id: Some("globex"),
            severity: "error",
            code: "run_failed",
            message: "globex failed",
            ..NewAlert::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        ids(&api.get("/alerts", &w.acme_viewer).await),
        std::slice::from_ref(&a.id)
    );
    assert_eq!(ids(&api.get("/alerts", &w.viewer).await).len(), 2);
    let r = api
        .post_empty(&format!("/alerts/{}/resolve", g.id), &w.acme_operator)
        .await;
    assert_eq!(r.status, 404);
    let r = api
        .post_empty(&format!("/alerts/{}/resolve", a.id), &w.acme_operator)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json["resolved_at"].is_i64());
    assert!(ids(&api.get("/alerts", &w.acme_viewer).await).is_empty());
    assert_eq!(
        ids(&api.get("/alerts?all=true", &w.acme_viewer).await),
        [a.id]
    );

    // What a scoped token creates gets its company (in its namespace); it cannot name another.
    let r = api
        .post(
            "/connections",
            &w.acme_admin,
            json!({"id": "acme.extra", "plugin_id": "http-probe", "config": {"base_url": "http://127.0.0.1:9"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["company_id"], "acme");
    assert_eq!(
        companies::of_connection(w.hub().store(), "acme.extra")
            .await
            .unwrap()
            .as_deref(),
        Some("acme")
    );
    let r = api
        .post(
            "/connections",
            &w.acme_admin,
            json!({"id": "sneaky", "plugin_id": "http-probe", "company_id": "globex"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = api
        .post(
            "/profiles",
            &w.acme_admin,
            json!({"id": "acme.new", "source_connection": "acme-src", "source_scope": "contacts",
                   "mapper_plugin": "echo-mapper", "target_connection": "acme.extra", "target_scope": "contacts"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["profile"]["company_id"], "acme");
    // A profile may not use another company's connection (it does not exist for them).
    let r = api
        .post(
            "/profiles",
            &w.acme_admin,
            json!({"id": "acme.bad", "source_connection": "globex-src", "source_scope": "contacts",
                   "mapper_plugin": "echo-mapper", "target_connection": "acme-dst", "target_scope": "contacts"}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    // Scoped admins cannot create companies.
    let r = api
        .post(
            "/companies",
            &w.acme_admin,
            json!({"id": "initech", "name": "Initech"}),
        )
        .await;
    assert_eq!(r.status, 403);
}

async fn conflict_and_resync_scenario(w: &World) {
    let api = &w.api;
    let running = w
        .runs()
        .start_now(
            NewRun {
                profile_id: "acme-contacts",
                company_id: Some("acme"),
                trigger: "manual",
                mode: RunMode::Run,
                plan_id: None,
            },
            "cli-test",
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let r = api
        .put(
            "/connections/acme-src",
            &w.admin,
            json!({"config": {"base_url": "http://127.0.0.2:9"},
                   "credentials": {"default": {"kind": "bearer", "token": SECRET}}}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.code(), "sync_in_progress");
    let message = r.json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("a sync using connection acme-src is in progress")
            && message.contains(&running.id)
            && message.contains("try again when it finishes"),
        "{message}"
    );
    // The profile cannot be run or removed meanwhile.
    let r = api
        .post_empty("/profiles/acme-contacts/run", &w.operator)
        .await;
    assert_eq!((r.status, r.code()), (409, "sync_in_progress"));
    assert!(w
        .runs()
        .finish(
            &running.id,
            "cli-test",
            RunStatus::Succeeded,
            None,
            None,
            None
        )
        .await
        .unwrap()
        .is_some());

    // A setting that does not change which data is read: no re-sync.
    let r = api
        .put(
            "/connections/acme-src",
            &w.admin,
            json!({"config": {"base_url": "http://127.0.0.1:9", "health_path": "/ping"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["full_resync_scheduled"], false);
    assert!(!profiles::take_resync(w.hub().store(), "acme-contacts")
        .await
        .unwrap());
    // The server changes (credentials entered again with it): the profiles
    // using it re-sync in full.
    let r = api
        .put(
            "/connections/acme-src",
            &w.admin,
            json!({"config": {"base_url": "http://127.0.0.2:9", "health_path": "/ping"},
                   "credentials": {"default": {"kind": "bearer", "token": SECRET}}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["full_resync_scheduled"], true);
    assert_eq!(r.json["changed_server_settings"], json!(["base_url"]));
    assert!(r.json["resync_profiles"]
        .as_array()
        .unwrap()
        .contains(&json!("acme-contacts")));
    assert_eq!(
        r.json["connection"]["config"]["base_url"],
        "http://127.0.0.2:9"
    );
    assert!(profiles::take_resync(w.hub().store(), "acme-contacts")
        .await
        .unwrap());
    assert!(!r.text.contains(SECRET));
}

async fn profile_runs_scenario(w: &World) {
    let api = &w.api;
    let r = api
        .post(
            "/profiles",
            &w.admin,
            json!({"id": "saved", "company_id": "acme", "source_connection": "acme-src", "source_scope": "contacts",
                   "mapper_plugin": "echo-mapper", "target_connection": "acme-dst", "target_scope": "contacts",
                   "rules": {"match_existing": true}, "interval_secs": 900, "daily_at": "02:30"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["queued_run"]["trigger"], "saved");
    assert_eq!(r.json["queued_run"]["status"], "queued");
    assert_eq!(r.json["profile"]["interval_secs"], 900);
    assert_eq!(r.json["profile"]["rules"]["match_existing"], true);
    let saved_run = r.json["queued_run"]["id"].as_str().unwrap().to_owned();
    // The saved run is queued, so run now conflicts.
    let r = api.post_empty("/profiles/saved/run", &w.operator).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "sync_in_progress"),
        "{}",
        r.text
    );
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&saved_run));
    finish_active(w, "saved").await;
    // Run now: 202, then 409 while it is queued.
    let r = api.post_empty("/profiles/saved/run", &w.operator).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json["mode"], "run");
    assert_eq!(r.json["status"], "queued");
    let run_id = r.json["id"].as_str().unwrap().to_owned();
    let r = api.post_empty("/profiles/saved/run", &w.operator).await;
    assert_eq!((r.status, r.code()), (409, "sync_in_progress"));
    let r = api.post_empty("/profiles/saved/dry-run", &w.operator).await;
    assert_eq!(r.status, 409);
    let r = api.get(&format!("/runs/{run_id}"), &w.viewer).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["id"], run_id.as_str());
    assert_eq!(r.json["items"], json!([]));
    finish_active(w, "saved").await;
    let r = api.post_empty("/profiles/saved/dry-run", &w.operator).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json["mode"], "dry-run");
    finish_active(w, "saved").await;
    let r = api.get("/runs?profile=saved&limit=2", &w.viewer).await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 2);
    assert_eq!(r.json["items"][0]["mode"], "dry-run");

    // Update: saving again queues another saved run.
    let r = api
        .put(
            "/profiles/saved",
            &w.admin,
            json!({"page_size": 25, "daily_at": null}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["profile"]["page_size"], 25);
    assert_eq!(r.json["profile"]["daily_at"], Value::Null);
    assert_eq!(r.json["profile"]["interval_secs"], 900);
    assert_eq!(r.json["queued_run"]["trigger"], "saved");
    let r = api.get("/profiles/saved", &w.acme_viewer).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["company_id"], "acme");
    // Removal waits for the queued run.
    let r = api.delete("/profiles/saved", &w.admin).await;
    assert_eq!((r.status, r.code()), (409, "sync_in_progress"));
    finish_active(w, "saved").await;
    let r = api.delete("/profiles/saved", &w.admin).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(api.get("/profiles/saved", &w.admin).await.status, 404);
    // Invalid settings are 400.
    let r = api
        .put(
            "/profiles/acme-contacts",
            &w.admin,
            json!({"daily_at": "25:99"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"), "{}", r.text);
}

// ---- SQLite -------------------------------------------------------------

#[tokio::test]
async fn tokens_roles_and_401_403() {
    let w = world().await;
    auth_scenario(&w).await;
}

#[tokio::test]
async fn a_scoped_token_sees_and_creates_only_its_company() {
    let w = world().await;
    scoping_scenario(&w).await;
}

#[tokio::test]
async fn put_connection_is_refused_while_a_sync_runs_and_server_changes_resync() {
    let w = world().await;
    conflict_and_resync_scenario(&w).await;
}

#[tokio::test]
async fn saving_a_profile_queues_a_run_and_run_now_answers_202_then_409() {
    let w = world().await;
    profile_runs_scenario(&w).await;
}

/// What `GET /profiles/{id}` and the run queue say about a profile.
async fn stored_interval(w: &World, id: &str) -> (u16, Value, bool) {
    let r = w.api.get(&format!("/profiles/{id}"), &w.admin).await;
    let queued = w.runs().active_for_profile(id).await.unwrap().is_some();
    (r.status, r.json["interval_secs"].clone(), queued)
}

#[tokio::test]
async fn schedule_intervals_out_of_range_are_refused_and_nothing_is_stored() {
    let w = world().await;
    let api = &w.api;
    let body = |id: &str, scope: &str, interval: Value| {
        json!({"id": id, "company_id": "acme", "source_connection": "acme-src", "source_scope": scope,
               "mapper_plugin": "echo-mapper", "target_connection": "acme-dst", "target_scope": "contacts",
               "interval_secs": interval})
    };
    // Above 31 days (u64::MAX used to be stored as -1 and run every second), below the minimum.
    for bad in [json!(u64::MAX), json!(2_678_401u64), json!(59)] {
        let r = api
            .post("/profiles", &w.admin, body("fast", "contacts", bad.clone()))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (400, "invalid_request"),
            "{bad}: {}",
            r.text
        );
        let message = r.json["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("60") && message.contains("2678400"),
            "{bad}: the message names the range: {message}"
        );
        assert_eq!(
            stored_interval(&w, "fast").await.0,
            404,
            "{bad}: not created"
        );
    }
    // A calendar flow's range starts at its own minimum.
    let r = api
        .post("/profiles", &w.admin, body("cal", "calendar", json!(599)))
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"), "{}", r.text);
    assert!(
        r.text.contains("600") && r.text.contains("2678400"),
        "{}",
        r.text
    );
    assert_eq!(stored_interval(&w, "cal").await.0, 404);
    // The ends of the range are allowed.
    let r = api
        .post(
            "/profiles",
            &w.admin,
            body("cal", "calendar", json!(2_678_400)),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["profile"]["interval_secs"], 2_678_400);

    // PUT: refused, the stored interval and the queue unchanged.
    let r = api
        .put(
            "/profiles/acme-contacts",
            &w.admin,
            json!({"interval_secs": 60}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    finish_active(&w, "acme-contacts").await;
    for bad in [json!(u64::MAX), json!(2_678_401u64), json!(59)] {
        let r = api
            .put(
                "/profiles/acme-contacts",
                &w.admin,
                json!({"interval_secs": bad, "page_size": 7}),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (400, "invalid_request"),
            "{bad}: {}",
            r.text
        );
        assert!(
            r.text.contains("60") && r.text.contains("2678400"),
            "{bad}: {}",
            r.text
        );
        assert_eq!(
            stored_interval(&w, "acme-contacts").await,
            (200, json!(60), false),
            "{bad}: nothing stored, no run queued"
        );
        let r = api.get("/profiles/acme-contacts", &w.admin).await;
        assert_eq!(
            r.json["page_size"], 10,
            "{bad}: the rest of the body is not saved either"
        );
    }
}

#[tokio::test]
async fn a_stored_interval_out_of_range_is_shown_not_defaulted() {
    let w = world().await;
    let api = &w.api;
    // What the old version wrote for interval_secs above i64::MAX.
    sqlx::query("UPDATE profiles SET interval_secs = -1 WHERE id = 'acme-contacts'")
        .execute(w.hub().store().pool())
        .await
        .unwrap();
    let r = api.get("/profiles/acme-contacts", &w.acme_viewer).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["interval_secs"], Value::Null, "{}", r.text);
    let problem = r.json["schedule_error"].as_str().unwrap_or_default();
    assert!(
        problem.contains("-1") && problem.contains("2678400"),
        "the problem is shown: {}",
        r.text
    );
    let r = api.get("/profiles", &w.acme_viewer).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Saving other fields does not silently keep or drop the bad value.
    let r = api
        .put("/profiles/acme-contacts", &w.admin, json!({"page_size": 7}))
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"), "{}", r.text);
    assert!(r.text.contains("-1"), "{}", r.text);
    // Enabling and disabling touch only the flag.
    let r = api
        .post_empty("/profiles/acme-contacts/disable", &w.operator)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let stored: Option<i64> =
        sqlx::query_scalar("SELECT interval_secs FROM profiles WHERE id = 'acme-contacts'")
            .fetch_one(w.hub().store().pool())
            .await
            .unwrap();
    assert_eq!(stored, Some(-1));
    // Setting it again fixes it.
    let r = api
        .put(
            "/profiles/acme-contacts",
            &w.admin,
            json!({"interval_secs": 3600}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["profile"]["interval_secs"], 3600);
    assert_eq!(r.json["profile"]["schedule_error"], Value::Null);
}

#[tokio::test]
async fn connections_crud_never_echoes_credentials() {
    let w = world().await;
    let api = &w.api;
    // A tiny service for the connection test.
    let health =
        common::serve(axum::Router::new().route("/health", axum::routing::get(|| async { "ok" })))
            .await;
    let mut bodies = Vec::new();
    let r = api
        .post(
            "/connections",
            &w.admin,
            json!({"id": "crm", "plugin_id": "http-probe", "company_id": "acme",
                   "config": {"base_url": health}, "allowed_hosts": ["127.0.0.1"], "allow_private_network": true,
                   "credentials": {"default": {"kind": "basic", "username": "sync", "password": SECRET}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        r.json["credentials"],
        json!([{"slot": "default", "kind": "basic"}])
    );
    bodies.push(r.text);
    let r = api.get("/connections/crm", &w.acme_viewer).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["config"]["base_url"], health.as_str());
    bodies.push(r.text);
    bodies.push(api.get("/connections", &w.viewer).await.text);
    // Taken names are 409; a bad credential is 400 without echoing it.
    let r = api
        .post(
            "/connections",
            &w.admin,
            json!({"id": "crm", "plugin_id": "http-probe", "config": {"base_url": "http://127.0.0.1:9"}}),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "conflict"));
    let r = api
        .post(
            "/connections",
            &w.admin,
            json!({"id": "crm2", "plugin_id": "http-probe",
                   "credentials": {"default": {"kind": "basic", "pasword": SECRET}}}),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"), "{}", r.text);
    bodies.push(r.text);
    let r = api
        .post(
            "/connections",
            &w.admin,
            json!({"id": "crm3", "plugin_id": "http-probe", "credentials": SECRET}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    bodies.push(r.text);
    let r = api
        .post(
            "/connections",
            &w.admin,
            json!({"id": "crm4", "plugin_id": "no-such-plugin"}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);

    // Test the connection (operator).
    let r = api
        .post_empty("/connections/crm/test", &w.acme_operator)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json["passed"].is_boolean(), "{}", r.text);
    assert!(r.json["config"].is_array());
    bodies.push(r.text);

    // Update: replace the credential, add a slot, remove nothing else.
    let r = api
        .put(
            "/connections/crm",
            &w.admin,
            json!({"credentials": {"default": {"kind": "bearer", "token": OTHER_SECRET},
                                   "extra": {"kind": "headers", "headers": {"X-Key": OTHER_SECRET}}},
                   "max_concurrent": 2}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json["connection"]["credentials"],
        json!([{"slot": "default", "kind": "bearer"}, {"slot": "extra", "kind": "headers"}])
    );
    assert_eq!(r.json["connection"]["max_concurrent"], 2);
    assert_eq!(r.json["full_resync_scheduled"], false);
    bodies.push(r.text);
    // The new credential is what the plugin gets.
    let (_, _, ctx) = w.hub().connection_context("crm").await.unwrap();
    assert_eq!(
        ctx.http.credentials["default"].credential,
        syncbridge::secrets::Credential::Bearer {
            token: syncbridge::secrets::SecretString::new(OTHER_SECRET)
        }
    );
    assert!(ctx.http.credentials.contains_key("extra"));
    let r = api
        .put(
            "/connections/crm",
            &w.admin,
            json!({"credentials": {"extra": null}, "max_concurrent": null}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json["connection"]["credentials"],
        json!([{"slot": "default", "kind": "bearer"}])
    );
    assert_eq!(r.json["connection"]["max_concurrent"], Value::Null);
    bodies.push(r.text);

    for body in &bodies {
        assert!(
            !body.contains(SECRET) && !body.contains(OTHER_SECRET),
            "a secret was echoed: {body}"
        );
    }

    // A connection a profile uses cannot be removed; an unused one can.
    let r = api.delete("/connections/acme-src", &w.admin).await;
    assert_eq!((r.status, r.code()), (409, "conflict"), "{}", r.text);
    let r = api.delete("/connections/crm", &w.admin).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = api.get("/connections/crm", &w.admin).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
}

fn op(source: &str, action: Action, changes: &[(&str, Option<&str>, Option<&str>)]) -> PlannedOp {
    PlannedOp {
        op_id: format!("op-{source}"),
        source_id: source.into(),
        action,
        target_id: (action != Action::Create).then(|| format!("t-{source}")),
        changes: changes
            .iter()
            .map(|(f, b, a)| FieldChange {
                field: (*f).into(),
                before: b.map(str::to_owned),
                after: a.map(str::to_owned),
            })
            .collect(),
        body: None,
        fields_after: Default::default(),
        origin: Origin::Created,
        match_keys: vec![],
        decided: syncbridge::engine::plan::Decided::by_host("test", ""),
        retry: false,
        prior_provenance: None,
        inactive_after: false,
        target_seen: None,
        back: Vec::new(),
        back_body: None,
        held: Vec::new(),
        resolved: Vec::new(),
    }
}

async fn store_plan(hub: &Hub, id: &str, profile: &str) {
    let ops = vec![
        op(
            "s1",
            Action::Create,
            &[("email", None, Some("ann@example.com"))],
        ),
        op("s2", Action::Update, &[("phone", Some("1"), Some("2"))]),
        op("s3", Action::Noop, &[]),
    ];
    let mut counts = PlanCounts::default();
    for o in &ops {
        counts.add(o.action);
    }
    let plan = Plan {
        pages: vec![PagePlan {
            ops,
            cursor: Some(Some("c1".into())),
            pass: Some("pass-1".into()),
            more_in_pass: false,
            seen: vec!["s1".into(), "s2".into(), "s3".into()],
        }],
        counts,
        held: None,
        ..Plan::default()
    };
    plans::save(hub.store(), id, profile, "run-dry", &plan, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn plans_show_apply_and_discard() {
    let w = world().await;
    let api = &w.api;
    store_plan(w.hub(), "plan-1", "acme-contacts").await;
    store_plan(w.hub(), "plan-2", "acme-contacts").await;
    store_plan(w.hub(), "plan-g", "globex-contacts").await;

    let r = api
        .get("/plans?profile=acme-contacts", &w.acme_viewer)
        .await;
    assert_eq!(r.status, 200);
    let mut listed = ids(&r);
    listed.sort();
    assert_eq!(listed, ["plan-1", "plan-2"]);
    assert_eq!(ids(&api.get("/plans", &w.acme_viewer).await).len(), 2);
    assert_eq!(ids(&api.get("/plans", &w.viewer).await).len(), 3);
    assert_eq!(api.get("/plans/plan-g", &w.acme_viewer).await.status, 404);

    let r = api.get("/plans/plan-1", &w.acme_viewer).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "proposed");
    assert_eq!(r.json["open"], true);
    assert_eq!(r.json["counts"]["create"], 1);
    assert_eq!(r.json["items"].as_array().unwrap().len(), 3);
    assert_eq!(r.json["items"][0]["action"], "create");
    assert_eq!(
        r.json["items"][1]["changes"],
        json!([{"field": "phone", "before": "1", "after": "2"}])
    );
    let r = api
        .get("/plans/plan-1?changes_only=true&limit=1", &w.acme_viewer)
        .await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.json["next_offset"], 1);
    let r = api
        .get(
            "/plans/plan-1?changes_only=true&offset=1&limit=5",
            &w.acme_viewer,
        )
        .await;
    assert_eq!(r.json["items"][0]["source_id"], "s2");
    assert_eq!(r.json["next_offset"], Value::Null);
    let r = api.get("/plans/plan-1?limit=abc", &w.acme_viewer).await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"));

    // The filter preview of a plan: one row per source item with its action.
    let r = api.get("/plans/plan-1/preview", &w.acme_viewer).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rows = r.json["items"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1]["source_id"], "s2");
    assert_eq!(rows[1]["action"], "update");
    assert_eq!(rows[2]["action"], "noop");
    assert_eq!(
        api.get("/plans/plan-g/preview", &w.acme_viewer)
            .await
            .status,
        404
    );

    // Apply queues an apply-plan run.
    assert_eq!(
        api.post_empty("/plans/plan-1/apply", &w.acme_viewer)
            .await
            .status,
        403
    );
    let r = api
        .post_empty("/plans/plan-1/apply", &w.acme_operator)
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json["mode"], "apply-plan");
    assert_eq!(r.json["trigger"], "approval");
    assert_eq!(r.json["plan_id"], "plan-1");
    assert_eq!(r.json["company_id"], "acme");
    let apply_run = r.json["id"].clone();
    // Claimed by that run: neither applied again nor discarded.
    let r = api.get("/plans/plan-1", &w.acme_viewer).await;
    assert_eq!(r.json["status"], "applying", "{}", r.text);
    assert_eq!(r.json["open"], false);
    assert_eq!(r.json["apply_run"], apply_run);
    for action in ["apply", "discard"] {
        let r = api
            .post_empty(&format!("/plans/plan-1/{action}"), &w.acme_operator)
            .await;
        assert_eq!((r.status, r.code()), (409, "plan_not_open"), "{}", r.text);
        assert!(r.text.contains("applying"), "{}", r.text);
    }
    // Another apply of the profile while that run is queued: refused, and
    // the plan keeps the open status it had (proposed, or held).
    store_plan(w.hub(), "plan-h", "acme-contacts").await;
    sqlx::query("UPDATE plans SET status = 'held' WHERE id = 'plan-h'")
        .execute(w.hub().store().pool())
        .await
        .unwrap();
    for (plan, status) in [("plan-2", "proposed"), ("plan-h", "held")] {
        let r = api
            .post_empty(&format!("/plans/{plan}/apply"), &w.acme_operator)
            .await;
        assert_eq!(
            (r.status, r.code()),
            (409, "sync_in_progress"),
            "{}",
            r.text
        );
        let r = api.get(&format!("/plans/{plan}"), &w.acme_viewer).await;
        assert_eq!(r.json["status"], status, "{}", r.text);
        assert_eq!(r.json["apply_run"], Value::Null);
        assert_eq!(r.json["open"], true);
    }
    finish_active(&w, "acme-contacts").await;

    // Discard, then neither apply nor discard again.
    let r = api
        .post_empty("/plans/plan-2/discard", &w.acme_operator)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "discarded");
    assert_eq!(r.json["open"], false);
    for action in ["apply", "discard"] {
        let r = api
            .post_empty(&format!("/plans/plan-2/{action}"), &w.acme_operator)
            .await;
        assert_eq!((r.status, r.code()), (409, "plan_not_open"), "{}", r.text);
    }
    assert_eq!(
        api.post_empty("/plans/plan-g/discard", &w.acme_operator)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn a_plan_with_an_unknown_stored_status_is_not_taken_for_proposed() {
    let w = world().await;
    store_plan(w.hub(), "plan-odd", "acme-contacts").await;
    sqlx::query("UPDATE plans SET status = 'approved-ish' WHERE id = 'plan-odd'")
        .execute(w.hub().store().pool())
        .await
        .unwrap();
    let error = plans::get(w.hub().store(), "plan-odd").await.unwrap_err();
    assert!(error.to_string().contains("approved-ish"), "{error}");
    let r = w.api.get("/plans/plan-odd", &w.acme_viewer).await;
    assert_eq!((r.status, r.code()), (500, "internal"), "{}", r.text);
    for action in ["apply", "discard"] {
        let r = w
            .api
            .post_empty(&format!("/plans/plan-odd/{action}"), &w.acme_operator)
            .await;
        assert_eq!(r.status, 500, "{action}: {}", r.text);
    }
    assert!(w
        .runs()
        .active_for_profile("acme-contacts")
        .await
        .unwrap()
        .is_none());
}

/// Concurrent apply + discard, and apply + apply, of fresh plans over HTTP:
/// exactly one call wins each round, the other is `409 plan_not_open`, and
/// the plan ends as the winner left it.
async fn plan_race_scenario(w: &World, rounds: usize) {
    let api = &w.api;
    let (mut applies_won, mut discards_won) = (0, 0);
    for round in 0..rounds {
        finish_active(w, "acme-contacts").await;
        for pair in [
            ["apply", "discard"],
            ["discard", "apply"],
            ["apply", "apply"],
        ] {
            let plan = format!("race-{round}-{}-{}", pair[0], pair[1]);
            store_plan(w.hub(), &plan, "acme-contacts").await;
            let (first, second) = (
                format!("/plans/{plan}/{}", pair[0]),
                format!("/plans/{plan}/{}", pair[1]),
            );
            let (a, b) = tokio::join!(
                api.post_empty(&first, &w.acme_operator),
                api.post_empty(&second, &w.acme_operator),
            );
            let replies = [(pair[0], &a), (pair[1], &b)];
            let winners: Vec<_> = replies
                .iter()
                .filter(|(_, r)| (200..300).contains(&r.status))
                .collect();
            assert_eq!(
                winners.len(),
                1,
                "{plan}: exactly one call wins: {} / {}",
                a.text,
                b.text
            );
            let (winner, won) = winners[0];
            for (_, r) in replies.iter().filter(|(_, r)| r.status >= 300) {
                assert_eq!(
                    (r.status, r.code()),
                    (409, "plan_not_open"),
                    "{plan}: {}",
                    r.text
                );
            }
            let shown = api.get(&format!("/plans/{plan}"), &w.acme_viewer).await;
            let active = w.runs().active_for_profile("acme-contacts").await.unwrap();
            if *winner == "apply" {
                applies_won += 1;
                assert_eq!(won.status, 202, "{}", won.text);
                assert_eq!(shown.json["status"], "applying", "{plan}: {}", shown.text);
                assert_eq!(shown.json["open"], false);
                let run = active.expect("the apply-plan run is queued");
                assert_eq!(run.plan_id.as_deref(), Some(plan.as_str()));
                assert_eq!(won.json["id"], run.id.as_str());
                finish_active(w, "acme-contacts").await;
            } else {
                discards_won += 1;
                assert_eq!(shown.json["status"], "discarded", "{plan}: {}", shown.text);
                assert!(
                    active.is_none(),
                    "{plan}: no run for a discarded plan: {active:?}"
                );
            }
        }
    }
    assert!(
        applies_won >= rounds,
        "apply + apply rounds are won by an apply"
    );
    assert_eq!(applies_won + discards_won, 3 * rounds);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_apply_and_discard_of_a_plan_have_exactly_one_winner() {
    let w = world().await;
    plan_race_scenario(&w, 10).await;
}

#[tokio::test]
async fn quarantine_list_skip_retry_relink() {
    let w = world().await;
    let api = &w.api;
    for (profile, source) in [
        ("acme-contacts", "u1"),
        ("acme-contacts", "u2"),
        ("globex-contacts", "g1"),
    ] {
        sqlx::query(
            "INSERT INTO quarantine (profile_id, source_id, op_id, error_class, error, attempts, at)
             VALUES ($1, $2, $3, 'invalid', 'e-mail address is not valid', 2, 1000)",
        )
        .bind(profile)
        .bind(source)
        .bind(format!("op-{source}"))
        .execute(w.hub().store().pool())
        .await
        .unwrap();
    }
    let r = api.get("/quarantine", &w.acme_viewer).await;
    assert_eq!(r.status, 200);
    let items = r.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", r.text);
    assert!(items.iter().all(|i| i["profile_id"] == "acme-contacts"));
    assert_eq!(
        api.get("/quarantine", &w.viewer).await.json["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let r = api
        .post_empty("/quarantine/acme-contacts/u1/skip", &w.acme_viewer)
        .await;
    assert_eq!(r.status, 403);
    let r = api
        .post_empty("/quarantine/acme-contacts/u1/skip", &w.acme_operator)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["done"], "skipped");
    let r = api
        .get("/quarantine?profile=acme-contacts", &w.acme_viewer)
        .await;
    let u1 = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["source_id"] == "u1")
        .unwrap()
        .clone();
    assert_eq!(u1["skipped"], true);
    let r = api
        .post_empty("/quarantine/acme-contacts/u1/retry", &w.acme_operator)
        .await;
    assert_eq!(r.status, 200);
    let r = api
        .get("/quarantine?profile=acme-contacts", &w.acme_viewer)
        .await;
    assert!(r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["skipped"] == false));
    let r = api
        .post(
            "/quarantine/acme-contacts/u2/relink",
            &w.acme_operator,
            json!({"target_id": "T-42"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["done"], "relinked");
    let r = api
        .get(
            "/profiles/acme-contacts/explain?record=T-42",
            &w.acme_viewer,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["source_id"], "u2");
    assert_eq!(r.json["origin"], "matched");
    let r = api
        .post(
            "/quarantine/acme-contacts/u2/relink",
            &w.acme_operator,
            json!({"target": "T-42"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
    // Unknown items and other companies' items are 404.
    let r = api
        .post_empty("/quarantine/acme-contacts/nope/skip", &w.acme_operator)
        .await;
    assert_eq!(r.status, 404);
    let r = api
        .post_empty("/quarantine/globex-contacts/g1/skip", &w.acme_operator)
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn held_conflicts_are_listed_in_scope_and_resolved_by_operators() {
    let w = world().await;
    let api = &w.api;
    for (profile, source) in [("acme-contacts", "u1"), ("globex-contacts", "g1")] {
        sqlx::query(
            "INSERT INTO conflicts (profile_id, source_id, field, target_id, base_value, source_value, target_value, reason, at)
             VALUES ($1, $2, 'start', 'T-1', '09:00', '11:00', '10:00', 'held for review by the field''s rule', 1000)",
        )
        .bind(profile)
        .bind(source)
        .execute(w.hub().store().pool())
        .await
        .unwrap();
    }
    let r = api.get("/conflicts", &w.acme_viewer).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let items = r.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only the company's own: {}", r.text);
    assert_eq!(
        (&items[0]["base"], &items[0]["source"], &items[0]["target"]),
        (&json!("09:00"), &json!("11:00"), &json!("10:00"))
    );
    assert_eq!(items[0]["resolution"], Value::Null);
    let path = "/conflicts/acme-contacts/u1/start/resolve";
    let r = api
        .post(path, &w.acme_viewer, json!({"winner": "target"}))
        .await;
    assert_eq!(r.status, 403, "viewers do not resolve");
    let r = api
        .post(path, &w.acme_operator, json!({"winner": "sideways"}))
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"), "{}", r.text);
    let r = api
        .post(path, &w.acme_operator, json!({"winner": "target"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["winner"], "target");
    let r = api
        .get("/conflicts?profile=acme-contacts", &w.acme_viewer)
        .await;
    assert_eq!(r.json["items"][0]["resolution"], "target");
    // The item is re-evaluated on the next run, like a quarantined one.
    let r = api
        .get("/quarantine?profile=acme-contacts", &w.acme_viewer)
        .await;
    assert_eq!(r.json["items"][0]["source_id"], "u1", "{}", r.text);
    // Unknown conflicts and other companies' are 404.
    let r = api
        .post(
            "/conflicts/acme-contacts/u1/end/resolve",
            &w.acme_operator,
            json!({"winner": "source"}),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = api
        .post(
            "/conflicts/globex-contacts/g1/start/resolve",
            &w.acme_operator,
            json!({"winner": "source"}),
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn malformed_bodies_and_unknown_routes_answer_the_error_shape() {
    let w = world().await;
    let api = &w.api;
    let check = |r: &Reply, status: u16, code: &str| {
        assert_eq!(r.status, status, "{}", r.text);
        assert_eq!(r.code(), code, "{}", r.text);
        assert!(
            r.json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}",
            r.text
        );
    };
    let r = api
        .send(
            reqwest::Method::POST,
            "/companies",
            Some(&w.admin),
            Some("{not json".into()),
            "application/json",
        )
        .await;
    check(&r, 400, "invalid_request");
    let r = api
        .post("/companies", &w.admin, json!({"id": 5, "name": "x"}))
        .await;
    check(&r, 400, "invalid_request");
    assert!(
        r.json["error"]["message"].as_str().unwrap().contains("id"),
        "{}",
        r.text
    );
    let r = api
        .post(
            "/companies",
            &w.admin,
            json!({"id": "x", "name": "X", "bogus": 1}),
        )
        .await;
    check(&r, 400, "invalid_request");
    let r = api
        .send(
            reqwest::Method::POST,
            "/companies",
            Some(&w.admin),
            Some("{}".into()),
            "text/plain",
        )
        .await;
    check(&r, 415, "invalid_request");
    let r = api
        .put(
            "/connections/acme-src",
            &w.admin,
            json!({"allowed_hosts": SECRET}),
        )
        .await;
    check(&r, 400, "invalid_request");
    assert!(!r.text.contains(SECRET), "{}", r.text);
    let r = api.get("/no/such/thing", &w.admin).await;
    check(&r, 404, "not_found");
    let r = api
        .send(
            reqwest::Method::PATCH,
            "/profiles",
            Some(&w.admin),
            None,
            "",
        )
        .await;
    check(&r, 405, "invalid_request");
    let r = api.get("/runs?limit=-1", &w.admin).await;
    check(&r, 400, "invalid_request");
    let r = api
        .post(
            "/companies",
            &w.admin,
            json!({"id": "initech", "name": "Initech", "notify_to": "ops@initech.example; nope"}),
        )
        .await;
    check(&r, 400, "invalid_request");

    // Companies CRUD while here.
    let r = api
        .post(
            "/companies",
            &w.admin,
            json!({"id": "initech", "name": "Initech", "notify_to": "ops@initech.example"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = api
        .put(
            "/companies/initech",
            &w.admin,
            json!({"name": "Initech Inc"}),
        )
        .await;
    assert_eq!(r.json["name"], "Initech Inc");
    assert_eq!(r.json["notify_to"], "ops@initech.example");
    let r = api
        .put(
            "/companies/acme",
            &w.acme_admin,
            json!({"notify_to": "it@acme.example"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = api.delete("/companies/acme", &w.admin).await;
    check(&r, 409, "conflict");
    let r = api.delete("/companies/initech", &w.admin).await;
    assert_eq!(r.status, 204);
    let r = api.get("/companies/initech", &w.admin).await;
    check(&r, 404, "not_found");
}

#[tokio::test]
async fn a_company_time_zone_is_an_iana_name_that_round_trips() {
    let w = world().await;
    let api = &w.api;
    let refused = |r: &Reply, zone: &str| {
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.code(), "invalid_request", "{}", r.text);
        let message = r.json["error"]["message"].as_str().unwrap();
        for part in ["time_zone", zone, "Europe/Berlin"] {
            assert!(message.contains(part), "{part:?} in {message}");
        }
    };
    let r = api
        .post(
            "/companies",
            &w.admin,
            json!({"id": "nope", "name": "Nope", "time_zone": "Nope/Zone"}),
        )
        .await;
    refused(&r, "Nope/Zone");
    assert_eq!(api.get("/companies/nope", &w.admin).await.status, 404);

    let r = api
        .post(
            "/companies",
            &w.admin,
            json!({"id": "berlin", "name": "Berlin GmbH", "time_zone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["time_zone"], "Europe/Berlin");
    let r = api.get("/companies/berlin", &w.admin).await;
    assert_eq!(r.json["time_zone"], "Europe/Berlin", "{}", r.text);
    // A name only keeps the zone.
    let r = api
        .put("/companies/berlin", &w.admin, json!({"name": "Berlin AG"}))
        .await;
    assert_eq!(r.json["time_zone"], "Europe/Berlin", "{}", r.text);

    // Companies saved without one are UTC; the zone is stored as the time
    // zone database spells it.
    let r = api.get("/companies/acme", &w.admin).await;
    assert_eq!(r.json["time_zone"], "UTC", "{}", r.text);
    let r = api
        .put(
            "/companies/acme",
            &w.acme_admin,
            json!({"time_zone": "america/new_york"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["time_zone"], "America/New_York");
    for zone in ["Mars/Olympus_Mons", "", "+02:00"] {
        let r = api
            .put("/companies/acme", &w.admin, json!({"time_zone": zone}))
            .await;
        refused(&r, zone);
    }
    let listed = api.get("/companies", &w.admin).await;
    let acme = listed.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "acme")
        .unwrap()
        .clone();
    assert_eq!(acme["time_zone"], "America/New_York", "unchanged");
}

#[tokio::test]
async fn openapi_document_lists_every_path_and_the_bearer_scheme() {
    let w = world().await;
    let r = w
        .api
        .send(reqwest::Method::GET, "/openapi.json", None, None, "")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let doc = &r.json;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/api/v1/openapi.json", "get"),
        ("/api/v1/plugins", "get"),
        ("/api/v1/plugins", "post"),
        ("/api/v1/plugins/{id}", "delete"),
        ("/api/v1/companies", "post"),
        ("/api/v1/companies/{id}", "put"),
        ("/api/v1/connections", "post"),
        ("/api/v1/connections/{id}", "put"),
        ("/api/v1/connections/{id}/test", "post"),
        ("/api/v1/profiles", "post"),
        ("/api/v1/profiles/{id}", "delete"),
        ("/api/v1/profiles/{id}/run", "post"),
        ("/api/v1/profiles/{id}/dry-run", "post"),
        ("/api/v1/profiles/{id}/preview", "post"),
        ("/api/v1/profiles/{id}/enable", "post"),
        ("/api/v1/profiles/{id}/disable", "post"),
        ("/api/v1/profiles/{id}/explain", "get"),
        ("/api/v1/plans", "get"),
        ("/api/v1/plans/{id}", "get"),
        ("/api/v1/plans/{id}/preview", "get"),
        ("/api/v1/plans/{id}/apply", "post"),
        ("/api/v1/plans/{id}/discard", "post"),
        ("/api/v1/runs", "get"),
        ("/api/v1/runs/{id}", "get"),
        ("/api/v1/quarantine", "get"),
        ("/api/v1/quarantine/{profile}/{source_id}/retry", "post"),
        ("/api/v1/quarantine/{profile}/{source_id}/skip", "post"),
        ("/api/v1/quarantine/{profile}/{source_id}/relink", "post"),
        ("/api/v1/conflicts", "get"),
        (
            "/api/v1/conflicts/{profile}/{source_id}/{field}/resolve",
            "post",
        ),
        ("/api/v1/alerts", "get"),
        ("/api/v1/alerts/{id}/resolve", "post"),
        ("/api/v1/connections/{id}/discover-mailboxes", "post"),
        ("/api/v1/mailboxes", "get"),
        ("/api/v1/mailboxes/settings", "post"),
        ("/api/v1/mailboxes/{id}/enable", "post"),
        ("/api/v1/mailboxes/{id}/disable", "post"),
        ("/api/v1/mailboxes/{id}/approve", "post"),
        ("/api/v1/mailboxes/{id}/settings", "put"),
        ("/api/v1/exchange-profiles", "get"),
        ("/api/v1/exchange-profiles", "post"),
        ("/api/v1/exchange-profiles/{id}", "get"),
        ("/api/v1/exchange-profiles/{id}", "put"),
        ("/api/v1/exchange-profiles/{id}", "delete"),
        ("/api/v1/exchange-profiles/{id}/resources", "get"),
        ("/api/v1/exchange-profiles/{id}/resources/discover", "post"),
        ("/api/v1/exchange-profiles/{id}/resources/enable", "post"),
        ("/api/v1/exchange-profiles/{id}/resources/disable", "post"),
        (
            "/api/v1/exchange-profiles/{id}/resources/{resource}/settings",
            "put",
        ),
        (
            "/api/v1/exchange-profiles/{id}/resources/{resource}/credential",
            "put",
        ),
        ("/api/v1/exchange-profiles/{id}/diagnose", "post"),
        ("/api/v1/email-server-profiles", "get"),
        ("/api/v1/email-server-profiles", "post"),
        ("/api/v1/email-server-profiles/{id}", "get"),
        ("/api/v1/email-server-profiles/{id}", "put"),
        ("/api/v1/email-server-profiles/{id}", "delete"),
        (
            "/api/v1/email-server-profiles/{id}/mailbox-credentials",
            "put",
        ),
        ("/api/v1/email-server-profiles/{id}/test", "post"),
        ("/api/v1/dynamics/{org}/email-settings", "get"),
        ("/api/v1/dynamics/{org}/email-settings", "put"),
        ("/api/v1/dynamics/{org}/mailboxes/refresh", "post"),
        ("/api/v1/dynamics/{org}/mailboxes", "get"),
        ("/api/v1/dynamics/mailboxes/{id}", "get"),
        ("/api/v1/dynamics/mailboxes/apply-defaults", "post"),
        ("/api/v1/dynamics/mailboxes/edit", "post"),
        ("/api/v1/dynamics/mailboxes/approve", "post"),
        ("/api/v1/dynamics/mailboxes/test-and-enable", "post"),
        ("/api/v1/dynamics/mailboxes/{id}/diagnose", "post"),
        ("/api/v1/dynamics/mailboxes/{id}/processing", "get"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).is_some_and(|p| p.get(method).is_some()),
            "{method} {path} is missing from the document"
        );
    }
    assert_eq!(paths.len(), 61, "{:?}", paths.keys().collect::<Vec<_>>());
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(doc["security"], json!([{"bearer": []}]));
    // The document itself needs no token.
    assert_eq!(
        paths["/api/v1/openapi.json"]["get"]["security"],
        json!([{}])
    );
    // Operation ids are unique.
    let mut op_ids: Vec<&str> = paths
        .values()
        .flat_map(|p| p.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    let n = op_ids.len();
    op_ids.sort();
    op_ids.dedup();
    assert_eq!(op_ids.len(), n);
    // The allowed range of a schedule interval is documented.
    for schema in ["ProfileCreate", "ProfileUpdate", "ProfileOut"] {
        let interval = &doc["components"]["schemas"][schema]["properties"]["interval_secs"];
        assert_eq!(
            (&interval["minimum"], &interval["maximum"]),
            (&json!(60), &json!(2_678_400)),
            "{schema}: {interval}"
        );
    }
    // Schemas of the request and response bodies are there.
    for schema in [
        "ConnectionCreate",
        "ConnectionOut",
        "ProfileOut",
        "RunOut",
        "ErrorBody",
    ] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "schema {schema} is missing"
        );
    }
}

#[tokio::test]
async fn plugins_are_installed_by_upload_and_removed_by_an_unscoped_admin() {
    let w = world().await;
    let api = &w.api;
    // Pack the built http-probe package as a .tar.gz (its plugin.toml pins the digest).
    let dir = common::package("http-probe");
    let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            archive
                .append_path_with_name(&path, path.file_name().unwrap())
                .unwrap();
        }
    }
    let bytes = archive.into_inner().unwrap().finish().unwrap();
    let upload = |token: String, query: &'static str| {
        let bytes = bytes.clone();
        async move {
            api.send(
                reqwest::Method::POST,
                &format!("/plugins{query}"),
                Some(&token),
                Some(bytes.into()),
                "application/gzip",
            )
            .await
        }
    };
    let r = upload(w.acme_admin.clone(), "").await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = upload(w.operator.clone(), "").await;
    assert_eq!(r.status, 403);
    let r = upload(w.admin.clone(), "?sha256=0000").await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"), "{}", r.text);
    assert!(!r.text.contains("syncbridge-upload"), "{}", r.text);
    let r = upload(w.admin.clone(), "").await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["id"], "http-probe");
    assert_eq!(r.json["kind"], "connector");
    assert!(r.json["manifest"]["config_schema"].is_object() || r.json["manifest"].is_object());
    let r = api
        .send(
            reqwest::Method::POST,
            "/plugins",
            Some(&w.admin),
            Some(b"not a package".to_vec().into()),
            "application/gzip",
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);

    let r = api.get("/plugins", &w.acme_viewer).await;
    let mut listed = ids(&r);
    listed.sort();
    assert_eq!(listed, ["echo-mapper", "http-probe"]);
    // In use by connections: 409; unused: 204.
    let r = api.delete("/plugins/http-probe", &w.admin).await;
    assert_eq!((r.status, r.code()), (409, "conflict"), "{}", r.text);
    let r = api.delete("/plugins/echo-mapper", &w.admin).await;
    assert_eq!((r.status, r.code()), (409, "conflict"), "{}", r.text);
    for p in ["acme-contacts", "globex-contacts"] {
        assert_eq!(
            api.delete(&format!("/profiles/{p}"), &w.admin).await.status,
            204
        );
    }
    let r = api.delete("/plugins/echo-mapper", &w.admin).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = api.delete("/plugins/echo-mapper", &w.admin).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn runs_show_their_journal_items_with_pagination() {
    let w = world().await;
    let run = w
        .runs()
        .enqueue(NewRun {
            profile_id: "acme-contacts",
            company_id: Some("acme"),
            trigger: "manual",
            mode: RunMode::Run,
            plan_id: None,
        })
        .await
        .unwrap();
    for (i, phase) in ["planned", "applied", "failed"].iter().enumerate() {
        sqlx::query(
            "INSERT INTO journal (run_id, profile_id, op_id, phase, action, source_id, target_id, changes, detail, at)
             VALUES ($1, 'acme-contacts', $2, $3, 'update', $4, 'T1', $5, $6, $7)",
        )
        .bind(&run.id)
        .bind(format!("op{i}"))
        .bind(*phase)
        .bind(format!("s{i}"))
        .bind(json!([{"field": "phone", "before": "1", "after": "2"}]).to_string())
        .bind((*phase == "failed").then_some("target said 400"))
        .bind(1000 + i as i64)
        .execute(w.hub().store().pool())
        .await
        .unwrap();
    }
    let r = w
        .api
        .get(&format!("/runs/{}?limit=2", run.id), &w.acme_viewer)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "queued");
    let items = r.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["phase"], "planned");
    assert_eq!(items[1]["changes"][0]["field"], "phone");
    assert_eq!(r.json["next_offset"], 2);
    let r = w
        .api
        .get(&format!("/runs/{}?offset=2", run.id), &w.acme_viewer)
        .await;
    assert_eq!(r.json["items"][0]["detail"], "target said 400");
    assert_eq!(r.json["next_offset"], Value::Null);
    assert_eq!(
        w.api
            .get(&format!("/runs/{}", run.id), &w.globex_viewer)
            .await
            .status,
        404
    );
}

// ---- PostgreSQL -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_checks_pass_on_postgres() {
    let Some(url) = common::postgres_url("api").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let w = world_on(common::hub_with(dir, &url).await).await;
    auth_scenario(&w).await;
    scoping_scenario(&w).await;
    conflict_and_resync_scenario(&w).await;
    profile_runs_scenario(&w).await;
    store_plan(w.hub(), "plan-pg", "acme-contacts").await;
    let r = w.api.get("/plans/plan-pg", &w.acme_viewer).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["items"].as_array().unwrap().len(), 3);
    let r = w
        .api
        .post_empty("/plans/plan-pg/discard", &w.acme_operator)
        .await;
    assert_eq!(r.json["status"], "discarded");
    plan_race_scenario(&w, 10).await;
    company_tokens_scenario(&w).await;
    namespace_scenario(&w).await;
    credentials_scenario(&w).await;
    fuzzer_findings_scenario(&w).await;
}

// ---- issue 9: credentials, tokens and namespaces --------------------------

async fn credentials_scenario(w: &World) {
    let api = &w.api;
    let (evil, seen) = common::recording_service().await;
    let evil_config = json!({"base_url": evil, "health_path": "/health"});
    let before = api.get("/connections/acme-src", &w.admin).await.json;

    // Re-pointing the URL, the allowed hosts or the private-network flag
    // without entering the credentials again is refused, and changes nothing.
    for change in [
        json!({"config": evil_config}),
        json!({"allowed_hosts": ["127.0.0.1", "localhost", "*"]}),
        json!({"allow_private_network": false}),
        json!({"config": evil_config, "credentials": {"other": {"kind": "bearer", "token": OTHER_SECRET}}}),
    ] {
        for token in [&w.admin, &w.acme_admin] {
            let r = api
                .put("/connections/acme-src", token, change.clone())
                .await;
            assert_eq!(r.status, 422, "{change}: {}", r.text);
            assert_eq!(r.code(), "credentials_required", "{}", r.text);
            assert!(
                r.json["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("\"default\""),
                "{}",
                r.text
            );
        }
    }
    let r = api.get("/connections/acme-src", &w.admin).await;
    assert_eq!(r.json["config"], before["config"], "{}", r.text);
    assert_eq!(r.json["allowed_hosts"], before["allowed_hosts"]);
    assert_eq!(r.json["allow_private_network"], true);
    // Settings that do not say where requests go need no credentials.
    let r = api
        .put(
            "/connections/acme-src",
            &w.acme_admin,
            json!({"max_concurrent": 2}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // A row re-pointed behind syncbridge's back: the credential is not opened,
    // nothing reaches the new host, the error says to enter it again.
    sqlx::query("UPDATE connections SET config = $1 WHERE id = 'acme-src'")
        .bind(evil_config.to_string())
        .execute(w.hub().store().pool())
        .await
        .unwrap();
    let r = api.post_empty("/connections/acme-src/test", &w.admin).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.code(), "credentials_required", "{}", r.text);
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
    assert!(!r.text.contains(SECRET));

    // Entered again with the change: the new credential goes to the new host
    // (the recording works), the old one never went anywhere.
    let r = api
        .put(
            "/connections/acme-src",
            &w.acme_admin,
            json!({"config": evil_config, "credentials": {"default": {"kind": "bearer", "token": OTHER_SECRET}}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = api
        .post_empty("/connections/acme-src/test", &w.acme_admin)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let seen_now = seen.lock().unwrap().clone();
    assert_eq!(seen_now, [format!("Bearer {OTHER_SECRET}")]);

    // A connection that another company's profile uses is the MSP's: a
    // scoped admin can neither change nor remove it; an unscoped one can.
    profile(
        w.hub(),
        "globex-borrows",
        "globex-src",
        "acme-dst",
        Some("globex"),
    )
    .await;
    for r in [
        api.put("/connections/acme-dst", &w.acme_admin, json!({"max_concurrent": 1}))
            .await,
        api.put(
            "/connections/acme-dst",
            &w.acme_admin,
            json!({"config": evil_config, "credentials": {"default": {"kind": "bearer", "token": OTHER_SECRET}}}),
        )
        .await,
        api.delete("/connections/acme-dst", &w.acme_admin).await,
    ] {
        assert_eq!(r.status, 403, "{}", r.text);
        assert!(r.text.contains("MSP"), "{}", r.text);
    }
    let r = api
        .put(
            "/connections/acme-dst",
            &w.admin,
            json!({"max_concurrent": 1}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    profiles::remove(w.hub().store(), "globex-borrows")
        .await
        .unwrap();
}

#[tokio::test]
async fn credentials_never_follow_a_repointed_connection() {
    let w = world().await;
    credentials_scenario(&w).await;
}

async fn company_tokens_scenario(w: &World) {
    let api = &w.api;
    let hub = w.hub();
    companies::save(
        hub.store(),
        &Company {
            id: "initech".into(),
            name: "Initech".into(),
            notify_to: String::new(),
            time_zone: "UTC".into(),
        },
    )
    .await
    .unwrap();
    let scoped = token(hub, Role::Admin, Some("initech")).await;
    assert_eq!(api.get("/companies/initech", &scoped).await.status, 200);
    let r = api.delete("/companies/initech", &w.admin).await;
    assert_eq!(r.status, 204, "{}", r.text);
    // Revoked with the company, in the same transaction.
    let listed = tokens::list(hub.store()).await.unwrap();
    assert!(listed
        .iter()
        .filter(|t| t.company_id.as_deref() == Some("initech"))
        .all(|t| t.revoked));
    assert_eq!(api.get("/companies", &scoped).await.status, 401);
    // A new company with the same id inherits nothing, even a token whose
    // revocation was lost (written outside syncbridge, or before this fix).
    sqlx::query("UPDATE api_tokens SET revoked_at = NULL WHERE company_id = 'initech'")
        .execute(hub.store().pool())
        .await
        .unwrap();
    let r = api
        .post(
            "/companies",
            &w.admin,
            json!({"id": "initech", "name": "Initech again"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(api.get("/companies/initech", &scoped).await.status, 401);
    // A token made for the new company works.
    let fresh = token(hub, Role::Viewer, Some("initech")).await;
    assert_eq!(api.get("/companies/initech", &fresh).await.status, 200);
}

#[tokio::test]
async fn deleting_a_company_revokes_its_tokens_and_a_recreated_id_inherits_none() {
    let w = world().await;
    company_tokens_scenario(&w).await;
}

async fn namespace_scenario(w: &World) {
    let api = &w.api;
    // globex's objects: a taken id answers a scoped caller of another company
    // exactly as a free one does, because it cannot name ids outside its namespace.
    for (path, taken, free) in [
        ("/connections", "globex-src", "no-such-connection"),
        ("/profiles", "globex-contacts", "no-such-profile"),
    ] {
        let body = |id: &str| {
            if path == "/connections" {
                json!({"id": id, "plugin_id": "http-probe", "config": {"base_url": "http://127.0.0.1:9"}})
            } else {
                json!({"id": id, "source_connection": "acme-src", "source_scope": "contacts",
                       "mapper_plugin": "echo-mapper", "target_connection": "acme-dst", "target_scope": "contacts"})
            }
        };
        let a = api.post(path, &w.acme_admin, body(taken)).await;
        let b = api.post(path, &w.acme_admin, body(free)).await;
        assert_eq!(a.status, 400, "{}", a.text);
        assert_eq!(a.status, b.status);
        assert_eq!(
            a.text.replace(taken, "ID"),
            b.text.replace(free, "ID"),
            "the answers differ only by the id"
        );
        assert!(a.text.contains("acme."), "{}", a.text);
    }
    // An unscoped admin cannot put an object into another company's namespace.
    let r = api
        .post(
            "/connections",
            &w.admin,
            json!({"id": "acme.sneaky", "plugin_id": "http-probe", "company_id": "globex"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    // In its namespace, a scoped admin creates as usual.
    let r = api
        .post(
            "/connections",
            &w.acme_admin,
            json!({"id": "acme.m365", "plugin_id": "http-probe", "config": {"base_url": "http://127.0.0.1:9"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["company_id"], "acme");
    let r = api
        .post(
            "/connections",
            &w.acme_admin,
            json!({"id": "acme.m365", "plugin_id": "http-probe", "config": {"base_url": "http://127.0.0.1:9"}}),
        )
        .await;
    assert_eq!(r.status, 409, "its own names collide: {}", r.text);
    // A namespaced connection cannot move to another company.
    let r = api
        .put(
            "/connections/acme.m365",
            &w.admin,
            json!({"company_id": "globex"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = api.delete("/connections/acme.m365", &w.acme_admin).await;
    assert_eq!(r.status, 204, "{}", r.text);
}

#[tokio::test]
async fn a_scoped_token_learns_nothing_about_other_companies_ids() {
    let w = world().await;
    namespace_scenario(&w).await;
}

/// Credentials sealed before bindings existed are bound to their connection
/// as it is on first use, and from then on refused elsewhere.
#[tokio::test]
async fn a_credential_sealed_before_bindings_is_bound_on_first_use() {
    use syncbridge::runtime::{EngineOptions, Runtime};
    use syncbridge::secrets::MasterKey;
    use syncbridge::store::{ConnectionRecord, CredentialRecord, Store};

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    let key = MasterKey::generate();
    let runtime = Runtime::new(EngineOptions {
        cache_dir: Some(dir.path().join("cache")),
        ..EngineOptions::default()
    })
    .unwrap();
    let hub = Hub::new(
        store.clone(),
        Arc::new(runtime),
        key.clone(),
        dir.path().join("plugins"),
    );
    common::install(&hub, "http-probe").await;
    let record = ConnectionRecord {
        id: "old".into(),
        plugin_id: "http-probe".into(),
        config: json!({"base_url": "http://127.0.0.1:9"}).to_string(),
        allowed_hosts: vec!["127.0.0.1".into()],
        allow_private_network: true,
        max_concurrent: None,
    };
    let legacy = CredentialRecord {
        slot: "default".into(),
        kind: "bearer".into(),
        sealed: key.seal(
            json!({"kind": "bearer", "token": SECRET})
                .to_string()
                .as_bytes(),
            "credential/old/default",
        ),
        binding: None,
    };
    store.insert_connection(&record, &[legacy]).await.unwrap();

    let (_, _, ctx) = hub.connection_context("old").await.unwrap();
    let bound = &ctx.http.credentials["default"];
    assert_eq!(bound.binding.allowed_hosts, ["127.0.0.1"]);
    let stored = store.credentials("old").await.unwrap();
    assert!(stored[0].binding.is_some(), "re-sealed with its binding");
    // Opened again through the binding, not the legacy context.
    hub.connection_context("old").await.unwrap();
    // Re-pointed behind syncbridge's back: refused.
    sqlx::query("UPDATE connections SET config = $1 WHERE id = 'old'")
        .bind(json!({"base_url": "http://127.0.0.1:8"}).to_string())
        .execute(store.pool())
        .await
        .unwrap();
    let err = hub.connection_context("old").await.err().unwrap();
    assert!(
        matches!(err, syncbridge::hub::HubError::CredentialUnbound { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("config base_url"), "{err}");
}

/// What the API fuzzer found, kept fixed: concurrent creates never answer
/// 500 (SQLite write transactions take the lock at once), a body must be a
/// JSON object, page sizes and offsets stay in their documented range, and
/// `mapper_options` is an object.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fuzzer_findings_stay_fixed() {
    let w = world().await;
    fuzzer_findings_scenario(&w).await;
}

async fn fuzzer_findings_scenario(w: &World) {
    let api = Arc::new(Api {
        base: w.api.base.clone(),
        http: reqwest::Client::new(),
    });
    let mut tasks = Vec::new();
    for i in 0..24 {
        let api = api.clone();
        let admin = w.admin.clone();
        tasks.push(tokio::spawn(async move {
            api.post(
                "/connections",
                &admin,
                json!({"id": format!("burst-{}", i % 12), "plugin_id": "http-probe", "config": {"base_url": "http://127.0.0.1:9"}}),
            )
            .await
        }));
    }
    let mut created = 0;
    for t in tasks {
        let r = t.await.unwrap();
        assert!(matches!(r.status, 201 | 409), "{}: {}", r.status, r.text);
        created += usize::from(r.status == 201);
    }
    assert_eq!(created, 12, "each id is created exactly once");

    let r = w
        .api
        .put("/companies/acme", &w.admin, json!([null, null]))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("JSON object"), "{}", r.text);

    for path in [
        "/runs?limit=0",
        "/runs?limit=1001",
        "/runs?limit=2147483648",
    ] {
        let r = w.api.get(path, &w.admin).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
    }
    assert_eq!(w.api.get("/runs?limit=1000", &w.admin).await.status, 200);

    let r = w
        .api
        .put(
            "/profiles/acme-contacts",
            &w.admin,
            json!({"mapper_options": 0}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("mapper_options"), "{}", r.text);

    // Integers stay in their documented ranges.
    for bad in [0u64, 65, 2147483648] {
        let r = w
            .api
            .put(
                "/connections/acme-dst",
                &w.admin,
                json!({"max_concurrent": bad}),
            )
            .await;
        assert_eq!(r.status, 400, "max_concurrent {bad}: {}", r.text);
    }
    for bad in [0u64, 10001, 2147483648] {
        let r = w
            .api
            .put(
                "/profiles/acme-contacts",
                &w.admin,
                json!({"page_size": bad}),
            )
            .await;
        assert_eq!(r.status, 400, "page_size {bad}: {}", r.text);
    }
}

/// Every API call answers with a request id: the caller's when it is a plain
/// token, a new one otherwise (errors and unknown routes too).
#[tokio::test]
async fn every_api_call_carries_a_request_id() {
    let w = world().await;
    let id = |r: &Reply| {
        r.headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let a = w.api.get("/companies", &w.admin).await;
    let b = w.api.get("/no-such-route", &w.admin).await;
    assert!(id(&a).starts_with("req-"), "{:?}", a.headers);
    assert!(id(&b).starts_with("req-") && id(&a) != id(&b));
    let unauthorized = w
        .api
        .send(reqwest::Method::GET, "/companies", None, None, "")
        .await;
    assert_eq!(unauthorized.status, 401);
    assert!(id(&unauthorized).starts_with("req-"));
    for (sent, kept) in [("trace-42.a_b", true), ("evil\tvalue", false)] {
        let r = w
            .api
            .http
            .get(format!("{}/api/v1/companies", w.api.base))
            .header("Authorization", format!("Bearer {}", w.admin))
            .header("x-request-id", sent)
            .send()
            .await
            .unwrap();
        let got = r.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(got == sent, kept, "{sent:?} -> {got:?}");
    }
}
