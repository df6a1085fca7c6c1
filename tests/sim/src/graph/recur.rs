//! Recurring events: a series master's `recurrence` (every Graph pattern and range type)
//! expanded with the `rrule` crate in the series' zone (`recurrenceTimeZone`, else
//! `originalStartTimeZone`), so a 09:00 Europe/Berlin series stays at 09:00 local across DST.
//!
//! Occurrences have ids `{master}_{local date YYYYMMDD}`. A modified occurrence (an exception) is
//! a stored event of `type` `exception` with that id, its `seriesMasterId` and `originalStart`;
//! a deleted one is listed in the master's `cancelledOccurrences` as
//! `OID.{master}.{local date YYYY-MM-DD}` (Graph's format).

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rrule::{Frequency, NWeekday, RRule, Weekday};
use serde_json::{json, Value};

use super::Rec;

/// One occurrence of a series.
#[derive(Debug, Clone)]
pub struct Occurrence {
    /// The occurrence id.
    pub id: String,
    /// Original start and end.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The `cancelledOccurrences` entry that deletes it.
    pub cancel_key: String,
}

fn parse_dt(s: &str) -> Option<DateTime<Utc>> {
    let t = s.trim_end_matches('Z');
    let t = t.split('.').next().unwrap_or(t);
    chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|n| n.and_utc())
}

/// Start and end of a stored event (UTC, or the floating date of an all-day event).
pub fn bounds(e: &Value) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let s = parse_dt(e.pointer("/start/dateTime")?.as_str()?)?;
    let en = parse_dt(e.pointer("/end/dateTime")?.as_str()?)?;
    Some((s, en))
}

/// Graph's local `dateTime` form.
pub fn fmt_dt(d: DateTime<Utc>) -> String {
    format!("{}.0000000", d.format("%Y-%m-%dT%H:%M:%S"))
}

fn weekday(name: &str) -> Option<Weekday> {
    use Weekday::*;
    Some(match name.to_ascii_lowercase().as_str() {
        "monday" => Mon,
        "tuesday" => Tue,
        "wednesday" => Wed,
        "thursday" => Thu,
        "friday" => Fri,
        "saturday" => Sat,
        "sunday" => Sun,
        _ => return None,
    })
}

fn index(name: &str) -> i16 {
    match name {
        "second" => 2,
        "third" => 3,
        "fourth" => 4,
        "last" => -1,
        _ => 1,
    }
}

/// Most occurrences expanded for a series without end.
const MAX_OCCURRENCES: u16 = 2000;

/// Every occurrence of `master` starting before `until` (deleted ones included).
pub fn expand(master: &Value, until: DateTime<Utc>) -> Vec<Occurrence> {
    let (Some((start, end)), Some(rec)) = (
        bounds(master),
        master.get("recurrence").filter(|r| r.is_object()),
    ) else {
        return vec![];
    };
    let all_day = master["isAllDay"].as_bool() == Some(true);
    // All-day series are floating dates: expanded as such.
    let tz = if all_day {
        chrono_tz::UTC
    } else {
        rec.pointer("/range/recurrenceTimeZone")
            .and_then(|z| z.as_str())
            .or(master["originalStartTimeZone"].as_str())
            .and_then(super::tz::zone)
            .unwrap_or(chrono_tz::UTC)
    };
    let local = start.with_timezone(&tz);
    let first = rec
        .pointer("/range/startDate")
        .and_then(|d| d.as_str())
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .unwrap_or(local.date_naive());
    let Some(dtstart) = tz
        .from_local_datetime(&first.and_time(local.time()))
        .earliest()
    else {
        return vec![];
    };
    let p = &rec["pattern"];
    let interval = p["interval"].as_u64().unwrap_or(1).clamp(1, 999) as u16;
    let days: Vec<Weekday> = p["daysOfWeek"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d.as_str().and_then(weekday))
        .collect();
    let idx = index(p["index"].as_str().unwrap_or("first"));
    let day_of_month = p["dayOfMonth"].as_i64().unwrap_or(1).clamp(1, 31) as i8;
    let month = p["month"]
        .as_u64()
        .and_then(|m| chrono::Month::try_from(m as u8).ok())
        .unwrap_or(chrono::Month::January);
    // A set of days with an index is BYSETPOS (e.g. the last weekday of the month).
    let relative = |r: RRule<rrule::Unvalidated>| match days.as_slice() {
        [one] => r.by_weekday(vec![NWeekday::Nth(idx, *one)]),
        many => r
            .by_weekday(many.iter().map(|d| NWeekday::Every(*d)).collect())
            .by_set_pos(vec![idx.into()]),
    };
    let mut rule = match p["type"].as_str().unwrap_or("daily") {
        "weekly" => {
            let days = if days.is_empty() {
                vec![chrono::Datelike::weekday(&local.date_naive())]
            } else {
                days.clone()
            };
            RRule::new(Frequency::Weekly)
                .interval(interval)
                .week_start(
                    p["firstDayOfWeek"]
                        .as_str()
                        .and_then(weekday)
                        .unwrap_or(Weekday::Sun),
                )
                .by_weekday(days.into_iter().map(NWeekday::Every).collect())
        }
        "absoluteMonthly" => RRule::new(Frequency::Monthly)
            .interval(interval)
            .by_month_day(vec![day_of_month]),
        "relativeMonthly" => relative(RRule::new(Frequency::Monthly).interval(interval)),
        "absoluteYearly" => RRule::new(Frequency::Yearly)
            .interval(interval)
            .by_month(&[month])
            .by_month_day(vec![day_of_month]),
        "relativeYearly" => relative(
            RRule::new(Frequency::Yearly)
                .interval(interval)
                .by_month(&[month]),
        ),
        _ => RRule::new(Frequency::Daily).interval(interval),
    };
    let rtz = rrule::Tz::Tz(tz);
    let r = &rec["range"];
    match r["type"].as_str().unwrap_or("noEnd") {
        "numbered" => {
            rule = rule.count(r["numberOfOccurrences"].as_u64().unwrap_or(1).max(1) as u32)
        }
        "endDate" => {
            if let Some(u) = r["endDate"]
                .as_str()
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .and_then(|d| d.and_hms_opt(23, 59, 59))
                .and_then(|d| tz.from_local_datetime(&d).latest())
            {
                rule = rule.until(u.with_timezone(&rtz));
            }
        }
        _ => {}
    }
    let Ok(set) = rule.build(dtstart.with_timezone(&rtz)) else {
        return vec![];
    };
    let master_id = master["id"].as_str().unwrap_or_default();
    let dur = end - start;
    set.before(until.with_timezone(&rtz))
        .all(MAX_OCCURRENCES)
        .dates
        .into_iter()
        .map(|d| {
            let date = d.with_timezone(&tz).date_naive();
            let s = d.with_timezone(&Utc);
            Occurrence {
                id: format!("{master_id}_{}", date.format("%Y%m%d")),
                start: s,
                end: s + dur,
                cancel_key: format!("OID.{master_id}.{}", date.format("%Y-%m-%d")),
            }
        })
        .collect()
}

