//! `autotask`: Autotask PSA over its REST API (`/ATServicesRest/V1.0`).
//!
//! - Zone discovery: `GET {zone_lookup_url}/v1.0/zoneInformation?user=<api_user>` without
//!   credentials; the zone `url` is cached in state (`autotask:zone`) per API user. A `base_url`
//!   in the configuration skips the discovery (simulators, pinned zones).
//! - Authentication: the connection's `default` credential of kind `headers`
//!   (`ApiIntegrationCode`, `UserName`, `Secret`), added by the host.
//! - `pull(scope)`: `contacts`, `companies`, `locations` (CompanyLocations), optionally
//!   `…:company=<id>`; `POST /V1.0/{Entity}/query` with `MaxRecords` ≤ 500 and a filter, then
//!   `pageDetails.nextPageUrl` followed verbatim. Contacts have a change feed: a pass ends with
//!   the newest `lastModifiedDate` it saw, and the next pass reads `lastModifiedDate >=` that
//!   (the first pass, and companies and locations always, read in full).
//! - Calendar scopes (the Autotask ⇄ Exchange calendar flow), each read with a change cursor:
//!   - `resources` → `directory-user` (id = resource id, `user-principal-name` = `userName` or
//!     else `email`, `mail` = `email`, `account-enabled` = `isActive`, other fields as
//!     attributes). Resources have no modification date: every pass is full.
//!   - `appointments:resource=<id>` → `appointment` (read, create, update, delete), changes by
//!     `updateDateTime`.
//!   - `todos:resource=<id>[,company=<id>][,action=<id>]` → `task` (CompanyToDos assigned to the
//!     resource; read, create, update incl. completing (`completedDate`), delete), changes by
//!     `lastModifiedDate`. New to-dos go to `company` (default 0, the instance's own company)
//!     with action type `action` (required to create). Title = first line of
//!     `activityDescription`, body = the rest.
//!   - `service-calls:resource=<id>` → `service-call` with the calls' ticket ids (project tasks
//!     as `task:<id>`) and the tickets' and tasks' resources; read only (service calls go one
//!     way, PSA → Exchange). Changes by `lastModifiedDateTime`.
//!   - `contacts:owner=<id>` → the contacts of the companies whose `ownerResourceID` is the
//!     resource (account manager) and the contacts of the opportunities it owns; read (writes
//!     as `contacts`). Changes by `lastModifiedDate`.
//!
//!   A pass without a cursor reads everything (`full`); its cursor keeps the newest
//!   modification date seen, and the next pass reads from 5 seconds before it, skipping the rows
//!   it already read unchanged. Autotask has no feed of deletions: only full passes (no cursor)
//!   find removed rows, and a change that does not move the row's own date (a company changing
//!   owner, a resource added to a service call's ticket) shows in the next full pass.
//! - `lookup-items("contacts", ["email:a@b.c", "id:42"])`; `id:` keys in every scope.
//! - `push("contacts", batch)`: create (`POST /Companies/{companyID}/Contacts`), update
//!   (`PATCH /Companies/{companyID}/Contacts` with the id and only the changed fields),
//!   deactivate/reactivate (`isActive` 0/1). Each operation has its own result; one failing
//!   operation does not fail the batch. After a throttled or refused-credentials answer the rest of
//!   the batch is not sent and carries the same error.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use syncbridge_sdk::http::{classify_status, Request, Response};
use syncbridge_sdk::prelude::*;
use syncbridge_sdk::{batch, scope, state, url};

mod calendar;
mod changes;
mod related;
mod writes;

pub use calendar::{join_description, split_description};
pub use changes::ChangeCursor;
use changes::Overlap;

/// Connection configuration.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct Config {
    /// User name (an e-mail address) of the Autotask API-only user, used for zone discovery.
    pub api_user: String,
    /// REST root overriding zone discovery, e.g. `https://webservices2.autotask.net/ATServicesRest`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Zone lookup root, default `https://webservices.autotask.net/atservicesrest`.
    #[serde(default)]
    pub zone_lookup_url: Option<String>,
}

/// Default zone lookup root.
pub const ZONE_LOOKUP: &str = "https://webservices.autotask.net/atservicesrest";
/// State key of the cached zone.
pub const ZONE_KEY: &str = "autotask:zone";
const CREDENTIAL: &str = "default";
const MAX_RECORDS: u32 = 500;

/// The connector.
pub struct Autotask;

impl Connector for Autotask {
    type Config = Config;

    fn describe() -> Description {
        Description {
            reads: vec![
                ItemKind::Contact,
                ItemKind::Company,
                ItemKind::Site,
                ItemKind::DirectoryUser,
                ItemKind::Appointment,
                ItemKind::Task,
                ItemKind::ServiceCall,
            ],
            writes: vec![ItemKind::Contact, ItemKind::Appointment, ItemKind::Task],
            credential_slots: vec![CREDENTIAL.into()],
            ..Description::named("Autotask PSA")
        }
    }

