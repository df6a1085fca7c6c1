//! The `connectwise` connector through the real runtime against the ConnectWise simulator over
//! loopback HTTP: test-connection findings (good keys, a bad private key, a missing clientId),
//! `Link`-header paging, companies / sites / contact types, lookups by e-mail and id, creates
//! with communication items, contact type and site, JSON-Patch updates of the changed fields
//! only (recorded on the wire), deactivate / reactivate, throttling, and secrets kept out of
//! what the plugin sees.

use crate::common;

use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};
use syncbridge::hub::Hub;
use syncbridge::model::{Contact, ContactTypeRef, Item, ItemBody, PluginError, SiteRef};
use syncbridge::model::{Finding, Outcome, Page, PullRequest, WriteAction, WriteOp, WriteResult};
use syncbridge_sim::{FaultRule, Seed, Services, SimConfig, Simulator};

const PRIVATE_KEY: &str = "cw-Priv4te-k3y";
const CLIENT_ID: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
const CONTACTS: &str = "company/contacts";

async fn sim() -> Simulator {
    let mut contacts = Vec::new();
    for n in 1..=5 {
        contacts.push(json!({
            "id": 100 + n, "firstName": format!("Ann{n}"), "lastName": "Lee", "title": "Analyst",
            "company": {"id": 10, "identifier": "Contoso", "name": "Contoso Ltd"},
            "site": {"id": 21, "name": "Main"},
            "types": [{"id": 1, "description": "Employee"}],
            "communicationItems": [
                {"type": {"id": 1, "name": "Email"}, "value": format!("ann{n}@contoso.com"), "defaultFlag": true},
                {"type": {"id": 2, "name": "Direct"}, "value": format!("+1 555 010{n}"), "defaultFlag": true}
            ]
        }));
    }
    contacts.push(json!({
        "id": 201, "firstName": "Fab", "lastName": "Rikam", "inactiveFlag": true,
        "company": {"id": 20, "identifier": "Fabrikam", "name": "Fabrikam"},
        "communicationItems": [{"type": {"id": 1, "name": "Email"}, "value": "fab@fabrikam.com", "defaultFlag": true}]
    }));
    let doc = json!({"connectwise": {
        "credentials": [{"companyId": "msp", "publicKey": "pubkey", "privateKey": PRIVATE_KEY}],
        "clientIds": [CLIENT_ID],
        "contactTypes": [{"id": 1, "description": "Employee", "defaultFlag": true},
                         {"id": 7, "description": "End User"}],
        "companies": [
            {"id": 10, "identifier": "Contoso", "name": "Contoso Ltd",
             "sites": [{"id": 21, "name": "Main"}, {"id": 22, "name": "Branch"}]},
            {"id": 20, "identifier": "Fabrikam", "name": "Fabrikam", "sites": [{"id": 31, "name": "HQ"}]}
        ],
        "contacts": contacts
    }});
    Simulator::start(SimConfig {
        services: Services {
            connectwise: true,
            ..Services::NONE
        },
        seed: Some(Seed::from_json(&doc.to_string()).unwrap()),
        ..SimConfig::all()
    })
    .await
    .expect("simulator starts")
}

fn basic(private_key: &str) -> String {
    json!({"kind": "basic", "username": "msp+pubkey", "password": private_key}).to_string()
}

async fn setup_with(base_url: &str, client_id: Option<&str>, private_key: &str) -> common::TestHub {
    let t = common::hub().await;
    common::install(&t.hub, "connectwise").await;
    let mut config = json!({"base_url": base_url});
    if let Some(id) = client_id {
        config["client_id"] = json!(id);
    }
    common::loopback_connection(
        &t.hub,
        "psa",
        "connectwise",
        &config.to_string(),
        &[("default", &basic(private_key))],
    )
    .await;
    t
}

async fn setup(sim: &Simulator) -> common::TestHub {
    setup_with(&sim.connectwise_url(), Some(CLIENT_ID), PRIVATE_KEY).await
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
    called.value
}

