//! `connectwise`: ConnectWise PSA (Manage) over its REST API (`/v4_6_release/apis/3.0`).
//!
//! - Authentication: the connection's `default` credential, added by the host. Either kind
//!   `basic` with user name `{companyId}+{publicKey}` and password `{privateKey}` (then the
//!   integration's `client_id` comes from the configuration: it identifies the integration and is
//!   not a secret), or kind `headers` carrying `Authorization: Basic …` and `clientId`.
//! - `pull(scope)`: `contacts`, `companies`, `sites:company=<id>`, `contact-types`; `contacts`
//!   and `companies` take `company=<id>` / `conditions=<ConnectWise conditions>` options.
//!   `GET` with `conditions`, `orderBy=id asc`, `pageSize` ≤ 1000; the `Link` header's
//!   `rel="next"` is followed verbatim and only on the configured origin. Contacts have a change
//!   feed: a pass ends with the newest `_info.lastUpdated` it saw, and the next pass adds
//!   `lastUpdated >= [that]` to the conditions (the first pass, and other scopes always, read in
//!   full).
//! - `lookup-items("contacts", ["email:a@b.c", "id:42"])`: e-mail keys through `childConditions`
//!   on `communicationItems` (type Email), ids through `conditions=id in (…)`.
//! - Calendar scopes (module [`calendar`]): `members` → `directory-user`,
//!   `schedule-entries:member=<identifier>` → `appointment`, `activities:member=<identifier>` →
//!   `task`, read with an overlapping `lastUpdated` change cursor ([`overlap`]) and written by
//!   [`calendar_writes`].
//! - `push("contacts", batch)`: create (`POST /company/contacts` with `communicationItems`,
//!   `site`, `types`), update (`PATCH /company/contacts/{id}` with a JSON-Patch of the listed,
//!   non-blank fields only), deactivate / reactivate (`inactiveFlag`), delete. Each operation has
//!   its own result; after a throttled or refused-credentials answer the rest of the batch is not
//!   sent and carries the same error.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use syncbridge_sdk::http::{classify_status, Method, Request, Response};
use syncbridge_sdk::prelude::*;
use syncbridge_sdk::{batch, paging, scope, url};

pub mod calendar;
pub mod calendar_writes;
pub mod overlap;

use calendar::CalendarScope;
use overlap::{ChangeCursor, Overlap};

/// Connection configuration. Secrets never go here: they live in the `default` credential.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// ConnectWise API host, e.g. `api-na.myconnectwise.net` (REST root `https://{site}/v4_6_release/apis/3.0`).
    #[serde(default)]
    pub site: Option<String>,
    /// REST root overriding `site`, e.g. `https://api-eu.myconnectwise.net/v4_6_release/apis/3.0`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The integration's `clientId` (developer.connectwise.com/ClientID); not a secret. Omit it
    /// when the credential carries a `clientId` header.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Communication type of the e-mail address (default `Email`).
    #[serde(default)]
    pub email_type: Option<String>,
    /// Communication type of the phone number (default `Direct`).
    #[serde(default)]
    pub phone_type: Option<String>,
    /// Communication type of the mobile number (default `Cell`).
    #[serde(default)]
    pub mobile_type: Option<String>,
}