    fn check_config(c: &Config) -> Vec<Finding> {
        if !c.api_user.contains('@') {
            return vec![Finding::failed(
                "config",
                format!("api_user {:?} is not an e-mail address", c.api_user),
                "use the user name of the Autotask API-only user, e.g. api@yourcompany.com",
            )];
        }
        vec![Finding::ok("config")]
    }

    fn test_connection(cfg: &Config) -> Result<Vec<Finding>, PluginError> {
        Ok(test_connection(cfg))
    }

    fn pull(cfg: &Config, request: PullRequest) -> Result<Page, PluginError> {
        let scope = Scope::parse(&request.scope)?;
        if scope.has_change_cursor() {
            return pull_changes(cfg, &scope, request);
        }
        let mut cursor = ChangeCursor::parse(request.cursor.as_deref(), Overlap::NONE)?;
        let modified = scope.entity.modified_field();
        let body: Value = match &cursor.next {
            Some(next) => next_page(cfg, next)?,
            None => {
                let mut filter = scope.filter();
                if let (Some(field), Some(since)) = (modified, cursor.read_from()?) {
                    filter.push(
                        json!({"op": "gte", "field": field, "value": changes::format_time(since)}),
                    );
                }
                query(
                    cfg,
                    scope.entity.name(),
                    filter,
                    request.max_items.clamp(1, MAX_RECORDS),
                )?
            }
        };
        let rows = body["items"].as_array().cloned().unwrap_or_default();
        if let Some(field) = modified {
            for row in &rows {
                cursor.observe(&id_of(row), row[field].as_str());
            }
        }
        let items = rows.iter().map(|row| scope.entity.to_item(row)).collect();
        let next = body["pageDetails"]["nextPageUrl"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        Ok(cursor.page(items, next))
    }

    fn lookup(cfg: &Config, scope: &str, keys: Vec<String>) -> Result<Vec<Item>, PluginError> {
        let scope = Scope::parse(scope)?;
        if scope.entity != Entity::Contacts {
            return lookup_ids(cfg, &scope, &keys);
        }
        let mut emails = Vec::new();
        let mut ids = Vec::new();
        for key in &keys {
            if let Some(addr) = key.strip_prefix("email:") {
                emails.push(json!({"op": "eq", "field": "emailAddress", "value": addr.trim()}));
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
        // E-mail addresses 50 to a query (an `or` of conditions), ids 500 (one `in`),
        // the first ids in the first e-mail query.
        let mut id_chunks = ids
            .chunks(MAX_RECORDS as usize)
            .map(|chunk| json!({"op": "in", "field": "id", "value": chunk}));
        let mut conditions = Vec::new();
        for chunk in emails.chunks(50) {
            let mut items = chunk.to_vec();
            items.extend(id_chunks.next());
            conditions.push(json!({"op": "or", "items": items}));
        }
        conditions.extend(id_chunks);
        let mut out: Vec<Item> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for condition in conditions {
            let mut filter = vec![condition];
            if let Some(company) = scope.company {
                filter.push(json!({"op": "eq", "field": "companyID", "value": company}));
            }
            let mut body = query(cfg, "Contacts", filter, MAX_RECORDS)?;
            loop {
                for row in body["items"].as_array().into_iter().flatten() {
                    let item = Entity::Contacts.to_item(row);
                    if seen.insert(item.id.clone()) {
                        out.push(item);
                    }
                }
                match body["pageDetails"]["nextPageUrl"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                {
                    Some(next) => {
                        body = next_page(cfg, next)?;
                    }
                    None => break,
                }
            }
        }
        Ok(out)
    }

    fn push(cfg: &Config, scope: &str, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>, PluginError> {
        let scope = Scope::parse(scope)?;
        let root = api_root(cfg)?;
        match scope.entity {
            Entity::Contacts => Ok(batch::push_each(ops, |op| {
                write_contact(&root, op, scope.company)
            })),
            Entity::Appointments => {
                let resource = scope.resource()?;
                Ok(batch::push_each(ops, |op| {
                    writes::write_appointment(&root, resource, op)
                }))
            }
            Entity::ToDos => {
                let target = writes::TodoTarget {
                    resource: scope.resource()?,
                    company: scope.company.unwrap_or(0),
                    action: scope.action,
                };
                Ok(batch::push_each(ops, |op| {
                    writes::write_todo(&root, target, op)
                }))
            }
            Entity::ServiceCalls => Err(PluginError::Unsupported(
                "service calls are read only: they go one way, from Autotask to the calendar"
                    .into(),
            )),
            Entity::Companies | Entity::Locations | Entity::Resources => Err(
                PluginError::Unsupported("push writes contacts, appointments and todos".into()),
            ),
        }
    }
}

syncbridge_sdk::export_connector!(Autotask);

// ----------------------------------------------------------------------------------------------
// scopes and mapping

/// The entities this connector reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Contacts,
    Companies,
    Locations,
    Resources,
    Appointments,
    ToDos,
    ServiceCalls,
}

impl Entity {
    /// Name in the REST path.
    pub fn name(self) -> &'static str {
        match self {
            Entity::Contacts => "Contacts",
            Entity::Companies => "Companies",
            Entity::Locations => "CompanyLocations",
            Entity::Resources => "Resources",
            Entity::Appointments => "Appointments",
            Entity::ToDos => "CompanyToDos",
            Entity::ServiceCalls => "ServiceCalls",
        }
    }

    /// The field a change feed of this entity queries, if it has one.
    pub fn modified_field(self) -> Option<&'static str> {
        match self {
            Entity::Contacts | Entity::ToDos => Some("lastModifiedDate"),
            Entity::Appointments => Some("updateDateTime"),
            Entity::ServiceCalls => Some("lastModifiedDateTime"),
            Entity::Companies | Entity::Locations | Entity::Resources => None,
        }
    }

    fn to_item(self, row: &Value) -> Item {
        match self {
            Entity::Contacts => contact_item(row),
            Entity::Companies => Item {
                id: id_of(row),
                version: text(row, "lastActivityDate"),
                removed: None,
                body: Some(ItemBody::Company(CompanyRef {
                    id: id_of(row),
                    name: text(row, "companyName"),
                })),
            },
            Entity::Locations => Item {
                id: id_of(row),
                version: None,
                removed: None,
                body: Some(ItemBody::Site(SiteRef {
                    id: id_of(row),
                    name: text(row, "name"),
                })),
            },
            Entity::Resources => calendar::resource_item(row),
            Entity::Appointments => calendar::appointment_item(row),
            Entity::ToDos => calendar::todo_item(row),
            // Service calls get their links in `service_call_items`.
            Entity::ServiceCalls => calendar::service_call_item(row, Default::default()),
        }
    }
}

const USAGE: &str = "contacts, companies, locations (each optionally :company=<id>), contacts:owner=<resource id>, resources, appointments:resource=<id>[,past=<days>], todos:resource=<id>[,company=<id>,action=<id>,past=<days>] or service-calls:resource=<id>[,past=<days>]";

/// A parsed scope: `contacts`, `companies`, `locations`, each optionally `:company=<id>`;
/// `contacts:owner=<id>`; `resources`; `appointments`, `todos`, `service-calls` with
/// `:resource=<id>` (to-dos also `company=` and `action=` for new to-dos).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub entity: Entity,
    pub company: Option<i64>,
    /// The resource whose calendar this is (`resource=`).
    pub resource: Option<i64>,
    /// The account manager / opportunity owner of `contacts:owner=`.
    pub owner: Option<i64>,
    /// The action type of new to-dos (`action=`).
    pub action: Option<i64>,
    /// Calendar scopes: only items ending at most this many days ago are read (`past=`);
    /// lookups by id are not limited, so an item that aged out is still found.
    pub past: Option<i64>,
}

impl Scope {
    /// Parses a scope string.
    pub fn parse(scope: &str) -> Result<Self, PluginError> {
        let parsed = scope::Scope::parse(
            scope,
            &["company", "resource", "owner", "action", "past"],
            None,
            USAGE,
        )?;
        let entity = match parsed.name() {
            "contacts" => Entity::Contacts,
            "companies" => Entity::Companies,
            "locations" | "companylocations" => Entity::Locations,
            "resources" => Entity::Resources,
            "appointments" => Entity::Appointments,
            "todos" | "companytodos" => Entity::ToDos,
            "servicecalls" => Entity::ServiceCalls,
            other => return Err(scope::unknown(other, USAGE)),
        };
        let parsed = Scope {
            entity,
            company: parsed.number("company")?,
            resource: parsed.number("resource")?,
            owner: parsed.number("owner")?,
            action: parsed.number("action")?,
            past: parsed.number("past")?,
        };
        let misplaced = match entity {
            Entity::Appointments | Entity::ServiceCalls => parsed
                .owner
                .or(parsed.action)
                .or(parsed.company)
                .map(|_| "owner, action or company"),
            Entity::ToDos => parsed.owner.map(|_| "owner"),
            Entity::Contacts => parsed
                .resource
                .or(parsed.action)
                .or(parsed.past)
                .map(|_| "resource, action or past"),
            Entity::Companies | Entity::Locations => parsed
                .resource
                .or(parsed.owner)
                .or(parsed.action)
                .or(parsed.past)
                .map(|_| "resource, owner, action or past"),
            Entity::Resources => parsed
                .resource
                .or(parsed.owner)
                .or(parsed.action)
                .or(parsed.company)
                .or(parsed.past)
                .map(|_| "options"),
        };
        if let Some(what) = misplaced {
            return Err(PluginError::invalid_field(
                "scope",
                format!("{scope:?} takes no {what}; use {USAGE}"),
            ));
        }
        if parsed.past.is_some_and(|d| !(1..=3650).contains(&d)) {
            return Err(PluginError::invalid_field(
                "scope",
                format!("{scope:?}: past= is a number of days from 1 to 3650"),
            ));
        }
        if matches!(
            entity,
            Entity::Appointments | Entity::ToDos | Entity::ServiceCalls
        ) {
            parsed.resource()?;
        }
        Ok(parsed)
    }

