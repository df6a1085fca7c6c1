//! The `dynamics` connector through the real runtime against the Dataverse simulator, with the
//! bearer token from the simulated Entra endpoint: test-connection (good and refused tokens),
//! 1,200 mailboxes read in pages of 500 through `@odata.nextLink`, lookups, a status update
//! written with `PATCH` and seen in the simulator's rows, and the error classes of throttled,
//! failing and garbled answers.

use crate::common;

use serde_json::{json, Value};
use std::collections::BTreeSet;
use syncbridge::hub::Hub;
use syncbridge::model::{ChannelStatus, Item, ItemBody, ItemKind, Mailbox, PluginError};
use syncbridge::model::{Finding, Outcome, Page, PullRequest, WriteAction, WriteOp, WriteResult};
use syncbridge_sim::{FaultRule, Seed, Services, SimConfig, Simulator};

const TENANT: &str = "contoso.onmicrosoft.com";
const TENANT_ID: &str = "11111111-1111-4111-8111-111111111111";
const CLIENT: &str = "33333333-3333-4333-8333-333333333333";
const SECRET: &str = "dyn-s3cret";
const CONN: &str = "crm";
/// Mailboxes with an address, all active.
const MAILBOXES: usize = 1200;
/// Where the active row without an address sits (on the second page).
const NO_ADDRESS_AT: usize = 600;
const MAILBOX_ROUTE: &str = "GET /api/data/v9.2/mailboxes*";
const UNKNOWN_ID: &str = "6f1c6a52-6a3f-4d1e-9a0b-1c2d3e4f5a61";

fn address(n: usize) -> String {
    format!("user{n:04}@contoso.com")
}

fn mailbox_row(n: usize) -> Value {
    json!({
        "name": format!("User {n}"),
        "emailaddress": address(n),
        "incomingemailstatus": n % 3,
        "outgoingemailstatus": (n + 1) % 3,
        "actstatus": (n + 2) % 3,
        "emailrouteraccessapproval": if n.is_multiple_of(4) { 2 } else { 1 },
        // Every fifth mailbox is enabled for nothing; the next one only for appointments,
        // contacts and tasks (ACT).
        "enabledforincomingemail": n % 5 > 1,
        "enabledforoutgoingemail": n % 5 > 1,
        "enabledforact": !n.is_multiple_of(5),
    })
}

fn seed() -> Seed {
    let mut rows: Vec<Value> = (0..MAILBOXES).map(mailbox_row).collect();
    rows.insert(
        NO_ADDRESS_AT,
        json!({"name": "Support queue (no address)", "emailrouteraccessapproval": 1}),
    );
    rows.push(json!({"name": "Gone", "emailaddress": "inactive@contoso.com", "statecode": 1, "statuscode": 2}));
    rows.push(json!({"name": "Pat O'Brien", "emailaddress": "o'brien@contoso.com", "statecode": 1, "statuscode": 2}));
    let doc = json!({
        "graph": {"tenants": [{
            "id": TENANT_ID, "domain": TENANT,
            "apps": [{"client_id": CLIENT, "client_secret": SECRET}],
            "users": []
        }]},
        "dynamics": {"rows": {"mailboxes": rows}}
    });
    Seed::from_json(&doc.to_string()).unwrap()
}

async fn sim() -> Simulator {
    Simulator::start(SimConfig {
        services: Services {
            graph: true,
            dynamics: true,
            ..Services::NONE
        },
        seed: Some(seed()),
        ..SimConfig::all()
    })
    .await
    .expect("simulator starts")
}

/// The app registration's client credentials, for the environment as the token's audience,
/// exactly as a real connection would hold them.
fn credential(sim: &Simulator, secret: &str) -> String {
    json!({
        "kind": "oauth2-client-credentials",
        "token_url": sim.token_url(TENANT),
        "client_id": CLIENT,
        "client_secret": secret,
        "scope": "https://contoso.crm.dynamics.com/.default",
    })
    .to_string()
}

