//! `groups/delta` and the membership helpers of the test handle.

use super::*;
use axum::http::Method;

const T: &str = "contoso.onmicrosoft.com";
const BASE: &str = "http://sim.test";

/// A tenant with users u1…u4 and two groups: `g-outer` (u1 and the group `g-inner`) and
/// `g-inner` (u2).
fn store() -> Store {
    let s = Store::new(crate::config::Services::ALL, 1);
    let _ = s.base_url.set(BASE.into());
    GraphHandle(&s).add_tenant(
        serde_json::from_value(json!({
            "domain": T,
            "users": (1..=4)
                .map(|n| json!({"id": format!("u{n}"), "userPrincipalName": format!("user{n}@{T}")}))
                .collect::<Vec<_>>(),
            "groups": [
                {"id": "g-outer", "displayName": "All Staff", "members": ["u1", "g-inner"]},
                {"id": "g-inner", "displayName": "Sales", "members": ["u2"]}
            ]
        }))
        .unwrap(),
    );
    s
}

fn call(s: &Store, method: Method, url: &str, page: Option<usize>, body: &[u8]) -> (u16, Value) {
    let rel = url
        .strip_prefix(&format!("{BASE}/v1.0/"))
        .unwrap_or(url)
        .trim_start_matches('/');
    let (path, query) = rel.split_once('?').unwrap_or((rel, ""));
    let mut headers = HashMap::new();
    if let Some(n) = page {
        headers.insert("prefer".to_string(), format!("odata.maxpagesize={n}"));
    }
    let r = api::dispatch(s, T, &method, path, query, headers, body);
    (r.status.as_u16(), r.body.unwrap_or(Value::Null))
}

fn get(s: &Store, url: &str, page: Option<usize>) -> (u16, Value) {
    call(s, Method::GET, url, page, b"")
}

/// Reads a whole round: every page's `value` and the round's delta link.
fn round(s: &Store, url: &str, page: usize) -> (Vec<Value>, String) {
    let mut url = url.to_string();
    let mut out = Vec::new();
    loop {
        let (status, b) = get(s, &url, Some(page));
        assert_eq!(status, 200, "{b}");
        out.extend(b["value"].as_array().unwrap().iter().cloned());
        if let Some(next) = b["@odata.nextLink"].as_str() {
            assert!(b.get("@odata.deltaLink").is_none());
            assert!(next.starts_with(&format!("{BASE}/v1.0/groups/delta?")));
            assert!(next.contains("$skiptoken="), "{next}");
            url = next.to_string();
            continue;
        }
        let delta = b["@odata.deltaLink"]
            .as_str()
            .expect("deltaLink on the last page");
        assert!(delta.contains("$deltatoken="), "{delta}");
        return (out, delta.to_string());
    }
}

fn by_id<'a>(groups: &'a [Value], id: &str) -> &'a Value {
    groups
        .iter()
        .find(|g| g["id"] == id)
        .unwrap_or_else(|| panic!("{id} in {groups:#?}"))
}

