//! Flow 3's email server profiles (Dynamics 365 "Settings > Email
//! Configuration > Email Server Profiles"): how the mailboxes of a Dynamics
//! organization reach their Exchange server. The REST API's
//! `/email-server-profiles` and the CLI's `email-profile` commands share
//! these rules.
//!
//! - Three server types: Exchange Server (on premises, EWS), Exchange Server
//!   (Hybrid) (Dynamics online with Exchange on premises, EWS) and Exchange
//!   Online (Microsoft Graph).
//! - Authenticate using the credentials of each user or queue (entered on
//!   the mailbox, sealed), or the profile's (the account impersonates the
//!   mailboxes). "Without credentials (anonymous)" is not a valid setting;
//!   Windows integrated authentication is refused: syncbridge does not run
//!   as a Windows service account.
//! - Credentials are refused for a location over plain HTTP unless the
//!   operator allows it explicitly (Dynamics' deployment property
//!   `AllowCredentialsEntryViaNonSecureChannels`).
//! - Autodiscover or explicit incoming and outgoing locations; autodiscover
//!   names the e-mail domains it may follow, so credentials only travel to
//!   hosts of those domains.
//! - Process email from (a date), the minimum polling interval, the maximum
//!   concurrent connections (default 10: per profile with the profile's
//!   credentials, per mailbox with the mailboxes' own), and moving failed
//!   emails to the Undeliverable folder.
//! - A profile owns one connection (`<profile>-mail`: the `ews` or `graph`
//!   plugin) that holds its credentials sealed.

use super::{companies, connections, Actor};
use crate::control::connections::{ConnectionChange, ConnectionError};
use crate::hub::{Hub, HubError, NewConnection};
use crate::ids;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::collections::BTreeMap;
use syncbridge_secrets::{Credential, SecretString};
use syncbridge_store::{now_ms, Store, StoreError};

/// The credential slot of the profile's own credentials.
pub const PROFILE_SLOT: &str = "default";
/// The credential slot of the profile's outgoing credentials when they differ.
pub const OUTGOING_SLOT: &str = "outgoing";
/// Default maximum concurrent connections (the seed's).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
/// Range of the maximum concurrent connections.
pub const MAX_CONNECTIONS: std::ops::RangeInclusive<u32> = 1..=100;
/// Range of the minimum polling interval, in minutes.
pub const POLLING_MINUTES: std::ops::RangeInclusive<u32> = 1..=1440;
/// Microsoft Graph's root, the default location of an Exchange Online profile.
pub const GRAPH_ROOT: &str = "https://graph.microsoft.com/v1.0";

/// Which Exchange the profile reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ServerType {
    /// Exchange Server on premises, through EWS.
    Exchange,
    /// Exchange Server (Hybrid): Dynamics online with mailboxes on premises, through EWS.
    ExchangeHybrid,
    /// Exchange Online, through Microsoft Graph.
    ExchangeOnline,
}

impl ServerType {
    /// The plugin of the profile's connection.
    pub fn plugin(self) -> &'static str {
        match self {
            ServerType::Exchange | ServerType::ExchangeHybrid => "ews",
            ServerType::ExchangeOnline => "graph",
        }
    }

    /// Dataverse's `servertype` value.
    pub fn dataverse_value(self) -> i64 {
        match self {
            ServerType::Exchange => 0,
            ServerType::ExchangeHybrid => 2,
            ServerType::ExchangeOnline => 3,
        }
    }
}

/// "Authenticate Using".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialSource {
    /// Credentials specified by a user or queue (entered on each mailbox).
    UserOrQueue,
    /// Credentials specified in the email server profile (with impersonation).
    Profile,
    /// Windows integrated authentication (refused).
    Integrated,
    /// Without credentials (anonymous): not a valid setting.
    Anonymous,
}

/// "Incoming/Outgoing Authentication Protocol".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuthProtocol {
    #[default]
    AutoDetect,
    Negotiate,
    Ntlm,
    Basic,
    Oauth,
}

/// The credentials of one direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Authentication {
    pub credentials: CredentialSource,
    /// With the profile's credentials: the user name (Exchange Online: the
    /// application's client id). Its secret travels apart, write-only.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub protocol: AuthProtocol,
}

fn yes() -> bool {
    true
}
fn default_polling() -> u32 {
    5
}
fn default_connections() -> u32 {
    DEFAULT_MAX_CONNECTIONS
}