fn non_blank(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Config {
    /// The REST root (`…/apis/3.0`, no trailing slash).
    pub fn root(&self) -> Result<String, PluginError> {
        if let Some(base) = non_blank(&self.base_url) {
            if !(base.starts_with("https://") || base.starts_with("http://")) {
                return Err(PluginError::invalid_field(
                    "base_url",
                    format!("{base:?} is not an http(s) URL"),
                ));
            }
            return Ok(base.trim_end_matches('/').to_owned());
        }
        match non_blank(&self.site) {
            Some(site) => {
                let host = site
                    .trim_start_matches("https://")
                    .trim_end_matches('/')
                    .to_owned();
                if host.is_empty() || host.contains(['/', '?', '#', ' ']) {
                    return Err(PluginError::invalid_field(
                        "site",
                        format!("{site:?} is not a host name such as api-na.myconnectwise.net"),
                    ));
                }
                Ok(format!("https://{host}/{CODEBASE}/apis/3.0"))
            }
            None => Err(PluginError::invalid_field(
                "site",
                "set site (e.g. api-na.myconnectwise.net) or base_url",
            )),
        }
    }

    /// The `clientId` header value from the configuration, if any.
    pub fn client_id(&self) -> Option<&str> {
        non_blank(&self.client_id)
    }

    /// Communication type name of the e-mail address.
    pub fn email_type(&self) -> &str {
        non_blank(&self.email_type).unwrap_or("Email")
    }

    /// Communication type name of the phone number.
    pub fn phone_type(&self) -> &str {
        non_blank(&self.phone_type).unwrap_or("Direct")
    }

    /// Communication type name of the mobile number.
    pub fn mobile_type(&self) -> &str {
        non_blank(&self.mobile_type).unwrap_or("Cell")
    }
}

/// The default code base of the cloud REST root.
pub const CODEBASE: &str = "v4_6_release";
const CREDENTIAL: &str = "default";
const MAX_PAGE: u32 = 1000;
/// Keys of a configuration that look like secrets (compared without `_`/`-`, case-insensitive).
const SECRET_KEYS: &[&str] = &[
    "privatekey",
    "publickey",
    "password",
    "secret",
    "authorization",
    "apikey",
    "token",
];

const CREDENTIAL_REMEDY: &str = "the connection's default credential must be {\"kind\":\"basic\",\"username\":\"<company id>+<public key>\",\"password\":\"<private key>\"} of an API member (System > Members > API Members > API Keys), or kind headers with Authorization and clientId";

/// The connector.
pub struct ConnectWise;

impl Connector for ConnectWise {
    type Config = Config;

    fn describe() -> Description {
        Description {
            reads: vec![
                ItemKind::Contact,
                ItemKind::Company,
                ItemKind::Site,
                ItemKind::ContactType,
                ItemKind::DirectoryUser,
                ItemKind::Appointment,
                ItemKind::Task,
            ],
            writes: vec![ItemKind::Contact, ItemKind::Appointment, ItemKind::Task],
            credential_slots: vec![CREDENTIAL.into()],
            ..Description::named("ConnectWise PSA")
        }
    }

    fn validate_config(config: &str) -> Vec<Finding> {
        if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(config) {
            if let Some(key) = o.keys().find(|k| {
                let k = k.to_ascii_lowercase().replace(['_', '-'], "");
                SECRET_KEYS.iter().any(|s| k.contains(s))
            }) {
                return vec![Finding::failed(
                    "config",
                    format!("the configuration carries {key:?}: secrets never belong in the configuration (plugins and operators read it, it is stored unencrypted)"),
                    format!("remove it; {CREDENTIAL_REMEDY}"),
                )];
            }
        }
        match Self::parse_config(config) {
            Err(e) => vec![Finding::failed(
                "config",
                e.describe(),
                "pass {\"site\": \"api-na.myconnectwise.net\", \"client_id\": \"<your clientId>\"}",
            )],
            Ok(cfg) => Self::check_config(&cfg),
        }
    }

    fn check_config(cfg: &Config) -> Vec<Finding> {
        if let Err(e) = cfg.root() {
            return vec![Finding::failed(
                "config",
                e.describe(),
                "set site to the ConnectWise API host (api-na/api-eu/api-au.myconnectwise.net) or base_url to the REST root",
            )];
        }
        let mut out = vec![Finding::ok("config")];
        if cfg.client_id().is_none() {
            out.push(Finding {
                check: "client-id".into(),
                outcome: Outcome::Warning,
                cause: Some("no client_id is configured".into()),
                remedy: Some("set client_id (from developer.connectwise.com/ClientID) unless the default credential is of kind headers with a clientId header".into()),
            });
        }
        out
    }

    fn test_connection(cfg: &Config) -> Result<Vec<Finding>, PluginError> {
        Ok(test_connection(cfg))
    }

    fn pull(cfg: &Config, request: PullRequest) -> Result<Page, PluginError> {
        if let Some(scope) = CalendarScope::parse(&request.scope) {
            return calendar::pull(
                cfg,
                &cfg.root()?,
                &scope?,
                request.cursor.as_deref(),
                request.max_items,
            );
        }
        let scope = Scope::parse(&request.scope)?;
        let root = cfg.root()?;
        let mut cursor = ChangeCursor::parse(request.cursor.as_deref(), Overlap::NONE)?;
        let changes = scope.entity == Entity::Contacts;
        let url = match &cursor.next {
            Some(next) => paging::same_origin(&root, next)?,
            None => match (cursor.read_from()?, changes) {
                (Some(since), true) => scope.changes_url(
                    &root,
                    &overlap::stamp(since),
                    request.max_items.clamp(1, MAX_PAGE),
                )?,
                _ => scope.list_url(&root, request.max_items.clamp(1, MAX_PAGE))?,
            },
        };
        let (rows, next) = get_page(cfg, &url)?;
        if changes {
            for row in &rows {
                cursor.observe(&id_of(row), row["_info"]["lastUpdated"].as_str());
            }
        }
        let items = rows
            .iter()
            .map(|row| scope.entity.to_item(row, cfg))
            .collect();
        Ok(cursor.page(items, next))
    }

    fn lookup(cfg: &Config, scope: &str, keys: Vec<String>) -> Result<Vec<Item>, PluginError> {
        if let Some(scope) = CalendarScope::parse(scope) {
            return calendar::lookup(cfg, &cfg.root()?, &scope?, &keys);
        }
        let scope = Scope::parse(scope)?;
        if scope.entity != Entity::Contacts {
            return Err(PluginError::Unsupported(
                "lookup-items reads contacts only".into(),
            ));
        }
        let root = cfg.root()?;
        let mut emails = Vec::new();
        let mut ids = Vec::new();
        for key in &keys {
            if let Some(addr) = key.strip_prefix("email:") {
                let addr = addr.trim();
                if !addr.is_empty() {
                    emails.push(addr.to_owned());
                }
            } else if let Some(id) = key.strip_prefix("id:") {
                let id: i64 = id.trim().parse().map_err(|_| {
                    PluginError::invalid_field("keys", format!("{key:?} is not a numeric id"))
                })?;
                ids.push(id);
            } else {
                return Err(PluginError::invalid_field(
                    "keys",
                    format!("unknown key {key:?}; use email:<address> or id:<number>"),
                ));
            }
        }
        let base = scope.conditions();
        let mut queries = Vec::new();
        for chunk in emails.chunks(25) {
            let any = chunk
                .iter()
                .map(|a| format!("communicationItems/value = {}", quote(a)))
                .collect::<Vec<_>>()
                .join(" or ");
            queries.push((
                base.clone(),
                Some(format!(
                    "({any}) and communicationItems/communicationType = \"Email\""
                )),
            ));
        }
        for chunk in ids.chunks(100) {
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            queries.push((and(base.clone(), Some(format!("id in ({list})"))), None));
        }
        let mut out: Vec<Item> = Vec::new();
        for (conditions, child) in queries {
            let mut url = list_url(
                &format!("{root}/company/contacts"),
                conditions.as_deref(),
                child.as_deref(),
                MAX_PAGE,
            );
            loop {
                let (rows, next) = get_page(cfg, &url)?;
                for row in &rows {
                    let item = contact_item(row, cfg);
                    if !out.iter().any(|i| i.id == item.id) {
                        out.push(item);
                    }
                }
                match next {
                    Some(n) => url = paging::same_origin(&root, &n)?,
                    None => break,
                }
            }
        }
        Ok(out)
    }

    fn push(cfg: &Config, scope: &str, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>, PluginError> {
        if let Some(scope) = CalendarScope::parse(scope) {
            let (scope, root) = (scope?, cfg.root()?);
            let mut writer = calendar_writes::CalendarWriter::new(cfg, &root, &scope);
            return Ok(batch::push_each(ops, |op| writer.write(op)));
        }
        let scope = Scope::parse(scope)?;
        if scope.entity != Entity::Contacts {
            return Err(PluginError::Unsupported("push writes contacts only".into()));
        }
        let root = cfg.root()?;
        let mut writer = Writer {
            cfg,
            root: &root,
            scope_company: scope.company,
            comm_types: None,
        };
        Ok(batch::push_each(ops, |op| writer.write(op)))
    }
}

syncbridge_sdk::export_connector!(ConnectWise);

// ----------------------------------------------------------------------------------------------
// scopes and mapping

/// The entities this connector reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Contacts,
    Companies,
    Sites,
    ContactTypes,
}

impl Entity {
    fn to_item(self, row: &Value, cfg: &Config) -> Item {
        let id = id_of(row);
        let body = match self {
            Entity::Contacts => return contact_item(row, cfg),
            Entity::Companies => ItemBody::Company(CompanyRef {
                id: id.clone(),
                name: text(row, "name"),
            }),
            Entity::Sites => ItemBody::Site(SiteRef {
                id: id.clone(),
                name: text(row, "name"),
            }),
            Entity::ContactTypes => ItemBody::ContactType(ContactTypeRef {
                id: id.clone(),
                name: text(row, "description"),
            }),
        };
        Item {
            id,
            version: version_of(row),
            removed: None,
            body: Some(body),
        }
    }
}

/// A parsed scope: `contacts`, `companies`, `sites`, `contact-types`, with options
/// `company=<id>` and `conditions=<ConnectWise conditions>` (the last option: it takes the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub entity: Entity,
    pub company: Option<i64>,
    pub conditions: Option<String>,
}

