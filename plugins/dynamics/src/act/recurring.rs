//! Recurring appointment masters (`recurringappointmentmasters`, key `activityid`) as
//! `appointment` items with a recurrence, and the update of a series' two-way fields.
//!
//! Dataverse's recurringappointmentmaster table keeps a series as a pattern, in UTC instants
//! (`DateTimeBehavior` UserLocal: the Web API answers `…Z`). The series is computed on the wall
//! clock of the zone the row was entered in: `utcconversiontimezonecode`, read through
//! Dataverse's `timezonedefinitions` ([`super::zones`]); its Windows id travels as the
//! item's start and end `time-zone`, so the `dynamics-exchange` mapper gives the mailbox series
//! that zone and Exchange keeps 09:00 at 09:00 across daylight-saving changes. A row without a
//! code is computed in UTC.
//!
//! - start/end: the first occurrence. Its day is the first day on or after the recurrence range
//!   start (`patternstartdate`; the start time `starttime` when it has none) that the pattern
//!   selects, at the time of day of `starttime`; it lasts as long as `starttime`..`endtime`.
//!   `patternstartdate` (and `patternenddate`) are Date Only in format but UserLocal in
//!   behavior, so Dataverse answers the instant of the user's midnight (`2026-01-04T23:00:00Z`,
//!   the local day it starts); a bare date (`2026-01-05`, what a DateOnly-behavior column
//!   answers) is that day.
//! - the RRULE (RFC 5545, no DTSTART), from `recurrencepatterntype` (0 Daily, 1 Weekly,
//!   2 Monthly, 3 Yearly), `interval` (1..1000), `daysofweekmask` (Sunday 0x01, Monday 0x02,
//!   Tuesday 0x04, Wednesday 0x08, Thursday 0x10, Friday 0x20, Saturday 0x40), `dayofmonth`
//!   (1..31), `monthofyear` (1 January .. 12 December), `instance` (1 First .. 4 Fourth,
//!   5 Last), `isweekdaypattern`, `isnthmonthly`, `isnthyearly` (absent: their default, No) and
//!   `firstdayofweek` (0 Sunday .. 6 Saturday):
//!
//!   | pattern | RRULE |
//!   |---|---|
//!   | Daily | `FREQ=DAILY;INTERVAL=n` |
//!   | Daily or Weekly, every weekday (`isweekdaypattern`) | `FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,TU,WE,TH,FR` |
//!   | Weekly | `FREQ=WEEKLY;INTERVAL=n;BYDAY=MO,TH;WKST=SU` (no `WKST` without `firstdayofweek`: RFC 5545's Monday) |
//!   | Monthly | `FREQ=MONTHLY;INTERVAL=n;BYMONTHDAY=d` |
//!   | Monthly, nth (`isnthmonthly`) | `FREQ=MONTHLY;INTERVAL=n;BYDAY=TU;BYSETPOS=2` (Last: `-1`) |
//!   | Yearly | `FREQ=YEARLY;INTERVAL=n;BYMONTH=m;BYMONTHDAY=d` |
//!   | Yearly, nth (`isnthyearly`) | `FREQ=YEARLY;INTERVAL=n;BYMONTH=m;BYDAY=FR;BYSETPOS=-1` |
//!
//!   and the range from `patternendtype`: 1 No End Date → nothing, 2 Occurrences → `COUNT=n`
//!   (`occurrences`, 1..999), 3 Pattern End Date → `UNTIL=` the last second of the day
//!   `patternenddate` names, in UTC (23:59:59 of that day on the zone's wall clock; without a
//!   zone `…T235959Z` for a bare date, the user's midnight + 23:59:59 for an instant).
//! - exdates: `deletedexceptionslist` ("List of deleted instances of the recurring appointment
//!   series", a read-only Memo whose format Dataverse does not document) is read as entries
//!   separated by `,`, `;` or line breaks, each a date (`2026-02-10`) or a UTC date-time
//!   (`2026-02-10T08:00:00Z`): a date names that day's occurrence (the date at `starttime`'s
//!   time of day), a date-time the occurrence starting in the 24 hours from it (the instant
//!   itself when it is an occurrence's start, the day's occurrence when it is the user's
//!   midnight).
//! - subject, location, body `description`, all day `isalldayevent`, show-as from the status
//!   reason as for appointments ([`super::appointment::show_as`]); state 2 Canceled is a
//!   removal (`deleted`).
//!
//! A row whose pattern does not read (an unknown option value, an interval below 1, a weekly
//! pattern without days, a missing column the pattern needs, an end before the first
//! occurrence, an exception list that does not read, a zone code Dataverse does not define…) is left out with a warning naming the row
//! and the column, never given a default pattern.
//!
//! On the zone's wall clock the days of the pattern are the local days of `starttime` (a
//! Monday 17:00 meeting in Los Angeles is a Monday, not UTC's Tuesday), date columns name local
//! days, and a time the zone skips on the day of a change (02:30 on the last Sunday of March in
//! Berlin) lands after the gap, an ambiguous one on its first instant. Without a zone the days
//! are UTC's, and an instant in a date column is taken as the user's midnight.
//!
//! Writes: `update` of `subject`, `start` (`starttime`), `end` (`endtime`), `all_day`,
//! `location`, `body` (`description`); `recurrence` is `unsupported` (the pattern flows from
//! Dynamics only), as are `create` and `delete` of a series (see [`super::write`]).

