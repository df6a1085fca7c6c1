//! Flow 1 as engine profiles: what an Exchange profile and its enabled
//! resources synchronize, each direction and kind its own profile of the
//! two-sided engine, and what a run of one of them means for the resource
//! and the profile (last attempt, an auth failure that disables only the
//! resource, the failure notice once per incident).
//!
//! Per enabled resource (ids `<exchange profile>-<kind>-<resource>`):
//!
//! | kind | source → target | rules |
//! |---|---|---|
//! | `appointments` | PSA `appointments:resource=…,past=` → `calendar:mailbox=…,past=,future=` | start/end flow back (newest wins) for items this profile created, mapped back into the PSA's model; the import's items are not its own |
//! | `import` | `calendar:mailbox=…,series=occurrences` → PSA `appointments:resource=` | all detail or start/end only, free time imported or skipped (the mapper's options); PSA-originated events and service calls are not imported; a series becomes one appointment per occurrence within the recurring days (`expanded_series`) |
//! | `todos` | PSA `todos:resource=` → `tasks:mailbox=` | start/due flow back for items this profile created |
//! | `service-calls` | PSA `service-calls:resource=` → `calendar:mailbox=…` | one way |
//! | `contacts` | PSA `contacts:owner=` → `contacts:mailbox=` | one way |
//!
//! and, with "public folder of ALL contacts" (EWS only), `<profile>-public-contacts`:
//! PSA `contacts` → `public-contacts:folder=`[`PUBLIC_FOLDER`].
//!
//! Subject, details and deletes made in Exchange never flow back: only the
//! date/time fields are two-way, and a removal on the target side is put
//! right from the PSA. Items removed in the PSA are deleted in Exchange
//! (only the ones this flow created). A kind turned off, or a resource
//! disabled, keeps its profile disabled with its links, so turning it on
//! again finds what it wrote instead of writing it twice.

use super::exchange_notify;
use super::exchange_profiles::{
    self as profiles, ExchangeError, ExchangeProfile, ImportAppointments,
};
use super::exchange_resources::{self as resources, Resource, ResourceSettings};
use super::runs::RunRecord;
use super::Actor;
use crate::hub::Hub;
use crate::notify::Notifier;
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};
use syncbridge_model::PluginError;
use syncbridge_store::{now_ms, StoreError};
use syncbridge_sync::profiles::{self as engine_profiles, Profile, ProfileSettings};
use syncbridge_sync::rules::{BackFlow, Brakes, ConflictPolicy, Direction, FieldRules, OnRemove};
use syncbridge_sync::EndpointError;

/// The mapper of flow 1.
pub const MAPPER: &str = "psa-exchange";
/// The public folder (under the public folders root) of all PSA contacts.
pub const PUBLIC_FOLDER: &str = "PSA Contacts";
/// Items per pulled page and pushed batch.
pub const PAGE_SIZE: u32 = 100;

/// What one derived engine profile synchronizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlowKind {
    Appointments,
    Import,
    Todos,
    ServiceCalls,
    Contacts,
    PublicContacts,
}

impl FlowKind {
    /// Every kind, in the order a resource's profiles are listed.
    pub const ALL: [FlowKind; 6] = [
        FlowKind::Appointments,
        FlowKind::Import,
        FlowKind::Todos,
        FlowKind::ServiceCalls,
        FlowKind::Contacts,
        FlowKind::PublicContacts,
    ];

    /// The stored name (also part of the profile id).
    pub fn as_str(self) -> &'static str {
        match self {
            FlowKind::Appointments => "appointments",
            FlowKind::Import => "import",
            FlowKind::Todos => "todos",
            FlowKind::ServiceCalls => "service-calls",
            FlowKind::Contacts => "contacts",
            FlowKind::PublicContacts => "public-contacts",
        }
    }

    /// A stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the resource's effective toggles turn this kind on.
    fn on(self, s: &ResourceSettings) -> bool {
        match self {
            FlowKind::Appointments => s.psa_appointments_to_exchange,
            FlowKind::Import => s.exchange_appointments_to_psa,
            FlowKind::Todos => s.todos,
            FlowKind::ServiceCalls => s.service_calls,
            FlowKind::Contacts => s.contacts,
            FlowKind::PublicContacts => false,
        }
    }
}

/// The id of the engine profile of `kind` for `resource` of Exchange profile `xp`.
pub fn profile_id(xp: &str, kind: FlowKind, resource: Option<&str>) -> String {
    match resource {
        Some(r) => {
            let safe: String = r
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            format!("{xp}-{}-{safe}", kind.as_str())
        }
        None => format!("{xp}-{}", kind.as_str()),
    }
}

