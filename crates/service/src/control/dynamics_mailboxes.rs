//! Flow 3's mailboxes (Dynamics 365 "Settings > Email Configuration >
//! Mailboxes"): read from a Dynamics organization (a connection of the
//! `dynamics` plugin), configured from the organization's default email
//! processing or edited many at once, approved, and tested and enabled by a
//! background job.
//!
//! - **Default email processing** ("Email Configuration Settings"): the
//!   server profile and incoming email, outgoing email and appointments,
//!   contacts and tasks, each by server-side synchronization or none; and
//!   whether only approved mailboxes are processed (the default).
//! - **Test & Enable** schedules a test of each mailbox (Dataverse's
//!   `testemailconfigurationscheduled`); [`run_due`] tests the scheduled
//!   ones through their profile's connection, fills the incoming, outgoing
//!   and appointments/contacts/tasks statuses with Dataverse's values (0 Not
//!   Run, 1 Success, 2 Failure), writes them to the mailbox row in Dynamics,
//!   and raises an alert for the mailbox's owner on success and on failure.
//! - Outgoing e-mail with its own account or location ("Use same settings
//!   for Outgoing" off) is checked apart, without sending anything: the
//!   connector's `outbox:mailbox=…,check=true` makes one request as the
//!   sending account. A refusal fails only the outgoing status (the mailbox
//!   stays enabled for the rest, outgoing e-mail is not processed) with an
//!   error naming the outgoing account.
//! - A transient failure (throttling, a timeout, a server error) is tried
//!   again 5 minutes later, 10 times at most; a permanent one (401, 403, no
//!   such mailbox, not approved, no profile) disables the mailbox and names
//!   the cause and the remedy.

use super::alerts::{self, NewAlert};
use super::dynamics_diagnose;
use super::email_server_profiles::{self as server_profiles, EmailServerProfile};
use super::mailboxes::{self, Mailbox};
use super::Actor;
use crate::hub::Hub;
use crate::plugin_endpoints::ConnectionEndpoint;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::Row;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use syncbridge_model::{ChannelStatus, ItemBody, PluginError, WriteAction, WriteOp};
use syncbridge_store::{now_ms, Store, StoreError};
use syncbridge_sync::endpoint::{Source, Target};
use syncbridge_sync::retry::RetryPolicy;
use syncbridge_sync::EndpointError;

/// The plugin of a Dynamics organization's connection.
pub const DYNAMICS_PLUGIN: &str = "dynamics";
/// The connector scope of Dynamics mailbox rows.
pub const MAILBOXES_SCOPE: &str = "mailboxes";
/// Tries of a test that keeps failing transiently (the seed's 10 × 5 minutes).
pub const MAX_TRANSIENT_TRIES: i64 = 10;
/// Wait before a transiently failed test is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(5 * 60);
/// How long a worker holds a claimed test before another may take it.
pub const CLAIM: Duration = Duration::from_secs(10 * 60);
/// Most status writes in one call of the organization's connector.
pub const WRITE_BATCH: usize = 100;
/// Status of a mailbox whose test failed permanently (other than a 401).
pub const STATUS_TEST_FAILED: &str = "test-failed";
/// Status of a mailbox whose processing kept failing (the server, not its credentials).
pub const STATUS_PROCESSING_FAILED: &str = "processing-failed";

/// Dataverse's test status values.
pub const NOT_RUN: i64 = 0;
pub const SUCCESS: i64 = 1;
pub const FAILURE: i64 = 2;

/// How one kind of item is processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// Server-side synchronization.
    ServerSideSync,
    /// Not processed.
    None,
}

/// An organization's "Email Configuration Settings".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessingDefaults {
    /// The default email server profile.
    pub server_profile: Option<String>,
    pub incoming: Delivery,
    pub outgoing: Delivery,
    /// Appointments, contacts and tasks.
    pub act: Delivery,
    /// "Process emails only for approved users and queues" (default on).
    #[serde(default = "yes")]
    pub require_approval: bool,
}

fn yes() -> bool {
    true
}

impl Default for ProcessingDefaults {
    fn default() -> Self {
        Self {
            server_profile: None,
            incoming: Delivery::ServerSideSync,
            outgoing: Delivery::ServerSideSync,
            act: Delivery::ServerSideSync,
            require_approval: true,
        }
    }
}

/// What an edit of many mailboxes sets ("Change Multiple Records"); absent fields are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailboxEdit {
    #[serde(default)]
    pub server_profile: Option<String>,
    #[serde(default)]
    pub incoming: Option<Delivery>,
    #[serde(default)]
    pub outgoing: Option<Delivery>,
    #[serde(default)]
    pub act: Option<Delivery>,
    /// "Sync items with Exchange from this org only, even if Exchange was
    /// set to sync with a different org" (Dataverse
    /// `orgmarkedasprimaryforexchangesync`): the next Test & Enable takes the
    /// mailbox over from the organization marked in it.
    #[serde(default)]
    pub sync_from_this_org_only: Option<bool>,
}

/// A mailbox's flow-3 configuration, as its settings hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxConfig {
    pub server_profile: Option<String>,
    pub incoming: Delivery,
    pub outgoing: Delivery,
    pub act: Delivery,
    /// Test & Enable takes the mailbox over from another organization.
    pub sync_from_this_org_only: bool,
}

impl MailboxConfig {
    /// Reads the configuration from a mailbox's settings; a mailbox never
    /// configured processes nothing. A stored value that does not read is an error.
    pub fn of(m: &Mailbox) -> Result<Self, String> {
        let s = &m.settings;
        let delivery = |k: &str| -> Result<Delivery, String> {
            match s.get(k) {
                None | Some(Value::Null) => Ok(Delivery::None),
                Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
                    format!("mailbox {}: its stored {k} {v} is neither server-side-sync nor none; set it again (edit the mailbox)", m.id)
                }),
            }
        };
        let server_profile = match s.get("server_profile") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) => Some(p.clone()),
            Some(v) => {
                return Err(format!(
                    "mailbox {}: its stored server_profile {v} is not a profile id; set it again (edit the mailbox)",
                    m.id
                ))
            }
        };
        let sync_from_this_org_only = match s.get("sync_from_this_org_only") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => {
                return Err(format!(
                    "mailbox {}: its stored sync_from_this_org_only {v} is not true or false; set it again (edit the mailbox)",
                    m.id
                ))
            }
        };
        Ok(Self {
            server_profile,
            incoming: delivery("incoming")?,
            outgoing: delivery("outgoing")?,
            act: delivery("act")?,
            sync_from_this_org_only,
        })
    }
}

/// The latest Test & Enable state of a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MailboxTest {
    pub mailbox_id: String,
    /// A test is waiting.
    pub scheduled: bool,
    /// Not before (ms since the epoch).
    pub due_at: i64,
    /// Transient failures so far.
    pub retry_count: i64,
    /// 0 Not Run, 1 Success, 2 Failure.
    pub incoming_status: i64,
    pub outgoing_status: i64,
    /// Appointments, contacts and tasks.
    pub act_status: i64,
    pub tested_at: Option<i64>,
    /// transient | permanent | outgoing (outgoing e-mail failed, e.g. its own
    /// account was refused; the rest is processed) | act (appointments,
    /// contacts and tasks failed; e-mail is processed)
    pub error_class: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub error_remedy: Option<String>,
}

