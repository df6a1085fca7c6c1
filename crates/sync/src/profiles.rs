//! Profiles (integrations): what a run reads, how it maps, where it writes.

use super::rules::FieldRules;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use syncbridge_store::{now_ms, Store, StoreError};

/// A stored profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub id: String,
    pub source_connection: String,
    pub source_scope: String,
    pub mapper_plugin: String,
    /// Mapper options JSON.
    pub mapper_options: String,
    pub target_connection: String,
    pub target_scope: String,
    pub rules: FieldRules,
    pub page_size: u32,
}

/// Creates or replaces a profile.
pub async fn save(store: &Store, p: &Profile) -> Result<(), StoreError> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO profiles (id, source_connection, source_scope, mapper_plugin, mapper_options, target_connection, target_scope, rules, page_size, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (id) DO UPDATE SET source_connection = excluded.source_connection, source_scope = excluded.source_scope,
           mapper_plugin = excluded.mapper_plugin, mapper_options = excluded.mapper_options, target_connection = excluded.target_connection,
           target_scope = excluded.target_scope, rules = excluded.rules, page_size = excluded.page_size, updated_at = excluded.updated_at",
    )
    .bind(&p.id)
    .bind(&p.source_connection)
    .bind(&p.source_scope)
    .bind(&p.mapper_plugin)
    .bind(&p.mapper_options)
    .bind(&p.target_connection)
    .bind(&p.target_scope)
    .bind(serde_json::to_string(&p.rules).expect("rules serialise"))
    .bind(i64::from(p.page_size))
    .bind(now)
    .bind(now)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// The largest page a profile may read and write at once.
pub const MAX_PAGE_SIZE: u32 = 10_000;

/// A stored profile; a value this version cannot read is an error naming
/// the profile, never a default that would run with other rules.
fn from_row(r: &sqlx::any::AnyRow) -> Result<Profile, StoreError> {
    let id: String = r.try_get("id")?;
    let invalid = |detail: String| {
        StoreError::Invalid {
        what: "profile",
        id: id.clone(),
        detail: format!("{detail}; save the profile again (PUT /api/v1/profiles/{id} or `syncbridge profile update {id}`)"),
    }
    };
    let rules: String = r.try_get("rules")?;
    let rules = serde_json::from_str(&rules)
        .map_err(|e| invalid(format!("its stored rules cannot be read ({e})")))?;
    let page_size: i64 = r.try_get("page_size")?;
    let page_size = u32::try_from(page_size)
        .ok()
        .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
        .ok_or_else(|| {
            invalid(format!(
                "its stored page_size {page_size} is not within 1 to {MAX_PAGE_SIZE}"
            ))
        })?;
    Ok(Profile {
        id: id.clone(),
        source_connection: r.try_get("source_connection")?,
        source_scope: r.try_get("source_scope")?,
        mapper_plugin: r.try_get("mapper_plugin")?,
        mapper_options: r.try_get("mapper_options")?,
        target_connection: r.try_get("target_connection")?,
        target_scope: r.try_get("target_scope")?,
        rules,
        page_size,
    })
}

/// One profile.
pub async fn get(store: &Store, id: &str) -> Result<Profile, StoreError> {
    Ok(get_with_resync(store, id).await?.0)
}

/// Profile `id` and whether a full re-sync of it is requested (one statement for a run;
/// [`take_resync`] takes the request).
pub async fn get_with_resync(store: &Store, id: &str) -> Result<(Profile, bool), StoreError> {
    let row = sqlx::query("SELECT * FROM profiles WHERE id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "profile",
            id: id.to_owned(),
        })?;
    let resync: i64 = row.try_get("resync_requested")?;
    Ok((from_row(&row)?, resync != 0))
}

