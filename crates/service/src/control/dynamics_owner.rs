//! Flow 3's "one mailbox syncs with one organization": the organization
//! whose appointments, contacts and tasks a mailbox synchronizes is marked in
//! the mailbox itself (the connectors' `mailbox-owner-api`, WIT 0.1.5: an
//! extended property of the mailbox's root folder in EWS and Graph), so a
//! second organization — on this hub or any other — sees it.
//!
//! - **Test & Enable** claims an unmarked mailbox for this organization. A
//!   mailbox marked by another organization fails its appointments, contacts
//!   and tasks test (e-mail is processed either way), unless the mailbox has
//!   "Sync items with Exchange from this org only, even if Exchange was set
//!   to sync with a different org": then the test takes the mailbox over.
//! - **Before a run** of an appointments, tasks or contacts profile (at most
//!   once per [`CHECK_EVERY`] per mailbox) the mark is read again. A mailbox
//!   another organization took over stops synchronizing those items here:
//!   its test status turns to Failure, its owner's wall says why, and the
//!   profiles stop until a new Test & Enable. Taking over happens only in a
//!   test (an operator's action), so two organizations never take a mailbox
//!   from each other run after run.
//!
//! An organization's mark is its Dynamics URL (the `dynamics` connection's
//! `url`, lower case, without a trailing `/`).

use super::alerts::{self, NewAlert};
use super::dynamics_flow::{FlowKind, FlowRow};
use super::dynamics_mailboxes::{MailboxConfig, FAILURE, SUCCESS};
use super::email_server_profiles as server_profiles;
use super::mailboxes::{self, Mailbox};
use crate::hub::Hub;
use crate::plugin_endpoints::ConnectionEndpoint;
use serde_json::Value;
use std::time::Duration;
use syncbridge_store::{now_ms, StoreError};
use syncbridge_sync::retry::RetryPolicy;
use syncbridge_sync::EndpointError;

/// How long a mark seen in a mailbox is trusted before a run reads it again.
pub const CHECK_EVERY: Duration = Duration::from_secs(5 * 60);

/// Error code of a mailbox marked by another organization.
pub const OTHER_ORG: &str = "MailboxSyncsWithAnotherOrg";

/// How a claim of a mailbox came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The mailbox was already marked for this organization.
    Kept,
    /// The mailbox was unmarked and is now marked for this organization.
    Marked,
    /// The mailbox was marked for `from`; this organization took it over.
    TakenOver { from: String },
}

/// Why a mailbox's appointments, contacts and tasks cannot sync here.
#[derive(Debug)]
pub enum Refused {
    /// Another organization's mark is in the mailbox.
    OtherOrganization { owner: String },
    /// The mark could not be read or written.
    Endpoint(EndpointError),
    /// This organization has no mark to write (its connection is not a Dynamics URL).
    NoMark(String),
}

impl Refused {
    /// The refusal's message and what to do about it.
    pub fn describe(&self, m: &Mailbox) -> (String, String) {
        match self {
            Refused::OtherOrganization { owner } => (
                format!(
                    "mailbox {} synchronizes appointments, contacts and tasks with another organization ({owner}): one mailbox syncs with one organization",
                    m.address
                ),
                format!(
                    "To synchronize them with this organization instead, select \"Sync items with Exchange from this org only, even if Exchange was set to sync with a different org\" for the mailbox (`syncbridge dynamics edit {} --sync-from-this-org-only true`, or POST /api/v1/dynamics/mailboxes/edit with `set.sync_from_this_org_only`) and test and enable it again; {owner} then stops synchronizing them. E-mail is processed either way.",
                    m.id
                ),
            ),
            Refused::Endpoint(e) => (
                format!(
                    "the organization marked in mailbox {} could not be read or written: {e}",
                    m.address
                ),
                "Check that the email server profile's connector is built against WIT 0.1.5 or later and that its account may change the mailbox's folders, then test and enable the mailbox again.".into(),
            ),
            Refused::NoMark(why) => (
                why.clone(),
                "Give the organization's connection its Dynamics URL (`url`), then test and enable the mailbox again.".into(),
            ),
        }
    }
}

