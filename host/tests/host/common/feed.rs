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
