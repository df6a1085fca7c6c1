//! Graph's `patternedRecurrence` ↔ an RFC 5545 `RRULE` (expanding one is `syncbridge_sdk::series::expand`).
//!
//! | Graph pattern | RRULE |
//! |---|---|
//! | `daily` | `FREQ=DAILY;INTERVAL=n` |
//! | `weekly` | `FREQ=WEEKLY;INTERVAL=n;BYDAY=MO,TU;WKST=SU` |
//! | `absoluteMonthly` | `FREQ=MONTHLY;INTERVAL=n;BYMONTHDAY=d` |
//! | `relativeMonthly` | `FREQ=MONTHLY;INTERVAL=n;BYDAY=2TU` (several days: `BYDAY=MO,TU;BYSETPOS=2`) |
//! | `absoluteYearly` | `FREQ=YEARLY;INTERVAL=n;BYMONTH=m;BYMONTHDAY=d` |
//! | `relativeYearly` | `FREQ=YEARLY;INTERVAL=n;BYMONTH=m;BYDAY=-1FR` |
//!
//! Ranges: `endDate` → `UNTIL` (the end of that day in the series zone, as UTC), `numbered` →
//! `COUNT`, `noEnd` → neither. `index` `last` is `-1`.

use chrono::{NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::zone;

const DAYS: [(&str, &str); 7] = [
    ("sunday", "SU"),
    ("monday", "MO"),
    ("tuesday", "TU"),
    ("wednesday", "WE"),
    ("thursday", "TH"),
    ("friday", "FR"),
    ("saturday", "SA"),
];
const INDEXES: [(&str, i32); 5] = [
    ("first", 1),
    ("second", 2),
    ("third", 3),
    ("fourth", 4),
    ("last", -1),
];

fn day_code(graph: &str) -> Option<&'static str> {
    DAYS.iter()
        .find(|(g, _)| g.eq_ignore_ascii_case(graph))
        .map(|(_, c)| *c)
}

fn day_name(code: &str) -> Option<&'static str> {
    DAYS.iter()
        .find(|(_, c)| c.eq_ignore_ascii_case(code))
        .map(|(g, _)| *g)
}

fn days_of(pattern: &Value) -> Result<Vec<&'static str>, String> {
    pattern["daysOfWeek"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            d.as_str()
                .and_then(day_code)
                .ok_or_else(|| format!("unknown day of week {d}"))
        })
        .collect()
}

/// The `RRULE` of a Graph `patternedRecurrence` whose occurrences are computed in `tz`.
pub fn to_rrule(rec: &Value, tz: Tz) -> Result<String, String> {
    let p = &rec["pattern"];
    let interval = p["interval"].as_u64().unwrap_or(1).max(1);
    let kind = p["type"].as_str().unwrap_or_default();
    let days = days_of(p)?;
    let index = p["index"].as_str().unwrap_or("first");
    let index = INDEXES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(index))
        .map(|(_, i)| *i)
        .ok_or_else(|| format!("unknown week index {index:?}"))?;
    let month = p["month"].as_u64().unwrap_or(0);
    let day_of_month = p["dayOfMonth"].as_u64().unwrap_or(0);
    let relative = |days: &[&str]| match days {
        [] => Err("a relative pattern needs daysOfWeek".to_owned()),
        [one] => Ok(format!("BYDAY={index}{one}")),
        many => Ok(format!("BYDAY={};BYSETPOS={index}", many.join(","))),
    };
    let mut parts = vec![];
    match kind {
        "daily" => parts.push(format!("FREQ=DAILY;INTERVAL={interval}")),
        "weekly" => {
            parts.push(format!("FREQ=WEEKLY;INTERVAL={interval}"));
            if !days.is_empty() {
                parts.push(format!("BYDAY={}", days.join(",")));
            }
            if let Some(w) = p["firstDayOfWeek"].as_str().and_then(day_code) {
                parts.push(format!("WKST={w}"));
            }
        }
        "absoluteMonthly" => parts.push(format!(
            "FREQ=MONTHLY;INTERVAL={interval};BYMONTHDAY={day_of_month}"
        )),
        "relativeMonthly" => {
            parts.push(format!("FREQ=MONTHLY;INTERVAL={interval}"));
            parts.push(relative(&days)?);
        }
        "absoluteYearly" => parts.push(format!(
            "FREQ=YEARLY;INTERVAL={interval};BYMONTH={month};BYMONTHDAY={day_of_month}"
        )),
        "relativeYearly" => {
            parts.push(format!("FREQ=YEARLY;INTERVAL={interval};BYMONTH={month}"));
            parts.push(relative(&days)?);
        }
        other => return Err(format!("unknown recurrence pattern type {other:?}")),
    }
    let r = &rec["range"];
    match r["type"].as_str().unwrap_or("noEnd") {
        "endDate" => {
            let end = r["endDate"]
                .as_str()
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .ok_or("an endDate range needs endDate")?;
            let until = zone::local_to_utc(end.and_hms_opt(23, 59, 59).unwrap_or_default(), tz)
                .ok_or("the range end does not exist in the series zone")?;
            parts.push(format!("UNTIL={}", until.format("%Y%m%dT%H%M%SZ")));
        }
        "numbered" => parts.push(format!(
            "COUNT={}",
            r["numberOfOccurrences"].as_u64().unwrap_or(1).max(1)
        )),
        _ => {}
    }
    Ok(parts.join(";"))
}

