//! The `graph` connector through the real runtime against the Graph/Entra simulator: delta
//! paging, incremental rounds with changes and removals, 410 restarts, throttling, licence and
//! group resolution, and test-connection findings for refused credentials.

use crate::common;

use syncbridge::hub::Hub;
use syncbridge::model::{DirectoryUser, Item, ItemBody, PluginError, Removal};
use syncbridge::model::{Finding, Outcome, Page, PullRequest};
use syncbridge_sim::{FaultRule, Scenarios, Seed, Services, SimConfig, Simulator};

const TENANT: &str = "contoso.onmicrosoft.com";
const TENANT_ID: &str = "11111111-1111-4111-8111-111111111111";
const CLIENT: &str = "22222222-2222-4222-8222-222222222222";
const E3: &str = "c7df2760-2c81-4ef7-b578-5b5392b571df";

fn seed() -> Seed {
    let users: Vec<serde_json::Value> = (1..=5)
        .map(|n| {
            serde_json::json!({
                "id": format!("u{n}"),
                "userPrincipalName": format!("user{n}@{TENANT}"),
                "mail": format!("user{n}@contoso.com"),
                "givenName": format!("Given{n}"),
                "surname": format!("Sur{n}"),
                "displayName": format!("Given{n} Sur{n}"),
                "department": if n % 2 == 0 { "IT" } else { "Sales" },
                "businessPhones": [format!("+1 555 010{n}")],
                "assignedLicenses": if n == 5 { serde_json::json!([]) } else { serde_json::json!([{"skuId": E3, "disabledPlans": []}]) },
            })
        })
        .collect();
    let doc = serde_json::json!({"graph": {"tenants": [{
        "id": TENANT_ID, "domain": TENANT,
        "apps": [{"client_id": CLIENT, "client_secret": "s3cret"}],
        "subscribedSkus": [{"skuId": E3, "skuPartNumber": "ENTERPRISEPACK"}],
        "users": users,
        "groups": [{"id": "g1", "displayName": "All Staff", "members": ["u1", "g2"]},
                   {"id": "g2", "displayName": "Management", "members": ["u2"]}]
    }]}});
    Seed::from_json(&doc.to_string()).unwrap()
}

async fn sim() -> Simulator {
    Simulator::start(SimConfig {
        services: Services {
            graph: true,
            ..Services::NONE
        },
        seed: Some(seed()),
        ..SimConfig::all()
    })
    .await
    .expect("simulator starts")
}

fn credential(sim: &Simulator, secret: &str) -> String {
    serde_json::json!({
        "kind": "oauth2-client-credentials",
        "token_url": sim.token_url(TENANT),
        "client_id": CLIENT,
        "client_secret": secret,
        "scope": "https://graph.microsoft.com/.default",
    })
    .to_string()
}

async fn setup(sim: &Simulator, secret: &str, with_groups: bool) -> common::TestHub {
    let t = common::hub().await;
    common::install(&t.hub, "graph").await;
    let config = serde_json::json!({"graph_url": sim.graph_url(), "tenant": TENANT, "with_groups": with_groups})
        .to_string();
    common::loopback_connection(
        &t.hub,
        "m365",
        "graph",
        &config,
        &[("default", &credential(sim, secret))],
    )
    .await;
    t
}

async fn pull(hub: &Hub, cursor: Option<String>, max: u32) -> Result<Page, PluginError> {
    pull_page(hub, "m365", "users", cursor, max).await
}

/// One `pull` through the runtime; state changes are committed like the engine does.
async fn pull_page(
    hub: &Hub,
    conn: &str,
    scope: &str,
    cursor: Option<String>,
    max_items: u32,
) -> Result<Page, PluginError> {
    let (record, plugin, ctx) = hub.connection_context(conn).await.unwrap();
    let request = PullRequest {
        scope: scope.into(),
        cursor,
        max_items,
    };
    let called = hub
        .runtime()
        .pull(&plugin, ctx, &record.config, request)
        .await
        .expect("no trap");
    hub.store()
        .apply_state_changes(conn, &called.state_changes)
        .await
        .unwrap();
    called.value
}

/// Reads a whole pass starting at `cursor`; answers the items, the pages and the final cursor.
async fn pass(hub: &Hub, cursor: Option<String>, max: u32) -> (Vec<Item>, Vec<Page>, String) {
    let mut cursor = cursor;
    let mut items = Vec::new();
    let mut pages = Vec::new();
    loop {
        let page = pull(hub, cursor.clone(), max).await.expect("page");
        items.extend(page.items.clone());
        cursor = page.cursor.clone();
        let more = page.more;
        pages.push(page);
        if !more {
            break;
        }
        assert!(pages.len() < 50, "runaway paging");
    }
    (items, pages, cursor.expect("a delta link ends the pass"))
}