    /// The `resource=` of a calendar scope.
    pub fn resource(&self) -> Result<i64, PluginError> {
        self.resource.ok_or_else(|| {
            PluginError::invalid_field(
                "scope",
                format!(
                    "{} needs the resource whose calendar it is: add :resource=<resource id>",
                    self.entity.name()
                ),
            )
        })
    }

    /// Whether this scope is read with the overlapping change cursor ([`ChangeCursor`]): the
    /// calendar scopes and `contacts:owner=`.
    pub fn has_change_cursor(&self) -> bool {
        match self.entity {
            Entity::Contacts => self.owner.is_some(),
            Entity::Companies | Entity::Locations => false,
            _ => true,
        }
    }

    /// The QueryModel filter of this scope (Autotask requires at least one condition).
    pub fn filter(&self) -> Vec<Value> {
        let by = |field: &str, value: Option<i64>| {
            vec![json!({"op": "eq", "field": field, "value": value})]
        };
        match self.entity {
            Entity::Appointments => return by("resourceID", self.resource),
            Entity::ToDos => return by("assignedToResourceID", self.resource),
            _ => {}
        }
        match (self.company, self.entity) {
            (Some(c), Entity::Companies) => vec![json!({"op": "eq", "field": "id", "value": c})],
            (Some(c), _) => vec![json!({"op": "eq", "field": "companyID", "value": c})],
            (None, _) => vec![json!({"op": "gte", "field": "id", "value": 0})],
        }
    }
}

// ----------------------------------------------------------------------------------------------
// calendar scopes: change-cursor passes and id lookups

/// The filter of a calendar scope's query; none when nothing can match (a resource on no
/// service call, an owner of no company or opportunity).
fn scope_filter(cfg: &Config, scope: &Scope) -> Result<Option<Vec<Value>>, PluginError> {
    Ok(match scope.entity {
        Entity::Contacts => match scope.owner {
            Some(owner) => related::owned_contacts_filter(cfg, owner)?,
            None => Some(scope.filter()),
        },
        Entity::ServiceCalls => {
            related::in_filter("id", &related::service_call_ids(cfg, scope.resource()?)?)
                .map(|f| vec![f])
        }
        _ => Some(scope.filter()),
    })
}

/// Items of a page of rows; service calls with their tickets, tasks and resources.
fn items_of(cfg: &Config, entity: Entity, rows: &[Value]) -> Result<Vec<Item>, PluginError> {
    if entity != Entity::ServiceCalls {
        return Ok(rows.iter().map(|row| entity.to_item(row)).collect());
    }
    let ids = rows.iter().filter_map(|r| number(r, "id")).collect();
    let mut links = related::call_links(cfg, &ids)?;
    Ok(rows
        .iter()
        .map(|row| {
            let l = number(row, "id")
                .and_then(|id| links.remove(&id))
                .unwrap_or_default();
            calendar::service_call_item(row, l)
        })
        .collect())
}

/// One page of a calendar scope (or `contacts:owner=`) with the overlapping change cursor.
fn pull_changes(cfg: &Config, scope: &Scope, request: PullRequest) -> Result<Page, PluginError> {
    let mut cursor = ChangeCursor::parse(request.cursor.as_deref(), changes::OVERLAP)?;
    let modified = scope.entity.modified_field();
    let body = match &cursor.next {
        Some(next) => next_page(cfg, next)?,
        None => {
            let Some(mut filter) = scope_filter(cfg, scope)? else {
                return Ok(cursor.page(Vec::new(), None));
            };
            if let (Some(field), Some(from)) = (modified, cursor.read_from()?) {
                filter.push(
                    json!({"op": "gte", "field": field, "value": changes::format_time(from)}),
                );
            }
            if let Some(days) = scope.past {
                filter.push(
                    json!({"op": "gte", "field": "endDateTime", "value": window_start(days)}),
                );
            }
            query(
                cfg,
                scope.entity.name(),
                filter,
                request.max_items.clamp(1, MAX_RECORDS),
            )?
        }
    };
    let rows: Vec<Value> = body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|row| match modified {
            Some(field) => cursor.observe(&id_of(row), row[field].as_str()),
            None => true,
        })
        .cloned()
        .collect();
    let items = items_of(cfg, scope.entity, &rows)?;
    let next = body["pageDetails"]["nextPageUrl"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Ok(cursor.page(items, next))
}

/// The earliest end of a calendar item a `past=<days>` scope reads: now minus `days`.
fn window_start(days: i64) -> String {
    let now = chrono::DateTime::from_timestamp_millis(syncbridge_sdk::clock::now_ms() as i64)
        .unwrap_or_default();
    changes::format_time(now - chrono::TimeDelta::days(days))
}

/// `lookup-items` of the calendar scopes: `id:<id>` keys, within the scope.
fn lookup_ids(cfg: &Config, scope: &Scope, keys: &[String]) -> Result<Vec<Item>, PluginError> {
    let mut ids = std::collections::BTreeSet::new();
    for key in keys {
        let id = key
            .strip_prefix("id:")
            .and_then(|id| id.trim().parse::<i64>().ok())
            .ok_or_else(|| {
                PluginError::invalid_field(
                    "keys",
                    format!(
                        "{key:?} is not an id:<number> key, the only key {} has",
                        scope.entity.name()
                    ),
                )
            })?;
        ids.insert(id);
    }
    let Some(by_id) = related::in_filter("id", &ids) else {
        return Ok(Vec::new());
    };
    let mut filter = vec![by_id];
    if matches!(scope.entity, Entity::Appointments | Entity::ToDos) {
        filter.extend(scope.filter());
    }
    let rows = related::query_all(cfg, scope.entity.name(), filter)?;
    items_of(cfg, scope.entity, &rows)
}

fn id_of(row: &Value) -> String {
    match &row["id"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    }
}

fn text(row: &Value, field: &str) -> Option<String> {
    row.get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn number(row: &Value, field: &str) -> Option<i64> {
    row.get(field).and_then(Value::as_i64)
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64() != Some(0),
        _ => false,
    }
}

/// Maps an Autotask contact row to a canonical contact.
pub fn contact_item(row: &Value) -> Item {
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
    let mut extra = Vec::new();
    for f in ["emailAddress2", "emailAddress3", "extension", "externalID"] {
        if let Some(v) = text(row, f) {
            extra.push(Attribute {
                name: f.into(),
                value: v,
            });
        }
    }
    Item {
        id: id_of(row),
        version: text(row, "lastModifiedDate"),
        removed: None,
        body: Some(ItemBody::Contact(Contact {
            first_name: first,
            last_name: last,
            display_name: display,
            title: text(row, "title"),
            email: text(row, "emailAddress"),
            phone: text(row, "phone"),
            mobile: text(row, "mobilePhone"),
            company: number(row, "companyID").map(|id| CompanyRef {
                id: id.to_string(),
                name: None,
            }),
            site: number(row, "companyLocationID").map(|id| SiteRef {
                id: id.to_string(),
                name: None,
            }),
            contact_types: Vec::new(),
            active: truthy(&row["isActive"]),
            extra,
        })),
    }
}

// ----------------------------------------------------------------------------------------------
// HTTP

/// The zone lookup URL for `cfg`.
pub fn zone_lookup_url(cfg: &Config) -> String {
    let root = cfg
        .zone_lookup_url
        .as_deref()
        .unwrap_or(ZONE_LOOKUP)
        .trim_end_matches('/');
    let root = strip_version(root);
    format!(
        "{root}/v1.0/zoneInformation?user={}",
        url::encode_query_value(cfg.api_user.trim())
    )
}

fn strip_version(root: &str) -> &str {
    let lower = root.to_ascii_lowercase();
    if lower.ends_with("/v1.0") {
        &root[..root.len() - 5]
    } else {
        root
    }
}

/// Looks the zone up (no credentials); answers the zone's REST root (`…/ATServicesRest`).
fn discover_zone(cfg: &Config) -> Result<Value, PluginError> {
    let r = Request::get(zone_lookup_url(cfg))
        .header("Accept", "application/json")
        .send()?;
    if !(200..300).contains(&r.status()) {
        let message = autotask_errors(&r).unwrap_or_else(|| format!("HTTP {}", r.status()));
        return Err(if r.status() == 500 || r.status() == 404 {
            PluginError::NotFound(format!(
                "Autotask found no zone for API user {}: {message}",
                cfg.api_user
            ))
        } else {
            classify_status(r.status(), r.header("Retry-After"), &message)
        });
    }
    let v: Value = r.json()?;
    if v["url"].as_str().is_none_or(str::is_empty) {
        return Err(PluginError::Remote(RemoteFailure {
            status: 200,
            message: "zoneInformation answered without a url".into(),
        }));
    }
    Ok(v)
}

/// `…/V1.0` of the connection's zone, from the configuration, the state cache or a lookup.
pub fn api_root(cfg: &Config) -> Result<String, PluginError> {
    if let Some(base) = cfg.base_url.as_deref().filter(|b| !b.is_empty()) {
        return Ok(format!(
            "{}/V1.0",
            strip_version(base.trim_end_matches('/'))
        ));
    }
    let cached: Option<Value> = state::get(ZONE_KEY).and_then(|s| serde_json::from_str(&s).ok());
    let zone_url = match cached {
        Some(c) if c["user"].as_str() == Some(cfg.api_user.as_str()) => {
            c["url"].as_str().unwrap_or_default().to_owned()
        }
        _ => {
            let zone = discover_zone(cfg)?;
            let url = zone["url"].as_str().unwrap_or_default().to_owned();
            state::set(
                ZONE_KEY,
                &json!({"user": cfg.api_user, "url": url, "zoneName": zone["zoneName"]})
                    .to_string(),
            );
            url
        }
    };
    Ok(format!(
        "{}/V1.0",
        strip_version(zone_url.trim_end_matches('/'))
    ))
}

fn autotask_errors(r: &Response) -> Option<String> {
    let v: Value = serde_json::from_slice(r.bytes()).ok()?;
    let msgs: Vec<&str> = v["errors"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    (!msgs.is_empty()).then(|| msgs.join("; "))
}

/// Classifies a non-2xx Autotask answer. Autotask reports rejected input (unknown field, wrong
/// type, missing required field, business rules) as HTTP 500 with `{"errors":[…]}`: those are
/// `invalid`, not worth a retry; a 500 without a message or naming an internal error stays
/// transient.
pub fn classify(r: &Response) -> PluginError {
    let message = autotask_errors(r);
    if r.status() == 500 && r.header("Retry-After").is_none() {
        if let Some(m) = &message {
            if !m.to_ascii_lowercase().contains("internal error") {
                return PluginError::invalid(format!("Autotask rejected the request: {m}"));
            }
        }
    }
    classify_status(
        r.status(),
        r.header("Retry-After"),
        &message.unwrap_or_else(|| r.text()),
    )
}

fn checked(r: Response) -> Result<Value, PluginError> {
    if !(200..300).contains(&r.status()) {
        return Err(classify(&r));
    }
    r.json()
}

/// Follows a `nextPageUrl` verbatim, but only on the zone's own host: the credential headers
/// carry the API secret.
fn next_page(cfg: &Config, next: &str) -> Result<Value, PluginError> {
    let root = api_root(cfg)?;
    if !url::same_origin(next, &root) {
        return Err(PluginError::invalid_field(
            "cursor",
            format!(
                "the cursor does not point at the Autotask zone {}; refusing to send the credentials elsewhere",
                url::origin(&root).unwrap_or(root)
            ),
        ));
    }
    checked(
        Request::get(next)
            .credential(CREDENTIAL)
            .header("Accept", "application/json")
            .send()?,
    )
}

/// `POST {root}/{entity}/query`.
fn query(cfg: &Config, entity: &str, filter: Vec<Value>, max: u32) -> Result<Value, PluginError> {
    let root = api_root(cfg)?;
    let r = Request::post(format!("{root}/{entity}/query"))
        .credential(CREDENTIAL)
        .json(&json!({"MaxRecords": max, "filter": filter}))?
        .send()?;
    checked(r)
}

// ----------------------------------------------------------------------------------------------
// push

/// The Autotask field of a canonical contact field name (kebab, snake or Autotask spelling).
pub fn autotask_field(name: &str) -> Option<&'static str> {
    Some(
        match name.to_ascii_lowercase().replace(['_', '-'], "").as_str() {
            "firstname" => "firstName",
            "lastname" => "lastName",
            "title" => "title",
            "email" | "emailaddress" => "emailAddress",
            "phone" => "phone",
            "mobile" | "mobilephone" => "mobilePhone",
            "site" | "companylocationid" => "companyLocationID",
            "active" | "isactive" => "isActive",
            _ => return None,
        },
    )
}

fn site_id(c: &Contact) -> Result<Option<i64>, PluginError> {
    c.site
        .as_ref()
        .map(|s| {
            s.id.trim().parse::<i64>().map_err(|_| {
                PluginError::invalid_field("site", format!("{:?} is not a location id", s.id))
            })
        })
        .transpose()
}

/// The value of one Autotask contact field from a canonical contact; `None` when blank.
fn field_value(c: &Contact, field: &str) -> Result<Option<Value>, PluginError> {
    let s = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| json!(s))
    };
    Ok(match field {
        "firstName" => s(&c.first_name),
        "lastName" => s(&c.last_name),
        "title" => s(&c.title),
        "emailAddress" => s(&c.email),
        "phone" => s(&c.phone),
        "mobilePhone" => s(&c.mobile),
        "companyLocationID" => site_id(c)?.map(|id| json!(id)),
        "isActive" => Some(json!(i32::from(c.active))),
        _ => None,
    })
}

