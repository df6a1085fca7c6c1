//! Flow 1's Exchange server profiles (the MS Exchange Extension's General and
//! Synchronization tabs): the rules the REST API's `/exchange-profiles` and
//! the CLI's `exchange` commands share.
//!
//! - The server address is a host name (an IP address is refused), on port
//!   80, 443 or 2610; the sync interval is at least 10 minutes; past and
//!   recurring windows are 1 to 30 days; each rule is its own
//!   [`ExchangeError`] naming the field and the remedy.
//! - A profile owns one connection (`<profile>-exchange`): the `ews` plugin
//!   on premises, `graph` with "use MS Graph". It holds the synchronization
//!   account's credential, sealed, and without impersonation each user's own.
//! - Saving refuses while a run of the profile (or one using its connection)
//!   is queued or running, then tests the connection with the
//!   synchronization account and answers success, an error, or warnings.
//! - Changing the version, address, virtual directory or domain makes every
//!   item re-synchronize; `enabled = false` saves without queueing anything.

use super::runs::{NewRun, RunMode, RunRecord, Runs, RunsError};
use super::{companies, connections, Actor};
use crate::control::connections::{ConnectionChange, ConnectionError};
use crate::hub::{Hub, HubError, NewConnection};
use crate::ids;
use crate::notify::Recipients;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::collections::BTreeMap;
use syncbridge_model::{Finding, Outcome};
use syncbridge_secrets::{Credential, SecretString};
use syncbridge_store::{now_ms, Store, StoreError};
use syncbridge_sync::profiles::{self as engine_profiles, MAX_INTERVAL_SECS};

/// The shortest sync interval, in minutes.
pub const MIN_INTERVAL_MINUTES: u32 = 10;
/// The longest sync interval, in minutes (31 days, the scheduler's limit).
pub const MAX_INTERVAL_MINUTES: u32 = (MAX_INTERVAL_SECS / 60) as u32;
/// Ports Exchange servers may answer on.
pub const PORTS: [u16; 3] = [80, 443, 2610];
/// The range of the past and recurring windows, in days.
pub const WINDOW_DAYS: std::ops::RangeInclusive<u32> = 1..=30;
/// The credential slot of the synchronization account.
pub const ACCOUNT_SLOT: &str = "default";

/// Which Exchange the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ExchangeVersion {
    #[serde(rename = "2013")]
    Exchange2013,
    #[serde(rename = "2016")]
    Exchange2016,
    #[serde(rename = "2019")]
    Exchange2019,
    #[serde(rename = "online")]
    Online,
}

impl ExchangeVersion {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeVersion::Exchange2013 => "2013",
            ExchangeVersion::Exchange2016 => "2016",
            ExchangeVersion::Exchange2019 => "2019",
            ExchangeVersion::Online => "online",
        }
    }

    /// Parses a stored or entered name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            ExchangeVersion::Exchange2013,
            ExchangeVersion::Exchange2016,
            ExchangeVersion::Exchange2019,
            ExchangeVersion::Online,
        ]
        .into_iter()
        .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// EWS `RequestServerVersion` (2019 and Online speak the 2016 schema).
    pub fn ews_schema(self) -> &'static str {
        match self {
            ExchangeVersion::Exchange2013 => "Exchange2013_SP1",
            _ => "Exchange2016",
        }
    }
}

/// How the synchronization account authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccountAuth {
    /// Basic authentication (on-premises): user name and password.
    Basic,
    /// OAuth client credentials (Exchange Online through Graph): client id and secret.
    Oauth,
}

/// What the profile does with appointments made in Exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ImportAppointments {
    /// With all text and participants.
    All,
    /// Start and end only.
    NoDetail,
    /// Not imported.
    None,
}

/// The server details of the General tab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerDetails {
    /// Host name, optionally `:port` (80, 443 or 2610); never an IP address.
    #[schema(example = "mail.contoso.com")]
    pub address: String,
    /// The EWS virtual directory; empty means the default (`EWS`).
    #[serde(default)]
    pub virtual_directory: Option<String>,
    /// The synchronization account's Windows domain (Basic: `DOMAIN\user`).
    #[serde(default)]
    pub domain: Option<String>,
    pub version: ExchangeVersion,
    /// Hosted by a third party rather than on premises.
    #[serde(default)]
    pub hosted_by_third_party: bool,
    /// Exchange Online through Microsoft Graph (needs OAuth).
    #[serde(default)]
    pub use_graph: bool,
}

/// The synchronization account (its secret travels apart, write-only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncAccount {
    pub auth: AccountAuth,
    /// Basic: the user name; OAuth: the application (client) id.
    pub username: String,
    /// The account's own mailbox, opened by the connection test.
    pub mailbox: String,
    /// OAuth: the tenant (id or domain).
    #[serde(default)]
    pub tenant: Option<String>,
    /// OAuth: the token endpoint (default: Entra ID's for the tenant).
    #[serde(default)]
    pub token_url: Option<String>,
    /// "Use these credentials for synchronizing individual user accounts":
    /// the account impersonates each user; off, each user's own credentials are used.
    pub use_for_users: bool,
}

