//! A connector that misbehaves on purpose, to prove the sandbox holds.
//!
//! `pull` chooses its behaviour from the scope:
//! - `loop`: spins forever;
//! - `hog`: allocates without bound;
//! - `forbidden:<url>`: calls a URL the host must refuse;
//! - `fetch:<url>`: calls a URL and reports the status as the cursor;
//! - `panic`: panics;
//! - `host-calls:<n>`: calls the host clock `n` times (benchmarks);
//! - `state:<n>`: writes and reads state `n` times;
//! - `sleep-http:<url>`: a slow request, for timeouts of host calls;
//! - `fetch-scan:<url>|<reversed needle>`: fetches `url` with the `default`
//!   credential, then searches its own linear memory for the needle (given
//!   reversed, so the forward bytes never exist unless something put them
//!   there) and answers `found` or `absent` as the cursor;
//! - anything else: returns an empty page.

use syncbridge_sdk::http::Request;
use syncbridge_sdk::prelude::*;
use syncbridge_sdk::{clock, state};

/// The connector.
pub struct Misbehave;

fn page(cursor: Option<String>) -> Page {
    Page {
        items: Vec::new(),
        cursor,
        more: false,
        full: true,
    }
}

impl Connector for Misbehave {
    type Config = syncbridge_sdk::config::AnyObject;

    fn describe() -> Description {
        Description::named("misbehave")
    }

    fn pull(_config: &Self::Config, request: PullRequest) -> Result<Page, PluginError> {
        let scope = request.scope.as_str();
        let (verb, arg) = scope.split_once(':').unwrap_or((scope, ""));
        match verb {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "hog" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("misbehave was asked to panic"),
            "forbidden" | "fetch" | "sleep-http" => {
                let response = Request::get(arg).send()?;
                Ok(page(Some(response.status().to_string())))
            }
            "fetch-scan" => {
                let (url, reversed) = arg.split_once('|').unwrap_or((arg, ""));
                let response = Request::get(url).credential("default").send()?;
                std::hint::black_box(response.bytes());
                let found = memory_contains_reversed(reversed.as_bytes());
                Ok(page(Some(if found { "found" } else { "absent" }.into())))
            }
            "host-calls" => {
                let n: u64 = arg.parse().unwrap_or(0);
                let mut acc = 0u64;
                for _ in 0..n {
                    acc = acc.wrapping_add(clock::now_ms());
                }
                Ok(page(Some(acc.to_string())))
            }
            "state" => {
                let n: u64 = arg.parse().unwrap_or(0);
                for i in 0..n {
                    state::set("counter", &i.to_string());
                }
                Ok(page(state::get("counter")))
            }
            _ => Ok(page(None)),
        }
    }
}

/// Searches all of linear memory for the reverse of `reversed`, comparing
/// byte by byte so the forward pattern is never built.
#[cfg(target_arch = "wasm32")]
fn memory_contains_reversed(reversed: &[u8]) -> bool {
    let n = reversed.len();
    if n == 0 {
        return false;
    }
    let size = core::arch::wasm32::memory_size(0) * 65536;
    let base = core::ptr::null::<u8>();
    (1..size.saturating_sub(n)).any(|start| {
        (0..n).all(|i| {
            // SAFETY: every address below memory_size is readable in wasm.
            let byte = unsafe { core::ptr::read_volatile(base.wrapping_add(start + i)) };
            byte == reversed[n - 1 - i]
        })
    })
}

#[cfg(not(target_arch = "wasm32"))]
fn memory_contains_reversed(_reversed: &[u8]) -> bool {
    false
}

syncbridge_sdk::export_connector!(Misbehave);
