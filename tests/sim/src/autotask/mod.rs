//! Autotask PSA REST API (`/ATServicesRest/V1.0`) simulator.
//!
//! Paths are case-insensitive like the real service. Wire format is camelCase JSON with the
//! `items`/`pageDetails`, `item`, `itemId` and `errors` envelopes; queries take a QueryModel
//! (`POST …/query` or `GET …/query?search=`), at most 500 records a page, paged through
//! `pageDetails.nextPageUrl`.

pub mod fields;
mod query;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::store::Store;
use crate::util::{header, json_response, lock, parse_query, percent_encode, query_get};
use fields::{Ty, ENTITIES};

/// An API user allowed to call the API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiUser {
    /// `UserName` header (an e-mail address).
    pub user_name: String,
    /// `Secret` header.
    pub secret: String,
    /// `ApiIntegrationCode` header (tracking identifier).
    pub integration_code: String,
}

/// Autotask section of a seed: entities by name (`companies`, `contacts`, …; camelCase JSON,
/// `id` assigned when absent).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AutotaskSeed {
    /// API users.
    pub api_users: Vec<ApiUser>,
    /// Zone name reported by zoneInformation (default `America East`).
    pub zone_name: Option<String>,
    /// Entities keyed by entity name (case-insensitive).
    pub entities: BTreeMap<String, Vec<Value>>,
}

/// Autotask state.
#[derive(Debug)]
pub struct AutotaskState {
    /// API users.
    pub api_users: Vec<ApiUser>,
    /// Zone name.
    pub zone_name: String,
    /// Rows per entity (lowercase name) keyed by id.
    pub entities: BTreeMap<String, BTreeMap<i64, Value>>,
    /// Next id.
    pub next_id: i64,
    /// Hourly request limit (real default 10,000).
    pub threshold: u64,
    /// Requests in the current hour.
    pub used: u64,
    /// Start of the current hour window.
    pub window_start: std::time::Instant,
}

impl Default for AutotaskState {
    fn default() -> Self {
        AutotaskState {
            api_users: vec![],
            zone_name: "America East".into(),
            entities: ENTITIES
                .iter()
                .map(|(n, _)| (n.to_string(), BTreeMap::new()))
                .collect(),
            next_id: 29_682_885,
            threshold: 10_000,
            used: 0,
            window_start: std::time::Instant::now(),
        }
    }
}

/// The fields the service moves to "now" when a row is created or changed: each entity has the
/// one or two of these its swagger model lists (Contacts and ToDos `lastModifiedDate`,
/// ServiceCalls `lastModifiedDateTime`, Appointments `updateDateTime`, Companies
/// `lastActivityDate` and `lastTrackedModifiedDateTime`, Opportunities `lastActivity`).
pub const MODIFIED_FIELDS: &[&str] = &[
    "lastModifiedDate",
    "lastModifiedDateTime",
    "lastActivityDate",
    "lastTrackedModifiedDateTime",
    "updateDateTime",
    "lastActivity",
];

/// The entity key (lowercase path name) of an entity name as seeds and tests spell it: `ToDos`
/// is the `CompanyToDos` entity (queried as `CompanyToDos/query`, written under
/// `Companies/{id}/ToDos`).
pub fn entity_key(name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "todos" => "companytodos".into(),
        other => other.into(),
    }
}

fn stamp_modified(row: &mut Map<String, Value>) {
    let now = crate::util::now_iso_ms();
    for f in MODIFIED_FIELDS {
        if row.contains_key(*f) {
            row.insert((*f).into(), json!(now));
        }
    }
}

