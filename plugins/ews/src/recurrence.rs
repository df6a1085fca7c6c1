//! EWS `Recurrence` (pattern + range) ↔ RFC 5545 `RRULE`, in the series' zone.
//!
//! An `EndDateRecurrence` ends on a local date (inclusive); its `UNTIL` is the last second of
//! that date in the series zone, in UTC. The range's `StartDate` is the master's start date in
//! the series zone.

use crate::xml::{escape, Elem};
use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;

const DAYS: [(&str, &str); 7] = [
    ("Monday", "MO"),
    ("Tuesday", "TU"),
    ("Wednesday", "WE"),
    ("Thursday", "TH"),
    ("Friday", "FR"),
    ("Saturday", "SA"),
    ("Sunday", "SU"),
];
const INDEXES: [(&str, i32); 5] = [
    ("First", 1),
    ("Second", 2),
    ("Third", 3),
    ("Fourth", 4),
    ("Last", -1),
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Why a recurrence cannot be translated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("recurrence: {0}")]
pub struct RecurrenceError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, RecurrenceError> {
    Err(RecurrenceError(m.into()))
}

fn byday(days: &str) -> Result<Vec<&'static str>, RecurrenceError> {
    let mut out = Vec::new();
    for d in days.split_whitespace() {
        match d {
            "Day" => out.extend(DAYS.iter().map(|(_, c)| *c)),
            "Weekday" => out.extend(DAYS[..5].iter().map(|(_, c)| *c)),
            "WeekendDay" => out.extend(DAYS[5..].iter().map(|(_, c)| *c)),
            _ => match DAYS.iter().find(|(n, _)| *n == d) {
                Some((_, c)) => out.push(*c),
                None => return err(format!("unknown day of week {d:?}")),
            },
        }
    }
    Ok(out)
}

fn month_number(name: &str) -> Result<usize, RecurrenceError> {
    MONTHS
        .iter()
        .position(|m| *m == name)
        .map(|p| p + 1)
        .ok_or_else(|| RecurrenceError(format!("unknown month {name:?}")))
}

fn index_of(name: &str) -> Result<i32, RecurrenceError> {
    INDEXES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, i)| *i)
        .ok_or_else(|| RecurrenceError(format!("unknown DayOfWeekIndex {name:?}")))
}

/// The `RRULE` of an EWS `Recurrence` element, `UNTIL` computed in `zone`.
pub fn to_rrule(rec: &Elem, zone: Tz) -> Result<String, RecurrenceError> {
    let pattern = rec
        .children
        .first()
        .ok_or_else(|| RecurrenceError("no pattern".into()))?;
    let range = rec
        .children
        .get(1)
        .ok_or_else(|| RecurrenceError("no range".into()))?;
    let interval = pattern.text_of("Interval").unwrap_or("1");
    let mut parts: Vec<String> = Vec::new();
    let days = || byday(pattern.text_of("DaysOfWeek").unwrap_or_default());
    match &*pattern.name {
        "DailyRecurrence" => parts.push(format!("FREQ=DAILY;INTERVAL={interval}")),
        "WeeklyRecurrence" => {
            parts.push(format!(
                "FREQ=WEEKLY;INTERVAL={interval};BYDAY={}",
                days()?.join(",")
            ));
            if let Some(first) = pattern.text_of("FirstDayOfWeek") {
                parts.push(format!("WKST={}", byday(first)?.join(",")));
            }
        }
        "AbsoluteMonthlyRecurrence" => parts.push(format!(
            "FREQ=MONTHLY;INTERVAL={interval};BYMONTHDAY={}",
            pattern.text_of("DayOfMonth").unwrap_or("1")
        )),
        "RelativeMonthlyRecurrence" => parts.push(format!(
            "FREQ=MONTHLY;INTERVAL={interval};BYDAY={};BYSETPOS={}",
            days()?.join(","),
            index_of(pattern.text_of("DayOfWeekIndex").unwrap_or_default())?
        )),
        "AbsoluteYearlyRecurrence" => parts.push(format!(
            "FREQ=YEARLY;BYMONTH={};BYMONTHDAY={}",
            month_number(pattern.text_of("Month").unwrap_or_default())?,
            pattern.text_of("DayOfMonth").unwrap_or("1")
        )),
        "RelativeYearlyRecurrence" => parts.push(format!(
            "FREQ=YEARLY;BYMONTH={};BYDAY={};BYSETPOS={}",
            month_number(pattern.text_of("Month").unwrap_or_default())?,
            days()?.join(","),
            index_of(pattern.text_of("DayOfWeekIndex").unwrap_or_default())?
        )),
        other => return err(format!("the pattern {other} has no RRULE equivalent")),
    }
    match &*range.name {
        "NoEndRecurrence" => {}
        "NumberedRecurrence" => parts.push(format!(
            "COUNT={}",
            range.text_of("NumberOfOccurrences").unwrap_or("1")
        )),
        "EndDateRecurrence" => {
            let end = range.text_of("EndDate").unwrap_or_default();
            let date = NaiveDate::parse_from_str(end.get(..10).unwrap_or(end), "%Y-%m-%d")
                .map_err(|_| RecurrenceError(format!("EndDate {end:?} is not a date")))?;
            let last = date.and_hms_opt(23, 59, 59).unwrap_or_default();
            let until = zone
                .from_local_datetime(&last)
                .latest()
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or_else(|| last.and_utc());
            parts.push(format!("UNTIL={}", until.format("%Y%m%dT%H%M%SZ")));
        }
        other => return err(format!("unknown range {other}")),
    }
    Ok(parts.join(";"))
}