fn rule_parts(rrule: &str) -> Vec<(String, String)> {
    rrule
        .trim()
        .trim_start_matches("RRULE:")
        .split(';')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_uppercase(), v.trim().to_owned()))
        .collect()
}

/// A Graph `patternedRecurrence` for `rrule`, a series starting on `start_date` (local date in
/// `tz`) whose zone Graph knows as `tz_name`.
pub fn from_rrule(
    rrule: &str,
    start_date: NaiveDate,
    tz: Tz,
    tz_name: &str,
) -> Result<Value, String> {
    let parts = rule_parts(rrule);
    let get = |k: &str| parts.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let num = |k: &str| get(k).and_then(|v| v.parse::<i64>().ok());
    let interval = num("INTERVAL").unwrap_or(1).max(1);
    // BYDAY entries: (ordinal, day name).
    let mut byday = vec![];
    for d in get("BYDAY")
        .unwrap_or("")
        .split(',')
        .filter(|d| !d.is_empty())
    {
        let split = d.len().saturating_sub(2);
        let (n, code) = d.split_at(split);
        let name = day_name(code).ok_or_else(|| format!("unknown BYDAY value {d:?}"))?;
        let n = if n.is_empty() {
            None
        } else {
            Some(
                n.trim_start_matches('+')
                    .parse::<i32>()
                    .map_err(|_| format!("bad BYDAY ordinal in {d:?}"))?,
            )
        };
        byday.push((n, name));
    }
    let ordinal = byday
        .iter()
        .find_map(|(n, _)| *n)
        .or(num("BYSETPOS").map(|n| n as i32))
        .unwrap_or(1);
    let index = INDEXES
        .iter()
        .find(|(_, i)| *i == ordinal)
        .map(|(n, _)| *n)
        .ok_or_else(|| format!("Graph has no week index for position {ordinal}"))?;
    let days: Vec<&str> = byday.iter().map(|(_, d)| *d).collect();
    let month = num("BYMONTH").unwrap_or(0);
    let day_of_month = num("BYMONTHDAY").unwrap_or(0);
    let pattern = match get("FREQ").unwrap_or_default() {
        "DAILY" => json!({"type": "daily", "interval": interval}),
        "WEEKLY" => {
            let mut p = json!({"type": "weekly", "interval": interval, "daysOfWeek": days,
                "firstDayOfWeek": get("WKST").and_then(day_name).unwrap_or("sunday")});
            if days.is_empty() {
                p["daysOfWeek"] = json!([weekday_name(start_date)]);
            }
            p
        }
        "MONTHLY" if !days.is_empty() => json!({"type": "relativeMonthly", "interval": interval,
            "daysOfWeek": days, "index": index}),
        "MONTHLY" => {
            json!({"type": "absoluteMonthly", "interval": interval, "dayOfMonth": day_of_month})
        }
        "YEARLY" if !days.is_empty() => json!({"type": "relativeYearly", "interval": interval,
            "daysOfWeek": days, "index": index, "month": month}),
        "YEARLY" => json!({"type": "absoluteYearly", "interval": interval,
            "dayOfMonth": day_of_month, "month": month}),
        other => {
            return Err(format!(
            "RRULE frequency {other:?} has no Graph pattern; use DAILY, WEEKLY, MONTHLY or YEARLY"
        ))
        }
    };
    let start = start_date.format("%Y-%m-%d").to_string();
    let range = if let Some(until) = get("UNTIL") {
        let end = parse_until(until, tz).ok_or_else(|| format!("bad UNTIL {until:?}"))?;
        json!({"type": "endDate", "startDate": start, "endDate": end.format("%Y-%m-%d").to_string(),
            "recurrenceTimeZone": tz_name})
    } else if let Some(count) = num("COUNT") {
        json!({"type": "numbered", "startDate": start, "numberOfOccurrences": count,
            "recurrenceTimeZone": tz_name})
    } else {
        json!({"type": "noEnd", "startDate": start, "recurrenceTimeZone": tz_name})
    };
    Ok(json!({"pattern": pattern, "range": range}))
}

fn weekday_name(d: NaiveDate) -> &'static str {
    use chrono::Datelike;
    DAYS[d.weekday().num_days_from_sunday() as usize].0
}

/// The local date in `tz` of an `UNTIL` value (`20271231T235959Z`, a floating time or a date).
fn parse_until(until: &str, tz: Tz) -> Option<NaiveDate> {
    if let Some(utc) = until.strip_suffix('Z') {
        let n = chrono::NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S").ok()?;
        return Some(Utc.from_utc_datetime(&n).with_timezone(&tz).date_naive());
    }
    chrono::NaiveDateTime::parse_from_str(until, "%Y%m%dT%H%M%S")
        .map(|n| n.date())
        .or_else(|_| NaiveDate::parse_from_str(until, "%Y%m%d"))
        .ok()
}

/// Expanding a rule in its zone is the SDK's.
pub use syncbridge_sdk::series::expand;