/// Field list of an entity.
pub fn entity_fields(name: &str) -> Option<&'static [(&'static str, Ty)]> {
    ENTITIES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Parent/child relations: `(parent entity, child path segment, child entity, parent field)`.
const CHILDREN: &[(&str, &str, &str, &str)] = &[
    ("companies", "contacts", "contacts", "companyID"),
    ("companies", "locations", "companylocations", "companyID"),
    ("companies", "todos", "companytodos", "companyID"),
    (
        "servicecalls",
        "tickets",
        "servicecalltickets",
        "serviceCallID",
    ),
    ("servicecalls", "tasks", "servicecalltasks", "serviceCallID"),
    (
        "servicecalltickets",
        "resources",
        "servicecallticketresources",
        "serviceCallTicketID",
    ),
    (
        "servicecalltasks",
        "resources",
        "servicecalltaskresources",
        "serviceCallTaskID",
    ),
];

impl AutotaskState {
    /// Normalises a row: every field of the entity present (null when unknown), camelCase keys
    /// matched case-insensitively, `userDefinedFields` array.
    fn normalize(entity: &str, given: &Value, id: i64) -> Value {
        let mut o = Map::new();
        o.insert("id".into(), json!(id));
        let fields = entity_fields(entity).unwrap_or(&[]);
        for (f, ty) in fields {
            if *f == "id" {
                continue;
            }
            let v = crate::odata::get_ci(given, f)
                .cloned()
                .unwrap_or(Value::Null);
            let v = match (ty, &v) {
                (Ty::Bool, Value::Null) if f.starts_with("is") => json!(false),
                _ => v,
            };
            o.insert(f.to_string(), v);
        }
        if matches!(o.get("isActive"), Some(Value::Bool(false)))
            && crate::odata::get_ci(given, "isActive").is_none()
        {
            o.insert("isActive".into(), json!(true));
        }
        for date_field in ["createDate", "createDateTime"]
            .iter()
            .chain(MODIFIED_FIELDS)
        {
            if o.get(*date_field) == Some(&Value::Null) {
                o.insert((*date_field).into(), json!(crate::util::now_iso_ms()));
            }
        }
        o.insert(
            "userDefinedFields".into(),
            crate::odata::get_ci(given, "userDefinedFields")
                .cloned()
                .unwrap_or(json!([])),
        );
        Value::Object(o)
    }

    /// Inserts a row, returning its id.
    pub fn insert(&mut self, entity: &str, given: &Value) -> i64 {
        let id = given
            .get("id")
            .and_then(|v| v.as_i64())
            .filter(|i| *i >= 0)
            .unwrap_or_else(|| {
                self.next_id += 1;
                self.next_id
            });
        self.next_id = self.next_id.max(id);
        let row = Self::normalize(entity, given, id);
        self.entities
            .entry(entity.to_string())
            .or_default()
            .insert(id, row);
        id
    }

    /// Adds seed data.
    pub fn apply_seed(&mut self, seed: &AutotaskSeed) {
        self.api_users.extend(seed.api_users.iter().cloned());
        if let Some(z) = &seed.zone_name {
            self.zone_name = z.clone();
        }
        for (name, rows) in &seed.entities {
            let n = entity_key(name);
            for r in rows {
                self.insert(&n, r);
            }
        }
    }

    /// JSON dump.
    pub fn dump(&self) -> Value {
        json!({
            "apiUsers": self.api_users,
            "threshold": self.threshold,
            "used": self.used,
            "entities": self.entities.iter().map(|(k, v)| (k.clone(), Value::Array(v.values().cloned().collect()))).collect::<Map<_, _>>(),
        })
    }
}

/// Rust API for tests.
pub struct AutotaskHandle<'a>(pub &'a Store);

