//! Flow 1's troubleshooting tree run by the product (`control::exchange_diagnose`), against
//! the EWS and Autotask simulators over TLS on localhost:2610: one test per branch of the
//! tree, each driven by a simulator failure (all good; wrong password; MFA required; Basic
//! disabled; server down and a dropped connection; a certificate the hub does not trust;
//! impersonation not granted; individual credentials with one user's wrong and one user's
//! MFA; a mailbox address that names no mailbox), asserting the step it stops at, the
//! outcome and that the cause and the remedy name the right thing. Then once through the
//! `syncbridge diagnose` binary and once through `POST /exchange-profiles/{id}/diagnose`.

use crate::common;
use crate::exchange_profiles::{settings, simulators_on_2610, PASSWORD};

use serde_json::json;
use std::sync::Arc;
use syncbridge::capability::http::HttpSettings;
use syncbridge::control::exchange_diagnose::{diagnose, Diagnosis, DiagnosisFinding};
use syncbridge::control::exchange_profiles::{self as exchange, ExchangeSettings};
use syncbridge::control::exchange_resources::{self as resources, Selection};
use syncbridge::control::Actor;
use syncbridge::hub::Hub;
use syncbridge::runtime::{EngineOptions, Runtime};
use syncbridge::secrets::{Credential, MasterKey, SecretString};
use syncbridge::store::Store;
use syncbridge_sim::{FaultRule, Scenarios, Seed, Simulator};
use tokio::sync::MutexGuard;

const PORT: u16 = 2610;
const KEY: [u8; 32] = [7; 32];
/// `KEY` in base64, for the binary (`SYNCBRIDGE_MASTER_KEY`).
const KEY_B64: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

/// The Entra app's secret (the Graph path).
const APP_SECRET: &str = "App-S3cret-never-shown";

struct World {
    sim: Option<Simulator>,
    hub: Arc<Hub>,
    dir: tempfile::TempDir,
    _port: MutexGuard<'static, ()>,
}

impl World {
    fn sim(&self) -> &Simulator {
        self.sim.as_ref().unwrap()
    }
}

fn seed() -> Seed {
    let doc = json!({
        "ews": {"accounts": [
            {"email": "svc@contoso.com", "password": PASSWORD, "canImpersonate": true},
            {"email": "tess@msp.example", "password": "tess-pw", "displayName": "Tess Tech"},
            {"email": "ravi@msp.example", "password": "ravi-pw", "displayName": "Ravi Rao"},
            {"email": "mia@msp.example", "password": "mia-pw", "displayName": "Mia Moss",
             "mfaRequired": true, "appPassword": "mia-app-pw"}
        ]},
        "graph": {"tenants": [{
            "id": "11111111-1111-4111-8111-111111111111", "domain": "msp.example",
            "apps": [{"client_id": "22222222-2222-4222-8222-222222222222", "client_secret": APP_SECRET}],
            "subscribedSkus": [{"skuId": "c7df2760-2c81-4ef7-b578-5b5392b571df", "skuPartNumber": "ENTERPRISEPACK"}],
            "users": [
                {"id": "u-tess", "userPrincipalName": "tess@msp.example", "mail": "tess@msp.example",
                 "assignedLicenses": [{"skuId": "c7df2760-2c81-4ef7-b578-5b5392b571df", "disabledPlans": []}]},
                {"id": "u-ravi", "userPrincipalName": "ravi@msp.example", "mail": "ravi@msp.example",
                 "assignedLicenses": []}
            ]
        }]},
        "autotask": {
            "apiUsers": [{"userName": "api@msp.example", "secret": "at-secret", "integrationCode": "TRACKING"}],
            "entities": {
                "Resources": [
                    {"id": 30, "firstName": "Tess", "lastName": "Tech", "email": "tess@msp.example", "userName": "tess", "isActive": true},
                    {"id": 31, "firstName": "Nomail", "lastName": "User", "isActive": true},
                    {"id": 32, "firstName": "Ravi", "lastName": "Rao", "email": "ravi@msp.example", "userName": "ravi", "isActive": true},
                    {"id": 33, "firstName": "Mia", "lastName": "Moss", "email": "mia@msp.example", "userName": "mia", "isActive": true},
                    {"id": 34, "firstName": "Olaf", "lastName": "Old", "email": "olaf.old@msp.example", "userName": "olaf", "isActive": true}
                ]
            }
        }
    });
    Seed::from_json(&doc.to_string()).unwrap()
}

