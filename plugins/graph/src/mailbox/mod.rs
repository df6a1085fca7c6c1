//! Mailbox scopes (WIT 0.1.3 `mailbox-api`): calendars, contacts and Microsoft To Do tasks of
//! one mailbox, read through Graph delta queries and written with POST / PATCH / DELETE.
//!
//! - `calendar:mailbox=UPN,past=N,future=M` reads `calendarView/delta` for the window
//!   (today − N days … today + M days, whole UTC days; defaults 30/30), see [`calendar`]; with
//!   `series=occurrences` each series is answered as its occurrences in the window
//!   (`syncbridge_sdk::series`).
//! - `contacts:mailbox=UPN` reads `contacts/delta` of the default contact folder, see [`contacts`].
//! - `tasks:mailbox=UPN` reads `tasks/delta` of the default To Do list, see [`todo`].
//!
//! The cursor is JSON ([`DeltaCursor`]): the Graph next or delta link and whether the pass
//! reading it is a full one. A `410 Gone` (expired or unknown delta / skip token) answers an
//! empty page with `cursor = None, more = true, full = true`: the engine pulls again from no
//! cursor, a full pass it reconciles against its links.
//!
//! Graph answers a mailbox it cannot serve with a 404 as it answers a missing item; those
//! codes ([`mailbox_refused`]) are about the mailbox, so they come back as errors of the
//! mailbox (`forbidden`: the app may not use it; `invalid` `mailbox`: no such user), never
//! as "the item is gone" (a lookup's empty answer, a delete taken as done, a restarted pass).
//!
//! Requests go one at a time within a call; calls run concurrently (the engine pushes batches in
//! parallel). The runtime bounds them: calls on one mailbox share its limit
//! (`max-concurrent-per-mailbox = 4` in `plugin.toml`, Exchange Online's limit; the scope's
//! `mailbox=` option names the mailbox), within the connection's `max-concurrent-requests`
//! (semaphores in the runtime's `http` capability). 429 / 503 with `Retry-After` come back as
//! `throttled` with the delay (the host reads the header).

pub mod calendar;
pub mod contacts;
pub mod exceptions;
pub mod recurrence;
pub mod todo;
pub mod zone;

use serde_json::{json, Value};
use syncbridge_sdk::batch::push_each;
use syncbridge_sdk::http::{Method, Request};
use syncbridge_sdk::scope::Scope;
use syncbridge_sdk::types::mailbox::*;
use syncbridge_sdk::types::{
    PluginError, PullRequest, RemoteFailure, WriteAction, WriteOk, WriteResult,
};
use syncbridge_sdk::{clock, log, series, url};

use crate::{Config, CREDENTIAL};

/// The anchor extended property (a string named property in syncbridge's property set).
pub const ANCHOR_PROPERTY: &str =
    "String {b6a4f0d2-6c1e-4c57-9a53-5f0e2d7c9b11} Name syncbridgeAnchor";
/// `$expand` reading the anchor.
pub fn anchor_expand() -> String {
    format!("singleValueExtendedProperties($filter=id eq '{ANCHOR_PROPERTY}')")
}

/// The scope kinds this connector serves through `mailbox-api`.
pub const KINDS: [&str; 3] = ["calendar", "contacts", "tasks"];
const USAGE: &str =
    "calendar:mailbox=<upn>[,past=<days>,future=<days>,series=occurrences], contacts:mailbox=<upn> or tasks:mailbox=<upn>";

/// A parsed mailbox scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxScope {
    /// Calendar window: days back and ahead of today.
    Calendar {
        mailbox: String,
        past: u32,
        future: u32,
        /// `series=occurrences`: each series answered as its occurrences in the window.
        occurrences: bool,
    },
    /// Contacts of the default folder.
    Contacts { mailbox: String },
    /// Tasks of the default To Do list.
    Tasks { mailbox: String },
}

