//! Planning: intents + links + matched target items → operations with
//! per-field changes. Pure: no I/O, so every rule is unit-tested here.

use super::fields::{flatten, is_blank, FieldMap};
use super::merge::{merge, FieldConflict, MergeContext, Side};
use super::rules::BackFlow;
use super::rules::{FieldRules, OnRemove, OnTargetGone};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::collections::HashMap;
use syncbridge_model::{ContactTypesMode, Intent, IntentAction, ItemBody};

/// What the engine will do for one source item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Deactivate,
    Reactivate,
    Delete,
    /// Link to an existing target item without writing (matched, updates off).
    Link,
    /// Forget the link without writing: its target item is gone and the
    /// rules say not to create it again.
    Unlink,
    /// Write only the source: two-way fields changed in the target.
    WriteBack,
    Noop,
}

impl Action {
    /// The stored and serialised name (`create`, `update`, ..., `noop`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Deactivate => "deactivate",
            Action::Reactivate => "reactivate",
            Action::Delete => "delete",
            Action::Link => "link",
            Action::Unlink => "unlink",
            Action::WriteBack => "write-back",
            Action::Noop => "noop",
        }
    }

    /// The action of a stored name; `None` for a name this version does not know.
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "create" => Action::Create,
            "update" => Action::Update,
            "deactivate" => Action::Deactivate,
            "reactivate" => Action::Reactivate,
            "delete" => Action::Delete,
            "link" => Action::Link,
            "unlink" => Action::Unlink,
            "write-back" => Action::WriteBack,
            "noop" => Action::Noop,
            _ => return None,
        })
    }

    /// Whether the target connector is called for it.
    pub fn writes(self) -> bool {
        !matches!(
            self,
            Action::Link | Action::Unlink | Action::WriteBack | Action::Noop
        )
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
    /// The field values the engine last wrote to (or matched in) the target.
    pub fields: FieldMap,
    pub origin: Origin,
    pub active: bool,
    /// Per-field provenance JSON as stored.
    pub provenance: String,
    /// What the target held when the engine last read it (right after its
    /// own write, or on a later read); `None` when never read.
    pub seen: Option<TargetSnapshot>,
}

/// A target item as read: its fields and whether it is active (what a link
/// keeps), plus, when read this run, its modification time and body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSnapshot {
    pub fields: FieldMap,
    pub active: bool,
    #[serde(skip)]
    pub version: Option<String>,
    #[serde(skip)]
    pub body: Option<Box<ItemBody>>,
}

/// What planning knows of a linked target item now.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetNow {
    /// Read this run.
    Present(TargetSnapshot),
    /// Looked up this run and not found: deleted (or moved out of the
    /// target scope) outside syncbridge.
    Gone,
}

impl Link {
    /// The target's fields as planning should diff them: a field the target
    /// still holds as it was last read counts as what the engine wrote (the
    /// target's own form of it, say a trimmed or reformatted value, is an echo,
    /// not an edit); a field changed since is taken as it is now (someone
    /// else's edit, which the source's value then puts back).
    pub fn effective_fields(&self, now: &TargetSnapshot) -> FieldMap {
        let Some(seen) = &self.seen else {
            return now.fields.clone();
        };
        let mut eff = now.fields.clone();
        let names: std::collections::BTreeSet<&String> =
            self.fields.keys().chain(seen.fields.keys()).collect();
        for name in names {
            if seen.fields.get(name) == now.fields.get(name) {
                match self.fields.get(name) {
                    Some(v) => eff.insert(name.clone(), v.clone()),
                    None => eff.remove(name),
                };
            }
        }
        eff
    }

    /// Whether the target item differs from what the engine last knew of it:
    /// changed by someone else (not the echo of the engine's own write).
    pub fn drifted(&self, now: &TargetSnapshot) -> bool {
        match &self.seen {
            Some(seen) => seen.fields != now.fields || seen.active != now.active,
            None => {
                now.active != self.active
                    || self
                        .fields
                        .iter()
                        .any(|(k, v)| now.fields.get(k) != Some(v))
            }
        }
    }
}

/// An existing target item found by a match key.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetMatch {
    pub target_id: String,
    pub fields: FieldMap,
    pub active: bool,
}

/// One planned operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// The rules that decided it, for explain and the preview.
    pub decided: Decided,
    /// A retry of a quarantined item (its quarantine row is cleared on success).
    pub retry: bool,
    /// The link's provenance before this op (merged with the fields it writes).
    pub prior_provenance: Option<String>,
    /// The target item is inactive and stays so after this op (linked or
    /// updated without reactivation); the link must not claim it is active.
    #[serde(default)]
    pub inactive_after: bool,
    /// The target item as planning read it (kept in the link when nothing is
    /// written; a write reads the item back instead).
    #[serde(default)]
    pub target_seen: Option<TargetSnapshot>,
    /// Two-way fields written back to the source (changed in the target).
    #[serde(default)]
    pub back: Vec<FieldChange>,
    /// The target item's body, carrying `back`'s values to the source.
    #[serde(default)]
    pub back_body: Option<ItemBody>,
    /// Conflicts held for review: neither side is written for these fields.
    #[serde(default)]
    pub held: Vec<FieldConflict>,
    /// Held conflicts an operator resolved that this op settles.
    #[serde(default)]
    pub resolved: Vec<String>,
}