fn user(item: &Item) -> &DirectoryUser {
    match &item.body {
        Some(ItemBody::DirectoryUser(u)) => u,
        other => panic!("expected a directory user, got {other:?}"),
    }
}

fn find<'a>(items: &'a [Item], id: &str) -> &'a Item {
    items
        .iter()
        .find(|i| i.id == id)
        .unwrap_or_else(|| panic!("{id} missing"))
}

#[tokio::test]
async fn full_pass_pages_through_next_links_and_resolves_licences() {
    let sim = sim().await;
    let t = setup(&sim, "s3cret", false).await;
    let (items, pages, delta_link) = pass(&t.hub, None, 2).await;
    assert_eq!(pages.len(), 3, "5 users at 2 a page");
    assert!(pages.iter().all(|p| p.full));
    assert!(pages[..2].iter().all(|p| p.more));
    assert!(pages[0].cursor.as_deref().unwrap().contains("$skiptoken="));
    assert!(delta_link.contains("$deltatoken="), "{delta_link}");
    assert_eq!(items.len(), 5);
    let u2 = user(find(&items, "u2"));
    assert_eq!(u2.user_principal_name, format!("user2@{TENANT}"));
    assert_eq!(u2.mail.as_deref(), Some("user2@contoso.com"));
    assert_eq!(u2.given_name.as_deref(), Some("Given2"));
    assert_eq!(u2.surname.as_deref(), Some("Sur2"));
    assert_eq!(u2.department.as_deref(), Some("IT"));
    assert_eq!(u2.business_phone.as_deref(), Some("+1 555 0102"));
    assert!(u2.account_enabled);
    assert_eq!(u2.licenses.len(), 1);
    assert_eq!(
        u2.licenses[0].sku_part_number.as_deref(),
        Some("ENTERPRISEPACK")
    );
    assert!(user(find(&items, "u5")).licenses.is_empty());
    assert!(u2.groups.is_empty(), "groups only with with_groups");
    let stats = sim.requests();
    assert_eq!(
        stats.count_matching("GET /v1.0/subscribedSkus"),
        1,
        "SKUs are cached in state: {:?}",
        stats.routes
    );
    assert_eq!(stats.count_matching("transitiveMemberOf"), 0);
}

#[tokio::test]
async fn delta_round_brings_changes_and_removals() {
    let sim = sim().await;
    let t = setup(&sim, "s3cret", false).await;
    let (_, _, delta_link) = pass(&t.hub, None, 100).await;

    assert!(sim.graph().update_user(
        TENANT,
        "u2",
        serde_json::json!({"jobTitle": "CTO", "mobilePhone": "+1 555 0199"})
    ));
    assert!(sim.graph().update_user(
        TENANT,
        "u1",
        serde_json::json!({"accountEnabled": false, "assignedLicenses": []})
    ));
    assert!(sim.graph().delete_user(TENANT, "u3", true));
    assert!(sim.graph().delete_user(TENANT, "u4", false));
    let new_id = sim
        .graph()
        .add_user(
            TENANT,
            serde_json::json!({"userPrincipalName": format!("new@{TENANT}"), "givenName": "Nina",
                "assignedLicenses": [{"skuId": E3, "disabledPlans": []}]}),
        )
        .unwrap();

    let (items, pages, next_delta) = pass(&t.hub, Some(delta_link.clone()), 100).await;
    assert!(
        pages.iter().all(|p| !p.full),
        "a delta round is not a full read"
    );
    assert_ne!(next_delta, delta_link);
    assert_eq!(items.len(), 5, "{items:?}");
    let u1 = user(find(&items, "u1"));
    assert!(!u1.account_enabled, "sign-in blocked");
    assert!(u1.licenses.is_empty(), "licence removed");
    assert_eq!(
        u1.given_name.as_deref(),
        Some("Given1"),
        "unchanged fields are still there"
    );
    let u2 = user(find(&items, "u2"));
    assert_eq!(u2.job_title.as_deref(), Some("CTO"));
    assert_eq!(u2.mobile_phone.as_deref(), Some("+1 555 0199"));
    for gone in ["u3", "u4"] {
        let item = find(&items, gone);
        assert_eq!(item.removed, Some(Removal::Deleted));
        assert!(item.body.is_none());
    }
    let nina = user(find(&items, &new_id));
    assert_eq!(nina.given_name.as_deref(), Some("Nina"));
    assert_eq!(
        nina.licenses[0].sku_part_number.as_deref(),
        Some("ENTERPRISEPACK")
    );

    // Nothing changed since: the next round is empty.
    let (items, _, _) = pass(&t.hub, Some(next_delta), 100).await;
    assert!(items.is_empty(), "{items:?}");
}

