//! Where a credential may be sent.
//!
//! A credential is entered for one connection as it was configured at that
//! moment: its allowed hosts, its private-network flag and the endpoint
//! settings of its configuration (every URL-like key and every URL value).
//! That [`CredentialBinding`] is sealed with the credential as associated
//! data, so it cannot be edited without breaking decryption; the hub refuses
//! to open a credential whose binding no longer matches the connection, and
//! the HTTP capability refuses to attach it to any host outside the binding.

use super::hosts::HostPattern;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use syncbridge_store::ConnectionRecord;

/// Configuration keys that name a server. Keys ending in one of
/// [`URL_KEY_SUFFIXES`] and string values that are http(s) URLs count too.
const URL_KEYS: &[&str] = &[
    "url", "uri", "server", "host", "hostname", "endpoint", "base_url", "domain",
];

/// Suffixes of URL-like configuration keys, e.g. `graph_url`, `ews_endpoint`.
const URL_KEY_SUFFIXES: &[&str] = &[
    "_url",
    "_uri",
    "_host",
    "_hostname",
    "_endpoint",
    "_server",
    "_domain",
];

/// Whether a configuration key names a server (compared case-insensitively).
pub fn is_url_like_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    URL_KEYS.contains(&key.as_str()) || URL_KEY_SUFFIXES.iter().any(|s| key.ends_with(s))
}

/// What a credential was entered for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialBinding {
    /// The connection's allowed-host patterns, trimmed, lower-case, sorted.
    pub allowed_hosts: Vec<String>,
    /// Whether the connection could reach loopback and private addresses.
    pub allow_private_network: bool,
    /// Endpoint settings of the configuration: JSON pointer → value.
    pub endpoints: BTreeMap<String, String>,
}

impl CredentialBinding {
    /// The binding of a connection as it is configured now.
    pub fn of(record: &ConnectionRecord) -> Self {
        let config = serde_json::from_str(&record.config).unwrap_or(serde_json::Value::Null);
        Self::of_parts(&config, &record.allowed_hosts, record.allow_private_network)
    }

    /// The binding of a configuration, allowed hosts and private-network flag.
    pub fn of_parts(
        config: &serde_json::Value,
        allowed_hosts: &[String],
        allow_private_network: bool,
    ) -> Self {
        let mut hosts: Vec<String> = allowed_hosts
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        hosts.sort();
        hosts.dedup();
        let mut endpoints = BTreeMap::new();
        collect_endpoints(config, String::new(), false, &mut endpoints);
        Self {
            allowed_hosts: hosts,
            allow_private_network,
            endpoints,
        }
    }

    /// The associated data a credential of `connection`/`slot` is sealed with.
    pub fn associated_data(&self, connection: &str, slot: &str) -> String {
        format!(
            "credential/{connection}/{slot}/{}",
            serde_json::to_string(self).expect("binding serialises")
        )
    }

    /// The stored form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("binding serialises")
    }

    /// Reads the stored form.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// What differs from `other`, in words an operator recognises; empty when equal.
    pub fn differences(&self, other: &Self) -> Vec<String> {
        let mut out = Vec::new();
        if self.allowed_hosts != other.allowed_hosts {
            out.push("allowed_hosts".to_owned());
        }
        if self.allow_private_network != other.allow_private_network {
            out.push("allow_private_network".to_owned());
        }
        for key in self.endpoints.keys().chain(other.endpoints.keys()) {
            if self.endpoints.get(key) != other.endpoints.get(key) {
                let name = format!("config {}", display_pointer(key));
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        out
    }

    /// Whether a request to `host:port` may carry the credential.
    pub fn permits(&self, host: &str, port: u16) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        self.allowed_hosts
            .iter()
            .filter_map(|p| HostPattern::parse(p))
            .any(|p| p.matches(&host, port))
    }
}

/// `/tenant/url` → `tenant.url`; the top-level key as it was typed.
fn display_pointer(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

fn collect_endpoints(
    value: &serde_json::Value,
    pointer: String,
    under_url_key: bool,
    out: &mut BTreeMap<String, String>,
) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                let child = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                collect_endpoints(v, child, under_url_key || is_url_like_key(key), out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_endpoints(v, format!("{pointer}/{i}"), under_url_key, out);
            }
        }
        serde_json::Value::String(s) if under_url_key || is_http_url(s) => {
            out.insert(pointer, s.clone());
        }
        serde_json::Value::Null => {}
        other if under_url_key => {
            out.insert(pointer, other.to_string());
        }
        _ => {}
    }
}

fn is_http_url(text: &str) -> bool {
    url::Url::parse(text.trim())
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn binding(config: serde_json::Value, hosts: &[&str], private: bool) -> CredentialBinding {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        CredentialBinding::of_parts(&config, &hosts, private)
    }

    #[test]
    fn url_like_keys_and_url_values_are_endpoints() {
        let b = binding(
            json!({"graph_url": "https://graph.microsoft.com/v1.0", "tenant": "contoso",
                   "page_size": 100, "nested": {"Server": "ews.contoso.com", "links": ["https://x.example/a"]},
                   "integration_code": "ABC"}),
            &["Graph.Microsoft.com", "graph.microsoft.com"],
            false,
        );
        assert_eq!(b.allowed_hosts, ["graph.microsoft.com"]);
        let keys: Vec<&str> = b.endpoints.keys().map(String::as_str).collect();
        assert_eq!(keys, ["/graph_url", "/nested/Server", "/nested/links/0"]);
    }

    #[test]
    fn any_endpoint_host_or_flag_change_is_a_difference() {
        let base = binding(
            json!({"base_url": "https://a.example"}),
            &["a.example"],
            false,
        );
        assert!(base.differences(&base.clone()).is_empty());
        let moved = binding(
            json!({"base_url": "https://b.example"}),
            &["a.example"],
            false,
        );
        assert_eq!(base.differences(&moved), ["config base_url"]);
        let hosts = binding(json!({"base_url": "https://a.example"}), &["*"], false);
        assert_eq!(base.differences(&hosts), ["allowed_hosts"]);
        let private = binding(
            json!({"base_url": "https://a.example"}),
            &["a.example"],
            true,
        );
        assert_eq!(base.differences(&private), ["allow_private_network"]);
        let unrelated = binding(
            json!({"base_url": "https://a.example", "page_size": 5}),
            &["a.example"],
            false,
        );
        assert!(base.differences(&unrelated).is_empty());
    }

    #[test]
    fn permits_only_the_bound_hosts() {
        let b = binding(json!({}), &["*.autotask.net", "127.0.0.1:8443"], false);
        assert!(b.permits("webservices2.autotask.net", 443));
        assert!(b.permits("127.0.0.1", 8443));
        assert!(!b.permits("127.0.0.1", 9));
        assert!(!b.permits("evil.example", 443));
    }

    #[test]
    fn associated_data_names_row_and_binding() {
        let a = binding(json!({"url": "https://a.example"}), &["a.example"], false);
        let b = binding(json!({"url": "https://b.example"}), &["a.example"], false);
        assert_ne!(a.associated_data("c", "s"), b.associated_data("c", "s"));
        assert_ne!(a.associated_data("c", "s"), a.associated_data("c", "t"));
    }
}
