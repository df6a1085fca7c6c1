//! The Resources tab of an Exchange profile: every PSA resource (read from
//! the profile's PSA connection, scope `resources`), enabled one, several or
//! all at a time, each with its own settings and "Last Attempted
//! Synchronization".
//!
//! An enabled resource is a mailbox row of the profile's connection
//! (`control::mailboxes`, id `<connection>:<address>`), approved and enabled,
//! whose settings are the resource's toggles ([`ResourceSettings`]); a
//! permanent authentication error disables that mailbox only
//! ([`disable_for_auth`]), with an alert, never the profile.

use super::exchange_profiles::{
    self as profiles, ExchangeError, ExchangeProfile, ImportAppointments, SyncSettings,
};
use super::{alerts, connections, mailboxes, Actor};
use crate::control::connections::ConnectionChange;
use crate::hub::Hub;
use crate::plugin_endpoints::ConnectionEndpoint;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::collections::BTreeMap;
use syncbridge_model::ItemBody;
use syncbridge_secrets::Credential;
use syncbridge_store::{now_ms, Store, StoreError};
use syncbridge_sync::endpoint::Source;
use syncbridge_sync::retry::RetryPolicy;
use syncbridge_sync::EndpointError;

/// The PSA connector scope that lists resources.
pub const RESOURCES_SCOPE: &str = "resources";
/// Most pages one discovery reads.
pub const MAX_PAGES: usize = 10_000;

/// A resource's own toggles (its "MS Exchange" profile tab).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceSettings {
    pub psa_appointments_to_exchange: bool,
    pub exchange_appointments_to_psa: bool,
    pub contacts: bool,
    pub service_calls: bool,
    pub todos: bool,
}

impl ResourceSettings {
    /// Everything the organisation allows: a newly enabled resource's settings.
    pub fn allowed_by(org: &SyncSettings) -> Self {
        Self {
            psa_appointments_to_exchange: org.allow_appointments,
            exchange_appointments_to_psa: org.import_appointments != ImportAppointments::None,
            contacts: org.allow_contacts,
            service_calls: org.allow_service_calls,
            todos: org.allow_todos,
        }
    }

    /// What runs for the resource: its toggles within what the organisation
    /// allows now (an allow turned off later wins over the resource's toggle).
    pub fn effective(&self, org: &SyncSettings) -> Self {
        let allowed = Self::allowed_by(org);
        Self {
            psa_appointments_to_exchange: self.psa_appointments_to_exchange
                && allowed.psa_appointments_to_exchange,
            exchange_appointments_to_psa: self.exchange_appointments_to_psa
                && allowed.exchange_appointments_to_psa,
            contacts: self.contacts && allowed.contacts,
            service_calls: self.service_calls && allowed.service_calls,
            todos: self.todos && allowed.todos,
        }
    }

    /// The first toggle that is on although the organisation does not allow it.
    pub fn first_not_allowed(&self, org: &SyncSettings) -> Option<(&'static str, &'static str)> {
        let allowed = Self::allowed_by(org);
        [
            (
                self.psa_appointments_to_exchange && !allowed.psa_appointments_to_exchange,
                "psa_appointments_to_exchange",
                "sync.allow_appointments",
            ),
            (
                self.exchange_appointments_to_psa && !allowed.exchange_appointments_to_psa,
                "exchange_appointments_to_psa",
                "sync.import_appointments",
            ),
            (
                self.contacts && !allowed.contacts,
                "contacts",
                "sync.allow_contacts",
            ),
            (
                self.service_calls && !allowed.service_calls,
                "service_calls",
                "sync.allow_service_calls",
            ),
            (self.todos && !allowed.todos, "todos", "sync.allow_todos"),
        ]
        .into_iter()
        .find(|(bad, _, _)| *bad)
        .map(|(_, setting, allow)| (setting, allow))
    }
}