#[tokio::test]
async fn an_expired_delta_token_restarts_a_full_read() {
    let sim = sim().await;
    let t = setup(&sim, "s3cret", false).await;
    let (_, _, delta_link) = pass(&t.hub, None, 100).await;
    sim.graph().expire_delta_tokens();
    let page = pull(&t.hub, Some(delta_link), 100)
        .await
        .expect("410 is not an error");
    assert!(page.items.is_empty());
    assert_eq!(page.cursor, None);
    assert!(page.more && page.full);
    // The engine continues with the cursor it was given: a full read.
    let (items, pages, _) = pass(&t.hub, page.cursor, 100).await;
    assert_eq!(items.len(), 5);
    assert!(pages.iter().all(|p| p.full));
}

#[tokio::test]
async fn throttling_surfaces_with_the_decimal_retry_after() {
    let sim = sim().await;
    let t = setup(&sim, "s3cret", false).await;
    sim.add_fault(FaultRule::sequence("GET /v1.0/users/delta*", &[429]).with_retry_after("2.128"))
        .unwrap();
    match pull(&t.hub, None, 100).await {
        Err(PluginError::Throttled(th)) => assert_eq!(th.retry_after_ms, Some(2128)),
        other => panic!("expected throttled, got {other:?}"),
    }
    // The rule is spent: the same call succeeds now.
    assert_eq!(pull(&t.hub, None, 100).await.unwrap().items.len(), 5);

    // Throttled in the middle of a pass: the engine retries the same cursor later.
    let first = pull(&t.hub, None, 2).await.unwrap();
    sim.add_fault(FaultRule::sequence("GET /v1.0/users/delta*", &[429]).with_retry_after(""))
        .unwrap();
    match pull(&t.hub, first.cursor.clone(), 2).await {
        Err(PluginError::Throttled(th)) => assert_eq!(th.retry_after_ms, None, "no Retry-After"),
        other => panic!("expected throttled, got {other:?}"),
    }
    let again = pull(&t.hub, first.cursor, 2).await.unwrap();
    assert!(again.full && again.more);
    assert_eq!(again.items.len(), 2);
}

#[tokio::test]
async fn a_throttled_request_inside_a_batch_is_throttled() {
    let sim = sim().await;
    let t = setup(&sim, "s3cret", true).await;
    sim.add_fault(
        FaultRule::sequence("GET /v1.0/users/*/transitiveMemberOf*", &[429])
            .with_retry_after("1.5"),
    )
    .unwrap();
    match pull(&t.hub, None, 100).await {
        Err(PluginError::Throttled(th)) => assert_eq!(th.retry_after_ms, Some(1500)),
        other => panic!("expected throttled, got {other:?}"),
    }
}