/// The mark of the organization behind Dynamics connection `org`: its URL.
pub async fn organization_mark(hub: &Hub, org: &str) -> Result<Result<String, String>, StoreError> {
    let record = hub.store().get_connection(org).await?;
    let config: Value = match serde_json::from_str(&record.config) {
        Ok(v) => v,
        Err(e) => {
            return Ok(Err(format!(
                "the configuration of organization {org:?} does not read: {e}"
            )))
        }
    };
    Ok(match config.get("url").and_then(Value::as_str) {
        Some(url) if !url.trim().is_empty() => {
            Ok(url.trim().trim_end_matches('/').to_ascii_lowercase())
        }
        _ => Err(format!(
            "organization {org:?} has no Dynamics URL to mark its mailboxes with"
        )),
    })
}

/// Claims mailbox `m` for its organization through `endpoint` (the email
/// server profile's connection): marks an unmarked mailbox, keeps a mailbox
/// already marked for it, takes over another organization's mailbox only
/// when `take_over`.
pub async fn claim(
    hub: &Hub,
    endpoint: &ConnectionEndpoint<'_>,
    m: &Mailbox,
    take_over: bool,
) -> Result<Result<Claimed, Refused>, StoreError> {
    let ours = match organization_mark(hub, &m.connection_id).await? {
        Ok(mark) => mark,
        Err(why) => return Ok(Err(Refused::NoMark(why))),
    };
    let found = match endpoint.read_sync_owner(&m.address).await {
        Ok(found) => found,
        Err(e) => return Ok(Err(Refused::Endpoint(e))),
    };
    let claimed = match found {
        Some(owner) if owner.eq_ignore_ascii_case(&ours) => Claimed::Kept,
        Some(owner) if !take_over => return Ok(Err(Refused::OtherOrganization { owner })),
        Some(owner) => Claimed::TakenOver { from: owner },
        None => Claimed::Marked,
    };
    if claimed != Claimed::Kept {
        if let Err(e) = endpoint.write_sync_owner(&m.address, &ours).await {
            return Ok(Err(Refused::Endpoint(e)));
        }
    }
    checked(hub, &m.id).await?;
    Ok(Ok(claimed))
}

/// Records that this organization's mark was in the mailbox now.
async fn checked(hub: &Hub, mailbox_id: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO dynamics_sync_owner_checks (mailbox_id, checked_at) VALUES ($1, $2)
         ON CONFLICT (mailbox_id) DO UPDATE SET checked_at = $2",
    )
    .bind(mailbox_id)
    .bind(now_ms())
    .execute(hub.store().pool())
    .await?;
    Ok(())
}

/// Takes the mailbox's next check in one statement: true for the one caller
/// (of the profiles of a mailbox running at once) that finds no check or one
/// older than [`CHECK_EVERY`], and moves it to now; false for the others.
async fn due_for_check(hub: &Hub, mailbox_id: &str) -> Result<bool, StoreError> {
    let now = now_ms();
    let taken = sqlx::query(
        "INSERT INTO dynamics_sync_owner_checks (mailbox_id, checked_at) VALUES ($1, $2)
         ON CONFLICT (mailbox_id) DO UPDATE SET checked_at = $2
         WHERE dynamics_sync_owner_checks.checked_at < $3",
    )
    .bind(mailbox_id)
    .bind(now)
    .bind(now - CHECK_EVERY.as_millis() as i64)
    .execute(hub.store().pool())
    .await?;
    Ok(taken.rows_affected() == 1)
}

