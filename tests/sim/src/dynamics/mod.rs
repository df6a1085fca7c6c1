//! Dynamics 365 / Dataverse Web API (`/api/data/v9.2`) simulator: OData v4 JSON over
//! `emailserverprofiles`, `mailboxes`, `contacts`, `appointments`, `recurringappointmentmasters`
//! (a series' master row with its pattern columns, validated as Dataverse does), `tasks`, `emails` (with their
//! `email_activity_parties`: deep insert, `$expand`, lambda `$filter`s), `systemusers`, with
//! Test & Enable exactly as Dataverse does it (a `PATCH` setting
//! `testemailconfigurationscheduled`, then a background job filling the statuses). Lookups are
//! bound with `<nav>@odata.bind` (`ownerid@odata.bind: /systemusers(<id>)` sets
//! `_ownerid_value`; an unknown row is a 400), a state written without a status reason takes
//! its default one, and `fullname` of contacts and users is computed from the name parts.

mod expand;
mod tables;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::store::Store;
use crate::util::{header, json_response, lock, parse_query, percent_encode, query_get};
pub use tables::{Table, TABLES};

/// Dynamics section of a seed: rows by entity set name (`mailboxes`, …), bearer tokens.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DynamicsSeed {
    /// Static bearer tokens accepted besides tokens issued by the simulated Entra endpoint.
    pub tokens: Vec<String>,
    /// Rows keyed by entity set name.
    pub rows: BTreeMap<String, Vec<Value>>,
    /// Delay of the Test & Enable background job in milliseconds (default 200).
    pub test_delay_ms: Option<u64>,
}

/// Forced result of a mailbox test: statuses 1 (Success) or 2 (Failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestOutcome {
    /// incomingemailstatus
    pub incoming: i64,
    /// outgoingemailstatus
    pub outgoing: i64,
    /// actstatus
    pub act: i64,
}

/// Dataverse state.
#[derive(Debug)]
pub struct DynamicsState {
    /// Accepted static tokens.
    pub tokens: Vec<String>,
    /// Rows per entity set.
    pub rows: BTreeMap<String, Vec<Value>>,
    /// Row version counter (`@odata.etag`).
    pub version: u64,
    /// Delay of the Test & Enable job.
    pub test_delay: Duration,
    /// Forced test outcomes keyed by lowercase e-mail address.
    pub outcomes: BTreeMap<String, TestOutcome>,
    /// Organization id.
    pub org_id: String,
    /// Caller (application user) id.
    pub user_id: String,
}

impl Default for DynamicsState {
    fn default() -> Self {
        let mut state = DynamicsState {
            tokens: vec![],
            rows: TABLES.iter().map(|t| (t.set.to_string(), vec![])).collect(),
            version: 1_000_000,
            test_delay: Duration::from_millis(200),
            outcomes: BTreeMap::new(),
            org_id: uuid::Uuid::new_v4().to_string(),
            user_id: uuid::Uuid::new_v4().to_string(),
        };
        for &(code, standard, shown, bias) in tables::TIME_ZONES {
            state
                .insert(
                    "timezonedefinitions",
                    &json!({"timezonecode": code, "standardname": standard,
                            "userinterfacename": shown, "bias": bias}),
                )
                .expect("the time zone definitions fit their table");
        }
        state
    }
}

/// Dataverse error body.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

/// The answer for an injected fault status.
pub fn fault_response(status: StatusCode) -> Response {
    let mut r = match status.as_u16() {
        429 => error(
            status,
            "0x80072322",
            "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
        ),
        401 => StatusCode::UNAUTHORIZED.into_response(),
        503 => error(
            status,
            "0x80040265",
            "The service is temporarily unavailable.",
        ),
        _ => error(status, "0x80040216", "An unexpected error occurred."),
    };
    r.headers_mut()
        .insert("OData-Version", HeaderValue::from_static("4.0"));
    r
}