/// `Retry-After` as an HTTP-date `secs` from now, in the IMF-fixdate form.
fn http_date_in(secs: i64) -> String {
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(secs);
    at.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[tokio::test]
async fn throttling_with_an_http_date_waits_until_that_date() {
    let sim = sim().await;
    let t = setup(&sim, "s3cret", true).await;
    // Read by the host (a throttled request of the plugin) ...
    sim.add_fault(
        FaultRule::sequence("GET /v1.0/users/delta*", &[429]).with_retry_after(&http_date_in(60)),
    )
    .unwrap();
    match pull(&t.hub, None, 100).await {
        Err(PluginError::Throttled(th)) => {
            let ms = th.retry_after_ms.expect("a wait");
            assert!((55_000..=60_000).contains(&ms), "{ms}");
        }
        other => panic!("expected throttled, got {other:?}"),
    }
    // ... and by the SDK (an answer inside a `$batch`), with the same parser.
    sim.add_fault(
        FaultRule::sequence("GET /v1.0/users/*/transitiveMemberOf*", &[429])
            .with_retry_after(&http_date_in(120)),
    )
    .unwrap();
    match pull(&t.hub, None, 100).await {
        Err(PluginError::Throttled(th)) => {
            let ms = th.retry_after_ms.expect("a wait");
            assert!((115_000..=120_000).contains(&ms), "{ms}");
        }
        other => panic!("expected throttled, got {other:?}"),
    }
    // A date in the past is no wait at all.
    sim.add_fault(
        FaultRule::sequence("GET /v1.0/users/delta*", &[429])
            .with_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
    )
    .unwrap();
    match pull(&t.hub, None, 100).await {
        Err(PluginError::Throttled(th)) => assert_eq!(th.retry_after_ms, Some(0)),
        other => panic!("expected throttled, got {other:?}"),
    }
}

#[tokio::test]
async fn credentials_of_another_tenant_fail_the_tenant_check() {
    let sim = sim().await;
    let t = common::hub().await;
    common::install(&t.hub, "graph").await;
    let config =
        serde_json::json!({"graph_url": sim.graph_url(), "tenant": "fabrikam.onmicrosoft.com"})
            .to_string();
    common::loopback_connection(
        &t.hub,
        "m365",
        "graph",
        &config,
        &[("default", &credential(&sim, "s3cret"))],
    )
    .await;
    let findings = t
        .hub
        .test_connection("m365")
        .await
        .unwrap()
        .connection
        .unwrap();
    assert_eq!(finding(&findings, "credentials").outcome, Outcome::Ok);
    let f = finding(&findings, "tenant");
    assert_eq!(f.outcome, Outcome::Failed);
    assert!(f.cause.as_deref().unwrap().contains(TENANT_ID), "{f:?}");
}

#[tokio::test]
async fn groups_come_from_transitive_membership_when_asked_for() {
    let sim = sim().await;
    let t = setup(&sim, "s3cret", true).await;
    let (items, _, _) = pass(&t.hub, None, 100).await;
    let mut u2: Vec<String> = user(find(&items, "u2"))
        .groups
        .iter()
        .map(|g| g.display_name.clone().unwrap_or_default())
        .collect();
    u2.sort();
    assert_eq!(u2, ["All Staff", "Management"]);
    let u1: Vec<&str> = user(find(&items, "u1"))
        .groups
        .iter()
        .map(|g| g.id.as_str())
        .collect();
    assert_eq!(u1, ["g1"]);
    assert!(user(find(&items, "u3")).groups.is_empty());
    assert_eq!(sim.requests().count_matching("POST /v1.0/$batch"), 1);
}

fn finding<'a>(findings: &'a [Finding], check: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no {check} finding in {findings:?}"))
}

#[tokio::test]
async fn test_connection_passes_with_good_credentials() {
    let sim = sim().await;
    let t = setup(&sim, "s3cret", true).await;
    let report = t.hub.test_connection("m365").await.unwrap();
    let findings = report.connection.expect("checks ran");
    for check in ["credentials", "tenant", "read-users", "licenses", "groups"] {
        assert_eq!(
            finding(&findings, check).outcome,
            Outcome::Ok,
            "{findings:?}"
        );
    }
}

#[tokio::test]
async fn a_wrong_secret_is_a_finding_with_a_remedy() {
    let sim = sim().await;
    let t = setup(&sim, "not-the-secret", false).await;
    let report = t.hub.test_connection("m365").await.unwrap();
    let findings = report.connection.expect("checks ran");
    let f = finding(&findings, "credentials");
    assert_eq!(f.outcome, Outcome::Failed);
    assert!(
        f.cause.as_deref().unwrap().contains("AADSTS7000215"),
        "{f:?}"
    );
    assert!(!f.cause.as_deref().unwrap().contains("not-the-secret"));
    assert!(
        f.remedy.as_deref().unwrap().contains("client secret"),
        "{f:?}"
    );
    // A pull with the same credential is an auth error.
    assert!(matches!(
        pull(&t.hub, None, 10).await,
        Err(PluginError::Auth(_))
    ));
}

#[tokio::test]
async fn mfa_required_is_explained() {
    let sim = sim().await;
    sim.set_scenarios(Scenarios {
        mfa_required: true,
        ..Scenarios::default()
    });
    let t = setup(&sim, "s3cret", false).await;
    let findings = t
        .hub
        .test_connection("m365")
        .await
        .unwrap()
        .connection
        .unwrap();
    let f = finding(&findings, "credentials");
    assert_eq!(f.outcome, Outcome::Failed);
    assert!(f.cause.as_deref().unwrap().contains("AADSTS50076"), "{f:?}");
    assert!(
        f.remedy.as_deref().unwrap().contains("Conditional Access"),
        "{f:?}"
    );
}

#[tokio::test]
async fn describe_names_reads_and_slot() {
    let t = common::hub().await;
    common::install(&t.hub, "graph").await;
    let plugin = t.hub.plugin("graph").await.expect("installed");
    let d = t.hub.runtime().describe(&plugin).await.unwrap();
    assert_eq!(d.credential_slots, ["default"]);
    assert_eq!(d.name, "Microsoft 365 (Graph)");
}
