//! Mailbox endpoints: recurring series (zones, DST, exceptions, cancelled occurrences,
//! `instances`), extended properties (`$expand`, `$filter`), all-day events, To Do
//! `tasks/delta` and `linkedResources`.

use super::*;
use axum::http::Method;

const T: &str = "contoso.onmicrosoft.com";
const BASE: &str = "http://sim.test";
const U: &str = "users/alice@contoso.onmicrosoft.com";
const ANCHOR: &str = "String {b6a4f0d2-6c1e-4c57-9a53-5f0e2d7c9b11} Name syncbridgeAnchor";

fn store() -> Store {
    let s = Store::new(crate::config::Services::ALL, 1);
    let _ = s.base_url.set(BASE.into());
    GraphHandle(&s).add_tenant(
        serde_json::from_value(json!({
            "domain": T,
            "users": [{"id": "u1", "userPrincipalName": format!("alice@{T}"),
                "assignedLicenses": [{"skuId": "c7df2760-2c81-4ef7-b578-5b5392b571df", "disabledPlans": []}]}],
        }))
        .unwrap(),
    );
    s
}

fn call(s: &Store, method: Method, url: &str, prefer: &str, body: Value) -> (u16, Value) {
    let rel = url
        .strip_prefix(&format!("{BASE}/v1.0/"))
        .unwrap_or(url)
        .trim_start_matches('/');
    let (path, query) = rel.split_once('?').unwrap_or((rel, ""));
    let mut headers = HashMap::new();
    if !prefer.is_empty() {
        headers.insert("prefer".to_string(), prefer.to_string());
    }
    let body = if body.is_null() {
        vec![]
    } else {
        body.to_string().into_bytes()
    };
    let r = api::dispatch(s, T, &method, path, query, headers, &body);
    (r.status.as_u16(), r.body.unwrap_or(Value::Null))
}

fn get(s: &Store, url: &str) -> Value {
    let (status, b) = call(s, Method::GET, url, "outlook.timezone=\"UTC\"", Value::Null);
    assert_eq!(status, 200, "GET {url}: {b}");
    b
}

fn post(s: &Store, url: &str, body: Value) -> Value {
    let (status, b) = call(s, Method::POST, url, "", body);
    assert_eq!(status, 201, "POST {url}: {b}");
    b
}

fn starts(v: &Value) -> Vec<String> {
    v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["start"]["dateTime"].as_str().unwrap()[..16].to_string())
        .collect()
}

