//! `calendar:mailbox=UPN,past=N,future=M`: events of a mailbox's calendar window.
//!
//! Reads `GET /users/{upn}/calendarView/delta?startDateTime&endDateTime` with
//! `Prefer: outlook.timezone="UTC"` (instants are read in UTC; each event's own zone comes from
//! `originalStartTimeZone`, the series' from `recurrence.range.recurrenceTimeZone`) and
//! `odata.maxpagesize`. The window is whole UTC days, today − `past` … today + `future` + 1; a
//! delta link from an earlier day starts a full pass for today's window (the engine reconciles
//! it, so items that left the window are reported), a pass in progress finishes first.
//!
//! The view lists single instances, occurrences and exceptions. Singles are read again with
//! `GET /events/{id}?$expand=singleValueExtendedProperties(…)` (delta queries take no
//! `$expand`; the anchor needs it). Occurrences and exceptions are never items of their own:
//! each series they belong to (`seriesMasterId`) is read once per page —
//! `GET /events/{master}?$expand=exceptionOccurrences,singleValueExtendedProperties(…)` for the
//! recurrence, its zone, its exceptions (wherever they moved) and the anchor, and
//! `GET /events/{master}/instances?startDateTime&endDateTime` for what the window shows — and
//! becomes one `series-master` item: the RRULE ([`super::recurrence`]), the zone (IANA and
//! Windows id), the modified occurrences with their `originalStart`, and as deleted the starts
//! the rule expects in the window that neither the instances nor the exceptions have.
//! Writing a series writes its exceptions too ([`super::exceptions`]).
//! A series is returned once a pass: the cursor of a pass in progress lists the masters it
//! returned. `@removed` entries are removals of their ids (an occurrence's removal also
//! changes its master, which the next round lists again).

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use syncbridge_sdk::http::Method;
use syncbridge_sdk::types::mailbox::*;
use syncbridge_sdk::types::{PluginError, RemoteFailure, WriteAction, WriteOk};
use syncbridge_sdk::{clock, url};

use super::zone::{self, fmt_utc, parse_utc};
use super::*;

/// Canonical event fields an update may name.
pub const FIELDS: &[&str] = &[
    "subject",
    "start",
    "end",
    "all_day",
    "show_as",
    "sensitivity",
    "series",
    "organizer",
    "attendees",
    "location",
    "categories",
    "body",
    "reminder_minutes",
    "anchor",
];

/// The window of a calendar scope at `now`: whole UTC days.
pub fn window(now_ms: u64, past: u32, future: u32) -> (DateTime<Utc>, DateTime<Utc>) {
    let now = Utc
        .timestamp_millis_opt(now_ms as i64)
        .single()
        .unwrap_or_default();
    let today = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    (
        today - Duration::days(past.into()),
        today + Duration::days(i64::from(future) + 1),
    )
}

fn is_delta_link(link: &str) -> bool {
    link.contains("$deltatoken=") || link.contains("%24deltatoken=")
}

pub(super) fn window_query(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    format!(
        "startDateTime={}&endDateTime={}",
        url::encode_query_value(&fmt_utc(from)),
        url::encode_query_value(&fmt_utc(to))
    )
}

