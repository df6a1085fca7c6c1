//! Windows time zone ids (what EWS speaks) ↔ IANA names, through CLDR's `windowsZones` table
//! (`windows-timezones`); IANA names are checked against the tz database (`chrono-tz`).

use std::collections::HashMap;
use std::sync::LazyLock;
use strum::IntoEnumIterator;
use syncbridge_sdk::types::mailbox::Zone;
use windows_timezones::WindowsTimezone;

/// Windows ids and their CLDR default IANA names, both ways; built once, read-only.
struct Tables {
    by_windows: HashMap<&'static str, WindowsTimezone>,
    by_iana: HashMap<&'static str, WindowsTimezone>,
}

static TABLES: LazyLock<Tables> = LazyLock::new(|| {
    let mut by_iana = HashMap::new();
    for w in WindowsTimezone::iter() {
        // The first Windows id naming an IANA zone wins, as the linear search did.
        by_iana.entry(w.tzdb_id()).or_insert(w);
    }
    Tables {
        by_windows: WindowsTimezone::iter().map(|w| (w.name(), w)).collect(),
        by_iana,
    }
});

/// The Windows zone of an exact Windows id.
fn windows_zone(id: &str) -> Option<WindowsTimezone> {
    TABLES.by_windows.get(id).copied()
}

/// The IANA name of a zone EWS named: a Windows id through CLDR (its territory-`001` zone), or
/// an IANA name as is.
pub fn iana_of(name: &str) -> Option<String> {
    let name = name.trim();
    if let Some(w) = windows_zone(name) {
        return Some(w.tzdb_id().to_owned());
    }
    name.parse::<chrono_tz::Tz>()
        .ok()
        .map(|tz| tz.name().to_owned())
}

/// The Windows id whose CLDR default zone is `iana`; for other IANA names, the Windows id of a
/// zone with the same rules is unknown and `None` is answered.
pub fn windows_of(iana: &str) -> Option<&'static str> {
    let iana = iana.trim();
    windows_zone(iana)
        .or_else(|| TABLES.by_iana.get(iana).copied())
        .map(WindowsTimezone::name)
}

/// The canonical zone of a Windows (or IANA) id; `None` when neither table knows it.
pub fn zone(name: &str) -> Option<Zone> {
    if let Some(w) = windows_zone(name.trim()) {
        return Some(Zone {
            iana: w.tzdb_id().to_owned(),
            windows: Some(w.name().to_owned()),
        });
    }
    iana_of(name).map(|iana| Zone {
        iana,
        windows: None,
    })
}

/// The Windows id to write for a canonical zone: the one it carries, else the CLDR default of
/// its IANA name.
pub fn windows_for(zone: &Zone) -> Option<String> {
    zone.windows
        .clone()
        .filter(|w| windows_zone(w).is_some())
        .or_else(|| windows_of(&zone.iana).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_answer_what_parsing_and_searching_answer() {
        for w in WindowsTimezone::iter() {
            assert_eq!(windows_zone(w.name()), w.name().parse().ok());
            let searched = WindowsTimezone::iter().find(|x| x.tzdb_id() == w.tzdb_id());
            assert_eq!(windows_of(w.tzdb_id()), searched.map(WindowsTimezone::name));
        }
        assert_eq!(windows_zone("w. europe standard time"), None);
    }

    #[test]
    fn windows_ids_map_to_iana_and_back() {
        assert_eq!(
            iana_of("W. Europe Standard Time").as_deref(),
            Some("Europe/Berlin")
        );
        assert_eq!(
            iana_of("Eastern Standard Time").as_deref(),
            Some("America/New_York")
        );
        assert_eq!(iana_of("Europe/Paris").as_deref(), Some("Europe/Paris"));
        assert_eq!(iana_of("Mars Standard Time"), None);
        assert_eq!(windows_of("Europe/Berlin"), Some("W. Europe Standard Time"));
        assert_eq!(
            windows_of("America/New_York"),
            Some("Eastern Standard Time")
        );
        assert_eq!(windows_of("Nowhere/City"), None);
        let z = zone("Tokyo Standard Time").unwrap();
        assert_eq!(
            (z.iana.as_str(), z.windows.as_deref()),
            ("Asia/Tokyo", Some("Tokyo Standard Time"))
        );
        let carried = Zone {
            iana: "Europe/Zurich".into(),
            windows: Some("W. Europe Standard Time".into()),
        };
        assert_eq!(
            windows_for(&carried).as_deref(),
            Some("W. Europe Standard Time")
        );
    }
}
