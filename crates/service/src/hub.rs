//! The hub ties the store, the secrets and the plugin runtime together:
//! installing plugins, configuring connections and calling connectors for a
//! connection with its grants, credentials and state.

use crate::package::{Package, PackageError};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use syncbridge_model::Finding;
use syncbridge_runtime::capability::binding::CredentialBinding;
use syncbridge_runtime::capability::hosts::AllowList;
use syncbridge_runtime::capability::http::{BoundCredential, ConnectionHttp};
use syncbridge_runtime::config_schema::{self, ConfigSchemaError};
use syncbridge_runtime::manifest::{Manifest, PluginKind};
use syncbridge_runtime::{CallError, ConnectionContext, LoadedPlugin, Runtime, RuntimeError};
use syncbridge_secrets::{Credential, MasterKey, SecretError};
use syncbridge_store::{
    now_ms, ConnectionRecord, CredentialRecord, PluginRecord, Store, StoreError,
};
use tokio::sync::Semaphore;

/// Why a hub operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Call(#[from] CallError),
    /// A connection's configuration does not fit its plugin's schema.
    #[error(transparent)]
    ConfigSchema(#[from] ConfigSchemaError),
    #[error("cannot write the plugin files under {path}: {source}")]
    Files {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    /// A credential would go somewhere it was not entered for.
    #[error("the credential in slot {slot:?} of connection {connection:?} was entered for other hosts or endpoints ({} changed since); enter it again: `syncbridge connection update {connection} --credentials-file FILE` or PUT /api/v1/connections/{connection} with `credentials`", changed.join(", "))]
    CredentialUnbound {
        connection: String,
        slot: String,
        changed: Vec<String>,
    },
    /// A stored binding cannot be read: the row was altered outside syncbridge.
    #[error("the stored binding of credential slot {slot:?} of connection {connection:?} is unreadable; enter the credential again")]
    CorruptBinding { connection: String, slot: String },
    #[error("the server is shutting down; try again once it is back")]
    ShuttingDown,
    /// The mapper's rules read a source field the source connector cannot read.
    #[error("the rules read source fields that connection {connection} cannot read: {error}. Change the rules (e.g. the field filters) to name a readable field")]
    Fields {
        connection: String,
        error: syncbridge_model::PluginError,
    },
}

/// What `connection add` takes.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub id: String,
    pub plugin_id: String,
    pub config: String,
    pub allowed_hosts: Vec<String>,
    pub allow_private_network: bool,
    pub max_concurrent: Option<u32>,
    pub credentials: BTreeMap<String, Credential>,
}

/// The result of testing a connection.
#[derive(Debug)]
pub struct TestReport {
    /// Offline checks of the configuration.
    pub config: Vec<Finding>,
    /// The plugin's own checks, or the error that stopped them.
    pub connection: Result<Vec<Finding>, String>,
}

