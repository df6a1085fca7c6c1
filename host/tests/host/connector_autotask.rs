//! The `autotask` connector through the real runtime against the Autotask simulator: zone
//! discovery, QueryModel paging through `nextPageUrl`, company filters, contact lookups, contact
//! writes (create, update, deactivate, reactivate) with per-operation results, throttling, and
//! test-connection findings.

use crate::common;

use serde_json::{json, Value};
use syncbridge::hub::Hub;
use syncbridge::model::{CompanyRef, Contact, Item, ItemBody, PluginError, SiteRef};
use syncbridge::model::{Finding, Outcome, Page, PullRequest, WriteAction, WriteOp, WriteResult};
use syncbridge_sim::{FaultRule, Seed, Services, SimConfig, Simulator};

const API_USER: &str = "api@msp.example";

async fn sim() -> Simulator {
    let mut contacts = Vec::new();
    for n in 1..=5 {
        contacts.push(
            json!({"id": 100 + n, "companyID": 1, "firstName": format!("Ann{n}"), "lastName": "Lee",
            "emailAddress": format!("ann{n}@contoso.com"), "isActive": 1, "companyLocationID": 11}),
        );
    }
    contacts.push(
        json!({"id": 201, "companyID": 2, "firstName": "Fab", "lastName": "Rikam",
        "emailAddress": "fab@fabrikam.com", "isActive": 0}),
    );
    let doc = json!({"autotask": {
        "apiUsers": [{"userName": API_USER, "secret": "at-secret", "integrationCode": "TRACKING"}],
        "entities": {
            "Companies": [{"id": 1, "companyName": "Contoso"}, {"id": 2, "companyName": "Fabrikam"}],
            "CompanyLocations": [{"id": 11, "companyID": 1, "name": "Main"}, {"id": 12, "companyID": 1, "name": "Branch"},
                                 {"id": 21, "companyID": 2, "name": "HQ"}],
            "Contacts": contacts
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
    .expect("simulator starts")
}

fn headers(secret: &str) -> String {
    json!({"kind": "headers", "headers": {"ApiIntegrationCode": "TRACKING", "UserName": API_USER, "Secret": secret}})
        .to_string()
}

async fn setup_with(sim: &Simulator, api_user: &str, secret: &str) -> common::TestHub {
    let t = common::hub().await;
    common::install(&t.hub, "autotask").await;
    let config = json!({"api_user": api_user, "zone_lookup_url": format!("{}/atservicesrest", sim.base_url())})
        .to_string();
    common::loopback_connection(
        &t.hub,
        "psa",
        "autotask",
        &config,
        &[("default", &headers(secret))],
    )
    .await;
    t
}

async fn setup(sim: &Simulator) -> common::TestHub {
    setup_with(sim, API_USER, "at-secret").await
}

async fn pull(
    hub: &Hub,
    scope: &str,
    cursor: Option<String>,
    max_items: u32,
) -> Result<Page, PluginError> {
    let (record, plugin, ctx) = hub.connection_context("psa").await.unwrap();
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
        .apply_state_changes("psa", &called.state_changes)
        .await
        .unwrap();
    called.value
}

async fn pull_all(hub: &Hub, scope: &str, max_items: u32) -> (Vec<Item>, usize) {
    let mut cursor = None;
    let mut items = Vec::new();
    let mut pages = 0;
    loop {
        let page = pull(hub, scope, cursor, max_items).await.expect("page");
        pages += 1;
        assert!(page.full);
        items.extend(page.items);
        if !page.more {
            // The pass is over: a cursor left, if any, starts the change feed (no next page).
            if let Some(c) = &page.cursor {
                let c: serde_json::Value = serde_json::from_str(c).expect("a JSON cursor");
                assert!(c.get("next").is_none() && c.get("since").is_some(), "{c}");
            }
            break;
        }
        cursor = page.cursor;
        assert!(pages < 50, "runaway paging");
    }
    (items, pages)
}

async fn lookup(hub: &Hub, keys: &[&str]) -> Result<Vec<Item>, PluginError> {
    let (record, plugin, ctx) = hub.connection_context("psa").await.unwrap();
    let called = hub
        .runtime()
        .lookup_items(
            &plugin,
            ctx,
            &record.config,
            "contacts",
            keys.iter().map(|k| k.to_string()).collect(),
        )
        .await
        .expect("no trap");
    hub.store()
        .apply_state_changes("psa", &called.state_changes)
        .await
        .unwrap();
    called.value
}

async fn push(hub: &Hub, batch: Vec<WriteOp>) -> Result<Vec<WriteResult>, PluginError> {
    let (record, plugin, ctx) = hub.connection_context("psa").await.unwrap();
    let called = hub
        .runtime()
        .push(&plugin, ctx, &record.config, "contacts", batch)
        .await
        .expect("no trap");
    hub.store()
        .apply_state_changes("psa", &called.state_changes)
        .await
        .unwrap();
    called.value
}

fn contact(item: &Item) -> &Contact {
    match &item.body {
        Some(ItemBody::Contact(c)) => c,
        other => panic!("expected a contact, got {other:?}"),
    }
}

fn new_contact(first: &str, last: &str, email: &str, company: &str) -> Contact {
    Contact {
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        display_name: None,
        title: Some("Engineer".into()),
        email: Some(email.into()),
        phone: Some("+1 555 0100".into()),
        mobile: None,
        company: Some(CompanyRef {
            id: company.into(),
            name: None,
        }),
        site: Some(SiteRef {
            id: "12".into(),
            name: None,
        }),
        contact_types: Vec::new(),
        active: true,
        extra: Vec::new(),
    }
}

fn op(
    id: &str,
    action: WriteAction,
    target: Option<&str>,
    body: Option<Contact>,
    fields: &[&str],
) -> WriteOp {
    WriteOp {
        op_id: id.into(),
        action,
        target_id: target.map(str::to_owned),
        body: body.map(ItemBody::Contact),
        fields: fields.iter().map(|f| f.to_string()).collect(),
    }
}

fn row(sim: &Simulator, id: i64) -> Value {
    sim.autotask().get("Contacts", id).expect("row exists")
}

#[tokio::test]
async fn contacts_page_through_next_page_url_with_a_company_filter() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let (items, pages) = pull_all(&t.hub, "contacts:company=1", 2).await;
    assert_eq!(pages, 3, "5 contacts at 2 a page");
    assert_eq!(items.len(), 5);
    let c = contact(items.iter().find(|i| i.id == "103").unwrap());
    assert_eq!(c.first_name.as_deref(), Some("Ann3"));
    assert_eq!(c.email.as_deref(), Some("ann3@contoso.com"));
    assert_eq!(c.company.as_ref().unwrap().id, "1");
    assert_eq!(c.site.as_ref().unwrap().id, "11");
    assert!(c.active);
    let stats = sim.requests();
    assert_eq!(
        stats.count_matching("zoneinformation"),
        1,
        "zone cached: {:?}",
        stats.routes
    );
    assert_eq!(
        stats.count_matching("POST /ATServicesRest/V1.0/Contacts/query"),
        1
    );
    assert_eq!(stats.count_matching("/Contacts/query/next"), 2);

    let (all, _) = pull_all(&t.hub, "contacts", 500).await;
    assert_eq!(all.len(), 6);
    assert!(!contact(all.iter().find(|i| i.id == "201").unwrap()).active);
}

#[tokio::test]
async fn companies_and_locations() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let (companies, _) = pull_all(&t.hub, "companies", 500).await;
    let names: Vec<_> = companies
        .iter()
        .map(|i| match &i.body {
            Some(ItemBody::Company(c)) => c.name.clone().unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(names, ["Contoso", "Fabrikam"]);
    let (sites, _) = pull_all(&t.hub, "locations:company=1", 500).await;
    let mut names: Vec<_> = sites
        .iter()
        .map(|i| match &i.body {
            Some(ItemBody::Site(s)) => s.name.clone().unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    names.sort();
    assert_eq!(names, ["Branch", "Main"]);
}

#[tokio::test]
async fn lookup_by_email_and_id() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let found = lookup(
        &t.hub,
        &[
            "email:ANN2@Contoso.com",
            "id:201",
            "email:nobody@contoso.com",
        ],
    )
    .await
    .unwrap();
    let mut ids: Vec<_> = found.iter().map(|i| i.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["102", "201"]);
}

#[tokio::test]
async fn push_creates_updates_deactivates_and_reactivates() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let mut update = new_contact("Ann1", "Lee", "ann1@contoso.com", "1");
    update.title = Some("CFO".into());
    update.mobile = Some("+1 555 0111".into());
    update.phone = None; // blank: must not clear the PSA value
    let results = push(
        &t.hub,
        vec![
            op(
                "create",
                WriteAction::Create,
                None,
                Some(new_contact("Bo", "Ek", "bo@contoso.com", "1")),
                &[],
            ),
            op(
                "bad-company",
                WriteAction::Create,
                None,
                Some(new_contact("No", "Where", "x@y.z", "999")),
                &[],
            ),
            op(
                "update",
                WriteAction::Update,
                Some("101"),
                Some(update),
                &["title", "mobile", "phone"],
            ),
            op(
                "deactivate",
                WriteAction::Deactivate,
                Some("102"),
                None,
                &[],
            ),
            op(
                "missing",
                WriteAction::Deactivate,
                Some("999999"),
                None,
                &[],
            ),
            op(
                "reactivate",
                WriteAction::Reactivate,
                Some("201"),
                None,
                &[],
            ),
        ],
    )
    .await
    .expect("the batch runs");
    assert_eq!(results.len(), 6);
    let outcome = |id: &str| &results.iter().find(|r| r.op_id == id).unwrap().outcome;

    let created: i64 = outcome("create")
        .as_ref()
        .unwrap()
        .target_id
        .parse()
        .unwrap();
    let r = row(&sim, created);
    assert_eq!(r["firstName"], "Bo");
    assert_eq!(r["lastName"], "Ek");
    assert_eq!(r["emailAddress"], "bo@contoso.com");
    assert_eq!(r["title"], "Engineer");
    assert_eq!(r["phone"], "+1 555 0100");
    assert_eq!(r["companyID"], 1);
    assert_eq!(r["companyLocationID"], 12);
    assert_eq!(r["isActive"], 1);

    let err = outcome("bad-company").as_ref().unwrap_err();
    assert!(
        matches!(err, PluginError::NotFound(_) | PluginError::Invalid(_)),
        "{err:?}"
    );
    assert!(
        matches!(outcome("missing"), Err(PluginError::NotFound(_))),
        "{:?}",
        outcome("missing")
    );

    assert_eq!(outcome("update").as_ref().unwrap().target_id, "101");
    let r = row(&sim, 101);
    assert_eq!(r["title"], "CFO");
    assert_eq!(r["mobilePhone"], "+1 555 0111");
    assert_eq!(r["firstName"], "Ann1");

    outcome("deactivate").as_ref().unwrap();
    assert_eq!(row(&sim, 102)["isActive"], 0);
    outcome("reactivate").as_ref().unwrap();
    assert_eq!(row(&sim, 201)["isActive"], 1);
    assert_eq!(row(&sim, 201)["companyID"], 2);

    // The created contact is found by e-mail now.
    let found = lookup(&t.hub, &["email:bo@contoso.com"]).await.unwrap();
    assert_eq!(found[0].id, created.to_string());
}

#[tokio::test]
async fn throttling_surfaces_as_throttled() {
    let sim = sim().await;
    let t = setup(&sim).await;
    sim.add_fault(
        FaultRule::sequence("POST /ATServicesRest/V1.0/Contacts/query", &[429])
            .with_retry_after("3"),
    )
    .unwrap();
    match pull(&t.hub, "contacts", None, 100).await {
        Err(PluginError::Throttled(th)) => assert_eq!(th.retry_after_ms, Some(3000)),
        other => panic!("expected throttled, got {other:?}"),
    }
    // The hourly threshold answers 429 too.
    sim.autotask().set_threshold(1, Some(5));
    assert!(matches!(
        pull(&t.hub, "contacts", None, 100).await,
        Err(PluginError::Throttled(_))
    ));
    // In a batch the throttled op and the ones after it carry the error; nothing else is sent.
    let results = push(
        &t.hub,
        vec![
            op(
                "a",
                WriteAction::Create,
                None,
                Some(new_contact("A", "A", "a@contoso.com", "1")),
                &[],
            ),
            op(
                "b",
                WriteAction::Create,
                None,
                Some(new_contact("B", "B", "b@contoso.com", "1")),
                &[],
            ),
        ],
    )
    .await
    .unwrap();
    assert!(results
        .iter()
        .all(|r| matches!(r.outcome, Err(PluginError::Throttled(_)))));
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
    let t = setup(&sim).await;
    let findings = t
        .hub
        .test_connection("psa")
        .await
        .unwrap()
        .connection
        .unwrap();
    for check in ["zone", "credentials", "read-contacts"] {
        assert_eq!(
            finding(&findings, check).outcome,
            Outcome::Ok,
            "{findings:?}"
        );
    }
}

#[tokio::test]
async fn wrong_credentials_are_a_finding_with_a_remedy() {
    let sim = sim().await;
    let t = setup_with(&sim, API_USER, "wrong").await;
    let findings = t
        .hub
        .test_connection("psa")
        .await
        .unwrap()
        .connection
        .unwrap();
    assert_eq!(finding(&findings, "zone").outcome, Outcome::Ok);
    let f = finding(&findings, "credentials");
    assert_eq!(f.outcome, Outcome::Failed);
    assert!(f.cause.as_deref().unwrap().contains("401"), "{f:?}");
    assert!(
        f.remedy.as_deref().unwrap().contains("ApiIntegrationCode"),
        "{f:?}"
    );
    assert!(matches!(
        pull(&t.hub, "contacts", None, 10).await,
        Err(PluginError::Auth(_))
    ));
}

#[tokio::test]
async fn an_unknown_api_user_has_no_zone() {
    let sim = sim().await;
    let t = setup_with(&sim, "nobody@msp.example", "at-secret").await;
    let findings = t
        .hub
        .test_connection("psa")
        .await
        .unwrap()
        .connection
        .unwrap();
    let f = finding(&findings, "zone");
    assert_eq!(f.outcome, Outcome::Failed);
    assert!(f.remedy.as_deref().unwrap().contains("api_user"), "{f:?}");
    assert_eq!(findings.len(), 1);
}

#[tokio::test]
async fn a_base_url_skips_zone_discovery() {
    let sim = sim().await;
    let t = common::hub().await;
    common::install(&t.hub, "autotask").await;
    let config = json!({"api_user": API_USER, "base_url": sim.autotask_url()}).to_string();
    common::loopback_connection(
        &t.hub,
        "psa",
        "autotask",
        &config,
        &[("default", &headers("at-secret"))],
    )
    .await;
    let (items, _) = pull_all(&t.hub, "contacts:company=2", 500).await;
    assert_eq!(items.len(), 1);
    let findings = t
        .hub
        .test_connection("psa")
        .await
        .unwrap()
        .connection
        .unwrap();
    assert_eq!(finding(&findings, "zone").outcome, Outcome::Skipped);
    assert_eq!(finding(&findings, "credentials").outcome, Outcome::Ok);
    assert_eq!(sim.requests().count_matching("zoneinformation"), 0);
}
