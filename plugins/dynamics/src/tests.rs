use super::*;
use std::cell::RefCell;
use std::rc::Rc;
use syncbridge_sdk::bindings::connector::syncbridge::plugin::http::{
    Method as WitMethod, Request as WitRequest, Response as WitResponse,
};
use syncbridge_sdk::exports;
use syncbridge_sdk::testing::{response, set_now_ms, with_http};

pub(crate) const CFG: &str = r#"{"url":"https://contoso.crm.dynamics.com"}"#;
pub(crate) const API: &str = "https://contoso.crm.dynamics.com/api/data/v9.2";
const ID1: &str = "6f1c6a52-6a3f-4d1e-9a0b-1c2d3e4f5a61";
const ID2: &str = "6f1c6a52-6a3f-4d1e-9a0b-1c2d3e4f5a62";

#[derive(Debug, Clone)]
pub(crate) struct Sent {
    pub(crate) method: WitMethod,
    pub(crate) url: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<Value>,
    pub(crate) credential: Option<String>,
}

impl Sent {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub(crate) type Log = Rc<RefCell<Vec<Sent>>>;

pub(crate) fn recorder(
    log: &Log,
    mut answer: impl FnMut(&WitRequest) -> Result<WitResponse, PluginError> + 'static,
) -> impl FnMut(&WitRequest) -> Result<WitResponse, PluginError> + 'static {
    let log = log.clone();
    move |r| {
        log.borrow_mut().push(Sent {
            method: r.method,
            url: r.url.clone(),
            headers: r
                .headers
                .iter()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
            body: r
                .body
                .as_deref()
                .map(|b| serde_json::from_slice::<Value>(b).unwrap()),
            credential: r.credential.clone(),
        });
        answer(r)
    }
}

pub(crate) fn with_header(mut r: WitResponse, name: &str, value: &str) -> WitResponse {
    r.headers.push(Attribute {
        name: name.into(),
        value: value.into(),
    });
    r
}

fn row(id: &str, email: Option<&str>, extra: Value) -> Value {
    let mut r = json!({
        "@odata.etag": "W/\"1001\"",
        "mailboxid": id,
        "name": "Ann Lee",
        "emailaddress": email,
        "emailrouteraccessapproval": 1,
        "incomingemailstatus": 1,
        "outgoingemailstatus": 2,
        "actstatus": 0,
        "enabledforincomingemail": false,
        "enabledforoutgoingemail": false,
        "enabledforact": true
    });
    for (k, v) in extra.as_object().unwrap() {
        r[k] = v.clone();
    }
    r
}

fn pull_req(scope: &str, cursor: Option<&str>, max: u32) -> PullRequest {
    PullRequest {
        scope: scope.into(),
        cursor: cursor.map(str::to_owned),
        max_items: max,
    }
}

fn mailbox(m: &Item) -> &Mailbox {
    match &m.body {
        Some(ItemBody::Mailbox(m)) => m,
        other => panic!("expected a mailbox, got {other:?}"),
    }
}