/// One page of the calendar scope.
pub fn pull(
    cfg: &Config,
    scope: &MailboxScope,
    mut cursor: DeltaCursor,
    max_items: u32,
) -> Result<MailboxPage, PluginError> {
    let MailboxScope::Calendar {
        mailbox,
        past,
        future,
        ..
    } = scope
    else {
        unreachable!("calendar::pull reads calendar scopes");
    };
    let (from, to) = window(clock::now_ms(), *past, *future);
    let today = from.format("%Y-%m-%d").to_string();
    let stale = cursor
        .link
        .as_deref()
        .is_some_and(|l| is_delta_link(l) && cursor.from.as_deref() != Some(today.as_str()));
    if cursor.link.is_none() || stale {
        cursor = DeltaCursor {
            link: Some(format!(
                "{}/calendarView/delta?{}",
                user_root(cfg, mailbox),
                window_query(from, to)
            )),
            full: true,
            from: Some(today),
            ..DeltaCursor::default()
        };
    }
    let link = cursor.link.clone().unwrap_or_default();
    let (values, next, more) = match read_delta(cfg, &link, max_items, true)? {
        DeltaRead::Gone => return Ok(restart_page()),
        DeltaRead::Page { values, link, more } => (values, link, more),
    };
    // The window the link reads (a pass keeps its own window).
    let (from, to) = cursor
        .from
        .as_deref()
        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .map(|d| {
            let f = d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
            (
                f,
                f + Duration::days(i64::from(*past) + i64::from(*future) + 1),
            )
        })
        .unwrap_or((from, to));
    let root = user_root(cfg, mailbox);
    let mut items = Vec::new();
    let mut series = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for v in &values {
        let Some(id) = v["id"].as_str() else { continue };
        if v.get("@removed").is_some() {
            if seen.insert(id.to_owned()) {
                items.push(removed(id));
            }
            continue;
        }
        match v["type"].as_str().unwrap_or("singleInstance") {
            "occurrence" | "exception" => {
                if let Some(m) = v["seriesMasterId"].as_str() {
                    series.insert(m.to_owned());
                }
            }
            "seriesMaster" => {
                series.insert(id.to_owned());
            }
            _ => {
                if seen.insert(id.to_owned()) {
                    items.push(match read_single(&root, id)? {
                        Some(item) => item,
                        None => removed(id),
                    });
                }
            }
        }
    }
    for m in series {
        if seen.insert(m.clone()) && !cursor.series.contains(&m) {
            if more {
                cursor.series.push(m.clone());
            }
            items.push(match read_series(cfg, &root, &m, from, to)? {
                Some(item) => item,
                None => removed(&m),
            });
        }
    }
    Ok(delta_page(items, cursor, next, more))
}

fn read_single(root: &str, id: &str) -> Result<Option<MailboxItem>, PluginError> {
    let url = format!(
        "{root}/events/{}?$expand={}",
        url::encode_path_segment(id),
        url::encode_query_value(&anchor_expand())
    );
    let Some(v) = get_optional(&url)? else {
        return Ok(None);
    };
    if v["type"].as_str() == Some("seriesMaster") {
        return Ok(None);
    }
    Ok(Some(item(&v, map_event(&v, EventKind::Single)?)))
}

fn item(v: &Value, e: Event) -> MailboxItem {
    MailboxItem {
        id: v["id"].as_str().unwrap_or_default().to_owned(),
        version: version_of(v),
        removed: None,
        body: Some(MailboxBody::Event(e)),
    }
}

