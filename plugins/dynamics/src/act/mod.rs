//! The rows of a mailbox owner that server-side synchronization keeps in step with Exchange:
//! `appointments:mailbox=<address>`, `recurring-appointments:mailbox=<address>`,
//! `tasks:mailbox=<address>` and `contacts:mailbox=<address>`; see the crate's documentation
//! for the contract, and [`appointment`], [`recurring`], [`task`] and [`contact`] for the
//! mapping of each table.

pub mod appointment;
pub mod columns;
pub mod contact;
pub mod cursor;
pub mod exceptions;
pub mod owner;
pub mod query;
pub mod recurring;
pub mod scope;
pub mod series;
pub mod task;
pub mod write;
pub mod zones;

#[cfg(test)]
mod recurring_tests;
#[cfg(test)]
mod series_tests;
#[cfg(test)]
mod tests;

pub use scope::{ActScope, Kind};
pub use write::write;

use crate::emails::cursor::Mark;
use crate::{is_guid, read_json, request, rows_and_next_of, Config};
use cursor::Cursor;
use serde_json::Value;
use syncbridge_sdk::http::Method;
use syncbridge_sdk::paging;
use syncbridge_sdk::prelude::*;
use zones::Zones;

/// A row of `kind` as an item (a series in its zone among `zones`); none when it cannot be one
/// (see each table's mapping).
pub fn item(kind: Kind, row: &Value, zones: &Zones) -> Option<Item> {
    match kind {
        Kind::Appointments => appointment::item(row, zones),
        Kind::RecurringAppointments => recurring::item(row, zones),
        Kind::Tasks => task::item(row),
        Kind::Contacts => contact::item(row),
    }
}

/// One page of a pass over `scope`.
pub fn pull(cfg: &Config, scope: &ActScope, pull: PullRequest) -> Result<Page, PluginError> {
    let api = cfg.api()?;
    let decoded = match pull.cursor.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(Cursor::decode(raw, &api, scope)?),
    };
    let owner = owner::resolve(&api, &scope.mailbox)?;
    let cursor = match decoded {
        Some(c) if c.owner == owner => c,
        Some(c) => {
            syncbridge_sdk::log::warn!(
                "{scope}: {} now belongs to the Dynamics user {owner}, not {}; reading all of that user's rows again",
                scope.mailbox,
                c.owner
            );
            Cursor::new(scope, &owner)
        }
        None => Cursor::new(scope, &owner),
    };
    let kind = scope.kind;
    let (url, mut newest) = match &cursor.next {
        Some(next) => (next.clone(), cursor.newest.clone()),
        None => (
            query::first_page_url(
                &api,
                kind,
                &owner,
                cursor.since.as_ref().map(|m| m.at.as_str()),
            ),
            cursor.since.clone(),
        ),
    };
    let r = request(Method::Get, url)
        .header(
            "Prefer",
            format!("odata.maxpagesize={}", cfg.page_size_for(pull.max_items)),
        )
        .send()?;
    if !(200..300).contains(&r.status()) {
        return Err(owner::failure(&r, &scope.mailbox, &owner));
    }
    let body = read_json(r)?;
    let (rows, next) = rows_and_next_of(&api, kind.set(), &body)?;
    let changed = changed_rows(kind, cursor.since.as_ref(), &rows, &mut newest);
    let zones = zones_of(&api, kind, &changed)?;
    let items = changed
        .into_iter()
        .filter_map(|row| item(kind, row, &zones))
        .collect();
    let full = cursor.since.is_none();
    Ok(match next {
        Some(next) => {
            let c = Cursor {
                next: Some(next.clone()),
                newest,
                ..cursor
            };
            paging::page(items, Some(c.encode()), None, full)
        }
        None => {
            let done = Cursor {
                since: newest,
                exceptions: cursor.exceptions.clone(),
                ..Cursor::new(scope, &owner)
            };
            paging::page(items, None, Some(done.encode()), full)
        }
    })
}

/// The zones of appointment and series rows (one query when they name any); none for other
/// kinds.
fn zones_of(api: &str, kind: Kind, rows: &[&Value]) -> Result<Zones, PluginError> {
    match kind {
        Kind::Appointments | Kind::RecurringAppointments => zones::resolve(api, rows),
        _ => Ok(Zones::default()),
    }
}

/// The rows of one page that are news: unchanged rows already given at the pass's start mark
/// are left out (so a pass that only reads its edge again asks nothing more); every row read
/// moves `newest`.
pub fn changed_rows<'a>(
    kind: Kind,
    since: Option<&Mark>,
    rows: &'a [Value],
    newest: &mut Option<Mark>,
) -> Vec<&'a Value> {
    let mut changed = Vec::new();
    for row in rows {
        let unchanged = since.is_some_and(|m| m.has_seen_by(row, kind.key()));
        Mark::observe_by(newest, row, kind.key());
        if !unchanged {
            changed.push(row);
        }
    }
    changed
}

/// Lookup keys: row ids (`activityid` or `contactid`), bare or as `id:<guid>`, lower case.
pub fn parse_keys(kind: Kind, keys: &[String]) -> Result<Vec<String>, PluginError> {
    let mut ids = Vec::new();
    for key in keys {
        let k = key.trim();
        let id = k.strip_prefix("id:").unwrap_or(k).trim();
        if !is_guid(id) {
            return Err(PluginError::invalid_field(
                "keys",
                format!(
                    "unknown key {key:?}; use a {} (a GUID, also id:<guid>)",
                    kind.key()
                ),
            ));
        }
        let id = id.to_ascii_lowercase();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// The rows with the keys' ids, whoever owns them; keys not found are absent.
pub fn lookup(cfg: &Config, scope: &ActScope, keys: &[String]) -> Result<Vec<Item>, PluginError> {
    let api = cfg.api()?;
    let ids = parse_keys(scope.kind, keys)?;
    let mut rows = Vec::new();
    for id in &ids {
        let r = request(Method::Get, query::row_url(&api, scope.kind, id)).send()?;
        if r.status() == 404 {
            continue;
        }
        rows.push(read_json(r)?);
    }
    let rows: Vec<&Value> = rows.iter().collect();
    let zones = zones_of(&api, scope.kind, &rows)?;
    Ok(rows
        .into_iter()
        .filter_map(|row| item(scope.kind, row, &zones))
        .collect())
}
