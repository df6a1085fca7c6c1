//! The change cursor of the calendar scopes: "what changed after the newest `lastUpdated` the
//! last pass saw", read with a small overlap. ConnectWise stamps `_info.lastUpdated` to the
//! second, so a write in the same second as the last read, or one committed a moment late with
//! an earlier stamp, would be missed by `lastUpdated > [since]`; the next pass therefore asks
//! `lastUpdated > [since - OVERLAP]` and drops the rows the last pass already reported
//! unchanged (same id, same stamp older than `since`). Rows stamped in `since`'s own second are
//! always reported again: a write after the last read but within that second carries the same
//! stamp, so only the host's comparison can tell it from the row already seen.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use syncbridge_sdk::prelude::*;

/// How far back a pass from a cursor reads again.
pub const OVERLAP_SECS: i64 = 30;

/// The cursor: within a pass `next` (the next page) and what the pass saw so far; between
/// passes `since` and the rows reported within the overlap window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlapCursor {
    /// The next page of this pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The newest `lastUpdated` of the last finished pass; none = a full read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// `(id, lastUpdated)` the last pass reported within the overlap before `since`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reported: Vec<(String, String)>,
    /// The newest `lastUpdated` seen in this pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<String>,
    /// `(id, lastUpdated)` seen in this pass within the overlap before `high`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent: Vec<(String, String)>,
}