/// One engine profile of the flow, and whether it runs now.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowProfile {
    pub profile: Profile,
    pub kind: FlowKind,
    pub resource_id: Option<String>,
    /// Scheduled: the Exchange profile and the resource are enabled, the
    /// kind is on and allowed, the last save's test did not fail.
    pub enabled: bool,
}

/// One user's calendar is a small set: a few cancellations never hold a
/// run; from ten removals on, more than a fifth of the linked items (or
/// more than 200) waits for approval.
pub const BRAKES: Brakes = Brakes {
    max_removals: 200,
    max_removal_share: 0.20,
    share_from: 10,
};

/// Two-way date/time fields: they flow back from Exchange for items this
/// profile created, mapped into the PSA's model; the newer change wins.
fn date_time_back(fields: &[&str], written_by: Vec<String>) -> FieldRules {
    FieldRules {
        direction: fields
            .iter()
            .map(|f| ((*f).to_owned(), Direction::Both))
            .collect(),
        conflict: fields
            .iter()
            .map(|f| ((*f).to_owned(), ConflictPolicy::NewestWins))
            .collect(),
        back_flow: BackFlow::CreatedOnly,
        back_through_mapper: true,
        written_by,
        ..one_way()
    }
}

/// From a PSA calendar read through its past days: items that age out of
/// the window are not removals.
fn windowed(rules: FieldRules) -> FieldRules {
    FieldRules {
        confirm_unseen: true,
        ..rules
    }
}

/// PSA → Exchange only: Exchange items this flow created are deleted when
/// their PSA item goes; nothing is matched, nothing reactivated.
fn one_way() -> FieldRules {
    FieldRules {
        brakes: BRAKES,
        on_remove: OnRemove::Delete,
        match_existing: false,
        remove_matched: false,
        reactivate: false,
        ..FieldRules::default()
    }
}

/// The engine profiles of Exchange profile `p` with `resources` (pure).
/// Resources that were never enabled get none.
pub fn derive(p: &ExchangeProfile, resources: &[Resource]) -> Vec<FlowProfile> {
    let s = &p.settings;
    let working = s.enabled
        && p.last_test
            .as_ref()
            .is_none_or(|t| t.outcome != profiles::TestOutcome::Error);
    let psa = &s.psa_connection;
    let exchange = &p.connection_id;
    let to_exchange = serde_json::json!({"direction": "to-exchange"}).to_string();
    let mut out = Vec::new();
    for r in resources {
        let (Some(email), Some(settings)) = (&r.email, &r.settings) else {
            continue;
        };
        let email = email.trim().to_ascii_lowercase();
        let effective = settings.effective(&s.sync);
        let on = |kind: FlowKind| working && r.enabled && kind.on(&effective);
        // The import reads the calendar and relays what the appointments and
        // service-calls profiles wrote to them: the calendar is read once
        // per cycle. Without the import each reads its own changes.
        let relayed = on(FlowKind::Import);
        // The other way round, the appointments profile reads the PSA's
        // appointments and relays to the import the ones it wrote: they are
        // read once per cycle too (the import sees them the cycle after, as
        // it runs first). Without the appointments profile the import reads
        // its own changes.
        let relayed_back = on(FlowKind::Appointments) && relayed;
        let rid = r.resource_id.as_str();
        let id = |kind: FlowKind| profile_id(&p.id, kind, Some(rid));
        let past = s.sync.past_days;
        let calendar = format!(
            "calendar:mailbox={email},past={},future={}",
            s.sync.past_days, s.sync.recurring_days
        );
        for kind in FlowKind::ALL {
            let (source_connection, source_scope, options, target_connection, target_scope, rules) =
                match kind {
                    FlowKind::Appointments => (
                        psa,
                        format!("appointments:resource={rid},past={past}"),
                        to_exchange.clone(),
                        exchange,
                        calendar.clone(),
                        FieldRules {
                            feed_relayed: relayed,
                            relay_written_by: relayed_back,
                            ..windowed(date_time_back(
                                &["start", "end"],
                                vec![id(FlowKind::Import)],
                            ))
                        },
                    ),
                    FlowKind::Import => (
                        exchange,
                        // Autotask appointments have no recurrence: a series
                        // arrives as its occurrences within the recurring days.
                        format!("{calendar},series=occurrences"),
                        serde_json::json!({
                            "direction": "to-psa",
                            "import": match s.sync.import_appointments {
                                ImportAppointments::NoDetail => "no-detail",
                                _ => "all",
                            },
                            "import_free_time": s.sync.import_free_time,
                        })
                        .to_string(),
                        psa,
                        format!("appointments:resource={rid}"),
                        FieldRules {
                            written_by: vec![
                                id(FlowKind::Appointments),
                                id(FlowKind::ServiceCalls),
                            ],
                            // The calendar is read through its window: an
                            // appointment that aged out is not deleted.
                            confirm_unseen: true,
                            relay_written_by: true,
                            feed_relayed: relayed_back,
                            expanded_series: true,
                            ..one_way()
                        },
                    ),
                    FlowKind::Todos => (
                        psa,
                        format!("todos:resource={rid},past={past}"),
                        to_exchange.clone(),
                        exchange,
                        format!("tasks:mailbox={email}"),
                        windowed(date_time_back(&["start", "due"], Vec::new())),
                    ),
                    FlowKind::ServiceCalls => (
                        psa,
                        format!("service-calls:resource={rid},past={past}"),
                        to_exchange.clone(),
                        exchange,
                        calendar.clone(),
                        FieldRules {
                            feed_relayed: relayed,
                            ..windowed(one_way())
                        },
                    ),
                    FlowKind::Contacts => (
                        psa,
                        format!("contacts:owner={rid}"),
                        to_exchange.clone(),
                        exchange,
                        format!("contacts:mailbox={email}"),
                        one_way(),
                    ),
                    FlowKind::PublicContacts => continue,
                };
            out.push(FlowProfile {
                profile: Profile {
                    id: id(kind),
                    source_connection: source_connection.clone(),
                    source_scope,
                    mapper_plugin: MAPPER.to_owned(),
                    mapper_options: options,
                    target_connection: target_connection.clone(),
                    target_scope,
                    rules,
                    page_size: PAGE_SIZE,
                },
                kind,
                resource_id: Some(rid.to_owned()),
                enabled: on(kind),
            });
        }
    }
    if s.sync.public_folder_all_contacts && !s.server.use_graph {
        out.push(FlowProfile {
            profile: Profile {
                id: profile_id(&p.id, FlowKind::PublicContacts, None),
                source_connection: psa.clone(),
                source_scope: "contacts".to_owned(),
                mapper_plugin: MAPPER.to_owned(),
                mapper_options: to_exchange,
                target_connection: exchange.clone(),
                target_scope: format!("public-contacts:folder={PUBLIC_FOLDER}"),
                rules: one_way(),
                page_size: PAGE_SIZE,
            },
            kind: FlowKind::PublicContacts,
            resource_id: None,
            enabled: working,
        });
    }
    out
}

