//! Planning: intents + links + matched target items → operations with
//! per-field changes. Pure: no I/O, so every rule is unit-tested here.

use super::fields::{flatten, is_blank, FieldMap};
use super::rules::{FieldRules, OnRemove};
use crate::runtime::bindings::mapper_api::{Intent, IntentAction};
use crate::runtime::bindings::types::ItemBody;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What the engine will do for one source item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Deactivate,
    Reactivate,
    Delete,
    /// Link to an existing target item without writing (matched, updates off).
    Link,
    Noop,
}

impl Action {
    /// Whether the target connector is called for it.
    pub fn writes(self) -> bool {
        !matches!(self, Action::Link | Action::Noop)
    }

    /// Whether it removes (for the brakes).
    pub fn removes(self) -> bool {
        matches!(self, Action::Deactivate | Action::Delete)
    }
}

/// How a link came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The profile created the target item: it owns it.
    Created,
    /// The profile found it by a match key.
    Matched,
}

/// One field before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// What the link table knows about one source item.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub target_id: String,
    pub fields: FieldMap,
    pub origin: Origin,
    pub active: bool,
}

/// An existing target item found by a match key.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetMatch {
    pub target_id: String,
    pub fields: FieldMap,
    pub active: bool,
}

/// One planned operation.
#[derive(Debug, Clone)]
pub struct PlannedOp {
    pub op_id: String,
    pub source_id: String,
    pub action: Action,
    pub target_id: Option<String>,
    pub changes: Vec<FieldChange>,
    /// Desired body sent to the target.
    pub body: Option<ItemBody>,
    /// Field values the target holds after the op (stored in the link).
    pub fields_after: FieldMap,
    pub origin: Origin,
    pub match_keys: Vec<String>,
    /// The mapper rule and the engine rule that decided it, for explain.
    pub rule: String,
    /// A retry of a quarantined item (its quarantine row is cleared on success).
    pub retry: bool,
}

/// Diffs `desired` against `current` under the rules.
pub fn diff(
    desired: &FieldMap,
    current: &FieldMap,
    rules: &FieldRules,
) -> (Vec<FieldChange>, FieldMap) {
    let mut after = current.clone();
    let mut changes = Vec::new();
    let names: std::collections::BTreeSet<&String> = desired.keys().chain(current.keys()).collect();
    for name in names {
        if !rules.source_writes(name) {
            continue;
        }
        let want = desired.get(name);
        let have = current.get(name);
        if is_blank(want) && rules.blank_never_overwrites {
            continue;
        }
        let want = want.filter(|v| !v.trim().is_empty());
        if want != have {
            changes.push(FieldChange {
                field: name.clone(),
                before: have.cloned(),
                after: want.cloned(),
            });
            match want {
                Some(v) => after.insert(name.clone(), v.clone()),
                None => after.remove(name),
            };
        }
    }
    (changes, after)
}

