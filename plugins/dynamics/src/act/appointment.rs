//! Appointment rows (`appointments`) as `appointment` items and back.
//!
//! - subject `subject`, start/end `scheduledstart`/`scheduledend` (UTC instants) named in the
//!   zone the row was entered in (`utcconversiontimezonecode`, by its Windows id, read as for
//!   series: [`super::zones`]; none without a code, and none with a warning for a code that
//!   does not read: the instants are right either way), all day `isalldayevent`, location
//!   `location`, body `description` (text).
//! - show-as from the status reason, Dataverse's busy status of an appointment: 1 Free → free,
//!   2 Tentative → tentative, 6 Out of Office → oof, anything else (5 Busy, 3 Completed) → busy.
//!   It is read only: a created appointment has Dataverse's default state (Open, Free).
//! - sensitivity normal, no recurrence, organizer, attendees or categories (not read).
//! - state 2 Canceled is a removal (`deleted`); 1 Completed stays live (Dataverse keeps it in the
//!   calendar; completed and canceled appointments are read-only there).

use super::columns::{bounded, field_name, not_written, state, status, time, zoned};
use super::recurring::Bad;
use super::scope::Kind;
use super::zones::Zones;
use crate::text;
use serde_json::{json, Map, Value};
use syncbridge_sdk::prelude::*;

/// `statecode` of the appointment table.
pub mod states {
    /// Open.
    pub const OPEN: i64 = 0;
    /// Completed.
    pub const COMPLETED: i64 = 1;
    /// Canceled.
    pub const CANCELED: i64 = 2;
    /// Scheduled.
    pub const SCHEDULED: i64 = 3;
}

/// `statuscode` of the appointment table (Dataverse's busy status).
pub mod statuses {
    /// Free (state Open).
    pub const FREE: i64 = 1;
    /// Tentative (state Open).
    pub const TENTATIVE: i64 = 2;
    /// Completed (state Completed).
    pub const COMPLETED: i64 = 3;
    /// Canceled (state Canceled).
    pub const CANCELED: i64 = 4;
    /// Busy (state Scheduled).
    pub const BUSY: i64 = 5;
    /// Out of Office (state Scheduled).
    pub const OUT_OF_OFFICE: i64 = 6;
}

/// Fields an update writes.
pub const FIELDS: &[&str] = &["subject", "start", "end", "all_day", "location", "body"];
/// `subject`'s length in Dataverse.
pub const SUBJECT_MAX: usize = 200;
/// `location`'s length in Dataverse.
pub const LOCATION_MAX: usize = 200;
/// `description`'s length in Dataverse.
pub const DESCRIPTION_MAX: usize = 1_048_576;

/// Show-as of a status reason.
pub fn show_as(statuscode: Option<i64>) -> ShowAs {
    match statuscode {
        Some(statuses::FREE) => ShowAs::Free,
        Some(statuses::TENTATIVE) => ShowAs::Tentative,
        Some(statuses::OUT_OF_OFFICE) => ShowAs::Oof,
        _ => ShowAs::Busy,
    }
}

/// An appointment row as an item: canceled ones as removals; none without an `activityid`, or
/// (live) without a start and an end.
pub fn item(row: &Value, zones: &Zones) -> Option<Item> {
    let id = text(row, "activityid")?.to_ascii_lowercase();
    let version = text(row, "@odata.etag");
    if state(row) == Some(states::CANCELED) {
        return Some(Item {
            id,
            version,
            removed: Some(Removal::Deleted),
            body: None,
        });
    }
    let (Some(mut start), Some(mut end)) =
        (zoned(row, "scheduledstart"), zoned(row, "scheduledend"))
    else {
        syncbridge_sdk::log::warn!("appointment {id} has no start or end time; it is left out");
        return None;
    };
    let zone = match zones.zone_of(row) {
        Ok(zone) => zone.map(|z| z.windows),
        Err(Bad { column, why }) => {
            syncbridge_sdk::log::warn!(
                "appointment {id}: its {column} {why}; its times are written in UTC"
            );
            None
        }
    };
    start.time_zone = zone.clone();
    end.time_zone = zone;
    Some(Item {
        id,
        version,
        removed: None,
        body: Some(ItemBody::Appointment(Appointment {
            subject: text(row, "subject"),
            start,
            end,
            all_day: row.get("isalldayevent") == Some(&Value::Bool(true)),
            show_as: show_as(status(row)),
            sensitivity: Sensitivity::Normal,
            recurrence: None,
            organizer: None,
            attendees: Vec::new(),
            location: text(row, "location"),
            body: row
                .get("description")
                .and_then(Value::as_str)
                .filter(|b| !b.trim().is_empty())
                .map(str::to_owned),
            categories: Vec::new(),
        })),
    })
}

/// The column and value of the canonical field `field` (`written` as the engine named it).
fn column(
    a: &Appointment,
    field: &str,
    written: &str,
) -> Result<(&'static str, Value), PluginError> {
    Ok(match field {
        "subject" => (
            "subject",
            bounded("subject", a.subject.as_deref(), SUBJECT_MAX)?,
        ),
        "start" => ("scheduledstart", time("start", &a.start)?),
        "end" => ("scheduledend", time("end", &a.end)?),
        "all_day" => ("isalldayevent", json!(a.all_day)),
        "location" => (
            "location",
            bounded("location", a.location.as_deref(), LOCATION_MAX)?,
        ),
        "body" => (
            "description",
            bounded("body", a.body.as_deref(), DESCRIPTION_MAX)?,
        ),
        _ => return Err(not_written(written, Kind::Appointments, FIELDS)),
    })
}

/// The POST body of a new appointment: every field that has a value (the owner is bound by the
/// caller; Dataverse gives it its default state, Open, Free).
pub fn create_body(a: &Appointment) -> Result<Map<String, Value>, PluginError> {
    let mut b = Map::new();
    for field in FIELDS {
        let (name, value) = column(a, field, field)?;
        if !value.is_null() {
            b.insert(name.into(), value);
        }
    }
    Ok(b)
}

/// The PATCH body of an update of `fields` to `a` (an absent value clears its column).
pub fn update_body(a: &Appointment, fields: &[String]) -> Result<Map<String, Value>, PluginError> {
    let mut b = Map::new();
    for name in fields {
        let (column, value) = column(a, &field_name(name), name)?;
        b.insert(column.into(), value);
    }
    Ok(b)
}