/// One PSA resource of a profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    pub profile_id: String,
    /// The PSA's resource id.
    pub resource_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub enabled: bool,
    /// The mailbox row once enabled.
    pub mailbox_id: Option<String>,
    /// untested | ok | disabled-auth (the mailbox's), or none before enabling.
    pub status: Option<String>,
    pub status_detail: Option<String>,
    /// None until enabled.
    pub settings: Option<ResourceSettings>,
    /// Whether the user's own credential is entered (without impersonation).
    pub has_own_credential: bool,
    pub last_attempted_at: Option<i64>,
    pub confirmation_sent_at: Option<i64>,
}

/// What a discovery found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourcesFound {
    pub new: u64,
    pub known: u64,
}

/// Why a resource operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error(transparent)]
    Profile(#[from] ExchangeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the PSA connection could not list its resources: {0}")]
    Source(#[from] EndpointError),
    #[error("the PSA connection's resource list did not end after {0} pages")]
    TooManyPages(usize),
    #[error("resource {resource:?} has no e-mail address in the PSA; enter one there, list the resources again, then enable it")]
    NoEmail { resource: String },
    #[error("{setting}: not allowed by the profile ({allow} is off); turn it on in the profile's synchronization settings first")]
    NotAllowed {
        setting: &'static str,
        allow: &'static str,
    },
    #[error("resource {resource:?} is not enabled; enable it first")]
    NotEnabled { resource: String },
    #[error("the synchronization account is used for every user (account.use_for_users); turn that off to enter each user's own credentials")]
    Impersonating,
    #[error("the stored settings of mailbox {mailbox:?} are not a resource's settings ({detail}); set them again")]
    BadSettings { mailbox: String, detail: String },
}

impl From<sqlx::Error> for ResourceError {
    fn from(e: sqlx::Error) -> Self {
        ResourceError::Store(e.into())
    }
}

const SELECT: &str = "SELECT r.profile_id, r.resource_id, r.name, r.email, r.mailbox_id,
    r.last_attempted_at, r.confirmation_sent_at, m.enabled, m.status, m.status_detail, m.settings
    FROM exchange_resources r LEFT JOIN mailboxes m ON m.id = r.mailbox_id";

fn from_row(r: &sqlx::any::AnyRow, own: &serde_json::Value) -> Result<Resource, ResourceError> {
    let mailbox_id: Option<String> = r.try_get("mailbox_id")?;
    let settings: Option<String> = r.try_get("settings")?;
    let settings = match (&mailbox_id, settings) {
        (Some(m), Some(s)) if s != "{}" => {
            Some(
                serde_json::from_str(&s).map_err(|e| ResourceError::BadSettings {
                    mailbox: m.clone(),
                    detail: e.to_string(),
                })?,
            )
        }
        _ => None,
    };
    let email: Option<String> = r.try_get("email")?;
    let has_own_credential = email
        .as_deref()
        .is_some_and(|e| own.get(e.to_lowercase()).is_some());
    Ok(Resource {
        profile_id: r.try_get("profile_id")?,
        resource_id: r.try_get("resource_id")?,
        name: r.try_get("name")?,
        email,
        enabled: r.try_get::<Option<i64>, _>("enabled")?.unwrap_or(0) != 0,
        mailbox_id,
        status: r.try_get("status")?,
        status_detail: r.try_get("status_detail")?,
        settings,
        has_own_credential,
        last_attempted_at: r.try_get("last_attempted_at")?,
        confirmation_sent_at: r.try_get("confirmation_sent_at")?,
    })
}

async fn own_credentials(
    store: &Store,
    p: &ExchangeProfile,
) -> Result<serde_json::Value, StoreError> {
    let record = store.get_connection(&p.connection_id).await?;
    let config: serde_json::Value = serde_json::from_str(&record.config).unwrap_or_default();
    Ok(config
        .get("mailbox_credentials")
        .cloned()
        .unwrap_or_default())
}

/// The resources of profile `profile`, by name then id.
pub async fn list(
    hub: &Hub,
    actor: Actor<'_>,
    profile: &str,
) -> Result<Vec<Resource>, ResourceError> {
    let p = profiles::get(hub, actor, profile).await?;
    let own = own_credentials(hub.store(), &p).await?;
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE r.profile_id = $1 ORDER BY r.name, r.resource_id"
    ))
    .bind(profile)
    .fetch_all(hub.store().pool())
    .await?;
    rows.iter().map(|r| from_row(r, &own)).collect()
}

