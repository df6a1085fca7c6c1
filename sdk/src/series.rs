//! Recurring series as their occurrences (feature `series`).
//!
//! A calendar scope read with `series=occurrences` answers each series master as one item per
//! occurrence that overlaps the scope's window, for targets without recurrence (Autotask
//! appointments). An occurrence's id is `<series id>#<date>`, the date its original start falls
//! on in the series' zone (`YYYY-MM-DD`; Outlook series repeat at most daily): it stays the same
//! when the series moves to another time of day, or the occurrence alone is moved. Modified
//! occurrences come with their own times and texts (kind `exception`), deleted ones not at all.
//!
//! The engine relies on two promises (its `expanded_series` rule): a changed series brings all
//! of its occurrences in the window, and the removal of a series removes its occurrences.
//! Looking an occurrence id up ([`occurrence`]) answers it wherever it falls, so one that left
//! the window is told apart from one that is gone.

use crate::types::mailbox::{
    Event, EventKind, EventTime, MailboxBody, MailboxItem, OccurrenceChange,
};
use crate::types::{PluginError, Removal};
use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use chrono_tz::Tz;
use std::collections::{BTreeMap, BTreeSet};

/// Separates a series id from an occurrence's date in the occurrence's id.
pub const SEPARATOR: char = '#';
/// Most occurrences expanded for one series in one window.
const MAX_OCCURRENCES: u16 = 2000;

/// What a calendar scope's `series=` option asks for: `occurrences` → true, `masters` (the
/// default) → false.
pub fn expands(option: Option<&str>) -> Result<bool, PluginError> {
    match option.map(str::trim) {
        None | Some("masters") => Ok(false),
        Some("occurrences") => Ok(true),
        Some(other) => Err(PluginError::invalid_field(
            "scope",
            format!("series={other} is not known; use series=masters (the default) or series=occurrences"),
        )),
    }
}

/// The instants a scope's occurrences must overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    fn overlaps(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        end >= self.start && start <= self.end
    }
}

/// The occurrence of `master` that starts at `original_start` (RFC 3339) as the series places
/// it: as long as the master, in its zones, with its subject, location, body and free/busy.
/// `None` when one of the instants does not read.
pub fn in_place(master: &Event, original_start: &str) -> Option<OccurrenceChange> {
    let instant = |s: &str| DateTime::parse_from_rfc3339(s).ok();
    let length = instant(&master.end.utc)? - instant(&master.start.utc)?;
    let start = instant(original_start)?.with_timezone(&Utc);
    let at = |t: DateTime<Utc>, zone: &Option<crate::types::mailbox::Zone>| EventTime {
        utc: fmt_utc(t),
        zone: zone.clone(),
    };
    Some(OccurrenceChange {
        original_start: fmt_utc(start),
        id: None,
        start: at(start, &master.start.zone),
        end: at(start + length, &master.end.zone),
        subject: master.subject.clone(),
        location: master.location.clone(),
        body: master.body.clone(),
        show_as: master.show_as,
    })
}

/// Whether a modified occurrence of `master` is back where the series puts it ([`in_place`]),
/// texts it does not carry counting as the master's. Exchange keeps an occurrence among a
/// series' exceptions once it was modified, also after it was put back; such an occurrence
/// differs from the series in nothing, and connectors leave it out of `series.modified`.
pub fn follows_pattern(change: &OccurrenceChange, master: &Event) -> bool {
    let Some(place) = in_place(master, &change.original_start) else {
        return false;
    };
    let instant = |s: &str| DateTime::parse_from_rfc3339(s).ok();
    let same_instant = |a: &str, b: &str| instant(a).is_some() && instant(a) == instant(b);
    let own = |c: Option<&String>, m: Option<&String>| c.is_none_or(|c| Some(c) == m);
    same_instant(&change.start.utc, &place.start.utc)
        && same_instant(&change.end.utc, &place.end.utc)
        && own(change.subject.as_ref(), place.subject.as_ref())
        && own(change.location.as_ref(), place.location.as_ref())
        && change.body.as_ref().is_none_or(|b| {
            place
                .body
                .as_ref()
                .is_some_and(|m| m.body_type == b.body_type && m.content == b.content)
        })
        && change.show_as == place.show_as
}