/// A weekly Monday 09:00 Berlin series from 16 March 2026 (DST starts 29 March).
fn weekly_series(s: &Store) -> String {
    let e = post(
        s,
        &format!("{U}/events"),
        json!({"subject": "Jour fixe",
            "start": {"dateTime": "2026-03-16T09:00:00", "timeZone": "W. Europe Standard Time"},
            "end": {"dateTime": "2026-03-16T09:30:00", "timeZone": "W. Europe Standard Time"},
            "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                "range": {"type": "noEnd", "startDate": "2026-03-16", "recurrenceTimeZone": "W. Europe Standard Time"}}}),
    );
    e["id"].as_str().unwrap().to_string()
}

const WINDOW: &str = "startDateTime=2026-03-16T00:00:00Z&endDateTime=2026-04-07T00:00:00Z";

#[test]
fn series_keep_their_wall_clock_time_across_dst() {
    let s = store();
    weekly_series(&s);
    let v = get(&s, &format!("{U}/calendarView?{WINDOW}"));
    assert_eq!(
        starts(&v),
        [
            "2026-03-16T08:00",
            "2026-03-23T08:00",
            "2026-03-30T07:00",
            "2026-04-06T07:00"
        ]
    );
    let o = &v["value"][2];
    assert_eq!(o["type"], "occurrence");
    assert_eq!(o["originalStart"], "2026-03-30T07:00:00Z");
}

#[test]
fn relative_monthly_and_numbered_series_expand() {
    let s = store();
    post(
        &s,
        &format!("{U}/events"),
        json!({"subject": "Patch Tuesday",
            "start": {"dateTime": "2026-01-13T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-01-13T11:00:00", "timeZone": "UTC"},
            "recurrence": {"pattern": {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["tuesday"], "index": "second"},
                "range": {"type": "numbered", "startDate": "2026-01-13", "numberOfOccurrences": 3}}}),
    );
    let v = get(
        &s,
        &format!(
            "{U}/calendarView?startDateTime=2026-01-01T00:00:00Z&endDateTime=2026-12-31T00:00:00Z"
        ),
    );
    assert_eq!(
        starts(&v),
        ["2026-01-13T10:00", "2026-02-10T10:00", "2026-03-10T10:00"]
    );
}

#[test]
fn occurrences_become_exceptions_or_are_cancelled() {
    let s = store();
    let m = weekly_series(&s);
    // Move 23 March out of the window, delete 30 March.
    let (st, x) = call(
        &s,
        Method::PATCH,
        &format!("{U}/events/{m}_20260323"),
        "",
        json!({"subject": "Moved", "start": {"dateTime": "2026-05-04T12:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-05-04T12:30:00", "timeZone": "UTC"}}),
    );
    assert_eq!(st, 200, "{x}");
    assert_eq!(x["type"], "exception");
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("{U}/events/{m}_20260330"),
        "",
        Value::Null,
    );
    assert_eq!(st, 204);
    let v = get(&s, &format!("{U}/events/{m}/instances?{WINDOW}"));
    assert_eq!(starts(&v), ["2026-03-16T08:00", "2026-04-06T07:00"]);
    let master = get(&s, &format!("{U}/events/{m}?$expand=exceptionOccurrences"));
    let xs = master["exceptionOccurrences"].as_array().unwrap();
    assert_eq!(xs.len(), 1);
    assert_eq!(xs[0]["originalStart"], "2026-03-23T08:00:00Z");
    assert_eq!(xs[0]["subject"], "Moved");
    assert_eq!(
        master["cancelledOccurrences"],
        json!([format!("OID.{m}.2026-03-30")])
    );
    // The moved occurrence shows where it is now (after that Monday's own occurrence).
    let v = get(
        &s,
        &format!(
            "{U}/calendarView?startDateTime=2026-05-04T00:00:00Z&endDateTime=2026-05-05T00:00:00Z"
        ),
    );
    assert_eq!(starts(&v), ["2026-05-04T07:00", "2026-05-04T12:00"]);
    assert_eq!(v["value"][1]["subject"], "Moved");
    assert_eq!(v["value"][1]["seriesMasterId"], json!(m));
    // A cancelled occurrence is gone; the event list has no exceptions.
    let (st, _) = call(
        &s,
        Method::GET,
        &format!("{U}/events/{m}_20260330"),
        "",
        Value::Null,
    );
    assert_eq!(st, 404);
    assert_eq!(
        get(&s, &format!("{U}/events"))["value"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn extended_properties_are_kept_expanded_and_filtered() {
    let s = store();
    let e = post(
        &s,
        &format!("{U}/events"),
        json!({"subject": "Linked",
            "start": {"dateTime": "2026-03-16T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-16T10:00:00", "timeZone": "UTC"},
            "singleValueExtendedProperties": [{"id": ANCHOR, "value": "link-1"}]}),
    );
    assert!(e.get("singleValueExtendedProperties").is_none());
    let id = e["id"].as_str().unwrap();
    let plain = get(&s, &format!("{U}/events/{id}"));
    assert!(plain.get("singleValueExtendedProperties").is_none());
    let expand = format!("singleValueExtendedProperties($filter=id eq '{ANCHOR}')");
    let v = get(&s, &format!("{U}/events/{id}?$expand={expand}"));
    assert_eq!(v["singleValueExtendedProperties"][0]["value"], "link-1");
    let other = get(
        &s,
        &format!("{U}/events/{id}?$expand=singleValueExtendedProperties($filter=id eq 'String {{00000000-0000-0000-0000-000000000000}} Name x')"),
    );
    assert_eq!(other["singleValueExtendedProperties"], json!([]));
    let (st, _) = call(
        &s,
        Method::PATCH,
        &format!("{U}/events/{id}"),
        "",
        json!({"singleValueExtendedProperties": [{"id": ANCHOR, "value": "link-2"}]}),
    );
    assert_eq!(st, 200);
    let filter = |v: &str| {
        format!("{U}/events?$filter=singleValueExtendedProperties/Any(ep: ep/id eq '{ANCHOR}' and ep/value eq '{v}')")
    };
    assert_eq!(get(&s, &filter("link-1"))["value"], json!([]));
    let found = get(&s, &filter("link-2"));
    assert_eq!(found["value"][0]["id"], json!(id));
}

#[test]
fn all_day_events_are_floating_dates() {
    let s = store();
    let e = post(
        &s,
        &format!("{U}/events"),
        json!({"subject": "Holiday", "isAllDay": true,
            "start": {"dateTime": "2026-05-04T00:00:00", "timeZone": "Tokyo Standard Time"},
            "end": {"dateTime": "2026-05-05T00:00:00", "timeZone": "Tokyo Standard Time"}}),
    );
    let v = get(&s, &format!("{U}/events/{}", e["id"].as_str().unwrap()));
    assert_eq!(v["start"]["dateTime"], "2026-05-04T00:00:00.0000000");
    assert_eq!(v["originalStartTimeZone"], "Tokyo Standard Time");
}

#[test]
fn todo_tasks_delta_reports_changes_and_links() {
    let s = store();
    let lists = get(
        &s,
        &format!("{U}/todo/lists?$filter=wellknownListName eq 'defaultList'"),
    );
    let list = lists["value"][0]["id"].as_str().unwrap().to_string();
    let tasks = format!("{U}/todo/lists/{list}/tasks");
    let t1 = post(
        &s,
        &tasks,
        json!({"title": "One", "linkedResources": [{"applicationName": "syncbridge", "externalId": "L1"}]}),
    );
    let t2 = post(&s, &tasks, json!({"title": "Two"}));
    let links = get(
        &s,
        &format!("{tasks}/{}/linkedResources", t1["id"].as_str().unwrap()),
    );
    assert!(
        links["value"][0]["id"].is_string(),
        "deep-inserted links get ids: {links}"
    );
    let first = get(&s, &format!("{tasks}/delta"));
    assert_eq!(first["value"].as_array().unwrap().len(), 2);
    assert!(first["value"][0].get("linkedResources").is_none());
    let delta = first["@odata.deltaLink"].as_str().unwrap().to_string();
    // Nothing changed: an empty round.
    let again = get(&s, &delta);
    assert_eq!(again["value"], json!([]));
    let delta = again["@odata.deltaLink"].as_str().unwrap().to_string();
    let t2id = t2["id"].as_str().unwrap();
    let (st, _) = call(
        &s,
        Method::PATCH,
        &format!("{tasks}/{t2id}"),
        "",
        json!({"status": "completed"}),
    );
    assert_eq!(st, 200);
    let t1id = t1["id"].as_str().unwrap();
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("{tasks}/{t1id}"),
        "",
        Value::Null,
    );
    assert_eq!(st, 204);
    let changes = get(&s, &delta);
    let vals = changes["value"].as_array().unwrap();
    assert_eq!(vals.len(), 2, "{changes}");
    assert_eq!(vals[0]["status"], "completed");
    assert_eq!(vals[1]["@removed"]["reason"], "deleted");
    // Links: read with $expand, added through linkedResources.
    let links = get(&s, &format!("{tasks}/{t2id}/linkedResources"));
    assert_eq!(links["value"], json!([]));
    let l = post(
        &s,
        &format!("{tasks}/{t2id}/linkedResources"),
        json!({"applicationName": "syncbridge", "externalId": "L2"}),
    );
    assert!(l["id"].is_string());
    let t = get(&s, &format!("{tasks}/{t2id}?$expand=linkedResources"));
    assert_eq!(t["linkedResources"][0]["externalId"], "L2");
    let (st, b) = call(
        &s,
        Method::GET,
        &format!("{tasks}/delta?$deltatoken=bogus"),
        "",
        Value::Null,
    );
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (410, Some("SyncStateNotFound"))
    );
}

#[test]
fn an_application_access_policy_denies_one_mailbox_only() {
    let s = store();
    GraphHandle(&s).add_user(
        T,
        json!({"id": "u2", "userPrincipalName": format!("bob@{T}"),
            "assignedLicenses": [{"skuId": "c7df2760-2c81-4ef7-b578-5b5392b571df", "disabledPlans": []}]}),
    );
    assert!(GraphHandle(&s).deny_mailbox_access(T, &format!("alice@{T}")));
    assert!(!GraphHandle(&s).deny_mailbox_access(T, "nobody"));
    let (st, b) = call(&s, Method::GET, &format!("{U}/events"), "", Value::Null);
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (403, Some("ErrorAccessDenied"))
    );
    // The user object itself stays readable; the other mailbox works.
    assert_eq!(call(&s, Method::GET, U, "", Value::Null).0, 200);
    let bob = format!("users/bob@{T}/events");
    assert_eq!(call(&s, Method::GET, &bob, "", Value::Null).0, 200);
}

const OWNER: &str = "String {b6a4f0d2-6c1e-4c57-9a53-5f0e2d7c9b11} Name syncbridgeSyncOwner";

fn root_owner_url(id: &str) -> String {
    format!("{U}/mailFolders/msgfolderroot?$select=id&$expand=singleValueExtendedProperties($filter=id eq '{id}')")
}

fn patch_root(s: &Store, body: Value) -> (u16, Value) {
    call(
        s,
        Method::PATCH,
        &format!("{U}/mailFolders/msgfolderroot"),
        "",
        body,
    )
}

#[test]
fn the_root_folder_keeps_the_sync_owner_property() {
    let s = store();
    let h = GraphHandle(&s);
    // Unmarked: only the id, no expansion.
    let v = get(&s, &root_owner_url(OWNER));
    let root = v["id"].as_str().unwrap().to_string();
    assert!(v.get("displayName").is_none(), "{v}");
    assert!(v.get("singleValueExtendedProperties").is_none(), "{v}");
    assert_eq!(h.sync_owner(T, &format!("alice@{T}")), None);

    let (st, b) = patch_root(
        &s,
        json!({"singleValueExtendedProperties": [{"id": OWNER, "value": "org-a"}]}),
    );
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["id"], json!(root));
    assert!(b.get("singleValueExtendedProperties").is_none());
    let v = get(&s, &root_owner_url(OWNER));
    assert_eq!(
        v["singleValueExtendedProperties"],
        json!([{"id": OWNER, "value": "org-a"}])
    );
    // The id matches without case; the folder is also reached by its id.
    let v = get(&s, &root_owner_url(&OWNER.to_ascii_uppercase()));
    assert_eq!(v["singleValueExtendedProperties"][0]["value"], "org-a");
    let by_id = get(
        &s,
        &format!(
            "{U}/mailFolders/{root}?$expand=singleValueExtendedProperties($filter=id eq '{OWNER}')"
        ),
    );
    assert_eq!(by_id["displayName"], "Top of Information Store");
    assert_eq!(by_id["singleValueExtendedProperties"][0]["value"], "org-a");
    // Another property is not expanded by this filter.
    let v = get(&s, &root_owner_url(ANCHOR));
    assert!(v.get("singleValueExtendedProperties").is_none(), "{v}");

    // A second PATCH replaces the value.
    let (st, _) = patch_root(
        &s,
        json!({"singleValueExtendedProperties": [{"id": OWNER, "value": "org-b"}]}),
    );
    assert_eq!(st, 200);
    let v = get(&s, &root_owner_url(OWNER));
    assert_eq!(
        v["singleValueExtendedProperties"],
        json!([{"id": OWNER, "value": "org-b"}])
    );
    assert_eq!(h.sync_owner(T, "u1").as_deref(), Some("org-b"));

    // Tests mark the mailbox as another organization would, and unmark it.
    assert!(h.set_sync_owner(T, &format!("alice@{T}"), Some("org-c")));
    assert_eq!(
        get(&s, &root_owner_url(OWNER))["singleValueExtendedProperties"][0]["value"],
        "org-c"
    );
    assert!(h.set_sync_owner(T, "u1", None));
    assert!(get(&s, &root_owner_url(OWNER))
        .get("singleValueExtendedProperties")
        .is_none());
    assert!(!h.set_sync_owner(T, "nobody", Some("x")));
}

