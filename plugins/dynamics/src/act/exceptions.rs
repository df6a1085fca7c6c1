//! The modified occurrences of recurring series (Dataverse's exception rows).
//!
//! Dataverse keeps an occurrence changed on its own (moved, renamed…) as a row of `appointments`
//! with `instancetypecode` 3 Recurring Exception (4 Recurring Future Exception beyond the
//! expansion window), `seriesid` the master's `activityid` and `originalstartdate` the start it
//! had in the series. Each becomes one of the series' modified occurrences:
//!
//! - original start `originalstartdate`; start/end `scheduledstart`/`scheduledend`, in the
//!   series' zone; subject, location, body `description` (HTML), show-as from the status reason
//!   as for appointments ([`super::appointment::show_as`]); id its `activityid`.
//! - state 2 Canceled: the occurrence is deleted (its original start joins the series' deleted
//!   ones).
//! - a row without an original start, a start or an end that reads is left out with a warning
//!   naming the row and the column.
//!
//! Reads: the exceptions of the series of a page, at most [`SERIES_PER_QUERY`] series to a query
//! (`seriesid eq … or …`); and, once per delta pass, the owner's exception rows changed since the
//! cursor's `exceptions` mark (`modifiedon ge`, ids only), whose series are read again: a change
//! of one occurrence alone need not touch its master's `modifiedon`.

use super::appointment::{self, states};
use super::columns::state;
use super::recurring::{instant, rfc3339};
use crate::emails::cursor::Mark;
use crate::emails::time::utc_key;
use crate::{is_guid, read_json, request, rows_and_next_of, text};
use serde_json::Value;
use std::collections::BTreeMap;
use syncbridge_sdk::http::Method;
use syncbridge_sdk::prelude::*;
use syncbridge_sdk::types::mailbox::{BodyType, EventTime, OccurrenceChange, RichText, Zone};
use syncbridge_sdk::url;

/// Series whose exceptions one query asks for.
pub const SERIES_PER_QUERY: usize = 20;
/// Columns read of each exception row.
pub const SELECT: &str = "activityid,seriesid,originalstartdate,subject,description,scheduledstart,scheduledend,location,statecode,statuscode,modifiedon";
/// The rows that are exceptions of a series.
pub const IS_EXCEPTION: &str = "(instancetypecode eq 3 or instancetypecode eq 4)";
/// Rows per page of the exception reads.
const PAGE_SIZE: u32 = 5000;

/// What an exception row does to its series.
#[derive(Debug, Clone)]
pub enum Exception {
    /// The occurrence was changed.
    Modified(Box<OccurrenceChange>),
    /// The occurrence was canceled: its original start (RFC 3339 UTC).
    Canceled(String),
}

/// The exceptions of some series, by series id (lower case), each series' in original-start
/// order.
pub type BySeries = BTreeMap<String, Vec<Exception>>;

/// The queries for the exceptions of `series` (checked GUIDs), [`SERIES_PER_QUERY`] to a query.
pub fn of_series_urls(api: &str, series: &[String]) -> Vec<String> {
    series
        .chunks(SERIES_PER_QUERY)
        .map(|chunk| {
            let any = chunk
                .iter()
                .map(|id| format!("seriesid eq {id}"))
                .collect::<Vec<_>>()
                .join(" or ");
            format!(
                "{api}/appointments?$select={SELECT}&$filter={}&$orderby={}",
                url::encode_query_value(&format!("{IS_EXCEPTION} and ({any})")),
                url::encode_query_value("originalstartdate asc")
            )
        })
        .collect()
}

/// The query for the owner's exception rows changed since `since` (all without), oldest
/// change first, ids only.
pub fn changed_url(api: &str, owner: &str, since: Option<&str>) -> String {
    let mut filter = format!("_ownerid_value eq {owner} and {IS_EXCEPTION}");
    if let Some(at) = since {
        filter.push_str(&format!(" and modifiedon ge {at}"));
    }
    format!(
        "{api}/appointments?$select=activityid,seriesid,modifiedon&$filter={}&$orderby={}",
        url::encode_query_value(&filter),
        url::encode_query_value("modifiedon asc")
    )
}

/// The query for the owner's most recently changed exception row.
pub fn newest_url(api: &str, owner: &str) -> String {
    format!(
        "{api}/appointments?$select=activityid,modifiedon&$filter={}&$orderby={}&$top=1",
        url::encode_query_value(&format!("_ownerid_value eq {owner} and {IS_EXCEPTION}")),
        url::encode_query_value("modifiedon desc")
    )
}

