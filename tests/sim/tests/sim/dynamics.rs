//! Dynamics 365 (Dataverse Web API) simulator.

use crate::common;

use std::time::Duration;

use serde_json::{json, Value};
use syncbridge_sim::{Scenarios, Seed};

const TOKEN: &str = "dyn-token";
const PROFILE: &str = "0b6a3a8e-8f0e-4c9a-9a43-3c6f0e4b2a11";

fn seed() -> Seed {
    serde_json::from_value(json!({
        "dynamics": {
            "tokens": [TOKEN],
            "testDelayMs": 100,
            "rows": {
                "emailserverprofiles": [{"emailserverprofileid": PROFILE, "name": "Exchange Online", "servertype": 3, "incomingcredentialretrieval": 2}],
                "mailboxes": (0..7).map(|i| json!({"name": format!("User {i}"), "emailaddress": format!("user{i}@contoso.com"),
                    "emailserverprofile@odata.bind": format!("/emailserverprofiles({PROFILE})"), "emailrouteraccessapproval": if i == 6 {2} else {1}})).collect::<Vec<_>>(),
                "contacts": [{"firstname": "Pavel", "lastname": "Bansky", "emailaddress1": "pavel@fabrikam.com"}]
            }
        },
        "ews": {"accounts": (0..7).map(|i| json!({"email": format!("user{i}@contoso.com"), "password": "x"})).collect::<Vec<_>>()}
    }))
    .unwrap()
}

fn client() -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("Authorization", format!("Bearer {TOKEN}").parse().unwrap());
    h.insert("OData-Version", "4.0".parse().unwrap());
    reqwest::Client::builder()
        .default_headers(h)
        .build()
        .unwrap()
}

