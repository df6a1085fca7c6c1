//! E-mail scopes, served through the core `connector-api` (not `mailbox-api`) with
//! `email-message` bodies: Dynamics 365 server-side synchronization tracks the mail a user
//! receives and sends the mail written in Dynamics.
//!
//! - `inbox:mailbox=<address>` reads the user's Inbox with the messages delta query
//!   (`GET /users/{address}/mailFolders/inbox/messages/delta`, `$select` = [`MESSAGE_SELECT`],
//!   `Prefer: odata.maxpagesize`), one page a call. A pull without cursor starts a full pass
//!   (`full = true`). Within a pass the cursor is JSON (`{"link": <next link>, "full": …}`,
//!   [`DeltaCursor`]); the last page answers the bare `@odata.deltaLink`, the durable cursor,
//!   from which the next round reads only the changes (`full = false`). A bare link is always
//!   taken as such a delta link. Every link (cursor, next, delta) must stay under the configured
//!   Graph root ([`under_root`]). Messages deleted or moved out of the Inbox arrive as
//!   `@removed` entries: removals (`deleted`). A delta or skip token Graph no longer knows
//!   (HTTP 410 `syncStateNotFound`) restarts a full pass: an empty page with `cursor = None,
//!   more = true, full = true` (logged), as the other delta scopes do. The version is the
//!   `@odata.etag`, else the `changeKey`. `lookup` reads messages by id (`id:<id>` or a bare
//!   id, `GET /users/{address}/messages/{id}`); one Graph no longer has is left out. `push` is
//!   `unsupported`: moving failed messages to Undeliverable is EWS only.
//! - `outbox:mailbox=<address>` sends mail as the user: a `create` is
//!   `POST /users/{address}/sendMail` with `saveToSentItems: true` ([`send_mail_body`]), which
//!   Graph answers 202 without a body or a message id: the target id is `sent:<op id>`, no
//!   version. A message without recipients (`to` and `cc` empty) is `invalid` `to`; updates and
//!   deletes are `unsupported` (a sent message cannot be changed). Graph's sendMail has no
//!   idempotency key: a create the engine retries is sent again. Pull reads an empty page
//!   (`full = false`) without a request (processing reads the scope every run), lookup finds
//!   nothing.
//! - `outbox:mailbox=<address>,check=true` is Test & Enable's check of the outgoing app: its
//!   pull makes one `GET /users/{address}/mailFolders/sentitems?$select=id` at the outgoing
//!   root with the outgoing credential ([`check_outgoing`]) and answers the same empty page; a
//!   refusal fails the pull like any other (a token refused or a 401 `auth`, 403 `forbidden`
//!   naming the permissions, a mailbox Graph cannot use as [`mailbox::mailbox_refused`] says).
//!   Nothing is sent. A scope option rather than `test-connection`, whose findings carry no
//!   error class and which checks the `default` app only.
//!
//! Application permissions: `Mail.Read` (or `Mail.ReadWrite`) for the inbox, `Mail.Send` for
//! the outbox (and `Mail.ReadBasic.All` for its check); an HTTP 403 names the one missing. A 404 about the whole mailbox is an error of
//! the mailbox ([`mailbox::mailbox_refused`]), never a missing message.

use serde_json::{json, Value};
use syncbridge_sdk::batch::push_each;
use syncbridge_sdk::http::{Request, Response};
use syncbridge_sdk::scope::{self, Scope};
use syncbridge_sdk::types::{
    EmailAddress, EmailMessage, Item, ItemBody, Page, PluginError, PullRequest, RemoteFailure,
    Removal, WriteAction, WriteOk, WriteOp, WriteResult,
};
use syncbridge_sdk::{log, url};

use crate::mailbox::{self, DeltaCursor, DeltaRead};
use crate::{Config, CREDENTIAL};

