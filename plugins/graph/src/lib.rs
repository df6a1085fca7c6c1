//! `graph`: Microsoft 365 / Entra ID users through Microsoft Graph.
//!
//! Authentication is the host's business: the connection's `default` credential is an
//! `oauth2-client-credentials` secret and the host adds the bearer token to every request that
//! names it. This plugin never sees a token.
//!
//! - `pull(scope = "users")` reads `users/delta`: the first call (no cursor) starts a full pass
//!   with a `$select` of the fields the contact flow needs; every call reads one page and
//!   returns the `@odata.nextLink` as cursor (`more = true`); the last page returns the
//!   `@odata.deltaLink` as the durable cursor (`more = false`). Pulling from a delta link starts an
//!   incremental pass (`full = false`) with only the changes; `@removed` entries arrive as
//!   removals.
//! - A delta or skip token the service no longer knows (any HTTP 410: `SyncStateNotFound`,
//!   `resyncRequired`, or a 410 whose `Location` names a fresh initial query) restarts a full
//!   read: the page is empty with `cursor = None, more = true, full = true` and a warning is
//!   logged. The engine then pulls from no cursor, i.e. our own initial query with its `$select`
//!   (what the `Location` header points at, too), and reconciles the full pass against its links;
//!   nothing is re-imported blindly. We chose this over an error so that the engine needs no
//!   Graph-specific error class to recover.
//! - Graph represents updated users by "at least the properties that have been updated": in a
//!   delta round an entry missing any selected property is read again in full (`$batch` of
//!   `GET users/{id}`) so that absent properties never read as blanks (no licences, no name). In a
//!   full pass an absent property is a null one.
//! - Licences are resolved to their `skuPartNumber` through `subscribedSkus`, cached in state
//!   (`graph:skus`) for a day or until an unknown SKU shows up.
//! - With `"with_groups": true` every user's groups are read through
//!   `users/{id}/transitiveMemberOf/microsoft.graph.group`, 20 users per `$batch`.
//! - Group membership changes are not reported by `users/delta`, so with `with_groups` a round
//!   also reads `groups/delta` (`$select=id,displayName,members`) from its own delta link,
//!   before the users pages, one page a call (a groups page with a next link answers
//!   `more = true` with only the users it affected). Every user in a changed group's
//!   `members@delta` (added or `@removed`) and every user inside a group that was added to or
//!   removed from a group (`groups/{id}/transitiveMembers/microsoft.graph.user`) is read again
//!   (`$batch` of `GET users/{id}` with the users `$select`, plus its groups) and returned with
//!   the page, unless the page brings it anyway; one that no longer exists is left out
//!   (`users/delta` reports the removal). A deleted group does not say who its members were:
//!   they keep it until they are read again for another reason.
//! - With `with_groups` the cursor is JSON carrying both links
//!   (`{"users": …, "groups": …}`, see [`UsersCursor`]). A bare string (the cursor stored
//!   before groups were tracked, or without `with_groups`) is a users link whose groups link is
//!   unknown: the round then starts `groups/delta` afresh. A full groups round (no groups link,
//!   a full users pass, or a groups token Graph answers HTTP 410 for, which is logged and never
//!   fails the pull) reports no membership changes; it only yields the groups delta link for
//!   the next round. A full users pass reads every user's groups anyway. Next links (groups
//!   rounds and `transitiveMembers`) must stay on the Graph origin.
//! - `select-fields` (WIT 0.1.2) extends the `users` scope with directory properties the
//!   mapper's rules name: `users?select=companyName,extensionAttribute3`. Those are added to every
//!   `$select` and arrive as item attributes ([`fields`] lists what is readable); a property
//!   Graph cannot return in a delta query is refused with the readable list.
//! - `pull(scope = "mailboxes")` discovers mailboxes: always a full pass over
//!   `users?$select=id,mail,displayName,userPrincipalName`, one page a call (the
//!   `@odata.nextLink` is the cursor, same-origin only); every user with a non-empty `mail`
//!   becomes an item with a `mailbox` body (disabled, unapproved, statuses `not-run`: the host
//!   keeps the real flags). Users without `mail` have no mailbox and are left out.
//! - Mailbox scopes (WIT 0.1.3 `mailbox-api`): `calendar:mailbox=UPN,past=N,future=M`,
//!   `contacts:mailbox=UPN`, `tasks:mailbox=UPN`, read through Graph delta queries and written
//!   with POST / PATCH / DELETE; see [`mailbox`].
//! - E-mail scopes (core `connector-api`, `email-message` bodies, for Dynamics 365 server-side
//!   synchronization): `inbox:mailbox=<address>` reads the Inbox through the messages delta
//!   query (read-only), `outbox:mailbox=<address>` sends mail as the user (`sendMail`, create
//!   only; with `check=true` a pull opens the Sent Items with the outgoing app, Test & Enable's
//!   check); see [`mail`]. They need the `Mail.Read` and `Mail.Send` application permissions.
//! - The sync owner of a mailbox (WIT 0.1.5 `mailbox-owner-api`): a single-value extended
//!   property of the mailbox's root folder, read with `GET mailFolders/msgfolderroot` and
//!   written with `PATCH` (`Mail.ReadWrite`); see [`owner`].

use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use syncbridge_sdk::http::{classify_status, Request, Response};
use syncbridge_sdk::prelude::*;
use syncbridge_sdk::{clock, log, paging, state, url};

pub mod fields;
pub mod mail;
pub mod mailbox;
pub mod owner;
pub use fields::UserFields;

/// Connection configuration.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct Config {
    /// Graph root, default `https://graph.microsoft.com/v1.0` (or a national cloud's root).
    #[serde(default = "default_graph_url")]
    pub graph_url: String,
    /// Tenant id or domain; checked against `organization` by `test-connection`.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Read every user's groups (`transitiveMemberOf`); default false.
    #[serde(default)]
    pub with_groups: bool,
    /// Mailboxes (UPN or address) `test-connection` opens as the sync would (the app's
    /// application permission to each calendar): the mailboxes a diagnosis checks.
    #[serde(default)]
    pub test_mailboxes: Vec<String>,
    /// The Graph root mail is sent through (`outbox:` scopes), when it is not `graph_url`
    /// (Dynamics' "Outgoing Server Location").
    #[serde(default)]
    pub outgoing_url: Option<String>,
    /// The credential slot of the app that sends (`outbox:` scopes), when it is not the
    /// `default` one ("Use same settings for Outgoing" off).
    #[serde(default)]
    pub outgoing_credential: Option<String>,
}