impl AutotaskHandle<'_> {
    /// Sets the hourly request limit and optionally the requests already used.
    pub fn set_threshold(&self, limit: u64, used: Option<u64>) {
        let mut s = lock(&self.0.autotask);
        s.threshold = limit;
        if let Some(u) = used {
            s.used = u;
        }
    }
    /// Adds an API user.
    pub fn add_api_user(&self, user_name: &str, secret: &str, integration_code: &str) {
        lock(&self.0.autotask).api_users.push(ApiUser {
            user_name: user_name.into(),
            secret: secret.into(),
            integration_code: integration_code.into(),
        });
    }
    /// Inserts a row (camelCase JSON) and returns its id.
    pub fn insert(&self, entity: &str, row: Value) -> i64 {
        lock(&self.0.autotask).insert(&entity_key(entity), &row)
    }
    /// Edits a row as a person in Autotask would: the given fields change and the entity's
    /// modification dates ([`MODIFIED_FIELDS`]) move to now. False when there is no such row.
    pub fn edit(&self, entity: &str, id: i64, patch: Value) -> bool {
        let mut s = lock(&self.0.autotask);
        let Some(row) = s
            .entities
            .get_mut(&entity_key(entity))
            .and_then(|rows| rows.get_mut(&id))
        else {
            return false;
        };
        for (k, v) in patch.as_object().into_iter().flatten() {
            row[k] = v.clone();
        }
        if let Some(o) = row.as_object_mut() {
            stamp_modified(o);
        }
        true
    }
    /// Deletes a row, as a person in Autotask would. False when there is none.
    pub fn delete(&self, entity: &str, id: i64) -> bool {
        lock(&self.0.autotask)
            .entities
            .get_mut(&entity_key(entity))
            .and_then(|rows| rows.remove(&id))
            .is_some()
    }
    /// All rows of an entity.
    pub fn rows(&self, entity: &str) -> Vec<Value> {
        lock(&self.0.autotask)
            .entities
            .get(&entity_key(entity))
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
    /// One row.
    pub fn get(&self, entity: &str, id: i64) -> Option<Value> {
        lock(&self.0.autotask)
            .entities
            .get(&entity_key(entity))?
            .get(&id)
            .cloned()
    }
}

/// `{"errors":[…]}` with a status.
pub fn errors(status: StatusCode, msgs: &[&str]) -> Response {
    json_response(status, &json!({ "errors": msgs }))
}

/// The answer for an injected fault status.
pub fn fault_response(status: StatusCode) -> Response {
    let msg = match status.as_u16() {
        429 => "The request was rejected because the API request threshold was exceeded.",
        401 => "Unauthorized",
        _ => "An internal error occurred.",
    };
    errors(status, &[msg])
}

fn entity_display(name: &str) -> String {
    // Path names are case-insensitive; echo a PascalCase-ish name in messages.
    crate::util::upper_first(name)
}

fn authenticate(store: &Store, h: &HeaderMap) -> Result<(), Response> {
    let code = header(h, "ApiIntegrationCode").unwrap_or("");
    let user = header(h, "UserName").unwrap_or("");
    let secret = header(h, "Secret").unwrap_or("");
    let sc = store.scenarios();
    let s = lock(&store.autotask);
    let ok = !sc.wrong_password
        && s.api_users.iter().any(|u| {
            u.user_name.eq_ignore_ascii_case(user)
                && u.secret == secret
                && u.integration_code == code
        });
    if !ok {
        return Err(errors(StatusCode::UNAUTHORIZED, &["Unauthorized"]));
    }
    if let Some(imp) = header(h, "ImpersonationResourceId") {
        let valid = imp
            .parse::<i64>()
            .ok()
            .and_then(|id| s.entities.get("resources").and_then(|r| r.get(&id)))
            .is_some_and(|r| r["isActive"] != json!(false));
        if !valid {
            return Err(errors(
                StatusCode::FORBIDDEN,
                &[&format!(
                    "ImpersonationResourceId {imp} is not a valid, active resource."
                )],
            ));
        }
    }
    Ok(())
}

fn root_url(store: &Store) -> String {
    format!("{}/ATServicesRest/V1.0", store.base_url())
}

