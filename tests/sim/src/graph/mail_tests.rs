//! Mail: `messages/delta` of a well-known folder (paging, `$select`, `@removed` for messages
//! deleted or moved out, 410 for an unknown token), `move`, `sendMail` copies and seeded
//! messages.

use super::*;
use axum::http::Method;

const T: &str = "contoso.onmicrosoft.com";
const BASE: &str = "http://sim.test";
const ALICE: &str = "users/alice@contoso.onmicrosoft.com";
const SELECT: &str = "subject,from,toRecipients,receivedDateTime,internetMessageId";
const LICENSE: &str = "c7df2760-2c81-4ef7-b578-5b5392b571df";

fn store() -> Store {
    let s = Store::new(crate::config::Services::ALL, 1);
    let _ = s.base_url.set(BASE.into());
    GraphHandle(&s).add_tenant(
        serde_json::from_value(json!({
            "domain": T,
            "users": [
                {"id": "u1", "userPrincipalName": format!("alice@{T}"), "displayName": "Alice",
                    "assignedLicenses": [{"skuId": LICENSE, "disabledPlans": []}]},
                {"id": "u2", "userPrincipalName": format!("bob@{T}"), "displayName": "Bob",
                    "assignedLicenses": [{"skuId": LICENSE, "disabledPlans": []}]},
            ],
        }))
        .unwrap(),
    );
    s
}

fn call(s: &Store, method: Method, url: &str, page: Option<usize>, body: Value) -> (u16, Value) {
    let rel = url
        .strip_prefix(&format!("{BASE}/v1.0/"))
        .unwrap_or(url)
        .trim_start_matches('/');
    let (path, query) = rel.split_once('?').unwrap_or((rel, ""));
    let mut headers = HashMap::new();
    if let Some(n) = page {
        headers.insert("prefer".to_string(), format!("odata.maxpagesize={n}"));
    }
    let body = if body.is_null() {
        vec![]
    } else {
        body.to_string().into_bytes()
    };
    let r = api::dispatch(s, T, &method, path, query, headers, &body);
    (r.status.as_u16(), r.body.unwrap_or(Value::Null))
}

fn get(s: &Store, url: &str, page: Option<usize>) -> Value {
    let (status, b) = call(s, Method::GET, url, page, Value::Null);
    assert_eq!(status, 200, "GET {url}: {b}");
    b
}

