//! Canonical records read from and written to systems.

use serde::{Deserialize, Serialize};

/// A name/value pair (free attributes, routing data, extra fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    pub name: String,
    pub value: String,
}

/// A reference to a PSA company (customer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyRef {
    pub id: String,
    pub name: Option<String>,
}

/// A reference to a company site / location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteRef {
    pub id: String,
    pub name: Option<String>,
}

/// A reference to a contact type (ConnectWise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactTypeRef {
    pub id: String,
    pub name: Option<String>,
}

/// A person in an address book or PSA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    pub title: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub mobile: Option<String>,
    pub company: Option<CompanyRef>,
    pub site: Option<SiteRef>,
    pub contact_types: Vec<ContactTypeRef>,
    pub active: bool,
    pub extra: Vec<Attribute>,
}

/// A licence assigned to a directory user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct License {
    pub sku_id: String,
    /// The human name (for example `SPE_E3`), when the connector resolved it.
    pub sku_part_number: Option<String>,
}

/// A group a directory user belongs to (directly or transitively).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMembership {
    pub id: String,
    pub display_name: Option<String>,
    pub transitive: bool,
}

/// A user of a directory (Microsoft Entra ID / Microsoft 365).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryUser {
    pub user_principal_name: String,
    pub mail: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub display_name: Option<String>,
    pub job_title: Option<String>,
    pub business_phone: Option<String>,
    pub mobile_phone: Option<String>,
    pub department: Option<String>,
    pub account_enabled: bool,
    pub licenses: Vec<License>,
    pub groups: Vec<GroupMembership>,
    pub attributes: Vec<Attribute>,
}

/// A point in time with the time zone it was expressed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZonedTime {
    /// RFC 3339 instant in UTC, e.g. `2026-11-23T09:00:00Z`.
    pub utc: String,
    /// IANA or Windows time-zone name the organiser used, if known.
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShowAs {
    Free,
    Tentative,
    Busy,
    Oof,
    Elsewhere,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sensitivity {
    Normal,
    Personal,
    Private,
    Confidential,
}

/// A recurrence rule in RFC 5545 `RRULE` syntax plus exceptions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurrence {
    pub rrule: String,
    /// Excluded occurrences (RFC 3339 instants).
    pub exdates: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttendeeRole {
    Required,
    Optional,
    Resource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attendee {
    pub email: String,
    pub name: Option<String>,
    pub role: AttendeeRole,
    pub response: Option<String>,
}

/// A calendar item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appointment {
    pub subject: Option<String>,
    pub start: ZonedTime,
    pub end: ZonedTime,
    pub all_day: bool,
    pub show_as: ShowAs,
    pub sensitivity: Sensitivity,
    pub recurrence: Option<Recurrence>,
    pub organizer: Option<String>,
    pub attendees: Vec<Attendee>,
    pub location: Option<String>,
    pub body: Option<String>,
    pub categories: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskStatus {
    NotStarted,
    InProgress,
    Completed,
    Waiting,
    Deferred,
}

/// A to-do item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub title: String,
    pub body: Option<String>,
    pub start: Option<ZonedTime>,
    pub due: Option<ZonedTime>,
    pub completed: Option<ZonedTime>,
    pub status: TaskStatus,
    pub categories: Vec<String>,
}

/// A PSA service call (a block of time with tickets and resources).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceCall {
    pub description: Option<String>,
    pub start: ZonedTime,
    pub end: ZonedTime,
    pub company: Option<CompanyRef>,
    pub ticket_ids: Vec<String>,
    pub resource_ids: Vec<String>,
    pub status: Option<String>,
    pub canceled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailAddress {
    pub address: String,
    pub name: Option<String>,
}

/// An e-mail message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailMessage {
    pub subject: Option<String>,
    pub from: Option<EmailAddress>,
    pub to: Vec<EmailAddress>,
    pub cc: Vec<EmailAddress>,
    pub body: Option<String>,
    pub body_is_html: bool,
    pub sent: Option<String>,
    pub received: Option<String>,
    pub internet_message_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelStatus {
    NotRun,
    Success,
    Failure,
}

/// A mailbox enabled for synchronisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub address: String,
    pub display_name: Option<String>,
    pub enabled: bool,
    pub approved: bool,
    pub incoming_status: ChannelStatus,
    pub outgoing_status: ChannelStatus,
    pub calendar_status: ChannelStatus,
}
