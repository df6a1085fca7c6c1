//! The sync owner (WIT 0.1.5): the requests as Graph documents them (stubbed host), and reading
//! and writing the mark against the Graph simulator over loopback, including a mailbox another
//! organization marked and the mailboxes Graph refuses.

use super::*;
use crate::Graph;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use syncbridge_sdk::bindings::connector::syncbridge::plugin::http::{
    Method as WitMethod, Request as WitRequest, Response as WitResponse,
};
use syncbridge_sdk::exports;
use syncbridge_sdk::testing::{response, send_loopback, with_http};
use syncbridge_sim::{Seed, Services, SimConfig, Simulator};

const CFG: &str = r#"{"graph_url":"https://graph.test/v1.0"}"#;
const TENANT: &str = "contoso.onmicrosoft.com";
const E3: &str = "c7df2760-2c81-4ef7-b578-5b5392b571df";
const ALICE: &str = "alice@contoso.onmicrosoft.com";
const BOB: &str = "bob@contoso.onmicrosoft.com";
const CAROL: &str = "carol@contoso.onmicrosoft.com";
const DAN: &str = "dan@contoso.onmicrosoft.com";

// ---------------------------------------------------------------------------------------------
// The requests (stubbed host)

/// The requests a stubbed host saw: method, URL and JSON body.
type Seen = Rc<RefCell<Vec<(WitMethod, String, Option<Value>)>>>;

#[test]
fn the_mark_is_read_and_written_on_the_root_folder() {
    let seen: Seen = Rc::default();
    let s = seen.clone();
    let (read, written, refused) = with_http(
        move |r| {
            assert_eq!(r.credential.as_deref(), Some("default"));
            let body = r
                .body
                .as_deref()
                .map(|b| serde_json::from_slice::<Value>(b).unwrap());
            s.borrow_mut().push((r.method, r.url.clone(), body));
            Ok(match r.method {
                // Graph answers the id as it stores it; it compares without case.
                WitMethod::Get => response(
                    200,
                    &json!({"id": "AAMkroot", "singleValueExtendedProperties": [
                        {"id": "String {B6A4F0D2-6C1E-4C57-9A53-5F0E2D7C9B11} Name syncbridgeSyncOwner", "value": "org-a"}]})
                    .to_string(),
                ),
                _ => response(200, &json!({"id": "AAMkroot"}).to_string()),
            })
        },
        || {
            (
                exports::read_sync_owner::<Graph>(CFG, "o'neil@contoso.com"),
                exports::write_sync_owner::<Graph>(CFG, ALICE, "Org \"A\""),
                // An address with a space is refused before anything is sent.
                exports::read_sync_owner::<Graph>(CFG, "Alice O'Neil@contoso.com"),
            )
        },
    );
    assert_eq!(read.unwrap().as_deref(), Some("org-a"));
    written.unwrap();
    assert_eq!(refused.unwrap_err().class(), "invalid");
    let seen = seen.borrow();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[0],
        (
            WitMethod::Get,
            "https://graph.test/v1.0/users/o%27neil%40contoso.com/mailFolders/msgfolderroot?$select=id&$expand=singleValueExtendedProperties%28%24filter%3Did%20eq%20%27String%20%7Bb6a4f0d2-6c1e-4c57-9a53-5f0e2d7c9b11%7D%20Name%20syncbridgeSyncOwner%27%29".to_string(),
            None
        )
    );
    assert_eq!(
        seen[1],
        (
            WitMethod::Patch,
            "https://graph.test/v1.0/users/alice%40contoso.onmicrosoft.com/mailFolders/msgfolderroot".to_string(),
            Some(json!({"singleValueExtendedProperties": [{
                "id": "String {b6a4f0d2-6c1e-4c57-9a53-5f0e2d7c9b11} Name syncbridgeSyncOwner",
                "value": "Org \"A\""}]}))
        )
    );
}

#[test]
fn an_answer_without_the_property_is_unmarked() {
    for body in [
        json!({"id": "AAMkroot"}),
        json!({"id": "AAMkroot", "singleValueExtendedProperties": []}),
        json!({"id": "AAMkroot", "singleValueExtendedProperties": [
            {"id": "String {b6a4f0d2-6c1e-4c57-9a53-5f0e2d7c9b11} Name syncbridgeAnchor", "value": "x"}]}),
        json!({"id": "AAMkroot", "singleValueExtendedProperties": [{"id": OWNER_PROPERTY, "value": ""}]}),
    ] {
        let b = body.to_string();
        let read = with_http(
            move |_| Ok(response(200, &b)),
            || exports::read_sync_owner::<Graph>(CFG, ALICE),
        );
        assert_eq!(read.unwrap(), None, "{body}");
    }
}