/// All profiles.
pub async fn list(store: &Store) -> Result<Vec<Profile>, StoreError> {
    let rows = sqlx::query("SELECT * FROM profiles ORDER BY id")
        .fetch_all(store.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

/// When and for whom a profile runs; stored beside the profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProfileSettings {
    /// The customer company the profile belongs to.
    pub company_id: Option<String>,
    /// Scheduled runs happen only while enabled; manual runs always.
    pub enabled: bool,
    /// Seconds between scheduled runs, within [`interval_range`].
    pub interval_secs: Option<u64>,
    /// "HH:MM" of a daily run, in the company's time zone (UTC without a company).
    pub daily_at: Option<String>,
    /// A stored `interval_secs` that is no interval at all (negative: older
    /// versions stored values above `i64::MAX` that way). Kept as read, so it
    /// is reported and never taken for some other interval.
    #[serde(skip)]
    pub unreadable_interval: Option<i64>,
}

impl Default for ProfileSettings {
    fn default() -> Self {
        Self {
            company_id: None,
            enabled: true,
            interval_secs: None,
            daily_at: None,
            unreadable_interval: None,
        }
    }
}

/// Checks a profile's mapper options: a JSON object (what every mapper takes).
pub fn check_mapper_options(options: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str::<serde_json::Value>(options) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err("mapper_options must be a JSON object (the mapper's options, e.g. {\"filters\": [...]})".to_owned()),
    }
}

/// The longest interval between scheduled runs: 31 days.
pub const MAX_INTERVAL_SECS: u64 = 31 * 24 * 60 * 60;

/// The intervals, in seconds, a profile may be scheduled at: its flow's
/// minimum ([`minimum_interval`]) up to [`MAX_INTERVAL_SECS`].
pub fn interval_range(p: &Profile) -> std::ops::RangeInclusive<u64> {
    minimum_interval(p).as_secs()..=MAX_INTERVAL_SECS
}

/// Why settings were refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("daily_at {0:?} is not a time: use HH:MM (the company's local time), e.g. \"02:30\"")]
    DailyAt(String),
    #[error("interval_secs {value} is out of range: this profile may run every {min} to {max} seconds ({min} is its flow's minimum, {max} is 31 days)")]
    Interval { value: u64, min: u64, max: u64 },
    #[error("the stored interval_secs {stored} is not an interval (an older version wrote it): this profile may run every {min} to {max} seconds; set interval_secs again, or to null")]
    StoredInterval { stored: i64, min: u64, max: u64 },
}

/// When a profile runs by itself, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Schedule {
    pub every: Option<std::time::Duration>,
    /// Minutes after local midnight (in the company's time zone) of the daily run.
    pub daily_minute: Option<u32>,
}

impl ProfileSettings {
    /// The interval between scheduled runs, if within [`interval_range`] of `p`.
    pub fn interval(&self, p: &Profile) -> Result<Option<std::time::Duration>, SettingsError> {
        let range = interval_range(p);
        let (min, max) = (*range.start(), *range.end());
        if let Some(stored) = self.unreadable_interval {
            return Err(SettingsError::StoredInterval { stored, min, max });
        }
        self.interval_secs
            .map(|value| {
                if range.contains(&value) {
                    Ok(std::time::Duration::from_secs(value))
                } else {
                    Err(SettingsError::Interval { value, min, max })
                }
            })
            .transpose()
    }

    /// The daily run time as minutes after midnight, if it is a time.
    pub fn daily_minute(&self) -> Result<Option<u32>, SettingsError> {
        self.daily_at
            .as_deref()
            .map(|t| parse_hhmm(t).ok_or_else(|| SettingsError::DailyAt(t.to_owned())))
            .transpose()
    }

    /// Checks the settings for profile `p`: the one rule the API, the CLI and
    /// the scheduler apply.
    pub fn validate(&self, p: &Profile) -> Result<Schedule, SettingsError> {
        Ok(Schedule {
            every: self.interval(p)?,
            daily_minute: self.daily_minute()?,
        })
    }
}