/// The Synchronization tab: what the organisation allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncSettings {
    /// PSA appointments to Exchange.
    pub allow_appointments: bool,
    /// PSA contacts whose account manager or opportunity owner is the resource.
    pub allow_contacts: bool,
    pub allow_service_calls: bool,
    pub allow_todos: bool,
    /// A public folder of ALL PSA contacts (EWS only): every Exchange user can read it.
    pub public_folder_all_contacts: bool,
    pub import_appointments: ImportAppointments,
    /// Import "free time" appointments (only when appointments are imported).
    pub import_free_time: bool,
    /// Days back to synchronize, 1 to 30.
    pub past_days: u32,
    /// Days ahead for recurring items, 1 to 30.
    pub recurring_days: u32,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            allow_appointments: true,
            allow_contacts: false,
            allow_service_calls: true,
            allow_todos: true,
            public_folder_all_contacts: false,
            import_appointments: ImportAppointments::All,
            import_free_time: true,
            past_days: 30,
            recurring_days: 30,
        }
    }
}

/// Everything an operator enters on a profile (the whole form; a save replaces it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeSettings {
    pub name: String,
    /// Off: saved without synchronizing.
    pub enabled: bool,
    /// The PSA connection whose resources are listed (Autotask).
    pub psa_connection: String,
    pub server: ServerDetails,
    /// Minutes between synchronizations, at least 10.
    pub interval_minutes: u32,
    pub account: SyncAccount,
    /// Failure notifications: `;`-separated e-mail addresses (may be empty).
    #[serde(default)]
    pub notify_to: String,
    #[serde(default)]
    pub sync: SyncSettings,
    /// Let the connection reach private or loopback addresses (a server on the LAN).
    #[serde(default)]
    pub allow_private_network: bool,
}

/// How the connection test of a save came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TestOutcome {
    Success,
    /// Saved; some items could not be validated (see the findings).
    Warning,
    /// Saved, but the connection does not work; nothing synchronizes until a save passes.
    Error,
}

/// One check of the connection test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TestFinding {
    pub check: String,
    /// ok | warning | failed | skipped
    pub outcome: String,
    pub cause: Option<String>,
    pub remedy: Option<String>,
}

impl From<&Finding> for TestFinding {
    fn from(f: &Finding) -> Self {
        Self {
            check: f.check.clone(),
            outcome: f.outcome.as_str().to_owned(),
            cause: f.cause.clone(),
            remedy: f.remedy.clone(),
        }
    }
}

/// The connection test a save ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConnectionTest {
    pub outcome: TestOutcome,
    pub findings: Vec<TestFinding>,
    /// Why the checks could not run at all.
    pub error: Option<String>,
}

impl ConnectionTest {
    /// The outcome of a test: an error when the checks could not run or a
    /// check of the server or the synchronization account failed; a
    /// warning for each item that could not be validated (a check that was
    /// skipped or warned, or a user's own mailbox that failed: that user
    /// cannot sync, the profile can); success otherwise.
    pub fn of(report: crate::hub::TestReport, account_mailbox: &str) -> Self {
        let account = account_mailbox.trim().to_ascii_lowercase();
        let user_item = |f: &Finding| {
            f.check
                .split_once(':')
                .is_some_and(|(_, who)| who.trim().to_ascii_lowercase() != account)
        };
        let mut findings = Vec::new();
        let mut failed = false;
        let mut warned = false;
        let checks = report
            .config
            .iter()
            .chain(report.connection.as_deref().unwrap_or_default());
        for f in checks {
            let mut shown = TestFinding::from(f);
            match f.outcome {
                Outcome::Failed if user_item(f) => {
                    shown.outcome = Outcome::Warning.as_str().to_owned();
                    warned = true;
                }
                Outcome::Failed => failed = true,
                Outcome::Warning | Outcome::Skipped => warned = true,
                Outcome::Ok => {}
            }
            findings.push(shown);
        }
        let error = report.connection.as_ref().err().cloned();
        let outcome = if failed || error.is_some() {
            TestOutcome::Error
        } else if warned {
            TestOutcome::Warning
        } else {
            TestOutcome::Success
        };
        Self {
            outcome,
            findings,
            error,
        }
    }
}

/// A stored profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeProfile {
    pub id: String,
    pub company_id: Option<String>,
    pub settings: ExchangeSettings,
    /// The connection the profile owns (`ews` or `graph`).
    pub connection_id: String,
    pub last_test: Option<ConnectionTest>,
    pub last_tested_at: Option<i64>,
    /// When a server change asked every item to be synchronized again.
    pub resync_requested_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a save did.
#[derive(Debug, Clone)]
pub struct ExchangeSaved {
    pub profile: ExchangeProfile,
    pub test: ConnectionTest,
    /// Server fields whose change re-synchronizes every item.
    pub resync_fields: Vec<&'static str>,
    /// Runs queued by the save (none when disabled or the test failed).
    pub queued_runs: Vec<RunRecord>,
}