impl Scope {
    /// Parses a scope string.
    pub fn parse(scope: &str) -> Result<Self, PluginError> {
        let parsed = scope::Scope::parse(
            scope,
            &["company"],
            Some("conditions"),
            "company=<id> or conditions=<conditions>",
        )?;
        let entity = match parsed.name() {
            "contacts" => Entity::Contacts,
            "companies" => Entity::Companies,
            "sites" | "companysites" => Entity::Sites,
            "contacttypes" | "types" => Entity::ContactTypes,
            other => {
                return Err(scope::unknown(
                    other,
                    "contacts, companies, sites:company=<id>, contact-types, members, schedule-entries:member=<identifier> or activities:member=<identifier>",
                ))
            }
        };
        let company = parsed.number("company")?;
        let conditions = parsed.option("conditions").map(str::to_owned);
        match entity {
            Entity::Sites if company.is_none() => {
                return Err(PluginError::invalid_field(
                    "scope",
                    "sites belong to a company: use sites:company=<id>",
                ))
            }
            Entity::Companies if company.is_some() => {
                return Err(PluginError::invalid_field(
                    "scope",
                    "companies takes no company option; use conditions=id=<id>",
                ))
            }
            _ => {}
        }
        Ok(Scope {
            entity,
            company,
            conditions,
        })
    }

    /// The `conditions` of this scope (company and the caller's own), if any.
    pub fn conditions(&self) -> Option<String> {
        let company = match self.entity {
            Entity::Contacts => self.company.map(|c| format!("company/id = {c}")),
            _ => None,
        };
        and(company, self.conditions.clone())
    }

    /// The first page of what changed since `since` (contacts: `lastUpdated >= [since]`).
    pub fn changes_url(
        &self,
        root: &str,
        since: &str,
        page_size: u32,
    ) -> Result<String, PluginError> {
        let changed = format!("lastUpdated >= [{since}]");
        let scope = Scope {
            conditions: and(self.conditions.clone(), Some(changed)),
            ..self.clone()
        };
        scope.list_url(root, page_size)
    }

