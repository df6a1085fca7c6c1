use super::*;
use std::cell::RefCell;
use std::rc::Rc;
use syncbridge_sdk::exports;
use syncbridge_sdk::testing::{response, state as test_state, with_http};

const CFG: &str = r#"{"graph_url":"http://graph.test/v1.0/","tenant":"contoso.onmicrosoft.com"}"#;
const SKU: &str = "c7df2760-2c81-4ef7-b578-5b5392b571df";

/// A delta entry with every selected property.
fn full_user(id: &str, upn: &str) -> Value {
    json!({"id": id, "userPrincipalName": upn, "mail": null, "givenName": null, "surname": null,
        "displayName": null, "jobTitle": null, "businessPhones": [], "mobilePhone": null,
        "department": null, "accountEnabled": true, "assignedLicenses": []})
}

fn req(cursor: Option<&str>) -> PullRequest {
    PullRequest {
        scope: "users".into(),
        cursor: cursor.map(str::to_owned),
        max_items: 50,
    }
}

fn skus_body() -> String {
    json!({"value":[{"skuId": SKU, "skuPartNumber": "ENTERPRISEPACK"}]}).to_string()
}

fn header<'a>(
    r: &'a syncbridge_sdk::bindings::connector::syncbridge::plugin::http::Request,
    name: &str,
) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

#[test]
fn first_pull_selects_fields_and_follows_next_link() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let page = with_http(
        move |r| {
            s.borrow_mut().push(r.url.clone());
            assert_eq!(r.credential.as_deref(), Some("default"));
            if r.url.contains("subscribedSkus") {
                return Ok(response(200, &skus_body()));
            }
            assert_eq!(header(r, "Prefer"), Some("odata.maxpagesize=50"));
            Ok(response(
                200,
                &json!({
                    "@odata.nextLink": "http://graph.test/v1.0/users/delta?$skiptoken=abc",
                    "value": [{
                        "id": "u1", "userPrincipalName": "adele@contoso.com", "mail": "Adele@contoso.com",
                        "givenName": "Adele", "surname": "Vance", "displayName": "Adele Vance",
                        "jobTitle": "", "businessPhones": ["+1 425 555 0109"], "mobilePhone": null,
                        "department": "IT", "accountEnabled": true,
                        "assignedLicenses": [{"skuId": SKU, "disabledPlans": []}]
                    }]
                })
                .to_string(),
            ))
        },
        || exports::pull::<Graph>(CFG, req(None)),
    )
    .unwrap();
    let urls = seen.borrow();
    assert_eq!(
        urls[0],
        format!("http://graph.test/v1.0/users/delta?$select={USER_SELECT}")
    );
    assert!(USER_SELECT.contains("assignedLicenses") && USER_SELECT.contains("accountEnabled"));
    assert_eq!(
        urls[1],
        "http://graph.test/v1.0/subscribedSkus?$select=skuId,skuPartNumber"
    );
    assert!(page.more && page.full);
    assert_eq!(
        page.cursor.as_deref(),
        Some("http://graph.test/v1.0/users/delta?$skiptoken=abc")
    );
    let Some(ItemBody::DirectoryUser(u)) = &page.items[0].body else {
        panic!("not a user")
    };
    assert_eq!(page.items[0].id, "u1");
    assert_eq!(u.user_principal_name, "adele@contoso.com");
    assert_eq!(u.mail.as_deref(), Some("Adele@contoso.com"));
    assert_eq!(u.job_title, None, "blank strings are absent");
    assert_eq!(u.business_phone.as_deref(), Some("+1 425 555 0109"));
    assert_eq!(u.department.as_deref(), Some("IT"));
    assert!(u.account_enabled);
    assert_eq!(
        u.licenses[0].sku_part_number.as_deref(),
        Some("ENTERPRISEPACK")
    );
    assert!(u.groups.is_empty());
    assert!(test_state::get(SKU_CACHE_KEY)
        .unwrap()
        .contains("ENTERPRISEPACK"));
}

