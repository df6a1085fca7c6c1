//! A mapper as a vendor built it against WIT 0.1.3, before
//! `mailbox-mapper-api`: `decide` copies every item into an upsert of
//! itself. Its `mapper-api` carries only core items.

wit_bindgen::generate!({
    world: "mapper",
    path: "../../../wit-history/0.1.3",
});

use exports::syncbridge::plugin::mapper_api::{
    ContactTypesMode, Decision, Explanation, Guest, Intent, IntentAction, WritePolicy,
};
use exports::syncbridge::plugin::source_fields;
use syncbridge::plugin::types::{Item, PluginError};

struct LegacyMapper;

fn intent_for(item: Item) -> Intent {
    Intent {
        source_id: item.id,
        action: IntentAction::Upsert,
        body: item.body,
        match_keys: Vec::new(),
        route: Vec::new(),
        rule: "legacy-0.1.3".into(),
        reason: "built against WIT 0.1.3".into(),
    }
}

impl Guest for LegacyMapper {
    fn map_items(items: Vec<Item>, _options: String) -> Result<Vec<Intent>, PluginError> {
        Ok(items.into_iter().map(intent_for).collect())
    }

    fn explain(item: Item, _options: String) -> Result<Explanation, PluginError> {
        Ok(Explanation {
            source_id: item.id,
            steps: vec!["legacy-0.1.3: every item is copied".into()],
        })
    }

    fn decide(items: Vec<Item>, _options: String) -> Result<Vec<Decision>, PluginError> {
        Ok(items
            .into_iter()
            .map(|item| Decision {
                intent: intent_for(item),
                policy: WritePolicy {
                    update_existing: true,
                    contact_types: ContactTypesMode::Replace,
                },
            })
            .collect())
    }

    fn options_schema() -> String {
        r#"{"type": "object"}"#.into()
    }
}

impl source_fields::Guest for LegacyMapper {
    fn source_fields(_options: String) -> Result<Vec<String>, PluginError> {
        Ok(Vec::new())
    }
}

export!(LegacyMapper);
