//! The engine end to end through real plugins: a JSON feed read by the
//! `http-probe` connector, the `echo-mapper`, and the `autotask` connector
//! writing into the Autotask simulator over loopback HTTP.

use crate::common;

use crate::common::run_profile;
use serde_json::json;
use std::sync::{Arc, Mutex};
use syncbridge::engine::profiles::{self, Profile};
use syncbridge::engine::FieldRules;
use syncbridge_sim::{FaultRule, Simulator};

use common::feed::{autotask_sim, feed_server, person, Feed};

fn contacts(sim: &Simulator) -> Vec<serde_json::Value> {
    sim.autotask().rows("Contacts")
}

fn by_email<'a>(rows: &'a [serde_json::Value], email: &str) -> Vec<&'a serde_json::Value> {
    rows.iter()
        .filter(|r| r["emailAddress"].as_str() == Some(email))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_syncs_creates_matches_updates_and_deactivates_without_duplicates() {
    let sim = autotask_sim().await;
    let feed: Feed = Arc::new(Mutex::new(
        json!({"items": [person("f1", "Ann"), person("f2", "Bob"), person("f3", "Cy")], "next": null}),
    ));
    let feed_url = feed_server(feed.clone()).await;

    let t = common::hub().await;
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
    let at_cred = json!({"kind": "headers", "headers": {"ApiIntegrationCode": "TRACKING", "UserName": "api@msp.example", "Secret": "at-secret"}});
    common::loopback_connection(
        &t.hub,
        "psa",
        "autotask",
        &at_config.to_string(),
        &[("default", &at_cred.to_string())],
    )
    .await;
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

    // A dry run plans and writes nothing.
    let dry = run_profile(&t.hub, "contacts", true).await.unwrap();
    assert_eq!((dry.planned.create, dry.planned.update), (2, 1), "{dry:?}");
    assert_eq!(contacts(&sim).len(), 1);

    // The real run: two creates, the existing contact matched by e-mail and updated.
    let first = run_profile(&t.hub, "contacts", false).await.unwrap();
    assert_eq!((first.applied, first.failed), (3, 0), "{first:?}");
    let rows = contacts(&sim);
    assert_eq!(rows.len(), 3);
    assert_eq!(by_email(&rows, "f2@contoso.com")[0]["id"], 101);
    assert_eq!(by_email(&rows, "f2@contoso.com")[0]["firstName"], "Bob");

    // Nothing changed: nothing written.
    let again = run_profile(&t.hub, "contacts", false).await.unwrap();
    assert_eq!(again.planned.noop, 3, "{again:?}");
    assert_eq!(again.applied, 0);

    // A rename flows; a source deletion deactivates; Autotask throttles the first write once.
    let _ = sim.add_fault(
        FaultRule::sequence("PATCH /ATServicesRest/V1.0/Companies/*", &[429])
            .with_retry_after("0.2")
            .times(1),
    );
    *feed.lock().unwrap() = json!({"items": [person("f1", "Annie"), person("f2", "Bob"), {"id": "f3", "deleted": true}], "next": null});
    let held = run_profile(&t.hub, "contacts", false).await.unwrap();
    // One deactivation of three linked contacts is over the default 20 % brake: held, nothing written.
    assert!(
        held.held.as_deref().is_some_and(|r| r.contains("approve")),
        "{held:?}"
    );
    assert_eq!(held.applied, 0);
    assert_eq!(
        by_email(&contacts(&sim), "f1@contoso.com")[0]["firstName"],
        "Ann"
    );
    // The operator raises the brake for this small tenant; the run goes through.
    let mut profile = profiles::get(t.hub.store(), "contacts").await.unwrap();
    profile.rules.brakes.max_removal_share = 0.5;
    profiles::save(t.hub.store(), &profile).await.unwrap();
    let third = run_profile(&t.hub, "contacts", false).await.unwrap();
    assert_eq!(
        (third.planned.update, third.planned.deactivate),
        (1, 1),
        "{third:?}"
    );
    assert_eq!(
        (third.applied, third.failed),
        (2, 0),
        "throttled writes are retried in the run: {third:?}"
    );
    assert!(
        sim.requests().count_matching("PATCH") >= 3,
        "the throttled PATCH was sent again"
    );
    let rows = contacts(&sim);
    assert_eq!(by_email(&rows, "f1@contoso.com")[0]["firstName"], "Annie");
    assert_eq!(by_email(&rows, "f3@contoso.com")[0]["isActive"], 0);
    for email in ["f1@contoso.com", "f2@contoso.com", "f3@contoso.com"] {
        assert_eq!(
            by_email(&rows, email).len(),
            1,
            "exactly one contact for {email}"
        );
    }
}
