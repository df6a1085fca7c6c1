//! "Modified since" change feeds (feature `changes`).
//!
//! Services without a delta token answer "rows modified at or after T" instead (Autotask
//! `lastModifiedDate`, ConnectWise `_info/lastUpdated`). A [`ChangeCursor`] reads such a feed:
//! a pass reads its pages and notes the newest stamp it saw, and the next pass starts there.
//!
//! An [`Overlap`] says how far before that stamp the next pass reads again: rows committed a
//! moment late with an earlier stamp are then not missed. The rows the last pass reported within
//! the overlap are remembered with their stamps, and a row that comes back with the same stamp
//! is dropped ([`ChangeCursor::observe`] answers false), so the overlap repeats nothing. A
//! service that stamps coarsely (ConnectWise: to the second) can stamp a later write with the
//! stamp already seen; [`Overlap::same_stamp_again`] reports the rows of the newest stamp again,
//! and the host's comparison tells whether they changed.
//!
//! The cursor the host stores is JSON: `next` (the next page of a pass), `since` (where the next
//! pass starts), `seen` (`[id, stamp]` pairs reported within the overlap), and within a pass
//! `high` and `edge` (the same for the pass so far). A bare URL, as older connectors stored
//! their next page, continues that page.

use crate::types::{Item, Page, PluginError};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How a change feed is read again from before the last pass's newest stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overlap {
    /// How far before the last pass's newest stamp the next pass reads.
    pub window: TimeDelta,
    /// Whether rows stamped with the newest stamp itself are reported again (a service that
    /// stamps coarsely gives a later write in the same tick the same stamp).
    pub same_stamp_again: bool,
}

impl Default for Overlap {
    fn default() -> Self {
        Overlap::NONE
    }
}

fn no_overlap() -> Overlap {
    Overlap::NONE
}

impl Overlap {
    /// No overlap: the next pass reads from the newest stamp itself and reports its rows again.
    pub const NONE: Overlap = Overlap {
        window: TimeDelta::zero(),
        same_stamp_again: true,
    };
}

/// A row reported with its stamp: stored as `[id, stamp]` (older cursors: `"id@stamp"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub id: String,
    pub stamp: String,
}

impl Serialize for Seen {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&self.id, &self.stamp).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Seen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Pair(String, String),
            Joined(String),
        }
        match Stored::deserialize(d)? {
            Stored::Pair(id, stamp) => Ok(Seen { id, stamp }),
            Stored::Joined(s) => s
                .rsplit_once('@')
                .map(|(id, stamp)| Seen {
                    id: id.to_owned(),
                    stamp: stamp.to_owned(),
                })
                .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not id@stamp"))),
        }
    }
}

/// The cursor of a "modified since" feed: the next page of a pass, or where the next pass
/// starts (see the module).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCursor {
    /// How the feed is read again (the connector's, not stored).
    #[serde(skip, default = "no_overlap")]
    pub overlap: Overlap,
    /// The next page of this pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The newest stamp of the last finished pass; none = a full read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The rows the last pass reported within the overlap before `since`.
    #[serde(default, alias = "reported", skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<Seen>,
    /// The newest stamp of this pass so far (from `since` on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<String>,
    /// The rows within the overlap before `high`, this pass's and the last pass's.
    #[serde(default, alias = "recent", skip_serializing_if = "Vec::is_empty")]
    pub edge: Vec<Seen>,
}

/// A stamp as an instant: RFC 3339, or without an offset (UTC, as Autotask reports them).
pub fn parse_stamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
}

fn stamp_error(what: &str, s: &str) -> PluginError {
    PluginError::invalid_field(
        "cursor",
        format!(
            "{what} {s:?} is not a date-time; reset the profile's cursor to read everything again"
        ),
    )
}

impl ChangeCursor {
    /// Reads a stored cursor; none starts a full read. A pass starts where the last one ended:
    /// its newest stamp and the rows at the edge carry on, so a pass that reads only the
    /// overlap back never moves `since` backwards.
    pub fn parse(cursor: Option<&str>, overlap: Overlap) -> Result<Self, PluginError> {
        let mut c: Self = match cursor {
            None => {
                return Ok(Self {
                    overlap,
                    ..Self::default()
                })
            }
            Some(c) if c.starts_with("http://") || c.starts_with("https://") => {
                return Ok(Self {
                    overlap,
                    next: Some(c.to_owned()),
                    ..Self::default()
                })
            }
            Some(c) => serde_json::from_str(c).map_err(|e| {
                PluginError::invalid_field(
                    "cursor",
                    format!("{e}; the stored cursor is not one this connector wrote (reset the profile's cursor to read everything again)"),
                )
            })?,
        };
        c.overlap = overlap;
        if c.next.is_none() && c.high.is_none() {
            c.high = c.since.clone();
            c.edge = c.seen.clone();
        }
        Ok(c)
    }