async fn setup(sim: &Simulator, secret: &str) -> common::TestHub {
    let t = common::hub().await;
    common::install(&t.hub, "dynamics").await;
    let config = json!({"url": sim.base_url()}).to_string();
    common::loopback_connection(
        &t.hub,
        CONN,
        "dynamics",
        &config,
        &[("default", &credential(sim, secret))],
    )
    .await;
    t
}

async fn pull(hub: &Hub, cursor: Option<String>) -> Result<Page, PluginError> {
    let (record, plugin, ctx) = hub.connection_context(CONN).await.unwrap();
    let request = PullRequest {
        scope: "mailboxes".into(),
        cursor,
        max_items: 5000,
    };
    let called = hub
        .runtime()
        .pull(&plugin, ctx, &record.config, request)
        .await
        .expect("no trap");
    called.value
}

async fn lookup(hub: &Hub, keys: &[&str]) -> Result<Vec<Item>, PluginError> {
    let (record, plugin, ctx) = hub.connection_context(CONN).await.unwrap();
    let keys = keys.iter().map(|k| k.to_string()).collect();
    let called = hub
        .runtime()
        .lookup_items(&plugin, ctx, &record.config, "mailboxes", keys)
        .await
        .expect("no trap");
    called.value
}

async fn push(hub: &Hub, batch: Vec<WriteOp>) -> Result<Vec<WriteResult>, PluginError> {
    let (record, plugin, ctx) = hub.connection_context(CONN).await.unwrap();
    let called = hub
        .runtime()
        .push(&plugin, ctx, &record.config, "mailboxes", batch)
        .await
        .expect("no trap");
    called.value
}

async fn findings(hub: &Hub) -> Vec<Finding> {
    let report = hub.test_connection(CONN).await.unwrap();
    assert!(
        report.config.iter().all(|f| f.outcome == Outcome::Ok),
        "{:?}",
        report.config
    );
    report.connection.expect("checks ran")
}

fn finding<'a>(findings: &'a [Finding], check: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no {check} finding in {findings:?}"))
}

fn mailbox(item: &Item) -> &Mailbox {
    match &item.body {
        Some(ItemBody::Mailbox(m)) => m,
        other => panic!("expected a mailbox, got {other:?}"),
    }
}

fn status(code: usize) -> ChannelStatus {
    match code {
        0 => ChannelStatus::NotRun,
        1 => ChannelStatus::Success,
        2 => ChannelStatus::Failure,
        _ => unreachable!(),
    }
}

/// The simulator's row of an address.
fn row_of(sim: &Simulator, email: &str) -> Value {
    sim.dynamics()
        .rows("mailboxes")
        .into_iter()
        .find(|r| r["emailaddress"] == email)
        .unwrap_or_else(|| panic!("no row for {email}"))
}

fn id_of(sim: &Simulator, email: &str) -> String {
    row_of(sim, email)["mailboxid"].as_str().unwrap().to_owned()
}

fn update(op_id: &str, target: &str, m: Mailbox, fields: &[&str]) -> WriteOp {
    WriteOp {
        op_id: op_id.into(),
        action: WriteAction::Update,
        target_id: Some(target.into()),
        body: Some(ItemBody::Mailbox(m)),
        fields: fields.iter().map(|f| f.to_string()).collect(),
    }
}

fn desired(email: &str) -> Mailbox {
    Mailbox {
        address: email.into(),
        display_name: None,
        enabled: false,
        approved: true,
        incoming_status: ChannelStatus::Success,
        outgoing_status: ChannelStatus::Failure,
        calendar_status: ChannelStatus::Success,
    }
}

#[tokio::test]
async fn test_connection_passes_with_an_entra_token() {
    let sim = sim().await;
    let t = setup(&sim, SECRET).await;
    let f = findings(&t.hub).await;
    for check in ["endpoint", "credentials", "read-mailboxes"] {
        assert_eq!(finding(&f, check).outcome, Outcome::Ok, "{f:?}");
    }
    let stats = sim.requests();
    assert_eq!(
        stats.count_matching("GET /api/data/v9.2/WhoAmI"),
        1,
        "{:?}",
        stats.routes
    );
}

