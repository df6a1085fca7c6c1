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

/// Seed of the calendar entities: the company 0 of the Autotask instance's owner, a resource,
/// an appointment, a to-do, an opportunity and a service call with a ticket and a task.
fn calendar_seed() -> Seed {
    serde_json::from_value(json!({"autotask": {
        "apiUsers": [{"userName": USER, "secret": SECRET, "integrationCode": CODE}],
        "entities": {
            "Companies": [{"id": 0, "companyName": "MSP"}, {"id": 1, "companyName": "Contoso", "ownerResourceID": 30}],
            "Resources": [{"id": 30, "firstName": "Ann", "lastName": "Tech", "email": "ann@msp.example", "userName": "ann", "isActive": true}],
            "Appointments": [{"id": 500, "resourceID": 30, "title": "Lunch", "startDateTime": "2026-03-02T12:00:00Z", "endDateTime": "2026-03-02T13:00:00Z"}],
            "ToDos": [{"id": 600, "companyID": 1, "assignedToResourceID": 30, "actionType": 1, "activityDescription": "Call back",
                       "startDateTime": "2026-03-03T09:00:00Z", "endDateTime": "2026-03-03T09:30:00Z"}],
            "Opportunities": [{"id": 700, "companyID": 1, "contactID": 100, "ownerResourceID": 30, "title": "Renewal"}],
            "ServiceCalls": [{"id": 800, "companyID": 1, "startDateTime": "2026-03-04T10:00:00Z", "endDateTime": "2026-03-04T11:00:00Z"}],
            "ServiceCallTickets": [{"id": 810, "serviceCallID": 800, "ticketID": 77}],
            "ServiceCallTicketResources": [{"id": 811, "serviceCallTicketID": 810, "resourceID": 30}],
            "ServiceCallTasks": [{"id": 820, "serviceCallID": 800, "taskID": 88}],
            "ServiceCallTaskResources": [{"id": 821, "serviceCallTaskID": 820, "resourceID": 30}]
        }
    }}))
    .unwrap()
}

