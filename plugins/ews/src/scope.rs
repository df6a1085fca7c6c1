//! Mailbox scopes: `calendar:mailbox=<address>,past=<days>,future=<days>`,
//! `contacts:mailbox=<address>`, `tasks:mailbox=<address>`, `public-contacts:folder=<path>`.

use crate::ops::Kind;
use syncbridge_sdk::scope::{self, Scope};
use syncbridge_sdk::types::PluginError;

const USAGE: &str = "calendar:mailbox=<address>[,past=<days>,future=<days>], contacts:mailbox=<address>, tasks:mailbox=<address> or public-contacts:folder=<path>";

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
    },
    /// A public folder of contacts, by path (`Customers/Contoso`).
    PublicContacts { path: Vec<String> },
}

/// The scope kinds this connector serves.
pub const KINDS: [&str; 4] = ["calendar", "contacts", "tasks", "public-contacts"];

impl MailboxScope {
    /// Parses a scope string.
    pub fn parse(s: &str) -> Result<Self, PluginError> {
        let parsed = Scope::parse(s, &["mailbox", "past", "future"], Some("folder"), USAGE)?;
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
        let mailbox = parsed
            .option("mailbox")
            .filter(|m| m.contains('@'))
            .ok_or_else(|| {
                PluginError::invalid_field(
                    "scope",
                    format!("{s:?} names no mailbox address; use {USAGE}"),
                )
            })?
            .to_ascii_lowercase();
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
        Ok(MailboxScope::Mailbox {
            kind,
            mailbox,
            past: days("past")?,
            future: days("future")?,
        })
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
                future: 90
            }
        );
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
            "public-contacts:folder=/",
        ] {
            assert_eq!(
                MailboxScope::parse(bad).unwrap_err().class(),
                "invalid",
                "{bad}"
            );
        }
    }
}
