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
