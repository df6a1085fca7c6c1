//! Flow 3 (Dynamics 365 server-side synchronization): `/email-server-profiles`
//! and `/dynamics/...` (an organization's email settings and mailboxes).
//! Every rule is in `control::email_server_profiles` /
//! `control::dynamics_mailboxes`; this module extracts, authorizes, calls
//! once and shapes the answer.

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use super::Items;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use syncbridge_secrets::SecretString;
use syncbridge_service::control::dynamics_diagnose::Diagnosis;
use syncbridge_service::control::dynamics_flow::{self, Processing};
use syncbridge_service::control::dynamics_mailboxes::{
    self as mailboxes, DynamicsError, DynamicsMailbox, MailboxEdit, MailboxTest,
    ProcessingDefaults, Refreshed,
};
use syncbridge_service::control::email_server_profiles::{
    self as profiles, EmailServerProfile, EmailServerSettings, ProfileError, ProfileSecrets,
};
use syncbridge_service::control::tokens::Role;
use syncbridge_service::hub::Hub;
use utoipa::ToSchema;

/// An email server profile as shown (secrets never are).
#[derive(Debug, Serialize, ToSchema)]
pub struct EmailServerProfileOut {
    pub id: String,
    pub company_id: Option<String>,
    pub settings: EmailServerSettings,
    /// The connection the profile owns (`ews` or `graph`).
    pub connection_id: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<EmailServerProfile> for EmailServerProfileOut {
    fn from(p: EmailServerProfile) -> Self {
        Self {
            id: p.id,
            company_id: p.company_id,
            settings: p.settings,
            connection_id: p.connection_id,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// Body of `POST /email-server-profiles`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailServerProfileCreate {
    #[schema(example = "contoso-exchange")]
    pub id: String,
    #[serde(default)]
    pub company_id: Option<String>,
    pub settings: EmailServerSettings,
    /// The password of `incoming.username` (Exchange Online: the client
    /// secret); with the profile's credentials. Write-only.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub secret: Option<SecretString>,
    /// The password of `outgoing.username` when outgoing has its own account. Write-only.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub outgoing_secret: Option<SecretString>,
}

/// Body of `PUT /email-server-profiles/{id}`: the whole form.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailServerProfileUpdate {
    pub settings: EmailServerSettings,
    /// Re-enters the secret; required when a location or the account changes.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub secret: Option<SecretString>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub outgoing_secret: Option<SecretString>,
}

/// Body of `PUT /email-server-profiles/{id}/mailbox-credentials`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailboxCredentialIn {
    /// The mailbox's e-mail address.
    pub address: String,
    pub username: String,
    /// Write-only.
    #[schema(value_type = String)]
    pub secret: SecretString,
}

/// A flow-3 mailbox as shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct DynamicsMailboxOut {
    pub id: String,
    /// The Dynamics organization (its connection).
    pub organization: String,
    pub company_id: Option<String>,
    pub address: String,
    pub display_name: Option<String>,
    /// The Dataverse mailboxid.
    pub remote_id: Option<String>,
    pub enabled: bool,
    pub approved: bool,
    /// untested | ok | disabled-auth | test-failed
    pub status: String,
    pub status_detail: Option<String>,
    /// The profile and delivery methods (`server_profile`, `incoming`, `outgoing`, `act`).
    pub settings: serde_json::Value,
    /// The latest Test & Enable (statuses 0 Not Run, 1 Success, 2 Failure).
    pub test: Option<MailboxTest>,
}

impl From<DynamicsMailbox> for DynamicsMailboxOut {
    fn from(d: DynamicsMailbox) -> Self {
        let m = d.mailbox;
        Self {
            id: m.id,
            organization: m.connection_id,
            company_id: m.company_id,
            address: m.address,
            display_name: m.display_name,
            remote_id: d.remote_id,
            enabled: m.enabled,
            approved: m.approved,
            status: m.status,
            status_detail: m.status_detail,
            settings: m.settings,
            test: d.test,
        }
    }
}

