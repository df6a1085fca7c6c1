//! `t:CalendarItem` ↔ [`Event`].

use super::*;
use crate::recurrence;
use crate::tz;
use syncbridge_sdk::types::mailbox::{
    Event, EventKind, EventTime, OccurrenceChange, Participant, Response, Series, Zone,
};
use syncbridge_sdk::types::{AttendeeRole, Sensitivity, ShowAs};

/// Canonical event fields an update may name.
pub const FIELDS: &[&str] = &[
    "subject",
    "start",
    "end",
    "all_day",
    "show_as",
    "sensitivity",
    "series",
    "organizer",
    "attendees",
    "location",
    "categories",
    "body",
    "reminder_minutes",
    "anchor",
];

/// `t:CalendarItemType` children this connector writes, in schema order (after the item's).
const ORDER: &[&str] = &[
    "Start",
    "End",
    "IsAllDayEvent",
    "LegacyFreeBusyStatus",
    "Location",
    "RequiredAttendees",
    "OptionalAttendees",
    "Resources",
    "Recurrence",
    "StartTimeZone",
    "EndTimeZone",
];

/// The zone of `StartTimeZone`/`EndTimeZone` (`@Id`), or `…TimeZoneId`.
fn zone_of(item: &Elem, which: Which) -> Option<Zone> {
    let (zone, id) = match which {
        Which::Start => ("StartTimeZone", "StartTimeZoneId"),
        Which::End => ("EndTimeZone", "EndTimeZoneId"),
    };
    item.child(zone)
        .and_then(|z| z.attr("Id"))
        .or_else(|| item.text_of(id))
        .and_then(tz::zone)
}

/// Which end of an item [`zone_of`] reads.
#[derive(Clone, Copy)]
enum Which {
    Start,
    End,
}

fn time_error(name: &str, raw: &str) -> PluginError {
    PluginError::invalid(format!(
        "calendar item {name} {raw:?} is not an xs:dateTime"
    ))
}

fn time(item: &Elem, name: &str, zone: Option<Zone>) -> Result<EventTime, PluginError> {
    let raw = item.text_of(name).unwrap_or_default();
    let utc = utc(raw).ok_or_else(|| time_error(name, raw))?;
    Ok(EventTime { utc, zone })
}

/// [`time`], the text moved out of the item.
fn take_time(item: &mut Elem, name: &str, zone: Option<Zone>) -> Result<EventTime, PluginError> {
    let raw = item.take_text_of(name).unwrap_or_default();
    let utc = utc_owned(raw).map_err(|raw| time_error(name, &raw))?;
    Ok(EventTime { utc, zone })
}

/// `LegacyFreeBusyStatus` → show-as (`NoData` reads as busy).
pub fn show_as_of(v: Option<&str>) -> ShowAs {
    match v {
        Some("Free") => ShowAs::Free,
        Some("Tentative") => ShowAs::Tentative,
        Some("OOF") => ShowAs::Oof,
        Some("WorkingElsewhere") => ShowAs::Elsewhere,
        _ => ShowAs::Busy,
    }
}

pub fn show_as_text(s: ShowAs) -> &'static str {
    match s {
        ShowAs::Free => "Free",
        ShowAs::Tentative => "Tentative",
        ShowAs::Busy => "Busy",
        ShowAs::Oof => "OOF",
        ShowAs::Elsewhere => "WorkingElsewhere",
    }
}

/// `Sensitivity` text ↔ canonical.
pub fn sensitivity_of(v: Option<&str>) -> Sensitivity {
    match v {
        Some("Personal") => Sensitivity::Personal,
        Some("Private") => Sensitivity::Private,
        Some("Confidential") => Sensitivity::Confidential,
        _ => Sensitivity::Normal,
    }
}

fn sensitivity_text(s: Sensitivity) -> &'static str {
    match s {
        Sensitivity::Normal => "Normal",
        Sensitivity::Personal => "Personal",
        Sensitivity::Private => "Private",
        Sensitivity::Confidential => "Confidential",
    }
}

