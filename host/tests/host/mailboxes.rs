//! Mailboxes as a resource: discovery through the `graph` connector's
//! `mailboxes` scope against the Graph simulator, approval before enabling,
//! per-mailbox settings, disabling after an authentication error, and the
//! REST API over real HTTP on loopback with roles and company scoping. The
//! store checks also run on PostgreSQL.

use crate::common;

use serde_json::{json, Value};
use std::sync::Arc;
use syncbridge::control::companies::{self, Company};
use syncbridge::control::mailboxes::{self, mailbox_id, Discovered, SettingsMode};
use syncbridge::control::tokens::{self, Role};
use syncbridge::engine::retry::RetryPolicy;
use syncbridge::engine::Source;
use syncbridge::hub::Hub;
use syncbridge::model::ItemBody;
use syncbridge::plugin_endpoints::ConnectionEndpoint;
use syncbridge::store::StoreError;
use syncbridge_sim::{Seed, Services, SimConfig, Simulator};

const TENANT: &str = "contoso.onmicrosoft.com";
const TENANT_ID: &str = "11111111-1111-4111-8111-111111111111";
const CLIENT: &str = "22222222-2222-4222-8222-222222222222";

/// Users 1–5 have a mail address (user1's in mixed case), user6 has none
/// (null) and user7 an empty one.
async fn simulator() -> Simulator {
    let mut users: Vec<Value> = (1..=5)
        .map(|n| {
            let mail = if n == 1 {
                format!("User1@{TENANT}")
            } else {
                format!("user{n}@{TENANT}")
            };
            json!({
                "id": format!("u{n}"),
                "userPrincipalName": format!("user{n}@{TENANT}"),
                "displayName": format!("User {n}"),
                "mail": mail,
                "accountEnabled": true,
                "assignedLicenses": [],
            })
        })
        .collect();
    users.push(json!({"id": "u6", "userPrincipalName": format!("room6@{TENANT}"),
                      "mail": null, "displayName": "No Mail", "accountEnabled": true, "assignedLicenses": []}));
    users.push(
        json!({"id": "u7", "userPrincipalName": format!("svc7@{TENANT}"), "mail": "",
                      "displayName": "Empty Mail", "accountEnabled": true, "assignedLicenses": []}),
    );
    let doc = json!({
        "graph": {"tenants": [{
            "id": TENANT_ID, "domain": TENANT,
            "apps": [{"client_id": CLIENT, "client_secret": "s3cret"}],
            "users": users
        }]}
    });
    Simulator::start(SimConfig {
        services: Services {
            graph: true,
            ..Services::NONE
        },
        seed: Some(Seed::from_json(&doc.to_string()).unwrap()),
        ..SimConfig::all()
    })
    .await
    .unwrap()
}

/// A graph connection `name` to the simulator, owned by `company`.
async fn graph_connection(hub: &Hub, sim: &Simulator, name: &str, company: Option<&str>) {
    let cred = json!({"kind": "oauth2-client-credentials", "token_url": sim.token_url(TENANT), "client_id": CLIENT,
                      "client_secret": "s3cret", "scope": "https://graph.microsoft.com/.default"});
    common::loopback_connection(
        hub,
        name,
        "graph",
        &json!({"graph_url": sim.graph_url(), "tenant": TENANT}).to_string(),
        &[("default", &cred.to_string())],
    )
    .await;
    companies::assign_connection(hub.store(), name, company)
        .await
        .unwrap();
}

async fn company(hub: &Hub, id: &str) {
    companies::save(
        hub.store(),
        &Company {
            id: id.into(),
            name: id.into(),
            notify_to: String::new(),
            time_zone: "UTC".into(),
        },
    )
    .await
    .unwrap();
}

