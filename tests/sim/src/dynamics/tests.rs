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
