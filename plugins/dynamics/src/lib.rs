//! `dynamics`: Dynamics 365 / Dataverse mailbox rows, e-mail activities and the appointments,
//! tasks and contacts of a mailbox's user over the Dataverse Web API (OData v4 JSON,
//! `<url>/api/data/v9.2`).
//!
//! - Authentication: the connection's `default` credential, an `oauth2-client-credentials`
//!   secret of an app registration (scope `<url>/.default`) whose application user exists in
//!   the environment; the host adds the bearer token to every request naming the slot.
//! - `test-connection`: `GET WhoAmI` (endpoint and credentials), then one mailbox read
//!   (`read-mailboxes`); refused tokens, missing security roles and unreachable environments are
//!   findings with a cause and a remedy.
//! - `pull("mailboxes")`: `GET mailboxes?$select=…&$filter=statecode eq 0` with
//!   `Prefer: odata.maxpagesize=<page_size>`; the page's cursor is Dataverse's
//!   `@odata.nextLink` (durable: it carries the paging cookie), followed only under the
//!   configured API root. Every pass is full. Rows without an e-mail address are skipped.
//! - `lookup-items("mailboxes", keys)`: `email:<address>` (`emailaddress eq '…'`, up to 20 to a
//!   query) and bare mailbox ids (`GET mailboxes(<id>)`, also `id:<id>`); unknown keys are
//!   simply absent from the answer.
//! - `push("mailboxes", batch)`: `update` only, `PATCH mailboxes(<id>)` with `If-Match: *` (the
//!   row must exist: Dataverse would otherwise create it) of only the named fields
//!   (`incoming_status`, `outgoing_status`, `calendar_status`, `enabled`, `approved`); writing a
//!   status also stamps `testmailboxaccesscompletedon` and clears
//!   `testemailconfigurationscheduled`. The answer's version is the row's new `@odata.etag`
//!   (`Prefer: return=representation`, `$select=mailboxid`).
//!
//! E-mail activities of one mailbox, `emails:mailbox=<address>,direction=incoming|outgoing`
//! (`email-message` items; unknown options, a missing or malformed mailbox or an unknown
//! direction are `invalid`, naming the grammar):
//!
//! - An item is an `emails` row (`$select` of the columns below,
//!   `$expand=email_activity_parties($select=addressused,participationtypemask)`): id
//!   `activityid`, version `@odata.etag`; from `sender` (else the Sender party), to
//!   `torecipients` (`;`-separated) with the To parties, cc the Cc parties (Dataverse has no Cc
//!   column), body `description` (HTML), sent `senton`, received `actualend`, internet message
//!   id `messageid`.
//! - `pull` of `direction=incoming`: received e-mail (`directioncode eq false`) with the mailbox
//!   in `torecipients` (`contains`) or among its To/Cc parties, and then really among its To/Cc
//!   addresses; oldest change first (`$orderby=modifiedon asc`), paged by `@odata.nextLink`
//!   (followed only under the API root's `emails`). A pass without cursor is full; its last
//!   page's cursor (JSON, [`emails::cursor`]) keeps the newest `modifiedon` read, and the next
//!   pass reads `modifiedon ge` it (`full: false`) without the rows read at that instant that
//!   have not changed since. A cursor that does not parse, of another scope or with a foreign
//!   link is `invalid` (reset it for a full read).
//! - `pull` of `direction=outgoing`: e-mail pending send from the mailbox (`directioncode eq
//!   true and statuscode eq 6 and sender eq '<address>'`); every pass full.
//! - `lookup-items`: `messageid:<internet message id>` (`messageid eq '…'`, up to 20 to a query)
//!   and activity ids (`GET emails(<id>)`, also `id:<id>`), in any mailbox and direction; keys
//!   not found are absent.
//! - `push` on incoming: `create` POSTs a received e-mail (`directioncode` false, statecode 1
//!   Completed, statuscode 4 Received, `sender`, `torecipients`, `messageid`, `actualend` the
//!   received time, the participants as `email_activity_parties`) and answers its `activityid`
//!   and etag; `update` of `subject`/`body` PATCHes with `If-Match: *`; `delete` DELETEs (already
//!   gone is done); `deactivate`/`reactivate` are `unsupported`. On outgoing only `update` of
//!   `sent`: statecode 1, statuscode 3 Sent, `actualend` the sent time, `messageid` when given.
//!   `senton` is read-only in Dataverse and never written. Dataverse documents completed e-mail
//!   as read-only, so it may refuse an update of a received e-mail.
//!
//! The rows a mailbox's user owns, which server-side synchronization keeps in step with Exchange,
//! `appointments:mailbox=<address>`, `recurring-appointments:mailbox=<address>`,
//! `tasks:mailbox=<address>` and `contacts:mailbox=<address>` (`appointment`, `task` and
//! `contact` items; scope names are read without case, `-` or `_`; an unknown option or a
//! missing or malformed mailbox is `invalid`, naming the grammar; mapping in
//! [`act::appointment`], [`act::recurring`], [`act::task`] and [`act::contact`]):
//!
//! - The owner is the `systemusers` row whose primary e-mail is the address (`GET
//!   systemusers?$select=systemuserid&$filter=internalemailaddress eq '…'`): none is
//!   `not-found` (the address is no Dynamics user's primary e-mail), several are `invalid`. Its
//!   id is cached in the connection's state (`dynamics:owner:<address>`) and dropped when
//!   Dataverse answers a request naming it with 400 or 404 about the user.
//! - An item is a row of `appointments` (key `activityid`), `recurringappointmentmasters`
//!   (`activityid`), `tasks` (`activityid`) or `contacts` (`contactid`) with
//!   `_ownerid_value eq <systemuserid>`: id its key, version `@odata.etag`. `appointments:` are
//!   single ones only (`instancetypecode eq 0`); `recurring-appointments:` are the series, each
//!   an appointment whose start/end are the first occurrence and whose recurrence is the
//!   pattern as an RRULE computed in its zone with the deleted occurrences as exdates (a row
//!   whose pattern does not read is left out with a warning); the unmodified occurrences
//!   Dataverse expands are not read. Through `mailbox-api` (`mailbox-scopes` lists
//!   `recurring-appointments`, which is how the host reads and writes it) each series is a
//!   `series-master` event with its modified occurrences, Dataverse's exception rows
//!   ([`act::series`], [`act::exceptions`]); the core face answers the masters alone. A Canceled appointment, series or task (state 2) is a removal
//!   (`deleted`); completed ones, and inactive contacts (`active` false), stay live.
//! - `pull`: oldest change first, paged by `@odata.nextLink` (followed only under the API root's
//!   entity set), full without cursor (`full: true`), then deltas from the newest `modifiedon`
//!   read (`modifiedon ge`, `full: false`) without the rows read at that instant that have not
//!   changed, as for incoming e-mail; the cursor ([`act::cursor`]) is bound to the scope and the
//!   owner: one that does not parse, of another scope or with a foreign link is `invalid` (reset
//!   it for a full read); when the address now belongs to another user a full pass starts over.
//!   A delta does not see rows deleted or given to another owner: reset the cursor for a full
//!   pass to notice them.
//! - `lookup-items`: row ids (`GET <set>(<id>)`, also `id:<id>`), whoever owns them; keys not
//!   found are absent.
//! - `push`: `create` POSTs the row with `ownerid@odata.bind: /systemusers(<id>)` and
//!   `Prefer: return=representation`, and answers its key and etag; `update` PATCHes only the
//!   named fields with `If-Match: *` (appointments `subject`, `start`, `end`, `all_day`,
//!   `location`, `body`; tasks `title`, `body`, `start`, `due`, `status`, `completed`; contacts
//!   `first_name`, `last_name`, `title`, `email`, `phone`, `mobile`, `extra.department`,
//!   `extra.address1_city`, `extra.emailaddress2`; any other field is `invalid`, naming these;
//!   `fullname` is computed by Dataverse and never written); `delete` DELETEs (already gone is
//!   done); contacts are deactivated (state 1, status 2) and reactivated (state 0, status 1,
//!   with the named fields); other actions are `unsupported`. A series is only updated (the
//!   appointments' fields, `start`/`end` as `starttime`/`endtime`): its `create`, `delete` and
//!   `recurrence` are `unsupported` (series flow from Dynamics to Exchange).
//!
//! Errors: 400 `invalid` with Dataverse's `error.message`, 401 `auth`, 403 `forbidden`, 404
//! `not-found`, 409/412 `conflict`, 429 `throttled` with `Retry-After`, 5xx and transport
//! failures `transient`; a body that is not JSON is `remote`.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use syncbridge_sdk::http::{classify_status, parse_retry_after, Method, Request, Response};
use syncbridge_sdk::prelude::*;
use syncbridge_sdk::{batch, clock, url};

