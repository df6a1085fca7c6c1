//! Flow 2 (Microsoft 365 users → Autotask contacts): group membership changes move contacts
//! between sites. `users/delta` does not report them, so the `graph` connector reads
//! `groups/delta` too; everything here runs through the real plugins and simulators.

use crate::common;
use crate::common::m365::{self, upn, user, Scenario, TENANT};
use serde_json::{json, Value};
use syncbridge::hub::NewConnection;
use syncbridge::secrets::Credential;
use syncbridge_sim::{Seed, Services, SimConfig, Simulator};

const COMPANY: i64 = 1;
const CREATES: &str = "POST /ATServicesRest/V1.0/Companies/{id}/Contacts";
const UPDATES: &str = "PATCH /ATServicesRest/V1.0/Companies/{id}/Contacts";
/// The site of the group filter (Management) and of the catch-all.
const GROUP_SITE: i64 = 21;
const CATCH_ALL: i64 = 26;

struct Env {
    sim: Simulator,
    t: common::TestHub,
}

impl Env {
    /// Management (`g-mgmt`) routes to site 21, every other licensed user to site 26.
    /// `g-exec` is a member of Management.
    async fn start(users: Vec<Value>, groups: Vec<Value>) -> Env {
        let filters = json!([
            {"priority": 1, "kind": "group", "group_id": "g-mgmt", "group_name": "Management", "site": {"id": GROUP_SITE.to_string()}},
            {"priority": 2, "kind": "all-licensed", "site": {"id": CATCH_ALL.to_string()}}
        ]);
        let mut s = Scenario::new(users, json!({"target": "autotask", "filters": filters}));
        s.groups = groups;
        s.with_groups = true;
        let sites: Vec<Value> = [GROUP_SITE, CATCH_ALL]
            .iter()
            .map(|id| json!({"id": id, "companyID": COMPANY, "name": format!("Site {id}")}))
            .collect();
        let doc = json!({
            "graph": m365::graph_seed(&s),
            "autotask": {
                "apiUsers": [{"userName": "api@msp.example", "secret": "at-secret", "integrationCode": "TRACKING"}],
                "entities": {
                    "Companies": [{"id": COMPANY, "companyName": "Contoso"}],
                    "CompanyLocations": sites,
                    "Contacts": []
                }
            }
        });
        let sim = Simulator::start(SimConfig {
            services: Services {
                graph: true,
                autotask: true,
                ..Services::NONE
            },
            seed: Some(Seed::from_json(&doc.to_string()).unwrap()),
            ..SimConfig::all()
        })
        .await
        .unwrap();
        let t = common::hub().await;
        for p in ["graph", "m365-psa-contacts", "autotask"] {
            common::install(&t.hub, p).await;
        }
        m365::graph_connection(&t.hub, &sim, true).await;
        let at_cred = json!({"kind": "headers", "headers": {"ApiIntegrationCode": "TRACKING", "UserName": "api@msp.example", "Secret": "at-secret"}});
        let at_config = json!({"api_user": "api@msp.example", "zone_lookup_url": format!("{}/atservicesrest", sim.base_url())});
        t.hub
            .add_connection(NewConnection {
                id: "psa".into(),
                plugin_id: "autotask".into(),
                config: at_config.to_string(),
                allowed_hosts: vec!["127.0.0.1".into(), "localhost".into()],
                allow_private_network: true,
                max_concurrent: None,
                credentials: [(
                    "default".to_string(),
                    Credential::from_json(&at_cred.to_string()).unwrap(),
                )]
                .into(),
            })
            .await
            .expect("connection is added");
        m365::save_profile(&t.hub, COMPANY, s.options, s.rules, s.page_size).await;
        Env { sim, t }
    }

    /// One normal run (completed, nothing failed); the request counters start afresh.
    async fn run(&self) -> syncbridge::engine::RunReport {
        self.sim.reset_requests();
        m365::run_clean(&self.t.hub).await
    }