#[test]
fn next_pages_of_a_full_pass_stay_full_and_the_delta_link_ends_it() {
    let calls = Rc::new(RefCell::new(0));
    let c = calls.clone();
    let handler =
        move |r: &syncbridge_sdk::bindings::connector::syncbridge::plugin::http::Request| {
            *c.borrow_mut() += 1;
            Ok(if r.url.contains("$skiptoken") {
                response(
                    200,
                    &json!({"@odata.deltaLink":"http://graph.test/v1.0/users/delta?$deltatoken=d1","value":[full_user("u2", "b@x.test")]}).to_string(),
                )
            } else {
                response(
                    200,
                    r#"{"@odata.deltaLink":"http://graph.test/v1.0/users/delta?$deltatoken=d2","value":[{"id":"u3","@removed":{"reason":"deleted"}},{"id":"u4","@removed":{"reason":"changed"}}]}"#,
                )
            })
        };
    with_http(handler, || {
        test_state::set(PASS_KEY, "1");
        let last = exports::pull::<Graph>(
            CFG,
            req(Some("http://graph.test/v1.0/users/delta?$skiptoken=abc")),
        )
        .unwrap();
        assert!(!last.more && last.full);
        assert_eq!(
            last.cursor.as_deref(),
            Some("http://graph.test/v1.0/users/delta?$deltatoken=d1")
        );
        assert_eq!(test_state::get(PASS_KEY), None);
        let delta = exports::pull::<Graph>(CFG, req(last.cursor.as_deref())).unwrap();
        assert!(!delta.full && !delta.more);
        assert_eq!(delta.items.len(), 2);
        for item in &delta.items {
            assert!(matches!(item.removed, Some(Removal::Deleted)));
            assert!(item.body.is_none());
        }
    });
    assert_eq!(
        *calls.borrow(),
        2,
        "no subscribedSkus call without licences"
    );
}

#[test]
fn an_expired_delta_token_restarts_a_full_read() {
    let page = with_http(
        |_| {
            Ok(response(
                410,
                r#"{"error":{"code":"SyncStateNotFound","message":"The sync state generation is not found or has expired."}}"#,
            ))
        },
        || exports::pull::<Graph>(CFG, req(Some("http://graph.test/v1.0/users/delta?$deltatoken=old"))),
    )
    .unwrap();
    assert!(page.items.is_empty());
    assert_eq!(page.cursor, None);
    assert!(page.more && page.full);
}

#[test]
fn throttling_and_auth_errors_propagate() {
    let err = with_http(
        |_| {
            Err(PluginError::Throttled(Throttle {
                retry_after_ms: Some(2128),
                message: "429".into(),
            }))
        },
        || exports::pull::<Graph>(CFG, req(None)),
    )
    .unwrap_err();
    assert!(matches!(err, PluginError::Throttled(ref t) if t.retry_after_ms == Some(2128)));
    let err = with_http(
        |_| Ok(response(401, "{}")),
        || exports::pull::<Graph>(CFG, req(None)),
    )
    .unwrap_err();
    assert_eq!(err.class(), "auth");
}

#[test]
fn unknown_scope_is_invalid() {
    let err = exports::pull::<Graph>(
        CFG,
        PullRequest {
            scope: "groups".into(),
            cursor: None,
            max_items: 1,
        },
    )
    .unwrap_err();
    assert_eq!(err.class(), "invalid");
}

#[test]
fn groups_are_read_through_batch_when_configured() {
    let bodies = Rc::new(RefCell::new(Vec::new()));
    let b = bodies.clone();
    let page = with_http(
        move |r| {
            if r.url.ends_with("/$batch") {
                let body: Value = serde_json::from_slice(r.body.as_deref().unwrap()).unwrap();
                b.borrow_mut().push(body.clone());
                let id = body["requests"][0]["id"].clone();
                return Ok(response(
                    200,
                    &json!({"responses":[{"id": id, "status": 200, "headers": {}, "body": {"value": [
                        {"@odata.type": "#microsoft.graph.group", "id": "g1", "displayName": "All Staff"}
                    ]}}]})
                    .to_string(),
                ));
            }
            Ok(response(
                200,
                &json!({"@odata.deltaLink":"http://graph.test/v1.0/users/delta?$deltatoken=d","value":[full_user("u1", "a@x.test"),{"id":"u9","@removed":{"reason":"deleted"}}]}).to_string(),
            ))
        },
        || {
            exports::pull::<Graph>(
                r#"{"graph_url":"http://graph.test/v1.0","with_groups":true}"#,
                req(None),
            )
        },
    )
    .unwrap();
    let sent = bodies.borrow();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0]["requests"].as_array().unwrap().len(),
        1,
        "removed users are skipped"
    );
    assert_eq!(
        sent[0]["requests"][0]["url"],
        "/users/u1/transitiveMemberOf/microsoft.graph.group?$select=id,displayName"
    );
    let Some(ItemBody::DirectoryUser(u)) = &page.items[0].body else {
        panic!()
    };
    assert_eq!(u.groups[0].id, "g1");
    assert_eq!(u.groups[0].display_name.as_deref(), Some("All Staff"));
}

