//! The `/v1.0` request dispatcher (also used for each request of a `$batch`).

use std::collections::{BTreeSet, HashMap};

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Map, Value};

use super::delta::{self, DeltaItem, PageToken};
use super::{auth, model, recur, schema, GraphState, Rec, TodoList};
use crate::odata;
use crate::store::Store;
use crate::util::{lock, parse_query, query_get, upper_first};

/// A Graph answer before it becomes an HTTP response (also the shape of a `$batch` answer).
pub struct GResp {
    pub(super) status: StatusCode,
    headers: Vec<(String, String)>,
    pub(super) body: Option<Value>,
}

impl GResp {
    fn ok(body: Value) -> Self {
        GResp {
            status: StatusCode::OK,
            headers: vec![],
            body: Some(body),
        }
    }
    fn created(body: Value) -> Self {
        GResp {
            status: StatusCode::CREATED,
            headers: vec![],
            body: Some(body),
        }
    }
    fn no_content() -> Self {
        GResp {
            status: StatusCode::NO_CONTENT,
            headers: vec![],
            body: None,
        }
    }
    fn err(status: StatusCode, code: &str, msg: &str, crid: Option<&str>) -> Self {
        GResp {
            status,
            headers: vec![],
            body: Some(super::error_body(code, msg, crid)),
        }
    }
}

fn into_response(r: GResp) -> Response {
    let plain = r
        .headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v.starts_with("text/plain"));
    let mut resp = match &r.body {
        Some(b) if plain => (r.status, b.to_string()).into_response(),
        Some(b) => crate::util::json_response(r.status, b),
        None => r.status.into_response(),
    };
    for (k, v) in &r.headers {
        if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            resp.headers_mut().insert(n, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        resp.headers_mut().insert("request-id", v);
    }
    resp
}

/// Per-request context.
struct Ctx {
    tenant: String,
    base: String,
    path: String,
    query: Vec<(String, String)>,
    raw_query: String,
    headers: HashMap<String, String>,
    crid: Option<String>,
}

impl Ctx {
    fn q(&self, k: &str) -> Option<&str> {
        query_get(&self.query, k)
    }
    fn max_page(&self) -> Option<usize> {
        let p = self.headers.get("prefer")?;
        p.split(',')
            .find_map(|x| x.trim().strip_prefix("odata.maxpagesize="))
            .and_then(|n| n.trim().parse().ok())
    }
    /// `Prefer: outlook.timezone="…"`.
    fn time_zone(&self) -> Option<String> {
        let p = self.headers.get("prefer")?;
        p.split(',').find_map(|x| {
            x.trim()
                .strip_prefix("outlook.timezone=")
                .map(|z| z.trim().trim_matches('"').to_string())
        })
    }
    /// Presents `start`/`end` of an event in the preferred time zone.
    fn present(&self, mut v: Value) -> Value {
        // All-day values are floating dates: shown as stored, whatever zone is asked for.
        let all_day = v.get("isAllDay").and_then(|a| a.as_bool()) == Some(true);
        if let Some(zone) = self.time_zone().filter(|_| !all_day) {
            for k in ["start", "end"] {
                if v.get(k).and_then(|x| x.get("dateTime")).is_some() {
                    v[k] = model::present_dttz(&v[k], &zone);
                }
            }
        }
        v
    }
    fn err(&self, status: StatusCode, code: &str, msg: &str) -> GResp {
        GResp::err(status, code, msg, self.crid.as_deref())
    }
    fn ctx_url(&self, frag: &str) -> String {
        format!("{}/v1.0/$metadata#{frag}", self.base)
    }
    /// Original query minus the given keys.
    fn query_without(&self, drop: &[&str]) -> String {
        self.raw_query
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| {
                let k = crate::util::percent_decode(p.split('=').next().unwrap_or(""), true);
                !drop.iter().any(|d| d.eq_ignore_ascii_case(&k))
            })
            .collect::<Vec<_>>()
            .join("&")
    }
    fn link(&self, extra: &str) -> String {
        format!("{}/v1.0/{}?{}", self.base, self.path, extra)
    }
}

/// Handles a `/v1.0/...` HTTP request.
pub fn handle_v1(
    store: &Store,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let crid = super::client_request_id(headers);
    let tenant = {
        let g = lock(&store.graph);
        match auth::check_bearer(&g, crate::util::header(headers, "authorization")) {
            Ok(t) => t,
            Err((st, code, msg)) => {
                let mut r = into_response(GResp::err(st, code, &msg, crid.as_deref()));
                r.headers_mut().insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\""),
                );
                return r;
            }
        }
    };
    let rest = uri.path().trim_start_matches('/');
    let rest = rest.get(5..).unwrap_or("").trim_matches('/').to_string(); // after "v1.0/"
    let mut hdrs: HashMap<String, String> = headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    // HTTP/2 carries the host in the URI's authority, not in a Host header.
    if let Some(authority) = uri.authority() {
        hdrs.entry("host".into())
            .or_insert_with(|| authority.as_str().to_string());
    }
    let r = if rest.eq_ignore_ascii_case("$batch") {
        let host = hdrs.get("host").cloned();
        batch(store, &tenant, method, body, crid.as_deref(), host)
    } else {
        dispatch(
            store,
            &tenant,
            method,
            &rest,
            uri.query().unwrap_or(""),
            hdrs,
            body,
        )
    };
    into_response(r)
}

/// The origin links in answers are built on: the host the client addressed (as Graph's
/// links stay on the host that was called, whatever name reached it), with the
/// simulator's scheme; the simulator's own base when the request names none.
fn request_base(base: &str, host: Option<&str>) -> String {
    match (base.split_once("://"), host) {
        (Some((scheme, _)), Some(h)) if !h.is_empty() => format!("{scheme}://{h}"),
        _ => base.to_string(),
    }
}

/// Dispatches one request (path relative to `/v1.0/`).
pub(super) fn dispatch(
    store: &Store,
    tenant: &str,
    method: &Method,
    path: &str,
    raw_query: &str,
    headers: HashMap<String, String>,
    body: &[u8],
) -> GResp {
    let ctx = Ctx {
        tenant: tenant.to_string(),
        base: request_base(store.base_url(), headers.get("host").map(String::as_str)),
        path: path.to_string(),
        query: parse_query(Some(raw_query)),
        raw_query: raw_query.to_string(),
        crid: headers.get("client-request-id").cloned(),
        headers,
    };
    let body_json: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => {
                return ctx.err(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
                )
            }
        }
    };
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| crate::util::percent_decode(s, false))
        .collect();
    let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(|s| s.as_str()).collect();
    let m = method.clone();
    if l.first() == Some(&"me") {
        return ctx.err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "/me request is only valid with delegated authentication flow.",
        );
    }
    let mut g = lock(&store.graph);
    let Some(ti) = g.tenant_index(tenant) else {
        return ctx.err(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Tenant not found.",
        );
    };
    match (m.as_str(), l.as_slice()) {
        ("GET", ["organization"]) => {
            let t = &g.tenants[ti];
            GResp::ok(json!({
                "@odata.context": ctx.ctx_url("organization"),
                "value": [{"id": t.id, "displayName": t.domain.split('.').next().unwrap_or(""),
                    "verifiedDomains": [{"name": t.domain, "isDefault": true, "isInitial": true, "type": "Managed", "capabilities": "Email, OfficeCommunicationsOnline"}]}]
            }))
        }
        ("GET", ["users"]) => list_users(&g, ti, &ctx),
        ("POST", ["users"]) => {
            if let Err(e) = require(&ctx, "User", schema::USER_REQUIRED, |k| body_json.get(k)) {
                return e;
            }
            let body_json = match body_json
                .as_object()
                .map(|o| check_write(&ctx, "user", o, schema::USER_READ_ONLY))
            {
                Some(Ok(o)) => Value::Object(o),
                Some(Err(e)) => return e,
                None => body_json,
            };
            let upn = body_json["userPrincipalName"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if g.tenants[ti].find_user(&upn).is_some() {
                return ctx.err(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    "Another object with the same value for property userPrincipalName already exists.",
                );
            }
            let mut body_json = body_json;
            if let Some(o) = body_json.as_object_mut() {
                o.remove("passwordProfile");
            }
            let seq = g.bump();
            let domain = g.tenants[ti].domain.clone();
            let u = model::default_user(&body_json, &domain);
            g.tenants[ti].users.push(Rec {
                seq,
                removed: None,
                data: u.clone(),
            });
            let mut out = u;
            out["@odata.context"] = json!(ctx.ctx_url("users/$entity"));
            GResp::created(out)
        }
        ("GET", ["users", "delta"]) => users_delta(&g, ti, &ctx),
        ("GET", ["users", "$count"]) => {
            let n = g.tenants[ti].users.iter().filter(|r| r.live()).count();
            raw_count(&ctx, n)
        }
        ("GET", ["groups", "$count"]) => {
            let n = g.tenants[ti].groups.iter().filter(|r| r.rec.live()).count();
            raw_count(&ctx, n)
        }
        ("POST", ["groups"]) => create_group(&mut g, ti, &ctx, body_json),
        ("PATCH", ["groups", _]) => update_group(&mut g, ti, &ctx, &segs[1], body_json),
        ("DELETE", ["groups", _]) => {
            let seq = g.bump();
            match g.tenants[ti].live_group_mut(&segs[1]) {
                Some(gr) => {
                    gr.rec.removed = Some("changed".into());
                    gr.rec.seq = seq;
                    GResp::no_content()
                }
                None => ctx.err(StatusCode::NOT_FOUND, "Request_ResourceNotFound", &format!("Resource '{}' does not exist or one of its queried reference-property objects are not present.", segs[1])),
            }
        }
        (_, ["users", _, ..]) => {
            let key = segs[1].clone();
            let Some(uid) = g.tenants[ti].find_user(&key).map(|r| r.id().to_string()) else {
                return ctx.err(
                    StatusCode::NOT_FOUND,
                    "Request_ResourceNotFound",
                    &format!("Resource '{key}' does not exist or one of its queried reference-property objects are not present."),
                );
            };
            user_routes(
                store,
                &mut g,
                ti,
                &ctx,
                &m,
                &l[2..],
                &segs[2..],
                &uid,
                body_json,
            )
        }
        ("GET", ["groups"]) => {
            let items: Vec<Value> = g.tenants[ti]
                .groups
                .iter()
                .filter(|gr| gr.rec.live())
                .map(|gr| gr.rec.data.clone())
                .collect();
            list(&ctx, "groups", items, 100, None)
        }
        ("GET", ["groups", "delta"]) => groups_delta(&g, ti, &ctx),
        ("GET", ["groups", _, rest @ ..]) => group_routes(&g, ti, &ctx, &segs[1], rest),
        ("POST", ["groups", _, "members", "$ref"]) => {
            let gid = segs[1].clone();
            let member = body_json
                .get("@odata.id")
                .and_then(|v| v.as_str())
                .and_then(|s| s.rsplit('/').next())
                .unwrap_or("")
                .to_string();
            let known = g.tenants[ti].find_user(&member).is_some()
                || g.tenants[ti]
                    .groups
                    .iter()
                    .any(|x| x.rec.live() && x.rec.id().eq_ignore_ascii_case(&member));
            let seq = g.bump();
            match g.tenants[ti].live_group_mut(&gid) {
                Some(_) if !known => ctx.err(StatusCode::NOT_FOUND, "Request_ResourceNotFound", &format!("Resource '{member}' does not exist or one of its queried reference-property objects are not present.")),
                Some(gr) => {
                    if gr.add_member(&member, seq) {
                        GResp::no_content()
                    } else {
                        ctx.err(StatusCode::BAD_REQUEST, "Request_BadRequest", "One or more added object references already exist for the following modified properties: 'members'.")
                    }
                }
                None => ctx.err(StatusCode::NOT_FOUND, "Request_ResourceNotFound", &format!("Resource '{gid}' does not exist or one of its queried reference-property objects are not present.")),
            }
        }
        ("DELETE", ["groups", _, "members", _, "$ref"]) => {
            let (gid, member) = (segs[1].clone(), segs[3].clone());
            let seq = g.bump();
            match g.tenants[ti].live_group_mut(&gid) {
                Some(gr) => {
                    if gr.remove_member(&member, seq) {
                        GResp::no_content()
                    } else {
                        ctx.err(StatusCode::NOT_FOUND, "Request_ResourceNotFound", &format!("Resource '{member}' does not exist or one of its queried reference-property objects are not present."))
                    }
                }
                None => ctx.err(StatusCode::NOT_FOUND, "Request_ResourceNotFound", &format!("Resource '{gid}' does not exist or one of its queried reference-property objects are not present.")),
            }
        }
        ("GET", ["subscribedskus"]) => {
            let items = g.tenants[ti].skus.clone();
            list(&ctx, "subscribedSkus", items, 100, None)
        }
        ("GET", ["subscribedskus", _]) => match g.tenants[ti]
            .skus
            .iter()
            .find(|s| s["id"].as_str() == Some(segs[1].as_str()))
        {
            Some(s) => {
                let mut s = s.clone();
                s["@odata.context"] = json!(ctx.ctx_url("subscribedSkus/$entity"));
                GResp::ok(s)
            }
            None => ctx.err(
                StatusCode::NOT_FOUND,
                "Request_ResourceNotFound",
                "Resource not found for the segment 'subscribedSkus'.",
            ),
        },
        _ => ctx.err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!(
                "Resource not found for the segment '{}'.",
                segs.last().map(|s| s.as_str()).unwrap_or("")
            ),
        ),
    }
}