use super::appointment::{self, show_as, states, DESCRIPTION_MAX, LOCATION_MAX, SUBJECT_MAX};
use super::columns::{bounded, field_name, not_written, state, status, time};
use super::scope::Kind;
use super::zones::Zones;
use crate::emails::time::utc_key;
use crate::text;
use chrono::{Duration, LocalResult, NaiveDate, NaiveTime, Offset, TimeZone, Timelike};
use chrono_tz::Tz;
use serde_json::{json, Map, Value};
use syncbridge_sdk::prelude::*;

/// Fields an update writes (the appointments' two-way fields).
pub const FIELDS: &[&str] = appointment::FIELDS;

/// `recurrencepatterntype`.
pub mod pattern_types {
    /// Daily.
    pub const DAILY: i64 = 0;
    /// Weekly.
    pub const WEEKLY: i64 = 1;
    /// Monthly.
    pub const MONTHLY: i64 = 2;
    /// Yearly.
    pub const YEARLY: i64 = 3;
}

/// `patternendtype`.
pub mod end_types {
    /// No End Date.
    pub const NO_END_DATE: i64 = 1;
    /// Occurrences.
    pub const OCCURRENCES: i64 = 2;
    /// Pattern End Date.
    pub const PATTERN_END_DATE: i64 = 3;
}

/// RFC 5545 day codes by `firstdayofweek` value and `daysofweekmask` bit (Sunday first).
const DAY_CODES: [&str; 7] = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"];
/// The weekdays' `daysofweekmask` (Monday to Friday).
pub const WEEKDAYS: u8 = 0x3e;
const DAY: i64 = 86_400;
/// How many days after the range start the first occurrence is looked for (a 29 February
/// yearly pattern can wait eight years).
const SEARCH_DAYS: i64 = 366 * 8 + 2;

/// Why a row's pattern does not read: the column and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad {
    /// The column.
    pub column: &'static str,
    /// What is wrong, e.g. `is 0; it is 1 to 1000`.
    pub why: String,
}

fn bad(column: &'static str, why: impl Into<String>) -> Bad {
    Bad {
        column,
        why: why.into(),
    }
}

/// The frequency of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freq {
    /// Every `interval` days.
    Daily,
    /// Every `interval` weeks on the days.
    Weekly,
    /// Every `interval` months.
    Monthly,
    /// Every `interval` years.
    Yearly,
}