/// Entry point.
pub async fn handle(store: Arc<Store>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_ascii_lowercase();
    let Some(rest) = path
        .strip_prefix("/atservicesrest/v1.0/")
        .or_else(|| path.strip_prefix("/atservicesrest/v1.0"))
    else {
        return errors(
            StatusCode::NOT_FOUND,
            &["The requested resource does not exist."],
        );
    };
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let q = parse_query(parts.uri.query());
    let m = parts.method.clone();

    if segs.as_slice() == ["zoneinformation"] && m == Method::GET {
        let user = query_get(&q, "user").unwrap_or("");
        let s = lock(&store.autotask);
        if !s
            .api_users
            .iter()
            .any(|u| u.user_name.eq_ignore_ascii_case(user))
        {
            return errors(
                StatusCode::INTERNAL_SERVER_ERROR,
                &["Zone information could not be determined"],
            );
        }
        return json_response(
            StatusCode::OK,
            &json!({
                "zoneName": s.zone_name,
                "url": format!("{}/ATServicesRest/", store.base_url()),
                "webUrl": format!("{}/", store.base_url()),
                "ci": 1,
            }),
        );
    }
    if let Err(r) = authenticate(&store, &parts.headers) {
        return r;
    }
    {
        let mut s = lock(&store.autotask);
        if s.window_start.elapsed() > std::time::Duration::from_secs(3600) {
            s.window_start = std::time::Instant::now();
            s.used = 0;
        }
        s.used += 1;
        if segs.as_slice() == ["thresholdinformation"] {
            return json_response(
                StatusCode::OK,
                &json!({
                    "externalRequestThreshold": s.threshold,
                    "requestThresholdTimeframe": 60,
                    "currentTimeframeRequestCount": s.used,
                }),
            );
        }
        if s.used > s.threshold {
            return errors(
                StatusCode::TOO_MANY_REQUESTS,
                &[&format!("The request was rejected because the API request threshold of {} requests per hour was exceeded.", s.threshold)],
            );
        }
    }
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => return errors(StatusCode::BAD_REQUEST, &[&format!("Invalid JSON: {e}")]),
        }
    };
    route(&store, &m, &segs, &q, body)
}

