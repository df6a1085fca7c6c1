//! Conversions between the current WIT bindings and the host model.
//!
//! `Lift<T>` converts a value into `T`; it is implemented both ways for every
//! record the runtime passes across the boundary, field by field, so a record
//! that gains or loses a field in either place stops compiling here.

use super::connector_mailbox::exports::syncbridge::plugin::{
    connector_api as mc, mailbox_api as ma,
};
use super::connector_mailbox::syncbridge::plugin::mailbox_types as mt;
use super::mapper_mailbox::exports::syncbridge::plugin::{
    mailbox_mapper_api as mx, mapper_api as mm,
};
use super::{connector_api as c, mapper_api as m, types as w};
use syncbridge_model as model;

/// Converts `self` into `T` (a binding into the model, or back).
pub(crate) trait Lift<T> {
    fn lift(self) -> T;
}

macro_rules! same {
    ($($t:ty),*) => {$(
        impl Lift<$t> for $t {
            fn lift(self) -> $t {
                self
            }
        }
    )*};
}
same!((), String, bool, u8, u16, u32, u64);

impl<A: Lift<B>, B> Lift<Option<B>> for Option<A> {
    fn lift(self) -> Option<B> {
        self.map(Lift::lift)
    }
}

impl<A: Lift<B>, B> Lift<Vec<B>> for Vec<A> {
    fn lift(self) -> Vec<B> {
        self.into_iter().map(Lift::lift).collect()
    }
}

impl<A: Lift<B>, B, E: Lift<F>, F> Lift<Result<B, F>> for Result<A, E> {
    fn lift(self) -> Result<B, F> {
        self.map(Lift::lift).map_err(Lift::lift)
    }
}

/// Records: both directions, field by field.
macro_rules! both_ways {
    ($($a:path, $b:path { $($f:ident),* $(,)? })*) => {$(
        impl Lift<$b> for $a {
            fn lift(self) -> $b {
                let $a { $($f),* } = self;
                $b { $($f: $f.lift()),* }
            }
        }
        impl Lift<$a> for $b {
            fn lift(self) -> $a {
                let $b { $($f),* } = self;
                $a { $($f: $f.lift()),* }
            }
        }
    )*};
}

/// Records the host only receives: bindings into the model, field by field.
macro_rules! one_way {
    ($($a:path, $b:path { $($f:ident),* $(,)? })*) => {$(
        impl Lift<$b> for $a {
            fn lift(self) -> $b {
                let $a { $($f),* } = self;
                $b { $($f: $f.lift()),* }
            }
        }
    )*};
}

/// Enums and variants with at most one payload per case: both directions.
macro_rules! cases_both_ways {
    ($($a:ident :: $at:ident, $b:ident :: $bt:ident { $($case:ident $(($x:ident))?),* $(,)? })*) => {$(
        impl Lift<$b::$bt> for $a::$at {
            fn lift(self) -> $b::$bt {
                match self {
                    $($a::$at::$case $(($x))? => $b::$bt::$case $(($x.lift()))?),*
                }
            }
        }
        impl Lift<$a::$at> for $b::$bt {
            fn lift(self) -> $a::$at {
                match self {
                    $($b::$bt::$case $(($x))? => $a::$at::$case $(($x.lift()))?),*
                }
            }
        }
    )*};
}

