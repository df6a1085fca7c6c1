//! Reading a package archive (`.tar` or `.tar.gz`, a file or an upload) within
//! bounds on its entries, its unpacked size and its compression ratio, so a
//! small archive cannot make the host unpack gigabytes.

use super::{PackageError, MAX_COMPONENT_BYTES};
use std::cell::Cell;
use std::fmt;
use std::io::{self, Read};
use std::rc::Rc;
use syncbridge_runtime::manifest::Manifest;

/// Bounds on reading one archive.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Entries of any kind (files, directories, links).
    pub entries: usize,
    /// Bytes of the tar stream after decompression: headers, padding, data.
    pub unpacked_bytes: u64,
    /// Unpacked bytes per compressed byte, checked past [`RATIO_GRACE_BYTES`].
    pub ratio: u64,
}

/// A package needs plugin.toml and the component (at most 64 MiB); the rest
/// is room for a README or licence files. Real components compress about 3:1.
pub(super) const LIMITS: Limits = Limits {
    entries: 64,
    unpacked_bytes: MAX_COMPONENT_BYTES + (32 << 20),
    ratio: 100,
};

/// Unpacked bytes before the ratio is judged: tiny archives of mostly
/// padding compress far better than 100:1.
const RATIO_GRACE_BYTES: u64 = 1 << 20;

/// Which bound an archive exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveLimit {
    /// More entries than `max`.
    Entries { max: usize },
    /// More than `max_bytes` unpacked.
    Unpacked { max_bytes: u64 },
    /// More than `max` unpacked bytes per compressed byte.
    Ratio { max: u64 },
}

impl fmt::Display for ArchiveLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Entries { max } => write!(
                f,
                "it holds more than {max} entries; a package needs only plugin.toml and its component, pack just those"
            ),
            Self::Unpacked { max_bytes } => write!(
                f,
                "it unpacks to more than {} MiB; a component may have at most {} MiB, pack only plugin.toml and the component",
                *max_bytes as f64 / f64::from(1 << 20),
                MAX_COMPONENT_BYTES >> 20
            ),
            Self::Ratio { max } => write!(
                f,
                "it unpacks to more than {max} times its compressed size, which no plugin package does (a compression bomb?); pack only plugin.toml and the component with ordinary gzip"
            ),
        }
    }
}

/// Reads plugin.toml and the component it names from a tar stream
/// (gzip-compressed when `gzip`); `name` stands for the archive in errors.
pub(super) fn read<R: Read>(
    input: R,
    gzip: bool,
    name: &str,
    limits: &Limits,
) -> Result<(Manifest, Vec<u8>), PackageError> {
    let meter = Rc::new(Meter::default());
    let compressed = Counted {
        inner: input,
        meter: meter.clone(),
    };
    let stream: Box<dyn Read + '_> = if gzip {
        Box::new(flate2::read::GzDecoder::new(compressed))
    } else {
        Box::new(compressed)
    };
    let bounded = Bounded {
        inner: stream,
        meter: meter.clone(),
        limits: *limits,
    };
    let result = unpack(tar::Archive::new(bounded), name, limits);
    // A tripped bound surfaces from tar as a read error: name the bound instead.
    match meter.tripped.get() {
        Some(limit) => Err(PackageError::Limit {
            path: name.to_owned(),
            limit,
        }),
        None => result,
    }
}

fn unpack<R: Read>(
    mut archive: tar::Archive<R>,
    name: &str,
    limits: &Limits,
) -> Result<(Manifest, Vec<u8>), PackageError> {
    let io = |source| PackageError::Io {
        path: name.to_owned(),
        source,
    };
    let mut manifest_text = None;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (index, entry) in archive.entries().map_err(io)?.enumerate() {
        if index >= limits.entries {
            return Err(PackageError::Limit {
                path: name.to_owned(),
                limit: ArchiveLimit::Entries {
                    max: limits.entries,
                },
            });
        }
        let mut entry = entry.map_err(io)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let entry_path = entry.path().map_err(io)?.to_string_lossy().into_owned();
        let file_name = entry_path.trim_start_matches("./").to_owned();
        if file_name.contains('/') {
            continue;
        }
        if entry.size() > MAX_COMPONENT_BYTES {
            return Err(PackageError::TooLarge);
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(io)?;
        if file_name == "plugin.toml" {
            manifest_text = Some(String::from_utf8_lossy(&bytes).into_owned());
        } else {
            files.push((file_name, bytes));
        }
    }
    let text = manifest_text.ok_or_else(|| PackageError::NoManifest(name.to_owned()))?;
    let manifest = Manifest::parse(&text)?;
    let component = files
        .into_iter()
        .find(|(n, _)| *n == manifest.component)
        .map(|(_, b)| b)
        .ok_or_else(|| PackageError::NoComponent {
            path: name.to_owned(),
            component: manifest.component.clone(),
        })?;
    Ok((manifest, component))
}

/// Byte counts of one archive read, and the bound that tripped, if any.
#[derive(Default)]
struct Meter {
    compressed: Cell<u64>,
    unpacked: Cell<u64>,
    tripped: Cell<Option<ArchiveLimit>>,
}

/// Counts the bytes read from the archive as given (compressed or not).
struct Counted<R> {
    inner: R,
    meter: Rc<Meter>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let total = self.meter.compressed.get() + n as u64;
        self.meter.compressed.set(total);
        Ok(n)
    }
}

