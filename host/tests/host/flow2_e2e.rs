//! Flow 2 through every real part: Microsoft 365 users from the Graph
//! simulator (`graph` connector, OAuth2 by the host), the `m365-psa-contacts`
//! mapper, and the `autotask` connector writing into the Autotask simulator,
//! driven by the engine from a stored profile.

use crate::common;

use crate::common::run_profile;
use serde_json::json;
use syncbridge::control::plans;
use syncbridge::control::preview;
use syncbridge::control::runs::{NewRun, RunMode, Runs};
use syncbridge::engine::plan::Action;
use syncbridge::engine::profiles::{self, Profile};
use syncbridge::engine::FieldRules;
use syncbridge::runner::{NoProgress, Runner};
use syncbridge_sim::{Seed, Services, SimConfig, Simulator};

const TENANT: &str = "contoso.onmicrosoft.com";
const TENANT_ID: &str = "11111111-1111-4111-8111-111111111111";
const CLIENT: &str = "22222222-2222-4222-8222-222222222222";
const E3: &str = "c7df2760-2c81-4ef7-b578-5b5392b571df";

async fn simulators() -> Simulator {
    let users: Vec<serde_json::Value> = (1..=5)
        .map(|n| {
            json!({
                "id": format!("u{n}"),
                "userPrincipalName": format!("user{n}@{TENANT}"),
                "givenName": format!("Given{n}"),
                "surname": format!("Sur{n}"),
                "jobTitle": "Engineer",
                "businessPhones": [format!("+1 555 010{n}")],
                "accountEnabled": true,
                // user5 has no licence: never synced.
                "assignedLicenses": if n == 5 { json!([]) } else { json!([{"skuId": E3, "disabledPlans": []}]) },
            })
        })
        .collect();
    let doc = json!({
        "graph": {"tenants": [{
            "id": TENANT_ID, "domain": TENANT,
            "apps": [{"client_id": CLIENT, "client_secret": "s3cret"}],
            "subscribedSkus": [{"skuId": E3, "skuPartNumber": "ENTERPRISEPACK"}],
            "users": users
        }]},
        "autotask": {
            "apiUsers": [{"userName": "api@msp.example", "secret": "at-secret", "integrationCode": "TRACKING"}],
            "entities": {
                "Companies": [{"id": 1, "companyName": "Contoso"}],
                "CompanyLocations": [{"id": 11, "companyID": 1, "name": "Main"}],
                // An existing PSA contact with user2's address: matched, not duplicated.
                "Contacts": [{"id": 101, "companyID": 1, "firstName": "Old", "lastName": "Name",
                              "emailAddress": format!("user2@{TENANT}"), "isActive": 1}]
            }
        }
    });
    Simulator::start(SimConfig {
        services: Services {
            graph: true,
            autotask: true,
            ..Services::NONE
        },
        seed: Some(Seed::from_json(&doc.to_string()).unwrap()),
        ..SimConfig::all()
    })
    .await
    .unwrap()
}

