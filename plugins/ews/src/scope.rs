//! Scope strings.
//!
//! - Mailbox scopes (WIT `mailbox-api`, [`MailboxScope`]):
//!   `calendar:mailbox=<address>,past=<days>,future=<days>[,series=occurrences]`,
//!   `contacts:mailbox=<address>`,
//!   `tasks:mailbox=<address>`, `public-contacts:folder=<path>`.
//! - E-mail scopes (core `connector-api`, [`MailScope`]): `inbox:mailbox=<address>`,
//!   `outbox:mailbox=<address>[,check=true]`.

use crate::ops::Kind;
use syncbridge_sdk::scope::{self, Scope};
use syncbridge_sdk::types::PluginError;

const USAGE: &str = "calendar:mailbox=<address>[,past=<days>,future=<days>,series=occurrences], contacts:mailbox=<address>, tasks:mailbox=<address> or public-contacts:folder=<path>";

/// Days of the calendar window when a scope does not say.
pub const DEFAULT_DAYS: i64 = 30;

/// A parsed mailbox scope.
#[derive(Debug, Clone, PartialEq)]
pub enum MailboxScope {
    /// A distinguished folder of a mailbox.
    Mailbox {
        kind: Kind,
        mailbox: String,
        /// Calendar window: days back, days of recurring items ahead.
        past: i64,
        future: i64,
        /// `series=occurrences`: each series answered as its occurrences in the window.
        occurrences: bool,
    },
    /// A public folder of contacts, by path (`Customers/Contoso`).
    PublicContacts { path: Vec<String> },
}

/// The scope kinds this connector serves.
pub const KINDS: [&str; 4] = ["calendar", "contacts", "tasks", "public-contacts"];

impl MailboxScope {
    /// Parses a scope string.
    pub fn parse(s: &str) -> Result<Self, PluginError> {
        let parsed = Scope::parse(
            s,
            &["mailbox", "past", "future", "series"],
            Some("folder"),
            USAGE,
        )?;
        let kind = match parsed.name() {
            "calendar" => Kind::Calendar,
            "contacts" => Kind::Contacts,
            "tasks" => Kind::Tasks,
            "publiccontacts" => {
                let folder = parsed.option("folder").ok_or_else(|| {
                    PluginError::invalid_field(
                        "scope",
                        format!("public-contacts needs folder=<path>; use {USAGE}"),
                    )
                })?;
                let path: Vec<String> = folder
                    .split(['/', '\\'])
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect();
                if path.is_empty() {
                    return Err(PluginError::invalid_field(
                        "scope",
                        "folder= names no folder",
                    ));
                }
                return Ok(MailboxScope::PublicContacts { path });
            }
            other => return Err(scope::unknown(other, USAGE)),
        };
        let mailbox = mailbox_of(&parsed, s, USAGE)?;
        let days = |k: &str| -> Result<i64, PluginError> {
            let d = parsed.number(k)?.unwrap_or(DEFAULT_DAYS);
            if !(0..=3650).contains(&d) {
                return Err(PluginError::invalid_field(
                    "scope",
                    format!("{k}={d} must be 0..=3650 days"),
                ));
            }
            Ok(d)
        };
        let occurrences = syncbridge_sdk::series::expands(parsed.option("series"))?;
        if occurrences && kind != Kind::Calendar {
            return Err(PluginError::invalid_field(
                "scope",
                format!("series= is an option of calendar scopes only; use {USAGE}"),
            ));
        }
        Ok(MailboxScope::Mailbox {
            kind,
            mailbox,
            past: days("past")?,
            future: days("future")?,
            occurrences,
        })
    }
}

/// The `mailbox=` address of a scope, lower case; refused without an `@`.
fn mailbox_of(parsed: &Scope, s: &str, usage: &str) -> Result<String, PluginError> {
    parsed
        .option("mailbox")
        .filter(|m| m.contains('@'))
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| {
            PluginError::invalid_field(
                "scope",
                format!("{s:?} names no mailbox address; use {usage}"),
            )
        })
}

const MAIL_USAGE: &str = "inbox:mailbox=<address> or outbox:mailbox=<address>[,check=true]";

/// The e-mail scope kinds, served through the core `connector-api` (not mailbox scopes).
pub const MAIL_KINDS: [&str; 2] = ["inbox", "outbox"];

/// A parsed e-mail scope.
#[derive(Debug, Clone, PartialEq)]
pub enum MailScope {
    /// The messages in a mailbox's Inbox: read, and failed ones moved to `Undeliverable`.
    Inbox { mailbox: String },
    /// Mail sent through a mailbox (`SendAndSaveCopy`); nothing is read back. With `check`
    /// (`check=true`) a pull makes one request as the sending account instead (Test & Enable's
    /// check of the outgoing account), still sending nothing.
    Outbox { mailbox: String, check: bool },
}

