//! E-mail notifications over SMTP: failed runs, connections stopped by
//! authentication errors, plans held by the brakes, confirmations of applied
//! runs.
//!
//! * [`SmtpSettings`] says where and how to send; [`SmtpSettings::from_env`]
//!   reads `SYNCBRIDGE_SMTP_URL`, `SYNCBRIDGE_SMTP_FROM` and
//!   `SYNCBRIDGE_SMTP_PASSWORD_FILE` (see `docs/notifications.md`).
//! * [`Recipients::parse`] reads the `;`-separated lists operators type.
//! * [`Notification`] is one message; its constructors format run outcomes.
//! * [`Notifier`] sends; [`SmtpNotifier`] is the SMTP implementation,
//!   [`RecordingNotifier`] keeps messages in memory for tests of callers.
//!
//! A transient rejection (4xx) is retried once; a permanent one (5xx) never.
//! The SMTP password is a [`SecretString`]: it is redacted from `Debug` and
//! never copied into errors or logs.

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls as LettreTls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use syncbridge_secrets::SecretString;

/// Environment variable with the SMTP server URL; unset means no e-mail.
pub const SMTP_URL_ENV: &str = "SYNCBRIDGE_SMTP_URL";
/// Environment variable with the sender address.
pub const SMTP_FROM_ENV: &str = "SYNCBRIDGE_SMTP_FROM";
/// Environment variable with the path of a file holding the SMTP password.
pub const SMTP_PASSWORD_FILE_ENV: &str = "SYNCBRIDGE_SMTP_PASSWORD_FILE";

/// Default time allowed for connecting and for each SMTP command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default pause before the one retry of a transient (4xx) rejection.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(5);

/// Why a notification could not be configured or sent. Every message says
/// what to do next; none contains the SMTP password.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("the recipient list is empty: give at least one address, e.g. `ops@msp.example; noc@msp.example`")]
    NoRecipients,
    #[error("recipient `{entry}` is not a valid e-mail address ({reason}): fix or remove it; separate addresses with `;`")]
    InvalidRecipient { entry: String, reason: String },
    #[error("the sender address `{from}` is not a valid e-mail address ({reason}): set {SMTP_FROM_ENV} to an address like syncbridge@msp.example")]
    InvalidSender { from: String, reason: String },
    #[error("SMTP settings are not valid: {0}")]
    Config(String),
    #[error("cannot read the SMTP password file {path}: {source}; check {SMTP_PASSWORD_FILE_ENV}")]
    PasswordFile {
        path: String,
        source: std::io::Error,
    },
    #[error("SMTP server {server} refused the connection: check the smtp host/port setting ({SMTP_URL_ENV}) and that the server is running")]
    Refused { server: String },
    #[error("SMTP server {server} did not answer within {secs} s: check the smtp host/port setting, the firewall, and that the tls mode matches the port (implicit for 465, starttls for 587)")]
    Timeout { server: String, secs: u64 },
    #[error("cannot reach SMTP server {server} ({reason}): check the smtp host/port setting ({SMTP_URL_ENV}) and the network")]
    Connection { server: String, reason: String },
    #[error("TLS with SMTP server {server} failed ({reason}): check that the tls mode matches the port (implicit for 465, starttls for 587) and that the server's certificate is trusted (add its CA with --ca-cert)")]
    Tls { server: String, reason: String },
    #[error("SMTP server {server} does not offer STARTTLS: use tls=implicit if it listens for TLS directly (port 465), or tls=none only for a trusted relay on the local network")]
    StartTlsUnsupported { server: String },
    #[error("SMTP server {server} offers no login method syncbridge supports (PLAIN, LOGIN) on this connection: use tls=starttls or tls=implicit (servers often offer login only over TLS), or remove the username if the relay needs no login")]
    AuthUnsupported { server: String },
    #[error("SMTP server {server} rejected the login of user `{username}` ({code} {message}): check the username in {SMTP_URL_ENV} and the password in {SMTP_PASSWORD_FILE_ENV}")]
    AuthFailed {
        server: String,
        username: String,
        code: String,
        message: String,
    },
    #[error("SMTP server {server} requires a login ({code} {message}): put the username in {SMTP_URL_ENV} (smtp://user@host) and the password in the file named by {SMTP_PASSWORD_FILE_ENV}")]
    AuthRequired {
        server: String,
        code: String,
        message: String,
    },
    #[error("SMTP server {server} permanently rejected the message ({code} {message}); not retried: check the sender address ({SMTP_FROM_ENV}), the recipients, and that the server relays for this sender")]
    Rejected {
        server: String,
        code: String,
        message: String,
    },
    #[error("SMTP server {server} deferred the message twice ({code} {message}); the notification was not sent: the server is busy, rate-limiting or greylisting, check its queue and limits")]
    Deferred {
        server: String,
        code: String,
        message: String,
    },
    #[error("sending through SMTP server {server} failed ({reason}): check the SMTP settings ({SMTP_URL_ENV}) and the server's log")]
    Smtp { server: String, reason: String },
}