/// The entity type of a collection the simulator serves (`None` for mixed collections such
/// as `directoryObjects`).
fn entity_type(entity_set: &str) -> Option<&'static str> {
    let set = if entity_set.contains('/') {
        entity_set
    } else {
        entity_set.split('(').next().unwrap_or(entity_set)
    };
    match set {
        "users" => Some("user"),
        "groups" => Some("group"),
        "subscribedSkus" => Some("subscribedSku"),
        _ if entity_set.ends_with("/events") || entity_set.ends_with("/calendarView") => {
            Some("event")
        }
        _ if entity_set.ends_with("/contacts") => Some("contact"),
        _ if entity_set.ends_with("/calendars") => Some("calendar"),
        _ if entity_set.ends_with("/tasks") => Some("todoTask"),
        _ if entity_set.ends_with("/todo/lists") => Some("todoTaskList"),
        _ => None,
    }
}

/// Directory objects (Entra) answer in the directory's error style, mailbox items in
/// Exchange's.
fn is_directory(t: &str) -> bool {
    matches!(t, "user" | "group" | "subscribedSku" | "directoryObject")
}

fn outlook_type(t: &str) -> String {
    format!("Microsoft.OutlookServices.{}", upper_first(t))
}

/// 400 for a `$select` naming a property type `t` does not have.
fn check_select(ctx: &Ctx, t: &str) -> Result<(), GResp> {
    let Some(sel) = select_list(ctx) else {
        return Ok(());
    };
    match schema::unknown_in_select(t, &sel) {
        None => Ok(()),
        Some(p) if is_directory(t) => Err(ctx.err(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            &format!("Parsing OData Select and Expand failed: Could not find a property named '{p}' on type 'microsoft.graph.{t}'."),
        )),
        Some(p) => Err(ctx.err(
            StatusCode::BAD_REQUEST,
            "RequestBroker--ParseUri",
            &format!("Could not find a property named '{p}' on type '{}'.", outlook_type(t)),
        )),
    }
}

/// Graph's 400 for the first of the `required` properties of `resource` that `value` finds
/// missing or null.
fn require<'a>(
    ctx: &Ctx,
    resource: &str,
    required: &[&str],
    value: impl Fn(&str) -> Option<&'a Value>,
) -> Result<(), GResp> {
    match required
        .iter()
        .find(|k| value(k).is_none_or(|v| v.is_null()))
    {
        Some(k) => Err(ctx.err(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            &format!("Invalid value specified for property '{k}' of resource '{resource}'."),
        )),
        None => Ok(()),
    }
}

/// The object of a create or update `body`, checked by [`check_write`]; anything but an
/// object is refused as Graph refuses an empty payload.
fn write_body(
    ctx: &Ctx,
    t: &str,
    body: &Value,
    read_only: &[&str],
) -> Result<Map<String, Value>, GResp> {
    let Some(o) = body.as_object() else {
        return Err(ctx.err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Empty Payload. JSON content expected.",
        ));
    };
    check_write(ctx, t, o, read_only)
}

/// The stored form of a create/update body of type `t`, or Graph's 400 for it.
fn check_write(
    ctx: &Ctx,
    t: &str,
    body: &Map<String, Value>,
    read_only: &[&str],
) -> Result<Map<String, Value>, GResp> {
    let resource = upper_first(t);
    if !schema::known(t) {
        return Ok(body.clone());
    }
    schema::check_body(t, body, read_only).map_err(|r| {
        let (code, msg) = match (is_directory(t), r) {
            (true, schema::Refusal::Unknown(p)) => (
                "Request_BadRequest",
                format!("Property '{p}' does not exist as a declared property or extension property."),
            ),
            (true, schema::Refusal::ReadOnly(p)) => (
                "Request_BadRequest",
                format!("Property '{p}' is read-only and cannot be set."),
            ),
            (true, schema::Refusal::Type(p, _, _)) => (
                "Request_BadRequest",
                format!("Invalid value specified for property '{p}' of resource '{resource}'."),
            ),
            (false, schema::Refusal::Unknown(p)) => (
                "RequestBodyRead",
                format!("The property '{p}' does not exist on type '{}'. Make sure to only use property names that are defined by the type or mark the type as open type.", outlook_type(t)),
            ),
            (false, schema::Refusal::ReadOnly(p)) => (
                "ErrorInvalidPropertyForOperation",
                format!("The property '{p}' cannot be set."),
            ),
            (false, schema::Refusal::Type(_, v, et)) => (
                "RequestBodyRead",
                format!("Cannot convert the literal '{v}' to the expected type '{et}'."),
            ),
        };
        ctx.err(StatusCode::BAD_REQUEST, code, &msg)
    })
}

/// What makes a directory `$filter` an advanced query (Graph answers it only with
/// `ConsistencyLevel: eventual` and `$count=true`): `ne`, `not`, `endsWith` or a `/$count`
/// segment.
fn advanced_filter(e: &odata::Expr) -> Option<&'static str> {
    use odata::{Expr, Operand};
    fn operand(o: &Operand) -> Option<&'static str> {
        match o {
            Operand::Path(p) if p.iter().any(|x| x == "$count") => Some("$count"),
            Operand::Call(n, _) if n.eq_ignore_ascii_case("endswith") => Some("endsWith"),
            Operand::Call(_, a) => a.iter().find_map(operand),
            _ => None,
        }
    }
    match e {
        Expr::Or(a, b) | Expr::And(a, b) => advanced_filter(a).or_else(|| advanced_filter(b)),
        Expr::Not(_) => Some("not"),
        Expr::Cmp(op, _, _) if op.eq_ignore_ascii_case("ne") => Some("ne"),
        Expr::Cmp(_, a, b) => operand(a).or_else(|| operand(b)),
        Expr::In(a, items) => operand(a).or_else(|| items.iter().find_map(operand)),
        Expr::Call(n, _) if n.eq_ignore_ascii_case("endswith") => Some("endsWith"),
        Expr::Call(_, a) => a.iter().find_map(operand),
        Expr::Lambda { body, .. } => body.as_deref().and_then(advanced_filter),
        Expr::Bool(o) => operand(o),
    }
}

/// `ConsistencyLevel: eventual` (Entra's advanced queries).
fn eventual(ctx: &Ctx) -> bool {
    ctx.headers
        .get("consistencylevel")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("eventual"))
}

/// `$search="prop:term" [AND|OR "prop:term"]…` over directory objects: a term matches a
/// value that starts with it or has a word (split at spaces and `.-_@`) that does, ignoring
/// case. Answers the clauses, or Graph's 400 for a malformed or unsupported search.
fn search_clauses(ctx: &Ctx, t: &str, q: &str) -> Result<Vec<(bool, String, String)>, GResp> {
    let bad = |m: &str| ctx.err(StatusCode::BAD_REQUEST, "Request_UnsupportedQuery", m);
    let mut out = Vec::new();
    let mut rest = q.trim();
    let mut and = true;
    loop {
        let Some(r) = rest.strip_prefix('"') else {
            return Err(bad(
                "Syntax error: the search clause must be enclosed in double quotes.",
            ));
        };
        let Some(end) = r.find('"') else {
            return Err(bad(
                "Syntax error: the search clause must be enclosed in double quotes.",
            ));
        };
        let clause = &r[..end];
        let Some((prop, term)) = clause.split_once(':') else {
            return Err(bad(&format!(
                "Invalid search clause '{clause}': the property name is missing."
            )));
        };
        let Some((name, pt)) = schema::property(t, prop.trim()) else {
            return Err(bad(&format!("Unsupported or invalid query filter clause specified for property '{}' of resource '{}'.", prop.trim(), t)));
        };
        if !pt.contains("Edm.String") {
            return Err(bad(&format!("Unsupported or invalid query filter clause specified for property '{name}' of resource '{t}'.")));
        }
        out.push((and, name.to_string(), term.trim().to_ascii_lowercase()));
        rest = r[end + 1..].trim();
        if rest.is_empty() {
            break;
        }
        let (op, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        and = match op {
            "AND" => true,
            "OR" => false,
            _ => {
                return Err(bad(
                    "Syntax error: the search clauses must be joined by AND or OR.",
                ))
            }
        };
        rest = tail.trim();
    }
    Ok(out)
}

fn search_matches(clauses: &[(bool, String, String)], item: &Value) -> bool {
    let hit = |prop: &str, term: &str| {
        let vals: Vec<String> = match item.get(prop) {
            Some(Value::String(s)) => vec![s.to_ascii_lowercase()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_ascii_lowercase))
                .collect(),
            _ => vec![],
        };
        vals.iter().any(|v| {
            v.starts_with(term)
                || v.split(|c: char| c.is_whitespace() || ".-_@".contains(c))
                    .any(|w| w.starts_with(term))
        })
    };
    let mut acc: Option<bool> = None;
    for (and, prop, term) in clauses {
        let h = hit(prop, term);
        acc = Some(match acc {
            None => h,
            Some(a) if *and => a && h,
            Some(a) => a || h,
        });
    }
    acc.unwrap_or(true)
}

/// `GET …/$count` (a raw count): an advanced query, so only with `ConsistencyLevel: eventual`.
fn raw_count(ctx: &Ctx, n: usize) -> GResp {
    if !eventual(ctx) {
        return ctx.err(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Raw count (/$count) is not supported because the 'ConsistencyLevel:eventual' header is missing. Refer to https://aka.ms/graph-docs/advanced-queries for more information",
        );
    }
    GResp {
        status: StatusCode::OK,
        headers: vec![("Content-Type".into(), "text/plain".into())],
        body: Some(json!(n)),
    }
}

/// The directory object ids of `members@odata.bind` / `owners@odata.bind` (URLs ending in
/// the id), or Graph's answer for a malformed or unknown reference.
fn bound_ids(
    g: &GraphState,
    ti: usize,
    ctx: &Ctx,
    body: &Map<String, Value>,
    key: &str,
) -> Result<Vec<String>, GResp> {
    let Some(v) = body.get(key) else {
        return Ok(vec![]);
    };
    let Some(a) = v.as_array() else {
        return Err(ctx.err(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            &format!(
                "Invalid value specified for property '{}' of resource 'Group'.",
                key.split('@').next().unwrap_or(key)
            ),
        ));
    };
    let mut out = Vec::new();
    for x in a {
        let id = x
            .as_str()
            .and_then(|u| u.trim_end_matches('/').rsplit('/').next())
            .unwrap_or("")
            .to_string();
        let known = g.tenants[ti].find_user(&id).is_some()
            || g.tenants[ti]
                .groups
                .iter()
                .any(|x| x.rec.live() && x.rec.id().eq_ignore_ascii_case(&id));
        if id.is_empty() || !known {
            return Err(ctx.err(
                StatusCode::NOT_FOUND,
                "Request_ResourceNotFound",
                &format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
            ));
        }
        out.push(id);
    }
    Ok(out)
}

