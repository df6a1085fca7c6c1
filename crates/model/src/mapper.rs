//! What a mapper decides for each source item.

use crate::{Attribute, ItemBody};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IntentAction {
    /// The target should hold `body`.
    Upsert,
    /// The source item is gone or out of scope; the target item should be
    /// deactivated or deleted as the profile's rules say.
    Remove,
    /// Nothing to do for this item (filtered out); `reason` says why.
    Skip,
}

/// How the target's contact types are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContactTypesMode {
    /// The target gets exactly the desired types.
    #[default]
    Replace,
    /// The desired types are added to the target's; none is removed.
    AddOnly,
}

/// What the mapper's rules allow the engine to do to an existing target item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WritePolicy {
    /// `false`: an existing target item (linked or matched) is linked but never
    /// updated, reactivated, deactivated or deleted; only a new one is created
    /// ("Update existing contacts" off in flow 2).
    pub update_existing: bool,
    pub contact_types: ContactTypesMode,
}

impl Default for WritePolicy {
    fn default() -> Self {
        Self {
            update_existing: true,
            contact_types: ContactTypesMode::Replace,
        }
    }
}

/// The mapper's decision for one source item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub source_id: String,
    pub action: IntentAction,
    pub body: Option<ItemBody>,
    /// Keys to find an existing, unlinked target item, e.g. `email:alice@contoso.com`.
    pub match_keys: Vec<String>,
    /// Free routing data the rules produced (filter, site...), shown by explain.
    pub route: Vec<Attribute>,
    /// Which mapper rule produced this intent (`filter#2 department=IT`, `disabled`...).
    pub rule: String,
    /// Why, in words.
    pub reason: String,
    /// What the engine may do to an existing target item.
    pub policy: WritePolicy,
}

/// How the rules treat one item, step by step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    pub source_id: String,
    pub steps: Vec<String>,
}
