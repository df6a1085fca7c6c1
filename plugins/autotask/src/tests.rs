use super::*;
use std::cell::RefCell;
use std::rc::Rc;
use syncbridge_sdk::bindings::connector::syncbridge::plugin::http::{
    Method, Request as WitRequest,
};
use syncbridge_sdk::exports;
use syncbridge_sdk::testing::{response, state as test_state, with_http};

const CFG: &str =
    r#"{"api_user":"api@msp.example","zone_lookup_url":"http://zone.test/atservicesrest"}"#;
const ZONE: &str = r#"{"zoneName":"America East","url":"http://ws2.test/ATServicesRest/","webUrl":"http://ws2.test/","ci":1}"#;

type Log = Rc<RefCell<Vec<(Method, String, Option<Value>, Option<String>)>>>;

fn recorder(
    log: &Log,
    mut answer: impl FnMut(
            &WitRequest,
        ) -> syncbridge_sdk::bindings::connector::syncbridge::plugin::http::Response
        + 'static,
) -> impl FnMut(
    &WitRequest,
) -> Result<
    syncbridge_sdk::bindings::connector::syncbridge::plugin::http::Response,
    PluginError,
> + 'static {
    let log = log.clone();
    move |r| {
        let body = r
            .body
            .as_deref()
            .map(|b| serde_json::from_slice::<Value>(b).unwrap());
        log.borrow_mut()
            .push((r.method, r.url.clone(), body, r.credential.clone()));
        if r.url.contains("zoneInformation") {
            return Ok(response(200, ZONE));
        }
        Ok(answer(r))
    }
}

fn pull_req(scope: &str, cursor: Option<&str>) -> PullRequest {
    PullRequest {
        scope: scope.into(),
        cursor: cursor.map(str::to_owned),
        max_items: 1000,
    }
}