/// Fields a create sends.
pub const CREATE_FIELDS: &[&str] = &[
    "firstName",
    "lastName",
    "title",
    "emailAddress",
    "phone",
    "mobilePhone",
    "companyLocationID",
    "isActive",
];

fn contact_body(op: &WriteOp) -> Result<Option<&Contact>, PluginError> {
    match &op.body {
        None => Ok(None),
        Some(ItemBody::Contact(c)) => Ok(Some(c)),
        Some(_) => Err(PluginError::invalid_field("body", "expected a contact")),
    }
}

fn company_of(c: Option<&Contact>) -> Result<Option<i64>, PluginError> {
    c.and_then(|c| c.company.as_ref())
        .map(|r| {
            r.id.trim().parse::<i64>().map_err(|_| {
                PluginError::invalid_field("company", format!("{:?} is not a company id", r.id))
            })
        })
        .transpose()
}

fn target(op: &WriteOp) -> Result<i64, PluginError> {
    op.target_id
        .as_deref()
        .ok_or_else(|| PluginError::invalid_field("target-id", "required for this action"))?
        .trim()
        .parse()
        .map_err(|_| PluginError::invalid_field("target-id", "not a numeric Autotask id"))
}

/// The company a contact belongs to in Autotask (needed for the `/Companies/{id}/Contacts` path).
fn current_company(root: &str, id: i64) -> Result<i64, PluginError> {
    let v = checked(
        Request::get(format!("{root}/Contacts/{id}"))
            .credential(CREDENTIAL)
            .header("Accept", "application/json")
            .send()?,
    )?;
    if v["item"].is_null() {
        return Err(PluginError::NotFound(format!(
            "Autotask has no contact {id}"
        )));
    }
    number(&v["item"], "companyID")
        .ok_or_else(|| PluginError::NotFound(format!("contact {id} has no companyID")))
}

