//! # `psa-exchange` — the mapper of flow 1 (PSA ⇄ Exchange calendars, to-dos and contacts)
//!
//! A pure mapper over both item models (WIT 0.1.4 `mailbox-mapper-api`): core items of the
//! Autotask connector's calendar scopes in, mailbox items of the `ews` / `graph` connectors out,
//! and Exchange appointments back into the PSA. One profile per resource and direction uses it
//! (`docs/architecture.md`, "Flow 1's configuration").
//!
//! ## Options (JSON)
//!
//! ```json
//! {
//!   "direction": "to-exchange" | "to-psa",   // required
//!   "import": "all" | "no-detail",           // to-psa; default "all"
//!   "import_free_time": true                 // to-psa; default true
//! }
//! ```
//!
//! Unknown fields are refused (`invalid`, naming the field); the derived options schema says
//! `additionalProperties: false`, so the host refuses them when the profile is saved. `import`
//! and `import_free_time` are accepted but not used `to-exchange`. The product's third import
//! choice, "do not import", is no profile at all.
//!
//! ## `direction: to-exchange` (PSA items become mailbox items)
//!
//! Every mailbox item written carries `anchor = "sb:<source item id>"` (the marker of a
//! PSA-originated item) and the match key `anchor:sb:<source item id>`, so a lost link relinks.
//!
//! | source body | rule | mailbox body |
//! |---|---|---|
//! | `appointment` | `appointment-to-event` | `event`: single, or a series master with the RRULE (exdates → deleted occurrences); start/end zones completed to IANA + Windows ids ([`zones`]; none when the PSA sent none, the series then in UTC); subject, show-as, sensitivity, organizer, attendees (responses parsed), location, categories; body as text |
//! | `task` (to-do) | `task-to-todo` | `todo`: subject = title, body, start, due, status, completed (percent complete 100 when completed, else 0) |
//! | `service-call` | `service-call-to-event` | `event` (one way): subject `Service call: <first line of the description>`, else `Service call: ticket 12` / `tickets 12, task:7`, else `Service call <id>`; start/end, show-as busy, category `Service call`; the body lists company, tickets, resources, status and `Canceled: yes` |
//! | `contact` | `contact-to-mailbox-contact` | `mailbox-contact`: given name, surname, display name (else first + last), e-mails (`email`, then the attributes `emailAddress2`, `emailAddress3`), business and mobile phone, job title, company name |
//! | mailbox `event` | `event-to-appointment-write-back` | `appointment` with all detail, whatever the direction option says, private or not: the engine turns an Exchange item back into the PSA's model to write date/time changes back (`start`, `end`) |
//! | mailbox `todo` | `todo-to-task-write-back` | `task`, likewise (`start`, `due`) |
//! | removed | `removed` | intent `remove` |
//! | anything else | `skip-kind` | intent `skip`, the reason naming the kind |
//!
//! PSA fields with no Exchange equivalent are written as text into the body (for a contact:
//! the notes): after the item's own text, a blank line, the header line `-- PSA fields --`
//! and `Name: value` lines ([`details`]). Service calls: `Company`, `Tickets`, `Resources`,
//! `Status`, `Canceled`. Contacts: `Company ID`, `Site`, `Contact types`, `Active: no` (only
//! when inactive), then the contact's attributes other than the e-mail addresses, sorted by
//! name and value (`extension` as `Extension`, `externalID` as `External ID`, any other by
//! its own name). Appointments and to-dos of the Autotask connector carry no fields Exchange
//! lacks, so they get no block. The same input gives byte-identical text. The write-back
//! mapping takes the block off the body again.
//!
//! ## `direction: to-psa` (Exchange appointments imported into the PSA)
//!
//! A mailbox `event`, checked in this order:
//!
//! 1. anchor starting `sb:` → `skip-psa-originated` ("PSA-originated: its changes flow back
//!    through the PSA → Exchange profile, date and time only");
//! 2. show-as free and `import_free_time: false` → `skip-free-time`;
//! 3. sensitivity private or confidential, whatever `import` says → `private-no-detail`;
//! 4. `import: no-detail` → `no-detail`;
//! 5. otherwise → `event-to-appointment` (all detail, like the event: the zone's IANA name, the
//!    RRULE and deleted occurrences, an HTML body as text; the Windows zone id, the anchor and
//!    the reminder go into route attributes `windows_zone`, `anchor`, `reminder_minutes`).
//!
//! Without detail only start, end, all-day, show-as, sensitivity and the recurrence are kept;
//! subject, body, location, attendees, organizer and categories are dropped. Autotask refuses
//! an appointment without a title, so the subject is the fixed title **`Busy`** (`no-detail`)
//! or **`Private appointment`** (`private-no-detail`). Removed items → `remove` (`removed`);
//! other kinds → `skip` (`skip-kind`).
//!
//! Every decision has the default write policy. `explain` lists the direction, the body kind,
//! the rule with its reason, and the action.

