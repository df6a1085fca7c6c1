//! Writing a series' exceptions: after the master is created (or its `series` updated), each
//! deleted occurrence is deleted and each modified one updated. Occurrences are found by their
//! `OriginalStart`: GetItem of `OccurrenceItemId`s by instance index, 50 at a time, until every
//! start is found or the series ends. On an update, the occurrences Exchange has modified (the
//! master's `ModifiedOccurrences`) that the series no longer lists are put back in place.

use crate::error::EwsError;
use crate::map::{body_prop, changes, utc, Prop};
use crate::ops::Kind;
use crate::soap::{self, Target};
use crate::xml::{escape, Elem};
use std::collections::BTreeMap;
use syncbridge_sdk::series;
use syncbridge_sdk::types::mailbox::{Event, OccurrenceChange, Series};
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

/// Deletes the series' deleted occurrences and writes its modified ones. On an update
/// (`existing`), an occurrence Exchange has modified that the series no longer lists is put back
/// where the series places it, with the master's texts and free/busy.
pub fn write_exceptions(
    target: &Target,
    master: &str,
    event: &Event,
    series: &Series,
    existing: bool,
) -> Result<(), PluginError> {
    let norm = |s: &str| utc(s).unwrap_or_else(|| s.to_owned());
    let mut starts: Vec<String> = series.deleted.iter().map(|s| norm(s)).collect();
    starts.extend(series.modified.iter().map(|m| norm(&m.original_start)));
    let put_back = if existing {
        unlisted_exceptions(target, master, &starts)?
    } else {
        Vec::new()
    };
    if starts.is_empty() && put_back.is_empty() {
        return Ok(());
    }
    let ids = occurrences_by_start(target, master, &starts)?;
    // A deleted occurrence not found is gone already (an update lists it again); a modified one
    // not found is not in the series.
    let missing: Vec<String> = series
        .modified
        .iter()
        .map(|m| norm(&m.original_start))
        .filter(|s| !ids.contains_key(s))
        .collect();
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
    let item_change = |id: &str, props: &[Prop]| {
        format!(
            r#"<t:ItemChange><t:ItemId Id="{}"/><t:Updates>{}</t:Updates></t:ItemChange>"#,
            escape(id),
            changes("CalendarItem", props)
        )
    };
    let mut updates: String = series
        .modified
        .iter()
        .map(|m| item_change(&ids[&norm(&m.original_start)], &change_props(m)))
        .collect();
    for (id, original) in &put_back {
        updates.push_str(&item_change(id, &pattern_props(event, original)?));
    }
    if !updates.is_empty() {
        let body = format!(
            r#"<m:UpdateItem ConflictResolution="AlwaysOverwrite" SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges>{updates}</m:ItemChanges></m:UpdateItem>"#
        );
        check_all(&soap::call(target, &body)?)?;
    }
    let deleted: Vec<String> = series
        .deleted
        .iter()
        .filter_map(|s| ids.get(&norm(s)).cloned())
        .collect();
    if !deleted.is_empty() {
        check_all(&soap::call(target, &crate::ops::delete_item(&deleted))?)?;
    }
    Ok(())
}

/// The occurrences (id, original start) among the master's `ModifiedOccurrences` whose
/// original start is not in `listed`.
fn unlisted_exceptions(
    target: &Target,
    master: &str,
    listed: &[String],
) -> Result<Vec<(String, String)>, PluginError> {
    let resp = soap::call(
        target,
        &crate::ops::get_item(Kind::Calendar, &[master.to_owned()]),
    )?;
    let mut out = Vec::new();
    for msg in soap::messages(&resp) {
        let m = msg?;
        let occurrences = m
            .path(&["Items", "CalendarItem", "ModifiedOccurrences"])
            .into_iter()
            .flat_map(|o| o.all("Occurrence"));
        for occ in occurrences {
            let id = occ.child("ItemId").and_then(|i| i.attr("Id"));
            let original = occ.text_of("OriginalStart").and_then(utc);
            if let (Some(id), Some(original)) = (id, original) {
                if !listed.contains(&original) {
                    out.push((id.to_owned(), original));
                }
            }
        }
    }
    Ok(out)
}

/// An occurrence put back at `original` (its original start, UTC): as long as the master, with
/// the master's subject, location, body and free/busy ([`series::in_place`]), texts the master
/// has none of cleared.
fn pattern_props(master: &Event, original: &str) -> Result<Vec<Prop>, PluginError> {
    let place = series::in_place(master, original)
        .ok_or_else(|| PluginError::invalid_field("start", "not an RFC 3339 instant"))?;
    let mut props = change_props(&place);
    if place.subject.is_none() {
        props.push(Prop::text("item:Subject", "Subject", None));
    }
    if place.location.is_none() {
        props.push(Prop::text("calendar:Location", "Location", None));
    }
    if place.body.is_none() {
        props.push(body_prop(None));
    }
    Ok(props)
}

fn check_all(resp: &Elem) -> Result<(), PluginError> {
    for m in soap::messages(resp) {
        m?;
    }
    Ok(())
}
