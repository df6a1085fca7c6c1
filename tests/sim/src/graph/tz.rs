//! Time zones of `dateTimeTimeZone` values and `Prefer: outlook.timezone`: Windows ids (mapped
//! through CLDR) and IANA names, with the tz database's DST rules (`chrono-tz`); unknown
//! names are treated as UTC.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

/// The tz-database zone of a Graph zone name: an IANA name as is, a Windows id through CLDR's
/// table (`windows-timezones`); `None` when unknown.
pub fn zone(name: &str) -> Option<chrono_tz::Tz> {
    let name = name.trim();
    if matches!(
        name,
        "UTC" | "Coordinated Universal Time" | "tzone://Microsoft/Utc"
    ) {
        return Some(chrono_tz::UTC);
    }
    crate::ews::recur::zone(name)
}

/// Whether `name` is a known zone.
pub fn known(name: &str) -> bool {
    zone(name).is_some()
}

/// Converts a wall-clock time in `zone` to UTC (unknown zones are UTC; a time skipped by DST
/// moves an hour on, as Exchange does).
pub fn to_utc(local: NaiveDateTime, zone_name: &str) -> DateTime<Utc> {
    let Some(tz) = zone(zone_name) else {
        return Utc.from_utc_datetime(&local);
    };
    tz.from_local_datetime(&local)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(local + chrono::Duration::hours(1)))
                .earliest()
        })
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&local))
}

/// Converts a UTC instant to wall-clock time in `zone` (unknown zones are UTC).
pub fn from_utc(utc: DateTime<Utc>, zone_name: &str) -> NaiveDateTime {
    match zone(zone_name) {
        Some(tz) => utc.with_timezone(&tz).naive_local(),
        None => utc.naive_utc(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ndt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").unwrap()
    }

    #[test]
    fn offsets_and_dst() {
        assert_eq!(
            to_utc(ndt("2026-01-15T09:00:00"), "Pacific Standard Time").to_rfc3339(),
            "2026-01-15T17:00:00+00:00"
        );
        assert_eq!(
            to_utc(ndt("2026-07-15T09:00:00"), "Pacific Standard Time").to_rfc3339(),
            "2026-07-15T16:00:00+00:00"
        );
        assert_eq!(
            to_utc(ndt("2026-07-15T09:00:00"), "W. Europe Standard Time").to_rfc3339(),
            "2026-07-15T07:00:00+00:00"
        );
        assert_eq!(
            to_utc(ndt("2026-01-15T09:00:00"), "India Standard Time").to_rfc3339(),
            "2026-01-15T03:30:00+00:00"
        );
        let u = to_utc(ndt("2026-03-20T10:00:00"), "Eastern Standard Time");
        assert_eq!(
            from_utc(u, "Eastern Standard Time"),
            ndt("2026-03-20T10:00:00")
        );
        assert_eq!(
            to_utc(ndt("2026-03-20T10:00:00"), "Nowhere Time").to_rfc3339(),
            "2026-03-20T10:00:00+00:00"
        );
        assert!(known("Pacific Standard Time"));
        assert!(known("Europe/Berlin"));
        // DST in 2026 starts on 8 March in the US, on 29 March in Europe.
        assert_eq!(
            to_utc(ndt("2026-03-20T09:00:00"), "Pacific Standard Time").to_rfc3339(),
            "2026-03-20T16:00:00+00:00"
        );
        assert_eq!(
            to_utc(ndt("2026-03-20T09:00:00"), "Europe/Berlin").to_rfc3339(),
            "2026-03-20T08:00:00+00:00"
        );
    }
}