both_ways! {
    w::Attribute, model::Attribute { name, value }
    w::FieldError, model::FieldError { field, message }
    w::Throttle, model::Throttle { retry_after_ms, message }
    w::InvalidInput, model::InvalidInput { message, fields }
    w::RemoteFailure, model::RemoteFailure { status, message }
    w::CompanyRef, model::CompanyRef { id, name }
    w::SiteRef, model::SiteRef { id, name }
    w::ContactTypeRef, model::ContactTypeRef { id, name }
    w::Contact, model::Contact {
        first_name, last_name, display_name, title, email, phone, mobile, company, site,
        contact_types, active, extra,
    }
    w::License, model::License { sku_id, sku_part_number }
    w::GroupMembership, model::GroupMembership { id, display_name, transitive }
    w::DirectoryUser, model::DirectoryUser {
        user_principal_name, mail, given_name, surname, display_name, job_title,
        business_phone, mobile_phone, department, account_enabled, licenses, groups, attributes,
    }
    w::ZonedTime, model::ZonedTime { utc, time_zone }
    w::Recurrence, model::Recurrence { rrule, exdates }
    w::Attendee, model::Attendee { email, name, role, response }
    w::Appointment, model::Appointment {
        subject, start, end, all_day, show_as, sensitivity, recurrence, organizer, attendees,
        location, body, categories,
    }
    w::Task, model::Task { title, body, start, due, completed, status, categories }
    w::ServiceCall, model::ServiceCall {
        description, start, end, company, ticket_ids, resource_ids, status, canceled,
    }
    w::EmailAddress, model::EmailAddress { address, name }
    w::EmailMessage, model::EmailMessage {
        subject, from, to, cc, body, body_is_html, sent, received, internet_message_id,
    }
    w::Mailbox, model::Mailbox {
        address, display_name, enabled, approved, incoming_status, outgoing_status,
        calendar_status,
    }
    c::Description, model::Description { name, reads, writes, config_schema, credential_slots }
    c::Finding, model::Finding { check, outcome, cause, remedy }
    c::PullRequest, model::PullRequest { scope, cursor, max_items }
    c::WriteOk, model::WriteOk { target_id, version }
    c::WriteResult, model::WriteResult { op_id, outcome }
    m::Explanation, model::Explanation { source_id, steps }
    m::WritePolicy, model::WritePolicy { update_existing, contact_types }
}

cases_both_ways! {
    w::PluginError, model::PluginError {
        Auth(x), Forbidden(x), NotFound(x), Throttled(x), Transient(x), Invalid(x),
        Conflict(x), Remote(x), Unsupported(x),
    }
    w::ShowAs, model::ShowAs { Free, Tentative, Busy, Oof, Elsewhere }
    w::Sensitivity, model::Sensitivity { Normal, Personal, Private, Confidential }
    w::AttendeeRole, model::AttendeeRole { Required, Optional, Resource }
    w::TaskStatus, model::TaskStatus { NotStarted, InProgress, Completed, Waiting, Deferred }
    w::ChannelStatus, model::ChannelStatus { NotRun, Success, Failure }
    w::Removal, model::Removal { Deleted, OutOfScope }
    c::ItemKind, model::ItemKind {
        Contact, DirectoryUser, Appointment, Task, ServiceCall, EmailMessage, Mailbox,
        Company, Site, ContactType,
    }
    c::Outcome, model::Outcome { Ok, Warning, Failed, Skipped }
    c::WriteAction, model::WriteAction { Create, Update, Deactivate, Reactivate, Delete }
    m::IntentAction, model::IntentAction { Upsert, Remove, Skip }
    m::ContactTypesMode, model::ContactTypesMode { Replace, AddOnly }
}

both_ways! {
    mt::Zone, model::Zone { iana, windows }
    mt::EventTime, model::EventTime { utc, zone }
    mt::RichText, model::RichText { content, body_type }
    mt::Participant, model::Participant { address, role, response }
    mt::OccurrenceChange, model::OccurrenceChange {
        original_start, id, start, end, subject, location, body, show_as,
    }
    mt::Series, model::Series { rrule, zone, modified, deleted }
    mt::Event, model::Event {
        kind, series_id, original_start, subject, start, end, all_day, show_as, sensitivity,
        series, organizer, attendees, location, categories, body, reminder_minutes, anchor,
    }
    mt::Phone, model::Phone { kind, number }
    mt::PostalAddress, model::PostalAddress { kind, street, city, state, postal_code, country }
    mt::MailboxContact, model::MailboxContact {
        given_name, middle_name, surname, display_name, company_name, job_title, department,
        emails, phones, addresses, business_home_page, birthday, notes, categories, anchor,
    }
    mt::Todo, model::Todo {
        subject, body, start, due, status, percent_complete, completed, categories, anchor,
    }
    mt::MailboxInfo, model::MailboxInfo { address, display_name, kind, licensed }
    mc::PullRequest, model::PullRequest { scope, cursor, max_items }
    mc::WriteOk, model::WriteOk { target_id, version }
    mc::WriteResult, model::WriteResult { op_id, outcome }
}