/// Why a profile was not saved, shown or removed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error(transparent)]
    Connection(ConnectionError),
    #[error("{0}")]
    Id(#[from] ids::IdError),
    #[error("name: enter a profile name")]
    NameMissing,
    #[error("server.address: {address:?} is an IP address; enter the Exchange server's host name (its TLS certificate names the host, e.g. mail.contoso.com)")]
    AddressIsIp { address: String },
    #[error("server.address: {address:?} is not a host name ({reason}); enter e.g. mail.contoso.com or mail.contoso.com:2610")]
    AddressInvalid {
        address: String,
        reason: &'static str,
    },
    #[error("server.address: port {port} is not allowed; Exchange servers are reached on 80, 443 or 2610 only")]
    PortNotAllowed { port: u16 },
    #[error("server.virtual_directory: {value:?} is not a path segment; leave it empty (the default, EWS) or enter e.g. EWS")]
    VirtualDirectory { value: String },
    #[error("server.domain: {value:?} is not a domain name; enter the Windows domain, e.g. CONTOSO, or leave it empty when the user name contains it")]
    Domain { value: String },
    #[error("interval_minutes: {minutes} is out of range; synchronize every {MIN_INTERVAL_MINUTES} to {MAX_INTERVAL_MINUTES} minutes (if saves meet a running sync, use an hour or more)")]
    Interval { minutes: u32 },
    #[error("sync.past_days: {value} is out of range; enter 1 to 30 days")]
    PastDays { value: u32 },
    #[error("sync.recurring_days: {value} is out of range; enter 1 to 30 days")]
    RecurringDays { value: u32 },
    #[error("sync.import_free_time: free-time appointments cannot be imported when Exchange appointments are not imported; set import_appointments to all or no-detail, or import_free_time to false")]
    FreeTimeWithoutImport,
    #[error("sync.public_folder_all_contacts: the public folder of all contacts needs EWS; turn off server.use_graph or this option")]
    PublicFolderNeedsEws,
    #[error("account.auth: {reason}")]
    AuthMismatch { reason: &'static str },
    #[error("account.{field}: {reason}")]
    Account { field: &'static str, reason: String },
    #[error("notify_to: {0}; separate e-mail addresses with ';'")]
    NotifyTo(String),
    #[error("account.secret: {0}")]
    SecretRequired(String),
    #[error("server.use_graph cannot change on a saved profile (its connection is a different plugin); remove profile {0:?} and create it again")]
    TransportChange(String),
    #[error("exchange profile {0:?} already exists; change it with `syncbridge exchange update {0}` or PUT /api/v1/exchange-profiles/{0}")]
    Exists(String),
    #[error("we are unable to save your changes at this time because there is a sync in progress (run {run} of profile {profile}); please try later, or set interval_minutes to an hour or more so syncs end before the next starts")]
    SyncInProgress { profile: String, run: String },
    #[error("this caller is scoped to company {company:?} and cannot use objects of another")]
    ScopeViolation { company: String },
    #[error("flow 1 needs the mapper plugin {0:?}, which is not installed: install it (`syncbridge plugin install target/plugins/{0}` or POST /api/v1/plugins), then save again")]
    MapperMissing(String),
}

impl From<ConnectionError> for ExchangeError {
    fn from(e: ConnectionError) -> Self {
        match e {
            ConnectionError::SyncInProgress { run, profile, .. } => {
                ExchangeError::SyncInProgress { profile, run }
            }
            ConnectionError::CredentialsRequired { changed, .. } => ExchangeError::SecretRequired(
                format!("changing {} sends the synchronization account's credential to another server; enter its secret again in the same save", changed.join(", ")),
            ),
            ConnectionError::Store(e) => ExchangeError::Store(e),
            ConnectionError::Plugin(e) => ExchangeError::Hub(e),
            e => ExchangeError::Connection(e),
        }
    }
}

impl From<sqlx::Error> for ExchangeError {
    fn from(e: sqlx::Error) -> Self {
        ExchangeError::Store(e.into())
    }
}

fn not_found(id: &str) -> ExchangeError {
    ExchangeError::Store(StoreError::NotFound {
        what: "exchange profile",
        id: id.to_owned(),
    })
}

/// The id of the connection profile `id` owns.
pub fn connection_id(id: &str) -> String {
    format!("{id}-exchange")
}

/// Host and port of a server address (`host` or `host:port`), checked.
pub fn check_address(address: &str) -> Result<(String, Option<u16>), ExchangeError> {
    let address = address.trim();
    let invalid = |reason| ExchangeError::AddressInvalid {
        address: address.to_owned(),
        reason,
    };
    if address.is_empty() {
        return Err(invalid("it is empty"));
    }
    if address.contains("://") || address.contains('/') {
        return Err(invalid(
            "enter the host name only, without https:// or a path",
        ));
    }
    let ip = || ExchangeError::AddressIsIp {
        address: address.to_owned(),
    };
    if address.starts_with('[') || address.parse::<std::net::IpAddr>().is_ok() {
        return Err(ip());
    }
    let (host, port) = match address.rsplit_once(':') {
        Some((h, p)) => {
            let port: u16 = p.parse().map_err(|_| invalid("the port is not a number"))?;
            (h, Some(port))
        }
        None => (address, None),
    };
    // Dotted all-numeric names (`10.1.2`, `0x7f.1`) resolve as IPv4 literals too.
    let numeric = |p: &str| match p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).is_ok(),
        None => !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()),
    };
    if host.parse::<std::net::IpAddr>().is_ok()
        || host.trim_end_matches('.').split('.').all(numeric)
    {
        return Err(ip());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if host.len() > 253 || !host.trim_end_matches('.').split('.').all(label_ok) {
        return Err(invalid(
            "a host name has letters, digits, '-' and dots only",
        ));
    }
    if let Some(port) = port {
        if !PORTS.contains(&port) {
            return Err(ExchangeError::PortNotAllowed { port });
        }
    }
    Ok((host.to_ascii_lowercase(), port))
}