pub mod act;
pub mod emails;

/// Connection configuration.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The environment's (organization's) root URL, e.g. `https://contoso.crm.dynamics.com`;
    /// the Web API is `<url>/api/data/v9.2`. HTTPS, except `http://localhost` and
    /// `http://127.0.0.1` (simulators).
    pub url: String,
    /// Rows per page (`Prefer: odata.maxpagesize`), 1 to 5000; default 500.
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = 5000))]
    pub page_size: u32,
}

fn default_page_size() -> u32 {
    DEFAULT_PAGE_SIZE
}

/// Rows per page unless configured.
pub const DEFAULT_PAGE_SIZE: u32 = 500;
/// Dataverse's largest page.
pub const MAX_PAGE_SIZE: u32 = 5000;
/// The Web API path under the organization root.
pub const API_PATH: &str = "/api/data/v9.2";
/// The one scope.
pub const SCOPE: &str = "mailboxes";
/// Columns read of each mailbox row.
pub const SELECT: &str = "mailboxid,name,emailaddress,emailrouteraccessapproval,incomingemailstatus,outgoingemailstatus,actstatus,enabledforincomingemail,enabledforoutgoingemail,enabledforact";
/// The fields `push` writes.
pub const WRITABLE: &[&str] = &[
    "incoming_status",
    "outgoing_status",
    "calendar_status",
    "enabled",
    "approved",
];
const CREDENTIAL: &str = "default";
/// E-mail addresses per lookup query (an `or` of `eq` conditions).
const EMAILS_PER_QUERY: usize = 20;