    /// The site of the one contact of `local`'s user.
    fn site(&self, local: &str) -> i64 {
        let email = upn(local);
        let found: Vec<Value> = self
            .sim
            .autotask()
            .rows("Contacts")
            .into_iter()
            .filter(|c| {
                c["emailAddress"]
                    .as_str()
                    .is_some_and(|e| e.eq_ignore_ascii_case(&email))
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "exactly one contact with {email}: {found:#?}"
        );
        found[0]["companyLocationID"]
            .as_i64()
            .unwrap_or_else(|| panic!("{email} has a site: {:#?}", found[0]))
    }

    /// Creates and updates Autotask received since the last run started.
    fn writes(&self) -> (u64, u64) {
        let r = self.sim.requests();
        (r.count_matching(CREATES), r.count_matching(UPDATES))
    }

    fn count(&self) -> usize {
        self.sim.autotask().rows("Contacts").len()
    }
}

fn groups() -> Vec<Value> {
    vec![
        json!({"id": "g-mgmt", "displayName": "Management", "members": ["u-leave", "g-exec"]}),
        json!({"id": "g-exec", "displayName": "Executives", "members": []}),
        json!({"id": "g-team", "displayName": "Team", "members": ["u-team"]}),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_added_to_the_filter_group_moves_to_its_site_on_the_next_run() {
    let env = Env::start(
        vec![
            user("u-join", "join", json!({})),
            user("u-other", "other", json!({})),
        ],
        groups(),
    )
    .await;
    let first = env.run().await;
    assert_eq!(first.planned.create, 2, "{first:?}");
    assert_eq!(env.site("join"), CATCH_ALL, "not in Management yet");
    // Nothing about the user changes but the membership.
    assert!(env.sim.graph().add_member(TENANT, "g-mgmt", "u-join"));
    let moved = env.run().await;
    assert_eq!(
        env.site("join"),
        GROUP_SITE,
        "the new member of Management moved to its site: {moved:?}"
    );
    assert_eq!(env.writes(), (0, 1), "one update, nothing else: {moved:?}");
    assert_eq!(env.site("other"), CATCH_ALL);
    // And the run after has nothing to do.
    let again = env.run().await;
    assert_eq!(env.writes(), (0, 0), "{again:?}");
    assert_eq!(env.site("join"), GROUP_SITE);
    assert_eq!(env.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_removed_from_the_filter_group_moves_back_to_the_catch_all() {
    let env = Env::start(
        vec![
            user("u-leave", "leave", json!({})),
            user("u-other", "other", json!({})),
        ],
        groups(),
    )
    .await;
    env.run().await;
    assert_eq!(env.site("leave"), GROUP_SITE);
    assert!(env.sim.graph().remove_member(TENANT, "g-mgmt", "u-leave"));
    let moved = env.run().await;
    assert_eq!(env.site("leave"), CATCH_ALL, "{moved:?}");
    assert_eq!(env.writes(), (0, 1), "{moved:?}");
    let again = env.run().await;
    assert_eq!(env.writes(), (0, 0), "{again:?}");
    assert_eq!(env.site("leave"), CATCH_ALL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_through_nested_groups_moves_users_both_ways() {
    let env = Env::start(
        vec![
            user("u-exec", "exec", json!({})),
            user("u-team", "team", json!({})),
        ],
        groups(),
    )
    .await;
    env.run().await;
    assert_eq!(env.site("exec"), CATCH_ALL);
    assert_eq!(env.site("team"), CATCH_ALL);
    // Joins Executives, which is a member of Management; and the whole Team group joins
    // Management (only the group appears in Management's members@delta).
    let g = env.sim.graph();
    assert!(g.add_member(TENANT, "g-exec", "u-exec"));
    assert!(g.add_member(TENANT, "g-mgmt", "g-team"));
    let moved = env.run().await;
    assert_eq!(env.site("exec"), GROUP_SITE, "{moved:?}");
    assert_eq!(env.site("team"), GROUP_SITE, "{moved:?}");
    assert_eq!(env.writes(), (0, 2), "{moved:?}");
    let again = env.run().await;
    assert_eq!(env.writes(), (0, 0), "{again:?}");
    // Team leaves Management again: its members move back.
    assert!(env.sim.graph().remove_member(TENANT, "g-mgmt", "g-team"));
    let back = env.run().await;
    assert_eq!(env.site("team"), CATCH_ALL, "{back:?}");
    assert_eq!(env.site("exec"), GROUP_SITE);
    assert_eq!(env.writes(), (0, 1), "{back:?}");
}
