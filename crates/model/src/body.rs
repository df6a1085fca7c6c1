//! Items as systems answer them: a body of any canonical kind, core or mailbox.

use crate::item::{
    Appointment, CompanyRef, Contact, ContactTypeRef, DirectoryUser, EmailMessage, Mailbox,
    ServiceCall, SiteRef, Task,
};
use crate::mailbox::{Event, MailboxContact, MailboxInfo, Todo};
use serde::{Deserialize, Serialize};

/// The body of a canonical item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemBody {
    Contact(Contact),
    DirectoryUser(DirectoryUser),
    Appointment(Appointment),
    Task(Task),
    ServiceCall(ServiceCall),
    EmailMessage(EmailMessage),
    Mailbox(Mailbox),
    Company(CompanyRef),
    Site(SiteRef),
    ContactType(ContactTypeRef),
    /// A mailbox's calendar item (WIT 0.1.3 `mailbox-api`).
    Event(Event),
    /// A mailbox's contact (WIT 0.1.3).
    MailboxContact(MailboxContact),
    /// A mailbox's task (WIT 0.1.3).
    Todo(Todo),
    /// A mailbox itself (WIT 0.1.3).
    MailboxInfo(MailboxInfo),
}

impl ItemBody {
    /// Whether the body is one of the canonical mailbox model's (WIT 0.1.3),
    /// which travels through `mailbox-api` only.
    pub fn is_mailbox(&self) -> bool {
        matches!(
            self,
            ItemBody::Event(_)
                | ItemBody::MailboxContact(_)
                | ItemBody::Todo(_)
                | ItemBody::MailboxInfo(_)
        )
    }

    /// The kind's name, as errors and logs say it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            ItemBody::Contact(_) => "contact",
            ItemBody::DirectoryUser(_) => "directory-user",
            ItemBody::Appointment(_) => "appointment",
            ItemBody::Task(_) => "task",
            ItemBody::ServiceCall(_) => "service-call",
            ItemBody::EmailMessage(_) => "email-message",
            ItemBody::Mailbox(_) => "mailbox",
            ItemBody::Company(_) => "company",
            ItemBody::Site(_) => "site",
            ItemBody::ContactType(_) => "contact-type",
            ItemBody::Event(_) => "event",
            ItemBody::MailboxContact(_) => "mailbox-contact",
            ItemBody::Todo(_) => "todo",
            ItemBody::MailboxInfo(_) => "mailbox-info",
        }
    }
}

/// Why an item left the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Removal {
    /// Deleted at the source.
    Deleted,
    /// No longer in scope (moved, unlicensed, filtered out).
    OutOfScope,
}

/// One item read from a system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Stable id in the system the item came from.
    pub id: String,
    /// Version, change key or etag, if the system has one.
    pub version: Option<String>,
    /// Set when the item was removed at the source.
    pub removed: Option<Removal>,
    /// The item's content; absent for removals that carry only an id.
    pub body: Option<ItemBody>,
}