impl Config {
    /// The Web API root, `<origin>/api/data/v9.2`.
    pub fn api(&self) -> Result<String, PluginError> {
        api_root_of(&self.url).map_err(|(cause, _)| PluginError::invalid_field("url", cause))
    }

    /// The page size to ask for: the configured one, at most what the host wants.
    pub fn page_size_for(&self, max_items: u32) -> u32 {
        self.page_size.clamp(1, MAX_PAGE_SIZE).min(max_items.max(1))
    }
}

/// The connector.
pub struct Dynamics;

impl Connector for Dynamics {
    type Config = Config;

    fn describe() -> Description {
        Description {
            reads: served_kinds(),
            writes: served_kinds(),
            credential_slots: vec![CREDENTIAL.into()],
            ..Description::named("Dynamics 365 (Dataverse Web API)")
        }
    }

    fn check_config(c: &Config) -> Vec<Finding> {
        check_config(c)
    }

    fn test_connection(cfg: &Config) -> Result<Vec<Finding>, PluginError> {
        Ok(test_connection(cfg))
    }

    fn pull(cfg: &Config, request: PullRequest) -> Result<Page, PluginError> {
        match served(&request.scope)? {
            Served::Mailboxes => pull_mailboxes(cfg, request),
            Served::Emails(scope) => emails::pull(cfg, &scope, request),
            Served::Act(scope) => act::pull(cfg, &scope, request),
        }
    }

    fn lookup(cfg: &Config, scope: &str, keys: Vec<String>) -> Result<Vec<Item>, PluginError> {
        match served(scope)? {
            Served::Mailboxes => lookup_mailboxes(cfg, keys),
            Served::Emails(scope) => emails::lookup(cfg, &scope, &keys),
            Served::Act(scope) => act::lookup(cfg, &scope, &keys),
        }
    }

