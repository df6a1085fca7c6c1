//! The store behaves the same on SQLite and PostgreSQL: plugins, connections,
//! sealed credentials and plugin state.
//!
//! PostgreSQL comes from `SYNCBRIDGE_TEST_POSTGRES` (default
//! postgres://postgres@127.0.0.1:5432/test). When it is unreachable the
//! PostgreSQL half fails under `CI=true` and is skipped loudly elsewhere.

use crate::common;

use std::collections::BTreeMap;
use syncbridge::secrets::{MasterKey, Sealed};
use syncbridge::store::{ConnectionRecord, CredentialRecord, PluginRecord, Store, StoreError};

async fn exercise(store: &Store) {
    let plugin = PluginRecord {
        id: "autotask".into(),
        version: "1.0.0".into(),
        vendor: "acme".into(),
        kind: "connector".into(),
        wit_version: "0.1.0".into(),
        digest: "ab".repeat(32),
        manifest: "{}".into(),
        component: "/x.wasm".into(),
        installed_at: 1,
    };
    store.upsert_plugin(&plugin).await.unwrap();
    let upgraded = PluginRecord {
        version: "1.1.0".into(),
        ..plugin.clone()
    };
    store.upsert_plugin(&upgraded).await.unwrap();
    assert_eq!(store.list_plugins().await.unwrap(), vec![upgraded.clone()]);
    assert_eq!(store.get_plugin("autotask").await.unwrap().version, "1.1.0");
    assert!(matches!(
        store.get_plugin("nope").await,
        Err(StoreError::NotFound { .. })
    ));

    let key = MasterKey::generate();
    let conn = ConnectionRecord {
        id: "at-contoso".into(),
        plugin_id: "autotask".into(),
        config: r#"{"zone":"auto"}"#.into(),
        allowed_hosts: vec!["*.autotask.net".into()],
        allow_private_network: false,
        max_concurrent: Some(3),
    };
    let sealed = key.seal(
        b"{\"kind\":\"bearer\",\"token\":\"zzz\"}",
        "credential/at-contoso/default",
    );
    let cred = CredentialRecord {
        slot: "default".into(),
        kind: "bearer".into(),
        sealed: sealed.clone(),
        binding: None,
    };
    store
        .insert_connection(&conn, std::slice::from_ref(&cred))
        .await
        .unwrap();
    assert!(matches!(
        store.insert_connection(&conn, &[]).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert_eq!(store.get_connection("at-contoso").await.unwrap(), conn);
    assert_eq!(store.list_connections().await.unwrap().len(), 1);
    let stored = store.credentials("at-contoso").await.unwrap();
    assert_eq!(stored, vec![cred]);
    let Sealed { key_id, .. } = &stored[0].sealed;
    assert_eq!(key_id, key.id());
    assert_eq!(
        key.open(&stored[0].sealed, "credential/at-contoso/default")
            .unwrap(),
        b"{\"kind\":\"bearer\",\"token\":\"zzz\"}"
    );

    // A plugin in use cannot be removed.
    assert!(matches!(
        store.remove_plugin("autotask").await,
        Err(StoreError::InUse(_))
    ));

    let mut changes = BTreeMap::new();
    changes.insert("cursor".to_string(), Some("abc".to_string()));
    changes.insert("etag".to_string(), Some("1".to_string()));
    store
        .apply_state_changes("at-contoso", &changes)
        .await
        .unwrap();
    changes.insert("cursor".to_string(), Some("def".to_string()));
    changes.insert("etag".to_string(), None);
    store
        .apply_state_changes("at-contoso", &changes)
        .await
        .unwrap();
    let state = store.load_state("at-contoso").await.unwrap();
    assert_eq!(state.len(), 1);
    assert_eq!(state["cursor"], "def");

    store.remove_connection("at-contoso").await.unwrap();
    assert!(store.credentials("at-contoso").await.unwrap().is_empty());
    assert!(store.load_state("at-contoso").await.unwrap().is_empty());
    store.remove_plugin("autotask").await.unwrap();
    assert!(store.list_plugins().await.unwrap().is_empty());
}

#[tokio::test]
async fn store_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = Store::open(&url).await.unwrap();
    exercise(&store).await;
    // Reopening runs no migration twice.
    drop(store);
    Store::open(&url).await.unwrap();
}

/// A fresh PostgreSQL database for one test, or `None` (skip) outside CI.

#[tokio::test]
async fn store_on_postgres() {
    let Some(url) = common::postgres_url("store").await else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.backend(), syncbridge::store::Backend::Postgres);
    exercise(&store).await;
    drop(store);
    Store::open(&url).await.unwrap();
}

#[tokio::test]
async fn unsupported_urls_are_refused_with_the_accepted_forms() {
    let err = Store::open("mysql://x").await.unwrap_err();
    assert!(err.to_string().contains("sqlite://"), "{err}");
}