/// Plans one intent.
pub fn plan_intent(
    op_id: String,
    intent: &Intent,
    link: Option<&Link>,
    matched: Option<&TargetMatch>,
    rules: &FieldRules,
) -> PlannedOp {
    let desired = intent.body.as_ref().map(flatten).unwrap_or_default();
    let mut op = PlannedOp {
        op_id,
        source_id: intent.source_id.clone(),
        action: Action::Noop,
        target_id: None,
        changes: Vec::new(),
        body: intent.body.clone(),
        fields_after: FieldMap::new(),
        origin: Origin::Created,
        match_keys: intent.match_keys.clone(),
        rule: format!("mapper rule {:?}: {}", intent.rule, intent.reason),
        retry: false,
    };
    match (intent.action, link) {
        (IntentAction::Upsert, Some(link)) => {
            op.target_id = Some(link.target_id.clone());
            op.origin = link.origin;
            let may_update = link.origin == Origin::Created || rules.update_matched;
            let (changes, after) = if may_update {
                diff(&desired, &link.fields, rules)
            } else {
                (Vec::new(), link.fields.clone())
            };
            op.fields_after = after;
            op.changes = changes;
            op.action = if !link.active && rules.reactivate {
                Action::Reactivate
            } else if !op.changes.is_empty() {
                Action::Update
            } else {
                Action::Noop
            };
            op.rule.push_str(match op.action {
                Action::Reactivate => {
                    "; linked target item is inactive and its source is active: reactivate"
                }
                Action::Update => "; linked: changed fields written",
                _ if !may_update => "; matched item and updates of matched items are off",
                _ => "; linked: nothing changed",
            });
        }
        (IntentAction::Upsert, None) => match matched {
            Some(m) => {
                op.target_id = Some(m.target_id.clone());
                op.origin = Origin::Matched;
                if rules.update_matched {
                    let (changes, after) = diff(&desired, &m.fields, rules);
                    op.changes = changes;
                    op.fields_after = after;
                } else {
                    op.fields_after = m.fields.clone();
                }
                op.action = if !m.active && rules.reactivate {
                    Action::Reactivate
                } else if !op.changes.is_empty() {
                    Action::Update
                } else {
                    Action::Link
                };
                op.rule.push_str("; matched an existing target item by key");
            }
            None => {
                op.action = Action::Create;
                op.fields_after = desired
                    .iter()
                    .filter(|(_, v)| !v.trim().is_empty())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                op.changes = op
                    .fields_after
                    .iter()
                    .map(|(k, v)| FieldChange {
                        field: k.clone(),
                        before: None,
                        after: Some(v.clone()),
                    })
                    .collect();
                op.rule.push_str("; no link and no match: create");
            }
        },
        (IntentAction::Remove, Some(link)) => {
            op.target_id = Some(link.target_id.clone());
            op.origin = link.origin;
            op.fields_after = link.fields.clone();
            op.body = None;
            let owned = link.origin == Origin::Created || rules.remove_matched;
            op.action = match rules.on_remove {
                _ if !owned => Action::Noop,
                _ if !link.active => Action::Noop,
                OnRemove::Deactivate => Action::Deactivate,
                OnRemove::Delete => Action::Delete,
                OnRemove::Ignore => Action::Noop,
            };
            op.rule.push_str(if owned {
                "; source removed"
            } else {
                "; source removed but the profile does not own the matched item"
            });
        }
        (IntentAction::Remove, None) | (IntentAction::Skip, _) => {
            op.body = None;
            op.rule.push_str("; nothing linked to change");
        }
    }
    op
}

/// Counts for the brakes and the run summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanCounts {
    pub create: u64,
    pub update: u64,
    pub deactivate: u64,
    pub reactivate: u64,
    pub delete: u64,
    pub link: u64,
    pub noop: u64,
}

impl PlanCounts {
    /// Adds one op.
    pub fn add(&mut self, action: Action) {
        match action {
            Action::Create => self.create += 1,
            Action::Update => self.update += 1,
            Action::Deactivate => self.deactivate += 1,
            Action::Reactivate => self.reactivate += 1,
            Action::Delete => self.delete += 1,
            Action::Link => self.link += 1,
            Action::Noop => self.noop += 1,
        }
    }

    /// Deactivations + deletions.
    pub fn removals(&self) -> u64 {
        self.deactivate + self.delete
    }
}

/// Whether a plan must be held for approval: removals above the count or share.
pub fn brakes_hold(counts: &PlanCounts, linked: u64, rules: &FieldRules) -> Option<String> {
    let removals = counts.removals();
    if removals == 0 {
        return None;
    }
    let share = removals as f64 / linked.max(1) as f64;
    if removals > rules.brakes.max_removals || share > rules.brakes.max_removal_share {
        Some(format!(
            "the plan removes {removals} of {linked} linked items ({:.0} %), above the brakes ({} items or {:.0} %); review and approve the plan to apply it",
            share * 100.0,
            rules.brakes.max_removals,
            rules.brakes.max_removal_share * 100.0
        ))
    } else {
        None
    }
}

/// Index of links by source id.
pub type Links = HashMap<String, Link>;