/// Message properties the inbox reads.
pub const MESSAGE_SELECT: &str =
    "subject,from,toRecipients,ccRecipients,body,sentDateTime,receivedDateTime,internetMessageId";

/// The e-mail scope kinds (core `connector-api`, not `mailbox-api`).
pub const KINDS: [&str; 2] = ["inbox", "outbox"];
const USAGE: &str = "inbox:mailbox=<address> or outbox:mailbox=<address>[,check=true]";

/// Why the inbox takes no writes.
pub const INBOX_READ_ONLY: &str =
    "moving failed messages to Undeliverable is EWS only; the inbox scope is read-only on Graph";
/// Why the outbox takes nothing but creates.
pub const SENT_IS_FINAL: &str =
    "a sent message cannot be changed; the outbox scope only creates (sends) messages";

/// The application permission each scope needs.
const READ_PERMISSION: &str = "Mail.Read (or Mail.ReadWrite)";
const SEND_PERMISSION: &str = "Mail.Send";
/// What the outgoing check needs: it opens the Sent Items folder; sending needs Mail.Send.
const CHECK_PERMISSION: &str =
    "Mail.Send and Mail.ReadBasic.All (or Mail.Read: the outgoing check opens the Sent Items folder)";

/// A parsed e-mail scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailScope {
    /// The messages of the mailbox's Inbox.
    Inbox { mailbox: String },
    /// Sending mail as the mailbox's user. With `check` (`check=true`) a pull makes one
    /// request with the sending app instead (Test & Enable's check of the outgoing app), still
    /// sending nothing.
    Outbox { mailbox: String, check: bool },
}

impl MailScope {
    /// The e-mail scope `scope` names, checked; `None` when its kind is not an e-mail one.
    pub fn of(scope: &str) -> Option<Result<Self, PluginError>> {
        let kind = scope.split_once(':').map_or(scope, |(k, _)| k).trim();
        KINDS
            .iter()
            .any(|k| k.eq_ignore_ascii_case(kind))
            .then(|| Self::parse(scope))
    }

    /// Parses `inbox:mailbox=<address>` or `outbox:mailbox=<address>[,check=true]`.
    pub fn parse(scope: &str) -> Result<Self, PluginError> {
        let s = Scope::parse(scope, &["mailbox", "check"], None, USAGE)?;
        let mailbox = mailbox::mailbox_option(&s, scope, USAGE)?;
        let check = s.flag("check", USAGE)?;
        match s.name() {
            "inbox" if check.is_some() => Err(PluginError::invalid_field(
                "scope",
                format!("check= is an option of outbox scopes only; use {USAGE}"),
            )),
            "inbox" => Ok(Self::Inbox { mailbox }),
            "outbox" => Ok(Self::Outbox {
                mailbox,
                check: check.unwrap_or(false),
            }),
            other => Err(scope::unknown(other, USAGE)),
        }
    }
}

/// Whether `link` stays under the Graph root `root`: same origin, and a path that starts with
/// the root's path (whole segments, any case) without `.` or `..` segments.
pub fn under_root(root: &str, link: &str) -> bool {
    fn path(u: &str) -> &str {
        let rest = u.split_once("://").map_or("", |(_, r)| r);
        let from = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let p = &rest[from..];
        &p[..p.find(['?', '#']).unwrap_or(p.len())]
    }
    if !url::same_origin(root, link) {
        return false;
    }
    let base = path(root).trim_end_matches('/');
    let p = path(link);
    let Some(head) = p.get(..base.len()) else {
        return false;
    };
    let tail = &p[base.len()..];
    let dotted = p.split('/').any(|seg| {
        let s = seg.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".."
    });
    head.eq_ignore_ascii_case(base) && (tail.is_empty() || tail.starts_with('/')) && !dotted
}