fn route(
    store: &Store,
    m: &Method,
    segs: &[&str],
    q: &[(String, String)],
    body: Value,
) -> Response {
    let Some(first) = segs.first() else {
        return errors(
            StatusCode::NOT_FOUND,
            &["The requested resource does not exist."],
        );
    };
    let entity = first.to_string();
    if entity_fields(&entity).is_none() {
        return errors(
            StatusCode::NOT_FOUND,
            &[&format!(
                "The requested resource '{}' does not exist.",
                entity_display(&entity)
            )],
        );
    }
    let root = root_url(store);
    match (m.as_str(), &segs[1..]) {
        ("POST", ["query"]) => query::run(store, &entity, &root, &body, None),
        ("GET", ["query"]) => match query_get(q, "search").map(serde_json::from_str::<Value>) {
            Some(Ok(v)) => query::run(store, &entity, &root, &v, None),
            _ => errors(
                StatusCode::BAD_REQUEST,
                &["The search parameter is required and must be a JSON QueryModel."],
            ),
        },
        ("GET", ["query", "next"]) => {
            let search = query_get(q, "search").and_then(|s| serde_json::from_str::<Value>(s).ok());
            let paging = query_get(q, "paging").and_then(|s| serde_json::from_str::<Value>(s).ok());
            match (search, paging) {
                (Some(s), Some(p)) => query::run(store, &entity, &root, &s, Some(&p)),
                _ => errors(StatusCode::BAD_REQUEST, &["Invalid paging url."]),
            }
        }
        ("GET", ["entityinformation"]) => json_response(
            StatusCode::OK,
            &json!({"info": {"name": entity_display(&entity).trim_end_matches('s'), "canCreate": true, "canDelete": matches!(entity.as_str(), "appointments" | "servicecalls") || child_delete(&entity),
                "canQuery": true, "canUpdate": true, "userAccessForCreate": "All", "userAccessForDelete": "All", "userAccessForQuery": "All", "userAccessForUpdate": "All",
                "hasUserDefinedFields": matches!(entity.as_str(), "companies" | "contacts"), "supportsWebhookCallouts": matches!(entity.as_str(), "companies" | "contacts")}}),
        ),
        ("GET", ["entityinformation", "fields"]) => {
            let fields: Vec<Value> = entity_fields(&entity)
                .unwrap_or(&[])
                .iter()
                .map(|(name, ty)| {
                    let reference = fields::reference_entity(&entity, name);
                    let picklist = fields::picklist(&entity, name);
                    json!({
                        "name": name,
                        "dataType": match ty { Ty::Int => if *name == "id" { "long" } else { "integer" }, Ty::Num => "double", Ty::Str => "string", Ty::Bool => "boolean", Ty::Date => "datetime" },
                        "length": if *ty == Ty::Str { 100 } else { 0 },
                        "isRequired": required_fields(&entity).iter().any(|f| f == name),
                        "isReadOnly": *name == "id" || name.starts_with("create") || name.starts_with("lastModified") || name.starts_with("lastActivity") || name.starts_with("lastTracked") || name.starts_with("impersonatorCreator"),
                        "isQueryable": true,
                        "isReference": reference.is_some(),
                        "referenceEntityType": reference.unwrap_or(""),
                        "isPickList": picklist.is_some(),
                        "picklistValues": picklist.map(|vals| vals.iter().enumerate().map(|(i, (v, label, default))| json!({
                            "value": v.to_string(), "label": label, "isDefaultValue": default, "sortOrder": i,
                            "parentValue": "", "isActive": true, "isSystem": true,
                        })).collect::<Vec<_>>()),
                        "picklistParentValueField": "",
                        "isSupportedWebhookField": false,
                    })
                })
                .collect();
            json_response(StatusCode::OK, &json!({ "fields": fields }))
        }
        ("GET", ["entityinformation", "userdefinedfields"]) => {
            json_response(StatusCode::OK, &json!({ "fields": [] }))
        }
        ("POST", ["query", "count"]) => query::count(store, &entity, &body),
        ("GET", ["query", "count"]) => {
            match query_get(q, "search").map(serde_json::from_str::<Value>) {
                Some(Ok(v)) => query::count(store, &entity, &v),
                _ => errors(
                    StatusCode::BAD_REQUEST,
                    &["The search parameter is required."],
                ),
            }
        }
        ("GET", [id]) => match id.parse::<i64>() {
            Ok(id) => {
                let s = lock(&store.autotask);
                let item = s
                    .entities
                    .get(&entity)
                    .and_then(|m| m.get(&id))
                    .cloned()
                    .unwrap_or(Value::Null);
                json_response(StatusCode::OK, &json!({ "item": item }))
            }
            Err(_) => errors(
                StatusCode::NOT_FOUND,
                &["The requested resource does not exist."],
            ),
        },
        ("DELETE", [id]) if top_level_write(&entity, m) => {
            let Ok(id) = id.parse::<i64>() else {
                return errors(
                    StatusCode::NOT_FOUND,
                    &["The requested resource does not exist."],
                );
            };
            let mut s = lock(&store.autotask);
            match s.entities.get_mut(&entity).and_then(|m| m.remove(&id)) {
                Some(_) => json_response(StatusCode::OK, &json!({ "itemId": id })),
                None => errors(
                    StatusCode::NOT_FOUND,
                    &[&format!(
                        "{} with id {id} was not found.",
                        entity_display(&entity)
                    )],
                ),
            }
        }
        ("POST", []) | ("PATCH", []) | ("PUT", []) | ("DELETE", [_])
            if !top_level_write(&entity, m) =>
        {
            errors(
                StatusCode::METHOD_NOT_ALLOWED,
                &[&format!(
                    "The requested method {m} is not supported for {}.{}",
                    entity_display(&entity),
                    match CHILDREN.iter().find(|c| c.2 == entity) {
                        Some((p, c, _, _)) if *m != Method::DELETE => format!(
                            " Use {}/{{parentId}}/{} instead.",
                            entity_display(p),
                            entity_display(c)
                        ),
                        _ => String::new(),
                    }
                )],
            )
        }
        ("POST", []) => create(store, &entity, body, None),
        ("PATCH", []) | ("PUT", []) => update(store, &entity, body, m == Method::PUT, None),
        (_, [pid, child, rest @ ..]) => {
            let Some((_, _, centity, pfield)) = CHILDREN
                .iter()
                .find(|(p, c, _, _)| *p == entity && c == child)
            else {
                return errors(
                    StatusCode::NOT_FOUND,
                    &["The requested resource does not exist."],
                );
            };
            let Ok(pid) = pid.parse::<i64>() else {
                return errors(
                    StatusCode::NOT_FOUND,
                    &["The requested resource does not exist."],
                );
            };
            if !lock(&store.autotask)
                .entities
                .get(&entity)
                .is_some_and(|m| m.contains_key(&pid))
            {
                return errors(
                    StatusCode::NOT_FOUND,
                    &[&format!(
                        "{} with id {pid} was not found.",
                        entity_display(&entity)
                    )],
                );
            }
            let parent = Some((*pfield, pid));
            match (m.as_str(), rest) {
                ("POST", []) => create(store, centity, body, parent),
                ("PATCH", []) | ("PUT", []) => {
                    update(store, centity, body, m == Method::PUT, parent)
                }
                ("GET", []) => {
                    let s = lock(&store.autotask);
                    let items: Vec<Value> = s
                        .entities
                        .get(*centity)
                        .map(|m| {
                            m.values()
                                .filter(|r| r[*pfield] == json!(pid))
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default();
                    let n = items.len();
                    json_response(
                        StatusCode::OK,
                        &json!({"items": items, "pageDetails": {"count": n, "requestCount": 500, "prevPageUrl": null, "nextPageUrl": null}}),
                    )
                }
                ("DELETE", [id]) if child_delete(centity) => {
                    let mut s = lock(&store.autotask);
                    let id = id.parse::<i64>().unwrap_or(-1);
                    let owned = s
                        .entities
                        .get(*centity)
                        .and_then(|m| m.get(&id))
                        .is_some_and(|r| r[*pfield] == json!(pid));
                    if !owned {
                        return errors(
                            StatusCode::NOT_FOUND,
                            &[&format!(
                                "{} with id {id} was not found.",
                                entity_display(centity)
                            )],
                        );
                    }
                    s.entities.get_mut(*centity).map(|m| m.remove(&id));
                    json_response(StatusCode::OK, &json!({ "itemId": id }))
                }
                ("GET", [id]) => {
                    let s = lock(&store.autotask);
                    let item = id
                        .parse::<i64>()
                        .ok()
                        .and_then(|id| s.entities.get(*centity).and_then(|m| m.get(&id)))
                        .filter(|r| r[*pfield] == json!(pid))
                        .cloned()
                        .unwrap_or(Value::Null);
                    json_response(StatusCode::OK, &json!({ "item": item }))
                }
                _ => errors(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &["The requested method is not supported."],
                ),
            }
        }
        _ => errors(
            StatusCode::METHOD_NOT_ALLOWED,
            &["The requested method is not supported."],
        ),
    }
}

/// Whether the API has `{m} /{Entity}` (or `DELETE /{Entity}/{id}`) for this entity, per the
/// swagger: child entities (Contacts, CompanyLocations, ToDos, service call tickets, tasks and
/// their resources) are written only under their parent.
fn top_level_write(entity: &str, m: &Method) -> bool {
    match entity {
        "companies" => matches!(m.as_str(), "POST" | "PATCH" | "PUT"),
        "resources" => matches!(m.as_str(), "PATCH" | "PUT"),
        "opportunities" => matches!(m.as_str(), "POST" | "PATCH" | "PUT"),
        "appointments" | "servicecalls" => true,
        _ => false,
    }
}

/// Whether `DELETE /{Parent}/{parentId}/{Child}/{id}` exists for this child entity.
fn child_delete(entity: &str) -> bool {
    matches!(
        entity,
        "contacts"
            | "companylocations"
            | "companytodos"
            | "servicecalltasks"
            | "servicecallticketresources"
            | "servicecalltaskresources"
    )
}

/// Fields the live service reports as required.
fn required_fields(entity: &str) -> &'static [&'static str] {
    match entity {
        "companies" => &["companyName", "companyType", "ownerResourceID", "phone"],
        "contacts" => &["companyID", "firstName", "lastName", "isActive"],
        "companylocations" => &["companyID", "name"],
        "resources" => &["firstName", "lastName", "email", "isActive"],
        "appointments" => &["title", "startDateTime", "endDateTime", "resourceID"],
        "servicecalls" => &["companyID", "startDateTime", "endDateTime"],
        "companytodos" => &[
            "actionType",
            "assignedToResourceID",
            "companyID",
            "startDateTime",
            "endDateTime",
        ],
        _ => &[],
    }
}

fn validate_types(entity: &str, body: &Value) -> Result<(), String> {
    let fields = entity_fields(entity).unwrap_or(&[]);
    let Some(o) = body.as_object() else {
        return Err("The request body must be a JSON object.".into());
    };
    for (k, v) in o {
        if k.eq_ignore_ascii_case("userDefinedFields") || v.is_null() {
            continue;
        }
        let Some((name, ty)) = fields.iter().find(|(f, _)| f.eq_ignore_ascii_case(k)) else {
            return Err(format!(
                "Unable to find {k} in the {} entity.",
                entity_display(entity)
            ));
        };
        let ok = match ty {
            Ty::Int => v.is_i64() || v.is_u64(),
            Ty::Num => v.is_number(),
            Ty::Bool => v.is_boolean(),
            Ty::Str | Ty::Date => v.is_string(),
        };
        if !ok {
            return Err(format!(
                "Error converting value {v} to type of field {name}."
            ));
        }
        if let Some(values) = fields::picklist(entity, name) {
            if !values.iter().any(|(pv, _, _)| v.as_i64() == Some(*pv)) {
                return Err(format!(
                    "Value {v} is not a valid picklist value for field {name}."
                ));
            }
        }
    }
    Ok(())
}

fn create(store: &Store, entity: &str, body: Value, parent: Option<(&str, i64)>) -> Response {
    if let Err(e) = validate_types(entity, &body) {
        return errors(StatusCode::INTERNAL_SERVER_ERROR, &[&e]);
    }
    let mut body = body;
    if let Some(o) = body.as_object_mut() {
        o.remove("id");
        if let Some((f, pid)) = parent {
            o.insert(f.to_string(), json!(pid));
        }
    }
    // Contacts, appointments and to-dos are refused without their required fields (the other
    // entities' required fields are only reported by entityInformation/fields).
    let enforced: &[&str] = match entity {
        "contacts" => &["companyID"],
        "appointments" | "companytodos" => required_fields(entity),
        _ => &[],
    };
    for field in enforced {
        if crate::odata::get_ci(&body, field).is_none_or(|v| v.is_null()) {
            return errors(
                StatusCode::INTERNAL_SERVER_ERROR,
                &[&format!("{field} is required.")],
            );
        }
    }
    let id = lock(&store.autotask).insert(entity, &body);
    json_response(StatusCode::OK, &json!({ "itemId": id }))
}

fn update(
    store: &Store,
    entity: &str,
    body: Value,
    replace: bool,
    parent: Option<(&str, i64)>,
) -> Response {
    if let Err(e) = validate_types(entity, &body) {
        return errors(StatusCode::INTERNAL_SERVER_ERROR, &[&e]);
    }
    let Some(id) = crate::odata::get_ci(&body, "id").and_then(|v| v.as_i64()) else {
        return errors(
            StatusCode::INTERNAL_SERVER_ERROR,
            &["An id is required to update an entity."],
        );
    };
    let mut s = lock(&store.autotask);
    let Some(row) = s.entities.get_mut(entity).and_then(|m| m.get_mut(&id)) else {
        return errors(
            StatusCode::NOT_FOUND,
            &[&format!(
                "{} with id {id} was not found.",
                entity_display(entity)
            )],
        );
    };
    if let Some((f, pid)) = parent {
        if row[f] != json!(pid) {
            return errors(
                StatusCode::NOT_FOUND,
                &[&format!(
                    "{} with id {id} was not found.",
                    entity_display(entity)
                )],
            );
        }
    }
    let fields = entity_fields(entity).unwrap_or(&[]);
    if let (Some(ro), Some(bo)) = (row.as_object_mut(), body.as_object()) {
        if replace {
            for (f, _) in fields {
                if *f != "id" && !f.starts_with("create") {
                    ro.insert(f.to_string(), Value::Null);
                }
            }
        }
        for (k, v) in bo {
            let key = fields
                .iter()
                .find(|(f, _)| f.eq_ignore_ascii_case(k))
                .map(|(f, _)| f.to_string())
                .unwrap_or_else(|| k.clone());
            if key != "id" {
                ro.insert(key, v.clone());
            }
        }
        stamp_modified(ro);
    }
    json_response(StatusCode::OK, &json!({ "itemId": id }))
}

/// Builds `…/{Entity}/query/next?paging=…&search=…`.
fn next_url(root: &str, entity: &str, search: &Value, offset: usize, size: usize) -> String {
    format!(
        "{root}/{}/query/next?paging={}&search={}",
        entity_display(entity),
        percent_encode(&json!({"offset": offset, "pageSize": size}).to_string()),
        percent_encode(&search.to_string())
    )
}
