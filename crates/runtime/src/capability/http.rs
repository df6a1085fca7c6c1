//! The `http` capability: outbound requests on behalf of plugins.
//!
//! Checks the allow-list and the private-address rule, injects the
//! connection's credentials, bounds time, size and concurrency, and turns
//! `Retry-After` into a throttled answer.

use super::address::{is_non_global, non_global};
use super::binding::CredentialBinding;
use super::hosts::{AllowList, Refusal};
use super::oauth::{ClientCredentials, TokenCache, TokenError};
use crate::metrics::Metrics;
use base64::Engine as _;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use syncbridge_secrets::Credential;
use tokio::sync::Semaphore;

/// Settings shared by every connection.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// PEM certificates of CAs the operator trusts in addition to the system roots.
    pub extra_ca_pems: Vec<Vec<u8>>,
    /// Largest response body accepted.
    pub max_response_bytes: usize,
    /// Timeout of a request that names none.
    pub default_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            extra_ca_pems: Vec::new(),
            max_response_bytes: 16 * 1024 * 1024,
            default_timeout: Duration::from_secs(30),
        }
    }
}

/// Why an outbound request did not produce a response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Transient(String),
    #[error("credential slot {slot:?}: {source}")]
    Auth {
        slot: String,
        #[source]
        source: TokenError,
    },
    #[error("throttled: {message}")]
    Throttled {
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("the response of {host} is larger than {limit} bytes; ask the plugin vendor to page smaller")]
    TooLarge { host: String, limit: usize },
    #[error("the host cannot build its HTTP client: {0}")]
    Setup(String),
}

/// An outbound request as the plugin asked for it.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub method: reqwest::Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub credential: Option<String>,
    pub timeout: Option<Duration>,
}

/// The answer handed back to the plugin.
#[derive(Debug, Clone)]
pub struct OutboundResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The process-wide HTTP clients: one refusing private addresses, one allowing them.
#[derive(Clone)]
pub struct HttpClients {
    public_only: reqwest::Client,
    private_ok: reqwest::Client,
    settings: Arc<HttpSettings>,
    tokens: Arc<TokenCache>,
    metrics: Arc<Metrics>,
}

/// DNS resolution that drops non-global addresses and refuses a name left with none.
struct PublicOnlyResolver;

