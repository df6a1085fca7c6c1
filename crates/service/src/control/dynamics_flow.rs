//! Flow 3's e-mail processing as engine profiles: what a Dynamics mailbox
//! that passed Test & Enable synchronizes through server-side sync, each
//! direction its own profile of the engine, and what a run of one means for
//! the mailbox (an auth failure disables only that mailbox, with an alert
//! naming the cause; tracked e-mail that failed is moved to Undeliverable;
//! sent e-mail is marked sent in Dynamics).
//!
//! Per mailbox (ids `d365-<kind>-<mailbox id, safe>`):
//!
//! | kind | source → target | rules |
//! |---|---|---|
//! | `incoming-email` | profile connection `inbox:mailbox=…` → organization `emails:mailbox=…,direction=incoming` | received after Process Email From; one activity per internet message id (an existing one is linked, never updated); nothing deleted in Dynamics when a message leaves the Inbox |
//! | `outgoing-email` | organization `emails:mailbox=…,direction=outgoing` (pending send) → profile connection `outbox:mailbox=…` | sent once (by its link), then marked sent in Dynamics; never updated, never re-sent |
//! | `appointments` | organization `appointments:mailbox=…` (the owner's) → `calendar:mailbox=…,past=30,future=365` | anchored `d365:<row>`; subject, start, end, all-day, location and body flow both ways (the newer change wins); deleted from the mailbox when the row goes |
//! | `recurring-appointments` | organization `recurring-appointments:mailbox=…` (the owner's recurring appointment masters, served as mailbox events) → the same calendar | series masters with the pattern's RRULE, deleted occurrences and modified occurrences (Dataverse's exception rows; pattern and occurrences flow one way); the same two-way fields of the master |
//! | `tasks` | organization `tasks:mailbox=…` → `tasks:mailbox=…` | start, due, status, completed and body both ways |
//! | `contacts` | organization `contacts:mailbox=…` → `contacts:mailbox=…` | one way; a deactivated contact leaves the mailbox |
//!
//! A kind runs while the mailbox is enabled, approved (when the
//! organization requires it), configured for server-side synchronization of
//! that kind (incoming, outgoing, or appointments/contacts/tasks) with a
//! profile, and its last test of that kind succeeded. The
//! profile polls every "Minimum Polling Interval".

use super::dynamics_mailboxes::{self, Delivery, MailboxConfig, MailboxTest, SUCCESS};
use super::email_server_profiles::{self as server_profiles, EmailServerProfile, ServerType};
use super::mailboxes::{self, Mailbox};
use crate::hub::Hub;
use crate::plugin_endpoints::ConnectionEndpoint;
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};
use syncbridge_model::{EmailMessage, ItemBody, PluginError, WriteAction, WriteOp};
use syncbridge_store::{now_ms, StoreError};
use syncbridge_sync::endpoint::Target;
use syncbridge_sync::ledger::Ledger;
use syncbridge_sync::profiles::{self as engine_profiles, Profile, ProfileSettings};
use syncbridge_sync::retry::RetryPolicy;
use syncbridge_sync::rules::{
    BackFlow, Brakes, ConflictPolicy, Direction, FieldRules, OnRemove, OnTargetGone,
};
use syncbridge_sync::EndpointError;

/// The mapper of flow 3's e-mail processing.
pub const MAPPER: &str = "dynamics-exchange";
/// Items per pulled page and pushed batch.
pub const PAGE_SIZE: u32 = 100;
/// Error classes of a failed item that are the item's own (retrying does not
/// help): such messages go to Undeliverable when the profile says so.
const PERMANENT_ITEM_ERRORS: &[&str] = &[
    "invalid",
    "conflict",
    "forbidden",
    "not-found",
    "remote",
    "unsupported",
];

/// What one derived engine profile processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlowKind {
    IncomingEmail,
    OutgoingEmail,
    Appointments,
    /// Recurring appointment masters: series in the mailbox's calendar.
    RecurringAppointments,
    Tasks,
    Contacts,
}

impl FlowKind {
    pub const ALL: [FlowKind; 6] = [
        FlowKind::IncomingEmail,
        FlowKind::OutgoingEmail,
        FlowKind::Appointments,
        FlowKind::RecurringAppointments,
        FlowKind::Tasks,
        FlowKind::Contacts,
    ];