impl PlannedOp {
    /// Whether applying it records anything (a write either way, a link, a
    /// held conflict), as opposed to a no-op.
    pub fn records(&self) -> bool {
        self.action != Action::Noop || !self.held.is_empty() || !self.resolved.is_empty()
    }
}

/// What planning knows of a pair beyond the link and the target item.
#[derive(Debug, Clone, Default)]
pub struct PairContext {
    /// The source item's modification time, when it has one.
    pub source_version: Option<String>,
    /// This item's held conflicts, by field, with the side an operator chose.
    pub conflicts: BTreeMap<String, Option<Side>>,
}

/// Which rules decided an operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decided {
    /// The mapper's rule (`filter#2 department=IT`, `disabled`...), or the
    /// part of the host that decided instead (`engine`, `recovery`).
    pub mapper_rule: String,
    /// The mapper's reason in words.
    pub reason: String,
    /// The engine's rule that turned the intent into this action.
    pub engine_rule: String,
}

impl Decided {
    /// Decided by the host itself, not by a mapper rule.
    pub fn by_host(who: &str, why: &str) -> Self {
        Self {
            mapper_rule: who.to_owned(),
            reason: why.to_owned(),
            engine_rule: String::new(),
        }
    }
}

impl std::fmt::Display for Decided {
    /// `mapper rule "filter#2 department=IT": <reason>; <engine rule>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mapper rule {:?}", self.mapper_rule)?;
        if !self.reason.is_empty() {
            write!(f, ": {}", self.reason)?;
        }
        if !self.engine_rule.is_empty() {
            write!(f, "; {}", self.engine_rule)?;
        }
        Ok(())
    }
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

/// The desired fields against one current state: with add-only contact types, the
/// current types are kept and the desired ones added after them.
fn desired_against(intent: &Intent, desired: &FieldMap, current: &FieldMap) -> FieldMap {
    let add_only = intent.policy.contact_types == ContactTypesMode::AddOnly;
    let mut desired = desired.clone();
    if let (true, Some(have)) = (add_only, current.get("contact_types")) {
        let mut types: Vec<&str> = have.split(',').filter(|t| !t.trim().is_empty()).collect();
        let want = desired.get("contact_types").cloned().unwrap_or_default();
        for t in want.split(',').filter(|t| !t.trim().is_empty()) {
            if !types.contains(&t) {
                types.push(t);
            }
        }
        desired.insert("contact_types".into(), types.join(","));
    }
    desired
}

/// With `rewrite_on_change`, a change writes every non-blank field the source owns: the
/// fields that did not change (by the link) are added with their value before and after,
/// so the target gets them again and an edit made there is overwritten.
fn rewrite_unchanged(
    changes: &mut Vec<FieldChange>,
    desired: &FieldMap,
    current: &FieldMap,
    rules: &FieldRules,
) {
    if !rules.rewrite_on_change || changes.is_empty() {
        return;
    }
    for (name, value) in desired {
        if value.trim().is_empty()
            || !rules.source_writes(name)
            || changes.iter().any(|c| &c.field == name)
        {
            continue;
        }
        changes.push(FieldChange {
            field: name.clone(),
            before: current.get(name).cloned(),
            after: Some(value.clone()),
        });
    }
    changes.sort_by(|a, b| a.field.cmp(&b.field));
}

