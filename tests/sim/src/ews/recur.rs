//! Recurring calendar series: the EWS `Recurrence` element is turned into an RFC 5545 rule
//! (the `rrule` crate) and expanded in the series' own time zone (the tz database through
//! `chrono-tz`, the Windows zone names of `StartTimeZone` mapped through CLDR's table in
//! `windows-timezones`), so a 09:00 Europe/Berlin series stays at 09:00 local across DST.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rrule::{Frequency, NWeekday, RRule, Weekday};

use super::xml::Elem;
use super::EwsItem;

/// The IANA zone of a time zone name: an IANA name as is, a Windows name through CLDR.
pub fn zone(name: &str) -> Option<chrono_tz::Tz> {
    let name = name.trim();
    if let Ok(tz) = name.parse::<chrono_tz::Tz>() {
        return Some(tz);
    }
    let win: windows_timezones::WindowsTimezone = name.parse().ok()?;
    win.tzdb_id().parse().ok()
}

/// The series' time zone: `StartTimeZone/@Id`, `StartTimeZoneId`, `MeetingTimeZone/@TimeZoneName`
/// or `TimeZone`; UTC when none is known.
pub fn series_zone(item: &EwsItem) -> chrono_tz::Tz {
    let names = [
        item.prop("StartTimeZone")
            .and_then(|z| z.attr("Id"))
            .map(str::to_string),
        item.prop("StartTimeZoneId").map(|z| z.text().to_string()),
        item.prop("MeetingTimeZone")
            .and_then(|z| z.attr("TimeZoneName"))
            .map(str::to_string),
        item.prop("TimeZone").map(|z| z.text().to_string()),
    ];
    names
        .into_iter()
        .flatten()
        .find_map(|n| zone(&n))
        .unwrap_or(chrono_tz::UTC)
}

fn weekdays(text: &str) -> Vec<Weekday> {
    use Weekday::*;
    let mut out = vec![];
    for d in text.split_whitespace() {
        match d {
            "Monday" => out.push(Mon),
            "Tuesday" => out.push(Tue),
            "Wednesday" => out.push(Wed),
            "Thursday" => out.push(Thu),
            "Friday" => out.push(Fri),
            "Saturday" => out.push(Sat),
            "Sunday" => out.push(Sun),
            "Day" => out.extend([Mon, Tue, Wed, Thu, Fri, Sat, Sun]),
            "Weekday" => out.extend([Mon, Tue, Wed, Thu, Fri]),
            "WeekendDay" => out.extend([Sat, Sun]),
            _ => {}
        }
    }
    out
}

fn month(text: &str) -> Option<chrono::Month> {
    text.trim().parse().ok()
}

fn index(text: &str) -> i16 {
    match text.trim() {
        "First" => 1,
        "Second" => 2,
        "Third" => 3,
        "Fourth" => 4,
        _ => -1,
    }
}

fn num<T: std::str::FromStr>(p: &Elem, name: &str) -> Option<T> {
    p.child(name).and_then(|c| c.text().parse().ok())
}

/// One occurrence of a series: its 1-based index and original start/end (UTC).
#[derive(Debug, Clone, PartialEq)]
pub struct Occurrence {
    /// 1-based instance index.
    pub index: u32,
    /// Original start.
    pub start: DateTime<Utc>,
    /// Original end.
    pub end: DateTime<Utc>,
    /// Original start date in the series' zone (part of the occurrence id).
    pub local_date: NaiveDate,
}

/// Most occurrences expanded for a series without end.
const MAX_OCCURRENCES: u16 = 1000;