/// `2026-03-01T10:00:00Z` → an instant (any RFC 3339 offset is accepted).
pub fn instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// An instant as ConnectWise writes it: `2026-03-01T10:00:00Z`.
pub fn stamp(d: DateTime<Utc>) -> String {
    d.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl OverlapCursor {
    /// Reads a stored cursor; none starts a full read. A pass starts where the last one ended:
    /// its newest stamp and window carry on, so a pass that only reads the overlap back never
    /// moves `since` backwards.
    pub fn parse(cursor: Option<&str>) -> Result<Self, PluginError> {
        let mut c: Self = match cursor {
            None => return Ok(Self::default()),
            Some(c) => serde_json::from_str(c).map_err(|e| {
                PluginError::invalid_field(
                    "cursor",
                    format!("{e}; the stored cursor is not one this connector wrote for this scope (reset the profile's cursor to read everything again)"),
                )
            })?,
        };
        if c.next.is_none() && c.high.is_none() {
            c.high = c.since.clone();
            c.recent = c.reported.clone();
        }
        Ok(c)
    }

    /// The condition of a pass from this cursor (`lastUpdated > [since - overlap]`), if any.
    pub fn condition(&self) -> Result<Option<String>, PluginError> {
        let Some(since) = &self.since else {
            return Ok(None);
        };
        let at = instant(since).ok_or_else(|| {
            PluginError::invalid_field(
                "cursor",
                format!("{since:?} is not a date-time; reset the profile's cursor"),
            )
        })?;
        Ok(Some(format!(
            "lastUpdated > [{}]",
            stamp(at - Duration::seconds(OVERLAP_SECS))
        )))
    }

    /// Notes row `id` stamped `updated`; false when the last pass already reported it so, before
    /// `since`'s second (the overlap read it again), and the row is to be left out.
    pub fn fresh(&mut self, id: &str, updated: Option<&str>) -> bool {
        let Some((updated, at)) = updated.and_then(|u| Some((u, instant(u)?))) else {
            return true;
        };
        let seen = (id.to_owned(), updated.to_owned());
        let before_since = self
            .since
            .as_deref()
            .and_then(instant)
            .is_some_and(|since| at < since);
        let repeat = before_since && self.reported.contains(&seen);
        let high = match self.high.as_deref().and_then(instant) {
            Some(h) if h >= at => h,
            _ => {
                self.high = Some(updated.to_owned());
                at
            }
        };
        let floor = high - Duration::seconds(OVERLAP_SECS);
        if at >= floor && !self.recent.contains(&seen) {
            self.recent.push(seen);
        }
        self.recent
            .retain(|(_, u)| instant(u).is_some_and(|u| u >= floor));
        !repeat
    }

    /// The page: it continues at `next`, or ends the pass with the cursor the next pass
    /// starts from. A pass without `since` is full.
    pub fn page(self, items: Vec<Item>, next: Option<String>) -> Page {
        let full = self.since.is_none();
        let more = next.is_some();
        let cursor = if more {
            Self { next, ..self }
        } else {
            Self {
                next: None,
                since: self.high,
                reported: self.recent,
                high: None,
                recent: Vec::new(),
            }
        };
        Page {
            items,
            cursor: (cursor != Self::default())
                .then(|| serde_json::to_string(&cursor).expect("a cursor serialises")),
            more,
            full,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str) -> Item {
        Item {
            id: id.into(),
            version: None,
            removed: None,
            body: None,
        }
    }

    #[test]
    fn a_pass_from_a_cursor_reads_back_the_overlap_and_drops_what_it_reported() {
        let mut c = OverlapCursor::default();
        assert_eq!(c.condition().unwrap(), None, "no cursor: a full read");
        assert!(c.fresh("1", Some("2026-03-01T10:00:00Z")));
        assert!(c.fresh("2", Some("2026-03-01T10:00:20Z")));
        assert!(c.fresh("3", Some("2026-03-01T09:00:00Z")));
        let page = c.page(vec![item("1"), item("2"), item("3")], None);
        assert!(page.full && !page.more);
        let mut c = OverlapCursor::parse(page.cursor.as_deref()).unwrap();
        assert_eq!(c.since.as_deref(), Some("2026-03-01T10:00:20Z"));
        assert_eq!(
            c.condition().unwrap().as_deref(),
            Some("lastUpdated > [2026-03-01T09:59:50Z]")
        );
        // 1 comes back unchanged through the overlap: dropped; 2 carries `since`'s own stamp,
        // which a later write in that second would too: kept; 4 was written in that second: kept
        assert!(!c.fresh("1", Some("2026-03-01T10:00:00Z")));
        assert!(c.fresh("2", Some("2026-03-01T10:00:20Z")));
        assert!(c.fresh("4", Some("2026-03-01T10:00:20Z")));
        assert!(c.fresh("1", Some("2026-03-01T10:05:00Z")));
        let page = c.page(vec![], None);
        assert!(!page.full);
        let c = OverlapCursor::parse(page.cursor.as_deref()).unwrap();
        assert_eq!(c.since.as_deref(), Some("2026-03-01T10:05:00Z"));
        assert_eq!(
            c.reported,
            vec![("1".to_owned(), "2026-03-01T10:05:00Z".to_owned())],
            "only the overlap window is kept"
        );
    }

    #[test]
    fn a_quiet_pass_keeps_its_window_and_pages_carry_next() {
        let mut c = OverlapCursor {
            since: Some("2026-03-01T10:00:00Z".into()),
            reported: vec![("1".into(), "2026-03-01T10:00:00Z".into())],
            ..Default::default()
        };
        assert!(
            c.fresh("1", Some("2026-03-01T10:00:00Z")),
            "since's own second"
        );
        let page = c.clone().page(vec![], Some("https://x/next".into()));
        assert!(page.more);
        let mid = OverlapCursor::parse(page.cursor.as_deref()).unwrap();
        assert_eq!(mid.next.as_deref(), Some("https://x/next"));
        assert_eq!(mid.reported, c.reported, "the window survives the pages");
        let end = OverlapCursor::parse(c.page(vec![], None).cursor.as_deref()).unwrap();
        assert_eq!(end.since.as_deref(), Some("2026-03-01T10:00:00Z"));
        // a pass that only reads an older row of the window back keeps `since`
        let mut c = OverlapCursor::parse(Some(
            r#"{"since":"2026-03-01T10:00:20Z","reported":[["1","2026-03-01T10:00:00Z"],["2","2026-03-01T10:00:20Z"]]}"#,
        ))
        .unwrap();
        assert!(!c.fresh("1", Some("2026-03-01T10:00:00Z")));
        let end = OverlapCursor::parse(c.page(vec![], None).cursor.as_deref()).unwrap();
        assert_eq!(end.since.as_deref(), Some("2026-03-01T10:00:20Z"));
        assert_eq!(end.reported.len(), 2);
        assert!(OverlapCursor::parse(Some("not json")).is_err());
        let bad = OverlapCursor {
            since: Some("yesterday".into()),
            ..Default::default()
        };
        assert!(bad.condition().is_err());
    }
}
