//! `to-psa`: Exchange appointments imported into the PSA, with all detail or none; free time
//! optional; private ones always without detail; PSA-originated ones never.

use crate::to_exchange::appointment_of_event;
use crate::{Import, Options, Outcome};
use syncbridge_sdk::prelude::*;
use syncbridge_sdk::types::mailbox::{Event, MailboxBody};

/// The title of an appointment imported without detail (`import: no-detail`).
pub const NO_DETAIL_TITLE: &str = "Busy";
/// The title of a private or confidential appointment (always imported without detail).
pub const PRIVATE_TITLE: &str = "Private appointment";

/// What the `skip-psa-originated` rule says.
pub const PSA_ORIGINATED: &str =
    "PSA-originated: its changes flow back through the PSA → Exchange profile, date and time only";

/// Start, end, all-day, show-as, sensitivity and the recurrence, under `title`: subject, body,
/// location, attendees, organizer and categories are dropped.
fn without_detail(a: Appointment, title: &str) -> Appointment {
    Appointment {
        subject: Some(title.into()),
        organizer: None,
        attendees: Vec::new(),
        location: None,
        body: None,
        categories: Vec::new(),
        ..a
    }
}

/// The rule for one Exchange event under the options.
pub fn import_event(e: &Event, options: &Options) -> Outcome {
    if e.anchor.as_deref().is_some_and(|a| a.starts_with("sb:")) {
        return Outcome::skip("skip-psa-originated", PSA_ORIGINATED);
    }
    if e.show_as == ShowAs::Free && !options.import_free_time {
        return Outcome::skip(
            "skip-free-time",
            "event is free time and import_free_time is off: skipped",
        );
    }
    let (a, mut route) = appointment_of_event(e);
    let private = matches!(
        e.sensitivity,
        Sensitivity::Private | Sensitivity::Confidential
    );
    let (a, rule, reason) = if private {
        (
            without_detail(a, PRIVATE_TITLE),
            "private-no-detail",
            format!(
                "private appointments arrive without detail: only start, end, all-day, show-as and the recurrence are imported, titled \"{PRIVATE_TITLE}\""
            ),
        )
    } else if options.import == Import::NoDetail {
        (
            without_detail(a, NO_DETAIL_TITLE),
            "no-detail",
            format!(
                "import is no-detail: only start, end, all-day, show-as and the recurrence are imported, titled \"{NO_DETAIL_TITLE}\""
            ),
        )
    } else {
        (
            a,
            "event-to-appointment",
            "import is all: the Exchange appointment is imported with all detail".to_owned(),
        )
    };
    if rule != "event-to-appointment" {
        // Without detail, only the zone's Windows id is kept (it is no detail).
        route.retain(|r| r.name == "windows_zone");
    }
    Outcome::upsert(AnyBody::Core(ItemBody::Appointment(a)), rule, reason).with_route(route)
}

/// The rule for one item `to-psa`.
pub fn outcome(body: &AnyBody, options: &Options) -> Outcome {
    match body {
        AnyBody::Mailbox(MailboxBody::Event(e)) => import_event(e, options),
        other => Outcome::skip(
            "skip-kind",
            format!(
                "{} items have no rule to-psa: it imports Exchange appointments (event items) only",
                other.kind_name()
            ),
        ),
    }
}