    fn push(cfg: &Config, scope: &str, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>, PluginError> {
        let served = served(scope)?;
        let api = cfg.api()?;
        Ok(match served {
            Served::Mailboxes => {
                let now = iso_utc(clock::now_ms());
                batch::push_each(ops, |op| write_mailbox(&api, op, &now))
            }
            Served::Emails(scope) => batch::push_each(ops, |op| emails::write(&api, &scope, op)),
            Served::Act(scope) => batch::push_each(ops, |op| act::write(&api, &scope, op)),
        })
    }

    fn mailbox_scopes() -> Vec<String> {
        act::series::SCOPE_NAMES
            .iter()
            .map(|n| (*n).to_owned())
            .collect()
    }

    fn pull_mailbox(
        cfg: &Config,
        request: PullRequest,
    ) -> Result<mailbox::MailboxPage, PluginError> {
        let scope = series_scope(&request.scope)?;
        act::series::pull(cfg, &scope, request)
    }

    fn lookup_mailbox(
        cfg: &Config,
        scope: &str,
        keys: Vec<String>,
    ) -> Result<Vec<mailbox::MailboxItem>, PluginError> {
        act::series::lookup(cfg, &series_scope(scope)?, &keys)
    }

    fn push_mailbox(
        cfg: &Config,
        scope: &str,
        ops: Vec<mailbox::MailboxWriteOp>,
    ) -> Result<Vec<WriteResult>, PluginError> {
        act::series::push(cfg, &series_scope(scope)?, ops)
    }
}

/// A scope served through `mailbox-api`: the recurring series of a mailbox's owner.
fn series_scope(scope: &str) -> Result<act::ActScope, PluginError> {
    let parsed = act::ActScope::parse(scope)?;
    if parsed.kind != act::Kind::RecurringAppointments {
        return Err(PluginError::invalid_field(
            "scope",
            format!(
                "{scope:?} is not served as mailbox items: only `{}` is (the other scopes are core items)",
                act::Kind::RecurringAppointments.grammar()
            ),
        ));
    }
    Ok(parsed)
}

fn pull_mailboxes(cfg: &Config, request: PullRequest) -> Result<Page, PluginError> {
    let api = cfg.api()?;
    let url = match request.cursor.as_deref().map(str::trim) {
        None | Some("") => first_page_url(&api),
        Some(cursor) => checked_cursor(&api, cursor)?,
    };
    let body = get_json(&url, Some(cfg.page_size_for(request.max_items)))?;
    let (rows, next) = rows_and_next(&api, &body)?;
    Ok(Page {
        items: rows.iter().filter_map(mailbox_item).collect(),
        more: next.is_some(),
        cursor: next,
        full: true,
    })
}

fn lookup_mailboxes(cfg: &Config, keys: Vec<String>) -> Result<Vec<Item>, PluginError> {
    let api = cfg.api()?;
    let (emails, ids) = parse_keys(&keys)?;
    let mut out: Vec<Item> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut keep = |item: Item, out: &mut Vec<Item>| {
        if seen.insert(item.id.clone()) {
            out.push(item);
        }
    };
    for chunk in emails.chunks(EMAILS_PER_QUERY) {
        let mut url = lookup_url(&api, chunk);
        loop {
            let body = get_json(&url, Some(cfg.page_size_for(MAX_PAGE_SIZE)))?;
            let (rows, next) = rows_and_next(&api, &body)?;
            for item in rows.iter().filter_map(mailbox_item) {
                keep(item, &mut out);
            }
            match next {
                Some(n) => url = n,
                None => break,
            }
        }
    }
    for id in ids {
        let r = request(
            Method::Get,
            format!("{api}/mailboxes({id})?$select={SELECT}"),
        )
        .send()?;
        if r.status() == 404 {
            continue;
        }
        if let Some(item) = mailbox_item(&read_json(r)?) {
            keep(item, &mut out);
        }
    }
    Ok(out)
}

syncbridge_sdk::export_connector!(Dynamics);

// ----------------------------------------------------------------------------------------------
// configuration

const URL_REMEDY: &str = "set url to the environment's root over https, e.g. https://contoso.crm.dynamics.com (Power Platform admin center > Environments > the environment > Environment URL); plain http is accepted only for localhost and 127.0.0.1 (test simulators)";

/// Checks an organization URL; answers the Web API root (`<scheme>://<host>/api/data/v9.2`) or
/// the cause and remedy of what is wrong with it. A trailing `/` or `/api/data/v9.2` is accepted.
pub fn api_root_of(raw: &str) -> Result<String, (String, String)> {
    let bad = |cause: String| Err((cause, URL_REMEDY.to_owned()));
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return bad("url is empty".into());
    }
    let Some((scheme, rest)) = trimmed.split_once("://") else {
        return bad(format!("url {trimmed:?} is not an absolute http(s) URL"));
    };
    let scheme = scheme.to_ascii_lowercase();
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = authority.to_ascii_lowercase();
    if authority.contains('@') {
        return bad(format!("url {trimmed:?} carries user information"));
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((inner, port)) if port.is_empty() || port.starts_with(':') => {
                format!("[{inner}]")
            }
            _ => return bad(format!("url {trimmed:?} has no valid host")),
        },
        None => authority.split(':').next().unwrap_or_default().to_owned(),
    };
    let port = authority[host.len()..].strip_prefix(':');
    if host.is_empty()
        || host.contains(char::is_whitespace)
        || port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad(format!("url {trimmed:?} has no valid host"));
    }
    let path = tail.trim_end_matches('/');
    if !(path.is_empty() || path.eq_ignore_ascii_case(API_PATH)) {
        return bad(format!(
            "url {trimmed:?} is not the organization root: it has the path or query {tail:?}"
        ));
    }
    match scheme.as_str() {
        "https" => {}
        "http" if is_loopback(&host) => {}
        "http" => {
            return bad(format!(
                "url {trimmed:?} uses http: Dataverse is served over https only"
            ))
        }
        other => {
            return bad(format!(
                "url {trimmed:?} has the scheme {other:?}, not https"
            ))
        }
    }
    Ok(format!("{scheme}://{authority}{API_PATH}"))
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

fn host_of(api: &str) -> String {
    let rest = api.split_once("://").map(|(_, r)| r).unwrap_or(api);
    let authority = rest.split('/').next().unwrap_or_default();
    match authority.strip_prefix('[') {
        Some(v6) => format!("[{}]", v6.split(']').next().unwrap_or_default()),
        None => authority.split(':').next().unwrap_or_default().to_owned(),
    }
}

/// Offline checks of a configuration.
pub fn check_config(c: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    match api_root_of(&c.url) {
        Err((cause, remedy)) => out.push(Finding::failed("url", cause, remedy)),
        Ok(api) => {
            let host = host_of(&api);
            if !(is_loopback(&host) || host.ends_with(".dynamics.com")) {
                out.push(Finding::failed(
                    "url",
                    format!("{host} is not a Dataverse host: this plugin may only reach *.dynamics.com (and localhost for simulators)"),
                    "use the environment URL under dynamics.com, e.g. https://contoso.crm.dynamics.com (Power Platform admin center > Environments)",
                ));
            }
        }
    }
    if !(1..=MAX_PAGE_SIZE).contains(&c.page_size) {
        out.push(Finding::failed(
            "page_size",
            format!("page_size {} is out of range", c.page_size),
            "use 1 to 5000 rows per page (Dataverse pages at most 5000 rows); leave it out for the default of 500",
        ));
    }
    if out.is_empty() {
        out.push(Finding::ok("config"));
    }
    out
}

// ----------------------------------------------------------------------------------------------
// scopes, keys, mapping

/// A scope this connector serves.
enum Served {
    Mailboxes,
    Emails(emails::EmailScope),
    Act(act::ActScope),
}

