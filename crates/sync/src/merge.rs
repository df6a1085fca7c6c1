//! Two-way fields: a three-way merge of one linked pair, field by field, of
//! the source's value now, the target's value now and the value both last
//! agreed on (the link's). Pure, so every rule is unit-tested here.

use super::fields::FieldMap;
use super::plan::FieldChange;
use super::rules::{ConflictPolicy, FieldRules};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A side of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    Source,
    Target,
}

impl Side {
    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }

    /// A conflict's stored resolution (`None`: not resolved); another value
    /// is an error naming the conflict (`id`).
    pub fn parse_stored(
        stored: Option<&str>,
        id: impl FnOnce() -> String,
    ) -> Result<Option<Side>, syncbridge_store::StoreError> {
        match stored {
            None => Ok(None),
            Some("source") => Ok(Some(Side::Source)),
            Some("target") => Ok(Some(Side::Target)),
            Some(other) => Err(syncbridge_store::StoreError::Invalid {
                what: "conflict",
                id: id(),
                detail: format!("its resolution {other:?} is neither source nor target"),
            }),
        }
    }
}

/// A field both sides changed differently since they last agreed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldConflict {
    pub field: String,
    /// The value both last agreed on.
    pub base: Option<String>,
    pub source: Option<String>,
    pub target: Option<String>,
    /// Why it is held (the policy, or what the policy lacked).
    pub reason: String,
}

/// What the merge of one pair decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merged {
    /// Written to the target.
    pub to_target: Vec<FieldChange>,
    /// Written to the source.
    pub to_source: Vec<FieldChange>,
    /// Held for review: nothing written.
    pub held: Vec<FieldConflict>,
    /// Fields a held conflict's resolution settled (its row is cleared once written).
    pub resolved: Vec<String>,
    /// The values both sides hold after the writes (the link's new base).
    pub agreed: FieldMap,
}

/// What the merge knows beyond the three values.
#[derive(Debug, Clone)]
pub struct MergeContext<'a> {
    /// Modification times, when the items carry them (RFC 3339, UTC).
    pub source_modified: Option<&'a str>,
    pub target_modified: Option<&'a str>,
    /// Whether target → source may flow for this pair (the back-flow rule).
    pub back_allowed: bool,
    /// Operator resolutions of held conflicts, by field.
    pub resolutions: &'a BTreeMap<String, Side>,
}

fn blank(v: Option<&String>) -> Option<&String> {
    v.filter(|v| !v.trim().is_empty())
}