    /// The stored name (also part of the profile id and the mapper's `kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            FlowKind::IncomingEmail => "incoming-email",
            FlowKind::OutgoingEmail => "outgoing-email",
            FlowKind::Appointments => "appointments",
            FlowKind::RecurringAppointments => "recurring-appointments",
            FlowKind::Tasks => "tasks",
            FlowKind::Contacts => "contacts",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The connection of `profile` (of this kind) that reaches the mailbox's
    /// Exchange: the source for incoming e-mail, the target otherwise.
    pub fn mail_connection(self, profile: &Profile) -> &str {
        match self {
            FlowKind::IncomingEmail => &profile.source_connection,
            FlowKind::OutgoingEmail
            | FlowKind::Appointments
            | FlowKind::RecurringAppointments
            | FlowKind::Tasks
            | FlowKind::Contacts => &profile.target_connection,
        }
    }
}

/// The id of the engine profile of `kind` for mailbox `mailbox_id`.
pub fn profile_id(mailbox_id: &str, kind: FlowKind) -> String {
    let safe: String = mailbox_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("d365-{}-{safe}", kind.as_str())
}

/// One engine profile of the flow, and whether it runs now.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowProfile {
    pub profile: Profile,
    pub kind: FlowKind,
    pub enabled: bool,
    /// Seconds between runs (the profile's minimum polling interval).
    pub interval_secs: u64,
}

/// Incoming e-mail: one activity per message, linked when it exists, never
/// updated or deleted by a change in the mailbox.
fn incoming_rules() -> FieldRules {
    FieldRules {
        match_existing: true,
        update_matched: false,
        on_remove: OnRemove::Ignore,
        on_target_gone: OnTargetGone::Unlink,
        remove_matched: false,
        reactivate: false,
        full_reconcile_secs: None,
        ..FieldRules::default()
    }
}

/// Outgoing e-mail: sent once; a message sent cannot be read back, so it is
/// never looked for, re-sent or removed.
fn outgoing_rules() -> FieldRules {
    FieldRules {
        match_existing: false,
        update_matched: false,
        on_remove: OnRemove::Ignore,
        on_target_gone: OnTargetGone::Unlink,
        remove_matched: false,
        reactivate: false,
        full_reconcile_secs: None,
        ..FieldRules::default()
    }
}

/// The calendar window of appointments in the mailbox: days back, days ahead.
pub const CALENDAR_PAST_DAYS: u32 = 30;
pub const CALENDAR_FUTURE_DAYS: u32 = 365;

/// One mailbox's calendar, tasks or contacts: a few removals never hold a
/// run; from ten on, more than a fifth of the linked items (or more than
/// 200) waits for approval.
pub const ACT_BRAKES: Brakes = Brakes {
    max_removals: 200,
    max_removal_share: 0.20,
    share_from: 10,
};

/// Appointments, tasks and contacts: the owner's Dynamics rows are kept in
/// the mailbox, anchored to their row; `two_way` fields flow back from
/// Exchange as well (the newer change wins); what this profile created is
/// deleted from the mailbox when its row goes.
fn act_rules(two_way: &[&str]) -> FieldRules {
    FieldRules {
        direction: two_way
            .iter()
            .map(|f| ((*f).to_owned(), Direction::Both))
            .collect(),
        conflict: two_way
            .iter()
            .map(|f| ((*f).to_owned(), ConflictPolicy::NewestWins))
            .collect(),
        back_flow: BackFlow::All,
        back_through_mapper: !two_way.is_empty(),
        brakes: ACT_BRAKES,
        on_remove: OnRemove::Delete,
        match_existing: true,
        remove_matched: false,
        reactivate: false,
        ..FieldRules::default()
    }
}

/// The fields of a Dynamics appointment that flow both ways.
pub const APPOINTMENT_TWO_WAY: &[&str] =
    &["subject", "start", "end", "all_day", "location", "body"];
/// The fields of a Dynamics task that flow both ways (the title is Dynamics').
pub const TASK_TWO_WAY: &[&str] = &["start", "due", "status", "completed", "body"];