/// How the connection to the SMTP server is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// Plain text. Only for a trusted relay on the local network.
    None,
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    StartTls,
    /// TLS from the first byte, "SMTPS" (port 465).
    Implicit,
}

impl Tls {
    /// The port usually used with this mode.
    pub fn default_port(self) -> u16 {
        match self {
            Tls::None => 25,
            Tls::StartTls => 587,
            Tls::Implicit => 465,
        }
    }
}

impl FromStr for Tls {
    type Err = NotifyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "off" | "plain" => Ok(Tls::None),
            "starttls" => Ok(Tls::StartTls),
            "implicit" | "tls" | "smtps" => Ok(Tls::Implicit),
            other => Err(NotifyError::Config(format!(
                "tls mode `{other}` is unknown: use tls=starttls, tls=implicit or tls=none"
            ))),
        }
    }
}

/// Where and how to send e-mail. `Debug` never shows the password.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// The sender, `syncbridge@msp.example` or `Syncbridge <syncbridge@msp.example>`.
    pub from: String,
    /// Time allowed for connecting and for each SMTP command.
    pub timeout: Duration,
    /// Extra trusted CA certificates (PEM), e.g. the operator's `--ca-cert` files.
    pub extra_ca_pems: Vec<Vec<u8>>,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .field("extra_ca_pems", &self.extra_ca_pems.len())
            .finish()
    }
}