async fn push(
    hub: &Hub,
    scope: &str,
    batch: Vec<WriteOp>,
) -> Result<Vec<WriteResult>, PluginError> {
    let (record, plugin, ctx) = hub.connection_context("psa").await.unwrap();
    let called = hub
        .runtime()
        .push(&plugin, ctx, &record.config, scope, batch)
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

fn new_contact(first: &str, last: &str, email: &str) -> Contact {
    Contact {
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        display_name: None,
        title: Some("Engineer".into()),
        email: Some(email.into()),
        phone: Some("+1 555 0200".into()),
        mobile: Some("+1 555 0299".into()),
        company: None,
        site: Some(SiteRef {
            id: "22".into(),
            name: Some("Branch".into()),
        }),
        contact_types: vec![ContactTypeRef {
            id: "7".into(),
            name: Some("End User".into()),
        }],
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
    sim.connectwise().get(CONTACTS, id).expect("row exists")
}

fn comm<'a>(row: &'a Value, type_name: &str) -> Vec<&'a Value> {
    row["communicationItems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"]["name"] == type_name)
        .collect()
}

fn finding<'a>(findings: &'a [Finding], check: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no {check} finding in {findings:?}"))
}

// ----------------------------------------------------------------------------------------------
// A recording reverse proxy in front of the simulator: the exact requests the plugin sent.

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path_and_query: String,
    body: Vec<u8>,
}

#[derive(Clone)]
struct Proxy {
    target: String,
    own: Arc<OnceLock<String>>,
    log: Arc<Mutex<Vec<Recorded>>>,
    client: reqwest::Client,
}

async fn forward(
    axum::extract::State(p): axum::extract::State<Proxy>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::http::header;
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 24).await.unwrap();
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    p.log.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        path_and_query: pq.clone(),
        body: bytes.to_vec(),
    });
    let mut out = p
        .client
        .request(parts.method.clone(), format!("{}{pq}", p.target));
    for (k, v) in parts.headers.iter() {
        if k != header::HOST && k != header::CONTENT_LENGTH {
            out = out.header(k, v);
        }
    }
    let resp = out.body(bytes).send().await.unwrap();
    let mut answer = axum::response::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        if k == header::LINK {
            let own = p.own.get().unwrap();
            answer = answer.header(k, v.to_str().unwrap().replace(&p.target, own));
        } else if k != header::CONTENT_LENGTH && k != header::TRANSFER_ENCODING {
            answer = answer.header(k, v);
        }
    }
    answer
        .body(axum::body::Body::from(resp.bytes().await.unwrap()))
        .unwrap()
}

/// Starts a proxy to the simulator; answers its base URL and the log of forwarded requests.
async fn recording_proxy(sim: &Simulator) -> (String, Arc<Mutex<Vec<Recorded>>>) {
    let proxy = Proxy {
        target: sim.base_url().trim_end_matches('/').to_owned(),
        own: Arc::new(OnceLock::new()),
        log: Arc::default(),
        client: reqwest::Client::new(),
    };
    let router = axum::Router::new()
        .fallback(forward)
        .with_state(proxy.clone());
    let url = common::serve(router).await;
    proxy.own.set(url.clone()).unwrap();
    (url, proxy.log)
}

// ----------------------------------------------------------------------------------------------

#[tokio::test]
async fn test_connection_passes_with_good_credentials() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let report = t.hub.test_connection("psa").await.unwrap();
    assert!(
        report.config.iter().all(|f| f.outcome == Outcome::Ok),
        "{:?}",
        report.config
    );
    let findings = report.connection.unwrap();
    for check in [
        "reachable",
        "credentials",
        "read-contacts",
        "communication-types",
    ] {
        assert_eq!(
            finding(&findings, check).outcome,
            Outcome::Ok,
            "{findings:?}"
        );
    }
}