#[test]
fn a_throttled_batch_answer_is_throttled() {
    let err = with_http(
        |r| {
            Ok(if r.url.ends_with("/$batch") {
                response(
                    200,
                    r#"{"responses":[{"id":"0","status":429,"headers":{"Retry-After":"2.128"},"body":{"error":{"code":"TooManyRequests"}}}]}"#,
                )
            } else {
                response(
                    200,
                    &json!({"@odata.deltaLink":"http://graph.test/v1.0/users/delta?$deltatoken=d","value":[full_user("u1", "a@x.test")]}).to_string(),
                )
            })
        },
        || exports::pull::<Graph>(r#"{"with_groups":true,"graph_url":"http://graph.test/v1.0"}"#, req(None)),
    )
    .unwrap_err();
    assert!(matches!(err, PluginError::Throttled(ref t) if t.retry_after_ms == Some(2128)));
}

#[test]
fn test_connection_explains_a_bad_secret() {
    let findings = with_http(
        |_| {
            Err(PluginError::Auth(
                "token request failed: invalid_client: AADSTS7000215: Invalid client secret provided."
                    .into(),
            ))
        },
        || exports::test_connection::<Graph>(CFG),
    )
    .unwrap();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].check, "credentials");
    assert!(matches!(findings[0].outcome, Outcome::Failed));
    assert!(findings[0]
        .cause
        .as_deref()
        .unwrap()
        .contains("AADSTS7000215"));
    assert!(findings[0]
        .remedy
        .as_deref()
        .unwrap()
        .contains("client secret"));
}

#[test]
fn sign_in_errors_map_to_remedies() {
    let (cause, remedy) =
        explain_sign_in("invalid_grant: AADSTS50076: Due to a configuration change ... MFA");
    assert!(cause.contains("multi-factor"));
    assert!(remedy.contains("Conditional Access"));
    let (_, remedy) = explain_sign_in("AADSTS700016: Application not found");
    assert!(remedy.contains("admin consent"));
}

#[test]
fn test_connection_checks_tenant_users_and_licences() {
    let findings = with_http(
        |r| {
            Ok(if r.url.contains("/organization") {
                response(
                    200,
                    r#"{"value":[{"id":"t-1","displayName":"fabrikam","verifiedDomains":[{"name":"fabrikam.onmicrosoft.com"}]}]}"#,
                )
            } else if r.url.contains("/users") {
                response(403, r#"{"error":{"code":"Authorization_RequestDenied"}}"#)
            } else {
                response(200, &skus_body())
            })
        },
        || exports::test_connection::<Graph>(CFG),
    )
    .unwrap();
    let by = |c: &str| findings.iter().find(|f| f.check == c).unwrap();
    assert!(matches!(by("credentials").outcome, Outcome::Ok));
    assert!(matches!(by("tenant").outcome, Outcome::Failed));
    assert!(by("read-users")
        .remedy
        .as_deref()
        .unwrap()
        .contains("User.Read.All"));
    assert!(matches!(by("licenses").outcome, Outcome::Ok));
}

#[test]
fn graph_401_and_describe() {
    let findings = with_http(
        |_| {
            Ok(response(
                401,
                r#"{"error":{"code":"InvalidAuthenticationToken"}}"#,
            ))
        },
        || exports::test_connection::<Graph>(CFG),
    )
    .unwrap();
    assert!(matches!(findings[0].outcome, Outcome::Failed));
    assert!(findings[0]
        .cause
        .as_deref()
        .unwrap()
        .contains("InvalidAuthenticationToken"));
    let d = exports::describe::<Graph>();
    assert_eq!(d.credential_slots, vec!["default".to_string()]);
    assert!(matches!(
        d.reads[..],
        [ItemKind::DirectoryUser, ItemKind::EmailMessage]
    ));
    assert!(matches!(
        exports::validate_config::<Graph>("{\"graph_url\":\"ftp://x\"}")[0].outcome,
        Outcome::Failed
    ));
}

#[test]
fn partial_delta_entries_are_read_again_in_full() {
    let batches = Rc::new(RefCell::new(Vec::new()));
    let b = batches.clone();
    let page = with_http(
        move |r| {
            if r.url.ends_with("/$batch") {
                let body: Value = serde_json::from_slice(r.body.as_deref().unwrap()).unwrap();
                b.borrow_mut().push(body.clone());
                let mut full = full_user("u1", "a@x.test");
                full["jobTitle"] = json!("CTO");
                full["givenName"] = json!("Ada");
                return Ok(response(
                    200,
                    &json!({"responses": [
                        {"id": body["requests"][0]["id"], "status": 200, "body": full},
                        {"id": body["requests"][1]["id"], "status": 404, "body": {"error": {"code": "Request_ResourceNotFound"}}}
                    ]})
                    .to_string(),
                ));
            }
            Ok(response(
                200,
                &json!({"@odata.deltaLink": "http://graph.test/v1.0/users/delta?$deltatoken=d2", "value": [
                    {"id": "u1", "jobTitle": "CTO"},
                    {"id": "u7", "displayName": "Gone Soon"},
                    full_user("u3", "c@x.test")
                ]})
                .to_string(),
            ))
        },
        || exports::pull::<Graph>(CFG, req(Some("http://graph.test/v1.0/users/delta?$deltatoken=d1"))),
    )
    .unwrap();
    let sent = batches.borrow();
    assert_eq!(sent.len(), 1);
    let urls: Vec<&str> = sent[0]["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        [
            format!("/users/u1?$select={USER_SELECT}"),
            format!("/users/u7?$select={USER_SELECT}")
        ]
    );
    let Some(ItemBody::DirectoryUser(u)) = &page.items[0].body else {
        panic!()
    };
    assert_eq!(
        u.given_name.as_deref(),
        Some("Ada"),
        "completed from the full read"
    );
    assert_eq!(u.job_title.as_deref(), Some("CTO"));
    assert!(matches!(page.items[1].removed, Some(Removal::Deleted)));
    assert!(page.items[2].body.is_some());
}