/// The unpacked stream; fails once it passes the unpacked total or ratio.
struct Bounded<R> {
    inner: R,
    meter: Rc<Meter>,
    limits: Limits,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let unpacked = self.meter.unpacked.get() + n as u64;
        self.meter.unpacked.set(unpacked);
        let compressed = self.meter.compressed.get();
        let tripped = if unpacked > self.limits.unpacked_bytes {
            Some(ArchiveLimit::Unpacked {
                max_bytes: self.limits.unpacked_bytes,
            })
        } else if unpacked > RATIO_GRACE_BYTES
            && unpacked > compressed.saturating_mul(self.limits.ratio)
        {
            Some(ArchiveLimit::Ratio {
                max: self.limits.ratio,
            })
        } else {
            None
        };
        match tripped {
            Some(limit) => {
                self.meter.tripped.set(Some(limit));
                Err(io::Error::other(limit.to_string()))
            }
            None => Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"id = "p"
version = "0.1.0"
vendor = "v"
wit = "0.1.0"
kind = "connector"
component = "p.wasm"
"#;

    /// A tar (gzip-compressed if asked) of plugin.toml, p.wasm and `extra`
    /// entries of `extra_bytes` zeros each, streamed from readers.
    fn archive(gzip: bool, extra: usize, extra_bytes: u64) -> Vec<u8> {
        fn build<W: io::Write>(w: W, extra: usize, extra_bytes: u64) -> W {
            let mut tar = tar::Builder::new(w);
            let mut add = |name: &str, size: u64, data: &mut dyn Read| {
                let mut header = tar::Header::new_gnu();
                header.set_size(size);
                header.set_mode(0o644);
                tar.append_data(&mut header, name, data).unwrap();
            };
            add(
                "plugin.toml",
                MANIFEST.len() as u64,
                &mut MANIFEST.as_bytes(),
            );
            add("p.wasm", 4, &mut &b"\0asm"[..]);
            for n in 0..extra {
                let mut zeros = io::repeat(0).take(extra_bytes);
                add(&format!("extra-{n}.bin"), extra_bytes, &mut zeros);
            }
            tar.into_inner().unwrap()
        }
        if gzip {
            let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            build(gz, extra, extra_bytes).finish().unwrap()
        } else {
            build(Vec::new(), extra, extra_bytes)
        }
    }

    fn read_with(bytes: &[u8], gzip: bool, limits: &Limits) -> Result<Manifest, PackageError> {
        read(bytes, gzip, "test.tar", limits).map(|(manifest, _)| manifest)
    }

    fn refused(result: Result<Manifest, PackageError>) -> ArchiveLimit {
        match result {
            Err(PackageError::Limit { limit, .. }) => limit,
            other => panic!("expected a limit to be hit, got {other:?}"),
        }
    }

    const WIDE: Limits = Limits {
        entries: 1000,
        unpacked_bytes: 1 << 30,
        ratio: 1 << 20,
    };

    #[test]
    fn a_package_within_the_limits_is_read() {
        let manifest = read_with(&archive(true, 2, 1000), true, &LIMITS).unwrap();
        assert_eq!(manifest.id, "p");
    }

    #[test]
    fn too_many_entries_are_refused() {
        let limits = Limits { entries: 8, ..WIDE };
        // plugin.toml, p.wasm and 6 more: 8 entries.
        assert!(read_with(&archive(false, 6, 10), false, &limits).is_ok());
        let limit = refused(read_with(&archive(false, 7, 10), false, &limits));
        assert_eq!(limit, ArchiveLimit::Entries { max: 8 });
        assert!(limit.to_string().contains("more than 8 entries"), "{limit}");
    }

    #[test]
    fn an_archive_unpacking_past_the_total_is_refused() {
        let limits = Limits {
            unpacked_bytes: 256 << 10,
            ..WIDE
        };
        // 200 KiB of data fits; 300 KiB does not, though no entry is large.
        assert!(read_with(&archive(false, 4, 50 << 10), false, &limits).is_ok());
        let limit = refused(read_with(&archive(false, 6, 50 << 10), false, &limits));
        assert_eq!(
            limit,
            ArchiveLimit::Unpacked {
                max_bytes: 256 << 10
            }
        );
        assert!(limit.to_string().contains("more than 0.25 MiB"), "{limit}");
    }

    #[test]
    fn a_compression_bomb_is_refused_by_its_ratio() {
        let limits = Limits { ratio: 100, ..WIDE };
        // 16 MiB of zeros compress about 1000:1.
        let bomb = archive(true, 1, 16 << 20);
        assert!(bomb.len() < 64 << 10, "{}", bomb.len());
        let limit = refused(read_with(&bomb, true, &limits));
        assert_eq!(limit, ArchiveLimit::Ratio { max: 100 });
        assert!(limit.to_string().contains("more than 100 times"), "{limit}");
        // The same archive uncompressed is not a bomb.
        assert!(read_with(&archive(false, 1, 16 << 20), false, &limits).is_ok());
    }
}
