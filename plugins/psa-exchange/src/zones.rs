//! Time zones named either way, completed to both ids: the IANA name and the Windows id, from
//! CLDR's `windowsZones` table (`windows-timezones`, the table the `ews` connector reads). A
//! Windows id gives its territory-`001` IANA zone; an IANA name gives the Windows id whose
//! default zone it is. A current IANA name the table spells by its
//! former name (`Asia/Kolkata`, CLDR's `Asia/Calcutta`) keeps its spelling. Names neither
//! side knows are kept as the IANA name without a Windows id.

use std::collections::HashMap;
use std::sync::LazyLock;
use strum::IntoEnumIterator;
use syncbridge_sdk::types::mailbox::Zone;
use windows_timezones::WindowsTimezone;

/// Lookup tables keyed by lower-cased names, built once.
struct Tables {
    by_windows: HashMap<String, WindowsTimezone>,
    by_iana: HashMap<String, WindowsTimezone>,
}

static TABLES: LazyLock<Tables> = LazyLock::new(|| {
    let mut by_iana = HashMap::new();
    for w in WindowsTimezone::iter() {
        // The first Windows id naming an IANA zone wins (as in the `ews` connector).
        by_iana.entry(w.tzdb_id().to_ascii_lowercase()).or_insert(w);
    }
    Tables {
        by_windows: WindowsTimezone::iter()
            .map(|w| (w.name().to_ascii_lowercase(), w))
            .collect(),
        by_iana,
    }
});

/// Current IANA names of zones CLDR's table still spells by their former names.
const RENAMED: &[(&str, &str)] = &[
    ("asia/kolkata", "asia/calcutta"),
    ("asia/kathmandu", "asia/katmandu"),
    ("asia/yangon", "asia/rangoon"),
    ("america/argentina/buenos_aires", "america/buenos_aires"),
    ("america/indiana/indianapolis", "america/indianapolis"),
    ("europe/kyiv", "europe/kiev"),
];

/// UTC, as both ids name it.
pub fn utc() -> Zone {
    Zone {
        iana: "Etc/UTC".into(),
        windows: Some("UTC".into()),
    }
}

/// The zone of a Windows id or an IANA name (either case), completed to both ids where the
/// table knows them.
pub fn zone_of(name: &str) -> Zone {
    let name = name.trim();
    let key = name.to_ascii_lowercase();
    if let Some(w) = TABLES.by_windows.get(&key) {
        return Zone {
            iana: w.tzdb_id().into(),
            windows: Some(w.name().into()),
        };
    }
    if matches!(key.as_str(), "utc" | "etc/utc" | "z" | "gmt" | "etc/gmt") {
        return utc();
    }
    if let Some(w) = TABLES.by_iana.get(&key) {
        return Zone {
            iana: w.tzdb_id().into(),
            windows: Some(w.name().into()),
        };
    }
    // A current name keeps its spelling and gets the Windows id of its former one.
    let former = RENAMED
        .iter()
        .find(|(current, _)| *current == key)
        .and_then(|(_, former)| TABLES.by_iana.get(*former));
    match former {
        Some(w) => Zone {
            iana: name.into(),
            windows: Some(w.name().into()),
        },
        None => Zone {
            iana: name.into(),
            windows: None,
        },
    }
}