/// `POST /groups`: `displayName`, `mailEnabled`, `mailNickname` and `securityEnabled` are
/// required; `members@odata.bind` and `owners@odata.bind` (together at most 20) add members
/// and owners on creation.
fn create_group(g: &mut GraphState, ti: usize, ctx: &Ctx, body: Value) -> GResp {
    let o = match write_body(ctx, "group", &body, schema::GROUP_READ_ONLY) {
        Ok(o) => o,
        Err(e) => return e,
    };
    if let Err(e) = require(ctx, "Group", schema::GROUP_REQUIRED, |k| o.get(k)) {
        return e;
    }
    let members = match bound_ids(g, ti, ctx, &o, "members@odata.bind") {
        Ok(m) => m,
        Err(e) => return e,
    };
    let owners = match bound_ids(g, ti, ctx, &o, "owners@odata.bind") {
        Ok(m) => m,
        Err(e) => return e,
    };
    if members.len() + owners.len() > 20 {
        return ctx.err(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "The number of members and owners in the request is limited to 20.",
        );
    }
    let mut given = Value::Object(o.clone());
    if let Some(m) = given.as_object_mut() {
        m.retain(|k, _| !k.contains('@'));
        m.remove("id");
    }
    let domain = g.tenants[ti].domain.clone();
    let mut data = model::default_group(&given);
    if data["mailEnabled"] == json!(true) {
        let mail = format!("{}@{domain}", data["mailNickname"].as_str().unwrap_or(""));
        data["proxyAddresses"] = json!([format!("SMTP:{mail}")]);
        data["mail"] = json!(mail);
    }
    let seq = g.bump();
    let mut gr = super::GroupRec {
        rec: Rec {
            seq,
            removed: None,
            data: data.clone(),
        },
        members: Vec::new(),
        member_log: Vec::new(),
    };
    for m in &members {
        gr.add_member(m, seq);
    }
    g.tenants[ti].groups.push(gr);
    let mut out = data;
    out["@odata.context"] = json!(ctx.ctx_url("groups/$entity"));
    GResp::created(out)
}

/// `PATCH /groups/{id}`: property changes and `members@odata.bind` (at most 20 new members).
fn update_group(g: &mut GraphState, ti: usize, ctx: &Ctx, gid: &str, body: Value) -> GResp {
    let o = match write_body(ctx, "group", &body, schema::GROUP_READ_ONLY) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let members = match bound_ids(g, ti, ctx, &o, "members@odata.bind") {
        Ok(m) => m,
        Err(e) => return e,
    };
    if members.len() > 20 {
        return ctx.err(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "The number of members in the request is limited to 20.",
        );
    }
    let seq = g.bump();
    let Some(gr) = g.tenants[ti].live_group_mut(gid) else {
        return ctx.err(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("Resource '{gid}' does not exist or one of its queried reference-property objects are not present."),
        );
    };
    if members
        .iter()
        .any(|m| gr.members.iter().any(|x| x.eq_ignore_ascii_case(m)))
    {
        return ctx.err(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "One or more added object references already exist for the following modified properties: 'members'.",
        );
    }
    for m in &members {
        gr.add_member(m, seq);
    }
    let props: Map<String, Value> = o.into_iter().filter(|(k, _)| !k.contains('@')).collect();
    if !props.is_empty() {
        if let Some(d) = gr.rec.data.as_object_mut() {
            for (k, v) in props {
                d.insert(k, v);
            }
        }
        gr.rec.seq = seq;
    }
    GResp::no_content()
}

fn select_list(ctx: &Ctx) -> Option<Vec<String>> {
    ctx.q("$select").map(|s| {
        s.split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()
    })
}

/// Outlook items (events, contacts, tasks) always carry `id`; selecting `location` of an event
/// also returns `locations`.
fn shape_item(obj: &Value, select: Option<&[String]>) -> Value {
    let mut sel: Option<Vec<String>> = select.map(|s| s.to_vec());
    if let Some(s) = sel.as_mut() {
        s.push("id".into());
        if s.iter().any(|x| x.eq_ignore_ascii_case("location")) {
            s.push("locations".into());
        }
    }
    shape(obj, sel.as_deref(), None)
}

fn shape(obj: &Value, select: Option<&[String]>, default: Option<&[&str]>) -> Value {
    let Some(o) = obj.as_object() else {
        return obj.clone();
    };
    let keep = |k: &str| -> bool {
        if k.starts_with('@') {
            return true;
        }
        match (select, default) {
            (Some(sel), _) => sel.iter().any(|s| s.eq_ignore_ascii_case(k)),
            (None, Some(d)) => d.contains(&k),
            (None, None) => true,
        }
    };
    Value::Object(
        o.iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

fn context_frag(entity_set: &str, select: Option<&[String]>) -> String {
    match select {
        Some(s) if !s.is_empty() => format!("{entity_set}({})", s.join(",")),
        _ => entity_set.to_string(),
    }
}

/// Generic collection answer: `$filter`, `$orderby`, `$count`, `$top`, `$skiptoken`, `$select`.
fn list(
    ctx: &Ctx,
    entity_set: &str,
    mut items: Vec<Value>,
    default_page: usize,
    default_select: Option<&[&str]>,
) -> GResp {
    let etype = entity_type(entity_set);
    if let Some(t) = etype {
        if let Err(e) = check_select(ctx, t) {
            return e;
        }
    }
    if let Some(q) = ctx.q("$search") {
        match etype {
            Some(t) if is_directory(t) => {
                if !eventual(ctx) {
                    return ctx.err(
                        StatusCode::BAD_REQUEST,
                        "Request_UnsupportedQuery",
                        "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
                    );
                }
                let clauses = match search_clauses(ctx, t, q) {
                    Ok(c) => c,
                    Err(e) => return e,
                };
                items.retain(|i| search_matches(&clauses, i));
            }
            _ => {
                return ctx.err(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "The query parameter '$search' is not supported on this collection.",
                )
            }
        }
    }
    let filter = match ctx.q("$filter").map(|f| (f, extended_property_filter(f))) {
        Some((_, Some((id, value)))) => {
            items.retain(|i| has_extended_property(i, &id, &value));
            None
        }
        Some((f, None)) => Some(f),
        None => None,
    };
    if let Some(f) = filter {
        let expr = match odata::parse(f) {
            Ok(e) => e,
            Err(e) => return ctx.err(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string()),
        };
        let counted = ctx
            .q("$count")
            .is_some_and(|c| c.eq_ignore_ascii_case("true"));
        if etype.is_some_and(|t| matches!(t, "user" | "group"))
            && (advanced_filter(&expr).is_some() || ctx.q("$orderby").is_some())
            && !(counted && eventual(ctx))
        {
            // Advanced queries need both `$count=true` and `ConsistencyLevel: eventual`.
            return ctx.err(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                "Unsupported Query.",
            );
        }
        if let Some(t) = etype.filter(|t| schema::known(t)) {
            for p in odata::referenced_properties(&expr) {
                if schema::property(t, &p).is_none() && !schema::navigation(t, &p) {
                    return if is_directory(t) {
                        ctx.err(
                            StatusCode::BAD_REQUEST,
                            "Request_BadRequest",
                            &format!("Property '{p}' does not exist as a declared property or extension property."),
                        )
                    } else {
                        ctx.err(
                            StatusCode::BAD_REQUEST,
                            "RequestBroker--ParseUri",
                            &format!(
                                "Could not find a property named '{p}' on type '{}'.",
                                outlook_type(t)
                            ),
                        )
                    };
                }
            }
        } else if let Some(sample) = items.first() {
            for p in odata::referenced_properties(&expr) {
                if odata::get_ci(sample, &p).is_none() {
                    return ctx.err(
                        StatusCode::BAD_REQUEST,
                        "Request_BadRequest",
                        &format!("Property '{p}' does not exist as a declared property or extension property."),
                    );
                }
            }
        }
        items.retain(|i| odata::matches(&expr, i));
    }
    if let Some(ob) = ctx.q("$orderby") {
        let mut parts = ob.split_whitespace();
        let prop = parts.next().unwrap_or("").to_string();
        let desc = parts.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
        items.sort_by(|a, b| {
            let o = odata::compare(
                odata::get_ci(a, &prop).unwrap_or(&Value::Null),
                odata::get_ci(b, &prop).unwrap_or(&Value::Null),
            )
            .unwrap_or(std::cmp::Ordering::Equal);
            if desc {
                o.reverse()
            } else {
                o
            }
        });
    }
    let total = items.len();
    let top: Option<usize> = match ctx.q("$top").map(|t| t.parse::<usize>()) {
        Some(Ok(n)) if (1..=999).contains(&n) => Some(n),
        Some(_) => {
            return ctx.err(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                "Invalid page size specified: '$top'. Must be between 1 and 999 inclusive.",
            )
        }
        None => None,
    };
    let page = top.or(ctx.max_page()).unwrap_or(default_page).max(1);
    let offset = match ctx.q("$skiptoken") {
        None => 0,
        Some(t) => match PageToken::decode(t) {
            Some(pt) if pt.k == entity_set && pt.t == ctx.tenant => pt.o,
            _ => return ctx.err(StatusCode::BAD_REQUEST, "Directory_ExpiredPageToken", "The specified page token value has expired and can no longer be included in your request."),
        },
    };
    let select = select_list(ctx);
    let value: Vec<Value> = items
        .iter()
        .skip(offset)
        .take(page)
        .map(|i| {
            if entity_set.starts_with("users(") {
                ctx.present(expand_navigation(ctx, &shape_item(i, select.as_deref())))
            } else {
                shape(i, select.as_deref(), default_select)
            }
        })
        .collect();
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        json!(ctx.ctx_url(&context_frag(entity_set, select.as_deref()))),
    );
    if ctx
        .q("$count")
        .is_some_and(|c| c.eq_ignore_ascii_case("true"))
    {
        out.insert("@odata.count".into(), json!(total));
    }
    if offset + value.len() < total {
        let tok = PageToken {
            e: 0,
            t: ctx.tenant.clone(),
            k: entity_set.to_string(),
            s: 0,
            u: 0,
            o: offset + value.len(),
            sel: None,
            w: None,
        };
        let q = ctx.query_without(&["$skiptoken"]);
        let sep = if q.is_empty() { "" } else { "&" };
        out.insert(
            "@odata.nextLink".into(),
            json!(ctx.link(&format!("{q}{sep}$skiptoken={}", tok.encode()))),
        );
    }
    out.insert("value".into(), Value::Array(value));
    GResp::ok(Value::Object(out))
}

fn list_users(g: &GraphState, ti: usize, ctx: &Ctx) -> GResp {
    let items: Vec<Value> = g.tenants[ti]
        .users
        .iter()
        .filter(|r| r.live())
        .map(|r| r.data.clone())
        .collect();
    list(
        ctx,
        "users",
        items,
        100,
        Some(&model::DEFAULT_USER_PROPERTIES),
    )
}

fn gone(ctx: &Ctx) -> GResp {
    ctx.err(
        StatusCode::GONE,
        "SyncStateNotFound",
        "The sync state generation is not found or has expired. Please reset the sync state and start a new sync.",
    )
}

/// Resolves `$skiptoken`/`$deltatoken` into the token of this page; `None` → 410.
fn delta_token(
    g: &GraphState,
    ctx: &Ctx,
    kind: &str,
    window: Option<(String, String)>,
) -> Result<PageToken, GResp> {
    if let Some(t) = ctx.q("$skiptoken") {
        return match PageToken::decode(t) {
            Some(pt) if pt.e == g.delta_epoch && pt.t == ctx.tenant && pt.k == kind => Ok(pt),
            _ => Err(gone(ctx)),
        };
    }
    if let Some(t) = ctx.q("$deltatoken") {
        return match PageToken::decode(t) {
            Some(pt) if pt.e == g.delta_epoch && pt.t == ctx.tenant && pt.k == kind => {
                Ok(PageToken {
                    u: g.seq,
                    o: 0,
                    ..pt
                })
            }
            _ => Err(gone(ctx)),
        };
    }
    Ok(PageToken {
        e: g.delta_epoch,
        t: ctx.tenant.clone(),
        k: kind.to_string(),
        s: 0,
        u: g.seq,
        o: 0,
        sel: ctx.q("$select").map(str::to_string),
        w: window,
    })
}

fn delta_answer(ctx: &Ctx, context: &str, p: delta::DeltaPage) -> GResp {
    let mut out = Map::new();
    out.insert("@odata.context".into(), json!(ctx.ctx_url(context)));
    if let Some(n) = p.next {
        out.insert(
            "@odata.nextLink".into(),
            json!(ctx.link(&format!("$skiptoken={}", n.encode()))),
        );
    }
    if let Some(d) = p.delta {
        out.insert(
            "@odata.deltaLink".into(),
            json!(ctx.link(&format!("$deltatoken={}", d.encode()))),
        );
    }
    out.insert("value".into(), Value::Array(p.value));
    GResp::ok(Value::Object(out))
}

fn users_delta(g: &GraphState, ti: usize, ctx: &Ctx) -> GResp {
    if let Err(e) = check_select(ctx, "user") {
        return e;
    }
    let tok = match delta_token(g, ctx, "users", None) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let sel: Option<Vec<String>> = tok
        .sel
        .as_ref()
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let items = g.tenants[ti].users.iter().map(DeltaItem::from).collect();
    let page = delta::page(
        items,
        &tok,
        ctx.max_page().unwrap_or(100),
        "#microsoft.graph.user",
        |d| {
            let mut v = shape(d, sel.as_deref(), Some(&model::DEFAULT_USER_PROPERTIES));
            v["id"] = d["id"].clone();
            v
        },
    );
    let ctx_frag = context_frag("users", sel.as_deref());
    delta_answer(ctx, &ctx_frag, page)
}

/// The `@odata.type` of a directory object id (user, group or, when neither is known, the
/// base type), tombstones included: a removed member may be gone by now.
fn member_type(g: &GraphState, ti: usize, id: &str) -> &'static str {
    let t = &g.tenants[ti];
    if t.users.iter().any(|r| r.id().eq_ignore_ascii_case(id)) {
        "#microsoft.graph.user"
    } else if t.groups.iter().any(|x| x.rec.id().eq_ignore_ascii_case(id)) {
        "#microsoft.graph.group"
    } else {
        "#microsoft.graph.directoryObject"
    }
}

