//! Plugins built against an older additive WIT release keep working
//! (docs/wit-versioning.md): a 0.1.0 connector through the current bindings,
//! a 0.1.0 mapper through the frozen 0.1.0 bindings, its route-attribute
//! policy read into the typed one. (A manifest claiming a newer contract
//! than its component implements: `install.rs`.)

use crate::common;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use syncbridge::model::{
    CompanyRef, ContactTypesMode, EventKind, Item, ItemBody, PullRequest, Response, Sensitivity,
    ShowAs, WriteAction, WriteOp, WritePolicy,
};

fn company(id: &str) -> Item {
    Item {
        id: id.into(),
        version: None,
        removed: None,
        body: Some(ItemBody::Company(CompanyRef {
            id: id.into(),
            name: None,
        })),
    }
}

#[tokio::test]
async fn a_0_1_0_mapper_answers_with_its_route_attributes_read_as_the_typed_policy() {
    let t = common::hub().await;
    common::install(&t.hub, "legacy-mapper").await;
    let mapper = t.hub.plugin("legacy-mapper").await.unwrap();
    assert_eq!(mapper.manifest().wit.to_string(), "0.1.0");
    let runtime = t.hub.runtime();

    let plain = runtime
        .decide(&mapper, vec![company("c1")], "{}")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(plain.len(), 1);
    assert_eq!(plain[0].rule, "legacy");
    assert_eq!(plain[0].policy, WritePolicy::default());

    let options = r#"{"update_existing": "false", "contact_types_mode": "add-only"}"#;
    let create_only = runtime
        .decide(&mapper, vec![company("c1"), company("c2")], options)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(create_only.len(), 2);
    for intent in &create_only {
        assert!(!intent.policy.update_existing, "{intent:?}");
        assert_eq!(intent.policy.contact_types, ContactTypesMode::AddOnly);
    }

    let explained = runtime
        .explain(&mapper, company("c1"), "{}")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(explained.steps, ["legacy: every item is copied"]);
}

#[tokio::test]
async fn a_0_1_0_connector_loads_and_reads_on_this_host() {
    let t = common::hub().await;
    common::install(&t.hub, "legacy-connector").await;
    common::loopback_connection(&t.hub, "old", "legacy-connector", "{}", &[]).await;
    let (record, plugin, ctx) = t.hub.connection_context("old").await.unwrap();
    assert_eq!(plugin.manifest().wit.to_string(), "0.1.0");
    let runtime = t.hub.runtime();
    let description = runtime.describe(&plugin).await.unwrap();
    assert_eq!(description.name, "Legacy 0.1.0 connector");
    let page = runtime
        .pull(
            &plugin,
            ctx,
            &record.config,
            PullRequest {
                scope: "contacts".into(),
                cursor: None,
                max_items: 10,
            },
        )
        .await
        .unwrap()
        .value
        .unwrap();
    assert_eq!(page.items.len(), 1);
    match &page.items[0].body {
        Some(ItemBody::Contact(c)) => assert_eq!(c.email.as_deref(), Some("grace@legacy.test")),
        other => panic!("expected the contact, got {other:?}"),
    }
}