/// How a series ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// No end date.
    Never,
    /// After this many occurrences.
    Count(i64),
    /// At this instant (seconds since the Unix epoch, inclusive).
    Until(i64),
}

/// A master row's pattern as RFC 5545 rule parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `FREQ`.
    pub freq: Freq,
    /// `INTERVAL`.
    pub interval: i64,
    /// `BYDAY` as a `daysofweekmask` (0: none).
    pub days: u8,
    /// `BYMONTHDAY`.
    pub month_day: Option<u32>,
    /// `BYMONTH`.
    pub month: Option<u32>,
    /// `BYSETPOS` (1..4, -1 last).
    pub set_pos: Option<i64>,
    /// `WKST` as a `firstdayofweek` (0 Sunday).
    pub week_start: Option<u32>,
    /// `COUNT` / `UNTIL`.
    pub end: End,
}

fn int(row: &Value, column: &'static str) -> Result<Option<i64>, Bad> {
    match row.get(column) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| bad(column, format!("is {v}, not a whole number"))),
    }
}

fn required(row: &Value, column: &'static str, range: (i64, i64)) -> Result<i64, Bad> {
    let n = int(row, column)?.ok_or_else(|| bad(column, "is empty"))?;
    if !(range.0..=range.1).contains(&n) {
        return Err(bad(
            column,
            format!("is {n}; it is {} to {}", range.0, range.1),
        ));
    }
    Ok(n)
}

fn flag(row: &Value, column: &'static str) -> Result<bool, Bad> {
    match row.get(column) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(bad(column, format!("is {v}, not true or false"))),
    }
}

fn days_mask(row: &Value) -> Result<u8, Bad> {
    Ok(required(row, "daysofweekmask", (1, 127))? as u8)
}

fn set_pos(row: &Value) -> Result<i64, Bad> {
    Ok(match required(row, "instance", (1, 5))? {
        5 => -1,
        n => n,
    })
}

impl Rule {
    /// The pattern columns of a master row, its end date read in `clock`'s zone; `Bad` names
    /// the first column that does not read.
    pub fn read(row: &Value, clock: Clock) -> Result<Rule, Bad> {
        let kind = int(row, "recurrencepatterntype")?
            .ok_or_else(|| bad("recurrencepatterntype", "is empty"))?;
        let weekday = flag(row, "isweekdaypattern")?;
        let mut rule = Rule {
            freq: Freq::Daily,
            interval: 1,
            days: 0,
            month_day: None,
            month: None,
            set_pos: None,
            week_start: None,
            end: End::Never,
        };
        match kind {
            pattern_types::DAILY | pattern_types::WEEKLY if weekday => {
                rule.freq = Freq::Weekly;
                rule.days = WEEKDAYS;
            }
            pattern_types::DAILY => rule.interval = required(row, "interval", (1, 1000))?,
            pattern_types::WEEKLY => {
                rule.freq = Freq::Weekly;
                rule.interval = required(row, "interval", (1, 1000))?;
                rule.days = days_mask(row)?;
                rule.week_start = match int(row, "firstdayofweek")? {
                    None => None,
                    Some(d @ 0..=6) => Some(d as u32),
                    Some(d) => {
                        return Err(bad(
                            "firstdayofweek",
                            format!("is {d}; it is 0 (Sunday) to 6 (Saturday)"),
                        ))
                    }
                };
            }
            pattern_types::MONTHLY => {
                rule.freq = Freq::Monthly;
                rule.interval = required(row, "interval", (1, 1000))?;
                if flag(row, "isnthmonthly")? {
                    rule.days = days_mask(row)?;
                    rule.set_pos = Some(set_pos(row)?);
                } else {
                    rule.month_day = Some(required(row, "dayofmonth", (1, 31))? as u32);
                }
            }
            pattern_types::YEARLY => {
                rule.freq = Freq::Yearly;
                rule.interval = required(row, "interval", (1, 1000))?;
                rule.month = Some(required(row, "monthofyear", (1, 12))? as u32);
                if flag(row, "isnthyearly")? {
                    rule.days = days_mask(row)?;
                    rule.set_pos = Some(set_pos(row)?);
                } else {
                    let d = required(row, "dayofmonth", (1, 31))? as u32;
                    let month = rule.month.unwrap_or(1);
                    if d > days_in_month(2000, month) {
                        return Err(bad(
                            "dayofmonth",
                            format!("is {d}, a day month {month} never has"),
                        ));
                    }
                    rule.month_day = Some(d);
                }
            }
            other => {
                return Err(bad(
                    "recurrencepatterntype",
                    format!("is {other}; it is 0 (Daily), 1 (Weekly), 2 (Monthly) or 3 (Yearly)"),
                ))
            }
        }
        rule.end = match int(row, "patternendtype")? {
            None => return Err(bad("patternendtype", "is empty")),
            Some(end_types::NO_END_DATE) => End::Never,
            Some(end_types::OCCURRENCES) => End::Count(required(row, "occurrences", (1, 999))?),
            Some(end_types::PATTERN_END_DATE) => {
                let end = date_column(row, "patternenddate")?
                    .ok_or_else(|| bad("patternenddate", "is empty"))?;
                End::Until(clock.end_of_day(end))
            }
            Some(other) => {
                return Err(bad(
                    "patternendtype",
                    format!(
                        "is {other}; it is 1 (No End Date), 2 (Occurrences) or 3 (Pattern End Date)"
                    ),
                ))
            }
        };
        Ok(rule)
    }

