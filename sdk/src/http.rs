//! Outbound HTTP through the host, with JSON and XML helpers and error
//! classification.
//!
//! Authentication is never handled here: name a credential slot with
//! [`Request::credential`] and the host adds it.

use crate::bindings::connector::syncbridge::plugin::http as wit;
use crate::types::{Attribute, InvalidInput, PluginError, RemoteFailure, Throttle};

pub use wit::Method;

/// An outbound request under construction.
#[derive(Debug, Clone)]
pub struct Request {
    inner: wit::Request,
}

impl Request {
    /// A request with a method and absolute URL.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            inner: wit::Request {
                method,
                url: url.into(),
                headers: Vec::new(),
                body: None,
                credential: None,
                timeout_ms: None,
            },
        }
    }

    /// `GET url`.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// `POST url`.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    /// `PATCH url`.
    pub fn patch(url: impl Into<String>) -> Self {
        Self::new(Method::Patch, url)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.inner.headers.push(Attribute {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    /// Authenticates with the connection's credential `slot`.
    pub fn credential(mut self, slot: impl Into<String>) -> Self {
        self.inner.credential = Some(slot.into());
        self
    }

    /// Sets the request timeout (capped by the host at the call deadline).
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.inner.timeout_ms = Some(ms);
        self
    }

    /// Sets a raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.inner.body = Some(body.into());
        self
    }

    /// Sets a JSON body and content type.
    pub fn json<T: serde::Serialize>(self, value: &T) -> Result<Self, PluginError> {
        let body = serde_json::to_vec(value)
            .map_err(|e| PluginError::invalid(format!("cannot encode JSON body: {e}")))?;
        Ok(self
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(body))
    }

    /// Sets an XML body (e.g. a SOAP envelope) and content type.
    pub fn xml(self, document: impl Into<String>) -> Self {
        self.header("Content-Type", "text/xml; charset=utf-8")
            .body(document.into().into_bytes())
    }

    /// Sends the request through the host.
    pub fn send(self) -> Result<Response, PluginError> {
        transport::send(self.inner).map(Response)
    }

    /// The request as the WIT record (for tests and custom transports).
    pub fn as_wit(&self) -> &wit::Request {
        &self.inner
    }
}

/// A response from the host.
#[derive(Debug, Clone)]
pub struct Response(pub wit::Response);

impl Response {
    /// HTTP status code.
    pub fn status(&self) -> u16 {
        self.0.status
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Raw body.
    pub fn bytes(&self) -> &[u8] {
        &self.0.body
    }

    /// Body as UTF-8 text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.body).into_owned()
    }

    /// Fails with a classified [`PluginError`] unless the status is 2xx.
    pub fn error_for_status(self) -> Result<Self, PluginError> {
        if (200..300).contains(&self.status()) {
            Ok(self)
        } else {
            Err(classify_status(
                self.status(),
                self.header("Retry-After"),
                &self.text(),
            ))
        }
    }

    /// Decodes a 2xx JSON body; other statuses become classified errors.
    pub fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, PluginError> {
        let ok = self.error_for_status()?;
        serde_json::from_slice(ok.bytes()).map_err(|e| {
            PluginError::Remote(RemoteFailure {
                status: ok.status(),
                message: format!("the service answered with JSON we cannot read: {e}"),
            })
        })
    }
}

/// Parses `Retry-After` into milliseconds from now ([`crate::clock::now_ms`]):
/// delay-seconds (a decimal fraction is accepted and rounded up) or an
/// HTTP-date (IMF-fixdate, RFC 850 or asctime; a past date is 0). Anything
/// else is `None`. The one parser the host uses too.
pub fn parse_retry_after(value: &str) -> Option<u64> {
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_millis(crate::clock::now_ms());
    syncbridge_retry_after::parse_ms(value, now)
}

/// Maps an HTTP status (and body excerpt) to the error class the engine acts on.
pub fn classify_status(status: u16, retry_after: Option<&str>, body: &str) -> PluginError {
    let excerpt: String = body.chars().take(300).collect();
    let message = if excerpt.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {excerpt}")
    };
    match status {
        401 => PluginError::Auth(message),
        403 => PluginError::Forbidden(message),
        404 | 410 => PluginError::NotFound(message),
        409 | 412 => PluginError::Conflict(message),
        429 => PluginError::Throttled(Throttle {
            retry_after_ms: retry_after.and_then(parse_retry_after),
            message,
        }),
        400 | 422 => PluginError::Invalid(InvalidInput {
            message,
            fields: Vec::new(),
        }),
        408 | 500..=599 => match retry_after.and_then(parse_retry_after) {
            Some(ms) => PluginError::Throttled(Throttle {
                retry_after_ms: Some(ms),
                message,
            }),
            None => PluginError::Transient(message),
        },
        _ => PluginError::Remote(RemoteFailure { status, message }),
    }
}

#[cfg(target_arch = "wasm32")]
mod transport {
    use super::wit;
    use crate::types::PluginError;

    pub fn send(req: wit::Request) -> Result<wit::Response, PluginError> {
        wit::send(&req)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod transport {
    use super::wit;
    use crate::types::PluginError;

    pub fn send(req: wit::Request) -> Result<wit::Response, PluginError> {
        crate::testing::native_send(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_integer_and_decimal_seconds() {
        assert_eq!(parse_retry_after("2"), Some(2000));
        assert_eq!(parse_retry_after("2.128"), Some(2128));
        assert_eq!(parse_retry_after(" 0 "), Some(0));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn retry_after_dates_count_from_the_host_clock() {
        // Wed, 21 Oct 2026 07:28:00 GMT.
        crate::testing::set_now_ms(1_792_567_680_000);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2026 07:28:30 GMT"),
            Some(30_000)
        );
        assert_eq!(parse_retry_after("Wed, 21 Oct 2026 07:00:00 GMT"), Some(0));
        match classify_status(503, Some("Wed, 21 Oct 2026 07:29:00 GMT"), "") {
            PluginError::Throttled(t) => assert_eq!(t.retry_after_ms, Some(60_000)),
            other => panic!("expected throttled, got {other:?}"),
        }
    }

    #[test]
    fn statuses_map_to_error_classes() {
        assert_eq!(classify_status(401, None, "").class(), "auth");
        assert_eq!(classify_status(403, None, "").class(), "forbidden");
        assert_eq!(classify_status(404, None, "").class(), "not-found");
        assert_eq!(classify_status(400, None, "bad").class(), "invalid");
        assert_eq!(classify_status(503, None, "").class(), "transient");
        assert_eq!(classify_status(418, None, "").class(), "remote");
        match classify_status(429, Some("1.5"), "") {
            PluginError::Throttled(t) => assert_eq!(t.retry_after_ms, Some(1500)),
            other => panic!("expected throttled, got {other:?}"),
        }
    }
}
