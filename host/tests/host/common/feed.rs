//! A JSON contact feed (read by the `http-probe` connector) and an Autotask
//! simulator seeded with company Contoso and one contact (#101,
//! f2@contoso.com): the setup of the engine and control-plane tests.

use axum::extract::State;
use axum::routing::get;
use serde_json::json;
use std::sync::{Arc, Mutex};
use syncbridge_sim::{Seed, Services, SimConfig, Simulator};

pub type Feed = Arc<Mutex<serde_json::Value>>;

pub async fn feed_server(feed: Feed) -> String {
    let router = axum::Router::new()
        .route(
            "/contacts",
            get(|State(f): State<Feed>| async move { axum::Json(f.lock().unwrap().clone()) }),
        )
        .with_state(feed);
    super::serve(router).await
}

pub fn person(id: &str, first: &str) -> serde_json::Value {
    json!({"id": id, "first_name": first, "last_name": "Doe", "email": format!("{id}@contoso.com")})
}

pub async fn autotask_sim() -> Simulator {
    let doc = json!({"autotask": {
        "apiUsers": [{"userName": "api@msp.example", "secret": "at-secret", "integrationCode": "TRACKING"}],
        "entities": {
            "Companies": [{"id": 1, "companyName": "Contoso"}],
            "Contacts": [{"id": 101, "companyID": 1, "firstName": "Old", "lastName": "Doe",
                          "emailAddress": "f2@contoso.com", "isActive": 1}]
        }
    }});
    Simulator::start(SimConfig {
        services: Services {
            autotask: true,
            ..Services::NONE
        },
        seed: Some(Seed::from_json(&doc.to_string()).unwrap()),
        ..SimConfig::all()
    })
    .await
    .unwrap()
}

/// Profile `contacts` on `hub`: the feed at `feed_url` (connection `feed`,
/// `http-probe`) through `echo-mapper` into the Autotask simulator `sim`
/// (connection `psa`, company 1), `page_size` items per page.
pub async fn contacts_profile(
    hub: &syncbridge::hub::Hub,
    sim: &Simulator,
    feed_url: &str,
    page_size: u32,
) {
    use syncbridge::engine::profiles::{self, Profile};
    for p in ["http-probe", "echo-mapper", "autotask"] {
        super::install(hub, p).await;
    }
    super::loopback_connection(
        hub,
        "feed",
        "http-probe",
        &json!({"base_url": feed_url}).to_string(),
        &[("default", r#"{"kind":"bearer","token":"x"}"#)],
    )
    .await;
    let at_config = json!({"api_user": "api@msp.example", "zone_lookup_url": format!("{}/atservicesrest", sim.base_url())});
    let at_cred = json!({"kind": "headers", "headers": {"ApiIntegrationCode": "TRACKING", "UserName": "api@msp.example", "Secret": "at-secret"}});
    super::loopback_connection(
        hub,
        "psa",
        "autotask",
        &at_config.to_string(),
        &[("default", &at_cred.to_string())],
    )
    .await;
    profiles::save(
        hub.store(),
        &Profile {
            id: "contacts".into(),
            source_connection: "feed".into(),
            source_scope: "contacts".into(),
            mapper_plugin: "echo-mapper".into(),
            mapper_options: "{}".into(),
            target_connection: "psa".into(),
            target_scope: "contacts:company=1".into(),
            rules: syncbridge::engine::FieldRules::default(),
            page_size,
        },
    )
    .await
    .unwrap();
}