async fn query(c: &reqwest::Client, url: String, filter: Value) -> Vec<Value> {
    let v: Value = common::json_of(c.post(url).json(&json!({ "filter": filter }))).await;
    v["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn calendar_entities_are_seeded_and_queried_by_their_swagger_names() {
    let sim = common::start(calendar_seed()).await;
    let c = client();
    let base = sim.autotask_url();
    let by_resource = json!([{"op": "eq", "field": "resourceID", "value": 30}]);
    let appts = query(
        &c,
        format!("{base}/Appointments/query"),
        by_resource.clone(),
    )
    .await;
    assert_eq!(appts.len(), 1);
    for f in [
        "title",
        "description",
        "startDateTime",
        "endDateTime",
        "createDateTime",
        "creatorResourceID",
        "updateDateTime",
    ] {
        assert!(
            appts[0].get(f).is_some(),
            "Appointments has {f}: {}",
            appts[0]
        );
    }
    assert!(
        appts[0]["updateDateTime"].is_string(),
        "seeding stamps updateDateTime"
    );
    // To-dos are the CompanyToDos entity; there is no top-level ToDos entity.
    let todos = query(
        &c,
        format!("{base}/CompanyToDos/query"),
        json!([{"op": "eq", "field": "assignedToResourceID", "value": 30}]),
    )
    .await;
    assert_eq!(todos.len(), 1);
    assert!(todos[0]["lastModifiedDate"].is_string());
    let (status, _) = common::status_json(
        c.post(format!("{base}/ToDos/query"))
            .json(&json!({"filter": by_resource})),
    )
    .await;
    assert_eq!(status, 404);
    let opps = query(
        &c,
        format!("{base}/Opportunities/query"),
        json!([{"op": "eq", "field": "ownerResourceID", "value": 30}]),
    )
    .await;
    assert_eq!((opps.len(), &opps[0]["contactID"]), (1, &json!(100)));
    assert!(opps[0]["lastActivity"].is_string());
    let owned = query(
        &c,
        format!("{base}/Companies/query"),
        json!([{"op": "eq", "field": "ownerResourceID", "value": 30}]),
    )
    .await;
    assert_eq!(owned.len(), 1);
    // The instance owner's company keeps id 0.
    assert!(sim.autotask().get("companies", 0).is_some());
    let task_resources = query(
        &c,
        format!("{base}/ServiceCallTaskResources/query"),
        json!([{"op": "eq", "field": "resourceID", "value": 30}]),
    )
    .await;
    assert_eq!(task_resources[0]["serviceCallTaskID"], 820);
    let calls = query(
        &c,
        format!("{base}/ServiceCalls/query"),
        json!([{"op": "in", "field": "id", "value": [800]}]),
    )
    .await;
    assert!(calls[0]["lastModifiedDateTime"].is_string());
}

#[tokio::test]
async fn writes_move_the_modification_dates_so_change_queries_find_them() {
    let sim = common::start(calendar_seed()).await;
    let c = client();
    let base = sim.autotask_url();
    let before = sim.autotask().get("appointments", 500).unwrap()["updateDateTime"].clone();
    let todo_before = sim.autotask().get("todos", 600).unwrap()["lastModifiedDate"].clone();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let r = common::patch_json(
        &c,
        format!("{base}/Appointments"),
        &json!({"id": 500, "title": "Long lunch"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = common::patch_json(
        &c,
        format!("{base}/Companies/1/ToDos"),
        &json!({"id": 600, "completedDate": "2026-03-03T10:00:00Z"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let appt = sim.autotask().get("appointments", 500).unwrap();
    assert_eq!(appt["title"], "Long lunch");
    assert!(appt["updateDateTime"].as_str() > before.as_str(), "{appt}");
    let since = before.as_str().unwrap();
    let changed = query(
        &c,
        format!("{base}/Appointments/query"),
        json!([{"op": "gt", "field": "updateDateTime", "value": since}]),
    )
    .await;
    assert_eq!(changed.len(), 1);
    let todos = query(
        &c,
        format!("{base}/CompanyToDos/query"),
        json!([{"op": "gt", "field": "lastModifiedDate", "value": todo_before}]),
    )
    .await;
    assert_eq!(todos[0]["completedDate"], "2026-03-03T10:00:00Z");
    // A person's edit in Autotask moves the dates too.
    let opp_before = sim.autotask().get("opportunities", 700).unwrap()["lastActivity"].clone();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(sim
        .autotask()
        .edit("opportunities", 700, json!({"title": "Upsell"})));
    assert!(
        sim.autotask().get("opportunities", 700).unwrap()["lastActivity"].as_str()
            > opp_before.as_str()
    );
}

#[tokio::test]
async fn appointments_and_to_dos_are_created_and_deleted_where_the_api_allows() {
    let sim = common::start(calendar_seed()).await;
    let c = client();
    let base = sim.autotask_url();
    let r: Value = common::json_of(c.post(format!("{base}/Appointments")).json(&json!({
        "resourceID": 30, "title": "Dentist", "startDateTime": "2026-03-05T08:00:00Z", "endDateTime": "2026-03-05T09:00:00Z"}))).await;
    let id = r["itemId"].as_i64().expect("itemId");
    assert_eq!(
        sim.autotask().get("appointments", id).unwrap()["title"],
        "Dentist"
    );
    // Required fields are enforced.
    let (status, v) = common::status_json(
        c.post(format!("{base}/Appointments"))
            .json(&json!({"title": "No times", "resourceID": 30})),
    )
    .await;
    assert_eq!(status, 500);
    assert!(
        v["errors"][0].as_str().unwrap().contains("startDateTime"),
        "{v}"
    );
    let (status, _) = common::status_json(c.delete(format!("{base}/Appointments/{id}"))).await;
    assert_eq!(status, 200);
    assert!(sim.autotask().get("appointments", id).is_none());
    // To-dos: created and deleted under their company only.
    let r: Value = common::json_of(c.post(format!("{base}/Companies/0/ToDos")).json(&json!({
        "assignedToResourceID": 30, "actionType": 1, "activityDescription": "Order parts",
        "startDateTime": "2026-03-06T08:00:00Z", "endDateTime": "2026-03-06T08:30:00Z"})))
    .await;
    let todo = r["itemId"].as_i64().expect("itemId");
    assert_eq!(sim.autotask().get("todos", todo).unwrap()["companyID"], 0);
    let (status, _) = common::status_json(
        c.post(format!("{base}/Companies/0/ToDos"))
            .json(&json!({"activityDescription": "x"})),
    )
    .await;
    assert_eq!(
        status, 500,
        "a to-do without its required fields is refused"
    );
    let (status, _) = common::status_json(c.delete(format!("{base}/CompanyToDos/{todo}"))).await;
    assert_eq!(status, 405);
    let (status, _) =
        common::status_json(c.delete(format!("{base}/Companies/0/ToDos/{todo}"))).await;
    assert_eq!(status, 200);
    assert!(sim.autotask().get("todos", todo).is_none());
    // Opportunities have no DELETE; resources are never created over the API.
    let (status, _) = common::status_json(c.delete(format!("{base}/Opportunities/700"))).await;
    assert_eq!(status, 405);
    let (status, _) = common::status_json(
        c.post(format!("{base}/Resources"))
            .json(&json!({"firstName": "X"})),
    )
    .await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn date_filters_compare_instants_not_strings() {
    let sim = common::start(calendar_seed()).await;
    let c = client();
    let base = sim.autotask_url();
    // As strings "…12:00:00Z" > "…12:00:00.000Z"; as instants they are equal.
    let at = |op: &str| json!([{"op": op, "field": "startDateTime", "value": "2026-03-02T12:00:00.000Z"}]);
    assert_eq!(
        query(&c, format!("{base}/Appointments/query"), at("eq"))
            .await
            .len(),
        1
    );
    assert_eq!(
        query(&c, format!("{base}/Appointments/query"), at("gt"))
            .await
            .len(),
        0
    );
    let later =
        json!([{"op": "lt", "field": "startDateTime", "value": "2026-03-02T13:00:00+01:00"}]);
    assert_eq!(
        query(&c, format!("{base}/Appointments/query"), later)
            .await
            .len(),
        0,
        "13:00+01:00 is 12:00Z"
    );
}