/// Plans one intent.
pub fn plan_intent(
    op_id: String,
    intent: &Intent,
    link: Option<&Link>,
    now: Option<&TargetNow>,
    matched: Option<&TargetMatch>,
    rules: &FieldRules,
    pair: &PairContext,
) -> PlannedOp {
    let desired = intent.body.as_ref().map(flatten).unwrap_or_default();
    // "Update existing" off: an existing target item is linked, never changed.
    let create_only = !intent.policy.update_existing;
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
        decided: Decided {
            mapper_rule: intent.rule.clone(),
            reason: intent.reason.clone(),
            engine_rule: String::new(),
        },
        retry: false,
        prior_provenance: link.map(|l| l.provenance.clone()),
        inactive_after: false,
        target_seen: match now {
            Some(TargetNow::Present(s)) => Some(s.clone()),
            _ => matched.map(|m| TargetSnapshot {
                fields: m.fields.clone(),
                active: m.active,
                version: None,
                body: None,
            }),
        },
        back: Vec::new(),
        back_body: None,
        held: Vec::new(),
        resolved: Vec::new(),
    };
    let gone = matches!(now, Some(TargetNow::Gone));
    match (intent.action, link) {
        (IntentAction::Upsert, Some(link)) if gone && create_only => {
            op.action = Action::Noop;
            op.target_id = Some(link.target_id.clone());
            op.decided.engine_rule =
                "the linked target item is gone and the intent is create-only (update existing off): left as it is".to_owned();
        }
        (IntentAction::Upsert, Some(link)) if gone => {
            op.prior_provenance = None;
            match rules.on_target_gone {
                OnTargetGone::Recreate => {
                    create(&mut op, &desired);
                    op.decided.engine_rule = "the linked target item is gone (deleted outside syncbridge): created again".to_owned();
                }
                OnTargetGone::Unlink => {
                    op.action = Action::Unlink;
                    op.target_id = Some(link.target_id.clone());
                    op.body = None;
                    op.decided.engine_rule = "the linked target item is gone (deleted outside syncbridge): unlinked, as the rules say (on_target_gone = unlink)".to_owned();
                }
            }
        }
        (IntentAction::Upsert, Some(link)) => {
            op.target_id = Some(link.target_id.clone());
            op.origin = link.origin;
            let may_update =
                !create_only && (link.origin == Origin::Created || rules.update_matched);
            // What the target holds: as read this run, else as the link remembers.
            let (current, active) = match now {
                Some(TargetNow::Present(snapshot)) => {
                    (link.effective_fields(snapshot), snapshot.active)
                }
                _ => (link.fields.clone(), link.active),
            };
            let two_way = match now {
                Some(TargetNow::Present(snapshot)) if may_update && rules.two_way() => {
                    Some(snapshot)
                }
                _ => None,
            };
            let (changes, after) = if let Some(snapshot) = two_way {
                let desired = desired_against(intent, &desired, &current);
                // A held field's link value is the agreed base, not what the
                // target holds: compare the target's value as it is.
                let mut current = current.clone();
                for field in pair.conflicts.keys() {
                    match snapshot.fields.get(field) {
                        Some(v) => current.insert(field.clone(), v.clone()),
                        None => current.remove(field),
                    };
                }
                let resolutions: BTreeMap<String, Side> = pair
                    .conflicts
                    .iter()
                    .filter_map(|(f, side)| side.map(|s| (f.clone(), s)))
                    .collect();
                let ctx = MergeContext {
                    source_modified: pair.source_version.as_deref(),
                    target_modified: snapshot.version.as_deref(),
                    back_allowed: match rules.back_flow {
                        BackFlow::All => true,
                        BackFlow::CreatedOnly => link.origin == Origin::Created,
                    },
                    resolutions: &resolutions,
                };
                let merged = merge(&desired, &current, &link.fields, rules, &ctx);
                op.back = merged.to_source;
                op.back_body = (!op.back.is_empty())
                    .then(|| snapshot.body.as_deref().cloned())
                    .flatten();
                op.held = merged.held;
                op.resolved = merged.resolved;
                (merged.to_target, merged.agreed)
            } else if may_update {
                let desired = desired_against(intent, &desired, &current);
                let (mut changes, after) = diff(&desired, &current, rules);
                rewrite_unchanged(&mut changes, &desired, &current, rules);
                (changes, after)
            } else {
                (Vec::new(), current.clone())
            };
            op.fields_after = after;
            op.changes = changes;
            op.action = if !active && rules.reactivate && !create_only {
                Action::Reactivate
            } else if !op.changes.is_empty() {
                Action::Update
            } else if !op.back.is_empty() {
                Action::WriteBack
            } else if two_way.is_some() && op.fields_after != link.fields {
                // Both sides already agree on a new value (say, a write-back
                // whose run died before recording it): the link learns it.
                Action::Link
            } else {
                Action::Noop
            };
            op.inactive_after = !active && op.action != Action::Reactivate;
            op.decided.engine_rule = (match op.action {
                Action::Reactivate => {
                    "linked target item is inactive and its source is active: reactivate"
                }
                Action::Update => "linked: changed fields written",
                Action::WriteBack => "linked: two-way fields changed in the target written back to the source",
                _ if create_only => {
                    "the target item exists and the intent is create-only (update existing off): left as it is"
                }
                _ if !may_update => "matched item and updates of matched items are off",
                _ => "linked: nothing changed",
            }).to_owned();
        }
        (IntentAction::Upsert, None) => match matched {
            Some(m) => {
                op.target_id = Some(m.target_id.clone());
                op.origin = Origin::Matched;
                if rules.update_matched && !create_only {
                    let desired = desired_against(intent, &desired, &m.fields);
                    let (changes, after) = diff(&desired, &m.fields, rules);
                    op.changes = changes;
                    op.fields_after = after;
                } else {
                    op.fields_after = m.fields.clone();
                }
                op.action = if !m.active && rules.reactivate && !create_only {
                    Action::Reactivate
                } else if !op.changes.is_empty() {
                    Action::Update
                } else {
                    Action::Link
                };
                op.inactive_after = !m.active && op.action != Action::Reactivate;
                op.decided.engine_rule = (if create_only {
                    "matched an existing target item by key: linked, not changed (create-only)"
                } else {
                    "matched an existing target item by key"
                })
                .to_owned();
            }
            None => {
                create(&mut op, &desired);
                op.decided.engine_rule = "no link and no match: create".to_owned();
            }
        },
        (IntentAction::Remove, Some(link)) if gone => {
            op.action = Action::Unlink;
            op.target_id = Some(link.target_id.clone());
            op.body = None;
            op.decided.engine_rule =
                "source removed and the linked target item is already gone: unlinked".to_owned();
        }
        (IntentAction::Remove, Some(link)) => {
            op.target_id = Some(link.target_id.clone());
            op.origin = link.origin;
            op.fields_after = link.fields.clone();
            op.body = None;
            let owned = link.origin == Origin::Created || rules.remove_matched;
            op.action = match rules.on_remove {
                _ if create_only => Action::Noop,
                _ if !owned => Action::Noop,
                _ if !link.active => Action::Noop,
                OnRemove::Deactivate => Action::Deactivate,
                OnRemove::Delete => Action::Delete,
                OnRemove::Ignore => Action::Noop,
            };
            op.decided.engine_rule = (if create_only {
                "source removed but the intent is create-only (update existing off): left as it is"
            } else if owned {
                "source removed"
            } else {
                "source removed but the profile does not own the matched item"
            })
            .to_owned();
        }
        (IntentAction::Remove, None) | (IntentAction::Skip, _) => {
            op.body = None;
            op.decided.engine_rule = "nothing linked to change".to_owned();
        }
    }
    op
}

