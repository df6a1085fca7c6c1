//! Flow 1's Exchange server profiles through the service layer, against the EWS and
//! Autotask simulators served over TLS on port 2610 (one of the three ports Exchange may
//! use) by a CA the hub is told to trust: each save rule refused with its own typed error
//! naming the field, the connection test through the real `ews` plugin (success, error,
//! warnings), TLS refused without the operator's CA, "sync in progress, try later", the
//! full re-sync on server changes, the interval fed to the engine profiles' schedule,
//! `enabled = false` queueing nothing, secrets sealed, and the Resources tab (discovery
//! from Autotask, enable, per-resource toggles within the profile's allows, disable after an
//! auth error with an alert). The save scenario also runs on PostgreSQL.

use crate::common;

use serde_json::json;
use std::sync::Arc;
use syncbridge::capability::http::HttpSettings;
use syncbridge::control::alerts;
use syncbridge::control::exchange_profiles::{
    self as exchange, AccountAuth, ExchangeError, ExchangeSettings, ExchangeVersion,
    ImportAppointments, ServerDetails, SyncAccount, SyncSettings, TestOutcome,
};
use syncbridge::control::exchange_resources::{
    self as resources, ResourceError, ResourceSettings, ResourcesFound, Selection,
};
use syncbridge::control::mailboxes;
use syncbridge::control::runs::{NewRun, RunMode, Runs};
use syncbridge::control::Actor;
use syncbridge::engine::profiles::{self, Profile};
use syncbridge::engine::rules::FieldRules;
use syncbridge::hub::Hub;
use syncbridge::runtime::EngineOptions;
use syncbridge::secrets::{Credential, SecretString};
use syncbridge_sim::{Scenarios, Seed, SimConfig, Simulator, TlsMode};
use tokio::sync::{Mutex, MutexGuard};

pub const PASSWORD: &str = "Svc-Pa55-never-in-clear";
const PORT: u16 = 2610;
/// The Exchange Online tenant of the Graph world (beside the on-premises EWS accounts).
pub const GRAPH_TENANT: &str = "msp.example";
const GRAPH_TENANT_ID: &str = "33333333-3333-4333-8333-333333333333";
/// The app registration flow 1 signs in as (client credentials; its secret is [`PASSWORD`]).
pub const GRAPH_CLIENT: &str = "44444444-4444-4444-8444-444444444444";
/// Tess's user id in the Graph tenant (her mailbox's key in the simulator).
pub const GRAPH_TESS: &str = "tess-user-id";
const E3: &str = "c7df2760-2c81-4ef7-b578-5b5392b571df";

/// The simulators bind port 2610: one test at a time.
static PORT_2610: Mutex<()> = Mutex::const_new(());

pub struct World {
    pub sim: Simulator,
    pub t: common::TestHub,
    _port: MutexGuard<'static, ()>,
}

fn seed() -> Seed {
    let doc = json!({
        "ews": {"accounts": [
            {"email": "svc@contoso.com", "password": PASSWORD, "canImpersonate": true},
            {"email": "tess@msp.example", "password": "tess-pw", "displayName": "Tess Tech"}
        ]},
        "graph": {"tenants": [{
            "id": GRAPH_TENANT_ID, "domain": GRAPH_TENANT,
            "apps": [{"client_id": GRAPH_CLIENT, "client_secret": PASSWORD}],
            "subscribedSkus": [{"skuId": E3, "skuPartNumber": "ENTERPRISEPACK"}],
            "users": [
                {"id": "svc-user-id", "userPrincipalName": "svc@msp.example", "mail": "svc@msp.example",
                 "assignedLicenses": [{"skuId": E3, "disabledPlans": []}]},
                {"id": GRAPH_TESS, "userPrincipalName": "tess@msp.example", "mail": "tess@msp.example",
                 "displayName": "Tess Tech", "assignedLicenses": [{"skuId": E3, "disabledPlans": []}]}
            ]
        }]},
        "autotask": {
            "apiUsers": [{"userName": "api@msp.example", "secret": "at-secret", "integrationCode": "TRACKING"}],
            "entities": {
                "Resources": [
                    {"id": 30, "firstName": "Tess", "lastName": "Tech", "email": "tess@msp.example", "userName": "tess", "isActive": true},
                    {"id": 31, "firstName": "Nomail", "lastName": "User", "isActive": true}
                ]
            }
        }
    });
    Seed::from_json(&doc.to_string()).unwrap()
}

/// The simulators, seeded with `seed`, on https://localhost:2610 with a generated CA; the
/// guard keeps this binary's other tests off the port until it is dropped.
pub async fn simulators_on_2610(seed: Seed) -> (Simulator, MutexGuard<'static, ()>) {
    let guard = PORT_2610.lock().await;
    let mut attempt = 0;
    loop {
        match Simulator::start(SimConfig {
            port: PORT,
            tls: TlsMode::GeneratedCa,
            seed: Some(seed.clone()),
            ..SimConfig::all()
        })
        .await
        {
            Ok(sim) => return (sim, guard),
            // The previous test's listener may still be closing, or another test process
            // on this machine holds the port for a while.
            Err(_) if attempt < 1200 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("simulator on port {PORT}: {e}"),
        }
    }
}