one_way! {
    c::Page, model::Page { items, cursor, more, full }
    ma::MailboxPage, model::Page { items, cursor, more, full }
}

cases_both_ways! {
    mt::BodyType, model::BodyType { Text, Html }
    mt::Response, model::Response { None, Organizer, Accepted, Tentative, Declined, NotResponded }
    mt::EventKind, model::EventKind { Single, SeriesMaster, Occurrence, Exception }
    mt::PhoneKind, model::PhoneKind { Business, Home, Mobile, BusinessFax, Other }
    mt::AddressKind, model::AddressKind { Business, Home, Other }
    mt::MailboxKind, model::MailboxKind { User, Shared, Room, Equipment, Other }
    mc::WriteAction, model::WriteAction { Create, Update, Deactivate, Reactivate, Delete }
}

/// A body the addressed interface cannot carry: mailbox bodies travel only
/// through `mailbox-api` and `mailbox-mapper-api`, the others only through
/// `connector-api`, `mapper-api` and `mailbox-mapper-api`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OtherApi {
    /// The body's kind (`event`, `contact`, ...).
    pub kind: &'static str,
}

/// Lowers a host value into bindings that cannot carry every body.
pub(crate) trait Lower<T> {
    fn lower(self) -> Result<T, OtherApi>;
}

impl<A: Lower<B>, B> Lower<Option<B>> for Option<A> {
    fn lower(self) -> Result<Option<B>, OtherApi> {
        self.map(Lower::lower).transpose()
    }
}

impl<A: Lower<B>, B> Lower<Vec<B>> for Vec<A> {
    fn lower(self) -> Result<Vec<B>, OtherApi> {
        self.into_iter().map(Lower::lower).collect()
    }
}

impl Lift<model::ItemBody> for w::ItemBody {
    fn lift(self) -> model::ItemBody {
        use model::ItemBody as B;
        match self {
            w::ItemBody::Contact(x) => B::Contact(x.lift()),
            w::ItemBody::DirectoryUser(x) => B::DirectoryUser(x.lift()),
            w::ItemBody::Appointment(x) => B::Appointment(x.lift()),
            w::ItemBody::Task(x) => B::Task(x.lift()),
            w::ItemBody::ServiceCall(x) => B::ServiceCall(x.lift()),
            w::ItemBody::EmailMessage(x) => B::EmailMessage(x.lift()),
            w::ItemBody::Mailbox(x) => B::Mailbox(x.lift()),
            w::ItemBody::Company(x) => B::Company(x.lift()),
            w::ItemBody::Site(x) => B::Site(x.lift()),
            w::ItemBody::ContactType(x) => B::ContactType(x.lift()),
        }
    }
}

/// A host body is one of either model: a core body (`connector-api`,
/// `mapper-api`) or a mailbox body (`mailbox-api`).
impl Lift<mx::AnyBody> for model::ItemBody {
    fn lift(self) -> mx::AnyBody {
        use model::ItemBody as B;
        use mx::AnyBody::{Core, Mailbox};
        match self {
            B::Contact(x) => Core(w::ItemBody::Contact(x.lift())),
            B::DirectoryUser(x) => Core(w::ItemBody::DirectoryUser(x.lift())),
            B::Appointment(x) => Core(w::ItemBody::Appointment(x.lift())),
            B::Task(x) => Core(w::ItemBody::Task(x.lift())),
            B::ServiceCall(x) => Core(w::ItemBody::ServiceCall(x.lift())),
            B::EmailMessage(x) => Core(w::ItemBody::EmailMessage(x.lift())),
            B::Mailbox(x) => Core(w::ItemBody::Mailbox(x.lift())),
            B::Company(x) => Core(w::ItemBody::Company(x.lift())),
            B::Site(x) => Core(w::ItemBody::Site(x.lift())),
            B::ContactType(x) => Core(w::ItemBody::ContactType(x.lift())),
            B::Event(x) => Mailbox(mt::MailboxBody::Event(x.lift())),
            B::MailboxContact(x) => Mailbox(mt::MailboxBody::Contact(x.lift())),
            B::Todo(x) => Mailbox(mt::MailboxBody::Todo(x.lift())),
            B::MailboxInfo(x) => Mailbox(mt::MailboxBody::Mailbox(x.lift())),
        }
    }
}

