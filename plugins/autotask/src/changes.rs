//! Autotask's modification stamps, and how its calendar scopes read them again: from 5 s
//! before the newest modification a pass saw (rows committed late with an earlier time), the
//! rows already read at that edge skipped (the SDK's [`ChangeCursor`]). Autotask stamps to the
//! millisecond, so a row with the stamp already seen is a repeat.

use chrono::{DateTime, TimeDelta, Utc};
/// Autotask's date-times are RFC 3339, or without an offset (UTC, as the REST API reports them).
pub use syncbridge_sdk::changes::parse_stamp as parse_time;
pub use syncbridge_sdk::changes::{ChangeCursor, Overlap};

/// How the calendar scopes (and `contacts:owner=`) read their change feed again.
pub const OVERLAP: Overlap = Overlap {
    window: TimeDelta::seconds(5),
    same_stamp_again: false,
};

/// An instant as Autotask writes it: UTC with milliseconds and `Z`.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