pub(crate) fn invalid_fields(e: &PluginError) -> Vec<String> {
    match e {
        PluginError::Invalid(i) => i.fields.iter().map(|f| f.field.clone()).collect(),
        other => panic!("expected invalid, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// configuration

#[test]
fn describe_names_the_kind_and_the_slot() {
    let d = exports::describe::<Dynamics>();
    assert_eq!(d.name, "Dynamics 365 (Dataverse Web API)");
    let kinds = [
        ItemKind::Mailbox,
        ItemKind::EmailMessage,
        ItemKind::Appointment,
        ItemKind::Task,
        ItemKind::Contact,
    ];
    assert_eq!(d.reads, kinds);
    assert_eq!(d.writes, kinds);
    assert_eq!(d.credential_slots, ["default"]);
    let schema: Value = serde_json::from_str(&d.config_schema).unwrap();
    assert_eq!(schema["required"], json!(["url"]));
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["properties"]["page_size"]["default"], 500);
    assert_eq!(schema["properties"]["page_size"]["maximum"], 5000);
}

#[test]
fn api_roots_are_normalised_and_checked() {
    for (url, api) in [
        ("https://contoso.crm.dynamics.com", API),
        ("https://Contoso.CRM.dynamics.com/", API),
        ("  https://contoso.crm.dynamics.com/api/data/v9.2/ ", API),
        (
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/api/data/v9.2",
        ),
        ("http://localhost", "http://localhost/api/data/v9.2"),
    ] {
        assert_eq!(
            api_root_of(url).as_deref().map_err(|e| &e.0),
            Ok(api),
            "{url}"
        );
    }
    for url in [
        "",
        "contoso.crm.dynamics.com",
        "http://contoso.crm.dynamics.com",
        "ftp://contoso.crm.dynamics.com",
        "https://contoso.crm.dynamics.com/main.aspx",
        "https://contoso.crm.dynamics.com?x=1",
        "https://user@contoso.crm.dynamics.com",
        "https://contoso.crm.dynamics.com:abc",
        "https://",
    ] {
        let (_, remedy) = api_root_of(url).unwrap_err();
        assert!(remedy.contains("https://contoso.crm.dynamics.com"), "{url}");
    }
    let (cause, remedy) = api_root_of("http://contoso.crm.dynamics.com").unwrap_err();
    assert!(cause.contains("http"), "{cause}");
    assert!(
        remedy.contains("localhost") && remedy.contains("127.0.0.1"),
        "{remedy}"
    );
}

#[test]
fn validate_config_names_what_is_wrong() {
    let ok = exports::validate_config::<Dynamics>(CFG);
    assert_eq!(ok.len(), 1);
    assert_eq!(
        (ok[0].check.as_str(), ok[0].outcome),
        ("config", Outcome::Ok)
    );

    let f = exports::validate_config::<Dynamics>(
        r#"{"url":"http://contoso.crm.dynamics.com","page_size":0}"#,
    );
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(
        (f[0].check.as_str(), f[0].outcome),
        ("url", Outcome::Failed)
    );
    assert!(f[0].remedy.as_deref().unwrap().contains("127.0.0.1"));
    assert_eq!(
        (f[1].check.as_str(), f[1].outcome),
        ("page_size", Outcome::Failed)
    );
    assert!(f[1].remedy.as_deref().unwrap().contains("5000"));

    let f = exports::validate_config::<Dynamics>(
        r#"{"url":"https://contoso.crm.dynamics.com","page_size":5001}"#,
    );
    assert_eq!(f[0].check, "page_size");
    let f =
        exports::validate_config::<Dynamics>(r#"{"url":"http://127.0.0.1:9000","page_size":5000}"#);
    assert_eq!(f[0].outcome, Outcome::Ok, "{f:?}");
    let f = exports::validate_config::<Dynamics>(r#"{"url":"https://crm.example.com"}"#);
    assert_eq!(
        (f[0].check.as_str(), f[0].outcome),
        ("url", Outcome::Failed)
    );
    assert!(f[0].cause.as_deref().unwrap().contains("dynamics.com"));

    let f =
        exports::validate_config::<Dynamics>(r#"{"url":"https://x.crm.dynamics.com","colour":1}"#);
    assert_eq!(f[0].outcome, Outcome::Failed);
    assert!(f[0].cause.as_deref().unwrap().contains("colour"), "{f:?}");
}

// ---------------------------------------------------------------------------------------------
// mapping

#[test]
fn rows_map_to_mailboxes() {
    let item = mailbox_item(&row(ID1, Some(" ann@contoso.com "), json!({}))).unwrap();
    assert_eq!(item.id, ID1);
    assert_eq!(item.version.as_deref(), Some("W/\"1001\""));
    assert_eq!(item.removed, None);
    let m = mailbox(&item);
    assert_eq!(m.address, "ann@contoso.com");
    assert_eq!(m.display_name.as_deref(), Some("Ann Lee"));
    assert!(m.enabled, "enabled for ACT is enough");
    assert!(m.approved);
    assert_eq!(m.incoming_status, ChannelStatus::Success);
    assert_eq!(m.outgoing_status, ChannelStatus::Failure);
    assert_eq!(m.calendar_status, ChannelStatus::NotRun);

    let item = mailbox_item(&row(
        ID1,
        Some("ann@contoso.com"),
        json!({"enabledforact": false, "emailrouteraccessapproval": 2, "name": null,
               "incomingemailstatus": null, "outgoingemailstatus": 7, "actstatus": 2}),
    ))
    .unwrap();
    let m = mailbox(&item);
    assert!(!m.enabled && !m.approved);
    assert_eq!(m.display_name, None);
    assert_eq!(m.incoming_status, ChannelStatus::NotRun);
    assert_eq!(m.outgoing_status, ChannelStatus::NotRun, "unknown values");
    assert_eq!(m.calendar_status, ChannelStatus::Failure);

    assert!(mailbox_item(&row(ID1, None, json!({}))).is_none());
    assert!(mailbox_item(&row(ID1, Some("  "), json!({}))).is_none());
    assert!(mailbox_item(&json!({"emailaddress": "a@b.c"})).is_none());

    for s in [
        ChannelStatus::NotRun,
        ChannelStatus::Success,
        ChannelStatus::Failure,
    ] {
        assert_eq!(channel_status(&json!(status_code(s))), s);
    }
}

#[test]
fn update_bodies_carry_only_the_named_fields() {
    let m = Mailbox {
        address: "ann@contoso.com".into(),
        display_name: None,
        enabled: false,
        approved: false,
        incoming_status: ChannelStatus::Success,
        outgoing_status: ChannelStatus::Failure,
        calendar_status: ChannelStatus::NotRun,
    };
    let now = "2026-01-01T00:00:00Z";
    let fields = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let b = patch_body(&m, &fields(&["enabled"]), now).unwrap();
    assert_eq!(
        Value::Object(b),
        json!({"enabledforincomingemail": false, "enabledforoutgoingemail": false, "enabledforact": false})
    );
    let b = patch_body(&m, &fields(&["approved"]), now).unwrap();
    assert_eq!(Value::Object(b), json!({"emailrouteraccessapproval": 2}));
    let approved = Mailbox {
        approved: true,
        ..m.clone()
    };
    let b = patch_body(&approved, &fields(&["approved"]), now).unwrap();
    assert_eq!(Value::Object(b), json!({"emailrouteraccessapproval": 1}));
    let b = patch_body(
        &m,
        &fields(&["incoming_status", "outgoing-status", "CALENDAR_STATUS"]),
        now,
    )
    .unwrap();
    assert_eq!(
        Value::Object(b),
        json!({"incomingemailstatus": 1, "outgoingemailstatus": 2, "actstatus": 0,
               "testmailboxaccesscompletedon": now, "testemailconfigurationscheduled": false})
    );
    assert!(patch_body(&m, &[], now).unwrap().is_empty());
    let e = patch_body(&m, &fields(&["enabled", "address"]), now).unwrap_err();
    assert_eq!(invalid_fields(&e), ["address"]);
    assert!(e.describe().contains("incoming_status"), "{e:?}");
}

#[test]
fn times_are_iso_utc() {
    assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
    assert_eq!(iso_utc(1_767_225_600_000), "2026-01-01T00:00:00Z");
    assert_eq!(iso_utc(951_782_400_000 + 3_723_999), "2000-02-29T01:02:03Z");
    assert_eq!(iso_utc(4_102_444_799_000), "2099-12-31T23:59:59Z");
}

#[test]
fn keys_and_literals() {
    let keys: Vec<String> = [
        "email:ann@contoso.com",
        "EMAIL: o'brien@contoso.com ",
        "email:ANN@contoso.com",
        ID1,
        &format!("id:{}", ID2.to_uppercase()),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (emails, ids) = parse_keys(&keys).unwrap();
    assert_eq!(emails, ["ann@contoso.com", "o'brien@contoso.com"]);
    assert_eq!(ids, [ID1, ID2]);
    assert!(parse_keys(&["x".into()]).is_err());
    assert!(parse_keys(&["email:".into()]).is_err());
    assert!(parse_keys(&["6f1c6a52-6a3f-4d1e-9a0b-1c2d3e4f5a6)".into()]).is_err());
    assert_eq!(odata_string("o'brien"), "'o''brien'");
    assert_eq!(
        lookup_url(API, &["o'b@x.com".into(), "a@x.com".into()]),
        format!("{API}/mailboxes?$select={SELECT}&$filter=emailaddress%20eq%20%27o%27%27b%40x.com%27%20or%20emailaddress%20eq%20%27a%40x.com%27")
    );
}

// ---------------------------------------------------------------------------------------------
// pull

#[test]
fn pull_asks_for_active_rows_in_pages_and_follows_the_next_link() {
    let next = format!("{API}/mailboxes?$select={SELECT}&$filter=statecode%20eq%200&$skiptoken=%3Ccookie%20pagenumber=%222%22/%3E");
    let log = Log::default();
    let n = next.clone();
    let page = with_http(
        recorder(&log, move |_| {
            Ok(response(
                200,
                &json!({"@odata.context": "x", "value": [
                    row(ID1, Some("ann@contoso.com"), json!({})),
                    row(ID2, None, json!({}))
                ], "@odata.nextLink": n})
                .to_string(),
            ))
        }),
        || exports::pull::<Dynamics>(CFG, pull_req("mailboxes", None, 10_000)),
    )
    .unwrap();
    {
        let log = log.borrow();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].method, WitMethod::Get);
        assert_eq!(
            log[0].url,
            format!("{API}/mailboxes?$select=mailboxid,name,emailaddress,emailrouteraccessapproval,incomingemailstatus,outgoingemailstatus,actstatus,enabledforincomingemail,enabledforoutgoingemail,enabledforact&$filter=statecode%20eq%200")
        );
        assert_eq!(log[0].header("Prefer"), Some("odata.maxpagesize=500"));
        assert_eq!(log[0].header("OData-Version"), Some("4.0"));
        assert_eq!(log[0].credential.as_deref(), Some("default"));
    }
    assert!(page.full && page.more);
    assert_eq!(page.cursor.as_deref(), Some(next.as_str()));
    assert_eq!(page.items.len(), 1, "the row without an address is skipped");
    assert_eq!(page.items[0].id, ID1);

    // The cursor is the next link, followed as is; a smaller max-items asks for smaller pages.
    let log = Log::default();
    let page = with_http(
        recorder(&log, |_| Ok(response(200, r#"{"value":[]}"#))),
        || exports::pull::<Dynamics>(CFG, pull_req("mailboxes", Some(&next), 100)),
    )
    .unwrap();
    assert_eq!(log.borrow()[0].url, next);
    assert_eq!(
        log.borrow()[0].header("Prefer"),
        Some("odata.maxpagesize=100")
    );
    assert!(page.full && !page.more && page.cursor.is_none());
}

#[test]
fn pull_refuses_foreign_cursors_links_and_scopes() {
    let never = |_: &WitRequest| -> Result<WitResponse, PluginError> { panic!("nothing is sent") };
    for cursor in [
        "https://evil.example/api/data/v9.2/mailboxes?$skiptoken=1",
        "https://fabrikam.crm.dynamics.com/api/data/v9.2/mailboxes?$skiptoken=1",
        "https://contoso.crm.dynamics.com/api/data/v9.2/contacts?$skiptoken=1",
        "https://contoso.crm.dynamics.com/api/data/v9.1/mailboxes?$skiptoken=1",
        "http://contoso.crm.dynamics.com/api/data/v9.2/mailboxes",
        "{\"next\":1}",
    ] {
        let e = with_http(never, || {
            exports::pull::<Dynamics>(CFG, pull_req("mailboxes", Some(cursor), 500))
        })
        .unwrap_err();
        assert_eq!(invalid_fields(&e), ["cursor"], "{cursor}");
    }
    let e = with_http(never, || {
        exports::pull::<Dynamics>(CFG, pull_req("accounts", None, 500))
    })
    .unwrap_err();
    assert_eq!(invalid_fields(&e), ["scope"]);
    assert!(e.describe().contains("mailboxes"));
    assert!(e.describe().contains("emails:mailbox=<address>"));
    assert!(e.describe().contains("contacts:mailbox=<address>"));
    let e = with_http(never, || {
        exports::pull::<Dynamics>(CFG, pull_req("contacts", None, 500))
    })
    .unwrap_err();
    assert_eq!(invalid_fields(&e), ["scope"]);
    assert!(
        e.describe().contains("use contacts:mailbox=<address>"),
        "{e:?}"
    );

    let e = with_http(
        |_| {
            Ok(response(
                200,
                r#"{"value":[],"@odata.nextLink":"https://evil.example/api/data/v9.2/mailboxes?x=1"}"#,
            ))
        },
        || exports::pull::<Dynamics>(CFG, pull_req("mailboxes", None, 500)),
    )
    .unwrap_err();
    assert_eq!(e.class(), "remote", "{e:?}");
}

#[test]
fn malformed_answers_are_remote_errors() {
    for body in [
        "{\"value\":[{\"mailboxid\"",
        "<html>gateway</html>",
        "{\"values\":[]}",
        "",
    ] {
        let e = with_http(
            move |_| Ok(response(200, body)),
            || exports::pull::<Dynamics>(CFG, pull_req("mailboxes", None, 500)),
        )
        .unwrap_err();
        match e {
            PluginError::Remote(r) => assert!(r.message.contains("Dataverse"), "{r:?}"),
            other => panic!("{body:?}: expected remote, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// errors

fn classified(status: u16, body: &str, headers: &[(&str, &str)]) -> PluginError {
    let mut r = response(status, body);
    for (n, v) in headers {
        r = with_header(r, n, v);
    }
    classify(&Response(r))
}

#[test]
fn answers_are_classified() {
    let e = classified(
        400,
        r#"{"error":{"code":"0x80044331","message":"A validation error occurred. The value 9 of 'incomingemailstatus' on record of type 'mailbox' is outside the valid range."}}"#,
        &[],
    );
    match &e {
        PluginError::Invalid(i) => {
            assert!(i.message.contains("outside the valid range"), "{i:?}");
            assert!(i.message.contains("0x80044331"), "{i:?}");
        }
        other => panic!("{other:?}"),
    }
    let e = classified(
        401,
        "",
        &[("WWW-Authenticate", "Bearer authorization_uri=x")],
    );
    assert_eq!(e.class(), "auth");
    assert!(
        e.describe().contains("Dataverse refused the token"),
        "{e:?}"
    );
    assert_eq!(
        classified(
            403,
            r#"{"error":{"code":"0x80040220","message":"missing prvReadmailbox"}}"#,
            &[]
        )
        .class(),
        "forbidden"
    );
    assert_eq!(classified(404, "", &[]).class(), "not-found");
    assert_eq!(classified(412, "", &[]).class(), "conflict");
    assert_eq!(classified(409, "", &[]).class(), "conflict");
    match classified(429, "", &[("Retry-After", "2.5")]) {
        PluginError::Throttled(t) => assert_eq!(t.retry_after_ms, Some(2500)),
        other => panic!("{other:?}"),
    }
    match classified(429, "", &[]) {
        PluginError::Throttled(t) => assert_eq!(t.retry_after_ms, None),
        other => panic!("{other:?}"),
    }
    for s in [500, 502, 503, 504] {
        assert_eq!(classified(s, "oops", &[]).class(), "transient", "{s}");
    }
    match classified(503, "", &[("Retry-After", "7")]) {
        PluginError::Throttled(t) => assert_eq!(t.retry_after_ms, Some(7000)),
        other => panic!("{other:?}"),
    }
    assert_eq!(classified(418, "", &[]).class(), "remote");
}

// ---------------------------------------------------------------------------------------------
// lookup

#[test]
fn lookups_query_by_address_and_get_by_id() {
    let log = Log::default();
    let items = with_http(
        recorder(&log, |r| {
            Ok(if r.url.contains("$filter") {
                response(
                    200,
                    &json!({"value": [row(ID1, Some("o'brien@contoso.com"), json!({}))]})
                        .to_string(),
                )
            } else if r.url.contains(ID1) {
                response(200, &row(ID1, Some("o'brien@contoso.com"), json!({})).to_string())
            } else {
                response(
                    404,
                    r#"{"error":{"code":"0x80040217","message":"mailbox With Id = x Does Not Exist"}}"#,
                )
            })
        }),
        || {
            exports::lookup::<Dynamics>(
                CFG,
                "mailboxes",
                vec![
                    "email:o'brien@contoso.com".into(),
                    ID1.into(),
                    ID2.into(),
                ],
            )
        },
    )
    .unwrap();
    assert_eq!(items.len(), 1, "found once, the unknown id absent");
    assert_eq!(mailbox(&items[0]).address, "o'brien@contoso.com");
    let log = log.borrow();
    assert_eq!(log.len(), 3);
    assert!(
        log[0]
            .url
            .ends_with("$filter=emailaddress%20eq%20%27o%27%27brien%40contoso.com%27"),
        "{}",
        log[0].url
    );
    assert_eq!(
        log[1].url,
        format!("{API}/mailboxes({ID1})?$select={SELECT}")
    );
    assert!(log
        .iter()
        .all(|s| s.credential.as_deref() == Some("default")));

    let e = with_http(
        |_| Ok(response(500, "")),
        || exports::lookup::<Dynamics>(CFG, "mailboxes", vec![ID2.into()]),
    )
    .unwrap_err();
    assert_eq!(e.class(), "transient");
    let e = exports::lookup::<Dynamics>(CFG, "mailboxes", vec!["42".into()]).unwrap_err();
    assert_eq!(invalid_fields(&e), ["keys"]);
}

// ---------------------------------------------------------------------------------------------
// push

fn update(op_id: &str, target: &str, m: &Mailbox, fields: &[&str]) -> WriteOp {
    WriteOp {
        op_id: op_id.into(),
        action: WriteAction::Update,
        target_id: Some(target.into()),
        body: Some(ItemBody::Mailbox(m.clone())),
        fields: fields.iter().map(|s| s.to_string()).collect(),
    }
}

fn desired() -> Mailbox {
    Mailbox {
        address: "ann@contoso.com".into(),
        display_name: None,
        enabled: false,
        approved: true,
        incoming_status: ChannelStatus::Success,
        outgoing_status: ChannelStatus::Success,
        calendar_status: ChannelStatus::Failure,
    }
}

#[test]
fn push_patches_existing_rows_and_answers_their_new_etag() {
    set_now_ms(1_767_225_600_000);
    let log = Log::default();
    let results = with_http(
        recorder(&log, |r| {
            Ok(if r.url.contains(ID2) {
                response(
                    412,
                    r#"{"error":{"code":"0x80060882","message":"The version of the existing record doesn't match the RowVersion property provided."}}"#,
                )
            } else {
                response(
                    200,
                    &json!({"@odata.etag": "W/\"2002\"", "mailboxid": ID1}).to_string(),
                )
            })
        }),
        || {
            let m = desired();
            let mut create = update("c", ID1, &m, &[]);
            create.action = WriteAction::Create;
            let mut delete = update("d", ID1, &m, &[]);
            delete.action = WriteAction::Delete;
            let mut contact = update("x", ID1, &m, &["enabled"]);
            contact.body = None;
            exports::push::<Dynamics>(
                CFG,
                "mailboxes",
                vec![
                    update(
                        "1",
                        &ID1.to_uppercase(),
                        &m,
                        &["incoming_status", "outgoing_status", "calendar_status", "enabled"],
                    ),
                    update("2", ID2, &m, &["approved"]),
                    update("3", ID1, &m, &["name"]),
                    update("4", "42", &m, &["enabled"]),
                    create,
                    delete,
                    contact,
                    update("5", ID1, &m, &[]),
                ],
            )
        },
    )
    .unwrap();
    assert_eq!(results.len(), 8, "one result per op");
    let ok = results[0].outcome.as_ref().unwrap();
    assert_eq!(ok.target_id, ID1);
    assert_eq!(ok.version.as_deref(), Some("W/\"2002\""));
    assert_eq!(results[1].op_id, "2");
    assert_eq!(results[1].outcome.as_ref().unwrap_err().class(), "conflict");
    assert_eq!(
        invalid_fields(results[2].outcome.as_ref().unwrap_err()),
        ["name"]
    );
    assert_eq!(
        invalid_fields(results[3].outcome.as_ref().unwrap_err()),
        ["target-id"]
    );
    for r in &results[4..6] {
        assert_eq!(
            r.outcome.as_ref().unwrap_err().class(),
            "unsupported",
            "{r:?}"
        );
    }
    assert_eq!(
        invalid_fields(results[6].outcome.as_ref().unwrap_err()),
        ["body"]
    );
    assert_eq!(results[7].outcome.as_ref().unwrap().version, None);

    let log = log.borrow();
    assert_eq!(log.len(), 2, "only valid updates with fields are sent");
    let patch = &log[0];
    assert_eq!(patch.method, WitMethod::Patch);
    assert_eq!(
        patch.url,
        format!("{API}/mailboxes({ID1})?$select=mailboxid")
    );
    assert_eq!(patch.header("If-Match"), Some("*"));
    assert_eq!(patch.header("Prefer"), Some("return=representation"));
    assert_eq!(patch.header("Content-Type"), Some("application/json"));
    assert_eq!(patch.credential.as_deref(), Some("default"));
    assert_eq!(
        patch.body,
        Some(json!({
            "incomingemailstatus": 1, "outgoingemailstatus": 1, "actstatus": 2,
            "enabledforincomingemail": false, "enabledforoutgoingemail": false, "enabledforact": false,
            "testmailboxaccesscompletedon": "2026-01-01T00:00:00Z", "testemailconfigurationscheduled": false
        }))
    );
    assert_eq!(log[1].body, Some(json!({"emailrouteraccessapproval": 1})));
}

#[test]
fn push_stops_after_a_throttle_and_keeps_its_retry_after() {
    let log = Log::default();
    let results = with_http(
        recorder(&log, |_| {
            Err(PluginError::Throttled(Throttle {
                retry_after_ms: Some(3000),
                message: "429".into(),
            }))
        }),
        || {
            let m = desired();
            exports::push::<Dynamics>(
                CFG,
                "mailboxes",
                vec![
                    update("1", ID1, &m, &["enabled"]),
                    update("2", ID2, &m, &["enabled"]),
                ],
            )
        },
    )
    .unwrap();
    assert_eq!(log.borrow().len(), 1);
    for r in &results {
        match r.outcome.as_ref().unwrap_err() {
            PluginError::Throttled(t) => assert_eq!(t.retry_after_ms, Some(3000)),
            other => panic!("{other:?}"),
        }
    }
    // 204 without a body: the ETag header, if any, is the version.
    let results = with_http(
        |_| Ok(with_header(response(204, ""), "ETag", "W/\"77\"")),
        || {
            exports::push::<Dynamics>(
                CFG,
                "mailboxes",
                vec![update("1", ID1, &desired(), &["approved"])],
            )
        },
    )
    .unwrap();
    assert_eq!(
        results[0].outcome.as_ref().unwrap().version.as_deref(),
        Some("W/\"77\"")
    );
    let e = exports::push::<Dynamics>(CFG, "contacts", vec![]).unwrap_err();
    assert_eq!(invalid_fields(&e), ["scope"]);
}

// ---------------------------------------------------------------------------------------------
// test-connection

fn finding<'a>(f: &'a [Finding], check: &str) -> &'a Finding {
    f.iter()
        .find(|x| x.check == check)
        .unwrap_or_else(|| panic!("no {check} in {f:?}"))
}

#[test]
fn test_connection_reports_endpoint_and_credentials() {
    let log = Log::default();
    let f = with_http(
        recorder(&log, |r| {
            Ok(if r.url.ends_with("/WhoAmI") {
                response(
                    200,
                    r#"{"BusinessUnitId":"b","UserId":"u","OrganizationId":"o"}"#,
                )
            } else {
                response(200, r#"{"value":[]}"#)
            })
        }),
        || exports::test_connection::<Dynamics>(CFG),
    )
    .unwrap();
    for check in ["endpoint", "credentials", "read-mailboxes"] {
        assert_eq!(finding(&f, check).outcome, Outcome::Ok, "{f:?}");
    }
    assert_eq!(log.borrow()[0].url, format!("{API}/WhoAmI"));
    assert_eq!(log.borrow()[0].credential.as_deref(), Some("default"));

    let f = with_http(
        |_| Ok(response(401, "")),
        || exports::test_connection::<Dynamics>(CFG),
    )
    .unwrap();
    assert_eq!(finding(&f, "endpoint").outcome, Outcome::Ok);
    let c = finding(&f, "credentials");
    assert_eq!(c.outcome, Outcome::Failed);
    assert!(
        c.cause
            .as_deref()
            .unwrap()
            .starts_with("Dataverse refused the token"),
        "{c:?}"
    );
    let remedy = c.remedy.as_deref().unwrap();
    assert!(
        remedy.contains("client id")
            && remedy.contains("tenant")
            && remedy.contains("application user"),
        "{remedy}"
    );

    let f = with_http(
        |_| Ok(response(403, r#"{"error":{"code":"0x80040220","message":"Principal user is missing prvReadmailbox privilege"}}"#)),
        || exports::test_connection::<Dynamics>(CFG),
    )
    .unwrap();
    let c = finding(&f, "credentials");
    assert_eq!(c.outcome, Outcome::Failed);
    assert!(c.cause.as_deref().unwrap().contains("prvReadmailbox"));
    assert!(c
        .remedy
        .as_deref()
        .unwrap()
        .contains("security role with Read and Write on Mailbox"));

    // WhoAmI passes, reading mailboxes is refused.
    let f = with_http(
        |r| {
            Ok(if r.url.ends_with("/WhoAmI") {
                response(200, r#"{"UserId":"u"}"#)
            } else {
                response(403, r#"{"error":{"message":"missing prvReadmailbox"}}"#)
            })
        },
        || exports::test_connection::<Dynamics>(CFG),
    )
    .unwrap();
    assert_eq!(finding(&f, "credentials").outcome, Outcome::Ok);
    let r = finding(&f, "read-mailboxes");
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(r.remedy.as_deref().unwrap().contains("Mailbox"));

    // The sign-in itself failed (the host's token request).
    let f = with_http(
        |_| Err(PluginError::Auth("credential slot \"default\": the token endpoint refused the client credentials (HTTP 401): invalid_client: AADSTS7000215: Invalid client secret provided.".into())),
        || exports::test_connection::<Dynamics>(CFG),
    )
    .unwrap();
    assert_eq!(finding(&f, "endpoint").outcome, Outcome::Skipped);
    let c = finding(&f, "credentials");
    assert!(c.cause.as_deref().unwrap().contains("AADSTS7000215"));
    assert!(c.remedy.as_deref().unwrap().contains("client secret"));

    for (answer, needle) in [
        (
            Err(PluginError::Transient("connection refused".into())),
            "DNS",
        ),
        (Ok(response(503, "")), "administration mode"),
        (Ok(response(404, "")), "Environment URL"),
        (
            Err(PluginError::Forbidden("host not allowed".into())),
            "--allow-host",
        ),
    ] {
        let f = with_http(
            move |_| answer.clone(),
            || exports::test_connection::<Dynamics>(CFG),
        )
        .unwrap();
        let e = finding(&f, "endpoint");
        assert_eq!(e.outcome, Outcome::Failed, "{f:?}");
        assert!(e.remedy.as_deref().unwrap().contains(needle), "{e:?}");
        assert!(f.iter().all(|x| x.check != "credentials"), "{f:?}");
    }

    let f = exports::test_connection::<Dynamics>(r#"{"url":"http://contoso.crm.dynamics.com"}"#)
        .unwrap();
    assert_eq!(finding(&f, "endpoint").outcome, Outcome::Failed);
}
