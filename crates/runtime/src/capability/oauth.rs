//! OAuth2 client-credentials tokens, fetched by the host and cached until
//! shortly before they expire. Plugins only ever see the response of the API
//! call the token authorised, never the token.

use serde::Deserialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use syncbridge_secrets::SecretString;
use tokio::sync::Mutex;

/// Tokens are refreshed this long before they expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

#[derive(Clone)]
struct CachedToken {
    token: SecretString,
    expires: Instant,
}

/// A cache of tokens keyed by (connection, credential slot).
#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<(String, String), CachedToken>>,
}

/// Why a token could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The identity provider refused the client (bad secret, MFA, unknown tenant).
    #[error(
        "the token endpoint refused the client credentials (HTTP {status}): {error}: {description}"
    )]
    Refused {
        status: u16,
        error: String,
        description: String,
    },
    /// The identity provider could not be reached or answered garbage.
    #[error("the token endpoint could not be used: {0}")]
    Unavailable(String),
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize, Default)]
struct TokenErrorResponse {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Parameters of a client-credentials grant.
pub struct ClientCredentials<'a> {
    pub token_url: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a SecretString,
    pub scope: Option<&'a str>,
}

impl TokenCache {
    /// A cached token, or a new one from the token endpoint; `answered` is told
    /// the status of a token request (`None`: no answer), for the metrics.
    pub async fn token(
        &self,
        client: &reqwest::Client,
        key: (String, String),
        grant: ClientCredentials<'_>,
        answered: impl FnOnce(Option<u16>),
    ) -> Result<SecretString, TokenError> {
        let mut tokens = self.tokens.lock().await;
        if let Some(cached) = tokens.get(&key) {
            if cached.expires > Instant::now() + REFRESH_MARGIN {
                return Ok(cached.token.clone());
            }
        }
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", grant.client_id),
            ("client_secret", grant.client_secret.expose()),
        ];
        if let Some(scope) = grant.scope {
            form.push(("scope", scope));
        }
        let response = match client
            .post(grant.token_url)
            .form(&form)
            .timeout(Duration::from_secs(30))
            .send()
            .await
        {
            Ok(response) => response,
            Err(e) => {
                answered(None);
                return Err(TokenError::Unavailable(without_url(&e)));
            }
        };
        let status = response.status().as_u16();
        answered(Some(status));
        let body = response
            .bytes()
            .await
            .map_err(|e| TokenError::Unavailable(without_url(&e)))?;
        if !(200..300).contains(&status) {
            let err: TokenErrorResponse = serde_json::from_slice(&body).unwrap_or_default();
            return Err(TokenError::Refused {
                status,
                error: err.error,
                description: err
                    .error_description
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned(),
            });
        }
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| TokenError::Unavailable(format!("token response is not valid: {e}")))?;
        let expires = Instant::now() + Duration::from_secs(parsed.expires_in.unwrap_or(3600));
        tokens.insert(
            key,
            CachedToken {
                token: parsed.access_token.clone(),
                expires,
            },
        );
        Ok(parsed.access_token)
    }

    /// Forgets a token the API rejected, so the next call fetches a new one.
    pub async fn invalidate(&self, key: &(String, String)) {
        self.tokens.lock().await.remove(key);
    }
}

/// reqwest errors include the URL; token URLs carry no secrets, but keep errors short.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    match e.url() {
        Some(url) => format!("{kind} ({})", url.host_str().unwrap_or("?")),
        None => kind.to_owned(),
    }
}
