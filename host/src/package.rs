//! Plugin packages: a directory or a `.tar.gz`/`.tar` archive holding
//! `plugin.toml` and the component it names.

use crate::manifest::{Manifest, ManifestError};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// Largest component accepted.
const MAX_COMPONENT_BYTES: u64 = 64 << 20;

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
        let io = |source| PackageError::Io {
            path: path.display().to_string(),
            source,
        };
        let (manifest, component, archive) = if path.is_dir() {
            let manifest_path = path.join("plugin.toml");
            if !manifest_path.exists() {
                return Err(PackageError::NoManifest(path.display().to_string()));
            }
            let manifest = Manifest::load(&manifest_path)?;
            let component_path = path.join(&manifest.component);
            let meta =
                std::fs::metadata(&component_path).map_err(|_| PackageError::NoComponent {
                    path: path.display().to_string(),
                    component: manifest.component.clone(),
                })?;
            if meta.len() > MAX_COMPONENT_BYTES {
                return Err(PackageError::TooLarge);
            }
            let component = std::fs::read(&component_path).map_err(io)?;
            (manifest, component, false)
        } else {
            let file = std::fs::File::open(path).map_err(io)?;
            let name = path.to_string_lossy();
            let reader: Box<dyn Read> = if name.ends_with(".gz") || name.ends_with(".tgz") {
                Box::new(flate2::read::GzDecoder::new(file))
            } else {
                Box::new(file)
            };
            let (manifest, component) = read_archive(reader, path)?;
            (manifest, component, true)
        };
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

fn read_archive(reader: Box<dyn Read>, path: &Path) -> Result<(Manifest, Vec<u8>), PackageError> {
    let io = |source| PackageError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut archive = tar::Archive::new(reader);
    let mut manifest_text = None;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let entry_path = entry.path().map_err(io)?.to_string_lossy().into_owned();
        let name = entry_path.trim_start_matches("./").to_owned();
        if name.contains('/') {
            continue;
        }
        if entry.size() > MAX_COMPONENT_BYTES {
            return Err(PackageError::TooLarge);
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(io)?;
        if name == "plugin.toml" {
            manifest_text = Some(String::from_utf8_lossy(&bytes).into_owned());
        } else {
            files.push((name, bytes));
        }
    }
    let text = manifest_text.ok_or_else(|| PackageError::NoManifest(path.display().to_string()))?;
    let manifest = Manifest::parse(&text)?;
    let component = files
        .into_iter()
        .find(|(n, _)| *n == manifest.component)
        .map(|(_, b)| b)
        .ok_or_else(|| PackageError::NoComponent {
            path: path.display().to_string(),
            component: manifest.component.clone(),
        })?;
    Ok((manifest, component))
}