impl SmtpSettings {
    /// Settings without login, STARTTLS on 587 and the default timeout.
    pub fn new(host: impl Into<String>, from: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: Tls::StartTls.default_port(),
            tls: Tls::StartTls,
            username: None,
            password: None,
            from: from.into(),
            timeout: DEFAULT_TIMEOUT,
            extra_ca_pems: Vec::new(),
        }
    }

    /// `host:port`, as errors name the server.
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Parses `smtp://[user@]host[:port][?tls=starttls|implicit|none][&timeout=SECONDS]`.
    ///
    /// `smtp://` defaults to `tls=starttls`, `smtps://` to `tls=implicit`; the
    /// port defaults to 587, 465 or 25 by tls mode. A username that is an
    /// e-mail address is written with `%40`: `smtp://alerts%40msp.example@mail.msp.example`.
    /// A password in the URL is refused (it would end up in process listings
    /// and logs); give it with [`SmtpSettings::with_password_file`].
    pub fn from_url(url: &str, from: &str) -> Result<Self, NotifyError> {
        let parsed = url::Url::parse(url.trim()).map_err(|e| {
            NotifyError::Config(format!(
                "{SMTP_URL_ENV} is not a URL ({e}): write it like smtp://user@mail.msp.example:587?tls=starttls"
            ))
        })?;
        if parsed.password().is_some() {
            return Err(NotifyError::Config(format!(
                "{SMTP_URL_ENV} contains a password: remove it from the URL and put it in a file named by {SMTP_PASSWORD_FILE_ENV}"
            )));
        }
        let mut tls = match parsed.scheme() {
            "smtp" => Tls::StartTls,
            "smtps" => Tls::Implicit,
            other => {
                return Err(NotifyError::Config(format!(
                    "{SMTP_URL_ENV} has scheme `{other}`: use smtp:// (STARTTLS or plain) or smtps:// (implicit TLS)"
                )))
            }
        };
        let host = match parsed.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => {
                return Err(NotifyError::Config(format!(
                    "{SMTP_URL_ENV} has no host: write it like smtp://mail.msp.example:587"
                )))
            }
        };
        let mut timeout = DEFAULT_TIMEOUT;
        for (key, value) in parsed.query_pairs() {
            match key.as_ref() {
                "tls" => tls = value.parse()?,
                "timeout" => {
                    let secs: u64 = value.trim().parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        NotifyError::Config(format!(
                            "timeout=`{value}` in {SMTP_URL_ENV} is not a positive number of seconds"
                        ))
                    })?;
                    timeout = Duration::from_secs(secs);
                }
                other => {
                    return Err(NotifyError::Config(format!(
                        "{SMTP_URL_ENV} has unknown parameter `{other}`: only tls and timeout are understood"
                    )))
                }
            }
        }
        let username = match parsed.username() {
            "" => None,
            user => Some(percent_decode(user)),
        };
        Ok(Self {
            host,
            port: parsed.port().unwrap_or_else(|| tls.default_port()),
            tls,
            username,
            password: None,
            from: from.trim().to_owned(),
            timeout,
            extra_ca_pems: Vec::new(),
        })
    }

    /// Reads the password from a file; one trailing line break is dropped.
    pub fn with_password_file(mut self, path: &Path) -> Result<Self, NotifyError> {
        let text = std::fs::read_to_string(path).map_err(|source| NotifyError::PasswordFile {
            path: path.display().to_string(),
            source,
        })?;
        let password = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(&text);
        self.password = Some(SecretString::new(password));
        Ok(self)
    }

    /// Settings from the process environment; `Ok(None)` when
    /// `SYNCBRIDGE_SMTP_URL` is unset or empty (e-mail is off).
    pub fn from_env() -> Result<Option<Self>, NotifyError> {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// [`SmtpSettings::from_env`] with a custom lookup, for tests and callers
    /// that keep settings elsewhere.
    pub fn from_env_with(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, NotifyError> {
        let Some(url) = lookup(SMTP_URL_ENV).filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let from = lookup(SMTP_FROM_ENV)
            .filter(|f| !f.trim().is_empty())
            .ok_or_else(|| {
                NotifyError::Config(format!(
                    "{SMTP_URL_ENV} is set but {SMTP_FROM_ENV} is not: set it to the sender address, e.g. syncbridge@msp.example"
                ))
            })?;
        let mut settings = Self::from_url(&url, &from)?;
        if let Some(path) = lookup(SMTP_PASSWORD_FILE_ENV).filter(|p| !p.trim().is_empty()) {
            settings = settings.with_password_file(Path::new(path.trim()))?;
        }
        settings.validate()?;
        Ok(Some(settings))
    }

    /// Checks the settings without connecting.
    pub fn validate(&self) -> Result<(), NotifyError> {
        self.sender().map(|_| ())?;
        if self.host.trim().is_empty() {
            return Err(NotifyError::Config(format!(
                "the SMTP host is empty: set {SMTP_URL_ENV}"
            )));
        }
        if self.port == 0 {
            return Err(NotifyError::Config("the SMTP port is 0".into()));
        }
        match (&self.username, &self.password) {
            (Some(_), None) => Err(NotifyError::Config(format!(
                "an SMTP username is set but no password: put the password in a file and set {SMTP_PASSWORD_FILE_ENV} to its path"
            ))),
            (None, Some(_)) => Err(NotifyError::Config(format!(
                "an SMTP password is set but no username: write it in {SMTP_URL_ENV} as smtp://user@host"
            ))),
            _ => Ok(()),
        }
    }

    fn sender(&self) -> Result<Mailbox, NotifyError> {
        parse_mailbox(&self.from).map_err(|reason| NotifyError::InvalidSender {
            from: self.from.clone(),
            reason,
        })
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One address as operators write it: `ops@msp.example` or `Ops <ops@msp.example>`.
fn parse_mailbox(entry: &str) -> Result<Mailbox, String> {
    let entry = entry.trim();
    if entry.contains('<') || entry.contains('>') {
        if !entry.ends_with('>') {
            return Err("text after the closing `>`".into());
        }
        return Mailbox::from_str(entry).map_err(|e| e.to_string().to_lowercase());
    }
    match Address::from_str(entry) {
        Ok(address) => Ok(Mailbox::new(None, address)),
        Err(e) => {
            let mut reason = e.to_string().to_lowercase();
            if entry.matches('@').count() > 1 || entry.contains(',') || entry.contains(' ') {
                reason.push_str("; it looks like several addresses, separate them with `;`");
            } else if !entry.contains('@') {
                reason.push_str("; an address needs an `@`");
            }
            Err(reason)
        }
    }
}

/// A non-empty list of e-mail recipients.
#[derive(Clone, PartialEq, Eq)]
pub struct Recipients(Vec<Mailbox>);

impl Recipients {
    /// Parses a `;`-separated list like `ops@msp.example; noc@msp.example;`.
    /// Spaces and empty entries are ignored, duplicates dropped, entries may
    /// carry a name (`Ops <ops@msp.example>`). An invalid entry is an error
    /// naming it; an empty list is an error too.
    pub fn parse(list: &str) -> Result<Self, NotifyError> {
        let mut out: Vec<Mailbox> = Vec::new();
        for entry in list.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let mailbox = parse_mailbox(entry).map_err(|reason| NotifyError::InvalidRecipient {
                entry: entry.to_owned(),
                reason,
            })?;
            let address = mailbox.email.to_string().to_lowercase();
            if !out
                .iter()
                .any(|m| m.email.to_string().to_lowercase() == address)
            {
                out.push(mailbox);
            }
        }
        if out.is_empty() {
            return Err(NotifyError::NoRecipients);
        }
        Ok(Self(out))
    }

    /// The bare addresses, in the order given.
    pub fn addresses(&self) -> Vec<String> {
        self.0.iter().map(|m| m.email.to_string()).collect()
    }

    /// How many recipients.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true: a parsed list has at least one recipient.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for Recipients {
    type Err = NotifyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Recipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.0.iter().map(|m| m.to_string()).collect();
        f.write_str(&list.join("; "))
    }
}

impl fmt::Debug for Recipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Recipients")
            .field(&self.to_string())
            .finish()
    }
}