/// The id of the occurrence of series `series_id` whose original start falls on `date`.
pub fn occurrence_id(series_id: &str, date: NaiveDate) -> String {
    format!("{series_id}{SEPARATOR}{}", date.format("%Y-%m-%d"))
}

/// `(series id, date)` of an occurrence id; `None` for any other id.
pub fn split_occurrence_id(id: &str) -> Option<(&str, NaiveDate)> {
    let (series, date) = id.rsplit_once(SEPARATOR)?;
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    (!series.is_empty()).then_some((series, date))
}

/// RFC 3339 UTC with seconds, as the mailbox model writes instants.
pub fn fmt_utc(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_utc(what: &str, s: &str) -> Result<DateTime<Utc>, PluginError> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| PluginError::invalid(format!("{what} {s:?} is no RFC 3339 instant: {e}")))
}

/// Starts (UTC) of the occurrences of `rrule` from `dtstart` (the first occurrence) in
/// wall-clock time of `tz`, from `from` (inclusive) to `to` (exclusive).
pub fn expand(
    rrule: &str,
    dtstart: DateTime<Utc>,
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, String> {
    let local = dtstart.with_timezone(&tz).naive_local();
    let text = format!(
        "DTSTART;TZID={}:{}\nRRULE:{}",
        tz.name(),
        local.format("%Y%m%dT%H%M%S"),
        rrule.trim().trim_start_matches("RRULE:")
    );
    let set: rrule::RRuleSet = text.parse().map_err(|e| format!("{e}"))?;
    let rtz = rrule::Tz::Tz(tz);
    let set = set
        .after(from.with_timezone(&rtz) - Duration::seconds(1))
        .before(to.with_timezone(&rtz));
    Ok(set
        .all(MAX_OCCURRENCES)
        .dates
        .into_iter()
        .map(|d| d.with_timezone(&Utc))
        .filter(|d| *d >= from && *d < to)
        .collect())
}

/// A series master, read once for expanding.
struct Master<'a> {
    item: &'a MailboxItem,
    event: &'a Event,
    rrule: &'a str,
    tz: Tz,
    first: DateTime<Utc>,
    length: Duration,
    deleted: BTreeSet<DateTime<Utc>>,
    modified: BTreeMap<DateTime<Utc>, usize>,
}

impl<'a> Master<'a> {
    /// `None` for anything but a series master with its recurrence.
    fn of(item: &'a MailboxItem) -> Result<Option<Self>, PluginError> {
        let Some(MailboxBody::Event(event)) = &item.body else {
            return Ok(None);
        };
        let (EventKind::SeriesMaster, Some(series)) = (event.kind, &event.series) else {
            return Ok(None);
        };
        let tz: Tz = series.zone.iana.parse().map_err(|_| {
            PluginError::invalid(format!(
                "series {} names the unknown time zone {:?}",
                item.id, series.zone.iana
            ))
        })?;
        let first = parse_utc("the series start", &event.start.utc)?;
        let length = parse_utc("the series end", &event.end.utc)? - first;
        let deleted = series
            .deleted
            .iter()
            .map(|d| parse_utc("a deleted occurrence", d))
            .collect::<Result<_, _>>()?;
        let modified = series
            .modified
            .iter()
            .enumerate()
            .map(|(i, m)| Ok((parse_utc("a modified occurrence", &m.original_start)?, i)))
            .collect::<Result<_, PluginError>>()?;
        Ok(Some(Master {
            item,
            event,
            rrule: &series.rrule,
            tz,
            first,
            length,
            deleted,
            modified,
        }))
    }

    fn date_of(&self, original: DateTime<Utc>) -> NaiveDate {
        original.with_timezone(&self.tz).date_naive()
    }

    fn starts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, PluginError> {
        expand(self.rrule, self.first, self.tz, from, to).map_err(|e| {
            PluginError::invalid(format!(
                "series {} has a recurrence that cannot be expanded ({:?}): {e}",
                self.item.id, self.rrule
            ))
        })
    }