/// A flow-3 mailbox and its test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DynamicsMailbox {
    pub mailbox: Mailbox,
    /// The Dataverse mailboxid.
    pub remote_id: Option<String>,
    pub test: Option<MailboxTest>,
}

/// Why a mailbox operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum DynamicsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Profile(#[from] server_profiles::ProfileError),
    #[error("connection {0:?} is not a Dynamics organization (its plugin is {1:?}); use a connection of the dynamics plugin")]
    NotDynamics(String, String),
    #[error("the organization's mailboxes could not be read: {0}")]
    Source(EndpointError),
    #[error("mailbox {0:?} is not a mailbox of a Dynamics organization")]
    NotFlow3(String),
    #[error("no mailboxes given; name at least one mailbox id")]
    NoneGiven,
    #[error("{0}")]
    Invalid(String),
    #[error("this caller is scoped to company {company:?} and cannot use objects of another")]
    ScopeViolation { company: String },
}

impl From<sqlx::Error> for DynamicsError {
    fn from(e: sqlx::Error) -> Self {
        DynamicsError::Store(e.into())
    }
}

/// Checks that `connection` is a Dynamics organization `actor` sees.
async fn organization(hub: &Hub, actor: Actor<'_>, connection: &str) -> Result<(), DynamicsError> {
    let record = hub.store().get_connection(connection).await?;
    let company: Option<String> = sqlx::query("SELECT company_id FROM connections WHERE id = $1")
        .bind(connection)
        .fetch_one(hub.store().pool())
        .await?
        .try_get("company_id")?;
    if !actor.sees(company.as_deref()) {
        return Err(StoreError::NotFound {
            what: "connection",
            id: connection.to_owned(),
        }
        .into());
    }
    if record.plugin_id != DYNAMICS_PLUGIN {
        return Err(DynamicsError::NotDynamics(
            connection.to_owned(),
            record.plugin_id,
        ));
    }
    Ok(())
}

/// The default email processing of organization `connection`.
pub async fn defaults(
    hub: &Hub,
    actor: Actor<'_>,
    connection: &str,
) -> Result<ProcessingDefaults, DynamicsError> {
    organization(hub, actor, connection).await?;
    load_defaults(hub.store(), connection).await
}

/// The default email processing of organization `connection`, without an
/// actor's check (the background jobs' view).
pub async fn processing_defaults(
    store: &Store,
    connection: &str,
) -> Result<ProcessingDefaults, DynamicsError> {
    load_defaults(store, connection).await
}

async fn load_defaults(
    store: &Store,
    connection: &str,
) -> Result<ProcessingDefaults, DynamicsError> {
    let row = sqlx::query(
        "SELECT server_profile_id, incoming, outgoing, act, require_approval FROM email_processing_defaults WHERE connection_id = $1",
    )
    .bind(connection)
    .fetch_optional(store.pool())
    .await?;
    let Some(r) = row else {
        return Ok(ProcessingDefaults::default());
    };
    let delivery = |c: &str| -> Result<Delivery, DynamicsError> {
        let v: String = r.try_get(c)?;
        serde_json::from_value(Value::String(v.clone())).map_err(|_| {
            StoreError::Invalid {
                what: "email processing defaults",
                id: connection.to_owned(),
                detail: format!("its stored {c} {v:?} is unknown; set the defaults again"),
            }
            .into()
        })
    };
    Ok(ProcessingDefaults {
        server_profile: r.try_get("server_profile_id")?,
        incoming: delivery("incoming")?,
        outgoing: delivery("outgoing")?,
        act: delivery("act")?,
        require_approval: r.try_get::<i64, _>("require_approval")? != 0,
    })
}

fn delivery_name(d: Delivery) -> &'static str {
    match d {
        Delivery::ServerSideSync => "server-side-sync",
        Delivery::None => "none",
    }
}

/// Checks that profile `id` exists and `actor` sees it.
async fn check_profile(
    hub: &Hub,
    actor: Actor<'_>,
    id: &str,
) -> Result<EmailServerProfile, DynamicsError> {
    Ok(server_profiles::get(hub, actor, id).await?)
}

/// Sets the default email processing of organization `connection`.
pub async fn set_defaults(
    hub: &Hub,
    actor: Actor<'_>,
    connection: &str,
    d: ProcessingDefaults,
) -> Result<ProcessingDefaults, DynamicsError> {
    organization(hub, actor, connection).await?;
    if let Some(p) = &d.server_profile {
        check_profile(hub, actor, p).await?;
    }
    sqlx::query(
        "INSERT INTO email_processing_defaults (connection_id, server_profile_id, incoming, outgoing, act, require_approval, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (connection_id) DO UPDATE SET server_profile_id = $2, incoming = $3, outgoing = $4, act = $5, require_approval = $6, updated_at = $7",
    )
    .bind(connection)
    .bind(&d.server_profile)
    .bind(delivery_name(d.incoming))
    .bind(delivery_name(d.outgoing))
    .bind(delivery_name(d.act))
    .bind(i64::from(d.require_approval))
    .bind(now_ms())
    .execute(hub.store().pool())
    .await?;
    load_defaults(hub.store(), connection).await
}

/// What a refresh found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Refreshed {
    /// Mailboxes seen for the first time.
    pub new: u64,
    /// Mailboxes already known.
    pub known: u64,
    /// Mailboxes Dynamics says are approved that were not approved here.
    pub approved_in_dynamics: u64,
}

/// Reads the organization's active mailbox rows (a full pass of the
/// connector's `mailboxes` scope) and records them: new ones unconfigured,
/// disabled and unapproved unless Dynamics says approved; known ones keep
/// their settings; every one remembers its Dataverse id.
pub async fn refresh(
    hub: &Hub,
    actor: Actor<'_>,
    connection: &str,
) -> Result<Refreshed, DynamicsError> {
    organization(hub, actor, connection).await?;
    let source = ConnectionEndpoint {
        hub,
        connection: connection.to_owned(),
        retry: RetryPolicy::default(),
    };
    let mut rows: Vec<(String, Option<String>, String, bool)> = Vec::new();
    let mut cursor = None;
    for _ in 0..mailboxes::MAX_DISCOVERY_PAGES {
        let page = source
            .pull(MAILBOXES_SCOPE, cursor.take(), 1000)
            .await
            .map_err(DynamicsError::Source)?;
        for item in page.items {
            if item.removed.is_some() {
                continue;
            }
            if let Some(ItemBody::Mailbox(m)) = item.body {
                rows.push((m.address, m.display_name, item.id, m.approved));
            }
        }
        if !page.more {
            break;
        }
        cursor = page.cursor;
    }
    let found: Vec<(String, Option<String>)> =
        rows.iter().map(|r| (r.0.clone(), r.1.clone())).collect();
    let d = mailboxes::upsert_discovered(hub.store(), connection, &found).await?;
    let mut out = Refreshed {
        new: d.new,
        known: d.known,
        approved_in_dynamics: 0,
    };
    let mut tx = hub.store().begin_write().await?;
    for (address, _, remote, approved) in &rows {
        let id = mailboxes::mailbox_id(connection, address);
        sqlx::query("UPDATE mailboxes SET remote_id = $1 WHERE id = $2")
            .bind(remote)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        if *approved {
            let done = sqlx::query(
                "UPDATE mailboxes SET approved = 1, updated_at = $1 WHERE id = $2 AND approved = 0",
            )
            .bind(now_ms())
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            out.approved_in_dynamics += done.rows_affected();
        }
    }
    tx.commit().await?;
    Ok(out)
}