impl serde::Serialize for Recipients {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Recipients {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationKind {
    /// Something failed and needs a person.
    Failure,
    /// Something the operator asked for happened.
    Confirmation,
    /// Something is waiting for a person (a held plan, a stopped connection).
    Alert,
}

impl NotificationKind {
    /// Lower-case name, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Failure => "failure",
            NotificationKind::Confirmation => "confirmation",
            NotificationKind::Alert => "alert",
        }
    }
}

/// One e-mail: a kind, a one-line subject and a plain-text body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Notification {
    pub kind: NotificationKind,
    pub subject: String,
    pub body: String,
}

const SUBJECT_PREFIX: &str = "[syncbridge]";
const SIGNATURE: &str = "-- \nSent by syncbridge. Replies to this address are not read.\n";

impl Notification {
    /// A notification with any subject and body. Line breaks in the subject
    /// become spaces.
    pub fn new(kind: NotificationKind, subject: impl AsRef<str>, body: impl Into<String>) -> Self {
        Self {
            kind,
            subject: one_line(subject.as_ref()),
            body: body.into(),
        }
    }

    /// A run failed. `error` is what went wrong, `what_to_do` the next step
    /// for the operator (both may span lines).
    pub fn run_failed(
        profile: &str,
        company: &str,
        run_id: &str,
        error: &str,
        what_to_do: &str,
    ) -> Self {
        let subject = format!(
            "{SUBJECT_PREFIX} Run failed: {} ({})",
            one_line(profile),
            one_line(company)
        );
        let mut body =
            format!("The sync run {run_id} of profile \"{profile}\" for {company} failed.\n\n");
        section(&mut body, "What went wrong", error);
        section(&mut body, "What to do", what_to_do);
        facts(
            &mut body,
            &[("Profile", profile), ("Company", company), ("Run", run_id)],
        );
        Self::new(NotificationKind::Failure, subject, body)
    }

    /// A run was applied (e.g. after an approval). `counts` are label/count
    /// pairs in display order, e.g. `[("created", 3), ("updated", 12)]`;
    /// zero counts are left out of the subject.
    pub fn run_succeeded(profile: &str, run_id: &str, counts: &[(&str, u64)]) -> Self {
        let changed: Vec<String> = counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(label, n)| format!("{n} {label}"))
            .collect();
        let summary = if changed.is_empty() {
            "no changes".to_owned()
        } else {
            changed.join(", ")
        };
        let subject = format!(
            "{SUBJECT_PREFIX} Run applied: {}: {summary}",
            one_line(profile)
        );
        let mut body =
            format!("The sync run {run_id} of profile \"{profile}\" was applied successfully.\n\n");
        if counts.is_empty() {
            body.push_str("Nothing was changed.\n\n");
        } else {
            body.push_str("Changes:\n");
            let width = counts.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
            for (label, n) in counts {
                body.push_str(&format!("  {label:<width$}  {n:>8}\n"));
            }
            body.push('\n');
        }
        facts(&mut body, &[("Profile", profile), ("Run", run_id)]);
        Self::new(NotificationKind::Confirmation, subject, body)
    }

    /// The brakes held a run's plan until someone approves it. `reason` is
    /// why (e.g. the removal counts), `how_to_approve` the step to release it.
    pub fn brakes_held(profile: &str, run_id: &str, reason: &str, how_to_approve: &str) -> Self {
        let subject = format!(
            "{SUBJECT_PREFIX} Approval needed: {} (run {})",
            one_line(profile),
            one_line(run_id)
        );
        let mut body = format!(
            "The plan of sync run {run_id} of profile \"{profile}\" is held by the brakes. Nothing has been written; it waits for approval.\n\n"
        );
        section(&mut body, "Why it is held", reason);
        section(&mut body, "To apply it", how_to_approve);
        facts(&mut body, &[("Profile", profile), ("Run", run_id)]);
        Self::new(NotificationKind::Alert, subject, body)
    }

    /// A connection was stopped because its credentials were rejected.
    pub fn connection_auth_failed(connection: &str, error: &str, what_to_do: &str) -> Self {
        let subject = format!(
            "{SUBJECT_PREFIX} Connection stopped: {} cannot log in",
            one_line(connection)
        );
        let mut body = format!(
            "The connection \"{connection}\" was stopped: the remote system rejected its credentials. Runs using it will not start until this is fixed.\n\n"
        );
        section(&mut body, "What went wrong", error);
        section(&mut body, "What to do", what_to_do);
        facts(&mut body, &[("Connection", connection)]);
        Self::new(NotificationKind::Alert, subject, body)
    }
}

fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_control())
        .filter(|p| !p.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

fn section(body: &mut String, title: &str, text: &str) {
    body.push_str(title);
    body.push_str(":\n");
    let text = text.trim();
    if text.is_empty() {
        body.push_str("  (no details)\n");
    }
    for line in text.lines() {
        body.push_str("  ");
        body.push_str(line.trim_end());
        body.push('\n');
    }
    body.push('\n');
}

fn facts(body: &mut String, rows: &[(&str, &str)]) {
    let width = rows.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    for (key, value) in rows {
        let key = format!("{key}:");
        body.push_str(&format!("{key:<width$} {}\n", one_line(value)));
    }
    body.push('\n');
    body.push_str(SIGNATURE);
}

/// A boxed, sendable future, so that `dyn Notifier` works.
pub type NotifyFuture<'a> = Pin<Box<dyn Future<Output = Result<(), NotifyError>> + Send + 'a>>;

/// Something that delivers notifications.
pub trait Notifier: Send + Sync {
    /// Sends `n` to every recipient in `to`.
    fn send<'a>(&'a self, to: &'a Recipients, n: &'a Notification) -> NotifyFuture<'a>;
}

/// Sends notifications through an SMTP server.
pub struct SmtpNotifier {
    settings: SmtpSettings,
    sender: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    retry_delay: Duration,
}

impl fmt::Debug for SmtpNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpNotifier")
            .field("settings", &self.settings)
            .field("retry_delay", &self.retry_delay)
            .finish()
    }
}

impl SmtpNotifier {
    /// Checks the settings and builds the transport; does not connect.
    pub fn new(settings: SmtpSettings) -> Result<Self, NotifyError> {
        settings.validate()?;
        let sender = settings.sender()?;
        let server = settings.server();
        let tls_error = |e: lettre::transport::smtp::Error| NotifyError::Tls {
            server: server.clone(),
            reason: e.to_string(),
        };
        let tls = match settings.tls {
            Tls::None => LettreTls::None,
            mode => {
                let mut params = TlsParameters::builder(settings.host.clone());
                for pem in &settings.extra_ca_pems {
                    let cert = Certificate::from_pem(pem).map_err(|e| {
                        NotifyError::Config(format!(
                            "an operator CA certificate is not valid PEM ({e})"
                        ))
                    })?;
                    params = params.add_root_certificate(cert);
                }
                let params = params.build().map_err(tls_error)?;
                if mode == Tls::Implicit {
                    LettreTls::Wrapper(params)
                } else {
                    LettreTls::Required(params)
                }
            }
        };
        if settings.tls == Tls::None && settings.password.is_some() {
            tracing::warn!(
                server = %server,
                "the SMTP password is sent without encryption (tls=none); use tls=starttls or tls=implicit unless the relay is on a trusted local network"
            );
        }
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .tls(tls)
            .timeout(Some(settings.timeout));
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(Self {
            transport: builder.build(),
            sender,
            settings,
            retry_delay: DEFAULT_RETRY_DELAY,
        })
    }

    /// Changes the pause before the one retry of a 4xx rejection.
    pub fn with_retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// The settings in use.
    pub fn settings(&self) -> &SmtpSettings {
        &self.settings
    }