/// Merges `source` (the mapped source item now), `target` (the target item
/// now, as the engine reads it) and `base` (what both last agreed on).
pub fn merge(
    source: &FieldMap,
    target: &FieldMap,
    base: &FieldMap,
    rules: &FieldRules,
    ctx: &MergeContext<'_>,
) -> Merged {
    let mut out = Merged {
        agreed: target.clone(),
        ..Merged::default()
    };
    let names: BTreeSet<&String> = source
        .keys()
        .chain(target.keys())
        .chain(base.keys())
        .collect();
    for name in names {
        let dir = rules.direction_of(name);
        let (s, t, b) = (
            blank(source.get(name)),
            blank(target.get(name)),
            blank(base.get(name)),
        );
        let to_target = dir.to_target() && rules.source_writes(name);
        let to_source = dir.to_source() && ctx.back_allowed;
        let s_changed = s != b;
        let t_changed = t != b;
        let write_target = |out: &mut Merged| {
            if s.is_none() && rules.blank_never_overwrites {
                return;
            }
            out.to_target.push(FieldChange {
                field: name.clone(),
                before: t.cloned(),
                after: s.cloned(),
            });
            set(&mut out.agreed, name, s);
        };
        let write_source = |out: &mut Merged| {
            out.to_source.push(FieldChange {
                field: name.clone(),
                before: s.cloned(),
                after: t.cloned(),
            });
        };
        if s == t {
            continue;
        }
        match (s_changed, t_changed) {
            // The source changed (or the target drifted from a one-way field).
            (true, false) | (false, true) if !to_source => {
                if to_target {
                    write_target(&mut out);
                }
            }
            (true, false) => {
                if to_target {
                    write_target(&mut out);
                }
            }
            (false, true) => write_source(&mut out),
            (false, false) => {}
            (true, true) if !(to_target && to_source) => {
                // One-way either way: the field's own direction decides (and
                // a field that may flow neither way is left as it is).
                if to_target {
                    write_target(&mut out);
                } else if to_source {
                    write_source(&mut out);
                }
            }
            (true, true) => {
                let winner =
                    match ctx.resolutions.get(name.as_str()) {
                        Some(side) => {
                            out.resolved.push(name.clone());
                            Ok(*side)
                        }
                        None => match rules.conflict_of(name) {
                            ConflictPolicy::SourceWins => Ok(Side::Source),
                            ConflictPolicy::TargetWins => Ok(Side::Target),
                            ConflictPolicy::NewestWins => {
                                match (ctx.source_modified, ctx.target_modified) {
                                    (Some(sm), Some(tm)) if sm >= tm => Ok(Side::Source),
                                    (Some(_), Some(_)) => Ok(Side::Target),
                                    _ => Err("newest wins, but a side has no modification time"
                                        .to_owned()),
                                }
                            }
                            ConflictPolicy::Hold => {
                                Err("held for review by the field's rule".to_owned())
                            }
                        },
                    };
                match winner {
                    Ok(Side::Source) => write_target(&mut out),
                    Ok(Side::Target) => write_source(&mut out),
                    Err(reason) => {
                        out.held.push(FieldConflict {
                            field: name.clone(),
                            base: b.cloned(),
                            source: s.cloned(),
                            target: t.cloned(),
                            reason,
                        });
                        // Neither side is written; the base stays what they last agreed on.
                        set(&mut out.agreed, name, b);
                    }
                }
            }
        }
    }
    out
}