#[tokio::test]
async fn odata_shapes_filter_select_and_paging() {
    let sim = common::start(seed()).await;
    let c = client();
    let base = sim.dynamics_url();
    assert_eq!(
        reqwest::get(format!("{base}/mailboxes"))
            .await
            .unwrap()
            .status(),
        401
    );
    let r = c.get(format!("{base}/mailboxes?$select=name,emailaddress,incomingemailstatus&$filter=_emailserverprofile_value eq {PROFILE} and emailrouteraccessapproval eq 1")).header("Prefer", "odata.maxpagesize=4").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["preference-applied"], "odata.maxpagesize=4");
    let v: Value = r.json().await.unwrap();
    assert!(v["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("$metadata#mailboxes(name,emailaddress,incomingemailstatus)"));
    let first = &v["value"][0];
    assert!(first["@odata.etag"].as_str().unwrap().starts_with("W/\""));
    assert!(
        first["mailboxid"].is_string(),
        "primary key is always returned"
    );
    assert!(first.get("actstatus").is_none());
    assert_eq!(v["value"].as_array().unwrap().len(), 4);
    let next = v["@odata.nextLink"].as_str().unwrap();
    let v2: Value = common::json_of(c.get(next).header("Prefer", "odata.maxpagesize=4")).await;
    assert_eq!(v2["value"].as_array().unwrap().len(), 2);
    assert!(v2.get("@odata.nextLink").is_none());
    // lookups as _x_value, formatted values on request
    let v: Value = common::json_of(
        c.get(format!("{base}/mailboxes?$top=1"))
            .header("Prefer", "odata.include-annotations=\"*\""),
    )
    .await;
    assert_eq!(v["value"][0]["_emailserverprofile_value"], PROFILE);
    assert_eq!(
        v["value"][0]["incomingemaildeliverymethod@OData.Community.Display.V1.FormattedValue"],
        "Server-Side Synchronization"
    );
    // errors in Dataverse form
    let r = c
        .get(format!("{base}/mailboxes?$select=nosuch"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"]["code"].as_str().unwrap().starts_with("0x"));
    let r = c
        .get(format!(
            "{base}/mailboxes(00000000-0000-0000-0000-000000000000)"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = common::patch_json(
        &c,
        format!(
            "{base}/mailboxes({})",
            sim.dynamics().rows("mailboxes")[0]["mailboxid"]
                .as_str()
                .unwrap()
        ),
        &json!({"incomingemailstatus": 9}),
    )
    .await;
    assert_eq!(r.status(), 400, "option-set values are validated");
    // there is no TestAndEnableMailbox action
    let r = common::post_json(&c, format!("{base}/TestAndEnableMailbox"), &json!({})).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn create_with_bind_etag_and_get() {
    let sim = common::start(seed()).await;
    let c = client();
    let base = sim.dynamics_url();
    let r = common::post_json(&c, format!("{base}/mailboxes"), &json!({"name": "New", "emailaddress": "new@contoso.com", "emailserverprofile@odata.bind": format!("/emailserverprofiles({PROFILE})")})).await;
    assert_eq!(r.status(), 204);
    let loc = r.headers()["odata-entityid"].to_str().unwrap().to_string();
    let v: Value = common::get_json(&c, &loc).await;
    assert_eq!(v["_emailserverprofile_value"], PROFILE);
    assert!(v["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("$metadata#mailboxes/$entity"));
    let etag = v["@odata.etag"].as_str().unwrap().to_string();
    assert_eq!(
        c.patch(&loc)
            .header("If-Match", &etag)
            .json(&json!({"name": "Renamed"}))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        c.patch(&loc)
            .header("If-Match", &etag)
            .json(&json!({"name": "Again"}))
            .send()
            .await
            .unwrap()
            .status(),
        412
    );
    let r = common::post_json(&c, format!("{base}/mailboxes"), &json!({"name": "x", "emailserverprofile@odata.bind": "/emailserverprofiles(11111111-1111-1111-1111-111111111111)"})).await;
    assert_eq!(r.status(), 400);
    let r = c
        .post(format!("{base}/contacts"))
        .header("Prefer", "return=representation")
        .json(&json!({"firstname": "Ann", "lastname": "Lee"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["fullname"], "Ann Lee");
    let p: Value = common::get_json(&c, format!("{base}/emailserverprofiles({PROFILE})")).await;
    assert_eq!(p["maxconcurrentconnections"], 10);
}

async fn wait_tested(sim: &syncbridge_sim::Simulator, id: &str) -> Value {
    for _ in 0..50 {
        let row = sim.dynamics().get("mailboxes", id).unwrap();
        if row["testemailconfigurationscheduled"] == json!(false)
            && !row["testmailboxaccesscompletedon"].is_null()
        {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("mailbox test did not complete");
}

#[tokio::test]
async fn test_and_enable_is_a_patch_and_a_background_job() {
    let sim = common::start(seed()).await;
    let c = client();
    let base = sim.dynamics_url();
    let rows = sim.dynamics().rows("mailboxes");
    let approved = rows[0]["mailboxid"].as_str().unwrap().to_string();
    let pending = rows[6]["mailboxid"].as_str().unwrap().to_string();
    for id in [&approved, &pending] {
        let r = common::patch_json(
            &c,
            format!("{base}/mailboxes({id})"),
            &json!({"testemailconfigurationscheduled": true}),
        )
        .await;
        assert_eq!(r.status(), 204);
    }
    // not done immediately
    let now = sim.dynamics().get("mailboxes", &approved).unwrap();
    assert_eq!(now["testemailconfigurationscheduled"], true);
    assert_eq!(now["incomingemailstatus"], 0);
    let ok = wait_tested(&sim, &approved).await;
    assert_eq!(
        (
            ok["incomingemailstatus"].clone(),
            ok["outgoingemailstatus"].clone(),
            ok["actstatus"].clone()
        ),
        (json!(1), json!(1), json!(1))
    );
    let failed = wait_tested(&sim, &pending).await;
    assert_eq!(failed["incomingemailstatus"], 2);
    assert!(failed["lastsyncerror"]
        .as_str()
        .unwrap()
        .contains("approved"));

    sim.set_scenarios(Scenarios {
        wrong_password: true,
        ..Default::default()
    });
    let id = rows[1]["mailboxid"].as_str().unwrap();
    common::patch_json(
        &c,
        format!("{base}/mailboxes({id})"),
        &json!({"testemailconfigurationscheduled": true}),
    )
    .await;
    let r = wait_tested(&sim, id).await;
    assert_eq!(r["outgoingemailstatus"], 2);
    assert!(r["lastsyncerror"].as_str().unwrap().contains("401"));
}

#[tokio::test]
async fn entra_tokens_are_accepted() {
    let mut seed = seed();
    seed.graph = common::graph_seed().graph;
    let sim = common::start(seed).await;
    let c = reqwest::Client::new();
    let (_, r) = common::request_token(
        &sim,
        &c,
        common::TENANT,
        common::CLIENT_ID,
        common::SECRET,
        "https://org.crm.dynamics.com/.default",
    )
    .await;
    let tok = r["access_token"].as_str().unwrap();
    let v: Value = common::json_of(
        c.get(format!("{}/WhoAmI", sim.dynamics_url()))
            .bearer_auth(tok),
    )
    .await;
    assert!(v["UserId"].is_string());
}

#[tokio::test]
async fn metadata_odata_version_and_secret_columns() {
    let sim = common::start(seed()).await;
    let c = client();
    let base = sim.dynamics_url();
    // $metadata: a CSDL document with every served entity set, its key and its columns
    let r = c.get(format!("{base}/$metadata")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["odata-version"], "4.0");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/xml"));
    let xml = r.text().await.unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut sets, mut types, mut keys, mut props) = (vec![], vec![], vec![], vec![]);
    let mut current = String::new();
    loop {
        match reader.read_event().expect("well-formed CSDL") {
            quick_xml::events::Event::Eof => break,
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                let attr = |n: &str| {
                    e.try_get_attribute(n)
                        .unwrap()
                        .map(|a| a.unescape_value().unwrap().to_string())
                };
                match e.local_name().as_ref() {
                    b"Edmx" => assert_eq!(attr("Version").as_deref(), Some("4.0")),
                    b"EntitySet" => sets.push((attr("Name").unwrap(), attr("EntityType").unwrap())),
                    b"EntityType" => {
                        current = attr("Name").unwrap();
                        types.push(current.clone());
                    }
                    b"PropertyRef" => keys.push((current.clone(), attr("Name").unwrap())),
                    b"Property" => props.push((
                        current.clone(),
                        attr("Name").unwrap(),
                        attr("Type").unwrap(),
                    )),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    for (set, ty) in [
        ("mailboxes", "mailbox"),
        ("emailserverprofiles", "emailserverprofile"),
        ("contacts", "contact"),
        ("systemusers", "systemuser"),
    ] {
        assert!(
            sets.contains(&(set.to_string(), format!("Microsoft.Dynamics.CRM.{ty}"))),
            "{set} in {sets:?}"
        );
        assert!(types.contains(&ty.to_string()));
        assert!(
            keys.contains(&(ty.to_string(), format!("{ty}id"))),
            "{ty} key"
        );
    }
    let ty_of = |t: &str, p: &str| {
        props
            .iter()
            .find(|(a, b, _)| a == t && b == p)
            .map(|x| x.2.clone())
    };
    for (p, ty) in [
        ("mailboxid", "Edm.Guid"),
        ("incomingemailstatus", "Edm.Int32"),
        ("enabledforincomingemail", "Edm.Boolean"),
        ("modifiedon", "Edm.DateTimeOffset"),
        ("_emailserverprofile_value", "Edm.Guid"),
        ("emailaddress", "Edm.String"),
        ("versionnumber", "Edm.Int64"),
    ] {
        assert_eq!(ty_of("mailbox", p).as_deref(), Some(ty), "mailbox.{p}");
    }
    // OData-Version on answers, errors included
    let r = c.get(format!("{base}/mailboxes")).send().await.unwrap();
    assert_eq!(r.headers()["odata-version"], "4.0");
    let r = c.get(format!("{base}/nosuchset")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["odata-version"], "4.0");
    sim.add_fault(syncbridge_sim::FaultRule::sequence("/api/data/*", &[429]))
        .unwrap();
    let r = c.get(format!("{base}/mailboxes")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["odata-version"], "4.0");
    // secret columns are write-only: accepted, stored, never in an answer (not even as null)
    let r = common::patch_json(
        &c,
        format!("{base}/emailserverprofiles({PROFILE})"),
        &json!({"incomingpassword": "s3cret", "outgoingpassword": "s3cret"}),
    )
    .await;
    assert_eq!(r.status(), 204);
    let p: Value = common::get_json(&c, format!("{base}/emailserverprofiles({PROFILE})")).await;
    assert_eq!(p["name"], "Exchange Online");
    for k in ["incomingpassword", "outgoingpassword"] {
        assert!(p.get(k).is_none(), "{k} answered: {p}");
    }
    let v: Value = common::get_json(&c, format!("{base}/mailboxes")).await;
    assert!(v["value"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m.get("password").is_none() && m.get("emailaddress").is_some()));
    let stored = sim.dynamics().get("emailserverprofiles", PROFILE).unwrap();
    assert_eq!(stored["incomingpassword"], "s3cret");
}