/// Body of the mailbox operations on many.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailboxIds {
    /// Mailbox ids (`<organization>:<address>`).
    pub ids: Vec<String>,
}

/// Body of `POST /dynamics/mailboxes/apply-defaults`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyDefaultsIn {
    pub ids: Vec<String>,
    /// Test and enable the mailboxes afterwards (default true, as Dynamics does).
    #[serde(default = "yes")]
    pub test: bool,
}

fn yes() -> bool {
    true
}

/// Body of `POST /dynamics/mailboxes/edit`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditIn {
    pub ids: Vec<String>,
    /// What to set; absent fields are kept.
    pub set: MailboxEdit,
}

/// Answer of `POST /email-server-profiles/{id}/test`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduledOut {
    /// The mailboxes whose test was scheduled.
    pub scheduled: Vec<String>,
}

impl From<ProfileError> for ApiError {
    fn from(e: ProfileError) -> Self {
        match e {
            ProfileError::Store(e) => e.into(),
            ProfileError::Hub(e) => e.into(),
            ProfileError::Connection(e) => e.into(),
            ProfileError::Exists(_) | ProfileError::InUse { .. } => {
                ApiError::conflict(e.to_string())
            }
            ProfileError::SecretRequired(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                super::error::code::CREDENTIALS_REQUIRED,
                e.to_string(),
            ),
            _ => ApiError::invalid(e.to_string()),
        }
    }
}

impl From<DynamicsError> for ApiError {
    fn from(e: DynamicsError) -> Self {
        match e {
            DynamicsError::Store(e) => e.into(),
            DynamicsError::Profile(e) => e.into(),
            DynamicsError::Source(_) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                super::error::code::UPSTREAM,
                format!("{e}; test the organization's connection and try again"),
            ),
            _ => ApiError::invalid(e.to_string()),
        }
    }
}

fn shown(list: Vec<DynamicsMailbox>) -> Json<Items<DynamicsMailboxOut>> {
    Json(
        list.into_iter()
            .map(DynamicsMailboxOut::from)
            .collect::<Vec<_>>()
            .into(),
    )
}

#[utoipa::path(get, path = "/email-server-profiles", tag = "dynamics",
    responses((status = 200, description = "Email server profiles in the token's scope, by id", body = Items<EmailServerProfileOut>)))]
pub async fn list_profiles(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
) -> ApiResult<Json<Items<EmailServerProfileOut>>> {
    let all = profiles::list(&hub, caller.actor()).await?;
    Ok(Json(
        all.into_iter()
            .map(EmailServerProfileOut::from)
            .collect::<Vec<_>>()
            .into(),
    ))
}

#[utoipa::path(post, path = "/email-server-profiles", tag = "dynamics",
    request_body = EmailServerProfileCreate,
    responses(
        (status = 201, description = "Saved with its connection", body = EmailServerProfileOut),
        (status = 400, description = "`invalid_request`: a rule refused a field (anonymous, credentials over HTTP, ...); the message names the field and the remedy", body = ErrorBody),
        (status = 404, description = "No such company in the token's scope, or the profile's plugin (ews or graph) is not installed", body = ErrorBody),
        (status = 409, description = "`conflict`: the id exists", body = ErrorBody),
        (status = 422, description = "`credentials_required`: the profile's credentials need their secret", body = ErrorBody),
    ))]
pub async fn create_profile(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    ApiJson(b): ApiJson<EmailServerProfileCreate>,
) -> ApiResult<(StatusCode, Json<EmailServerProfileOut>)> {
    caller.require(Role::Admin)?;
    let company = caller.company_for_new(b.company_id)?;
    let p = profiles::create(
        &hub,
        caller.actor(),
        &b.id,
        company.as_deref(),
        b.settings,
        ProfileSecrets {
            incoming: b.secret,
            outgoing: b.outgoing_secret,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(p.into())))
}

#[utoipa::path(get, path = "/email-server-profiles/{id}", tag = "dynamics",
    params(("id" = String, Path, description = "Email server profile id")),
    responses(
        (status = 200, description = "The profile", body = EmailServerProfileOut),
        (status = 404, description = "No such profile in the token's scope", body = ErrorBody),
    ))]