impl DynamicsState {
    fn next_version(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    /// Validates and inserts a row (defaults filled in); returns it.
    pub fn insert(
        &mut self,
        set: &str,
        given: &Value,
    ) -> Result<Value, (StatusCode, String, String)> {
        let table = tables::table(set).ok_or((
            StatusCode::NOT_FOUND,
            "0x8006088a".into(),
            format!("Resource not found for the segment '{set}'."),
        ))?;
        let mut row = table.defaults();
        let id = given
            .get(table.key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        self.apply(table, &mut row, given)?;
        let v = self.next_version();
        let o = row.as_object_mut().expect("row object");
        o.insert(table.key.into(), json!(id));
        o.insert("versionnumber".into(), json!(v));
        let now = crate::util::now_iso();
        o.insert("createdon".into(), json!(now));
        o.insert("modifiedon".into(), json!(now));
        tables::derive(table, o);
        self.rows
            .entry(set.to_string())
            .or_default()
            .push(row.clone());
        Ok(row)
    }

    /// Applies column values (and `x@odata.bind` lookups) to a row, validating names and
    /// option-set values.
    fn apply(
        &self,
        table: &Table,
        row: &mut Value,
        given: &Value,
    ) -> Result<(), (StatusCode, String, String)> {
        let Some(g) = given.as_object() else {
            return Err((
                StatusCode::BAD_REQUEST,
                "0x80040203".into(),
                "The request body must be a JSON object.".into(),
            ));
        };
        for (k, v) in g {
            if k.starts_with('@') {
                continue;
            }
            if let Some(nav) = k.strip_suffix("@odata.bind") {
                let target = v.as_str().unwrap_or("");
                let inner = target.rsplit('/').next().unwrap_or("");
                let (tset, tid) = match (inner.find('('), inner.rfind(')')) {
                    (Some(a), Some(b)) if b > a => (&inner[..a], &inner[a + 1..b]),
                    _ => return Err((StatusCode::BAD_REQUEST, "0x80048d19".into(), format!("Error identified in Payload provided by the user for Entity :'{}', For more information on this error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293  ---->  InnerException : Microsoft.OData.ODataException: An undeclared property '{nav}' which only has property annotations in the payload but no property value was found in the payload.", table.logical))),
                };
                let col = format!("_{}_value", nav.to_ascii_lowercase());
                if !table.columns.contains(&col.as_str()) {
                    return Err((StatusCode::BAD_REQUEST, "0x80060888".into(), format!("The property '{nav}' does not exist on type 'Microsoft.Dynamics.CRM.{}'.", table.logical)));
                }
                let exists = self.rows.get(tset).is_some_and(|r| {
                    let key = tables::table(tset).map(|t| t.key).unwrap_or("");
                    r.iter().any(|x| x[key].as_str() == Some(tid))
                });
                if !exists {
                    return Err((
                        StatusCode::BAD_REQUEST,
                        "0x80040217".into(),
                        format!(
                            "{} With Id = {tid} Does Not Exist",
                            tset.trim_end_matches('s')
                        ),
                    ));
                }
                row[col] = json!(tid);
                continue;
            }
            if let Some(collection) = tables::collection(table.set, k) {
                row[k.as_str()] = expand::related_rows(collection, v)?;
                continue;
            }
            if !table.columns.contains(&k.as_str()) || k.starts_with('_') {
                return Err((StatusCode::BAD_REQUEST, "0x80060888".into(), format!("The property '{k}' does not exist on type 'Microsoft.Dynamics.CRM.{}'. Make sure to only use property names that are defined by the type or mark the type as open type.", table.logical)));
            }
            if let Some(allowed) = tables::choices(table.set, k) {
                if let Some(n) = v.as_i64() {
                    if !allowed.iter().any(|(val, _)| *val == n) {
                        return Err((StatusCode::BAD_REQUEST, "0x80044331".into(), format!("A validation error occurred. The value {n} of '{k}' on record of type '{}' is outside the valid range.", table.logical)));
                    }
                }
            }
            if let (Some((min, max)), Some(n)) = (tables::bounds(table.set, k), v.as_i64()) {
                if !(min..=max).contains(&n) {
                    return Err((StatusCode::BAD_REQUEST, "0x80044331".into(), format!("A validation error occurred. The value {n} of '{k}' on record of type '{}' is outside the valid range. Accepted range: {min} to {max}.", table.logical)));
                }
            }
            row[k.as_str()] = v.clone();
        }
        // A new state without a status reason takes the state's default one.
        if let (Some(state), None) = (
            g.get("statecode").and_then(Value::as_i64),
            g.get("statuscode"),
        ) {
            if let Some(status) = tables::default_status(table.set, state) {
                row["statuscode"] = json!(status);
            }
        }
        Ok(())
    }

    /// Adds seed data.
    pub fn apply_seed(&mut self, seed: &DynamicsSeed) {
        self.tokens.extend(seed.tokens.iter().cloned());
        if let Some(ms) = seed.test_delay_ms {
            self.test_delay = Duration::from_millis(ms);
        }
        // What other rows bind first: profiles (mailboxes name them), users (rows are owned).
        let mut sets: Vec<&String> = seed.rows.keys().collect();
        sets.sort_by_key(|s| match s.as_str() {
            "emailserverprofiles" => 0,
            "systemusers" => 1,
            _ => 2,
        });
        for set in sets {
            for r in &seed.rows[set] {
                if let Err(e) = self.insert(set, r) {
                    tracing::warn!(?e, set, "dynamics seed row rejected");
                }
            }
        }
    }

    /// JSON dump.
    pub fn dump(&self) -> Value {
        json!(self.rows)
    }
}

/// Rust API for tests.
pub struct DynamicsHandle<'a>(pub &'a Store);

impl DynamicsHandle<'_> {
    /// Accepts a static bearer token.
    pub fn add_token(&self, token: &str) {
        lock(&self.0.dynamics).tokens.push(token.into());
    }
    /// Inserts a row; returns its id.
    pub fn insert(&self, set: &str, row: Value) -> Option<String> {
        let mut d = lock(&self.0.dynamics);
        let key = tables::table(set)?.key;
        d.insert(set, &row)
            .ok()
            .and_then(|r| r[key].as_str().map(str::to_string))
    }
    /// Rows of an entity set.
    pub fn rows(&self, set: &str) -> Vec<Value> {
        lock(&self.0.dynamics)
            .rows
            .get(set)
            .cloned()
            .unwrap_or_default()
    }
    /// One row.
    pub fn get(&self, set: &str, id: &str) -> Option<Value> {
        let key = tables::table(set)?.key;
        lock(&self.0.dynamics)
            .rows
            .get(set)?
            .iter()
            .find(|r| r[key].as_str() == Some(id))
            .cloned()
    }
    /// Forces the outcome of the next mailbox tests for an address.
    pub fn set_test_outcome(&self, email: &str, outcome: TestOutcome) {
        lock(&self.0.dynamics)
            .outcomes
            .insert(email.to_ascii_lowercase(), outcome);
    }
    /// Sets the delay of the Test & Enable background job.
    pub fn set_test_delay(&self, d: Duration) {
        lock(&self.0.dynamics).test_delay = d;
    }
}