impl MailboxScope {
    /// Parses `kind:mailbox=…[,past=…,future=…]`.
    pub fn parse(scope: &str) -> Result<Self, PluginError> {
        let s = Scope::parse(scope, &["mailbox", "past", "future", "series"], None, USAGE)?;
        let occurrences = syncbridge_sdk::series::expands(s.option("series"))?;
        if occurrences && s.name() != "calendar" {
            return Err(PluginError::invalid_field(
                "scope",
                format!("series= is an option of calendar scopes only; use {USAGE}"),
            ));
        }
        let mailbox = mailbox_option(&s, scope, USAGE)?;
        let days = |k: &str| -> Result<u32, PluginError> {
            match s.number(k)? {
                None => Ok(30),
                Some(n) if (0..=3650).contains(&n) => Ok(n as u32),
                Some(n) => Err(PluginError::invalid_field(
                    "scope",
                    format!("{k}={n} is out of range; use 0..=3650 days"),
                )),
            }
        };
        match s.name() {
            "calendar" => Ok(Self::Calendar {
                mailbox,
                past: days("past")?,
                future: days("future")?,
                occurrences,
            }),
            "contacts" => Ok(Self::Contacts { mailbox }),
            "tasks" => Ok(Self::Tasks { mailbox }),
            other => Err(syncbridge_sdk::scope::unknown(other, USAGE)),
        }
    }

    /// The mailbox address.
    pub fn mailbox(&self) -> &str {
        match self {
            Self::Calendar { mailbox, .. }
            | Self::Contacts { mailbox }
            | Self::Tasks { mailbox } => mailbox,
        }
    }
}

/// The required `mailbox=` option of a parsed scope: a UPN or SMTP address (it has an `@` and
/// no `/`, `?` or `#`). `usage` completes the error.
pub fn mailbox_option(s: &Scope, scope: &str, usage: &str) -> Result<String, PluginError> {
    s.option("mailbox")
        .filter(|m| m.contains('@') && !m.contains(['/', '?', '#']))
        .map(str::to_owned)
        .ok_or_else(|| {
            PluginError::invalid_field("scope", format!("{scope:?} names no mailbox; use {usage}"))
        })
}

/// `{root}/users/{mailbox}`.
pub fn user_root(cfg: &Config, mailbox: &str) -> String {
    format!("{}/users/{}", cfg.root(), url::encode_path_segment(mailbox))
}

/// The stored cursor of a mailbox scope.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeltaCursor {
    /// Graph's next link (within a pass) or delta link (between passes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The pass being read is a full one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full: bool,
    /// Calendar: the first day of the window the link reads (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Tasks: the To Do list the link reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
    /// Calendar: series masters already returned in this pass (each is read once a pass).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<String>,
}

impl DeltaCursor {
    /// Reads a stored cursor; none starts a full pass.
    pub fn parse(cursor: Option<&str>) -> Result<Self, PluginError> {
        match cursor {
            None => Ok(Self::default()),
            Some(c) => serde_json::from_str(c).map_err(|e| {
                PluginError::invalid_field(
                    "cursor",
                    format!("{e}; the stored cursor is not one this connector wrote for a mailbox scope (reset the profile's cursor to read everything again)"),
                )
            }),
        }
    }

    /// The stored form.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a cursor serialises")
    }
}

/// One page of a Graph delta query.
pub enum DeltaRead {
    /// The token is no longer known (410): restart with a full pass.
    Gone,
    /// Entries, and the link to continue at (`more`) or the delta link (end of the pass).
    Page {
        values: Vec<Value>,
        link: String,
        more: bool,
    },
}

/// Reads one delta page from `link`, asking for at most `max_items` entries.
/// With `utc`, times are asked for in UTC (`Prefer: outlook.timezone="UTC"`).
pub fn read_delta(
    cfg: &Config,
    link: &str,
    max_items: u32,
    utc: bool,
) -> Result<DeltaRead, PluginError> {
    if !url::same_origin(link, cfg.root()) {
        return Err(PluginError::invalid_field(
            "cursor",
            "the stored link does not lead to the configured graph_url; reset the profile's cursor",
        ));
    }
    let response = Request::get(link)
        .credential(CREDENTIAL)
        .header("Accept", "application/json")
        .header(
            "Prefer",
            format!(
                "{}odata.maxpagesize={}",
                if utc {
                    "outlook.timezone=\"UTC\", "
                } else {
                    ""
                },
                max_items.clamp(1, 999)
            ),
        )
        .send()
        .and_then(mailbox_checked)?;
    if response.status() == 410 {
        log::warn!(
            "Graph no longer knows the mailbox delta token (HTTP 410); restarting with a full read, the engine reconciles it against its links"
        );
        return Ok(DeltaRead::Gone);
    }
    let body: Value = response.json()?;
    let values = body["value"].as_array().cloned().unwrap_or_default();
    match (
        body["@odata.nextLink"].as_str(),
        body["@odata.deltaLink"].as_str(),
    ) {
        (Some(n), _) => Ok(DeltaRead::Page {
            values,
            link: syncbridge_sdk::paging::same_origin(cfg.root(), n)?,
            more: true,
        }),
        (None, Some(d)) => Ok(DeltaRead::Page {
            values,
            link: syncbridge_sdk::paging::same_origin(cfg.root(), d)?,
            more: false,
        }),
        (None, None) => Err(PluginError::Remote(RemoteFailure {
            status: 200,
            message: "the delta page has neither @odata.nextLink nor @odata.deltaLink".into(),
        })),
    }
}