pub async fn show_profile(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<EmailServerProfileOut>> {
    Ok(Json(profiles::get(&hub, caller.actor(), &id).await?.into()))
}

#[utoipa::path(put, path = "/email-server-profiles/{id}", tag = "dynamics",
    params(("id" = String, Path, description = "Email server profile id")),
    request_body = EmailServerProfileUpdate,
    responses(
        (status = 200, description = "Saved", body = EmailServerProfileOut),
        (status = 400, description = "`invalid_request`: a rule refused a field", body = ErrorBody),
        (status = 404, description = "No such profile in the token's scope", body = ErrorBody),
        (status = 409, description = "A sync using the profile's connection runs; try again when it ends", body = ErrorBody),
        (status = 422, description = "`credentials_required`: the change needs the secret entered again", body = ErrorBody),
    ))]
pub async fn update_profile(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<EmailServerProfileUpdate>,
) -> ApiResult<Json<EmailServerProfileOut>> {
    caller.require(Role::Admin)?;
    let p = profiles::update(
        &hub,
        caller.actor(),
        &id,
        b.settings,
        ProfileSecrets {
            incoming: b.secret,
            outgoing: b.outgoing_secret,
        },
    )
    .await?;
    Ok(Json(p.into()))
}

#[utoipa::path(delete, path = "/email-server-profiles/{id}", tag = "dynamics",
    params(("id" = String, Path, description = "Email server profile id")),
    responses(
        (status = 204, description = "Removed with its connection"),
        (status = 404, description = "No such profile in the token's scope", body = ErrorBody),
        (status = 409, description = "Mailboxes or an organization's defaults still name it", body = ErrorBody),
    ))]
pub async fn remove_profile(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    profiles::remove(&hub, caller.actor(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/email-server-profiles/{id}/mailbox-credentials", tag = "dynamics",
    params(("id" = String, Path, description = "Email server profile id")),
    request_body = MailboxCredentialIn,
    responses(
        (status = 204, description = "Sealed in the profile's connection for that mailbox"),
        (status = 400, description = "The profile uses its own credentials, or a field is missing", body = ErrorBody),
        (status = 404, description = "No such profile in the token's scope", body = ErrorBody),
        (status = 409, description = "A sync using the profile's connection runs; try again when it ends", body = ErrorBody),
    ))]
pub async fn put_mailbox_credential(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<MailboxCredentialIn>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    profiles::set_mailbox_credential(&hub, caller.actor(), &id, &b.address, &b.username, b.secret)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/email-server-profiles/{id}/test", tag = "dynamics",
    params(("id" = String, Path, description = "Email server profile id")),
    responses(
        (status = 202, description = "A test of every mailbox of the profile is scheduled; the background job fills their statuses", body = ScheduledOut),
        (status = 404, description = "No such profile in the token's scope", body = ErrorBody),
    ))]
pub async fn test_profile(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<ScheduledOut>)> {
    caller.require(Role::Admin)?;
    let scheduled = mailboxes::test_profile(&hub, caller.actor(), &id).await?;
    Ok((StatusCode::ACCEPTED, Json(ScheduledOut { scheduled })))
}

#[utoipa::path(get, path = "/dynamics/{org}/email-settings", tag = "dynamics",
    params(("org" = String, Path, description = "The Dynamics organization's connection id")),
    responses(
        (status = 200, description = "The default email processing", body = ProcessingDefaults),
        (status = 400, description = "The connection is not a Dynamics organization", body = ErrorBody),
        (status = 404, description = "No such connection in the token's scope", body = ErrorBody),
    ))]
pub async fn show_defaults(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(org): Path<String>,
) -> ApiResult<Json<ProcessingDefaults>> {
    Ok(Json(mailboxes::defaults(&hub, caller.actor(), &org).await?))
}