/// The engine profiles of mailbox `m` (pure). `require_approval` is the
/// organization's "process emails only for approved users and queues".
pub fn derive(
    m: &Mailbox,
    config: &MailboxConfig,
    test: Option<&MailboxTest>,
    profile: Option<&EmailServerProfile>,
    require_approval: bool,
) -> Vec<FlowProfile> {
    let Some(p) = profile else {
        return Vec::new();
    };
    let address = m.address.trim().to_ascii_lowercase();
    let working = m.enabled && (m.approved || !require_approval);
    let mail = &p.connection_id;
    let org = &m.connection_id;
    let interval_secs = u64::from(p.settings.min_polling_minutes) * 60;
    FlowKind::ALL
        .into_iter()
        .map(|kind| {
            let (delivery, tested) = match kind {
                FlowKind::IncomingEmail => (config.incoming, test.map(|t| t.incoming_status)),
                FlowKind::OutgoingEmail => (config.outgoing, test.map(|t| t.outgoing_status)),
                FlowKind::Appointments
                | FlowKind::RecurringAppointments
                | FlowKind::Tasks
                | FlowKind::Contacts => (config.act, test.map(|t| t.act_status)),
            };
            let act = |scope: &str, target: String, rules: FieldRules| {
                (
                    org,
                    format!("{scope}:mailbox={address}"),
                    serde_json::json!({"kind": kind.as_str()}),
                    mail,
                    target,
                    rules,
                )
            };
            let enabled =
                working && delivery == Delivery::ServerSideSync && tested == Some(SUCCESS);
            let (source_connection, source_scope, options, target_connection, target_scope, rules) =
                match kind {
                    FlowKind::IncomingEmail => {
                        let mut options = serde_json::json!({"kind": kind.as_str()});
                        if let Some(from) = &p.settings.process_email_from {
                            options["process_from"] = serde_json::Value::String(from.clone());
                        }
                        (
                            mail,
                            format!("inbox:mailbox={address}"),
                            options,
                            org,
                            format!("emails:mailbox={address},direction=incoming"),
                            incoming_rules(),
                        )
                    }
                    FlowKind::OutgoingEmail => (
                        org,
                        format!("emails:mailbox={address},direction=outgoing"),
                        serde_json::json!({"kind": kind.as_str()}),
                        mail,
                        format!("outbox:mailbox={address}"),
                        outgoing_rules(),
                    ),
                    FlowKind::Appointments => act(
                        "appointments",
                        format!("calendar:mailbox={address},past={CALENDAR_PAST_DAYS},future={CALENDAR_FUTURE_DAYS}"),
                        act_rules(APPOINTMENT_TWO_WAY),
                    ),
                    FlowKind::RecurringAppointments => act(
                        "recurring-appointments",
                        format!("calendar:mailbox={address},past={CALENDAR_PAST_DAYS},future={CALENDAR_FUTURE_DAYS}"),
                        act_rules(APPOINTMENT_TWO_WAY),
                    ),
                    FlowKind::Tasks => act(
                        "tasks",
                        format!("tasks:mailbox={address}"),
                        act_rules(TASK_TWO_WAY),
                    ),
                    FlowKind::Contacts => act(
                        "contacts",
                        format!("contacts:mailbox={address}"),
                        act_rules(&[]),
                    ),
                };
            let profile = Profile {
                    id: profile_id(&m.id, kind),
                    source_connection: source_connection.clone(),
                    source_scope,
                    mapper_plugin: MAPPER.to_owned(),
                    mapper_options: options.to_string(),
                    target_connection: target_connection.clone(),
                    target_scope,
                rules,
                page_size: PAGE_SIZE,
            };
            // The polling interval, but never below the flow's own minimum (calendars: 10 min).
            let interval_secs =
                interval_secs.max(engine_profiles::minimum_interval(&profile).as_secs());
            FlowProfile {
                profile,
                kind,
                enabled,
                interval_secs,
            }
        })
        .collect()
}

/// A stored row of `dynamics_flow_profiles`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRow {
    pub profile_id: String,
    pub mailbox_id: String,
    pub kind: FlowKind,
}