/// `GET /groups/delta`: the first round lists every live group (with `members@delta` holding
/// all direct members when `members` is selected); a round from a delta link lists the groups
/// whose properties or membership changed since, `members@delta` holding only the members
/// added (and those removed, marked `@removed.reason = "deleted"`) in that time, and deleted
/// groups as `@removed` (`changed` for a soft delete). Tokens behave like `users/delta`'s.
fn groups_delta(g: &GraphState, ti: usize, ctx: &Ctx) -> GResp {
    if let Err(e) = check_select(ctx, "group") {
        return e;
    }
    let tok = match delta_token(g, ctx, "groups", None) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let sel: Option<Vec<String>> = tok.sel.as_ref().map(|s| {
        s.split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()
    });
    let with_members = sel
        .as_ref()
        .is_some_and(|s| s.iter().any(|x| x.eq_ignore_ascii_case("members")));
    let initial = tok.s == 0;
    let member = |id: &str, removed: bool| {
        let mut m = json!({"@odata.type": member_type(g, ti, id), "id": id});
        if removed {
            m["@removed"] = json!({"reason": "deleted"});
        }
        m
    };
    let mut items = Vec::new();
    for gr in &g.tenants[ti].groups {
        let mut data = gr.rec.data.clone();
        // Without `members` in `$select`, membership is not tracked at all.
        let seq = if with_members {
            gr.delta_seq(tok.u)
        } else {
            gr.rec.seq
        };
        if with_members && gr.rec.live() {
            let delta: Vec<Value> = if initial {
                gr.members.iter().map(|m| member(m, false)).collect()
            } else {
                // The last change of each member within the round decides.
                let mut last: Vec<(&str, bool)> = Vec::new();
                for c in gr
                    .member_log
                    .iter()
                    .filter(|c| c.seq > tok.s && c.seq <= tok.u)
                {
                    match last
                        .iter_mut()
                        .find(|(id, _)| id.eq_ignore_ascii_case(&c.id))
                    {
                        Some(entry) => entry.1 = c.added,
                        None => last.push((&c.id, c.added)),
                    }
                }
                last.iter().map(|(id, added)| member(id, !added)).collect()
            };
            if !delta.is_empty() {
                data["members@delta"] = Value::Array(delta);
            }
        }
        items.push(DeltaItem {
            seq,
            removed: gr.rec.removed.clone(),
            data,
        });
    }
    let page = delta::page(
        items,
        &tok,
        ctx.max_page().unwrap_or(100),
        "#microsoft.graph.group",
        |d| {
            let mut v = shape(d, sel.as_deref(), None);
            v["id"] = d["id"].clone();
            if let Some(m) = d.get("members@delta") {
                v["members@delta"] = m.clone();
            }
            v
        },
    );
    let ctx_frag = context_frag("groups", sel.as_deref());
    delta_answer(ctx, &ctx_frag, page)
}

fn typed(v: &Value, t: &str) -> Value {
    let mut o = Map::new();
    o.insert("@odata.type".into(), json!(t));
    if let Some(src) = v.as_object() {
        for (k, x) in src {
            o.insert(k.clone(), x.clone());
        }
    }
    Value::Object(o)
}

fn directory_object(g: &GraphState, ti: usize, id: &str) -> Option<Value> {
    let t = &g.tenants[ti];
    if let Some(u) = t.find_user(id) {
        return Some(typed(
            &shape(&u.data, None, Some(&model::DEFAULT_USER_PROPERTIES)),
            "#microsoft.graph.user",
        ));
    }
    t.groups
        .iter()
        .find(|gr| gr.rec.live() && gr.rec.id().eq_ignore_ascii_case(id))
        .map(|gr| typed(&gr.rec.data, "#microsoft.graph.group"))
}

fn transitive_members(g: &GraphState, ti: usize, gid: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    let mut stack = vec![gid.to_string()];
    let mut visited_groups = BTreeSet::new();
    while let Some(cur) = stack.pop() {
        if !visited_groups.insert(cur.to_ascii_lowercase()) {
            continue;
        }
        if let Some(gr) = g.tenants[ti]
            .groups
            .iter()
            .find(|x| x.rec.live() && x.rec.id().eq_ignore_ascii_case(&cur))
        {
            for m in &gr.members {
                if seen.insert(m.to_ascii_lowercase()) {
                    order.push(m.clone());
                }
                stack.push(m.clone());
            }
        }
    }
    order
}

fn group_routes(g: &GraphState, ti: usize, ctx: &Ctx, gid: &str, rest: &[&str]) -> GResp {
    let Some(gr) = g.tenants[ti]
        .groups
        .iter()
        .find(|x| x.rec.live() && x.rec.id().eq_ignore_ascii_case(gid))
    else {
        return ctx.err(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("Resource '{gid}' does not exist or one of its queried reference-property objects are not present."),
        );
    };
    let cast = |v: &Value, c: Option<&&str>| match c {
        Some(c) => v["@odata.type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case(&format!("#{c}"))),
        None => true,
    };
    match rest {
        [] => {
            if let Err(e) = check_select(ctx, "group") {
                return e;
            }
            let select = select_list(ctx);
            let mut v = shape(&gr.rec.data, select.as_deref(), None);
            v["@odata.context"] = json!(ctx.ctx_url(&format!(
                "{}/$entity",
                context_frag("groups", select.as_deref())
            )));
            GResp::ok(v)
        }
        ["members" | "transitivemembers", "$count"] => {
            let n = if rest[0] == "members" {
                gr.members.len()
            } else {
                transitive_members(g, ti, gid).len()
            };
            raw_count(ctx, n)
        }
        ["members", c @ ..] | ["transitivemembers", c @ ..] => {
            let ids = if rest[0] == "members" {
                gr.members.clone()
            } else {
                transitive_members(g, ti, gid)
            };
            let items: Vec<Value> = ids
                .iter()
                .filter_map(|id| directory_object(g, ti, id))
                .filter(|v| cast(v, c.first()))
                .collect();
            list(ctx, "directoryObjects", items, 100, None)
        }
        _ => ctx.err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Unsupported group segment.",
        ),
    }
}

fn member_of(g: &GraphState, ti: usize, id: &str, transitive: bool) -> Vec<Value> {
    let t = &g.tenants[ti];
    let mut result: Vec<String> = Vec::new();
    let mut frontier = vec![id.to_ascii_lowercase()];
    while let Some(cur) = frontier.pop() {
        for gr in t.groups.iter().filter(|gr| gr.rec.live()) {
            let gid = gr.rec.id().to_string();
            if gr.members.iter().any(|m| m.eq_ignore_ascii_case(&cur)) && !result.contains(&gid) {
                result.push(gid.clone());
                if transitive {
                    frontier.push(gid.to_ascii_lowercase());
                }
            }
        }
    }
    result
        .iter()
        .filter_map(|gid| directory_object(g, ti, gid))
        .collect()
}

fn parse_dt(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    let trimmed = s.trim_end_matches('Z');
    let trimmed = trimmed.split('.').next().unwrap_or(trimmed);
    NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|n| n.and_utc())
}

fn window(ctx: &Ctx) -> Result<(DateTime<Utc>, DateTime<Utc>, String, String), GResp> {
    let (Some(s), Some(e)) = (ctx.q("startDateTime"), ctx.q("endDateTime")) else {
        return Err(ctx.err(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
        ));
    };
    match (parse_dt(s), parse_dt(e)) {
        (Some(a), Some(b)) => Ok((a, b, s.to_string(), e.to_string())),
        _ => Err(ctx.err(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidParameter",
            "The value of the parameter 'StartDateTime' or 'EndDateTime' is invalid.",
        )),
    }
}

