//! A mapper that maps every item to itself: removals become `remove`
//! intents, contacts are matched by e-mail.

use syncbridge_sdk::prelude::*;

/// The mapper.
pub struct EchoMapper;

impl Mapper for EchoMapper {
    type Options = serde_json::Value;

    fn map(items: Vec<Item>, options: &serde_json::Value) -> Result<Vec<Intent>, PluginError> {
        syncbridge_sdk::log::debug!("mapping {} items with options {options}", items.len());
        Ok(items.into_iter().map(intent_for).collect())
    }

    fn explain(item: Item, _options: &serde_json::Value) -> Result<Explanation, PluginError> {
        let intent = intent_for(item);
        Ok(Explanation {
            source_id: intent.source_id,
            steps: vec![format!("rule {}: {}", intent.rule, intent.reason)],
        })
    }
}

fn intent_for(item: Item) -> Intent {
    let match_keys = match &item.body {
        Some(ItemBody::Contact(Contact { email: Some(e), .. })) => {
            vec![format!("email:{}", e.to_lowercase())]
        }
        _ => Vec::new(),
    };
    let removed = item.removed.is_some();
    Intent {
        source_id: item.id,
        action: if removed {
            IntentAction::Remove
        } else {
            IntentAction::Upsert
        },
        body: if removed { None } else { item.body },
        match_keys,
        route: Vec::new(),
        rule: "echo".into(),
        reason: if removed {
            "removed at the source".into()
        } else {
            "every item is copied".into()
        },
    }
}

syncbridge_sdk::export_mapper!(EchoMapper);