/// Before a run of an appointments, tasks or contacts profile: whether the
/// mailbox is still this organization's. `Some(reason)` when it is not — the
/// run must not go; the mailbox's appointments/contacts/tasks status is then
/// Failure, its owner is alerted and its profiles of those kinds stop. A
/// mark that cannot be read lets the run go (the run meets the same failure
/// and reports it).
pub async fn check_before_run(hub: &Hub, row: &FlowRow) -> Result<Option<String>, StoreError> {
    if !matches!(
        row.kind,
        FlowKind::Appointments
            | FlowKind::RecurringAppointments
            | FlowKind::Tasks
            | FlowKind::Contacts
    ) {
        return Ok(None);
    }
    if !due_for_check(hub, &row.mailbox_id).await? {
        return Ok(None);
    }
    let m = mailboxes::get(hub.store(), &row.mailbox_id).await?;
    let Ok(config) = MailboxConfig::of(&m) else {
        return Ok(None); // its test reports the setting; materialize stopped it
    };
    let Some(profile_id) = &config.server_profile else {
        return Ok(None);
    };
    let profile = match server_profiles::load(hub.store(), profile_id).await {
        Ok(p) => p,
        Err(server_profiles::ProfileError::Store(
            e @ (StoreError::Query(_) | StoreError::Connect(_)),
        )) => return Err(e),
        Err(_) => return Ok(None),
    };
    let endpoint = ConnectionEndpoint {
        hub,
        connection: profile.connection_id.clone(),
        retry: RetryPolicy::default(),
    };
    match claim(hub, &endpoint, &m, false).await? {
        Ok(_) => Ok(None),
        Err(Refused::OtherOrganization { owner }) => {
            let refused = Refused::OtherOrganization { owner };
            let (message, remedy) = refused.describe(&m);
            lost(hub, &m, &message, &remedy).await?;
            Ok(Some(format!("{message}. {remedy}")))
        }
        Err(other) => {
            tracing::warn!(mailbox = %m.id, error = ?other, "the organization marked in the mailbox could not be checked; the run goes on");
            Ok(None)
        }
    }
}

/// Another organization took the mailbox over: its appointments, contacts
/// and tasks test fails with the reason, its owner is alerted, and its
/// profiles of those kinds stop.
async fn lost(hub: &Hub, m: &Mailbox, message: &str, remedy: &str) -> Result<(), StoreError> {
    let store = hub.store();
    sqlx::query(
        "UPDATE mailbox_tests SET act_status = $1, error_class = 'act', error_code = $2, error_message = $3, error_remedy = $4
         WHERE mailbox_id = $5 AND act_status = $6",
    )
    .bind(FAILURE)
    .bind(OTHER_ORG)
    .bind(message)
    .bind(remedy)
    .bind(&m.id)
    .bind(SUCCESS)
    .execute(store.pool())
    .await?;
    sqlx::query("DELETE FROM dynamics_sync_owner_checks WHERE mailbox_id = $1")
        .bind(&m.id)
        .execute(store.pool())
        .await?;
    let who = m.display_name.as_deref().unwrap_or(&m.address);
    let text = format!(
        "Appointments, contacts and tasks of mailbox {who} stopped synchronizing: {message}. {remedy}"
    );
    alerts::raise(
        store,
        NewAlert {
            company_id: m.company_id.as_deref(),
            connection_id: Some(&m.connection_id),
            mailbox_id: Some(&m.id),
            severity: "warning",
            code: "mailbox_act_other_org",
            message: &text,
            ..NewAlert::default()
        },
    )
    .await?;
    super::dynamics_flow::materialize(hub, std::slice::from_ref(&m.id)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_by_another_organization_names_it_and_the_check_box() {
        let m = Mailbox {
            id: "mbx-1".into(),
            connection_id: "org".into(),
            company_id: None,
            address: "ann@contoso.com".into(),
            display_name: None,
            enabled: true,
            approved: true,
            settings: Value::Null,
            status: "ok".into(),
            status_detail: None,
            discovered_at: 0,
            updated_at: 0,
        };
        let (message, remedy) = Refused::OtherOrganization {
            owner: "https://fabrikam.crm.dynamics.com".into(),
        }
        .describe(&m);
        assert!(
            message.contains("ann@contoso.com") && message.contains("fabrikam"),
            "{message}"
        );
        assert!(
            remedy.contains("Sync items with Exchange from this org only")
                && remedy.contains("mbx-1"),
            "{remedy}"
        );
    }
}
