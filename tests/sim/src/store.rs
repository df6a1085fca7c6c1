//! The shared in-memory store behind all simulators.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::Duration;

use crate::autotask::AutotaskState;
use crate::config::Services;
use crate::connectwise::CwState;
use crate::dynamics::DynamicsState;
use crate::ews::EwsState;
use crate::faults::Faults;
use crate::graph::GraphState;
use crate::scenarios::Scenarios;
use crate::stats::Counters;
use crate::util::lock;

/// Everything a simulator instance knows. Cloned as `Arc<Store>` into every handler.
pub struct Store {
    /// Graph tenants, users, groups, mailboxes, tokens.
    pub graph: Mutex<GraphState>,
    /// Autotask entities and credentials.
    pub autotask: Mutex<AutotaskState>,
    /// ConnectWise entities and credentials.
    pub connectwise: Mutex<CwState>,
    /// EWS accounts and mailboxes.
    pub ews: Mutex<EwsState>,
    /// Dataverse tables.
    pub dynamics: Mutex<DynamicsState>,
    /// Active fault rules.
    pub faults: Faults,
    /// Request counters.
    pub counters: Counters,
    /// Failure scenarios.
    pub scenarios: RwLock<Scenarios>,
    /// Latency added to every simulated request.
    pub latency: RwLock<Option<Duration>>,
    /// In-flight requests per Graph mailbox (limit 4, like Exchange Online).
    pub inflight: Mutex<HashMap<String, usize>>,
    /// Concurrent requests allowed per mailbox before a 429.
    pub mailbox_concurrency_limit: RwLock<usize>,
    /// `http(s)://127.0.0.1:port`, set once the socket is bound.
    pub base_url: OnceLock<String>,
    /// Mounted services.
    pub services: Services,
}

impl Store {
    /// An empty store.
    pub fn new(services: Services, rng_seed: u64) -> Self {
        Store {
            graph: Mutex::new(GraphState::default()),
            autotask: Mutex::new(AutotaskState::default()),
            connectwise: Mutex::new(CwState::default()),
            ews: Mutex::new(EwsState::default()),
            dynamics: Mutex::new(DynamicsState::default()),
            faults: Faults::new(rng_seed),
            counters: Counters::default(),
            scenarios: RwLock::new(Scenarios::default()),
            latency: RwLock::new(None),
            inflight: Mutex::new(HashMap::new()),
            mailbox_concurrency_limit: RwLock::new(4),
            base_url: OnceLock::new(),
            services,
        }
    }

    /// The current scenarios.
    pub fn scenarios(&self) -> Scenarios {
        self.scenarios
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The base URL (empty before start).
    pub fn base_url(&self) -> &str {
        self.base_url.get().map(|s| s.as_str()).unwrap_or("")
    }

    /// A JSON dump of every simulator's state (for `/_admin/state`).
    pub fn dump(&self) -> serde_json::Value {
        serde_json::json!({
            "graph": lock(&self.graph).dump(),
            "autotask": lock(&self.autotask).dump(),
            "connectwise": lock(&self.connectwise).dump(),
            "ews": lock(&self.ews).dump(),
            "dynamics": lock(&self.dynamics).dump(),
            "scenarios": self.scenarios(),
            "faults": self.faults.list(),
        })
    }
}
