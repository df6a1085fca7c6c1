//! Autotask REST simulator against the swagger subset.

use crate::common;

use serde_json::{json, Value};
use syncbridge_sim::Seed;

const USER: &str = "api@contoso.example";
const SECRET: &str = "at-secret";
const CODE: &str = "TRACKINGCODE123";

fn seed() -> Seed {
    serde_json::from_value(json!({"autotask": {
        "apiUsers": [{"userName": USER, "secret": SECRET, "integrationCode": CODE}],
        "entities": {
            "Companies": [{"id": 1, "companyName": "Contoso"}, {"id": 2, "companyName": "Fabrikam"}],
            "Resources": [{"id": 30, "firstName": "Ann", "lastName": "Tech", "email": "ann@msp.example", "isActive": true}],
            "Contacts": (0..12).map(|i| json!({"id": 100 + i, "companyID": if i < 7 {1} else {2}, "firstName": format!("F{i}"), "lastName": "Doe",
                "emailAddress": format!("user{i}@contoso.example"), "isActive": if i == 3 {0} else {1},
                "userDefinedFields": [{"name": "Tier", "value": if i % 2 == 0 {"gold"} else {"silver"}}]})).collect::<Vec<_>>()
        }
    }}))
    .unwrap()
}

fn client() -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("ApiIntegrationCode", CODE.parse().unwrap());
    h.insert("UserName", USER.parse().unwrap());
    h.insert("Secret", SECRET.parse().unwrap());
    reqwest::Client::builder()
        .default_headers(h)
        .build()
        .unwrap()
}