    /// Connects, greets and logs in without sending anything: a check for
    /// `serve` at start-up or a "send a test mail" button.
    pub async fn check(&self) -> Result<(), NotifyError> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(NotifyError::Smtp {
                server: self.settings.server(),
                reason: "the server did not answer NOOP".into(),
            }),
            Err(e) => Err(self.classify(e)),
        }
    }

    /// Sends `n` to every recipient; retries once after a 4xx rejection.
    pub async fn send(&self, to: &Recipients, n: &Notification) -> Result<(), NotifyError> {
        let message = self.message(to, n)?;
        let first = self.transport.send(message.clone()).await;
        let result = match first {
            Err(e) if e.is_transient() => {
                tracing::warn!(
                    server = %self.settings.server(),
                    error = %self.redact(&e.to_string()),
                    "SMTP server deferred a notification; retrying once in {:?}",
                    self.retry_delay
                );
                tokio::time::sleep(self.retry_delay).await;
                self.transport.send(message).await
            }
            other => other,
        };
        match result {
            Ok(_) => {
                tracing::info!(
                    kind = n.kind.as_str(),
                    subject = %n.subject,
                    recipients = to.len(),
                    "notification sent"
                );
                Ok(())
            }
            Err(e) => {
                let error = self.classify(e);
                tracing::warn!(kind = n.kind.as_str(), subject = %n.subject, error = %error, "notification not sent");
                Err(error)
            }
        }
    }

    fn message(&self, to: &Recipients, n: &Notification) -> Result<Message, NotifyError> {
        let mut builder = Message::builder()
            .from(self.sender.clone())
            .subject(one_line(&n.subject))
            .header(ContentType::TEXT_PLAIN)
            .message_id(None);
        for mailbox in &to.0 {
            builder = builder.to(mailbox.clone());
        }
        builder.body(n.body.clone()).map_err(|e| NotifyError::Smtp {
            server: self.settings.server(),
            reason: format!("the message cannot be built: {e}"),
        })
    }

    /// Drops the password from text that came back from the server or TLS.
    fn redact(&self, text: &str) -> String {
        match &self.settings.password {
            Some(p) if !p.expose().is_empty() => text.replace(p.expose(), "***"),
            _ => text.to_owned(),
        }
    }

    fn classify(&self, e: lettre::transport::smtp::Error) -> NotifyError {
        use std::error::Error as _;
        let server = self.settings.server();
        let detail = self.redact(&e.source().map(|s| s.to_string()).unwrap_or_default());
        if let Some(code) = e.status() {
            let code = code.to_string();
            let message = detail.trim().to_owned();
            return if e.is_transient() {
                NotifyError::Deferred {
                    server,
                    code,
                    message,
                }
            } else {
                match code.as_str() {
                    "535" | "534" | "538" => NotifyError::AuthFailed {
                        server,
                        username: self.settings.username.clone().unwrap_or_default(),
                        code,
                        message,
                    },
                    "530" => NotifyError::AuthRequired {
                        server,
                        code,
                        message,
                    },
                    _ => NotifyError::Rejected {
                        server,
                        code,
                        message,
                    },
                }
            };
        }
        if e.is_timeout() {
            return NotifyError::Timeout {
                server,
                secs: self.settings.timeout.as_secs(),
            };
        }
        // rustls reports handshake and certificate failures as `InvalidData`
        // I/O errors, which lettre wraps as connection errors.
        let mut tls_failure = false;
        let mut source = e.source();
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => {
                        return NotifyError::Refused { server }
                    }
                    std::io::ErrorKind::InvalidData => tls_failure = self.settings.tls != Tls::None,
                    _ => {}
                }
            }
            source = s.source();
        }
        if e.is_tls() || tls_failure {
            return NotifyError::Tls {
                server,
                reason: innermost(&e).map(|t| self.redact(&t)).unwrap_or(detail),
            };
        }
        if e.is_client() && detail.contains("STARTTLS") {
            return NotifyError::StartTlsUnsupported { server };
        }
        if e.is_client() && detail.contains("authentication mechanism") {
            return NotifyError::AuthUnsupported { server };
        }
        let text = e.to_string();
        if text.starts_with("Connection error") || text.starts_with("network error") {
            NotifyError::Connection {
                server,
                reason: innermost(&e).map(|t| self.redact(&t)).unwrap_or(detail),
            }
        } else {
            NotifyError::Smtp {
                server,
                reason: self.redact(&text),
            }
        }
    }
}

/// The message of the deepest cause, without lettre's repeated prefixes.
fn innermost(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut last = e.source()?;
    while let Some(next) = last.source() {
        last = next;
    }
    let text = last.to_string();
    let text = text.trim_start_matches("Connection error: ").trim();
    (!text.is_empty()).then(|| text.to_owned())
}

impl Notifier for SmtpNotifier {
    fn send<'a>(&'a self, to: &'a Recipients, n: &'a Notification) -> NotifyFuture<'a> {
        Box::pin(SmtpNotifier::send(self, to, n))
    }
}

/// Keeps every notification in memory instead of sending it: for tests of
/// code that notifies.
#[derive(Debug, Default, Clone)]
pub struct RecordingNotifier {
    sent: Arc<Mutex<Vec<(Recipients, Notification)>>>,
}

impl RecordingNotifier {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything "sent" so far, oldest first.
    pub fn sent(&self) -> Vec<(Recipients, Notification)> {
        self.sent.lock().expect("recorder lock").clone()
    }
}

