//! `ews`: Exchange on-premises mailboxes through EWS SOAP.
//!
//! - Mailbox scopes (WIT `mailbox-api`, see [`scope`]): `calendar:mailbox=…,past=…,future=…`
//!   (with `series=occurrences` each series is answered as its occurrences in the window, see
//!   `syncbridge_sdk::series`), `contacts:mailbox=…`, `tasks:mailbox=…` (a mailbox's
//!   distinguished folder) and
//!   `public-contacts:folder=<path>`.
//! - E-mail scopes (core `connector-api`, `email-message` items, see [`mail`]):
//!   `inbox:mailbox=…` (the Inbox's messages; `deactivate` moves a failed message to
//!   `Inbox/Undeliverable`) and `outbox:mailbox=…` (`create` sends with `SendAndSaveCopy`; with
//!   `check=true` a pull opens the Sent Items as the sending account, Test & Enable's check of
//!   the outgoing account).
//! - The sync owner of a mailbox (WIT 0.1.5 `mailbox-owner-api`, see [`owner`]): a String
//!   extended property of the mailbox's root folder, read with GetFolder, written with
//!   UpdateFolder.
//! - Reads: SyncFolderItems (ids only; its `SyncState` is the cursor) followed by GetItem in
//!   batches for the properties the mapping needs ([`pull`], [`mail`]). A public folder is read
//!   with FindItem paging (SyncFolderItems does not work there), a full pass every time.
//! - Writes: CreateItem / UpdateItem (only the named fields, `SetItemField`/`DeleteItemField`) /
//!   DeleteItem, one call per action for a whole batch, never sending meeting mail ([`push`]);
//!   mail is sent and moved one message per call ([`mail`]).
//! - Endpoint: `ews_url`, or Autodiscover from the mailbox address ([`endpoint`]), cached in state.
//! - Authentication is the host's: the `default` credential slot (Basic on-premises, a bearer
//!   token for hybrid), or the slot `mailbox_credentials` names for a mailbox. With
//!   `impersonate` the service account acts as each mailbox (`ExchangeImpersonation`); without
//!   it, it opens other mailboxes by delegate access.

pub mod check;
pub mod endpoint;
pub mod error;
pub mod mail;
pub mod map;
mod names;
pub mod ops;
pub mod owner;
pub mod pull;
pub mod push;
pub mod recurrence;
pub mod scope;
pub mod series;
pub mod soap;
pub mod tz;
pub mod xml;

use serde::Deserialize;
use std::collections::BTreeMap;
use syncbridge_sdk::prelude::*;
use syncbridge_sdk::state;

use crate::ops::Folder;
use crate::scope::{MailScope, MailboxScope};
use crate::soap::Target;

/// The credential slot used unless a mailbox has its own.
pub const CREDENTIAL: &str = "default";

/// `RequestServerVersion` values EWS accepts.
pub const VERSIONS: &[&str] = &[
    "Exchange2007",
    "Exchange2007_SP1",
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2010_SP2",
    "Exchange2013",
    "Exchange2013_SP1",
    "Exchange2015",
    "Exchange2016",
    "V2015_10_05",
    "V2016_01_06",
    "V2016_04_13",
    "V2016_07_13",
    "V2016_10_10",
    "V2017_01_07",
    "V2017_04_14",
    "V2017_07_11",
    "V2017_10_09",
    "V2018_01_08",
];