#[allow(clippy::too_many_arguments)]
fn user_routes(
    store: &Store,
    g: &mut GraphState,
    ti: usize,
    ctx: &Ctx,
    m: &Method,
    l: &[&str],
    segs: &[String],
    uid: &str,
    body: Value,
) -> GResp {
    let scen = store.scenarios();
    let is_mailbox = l.first().is_some_and(|s| {
        matches!(
            *s,
            "events"
                | "calendar"
                | "calendarview"
                | "contacts"
                | "contactfolders"
                | "todo"
                | "messages"
                | "mailfolders"
                | "calendars"
        )
    });
    if is_mailbox {
        let upn = g.tenants[ti]
            .find_user(uid)
            .and_then(|u| u.data["userPrincipalName"].as_str().map(str::to_string))
            .unwrap_or_default();
        let denied = g.tenants[ti]
            .find_user(uid)
            .is_some_and(|u| g.tenants[ti].denied_mailboxes.iter().any(|d| d == u.id()));
        if denied {
            return ctx.err(
                StatusCode::FORBIDDEN,
                "ErrorAccessDenied",
                "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.",
            );
        }
        if scen.mailbox_address_mismatch {
            return ctx.err(
                StatusCode::NOT_FOUND,
                "ErrorInvalidUser",
                &format!("The requested user '{upn}' is invalid."),
            );
        }
        let licensed = g.tenants[ti]
            .find_user(uid)
            .and_then(|u| u.data["assignedLicenses"].as_array().map(|a| !a.is_empty()))
            .unwrap_or(false);
        if scen.no_exchange_online_license || !licensed {
            return ctx.err(
                StatusCode::NOT_FOUND,
                "MailboxNotEnabledForRESTAPI",
                "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
            );
        }
    }
    let mut l = l.to_vec();
    let mut segs = segs.to_vec();
    if l.first() == Some(&"calendar") && l.len() > 1 {
        l.remove(0);
        segs.remove(0);
    }
    // The one calendar of a mailbox is also addressed by its id: `calendars/{id}` is
    // `calendar`, `calendars/{id}/events…` is `calendar/events…`.
    if l.first() == Some(&"calendars") && l.len() > 1 {
        if segs[1] != model::DEFAULT_CALENDAR_ID {
            return ctx.err(
                StatusCode::NOT_FOUND,
                "ErrorItemNotFound",
                "The specified object was not found in the store.",
            );
        }
        if l.len() == 2 {
            l = vec!["calendar"];
            segs = vec!["calendar".to_string()];
        } else {
            l.drain(..2);
            segs.drain(..2);
        }
    }
    let tenant_domain = g.tenants[ti].domain.clone();
    let uctx = format!("users('{uid}')");
    match (m.as_str(), l.as_slice()) {
        ("GET", []) => {
            if let Err(e) = check_select(ctx, "user") {
                return e;
            }
            let u = g.tenants[ti]
                .find_user(uid)
                .map(|r| r.data.clone())
                .unwrap_or_default();
            let select = select_list(ctx);
            let mut v = shape(&u, select.as_deref(), Some(&model::DEFAULT_USER_PROPERTIES));
            let mut o = Map::new();
            o.insert(
                "@odata.context".into(),
                json!(ctx.ctx_url(&format!(
                    "{}/$entity",
                    context_frag("users", select.as_deref())
                ))),
            );
            if let Some(src) = v.as_object_mut() {
                o.append(src);
            }
            GResp::ok(Value::Object(o))
        }
        ("PATCH", []) => {
            let seq = g.bump();
            let changes = match write_body(ctx, "user", &body, schema::USER_READ_ONLY) {
                Ok(c) => c,
                Err(e) => return e,
            };
            if let Some(r) = g.tenants[ti].live_user_mut(uid) {
                for (k, v) in &changes {
                    if k != "id" && k != "passwordProfile" {
                        r.data[k] = v.clone();
                    }
                }
                r.seq = seq;
            }
            GResp::no_content()
        }
        ("DELETE", []) => {
            let seq = g.bump();
            if let Some(r) = g.tenants[ti].live_user_mut(uid) {
                r.removed = Some("changed".into());
                r.seq = seq;
            }
            GResp::no_content()
        }
        ("POST", ["assignlicense"]) => {
            let seq = g.bump();
            let add = body
                .get("addLicenses")
                .and_then(|v| v.as_array())
                .cloned()
                .unwrap_or_default();
            let remove: Vec<String> = body
                .get("removeLicenses")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(|s| s.to_ascii_lowercase()))
                        .collect()
                })
                .unwrap_or_default();
            let Some(r) = g.tenants[ti].live_user_mut(uid) else {
                return ctx.err(
                    StatusCode::NOT_FOUND,
                    "Request_ResourceNotFound",
                    "User not found.",
                );
            };
            let mut lic: Vec<Value> = r.data["assignedLicenses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            lic.retain(|x| {
                !x["skuId"]
                    .as_str()
                    .is_some_and(|s| remove.contains(&s.to_ascii_lowercase()))
            });
            for a in add {
                lic.push(json!({"skuId": a.get("skuId").cloned().unwrap_or(Value::Null), "disabledPlans": a.get("disabledPlans").cloned().unwrap_or(json!([]))}));
            }
            r.data["assignedLicenses"] = Value::Array(lic);
            r.seq = seq;
            let mut out = r.data.clone();
            out["@odata.context"] = json!(ctx.ctx_url("users/$entity"));
            GResp::ok(out)
        }
        ("GET", [kind @ ("memberof" | "transitivememberof"), cast @ ..]) => {
            let mut items = member_of(g, ti, uid, *kind == "transitivememberof");
            if let Some(c) = cast.first() {
                items.retain(|v| {
                    v["@odata.type"]
                        .as_str()
                        .is_some_and(|t| t.eq_ignore_ascii_case(&format!("#{c}")))
                });
            }
            list(ctx, "directoryObjects", items, 100, None)
        }
        // ----- events -----
        ("GET", ["events"]) => {
            let items = live(
                &g.tenants[ti]
                    .mailboxes
                    .entry(uid.to_string())
                    .or_default()
                    .events,
            )
            .into_iter()
            .filter(|e| e["type"] != "exception")
            .collect();
            list(ctx, &format!("{uctx}/events"), items, 10, None)
        }
        ("GET", ["events", _, "instances"]) => {
            let (ws, we, _, _) = match window(ctx) {
                Ok(w) => w,
                Err(e) => return e,
            };
            let mb = g.tenants[ti].mailboxes.entry(uid.to_string()).or_default();
            let Some(master) = mb.events.iter().find(|r| r.live() && r.id() == segs[1]) else {
                return ctx.err(
                    StatusCode::NOT_FOUND,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                );
            };
            let mut items: Vec<Value> = recur::view(&mb.events, &master.data, ws, we)
                .into_iter()
                .map(|v| ctx.present(v))
                .collect();
            sort_by_start(&mut items);
            list(
                ctx,
                &format!("{uctx}/events('{}')/instances", segs[1]),
                items,
                10,
                None,
            )
        }
        ("POST", ["events"]) => {
            let body = match body.as_object().map(|o| check_write(ctx, "event", o, &[])) {
                Some(Ok(o)) => Value::Object(o),
                Some(Err(e)) => return e,
                None => body,
            };
            let seq = g.bump();
            let e = model::new_event(&body, uid, &tenant_domain);
            let mb = g.tenants[ti].mailboxes.entry(uid.to_string()).or_default();
            mb.events.push(Rec {
                seq,
                removed: None,
                data: e.clone(),
            });
            let mut out = ctx.present(strip_navigation(&e));
            out["@odata.context"] = json!(ctx.ctx_url(&format!("{uctx}/events/$entity")));
            GResp::created(out)
        }
        (_, ["events", _]) => {
            let seq = g.bump();
            let mb = g.tenants[ti].mailboxes.entry(uid.to_string()).or_default();
            if let Some(answer) =
                occurrence_routes(ctx, m, &mut mb.events, &segs[1], &body, seq, &uctx)
            {
                return answer;
            }
            item_routes(
                ctx,
                m,
                "event",
                &mut mb.events,
                &segs[1],
                body,
                seq,
                &format!("{uctx}/events/$entity"),
            )
        }
        ("GET", ["calendarview"]) => {
            let (ws, we, _, _) = match window(ctx) {
                Ok(w) => w,
                Err(e) => return e,
            };
            let mb = g.tenants[ti].mailboxes.entry(uid.to_string()).or_default();
            let mut items: Vec<Value> = mb
                .events
                .iter()
                .filter(|r| r.live())
                .flat_map(|r| recur::view(&mb.events, &r.data, ws, we))
                .collect();
            sort_by_start(&mut items);
            list(ctx, &format!("{uctx}/calendarView"), items, 10, None)
        }
        ("GET", ["calendarview", "delta"]) => {
            let kind = format!("events:{uid}");
            let w = if ctx.q("$skiptoken").is_none() && ctx.q("$deltatoken").is_none() {
                match window(ctx) {
                    Ok((_, _, a, b)) => Some((a, b)),
                    Err(e) => return e,
                }
            } else {
                None
            };
            let tok = match delta_token(g, ctx, &kind, w) {
                Ok(t) => t,
                Err(e) => return e,
            };
            let (ws, we) = match &tok.w {
                Some((a, b)) => (
                    parse_dt(a).unwrap_or_default(),
                    parse_dt(b).unwrap_or_default(),
                ),
                None => return gone(ctx),
            };
            let mb = g.tenants[ti].mailboxes.entry(uid.to_string()).or_default();
            let mut items = Vec::new();
            for r in &mb.events {
                if r.live() {
                    for inst in recur::view(&mb.events, &r.data, ws, we) {
                        items.push(DeltaItem {
                            seq: r.seq,
                            removed: None,
                            data: inst,
                        });
                    }
                } else {
                    items.push(DeltaItem::from(r));
                }
            }
            let page = delta::page(
                items,
                &tok,
                ctx.max_page().unwrap_or(10),
                "#microsoft.graph.event",
                |d| ctx.present(strip_navigation(d)),
            );
            delta_answer(ctx, "Collection(event)", page)
        }
        ("GET", ["contactfolders"]) => {
            let f = json!({"id": "AAMkAGI2AAEOAAA=", "displayName": "Contacts", "parentFolderId": "AAMkAGI2AAEIAAA="});
            list(ctx, &format!("{uctx}/contactFolders"), vec![f], 10, None)
        }
        ("GET", ["calendars"]) | ("GET", ["calendar"]) => {
            let me = g.tenants[ti]
                .find_user(uid)
                .map(|u| u.data.clone())
                .unwrap_or_default();
            let cal = json!({"id": model::DEFAULT_CALENDAR_ID, "name": "Calendar", "color": "auto", "hexColor": "", "isDefaultCalendar": true,
                "changeKey": "nfZyf7VcrEKLNoU37KWlkQAAA0x0+w==", "canShare": true, "canViewPrivateItems": true, "canEdit": true,
                "allowedOnlineMeetingProviders": ["teamsForBusiness"], "defaultOnlineMeetingProvider": "teamsForBusiness", "isTallyingResponses": true, "isRemovable": false,
                "owner": {"name": me["displayName"], "address": me["mail"]}});
            if l.len() == 1 && l[0] == "calendar" {
                let mut c = cal;
                c["@odata.context"] = json!(ctx.ctx_url(&format!("{uctx}/calendar/$entity")));
                GResp::ok(c)
            } else {
                list(ctx, &format!("{uctx}/calendars"), vec![cal], 10, None)
            }
        }
        // ----- contacts -----
        ("GET", ["contacts"]) | ("GET", ["contactfolders", _, "contacts"]) => {
            let items = live(
                &g.tenants[ti]
                    .mailboxes
                    .entry(uid.to_string())
                    .or_default()
                    .contacts,
            );
            list(ctx, &format!("{uctx}/contacts"), items, 10, None)
        }
        ("GET", ["contacts", "delta"]) | ("GET", ["contactfolders", _, "contacts", "delta"]) => {
            let kind = format!("contacts:{uid}");
            let tok = match delta_token(g, ctx, &kind, None) {
                Ok(t) => t,
                Err(e) => return e,
            };
            let sel: Option<Vec<String>> = tok
                .sel
                .as_ref()
                .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
            let mb = g.tenants[ti].mailboxes.entry(uid.to_string()).or_default();
            let items = mb.contacts.iter().map(DeltaItem::from).collect();
            let page = delta::page(
                items,
                &tok,
                ctx.max_page().unwrap_or(10),
                "#microsoft.graph.contact",
                |d| {
                    let mut v = strip_navigation(&shape(d, sel.as_deref(), None));
                    v["id"] = d["id"].clone();
                    v
                },
            );
            delta_answer(ctx, &format!("{uctx}/contacts"), page)
        }
        ("POST", ["contacts"]) | ("POST", ["contactfolders", _, "contacts"]) => {
            let body = match body
                .as_object()
                .map(|o| check_write(ctx, "contact", o, &[]))
            {
                Some(Ok(o)) => Value::Object(o),
                Some(Err(e)) => return e,
                None => body,
            };
            let seq = g.bump();
            let c = model::new_contact(&body);
            g.tenants[ti]
                .mailboxes
                .entry(uid.to_string())
                .or_default()
                .contacts
                .push(Rec {
                    seq,
                    removed: None,
                    data: c.clone(),
                });
            let mut out = strip_navigation(&c);
            out["@odata.context"] = json!(ctx.ctx_url(&format!("{uctx}/contacts/$entity")));
            GResp::created(out)
        }
        (_, ["contacts", _]) | (_, ["contactfolders", _, "contacts", _]) => {
            let seq = g.bump();
            let id = segs.last().cloned().unwrap_or_default();
            let mb = g.tenants[ti].mailboxes.entry(uid.to_string()).or_default();
            item_routes(
                ctx,
                m,
                "contact",
                &mut mb.contacts,
                &id,
                body,
                seq,
                &format!("{uctx}/contacts/$entity"),
            )
        }
        // ----- mail -----
        ("POST", ["sendmail"]) => {
            let Some(msg) = body.get("message").filter(|m| m.is_object()) else {
                return ctx.err(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidParameter",
                    "The value of the parameter 'Message' is empty.",
                );
            };
            let rcpts: Vec<String> = ["toRecipients", "ccRecipients", "bccRecipients"]
                .iter()
                .filter_map(|k| msg.get(*k).and_then(|r| r.as_array()))
                .flatten()
                .filter_map(|r| {
                    r.pointer("/emailAddress/address")
                        .and_then(|a| a.as_str())
                        .map(str::to_ascii_lowercase)
                })
                .collect();
            if rcpts.is_empty() || rcpts.iter().any(|r| !r.contains('@')) {
                return ctx.err(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidRecipients",
                    "At least one recipient isn't valid., A message can't be sent because it contains no recipients.",
                );
            }
            let me = g.tenants[ti]
                .find_user(uid)
                .map(|u| u.data.clone())
                .unwrap_or_default();
            let from = json!({"emailAddress": {"name": me["displayName"], "address": me["mail"]}});
            let msg = &model::outgoing(msg);
            if body.get("saveToSentItems") != Some(&Value::Bool(false)) {
                let seq = g.bump();
                let sent = model::new_message(msg, &from, "sentitems", true);
                g.tenants[ti]
                    .mailboxes
                    .entry(uid.to_string())
                    .or_default()
                    .messages
                    .push(Rec {
                        seq,
                        removed: None,
                        data: sent,
                    });
            }
            // deliver to every simulated mailbox with that address (any tenant)
            for t in 0..g.tenants.len() {
                let targets: Vec<String> = g.tenants[t]
                    .users
                    .iter()
                    .filter(|u| {
                        u.live()
                            && u.data["mail"]
                                .as_str()
                                .is_some_and(|m| rcpts.contains(&m.to_ascii_lowercase()))
                    })
                    .map(|u| u.id().to_string())
                    .collect();
                for target in targets {
                    let seq = g.bump();
                    let copy = model::new_message(msg, &from, "inbox", false);
                    g.tenants[t]
                        .mailboxes
                        .entry(target)
                        .or_default()
                        .messages
                        .push(Rec {
                            seq,
                            removed: None,
                            data: copy,
                        });
                }
            }
            GResp {
                status: StatusCode::ACCEPTED,
                headers: vec![],
                body: None,
            }
        }
        ("GET", ["mailfolders", f]) if is_root_folder(f, uid) => {
            let mb = g.tenants[ti].mailboxes.entry(uid.to_string()).or_default();
            get_root_folder(ctx, &uctx, uid, mb)
        }
        ("PATCH", ["mailfolders", f]) if is_root_folder(f, uid) => {
            let mb = g.tenants[ti].mailboxes.entry(uid.to_string()).or_default();
            patch_root_folder(ctx, &uctx, uid, mb, &body)
        }
        ("GET", ["mailfolders", folder]) => {
            let Some(f) = model::mail_folder(folder) else {
                return ctx.err(
                    StatusCode::NOT_FOUND,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                );
            };
            let mb = g.tenants[ti].mailboxes.entry(uid.to_string()).or_default();
            get_well_known_folder(ctx, &uctx, uid, f, mb)
        }
        ("GET", ["messages"]) => {
            let items = live(
                &g.tenants[ti]
                    .mailboxes
                    .entry(uid.to_string())
                    .or_default()
                    .messages,
            );
            list(ctx, &format!("{uctx}/messages"), items, 10, None)
        }
        ("GET", ["mailfolders", folder, "messages"]) => {
            let Some(f) = model::mail_folder(folder) else {
                return ctx.err(
                    StatusCode::NOT_FOUND,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                );
            };
            let items: Vec<Value> = live(
                &g.tenants[ti]
                    .mailboxes
                    .entry(uid.to_string())
                    .or_default()
                    .messages,
            )
            .into_iter()
            .filter(|m| m["parentFolderId"] == f)
            .collect();
            list(
                ctx,
                &format!("{uctx}/mailFolders('{f}')/messages"),
                items,
                10,
                None,
            )
        }
        ("GET", ["mailfolders", folder, "messages", "delta"]) => {
            let Some(f) = model::mail_folder(folder) else {
                return ctx.err(
                    StatusCode::NOT_FOUND,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                );
            };
            let tok = match delta_token(g, ctx, &format!("messages:{uid}:{f}"), None) {
                Ok(t) => t,
                Err(e) => return e,
            };
            let sel: Option<Vec<String>> = tok
                .sel
                .as_ref()
                .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
            let mb = g.tenants[ti].mailboxes.entry(uid.to_string()).or_default();
            // Deleted or moved out (a move leaves a tombstone in the old folder): `@removed`.
            let items = mb
                .messages
                .iter()
                .filter(|r| r.data["parentFolderId"] == f)
                .map(DeltaItem::from)
                .collect();
            let page = delta::page(
                items,
                &tok,
                ctx.max_page().unwrap_or(10),
                "#microsoft.graph.message",
                |d| {
                    let mut v = strip_navigation(&shape(d, sel.as_deref(), None));
                    v["@odata.type"] = json!("#microsoft.graph.message");
                    v["id"] = d["id"].clone();
                    v
                },
            );
            delta_answer(ctx, "Collection(message)", page)
        }
        ("POST", ["messages", _, "move"]) | ("POST", ["mailfolders", _, "messages", _, "move"]) => {
            let id = segs[segs.len() - 2].clone();
            let Some(dest) = body.get("destinationId").and_then(|d| d.as_str()) else {
                return ctx.err(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidParameter",
                    "The value of the parameter 'DestinationId' is empty.",
                );
            };
            let Some(dest) = model::mail_folder(dest) else {
                return ctx.err(
                    StatusCode::NOT_FOUND,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                );
            };
            let (gone, new) = (g.bump(), g.bump());
            let mb = g.tenants[ti].mailboxes.entry(uid.to_string()).or_default();
            match mb.move_message(&id, dest, gone, new) {
                Some(mut copy) => {
                    copy["@odata.context"] =
                        json!(ctx.ctx_url(&format!("{uctx}/messages/$entity")));
                    GResp::created(copy)
                }
                None => ctx.err(
                    StatusCode::NOT_FOUND,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                ),
            }
        }
        (_, ["messages", _]) => {
            // A message changes folders only through `move` (which its old folder's delta
            // reports as `@removed`), never through an update.
            let folder_set = body
                .as_object()
                .and_then(|o| o.keys().find(|k| k.eq_ignore_ascii_case("parentFolderId")));
            if let (true, Some(p)) = (m == Method::PATCH, folder_set) {
                return ctx.err(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidPropertyForOperation",
                    &format!("The property '{p}' cannot be set."),
                );
            }
            let seq = g.bump();
            let mb = g.tenants[ti].mailboxes.entry(uid.to_string()).or_default();
            item_routes(
                ctx,
                m,
                "message",
                &mut mb.messages,
                &segs[1],
                body,
                seq,
                &format!("{uctx}/messages/$entity"),
            )
        }
        // ----- To Do -----
        ("GET", ["todo", "lists"]) => {
            let mb = g.tenants[ti].mailboxes.entry(uid.to_string()).or_default();
            if mb.todo_lists.is_empty() {
                mb.todo_lists.push(TodoList {
                    data: model::new_todo_list(
                        &json!({"displayName": "Tasks", "wellknownListName": "defaultList"}),
                    ),
                    tasks: vec![],
                });
            }
            let items = mb.todo_lists.iter().map(|l| l.data.clone()).collect();
            list(ctx, &format!("{uctx}/todo/lists"), items, 100, None)
        }
        ("POST", ["todo", "lists"]) => {
            let list_v = model::new_todo_list(&body);
            g.tenants[ti]
                .mailboxes
                .entry(uid.to_string())
                .or_default()
                .todo_lists
                .push(TodoList {
                    data: list_v.clone(),
                    tasks: vec![],
                });
            let mut out = list_v;
            out["@odata.context"] = json!(ctx.ctx_url(&format!("{uctx}/todo/lists/$entity")));
            GResp::created(out)
        }
        (_, ["todo", "lists", _, rest @ ..]) => {
            let seq = g.bump();
            let lid = segs[2].clone();
            let delta_tok = (m.as_str() == "GET" && rest == ["tasks", "delta"])
                .then(|| delta_token(g, ctx, &format!("tasks:{uid}:{lid}"), None));
            let mb = g.tenants[ti].mailboxes.entry(uid.to_string()).or_default();
            let Some(tl) = mb
                .todo_lists
                .iter_mut()
                .find(|x| x.data["id"].as_str() == Some(lid.as_str()))
            else {
                return ctx.err(
                    StatusCode::NOT_FOUND,
                    "ErrorItemNotFound",
                    "The specified object was not found in the store.",
                );
            };
            match (m.as_str(), rest) {
                ("GET", []) => {
                    let mut v = tl.data.clone();
                    v["@odata.context"] = json!(ctx.ctx_url(&format!("{uctx}/todo/lists/$entity")));
                    GResp::ok(v)
                }
                ("GET", ["tasks"]) => list(
                    ctx,
                    &format!("{uctx}/todo/lists('{lid}')/tasks"),
                    live(&tl.tasks),
                    100,
                    None,
                ),
                ("POST", ["tasks"]) => {
                    let body = match body
                        .as_object()
                        .map(|o| check_write(ctx, "todoTask", o, &[]))
                    {
                        Some(Ok(o)) => Value::Object(o),
                        Some(Err(e)) => return e,
                        None => body,
                    };
                    let t = model::new_todo_task(&body);
                    tl.tasks.push(Rec {
                        seq,
                        removed: None,
                        data: t.clone(),
                    });
                    let mut out = t;
                    out["@odata.context"] =
                        json!(ctx.ctx_url(&format!("{uctx}/todo/lists('{lid}')/tasks/$entity")));
                    GResp::created(out)
                }
                ("GET", ["tasks", "delta"]) => {
                    let tok = match delta_tok {
                        Some(Ok(t)) => t,
                        Some(Err(e)) => return e,
                        None => return gone(ctx),
                    };
                    let items = tl.tasks.iter().map(DeltaItem::from).collect();
                    let page = delta::page(
                        items,
                        &tok,
                        ctx.max_page().unwrap_or(10),
                        "#microsoft.graph.todoTask",
                        |d| ctx.present(strip_navigation(d)),
                    );
                    delta_answer(ctx, &format!("{uctx}/todo/lists('{lid}')/tasks"), page)
                }
                (_, ["tasks", _, "linkedresources", rest2 @ ..]) => {
                    let tid = segs[4].clone();
                    let Some(task) = tl.tasks.iter_mut().find(|r| r.live() && r.id() == tid) else {
                        return ctx.err(
                            StatusCode::NOT_FOUND,
                            "ErrorItemNotFound",
                            "The specified object was not found in the store.",
                        );
                    };
                    linked_resource_routes(
                        ctx,
                        m,
                        task,
                        segs.get(6)
                            .filter(|_| !rest2.is_empty())
                            .map(String::as_str),
                        body,
                        seq,
                    )
                }
                (_, ["tasks", tid]) => {
                    let tid = tid.to_string();
                    let real = segs.get(4).cloned().unwrap_or(tid);
                    item_routes(
                        ctx,
                        m,
                        "todoTask",
                        &mut tl.tasks,
                        &real,
                        body,
                        seq,
                        &format!("{uctx}/todo/lists('{lid}')/tasks/$entity"),
                    )
                }
                _ => ctx.err(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "Unsupported To Do segment.",
                ),
            }
        }
        _ => ctx.err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!(
                "Resource not found for the segment '{}'.",
                segs.last().map(|s| s.as_str()).unwrap_or("")
            ),
        ),
    }
}