/// The page answering a 410: empty, no cursor, more to read, full.
pub fn restart_page() -> MailboxPage {
    MailboxPage {
        items: Vec::new(),
        cursor: None,
        more: true,
        full: true,
    }
}

/// A page of a delta pass: `link` continues it (`more`) or is the delta link.
pub fn delta_page(
    items: Vec<MailboxItem>,
    mut cursor: DeltaCursor,
    link: String,
    more: bool,
) -> MailboxPage {
    let full = cursor.full;
    cursor.link = Some(link);
    cursor.full = more && full;
    if !more {
        cursor.series.clear();
    }
    MailboxPage {
        items,
        cursor: Some(cursor.encode()),
        more,
        full,
    }
}

/// `GET url` as JSON (times in UTC).
pub fn get_json(url: &str) -> Result<Value, PluginError> {
    Request::get(url)
        .credential(CREDENTIAL)
        .header("Accept", "application/json")
        .header("Prefer", "outlook.timezone=\"UTC\"")
        .send()
        .and_then(mailbox_checked)?
        .json()
}

/// The error of a whole mailbox Graph answers with 404 (so that it is never read as a
/// missing item): `MailboxNotEnabledForRESTAPI` (and `MailboxNotSupportedForRESTAPI`) when the
/// user has no Exchange Online licence or the mailbox is inactive, soft-deleted or on
/// premises, `forbidden`: the app cannot use that mailbox; `ErrorInvalidUser` when no user has
/// the address, an `invalid` `mailbox`. `None` for any other answer.
pub fn mailbox_refused(status: u16, body: &[u8]) -> Option<PluginError> {
    if status != 404 {
        return None;
    }
    let v: Value = serde_json::from_slice(body).ok()?;
    let code = v["error"]["code"].as_str()?;
    let message = v["error"]["message"].as_str().unwrap_or_default();
    match code {
        "MailboxNotEnabledForRESTAPI" | "MailboxNotSupportedForRESTAPI" => {
            Some(PluginError::Forbidden(format!(
                "the app cannot use this mailbox through Microsoft Graph (HTTP 404 {code}: {message}): the user has no Exchange Online licence, or the mailbox is inactive, soft-deleted or hosted on premises; license the user, or synchronize this mailbox through EWS"
            )))
        }
        "ErrorInvalidUser" => Some(PluginError::invalid_field(
            "mailbox",
            format!(
                "Microsoft Graph knows no user with this address (HTTP 404 {code}: {message}); enter the user's principal name or primary SMTP address"
            ),
        )),
        _ => None,
    }
}

/// `response` unless it is a mailbox-level refusal ([`mailbox_refused`]).
pub fn mailbox_checked(
    response: syncbridge_sdk::http::Response,
) -> Result<syncbridge_sdk::http::Response, PluginError> {
    match mailbox_refused(response.status(), response.bytes()) {
        Some(e) => Err(e),
        None => Ok(response),
    }
}