fn contacts_with(sim: &Simulator, email: &str) -> Vec<serde_json::Value> {
    sim.autotask()
        .rows("Contacts")
        .into_iter()
        .filter(|c| {
            c["emailAddress"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m365_users_reach_autotask_and_changes_follow_by_delta() {
    let sim = simulators().await;
    let t = common::hub().await;
    for p in ["graph", "m365-psa-contacts", "autotask"] {
        common::install(&t.hub, p).await;
    }
    let graph_cred = json!({"kind": "oauth2-client-credentials", "token_url": sim.token_url(TENANT), "client_id": CLIENT,
                            "client_secret": "s3cret", "scope": "https://graph.microsoft.com/.default"});
    common::loopback_connection(
        &t.hub,
        "m365",
        "graph",
        &json!({"graph_url": sim.graph_url(), "tenant": TENANT}).to_string(),
        &[("default", &graph_cred.to_string())],
    )
    .await;
    let at_cred = json!({"kind": "headers", "headers": {"ApiIntegrationCode": "TRACKING", "UserName": "api@msp.example", "Secret": "at-secret"}});
    let at_config = json!({"api_user": "api@msp.example", "zone_lookup_url": format!("{}/atservicesrest", sim.base_url())});
    common::loopback_connection(
        &t.hub,
        "psa",
        "autotask",
        &at_config.to_string(),
        &[("default", &at_cred.to_string())],
    )
    .await;
    let mut rules = FieldRules::default();
    rules.brakes.max_removal_share = 0.5;
    profiles::save(
        t.hub.store(),
        &Profile {
            id: "contoso-contacts".into(),
            source_connection: "m365".into(),
            source_scope: "users".into(),
            mapper_plugin: "m365-psa-contacts".into(),
            mapper_options: json!({"target": "autotask", "filters": [{"priority": 1, "kind": "all-licensed", "site": {"id": "11", "name": "Main"}}]}).to_string(),
            target_connection: "psa".into(),
            target_scope: "contacts:company=1".into(),
            rules,
            page_size: 2,
        },
    )
    .await
    .unwrap();

    // The filter preview, before anything is written: who lands where, who
    // does not and why, and what will happen.
    let runner = Runner::new(t.hub.clone(), "test", std::time::Duration::from_secs(30));
    let dry = Runs::new(t.hub.store().clone())
        .start_now(
            NewRun {
                profile_id: "contoso-contacts",
                company_id: None,
                trigger: "manual",
                mode: RunMode::DryRun,
                plan_id: None,
            },
            "test",
            runner.lease(),
        )
        .await
        .unwrap();
    let dry = runner.execute(dry, &NoProgress).await.unwrap();
    let items = plans::items(
        t.hub.store(),
        dry.plan_id.as_deref().unwrap(),
        false,
        0,
        100,
    )
    .await
    .unwrap();
    let rows = preview::rows(&items);
    assert_eq!(rows.len(), 5, "{rows:?}");
    let row = |id: &str| rows.iter().find(|r| r.source_id == id).unwrap();
    assert_eq!(row("u1").action, Action::Create);
    assert_eq!(row("u1").site.as_deref(), Some("Main (11)"));
    assert!(row("u1").rule.contains("all-licensed"), "{:?}", row("u1"));
    assert_eq!(row("u2").action, Action::Update, "matched by e-mail");
    assert_eq!(row("u2").target_id.as_deref(), Some("101"));
    assert_eq!(row("u5").action, Action::Noop);
    assert!(row("u5").reason.contains("licence"), "{:?}", row("u5"));
    assert_eq!(
        sim.autotask().rows("Contacts").len(),
        1,
        "the preview wrote nothing"
    );

    let first = run_profile(&t.hub, "contoso-contacts", false)
        .await
        .unwrap();
    assert_eq!(
        (first.planned.create, first.planned.update, first.failed),
        (3, 1, 0),
        "{first:?}"
    );
    for n in 1..=4 {
        let found = contacts_with(&sim, &format!("user{n}@{TENANT}"));
        assert_eq!(found.len(), 1, "user{n} lands exactly once");
        assert_eq!(found[0]["firstName"], format!("Given{n}"));
        assert_eq!(
            found[0]["companyLocationID"], 11,
            "routed to the filter's site"
        );
    }
    assert_eq!(
        contacts_with(&sim, &format!("user2@{TENANT}"))[0]["id"],
        101,
        "matched by e-mail, not created"
    );
    assert!(
        contacts_with(&sim, &format!("user5@{TENANT}")).is_empty(),
        "unlicensed users are not synced"
    );

    let quiet = run_profile(&t.hub, "contoso-contacts", false)
        .await
        .unwrap();
    assert_eq!(quiet.applied, 0, "nothing changed in M365: {quiet:?}");

    // A rename and a deletion in M365 arrive through users/delta.
    assert!(sim
        .graph()
        .update_user(TENANT, "u1", json!({"givenName": "Renamed"})));
    assert!(sim.graph().delete_user(TENANT, "u3", true));
    let delta = run_profile(&t.hub, "contoso-contacts", false)
        .await
        .unwrap();
    assert_eq!(
        (delta.planned.update, delta.planned.deactivate, delta.failed),
        (1, 1, 0),
        "{delta:?}"
    );
    assert_eq!(
        contacts_with(&sim, &format!("user1@{TENANT}"))[0]["firstName"],
        "Renamed"
    );
    assert_eq!(
        contacts_with(&sim, &format!("user3@{TENANT}"))[0]["isActive"],
        0
    );
    assert_eq!(
        sim.autotask().rows("Contacts").len(),
        4,
        "no duplicates after three runs"
    );
}