/// The running hub; share it behind an `Arc`.
pub struct Hub {
    store: Store,
    runtime: Arc<Runtime>,
    key: MasterKey,
    plugin_dir: PathBuf,
    loaded: Mutex<HashMap<String, Arc<LoadedPlugin>>>,
    concurrency: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Hub {
    /// Assembles a hub; `plugin_dir` holds installed components.
    pub fn new(store: Store, runtime: Arc<Runtime>, key: MasterKey, plugin_dir: PathBuf) -> Self {
        Self {
            store,
            runtime,
            key,
            plugin_dir,
            loaded: Mutex::default(),
            concurrency: Mutex::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The runtime.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Installs a package: verifies its digest and WIT version, compiles and
    /// links it, copies the component under the plugin directory, records it.
    pub async fn install_plugin(
        &self,
        path: &Path,
        expected_sha256: Option<&str>,
    ) -> Result<PluginRecord, HubError> {
        let (path, expected) = (path.to_owned(), expected_sha256.map(str::to_owned));
        self.install(move || Package::open(&path, expected.as_deref()))
            .await
    }

    /// Installs a `.tar.gz` package held in memory (an upload), `name`
    /// standing for it in errors, like [`Hub::install_plugin`].
    pub async fn install_plugin_archive(
        &self,
        archive: bytes::Bytes,
        name: &str,
        expected_sha256: Option<&str>,
    ) -> Result<PluginRecord, HubError> {
        let (name, expected) = (name.to_owned(), expected_sha256.map(str::to_owned));
        self.install(move || Package::from_tar_gz(&archive, &name, expected.as_deref()))
            .await
    }

    /// Reads the package with `open`, then compiles it and writes the
    /// component, all on the blocking pool; then records it.
    async fn install(
        &self,
        open: impl FnOnce() -> Result<Package, PackageError> + Send + 'static,
    ) -> Result<PluginRecord, HubError> {
        let runtime = self.runtime.clone();
        let plugin_dir = self.plugin_dir.clone();
        let (package, loaded, component_path) = blocking(move || {
            let package = open()?;
            let loaded = runtime.load(
                package.manifest.clone(),
                &package.digest,
                &package.component,
            )?;
            let dir = plugin_dir.join(&package.manifest.id);
            let files = |source| HubError::Files {
                path: dir.display().to_string(),
                source,
            };
            std::fs::create_dir_all(&dir).map_err(files)?;
            let component_path = dir.join(format!("{}.wasm", package.digest));
            std::fs::write(&component_path, &package.component).map_err(files)?;
            Ok::<_, HubError>((package, loaded, component_path))
        })
        .await??;
        let record = PluginRecord {
            id: package.manifest.id.clone(),
            version: package.manifest.version.to_string(),
            vendor: package.manifest.vendor.clone(),
            kind: package.manifest.kind.as_str().to_owned(),
            wit_version: package.manifest.wit.to_string(),
            digest: package.digest.clone(),
            manifest: serde_json::to_string(&package.manifest).expect("manifest serialises"),
            component: component_path.display().to_string(),
            installed_at: now_ms(),
        };
        self.store.upsert_plugin(&record).await?;
        self.loaded
            .lock()
            .expect("plugin cache lock")
            .insert(record.id.clone(), Arc::new(loaded));
        tracing::info!(plugin = %record.id, version = %record.version, digest = %record.digest, "plugin installed");
        Ok(record)
    }

    /// Removes a plugin no connection uses.
    pub async fn remove_plugin(&self, id: &str) -> Result<(), HubError> {
        let record = self.store.get_plugin(id).await?;
        self.store.remove_plugin(id).await?;
        self.loaded.lock().expect("plugin cache lock").remove(id);
        let _ = std::fs::remove_file(&record.component);
        Ok(())
    }

    /// A loaded plugin, compiling it from its installed component on first use.
    pub async fn plugin(&self, id: &str) -> Result<Arc<LoadedPlugin>, HubError> {
        if let Some(p) = self.loaded.lock().expect("plugin cache lock").get(id) {
            return Ok(p.clone());
        }
        let record = self.store.get_plugin(id).await?;
        let manifest: Manifest = serde_json::from_str(&record.manifest).map_err(|e| {
            HubError::Invalid(format!(
                "stored manifest of {id} is unreadable: {e}; reinstall the plugin"
            ))
        })?;
        let runtime = self.runtime.clone();
        let loaded = blocking(move || {
            let component = std::fs::read(&record.component).map_err(|source| HubError::Files {
                path: record.component.clone(),
                source,
            })?;
            let digest = crate::package::sha256_hex(&component);
            if digest != record.digest {
                return Err(HubError::Package(PackageError::DigestMismatch {
                    expected: record.digest,
                    actual: digest,
                }));
            }
            Ok(runtime.load(manifest, &digest, &component)?)
        })
        .await??;
        let loaded = Arc::new(loaded);
        self.loaded
            .lock()
            .expect("plugin cache lock")
            .insert(id.to_owned(), loaded.clone());
        Ok(loaded)
    }

    /// Creates a connection owned by no company; credentials are sealed
    /// before they reach the store.
    pub async fn add_connection(&self, new: NewConnection) -> Result<ConnectionRecord, HubError> {
        self.add_connection_of(new, None).await
    }

    /// Creates a connection owned by `company` (its id may be in that
    /// company's namespace, `<company>.<name>`); credentials are sealed,
    /// bound to the connection's hosts and endpoints, before they reach the store.
    pub async fn add_connection_of(
        &self,
        new: NewConnection,
        company: Option<&str>,
    ) -> Result<ConnectionRecord, HubError> {
        crate::ids::check_object_id("connection", &new.id, company)
            .map_err(|e| HubError::Invalid(e.to_string()))?;
        check_max_concurrent(new.max_concurrent).map_err(HubError::Invalid)?;
        let plugin = self.plugin(&new.plugin_id).await?;
        if plugin.manifest().kind != PluginKind::Connector {
            return Err(HubError::Invalid(format!(
                "plugin {} is a mapper; connections need a connector plugin",
                new.plugin_id
            )));
        }
        let config: serde_json::Value = serde_json::from_str(&new.config).map_err(|_| {
            HubError::Invalid("the connection configuration is not valid JSON".into())
        })?;
        self.check_config(&plugin, &config).await?;
        let record = ConnectionRecord {
            id: new.id.clone(),
            plugin_id: new.plugin_id,
            config: new.config,
            allowed_hosts: new.allowed_hosts,
            allow_private_network: new.allow_private_network,
            max_concurrent: new.max_concurrent,
        };
        let binding = CredentialBinding::of(&record);
        let credentials: Vec<CredentialRecord> = new
            .credentials
            .iter()
            .map(|(slot, cred)| self.seal_credential(&new.id, slot, cred, &binding))
            .collect();
        self.store
            .insert_connection_of(&record, company, &credentials)
            .await?;
        Ok(record)
    }

    /// Validates a connection configuration against the schema the connector
    /// `plugin` describes.
    pub async fn check_config(
        &self,
        plugin: &LoadedPlugin,
        config: &serde_json::Value,
    ) -> Result<(), HubError> {
        let description = self.runtime.describe(plugin).await?;
        config_schema::check(&plugin.manifest().id, &description.config_schema, config)?;
        Ok(())
    }

    /// Validates a profile's options against the schema the mapper `plugin`
    /// describes; a mapper built against WIT 0.1.0 describes none.
    pub async fn check_options(
        &self,
        plugin: &LoadedPlugin,
        options: &serde_json::Value,
    ) -> Result<(), HubError> {
        if let Some(schema) = self.runtime.options_schema(plugin).await? {
            config_schema::check_options(&plugin.manifest().id, &schema, options)?;
        }
        Ok(())
    }

    /// The scope a profile's source is read with: `scope` extended by the
    /// source fields the mapper's rules read under `options` (field filters
    /// naming directory properties), as the source connector spells it. The
    /// declared scope when the rules read nothing extra.
    pub async fn source_read_scope(
        &self,
        mapper: &str,
        options: &str,
        connection: &str,
        scope: &str,
    ) -> Result<String, HubError> {
        let mapper = self.plugin(mapper).await?;
        let fields = match self.runtime.source_fields(&mapper, options).await? {
            Ok(fields) => fields,
            Err(e) => {
                return Err(HubError::Invalid(format!(
                    "mapper {}: {e}",
                    mapper.manifest().id
                )))
            }
        };
        if fields.is_empty() {
            return Ok(scope.to_owned());
        }
        let record = self.store.get_connection(connection).await?;
        let connector = self.plugin(&record.plugin_id).await?;
        self.runtime
            .select_fields(&connector, &record.config, scope, fields)
            .await?
            .map_err(|error| HubError::Fields {
                connection: connection.to_owned(),
                error,
            })
    }

    /// Builds what a connector needs to run for a connection: grants,
    /// decrypted credentials (host memory only) and stored state.
    pub async fn connection_context(
        &self,
        id: &str,
    ) -> Result<(ConnectionRecord, Arc<LoadedPlugin>, ConnectionContext), HubError> {
        let record = self.store.get_connection(id).await?;
        let plugin = self.plugin(&record.plugin_id).await?;
        let credentials = self.open_credentials(&record).await?;
        let max = record
            .max_concurrent
            .unwrap_or(plugin.manifest().limits.max_concurrent_requests)
            .max(1) as usize;
        let concurrency = self
            .concurrency
            .lock()
            .expect("semaphore lock")
            .entry(id.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(max)))
            .clone();
        let state = Arc::new(self.store.load_state(id).await?);
        let context = ConnectionContext {
            http: ConnectionHttp {
                connection_id: id.to_owned(),
                allow: AllowList::new(
                    &plugin.manifest().allowed_outbound_hosts,
                    &record.allowed_hosts,
                ),
                allow_private_network: record.allow_private_network,
                credentials: Arc::new(credentials),
                concurrency,
                mailbox: None,
            },
            state,
        };
        Ok((record, plugin, context))
    }

    /// Runs the configuration checks and the plugin's connection test.
    pub async fn test_connection(&self, id: &str) -> Result<TestReport, HubError> {
        let (record, plugin, context) = self.connection_context(id).await?;
        let config = self
            .runtime
            .validate_config(&plugin, &record.config)
            .await?;
        let connection = match self
            .runtime
            .test_connection(&plugin, context, &record.config)
            .await
        {
            Ok(called) => {
                self.store
                    .apply_state_changes(id, &called.state_changes)
                    .await?;
                called.value.map_err(|e| e.describe())
            }
            Err(e) => Err(e.to_string()),
        };
        let passed = connection.as_ref().is_ok_and(|findings| {
            findings
                .iter()
                .chain(&config)
                .all(|f| !matches!(f.outcome, syncbridge_model::Outcome::Failed))
        });
        if passed && self.store.restart_connection(id).await? {
            tracing::info!(connection = %id, "connection test passed: the stopped connection runs again");
        }
        Ok(TestReport { config, connection })
    }

    /// The checks of [`Hub::test_connection`] with `config` in place of the
    /// stored configuration (same plugin, hosts and credentials): what a
    /// diagnosis asks beyond the saved test. Nothing is stored, and a
    /// stopped connection stays stopped.
    pub async fn test_connection_as(&self, id: &str, config: &str) -> Result<TestReport, HubError> {
        let (_, plugin, context) = self.connection_context(id).await?;
        let checks = self.runtime.validate_config(&plugin, config).await?;
        let connection = match self.runtime.test_connection(&plugin, context, config).await {
            Ok(called) => called.value.map_err(|e| e.describe()),
            Err(e) => Err(e.to_string()),
        };
        Ok(TestReport {
            config: checks,
            connection,
        })
    }
}

/// Most outbound requests a connection may have in flight at once.
pub const MAX_CONCURRENT_LIMIT: u32 = 64;

/// Checks a connection's request limit: 1 to [`MAX_CONCURRENT_LIMIT`].
pub fn check_max_concurrent(limit: Option<u32>) -> Result<(), String> {
    match limit {
        Some(n) if !(1..=MAX_CONCURRENT_LIMIT).contains(&n) => Err(format!(
            "max_concurrent {n} is out of range: allow 1 to {MAX_CONCURRENT_LIMIT} requests in flight, or leave it out for the plugin's limit"
        )),
        _ => Ok(()),
    }
}

/// Associated data of credentials sealed before bindings existed.
fn legacy_credential_context(connection: &str, slot: &str) -> String {
    format!("credential/{connection}/{slot}")
}

impl Hub {
    /// Opens a connection's credentials, each with the binding it was sealed
    /// with, refusing any whose binding differs from the connection now.
    /// Credentials sealed before bindings existed are bound to the connection
    /// as it is and re-sealed.
    async fn open_credentials(
        &self,
        record: &ConnectionRecord,
    ) -> Result<BTreeMap<String, BoundCredential>, HubError> {
        let current = CredentialBinding::of(record);
        let mut out = BTreeMap::new();
        for stored in self.store.credentials(&record.id).await? {
            let (credential, binding) = match &stored.binding {
                Some(text) => {
                    let binding = CredentialBinding::from_json(text).map_err(|_| {
                        HubError::CorruptBinding {
                            connection: record.id.clone(),
                            slot: stored.slot.clone(),
                        }
                    })?;
                    let changed = binding.differences(&current);
                    if !changed.is_empty() {
                        return Err(HubError::CredentialUnbound {
                            connection: record.id.clone(),
                            slot: stored.slot.clone(),
                            changed,
                        });
                    }
                    let aad = binding.associated_data(&record.id, &stored.slot);
                    (
                        parse_opened(&self.key.open(&stored.sealed, &aad)?)?,
                        binding,
                    )
                }
                None => {
                    let legacy = legacy_credential_context(&record.id, &stored.slot);
                    let credential = parse_opened(&self.key.open(&stored.sealed, &legacy)?)?;
                    let resealed =
                        self.seal_credential(&record.id, &stored.slot, &credential, &current);
                    self.store.reseal_credential(&record.id, &resealed).await?;
                    tracing::info!(connection = %record.id, slot = %stored.slot,
                        hosts = ?current.allowed_hosts,
                        "credential sealed before bindings: bound to the connection's current hosts and endpoints");
                    (credential, current.clone())
                }
            };
            out.insert(
                stored.slot.clone(),
                BoundCredential {
                    credential,
                    binding,
                },
            );
        }
        Ok(out)
    }
}

fn parse_opened(plain: &[u8]) -> Result<Credential, SecretError> {
    let text = std::str::from_utf8(plain).map_err(|_| SecretError::Decrypt)?;
    Credential::from_json(text)
}

/// Sealing and the request limiter, shared by adding and changing connections.
impl Hub {
    /// Seals a credential for one slot of a connection, bound to what it is
    /// entered for (its binding is the associated data and stored beside it).
    pub fn seal_credential(
        &self,
        connection: &str,
        slot: &str,
        credential: &Credential,
        binding: &CredentialBinding,
    ) -> CredentialRecord {
        CredentialRecord {
            slot: slot.to_owned(),
            kind: credential.kind().to_owned(),
            sealed: self.key.seal(
                &credential.to_json(),
                &binding.associated_data(connection, slot),
            ),
            binding: Some(binding.to_json()),
        }
    }

    /// Drops the cached request limiter of a connection, so a changed
    /// `max_concurrent` (or a removed connection) takes effect on the next call.
    pub fn forget_connection(&self, id: &str) {
        self.concurrency.lock().expect("semaphore lock").remove(id);
    }
}

/// Runs blocking work (unpacking, compiling, file I/O) on tokio's blocking
/// pool, off the async worker threads; a panic in it is resumed here.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HubError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => Ok(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(HubError::ShuttingDown),
    }
}