    /// The first page's URL.
    pub fn list_url(&self, root: &str, page_size: u32) -> Result<String, PluginError> {
        let path = match (self.entity, self.company) {
            (Entity::Contacts, _) => format!("{root}/company/contacts"),
            (Entity::Companies, _) => format!("{root}/company/companies"),
            (Entity::Sites, Some(c)) => format!("{root}/company/companies/{c}/sites"),
            (Entity::Sites, None) => {
                return Err(PluginError::invalid_field(
                    "scope",
                    "use sites:company=<id>",
                ))
            }
            (Entity::ContactTypes, _) => format!("{root}/company/contacts/types"),
        };
        Ok(list_url(
            &path,
            self.conditions().as_deref(),
            None,
            page_size,
        ))
    }
}

fn and(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(format!("({a}) and ({b})")),
        (a, b) => a.or(b),
    }
}

/// A string literal of the conditions grammar.
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `path?conditions=…&childConditions=…&orderBy=id asc&pageSize=N`.
pub fn list_url(
    path: &str,
    conditions: Option<&str>,
    child: Option<&str>,
    page_size: u32,
) -> String {
    let mut url = format!("{path}?");
    if let Some(c) = conditions {
        url.push_str(&format!("conditions={}&", url::encode_query_value(c)));
    }
    if let Some(c) = child {
        url.push_str(&format!("childConditions={}&", url::encode_query_value(c)));
    }
    url.push_str(&format!(
        "orderBy={}&pageSize={page_size}",
        url::encode_query_value("id asc")
    ));
    url
}

fn id_of(row: &Value) -> String {
    match &row["id"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    }
}

fn version_of(row: &Value) -> Option<String> {
    row["_info"]["lastUpdated"].as_str().map(str::to_owned)
}

fn text(row: &Value, field: &str) -> Option<String> {
    row.get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn reference_id(v: &Value) -> Option<String> {
    match &v["id"] {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// The communication type name of an item (`type.name`), or its kind (`communicationType`).
fn type_name(item: &Value) -> Option<&str> {
    item["type"]["name"]
        .as_str()
        .or_else(|| item["type"]["description"].as_str())
}

/// Whether a communication item is of the configured type `name`; for e-mail also any item of
/// kind `Email` (`communicationType`).
fn is_type(item: &Value, name: &str, email: bool) -> bool {
    type_name(item).is_some_and(|t| t.eq_ignore_ascii_case(name))
        || (email
            && item["communicationType"]
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case("Email")))
}

/// The value of the communication item of a type: the default one first.
fn communication(items: &[Value], name: &str, email: bool) -> Option<String> {
    let of_type: Vec<&Value> = items.iter().filter(|i| is_type(i, name, email)).collect();
    of_type
        .iter()
        .find(|i| i["defaultFlag"].as_bool() == Some(true))
        .or(of_type.first())
        .and_then(|i| text(i, "value"))
}

/// Maps a ConnectWise contact row to a canonical contact.
pub fn contact_item(row: &Value, cfg: &Config) -> Item {
    let first = text(row, "firstName");
    let last = text(row, "lastName");
    let display = match (&first, &last) {
        (None, None) => None,
        _ => Some(
            [first.as_deref(), last.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
        ),
    };
    let items: Vec<Value> = row["communicationItems"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let email = communication(&items, cfg.email_type(), true);
    let phone = communication(&items, cfg.phone_type(), false);
    let mobile = communication(&items, cfg.mobile_type(), false);
    let mut extra = Vec::new();
    // Other communication items, e.g. `communication.Fax`, `communication.Email` (a second address).
    for it in &items {
        let (Some(t), Some(v)) = (type_name(it), text(it, "value")) else {
            continue;
        };
        if [&email, &phone, &mobile].contains(&&Some(v.clone())) {
            continue;
        }
        let name = format!("communication.{t}");
        if !extra.iter().any(|a: &Attribute| a.name == name) {
            extra.push(Attribute { name, value: v });
        }
    }
    for (field, sub) in [("department", "name"), ("relationship", "name")] {
        if let Some(v) = row[field][sub].as_str().filter(|s| !s.is_empty()) {
            extra.push(Attribute {
                name: field.into(),
                value: v.into(),
            });
        }
    }
    let contact_types = row["types"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some(ContactTypeRef {
                id: reference_id(t)?,
                name: text(t, "description").or_else(|| text(t, "name")),
            })
        })
        .collect();
    Item {
        id: id_of(row),
        version: version_of(row),
        removed: None,
        body: Some(ItemBody::Contact(Contact {
            first_name: first,
            last_name: last,
            display_name: display,
            title: text(row, "title"),
            email,
            phone,
            mobile,
            company: reference_id(&row["company"]).map(|id| CompanyRef {
                id,
                name: text(&row["company"], "name"),
            }),
            site: reference_id(&row["site"]).map(|id| SiteRef {
                id,
                name: text(&row["site"], "name"),
            }),
            contact_types,
            active: row["inactiveFlag"].as_bool() != Some(true),
            extra,
        })),
    }
}

// ----------------------------------------------------------------------------------------------
// HTTP

/// A request to ConnectWise: the credential slot, `Accept`, and the configured `clientId`.
fn request(cfg: &Config, method: Method, url: impl Into<String>) -> Request {
    let r = Request::new(method, url)
        .credential(CREDENTIAL)
        .header("Accept", "application/json");
    match cfg.client_id() {
        Some(id) => r.header("clientId", id),
        None => r,
    }
}

fn with_json(r: Request, body: &Value) -> Request {
    r.header("Content-Type", "application/json")
        .body(body.to_string().into_bytes())
}

/// A ConnectWise error object `{"code","message","errors":[{"code","message","resource","field"}]}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CwError {
    pub code: Option<String>,
    pub message: Option<String>,
    pub errors: Option<Vec<CwFieldError>>,
}

/// One entry of a ConnectWise error's `errors`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CwFieldError {
    pub code: Option<String>,
    pub message: Option<String>,
    pub resource: Option<String>,
    pub field: Option<String>,
}

fn cw_error(r: &Response) -> Option<CwError> {
    serde_json::from_slice(r.bytes()).ok()
}

/// The canonical field name of a ConnectWise contact field (for `invalid` field lists).
pub fn canonical_field(cw: &str) -> String {
    match cw.to_ascii_lowercase().as_str() {
        "firstname" => "first_name".into(),
        "lastname" => "last_name".into(),
        "title" => "title".into(),
        "site" => "site".into(),
        "company" => "company".into(),
        "types" => "contact_types".into(),
        "inactiveflag" => "active".into(),
        "communicationitems" => "communication_items".into(),
        _ => cw.to_owned(),
    }
}

/// Classifies a non-2xx ConnectWise answer: 400 `InvalidClientId` is `auth` (every request
/// fails alike), other 400s are `invalid` with the fields ConnectWise names; the rest by status
/// (`Retry-After` on 429/503 → throttled, 401 auth, 403 forbidden, 404 not-found, 5xx transient).
pub fn classify(r: &Response) -> PluginError {
    let e = cw_error(r).unwrap_or_default();
    let message = e.message.clone().unwrap_or_else(|| r.text());
    let code = e.code.clone().unwrap_or_default();
    if r.status() == 400 && code.eq_ignore_ascii_case("InvalidClientId") {
        return PluginError::Auth(format!(
            "ConnectWise refused the clientId (HTTP 400 InvalidClientId): {message}"
        ));
    }
    if matches!(r.status(), 400 | 422) {
        let details = e.errors.unwrap_or_default();
        let fields: Vec<FieldError> = details
            .iter()
            .map(|d| FieldError {
                field: canonical_field(d.field.as_deref().unwrap_or("")),
                message: d
                    .message
                    .clone()
                    .or_else(|| d.code.clone())
                    .unwrap_or_default(),
            })
            .collect();
        let listed = details
            .iter()
            .filter_map(|d| d.message.as_deref())
            .collect::<Vec<_>>()
            .join("; ");
        return PluginError::Invalid(InvalidInput {
            message: if listed.is_empty() {
                format!(
                    "ConnectWise rejected the request (HTTP {}): {message}",
                    r.status()
                )
            } else {
                format!(
                    "ConnectWise rejected the request (HTTP {}): {message}: {listed}",
                    r.status()
                )
            },
            fields,
        });
    }
    classify_status(r.status(), r.header("Retry-After"), &message)
}

fn checked(r: Response) -> Result<Response, PluginError> {
    if (200..300).contains(&r.status()) {
        Ok(r)
    } else {
        Err(classify(&r))
    }
}

fn json_of(r: Response) -> Result<Value, PluginError> {
    checked(r)?.json()
}

/// The `rel="next"` target of a `Link` header.
pub fn next_link(link: &str) -> Option<String> {
    link.split('<').skip(1).find_map(|part| {
        let (url, params) = part.split_once('>')?;
        params
            .split(';')
            .filter_map(|p| p.trim().trim_end_matches(',').trim().split_once('='))
            .any(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_end_matches(',')
                        .trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            })
            .then(|| url.trim().to_owned())
    })
}

