//! `recurring-appointments:mailbox=<address>` through `mailbox-api` (WIT 0.1.3): each recurring
//! appointment master as a mailbox `series-master` event with its modified and deleted
//! occurrences, which the core `appointment` record has no place for.
//!
//! - The master reads as in [`super::recurring`] (the pattern as an RRULE in the zone it was
//!   entered in, `deletedexceptionslist` as deleted occurrences); the event's zone is that zone
//!   (by its Windows id, CLDR's tz-database name beside it), UTC when the row names none; body
//!   HTML (Dataverse's description).
//! - Its exception rows ([`super::exceptions`]) are its modified occurrences, a canceled one a
//!   deleted occurrence; an exception whose original start is already deleted is left out.
//! - A pass reads the masters as the core scope does; each page then asks for its live series'
//!   exceptions (one query per [`super::exceptions::SERIES_PER_QUERY`] series). A delta pass
//!   first reads which exceptions changed since the cursor's `exceptions` mark and reads their
//!   series again (a change of one occurrence need not touch its master); a full pass first
//!   notes the newest exception, where the next delta starts.
//! - `lookup-mailbox-items`: the masters by id, with their exceptions.
//! - `push-mailbox`: `update` of the master's two-way fields, from an `event` body: `subject`,
//!   `start`, `end`, `all_day`, `location`, `body` (the core scope's fields); `series` and the
//!   other actions are refused as there (the pattern and its occurrences flow from Dynamics
//!   only).

use super::cursor::Cursor;
use super::exceptions::{self, BySeries, Exception};
use super::scope::ActScope;
use crate::Config;
use std::collections::BTreeMap;
use syncbridge_sdk::prelude::*;
use syncbridge_sdk::types::mailbox::{
    BodyType, Event, MailboxBody, MailboxItem, MailboxPage, MailboxWriteOp, Zone,
};
use syncbridge_sdk::{appointments, batch, zones};

/// The scope kinds `mailbox-scopes` lists: the names of `recurring-appointments` (the host
/// compares them without case).
pub const SCOPE_NAMES: &[&str] = &[
    "recurring-appointments",
    "recurring_appointments",
    "recurringappointments",
];

/// The zone a master's times name (its Windows id), UTC when none.
pub fn zone_of(a: &Appointment) -> Zone {
    zones::zone_or_utc(a.start.time_zone.as_deref())
}

/// A master (a core appointment with its recurrence) and its exceptions as a series-master
/// event: a canceled exception joins the deleted occurrences, the others are the modified
/// ones (but for an occurrence already deleted).
pub fn event(a: &Appointment, exceptions: &[Exception]) -> Event {
    let mut e = appointments::event_of(a, &zone_of(a), BodyType::Html);
    let Some(series) = &mut e.series else {
        return e;
    };
    for x in exceptions {
        if let Exception::Canceled(original) = x {
            if !series.deleted.contains(original) {
                series.deleted.push(original.clone());
            }
        }
    }
    series.modified = exceptions
        .iter()
        .filter_map(|x| match x {
            Exception::Modified(c) if !series.deleted.contains(&c.original_start) => {
                Some((**c).clone())
            }
            _ => None,
        })
        .collect();
    e
}

/// Core items of the masters as mailbox items, with the exceptions of the live ones.
fn with_exceptions(api: &str, items: Vec<Item>) -> Result<Vec<MailboxItem>, PluginError> {
    let zones: BTreeMap<String, Zone> = items
        .iter()
        .filter_map(|i| match &i.body {
            Some(ItemBody::Appointment(a)) => Some((i.id.clone(), zone_of(a))),
            _ => None,
        })
        .collect();
    let live: Vec<String> = zones.keys().cloned().collect();
    let by: BySeries = if live.is_empty() {
        BySeries::new()
    } else {
        exceptions::of_series(api, &live, &zones)?
    };
    Ok(items
        .into_iter()
        .map(|i| {
            let body = match &i.body {
                Some(ItemBody::Appointment(a)) => Some(MailboxBody::Event(event(
                    a,
                    by.get(&i.id).map(Vec::as_slice).unwrap_or_default(),
                ))),
                _ => None,
            };
            MailboxItem {
                id: i.id,
                version: i.version,
                removed: i.removed,
                body,
            }
        })
        .collect())
}

/// One page of a pass over the series.
pub fn pull(
    cfg: &Config,
    scope: &ActScope,
    request: PullRequest,
) -> Result<MailboxPage, PluginError> {
    let api = cfg.api()?;
    let before = match request.cursor.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(Cursor::decode(raw, &api, scope)?),
    };
    let page = super::pull(cfg, scope, request)?;
    let mut after = match page.cursor.as_deref() {
        Some(raw) => Cursor::decode(raw, &api, scope)?,
        None => {
            return Err(PluginError::Remote(RemoteFailure {
                status: 0,
                message: "the series' pass ended without a cursor; reset the profile's cursor to read every series again".into(),
            }))
        }
    };
    let first = before
        .as_ref()
        .is_none_or(|c| c.next.is_none() || c.owner != after.owner);
    let mut masters = page.items;
    if first {
        if page.full {
            after.exceptions = exceptions::newest(&api, &after.owner)?;
        } else {
            let since = before.as_ref().and_then(|c| c.exceptions.as_ref());
            let (series, mark) = exceptions::changed_series(&api, &after.owner, since)?;
            let again: Vec<String> = series
                .into_iter()
                .filter(|id| !masters.iter().any(|m| &m.id == id))
                .collect();
            if !again.is_empty() {
                masters.extend(super::lookup(cfg, scope, &again)?);
            }
            after.exceptions = mark;
        }
    }
    Ok(MailboxPage {
        items: with_exceptions(&api, masters)?,
        cursor: Some(after.encode()),
        more: page.more,
        full: page.full,
    })
}

/// The series with the keys' ids (`activityid`, bare or `id:<guid>`), with their exceptions.
pub fn lookup(
    cfg: &Config,
    scope: &ActScope,
    keys: &[String],
) -> Result<Vec<MailboxItem>, PluginError> {
    let api = cfg.api()?;
    with_exceptions(&api, super::lookup(cfg, scope, keys)?)
}

/// Writes of the masters' two-way fields.
pub fn push(
    cfg: &Config,
    scope: &ActScope,
    ops: Vec<MailboxWriteOp>,
) -> Result<Vec<WriteResult>, PluginError> {
    let api = cfg.api()?;
    Ok(batch::push_each(ops, |op| {
        let body = match &op.body {
            None => None,
            Some(MailboxBody::Event(e)) => {
                Some(ItemBody::Appointment(appointments::appointment_of(e)))
            }
            Some(_) => {
                return Err(PluginError::invalid_field(
                    "body",
                    "expected an event (a recurring series)",
                ))
            }
        };
        let core = WriteOp {
            op_id: op.op_id.clone(),
            action: op.action,
            target_id: op.target_id.clone(),
            body,
            fields: op.fields.clone(),
        };
        super::write(&api, scope, &core)
    }))
}