#[tokio::test]
async fn zone_information_without_credentials() {
    let sim = common::start(seed()).await;
    let r = reqwest::get(format!(
        "{}/atservicesrest/v1.0/zoneInformation?user={USER}",
        sim.base_url()
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    for k in ["zoneName", "url", "webUrl", "ci"] {
        assert!(v.get(k).is_some(), "{k} missing in {v}");
    }
    let url = v["url"].as_str().unwrap();
    assert!(
        url.to_ascii_lowercase().ends_with("/atservicesrest/") && !url.contains("v1.0"),
        "{url}"
    );
    // the returned url + V1.0 is usable
    let r = client()
        .get(format!("{url}V1.0/Companies/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn auth_headers_are_checked() {
    let sim = common::start(seed()).await;
    let r = reqwest::get(format!("{}/Companies/1", sim.autotask_url()))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .get(format!("{}/Companies/1", sim.autotask_url()))
        .header("ImpersonationResourceId", "999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client()
        .get(format!("{}/Companies/1", sim.autotask_url()))
        .header("ImpersonationResourceId", "30")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn get_by_id_envelope_fields_match_swagger() {
    let sim = common::start(seed()).await;
    let swagger: Value = serde_json::from_str(
        &std::fs::read_to_string(
            common::oracles().join("autotask/autotask-rest-swagger-v1-integration-subset.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let v: Value =
        common::get_json(&client(), format!("{}/contacts/100", sim.autotask_url())).await;
    let item = v["item"].as_object().expect("item envelope");
    let model = swagger["definitions"]["ContactModel"]["properties"]
        .as_object()
        .unwrap();
    for name in model.keys().filter(|k| *k != "SoapParentPropertyId") {
        let camel = format!("{}{}", name[..1].to_ascii_lowercase(), &name[1..]);
        assert!(item.contains_key(&camel), "{camel} missing");
    }
    assert!(
        item.keys()
            .all(|k| k.chars().next().unwrap().is_lowercase()),
        "wire is camelCase"
    );
    let v: Value =
        common::get_json(&client(), format!("{}/Contacts/99999", sim.autotask_url())).await;
    assert!(v["item"].is_null());
}

#[tokio::test]
async fn query_filters_paging_and_count() {
    let sim = common::start(seed()).await;
    let c = client();
    let base = sim.autotask_url();
    // lower-case `filter`, nested or-group, udf, beginsWith
    let q = json!({"filter": [
        {"op": "eq", "field": "companyID", "value": 1},
        {"op": "or", "items": [{"op": "beginsWith", "field": "emailAddress", "value": "USER1"}, {"op": "eq", "field": "Tier", "udf": true, "value": "gold"}]}
    ]});
    let v: Value = common::post_json(&c, format!("{base}/Contacts/query"), &q)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<i64> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [100, 101, 102, 104, 106]);
    assert_eq!(v["pageDetails"]["count"], 5);
    assert!(v["pageDetails"]["nextPageUrl"].is_null());

    let v: Value = common::post_json(
        &c,
        format!("{base}/Contacts/query/count"),
        &json!({"Filter": [{"op": "in", "field": "id", "value": [100, 101, 5]}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v, json!({"queryCount": 2}));

    // paging: MaxRecords 5, follow nextPageUrl verbatim; IncludeFields
    let q = json!({"MaxRecords": 5, "IncludeFields": ["firstName"], "Filter": [{"op": "exist", "field": "id"}]});
    let mut v: Value = common::post_json(&c, format!("{base}/Contacts/query"), &q)
        .await
        .json()
        .await
        .unwrap();
    let mut all = vec![];
    loop {
        let items = v["items"].as_array().unwrap();
        assert!(items.iter().all(|i| i.as_object().unwrap().len() == 2));
        all.extend(items.iter().map(|i| i["id"].as_i64().unwrap()));
        match v["pageDetails"]["nextPageUrl"].as_str() {
            Some(n) => v = common::get_json(&c, n).await,
            None => break,
        }
    }
    assert_eq!(all.len(), 12);
    assert!(v["pageDetails"]["prevPageUrl"].is_string());

    // GET …/query?search=
    let search =
        json!({"filter": [{"op": "contains", "field": "companyName", "value": "fab"}]}).to_string();
    let v: Value = common::json_of(
        c.get(format!("{base}/Companies/query"))
            .query(&[("search", search)]),
    )
    .await;
    assert_eq!(v["items"][0]["id"], 2);

    // errors
    let r = common::post_json(
        &c,
        format!("{base}/Contacts/query"),
        &json!({"MaxRecords": 501, "filter": [{"op": "exist", "field": "id"}]}),
    )
    .await;
    assert!(r.status().is_server_error() || r.status().is_client_error());
    let e: Value = r.json().await.unwrap();
    assert!(e["errors"][0].is_string());
    let r = common::post_json(
        &c,
        format!("{base}/Contacts/query"),
        &json!({"filter": [{"op": "eq", "field": "nope", "value": 1}]}),
    )
    .await;
    assert!(!r.status().is_success());
}

#[tokio::test]
async fn create_update_children_and_case_insensitive_paths() {
    let sim = common::start(seed()).await;
    let c = client();
    let base = sim.autotask_url();
    let r: Value = common::json_of(c.post(format!("{base}/Companies/1/Contacts")).json(
        &json!({"firstName": "New", "lastName": "Person", "emailAddress": "new@contoso.example"}),
    ))
    .await;
    let id = r["itemId"].as_i64().expect("itemId");
    let row = sim.autotask().get("contacts", id).unwrap();
    assert_eq!(row["companyID"], 1);
    let r: Value = common::patch_json(
        &c,
        format!("{base}/companies/1/contacts"),
        &json!({"id": id, "mobilePhone": "555"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(r["itemId"], id);
    assert_eq!(
        sim.autotask().get("contacts", id).unwrap()["mobilePhone"],
        "555"
    );
    let r = c
        .get(format!(
            "{}/ATSERVICESREST/v1.0/COMPANIES/1/contacts",
            sim.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 8);
    // wrong type → errors envelope
    let r = common::post_json(
        &c,
        format!("{base}/Companies/1/Contacts"),
        &json!({"firstName": 7}),
    )
    .await;
    assert!(!r.status().is_success());
    assert!(r.json::<Value>().await.unwrap()["errors"].is_array());
    // service call children
    let sc: Value = common::post_json(&c, format!("{base}/ServiceCalls"), &json!({"companyID": 1, "description": "Visit", "startDateTime": "2026-03-01T10:00:00Z", "endDateTime": "2026-03-01T11:00:00Z"})).await.json().await.unwrap();
    let scid = sc["itemId"].as_i64().unwrap();
    let t: Value = common::post_json(
        &c,
        format!("{base}/ServiceCalls/{scid}/Tickets"),
        &json!({"ticketID": 77}),
    )
    .await
    .json()
    .await
    .unwrap();
    let tid = t["itemId"].as_i64().unwrap();
    let r: Value = common::post_json(
        &c,
        format!("{base}/ServiceCallTickets/{tid}/Resources"),
        &json!({"resourceID": 30}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(r["itemId"].is_i64());
    let v: Value = common::post_json(
        &c,
        format!("{base}/ServiceCallTicketResources/query"),
        &json!({"filter": [{"op": "eq", "field": "serviceCallTicketID", "value": tid}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["items"][0]["resourceID"], 30);
}

#[tokio::test]
async fn threshold_information_and_429() {
    let sim = common::start(seed()).await;
    let c = client();
    sim.autotask().set_threshold(3, Some(0));
    let v: Value =
        common::get_json(&c, format!("{}/ThresholdInformation", sim.autotask_url())).await;
    assert_eq!(v["externalRequestThreshold"], 3);
    assert_eq!(v["currentTimeframeRequestCount"], 1);
    for _ in 0..2 {
        assert_eq!(
            c.get(format!("{}/Companies/1", sim.autotask_url()))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let r = c
        .get(format!("{}/Companies/1", sim.autotask_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.json::<Value>().await.unwrap()["errors"][0].is_string());
}

#[tokio::test]
async fn entity_information_lists_swagger_fields() {
    let sim = common::start(seed()).await;
    let v: Value = common::get_json(
        &client(),
        format!("{}/Contacts/entityInformation/fields", sim.autotask_url()),
    )
    .await;
    let fields = v["fields"].as_array().unwrap();
    let email = fields
        .iter()
        .find(|f| f["name"] == "emailAddress")
        .expect("emailAddress field");
    assert_eq!(email["dataType"], "string");
    let company = fields.iter().find(|f| f["name"] == "companyID").unwrap();
    assert_eq!(company["isReference"], true);
    let v: Value = common::get_json(
        &client(),
        format!("{}/Contacts/entityInformation", sim.autotask_url()),
    )
    .await;
    assert_eq!(v["info"]["canQuery"], true);
}

#[tokio::test]
async fn live_field_metadata_picklists_and_documented_write_routes() {
    let sim = common::start(seed()).await;
    let c = client();
    let base = sim.autotask_url();
    let v: Value = common::get_json(&c, format!("{base}/Companies/entityInformation/fields")).await;
    let f = |n: &str| {
        v["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n}"))
    };
    let ct = f("companyType");
    assert_eq!(
        (
            ct["isPickList"].as_bool(),
            ct["dataType"].as_str(),
            ct["isRequired"].as_bool()
        ),
        (Some(true), Some("integer"), Some(true))
    );
    let vals: Vec<(String, String)> = ct["picklistValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["value"].as_str().unwrap().to_string(),
                p["label"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        vals.contains(&("1".into(), "Customer".into()))
            && vals.contains(&("8".into(), "Partner".into())),
        "{vals:?}"
    );
    assert_eq!(f("ownerResourceID")["referenceEntityType"], "Resource");
    assert_eq!(f("companyCategoryID")["isPickList"], true);
    assert_eq!(f("companyName")["isPickList"], false);
    assert!(f("companyName")["picklistValues"].is_null());
    // a current Company payload is accepted; a value outside the picklist is refused
    let r = common::post_json(
        &c,
        format!("{base}/Companies"),
        &json!({"companyName": "Northwind", "companyType": 1, "companyCategoryID": 1,
        "ownerResourceID": 30, "phone": "555", "isActive": true}),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = common::post_json(
        &c,
        format!("{base}/Companies"),
        &json!({"companyName": "Bad", "companyType": 5, "ownerResourceID": 30, "phone": "555"}),
    )
    .await;
    assert_eq!(r.status(), 500);
    assert!(r.json::<Value>().await.unwrap()["errors"][0]
        .as_str()
        .unwrap()
        .contains("companyType"));
    // contacts: created and deleted under their company only
    for (m, url) in [
        ("POST", format!("{base}/Contacts")),
        ("PATCH", format!("{base}/Contacts")),
        ("DELETE", format!("{base}/Contacts/100")),
        ("PATCH", format!("{base}/Companies/1")),
    ] {
        let r = c.request(m.parse().unwrap(), &url).json(&json!({"id": 100, "companyID": 1, "firstName": "X", "lastName": "Y", "isActive": 1})).send().await.unwrap();
        assert_eq!(r.status(), 405, "{m} {url}");
        assert!(r.json::<Value>().await.unwrap()["errors"].is_array());
    }
    assert!(sim.autotask().get("contacts", 100).is_some());
    let r = c
        .delete(format!("{base}/Companies/2/Contacts/100"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "contact 100 belongs to company 1");
    let r = c
        .delete(format!("{base}/Companies/1/Contacts/100"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(sim.autotask().get("contacts", 100).is_none());
    let info: Value = common::get_json(&c, format!("{base}/Companies/entityInformation")).await;
    assert_eq!(info["info"]["canDelete"], false);
}
