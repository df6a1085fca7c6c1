//! Conversions between the current WIT bindings and the host model.
//!
//! `Lift<T>` converts a value into `T`; it is implemented both ways for every
//! record the runtime passes across the boundary, field by field, so a record
//! that gains or loses a field in either place stops compiling here.

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
same!(String, bool, u16, u32, u64);

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
    w::Item, model::Item { id, version, removed, body }
    c::Description, model::Description { name, reads, writes, config_schema, credential_slots }
    c::Finding, model::Finding { check, outcome, cause, remedy }
    c::PullRequest, model::PullRequest { scope, cursor, max_items }
    c::Page, model::Page { items, cursor, more, full }
    c::WriteOp, model::WriteOp { op_id, action, target_id, body, fields }
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
    w::ItemBody, model::ItemBody {
        Contact(x), DirectoryUser(x), Appointment(x), Task(x), ServiceCall(x),
        EmailMessage(x), Mailbox(x), Company(x), Site(x), ContactType(x),
    }
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

/// A current mapper's decision: the intent with its typed policy.
impl Lift<model::Intent> for m::Decision {
    fn lift(self) -> model::Intent {
        let m::Intent {
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
