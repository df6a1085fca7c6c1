//! Unit tests of the Dataverse simulator's request handling (no socket: `handle` directly).

use super::*;
use axum::body::Body;

const TOKEN: &str = "unit-token";
const ID: &str = "6f1c6a52-6a3f-4d1e-9a0b-1c2d3e4f5a61";

fn store() -> Arc<Store> {
    let store = Arc::new(Store::new(crate::config::Services::ALL, 1));
    let _ = store.base_url.set("http://127.0.0.1:1".into());
    DynamicsHandle(&store).add_token(TOKEN);
    store
}

async fn call(
    store: &Arc<Store>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Value) {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("Authorization", format!("Bearer {TOKEN}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b
        .body(match body {
            Some(v) => Body::from(v.to_string()),
            None => Body::empty(),
        })
        .unwrap();
    let r = handle(store.clone(), req).await;
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, v)
}

#[tokio::test]
async fn patch_is_an_upsert_unless_if_match_says_update() {
    let store = store();
    let path = format!("/api/data/v9.2/mailboxes({ID})");
    // If-Match: the row must exist.
    let (st, _, e) = call(
        &store,
        "PATCH",
        &path,
        &[("If-Match", "*")],
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(e["error"]["code"], "0x80040217");
    assert!(DynamicsHandle(&store).rows("mailboxes").is_empty());
    // Without it, the row is created with the URL's key.
    let (st, h, _) = call(
        &store,
        "PATCH",
        &path,
        &[],
        Some(json!({"name": "New", "emailaddress": "new@contoso.com"})),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert!(h["OData-EntityId"].to_str().unwrap().ends_with(&path[15..]));
    let row = DynamicsHandle(&store).get("mailboxes", ID).unwrap();
    assert_eq!(row["emailaddress"], "new@contoso.com");
    assert_eq!(row["enabledforact"], true, "defaults filled in");
    // An update of the existing row, with its new etag on request.
    let (st, _, v) = call(
        &store,
        "PATCH",
        &format!("{path}?$select=mailboxid"),
        &[("If-Match", "*"), ("Prefer", "return=representation")],
        Some(json!({"incomingemailstatus": 1})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["mailboxid"], ID);
    assert!(v["@odata.etag"].as_str().unwrap().starts_with("W/\""));
    assert!(v.get("name").is_none(), "only the selected columns");
    // If-None-Match: * never updates.
    let (st, _, e) = call(
        &store,
        "PATCH",
        &path,
        &[("If-None-Match", "*")],
        Some(json!({"name": "Other"})),
    )
    .await;
    assert_eq!(st, StatusCode::PRECONDITION_FAILED);
    assert_eq!(e["error"]["code"], "0x80040237");
    assert_eq!(
        DynamicsHandle(&store).get("mailboxes", ID).unwrap()["name"],
        "New"
    );
    // An upsert of another row with representation answers 201.
    let other = "6f1c6a52-6a3f-4d1e-9a0b-1c2d3e4f5a62";
    let (st, _, v) = call(
        &store,
        "PATCH",
        &format!("/api/data/v9.2/contacts({other})"),
        &[("Prefer", "return=representation")],
        Some(json!({"firstname": "Ann", "lastname": "Lee"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(v["contactid"], other);
    assert_eq!(v["fullname"], "Ann Lee");
}

// ---------------------------------------------------------------------------------------------
// e-mail activities

const EMAILS: &str = "/api/data/v9.2/emails";
const PARTIES: &str = "email_activity_parties($select=addressused,participationtypemask)";

fn received(subject: &str, to: Option<&str>, parties: Value) -> Value {
    json!({
        "subject": subject,
        "description": "<p>Hi</p>",
        "directioncode": false,
        "sender": "bob@fabrikam.com",
        "torecipients": to,
        "messageid": format!("<{subject}@fabrikam.com>"),
        "actualend": "2026-01-02T03:00:05Z",
        "statecode": 1,
        "statuscode": 4,
        "email_activity_parties": parties
    })
}

/// `path?$filter=…` with the filter percent-encoded, as clients send it.
fn filtered(path: &str, filter: &str, rest: &str) -> String {
    format!(
        "{path}?$filter={}{rest}",
        crate::util::percent_encode(filter)
    )
}

fn ids(v: &Value) -> Vec<String> {
    v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["subject"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn emails_take_their_states_times_and_parties() {
    let store = store();
    let body = received(
        "quote",
        Some("ann@contoso.com"),
        json!([
            {"addressused": "bob@fabrikam.com", "participationtypemask": 1},
            {"addressused": "ann@contoso.com", "participationtypemask": 2},
            {"addressused": "dee@contoso.com", "participationtypemask": 3}
        ]),
    );
    let (st, h, v) = call(
        &store,
        "POST",
        &format!("{EMAILS}?$select=activityid"),
        &[("Prefer", "return=representation")],
        Some(body.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["activityid"].as_str().unwrap().to_string();
    assert!(v["@odata.etag"].as_str().unwrap().starts_with("W/\""));
    assert!(v.get("subject").is_none() && v.get("email_activity_parties").is_none());
    assert!(h["OData-EntityId"]
        .to_str()
        .unwrap()
        .ends_with(&format!("/api/data/v9.2/emails({id})")));
    let row = DynamicsHandle(&store).get("emails", &id).unwrap();
    assert_eq!(
        (row["statecode"].clone(), row["statuscode"].clone()),
        (json!(1), json!(4))
    );
    assert_eq!(row["actualend"], "2026-01-02T03:00:05Z");
    assert_eq!(row["senton"], Value::Null);
    let parties = row["email_activity_parties"].as_array().unwrap();
    assert_eq!(parties.len(), 3);
    assert!(parties.iter().all(|p| p["activitypartyid"].is_string()));
    assert_eq!(parties[2]["addressused"], "dee@contoso.com");
    assert_eq!(parties[2]["participationtypemask"], 3);

    // Without Prefer: 204 and the new row's URL.
    let (st, h, _) = call(&store, "POST", EMAILS, &[], Some(body.clone())).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert!(h["OData-EntityId"].to_str().unwrap().contains("/emails("));
    // An e-mail is outgoing and a draft unless said otherwise.
    let (_, h, _) = call(&store, "POST", EMAILS, &[], Some(json!({"subject": "d"}))).await;
    let draft_url = h["OData-EntityId"].to_str().unwrap().to_string();
    let draft_id = &draft_url[draft_url.rfind('(').unwrap() + 1..draft_url.len() - 1];
    let draft = DynamicsHandle(&store).get("emails", draft_id).unwrap();
    assert_eq!(
        (
            draft["directioncode"].clone(),
            draft["statecode"].clone(),
            draft["statuscode"].clone()
        ),
        (json!(true), json!(0), json!(1))
    );

    // Dataverse's refusals: values out of range, columns the table does not have.
    for (bad, code) in [
        (json!({"statuscode": 9}), "0x80044331"),
        (json!({"statecode": 3}), "0x80044331"),
        (json!({"ccrecipients": "dee@contoso.com"}), "0x80060888"),
        (
            json!({"email_activity_parties": [{"addressused": "a@x.com", "participationtypemask": 14}]}),
            "0x80044331",
        ),
        (
            json!({"email_activity_parties": [{"emailaddress": "a@x.com"}]}),
            "0x80060888",
        ),
        (
            json!({"email_activity_parties": {"addressused": "a@x.com"}}),
            "0x80048d19",
        ),
    ] {
        let (st, _, e) = call(&store, "POST", EMAILS, &[], Some(bad.clone())).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(e["error"]["code"], code, "{bad}: {e}");
    }

    // Formatted values of the e-mail's own choices.
    let (st, _, v) = call(
        &store,
        "GET",
        &format!("{EMAILS}({id})?$select=statuscode,statecode"),
        &[("Prefer", "odata.include-annotations=\"*\"")],
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        v["statuscode@OData.Community.Display.V1.FormattedValue"],
        "Received"
    );
    assert_eq!(
        v["statecode@OData.Community.Display.V1.FormattedValue"],
        "Completed"
    );

    // Marked sent: the update takes state, status and times.
    let (st, _, _) = call(
        &store,
        "PATCH",
        &format!("{EMAILS}({id})"),
        &[("If-Match", "*")],
        Some(json!({"statecode": 1, "statuscode": 3, "actualend": "2026-01-03T00:00:00Z"})),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        DynamicsHandle(&store).get("emails", &id).unwrap()["statuscode"],
        3
    );
}

#[tokio::test]
async fn email_queries_filter_by_recipient_and_change_and_expand_parties() {
    let store = store();
    let d = DynamicsHandle(&store);
    let to = |a: &str| json!([{"addressused": a, "participationtypemask": 2}]);
    d.insert(
        "emails",
        received(
            "to-ann",
            Some("ann@contoso.com;carl@contoso.com"),
            to("ann@contoso.com"),
        ),
    )
    .unwrap();
    d.insert(
        "emails",
        received(
            "cc-ann",
            Some("bob@contoso.com"),
            json!([{"addressused": "bob@contoso.com", "participationtypemask": 2},
                   {"addressused": "ANN@contoso.com", "participationtypemask": 3}]),
        ),
    )
    .unwrap();
    d.insert(
        "emails",
        received("to-joann", Some("joann@contoso.com"), json!([])),
    )
    .unwrap();
    d.insert(
        "emails",
        received("to-bob", Some("bob@contoso.com"), to("bob@contoso.com")),
    )
    .unwrap();
    d.insert(
        "emails",
        json!({"subject": "pending", "sender": "ann@contoso.com", "statecode": 1, "statuscode": 6}),
    )
    .unwrap();
    d.insert(
        "emails",
        json!({"subject": "draft", "sender": "ann@contoso.com"}),
    )
    .unwrap();
    d.insert("emails", json!({"subject": "pending-bob", "sender": "bob@contoso.com", "statecode": 1, "statuscode": 6}))
        .unwrap();
    // Changes at known instants, to the second as Dataverse writes them.
    {
        let mut dv = lock(&store.dynamics);
        for (n, row) in dv.rows.get_mut("emails").unwrap().iter_mut().enumerate() {
            row["modifiedon"] = json!(format!("2026-01-02T03:04:0{}Z", 6 - n.min(6)));
        }
    }

    let incoming = "directioncode eq false and (contains(torecipients,'ann@contoso.com') or email_activity_parties/any(p:p/addressused eq 'ann@contoso.com' and (p/participationtypemask eq 2 or p/participationtypemask eq 3)))";
    let (st, _, v) = call(
        &store,
        "GET",
        &filtered(EMAILS, incoming, "&$orderby=modifiedon%20asc"),
        &[],
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        ids(&v),
        ["to-joann", "cc-ann", "to-ann"],
        "contains() also matches joann@; the Cc party counts; oldest change first"
    );
    assert!(
        v["value"][0].get("email_activity_parties").is_none(),
        "related rows only through $expand"
    );

    // A delta: changed at or after an instant.
    let (_, _, v) = call(
        &store,
        "GET",
        &filtered(
            EMAILS,
            &format!("{incoming} and modifiedon ge 2026-01-02T03:04:05Z"),
            "",
        ),
        &[],
        None,
    )
    .await;
    assert_eq!(ids(&v), ["to-ann", "cc-ann"]);
    let (_, _, v) = call(
        &store,
        "GET",
        &filtered(EMAILS, "modifiedon gt 2026-01-02T03:04:05Z", ""),
        &[],
        None,
    )
    .await;
    assert_eq!(ids(&v), ["to-ann"]);

    let outgoing = "directioncode eq true and statuscode eq 6 and sender eq 'ann@contoso.com'";
    let (_, _, v) = call(&store, "GET", &filtered(EMAILS, outgoing, ""), &[], None).await;
    assert_eq!(ids(&v), ["pending"]);

    // $expand with a nested $select, across pages.
    let (st, _, v) = call(
        &store,
        "GET",
        &filtered(
            EMAILS,
            incoming,
            &format!(
                "&$select=subject&$orderby=modifiedon%20asc&$expand={}",
                crate::util::percent_encode(PARTIES)
            ),
        ),
        &[("Prefer", "odata.maxpagesize=2")],
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["value"][0]["email_activity_parties"], json!([]));
    let cc = &v["value"][1]["email_activity_parties"];
    assert_eq!(cc.as_array().unwrap().len(), 2);
    assert_eq!(cc[1]["addressused"], "ANN@contoso.com");
    assert_eq!(cc[1]["participationtypemask"], 3);
    assert!(cc[1]["activitypartyid"].is_string(), "the key always comes");
    let next = v["@odata.nextLink"].as_str().unwrap();
    let next = &next[next.find("/api/").unwrap()..];
    let (_, _, v) = call(&store, "GET", next, &[], None).await;
    assert_eq!(ids(&v), ["to-ann"]);
    assert_eq!(
        v["value"][0]["email_activity_parties"][0]["addressused"],
        "ann@contoso.com"
    );

    // One row, expanded without a nested $select: every column of the parties.
    let id = d.rows("emails")[0]["activityid"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, _, v) = call(
        &store,
        "GET",
        &format!("{EMAILS}({id})?$expand=email_activity_parties"),
        &[],
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["email_activity_parties"][0].as_object().unwrap().len(), 3);

    // What Dataverse does not have is refused.
    for bad in [
        format!("{EMAILS}?$expand=bogus"),
        format!("{EMAILS}?$expand=email_activity_parties($select=emailaddress)"),
        format!("{EMAILS}?$select=ccrecipients"),
        filtered(EMAILS, "contains(ccrecipients,'ann@contoso.com')", ""),
    ] {
        let (st, _, e) = call(&store, "GET", &bad, &[], None).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(e["error"]["code"], "0x80060888", "{bad}");
    }
}

#[test]
fn the_metadata_names_the_email_columns_and_parties() {
    let x = tables::csdl();
    assert!(x.contains(r#"<Property Name="senton" Type="Edm.DateTimeOffset"/>"#));
    assert!(x.contains(r#"<Property Name="actualend" Type="Edm.DateTimeOffset"/>"#));
    assert!(x.contains(
        r#"<NavigationProperty Name="email_activity_parties" Type="Collection(mscrm.activityparty)"/>"#
    ));
    assert!(x.contains(r#"<Property Name="participationtypemask" Type="Edm.Int32"/>"#));
    assert!(!x.contains("ccrecipients"));
}

// ---------------------------------------------------------------------------------------------
// a mailbox owner's appointments, tasks and contacts

const OWNER: &str = "5b0c6a52-6a3f-4d1e-9a0b-1c2d3e4f5a00";
const STRANGER: &str = "5b0c6a52-6a3f-4d1e-9a0b-1c2d3e4f5aff";

fn owned_store() -> Arc<Store> {
    let store = store();
    let h = DynamicsHandle(&store);
    for (id, first, address) in [
        (OWNER, "Ann", "ann@contoso.com"),
        (STRANGER, "Carl", "carl@contoso.com"),
    ] {
        h.insert(
            "systemusers",
            json!({"systemuserid": id, "firstname": first, "lastname": "Lee",
                   "internalemailaddress": address}),
        );
    }
    store
}

fn bound(owner: &str, row: Value) -> Value {
    let mut row = row;
    row["ownerid@odata.bind"] = json!(format!("/systemusers({owner})"));
    row
}

fn subjects(v: &Value) -> Vec<&str> {
    v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["subject"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_user_is_found_by_primary_email() {
    let store = owned_store();
    let (st, _, v) = call(
        &store,
        "GET",
        &filtered(
            "/api/data/v9.2/systemusers",
            "internalemailaddress eq 'ANN@contoso.com'",
            "&$select=systemuserid",
        ),
        &[],
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        v["value"],
        json!([{"@odata.etag": v["value"][0]["@odata.etag"], "systemuserid": OWNER}])
    );
    assert_eq!(
        DynamicsHandle(&store).get("systemusers", OWNER).unwrap()["fullname"],
        "Ann Lee"
    );
}

#[tokio::test]
async fn rows_bound_to_an_owner_are_filtered_by_owner_and_change() {
    let store = owned_store();
    let base = "/api/data/v9.2/appointments";
    let prefer = [("Prefer", "return=representation")];
    let (st, h, v) = call(
        &store,
        "POST",
        &format!("{base}?$select=activityid"),
        &prefer,
        Some(bound(
            OWNER,
            json!({"subject": "Review", "scheduledstart": "2026-02-03T09:00:00Z",
                   "scheduledend": "2026-02-03T10:00:00Z", "isalldayevent": false}),
        )),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    assert!(v["@odata.etag"].as_str().unwrap().starts_with("W/\""));
    let id = v["activityid"].as_str().unwrap().to_owned();
    assert!(h["OData-EntityId"]
        .to_str()
        .unwrap()
        .ends_with(&format!("appointments({id})")));
    let row = DynamicsHandle(&store).get("appointments", &id).unwrap();
    assert_eq!(row["_ownerid_value"], OWNER);
    assert_eq!(
        (
            row["statecode"].clone(),
            row["statuscode"].clone(),
            row["instancetypecode"].clone()
        ),
        (json!(0), json!(1), json!(0)),
        "Open, Free, not recurring"
    );
    let (st, _, _) = call(
        &store,
        "POST",
        base,
        &[],
        Some(bound(STRANGER, json!({"subject": "Theirs"}))),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    // An unknown owner is refused, naming the user.
    let (st, _, e) = call(
        &store,
        "POST",
        base,
        &[],
        Some(bound(
            "5b0c6a52-6a3f-4d1e-9a0b-000000000000",
            json!({"subject": "x"}),
        )),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["code"], "0x80040217");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("systemuser With Id = 5b0c6a52-6a3f-4d1e-9a0b-000000000000"));

    let owned = format!("_ownerid_value eq {OWNER} and instancetypecode eq 0");
    let (st, _, v) = call(
        &store,
        "GET",
        &filtered(base, &owned, "&$orderby=modifiedon%20asc"),
        &[],
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(subjects(&v), ["Review"]);
    let modified = v["value"][0]["modifiedon"].as_str().unwrap().to_owned();
    let (_, _, v) = call(
        &store,
        "GET",
        &filtered(base, &format!("{owned} and modifiedon ge {modified}"), ""),
        &[],
        None,
    )
    .await;
    assert_eq!(subjects(&v), ["Review"], "ge keeps the instant");
    let (_, _, v) = call(
        &store,
        "GET",
        &filtered(base, &format!("{owned} and modifiedon gt {modified}"), ""),
        &[],
        None,
    )
    .await;
    assert!(subjects(&v).is_empty());
    let (_, _, v) = call(
        &store,
        "GET",
        &filtered(
            base,
            &format!("{owned} and modifiedon ge 2999-01-01T00:00:00Z"),
            "",
        ),
        &[],
        None,
    )
    .await;
    assert!(subjects(&v).is_empty());
}

#[tokio::test]
async fn activities_move_through_their_states_and_status_reasons() {
    let store = owned_store();
    let h = DynamicsHandle(&store);
    let task = h
        .insert("tasks", bound(OWNER, json!({"subject": "Call back"})))
        .unwrap();
    assert_eq!(
        h.get("tasks", &task).unwrap()["statuscode"],
        2,
        "Not Started"
    );
    let path = format!("/api/data/v9.2/tasks({task})");
    let if_match = [("If-Match", "*")];
    let (st, _, _) = call(
        &store,
        "PATCH",
        &path,
        &if_match,
        Some(json!({"statecode": 1, "statuscode": 5, "actualend": "2026-02-04T12:00:00Z"})),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let row = h.get("tasks", &task).unwrap();
    assert_eq!(
        (row["statecode"].clone(), row["statuscode"].clone()),
        (json!(1), json!(5))
    );
    assert_eq!(row["actualend"], "2026-02-04T12:00:00Z");
    // A state alone takes its default status reason.
    call(
        &store,
        "PATCH",
        &path,
        &if_match,
        Some(json!({"statecode": 2})),
    )
    .await;
    assert_eq!(h.get("tasks", &task).unwrap()["statuscode"], 6, "Canceled");
    // Status reasons outside the table's are refused.
    let (st, _, e) = call(
        &store,
        "PATCH",
        &path,
        &if_match,
        Some(json!({"statuscode": 1})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["code"], "0x80044331");

    let appt = h
        .insert("appointments", bound(OWNER, json!({"subject": "Review"})))
        .unwrap();
    let path = format!("/api/data/v9.2/appointments({appt})");
    for (state, status) in [(3, 6), (1, 3), (2, 4)] {
        let (st, _, e) = call(
            &store,
            "PATCH",
            &path,
            &if_match,
            Some(json!({"statecode": state, "statuscode": status})),
        )
        .await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{state}/{status}: {e}");
    }
    let (st, _, _) = call(
        &store,
        "PATCH",
        &path,
        &if_match,
        Some(json!({"statecode": 4})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "appointments have four states");
}

#[tokio::test]
async fn contacts_compute_their_full_name_and_deactivate() {
    let store = owned_store();
    let (st, _, v) = call(
        &store,
        "POST",
        "/api/data/v9.2/contacts?$select=contactid,fullname",
        &[("Prefer", "return=representation")],
        Some(bound(
            OWNER,
            json!({"firstname": "Bob", "lastname": "Fisher", "department": "Purchasing",
                   "address1_city": "Oslo", "emailaddress2": "bob@home.example"}),
        )),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(v["fullname"], "Bob Fisher");
    let id = v["contactid"].as_str().unwrap().to_owned();
    let path =
        format!("/api/data/v9.2/contacts({id})?$select=contactid,fullname,statecode,statuscode");
    let (st, _, v) = call(
        &store,
        "PATCH",
        &path,
        &[("If-Match", "*"), ("Prefer", "return=representation")],
        Some(json!({"lastname": "Fischer", "statecode": 1, "statuscode": 2})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["fullname"], "Bob Fischer");
    assert_eq!(
        (v["statecode"].clone(), v["statuscode"].clone()),
        (json!(1), json!(2))
    );
    let (_, _, v) = call(
        &store,
        "PATCH",
        &path,
        &[("If-Match", "*"), ("Prefer", "return=representation")],
        Some(json!({"statecode": 0})),
    )
    .await;
    assert_eq!(v["statuscode"], 1, "reactivated: Active");
    let (_, _, v) = call(
        &store,
        "GET",
        &filtered(
            "/api/data/v9.2/contacts",
            &format!("_ownerid_value eq {OWNER}"),
            "&$select=contactid",
        ),
        &[],
        None,
    )
    .await;
    assert_eq!(v["value"].as_array().unwrap().len(), 1);
}

#[test]
fn the_metadata_names_the_owned_rows_columns() {
    let x = tables::csdl();
    for (entity, property, ty) in [
        ("appointment", "instancetypecode", "Edm.Int32"),
        ("appointment", "isalldayevent", "Edm.Boolean"),
        ("appointment", "_ownerid_value", "Edm.Guid"),
        ("task", "actualend", "Edm.DateTimeOffset"),
        ("task", "percentcomplete", "Edm.Int32"),
        ("contact", "address1_city", "Edm.String"),
        ("systemuser", "internalemailaddress", "Edm.String"),
    ] {
        let start = x
            .find(&format!(r#"<EntityType Name="{entity}" "#))
            .unwrap_or_else(|| panic!("{entity}"));
        let end = start + x[start..].find("</EntityType>").unwrap();
        assert!(
            x[start..end].contains(&format!(r#"<Property Name="{property}" Type="{ty}"/>"#)),
            "{entity}.{property}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// recurring appointment masters

/// A weekly series (Mondays and Thursdays, ten occurrences) as a connector would read it.
fn weekly_series(subject: &str) -> Value {
    json!({
        "subject": subject,
        "starttime": "2026-02-02T09:00:00Z",
        "endtime": "2026-02-02T10:00:00Z",
        "patternstartdate": "2026-02-02T00:00:00Z",
        "recurrencepatterntype": 1,
        "interval": 1,
        "daysofweekmask": 0x12,
        "firstdayofweek": 1,
        "patternendtype": 2,
        "occurrences": 10,
        "deletedexceptionslist": "2026-02-05"
    })
}

/// The columns the `dynamics` connector reads of a series (its `RECURRING_SELECT`).
const SERIES_SELECT: &str = "activityid,subject,description,location,starttime,endtime,isalldayevent,patternstartdate,patternenddate,patternendtype,occurrences,recurrencepatterntype,interval,daysofweekmask,dayofmonth,monthofyear,instance,isweekdaypattern,isnthmonthly,isnthyearly,firstdayofweek,deletedexceptionslist,statecode,statuscode,modifiedon";

#[tokio::test]
async fn recurring_masters_are_owned_filtered_paged_and_patched() {
    let store = owned_store();
    let base = "/api/data/v9.2/recurringappointmentmasters";
    let (st, h, v) = call(
        &store,
        "POST",
        &format!("{base}?$select=activityid"),
        &[("Prefer", "return=representation")],
        Some(bound(OWNER, weekly_series("Stand-up"))),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["activityid"].as_str().unwrap().to_owned();
    assert!(h["OData-EntityId"]
        .to_str()
        .unwrap()
        .ends_with(&format!("recurringappointmentmasters({id})")));
    let row = DynamicsHandle(&store)
        .get("recurringappointmentmasters", &id)
        .unwrap();
    assert_eq!(row["_ownerid_value"], OWNER);
    assert_eq!(
        (
            row["statecode"].clone(),
            row["statuscode"].clone(),
            row["instancetypecode"].clone(),
            row["isalldayevent"].clone(),
            row["isnthmonthly"].clone(),
        ),
        (json!(0), json!(1), json!(1), json!(false), json!(false)),
        "Open, Free, the Recurring Master, flags at No"
    );
    for (n, owner) in [(2, OWNER), (3, STRANGER)] {
        let (st, _, e) = call(
            &store,
            "POST",
            base,
            &[],
            Some(bound(owner, weekly_series(&format!("Series {n}")))),
        )
        .await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{e}");
    }

    // The owner's series, oldest change first, a page at a time.
    let owned = format!("_ownerid_value eq {OWNER}");
    let (st, h, v) = call(
        &store,
        "GET",
        &filtered(
            base,
            &owned,
            &format!("&$select={SERIES_SELECT}&$orderby=modifiedon%20asc"),
        ),
        &[("Prefer", "odata.maxpagesize=1")],
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(h["Preference-Applied"], "odata.maxpagesize=1");
    assert_eq!(subjects(&v), ["Stand-up"]);
    let first = &v["value"][0];
    for (column, value) in [
        ("starttime", json!("2026-02-02T09:00:00Z")),
        ("daysofweekmask", json!(0x12)),
        ("patternendtype", json!(2)),
        ("occurrences", json!(10)),
        ("deletedexceptionslist", json!("2026-02-05")),
        ("monthofyear", Value::Null),
    ] {
        assert_eq!(first[column], value, "{column}");
    }
    assert!(first.get("_ownerid_value").is_none(), "not selected");
    let next = v["@odata.nextLink"].as_str().unwrap();
    let next = next.strip_prefix("http://127.0.0.1:1").unwrap();
    let (_, _, v) = call(
        &store,
        "GET",
        next,
        &[("Prefer", "odata.maxpagesize=1")],
        None,
    )
    .await;
    assert_eq!(
        subjects(&v),
        ["Series 2"],
        "another user's series is not read"
    );
    assert!(v.get("@odata.nextLink").is_none());

    // PATCH: the two-way fields, then a cancel; a delta sees the change.
    let path = format!("{base}({id})?$select=activityid");
    let (st, _, v) = call(
        &store,
        "PATCH",
        &path,
        &[("If-Match", "*"), ("Prefer", "return=representation")],
        Some(
            json!({"subject": "Stand-up (moved)", "starttime": "2026-02-02T09:30:00Z",
                    "endtime": "2026-02-02T10:30:00Z", "isalldayevent": false,
                    "location": null, "description": "Notes"}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let row = DynamicsHandle(&store)
        .get("recurringappointmentmasters", &id)
        .unwrap();
    assert_eq!(row["subject"], "Stand-up (moved)");
    assert_eq!(row["starttime"], "2026-02-02T09:30:00Z");
    let modified = row["modifiedon"].as_str().unwrap().to_owned();
    let (_, _, v) = call(
        &store,
        "GET",
        &filtered(base, &format!("{owned} and modifiedon ge {modified}"), ""),
        &[],
        None,
    )
    .await;
    assert!(
        subjects(&v).contains(&"Stand-up (moved)"),
        "the change is at or after its modifiedon (others may share the second): {v}"
    );
    let (st, _, _) = call(
        &store,
        "PATCH",
        &path,
        &[("If-Match", "*")],
        Some(json!({"statecode": 2})),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let row = DynamicsHandle(&store)
        .get("recurringappointmentmasters", &id)
        .unwrap();
    assert_eq!(
        row["statuscode"], 4,
        "Canceled takes its default status reason"
    );
    // A GET by key.
    let (st, _, v) = call(
        &store,
        "GET",
        &format!("{base}({id})?$select={SERIES_SELECT}"),
        &[],
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["activityid"], id.as_str());
    assert_eq!(v["statecode"], 2);
}

#[tokio::test]
async fn recurring_patterns_out_of_range_are_refused() {
    let store = owned_store();
    let base = "/api/data/v9.2/recurringappointmentmasters";
    for (column, value) in [
        ("recurrencepatterntype", 4),
        ("patternendtype", 0),
        ("instance", 6),
        ("monthofyear", 13),
        ("interval", 0),
        ("interval", 1001),
        ("daysofweekmask", 128),
        ("daysofweekmask", 0),
        ("dayofmonth", 32),
        ("occurrences", 1000),
        ("firstdayofweek", 7),
        ("statuscode", 7),
    ] {
        let mut row = weekly_series("Bad");
        row[column] = json!(value);
        let (st, _, e) = call(&store, "POST", base, &[], Some(bound(OWNER, row))).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{column} {value}");
        assert_eq!(e["error"]["code"], "0x80044331", "{column} {value}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(&format!(
                "The value {value} of '{column}' on record of type 'recurringappointmentmaster'"
            )),
            "{e}"
        );
    }
    let (st, _, e) = call(
        &store,
        "POST",
        base,
        &[],
        Some(bound(
            OWNER,
            json!({"subject": "x", "scheduledstart": "2026-02-02T09:00:00Z"}),
        )),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "not a column of the master: {e}"
    );
    assert!(DynamicsHandle(&store)
        .rows("recurringappointmentmasters")
        .is_empty());
    // Yearly on the last Friday of November is fine.
    let mut row = weekly_series("Thanksgiving eve");
    for (k, v) in [
        ("recurrencepatterntype", json!(3)),
        ("monthofyear", json!(11)),
        ("isnthyearly", json!(true)),
        ("instance", json!(5)),
        ("daysofweekmask", json!(0x20)),
        ("patternendtype", json!(1)),
    ] {
        row[k] = v;
    }
    let (st, _, e) = call(&store, "POST", base, &[], Some(bound(OWNER, row))).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{e}");
}

#[test]
fn the_metadata_names_the_recurring_master_columns() {
    let x = tables::csdl();
    let start = x
        .find(r#"<EntityType Name="recurringappointmentmaster" "#)
        .unwrap();
    let end = start + x[start..].find("</EntityType>").unwrap();
    let entity = &x[start..end];
    assert!(entity.contains(r#"<PropertyRef Name="activityid"/>"#));
    for (property, ty) in [
        ("starttime", "Edm.DateTimeOffset"),
        ("patternstartdate", "Edm.DateTimeOffset"),
        ("recurrencepatterntype", "Edm.Int32"),
        ("interval", "Edm.Int32"),
        ("daysofweekmask", "Edm.Int32"),
        ("monthofyear", "Edm.Int32"),
        ("isnthmonthly", "Edm.Boolean"),
        ("deletedexceptionslist", "Edm.String"),
        ("_ownerid_value", "Edm.Guid"),
    ] {
        assert!(
            entity.contains(&format!(r#"<Property Name="{property}" Type="{ty}"/>"#)),
            "{property}"
        );
    }
    assert!(x.contains(r#"<EntitySet Name="recurringappointmentmasters" EntityType="Microsoft.Dynamics.CRM.recurringappointmentmaster"/>"#));
}

#[tokio::test]
async fn time_zone_definitions_name_each_code_s_windows_zone() {
    let store = store();
    let (st, _, v) = call(
        &store,
        "GET",
        &filtered(
            "/api/data/v9.2/timezonedefinitions",
            "timezonecode eq 110 or timezonecode eq 4",
            "&$select=timezonecode,standardname",
        ),
        &[],
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let mut got: Vec<(i64, String)> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["timezonecode"].as_i64().unwrap(),
                r["standardname"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (4, "Pacific Standard Time".to_owned()),
            (110, "W. Europe Standard Time".to_owned())
        ]
    );
    assert!(
        v["value"][0].get("userinterfacename").is_none(),
        "$select is honoured"
    );
    // A series keeps the code of the zone it was entered in.
    let (st, _, row) = call(
        &store,
        "POST",
        "/api/data/v9.2/recurringappointmentmasters",
        &[("Prefer", "return=representation")],
        Some(json!({"subject": "Stand-up", "utcconversiontimezonecode": 110})),
    )
    .await;
    assert!(st.is_success(), "{st} {row}");
    assert_eq!(row["utcconversiontimezonecode"], json!(110));
}