    /// The RRULE (without DTSTART).
    pub fn rrule(&self) -> String {
        let freq = match self.freq {
            Freq::Daily => "DAILY",
            Freq::Weekly => "WEEKLY",
            Freq::Monthly => "MONTHLY",
            Freq::Yearly => "YEARLY",
        };
        let mut parts = vec![
            format!("FREQ={freq}"),
            format!("INTERVAL={}", self.interval),
        ];
        if let Some(m) = self.month {
            parts.push(format!("BYMONTH={m}"));
        }
        if let Some(d) = self.month_day {
            parts.push(format!("BYMONTHDAY={d}"));
        }
        if self.days != 0 {
            parts.push(format!("BYDAY={}", by_day(self.days)));
        }
        if let Some(p) = self.set_pos {
            parts.push(format!("BYSETPOS={p}"));
        }
        if let Some(w) = self.week_start {
            parts.push(format!("WKST={}", DAY_CODES[w as usize]));
        }
        match self.end {
            End::Never => {}
            End::Count(n) => parts.push(format!("COUNT={n}")),
            End::Until(at) => parts.push(format!("UNTIL={}", compact(at))),
        }
        parts.join(";")
    }

    /// Whether the day `days` (since 1970-01-01) is one the rule's BY parts select (the
    /// interval aside: it counts from the first occurrence).
    pub fn selects(&self, days: i64) -> bool {
        let (y, m, d) = civil(days);
        if self.month.is_some_and(|want| want != m) {
            return false;
        }
        if self.month_day.is_some_and(|want| want != d) {
            return false;
        }
        if self.days == 0 {
            return true;
        }
        if self.days & (1 << weekday(days)) == 0 {
            return false;
        }
        let Some(pos) = self.set_pos else {
            return true;
        };
        // The month's days the mask selects, the pos-th of them (from the end when negative).
        let first = days_from_civil(y, m, 1);
        let chosen: Vec<i64> = (first..first + i64::from(days_in_month(y, m)))
            .filter(|&x| self.days & (1 << weekday(x)) != 0)
            .collect();
        let pick = if pos > 0 {
            chosen.get(pos as usize - 1)
        } else {
            chosen
                .len()
                .checked_sub(pos.unsigned_abs() as usize)
                .and_then(|i| chosen.get(i))
        };
        pick == Some(&days)
    }
}