/// Flow-3 mailbox `id` as `actor` sees it.
pub async fn get(hub: &Hub, actor: Actor<'_>, id: &str) -> Result<DynamicsMailbox, DynamicsError> {
    let m = mailboxes::get(hub.store(), id).await?;
    if !actor.sees(m.company_id.as_deref()) {
        return Err(StoreError::NotFound {
            what: "mailbox",
            id: id.to_owned(),
        }
        .into());
    }
    let record = hub.store().get_connection(&m.connection_id).await?;
    if record.plugin_id != DYNAMICS_PLUGIN {
        return Err(DynamicsError::NotFlow3(id.to_owned()));
    }
    let remote: Option<String> = sqlx::query("SELECT remote_id FROM mailboxes WHERE id = $1")
        .bind(id)
        .fetch_one(hub.store().pool())
        .await?
        .try_get("remote_id")?;
    Ok(DynamicsMailbox {
        test: test_of(hub.store(), id).await?,
        remote_id: remote,
        mailbox: m,
    })
}

/// The mailboxes of organization `connection`, by address.
pub async fn list(
    hub: &Hub,
    actor: Actor<'_>,
    connection: &str,
) -> Result<Vec<DynamicsMailbox>, DynamicsError> {
    organization(hub, actor, connection).await?;
    let mut out = Vec::new();
    let remote: BTreeMap<String, Option<String>> =
        sqlx::query("SELECT id, remote_id FROM mailboxes WHERE connection_id = $1")
            .bind(connection)
            .fetch_all(hub.store().pool())
            .await?
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("remote_id")?)))
            .collect::<Result<_, sqlx::Error>>()?;
    let mut tests: BTreeMap<String, MailboxTest> = BTreeMap::new();
    let rows = sqlx::query(&format!(
        "{TEST_SELECT} WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE connection_id = $1)"
    ))
    .bind(connection)
    .fetch_all(hub.store().pool())
    .await?;
    for r in &rows {
        let t = test_from_row(r)?;
        tests.insert(t.mailbox_id.clone(), t);
    }
    for m in mailboxes::list(hub.store(), Some(connection), None).await? {
        out.push(DynamicsMailbox {
            remote_id: remote.get(&m.id).cloned().flatten(),
            test: tests.remove(&m.id),
            mailbox: m,
        });
    }
    Ok(out)
}

const TEST_SELECT: &str =
    "SELECT mailbox_id, scheduled, due_at, retry_count, incoming_status, outgoing_status,
    act_status, tested_at, error_class, error_code, error_message, error_remedy FROM mailbox_tests";

fn test_from_row(r: &sqlx::any::AnyRow) -> Result<MailboxTest, StoreError> {
    Ok(MailboxTest {
        mailbox_id: r.try_get("mailbox_id")?,
        scheduled: r.try_get::<i64, _>("scheduled")? != 0,
        due_at: r.try_get("due_at")?,
        retry_count: r.try_get("retry_count")?,
        incoming_status: r.try_get("incoming_status")?,
        outgoing_status: r.try_get("outgoing_status")?,
        act_status: r.try_get("act_status")?,
        tested_at: r.try_get("tested_at")?,
        error_class: r.try_get("error_class")?,
        error_code: r.try_get("error_code")?,
        error_message: r.try_get("error_message")?,
        error_remedy: r.try_get("error_remedy")?,
    })
}