/// One list page: its rows and the next page's URL.
fn get_page(cfg: &Config, url: &str) -> Result<(Vec<Value>, Option<String>), PluginError> {
    let r = checked(request(cfg, Method::Get, url).send()?)?;
    let next = r.header("Link").and_then(next_link);
    let v: Value = r.json()?;
    let rows = match v {
        Value::Array(rows) => rows,
        _ => {
            return Err(PluginError::Remote(RemoteFailure {
                status: 200,
                message: "ConnectWise answered a list request without a JSON array".into(),
            }))
        }
    };
    Ok((rows, next))
}

// ----------------------------------------------------------------------------------------------
// push

/// A canonical contact field this connector writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    FirstName,
    LastName,
    DisplayName,
    Title,
    Email,
    Phone,
    Mobile,
    Company,
    Site,
    ContactTypes,
    Active,
}

impl Field {
    /// Parses a canonical field name (snake, kebab or ConnectWise spelling).
    pub fn parse(name: &str) -> Option<Field> {
        Some(
            match name.to_ascii_lowercase().replace(['_', '-'], "").as_str() {
                "firstname" => Field::FirstName,
                "lastname" => Field::LastName,
                "displayname" => Field::DisplayName,
                "title" => Field::Title,
                "email" | "emailaddress" => Field::Email,
                "phone" | "direct" => Field::Phone,
                "mobile" | "cell" | "mobilephone" => Field::Mobile,
                "company" => Field::Company,
                "site" => Field::Site,
                "contacttypes" | "types" => Field::ContactTypes,
                "active" | "inactiveflag" => Field::Active,
                _ => return None,
            },
        )
    }
}

