//! The `emails` scope: e-mail activities (`emails` entity set) of one mailbox, as
//! `email-message` items; see the crate's documentation for the contract.

pub mod cursor;
pub mod query;
pub mod row;
pub mod scope;
pub mod time;
pub mod write;

#[cfg(test)]
mod tests;

pub use scope::{Direction, EmailScope, GRAMMAR};
pub use write::write;

use crate::{get_json, is_guid, read_json, request, rows_and_next_of, Config, MAX_PAGE_SIZE};
use cursor::{Cursor, Mark};
use query::{MESSAGE_IDS_PER_QUERY, SET};
use serde_json::Value;
use syncbridge_sdk::http::Method;
use syncbridge_sdk::paging;
use syncbridge_sdk::prelude::*;

/// One page of a pass over `scope`.
pub fn pull(cfg: &Config, scope: &EmailScope, request: PullRequest) -> Result<Page, PluginError> {
    let api = cfg.api()?;
    let cursor = match request.cursor.as_deref().map(str::trim) {
        None | Some("") => Cursor::new(scope),
        Some(raw) => Cursor::decode(raw, &api, scope)?,
    };
    let (url, mut newest) = match &cursor.next {
        Some(next) => (next.clone(), cursor.newest.clone()),
        None => (
            query::first_page_url(&api, scope, cursor.since.as_ref().map(|m| m.at.as_str())),
            cursor.since.clone(),
        ),
    };
    let body = get_json(&url, Some(cfg.page_size_for(request.max_items)))?;
    let (rows, next) = rows_and_next_of(&api, SET, &body)?;
    let items = page_items(scope, cursor.since.as_ref(), &rows, &mut newest);
    let full = cursor.since.is_none();
    let carry = |next: Option<String>, newest: Option<Mark>| Cursor {
        next,
        newest,
        ..cursor.clone()
    };
    Ok(match (scope.direction, next) {
        (_, Some(next)) => {
            let c = carry(Some(next.clone()), newest);
            paging::page(items, Some(c.encode()), None, full)
        }
        (Direction::Incoming, None) => {
            let done = Cursor {
                since: newest,
                ..Cursor::new(scope)
            };
            paging::page(items, None, Some(done.encode()), full)
        }
        (Direction::Outgoing, None) => paging::page(items, None, None, full),
    })
}

/// The items of one page's rows: unchanged rows already given at the pass's start mark are left
/// out, incoming e-mail must name the mailbox among its To/Cc recipients; every row read moves
/// `newest` (incoming only: outgoing passes are full).
pub fn page_items(
    scope: &EmailScope,
    since: Option<&Mark>,
    rows: &[Value],
    newest: &mut Option<Mark>,
) -> Vec<Item> {
    let mut items = Vec::new();
    for row in rows {
        if scope.direction == Direction::Incoming {
            let unchanged = since.is_some_and(|m| m.has_seen(row));
            Mark::observe(newest, row);
            if unchanged {
                continue;
            }
        }
        let Some(item) = row::email_item(row) else {
            continue;
        };
        if scope.direction == Direction::Incoming && !row::addressed_to(&item, &scope.mailbox) {
            continue;
        }
        items.push(item);
    }
    items
}

/// Lookup keys: internet message ids and activity ids.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Keys {
    /// `messageid:<internet message id>`.
    pub message_ids: Vec<String>,
    /// Bare activity ids or `id:<guid>`, lower case.
    pub ids: Vec<String>,
}

/// Splits lookup keys: `messageid:<internet message id>`, an activity id (GUID) or `id:<guid>`.
pub fn parse_keys(keys: &[String]) -> Result<Keys, PluginError> {
    let mut out = Keys::default();
    for key in keys {
        let k = key.trim();
        if k.len() >= 10 && k.is_char_boundary(10) && k[..10].eq_ignore_ascii_case("messageid:") {
            let id = k[10..].trim();
            if id.is_empty() {
                return Err(PluginError::invalid_field(
                    "keys",
                    format!("{key:?} names no message id"),
                ));
            }
            if !out.message_ids.iter().any(|m| m == id) {
                out.message_ids.push(id.to_owned());
            }
            continue;
        }
        let id = k.strip_prefix("id:").unwrap_or(k).trim();
        if !is_guid(id) {
            return Err(PluginError::invalid_field(
                "keys",
                format!("unknown key {key:?}; use messageid:<internet message id> or an activityid (a GUID, also id:<guid>)"),
            ));
        }
        let id = id.to_ascii_lowercase();
        if !out.ids.contains(&id) {
            out.ids.push(id);
        }
    }
    Ok(out)
}

/// The e-mails with the keys' message ids or activity ids, whatever their mailbox or direction
/// (one activity per internet message id in the organization); keys not found are absent.
pub fn lookup(
    cfg: &Config,
    _scope: &EmailScope,
    keys: &[String],
) -> Result<Vec<Item>, PluginError> {
    let api = cfg.api()?;
    let keys = parse_keys(keys)?;
    let mut out: Vec<Item> = Vec::new();
    let keep = |item: Item, out: &mut Vec<Item>| {
        if !out.iter().any(|i| i.id == item.id) {
            out.push(item);
        }
    };
    for chunk in keys.message_ids.chunks(MESSAGE_IDS_PER_QUERY) {
        let mut url = query::lookup_url(&api, chunk);
        loop {
            let body = get_json(&url, Some(cfg.page_size_for(MAX_PAGE_SIZE)))?;
            let (rows, next) = rows_and_next_of(&api, SET, &body)?;
            for item in rows.iter().filter_map(row::email_item) {
                keep(item, &mut out);
            }
            match next {
                Some(n) => url = n,
                None => break,
            }
        }
    }
    for id in &keys.ids {
        let r = request(Method::Get, query::row_url(&api, id)).send()?;
        if r.status() == 404 {
            continue;
        }
        if let Some(item) = row::email_item(&read_json(r)?) {
            keep(item, &mut out);
        }
    }
    Ok(out)
}