/// The test state of mailbox `id`, if it was ever scheduled.
pub async fn test_of(store: &Store, id: &str) -> Result<Option<MailboxTest>, StoreError> {
    let row = sqlx::query(&format!("{TEST_SELECT} WHERE mailbox_id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
    row.as_ref().map(test_from_row).transpose()
}

/// Checks every id names a flow-3 mailbox `actor` sees (all or nothing).
async fn check_all(
    hub: &Hub,
    actor: Actor<'_>,
    ids: &[String],
) -> Result<Vec<DynamicsMailbox>, DynamicsError> {
    if ids.is_empty() {
        return Err(DynamicsError::NoneGiven);
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(get(hub, actor, id).await?);
    }
    Ok(out)
}

/// "Apply Default Email Settings": sets the organization's default profile
/// and delivery methods on each mailbox and, when `test` (the default in
/// Dynamics), schedules Test & Enable for them. Answers the mailboxes.
pub async fn apply_defaults(
    hub: &Hub,
    actor: Actor<'_>,
    ids: &[String],
    test: bool,
) -> Result<Vec<DynamicsMailbox>, DynamicsError> {
    let found = check_all(hub, actor, ids).await?;
    let mut by_org: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in &found {
        by_org
            .entry(m.mailbox.connection_id.clone())
            .or_default()
            .push(m.mailbox.id.clone());
    }
    for (org, ids) in by_org {
        let d = load_defaults(hub.store(), &org).await?;
        let Some(profile) = d.server_profile.clone() else {
            return Err(DynamicsError::Invalid(format!(
                "organization {org:?} has no default email server profile; set one first (`syncbridge dynamics defaults {org} --server-profile P` or PUT /api/v1/dynamics/{org}/email-settings)"
            )));
        };
        let settings = json!({
            "server_profile": profile,
            "incoming": delivery_name(d.incoming),
            "outgoing": delivery_name(d.outgoing),
            "act": delivery_name(d.act),
        });
        mailboxes::apply_settings_to_many(hub.store(), &ids, &settings).await?;
    }
    if test {
        schedule(hub.store(), ids).await?;
    }
    check_all(hub, actor, ids).await
}

/// "Edit" of many mailboxes: sets the given profile and delivery methods
/// on each, all or nothing.
pub async fn edit_many(
    hub: &Hub,
    actor: Actor<'_>,
    ids: &[String],
    edit: &MailboxEdit,
) -> Result<Vec<DynamicsMailbox>, DynamicsError> {
    check_all(hub, actor, ids).await?;
    if let Some(p) = &edit.server_profile {
        check_profile(hub, actor, p).await?;
    }
    let mut settings = serde_json::Map::new();
    if let Some(p) = &edit.server_profile {
        settings.insert("server_profile".into(), json!(p));
    }
    for (k, v) in [
        ("incoming", edit.incoming),
        ("outgoing", edit.outgoing),
        ("act", edit.act),
    ] {
        if let Some(v) = v {
            settings.insert(k.into(), json!(delivery_name(v)));
        }
    }
    if let Some(only) = edit.sync_from_this_org_only {
        settings.insert("sync_from_this_org_only".into(), json!(only));
    }
    if settings.is_empty() {
        return Err(DynamicsError::Invalid(
            "nothing to change; give server_profile, incoming, outgoing, act or sync_from_this_org_only".into(),
        ));
    }
    mailboxes::apply_settings_to_many(hub.store(), ids, &Value::Object(settings)).await?;
    // A delivery turned off stops that processing now; one turned on waits for its test.
    super::dynamics_flow::materialize(hub, ids).await?;
    check_all(hub, actor, ids).await
}

/// "Approve Email" for many mailboxes.
pub async fn approve_many(
    hub: &Hub,
    actor: Actor<'_>,
    ids: &[String],
) -> Result<Vec<DynamicsMailbox>, DynamicsError> {
    check_all(hub, actor, ids).await?;
    for id in ids {
        mailboxes::approve(hub.store(), id).await?;
    }
    super::dynamics_flow::materialize(hub, ids).await?;
    check_all(hub, actor, ids).await
}

/// "Test & Enable Mailboxes": schedules a test of each (all or nothing);
/// [`run_due`] runs them in the background.
pub async fn test_and_enable(
    hub: &Hub,
    actor: Actor<'_>,
    ids: &[String],
) -> Result<Vec<DynamicsMailbox>, DynamicsError> {
    check_all(hub, actor, ids).await?;
    schedule(hub.store(), ids).await?;
    check_all(hub, actor, ids).await
}

/// "Test & Enable Mailboxes" of an email server profile: schedules a test
/// of every mailbox whose settings name it. Answers the ids scheduled.
pub async fn test_profile(
    hub: &Hub,
    actor: Actor<'_>,
    profile: &str,
) -> Result<Vec<String>, DynamicsError> {
    check_profile(hub, actor, profile).await?;
    let ids: Vec<String> = server_profiles::mailboxes_using(hub.store(), profile)
        .await?
        .into_iter()
        .filter(|m| actor.sees(m.company_id.as_deref()))
        .map(|m| m.id)
        .collect();
    schedule(hub.store(), &ids).await?;
    Ok(ids)
}

async fn schedule(store: &Store, ids: &[String]) -> Result<(), StoreError> {
    let now = now_ms();
    let mut tx = store.begin_write().await?;
    for id in ids {
        sqlx::query(
            "INSERT INTO mailbox_tests (mailbox_id, scheduled, due_at, claimed_until, retry_count, incoming_status, outgoing_status, act_status)
             VALUES ($1, 1, $2, NULL, 0, 0, 0, 0)
             ON CONFLICT (mailbox_id) DO UPDATE SET scheduled = 1, due_at = $2, claimed_until = NULL, retry_count = 0",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// How one test came out.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    incoming: i64,
    outgoing: i64,
    act: i64,
    /// `None` on success.
    error: Option<TestError>,
    /// Appointments, contacts and tasks failed while e-mail works (the
    /// mailbox syncs with another organization): the mailbox stays enabled.
    act_error: Option<TestError>,
    /// Outgoing e-mail failed (its own account or location was refused) while
    /// the rest works: the mailbox stays enabled, outgoing e-mail is not sent.
    outgoing_error: Option<TestError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct TestError {
    transient: bool,
    code: String,
    message: String,
    remedy: String,
}

impl TestError {
    fn permanent(code: &str, message: impl Into<String>, remedy: impl Into<String>) -> Self {
        Self {
            transient: false,
            code: code.to_owned(),
            message: message.into(),
            remedy: remedy.into(),
        }
    }
}

/// What one pass of [`run_due`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TestsRun {
    pub tested: u64,
    pub succeeded: u64,
    /// Failed permanently (the mailbox is disabled).
    pub failed: u64,
    /// Failed transiently and scheduled again.
    pub postponed: u64,
    /// Statuses that could not be written to Dynamics (kept here; written by the next test).
    pub not_written: u64,
    /// Processing profiles of the tested mailboxes that run now.
    pub processing: u64,
    /// Mailboxes passed but cannot be processed: the `dynamics-exchange` mapper is not installed.
    pub mapper_missing: bool,
}

/// A claimed test and what it needs.
struct Claimed {
    mailbox: Mailbox,
    remote_id: Option<String>,
    retry_count: i64,
}

/// Claims up to `limit` due tests (`now` in ms) for this worker.
async fn claim(store: &Store, now: i64, limit: i64) -> Result<Vec<Claimed>, StoreError> {
    let rows = sqlx::query(
        "SELECT t.mailbox_id, t.retry_count, m.remote_id FROM mailbox_tests t JOIN mailboxes m ON m.id = t.mailbox_id
         WHERE t.scheduled = 1 AND t.due_at <= $1 AND (t.claimed_until IS NULL OR t.claimed_until < $1)
         ORDER BY t.due_at, t.mailbox_id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    let until = now + CLAIM.as_millis() as i64;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id: String = r.try_get("mailbox_id")?;
        let taken = sqlx::query(
            "UPDATE mailbox_tests SET claimed_until = $1 WHERE mailbox_id = $2 AND scheduled = 1
             AND (claimed_until IS NULL OR claimed_until < $3)",
        )
        .bind(until)
        .bind(&id)
        .bind(now)
        .execute(store.pool())
        .await?;
        if taken.rows_affected() == 0 {
            continue; // another worker took it
        }
        out.push(Claimed {
            mailbox: mailboxes::get(store, &id).await?,
            remote_id: r.try_get("remote_id")?,
            retry_count: r.try_get("retry_count")?,
        });
    }
    Ok(out)
}

/// Runs the due tests, up to `limit` of them: tests each mailbox through
/// its profile's connection (at most the profile's maximum concurrent
/// connections at once), records the statuses, enables or disables the
/// mailbox, alerts its owner, and writes the statuses to Dynamics.
pub async fn run_due(hub: &Arc<Hub>, now: i64, limit: i64) -> Result<TestsRun, StoreError> {
    let claimed = claim(hub.store(), now, limit).await?;
    let mut run = TestsRun::default();
    if claimed.is_empty() {
        return Ok(run);
    }
    // One limit per profile: the profile's maximum concurrent connections.
    let mut limits: BTreeMap<String, Arc<tokio::sync::Semaphore>> = BTreeMap::new();
    // A profile that is gone is `None`; one whose stored row does not read is an error
    // the mailbox's test reports, never a profile silently missing.
    let mut profiles: BTreeMap<String, Option<Result<EmailServerProfile, String>>> =
        BTreeMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    for c in claimed {
        let config = MailboxConfig::of(&c.mailbox);
        let profile = match config.as_ref().ok().and_then(|c| c.server_profile.clone()) {
            Some(p) => {
                if !profiles.contains_key(&p) {
                    let loaded = match server_profiles::load(hub.store(), &p).await {
                        Ok(found) => Some(Ok(found)),
                        Err(server_profiles::ProfileError::Store(StoreError::NotFound {
                            ..
                        })) => None,
                        Err(e) => Some(Err(e.to_string())),
                    };
                    profiles.insert(p.clone(), loaded);
                }
                profiles.get(&p).cloned().flatten()
            }
            None => None,
        };
        let limit = profile.as_ref().and_then(|p| p.as_ref().ok()).map(|p| {
            limits
                .entry(p.id.clone())
                .or_insert_with(|| {
                    Arc::new(tokio::sync::Semaphore::new(
                        p.settings.max_concurrent_connections as usize,
                    ))
                })
                .clone()
        });
        let hub = hub.clone();
        tasks.spawn(async move {
            let _permit = match &limit {
                Some(l) => Some(l.clone().acquire_owned().await),
                None => None,
            };
            let profile = profile.as_ref().map(|p| p.as_ref());
            let outcome = test_one(&hub, &c.mailbox, config, profile).await;
            (c, outcome)
        });
    }
    let mut writes: BTreeMap<String, Vec<WriteOp>> = BTreeMap::new();
    let mut tested: Vec<String> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (c, outcome) = match done {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "a mailbox test stopped");
                continue;
            }
        };
        let outcome = outcome?;
        run.tested += 1;
        let enabled = record(hub, &c, &outcome, now, &mut run).await?;
        tested.push(c.mailbox.id.clone());
        if let Some(remote) = &c.remote_id {
            writes
                .entry(c.mailbox.connection_id.clone())
                .or_default()
                .push(status_write(&c.mailbox, remote, &outcome, enabled));
        } else {
            run.not_written += 1;
        }
    }
    // Several batches at once, as many as the organization's connection takes.
    let mut pushes = tokio::task::JoinSet::new();
    for (org, ops) in writes {
        let lanes = crate::plugin_endpoints::push_concurrency(hub, &org)
            .await
            .max(1);
        let per_lane = ops.len().div_ceil(lanes).clamp(1, WRITE_BATCH);
        for batch in ops.chunks(per_lane) {
            let (hub, org, batch) = (hub.clone(), org.clone(), batch.to_vec());
            pushes.spawn(async move {
                let target = ConnectionEndpoint {
                    hub: &hub,
                    connection: org.clone(),
                    retry: RetryPolicy::default(),
                };
                let n = batch.len() as u64;
                match Target::push(&target, MAILBOXES_SCOPE, batch).await {
                    Ok(results) => {
                        let mut failed = 0;
                        for r in results {
                            if let Err(e) = r.outcome {
                                failed += 1;
                                tracing::warn!(organization = %org, op = %r.op_id, error = %e.describe(), "a mailbox's test statuses were not written to Dynamics");
                            }
                        }
                        failed
                    }
                    Err(e) => {
                        tracing::warn!(organization = %org, error = %e, "test statuses were not written to Dynamics");
                        n
                    }
                }
            });
            // Keep at most `lanes` pushes of this organization in flight.
            while pushes.len() >= lanes {
                if let Some(Ok(failed)) = pushes.join_next().await {
                    run.not_written += failed;
                }
            }
        }
    }
    while let Some(done) = pushes.join_next().await {
        if let Ok(failed) = done {
            run.not_written += failed;
        }
    }
    // What the tests enabled (or disabled) starts (or stops) processing.
    let processing = super::dynamics_flow::materialize(hub, &tested).await?;
    run.processing = processing.running.len() as u64;
    run.mapper_missing = processing.mapper_missing;
    Ok(run)
}

/// A processing run found Exchange refusing the mailbox (its credentials or
/// rights, `refused`), or Exchange kept failing it: the mailbox is disabled
/// for email processing and its owner's wall says why and what to do, as a
/// failed test would.
pub async fn disable_after_processing_failure(
    hub: &Hub,
    mailbox_id: &str,
    detail: &str,
    refused: bool,
) -> Result<(), StoreError> {
    let store = hub.store();
    let m = mailboxes::get(store, mailbox_id).await?;
    if refused {
        mailboxes::disable_for_auth(store, mailbox_id, detail).await?;
    } else {
        sqlx::query(
            "UPDATE mailboxes SET enabled = 0, status = $1, status_detail = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(STATUS_PROCESSING_FAILED)
        .bind(detail)
        .bind(now_ms())
        .bind(mailbox_id)
        .execute(store.pool())
        .await?;
    }
    let who = m.display_name.as_deref().unwrap_or(&m.address);
    let message = format!(
        "Mailbox {who} ({}) was disabled for email processing: Exchange failed it during synchronization ({detail}). Run `syncbridge dynamics diagnose {mailbox_id}` (POST /api/v1/dynamics/mailboxes/{{id}}/diagnose) for the cause and its resolution, fix it, then test and enable the mailbox again.",
        m.address
    );
    alerts::raise(
        store,
        NewAlert {
            company_id: m.company_id.as_deref(),
            connection_id: Some(&m.connection_id),
            mailbox_id: Some(&m.id),
            severity: "error",
            code: if refused {
                "mailbox_processing_refused"
            } else {
                "mailbox_processing_failed"
            },
            message: &message,
            ..NewAlert::default()
        },
    )
    .await?;
    Ok(())
}

fn channel(v: i64) -> ChannelStatus {
    match v {
        SUCCESS => ChannelStatus::Success,
        FAILURE => ChannelStatus::Failure,
        _ => ChannelStatus::NotRun,
    }
}

/// The write of a mailbox's statuses (and whether it is enabled) to its Dynamics row.
fn status_write(m: &Mailbox, remote: &str, o: &Outcome, enabled: bool) -> WriteOp {
    WriteOp {
        op_id: m.id.clone(),
        action: WriteAction::Update,
        target_id: Some(remote.to_owned()),
        body: Some(ItemBody::Mailbox(syncbridge_model::Mailbox {
            address: m.address.clone(),
            display_name: m.display_name.clone(),
            enabled,
            approved: m.approved,
            incoming_status: channel(o.incoming),
            outgoing_status: channel(o.outgoing),
            calendar_status: channel(o.act),
        })),
        fields: vec![
            "incoming_status".into(),
            "outgoing_status".into(),
            "calendar_status".into(),
            "enabled".into(),
        ],
    }
}

/// Records an outcome of the pass that started at `now`: the test row, the
/// mailbox's state and the owner's alert. Answers whether the mailbox is
/// enabled afterwards.
async fn record(
    hub: &Hub,
    c: &Claimed,
    o: &Outcome,
    now: i64,
    run: &mut TestsRun,
) -> Result<bool, StoreError> {
    let store = hub.store();
    let m = &c.mailbox;
    let who = m.display_name.as_deref().unwrap_or(&m.address);
    let (scheduled, due, retries, enabled) = match &o.error {
        None => {
            run.succeeded += 1;
            (0, now, 0, true)
        }
        Some(e) if e.transient && c.retry_count + 1 < MAX_TRANSIENT_TRIES => {
            run.postponed += 1;
            (
                1,
                now + RETRY_AFTER.as_millis() as i64,
                c.retry_count + 1,
                m.enabled,
            )
        }
        Some(_) => {
            run.failed += 1;
            (0, now, c.retry_count + 1, false)
        }
    };
    let transient_again = scheduled == 1;
    // The error shown: the mailbox's, or else that of its outgoing e-mail, or else that of its
    // appointments, contacts and tasks.
    let shown = o
        .error
        .as_ref()
        .or(o.outgoing_error.as_ref())
        .or(o.act_error.as_ref());
    sqlx::query(
        "UPDATE mailbox_tests SET scheduled = $1, due_at = $2, claimed_until = NULL, retry_count = $3,
            incoming_status = $4, outgoing_status = $5, act_status = $6, tested_at = $7,
            error_class = $8, error_code = $9, error_message = $10, error_remedy = $11
         WHERE mailbox_id = $12",
    )
    .bind(scheduled)
    .bind(due)
    .bind(retries)
    .bind(o.incoming)
    .bind(o.outgoing)
    .bind(o.act)
    .bind(now)
    .bind(match (&o.error, &o.outgoing_error, &o.act_error) {
        (Some(e), _, _) if e.transient && transient_again => Some("transient"),
        (Some(_), _, _) => Some("permanent"),
        (None, Some(_), _) => Some("outgoing"),
        (None, None, Some(_)) => Some("act"),
        (None, None, None) => None,
    })
    .bind(shown.map(|e| e.code.clone()))
    .bind(shown.map(|e| e.message.clone()))
    .bind(shown.map(|e| e.remedy.clone()))
    .bind(&m.id)
    .execute(store.pool())
    .await?;
    let (severity, code, message) = match &o.error {
        None => {
            sqlx::query(
                "UPDATE mailboxes SET enabled = 1, status = $1, status_detail = NULL, updated_at = $2 WHERE id = $3",
            )
            .bind(mailboxes::STATUS_OK)
            .bind(now)
            .bind(&m.id)
            .execute(store.pool())
            .await?;
            match (&o.outgoing_error, &o.act_error) {
                (Some(e), act) => (
                    "warning",
                    "mailbox_outgoing_failed",
                    format!("The email configuration of mailbox {who} ({}) was tested and the mailbox is enabled (incoming {}, appointments/contacts/tasks {}), but outgoing e-mail is not sent: {} (error {}). {}{}", m.address, label(o.incoming), label(o.act), e.message, e.code, e.remedy, act.as_ref().map(|a| format!(" Appointments, contacts and tasks failed too: {} (error {}). {}", a.message, a.code, a.remedy)).unwrap_or_default()),
                ),
                (None, None) => (
                    "info",
                    "mailbox_test_succeeded",
                    format!("The email configuration of mailbox {who} ({}) was tested and the mailbox is enabled: incoming {}, outgoing {}, appointments/contacts/tasks {}.", m.address, label(o.incoming), label(o.outgoing), label(o.act)),
                ),
                (None, Some(e)) => (
                    "warning",
                    if e.code == super::dynamics_owner::OTHER_ORG {
                        "mailbox_act_other_org"
                    } else {
                        "mailbox_act_failed"
                    },
                    format!("The email configuration of mailbox {who} ({}) was tested and the mailbox is enabled for e-mail (incoming {}, outgoing {}), but not for appointments, contacts and tasks: {} (error {}). {}", m.address, label(o.incoming), label(o.outgoing), e.message, e.code, e.remedy),
                ),
            }
        }
        Some(e) if transient_again => (
            "warning",
            "mailbox_test_postponed",
            format!("The email configuration test of mailbox {who} ({}) failed for a reason that may pass ({}: {}); it is tried again in 5 minutes (attempt {} of {MAX_TRANSIENT_TRIES}).", m.address, e.code, e.message, retries + 1),
        ),
        Some(e) => {
            let detail = format!("{}: {}", e.code, e.message);
            if e.code == "401" {
                mailboxes::disable_for_auth(store, &m.id, &detail).await?;
            } else {
                sqlx::query(
                    "UPDATE mailboxes SET enabled = 0, status = $1, status_detail = $2, updated_at = $3 WHERE id = $4",
                )
                .bind(STATUS_TEST_FAILED)
                .bind(&detail)
                .bind(now)
                .bind(&m.id)
                .execute(store.pool())
                .await?;
            }
            (
                "error",
                "mailbox_test_failed",
                format!("Mailbox {who} ({}) was disabled for email processing: {} (error {}). {} Then test and enable the mailbox again.", m.address, e.message, e.code, e.remedy),
            )
        }
    };
    if o.error.is_none() {
        // The mailbox works again: its earlier failures are over.
        sqlx::query(
            "UPDATE alerts SET resolved_at = $1 WHERE mailbox_id = $2 AND resolved_at IS NULL",
        )
        .bind(now)
        .bind(&m.id)
        .execute(store.pool())
        .await?;
    }
    let alert = alerts::raise(
        store,
        NewAlert {
            company_id: m.company_id.as_deref(),
            connection_id: Some(&m.connection_id),
            mailbox_id: Some(&m.id),
            severity,
            code,
            message: &message,
            ..NewAlert::default()
        },
    )
    .await?;
    if o.error.is_none() && o.outgoing_error.is_none() && o.act_error.is_none() {
        // News for the owner's wall, nothing for an operator to act on.
        alerts::resolve(store, &alert.id).await?;
    }
    Ok(enabled)
}

fn label(v: i64) -> &'static str {
    match v {
        SUCCESS => "Success",
        FAILURE => "Failure",
        _ => "Not Run",
    }
}

/// Tests one mailbox: its configuration, approval and credentials, then
/// opens its calendar (and, for appointments, contacts and tasks, its
/// contacts and tasks) through the profile's connection as the sync would,
/// and, when outgoing e-mail goes with its own account or location, checks
/// that one ([`check_outgoing`]).
async fn test_one(
    hub: &Hub,
    m: &Mailbox,
    config: Result<MailboxConfig, String>,
    profile: Option<Result<&EmailServerProfile, &String>>,
) -> Result<Outcome, StoreError> {
    let failed = |c: &MailboxConfig, e: TestError| {
        let st = |d: Delivery| {
            if d == Delivery::ServerSideSync {
                FAILURE
            } else {
                NOT_RUN
            }
        };
        Outcome {
            incoming: st(c.incoming),
            outgoing: st(c.outgoing),
            act: st(c.act),
            error: Some(e),
            act_error: None,
            outgoing_error: None,
        }
    };
    let c = match config {
        Ok(c) => c,
        Err(why) => {
            return Ok(Outcome {
                incoming: NOT_RUN,
                outgoing: NOT_RUN,
                act: NOT_RUN,
                error: Some(TestError::permanent(
                    "InvalidConfiguration",
                    why,
                    "Set the mailbox's profile and delivery methods again (edit the mailbox).",
                )),
                act_error: None,
                outgoing_error: None,
            })
        }
    };
    let on = [c.incoming, c.outgoing, c.act].contains(&Delivery::ServerSideSync);
    if !on {
        return Ok(failed(&c, TestError::permanent(
            "NotConfigured",
            "no delivery method of the mailbox is server-side synchronization, so there is nothing to test",
            "Apply the default email settings to the mailbox, or edit it and set incoming, outgoing or appointments/contacts/tasks to server-side synchronization.",
        )));
    }
    let defaults = load_defaults(hub.store(), &m.connection_id)
        .await
        .map_err(|e| match e {
            DynamicsError::Store(s) => s,
            other => StoreError::InUse(other.to_string()),
        })?;
    if defaults.require_approval && !m.approved {
        return Ok(failed(&c, TestError::permanent(
            "NotApproved",
            "the email address of the mailbox has not been approved",
            "Approve email for the mailbox (Approve Email), or turn off \"process emails only for approved users and queues\" in the organization's email settings.",
        )));
    }
    let Some(profile_id) = &c.server_profile else {
        return Ok(failed(&c, TestError::permanent(
            "NoServerProfile",
            "the mailbox has no email server profile",
            "Apply the default email settings, or edit the mailbox and choose a server profile.",
        )));
    };
    let p = match profile {
        Some(Ok(p)) => p,
        Some(Err(why)) => {
            return Ok(failed(
                &c,
                TestError::permanent(
                    "InvalidServerProfile",
                    format!("the mailbox's email server profile {profile_id:?} cannot be read: {why}"),
                    format!("Save profile {profile_id:?} again with every field (`syncbridge email-profile update`), then test again."),
                ),
            ))
        }
        None => {
            return Ok(failed(
                &c,
                TestError::permanent(
                    "NoServerProfile",
                    format!("the mailbox's email server profile {profile_id:?} does not exist"),
                    "Edit the mailbox and choose an existing server profile.",
                ),
            ))
        }
    };
    if p.settings.per_mailbox_credentials()
        && !server_profiles::has_mailbox_credential(hub.store(), p, &m.address).await?
    {
        return Ok(failed(&c, TestError::permanent(
            "CredentialsMissing",
            format!("profile {:?} uses each mailbox's own credentials, and none were entered for this mailbox", p.id),
            format!("Enter the mailbox's credentials (`syncbridge email-profile credential {} {}`), or use a profile with its own credentials and impersonation.", p.id, m.address),
        )));
    }
    let endpoint = ConnectionEndpoint {
        hub,
        connection: p.connection_id.clone(),
        retry: RetryPolicy {
            attempts: 1,
            base: Duration::from_millis(100),
            max_wait: Duration::from_secs(1),
        },
    };
    let mut kinds = vec!["calendar"];
    if c.act == Delivery::ServerSideSync {
        kinds.extend(["contacts", "tasks"]);
    }
    for kind in kinds {
        let scope = if kind == "calendar" {
            format!("calendar:mailbox={},past=0,future=1", m.address)
        } else {
            format!("{kind}:mailbox={}", m.address)
        };
        if let Err(e) = Source::pull(&endpoint, &scope, None, 1).await {
            let mut err = classify(&e);
            if !err.transient {
                if let Some((cause, remedy)) = diagnose_failure(hub, p, &m.address).await {
                    err.message = format!("{}; {cause}", err.message);
                    if !remedy.is_empty() {
                        err.remedy = remedy;
                    }
                }
            }
            return Ok(failed(&c, err));
        }
    }
    // Outgoing e-mail with its own account or location: checked apart, nothing sent.
    let mut outgoing_error = None;
    if c.outgoing == Delivery::ServerSideSync && server_profiles::outgoing_apart(&p.settings) {
        match check_outgoing(&endpoint, p, &m.address).await {
            Ok(()) => {}
            Err(e) if e.transient => return Ok(failed(&c, e)),
            Err(e) => outgoing_error = Some(e),
        }
    }
    // One mailbox syncs its appointments, contacts and tasks with one organization.
    let mut act_error = None;
    if c.act == Delivery::ServerSideSync {
        match super::dynamics_owner::claim(hub, &endpoint, m, c.sync_from_this_org_only).await? {
            Ok(super::dynamics_owner::Claimed::TakenOver { from }) => {
                tracing::info!(mailbox = %m.id, from = %from, "the mailbox's appointments, contacts and tasks were taken over from another organization");
            }
            Ok(_) => {}
            Err(super::dynamics_owner::Refused::Endpoint(e)) if classify(&e).transient => {
                return Ok(failed(&c, classify(&e)));
            }
            Err(refused) => {
                let (message, remedy) = refused.describe(m);
                let code = match refused {
                    super::dynamics_owner::Refused::OtherOrganization { .. } => {
                        super::dynamics_owner::OTHER_ORG
                    }
                    _ => "SyncOwnerUnavailable",
                };
                act_error = Some(TestError::permanent(code, message, remedy));
            }
        }
    }
    Ok(outcome(&c, outgoing_error, act_error))
}

/// The outcome of a test whose mailbox opened: each configured channel succeeds unless its own
/// check failed. A mailbox of which nothing can be processed fails as a whole.
fn outcome(
    c: &MailboxConfig,
    outgoing_error: Option<TestError>,
    act_error: Option<TestError>,
) -> Outcome {
    let on = |d: Delivery| d == Delivery::ServerSideSync;
    let st = |d: Delivery, e: &Option<TestError>| match (on(d), e) {
        (false, _) => NOT_RUN,
        (true, Some(_)) => FAILURE,
        (true, None) => SUCCESS,
    };
    let works = on(c.incoming)
        || (on(c.outgoing) && outgoing_error.is_none())
        || (on(c.act) && act_error.is_none());
    Outcome {
        incoming: st(c.incoming, &None),
        outgoing: st(c.outgoing, &outgoing_error),
        act: st(c.act, &act_error),
        error: if works {
            None
        } else {
            outgoing_error.clone().or_else(|| act_error.clone())
        },
        outgoing_error: outgoing_error.filter(|_| works),
        act_error: act_error.filter(|_| works),
    }
}

/// Opens the mailbox as outgoing e-mail goes (`outbox:…,check=true`: one request with the
/// outgoing account at the outgoing location, as the connector's plugin documents; nothing is
/// sent, and the plain outbox scope that processing reads stays request-free).
async fn check_outgoing(
    endpoint: &ConnectionEndpoint<'_>,
    p: &EmailServerProfile,
    address: &str,
) -> Result<(), TestError> {
    let scope = format!("outbox:mailbox={address},check=true");
    match Source::pull(endpoint, &scope, None, 1).await {
        Ok(_) => Ok(()),
        Err(e) => Err(outgoing_failure(classify(&e), p)),
    }
}

/// A permanent failure of the outgoing check, naming the outgoing account and how to fix it.
fn outgoing_failure(mut e: TestError, p: &EmailServerProfile) -> TestError {
    if e.transient {
        return e;
    }
    let account = p
        .settings
        .outgoing_auth()
        .username
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let who = match account {
        Some(u) => format!("the outgoing account {u:?} of profile {:?}", p.id),
        None => format!(
            "the mailbox's own credentials at the outgoing location of profile {:?}",
            p.id
        ),
    };
    e.message = format!(
        "outgoing e-mail cannot be sent: {who} was refused: {}",
        e.message
    );
    let id = &p.id;
    e.remedy = match (e.code.as_str(), account) {
        ("401", Some(u)) => format!(
            "Enter the current password of the outgoing account {u} (Exchange Online: the outgoing app's client secret) on profile {id}: `syncbridge email-profile update {id} --settings-file <its settings> --outgoing-secret-file <file>` (or outgoing_secret in PUT /api/v1/email-server-profiles/{id}); then test and enable the mailbox again. Incoming e-mail is processed meanwhile."
        ),
        ("401", None) => format!(
            "Enter the mailbox's current credentials (`syncbridge email-profile credential {id} <address>`); then test and enable the mailbox again."
        ),
        ("403", _) => format!(
            "Let {who} send as the mailbox: on premises grant it the ApplicationImpersonation role (or Send As and full access to the mailbox); on Exchange Online grant the app the permissions the error names. Then test and enable the mailbox again."
        ),
        _ => format!(
            "{} This concerns {who}; then test and enable the mailbox again.",
            e.remedy
        ),
    };
    e
}

/// The error class of a failed mailbox call: what the test does next.
fn classify(e: &EndpointError) -> TestError {
    let transient = |code: &str, message: String| {
        TestError {
        transient: true,
        code: code.to_owned(),
        message,
        remedy: "Nothing yet: the test is tried again later; if it keeps failing, check that the email server is reachable and not throttling syncbridge.".into(),
    }
    };
    match e {
        EndpointError::Plugin(p) => match p {
            PluginError::Auth(m) => TestError::permanent(
                "401",
                format!("Http server returned 401 Unauthorized exception ({m})"),
                "Make sure the credentials specified in the mailbox or its profile are correct and have sufficient permissions.",
            ),
            PluginError::Forbidden(m) => TestError::permanent(
                "403",
                format!("the account may not open the mailbox ({m})"),
                "Grant the profile's account impersonation (ApplicationImpersonation) or full access to the mailbox.",
            ),
            PluginError::NotFound(m) => TestError::permanent(
                "MailboxNotFound",
                format!("the email server has no such mailbox ({m})"),
                "Make sure the mailbox's e-mail address in Dynamics matches its primary address in Exchange.",
            ),
            PluginError::Throttled(t) => transient("Throttled", t.message.clone()),
            PluginError::Transient(m) => transient("Transient", m.clone()),
            PluginError::Remote(r) if r.status >= 500 => {
                transient("ServerError", format!("HTTP {}: {}", r.status, r.message))
            }
            other => TestError::permanent(
                other.class(),
                other.describe(),
                "Check the email server profile's locations and the server's answer above.",
            ),
        },
        EndpointError::Stopped(s) => transient("PluginStopped", s.to_string()),
        EndpointError::Interrupted(s) => transient("Interrupted", s.clone()),
        EndpointError::Host(h) => TestError::permanent(
            "HostError",
            h.to_string(),
            "Fix the profile's connection as the message says.",
        ),
    }
}

/// The cause and remedy of a permanent failure of `address`: one of KB
/// 3212785's five causes when the evidence names one, else the connection
/// test's own finding for the mailbox.
async fn diagnose_failure(
    hub: &Hub,
    p: &EmailServerProfile,
    address: &str,
) -> Option<(String, String)> {
    let evidence = dynamics_diagnose::evidence(hub, p, address).await;
    if let Some(cause) = dynamics_diagnose::classify(p.settings.server_type, &evidence) {
        return Some((
            format!(
                "cause {} of KB 3212785: {}",
                cause.number(),
                cause.summary()
            ),
            cause.resolution().to_owned(),
        ));
    }
    let lower = address.to_ascii_lowercase();
    let failed: Vec<&dynamics_diagnose::Evidence> =
        evidence.iter().filter(|e| e.outcome == "failed").collect();
    failed
        .iter()
        .find(|e| e.check.to_ascii_lowercase().ends_with(&lower))
        .or_else(|| failed.first())
        .and_then(|e| Some((e.detail.clone()?, String::new())))
}

/// Diagnoses mailbox `id` (KB 3212785's 401 Unauthorized causes): the
/// evidence its profile's connector gathers, the cause that applies and
/// the article's resolution.
pub async fn diagnose(
    hub: &Hub,
    actor: Actor<'_>,
    id: &str,
) -> Result<dynamics_diagnose::Diagnosis, DynamicsError> {
    let d = get(hub, actor, id).await?;
    let m = &d.mailbox;
    let config = MailboxConfig::of(m).map_err(DynamicsError::Invalid)?;
    let Some(profile_id) = config.server_profile else {
        return Err(DynamicsError::Invalid(format!(
            "mailbox {id:?} has no email server profile; apply the default email settings or edit it first"
        )));
    };
    let p = server_profiles::load(hub.store(), &profile_id).await?;
    let evidence = dynamics_diagnose::evidence(hub, &p, &m.address).await;
    let cause = dynamics_diagnose::classify(p.settings.server_type, &evidence);
    let summary = match cause {
        Some(c) => format!("cause {} of KB 3212785: {}", c.number(), c.summary()),
        None if evidence.iter().all(|e| e.outcome == "ok") => {
            "every check passed: Exchange accepts the mailbox with the profile's credentials".into()
        }
        None => "none of KB 3212785's five causes: see the failed checks".into(),
    };
    Ok(dynamics_diagnose::Diagnosis {
        mailbox_id: m.id.clone(),
        address: m.address.clone(),
        profile: Some(p.id.clone()),
        cause,
        cause_number: cause.map(|c| c.number()),
        summary,
        resolution: cause.map(|c| c.resolution().to_owned()),
        evidence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(settings: Value) -> Mailbox {
        Mailbox {
            id: "org:ann@contoso.com".into(),
            connection_id: "org".into(),
            company_id: None,
            address: "ann@contoso.com".into(),
            display_name: None,
            enabled: false,
            approved: true,
            settings,
            status: "untested".into(),
            status_detail: None,
            discovered_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn an_unconfigured_mailbox_processes_nothing_and_bad_stored_values_are_errors() {
        let c = MailboxConfig::of(&mailbox(json!({}))).unwrap();
        assert_eq!(c.incoming, Delivery::None);
        assert_eq!(c.server_profile, None);
        let bad = MailboxConfig::of(&mailbox(json!({"incoming": "router"})));
        assert!(bad.unwrap_err().contains("incoming"));
    }

    #[test]
    fn a_failed_outgoing_check_fails_only_outgoing_unless_nothing_else_works() {
        let config = |incoming, act| MailboxConfig {
            server_profile: Some("exch".into()),
            incoming,
            outgoing: Delivery::ServerSideSync,
            act,
            sync_from_this_org_only: false,
        };
        let refused = || Some(TestError::permanent("401", "refused", "enter it again"));
        let o = outcome(
            &config(Delivery::ServerSideSync, Delivery::None),
            refused(),
            None,
        );
        assert_eq!((o.incoming, o.outgoing, o.act), (SUCCESS, FAILURE, NOT_RUN));
        assert!(o.error.is_none() && o.outgoing_error.is_some());
        // Outgoing is all there is: the mailbox fails.
        let o = outcome(&config(Delivery::None, Delivery::None), refused(), None);
        assert_eq!((o.incoming, o.outgoing), (NOT_RUN, FAILURE));
        assert_eq!(o.error.unwrap().code, "401");
        assert!(o.outgoing_error.is_none());
        let o = outcome(
            &config(Delivery::ServerSideSync, Delivery::ServerSideSync),
            None,
            None,
        );
        assert_eq!((o.incoming, o.outgoing, o.act), (SUCCESS, SUCCESS, SUCCESS));
    }

    #[test]
    fn errors_are_classed_transient_or_permanent() {
        let auth = classify(&EndpointError::Plugin(PluginError::Auth("no".into())));
        assert!(!auth.transient);
        assert_eq!(auth.code, "401");
        let busy = classify(&EndpointError::Plugin(PluginError::Transient("503".into())));
        assert!(busy.transient);
    }
}