/// One page of an e-mail scope.
pub fn pull(cfg: &Config, scope: &MailScope, request: &PullRequest) -> Result<Page, PluginError> {
    match scope {
        MailScope::Outbox { mailbox, check } => {
            if *check {
                check_outgoing(cfg, mailbox)?;
            }
            // Sent mail is not read back; not full, so nothing is taken as removed.
            Ok(syncbridge_sdk::paging::page(Vec::new(), None, None, false))
        }
        MailScope::Inbox { mailbox } => {
            pull_inbox(cfg, mailbox, request.cursor.as_deref(), request.max_items)
        }
    }
}

/// Test & Enable's check of the outgoing app (`outbox:…,check=true`): one
/// `GET /users/{address}/mailFolders/sentitems?$select=id` at the outgoing root with the
/// outgoing credential (`Config::send_via`), where `sendMail` saves its copy. Nothing is
/// sent; a refusal is classified as a send's would be (a 403 names the permissions).
pub fn check_outgoing(cfg: &Config, mailbox: &str) -> Result<(), PluginError> {
    let (root, credential) = cfg.send_via();
    Request::get(format!(
        "{root}/users/{}/mailFolders/sentitems?$select=id",
        url::encode_path_segment(mailbox)
    ))
    .credential(credential)
    .header("Accept", "application/json")
    .send()
    .and_then(|r| checked(r, CHECK_PERMISSION))?
    .error_for_status()?;
    Ok(())
}

/// The link a pull reads and whether its pass is a full one.
fn inbox_cursor(
    cfg: &Config,
    mailbox: &str,
    cursor: Option<&str>,
) -> Result<DeltaCursor, PluginError> {
    let c = match cursor {
        None => {
            return Ok(DeltaCursor {
                link: Some(format!(
                    "{}/mailFolders/inbox/messages/delta?$select={MESSAGE_SELECT}",
                    mailbox::user_root(cfg, mailbox)
                )),
                full: true,
                ..DeltaCursor::default()
            })
        }
        Some(c) if c.trim_start().starts_with('{') => DeltaCursor::parse(Some(c))?,
        Some(link) => DeltaCursor {
            link: Some(link.to_owned()),
            ..DeltaCursor::default()
        },
    };
    match c.link.as_deref() {
        Some(link) if under_root(cfg.root(), link) => Ok(c),
        _ => Err(PluginError::invalid_field(
            "cursor",
            format!(
                "the stored cursor does not lead under the configured graph_url {}; reset the profile's cursor to read the inbox again",
                cfg.root()
            ),
        )),
    }
}

fn pull_inbox(
    cfg: &Config,
    mailbox: &str,
    cursor: Option<&str>,
    max_items: u32,
) -> Result<Page, PluginError> {
    let cursor = inbox_cursor(cfg, mailbox, cursor)?;
    let link = cursor.link.clone().unwrap_or_default();
    let (values, next, more) = match read_page(cfg, &link, max_items)? {
        DeltaRead::Gone => {
            return Ok(Page {
                items: Vec::new(),
                cursor: None,
                more: true,
                full: true,
            })
        }
        DeltaRead::Page { values, link, more } => (values, link, more),
    };
    let items = values.iter().filter_map(to_item).collect();
    let next_cursor = if more {
        DeltaCursor {
            link: Some(next),
            full: cursor.full,
            ..DeltaCursor::default()
        }
        .encode()
    } else {
        next
    };
    Ok(Page {
        items,
        cursor: Some(next_cursor),
        more,
        full: cursor.full,
    })
}

