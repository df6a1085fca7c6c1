//! The cursor of an `emails` pull: JSON, durable, checked when it comes back.
//!
//! ```json
//! {"v":1,"mailbox":"ann@contoso.com","direction":"incoming",
//!  "since":{"at":"2026-01-02T03:04:05Z","seen":[{"id":"…","version":"W/\"1001\""}]},
//!  "next":"https://…/api/data/v9.2/emails?…&$skiptoken=…",
//!  "newest":{"at":"…","seen":[…]}}
//! ```
//!
//! - `since`: where a delta pass starts (`modifiedon ge at`); absent, the pass is full. `seen`
//!   lists the rows read at exactly `at` with their versions: they are not given again unless
//!   they changed (Dataverse writes `modifiedon` to the second, so `gt` could lose a row
//!   changed later in the same second, and plain `ge` would repeat the last row every pass).
//! - `next`: Dataverse's `@odata.nextLink` of the pass under way (it carries the paging
//!   cookie), followed only under the API root's `emails`.
//! - `newest`: the newest `modifiedon` read so far in the pass under way; the last page's
//!   cursor makes it the next pass's `since`.
//!
//! Outgoing passes are always full: their cursor has only `next`, and none after the last page.

use super::scope::{Direction, EmailScope};
use super::time::utc_key;
use crate::{is_guid, is_set_link, text};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use syncbridge_sdk::prelude::*;

/// The cursor format's version.
pub const VERSION: u32 = 1;
/// Rows remembered at one `modifiedon` instant; more are read again (and given again) next pass.
pub const MAX_SEEN: usize = 200;

/// A row read at a mark's instant, with its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seen {
    /// The row's key (`activityid` of e-mails), lower case.
    pub id: String,
    /// `@odata.etag`.
    pub version: Option<String>,
}

/// A `modifiedon` instant and the rows read at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mark {
    /// `modifiedon` as Dataverse wrote it (UTC).
    pub at: String,
    /// Rows read with exactly this `modifiedon`.
    #[serde(default)]
    pub seen: Vec<Seen>,
}

impl Mark {
    /// Whether `row` (an activity: key `activityid`) was read at this mark and has not changed
    /// since.
    pub fn has_seen(&self, row: &Value) -> bool {
        self.has_seen_by(row, "activityid")
    }

    /// Whether `row`, keyed by the column `key`, was read at this mark and has not changed since.
    pub fn has_seen_by(&self, row: &Value, key: &str) -> bool {
        let (Some(id), Some(version)) = (text(row, key), text(row, "@odata.etag")) else {
            return false;
        };
        self.seen.iter().any(|s| {
            s.id.eq_ignore_ascii_case(&id) && s.version.as_deref() == Some(version.as_str())
        })
    }

    /// Takes `row` (an activity: key `activityid`) into account; see [`Mark::observe_by`].
    pub fn observe(mark: &mut Option<Mark>, row: &Value) {
        Self::observe_by(mark, row, "activityid")
    }

    /// Takes `row`, keyed by the column `key`, into account: a newer `modifiedon` starts a new
    /// mark, the same one is remembered (up to [`MAX_SEEN`] rows). Rows without a UTC
    /// `modifiedon` are ignored.
    pub fn observe_by(mark: &mut Option<Mark>, row: &Value, key: &str) {
        let Some(at) = text(row, "modifiedon") else {
            return;
        };
        let Some(instant) = utc_key(&at) else {
            return;
        };
        let seen = Seen {
            id: text(row, key).unwrap_or_default().to_ascii_lowercase(),
            version: text(row, "@odata.etag"),
        };
        match mark {
            Some(m) if utc_key(&m.at).is_some_and(|k| k > instant) => {}
            Some(m) if utc_key(&m.at) == Some(instant) => {
                if m.seen.len() < MAX_SEEN && !m.seen.contains(&seen) {
                    m.seen.push(seen);
                }
            }
            _ => {
                *mark = Some(Mark {
                    at,
                    seen: vec![seen],
                })
            }
        }
    }
}

/// The cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// [`VERSION`].
    pub v: u32,
    /// The scope's mailbox.
    pub mailbox: String,
    /// The scope's direction.
    pub direction: Direction,
    /// Where the pass (delta) started; none: a full pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Mark>,
    /// The next page of the pass under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The newest row read so far in the pass under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<Mark>,
}

fn rejected(why: String) -> PluginError {
    PluginError::invalid_field(
        "cursor",
        format!("{why}; reset the profile's cursor to start a full read of the e-mails"),
    )
}

impl Cursor {
    /// A cursor of `scope` with nothing read yet.
    pub fn new(scope: &EmailScope) -> Self {
        Cursor {
            v: VERSION,
            mailbox: scope.mailbox.clone(),
            direction: scope.direction,
            since: None,
            next: None,
            newest: None,
        }
    }

    /// The cursor as the host stores it.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a cursor serializes")
    }

    /// A cursor given back by the host for `scope`, checked: its format and version, its scope,
    /// its marks (UTC date-times, rows by GUID) and its next link (under `api`'s `emails`).
    pub fn decode(raw: &str, api: &str, scope: &EmailScope) -> Result<Self, PluginError> {
        let c: Cursor = serde_json::from_str(raw.trim()).map_err(|e| {
            rejected(format!(
                "the cursor is not one of this connector's e-mail cursors ({e})"
            ))
        })?;
        if c.v != VERSION {
            return Err(rejected(format!(
                "the cursor has version {}, this connector writes version {VERSION}",
                c.v
            )));
        }
        if c.mailbox != scope.mailbox || c.direction != scope.direction {
            return Err(rejected(format!(
                "the cursor belongs to the scope emails:mailbox={},direction={}, not {scope}",
                c.mailbox,
                c.direction.as_str()
            )));
        }
        for mark in [&c.since, &c.newest].into_iter().flatten() {
            if utc_key(&mark.at).is_none() {
                return Err(rejected(format!(
                    "the cursor's mark {:?} is not a UTC date-time",
                    mark.at
                )));
            }
            if let Some(bad) = mark.seen.iter().find(|s| !is_guid(&s.id)) {
                return Err(rejected(format!(
                    "the cursor's row {:?} is not an activityid",
                    bad.id
                )));
            }
        }
        if c.direction == Direction::Outgoing && (c.since.is_some() || c.newest.is_some()) {
            return Err(rejected(
                "the cursor carries a delta mark, but outgoing e-mail is read in full every pass"
                    .into(),
            ));
        }
        if let Some(next) = &c.next {
            if !is_set_link(api, "emails", next) {
                return Err(rejected(format!(
                    "the cursor's next link is not an emails query under {api}; refusing to send the credential elsewhere"
                )));
            }
        }
        Ok(c)
    }
}
