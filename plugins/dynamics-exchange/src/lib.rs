//! # `dynamics-exchange` — the mapper of flow 3's processing (Dynamics 365 server-side sync)
//!
//! A pure mapper (WIT 0.1.4 `mailbox-mapper-api`) over `email-message` items, and over the
//! Dynamics appointments, tasks and contacts of a mailbox's owner and their mailbox forms. One
//! profile per mailbox and kind uses it (`docs/architecture.md`, "Flow 3's configuration").
//!
//! ## Options (JSON)
//!
//! ```json
//! {
//!   "kind": "incoming-email" | "outgoing-email" | "appointments" | "recurring-appointments"
//!         | "tasks" | "contacts",
//!   "process_from": "2026-11-01T00:00:00Z"          // incoming-email only; optional
//! }
//! ```
//!
//! Unknown fields are refused (`invalid`, naming the field); `process_from` must be RFC 3339
//! and is refused for any kind but `incoming-email`.
//!
//! ## `kind: incoming-email` (the Exchange Inbox → Dynamics e-mail activities)
//!
//! Checked in this order:
//!
//! 1. removed (deleted in, or moved out of, the Inbox) → `skip` (`left-inbox`): what was
//!    tracked stays in Dynamics;
//! 2. not an `email-message` → `skip` (`skip-kind`);
//! 3. neither a received nor a sent time → `skip` (`no-received-time`);
//! 4. received (else sent) before `process_from` → `skip` (`before-process-from`): the seed's
//!    "Email received after the date and time will be processed";
//! 5. otherwise → `upsert` (`track-incoming`) of the message as it is, with the match key
//!    `messageid:<internet message id>` when it has one, so a message already tracked (by
//!    another mailbox of the organization, or before the links were lost) is linked, never
//!    tracked twice. The write policy does not update existing activities: once tracked, the
//!    activity is Dynamics' (users set its regarding record, close it...).
//!
//! ## `kind: outgoing-email` (Dynamics e-mails pending send → sent through the mailbox)
//!
//! 1. removed (no longer pending: sent, cancelled or deleted in Dynamics) → `skip`
//!    (`no-longer-pending`);
//! 2. not an `email-message` → `skip` (`skip-kind`);
//! 3. otherwise → `upsert` (`send-outgoing`) of the message as it is, without match keys (a
//!    message is sent once, by its link), and a write policy that never updates: a sent message
//!    cannot be changed.
//!
//! ## `kind: appointments | recurring-appointments | tasks | contacts` (Dynamics ⇄ the mailbox; [`act`])
//!
//! The owner's Dynamics appointments, tasks and contacts become mailbox events, to-dos and
//! contacts anchored `d365:<row id>` with the match key `anchor:d365:<row id>` (a lost link
//! relinks instead of writing a second copy); mailbox items map back into Dynamics' model for
//! the write-back of the fields that flow both ways. A row gone from Dynamics (or a contact
//! deactivated there) → `remove`. Recurring series come from the `dynamics` connector already as
//! mailbox events (with their modified occurrences); the same rule serves both directions.
//!
//! `explain` lists the kind, the body kind, the rule with its reason, and the action.

pub mod act;
pub mod options;

#[cfg(test)]
mod tests;

pub use options::{Kind, Options};

use syncbridge_sdk::prelude::*;

/// The mapper.
pub struct DynamicsExchange;

/// One item's outcome, before it becomes a decision.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub action: IntentAction,
    pub body: Option<AnyBody>,
    pub match_keys: Vec<String>,
    /// Stable kebab-case rule name.
    pub rule: &'static str,
    /// Why, in words.
    pub reason: String,
}

impl Outcome {
    fn skip(rule: &'static str, reason: impl Into<String>) -> Self {
        Outcome {
            action: IntentAction::Skip,
            body: None,
            match_keys: Vec::new(),
            rule,
            reason: reason.into(),
        }
    }

    fn upsert(body: AnyBody, match_keys: Vec<String>, rule: &'static str, reason: String) -> Self {
        Outcome {
            action: IntentAction::Upsert,
            body: Some(body),
            match_keys,
            rule,
            reason,
        }
    }
}

/// The message of `item`, if its body is one.
fn message_of(item: &AnyItem) -> Option<&EmailMessage> {
    match &item.body {
        Some(AnyBody::Core(ItemBody::EmailMessage(m))) => Some(m),
        _ => None,
    }
}

fn kind_of(item: &AnyItem) -> String {
    match &item.body {
        Some(body) => body.kind_name().to_owned(),
        None => "no body".to_owned(),
    }
}

/// What the rules do with one item under `options`.
pub fn outcome(item: &AnyItem, options: &Options) -> Outcome {
    match options.kind {
        Kind::IncomingEmail => incoming(item, options),
        Kind::OutgoingEmail => outgoing(item),
        Kind::Appointments => act_outcome(item, "appointment"),
        Kind::RecurringAppointments => act_outcome(item, "series"),
        Kind::Tasks => act_outcome(item, "task"),
        Kind::Contacts => act_outcome(item, "contact"),
    }
}