/// Turns `op` into a create of every non-blank desired field.
fn create(op: &mut PlannedOp, desired: &FieldMap) {
    op.action = Action::Create;
    op.target_id = None;
    op.origin = Origin::Created;
    op.target_seen = None;
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
    /// Links forgotten because their target item is gone.
    #[serde(default)]
    pub unlink: u64,
    /// Pairs where only the source was written (two-way fields).
    #[serde(default)]
    pub write_back: u64,
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
            Action::Unlink => self.unlink += 1,
            Action::WriteBack => self.write_back += 1,
            Action::Noop => self.noop += 1,
        }
    }

    /// Operations that write to the target.
    pub fn writes(&self) -> u64 {
        self.create
            + self.update
            + self.deactivate
            + self.reactivate
            + self.delete
            + self.write_back
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
    let by_share = removals >= rules.brakes.share_from && share > rules.brakes.max_removal_share;
    if removals > rules.brakes.max_removals || by_share {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Brakes, Truth};
    use syncbridge_model::{Contact, WritePolicy};

    fn contact(first: Option<&str>, title: Option<&str>, email: &str) -> ItemBody {
        ItemBody::Contact(Contact {
            first_name: first.map(Into::into),
            last_name: Some("Lovelace".into()),
            display_name: None,
            title: title.map(Into::into),
            email: Some(email.into()),
            phone: None,
            mobile: None,
            company: None,
            site: None,
            contact_types: vec![],
            active: true,
            extra: vec![],
        })
    }

    fn upsert(body: ItemBody) -> Intent {
        Intent {
            source_id: "u1".into(),
            action: IntentAction::Upsert,
            body: Some(body),
            match_keys: vec!["email:ada@x.test".into()],
            route: vec![],
            rule: "r".into(),
            reason: "test".into(),
            policy: WritePolicy::default(),
        }
    }

    fn remove() -> Intent {
        Intent {
            action: IntentAction::Remove,
            body: None,
            ..upsert(contact(None, None, "ada@x.test"))
        }
    }

    fn link(origin: Origin, active: bool, first: &str, title: &str) -> Link {
        Link {
            target_id: "t1".into(),
            fields: flatten(&contact(Some(first), Some(title), "ada@x.test")),
            origin,
            active,
            provenance: "{}".into(),
            seen: None,
        }
    }

    fn now(first: &str, title: &str, active: bool) -> TargetNow {
        TargetNow::Present(TargetSnapshot {
            fields: flatten(&contact(Some(first), Some(title), "ada@x.test")),
            active,
            version: None,
            body: None,
        })
    }

    #[test]
    fn a_target_edit_is_put_back_even_when_the_source_did_not_change() {
        let l = link(Origin::Created, true, "Ada", "CTO");
        let intent = upsert(contact(Some("Ada"), Some("CTO"), "ada@x.test"));
        let rules = FieldRules::default();
        // The target says what the link remembers: nothing to write.
        let same = now("Ada", "CTO", true);
        let op = plan_intent(
            "o".into(),
            &intent,
            Some(&l),
            Some(&same),
            None,
            &rules,
            &PairContext::default(),
        );
        assert_eq!(op.action, Action::Noop, "{op:?}");
        // Someone renamed it in the target: the source's value goes back.
        let edited = now("Edited", "CTO", true);
        let op = plan_intent(
            "o".into(),
            &intent,
            Some(&l),
            Some(&edited),
            None,
            &rules,
            &PairContext::default(),
        );
        assert_eq!(op.action, Action::Update);
        assert_eq!(
            op.changes,
            vec![FieldChange {
                field: "first_name".into(),
                before: Some("Edited".into()),
                after: Some("Ada".into()),
            }]
        );
        // A target-owned field edited in the target stays as it is.
        let mut owned = rules.clone();
        owned.truth.insert("first_name".into(), Truth::Target);
        let op = plan_intent(
            "o".into(),
            &intent,
            Some(&l),
            Some(&edited),
            None,
            &owned,
            &PairContext::default(),
        );
        assert_eq!(op.action, Action::Noop);
    }

    #[test]
    fn a_target_deactivated_by_hand_is_reactivated_while_its_source_is_active() {
        let l = link(Origin::Created, true, "Ada", "CTO");
        let intent = upsert(contact(Some("Ada"), Some("Lead"), "ada@x.test"));
        let off = now("Ada", "CTO", false);
        let op = plan_intent(
            "o".into(),
            &intent,
            Some(&l),
            Some(&off),
            None,
            &FieldRules::default(),
            &PairContext::default(),
        );
        assert_eq!(
            op.action,
            Action::Reactivate,
            "the link said active; the target is not"
        );
        assert!(
            op.changes.iter().any(|c| c.field == "title"),
            "and the change is written"
        );
        let no = FieldRules {
            reactivate: false,
            ..FieldRules::default()
        };
        let op = plan_intent(
            "o".into(),
            &intent,
            Some(&l),
            Some(&off),
            None,
            &no,
            &PairContext::default(),
        );
        assert_eq!(op.action, Action::Update);
        assert!(op.inactive_after, "the link must not claim it is active");
    }

    #[test]
    fn the_targets_own_form_of_a_written_value_is_an_echo_not_an_edit() {
        // The engine wrote "Ada " and the target stored "Ada" (it trims).
        let mut l = link(Origin::Created, true, "Ada ", "CTO");
        let stored = TargetSnapshot {
            fields: flatten(&contact(Some("Ada"), Some("CTO"), "ada@x.test")),
            active: true,
            version: None,
            body: None,
        };
        l.seen = Some(stored.clone());
        let intent = upsert(contact(Some("Ada "), Some("CTO"), "ada@x.test"));
        let op = plan_intent(
            "o".into(),
            &intent,
            Some(&l),
            Some(&TargetNow::Present(stored.clone())),
            None,
            &FieldRules::default(),
            &PairContext::default(),
        );
        assert_eq!(op.action, Action::Noop, "no ping-pong: {op:?}");
        assert!(!l.drifted(&stored));
        // Edited since: a drift, and the source's value goes back.
        let edited = now("Edited", "CTO", true);
        let TargetNow::Present(snapshot) = &edited else {
            unreachable!()
        };
        assert!(l.drifted(snapshot));
        let op = plan_intent(
            "o".into(),
            &intent,
            Some(&l),
            Some(&edited),
            None,
            &FieldRules::default(),
            &PairContext::default(),
        );
        assert_eq!(op.action, Action::Update);
    }

    #[test]
    fn a_linked_target_deleted_by_hand_is_created_again_or_unlinked_by_rule() {
        let l = link(Origin::Matched, true, "Ada", "CTO");
        let intent = upsert(contact(Some("Ada"), Some("CTO"), "ada@x.test"));
        let op = plan_intent(
            "o".into(),
            &intent,
            Some(&l),
            Some(&TargetNow::Gone),
            None,
            &FieldRules::default(),
            &PairContext::default(),
        );
        assert_eq!(op.action, Action::Create);
        assert_eq!(op.target_id, None);
        assert_eq!(
            op.origin,
            Origin::Created,
            "the profile owns what it created"
        );
        assert!(op.decided.engine_rule.contains("gone"), "{}", op.decided);
        let unlink = FieldRules {
            on_target_gone: OnTargetGone::Unlink,
            ..FieldRules::default()
        };
        let op = plan_intent(
            "o".into(),
            &intent,
            Some(&l),
            Some(&TargetNow::Gone),
            None,
            &unlink,
            &PairContext::default(),
        );
        assert_eq!(op.action, Action::Unlink);
        assert!(!op.action.writes());
        // A removed source whose target is already gone is unlinked, not deactivated.
        let op = plan_intent(
            "o".into(),
            &remove(),
            Some(&l),
            Some(&TargetNow::Gone),
            None,
            &FieldRules::default(),
            &PairContext::default(),
        );
        assert_eq!(op.action, Action::Unlink);
        // Create-only intents never create an item again.
        let op = plan_intent(
            "o".into(),
            &create_only(intent),
            Some(&l),
            Some(&TargetNow::Gone),
            None,
            &FieldRules::default(),
            &PairContext::default(),
        );
        assert_eq!(op.action, Action::Noop);
    }

    #[test]
    fn unlinked_unmatched_items_are_created_with_every_non_blank_field() {
        let op = plan_intent(
            "o".into(),
            &upsert(contact(Some("Ada"), None, "ada@x.test")),
            None,
            None,
            None,
            &FieldRules::default(),
            &PairContext::default(),
        );
        assert_eq!(op.action, Action::Create);
        let fields: Vec<&str> = op.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["email", "first_name", "last_name"]);
    }

    #[test]
    fn only_changed_fields_are_updated_and_blank_never_overwrites() {
        let l = link(Origin::Created, true, "Ada", "Countess");
        let op = plan_intent(
            "o".into(),
            &upsert(contact(Some("Augusta"), None, "ada@x.test")),
            Some(&l),
            None,
            None,
            &FieldRules::default(),
            &PairContext::default(),
        );
        assert_eq!(op.action, Action::Update);
        assert_eq!(
            op.changes,
            vec![FieldChange {
                field: "first_name".into(),
                before: Some("Ada".into()),
                after: Some("Augusta".into())
            }]
        );
        assert_eq!(
            op.fields_after.get("title").map(String::as_str),
            Some("Countess")
        );
        // With the rule off, the blank title clears the target's.
        let rules = FieldRules {
            blank_never_overwrites: false,
            ..FieldRules::default()
        };
        let op = plan_intent(
            "o".into(),
            &upsert(contact(Some("Ada"), None, "ada@x.test")),
            Some(&l),
            None,
            None,
            &rules,
            &PairContext::default(),
        );
        assert_eq!(
            op.changes,
            vec![FieldChange {
                field: "title".into(),
                before: Some("Countess".into()),
                after: None
            }]
        );
    }

    #[test]
    fn target_owned_fields_and_update_only_lists_are_respected() {
        let l = link(Origin::Created, true, "Ada", "Countess");
        let mut truth = std::collections::BTreeMap::new();
        truth.insert("title".to_string(), Truth::Target);
        let rules = FieldRules {
            truth,
            ..FieldRules::default()
        };
        let op = plan_intent(
            "o".into(),
            &upsert(contact(Some("Ada"), Some("Engineer"), "ada@x.test")),
            Some(&l),
            None,
            None,
            &rules,
            &PairContext::default(),
        );
        assert_eq!(op.action, Action::Noop);
        let rules = FieldRules {
            update_only: Some(vec!["title".into()]),
            ..FieldRules::default()
        };
        let op = plan_intent(
            "o".into(),
            &upsert(contact(Some("Augusta"), Some("Engineer"), "ada@x.test")),
            Some(&l),
            None,
            None,
            &rules,
            &PairContext::default(),
        );
        assert_eq!(op.changes.len(), 1);
        assert_eq!(op.changes[0].field, "title");
    }

    #[test]
    fn matched_items_are_linked_updated_or_reactivated_as_the_rules_say() {
        let m = TargetMatch {
            target_id: "t9".into(),
            fields: flatten(&contact(Some("Ada"), None, "ada@x.test")),
            active: true,
        };
        let intent = upsert(contact(Some("Ada"), Some("Engineer"), "ada@x.test"));
        let op = plan_intent(
            "o".into(),
            &intent,
            None,
            None,
            Some(&m),
            &FieldRules::default(),
            &PairContext::default(),
        );
        assert_eq!(
            (op.action, op.origin, op.target_id.as_deref()),
            (Action::Update, Origin::Matched, Some("t9"))
        );
        let off = FieldRules {
            update_matched: false,
            ..FieldRules::default()
        };
        assert_eq!(
            plan_intent(
                "o".into(),
                &intent,
                None,
                None,
                Some(&m),
                &off,
                &PairContext::default()
            )
            .action,
            Action::Link
        );
        let inactive = TargetMatch { active: false, ..m };
        assert_eq!(
            plan_intent(
                "o".into(),
                &intent,
                None,
                None,
                Some(&inactive),
                &FieldRules::default(),
                &PairContext::default()
            )
            .action,
            Action::Reactivate
        );
        // Reactivation off: linked (or updated) but it stays inactive, and the
        // link must say so, or a later reactivation would never be planned.
        let no_reactivate = FieldRules {
            reactivate: false,
            ..FieldRules::default()
        };
        let op = plan_intent(
            "o".into(),
            &intent,
            None,
            None,
            Some(&inactive),
            &no_reactivate,
            &PairContext::default(),
        );
        assert_eq!((op.action, op.inactive_after), (Action::Update, true));
        let op = plan_intent(
            "o".into(),
            &intent,
            None,
            None,
            Some(&inactive),
            &FieldRules::default(),
            &PairContext::default(),
        );
        assert!(
            !op.inactive_after,
            "a reactivated item is active after the op"
        );
    }

    #[test]
    fn removals_touch_only_what_the_profile_owns() {
        let created = link(Origin::Created, true, "Ada", "C");
        let matched = link(Origin::Matched, true, "Ada", "C");
        assert_eq!(
            plan_intent(
                "o".into(),
                &remove(),
                Some(&created),
                None,
                None,
                &FieldRules::default(),
                &PairContext::default()
            )
            .action,
            Action::Deactivate
        );
        let strict = FieldRules {
            remove_matched: false,
            ..FieldRules::default()
        };
        assert_eq!(
            plan_intent(
                "o".into(),
                &remove(),
                Some(&matched),
                None,
                None,
                &strict,
                &PairContext::default()
            )
            .action,
            Action::Noop
        );
        let delete = FieldRules {
            on_remove: OnRemove::Delete,
            ..FieldRules::default()
        };
        assert_eq!(
            plan_intent(
                "o".into(),
                &remove(),
                Some(&created),
                None,
                None,
                &delete,
                &PairContext::default()
            )
            .action,
            Action::Delete
        );
        // Nothing linked: nothing to remove, whatever the target holds.
        assert_eq!(
            plan_intent(
                "o".into(),
                &remove(),
                None,
                None,
                None,
                &FieldRules::default(),
                &PairContext::default()
            )
            .action,
            Action::Noop
        );
        // Already inactive: nothing to do.
        let inactive = link(Origin::Created, false, "Ada", "C");
        assert_eq!(
            plan_intent(
                "o".into(),
                &remove(),
                Some(&inactive),
                None,
                None,
                &FieldRules::default(),
                &PairContext::default()
            )
            .action,
            Action::Noop
        );
    }

    fn create_only(mut intent: Intent) -> Intent {
        intent.policy.update_existing = false;
        intent
    }

    fn add_only(mut intent: Intent) -> Intent {
        intent.policy.contact_types = ContactTypesMode::AddOnly;
        intent
    }

    #[test]
    fn create_only_intents_never_change_an_existing_item() {
        let rules = FieldRules::default();
        let changed = create_only(upsert(contact(Some("Augusta"), Some("Eng"), "ada@x.test")));
        // Linked, created by the profile: not updated (it exists now).
        let created = link(Origin::Created, true, "Ada", "C");
        let op = plan_intent(
            "o".into(),
            &changed,
            Some(&created),
            None,
            None,
            &rules,
            &PairContext::default(),
        );
        assert_eq!((op.action, op.changes.len()), (Action::Noop, 0));
        assert_eq!(op.fields_after, created.fields);
        // Linked and inactive: not reactivated.
        let inactive = link(Origin::Matched, false, "Ada", "C");
        let op = plan_intent(
            "o".into(),
            &changed,
            Some(&inactive),
            None,
            None,
            &rules,
            &PairContext::default(),
        );
        assert_eq!(op.action, Action::Noop);
        // Matched (active or not): linked without a write.
        let m = TargetMatch {
            target_id: "t9".into(),
            fields: flatten(&contact(Some("Ada"), None, "ada@x.test")),
            active: false,
        };
        let op = plan_intent(
            "o".into(),
            &changed,
            None,
            None,
            Some(&m),
            &rules,
            &PairContext::default(),
        );
        assert_eq!(
            (op.action, op.origin, op.changes.len()),
            (Action::Link, Origin::Matched, 0)
        );
        assert_eq!(op.fields_after, m.fields);
        // Removed: nothing is deactivated, whoever created it.
        let op = plan_intent(
            "o".into(),
            &create_only(remove()),
            Some(&created),
            None,
            None,
            &rules,
            &PairContext::default(),
        );
        assert_eq!(op.action, Action::Noop);
        // Nothing there yet: created.
        let op = plan_intent(
            "o".into(),
            &changed,
            None,
            None,
            None,
            &rules,
            &PairContext::default(),
        );
        assert_eq!(op.action, Action::Create);
        // The default policy updates.
        let on = upsert(contact(Some("Augusta"), None, "ada@x.test"));
        let op = plan_intent(
            "o".into(),
            &on,
            Some(&created),
            None,
            None,
            &rules,
            &PairContext::default(),
        );
        assert_eq!(op.action, Action::Update);
    }

    fn typed(types: &[&str]) -> ItemBody {
        let ItemBody::Contact(mut c) = contact(Some("Ada"), None, "ada@x.test") else {
            unreachable!()
        };
        c.contact_types = types
            .iter()
            .map(|id| syncbridge_model::ContactTypeRef {
                id: (*id).into(),
                name: None,
            })
            .collect();
        ItemBody::Contact(c)
    }

    #[test]
    fn add_only_contact_types_are_added_never_removed() {
        let l = Link {
            fields: flatten(&typed(&["1", "5"])),
            ..link(Origin::Created, true, "Ada", "C")
        };
        let intent = add_only(upsert(typed(&["7"])));
        let op = plan_intent(
            "o".into(),
            &intent,
            Some(&l),
            None,
            None,
            &FieldRules::default(),
            &PairContext::default(),
        );
        let types: Vec<_> = op
            .changes
            .iter()
            .filter(|c| c.field == "contact_types")
            .map(|c| c.after.as_deref())
            .collect();
        assert_eq!(types, [Some("1,5,7")]);
        // Already there: nothing to add.
        let intent = add_only(upsert(typed(&["5"])));
        let op = plan_intent(
            "o".into(),
            &intent,
            Some(&l),
            None,
            None,
            &FieldRules::default(),
            &PairContext::default(),
        );
        assert!(
            op.changes.iter().all(|c| c.field != "contact_types"),
            "{op:?}"
        );
        // With the default policy the source's list replaces the target's.
        let op = plan_intent(
            "o".into(),
            &upsert(typed(&["7"])),
            Some(&l),
            None,
            None,
            &FieldRules::default(),
            &PairContext::default(),
        );
        assert!(op
            .changes
            .iter()
            .any(|c| c.field == "contact_types" && c.after.as_deref() == Some("7")));
    }

    #[test]
    fn rewrite_on_change_writes_every_source_field_when_one_changed() {
        let l = link(Origin::Created, true, "Ada", "Countess");
        let rules = FieldRules {
            rewrite_on_change: true,
            ..FieldRules::default()
        };
        let intent = upsert(contact(Some("Ada"), Some("Engineer"), "ada@x.test"));
        let op = plan_intent(
            "o".into(),
            &intent,
            Some(&l),
            None,
            None,
            &rules,
            &PairContext::default(),
        );
        assert_eq!(op.action, Action::Update);
        let fields: Vec<&str> = op.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["email", "first_name", "last_name", "title"]);
        // Nothing changed: nothing written.
        let same = upsert(contact(Some("Ada"), Some("Countess"), "ada@x.test"));
        assert_eq!(
            plan_intent(
                "o".into(),
                &same,
                Some(&l),
                None,
                None,
                &rules,
                &PairContext::default()
            )
            .action,
            Action::Noop
        );
        // Blank source values and target-owned fields are still not written.
        let mut truth = std::collections::BTreeMap::new();
        truth.insert("last_name".to_string(), Truth::Target);
        let rules = FieldRules { truth, ..rules };
        let intent = upsert(contact(Some("Augusta"), None, "ada@x.test"));
        let op = plan_intent(
            "o".into(),
            &intent,
            Some(&l),
            None,
            None,
            &rules,
            &PairContext::default(),
        );
        let fields: Vec<&str> = op.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["email", "first_name"]);
        // Off (the default): only what changed.
        let op = plan_intent(
            "o".into(),
            &intent,
            Some(&l),
            None,
            None,
            &FieldRules::default(),
            &PairContext::default(),
        );
        let fields: Vec<&str> = op.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["first_name"]);
    }

    #[test]
    fn brakes_hold_plans_that_remove_too_much() {
        let rules = FieldRules {
            brakes: Brakes {
                max_removals: 500,
                max_removal_share: 0.2,
                share_from: 0,
            },
            ..FieldRules::default()
        };
        let counts = |n| PlanCounts {
            deactivate: n,
            ..PlanCounts::default()
        };
        assert!(brakes_hold(&counts(20), 100, &rules).is_none());
        assert!(brakes_hold(&counts(21), 100, &rules)
            .unwrap()
            .contains("approve"));
        assert!(brakes_hold(&counts(501), 100_000, &rules).is_some());
        assert!(brakes_hold(&counts(0), 0, &rules).is_none());
        // From `share_from` removals on only: one of three is no mass change.
        let small_sets = FieldRules {
            brakes: Brakes {
                share_from: 10,
                ..rules.brakes
            },
            ..FieldRules::default()
        };
        assert!(brakes_hold(&counts(1), 3, &rules).is_some());
        assert!(brakes_hold(&counts(1), 3, &small_sets).is_none());
        assert!(brakes_hold(&counts(9), 10, &small_sets).is_none());
        assert!(brakes_hold(&counts(10), 20, &small_sets).is_some());
    }
}
