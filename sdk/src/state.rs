//! Per-connection key-value state kept by the host.

#[cfg(target_arch = "wasm32")]
use crate::bindings::connector::syncbridge::plugin::state as imp;
#[cfg(not(target_arch = "wasm32"))]
use crate::testing::state as imp;

/// Reads a value.
pub fn get(key: &str) -> Option<String> {
    imp::get(key)
}

/// Stores a value.
pub fn set(key: &str, value: &str) {
    imp::set(key, value)
}

/// Removes a value.
pub fn delete(key: &str) {
    imp::delete(key)
}

/// Keys starting with `prefix`, sorted.
pub fn keys(prefix: &str) -> Vec<String> {
    imp::keys(prefix)
}
