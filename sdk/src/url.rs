//! URL pieces connectors build and compare: percent-encoded path segments and
//! query values, and the origin (`scheme://host:port`) of a URL.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

pub use percent_encoding;

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - _ . ~`).
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a query value (`?key=<value>`): only unreserved characters stay.
pub fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, NOT_UNRESERVED).to_string()
}

/// Percent-encodes one path segment (`/users/<segment>`): only unreserved
/// characters stay, so `/`, `?` and `#` cannot change the path.
pub fn encode_path_segment(segment: &str) -> String {
    utf8_percent_encode(segment, NOT_UNRESERVED).to_string()
}

/// The origin of an `http`/`https` URL: `scheme://host:port`, lower case, with
/// the default port made explicit and any user info dropped. `None` for other
/// schemes and for text that is not such a URL.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?.to_ascii_lowercase();
    if host_port.is_empty() {
        return None;
    }
    let has_port = match host_port.rfind(':') {
        // `[::1]` has colons but no port; `[::1]:8080` has one.
        Some(i) => !host_port[i..].contains(']'),
        None => false,
    };
    Some(if has_port {
        format!("{scheme}://{host_port}")
    } else {
        format!("{scheme}://{host_port}:{default_port}")
    })
}

/// Whether two URLs have the same origin (both must be `http`/`https` URLs).
pub fn same_origin(a: &str, b: &str) -> bool {
    matches!((origin(a), origin(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_everything_but_unreserved() {
        assert_eq!(encode_query_value("id asc"), "id%20asc");
        assert_eq!(
            encode_query_value(r#"name = "a&b""#),
            "name%20%3D%20%22a%26b%22"
        );
        assert_eq!(encode_query_value("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(
            encode_query_value("api+x@msp.example"),
            "api%2Bx%40msp.example"
        );
        assert_eq!(encode_query_value("Zoë"), "Zo%C3%AB");
        assert_eq!(encode_path_segment("a/b?c#d"), "a%2Fb%3Fc%23d");
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin("https://Graph.Microsoft.com/v1.0/users?$top=1").as_deref(),
            Some("https://graph.microsoft.com:443")
        );
        assert_eq!(
            origin("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            origin("https://user@evil.example/x").as_deref(),
            Some("https://evil.example:443")
        );
        assert_eq!(origin("http://[::1]/x").as_deref(), Some("http://[::1]:80"));
        assert_eq!(
            origin("http://[::1]:9/x").as_deref(),
            Some("http://[::1]:9")
        );
        assert_eq!(origin("ftp://x.test/"), None);
        assert_eq!(origin("not a url"), None);
        assert_eq!(origin("https:///path"), None);

        assert!(same_origin(
            "https://graph.microsoft.com/v1.0",
            "https://GRAPH.microsoft.com:443/v1.0/users/delta?$skiptoken=x"
        ));
        assert!(!same_origin("https://a.test/x", "http://a.test/x"));
        assert!(!same_origin(
            "https://a.test/x",
            "https://a.test@evil.test/x"
        ));
        assert!(!same_origin("nonsense", "nonsense"));
    }
}