fn contact(first: &str, last: &str, email: &str, company: &str) -> Contact {
    Contact {
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        display_name: None,
        title: None,
        email: Some(email.into()),
        phone: None,
        mobile: None,
        company: Some(CompanyRef {
            id: company.into(),
            name: None,
        }),
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

#[test]
fn zone_is_discovered_without_credentials_and_cached() {
    let log = Log::default();
    with_http(
        recorder(&log, |_| {
            response(
                200,
                r#"{"items":[],"pageDetails":{"count":0,"nextPageUrl":null}}"#,
            )
        }),
        || {
            exports::pull::<Autotask>(CFG, pull_req("contacts", None)).unwrap();
            exports::pull::<Autotask>(CFG, pull_req("companies", None)).unwrap();
        },
    );
    let log = log.borrow();
    assert_eq!(log.len(), 3, "one zone lookup, two queries");
    assert_eq!(
        log[0].1,
        "http://zone.test/atservicesrest/v1.0/zoneInformation?user=api%40msp.example"
    );
    assert_eq!(log[0].3, None, "zone lookup carries no credential");
    assert_eq!(
        log[1].1,
        "http://ws2.test/ATServicesRest/V1.0/Contacts/query"
    );
    assert_eq!(log[1].3.as_deref(), Some("default"));
    assert_eq!(
        log[2].1,
        "http://ws2.test/ATServicesRest/V1.0/Companies/query"
    );
    assert!(test_state::get(ZONE_KEY).unwrap().contains("ws2.test"));
    assert_eq!(
        zone_lookup_url(&Config {
            api_user: "a@b.c".into(),
            base_url: None,
            zone_lookup_url: None
        }),
        "https://webservices.autotask.net/atservicesrest/v1.0/zoneInformation?user=a%40b.c"
    );
}

#[test]
fn pull_queries_with_filter_and_follows_next_page_url_verbatim() {
    let log = Log::default();
    let next =
        "http://ws2.test/ATServicesRest/V1.0/Contacts/query/next?paging=%7B%7D&search=%7B%7D";
    let page = with_http(
        recorder(&log, move |_| {
            response(
                200,
                &json!({"items":[{
                    "id": 30, "firstName": "Ann", "lastName": "Lee", "title": "CFO", "emailAddress": "ann@contoso.com",
                    "phone": "555 1", "mobilePhone": "", "companyID": 7, "companyLocationID": 9, "isActive": 1,
                    "lastModifiedDate": "2026-01-01T00:00:00Z", "emailAddress2": "a2@contoso.com"
                }],"pageDetails":{"count":1,"requestCount":500,"prevPageUrl":null,"nextPageUrl": next}})
                .to_string(),
            )
        }),
        || exports::pull::<Autotask>(CFG, pull_req("contacts:company=7", None)),
    )
    .unwrap();
    {
        let log = log.borrow();
        assert_eq!(log[1].0, Method::Post);
        assert_eq!(
            log[1].2,
            Some(
                json!({"MaxRecords": 500, "filter": [{"op": "eq", "field": "companyID", "value": 7}]})
            )
        );
    }
    assert!(page.more && page.full);
    let cursor = ChangeCursor::parse(page.cursor.as_deref(), Overlap::NONE).unwrap();
    assert_eq!(cursor.next.as_deref(), Some(next), "followed verbatim");
    assert_eq!(cursor.high.as_deref(), Some("2026-01-01T00:00:00Z"));
    let Some(ItemBody::Contact(c)) = &page.items[0].body else {
        panic!()
    };
    assert_eq!(page.items[0].id, "30");
    assert_eq!(
        page.items[0].version.as_deref(),
        Some("2026-01-01T00:00:00Z")
    );
    assert_eq!(c.first_name.as_deref(), Some("Ann"));
    assert_eq!(c.display_name.as_deref(), Some("Ann Lee"));
    assert_eq!(c.title.as_deref(), Some("CFO"));
    assert_eq!(c.email.as_deref(), Some("ann@contoso.com"));
    assert_eq!(c.phone.as_deref(), Some("555 1"));
    assert_eq!(c.mobile, None);
    assert_eq!(c.company.as_ref().unwrap().id, "7");
    assert_eq!(c.site.as_ref().unwrap().id, "9");
    assert!(c.active);
    assert_eq!(c.extra[0].name, "emailAddress2");

    let log2 = Log::default();
    let page = with_http(
        recorder(&log2, |_| {
            response(
                200,
                r#"{"items":[{"id":31,"isActive":0}],"pageDetails":{"nextPageUrl":null}}"#,
            )
        }),
        || exports::pull::<Autotask>(CFG, pull_req("contacts:company=7", Some(next))),
    )
    .unwrap();
    assert_eq!(log2.borrow()[0].0, Method::Get);
    assert_eq!(log2.borrow()[0].1, next);
    assert!(!page.more && page.cursor.is_none());
    let Some(ItemBody::Contact(c)) = &page.items[0].body else {
        panic!()
    };
    assert!(!c.active);
}

#[test]
fn companies_and_locations_scopes() {
    let log = Log::default();
    let (companies, locations) = with_http(
        recorder(&log, |r| {
            if r.url.contains("Companies") {
                response(
                    200,
                    r#"{"items":[{"id":7,"companyName":"Contoso"}],"pageDetails":{"nextPageUrl":null}}"#,
                )
            } else {
                response(
                    200,
                    r#"{"items":[{"id":9,"name":"Main","companyID":7}],"pageDetails":{"nextPageUrl":null}}"#,
                )
            }
        }),
        || {
            (
                exports::pull::<Autotask>(CFG, pull_req("companies", None)).unwrap(),
                exports::pull::<Autotask>(CFG, pull_req("locations:company=7", None)).unwrap(),
            )
        },
    );
    let log = log.borrow();
    assert_eq!(
        log[1].2.as_ref().unwrap()["filter"][0],
        json!({"op":"gte","field":"id","value":0})
    );
    assert_eq!(
        log[2].1,
        "http://ws2.test/ATServicesRest/V1.0/CompanyLocations/query"
    );
    assert!(
        matches!(&companies.items[0].body, Some(ItemBody::Company(c)) if c.name.as_deref() == Some("Contoso"))
    );
    assert!(
        matches!(&locations.items[0].body, Some(ItemBody::Site(s)) if s.id == "9" && s.name.as_deref() == Some("Main"))
    );
    assert_eq!(Scope::parse("bogus").unwrap_err().class(), "invalid");
    assert_eq!(
        Scope::parse("contacts:company=x").unwrap_err().class(),
        "invalid"
    );
}

#[test]
fn lookup_by_email_and_id() {
    let log = Log::default();
    let items = with_http(
        recorder(&log, |_| response(200, r#"{"items":[{"id":30,"emailAddress":"ann@contoso.com","isActive":1}],"pageDetails":{"nextPageUrl":null}}"#)),
        || {
            exports::lookup::<Autotask>(
                r#"{"api_user":"api@msp.example","base_url":"http://ws2.test/ATServicesRest"}"#,
                "contacts",
                vec!["email:ann@contoso.com".into(), "id:30".into()],
            )
        },
    )
    .unwrap();
    let log = log.borrow();
    assert_eq!(log.len(), 1, "base_url skips zone discovery");
    assert_eq!(
        log[0].1,
        "http://ws2.test/ATServicesRest/V1.0/Contacts/query"
    );
    assert_eq!(
        log[0].2.as_ref().unwrap()["filter"],
        json!([{"op":"or","items":[
            {"op":"eq","field":"emailAddress","value":"ann@contoso.com"},
            {"op":"in","field":"id","value":[30]}
        ]}])
    );
    assert_eq!(items.len(), 1);
    let err = exports::lookup::<Autotask>(CFG, "contacts", vec!["upn:x".into()]).unwrap_err();
    assert_eq!(err.class(), "invalid");
}

#[test]
fn push_creates_updates_and_deactivates_with_per_op_results() {
    let log = Log::default();
    let results = with_http(
        recorder(&log, |r| match (r.method, r.url.as_str()) {
            (Method::Get, u) if u.ends_with("/Contacts/31") => {
                response(200, r#"{"item":{"id":31,"companyID":8}}"#)
            }
            (Method::Post, u) if u.ends_with("/Companies/999/Contacts") => response(
                500,
                r#"{"errors":["Companies with id 999 was not found."]}"#,
            ),
            (Method::Post, _) => response(200, r#"{"itemId":101}"#),
            (Method::Patch, _) => {
                let body: Value = serde_json::from_slice(r.body.as_deref().unwrap()).unwrap();
                response(200, &json!({"itemId": body["id"]}).to_string())
            }
            _ => response(404, "{}"),
        }),
        || {
            let mut upd = contact("Ann", "Lee", "ann@contoso.com", "7");
            upd.title = Some("CEO".into());
            upd.phone = None;
            exports::push::<Autotask>(
                CFG,
                "contacts",
                vec![
                    op(
                        "c1",
                        WriteAction::Create,
                        None,
                        Some(contact("Bo", "Ek", "bo@contoso.com", "7")),
                        &[],
                    ),
                    op(
                        "c2",
                        WriteAction::Create,
                        None,
                        Some(contact("Bad", "Co", "x@y.z", "999")),
                        &[],
                    ),
                    op(
                        "u1",
                        WriteAction::Update,
                        Some("30"),
                        Some(upd),
                        &["title", "phone"],
                    ),
                    op("d1", WriteAction::Deactivate, Some("31"), None, &[]),
                    op(
                        "r1",
                        WriteAction::Reactivate,
                        Some("30"),
                        Some(contact("Ann", "Lee", "ann@contoso.com", "7")),
                        &[],
                    ),
                    op("x1", WriteAction::Delete, Some("30"), None, &[]),
                ],
            )
        },
    )
    .unwrap();
    assert_eq!(results.len(), 6);
    let outcome = |id: &str| &results.iter().find(|r| r.op_id == id).unwrap().outcome;
    assert_eq!(outcome("c1").as_ref().unwrap().target_id, "101");
    assert_eq!(outcome("c2").as_ref().unwrap_err().class(), "invalid");
    assert_eq!(outcome("u1").as_ref().unwrap().target_id, "30");
    assert_eq!(outcome("d1").as_ref().unwrap().target_id, "31");
    assert_eq!(outcome("r1").as_ref().unwrap().target_id, "30");
    assert_eq!(outcome("x1").as_ref().unwrap_err().class(), "unsupported");
    let log = log.borrow();
    let calls: Vec<(Method, &str, Option<&Value>)> = log
        .iter()
        .skip(1)
        .map(|(m, u, b, _)| (*m, u.as_str(), b.as_ref()))
        .collect();
    assert_eq!(
        calls[0].1,
        "http://ws2.test/ATServicesRest/V1.0/Companies/7/Contacts"
    );
    assert_eq!(
        calls[0].2.unwrap(),
        &json!({"firstName":"Bo","lastName":"Ek","emailAddress":"bo@contoso.com","isActive":1})
    );
    // update: only the changed, non-blank fields plus the id
    assert_eq!(calls[2].0, Method::Patch);
    assert_eq!(
        calls[2].1,
        "http://ws2.test/ATServicesRest/V1.0/Companies/7/Contacts"
    );
    assert_eq!(calls[2].2.unwrap(), &json!({"id":30,"title":"CEO"}));
    // deactivate without a body: the company is read first
    assert_eq!(calls[3].0, Method::Get);
    assert_eq!(
        calls[4].1,
        "http://ws2.test/ATServicesRest/V1.0/Companies/8/Contacts"
    );
    assert_eq!(calls[4].2.unwrap(), &json!({"id":31,"isActive":0}));
    assert_eq!(calls[5].2.unwrap(), &json!({"id":30,"isActive":1}));
    assert_eq!(calls.len(), 6, "delete sends nothing");
}

#[test]
fn a_throttled_op_stops_the_rest_of_the_batch() {
    let log = Log::default();
    let results = with_http(
        recorder(&log, |_| {
            response(429, r#"{"errors":["threshold exceeded"]}"#)
        }),
        || {
            exports::push::<Autotask>(
                CFG,
                "contacts",
                vec![
                    op(
                        "a",
                        WriteAction::Create,
                        None,
                        Some(contact("A", "A", "a@x.y", "7")),
                        &[],
                    ),
                    op(
                        "b",
                        WriteAction::Create,
                        None,
                        Some(contact("B", "B", "b@x.y", "7")),
                        &[],
                    ),
                ],
            )
        },
    )
    .unwrap();
    assert_eq!(log.borrow().len(), 2, "zone + one create");
    assert!(results
        .iter()
        .all(|r| matches!(r.outcome, Err(PluginError::Throttled(_)))));
}

#[test]
fn test_connection_findings() {
    let ok = with_http(
        |r| {
            Ok(if r.url.contains("zoneInformation") {
                response(200, ZONE)
            } else if r.url.ends_with("ThresholdInformation") {
                response(
                    200,
                    r#"{"externalRequestThreshold":10000,"currentTimeframeRequestCount":9500}"#,
                )
            } else {
                response(200, r#"{"queryCount":3}"#)
            })
        },
        || exports::test_connection::<Autotask>(CFG),
    )
    .unwrap();
    let checks: Vec<&str> = ok.iter().map(|f| f.check.as_str()).collect();
    assert_eq!(
        checks,
        ["zone", "credentials", "request-threshold", "read-contacts"]
    );
    assert!(matches!(ok[2].outcome, Outcome::Warning));

    let bad = with_http(
        |r| {
            Ok(if r.url.contains("zoneInformation") {
                response(200, ZONE)
            } else {
                response(401, r#"{"errors":["Unauthorized"]}"#)
            })
        },
        || exports::test_connection::<Autotask>(CFG),
    )
    .unwrap();
    assert!(matches!(bad[1].outcome, Outcome::Failed));
    assert!(bad[1]
        .remedy
        .as_deref()
        .unwrap()
        .contains("ApiIntegrationCode"));

    let no_zone = with_http(
        |_| {
            Ok(response(
                500,
                r#"{"errors":["Zone information could not be determined"]}"#,
            ))
        },
        || exports::test_connection::<Autotask>(CFG),
    )
    .unwrap();
    assert_eq!(no_zone.len(), 1);
    assert!(matches!(no_zone[0].outcome, Outcome::Failed));
    assert!(no_zone[0].remedy.as_deref().unwrap().contains("api_user"));
}

#[test]
fn field_names_and_classification() {
    assert_eq!(autotask_field("first-name"), Some("firstName"));
    assert_eq!(autotask_field("mobile"), Some("mobilePhone"));
    assert_eq!(autotask_field("site"), Some("companyLocationID"));
    assert_eq!(autotask_field("nope"), None);
    let r = Response(response(
        500,
        r#"{"errors":["An internal error occurred."]}"#,
    ));
    assert_eq!(classify(&r).class(), "transient");
    let r = Response(response(
        500,
        r#"{"errors":["Unable to find foo in the Contact entity."]}"#,
    ));
    assert_eq!(classify(&r).class(), "invalid");
    assert!(matches!(
        exports::validate_config::<Autotask>(r#"{"api_user":"nope"}"#)[0].outcome,
        Outcome::Failed
    ));
}

#[test]
fn a_cursor_on_another_host_is_refused() {
    let log = Log::default();
    let err = with_http(recorder(&log, |_| response(200, "{}")), || {
        exports::pull::<Autotask>(
            CFG,
            pull_req(
                "contacts",
                Some("https://evil.example/ATServicesRest/V1.0/Contacts/query/next?x"),
            ),
        )
    })
    .unwrap_err();
    assert_eq!(err.class(), "invalid");
    assert!(
        log.borrow().iter().all(|(_, _, _, cred)| cred.is_none()),
        "no credential sent"
    );
}

#[test]
fn the_scope_company_is_the_default_for_creates() {
    let log = Log::default();
    let results = with_http(recorder(&log, |_| response(200, r#"{"itemId":5}"#)), || {
        let mut c = contact("A", "B", "a@b.c", "1");
        c.company = None;
        exports::push::<Autotask>(
            r#"{"api_user":"api@msp.example","base_url":"http://ws2.test/ATServicesRest/V1.0/"}"#,
            "contacts:company=42",
            vec![op("a", WriteAction::Create, None, Some(c.clone()), &[])],
        )
        .unwrap()
        .into_iter()
        .chain(
            exports::push::<Autotask>(
                CFG,
                "contacts",
                vec![op("b", WriteAction::Create, None, Some(c), &[])],
            )
            .unwrap(),
        )
        .collect::<Vec<_>>()
    });
    assert_eq!(results[0].outcome.as_ref().unwrap().target_id, "5");
    assert_eq!(
        log.borrow()[0].1,
        "http://ws2.test/ATServicesRest/V1.0/Companies/42/Contacts"
    );
    assert_eq!(results[1].outcome.as_ref().unwrap_err().class(), "invalid");
}

#[test]
fn a_contacts_pass_after_the_first_reads_what_changed_since_the_newest_it_saw() {
    let log = Log::default();
    let page = with_http(
        recorder(&log, move |_| {
            response(
                200,
                &json!({"items":[{"id": 31, "companyID": 7, "isActive": 1,
                    "lastModifiedDate": "2026-01-03T00:00:00Z"}],
                    "pageDetails":{"count":1,"requestCount":500,"prevPageUrl":null,"nextPageUrl":null}})
                .to_string(),
            )
        }),
        || {
            exports::pull::<Autotask>(
                CFG,
                pull_req(
                    "contacts:company=7",
                    Some(r#"{"since":"2026-01-02T00:00:00Z"}"#),
                ),
            )
        },
    )
    .unwrap();
    let log = log.borrow();
    assert_eq!(
        log[1].2,
        Some(json!({"MaxRecords": 500, "filter": [
            {"op": "eq", "field": "companyID", "value": 7},
            {"op": "gte", "field": "lastModifiedDate", "value": "2026-01-02T00:00:00.000Z"}
        ]}))
    );
    assert!(!page.full && !page.more, "a change feed, not a full read");
    let cursor = ChangeCursor::parse(page.cursor.as_deref(), Overlap::NONE).unwrap();
    assert_eq!(cursor.since.as_deref(), Some("2026-01-03T00:00:00Z"));
}