/// Every row of a query of `appointments`, its next links followed (under the API root only).
fn rows_of(api: &str, first: String) -> Result<Vec<Value>, PluginError> {
    let mut rows = Vec::new();
    let mut next = Some(first);
    while let Some(url) = next.take() {
        let r = request(Method::Get, url)
            .header("Prefer", format!("odata.maxpagesize={PAGE_SIZE}"))
            .send()?;
        let (page, more) = rows_and_next_of(api, "appointments", &read_json(r)?)?;
        rows.extend(page);
        next = more;
    }
    Ok(rows)
}

/// The exceptions of `series` (checked GUIDs, lower case), each in its series' `zones`.
pub fn of_series(
    api: &str,
    series: &[String],
    zones: &BTreeMap<String, Zone>,
) -> Result<BySeries, PluginError> {
    let mut by = BySeries::new();
    for url in of_series_urls(api, series) {
        for row in rows_of(api, url)? {
            let Some(series_id) = text(&row, "seriesid").map(|s| s.to_ascii_lowercase()) else {
                continue;
            };
            let Some(zone) = zones.get(&series_id) else {
                continue;
            };
            if let Some(e) = exception(&row, zone) {
                by.entry(series_id).or_default().push(e);
            }
        }
    }
    Ok(by)
}

/// Where a full pass's later deltas start reading changed exceptions: the owner's newest one
/// (none when the owner has none yet: the next delta reads them all). Read before any of the
/// pass's exceptions, so one changed while the pass runs is read again by the next delta.
pub fn newest(api: &str, owner: &str) -> Result<Option<Mark>, PluginError> {
    let body = read_json(request(Method::Get, newest_url(api, owner)).send()?)?;
    let (rows, _) = rows_and_next_of(api, "appointments", &body)?;
    let mut mark = None;
    for row in &rows {
        Mark::observe(&mut mark, row);
    }
    Ok(mark)
}

/// The series (lower case) of the owner's exception rows changed since `since`, without those
/// seen at its instant that have not changed, and the mark the next read starts from.
pub fn changed_series(
    api: &str,
    owner: &str,
    since: Option<&Mark>,
) -> Result<(Vec<String>, Option<Mark>), PluginError> {
    let rows = rows_of(api, changed_url(api, owner, since.map(|m| m.at.as_str())))?;
    let mut mark = since.cloned();
    let mut series = Vec::new();
    for row in &rows {
        let unchanged = since.is_some_and(|m| m.has_seen(row));
        Mark::observe(&mut mark, row);
        if unchanged {
            continue;
        }
        match text(row, "seriesid").map(|s| s.to_ascii_lowercase()) {
            Some(id) if is_guid(&id) => {
                if !series.contains(&id) {
                    series.push(id);
                }
            }
            _ => syncbridge_sdk::log::warn!(
                "exception {} names no series (seriesid); it is left out",
                text(row, "activityid").unwrap_or_default()
            ),
        }
    }
    Ok((series, mark))
}

fn utc(row: &Value, column: &str) -> Option<String> {
    text(row, column)
        .and_then(|t| instant(&t))
        .map(rfc3339)
        .filter(|t| utc_key(t).is_some())
}

/// An exception row as what it does to its series (times in `zone`); none, with a warning,
/// when a time it needs does not read.
pub fn exception(row: &Value, zone: &Zone) -> Option<Exception> {
    let id = text(row, "activityid")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let Some(original) = utc(row, "originalstartdate") else {
        syncbridge_sdk::log::warn!(
            "exception {id}: its originalstartdate is missing or not a UTC date-time; it is left out"
        );
        return None;
    };
    if state(row) == Some(states::CANCELED) {
        return Some(Exception::Canceled(original));
    }
    let (Some(start), Some(end)) = (utc(row, "scheduledstart"), utc(row, "scheduledend")) else {
        syncbridge_sdk::log::warn!(
            "exception {id}: its scheduledstart or scheduledend is missing or not a UTC date-time; it is left out"
        );
        return None;
    };
    let at = |utc: String| EventTime {
        utc,
        zone: Some(zone.clone()),
    };
    Some(Exception::Modified(Box::new(OccurrenceChange {
        original_start: original,
        id: Some(id),
        start: at(start),
        end: at(end),
        subject: text(row, "subject"),
        location: text(row, "location"),
        body: row
            .get("description")
            .and_then(Value::as_str)
            .filter(|b| !b.trim().is_empty())
            .map(|b| RichText {
                content: b.to_owned(),
                body_type: BodyType::Html,
            }),
        show_as: appointment::show_as(crate::act::columns::status(row)),
    })))
}
