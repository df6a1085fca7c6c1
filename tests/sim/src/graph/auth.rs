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
            &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."),
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

/// `GET /{tenant}/v2.0/.well-known/openid-configuration` (and the v1 form without `/v2.0`):
/// Entra's OpenID Connect discovery document of a tenant, addressed by id or domain, with
/// every endpoint on this simulator. An unknown tenant is Entra's 400 `invalid_tenant`.
pub fn openid_configuration(store: &Store, path: &str) -> Response {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let v2 = segs.len() == 4 && segs[1].eq_ignore_ascii_case("v2.0");
    let v1 = segs.len() == 3;
    let tenant_key = segs.first().copied().unwrap_or("");
    if !(v1 || v2) {
        return aad_error(
            StatusCode::NOT_FOUND,
            "invalid_request",
            900561,
            "The endpoint is not supported.",
        );
    }
    let g = lock(&store.graph);
    // `common`, `organizations` and `consumers` are the multi-tenant authorities.
    let multi = ["common", "organizations", "consumers"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(tenant_key));
    let tid = match g.tenant_index(tenant_key) {
        Some(i) => g.tenants[i].id.clone(),
        None if multi => tenant_key.to_ascii_lowercase(),
        None => {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_tenant",
                90002,
                &format!("Tenant '{tenant_key}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."),
            )
        }
    };
    drop(g);
    let base = store.base_url();
    let issuer_tid = if multi { "{tenantid}" } else { tid.as_str() };
    let doc = if v2 {
        json!({
            "token_endpoint": format!("{base}/{tid}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base}/{tid}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("{base}/{issuer_tid}/v2.0"),
            "request_uri_parameter_supported": false,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/devicecode"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{base}/{tid}/oauth2/v2.0/logout"),
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
            "kerberos_endpoint": format!("{base}/{tid}/kerberos"),
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        })
    } else {
        json!({
            "token_endpoint": format!("{base}/{tid}/oauth2/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base}/common/discovery/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
            "scopes_supported": ["openid"],
            "issuer": format!("https://sts.windows.net/{issuer_tid}/"),
            "microsoft_multi_refresh_token": true,
            "authorization_endpoint": format!("{base}/{tid}/oauth2/authorize"),
            "device_authorization_endpoint": format!("{base}/{tid}/oauth2/devicecode"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{base}/{tid}/oauth2/logout"),
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email", "given_name", "family_name", "nickname"],
            "check_session_iframe": format!("{base}/{tid}/oauth2/checksession"),
            "userinfo_endpoint": format!("{base}/{tid}/openid/userinfo"),
            "kerberos_endpoint": format!("{base}/{tid}/kerberos"),
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        })
    };
    json_response(StatusCode::OK, &doc)
}

/// `GET /common/discovery/instance?authorization_endpoint=…&api-version=…`: Entra's instance
/// discovery. An authorization endpoint on this simulator's host (or on Microsoft's public
/// cloud) is known: the answer names its tenant's discovery document and the cloud's host
/// aliases; any other host is Entra's 400 `invalid_instance` (AADSTS50049).
pub fn instance_discovery(store: &Store, query: Option<&str>) -> Response {
    let q = parse_query(query);
    let get = |k: &str| {
        q.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    let api = get("api-version").unwrap_or_default();
    if api.is_empty() {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900143,
            "The request body must contain the following parameter: 'api-version'.",
        );
    }
    let auth = get("authorization_endpoint").unwrap_or_default();
    let base = store.base_url();
    let sim_host = base
        .split_once("://")
        .map(|(_, h)| h.to_ascii_lowercase())
        .unwrap_or_default();
    let sim_port = sim_host.rsplit_once(':').map(|(_, p)| p.to_string());
    let (host, path) = auth
        .split_once("://")
        .map(|(_, rest)| rest.split_once('/').unwrap_or((rest, "")))
        .unwrap_or(("", ""));
    let host = host.to_ascii_lowercase();
    let is_sim = host == sim_host
        || sim_port
            .as_deref()
            .is_some_and(|p| host == format!("localhost:{p}"));
    let public = [
        "login.microsoftonline.com",
        "login.windows.net",
        "login.microsoft.com",
        "sts.windows.net",
    ];
    if !is_sim && !public.contains(&host.as_str()) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_instance",
            50049,
            "Unknown or invalid instance.",
        );
    }
    let tenant = path
        .split('/')
        .next()
        .filter(|t| !t.is_empty())
        .unwrap_or("common");
    json_response(
        StatusCode::OK,
        &json!({
            "tenant_discovery_endpoint": format!("{base}/{tenant}/v2.0/.well-known/openid-configuration"),
            "api-version": api,
            "metadata": [
                {"preferred_network": sim_host, "preferred_cache": sim_host, "aliases": [sim_host]},
                {"preferred_network": "login.microsoftonline.com", "preferred_cache": "login.windows.net",
                 "aliases": ["login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"]},
            ],
        }),
    )
}
