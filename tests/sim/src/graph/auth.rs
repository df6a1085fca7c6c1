//! Entra ID v2.0 token endpoint (client credentials) and bearer token checks.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use base64::Engine;
use serde_json::json;

use super::{GraphState, TokenInfo};
use crate::store::Store;
use crate::util::{json_response, lock, parse_query};

/// Issues a token bound to `tenant`.
pub fn issue(g: &mut GraphState, tenant: &str, client_id: &str, lifetime: i64) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let exp = chrono::Utc::now().timestamp() + lifetime;
    let header = b64.encode(br#"{"typ":"JWT","alg":"RS256","kid":"sim"}"#);
    let payload = b64.encode(
        json!({
            "aud": "https://graph.microsoft.com",
            "iss": format!("https://sts.windows.net/{tenant}/"),
            "tid": tenant,
            "appid": client_id,
            "exp": exp,
            "roles": ["User.Read.All", "Calendars.ReadWrite", "Contacts.ReadWrite", "Group.Read.All"],
            "jti": uuid::Uuid::new_v4().to_string(),
        })
        .to_string(),
    );
    let sig = b64.encode(uuid::Uuid::new_v4().as_bytes());
    let token = format!("{header}.{payload}.{sig}");
    g.tokens.insert(
        token.clone(),
        TokenInfo {
            tenant: tenant.to_string(),
            client_id: client_id.to_string(),
            expires: exp,
        },
    );
    token
}

fn aad_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let trace = uuid::Uuid::new_v4().to_string();
    let corr = uuid::Uuid::new_v4().to_string();
    let ts = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    json_response(
        status,
        &json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {corr} Timestamp: {ts}"),
            "error_codes": [code],
            "timestamp": ts,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub fn token_endpoint(store: &Store, path: &str, method: &Method, body: &[u8]) -> Response {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let tenant_key = segs.first().copied().unwrap_or("");
    if method != Method::POST
        || segs.len() != 4
        || !segs[1].eq_ignore_ascii_case("oauth2")
        || !segs[3].eq_ignore_ascii_case("token")
    {
        return aad_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            900561,
            "The endpoint only accepts POST requests.",
        );
    }
    let form = parse_query(Some(&String::from_utf8_lossy(body)));
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let grant = get("grant_type");
    let client_id = get("client_id");
    let secret = get("client_secret");
    let scope = get("scope");
    let sc = store.scenarios();
    let mut g = lock(&store.graph);
    let Some(ti) = g.tenant_index(tenant_key) else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant_key}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
        );
    };
    if grant.is_empty() {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        );
    }
    if grant != "client_credentials" {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant}'."),
        );
    }
    let tenant = g.tenants[ti].clone();
    let app = tenant
        .apps
        .iter()
        .find(|a| a.client_id.eq_ignore_ascii_case(&client_id));
    if app.is_none() || sc.other_tenant {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", tenant.domain),
        );
    }
    if secret.is_empty() {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    }
    if sc.wrong_password || app.is_some_and(|a| a.client_secret != secret) {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'.",
        );
    }
    if sc.mfa_required {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            50076,
            "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '00000003-0000-0000-c000-000000000000'.",
        );
    }
    if !scope.ends_with("/.default") {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!("The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."),
        );
    }
    let token = issue(&mut g, &tenant.id, &client_id, 3599);
    json_response(
        StatusCode::OK,
        &json!({
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": token,
        }),
    )
}

/// Checks `Authorization: Bearer …`; returns the tenant id or a 401 answer.
pub fn check_bearer(
    g: &GraphState,
    auth: Option<&str>,
) -> Result<String, (StatusCode, &'static str, String)> {
    let err = |m: &str| {
        Err((
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            m.to_string(),
        ))
    };
    let Some(a) = auth else {
        return err("Access token is empty.");
    };
    let token = match a.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
        _ => return err("Access token is empty."),
    };
    if token.is_empty() {
        return err("Access token is empty.");
    }
    if token.matches('.').count() != 2 {
        return err("IDX14100: JWT is not well formed, there are no dots (.).");
    }
    match g.tokens.get(token) {
        None => err("Access token validation failure. Invalid audience."),
        Some(t) if t.expires <= chrono::Utc::now().timestamp() => {
            err("Lifetime validation failed, the token is expired.")
        }
        Some(t) => Ok(t.tenant.clone()),
    }
}
