//! `plugin.toml`: what a plugin package declares about itself.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The WIT package version this host serves.
pub const HOST_WIT_VERSION: semver::Version = semver::Version::new(0, 1, 5);

/// What kind of world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// Talks to one outside system (`connector` world).
    Connector,
    /// Holds the rules of a flow (`mapper` world).
    Mapper,
}

impl PluginKind {
    /// The name used in the CLI, API and store.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Connector => "connector",
            PluginKind::Mapper => "mapper",
        }
    }
}

/// Resource limits a plugin asks for; the host clamps them to its own maxima.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Limits {
    /// Linear memory ceiling per invocation.
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u32,
    /// Wall-clock deadline of one export call, host calls included.
    #[serde(default = "default_call_timeout_ms")]
    pub call_timeout_ms: u64,
    /// Outbound requests in flight at once per connection.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent_requests: u32,
    /// Outbound requests in flight at once per mailbox, for calls on mailbox
    /// scopes (WIT 0.1.3), within the connection's limit. Exchange Online
    /// allows 4 concurrent requests per mailbox.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent_per_mailbox: u32,
}

fn default_memory_mib() -> u32 {
    64
}
fn default_call_timeout_ms() -> u64 {
    30_000
}
fn default_max_concurrent() -> u32 {
    4
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mib: default_memory_mib(),
            call_timeout_ms: default_call_timeout_ms(),
            max_concurrent_requests: default_max_concurrent(),
            max_concurrent_per_mailbox: default_max_concurrent(),
        }
    }
}

/// A parsed `plugin.toml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Manifest {
    /// Stable identifier, `[a-z0-9-]+`.
    pub id: String,
    /// The plugin's own semver.
    pub version: semver::Version,
    /// Who ships it.
    pub vendor: String,
    /// The `syncbridge:plugin` WIT version it was built against.
    pub wit: semver::Version,
    /// Which world it implements.
    pub kind: PluginKind,
    /// One line for operators.
    #[serde(default)]
    pub description: String,
    /// File name of the component inside the package.
    pub component: String,
    /// sha256 of the component (hex). Required for archives; checked when present.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Host patterns the plugin may call: `host`, `host:port`, `*.domain`, or `*`.
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// JSON Schema of the connection configuration.
    #[serde(default)]
    pub config_schema: Option<toml::Value>,
    /// Requested limits.
    #[serde(default)]
    pub limits: Limits,
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("plugin.toml is not valid: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("plugin id {0:?} is not valid: use lower-case letters, digits and '-' (at most 64)")]
    BadId(String),
    #[error(
        "plugin was built for syncbridge:plugin@{plugin}, but this host serves @{host}; \
         rebuild the plugin against WIT {host} or upgrade syncbridge"
    )]
    IncompatibleWit {
        plugin: semver::Version,
        host: semver::Version,
    },
    #[error("component file name {0:?} must be a plain file name inside the package")]
    BadComponentPath(String),
}

impl Manifest {
    /// Reads and checks `plugin.toml` from a file.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses and checks `plugin.toml` text.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let manifest: Manifest = toml::from_str(text)?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), ManifestError> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !id_ok {
            return Err(ManifestError::BadId(self.id.clone()));
        }
        if self.component.contains('/')
            || self.component.contains('\\')
            || self.component.starts_with('.')
        {
            return Err(ManifestError::BadComponentPath(self.component.clone()));
        }
        check_wit_compatible(&self.wit)
    }
}

/// The versioning policy: a plugin built against `wit` runs on this host when
/// it names the same breaking line (major, or minor while major is 0) and no
/// newer additive release than the host serves.
pub fn check_wit_compatible(wit: &semver::Version) -> Result<(), ManifestError> {
    let host = HOST_WIT_VERSION;
    let same_line = if host.major == 0 {
        wit.major == 0 && wit.minor == host.minor
    } else {
        wit.major == host.major
    };
    let not_newer = if host.major == 0 {
        wit.patch <= host.patch
    } else {
        (wit.minor, wit.patch) <= (host.minor, host.patch)
    };
    if same_line && not_newer {
        Ok(())
    } else {
        Err(ManifestError::IncompatibleWit {
            plugin: wit.clone(),
            host,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        id = "autotask"
        version = "1.2.3"
        vendor = "syncbridge"
        wit = "0.1.0"
        kind = "connector"
        component = "autotask.wasm"
        allowed-outbound-hosts = ["*.autotask.net"]
        [limits]
        memory-mib = 32
    "#;

    #[test]
    fn parses_a_good_manifest_with_defaults() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.kind, PluginKind::Connector);
        assert_eq!(m.limits.memory_mib, 32);
        assert_eq!(m.limits.call_timeout_ms, 30_000);
    }

    #[test]
    fn refuses_other_wit_lines_and_bad_ids() {
        let newer = GOOD.replace("wit = \"0.1.0\"", "wit = \"0.2.0\"");
        assert!(matches!(
            Manifest::parse(&newer),
            Err(ManifestError::IncompatibleWit { .. })
        ));
        let bad = GOOD.replace("id = \"autotask\"", "id = \"Auto Task\"");
        assert!(matches!(
            Manifest::parse(&bad),
            Err(ManifestError::BadId(_))
        ));
        let escape = GOOD.replace("autotask.wasm", "../x.wasm");
        assert!(matches!(
            Manifest::parse(&escape),
            Err(ManifestError::BadComponentPath(_))
        ));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let typo = format!("{GOOD}\nmemory = 5\n");
        assert!(Manifest::parse(&typo).is_err());
    }
}