fn authorized(store: &Store, h: &HeaderMap) -> bool {
    let Some(token) = header(h, "authorization").and_then(|a| {
        a.strip_prefix("Bearer ")
            .or_else(|| a.strip_prefix("bearer "))
    }) else {
        return false;
    };
    let token = token.trim();
    if lock(&store.dynamics).tokens.iter().any(|t| t == token) {
        return true;
    }
    let g = lock(&store.graph);
    g.tokens
        .get(token)
        .is_some_and(|t| t.expires > chrono::Utc::now().timestamp())
}

fn with_annotations(
    table: &Table,
    row: &Value,
    select: Option<&[String]>,
    formatted: bool,
) -> Value {
    let mut o = Map::new();
    o.insert(
        "@odata.etag".into(),
        json!(format!("W/\"{}\"", row["versionnumber"])),
    );
    if let Some(src) = row.as_object() {
        for (k, v) in src {
            let keep = match select {
                Some(sel) => sel.iter().any(|s| s == k) || k == table.key,
                None => true,
            };
            if !keep {
                continue;
            }
            if formatted {
                if let (Some(n), Some(ch)) = (v.as_i64(), tables::choices(table.set, k)) {
                    if let Some((_, label)) = ch.iter().find(|(val, _)| *val == n) {
                        o.insert(
                            format!("{k}@OData.Community.Display.V1.FormattedValue"),
                            json!(label),
                        );
                    }
                }
            }
            // secrets are write-only in Dataverse: never part of an answer; related rows only
            // through $expand
            if tables::is_secret(k) || tables::collection(table.set, k).is_some() {
                continue;
            }
            o.insert(k.clone(), v.clone());
        }
    }
    Value::Object(o)
}

