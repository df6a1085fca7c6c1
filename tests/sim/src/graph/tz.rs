//! Windows time-zone names used by Outlook/Graph, with their UTC offsets and DST rules, for
//! `dateTimeTimeZone` values and `Prefer: outlook.timezone`. A small table of common zones;
//! unknown names are treated as UTC.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};

#[derive(Clone, Copy)]
enum Dst {
    None,
    /// Second Sunday of March 02:00 local → first Sunday of November 02:00 local.
    Us,
    /// Last Sunday of March 01:00 UTC → last Sunday of October 01:00 UTC.
    Eu,
}

const ZONES: &[(&str, i64, Dst)] = &[
    ("UTC", 0, Dst::None),
    ("Coordinated Universal Time", 0, Dst::None),
    ("GMT Standard Time", 0, Dst::Eu),
    ("Greenwich Standard Time", 0, Dst::None),
    ("W. Europe Standard Time", 60, Dst::Eu),
    ("Central Europe Standard Time", 60, Dst::Eu),
    ("Central European Standard Time", 60, Dst::Eu),
    ("Romance Standard Time", 60, Dst::Eu),
    ("E. Europe Standard Time", 120, Dst::Eu),
    ("FLE Standard Time", 120, Dst::Eu),
    ("GTB Standard Time", 120, Dst::Eu),
    ("Eastern Standard Time", -300, Dst::Us),
    ("Central Standard Time", -360, Dst::Us),
    ("Mountain Standard Time", -420, Dst::Us),
    ("US Mountain Standard Time", -420, Dst::None),
    ("Pacific Standard Time", -480, Dst::Us),
    ("Alaskan Standard Time", -540, Dst::Us),
    ("Hawaiian Standard Time", -600, Dst::None),
    ("India Standard Time", 330, Dst::None),
    ("China Standard Time", 480, Dst::None),
    ("Tokyo Standard Time", 540, Dst::None),
    ("Singapore Standard Time", 480, Dst::None),
];

fn nth_sunday(year: i32, month: u32, n: u32) -> NaiveDate {
    let first = NaiveDate::from_ymd_opt(year, month, 1).unwrap_or_default();
    let offset = (7 - first.weekday().num_days_from_sunday()) % 7;
    first + Duration::days(offset as i64 + 7 * (n as i64 - 1))
}

fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    }
    .unwrap_or_default();
    let last = next - Duration::days(1);
    let back = last.weekday().num_days_from_sunday();
    debug_assert!(Weekday::Sun.num_days_from_sunday() == 0);
    last - Duration::days(back as i64)
}

/// Whether `name` is a known zone.
pub fn known(name: &str) -> bool {
    ZONES.iter().any(|(n, _, _)| n.eq_ignore_ascii_case(name))
}

/// UTC offset (minutes) of a zone at a UTC instant.
fn offset_at(name: &str, utc: DateTime<Utc>) -> i64 {
    let Some((_, base, dst)) = ZONES.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(name)) else {
        return 0;
    };
    let y = utc.year();
    let in_dst = match dst {
        Dst::None => false,
        Dst::Eu => {
            let start = nth_or(last_sunday(y, 3), 1, 0);
            let end = nth_or(last_sunday(y, 10), 1, 0);
            utc >= start && utc < end
        }
        Dst::Us => {
            // 02:00 local standard time → UTC = 02:00 - base
            let start = nth_or(nth_sunday(y, 3, 2), 2, *base);
            let end = nth_or(nth_sunday(y, 11, 1), 1, *base);
            utc >= start && utc < end
        }
    };
    base + if in_dst { 60 } else { 0 }
}

fn nth_or(d: NaiveDate, hour: u32, base: i64) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(hour, 0, 0).unwrap_or_default()) - Duration::minutes(base)
}

/// Converts a wall-clock time in `zone` to UTC.
pub fn to_utc(local: NaiveDateTime, zone: &str) -> DateTime<Utc> {
    // first guess with the standard offset, then correct with the offset valid at that instant
    let guess = Utc.from_utc_datetime(&local)
        - Duration::minutes(offset_at(zone, Utc.from_utc_datetime(&local)));
    Utc.from_utc_datetime(&local) - Duration::minutes(offset_at(zone, guess))
}

/// Converts a UTC instant to wall-clock time in `zone`.
pub fn from_utc(utc: DateTime<Utc>, zone: &str) -> NaiveDateTime {
    (utc + Duration::minutes(offset_at(zone, utc))).naive_utc()
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
        assert!(known("pacific standard time"));
    }
}
