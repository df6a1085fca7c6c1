//! The canonical mailbox model (WIT 0.1.3 `mailbox-types`): what one set of
//! mapping rules reads and writes in Exchange on-premises (EWS) and Exchange
//! Online (Graph).

use crate::item::{AttendeeRole, EmailAddress, Sensitivity, ShowAs, TaskStatus};
use serde::{Deserialize, Serialize};

/// A time zone as the service named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    /// IANA name, e.g. `Europe/Berlin`.
    pub iana: String,
    /// The Windows id the service used, e.g. `W. Europe Standard Time`.
    pub windows: Option<String>,
}

/// A point in time and the zone it was expressed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventTime {
    /// RFC 3339 instant in UTC.
    pub utc: String,
    pub zone: Option<Zone>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BodyType {
    Text,
    Html,
}

/// A body as the service stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RichText {
    pub content: String,
    pub body_type: BodyType,
}

/// An attendee's answer to a meeting request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    None,
    Organizer,
    Accepted,
    Tentative,
    Declined,
    NotResponded,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub address: EmailAddress,
    pub role: AttendeeRole,
    pub response: Response,
}

/// A modified occurrence of a series, identified by its original start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OccurrenceChange {
    pub original_start: String,
    pub id: Option<String>,
    pub start: EventTime,
    pub end: EventTime,
    pub subject: Option<String>,
    pub location: Option<String>,
    pub body: Option<RichText>,
    pub show_as: ShowAs,
}

/// The recurrence of a series master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Series {
    /// RFC 5545 `RRULE` value without `DTSTART`.
    pub rrule: String,
    pub zone: Zone,
    pub modified: Vec<OccurrenceChange>,
    /// Original starts of deleted occurrences.
    pub deleted: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Single,
    SeriesMaster,
    Occurrence,
    Exception,
}

/// A calendar item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub series_id: Option<String>,
    pub original_start: Option<String>,
    pub subject: Option<String>,
    pub start: EventTime,
    pub end: EventTime,
    pub all_day: bool,
    pub show_as: ShowAs,
    pub sensitivity: Sensitivity,
    pub series: Option<Series>,
    pub organizer: Option<EmailAddress>,
    pub attendees: Vec<Participant>,
    pub location: Option<String>,
    pub categories: Vec<String>,
    pub body: Option<RichText>,
    pub reminder_minutes: Option<u32>,
    /// The link id syncbridge wrote into the item.
    pub anchor: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PhoneKind {
    Business,
    Home,
    Mobile,
    BusinessFax,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phone {
    pub kind: PhoneKind,
    pub number: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AddressKind {
    Business,
    Home,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostalAddress {
    pub kind: AddressKind,
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

/// A contact in a mailbox's (or public folder's) address book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxContact {
    pub given_name: Option<String>,
    pub middle_name: Option<String>,
    pub surname: Option<String>,
    pub display_name: Option<String>,
    pub company_name: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub emails: Vec<EmailAddress>,
    pub phones: Vec<Phone>,
    pub addresses: Vec<PostalAddress>,
    pub business_home_page: Option<String>,
    pub birthday: Option<String>,
    pub notes: Option<String>,
    pub categories: Vec<String>,
    pub anchor: Option<String>,
}

/// A task (EWS tasks folder, Microsoft To Do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Todo {
    pub subject: String,
    pub body: Option<RichText>,
    pub start: Option<EventTime>,
    pub due: Option<EventTime>,
    pub status: TaskStatus,
    pub percent_complete: u8,
    pub completed: Option<String>,
    pub categories: Vec<String>,
    pub anchor: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MailboxKind {
    User,
    Shared,
    Room,
    Equipment,
    Other,
}

/// A mailbox itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxInfo {
    pub address: String,
    pub display_name: Option<String>,
    pub kind: MailboxKind,
    /// Whether it has an Exchange licence; `None` when unknown (on-premises).
    pub licensed: Option<bool>,
}