#[test]
fn a_cursor_on_another_host_is_refused() {
    let err = with_http(
        |_| panic!("nothing may be sent"),
        || {
            exports::pull::<Graph>(
                CFG,
                req(Some("https://evil.example/v1.0/users/delta?$deltatoken=x")),
            )
        },
    )
    .unwrap_err();
    assert_eq!(err.class(), "invalid");
}

#[test]
fn absent_properties_of_a_full_pass_are_nulls() {
    let page = with_http(
        |r| {
            assert!(!r.url.ends_with("/$batch"), "no completion in a full pass");
            Ok(response(
                200,
                r#"{"@odata.deltaLink":"http://graph.test/v1.0/users/delta?$deltatoken=d","value":[{"id":"u1","userPrincipalName":"a@x.test","accountEnabled":false}]}"#,
            ))
        },
        || exports::pull::<Graph>(CFG, req(None)),
    )
    .unwrap();
    let Some(ItemBody::DirectoryUser(u)) = &page.items[0].body else {
        panic!()
    };
    assert!(!u.account_enabled);
    assert!(u.licenses.is_empty() && u.mail.is_none());
}

// ----------------------------------------------------------------------------------------------
// group membership changes (groups/delta)

const GCFG: &str = r#"{"graph_url":"http://graph.test/v1.0","with_groups":true}"#;
const G: &str = "http://graph.test/v1.0";

type HttpRequest = syncbridge_sdk::bindings::connector::syncbridge::plugin::http::Request;
type HttpResponse = syncbridge_sdk::bindings::connector::syncbridge::plugin::http::Response;
/// URLs a stubbed Graph saw.
type Seen = Rc<RefCell<Vec<String>>>;

/// Answers `$batch` calls: `GET users/{id}` from `users` (404 for the others) and no groups
/// for `transitiveMemberOf`; other URLs through `other`. Records every URL (batched ones as
/// `batch:<url>`).
fn graph_stub(
    users: Vec<Value>,
    mut other: impl FnMut(&str) -> (u16, Value) + 'static,
) -> (
    impl FnMut(&HttpRequest) -> Result<HttpResponse, PluginError>,
    Seen,
) {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let handler = move |r: &HttpRequest| {
        if r.url.ends_with("/$batch") {
            let body: Value = serde_json::from_slice(r.body.as_deref().unwrap()).unwrap();
            let mut responses = Vec::new();
            for q in body["requests"].as_array().unwrap() {
                let url = q["url"].as_str().unwrap().to_owned();
                s.borrow_mut().push(format!("batch:{url}"));
                let answer = if url.contains("/transitiveMemberOf/") {
                    json!({"id": q["id"], "status": 200, "body": {"value": []}})
                } else {
                    let id = url.trim_start_matches("/users/").split('?').next().unwrap();
                    match users.iter().find(|u| u["id"] == id) {
                        Some(u) => json!({"id": q["id"], "status": 200, "body": u}),
                        None => {
                            json!({"id": q["id"], "status": 404, "body": {"error": {"code": "Request_ResourceNotFound"}}})
                        }
                    }
                };
                responses.push(answer);
            }
            return Ok(response(
                200,
                &json!({ "responses": responses }).to_string(),
            ));
        }
        s.borrow_mut().push(r.url.clone());
        let (status, body) = other(&r.url);
        Ok(response(status, &body.to_string()))
    };
    (handler, seen)
}

fn cursor_of(page: &Page) -> UsersCursor {
    UsersCursor::parse(page.cursor.as_deref().expect("a cursor"))
}

