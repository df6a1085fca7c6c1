//! Outbound host patterns: the allow-list of a connection.

/// One allowed-host pattern: `*`, `host`, `host:port`, `*.domain` or `*.domain:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: String,
    port: Option<u16>,
}

impl HostPattern {
    /// Parses a pattern; `None` when it is malformed.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().to_ascii_lowercase();
        if text.is_empty() || text.contains('/') {
            return None;
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_owned(), Some(p.parse().ok()?)),
            _ => (text.clone(), None),
        };
        (!host.is_empty()).then_some(Self { host, port })
    }

    /// Whether `host` (lower-case) and `port` match this pattern.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        if self.host == "*" {
            return true;
        }
        match self.host.strip_prefix("*.") {
            Some(domain) => {
                host.len() > domain.len() + 1
                    && host.ends_with(domain)
                    && host[..host.len() - domain.len()].ends_with('.')
            }
            None => self.host == host,
        }
    }
}

/// The allow-list of one connection: a request must match the plugin's
/// manifest AND the connection. An empty side denies everything.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    manifest: Vec<HostPattern>,
    connection: Vec<HostPattern>,
}

impl AllowList {
    /// Builds the list; malformed patterns are ignored (they match nothing).
    pub fn new(manifest: &[String], connection: &[String]) -> Self {
        Self {
            manifest: manifest
                .iter()
                .filter_map(|p| HostPattern::parse(p))
                .collect(),
            connection: connection
                .iter()
                .filter_map(|p| HostPattern::parse(p))
                .collect(),
        }
    }

    /// Whether a request to `host:port` is allowed, and if not, which side refused.
    pub fn check(&self, host: &str, port: u16) -> Result<(), Refusal> {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if !self.manifest.iter().any(|p| p.matches(&host, port)) {
            return Err(Refusal::Manifest);
        }
        if !self.connection.iter().any(|p| p.matches(&host, port)) {
            return Err(Refusal::Connection);
        }
        Ok(())
    }
}

/// Which side of the allow-list refused a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The plugin did not ask for this host in `allowed-outbound-hosts`.
    Manifest,
    /// The operator did not allow this host on the connection.
    Connection,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_hosts_ports_and_subdomains() {
        let p = HostPattern::parse("*.autotask.net").unwrap();
        assert!(p.matches("webservices2.autotask.net", 443));
        assert!(!p.matches("autotask.net", 443));
        assert!(!p.matches("evilautotask.net", 443));
        let exact = HostPattern::parse("graph.microsoft.com:443").unwrap();
        assert!(exact.matches("graph.microsoft.com", 443));
        assert!(!exact.matches("graph.microsoft.com", 80));
        assert!(HostPattern::parse("*").unwrap().matches("anything", 1));
        assert!(HostPattern::parse("http://x/").is_none());
    }

    #[test]
    fn allow_list_is_the_intersection_and_empty_denies() {
        let list = AllowList::new(&["*.example.com".into()], &["api.example.com".into()]);
        assert_eq!(list.check("api.example.com", 443), Ok(()));
        assert_eq!(list.check("www.example.com", 443), Err(Refusal::Connection));
        assert_eq!(list.check("other.org", 443), Err(Refusal::Manifest));
        let empty = AllowList::new(&["*".into()], &[]);
        assert_eq!(
            empty.check("api.example.com", 443),
            Err(Refusal::Connection)
        );
    }
}