/// Navigation properties stored with a mailbox item (deep insert) and returned only when
/// `$expand` names them.
/// The id of a mailbox's root folder (`msgfolderroot`): opaque, fixed per user.
pub fn root_folder_id(uid: &str) -> String {
    format!("AAMkAD{}AAAuAAAAAAEBAAA=", uid.replace('-', ""))
}

/// `mailFolders/{f}` names the root folder: its well-known name or its id (any case).
fn is_root_folder(f: &str, uid: &str) -> bool {
    f.eq_ignore_ascii_case("msgfolderroot") || f.eq_ignore_ascii_case(&root_folder_id(uid))
}

/// The `mailFolder` properties of the root folder.
const MAIL_FOLDER_PROPERTIES: [&str; 7] = [
    "id",
    "displayName",
    "parentFolderId",
    "childFolderCount",
    "unreadItemCount",
    "totalItemCount",
    "isHidden",
];

/// The root folder as a `mailFolder` with its stored extended properties.
fn root_folder(uid: &str, mb: &super::Mailbox) -> Value {
    json!({
        "id": root_folder_id(uid),
        "displayName": "Top of Information Store",
        "parentFolderId": format!("AAMkAD{}AAAuAAAAAAEAAAA=", uid.replace('-', "")),
        "childFolderCount": model::MAIL_FOLDERS.len(),
        "unreadItemCount": 0,
        "totalItemCount": 0,
        "isHidden": false,
        "singleValueExtendedProperties": mb.root_properties,
    })
}