    /// The occurrence whose original start is `original` (not deleted).
    fn occurrence(&self, original: DateTime<Utc>) -> MailboxItem {
        let base = self.event;
        let zone = |t: &EventTime| t.zone.clone();
        let mut event = Event {
            kind: EventKind::Occurrence,
            series_id: Some(self.item.id.clone()),
            original_start: Some(fmt_utc(original)),
            start: EventTime {
                utc: fmt_utc(original),
                zone: zone(&base.start),
            },
            end: EventTime {
                utc: fmt_utc(original + self.length),
                zone: zone(&base.end),
            },
            series: None,
            ..base.clone()
        };
        if let Some(m) = self
            .modified
            .get(&original)
            .and_then(|i| base.series.as_ref()?.modified.get(*i))
        {
            event.kind = EventKind::Exception;
            event.start = m.start.clone();
            event.end = m.end.clone();
            event.show_as = m.show_as;
            if m.subject.is_some() {
                event.subject = m.subject.clone();
            }
            if m.location.is_some() {
                event.location = m.location.clone();
            }
            if m.body.is_some() {
                event.body = m.body.clone();
            }
        }
        MailboxItem {
            id: occurrence_id(&self.item.id, self.date_of(original)),
            version: self.item.version.clone(),
            removed: None,
            body: Some(MailboxBody::Event(event)),
        }
    }

    fn times(item: &MailboxItem) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let Some(MailboxBody::Event(e)) = &item.body else {
            return None;
        };
        Some((
            parse_utc("", &e.start.utc).ok()?,
            parse_utc("", &e.end.utc).ok()?,
        ))
    }

    /// The occurrences overlapping `window`, moved ones wherever their series had them.
    fn in_window(&self, window: Window) -> Result<Vec<MailboxItem>, PluginError> {
        let mut originals: BTreeSet<DateTime<Utc>> = self
            .starts(
                window.start - self.length,
                window.end + Duration::seconds(1),
            )?
            .into_iter()
            .collect();
        originals.extend(self.modified.keys().copied());
        Ok(originals
            .into_iter()
            .filter(|o| !self.deleted.contains(o))
            .map(|o| self.occurrence(o))
            .filter(|i| Self::times(i).is_some_and(|(s, e)| window.overlaps(s, e)))
            .collect())
    }
}

/// The occurrences of a series master item that overlap `window` (none: the series' id, out
/// of scope, so what was linked to its occurrences is checked); any other item as it is.
pub fn occurrences(item: MailboxItem, window: Window) -> Result<Vec<MailboxItem>, PluginError> {
    let Some(master) = Master::of(&item)? else {
        return Ok(vec![item]);
    };
    let found = master.in_window(window)?;
    if found.is_empty() {
        return Ok(vec![removed(&item.id, Removal::OutOfScope)]);
    }
    Ok(found)
}

/// Every series master of `items` replaced by its occurrences in `window`.
pub fn expand_items(
    items: Vec<MailboxItem>,
    window: Window,
) -> Result<Vec<MailboxItem>, PluginError> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.extend(occurrences(item, window)?);
    }
    Ok(out)
}

/// The keys a lookup in a `series=occurrences` scope reads from the service: an occurrence id
/// (bare or `id:`) becomes `id:<series id>`, other keys stay; each once.
pub fn series_keys(keys: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(keys.len());
    for key in keys {
        let id = key.strip_prefix("id:").unwrap_or(key);
        let read = match split_occurrence_id(id) {
            Some((series, _)) => format!("id:{series}"),
            None => key.clone(),
        };
        if !out.contains(&read) {
            out.push(read);
        }
    }
    out
}

