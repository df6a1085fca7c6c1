//! The cursor of a pull of a mailbox owner's rows: JSON, durable, checked when it comes back.
//!
//! ```json
//! {"v":1,"kind":"tasks","mailbox":"ann@contoso.com","owner":"<systemuserid>",
//!  "since":{"at":"2026-01-02T03:04:05Z","seen":[{"id":"…","version":"W/\"1001\""}]},
//!  "next":"https://…/api/data/v9.2/tasks?…&$skiptoken=…",
//!  "newest":{"at":"…","seen":[…]}}
//! ```
//!
//! A recurring series' cursor may also carry `"exceptions":{"at":…,"seen":[…]}`, where the next
//! read of changed exception rows starts ([`super::exceptions`]).
//!
//! `since`, `next` and `newest` work as in the `emails` cursor ([`crate::emails::cursor`]): a
//! delta pass reads `modifiedon ge since.at` without the rows seen at that instant that have not
//! changed. `owner` is the `systemuserid` the pass filtered on: when the address now belongs to
//! another user, the cursor no longer describes the scope's rows and a full pass starts over.

use super::scope::{ActScope, Kind};
use crate::emails::cursor::Mark;
use crate::emails::time::utc_key;
use crate::{is_guid, is_set_link};
use serde::{Deserialize, Serialize};
use syncbridge_sdk::prelude::*;

/// The cursor format's version.
pub const VERSION: u32 = 1;

/// The cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// [`VERSION`].
    pub v: u32,
    /// The scope's table.
    pub kind: Kind,
    /// The scope's mailbox.
    pub mailbox: String,
    /// The owner's `systemuserid` the pass filtered on, lower case.
    pub owner: String,
    /// Where the pass (delta) started; none: a full pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Mark>,
    /// The next page of the pass under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The newest row read so far in the pass under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<Mark>,
    /// Recurring series only: where the next read of changed modified occurrences (exception
    /// rows, [`super::exceptions`]) starts; none: from the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exceptions: Option<Mark>,
}

fn rejected(why: String, kind: Kind) -> PluginError {
    PluginError::invalid_field(
        "cursor",
        format!(
            "{why}; reset the profile's cursor to start a full read of the {}",
            kind.name()
        ),
    )
}

impl Cursor {
    /// A cursor of `scope` owned by `owner` with nothing read yet.
    pub fn new(scope: &ActScope, owner: &str) -> Self {
        Cursor {
            v: VERSION,
            kind: scope.kind,
            mailbox: scope.mailbox.clone(),
            owner: owner.to_ascii_lowercase(),
            since: None,
            next: None,
            newest: None,
            exceptions: None,
        }
    }

    /// The cursor as the host stores it.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a cursor serializes")
    }

    /// A cursor given back by the host for `scope`, checked: its format and version, its scope,
    /// its owner and marks (GUIDs, UTC date-times) and its next link (under `api`'s entity set).
    pub fn decode(raw: &str, api: &str, scope: &ActScope) -> Result<Self, PluginError> {
        let kind = scope.kind;
        let c: Cursor = serde_json::from_str(raw.trim()).map_err(|e| {
            rejected(
                format!("the cursor is not one this connector wrote for {scope} ({e})"),
                kind,
            )
        })?;
        if c.v != VERSION {
            return Err(rejected(
                format!(
                    "the cursor has version {}, this connector writes version {VERSION}",
                    c.v
                ),
                kind,
            ));
        }
        if c.kind != kind || c.mailbox != scope.mailbox {
            return Err(rejected(
                format!(
                    "the cursor belongs to the scope {}:mailbox={}, not {scope}",
                    c.kind.name(),
                    c.mailbox
                ),
                kind,
            ));
        }
        if !is_guid(&c.owner) {
            return Err(rejected(
                format!("the cursor's owner {:?} is not a systemuserid", c.owner),
                kind,
            ));
        }
        for mark in [&c.since, &c.newest, &c.exceptions].into_iter().flatten() {
            if utc_key(&mark.at).is_none() {
                return Err(rejected(
                    format!("the cursor's mark {:?} is not a UTC date-time", mark.at),
                    kind,
                ));
            }
            if let Some(bad) = mark.seen.iter().find(|s| !is_guid(&s.id)) {
                return Err(rejected(
                    format!("the cursor's row {:?} is not a {}", bad.id, kind.key()),
                    kind,
                ));
            }
        }
        if let Some(next) = &c.next {
            if !is_set_link(api, kind.set(), next) {
                return Err(rejected(
                    format!(
                        "the cursor's next link is not a {} query under {api}; refusing to send the credential elsewhere",
                        kind.set()
                    ),
                    kind,
                ));
            }
        }
        Ok(c)
    }
}