    /// Where this pass reads from: the last pass's newest stamp less the overlap; none for a
    /// full read.
    pub fn read_from(&self) -> Result<Option<DateTime<Utc>>, PluginError> {
        let Some(since) = &self.since else {
            return Ok(None);
        };
        let at = parse_stamp(since).ok_or_else(|| stamp_error("since", since))?;
        Ok(Some(at - self.overlap.window))
    }

    /// Notes row `id` stamped `stamp`; false when the last pass already reported it with this
    /// stamp (the overlap read it again), and the caller leaves it out. Rows without a stamp
    /// that reads are always reported.
    pub fn observe(&mut self, id: &str, stamp: Option<&str>) -> bool {
        let overlap = self.overlap;
        let Some((stamp, at)) = stamp
            .filter(|s| !s.is_empty())
            .and_then(|s| Some((s, parse_stamp(s)?)))
        else {
            return true;
        };
        let seen = Seen {
            id: id.to_owned(),
            stamp: stamp.to_owned(),
        };
        let since = self.since.as_deref().and_then(parse_stamp);
        let repeat = self.seen.contains(&seen)
            && !(overlap.same_stamp_again && since.is_some_and(|s| at >= s));
        let high = match self.high.as_deref().and_then(parse_stamp) {
            Some(h) if h >= at => h,
            _ => {
                self.high = Some(stamp.to_owned());
                at
            }
        };
        let floor = high - overlap.window;
        self.edge
            .retain(|e| parse_stamp(&e.stamp).is_some_and(|t| t >= floor));
        if at >= floor && !self.edge.contains(&seen) {
            self.edge.push(seen);
        }
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
            let since = self.high.or(self.since);
            let mut seen = self.edge;
            if self.overlap.same_stamp_again {
                // Rows of the newest stamp are reported again anyway.
                seen.retain(|s| Some(&s.stamp) != since.as_ref());
            }
            Self {
                overlap: self.overlap,
                next: None,
                since,
                seen,
                high: None,
                edge: Vec::new(),
            }
        };
        let empty = Self {
            overlap: cursor.overlap,
            ..Self::default()
        };
        Page {
            items,
            cursor: (cursor != empty)
                .then(|| serde_json::to_string(&cursor).expect("a cursor serialises")),
            more,
            full,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FINE: Overlap = Overlap {
        window: TimeDelta::seconds(5),
        same_stamp_again: false,
    };
    const COARSE: Overlap = Overlap {
        window: TimeDelta::seconds(30),
        same_stamp_again: true,
    };

    fn item(id: &str) -> Item {
        Item {
            id: id.into(),
            version: None,
            removed: None,
            body: None,
        }
    }

    fn seen(id: &str, stamp: &str) -> Seen {
        Seen {
            id: id.into(),
            stamp: stamp.into(),
        }
    }

    fn next_pass(page: &Page, overlap: Overlap) -> ChangeCursor {
        ChangeCursor::parse(page.cursor.as_deref(), overlap).unwrap()
    }

    #[test]
    fn the_next_pass_reads_the_overlap_again_and_drops_what_it_reported() {
        let mut c = ChangeCursor::parse(None, FINE).unwrap();
        assert_eq!(c.read_from().unwrap(), None, "no cursor: a full read");
        assert!(c.observe("1", Some("2026-03-01T10:00:00.000Z")));
        assert!(c.observe("2", Some("2026-03-01T10:00:20.000Z")));
        assert!(c.observe("3", Some("2026-03-01T10:00:17.500Z")));
        let page = c.page(vec![item("1"), item("2"), item("3")], None);
        assert!(page.full && !page.more);
        let mut c = next_pass(&page, FINE);
        assert_eq!(c.since.as_deref(), Some("2026-03-01T10:00:20.000Z"));
        assert_eq!(
            c.seen,
            [
                seen("2", "2026-03-01T10:00:20.000Z"),
                seen("3", "2026-03-01T10:00:17.500Z")
            ],
            "only the rows within the overlap are kept"
        );
        assert_eq!(c.read_from().unwrap(), parse_stamp("2026-03-01T10:00:15Z"));
        // 2 comes back unchanged through the overlap: dropped. 3 changed again: kept.
        assert!(!c.observe("2", Some("2026-03-01T10:00:20.000Z")));
        assert!(c.observe("3", Some("2026-03-01T10:00:21.000Z")));
        // A row committed late with a stamp inside the overlap is not missed.
        assert!(c.observe("4", Some("2026-03-01T10:00:19.000Z")));
        let page = c.page(vec![], None);
        assert!(!page.full);
        let c = next_pass(&page, FINE);
        assert_eq!(c.since.as_deref(), Some("2026-03-01T10:00:21.000Z"));
        for row in [
            seen("2", "2026-03-01T10:00:20.000Z"),
            seen("3", "2026-03-01T10:00:21.000Z"),
            seen("4", "2026-03-01T10:00:19.000Z"),
        ] {
            assert!(c.seen.contains(&row), "{row:?} in {:?}", c.seen);
        }
    }

    #[test]
    fn a_coarse_service_reports_the_newest_stamp_again() {
        let stored = r#"{"since":"2026-03-01T10:00:20Z","seen":[["1","2026-03-01T10:00:00Z"],["2","2026-03-01T10:00:20Z"]]}"#;
        let mut c = ChangeCursor::parse(Some(stored), COARSE).unwrap();
        assert!(!c.observe("1", Some("2026-03-01T10:00:00Z")));
        // 2 carries `since`'s own stamp, which a later write in that second would carry too.
        assert!(c.observe("2", Some("2026-03-01T10:00:20Z")));
        // So the cursor does not keep the rows of its newest stamp.
        let end = next_pass(&c.page(vec![], None), COARSE);
        assert_eq!(end.seen, [seen("1", "2026-03-01T10:00:00Z")]);
        // A service with fine stamps drops it.
        let mut fine = ChangeCursor::parse(Some(stored), FINE).unwrap();
        assert!(!fine.observe("2", Some("2026-03-01T10:00:20Z")));
    }

    #[test]
    fn a_quiet_pass_keeps_its_start_and_pages_carry_next() {
        let stored = r#"{"since":"2026-03-01T10:00:20Z","seen":[["1","2026-03-01T10:00:00Z"]]}"#;
        let c = ChangeCursor::parse(Some(stored), COARSE).unwrap();
        let page = c.clone().page(vec![], Some("https://x.test/next".into()));
        assert!(page.more && !page.full);
        let mid = next_pass(&page, COARSE);
        assert_eq!(mid.next.as_deref(), Some("https://x.test/next"));
        assert_eq!(mid.edge, c.seen, "the overlap survives the pages");
        let end = next_pass(&mid.page(vec![], None), COARSE);
        assert_eq!(end.since.as_deref(), Some("2026-03-01T10:00:20Z"));
        assert_eq!(end.seen, c.seen);
        // Without an overlap the cursor is the plain "newest stamp seen".
        let mut c = ChangeCursor::parse(None, Overlap::NONE).unwrap();
        assert!(c.observe("1", Some("2026-01-02T00:00:00Z")));
        assert!(c.observe("2", Some("2026-01-01T00:00:00Z")));
        let page = c.page(vec![], None);
        assert_eq!(
            page.cursor.as_deref(),
            Some(r#"{"since":"2026-01-02T00:00:00Z"}"#)
        );
        let mut c = next_pass(&page, Overlap::NONE);
        assert_eq!(c.read_from().unwrap(), parse_stamp("2026-01-02T00:00:00Z"));
        assert!(
            c.observe("1", Some("2026-01-02T00:00:00Z")),
            "reported again"
        );
    }

    #[test]
    fn cursors_older_connectors_stored_are_read() {
        // Autotask's calendar scopes: `seen`/`edge` as "id@stamp".
        let c = ChangeCursor::parse(
            Some(r#"{"since":"2026-03-01T10:00:20.000Z","seen":["17@2026-03-01T10:00:20.000Z"]}"#),
            FINE,
        )
        .unwrap();
        assert_eq!(c.seen, [seen("17", "2026-03-01T10:00:20.000Z")]);
        // ConnectWise's calendar scopes: `reported`/`recent` as pairs.
        let c = ChangeCursor::parse(
            Some(
                r#"{"next":"https://x.test/p2","since":"2026-03-01T10:00:20Z","reported":[["1","2026-03-01T10:00:00Z"]],"high":"2026-03-01T10:00:30Z","recent":[["5","2026-03-01T10:00:30Z"]]}"#,
            ),
            COARSE,
        )
        .unwrap();
        assert_eq!(c.seen, [seen("1", "2026-03-01T10:00:00Z")]);
        assert_eq!(c.edge, [seen("5", "2026-03-01T10:00:30Z")]);
        // The plain since-cursor, and a bare next-page link.
        let c = ChangeCursor::parse(Some(r#"{"since":"2026-01-02T00:00:00Z"}"#), Overlap::NONE)
            .unwrap();
        assert_eq!(c.since.as_deref(), Some("2026-01-02T00:00:00Z"));
        let c = ChangeCursor::parse(Some("https://x.test/p2"), Overlap::NONE).unwrap();
        assert_eq!(c.next.as_deref(), Some("https://x.test/p2"));
        // Anything else is refused with what to do.
        let e = ChangeCursor::parse(Some("{nope"), FINE).unwrap_err();
        assert!(
            format!("{e:?}").contains("reset the profile's cursor"),
            "{e:?}"
        );
        let bad = ChangeCursor::parse(Some(r#"{"since":"yesterday"}"#), FINE).unwrap();
        assert!(bad.read_from().is_err());
    }
}
