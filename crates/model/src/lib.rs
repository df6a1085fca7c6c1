//! The host-side model: what the engine, store, API and CLI speak.
//!
//! These are plain serde structs. The WIT bindings of each plugin contract
//! version are converted to and from them at the runtime boundary, so a new
//! WIT version never changes a stored plan or an API answer by itself.
//!
//! The serde shape (snake_case fields, `CamelCase` variant tags) is the one
//! stored plans of format 1 used, so those read unchanged where they still
//! parse.

mod body;
mod connector;
mod error;
mod item;
mod mailbox;
mod mapper;

pub use body::{Item, ItemBody, Removal};
pub use connector::{
    Description, Finding, ItemKind, Outcome, Page, PullRequest, WriteAction, WriteOk, WriteOp,
    WriteResult,
};
pub use error::{FieldError, InvalidInput, PluginError, RemoteFailure, Throttle};
pub use item::{
    Appointment, Attendee, AttendeeRole, Attribute, ChannelStatus, CompanyRef, Contact,
    ContactTypeRef, DirectoryUser, EmailAddress, EmailMessage, GroupMembership, License, Mailbox,
    Recurrence, Sensitivity, ServiceCall, ShowAs, SiteRef, Task, TaskStatus, ZonedTime,
};
pub use mailbox::{
    AddressKind, BodyType, Event, EventKind, EventTime, MailboxContact, MailboxInfo, MailboxKind,
    OccurrenceChange, Participant, Phone, PhoneKind, PostalAddress, Response, RichText, Series,
    Todo, Zone,
};
pub use mapper::{ContactTypesMode, Explanation, Intent, IntentAction, WritePolicy};