/// Everything an operator enters on a profile (the whole form; a save replaces it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailServerSettings {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub server_type: ServerType,
    /// "Auto Discover Server Location" (EWS only).
    #[serde(default)]
    pub use_autodiscover: bool,
    /// The e-mail domains Autodiscover may follow (credentials go only to
    /// those domains and their sub-domains); required with Autodiscover.
    #[serde(default)]
    pub autodiscover_domains: Vec<String>,
    /// The EWS URL (or Graph root) of incoming email; required without Autodiscover.
    #[serde(default)]
    pub incoming_location: Option<String>,
    /// The EWS URL (or Graph root) of outgoing email; required without Autodiscover.
    #[serde(default)]
    pub outgoing_location: Option<String>,
    pub incoming: Authentication,
    /// "Use same settings for Outgoing".
    #[serde(default = "yes")]
    pub same_settings_for_outgoing: bool,
    /// Only when `same_settings_for_outgoing` is false.
    #[serde(default)]
    pub outgoing: Option<Authentication>,
    /// Exchange Online: the tenant (id or domain) of the mailboxes.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Exchange Online: the token endpoint (default: Entra ID's for the tenant).
    #[serde(default)]
    pub token_url: Option<String>,
    /// "Process Email From": RFC 3339; email received before it is left alone.
    #[serde(default)]
    pub process_email_from: Option<String>,
    /// "Minimum Polling Intervals in Minutes".
    #[serde(default = "default_polling")]
    pub min_polling_minutes: u32,
    /// "Maximum Concurrent Connections" (default 10).
    #[serde(default = "default_connections")]
    pub max_concurrent_connections: u32,
    /// "Move Failed Emails to Undeliverable Folder" (EWS only).
    #[serde(default)]
    pub move_failed_to_undeliverable: bool,
    /// Allow credentials to a location over plain HTTP
    /// (`AllowCredentialsEntryViaNonSecureChannels`).
    #[serde(default)]
    pub allow_credentials_over_http: bool,
    /// Let the connection reach private or loopback addresses (a server on the LAN).
    #[serde(default)]
    pub allow_private_network: bool,
}

impl EmailServerSettings {
    /// The credentials of outgoing email.
    pub fn outgoing_auth(&self) -> &Authentication {
        match (&self.same_settings_for_outgoing, &self.outgoing) {
            (false, Some(o)) => o,
            _ => &self.incoming,
        }
    }

    /// Whether the mailboxes bring their own credentials.
    pub fn per_mailbox_credentials(&self) -> bool {
        self.incoming.credentials == CredentialSource::UserOrQueue
    }
}

/// The write-only secrets of a save.
#[derive(Debug, Default)]
pub struct ProfileSecrets {
    /// The password (Exchange Online: the client secret) of `incoming.username`.
    pub incoming: Option<SecretString>,
    /// The password of `outgoing.username` when outgoing has its own.
    pub outgoing: Option<SecretString>,
}

