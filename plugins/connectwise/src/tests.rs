use super::*;
use std::cell::RefCell;
use std::rc::Rc;
use syncbridge_sdk::bindings::connector::syncbridge::plugin::http::{
    Request as WitRequest, Response as WitResponse,
};
use syncbridge_sdk::exports;
use syncbridge_sdk::testing::{response, with_http};

const ROOT: &str = "http://cw.test/v4_6_release/apis/3.0";
const CFG: &str = r#"{"base_url":"http://cw.test/v4_6_release/apis/3.0/","client_id":"cid-123"}"#;

#[derive(Debug, Clone)]
struct Call {
    method: Method,
    url: String,
    body: Option<Value>,
    credential: Option<String>,
    headers: Vec<(String, String)>,
}

impl Call {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The decoded value of a query parameter.
    fn query(&self, key: &str) -> Option<String> {
        let q = self.url.split_once('?')?.1;
        q.split('&').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            (k == key).then(|| decode(v))
        })
    }

    fn path(&self) -> &str {
        self.url.split('?').next().unwrap()
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

type Log = Rc<RefCell<Vec<Call>>>;

fn recorder(
    log: &Log,
    mut answer: impl FnMut(&Call) -> WitResponse + 'static,
) -> impl FnMut(&WitRequest) -> Result<WitResponse, PluginError> + 'static {
    let log = log.clone();
    move |r| {
        let call = Call {
            method: r.method,
            url: r.url.clone(),
            body: r
                .body
                .as_deref()
                .map(|b| serde_json::from_slice::<Value>(b).unwrap()),
            credential: r.credential.clone(),
            headers: r
                .headers
                .iter()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
        };
        log.borrow_mut().push(call.clone());
        Ok(answer(&call))
    }
}

fn with_header(mut r: WitResponse, name: &str, value: &str) -> WitResponse {
    r.headers.push(Attribute {
        name: name.into(),
        value: value.into(),
    });
    r
}

fn pull_req(scope: &str, cursor: Option<&str>) -> PullRequest {
    PullRequest {
        scope: scope.into(),
        cursor: cursor.map(str::to_owned),
        max_items: 5000,
    }
}

