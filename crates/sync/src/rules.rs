//! Field rules and brakes, configured per profile.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which system owns a field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Truth {
    /// The source's value is written to the target (the default).
    Source,
    /// The target's value is kept; the source never writes it after creation.
    Target,
}

/// What happens to a linked target item whose source item is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OnRemove {
    /// Set the target item inactive (the default).
    #[default]
    Deactivate,
    /// Delete the target item.
    Delete,
    /// Leave it alone.
    Ignore,
}

/// Which way a field's changes flow between a linked pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Source → target (the default): a target edit is put back.
    #[default]
    SourceToTarget,
    /// Target → source: the target's edits are written to the source.
    TargetToSource,
    /// Both ways: whichever side changed wins; both changed is a conflict.
    Both,
}

impl Direction {
    pub fn to_target(self) -> bool {
        matches!(self, Direction::SourceToTarget | Direction::Both)
    }
    pub fn to_source(self) -> bool {
        matches!(self, Direction::TargetToSource | Direction::Both)
    }
}

/// Who wins when both sides changed a two-way field differently since the
/// last sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictPolicy {
    /// The source's value is written to the target (the default).
    #[default]
    SourceWins,
    /// The target's value is written to the source.
    TargetWins,
    /// The side changed last wins (by the items' modification times); held
    /// for review when a side has none.
    NewestWins,
    /// Nothing is written; the conflict waits for an operator
    /// (`syncbridge conflicts`, GET /api/v1/conflicts).
    Hold,
}

/// Which items a target → source field flows back for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum BackFlow {
    /// Every linked item (the default).
    #[default]
    All,
    /// Only items the profile created in the target from the source (the
    /// calendar rule: "after the first sync only date/time changes of
    /// PSA-originated items flow back").
    CreatedOnly,
}

/// What happens to a link whose target item is gone (deleted outside
/// syncbridge) while its source item is still there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OnTargetGone {
    /// Create the item again (the default): the source is the truth.
    #[default]
    Recreate,
    /// Forget the link and report it; the item is not created again.
    Unlink,
}

/// Mass-change brakes: a plan with more removals than this stops before writing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Brakes {
    /// Largest number of deactivations + deletions applied without approval.
    pub max_removals: u64,
    /// Largest share (0..1) of linked items removed without approval.
    pub max_removal_share: f64,
    /// The share brake counts only from this many removals: in a small set
    /// (a user's calendar) one cancelled appointment of three is no mass
    /// change. Default 0: the share counts always.
    pub share_from: u64,
}

impl Default for Brakes {
    fn default() -> Self {
        Self {
            max_removals: 500,
            max_removal_share: 0.20,
            share_from: 0,
        }
    }
}