/// A stored profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailServerProfile {
    pub id: String,
    pub company_id: Option<String>,
    pub settings: EmailServerSettings,
    /// The connection the profile owns.
    pub connection_id: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Why a profile was not saved, shown or removed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
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
    #[error("{field}.credentials: \"Without Credentials (Anonymous)\" is not a valid setting; choose user-or-queue (each mailbox's own credentials) or profile (this profile's credentials with impersonation)")]
    Anonymous { field: &'static str },
    #[error("{field}.credentials: Windows integrated authentication uses the credentials the service runs as, and syncbridge does not run as a Windows service account; choose profile (a service account with impersonation) or user-or-queue")]
    Integrated { field: &'static str },
    #[error("{field}: {reason}")]
    Field { field: &'static str, reason: String },
    #[error("{field}: {url:?} is plain HTTP and would carry credentials unencrypted; use https://, or set allow_credentials_over_http (AllowCredentialsEntryViaNonSecureChannels) if this network is trusted")]
    CredentialsOverHttp { field: &'static str, url: String },
    #[error("secret: {0}")]
    SecretRequired(String),
    #[error("server_type cannot change on a saved profile (its connection is a different plugin); remove profile {0:?} and create it again")]
    ServerTypeChange(String),
    #[error("email server profile {0:?} already exists; change it with `syncbridge email-profile update {0}` or PUT /api/v1/email-server-profiles/{0}")]
    Exists(String),
    #[error(
        "email server profile {profile:?} is in use by {users}; move them to another profile first"
    )]
    InUse { profile: String, users: String },
    #[error("this caller is scoped to company {company:?} and cannot use objects of another")]
    ScopeViolation { company: String },
}

impl From<ConnectionError> for ProfileError {
    fn from(e: ConnectionError) -> Self {
        match e {
            ConnectionError::CredentialsRequired { changed, .. } => ProfileError::SecretRequired(
                format!("changing {} sends the profile's credentials to another server; enter the secret again in the same save", changed.join(", ")),
            ),
            ConnectionError::Store(e) => ProfileError::Store(e),
            ConnectionError::Plugin(e) => ProfileError::Hub(e),
            e => ProfileError::Connection(e),
        }
    }
}

impl From<sqlx::Error> for ProfileError {
    fn from(e: sqlx::Error) -> Self {
        ProfileError::Store(e.into())
    }
}

fn field(field: &'static str, reason: impl Into<String>) -> ProfileError {
    ProfileError::Field {
        field,
        reason: reason.into(),
    }
}

fn blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The id of the connection profile `id` owns.
pub fn connection_id(id: &str) -> String {
    format!("{id}-mail")
}

/// A location: an absolute http(s) URL with a host.
fn check_location(name: &'static str, value: &str) -> Result<url::Url, ProfileError> {
    let u = url::Url::parse(value.trim()).map_err(|e| {
        field(
            name,
            format!("{value:?} is not a URL ({e}); enter e.g. https://mail.contoso.com/EWS/Exchange.asmx"),
        )
    })?;
    if !matches!(u.scheme(), "https" | "http") || u.host_str().is_none() {
        return Err(field(
            name,
            format!("{value:?} is not an http(s) URL with a host; enter e.g. https://mail.contoso.com/EWS/Exchange.asmx"),
        ));
    }
    Ok(u)
}

fn check_auth(
    name: &'static str,
    a: &Authentication,
    server: ServerType,
) -> Result<(), ProfileError> {
    match a.credentials {
        CredentialSource::Anonymous => return Err(ProfileError::Anonymous { field: name }),
        CredentialSource::Integrated => return Err(ProfileError::Integrated { field: name }),
        CredentialSource::UserOrQueue => {
            if blank(&a.username).is_some() {
                return Err(field(name, "username is entered only with profile credentials; with user-or-queue each mailbox's credentials are entered on the mailbox"));
            }
            if server == ServerType::ExchangeOnline {
                return Err(field(name, "Exchange Online is reached with the profile's application credentials (OAuth); choose profile"));
            }
        }
        CredentialSource::Profile => {
            if blank(&a.username).is_none() {
                return Err(field(
                    name,
                    if server == ServerType::ExchangeOnline {
                        "enter username: the application (client) id"
                    } else {
                        "enter username: the service account (DOMAIN\\user or user@contoso.com) that may impersonate the mailboxes"
                    },
                ));
            }
        }
    }
    match (server, a.protocol) {
        (ServerType::ExchangeOnline, AuthProtocol::AutoDetect | AuthProtocol::Oauth) => Ok(()),
        (ServerType::ExchangeOnline, p) => Err(field(
            name,
            format!("Exchange Online accepts OAuth only, not {p:?}; choose oauth or auto-detect"),
        )),
        (_, AuthProtocol::AutoDetect | AuthProtocol::Basic) => Ok(()),
        (_, p) => Err(field(
            name,
            format!("syncbridge reaches Exchange on premises with Basic authentication over TLS, not {p:?}; choose basic or auto-detect (and enable Basic on the EWS virtual directory)"),
        )),
    }
}

/// Checks a profile's settings; each rule is its own error naming the field and the remedy.
pub fn validate(s: &EmailServerSettings) -> Result<(), ProfileError> {
    if s.name.trim().is_empty() {
        return Err(ProfileError::NameMissing);
    }
    check_auth("incoming", &s.incoming, s.server_type)?;
    match (&s.same_settings_for_outgoing, &s.outgoing) {
        (true, Some(_)) => {
            return Err(field(
                "outgoing",
                "leave it out when same_settings_for_outgoing is true, or set that to false",
            ))
        }
        (false, None) => {
            return Err(field(
                "outgoing",
                "enter the outgoing credentials, or set same_settings_for_outgoing to true",
            ))
        }
        (false, Some(o)) => {
            check_auth("outgoing", o, s.server_type)?;
            if o.credentials != s.incoming.credentials {
                return Err(field("outgoing.credentials", "incoming and outgoing use the same kind of credentials (each mailbox's own, or the profile's); only the account may differ"));
            }
        }
        (true, None) => {}
    }
    let locations = [
        ("incoming_location", &s.incoming_location),
        ("outgoing_location", &s.outgoing_location),
    ];
    if s.use_autodiscover {
        if s.server_type == ServerType::ExchangeOnline {
            return Err(field("use_autodiscover", "Exchange Online is reached through Microsoft Graph, not Autodiscover; set it to false"));
        }
        for (name, v) in locations {
            if blank(v).is_some() {
                return Err(field(
                    name,
                    "leave it empty with Autodiscover, or set use_autodiscover to false",
                ));
            }
        }
        if s.autodiscover_domains.is_empty() {
            return Err(field("autodiscover_domains", "name the e-mail domains Autodiscover may follow (e.g. [\"contoso.com\"]); credentials go only to hosts of those domains"));
        }
        for d in &s.autodiscover_domains {
            let ok = !d.is_empty()
                && d.contains('.')
                && d.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            if !ok {
                return Err(field(
                    "autodiscover_domains",
                    format!("{d:?} is not a domain name; enter e.g. contoso.com"),
                ));
            }
        }
    } else {
        for (name, v) in locations {
            let value = match (blank(v), s.server_type) {
                (Some(v), _) => v,
                (None, ServerType::ExchangeOnline) => continue,
                (None, _) => {
                    return Err(field(
                        name,
                        "enter the EWS URL (e.g. https://mail.contoso.com/EWS/Exchange.asmx), or set use_autodiscover to true",
                    ))
                }
            };
            let u = check_location(name, value)?;
            // Anonymous is refused above, so every location carries credentials.
            if u.scheme() == "http" && !s.allow_credentials_over_http {
                return Err(ProfileError::CredentialsOverHttp {
                    field: name,
                    url: value.to_owned(),
                });
            }
        }
        if !s.autodiscover_domains.is_empty() {
            return Err(field(
                "autodiscover_domains",
                "only with use_autodiscover; leave it empty",
            ));
        }
    }
    if s.server_type == ServerType::ExchangeOnline {
        if blank(&s.tenant).is_none() {
            return Err(field(
                "tenant",
                "enter the Exchange Online tenant (its id or a domain such as contoso.onmicrosoft.com)",
            ));
        }
        if let Some(t) = blank(&s.token_url) {
            check_location("token_url", t)?;
        }
        if s.move_failed_to_undeliverable {
            return Err(field(
                "move_failed_to_undeliverable",
                "this option is available only for an Exchange (EWS) profile; set it to false",
            ));
        }
    } else if blank(&s.tenant).is_some() || blank(&s.token_url).is_some() {
        return Err(field(
            "tenant",
            "tenant and token_url belong to Exchange Online profiles; leave them empty",
        ));
    }
    if let Some(from) = blank(&s.process_email_from) {
        from.parse::<jiff::Timestamp>().map_err(|e| {
            field(
                "process_email_from",
                format!("{from:?} is not an RFC 3339 date and time ({e}); enter e.g. 2026-11-01T00:00:00Z"),
            )
        })?;
    }
    if !POLLING_MINUTES.contains(&s.min_polling_minutes) {
        return Err(field(
            "min_polling_minutes",
            format!(
                "{} is out of range; enter {} to {} minutes",
                s.min_polling_minutes,
                POLLING_MINUTES.start(),
                POLLING_MINUTES.end()
            ),
        ));
    }
    if !MAX_CONNECTIONS.contains(&s.max_concurrent_connections) {
        return Err(field(
            "max_concurrent_connections",
            format!(
                "{} is out of range; enter {} to {} (default {DEFAULT_MAX_CONNECTIONS}); lower it if Exchange reports errors from too many calls",
                s.max_concurrent_connections,
                MAX_CONNECTIONS.start(),
                MAX_CONNECTIONS.end()
            ),
        ));
    }
    Ok(())
}

fn token_url(s: &EmailServerSettings) -> String {
    blank(&s.token_url).map(str::to_owned).unwrap_or_else(|| {
        format!(
            "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
            blank(&s.tenant).unwrap_or_default()
        )
    })
}

/// The connection's plugin, configuration and allowed hosts for `s`
/// (validated); `before` keeps the per-mailbox credential names.
pub fn connector_config(
    s: &EmailServerSettings,
    before: Option<&serde_json::Value>,
) -> Result<(&'static str, serde_json::Value, Vec<String>), ProfileError> {
    let mut hosts: Vec<String> = Vec::new();
    let mut host_of = |v: &str| -> Result<(), ProfileError> {
        let u = check_location("incoming_location", v)?;
        if let Some(h) = u.host_str() {
            hosts.push(h.to_owned());
        }
        Ok(())
    };
    if s.server_type == ServerType::ExchangeOnline {
        let root = blank(&s.incoming_location).unwrap_or(GRAPH_ROOT).to_owned();
        host_of(&root)?;
        if let Some(o) = blank(&s.outgoing_location) {
            host_of(o)?;
        }
        host_of(&token_url(s))?;
        hosts.dedup();
        let mut config = serde_json::json!({
            "graph_url": root.trim_end_matches('/'),
            "tenant": blank(&s.tenant),
        });
        outgoing_config(s, &mut config);
        return Ok(("graph", config, hosts));
    }
    let mut config = serde_json::json!({
        "impersonate": s.incoming.credentials == CredentialSource::Profile,
    });
    if s.use_autodiscover {
        for d in &s.autodiscover_domains {
            let d = d.trim().to_ascii_lowercase();
            hosts.push(format!("*.{d}"));
            hosts.push(d);
        }
    } else {
        let incoming = blank(&s.incoming_location).unwrap_or_default().to_owned();
        host_of(&incoming)?;
        if let Some(o) = blank(&s.outgoing_location) {
            host_of(o)?;
        }
        config["ews_url"] = serde_json::Value::String(incoming);
    }
    outgoing_config(s, &mut config);
    if let Some(per_user) = before.and_then(|b| b.get("mailbox_credentials")) {
        config["mailbox_credentials"] = per_user.clone();
    }
    hosts.sort();
    hosts.dedup();
    Ok(("ews", config, hosts))
}

/// Whether outgoing email has an account of its own (its own credential slot): the profile's
/// credentials, "Use same settings for Outgoing" off, and another user name.
fn own_outgoing(s: &EmailServerSettings) -> bool {
    s.incoming.credentials == CredentialSource::Profile
        && !s.same_settings_for_outgoing
        && s.outgoing_auth().username.as_deref().map(str::trim)
            != s.incoming.username.as_deref().map(str::trim)
}

/// The incoming location outgoing is compared with: the Graph root, or the EWS URL (none
/// with Autodiscover, which finds both).
fn incoming_location(s: &EmailServerSettings) -> Option<&str> {
    match s.server_type {
        ServerType::ExchangeOnline => Some(blank(&s.incoming_location).unwrap_or(GRAPH_ROOT)),
        _ if s.use_autodiscover => None,
        _ => Some(blank(&s.incoming_location).unwrap_or_default()),
    }
}

/// The outgoing location when it is not the incoming one.
fn outgoing_url(s: &EmailServerSettings) -> Option<&str> {
    let incoming = incoming_location(s).map(|i| i.trim_end_matches('/'));
    blank(&s.outgoing_location)
        .map(|o| o.trim_end_matches('/'))
        .filter(|o| Some(*o) != incoming)
}

/// Whether outgoing email goes apart from incoming (its own account or location), so that
/// Test & Enable checks it on its own; otherwise opening the mailbox checks both.
pub fn outgoing_apart(s: &EmailServerSettings) -> bool {
    own_outgoing(s) || outgoing_url(s).is_some()
}

/// Sends through the outgoing location (`outgoing_url`) when it is not the incoming one, and
/// with the outgoing account's slot when it has its own.
fn outgoing_config(s: &EmailServerSettings, config: &mut serde_json::Value) {
    if let Some(o) = outgoing_url(s) {
        config["outgoing_url"] = o.into();
    }
    if own_outgoing(s) {
        config["outgoing_credential"] = OUTGOING_SLOT.into();
    }
}

/// The credential of one direction's account from its secret.
fn credential(s: &EmailServerSettings, a: &Authentication, secret: SecretString) -> Credential {
    let username = blank(&a.username).unwrap_or_default().to_owned();
    match s.server_type {
        ServerType::ExchangeOnline => Credential::Oauth2ClientCredentials {
            token_url: token_url(s),
            client_id: username,
            client_secret: secret,
            scope: Some("https://graph.microsoft.com/.default".into()),
        },
        _ => Credential::Basic {
            username,
            password: secret,
        },
    }
}

/// The credential slots a save sets: the profile's accounts, when they bring a secret.
fn slots(
    s: &EmailServerSettings,
    secrets: ProfileSecrets,
    creating: bool,
) -> Result<BTreeMap<String, Option<Credential>>, ProfileError> {
    let mut out = BTreeMap::new();
    if s.incoming.credentials != CredentialSource::Profile {
        if !creating {
            out.insert(PROFILE_SLOT.to_owned(), None);
            out.insert(OUTGOING_SLOT.to_owned(), None);
        }
        return Ok(out);
    }
    match secrets.incoming {
        Some(secret) => {
            out.insert(
                PROFILE_SLOT.to_owned(),
                Some(credential(s, &s.incoming, secret)),
            );
        }
        None if creating => {
            return Err(ProfileError::SecretRequired(
                "enter the password of incoming.username (Exchange Online: the client secret)"
                    .into(),
            ))
        }
        None => {}
    }
    if own_outgoing(s) {
        match secrets.outgoing {
            Some(secret) => {
                out.insert(
                    OUTGOING_SLOT.to_owned(),
                    Some(credential(s, s.outgoing_auth(), secret)),
                );
            }
            None if creating => {
                return Err(ProfileError::SecretRequired(
                    "enter the password of outgoing.username".into(),
                ))
            }
            None => {}
        }
    } else if !creating {
        out.insert(OUTGOING_SLOT.to_owned(), None);
    }
    Ok(out)
}

/// The connection's limit: per profile with the profile's credentials;
/// per mailbox otherwise (the test and sync work one mailbox at a time
/// under it, so the connection itself keeps the plugin's limit).
fn connection_limit(s: &EmailServerSettings) -> Option<u32> {
    (s.incoming.credentials == CredentialSource::Profile).then_some(s.max_concurrent_connections)
}

const SELECT: &str = "SELECT id, company_id, connection_id, settings, created_at, updated_at FROM email_server_profiles";

fn from_row(r: &sqlx::any::AnyRow) -> Result<EmailServerProfile, StoreError> {
    let id: String = r.try_get("id")?;
    let settings: String = r.try_get("settings")?;
    let settings = serde_json::from_str(&settings).map_err(|e| StoreError::Invalid {
        what: "email server profile",
        id: id.clone(),
        detail: format!(
            "its stored settings do not read ({e}); save the profile again with every field"
        ),
    })?;
    Ok(EmailServerProfile {
        company_id: r.try_get("company_id")?,
        connection_id: r.try_get("connection_id")?,
        settings,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        id,
    })
}

fn not_found(id: &str) -> ProfileError {
    ProfileError::Store(StoreError::NotFound {
        what: "email server profile",
        id: id.to_owned(),
    })
}

/// Profile `id`, read without scoping (the mailbox test's view).
pub async fn load(store: &Store, id: &str) -> Result<EmailServerProfile, ProfileError> {
    let row = sqlx::query(&format!("{SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(from_row(&row)?)
}

/// Profile `id` as `actor` sees it.
pub async fn get(
    hub: &Hub,
    actor: Actor<'_>,
    id: &str,
) -> Result<EmailServerProfile, ProfileError> {
    let p = load(hub.store(), id).await?;
    if !actor.sees(p.company_id.as_deref()) {
        return Err(not_found(id));
    }
    Ok(p)
}

/// Profiles `actor` sees, by id.
pub async fn list(hub: &Hub, actor: Actor<'_>) -> Result<Vec<EmailServerProfile>, ProfileError> {
    let rows = sqlx::query(&format!("{SELECT} ORDER BY id"))
        .fetch_all(hub.store().pool())
        .await?;
    let mut out = Vec::new();
    for r in &rows {
        let p = from_row(r)?;
        if actor.sees(p.company_id.as_deref()) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Creates profile `id` for `actor` (owned by `company`) with its connection.
pub async fn create(
    hub: &Hub,
    actor: Actor<'_>,
    id: &str,
    company: Option<&str>,
    settings: EmailServerSettings,
    secrets: ProfileSecrets,
) -> Result<EmailServerProfile, ProfileError> {
    if let Some(mine) = actor.company() {
        if company != Some(mine) {
            return Err(ProfileError::ScopeViolation {
                company: mine.to_owned(),
            });
        }
    }
    ids::check_new_object_id("email server profile", id, company, actor.company())?;
    if let Some(c) = company {
        companies::get(hub.store(), c).await?;
    }
    if load(hub.store(), id).await.is_ok() {
        return Err(ProfileError::Exists(id.to_owned()));
    }
    validate(&settings)?;
    let (plugin, config, hosts) = connector_config(&settings, None)?;
    let credentials = slots(&settings, secrets, true)?
        .into_iter()
        .filter_map(|(k, v)| v.map(|c| (k, c)))
        .collect();
    let connection = connection_id(id);
    connections::create(
        hub,
        Actor::Msp,
        NewConnection {
            id: connection.clone(),
            plugin_id: plugin.to_owned(),
            config: config.to_string(),
            allowed_hosts: hosts,
            allow_private_network: settings.allow_private_network,
            max_concurrent: connection_limit(&settings),
            credentials,
        },
        company,
    )
    .await?;
    let now = now_ms();
    let inserted = sqlx::query(
        "INSERT INTO email_server_profiles (id, company_id, connection_id, settings, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(id)
    .bind(company)
    .bind(&connection)
    .bind(serde_json::to_string(&settings).expect("settings serialize"))
    .bind(now)
    .execute(hub.store().pool())
    .await;
    if let Err(e) = inserted {
        let _ = hub.store().remove_connection(&connection).await;
        return Err(StoreError::from(e).into());
    }
    load(hub.store(), id).await
}

/// Replaces the settings of profile `id`; the secrets re-enter the profile's
/// credentials (needed when a location or account changes).
pub async fn update(
    hub: &Hub,
    actor: Actor<'_>,
    id: &str,
    settings: EmailServerSettings,
    secrets: ProfileSecrets,
) -> Result<EmailServerProfile, ProfileError> {
    let before = get(hub, actor, id).await?;
    if before.settings.server_type.plugin() != settings.server_type.plugin() {
        return Err(ProfileError::ServerTypeChange(id.to_owned()));
    }
    validate(&settings)?;
    let record = hub.store().get_connection(&before.connection_id).await?;
    let stored: serde_json::Value = serde_json::from_str(&record.config).unwrap_or_default();
    let (_, config, hosts) = connector_config(&settings, Some(&stored))?;
    let account_changed = before.settings.incoming.username != settings.incoming.username
        || before.settings.outgoing_auth().username != settings.outgoing_auth().username
        || before.settings.incoming.credentials != settings.incoming.credentials;
    if account_changed
        && settings.incoming.credentials == CredentialSource::Profile
        && secrets.incoming.is_none()
    {
        return Err(ProfileError::SecretRequired(
            "the account changed; enter its password (Exchange Online: the client secret) in the same save".into(),
        ));
    }
    let credentials = slots(&settings, secrets, false)?;
    connections::update(
        hub,
        Actor::Msp,
        &before.connection_id,
        ConnectionChange {
            config: Some(config),
            allowed_hosts: Some(hosts),
            allow_private_network: Some(settings.allow_private_network),
            max_concurrent: Some(connection_limit(&settings)),
            credentials,
            company_id: None,
        },
    )
    .await?;
    sqlx::query("UPDATE email_server_profiles SET settings = $1, updated_at = $2 WHERE id = $3")
        .bind(serde_json::to_string(&settings).expect("settings serialize"))
        .bind(now_ms())
        .bind(id)
        .execute(hub.store().pool())
        .await?;
    // Process Email From and the polling interval reach the mailboxes' processing.
    super::dynamics_flow::materialize_profile(hub, id).await?;
    load(hub.store(), id).await
}

/// The mailboxes whose settings name profile `id`, by id.
pub async fn mailboxes_using(
    store: &Store,
    id: &str,
) -> Result<Vec<super::mailboxes::Mailbox>, StoreError> {
    let mut found: Vec<_> = super::mailboxes::list(store, None, None)
        .await?
        .into_iter()
        .filter(|m| m.settings.get("server_profile").and_then(|p| p.as_str()) == Some(id))
        .collect();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(found)
}

/// Mailboxes and organizations whose settings name profile `id`.
pub async fn users(store: &Store, id: &str) -> Result<Vec<String>, ProfileError> {
    let mut out = Vec::new();
    let orgs = sqlx::query(
        "SELECT connection_id FROM email_processing_defaults WHERE server_profile_id = $1",
    )
    .bind(id)
    .fetch_all(store.pool())
    .await?;
    for r in orgs {
        out.push(format!(
            "the email processing defaults of {}",
            r.try_get::<String, _>("connection_id")?
        ));
    }
    for m in mailboxes_using(store, id).await? {
        out.push(format!("mailbox {}", m.id));
    }
    Ok(out)
}

/// Removes profile `id` and its connection; refused while mailboxes or
/// an organization's defaults name it.
pub async fn remove(hub: &Hub, actor: Actor<'_>, id: &str) -> Result<(), ProfileError> {
    let p = get(hub, actor, id).await?;
    let users = users(hub.store(), id).await?;
    if !users.is_empty() {
        let shown = if users.len() > 5 {
            format!("{} and {} more", users[..5].join(", "), users.len() - 5)
        } else {
            users.join(", ")
        };
        return Err(ProfileError::InUse {
            profile: id.to_owned(),
            users: shown,
        });
    }
    sqlx::query("DELETE FROM email_server_profiles WHERE id = $1")
        .bind(id)
        .execute(hub.store().pool())
        .await?;
    connections::remove(hub, &p.connection_id).await?;
    Ok(())
}

/// The credential slot of a mailbox's own credentials.
pub fn mailbox_slot(address: &str) -> String {
    let safe: String = address
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("mailbox-{safe}")
}

/// Enters the own credentials of mailbox `address` on profile `id` (a
/// profile of user-or-queue credentials): sealed in the connection's slot
/// for the mailbox and named in the connector's `mailbox_credentials`.
pub async fn set_mailbox_credential(
    hub: &Hub,
    actor: Actor<'_>,
    id: &str,
    address: &str,
    username: &str,
    secret: SecretString,
) -> Result<(), ProfileError> {
    let p = get(hub, actor, id).await?;
    if !p.settings.per_mailbox_credentials() {
        return Err(field("incoming.credentials", format!("profile {id:?} uses its own credentials (with impersonation); a mailbox's credentials are entered only on a user-or-queue profile")));
    }
    if username.trim().is_empty() {
        return Err(field(
            "username",
            "enter the mailbox's user name (DOMAIN\\user or user@contoso.com)",
        ));
    }
    let record = hub.store().get_connection(&p.connection_id).await?;
    let mut config: serde_json::Value = serde_json::from_str(&record.config).unwrap_or_default();
    let slot = mailbox_slot(address);
    config["mailbox_credentials"][address.trim().to_ascii_lowercase()] =
        serde_json::Value::String(slot.clone());
    connections::update(
        hub,
        Actor::Msp,
        &p.connection_id,
        ConnectionChange {
            config: Some(config),
            credentials: BTreeMap::from([(
                slot,
                Some(Credential::Basic {
                    username: username.trim().to_owned(),
                    password: secret,
                }),
            )]),
            ..ConnectionChange::default()
        },
    )
    .await?;
    Ok(())
}

/// Whether mailbox `address` has its own credentials on profile `p`.
pub async fn has_mailbox_credential(
    store: &Store,
    p: &EmailServerProfile,
    address: &str,
) -> Result<bool, StoreError> {
    let record = store.get_connection(&p.connection_id).await?;
    let config: serde_json::Value = serde_json::from_str(&record.config).unwrap_or_default();
    Ok(config["mailbox_credentials"]
        .get(address.trim().to_ascii_lowercase())
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> EmailServerSettings {
        serde_json::from_value(serde_json::json!({
            "name": "Exchange on premises",
            "server_type": "exchange",
            "incoming_location": "https://mail.contoso.com/EWS/Exchange.asmx",
            "outgoing_location": "https://mail.contoso.com/EWS/Exchange.asmx",
            "incoming": {"credentials": "profile", "username": "CONTOSO\\crmsync"}
        }))
        .unwrap()
    }

    #[test]
    fn defaults_are_the_seeds() {
        let s = settings();
        assert_eq!(s.max_concurrent_connections, 10);
        assert!(s.same_settings_for_outgoing);
        assert!(!s.allow_credentials_over_http);
        validate(&s).unwrap();
    }

    #[test]
    fn anonymous_and_integrated_are_refused() {
        let mut s = settings();
        s.incoming.credentials = CredentialSource::Anonymous;
        s.incoming.username = None;
        assert!(matches!(validate(&s), Err(ProfileError::Anonymous { .. })));
        s.incoming.credentials = CredentialSource::Integrated;
        assert!(matches!(validate(&s), Err(ProfileError::Integrated { .. })));
    }

    #[test]
    fn credentials_over_plain_http_need_the_explicit_allowance() {
        let mut s = settings();
        s.incoming_location = Some("http://mail.contoso.com/EWS/Exchange.asmx".into());
        assert!(matches!(
            validate(&s),
            Err(ProfileError::CredentialsOverHttp {
                field: "incoming_location",
                ..
            })
        ));
        s.allow_credentials_over_http = true;
        validate(&s).unwrap();
    }

    #[test]
    fn autodiscover_limits_credentials_to_its_domains() {
        let mut s = settings();
        s.use_autodiscover = true;
        assert!(validate(&s).is_err(), "locations must be empty");
        s.incoming_location = None;
        s.outgoing_location = None;
        assert!(validate(&s).is_err(), "domains are required");
        s.autodiscover_domains = vec!["contoso.com".into()];
        validate(&s).unwrap();
        let (plugin, config, hosts) = connector_config(&s, None).unwrap();
        assert_eq!(plugin, "ews");
        assert!(config.get("ews_url").is_none());
        assert_eq!(hosts, vec!["*.contoso.com", "contoso.com"]);
    }

    #[test]
    fn outgoing_email_goes_through_the_outgoing_location_and_account() {
        let mut s = settings();
        let (_, same, _) = connector_config(&s, None).unwrap();
        assert!(
            same.get("outgoing_url").is_none(),
            "the same location: {same}"
        );
        assert!(same.get("outgoing_credential").is_none(), "{same}");
        s.outgoing_location = Some("https://smtp.contoso.com/EWS/Exchange.asmx".into());
        s.same_settings_for_outgoing = false;
        s.outgoing = Some(
            serde_json::from_value(
                serde_json::json!({"credentials": "profile", "username": "CONTOSO\\crmsend"}),
            )
            .unwrap(),
        );
        validate(&s).unwrap();
        let (_, config, hosts) = connector_config(&s, None).unwrap();
        assert_eq!(
            config["outgoing_url"],
            "https://smtp.contoso.com/EWS/Exchange.asmx"
        );
        assert_eq!(config["outgoing_credential"], OUTGOING_SLOT);
        assert_eq!(hosts, vec!["mail.contoso.com", "smtp.contoso.com"]);
        // Online: the outgoing app's slot too.
        s.server_type = ServerType::ExchangeOnline;
        s.incoming_location = None;
        s.outgoing_location = None;
        let (plugin, online, _) = connector_config(&s, None).unwrap();
        assert_eq!(plugin, "graph");
        assert!(online.get("outgoing_url").is_none(), "{online}");
        assert_eq!(online["outgoing_credential"], OUTGOING_SLOT);
    }

    #[test]
    fn outgoing_is_checked_apart_only_with_its_own_account_or_location() {
        let mut s = settings();
        assert!(!outgoing_apart(&s), "the same account and location");
        s.outgoing_location = Some("https://mail.contoso.com/EWS/Exchange.asmx/".into());
        assert!(
            !outgoing_apart(&s),
            "the same location, written with a slash"
        );
        s.outgoing_location = Some("https://smtp.contoso.com/EWS/Exchange.asmx".into());
        assert!(outgoing_apart(&s), "another location");
        s.outgoing_location = s.incoming_location.clone();
        s.same_settings_for_outgoing = false;
        s.outgoing = Some(
            serde_json::from_value(
                serde_json::json!({"credentials": "profile", "username": "CONTOSO\\crmsend"}),
            )
            .unwrap(),
        );
        assert!(outgoing_apart(&s), "another account");
    }
}