fn ids(page: &Page) -> Vec<&str> {
    page.items.iter().map(|i| i.id.as_str()).collect()
}

#[test]
fn a_delta_round_returns_the_users_whose_membership_changed() {
    let (handler, seen) = graph_stub(vec![full_user("u5", "e@x.test")], |url| {
        if url == format!("{G}/groups/delta?$deltatoken=g1") {
            (
                200,
                json!({"@odata.deltaLink": format!("{G}/groups/delta?$deltatoken=g2"), "value": [
                    {"id": "g-mgmt", "members@delta": [
                        {"@odata.type": "#microsoft.graph.user", "id": "u5"},
                        {"@odata.type": "#microsoft.graph.user", "id": "u1", "@removed": {"reason": "deleted"}},
                        {"@odata.type": "#microsoft.graph.group", "id": "g-team"},
                        {"@odata.type": "#microsoft.graph.device", "id": "d1"}
                    ]},
                    {"id": "g-gone", "@removed": {"reason": "changed"}}
                ]}),
            )
        } else if url
            == format!("{G}/groups/g-team/transitiveMembers/microsoft.graph.user?$select=id")
        {
            (
                200,
                json!({"@odata.nextLink": format!("{G}/groups/g-team/transitiveMembers/microsoft.graph.user?$select=id&$skiptoken=t2"),
                           "value": [{"id": "u6"}]}),
            )
        } else if url.contains("$skiptoken=t2") {
            (200, json!({"value": [{"id": "u5"}, {"id": "u1"}]}))
        } else if url == format!("{G}/users/delta?$deltatoken=d1") {
            (
                200,
                json!({"@odata.deltaLink": format!("{G}/users/delta?$deltatoken=d2"), "value": [full_user("u1", "a@x.test")]}),
            )
        } else {
            panic!("unexpected {url}")
        }
    });
    let cursor = UsersCursor {
        users: Some(format!("{G}/users/delta?$deltatoken=d1")),
        groups: Some(format!("{G}/groups/delta?$deltatoken=g1")),
        ..UsersCursor::default()
    };
    let page = with_http(handler, || {
        exports::pull::<Graph>(GCFG, req(Some(&cursor.encode())))
    })
    .unwrap();
    assert!(!page.more && !page.full);
    assert_eq!(
        ids(&page),
        ["u1", "u5"],
        "u1 comes with the page, u5 is read again, u6 no longer exists"
    );
    assert!(page.items.iter().all(|i| i.body.is_some()));
    assert_eq!(
        cursor_of(&page),
        UsersCursor {
            users: Some(format!("{G}/users/delta?$deltatoken=d2")),
            groups: Some(format!("{G}/groups/delta?$deltatoken=g2")),
            ..UsersCursor::default()
        }
    );
    let seen = seen.borrow();
    assert_eq!(
        seen[0],
        format!("{G}/groups/delta?$deltatoken=g1"),
        "{seen:#?}"
    );
    let user_reads: Vec<&String> = seen
        .iter()
        .filter(|u| u.starts_with("batch:/users/") && !u.contains("transitiveMemberOf"))
        .collect();
    assert_eq!(
        user_reads,
        [
            &format!("batch:/users/u5?$select={USER_SELECT}"),
            &format!("batch:/users/u6?$select={USER_SELECT}")
        ],
        "the page's own user is not read twice; the device is no user"
    );
    assert!(
        seen.iter().any(|u| u
            == "batch:/users/u5/transitiveMemberOf/microsoft.graph.group?$select=id,displayName"),
        "the extra user comes with its groups: {seen:#?}"
    );
}

#[test]
fn an_old_bare_cursor_starts_a_groups_round_that_reports_nothing() {
    let (handler, seen) = graph_stub(vec![], |url| {
        if url.contains("/groups/delta") {
            assert_eq!(url, format!("{G}/groups/delta?$select={GROUP_SELECT}"));
            (
                200,
                json!({"@odata.deltaLink": format!("{G}/groups/delta?$deltatoken=g1"), "value": [
                    {"id": "g-mgmt", "displayName": "Management", "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": "u7"}]}
                ]}),
            )
        } else {
            assert_eq!(url, format!("{G}/users/delta?$deltatoken=d1"));
            (
                200,
                json!({"@odata.deltaLink": format!("{G}/users/delta?$deltatoken=d2"), "value": []}),
            )
        }
    });
    let page = with_http(handler, || {
        exports::pull::<Graph>(GCFG, req(Some(&format!("{G}/users/delta?$deltatoken=d1"))))
    })
    .unwrap();
    assert!(
        page.items.is_empty(),
        "a full groups round reports no changes"
    );
    assert!(!page.more && !page.full);
    assert_eq!(
        cursor_of(&page),
        UsersCursor {
            users: Some(format!("{G}/users/delta?$deltatoken=d2")),
            groups: Some(format!("{G}/groups/delta?$deltatoken=g1")),
            ..UsersCursor::default()
        }
    );
    assert_eq!(seen.borrow().len(), 2, "no user read: {:#?}", seen.borrow());
}