#[utoipa::path(put, path = "/dynamics/{org}/email-settings", tag = "dynamics",
    params(("org" = String, Path, description = "The Dynamics organization's connection id")),
    request_body = ProcessingDefaults,
    responses(
        (status = 200, description = "Saved", body = ProcessingDefaults),
        (status = 400, description = "The connection is not a Dynamics organization", body = ErrorBody),
        (status = 404, description = "No such connection or profile in the token's scope", body = ErrorBody),
    ))]
pub async fn put_defaults(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(b): ApiJson<ProcessingDefaults>,
) -> ApiResult<Json<ProcessingDefaults>> {
    caller.require(Role::Admin)?;
    Ok(Json(
        mailboxes::set_defaults(&hub, caller.actor(), &org, b).await?,
    ))
}

#[utoipa::path(post, path = "/dynamics/{org}/mailboxes/refresh", tag = "dynamics",
    params(("org" = String, Path, description = "The Dynamics organization's connection id")),
    responses(
        (status = 200, description = "The organization's active mailboxes were read", body = Refreshed),
        (status = 400, description = "The connection is not a Dynamics organization", body = ErrorBody),
        (status = 404, description = "No such connection in the token's scope", body = ErrorBody),
        (status = 502, description = "`upstream`: Dynamics did not answer as expected", body = ErrorBody),
    ))]
pub async fn refresh(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(org): Path<String>,
) -> ApiResult<Json<Refreshed>> {
    caller.require(Role::Admin)?;
    Ok(Json(mailboxes::refresh(&hub, caller.actor(), &org).await?))
}

#[utoipa::path(get, path = "/dynamics/{org}/mailboxes", tag = "dynamics",
    params(("org" = String, Path, description = "The Dynamics organization's connection id")),
    responses(
        (status = 200, description = "The organization's mailboxes, by address", body = Items<DynamicsMailboxOut>),
        (status = 400, description = "The connection is not a Dynamics organization", body = ErrorBody),
        (status = 404, description = "No such connection in the token's scope", body = ErrorBody),
    ))]
pub async fn list_mailboxes(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(org): Path<String>,
) -> ApiResult<Json<Items<DynamicsMailboxOut>>> {
    Ok(shown(mailboxes::list(&hub, caller.actor(), &org).await?))
}

#[utoipa::path(get, path = "/dynamics/mailboxes/{id}", tag = "dynamics",
    params(("id" = String, Path, description = "Mailbox id (`<organization>:<address>`)")),
    responses(
        (status = 200, description = "The mailbox and its latest test", body = DynamicsMailboxOut),
        (status = 400, description = "The mailbox is not a Dynamics organization's", body = ErrorBody),
        (status = 404, description = "No such mailbox in the token's scope", body = ErrorBody),
    ))]
pub async fn show_mailbox(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<DynamicsMailboxOut>> {
    Ok(Json(
        mailboxes::get(&hub, caller.actor(), &id).await?.into(),
    ))
}

#[utoipa::path(post, path = "/dynamics/mailboxes/apply-defaults", tag = "dynamics",
    request_body = ApplyDefaultsIn,
    responses(
        (status = 200, description = "Configured from the organization's defaults (and scheduled for Test & Enable unless test=false)", body = Items<DynamicsMailboxOut>),
        (status = 400, description = "No default profile, or an id is not a flow-3 mailbox; nothing changed", body = ErrorBody),
        (status = 404, description = "No such mailbox (or profile) in the token's scope", body = ErrorBody),
    ))]
pub async fn apply_defaults(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    ApiJson(b): ApiJson<ApplyDefaultsIn>,
) -> ApiResult<Json<Items<DynamicsMailboxOut>>> {
    caller.require(Role::Admin)?;
    Ok(shown(
        mailboxes::apply_defaults(&hub, caller.actor(), &b.ids, b.test).await?,
    ))
}

#[utoipa::path(post, path = "/dynamics/mailboxes/edit", tag = "dynamics",
    request_body = EditIn,
    responses(
        (status = 200, description = "Changed (all or nothing)", body = Items<DynamicsMailboxOut>),
        (status = 400, description = "Nothing to change, or an id is not a flow-3 mailbox", body = ErrorBody),
        (status = 404, description = "No such mailbox (or profile) in the token's scope", body = ErrorBody),
    ))]