fn blank_to_none(v: &Option<String>) -> Option<String> {
    non_blank(v).map(str::to_owned)
}

fn numeric(field: &str, id: &str) -> Result<i64, PluginError> {
    id.trim()
        .parse()
        .map_err(|_| PluginError::invalid_field(field, format!("{id:?} is not a ConnectWise id")))
}

fn contact_body(op: &WriteOp) -> Result<Option<&Contact>, PluginError> {
    match &op.body {
        None => Ok(None),
        Some(ItemBody::Contact(c)) => Ok(Some(c)),
        Some(_) => Err(PluginError::invalid_field("body", "expected a contact")),
    }
}

fn target(op: &WriteOp) -> Result<i64, PluginError> {
    op.target_id
        .as_deref()
        .ok_or_else(|| PluginError::invalid_field("target-id", "required for this action"))?
        .trim()
        .parse()
        .map_err(|_| PluginError::invalid_field("target-id", "not a numeric ConnectWise id"))
}

fn type_refs(c: &Contact) -> Result<Vec<i64>, PluginError> {
    c.contact_types
        .iter()
        .map(|t| numeric("contact_types", &t.id))
        .collect()
}

fn replace(path: &str, value: Value) -> Value {
    json!({"op": "replace", "path": path, "value": value})
}

struct Writer<'a> {
    cfg: &'a Config,
    root: &'a str,
    scope_company: Option<i64>,
    /// `(id, description)` of the communication types, read once per batch when needed.
    comm_types: Option<Vec<(i64, String)>>,
}

