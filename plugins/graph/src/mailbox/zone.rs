//! Time zones and Graph `dateTimeTimeZone` values.
//!
//! Graph names zones by Windows id (`W. Europe Standard Time`) or IANA name; the canonical
//! model keeps both ([`Zone`]): the IANA name from CLDR's table (`windows-timezones`), the
//! Windows id as Graph used it. Instants travel as RFC 3339 UTC.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use syncbridge_sdk::types::mailbox::{EventTime, Zone};

/// The tz-database zone of a Graph zone name: an IANA name as is, a Windows id through CLDR.
pub fn tz(name: &str) -> Option<Tz> {
    let name = name.trim();
    if let Ok(tz) = name.parse::<Tz>() {
        return Some(tz);
    }
    if matches!(
        name,
        "UTC" | "Coordinated Universal Time" | "tzone://Microsoft/Utc"
    ) {
        return Some(Tz::UTC);
    }
    let win: windows_timezones::WindowsTimezone = name.parse().ok()?;
    win.tzdb_id().parse().ok()
}

/// The canonical zone of a Graph zone name; `None` when the name is unknown or empty.
pub fn zone_of(name: &str) -> Option<Zone> {
    let t = tz(name)?;
    let windows = (name.parse::<Tz>().is_err()).then(|| name.trim().to_owned());
    Some(Zone {
        iana: t.name().to_owned(),
        windows,
    })
}

/// The zone name to send Graph: the Windows id when known, else the IANA name (Graph accepts both).
pub fn graph_name(z: &Zone) -> String {
    z.windows
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| z.iana.clone())
}

/// Parses Graph's local `dateTime` (`2026-03-01T09:00:00.0000000`, no offset).
pub fn parse_local(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim().trim_end_matches('Z');
    let s = s.split('.').next().unwrap_or(s);
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok()
}

/// Parses an RFC 3339 instant.
pub fn parse_utc(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// RFC 3339 UTC with a `Z`, seconds precision.
pub fn fmt_utc(d: DateTime<Utc>) -> String {
    d.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A `dateTimeTimeZone` as a UTC instant: the wall time in its `timeZone` (unknown → UTC).
pub fn dttz_to_utc(v: &Value) -> Option<DateTime<Utc>> {
    let local = parse_local(v["dateTime"].as_str()?)?;
    let zone = v["timeZone"].as_str().and_then(tz).unwrap_or(Tz::UTC);
    local_to_utc(local, zone)
}

/// Wall time in `zone` → UTC (the earlier instant in a DST overlap, shifted past a gap).
pub fn local_to_utc(local: NaiveDateTime, zone: Tz) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&local).earliest() {
        Some(d) => Some(d.with_timezone(&Utc)),
        None => zone
            .from_local_datetime(&(local + chrono::Duration::hours(1)))
            .earliest()
            .map(|d| d.with_timezone(&Utc)),
    }
}

/// An all-day occurrence's original start as midnight of its date in the series zone `tz`,
/// whether Graph gave it as that instant or as the floating date at 00:00 UTC.
pub fn all_day_original(s: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    let date = if s.time() == chrono::NaiveTime::MIN {
        s.date_naive()
    } else {
        s.with_timezone(&tz).date_naive()
    };
    local_to_utc(date.and_time(chrono::NaiveTime::MIN), tz).unwrap_or(s)
}

/// Midnight of `date` in `zone` (UTC when none), as UTC.
pub fn midnight(date: NaiveDate, zone: Option<&Zone>) -> Option<DateTime<Utc>> {
    let t = zone.and_then(|z| tz(&z.iana)).unwrap_or(Tz::UTC);
    local_to_utc(date.and_hms_opt(0, 0, 0)?, t)
}

/// The canonical time of a Graph `dateTimeTimeZone`. `zone` is the event's own zone
/// (`originalStartTimeZone`); an all-day value is a floating date: midnight of that date in `zone`.
pub fn event_time(v: &Value, zone: Option<&Zone>, all_day: bool) -> Option<EventTime> {
    let utc = if all_day {
        midnight(parse_local(v["dateTime"].as_str()?)?.date(), zone)?
    } else {
        dttz_to_utc(v)?
    };
    Some(EventTime {
        utc: fmt_utc(utc),
        zone: zone.cloned(),
    })
}

/// A canonical time as a Graph `dateTimeTimeZone` in its own zone (UTC without one). All-day
/// values are the floating date at midnight.
pub fn to_dttz(t: &EventTime, all_day: bool) -> Option<Value> {
    let utc = parse_utc(&t.utc)?;
    let (name, zone) = match &t.zone {
        Some(z) => (graph_name(z), tz(&z.iana).unwrap_or(Tz::UTC)),
        None => ("UTC".to_owned(), Tz::UTC),
    };
    let local = utc.with_timezone(&zone).naive_local();
    let local = if all_day {
        local.date().and_hms_opt(0, 0, 0)?
    } else {
        local
    };
    Some(json!({
        "dateTime": local.format("%Y-%m-%dT%H:%M:%S").to_string(),
        "timeZone": name,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_ids_map_to_iana_and_keep_the_windows_id() {
        let z = zone_of("W. Europe Standard Time").unwrap();
        assert_eq!(z.iana, "Europe/Berlin");
        assert_eq!(z.windows.as_deref(), Some("W. Europe Standard Time"));
        let z = zone_of("Pacific Standard Time").unwrap();
        assert_eq!(z.iana, "America/Los_Angeles");
        let z = zone_of("Europe/London").unwrap();
        assert_eq!((z.iana.as_str(), z.windows), ("Europe/London", None));
        assert!(zone_of("Nowhere Standard Time").is_none());
        assert_eq!(zone_of("UTC").unwrap().iana, "UTC");
    }

    #[test]
    fn wall_times_convert_across_dst() {
        let winter = json!({"dateTime": "2026-01-15T09:00:00.0000000", "timeZone": "W. Europe Standard Time"});
        let summer = json!({"dateTime": "2026-07-15T09:00:00.0000000", "timeZone": "W. Europe Standard Time"});
        assert_eq!(
            fmt_utc(dttz_to_utc(&winter).unwrap()),
            "2026-01-15T08:00:00Z"
        );
        assert_eq!(
            fmt_utc(dttz_to_utc(&summer).unwrap()),
            "2026-07-15T07:00:00Z"
        );
        let t = EventTime {
            utc: "2026-07-15T07:00:00Z".into(),
            zone: zone_of("W. Europe Standard Time"),
        };
        assert_eq!(
            to_dttz(&t, false).unwrap(),
            json!({"dateTime": "2026-07-15T09:00:00", "timeZone": "W. Europe Standard Time"})
        );
    }

    #[test]
    fn all_day_values_are_midnight_in_the_event_zone() {
        let z = zone_of("Tokyo Standard Time");
        // Graph shows an all-day date as floating midnight, whatever zone it was asked for.
        let v = json!({"dateTime": "2026-05-04T00:00:00.0000000", "timeZone": "UTC"});
        let t = event_time(&v, z.as_ref(), true).unwrap();
        assert_eq!(t.utc, "2026-05-03T15:00:00Z");
        assert_eq!(
            to_dttz(&t, true).unwrap(),
            json!({"dateTime": "2026-05-04T00:00:00", "timeZone": "Tokyo Standard Time"})
        );
        let t = event_time(&v, None, true).unwrap();
        assert_eq!(t.utc, "2026-05-04T00:00:00Z");
    }
}