fn response_of(v: Option<&str>) -> Response {
    match v {
        Some("Organizer") => Response::Organizer,
        Some("Accept") => Response::Accepted,
        Some("Tentative") => Response::Tentative,
        Some("Decline") => Response::Declined,
        Some("NoResponseReceived") => Response::NotResponded,
        _ => Response::None,
    }
}

fn take_attendees(item: &mut Elem) -> Vec<Participant> {
    let mut out = Vec::new();
    for (list, role) in [
        ("RequiredAttendees", AttendeeRole::Required),
        ("OptionalAttendees", AttendeeRole::Optional),
        ("Resources", AttendeeRole::Resource),
    ] {
        for a in item
            .child_mut(list)
            .into_iter()
            .flat_map(|l| l.all_mut("Attendee"))
        {
            if let Some(address) = a.child_mut("Mailbox").and_then(take_address) {
                out.push(Participant {
                    address,
                    role,
                    response: response_of(a.text_of("ResponseType")),
                });
            }
        }
    }
    out
}

/// The kind of a calendar item (`CalendarItemType`).
pub fn kind_of(item: &Elem) -> EventKind {
    match item.text_of("CalendarItemType") {
        Some("RecurringMaster") => EventKind::SeriesMaster,
        Some("Occurrence") => EventKind::Occurrence,
        Some("Exception") => EventKind::Exception,
        _ => EventKind::Single,
    }
}