fn item_id(v: &Value) -> Result<String, PluginError> {
    match &v["itemId"] {
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) => Ok(s.clone()),
        _ => Err(PluginError::Remote(RemoteFailure {
            status: 200,
            message: "Autotask answered without an itemId".into(),
        })),
    }
}

/// The Autotask fields of `names` with their values in `c`; a blank source
/// value never clears an Autotask value.
fn changed_fields(c: &Contact, names: &[String]) -> Result<Map<String, Value>, PluginError> {
    let mut body = Map::new();
    for name in names {
        if name.eq_ignore_ascii_case("company") {
            return Err(PluginError::invalid_field(
                "company",
                "Autotask contacts cannot move to another company",
            ));
        }
        let field = autotask_field(name).ok_or_else(|| {
            PluginError::invalid_field(name.clone(), "not a field this connector writes")
        })?;
        if let Some(v) = field_value(c, field)? {
            body.insert(field.into(), v);
        }
    }
    Ok(body)
}

fn write_contact(
    root: &str,
    op: &WriteOp,
    scope_company: Option<i64>,
) -> Result<WriteOk, PluginError> {
    let contact = contact_body(op)?;
    let (company, fields) = match op.action {
        WriteAction::Create => {
            let c = contact
                .ok_or_else(|| PluginError::invalid_field("body", "create needs a contact"))?;
            let company = company_of(Some(c))?.or(scope_company).ok_or_else(|| {
                PluginError::invalid_field(
                    "company",
                    "a new Autotask contact needs a company (in the body or the scope contacts:company=<id>)",
                )
            })?;
            let mut body = Map::new();
            for f in CREATE_FIELDS {
                if let Some(v) = field_value(c, f)? {
                    body.insert((*f).into(), v);
                }
            }
            let v = checked(
                Request::post(format!("{root}/Companies/{company}/Contacts"))
                    .credential(CREDENTIAL)
                    .json(&Value::Object(body))?
                    .send()?,
            )?;
            return Ok(WriteOk {
                target_id: item_id(&v)?,
                version: None,
            });
        }
        WriteAction::Update => {
            let c = contact
                .ok_or_else(|| PluginError::invalid_field("body", "update needs a contact"))?;
            (company_of(Some(c))?, changed_fields(c, &op.fields)?)
        }
        WriteAction::Reactivate => {
            // The WIT says the listed fields apply to reactivate as to update:
            // one PATCH sets the contact active with its current values.
            let mut body = match contact {
                Some(c) => changed_fields(c, &op.fields)?,
                None => Map::new(),
            };
            body.insert("isActive".into(), json!(1));
            (company_of(contact)?, body)
        }
        WriteAction::Deactivate => {
            let mut body = Map::new();
            body.insert("isActive".into(), json!(0));
            (company_of(contact)?, body)
        }
        WriteAction::Delete => {
            return Err(PluginError::Unsupported(
                "Autotask contacts are deactivated, never deleted".into(),
            ))
        }
    };
    let id = target(op)?;
    if fields.is_empty() {
        return Ok(WriteOk {
            target_id: id.to_string(),
            version: None,
        });
    }
    let company = match company {
        Some(c) => c,
        None => current_company(root, id)?,
    };
    let mut body = fields;
    body.insert("id".into(), json!(id));
    let v = checked(
        Request::patch(format!("{root}/Companies/{company}/Contacts"))
            .credential(CREDENTIAL)
            .json(&Value::Object(body))?
            .send()?,
    )?;
    Ok(WriteOk {
        target_id: item_id(&v)?,
        version: None,
    })
}

