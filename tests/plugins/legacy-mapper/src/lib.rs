//! A mapper as a vendor built it against WIT 0.1.0, before `decide`: every
//! item becomes an upsert of itself, and every key of the options object
//! becomes a route attribute (`{"update_existing": "false"}`), which is how
//! 0.1.0 mappers stated the write policy.

wit_bindgen::generate!({
    world: "mapper",
    path: "../../../wit-history/0.1.0",
});

use exports::syncbridge::plugin::mapper_api::{Explanation, Guest, Intent, IntentAction};
use syncbridge::plugin::types::{Attribute, Item, PluginError};

struct LegacyMapper;

fn route_of(options: &str) -> Result<Vec<Attribute>, PluginError> {
    let value: serde_json::Value = serde_json::from_str(options)
        .map_err(|e| PluginError::Unsupported(format!("options: {e}")))?;
    Ok(value
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| Attribute {
            name: name.clone(),
            value: value
                .as_str()
                .map(str::to_owned)
                .unwrap_or(value.to_string()),
        })
        .collect())
}

impl Guest for LegacyMapper {
    fn map_items(items: Vec<Item>, options: String) -> Result<Vec<Intent>, PluginError> {
        let route = route_of(&options)?;
        Ok(items
            .into_iter()
            .map(|item| Intent {
                source_id: item.id,
                action: IntentAction::Upsert,
                body: item.body,
                match_keys: Vec::new(),
                route: route.clone(),
                rule: "legacy".into(),
                reason: "built against WIT 0.1.0".into(),
            })
            .collect())
    }

    fn explain(item: Item, _options: String) -> Result<Explanation, PluginError> {
        Ok(Explanation {
            source_id: item.id,
            steps: vec!["legacy: every item is copied".into()],
        })
    }
}

export!(LegacyMapper);