fn blank(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Checks the settings on their own (no store): every rule of the form.
pub fn validate(s: &ExchangeSettings) -> Result<(), ExchangeError> {
    if s.name.trim().is_empty() {
        return Err(ExchangeError::NameMissing);
    }
    check_address(&s.server.address)?;
    if let Some(v) = blank(&s.server.virtual_directory) {
        let segment = v.trim_matches('/');
        if segment.is_empty()
            || !segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(ExchangeError::VirtualDirectory {
                value: v.to_owned(),
            });
        }
    }
    if let Some(d) = blank(&s.server.domain) {
        if !d
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(ExchangeError::Domain {
                value: d.to_owned(),
            });
        }
    }
    if !(MIN_INTERVAL_MINUTES..=MAX_INTERVAL_MINUTES).contains(&s.interval_minutes) {
        return Err(ExchangeError::Interval {
            minutes: s.interval_minutes,
        });
    }
    match (s.account.auth, s.server.use_graph) {
        (AccountAuth::Basic, true) => {
            return Err(ExchangeError::AuthMismatch {
                reason: "Microsoft Graph (Exchange Online) takes OAuth, not Basic authentication; set auth to oauth, or turn off server.use_graph for an on-premises server",
            })
        }
        (AccountAuth::Oauth, false) => {
            return Err(ExchangeError::AuthMismatch {
                reason: "OAuth is for Exchange Online through Microsoft Graph; turn on server.use_graph, or use basic for an on-premises server",
            })
        }
        _ => {}
    }
    if s.account.username.trim().is_empty() {
        return Err(ExchangeError::Account {
            field: "username",
            reason: "enter the synchronization account's user name (OAuth: the application id)"
                .into(),
        });
    }
    if s.account.username.len() > 128 {
        return Err(ExchangeError::Account {
            field: "username",
            reason: "at most 128 characters".into(),
        });
    }
    let mailbox = s.account.mailbox.trim();
    if mailbox
        .split_once('@')
        .is_none_or(|(l, d)| l.is_empty() || !d.contains('.'))
    {
        return Err(ExchangeError::Account {
            field: "mailbox",
            reason: format!("{mailbox:?} is not an e-mail address; enter the address of the synchronization account's own mailbox (it must be a licensed user with a mailbox)"),
        });
    }
    if s.account.auth == AccountAuth::Oauth && blank(&s.account.tenant).is_none() {
        return Err(ExchangeError::Account {
            field: "tenant",
            reason: "enter the Microsoft 365 tenant (id or domain) OAuth signs in to".into(),
        });
    }
    if let Some(url) = blank(&s.account.token_url) {
        if !url.starts_with("https://") {
            return Err(ExchangeError::Account {
                field: "token_url",
                reason: format!("{url:?} is not an https:// URL"),
            });
        }
    }
    if !s.notify_to.trim().is_empty() {
        Recipients::parse(&s.notify_to).map_err(|e| ExchangeError::NotifyTo(e.to_string()))?;
    }
    let sync = &s.sync;
    if !WINDOW_DAYS.contains(&sync.past_days) {
        return Err(ExchangeError::PastDays {
            value: sync.past_days,
        });
    }
    if !WINDOW_DAYS.contains(&sync.recurring_days) {
        return Err(ExchangeError::RecurringDays {
            value: sync.recurring_days,
        });
    }
    if sync.import_appointments == ImportAppointments::None && sync.import_free_time {
        return Err(ExchangeError::FreeTimeWithoutImport);
    }
    if sync.public_folder_all_contacts && s.server.use_graph {
        return Err(ExchangeError::PublicFolderNeedsEws);
    }
    Ok(())
}

/// The warning shown whenever the public folder of all contacts is on.
pub const PUBLIC_FOLDER_WARNING: &str = "the public folder of ALL PSA contacts is readable by every Exchange user, not only those using the integration: any of them can download all contact data";

