//! The change cursor of the calendar scopes: the newest modification date a pass saw, read
//! again from a little before it (an overlap for rows committed late with an earlier time), with
//! the rows already read at that edge skipped so the overlap does not repeat them.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use syncbridge_sdk::prelude::*;

/// How far before the previous pass's newest modification the next pass starts reading.
pub const OVERLAP_SECONDS: i64 = 5;

/// A pass's cursor: the next page of this pass, or where the next pass starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCursor {
    /// The next page of this pass (`pageDetails.nextPageUrl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The newest modification of the previous pass; none = a full pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// `id@modified` of the previous pass's rows within the overlap before `since`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<String>,
    /// The newest modification seen in this pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<String>,
    /// `id@modified` of this pass's rows within the overlap before `high`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edge: Vec<String>,
}

/// Parses an Autotask date-time (`2026-03-02T12:00:00Z`, with or without fractions; one
/// without an offset is UTC, as the REST API reports them).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
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

/// An instant as Autotask writes it: UTC with milliseconds and `Z`.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn key(id: &str, modified: &str) -> String {
    format!("{id}@{modified}")
}

impl ChangeCursor {
    /// Reads a stored cursor; none starts a full pass.
    pub fn parse(cursor: Option<&str>) -> Result<Self, PluginError> {
        match cursor {
            None => Ok(Self::default()),
            Some(c) => serde_json::from_str(c).map_err(|e| {
                PluginError::invalid_field(
                    "cursor",
                    format!("{e}; the stored cursor is not one this connector wrote (reset the profile's cursor to read everything again)"),
                )
            }),
        }
    }

    /// Where this pass reads from (`modified >= …`): the previous pass's newest modification
    /// less the overlap; none for a full pass.
    pub fn read_from(&self) -> Option<String> {
        let since = parse_time(self.since.as_deref()?)?;
        Some(format_time(since - TimeDelta::seconds(OVERLAP_SECONDS)))
    }

    /// Notes a row read in this pass; false when the previous pass already read it unchanged
    /// (the overlap's repeat), which the caller drops.
    pub fn observe(&mut self, id: &str, modified: Option<&str>) -> bool {
        let Some(m) = modified.filter(|m| !m.is_empty()) else {
            return true;
        };
        let k = key(id, m);
        if self.seen.contains(&k) {
            return false;
        }
        let Some(t) = parse_time(m) else {
            return true;
        };
        let high = self.high.as_deref().and_then(parse_time);
        if high.is_none_or(|h| t > h) {
            self.high = Some(format_time(t));
            let cutoff = t - TimeDelta::seconds(OVERLAP_SECONDS);
            self.edge.retain(|e| {
                e.rsplit_once('@')
                    .and_then(|(_, m)| parse_time(m))
                    .is_some_and(|et| et >= cutoff)
            });
        }
        let cutoff = self
            .high
            .as_deref()
            .and_then(parse_time)
            .map(|h| h - TimeDelta::seconds(OVERLAP_SECONDS));
        if cutoff.is_none_or(|c| t >= c) && !self.edge.contains(&k) {
            self.edge.push(k);
        }
        true
    }

    /// The page: it continues at `next`, or ends the pass with the cursor the next pass starts
    /// from (`full` when this pass had no `since`).
    pub fn page(self, items: Vec<Item>, next: Option<String>) -> Page {
        let full = self.since.is_none();
        let more = next.is_some();
        let cursor = if more {
            Self { next, ..self }
        } else {
            // The next pass starts at the newest modification either pass saw; rows of the
            // previous edge still within the new overlap stay skipped.
            let prev = self.since.as_deref().and_then(parse_time);
            let high = self.high.as_deref().and_then(parse_time);
            let since = match (prev, high) {
                (Some(p), Some(h)) => Some(p.max(h)),
                (p, h) => p.or(h),
            };
            let mut seen = self.edge;
            if let (Some(s), Some(p)) = (since, prev) {
                if p >= s - TimeDelta::seconds(OVERLAP_SECONDS) {
                    for k in self.seen {
                        if !seen.contains(&k) {
                            seen.push(k);
                        }
                    }
                }
            }
            Self {
                since: since.map(format_time),
                seen,
                ..Self::default()
            }
        };
        let cursor = (cursor != Self::default())
            .then(|| serde_json::to_string(&cursor).expect("a cursor serialises"));
        Page {
            items,
            cursor,
            more,
            full,
        }
    }
}