fn act_outcome(item: &AnyItem, expected: &'static str) -> Outcome {
    if item.removed.is_some() {
        return Outcome {
            action: IntentAction::Remove,
            body: None,
            match_keys: Vec::new(),
            rule: "removed",
            reason: format!("the {expected} is gone from Dynamics: the mailbox item it was written as is removed"),
        };
    }
    match &item.body {
        Some(body) => act::outcome(&item.id, body, expected),
        None => Outcome::skip("skip-kind", "the item has no body"),
    }
}

fn incoming(item: &AnyItem, options: &Options) -> Outcome {
    if item.removed.is_some() {
        return Outcome::skip(
            "left-inbox",
            "the message was deleted in, or moved out of, the Inbox: what was tracked stays in Dynamics",
        );
    }
    let Some(message) = message_of(item) else {
        return Outcome::skip(
            "skip-kind",
            format!("only e-mail messages are tracked, not a {}", kind_of(item)),
        );
    };
    let Some((when, which)) = message
        .received
        .as_deref()
        .map(|t| (t, "received"))
        .or(message.sent.as_deref().map(|t| (t, "sent")))
    else {
        return Outcome::skip(
            "no-received-time",
            "the message has neither a received nor a sent time, so Process Email From cannot be applied to it",
        );
    };
    if let Some(from) = &options.process_from {
        match options::instant(when) {
            Some(at) if at < from.at => {
                return Outcome::skip(
                    "before-process-from",
                    format!(
                        "{which} {when}, before Process Email From ({}): only e-mail received after it is processed",
                        from.text
                    ),
                )
            }
            Some(_) => {}
            None => {
                return Outcome::skip(
                    "no-received-time",
                    format!("the message's {which} time {when:?} is not an RFC 3339 time"),
                )
            }
        }
    }
    let keys: Vec<String> = message
        .internet_message_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(|id| format!("messageid:{id}"))
        .into_iter()
        .collect();
    let reason = match &options.process_from {
        Some(from) => format!(
            "{which} {when}, after Process Email From ({}): tracked as an e-mail activity",
            from.text
        ),
        None => format!("{which} {when}: tracked as an e-mail activity"),
    };
    Outcome::upsert(
        AnyBody::Core(ItemBody::EmailMessage(message.clone())),
        keys,
        "track-incoming",
        reason,
    )
}

fn outgoing(item: &AnyItem) -> Outcome {
    if item.removed.is_some() {
        return Outcome::skip(
            "no-longer-pending",
            "the e-mail is no longer waiting to be sent (sent, cancelled or deleted in Dynamics): nothing to send",
        );
    }
    let Some(message) = message_of(item) else {
        return Outcome::skip(
            "skip-kind",
            format!("only e-mail messages are sent, not a {}", kind_of(item)),
        );
    };
    Outcome::upsert(
        AnyBody::Core(ItemBody::EmailMessage(message.clone())),
        Vec::new(),
        "send-outgoing",
        "pending send in Dynamics: sent through the mailbox, then marked sent".to_owned(),
    )
}

fn action_name(action: IntentAction) -> &'static str {
    match action {
        IntentAction::Upsert => "upsert",
        IntentAction::Remove => "remove",
        IntentAction::Skip => "skip",
    }
}

/// The decision for one item: e-mail activities and sent messages are never
/// updated; appointments, tasks and contacts are kept in step.
pub fn decision(item: AnyItem, options: &Options) -> AnyDecision {
    let o = outcome(&item, options);
    let email = matches!(options.kind, Kind::IncomingEmail | Kind::OutgoingEmail);
    AnyDecision {
        intent: AnyIntent {
            source_id: item.id,
            action: o.action,
            body: o.body,
            match_keys: o.match_keys,
            route: Vec::new(),
            rule: o.rule.into(),
            reason: o.reason,
        },
        policy: WritePolicy {
            update_existing: !email,
            ..WritePolicy::default()
        },
    }
}

impl Mapper for DynamicsExchange {
    type Options = Options;

    fn parse_options(options: &str) -> Result<Options, PluginError> {
        Options::parse(options)
    }

    fn decide_any(items: Vec<AnyItem>, options: &Options) -> Result<Vec<AnyDecision>, PluginError> {
        Ok(items.into_iter().map(|i| decision(i, options)).collect())
    }

    fn explain_any(item: AnyItem, options: &Options) -> Result<Explanation, PluginError> {
        let body = match &item.removed {
            Some(_) => "removed item".to_owned(),
            None => format!("{} body", kind_of(&item)),
        };
        let o = outcome(&item, options);
        let mut steps = vec![
            format!("kind: {}", options.kind.as_str()),
            body,
            format!("rule {}: {}", o.rule, o.reason),
            format!("action: {}", action_name(o.action)),
        ];
        steps.extend(o.match_keys.iter().map(|k| format!("match key: {k}")));
        Ok(Explanation {
            source_id: item.id,
            steps,
        })
    }
}

syncbridge_sdk::export_mapper!(DynamicsExchange);