impl Writer<'_> {
    /// `{"id","name"}` of a communication type, by name; `field` names the canonical field.
    fn comm_type(&mut self, field: &str, name: &str) -> Result<Value, PluginError> {
        if self.comm_types.is_none() {
            let (rows, _) = get_page(
                self.cfg,
                &format!(
                    "{}/company/communicationTypes?pageSize={MAX_PAGE}",
                    self.root
                ),
            )?;
            self.comm_types = Some(
                rows.iter()
                    .filter_map(|r| {
                        Some((
                            r["id"].as_i64()?,
                            text(r, "description").or_else(|| text(r, "name"))?,
                        ))
                    })
                    .collect(),
            );
        }
        self.comm_types
            .iter()
            .flatten()
            .find(|(_, d)| d.eq_ignore_ascii_case(name))
            .map(|(id, d)| json!({"id": id, "name": d}))
            .ok_or_else(|| {
                PluginError::invalid_field(
                    field,
                    format!(
                        "ConnectWise has no communication type {name:?}; set {field}_type in the configuration to one of its communication types (Setup Tables > Communication Types)"
                    ),
                )
            })
    }

    fn type_name_of(&self, f: Field) -> (&str, &'static str) {
        match f {
            Field::Email => (self.cfg.email_type(), "email"),
            Field::Phone => (self.cfg.phone_type(), "phone"),
            _ => (self.cfg.mobile_type(), "mobile"),
        }
    }

    fn write(&mut self, op: &WriteOp) -> Result<WriteOk, PluginError> {
        let contact = contact_body(op)?;
        match op.action {
            WriteAction::Create => {
                let c = contact
                    .ok_or_else(|| PluginError::invalid_field("body", "create needs a contact"))?;
                self.create(c)
            }
            WriteAction::Update => {
                let c = contact
                    .ok_or_else(|| PluginError::invalid_field("body", "update needs a contact"))?;
                let id = target(op)?;
                let ops = self.patch_ops(id, c, &op.fields)?;
                self.patch(id, ops)
            }
            WriteAction::Deactivate => {
                let id = target(op)?;
                self.patch(id, vec![replace("inactiveFlag", json!(true))])
            }
            WriteAction::Reactivate => {
                let id = target(op)?;
                let mut ops = match contact {
                    Some(c) => self.patch_ops(id, c, &op.fields)?,
                    None => Vec::new(),
                };
                ops.retain(|o| o["path"] != "inactiveFlag");
                ops.push(replace("inactiveFlag", json!(false)));
                self.patch(id, ops)
            }
            WriteAction::Delete => {
                let id = target(op)?;
                checked(
                    request(
                        self.cfg,
                        Method::Delete,
                        format!("{}/company/contacts/{id}", self.root),
                    )
                    .send()?,
                )?;
                Ok(WriteOk {
                    target_id: id.to_string(),
                    version: None,
                })
            }
        }
    }

    fn create(&mut self, c: &Contact) -> Result<WriteOk, PluginError> {
        let company = match &c.company {
            Some(r) => Some(numeric("company", &r.id)?),
            None => self.scope_company,
        }
        .ok_or_else(|| {
            PluginError::invalid_field(
                "company",
                "a new ConnectWise contact needs a company (in the body or the scope contacts:company=<id>)",
            )
        })?;
        // ConnectWise validates required fields itself (firstName; its answer names the field).
        let mut body = Map::new();
        if let Some(v) = blank_to_none(&c.first_name) {
            body.insert("firstName".into(), json!(v));
        }
        if let Some(v) = blank_to_none(&c.last_name) {
            body.insert("lastName".into(), json!(v));
        }
        if let Some(v) = blank_to_none(&c.title) {
            body.insert("title".into(), json!(v));
        }
        body.insert("company".into(), json!({"id": company}));
        if let Some(s) = &c.site {
            body.insert("site".into(), json!({"id": numeric("site", &s.id)?}));
        }
        let types = type_refs(c)?;
        if !types.is_empty() {
            body.insert(
                "types".into(),
                Value::Array(types.iter().map(|id| json!({"id": id})).collect()),
            );
        }
        body.insert("inactiveFlag".into(), json!(!c.active));
        // One default item per kind (Phone, Email): the mobile is the default phone only
        // when there is no direct number.
        let has_phone = blank_to_none(&c.phone).is_some();
        let mut items = Vec::new();
        for (f, v) in [
            (Field::Email, &c.email),
            (Field::Phone, &c.phone),
            (Field::Mobile, &c.mobile),
        ] {
            if let Some(v) = blank_to_none(v) {
                let (name, field) = self.type_name_of(f);
                let name = name.to_owned();
                let default = f != Field::Mobile || !has_phone;
                items.push(json!({"type": self.comm_type(field, &name)?, "value": v, "defaultFlag": default}));
            }
        }
        if !items.is_empty() {
            body.insert("communicationItems".into(), Value::Array(items));
        }
        let row = json_of(
            with_json(
                request(
                    self.cfg,
                    Method::Post,
                    format!("{}/company/contacts", self.root),
                ),
                &Value::Object(body),
            )
            .send()?,
        )?;
        let id = id_of(&row);
        if id.is_empty() {
            return Err(PluginError::Remote(RemoteFailure {
                status: 201,
                message: "ConnectWise answered the create without an id".into(),
            }));
        }
        Ok(WriteOk {
            target_id: id,
            version: version_of(&row),
        })
    }

    fn current(&self, id: i64) -> Result<Value, PluginError> {
        json_of(
            request(
                self.cfg,
                Method::Get,
                format!("{}/company/contacts/{id}", self.root),
            )
            .send()?,
        )
    }

    /// The JSON-Patch of the listed fields; a blank value never clears a ConnectWise value.
    /// Communication items and contact types are read first (one `GET`) when they change.
    pub fn patch_ops(
        &mut self,
        id: i64,
        c: &Contact,
        fields: &[String],
    ) -> Result<Vec<Value>, PluginError> {
        let mut parsed = Vec::new();
        for name in fields {
            let f = Field::parse(name).ok_or_else(|| {
                PluginError::invalid_field(name.clone(), "not a field this connector writes")
            })?;
            if !parsed.contains(&f) {
                parsed.push(f);
            }
        }
        let mut ops = Vec::new();
        let mut current: Option<Value> = None;
        let mut comm_changes: Vec<(Field, String)> = Vec::new();
        for f in parsed {
            match f {
                Field::FirstName | Field::LastName | Field::Title => {
                    let (path, v) = match f {
                        Field::FirstName => ("firstName", &c.first_name),
                        Field::LastName => ("lastName", &c.last_name),
                        _ => ("title", &c.title),
                    };
                    if let Some(v) = blank_to_none(v) {
                        ops.push(replace(path, json!(v)));
                    }
                }
                // ConnectWise derives the name it shows from first and last name.
                Field::DisplayName => {}
                Field::Email | Field::Phone | Field::Mobile => {
                    let v = match f {
                        Field::Email => &c.email,
                        Field::Phone => &c.phone,
                        _ => &c.mobile,
                    };
                    if let Some(v) = blank_to_none(v) {
                        comm_changes.push((f, v));
                    }
                }
                Field::Company => {
                    if let Some(r) = &c.company {
                        ops.push(replace(
                            "company",
                            json!({"id": numeric("company", &r.id)?}),
                        ));
                    }
                }
                Field::Site => {
                    if let Some(s) = &c.site {
                        ops.push(replace("site", json!({"id": numeric("site", &s.id)?})));
                    }
                }
                Field::ContactTypes => {
                    let wanted = type_refs(c)?;
                    if wanted.is_empty() {
                        continue;
                    }
                    if current.is_none() {
                        current = Some(self.current(id)?);
                    }
                    let mut types: Vec<Value> = current.as_ref().unwrap()["types"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    let have: Vec<String> = types.iter().filter_map(reference_id).collect();
                    let mut added = false;
                    for w in wanted {
                        if !have.contains(&w.to_string()) {
                            // Contact types are only added, never removed.
                            types.push(json!({"id": w}));
                            added = true;
                        }
                    }
                    if added {
                        ops.push(replace("types", Value::Array(types)));
                    }
                }
                Field::Active => ops.push(replace("inactiveFlag", json!(!c.active))),
            }
        }
        if !comm_changes.is_empty() {
            if current.is_none() {
                current = Some(self.current(id)?);
            }
            let mut items: Vec<Value> = current.as_ref().unwrap()["communicationItems"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut changed = false;
            for (f, value) in comm_changes {
                let (name, field) = self.type_name_of(f);
                let name = name.to_owned();
                let email = f == Field::Email;
                let pos = items
                    .iter()
                    .position(|i| is_type(i, &name, email) && i["defaultFlag"] == json!(true))
                    .or_else(|| items.iter().position(|i| is_type(i, &name, email)));
                match pos {
                    Some(p) => {
                        if items[p]["value"].as_str() != Some(value.as_str()) {
                            items[p]["value"] = json!(value);
                            changed = true;
                        }
                    }
                    None => {
                        let t = self.comm_type(field, &name)?;
                        let kind = if email { Some("Email") } else { None };
                        let default = !items.iter().any(|i| {
                            i["defaultFlag"] == json!(true)
                                && match kind {
                                    Some(k) => i["communicationType"].as_str() == Some(k),
                                    None => i["communicationType"].as_str() == Some("Phone"),
                                }
                        });
                        items.push(json!({"type": t, "value": value, "defaultFlag": default}));
                        changed = true;
                    }
                }
            }
            if changed {
                ops.push(replace("communicationItems", Value::Array(items)));
            }
        }
        Ok(ops)
    }

    fn patch(&self, id: i64, ops: Vec<Value>) -> Result<WriteOk, PluginError> {
        if ops.is_empty() {
            return Ok(WriteOk {
                target_id: id.to_string(),
                version: None,
            });
        }
        let row = json_of(
            with_json(
                request(
                    self.cfg,
                    Method::Patch,
                    format!("{}/company/contacts/{id}", self.root),
                ),
                &Value::Array(ops),
            )
            .send()?,
        )?;
        Ok(WriteOk {
            target_id: id.to_string(),
            version: version_of(&row),
        })
    }
}

// ----------------------------------------------------------------------------------------------
// test-connection

fn test_connection(cfg: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    let root = match cfg.root() {
        Ok(r) => r,
        Err(e) => {
            out.push(Finding::failed(
                "config",
                e.describe(),
                "set site or base_url",
            ));
            return out;
        }
    };
    let info = request(cfg, Method::Get, format!("{root}/system/info")).send();
    let r = match info {
        Err(e) => {
            out.push(Finding::failed(
                "reachable",
                e.describe(),
                "check site / base_url and that the host is allowed on the connection and reachable",
            ));
            return out;
        }
        Ok(r) => r,
    };
    out.push(Finding::ok("reachable"));
    let message = || {
        cw_error(&r)
            .and_then(|e| e.message)
            .map(|m| format!(": {m}"))
            .unwrap_or_default()
    };
    match r.status() {
        400 if cw_error(&r)
            .and_then(|e| e.code)
            .is_some_and(|c| c.eq_ignore_ascii_case("InvalidClientId")) =>
        {
            out.push(Finding::failed(
                "client-id",
                format!("ConnectWise refused the clientId (HTTP 400{})", message()),
                "register the integration at developer.connectwise.com/ClientID and set client_id in the configuration (or a clientId header in a headers credential)",
            ));
            return out;
        }
        401 => {
            out.push(Finding::failed(
                "credentials",
                format!("ConnectWise rejected the API keys (HTTP 401{})", message()),
                CREDENTIAL_REMEDY,
            ));
            return out;
        }
        403 => {
            out.push(Finding::failed(
                "credentials",
                format!("ConnectWise refused the API member (HTTP 403{})", message()),
                "give the API member a security role that may use the API",
            ));
            return out;
        }
        s if (200..300).contains(&s) => {
            out.push(Finding::ok("credentials"));
        }
        s => {
            out.push(Finding::failed(
                "credentials",
                format!("ConnectWise answered HTTP {s}{}", message()),
                "check site / base_url (the REST root ends in /apis/3.0) and try again later",
            ));
            return out;
        }
    }
    let count = request(cfg, Method::Get, format!("{root}/company/contacts/count")).send();
    out.push(match count {
        Ok(r) if (200..300).contains(&r.status()) => Finding::ok("read-contacts"),
        Ok(r) => Finding::failed(
            "read-contacts",
            format!("counting contacts answered: {}", classify(&r).describe()),
            "give the API member's security role Companies > Contacts (inquire, add, edit)",
        ),
        Err(e) => Finding::failed("read-contacts", e.describe(), "try again later"),
    });
    let types = get_page(
        cfg,
        &format!("{root}/company/communicationTypes?pageSize={MAX_PAGE}"),
    );
    out.push(match types {
        Ok((rows, _)) => {
            let names: Vec<String> = rows
                .iter()
                .filter_map(|r| text(r, "description").or_else(|| text(r, "name")))
                .collect();
            let missing: Vec<String> = [
                ("email_type", cfg.email_type()),
                ("phone_type", cfg.phone_type()),
                ("mobile_type", cfg.mobile_type()),
            ]
            .iter()
            .filter(|(_, n)| !names.iter().any(|x| x.eq_ignore_ascii_case(n)))
            .map(|(k, n)| format!("{k} {n:?}"))
            .collect();
            if missing.is_empty() {
                Finding::ok("communication-types")
            } else {
                Finding {
                    check: "communication-types".into(),
                    outcome: Outcome::Warning,
                    cause: Some(format!(
                        "ConnectWise has no communication type for {} (it has {})",
                        missing.join(", "),
                        names.join(", ")
                    )),
                    remedy: Some(
                        "set email_type / phone_type / mobile_type to existing communication types"
                            .into(),
                    ),
                }
            }
        }
        Err(e) => Finding {
            check: "communication-types".into(),
            outcome: Outcome::Warning,
            cause: Some(format!(
                "reading communication types answered: {}",
                e.describe()
            )),
            remedy: Some("creating contacts with phone numbers may fail; check the API member's security role".into()),
        },
    });
    out
}

#[cfg(test)]
mod tests;
