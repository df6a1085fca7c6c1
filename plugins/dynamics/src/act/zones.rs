//! The time zone an appointment or a recurring series was entered in: the row's
//! `utcconversiontimezonecode` ("time zone code that was in use when the record was created"),
//! read through Dataverse's `timezonedefinitions` table (`timezonecode` → `standardname`, a
//! Windows id) and CLDR's table to a tz-database zone.
//!
//! A page of rows costs one `timezonedefinitions` query for the codes its changed rows name
//! (none when they name none: a no-change pass asks nothing more). A row without a code is in
//! UTC. A code Dataverse does not define, or whose zone CLDR does not know, does not read
//! ([`super::recurring::Bad`] names the column): a series is then left out, never placed in a
//! zone it was not entered in; a single appointment keeps its instants without a zone.

use super::recurring::Bad;
use crate::{read_json, request};
use chrono_tz::Tz;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use syncbridge_sdk::http::Method;
use syncbridge_sdk::prelude::*;
use syncbridge_sdk::url;

/// The column naming a row's zone.
pub const COLUMN: &str = "utcconversiontimezonecode";

/// The zone a series is computed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnteredZone {
    /// The tz-database zone.
    pub tz: Tz,
    /// The Windows id Dataverse names it by (`standardname`).
    pub windows: String,
}

/// What Dataverse's `timezonedefinitions` answered for the codes of a page's rows: the Windows id
/// of each code it defines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zones(BTreeMap<i64, String>);

impl Zones {
    /// Definitions as `timezonecode` → `standardname`.
    pub fn of(definitions: impl IntoIterator<Item = (i64, String)>) -> Zones {
        Zones(definitions.into_iter().collect())
    }

    /// The zone of a row: none (UTC) without a code; `Bad` for a code that is not a whole
    /// number, that Dataverse does not define, or whose zone CLDR does not know.
    pub fn zone_of(&self, row: &Value) -> Result<Option<EnteredZone>, Bad> {
        let Some(code) = code(row)? else {
            return Ok(None);
        };
        let windows = self.0.get(&code).ok_or_else(|| Bad {
            column: COLUMN,
            why: format!("is {code}, a code Dataverse's timezonedefinitions does not define"),
        })?;
        let tz = syncbridge_sdk::zones::tz(windows).ok_or_else(|| Bad {
            column: COLUMN,
            why: format!(
                "is {code}, the zone {windows:?}, which CLDR's Windows zone table does not know"
            ),
        })?;
        Ok(Some(EnteredZone {
            tz,
            windows: windows.clone(),
        }))
    }
}

fn code(row: &Value) -> Result<Option<i64>, Bad> {
    match row.get(COLUMN) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| Bad {
            column: COLUMN,
            why: format!("is {v}, not a whole number"),
        }),
    }
}

/// The codes the rows name (rows whose code does not read are left to [`Zones::zone_of`]).
pub fn codes(rows: &[&Value]) -> BTreeSet<i64> {
    rows.iter().filter_map(|r| code(r).ok().flatten()).collect()
}

/// The query of the definitions of `codes`.
pub fn definitions_url(api: &str, codes: &BTreeSet<i64>) -> String {
    let filter = codes
        .iter()
        .map(|c| format!("timezonecode eq {c}"))
        .collect::<Vec<_>>()
        .join(" or ");
    format!(
        "{api}/timezonedefinitions?$select=timezonecode,standardname&$filter={}",
        url::encode_query_value(&filter)
    )
}

/// The definitions of the zones `rows` name: one query, none when they name no zone.
pub fn resolve(api: &str, rows: &[&Value]) -> Result<Zones, PluginError> {
    let codes = codes(rows);
    if codes.is_empty() {
        return Ok(Zones::default());
    }
    let body = read_json(request(Method::Get, definitions_url(api, &codes)).send()?)?;
    let Some(defs) = body.get("value").and_then(Value::as_array) else {
        return Err(PluginError::Remote(RemoteFailure {
            status: 200,
            message: "Dataverse answered the time zone definitions without a `value` array".into(),
        }));
    };
    Ok(Zones::of(defs.iter().filter_map(|d| {
        Some((
            d.get("timezonecode")?.as_i64()?,
            d.get("standardname")?.as_str()?.trim().to_owned(),
        ))
    })))
}
