//! Customer companies (tenants): the unit API tokens are scoped to.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use syncbridge_store::{now_ms, Store, StoreError};

/// One customer company (a row of `companies`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Company {
    pub id: String,
    pub name: String,
    /// `;`-separated recipients of failure notices and confirmations.
    #[serde(default)]
    pub notify_to: String,
    /// IANA time zone (`Europe/Berlin`) the daily runs of the company's
    /// profiles are scheduled in; see [`check_time_zone`].
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
}

/// The zone of companies saved before they had one, and of profiles without
/// a company: their `daily_at` is UTC.
pub const DEFAULT_TIME_ZONE: &str = "UTC";

fn default_time_zone() -> String {
    DEFAULT_TIME_ZONE.to_owned()
}

/// A time zone name this system cannot resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time zone {zone:?} is not an IANA time zone name this system knows ({detail}); use a name such as \"Europe/Berlin\", \"America/New_York\" or \"UTC\"")]
pub struct UnknownTimeZone {
    pub zone: String,
    pub detail: String,
}

/// Resolves an IANA time zone name (`Europe/Berlin`, `UTC`) from the
/// system's time zone database (or the copy built in when the system has
/// none).
pub fn time_zone(name: &str) -> Result<jiff::tz::TimeZone, UnknownTimeZone> {
    let unknown = |detail: String| UnknownTimeZone {
        zone: name.to_owned(),
        detail,
    };
    if name.trim().is_empty() {
        return Err(unknown("it is empty".into()));
    }
    jiff::tz::TimeZone::get(name).map_err(|e| unknown(e.to_string()))
}

/// Checks a time zone name given for a company and answers it as the
/// database spells it (`europe/berlin` becomes `Europe/Berlin`).
pub fn check_time_zone(name: &str) -> Result<String, UnknownTimeZone> {
    let zone = time_zone(name.trim()).map_err(|e| UnknownTimeZone {
        zone: name.to_owned(),
        ..e
    })?;
    Ok(zone.iana_name().unwrap_or(name.trim()).to_owned())
}

impl Company {
    /// The company's time zone; a stored name this version cannot resolve
    /// is an error naming the company, never UTC in its place.
    pub fn zone(&self) -> Result<jiff::tz::TimeZone, StoreError> {
        time_zone(&self.time_zone).map_err(|e| StoreError::Invalid {
            what: "company",
            id: self.id.clone(),
            detail: format!(
                "{e}; set it again with PUT /api/v1/companies/{id} (time_zone) or `syncbridge company update {id} --time-zone ZONE`",
                id = self.id
            ),
        })
    }
}

/// Creates or updates a company. A new row gets a fresh incarnation, which
/// the company's scoped API tokens are bound to; an update keeps it.
pub async fn save(store: &Store, c: &Company) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO companies (id, name, notify_to, time_zone, created_at, incarnation) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, notify_to = excluded.notify_to, time_zone = excluded.time_zone",
    )
    .bind(&c.id)
    .bind(&c.name)
    .bind(&c.notify_to)
    .bind(&c.time_zone)
    .bind(now_ms())
    .bind(new_incarnation())
    .execute(store.pool())
    .await?;
    Ok(())
}

fn new_incarnation() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The incarnation of company `id`: what its scoped tokens are bound to.
pub async fn incarnation(store: &Store, id: &str) -> Result<String, StoreError> {
    let row = sqlx::query("SELECT incarnation FROM companies WHERE id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "company",
            id: id.to_owned(),
        })?;
    let value: Option<String> = row.try_get("incarnation")?;
    value.ok_or_else(|| {
        StoreError::InUse(format!(
            "company {id:?} has no incarnation (its row was written outside syncbridge); save it again with `syncbridge company add {id}`"
        ))
    })
}

/// One company.
pub async fn get(store: &Store, id: &str) -> Result<Company, StoreError> {
    sqlx::query_as::<_, Company>(
        "SELECT id, name, notify_to, time_zone FROM companies WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(store.pool())
    .await?
    .ok_or_else(|| StoreError::NotFound {
        what: "company",
        id: id.to_owned(),
    })
}

/// All companies, or only `only` when set.
pub async fn list(store: &Store, only: Option<&str>) -> Result<Vec<Company>, StoreError> {
    Ok(sqlx::query_as::<_, Company>(
        "SELECT id, name, notify_to, time_zone FROM companies WHERE ($1 IS NULL OR id = $1) ORDER BY id",
    )
    .bind(only)
    .fetch_all(store.pool())
    .await?)
}

/// Removes a company that owns nothing any more and, in the same
/// transaction, revokes every API token scoped to it.
pub async fn remove(store: &Store, id: &str) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await?;
    let owned: i64 = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM connections WHERE company_id = $1) + (SELECT COUNT(*) FROM profiles WHERE company_id = $1) AS n",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?
    .try_get("n")?;
    if owned > 0 {
        return Err(StoreError::InUse(format!(
            "company {id:?} still owns {owned} connection(s) or profile(s); remove those first"
        )));
    }
    sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1 WHERE company_id = $2 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let done = sqlx::query("DELETE FROM companies WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            what: "company",
            id: id.to_owned(),
        });
    }
    tx.commit().await?;
    Ok(())
}

/// Assigns a connection to a company (or none).
pub async fn assign_connection(
    store: &Store,
    connection: &str,
    company: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE connections SET company_id = $1 WHERE id = $2")
        .bind(company)
        .bind(connection)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// The company a connection belongs to.
pub async fn of_connection(store: &Store, connection: &str) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT company_id FROM connections WHERE id = $1")
        .bind(connection)
        .fetch_optional(store.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "connection",
            id: connection.to_owned(),
        })?;
    Ok(row.try_get("company_id")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zones_are_iana_names_spelled_as_the_database_does() {
        assert_eq!(check_time_zone("Europe/Berlin").unwrap(), "Europe/Berlin");
        assert_eq!(
            check_time_zone(" america/new_york ").unwrap(),
            "America/New_York"
        );
        assert_eq!(check_time_zone("UTC").unwrap(), "UTC");
        for bad in ["Nope/Zone", "", "  ", "+02:00", "../../etc/passwd"] {
            let e = check_time_zone(bad).unwrap_err();
            assert_eq!(e.zone, bad);
            let message = e.to_string();
            assert!(message.contains("Europe/Berlin"), "{message}");
        }
    }

    #[test]
    fn zones_resolve_without_a_system_database() {
        // The copy built in (`tzdb-bundle-always`) answers where the system
        // has no /usr/share/zoneinfo, as in minimal container images.
        let bundled = jiff::tz::TimeZoneDatabase::bundled();
        for zone in ["Europe/Berlin", "America/New_York", "Asia/Tokyo"] {
            assert!(bundled.get(zone).is_ok(), "{zone}");
        }
    }

    #[test]
    fn an_unresolvable_stored_zone_names_the_company() {
        let company = Company {
            id: "contoso".into(),
            name: "Contoso".into(),
            notify_to: String::new(),
            time_zone: "Gone/Zone".into(),
        };
        let message = company.zone().unwrap_err().to_string();
        for part in ["contoso", "Gone/Zone", "--time-zone"] {
            assert!(message.contains(part), "{part:?} in {message}");
        }
    }
}
