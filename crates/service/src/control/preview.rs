//! Filter preview: for every source item of a dry-run plan, which mapper
//! rule (filter) took it or why none did, where it lands (site, contact
//! types) and the action the engine planned — before anything is written.

use super::plans::PlanItem;
use serde::{Deserialize, Serialize};
use syncbridge_model::ItemBody;
use syncbridge_sync::plan::Action;

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

/// The preview of a plan's items.
pub fn rows(items: &[PlanItem]) -> Vec<PreviewRow> {
    items
        .iter()
        .map(|item| {
            let op = &item.op;
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
                rule: op.decided.mapper_rule.clone(),
                reason: op.decided.reason.clone(),
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
    use super::*;
    use syncbridge_sync::plan::{Decided, Origin, PlannedOp};

    #[test]
    fn rule_and_reason_come_from_the_typed_decision_whatever_they_contain() {
        // Quotes, colons and semicolons in a rule name once broke the parsing of the
        // planner's sentence; the preview now reads the fields.
        let decided = Decided {
            mapper_rule: r#"filter#2 group="Sales: EMEA; West""#.into(),
            reason: "enabled and licensed: match upn:a@b".into(),
            engine_rule: "no link and no match: create".into(),
        };
        let item = PlanItem {
            seq: 1,
            page: 0,
            op: PlannedOp {
                op_id: "o1".into(),
                source_id: "u1".into(),
                action: Action::Create,
                target_id: None,
                changes: Vec::new(),
                body: None,
                fields_after: Default::default(),
                origin: Origin::Created,
                match_keys: Vec::new(),
                decided: decided.clone(),
                retry: false,
                prior_provenance: None,
                inactive_after: false,
                target_seen: None,
                back: Vec::new(),
                back_body: None,
                held: Vec::new(),
                resolved: Vec::new(),
            },
        };
        let row = rows(&[item]).remove(0);
        assert_eq!(row.rule, decided.mapper_rule);
        assert_eq!(row.reason, decided.reason);
        assert_eq!(
            decided.to_string(),
            r#"mapper rule "filter#2 group=\"Sales: EMEA; West\"": enabled and licensed: match upn:a@b; no link and no match: create"#
        );
    }
}
