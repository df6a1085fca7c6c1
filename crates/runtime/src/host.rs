//! What the host offers to a plugin during one invocation: the store data
//! and the implementations of the `http`, `state`, `log` and `clock` imports.

use super::bindings::connector::syncbridge::plugin::{clock, http, log, state};
use super::bindings::types::{Attribute, PluginError, RemoteFailure, Throttle};
use super::limits::MemoryLimiter;
use crate::capability::http::{ConnectionHttp, HttpClients, HttpError, OutboundRequest};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Changes a plugin made to its state: `Some` sets, `None` deletes.
pub type StateChanges = BTreeMap<String, Option<String>>;

/// What a connector call may use of its connection.
#[derive(Clone)]
pub struct ConnectionContext {
    /// Network grants and credentials (host memory only).
    pub http: ConnectionHttp,
    /// The connection's plugin state as stored before the call.
    pub state: Arc<BTreeMap<String, String>>,
}

/// The data of one store: one invocation of one plugin.
pub struct HostState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limiter: MemoryLimiter,
    pub(super) stdout: MemoryOutputPipe,
    pub(super) stderr: MemoryOutputPipe,
    pub(super) label: Arc<str>,
    pub(super) deadline: Instant,
    pub(super) clients: HttpClients,
    pub(super) connection: Option<ConnectionContext>,
    pub(super) state_changes: StateChanges,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl HostState {
    fn state_value(&self, key: &str) -> Option<String> {
        match self.state_changes.get(key) {
            Some(change) => change.clone(),
            None => self
                .connection
                .as_ref()
                .and_then(|c| c.state.get(key).cloned()),
        }
    }
}

/// Largest state value and key count, to keep the state table small.
const MAX_STATE_VALUE: usize = 64 * 1024;
const MAX_STATE_KEYS: usize = 1024;

impl state::Host for HostState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.state_value(&key))
    }

    fn set(&mut self, key: String, value: String) -> wasmtime::Result<()> {
        if self.connection.is_none() {
            wasmtime::bail!("state is only available to connectors called for a connection");
        }
        if value.len() > MAX_STATE_VALUE || key.len() > 256 {
            wasmtime::bail!("state value for {key:?} is larger than {MAX_STATE_VALUE} bytes");
        }
        if self.state_changes.len() >= MAX_STATE_KEYS && !self.state_changes.contains_key(&key) {
            wasmtime::bail!("more than {MAX_STATE_KEYS} state keys written in one call");
        }
        self.state_changes.insert(key, Some(value));
        Ok(())
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        self.state_changes.insert(key, None);
        Ok(())
    }

    fn keys(&mut self, prefix: String) -> wasmtime::Result<Vec<String>> {
        let mut keys: std::collections::BTreeSet<String> = self
            .connection
            .as_ref()
            .map(|c| {
                c.state
                    .keys()
                    .filter(|k| k.starts_with(&prefix))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for (key, change) in &self.state_changes {
            if key.starts_with(&prefix) {
                match change {
                    Some(_) => keys.insert(key.clone()),
                    None => keys.remove(key),
                };
            }
        }
        Ok(keys.into_iter().collect())
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let plugin = &*self.label;
        let message: String = message.chars().take(4096).collect();
        match level {
            log::Level::Trace => tracing::trace!(target: "plugin", plugin, "{message}"),
            log::Level::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
            log::Level::Info => tracing::info!(target: "plugin", plugin, "{message}"),
            log::Level::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
            log::Level::Error => tracing::error!(target: "plugin", plugin, "{message}"),
        }
        Ok(())
    }

    fn enabled(&mut self, level: log::Level) -> wasmtime::Result<bool> {
        Ok(match level {
            log::Level::Trace => tracing::enabled!(target: "plugin", tracing::Level::TRACE),
            log::Level::Debug => tracing::enabled!(target: "plugin", tracing::Level::DEBUG),
            log::Level::Info => tracing::enabled!(target: "plugin", tracing::Level::INFO),
            log::Level::Warn => tracing::enabled!(target: "plugin", tracing::Level::WARN),
            log::Level::Error => tracing::enabled!(target: "plugin", tracing::Level::ERROR),
        })
    }
}

impl clock::Host for HostState {
    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0))
    }
}

impl super::bindings::types::Host for HostState {}

impl http::Host for HostState {
    async fn send(
        &mut self,
        req: http::Request,
    ) -> wasmtime::Result<Result<http::Response, PluginError>> {
        let Some(connection) = self.connection.as_ref() else {
            return Ok(Err(PluginError::Forbidden(
                "outbound HTTP is only available to connectors called for a connection".into(),
            )));
        };
        let method = match req.method {
            http::Method::Get => reqwest::Method::GET,
            http::Method::Post => reqwest::Method::POST,
            http::Method::Put => reqwest::Method::PUT,
            http::Method::Patch => reqwest::Method::PATCH,
            http::Method::Delete => reqwest::Method::DELETE,
            http::Method::Head => reqwest::Method::HEAD,
        };
        let outbound = OutboundRequest {
            method: method.clone(),
            url: req.url,
            headers: req.headers.into_iter().map(|a| (a.name, a.value)).collect(),
            body: req.body,
            credential: req.credential,
            timeout: req
                .timeout_ms
                .map(|ms| std::time::Duration::from_millis(ms.into())),
        };
        let url_for_log = redact_query(&outbound.url);
        let started = Instant::now();
        let result = self
            .clients
            .send(&connection.http, outbound, self.deadline)
            .await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(match result {
            Ok(response) => {
                tracing::debug!(target: "plugin::http", plugin = &*self.label, %method, url = %url_for_log, status = response.status, elapsed_ms, "outbound request");
                Ok(http::Response {
                    status: response.status,
                    headers: response
                        .headers
                        .into_iter()
                        .map(|(name, value)| Attribute { name, value })
                        .collect(),
                    body: response.body,
                })
            }
            Err(error) => {
                tracing::debug!(target: "plugin::http", plugin = &*self.label, %method, url = %url_for_log, elapsed_ms, %error, "outbound request failed");
                Err(to_plugin_error(error))
            }
        })
    }
}

/// Query strings can carry tokens; logs keep only the path.
fn redact_query(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_owned(),
    }
}

fn to_plugin_error(error: HttpError) -> PluginError {
    match error {
        HttpError::Refused(m) => PluginError::Forbidden(m),
        HttpError::Invalid(m) => PluginError::Invalid(super::bindings::types::InvalidInput {
            message: m,
            fields: Vec::new(),
        }),
        HttpError::Transient(m) => PluginError::Transient(m),
        e @ HttpError::Auth { .. } => PluginError::Auth(e.to_string()),
        HttpError::Throttled {
            retry_after,
            message,
        } => PluginError::Throttled(Throttle {
            retry_after_ms: retry_after.map(|d| d.as_millis() as u64),
            message,
        }),
        e @ HttpError::TooLarge { .. } => PluginError::Remote(RemoteFailure {
            status: 0,
            message: e.to_string(),
        }),
        e @ HttpError::Setup(_) => PluginError::Transient(e.to_string()),
    }
}
