//! Writing a series' exceptions: after the master is created (or its `series` updated), each
//! deleted occurrence is deleted and each modified one updated. Occurrences are found by their
//! `OriginalStart`: GetItem of `OccurrenceItemId`s by instance index, 50 at a time, until every
//! start is found or the series ends.

use crate::error::EwsError;
use crate::map::{body_prop, changes, utc, Prop};
use crate::soap::{self, Target};
use crate::xml::{escape, Elem};
use std::collections::BTreeMap;
use syncbridge_sdk::types::mailbox::{OccurrenceChange, Series};
use syncbridge_sdk::types::PluginError;

const BATCH: u32 = 50;
/// Instance indexes searched at most (a daily series of almost three years).
const MAX_INDEX: u32 = 1000;

/// `GetItem` of occurrences `from..to` (instance indexes) of a master, with their `OriginalStart`.
pub fn get_occurrences(master: &str, from: u32, to: u32) -> String {
    let ids: String = (from..to)
        .map(|i| {
            format!(
                r#"<t:OccurrenceItemId RecurringMasterId="{}" InstanceIndex="{i}"/>"#,
                escape(master)
            )
        })
        .collect();
    format!(
        r#"<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="calendar:OriginalStart"/></t:AdditionalProperties></m:ItemShape><m:ItemIds>{ids}</m:ItemIds></m:GetItem>"#
    )
}

/// The occurrence ids of `master` whose original starts (RFC 3339 UTC) are in `starts`.
pub fn occurrences_by_start(
    target: &Target,
    master: &str,
    starts: &[String],
) -> Result<BTreeMap<String, String>, PluginError> {
    let mut found = BTreeMap::new();
    let last = starts.iter().max().cloned().unwrap_or_default();
    let mut from = 1;
    while from <= MAX_INDEX && found.len() < starts.len() {
        let resp = soap::call(target, &get_occurrences(master, from, from + BATCH))?;
        let mut any = false;
        let mut passed = false;
        for msg in soap::messages(&resp) {
            match msg {
                Ok(m) => {
                    let Some(item) = m.child("Items").and_then(|i| i.children.first()) else {
                        continue;
                    };
                    any = true;
                    let id = item
                        .child("ItemId")
                        .and_then(|i| i.attr("Id"))
                        .map(str::to_owned);
                    let original = item.text_of("OriginalStart").and_then(utc);
                    if let (Some(id), Some(original)) = (id, original) {
                        passed |= original > last;
                        if starts.contains(&original) {
                            found.insert(original, id);
                        }
                    }
                }
                // Deleted occurrences and indexes past the end of the series.
                Err(
                    EwsError::NotFound { .. } | EwsError::Invalid { .. } | EwsError::Other { .. },
                ) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if !any || passed {
            break;
        }
        from += BATCH;
    }
    Ok(found)
}

fn change_props(c: &OccurrenceChange) -> Vec<Prop> {
    let at = |name: &'static str, v: &str| {
        Prop::text(&format!("calendar:{name}"), name, utc(v).as_deref())
    };
    let mut props = vec![at("Start", &c.start.utc), at("End", &c.end.utc)];
    if let Some(s) = &c.subject {
        props.push(Prop::text("item:Subject", "Subject", Some(s)));
    }
    if let Some(l) = &c.location {
        props.push(Prop::text("calendar:Location", "Location", Some(l)));
    }
    if c.body.is_some() {
        props.push(body_prop(c.body.as_ref()));
    }
    let show = crate::map::event::show_as_text(c.show_as);
    props.push(Prop::text(
        "calendar:LegacyFreeBusyStatus",
        "LegacyFreeBusyStatus",
        Some(show),
    ));
    props
}

/// Deletes the series' deleted occurrences and writes its modified ones.
pub fn write_exceptions(target: &Target, master: &str, series: &Series) -> Result<(), PluginError> {
    if series.deleted.is_empty() && series.modified.is_empty() {
        return Ok(());
    }
    let norm = |s: &str| utc(s).unwrap_or_else(|| s.to_owned());
    let mut starts: Vec<String> = series.deleted.iter().map(|s| norm(s)).collect();
    starts.extend(series.modified.iter().map(|m| norm(&m.original_start)));
    let ids = occurrences_by_start(target, master, &starts)?;
    let missing: Vec<&String> = starts.iter().filter(|s| !ids.contains_key(*s)).collect();
    if !missing.is_empty() {
        return Err(PluginError::invalid_field(
            "series",
            format!(
                "the series has no occurrence starting at {}",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let updates: String = series
        .modified
        .iter()
        .map(|m| {
            let id = &ids[&norm(&m.original_start)];
            format!(
                r#"<t:ItemChange><t:ItemId Id="{}"/><t:Updates>{}</t:Updates></t:ItemChange>"#,
                escape(id),
                changes("CalendarItem", &change_props(m))
            )
        })
        .collect();
    if !updates.is_empty() {
        let body = format!(
            r#"<m:UpdateItem ConflictResolution="AlwaysOverwrite" SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges>{updates}</m:ItemChanges></m:UpdateItem>"#
        );
        check_all(&soap::call(target, &body)?)?;
    }
    let deleted: Vec<String> = series
        .deleted
        .iter()
        .map(|s| ids[&norm(s)].clone())
        .collect();
    if !deleted.is_empty() {
        check_all(&soap::call(target, &crate::ops::delete_item(&deleted))?)?;
    }
    Ok(())
}

fn check_all(resp: &Elem) -> Result<(), PluginError> {
    for m in soap::messages(resp) {
        m?;
    }
    Ok(())
}