fn set(map: &mut FieldMap, name: &str, value: Option<&String>) {
    match value {
        Some(v) => map.insert(name.to_owned(), v.clone()),
        None => map.remove(name),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Direction, FieldRules};

    fn map(pairs: &[(&str, &str)]) -> FieldMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn two_way(policy: ConflictPolicy) -> FieldRules {
        let mut r = FieldRules::default();
        r.direction.insert("start".into(), Direction::Both);
        r.conflict.insert("start".into(), policy);
        r
    }

    fn ctx(resolutions: &BTreeMap<String, Side>) -> MergeContext<'_> {
        MergeContext {
            source_modified: None,
            target_modified: None,
            back_allowed: true,
            resolutions,
        }
    }

    #[test]
    fn whichever_side_changed_flows_to_the_other() {
        let none = BTreeMap::new();
        let rules = two_way(ConflictPolicy::Hold);
        let base = map(&[("start", "09:00"), ("subject", "Review")]);
        // The target moved the meeting: it flows back to the source.
        let m = merge(
            &base,
            &map(&[("start", "10:00"), ("subject", "Review")]),
            &base,
            &rules,
            &ctx(&none),
        );
        assert_eq!(m.to_source.len(), 1);
        assert_eq!(m.to_source[0].after.as_deref(), Some("10:00"));
        assert!(m.to_target.is_empty());
        assert_eq!(m.agreed.get("start").map(String::as_str), Some("10:00"));
        // The source moved it: it flows to the target.
        let m = merge(
            &map(&[("start", "11:00"), ("subject", "Review")]),
            &base,
            &base,
            &rules,
            &ctx(&none),
        );
        assert_eq!(m.to_target.len(), 1);
        assert!(m.to_source.is_empty());
        // A one-way field edited in the target is put back, never written to the source.
        let m = merge(
            &base,
            &map(&[("start", "09:00"), ("subject", "Edited")]),
            &base,
            &rules,
            &ctx(&none),
        );
        assert_eq!(m.to_target.len(), 1);
        assert_eq!(m.to_target[0].after.as_deref(), Some("Review"));
        assert!(m.to_source.is_empty());
    }

    #[test]
    fn a_conflict_follows_its_policy_or_waits_for_a_resolution() {
        let none = BTreeMap::new();
        let base = map(&[("start", "09:00")]);
        let (s, t) = (map(&[("start", "11:00")]), map(&[("start", "10:00")]));
        let m = merge(
            &s,
            &t,
            &base,
            &two_way(ConflictPolicy::SourceWins),
            &ctx(&none),
        );
        assert_eq!((m.to_target.len(), m.to_source.len()), (1, 0));
        let m = merge(
            &s,
            &t,
            &base,
            &two_way(ConflictPolicy::TargetWins),
            &ctx(&none),
        );
        assert_eq!((m.to_target.len(), m.to_source.len()), (0, 1));
        let m = merge(&s, &t, &base, &two_way(ConflictPolicy::Hold), &ctx(&none));
        assert_eq!(
            (m.to_target.len(), m.to_source.len(), m.held.len()),
            (0, 0, 1)
        );
        assert_eq!(m.held[0].base.as_deref(), Some("09:00"));
        assert_eq!(
            m.agreed.get("start").map(String::as_str),
            Some("09:00"),
            "the base stays"
        );
        // Newest wins by modification time; without one, it is held.
        let newer_target = MergeContext {
            source_modified: Some("2026-01-01T00:00:00Z"),
            target_modified: Some("2026-01-02T00:00:00Z"),
            ..ctx(&none)
        };
        let m = merge(
            &s,
            &t,
            &base,
            &two_way(ConflictPolicy::NewestWins),
            &newer_target,
        );
        assert_eq!((m.to_target.len(), m.to_source.len()), (0, 1));
        let m = merge(
            &s,
            &t,
            &base,
            &two_way(ConflictPolicy::NewestWins),
            &ctx(&none),
        );
        assert_eq!(m.held.len(), 1);
        // An operator's resolution settles a held conflict.
        let chosen: BTreeMap<String, Side> = [("start".to_string(), Side::Target)].into();
        let m = merge(&s, &t, &base, &two_way(ConflictPolicy::Hold), &ctx(&chosen));
        assert_eq!((m.to_source.len(), m.held.len()), (1, 0));
        assert_eq!(m.resolved, vec!["start".to_string()]);
    }

    #[test]
    fn back_flow_can_be_limited_to_items_the_profile_created() {
        let none = BTreeMap::new();
        let base = map(&[("start", "09:00")]);
        let not_ours = MergeContext {
            back_allowed: false,
            ..ctx(&none)
        };
        // Back flow not allowed for this pair: the target's edit is put back instead.
        let m = merge(
            &base,
            &map(&[("start", "10:00")]),
            &base,
            &two_way(ConflictPolicy::Hold),
            &not_ours,
        );
        assert!(m.to_source.is_empty());
        assert_eq!(m.to_target.len(), 1);
        // Target → source only: the source's own change is not written to the target.
        let mut back_only = FieldRules::default();
        back_only
            .direction
            .insert("start".into(), Direction::TargetToSource);
        let m = merge(
            &map(&[("start", "11:00")]),
            &base,
            &base,
            &back_only,
            &ctx(&none),
        );
        assert!(m.to_target.is_empty() && m.to_source.is_empty());
        // Both changed, target → source only, and back flow not allowed for this pair: untouched.
        let m = merge(
            &map(&[("start", "11:00")]),
            &map(&[("start", "10:00")]),
            &base,
            &back_only,
            &not_ours,
        );
        assert!(m.to_target.is_empty() && m.to_source.is_empty(), "{m:?}");
    }
}
