//! Credentials and their encryption at rest.
//!
//! Credentials are sealed with AES-256-GCM under a master key. The master key
//! comes from `SYNCBRIDGE_MASTER_KEY` (base64 of 32 bytes) or from a key file
//! created with mode 0600 on first start. Every ciphertext is stored with the
//! id of the key that sealed it, so keys can be rotated.

use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// Environment variable that may hold the master key.
pub const MASTER_KEY_ENV: &str = "SYNCBRIDGE_MASTER_KEY";

/// Why a secret operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the master key in {MASTER_KEY_ENV} is not base64 of 32 bytes; generate one with `openssl rand -base64 32`")]
    BadEnvKey,
    #[error("the master key file {path} is not base64 of 32 bytes; restore it from backup (credentials sealed with it cannot be read otherwise)")]
    BadKeyFile { path: String },
    #[error("cannot read or create the master key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("credential was sealed with key {found}, but the loaded master key is {loaded}; start syncbridge with the key that sealed it")]
    WrongKey { found: String, loaded: String },
    #[error("credential cannot be decrypted: the ciphertext or key is corrupt")]
    Decrypt,
    #[error("credential is not valid: {0}")]
    Format(String),
}

/// The master key. Its bytes never leave this type; `Debug` prints only the id.
#[derive(Clone)]
pub struct MasterKey {
    key: [u8; 32],
    id: String,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish()
    }
}

/// An encrypted value with the id of the key that sealed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl MasterKey {
    /// Builds a key from raw bytes.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        let digest = Sha256::digest(key);
        let id = format!("k-{}", hex::encode(&digest[..8]));
        Self { key, id }
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let key = Aes256Gcm::generate_key(OsRng);
        Self::from_bytes(key.into())
    }

    /// The key id stored beside every ciphertext.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Loads the key from the environment, else from `path`, creating the file
    /// (mode 0600) with a new random key if it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretError> {
        if let Ok(value) = std::env::var(MASTER_KEY_ENV) {
            return decode_key(&value).ok_or(SecretError::BadEnvKey);
        }
        let io_err = |source| SecretError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => decode_key(&text).ok_or_else(|| SecretError::BadKeyFile {
                path: path.display().to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io_err)?;
                }
                write_private(
                    path,
                    &base64::engine::general_purpose::STANDARD.encode(key.key),
                )
                .map_err(io_err)?;
                Ok(key)
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// Encrypts `plaintext`; `context` (e.g. "connection/slot") is bound as
    /// associated data so a ciphertext cannot be moved to another row.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Sealed {
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.key));
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                aes_gcm::aead::Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        Sealed {
            key_id: self.id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        }
    }

    /// Decrypts a value sealed by [`MasterKey::seal`] with the same `context`.
    pub fn open(&self, sealed: &Sealed, context: &str) -> Result<Vec<u8>, SecretError> {
        if sealed.key_id != self.id {
            return Err(SecretError::WrongKey {
                found: sealed.key_id.clone(),
                loaded: self.id.clone(),
            });
        }
        if sealed.nonce.len() != 12 {
            return Err(SecretError::Decrypt);
        }
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.key));
        cipher
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                aes_gcm::aead::Payload {
                    msg: &sealed.ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Decrypt)
    }
}

fn decode_key(text: &str) -> Option<MasterKey> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    let key: [u8; 32] = bytes.try_into().ok()?;
    Some(MasterKey::from_bytes(key))
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// A secret string: redacted in `Debug`, wiped from memory on drop.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that must use it (building a request).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        // Overwrite the bytes before the allocation is released.
        let bytes = unsafe { self.0.as_bytes_mut() };
        for b in bytes.iter_mut() {
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

/// How the host authenticates requests made through a credential slot.
/// Also the wire form of a credential in the REST API (write-only).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Credential {
    /// HTTP Basic (`Authorization: Basic base64(user:password)`).
    Basic {
        username: String,
        #[schema(value_type = String)]
        password: SecretString,
    },
    /// A fixed set of headers, e.g. Autotask's `ApiIntegrationCode`, `UserName`, `Secret`.
    Headers {
        #[schema(value_type = BTreeMap<String, String>)]
        headers: BTreeMap<String, SecretString>,
    },
    /// OAuth2 client credentials; the host fetches, caches and refreshes the token.
    Oauth2ClientCredentials {
        token_url: String,
        client_id: String,
        #[schema(value_type = String)]
        client_secret: SecretString,
        #[serde(default)]
        scope: Option<String>,
    },
    /// A static bearer token.
    Bearer {
        #[schema(value_type = String)]
        token: SecretString,
    },
}

impl Credential {
    /// Short name of the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::Basic { .. } => "basic",
            Credential::Headers { .. } => "headers",
            Credential::Oauth2ClientCredentials { .. } => "oauth2-client-credentials",
            Credential::Bearer { .. } => "bearer",
        }
    }

    /// Parses the JSON form, e.g. `{"kind":"basic","username":"u","password":"p"}`.
    pub fn from_json(text: &str) -> Result<Self, SecretError> {
        serde_json::from_str(text).map_err(|e| SecretError::Format(redact_serde(e)))
    }

    /// Serialises for sealing.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("credential serialises")
    }
}

/// serde errors can quote input; keep only the position and category.
fn redact_serde(e: serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {} (expected {{\"kind\": \"basic\"|\"headers\"|\"oauth2-client-credentials\"|\"bearer\", ...}})",
        e.classify(),
        e.line(),
        e.column()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_and_bind_context() {
        let key = MasterKey::generate();
        let sealed = key.seal(b"hunter2", "conn/default");
        assert!(!sealed.ciphertext.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(key.open(&sealed, "conn/default").unwrap(), b"hunter2");
        assert!(matches!(
            key.open(&sealed, "other/default"),
            Err(SecretError::Decrypt)
        ));
        let other = MasterKey::generate();
        assert!(matches!(
            other.open(&sealed, "conn/default"),
            Err(SecretError::WrongKey { .. })
        ));
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/master.key");
        let a = MasterKey::load_or_create(&path).unwrap();
        let b = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(a.id(), b.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn debug_never_shows_secrets() {
        let cred = Credential::from_json(
            r#"{"kind":"headers","headers":{"ApiIntegrationCode":"CODE1","Secret":"s3cr3t"}}"#,
        )
        .unwrap();
        let shown = format!("{cred:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("CODE1"),
            "{shown}"
        );
        let err = Credential::from_json(r#"{"kind":"basic","password":"leaky"#).unwrap_err();
        assert!(!err.to_string().contains("leaky"));
    }
}