/// `BYDAY` of a `daysofweekmask`, Monday first.
pub fn by_day(mask: u8) -> String {
    [1, 2, 3, 4, 5, 6, 0]
        .into_iter()
        .filter(|&i| mask & (1 << i) != 0)
        .map(|i| DAY_CODES[i])
        .collect::<Vec<_>>()
        .join(",")
}

// ---------------------------------------------------------------------------------------------
// civil dates and instants (seconds since the Unix epoch, UTC)

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01.
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// The day of the week, 0 Sunday .. 6 Saturday (the `daysofweekmask` bit).
pub fn weekday(days: i64) -> u32 {
    (days + 4).rem_euclid(7) as u32
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A `YYYY-MM-DD` date as days since 1970-01-01.
pub fn date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = s.get(0..4)?.parse().ok()?;
    let m: u32 = s.get(5..7)?.parse().ok()?;
    let d: u32 = s.get(8..10)?.parse().ok()?;
    if !s[0..4].bytes().all(|c| c.is_ascii_digit()) || !(1..=12).contains(&m) {
        return None;
    }
    (1..=days_in_month(y, m))
        .contains(&d)
        .then(|| days_from_civil(y, m, d))
}

/// A UTC date-time as Dataverse writes it (`2026-01-02T03:04:05Z`, a fraction allowed, dropped)
/// as seconds since the Unix epoch.
pub fn instant(s: &str) -> Option<i64> {
    let (secs, _) = utc_key(s)?;
    let day = date(&secs[..10])?;
    let n = |r: std::ops::Range<usize>| secs[r].parse::<i64>().ok();
    Some(day * DAY + n(11..13)? * 3600 + n(14..16)? * 60 + n(17..19)?.min(59))
}

/// An instant as `2026-01-02T03:04:05Z`.
pub fn rfc3339(at: i64) -> String {
    let (y, m, d) = civil(at.div_euclid(DAY));
    let s = at.rem_euclid(DAY);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// An instant as RFC 5545's UTC form, `20260102T030405Z`.
pub fn compact(at: i64) -> String {
    rfc3339(at).replace(['-', ':'], "")
}

/// A date column's value: a bare date (a DateOnly column), or an instant (a UserLocal column:
/// the user's midnight); none when empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateValue {
    /// Days since 1970-01-01.
    Day(i64),
    /// Seconds since the Unix epoch.
    At(i64),
}

fn date_column(row: &Value, column: &'static str) -> Result<Option<DateValue>, Bad> {
    let Some(s) = text(row, column) else {
        return Ok(None);
    };
    date(&s)
        .map(DateValue::Day)
        .or_else(|| instant(&s).map(DateValue::At))
        .map(Some)
        .ok_or_else(|| {
            bad(
                column,
                format!("is {s:?}, neither a date (YYYY-MM-DD) nor a UTC date-time"),
            )
        })
}

/// Local days and times of the zone a series is computed in: a tz-database zone, or UTC
/// arithmetic when the row names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock(pub Option<Tz>);

impl Clock {
    /// `(day since 1970-01-01, seconds after midnight)` of an instant, on the zone's wall clock.
    pub fn split(self, at: i64) -> (i64, i64) {
        let Some(tz) = self.0 else {
            return (at.div_euclid(DAY), at.rem_euclid(DAY));
        };
        let local = tz
            .timestamp_opt(at, 0)
            .single()
            .map(|t| t.naive_local())
            .unwrap_or_default();
        (
            local
                .date()
                .signed_duration_since(NaiveDate::default())
                .num_days(),
            i64::from(local.time().num_seconds_from_midnight()),
        )
    }