// ----------------------------------------------------------------------------------------------
// test-connection

fn test_connection(cfg: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    let root = if cfg.base_url.as_deref().is_some_and(|b| !b.is_empty()) {
        out.push(Finding {
            check: "zone".into(),
            outcome: Outcome::Skipped,
            cause: Some("base_url is configured, zone discovery is not used".into()),
            remedy: None,
        });
        match api_root(cfg) {
            Ok(r) => r,
            Err(e) => {
                out.push(Finding::failed("zone", e.describe(), "check base_url"));
                return out;
            }
        }
    } else {
        // Always look the zone up again: the customer may have moved.
        state::delete(ZONE_KEY);
        match api_root(cfg) {
            Ok(r) => {
                out.push(Finding::ok("zone"));
                r
            }
            Err(PluginError::NotFound(m)) => {
                out.push(Finding::failed(
                    "zone",
                    m,
                    "check api_user: it must be the user name (e-mail) of an Autotask API-only user (Admin > Resources/Users, security level API User)",
                ));
                return out;
            }
            Err(e) => {
                out.push(Finding::failed(
                    "zone",
                    format!("the zone lookup failed: {}", e.describe()),
                    "check zone_lookup_url and that webservices.autotask.net is reachable and allowed on the connection",
                ));
                return out;
            }
        }
    };
    let threshold = Request::get(format!("{root}/ThresholdInformation"))
        .credential(CREDENTIAL)
        .header("Accept", "application/json")
        .send();
    match threshold {
        Err(e) => {
            out.push(Finding::failed(
                "credentials",
                e.describe(),
                "check that the zone host is allowed on the connection and reachable",
            ));
            return out;
        }
        Ok(r) if r.status() == 401 => {
            out.push(Finding::failed(
                "credentials",
                format!(
                    "Autotask rejected the API credentials (HTTP 401{})",
                    autotask_errors(&r).map(|m| format!(": {m}")).unwrap_or_default()
                ),
                "check the credential headers: UserName and Secret of the API-only user, and ApiIntegrationCode = its API tracking identifier (Admin > Resources > Security)",
            ));
            return out;
        }
        Ok(r) if r.status() == 403 => {
            out.push(Finding::failed(
                "credentials",
                format!("Autotask refused the API user (HTTP 403{})", autotask_errors(&r).map(|m| format!(": {m}")).unwrap_or_default()),
                "give the user the \"API User (system)\" security level and check ImpersonationResourceId if set",
            ));
            return out;
        }
        Ok(r) if (200..300).contains(&r.status()) => {
            out.push(Finding::ok("credentials"));
            let v: Value = serde_json::from_slice(r.bytes()).unwrap_or_default();
            if let (Some(limit), Some(used)) = (
                v["externalRequestThreshold"].as_u64(),
                v["currentTimeframeRequestCount"].as_u64(),
            ) {
                if limit > 0 && used * 10 >= limit * 9 {
                    out.push(Finding {
                        check: "request-threshold".into(),
                        outcome: Outcome::Warning,
                        cause: Some(format!("{used} of {limit} API requests of this hour are used")),
                        remedy: Some("syncs may be throttled; spread other integrations' load or wait for the next hour".into()),
                    });
                }
            }
        }
        Ok(r) => {
            out.push(Finding::failed(
                "credentials",
                format!("Autotask answered HTTP {}", r.status()),
                "check the zone / base_url and try again later",
            ));
            return out;
        }
    }
    let count = Request::post(format!("{root}/Contacts/query/count"))
        .credential(CREDENTIAL)
        .json(&json!({"filter": [{"op": "gte", "field": "id", "value": 0}]}))
        .and_then(Request::send);
    out.push(match count {
        Ok(r) if (200..300).contains(&r.status()) => Finding::ok("read-contacts"),
        Ok(r) => Finding::failed(
            "read-contacts",
            format!("querying contacts answered: {}", classify(&r).describe()),
            "give the API user a security level that can read and edit contacts",
        ),
        Err(e) => Finding::failed("read-contacts", e.describe(), "try again later"),
    });
    out
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod tests_calendar;
