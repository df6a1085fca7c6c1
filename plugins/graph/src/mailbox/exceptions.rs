//! Writing a series' exceptions: after the master is created (or its `series` updated), the
//! occurrences around the changed starts are listed (`GET /events/{master}/instances`) and
//! matched by `originalStart`; each deleted one is deleted (`DELETE /events/{id}`), each
//! modified one patched with its start, end and what it names (subject, location, body,
//! show-as). A deleted occurrence already gone is left so; a modified one the series does not
//! have is an error naming its start. On an update, an exception in the scope's window that the
//! series no longer lists is put back where the series places it.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use syncbridge_sdk::http::Method;
use syncbridge_sdk::series;
use syncbridge_sdk::types::mailbox::{Event, OccurrenceChange};
use syncbridge_sdk::types::PluginError;
use syncbridge_sdk::url;

use super::zone::{self, parse_utc};
use super::{get_all, item_body, send_write, Config};

/// Deletes the series' deleted occurrences and writes its modified ones; `events` is the
/// mailbox's `…/events` collection and `event` the series master just written. On an update,
/// `put_back_in` is the scope's window: an exception there that the series no longer lists is
/// put back where the series places it, with the master's texts and free/busy. Answers whether
/// it wrote anything.
pub fn write(
    cfg: &Config,
    events: &str,
    master: &str,
    event: &Event,
    put_back_in: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Result<bool, PluginError> {
    let Some(series) = &event.series else {
        return Ok(false);
    };
    let all_day = event.all_day;
    let bad = |what: &str, s: &str| {
        PluginError::invalid_field("series", format!("{what} {s:?} is not an RFC 3339 instant"))
    };
    let deleted: Vec<DateTime<Utc>> = series
        .deleted
        .iter()
        .map(|s| parse_utc(s).ok_or_else(|| bad("the deleted occurrence", s)))
        .collect::<Result<_, _>>()?;
    let modified: Vec<(DateTime<Utc>, &OccurrenceChange)> = series
        .modified
        .iter()
        .map(|m| {
            parse_utc(&m.original_start)
                .map(|s| (s, m))
                .ok_or_else(|| bad("the modified occurrence", &m.original_start))
        })
        .collect::<Result<_, _>>()?;
    let seg = |id: &str| format!("{events}/{}", url::encode_path_segment(id));
    let mut wrote = false;
    if let Some((from, to)) = put_back_in {
        let listed: BTreeSet<DateTime<Utc>> = deleted
            .iter()
            .chain(modified.iter().map(|(s, _)| s))
            .copied()
            .collect();
        for (id, original) in unlisted_exceptions(cfg, events, master, event, &listed, from, to)? {
            send_write(Method::Patch, &seg(&id), Some(&pattern(event, original)?))?;
            wrote = true;
        }
    }
    let starts = deleted.iter().chain(modified.iter().map(|(s, _)| s));
    let (Some(first), Some(last)) = (starts.clone().min(), starts.max()) else {
        return Ok(wrote);
    };
    let ids = occurrences(
        cfg,
        events,
        master,
        *first - Duration::days(1),
        *last + Duration::days(2),
        &series.zone.iana,
        all_day,
    )?;
    let find = |s: &DateTime<Utc>| ids.get(s);
    for (original, change) in &modified {
        let id = find(original).ok_or_else(|| {
            PluginError::invalid_field(
                "series",
                format!(
                    "the series has no occurrence starting at {}",
                    zone::fmt_utc(*original)
                ),
            )
        })?;
        send_write(Method::Patch, &seg(id), Some(&patch(change, all_day)?))?;
    }
    for original in &deleted {
        if let Some(id) = find(original) {
            match send_write(Method::Delete, &seg(id), None) {
                Ok(_) | Err(PluginError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(true)
}

/// The exceptions of `master` in `[from, to)` (id, original start) that are not in `listed`
/// and not already back in place.
fn unlisted_exceptions(
    cfg: &Config,
    events: &str,
    master: &str,
    event: &Event,
    listed: &BTreeSet<DateTime<Utc>>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, DateTime<Utc>)>, PluginError> {
    let instances = instances(cfg, events, master, from, to)?;
    let tz = event
        .series
        .as_ref()
        .and_then(|s| zone::tz(&s.zone.iana))
        .unwrap_or(chrono_tz::Tz::UTC);
    let mut out = Vec::new();
    for i in instances
        .iter()
        .filter(|i| i["type"].as_str() == Some("exception"))
    {
        let (Some(change), Some(id)) = (super::calendar::occurrence_change(i)?, i["id"].as_str())
        else {
            continue;
        };
        let Some(mut original) = parse_utc(&change.original_start) else {
            continue;
        };
        if event.all_day {
            original = zone::all_day_original(original, tz);
        }
        if listed.contains(&original) || series::follows_pattern(&change, event) {
            continue;
        }
        out.push((id.to_owned(), original));
    }
    Ok(out)
}

/// `GET /events/{master}/instances` of `[from, to)`, every page.
fn instances(
    cfg: &Config,
    events: &str,
    master: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Value>, PluginError> {
    get_all(
        cfg,
        &format!(
            "{events}/{}/instances?{}",
            url::encode_path_segment(master),
            super::calendar::window_query(from, to)
        ),
    )
}

/// The PATCH that puts an occurrence back at `original` (its original start): as long as the
/// master, with the master's subject, location, body and free/busy ([`series::in_place`]),
/// texts the master has none of cleared.
fn pattern(master: &Event, original: DateTime<Utc>) -> Result<Value, PluginError> {
    let place = series::in_place(master, &zone::fmt_utc(original))
        .ok_or_else(|| PluginError::invalid_field("start", "not an RFC 3339 instant"))?;
    let mut o = patch(&place, master.all_day)?;
    if let Value::Object(o) = &mut o {
        o.insert("body".into(), item_body(place.body.as_ref()));
        o.insert("subject".into(), json!(place.subject.unwrap_or_default()));
        o.insert(
            "location".into(),
            json!({"displayName": place.location.unwrap_or_default()}),
        );
    }
    Ok(o)
}

/// The occurrences (and exceptions) of `master` in `[from, to)` by original start. An
/// all-day occurrence's original start is matched by its date in the series zone too.
fn occurrences(
    cfg: &Config,
    events: &str,
    master: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    zone_name: &str,
    all_day: bool,
) -> Result<BTreeMap<DateTime<Utc>, String>, PluginError> {
    let instances = instances(cfg, events, master, from, to)?;
    let tz = zone::tz(zone_name).unwrap_or(chrono_tz::Tz::UTC);
    let mut out = BTreeMap::new();
    for i in &instances {
        let (Some(original), Some(id)) = (
            i["originalStart"].as_str().and_then(parse_utc),
            i["id"].as_str(),
        ) else {
            continue;
        };
        out.insert(original, id.to_owned());
        if all_day {
            out.entry(zone::all_day_original(original, tz))
                .or_insert_with(|| id.to_owned());
        }
    }
    Ok(out)
}

/// The PATCH of a modified occurrence.
fn patch(change: &OccurrenceChange, all_day: bool) -> Result<Value, PluginError> {
    let time = |t, field: &str| {
        zone::to_dttz(t, all_day)
            .ok_or_else(|| PluginError::invalid_field(field, "not an RFC 3339 instant"))
    };
    let mut o = Map::new();
    o.insert(
        "start".into(),
        time(&change.start, "series.modified.start")?,
    );
    o.insert("end".into(), time(&change.end, "series.modified.end")?);
    o.insert(
        "showAs".into(),
        json!(super::calendar::show_as_name(change.show_as)),
    );
    if let Some(s) = &change.subject {
        o.insert("subject".into(), json!(s));
    }
    if let Some(l) = &change.location {
        o.insert("location".into(), json!({"displayName": l}));
    }
    if change.body.is_some() {
        o.insert("body".into(), item_body(change.body.as_ref()));
    }
    Ok(Value::Object(o))
}