fn row_of(r: &sqlx::any::AnyRow) -> Result<FlowRow, StoreError> {
    let profile_id: String = r.try_get("profile_id")?;
    let kind: String = r.try_get("kind")?;
    Ok(FlowRow {
        kind: FlowKind::parse(&kind).ok_or_else(|| StoreError::Invalid {
            what: "dynamics flow profile",
            id: profile_id.clone(),
            detail: format!("unknown kind {kind:?}; edit its mailbox again"),
        })?,
        mailbox_id: r.try_get("mailbox_id")?,
        profile_id,
    })
}

/// The flow row of engine profile `id`, if flow 3 derived it.
pub async fn row(hub: &Hub, id: &str) -> Result<Option<FlowRow>, StoreError> {
    let row = sqlx::query(
        "SELECT profile_id, mailbox_id, kind FROM dynamics_flow_profiles WHERE profile_id = $1",
    )
    .bind(id)
    .fetch_optional(hub.store().pool())
    .await?;
    row.as_ref().map(row_of).transpose()
}

/// The engine profiles derived from mailbox `mailbox_id`.
pub async fn rows(hub: &Hub, mailbox_id: &str) -> Result<Vec<FlowRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT profile_id, mailbox_id, kind FROM dynamics_flow_profiles WHERE mailbox_id = $1 ORDER BY profile_id",
    )
    .bind(mailbox_id)
    .fetch_all(hub.store().pool())
    .await?;
    rows.iter().map(row_of).collect()
}

/// What [`materialize`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Materialized {
    /// Engine profiles that run now.
    pub running: Vec<String>,
    /// Mailboxes whose processing would run but cannot: the mapper is not installed.
    pub mapper_missing: bool,
}