pub mod details;
pub mod options;
mod to_exchange;
mod to_psa;
pub mod zones;

#[cfg(test)]
mod tests;

pub use options::{Direction, Import, Options};
pub use to_exchange::{
    appointment_of_event, contact_of, event_of_appointment, event_of_service_call, task_of_todo,
    todo_of_task,
};
pub use to_psa::import_event;

use syncbridge_sdk::prelude::*;

/// The mapper.
pub struct PsaExchange;

/// One item's outcome, before it becomes an intent.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub action: IntentAction,
    pub body: Option<AnyBody>,
    pub match_keys: Vec<String>,
    pub route: Vec<Attribute>,
    /// Stable kebab-case rule name.
    pub rule: &'static str,
    /// Why, in words.
    pub reason: String,
}

impl Outcome {
    /// An upsert of `body`.
    pub fn upsert(body: AnyBody, rule: &'static str, reason: impl Into<String>) -> Self {
        Outcome {
            action: IntentAction::Upsert,
            body: Some(body),
            match_keys: Vec::new(),
            route: Vec::new(),
            rule,
            reason: reason.into(),
        }
    }

    /// The same outcome with these route attributes.
    pub fn with_route(self, route: Vec<Attribute>) -> Self {
        Outcome { route, ..self }
    }

    /// A skip.
    pub fn skip(rule: &'static str, reason: impl Into<String>) -> Self {
        Outcome {
            action: IntentAction::Skip,
            body: None,
            match_keys: Vec::new(),
            route: Vec::new(),
            rule,
            reason: reason.into(),
        }
    }
}

fn action_name(action: IntentAction) -> &'static str {
    match action {
        IntentAction::Upsert => "upsert",
        IntentAction::Remove => "remove",
        IntentAction::Skip => "skip",
    }
}

/// What the rules do with one item under `options`.
pub fn outcome(item: &AnyItem, options: &Options) -> Outcome {
    // An Exchange item that left the calendar's window (past days) was not
    // deleted: what it was imported as stays.
    if matches!(item.removed, Some(Removal::OutOfScope)) && options.direction == Direction::ToPsa {
        return Outcome::skip(
            "left-window",
            "the Exchange item left the synchronized window (past days): what it was imported as is kept",
        );
    }
    if item.removed.is_some() {
        return Outcome {
            action: IntentAction::Remove,
            body: None,
            match_keys: Vec::new(),
            route: Vec::new(),
            rule: "removed",
            reason: "removed at the source: the item it was written as is removed".into(),
        };
    }
    let Some(body) = &item.body else {
        return Outcome::skip("skip-kind", "the item has no body");
    };
    match options.direction {
        Direction::ToExchange => to_exchange::outcome(&item.id, body),
        Direction::ToPsa => to_psa::outcome(body, options),
    }
}

/// The decision for one item.
pub fn decision(item: AnyItem, options: &Options) -> AnyDecision {
    let o = outcome(&item, options);
    AnyDecision {
        intent: AnyIntent {
            source_id: item.id,
            action: o.action,
            body: o.body,
            match_keys: o.match_keys,
            route: o.route,
            rule: o.rule.into(),
            reason: o.reason,
        },
        policy: WritePolicy::default(),
    }
}

impl Mapper for PsaExchange {
    type Options = Options;

    fn decide_any(items: Vec<AnyItem>, options: &Options) -> Result<Vec<AnyDecision>, PluginError> {
        Ok(items.into_iter().map(|i| decision(i, options)).collect())
    }

    fn explain_any(item: AnyItem, options: &Options) -> Result<Explanation, PluginError> {
        let kind = match (&item.removed, &item.body) {
            (Some(_), _) => "removed item".to_owned(),
            (None, Some(body)) => format!("{} body", body.kind_name()),
            (None, None) => "item without a body".to_owned(),
        };
        let o = outcome(&item, options);
        let mut steps = vec![
            format!("direction: {}", options.direction.as_str()),
            kind,
            format!("rule {}: {}", o.rule, o.reason),
            format!("action: {}", action_name(o.action)),
        ];
        if let Some(body) = &o.body {
            steps.push(format!("writes a {} body", body.kind_name()));
        }
        steps.extend(
            o.route
                .iter()
                .map(|a| format!("route {}: {}", a.name, a.value)),
        );
        Ok(Explanation {
            source_id: item.id,
            steps,
        })
    }
}

syncbridge_sdk::export_mapper!(PsaExchange);
