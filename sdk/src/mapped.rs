//! Conversions between the core mapper records (`mapper-api`) and those of
//! either model (`mailbox-mapper-api`, WIT 0.1.4).

use crate::types::*;

impl From<ItemBody> for AnyBody {
    fn from(body: ItemBody) -> Self {
        AnyBody::Core(body)
    }
}

impl From<mailbox::MailboxBody> for AnyBody {
    fn from(body: mailbox::MailboxBody) -> Self {
        AnyBody::Mailbox(body)
    }
}

impl AnyBody {
    /// The kind's name, as the WIT names the case (`appointment`, `event`...).
    pub fn kind_name(&self) -> &'static str {
        match self {
            AnyBody::Core(body) => match body {
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
            },
            AnyBody::Mailbox(body) => match body {
                mailbox::MailboxBody::Event(_) => "event",
                mailbox::MailboxBody::Contact(_) => "mailbox-contact",
                mailbox::MailboxBody::Todo(_) => "todo",
                mailbox::MailboxBody::Mailbox(_) => "mailbox-info",
            },
        }
    }
}

impl From<Item> for AnyItem {
    fn from(item: Item) -> Self {
        AnyItem {
            id: item.id,
            version: item.version,
            removed: item.removed,
            body: item.body.map(AnyBody::Core),
        }
    }
}

/// A core item, or `unsupported` naming the mailbox item's kind: what a
/// mapper that maps only core items answers for a mailbox item.
impl TryFrom<AnyItem> for Item {
    type Error = PluginError;

    fn try_from(item: AnyItem) -> Result<Self, PluginError> {
        let body = match item.body {
            None => None,
            Some(AnyBody::Core(body)) => Some(body),
            Some(mailbox @ AnyBody::Mailbox(_)) => {
                return Err(PluginError::Unsupported(format!(
                    "item {}: this mapper does not map {} items (mailbox items); implement `Mapper::decide_any` to map them",
                    item.id,
                    mailbox.kind_name()
                )))
            }
        };
        Ok(Item {
            id: item.id,
            version: item.version,
            removed: item.removed,
            body,
        })
    }
}

impl From<Intent> for AnyIntent {
    fn from(intent: Intent) -> Self {
        AnyIntent {
            source_id: intent.source_id,
            action: intent.action,
            body: intent.body.map(AnyBody::Core),
            match_keys: intent.match_keys,
            route: intent.route,
            rule: intent.rule,
            reason: intent.reason,
        }
    }
}

impl From<Decision> for AnyDecision {
    fn from(decision: Decision) -> Self {
        AnyDecision {
            intent: decision.intent.into(),
            policy: decision.policy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn company(id: &str) -> ItemBody {
        ItemBody::Company(CompanyRef {
            id: id.into(),
            name: None,
        })
    }

    #[test]
    fn core_items_pass_both_ways_and_mailbox_items_are_refused_by_kind() {
        let item = Item {
            id: "c1".into(),
            version: Some("v1".into()),
            removed: None,
            body: Some(company("c1")),
        };
        let back = Item::try_from(AnyItem::from(item.clone())).unwrap();
        assert_eq!(back.id, item.id);
        assert_eq!(back.version, item.version);
        assert!(matches!(back.body, Some(ItemBody::Company(c)) if c.id == "c1"));

        let todo = AnyItem {
            id: "t1".into(),
            version: None,
            removed: None,
            body: Some(AnyBody::Mailbox(mailbox::MailboxBody::Todo(
                mailbox::Todo {
                    subject: "x".into(),
                    body: None,
                    start: None,
                    due: None,
                    status: TaskStatus::NotStarted,
                    percent_complete: 0,
                    completed: None,
                    categories: Vec::new(),
                    anchor: None,
                },
            ))),
        };
        let refused = Item::try_from(todo).unwrap_err().describe();
        assert!(
            refused.starts_with("unsupported")
                && refused.contains("t1")
                && refused.contains("todo"),
            "{refused}"
        );
    }
}