/// Reads a series master and what the window `[from, to)` shows of it; `None` when it is gone.
pub fn read_series(
    cfg: &Config,
    root: &str,
    id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Option<MailboxItem>, PluginError> {
    let seg = url::encode_path_segment(id);
    let url = format!(
        "{root}/events/{seg}?$expand={}",
        url::encode_query_value(&format!("exceptionOccurrences,{}", anchor_expand()))
    );
    let Some(master) = get_optional(&url)? else {
        return Ok(None);
    };
    let instances = match get_all(
        cfg,
        &format!("{root}/events/{seg}/instances?{}", window_query(from, to)),
    ) {
        Ok(i) => i,
        Err(PluginError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let e = series_event(&master, &instances, from, to)?;
    Ok(Some(item(&master, e)))
}

/// The canonical series master of `master` (read with `exceptionOccurrences`) and the
/// `instances` of the window `[from, to)`.
pub fn series_event(
    master: &Value,
    instances: &[Value],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Event, PluginError> {
    let mut e = map_event(master, EventKind::SeriesMaster)?;
    let rec = &master["recurrence"];
    let zone_name = text(&rec["range"], "recurrenceTimeZone")
        .or_else(|| text(master, "originalStartTimeZone"))
        .unwrap_or_else(|| "UTC".into());
    let zone = zone::zone_of(&zone_name).unwrap_or(Zone {
        iana: "UTC".into(),
        windows: None,
    });
    let tz: Tz = zone::tz(&zone.iana).unwrap_or(Tz::UTC);
    let bad = |m: String| {
        PluginError::Remote(RemoteFailure {
            status: 200,
            message: format!("series {}: {m}", master["id"].as_str().unwrap_or_default()),
        })
    };
    let rrule = recurrence::to_rrule(rec, tz).map_err(bad)?;
    let start = parse_utc(&e.start.utc).ok_or_else(|| bad("no start".into()))?;
    let end = parse_utc(&e.end.utc).unwrap_or(start);
    let duration = end - start;
    // Exceptions: wherever they are now, by the start they had in the series.
    let mut modified: Vec<OccurrenceChange> = Vec::new();
    let exceptions = master["exceptionOccurrences"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(
            instances
                .iter()
                .filter(|i| i["type"].as_str() == Some("exception")),
        );
    // An all-day occurrence's original start is a date: midnight in the series zone.
    let all_day = e.all_day;
    let original = |s: DateTime<Utc>| -> DateTime<Utc> {
        if all_day {
            zone::all_day_original(s, tz)
        } else {
            s
        }
    };
    for x in exceptions {
        let Some(mut change) = occurrence_change(x)? else {
            continue;
        };
        if let Some(s) = parse_utc(&change.original_start) {
            change.original_start = fmt_utc(original(s));
        }
        if !modified
            .iter()
            .any(|m| m.original_start == change.original_start)
        {
            modified.push(change);
        }
    }
    // One put back in place (see `exceptions`) is an exception to Graph only.
    modified.retain(|c| !syncbridge_sdk::series::follows_pattern(c, &e));
    modified.sort_by(|a, b| a.original_start.cmp(&b.original_start));
    let mut present: BTreeSet<DateTime<Utc>> = instances
        .iter()
        .filter_map(|i| i["originalStart"].as_str().and_then(parse_utc))
        .map(original)
        .collect();
    present.extend(modified.iter().filter_map(|m| parse_utc(&m.original_start)));
    let expected = recurrence::expand(&rrule, start, tz, from - duration, to).map_err(bad)?;
    let deleted = expected
        .into_iter()
        .filter(|s| *s + duration > from || duration.is_zero() && *s >= from)
        .filter(|s| !present.contains(s))
        .map(fmt_utc)
        .collect();
    e.series = Some(Series {
        rrule,
        zone,
        modified,
        deleted,
    });
    Ok(e)
}

pub(super) fn occurrence_change(x: &Value) -> Result<Option<OccurrenceChange>, PluginError> {
    let Some(original) = x["originalStart"].as_str().and_then(parse_utc) else {
        return Ok(None);
    };
    let e = map_event(x, EventKind::Exception)?;
    Ok(Some(OccurrenceChange {
        original_start: fmt_utc(original),
        id: text(x, "id"),
        start: e.start,
        end: e.end,
        subject: e.subject,
        location: e.location,
        body: e.body,
        show_as: e.show_as,
    }))
}

fn show_as(s: Option<&str>) -> ShowAs {
    match s.unwrap_or_default() {
        "free" => ShowAs::Free,
        "tentative" => ShowAs::Tentative,
        "oof" => ShowAs::Oof,
        "workingElsewhere" => ShowAs::Elsewhere,
        _ => ShowAs::Busy,
    }
}

pub(super) fn show_as_name(s: ShowAs) -> &'static str {
    match s {
        ShowAs::Free => "free",
        ShowAs::Tentative => "tentative",
        ShowAs::Busy => "busy",
        ShowAs::Oof => "oof",
        ShowAs::Elsewhere => "workingElsewhere",
    }
}

fn sensitivity(s: Option<&str>) -> Sensitivity {
    match s.unwrap_or_default() {
        "personal" => Sensitivity::Personal,
        "private" => Sensitivity::Private,
        "confidential" => Sensitivity::Confidential,
        _ => Sensitivity::Normal,
    }
}

fn sensitivity_name(s: Sensitivity) -> &'static str {
    match s {
        Sensitivity::Normal => "normal",
        Sensitivity::Personal => "personal",
        Sensitivity::Private => "private",
        Sensitivity::Confidential => "confidential",
    }
}

fn response(s: Option<&str>) -> Response {
    match s.unwrap_or_default() {
        "organizer" => Response::Organizer,
        "accepted" => Response::Accepted,
        "tentativelyAccepted" => Response::Tentative,
        "declined" => Response::Declined,
        "notResponded" => Response::NotResponded,
        _ => Response::None,
    }
}

fn role(s: Option<&str>) -> AttendeeRole {
    match s.unwrap_or_default() {
        "optional" => AttendeeRole::Optional,
        "resource" => AttendeeRole::Resource,
        _ => AttendeeRole::Required,
    }
}

fn role_name(r: AttendeeRole) -> &'static str {
    match r {
        AttendeeRole::Required => "required",
        AttendeeRole::Optional => "optional",
        AttendeeRole::Resource => "resource",
    }
}

/// A Graph event (read with times in UTC) as a canonical event of `kind`.
pub fn map_event(v: &Value, kind: EventKind) -> Result<Event, PluginError> {
    let all_day = v["isAllDay"].as_bool().unwrap_or(false);
    let zone = v["originalStartTimeZone"].as_str().and_then(zone::zone_of);
    let time = |k: &str| {
        zone::event_time(&v[k], zone.as_ref(), all_day).ok_or_else(|| {
            PluginError::Remote(RemoteFailure {
                status: 200,
                message: format!(
                    "event {} has no readable {k}",
                    v["id"].as_str().unwrap_or_default()
                ),
            })
        })
    };
    let attendees = v["attendees"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| {
            Some(Participant {
                address: email(&a["emailAddress"])?,
                role: role(a["type"].as_str()),
                response: response(a["status"]["response"].as_str()),
            })
        })
        .collect();
    let (series_id, original_start) = match kind {
        EventKind::Occurrence | EventKind::Exception => (
            text(v, "seriesMasterId"),
            v["originalStart"].as_str().and_then(parse_utc).map(fmt_utc),
        ),
        _ => (None, None),
    };
    Ok(Event {
        kind,
        series_id,
        original_start,
        subject: text(v, "subject"),
        start: time("start")?,
        end: time("end")?,
        all_day,
        show_as: show_as(v["showAs"].as_str()),
        sensitivity: sensitivity(v["sensitivity"].as_str()),
        series: None,
        organizer: email(&v["organizer"]["emailAddress"]),
        attendees,
        location: text(&v["location"], "displayName"),
        categories: strings(v, "categories"),
        body: rich_text(&v["body"]),
        reminder_minutes: (v["isReminderOn"].as_bool() == Some(true))
            .then(|| v["reminderMinutesBeforeStart"].as_u64().unwrap_or(0) as u32),
        anchor: anchor_of(v),
    })
}

/// The Graph JSON writing the fields of `op` (all for a create, the named ones for an update).
pub fn event_json(e: &Event, op: &MailboxWriteOp) -> Result<Value, PluginError> {
    check_fields(op, FIELDS)?;
    let mut o = Map::new();
    let w = |f: &str| named(op, f);
    let invalid = |f: &str, m: &str| PluginError::invalid_field(f, m);
    if w("subject") {
        o.insert(
            "subject".into(),
            json!(e.subject.clone().unwrap_or_default()),
        );
    }
    if w("all_day") {
        o.insert("isAllDay".into(), json!(e.all_day));
    }
    // Start and end travel together: Graph checks their order and zone as a pair.
    if w("start") || w("end") || w("all_day") {
        let s = zone::to_dttz(&e.start, e.all_day)
            .ok_or_else(|| invalid("start", "not an RFC 3339 instant"))?;
        let en = zone::to_dttz(&e.end, e.all_day)
            .ok_or_else(|| invalid("end", "not an RFC 3339 instant"))?;
        o.insert("start".into(), s);
        o.insert("end".into(), en);
    }
    if w("show_as") {
        o.insert("showAs".into(), json!(show_as_name(e.show_as)));
    }
    if w("sensitivity") {
        o.insert("sensitivity".into(), json!(sensitivity_name(e.sensitivity)));
    }
    if w("series") {
        o.insert("recurrence".into(), recurrence_json(e)?);
    }
    if w("organizer") {
        if let Some(org) = &e.organizer {
            o.insert("organizer".into(), json!({"emailAddress": email_json(org)}));
        }
    }
    if w("attendees") {
        let a: Vec<Value> = e
            .attendees
            .iter()
            .map(|p| json!({"emailAddress": email_json(&p.address), "type": role_name(p.role)}))
            .collect();
        o.insert("attendees".into(), json!(a));
    }
    if w("location") {
        o.insert(
            "location".into(),
            json!({"displayName": e.location.clone().unwrap_or_default()}),
        );
    }
    if w("categories") {
        o.insert("categories".into(), json!(e.categories));
    }
    if w("body") {
        o.insert("body".into(), item_body(e.body.as_ref()));
    }
    if w("reminder_minutes") {
        o.insert("isReminderOn".into(), json!(e.reminder_minutes.is_some()));
        if let Some(m) = e.reminder_minutes {
            o.insert("reminderMinutesBeforeStart".into(), json!(m));
        }
    }
    if w("anchor") && (op.action != WriteAction::Create || e.anchor.is_some()) {
        o.insert(
            "singleValueExtendedProperties".into(),
            anchor_property(e.anchor.as_deref()),
        );
    }
    Ok(Value::Object(o))
}

/// The Graph `recurrence` of an event's `series` (`null` without one).
fn recurrence_json(e: &Event) -> Result<Value, PluginError> {
    let Some(s) = &e.series else {
        return Ok(Value::Null);
    };
    let tz = zone::tz(&s.zone.iana).ok_or_else(|| {
        PluginError::invalid_field(
            "series",
            format!("unknown time zone {:?}; use an IANA name", s.zone.iana),
        )
    })?;
    let start = parse_utc(&e.start.utc)
        .ok_or_else(|| PluginError::invalid_field("start", "not an RFC 3339 instant"))?;
    let local = if e.all_day {
        // An all-day start is midnight in the event's zone; its date is the series' first day.
        let z = e
            .start
            .zone
            .as_ref()
            .and_then(|z| zone::tz(&z.iana))
            .unwrap_or(tz);
        start.with_timezone(&z).date_naive()
    } else {
        start.with_timezone(&tz).date_naive()
    };
    recurrence::from_rrule(&s.rrule, local, tz, &zone::graph_name(&s.zone))
        .map_err(|m| PluginError::invalid_field("series", m))
}

/// Applies one write to the mailbox's calendar.
pub fn write(
    cfg: &Config,
    scope: &MailboxScope,
    mailbox: &str,
    op: &MailboxWriteOp,
) -> Result<WriteOk, PluginError> {
    let root = format!("{}/events", user_root(cfg, mailbox));
    let event = || match &op.body {
        Some(MailboxBody::Event(e)) => Ok(e),
        _ => Err(wrong_body("event")),
    };
    match op.action {
        WriteAction::Create => {
            let e = event()?;
            let body = event_json(e, op)?;
            let answer = send_write(Method::Post, &root, Some(&body))?;
            let ok = write_ok(&answer, "");
            with_exceptions(cfg, &root, e, ok, None)
        }
        WriteAction::Update => {
            let id = target(op)?;
            let e = event()?;
            let body = event_json(e, op)?;
            let answer = send_write(
                Method::Patch,
                &format!("{root}/{}", url::encode_path_segment(id)),
                Some(&body),
            )?;
            let ok = write_ok(&answer, id);
            if named(op, "series") {
                with_exceptions(cfg, &root, e, ok, Some(scope_window(scope)))
            } else {
                Ok(ok)
            }
        }
        WriteAction::Delete => {
            let id = target(op)?;
            match send_write(
                Method::Delete,
                &format!("{root}/{}", url::encode_path_segment(id)),
                None,
            ) {
                Ok(_) | Err(PluginError::NotFound(_)) => Ok(WriteOk {
                    target_id: id.to_owned(),
                    version: None,
                }),
                Err(e) => Err(e),
            }
        }
        other => Err(unsupported_action(other)),
    }
}

/// Writes the exceptions of a series just written (see [`super::exceptions`]); on an update,
/// `window` is the scope's, where exceptions the series no longer lists are put back. The
/// master's version is read again when they changed it.
fn with_exceptions(
    cfg: &Config,
    root: &str,
    e: &Event,
    ok: WriteOk,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Result<WriteOk, PluginError> {
    if e.series.is_none() {
        return Ok(ok);
    }
    if !super::exceptions::write(cfg, root, &ok.target_id, e, window)? {
        return Ok(ok);
    }
    let now = get_json(&format!(
        "{root}/{}?$select=id,changeKey",
        url::encode_path_segment(&ok.target_id)
    ))?;
    Ok(WriteOk {
        version: version_of(&now).or(ok.version),
        ..ok
    })
}

fn scope_window(scope: &MailboxScope) -> (DateTime<Utc>, DateTime<Utc>) {
    match scope {
        MailboxScope::Calendar { past, future, .. } => window(clock::now_ms(), *past, *future),
        _ => window(clock::now_ms(), 30, 30),
    }
}

fn item_of(
    cfg: &Config,
    scope: &MailboxScope,
    v: &Value,
) -> Result<Option<MailboxItem>, PluginError> {
    let root = user_root(cfg, scope.mailbox());
    let id = v["id"].as_str().unwrap_or_default();
    match v["type"].as_str().unwrap_or("singleInstance") {
        "seriesMaster" => {
            let (from, to) = scope_window(scope);
            read_series(cfg, &root, id, from, to)
        }
        "occurrence" | "exception" => Ok(None),
        _ => Ok(Some(item(v, map_event(v, EventKind::Single)?))),
    }
}

/// An event (a series master with its window) by id.
pub fn by_id(
    cfg: &Config,
    scope: &MailboxScope,
    id: &str,
) -> Result<Vec<MailboxItem>, PluginError> {
    let root = user_root(cfg, scope.mailbox());
    let url = format!(
        "{root}/events/{}?$expand={}",
        url::encode_path_segment(id),
        url::encode_query_value(&anchor_expand())
    );
    match get_optional(&url)? {
        Some(v) => Ok(item_of(cfg, scope, &v)?.into_iter().collect()),
        None => Ok(vec![removed(id)]),
    }
}

/// Events whose anchor is `value`.
pub fn by_anchor(
    cfg: &Config,
    scope: &MailboxScope,
    value: &str,
) -> Result<Vec<MailboxItem>, PluginError> {
    let root = user_root(cfg, scope.mailbox());
    let url = format!(
        "{root}/events?$filter={}&$expand={}",
        anchor_filter(value),
        url::encode_query_value(&anchor_expand())
    );
    let mut out = Vec::new();
    for v in get_all(cfg, &url)? {
        out.extend(item_of(cfg, scope, &v)?);
    }
    Ok(out)
}
