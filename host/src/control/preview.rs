//! Filter preview: for every source item of a dry-run plan, which mapper
//! rule (filter) took it or why none did, where it lands (site, contact
//! types) and the action the engine planned — before anything is written.

use super::plans::PlanItem;
use crate::engine::plan::Action;
use crate::runtime::bindings::types::ItemBody;
use serde::{Deserialize, Serialize};

/// One line of a preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewRow {
    pub source_id: String,
    /// The person, as the target will know them (e-mail or name), if mapped.
    pub who: Option<String>,
    /// The mapper rule that decided: a filter, or why none matched.
    pub rule: String,
    /// The mapper's reason in words.
    pub reason: String,
    pub site: Option<String>,
    pub contact_types: Vec<String>,
    /// create, update, link, deactivate, reactivate, delete, or noop (nothing to write).
    pub action: Action,
    /// The existing target record, when one is linked or matched.
    pub target_id: Option<String>,
}

fn label(id: &str, name: &Option<String>) -> String {
    match name {
        Some(n) if !n.is_empty() => format!("{n} ({id})"),
        _ => id.to_owned(),
    }
}

/// Splits the planner's `mapper rule "<rule>": <reason>` note.
fn split_rule(note: &str) -> (String, String) {
    let Some(rest) = note.strip_prefix("mapper rule ") else {
        return (note.to_owned(), String::new());
    };
    // The rule is Debug-quoted; find its closing quote.
    let mut escaped = false;
    for (i, c) in rest.char_indices().skip(1) {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => {
                let rule: String =
                    serde_json::from_str(&rest[..=i]).unwrap_or_else(|_| rest[1..i].to_owned());
                let reason = rest[i + 1..].trim_start_matches(':').trim().to_owned();
                return (rule, reason);
            }
            _ => escaped = false,
        }
    }
    (rest.to_owned(), String::new())
}

/// The preview of a plan's items.
pub fn rows(items: &[PlanItem]) -> Vec<PreviewRow> {
    items
        .iter()
        .map(|item| {
            let op = &item.op;
            let (rule, reason) = split_rule(&op.rule);
            let (who, site, contact_types) = match &op.body {
                Some(ItemBody::Contact(c)) => (
                    c.email.clone().or_else(|| {
                        let name = [c.first_name.as_deref(), c.last_name.as_deref()]
                            .into_iter()
                            .flatten()
                            .collect::<Vec<_>>()
                            .join(" ");
                        (!name.is_empty()).then_some(name)
                    }),
                    c.site.as_ref().map(|s| label(&s.id, &s.name)),
                    c.contact_types
                        .iter()
                        .map(|t| label(&t.id, &t.name))
                        .collect(),
                ),
                _ => (None, None, Vec::new()),
            };
            PreviewRow {
                source_id: op.source_id.clone(),
                who,
                rule,
                reason,
                site,
                contact_types,
                action: op.action,
                target_id: op.target_id.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::split_rule;

    #[test]
    fn splits_the_planner_note_into_rule_and_reason() {
        assert_eq!(
            split_rule(
                r#"mapper rule "filter 2 (group \"Sales\")": enabled and licensed; match upn:a@b"#
            ),
            (
                "filter 2 (group \"Sales\")".to_owned(),
                "enabled and licensed; match upn:a@b".to_owned()
            )
        );
        assert_eq!(split_rule("engine"), ("engine".to_owned(), String::new()));
    }
}