/// The occurrence as Graph lists it.
pub fn occurrence_json(master: &Value, o: &Occurrence) -> Value {
    let mut v = master.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("cancelledOccurrences");
    }
    v["id"] = json!(o.id);
    v["type"] = json!("occurrence");
    v["seriesMasterId"] = master["id"].clone();
    v["recurrence"] = Value::Null;
    v["originalStart"] = json!(o.start.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    v["start"]["dateTime"] = json!(fmt_dt(o.start));
    v["end"]["dateTime"] = json!(fmt_dt(o.end));
    v
}

/// Cancels an occurrence of the master `r` (`cancelledOccurrences`), a change of the master.
pub fn cancel(r: &mut Rec, key: &str, seq: u64) {
    let list = r.data["cancelledOccurrences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !list.iter().any(|k| k.as_str() == Some(key)) {
        let mut list = list;
        list.push(json!(key));
        r.data["cancelledOccurrences"] = Value::Array(list);
    }
    r.seq = seq;
}

/// Whether the occurrence with `key` was deleted.
pub fn is_cancelled(master: &Value, key: &str) -> bool {
    master["cancelledOccurrences"]
        .as_array()
        .is_some_and(|c| c.iter().any(|k| k.as_str() == Some(key)))
}

/// The live exceptions of `master` among `events`.
pub fn exceptions<'a>(events: &'a [Rec], master: &str) -> impl Iterator<Item = &'a Rec> {
    let master = master.to_owned();
    events.iter().filter(move |r| {
        r.live()
            && r.data["type"].as_str() == Some("exception")
            && r.data["seriesMasterId"].as_str() == Some(master.as_str())
    })
}

/// What a calendar view `[ws, we)` shows of a stored event: itself (a single), or the
/// occurrences and exceptions of a series. Exceptions are listed through their master.
pub fn view(events: &[Rec], e: &Value, ws: DateTime<Utc>, we: DateTime<Utc>) -> Vec<Value> {
    let overlaps = |v: &Value| bounds(v).is_some_and(|(s, en)| s < we && (en > ws || s >= ws));
    match e["type"].as_str() {
        Some("exception") | Some("occurrence") => return vec![],
        Some("seriesMaster") => {}
        _ => return if overlaps(e) { vec![e.clone()] } else { vec![] },
    }
    let master = e["id"].as_str().unwrap_or_default();
    let mut out = Vec::new();
    for o in expand(e, we) {
        if is_cancelled(e, &o.cancel_key) || exceptions(events, master).any(|x| x.id() == o.id) {
            continue;
        }
        let v = occurrence_json(e, &o);
        if overlaps(&v) {
            out.push(v);
        }
    }
    out.extend(
        exceptions(events, master)
            .map(|x| x.data.clone())
            .filter(|v| overlaps(v)),
    );
    out
}

/// The occurrence `id` of a stored series (deleted ones included), with its master's index.
pub fn find_occurrence(events: &[Rec], id: &str) -> Option<(usize, Occurrence)> {
    let (master, _) = id.rsplit_once('_')?;
    let mi = events
        .iter()
        .position(|r| r.live() && r.id() == master && r.data["type"] == "seriesMaster")?;
    let date = id.rsplit_once('_')?.1;
    let date = NaiveDate::parse_from_str(date, "%Y%m%d").ok()?;
    let until = Utc.from_utc_datetime(&(date + chrono::Duration::days(3)).and_hms_opt(0, 0, 0)?);
    let occ = expand(&events[mi].data, until)
        .into_iter()
        .find(|o| o.id == id)?;
    Some((mi, occ))
}