/// Connection configuration.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The EWS endpoint, e.g. `https://mail.contoso.com/EWS/Exchange.asmx`. Without it the
    /// endpoint is found by Autodiscover from `mailbox`.
    #[serde(default)]
    pub ews_url: Option<String>,
    /// The Autodiscover service to ask (`…/autodiscover/autodiscover.svc`); default
    /// `https://autodiscover.<domain>/…`, then `https://<domain>/…` of `mailbox`.
    #[serde(default)]
    pub autodiscover_url: Option<String>,
    /// A mailbox address: Autodiscover starts from it and `test-connection` opens it.
    #[serde(default)]
    pub mailbox: Option<String>,
    /// `RequestServerVersion`, e.g. `Exchange2013_SP1` (default); 2010 or newer is needed for
    /// time zones by id.
    #[serde(default = "default_version")]
    pub version: String,
    /// The service account impersonates the mailboxes (it holds the ApplicationImpersonation
    /// role); without it, it opens them by delegate access.
    #[serde(default)]
    pub impersonate: bool,
    /// Per-mailbox credentials: mailbox address → credential slot entered for it. Such a mailbox
    /// is opened with its own credential and never impersonated.
    #[serde(default)]
    pub mailbox_credentials: BTreeMap<String, String>,
    /// Create a `public-contacts` folder (and its parents) when it does not exist.
    #[serde(default)]
    pub create_public_folders: bool,
    /// More mailboxes `test-connection` opens, each as a sync would (impersonated, by delegate
    /// access, or with its own credential): the mailboxes a diagnosis checks.
    #[serde(default)]
    pub test_mailboxes: Vec<String>,
    /// The EWS endpoint mail is sent through (`outbox:` scopes), when it is not `ews_url`
    /// (Dynamics' "Outgoing Server Location").
    #[serde(default)]
    pub outgoing_url: Option<String>,
    /// The credential slot of the account that sends (`outbox:` scopes), when it is not the
    /// `default` one ("Use same settings for Outgoing" off). A mailbox with its own credential
    /// sends with it.
    #[serde(default)]
    pub outgoing_credential: Option<String>,
}

fn default_version() -> String {
    "Exchange2013_SP1".into()
}

const URL_KEY: &str = "ews:url";

impl Config {
    /// The credential slot for a mailbox.
    pub fn credential_for(&self, mailbox: &str) -> &str {
        self.mailbox_credentials
            .iter()
            .find(|(m, _)| m.eq_ignore_ascii_case(mailbox))
            .map(|(_, s)| s.as_str())
            .unwrap_or(CREDENTIAL)
    }

    /// The EWS URL: configured, cached from Autodiscover, or discovered now from `address`.
    pub fn ews_url(&self, address: Option<&str>) -> Result<String, PluginError> {
        if let Some(u) = &self.ews_url {
            return Ok(u.clone());
        }
        if let Some(u) = state::get(URL_KEY) {
            return Ok(u);
        }
        let address = self.mailbox.as_deref().or(address).ok_or_else(|| {
            PluginError::invalid_field(
                "ews_url",
                "set \"ews_url\", or \"mailbox\" for Autodiscover",
            )
        })?;
        let url = endpoint::discover(
            address,
            self.autodiscover_url.as_deref(),
            self.credential_for(address),
        )?;
        state::set(URL_KEY, &url);
        Ok(url)
    }

    /// Where requests for `mailbox` go and as whom.
    pub fn target(&self, mailbox: &str) -> Result<Target, PluginError> {
        self.target_via(mailbox, None, None)
    }

    /// [`Config::target`] at `url` instead of the EWS URL, and as `slot` instead of `default`
    /// (a mailbox with its own credential keeps it, never impersonated).
    fn target_via(
        &self,
        mailbox: &str,
        url: Option<&str>,
        slot: Option<&str>,
    ) -> Result<Target, PluginError> {
        let own = self.credential_for(mailbox);
        let (credential, impersonate) = if own == CREDENTIAL {
            (slot.unwrap_or(CREDENTIAL), self.impersonate)
        } else {
            (own, false)
        };
        Ok(Target {
            url: match url {
                Some(u) => u.to_owned(),
                None => self.ews_url(Some(mailbox))?,
            },
            version: self.version.clone(),
            impersonate: impersonate.then(|| mailbox.to_owned()),
            credential: credential.to_owned(),
        })
    }

    /// Where mail sent through `mailbox` goes and as whom: the outgoing endpoint and account
    /// when configured, else as [`Config::target`].
    pub fn send_target(&self, mailbox: &str) -> Result<Target, PluginError> {
        self.target_via(
            mailbox,
            self.outgoing_url.as_deref(),
            self.outgoing_credential.as_deref(),
        )
    }

    /// A distinguished folder of `mailbox` as `target` reaches it (named unless impersonated).
    pub fn folder(&self, target: &Target, id: &'static str, mailbox: &str) -> Folder {
        Folder::Distinguished {
            id,
            mailbox: target.impersonate.is_none().then(|| mailbox.to_owned()),
        }
    }