fn default_graph_url() -> String {
    "https://graph.microsoft.com/v1.0".into()
}

impl Config {
    fn root(&self) -> &str {
        self.graph_url.trim_end_matches('/')
    }

    /// Where mail is sent and with which credential slot: the outgoing root and app when
    /// configured.
    fn send_via(&self) -> (&str, &str) {
        (
            self.outgoing_url
                .as_deref()
                .map(|u| u.trim_end_matches('/'))
                .unwrap_or(self.root()),
            self.outgoing_credential.as_deref().unwrap_or(CREDENTIAL),
        )
    }
}

/// Properties read from `users/delta`.
pub const USER_SELECT: &str = "id,userPrincipalName,mail,givenName,surname,displayName,jobTitle,businessPhones,mobilePhone,department,accountEnabled,assignedLicenses";

/// State key of the subscribed-SKU cache.
pub const SKU_CACHE_KEY: &str = "graph:skus";
/// State key remembering whether the running `users` pass is a full read.
pub const PASS_KEY: &str = "graph:users:full-pass";
const SKU_CACHE_TTL_MS: u64 = 24 * 3600 * 1000;
pub(crate) const CREDENTIAL: &str = "default";

/// The connector.
pub struct Graph;

impl Connector for Graph {
    type Config = Config;

    fn describe() -> Description {
        Description {
            reads: vec![ItemKind::DirectoryUser, ItemKind::EmailMessage],
            writes: vec![ItemKind::EmailMessage],
            credential_slots: vec![CREDENTIAL.into()],
            ..Description::named("Microsoft 365 (Graph)")
        }
    }

    fn check_config(c: &Config) -> Vec<Finding> {
        if url::origin(&c.graph_url).is_none() {
            return vec![Finding::failed(
                "config",
                format!("graph_url {:?} is not an http(s) URL", c.graph_url),
                "use https://graph.microsoft.com/v1.0 (or the national cloud's Graph root)",
            )];
        }
        if let Some(o) = c
            .outgoing_url
            .as_deref()
            .filter(|o| url::origin(o).is_none())
        {
            return vec![Finding::failed(
                "config",
                format!("outgoing_url {o:?} is not an http(s) URL"),
                "use the Graph root mail is sent through, or leave outgoing_url out to send through graph_url",
            )];
        }
        let mut out = vec![Finding::ok("config")];
        if c.tenant.as_deref().is_none_or(str::is_empty) {
            out.push(Finding {
                check: "tenant".into(),
                outcome: Outcome::Warning,
                cause: Some("no tenant is configured, so test-connection cannot check that the credentials belong to the right customer".into()),
                remedy: Some("set \"tenant\" to the customer's tenant id or initial domain".into()),
            });
        }
        out
    }

    fn test_connection(cfg: &Config) -> Result<Vec<Finding>, PluginError> {
        test_connection(cfg)
    }

    fn pull(cfg: &Config, request: PullRequest) -> Result<Page, PluginError> {
        if let Some(scope) = mail::MailScope::of(&request.scope) {
            return mail::pull(cfg, &scope?, &request);
        }
        if let Some(fields) = UserFields::of_scope(&request.scope) {
            let fields = fields?;
            if cfg.with_groups {
                return pull_users_with_groups(
                    cfg,
                    &fields,
                    request.cursor.as_deref(),
                    request.max_items,
                );
            }
            // A cursor written while groups were read keeps its users link.
            let cursor = request.cursor.as_deref().map(UsersCursor::parse);
            let link = cursor.as_ref().and_then(|c| c.users.as_deref());
            return pull_users(cfg, &fields, link, request.max_items, &[]);
        }
        match request.scope.as_str() {
            "mailboxes" => pull_mailboxes(cfg, request.cursor.as_deref(), request.max_items),
            other => Err(PluginError::invalid_field(
                "scope",
                format!("unknown scope {other:?}; this connector reads \"users\", \"mailboxes\", \"inbox:mailbox=<address>\" and \"outbox:mailbox=<address>\""),
            )),
        }
    }

    /// Users by `id:<object id>` (the engine re-reads quarantined users this
    /// way); a user Graph no longer has comes back as a removal.
    /// `users` reads the directory properties field filters name (see [`fields`]);
    /// other scopes read no extra fields.
    fn select_fields(
        _cfg: &Config,
        scope: &str,
        fields: Vec<String>,
    ) -> Result<String, PluginError> {
        match UserFields::of_scope(scope) {
            Some(current) => Ok(current?.with(&fields)?.scope()),
            None if fields.is_empty() => Ok(scope.to_owned()),
            None => Err(PluginError::invalid_field(
                fields[0].as_str(),
                format!("scope {scope:?} reads no fields beyond its canonical ones; field filters read the \"users\" scope"),
            )),
        }
    }

    /// Writes go to `outbox:mailbox=…` (sending mail) only; see [`mail::push`].
    fn push(
        cfg: &Config,
        scope: &str,
        batch: Vec<WriteOp>,
    ) -> Result<Vec<WriteResult>, PluginError> {
        match mail::MailScope::of(scope) {
            Some(s) => Ok(mail::push(cfg, &s?, batch)),
            None if UserFields::of_scope(scope).is_some() || scope == "mailboxes" => {
                Err(PluginError::Unsupported(format!(
                    "scope {scope:?} is read-only; this connector writes \"outbox:mailbox=<address>\" (sending mail)"
                )))
            }
            None => Err(PluginError::invalid_field(
                "scope",
                format!("unknown scope {scope:?}; this connector writes \"outbox:mailbox=<address>\""),
            )),
        }
    }