/// "HH:MM" → minutes after midnight.
pub fn parse_hhmm(t: &str) -> Option<u32> {
    let (h, m) = t.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// The shortest interval a profile may be scheduled at: mailbox calendar
/// flows poll at most every 10 minutes, others every minute.
pub fn minimum_interval(p: &Profile) -> std::time::Duration {
    let scopes = format!("{} {}", p.source_scope, p.target_scope).to_ascii_lowercase();
    if scopes.contains("calendar") || scopes.contains("appointment") {
        std::time::Duration::from_secs(600)
    } else {
        std::time::Duration::from_secs(60)
    }
}

/// A profile's settings.
pub async fn settings(store: &Store, id: &str) -> Result<ProfileSettings, StoreError> {
    let row = sqlx::query(
        "SELECT company_id, enabled, interval_secs, daily_at FROM profiles WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(store.pool())
    .await?
    .ok_or_else(|| StoreError::NotFound {
        what: "profile",
        id: id.to_owned(),
    })?;
    settings_from_row(&row)
}

fn settings_from_row(row: &sqlx::any::AnyRow) -> Result<ProfileSettings, StoreError> {
    let stored: Option<i64> = row.try_get("interval_secs")?;
    Ok(ProfileSettings {
        company_id: row.try_get("company_id")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        interval_secs: stored.and_then(|v| u64::try_from(v).ok()),
        daily_at: row.try_get("daily_at")?,
        unreadable_interval: stored.filter(|v| *v < 0),
    })
}

/// Every profile with its settings, in one query (the scheduler's tick).
pub async fn list_with_settings(
    store: &Store,
) -> Result<Vec<(Profile, ProfileSettings)>, StoreError> {
    let rows = sqlx::query("SELECT * FROM profiles ORDER BY id")
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|r| Ok((from_row(r)?, settings_from_row(r)?)))
        .collect()
}

/// Stores a profile's settings (checked first with [`ProfileSettings::validate`]).
/// An unreadable stored interval stays as it is unless `interval_secs` replaces it.
pub async fn set_settings(store: &Store, id: &str, s: &ProfileSettings) -> Result<(), StoreError> {
    let interval = match s.interval_secs {
        Some(v) => Some(i64::try_from(v).map_err(|_| StoreError::Invalid {
            what: "profile",
            id: id.to_owned(),
            detail: format!("interval_secs {v} cannot be stored"),
        })?),
        None => s.unreadable_interval,
    };
    let done = sqlx::query(
        "UPDATE profiles SET company_id = $1, enabled = $2, interval_secs = $3, daily_at = $4, updated_at = $5 WHERE id = $6",
    )
    .bind(s.company_id.as_deref())
    .bind(i64::from(s.enabled))
    .bind(interval)
    .bind(s.daily_at.as_deref())
    .bind(now_ms())
    .bind(id)
    .execute(store.pool())
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            what: "profile",
            id: id.to_owned(),
        });
    }
    Ok(())
}

/// Turns scheduled runs of a profile on or off; nothing else changes.
pub async fn set_enabled(store: &Store, id: &str, enabled: bool) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE profiles SET enabled = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(enabled))
        .bind(now_ms())
        .bind(id)
        .execute(store.pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            what: "profile",
            id: id.to_owned(),
        });
    }
    Ok(())
}

/// Marks every profile reading from or writing to `connection` for a full re-sync.
pub async fn request_resync(store: &Store, connection: &str) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE profiles SET resync_requested = 1 WHERE source_connection = $1 OR target_connection = $1",
    )
    .bind(connection)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected())
}

/// Marks profile `id` for a full re-sync on its next run.
pub async fn request_profile_resync(store: &Store, id: &str) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE profiles SET resync_requested = 1 WHERE id = $1")
        .bind(id)
        .execute(store.pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            what: "profile",
            id: id.to_owned(),
        });
    }
    Ok(())
}

/// Whether a change from `before` to `after` changes what the profile's
/// runs would write: then every item must be evaluated again, not only the
/// ones that change in the source later.
pub fn changes_what_runs_write(before: &Profile, after: &Profile) -> bool {
    before.source_connection != after.source_connection
        || before.source_scope != after.source_scope
        || before.mapper_plugin != after.mapper_plugin
        || before.mapper_options != after.mapper_options
        || before.target_connection != after.target_connection
        || before.target_scope != after.target_scope
        || before.rules != after.rules
}

/// Saves profile `p` as a flow derived it from its own settings: created
/// when new, left alone when unchanged, saved when it differs — with a full
/// re-sync requested when what its runs write changed.
pub async fn save_derived(store: &Store, p: &Profile) -> Result<(), StoreError> {
    match get(store, &p.id).await {
        Ok(stored) if stored == *p => Ok(()),
        Ok(stored) => {
            save(store, p).await?;
            if changes_what_runs_write(&stored, p) {
                request_profile_resync(store, &p.id).await?;
            }
            Ok(())
        }
        Err(StoreError::NotFound { .. }) => save(store, p).await,
        Err(e) => Err(e),
    }
}