pub async fn edit(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    ApiJson(b): ApiJson<EditIn>,
) -> ApiResult<Json<Items<DynamicsMailboxOut>>> {
    caller.require(Role::Admin)?;
    Ok(shown(
        mailboxes::edit_many(&hub, caller.actor(), &b.ids, &b.set).await?,
    ))
}

#[utoipa::path(post, path = "/dynamics/mailboxes/approve", tag = "dynamics",
    request_body = MailboxIds,
    responses(
        (status = 200, description = "Approved for email processing", body = Items<DynamicsMailboxOut>),
        (status = 400, description = "An id is not a flow-3 mailbox; nothing changed", body = ErrorBody),
        (status = 404, description = "No such mailbox (or profile) in the token's scope", body = ErrorBody),
    ))]
pub async fn approve(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    ApiJson(b): ApiJson<MailboxIds>,
) -> ApiResult<Json<Items<DynamicsMailboxOut>>> {
    caller.require(Role::Admin)?;
    Ok(shown(
        mailboxes::approve_many(&hub, caller.actor(), &b.ids).await?,
    ))
}

#[utoipa::path(post, path = "/dynamics/mailboxes/test-and-enable", tag = "dynamics",
    request_body = MailboxIds,
    responses(
        (status = 202, description = "Scheduled; the background job fills the statuses, enables or disables each mailbox and alerts its owner", body = Items<DynamicsMailboxOut>),
        (status = 400, description = "An id is not a flow-3 mailbox; nothing scheduled", body = ErrorBody),
        (status = 404, description = "No such mailbox (or profile) in the token's scope", body = ErrorBody),
    ))]
pub async fn test_and_enable(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    ApiJson(b): ApiJson<MailboxIds>,
) -> ApiResult<(StatusCode, Json<Items<DynamicsMailboxOut>>)> {
    caller.require(Role::Admin)?;
    let list = mailboxes::test_and_enable(&hub, caller.actor(), &b.ids).await?;
    Ok((StatusCode::ACCEPTED, shown(list)))
}

#[utoipa::path(post, path = "/dynamics/mailboxes/{id}/diagnose", tag = "dynamics",
    params(("id" = String, Path, description = "Mailbox id (`<organization>:<address>`)")),
    responses(
        (status = 200, description = "KB 3212785's diagnosis: the evidence gathered through the profile's connector, the cause that applies (1 to 5) and its resolution", body = Diagnosis),
        (status = 400, description = "The mailbox has no email server profile, or is not a Dynamics organization's", body = ErrorBody),
        (status = 404, description = "No such mailbox (or its profile) in the token's scope", body = ErrorBody),
    ))]
pub async fn diagnose(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Diagnosis>> {
    caller.require(Role::Operator)?;
    Ok(Json(mailboxes::diagnose(&hub, caller.actor(), &id).await?))
}

#[utoipa::path(get, path = "/dynamics/mailboxes/{id}/processing", tag = "dynamics",
    params(("id" = String, Path, description = "Mailbox id (`<organization>:<address>`)")),
    responses(
        (status = 200, description = "The mailbox's e-mail processing: per kind its engine profile, whether it runs, its latest run, sent e-mails not yet marked sent and messages moved to Undeliverable (none before its first successful Test & Enable)", body = Items<Processing>),
        (status = 400, description = "The mailbox is not a Dynamics organization's", body = ErrorBody),
        (status = 404, description = "No such mailbox in the token's scope", body = ErrorBody),
    ))]
pub async fn processing(
    State(hub): State<Arc<Hub>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Items<Processing>>> {
    Ok(Json(Items {
        items: dynamics_flow::processing(&hub, caller.actor(), &id).await?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_body_reads_flat() {
        let b: EditIn = serde_json::from_value(serde_json::json!({
            "ids": ["org:ann@contoso.com"], "set": {"server_profile": "p", "act": "none"}
        }))
        .unwrap();
        assert_eq!(b.set.server_profile.as_deref(), Some("p"));
        assert!(b.set.incoming.is_none());
    }
}
