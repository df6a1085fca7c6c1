//! A connection's configuration is validated against the JSON Schema its
//! plugin derives (`describe`) when the connection is added or its
//! configuration changed: a wrong-typed or missing field is refused with its
//! path named (API 422), and nothing is stored.

use crate::common;

use serde_json::{json, Value};
use syncbridge::control::connections::{self, Actor, ConnectionChange};
use syncbridge::control::tokens::{self, Role};
use syncbridge::hub::{HubError, NewConnection};

async fn post(base: &str, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1{path}"))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request is answered");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn put(base: &str, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .put(format!("{base}/api/v1{path}"))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request is answered");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn api_refuses_a_config_that_breaks_the_plugin_schema_and_stores_nothing() {
    let t = common::hub().await;
    common::install(&t.hub, "autotask").await;
    let admin = tokens::create(t.hub.store(), "test", Role::Admin, None)
        .await
        .unwrap()
        .1;
    let base = common::serve(syncbridge::server::router(t.hub.clone())).await;

    // `api_user` is required and a string: a number is refused, naming the field.
    let (status, body) = post(
        &base,
        &admin,
        "/connections",
        json!({"id": "psa", "plugin_id": "autotask", "config": {"api_user": 42}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "configuration", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("/api_user"), "{message}");
    assert!(message.contains("string"), "{message}");

    // Missing: the required field is named.
    let (status, body) = post(
        &base,
        &admin,
        "/connections",
        json!({"id": "psa", "plugin_id": "autotask", "config": {"base_url": "https://x.test"}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("api_user"), "{message}");
    assert!(message.contains("required"), "{message}");

    assert!(
        t.hub.store().get_connection("psa").await.is_err(),
        "nothing is stored"
    );

    // A valid configuration is stored.
    let (status, body) = post(
        &base,
        &admin,
        "/connections",
        json!({"id": "psa", "plugin_id": "autotask", "config": {"api_user": "api@msp.example"}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // Changing it is checked the same way, and the stored one is kept.
    let (status, body) = put(
        &base,
        &admin,
        "/connections/psa",
        json!({"config": {"api_user": "api@msp.example", "zone_lookup_url": false}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/zone_lookup_url"),
        "{body}"
    );
    let stored = t.hub.store().get_connection("psa").await.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&stored.config).unwrap(),
        json!({"api_user": "api@msp.example"})
    );
}

#[tokio::test]
async fn hub_and_control_refuse_unknown_keys_where_the_plugin_does() {
    let t = common::hub().await;
    common::install(&t.hub, "connectwise").await;
    let new = |config: Value| NewConnection {
        id: "cw".into(),
        plugin_id: "connectwise".into(),
        config: config.to_string(),
        allowed_hosts: Vec::new(),
        allow_private_network: false,
        max_concurrent: None,
        credentials: Default::default(),
    };
    // ConnectWise refuses unknown keys (a misspelt setting is never ignored).
    match t
        .hub
        .add_connection(new(
            json!({"site": "api-na.myconnectwise.net", "colour": 1}),
        ))
        .await
    {
        Err(e @ HubError::ConfigSchema(_)) => {
            assert!(e.to_string().contains("colour"), "{e}")
        }
        other => panic!("expected a schema error, got {other:?}"),
    }
    t.hub
        .add_connection(new(json!({"site": "api-na.myconnectwise.net"})))
        .await
        .expect("a valid configuration is added");
    let err = connections::update(
        &t.hub,
        Actor::Msp,
        "cw",
        ConnectionChange {
            config: Some(json!({"site": 7})),
            ..ConnectionChange::default()
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("/site"), "{err}");
}

/// A profile's mapper options are checked against the schema the mapper
/// derives (`options-schema`, WIT 0.1.1) when the profile is saved: a wrong
/// type or an unknown field is refused naming it, and nothing is stored. A
/// mapper built against WIT 0.1.0 has no schema; its options are only
/// checked to be an object.
#[tokio::test]
async fn api_refuses_mapper_options_that_break_the_mapper_schema() {
    let t = common::hub().await;
    for id in ["http-probe", "m365-psa-contacts", "legacy-mapper"] {
        common::install(&t.hub, id).await;
    }
    common::loopback_connection(
        &t.hub,
        "probe",
        "http-probe",
        r#"{"base_url":"http://127.0.0.1:9"}"#,
        &[],
    )
    .await;
    let admin = tokens::create(t.hub.store(), "test", Role::Admin, None)
        .await
        .unwrap()
        .1;
    let base = common::serve(syncbridge::server::router(t.hub.clone())).await;
    let profile = |id: &str, mapper: &str, options: Value| {
        json!({
            "id": id,
            "source_connection": "probe",
            "source_scope": "users",
            "mapper_plugin": mapper,
            "mapper_options": options,
            "target_connection": "probe",
            "target_scope": "contacts",
            "enabled": false
        })
    };

    let wrong_type = json!({"target": "autotask",
        "filters": [{"priority": "first", "kind": "all-licensed", "site": {"id": "1"}}]});
    let (status, body) = post(
        &base,
        &admin,
        "/profiles",
        profile("p", "m365-psa-contacts", wrong_type),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "configuration", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("mapper options"), "{message}");
    assert!(message.contains("/filters/0/priority"), "{message}");

    let unknown = json!({"target": "autotask", "update_existng": false});
    let (status, body) = post(
        &base,
        &admin,
        "/profiles",
        profile("p", "m365-psa-contacts", unknown),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("update_existng"), "{message}");
    assert!(
        syncbridge::engine::profiles::get(t.hub.store(), "p")
            .await
            .is_err(),
        "nothing is stored"
    );

    let good = json!({"target": "autotask", "update_existing": false,
        "filters": [{"priority": 1, "kind": "all-licensed", "site": {"id": 3}}]});
    let (status, body) = post(
        &base,
        &admin,
        "/profiles",
        profile("p", "m365-psa-contacts", good),
    )
    .await;
    assert!(status == 200 || status == 201, "{status} {body}");

    // Changing the options later is checked the same way.
    let (status, body) = put(
        &base,
        &admin,
        "/profiles/p",
        json!({"mapper_options": {"target": 7}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/target"),
        "{body}"
    );

    let (status, body) = post(
        &base,
        &admin,
        "/profiles",
        profile("old", "legacy-mapper", json!({"anything": "goes"})),
    )
    .await;
    assert!(
        status == 200 || status == 201,
        "a 0.1.0 mapper describes no schema: {status} {body}"
    );
}
