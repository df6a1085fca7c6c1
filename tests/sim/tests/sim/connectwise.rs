//! ConnectWise Manage simulator.

use crate::common;

use base64::Engine;
use serde_json::{json, Value};
use syncbridge_sim::Seed;

fn seed() -> Seed {
    serde_json::from_value(json!({"connectwise": {
        "credentials": [{"companyId": "msp", "publicKey": "pub", "privateKey": "priv"}],
        "clientIds": ["7b5f0f3e-1111-4111-8111-000000000001"],
        "contactTypes": [{"id": 1, "description": "Employee", "defaultFlag": true}, {"id": 2, "description": "Owner"}],
        "members": [{"id": 5, "identifier": "ann", "firstName": "Ann", "lastName": "Tech"}],
        "companies": [
            {"id": 10, "identifier": "Contoso", "name": "Contoso Ltd", "sites": [{"name": "Main"}, {"name": "Branch"}]},
            {"id": 11, "identifier": "Fabrikam", "name": "Fabrikam Inc"}
        ],
        "contacts": (0..30).map(|i| json!({"id": 100 + i, "firstName": format!("F{i:02}"), "lastName": "Doe",
            "company": {"id": if i < 20 {10} else {11}, "identifier": if i < 20 {"Contoso"} else {"Fabrikam"}},
            "communicationItems": [{"type": {"id": 1, "name": "Email"}, "value": format!("f{i}@contoso.com"), "defaultFlag": true}, {"type": {"id": 2, "name": "Direct"}, "value": format!("555-01{i:02}")}],
            "types": [{"id": 1, "name": "Employee"}]})).collect::<Vec<_>>()
    }}))
    .unwrap()
}

fn client() -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    let b = base64::engine::general_purpose::STANDARD.encode("msp+pub:priv");
    h.insert("Authorization", format!("Basic {b}").parse().unwrap());
    h.insert(
        "clientId",
        "7b5f0f3e-1111-4111-8111-000000000001".parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(h)
        .build()
        .unwrap()
}