fn prefer(h: &HeaderMap, key: &str) -> Option<String> {
    header(h, "prefer").and_then(|p| {
        p.split(',').map(str::trim).find_map(|x| {
            if x == key {
                Some(String::new())
            } else {
                x.strip_prefix(&format!("{key}="))
                    .map(|v| v.trim_matches('"').to_string())
            }
        })
    })
}

/// Entry point: every answer carries `OData-Version: 4.0`, as Dataverse's do.
pub async fn handle(store: Arc<Store>, req: Request) -> Response {
    let mut r = handle_request(store, req).await;
    r.headers_mut()
        .insert("OData-Version", HeaderValue::from_static("4.0"));
    r
}

async fn handle_request(store: Arc<Store>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    if !authorized(&store, &parts.headers) {
        let mut r = StatusCode::UNAUTHORIZED.into_response();
        r.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer authorization_uri=https://login.microsoftonline.com/common/oauth2/authorize, resource_id=https://org.crm.dynamics.com/"),
        );
        return r;
    }
    let base = format!("{}/api/data/v9.2", store.base_url());
    let path = parts.uri.path();
    let rest = path
        .strip_prefix("/api/data/v9.2")
        .unwrap_or("")
        .trim_matches('/')
        .to_string();
    let q = parse_query(parts.uri.query());
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "0x80040203",
                    &format!("Invalid JSON: {e}"),
                )
            }
        }
    };
    let m = parts.method.clone();
    let h = parts.headers;
    if rest.is_empty() {
        let value: Vec<Value> = TABLES
            .iter()
            .map(|t| json!({"name": t.set, "kind": "EntitySet", "url": t.set}))
            .collect();
        return json_response(
            StatusCode::OK,
            &json!({"@odata.context": format!("{base}/$metadata"), "value": value}),
        );
    }
    if rest == "$metadata" && m == axum::http::Method::GET {
        let mut r = (StatusCode::OK, tables::csdl()).into_response();
        r.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
        return r;
    }
    if rest == "WhoAmI" || rest == "WhoAmI()" {
        let d = lock(&store.dynamics);
        return json_response(
            StatusCode::OK,
            &json!({
                "@odata.context": format!("{base}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"),
                "BusinessUnitId": d.org_id, "UserId": d.user_id, "OrganizationId": d.org_id
            }),
        );
    }
    let (set, key) = match (rest.find('('), rest.ends_with(')')) {
        (Some(i), true) => (
            rest[..i].to_string(),
            Some(rest[i + 1..rest.len() - 1].trim_matches('\'').to_string()),
        ),
        _ => (rest.clone(), None),
    };
    let Some(table) = tables::table(&set) else {
        return error(
            StatusCode::NOT_FOUND,
            "0x8006088a",
            &format!("Resource not found for the segment '{set}'."),
        );
    };
    let formatted = prefer(&h, "odata.include-annotations").is_some();
    let select: Option<Vec<String>> =
        query_get(&q, "$select").map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    if let Some(sel) = &select {
        if let Some(bad) = sel.iter().find(|c| !table.columns.contains(&c.as_str())) {
            return error(
                StatusCode::BAD_REQUEST,
                "0x80060888",
                &format!(
                    "Could not find a property named '{bad}' on type 'Microsoft.Dynamics.CRM.{}'.",
                    table.logical
                ),
            );
        }
    }
    let expansions = match query_get(&q, "$expand").map(|e| expand::parse(table, e)) {
        None => Vec::new(),
        Some(Ok(e)) => e,
        Some(Err((st, code, msg))) => return error(st, &code, &msg),
    };
    match (m.as_str(), key) {
        ("GET", None) => list(
            &store,
            table,
            &base,
            &q,
            &h,
            select.as_deref(),
            &expansions,
            formatted,
        ),
        ("POST", None) => {
            let mut d = lock(&store.dynamics);
            match d.insert(table.set, &body) {
                Ok(row) => {
                    let id = row[table.key].as_str().unwrap_or("").to_string();
                    let entity_url = format!("{base}/{}({id})", table.set);
                    let mut r = if prefer(&h, "return").as_deref() == Some("representation") {
                        let mut v = with_annotations(table, &row, select.as_deref(), formatted);
                        v["@odata.context"] =
                            json!(format!("{base}/$metadata#{}/$entity", table.set));
                        json_response(StatusCode::CREATED, &v)
                    } else {
                        StatusCode::NO_CONTENT.into_response()
                    };
                    if let Ok(v) = HeaderValue::from_str(&entity_url) {
                        r.headers_mut().insert("OData-EntityId", v);
                    }
                    r
                }
                Err((st, code, msg)) => error(st, &code, &msg),
            }
        }
        (method, Some(id)) => {
            let mut d = lock(&store.dynamics);
            let Some(pos) = d.rows.get(table.set).and_then(|r| {
                r.iter()
                    .position(|x| x[table.key].as_str() == Some(id.as_str()))
            }) else {
                // A PATCH without `If-Match` is an upsert: Dataverse creates the row with the key
                // of the URL. `If-Match: *` (or an etag) makes it an update of an existing row.
                if method == "PATCH" && header(&h, "if-match").is_none() {
                    return upsert_create(&mut d, table, &base, &id, &body, &h, select.as_deref());
                }
                return error(
                    StatusCode::NOT_FOUND,
                    "0x80040217",
                    &format!("{} With Id = {id} Does Not Exist", table.logical),
                );
            };
            match method {
                "GET" => {
                    let row = d.rows[table.set][pos].clone();
                    let mut v = with_annotations(table, &row, select.as_deref(), formatted);
                    expand::apply(&row, &mut v, &expansions);
                    let frag = match &select {
                        Some(s) => format!("{}({})/$entity", table.set, s.join(",")),
                        None => format!("{}/$entity", table.set),
                    };
                    if let Some(o) = v.as_object_mut() {
                        let mut out = Map::new();
                        out.insert(
                            "@odata.context".into(),
                            json!(format!("{base}/$metadata#{frag}")),
                        );
                        out.append(o);
                        return json_response(StatusCode::OK, &Value::Object(out));
                    }
                    json_response(StatusCode::OK, &v)
                }
                "DELETE" => {
                    d.rows.get_mut(table.set).map(|r| r.remove(pos));
                    StatusCode::NO_CONTENT.into_response()
                }
                "PATCH" => {
                    let current = d.rows[table.set][pos].clone();
                    // `If-None-Match: *` makes an upsert create-only.
                    if header(&h, "if-none-match") == Some("*") {
                        return error(
                            StatusCode::PRECONDITION_FAILED,
                            "0x80040237",
                            "A record with matching key values already exists.",
                        );
                    }
                    if let Some(etag) = header(&h, "if-match") {
                        if etag != "*" && etag != format!("W/\"{}\"", current["versionnumber"]) {
                            return error(StatusCode::PRECONDITION_FAILED, "0x80060882", "The version of the existing record doesn't match the RowVersion property provided.");
                        }
                    }
                    let mut row = current;
                    if let Err((st, code, msg)) = d.apply(table, &mut row, &body) {
                        return error(st, &code, &msg);
                    }
                    let v = d.next_version();
                    row["versionnumber"] = json!(v);
                    row["modifiedon"] = json!(crate::util::now_iso());
                    if let Some(o) = row.as_object_mut() {
                        tables::derive(table, o);
                    }
                    let schedule = table.set == "mailboxes"
                        && body.get("testemailconfigurationscheduled") == Some(&json!(true));
                    if let Some(r) = d.rows.get_mut(table.set) {
                        r[pos] = row.clone();
                    }
                    let delay = d.test_delay;
                    drop(d);
                    if schedule {
                        let st = store.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            run_mailbox_test(&st, &id);
                        });
                    }
                    if prefer(&h, "return").as_deref() == Some("representation") {
                        let mut v = with_annotations(table, &row, select.as_deref(), formatted);
                        v["@odata.context"] =
                            json!(format!("{base}/$metadata#{}/$entity", table.set));
                        json_response(StatusCode::OK, &v)
                    } else {
                        StatusCode::NO_CONTENT.into_response()
                    }
                }
                _ => error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "0x80060888",
                    "The requested method is not supported.",
                ),
            }
        }
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "0x80060888",
            "The requested method is not supported.",
        ),
    }
}

