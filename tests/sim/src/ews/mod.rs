//! ews simulator (stub).

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::Store;

/// State.
#[derive(Debug, Default)]
pub struct EwsState {}

impl EwsState {
    /// Adds seed data.
    pub fn apply_seed(&mut self, _seed: &EwsSeed) {}
    /// JSON dump.
    pub fn dump(&self) -> Value {
        Value::Null
    }
}

/// Seed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EwsSeed {}

/// Handle.
pub struct EwsHandle<'a>(pub &'a Store);

/// Entry point.
pub async fn handle(_store: Arc<Store>, _req: Request) -> Response {
    StatusCode::NOT_IMPLEMENTED.into_response()
}

/// Fault answer.
pub fn fault_response(status: StatusCode, _retry_after: Option<&str>) -> Response {
    status.into_response()
}