/// `GET users/{id}/mailFolders/msgfolderroot`: `$select` of its properties, `$expand` of
/// `singleValueExtendedProperties($filter=id eq '…')`. An expansion that matches nothing is
/// left out of the answer, as Graph leaves it out.
fn get_root_folder(ctx: &Ctx, uctx: &str, uid: &str, mb: &super::Mailbox) -> GResp {
    let select = select_list(ctx);
    if let Some(p) = select.iter().flatten().find(|p| {
        !MAIL_FOLDER_PROPERTIES
            .iter()
            .any(|k| k.eq_ignore_ascii_case(p))
    }) {
        return ctx.err(
            StatusCode::BAD_REQUEST,
            "RequestBroker--ParseUri",
            &format!("Could not find a property named '{p}' on type 'Microsoft.OutlookServices.MailFolder'."),
        );
    }
    let data = root_folder(uid, mb);
    let expanded = expand_navigation(ctx, &data);
    let mut out = shape_item(&strip_navigation(&data), select.as_deref());
    for k in STORED_NAVIGATION {
        if let Some(items) = expanded.get(k).and_then(Value::as_array) {
            if !items.is_empty() {
                out[k] = Value::Array(items.clone());
            }
        }
    }
    out["@odata.context"] = json!(ctx.ctx_url(&format!(
        "{}/$entity",
        context_frag(&format!("{uctx}/mailFolders"), select.as_deref())
    )));
    GResp::ok(out)
}

/// The display name of a well-known mail folder (one of [`model::MAIL_FOLDERS`]).
fn well_known_name(folder: &'static str) -> &'static str {
    match folder {
        "archive" => "Archive",
        "deleteditems" => "Deleted Items",
        "drafts" => "Drafts",
        "inbox" => "Inbox",
        "junkemail" => "Junk Email",
        "outbox" => "Outbox",
        "sentitems" => "Sent Items",
        other => other,
    }
}

/// `GET users/{id}/mailFolders/{well-known name}`: the folder as a `mailFolder` (an id fixed
/// per user and folder, its message counts), `$select` applied.
fn get_well_known_folder(
    ctx: &Ctx,
    uctx: &str,
    uid: &str,
    folder: &'static str,
    mb: &super::Mailbox,
) -> GResp {
    let messages: Vec<Value> = live(&mb.messages)
        .into_iter()
        .filter(|m| m["parentFolderId"] == folder)
        .collect();
    let unread = messages.iter().filter(|m| m["isRead"] == false).count();
    let data = json!({
        "id": format!("AAMkAD{}AAAu{}=", uid.replace('-', ""), folder.to_ascii_uppercase()),
        "displayName": well_known_name(folder),
        "parentFolderId": root_folder_id(uid),
        "childFolderCount": 0,
        "unreadItemCount": unread,
        "totalItemCount": messages.len(),
        "isHidden": false,
    });
    let select = select_list(ctx);
    let mut out = shape_item(&data, select.as_deref());
    out["@odata.context"] = json!(ctx.ctx_url(&format!(
        "{}/$entity",
        context_frag(&format!("{uctx}/mailFolders"), select.as_deref())
    )));
    GResp::ok(out)
}

/// The single-value extended property id formats Graph accepts: `{type} {guid} Name {name}`,
/// `{type} {guid} Id 0x{hex}` or `{type} 0x{tag}`.
fn valid_property_id(id: &str) -> bool {
    const TYPES: [&str; 13] = [
        "ApplicationTime",
        "Binary",
        "Boolean",
        "CLSID",
        "Currency",
        "Double",
        "Float",
        "Integer",
        "Long",
        "Object",
        "Short",
        "String",
        "SystemTime",
    ];
    let hex = |s: &str| {
        s.strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
    };
    let guid = |s: &str| {
        s.strip_prefix('{')
            .and_then(|g| g.strip_suffix('}'))
            .and_then(|g| uuid::Uuid::parse_str(g).ok())
            .is_some()
    };
    let parts: Vec<&str> = id.splitn(4, ' ').collect();
    let typed = parts
        .first()
        .is_some_and(|t| TYPES.iter().any(|k| k.eq_ignore_ascii_case(t)));
    typed
        && match parts[1..] {
            [tag] => hex(tag),
            [g, kind, name] if kind.eq_ignore_ascii_case("Name") => guid(g) && !name.is_empty(),
            [g, kind, num] if kind.eq_ignore_ascii_case("Id") => guid(g) && hex(num),
            _ => false,
        }
}

/// `PATCH users/{id}/mailFolders/msgfolderroot`: writes `singleValueExtendedProperties`
/// (each replaces the property of its id); answers the folder without them.
fn patch_root_folder(
    ctx: &Ctx,
    uctx: &str,
    uid: &str,
    mb: &mut super::Mailbox,
    body: &Value,
) -> GResp {
    let Some(o) = body.as_object() else {
        return ctx.err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Empty Payload. JSON content expected.",
        );
    };
    let mut writes: Vec<(String, String)> = vec![];
    for (k, v) in o {
        if k.starts_with('@') {
            continue;
        }
        if !k.eq_ignore_ascii_case("singleValueExtendedProperties") {
            return if MAIL_FOLDER_PROPERTIES
                .iter()
                .any(|p| p.eq_ignore_ascii_case(k))
            {
                ctx.err(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidPropertyForOperation",
                    &format!("The property '{k}' cannot be set."),
                )
            } else {
                ctx.err(
                    StatusCode::BAD_REQUEST,
                    "RequestBodyRead",
                    &format!("The property '{k}' does not exist on type 'Microsoft.OutlookServices.MailFolder'. Make sure to only use property names that are defined by the type or mark the type as open type."),
                )
            };
        }
        let Some(items) = v.as_array() else {
            return ctx.err(
                StatusCode::BAD_REQUEST,
                "RequestBodyRead",
                "Cannot convert the literal to the expected type 'Collection(Microsoft.OutlookServices.SingleValueLegacyExtendedProperty)'.",
            );
        };
        for p in items {
            let (Some(id), Some(value)) = (p["id"].as_str(), p["value"].as_str()) else {
                return ctx.err(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidProperty",
                    "A single-value extended property needs a string 'id' and a string 'value'.",
                );
            };
            if !valid_property_id(id) {
                return ctx.err(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidProperty",
                    "PropertyId values may only be in one of the following formats: 'MapiPropertyType namespaceGuid Name propertyName', 'MapiPropertyType namespaceGuid Id propertyId' or 'MapiPropertyType propertyTag'.",
                );
            }
            writes.push((id.to_string(), value.to_string()));
        }
    }
    for (id, value) in &writes {
        mb.set_root_property(id, Some(value));
    }
    let mut out = strip_navigation(&root_folder(uid, mb));
    out["@odata.context"] = json!(ctx.ctx_url(&format!("{uctx}/mailFolders/$entity")));
    GResp::ok(out)
}

const STORED_NAVIGATION: [&str; 2] = ["singleValueExtendedProperties", "linkedResources"];

/// The item without its stored navigation properties.
fn strip_navigation(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for k in STORED_NAVIGATION {
            o.remove(k);
        }
    }
    v
}

