//! The API's one error shape, `{"error": {"code": "...", "message": "..."}}`,
//! and extractors whose rejections use it.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use syncbridge_runtime::config_schema::ConfigSchemaError;
use syncbridge_service::control::approval::ApplyError;
use syncbridge_service::control::connections::ConnectionError;
use syncbridge_service::control::plans::PlanError;
use syncbridge_service::control::profiles::ProfileError;
use syncbridge_service::control::runs::RunsError;
use syncbridge_service::hub::HubError;
use syncbridge_store::StoreError;
use utoipa::ToSchema;

/// Stable error codes.
pub mod code {
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const FORBIDDEN: &str = "forbidden";
    pub const NOT_FOUND: &str = "not_found";
    pub const CONFLICT: &str = "conflict";
    pub const SYNC_IN_PROGRESS: &str = "sync_in_progress";
    pub const INVALID_REQUEST: &str = "invalid_request";
    pub const PLAN_NOT_OPEN: &str = "plan_not_open";
    pub const INTERNAL: &str = "internal";
    /// The server is shutting down (503); try again once it is back.
    pub const UNAVAILABLE: &str = "unavailable";
    /// The outside system a connection talks to failed or refused (502).
    pub const UPSTREAM: &str = "upstream";
    /// A connection's own settings stop the call: a host not allowed, a
    /// private address, refused credentials, a configuration that does not
    /// fit its plugin's schema (422).
    pub const CONFIGURATION: &str = "configuration";
    /// The change needs the connection's credentials entered again (422).
    pub const CREDENTIALS_REQUIRED: &str = "credentials_required";
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong and what to do next.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// One of: unauthorized, forbidden, not_found, conflict, sync_in_progress,
    /// invalid_request, credentials_required, configuration, plan_not_open, upstream,
    /// unavailable, internal.
    #[schema(example = "not_found")]
    pub code: String,
    /// A sentence saying what went wrong and what to do next.
    pub message: String,
}

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code::FORBIDDEN, message)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            code::NOT_FOUND,
            format!("{what} {id:?} does not exist; list them to find the right id"),
        )
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code::CONFLICT, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code::INVALID_REQUEST, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL, message)
    }

    /// A run of the profile (or using the connection) is queued or running.
    pub fn sync_in_progress(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code::SYNC_IN_PROGRESS, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"syncbridge\""),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, id } => ApiError::not_found(what, &id),
            StoreError::AlreadyExists { what, id } => ApiError::conflict(format!(
                "{what} {id:?} already exists; choose another id or update the existing one"
            )),
            StoreError::InUse(message) => ApiError::conflict(message),
            // Two creates of one id raced past the existence check.
            StoreError::Query(e) if syncbridge_service::control::is_unique_violation(&e) => ApiError::conflict(
                "an object with this id was created meanwhile; choose another id or update the existing one",
            ),
            StoreError::Query(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_foreign_key_violation()) =>
            {
                ApiError::conflict(
                    "other objects still refer to this one (or it refers to one that does not exist); remove or fix those first",
                )
            }
            other => {
                // Database errors can carry statement text; log them, answer plainly.
                tracing::error!(error = %other, "API store error");
                ApiError::internal(
                    "the database could not complete the request; see the server log and try again",
                )
            }
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Query(e).into()
    }
}

impl From<RunsError> for ApiError {
    fn from(e: RunsError) -> Self {
        match e {
            RunsError::InProgress { .. } => ApiError::sync_in_progress(e.to_string()),
            RunsError::Store(e) => e.into(),
        }
    }
}

impl From<ConnectionError> for ApiError {
    fn from(e: ConnectionError) -> Self {
        match e {
            ConnectionError::Store(e) => e.into(),
            ConnectionError::Invalid(message) => ApiError::invalid(message),
            ConnectionError::Plugin(e) => e.into(),
            ConnectionError::InUse(message) => ApiError::conflict(message),
            ConnectionError::CredentialsRequired { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code::CREDENTIALS_REQUIRED,
                e.to_string(),
            ),
            ConnectionError::Shared { .. } => ApiError::forbidden(e.to_string()),
            ConnectionError::ScopeViolation { .. } => ApiError::invalid(e.to_string()),
            ConnectionError::SyncInProgress { .. } => ApiError::sync_in_progress(e.to_string()),
        }
    }
}