fn ids(v: &Value) -> Vec<String> {
    v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

fn add(s: &Store, subject: &str, folder: &str) -> String {
    GraphHandle(s)
        .add_message(
            T,
            &format!("alice@{T}"),
            json!({"subject": subject, "parentFolderId": folder,
                "from": {"emailAddress": {"name": "Dana", "address": "dana@fabrikam.com"}},
                "toRecipients": [{"emailAddress": {"name": "Alice", "address": format!("alice@{T}")}}],
                "body": {"contentType": "html", "content": format!("<p>{subject}</p>")}}),
        )
        .unwrap()
}

/// Reads a whole round from `url`: every entry, and the delta link that ends it.
fn round(s: &Store, url: &str, page: usize) -> (Vec<Value>, String) {
    let mut out = Vec::new();
    let mut next = url.to_string();
    for _ in 0..20 {
        let b = get(s, &next, Some(page));
        assert!(b["value"].as_array().unwrap().len() <= page, "{b}");
        out.extend(b["value"].as_array().unwrap().iter().cloned());
        match (
            b["@odata.nextLink"].as_str(),
            b["@odata.deltaLink"].as_str(),
        ) {
            (Some(n), None) => next = n.to_string(),
            (None, Some(d)) => return (out, d.to_string()),
            _ => panic!("a delta page has either a next or a delta link: {b}"),
        }
    }
    panic!("the round did not end")
}

#[test]
fn inbox_delta_pages_selects_and_reports_deletes_moves_updates_and_new_mail() {
    let s = store();
    let a = add(&s, "one", "inbox");
    let b = add(&s, "two", "inbox");
    let c = add(&s, "three", "inbox");
    add(&s, "sent", "sentitems");

    let first = get(
        &s,
        &format!("{ALICE}/mailFolders/inbox/messages/delta?$select={SELECT}"),
        Some(2),
    );
    assert_eq!(ids(&first), [a.clone(), b.clone()]);
    let next = first["@odata.nextLink"].as_str().unwrap();
    assert!(
        next.starts_with(&format!(
            "{BASE}/v1.0/{ALICE}/mailFolders/inbox/messages/delta?$skiptoken="
        )),
        "{next}"
    );
    assert!(first.get("@odata.deltaLink").is_none());
    let m = &first["value"][0];
    assert_eq!(m["@odata.type"], "#microsoft.graph.message");
    assert_eq!(m["subject"], "one");
    assert_eq!(m["from"]["emailAddress"]["address"], "dana@fabrikam.com");
    assert!(m["receivedDateTime"]
        .as_str()
        .is_some_and(|d| d.ends_with('Z')));
    assert!(m["internetMessageId"]
        .as_str()
        .is_some_and(|i| i.starts_with('<')));
    assert!(m["@odata.etag"]
        .as_str()
        .is_some_and(|e| e.starts_with("W/\"")));
    assert!(
        m.get("body").is_none() && m.get("isRead").is_none(),
        "$select is honoured: {m}"
    );

    let (rest, delta) = round(&s, next, 2);
    assert_eq!(rest.len(), 1, "the sent item is not in the inbox: {rest:?}");
    assert_eq!(rest[0]["id"], json!(c));
    assert_eq!(
        rest[0]["subject"], "three",
        "the select of the round is kept"
    );
    assert!(delta.contains("$deltatoken="));

    // Nothing changed: an empty round.
    let (none, delta) = round(&s, &delta, 2);
    assert!(none.is_empty(), "{none:?}");

    // Delete one, move one out, change one, and deliver a new one.
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("{ALICE}/messages/{a}"),
        None,
        Value::Null,
    );
    assert_eq!(st, 204);
    let (st, moved) = call(
        &s,
        Method::POST,
        &format!("{ALICE}/messages/{b}/move"),
        None,
        json!({"destinationId": "deleteditems"}),
    );
    assert_eq!(st, 201, "{moved}");
    assert_ne!(moved["id"], json!(b), "a moved message gets a new id");
    assert_eq!(moved["parentFolderId"], "deleteditems");
    let (st, _) = call(
        &s,
        Method::PATCH,
        &format!("{ALICE}/messages/{c}"),
        None,
        json!({"isRead": true}),
    );
    assert_eq!(st, 200);
    let (st, _) = call(
        &s,
        Method::POST,
        &format!("users/bob@{T}/sendMail"),
        None,
        json!({"message": {"subject": "new", "body": {"contentType": "Text", "content": "hi"},
            "toRecipients": [{"emailAddress": {"address": format!("alice@{T}")}}]}}),
    );
    assert_eq!(st, 202);

    let (changes, delta) = round(&s, &delta, 2);
    let removed: Vec<&Value> = changes
        .iter()
        .filter(|v| v.get("@removed").is_some())
        .collect();
    let mut gone: Vec<String> = removed
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    gone.sort();
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    assert_eq!(gone, expected, "deleted and moved out: {changes:?}");
    for r in &removed {
        assert_eq!(r["@removed"]["reason"], "deleted");
        assert_eq!(r["@odata.type"], "#microsoft.graph.message");
    }
    let live: Vec<&Value> = changes
        .iter()
        .filter(|v| v.get("@removed").is_none())
        .collect();
    assert_eq!(live.len(), 2, "{changes:?}");
    assert_eq!(live[0]["id"], json!(c), "the changed one");
    assert_eq!(live[1]["subject"], "new", "the delivered one");
    assert_eq!(
        live[1]["from"]["emailAddress"]["address"],
        format!("bob@{T}")
    );
    assert!(live[1].get("body").is_none());
    assert!(
        !changes.iter().any(|v| v["id"] == moved["id"]),
        "the copy is in another folder"
    );

    // The copy is in Deleted Items, whose own delta starts with it.
    let (deleted, _) = round(
        &s,
        &format!("{ALICE}/mailFolders/deletedItems/messages/delta"),
        10,
    );
    assert_eq!(
        ids(&json!({"value": deleted})),
        [moved["id"].as_str().unwrap()]
    );
    let (none, _) = round(&s, &delta, 2);
    assert!(none.is_empty());
}