    /// The instant of a wall-clock time: an ambiguous one (a DST fall-back) is the first; one
    /// the zone skips (a DST gap) is read with the offset before the gap, so it lands as much
    /// after the gap as it was into it, as Exchange places it.
    pub fn instant(self, day: i64, secs: i64) -> i64 {
        let Some(tz) = self.0 else {
            return day * DAY + secs;
        };
        let local = NaiveDate::default().and_time(NaiveTime::MIN)
            + Duration::days(day)
            + Duration::seconds(secs);
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.timestamp(),
            LocalResult::None => {
                let before = tz.offset_from_utc_datetime(&(local - Duration::days(1)));
                (local - Duration::seconds(i64::from(before.fix().local_minus_utc())))
                    .and_utc()
                    .timestamp()
            }
        }
    }

    /// The start of a date column's day: a bare date at midnight, an instant (the user's
    /// midnight) on the zone's wall clock.
    fn day_start(self, v: DateValue) -> (i64, i64) {
        match v {
            DateValue::Day(d) => (d, 0),
            DateValue::At(at) => self.split(at),
        }
    }

    /// The last second of a date column's day. Without a zone an instant is the user's
    /// midnight and its day ends 24 hours later; in a zone it names the day whose midnight is
    /// nearest to it.
    fn end_of_day(self, v: DateValue) -> i64 {
        match (v, self.0) {
            (DateValue::Day(d), _) => self.instant(d, DAY - 1),
            (DateValue::At(at), None) => at + DAY - 1,
            (DateValue::At(at), Some(_)) => self.instant(self.split(at + DAY / 2).0, DAY - 1),
        }
    }
}

fn time_column(row: &Value, column: &'static str) -> Result<i64, Bad> {
    let s = text(row, column).ok_or_else(|| bad(column, "is empty"))?;
    instant(&s).ok_or_else(|| bad(column, format!("is {s:?}, not a UTC date-time")))
}

/// A series read from a master row: its first occurrence, its end and its recurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// The first occurrence's start.
    pub start: i64,
    /// The first occurrence's end.
    pub end: i64,
    /// The rule.
    pub rule: Rule,
    /// The deleted occurrences' starts.
    pub exdates: Vec<i64>,
}

