//! Persistence: plugins, connections, encrypted credentials, plugin state.
//!
//! One [`Store`] over sqlx's `Any` driver: an SQLite file by default, or
//! PostgreSQL when the URL starts with `postgres://`. Queries use `$n`
//! placeholders, which both back ends accept; each back end has its own
//! migrations directory because their DDL differs.

pub mod owner_only;
mod records;

pub use records::{ConnectionRecord, CredentialRecord, PluginRecord};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::collections::BTreeMap;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL {0:?} is not supported: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot restrict the database file {path} to its owner (mode 0600): {source}; run syncbridge as the file's owner or fix its permissions")]
    Permissions {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot migrate the database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("{what} {id:?} does not exist")]
    NotFound { what: &'static str, id: String },
    #[error("{what} {id:?} already exists")]
    AlreadyExists { what: &'static str, id: String },
    #[error("{0}")]
    InUse(String),
    /// A value that cannot be stored as given, or a stored one that cannot be read.
    #[error("{what} {id:?}: {detail}")]
    Invalid {
        what: &'static str,
        id: String,
        detail: String,
    },
}

/// The store handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// Milliseconds since the Unix epoch, as stored in every timestamp column.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Makes the SQLite database of `url` readable by its owner only: creates it
/// with mode 0600 when missing (unless the URL sets its own `mode=`) and
/// tightens an existing one and its `-wal`/`-shm` companions, which SQLite
/// creates with the database's permissions. In-memory databases have no files.
fn private_sqlite_files(url: &str) -> Result<(), StoreError> {
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Ok(());
    }
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse().map_err(StoreError::Connect)?;
    let db = options.get_filename();
    if db.as_os_str().is_empty() {
        return Ok(());
    }
    let companion = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    let create = !url.contains("mode=");
    let files = [
        (db.to_path_buf(), create),
        (companion("-wal"), false),
        (companion("-shm"), false),
    ];
    for (path, create) in files {
        let tightened = if create {
            crate::owner_only::file(&path)
        } else {
            crate::owner_only::file_if_present(&path)
        }
        .map_err(|source| StoreError::Permissions {
            path: path.display().to_string(),
            source,
        })?;
        if let Some(previous) = tightened {
            tracing::warn!(
                "database file {} was readable by other users (mode {previous:04o}); tightened it to 0600",
                path.display()
            );
        }
    }
    Ok(())
}