#[tokio::test]
async fn a_bad_private_key_is_an_auth_finding_with_a_remedy() {
    let sim = sim().await;
    let t = setup_with(&sim.connectwise_url(), Some(CLIENT_ID), "wrong-key").await;
    let findings = t
        .hub
        .test_connection("psa")
        .await
        .unwrap()
        .connection
        .unwrap();
    let f = finding(&findings, "credentials");
    assert_eq!(f.outcome, Outcome::Failed);
    assert!(f.cause.as_deref().unwrap().contains("401"), "{f:?}");
    assert!(
        f.remedy
            .as_deref()
            .unwrap()
            .contains("<company id>+<public key>"),
        "{f:?}"
    );
    assert!(
        findings.iter().all(|f| f.check != "read-contacts"),
        "stops at the credentials: {findings:?}"
    );
    assert!(matches!(
        pull(&t.hub, "contacts", None, 10).await,
        Err(PluginError::Auth(_))
    ));
    // A write batch stops at the first refused call.
    let results = push(
        &t.hub,
        "contacts",
        vec![
            op("a", WriteAction::Deactivate, Some("101"), None, &[]),
            op("b", WriteAction::Deactivate, Some("102"), None, &[]),
        ],
    )
    .await
    .unwrap();
    assert!(results
        .iter()
        .all(|r| matches!(r.outcome, Err(PluginError::Auth(_)))));
    assert_eq!(sim.requests().count_matching("PATCH"), 1);
}

#[tokio::test]
async fn a_missing_client_id_is_its_own_finding() {
    let sim = sim().await;
    let t = setup_with(&sim.connectwise_url(), None, PRIVATE_KEY).await;
    let report = t.hub.test_connection("psa").await.unwrap();
    assert_eq!(
        finding(&report.config, "client-id").outcome,
        Outcome::Warning
    );
    let findings = report.connection.unwrap();
    let f = finding(&findings, "client-id");
    assert_eq!(f.outcome, Outcome::Failed);
    assert!(f.remedy.as_deref().unwrap().contains("client_id"), "{f:?}");
}

#[tokio::test]
async fn contacts_page_through_link_headers() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let (items, pages) = pull_all(&t.hub, "contacts:company=10", 2).await;
    assert_eq!(pages, 3, "5 contacts at 2 a page");
    let mut ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["101", "102", "103", "104", "105"], "each once");
    let c = contact(items.iter().find(|i| i.id == "103").unwrap());
    assert_eq!(c.first_name.as_deref(), Some("Ann3"));
    assert_eq!(c.display_name.as_deref(), Some("Ann3 Lee"));
    assert_eq!(c.email.as_deref(), Some("ann3@contoso.com"));
    assert_eq!(c.phone.as_deref(), Some("+1 555 0103"));
    assert_eq!(c.company.as_ref().unwrap().id, "10");
    assert_eq!(c.site.as_ref().unwrap().id, "21");
    assert_eq!(c.contact_types[0].id, "1");
    assert!(c.active);
    assert!(
        items.iter().all(|i| i.version.is_some()),
        "_info/lastUpdated"
    );
    let stats = sim.requests();
    assert_eq!(
        stats.count_matching("GET /v4_6_release/apis/3.0/company/contacts"),
        3,
        "{:?}",
        stats.routes
    );

    let (all, pages) = pull_all(&t.hub, "contacts", 1000).await;
    assert_eq!((all.len(), pages), (6, 1));
    assert!(!contact(all.iter().find(|i| i.id == "201").unwrap()).active);

    let (filtered, _) = pull_all(&t.hub, "contacts:conditions=inactiveFlag = true", 10).await;
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0].id, "201");
}

