//! ConnectWise calendar entities: members, schedule entries and sales activities.

use crate::common;

use base64::Engine;
use serde_json::{json, Value};
use syncbridge_sim::Seed;

const CLIENT_ID: &str = "7b5f0f3e-1111-4111-8111-000000000002";

fn seed() -> Seed {
    serde_json::from_value(json!({"connectwise": {
        "credentials": [{"companyId": "msp", "publicKey": "pub", "privateKey": "priv"}],
        "clientIds": [CLIENT_ID],
        "companies": [{"id": 10, "identifier": "Contoso", "name": "Contoso Ltd"}],
        "members": [
            {"id": 5, "identifier": "jdoe", "firstName": "John", "lastName": "Doe",
             "primaryEmail": "jdoe@msp.example", "timeZone": {"id": 1}},
            {"id": 6, "identifier": "asmith", "firstName": "Ann", "lastName": "Smith",
             "primaryEmail": "asmith@msp.example", "timeZone": {"name": "W. Europe Standard Time"},
             "inactiveFlag": true}
        ],
        "activities": [
            {"id": 70, "name": "Call Contoso", "assignTo": {"identifier": "jdoe"}, "company": {"id": 10},
             "dateStart": "2026-03-02T09:00:00Z", "dateEnd": "2026-03-02T09:30:00Z"}
        ],
        "scheduleEntries": [
            {"id": 80, "objectId": 70, "member": {"identifier": "jdoe"}, "type": {"identifier": "C"},
             "name": "Call Contoso", "dateStart": "2026-03-02T09:00:00Z", "dateEnd": "2026-03-02T09:30:00Z"},
            {"id": 81, "member": {"identifier": "asmith"}, "type": {"identifier": "M"},
             "name": "Standup", "dateStart": "2026-03-03T08:00:00Z", "dateEnd": "2026-03-03T08:15:00Z"}
        ]
    }}))
    .unwrap()
}

fn client() -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    let b = base64::engine::general_purpose::STANDARD.encode("msp+pub:priv");
    h.insert("Authorization", format!("Basic {b}").parse().unwrap());
    h.insert("clientId", CLIENT_ID.parse().unwrap());
    reqwest::Client::builder()
        .default_headers(h)
        .build()
        .unwrap()
}

async fn list(c: &reqwest::Client, url: String, conditions: &str) -> Vec<Value> {
    common::json_of(c.get(url).query(&[("conditions", conditions)])).await
}

