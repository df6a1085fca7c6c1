//! Windows time zone ids (what EWS speaks) ↔ IANA names, through CLDR's `windowsZones` table
//! (`windows-timezones`); IANA names are checked against the tz database (`chrono-tz`).

use strum::IntoEnumIterator;
use syncbridge_sdk::types::mailbox::Zone;
use windows_timezones::WindowsTimezone;

/// The IANA name of a zone EWS named: a Windows id through CLDR (its territory-`001` zone), or
/// an IANA name as is.
pub fn iana_of(name: &str) -> Option<String> {
    let name = name.trim();
    if let Ok(w) = name.parse::<WindowsTimezone>() {
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
    if let Ok(w) = iana.parse::<WindowsTimezone>() {
        return Some(w.name());
    }
    WindowsTimezone::iter()
        .find(|w| w.tzdb_id() == iana)
        .map(WindowsTimezone::name)
}

/// The canonical zone of a Windows (or IANA) id; `None` when neither table knows it.
pub fn zone(name: &str) -> Option<Zone> {
    let iana = iana_of(name)?;
    let windows = name
        .trim()
        .parse::<WindowsTimezone>()
        .ok()
        .map(|w| w.name().to_owned());
    Some(Zone { iana, windows })
}

/// The Windows id to write for a canonical zone: the one it carries, else the CLDR default of
/// its IANA name.
pub fn windows_for(zone: &Zone) -> Option<String> {
    zone.windows
        .clone()
        .filter(|w| w.parse::<WindowsTimezone>().is_ok())
        .or_else(|| windows_of(&zone.iana).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

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