#[test]
fn a_full_pass_pages_through_groups_first_and_keeps_the_groups_link() {
    let (handler, seen) = graph_stub(vec![], |url| {
        let body = if url == format!("{G}/groups/delta?$select={GROUP_SELECT}") {
            json!({"@odata.nextLink": format!("{G}/groups/delta?$skiptoken=gs1"), "value": [
                {"id": "g1", "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": "u1"}]}
            ]})
        } else if url.contains("$skiptoken=gs1") {
            json!({"@odata.deltaLink": format!("{G}/groups/delta?$deltatoken=g1"), "value": [
                {"id": "g2", "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": "u2"}]}
            ]})
        } else if url == format!("{G}/users/delta?$select={USER_SELECT}") {
            json!({"@odata.nextLink": format!("{G}/users/delta?$skiptoken=us1"), "value": [full_user("u1", "a@x.test")]})
        } else if url.contains("$skiptoken=us1") {
            json!({"@odata.deltaLink": format!("{G}/users/delta?$deltatoken=d1"), "value": [full_user("u2", "b@x.test")]})
        } else {
            panic!("unexpected {url}")
        };
        (200, body)
    });
    let pages = with_http(handler, || {
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = exports::pull::<Graph>(GCFG, req(cursor.as_deref())).unwrap();
            cursor = page.cursor.clone();
            let more = page.more;
            pages.push(page);
            if !more {
                return pages;
            }
        }
    });
    assert_eq!(pages.len(), 3);
    assert!(
        pages.iter().all(|p| p.full),
        "every page of a full pass is full"
    );
    assert!(pages[0].items.is_empty(), "the groups page brings nobody");
    let first = cursor_of(&pages[0]);
    assert!(first.groups_paging && first.groups_full && first.users.is_none());
    assert_eq!(ids(&pages[1]), ["u1"]);
    assert_eq!(ids(&pages[2]), ["u2"]);
    assert_eq!(
        cursor_of(&pages[1]),
        UsersCursor {
            users: Some(format!("{G}/users/delta?$skiptoken=us1")),
            groups: Some(format!("{G}/groups/delta?$deltatoken=g1")),
            ..UsersCursor::default()
        }
    );
    assert_eq!(
        cursor_of(&pages[2]),
        UsersCursor {
            users: Some(format!("{G}/users/delta?$deltatoken=d1")),
            groups: Some(format!("{G}/groups/delta?$deltatoken=g1")),
            ..UsersCursor::default()
        }
    );
    let seen = seen.borrow();
    assert!(
        !seen
            .iter()
            .any(|u| u.starts_with("batch:/users/") && !u.contains("transitiveMemberOf")),
        "a full pass re-reads nobody: {seen:#?}"
    );
}

#[test]
fn a_groups_page_with_more_to_come_returns_the_users_it_changed() {
    let (handler, _) = graph_stub(vec![full_user("u3", "c@x.test")], |url| {
        assert!(url.contains("$deltatoken=g1"), "{url}");
        (
            200,
            json!({"@odata.nextLink": format!("{G}/groups/delta?$skiptoken=gs2"), "value": [
                {"id": "g1", "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": "u3"}]}
            ]}),
        )
    });
    let cursor = UsersCursor {
        users: Some(format!("{G}/users/delta?$deltatoken=d1")),
        groups: Some(format!("{G}/groups/delta?$deltatoken=g1")),
        ..UsersCursor::default()
    };
    let page = with_http(handler, || {
        exports::pull::<Graph>(GCFG, req(Some(&cursor.encode())))
    })
    .unwrap();
    assert!(page.more && !page.full);
    assert_eq!(ids(&page), ["u3"]);
    let next = cursor_of(&page);
    assert!(next.groups_paging && !next.groups_full);
    assert_eq!(next.users, cursor.users, "the users round has not started");
    assert_eq!(
        next.groups.as_deref(),
        Some(format!("{G}/groups/delta?$skiptoken=gs2").as_str())
    );
}