/// Reads one delta page from `link` (already checked to be under the root); the next or delta
/// link it answers must be, too.
fn read_page(cfg: &Config, link: &str, max_items: u32) -> Result<DeltaRead, PluginError> {
    let response = Request::get(link)
        .credential(CREDENTIAL)
        .header("Accept", "application/json")
        .header(
            "Prefer",
            format!("odata.maxpagesize={}", max_items.clamp(1, 999)),
        )
        .send()
        .and_then(|r| checked(r, READ_PERMISSION))?;
    if response.status() == 410 {
        log::warn!(
            "Graph no longer knows the inbox delta token (HTTP 410 {}); restarting with a full read, the engine reconciles it against its links",
            error_code(&response).unwrap_or_default()
        );
        return Ok(DeltaRead::Gone);
    }
    let body: Value = response.json()?;
    let values = body["value"].as_array().cloned().unwrap_or_default();
    let (link, more) = match (
        body["@odata.nextLink"].as_str(),
        body["@odata.deltaLink"].as_str(),
    ) {
        (Some(n), _) => (n, true),
        (None, Some(d)) => (d, false),
        (None, None) => {
            return Err(PluginError::Remote(RemoteFailure {
                status: 200,
                message: "the messages delta page has neither @odata.nextLink nor @odata.deltaLink"
                    .into(),
            }))
        }
    };
    if !under_root(cfg.root(), link) {
        return Err(PluginError::Remote(RemoteFailure {
            status: 200,
            message: format!(
                "the messages delta link {link:?} leaves the configured graph_url {}; refusing to follow it",
                cfg.root()
            ),
        }));
    }
    Ok(DeltaRead::Page {
        values,
        link: link.to_owned(),
        more,
    })
}

/// `response`, unless it refuses the mailbox: 403 names the `permission` to grant, a 404 about
/// the mailbox is its error ([`mailbox::mailbox_refused`]).
fn checked(response: Response, permission: &str) -> Result<Response, PluginError> {
    if response.status() == 403 {
        return Err(PluginError::Forbidden(format!(
            "Microsoft Graph refused the app this mailbox (HTTP 403 {}): grant the app registration the {permission} application permission with admin consent, and include the mailbox in any application access policy (New-ApplicationAccessPolicy) that limits the app",
            error_code(&response).unwrap_or_default()
        )));
    }
    mailbox::mailbox_checked(response)
}

fn error_code(r: &Response) -> Option<String> {
    serde_json::from_slice::<Value>(r.bytes())
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
}

/// A delta or lookup entry as an item: `@removed` entries are removals; an entry without id
/// is skipped.
pub fn to_item(v: &Value) -> Option<Item> {
    let id = v["id"].as_str().filter(|id| !id.is_empty())?.to_owned();
    if v.get("@removed").is_some() {
        return Some(Item {
            id,
            version: None,
            removed: Some(Removal::Deleted),
            body: None,
        });
    }
    Some(Item {
        id,
        version: mailbox::text(v, "@odata.etag").or_else(|| mailbox::text(v, "changeKey")),
        removed: None,
        body: Some(ItemBody::EmailMessage(to_message(v))),
    })
}

/// A Graph `message` as the canonical e-mail message.
pub fn to_message(v: &Value) -> EmailMessage {
    let body = &v["body"];
    EmailMessage {
        subject: mailbox::text(v, "subject"),
        from: mailbox::email(&v["from"]["emailAddress"]),
        to: recipients(&v["toRecipients"]),
        cc: recipients(&v["ccRecipients"]),
        body: mailbox::text(body, "content"),
        body_is_html: body["contentType"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("html")),
        sent: mailbox::text(v, "sentDateTime"),
        received: mailbox::text(v, "receivedDateTime"),
        internet_message_id: mailbox::text(v, "internetMessageId"),
    }
}

fn recipients(list: &Value) -> Vec<EmailAddress> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| mailbox::email(&r["emailAddress"]))
        .collect()
}