/// The item kinds of the served scopes (read and written alike).
fn served_kinds() -> Vec<ItemKind> {
    let mut kinds = vec![ItemKind::Mailbox, ItemKind::EmailMessage];
    for kind in act::Kind::ALL.map(act::Kind::item_kind) {
        // Single and recurring appointments are both `appointment` items.
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds
}

fn served(scope: &str) -> Result<Served, PluginError> {
    if scope.trim() == SCOPE {
        return Ok(Served::Mailboxes);
    }
    if emails::EmailScope::names(scope) {
        return emails::EmailScope::parse(scope).map(Served::Emails);
    }
    if act::Kind::named_by(scope).is_some() {
        return act::ActScope::parse(scope).map(Served::Act);
    }
    Err(PluginError::invalid_field(
        "scope",
        format!(
            "unknown scope {scope:?}: this connector serves the scopes `mailboxes` (Dataverse mailbox rows), `{}` (e-mail activities of a mailbox) and `{}` (the rows owned by the mailbox's Dynamics user)",
            emails::GRAMMAR,
            act::Kind::ALL.map(act::Kind::grammar).join("`, `")
        ),
    ))
}

/// Whether `s` is a GUID in Dataverse's form (`8-4-4-4-12` hex digits).
pub fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Splits lookup keys into e-mail addresses and mailbox ids (lower case).
pub fn parse_keys(keys: &[String]) -> Result<(Vec<String>, Vec<String>), PluginError> {
    let mut emails = Vec::new();
    let mut ids = Vec::new();
    for key in keys {
        let k = key.trim();
        if k.len() >= 6 && k[..6].eq_ignore_ascii_case("email:") {
            let address = k[6..].trim();
            if address.is_empty() {
                return Err(PluginError::invalid_field(
                    "keys",
                    format!("{key:?} names no address"),
                ));
            }
            if !emails
                .iter()
                .any(|e: &String| e.eq_ignore_ascii_case(address))
            {
                emails.push(address.to_owned());
            }
            continue;
        }
        let id = k.strip_prefix("id:").unwrap_or(k).trim();
        if !is_guid(id) {
            return Err(PluginError::invalid_field(
                "keys",
                format!("unknown key {key:?}; use email:<address> or a mailbox id (a GUID)"),
            ));
        }
        let id = id.to_ascii_lowercase();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok((emails, ids))
}

/// An OData string literal: quoted, single quotes doubled.
pub fn odata_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The first page of a pull.
pub fn first_page_url(api: &str) -> String {
    format!(
        "{api}/mailboxes?$select={SELECT}&$filter={}",
        url::encode_query_value("statecode eq 0")
    )
}

/// A query for the mailboxes with any of `addresses`.
pub fn lookup_url(api: &str, addresses: &[String]) -> String {
    let filter = addresses
        .iter()
        .map(|a| format!("emailaddress eq {}", odata_string(a)))
        .collect::<Vec<_>>()
        .join(" or ");
    format!(
        "{api}/mailboxes?$select={SELECT}&$filter={}",
        url::encode_query_value(&filter)
    )
}

fn path_of(u: &str) -> &str {
    let rest = u.split_once("://").map(|(_, r)| r).unwrap_or("");
    match rest.find('/') {
        Some(i) => &rest[i..],
        None => "",
    }
}

/// Whether `link` is a query of the entity set `set` under the API root `api` (same origin,
/// same path).
pub fn is_set_link(api: &str, set: &str, link: &str) -> bool {
    let want = format!("{}/{set}", path_of(api)).to_ascii_lowercase();
    let path = path_of(link).to_ascii_lowercase();
    url::same_origin(api, link)
        && path.starts_with(&want)
        && matches!(path.as_bytes().get(want.len()), None | Some(b'?' | b'('))
}

/// Whether `link` is a mailboxes query under the API root `api` (same origin, same path).
pub fn is_mailboxes_link(api: &str, link: &str) -> bool {
    is_set_link(api, "mailboxes", link)
}

/// A cursor given back by the host: the next link of an earlier page, under the same API root.
pub fn checked_cursor(api: &str, cursor: &str) -> Result<String, PluginError> {
    if is_mailboxes_link(api, cursor) {
        return Ok(cursor.to_owned());
    }
    Err(PluginError::invalid_field(
        "cursor",
        format!(
            "the cursor is not a mailboxes link under {api}; refusing to send the credential elsewhere (reset the profile's cursor to read everything again)"
        ),
    ))
}

/// The rows of a mailboxes answer and its next link (checked to stay under `api`).
pub fn rows_and_next(api: &str, body: &Value) -> Result<(Vec<Value>, Option<String>), PluginError> {
    rows_and_next_of(api, "mailboxes", body)
}

/// The rows of a collection answer of the entity set `set` and its next link (checked to stay
/// a query of `set` under `api`).
pub fn rows_and_next_of(
    api: &str,
    set: &str,
    body: &Value,
) -> Result<(Vec<Value>, Option<String>), PluginError> {
    let Some(rows) = body.get("value").and_then(Value::as_array) else {
        return Err(PluginError::Remote(RemoteFailure {
            status: 200,
            message: "Dataverse answered without a `value` array of rows".into(),
        }));
    };
    let next = match body.get("@odata.nextLink").and_then(Value::as_str) {
        Some(n) if !n.trim().is_empty() => {
            if !is_set_link(api, set, n) {
                return Err(PluginError::Remote(RemoteFailure {
                    status: 200,
                    message: format!(
                        "Dataverse's next link {n:?} leaves {api}/{set}; refusing to follow it"
                    ),
                }));
            }
            Some(n.to_owned())
        }
        _ => None,
    };
    Ok((rows.clone(), next))
}

/// A channel status of Dataverse's choice (0 Not Run, 1 Success, 2 Failure).
pub fn channel_status(v: &Value) -> ChannelStatus {
    match v.as_i64() {
        Some(1) => ChannelStatus::Success,
        Some(2) => ChannelStatus::Failure,
        _ => ChannelStatus::NotRun,
    }
}

/// The Dataverse choice value of a channel status.
pub fn status_code(s: ChannelStatus) -> i64 {
    match s {
        ChannelStatus::NotRun => 0,
        ChannelStatus::Success => 1,
        ChannelStatus::Failure => 2,
    }
}

pub(crate) fn text(row: &Value, field: &str) -> Option<String> {
    row.get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A mailbox row as a canonical mailbox; none without an id or an e-mail address.
pub fn mailbox_item(row: &Value) -> Option<Item> {
    let id = text(row, "mailboxid")?;
    let address = text(row, "emailaddress")?;
    let enabled = [
        "enabledforincomingemail",
        "enabledforoutgoingemail",
        "enabledforact",
    ]
    .iter()
    .any(|f| row.get(*f) == Some(&Value::Bool(true)));
    Some(Item {
        id,
        version: text(row, "@odata.etag"),
        removed: None,
        body: Some(ItemBody::Mailbox(Mailbox {
            address,
            display_name: text(row, "name"),
            enabled,
            approved: row.get("emailrouteraccessapproval").and_then(Value::as_i64) == Some(1),
            incoming_status: channel_status(&row["incomingemailstatus"]),
            outgoing_status: channel_status(&row["outgoingemailstatus"]),
            calendar_status: channel_status(&row["actstatus"]),
        })),
    })
}

// ----------------------------------------------------------------------------------------------
// push

/// The PATCH body of an update of `fields` (canonical names, snake or kebab case) to `m`.
pub fn patch_body(
    m: &Mailbox,
    fields: &[String],
    now: &str,
) -> Result<Map<String, Value>, PluginError> {
    let mut body = Map::new();
    let mut status_written = false;
    for name in fields {
        let field = name.trim().to_ascii_lowercase().replace('-', "_");
        match field.as_str() {
            "incoming_status" => {
                body.insert(
                    "incomingemailstatus".into(),
                    json!(status_code(m.incoming_status)),
                );
                status_written = true;
            }
            "outgoing_status" => {
                body.insert(
                    "outgoingemailstatus".into(),
                    json!(status_code(m.outgoing_status)),
                );
                status_written = true;
            }
            "calendar_status" => {
                body.insert("actstatus".into(), json!(status_code(m.calendar_status)));
                status_written = true;
            }
            "enabled" => {
                for f in [
                    "enabledforincomingemail",
                    "enabledforoutgoingemail",
                    "enabledforact",
                ] {
                    body.insert(f.into(), json!(m.enabled));
                }
            }
            "approved" => {
                // 1 Approved, 2 Pending Approval.
                body.insert(
                    "emailrouteraccessapproval".into(),
                    json!(if m.approved { 1 } else { 2 }),
                );
            }
            _ => {
                return Err(PluginError::invalid_field(
                    name.clone(),
                    format!(
                        "not a field this connector writes; it writes {}",
                        WRITABLE.join(", ")
                    ),
                ))
            }
        }
    }
    if status_written {
        body.insert("testmailboxaccesscompletedon".into(), json!(now));
        body.insert("testemailconfigurationscheduled".into(), json!(false));
    }
    Ok(body)
}

pub(crate) fn action_name(a: WriteAction) -> &'static str {
    match a {
        WriteAction::Create => "create",
        WriteAction::Update => "update",
        WriteAction::Deactivate => "deactivate",
        WriteAction::Reactivate => "reactivate",
        WriteAction::Delete => "delete",
    }
}

/// One update of a mailbox row.
pub fn write_mailbox(api: &str, op: &WriteOp, now: &str) -> Result<WriteOk, PluginError> {
    if op.action != WriteAction::Update {
        return Err(PluginError::Unsupported(format!(
            "{} is not supported: this connector only updates existing Dataverse mailboxes (Dataverse creates and removes a mailbox with its user or queue)",
            action_name(op.action)
        )));
    }
    let id =
        op.target_id.as_deref().map(str::trim).ok_or_else(|| {
            PluginError::invalid_field("target-id", "an update needs the mailboxid")
        })?;
    if !is_guid(id) {
        return Err(PluginError::invalid_field(
            "target-id",
            format!("{id:?} is not a mailboxid (a GUID)"),
        ));
    }
    let id = id.to_ascii_lowercase();
    let mailbox = match &op.body {
        Some(ItemBody::Mailbox(m)) => m,
        Some(_) => return Err(PluginError::invalid_field("body", "expected a mailbox")),
        None => {
            return Err(PluginError::invalid_field(
                "body",
                "an update needs the mailbox's desired state",
            ))
        }
    };
    let body = patch_body(mailbox, &op.fields, now)?;
    if body.is_empty() {
        return Ok(WriteOk {
            target_id: id,
            version: None,
        });
    }
    let version = patch_row(api, "mailboxes", "mailboxid", &id, body)?;
    Ok(WriteOk {
        target_id: id,
        version,
    })
}

/// `PATCH <set>(<id>)?$select=<key>` of `body` to an existing row, `If-Match: *` (without it a
/// PATCH is an upsert and would create the row); answers the row's new `@odata.etag`
/// (`Prefer: return=representation`, else the `ETag` header of a 204).
pub(crate) fn patch_row(
    api: &str,
    set: &str,
    key: &str,
    id: &str,
    body: Map<String, Value>,
) -> Result<Option<String>, PluginError> {
    let payload = serde_json::to_vec(&Value::Object(body))
        .map_err(|e| PluginError::invalid(format!("cannot encode the update: {e}")))?;
    let r = request(Method::Patch, format!("{api}/{set}({id})?$select={key}"))
        .header("If-Match", "*")
        .header("Prefer", "return=representation")
        .header("Content-Type", "application/json")
        .body(payload)
        .send()?;
    Ok(match r.status() {
        204 => r.header("ETag").map(str::to_owned),
        200..=299 => read_json(r)?
            .get("@odata.etag")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => return Err(classify(&r)),
    })
}

/// `ms` since the Unix epoch as an ISO 8601 UTC date-time, `2026-01-01T00:00:00Z`.
pub fn iso_utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date of a day count (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// ----------------------------------------------------------------------------------------------
// HTTP

fn request(method: Method, url: impl Into<String>) -> Request {
    Request::new(method, url)
        .credential(CREDENTIAL)
        .header("Accept", "application/json")
        .header("OData-MaxVersion", "4.0")
        .header("OData-Version", "4.0")
}

fn get_json(url: &str, page_size: Option<u32>) -> Result<Value, PluginError> {
    let mut req = request(Method::Get, url);
    if let Some(n) = page_size {
        req = req.header("Prefer", format!("odata.maxpagesize={n}"));
    }
    read_json(req.send()?)
}

/// The JSON body of a 2xx answer; other answers classified.
pub fn read_json(r: Response) -> Result<Value, PluginError> {
    if !(200..300).contains(&r.status()) {
        return Err(classify(&r));
    }
    serde_json::from_slice(r.bytes()).map_err(|e| {
        PluginError::Remote(RemoteFailure {
            status: r.status(),
            message: format!(
                "Dataverse answered HTTP {} with a body that is not valid JSON ({e}); the answer may have been cut short, try again",
                r.status()
            ),
        })
    })
}

/// Dataverse's error (`{"error":{"code":…,"message":…}}`) as `message [code]`.
pub fn dataverse_error(r: &Response) -> Option<String> {
    let v: Value = serde_json::from_slice(r.bytes()).ok()?;
    let message = v["error"]["message"].as_str()?.trim();
    Some(
        match v["error"]["code"].as_str().filter(|c| !c.is_empty()) {
            Some(code) => format!("{message} [{code}]"),
            None => message.to_owned(),
        },
    )
}

fn detail(r: &Response) -> String {
    if let Some(m) = dataverse_error(r) {
        return m;
    }
    let text: String = r.text().trim().chars().take(300).collect();
    if !text.is_empty() {
        return text;
    }
    r.header("WWW-Authenticate")
        .map(|w| {
            format!(
                "WWW-Authenticate: {}",
                w.chars().take(300).collect::<String>()
            )
        })
        .unwrap_or_default()
}

/// Classifies a non-2xx Dataverse answer.
pub fn classify(r: &Response) -> PluginError {
    let status = r.status();
    let detail = detail(r);
    let with = |what: &str| {
        if detail.is_empty() {
            format!("{what} (HTTP {status})")
        } else {
            format!("{what} (HTTP {status}): {detail}")
        }
    };
    let retry_after = r.header("Retry-After").and_then(parse_retry_after);
    match status {
        400 => PluginError::invalid(with("Dataverse rejected the request")),
        401 => PluginError::Auth(with("Dataverse refused the token")),
        403 => PluginError::Forbidden(with("Dataverse refused the application user the operation")),
        404 => PluginError::NotFound(with("Dataverse has no such row")),
        409 | 412 => PluginError::Conflict(with("the row changed in Dataverse or already exists")),
        429 => PluginError::Throttled(Throttle {
            retry_after_ms: retry_after,
            message: with("Dataverse's service protection limits were hit"),
        }),
        500..=599 => match retry_after {
            Some(ms) => PluginError::Throttled(Throttle {
                retry_after_ms: Some(ms),
                message: with("Dataverse is busy"),
            }),
            None => PluginError::Transient(with("Dataverse failed to answer")),
        },
        _ => classify_status(status, r.header("Retry-After"), &detail),
    }
}

// ----------------------------------------------------------------------------------------------
// test-connection

const SIGN_IN_REMEDY: &str = "check the credential: the app registration's client id and client secret (its Value, not its Secret ID), the tenant in the token URL and the scope <url>/.default; and that an application user for the app exists in the environment (Power Platform admin center > Environments > the environment > Settings > Users + permissions > Application users)";
const ROLE_REMEDY: &str = "give the application user a security role with Read and Write on Mailbox (Power Platform admin center > Environments > the environment > Settings > Users + permissions > Application users > Edit security roles)";

fn endpoint_failure(e: &PluginError, api: &str) -> Finding {
    match e {
        PluginError::Forbidden(m) => Finding::failed(
            "endpoint",
            format!("the host refused the request to {api}: {m}"),
            "allow the environment's host on the connection (--allow-host '*.dynamics.com'); the plugin may only reach *.dynamics.com",
        ),
        PluginError::Throttled(t) => Finding::failed(
            "endpoint",
            format!("Dataverse is throttling this application user: {}", t.message),
            "wait for the service protection window (up to 5 minutes) and try again; spread other integrations' load",
        ),
        other => Finding::failed(
            "endpoint",
            format!("Dataverse could not be reached at {api}: {}", other.describe()),
            "check url (the environment URL, e.g. https://contoso.crm.dynamics.com), DNS and the network; the environment may be disabled, in administration mode or being updated: check it in the Power Platform admin center, then try again",
        ),
    }
}

fn test_connection(cfg: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    let api = match api_root_of(&cfg.url) {
        Ok(api) => api,
        Err((cause, remedy)) => {
            out.push(Finding::failed("endpoint", cause, remedy));
            return out;
        }
    };
    let who = request(Method::Get, format!("{api}/WhoAmI")).send();
    let r = match who {
        Ok(r) => r,
        Err(PluginError::Auth(m)) => {
            out.push(Finding {
                check: "endpoint".into(),
                outcome: Outcome::Skipped,
                cause: Some("the sign-in failed before Dataverse was asked".into()),
                remedy: None,
            });
            out.push(Finding::failed(
                "credentials",
                format!("the sign-in for Dataverse failed: {m}"),
                SIGN_IN_REMEDY,
            ));
            return out;
        }
        Err(e) => {
            out.push(endpoint_failure(&e, &api));
            return out;
        }
    };
    match r.status() {
        200..=299 => {
            let v: Option<Value> = serde_json::from_slice(r.bytes()).ok();
            if v.as_ref().and_then(|v| v["UserId"].as_str()).is_none() {
                out.push(Finding::failed(
                    "endpoint",
                    format!("{api}/WhoAmI answered, but not with Dataverse's WhoAmI response"),
                    "check url: it must be the environment's root, e.g. https://contoso.crm.dynamics.com",
                ));
                return out;
            }
            out.push(Finding::ok("endpoint"));
            out.push(Finding::ok("credentials"));
        }
        401 => {
            out.push(Finding::ok("endpoint"));
            out.push(Finding::failed(
                "credentials",
                format!("Dataverse refused the token: HTTP 401 {}", detail(&r))
                    .trim_end()
                    .to_owned(),
                SIGN_IN_REMEDY,
            ));
            return out;
        }
        403 => {
            out.push(Finding::ok("endpoint"));
            out.push(Finding::failed(
                "credentials",
                format!(
                    "Dataverse refused the application user: HTTP 403 {}",
                    detail(&r)
                )
                .trim_end()
                .to_owned(),
                ROLE_REMEDY,
            ));
            return out;
        }
        404 => {
            out.push(Finding::failed(
                "endpoint",
                format!("there is no Dataverse Web API at {api} (HTTP 404)"),
                URL_REMEDY,
            ));
            return out;
        }
        _ => {
            out.push(endpoint_failure(&classify(&r), &api));
            return out;
        }
    }
    let read = request(
        Method::Get,
        format!("{api}/mailboxes?$select=mailboxid&$top=1"),
    )
    .send();
    out.push(match read {
        Ok(r) if (200..300).contains(&r.status()) => match read_json(r) {
            Ok(_) => Finding::ok("read-mailboxes"),
            Err(e) => Finding::failed("read-mailboxes", e.describe(), "try again later"),
        },
        Ok(r) if r.status() == 403 => Finding::failed(
            "read-mailboxes",
            format!(
                "Dataverse refused to read mailboxes: HTTP 403 {}",
                detail(&r)
            )
            .trim_end()
            .to_owned(),
            ROLE_REMEDY,
        ),
        Ok(r) => Finding::failed(
            "read-mailboxes",
            format!("reading mailboxes failed: {}", classify(&r).describe()),
            "try again later",
        ),
        Err(e) => Finding::failed("read-mailboxes", e.describe(), "try again later"),
    });
    out
}

#[cfg(test)]
mod tests;