#[test]
fn an_expired_groups_token_restarts_the_groups_round_and_never_fails_the_pull() {
    let (handler, seen) = graph_stub(vec![full_user("u9", "z@x.test")], |url| {
        if url.contains("$deltatoken=gold") {
            (
                410,
                json!({"error": {"code": "SyncStateNotFound", "message": "The sync state generation is not found or has expired."}}),
            )
        } else if url.contains("/groups/delta") {
            (
                200,
                json!({"@odata.deltaLink": format!("{G}/groups/delta?$deltatoken=g1"), "value": [
                    {"id": "g1", "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": "u9"}]}
                ]}),
            )
        } else {
            (
                200,
                json!({"@odata.deltaLink": format!("{G}/users/delta?$deltatoken=d2"), "value": []}),
            )
        }
    });
    let cursor = UsersCursor {
        users: Some(format!("{G}/users/delta?$deltatoken=d1")),
        groups: Some(format!("{G}/groups/delta?$deltatoken=gold")),
        ..UsersCursor::default()
    };
    let page = with_http(handler, || {
        exports::pull::<Graph>(GCFG, req(Some(&cursor.encode())))
    })
    .unwrap();
    assert!(page.items.is_empty());
    assert!(!page.more && !page.full);
    assert_eq!(
        cursor_of(&page).groups.as_deref(),
        Some(format!("{G}/groups/delta?$deltatoken=g1").as_str())
    );
    assert_eq!(
        seen.borrow()[1],
        format!("{G}/groups/delta?$select={GROUP_SELECT}"),
        "a fresh groups round"
    );
}

#[test]
fn groups_links_must_stay_on_the_graph_origin() {
    let cursor = UsersCursor {
        users: Some(format!("{G}/users/delta?$deltatoken=d1")),
        groups: Some("https://evil.example/v1.0/groups/delta?$deltatoken=x".into()),
        ..UsersCursor::default()
    };
    let err = with_http(
        |_| panic!("nothing may be sent"),
        || exports::pull::<Graph>(GCFG, req(Some(&cursor.encode()))),
    )
    .unwrap_err();
    assert_eq!(err.class(), "invalid");
    let err = with_http(
        |_| {
            Ok(response(
                200,
                r#"{"@odata.nextLink":"https://evil.example/v1.0/groups/delta?$skiptoken=x","value":[]}"#,
            ))
        },
        || exports::pull::<Graph>(GCFG, req(None)),
    )
    .unwrap_err();
    assert_eq!(err.class(), "remote");
}

#[test]
fn without_groups_a_json_cursor_keeps_its_users_link() {
    let cursor = UsersCursor {
        users: Some(format!("{G}/users/delta?$deltatoken=d1")),
        groups: Some(format!("{G}/groups/delta?$deltatoken=g1")),
        ..UsersCursor::default()
    };
    let page = with_http(
        |r| {
            assert_eq!(r.url, format!("{G}/users/delta?$deltatoken=d1"));
            Ok(response(
                200,
                &json!({"@odata.deltaLink": format!("{G}/users/delta?$deltatoken=d2"), "value": []})
                    .to_string(),
            ))
        },
        || exports::pull::<Graph>(CFG, req(Some(&cursor.encode()))),
    )
    .unwrap();
    assert_eq!(
        page.cursor.as_deref(),
        Some(format!("{G}/users/delta?$deltatoken=d2").as_str()),
        "a bare link, as before"
    );
}

#[test]
fn users_cursors_parse_bare_links_and_round_trip() {
    let bare = UsersCursor::parse("http://graph.test/v1.0/users/delta?$deltatoken=d1");
    assert_eq!(
        bare.users.as_deref(),
        Some("http://graph.test/v1.0/users/delta?$deltatoken=d1")
    );
    assert_eq!(bare.groups, None);
    let c = UsersCursor {
        users: Some("u".into()),
        groups: Some("g".into()),
        groups_paging: true,
        groups_full: false,
    };
    assert_eq!(
        c.encode(),
        r#"{"users":"u","groups":"g","groups_paging":true}"#
    );
    assert_eq!(UsersCursor::parse(&c.encode()), c);
}

#[test]
fn select_fields_extends_the_users_scope_and_refuses_what_graph_cannot_read() {
    let select = |scope: &str, fields: &[&str]| {
        exports::select_fields::<Graph>(CFG, scope, fields.iter().map(|f| f.to_string()).collect())
    };
    assert_eq!(select("users", &[]).unwrap(), "users");
    // Canonical fields need nothing; names are matched case-insensitively and kept once.
    assert_eq!(
        select(
            "users",
            &[
                "department",
                "COMPANYNAME",
                "extensionattribute7",
                "companyName"
            ]
        )
        .unwrap(),
        "users?select=companyName,extensionAttribute7"
    );
    // A scope that already reads fields keeps them.
    assert_eq!(
        select("users?select=employeeId", &["city"]).unwrap(),
        "users?select=city,employeeId"
    );
    let err = select("users", &["shoeSize"]).unwrap_err().describe();
    assert!(err.contains("\"shoeSize\""), "{err}");
    assert!(
        err.contains("companyName") && err.contains("extensionAttribute1"),
        "{err}"
    );
    // Single-user-only and complex properties cannot be read in a delta query.
    assert!(select("users", &["skills"]).is_err());
    assert!(select("users", &["extensionAttribute16"]).is_err());
    assert!(select("mailboxes", &["city"]).is_err());
    assert_eq!(select("mailboxes", &[]).unwrap(), "mailboxes");
}