impl MailScope {
    /// Parses `inbox:mailbox=<address>` or `outbox:mailbox=<address>[,check=true]`.
    pub fn parse(s: &str) -> Result<Self, PluginError> {
        let parsed = Scope::parse(s, &["mailbox", "check"], None, MAIL_USAGE)?;
        let check = parsed.flag("check", MAIL_USAGE)?;
        match parsed.name() {
            "inbox" if check.is_some() => Err(PluginError::invalid_field(
                "scope",
                format!("check= is an option of outbox scopes only; use {MAIL_USAGE}"),
            )),
            "inbox" => Ok(MailScope::Inbox {
                mailbox: mailbox_of(&parsed, s, MAIL_USAGE)?,
            }),
            "outbox" => Ok(MailScope::Outbox {
                mailbox: mailbox_of(&parsed, s, MAIL_USAGE)?,
                check: check.unwrap_or(false),
            }),
            other => Err(scope::unknown(other, MAIL_USAGE)),
        }
    }

    /// The mailbox the scope reads or sends through.
    pub fn mailbox(&self) -> &str {
        match self {
            MailScope::Inbox { mailbox } | MailScope::Outbox { mailbox, .. } => mailbox,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse() {
        assert_eq!(
            MailboxScope::parse("calendar:mailbox=Alice@Contoso.com,past=10,future=90").unwrap(),
            MailboxScope::Mailbox {
                kind: Kind::Calendar,
                mailbox: "alice@contoso.com".into(),
                past: 10,
                future: 90,
                occurrences: false,
            }
        );
        assert!(matches!(
            MailboxScope::parse("calendar:mailbox=a@b.c,series=occurrences").unwrap(),
            MailboxScope::Mailbox {
                occurrences: true,
                ..
            }
        ));
        assert!(matches!(
            MailboxScope::parse("contacts:mailbox=a@b.c").unwrap(),
            MailboxScope::Mailbox {
                kind: Kind::Contacts,
                past: 30,
                ..
            }
        ));
        assert_eq!(
            MailboxScope::parse("public-contacts:folder=Customers/Contoso, Ltd").unwrap(),
            MailboxScope::PublicContacts {
                path: vec!["Customers".into(), "Contoso, Ltd".into()]
            }
        );
        for bad in [
            "calendar",
            "calendar:mailbox=alice",
            "notes:mailbox=a@b.c",
            "calendar:mailbox=a@b.c,past=-1",
            "calendar:mailbox=a@b.c,series=all",
            "contacts:mailbox=a@b.c,series=occurrences",
            "public-contacts:folder=/",
        ] {
            assert_eq!(
                MailboxScope::parse(bad).unwrap_err().class(),
                "invalid",
                "{bad}"
            );
        }
    }

    #[test]
    fn mail_scopes_parse() {
        assert_eq!(
            MailScope::parse("inbox:mailbox=Queue@Contoso.com").unwrap(),
            MailScope::Inbox {
                mailbox: "queue@contoso.com".into()
            }
        );
        assert_eq!(
            MailScope::parse("Outbox:mailbox= Alice@contoso.com ").unwrap(),
            MailScope::Outbox {
                mailbox: "alice@contoso.com".into(),
                check: false,
            }
        );
        // `check=true`: a pull checks the outgoing account instead of reading nothing.
        assert_eq!(
            MailScope::parse("outbox:mailbox=alice@contoso.com,check=true").unwrap(),
            MailScope::Outbox {
                mailbox: "alice@contoso.com".into(),
                check: true,
            }
        );
        assert_eq!(
            MailScope::parse("outbox:mailbox=alice@contoso.com,check=false").unwrap(),
            MailScope::parse("outbox:mailbox=alice@contoso.com").unwrap()
        );
        for (bad, words) in [
            ("inbox", "names no mailbox address"),
            ("inbox:mailbox=", "names no mailbox address"),
            ("outbox:mailbox=alice", "names no mailbox address"),
            (
                "inbox:mailbox=a@b.c,past=3",
                "unknown scope option \"past=3\"",
            ),
            ("inbox:mailbox=a@b.c,folder=x", "unknown scope option"),
            (
                "inbox:mailbox=a@b.c,check=true",
                "check= is an option of outbox",
            ),
            (
                "outbox:mailbox=a@b.c,check=yes",
                "check=\"yes\" is neither true nor false",
            ),
            ("calendar:mailbox=a@b.c", "unknown scope \"calendar\""),
        ] {
            let e = MailScope::parse(bad).unwrap_err();
            assert_eq!(e.class(), "invalid", "{bad}");
            let text = e.describe();
            assert!(
                text.contains(words) && text.contains(MAIL_USAGE),
                "{bad}: {text}"
            );
        }
        // The mailbox scopes do not take the e-mail kinds.
        assert!(MailboxScope::parse("inbox:mailbox=a@b.c").is_err());
        assert!(MAIL_KINDS.iter().all(|k| !KINDS.contains(k)));
    }
}