#[test]
fn unknown_tokens_and_folders_are_refused() {
    let s = store();
    add(&s, "one", "inbox");
    let (_, delta) = round(&s, &format!("{ALICE}/mailFolders/inbox/messages/delta"), 5);
    GraphHandle(&s).expire_delta_tokens();
    let (st, b) = call(&s, Method::GET, &delta, None, Value::Null);
    assert_eq!(st, 410);
    assert_eq!(b["error"]["code"], "SyncStateNotFound");
    // A token of another folder is no token of this one.
    let (_, sent) = round(
        &s,
        &format!("{ALICE}/mailFolders/sentitems/messages/delta"),
        5,
    );
    let token = sent.split_once("$deltatoken=").unwrap().1;
    let (st, _) = call(
        &s,
        Method::GET,
        &format!("{ALICE}/mailFolders/inbox/messages/delta?$deltatoken={token}"),
        None,
        Value::Null,
    );
    assert_eq!(st, 410);
    let (st, b) = call(
        &s,
        Method::GET,
        &format!("{ALICE}/mailFolders/nosuch/messages/delta"),
        None,
        Value::Null,
    );
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (404, Some("ErrorItemNotFound"))
    );
    let (st, b) = call(
        &s,
        Method::POST,
        &format!("{ALICE}/messages/nosuch/move"),
        None,
        json!({"destinationId": "inbox"}),
    );
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (404, Some("ErrorItemNotFound"))
    );
    let (st, _) = call(
        &s,
        Method::POST,
        &format!("{ALICE}/messages/x/move"),
        None,
        json!({}),
    );
    assert_eq!(st, 400);
    // Folders change through `move` only.
    let id = add(&s, "stays", "inbox");
    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("{ALICE}/messages/{id}"),
        None,
        json!({"parentFolderId": "archive"}),
    );
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (400, Some("ErrorInvalidPropertyForOperation"))
    );
}

#[test]
fn sent_and_delivered_copies_share_the_internet_message_id() {
    let s = store();
    let (st, _) = call(
        &s,
        Method::POST,
        &format!("{ALICE}/sendMail"),
        None,
        json!({"message": {"subject": "Quote", "body": {"contentType": "HTML", "content": "<b>x</b>"},
            "toRecipients": [{"emailAddress": {"address": format!("bob@{T}")}}],
            "ccRecipients": [{"emailAddress": {"address": "outside@fabrikam.com"}}]},
            "saveToSentItems": true}),
    );
    assert_eq!(st, 202);
    let h = GraphHandle(&s);
    let sent = &h.messages(T, "u1")[0];
    let got = &h.messages(T, "u2")[0];
    assert_eq!(sent["parentFolderId"], "sentitems");
    assert_eq!(got["parentFolderId"], "inbox");
    assert_eq!(got["isRead"], false);
    assert_eq!(sent["internetMessageId"], got["internetMessageId"]);
    assert_eq!(sent["sentDateTime"], got["sentDateTime"]);
    assert_eq!(got["body"]["contentType"], "html");
    assert_eq!(
        got["ccRecipients"][0]["emailAddress"]["address"],
        "outside@fabrikam.com"
    );
    for k in [
        "receivedDateTime",
        "sentDateTime",
        "internetMessageId",
        "changeKey",
    ] {
        assert!(got[k].as_str().is_some_and(|v| !v.is_empty()), "{k}: {got}");
    }
    assert_eq!(
        got["@odata.etag"],
        json!(format!("W/\"{}\"", got["changeKey"].as_str().unwrap()))
    );
    // A change gives a new change key, and the etag follows it.
    let id = got["id"].as_str().unwrap();
    let (_, patched) = call(
        &s,
        Method::PATCH,
        &format!("users/bob@{T}/messages/{id}"),
        None,
        json!({"isRead": true}),
    );
    assert_ne!(patched["changeKey"], got["changeKey"]);
    assert_eq!(
        patched["@odata.etag"],
        json!(format!("W/\"{}\"", patched["changeKey"].as_str().unwrap()))
    );
}