#[test]
fn selected_fields_are_read_and_arrive_as_attributes() {
    let seen = Rc::new(RefCell::new(Vec::<String>::new()));
    let log = seen.clone();
    let mut user = full_user("u1", "a@contoso.com");
    user["companyName"] = json!("Fabrikam");
    user["proxyAddresses"] = json!(["SMTP:a@contoso.com", "smtp:b@contoso.com"]);
    user["onPremisesExtensionAttributes"] =
        json!({"extensionAttribute2": "vip", "extensionAttribute3": null});
    let body = json!({"value": [user], "@odata.deltaLink": "http://graph.test/v1.0/users/delta?$deltatoken=t1"}).to_string();
    let page = with_http(
        move |r| {
            log.borrow_mut().push(r.url.clone());
            if r.url.contains("subscribedSkus") {
                Ok(response(200, &skus_body()))
            } else {
                Ok(response(200, &body))
            }
        },
        || {
            exports::pull::<Graph>(
                CFG,
                PullRequest {
                    scope: "users?select=companyName,extensionAttribute2,extensionAttribute3,proxyAddresses".into(),
                    cursor: None,
                    max_items: 50,
                },
            )
        },
    )
    .unwrap();
    assert_eq!(
        seen.borrow()[0],
        format!("http://graph.test/v1.0/users/delta?$select={USER_SELECT},companyName,onPremisesExtensionAttributes,proxyAddresses")
    );
    let Some(ItemBody::DirectoryUser(u)) = &page.items[0].body else {
        panic!("a user")
    };
    let attrs: Vec<(&str, &str)> = u
        .attributes
        .iter()
        .map(|a| (a.name.as_str(), a.value.as_str()))
        .collect();
    assert_eq!(
        attrs,
        vec![
            ("companyName", "Fabrikam"),
            ("extensionAttribute2", "vip"),
            ("proxyAddresses", "SMTP:a@contoso.com"),
            ("proxyAddresses", "smtp:b@contoso.com"),
        ]
    );
}

#[test]
fn test_connection_opens_each_test_mailbox_and_names_why_one_fails() {
    let cfg = r#"{"graph_url":"http://graph.test/v1.0","test_mailboxes":["ann@contoso.com","bob@contoso.com","cy@contoso.com","dee@contoso.com"]}"#;
    let findings = with_http(
        |r| {
            Ok(if r.url.contains("/users/ann@contoso.com/calendar") {
                response(200, r#"{"id":"cal-1"}"#)
            } else if r.url.contains("/users/bob@contoso.com/calendar") {
                response(403, r#"{"error":{"code":"ErrorAccessDenied"}}"#)
            } else if r.url.contains("/users/cy@contoso.com/calendar") {
                response(404, r#"{"error":{"code":"MailboxNotEnabledForRESTAPI"}}"#)
            } else if r.url.contains("/users/dee@contoso.com/calendar") {
                response(404, r#"{"error":{"code":"ErrorInvalidUser"}}"#)
            } else if r.url.contains("/organization") {
                response(
                    200,
                    r#"{"value":[{"id":"t-1","displayName":"contoso","verifiedDomains":[]}]}"#,
                )
            } else if r.url.contains("/users") {
                response(200, r#"{"value":[]}"#)
            } else {
                response(200, &skus_body())
            })
        },
        || exports::test_connection::<Graph>(cfg),
    )
    .unwrap();
    let by = |c: &str| {
        findings
            .iter()
            .find(|f| f.check == c)
            .unwrap_or_else(|| panic!("{c}: {findings:?}"))
    };
    assert!(matches!(
        by("impersonation:ann@contoso.com").outcome,
        Outcome::Ok
    ));
    let text = |c: &str| {
        let f = by(c);
        assert!(matches!(f.outcome, Outcome::Failed), "{f:?}");
        format!("{} {}", f.cause.clone().unwrap(), f.remedy.clone().unwrap())
    };
    assert!(text("impersonation:bob@contoso.com").contains("Calendars.ReadWrite"));
    assert!(text("mailbox:cy@contoso.com").contains("Exchange Online licence"));
    assert!(text("mailbox:dee@contoso.com").contains("primary SMTP address"));
}