/// The owned connection: plugin, configuration and allowed hosts.
/// `mailbox_credentials` (per-user slots) are kept from `before`.
pub fn connector_config(
    s: &ExchangeSettings,
    before: Option<&serde_json::Value>,
) -> Result<(&'static str, serde_json::Value, Vec<String>), ExchangeError> {
    let (host, port) = check_address(&s.server.address)?;
    let authority = match port {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    if s.server.use_graph {
        let root = blank(&s.server.virtual_directory).unwrap_or("v1.0");
        let config = serde_json::json!({
            "graph_url": format!("https://{authority}/{}", root.trim_matches('/')),
            "tenant": blank(&s.account.tenant),
        });
        let mut hosts = vec![host];
        if let Some(token) = token_url(s).and_then(|u| url::Url::parse(&u).ok()) {
            if let Some(h) = token.host_str() {
                hosts.push(h.to_owned());
            }
        }
        hosts.dedup();
        return Ok(("graph", config, hosts));
    }
    let dir = blank(&s.server.virtual_directory).unwrap_or("EWS");
    let mut config = serde_json::json!({
        "ews_url": format!("https://{authority}/{}/Exchange.asmx", dir.trim_matches('/')),
        "mailbox": s.account.mailbox.trim(),
        "version": s.server.version.ews_schema(),
        "impersonate": s.account.use_for_users,
        "create_public_folders": s.sync.public_folder_all_contacts,
    });
    if let Some(per_user) = before.and_then(|b| b.get("mailbox_credentials")) {
        config["mailbox_credentials"] = per_user.clone();
    }
    Ok(("ews", config, vec![host]))
}

fn token_url(s: &ExchangeSettings) -> Option<String> {
    blank(&s.account.token_url).map(str::to_owned).or_else(|| {
        blank(&s.account.tenant)
            .map(|t| format!("https://login.microsoftonline.com/{t}/oauth2/v2.0/token"))
    })
}

/// The synchronization account's credential from its secret.
pub fn account_credential(s: &ExchangeSettings, secret: SecretString) -> Credential {
    match s.account.auth {
        AccountAuth::Basic => {
            let user = s.account.username.trim();
            let username = match blank(&s.server.domain) {
                Some(d) if !user.contains('\\') && !user.contains('@') => format!("{d}\\{user}"),
                _ => user.to_owned(),
            };
            Credential::Basic {
                username,
                password: secret,
            }
        }
        AccountAuth::Oauth => Credential::Oauth2ClientCredentials {
            token_url: token_url(s).unwrap_or_default(),
            client_id: s.account.username.trim().to_owned(),
            client_secret: secret,
            scope: Some("https://graph.microsoft.com/.default".into()),
        },
    }
}

const SELECT: &str = "SELECT id, company_id, name, enabled, connection_id, psa_connection_id,
    server_address, virtual_directory, domain, version, hosted_by_third_party, use_graph,
    allow_private_network, interval_minutes, account_auth, account_username, account_mailbox,
    account_tenant, account_token_url, use_for_users, notify_to, sync_settings, last_test,
    last_tested_at, resync_requested_at, created_at, updated_at FROM exchange_profiles";

/// A stored row; unreadable stored data is an error naming the profile.
fn from_row(r: &sqlx::any::AnyRow) -> Result<ExchangeProfile, StoreError> {
    let id: String = r.try_get("id")?;
    let bad = |detail: String| StoreError::Invalid {
        what: "exchange profile",
        id: id.clone(),
        detail: format!("{detail}; save the profile again with every field"),
    };
    let version: String = r.try_get("version")?;
    let version = ExchangeVersion::parse(&version)
        .ok_or_else(|| bad(format!("its stored version {version:?} is unknown")))?;
    let auth = match r.try_get::<String, _>("account_auth")?.as_str() {
        "basic" => AccountAuth::Basic,
        "oauth" => AccountAuth::Oauth,
        other => return Err(bad(format!("its stored account auth {other:?} is unknown"))),
    };
    let sync: String = r.try_get("sync_settings")?;
    let sync: SyncSettings = serde_json::from_str(&sync).map_err(|e| {
        bad(format!(
            "its stored synchronization settings do not read ({e})"
        ))
    })?;
    let last_test: Option<String> = r.try_get("last_test")?;
    let last_test = last_test
        .map(|t| serde_json::from_str::<ConnectionTest>(&t))
        .transpose()
        .map_err(|e| bad(format!("its stored connection test does not read ({e})")))?;
    let interval: i64 = r.try_get("interval_minutes")?;
    let flag = |c: &str| r.try_get::<i64, _>(c).map(|v| v != 0);
    Ok(ExchangeProfile {
        company_id: r.try_get("company_id")?,
        settings: ExchangeSettings {
            name: r.try_get("name")?,
            enabled: flag("enabled")?,
            psa_connection: r.try_get("psa_connection_id")?,
            server: ServerDetails {
                address: r.try_get("server_address")?,
                virtual_directory: r.try_get("virtual_directory")?,
                domain: r.try_get("domain")?,
                version,
                hosted_by_third_party: flag("hosted_by_third_party")?,
                use_graph: flag("use_graph")?,
            },
            interval_minutes: u32::try_from(interval)
                .map_err(|_| bad(format!("its stored interval {interval} is not minutes")))?,
            account: SyncAccount {
                auth,
                username: r.try_get("account_username")?,
                mailbox: r.try_get("account_mailbox")?,
                tenant: r.try_get("account_tenant")?,
                token_url: r.try_get("account_token_url")?,
                use_for_users: flag("use_for_users")?,
            },
            notify_to: r.try_get("notify_to")?,
            sync,
            allow_private_network: flag("allow_private_network")?,
        },
        connection_id: r.try_get("connection_id")?,
        last_test,
        last_tested_at: r.try_get("last_tested_at")?,
        resync_requested_at: r.try_get("resync_requested_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        id,
    })
}

/// Profile `id`, read without scoping (the runner's and the resources' view).
pub async fn load(store: &Store, id: &str) -> Result<ExchangeProfile, ExchangeError> {
    let row = sqlx::query(&format!("{SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(from_row(&row)?)
}

/// Profile `id`, if `actor` may see it (not found otherwise).
pub async fn get(hub: &Hub, actor: Actor<'_>, id: &str) -> Result<ExchangeProfile, ExchangeError> {
    let p = load(hub.store(), id).await?;
    if !actor.sees(p.company_id.as_deref()) {
        return Err(not_found(id));
    }
    Ok(p)
}

/// The profiles `actor` may see, by id.
pub async fn list(hub: &Hub, actor: Actor<'_>) -> Result<Vec<ExchangeProfile>, ExchangeError> {
    let rows = sqlx::query(&format!("{SELECT} ORDER BY id"))
        .fetch_all(hub.store().pool())
        .await?;
    let mut out = Vec::new();
    for row in &rows {
        let p = from_row(row)?;
        if actor.sees(p.company_id.as_deref()) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Refuses while a run of the profile, or one using its connection, is
/// queued or running ("sync in progress, try later").
pub async fn refuse_while_running(
    hub: &Hub,
    id: &str,
    connection: &str,
) -> Result<(), ExchangeError> {
    let runs = Runs::new(hub.store().clone());
    if let Some(run) = runs.active_for_profile(id).await? {
        return Err(ExchangeError::SyncInProgress {
            profile: id.to_owned(),
            run: run.id,
        });
    }
    if let Some(run) = runs.running_for_connection(connection).await? {
        return Err(ExchangeError::SyncInProgress {
            profile: run.profile_id,
            run: run.id,
        });
    }
    Ok(())
}

/// The PSA connection must exist and be visible to `actor`.
async fn check_psa(hub: &Hub, actor: Actor<'_>, id: &str) -> Result<(), ExchangeError> {
    hub.store().get_connection(id).await?;
    let company = companies::of_connection(hub.store(), id).await?;
    if !actor.sees(company.as_deref()) {
        return Err(ExchangeError::Store(StoreError::NotFound {
            what: "connection",
            id: id.to_owned(),
        }));
    }
    Ok(())
}

/// Creates profile `id` for `actor` (owned by `company`) with its
/// connection; the synchronization account's `secret` is required.
pub async fn create(
    hub: &Hub,
    actor: Actor<'_>,
    id: &str,
    company: Option<&str>,
    settings: ExchangeSettings,
    secret: Option<SecretString>,
) -> Result<ExchangeSaved, ExchangeError> {
    if let Some(mine) = actor.company() {
        if company != Some(mine) {
            return Err(ExchangeError::ScopeViolation {
                company: mine.to_owned(),
            });
        }
    }
    ids::check_new_object_id("exchange profile", id, company, actor.company())?;
    if let Some(c) = company {
        companies::get(hub.store(), c).await?;
    }
    if load(hub.store(), id).await.is_ok() {
        return Err(ExchangeError::Exists(id.to_owned()));
    }
    validate(&settings)?;
    check_psa(hub, actor, &settings.psa_connection).await?;
    let secret = secret.ok_or_else(|| {
        ExchangeError::SecretRequired(
            "enter the synchronization account's password (OAuth: client secret)".into(),
        )
    })?;
    let connection = connection_id(id);
    let (plugin, config, hosts) = connector_config(&settings, None)?;
    let credentials = BTreeMap::from([(
        ACCOUNT_SLOT.to_owned(),
        account_credential(&settings, secret),
    )]);
    connections::create(
        hub,
        Actor::Msp,
        NewConnection {
            id: connection.clone(),
            plugin_id: plugin.to_owned(),
            config: config.to_string(),
            allowed_hosts: hosts,
            allow_private_network: settings.allow_private_network,
            max_concurrent: None,
            credentials,
        },
        company,
    )
    .await?;
    let now = now_ms();
    let inserted = sqlx::query(
        "INSERT INTO exchange_profiles (id, company_id, name, enabled, connection_id, psa_connection_id,
            server_address, virtual_directory, domain, version, hosted_by_third_party, use_graph,
            allow_private_network, interval_minutes, account_auth, account_username, account_mailbox,
            account_tenant, account_token_url, use_for_users, notify_to, sync_settings, created_at, updated_at)
         VALUES ($1, $2, '', 0, $3, $4, '', NULL, NULL, '', 0, 0, 0, 0, '', '', '', NULL, NULL, 0, '', '{}', $5, $5)",
    )
    .bind(id)
    .bind(company)
    .bind(&connection)
    .bind(&settings.psa_connection)
    .bind(now)
    .execute(hub.store().pool())
    .await;
    if let Err(e) = inserted {
        // Leave no orphan connection behind.
        let _ = hub.store().remove_connection(&connection).await;
        return Err(StoreError::from(e).into());
    }
    finish_save(hub, id, &connection, &settings, Vec::new()).await
}

/// Replaces the settings of profile `id`; `secret` re-enters the
/// synchronization account's (needed when the server changes).
pub async fn update(
    hub: &Hub,
    actor: Actor<'_>,
    id: &str,
    settings: ExchangeSettings,
    secret: Option<SecretString>,
) -> Result<ExchangeSaved, ExchangeError> {
    let before = get(hub, actor, id).await?;
    validate(&settings)?;
    check_psa(hub, actor, &settings.psa_connection).await?;
    refuse_while_running(hub, id, &before.connection_id).await?;
    if settings.server.use_graph != before.settings.server.use_graph {
        return Err(ExchangeError::TransportChange(id.to_owned()));
    }
    let record = hub.store().get_connection(&before.connection_id).await?;
    let stored: serde_json::Value = serde_json::from_str(&record.config).unwrap_or_default();
    let (_, config, hosts) = connector_config(&settings, Some(&stored))?;
    let mut credentials = BTreeMap::new();
    if let Some(secret) = secret {
        credentials.insert(
            ACCOUNT_SLOT.to_owned(),
            Some(account_credential(&settings, secret)),
        );
    } else if account_identity_changed(&before.settings, &settings) {
        return Err(ExchangeError::SecretRequired(
            "the account's user name, domain, tenant or token endpoint changed; enter its secret again in the same save".into(),
        ));
    }
    connections::update(
        hub,
        Actor::Msp,
        &before.connection_id,
        ConnectionChange {
            config: Some(config),
            allowed_hosts: Some(hosts),
            allow_private_network: Some(settings.allow_private_network),
            credentials,
            ..ConnectionChange::default()
        },
    )
    .await?;
    let resync = resync_fields(&before.settings.server, &settings.server);
    if !resync.is_empty() {
        sqlx::query("UPDATE exchange_profiles SET resync_requested_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(hub.store().pool())
            .await?;
        engine_profiles::request_resync(hub.store(), &before.connection_id).await?;
        tracing::info!(profile = %id, fields = ?resync, "server changed: every item re-synchronizes");
    }
    finish_save(hub, id, &before.connection_id, &settings, resync).await
}

fn account_identity_changed(a: &ExchangeSettings, b: &ExchangeSettings) -> bool {
    a.account.auth != b.account.auth
        || a.account.username.trim() != b.account.username.trim()
        || blank(&a.account.tenant) != blank(&b.account.tenant)
        || blank(&a.account.token_url) != blank(&b.account.token_url)
        || (a.account.auth == AccountAuth::Basic
            && blank(&a.server.domain) != blank(&b.server.domain))
}

/// The server fields whose change re-synchronizes every item: version,
/// address, virtual directory, domain.
pub fn resync_fields(a: &ServerDetails, b: &ServerDetails) -> Vec<&'static str> {
    let norm = |s: &str| s.trim().to_ascii_lowercase();
    let opt = |s: &Option<String>| blank(s).map(norm);
    let mut out = Vec::new();
    if a.version != b.version {
        out.push("version");
    }
    if norm(&a.address) != norm(&b.address) {
        out.push("address");
    }
    if opt(&a.virtual_directory) != opt(&b.virtual_directory) {
        out.push("virtual_directory");
    }
    if opt(&a.domain) != opt(&b.domain) {
        out.push("domain");
    }
    out
}

/// Writes the settings, tests the connection, feeds the schedule of the
/// engine profiles using the connection and, when enabled and working,
/// queues their runs.
async fn finish_save(
    hub: &Hub,
    id: &str,
    connection: &str,
    s: &ExchangeSettings,
    resync_fields: Vec<&'static str>,
) -> Result<ExchangeSaved, ExchangeError> {
    let sync = serde_json::to_string(&s.sync).map_err(|e| StoreError::Invalid {
        what: "exchange profile",
        id: id.to_owned(),
        detail: e.to_string(),
    })?;
    sqlx::query(
        "UPDATE exchange_profiles SET name = $1, enabled = $2, psa_connection_id = $3,
            server_address = $4, virtual_directory = $5, domain = $6, version = $7,
            hosted_by_third_party = $8, use_graph = $9, allow_private_network = $10,
            interval_minutes = $11, account_auth = $12, account_username = $13, account_mailbox = $14,
            account_tenant = $15, account_token_url = $16, use_for_users = $17, notify_to = $18,
            sync_settings = $19, updated_at = $20
         WHERE id = $21",
    )
    .bind(s.name.trim())
    .bind(i64::from(s.enabled))
    .bind(&s.psa_connection)
    .bind(s.server.address.trim())
    .bind(blank(&s.server.virtual_directory))
    .bind(blank(&s.server.domain))
    .bind(s.server.version.as_str())
    .bind(i64::from(s.server.hosted_by_third_party))
    .bind(i64::from(s.server.use_graph))
    .bind(i64::from(s.allow_private_network))
    .bind(i64::from(s.interval_minutes))
    .bind(match s.account.auth {
        AccountAuth::Basic => "basic",
        AccountAuth::Oauth => "oauth",
    })
    .bind(s.account.username.trim())
    .bind(s.account.mailbox.trim())
    .bind(blank(&s.account.tenant))
    .bind(blank(&s.account.token_url))
    .bind(i64::from(s.account.use_for_users))
    .bind(s.notify_to.trim())
    .bind(sync)
    .bind(now_ms())
    .bind(id)
    .execute(hub.store().pool())
    .await?;

    let test = ConnectionTest::of(hub.test_connection(connection).await?, &s.account.mailbox);
    let test_json = serde_json::to_string(&test).unwrap_or_default();
    sqlx::query("UPDATE exchange_profiles SET last_test = $1, last_tested_at = $2 WHERE id = $3")
        .bind(test_json)
        .bind(now_ms())
        .bind(id)
        .execute(hub.store().pool())
        .await?;

    // Flow 1's engine profiles follow the settings and the resources; any
    // other engine profile over this connection takes the profile's
    // interval and enabled flag (the scheduler reads them there).
    let flow = super::exchange_flow::materialize(hub, id).await?;
    let derived: std::collections::HashSet<String> = super::exchange_flow::rows(hub, id)
        .await?
        .into_iter()
        .map(|r| r.profile_id)
        .collect();
    let mut to_queue = flow;
    for user in engine_profiles::using_connection(hub.store(), connection).await? {
        if derived.contains(&user) {
            continue;
        }
        let mut settings = engine_profiles::settings(hub.store(), &user).await?;
        settings.enabled = s.enabled;
        settings.interval_secs = Some(u64::from(s.interval_minutes) * 60);
        settings.unreadable_interval = None;
        engine_profiles::set_settings(hub.store(), &user, &settings).await?;
        if s.enabled {
            to_queue.push(user);
        }
    }
    let mut queued_runs = Vec::new();
    if s.enabled && test.outcome != TestOutcome::Error {
        queued_runs = queue_runs(hub, &to_queue, "saved").await?;
    }
    Ok(ExchangeSaved {
        profile: load(hub.store(), id).await?,
        test,
        resync_fields,
        queued_runs,
    })
}

/// Queues a run of each of `profiles` (one already queued or running is left as it is),
/// in the order the scheduler queues them (`FieldRules::queue_rank`).
pub async fn queue_runs(
    hub: &Hub,
    profiles: &[String],
    trigger: &str,
) -> Result<Vec<RunRecord>, ExchangeError> {
    let mut ordered = Vec::with_capacity(profiles.len());
    for id in profiles {
        let rank = engine_profiles::get(hub.store(), id)
            .await?
            .rules
            .queue_rank();
        ordered.push((id, rank));
    }
    ordered.sort_by_key(|(_, rank)| *rank);
    let mut queued = Vec::new();
    for (id, _) in ordered {
        let settings = engine_profiles::settings(hub.store(), id).await?;
        let run = Runs::new(hub.store().clone())
            .enqueue(NewRun {
                profile_id: id,
                company_id: settings.company_id.as_deref(),
                trigger,
                mode: RunMode::Run,
                plan_id: None,
            })
            .await;
        match run {
            Ok(run) => queued.push(run),
            Err(RunsError::InProgress { .. }) => {}
            Err(RunsError::Store(e)) => return Err(e.into()),
        }
    }
    Ok(queued)
}

/// Removes profile `id`, its resources and its connection (with the
/// credentials), unless a run of it is queued or running or an engine
/// profile still uses the connection.
pub async fn remove(hub: &Hub, actor: Actor<'_>, id: &str) -> Result<(), ExchangeError> {
    let p = get(hub, actor, id).await?;
    refuse_while_running(hub, id, &p.connection_id).await?;
    let derived: Vec<String> = super::exchange_flow::rows(hub, id)
        .await?
        .into_iter()
        .map(|r| r.profile_id)
        .collect();
    let users: Vec<String> = engine_profiles::using_connection(hub.store(), &p.connection_id)
        .await?
        .into_iter()
        .filter(|u| !derived.contains(u))
        .collect();
    if !users.is_empty() {
        return Err(ExchangeError::Connection(ConnectionError::InUse(format!(
            "exchange profile {id}'s connection is used by profile(s) {}; remove those first",
            users.join(", ")
        ))));
    }
    super::exchange_flow::remove_all(hub, id).await?;
    let mut tx = hub.store().begin_write().await?;
    sqlx::query("DELETE FROM exchange_resources WHERE profile_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM exchange_profiles WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    sqlx::query("DELETE FROM mailboxes WHERE connection_id = $1")
        .bind(&p.connection_id)
        .execute(hub.store().pool())
        .await?;
    connections::remove(hub, &p.connection_id).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn settings() -> ExchangeSettings {
        ExchangeSettings {
            name: "Contoso".into(),
            enabled: true,
            psa_connection: "autotask".into(),
            server: ServerDetails {
                address: "mail.contoso.com".into(),
                virtual_directory: None,
                domain: None,
                version: ExchangeVersion::Exchange2016,
                hosted_by_third_party: false,
                use_graph: false,
            },
            interval_minutes: 10,
            account: SyncAccount {
                auth: AccountAuth::Basic,
                username: "svc@contoso.com".into(),
                mailbox: "svc@contoso.com".into(),
                tenant: None,
                token_url: None,
                use_for_users: true,
            },
            notify_to: "ops@contoso.com; it@contoso.com".into(),
            sync: SyncSettings::default(),
            allow_private_network: false,
        }
    }

    #[test]
    fn addresses() {
        assert!(check_address("mail.contoso.com").is_ok());
        assert_eq!(
            check_address("mail.contoso.com:2610").unwrap(),
            ("mail.contoso.com".into(), Some(2610))
        );
        for ip in [
            "10.0.0.5",
            "10.0.0.5:443",
            "[::1]",
            "::1",
            "0x7f.1",
            "127.1",
        ] {
            assert!(
                matches!(check_address(ip), Err(ExchangeError::AddressIsIp { .. })),
                "{ip}"
            );
        }
        assert!(matches!(
            check_address("mail.contoso.com:8443"),
            Err(ExchangeError::PortNotAllowed { port: 8443 })
        ));
        assert!(matches!(
            check_address("https://mail.contoso.com/EWS"),
            Err(ExchangeError::AddressInvalid { .. })
        ));
    }

    #[test]
    fn ews_config_and_basic_user_with_domain() {
        let mut s = settings();
        s.server.virtual_directory = Some("/Exch/".into());
        s.server.domain = Some("CONTOSO".into());
        s.account.username = "svc".into();
        let before = serde_json::json!({"mailbox_credentials": {"a@contoso.com": "user-1"}});
        let (plugin, config, hosts) = connector_config(&s, Some(&before)).unwrap();
        assert_eq!(plugin, "ews");
        assert_eq!(
            config["ews_url"],
            "https://mail.contoso.com/Exch/Exchange.asmx"
        );
        assert_eq!(config["version"], "Exchange2016");
        assert_eq!(config["mailbox_credentials"]["a@contoso.com"], "user-1");
        assert_eq!(hosts, vec!["mail.contoso.com".to_string()]);
        match account_credential(&s, SecretString::new("pw")) {
            Credential::Basic { username, .. } => assert_eq!(username, "CONTOSO\\svc"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn resync_fields_are_the_four_server_fields() {
        let a = settings().server;
        let mut b = a.clone();
        b.hosted_by_third_party = true;
        assert!(resync_fields(&a, &b).is_empty());
        b.version = ExchangeVersion::Exchange2019;
        b.domain = Some("X".into());
        assert_eq!(resync_fields(&a, &b), vec!["version", "domain"]);
    }
}