/// The answer to a lookup of `keys` in a `series=occurrences` scope, from what the service
/// answered for [`series_keys`]: an asked occurrence is taken from its series wherever it
/// falls, or reported deleted; any other item found is answered as [`occurrences`] in `window`.
pub fn answer_lookup(
    keys: &[String],
    found: Vec<MailboxItem>,
    window: Window,
) -> Result<Vec<MailboxItem>, PluginError> {
    let asked: Vec<(&str, &str, NaiveDate)> = keys
        .iter()
        .map(|k| k.strip_prefix("id:").unwrap_or(k))
        .filter_map(|id| split_occurrence_id(id).map(|(s, d)| (id, s, d)))
        .collect();
    let plain = |id: &str| {
        keys.iter()
            .any(|k| k.strip_prefix("id:").unwrap_or(k) == id || k.starts_with("anchor:"))
    };
    let mut out = Vec::new();
    let mut answered: BTreeSet<&str> = BTreeSet::new();
    for item in found {
        for (id, _, date) in asked.iter().filter(|(_, s, _)| *s == item.id) {
            if item.removed.is_none() {
                if let Some(o) = occurrence(&item, *date)? {
                    answered.insert(id);
                    out.push(o);
                }
            }
        }
        let by_occurrence = asked.iter().any(|(_, s, _)| *s == item.id);
        if plain(&item.id) || !by_occurrence {
            out.extend(occurrences(item, window)?);
        }
    }
    out.extend(
        asked
            .iter()
            .filter(|(id, _, _)| !answered.contains(id))
            .map(|(id, _, _)| removed(id, Removal::Deleted)),
    );
    Ok(out)
}

fn removed(id: &str, why: Removal) -> MailboxItem {
    MailboxItem {
        id: id.to_owned(),
        version: None,
        removed: Some(why),
        body: None,
    }
}