/// Writes the engine profiles of the mailboxes `ids` as their settings,
/// tests and profiles say now: new ones created, changed ones saved (and,
/// when what they write changed, re-read in full), turned-off ones disabled
/// with their links kept. Mailboxes that are gone or not flow 3's are passed over.
pub async fn materialize(hub: &Hub, ids: &[String]) -> Result<Materialized, StoreError> {
    let store = hub.store();
    let mut done = Materialized::default();
    let mut profiles: HashMap<String, Option<EmailServerProfile>> = HashMap::new();
    let mut approval: HashMap<String, bool> = HashMap::new();
    let mapper = match store.get_plugin(MAPPER).await {
        Ok(_) => true,
        Err(StoreError::NotFound { .. }) => false,
        Err(e) => return Err(e),
    };
    for id in ids {
        let m = match mailboxes::get(store, id).await {
            Ok(m) => m,
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        let Ok(config) = MailboxConfig::of(&m) else {
            // A stored setting that does not read: its test reports it; nothing runs.
            disable_all(hub, id).await?;
            continue;
        };
        let profile = match &config.server_profile {
            None => None,
            Some(p) => {
                if !profiles.contains_key(p) {
                    let loaded = match server_profiles::load(store, p).await {
                        Ok(found) => Some(found),
                        Err(server_profiles::ProfileError::Store(StoreError::NotFound {
                            ..
                        })) => None,
                        Err(server_profiles::ProfileError::Store(
                            e @ (StoreError::Query(_) | StoreError::Connect(_)),
                        )) => return Err(e),
                        Err(e) => {
                            tracing::warn!(mailbox = %id, error = %e, "the mailbox's email server profile does not read: its processing stops");
                            None
                        }
                    };
                    profiles.insert(p.clone(), loaded);
                }
                profiles.get(p).cloned().flatten()
            }
        };
        if !approval.contains_key(&m.connection_id) {
            let d = dynamics_mailboxes::processing_defaults(store, &m.connection_id)
                .await
                .map_err(|e| match e {
                    dynamics_mailboxes::DynamicsError::Store(e) => e,
                    other => StoreError::Invalid {
                        what: "email processing defaults",
                        id: m.connection_id.clone(),
                        detail: other.to_string(),
                    },
                })?;
            approval.insert(m.connection_id.clone(), d.require_approval);
        }
        let test = dynamics_mailboxes::test_of(store, id).await?;
        let derived = derive(
            &m,
            &config,
            test.as_ref(),
            profile.as_ref(),
            approval[&m.connection_id],
        );
        if derived.is_empty() {
            disable_all(hub, id).await?;
            continue;
        }
        let known: BTreeMap<String, FlowRow> = rows(hub, id)
            .await?
            .into_iter()
            .map(|r| (r.profile_id.clone(), r))
            .collect();
        for fp in derived {
            let pid = fp.profile.id.clone();
            let enabled = fp.enabled && mapper;
            done.mapper_missing |= fp.enabled && !mapper;
            if !enabled && !known.contains_key(&pid) {
                // Never derived and nothing to run: nothing to keep.
                continue;
            }
            engine_profiles::save_derived(store, &fp.profile).await?;
            if !known.contains_key(&pid) {
                sqlx::query(
                    "INSERT INTO dynamics_flow_profiles (profile_id, mailbox_id, kind) VALUES ($1, $2, $3)",
                )
                .bind(&pid)
                .bind(id)
                .bind(fp.kind.as_str())
                .execute(store.pool())
                .await?;
            }
            engine_profiles::set_settings(
                store,
                &pid,
                &ProfileSettings {
                    company_id: m.company_id.clone(),
                    enabled,
                    interval_secs: Some(fp.interval_secs),
                    daily_at: None,
                    unreadable_interval: None,
                },
            )
            .await?;
            if enabled {
                done.running.push(pid);
            }
        }
    }
    if done.mapper_missing {
        tracing::warn!(
            mapper = MAPPER,
            "mailboxes are ready for server-side synchronization but the {MAPPER} mapper is not installed: install it (syncbridge plugin install target/plugins/{MAPPER}) and test and enable them again"
        );
    }
    Ok(done)
}

/// Materializes every mailbox that uses email server profile `profile`.
pub async fn materialize_profile(hub: &Hub, profile: &str) -> Result<Materialized, StoreError> {
    let ids: Vec<String> = server_profiles::mailboxes_using(hub.store(), profile)
        .await?
        .into_iter()
        .map(|m| m.id)
        .collect();
    materialize(hub, &ids).await
}

/// Stops every engine profile of mailbox `id` (links kept).
async fn disable_all(hub: &Hub, id: &str) -> Result<(), StoreError> {
    for r in rows(hub, id).await? {
        engine_profiles::set_enabled(hub.store(), &r.profile_id, false).await?;
    }
    Ok(())
}

/// How a run of a flow-3 profile ended, as far as the flow cares.
#[derive(Debug)]
pub enum RunEnd<'a> {
    /// It ran (items may still have failed one by one).
    Ran { run_id: &'a str },
    /// A side failed as a whole: `mail_side` when the profile's connection (Exchange) did.
    Failed {
        mail_side: bool,
        error: &'a EndpointError,
    },
    /// It could not start or stopped for another reason.
    Other,
}

/// What [`after_run`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AfterRun {
    /// E-mails marked sent in Dynamics.
    pub marked_sent: u64,
    /// Messages moved to Undeliverable.
    pub moved_undeliverable: u64,
    /// The mailbox was disabled (its credentials or rights were refused).
    pub disabled_mailbox: bool,
}

/// After a run of engine profile `row`: outgoing e-mail sent by the run is
/// marked sent in Dynamics; incoming messages that failed for a reason of
/// their own are moved to Undeliverable (when the profile says so, EWS
/// only); Exchange refusing the mailbox's credentials or rights disables
/// only that mailbox, with an alert for its owner naming the cause.
pub async fn after_run(hub: &Hub, row: &FlowRow, end: RunEnd<'_>) -> Result<AfterRun, StoreError> {
    let mut done = AfterRun::default();
    match end {
        RunEnd::Ran { run_id } => match row.kind {
            FlowKind::OutgoingEmail => {
                done.marked_sent = mark_sent(hub, row, run_id).await?;
            }
            FlowKind::IncomingEmail => {
                done.moved_undeliverable = move_failed(hub, row).await?;
            }
            FlowKind::Appointments
            | FlowKind::RecurringAppointments
            | FlowKind::Tasks
            | FlowKind::Contacts => {}
        },
        RunEnd::Other => {}
        RunEnd::Failed { mail_side, error } => {
            let refused = matches!(
                error,
                EndpointError::Plugin(PluginError::Auth(_) | PluginError::Forbidden(_))
            );
            if mail_side && refused {
                disable_for_auth(hub, &row.mailbox_id, error).await?;
                done.disabled_mailbox = true;
            } else if mail_side
                && failed_in_a_row(hub, &row.profile_id).await? + 1 >= MAX_FAILED_RUNS
            {
                // The seed's "tries again after some time or disables the mailbox": a
                // server that keeps failing for 10 polls stops this mailbox, with the cause.
                let detail = format!(
                    "{MAX_FAILED_RUNS} synchronizations in a row failed, the last with: {error}"
                );
                dynamics_mailboxes::disable_after_processing_failure(
                    hub,
                    &row.mailbox_id,
                    &detail,
                    false,
                )
                .await?;
                disable_all(hub, &row.mailbox_id).await?;
                done.disabled_mailbox = true;
            }
        }
    }
    Ok(done)
}