/// A stored row of `exchange_flow_profiles`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRow {
    pub profile_id: String,
    pub exchange_profile_id: String,
    pub resource_id: Option<String>,
    pub kind: FlowKind,
}

fn row_of(r: &sqlx::any::AnyRow) -> Result<FlowRow, StoreError> {
    let profile_id: String = r.try_get("profile_id")?;
    let kind: String = r.try_get("kind")?;
    Ok(FlowRow {
        kind: FlowKind::parse(&kind).ok_or_else(|| StoreError::Invalid {
            what: "exchange flow profile",
            id: profile_id.clone(),
            detail: format!("unknown kind {kind:?}; save its Exchange profile again"),
        })?,
        exchange_profile_id: r.try_get("exchange_profile_id")?,
        resource_id: r.try_get("resource_id")?,
        profile_id,
    })
}

/// The engine profiles derived from Exchange profile `xp`.
pub async fn rows(hub: &Hub, xp: &str) -> Result<Vec<FlowRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT profile_id, exchange_profile_id, resource_id, kind FROM exchange_flow_profiles
         WHERE exchange_profile_id = $1 ORDER BY profile_id",
    )
    .bind(xp)
    .fetch_all(hub.store().pool())
    .await?;
    rows.iter().map(row_of).collect()
}

/// The flow row of engine profile `id`, if flow 1 derived it.
pub async fn row(hub: &Hub, id: &str) -> Result<Option<FlowRow>, StoreError> {
    let row = sqlx::query(
        "SELECT profile_id, exchange_profile_id, resource_id, kind FROM exchange_flow_profiles WHERE profile_id = $1",
    )
    .bind(id)
    .fetch_optional(hub.store().pool())
    .await?;
    row.as_ref().map(row_of).transpose()
}