/// The occurrence of series master `item` on `date`, wherever it falls; `None` when the series
/// has none that day (never had, or deleted) or `item` is no series master.
pub fn occurrence(item: &MailboxItem, date: NaiveDate) -> Result<Option<MailboxItem>, PluginError> {
    let Some(master) = Master::of(item)? else {
        return Ok(None);
    };
    if let Some(original) = master.modified.keys().find(|o| master.date_of(**o) == date) {
        return Ok((!master.deleted.contains(original)).then(|| master.occurrence(*original)));
    }
    // The day in any zone lies within a day and a half of that day at UTC midnight.
    let noon = date.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc();
    let found = master
        .starts(noon - Duration::hours(38), noon + Duration::hours(38))?
        .into_iter()
        .find(|o| master.date_of(*o) == date && !master.deleted.contains(o));
    Ok(found.map(|o| master.occurrence(o)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::mailbox::{OccurrenceChange, Series, Zone};
    use crate::types::{Sensitivity, ShowAs};

    fn at(s: &str) -> DateTime<Utc> {
        parse_utc("", s).unwrap()
    }

    fn time(utc: &str) -> EventTime {
        EventTime {
            utc: utc.into(),
            zone: Some(Zone {
                iana: "Europe/Berlin".into(),
                windows: Some("W. Europe Standard Time".into()),
            }),
        }
    }

    /// Weekly on Tuesdays at 09:00 Berlin from 2026-10-06, ten times; the third moved to
    /// 14:00 and renamed, the fourth deleted.
    fn weekly() -> MailboxItem {
        let series = Series {
            rrule: "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;COUNT=10".into(),
            zone: Zone {
                iana: "Europe/Berlin".into(),
                windows: None,
            },
            modified: vec![OccurrenceChange {
                original_start: "2026-10-20T07:00:00Z".into(),
                id: None,
                start: time("2026-10-20T12:00:00Z"),
                end: time("2026-10-20T12:30:00Z"),
                subject: Some("Standup (moved)".into()),
                location: None,
                body: None,
                show_as: ShowAs::Busy,
            }],
            deleted: vec!["2026-10-27T08:00:00Z".into()],
        };
        MailboxItem {
            id: "AAMk=".into(),
            version: Some("ck1".into()),
            removed: None,
            body: Some(MailboxBody::Event(Event {
                kind: EventKind::SeriesMaster,
                series_id: None,
                original_start: None,
                subject: Some("Standup".into()),
                start: time("2026-10-06T07:00:00Z"),
                end: time("2026-10-06T07:30:00Z"),
                all_day: false,
                show_as: ShowAs::Busy,
                sensitivity: Sensitivity::Normal,
                series: Some(series),
                organizer: None,
                attendees: Vec::new(),
                location: Some("Room 4".into()),
                categories: Vec::new(),
                body: None,
                reminder_minutes: None,
                anchor: None,
            })),
        }
    }

    fn event(i: &MailboxItem) -> &Event {
        match &i.body {
            Some(MailboxBody::Event(e)) => e,
            _ => panic!("an event"),
        }
    }

    #[test]
    fn a_series_becomes_its_occurrences_in_the_window_wall_clock_across_dst() {
        let window = Window {
            start: at("2026-10-01T00:00:00Z"),
            end: at("2026-11-05T00:00:00Z"),
        };
        let occ = occurrences(weekly(), window).unwrap();
        let ids: Vec<&str> = occ.iter().map(|i| i.id.as_str()).collect();
        // 10-27 is deleted; 11-10 and later are past the window's end.
        assert_eq!(
            ids,
            [
                "AAMk=#2026-10-06",
                "AAMk=#2026-10-13",
                "AAMk=#2026-10-20",
                "AAMk=#2026-11-03"
            ]
        );
        // 09:00 in Berlin is 07:00Z in summer time and 08:00Z after 25 October.
        assert_eq!(event(&occ[1]).start.utc, "2026-10-13T07:00:00Z");
        assert_eq!(event(&occ[3]).start.utc, "2026-11-03T08:00:00Z");
        assert_eq!(event(&occ[3]).end.utc, "2026-11-03T08:30:00Z");
        assert_eq!(event(&occ[3]).kind, EventKind::Occurrence);
        assert_eq!(event(&occ[3]).series_id.as_deref(), Some("AAMk="));
        assert!(event(&occ[3]).series.is_none());
        assert_eq!(event(&occ[3]).location.as_deref(), Some("Room 4"));
        let moved = event(&occ[2]);
        assert_eq!(moved.kind, EventKind::Exception);
        assert_eq!(moved.start.utc, "2026-10-20T12:00:00Z");
        assert_eq!(moved.subject.as_deref(), Some("Standup (moved)"));
        assert_eq!(
            moved.original_start.as_deref(),
            Some("2026-10-20T07:00:00Z")
        );
        assert!(occ.iter().all(|i| i.version.as_deref() == Some("ck1")));
    }

    #[test]
    fn a_moved_occurrence_counts_where_it_went() {
        // A window of the 20th's afternoon only: the moved occurrence, not its original slot.
        let window = Window {
            start: at("2026-10-20T11:00:00Z"),
            end: at("2026-10-20T13:00:00Z"),
        };
        let occ = occurrences(weekly(), window).unwrap();
        assert_eq!(occ.len(), 1);
        assert_eq!(occ[0].id, "AAMk=#2026-10-20");
        let morning = Window {
            start: at("2026-10-20T06:00:00Z"),
            end: at("2026-10-20T08:00:00Z"),
        };
        // None there: the series' own id, out of scope (its linked occurrences get checked).
        let none = occurrences(weekly(), morning).unwrap();
        assert_eq!(none.len(), 1);
        assert_eq!(
            (none[0].id.as_str(), none[0].removed),
            ("AAMk=", Some(Removal::OutOfScope))
        );
    }

    #[test]
    fn an_occurrence_is_found_by_its_date_wherever_it_falls() {
        let master = weekly();
        let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let found = occurrence(&master, date("2026-12-08")).unwrap().unwrap();
        assert_eq!(event(&found).start.utc, "2026-12-08T08:00:00Z");
        assert_eq!(found.id, "AAMk=#2026-12-08");
        assert!(
            occurrence(&master, date("2026-10-27")).unwrap().is_none(),
            "deleted"
        );
        assert!(
            occurrence(&master, date("2026-10-28")).unwrap().is_none(),
            "not a Tuesday"
        );
        assert!(
            occurrence(&master, date("2026-12-15")).unwrap().is_none(),
            "after COUNT"
        );
        let moved = occurrence(&master, date("2026-10-20")).unwrap().unwrap();
        assert_eq!(event(&moved).start.utc, "2026-10-20T12:00:00Z");
    }

    #[test]
    fn a_lookup_answers_asked_occurrences_from_their_series_and_gone_ones_as_deleted() {
        let keys: Vec<String> = [
            "AAMk=#2026-12-08",
            "id:AAMk=#2026-10-27",
            "id:BBB=#2026-10-06",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(series_keys(&keys), ["id:AAMk=", "id:BBB="]);
        let window = Window {
            start: at("2026-10-01T00:00:00Z"),
            end: at("2026-10-10T00:00:00Z"),
        };
        let gone = removed("BBB=", Removal::Deleted);
        let answer = answer_lookup(&keys, vec![weekly(), gone], window).unwrap();
        let got: Vec<(&str, bool)> = answer
            .iter()
            .map(|i| (i.id.as_str(), i.removed.is_some()))
            .collect();
        assert_eq!(
            got,
            [
                ("AAMk=#2026-12-08", false),
                ("id:AAMk=#2026-10-27".trim_start_matches("id:"), true),
                ("BBB=#2026-10-06", true)
            ]
        );
        // A series asked for by its own id answers its occurrences in the window.
        let plain = answer_lookup(&["AAMk=".to_owned()], vec![weekly()], window).unwrap();
        assert_eq!(plain.len(), 1);
        assert_eq!(plain[0].id, "AAMk=#2026-10-06");
        // One with none in the window answers its own id, out of scope.
        let later = Window {
            start: at("2027-06-01T00:00:00Z"),
            end: at("2027-06-10T00:00:00Z"),
        };
        let none = answer_lookup(&["AAMk=".to_owned()], vec![weekly()], later).unwrap();
        assert_eq!(none.len(), 1);
        assert_eq!(none[0].removed, Some(Removal::OutOfScope));
    }

    #[test]
    fn ids_split_only_when_they_end_in_a_date() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        assert_eq!(occurrence_id("A/b+c=", d), "A/b+c=#2026-12-01");
        assert_eq!(
            split_occurrence_id("A/b+c=#2026-12-01"),
            Some(("A/b+c=", d))
        );
        assert_eq!(split_occurrence_id("A/b+c="), None);
        assert_eq!(split_occurrence_id("#2026-12-01"), None);
        assert_eq!(split_occurrence_id("x#tomorrow"), None);
    }

    #[test]
    fn other_items_pass_unchanged_and_a_bad_zone_is_an_error() {
        let mut single = weekly();
        if let Some(MailboxBody::Event(e)) = &mut single.body {
            e.kind = EventKind::Single;
        }
        let window = Window {
            start: at("2026-10-01T00:00:00Z"),
            end: at("2026-11-05T00:00:00Z"),
        };
        assert_eq!(expand_items(vec![single], window).unwrap().len(), 1);
        let mut bad = weekly();
        if let Some(MailboxBody::Event(e)) = &mut bad.body {
            e.series.as_mut().unwrap().zone.iana = "Mars/Olympus".into();
        }
        let err = occurrences(bad, window).unwrap_err();
        assert!(format!("{err:?}").contains("Mars/Olympus"), "{err:?}");
    }

    #[test]
    fn an_occurrence_put_back_in_place_follows_the_pattern() {
        let item = weekly();
        let master = event(&item);
        let moved = master.series.as_ref().unwrap().modified[0].clone();
        assert!(!follows_pattern(&moved, master), "moved and renamed");
        let back = OccurrenceChange {
            start: time("2026-10-20T07:00:00Z"),
            end: time("2026-10-20T07:30:00Z"),
            subject: Some("Standup".into()),
            ..moved.clone()
        };
        assert!(follows_pattern(&back, master));
        // Texts it does not carry are the master's.
        assert!(follows_pattern(
            &OccurrenceChange {
                subject: None,
                ..back.clone()
            },
            master
        ));
        // Any one difference keeps it an exception.
        let differs = [
            OccurrenceChange {
                start: time("2026-10-20T07:05:00Z"),
                ..back.clone()
            },
            OccurrenceChange {
                end: time("2026-10-20T08:00:00Z"),
                ..back.clone()
            },
            OccurrenceChange {
                subject: Some("Standup!".into()),
                ..back.clone()
            },
            OccurrenceChange {
                location: Some("Room 5".into()),
                ..back.clone()
            },
            OccurrenceChange {
                show_as: ShowAs::Tentative,
                ..back.clone()
            },
        ];
        for d in &differs {
            assert!(!follows_pattern(d, master), "{d:?}");
        }
    }
}