/// The simulators on https://localhost:2610 and a hub (key [`KEY`], state in the world's
/// directory as the binary lays it out) that trusts their CA when `trust_ca`.
async fn world_with(trust_ca: bool) -> World {
    let (sim, guard) = simulators_on_2610(seed()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = sim.ca_pem().unwrap().to_owned();
    std::fs::write(dir.path().join("ca.pem"), &ca).unwrap();
    let store = Store::open(&format!(
        "sqlite://{}",
        dir.path().join("syncbridge.db").display()
    ))
    .await
    .unwrap();
    let runtime = Runtime::new(EngineOptions {
        cache_dir: Some(dir.path().join("cache")),
        http: HttpSettings {
            extra_ca_pems: if trust_ca {
                vec![ca.into_bytes()]
            } else {
                Vec::new()
            },
            ..HttpSettings::default()
        },
        ..EngineOptions::default()
    })
    .unwrap();
    let hub = Arc::new(Hub::new(
        store,
        Arc::new(runtime),
        MasterKey::from_bytes(KEY),
        dir.path().join("plugins"),
    ));
    common::install(&hub, "ews").await;
    common::install(&hub, "autotask").await;
    common::install(&hub, "psa-exchange").await;
    let config = json!({"api_user": "api@msp.example",
        "zone_lookup_url": format!("{}/atservicesrest", sim.base_url())})
    .to_string();
    let headers = json!({"kind": "headers", "headers": {"ApiIntegrationCode": "TRACKING",
        "UserName": "api@msp.example", "Secret": "at-secret"}})
    .to_string();
    common::loopback_connection(&hub, "psa", "autotask", &config, &[("default", &headers)]).await;
    World {
        sim: Some(sim),
        hub,
        dir,
        _port: guard,
    }
}

/// Profile `contoso` (impersonation `use_for_users`), its resources listed and `enable` enabled.
async fn profile(w: &World, s: ExchangeSettings, enable: &[&str]) {
    exchange::create(
        &w.hub,
        Actor::Msp,
        "contoso",
        None,
        s,
        Some(SecretString::new(PASSWORD)),
    )
    .await
    .unwrap();
    resources::discover(&w.hub, Actor::Msp, "contoso")
        .await
        .unwrap();
    if !enable.is_empty() {
        resources::enable(
            &w.hub,
            Actor::Msp,
            "contoso",
            &Selection::Ids(enable.iter().map(|s| s.to_string()).collect()),
        )
        .await
        .unwrap();
    }
}

fn individual() -> ExchangeSettings {
    let mut s = settings();
    s.account.use_for_users = false;
    s
}

async fn own_credential(w: &World, resource: &str, user: &str, password: &str) {
    resources::set_own_credential(
        &w.hub,
        Actor::Msp,
        "contoso",
        resource,
        Credential::Basic {
            username: user.into(),
            password: SecretString::new(password),
        },
    )
    .await
    .unwrap();
}

async fn run(w: &World, resource: Option<&str>) -> Diagnosis {
    diagnose(&w.hub, Actor::Msp, "contoso", resource)
        .await
        .unwrap()
}

fn find<'a>(d: &'a Diagnosis, step: u8, check: &str) -> &'a DiagnosisFinding {
    d.findings
        .iter()
        .find(|f| f.step == step && f.check == check)
        .unwrap_or_else(|| panic!("no step {step} {check}: {d:#?}"))
}

/// Cause and remedy in one text.
fn text(f: &DiagnosisFinding) -> String {
    format!(
        "{} | {}",
        f.cause.as_deref().unwrap_or_default(),
        f.remedy.as_deref().unwrap_or_default()
    )
}