#[tokio::test]
async fn members_resolve_time_zones_and_filter_by_identifier_and_flag() {
    let sim = common::start(seed()).await;
    let (c, base) = (client(), sim.connectwise_url());
    let all: Vec<Value> = common::get_json(&c, format!("{base}/system/members")).await;
    assert_eq!(all.len(), 2);
    let jdoe = &all[0];
    assert_eq!(jdoe["identifier"], "jdoe");
    assert_eq!(jdoe["primaryEmail"], "jdoe@msp.example");
    assert_eq!(
        jdoe["inactiveFlag"], false,
        "inactiveFlag defaults to false"
    );
    assert_eq!(jdoe["timeZone"]["name"], "Eastern Standard Time");
    assert!(jdoe["_info"]["lastUpdated"].is_string());
    assert_eq!(all[1]["timeZone"]["id"], 6, "resolved by name");
    let v = list(
        &c,
        format!("{base}/system/members"),
        r#"identifier = "asmith""#,
    )
    .await;
    assert_eq!(v.len(), 1);
    let v = list(&c, format!("{base}/system/members"), "inactiveFlag = false").await;
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["identifier"], "jdoe");
    // a duplicate identifier and a missing last name are refused as ConnectWise does
    let r = common::post_json(
        &c,
        format!("{base}/system/members"),
        &json!({"identifier": "JDOE", "firstName": "J", "lastName": "D"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["errors"][0]["code"],
        "DuplicateValue"
    );
    let r = common::post_json(
        &c,
        format!("{base}/system/members"),
        &json!({"identifier": "new", "firstName": "N"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["errors"][0]["field"],
        "lastName"
    );
    let t: Vec<Value> = common::get_json(&c, format!("{base}/system/timeZoneSetups")).await;
    assert!(t.iter().any(|z| z["name"] == "Pacific Standard Time"));
}

#[tokio::test]
async fn schedule_entries_by_member_and_last_updated_with_server_fields() {
    let sim = common::start(seed()).await;
    let (c, base) = (client(), sim.connectwise_url());
    let url = format!("{base}/schedule/entries");
    let v = list(&c, url.clone(), r#"member/identifier = "jdoe""#).await;
    assert_eq!(v.len(), 1);
    let e = &v[0];
    assert_eq!(
        e["member"],
        json!({"id": 5, "identifier": "jdoe", "name": "John Doe"})
    );
    assert_eq!(
        e["type"],
        json!({"id": 2, "identifier": "C", "name": "Activity"})
    );
    assert_eq!(e["status"]["name"], "Firm");
    assert_eq!(e["hours"], 0.5);
    for f in ["doneFlag", "acknowledgedFlag", "ownerFlag"] {
        assert_eq!(e[f], false, "{f}");
    }
    let stamp = e["_info"]["lastUpdated"].as_str().unwrap().to_owned();
    let after = format!("lastUpdated > [{stamp}]");
    assert!(list(&c, url.clone(), &after).await.is_empty());
    // a write moves lastUpdated: the entry is reported again
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = common::patch_json(
        &c,
        format!("{url}/81"),
        &json!([
        {"op": "replace", "path": "doneFlag", "value": true},
        {"op": "replace", "path": "dateEnd", "value": "2026-03-03T09:00:00Z"}]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let row: Value = r.json().await.unwrap();
    assert_eq!(row["hours"], 1.0);
    assert!(row["closeDate"].is_string(), "done entries get a closeDate");
    let changed = list(&c, url.clone(), &after).await;
    assert_eq!(
        changed.iter().map(|r| r["id"].clone()).collect::<Vec<_>>(),
        vec![json!(81)]
    );
    // type C needs the activity in objectId; an unknown member is refused
    let r = common::post_json(&c, url.clone(), &json!({"member": {"identifier": "jdoe"},
        "type": {"identifier": "C"}, "dateStart": "2026-03-04T10:00:00Z", "dateEnd": "2026-03-04T11:00:00Z"})).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["errors"][0]["field"],
        "objectId"
    );
    let r = common::post_json(
        &c,
        url.clone(),
        &json!({"member": {"identifier": "nobody"},
        "type": {"identifier": "M"}}),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["errors"][0]["field"],
        "member"
    );
    let r = common::post_json(&c, url.clone(), &json!({"member": {"id": 5}, "type": {"identifier": "M"},
        "name": "Backwards", "dateStart": "2026-03-04T10:00:00Z", "dateEnd": "2026-03-04T09:00:00Z"})).await;
    assert_eq!(r.status(), 400, "an entry may not end before it starts");
    let r = common::post_json(
        &c,
        url.clone(),
        &json!({"member": {"id": 5}, "type": {"identifier": "M"},
        "name": "Review", "where": {"id": 1, "name": "On-Site"},
        "dateStart": "2026-03-04T10:00:00Z", "dateEnd": "2026-03-04T11:30:00Z"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    assert_eq!(
        list(&c, url.clone(), r#"member/identifier = "jdoe""#)
            .await
            .len(),
        2
    );
    let r = c.delete(format!("{url}/{id}")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        c.get(format!("{url}/{id}")).send().await.unwrap().status(),
        404
    );
    // unknown model properties are refused in a JSON-Patch
    let r = common::patch_json(
        &c,
        format!("{url}/80"),
        &json!([{"op": "replace", "path": "subject", "value": "x"}]),
    )
    .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn activities_are_assigned_closed_and_deleted() {
    let sim = common::start(seed()).await;
    let (c, base) = (client(), sim.connectwise_url());
    let url = format!("{base}/sales/activities");
    let v = list(&c, url.clone(), r#"assignTo/identifier = "jdoe""#).await;
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["status"]["name"], "Open");
    assert_eq!(v[0]["assignTo"]["name"], "John Doe");
    assert_eq!(v[0]["company"]["identifier"], "Contoso");
    let r = common::post_json(
        &c,
        url.clone(),
        &json!({"assignTo": {"identifier": "jdoe"}}),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["errors"][0]["field"],
        "name"
    );
    let r = common::post_json(
        &c,
        url.clone(),
        &json!({"name": "Send quote", "assignTo": {"identifier": "jdoe"},
        "notes": "v2", "dateStart": "2026-03-05T00:00:00Z", "type": {"name": "Task"}}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["type"]["id"], 4);
    let statuses: Vec<Value> = common::get_json(&c, format!("{url}/statuses")).await;
    let closed = statuses.iter().find(|s| s["closedFlag"] == true).unwrap();
    let r = common::patch_json(
        &c,
        format!("{url}/{id}"),
        &json!([{"op": "replace", "path": "status", "value": {"id": closed["id"]}}]),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"]["name"], "Closed");
    let open = list(
        &c,
        url.clone(),
        r#"assignTo/identifier = "jdoe" and status/name = "Open""#,
    )
    .await;
    assert_eq!(open.len(), 1);
    let r = common::patch_json(
        &c,
        format!("{url}/{id}"),
        &json!([{"op": "replace", "path": "status", "value": {"id": 99}}]),
    )
    .await;
    assert_eq!(r.status(), 400, "unknown status");
    assert_eq!(
        c.delete(format!("{url}/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(sim.connectwise().get("sales/activities", id).is_none());
    let count: Value = common::get_json(&c, format!("{url}/count")).await;
    assert_eq!(count["count"], 1);
}
