//! Time zones as Microsoft services name them (feature `zones`): a Windows id
//! (`W. Europe Standard Time`, what EWS, Graph and Dataverse's `timezonedefinition.standardname`
//! use) or an IANA name, read through CLDR's `windowsZones` table (`windows-timezones`: a
//! Windows id gives its territory-`001` zone) and the tz database (`chrono-tz`).

use crate::types::mailbox::Zone;
use chrono_tz::Tz;
use windows_timezones::WindowsTimezone;

/// The tz-database zone of a Windows id (exact spelling) or an IANA name; `None` when neither
/// table knows the name.
pub fn tz(name: &str) -> Option<Tz> {
    let name = name.trim();
    if let Ok(w) = name.parse::<WindowsTimezone>() {
        return w.tzdb_id().parse().ok();
    }
    name.parse().ok()
}

/// The canonical zone of a Windows id (both ids: its CLDR zone and the id itself) or an IANA
/// name (no Windows id); `None` when neither table knows the name.
pub fn zone(name: &str) -> Option<Zone> {
    let name = name.trim();
    if let Ok(w) = name.parse::<WindowsTimezone>() {
        return Some(Zone {
            iana: w.tzdb_id().to_owned(),
            windows: Some(name.to_owned()),
        });
    }
    name.parse::<Tz>().ok().map(|tz| Zone {
        iana: tz.name().to_owned(),
        windows: None,
    })
}

/// UTC as the mailbox connectors name it: CLDR's `Etc/UTC` for Windows' `UTC`, so an item read
/// back compares equal to what was written.
pub fn utc() -> Zone {
    Zone {
        iana: "Etc/UTC".into(),
        windows: Some("UTC".into()),
    }
}

/// The zone `name` names ([`zone`]), [`utc`] when it names none. A name neither table knows is
/// read as UTC with a warning: instants stay right, only a series' daylight-saving shifts would
/// be lost.
pub fn zone_or_utc(name: Option<&str>) -> Zone {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        return utc();
    };
    zone(name).unwrap_or_else(|| {
        log::warn!(
            "the time zone {name:?} is neither a Windows zone id nor an IANA name; read as UTC"
        );
        utc()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_zone_or_an_unknown_one_is_utc() {
        assert_eq!(zone_or_utc(None).iana, "Etc/UTC");
        assert_eq!(zone_or_utc(Some("  ")).windows.as_deref(), Some("UTC"));
        assert_eq!(zone_or_utc(Some("Mars Standard Time")).iana, "Etc/UTC");
        assert_eq!(
            zone_or_utc(Some("W. Europe Standard Time")).iana,
            "Europe/Berlin"
        );
    }

    #[test]
    fn windows_ids_read_through_cldr_and_iana_names_as_they_are() {
        assert_eq!(tz("W. Europe Standard Time"), Some(Tz::Europe__Berlin));
        assert_eq!(
            tz(" Pacific Standard Time "),
            Some(Tz::America__Los_Angeles)
        );
        assert_eq!(tz("Europe/Paris"), Some(Tz::Europe__Paris));
        assert_eq!(tz("Mars Standard Time"), None);
        let ids = |name: &str| zone(name).map(|z| (z.iana, z.windows));
        assert_eq!(
            ids("W. Europe Standard Time"),
            Some((
                "Europe/Berlin".into(),
                Some("W. Europe Standard Time".into())
            ))
        );
        assert_eq!(ids("Asia/Tokyo"), Some(("Asia/Tokyo".into(), None)));
        assert_eq!(ids(""), None);
    }
}