/// The diagnosis stopped at `step` with `check` failed, its cause/remedy naming each of `words`.
fn stopped(d: &Diagnosis, step: u8, check: &str, words: &[&str]) {
    assert_eq!(d.stopped_at, Some(step), "{d:#?}");
    assert_eq!(d.outcome, "failed");
    assert!(d.failed());
    let f = find(d, step, check);
    assert_eq!(f.outcome, "failed", "{f:?} in {d:#?}");
    let t = text(f);
    for w in words {
        assert!(t.contains(w), "{check}: {w:?} not in {t}");
    }
    assert!(
        d.conclusion.contains(&format!("step {step}")),
        "{}",
        d.conclusion
    );
    // The tree ends where it stops: every later step is skipped.
    for f in d
        .findings
        .iter()
        .filter(|f| f.step > step && f.check != "other-mode")
    {
        assert_eq!(f.outcome, "skipped", "{f:?}");
    }
    assert!(
        !format!("{d:?}").contains(PASSWORD),
        "no secret in a diagnosis"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_good_passes_every_step_like_a_connectivity_analyzer() {
    let w = world_with(true).await;
    profile(&w, settings(), &["30", "32"]).await;
    let d = run(&w, None).await;
    assert_eq!(d.stopped_at, None, "{d:#?}");
    assert_eq!(d.outcome, "ok", "{d:#?}");
    assert!(d.impersonation);
    assert_eq!(d.transport, "ews");
    for check in [
        "settings",
        "dns",
        "port",
        "tls",
        "endpoint",
        "credentials",
        "autodiscover:svc@contoso.com",
    ] {
        assert_eq!(find(&d, 1, check).outcome, "ok", "{check}");
    }
    assert_eq!(find(&d, 2, "use_for_users").outcome, "ok");
    assert_eq!(find(&d, 3, "impersonation").outcome, "ok");
    assert_eq!(find(&d, 4, "step").outcome, "skipped");
    for r in ["resource:30", "resource:32"] {
        assert_eq!(find(&d, 5, r).outcome, "ok", "{r}");
    }
    assert_eq!(find(&d, 6, "step").outcome, "skipped");
    assert!(
        d.conclusion.contains("every step passed"),
        "{}",
        d.conclusion
    );
    let steps: Vec<u8> = d.findings.iter().map(|f| f.step).collect();
    assert!(steps.windows(2).all(|p| p[0] <= p[1]), "in tree order");

    // One resource only.
    let d = run(&w, Some("30")).await;
    assert_eq!(d.outcome, "ok", "{d:#?}");
    assert_eq!(d.resource.as_deref(), Some("30"));
    assert!(!d.findings.iter().any(|f| f.check == "resource:32"));
    assert!(d.conclusion.contains("resource 30"), "{}", d.conclusion);
    // A resource that is not enabled is refused.
    assert!(diagnose(&w.hub, Actor::Msp, "contoso", Some("31"))
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_mfa_and_basic_disabled_stop_at_step_1() {
    let w = world_with(true).await;
    profile(&w, settings(), &["30"]).await;
    for (scenario, words) in [
        (
            Scenarios {
                wrong_password: true,
                ..Default::default()
            },
            &["password is wrong", "Remote Connectivity Analyzer"][..],
        ),
        (
            Scenarios {
                mfa_required: true,
                ..Default::default()
            },
            &["multi-factor", "app password"][..],
        ),
        (
            Scenarios {
                basic_disabled: true,
                ..Default::default()
            },
            &["Basic authentication is disabled", "BasicAuthentication"][..],
        ),
    ] {
        w.sim().set_scenarios(scenario);
        let d = run(&w, None).await;
        stopped(&d, 1, "credentials", words);
        // The server itself was reached.
        for check in ["dns", "port", "tls", "endpoint"] {
            assert_eq!(find(&d, 1, check).outcome, "ok", "{check}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_or_drops_the_connection_stops_at_step_1() {
    let mut w = world_with(true).await;
    profile(&w, settings(), &["30"]).await;
    w.sim()
        .add_fault(FaultRule::drop_connection("/EWS/*"))
        .unwrap();
    let d = run(&w, None).await;
    stopped(&d, 1, "endpoint", &["closed it", "application pool"]);
    w.sim().clear_faults();

    w.sim.take().unwrap().shutdown().await;
    let d = run(&w, None).await;
    stopped(&d, 1, "port", &["nothing answers", "2610", "firewall"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_the_hub_does_not_trust_stops_at_step_1() {
    let w = world_with(false).await;
    // Without the CA the PSA cannot be read either: no resources.
    exchange::create(
        &w.hub,
        Actor::Msp,
        "contoso",
        None,
        settings(),
        Some(SecretString::new(PASSWORD)),
    )
    .await
    .unwrap();
    let d = run(&w, None).await;
    stopped(
        &d,
        1,
        "tls",
        &["not trusted", "certificate authority", "--ca-cert"],
    );
    assert_eq!(find(&d, 1, "dns").outcome, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_virtual_directory_stops_at_step_1() {
    let w = world_with(true).await;
    let mut s = settings();
    s.server.virtual_directory = Some("Exch".into());
    profile(&w, s, &[]).await;
    let d = run(&w, None).await;
    stopped(&d, 1, "endpoint", &["HTTP 404", "virtual directory"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonation_not_granted_stops_at_step_3_with_the_advice_of_step_4() {
    let w = world_with(true).await;
    profile(&w, settings(), &["30"]).await;
    w.sim().set_scenarios(Scenarios {
        impersonation_not_granted: true,
        ..Default::default()
    });
    let d = run(&w, None).await;
    assert_eq!(find(&d, 1, "credentials").outcome, "ok");
    stopped(
        &d,
        3,
        "impersonation:tess@msp.example",
        &["may not impersonate", "ApplicationImpersonation"],
    );
    // Step 4 came with it: the advice, not a check.
    let advice = find(&d, 4, "other-mode");
    assert_eq!(advice.outcome, "warning");
    let t = text(advice);
    assert!(
        t.contains("use_for_users") && t.contains("licensed user with a real mailbox"),
        "{t}"
    );
    assert_eq!(find(&d, 5, "step").outcome, "skipped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn individual_credentials_skip_to_step_5_and_a_refused_one_reaches_step_6() {
    let w = world_with(true).await;
    profile(&w, individual(), &["30", "32"]).await;

    // No own credential entered yet: step 5 names the resource and how to enter one.
    let d = run(&w, None).await;
    assert!(!d.impersonation);
    let skipped = find(&d, 3, "step");
    assert_eq!(skipped.outcome, "skipped");
    assert!(skipped.detail.as_deref().unwrap().contains("step 5"));
    stopped(
        &d,
        5,
        "resource:30",
        &["no own credential", "user-credential contoso 30"],
    );

    // Tess's is right, Ravi's is wrong: step 5 fails for Ravi only, step 6 asks about MFA.
    own_credential(&w, "30", "tess@msp.example", "tess-pw").await;
    own_credential(&w, "32", "ravi@msp.example", "not-ravis").await;
    let d = run(&w, None).await;
    assert_eq!(find(&d, 5, "resource:30").outcome, "ok", "{d:#?}");
    let ravi = find(&d, 5, "resource:32");
    assert_eq!(ravi.outcome, "failed");
    assert!(
        text(ravi).contains("Ravi Rao") && text(ravi).contains("by hand"),
        "{ravi:?}"
    );
    stopped(
        &d,
        6,
        "mfa:32",
        &["Ravi Rao", "app password", "Remote Connectivity Analyzer"],
    );
    assert!(!d.findings.iter().any(|f| f.check == "mfa:30"));

    // Only Tess: every step passes.
    let d = run(&w, Some("30")).await;
    assert_eq!(d.outcome, "ok", "{d:#?}");
    assert!(!format!("{d:?}").contains("tess-pw"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_with_mfa_reaches_step_6_and_an_app_password_fixes_it() {
    let w = world_with(true).await;
    profile(&w, individual(), &["33"]).await;
    own_credential(&w, "33", "mia@msp.example", "mia-pw").await;
    let d = run(&w, None).await;
    stopped(
        &d,
        6,
        "mfa:33",
        &["Mia Moss", "multi-factor", "app password"],
    );

    // The remedy works: the app password as her credential.
    own_credential(&w, "33", "mia@msp.example", "mia-app-pw").await;
    let d = run(&w, None).await;
    assert_eq!(d.outcome, "ok", "{d:#?}");
    assert_eq!(find(&d, 5, "resource:33").outcome, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_address_that_names_no_mailbox_stops_at_step_5_or_1() {
    let w = world_with(true).await;
    // Olaf's PSA address is not a mailbox's primary SMTP address.
    profile(&w, settings(), &["30", "34"]).await;
    let d = run(&w, None).await;
    assert_eq!(find(&d, 3, "impersonation").outcome, "ok", "{d:#?}");
    assert_eq!(find(&d, 5, "resource:30").outcome, "ok");
    stopped(
        &d,
        5,
        "resource:34",
        &[
            "olaf.old@msp.example",
            "names no mailbox",
            "primary SMTP address",
        ],
    );
    assert!(find(&d, 6, "step")
        .detail
        .as_deref()
        .unwrap()
        .contains("not a sign-in"));

    // The simulator's mismatch scenario: no address matches, the account's own first.
    w.sim().set_scenarios(Scenarios {
        mailbox_address_mismatch: true,
        ..Default::default()
    });
    let d = run(&w, Some("30")).await;
    stopped(
        &d,
        1,
        "mailbox:svc@contoso.com",
        &["names no mailbox", "licensed user with a mailbox"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graph_path_runs_the_same_tree_over_the_graph_connector() {
    use syncbridge::control::exchange_profiles::AccountAuth;
    let w = world_with(true).await;
    common::install(&w.hub, "graph").await;
    let mut s = settings();
    s.server.use_graph = true;
    s.server.version = syncbridge::control::exchange_profiles::ExchangeVersion::Online;
    s.account.auth = AccountAuth::Oauth;
    s.account.username = "22222222-2222-4222-8222-222222222222".into();
    s.account.mailbox = "tess@msp.example".into();
    s.account.tenant = Some("msp.example".into());
    s.account.token_url = Some(format!(
        "https://localhost:{PORT}/msp.example/oauth2/v2.0/token"
    ));
    // A wrong client secret: Entra's error, at step 1 (before a token is cached).
    w.sim().set_scenarios(Scenarios {
        wrong_password: true,
        ..Default::default()
    });
    exchange::create(
        &w.hub,
        Actor::Msp,
        "contoso",
        None,
        s,
        Some(SecretString::new(APP_SECRET)),
    )
    .await
    .unwrap();
    let d = run(&w, None).await;
    assert_eq!(d.transport, "graph");
    stopped(&d, 1, "credentials", &["AADSTS7000215", "client secret"]);
    assert!(!format!("{d:?}").contains(APP_SECRET));
    w.sim().set_scenarios(Scenarios::default());

    resources::discover(&w.hub, Actor::Msp, "contoso")
        .await
        .unwrap();
    resources::enable(
        &w.hub,
        Actor::Msp,
        "contoso",
        &Selection::Ids(vec!["30".into(), "32".into()]),
    )
    .await
    .unwrap();

    // Tess's mailbox opens; Ravi has no Exchange Online licence.
    let d = run(&w, Some("30")).await;
    assert_eq!(d.outcome, "ok", "{d:#?}");
    assert_eq!(find(&d, 1, "credentials").outcome, "ok");
    assert_eq!(find(&d, 5, "resource:30").outcome, "ok");
    let d = run(&w, None).await;
    stopped(
        &d,
        5,
        "resource:32",
        &["ravi@msp.example", "no Exchange Online mailbox", "licence"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_the_tree_as_a_table_or_json_and_exits_1_on_a_failed_step() {
    let w = world_with(true).await;
    profile(&w, settings(), &["30"]).await;
    let dir = w.dir.path().to_owned();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_syncbridge"))
            .arg("--data-dir")
            .arg(&dir)
            .arg("--ca-cert")
            .arg(dir.join("ca.pem"))
            .args(["--log", "warn"])
            .args(args)
            .env("SYNCBRIDGE_MASTER_KEY", KEY_B64)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = cli(&["diagnose", "--help"]);
    assert_eq!(code, Some(0), "{err}");
    for words in [
        "troubleshooting tree",
        "--resource",
        "--json",
        "impersonation",
    ] {
        assert!(out.contains(words), "{words}: {out}");
    }

    let (code, out, err) = cli(&["diagnose", "contoso"]);
    assert_eq!(code, Some(0), "{out}{err}");
    for words in [
        "STEP",
        "CHECK",
        "OUTCOME",
        "1 general settings and save test",
        "tls",
        "every step passed",
    ] {
        assert!(out.contains(words), "{words}: {out}");
    }

    w.sim().set_scenarios(Scenarios {
        impersonation_not_granted: true,
        ..Default::default()
    });
    let (code, out, err) = cli(&["diagnose", "contoso", "--resource", "30"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("ApplicationImpersonation"), "{out}");
    assert!(err.contains("stopped at step 3"), "{err}");

    let (code, out, _) = cli(&["diagnose", "contoso", "--json"]);
    assert_eq!(code, Some(1));
    let d: Diagnosis = serde_json::from_str(&out).unwrap();
    assert_eq!(d.stopped_at, Some(3));
    assert_eq!(d.stopped_at_name.as_deref(), Some("impersonation rights"));
    assert!(!out.contains(PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_runs_the_tree_for_operators_in_scope() {
    use syncbridge::control::tokens::{self, Role};
    let w = world_with(true).await;
    profile(&w, settings(), &["30"]).await;
    syncbridge::control::companies::save(
        w.hub.store(),
        &syncbridge::control::companies::Company {
            id: "fabrikam".into(),
            name: "Fabrikam".into(),
            notify_to: String::new(),
            time_zone: "UTC".into(),
        },
    )
    .await
    .unwrap();
    let base = common::serve(syncbridge::server::router(w.hub.clone())).await;
    let token = |role, company: Option<&'static str>| {
        let hub = w.hub.clone();
        async move {
            tokens::create(hub.store(), "t", role, company)
                .await
                .unwrap()
                .1
        }
    };
    let operator = token(Role::Operator, None).await;
    let viewer = token(Role::Viewer, None).await;
    let other = token(Role::Operator, Some("fabrikam")).await;
    let post = |path: &str, token: &str| {
        let req = reqwest::Client::new()
            .post(format!("{base}/api/v1{path}"))
            .header("Authorization", format!("Bearer {token}"));
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            (
                status,
                serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default(),
                text,
            )
        }
    };

    let (status, json, text) = post("/exchange-profiles/contoso/diagnose", &operator).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(json["outcome"], "ok", "{json}");
    assert_eq!(json["stopped_at"], serde_json::Value::Null);
    assert!(json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["step"] == 5 && f["check"] == "resource:30" && f["outcome"] == "ok"));

    w.sim().set_scenarios(Scenarios {
        wrong_password: true,
        ..Default::default()
    });
    let (status, json, text) =
        post("/exchange-profiles/contoso/diagnose?resource=30", &operator).await;
    assert_eq!(status, 200, "a failed step is an answer: {text}");
    assert_eq!(json["resource"], "30");
    assert_eq!(json["stopped_at"], 1);
    assert_eq!(json["stopped_at_name"], "general settings and save test");
    let f = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "credentials")
        .unwrap();
    assert_eq!(f["outcome"], "failed");
    assert!(f["remedy"].as_str().unwrap().contains("password"), "{f}");
    assert!(!text.contains(PASSWORD));

    let (status, _, _) = post("/exchange-profiles/contoso/diagnose", &viewer).await;
    assert_eq!(status, 403, "operators only");
    let (status, _, _) = post("/exchange-profiles/contoso/diagnose", &other).await;
    assert_eq!(status, 404, "another company's profile is not there");
    let (status, json, _) =
        post("/exchange-profiles/contoso/diagnose?resource=31", &operator).await;
    assert_eq!(status, 409, "{json}");
    let (status, _, _) = post("/exchange-profiles/contoso/diagnose?resource=99", &operator).await;
    assert_eq!(status, 404);
}
