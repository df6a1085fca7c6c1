//! ConnectWise's `_info/lastUpdated` stamps, and how the calendar scopes read them again.
//! ConnectWise stamps to the second, so a write in the same second as the last read, or one
//! committed a moment late with an earlier stamp, would be missed by `lastUpdated > [since]`;
//! a pass from a cursor therefore asks `lastUpdated > [since - 30 s]` and drops the rows the
//! last pass already reported unchanged (the SDK's [`ChangeCursor`]). Rows stamped in `since`'s
//! own second are always reported again: a write after the last read but within that second
//! carries the same stamp, so only the host's comparison can tell it from the row already seen.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
pub use syncbridge_sdk::changes::{ChangeCursor, Overlap};
use syncbridge_sdk::prelude::*;

/// How the calendar scopes read their change feed again.
pub const OVERLAP: Overlap = Overlap {
    window: Duration::seconds(30),
    same_stamp_again: true,
};

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

/// The condition of a pass from `cursor` (`lastUpdated > [since - overlap]`), if any.
pub fn condition(cursor: &ChangeCursor) -> Result<Option<String>, PluginError> {
    Ok(cursor
        .read_from()?
        .map(|from| format!("lastUpdated > [{}]", stamp(from))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_from_a_cursor_reads_back_the_overlap_and_its_own_second() {
        let mut c = ChangeCursor::parse(None, OVERLAP).unwrap();
        assert_eq!(condition(&c).unwrap(), None, "no cursor: a full read");
        assert!(c.observe("1", Some("2026-03-01T10:00:00Z")));
        assert!(c.observe("2", Some("2026-03-01T10:00:20Z")));
        let page = c.page(vec![], None);
        let mut c = ChangeCursor::parse(page.cursor.as_deref(), OVERLAP).unwrap();
        assert_eq!(
            condition(&c).unwrap().as_deref(),
            Some("lastUpdated > [2026-03-01T09:59:50Z]")
        );
        // 1 comes back unchanged through the overlap: dropped; 2 carries `since`'s own stamp,
        // which a later write in that second would too: kept.
        assert!(!c.observe("1", Some("2026-03-01T10:00:00Z")));
        assert!(c.observe("2", Some("2026-03-01T10:00:20Z")));
        // A cursor this connector stored before the SDK's (`reported` pairs) still reads.
        let c = ChangeCursor::parse(
            Some(r#"{"since":"2026-03-01T10:00:20Z","reported":[["1","2026-03-01T10:00:00Z"]]}"#),
            OVERLAP,
        )
        .unwrap();
        assert_eq!(c.seen.len(), 1);
        let bad = ChangeCursor::parse(Some(r#"{"since":"yesterday"}"#), OVERLAP).unwrap();
        assert!(condition(&bad).is_err());
    }
}