impl From<ProfileError> for ApiError {
    fn from(e: ProfileError) -> Self {
        match e {
            ProfileError::Store(e) => e.into(),
            ProfileError::Invalid(message) => ApiError::invalid(message),
            ProfileError::Mapper(e) => e.into(),
            ProfileError::Exists(_) => ApiError::conflict(e.to_string()),
            ProfileError::ScopeViolation { .. } => ApiError::invalid(e.to_string()),
            ProfileError::SyncInProgress { .. } => ApiError::sync_in_progress(e.to_string()),
        }
    }
}

impl From<PlanError> for ApiError {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::NotOpen { .. } => {
                ApiError::new(StatusCode::CONFLICT, code::PLAN_NOT_OPEN, e.to_string())
            }
            PlanError::Store(e) => e.into(),
        }
    }
}

impl From<ApplyError> for ApiError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Plan(e) => e.into(),
            ApplyError::Runs(e) => e.into(),
            ApplyError::Store(e) => e.into(),
        }
    }
}

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        match e {
            HubError::Store(e) => e.into(),
            HubError::Invalid(message) => ApiError::invalid(message),
            HubError::Package(e) => ApiError::invalid(e.to_string()),
            HubError::Runtime(e) => ApiError::invalid(e.to_string()),
            HubError::Secret(e) => {
                // Secret errors name keys and kinds, never values.
                tracing::error!(error = %e, "API secret error");
                ApiError::internal(format!("{e}"))
            }
            HubError::Call(e) => ApiError::internal(e.to_string()),
            HubError::ConfigSchema(e @ ConfigSchemaError::Mismatch { .. }) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code::CONFIGURATION,
                e.to_string(),
            ),
            HubError::ConfigSchema(e @ ConfigSchemaError::BadSchema { .. }) => {
                ApiError::internal(e.to_string())
            }
            HubError::Fields { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code::CONFIGURATION,
                e.to_string(),
            ),
            HubError::CredentialUnbound { .. } | HubError::CorruptBinding { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code::CREDENTIALS_REQUIRED,
                e.to_string(),
            ),
            HubError::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                code::UNAVAILABLE,
                e.to_string(),
            ),
            HubError::Files { .. } => {
                tracing::error!(error = %e, "API file error");
                ApiError::internal(
                    "the server could not write the plugin files; see the server log",
                )
            }
        }
    }
}

/// serde messages quote the offending value (`invalid type: string "…"`),
/// which may be a secret the client put in the wrong place: drop quoted text.
pub fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut in_quote = false;
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if !in_quote => {
                in_quote = true;
                out.push_str("\"…");
            }
            '\\' if in_quote => {
                chars.next();
            }
            '"' => {
                in_quote = false;
                out.push('"');
            }
            c if !in_quote => out.push(c),
            _ => {}
        }
    }
    if in_quote {
        out.push('"');
    }
    out
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let text = rejection.body_text();
    let detail = text
        .split_once(": ")
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or(text);
    let detail = redact_quoted(&detail);
    match rejection {
        JsonRejection::JsonDataError(_) | JsonRejection::JsonSyntaxError(_) => ApiError::invalid(
            format!("the request body is not valid: {detail}; fix it and send it again"),
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::INVALID_REQUEST,
            "send the body as JSON with `Content-Type: application/json`",
        ),
        other => ApiError::new(
            other.status(),
            code::INVALID_REQUEST,
            format!("the request body could not be read: {detail}"),
        ),
    }
}

/// `application/json` or `application/*+json`, as axum's `Json` accepts.
fn is_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// `axum::Json` whose rejections answer in the API's error shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json_content_type(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code::INVALID_REQUEST,
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(bytes) => bytes,
            Err(rejection) => {
                return Err(ApiError::new(
                    rejection.status(),
                    code::INVALID_REQUEST,
                    format!(
                        "the request body could not be read: {}",
                        rejection.body_text()
                    ),
                ))
            }
        };
        // Every body is a JSON object; serde would also take a struct from an array.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::invalid(
                "the request body must be a JSON object; see the operation's schema in GET /api/v1/openapi.json",
            ));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Query` whose rejections answer in the API's error shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    let text = rejection.body_text();
    let detail = text
        .split_once(": ")
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or(text);
    ApiError::invalid(format!(
        "the query string is not valid: {}",
        redact_quoted(&detail)
    ))
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_are_dropped() {
        assert_eq!(
            redact_quoted(r#"invalid type: string "hunter2", expected a map at line 1"#),
            "invalid type: string \"…\", expected a map at line 1"
        );
        assert_eq!(redact_quoted(r#"a "b\"c" d"#), "a \"…\" d");
        assert_eq!(redact_quoted("no quotes"), "no quotes");
    }
}