    fn mailbox_scopes() -> Vec<String> {
        mailbox::KINDS.iter().map(|k| (*k).to_owned()).collect()
    }

    fn pull_mailbox(
        cfg: &Config,
        request: PullRequest,
    ) -> Result<syncbridge_sdk::types::mailbox::MailboxPage, PluginError> {
        mailbox::pull(cfg, request)
    }

    fn lookup_mailbox(
        cfg: &Config,
        scope: &str,
        keys: Vec<String>,
    ) -> Result<Vec<syncbridge_sdk::types::mailbox::MailboxItem>, PluginError> {
        mailbox::lookup(cfg, scope, keys)
    }

    fn push_mailbox(
        cfg: &Config,
        scope: &str,
        batch: Vec<syncbridge_sdk::types::mailbox::MailboxWriteOp>,
    ) -> Result<Vec<WriteResult>, PluginError> {
        mailbox::push(cfg, scope, batch)
    }

    fn read_sync_owner(cfg: &Config, mailbox: &str) -> Result<Option<String>, PluginError> {
        owner::read(cfg, mailbox)
    }

    fn write_sync_owner(cfg: &Config, mailbox: &str, owner: &str) -> Result<(), PluginError> {
        owner::write(cfg, mailbox, owner)
    }

    /// Messages of `inbox:mailbox=…` by id, see [`mail::lookup`].
    fn lookup(cfg: &Config, scope: &str, keys: Vec<String>) -> Result<Vec<Item>, PluginError> {
        if let Some(scope) = mail::MailScope::of(scope) {
            return mail::lookup(cfg, &scope?, keys);
        }
        let Some(fields) = UserFields::of_scope(scope) else {
            return Err(PluginError::invalid_field(
                "scope",
                format!("unknown scope {scope:?}; this connector looks up \"users\" and \"inbox:mailbox=<address>\""),
            ));
        };
        let fields = fields?;
        let mut values: Vec<Value> = keys
            .iter()
            .filter_map(|k| k.strip_prefix("id:"))
            .filter(|id| !id.is_empty() && !id.contains(['/', '?', '#']))
            .map(|id| json!({ "id": id }))
            .collect();
        complete_partial_users(cfg, &fields, &mut values)?;
        let skus = sku_names(cfg, &values)?;
        let mut items: Vec<Item> = values.iter().map(|v| to_item(v, &skus, &fields)).collect();
        if cfg.with_groups {
            attach_groups(cfg, &mut items)?;
        }
        Ok(items)
    }
}

syncbridge_sdk::export_connector!(Graph);

// ----------------------------------------------------------------------------------------------
// pull

fn is_delta_link(link: &str) -> bool {
    link.contains("$deltatoken=") || link.contains("%24deltatoken=")
}

/// One page of `users/delta` from `cursor` (a users link; `None` starts a full pass). `extra`
/// names users read in addition (`$batch` of `GET users/{id}`, e.g. whose group membership
/// changed) unless the page brings them anyway; one that no longer exists is left out.
fn pull_users(
    cfg: &Config,
    fields: &UserFields,
    cursor: Option<&str>,
    max_items: u32,
    extra: &[String],
) -> Result<Page, PluginError> {
    let (link, full) = match cursor {
        None => {
            state::set(PASS_KEY, "1");
            (
                format!("{}/users/delta?$select={}", cfg.root(), fields.select()),
                true,
            )
        }
        Some(link) if is_delta_link(link) => {
            state::set(PASS_KEY, "0");
            (link.to_owned(), false)
        }
        Some(link) => (
            link.to_owned(),
            state::get(PASS_KEY).as_deref() != Some("0"),
        ),
    };
    if cursor.is_some() && !url::same_origin(&link, cfg.root()) {
        return Err(foreign_cursor(cfg));
    }
    let page_size = max_items.clamp(1, 999);
    let response = Request::get(&link)
        .credential(CREDENTIAL)
        .header("Accept", "application/json")
        .header("Prefer", format!("odata.maxpagesize={page_size}"))
        .send()?;
    if response.status() == 410 {
        log::warn!(
            "Graph no longer knows the users delta token (HTTP 410 {}); restarting with a full read, the engine reconciles it against its links",
            error_code(&response).unwrap_or_default()
        );
        state::delete(PASS_KEY);
        return Ok(Page {
            items: Vec::new(),
            cursor: None,
            more: true,
            full: true,
        });
    }
    let body: Value = response.json()?;
    let mut values = body["value"].as_array().cloned().unwrap_or_default();
    if !full {
        // In a full pass a missing property is a null one; in a delta round it may be unchanged.
        complete_partial_users(cfg, fields, &mut values)?;
    }
    let extra: Vec<String> = extra
        .iter()
        .filter(|id| !values.iter().any(|v| v["id"].as_str() == Some(id.as_str())))
        .cloned()
        .collect();
    values.extend(read_users(cfg, fields, &extra)?);
    let skus = sku_names(cfg, &values)?;
    let mut items: Vec<Item> = values.iter().map(|v| to_item(v, &skus, fields)).collect();
    if cfg.with_groups {
        attach_groups(cfg, &mut items)?;
    }
    let next = body["@odata.nextLink"].as_str().map(str::to_owned);
    let delta = body["@odata.deltaLink"].as_str().map(str::to_owned);
    let (cursor, more) = match (next, delta) {
        (Some(n), _) => (Some(n), true),
        (None, Some(d)) => {
            state::delete(PASS_KEY);
            (Some(d), false)
        }
        (None, None) => {
            return Err(PluginError::Remote(RemoteFailure {
                status: 200,
                message: "the users/delta page has neither @odata.nextLink nor @odata.deltaLink"
                    .into(),
            }))
        }
    };
    Ok(Page {
        items,
        cursor,
        more,
        full,
    })
}

/// Properties read from `groups/delta`: `members` makes Graph report membership changes
/// (`members@delta`).
pub const GROUP_SELECT: &str = "id,displayName,members";

