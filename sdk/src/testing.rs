//! A native stand-in for the host, so plugin logic runs under `cargo test`.
//!
//! Outside `wasm32` the SDK's [`http`](crate::http), [`state`](crate::state) and
//! [`clock`](crate::clock) helpers talk to this module. Each test thread has its
//! own stand-in: register an HTTP handler with [`with_http`], inspect state with
//! [`state::snapshot`].

use crate::bindings::connector::syncbridge::plugin::http as wit;
use crate::types::PluginError;
use std::cell::RefCell;
use std::collections::BTreeMap;

type Handler = Box<dyn FnMut(&wit::Request) -> Result<wit::Response, PluginError>>;

thread_local! {
    static HTTP: RefCell<Option<Handler>> = RefCell::new(None);
    static STATE: RefCell<BTreeMap<String, String>> = const { RefCell::new(BTreeMap::new()) };
    static NOW_MS: RefCell<u64> = const { RefCell::new(1_767_225_600_000) };
}

/// Answers this thread's outbound requests with `handler` while `body` runs.
pub fn with_http<R>(
    handler: impl FnMut(&wit::Request) -> Result<wit::Response, PluginError> + 'static,
    body: impl FnOnce() -> R,
) -> R {
    HTTP.with(|h| *h.borrow_mut() = Some(Box::new(handler)));
    let out = body();
    HTTP.with(|h| *h.borrow_mut() = None);
    out
}

/// Builds a response for a test handler.
pub fn response(status: u16, body: &str) -> wit::Response {
    wit::Response {
        status,
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }
}

/// Sets the clock seen by plugin code on this thread.
pub fn set_now_ms(ms: u64) {
    NOW_MS.with(|n| *n.borrow_mut() = ms);
}

pub(crate) fn now_ms() -> u64 {
    NOW_MS.with(|n| *n.borrow())
}

pub(crate) fn native_send(req: wit::Request) -> Result<wit::Response, PluginError> {
    HTTP.with(|h| match h.borrow_mut().as_mut() {
        Some(handler) => handler(&req),
        None => Err(PluginError::Unsupported(format!(
            "no HTTP handler registered for {} in this native test; wrap the call in syncbridge_sdk::testing::with_http",
            req.url
        ))),
    })
}

/// The state stand-in.
pub mod state {
    use super::STATE;
    use std::collections::BTreeMap;

    /// Reads a value.
    pub fn get(key: &str) -> Option<String> {
        STATE.with(|s| s.borrow().get(key).cloned())
    }

    /// Stores a value.
    pub fn set(key: &str, value: &str) {
        STATE.with(|s| s.borrow_mut().insert(key.to_owned(), value.to_owned()));
    }

    /// Removes a value.
    pub fn delete(key: &str) {
        STATE.with(|s| s.borrow_mut().remove(key));
    }

    /// Keys with a prefix, sorted.
    pub fn keys(prefix: &str) -> Vec<String> {
        STATE.with(|s| {
            s.borrow()
                .keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect()
        })
    }

    /// A copy of everything stored on this thread.
    pub fn snapshot() -> BTreeMap<String, String> {
        STATE.with(|s| s.borrow().clone())
    }
}