/// 0.1.2 added `field-selection` and `source-fields`. Older plugins have neither:
/// their mappers read no extra source fields, and their connectors refuse any, naming
/// the WIT they were built against and what to install; current ones answer.
#[tokio::test]
async fn plugins_older_than_0_1_2_read_no_extra_source_fields() {
    let t = common::hub().await;
    for p in [
        "legacy-mapper",
        "legacy-connector",
        "graph",
        "m365-psa-contacts",
    ] {
        common::install(&t.hub, p).await;
    }
    let runtime = t.hub.runtime();
    let legacy_mapper = t.hub.plugin("legacy-mapper").await.unwrap();
    let fields = runtime
        .source_fields(&legacy_mapper, r#"{"filters": []}"#)
        .await
        .unwrap()
        .unwrap();
    assert!(fields.is_empty(), "{fields:?}");

    let legacy = t.hub.plugin("legacy-connector").await.unwrap();
    let none = runtime
        .select_fields(&legacy, "{}", "companies", Vec::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(none, "companies", "nothing asked, the scope as it is");
    let refused = runtime
        .select_fields(&legacy, "{}", "companies", vec!["city".into()])
        .await
        .unwrap()
        .unwrap_err()
        .describe();
    assert!(
        refused.contains("city") && refused.contains("0.1.0") && refused.contains("0.1.2"),
        "{refused}"
    );

    let mapper = t.hub.plugin("m365-psa-contacts").await.unwrap();
    let options = r#"{"target": "autotask", "filters": [{"priority": 1, "kind": "field", "field": "companyName", "value": "x", "site": {"id": "1"}}]}"#;
    let fields = runtime
        .source_fields(&mapper, options)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fields, ["companyName"]);
    let graph = t.hub.plugin("graph").await.unwrap();
    let config = r#"{"graph_url": "https://graph.microsoft.com/v1.0"}"#;
    let scope = runtime
        .select_fields(&graph, config, "users", fields)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(scope, "users?select=companyName");
}

fn write(action: WriteAction, body: ItemBody) -> WriteOp {
    WriteOp {
        op_id: "op-1".into(),
        action,
        target_id: None,
        body: Some(body),
        fields: Vec::new(),
    }
}

/// 0.1.3 added `mailbox-api`: scopes whose kind a connector lists in
/// `mailbox-scopes` go through it, both ways, with every field of the
/// canonical mailbox model; other scopes still go through `connector-api`,
/// and a body of the wrong interface is refused by name, never mangled.
#[tokio::test]
async fn mailbox_scopes_go_through_mailbox_api_and_other_scopes_do_not() {
    let t = common::hub().await;
    for p in ["misbehave", "legacy-connector", "m365-psa-contacts"] {
        common::install(&t.hub, p).await;
    }
    common::loopback_connection(&t.hub, "mb", "misbehave", "{}", &[]).await;
    let runtime = t.hub.runtime();
    let (record, plugin, ctx) = t.hub.connection_context("mb").await.unwrap();
    let pull = |scope: &str| PullRequest {
        scope: scope.into(),
        cursor: None,
        max_items: 10,
    };

    assert!(runtime
        .serves_mailbox(&plugin, "calendar:mailbox=ada@contoso.test")
        .await
        .unwrap());
    assert!(!runtime.serves_mailbox(&plugin, "contacts").await.unwrap());
    let page = runtime
        .pull(
            &plugin,
            ctx.clone(),
            &record.config,
            pull("calendar:mailbox=ada@contoso.test"),
        )
        .await
        .unwrap()
        .value
        .unwrap();
    assert_eq!(page.cursor.as_deref(), Some("sync-state-1"));
    let Some(ItemBody::Event(event)) = &page.items[0].body else {
        panic!("expected an event, got {:?}", page.items[0].body);
    };
    assert_eq!(event.kind, EventKind::SeriesMaster);
    assert!(event.all_day);
    assert_eq!(event.show_as, ShowAs::Free);
    assert_eq!(event.sensitivity, Sensitivity::Private);
    let zone = event.start.zone.as_ref().unwrap();
    assert_eq!(
        (zone.iana.as_str(), zone.windows.as_deref()),
        ("Europe/Berlin", Some("W. Europe Standard Time"))
    );
    let series = event.series.as_ref().unwrap();
    assert_eq!(series.deleted, ["2026-03-30T22:00:00Z"]);
    assert_eq!(event.attendees[0].response, Response::Tentative);
    assert_eq!(event.reminder_minutes, Some(15));
    assert_eq!(event.anchor.as_deref(), Some("anchor-1"));

    // Other scopes of the same connector: connector-api, as before.
    let core = runtime
        .pull(&plugin, ctx.clone(), &record.config, pull("anything"))
        .await
        .unwrap()
        .value
        .unwrap();
    assert!(core.items.is_empty());

    let found = runtime
        .lookup_items(
            &plugin,
            ctx.clone(),
            &record.config,
            "calendar:mailbox=x",
            vec!["anchor:a1".into()],
        )
        .await
        .unwrap()
        .value
        .unwrap();
    assert_eq!(found[0].id, "anchor:a1");

    let written = runtime
        .push(
            &plugin,
            ctx.clone(),
            &record.config,
            "calendar:mailbox=x",
            vec![write(WriteAction::Create, ItemBody::Event(event.clone()))],
        )
        .await
        .unwrap()
        .value
        .unwrap();
    assert_eq!(
        written[0].outcome.as_ref().unwrap().target_id,
        "create:Offsite"
    );

    let contact = ItemBody::Company(CompanyRef {
        id: "c1".into(),
        name: None,
    });
    let refused = runtime
        .push(
            &plugin,
            ctx.clone(),
            &record.config,
            "calendar:mailbox=x",
            vec![write(WriteAction::Create, contact)],
        )
        .await
        .unwrap()
        .value
        .unwrap_err()
        .describe();
    assert!(
        refused.contains("company") && refused.contains("calendar:mailbox=x"),
        "{refused}"
    );
    let refused = runtime
        .push(
            &plugin,
            ctx,
            &record.config,
            "contacts",
            vec![write(WriteAction::Create, ItemBody::Event(event.clone()))],
        )
        .await
        .unwrap()
        .value
        .unwrap_err()
        .describe();
    assert!(
        refused.contains("event") && refused.contains("mailbox-api"),
        "{refused}"
    );

    // A connector built before 0.1.3 serves no mailbox scope.
    let legacy = t.hub.plugin("legacy-connector").await.unwrap();
    assert!(!runtime
        .serves_mailbox(&legacy, "calendar:mailbox=x")
        .await
        .unwrap());

    // A mapper of core items only refuses mailbox items by kind (since 0.1.4
    // the SDK's default `decide_any` does; before, the host: mapper_mailbox.rs).
    let mapper = t.hub.plugin("m365-psa-contacts").await.unwrap();
    let item = Item {
        id: "ev-1".into(),
        version: None,
        removed: None,
        body: Some(ItemBody::Event(event.clone())),
    };
    let refused = runtime
        .decide(&mapper, vec![item], r#"{"target": "autotask"}"#)
        .await
        .unwrap()
        .unwrap_err()
        .describe();
    assert!(
        refused.contains("event") && refused.contains("ev-1"),
        "{refused}"
    );
}

/// A loopback service that holds each request 150 ms and records the most
/// requests it had in flight at once.
async fn counting_service() -> (String, Arc<AtomicUsize>) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let seen = peak.clone();
    let base = common::serve(axum::Router::new().fallback(move || {
        let (in_flight, peak) = (in_flight.clone(), peak.clone());
        async move {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            "ok"
        }
    }))
    .await;
    (base, seen)
}

/// Calls on one mailbox share its request limit (`max-concurrent-per-mailbox`,
/// 1 for this plugin), within the connection's (2): three concurrent pulls of
/// one mailbox never overlap, pulls of two mailboxes do.
#[tokio::test]
async fn requests_per_mailbox_are_limited_within_the_connection_limit() {
    let t = common::hub().await;
    common::install(&t.hub, "misbehave").await;
    common::loopback_connection(&t.hub, "mb", "misbehave", "{}", &[]).await;
    let runtime = t.hub.runtime();
    let (record, plugin, ctx) = t.hub.connection_context("mb").await.unwrap();
    let pull = |scope: String| {
        runtime.pull(
            &plugin,
            ctx.clone(),
            &record.config,
            PullRequest {
                scope,
                cursor: None,
                max_items: 10,
            },
        )
    };

    let (base, peak) = counting_service().await;
    let ada = || format!("calendar:mailbox=Ada@contoso.test,fetch={base}/");
    let (a, b, c) = tokio::join!(pull(ada()), pull(ada()), pull(ada().to_lowercase()));
    for called in [a, b, c] {
        called.unwrap().value.unwrap();
    }
    assert_eq!(
        peak.load(Ordering::SeqCst),
        1,
        "one mailbox, one request at a time"
    );

    let (base, peak) = counting_service().await;
    let of = |m: &str| format!("calendar:mailbox={m}@contoso.test,fetch={base}/");
    let (a, b, c, d) = tokio::join!(
        pull(of("ada")),
        pull(of("bob")),
        pull(of("ada")),
        pull(of("bob"))
    );
    for called in [a, b, c, d] {
        called.unwrap().value.unwrap();
    }
    assert_eq!(
        peak.load(Ordering::SeqCst),
        2,
        "two mailboxes in parallel, within the connection's 2"
    );
}

/// 0.1.5 added `mailbox-owner-api`. A connector built against an older WIT
/// keeps no mark of a mailbox's organization: the host answers `unsupported`
/// without calling it, naming the connector, its WIT and what to install.
#[tokio::test]
async fn connectors_older_than_0_1_5_keep_no_mark_of_a_mailboxs_organization() {
    let t = common::hub().await;
    common::install(&t.hub, "legacy-connector").await;
    common::loopback_connection(&t.hub, "old", "legacy-connector", "{}", &[]).await;
    let (record, plugin, ctx) = t.hub.connection_context("old").await.unwrap();
    assert!(!plugin.marks_sync_owner());
    let runtime = t.hub.runtime();
    let refused = runtime
        .read_sync_owner(&plugin, ctx.clone(), &record.config, "ann@contoso.com")
        .await
        .unwrap()
        .value
        .unwrap_err()
        .to_string();
    for needle in ["legacy-connector", "0.1.0", "0.1.5", "mailbox-owner-api"] {
        assert!(refused.contains(needle), "{needle:?} in {refused}");
    }
    let refused = runtime
        .write_sync_owner(&plugin, ctx, &record.config, "ann@contoso.com", "https://x")
        .await
        .unwrap()
        .value
        .unwrap_err()
        .to_string();
    assert!(refused.contains("0.1.5"), "{refused}");
}