#[tokio::test]
async fn a_refused_token_fails_the_credentials_check_with_a_remedy() {
    let sim = sim().await;
    // Entra refuses the secret: the token request fails before Dataverse is asked.
    let t = setup(&sim, "not-the-secret").await;
    let f = findings(&t.hub).await;
    let c = finding(&f, "credentials");
    assert_eq!(c.outcome, Outcome::Failed, "{f:?}");
    let cause = c.cause.as_deref().unwrap();
    assert!(cause.contains("AADSTS7000215"), "{c:?}");
    assert!(!cause.contains("not-the-secret"), "the secret never shows");
    let remedy = c.remedy.as_deref().unwrap();
    assert!(
        remedy.contains("client secret") && remedy.contains("application user"),
        "{c:?}"
    );
    assert_eq!(sim.requests().count_matching("/api/data/"), 0);
    assert!(matches!(
        pull(&t.hub, None).await,
        Err(PluginError::Auth(_))
    ));

    // Dataverse refuses the token (twice: the host fetches a fresh token once after a 401).
    let t = setup(&sim, SECRET).await;
    sim.add_fault(FaultRule::sequence(
        "GET /api/data/v9.2/WhoAmI",
        &[401, 401],
    ))
    .unwrap();
    let f = findings(&t.hub).await;
    assert_eq!(finding(&f, "endpoint").outcome, Outcome::Ok);
    let c = finding(&f, "credentials");
    assert_eq!(c.outcome, Outcome::Failed, "{f:?}");
    assert!(
        c.cause
            .as_deref()
            .unwrap()
            .starts_with("Dataverse refused the token: HTTP 401"),
        "{c:?}"
    );
    assert!(c.remedy.as_deref().unwrap().contains("tenant"), "{c:?}");
    assert!(f.iter().all(|f| f.check != "read-mailboxes"), "{f:?}");

    sim.add_fault(FaultRule::sequence(MAILBOX_ROUTE, &[401, 401]))
        .unwrap();
    match pull(&t.hub, None).await {
        Err(PluginError::Auth(m)) => assert!(m.contains("Dataverse refused the token"), "{m}"),
        other => panic!("expected auth, got {other:?}"),
    }
}

