//! A connector as a vendor built it against WIT 0.1.0: it describes itself,
//! logs through the host and reads one contact. It proves that a 0.1.0
//! connector keeps loading and answering on a 0.1.1 host.

wit_bindgen::generate!({
    world: "connector",
    path: "../../../wit-history/0.1.0",
});

use exports::syncbridge::plugin::connector_api::{
    Description, Finding, Guest, ItemKind, Page, PullRequest, WriteOp, WriteResult,
};
use syncbridge::plugin::log;
use syncbridge::plugin::types::{Contact, Item, ItemBody, PluginError};

struct LegacyConnector;

impl Guest for LegacyConnector {
    fn describe() -> Description {
        Description {
            name: "Legacy 0.1.0 connector".into(),
            reads: vec![ItemKind::Contact],
            writes: Vec::new(),
            config_schema: r#"{"type":"object"}"#.into(),
            credential_slots: Vec::new(),
        }
    }

    fn validate_config(_config: String) -> Vec<Finding> {
        Vec::new()
    }

    fn test_connection(_config: String) -> Result<Vec<Finding>, PluginError> {
        Ok(Vec::new())
    }

    fn pull(_config: String, request: PullRequest) -> Result<Page, PluginError> {
        log::log(log::Level::Info, &format!("pull {}", request.scope));
        Ok(Page {
            items: vec![Item {
                id: "legacy-1".into(),
                version: Some("1".into()),
                removed: None,
                body: Some(ItemBody::Contact(Contact {
                    first_name: Some("Grace".into()),
                    last_name: Some("Hopper".into()),
                    display_name: None,
                    title: None,
                    email: Some("grace@legacy.test".into()),
                    phone: None,
                    mobile: None,
                    company: None,
                    site: None,
                    contact_types: Vec::new(),
                    active: true,
                    extra: Vec::new(),
                })),
            }],
            cursor: Some("done".into()),
            more: false,
            full: true,
        })
    }

    fn lookup_items(
        _config: String,
        _scope: String,
        _keys: Vec<String>,
    ) -> Result<Vec<Item>, PluginError> {
        Ok(Vec::new())
    }

    fn push(
        _config: String,
        _scope: String,
        _batch: Vec<WriteOp>,
    ) -> Result<Vec<WriteResult>, PluginError> {
        Err(PluginError::Unsupported("read-only".into()))
    }
}

export!(LegacyConnector);