#[test]
fn refusals_are_typed() {
    let cases: [(u16, Value, &str); 6] = [
        (
            404,
            json!({"error": {"code": "ErrorInvalidUser", "message": "The requested user 'x' is invalid."}}),
            "invalid",
        ),
        (
            404,
            json!({"error": {"code": "Request_ResourceNotFound", "message": "Resource 'x' does not exist."}}),
            "invalid",
        ),
        (
            404,
            json!({"error": {"code": "MailboxNotEnabledForRESTAPI", "message": "REST API is not yet supported for this mailbox."}}),
            "forbidden",
        ),
        (
            403,
            json!({"error": {"code": "ErrorAccessDenied", "message": "Access is denied."}}),
            "forbidden",
        ),
        (
            401,
            json!({"error": {"code": "InvalidAuthenticationToken", "message": "Access token has expired."}}),
            "auth",
        ),
        (
            429,
            json!({"error": {"code": "ApplicationThrottled", "message": "Too many requests."}}),
            "throttled",
        ),
    ];
    for (status, body, class) in cases {
        let b = body.to_string();
        let (read, write) = with_http(
            move |_| Ok(response(status, &b)),
            || {
                (
                    exports::read_sync_owner::<Graph>(CFG, ALICE),
                    exports::write_sync_owner::<Graph>(CFG, ALICE, "org-a"),
                )
            },
        );
        for e in [read.unwrap_err(), write.unwrap_err()] {
            assert_eq!(e.class(), class, "{status} {body}: {e:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Against the simulator

/// A running Graph simulator with its runtime.
struct Sim {
    sim: Simulator,
    _rt: tokio::runtime::Runtime,
}

/// alice (licensed), bob (no Exchange Online licence), carol (licensed, her mailbox denied to
/// the tenant's apps by an application access policy), dan (licensed).
fn start() -> Sim {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let licensed = json!([{"skuId": E3, "disabledPlans": []}]);
    let doc = json!({"graph": {"tenants": [{
        "domain": TENANT,
        "subscribedSkus": [{"skuId": E3, "skuPartNumber": "ENTERPRISEPACK"}],
        "users": [
            {"id": "u1", "userPrincipalName": ALICE, "mail": ALICE, "assignedLicenses": licensed},
            {"id": "u2", "userPrincipalName": BOB, "mail": BOB, "assignedLicenses": []},
            {"id": "u3", "userPrincipalName": CAROL, "mail": CAROL, "assignedLicenses": licensed},
            {"id": "u4", "userPrincipalName": DAN, "mail": DAN, "assignedLicenses": licensed},
        ],
    }]}});
    let sim = rt
        .block_on(Simulator::start(SimConfig {
            services: Services {
                graph: true,
                ..Services::NONE
            },
            seed: Some(Seed::from_json(&doc.to_string()).unwrap()),
            ..SimConfig::all()
        }))
        .unwrap();
    assert!(sim.graph().deny_mailbox_access(TENANT, CAROL));
    Sim { sim, _rt: rt }
}

/// The host stand-in: credential slots → a bearer token the simulator issued.
fn host(sim: &Sim) -> impl FnMut(&WitRequest) -> Result<WitResponse, PluginError> + 'static {
    let token = sim
        .sim
        .graph()
        .issue_token(TENANT, "22222222-2222-4222-8222-222222222222")
        .unwrap();
    let slots: HashMap<String, String> =
        HashMap::from([("default".to_string(), format!("Bearer {token}"))]);
    move |r| {
        Ok(send_loopback(
            r,
            r.credential
                .as_ref()
                .and_then(|c| slots.get(c))
                .map(String::as_str),
        ))
    }
}

fn cfg(sim: &Sim) -> String {
    format!(r#"{{"graph_url":"{}"}}"#, sim.sim.graph_url())
}

#[test]
fn the_sync_owner_is_read_written_and_replaced_in_the_simulator() {
    let sim = start();
    let cfg = cfg(&sim);
    let graph = sim.sim.graph();
    with_http(host(&sim), || {
        assert_eq!(
            exports::read_sync_owner::<Graph>(&cfg, ALICE).unwrap(),
            None
        );
        exports::write_sync_owner::<Graph>(&cfg, ALICE, "org-a (prod) 'x'").unwrap();
        assert_eq!(
            exports::read_sync_owner::<Graph>(&cfg, ALICE)
                .unwrap()
                .as_deref(),
            Some("org-a (prod) 'x'")
        );
        exports::write_sync_owner::<Graph>(&cfg, ALICE, "org-b").unwrap();
        assert_eq!(
            exports::read_sync_owner::<Graph>(&cfg, ALICE)
                .unwrap()
                .as_deref(),
            Some("org-b")
        );
        assert_eq!(exports::read_sync_owner::<Graph>(&cfg, DAN).unwrap(), None);
    });
    assert_eq!(graph.sync_owner(TENANT, ALICE).as_deref(), Some("org-b"));

    // Another organization marks dan's mailbox: this connection sees its mark.
    assert!(graph.set_sync_owner(TENANT, DAN, Some("other-org")));
    with_http(host(&sim), || {
        assert_eq!(
            exports::read_sync_owner::<Graph>(&cfg, DAN)
                .unwrap()
                .as_deref(),
            Some("other-org")
        );
        let e = exports::write_sync_owner::<Graph>(&cfg, DAN, "").unwrap_err();
        assert_eq!(e.class(), "invalid", "{e:?}");
    });
    assert_eq!(graph.sync_owner(TENANT, DAN).as_deref(), Some("other-org"));
}

#[test]
fn mailboxes_graph_refuses_come_back_as_typed_errors() {
    let sim = start();
    let cfg = cfg(&sim);
    with_http(host(&sim), || {
        for (mailbox, class, words) in [
            ("nobody@contoso.onmicrosoft.com", "invalid", "no mailbox"),
            (BOB, "forbidden", "Exchange Online licence"),
            (CAROL, "forbidden", "ErrorAccessDenied"),
        ] {
            let read = exports::read_sync_owner::<Graph>(&cfg, mailbox).unwrap_err();
            let write = exports::write_sync_owner::<Graph>(&cfg, mailbox, "org-a").unwrap_err();
            for e in [read, write] {
                assert_eq!(e.class(), class, "{mailbox}: {e:?}");
                assert!(e.describe().contains(words), "{mailbox}: {}", e.describe());
            }
        }
    });
    assert_eq!(sim.sim.graph().sync_owner(TENANT, CAROL), None);
    // Without a valid token: auth.
    let e = with_http(
        |r| Ok(send_loopback(r, Some("Bearer not-a-token"))),
        || exports::read_sync_owner::<Graph>(&cfg, ALICE),
    )
    .unwrap_err();
    assert_eq!(e.class(), "auth", "{e:?}");
}
