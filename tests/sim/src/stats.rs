//! Request counting per route (benchmarks report "requests made").

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

/// Snapshot of the request counters.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RequestStats {
    /// Requests to simulated services (admin calls excluded).
    pub total: u64,
    /// Requests per route: `"METHOD /normalized/path"` where ids are replaced by `{id}`.
    pub routes: BTreeMap<String, u64>,
    /// Operations of services that carry several on one route: `"EWS SyncFolderItems"`.
    pub operations: BTreeMap<String, u64>,
}

impl RequestStats {
    /// Sum of the counters whose route key contains `needle` (case-insensitive).
    pub fn count_matching(&self, needle: &str) -> u64 {
        let n = needle.to_ascii_lowercase();
        self.routes
            .iter()
            .filter(|(k, _)| k.to_ascii_lowercase().contains(&n))
            .map(|(_, v)| v)
            .sum()
    }
}

/// Thread-safe counters.
#[derive(Default)]
pub struct Counters {
    total: AtomicU64,
    routes: Mutex<BTreeMap<String, u64>>,
    operations: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    /// Counts one request.
    pub fn record(&self, method: &str, path: &str) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let key = format!("{} {}", method, normalize_route(path));
        *crate::util::lock(&self.routes).entry(key).or_insert(0) += 1;
    }
    /// Counts one operation of a request already counted by route (a SOAP body's operation).
    pub fn record_operation(&self, operation: &str) {
        *crate::util::lock(&self.operations)
            .entry(operation.to_string())
            .or_insert(0) += 1;
    }
    /// Current values.
    pub fn snapshot(&self) -> RequestStats {
        RequestStats {
            total: self.total.load(Ordering::Relaxed),
            routes: crate::util::lock(&self.routes).clone(),
            operations: crate::util::lock(&self.operations).clone(),
        }
    }
    /// Sets every counter to zero.
    pub fn reset(&self) {
        self.total.store(0, Ordering::Relaxed);
        crate::util::lock(&self.routes).clear();
        crate::util::lock(&self.operations).clear();
    }
}

/// Replaces id-like path segments by `{id}`: numbers, GUIDs, e-mail addresses, long opaque
/// tokens, and OData keys (`mailboxes(…)` → `mailboxes({id})`).
pub fn normalize_route(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if let Some(open) = seg.find('(') {
                if seg.ends_with(')') {
                    return format!("{}({{id}})", &seg[..open]);
                }
            }
            if is_id(seg) {
                "{id}".to_string()
            } else {
                seg.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn is_id(seg: &str) -> bool {
    if seg.is_empty() {
        return false;
    }
    if seg.chars().all(|c| c.is_ascii_digit()) || seg.contains('@') || seg.contains('%') {
        return true;
    }
    let has_digit = seg.chars().any(|c| c.is_ascii_digit());
    (seg.len() >= 16 && has_digit) || (seg.len() == 36 && seg.matches('-').count() == 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_ids() {
        assert_eq!(
            normalize_route("/v1.0/users/6e7b768e-07e2-4810-8459-485f84f8f204/events"),
            "/v1.0/users/{id}/events"
        );
        assert_eq!(normalize_route("/x/Contacts/42"), "/x/Contacts/{id}");
        assert_eq!(
            normalize_route("/api/data/v9.2/mailboxes(1234)"),
            "/api/data/v9.2/mailboxes({id})"
        );
        assert_eq!(normalize_route("/v1.0/users/a@b.com"), "/v1.0/users/{id}");
        assert_eq!(
            normalize_route("/v1.0/subscribedSkus"),
            "/v1.0/subscribedSkus"
        );
    }
}