fn addresses(list: &[mailboxes::Mailbox]) -> Vec<String> {
    list.iter().map(|m| m.address.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_finds_users_with_mail_and_keeps_flags() {
    let sim = simulator().await;
    let t = common::hub().await;
    common::install(&t.hub, "graph").await;
    graph_connection(&t.hub, &sim, "m365", None).await;
    let store = t.hub.store();

    let first = mailboxes::discover(&t.hub, "m365").await.unwrap();
    assert_eq!(first, Discovered { new: 5, known: 0 });
    let list = mailboxes::list(store, Some("m365"), None).await.unwrap();
    let mut got = addresses(&list);
    got.sort_by_key(|a| a.to_lowercase());
    assert_eq!(
        got,
        [
            format!("User1@{TENANT}"),
            format!("user2@{TENANT}"),
            format!("user3@{TENANT}"),
            format!("user4@{TENANT}"),
            format!("user5@{TENANT}"),
        ]
    );
    for m in &list {
        assert!(!m.enabled && !m.approved, "{m:?}");
        assert_eq!(m.status, "untested");
        assert_eq!(m.settings, json!({}));
        assert_eq!(m.id, mailbox_id("m365", &m.address));
        assert!(m.id.starts_with("m365:") && m.id == m.id.to_lowercase());
    }
    let u1 = mailbox_id("m365", &format!("user1@{TENANT}"));
    assert_eq!(
        mailboxes::get(store, &u1)
            .await
            .unwrap()
            .display_name
            .as_deref(),
        Some("User 1")
    );

    // Enabling before approval is refused with a clear message.
    let err = mailboxes::set_enabled(store, &u1, true).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::InUse(m) if m.contains("approve it first")),
        "{err}"
    );
    assert!(!mailboxes::is_enabled(store, &u1).await.unwrap());
    let approved = mailboxes::approve(store, &u1).await.unwrap();
    assert!(approved.approved && !approved.enabled);
    assert!(
        mailboxes::set_enabled(store, &u1, true)
            .await
            .unwrap()
            .enabled
    );
    assert!(mailboxes::is_enabled(store, &u1).await.unwrap());
    mailboxes::set_settings(
        store,
        &u1,
        &json!({"sync_calendar": true}),
        SettingsMode::Replace,
    )
    .await
    .unwrap();

    // Twice: idempotent, flags and settings kept.
    let second = mailboxes::discover(&t.hub, "m365").await.unwrap();
    assert_eq!(second, Discovered { new: 0, known: 5 });
    assert_eq!(mailboxes::list(store, None, None).await.unwrap().len(), 5);
    let m = mailboxes::get(store, &u1).await.unwrap();
    assert!(m.enabled && m.approved);
    assert_eq!(m.settings, json!({"sync_calendar": true}));

    // A new user with a mail address shows up as new, disabled.
    sim.graph()
        .add_user(
            TENANT_ID,
            json!({"id": "u8", "userPrincipalName": format!("user8@{TENANT}"),
                "mail": format!("user8@{TENANT}"), "displayName": "User 8"}),
        )
        .unwrap();
    let third = mailboxes::discover(&t.hub, "m365").await.unwrap();
    assert_eq!(third, Discovered { new: 1, known: 5 });
    let u8 = mailboxes::get(store, &mailbox_id("m365", &format!("user8@{TENANT}")))
        .await
        .unwrap();
    assert!(!u8.enabled && !u8.approved);

    // Unknown ids and connections.
    assert!(matches!(
        mailboxes::approve(store, "m365:nobody@example.com").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        mailboxes::discover(&t.hub, "nope").await,
        Err(mailboxes::DiscoverError::Store(StoreError::NotFound { .. }))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mailboxes_scope_pages_through_users_with_mail() {
    let sim = simulator().await;
    let t = common::hub().await;
    common::install(&t.hub, "graph").await;
    graph_connection(&t.hub, &sim, "m365", None).await;
    let source = ConnectionEndpoint {
        hub: &t.hub,
        connection: "m365".into(),
        retry: RetryPolicy::default(),
    };
    let mut cursor = None;
    let mut pages = 0;
    let mut seen = Vec::new();
    loop {
        let page = source.pull("mailboxes", cursor.take(), 2).await.unwrap();
        pages += 1;
        assert!(page.full);
        for item in page.items {
            match item.body {
                Some(ItemBody::Mailbox(m)) => {
                    assert!(!m.enabled && !m.approved);
                    seen.push((item.id, m.address));
                }
                other => panic!("not a mailbox: {other:?}"),
            }
        }
        if !page.more {
            break;
        }
        cursor = page.cursor;
        assert!(pages < 20, "paging does not end");
    }
    // 7 users at 2 a page; the two without mail are left out.
    assert!(pages >= 4, "{pages} pages");
    seen.sort();
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen[0], ("u1".into(), format!("User1@{TENANT}")));
    assert!(seen.iter().all(|(id, _)| id != "u6" && id != "u7"));

    // A cursor pointing elsewhere is refused.
    let err = source
        .pull(
            "mailboxes",
            Some("http://evil.example/v1.0/users?$skiptoken=x".into()),
            2,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cursor"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_merge_replace_apply_to_many_and_auth_disable() {
    let sim = simulator().await;
    let t = common::hub().await;
    common::install(&t.hub, "graph").await;
    graph_connection(&t.hub, &sim, "m365", None).await;
    mailboxes::discover(&t.hub, "m365").await.unwrap();
    settings_and_auth_checks(&t.hub, "m365").await;
}

/// Settings and `disable_for_auth` on discovered mailboxes of `conn`.
async fn settings_and_auth_checks(hub: &Hub, conn: &str) {
    let store = hub.store();
    let id = |n: u32| mailbox_id(conn, &format!("user{n}@{TENANT}"));
    // Replace, then merge (null removes a key).
    let m = mailboxes::set_settings(
        store,
        &id(2),
        &json!({"sync_calendar": true, "folder": "Inbox"}),
        SettingsMode::Replace,
    )
    .await
    .unwrap();
    assert_eq!(
        m.settings,
        json!({"sync_calendar": true, "folder": "Inbox"})
    );
    let m = mailboxes::set_settings(
        store,
        &id(2),
        &json!({"folder": null, "direction": "both"}),
        SettingsMode::Merge,
    )
    .await
    .unwrap();
    assert_eq!(
        m.settings,
        json!({"sync_calendar": true, "direction": "both"})
    );
    let m = mailboxes::set_settings(store, &id(2), &json!({"a": 1}), SettingsMode::Replace)
        .await
        .unwrap();
    assert_eq!(m.settings, json!({"a": 1}));
    assert!(matches!(
        mailboxes::set_settings(store, &id(2), &json!([1]), SettingsMode::Replace).await,
        Err(StoreError::InUse(_))
    ));

    // Applied to many: merged into each, all or nothing.
    let many = vec![id(2), id(3), id(4)];
    let updated = mailboxes::apply_settings_to_many(store, &many, &json!({"sync_calendar": false}))
        .await
        .unwrap();
    assert_eq!(updated.len(), 3);
    assert_eq!(updated[0].settings, json!({"a": 1, "sync_calendar": false}));
    assert_eq!(updated[1].settings, json!({"sync_calendar": false}));
    let err = mailboxes::apply_settings_to_many(
        store,
        &[id(5), format!("{conn}:ghost@example.com")],
        &json!({"x": 1}),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert_eq!(
        mailboxes::get(store, &id(5)).await.unwrap().settings,
        json!({}),
        "nothing changes when one id is unknown"
    );

    // A 401 disables the mailbox; the list shows why; enabling again retries.
    mailboxes::approve(store, &id(3)).await.unwrap();
    mailboxes::set_enabled(store, &id(3), true).await.unwrap();
    mailboxes::disable_for_auth(store, &id(3), "HTTP 401: mailbox access denied")
        .await
        .unwrap();
    assert!(!mailboxes::is_enabled(store, &id(3)).await.unwrap());
    let listed = mailboxes::list(store, Some(conn), None).await.unwrap();
    let m = listed.iter().find(|m| m.id == id(3)).unwrap();
    assert!(!m.enabled && m.approved);
    assert_eq!(m.status, "disabled-auth");
    assert_eq!(
        m.status_detail.as_deref(),
        Some("HTTP 401: mailbox access denied")
    );
    let m = mailboxes::set_enabled(store, &id(3), true).await.unwrap();
    assert!(m.enabled);
    assert_eq!(m.status, "untested");
    assert_eq!(m.status_detail, None);
    assert!(matches!(
        mailboxes::disable_for_auth(store, "x:nobody@example.com", "401").await,
        Err(StoreError::NotFound { .. })
    ));
    // Settings that are not a JSON object are an error naming the mailbox, never `{}`.
    sqlx::query("UPDATE mailboxes SET settings = $1 WHERE id = $2")
        .bind("[1,")
        .bind(id(4))
        .execute(store.pool())
        .await
        .unwrap();
    let err = mailboxes::get(store, &id(4)).await.unwrap_err().to_string();
    assert!(err.contains(&id(4)) && err.contains("settings"), "{err}");
    sqlx::query("UPDATE mailboxes SET settings = '{}' WHERE id = $1")
        .bind(id(4))
        .execute(store.pool())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_checks_on_postgres() {
    let Some(url) = common::postgres_url("mailboxes").await else {
        return;
    };
    let sim = simulator().await;
    let t = common::hub_with(tempfile::tempdir().unwrap(), &url).await;
    common::install(&t.hub, "graph").await;
    graph_connection(&t.hub, &sim, "m365", None).await;
    assert_eq!(
        mailboxes::discover(&t.hub, "m365").await.unwrap(),
        Discovered { new: 5, known: 0 }
    );
    assert_eq!(
        mailboxes::discover(&t.hub, "m365").await.unwrap(),
        Discovered { new: 0, known: 5 }
    );
    let u1 = mailbox_id("m365", &format!("user1@{TENANT}"));
    assert!(mailboxes::set_enabled(t.hub.store(), &u1, true)
        .await
        .is_err());
    settings_and_auth_checks(&t.hub, "m365").await;
    // Removing the connection removes its mailboxes.
    t.hub.store().remove_connection("m365").await.unwrap();
    assert!(mailboxes::list(t.hub.store(), None, None)
        .await
        .unwrap()
        .is_empty());
}

// ---- REST API over loopback ----------------------------------------------

/// A response: status and parsed JSON (Null when empty).
#[derive(Debug)]
struct Reply {
    status: u16,
    json: Value,
}

impl Reply {
    fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

struct Api {
    base: String,
    http: reqwest::Client,
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
        token: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .header("Authorization", format!("Bearer {token}"));
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.expect("request is answered");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{path} answered non-JSON ({e}): {text}"))
        };
        Reply { status, json }
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Option<Value>) -> Reply {
        self.send(reqwest::Method::POST, path, token, body).await
    }

    async fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(reqwest::Method::PUT, path, token, Some(body))
            .await
    }
}

async fn token(hub: &Hub, role: Role, company: Option<&str>) -> String {
    tokens::create(hub.store(), "test", role, company)
        .await
        .unwrap()
        .1
}

fn items(r: &Reply) -> Vec<Value> {
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json["items"].as_array().cloned().unwrap()
}

#[track_caller]
fn check(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{:?}", r.json);
    if !code.is_empty() {
        assert_eq!(r.code(), code, "{:?}", r.json);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_roles_and_company_scoping() {
    let sim = simulator().await;
    let t = common::hub().await;
    common::install(&t.hub, "graph").await;
    company(&t.hub, "acme").await;
    company(&t.hub, "globex").await;
    graph_connection(&t.hub, &sim, "m365", Some("acme")).await;
    let hub = &t.hub;
    let admin = token(hub, Role::Admin, None).await;
    let acme_operator = token(hub, Role::Operator, Some("acme")).await;
    let acme_viewer = token(hub, Role::Viewer, Some("acme")).await;
    let globex_operator = token(hub, Role::Operator, Some("globex")).await;
    let api = Api::start(hub).await;

    // Discovery: operator of the company; viewers may not; others see nothing.
    check(
        &api.post("/connections/m365/discover-mailboxes", &acme_viewer, None)
            .await,
        403,
        "forbidden",
    );
    check(
        &api.post(
            "/connections/m365/discover-mailboxes",
            &globex_operator,
            None,
        )
        .await,
        404,
        "not_found",
    );
    let r = api
        .post("/connections/m365/discover-mailboxes", &acme_operator, None)
        .await;
    check(&r, 200, "");
    assert_eq!(r.json, json!({"new": 5, "known": 0}));
    let r = api
        .post("/connections/m365/discover-mailboxes", &admin, None)
        .await;
    assert_eq!(r.json, json!({"new": 0, "known": 5}));

    // Listing: the company's viewer sees them, another company nothing.
    let list = items(&api.get("/mailboxes", &acme_viewer).await);
    assert_eq!(list.len(), 5);
    assert_eq!(list[0]["company_id"], "acme");
    assert_eq!(list[0]["enabled"], false);
    assert_eq!(list[0]["approved"], false);
    assert_eq!(
        items(&api.get("/mailboxes?connection=m365", &admin).await).len(),
        5
    );
    assert!(items(&api.get("/mailboxes", &globex_operator).await).is_empty());
    check(
        &api.get("/mailboxes?connection=m365", &globex_operator)
            .await,
        404,
        "not_found",
    );

    let id = mailbox_id("m365", &format!("user2@{TENANT}"));
    let path = |action: &str| format!("/mailboxes/{id}/{action}");
    // Viewer cannot enable; another company gets 404; unapproved → 409.
    check(
        &api.post(&path("enable"), &acme_viewer, None).await,
        403,
        "forbidden",
    );
    check(
        &api.post(&path("enable"), &globex_operator, None).await,
        404,
        "not_found",
    );
    check(
        &api.post(&path("approve"), &globex_operator, None).await,
        404,
        "not_found",
    );
    let r = api.post(&path("enable"), &acme_operator, None).await;
    check(&r, 409, "conflict");
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("approve it first"),
        "{:?}",
        r.json
    );
    let r = api.post(&path("approve"), &acme_operator, None).await;
    check(&r, 200, "");
    assert_eq!(r.json["approved"], true);
    assert_eq!(r.json["enabled"], false);
    let r = api.post(&path("enable"), &acme_operator, None).await;
    check(&r, 200, "");
    assert_eq!(r.json["enabled"], true);
    let r = api.post(&path("disable"), &acme_operator, None).await;
    assert_eq!(r.json["enabled"], false);
    check(
        &api.post("/mailboxes/m365:ghost@example.com/approve", &admin, None)
            .await,
        404,
        "not_found",
    );

    // Settings: replace, merge, not an object, other company.
    let r = api
        .put(
            &path("settings"),
            &acme_operator,
            json!({"sync_calendar": true}),
        )
        .await;
    check(&r, 200, "");
    assert_eq!(r.json["settings"], json!({"sync_calendar": true}));
    let r = api
        .put(
            &format!("{}?merge=true", path("settings")),
            &acme_operator,
            json!({"folder": "Inbox"}),
        )
        .await;
    assert_eq!(
        r.json["settings"],
        json!({"sync_calendar": true, "folder": "Inbox"})
    );
    check(
        &api.put(&path("settings"), &acme_operator, json!([1, 2]))
            .await,
        400,
        "invalid_request",
    );
    check(
        &api.put(&path("settings"), &acme_viewer, json!({})).await,
        403,
        "forbidden",
    );
    check(
        &api.put(&path("settings"), &globex_operator, json!({}))
            .await,
        404,
        "not_found",
    );

    // Applied to many.
    let ids: Vec<String> = (3..=5)
        .map(|n| mailbox_id("m365", &format!("user{n}@{TENANT}")))
        .collect();
    let r = api
        .post(
            "/mailboxes/settings",
            &acme_operator,
            Some(json!({"ids": ids, "settings": {"sync_calendar": true}})),
        )
        .await;
    let updated = items(&r);
    assert_eq!(updated.len(), 3);
    assert!(updated
        .iter()
        .all(|m| m["settings"] == json!({"sync_calendar": true})));
    check(
        &api.post(
            "/mailboxes/settings",
            &globex_operator,
            Some(json!({"ids": ids, "settings": {"x": 1}})),
        )
        .await,
        404,
        "not_found",
    );
    check(
        &api.post(
            "/mailboxes/settings",
            &acme_operator,
            Some(json!({"ids": [], "settings": {"x": 1}})),
        )
        .await,
        400,
        "invalid_request",
    );
    check(
        &api.post(
            "/mailboxes/settings",
            &acme_viewer,
            Some(json!({"ids": ids, "settings": {"x": 1}})),
        )
        .await,
        403,
        "forbidden",
    );

    // An authentication error disables a mailbox; the list shows it.
    mailboxes::disable_for_auth(hub.store(), &ids[0], "HTTP 401 from the mailbox")
        .await
        .unwrap();
    let list = items(&api.get("/mailboxes?connection=m365", &acme_viewer).await);
    let m = list.iter().find(|m| m["id"] == ids[0].as_str()).unwrap();
    assert_eq!(m["status"], "disabled-auth");
    assert_eq!(m["status_detail"], "HTTP 401 from the mailbox");
    assert_eq!(m["enabled"], false);

    // A connection whose system cannot be reached answers 502.
    common::install(hub, "http-probe").await;
    common::loopback_connection(
        hub,
        "probe",
        "http-probe",
        &json!({"base_url": "http://127.0.0.1:9", "health_path": "/health"}).to_string(),
        &[(
            "default",
            &json!({"kind": "bearer", "token": "t"}).to_string(),
        )],
    )
    .await;
    let r = api
        .post("/connections/probe/discover-mailboxes", &admin, None)
        .await;
    check(&r, 502, "upstream");
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("could not list its mailboxes"),
        "{r:?}"
    );
}