#[tokio::test]
async fn companies_sites_and_contact_types() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let (companies, _) = pull_all(&t.hub, "companies", 1).await;
    let names: Vec<_> = companies
        .iter()
        .map(|i| match &i.body {
            Some(ItemBody::Company(c)) => c.name.clone().unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(names, ["Contoso Ltd", "Fabrikam"]);
    let (sites, _) = pull_all(&t.hub, "sites:company=10", 1000).await;
    let sites: Vec<_> = sites
        .iter()
        .map(|i| match &i.body {
            Some(ItemBody::Site(s)) => (s.id.clone(), s.name.clone().unwrap()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        sites,
        [("21".into(), "Main".into()), ("22".into(), "Branch".into())]
    );
    let (types, _) = pull_all(&t.hub, "contact-types", 1000).await;
    assert!(types.iter().any(|i| matches!(&i.body,
        Some(ItemBody::ContactType(c)) if c.id == "7" && c.name.as_deref() == Some("End User"))));
    assert!(matches!(
        pull(&t.hub, "sites", None, 10).await,
        Err(PluginError::Invalid(_))
    ));
}

#[tokio::test]
async fn lookup_by_email_and_id() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let found = lookup(
        &t.hub,
        &[
            "email:ANN2@Contoso.com",
            "email:nobody@contoso.com",
            "id:201",
        ],
    )
    .await
    .unwrap();
    let mut ids: Vec<_> = found.iter().map(|i| i.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["102", "201"]);
    // A phone number is not an e-mail address.
    let none = lookup(&t.hub, &["email:+1 555 0101"]).await.unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn create_with_communication_items_contact_type_and_site() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let mut nameless = new_contact("", "Nobody", "nobody@contoso.com");
    nameless.first_name = None;
    let results = push(
        &t.hub,
        "contacts:company=10",
        vec![
            op(
                "create",
                WriteAction::Create,
                None,
                Some(new_contact("Bo", "Ek", "bo@contoso.com")),
                &[],
            ),
            op("nameless", WriteAction::Create, None, Some(nameless), &[]),
        ],
    )
    .await
    .expect("the batch runs");
    let ok = results[0].outcome.as_ref().expect("created");
    assert!(ok.version.is_some());
    let r = row(&sim, ok.target_id.parse().unwrap());
    assert_eq!(r["firstName"], "Bo");
    assert_eq!(r["lastName"], "Ek");
    assert_eq!(r["title"], "Engineer");
    assert_eq!(r["company"]["id"], 10);
    assert_eq!(r["site"]["id"], 22);
    // ConnectWise fills in the reference's name.
    assert_eq!(r["types"], json!([{"id": 7, "name": "End User"}]));
    assert_eq!(r["inactiveFlag"], false);
    let email = comm(&r, "Email");
    assert_eq!(email.len(), 1);
    assert_eq!(email[0]["value"], "bo@contoso.com");
    assert_eq!(email[0]["type"]["id"], 1);
    assert_eq!(email[0]["communicationType"], "Email");
    assert_eq!(email[0]["defaultFlag"], true);
    assert_eq!(comm(&r, "Direct")[0]["value"], "+1 555 0200");
    assert_eq!(comm(&r, "Direct")[0]["type"]["id"], 2);
    assert_eq!(comm(&r, "Cell")[0]["value"], "+1 555 0299");
    assert_eq!(comm(&r, "Cell")[0]["type"]["id"], 4);
    assert_eq!(comm(&r, "Cell")[0]["communicationType"], "Phone");

    match &results[1].outcome {
        // ConnectWise's own validation, its field named canonically.
        Err(PluginError::Invalid(i)) => {
            assert_eq!(i.fields[0].field, "first_name", "{i:?}");
            assert!(i.message.contains("firstName field is required"), "{i:?}");
        }
        other => panic!("expected invalid, got {other:?}"),
    }

    // It is found by e-mail now, and reads back as it was written.
    let found = lookup(&t.hub, &["email:bo@contoso.com"]).await.unwrap();
    assert_eq!(found[0].id, ok.target_id);
    let c = contact(&found[0]);
    assert_eq!(c.mobile.as_deref(), Some("+1 555 0299"));
    assert_eq!(c.site.as_ref().unwrap().id, "22");
    assert_eq!(c.contact_types[0].id, "7");

    // No company in the body and none in the scope: refused before anything is sent.
    let results = push(
        &t.hub,
        "contacts",
        vec![op(
            "c",
            WriteAction::Create,
            None,
            Some(new_contact("Cy", "Z", "cy@contoso.com")),
            &[],
        )],
    )
    .await
    .unwrap();
    assert!(
        matches!(&results[0].outcome, Err(PluginError::Invalid(i)) if i.fields[0].field == "company")
    );
}

#[tokio::test]
async fn update_sends_a_json_patch_of_the_changed_fields_only() {
    let sim = sim().await;
    let (proxy, log) = recording_proxy(&sim).await;
    let t = setup_with(
        &format!("{proxy}/v4_6_release/apis/3.0"),
        Some(CLIENT_ID),
        PRIVATE_KEY,
    )
    .await;
    let before = contact(&lookup(&t.hub, &["email:ann1@contoso.com"]).await.unwrap()[0]).clone();
    // Someone edits the contact in ConnectWise meanwhile: the update must not overwrite it.
    let mut edited = row(&sim, 101);
    edited["lastName"] = json!("Lee-Edited");
    sim.connectwise().insert(CONTACTS, edited);
    log.lock().unwrap().clear();

    let mut desired = before.clone();
    desired.title = Some("CFO".into());
    desired.mobile = Some("+1 555 0111".into());
    desired.phone = None; // blank in Microsoft 365: never clears the PSA value
    desired.contact_types = vec![ContactTypeRef {
        id: "7".into(),
        name: None,
    }];
    let results = push(
        &t.hub,
        "contacts",
        vec![op(
            "update",
            WriteAction::Update,
            Some("101"),
            Some(desired),
            &["title", "mobile", "phone", "contact_types"],
        )],
    )
    .await
    .unwrap();
    assert_eq!(results[0].outcome.as_ref().unwrap().target_id, "101");

    let log = log.lock().unwrap().clone();
    let patches: Vec<&Recorded> = log.iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patches.len(), 1, "{log:?}");
    assert_eq!(
        patches[0].path_and_query,
        "/v4_6_release/apis/3.0/company/contacts/101"
    );
    let body: Value = serde_json::from_slice(&patches[0].body).unwrap();
    let ops = body.as_array().expect("a JSON-Patch array");
    let paths: Vec<&str> = ops.iter().map(|o| o["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["title", "types", "communicationItems"], "{body}");
    assert!(ops.iter().all(|o| o["op"] == "replace"));
    assert_eq!(ops[0]["value"], "CFO");
    let types: Vec<i64> = ops[1]["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(types, [1, 7], "contact types are only added");
    assert!(!body.to_string().contains("lastName"));
    assert!(!body.to_string().contains("firstName"));

    let r = row(&sim, 101);
    assert_eq!(r["title"], "CFO");
    assert_eq!(
        r["lastName"], "Lee-Edited",
        "an unlisted field is left alone"
    );
    assert_eq!(r["firstName"], "Ann1");
    assert_eq!(comm(&r, "Direct")[0]["value"], "+1 555 0101", "kept");
    assert_eq!(comm(&r, "Cell")[0]["value"], "+1 555 0111");
    assert_eq!(comm(&r, "Email")[0]["value"], "ann1@contoso.com");
    assert_eq!(r["communicationItems"].as_array().unwrap().len(), 3);

    // The same e-mail change again: the default Email item changes in place.
    let mut email = before.clone();
    email.email = Some("ann.one@contoso.com".into());
    let results = push(
        &t.hub,
        "contacts",
        vec![op(
            "email",
            WriteAction::Update,
            Some("101"),
            Some(email),
            &["email"],
        )],
    )
    .await
    .unwrap();
    results[0].outcome.as_ref().unwrap();
    let r = row(&sim, 101);
    assert_eq!(comm(&r, "Email").len(), 1);
    assert_eq!(comm(&r, "Email")[0]["value"], "ann.one@contoso.com");
}

#[tokio::test]
async fn deactivate_and_reactivate() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let results = push(
        &t.hub,
        "contacts",
        vec![
            op(
                "deactivate",
                WriteAction::Deactivate,
                Some("102"),
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
            op(
                "missing",
                WriteAction::Deactivate,
                Some("999999"),
                None,
                &[],
            ),
        ],
    )
    .await
    .unwrap();
    let outcome = |id: &str| &results.iter().find(|r| r.op_id == id).unwrap().outcome;
    outcome("deactivate").as_ref().unwrap();
    outcome("reactivate").as_ref().unwrap();
    assert!(
        matches!(outcome("missing"), Err(PluginError::NotFound(_))),
        "{:?}",
        outcome("missing")
    );
    assert_eq!(row(&sim, 102)["inactiveFlag"], true);
    assert_eq!(row(&sim, 102)["firstName"], "Ann2", "nothing else changed");
    assert_eq!(row(&sim, 201)["inactiveFlag"], false);
    let (all, _) = pull_all(&t.hub, "contacts", 1000).await;
    assert!(!contact(all.iter().find(|i| i.id == "102").unwrap()).active);
    assert!(contact(all.iter().find(|i| i.id == "201").unwrap()).active);
}

#[tokio::test]
async fn a_429_with_retry_after_is_throttled() {
    let sim = sim().await;
    let t = setup(&sim).await;
    sim.add_fault(
        FaultRule::sequence("PATCH /v4_6_release/apis/3.0/company/contacts/*", &[429])
            .with_retry_after("3"),
    )
    .unwrap();
    let results = push(
        &t.hub,
        "contacts",
        vec![
            op("a", WriteAction::Deactivate, Some("101"), None, &[]),
            op("b", WriteAction::Deactivate, Some("102"), None, &[]),
        ],
    )
    .await
    .unwrap();
    for r in &results {
        match &r.outcome {
            Err(PluginError::Throttled(th)) => assert_eq!(th.retry_after_ms, Some(3000)),
            other => panic!("expected throttled, got {other:?}"),
        }
    }
    assert_eq!(
        sim.requests().count_matching("PATCH"),
        1,
        "nothing after the throttled op"
    );
    assert_eq!(row(&sim, 102)["inactiveFlag"], false);

    // Reads too; a 503 with Retry-After is throttled, without it transient.
    sim.add_fault(
        FaultRule::sequence("GET /v4_6_release/apis/3.0/company/contacts", &[429, 503])
            .with_retry_after("2"),
    )
    .unwrap();
    for _ in 0..2 {
        match pull(&t.hub, "contacts", None, 100).await {
            Err(PluginError::Throttled(th)) => assert_eq!(th.retry_after_ms, Some(2000)),
            other => panic!("expected throttled, got {other:?}"),
        }
    }
    sim.add_fault(
        FaultRule::sequence("GET /v4_6_release/apis/3.0/company/contacts", &[503])
            .with_retry_after(""),
    )
    .unwrap();
    assert!(matches!(
        pull(&t.hub, "contacts", None, 100).await,
        Err(PluginError::Transient(_))
    ));
    assert!(pull(&t.hub, "contacts", None, 100).await.is_ok());
}

#[tokio::test]
async fn no_secret_reaches_what_the_plugin_sees() {
    let sim = sim().await;
    let t = setup(&sim).await;
    let (record, _, _) = t.hub.connection_context("psa").await.unwrap();
    for secret in [PRIVATE_KEY, "pubkey", "msp+"] {
        assert!(
            !record.config.contains(secret),
            "plugin-visible config carries {secret:?}: {}",
            record.config
        );
    }
    // Work through every operation, then look at everything the plugin could keep.
    pull_all(&t.hub, "contacts", 2).await;
    lookup(&t.hub, &["email:ann1@contoso.com"]).await.unwrap();
    push(
        &t.hub,
        "contacts:company=10",
        vec![op(
            "c",
            WriteAction::Create,
            None,
            Some(new_contact("Sec", "Ret", "sec@contoso.com")),
            &[],
        )],
    )
    .await
    .unwrap();
    let state = t.hub.store().load_state("psa").await.unwrap();
    let dump = format!("{state:?}");
    assert!(
        !dump.contains(PRIVATE_KEY) && !dump.contains("pubkey"),
        "{dump}"
    );

    // A configuration carrying a key is refused when the connection is added: the plugin's
    // schema knows no such field (its validate-config also points at the credential slot).
    let t2 = common::hub().await;
    common::install(&t2.hub, "connectwise").await;
    let leaky =
        json!({"base_url": sim.connectwise_url(), "client_id": CLIENT_ID, "private_key": "oops"});
    let err = t2
        .hub
        .add_connection(syncbridge::hub::NewConnection {
            id: "psa".into(),
            plugin_id: "connectwise".into(),
            config: leaky.to_string(),
            allowed_hosts: vec!["127.0.0.1".into()],
            allow_private_network: true,
            max_concurrent: None,
            credentials: Default::default(),
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("private_key"), "{err}");
    assert!(!err.to_string().contains("oops"), "{err}");
    assert!(t2.hub.store().get_connection("psa").await.is_err());
    let f = &t2
        .hub
        .runtime()
        .validate_config(
            &t2.hub.plugin("connectwise").await.unwrap(),
            &leaky.to_string(),
        )
        .await
        .unwrap()[0];
    assert_eq!(f.outcome, Outcome::Failed);
    assert!(f.remedy.as_deref().unwrap().contains("credential"), "{f:?}");
}
