//! The middleware every simulated request goes through: request counting, global latency,
//! the per-mailbox concurrency limit of Graph, and fault injection.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::store::Store;
use crate::util::lock;

/// The simulated service a path belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Microsoft Graph and the Entra token endpoint.
    Graph,
    /// Autotask REST.
    Autotask,
    /// ConnectWise Manage REST.
    ConnectWise,
    /// EWS and Autodiscover.
    Ews,
    /// Dynamics 365 Web API.
    Dynamics,
}

impl Service {
    /// Classifies a request path (`None` for admin and unknown paths).
    pub fn of_path(path: &str) -> Option<Service> {
        let p = path.to_ascii_lowercase();
        if p.starts_with("/v1.0/")
            || p == "/v1.0"
            || p.contains("/oauth2/")
            || p.ends_with("/.well-known/openid-configuration")
            || p == "/common/discovery/instance"
        {
            Some(Service::Graph)
        } else if p.starts_with("/atservicesrest/") {
            Some(Service::Autotask)
        } else if p.starts_with("/v4_6_release/") {
            Some(Service::ConnectWise)
        } else if p.starts_with("/ews/") || p.starts_with("/autodiscover/") {
            Some(Service::Ews)
        } else if p.starts_with("/api/data/") {
            Some(Service::Dynamics)
        } else {
            None
        }
    }

    /// The error answer this service sends for an injected `status`.
    pub fn fault_response(self, status: u16, retry_after: Option<&str>) -> Response {
        let st = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = match self {
            Service::Graph => crate::graph::fault_response(st),
            Service::Autotask => crate::autotask::fault_response(st),
            Service::ConnectWise => crate::connectwise::fault_response(st),
            Service::Ews => crate::ews::fault_response(st, retry_after),
            Service::Dynamics => crate::dynamics::fault_response(st),
        };
        if let Some(ra) = retry_after {
            if matches!(status, 429 | 503) {
                if let Ok(v) = HeaderValue::from_str(ra) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
        }
        resp
    }
}

struct InflightGuard {
    store: Arc<Store>,
    key: String,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        let mut m = lock(&self.store.inflight);
        if let Some(n) = m.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.key);
            }
        }
    }
}

/// The axum middleware function (mounted with `from_fn_with_state`).
pub async fn simulate(State(store): State<Arc<Store>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let Some(service) = Service::of_path(&path) else {
        return next.run(req).await;
    };
    let method = req.method().as_str().to_string();
    store.counters.record(&method, &path);

    // Exchange Online allows 4 concurrent requests per mailbox.
    let _guard = if service == Service::Graph {
        match crate::graph::mailbox_key(&path) {
            Some(key) => {
                let limit = *store
                    .mailbox_concurrency_limit
                    .read()
                    .unwrap_or_else(|e| e.into_inner());
                let mut m = lock(&store.inflight);
                let n = m.entry(key.clone()).or_insert(0);
                if *n >= limit {
                    drop(m);
                    return crate::graph::mailbox_concurrency_response();
                }
                *n += 1;
                drop(m);
                Some(InflightGuard {
                    store: store.clone(),
                    key,
                })
            }
            None => None,
        }
    } else {
        None
    };

    let decision = store.faults.evaluate(&method, &path);
    let latency = store
        .latency
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or(Duration::ZERO)
        + decision.latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if decision.drop {
        return dropped_connection();
    }
    if let Some(status) = decision.status {
        return service.fault_response(status, decision.retry_after.as_deref());
    }
    let resp = next.run(req).await;
    if decision.malformed {
        return malform(resp).await;
    }
    resp
}

/// A response whose body fails after the headers: hyper aborts the connection.
fn dropped_connection() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "fault injection: connection dropped",
        ))
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

async fn malform(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let mut cut = bytes[..bytes.len() / 2].to_vec();
    cut.extend_from_slice(b"\x00<<\"truncated");
    parts.headers.remove(header::CONTENT_LENGTH);
    if parts.status == StatusCode::NO_CONTENT {
        parts.status = StatusCode::OK;
    }
    (parts, Body::from(cut)).into_response()
}