#[test]
fn seeded_messages_go_to_the_inbox_unless_they_name_a_folder() {
    let s = store();
    // A seed extends the tenant its id names.
    let tid = lock(&s.graph).tenants[0].id.clone();
    lock(&s.graph).apply_seed(
        &serde_json::from_value(json!({"tenants": [{"id": tid, "mailboxes": {
            format!("alice@{T}"): {"messages": [
                {"subject": "seeded", "from": {"emailAddress": {"address": "dana@fabrikam.com"}},
                    "receivedDateTime": "2026-03-02T10:00:00Z"},
                {"subject": "draft", "parentFolderId": "Drafts"}
            ]}
        }}]}))
        .unwrap(),
    );
    let (inbox, _) = round(&s, &format!("{ALICE}/mailFolders/inbox/messages/delta"), 10);
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["subject"], "seeded");
    assert_eq!(
        inbox[0]["receivedDateTime"], "2026-03-02T10:00:00Z",
        "given values stay"
    );
    assert_eq!(inbox[0]["isRead"], false);
    assert_eq!(
        inbox[0]["sender"]["emailAddress"]["address"],
        "dana@fabrikam.com"
    );
    let drafts = get(&s, &format!("{ALICE}/mailFolders/drafts/messages"), None);
    assert_eq!(drafts["value"][0]["subject"], "draft");
    let dump = lock(&s.graph).dump();
    assert_eq!(
        dump[0]["mailboxes"]["u1"]["messages"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // The handle adds to a user by UPN; an unknown user is refused.
    assert!(GraphHandle(&s)
        .add_message(T, "nobody@x.test", json!({}))
        .is_none());
    let id = add(&s, "by handle", "inbox");
    let moved = GraphHandle(&s)
        .move_message(T, "u1", &id, "archive")
        .unwrap();
    assert_ne!(moved, id);
    assert!(
        GraphHandle(&s)
            .move_message(T, "u1", &id, "archive")
            .is_none(),
        "already moved"
    );
}

#[test]
fn a_well_known_mail_folder_reads_with_its_counts() {
    let s = store();
    add(&s, "one", "sentitems");
    add(&s, "two", "sentitems");
    add(&s, "three", "inbox");
    let b = get(&s, &format!("{ALICE}/mailFolders/SentItems"), None);
    assert_eq!(b["displayName"], "Sent Items");
    assert_eq!(b["totalItemCount"], 2);
    assert!(b["id"].as_str().is_some_and(|id| !id.is_empty()), "{b}");
    assert!(
        b["@odata.context"]
            .as_str()
            .is_some_and(|c| c.ends_with("/mailFolders/$entity")),
        "{b}"
    );
    // `$select` keeps the id and the named properties.
    let b = get(
        &s,
        &format!("{ALICE}/mailFolders/sentitems?$select=id"),
        None,
    );
    assert!(b["id"].is_string() && b.get("displayName").is_none(), "{b}");
    let (st, b) = call(
        &s,
        Method::GET,
        &format!("{ALICE}/mailFolders/nosuch"),
        None,
        Value::Null,
    );
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (404, Some("ErrorItemNotFound"))
    );
}