/// Writes the engine profiles of Exchange profile `xp` as its settings and
/// resources say now: new ones created, changed ones saved (and, when what
/// they write changed, re-synchronized in full), turned-off ones disabled
/// with their links kept. Answers the ids of those that run.
pub async fn materialize(hub: &Hub, xp: &str) -> Result<Vec<String>, ExchangeError> {
    let p = profiles::load(hub.store(), xp).await?;
    let found = resources::list(hub, Actor::Msp, xp)
        .await
        .map_err(|e| match e {
            resources::ResourceError::Profile(e) => e,
            other => ExchangeError::Store(StoreError::Invalid {
                what: "exchange profile",
                id: xp.to_owned(),
                detail: other.to_string(),
            }),
        })?;
    let derived = derive(&p, &found);
    if !derived.is_empty() {
        match hub.store().get_plugin(MAPPER).await {
            Ok(_) => {}
            Err(StoreError::NotFound { .. }) => {
                return Err(ExchangeError::MapperMissing(MAPPER.to_owned()))
            }
            Err(e) => return Err(e.into()),
        }
    }
    let known: HashMap<String, FlowRow> = rows(hub, xp)
        .await?
        .into_iter()
        .map(|r| (r.profile_id.clone(), r))
        .collect();
    let store = hub.store();
    let mut running = Vec::new();
    let mut wanted: BTreeMap<String, bool> = BTreeMap::new();
    for fp in &derived {
        let id = &fp.profile.id;
        wanted.insert(id.clone(), fp.enabled);
        let exists = known.contains_key(id);
        if !fp.enabled && !exists {
            continue;
        }
        engine_profiles::save_derived(store, &fp.profile).await?;
        if !exists {
            sqlx::query(
                "INSERT INTO exchange_flow_profiles (profile_id, exchange_profile_id, resource_id, kind)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(xp)
            .bind(&fp.resource_id)
            .bind(fp.kind.as_str())
            .execute(store.pool())
            .await
            .map_err(StoreError::from)?;
        }
        engine_profiles::set_settings(
            store,
            id,
            &ProfileSettings {
                company_id: p.company_id.clone(),
                enabled: fp.enabled,
                interval_secs: Some(u64::from(p.settings.interval_minutes) * 60),
                daily_at: None,
                unreadable_interval: None,
            },
        )
        .await?;
        if fp.enabled {
            running.push(id.clone());
        }
    }
    // Rows derived before whose resource is gone from the list: stopped, kept.
    for id in known.keys().filter(|id| !wanted.contains_key(*id)) {
        engine_profiles::set_enabled(store, id, false).await?;
    }
    Ok(running)
}

/// Removes every engine profile derived from `xp` (with links, cursors and
/// plans): the Exchange profile itself is going.
pub async fn remove_all(hub: &Hub, xp: &str) -> Result<(), StoreError> {
    for r in rows(hub, xp).await? {
        match engine_profiles::remove(hub.store(), &r.profile_id).await {
            Ok(()) | Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    sqlx::query("DELETE FROM exchange_flow_profiles WHERE exchange_profile_id = $1")
        .bind(xp)
        .execute(hub.store().pool())
        .await?;
    Ok(())
}

/// The longest a run waits for an earlier run of the same resource.
pub const SIBLING_WAIT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Runs of one resource's profiles read and write the same calendar from
/// both sides, so they run one at a time: a run that read the PSA while
/// another was creating an imported appointment there, before that one had
/// linked it, would send it back to Exchange as a second copy. The later
/// run (by start, then id) waits for earlier ones that still hold their
/// lease; so two runs never wait for each other. Answers `Err` with the
/// reason when `max` passes first (the run ends failed, the next interval
/// tries again).
pub async fn wait_for_siblings(
    hub: &Hub,
    row: &FlowRow,
    run: &RunRecord,
    max: std::time::Duration,
) -> Result<Result<(), String>, StoreError> {
    let Some(resource) = &row.resource_id else {
        return Ok(Ok(()));
    };
    let started = run.started_at.unwrap_or_else(now_ms);
    let deadline = std::time::Instant::now() + max;
    loop {
        let earlier = sqlx::query(
            "SELECT r.id, r.profile_id FROM runs r
               JOIN exchange_flow_profiles f ON f.profile_id = r.profile_id
             WHERE f.exchange_profile_id = $1 AND f.resource_id = $2 AND r.profile_id <> $3
               AND r.status = 'running' AND r.lease_until > $4
               AND (r.started_at < $5 OR (r.started_at = $5 AND r.id < $6))
             LIMIT 1",
        )
        .bind(&row.exchange_profile_id)
        .bind(resource)
        .bind(&row.profile_id)
        .bind(now_ms())
        .bind(started)
        .bind(&run.id)
        .fetch_optional(hub.store().pool())
        .await?;
        let Some(other) = earlier else {
            return Ok(Ok(()));
        };
        if std::time::Instant::now() >= deadline {
            let (id, profile): (String, String) =
                (other.try_get("id")?, other.try_get("profile_id")?);
            return Ok(Err(format!(
                "run {id} of {profile} (the same resource) was still running after {} s; this run tries again at the next interval",
                max.as_secs()
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// How a run of a flow-1 profile ended, as far as the flow cares.
#[derive(Debug)]
pub enum RunEnd<'a> {
    /// It ran (items may still have failed one by one).
    Ran,
    /// A side failed as a whole: `exchange_side` when the Exchange
    /// connection did.
    Failed {
        exchange_side: bool,
        error: &'a EndpointError,
    },
    /// It could not start or stopped for another reason.
    Other,
}

/// What [`after_run`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AfterRun {
    /// The resource disabled after its own credentials or rights were refused.
    pub disabled_resource: Option<String>,
    /// The profile-level failure notice (first of its incident).
    pub incident_opened: bool,
    /// The connection is to be stopped (the synchronization account was refused).
    pub stop_connection: bool,
}

/// After a run of engine profile `row`: the resource's "Last Attempted
/// Synchronization"; a working Exchange side closes the profile's incident;
/// the synchronization account refused, or the server unreachable, opens one
/// (mailed to `notify_to` once); a user's own credential refused, or the
/// account lacking the right to impersonate that user, disables only that
/// resource, with an alert.
pub async fn after_run(
    hub: &Hub,
    notifier: Option<&dyn Notifier>,
    row: &FlowRow,
    end: RunEnd<'_>,
) -> Result<AfterRun, ExchangeError> {
    let xp = &row.exchange_profile_id;
    if let Some(r) = &row.resource_id {
        match resources::record_attempt(hub.store(), xp, r, now_ms()).await {
            Ok(()) | Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut done = AfterRun::default();
    let (cause, remedy) = match end {
        RunEnd::Ran => {
            exchange_notify::incident_over(hub, xp).await?;
            return Ok(done);
        }
        RunEnd::Other => return Ok(done),
        RunEnd::Failed {
            exchange_side: false,
            ..
        } => return Ok(done),
        RunEnd::Failed {
            exchange_side: true,
            error,
        } => {
            let (auth, forbidden, unreachable) = match error {
                EndpointError::Plugin(PluginError::Auth(_)) => (true, false, false),
                EndpointError::Plugin(PluginError::Forbidden(_)) => (false, true, false),
                EndpointError::Plugin(
                    PluginError::Transient(_) | PluginError::Remote(_) | PluginError::Throttled(_),
                ) => (false, false, true),
                _ => (false, false, false),
            };
            // The profile is read only here: a run that worked costs no read of it.
            let user_refused = forbidden
                || (auth
                    && !profiles::load(hub.store(), xp)
                        .await?
                        .settings
                        .account
                        .use_for_users);
            if user_refused {
                if let Some(r) = &row.resource_id {
                    resources::disable_for_auth(hub, xp, r, &error.to_string())
                        .await
                        .map_err(|e| match e {
                            resources::ResourceError::Profile(e) => e,
                            other => ExchangeError::Store(StoreError::Invalid {
                                what: "exchange resource",
                                id: format!("{xp}/{r}"),
                                detail: other.to_string(),
                            }),
                        })?;
                    done.disabled_resource = Some(r.clone());
                    // The other resources go on: re-derive without this one.
                    materialize(hub, xp).await?;
                    return Ok(done);
                }
            }
            if auth {
                done.stop_connection = true;
                (
                    format!("the synchronization account was refused: {error}"),
                    "check the account's user name, domain and password (an app password with MFA), save the profile again; the save tests the connection",
                )
            } else if unreachable {
                (
                    format!("the Exchange server could not be used: {error}"),
                    "check that the server is up and reachable on its port (80, 443 or 2610) with a certificate from a trusted CA; syncbridge tries again at the next interval",
                )
            } else {
                // One mailbox's or item's trouble: the run's own alert says it.
                return Ok(done);
            }
        }
    };
    let opened = exchange_notify::report_failure(hub, notifier, xp, &cause, remedy)
        .await
        .map_err(|e| match e {
            exchange_notify::ExchangeNotifyError::Profile(e) => e,
            exchange_notify::ExchangeNotifyError::Store(e) => e.into(),
            exchange_notify::ExchangeNotifyError::Notify(e) => {
                tracing::error!(profile = %xp, error = %e, "cannot send the failure notice");
                ExchangeError::Store(StoreError::Invalid {
                    what: "exchange profile",
                    id: xp.clone(),
                    detail: format!("the failure notice could not be sent: {e}"),
                })
            }
        })?;
    done.incident_opened = opened.is_some();
    Ok(done)
}