/// One resource.
pub async fn get(
    hub: &Hub,
    actor: Actor<'_>,
    profile: &str,
    resource: &str,
) -> Result<Resource, ResourceError> {
    let p = profiles::get(hub, actor, profile).await?;
    let own = own_credentials(hub.store(), &p).await?;
    let row = sqlx::query(&format!(
        "{SELECT} WHERE r.profile_id = $1 AND r.resource_id = $2"
    ))
    .bind(profile)
    .bind(resource)
    .fetch_optional(hub.store().pool())
    .await?
    .ok_or_else(|| StoreError::NotFound {
        what: "resource",
        id: format!("{profile}/{resource}"),
    })?;
    from_row(&row, &own)
}

/// Records resources `(id, name, e-mail)` of the profile: new ones arrive
/// disabled; known ones keep everything but their name and e-mail.
pub async fn upsert(
    store: &Store,
    profile: &str,
    found: &[(String, Option<String>, Option<String>)],
) -> Result<ResourcesFound, StoreError> {
    let now = now_ms();
    let mut out = ResourcesFound::default();
    let mut tx = store.begin_write().await?;
    for (id, name, email) in found {
        let inserted = sqlx::query(
            "INSERT INTO exchange_resources (profile_id, resource_id, name, email, discovered_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (profile_id, resource_id) DO NOTHING",
        )
        .bind(profile)
        .bind(id)
        .bind(name.as_deref())
        .bind(email.as_deref())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() > 0 {
            out.new += 1;
        } else {
            out.known += 1;
            sqlx::query(
                "UPDATE exchange_resources SET name = $1, email = $2, updated_at = $3
                 WHERE profile_id = $4 AND resource_id = $5",
            )
            .bind(name.as_deref())
            .bind(email.as_deref())
            .bind(now)
            .bind(profile)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(out)
}

/// Reads every resource of the profile's PSA connection (a full pass of its
/// `resources` scope) and records them ([`upsert`]).
pub async fn discover(
    hub: &Hub,
    actor: Actor<'_>,
    profile: &str,
) -> Result<ResourcesFound, ResourceError> {
    let p = profiles::get(hub, actor, profile).await?;
    let source = ConnectionEndpoint {
        hub,
        connection: p.settings.psa_connection.clone(),
        retry: RetryPolicy::default(),
    };
    let mut found = Vec::new();
    let mut cursor = None;
    for _ in 0..MAX_PAGES {
        let page = source.pull(RESOURCES_SCOPE, cursor.take(), 500).await?;
        for item in page.items {
            if item.removed.is_some() {
                continue;
            }
            if let Some(ItemBody::DirectoryUser(u)) = item.body {
                let name = u.display_name.clone().or_else(|| {
                    let full = [u.given_name.as_deref(), u.surname.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" ");
                    (!full.is_empty()).then_some(full)
                });
                let email = u.mail.clone().or_else(|| {
                    u.user_principal_name
                        .contains('@')
                        .then(|| u.user_principal_name.clone())
                });
                found.push((item.id, name, email));
            }
        }
        if !page.more {
            return Ok(upsert(hub.store(), profile, &found).await?);
        }
        cursor = page.cursor;
    }
    Err(ResourceError::TooManyPages(MAX_PAGES))
}

/// Which resources an enable or disable names.
#[derive(Debug, Clone)]
pub enum Selection {
    All,
    Ids(Vec<String>),
}

async fn selected(
    hub: &Hub,
    actor: Actor<'_>,
    profile: &str,
    which: &Selection,
) -> Result<Vec<Resource>, ResourceError> {
    let all = list(hub, actor, profile).await?;
    match which {
        Selection::All => Ok(all),
        Selection::Ids(ids) => ids
            .iter()
            .map(|id| {
                all.iter()
                    .find(|r| &r.resource_id == id)
                    .cloned()
                    .ok_or_else(|| {
                        ResourceError::Store(StoreError::NotFound {
                            what: "resource",
                            id: format!("{profile}/{id}"),
                        })
                    })
            })
            .collect(),
    }
}

/// Enables resources (all or nothing checked first: each needs an e-mail
/// address): the mailbox of each on the profile's connection is recorded,
/// approved and enabled, with the settings the organisation allows when it
/// has none. Answers the resources enabled now (not those already enabled):
/// the ones a confirmation e-mail is due to.
pub async fn enable(
    hub: &Hub,
    actor: Actor<'_>,
    profile: &str,
    which: &Selection,
) -> Result<Vec<Resource>, ResourceError> {
    let p = profiles::get(hub, actor, profile).await?;
    let chosen = selected(hub, actor, profile, which).await?;
    if let Some(r) = chosen.iter().find(|r| r.email.is_none()) {
        if matches!(which, Selection::Ids(_)) {
            return Err(ResourceError::NoEmail {
                resource: r.resource_id.clone(),
            });
        }
    }
    let mut newly = Vec::new();
    for r in chosen.iter().filter(|r| !r.enabled) {
        let Some(email) = &r.email else { continue };
        mailboxes::upsert_discovered(
            hub.store(),
            &p.connection_id,
            &[(email.clone(), r.name.clone())],
        )
        .await?;
        let mailbox = mailboxes::mailbox_id(&p.connection_id, email);
        mailboxes::approve(hub.store(), &mailbox).await?;
        let m = mailboxes::set_enabled(hub.store(), &mailbox, true).await?;
        if m.settings.as_object().is_none_or(|o| o.is_empty()) {
            let defaults = ResourceSettings::allowed_by(&p.settings.sync);
            mailboxes::set_settings(
                hub.store(),
                &mailbox,
                &serde_json::to_value(defaults).unwrap_or_default(),
                mailboxes::SettingsMode::Replace,
            )
            .await?;
        }
        sqlx::query(
            "UPDATE exchange_resources SET mailbox_id = $1, updated_at = $2 WHERE profile_id = $3 AND resource_id = $4",
        )
        .bind(&mailbox)
        .bind(now_ms())
        .bind(profile)
        .bind(&r.resource_id)
        .execute(hub.store().pool())
        .await?;
        newly.push(get(hub, actor, profile, &r.resource_id).await?);
    }
    // Their engine profiles, and a first run of each that runs.
    let running = super::exchange_flow::materialize(hub, profile).await?;
    let fresh: Vec<String> = super::exchange_flow::rows(hub, profile)
        .await?
        .into_iter()
        .filter(|row| {
            running.contains(&row.profile_id)
                && newly
                    .iter()
                    .any(|r| row.resource_id.as_deref() == Some(r.resource_id.as_str()))
        })
        .map(|row| row.profile_id)
        .collect();
    profiles::queue_runs(hub, &fresh, "resource-enabled").await?;
    Ok(newly)
}

/// Disables resources (their mailboxes; settings are kept).
pub async fn disable(
    hub: &Hub,
    actor: Actor<'_>,
    profile: &str,
    which: &Selection,
) -> Result<Vec<Resource>, ResourceError> {
    let chosen = selected(hub, actor, profile, which).await?;
    let mut out = Vec::new();
    for r in chosen {
        if let Some(m) = &r.mailbox_id {
            mailboxes::set_enabled(hub.store(), m, false).await?;
        }
        out.push(get(hub, actor, profile, &r.resource_id).await?);
    }
    super::exchange_flow::materialize(hub, profile).await?;
    Ok(out)
}

/// Sets an enabled resource's toggles; each must be allowed by the profile.
pub async fn set_settings(
    hub: &Hub,
    actor: Actor<'_>,
    profile: &str,
    resource: &str,
    settings: ResourceSettings,
) -> Result<Resource, ResourceError> {
    let p = profiles::get(hub, actor, profile).await?;
    let r = get(hub, actor, profile, resource).await?;
    let Some(mailbox) = r.mailbox_id else {
        return Err(ResourceError::NotEnabled {
            resource: resource.to_owned(),
        });
    };
    if let Some((setting, allow)) = settings.first_not_allowed(&p.settings.sync) {
        return Err(ResourceError::NotAllowed { setting, allow });
    }
    mailboxes::set_settings(
        hub.store(),
        &mailbox,
        &serde_json::to_value(settings).unwrap_or_default(),
        mailboxes::SettingsMode::Replace,
    )
    .await?;
    super::exchange_flow::materialize(hub, profile).await?;
    get(hub, actor, profile, resource).await
}

/// The credential slot of a resource's own credential.
pub fn user_slot(resource: &str) -> String {
    let safe: String = resource
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("user-{safe}")
}

/// Enters a resource's own credential (only without impersonation): sealed
/// in the connection's slot `user-<resource>`, named for its mailbox in the
/// connector's `mailbox_credentials`.
pub async fn set_own_credential(
    hub: &Hub,
    actor: Actor<'_>,
    profile: &str,
    resource: &str,
    credential: Credential,
) -> Result<Resource, ResourceError> {
    let p = profiles::get(hub, actor, profile).await?;
    if p.settings.account.use_for_users {
        return Err(ResourceError::Impersonating);
    }
    let r = get(hub, actor, profile, resource).await?;
    let email = r.email.clone().ok_or_else(|| ResourceError::NoEmail {
        resource: resource.to_owned(),
    })?;
    profiles::refuse_while_running(hub, profile, &p.connection_id).await?;
    let record = hub.store().get_connection(&p.connection_id).await?;
    let mut config: serde_json::Value = serde_json::from_str(&record.config).unwrap_or_default();
    let slot = user_slot(resource);
    config["mailbox_credentials"][email.to_lowercase()] = serde_json::Value::String(slot.clone());
    connections::update(
        hub,
        Actor::Msp,
        &p.connection_id,
        ConnectionChange {
            config: Some(config),
            credentials: BTreeMap::from([(slot, Some(credential))]),
            ..ConnectionChange::default()
        },
    )
    .await
    .map_err(ExchangeError::from)?;
    get(hub, actor, profile, resource).await
}

/// Records a synchronization attempt of a resource ("Last Attempted Synchronization").
pub async fn record_attempt(
    store: &Store,
    profile: &str,
    resource: &str,
    at: i64,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE exchange_resources SET last_attempted_at = $1 WHERE profile_id = $2 AND resource_id = $3",
    )
    .bind(at)
    .bind(profile)
    .bind(resource)
    .execute(store.pool())
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            what: "resource",
            id: format!("{profile}/{resource}"),
        });
    }
    Ok(())
}