fn member_ids(g: &Value) -> Vec<(String, bool)> {
    g["members@delta"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        m["id"].as_str().unwrap().to_string(),
                        m.get("@removed").is_some(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

const FIRST: &str = "groups/delta?$select=id,displayName,members";

#[test]
fn the_first_round_lists_every_group_with_all_its_members_page_by_page() {
    let s = store();
    let (status, first) = get(&s, FIRST, Some(1));
    assert_eq!(status, 200);
    assert!(first["@odata.nextLink"].is_string(), "one group a page");
    assert!(first["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("$metadata#groups(id,displayName,members)"));
    let (groups, _) = round(&s, FIRST, 1);
    assert_eq!(groups.len(), 2);
    let outer = by_id(&groups, "g-outer");
    assert_eq!(outer["displayName"], "All Staff");
    assert!(outer.get("mailNickname").is_none(), "$select applies");
    assert_eq!(
        outer["members@delta"],
        json!([
            {"@odata.type": "#microsoft.graph.user", "id": "u1"},
            {"@odata.type": "#microsoft.graph.group", "id": "g-inner"}
        ])
    );
    assert_eq!(
        member_ids(by_id(&groups, "g-inner")),
        [("u2".to_string(), false)]
    );
}

#[test]
fn a_later_round_reports_only_the_membership_changes() {
    let s = store();
    let h = GraphHandle(&s);
    let (_, delta) = round(&s, FIRST, 100);
    // Nothing changed: an empty round with a fresh link.
    let (groups, delta) = round(&s, &delta, 100);
    assert!(groups.is_empty(), "{groups:#?}");

    assert!(h.add_member(T, "g-inner", "u3"));
    assert!(h.remove_member(T, "g-outer", "u1"));
    assert!(h.add_member(T, "g-outer", "u4"));
    // Added and removed again in the same round: the last change counts.
    assert!(h.add_member(T, "g-inner", "u4"));
    assert!(h.remove_member(T, "g-inner", "u4"));
    assert_eq!(
        h.members(T, "g-outer").unwrap(),
        ["g-inner".to_string(), "u4".to_string()]
    );
    let (groups, delta) = round(&s, &delta, 1);
    assert_eq!(groups.len(), 2, "{groups:#?}");
    assert_eq!(
        member_ids(by_id(&groups, "g-outer")),
        [("u1".to_string(), true), ("u4".to_string(), false)]
    );
    let removed = &by_id(&groups, "g-outer")["members@delta"][0];
    assert_eq!(removed["@removed"], json!({"reason": "deleted"}));
    assert_eq!(removed["@odata.type"], "#microsoft.graph.user");
    assert_eq!(
        member_ids(by_id(&groups, "g-inner")),
        [("u3".to_string(), false), ("u4".to_string(), true)]
    );
    // The users see it in memberOf at once; users/delta does not report it.
    let (_, b) = get(
        &s,
        "users/u3/transitiveMemberOf/microsoft.graph.group",
        None,
    );
    let ids: Vec<&str> = b["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["g-inner", "g-outer"]);

    let (groups, delta) = round(&s, &delta, 100);
    assert!(groups.is_empty(), "reported once: {groups:#?}");
    // A property change lists the group without members@delta.
    assert!(h.update_group(T, "g-inner", json!({"displayName": "Sales EU"})));
    let (groups, _) = round(&s, &delta, 100);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["displayName"], "Sales EU");
    assert!(groups[0].get("members@delta").is_none());
}

#[test]
fn membership_changes_through_the_rest_api_are_reported_too() {
    let s = store();
    let (_, delta) = round(&s, FIRST, 100);
    let add = json!({"@odata.id": format!("{BASE}/v1.0/directoryObjects/u3")}).to_string();
    let (status, _) = call(
        &s,
        Method::POST,
        "groups/g-outer/members/$ref",
        None,
        add.as_bytes(),
    );
    assert_eq!(status, 204);
    let (status, _) = call(
        &s,
        Method::POST,
        "groups/g-outer/members/$ref",
        None,
        add.as_bytes(),
    );
    assert_eq!(status, 400, "already a member");
    let (status, _) = call(
        &s,
        Method::DELETE,
        "groups/g-inner/members/u2/$ref",
        None,
        b"",
    );
    assert_eq!(status, 204);
    let (status, _) = call(
        &s,
        Method::DELETE,
        "groups/g-inner/members/u2/$ref",
        None,
        b"",
    );
    assert_eq!(status, 404, "no longer a member");
    let (groups, _) = round(&s, &delta, 100);
    assert_eq!(
        member_ids(by_id(&groups, "g-outer")),
        [("u3".to_string(), false)]
    );
    assert_eq!(
        member_ids(by_id(&groups, "g-inner")),
        [("u2".to_string(), true)]
    );
}

#[test]
fn a_deleted_group_is_removed_and_counts_for_nobody() {
    let s = store();
    let h = GraphHandle(&s);
    let (_, delta) = round(&s, FIRST, 100);
    assert!(h.delete_group(T, "g-inner", false));
    assert!(!h.delete_group(T, "g-inner", false), "already deleted");
    let (groups, _) = round(&s, &delta, 100);
    assert_eq!(
        groups,
        [
            json!({"@odata.type": "#microsoft.graph.group", "id": "g-inner", "@removed": {"reason": "changed"}})
        ]
    );
    let (_, b) = get(
        &s,
        "users/u2/transitiveMemberOf/microsoft.graph.group",
        None,
    );
    assert_eq!(b["value"], json!([]));
    // A new first round leaves it out.
    let (groups, _) = round(&s, FIRST, 100);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["id"], "g-outer");
    assert!(!h.add_member(T, "g-inner", "u3"), "no such group any more");
}

#[test]
fn without_members_in_select_membership_is_not_tracked() {
    let s = store();
    let h = GraphHandle(&s);
    let (groups, delta) = round(&s, "groups/delta?$select=id,displayName", 100);
    assert_eq!(groups.len(), 2);
    assert!(groups.iter().all(|g| g.get("members@delta").is_none()));
    assert!(h.add_member(T, "g-outer", "u3"));
    let (groups, _) = round(&s, &delta, 100);
    assert!(groups.is_empty(), "{groups:#?}");
}

#[test]
fn unknown_and_expired_tokens_answer_410_like_users_delta() {
    let s = store();
    let h = GraphHandle(&s);
    let (_, delta) = round(&s, FIRST, 100);
    let (_, page) = get(&s, FIRST, Some(1));
    let next = page["@odata.nextLink"].as_str().unwrap().to_string();
    for bad in [
        "groups/delta?$deltatoken=garbage".to_string(),
        "groups/delta?$skiptoken=garbage".to_string(),
    ] {
        let (status, b) = get(&s, &bad, None);
        assert_eq!(status, 410);
        assert_eq!(b["error"]["code"], "SyncStateNotFound");
    }
    // A users token is no groups token.
    let (_, users) = get(&s, "users/delta?$select=id", None);
    let users_link = users["@odata.deltaLink"].as_str().unwrap();
    let token = users_link.split("$deltatoken=").nth(1).unwrap();
    let (status, _) = get(&s, &format!("groups/delta?$deltatoken={token}"), None);
    assert_eq!(status, 410);
    h.expire_delta_tokens();
    for link in [&delta, &next] {
        let (status, b) = get(&s, link, None);
        assert_eq!(status, 410);
        assert_eq!(b["error"]["code"], "SyncStateNotFound");
    }
    // A new first round works.
    assert_eq!(round(&s, FIRST, 100).0.len(), 2);
}

#[test]
fn membership_helpers_refuse_what_does_not_exist() {
    let s = store();
    let h = GraphHandle(&s);
    assert!(!h.add_member(T, "g-outer", "u1"), "already a member");
    assert!(!h.add_member(T, "g-outer", "nobody"));
    assert!(!h.add_member(T, "g-nope", "u3"));
    assert!(!h.add_member("other.onmicrosoft.com", "g-outer", "u3"));
    assert!(!h.remove_member(T, "g-outer", "u3"), "not a member");
    assert!(h.members(T, "g-nope").is_none());
}