/// Failed runs of a processing profile after which its mailbox is disabled
/// (the seed's 10 tries, one per polling interval).
pub const MAX_FAILED_RUNS: u64 = 10;

/// How many of `profile`'s latest finished runs failed, newest first, until one did not.
async fn failed_in_a_row(hub: &Hub, profile: &str) -> Result<u64, StoreError> {
    let rows = sqlx::query(
        "SELECT status FROM runs WHERE profile_id = $1 AND finished_at IS NOT NULL
         ORDER BY finished_at DESC, id DESC LIMIT $2",
    )
    .bind(profile)
    .bind(MAX_FAILED_RUNS as i64)
    .fetch_all(hub.store().pool())
    .await?;
    let mut n = 0;
    for r in &rows {
        let status: String = r.try_get("status")?;
        if status != "failed" {
            break;
        }
        n += 1;
    }
    Ok(n)
}

/// Records what run `run_id` sent and marks every e-mail sent but not yet
/// marked: `sent` written to its Dynamics row. A mark that fails stays
/// recorded and is tried after the next run; the e-mail is never sent twice
/// (its link holds it).
async fn mark_sent(hub: &Hub, row: &FlowRow, run_id: &str) -> Result<u64, StoreError> {
    let store = hub.store();
    let ledger = Ledger::new(store.clone());
    let mut offset = 0u32;
    loop {
        let (entries, more) = ledger.run_entries(run_id, offset, 500).await?;
        offset += entries.len() as u32;
        for e in entries
            .iter()
            .filter(|e| e.phase == "applied" && e.action == "create")
        {
            sqlx::query(
                "INSERT INTO dynamics_sent_marks (profile_id, source_id, sent_at) VALUES ($1, $2, $3)
                 ON CONFLICT (profile_id, source_id) DO NOTHING",
            )
            .bind(&row.profile_id)
            .bind(&e.source_id)
            .bind(e.at)
            .execute(store.pool())
            .await?;
        }
        if !more {
            break;
        }
    }
    let pending = sqlx::query(
        "SELECT source_id, sent_at FROM dynamics_sent_marks WHERE profile_id = $1 ORDER BY source_id",
    )
    .bind(&row.profile_id)
    .fetch_all(store.pool())
    .await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let profile = engine_profiles::get(store, &row.profile_id).await?;
    let org = ConnectionEndpoint {
        hub,
        connection: profile.source_connection.clone(),
        retry: RetryPolicy::default(),
    };
    let mut marked = 0;
    for chunk in pending.chunks(PAGE_SIZE as usize) {
        let mut ops = Vec::new();
        for r in chunk {
            let source_id: String = r.try_get("source_id")?;
            let sent_at: i64 = r.try_get("sent_at")?;
            ops.push(WriteOp {
                op_id: source_id.clone(),
                action: WriteAction::Update,
                target_id: Some(source_id),
                body: Some(ItemBody::EmailMessage(EmailMessage {
                    subject: None,
                    from: None,
                    to: Vec::new(),
                    cc: Vec::new(),
                    body: None,
                    body_is_html: false,
                    sent: Some(rfc3339(sent_at)),
                    received: None,
                    internet_message_id: None,
                })),
                fields: vec!["sent".to_owned()],
            });
        }
        match Target::push(&org, &profile.source_scope, ops).await {
            Ok(results) => {
                for r in results {
                    match r.outcome {
                        Ok(_) => {
                            sqlx::query(
                                "DELETE FROM dynamics_sent_marks WHERE profile_id = $1 AND source_id = $2",
                            )
                            .bind(&row.profile_id)
                            .bind(&r.op_id)
                            .execute(store.pool())
                            .await?;
                            marked += 1;
                        }
                        Err(e) => {
                            tracing::warn!(profile = %row.profile_id, email = %r.op_id, error = %e.describe(), "a sent e-mail was not marked sent in Dynamics; tried again after the next run")
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(profile = %row.profile_id, error = %e, "sent e-mails were not marked sent in Dynamics; tried again after the next run");
                break;
            }
        }
    }
    Ok(marked)
}

/// Moves the Inbox messages whose tracking failed for a reason of their own
/// to the Undeliverable folder, when the mailbox's profile says so (EWS).
async fn move_failed(hub: &Hub, row: &FlowRow) -> Result<u64, StoreError> {
    let store = hub.store();
    let failed = sqlx::query(
        "SELECT source_id, error_class, error FROM quarantine WHERE profile_id = $1 AND skipped = 0 ORDER BY source_id",
    )
    .bind(&row.profile_id)
    .fetch_all(store.pool())
    .await?;
    let mut permanent: Vec<(String, String)> = Vec::new();
    for r in &failed {
        let class: String = r.try_get("error_class")?;
        if PERMANENT_ITEM_ERRORS.contains(&class.as_str()) {
            permanent.push((r.try_get("source_id")?, r.try_get("error")?));
        }
    }
    let failed = permanent;
    if failed.is_empty() {
        return Ok(0);
    }
    let m = mailboxes::get(store, &row.mailbox_id).await?;
    let Ok(MailboxConfig {
        server_profile: Some(sp),
        ..
    }) = MailboxConfig::of(&m)
    else {
        return Ok(0);
    };
    let sp = match server_profiles::load(store, &sp).await {
        Ok(p) => p,
        Err(server_profiles::ProfileError::Store(e)) => return Err(e),
        Err(_) => return Ok(0),
    };
    if !sp.settings.move_failed_to_undeliverable
        || sp.settings.server_type == ServerType::ExchangeOnline
    {
        return Ok(0);
    }
    let profile = engine_profiles::get(store, &row.profile_id).await?;
    let mail = ConnectionEndpoint {
        hub,
        connection: profile.source_connection.clone(),
        retry: RetryPolicy::default(),
    };
    let errors: HashMap<String, String> = failed.iter().cloned().collect();
    let ops: Vec<WriteOp> = failed
        .iter()
        .map(|(id, _)| WriteOp {
            op_id: id.clone(),
            action: WriteAction::Deactivate,
            target_id: Some(id.clone()),
            body: None,
            fields: Vec::new(),
        })
        .collect();
    let mut moved = 0;
    for chunk in ops.chunks(PAGE_SIZE as usize) {
        let results = match Target::push(&mail, &profile.source_scope, chunk.to_vec()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(profile = %row.profile_id, error = %e, "failed messages were not moved to Undeliverable; tried again after the next run");
                break;
            }
        };
        for r in results {
            match r.outcome {
                Ok(ok) => {
                    let mut tx = store.pool().begin().await?;
                    sqlx::query(
                        "INSERT INTO dynamics_undeliverable (profile_id, source_id, moved_id, error, moved_at) VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (profile_id, source_id) DO NOTHING",
                    )
                    .bind(&row.profile_id)
                    .bind(&r.op_id)
                    .bind(&ok.target_id)
                    .bind(errors.get(&r.op_id).cloned().unwrap_or_default())
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await?;
                    // Out of the Inbox: nothing left to retry.
                    sqlx::query("DELETE FROM quarantine WHERE profile_id = $1 AND source_id = $2")
                        .bind(&row.profile_id)
                        .bind(&r.op_id)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    moved += 1;
                }
                Err(e) => {
                    tracing::warn!(profile = %row.profile_id, message = %r.op_id, error = %e.describe(), "a failed message was not moved to Undeliverable; tried again after the next run")
                }
            }
        }
    }
    Ok(moved)
}

/// Exchange refused the mailbox: it is disabled for email processing, its
/// profiles stop, and its owner's wall says why (the 401 diagnosis names
/// the cause when it can).
async fn disable_for_auth(
    hub: &Hub,
    mailbox_id: &str,
    error: &EndpointError,
) -> Result<(), StoreError> {
    let detail = error.to_string();
    dynamics_mailboxes::disable_after_processing_failure(hub, mailbox_id, &detail, true).await?;
    disable_all(hub, mailbox_id).await
}

/// A message moved to Undeliverable.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct MovedMessage {
    /// Its id in the Inbox when tracking it failed.
    pub message_id: String,
    /// Its id in the Undeliverable folder.
    pub moved_id: Option<String>,
    /// Why tracking it failed.
    pub error: String,
    pub moved_at: i64,
}

/// The latest run of a processing profile.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct LastRun {
    pub id: String,
    /// queued | running | succeeded | failed | held | planned | stale
    pub status: String,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
}