/// Messages by `id:<id>` or a bare id; one Graph does not have (404) is left out.
pub fn lookup(
    cfg: &Config,
    scope: &MailScope,
    keys: Vec<String>,
) -> Result<Vec<Item>, PluginError> {
    let MailScope::Inbox { mailbox } = scope else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for key in &keys {
        let id = match key.split_once(':') {
            Some(("id", id)) => id,
            None => key.as_str(),
            Some((other, _)) => {
                return Err(PluginError::invalid_field(
                    "keys",
                    format!(
                        "unknown key kind {other:?}; the inbox is looked up by id:<message id>"
                    ),
                ))
            }
        };
        if id.is_empty() {
            continue;
        }
        let response = Request::get(format!(
            "{}/messages/{}?$select={MESSAGE_SELECT}",
            mailbox::user_root(cfg, mailbox),
            url::encode_path_segment(id)
        ))
        .credential(CREDENTIAL)
        .header("Accept", "application/json")
        .send()
        .and_then(|r| checked(r, READ_PERMISSION))?;
        if response.status() == 404 {
            continue;
        }
        let v: Value = response.json()?;
        out.extend(to_item(&v));
    }
    Ok(out)
}

/// Applies a batch: the outbox sends each create, the inbox takes no writes.
pub fn push(cfg: &Config, scope: &MailScope, batch: Vec<WriteOp>) -> Vec<WriteResult> {
    match scope {
        MailScope::Inbox { .. } => push_each(batch, |_| {
            Err(PluginError::Unsupported(INBOX_READ_ONLY.into()))
        }),
        MailScope::Outbox { mailbox, .. } => push_each(batch, |op| send(cfg, mailbox, op)),
    }
}

fn send(cfg: &Config, mailbox: &str, op: &WriteOp) -> Result<WriteOk, PluginError> {
    if op.action != WriteAction::Create {
        return Err(PluginError::Unsupported(SENT_IS_FINAL.into()));
    }
    let Some(ItemBody::EmailMessage(m)) = &op.body else {
        return Err(PluginError::invalid_field(
            "body",
            "the outbox scope sends email-message bodies",
        ));
    };
    if let Some(from) = m
        .from
        .as_ref()
        .filter(|f| !f.address.eq_ignore_ascii_case(mailbox))
    {
        log::warn!(
            "op {}: Graph sends as the mailbox owner {mailbox}; the message's from address {} is not used",
            op.op_id,
            from.address
        );
    }
    let body = send_mail_body(m)?;
    let (root, credential) = cfg.send_via();
    Request::post(format!(
        "{root}/users/{}/sendMail",
        url::encode_path_segment(mailbox)
    ))
    .credential(credential)
    .json(&body)?
    .send()
    .and_then(|r| checked(r, SEND_PERMISSION))?
    .error_for_status()?;
    Ok(WriteOk {
        target_id: format!("sent:{}", op.op_id),
        version: None,
    })
}

/// The `sendMail` request body of a message: subject and body when given, the recipients,
/// `saveToSentItems: true`. A message without recipients, or with a recipient that is no
/// address, is refused naming the field.
pub fn send_mail_body(m: &EmailMessage) -> Result<Value, PluginError> {
    if m.to.is_empty() && m.cc.is_empty() {
        return Err(PluginError::invalid_field(
            "to",
            "the message has no recipients; give at least one address in to or cc",
        ));
    }
    for (field, list) in [("to", &m.to), ("cc", &m.cc)] {
        if let Some(bad) = list
            .iter()
            .find(|a| !a.address.contains('@') || a.address.trim() != a.address)
        {
            return Err(PluginError::invalid_field(
                field,
                format!("{:?} is not an e-mail address", bad.address),
            ));
        }
    }
    let mut message = json!({
        "toRecipients": recipients_json(&m.to),
        "ccRecipients": recipients_json(&m.cc),
    });
    if let Some(subject) = &m.subject {
        message["subject"] = json!(subject);
    }
    if let Some(content) = &m.body {
        message["body"] = json!({
            "contentType": if m.body_is_html { "html" } else { "text" },
            "content": content,
        });
    }
    Ok(json!({ "message": message, "saveToSentItems": true }))
}

fn recipients_json(list: &[EmailAddress]) -> Value {
    list.iter()
        .map(|a| json!({ "emailAddress": mailbox::email_json(a) }))
        .collect()
}

#[cfg(test)]
mod tests;
