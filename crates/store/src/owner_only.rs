//! Directories (0700) and files (0600) only their owner may read: the data
//! directory and the database files, which hold sealed credentials, plugin
//! state and synced personal data.

use std::io;
use std::path::Path;

/// Mode of an owner-only directory.
pub const DIR_MODE: u32 = 0o700;
/// Mode of an owner-only file.
pub const FILE_MODE: u32 = 0o600;

/// Creates `path` (with missing parents) as an owner-only directory, or
/// tightens an existing one. Returns the previous mode when it was tightened.
pub fn dir(path: &Path) -> io::Result<Option<u32>> {
    match std::fs::metadata(path) {
        Ok(_) => tighten(path, DIR_MODE),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_dir(path)?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Creates `path` as an empty owner-only file, or tightens an existing one.
/// Returns the previous mode when it was tightened.
pub fn file(path: &Path) -> io::Result<Option<u32>> {
    match create_file(path) {
        Ok(()) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => tighten(path, FILE_MODE),
        Err(e) => Err(e),
    }
}

/// Tightens `path` to an owner-only file if it exists. Returns the previous
/// mode when it was tightened.
pub fn file_if_present(path: &Path) -> io::Result<Option<u32>> {
    match tighten(path, FILE_MODE) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        other => other,
    }
}

#[cfg(unix)]
fn create_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

#[cfg(unix)]
fn create_file(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
        .map(drop)
}

/// Sets `mode` when group or others have any access; the previous mode if so.
#[cfg(unix)]
fn tighten(path: &Path, mode: u32) -> io::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current & 0o077 == 0 {
        return Ok(None);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(Some(current))
}

#[cfg(not(unix))]
fn create_dir(path: &Path) -> io::Result<()> {
    std::fs::create_dir_all(path)
}

#[cfg(not(unix))]
fn create_file(path: &Path) -> io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map(drop)
}

/// Without Unix modes there is nothing to tighten.
#[cfg(not(unix))]
fn tighten(path: &Path, _mode: u32) -> io::Result<Option<u32>> {
    std::fs::metadata(path).map(|_| None)
}
