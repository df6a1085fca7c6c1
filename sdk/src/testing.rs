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

/// Sends `req` as one HTTP/1.1 exchange over plain HTTP (`Connection: close`), with
/// `authorization` as the `Authorization` header: what a handler of [`with_http`] uses to let a
/// plugin's tests talk to a simulator on loopback as the host would. Panics on anything but a
/// well-formed answer (a test helper).
pub fn send_loopback(req: &wit::Request, authorization: Option<&str>) -> wit::Response {
    use std::io::{Read, Write};
    let rest = req
        .url
        .strip_prefix("http://")
        .expect("the simulator speaks plain HTTP here");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let method = match req.method {
        wit::Method::Get => "GET",
        wit::Method::Post => "POST",
        wit::Method::Put => "PUT",
        wit::Method::Patch => "PATCH",
        wit::Method::Delete => "DELETE",
        _ => "GET",
    };
    let body = req.body.clone().unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in &req.headers {
        head.push_str(&format!("{}: {}\r\n", h.name, h.value));
    }
    if let Some(a) = authorization {
        head.push_str(&format!("Authorization: {a}\r\n"));
    }
    head.push_str("\r\n");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap();
    let headers: Vec<_> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| crate::types::Attribute {
            name: n.trim().into(),
            value: v.trim().into(),
        })
        .collect();
    if headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("transfer-encoding") && h.value.contains("chunked"))
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(p) = rest.windows(2).position(|w| w == b"\r\n") {
            let size =
                usize::from_str_radix(String::from_utf8_lossy(&rest[..p]).trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[p + 2..p + 2 + size]);
            rest = &rest[p + 2 + size + 2..];
        }
        body = out;
    }
    wit::Response {
        status,
        headers,
        body,
    }
}