/// The rules of one profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FieldRules {
    /// Per-field owner; fields not listed follow the source.
    pub truth: BTreeMap<String, Truth>,
    /// A blank source value never overwrites a target value.
    pub blank_never_overwrites: bool,
    /// When set, only these fields are written on update (e.g. date/time fields only).
    pub update_only: Option<Vec<String>>,
    /// Match unlinked intents to existing target items by their match keys before creating.
    pub match_existing: bool,
    /// Update target items that were matched (not created) by this profile.
    pub update_matched: bool,
    /// What to do when a linked source item is removed.
    pub on_remove: OnRemove,
    /// What to do when a linked target item is gone while its source is not.
    pub on_target_gone: OnTargetGone,
    /// Remove only items this profile created, or also those it matched by key.
    pub remove_matched: bool,
    /// Reactivate a matched or linked inactive target item when its source is active.
    pub reactivate: bool,
    /// The source is the source of truth: when a source item changes, write every field the
    /// source owns, not only those that differ from what the link remembers, so an edit made
    /// in the target is overwritten on the source's next change. Off: only the fields that
    /// changed in the source are written.
    pub rewrite_on_change: bool,
    pub brakes: Brakes,
    /// Per-field direction; fields not listed flow source → target.
    pub direction: BTreeMap<String, Direction>,
    /// Per-field conflict policy for two-way fields; default source wins.
    pub conflict: BTreeMap<String, ConflictPolicy>,
    /// Which linked items target → source fields flow back for.
    pub back_flow: BackFlow,
    /// Seconds between full reconciles: a run that finds the last one older
    /// reads every source item and every linked target item, which catches
    /// what change feeds miss (deleted target items, group-based licences).
    /// `null` turns them off. Default: daily.
    pub full_reconcile_secs: Option<u64>,
    /// Profiles whose writes this profile's source holds (the reverse flow of
    /// a pair, such as Exchange → PSA beside PSA → Exchange): a source item
    /// that is the target of one of their links was written by them and is
    /// theirs; it is never synced back as an item of its own (no duplicate,
    /// no ping-pong).
    pub written_by: Vec<String>,
    /// Two-way fields are written back in the source's own model: the target
    /// item is mapped through the profile's mapper first (for flows whose two
    /// sides use different item models, such as PSA appointments and Exchange
    /// events). Off: the target's body is written back as it is.
    pub back_through_mapper: bool,
    /// The source is read through a window (a calendar's past and future
    /// days): a linked item a full pass did not see is looked up by id
    /// first, and only one that is gone counts as removed; one still there
    /// left the window and is left as it is.
    pub confirm_unseen: bool,
    /// Source items left to a `written_by` profile are relayed to it as its
    /// target's changes: this profile's source is that profile's target
    /// (the same connection and scope, read the same way), so one read of
    /// it serves both. Relayed when read, by a dry run too (a hint to the
    /// other profile, not a change).
    pub relay_written_by: bool,
    /// This profile's target's changes come relayed by the profile whose
    /// source is that target (`relay_written_by` there) instead of being
    /// read from the target's change feed: the target is read once per
    /// cycle, not once per profile. Only for a pair that runs on the same
    /// schedule; what a relay misses, the periodic full reconcile finds.
    pub feed_relayed: bool,
    /// The source answers recurring series as their occurrences (a calendar
    /// scope with `series=occurrences`), each with the id `<series id>#<date>`
    /// and all of a series' occurrences in the window whenever the series
    /// changes. A series deleted at the source removes its linked
    /// occurrences; a linked occurrence its changed series no longer brings
    /// is looked up, and removed only when it is gone (not when it merely
    /// left the window). For the brakes, the removed occurrences of one
    /// series count as one removal.
    pub expanded_series: bool,
}

/// The default interval between full reconciles: a day.
pub const DAILY: u64 = 24 * 60 * 60;

impl Default for FieldRules {
    fn default() -> Self {
        Self {
            truth: BTreeMap::new(),
            blank_never_overwrites: true,
            update_only: None,
            match_existing: true,
            update_matched: true,
            on_remove: OnRemove::Deactivate,
            on_target_gone: OnTargetGone::Recreate,
            remove_matched: true,
            reactivate: true,
            rewrite_on_change: false,
            brakes: Brakes::default(),
            full_reconcile_secs: Some(DAILY),
            direction: BTreeMap::new(),
            conflict: BTreeMap::new(),
            back_flow: BackFlow::All,
            written_by: Vec::new(),
            back_through_mapper: false,
            confirm_unseen: false,
            relay_written_by: false,
            feed_relayed: false,
            expanded_series: false,
        }
    }
}

impl FieldRules {
    /// Where a profile is queued among profiles due together (ascending): one that relays
    /// its source's items to others (`relay_written_by`) first, so they see this pass's
    /// changes; of two relaying to each other, the one relaying to more profiles (a
    /// calendar flow's import before its PSA → Exchange profile).
    pub fn queue_rank(&self) -> (bool, std::cmp::Reverse<usize>) {
        (
            !self.relay_written_by,
            std::cmp::Reverse(self.written_by.len()),
        )
    }

    /// The direction of `field`.
    pub fn direction_of(&self, field: &str) -> Direction {
        self.direction.get(field).copied().unwrap_or_default()
    }

    /// The conflict policy of `field`.
    pub fn conflict_of(&self, field: &str) -> ConflictPolicy {
        self.conflict.get(field).copied().unwrap_or_default()
    }

    /// Whether any field flows target → source.
    pub fn two_way(&self) -> bool {
        self.direction.values().any(|d| d.to_source())
    }

    /// Whether the source may write `field` on update.
    pub fn source_writes(&self, field: &str) -> bool {
        let owned = self.truth.get(field).copied().unwrap_or(Truth::Source) == Truth::Source;
        let listed = self
            .update_only
            .as_ref()
            .is_none_or(|only| only.iter().any(|f| f == field));
        owned && listed
    }
}
