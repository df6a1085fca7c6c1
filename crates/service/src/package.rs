//! Plugin packages: a directory or a `.tar.gz`/`.tar` archive holding
//! `plugin.toml` and the component it names.

mod archive;

pub use archive::ArchiveLimit;

use sha2::{Digest, Sha256};
use std::path::Path;
use syncbridge_runtime::manifest::{Manifest, ManifestError};

/// Largest component accepted.
pub const MAX_COMPONENT_BYTES: u64 = 64 << 20;

/// Why a package was refused.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("cannot read package {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("package {0} has no plugin.toml at its top level")]
    NoManifest(String),
    #[error("package {path} does not contain the component {component:?} named in plugin.toml")]
    NoComponent { path: String, component: String },
    #[error("component is larger than {} MiB", MAX_COMPONENT_BYTES >> 20)]
    TooLarge,
    #[error("package {path} was refused: {limit}")]
    Limit { path: String, limit: ArchiveLimit },
    #[error("component digest mismatch: expected sha256 {expected}, got {actual}; the package was altered or corrupted, do not install it")]
    DigestMismatch { expected: String, actual: String },
    #[error("archive packages must pin their component with `sha256 = \"...\"` in plugin.toml (or pass --sha256)")]
    Unpinned,
}

/// A package read into memory and verified.
#[derive(Debug, Clone)]
pub struct Package {
    pub manifest: Manifest,
    pub component: Vec<u8>,
    /// sha256 of `component`, lower-case hex.
    pub digest: String,
}

/// sha256 of bytes as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Package {
    /// Reads a package from a directory or archive and verifies its digest
    /// against the manifest and, if given, the operator's `expected_sha256`.
    pub fn open(path: &Path, expected_sha256: Option<&str>) -> Result<Self, PackageError> {
        let shown = path.display().to_string();
        let io = |source| PackageError::Io {
            path: shown.clone(),
            source,
        };
        if !path.is_dir() {
            let file = std::fs::File::open(path).map_err(io)?;
            let name = path.to_string_lossy();
            let gzip = name.ends_with(".gz") || name.ends_with(".tgz");
            let (manifest, component) = archive::read(
                std::io::BufReader::new(file),
                gzip,
                &shown,
                &archive::LIMITS,
            )?;
            return Self::verified(manifest, component, true, expected_sha256);
        }
        let manifest_path = path.join("plugin.toml");
        if !manifest_path.exists() {
            return Err(PackageError::NoManifest(shown));
        }
        let manifest = Manifest::load(&manifest_path)?;
        let component_path = path.join(&manifest.component);
        let meta = std::fs::metadata(&component_path).map_err(|_| PackageError::NoComponent {
            path: shown.clone(),
            component: manifest.component.clone(),
        })?;
        if meta.len() > MAX_COMPONENT_BYTES {
            return Err(PackageError::TooLarge);
        }
        let component = std::fs::read(&component_path).map_err(io)?;
        Self::verified(manifest, component, false, expected_sha256)
    }

    /// Reads a `.tar.gz` package held in memory (an upload), `name` standing
    /// for it in errors, and verifies it like [`Package::open`].
    pub fn from_tar_gz(
        bytes: &[u8],
        name: &str,
        expected_sha256: Option<&str>,
    ) -> Result<Self, PackageError> {
        let (manifest, component) = archive::read(bytes, true, name, &archive::LIMITS)?;
        Self::verified(manifest, component, true, expected_sha256)
    }

    /// Checks the component's digest against every pin; archives must have one.
    fn verified(
        manifest: Manifest,
        component: Vec<u8>,
        archive: bool,
        expected_sha256: Option<&str>,
    ) -> Result<Self, PackageError> {
        let digest = sha256_hex(&component);
        let pins: Vec<String> = manifest
            .sha256
            .iter()
            .map(String::as_str)
            .chain(expected_sha256)
            .map(|s| s.trim().to_ascii_lowercase())
            .collect();
        if archive && pins.is_empty() {
            return Err(PackageError::Unpinned);
        }
        if let Some(expected) = pins.into_iter().find(|p| *p != digest) {
            return Err(PackageError::DigestMismatch {
                expected,
                actual: digest,
            });
        }
        Ok(Self {
            manifest,
            component,
            digest,
        })
    }
}