    /// Where public-folder requests go: the configured mailbox (impersonated when configured).
    pub fn public_target(&self) -> Result<Target, PluginError> {
        match &self.mailbox {
            Some(m) => self.target(m),
            None => Ok(Target {
                url: self.ews_url(None)?,
                version: self.version.clone(),
                impersonate: None,
                credential: CREDENTIAL.into(),
            }),
        }
    }
}

/// The connector.
pub struct Ews;

impl Connector for Ews {
    type Config = Config;

    fn describe() -> Description {
        Description {
            reads: vec![
                ItemKind::Appointment,
                ItemKind::Contact,
                ItemKind::Task,
                ItemKind::EmailMessage,
            ],
            writes: vec![
                ItemKind::Appointment,
                ItemKind::Contact,
                ItemKind::Task,
                ItemKind::EmailMessage,
            ],
            credential_slots: vec![CREDENTIAL.into()],
            ..Description::named("Exchange on-premises (EWS)")
        }
    }

    fn check_config(cfg: &Config) -> Vec<Finding> {
        check::config(cfg)
    }

    fn test_connection(cfg: &Config) -> Result<Vec<Finding>, PluginError> {
        Ok(check::connection(cfg))
    }

    fn pull(cfg: &Config, request: PullRequest) -> Result<Page, PluginError> {
        mail::page(
            cfg,
            &MailScope::parse(&request.scope)?,
            request.cursor.as_deref(),
            request.max_items,
        )
    }

    fn lookup(cfg: &Config, scope: &str, keys: Vec<String>) -> Result<Vec<Item>, PluginError> {
        mail::lookup(cfg, &MailScope::parse(scope)?, &keys)
    }

    fn push(
        cfg: &Config,
        scope: &str,
        batch: Vec<WriteOp>,
    ) -> Result<Vec<WriteResult>, PluginError> {
        Ok(mail::push(cfg, &MailScope::parse(scope)?, batch))
    }

    fn mailbox_scopes() -> Vec<String> {
        scope::KINDS.iter().map(|k| k.to_string()).collect()
    }

    fn pull_mailbox(
        cfg: &Config,
        request: PullRequest,
    ) -> Result<mailbox::MailboxPage, PluginError> {
        match MailboxScope::parse(&request.scope)? {
            MailboxScope::Mailbox {
                kind,
                mailbox,
                past,
                future,
                occurrences,
            } => {
                let window = pull::Window::around(clock_now(), past, future);
                let mut page = pull::mailbox_page(
                    cfg,
                    kind,
                    &mailbox,
                    window,
                    request.cursor.as_deref(),
                    request.max_items,
                )?;
                if occurrences {
                    page.items = syncbridge_sdk::series::expand_items(page.items, window.into())?;
                }
                Ok(page)
            }
            MailboxScope::PublicContacts { path } => {
                pull::public_page(cfg, &path, request.cursor.as_deref(), request.max_items)
            }
        }
    }

    fn lookup_mailbox(
        cfg: &Config,
        scope: &str,
        keys: Vec<String>,
    ) -> Result<Vec<mailbox::MailboxItem>, PluginError> {
        match MailboxScope::parse(scope)? {
            scope @ MailboxScope::Mailbox {
                occurrences: true,
                past,
                future,
                ..
            } => {
                let found = pull::lookup(cfg, &scope, &syncbridge_sdk::series::series_keys(&keys))?;
                let window = pull::Window::around(clock_now(), past, future);
                syncbridge_sdk::series::answer_lookup(&keys, found, window.into())
            }
            scope => pull::lookup(cfg, &scope, &keys),
        }
    }

    fn push_mailbox(
        cfg: &Config,
        scope: &str,
        batch: Vec<mailbox::MailboxWriteOp>,
    ) -> Result<Vec<WriteResult>, PluginError> {
        Ok(push::push(cfg, &MailboxScope::parse(scope)?, batch))
    }

    fn read_sync_owner(cfg: &Config, mailbox: &str) -> Result<Option<String>, PluginError> {
        owner::read(cfg, mailbox)
    }

    fn write_sync_owner(cfg: &Config, mailbox: &str, owner: &str) -> Result<(), PluginError> {
        owner::write(cfg, mailbox, owner)
    }
}

/// The host's clock as a UTC time.
pub fn clock_now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(syncbridge_sdk::clock::now_ms() as i64)
        .unwrap_or_default()
}

syncbridge_sdk::export_connector!(Ews);

#[cfg(test)]
mod tests;