#[tokio::test]
async fn twelve_hundred_mailboxes_come_in_three_pages_of_500() {
    let sim = sim().await;
    let t = setup(&sim, SECRET).await;
    let mut cursor = None;
    let mut pages = Vec::new();
    loop {
        let page = pull(&t.hub, cursor).await.expect("page");
        assert!(page.full, "every pass is a full read");
        cursor = page.cursor.clone();
        let more = page.more;
        pages.push(page);
        if !more {
            break;
        }
        assert!(pages.len() < 10, "runaway paging");
        let c = cursor.as_deref().expect("a next link");
        assert!(
            c.starts_with(&format!("{}/mailboxes?", sim.dynamics_url()))
                && c.contains("$skiptoken="),
            "{c}"
        );
    }
    assert_eq!(pages.len(), 3);
    let sizes: Vec<usize> = pages.iter().map(|p| p.items.len()).collect();
    assert_eq!(
        sizes,
        [500, 499, 201],
        "500 rows a page; the second page's row without an address is skipped"
    );
    assert_eq!(cursor, None, "the last page has no next link");
    assert_eq!(
        sim.requests()
            .count_matching("GET /api/data/v9.2/mailboxes"),
        3
    );

    let items: Vec<&Item> = pages.iter().flat_map(|p| &p.items).collect();
    let addresses: BTreeSet<&str> = items.iter().map(|i| mailbox(i).address.as_str()).collect();
    assert_eq!(addresses.len(), MAILBOXES, "every address once");
    let expected: BTreeSet<String> = (0..MAILBOXES).map(address).collect();
    assert!(addresses.iter().all(|a| expected.contains(*a)));
    assert!(
        !addresses.contains("inactive@contoso.com"),
        "statecode 0 only"
    );

    for n in [0, 1, 2, 3, 7, 599, 600, 601, 1199] {
        let email = address(n);
        let item = items.iter().find(|i| mailbox(i).address == email).unwrap();
        let row = row_of(&sim, &email);
        assert_eq!(item.id, row["mailboxid"].as_str().unwrap());
        assert_eq!(
            item.version.as_deref(),
            Some(format!("W/\"{}\"", row["versionnumber"]).as_str())
        );
        let m = mailbox(item);
        assert_eq!(
            m.display_name.as_deref(),
            Some(format!("User {n}").as_str())
        );
        assert_eq!(m.incoming_status, status(n % 3), "{email}");
        assert_eq!(m.outgoing_status, status((n + 1) % 3), "{email}");
        assert_eq!(m.calendar_status, status((n + 2) % 3), "{email}");
        assert_eq!(m.approved, n % 4 != 0, "{email}");
        assert_eq!(m.enabled, n % 5 != 0, "{email}");
    }

    // A cursor that leaves the environment is refused before anything is sent.
    let before = sim.requests().count_matching("/api/data/");
    match pull(
        &t.hub,
        Some("http://127.0.0.1:1/api/data/v9.2/mailboxes?$skiptoken=x".into()),
    )
    .await
    {
        Err(PluginError::Invalid(i)) => assert_eq!(i.fields[0].field, "cursor", "{i:?}"),
        other => panic!("expected invalid, got {other:?}"),
    }
    assert_eq!(sim.requests().count_matching("/api/data/"), before);
}

#[tokio::test]
async fn lookups_find_mailboxes_by_address_and_by_id() {
    let sim = sim().await;
    let t = setup(&sim, SECRET).await;
    let id = id_of(&sim, &address(5));
    // Lookups are not limited to active rows: O'Brien's mailbox is inactive.
    let items = lookup(
        &t.hub,
        &[
            "email:O'Brien@contoso.com",
            "email:USER0007@contoso.com",
            &id,
            UNKNOWN_ID,
            "email:nobody@contoso.com",
        ],
    )
    .await
    .unwrap();
    let mut found: Vec<&str> = items.iter().map(|i| mailbox(i).address.as_str()).collect();
    found.sort();
    assert_eq!(
        found,
        [
            "o'brien@contoso.com",
            "user0005@contoso.com",
            "user0007@contoso.com"
        ],
        "unknown keys are simply absent"
    );
    assert!(matches!(
        lookup(&t.hub, &["nonsense"]).await,
        Err(PluginError::Invalid(_))
    ));
}