#[tokio::test]
async fn auth_requires_basic_and_client_id() {
    let sim = common::start(seed()).await;
    let url = format!("{}/company/companies", sim.connectwise_url());
    let b = base64::engine::general_purpose::STANDARD.encode("msp+pub:priv");
    let r = reqwest::Client::new()
        .get(&url)
        .header("Authorization", format!("Basic {b}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "clientId is mandatory");
    let e: Value = r.json().await.unwrap();
    assert!(e["code"].is_string() && e["message"].is_string());
    let bad = base64::engine::general_purpose::STANDARD.encode("msp+pub:wrong");
    let r = reqwest::Client::new()
        .get(&url)
        .header("Authorization", format!("Basic {bad}"))
        .header("clientId", "7b5f0f3e-1111-4111-8111-000000000001")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
}

/// The `rel="next"` address of a `Link` header.
fn next_link(link: &str) -> Option<String> {
    link.split(", ")
        .find(|l| l.ends_with("rel=\"next\""))
        .map(|l| l[1..l.find('>').unwrap()].to_string())
}

#[tokio::test]
async fn conditions_paging_and_link_header() {
    let sim = common::start(seed()).await;
    let c = client();
    let base = sim.connectwise_url();
    let r = c
        .get(format!("{base}/company/contacts"))
        .query(&[
            (
                "conditions",
                r#"company/identifier = "Contoso" and (firstName like "F0%" or id >= 118)"#,
            ),
            ("pageSize", "5"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let link = r.headers()["link"].to_str().unwrap().to_string();
    assert!(
        link.contains("rel=\"next\"") && link.contains("rel=\"last\""),
        "{link}"
    );
    let mut page: Vec<Value> = r.json().await.unwrap();
    let mut next = next_link(&link);
    while let Some(n) = next {
        let r = c.get(&n).send().await.unwrap();
        next = r
            .headers()
            .get("link")
            .and_then(|h| h.to_str().ok())
            .and_then(next_link);
        page.extend(r.json::<Vec<Value>>().await.unwrap());
    }
    // F00..F09 + ids 118, 119
    assert_eq!(page.len(), 12);
    let v: Value = common::json_of(
        c.get(format!("{base}/company/contacts/count"))
            .query(&[("conditions", "company/id = 11")]),
    )
    .await;
    assert_eq!(v["count"], 10);
    let v: Vec<Value> = common::json_of(c.get(format!("{base}/company/contacts")).query(&[("childConditions", r#"communicationItems/value = "f7@contoso.com" AND communicationItems/communicationType = "Email""#)])).await;
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["id"], 107);
    assert_eq!(v[0]["communicationItems"][0]["type"]["name"], "Email");
    let r = c
        .get(format!("{base}/company/contacts"))
        .query(&[("conditions", "firstName = unquoted")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .get(format!("{base}/company/contacts"))
        .query(&[("pageSize", "1001")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let dated: Vec<Value> = common::json_of(
        c.get(format!("{base}/company/companies"))
            .query(&[("conditions", "_info/lastUpdated > [2020-01-01T00:00:00Z]")]),
    )
    .await;
    assert_eq!(dated.len(), 2);
}

#[tokio::test]
async fn sites_types_create_patch() {
    let sim = common::start(seed()).await;
    let c = client();
    let base = sim.connectwise_url();
    let sites: Vec<Value> =
        common::get_json(&c, format!("{base}/company/companies/10/sites")).await;
    assert_eq!(sites.len(), 2);
    let types: Vec<Value> = common::get_json(&c, format!("{base}/company/contacts/types")).await;
    assert_eq!(types.len(), 2);
    let r = common::post_json(
        &c,
        format!("{base}/company/contacts"),
        &json!({"lastName": "NoFirst"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["errors"][0]["field"], "firstName");
    let r = common::post_json(&c, format!("{base}/company/contacts"), &json!({"firstName": "Nina", "lastName": "New", "company": {"id": 10},
        "communicationItems": [{"type": {"id": 1, "name": "Email"}, "value": "nina@contoso.com", "defaultFlag": true}]})).await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(
        created["communicationItems"][0]["communicationType"],
        "Email"
    );
    let r = common::patch_json(
        &c,
        format!("{base}/company/contacts/{id}"),
        &json!([
            {"op": "replace", "path": "/firstName", "value": "Nine"},
            {"op": "add", "path": "/types", "value": [{"id": 2, "name": "Owner"}]},
            {"op": "replace", "path": "/inactiveFlag", "value": true}
        ]),
    )
    .await;
    assert_eq!(r.status(), 200);
    let row = sim.connectwise().get("company/contacts", id).unwrap();
    assert_eq!(row["firstName"], "Nine");
    assert_eq!(row["inactiveFlag"], true);
    assert_eq!(row["types"][0]["name"], "Owner");
    let r = common::patch_json(
        &c,
        format!("{base}/company/contacts/{id}"),
        &json!({"firstName": "x"}),
    )
    .await;
    assert_eq!(r.status(), 400, "PATCH must be a JSON-Patch array");
    let r = c
        .get(format!("{base}/company/contacts/999999"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "NotFound");
    let r = common::post_json(&c, format!("{base}/schedule/entries"), &json!({"objectId": 1, "member": {"identifier": "ann"}, "dateStart": "2026-03-01T10:00:00Z", "dateEnd": "2026-03-01T11:00:00Z", "type": {"identifier": "S"}})).await;
    assert_eq!(r.status(), 201);
    let v: Vec<Value> = common::json_of(
        c.get(format!("{base}/schedule/entries"))
            .query(&[("conditions", "dateStart >= [2026-03-01T00:00:00Z]")]),
    )
    .await;
    assert_eq!(v.len(), 1);
}

#[tokio::test]
async fn references_communication_types_and_patch_paths_as_connectwise() {
    let sim = common::start(seed()).await;
    let c = client();
    let base = sim.connectwise_url();
    // a communication item posted with the type's id only is the Email type
    let r = common::post_json(&c, format!("{base}/company/contacts"), &json!({"firstName": "Ida", "company": {"id": 11}, "types": [{"id": 2}],
        "communicationItems": [{"type": {"id": 1}, "value": "ida@fabrikam.com", "defaultFlag": true}]})).await;
    assert_eq!(r.status(), 201);
    let ida: Value = r.json().await.unwrap();
    let id = ida["id"].as_i64().unwrap();
    assert_eq!(
        ida["company"],
        json!({"id": 11, "identifier": "Fabrikam", "name": "Fabrikam Inc"})
    );
    assert_eq!(ida["types"], json!([{"id": 2, "name": "Owner"}]));
    let item = &ida["communicationItems"][0];
    assert_eq!(item["type"], json!({"id": 1, "name": "Email"}));
    assert_eq!(item["communicationType"], "Email");
    assert_eq!(item["contactId"], id);
    let found: Value = common::json_of(c.get(format!("{base}/company/contacts")).query(&[("childConditions", r#"communicationItems/value = "ida@fabrikam.com" and communicationItems/communicationType = "Email""#)])).await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    // unknown references are refused
    for bad in [
        json!({"firstName": "X", "company": {"id": 999}}),
        json!({"firstName": "X", "types": [{"id": 99}]}),
        json!({"firstName": "X", "communicationItems": [{"type": {"id": 99}, "value": "x"}]}),
    ] {
        let r = common::post_json(&c, format!("{base}/company/contacts"), &bad).await;
        assert_eq!(r.status(), 400, "{bad}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["errors"][0]["code"], "InvalidField", "{e}");
    }
    // JSON-Patch: unknown paths refused, known ones (any case, with or without '/') applied
    let r = common::patch_json(
        &c,
        format!("{base}/company/contacts/{id}"),
        &json!([{"op": "replace", "path": "/favouriteColour", "value": "blue"}]),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = common::patch_json(&c, format!("{base}/company/contacts/{id}"), &json!([{"op": "replace", "path": "Title", "value": "CFO"}, {"op": "replace", "path": "/company", "value": {"id": 10}}])).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["title"], "CFO");
    assert_eq!(v["company"]["identifier"], "Contoso");
    // the communications sub-collection
    let url = format!("{base}/company/contacts/{id}/communications");
    let r = common::post_json(&c, &url, &json!({"type": {"id": 3}, "value": "555-0999"})).await;
    assert_eq!(r.status(), 201);
    let fax: Value = r.json().await.unwrap();
    assert_eq!(
        (fax["communicationType"].as_str(), fax["contactId"].as_i64()),
        (Some("Fax"), Some(id))
    );
    let all: Value = common::get_json(&c, &url).await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    let n: Value = common::get_json(&c, format!("{url}/count")).await;
    assert_eq!(n["count"], 2);
    let r = c
        .delete(format!("{url}/{}", fax["id"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let contact: Value = common::get_json(&c, format!("{base}/company/contacts/{id}")).await;
    assert_eq!(contact["communicationItems"].as_array().unwrap().len(), 1);
}