/// One kind of a mailbox's processing, as an operator checks it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Processing {
    /// incoming-email | outgoing-email | appointments | recurring-appointments | tasks | contacts
    pub kind: String,
    /// The engine profile (`syncbridge runs --profile`, `syncbridge explain`).
    pub profile_id: String,
    /// Runs by itself every `interval_secs`.
    pub enabled: bool,
    pub interval_secs: Option<u64>,
    pub last_run: Option<LastRun>,
    /// Sent e-mails not yet marked sent in Dynamics (tried after each run).
    pub unmarked_sent: u64,
    /// Messages moved to Undeliverable, newest first.
    pub undeliverable: Vec<MovedMessage>,
}

/// The processing of flow-3 mailbox `id` as `actor` sees it: one entry per
/// kind that was ever derived (none before its first successful test).
pub async fn processing(
    hub: &Hub,
    actor: super::Actor<'_>,
    id: &str,
) -> Result<Vec<Processing>, dynamics_mailboxes::DynamicsError> {
    dynamics_mailboxes::get(hub, actor, id).await?;
    let store = hub.store();
    let mut out = Vec::new();
    for r in rows(hub, id).await? {
        let settings = engine_profiles::settings(store, &r.profile_id).await?;
        let last = sqlx::query(
            "SELECT id, status, finished_at, error FROM runs WHERE profile_id = $1 ORDER BY requested_at DESC, id DESC LIMIT 1",
        )
        .bind(&r.profile_id)
        .fetch_optional(store.pool())
        .await?
        .map(|row| -> Result<LastRun, sqlx::Error> {
            Ok(LastRun {
                id: row.try_get("id")?,
                status: row.try_get("status")?,
                finished_at: row.try_get("finished_at")?,
                error: row.try_get("error")?,
            })
        })
        .transpose()?;
        let unmarked: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM dynamics_sent_marks WHERE profile_id = $1")
                .bind(&r.profile_id)
                .fetch_one(store.pool())
                .await?
                .try_get("n")?;
        let undeliverable = sqlx::query(
            "SELECT source_id, moved_id, error, moved_at FROM dynamics_undeliverable WHERE profile_id = $1 ORDER BY moved_at DESC, source_id",
        )
        .bind(&r.profile_id)
        .fetch_all(store.pool())
        .await?
        .iter()
        .map(|row| -> Result<MovedMessage, sqlx::Error> {
            Ok(MovedMessage {
                message_id: row.try_get("source_id")?,
                moved_id: row.try_get("moved_id")?,
                error: row.try_get("error")?,
                moved_at: row.try_get("moved_at")?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
        out.push(Processing {
            kind: r.kind.as_str().to_owned(),
            profile_id: r.profile_id,
            enabled: settings.enabled,
            interval_secs: settings.interval_secs,
            last_run: last,
            unmarked_sent: unmarked.max(0) as u64,
            undeliverable,
        });
    }
    Ok(out)
}

/// Milliseconds since the epoch as RFC 3339 UTC.
fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_ids_are_safe_and_distinct_per_kind() {
        let a = profile_id("org:alice@contoso.com", FlowKind::IncomingEmail);
        let b = profile_id("org:alice@contoso.com", FlowKind::OutgoingEmail);
        assert_eq!(a, "d365-incoming-email-org-alice-contoso-com");
        assert_ne!(a, b);
        assert_eq!(
            FlowKind::parse("outgoing-email"),
            Some(FlowKind::OutgoingEmail)
        );
        assert_eq!(FlowKind::parse("act"), None);
    }
}