#[tokio::test]
async fn a_push_updates_statuses_and_disables_the_mailbox() {
    let sim = sim().await;
    let t = setup(&sim, SECRET).await;
    let email = address(2); // statuses 2/0/1, enabled, approved
    let id = id_of(&sim, &email);
    let rows_before = sim.dynamics().rows("mailboxes").len();
    let started = jiff::Timestamp::now();
    let mut create = update("create", &id, desired(&email), &[]);
    create.action = WriteAction::Create;
    let results = push(
        &t.hub,
        vec![
            update(
                "write",
                &id,
                desired(&email),
                &[
                    "incoming_status",
                    "outgoing_status",
                    "calendar_status",
                    "enabled",
                ],
            ),
            update("missing", UNKNOWN_ID, desired(&email), &["enabled"]),
            update("bad-field", &id, desired(&email), &["address"]),
            create,
        ],
    )
    .await
    .unwrap();
    assert_eq!(results.len(), 4, "one result per op");
    let ops: Vec<&str> = results.iter().map(|r| r.op_id.as_str()).collect();
    assert_eq!(ops, ["write", "missing", "bad-field", "create"]);

    let row = row_of(&sim, &email);
    let ok = results[0].outcome.as_ref().expect("written");
    assert_eq!(ok.target_id, id);
    assert_eq!(
        ok.version.as_deref(),
        Some(format!("W/\"{}\"", row["versionnumber"]).as_str()),
        "the new etag"
    );
    assert_eq!(row["incomingemailstatus"], 1);
    assert_eq!(row["outgoingemailstatus"], 2);
    assert_eq!(row["actstatus"], 1);
    for f in [
        "enabledforincomingemail",
        "enabledforoutgoingemail",
        "enabledforact",
    ] {
        assert_eq!(row[f], false, "{f}");
    }
    assert_eq!(row["testemailconfigurationscheduled"], false);
    let stamped: jiff::Timestamp = row["testmailboxaccesscompletedon"]
        .as_str()
        .expect("testmailboxaccesscompletedon set")
        .parse()
        .unwrap();
    let secs = stamped.duration_since(started).as_secs();
    assert!((-2..60).contains(&secs), "{stamped} vs {started}");
    assert_eq!(row["name"], "User 2", "unnamed fields are untouched");
    assert_eq!(row["emailrouteraccessapproval"], 1);

    // If-Match: * — a missing row is not found, never created by the PATCH (an upsert).
    assert!(
        matches!(&results[1].outcome, Err(PluginError::NotFound(_))),
        "{:?}",
        results[1]
    );
    assert!(sim.dynamics().get("mailboxes", UNKNOWN_ID).is_none());
    assert_eq!(sim.dynamics().rows("mailboxes").len(), rows_before);
    match &results[2].outcome {
        Err(PluginError::Invalid(i)) => assert_eq!(i.fields[0].field, "address"),
        other => panic!("expected invalid, got {other:?}"),
    }
    assert!(matches!(
        &results[3].outcome,
        Err(PluginError::Unsupported(_))
    ));
    assert_eq!(
        sim.requests()
            .count_matching("PATCH /api/data/v9.2/mailboxes"),
        2,
        "only the two valid updates are sent"
    );

    // The mailbox reads back as written.
    let back = lookup(&t.hub, &[&format!("email:{email}")]).await.unwrap();
    let m = mailbox(&back[0]);
    assert!(!m.enabled && m.approved);
    assert_eq!(
        (m.incoming_status, m.outgoing_status, m.calendar_status),
        (
            ChannelStatus::Success,
            ChannelStatus::Failure,
            ChannelStatus::Success
        )
    );
    assert_eq!(back[0].version, ok.version);

    // Approval alone: pending approval is 2, and no status stamp.
    let other = address(3);
    let other_id = id_of(&sim, &other);
    let results = push(
        &t.hub,
        vec![update(
            "unapprove",
            &other_id,
            Mailbox {
                approved: false,
                ..desired(&other)
            },
            &["approved"],
        )],
    )
    .await
    .unwrap();
    assert!(results[0].outcome.is_ok(), "{results:?}");
    let row = row_of(&sim, &other);
    assert_eq!(row["emailrouteraccessapproval"], 2);
    assert!(row["testmailboxaccesscompletedon"].is_null());
    assert_eq!(row["enabledforact"], true);
}