/// The `users` cursor when groups are read: both delta links, as JSON. A bare string (what
/// was stored before groups were tracked, and what is stored without `with_groups`) is a
/// users link with the groups link unknown.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, Deserialize)]
pub struct UsersCursor {
    /// The `users/delta` link: the delta link between rounds, a next link within a pass;
    /// `None` starts a full pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<String>,
    /// The `groups/delta` link: the delta link between rounds, the next link while
    /// `groups_paging`; `None` starts a full groups round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<String>,
    /// The round is still reading `groups/delta` pages (before its first users page).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub groups_paging: bool,
    /// The `groups/delta` round being paged is a full one (it reports no changes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub groups_full: bool,
}

impl UsersCursor {
    /// Parses a stored cursor: our JSON, or a bare users link.
    pub fn parse(s: &str) -> UsersCursor {
        if s.trim_start().starts_with('{') {
            if let Ok(c) = serde_json::from_str(s) {
                return c;
            }
        }
        UsersCursor {
            users: Some(s.to_owned()),
            ..UsersCursor::default()
        }
    }

    fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `pull(users)` with `with_groups`: a round first reads `groups/delta` from its own delta
/// link (one page a call), then the `users/delta` pages. Users whose membership changed are
/// returned with the page of the call that saw the change.
fn pull_users_with_groups(
    cfg: &Config,
    fields: &UserFields,
    cursor: Option<&str>,
    max_items: u32,
) -> Result<Page, PluginError> {
    let mut c = cursor.map(UsersCursor::parse).unwrap_or_default();
    for link in [&c.users, &c.groups].into_iter().flatten() {
        if !url::same_origin(link, cfg.root()) {
            return Err(foreign_cursor(cfg));
        }
    }
    let users_full = c.users.is_none();
    let round_start = c.users.as_deref().is_none_or(is_delta_link);
    let mut changed = Vec::new();
    if c.groups_paging || round_start {
        if !c.groups_paging {
            // A full users pass reads every user's groups anyway; the groups round only
            // has to yield a link for the next round.
            if users_full || !c.groups.as_deref().is_some_and(is_delta_link) {
                c.groups = None;
            }
            c.groups_full = c.groups.is_none();
        }
        let page = match groups_page(cfg, c.groups.as_deref(), max_items)? {
            Some(page) => page,
            None => {
                log::warn!("Graph no longer knows the groups delta token (HTTP 410); restarting groups/delta with a full round, membership changes since the last run are not reported");
                c.groups_full = true;
                groups_page(cfg, None, max_items)?.ok_or_else(|| {
                    PluginError::Remote(RemoteFailure {
                        status: 410,
                        message: "groups/delta refused its own initial query".into(),
                    })
                })?
            }
        };
        if !c.groups_full && !users_full {
            changed = changed_members(cfg, &page.value)?;
        }
        match page.link {
            GroupsLink::Next(next) => {
                // More groups pages first; the users of this one come now.
                let values = read_users(cfg, fields, &changed)?;
                let skus = sku_names(cfg, &values)?;
                let mut items: Vec<Item> =
                    values.iter().map(|v| to_item(v, &skus, fields)).collect();
                attach_groups(cfg, &mut items)?;
                return Ok(Page {
                    items,
                    cursor: Some(
                        UsersCursor {
                            groups: Some(next),
                            groups_paging: true,
                            ..c
                        }
                        .encode(),
                    ),
                    more: true,
                    full: users_full,
                });
            }
            GroupsLink::Delta(delta) => {
                c.groups = Some(delta);
                c.groups_paging = false;
                c.groups_full = false;
            }
        }
    }
    let mut page = pull_users(cfg, fields, c.users.as_deref(), max_items, &changed)?;
    page.cursor = page.cursor.map(|users| {
        UsersCursor {
            users: Some(users),
            ..c
        }
        .encode()
    });
    Ok(page)
}

/// Where a `groups/delta` page leads.
enum GroupsLink {
    Next(String),
    Delta(String),
}

/// One page of `groups/delta`.
struct GroupsPage {
    value: Vec<Value>,
    link: GroupsLink,
}

/// Reads one `groups/delta` page from `link` (`None`: the initial query); `None` when Graph no
/// longer knows the token (HTTP 410).
fn groups_page(
    cfg: &Config,
    link: Option<&str>,
    max_items: u32,
) -> Result<Option<GroupsPage>, PluginError> {
    let link = match link {
        Some(l) => l.to_owned(),
        None => format!("{}/groups/delta?$select={GROUP_SELECT}", cfg.root()),
    };
    let response = Request::get(&link)
        .credential(CREDENTIAL)
        .header("Accept", "application/json")
        .header(
            "Prefer",
            format!("odata.maxpagesize={}", max_items.clamp(1, 999)),
        )
        .send()?;
    if response.status() == 410 {
        return Ok(None);
    }
    let body: Value = response.json()?;
    let link = match (
        body["@odata.nextLink"].as_str(),
        body["@odata.deltaLink"].as_str(),
    ) {
        (Some(n), _) => GroupsLink::Next(paging::same_origin(cfg.root(), n)?),
        (None, Some(d)) => GroupsLink::Delta(paging::same_origin(cfg.root(), d)?),
        (None, None) => {
            return Err(PluginError::Remote(RemoteFailure {
                status: 200,
                message: "the groups/delta page has neither @odata.nextLink nor @odata.deltaLink"
                    .into(),
            }))
        }
    };
    Ok(Some(GroupsPage {
        value: body["value"].as_array().cloned().unwrap_or_default(),
        link,
    }))
}

/// The users whose (transitive) membership changed in a `groups/delta` page: every user in
/// `members@delta` (added or removed), and the users inside every group that was added to or
/// removed from a group. A deleted group does not say who its members were; they keep the
/// group until they are read again for another reason.
pub fn changed_member_ids(groups: &[Value]) -> (Vec<String>, Vec<String>) {
    let mut users: Vec<String> = Vec::new();
    let mut nested: Vec<String> = Vec::new();
    for g in groups {
        if g.get("@removed").is_some() {
            log::info!(
                "group {} was deleted; its members' groups are refreshed when they next change",
                g["id"].as_str().unwrap_or("?")
            );
            continue;
        }
        for m in g["members@delta"].as_array().into_iter().flatten() {
            let Some(id) = m["id"].as_str().filter(|id| !id.is_empty()) else {
                continue;
            };
            let kind = m["@odata.type"].as_str().unwrap_or("#microsoft.graph.user");
            let into = if kind.eq_ignore_ascii_case("#microsoft.graph.user") {
                &mut users
            } else if kind.eq_ignore_ascii_case("#microsoft.graph.group") {
                &mut nested
            } else {
                // Devices, service principals, org contacts: not users.
                continue;
            };
            if !into.iter().any(|x| x == id) {
                into.push(id.to_owned());
            }
        }
    }
    (users, nested)
}

fn changed_members(cfg: &Config, groups: &[Value]) -> Result<Vec<String>, PluginError> {
    let (mut users, nested) = changed_member_ids(groups);
    for gid in nested {
        if gid.contains(['/', '?', '#']) {
            continue;
        }
        let mut next = Some(format!(
            "{}/groups/{gid}/transitiveMembers/microsoft.graph.user?$select=id",
            cfg.root()
        ));
        while let Some(u) = next.take() {
            let response = Request::get(&u)
                .credential(CREDENTIAL)
                .header("Accept", "application/json")
                .send()?;
            if response.status() == 404 {
                // Deleted since; nobody is in it any more.
                break;
            }
            let body: Value = response.json()?;
            for m in body["value"].as_array().into_iter().flatten() {
                if let Some(id) = m["id"].as_str() {
                    if !users.iter().any(|x| x == id) {
                        users.push(id.to_owned());
                    }
                }
            }
            next = match body["@odata.nextLink"].as_str() {
                Some(n) => Some(paging::same_origin(cfg.root(), n)?),
                None => None,
            };
        }
    }
    Ok(users)
}

/// Reads users in full (`$batch` of `GET users/{id}` with [`USER_SELECT`], 20 a call); users
/// that do not exist (any more) are left out.
fn read_users(
    cfg: &Config,
    fields: &UserFields,
    ids: &[String],
) -> Result<Vec<Value>, PluginError> {
    let ids: Vec<&String> = ids
        .iter()
        .filter(|id| !id.is_empty() && !id.contains(['/', '?', '#']))
        .collect();
    let mut out = Vec::new();
    for chunk in ids.chunks(20) {
        let requests: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(n, id)| {
                json!({
                    "id": n.to_string(),
                    "method": "GET",
                    "url": format!("/users/{id}?$select={}", fields.select()),
                })
            })
            .collect();
        let mut answers = batch(cfg, requests)?;
        answers.sort_by_key(|(n, _, _)| *n);
        out.extend(
            answers
                .into_iter()
                .filter(|(n, status, _)| *n < chunk.len() && (200..300).contains(status))
                .map(|(_, _, body)| body),
        );
    }
    Ok(out)
}

