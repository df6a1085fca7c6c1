//! Starting and stopping a simulator instance.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{SimConfig, TlsMode};
use crate::error::SimError;
use crate::faults::FaultRule;
use crate::layer::Service;
use crate::scenarios::Scenarios;
use crate::seed::Seed;
use crate::stats::RequestStats;
use crate::store::Store;

/// A running simulator: all enabled services on one `127.0.0.1` port. Dropping it stops the
/// server.
pub struct Simulator {
    store: Arc<Store>,
    addr: SocketAddr,
    scheme: &'static str,
    ca_pem: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Builds the axum router of a store (services + admin endpoints + simulation layer).
pub fn router(store: Arc<Store>) -> Router {
    Router::new()
        .merge(crate::admin::router())
        .fallback(dispatch)
        .layer(axum::middleware::from_fn_with_state(
            store.clone(),
            crate::layer::simulate,
        ))
        .with_state(store)
}

async fn dispatch(State(store): State<Arc<Store>>, req: Request) -> Response {
    let svc = Service::of_path(req.uri().path());
    let s = store.services;
    match svc {
        Some(Service::Graph) if s.graph => crate::graph::handle(store, req).await,
        Some(Service::Autotask) if s.autotask => crate::autotask::handle(store, req).await,
        Some(Service::ConnectWise) if s.connectwise => crate::connectwise::handle(store, req).await,
        Some(Service::Ews) if s.ews => crate::ews::handle(store, req).await,
        Some(Service::Dynamics) if s.dynamics => crate::dynamics::handle(store, req).await,
        _ => (StatusCode::NOT_FOUND, "no simulated service at this path").into_response(),
    }
}

impl Simulator {
    /// Seeds the store, binds `127.0.0.1:{port}` and serves in a background task.
    pub async fn start(cfg: SimConfig) -> Result<Simulator, SimError> {
        let store = Arc::new(Store::new(cfg.services, cfg.rng_seed));
        *store.latency.write().unwrap_or_else(|e| e.into_inner()) = cfg.latency;
        if let Some(seed) = &cfg.seed {
            seed.apply(&store)?;
        }
        if let Some(spec) = &cfg.generate {
            crate::generate::generate(spec).apply(&store)?;
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", cfg.port)).await?;
        let addr = listener.local_addr()?;
        let scheme = if cfg.tls == TlsMode::Off {
            "http"
        } else {
            "https"
        };
        let _ = store
            .base_url
            .set(format!("{scheme}://127.0.0.1:{}", addr.port()));
        let app = router(store.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let mut ca_pem = None;
        let task = match cfg.tls {
            TlsMode::Off => tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            }),
            mode => {
                let material = crate::tls::TlsMaterial::generate(mode)?;
                ca_pem = Some(material.trust_pem.clone());
                let tls = crate::tls::TlsListener::new(listener, &material)?;
                tokio::spawn(async move {
                    let _ = axum::serve(tls, app)
                        .with_graceful_shutdown(async {
                            let _ = rx.await;
                        })
                        .await;
                })
            }
        };
        tracing::info!(%addr, "simulator listening");
        Ok(Simulator {
            store,
            addr,
            scheme,
            ca_pem,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:{port}` (or `https://…` with TLS).
    pub fn base_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.addr.port())
    }
    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// Graph root, `{base}/v1.0`.
    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.base_url())
    }
    /// Entra token endpoint of a tenant, `{base}/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.base_url())
    }
    /// Autotask root, `{base}/ATServicesRest/V1.0`.
    pub fn autotask_url(&self) -> String {
        format!("{}/ATServicesRest/V1.0", self.base_url())
    }
    /// ConnectWise root, `{base}/v4_6_release/apis/3.0`.
    pub fn connectwise_url(&self) -> String {
        format!("{}/v4_6_release/apis/3.0", self.base_url())
    }
    /// EWS endpoint, `{base}/EWS/Exchange.asmx`.
    pub fn ews_url(&self) -> String {
        format!("{}/EWS/Exchange.asmx", self.base_url())
    }
    /// POX Autodiscover endpoint, `{base}/autodiscover/autodiscover.xml`.
    pub fn autodiscover_url(&self) -> String {
        format!("{}/autodiscover/autodiscover.xml", self.base_url())
    }
    /// Dataverse Web API root, `{base}/api/data/v9.2`.
    pub fn dynamics_url(&self) -> String {
        format!("{}/api/data/v9.2", self.base_url())
    }
    /// PEM of the certificate a client must trust (TLS modes only).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }
    /// The underlying store (direct access to every simulator's state).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
    /// Loads more data.
    pub fn seed(&self, seed: &Seed) -> Result<(), SimError> {
        seed.apply(&self.store)
    }
    /// Adds a fault rule.
    pub fn add_fault(&self, rule: FaultRule) -> Result<(), SimError> {
        self.store.faults.add(rule)
    }
    /// Removes all fault rules.
    pub fn clear_faults(&self) {
        self.store.faults.clear()
    }
    /// Request counters.
    pub fn requests(&self) -> RequestStats {
        self.store.counters.snapshot()
    }
    /// Resets the request counters.
    pub fn reset_requests(&self) {
        self.store.counters.reset()
    }
    /// Replaces the failure scenarios.
    pub fn set_scenarios(&self, s: Scenarios) {
        *self
            .store
            .scenarios
            .write()
            .unwrap_or_else(|e| e.into_inner()) = s;
    }
    /// The current failure scenarios.
    pub fn scenarios(&self) -> Scenarios {
        self.store.scenarios()
    }
    /// Sets the latency added to every request.
    pub fn set_latency(&self, latency: Option<Duration>) {
        *self
            .store
            .latency
            .write()
            .unwrap_or_else(|e| e.into_inner()) = latency;
    }
    /// A JSON dump of all state.
    pub fn state(&self) -> serde_json::Value {
        self.store.dump()
    }
    /// Graph-specific controls.
    pub fn graph(&self) -> crate::graph::GraphHandle<'_> {
        crate::graph::GraphHandle(&self.store)
    }
    /// Autotask-specific controls.
    pub fn autotask(&self) -> crate::autotask::AutotaskHandle<'_> {
        crate::autotask::AutotaskHandle(&self.store)
    }
    /// ConnectWise-specific controls.
    pub fn connectwise(&self) -> crate::connectwise::CwHandle<'_> {
        crate::connectwise::CwHandle(&self.store)
    }
    /// EWS-specific controls.
    pub fn ews(&self) -> crate::ews::EwsHandle<'_> {
        crate::ews::EwsHandle(&self.store)
    }
    /// Dynamics-specific controls.
    pub fn dynamics(&self) -> crate::dynamics::DynamicsHandle<'_> {
        crate::dynamics::DynamicsHandle(&self.store)
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}