#[tokio::test]
async fn throttling_server_errors_and_garbled_answers_are_classified() {
    let sim = sim().await;
    let t = setup(&sim, SECRET).await;

    sim.add_fault(FaultRule::sequence(MAILBOX_ROUTE, &[429]).with_retry_after("2.5"))
        .unwrap();
    match pull(&t.hub, None).await {
        Err(PluginError::Throttled(th)) => assert_eq!(th.retry_after_ms, Some(2500)),
        other => panic!("expected throttled, got {other:?}"),
    }
    for status in [500, 502] {
        sim.add_fault(FaultRule::sequence(MAILBOX_ROUTE, &[status]))
            .unwrap();
        match pull(&t.hub, None).await {
            Err(PluginError::Transient(m)) => assert!(m.contains(&status.to_string()), "{m}"),
            other => panic!("{status}: expected transient, got {other:?}"),
        }
    }
    // A 503 without Retry-After is transient too.
    sim.add_fault(FaultRule::sequence(MAILBOX_ROUTE, &[503]).with_retry_after(""))
        .unwrap();
    assert!(matches!(
        pull(&t.hub, None).await,
        Err(PluginError::Transient(_))
    ));
    sim.add_fault(FaultRule::drop_connection(MAILBOX_ROUTE).times(1))
        .unwrap();
    assert!(matches!(
        pull(&t.hub, None).await,
        Err(PluginError::Transient(_))
    ));
    sim.add_fault(FaultRule::malformed(MAILBOX_ROUTE).times(1))
        .unwrap();
    match pull(&t.hub, None).await {
        Err(PluginError::Remote(r)) => {
            assert!(r.message.contains("not valid JSON"), "{r:?}")
        }
        other => panic!("expected remote, got {other:?}"),
    }
    // The faults are spent: the same call succeeds.
    assert_eq!(pull(&t.hub, None).await.unwrap().items.len(), 500);

    // Writes: a throttle stops the batch, each op carries its Retry-After.
    let a = id_of(&sim, &address(10));
    let b = id_of(&sim, &address(11));
    sim.add_fault(
        FaultRule::sequence("PATCH /api/data/v9.2/mailboxes*", &[429]).with_retry_after("3"),
    )
    .unwrap();
    let results = push(
        &t.hub,
        vec![
            update("a", &a, desired(&address(10)), &["enabled"]),
            update("b", &b, desired(&address(11)), &["enabled"]),
        ],
    )
    .await
    .unwrap();
    for r in &results {
        match &r.outcome {
            Err(PluginError::Throttled(th)) => assert_eq!(th.retry_after_ms, Some(3000)),
            other => panic!("{}: expected throttled, got {other:?}", r.op_id),
        }
    }
    assert_eq!(
        sim.requests()
            .count_matching("PATCH /api/data/v9.2/mailboxes"),
        1
    );
    assert_eq!(
        row_of(&sim, &address(11))["enabledforact"],
        true,
        "not sent"
    );
    // A 5xx fails only its op.
    sim.add_fault(FaultRule::sequence(
        "PATCH /api/data/v9.2/mailboxes*",
        &[500],
    ))
    .unwrap();
    let results = push(
        &t.hub,
        vec![
            update("a", &a, desired(&address(10)), &["enabled"]),
            update("b", &b, desired(&address(11)), &["enabled"]),
        ],
    )
    .await
    .unwrap();
    assert!(matches!(
        &results[0].outcome,
        Err(PluginError::Transient(_))
    ));
    assert!(results[1].outcome.is_ok(), "{results:?}");
    assert_eq!(row_of(&sim, &address(11))["enabledforact"], false);
    // A 400 is invalid, with Dataverse's own message.
    sim.add_fault(FaultRule::sequence(
        "PATCH /api/data/v9.2/mailboxes*",
        &[400],
    ))
    .unwrap();
    let results = push(
        &t.hub,
        vec![update("a", &a, desired(&address(10)), &["enabled"])],
    )
    .await
    .unwrap();
    match &results[0].outcome {
        Err(PluginError::Invalid(i)) => {
            assert!(i.message.contains("An unexpected error occurred."), "{i:?}")
        }
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn describe_names_reads_writes_and_slot() {
    let t = common::hub().await;
    common::install(&t.hub, "dynamics").await;
    let plugin = t.hub.plugin("dynamics").await.expect("installed");
    let d = t.hub.runtime().describe(&plugin).await.unwrap();
    assert_eq!(d.name, "Dynamics 365 (Dataverse Web API)");
    assert_eq!(d.credential_slots, ["default"]);
    let kinds = [
        ItemKind::Mailbox,
        ItemKind::EmailMessage,
        ItemKind::Appointment,
        ItemKind::Task,
        ItemKind::Contact,
    ];
    assert_eq!(d.reads, kinds);
    assert_eq!(d.writes, kinds);
}