/// Properties read by the `mailboxes` scope.
pub const MAILBOX_SELECT: &str = "id,mail,displayName,userPrincipalName";

/// One page of mailbox discovery: users with a mail address. Always a full pass.
fn pull_mailboxes(cfg: &Config, cursor: Option<&str>, max_items: u32) -> Result<Page, PluginError> {
    let link = match cursor {
        None => format!("{}/users?$select={MAILBOX_SELECT}", cfg.root()),
        Some(link) => link.to_owned(),
    };
    if cursor.is_some() && !url::same_origin(&link, cfg.root()) {
        return Err(foreign_cursor(cfg));
    }
    let page_size = max_items.clamp(1, 999);
    let body: Value = Request::get(&link)
        .credential(CREDENTIAL)
        .header("Accept", "application/json")
        .header("Prefer", format!("odata.maxpagesize={page_size}"))
        .send()?
        .json()?;
    let items = body["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(to_mailbox_item)
        .collect();
    let next = body["@odata.nextLink"].as_str().map(str::to_owned);
    let more = next.is_some();
    Ok(Page {
        items,
        cursor: next,
        more,
        full: true,
    })
}

/// Maps one `users` entry to a mailbox item; `None` for users without a mail address.
pub fn to_mailbox_item(v: &Value) -> Option<Item> {
    let address = str_field(v, "mail")?;
    let id = str_field(v, "id").unwrap_or_else(|| address.clone());
    let display_name = str_field(v, "displayName").or_else(|| str_field(v, "userPrincipalName"));
    Some(Item {
        id,
        version: None,
        removed: None,
        body: Some(ItemBody::Mailbox(Mailbox {
            address,
            display_name,
            enabled: false,
            approved: false,
            incoming_status: ChannelStatus::NotRun,
            outgoing_status: ChannelStatus::NotRun,
            calendar_status: ChannelStatus::NotRun,
        })),
    })
}

/// A cursor that leaves the Graph root would take the credential elsewhere.
fn foreign_cursor(cfg: &Config) -> PluginError {
    PluginError::invalid_field(
        "cursor",
        format!(
            "the cursor does not point at {}; refusing to send the credential elsewhere",
            url::origin(cfg.root()).unwrap_or_else(|| cfg.root().to_owned())
        ),
    )
}

fn str_field(v: &Value, name: &str) -> Option<String> {
    v.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Maps one `users/delta` entry to a canonical item.
pub fn to_item(v: &Value, skus: &BTreeMap<String, String>, fields: &UserFields) -> Item {
    let id = v["id"].as_str().unwrap_or_default().to_owned();
    if v.get("@removed").is_some() {
        // "deleted" (permanently) and "changed" (soft-deleted, restorable for 30 days) both mean
        // the user is gone from the directory; a restored user comes back as a normal entry.
        return Item {
            id,
            version: None,
            removed: Some(Removal::Deleted),
            body: None,
        };
    }
    let licenses = v["assignedLicenses"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l["skuId"].as_str())
                .map(|sku| License {
                    sku_id: sku.to_owned(),
                    sku_part_number: skus.get(&sku.to_ascii_lowercase()).cloned(),
                })
                .collect()
        })
        .unwrap_or_default();
    let business_phone = v["businessPhones"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .find(|s| !s.trim().is_empty())
        })
        .map(|s| s.trim().to_owned());
    let user = DirectoryUser {
        user_principal_name: str_field(v, "userPrincipalName").unwrap_or_default(),
        mail: str_field(v, "mail"),
        given_name: str_field(v, "givenName"),
        surname: str_field(v, "surname"),
        display_name: str_field(v, "displayName"),
        job_title: str_field(v, "jobTitle"),
        business_phone,
        mobile_phone: str_field(v, "mobilePhone"),
        department: str_field(v, "department"),
        account_enabled: v["accountEnabled"].as_bool().unwrap_or(true),
        licenses,
        groups: Vec::new(),
        attributes: fields.attributes(v),
    };
    Item {
        id,
        version: None,
        removed: None,
        body: Some(ItemBody::DirectoryUser(user)),
    }
}

