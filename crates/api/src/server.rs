//! The HTTP service (`syncbridge serve`): `/healthz`, `/metrics` and the
//! REST API under `/api/v1`.

use crate::auth::Caller;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use syncbridge_service::hub::Hub;
use syncbridge_service::notify::Notifier;
use tracing::Instrument;

/// The header carrying a request's id, in both directions.
pub const REQUEST_ID: &str = "x-request-id";

/// What `syncbridge serve` was asked to open up.
#[derive(Clone, Default)]
pub struct ServeOptions {
    /// Serve `/metrics` to anyone who reaches the port (`--metrics-public`);
    /// otherwise it needs an API token not scoped to a company.
    pub metrics_public: bool,
    /// Where the API's own mail goes (the confirmation to newly enabled
    /// Exchange resources); without one, nothing is mailed and the answer says so.
    pub notifier: Option<Arc<dyn Notifier>>,
}

/// Builds the router, `/metrics` behind a token.
pub fn router(hub: Arc<Hub>) -> Router {
    router_with(hub, ServeOptions::default())
}

/// Builds the router with `options`.
pub fn router_with(hub: Arc<Hub>, options: ServeOptions) -> Router {
    let metrics = if options.metrics_public {
        get(metrics_public)
    } else {
        get(metrics_with_token)
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", metrics)
        .with_state(hub.clone())
        .nest(
            "/api/v1",
            crate::router(hub)
                .layer(axum::Extension(crate::Mailer(options.notifier)))
                .layer(axum::middleware::from_fn(request_id)),
        )
}

/// Gives every API call an id: the caller's `x-request-id` when it is a
/// plain token of at most 64 characters, a new one otherwise. Every log line
/// of the call carries it (span `api`), one line records the outcome, and
/// the response returns it.
async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| syncbridge_service::control::new_id("req"));
    let value = HeaderValue::from_str(&id).expect("request ids are plain ASCII");
    req.headers_mut().insert(REQUEST_ID, value.clone());
    let span = tracing::info_span!(
        "api",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path()
    );
    let started = std::time::Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "api call"
        )
    });
    response.headers_mut().insert(REQUEST_ID, value);
    response
}

async fn healthz(State(hub): State<Arc<Hub>>) -> (axum::http::StatusCode, Json<serde_json::Value>) {
    match sqlx::query("SELECT 1").execute(hub.store().pool()).await {
        Ok(_) => (
            axum::http::StatusCode::OK,
            Json(serde_json::json!({
                "status": "ok",
                "database": "ok",
                "pooling_allocator": hub.runtime().pooling(),
            })),
        ),
        Err(e) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "degraded", "database": e.to_string()})),
        ),
    }
}

/// The metrics of this process in the Prometheus text format.
fn render_metrics(hub: &Hub) -> Response {
    (
        [(CONTENT_TYPE, syncbridge_runtime::metrics::CONTENT_TYPE)],
        hub.runtime().metrics().render(),
    )
        .into_response()
}

async fn metrics_public(State(hub): State<Arc<Hub>>) -> Response {
    render_metrics(&hub)
}

/// `/metrics` names every company's profiles and connections: it needs a
/// token that sees every company (any role: it only reads).
async fn metrics_with_token(
    State(hub): State<Arc<Hub>>,
    caller: Result<Caller, ApiError>,
) -> Result<Response, ApiError> {
    let caller = caller.map_err(|e| match e.status {
        axum::http::StatusCode::UNAUTHORIZED => ApiError::unauthorized(format!(
            "{}; /metrics needs a token not scoped to a company, any role (`syncbridge token create --name prometheus --role viewer`), unless `syncbridge serve --metrics-public` serves it to anyone who reaches the port",
            e.message
        )),
        _ => e,
    })?;
    if let Some(company) = caller.company() {
        return Err(ApiError::forbidden(format!(
            "/metrics names every company's profiles and connections; this token is scoped to company {company:?}: use a token not scoped to a company"
        )));
    }
    Ok(render_metrics(&hub))
}

/// Serves until Ctrl-C or SIGTERM.
pub async fn serve(
    hub: Arc<Hub>,
    listener: tokio::net::TcpListener,
    options: ServeOptions,
) -> std::io::Result<()> {
    axum::serve(listener, router_with(hub, options))
        .with_graceful_shutdown(shutdown_signal())
        .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