/// Clears and returns a profile's re-sync request.
pub async fn take_resync(store: &Store, id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE profiles SET resync_requested = 0 WHERE id = $1 AND resync_requested = 1",
    )
    .bind(id)
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes a profile with its links, cursors, plans and quarantine.
pub async fn remove(store: &Store, id: &str) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await?;
    for sql in [
        "DELETE FROM links WHERE profile_id = $1",
        "DELETE FROM cursors WHERE profile_id = $1",
        "DELETE FROM reconciles WHERE profile_id = $1",
        "DELETE FROM quarantine WHERE profile_id = $1",
        "DELETE FROM pending_ops WHERE profile_id = $1",
        "DELETE FROM relayed_changes WHERE profile_id = $1",
        "DELETE FROM plan_items WHERE plan_id IN (SELECT id FROM plans WHERE profile_id = $1)",
        "DELETE FROM plans WHERE profile_id = $1",
    ] {
        sqlx::query(sql).bind(id).execute(&mut *tx).await?;
    }
    let done = sqlx::query("DELETE FROM profiles WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            what: "profile",
            id: id.to_owned(),
        });
    }
    tx.commit().await?;
    Ok(())
}

/// Profiles that use `connection`.
pub async fn using_connection(store: &Store, connection: &str) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "SELECT id FROM profiles WHERE source_connection = $1 OR target_connection = $1 ORDER BY id",
    )
    .bind(connection)
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| r.try_get("id").map_err(StoreError::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(source_scope: &str) -> Profile {
        Profile {
            id: "p".into(),
            source_connection: "s".into(),
            source_scope: source_scope.into(),
            mapper_plugin: "m".into(),
            mapper_options: "{}".into(),
            target_connection: "t".into(),
            target_scope: "contacts".into(),
            rules: FieldRules::default(),
            page_size: 100,
        }
    }

    #[test]
    fn mailbox_calendar_flows_poll_at_most_every_ten_minutes() {
        assert_eq!(
            minimum_interval(&profile("calendar:mailbox=a@b")).as_secs(),
            600
        );
        assert_eq!(minimum_interval(&profile("users")).as_secs(), 60);
    }

    #[test]
    fn daily_times_are_checked() {
        assert_eq!(parse_hhmm("02:30"), Some(150));
        assert_eq!(parse_hhmm("24:00"), None);
        let bad = ProfileSettings {
            daily_at: Some("2pm".into()),
            ..ProfileSettings::default()
        };
        let error = bad.validate(&profile("users")).unwrap_err().to_string();
        assert!(error.contains("HH:MM"), "{error}");
    }

    fn every(secs: u64) -> ProfileSettings {
        ProfileSettings {
            interval_secs: Some(secs),
            ..ProfileSettings::default()
        }
    }

    #[test]
    fn intervals_run_from_the_flow_minimum_to_31_days() {
        let users = profile("users");
        let calendar = profile("calendar:mailbox=a@b");
        assert_eq!(interval_range(&users), 60..=2_678_400);
        assert_eq!(interval_range(&calendar), 600..=2_678_400);
        for (p, secs) in [(&users, 60), (&users, 2_678_400), (&calendar, 600)] {
            assert_eq!(
                every(secs).validate(p).unwrap().every,
                Some(std::time::Duration::from_secs(secs))
            );
        }
        for (p, secs, min) in [
            (&users, 59, "60"),
            (&users, 0, "60"),
            (&calendar, 599, "600"),
            (&users, 2_678_401, "60"),
            (&users, i64::MAX as u64 + 1, "60"),
            (&users, u64::MAX, "60"),
        ] {
            let error = every(secs).validate(p).unwrap_err();
            assert!(
                matches!(error, SettingsError::Interval { value, .. } if value == secs),
                "{secs}: {error:?}"
            );
            let message = error.to_string();
            assert!(
                message.contains(&format!("every {min} to 2678400 seconds")),
                "{secs}: {message}"
            );
        }
        assert_eq!(
            ProfileSettings::default().validate(&users).unwrap(),
            Schedule::default()
        );
    }

    #[test]
    fn an_unreadable_stored_interval_is_an_error_not_a_default() {
        let stored = ProfileSettings {
            unreadable_interval: Some(-1),
            ..ProfileSettings::default()
        };
        let message = stored.validate(&profile("users")).unwrap_err().to_string();
        assert!(
            message.contains("-1") && message.contains("60 to 2678400"),
            "{message}"
        );
    }
}