/// The EWS `Recurrence` element of an `RRULE` whose first occurrence starts on `start_date`
/// (local date in `zone`).
pub fn from_rrule(rrule: &str, start_date: NaiveDate, zone: Tz) -> Result<String, RecurrenceError> {
    let mut kv = std::collections::BTreeMap::new();
    for part in rrule
        .trim()
        .trim_start_matches("RRULE:")
        .split(';')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| RecurrenceError(format!("{part:?} is not NAME=VALUE")))?;
        kv.insert(k.trim().to_ascii_uppercase(), v.trim().to_owned());
    }
    let get = |k: &str| kv.get(k).map(String::as_str);
    let interval = get("INTERVAL").unwrap_or("1");
    let days = |v: Option<&str>| -> Result<String, RecurrenceError> {
        let mut names = Vec::new();
        for code in v.unwrap_or_default().split(',').filter(|c| !c.is_empty()) {
            let code = code.trim_start_matches(['+', '-', '0', '1', '2', '3', '4', '5']);
            match DAYS.iter().find(|(_, c)| *c == code) {
                Some((n, _)) => names.push(*n),
                None => return err(format!("BYDAY {code:?} is not a day")),
            }
        }
        Ok(match names.len() {
            7 => "Day".into(),
            _ => names.join(" "),
        })
    };
    let index = |pos: Option<&str>| -> Result<&'static str, RecurrenceError> {
        let n: i32 = pos
            .unwrap_or("1")
            .parse()
            .map_err(|_| RecurrenceError("BYSETPOS is not a number".into()))?;
        INDEXES
            .iter()
            .find(|(_, i)| *i == n)
            .map(|(name, _)| *name)
            .ok_or_else(|| RecurrenceError(format!("BYSETPOS {n} has no EWS DayOfWeekIndex")))
    };
    let month = |m: Option<&str>| -> Result<&'static str, RecurrenceError> {
        let n: usize = m.unwrap_or("0").parse().unwrap_or(0);
        MONTHS
            .get(n.wrapping_sub(1))
            .copied()
            .ok_or_else(|| RecurrenceError("BYMONTH is missing or invalid".into()))
    };
    let t = |name: &str, v: &str| format!("<t:{name}>{}</t:{name}>", escape(v));
    let pattern = match (get("FREQ"), get("BYSETPOS").is_some()) {
        (Some("DAILY"), _) => format!(
            "<t:DailyRecurrence>{}</t:DailyRecurrence>",
            t("Interval", interval)
        ),
        (Some("WEEKLY"), _) => {
            let wkst = days(get("WKST"))?;
            let first = if wkst.is_empty() {
                String::new()
            } else {
                t("FirstDayOfWeek", &wkst)
            };
            format!(
                "<t:WeeklyRecurrence>{}{}{first}</t:WeeklyRecurrence>",
                t("Interval", interval),
                t("DaysOfWeek", &days(get("BYDAY"))?)
            )
        }
        (Some("MONTHLY"), false) => format!(
            "<t:AbsoluteMonthlyRecurrence>{}{}</t:AbsoluteMonthlyRecurrence>",
            t("Interval", interval),
            t(
                "DayOfMonth",
                get("BYMONTHDAY").unwrap_or(&start_date.format("%-d").to_string())
            )
        ),
        (Some("MONTHLY"), true) => format!(
            "<t:RelativeMonthlyRecurrence>{}{}{}</t:RelativeMonthlyRecurrence>",
            t("Interval", interval),
            t("DaysOfWeek", &days(get("BYDAY"))?),
            t("DayOfWeekIndex", index(get("BYSETPOS"))?)
        ),
        (Some("YEARLY"), false) => format!(
            "<t:AbsoluteYearlyRecurrence>{}{}</t:AbsoluteYearlyRecurrence>",
            t(
                "DayOfMonth",
                get("BYMONTHDAY").unwrap_or(&start_date.format("%-d").to_string())
            ),
            t(
                "Month",
                month(get("BYMONTH").or(Some(&start_date.format("%-m").to_string())))?
            )
        ),
        (Some("YEARLY"), true) => format!(
            "<t:RelativeYearlyRecurrence>{}{}{}</t:RelativeYearlyRecurrence>",
            t("DaysOfWeek", &days(get("BYDAY"))?),
            t("DayOfWeekIndex", index(get("BYSETPOS"))?),
            t("Month", month(get("BYMONTH"))?)
        ),
        (other, _) => return err(format!("FREQ {other:?} has no EWS pattern")),
    };
    let start = t("StartDate", &start_date.format("%Y-%m-%d").to_string());
    let range = if let Some(count) = get("COUNT") {
        format!(
            "<t:NumberedRecurrence>{start}{}</t:NumberedRecurrence>",
            t("NumberOfOccurrences", count)
        )
    } else if let Some(until) = get("UNTIL") {
        let end = until_local_date(until, zone)?;
        format!(
            "<t:EndDateRecurrence>{start}{}</t:EndDateRecurrence>",
            t("EndDate", &end.format("%Y-%m-%d").to_string())
        )
    } else {
        format!("<t:NoEndRecurrence>{start}</t:NoEndRecurrence>")
    };
    Ok(format!("<t:Recurrence>{pattern}{range}</t:Recurrence>"))
}

