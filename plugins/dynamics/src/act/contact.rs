//! Contact rows (`contacts`) as `contact` items and back.
//!
//! - first name `firstname`, last name `lastname`, display name `fullname` (computed by
//!   Dataverse from the name parts: read, never written), title `jobtitle`, e-mail
//!   `emailaddress1`, phone `telephone1`, mobile `mobilephone`; active when state 0 Active.
//! - `extra` attributes `department`, `address1_city` and `emailaddress2`, when present.
//! - no company, site or contact types.
//! - deactivate writes state 1 Inactive, status 2 Inactive; reactivate state 0 Active, status 1
//!   Active (with the named fields).

use super::columns::{field_name, not_written, optional, state};
use super::scope::Kind;
use crate::text;
use serde_json::{json, Map, Value};
use syncbridge_sdk::prelude::*;

/// `statecode` of the contact table.
pub mod states {
    /// Active.
    pub const ACTIVE: i64 = 0;
    /// Inactive.
    pub const INACTIVE: i64 = 1;
}

/// `statuscode` of the contact table.
pub mod statuses {
    /// Active (state Active).
    pub const ACTIVE: i64 = 1;
    /// Inactive (state Inactive).
    pub const INACTIVE: i64 = 2;
}

/// Columns given as `extra` attributes of the same name.
pub const EXTRA: &[&str] = &["department", "address1_city", "emailaddress2"];
/// Fields an update writes.
pub const FIELDS: &[&str] = &[
    "first_name",
    "last_name",
    "title",
    "email",
    "phone",
    "mobile",
    "extra.department",
    "extra.address1_city",
    "extra.emailaddress2",
];

/// A contact row as an item; none without a `contactid`.
pub fn item(row: &Value) -> Option<Item> {
    let id = text(row, "contactid")?.to_ascii_lowercase();
    Some(Item {
        id,
        version: text(row, "@odata.etag"),
        removed: None,
        body: Some(ItemBody::Contact(Contact {
            first_name: text(row, "firstname"),
            last_name: text(row, "lastname"),
            display_name: text(row, "fullname"),
            title: text(row, "jobtitle"),
            email: text(row, "emailaddress1"),
            phone: text(row, "telephone1"),
            mobile: text(row, "mobilephone"),
            company: None,
            site: None,
            contact_types: Vec::new(),
            active: state(row) == Some(states::ACTIVE),
            extra: EXTRA
                .iter()
                .filter_map(|name| {
                    text(row, name).map(|value| Attribute {
                        name: (*name).to_owned(),
                        value,
                    })
                })
                .collect(),
        })),
    })
}

fn extra<'a>(c: &'a Contact, name: &str) -> Option<&'a str> {
    c.extra
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
        .map(|a| a.value.as_str())
}

/// The column and value of the canonical field `field` (`written` as the engine named it).
fn column(c: &Contact, field: &str, written: &str) -> Result<(&'static str, Value), PluginError> {
    let (name, value) = match field {
        "first_name" => ("firstname", optional(c.first_name.as_deref())),
        "last_name" => ("lastname", optional(c.last_name.as_deref())),
        "title" => ("jobtitle", optional(c.title.as_deref())),
        "email" => ("emailaddress1", optional(c.email.as_deref())),
        "phone" => ("telephone1", optional(c.phone.as_deref())),
        "mobile" => ("mobilephone", optional(c.mobile.as_deref())),
        "display_name" => {
            return Err(PluginError::invalid_field(
                written,
                format!(
                    "Dataverse computes a contact's fullname from its first and last name; write first_name and last_name instead (this connector writes {})",
                    FIELDS.join(", ")
                ),
            ))
        }
        other => match other
            .strip_prefix("extra.")
            .and_then(|attribute| EXTRA.iter().find(|e| **e == attribute))
        {
            Some(column) => (*column, optional(extra(c, column))),
            None => return Err(not_written(written, Kind::Contacts, FIELDS)),
        },
    };
    Ok((name, value))
}

/// The POST body of a new contact: every field that has a value, the `extra` attributes this
/// connector writes (others are not written), and the Inactive state of an inactive contact.
pub fn create_body(c: &Contact) -> Result<Map<String, Value>, PluginError> {
    let mut b = Map::new();
    for field in FIELDS {
        let (name, value) = column(c, field, field)?;
        if !value.is_null() {
            b.insert(name.into(), value);
        }
    }
    if !c.active {
        b.extend(state_body(false));
    }
    Ok(b)
}

/// The PATCH body of an update of `fields` to `c` (an absent value clears its column).
pub fn update_body(c: &Contact, fields: &[String]) -> Result<Map<String, Value>, PluginError> {
    let mut b = Map::new();
    for name in fields {
        let (column, value) = column(c, &field_name(name), name)?;
        b.insert(column.into(), value);
    }
    Ok(b)
}

/// The state and status of an active or inactive contact.
pub fn state_body(active: bool) -> Map<String, Value> {
    let (state, status) = if active {
        (states::ACTIVE, statuses::ACTIVE)
    } else {
        (states::INACTIVE, statuses::INACTIVE)
    };
    let mut b = Map::new();
    b.insert("statecode".into(), json!(state));
    b.insert("statuscode".into(), json!(status));
    b
}