impl Store {
    /// Opens (creating an SQLite file if needed) and migrates a store.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let pool = match backend {
            Backend::Sqlite => {
                private_sqlite_files(url)?;
                // `mode=rwc` creates the file on first start.
                let url = if url.contains("mode=") || url.contains(":memory:") {
                    url.to_owned()
                } else if url.contains('?') {
                    format!("{url}&mode=rwc")
                } else {
                    format!("{url}?mode=rwc")
                };
                AnyPoolOptions::new()
                    .max_connections(8)
                    // An embedded file does not drop connections: no liveness
                    // ping (one more round trip to the connection's worker
                    // thread) before every statement.
                    .test_before_acquire(false)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            for pragma in [
                                "PRAGMA journal_mode = WAL",
                                "PRAGMA foreign_keys = ON",
                                "PRAGMA busy_timeout = 10000",
                            ] {
                                sqlx::query(pragma).execute(&mut *conn).await?;
                            }
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await
                    .map_err(StoreError::Connect)?
            }
            Backend::Postgres => AnyPoolOptions::new()
                .max_connections(16)
                .connect(url)
                .await
                .map_err(StoreError::Connect)?,
        };
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        Ok(Self { pool, backend })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for modules that own their own tables.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a transaction that writes. On SQLite it takes the write lock
    /// at once (`BEGIN IMMEDIATE`): a deferred transaction that reads before
    /// it writes fails at once with "database is locked" when another writer
    /// got in between, while an immediate one waits (`busy_timeout`).
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    // ---- plugins -------------------------------------------------------

    /// Records an installed plugin, replacing an earlier version of the same id.
    pub async fn upsert_plugin(&self, p: &PluginRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO plugins (id, version, vendor, kind, wit_version, digest, manifest, component, installed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version, vendor = excluded.vendor,
               kind = excluded.kind, wit_version = excluded.wit_version, digest = excluded.digest,
               manifest = excluded.manifest, component = excluded.component, installed_at = excluded.installed_at",
        )
        .bind(&p.id)
        .bind(&p.version)
        .bind(&p.vendor)
        .bind(&p.kind)
        .bind(&p.wit_version)
        .bind(&p.digest)
        .bind(&p.manifest)
        .bind(&p.component)
        .bind(p.installed_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// All installed plugins, by id.
    pub async fn list_plugins(&self) -> Result<Vec<PluginRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM plugins ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(PluginRecord::from_row).collect()
    }

    /// One plugin.
    pub async fn get_plugin(&self, id: &str) -> Result<PluginRecord, StoreError> {
        let row = sqlx::query("SELECT * FROM plugins WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "plugin",
                id: id.to_owned(),
            })?;
        PluginRecord::from_row(&row)
    }

    /// Removes a plugin that no connection uses and no profile maps with.
    pub async fn remove_plugin(&self, id: &str) -> Result<(), StoreError> {
        let mappers: Vec<String> =
            sqlx::query("SELECT id FROM profiles WHERE mapper_plugin = $1 ORDER BY id")
                .bind(id)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>("id"))
                .collect::<Result<_, _>>()?;
        if !mappers.is_empty() {
            return Err(StoreError::InUse(format!(
                "plugin {id:?} is the mapper of profile(s) {}; remove those first",
                mappers.join(", ")
            )));
        }
        let users: Vec<String> =
            sqlx::query("SELECT id FROM connections WHERE plugin_id = $1 ORDER BY id")
                .bind(id)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>("id"))
                .collect::<Result<_, _>>()?;
        if !users.is_empty() {
            return Err(StoreError::InUse(format!(
                "plugin {id:?} is used by connection(s) {}; remove those first",
                users.join(", ")
            )));
        }
        let done = sqlx::query("DELETE FROM plugins WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "plugin",
                id: id.to_owned(),
            });
        }
        Ok(())
    }

    // ---- connections ---------------------------------------------------

    /// Creates a connection with its sealed credentials, atomically.
    pub async fn insert_connection(
        &self,
        c: &ConnectionRecord,
        credentials: &[CredentialRecord],
    ) -> Result<(), StoreError> {
        self.insert_connection_of(c, None, credentials).await
    }

    /// Creates a connection owned by `company_id` with its sealed credentials, atomically.
    pub async fn insert_connection_of(
        &self,
        c: &ConnectionRecord,
        company_id: Option<&str>,
        credentials: &[CredentialRecord],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT id FROM connections WHERE id = $1")
            .bind(&c.id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(StoreError::AlreadyExists {
                what: "connection",
                id: c.id.clone(),
            });
        }
        let now = now_ms();
        sqlx::query(
            "INSERT INTO connections (id, plugin_id, config, allowed_hosts, allow_private_network, max_concurrent, company_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&c.id)
        .bind(&c.plugin_id)
        .bind(&c.config)
        .bind(serde_json::to_string(&c.allowed_hosts).expect("list serialises"))
        .bind(c.allow_private_network as i64)
        .bind(c.max_concurrent.map(i64::from))
        .bind(company_id)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for cred in credentials {
            insert_credential(&mut tx, &c.id, cred, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Saves a connection's settings, company and credential changes in one
    /// transaction: `removed` slots are deleted, `set` ones replaced.
    pub async fn update_connection(
        &self,
        c: &ConnectionRecord,
        company_id: Option<&str>,
        set: &[CredentialRecord],
        removed: &[String],
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE connections SET config = $1, allowed_hosts = $2, allow_private_network = $3,
                 max_concurrent = $4, company_id = $5, updated_at = $6 WHERE id = $7",
        )
        .bind(&c.config)
        .bind(serde_json::to_string(&c.allowed_hosts).expect("list serialises"))
        .bind(i64::from(c.allow_private_network))
        .bind(c.max_concurrent.map(i64::from))
        .bind(company_id)
        .bind(now)
        .bind(&c.id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "connection",
                id: c.id.clone(),
            });
        }
        for slot in removed.iter().chain(set.iter().map(|cred| &cred.slot)) {
            sqlx::query("DELETE FROM credentials WHERE connection_id = $1 AND slot = $2")
                .bind(&c.id)
                .bind(slot)
                .execute(&mut *tx)
                .await?;
        }
        for cred in set {
            insert_credential(&mut tx, &c.id, cred, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the sealed value and binding of one credential (re-sealing).
    pub async fn reseal_credential(
        &self,
        connection_id: &str,
        cred: &CredentialRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE credentials SET key_id = $1, nonce = $2, ciphertext = $3, binding = $4, updated_at = $5
             WHERE connection_id = $6 AND slot = $7",
        )
        .bind(&cred.sealed.key_id)
        .bind(&cred.sealed.nonce)
        .bind(&cred.sealed.ciphertext)
        .bind(cred.binding.as_deref())
        .bind(now_ms())
        .bind(connection_id)
        .bind(&cred.slot)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// All connections, by id.
    pub async fn list_connections(&self) -> Result<Vec<ConnectionRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM connections ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(ConnectionRecord::from_row).collect()
    }

    /// One connection.
    pub async fn get_connection(&self, id: &str) -> Result<ConnectionRecord, StoreError> {
        let row = sqlx::query("SELECT * FROM connections WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "connection",
                id: id.to_owned(),
            })?;
        ConnectionRecord::from_row(&row)
    }

    /// Deletes a connection, its credentials and state.
    pub async fn remove_connection(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for table in ["credentials", "plugin_state"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE connection_id = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query("DELETE FROM connections WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "connection",
                id: id.to_owned(),
            });
        }
        tx.commit().await?;
        Ok(())
    }

    /// Why a connection is stopped (after a permanent auth error), if it is;
    /// `None` too when there is no such connection.
    pub async fn connection_stopped(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT stopped FROM connections WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => r.try_get("stopped")?,
            None => None,
        })
    }

    /// The first of `ids` that is stopped, with why: one statement for a run's connections.
    pub async fn first_stopped(
        &self,
        ids: &[&str],
    ) -> Result<Option<(String, String)>, StoreError> {
        if ids.is_empty() {
            return Ok(None);
        }
        let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, stopped FROM connections WHERE stopped IS NOT NULL AND id IN ({})",
            marks.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(*id);
        }
        let mut stopped = std::collections::HashMap::new();
        for row in query.fetch_all(&self.pool).await? {
            stopped.insert(
                row.try_get::<String, _>("id")?,
                row.try_get::<String, _>("stopped")?,
            );
        }
        Ok(ids.iter().find_map(|id| stopped.remove_entry(*id)))
    }

    /// Stops a connection after a permanent auth error: runs using it fail
    /// at once until it is restarted.
    pub async fn stop_connection(&self, id: &str, why: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE connections SET stopped = $1 WHERE id = $2")
            .bind(why)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Restarts a stopped connection (after a passing connection test);
    /// whether it was stopped.
    pub async fn restart_connection(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE connections SET stopped = NULL WHERE id = $1 AND stopped IS NOT NULL",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The sealed credentials of a connection, by slot.
    pub async fn credentials(
        &self,
        connection_id: &str,
    ) -> Result<Vec<CredentialRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT slot, kind, key_id, nonce, ciphertext, binding FROM credentials WHERE connection_id = $1 ORDER BY slot",
        )
        .bind(connection_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(CredentialRecord::from_row).collect()
    }

    // ---- plugin state --------------------------------------------------

    /// Everything a connection's plugin has stored.
    pub async fn load_state(
        &self,
        connection_id: &str,
    ) -> Result<BTreeMap<String, String>, StoreError> {
        let rows = sqlx::query("SELECT key, value FROM plugin_state WHERE connection_id = $1")
            .bind(connection_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r: &AnyRow| Ok((r.try_get("key")?, r.try_get("value")?)))
            .collect()
    }

    /// Applies the changes of one invocation atomically: `Some` sets, `None` deletes.
    pub async fn apply_state_changes(
        &self,
        connection_id: &str,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for (key, value) in changes {
            match value {
                Some(value) => {
                    sqlx::query(
                        "INSERT INTO plugin_state (connection_id, key, value) VALUES ($1, $2, $3)
                         ON CONFLICT (connection_id, key) DO UPDATE SET value = excluded.value",
                    )
                    .bind(connection_id)
                    .bind(key)
                    .bind(value)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    sqlx::query("DELETE FROM plugin_state WHERE connection_id = $1 AND key = $2")
                        .bind(connection_id)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn insert_credential(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    connection_id: &str,
    cred: &CredentialRecord,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO credentials (connection_id, slot, kind, key_id, nonce, ciphertext, binding, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(connection_id)
    .bind(&cred.slot)
    .bind(&cred.kind)
    .bind(&cred.sealed.key_id)
    .bind(&cred.sealed.nonce)
    .bind(&cred.sealed.ciphertext)
    .bind(cred.binding.as_deref())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