impl Lift<model::ItemBody> for mx::AnyBody {
    fn lift(self) -> model::ItemBody {
        match self {
            mx::AnyBody::Core(x) => x.lift(),
            mx::AnyBody::Mailbox(x) => x.lift(),
        }
    }
}

impl Lower<w::ItemBody> for model::ItemBody {
    fn lower(self) -> Result<w::ItemBody, OtherApi> {
        let kind = self.kind_name();
        match Lift::<mx::AnyBody>::lift(self) {
            mx::AnyBody::Core(x) => Ok(x),
            mx::AnyBody::Mailbox(_) => Err(OtherApi { kind }),
        }
    }
}

impl Lift<model::ItemBody> for mt::MailboxBody {
    fn lift(self) -> model::ItemBody {
        match self {
            mt::MailboxBody::Event(x) => model::ItemBody::Event(x.lift()),
            mt::MailboxBody::Contact(x) => model::ItemBody::MailboxContact(x.lift()),
            mt::MailboxBody::Todo(x) => model::ItemBody::Todo(x.lift()),
            mt::MailboxBody::Mailbox(x) => model::ItemBody::MailboxInfo(x.lift()),
        }
    }
}

impl Lower<mt::MailboxBody> for model::ItemBody {
    fn lower(self) -> Result<mt::MailboxBody, OtherApi> {
        let kind = self.kind_name();
        match Lift::<mx::AnyBody>::lift(self) {
            mx::AnyBody::Mailbox(x) => Ok(x),
            mx::AnyBody::Core(_) => Err(OtherApi { kind }),
        }
    }
}

one_way! {
    w::Item, model::Item { id, version, removed, body }
    mt::MailboxItem, model::Item { id, version, removed, body }
}

// `mailbox-mapper-api` (0.1.4): items of either model go to the mapper as
// they are, so nothing is refused on the way.
one_way! {
    model::Item, mx::AnyItem { id, version, removed, body }
}

both_ways! {
    mm::Explanation, model::Explanation { source_id, steps }
    mm::WritePolicy, model::WritePolicy { update_existing, contact_types }
}

cases_both_ways! {
    mm::IntentAction, model::IntentAction { Upsert, Remove, Skip }
    mm::ContactTypesMode, model::ContactTypesMode { Replace, AddOnly }
}

/// Records the host sends through bindings that cannot carry every body:
/// the fields after `;` are lowered (and may refuse), the others lifted.
macro_rules! lowered {
    ($($a:path, $b:path { $($f:ident),* ; $($l:ident),* })*) => {$(
        impl Lower<$b> for $a {
            fn lower(self) -> Result<$b, OtherApi> {
                let $a { $($f,)* $($l),* } = self;
                type Out = $b;
                Ok(Out { $($f: $f.lift(),)* $($l: $l.lower()?),* })
            }
        }
    )*};
}

lowered! {
    model::Item, w::Item { id, version, removed; body }
    model::WriteOp, c::WriteOp { op_id, action, target_id, fields; body }
    model::WriteOp, ma::MailboxWriteOp { op_id, action, target_id, fields; body }
}

/// A mapper's decision lifted to the model's intent with its typed policy.
/// The decision records of `mapper-api` and `mailbox-mapper-api` have the
/// same fields; only the intent's body differs (core or either model).
macro_rules! decision_lift {
    ($($decision:ty => $intent:path;)*) => {$(
        impl Lift<model::Intent> for $decision {
            fn lift(self) -> model::Intent {
                let $intent {
                    source_id,
                    action,
                    body,
                    match_keys,
                    route,
                    rule,
                    reason,
                } = self.intent;
                model::Intent {
                    source_id,
                    action: action.lift(),
                    body: body.lift(),
                    match_keys,
                    route: route.lift(),
                    rule,
                    reason,
                    policy: self.policy.lift(),
                }
            }
        }
    )*};
}

decision_lift! {
    m::Decision => m::Intent;
    mx::AnyDecision => mx::AnyIntent;
}