/// Whether a delta entry lacks some of the selected properties. Graph represents an updated
/// user by "its id with *at least* the properties that have been updated"; a partial entry would
/// read as blanks (no licences, no name), so it is read again in full.
pub fn is_partial(v: &Value) -> bool {
    v.get("@removed").is_none() && USER_SELECT.split(',').any(|p| v.get(p).is_none())
}

/// Replaces partial delta entries by the full user (`$batch` of `GET users/{id}`, 20 a call);
/// a user gone in the meantime becomes a removal.
fn complete_partial_users(
    cfg: &Config,
    fields: &UserFields,
    values: &mut [Value],
) -> Result<(), PluginError> {
    let partial: Vec<usize> = (0..values.len())
        .filter(|&n| is_partial(&values[n]))
        .collect();
    for chunk in partial.chunks(20) {
        let requests: Vec<Value> = chunk
            .iter()
            .map(|&n| {
                json!({
                    "id": n.to_string(),
                    "method": "GET",
                    "url": format!("/users/{}?$select={}", values[n]["id"].as_str().unwrap_or_default(), fields.select()),
                })
            })
            .collect();
        for (n, status, body) in batch(cfg, requests)? {
            if !chunk.contains(&n) {
                continue;
            }
            match status {
                200..=299 => values[n] = body,
                404 => {
                    let id = values[n]["id"].clone();
                    values[n] = json!({"id": id, "@removed": {"reason": "deleted"}});
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Sends a `$batch`; answers `(request index, status, body)` for 2xx and 404 answers and fails
/// with the classified error of any other answer (a throttled inner request → `throttled`).
fn batch(cfg: &Config, requests: Vec<Value>) -> Result<Vec<(usize, u16, Value)>, PluginError> {
    let answer: Value = Request::post(format!("{}/$batch", cfg.root()))
        .credential(CREDENTIAL)
        .json(&json!({ "requests": requests }))?
        .send()?
        .json()?;
    let mut out = Vec::new();
    for r in answer["responses"].as_array().into_iter().flatten() {
        let Some(n) = r["id"].as_str().and_then(|s| s.parse::<usize>().ok()) else {
            continue;
        };
        let status = r["status"].as_u64().unwrap_or(0) as u16;
        if !(200..300).contains(&status) && status != 404 {
            let retry_after = r["headers"]
                .as_object()
                .and_then(|h| {
                    h.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                        .and_then(|(_, v)| v.as_str())
                })
                .map(str::to_owned);
            return Err(classify_status(
                status,
                retry_after.as_deref(),
                &r["body"].to_string(),
            ));
        }
        out.push((n, status, r["body"].clone()));
    }
    Ok(out)
}

#[derive(serde::Serialize, Deserialize, Default)]
struct SkuCache {
    fetched_ms: u64,
    names: BTreeMap<String, String>,
}

/// SKU id (lower case) → part number, from the state cache; refreshed when stale or when a
/// licence of `users` is not in it.
fn sku_names(cfg: &Config, users: &[Value]) -> Result<BTreeMap<String, String>, PluginError> {
    let cached: Option<SkuCache> =
        state::get(SKU_CACHE_KEY).and_then(|s| serde_json::from_str(&s).ok());
    let now = clock::now_ms();
    let needed: Vec<String> = users
        .iter()
        .filter_map(|u| u["assignedLicenses"].as_array())
        .flatten()
        .filter_map(|l| l["skuId"].as_str())
        .map(str::to_ascii_lowercase)
        .collect();
    if let Some(c) = &cached {
        let age = now.saturating_sub(c.fetched_ms);
        let unknown = needed.iter().any(|s| !c.names.contains_key(s));
        // An unknown SKU refreshes the cache, but at most once a minute.
        if age < SKU_CACHE_TTL_MS && (!unknown || age < 60_000) {
            return Ok(c.names.clone());
        }
    } else if needed.is_empty() {
        return Ok(BTreeMap::new());
    }
    let names = match fetch_skus(cfg) {
        Ok(n) => n,
        Err(PluginError::Forbidden(m)) => {
            log::warn!("cannot read subscribedSkus, licence names stay unresolved (grant Organization.Read.All): {m}");
            cached.map(|c| c.names).unwrap_or_default()
        }
        Err(e) => return Err(e),
    };
    let cache = SkuCache {
        fetched_ms: now,
        names,
    };
    state::set(
        SKU_CACHE_KEY,
        &serde_json::to_string(&cache).unwrap_or_default(),
    );
    Ok(cache.names)
}

fn fetch_skus(cfg: &Config) -> Result<BTreeMap<String, String>, PluginError> {
    let mut names = BTreeMap::new();
    let mut url = Some(format!(
        "{}/subscribedSkus?$select=skuId,skuPartNumber",
        cfg.root()
    ));
    while let Some(u) = url.take() {
        let body: Value = Request::get(&u)
            .credential(CREDENTIAL)
            .header("Accept", "application/json")
            .send()?
            .json()?;
        for s in body["value"].as_array().into_iter().flatten() {
            if let (Some(id), Some(part)) = (s["skuId"].as_str(), s["skuPartNumber"].as_str()) {
                names.insert(id.to_ascii_lowercase(), part.to_owned());
            }
        }
        url = body["@odata.nextLink"].as_str().map(str::to_owned);
    }
    Ok(names)
}

/// Reads `transitiveMemberOf` of every live user of the page through `$batch` (20 a call).
fn attach_groups(cfg: &Config, items: &mut [Item]) -> Result<(), PluginError> {
    let live: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, i)| i.body.is_some())
        .map(|(n, _)| n)
        .collect();
    for chunk in live.chunks(20) {
        let requests: Vec<Value> = chunk
            .iter()
            .map(|&n| {
                json!({
                    "id": n.to_string(),
                    "method": "GET",
                    "url": format!("/users/{}/transitiveMemberOf/microsoft.graph.group?$select=id,displayName", items[n].id),
                })
            })
            .collect();
        for (n, status, body) in batch(cfg, requests)? {
            if !chunk.contains(&n) {
                continue;
            }
            if status == 404 {
                // Deleted since the delta page was read; the next round reports it.
                continue;
            }
            let mut groups = Vec::new();
            push_groups(&mut groups, &body);
            let mut next = body["@odata.nextLink"].as_str().map(str::to_owned);
            while let Some(u) = next.take() {
                let body: Value = Request::get(&u).credential(CREDENTIAL).send()?.json()?;
                push_groups(&mut groups, &body);
                next = body["@odata.nextLink"].as_str().map(str::to_owned);
            }
            if let Some(ItemBody::DirectoryUser(u)) = items[n].body.as_mut() {
                u.groups = groups;
            }
        }
    }
    Ok(())
}

fn push_groups(out: &mut Vec<GroupMembership>, body: &Value) {
    for g in body["value"].as_array().into_iter().flatten() {
        let is_group = g["@odata.type"]
            .as_str()
            .is_none_or(|t| t.eq_ignore_ascii_case("#microsoft.graph.group"));
        if let (true, Some(id)) = (is_group, g["id"].as_str()) {
            out.push(GroupMembership {
                id: id.to_owned(),
                display_name: str_field(g, "displayName"),
                // From transitiveMemberOf: direct or through nested groups.
                transitive: true,
            });
        }
    }
}

// ----------------------------------------------------------------------------------------------
// test-connection

fn error_code(r: &Response) -> Option<String> {
    serde_json::from_slice::<Value>(r.bytes())
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
}

/// Cause and remedy for an Entra sign-in error message (as the host reports the token failure).
pub fn explain_sign_in(message: &str) -> (String, String) {
    let code = message
        .find("AADSTS")
        .map(|i| {
            message[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
        })
        .unwrap_or_default();
    let (cause, remedy) = match code.as_str() {
        "AADSTS7000215" => (
            "Entra ID refused the client secret (AADSTS7000215: invalid client secret)",
            "create a new client secret in the app registration (Certificates & secrets) and store its Value, not its Secret ID, in the connection",
        ),
        "AADSTS7000222" => (
            "the client secret has expired (AADSTS7000222)",
            "create a new client secret in the app registration and update the connection",
        ),
        "AADSTS50076" | "AADSTS50079" | "AADSTS50158" => (
            "Entra ID demands multi-factor authentication for this sign-in (AADSTS50076); app-only client-credential sign-ins cannot satisfy MFA",
            "use an app registration with a client secret (client credentials), not a user account, and exclude the workload identity from the Conditional Access policy that requires MFA",
        ),
        "AADSTS53003" => (
            "a Conditional Access policy blocked the sign-in (AADSTS53003)",
            "ask the customer's administrator to exclude the syncbridge app registration from the blocking Conditional Access policy",
        ),
        "AADSTS700016" => (
            "the application (client id) is not known in this tenant (AADSTS700016)",
            "check the client id and grant admin consent to the app in the customer's tenant",
        ),
        "AADSTS90002" | "AADSTS900023" => (
            "the tenant in the token URL does not exist (AADSTS90002)",
            "check the tenant id or domain in the credential's token URL",
        ),
        "AADSTS65001" | "AADSTS650056" => (
            "the application has not been granted consent in this tenant (AADSTS65001)",
            "have a Global Administrator grant admin consent to the app's Graph application permissions",
        ),
        "AADSTS7000112" => (
            "the application is disabled in this tenant (AADSTS7000112)",
            "re-enable the enterprise application in the customer's tenant",
        ),
        _ => (
            "Entra ID refused the sign-in",
            "check the client id, client secret and tenant of the connection's credential",
        ),
    };
    (format!("{cause}: {message}"), remedy.to_owned())
}

fn failed_from_error(check: &str, e: &PluginError) -> Finding {
    match e {
        PluginError::Auth(m) => {
            let (cause, remedy) = explain_sign_in(m);
            Finding::failed(check, cause, remedy)
        }
        PluginError::Forbidden(m) => Finding::failed(
            check,
            format!("the request was refused: {m}"),
            "allow the Graph host on the connection (--allow-host) or check the app's permissions",
        ),
        PluginError::Throttled(t) => Finding::failed(
            check,
            format!("Microsoft Graph is throttling this app: {}", t.message),
            "try again later",
        ),
        PluginError::Transient(m) => Finding::failed(
            check,
            format!("Microsoft Graph could not be reached: {m}"),
            "check the graph_url and the network, then try again",
        ),
        other => Finding::failed(
            check,
            other.describe(),
            "check the graph_url of the connection",
        ),
    }
}

fn probe(url: &str) -> Result<Response, PluginError> {
    Request::get(url)
        .credential(CREDENTIAL)
        .header("Accept", "application/json")
        .send()
}

fn test_connection(cfg: &Config) -> Result<Vec<Finding>, PluginError> {
    let mut out = Vec::new();
    let root = cfg.root();
    // 1. Sign-in (done by the host when the request names the credential) and tenant.
    let org = match probe(&format!(
        "{root}/organization?$select=id,displayName,verifiedDomains"
    )) {
        Err(e) => {
            out.push(failed_from_error("credentials", &e));
            return Ok(out);
        }
        Ok(r) => r,
    };
    match org.status() {
        200..=299 => out.push(Finding::ok("credentials")),
        401 => {
            out.push(Finding::failed(
                "credentials",
                format!(
                    "Microsoft Graph rejected the access token (HTTP 401 {})",
                    error_code(&org).unwrap_or_default()
                ),
                "the token URL must be the customer's tenant (https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token) and the scope https://graph.microsoft.com/.default",
            ));
            return Ok(out);
        }
        403 => out.push(Finding {
            check: "credentials".into(),
            outcome: Outcome::Warning,
            cause: Some("signed in, but the app may not read the organization (HTTP 403)".into()),
            remedy: Some(
                "grant the Organization.Read.All application permission and admin consent".into(),
            ),
        }),
        s => {
            out.push(Finding::failed(
                "credentials",
                format!(
                    "Microsoft Graph answered HTTP {s}: {}",
                    org.text().chars().take(200).collect::<String>()
                ),
                "check the graph_url of the connection",
            ));
            return Ok(out);
        }
    }
    if let (Some(tenant), true) = (
        cfg.tenant.as_deref().filter(|t| !t.is_empty()),
        org.status() == 200,
    ) {
        let v: Value = serde_json::from_slice(org.bytes()).unwrap_or_default();
        let o = &v["value"][0];
        let matches = o["id"]
            .as_str()
            .is_some_and(|id| id.eq_ignore_ascii_case(tenant))
            || o["verifiedDomains"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d["name"].as_str())
                .any(|d| d.eq_ignore_ascii_case(tenant));
        out.push(if matches {
            Finding::ok("tenant")
        } else {
            Finding::failed(
                "tenant",
                format!(
                    "the credentials sign in to tenant {} ({}), not {tenant}",
                    o["id"].as_str().unwrap_or("?"),
                    o["displayName"].as_str().unwrap_or("?")
                ),
                "use the customer's tenant id in the credential's token URL, or fix \"tenant\" in the configuration",
            )
        });
    }
    // 2. Reading users (User.Read.All).
    out.push(match probe(&format!("{root}/users?$top=1&$select=id")) {
        Err(e) => failed_from_error("read-users", &e),
        Ok(r) if (200..300).contains(&r.status()) => Finding::ok("read-users"),
        Ok(r) if r.status() == 403 => Finding::failed(
            "read-users",
            format!("the app may not read users (HTTP 403 {})", error_code(&r).unwrap_or_default()),
            "grant the User.Read.All application permission to the app registration and have an administrator grant admin consent",
        ),
        Ok(r) => Finding::failed(
            "read-users",
            format!("reading users answered HTTP {}", r.status()),
            "check the graph_url and the app's permissions",
        ),
    });
    // 3. Licence names (Organization.Read.All); also fills the cache.
    out.push(match fetch_skus(cfg) {
        Ok(names) => {
            let cache = SkuCache {
                fetched_ms: clock::now_ms(),
                names,
            };
            state::set(SKU_CACHE_KEY, &serde_json::to_string(&cache).unwrap_or_default());
            Finding::ok("licenses")
        }
        Err(PluginError::Forbidden(m)) => Finding {
            check: "licenses".into(),
            outcome: Outcome::Warning,
            cause: Some(format!("the app may not read subscribed SKUs, so licence names are not resolved: {m}")),
            remedy: Some("grant the Organization.Read.All application permission and admin consent (licence filters need it)".into()),
        },
        Err(e) => failed_from_error("licenses", &e),
    });
    // 4. Groups, when asked for.
    if cfg.with_groups {
        out.push(match probe(&format!("{root}/groups?$top=1&$select=id")) {
            Err(e) => failed_from_error("groups", &e),
            Ok(r) if (200..300).contains(&r.status()) => Finding::ok("groups"),
            Ok(r) => Finding::failed(
                "groups",
                format!("reading groups answered HTTP {}", r.status()),
                "grant the GroupMember.Read.All application permission and admin consent, or turn with_groups off",
            ),
        });
    }
    // 5. Each mailbox a diagnosis names, as the sync opens it.
    for m in &cfg.test_mailboxes {
        out.push(mailbox_check(root, m));
    }
    Ok(out)
}

/// Opens `address`'s calendar as the app: `impersonation:<address>` when the app may not act for
/// the mailbox (Graph's analogue of EWS impersonation), `mailbox:<address>` when the address
/// names no mailbox or the user has no Exchange Online licence.
fn mailbox_check(root: &str, address: &str) -> Finding {
    let user: String = address
        .trim()
        .chars()
        .filter(|c| !matches!(c, '/' | '?' | '#' | ' '))
        .collect();
    let r = match probe(&format!("{root}/users/{user}/calendar?$select=id")) {
        Err(e) => return failed_from_error(&format!("mailbox:{address}"), &e),
        Ok(r) => r,
    };
    let code = error_code(&r).unwrap_or_default();
    match r.status() {
        200..=299 => Finding::ok(format!("impersonation:{address}")),
        403 => Finding::failed(
            format!("impersonation:{address}"),
            format!("the app may not open the mailbox of {address} (HTTP 403 {code})"),
            "grant the Calendars.ReadWrite and Contacts.ReadWrite application permissions (and Mail.Read and Mail.Send for the inbox and outbox scopes) with admin consent, and include the mailbox in any application access policy (New-ApplicationAccessPolicy) that limits the app",
        ),
        404 if code == "MailboxNotEnabledForRESTAPI" => Finding::failed(
            format!("mailbox:{address}"),
            format!("{address} has no Exchange Online mailbox ({code}): the user has no Exchange Online licence, or the mailbox is on premises"),
            "assign the user a licence that includes Exchange Online, or synchronize an on-premises mailbox through EWS",
        ),
        404 => Finding::failed(
            format!("mailbox:{address}"),
            format!("{address} names no mailbox in this tenant ({code}): the address does not match a user's UPN or primary SMTP address"),
            "use the mailbox's primary SMTP address (or the user's UPN) as Exchange Online shows it",
        ),
        s => Finding::failed(
            format!("mailbox:{address}"),
            format!("opening the mailbox of {address} answered HTTP {s} {code}"),
            "check the graph_url and the app's permissions",
        ),
    }
}

#[cfg(test)]
mod tests;
