//! # `m365-psa-contacts` — Microsoft 365 users → PSA contacts (flow 2, "Sync 365")
//!
//! A pure mapper: canonical `directory-user` items (from the `graph` connector) in, one
//! decision per user out. It decides *what* should happen to each user and *where* the
//! contact goes; the engine's profile rules (blank never overwrites, update/remove/reactivate
//! matched items) decide how that meets the PSA.
//!
//! ## Options (JSON)
//!
//! ```json
//! {
//!   "target": "autotask" | "connectwise",          // required
//!   "use_email": false,          // match and write `mail` instead of the UPN
//!   "update_existing": true,     // "Update existing contacts"
//!   "default_contact_type": {"id": "1", "name": "End User"},   // ConnectWise only
//!   "default_site": {"id": "10", "name": "Main"},  // optional: site with no filters / filters without a site
//!   "filters": [
//!     {"priority": 1, "kind": "group", "group_id": "<object id>", "group_name": "Management",
//!      "site": {"id": "11", "name": "New Site"}},
//!     {"priority": 2, "kind": "field", "field": "department", "value": "IT",
//!      "site": {"id": "11"}, "contact_type": {"id": "7", "name": "IT"}},
//!     {"priority": 3, "kind": "license", "sku": "EXCHANGESTANDARD", "site": {"id": "12"}},
//!     {"priority": 4, "kind": "upn-domain", "domain": "contoso.com", "site": {"id": "13"}},
//!     {"priority": 5, "kind": "all-licensed", "site": {"id": "14", "name": "Site 3"}}
//!   ]
//! }
//! ```
//!
//! A `field` filter may name any directory property: the canonical ones (`department`,
//! `jobTitle`, `mail`, `userPrincipalName`, `displayName`, `givenName`, `surname`,
//! `businessPhone`, `mobilePhone`) or any other (`companyName`, `employeeId`,
//! `extensionAttribute3`, `proxyAddresses` ...), which the mapper names through
//! `source-fields` (WIT 0.1.2) so the `graph` connector reads it; one the connector cannot read
//! is refused when the profile is saved. A list property matches when any of its values does.
//!
//! Unknown fields are refused; every error is `invalid` and names the field
//! (`filters[1].group_id: required ...`). Priorities are unique; 1 is the highest.
//!
//! ## Rules (from the "Sync 365" contact sync seed)
//!
//! 1. Only enabled users — sign-in enabled **and** licensed — are synced.
//! 2. Filters are checked by ascending priority; the first that matches wins, so a user lands
//!    once. No filters: every enabled, licensed user goes to the default site. Filters but none
//!    matching: the user is out of scope.
//! 3. Each filter routes to a site/location and (ConnectWise) a contact type: the filter's own,
//!    or the integration default. ConnectWise contact types are only added (the decision's
//!    policy says `add-only`).
//! 4. Match key `email:<UPN lowercased>`, or `email:<mail lowercased>` with `use_email`; the
//!    contact's e-mail is that address. Without the address the user is skipped.
//! 5. Fields: first name, last name, title, phone (first business phone), mobile, e-mail.
//!    Blank Microsoft 365 values are left `None`, so they never overwrite a PSA value.
//! 6. Deleted, disabled, unlicensed or out-of-filter users → `remove` (the matched contact is set
//!    inactive; route `remove_only = matched-by-email`, the engine ignores removes without a
//!    link). With `update_existing` off nothing is deactivated: those become `skip`.
//! 7. `update_existing` off: every decision's policy says `update-existing = false`, which the
//!    engine's planner treats as create-only — an existing contact (matched, or created by an
//!    earlier run) is linked and never updated or reactivated.
//!
//! The mapper exports `decide` (WIT 0.1.1): one decision per user, an intent and a typed
//! write policy. Every intent carries `rule` (`filter#2 department=IT`, `disabled`,
//! `no-filter`...), a human `reason`, and, for explain only, `route` attributes `target`,
//! `match_by` (`upn`|`email`), `filter` (priority, `default` or `none`), `site_id`, `site_name`,
//! `contact_type_ids`, and for removals `remove_only`. `explain` lists every step, ending with
//! a one-line `preview:` (filter, site, contact type, match key, action).

pub mod options;
pub mod rules;

#[cfg(test)]
mod tests;

use options::Options;
use std::collections::HashMap;
use syncbridge_sdk::prelude::*;

/// The mapper.
pub struct M365PsaContacts;

impl Mapper for M365PsaContacts {
    type Options = Options;

    /// Strict parsing that names the offending field, then cross-field checks.
    fn parse_options(options: &str) -> Result<Options, PluginError> {
        Options::parse(options)
    }

    fn decide(items: Vec<Item>, o: &Options) -> Result<Vec<Decision>, PluginError> {
        Ok(map_with(&items, o))
    }

    /// The directory properties the field filters name (`companyName`, ...).
    fn source_fields(o: &Options) -> Result<Vec<String>, PluginError> {
        Ok(rules::source_fields(&o.filters))
    }

    fn explain(item: Item, o: &Options) -> Result<Explanation, PluginError> {
        let d = rules::decide(&item, o);
        Ok(Explanation {
            source_id: item.id,
            steps: d.steps,
        })
    }
}

/// Maps a batch. Two users of one batch that would sync to the same e-mail address do not
/// both upsert: the first keeps it, the second is skipped (a contact is never duplicated).
pub fn map_with(items: &[Item], o: &Options) -> Vec<Decision> {
    let mut owner: HashMap<String, String> = HashMap::new();
    items
        .iter()
        .map(|item| {
            let mut decision = rules::decide(item, o).decision;
            let intent = &mut decision.intent;
            if intent.action == IntentAction::Upsert {
                if let Some(key) = intent.match_keys.first() {
                    match owner.get(key) {
                        Some(first) if *first != intent.source_id => {
                            intent.reason = format!(
                                "user {} in this batch already syncs to {key}; a contact is never duplicated",
                                first
                            );
                            intent.action = IntentAction::Skip;
                            intent.rule = "duplicate-email".into();
                            intent.body = None;
                        }
                        _ => {
                            owner.insert(key.clone(), intent.source_id.clone());
                        }
                    }
                }
            }
            decision
        })
        .collect()
}

syncbridge_sdk::export_mapper!(M365PsaContacts);