/// The `$expand` entries: `(name, $filter)`, split at top-level commas.
fn expand_list(ctx: &Ctx) -> Vec<(String, Option<String>)> {
    let Some(e) = ctx.q("$expand") else {
        return vec![];
    };
    let mut out = vec![];
    let (mut depth, mut cur) = (0, String::new());
    for c in e.chars().chain(std::iter::once(',')) {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                let part = std::mem::take(&mut cur);
                let part = part.trim();
                let (name, opts) = match part.split_once('(') {
                    Some((n, o)) => (n.trim(), Some(o.trim_end_matches(')'))),
                    None => (part, None),
                };
                let filter = opts
                    .and_then(|o| o.trim().strip_prefix("$filter="))
                    .map(str::to_string);
                if !name.is_empty() {
                    out.push((name.to_string(), filter));
                }
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out
}

/// `id eq '…'` of an extended-property `$filter`.
fn property_id_filter(f: &str) -> Option<String> {
    let rest = f
        .trim()
        .strip_prefix("id")?
        .trim_start()
        .strip_prefix("eq")?
        .trim();
    Some(rest.trim_matches('\'').replace("''", "'"))
}

/// The item as `$expand` asks: stored navigation properties only when named (extended
/// properties filtered by `id eq '…'`).
fn expand_navigation(ctx: &Ctx, v: &Value) -> Value {
    let expands = expand_list(ctx);
    let mut out = strip_navigation(v);
    for (name, filter) in expands {
        let Some(key) = STORED_NAVIGATION
            .iter()
            .find(|k| k.eq_ignore_ascii_case(&name))
        else {
            continue;
        };
        let mut items = v
            .get(*key)
            .and_then(|x| x.as_array())
            .cloned()
            .unwrap_or_default();
        if let Some(id) = filter.as_deref().and_then(property_id_filter) {
            items.retain(|p| {
                p["id"]
                    .as_str()
                    .is_some_and(|x| x.eq_ignore_ascii_case(&id))
            });
        }
        out[*key] = Value::Array(items);
    }
    out
}

/// `singleValueExtendedProperties/Any(ep: ep/id eq '…' and ep/value eq '…')`: (id, value).
fn extended_property_filter(f: &str) -> Option<(String, String)> {
    let body = f.trim().strip_prefix("singleValueExtendedProperties/")?;
    let body = body.get(body.find('(')? + 1..body.rfind(')')?)?;
    let (var, cond) = body.split_once(':')?;
    let var = var.trim();
    let (a, b) = cond.split_once(" and ")?;
    let lit = |c: &str, prop: &str| -> Option<String> {
        let rest = c
            .trim()
            .strip_prefix(&format!("{var}/{prop}"))?
            .trim_start()
            .strip_prefix("eq")?
            .trim();
        Some(
            rest.strip_prefix('\'')?
                .strip_suffix('\'')?
                .replace("''", "'"),
        )
    };
    Some((lit(a, "id")?, lit(b, "value")?))
}

fn has_extended_property(v: &Value, id: &str, value: &str) -> bool {
    v["singleValueExtendedProperties"]
        .as_array()
        .is_some_and(|ps| {
            ps.iter().any(|p| {
                p["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id))
                    && p["value"].as_str() == Some(value)
            })
        })
}

fn sort_by_start(items: &mut [Value]) {
    items.sort_by(|a, b| {
        a.pointer("/start/dateTime")
            .and_then(|v| v.as_str())
            .cmp(&b.pointer("/start/dateTime").and_then(|v| v.as_str()))
    });
}

/// Event routes Graph answers beyond a stored item's GET/PATCH/DELETE: any GET (with
/// `$expand=exceptionOccurrences`), and writes to occurrences of a series: a PATCH makes the
/// occurrence an exception, a DELETE cancels it. `None` leaves the request to [`item_routes`].
fn occurrence_routes(
    ctx: &Ctx,
    m: &Method,
    events: &mut Vec<Rec>,
    id: &str,
    body: &Value,
    seq: u64,
    uctx: &str,
) -> Option<GResp> {
    let context = format!("{uctx}/events/$entity");
    let stored = events.iter().position(|r| r.live() && r.id() == id);
    let occurrence = if stored.is_none() {
        recur::find_occurrence(events, id)
    } else {
        None
    };
    match (m.as_str(), stored, occurrence) {
        ("GET", Some(i), _) => {
            if let Err(e) = check_select(ctx, "event") {
                return Some(e);
            }
            let select = select_list(ctx);
            let data = events[i].data.clone();
            let mut v = ctx.present(expand_navigation(
                ctx,
                &shape_item(&data, select.as_deref()),
            ));
            if expand_list(ctx)
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("exceptionOccurrences"))
            {
                let x: Vec<Value> = recur::exceptions(events, id)
                    .map(|r| ctx.present(strip_navigation(&r.data)))
                    .collect();
                v["exceptionOccurrences"] = Value::Array(x);
            }
            v["@odata.context"] = json!(ctx.ctx_url(&context));
            Some(GResp::ok(v))
        }
        ("GET", None, Some((mi, o))) => {
            let master = &events[mi].data;
            if recur::is_cancelled(master, &o.cancel_key) {
                return None;
            }
            let mut v = ctx.present(expand_navigation(ctx, &recur::occurrence_json(master, &o)));
            v["@odata.context"] = json!(ctx.ctx_url(&context));
            Some(GResp::ok(v))
        }
        ("PATCH", None, Some((mi, o))) => {
            if recur::is_cancelled(&events[mi].data, &o.cancel_key) {
                return None;
            }
            let changes = match write_body(ctx, "event", body, &[]) {
                Ok(c) => c,
                Err(e) => return Some(e),
            };
            let mut x = recur::occurrence_json(&events[mi].data, &o);
            x["type"] = json!("exception");
            model::patch(&mut x, &changes);
            events[mi].seq = seq;
            events.push(Rec {
                seq,
                removed: None,
                data: x.clone(),
            });
            let mut v = ctx.present(strip_navigation(&x));
            v["@odata.context"] = json!(ctx.ctx_url(&context));
            Some(GResp::ok(v))
        }
        ("PATCH", Some(i), _) if events[i].data["type"] == "exception" => {
            let master = events[i].data["seriesMasterId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if let Some(r) = events.iter_mut().find(|r| r.live() && r.id() == master) {
                r.seq = seq;
            }
            None
        }
        ("DELETE", None, Some((mi, o))) => {
            recur::cancel(&mut events[mi], &o.cancel_key, seq);
            Some(GResp::no_content())
        }
        ("DELETE", Some(i), _) => {
            let data = events[i].data.clone();
            match data["type"].as_str() {
                Some("exception") => {
                    let master = data["seriesMasterId"].as_str().unwrap_or_default();
                    if let Some(mi) = events.iter().position(|r| r.live() && r.id() == master) {
                        if let Some((_, o)) = recur::find_occurrence(events, id) {
                            recur::cancel(&mut events[mi], &o.cancel_key, seq);
                        }
                    }
                }
                Some("seriesMaster") => {
                    for r in events
                        .iter_mut()
                        .filter(|r| r.live() && r.data["seriesMasterId"].as_str() == Some(id))
                    {
                        r.removed = Some("deleted".into());
                        r.seq = seq;
                    }
                }
                _ => {}
            }
            None
        }
        _ => None,
    }
}

/// `tasks/{id}/linkedResources[/{id}]`: list, create, read, update, delete a task's links to
/// partner objects; every change is a change of the task.
fn linked_resource_routes(
    ctx: &Ctx,
    m: &Method,
    task: &mut Rec,
    id: Option<&str>,
    body: Value,
    seq: u64,
) -> GResp {
    let mut links = task.data["linkedResources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let pos = id.map(|id| links.iter().position(|l| l["id"].as_str() == Some(id)));
    let missing = || {
        ctx.err(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        )
    };
    let answer = match (m.as_str(), pos) {
        ("GET", None) => {
            return GResp::ok(
                json!({"@odata.context": ctx.ctx_url("linkedResources"), "value": links}),
            )
        }
        ("POST", None) => {
            let mut l = body;
            l["id"] = json!(uuid::Uuid::new_v4().to_string());
            links.push(l.clone());
            GResp::created(l)
        }
        ("GET", Some(Some(i))) => return GResp::ok(links[i].clone()),
        ("PATCH", Some(Some(i))) => {
            if let (Some(o), Some(c)) = (links[i].as_object_mut(), body.as_object()) {
                for (k, v) in c.iter().filter(|(k, _)| *k != "id") {
                    o.insert(k.clone(), v.clone());
                }
            }
            GResp::ok(links[i].clone())
        }
        ("DELETE", Some(Some(i))) => {
            links.remove(i);
            GResp::no_content()
        }
        (_, Some(None)) => return missing(),
        _ => {
            return ctx.err(
                StatusCode::METHOD_NOT_ALLOWED,
                "BadRequest",
                "Method not allowed.",
            )
        }
    };
    task.data["linkedResources"] = Value::Array(links);
    task.seq = seq;
    answer
}

fn live(recs: &[Rec]) -> Vec<Value> {
    recs.iter()
        .filter(|r| r.live())
        .map(|r| r.data.clone())
        .collect()
}

/// GET/PATCH/DELETE of one item in a collection.
#[allow(clippy::too_many_arguments)]
fn item_routes(
    ctx: &Ctx,
    m: &Method,
    t: &str,
    recs: &mut [Rec],
    id: &str,
    body: Value,
    seq: u64,
    context: &str,
) -> GResp {
    let Some(r) = recs.iter_mut().find(|r| r.live() && r.id() == id) else {
        return ctx.err(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        );
    };
    match m.as_str() {
        "GET" => {
            if let Err(e) = check_select(ctx, t) {
                return e;
            }
            let select = select_list(ctx);
            let mut v = ctx.present(expand_navigation(
                ctx,
                &shape_item(&r.data, select.as_deref()),
            ));
            v["@odata.context"] = json!(ctx.ctx_url(context));
            GResp::ok(v)
        }
        "PATCH" => {
            let changes = match write_body(ctx, t, &body, &[]) {
                Ok(c) => c,
                Err(e) => return e,
            };
            model::patch(&mut r.data, &changes);
            r.seq = seq;
            let mut v = ctx.present(strip_navigation(&r.data));
            v["@odata.context"] = json!(ctx.ctx_url(context));
            GResp::ok(v)
        }
        "DELETE" => {
            r.removed = Some("deleted".into());
            r.seq = seq;
            GResp::no_content()
        }
        _ => ctx.err(
            StatusCode::METHOD_NOT_ALLOWED,
            "BadRequest",
            "Method not allowed.",
        ),
    }
}

/// `POST /v1.0/$batch`: at most 20 requests; each answer has its own id, status, headers, body.
fn batch(
    store: &Store,
    tenant: &str,
    method: &Method,
    body: &[u8],
    crid: Option<&str>,
    host: Option<String>,
) -> GResp {
    if method != Method::POST {
        return GResp::err(
            StatusCode::METHOD_NOT_ALLOWED,
            "BadRequest",
            "Only POST is supported for $batch.",
            crid,
        );
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return GResp::err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid batch payload format.",
            crid,
        );
    };
    let Some(reqs) = v.get("requests").and_then(|r| r.as_array()) else {
        return GResp::err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid batch payload format.",
            crid,
        );
    };
    if reqs.len() > 20 {
        return GResp::err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Too many requests. Only 20 requests are allowed in a batch.",
            crid,
        );
    }
    let mut status_by_id: HashMap<String, u16> = HashMap::new();
    let mut responses = Vec::new();
    for r in reqs {
        let id = r
            .get("id")
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default();
        let method = r
            .get("method")
            .and_then(|m| m.as_str())
            .unwrap_or("GET")
            .to_ascii_uppercase();
        let url = r.get("url").and_then(|u| u.as_str()).unwrap_or("");
        let deps: Vec<String> = r
            .get("dependsOn")
            .and_then(|d| d.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let failed_dep = deps
            .iter()
            .any(|d| status_by_id.get(d).is_none_or(|s| *s >= 400));
        let (status, headers, body) = if failed_dep {
            (
                424u16,
                json!({"Content-Type": "application/json"}),
                Some(super::error_body(
                    "FailedDependency",
                    "Depended-on request failed.",
                    None,
                )),
            )
        } else {
            let url = url.trim_start_matches('/');
            let url = url.strip_prefix("v1.0/").unwrap_or(url);
            let (path, query) = url.split_once('?').unwrap_or((url, ""));
            let mut h: HashMap<String, String> = r
                .get("headers")
                .and_then(|h| h.as_object())
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| {
                            Some((k.to_ascii_lowercase(), v.as_str()?.to_string()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            h.entry("client-request-id".into())
                .or_insert_with(|| crid.unwrap_or("").to_string());
            if let Some(host) = &host {
                h.entry("host".into()).or_insert_with(|| host.clone());
            }
            let body_bytes = r
                .get("body")
                .map(|b| b.to_string().into_bytes())
                .unwrap_or_default();
            // Requests in a batch are evaluated individually against fault rules.
            let full = format!("/v1.0/{path}");
            let decision = store.faults.evaluate(&method, &full);
            let resp = if let Some(st) = decision.status {
                let code = StatusCode::from_u16(st).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut gr = GResp::err(
                    code,
                    if st == 429 {
                        "TooManyRequests"
                    } else {
                        "generalException"
                    },
                    "Injected fault.",
                    None,
                );
                if let Some(ra) = decision.retry_after {
                    gr.headers.push(("Retry-After".into(), ra));
                }
                gr
            } else {
                let m = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
                dispatch(store, tenant, &m, path, query, h, &body_bytes)
            };
            let mut hv = Map::new();
            if resp.body.is_some() {
                hv.insert("Content-Type".into(), json!("application/json"));
            }
            for (k, v) in &resp.headers {
                hv.insert(k.clone(), json!(v));
            }
            (resp.status.as_u16(), Value::Object(hv), resp.body)
        };
        status_by_id.insert(id.clone(), status);
        let mut o = Map::new();
        o.insert("id".into(), json!(id));
        o.insert("status".into(), json!(status));
        o.insert("headers".into(), headers);
        if let Some(b) = body {
            o.insert("body".into(), b);
        }
        responses.push(Value::Object(o));
    }
    GResp::ok(json!({ "responses": responses }))
}

#[cfg(test)]
mod request_base_tests {
    use super::request_base;

    #[test]
    fn links_stay_on_the_host_the_client_called() {
        let base = "https://127.0.0.1:2610";
        assert_eq!(
            request_base(base, Some("localhost:2610")),
            "https://localhost:2610"
        );
        assert_eq!(request_base(base, None), base);
        assert_eq!(request_base(base, Some("")), base);
        assert_eq!(
            request_base("http://127.0.0.1:1", Some("sim.test")),
            "http://sim.test"
        );
    }
}
