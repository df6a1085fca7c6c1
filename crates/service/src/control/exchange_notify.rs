//! The mail an Exchange profile sends: a confirmation to each newly enabled
//! resource (how to customise its settings), and the failure notification
//! to the profile's `notify_to` when the integration cannot run (server
//! down, the synchronization account refused), once per incident.
//!
//! An incident is an open alert `exchange_profile_failed` of the profile:
//! while it is open, further failures neither mail nor raise another;
//! [`incident_over`] (a run that works) resolves it, so the next failure
//! mails again.

use super::alerts::{self, Alert, NewAlert};
use super::exchange_profiles::{self as profiles, ExchangeError};
use super::exchange_resources::{self, Resource, ResourceError, Selection};
use super::Actor;
use crate::hub::Hub;
use crate::notify::{Notification, NotificationKind, Notifier, NotifyError, Recipients};
use syncbridge_store::{now_ms, StoreError};

/// The alert code of an open incident.
pub const FAILED_CODE: &str = "exchange_profile_failed";

/// Why a mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeNotifyError {
    #[error(transparent)]
    Profile(#[from] ExchangeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
}

/// The confirmation a newly enabled resource receives.
pub fn confirmation(profile_name: &str, r: &Resource) -> Notification {
    let name = r.name.as_deref().unwrap_or(&r.resource_id);
    Notification::new(
        NotificationKind::Confirmation,
        format!("[syncbridge] MS Exchange synchronization enabled for {name}"),
        format!(
            "Hello {name},\n\nThe MS Exchange synchronization \"{profile_name}\" is now enabled for you: your PSA appointments, service calls, to-dos and contacts can appear in Exchange, and your Exchange appointments in the PSA, as far as your organisation allows.\n\n\
             To choose what is synchronized for you, change your settings (PSA appointments to Exchange, Exchange appointments to the PSA, contacts, service calls, to-dos):\n\
             \x20 syncbridge exchange resource-settings {profile} {resource} --json '{{...}}'\n\
             \x20 or PUT /api/v1/exchange-profiles/{profile}/resources/{resource}/settings\n\
             Ask your administrator if you cannot reach these.\n\n-- \nSent by syncbridge. Replies to this address are not read.\n",
            profile = r.profile_id,
            resource = r.resource_id,
        ),
    )
}

/// Mails each resource of `newly` (as [`crate::control::exchange_resources::enable`]
/// answered them) its confirmation and records when. Resources without an
/// e-mail address are skipped. Answers how many were sent.
pub async fn send_confirmations(
    hub: &Hub,
    notifier: &dyn Notifier,
    profile: &str,
    newly: &[Resource],
) -> Result<usize, ExchangeNotifyError> {
    let p = profiles::load(hub.store(), profile).await?;
    let mut sent = 0;
    for r in newly {
        let Some(email) = &r.email else { continue };
        let to = Recipients::parse(email)?;
        notifier
            .send(&to, &confirmation(&p.settings.name, r))
            .await?;
        sqlx::query(
            "UPDATE exchange_resources SET confirmation_sent_at = $1 WHERE profile_id = $2 AND resource_id = $3",
        )
        .bind(now_ms())
        .bind(profile)
        .bind(&r.resource_id)
        .execute(hub.store().pool())
        .await
        .map_err(StoreError::from)?;
        sent += 1;
    }
    Ok(sent)
}

/// What [`enable_and_confirm`] did.
#[derive(Debug)]
pub struct Enabled {
    /// The resources enabled now, as stored after the mail (with
    /// `confirmation_sent_at` when it went out).
    pub resources: Vec<Resource>,
    /// How many confirmations went out; `None` without a notifier; the
    /// error when mailing failed (the resources stay enabled).
    pub mailed: Option<Result<usize, ExchangeNotifyError>>,
}

/// Enables resources ([`exchange_resources::enable`]) and mails each newly
/// enabled one its confirmation through `notifier`, when there is one: the
/// rule the CLI and the API share.
pub async fn enable_and_confirm(
    hub: &Hub,
    actor: Actor<'_>,
    profile: &str,
    which: &Selection,
    notifier: Option<&dyn Notifier>,
) -> Result<Enabled, ResourceError> {
    let mut resources = exchange_resources::enable(hub, actor, profile, which).await?;
    let mailed = match notifier {
        Some(n) if !resources.is_empty() => {
            let sent = send_confirmations(hub, n, profile, &resources).await;
            for r in &mut resources {
                *r = exchange_resources::get(hub, actor, profile, &r.resource_id).await?;
            }
            Some(sent)
        }
        Some(_) => Some(Ok(0)),
        None => None,
    };
    Ok(Enabled { resources, mailed })
}

/// The integration of `profile` cannot run (`cause`: the server is down,
/// the account was refused; `remedy`: what to do). The first failure of an
/// incident raises the alert and mails `notify_to` (when set); later ones
/// while it is open do nothing. Answers the alert when this call opened it.
pub async fn report_failure(
    hub: &Hub,
    notifier: Option<&dyn Notifier>,
    profile: &str,
    cause: &str,
    remedy: &str,
) -> Result<Option<Alert>, ExchangeNotifyError> {
    let p = profiles::load(hub.store(), profile).await?;
    if open_incident(hub, profile).await?.is_some() {
        return Ok(None);
    }
    let message = format!(
        "exchange profile {profile} ({}) cannot synchronize: {cause}; {remedy}",
        p.settings.name
    );
    let alert = alerts::raise(
        hub.store(),
        NewAlert {
            company_id: p.company_id.as_deref(),
            connection_id: Some(&p.connection_id),
            profile_id: Some(profile),
            severity: "error",
            code: FAILED_CODE,
            message: &message,
            ..NewAlert::default()
        },
    )
    .await?;
    if let (Some(notifier), false) = (notifier, p.settings.notify_to.trim().is_empty()) {
        let to = Recipients::parse(&p.settings.notify_to)?;
        let n = Notification::new(
            NotificationKind::Failure,
            format!(
                "[syncbridge] MS Exchange synchronization cannot run: {}",
                p.settings.name
            ),
            format!(
                "The MS Exchange synchronization \"{}\" ({profile}) cannot run.\n\nWhat went wrong:\n  {cause}\n\nWhat to do:\n  {remedy}\n\nServer:      {}\nConnection:  {}\n\nYou will not be mailed again about this until it works again.\n\n-- \nSent by syncbridge. Replies to this address are not read.\n",
                p.settings.name, p.settings.server.address, p.connection_id
            ),
        );
        notifier.send(&to, &n).await?;
    }
    Ok(Some(alert))
}

async fn open_incident(hub: &Hub, profile: &str) -> Result<Option<String>, StoreError> {
    use sqlx::Row;
    let row = sqlx::query(
        "SELECT id FROM alerts WHERE profile_id = $1 AND code = $2 AND resolved_at IS NULL LIMIT 1",
    )
    .bind(profile)
    .bind(FAILED_CODE)
    .fetch_optional(hub.store().pool())
    .await?;
    Ok(row.map(|r| r.try_get("id")).transpose()?)
}

/// The integration of `profile` works again: its open incident is resolved,
/// so the next failure mails again.
pub async fn incident_over(hub: &Hub, profile: &str) -> Result<(), StoreError> {
    if let Some(id) = open_incident(hub, profile).await? {
        alerts::resolve(hub.store(), &id).await?;
    }
    Ok(())
}
