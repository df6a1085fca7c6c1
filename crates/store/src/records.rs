//! Row types of the store.

use super::StoreError;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use syncbridge_secrets::Sealed;

/// An installed plugin.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PluginRecord {
    pub id: String,
    pub version: String,
    pub vendor: String,
    pub kind: String,
    pub wit_version: String,
    /// sha256 of the component, hex.
    pub digest: String,
    /// The manifest as JSON.
    pub manifest: String,
    /// Path of the installed component file.
    pub component: String,
    pub installed_at: i64,
}

impl PluginRecord {
    pub(super) fn from_row(r: &AnyRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.try_get("id")?,
            version: r.try_get("version")?,
            vendor: r.try_get("vendor")?,
            kind: r.try_get("kind")?,
            wit_version: r.try_get("wit_version")?,
            digest: r.try_get("digest")?,
            manifest: r.try_get("manifest")?,
            component: r.try_get("component")?,
            installed_at: r.try_get("installed_at")?,
        })
    }
}

/// A configured instance of a connector.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConnectionRecord {
    pub id: String,
    pub plugin_id: String,
    /// Configuration JSON handed to the plugin (never secrets).
    pub config: String,
    /// Host patterns this connection may reach (intersected with the plugin's).
    pub allowed_hosts: Vec<String>,
    /// Whether loopback and private addresses may be called (simulators, on-premises servers).
    pub allow_private_network: bool,
    /// Overrides the plugin's max concurrent requests.
    pub max_concurrent: Option<u32>,
}

impl ConnectionRecord {
    pub(super) fn from_row(r: &AnyRow) -> Result<Self, StoreError> {
        let id: String = r.try_get("id")?;
        let hosts: String = r.try_get("allowed_hosts")?;
        let allowed_hosts = serde_json::from_str(&hosts).map_err(|e| StoreError::Invalid {
            what: "connection",
            id: id.clone(),
            detail: format!("its stored allowed hosts cannot be read: {e}"),
        })?;
        Ok(Self {
            id,
            plugin_id: r.try_get("plugin_id")?,
            config: r.try_get("config")?,
            allowed_hosts,
            allow_private_network: r.try_get::<i64, _>("allow_private_network")? != 0,
            max_concurrent: r
                .try_get::<Option<i64>, _>("max_concurrent")?
                .and_then(|v| u32::try_from(v).ok()),
        })
    }
}

/// A sealed credential in one slot of a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialRecord {
    pub slot: String,
    pub kind: String,
    pub sealed: Sealed,
    /// What the credential was entered for (JSON of
    /// `capability::binding::CredentialBinding`, also its associated data);
    /// `None` when it was sealed before bindings existed.
    pub binding: Option<String>,
}

impl CredentialRecord {
    pub(super) fn from_row(r: &AnyRow) -> Result<Self, StoreError> {
        Ok(Self {
            slot: r.try_get("slot")?,
            kind: r.try_get("kind")?,
            sealed: Sealed {
                key_id: r.try_get("key_id")?,
                nonce: r.try_get("nonce")?,
                ciphertext: r.try_get("ciphertext")?,
            },
            binding: r.try_get("binding")?,
        })
    }
}