/// The local date (in `zone`) of an `UNTIL` value (`YYYYMMDD` or `YYYYMMDDTHHMMSSZ`).
fn until_local_date(until: &str, zone: Tz) -> Result<NaiveDate, RecurrenceError> {
    let bad = || RecurrenceError(format!("UNTIL {until:?} is not a date or UTC date-time"));
    if until.len() == 8 {
        return NaiveDate::parse_from_str(until, "%Y%m%d").map_err(|_| bad());
    }
    let t = chrono::NaiveDateTime::parse_from_str(until.trim_end_matches('Z'), "%Y%m%dT%H%M%S")
        .map_err(|_| bad())?;
    Ok(t.and_utc().with_timezone(&zone).date_naive())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    fn rec(xml: &str) -> Elem {
        parse(&format!(
            r#"<t:Recurrence xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">{xml}</t:Recurrence>"#
        ))
        .unwrap()
    }

    #[test]
    fn weekly_until_is_the_last_second_of_the_local_end_date() {
        let r = rec("<t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Tuesday Thursday</t:DaysOfWeek><t:FirstDayOfWeek>Monday</t:FirstDayOfWeek></t:WeeklyRecurrence><t:EndDateRecurrence><t:StartDate>2026-03-03</t:StartDate><t:EndDate>2026-07-30+02:00</t:EndDate></t:EndDateRecurrence>");
        assert_eq!(
            to_rrule(&r, chrono_tz::Europe::Berlin).unwrap(),
            "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU,TH;WKST=MO;UNTIL=20260730T215959Z"
        );
    }

    #[test]
    fn patterns_round_trip() {
        let start = NaiveDate::from_ymd_opt(2026, 3, 3).unwrap();
        for rule in [
            "FREQ=DAILY;INTERVAL=2;COUNT=10",
            "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,WE;WKST=SU",
            "FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=15",
            "FREQ=MONTHLY;INTERVAL=3;BYDAY=FR;BYSETPOS=-1",
            "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=3",
            "FREQ=YEARLY;BYMONTH=11;BYDAY=TH;BYSETPOS=4",
            "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;UNTIL=20261229T225959Z",
        ] {
            let xml = from_rrule(rule, start, chrono_tz::Europe::Berlin).unwrap();
            assert_eq!(to_rrule(&parse(&xml.replace("<t:Recurrence>", r#"<t:Recurrence xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">"#)).unwrap(), chrono_tz::Europe::Berlin).unwrap(), rule, "{xml}");
        }
        assert!(from_rrule("FREQ=HOURLY", start, chrono_tz::UTC).is_err());
        assert!(from_rrule("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=5", start, chrono_tz::UTC).is_err());
    }
}