/// A permanent authentication error of one resource: its mailbox is
/// disabled (`disabled-auth`, [`mailboxes::disable_for_auth`]) and an alert
/// raised; the profile and the other resources go on.
pub async fn disable_for_auth(
    hub: &Hub,
    profile: &str,
    resource: &str,
    why: &str,
) -> Result<alerts::Alert, ResourceError> {
    let p = profiles::load(hub.store(), profile).await?;
    let r = get(hub, Actor::Msp, profile, resource).await?;
    let mailbox = r.mailbox_id.ok_or_else(|| ResourceError::NotEnabled {
        resource: resource.to_owned(),
    })?;
    mailboxes::disable_for_auth(hub.store(), &mailbox, why).await?;
    let remedy = if p.settings.account.use_for_users {
        "check the synchronization account's impersonation rights for this mailbox"
    } else {
        "the user's own credential was refused: enter it again (an app password with MFA)"
    };
    let message = format!(
        "resource {resource} ({}) of exchange profile {profile} was disabled after an authentication error: {why}; {remedy}, then enable the resource again",
        r.email.as_deref().unwrap_or("no e-mail")
    );
    Ok(alerts::raise(
        hub.store(),
        alerts::NewAlert {
            company_id: p.company_id.as_deref(),
            connection_id: Some(&p.connection_id),
            profile_id: Some(profile),
            severity: "error",
            code: "exchange_resource_auth_failed",
            message: &message,
            ..alerts::NewAlert::default()
        },
    )
    .await?)
}
