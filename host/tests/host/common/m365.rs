//! The Microsoft 365 side of the flow-2 scenarios (M365 users → PSA
//! contacts), shared by the Autotask and ConnectWise rule suites: the
//! tenant, its users and licences, the Graph connection, the profile and a
//! clean run. Each suite adds its PSA.

use serde_json::{json, Value};
use std::sync::Arc;
use syncbridge::engine::profiles::{self, Profile};
use syncbridge::engine::rules::OnRemove;
use syncbridge::engine::{FieldRules, RunReport};
use syncbridge::hub::Hub;
use syncbridge_sim::Simulator;

pub const TENANT: &str = "contoso.onmicrosoft.com";
pub const TENANT_ID: &str = "11111111-1111-4111-8111-111111111111";
pub const CLIENT: &str = "22222222-2222-4222-8222-222222222222";
/// Office 365 E3 (`ENTERPRISEPACK`).
pub const E3: &str = "6fd2c87f-b296-42f0-b197-1e91e994b900";
/// Exchange Online (Plan 1) (`EXCHANGESTANDARD`).
pub const EXO: &str = "4b9405b0-7788-4568-add1-99614e613b69";
/// Microsoft 365 Business Premium (`SPB`).
pub const SPB: &str = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46";
pub const PROFILE: &str = "contoso-contacts";

pub fn upn(local: &str) -> String {
    format!("{local}@{TENANT}")
}

pub fn licence(sku: &str) -> Value {
    json!({"skuId": sku, "disabledPlans": []})
}

/// `base` with the keys of `extra` set over it.
pub fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(o), Some(x)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in x {
            o.insert(k.clone(), v.clone());
        }
    }
    base
}

/// An enabled user with an E3 licence, a name, a title and phones; `extra` overrides.
pub fn user(id: &str, local: &str, extra: Value) -> Value {
    merge(
        json!({
            "id": id,
            "userPrincipalName": upn(local),
            "givenName": format!("Given-{local}"),
            "surname": format!("Sur-{local}"),
            "jobTitle": "Engineer",
            "businessPhones": ["+1 555 0100"],
            "mobilePhone": "+1 555 0199",
            "department": "Sales",
            "accountEnabled": true,
            "assignedLicenses": [licence(E3)],
        }),
        extra,
    )
}

/// What one test sets up.
pub struct Scenario {
    pub users: Vec<Value>,
    pub groups: Vec<Value>,
    pub contacts: Vec<Value>,
    pub options: Value,
    pub rules: FieldRules,
    pub with_groups: bool,
    pub page_size: u32,
    /// The PSA connection's request limit (`None`: the plugin's); the Autotask suite sets it.
    pub psa_max_concurrent: Option<u32>,
}

impl Scenario {
    pub fn new(users: Vec<Value>, options: Value) -> Self {
        Scenario {
            users,
            groups: Vec::new(),
            contacts: Vec::new(),
            options,
            rules: rules_for(true),
            with_groups: false,
            page_size: 3,
            psa_max_concurrent: None,
        }
    }
}

/// The profile rules the mapper's README pairs with `update_existing`.
pub fn rules_for(update_existing: bool) -> FieldRules {
    let mut r = FieldRules {
        update_matched: update_existing,
        reactivate: update_existing,
        remove_matched: true,
        on_remove: if update_existing {
            OnRemove::Deactivate
        } else {
            OnRemove::Ignore
        },
        blank_never_overwrites: true,
        rewrite_on_change: true,
        ..FieldRules::default()
    };
    // Small tenants: a couple of removals is a large share; the brakes are tested elsewhere.
    r.brakes.max_removal_share = 1.0;
    r
}

/// The simulator seed of the tenant: its app, licences, users and groups.
pub fn graph_seed(s: &Scenario) -> Value {
    json!({"tenants": [{
        "id": TENANT_ID, "domain": TENANT,
        "apps": [{"client_id": CLIENT, "client_secret": "s3cret"}],
        "subscribedSkus": [
            {"skuId": E3, "skuPartNumber": "ENTERPRISEPACK"},
            {"skuId": EXO, "skuPartNumber": "EXCHANGESTANDARD"},
            {"skuId": SPB, "skuPartNumber": "SPB"}
        ],
        "users": s.users,
        "groups": s.groups
    }]})
}

/// The `m365` Graph connection to the simulated tenant.
pub async fn graph_connection(hub: &Hub, sim: &Simulator, with_groups: bool) {
    let cred = json!({"kind": "oauth2-client-credentials", "token_url": sim.token_url(TENANT), "client_id": CLIENT,
                      "client_secret": "s3cret", "scope": "https://graph.microsoft.com/.default"});
    super::loopback_connection(
        hub,
        "m365",
        "graph",
        &json!({"graph_url": sim.graph_url(), "tenant": TENANT, "with_groups": with_groups})
            .to_string(),
        &[("default", &cred.to_string())],
    )
    .await;
}

/// Saves the profile: `m365` users → the mapper → contacts of `company` in `psa`.
pub async fn save_profile(
    hub: &Hub,
    company: i64,
    options: Value,
    rules: FieldRules,
    page_size: u32,
) {
    profiles::save(
        hub.store(),
        &Profile {
            id: PROFILE.into(),
            source_connection: "m365".into(),
            source_scope: "users".into(),
            mapper_plugin: "m365-psa-contacts".into(),
            mapper_options: options.to_string(),
            target_connection: "psa".into(),
            target_scope: format!("contacts:company={company}"),
            rules,
            page_size,
        },
    )
    .await
    .unwrap();
}

/// One run of the profile on the production path; asserts it completed,
/// failed nothing and was not held.
pub async fn run_clean(hub: &Arc<Hub>) -> RunReport {
    let report = super::run_profile(hub, PROFILE, false).await.unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    assert!(report.held.is_none(), "{report:?}");
    report
}