/// The create half of an upsert (`PATCH set(id)` of a row that does not exist): the row is
/// created with the URL's key; 204 with `OData-EntityId`, or 201 with the row on
/// `Prefer: return=representation`.
fn upsert_create(
    d: &mut DynamicsState,
    table: &Table,
    base: &str,
    id: &str,
    body: &Value,
    h: &HeaderMap,
    select: Option<&[String]>,
) -> Response {
    let mut given = match body {
        Value::Object(o) => o.clone(),
        _ => Map::new(),
    };
    given.insert(table.key.into(), json!(id));
    match d.insert(table.set, &Value::Object(given)) {
        Ok(row) => {
            let mut r = if prefer(h, "return").as_deref() == Some("representation") {
                let formatted = prefer(h, "odata.include-annotations").is_some();
                let mut v = with_annotations(table, &row, select, formatted);
                v["@odata.context"] = json!(format!("{base}/$metadata#{}/$entity", table.set));
                json_response(StatusCode::CREATED, &v)
            } else {
                StatusCode::NO_CONTENT.into_response()
            };
            if let Ok(v) = HeaderValue::from_str(&format!("{base}/{}({id})", table.set)) {
                r.headers_mut().insert("OData-EntityId", v);
            }
            r
        }
        Err((st, code, msg)) => error(st, &code, &msg),
    }
}

