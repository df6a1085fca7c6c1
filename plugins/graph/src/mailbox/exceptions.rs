//! Writing a series' exceptions: after the master is created (or its `series` updated), the
//! occurrences around the changed starts are listed (`GET /events/{master}/instances`) and
//! matched by `originalStart`; each deleted one is deleted (`DELETE /events/{id}`), each
//! modified one patched with its start, end and what it names (subject, location, body,
//! show-as). A deleted occurrence already gone is left so; a modified one the series does not
//! have is an error naming its start.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use syncbridge_sdk::http::Method;
use syncbridge_sdk::types::mailbox::{OccurrenceChange, Series};
use syncbridge_sdk::types::PluginError;
use syncbridge_sdk::url;

use super::zone::{self, parse_utc};
use super::{get_all, item_body, send_write, Config};

/// Deletes the series' deleted occurrences and writes its modified ones; `events` is the
/// mailbox's `…/events` collection. Answers whether it wrote anything.
pub fn write(
    cfg: &Config,
    events: &str,
    master: &str,
    series: &Series,
    all_day: bool,
) -> Result<bool, PluginError> {
    if series.deleted.is_empty() && series.modified.is_empty() {
        return Ok(false);
    }
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
    let starts = deleted.iter().chain(modified.iter().map(|(s, _)| s));
    let (Some(first), Some(last)) = (starts.clone().min(), starts.max()) else {
        return Ok(false);
    };
    let ids = occurrences(
        cfg,
        events,
        master,
        *first,
        *last,
        &series.zone.iana,
        all_day,
    )?;
    let find = |s: &DateTime<Utc>| ids.get(s);
    let seg = |id: &str| format!("{events}/{}", url::encode_path_segment(id));
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

/// The occurrences (and exceptions) of `master` from `first` to `last` by original start. An
/// all-day occurrence's original start is matched by its date in the series zone too.
fn occurrences(
    cfg: &Config,
    events: &str,
    master: &str,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    zone_name: &str,
    all_day: bool,
) -> Result<BTreeMap<DateTime<Utc>, String>, PluginError> {
    let query = format!(
        "startDateTime={}&endDateTime={}",
        url::encode_query_value(&zone::fmt_utc(first - Duration::days(1))),
        url::encode_query_value(&zone::fmt_utc(last + Duration::days(2)))
    );
    let instances = get_all(
        cfg,
        &format!(
            "{events}/{}/instances?{query}",
            url::encode_path_segment(master)
        ),
    )?;
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