#[test]
fn root_folder_writes_are_checked_as_graph_checks_them() {
    let s = store();
    for (body, code) in [
        (
            json!({"singleValueExtendedProperties": [{"id": "syncbridgeSyncOwner", "value": "x"}]}),
            "ErrorInvalidProperty",
        ),
        (
            json!({"singleValueExtendedProperties": [{"id": "String {not-a-guid} Name x", "value": "x"}]}),
            "ErrorInvalidProperty",
        ),
        (
            json!({"singleValueExtendedProperties": [{"id": OWNER}]}),
            "ErrorInvalidProperty",
        ),
        (
            json!({"displayName": "Root"}),
            "ErrorInvalidPropertyForOperation",
        ),
        (json!({"colour": "red"}), "RequestBodyRead"),
    ] {
        let (st, b) = patch_root(&s, body.clone());
        assert_eq!(
            (st, b["error"]["code"].as_str()),
            (400, Some(code)),
            "{body}"
        );
    }
    assert_eq!(GraphHandle(&s).sync_owner(T, "u1"), None);
    let (st, b) = call(
        &s,
        Method::GET,
        &format!("{U}/mailFolders/msgfolderroot?$select=colour"),
        "",
        Value::Null,
    );
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (400, Some("RequestBroker--ParseUri"))
    );
    // A user Graph does not know, and one without an Exchange Online licence.
    let (st, _) = call(
        &s,
        Method::GET,
        "users/nobody@contoso.onmicrosoft.com/mailFolders/msgfolderroot",
        "",
        Value::Null,
    );
    assert_eq!(st, 404);
    GraphHandle(&s).add_user(
        T,
        json!({"id": "u2", "userPrincipalName": format!("bob@{T}"), "assignedLicenses": []}),
    );
    let (st, b) = call(
        &s,
        Method::PATCH,
        &format!("users/bob@{T}/mailFolders/msgfolderroot"),
        "",
        json!({"singleValueExtendedProperties": [{"id": OWNER, "value": "x"}]}),
    );
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (404, Some("MailboxNotEnabledForRESTAPI"))
    );
}