#[allow(clippy::too_many_arguments)]
fn list(
    store: &Store,
    table: &Table,
    base: &str,
    q: &[(String, String)],
    h: &HeaderMap,
    select: Option<&[String]>,
    expansions: &[expand::Expansion],
    formatted: bool,
) -> Response {
    let d = lock(&store.dynamics);
    let mut rows: Vec<Value> = d.rows.get(table.set).cloned().unwrap_or_default();
    if let Some(f) = query_get(q, "$filter") {
        match crate::odata::parse(f) {
            Ok(e) => {
                for p in crate::odata::referenced_properties(&e) {
                    if !table.columns.contains(&p.as_str())
                        && tables::collection(table.set, &p).is_none()
                    {
                        return error(StatusCode::BAD_REQUEST, "0x80060888", &format!("Could not find a property named '{p}' on type 'Microsoft.Dynamics.CRM.{}'.", table.logical));
                    }
                }
                rows.retain(|r| crate::odata::matches(&e, r));
            }
            Err(e) => return error(StatusCode::BAD_REQUEST, "0x80060888", &e.to_string()),
        }
    }
    if let Some(ob) = query_get(q, "$orderby") {
        let mut p = ob.split_whitespace();
        let col = p.next().unwrap_or("").to_string();
        let desc = p.next().is_some_and(|x| x.eq_ignore_ascii_case("desc"));
        rows.sort_by(|a, b| {
            let o = crate::odata::compare(&a[col.as_str()], &b[col.as_str()])
                .unwrap_or(std::cmp::Ordering::Equal);
            if desc {
                o.reverse()
            } else {
                o
            }
        });
    }
    let count_all = rows.len();
    if let Some(top) = query_get(q, "$top").and_then(|t| t.parse::<usize>().ok()) {
        rows.truncate(top);
    }
    let total = rows.len();
    let page_size = prefer(h, "odata.maxpagesize")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(5000)
        .clamp(1, 5000);
    let offset = query_get(q, "$skiptoken")
        .and_then(|t| t.strip_prefix("sim-offset-"))
        .and_then(|o| o.parse::<usize>().ok())
        .unwrap_or(0);
    let value: Vec<Value> = rows
        .iter()
        .skip(offset)
        .take(page_size)
        .map(|r| {
            let mut v = with_annotations(table, r, select, formatted);
            expand::apply(r, &mut v, expansions);
            v
        })
        .collect();
    let frag = match select {
        Some(s) => format!("{}({})", table.set, s.join(",")),
        None => table.set.to_string(),
    };
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        json!(format!("{base}/$metadata#{frag}")),
    );
    if query_get(q, "$count").is_some_and(|c| c == "true") {
        out.insert("@odata.count".into(), json!(count_all));
    }
    out.insert("value".into(), Value::Array(value.clone()));
    if offset + value.len() < total {
        let mut qs: Vec<String> = q
            .iter()
            .filter(|(k, _)| k != "$skiptoken")
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect();
        qs.push(format!("$skiptoken=sim-offset-{}", offset + value.len()));
        out.insert(
            "@odata.nextLink".into(),
            json!(format!("{base}/{}?{}", table.set, qs.join("&"))),
        );
    }
    let mut r = json_response(StatusCode::OK, &Value::Object(out));
    if let Some(ps) = prefer(h, "odata.maxpagesize") {
        if let Ok(v) = HeaderValue::from_str(&format!("odata.maxpagesize={ps}")) {
            r.headers_mut().insert("Preference-Applied", v);
        }
    }
    r
}