impl Notifier for RecordingNotifier {
    fn send<'a>(&'a self, to: &'a Recipients, n: &'a Notification) -> NotifyFuture<'a> {
        self.sent
            .lock()
            .expect("recorder lock")
            .push((to.clone(), n.clone()));
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn err(list: &str) -> String {
        Recipients::parse(list).unwrap_err().to_string()
    }

    #[test]
    fn recipients_tolerate_spaces_and_empty_entries() {
        let r = Recipients::parse("  ops@msp.example; noc@msp.example; ").unwrap();
        assert_eq!(r.addresses(), ["ops@msp.example", "noc@msp.example"]);
        let r = Recipients::parse(";;ops@msp.example;;;\n\tnoc@msp.example;").unwrap();
        assert_eq!(r.len(), 2);
        let r = Recipients::parse("ops@msp.example").unwrap();
        assert_eq!(r.addresses(), ["ops@msp.example"]);
    }

    #[test]
    fn recipients_keep_names_and_drop_duplicates() {
        let r = Recipients::parse("Ops Team <ops@msp.example>; OPS@msp.example; noc@msp.example")
            .unwrap();
        assert_eq!(r.addresses(), ["ops@msp.example", "noc@msp.example"]);
        assert_eq!(r.to_string(), "Ops Team <ops@msp.example>; noc@msp.example");
    }

    #[test]
    fn empty_lists_are_refused() {
        for list in ["", "  ", ";", " ; ;; "] {
            assert!(
                matches!(Recipients::parse(list), Err(NotifyError::NoRecipients)),
                "{list:?}"
            );
        }
        assert!(err("").contains("at least one address"));
    }

    #[test]
    fn invalid_entries_are_named() {
        let e = err("ops@msp.example; not-an-address; noc@msp.example");
        assert!(e.contains("`not-an-address`"), "{e}");
        assert!(e.contains("needs an `@`"), "{e}");
        for bad in [
            "ops@",
            "@msp.example",
            "ops@@msp.example",
            "ops@msp..example",
            "Ops <ops@msp.example",
            "Ops <ops@msp.example> junk",
        ] {
            let e = err(&format!("noc@msp.example; {bad}"));
            assert!(e.contains(&format!("`{bad}`")), "{bad}: {e}");
        }
    }

    #[test]
    fn commas_and_missing_separators_get_a_hint() {
        for list in [
            "ops@msp.example, noc@msp.example",
            "ops@msp.example noc@msp.example",
        ] {
            let e = err(list);
            assert!(e.contains("separate them with `;`"), "{e}");
            assert!(e.contains(&format!("`{list}`")), "{e}");
        }
    }

    #[test]
    fn recipients_round_trip_through_serde() {
        let r: Recipients = serde_json::from_str("\"a@x.example; b@x.example;\"").unwrap();
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            "\"a@x.example; b@x.example\""
        );
        let e = serde_json::from_str::<Recipients>("\"a@x.example; nope\"").unwrap_err();
        assert!(e.to_string().contains("`nope`"), "{e}");
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn settings_from_the_environment() {
        assert!(SmtpSettings::from_env_with(env(&[])).unwrap().is_none());
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("smtp-password");
        std::fs::write(&pw, "s3cret-pw\n").unwrap();
        let s = SmtpSettings::from_env_with(env(&[
            (
                SMTP_URL_ENV,
                "smtp://alerts%40msp.example@mail.msp.example?tls=starttls&timeout=9",
            ),
            (SMTP_FROM_ENV, "Syncbridge <syncbridge@msp.example>"),
            (SMTP_PASSWORD_FILE_ENV, pw.to_str().unwrap()),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.host, "mail.msp.example");
        assert_eq!(s.port, 587);
        assert_eq!(s.tls, Tls::StartTls);
        assert_eq!(s.username.as_deref(), Some("alerts@msp.example"));
        assert_eq!(s.password.as_ref().unwrap().expose(), "s3cret-pw");
        assert_eq!(s.timeout, Duration::from_secs(9));
        let debug = format!("{s:?}");
        assert!(!debug.contains("s3cret-pw"), "{debug}");
        assert!(debug.contains("***"), "{debug}");

        let s = SmtpSettings::from_url("smtps://mail.msp.example", "a@msp.example").unwrap();
        assert_eq!((s.tls, s.port), (Tls::Implicit, 465));
        let s = SmtpSettings::from_url("smtp://127.0.0.1:2525?tls=none", "a@msp.example").unwrap();
        assert_eq!(
            (s.tls, s.port, s.server()),
            (Tls::None, 2525, "127.0.0.1:2525".into())
        );
        let s = SmtpSettings::from_url("smtp://[::1]:25?tls=none", "a@msp.example").unwrap();
        assert_eq!(s.server(), "[::1]:25");
    }

    #[test]
    fn bad_settings_say_what_to_fix() {
        let e = SmtpSettings::from_url("smtp://u:hunter2@mail.msp.example", "a@msp.example")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(SMTP_PASSWORD_FILE_ENV) && !e.contains("hunter2"),
            "{e}"
        );
        let e = SmtpSettings::from_url("http://mail.msp.example", "a@msp.example").unwrap_err();
        assert!(e.to_string().contains("smtps://"), "{e}");
        let e = SmtpSettings::from_url("smtp://mail.msp.example?tls=maybe", "a@msp.example")
            .unwrap_err();
        assert!(e.to_string().contains("tls=starttls"), "{e}");
        let e = SmtpSettings::from_env_with(env(&[(SMTP_URL_ENV, "smtp://mail.msp.example")]))
            .unwrap_err();
        assert!(e.to_string().contains(SMTP_FROM_ENV), "{e}");
        let e = SmtpSettings::from_env_with(env(&[
            (SMTP_URL_ENV, "smtp://user@mail.msp.example"),
            (SMTP_FROM_ENV, "a@msp.example"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains(SMTP_PASSWORD_FILE_ENV), "{e}");
        let e = SmtpSettings::from_env_with(env(&[
            (SMTP_URL_ENV, "smtp://mail.msp.example"),
            (SMTP_FROM_ENV, "syncbridge"),
        ]))
        .unwrap_err();
        assert!(matches!(e, NotifyError::InvalidSender { .. }), "{e}");
        let e = SmtpSettings::from_env_with(env(&[
            (SMTP_URL_ENV, "smtp://u@mail.msp.example"),
            (SMTP_FROM_ENV, "a@msp.example"),
            (SMTP_PASSWORD_FILE_ENV, "/nonexistent/smtp-password"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/smtp-password"), "{e}");
    }

    #[test]
    fn run_failed_reads_well() {
        let n = Notification::run_failed(
            "tickets-to-crm",
            "Contoso\nLtd",
            "run-42",
            "the CRM answered 401 Unauthorized",
            "renew the API key of connection crm\nthen retry the run",
        );
        assert_eq!(n.kind, NotificationKind::Failure);
        assert_eq!(
            n.subject,
            "[syncbridge] Run failed: tickets-to-crm (Contoso Ltd)"
        );
        assert!(n
            .body
            .contains("What went wrong:\n  the CRM answered 401 Unauthorized\n"));
        assert!(n.body.contains(
            "What to do:\n  renew the API key of connection crm\n  then retry the run\n"
        ));
        assert!(n.body.contains("Run:     run-42\n"), "{}", n.body);
    }

    #[test]
    fn run_succeeded_summarises_counts() {
        let n = Notification::run_succeeded(
            "users",
            "run-7",
            &[("created", 3), ("updated", 12), ("deactivated", 0)],
        );
        assert_eq!(n.kind, NotificationKind::Confirmation);
        assert_eq!(
            n.subject,
            "[syncbridge] Run applied: users: 3 created, 12 updated"
        );
        assert!(n.body.contains("  deactivated         0\n"), "{}", n.body);
        let n = Notification::run_succeeded("users", "run-8", &[("created", 0)]);
        assert!(n.subject.ends_with("no changes"));
    }

    #[test]
    fn alerts_for_brakes_and_auth() {
        let n = Notification::brakes_held(
            "users",
            "run-9",
            "the plan removes 40 of 100 linked items",
            "syncbridge runs approve run-9",
        );
        assert_eq!(n.kind, NotificationKind::Alert);
        assert!(n.subject.contains("Approval needed"));
        assert!(n.body.contains("  syncbridge runs approve run-9\n"));
        let n = Notification::connection_auth_failed("crm", "401", "renew the key");
        assert_eq!(n.kind, NotificationKind::Alert);
        assert!(n.subject.contains("crm cannot log in"));
    }

    #[test]
    fn subjects_are_one_line() {
        let n = Notification::new(NotificationKind::Alert, "a\r\nBcc: evil@x.example", "b");
        assert_eq!(n.subject, "a Bcc: evil@x.example");
    }

    #[tokio::test]
    async fn recording_notifier_works_as_dyn() {
        let rec = RecordingNotifier::new();
        let notifier: Arc<dyn Notifier> = Arc::new(rec.clone());
        let to = Recipients::parse("ops@msp.example").unwrap();
        let n = Notification::new(NotificationKind::Alert, "s", "b");
        notifier.send(&to, &n).await.unwrap();
        assert_eq!(rec.sent(), vec![(to, n)]);
    }

    #[test]
    fn smtp_notifier_checks_settings() {
        let mut s = SmtpSettings::new("mail.msp.example", "a@msp.example");
        s.username = Some("u".into());
        assert!(SmtpNotifier::new(s.clone()).is_err());
        s.password = Some(SecretString::new("pw-123"));
        let n = SmtpNotifier::new(s).unwrap();
        assert!(!format!("{n:?}").contains("pw-123"));
    }
}
