//! Paging helpers: follow a service's next-page links without letting them
//! lead the connection's credentials somewhere else.

use crate::types::{Item, Page, PluginError};

/// Checks that a next-page link returned by a service stays on the origin
/// (scheme, host, port) of `base`, and returns it. A link to another origin
/// would carry the connection's credentials there; it is refused as `remote`.
pub fn same_origin(base: &str, next: &str) -> Result<String, PluginError> {
    if crate::url::same_origin(base, next) {
        return Ok(next.to_owned());
    }
    Err(PluginError::Remote(crate::types::RemoteFailure {
        status: 0,
        message: format!(
            "the service's next-page link {next:?} leaves {base:?}; refusing to follow it"
        ),
    }))
}

/// A page that continues at `next` (more to read) or ends this pass with `done_cursor`.
pub fn page(
    items: Vec<Item>,
    next: Option<String>,
    done_cursor: Option<String>,
    full: bool,
) -> Page {
    match next {
        Some(next) => Page {
            items,
            cursor: Some(next),
            more: true,
            full,
        },
        None => Page {
            items,
            cursor: done_cursor,
            more: false,
            full,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_must_stay_on_the_origin() {
        let base = "https://graph.microsoft.com/v1.0/users/delta";
        assert!(same_origin(
            base,
            "https://graph.microsoft.com/v1.0/users/delta?$skiptoken=x"
        )
        .is_ok());
        assert!(same_origin(base, "https://GRAPH.microsoft.com:443/v1.0/x").is_ok());
        assert!(same_origin(base, "https://evil.example/v1.0/x").is_err());
        assert!(same_origin(base, "http://graph.microsoft.com/v1.0/x").is_err());
        assert!(same_origin(base, "https://graph.microsoft.com@evil.example/x").is_err());
        assert!(same_origin("http://127.0.0.1:8080/a", "http://127.0.0.1:8080/b").is_ok());
        assert!(same_origin("http://127.0.0.1:8080/a", "http://127.0.0.1:9090/b").is_err());
    }

    #[test]
    fn pages_continue_or_end_the_pass() {
        let p = page(vec![], Some("n".into()), Some("delta".into()), true);
        assert!(p.more && p.cursor.as_deref() == Some("n"));
        let p = page(vec![], None, Some("delta".into()), true);
        assert!(!p.more && p.cursor.as_deref() == Some("delta") && p.full);
    }
}

/// The cursor of a change feed that is "items modified since T" (Autotask
/// `lastModifiedDate`, ConnectWise `lastUpdated`): a pass reads its pages
/// (`next`) and remembers the newest modification time it saw (`high`); the
/// cursor it ends with starts the next pass there (`since`). A pass without
/// `since` is a full read. Connectors query `modified >= since`, so an item
/// changed within the same instant is read again rather than missed; the
/// host tells an unchanged item from a changed one.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SinceCursor {
    /// The next page of this pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The modification time this pass reads from; none = a full read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The newest modification time seen so far in this pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<String>,
}

impl SinceCursor {
    /// Reads a cursor the host stored; none starts a full read. A bare URL
    /// (the next-page link older versions stored) continues that page.
    pub fn parse(cursor: Option<&str>) -> Result<Self, PluginError> {
        match cursor {
            None => Ok(Self::default()),
            Some(c) if c.starts_with("http://") || c.starts_with("https://") => Ok(Self {
                next: Some(c.to_owned()),
                ..Self::default()
            }),
            Some(c) => serde_json::from_str(c).map_err(|e| {
                PluginError::invalid_field(
                    "cursor",
                    format!("{e}; the stored cursor is not one this connector wrote (reset the profile's cursor to read everything again)"),
                )
            }),
        }
    }

    /// Notes an item's modification time (ISO 8601, UTC, in the service's
    /// own consistent format).
    pub fn observe(&mut self, modified: Option<&str>) {
        if let Some(m) = modified.filter(|m| !m.is_empty()) {
            if self.high.as_deref().is_none_or(|h| m > h) {
                self.high = Some(m.to_owned());
            }
        }
    }

    /// The page: it continues at `next`, or ends the pass with the cursor
    /// the next pass starts from.
    pub fn page(self, items: Vec<Item>, next: Option<String>) -> Page {
        let full = self.since.is_none();
        let more = next.is_some();
        let cursor = if more {
            Self { next, ..self }
        } else {
            Self {
                next: None,
                since: self.high.or(self.since),
                high: None,
            }
        };
        let cursor = (cursor != Self::default())
            .then(|| serde_json::to_string(&cursor).expect("a cursor serialises"));
        Page {
            items,
            cursor,
            more,
            full,
        }
    }
}

#[cfg(test)]
mod since_tests {
    use super::*;

    #[test]
    fn a_pass_ends_with_the_newest_modification_it_saw() {
        let mut c = SinceCursor::parse(None).unwrap();
        c.observe(Some("2026-01-02T00:00:00Z"));
        c.observe(Some("2026-01-01T00:00:00Z"));
        let page = c.page(vec![], Some("https://x.test/next".into()));
        assert!(page.more && page.full);
        let mut c = SinceCursor::parse(page.cursor.as_deref()).unwrap();
        assert_eq!(c.next.as_deref(), Some("https://x.test/next"));
        c.observe(None);
        let page = c.page(vec![], None);
        assert!(!page.more && page.full);
        let c = SinceCursor::parse(page.cursor.as_deref()).unwrap();
        assert_eq!(c.since.as_deref(), Some("2026-01-02T00:00:00Z"));
        assert_eq!(c.next, None);
        // The delta pass that follows is not full and keeps its start when it sees nothing.
        let page = c.page(vec![], None);
        assert!(!page.full);
        let c = SinceCursor::parse(page.cursor.as_deref()).unwrap();
        assert_eq!(c.since.as_deref(), Some("2026-01-02T00:00:00Z"));
        // An old bare next-page link still continues; garbage is refused.
        let c = SinceCursor::parse(Some("https://x.test/p2")).unwrap();
        assert_eq!(c.next.as_deref(), Some("https://x.test/p2"));
        assert!(SinceCursor::parse(Some("{nope")).is_err());
    }
}
