//! autotask simulator (stub).

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::Store;

/// State.
#[derive(Debug, Default)]
pub struct AutotaskState {}

impl AutotaskState {
    /// Adds seed data.
    pub fn apply_seed(&mut self, _seed: &AutotaskSeed) {}
    /// JSON dump.
    pub fn dump(&self) -> Value {
        Value::Null
    }
}

/// Seed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AutotaskSeed {}

/// Handle.
pub struct AutotaskHandle<'a>(pub &'a Store);

/// Entry point.
pub async fn handle(_store: Arc<Store>, _req: Request) -> Response {
    StatusCode::NOT_IMPLEMENTED.into_response()
}

/// Fault answer.
pub fn fault_response(status: StatusCode) -> Response {
    status.into_response()
}

impl AutotaskHandle<'_> {
    /// Sets the hourly request limit.
    pub fn set_threshold(&self, _limit: u64, _used: Option<u64>) {}
}
