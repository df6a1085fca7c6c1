//! Simulators of the outside systems syncbridge talks to: Microsoft Graph (with the Entra token
//! endpoint), Exchange Web Services (SOAP + POX Autodiscover), Autotask REST, ConnectWise Manage
//! REST and the Dynamics 365 (Dataverse) Web API.
//!
//! Every simulator is an axum router over an in-memory store. [`Simulator::start`] serves the
//! enabled ones on one ephemeral `127.0.0.1` port; the returned handle seeds data, reads state,
//! injects faults ([`FaultRule`]) and flips failure scenarios ([`Scenarios`]). The same features
//! are reachable over HTTP under `/_admin/…` (see `docs/simulators.md`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), syncbridge_sim::SimError> {
//! use syncbridge_sim::{SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig::all()).await?;
//! println!("graph at {}", sim.graph_url());
//! # Ok(()) }
//! ```

#![recursion_limit = "256"]
// Handlers return ready-made HTTP error responses as their `Err`; boxing them buys nothing.
#![allow(clippy::result_large_err)]

pub mod admin;
pub mod autotask;
pub mod config;
pub mod connectwise;
pub mod dynamics;
pub mod error;
pub mod ews;
pub mod faults;
pub mod generate;
pub mod graph;
pub mod layer;
pub mod odata;
pub mod scenarios;
pub mod seed;
pub mod server;
pub mod stats;
pub mod store;
pub mod tls;
pub mod util;

pub use config::{parse_duration, Services, SimConfig, TlsMode};
pub use error::SimError;
pub use faults::{FaultKind, FaultRule};
pub use generate::GeneratorSpec;
pub use scenarios::Scenarios;
pub use seed::Seed;
pub use server::Simulator;
pub use stats::RequestStats;
pub use store::Store;
