//! Seed data: one JSON document with a section per simulator. Every section is optional.
//! See `docs/simulators.md` for the format.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::store::Store;
use crate::util::lock;

/// Data to load into the simulators.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Seed {
    /// Graph tenants with their apps, users, groups, licences and mailbox content.
    pub graph: crate::graph::GraphSeed,
    /// Autotask credentials and entities.
    pub autotask: crate::autotask::AutotaskSeed,
    /// ConnectWise credentials and entities.
    pub connectwise: crate::connectwise::CwSeed,
    /// EWS accounts, mailboxes and public folders.
    pub ews: crate::ews::EwsSeed,
    /// Dataverse rows.
    pub dynamics: crate::dynamics::DynamicsSeed,
}

impl Seed {
    /// Parses a seed document.
    pub fn from_json(s: &str) -> Result<Seed, SimError> {
        Ok(serde_json::from_str(s)?)
    }
    /// Reads a seed document from a file.
    pub fn from_file(path: &Path) -> Result<Seed, SimError> {
        Seed::from_json(&std::fs::read_to_string(path)?)
    }
    /// Loads the data into a store (adding to what is there).
    pub fn apply(&self, store: &Store) -> Result<(), SimError> {
        lock(&store.graph).apply_seed(&self.graph);
        lock(&store.autotask).apply_seed(&self.autotask);
        lock(&store.connectwise).apply_seed(&self.connectwise);
        lock(&store.ews).apply_seed(&self.ews);
        lock(&store.dynamics).apply_seed(&self.dynamics);
        Ok(())
    }
}