fn contact(first: &str, last: &str, email: &str) -> Contact {
    Contact {
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        display_name: None,
        title: None,
        email: Some(email.into()),
        phone: None,
        mobile: None,
        company: None,
        site: None,
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

const COMM_TYPES: &str = r#"[{"id":1,"description":"Email","emailFlag":true},{"id":2,"description":"Direct","phoneFlag":true},
    {"id":3,"description":"Fax"},{"id":4,"description":"Cell","phoneFlag":true}]"#;

fn ann_row() -> Value {
    json!({
        "id": 30, "firstName": "Ann", "lastName": "Lee", "title": "CFO", "inactiveFlag": false,
        "company": {"id": 10, "identifier": "Contoso", "name": "Contoso Ltd"},
        "site": {"id": 21, "name": "Main"},
        "types": [{"id": 1, "description": "Employee"}],
        "department": {"id": 3, "name": "Finance"},
        "communicationItems": [
            {"id": 501, "type": {"id": 2, "name": "Direct"}, "value": "555 1", "defaultFlag": true, "communicationType": "Phone"},
            {"id": 502, "type": {"id": 1, "name": "Email"}, "value": "ann@contoso.com", "defaultFlag": true, "communicationType": "Email"},
            {"id": 503, "type": {"id": 3, "name": "Fax"}, "value": "555 9", "defaultFlag": false, "communicationType": "Fax"},
            {"id": 504, "type": {"id": 1, "name": "Email"}, "value": "ann.lee@contoso.com", "defaultFlag": false, "communicationType": "Email"}
        ],
        "_info": {"lastUpdated": "2026-01-01T00:00:00Z"}
    })
}

#[test]
fn pull_contacts_with_conditions_and_link_paging() {
    let log = Log::default();
    let next =
        format!("{ROOT}/company/contacts?pageSize=1000&page=2&conditions=company%2Fid%20%3D%2010");
    let next2 = next.clone();
    let page = with_http(
        recorder(&log, move |_| {
            with_header(
                response(200, &Value::Array(vec![ann_row()]).to_string()),
                "Link",
                &format!("<{next2}>; rel=\"next\", <{ROOT}/company/contacts?pageSize=1000&page=3>; rel=\"last\""),
            )
        }),
        || exports::pull::<ConnectWise>(CFG, pull_req("contacts:company=10", None)),
    )
    .unwrap();
    {
        let log = log.borrow();
        let c = &log[0];
        assert_eq!(c.method, Method::Get);
        assert_eq!(c.path(), format!("{ROOT}/company/contacts"));
        assert_eq!(c.query("conditions").as_deref(), Some("company/id = 10"));
        assert_eq!(c.query("orderBy").as_deref(), Some("id asc"));
        assert_eq!(c.query("pageSize").as_deref(), Some("1000"), "clamped");
        assert_eq!(c.credential.as_deref(), Some("default"));
        assert_eq!(c.header("clientId"), Some("cid-123"));
        assert_eq!(c.header("Authorization"), None, "the host authenticates");
    }
    assert!(page.more && page.full);
    let cursor = ChangeCursor::parse(page.cursor.as_deref(), Overlap::NONE).unwrap();
    assert_eq!(
        cursor.next.as_deref(),
        Some(next.as_str()),
        "followed verbatim"
    );
    assert_eq!(cursor.high.as_deref(), Some("2026-01-01T00:00:00Z"));
    let item = &page.items[0];
    assert_eq!(item.id, "30");
    assert_eq!(item.version.as_deref(), Some("2026-01-01T00:00:00Z"));
    let Some(ItemBody::Contact(c)) = &item.body else {
        panic!()
    };
    assert_eq!(c.first_name.as_deref(), Some("Ann"));
    assert_eq!(c.display_name.as_deref(), Some("Ann Lee"));
    assert_eq!(c.title.as_deref(), Some("CFO"));
    assert_eq!(
        c.email.as_deref(),
        Some("ann@contoso.com"),
        "the default Email item"
    );
    assert_eq!(c.phone.as_deref(), Some("555 1"));
    assert_eq!(c.mobile, None);
    assert_eq!(c.company.as_ref().unwrap().id, "10");
    assert_eq!(
        c.company.as_ref().unwrap().name.as_deref(),
        Some("Contoso Ltd")
    );
    assert_eq!(c.site.as_ref().unwrap().id, "21");
    assert_eq!(c.contact_types[0].id, "1");
    assert_eq!(c.contact_types[0].name.as_deref(), Some("Employee"));
    assert!(c.active);
    let extra: Vec<(&str, &str)> = c
        .extra
        .iter()
        .map(|a| (a.name.as_str(), a.value.as_str()))
        .collect();
    assert_eq!(
        extra,
        [
            ("communication.Fax", "555 9"),
            ("communication.Email", "ann.lee@contoso.com"),
            ("department", "Finance")
        ]
    );

    let log2 = Log::default();
    let page = with_http(
        recorder(&log2, |_| {
            response(200, r#"[{"id":31,"firstName":"Bo","inactiveFlag":true}]"#)
        }),
        || exports::pull::<ConnectWise>(CFG, pull_req("contacts:company=10", Some(&next))),
    )
    .unwrap();
    assert_eq!(
        log2.borrow()[0].url,
        next,
        "the cursor is followed verbatim"
    );
    assert!(!page.more && page.cursor.is_none() && page.full);
    let Some(ItemBody::Contact(c)) = &page.items[0].body else {
        panic!()
    };
    assert!(!c.active);
    assert_eq!(c.email, None);
}

#[test]
fn a_next_link_to_another_origin_is_refused_before_sending() {
    let log = Log::default();
    for cursor in [
        "https://evil.example/v4_6_release/apis/3.0/company/contacts?page=2",
        "http://cw.test:8443/v4_6_release/apis/3.0/company/contacts?page=2",
        "http://cw.test@evil.example/x",
    ] {
        let err = with_http(recorder(&log, |_| response(200, "[]")), || {
            exports::pull::<ConnectWise>(CFG, pull_req("contacts", Some(cursor)))
        })
        .unwrap_err();
        assert_eq!(err.class(), "remote", "{cursor}");
    }
    assert!(log.borrow().is_empty(), "no request, no credential sent");
}

#[test]
fn companies_sites_and_contact_types_scopes() {
    let log = Log::default();
    let (companies, sites, types) = with_http(
        recorder(&log, |c| {
            let p = c.path();
            if p.ends_with("/sites") {
                response(200, r#"[{"id":21,"name":"Main","company":{"id":10}}]"#)
            } else if p.ends_with("/types") {
                response(
                    200,
                    r#"[{"id":7,"description":"End User","defaultFlag":true}]"#,
                )
            } else {
                response(
                    200,
                    r#"[{"id":10,"identifier":"Contoso","name":"Contoso Ltd","_info":{"lastUpdated":"2026-01-02T00:00:00Z"}}]"#,
                )
            }
        }),
        || {
            (
                exports::pull::<ConnectWise>(
                    CFG,
                    pull_req("companies:conditions=deletedFlag = false", None),
                )
                .unwrap(),
                exports::pull::<ConnectWise>(CFG, pull_req("sites:company=10", None)).unwrap(),
                exports::pull::<ConnectWise>(CFG, pull_req("contact-types", None)).unwrap(),
            )
        },
    );
    let log = log.borrow();
    assert_eq!(log[0].path(), format!("{ROOT}/company/companies"));
    assert_eq!(
        log[0].query("conditions").as_deref(),
        Some("deletedFlag = false")
    );
    assert_eq!(log[1].path(), format!("{ROOT}/company/companies/10/sites"));
    assert_eq!(log[1].query("conditions"), None);
    assert_eq!(log[2].path(), format!("{ROOT}/company/contacts/types"));
    assert!(
        matches!(&companies.items[0].body, Some(ItemBody::Company(c)) if c.id == "10" && c.name.as_deref() == Some("Contoso Ltd"))
    );
    assert_eq!(
        companies.items[0].version.as_deref(),
        Some("2026-01-02T00:00:00Z")
    );
    assert!(
        matches!(&sites.items[0].body, Some(ItemBody::Site(s)) if s.id == "21" && s.name.as_deref() == Some("Main"))
    );
    assert!(
        matches!(&types.items[0].body, Some(ItemBody::ContactType(t)) if t.id == "7" && t.name.as_deref() == Some("End User"))
    );
}

#[test]
fn scope_parsing() {
    let s =
        Scope::parse("contacts:company=10,conditions=lastName = \"a,b\" and id in (1,2)").unwrap();
    assert_eq!(s.company, Some(10));
    assert_eq!(
        s.conditions.as_deref(),
        Some("lastName = \"a,b\" and id in (1,2)")
    );
    assert_eq!(
        s.conditions().as_deref(),
        Some("(company/id = 10) and (lastName = \"a,b\" and id in (1,2))")
    );
    assert_eq!(
        Scope::parse("Contact_Types").unwrap().entity,
        Entity::ContactTypes
    );
    for bad in [
        "bogus",
        "sites",
        "contacts:company=x",
        "contacts:colour=red",
        "companies:company=1",
    ] {
        assert_eq!(Scope::parse(bad).unwrap_err().class(), "invalid", "{bad}");
    }
}

#[test]
fn lookup_by_email_and_id_follows_pages() {
    let log = Log::default();
    let items = with_http(
        recorder(&log, |c| {
            if c.query("childConditions").is_some() && c.query("page").is_none() {
                with_header(
                    response(200, &json!([ann_row()]).to_string()),
                    "Link",
                    &format!("<{ROOT}/company/contacts?page=2&pageSize=1000>; rel=\"next\""),
                )
            } else if c.query("page").is_some() {
                response(200, r#"[{"id":32,"firstName":"Cy"}]"#)
            } else {
                response(
                    200,
                    &json!([ann_row(), {"id": 33, "firstName": "Di"}]).to_string(),
                )
            }
        }),
        || {
            exports::lookup::<ConnectWise>(
                CFG,
                "contacts:company=10",
                vec![
                    "email:ann@contoso.com".into(),
                    "email:o\"brien@contoso.com".into(),
                    "id:30".into(),
                    "id:33".into(),
                ],
            )
        },
    )
    .unwrap();
    let log = log.borrow();
    assert_eq!(log.len(), 3, "{log:?}");
    assert_eq!(
        log[0].query("childConditions").as_deref(),
        Some(
            r#"(communicationItems/value = "ann@contoso.com" or communicationItems/value = "o\"brien@contoso.com") and communicationItems/communicationType = "Email""#
        )
    );
    assert_eq!(
        log[0].query("conditions").as_deref(),
        Some("company/id = 10")
    );
    assert_eq!(log[1].query("page").as_deref(), Some("2"));
    assert_eq!(
        log[2].query("conditions").as_deref(),
        Some("(company/id = 10) and (id in (30,33))")
    );
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["30", "32", "33"], "deduplicated");
    let err = exports::lookup::<ConnectWise>(CFG, "contacts", vec!["upn:x".into()]).unwrap_err();
    assert_eq!(err.class(), "invalid");
    let err = exports::lookup::<ConnectWise>(CFG, "companies", vec!["id:1".into()]).unwrap_err();
    assert_eq!(err.class(), "unsupported");
}

#[test]
fn create_sends_communication_items_site_types_and_the_scope_company() {
    let log = Log::default();
    let results = with_http(
        recorder(&log, |c| match (c.method, c.path()) {
            (Method::Get, p) if p.ends_with("/company/communicationTypes") => {
                response(200, COMM_TYPES)
            }
            (Method::Post, _) if c.body.as_ref().unwrap().get("firstName").is_none() => response(
                400,
                r#"{"code":"InvalidObject","message":"contact object is invalid","errors":[{"code":"NullValue","message":"The firstName field is required.","resource":"contact","field":"firstName"}]}"#,
            ),
            (Method::Post, _) => response(
                201,
                r#"{"id":1001,"firstName":"Bo","_info":{"lastUpdated":"2026-02-01T00:00:00Z"}}"#,
            ),
            _ => response(404, "{}"),
        }),
        || {
            let mut c = contact("Bo", "Ek", "bo@contoso.com");
            c.title = Some("Engineer".into());
            c.phone = Some("+1 555 0100".into());
            c.mobile = Some("+1 555 0111".into());
            c.site = Some(SiteRef {
                id: "21".into(),
                name: Some("Main".into()),
            });
            c.contact_types = vec![ContactTypeRef {
                id: "7".into(),
                name: Some("End User".into()),
            }];
            let mut nameless = contact(" ", "X", "x@contoso.com");
            nameless.company = Some(CompanyRef {
                id: "11".into(),
                name: None,
            });
            exports::push::<ConnectWise>(
                CFG,
                "contacts:company=10",
                vec![
                    op("c1", WriteAction::Create, None, Some(c), &[]),
                    op("c2", WriteAction::Create, None, Some(nameless), &[]),
                    op(
                        "c3",
                        WriteAction::Create,
                        None,
                        Some(contact("Cy", "Z", "c@y.z")),
                        &[],
                    ),
                ],
            )
        },
    )
    .unwrap();
    let ok = results[0].outcome.as_ref().unwrap();
    assert_eq!(ok.target_id, "1001");
    assert_eq!(ok.version.as_deref(), Some("2026-02-01T00:00:00Z"));
    match &results[1].outcome {
        Err(PluginError::Invalid(i)) => assert_eq!(i.fields[0].field, "first_name"),
        other => panic!("{other:?}"),
    }
    assert!(results[2].outcome.is_ok());
    let log = log.borrow();
    let types_reads = log
        .iter()
        .filter(|c| c.path().ends_with("communicationTypes"))
        .count();
    assert_eq!(
        types_reads, 1,
        "communication types are read once per batch"
    );
    let post = log.iter().find(|c| c.method == Method::Post).unwrap();
    assert_eq!(post.url, format!("{ROOT}/company/contacts"));
    assert_eq!(post.header("Content-Type"), Some("application/json"));
    assert_eq!(post.header("clientId"), Some("cid-123"));
    assert_eq!(
        post.body.as_ref().unwrap(),
        &json!({
            "firstName": "Bo", "lastName": "Ek", "title": "Engineer",
            "company": {"id": 10}, "site": {"id": 21}, "types": [{"id": 7}], "inactiveFlag": false,
            "communicationItems": [
                {"type": {"id": 1, "name": "Email"}, "value": "bo@contoso.com", "defaultFlag": true},
                {"type": {"id": 2, "name": "Direct"}, "value": "+1 555 0100", "defaultFlag": true},
                {"type": {"id": 4, "name": "Cell"}, "value": "+1 555 0111", "defaultFlag": false}
            ]
        })
    );
    assert_eq!(
        log.iter().filter(|c| c.method == Method::Post).count(),
        3,
        "ConnectWise validates the first name itself"
    );
}

#[test]
fn update_patches_only_the_listed_non_blank_fields() {
    let log = Log::default();
    let results = with_http(
        recorder(&log, |c| match (c.method, c.path()) {
            (Method::Get, p) if p.ends_with("/company/contacts/30") => {
                response(200, &ann_row().to_string())
            }
            (Method::Get, p) if p.ends_with("/company/communicationTypes") => {
                response(200, COMM_TYPES)
            }
            (Method::Patch, _) => response(
                200,
                r#"{"id":30,"_info":{"lastUpdated":"2026-03-01T00:00:00Z"}}"#,
            ),
            _ => response(404, "{}"),
        }),
        || {
            let mut upd = contact("Ann", "Lee", "ann@contoso.com");
            upd.title = Some("CEO".into());
            upd.phone = None;
            upd.mobile = Some("+1 555 0199".into());
            upd.site = Some(SiteRef {
                id: "22".into(),
                name: None,
            });
            upd.contact_types = vec![
                ContactTypeRef {
                    id: "1".into(),
                    name: None,
                },
                ContactTypeRef {
                    id: "7".into(),
                    name: None,
                },
            ];
            let mut email = contact("Ann", "Lee", "ann.new@contoso.com");
            email.contact_types = vec![ContactTypeRef {
                id: "1".into(),
                name: None,
            }];
            exports::push::<ConnectWise>(
                CFG,
                "contacts",
                vec![
                    op(
                        "u1",
                        WriteAction::Update,
                        Some("30"),
                        Some(upd.clone()),
                        &["title", "phone", "display_name"],
                    ),
                    op(
                        "u2",
                        WriteAction::Update,
                        Some("30"),
                        Some(upd),
                        &["mobile", "site", "contact_types"],
                    ),
                    op(
                        "u3",
                        WriteAction::Update,
                        Some("30"),
                        Some(email.clone()),
                        &["email", "contact_types"],
                    ),
                    op(
                        "u4",
                        WriteAction::Update,
                        Some("30"),
                        Some(email.clone()),
                        &["phone"],
                    ),
                    op(
                        "u5",
                        WriteAction::Update,
                        Some("30"),
                        Some(email),
                        &["extra.fax"],
                    ),
                ],
            )
        },
    )
    .unwrap();
    let outcome = |id: &str| &results.iter().find(|r| r.op_id == id).unwrap().outcome;
    assert_eq!(
        outcome("u1").as_ref().unwrap().version.as_deref(),
        Some("2026-03-01T00:00:00Z")
    );
    assert_eq!(
        outcome("u4").as_ref().unwrap().version,
        None,
        "nothing to send"
    );
    assert_eq!(outcome("u5").as_ref().unwrap_err().class(), "invalid");
    let log = log.borrow();
    let patches: Vec<&Call> = log.iter().filter(|c| c.method == Method::Patch).collect();
    assert_eq!(patches.len(), 3, "{log:?}");
    assert_eq!(patches[0].url, format!("{ROOT}/company/contacts/30"));
    // blank phone: never clears; display name: derived by ConnectWise
    assert_eq!(
        patches[0].body.as_ref().unwrap(),
        &json!([{"op": "replace", "path": "title", "value": "CEO"}])
    );
    let ops = patches[1].body.as_ref().unwrap().as_array().unwrap();
    assert_eq!(
        ops[0],
        json!({"op": "replace", "path": "site", "value": {"id": 22}})
    );
    assert_eq!(
        ops[1],
        json!({"op": "replace", "path": "types", "value": [{"id": 1, "description": "Employee"}, {"id": 7}]}),
        "contact types are only added"
    );
    assert_eq!(ops[2]["path"], "communicationItems");
    let items = ops[2]["value"].as_array().unwrap();
    assert_eq!(items.len(), 5, "a new Cell item next to the existing ones");
    assert_eq!(
        items[4],
        json!({"type": {"id": 4, "name": "Cell"}, "value": "+1 555 0199", "defaultFlag": false})
    );
    // u3: the default e-mail item changes in place (its id is kept); type 1 is already there
    let ops = patches[2].body.as_ref().unwrap().as_array().unwrap();
    assert_eq!(ops.len(), 1);
    let items = ops[0]["value"].as_array().unwrap();
    assert_eq!(items[1]["id"], 502);
    assert_eq!(items[1]["value"], "ann.new@contoso.com");
    assert_eq!(items[3]["value"], "ann.lee@contoso.com");
}

#[test]
fn deactivate_reactivate_and_delete() {
    let log = Log::default();
    let results = with_http(
        recorder(&log, |c| match c.method {
            Method::Delete => response(204, ""),
            _ if c.path().ends_with("/99") => response(
                404,
                r#"{"code":"NotFound","message":"Contact recordId 99 not found."}"#,
            ),
            _ => response(200, r#"{"id":30}"#),
        }),
        || {
            exports::push::<ConnectWise>(
                CFG,
                "contacts",
                vec![
                    op("d", WriteAction::Deactivate, Some("30"), None, &[]),
                    op(
                        "r",
                        WriteAction::Reactivate,
                        Some("30"),
                        Some(contact("Ann", "Lee", "ann@contoso.com")),
                        &["first_name"],
                    ),
                    op("x", WriteAction::Delete, Some("31"), None, &[]),
                    op("m", WriteAction::Deactivate, Some("99"), None, &[]),
                    op("n", WriteAction::Deactivate, None, None, &[]),
                ],
            )
        },
    )
    .unwrap();
    let outcome = |id: &str| &results.iter().find(|r| r.op_id == id).unwrap().outcome;
    assert_eq!(outcome("d").as_ref().unwrap().target_id, "30");
    assert_eq!(outcome("x").as_ref().unwrap().target_id, "31");
    assert_eq!(outcome("m").as_ref().unwrap_err().class(), "not-found");
    assert_eq!(outcome("n").as_ref().unwrap_err().class(), "invalid");
    let log = log.borrow();
    assert_eq!(
        log[0].body.as_ref().unwrap(),
        &json!([{"op": "replace", "path": "inactiveFlag", "value": true}])
    );
    assert_eq!(
        log[1].body.as_ref().unwrap(),
        &json!([{"op": "replace", "path": "firstName", "value": "Ann"},
                 {"op": "replace", "path": "inactiveFlag", "value": false}])
    );
    assert_eq!(log[2].method, Method::Delete);
    assert_eq!(log[2].url, format!("{ROOT}/company/contacts/31"));
    assert_eq!(log.len(), 4);
}

#[test]
fn errors_are_classified_and_throttling_stops_the_batch() {
    let r = |status: u16, body: &str| Response(response(status, body));
    let invalid = classify(&r(
        400,
        r#"{"code":"InvalidObject","message":"contact object is invalid","errors":[{"code":"NullValue","message":"The firstName field is required.","resource":"contact","field":"firstName"}]}"#,
    ));
    match &invalid {
        PluginError::Invalid(i) => {
            assert_eq!(i.fields[0].field, "first_name");
            assert!(i.message.contains("The firstName field is required."));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        classify(&r(
            400,
            r#"{"code":"InvalidClientId","message":"A valid clientId header is required."}"#
        ))
        .class(),
        "auth"
    );
    assert_eq!(
        classify(&r(401, r#"{"code":"Unauthorized"}"#)).class(),
        "auth"
    );
    assert_eq!(classify(&r(403, "{}")).class(), "forbidden");
    assert_eq!(classify(&r(404, "{}")).class(), "not-found");
    assert_eq!(classify(&r(500, "{}")).class(), "transient");
    assert_eq!(classify(&r(503, "")).class(), "transient");
    match classify(&Response(with_header(
        response(503, ""),
        "Retry-After",
        "4",
    ))) {
        PluginError::Throttled(t) => assert_eq!(t.retry_after_ms, Some(4000)),
        other => panic!("{other:?}"),
    }

    let log = Log::default();
    let results = with_http(
        recorder(&log, |_| {
            with_header(
                response(429, r#"{"code":"TooManyRequests","message":"Too many requests, please retry later."}"#),
                "Retry-After",
                "2",
            )
        }),
        || {
            exports::push::<ConnectWise>(
                CFG,
                "contacts",
                vec![
                    op("a", WriteAction::Deactivate, Some("1"), None, &[]),
                    op("b", WriteAction::Deactivate, Some("2"), None, &[]),
                ],
            )
        },
    )
    .unwrap();
    assert_eq!(log.borrow().len(), 1, "nothing after the throttled op");
    for r in &results {
        match &r.outcome {
            Err(PluginError::Throttled(t)) => assert_eq!(t.retry_after_ms, Some(2000)),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn test_connection_findings() {
    let ok = with_http(
        |r| {
            Ok(if r.url.ends_with("/system/info") {
                response(200, r#"{"version":"v2025.1","isCloud":true}"#)
            } else if r.url.contains("/count") {
                response(200, r#"{"count":3}"#)
            } else {
                response(200, COMM_TYPES)
            })
        },
        || exports::test_connection::<ConnectWise>(CFG),
    )
    .unwrap();
    let checks: Vec<(&str, Outcome)> = ok.iter().map(|f| (f.check.as_str(), f.outcome)).collect();
    assert_eq!(
        checks,
        [
            ("reachable", Outcome::Ok),
            ("credentials", Outcome::Ok),
            ("read-contacts", Outcome::Ok),
            ("communication-types", Outcome::Ok)
        ]
    );

    let bad = with_http(
        |_| {
            Ok(response(
                401,
                r#"{"code":"Unauthorized","message":"Authentication failed."}"#,
            ))
        },
        || exports::test_connection::<ConnectWise>(CFG),
    )
    .unwrap();
    assert_eq!(bad.len(), 2);
    assert_eq!(bad[1].check, "credentials");
    assert!(matches!(bad[1].outcome, Outcome::Failed));
    assert!(bad[1].cause.as_deref().unwrap().contains("401"));
    assert!(bad[1]
        .remedy
        .as_deref()
        .unwrap()
        .contains("<company id>+<public key>"));

    let no_client = with_http(
        |_| {
            Ok(response(
                400,
                r#"{"code":"InvalidClientId","message":"A valid clientId header is required."}"#,
            ))
        },
        || exports::test_connection::<ConnectWise>(CFG),
    )
    .unwrap();
    assert_eq!(no_client[1].check, "client-id");
    assert!(no_client[1]
        .remedy
        .as_deref()
        .unwrap()
        .contains("client_id"));

    let odd_types = with_http(
        |r| {
            Ok(if r.url.contains("communicationTypes") {
                response(
                    200,
                    r#"[{"id":1,"description":"Email"},{"id":2,"description":"Direct"}]"#,
                )
            } else {
                response(200, "{}")
            })
        },
        || exports::test_connection::<ConnectWise>(CFG),
    )
    .unwrap();
    let f = odd_types.last().unwrap();
    assert!(matches!(f.outcome, Outcome::Warning));
    assert!(
        f.cause.as_deref().unwrap().contains("mobile_type \"Cell\""),
        "{f:?}"
    );

    let down = with_http(
        |_| Err(PluginError::Transient("connection refused".into())),
        || exports::test_connection::<ConnectWise>(CFG),
    )
    .unwrap();
    assert_eq!(down.len(), 1);
    assert_eq!(down[0].check, "reachable");
}

#[test]
fn configuration_checks_and_secrets() {
    let f = exports::validate_config::<ConnectWise>(
        r#"{"site":"api-na.myconnectwise.net","client_id":"x"}"#,
    );
    assert_eq!(f.len(), 1);
    assert!(matches!(f[0].outcome, Outcome::Ok));
    let cfg: Config =
        syncbridge_sdk::config::parse(r#"{"site":"api-na.myconnectwise.net"}"#).unwrap();
    assert_eq!(
        cfg.root().unwrap(),
        "https://api-na.myconnectwise.net/v4_6_release/apis/3.0"
    );
    let f = exports::validate_config::<ConnectWise>(r#"{"site":"api-eu.myconnectwise.net"}"#);
    assert!(matches!(f[1].outcome, Outcome::Warning), "no client_id");
    for secret in [
        r#"{"site":"a.b","private_key":"x"}"#,
        r#"{"site":"a.b","publicKey":"x"}"#,
        r#"{"site":"a.b","password":"x"}"#,
    ] {
        let f = exports::validate_config::<ConnectWise>(secret);
        assert!(matches!(f[0].outcome, Outcome::Failed), "{secret}");
        assert!(f[0].remedy.as_deref().unwrap().contains("credential"));
    }
    for bad in [
        r#"{}"#,
        r#"{"site":"a.b/x"}"#,
        r#"{"base_url":"ftp://x"}"#,
        r#"{"site":"a.b","colour":1}"#,
    ] {
        assert!(
            matches!(
                exports::validate_config::<ConnectWise>(bad)[0].outcome,
                Outcome::Failed
            ),
            "{bad}"
        );
    }
    let d = exports::describe::<ConnectWise>();
    assert_eq!(d.credential_slots, ["default"]);
    assert!(!d.config_schema.contains("private"));
    let schema: Value = serde_json::from_str(&d.config_schema).unwrap();
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown keys are refused"
    );
    assert!(schema["properties"]["client_id"]["description"]
        .as_str()
        .unwrap()
        .contains("not a secret"));
}

#[test]
fn link_headers() {
    let h = r#"<https://x.test/a?page=1&pageSize=2>; rel="first", <https://x.test/a?page=3&conditions=id%20in%20(1,2)>; rel="next", <https://x.test/a?page=9>; rel="last""#;
    assert_eq!(
        next_link(h).as_deref(),
        Some("https://x.test/a?page=3&conditions=id%20in%20(1,2)")
    );
    assert_eq!(next_link(r#"<https://x.test/a?page=9>; rel="last""#), None);
    assert_eq!(
        next_link(r#"<https://x.test/n>;rel=next"#).as_deref(),
        Some("https://x.test/n")
    );
    assert_eq!(next_link(""), None);
    assert_eq!(Field::parse("contact_types"), Some(Field::ContactTypes));
    assert_eq!(Field::parse("first-name"), Some(Field::FirstName));
    assert_eq!(Field::parse("extra.x"), None);
    assert_eq!(canonical_field("lastName"), "last_name");
}

#[test]
fn a_contacts_pass_after_the_first_reads_what_changed_since_the_newest_it_saw() {
    let log = Log::default();
    let page = with_http(
        recorder(&log, move |_| {
            response(200, &Value::Array(vec![ann_row()]).to_string())
        }),
        || {
            exports::pull::<ConnectWise>(
                CFG,
                pull_req(
                    "contacts:company=10",
                    Some(r#"{"since":"2025-12-31T00:00:00Z"}"#),
                ),
            )
        },
    )
    .unwrap();
    let log = log.borrow();
    assert_eq!(
        log[0].query("conditions").as_deref(),
        Some("(company/id = 10) and (lastUpdated >= [2025-12-31T00:00:00Z])")
    );
    assert!(!page.full && !page.more, "a change feed, not a full read");
    let cursor = ChangeCursor::parse(page.cursor.as_deref(), Overlap::NONE).unwrap();
    assert_eq!(cursor.since.as_deref(), Some("2026-01-01T00:00:00Z"));
}

mod calendar;