#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to loopback, private or other non-public addresses, which this connection may not reach")]
struct PrivateAddressRefused(String);

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !is_non_global(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(PrivateAddressRefused(host))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl HttpClients {
    /// Builds the clients with the system roots plus the operator's CAs;
    /// requests and throttles are counted in `metrics`.
    pub fn new(settings: HttpSettings, metrics: Arc<Metrics>) -> Result<Self, HttpError> {
        let build = |public_only: bool| -> Result<reqwest::Client, HttpError> {
            let mut builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("syncbridge/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(10))
                .pool_max_idle_per_host(32);
            for pem in &settings.extra_ca_pems {
                let cert = reqwest::Certificate::from_pem(pem).map_err(|e| {
                    HttpError::Setup(format!("an operator CA certificate is not valid PEM: {e}"))
                })?;
                builder = builder.add_root_certificate(cert);
            }
            if public_only {
                builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
            }
            builder.build().map_err(|e| HttpError::Setup(e.to_string()))
        };
        Ok(Self {
            public_only: build(true)?,
            private_ok: build(false)?,
            settings: Arc::new(settings),
            tokens: Arc::new(TokenCache::default()),
            metrics,
        })
    }
}

/// A credential with what it was entered for.
#[derive(Debug, Clone)]
pub struct BoundCredential {
    pub credential: Credential,
    pub binding: CredentialBinding,
}

/// Everything the capability knows about one connection while a plugin runs.
/// Credentials live here, in host memory only.
#[derive(Clone)]
pub struct ConnectionHttp {
    pub connection_id: String,
    pub allow: AllowList,
    pub allow_private_network: bool,
    pub credentials: Arc<BTreeMap<String, BoundCredential>>,
    pub concurrency: Arc<Semaphore>,
    /// Requests in flight for the mailbox a mailbox-scope call addresses;
    /// set by the runtime for such calls.
    pub mailbox: Option<Arc<Semaphore>>,
}

impl HttpClients {
    /// Sends one request for a plugin, within `deadline`.
    pub async fn send(
        &self,
        conn: &ConnectionHttp,
        req: OutboundRequest,
        deadline: Instant,
    ) -> Result<OutboundResponse, HttpError> {
        let url = url::Url::parse(&req.url)
            .map_err(|e| HttpError::Invalid(format!("URL {:?} is not valid: {e}", req.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::Invalid(format!(
                "URL scheme {:?} is not allowed; use http or https",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .ok_or_else(|| HttpError::Invalid(format!("URL {:?} has no host", req.url)))?
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        self.check_destination(conn, &host, port)?;

        // The mailbox's permit first, so no connection permit is held while
        // waiting for a busy mailbox.
        let _mailbox_permit = match &conn.mailbox {
            Some(limit) => Some(
                limit
                    .acquire()
                    .await
                    .map_err(|_| HttpError::Transient("connection is shutting down".into()))?,
            ),
            None => None,
        };
        let _permit = conn
            .concurrency
            .acquire()
            .await
            .map_err(|_| HttpError::Transient("connection is shutting down".into()))?;

        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(HttpError::Transient(
                "the call deadline passed before the request was sent".into(),
            ));
        }
        let timeout = req
            .timeout
            .unwrap_or(self.settings.default_timeout)
            .min(remaining);
        let client = if conn.allow_private_network {
            &self.private_ok
        } else {
            &self.public_only
        };

        let mut retried_token = false;
        loop {
            let mut builder = client
                .request(req.method.clone(), url.clone())
                .timeout(timeout);
            for (name, value) in &req.headers {
                if name.eq_ignore_ascii_case("authorization") && req.credential.is_some() {
                    continue;
                }
                builder = builder.header(name, value);
            }
            if let Some(body) = &req.body {
                builder = builder.body(body.clone());
            }
            if let Some(slot) = &req.credential {
                builder = self.authenticate(conn, slot, &host, port, builder).await?;
            }
            let response = builder.send().await.map_err(|e| {
                self.metrics.outbound(&conn.connection_id, &host, None);
                classify_send_error(&e, &host, timeout)
            })?;
            let status = response.status().as_u16();
            self.metrics
                .outbound(&conn.connection_id, &host, Some(status));

            if status == 401 && !retried_token {
                if let Some(slot) = &req.credential {
                    if let Some(
                        bound @ BoundCredential {
                            credential: Credential::Oauth2ClientCredentials { .. },
                            ..
                        },
                    ) = conn.credentials.get(slot)
                    {
                        // The cached token may have been revoked: fetch a fresh one once.
                        self.tokens
                            .invalidate(&token_key(&conn.connection_id, slot, bound))
                            .await;
                        retried_token = true;
                        continue;
                    }
                }
            }

            let headers: Vec<(String, String)> = response
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect();
            let retry_after = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                .and_then(|(_, v)| parse_retry_after(v));
            let body = read_capped(response, self.settings.max_response_bytes, &host).await?;
            if status == 429 || (status == 503 && retry_after.is_some()) {
                self.metrics.throttled(&conn.connection_id, &host);
                let excerpt = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                return Err(HttpError::Throttled {
                    retry_after,
                    message: format!("{host} answered HTTP {status}: {excerpt}"),
                });
            }
            return Ok(OutboundResponse {
                status,
                headers,
                body,
            });
        }
    }

    fn check_destination(
        &self,
        conn: &ConnectionHttp,
        host: &str,
        port: u16,
    ) -> Result<(), HttpError> {
        if let Err(refusal) = conn.allow.check(host, port) {
            let why = match refusal {
                Refusal::Manifest => {
                    "the plugin's manifest does not list it in allowed-outbound-hosts".to_owned()
                }
                Refusal::Connection => format!(
                    "connection {:?} does not allow it; add it with --allow-host {host}",
                    conn.connection_id
                ),
            };
            return Err(HttpError::Refused(format!(
                "outbound host {host}:{port} is not allowed: {why}"
            )));
        }
        let literal: Option<IpAddr> = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok();
        if let (Some(ip), false) = (literal, conn.allow_private_network) {
            if let Some(range) = non_global(ip) {
                return Err(HttpError::Refused(format!(
                    "{ip} is not a public address ({range}); allow private networks on connection {:?} if this is intended",
                    conn.connection_id
                )));
            }
        }
        Ok(())
    }

    async fn authenticate(
        &self,
        conn: &ConnectionHttp,
        slot: &str,
        host: &str,
        port: u16,
        builder: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, HttpError> {
        let bound = conn.credentials.get(slot).ok_or_else(|| {
            HttpError::Invalid(format!(
                "connection {:?} has no credential in slot {slot:?}; add one with `syncbridge connection update {} --credentials-file FILE`",
                conn.connection_id, conn.connection_id
            ))
        })?;
        if !bound.binding.permits(host, port) {
            return Err(HttpError::Refused(format!(
                "the credential in slot {slot:?} of connection {:?} was entered for {}, not for {host}:{port}; it is not sent anywhere else (enter it again for the new host)",
                conn.connection_id,
                bound.binding.allowed_hosts.join(", ")
            )));
        }
        Ok(match &bound.credential {
            Credential::Basic { username, password } => {
                let raw = format!("{username}:{}", password.expose());
                let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
                builder.header("Authorization", format!("Basic {encoded}"))
            }
            Credential::Headers { headers } => headers
                .iter()
                .fold(builder, |b, (name, value)| b.header(name, value.expose())),
            Credential::Bearer { token } => builder.bearer_auth(token.expose()),
            Credential::Oauth2ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
            } => {
                let client = if conn.allow_private_network {
                    &self.private_ok
                } else {
                    &self.public_only
                };
                let token_host = url::Url::parse(token_url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or_default();
                // Token requests are outbound requests of the connection too.
                let answered = |status: Option<u16>| {
                    self.metrics
                        .outbound(&conn.connection_id, &token_host, status);
                    if status == Some(429) {
                        self.metrics.throttled(&conn.connection_id, &token_host);
                    }
                };
                let token = self
                    .tokens
                    .token(
                        client,
                        token_key(&conn.connection_id, slot, bound),
                        ClientCredentials {
                            token_url,
                            client_id,
                            client_secret,
                            scope: scope.as_deref(),
                        },
                        answered,
                    )
                    .await
                    .map_err(|source| HttpError::Auth {
                        slot: slot.to_owned(),
                        source,
                    })?;
                builder.bearer_auth(token.expose())
            }
        })
    }
}

/// The token cache key of a credential: its connection and slot, and a
/// digest of the credential with its binding, so a token fetched with a
/// credential entered earlier (or for other hosts) is never reused after the
/// credential or its binding changed.
fn token_key(connection: &str, slot: &str, bound: &BoundCredential) -> (String, String) {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    digest.update(bound.credential.to_json());
    digest.update(bound.binding.to_json());
    (
        connection.to_owned(),
        format!("{slot}#{}", hex::encode(&digest.finalize()[..16])),
    )
}

/// `Retry-After` as a wait from now: delay-seconds or an HTTP-date, read by
/// the parser the SDK uses too (`syncbridge-retry-after`).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    syncbridge_retry_after::parse(value, std::time::SystemTime::now())
}

fn classify_send_error(e: &reqwest::Error, host: &str, timeout: Duration) -> HttpError {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<PrivateAddressRefused>() {
            return HttpError::Refused(format!(
                "{refused}; allow private networks on the connection if this is intended"
            ));
        }
        source = err.source();
    }
    if e.is_timeout() {
        HttpError::Transient(format!(
            "{host} did not answer within {} ms",
            timeout.as_millis()
        ))
    } else if e.is_connect() {
        let detail = error_chain(e);
        if detail.contains("certificate") || detail.contains("UnknownIssuer") {
            HttpError::Refused(format!(
                "TLS to {host} failed: the certificate is not trusted ({detail}); add its CA with --ca-cert"
            ))
        } else {
            HttpError::Transient(format!("cannot connect to {host}: {detail}"))
        }
    } else {
        HttpError::Transient(format!("request to {host} failed: {}", error_chain(e)))
    }
}

/// The innermost causes of an error, joined, without the URL.
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        parts.push(err.to_string());
        source = err.source();
    }
    parts.dedup();
    parts.join(": ")
}

async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
    host: &str,
) -> Result<Vec<u8>, HttpError> {
    if response
        .content_length()
        .is_some_and(|n| n as usize > limit)
    {
        return Err(HttpError::TooLarge {
            host: host.to_owned(),
            limit,
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| HttpError::Transient(format!("reading the response of {host} failed: {e}")))?
    {
        if body.len() + chunk.len() > limit {
            return Err(HttpError::TooLarge {
                host: host.to_owned(),
                limit,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use syncbridge_secrets::SecretString;

    /// A loopback listener counting the connections it accepts.
    async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((_socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        (port, accepted)
    }

    #[tokio::test]
    async fn a_credential_is_never_attached_outside_its_binding() {
        let (port, accepted) = counting_listener().await;
        // The allow-list lets the request through; the credential's binding does not.
        let binding = CredentialBinding::of_parts(
            &serde_json::json!({"base_url": "https://api.example.com"}),
            &["api.example.com".to_owned()],
            false,
        );
        let conn = ConnectionHttp {
            connection_id: "c".into(),
            allow: AllowList::new(&["*".into()], &["*".into()]),
            allow_private_network: true,
            credentials: Arc::new(BTreeMap::from([(
                "default".to_owned(),
                BoundCredential {
                    credential: Credential::Bearer {
                        token: SecretString::new("t0ken-never-sent"),
                    },
                    binding,
                },
            )])),
            concurrency: Arc::new(Semaphore::new(1)),
            mailbox: None,
        };
        let clients = HttpClients::new(HttpSettings::default(), Default::default()).unwrap();
        let request = |credential: Option<&str>| OutboundRequest {
            method: reqwest::Method::GET,
            url: format!("http://127.0.0.1:{port}/"),
            headers: Vec::new(),
            body: None,
            credential: credential.map(str::to_owned),
            timeout: Some(Duration::from_millis(500)),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let err = clients
            .send(&conn, request(Some("default")), deadline)
            .await
            .unwrap_err();
        let HttpError::Refused(message) = err else {
            panic!("expected a refusal, got {err:?}");
        };
        assert!(message.contains("api.example.com"), "{message}");
        assert!(!message.contains("t0ken"), "{message}");
        assert_eq!(accepted.load(Ordering::SeqCst), 0, "nothing was sent");
        // Positive control: without the credential the request does go out.
        let _ = clients.send(&conn, request(None), deadline).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }
}