/// `GET url`; `None` when the item does not exist (404).
pub fn get_optional(url: &str) -> Result<Option<Value>, PluginError> {
    match get_json(url) {
        Ok(v) => Ok(Some(v)),
        Err(PluginError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every entry of a collection, following next links on the Graph origin.
pub fn get_all(cfg: &Config, url: &str) -> Result<Vec<Value>, PluginError> {
    let mut out = Vec::new();
    let mut next = Some(url.to_owned());
    while let Some(u) = next.take() {
        let body = get_json(&u)?;
        out.extend(body["value"].as_array().cloned().unwrap_or_default());
        next = body["@odata.nextLink"]
            .as_str()
            .map(|n| syncbridge_sdk::paging::same_origin(cfg.root(), n))
            .transpose()?;
    }
    Ok(out)
}

/// Sends a JSON write and returns the answer (`Value::Null` for 204).
pub fn send_write(method: Method, url: &str, body: Option<&Value>) -> Result<Value, PluginError> {
    let mut r = Request::new(method, url)
        .credential(CREDENTIAL)
        .header("Prefer", "outlook.timezone=\"UTC\"");
    if let Some(b) = body {
        r = r.json(b)?;
    }
    let resp = r.send().and_then(mailbox_checked)?.error_for_status()?;
    if resp.bytes().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(resp.bytes()).map_err(|e| {
        PluginError::Remote(RemoteFailure {
            status: resp.status(),
            message: format!("the service answered with JSON we cannot read: {e}"),
        })
    })
}

/// The anchor of an item read with [`anchor_expand`].
pub fn anchor_of(v: &Value) -> Option<String> {
    v["singleValueExtendedProperties"]
        .as_array()?
        .iter()
        .find(|p| {
            p["id"]
                .as_str()
                .is_some_and(|id| id.eq_ignore_ascii_case(ANCHOR_PROPERTY))
        })
        .and_then(|p| p["value"].as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The `singleValueExtendedProperties` that writes `anchor` (empty clears it).
pub fn anchor_property(anchor: Option<&str>) -> Value {
    json!([{ "id": ANCHOR_PROPERTY, "value": anchor.unwrap_or_default() }])
}

/// `$filter` finding items whose anchor is `value`.
pub fn anchor_filter(value: &str) -> String {
    let v = value.replace('\'', "''");
    let f = format!(
        "singleValueExtendedProperties/Any(ep: ep/id eq '{ANCHOR_PROPERTY}' and ep/value eq '{v}')"
    );
    url::encode_query_value(&f)
}

/// A string property; empty is none.
pub fn text(v: &Value, key: &str) -> Option<String> {
    v[key].as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// A list of strings.
pub fn strings(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A removed item of a delta page.
pub fn removed(id: &str) -> MailboxItem {
    MailboxItem {
        id: id.to_owned(),
        version: None,
        removed: Some(Removal::Deleted),
        body: None,
    }
}

/// An item's version: its `changeKey`, else its etag.
pub fn version_of(v: &Value) -> Option<String> {
    text(v, "changeKey").or_else(|| text(v, "@odata.etag"))
}

/// The id a write targets, checked to be a plain Graph id.
pub fn target(op: &MailboxWriteOp) -> Result<&str, PluginError> {
    op.target_id
        .as_deref()
        .filter(|id| !id.is_empty() && !id.contains(['/', '?', '#']))
        .ok_or_else(|| {
            PluginError::invalid_field("target_id", "an update or delete needs the item's id")
        })
}

/// Reads one page of a mailbox scope.
pub fn pull(cfg: &Config, request: PullRequest) -> Result<MailboxPage, PluginError> {
    let scope = MailboxScope::parse(&request.scope)?;
    let cursor = DeltaCursor::parse(request.cursor.as_deref())?;
    match &scope {
        MailboxScope::Calendar {
            past,
            future,
            occurrences,
            ..
        } => {
            let mut page = calendar::pull(cfg, &scope, cursor, request.max_items)?;
            if *occurrences {
                let (start, end) = calendar::window(clock::now_ms(), *past, *future);
                page.items = series::expand_items(page.items, series::Window { start, end })?;
            }
            Ok(page)
        }
        MailboxScope::Contacts { mailbox } => {
            contacts::pull(cfg, mailbox, cursor, request.max_items)
        }
        MailboxScope::Tasks { mailbox } => todo::pull(cfg, mailbox, cursor, request.max_items),
    }
}

/// Looks items up by `id:<id>` or `anchor:<value>` (a bare key is an id).
pub fn lookup(
    cfg: &Config,
    scope: &str,
    keys: Vec<String>,
) -> Result<Vec<MailboxItem>, PluginError> {
    let scope = MailboxScope::parse(scope)?;
    if let MailboxScope::Calendar {
        past,
        future,
        occurrences: true,
        ..
    } = scope
    {
        // Occurrences are read through their series.
        let found = lookup_keys(cfg, &scope, series::series_keys(&keys))?;
        let (start, end) = calendar::window(clock::now_ms(), past, future);
        return series::answer_lookup(&keys, found, series::Window { start, end });
    }
    lookup_keys(cfg, &scope, keys)
}

fn lookup_keys(
    cfg: &Config,
    scope: &MailboxScope,
    keys: Vec<String>,
) -> Result<Vec<MailboxItem>, PluginError> {
    let mut out = Vec::new();
    for key in keys {
        let found = match key.split_once(':') {
            Some(("anchor", value)) => match scope {
                MailboxScope::Calendar { .. } => calendar::by_anchor(cfg, scope, value)?,
                MailboxScope::Contacts { mailbox } => contacts::by_anchor(cfg, mailbox, value)?,
                MailboxScope::Tasks { mailbox } => todo::by_anchor(cfg, mailbox, value)?,
            },
            Some(("id", id)) => by_id(cfg, scope, id)?,
            None => by_id(cfg, scope, &key)?,
            Some((other, _)) => {
                return Err(PluginError::invalid_field(
                    "keys",
                    format!("unknown key kind {other:?}; use id:<id> or anchor:<value>"),
                ))
            }
        };
        out.extend(found);
    }
    Ok(out)
}

fn by_id(cfg: &Config, scope: &MailboxScope, id: &str) -> Result<Vec<MailboxItem>, PluginError> {
    if id.is_empty() || id.contains(['/', '?', '#']) {
        return Ok(Vec::new());
    }
    match scope {
        MailboxScope::Calendar { .. } => calendar::by_id(cfg, scope, id),
        MailboxScope::Contacts { mailbox } => contacts::by_id(cfg, mailbox, id),
        MailboxScope::Tasks { mailbox } => todo::by_id(cfg, mailbox, id),
    }
}

/// Applies a batch of writes, one request each; a throttle stops the rest of the batch.
pub fn push(
    cfg: &Config,
    scope: &str,
    batch: Vec<MailboxWriteOp>,
) -> Result<Vec<WriteResult>, PluginError> {
    let scope = MailboxScope::parse(scope)?;
    Ok(push_each(batch, |op| match &scope {
        MailboxScope::Calendar { mailbox, .. } => calendar::write(cfg, &scope, mailbox, op),
        MailboxScope::Contacts { mailbox } => contacts::write(cfg, mailbox, op),
        MailboxScope::Tasks { mailbox } => todo::write(cfg, mailbox, op),
    }))
}

/// The error for a write whose body is not of the scope's kind.
pub fn wrong_body(kind: &str) -> PluginError {
    PluginError::invalid_field("body", format!("this scope writes {kind} bodies"))
}

/// The error for an action a mailbox scope does not take.
pub fn unsupported_action(action: WriteAction) -> PluginError {
    PluginError::Unsupported(format!(
        "mailbox items are created, updated and deleted; {action:?} is not supported"
    ))
}

/// `Some(value)` when `field` is written: always for a create, when named for an update.
pub fn named(op: &MailboxWriteOp, field: &str) -> bool {
    op.action == WriteAction::Create || op.fields.iter().any(|f| f == field)
}

/// Unknown fields of an update are refused, naming the readable ones.
pub fn check_fields(op: &MailboxWriteOp, known: &[&str]) -> Result<(), PluginError> {
    match op.fields.iter().find(|f| !known.contains(&f.as_str())) {
        Some(f) => Err(PluginError::invalid_field(
            f.as_str(),
            format!("unknown field; this scope writes {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

/// A rich text as Graph's `itemBody`.
pub fn item_body(b: Option<&RichText>) -> Value {
    match b {
        Some(b) => json!({
            "contentType": match b.body_type { BodyType::Html => "html", BodyType::Text => "text" },
            "content": b.content,
        }),
        None => json!({"contentType": "text", "content": ""}),
    }
}

/// Graph's `itemBody` as rich text; empty content is none.
pub fn rich_text(v: &Value) -> Option<RichText> {
    let content = v["content"].as_str().filter(|c| !c.is_empty())?;
    Some(RichText {
        content: content.to_owned(),
        body_type: if v["contentType"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("html"))
        {
            BodyType::Html
        } else {
            BodyType::Text
        },
    })
}

/// A Graph `emailAddress` as the canonical address.
pub fn email(v: &Value) -> Option<EmailAddress> {
    Some(EmailAddress {
        address: v["address"].as_str().filter(|a| !a.is_empty())?.to_owned(),
        name: text(v, "name"),
    })
}

/// The canonical address as a Graph `emailAddress`.
pub fn email_json(e: &EmailAddress) -> Value {
    match &e.name {
        Some(n) => json!({"address": e.address, "name": n}),
        None => json!({"address": e.address}),
    }
}

/// The created or updated item's id and version.
pub fn write_ok(answer: &Value, fallback_id: &str) -> WriteOk {
    WriteOk {
        target_id: text(answer, "id").unwrap_or_else(|| fallback_id.to_owned()),
        version: version_of(answer),
    }
}

#[cfg(test)]
mod tests;