/// The deleted occurrences of `deletedexceptionslist` (see the module's documentation), given
/// the occurrences' time of day (seconds after midnight on `clock`'s wall clock).
pub fn exdates(list: Option<&str>, time_of_day: i64, clock: Clock) -> Result<Vec<i64>, Bad> {
    let mut out = Vec::new();
    for entry in list
        .unwrap_or("")
        .split([',', ';', '\n', '\r'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let at = if let Some(d) = date(entry) {
            clock.instant(d, time_of_day)
        } else if let Some(t) = instant(entry) {
            // The occurrence starting in the day from t.
            let (day, secs) = clock.split(t);
            clock.instant(if time_of_day >= secs { day } else { day + 1 }, time_of_day)
        } else {
            return Err(bad(
                "deletedexceptionslist",
                format!("has the entry {entry:?}, neither a date (YYYY-MM-DD) nor a UTC date-time"),
            ));
        };
        if !out.contains(&at) {
            out.push(at);
        }
    }
    Ok(out)
}

/// A master row's series, computed on the wall clock of `zone` (UTC without one); `Bad` names
/// the first column that does not read.
pub fn series(row: &Value, zone: Option<Tz>) -> Result<Series, Bad> {
    let clock = Clock(zone);
    let start = time_column(row, "starttime")?;
    let end = time_column(row, "endtime")?;
    if end < start {
        return Err(bad(
            "endtime",
            format!("is before starttime ({})", rfc3339(start)),
        ));
    }
    let rule = Rule::read(row, clock)?;
    let (start_day, time_of_day) = clock.split(start);
    let (from_day, from_secs) = match date_column(row, "patternstartdate")? {
        Some(v) => clock.day_start(v),
        None => (start_day, time_of_day),
    };
    let first = (from_day..=from_day + SEARCH_DAYS)
        .find(|&d| (d > from_day || time_of_day >= from_secs) && rule.selects(d))
        .map(|d| clock.instant(d, time_of_day))
        .ok_or_else(|| {
            bad(
                "recurrencepatterntype",
                format!(
                    "selects no day in the {SEARCH_DAYS} days from {}",
                    rfc3339(clock.instant(from_day, from_secs))
                ),
            )
        })?;
    if let End::Until(until) = rule.end {
        if until < first {
            return Err(bad(
                "patternenddate",
                format!(
                    "ends the series before its first occurrence ({})",
                    rfc3339(first)
                ),
            ));
        }
    }
    let exdates = exdates(
        row.get("deletedexceptionslist").and_then(Value::as_str),
        time_of_day,
        clock,
    )?;
    Ok(Series {
        start: first,
        end: first + (end - start),
        rule,
        exdates,
    })
}

/// A master row as an item, its series computed in the zone `zones` give its
/// `utcconversiontimezonecode` (named by its Windows id in the item's times): canceled ones as
/// removals; none without an `activityid`, or (live) when its zone or series does not read (with
/// a warning naming the row and the column).
pub fn item(row: &Value, zones: &Zones) -> Option<Item> {
    let id = text(row, "activityid")?.to_ascii_lowercase();
    let version = text(row, "@odata.etag");
    if state(row) == Some(states::CANCELED) {
        return Some(Item {
            id,
            version,
            removed: Some(Removal::Deleted),
            body: None,
        });
    }
    let read = zones
        .zone_of(row)
        .and_then(|zone| Ok((series(row, zone.as_ref().map(|z| z.tz))?, zone)));
    let (s, zone) = match read {
        Ok(read) => read,
        Err(Bad { column, why }) => {
            syncbridge_sdk::log::warn!(
                "recurring appointment {id}: its {column} {why}; the series is left out"
            );
            return None;
        }
    };
    let zoned = |at: i64| ZonedTime {
        utc: rfc3339(at),
        time_zone: zone.as_ref().map(|z| z.windows.clone()),
    };
    Some(Item {
        id,
        version,
        removed: None,
        body: Some(ItemBody::Appointment(Appointment {
            subject: text(row, "subject"),
            start: zoned(s.start),
            end: zoned(s.end),
            all_day: row.get("isalldayevent") == Some(&Value::Bool(true)),
            show_as: show_as(status(row)),
            sensitivity: Sensitivity::Normal,
            recurrence: Some(Recurrence {
                rrule: s.rule.rrule(),
                exdates: s.exdates.into_iter().map(rfc3339).collect(),
            }),
            organizer: None,
            attendees: Vec::new(),
            location: text(row, "location"),
            body: row
                .get("description")
                .and_then(Value::as_str)
                .filter(|b| !b.trim().is_empty())
                .map(str::to_owned),
            categories: Vec::new(),
        })),
    })
}

/// The PATCH body of an update of `fields` of a series to `a` (an absent value clears its
/// column); `recurrence` is `unsupported`, other fields `invalid`.
pub fn update_body(a: &Appointment, fields: &[String]) -> Result<Map<String, Value>, PluginError> {
    let mut b = Map::new();
    for name in fields {
        let (column, value) = match field_name(name).as_str() {
            "subject" => (
                "subject",
                bounded("subject", a.subject.as_deref(), SUBJECT_MAX)?,
            ),
            "start" => ("starttime", time("start", &a.start)?),
            "end" => ("endtime", time("end", &a.end)?),
            "all_day" => ("isalldayevent", json!(a.all_day)),
            "location" => (
                "location",
                bounded("location", a.location.as_deref(), LOCATION_MAX)?,
            ),
            "body" => (
                "description",
                bounded("body", a.body.as_deref(), DESCRIPTION_MAX)?,
            ),
            "recurrence" | "series" => {
                return Err(PluginError::Unsupported(format!(
                    "{name} is not written on recurring appointments: a series' pattern, with its occurrences, flows one way, from Dynamics; change it in Dynamics (this scope updates {})",
                    FIELDS.join(", ")
                )))
            }
            _ => return Err(not_written(name, Kind::RecurringAppointments, FIELDS)),
        };
        b.insert(column.into(), value);
    }
    Ok(b)
}