/// Every occurrence of a recurring master starting before `until` (all of them when the
/// series ends), deleted ones included. Empty when the item is not a valid series.
pub fn expand(item: &EwsItem, until: Option<DateTime<Utc>>) -> Vec<Occurrence> {
    let parse = |n: &str| {
        item.prop(n).and_then(|p| {
            DateTime::parse_from_rfc3339(p.text())
                .ok()
                .map(|d| d.with_timezone(&Utc))
        })
    };
    let (Some(start), Some(end), Some(rec)) =
        (parse("Start"), parse("End"), item.prop("Recurrence"))
    else {
        return vec![];
    };
    let (Some(pattern), Some(range)) = (rec.children.first(), rec.children.get(1)) else {
        return vec![];
    };
    let tz = series_zone(item);
    let local_start = start.with_timezone(&tz);
    let first_date = range
        .child("StartDate")
        .and_then(|d| NaiveDate::parse_from_str(d.text().get(..10).unwrap_or(""), "%Y-%m-%d").ok())
        .unwrap_or(local_start.date_naive());
    let Some(dtstart) = tz
        .from_local_datetime(&first_date.and_time(local_start.time()))
        .earliest()
    else {
        return vec![];
    };
    let interval: u16 = num(pattern, "Interval").unwrap_or(1).max(1);
    let days = pattern
        .child("DaysOfWeek")
        .map(|d| weekdays(d.text()))
        .unwrap_or_default();
    let idx = pattern
        .child("DayOfWeekIndex")
        .map(|d| index(d.text()))
        .unwrap_or(1);
    let mut rule = match pattern.name.as_str() {
        "DailyRecurrence" => RRule::new(Frequency::Daily).interval(interval),
        "WeeklyRecurrence" => {
            let days = if days.is_empty() {
                vec![weekday_of(local_start.date_naive())]
            } else {
                days.clone()
            };
            let wkst = pattern
                .child("FirstDayOfWeek")
                .map(|d| weekdays(d.text()))
                .and_then(|d| d.first().copied())
                .unwrap_or(Weekday::Sun);
            RRule::new(Frequency::Weekly)
                .interval(interval)
                .week_start(wkst)
                .by_weekday(days.into_iter().map(NWeekday::Every).collect())
        }
        "AbsoluteMonthlyRecurrence" => RRule::new(Frequency::Monthly)
            .interval(interval)
            .by_month_day(vec![num(pattern, "DayOfMonth").unwrap_or(1)]),
        "RelativeMonthlyRecurrence" => RRule::new(Frequency::Monthly)
            .interval(interval)
            .by_weekday(days.iter().map(|d| NWeekday::Nth(idx, *d)).collect()),
        "AbsoluteYearlyRecurrence" => RRule::new(Frequency::Yearly)
            .by_month(&[pattern
                .child("Month")
                .and_then(|m| month(m.text()))
                .unwrap_or(chrono::Month::January)])
            .by_month_day(vec![num(pattern, "DayOfMonth").unwrap_or(1)]),
        "RelativeYearlyRecurrence" => RRule::new(Frequency::Yearly)
            .by_month(&[pattern
                .child("Month")
                .and_then(|m| month(m.text()))
                .unwrap_or(chrono::Month::January)])
            .by_weekday(days.iter().map(|d| NWeekday::Nth(idx, *d)).collect()),
        _ => return vec![],
    };
    let rtz = rrule::Tz::Tz(tz);
    match range.name.as_str() {
        "NumberedRecurrence" => {
            rule = rule.count(num(range, "NumberOfOccurrences").unwrap_or(1).max(1));
        }
        "EndDateRecurrence" => {
            let end_date = range.child("EndDate").and_then(|d| {
                NaiveDate::parse_from_str(d.text().get(..10).unwrap_or(""), "%Y-%m-%d").ok()
            });
            if let Some(u) = end_date
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
    let set = match until {
        Some(u) => set.before(u.with_timezone(&rtz)),
        None => set,
    };
    let dur = end - start;
    set.all(MAX_OCCURRENCES)
        .dates
        .into_iter()
        .enumerate()
        .map(|(n, d)| Occurrence {
            index: n as u32 + 1,
            start: d.with_timezone(&Utc),
            end: d.with_timezone(&Utc) + dur,
            local_date: d.with_timezone(&tz).date_naive(),
        })
        .collect()
}

fn weekday_of(d: NaiveDate) -> Weekday {
    use chrono::Datelike;
    d.weekday()
}