/// The simulators on https://localhost:2610 (a generated CA), and a hub that trusts
/// that CA only when `trust_ca`, on `db` (SQLite when `None`).
pub async fn world_with(trust_ca: bool, db: Option<&str>) -> World {
    let (sim, guard) = simulators_on_2610(seed()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = match db {
        Some(u) => u.to_owned(),
        None => format!("sqlite://{}", dir.path().join("t.db").display()),
    };
    let extra = if trust_ca {
        vec![sim.ca_pem().unwrap().as_bytes().to_vec()]
    } else {
        Vec::new()
    };
    let t = common::hub_with_options(
        dir,
        &url,
        EngineOptions {
            http: HttpSettings {
                extra_ca_pems: extra,
                ..HttpSettings::default()
            },
            ..EngineOptions::default()
        },
    )
    .await;
    common::install(&t.hub, "ews").await;
    common::install(&t.hub, "graph").await;
    common::install(&t.hub, "autotask").await;
    common::install(&t.hub, "psa-exchange").await;
    let config = json!({"api_user": "api@msp.example",
        "zone_lookup_url": format!("{}/atservicesrest", sim.base_url())})
    .to_string();
    let headers = json!({"kind": "headers", "headers": {"ApiIntegrationCode": "TRACKING",
        "UserName": "api@msp.example", "Secret": "at-secret"}})
    .to_string();
    common::loopback_connection(&t.hub, "psa", "autotask", &config, &[("default", &headers)]).await;
    World {
        sim,
        t,
        _port: guard,
    }
}

pub async fn world() -> World {
    world_with(true, None).await
}

/// A valid form: EWS on localhost:2610, Basic, impersonation.
pub fn settings() -> ExchangeSettings {
    ExchangeSettings {
        name: "Contoso Exchange".into(),
        enabled: true,
        psa_connection: "psa".into(),
        server: ServerDetails {
            address: format!("localhost:{PORT}"),
            virtual_directory: None,
            domain: None,
            version: ExchangeVersion::Exchange2016,
            hosted_by_third_party: false,
            use_graph: false,
        },
        interval_minutes: 15,
        account: SyncAccount {
            auth: AccountAuth::Basic,
            username: "svc@contoso.com".into(),
            mailbox: "svc@contoso.com".into(),
            tenant: None,
            token_url: None,
            use_for_users: true,
        },
        notify_to: "ops@msp.example; noc@msp.example".into(),
        sync: SyncSettings::default(),
        allow_private_network: true,
    }
}

/// The same form for Exchange Online: Microsoft Graph on localhost:2610 (`/v1.0`), the
/// app registration's client credentials, the simulator's token endpoint for the tenant.
pub fn graph_settings() -> ExchangeSettings {
    let mut s = settings();
    s.server.use_graph = true;
    s.account = SyncAccount {
        auth: AccountAuth::Oauth,
        username: GRAPH_CLIENT.into(),
        mailbox: "svc@msp.example".into(),
        tenant: Some(GRAPH_TENANT.into()),
        token_url: Some(format!(
            "https://localhost:{PORT}/{GRAPH_TENANT}/oauth2/v2.0/token"
        )),
        use_for_users: true,
    };
    s
}

fn secret() -> Option<SecretString> {
    Some(SecretString::new(PASSWORD))
}

/// An engine profile the flow runs over the Exchange connection (as the flow-1 runner
/// will create per resource).
async fn engine_profile(hub: &Hub, id: &str, exchange_connection: &str) {
    profiles::save(
        hub.store(),
        &Profile {
            id: id.into(),
            source_connection: "psa".into(),
            source_scope: "appointments:resource=30".into(),
            mapper_plugin: "autotask".into(),
            mapper_options: "{}".into(),
            target_connection: exchange_connection.into(),
            target_scope: "calendar:mailbox=tess@msp.example".into(),
            rules: FieldRules::default(),
            page_size: 100,
        },
    )
    .await
    .unwrap();
}

async fn resync_requested(hub: &Hub, profile: &str) -> bool {
    use sqlx::Row;
    let row = sqlx::query("SELECT resync_requested FROM profiles WHERE id = $1")
        .bind(profile)
        .fetch_one(hub.store().pool())
        .await
        .unwrap();
    row.try_get::<i64, _>("resync_requested").unwrap() != 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_save_rule_is_its_own_error_naming_the_field_and_nothing_is_stored() {
    let w = world().await;
    let hub = &w.t.hub;
    type Change = fn(&mut ExchangeSettings);
    type Expected = fn(&ExchangeError) -> bool;
    let cases: Vec<(&str, Change, Expected)> = vec![
        (
            "name",
            |s| s.name = " ".into(),
            |e| matches!(e, ExchangeError::NameMissing),
        ),
        (
            "server.address",
            |s| s.server.address = "10.1.2.3".into(),
            |e| matches!(e, ExchangeError::AddressIsIp { .. }),
        ),
        (
            "server.address",
            |s| s.server.address = "127.0.0.1:2610".into(),
            |e| matches!(e, ExchangeError::AddressIsIp { .. }),
        ),
        (
            "server.address",
            |s| s.server.address = "mail.contoso.com:8443".into(),
            |e| matches!(e, ExchangeError::PortNotAllowed { port: 8443 }),
        ),
        (
            "server.address",
            |s| s.server.address = "https://mail.contoso.com/EWS".into(),
            |e| matches!(e, ExchangeError::AddressInvalid { .. }),
        ),
        (
            "server.virtual_directory",
            |s| s.server.virtual_directory = Some("a b".into()),
            |e| matches!(e, ExchangeError::VirtualDirectory { .. }),
        ),
        (
            "interval_minutes",
            |s| s.interval_minutes = 9,
            |e| matches!(e, ExchangeError::Interval { minutes: 9 }),
        ),
        (
            "sync.past_days",
            |s| s.sync.past_days = 0,
            |e| matches!(e, ExchangeError::PastDays { value: 0 }),
        ),
        (
            "sync.past_days",
            |s| s.sync.past_days = 31,
            |e| matches!(e, ExchangeError::PastDays { value: 31 }),
        ),
        (
            "sync.recurring_days",
            |s| s.sync.recurring_days = 31,
            |e| matches!(e, ExchangeError::RecurringDays { value: 31 }),
        ),
        (
            "sync.import_free_time",
            |s| {
                s.sync.import_appointments = ImportAppointments::None;
                s.sync.import_free_time = true;
            },
            |e| matches!(e, ExchangeError::FreeTimeWithoutImport),
        ),
        (
            "sync.public_folder_all_contacts",
            |s| {
                s.server.use_graph = true;
                s.account.auth = AccountAuth::Oauth;
                s.account.tenant = Some("contoso.com".into());
                s.sync.public_folder_all_contacts = true;
            },
            |e| matches!(e, ExchangeError::PublicFolderNeedsEws),
        ),
        (
            "account.auth",
            |s| s.server.use_graph = true,
            |e| matches!(e, ExchangeError::AuthMismatch { .. }),
        ),
        (
            "account.auth",
            |s| s.account.auth = AccountAuth::Oauth,
            |e| matches!(e, ExchangeError::AuthMismatch { .. }),
        ),
        (
            "account.mailbox",
            |s| s.account.mailbox = "svc".into(),
            |e| {
                matches!(
                    e,
                    ExchangeError::Account {
                        field: "mailbox",
                        ..
                    }
                )
            },
        ),
        (
            "notify_to",
            |s| s.notify_to = "ops@msp.example; not an address".into(),
            |e| matches!(e, ExchangeError::NotifyTo(_)),
        ),
    ];
    for (field, change, expected) in cases {
        let mut s = settings();
        change(&mut s);
        let e = exchange::create(hub, Actor::Msp, "contoso", None, s, secret())
            .await
            .expect_err(field);
        assert!(expected(&e), "{field}: {e:?}");
        assert!(e.to_string().starts_with(field), "{field}: {e}");
    }
    // The boundaries themselves are allowed.
    let mut s = settings();
    s.interval_minutes = 10;
    s.sync.past_days = 1;
    s.sync.recurring_days = 30;
    s.sync.import_appointments = ImportAppointments::None;
    s.sync.import_free_time = false;
    exchange::validate(&s).unwrap();
    // No secret on create: refused.
    let e = exchange::create(hub, Actor::Msp, "contoso", None, settings(), None)
        .await
        .unwrap_err();
    assert!(matches!(e, ExchangeError::SecretRequired(_)), "{e:?}");
    assert!(exchange::list(hub, Actor::Msp).await.unwrap().is_empty());
    assert!(hub
        .store()
        .get_connection("contoso-exchange")
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saving_tests_the_connection_success_error_and_a_warning_per_unvalidated_item() {
    let w = world().await;
    saving_tests_the_connection(&w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saving_tests_the_connection_on_postgres() {
    let Some(url) = common::postgres_url("exchange_profiles").await else {
        return;
    };
    let w = world_with(true, Some(&url)).await;
    saving_tests_the_connection(&w).await;
}

async fn saving_tests_the_connection(w: &World) {
    let hub = &w.t.hub;
    let saved = exchange::create(hub, Actor::Msp, "contoso", None, settings(), secret())
        .await
        .unwrap();
    assert_eq!(saved.test.outcome, TestOutcome::Success, "{:?}", saved.test);
    assert!(saved
        .test
        .findings
        .iter()
        .any(|f| f.check == "credentials" && f.outcome == "ok"));
    // The owned connection: the ews plugin, the EWS URL built from address and directory.
    let conn = hub
        .store()
        .get_connection("contoso-exchange")
        .await
        .unwrap();
    assert_eq!(conn.plugin_id, "ews");
    let config: serde_json::Value = serde_json::from_str(&conn.config).unwrap();
    assert_eq!(
        config["ews_url"],
        "https://localhost:2610/EWS/Exchange.asmx"
    );
    assert_eq!(config["impersonate"], true);
    // The secret is sealed: not in the profile, nor in the stored configuration.
    let shown = format!(
        "{:?}",
        exchange::get(hub, Actor::Msp, "contoso").await.unwrap()
    );
    assert!(!shown.contains(PASSWORD));
    assert!(!conn.config.contains(PASSWORD));

    // The account may not impersonate: the save answers an error, and queues nothing.
    w.sim.set_scenarios(Scenarios {
        impersonation_not_granted: true,
        ..Default::default()
    });
    engine_profile(hub, "contoso-tess", "contoso-exchange").await;
    let saved = exchange::update(hub, Actor::Msp, "contoso", settings(), None)
        .await
        .unwrap();
    assert_eq!(saved.test.outcome, TestOutcome::Error, "{:?}", saved.test);
    let f = saved
        .test
        .findings
        .iter()
        .find(|f| f.check == "impersonation:svc@contoso.com")
        .unwrap();
    assert!(f
        .remedy
        .as_deref()
        .unwrap()
        .contains("ApplicationImpersonation"));
    assert!(saved.queued_runs.is_empty());
    let stored = exchange::get(hub, Actor::Msp, "contoso").await.unwrap();
    assert_eq!(stored.last_test.unwrap().outcome, TestOutcome::Error);
    w.sim.set_scenarios(Scenarios::default());

    // Without impersonation, a user's own credential that Exchange refuses is an item that
    // could not be validated: a warning, and the profile saves.
    let mut s = settings();
    s.account.use_for_users = false;
    exchange::update(hub, Actor::Msp, "contoso", s.clone(), None)
        .await
        .unwrap();
    resources::discover(hub, Actor::Msp, "contoso")
        .await
        .unwrap();
    resources::set_own_credential(
        hub,
        Actor::Msp,
        "contoso",
        "30",
        Credential::Basic {
            username: "tess@msp.example".into(),
            password: SecretString::new("wrong-pw"),
        },
    )
    .await
    .unwrap();
    // The working save before queued a run; let it be over.
    sqlx::query("DELETE FROM runs")
        .execute(hub.store().pool())
        .await
        .unwrap();
    let saved = exchange::update(hub, Actor::Msp, "contoso", s, None)
        .await
        .unwrap();
    assert_eq!(saved.test.outcome, TestOutcome::Warning, "{:?}", saved.test);
    assert!(saved
        .test
        .findings
        .iter()
        .any(|f| f.check.ends_with(":tess@msp.example") && f.outcome == "warning"));
    assert!(
        !saved.queued_runs.is_empty(),
        "a warning still synchronizes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_must_chain_to_a_ca_the_operator_added() {
    let w = world_with(false, None).await;
    let saved = exchange::create(&w.t.hub, Actor::Msp, "contoso", None, settings(), secret())
        .await
        .unwrap();
    assert_eq!(saved.test.outcome, TestOutcome::Error, "{:?}", saved.test);
    let text = serde_json::to_string(&saved.test).unwrap().to_lowercase();
    assert!(
        text.contains("certificate") || text.contains("tls"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saving_while_a_sync_runs_is_refused_with_try_later() {
    let w = world().await;
    let hub = &w.t.hub;
    exchange::create(hub, Actor::Msp, "contoso", None, settings(), secret())
        .await
        .unwrap();
    engine_profile(hub, "contoso-tess", "contoso-exchange").await;
    let runs = Runs::new(hub.store().clone());
    let run = runs
        .start_now(
            NewRun {
                profile_id: "contoso-tess",
                company_id: None,
                trigger: "manual",
                mode: RunMode::Run,
                plan_id: None,
            },
            "test",
            common::LEASE,
        )
        .await
        .unwrap();
    let mut s = settings();
    s.interval_minutes = 60;
    let e = exchange::update(hub, Actor::Msp, "contoso", s, None)
        .await
        .unwrap_err();
    assert!(matches!(e, ExchangeError::SyncInProgress { .. }), "{e:?}");
    assert!(e.to_string().contains("sync in progress"), "{e}");
    assert!(e.to_string().contains("try later"), "{e}");
    let stored = exchange::get(hub, Actor::Msp, "contoso").await.unwrap();
    assert_eq!(stored.settings.interval_minutes, 15, "nothing was saved");
    let _ = run;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_changes_resync_everything_the_interval_feeds_the_schedule_and_disabled_queues_nothing(
) {
    let w = world().await;
    let hub = &w.t.hub;
    exchange::create(hub, Actor::Msp, "contoso", None, settings(), secret())
        .await
        .unwrap();
    engine_profile(hub, "contoso-tess", "contoso-exchange").await;

    // Disabled: saved, the engine profile disabled, nothing queued.
    let mut s = settings();
    s.enabled = false;
    s.interval_minutes = 45;
    let saved = exchange::update(hub, Actor::Msp, "contoso", s.clone(), None)
        .await
        .unwrap();
    assert!(saved.queued_runs.is_empty());
    assert!(Runs::new(hub.store().clone())
        .active_for_profile("contoso-tess")
        .await
        .unwrap()
        .is_none());
    let engine = profiles::settings(hub.store(), "contoso-tess")
        .await
        .unwrap();
    assert!(!engine.enabled);
    assert_eq!(
        engine.interval_secs,
        Some(45 * 60),
        "the scheduler's interval"
    );
    assert!(saved.resync_fields.is_empty());
    assert!(!resync_requested(hub, "contoso-tess").await);

    // A change of a non-server field re-syncs nothing.
    s.server.hosted_by_third_party = true;
    s.notify_to = "ops@msp.example".into();
    let saved = exchange::update(hub, Actor::Msp, "contoso", s.clone(), None)
        .await
        .unwrap();
    assert!(saved.resync_fields.is_empty());
    assert!(!resync_requested(hub, "contoso-tess").await);

    // The version: every item re-synchronizes. Enabled again: a run is queued.
    s.server.version = ExchangeVersion::Exchange2013;
    s.enabled = true;
    let saved = exchange::update(hub, Actor::Msp, "contoso", s.clone(), None)
        .await
        .unwrap();
    assert_eq!(saved.resync_fields, vec!["version"]);
    assert!(saved.profile.resync_requested_at.is_some());
    assert!(resync_requested(hub, "contoso-tess").await);
    assert_eq!(saved.queued_runs.len(), 1);
    assert_eq!(saved.queued_runs[0].trigger, "saved");
    let conn = hub
        .store()
        .get_connection("contoso-exchange")
        .await
        .unwrap();
    assert!(conn.config.contains("Exchange2013_SP1"));

    // The virtual directory: it moves where the credential goes, so the secret is needed.
    sqlx::query("UPDATE profiles SET resync_requested = 0")
        .execute(hub.store().pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM runs")
        .execute(hub.store().pool())
        .await
        .unwrap();
    s.server.virtual_directory = Some("Exch".into());
    let e = exchange::update(hub, Actor::Msp, "contoso", s.clone(), None)
        .await
        .unwrap_err();
    assert!(matches!(e, ExchangeError::SecretRequired(_)), "{e:?}");
    assert!(!resync_requested(hub, "contoso-tess").await);
    let saved = exchange::update(hub, Actor::Msp, "contoso", s.clone(), secret())
        .await
        .unwrap();
    assert_eq!(saved.resync_fields, vec!["virtual_directory"]);
    assert!(resync_requested(hub, "contoso-tess").await);

    // use_graph cannot flip on a saved profile.
    s.server.use_graph = true;
    s.account.auth = AccountAuth::Oauth;
    s.account.tenant = Some("contoso.com".into());
    let e = exchange::update(hub, Actor::Msp, "contoso", s, secret())
        .await
        .unwrap_err();
    assert!(matches!(e, ExchangeError::TransportChange(_)), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_are_listed_enabled_limited_by_the_profile_and_disabled_alone_after_an_auth_error(
) {
    let w = world().await;
    let hub: &Arc<Hub> = &w.t.hub;
    let mut s = settings();
    s.sync.allow_contacts = false;
    exchange::create(hub, Actor::Msp, "contoso", None, s, secret())
        .await
        .unwrap();
    assert_eq!(
        resources::discover(hub, Actor::Msp, "contoso")
            .await
            .unwrap(),
        ResourcesFound { new: 2, known: 0 }
    );
    assert_eq!(
        resources::discover(hub, Actor::Msp, "contoso")
            .await
            .unwrap(),
        ResourcesFound { new: 0, known: 2 }
    );
    let listed = resources::list(hub, Actor::Msp, "contoso").await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed
        .iter()
        .all(|r| !r.enabled && r.last_attempted_at.is_none()));

    // A resource without an e-mail address cannot be enabled by name; "all" leaves it out.
    let e = resources::enable(
        hub,
        Actor::Msp,
        "contoso",
        &Selection::Ids(vec!["31".into()]),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ResourceError::NoEmail { .. }), "{e:?}");
    let newly = resources::enable(hub, Actor::Msp, "contoso", &Selection::All)
        .await
        .unwrap();
    assert_eq!(newly.len(), 1);
    let tess = &newly[0];
    assert_eq!(tess.resource_id, "30");
    assert!(tess.enabled);
    // Its mailbox row on the profile's connection, approved and enabled, with the toggles
    // the profile allows (contacts are not allowed).
    let mailbox = mailboxes::get(hub.store(), "contoso-exchange:tess@msp.example")
        .await
        .unwrap();
    assert!(mailbox.enabled && mailbox.approved);
    assert_eq!(
        tess.settings.unwrap(),
        ResourceSettings {
            psa_appointments_to_exchange: true,
            exchange_appointments_to_psa: true,
            contacts: false,
            service_calls: true,
            todos: true,
        }
    );
    // Enabling again enables nothing new (no second confirmation due).
    assert!(
        resources::enable(hub, Actor::Msp, "contoso", &Selection::All)
            .await
            .unwrap()
            .is_empty()
    );

    // A toggle the profile does not allow is refused, naming both.
    let mut wanted = tess.settings.unwrap();
    wanted.contacts = true;
    let e = resources::set_settings(hub, Actor::Msp, "contoso", "30", wanted)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ResourceError::NotAllowed {
                setting: "contacts",
                allow: "sync.allow_contacts"
            }
        ),
        "{e:?}"
    );
    wanted.contacts = false;
    wanted.todos = false;
    let r = resources::set_settings(hub, Actor::Msp, "contoso", "30", wanted)
        .await
        .unwrap();
    assert!(!r.settings.unwrap().todos);

    // Last Attempted Synchronization.
    resources::record_attempt(hub.store(), "contoso", "30", 1_700_000_000_000)
        .await
        .unwrap();
    let r = resources::get(hub, Actor::Msp, "contoso", "30")
        .await
        .unwrap();
    assert_eq!(r.last_attempted_at, Some(1_700_000_000_000));

    // An auth failure disables that resource only, with an alert; the profile stays enabled.
    let alert = resources::disable_for_auth(hub, "contoso", "30", "HTTP 401 from Exchange")
        .await
        .unwrap();
    assert_eq!(alert.code, "exchange_resource_auth_failed");
    assert!(alert.message.contains("impersonation"), "{}", alert.message);
    let r = resources::get(hub, Actor::Msp, "contoso", "30")
        .await
        .unwrap();
    assert!(!r.enabled);
    assert_eq!(r.status.as_deref(), Some(mailboxes::STATUS_DISABLED_AUTH));
    assert!(
        exchange::get(hub, Actor::Msp, "contoso")
            .await
            .unwrap()
            .settings
            .enabled
    );
    assert_eq!(
        alerts::list(hub.store(), None, None, false)
            .await
            .unwrap()
            .len(),
        1
    );
    // Enabling it again works and keeps its settings.
    resources::enable(
        hub,
        Actor::Msp,
        "contoso",
        &Selection::Ids(vec!["30".into()]),
    )
    .await
    .unwrap();
    let r = resources::get(hub, Actor::Msp, "contoso", "30")
        .await
        .unwrap();
    assert!(r.enabled && !r.settings.unwrap().todos);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_credentials_only_without_impersonation_and_sealed() {
    let w = world().await;
    let hub = &w.t.hub;
    exchange::create(hub, Actor::Msp, "contoso", None, settings(), secret())
        .await
        .unwrap();
    resources::discover(hub, Actor::Msp, "contoso")
        .await
        .unwrap();
    let own = || Credential::Basic {
        username: "tess@msp.example".into(),
        password: SecretString::new("Tess-0wn-Secret-9"),
    };
    let e = resources::set_own_credential(hub, Actor::Msp, "contoso", "30", own())
        .await
        .unwrap_err();
    assert!(matches!(e, ResourceError::Impersonating), "{e:?}");

    let mut s = settings();
    s.account.use_for_users = false;
    exchange::update(hub, Actor::Msp, "contoso", s.clone(), None)
        .await
        .unwrap();
    let r = resources::set_own_credential(hub, Actor::Msp, "contoso", "30", own())
        .await
        .unwrap();
    assert!(r.has_own_credential);
    let conn = hub
        .store()
        .get_connection("contoso-exchange")
        .await
        .unwrap();
    let config: serde_json::Value = serde_json::from_str(&conn.config).unwrap();
    assert_eq!(config["mailbox_credentials"]["tess@msp.example"], "user-30");
    assert_eq!(config["impersonate"], false);
    let slots: Vec<String> = hub
        .store()
        .credentials("contoso-exchange")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.slot)
        .collect();
    assert!(slots.contains(&"user-30".to_string()), "{slots:?}");
    // A later save keeps the user's credential mapping.
    exchange::update(hub, Actor::Msp, "contoso", s, None)
        .await
        .unwrap();
    let conn = hub
        .store()
        .get_connection("contoso-exchange")
        .await
        .unwrap();
    assert!(conn.config.contains("user-30"));
    // Nothing in clear in the database file.
    let db = std::fs::read(w.t.dir.path().join("t.db")).unwrap();
    let db = String::from_utf8_lossy(&db);
    assert!(!db.contains("Tess-0wn-Secret-9") && !db.contains(PASSWORD));
}

// ---- the REST API over loopback -------------------------------------------

async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value, String) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{base}/api/v1{path}"))
        .header("Authorization", format!("Bearer {token}"));
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (status, json, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_saves_tests_refuses_by_field_and_never_echoes_the_secret() {
    use syncbridge::control::tokens::{self, Role};
    let w = world().await;
    let hub = &w.t.hub;
    let outbox = syncbridge::notify::RecordingNotifier::new();
    let base = common::serve(syncbridge::server::router_with(
        hub.clone(),
        syncbridge::server::ServeOptions {
            notifier: Some(Arc::new(outbox.clone())),
            ..Default::default()
        },
    ))
    .await;
    let admin = tokens::create(hub.store(), "t", Role::Admin, None)
        .await
        .unwrap()
        .1;
    let viewer = tokens::create(hub.store(), "v", Role::Viewer, None)
        .await
        .unwrap()
        .1;
    let body = |s: &ExchangeSettings| json!({"id": "contoso", "settings": serde_json::to_value(s).unwrap(), "secret": PASSWORD});
    use reqwest::Method;

    let mut bad = settings();
    bad.server.address = "192.168.1.10".into();
    let (status, json, _) = call(
        &base,
        Method::POST,
        "/exchange-profiles",
        &admin,
        Some(body(&bad)),
    )
    .await;
    assert_eq!(status, 400, "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("server.address"),
        "{json}"
    );
    let mut bad = settings();
    bad.sync.recurring_days = 0;
    let (status, json, _) = call(
        &base,
        Method::POST,
        "/exchange-profiles",
        &admin,
        Some(body(&bad)),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("sync.recurring_days"),
        "{json}"
    );

    let (status, _, _) = call(
        &base,
        Method::POST,
        "/exchange-profiles",
        &viewer,
        Some(body(&settings())),
    )
    .await;
    assert_eq!(status, 403, "a viewer cannot save");

    let (status, json, text) = call(
        &base,
        Method::POST,
        "/exchange-profiles",
        &admin,
        Some(body(&settings())),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    assert_eq!(json["test"]["outcome"], "success", "{json}");
    assert_eq!(json["profile"]["settings"]["interval_minutes"], 15);
    assert!(!text.contains(PASSWORD));

    // The public folder of all contacts comes with its warning.
    let mut s = settings();
    s.sync.public_folder_all_contacts = true;
    let (status, json, text) = call(
        &base,
        Method::PUT,
        "/exchange-profiles/contoso",
        &admin,
        Some(json!({"settings": serde_json::to_value(&s).unwrap()})),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(
        json["profile"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("every Exchange user"),
        "{json}"
    );

    // Resources: discover, enable, settings refused beyond the profile's allows.
    let (status, json, _) = call(
        &base,
        Method::POST,
        "/exchange-profiles/contoso/resources/discover",
        &admin,
        None,
    )
    .await;
    assert_eq!((status, json["new"].as_u64()), (200, Some(2)), "{json}");
    let (status, json, _) = call(
        &base,
        Method::POST,
        "/exchange-profiles/contoso/resources/enable",
        &admin,
        Some(json!({"ids": ["30"]})),
    )
    .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["items"][0]["enabled"], true);
    // The API mails the newly enabled resource its confirmation, and says when.
    let sent = outbox.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        format!("{:?}", sent[0].0).contains("tess@msp.example"),
        "{sent:?}"
    );
    assert!(json["items"][0]["confirmation_sent_at"].is_i64(), "{json}");
    let (status, json, _) = call(
        &base,
        Method::PUT,
        "/exchange-profiles/contoso/resources/30/settings",
        &admin,
        Some(
            json!({"psa_appointments_to_exchange": true, "exchange_appointments_to_psa": true,
                    "contacts": true, "service_calls": true, "todos": true}),
        ),
    )
    .await;
    assert_eq!(status, 400, "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sync.allow_contacts"),
        "{json}"
    );
    let (status, json, _) = call(
        &base,
        Method::GET,
        "/exchange-profiles/contoso/resources",
        &viewer,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json["items"].as_array().unwrap().len(), 2);

    // While a sync runs: 409 sync_in_progress.
    engine_profile(hub, "contoso-tess", "contoso-exchange").await;
    Runs::new(hub.store().clone())
        .start_now(
            NewRun {
                profile_id: "contoso-tess",
                company_id: None,
                trigger: "manual",
                mode: RunMode::Run,
                plan_id: None,
            },
            "test",
            common::LEASE,
        )
        .await
        .unwrap();
    let (status, json, _) = call(
        &base,
        Method::PUT,
        "/exchange-profiles/contoso",
        &admin,
        Some(json!({"settings": serde_json::to_value(settings()).unwrap()})),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(json["error"]["code"], "sync_in_progress", "{json}");

    let (status, doc, _) = call(&base, Method::GET, "/openapi.json", &admin, None).await;
    assert_eq!(status, 200);
    for path in [
        "/api/v1/exchange-profiles",
        "/api/v1/exchange-profiles/{id}",
        "/api/v1/exchange-profiles/{id}/resources/enable",
        "/api/v1/exchange-profiles/{id}/resources/{resource}/settings",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
}

// ---- the CLI binary ---------------------------------------------------------

fn syncbridge(data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_syncbridge"))
        .args(["--data-dir", data.to_str().unwrap()])
        .args(args)
        .env_remove("SYNCBRIDGE_MASTER_KEY")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_adds_tests_refuses_by_field_and_lists_resources() {
    let w = world().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, w.sim.ca_pem().unwrap()).unwrap();
    let ca = ca.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--ca-cert", ca];
        all.extend_from_slice(args);
        syncbridge(&data, &all)
    };
    let (ok, out, err) = run(&["exchange", "add", "--help"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("interval_minutes") && out.contains("past_days"),
        "{out}"
    );

    for plugin in ["ews", "autotask", "psa-exchange"] {
        let (ok, out, err) = run(&[
            "plugin",
            "install",
            common::package(plugin).to_str().unwrap(),
        ]);
        assert!(ok, "{out}{err}");
    }
    let config = json!({"api_user": "api@msp.example",
        "zone_lookup_url": format!("{}/atservicesrest", w.sim.base_url())})
    .to_string();
    let creds = dir.path().join("psa.json");
    std::fs::write(
        &creds,
        json!({"default": {"kind": "headers", "headers": {"ApiIntegrationCode": "TRACKING",
        "UserName": "api@msp.example", "Secret": "at-secret"}}})
        .to_string(),
    )
    .unwrap();
    let (ok, out, err) = run(&[
        "connection",
        "add",
        "psa",
        "--plugin",
        "autotask",
        "--config",
        &config,
        "--allow-host",
        "127.0.0.1",
        "--allow-private-network",
        "--credentials-file",
        creds.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");

    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{PASSWORD}\n")).unwrap();
    let settings_file = dir.path().join("exchange.json");
    let mut bad = settings();
    bad.interval_minutes = 5;
    std::fs::write(&settings_file, serde_json::to_string(&bad).unwrap()).unwrap();
    let add = [
        "exchange",
        "add",
        "contoso",
        "--settings-file",
        settings_file.to_str().unwrap(),
        "--secret-file",
        secret_file.to_str().unwrap(),
    ];
    let (ok, out, err) = run(&add);
    assert!(!ok, "{out}");
    assert!(err.contains("interval_minutes: 5 is out of range"), "{err}");

    std::fs::write(&settings_file, serde_json::to_string(&settings()).unwrap()).unwrap();
    let (ok, out, err) = run(&add);
    assert!(ok, "{out}{err}");
    assert!(out.contains("the connection works"), "{out}");
    assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD));

    let (ok, out, err) = run(&["exchange", "discover", "contoso"]);
    assert!(ok && out.contains("2 new resource(s)"), "{out}{err}");
    let (ok, out, err) = run(&["exchange", "enable", "contoso", "--all"]);
    assert!(ok && out.contains("enabled 1 resource(s)"), "{out}{err}");
    let (ok, out, err) = run(&["exchange", "resources", "contoso"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("tess@msp.example") && out.contains("N/A"),
        "{out}"
    );
    let (ok, out, _) = run(&["exchange", "show", "contoso"]);
    assert!(
        ok && out.contains("every 15 minutes") && !out.contains(PASSWORD),
        "{out}"
    );
    // What it runs as: Tess's engine profiles, by kind.
    assert!(
        out.contains("contoso-appointments-30") && out.contains("contoso-import-30"),
        "{out}"
    );
}

// ---- mail -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newly_enabled_resources_get_a_confirmation_and_failures_mail_once_per_incident() {
    use syncbridge::control::exchange_notify;
    use syncbridge::notify::{NotificationKind, RecordingNotifier};
    let w = world().await;
    let hub = &w.t.hub;
    exchange::create(hub, Actor::Msp, "contoso", None, settings(), secret())
        .await
        .unwrap();
    resources::discover(hub, Actor::Msp, "contoso")
        .await
        .unwrap();
    let outbox = RecordingNotifier::new();
    let newly = resources::enable(hub, Actor::Msp, "contoso", &Selection::All)
        .await
        .unwrap();
    let sent = exchange_notify::send_confirmations(hub, &outbox, "contoso", &newly)
        .await
        .unwrap();
    assert_eq!(sent, 1);
    let (to, mail) = &outbox.sent()[0];
    assert_eq!(to.addresses(), vec!["tess@msp.example".to_string()]);
    assert_eq!(mail.kind, NotificationKind::Confirmation);
    assert!(
        mail.body.contains("resource-settings contoso 30"),
        "{}",
        mail.body
    );
    let r = resources::get(hub, Actor::Msp, "contoso", "30")
        .await
        .unwrap();
    assert!(r.confirmation_sent_at.is_some());

    // The server is down: one mail to notify_to with the cause, then none while it lasts.
    let outbox = RecordingNotifier::new();
    for _ in 0..3 {
        exchange_notify::report_failure(
            hub,
            Some(&outbox),
            "contoso",
            "localhost:2610 does not answer (connection refused)",
            "check that the Exchange server is up and reachable on port 2610",
        )
        .await
        .unwrap();
    }
    let sent = outbox.sent();
    assert_eq!(sent.len(), 1, "once per incident");
    assert_eq!(
        sent[0].0.addresses(),
        vec!["ops@msp.example".to_string(), "noc@msp.example".to_string()]
    );
    assert!(sent[0].1.body.contains("connection refused"));
    assert_eq!(sent[0].1.kind, NotificationKind::Failure);
    // It works again; the next failure is a new incident and mails again.
    exchange_notify::incident_over(hub, "contoso")
        .await
        .unwrap();
    exchange_notify::report_failure(
        hub,
        Some(&outbox),
        "contoso",
        "Exchange refused the synchronization account (HTTP 401)",
        "enter its password again",
    )
    .await
    .unwrap();
    assert_eq!(outbox.sent().len(), 2);
}