/// The Test & Enable background job: fills incoming/outgoing/ACT statuses and
/// `testmailboxaccesscompletedon` of a mailbox whose test was scheduled.
pub fn run_mailbox_test(store: &Store, mailbox_id: &str) {
    let sc = store.scenarios();
    let ews_accounts: Vec<String> = lock(&store.ews)
        .accounts
        .iter()
        .map(|a| a.email.to_ascii_lowercase())
        .collect();
    let graph_users: Vec<String> = lock(&store.graph)
        .tenants
        .iter()
        .flat_map(|t| {
            t.users
                .iter()
                .filter(|u| u.live())
                .filter_map(|u| u.data["mail"].as_str().map(str::to_ascii_lowercase))
        })
        .collect();
    let mut d = lock(&store.dynamics);
    let outcomes = d.outcomes.clone();
    let v = d.next_version();
    let Some(row) = d.rows.get_mut("mailboxes").and_then(|r| {
        r.iter_mut()
            .find(|x| x["mailboxid"].as_str() == Some(mailbox_id))
    }) else {
        return;
    };
    if row["testemailconfigurationscheduled"] != json!(true) {
        return;
    }
    let email = row["emailaddress"]
        .as_str()
        .unwrap_or("")
        .to_ascii_lowercase();
    let approved = row["emailrouteraccessapproval"] == json!(1);
    let known = ews_accounts.contains(&email)
        || graph_users.contains(&email)
        || (ews_accounts.is_empty() && graph_users.is_empty());
    let (err_code, err_msg) = if !approved {
        (
            Some(-2147220891i64),
            "The email address for the mailbox has not been approved.",
        )
    } else if sc.wrong_password || sc.mfa_required || sc.basic_disabled {
        (
            Some(-2147220885),
            "HTTP Status Unauthorized: The request failed with HTTP status 401: Unauthorized.",
        )
    } else if sc.impersonation_not_granted {
        (
            Some(-2147220907),
            "The account does not have permission to impersonate the requested user.",
        )
    } else if sc.mailbox_address_mismatch || !known {
        (
            Some(-2147220886),
            "The mailbox address could not be found on the email server.",
        )
    } else {
        (None, "")
    };
    let forced = outcomes.get(&email).copied();
    let status = |enabled: &str, method: &str, sss: i64| -> i64 {
        if row[enabled] != json!(true) || row[method] != json!(sss) {
            return 0;
        }
        if err_code.is_some() {
            2
        } else {
            1
        }
    };
    let mut inc = status("enabledforincomingemail", "incomingemaildeliverymethod", 2);
    let mut out = status("enabledforoutgoingemail", "outgoingemaildeliverymethod", 2);
    let mut act = status("enabledforact", "actdeliverymethod", 1);
    if let Some(f) = forced {
        inc = f.incoming;
        out = f.outgoing;
        act = f.act;
    }
    let now = crate::util::now_iso();
    row["incomingemailstatus"] = json!(inc);
    row["outgoingemailstatus"] = json!(out);
    row["actstatus"] = json!(act);
    row["testmailboxaccesscompletedon"] = json!(now);
    row["testemailconfigurationscheduled"] = json!(false);
    if let Some(code) = err_code.filter(|_| forced.is_none()) {
        row["lastsyncerror"] = json!(err_msg);
        row["lastsyncerrorcode"] = json!(code);
        row["lastsyncerroroccurredon"] = json!(now);
    }
    row["versionnumber"] = json!(v);
    row["modifiedon"] = json!(now);
}

#[cfg(test)]
mod tests;