/// The series zone as chrono-tz (UTC when unknown).
pub fn chrono_zone(zone: Option<&Zone>) -> chrono_tz::Tz {
    zone.and_then(|z| z.iana.parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// Reads a calendar item (of a copy: see [`take`]).
pub fn read(item: &Elem, modified: Vec<OccurrenceChange>) -> Result<Event, PluginError> {
    take(&mut item.clone(), modified)
}

/// Reads a calendar item, moving the texts it keeps out of the element. `modified` are the
/// series' modified occurrences as GetItem of each answered them (see [`occurrence_change`]);
/// the master's own `ModifiedOccurrences` are used for those not given.
pub fn take(item: &mut Elem, modified: Vec<OccurrenceChange>) -> Result<Event, PluginError> {
    let start_zone = zone_of(item, Which::Start);
    let end_zone = zone_of(item, Which::End).or_else(|| start_zone.clone());
    let start = take_time(item, "Start", start_zone.clone())?;
    let end = take_time(item, "End", end_zone)?;
    let kind = kind_of(item);
    let series = match item.child("Recurrence") {
        Some(rec) if kind == EventKind::SeriesMaster => {
            let zone = start_zone.clone().unwrap_or(Zone {
                iana: "UTC".into(),
                windows: None,
            });
            let rrule = recurrence::to_rrule(rec, chrono_zone(Some(&zone)))
                .map_err(|e| PluginError::invalid(e.to_string()))?;
            let mut changes = modified;
            for occ in item
                .child("ModifiedOccurrences")
                .into_iter()
                .flat_map(|m| m.all("Occurrence"))
            {
                let original = occ.text_of("OriginalStart").and_then(utc);
                if !changes
                    .iter()
                    .any(|c| Some(&c.original_start) == original.as_ref())
                {
                    if let Ok(c) = occurrence_change(occ, None) {
                        changes.push(c);
                    }
                }
            }
            let deleted = item
                .child("DeletedOccurrences")
                .into_iter()
                .flat_map(|d| d.all("DeletedOccurrence"))
                .filter_map(|d| d.text_of("Start").and_then(utc))
                .collect();
            Some(Series {
                rrule,
                zone,
                modified: changes,
                deleted,
            })
        }
        _ => None,
    };
    let reminder_minutes = (item.text_of("ReminderIsSet") == Some("true"))
        .then(|| {
            item.text_of("ReminderMinutesBeforeStart")
                .and_then(|m| m.parse().ok())
        })
        .flatten();
    let mut event = Event {
        kind,
        series_id: None,
        original_start: item
            .take_text_of("OriginalStart")
            .and_then(|t| utc_owned(t).ok()),
        subject: item.take_text_of("Subject"),
        start,
        end,
        all_day: item.text_of("IsAllDayEvent") == Some("true"),
        show_as: show_as_of(item.text_of("LegacyFreeBusyStatus")),
        sensitivity: sensitivity_of(item.text_of("Sensitivity")),
        series,
        organizer: item
            .path_mut(&["Organizer", "Mailbox"])
            .and_then(take_address),
        attendees: take_attendees(item),
        location: item.take_text_of("Location"),
        categories: take_categories(item),
        body: take_body(item),
        reminder_minutes,
        anchor: anchor_of(item),
    };
    if let Some(mut series) = event.series.take() {
        series
            .modified
            .retain(|c| !syncbridge_sdk::series::follows_pattern(c, &event));
        event.series = Some(series);
    }
    Ok(event)
}

/// A modified occurrence: `occ` is the master's `ModifiedOccurrences/Occurrence` (id, start,
/// end, original start); `detail` the occurrence as GetItem answered it (subject, location,
/// body, free/busy), when read.
pub fn occurrence_change(
    occ: &Elem,
    detail: Option<&Elem>,
) -> Result<OccurrenceChange, PluginError> {
    let src = detail.unwrap_or(occ);
    let zone_start = detail.and_then(|d| zone_of(d, Which::Start));
    let zone_end = detail
        .and_then(|d| zone_of(d, Which::End))
        .or_else(|| zone_start.clone());
    let original_start = occ
        .text_of("OriginalStart")
        .or_else(|| src.text_of("OriginalStart"))
        .and_then(utc)
        .ok_or_else(|| PluginError::invalid("a modified occurrence has no OriginalStart"))?;
    Ok(OccurrenceChange {
        original_start,
        id: occ
            .child("ItemId")
            .and_then(|i| i.attr("Id"))
            .map(str::to_owned),
        start: time(src, "Start", zone_start)?,
        end: time(src, "End", zone_end)?,
        subject: detail.and_then(|d| d.text_of("Subject")).map(str::to_owned),
        location: detail
            .and_then(|d| d.text_of("Location"))
            .map(str::to_owned),
        body: detail.and_then(body_of),
        show_as: show_as_of(detail.and_then(|d| d.text_of("LegacyFreeBusyStatus"))),
    })
}

fn attendee_list(element: &'static str, ev: &Event, role: AttendeeRole) -> Prop {
    let inner: String = ev
        .attendees
        .iter()
        .filter(|a| a.role == role)
        .map(|a| {
            let name = a
                .address
                .name
                .as_deref()
                .map(|n| t("Name", n))
                .unwrap_or_default();
            format!(
                "<t:Attendee><t:Mailbox>{name}{}</t:Mailbox></t:Attendee>",
                t("EmailAddress", &a.address.address)
            )
        })
        .collect();
    let xml = (!inner.is_empty()).then(|| format!("<t:{element}>{inner}</t:{element}>"));
    Prop::field(&format!("calendar:{element}"), element, xml)
}

fn zone_prop(element: &'static str, zone: Option<&Zone>) -> Option<Prop> {
    let id = tz::windows_for(zone?)?;
    Some(Prop::field(
        &format!("calendar:{element}"),
        element,
        Some(format!(r#"<t:{element} Id="{}"/>"#, escape(&id))),
    ))
}

/// The properties one canonical field writes.
pub fn props(ev: &Event, field: &str) -> Result<Vec<Prop>, PluginError> {
    let time_prop = |name: &'static str, t_: &EventTime| -> Result<Prop, PluginError> {
        let at = instant(field, &t_.utc)?;
        Ok(Prop::text(
            &format!("calendar:{name}"),
            name,
            Some(&at.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        ))
    };
    Ok(match field {
        "subject" => vec![Prop::text("item:Subject", "Subject", ev.subject.as_deref())],
        "start" => zone_prop("StartTimeZone", ev.start.zone.as_ref())
            .into_iter()
            .chain([time_prop("Start", &ev.start)?])
            .collect(),
        "end" => zone_prop("EndTimeZone", ev.end.zone.as_ref())
            .into_iter()
            .chain([time_prop("End", &ev.end)?])
            .collect(),
        "all_day" => vec![Prop::text(
            "calendar:IsAllDayEvent",
            "IsAllDayEvent",
            Some(if ev.all_day { "true" } else { "false" }),
        )],
        "show_as" => vec![Prop::text(
            "calendar:LegacyFreeBusyStatus",
            "LegacyFreeBusyStatus",
            Some(show_as_text(ev.show_as)),
        )],
        "sensitivity" => vec![Prop::text(
            "item:Sensitivity",
            "Sensitivity",
            Some(sensitivity_text(ev.sensitivity)),
        )],
        "series" => {
            let xml = match &ev.series {
                Some(s) => {
                    let zone = chrono_zone(Some(&s.zone));
                    let start_date = instant("start", &ev.start.utc)?
                        .with_timezone(&zone)
                        .date_naive();
                    Some(
                        recurrence::from_rrule(&s.rrule, start_date, zone)
                            .map_err(|e| PluginError::invalid_field("series", e.to_string()))?,
                    )
                }
                None => None,
            };
            let mut out = vec![Prop::field("calendar:Recurrence", "Recurrence", xml)];
            // The series is computed in its own zone: that is the start zone.
            if let Some(z) = ev
                .series
                .as_ref()
                .and_then(|s| zone_prop("StartTimeZone", Some(&s.zone)))
            {
                out.push(z);
            }
            out
        }
        // Exchange sets the organizer itself (the mailbox the item is created in).
        "organizer" => Vec::new(),
        "attendees" => vec![
            attendee_list("RequiredAttendees", ev, AttendeeRole::Required),
            attendee_list("OptionalAttendees", ev, AttendeeRole::Optional),
            attendee_list("Resources", ev, AttendeeRole::Resource),
        ],
        "location" => vec![Prop::text(
            "calendar:Location",
            "Location",
            ev.location.as_deref(),
        )],
        "categories" => vec![categories_prop(&ev.categories)],
        "body" => vec![body_prop(ev.body.as_ref())],
        "reminder_minutes" => {
            let set = ev.reminder_minutes.is_some();
            let mut out = vec![Prop::text(
                "item:ReminderIsSet",
                "ReminderIsSet",
                Some(if set { "true" } else { "false" }),
            )];
            if let Some(m) = ev.reminder_minutes {
                out.push(Prop::text(
                    "item:ReminderMinutesBeforeStart",
                    "ReminderMinutesBeforeStart",
                    Some(&m.to_string()),
                ));
            }
            out
        }
        "anchor" => vec![anchor_prop(ev.anchor.as_deref())],
        other => return Err(unknown_field(other, FIELDS)),
    })
}

/// The `t:CalendarItem` of a CreateItem.
pub fn create_xml(ev: &Event) -> Result<String, PluginError> {
    let mut all = Vec::new();
    for f in FIELDS {
        all.extend(props(ev, f)?);
    }
    // One StartTimeZone (the series' wins over the start's: they are the same zone).
    let mut seen = false;
    all.retain(|p| p.element != "StartTimeZone" || !std::mem::replace(&mut seen, true));
    let order: Vec<&str> = ITEM_ORDER.iter().chain(ORDER).copied().collect();
    Ok(format!(
        "<t:CalendarItem>{}</t:CalendarItem>",
        in_schema_order(all, &order)
    ))
}

/// The `UpdateItem` changes of the named fields.
pub fn update_xml(ev: &Event, fields: &[String]) -> Result<String, PluginError> {
    let mut all: Vec<Prop> = Vec::new();
    for f in fields {
        for p in props(ev, f)? {
            if !all.iter().any(|q| q.uri == p.uri) {
                all.push(p);
            }
        }
    }
    Ok(changes("CalendarItem", &all))
}
