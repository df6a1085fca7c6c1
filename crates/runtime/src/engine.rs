//! The shared wasmtime engine, linkers, epoch ticker and compile cache.

use super::bindings::{connector::Connector, mapper::Mapper};
use super::host::HostState;
use super::invoke::{FieldsPre, LoadedPlugin, MailboxPre, PluginPre};
use crate::capability::http::{HttpClients, HttpError, HttpSettings};
use crate::manifest::{Manifest, PluginKind};
use crate::metrics::Metrics;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; deadlines are counted in these ticks.
pub(super) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Largest memory any plugin may ask for.
pub const MAX_PLUGIN_MEMORY: usize = 512 << 20;

/// Options of the runtime.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Where compiled components are cached (by digest); `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Try the pooling allocator (falls back to on-demand if the address space is too small).
    pub pooling: bool,
    /// Plugin instances alive at once when pooling.
    pub max_instances: u32,
    /// HTTP settings for the `http` capability.
    pub http: HttpSettings,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            cache_dir: None,
            pooling: true,
            max_instances: 256,
            http: HttpSettings::default(),
        }
    }
}

/// Why the runtime could not start or load a plugin.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot start the wasm engine: {0}")]
    Engine(String),
    #[error("{0}")]
    Http(#[from] HttpError),
    #[error("plugin {id} is not a valid component: {reason}")]
    Compile { id: String, reason: String },
    #[error("plugin {id} does not fit the `{world}` world of syncbridge:plugin: {reason}; rebuild it with the syncbridge SDK for this WIT version")]
    World {
        id: String,
        world: &'static str,
        reason: String,
    },
    #[error("cannot use the compile cache at {path}: {source}")]
    Cache {
        path: String,
        source: std::io::Error,
    },
}

/// Advances the engine epoch from a dedicated thread (not a tokio task: a
/// spinning plugin occupies a runtime worker, the ticker must not depend on it).
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("syncbridge-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The plugin runtime. Create one per process and share it (`Arc`).
pub struct Runtime {
    pub(super) engine: Engine,
    pub(super) connector_linker: Linker<HostState>,
    pub(super) mapper_linker: Linker<HostState>,
    pub(super) clients: HttpClients,
    pub(super) metrics: Arc<Metrics>,
    cache_dir: Option<PathBuf>,
    pooling: bool,
    /// Per-mailbox request limits, by connection and mailbox address; an
    /// entry lives while a call on that mailbox holds it.
    pub(super) mailbox_limits: std::sync::Mutex<HashMap<String, Weak<Semaphore>>>,
    _ticker: EpochTicker,
}

fn base_config() -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .max_wasm_stack(1 << 20);
    config
}

impl Runtime {
    /// Starts the engine: pooling allocator when the address space allows it.
    pub fn new(options: EngineOptions) -> Result<Self, RuntimeError> {
        let (engine, pooling) = if options.pooling {
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(options.max_instances)
                .total_core_instances(options.max_instances * 8)
                .total_memories(options.max_instances * 2)
                .total_tables(options.max_instances * 8)
                .total_stacks(options.max_instances)
                .max_core_instances_per_component(16)
                .max_memories_per_component(4)
                .max_tables_per_component(16)
                .max_memory_size(MAX_PLUGIN_MEMORY)
                // Reset the first MiB of a slot with memset instead of
                // madvise: per-call instantiation stays free of syscalls.
                .linear_memory_keep_resident(1 << 20)
                .table_keep_resident(16 << 10);
            let mut config = base_config();
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
            // Plugin memories are small (64 KiB stack, data, a little heap):
            // with their slots kept resident, copying the data segments in
            // and memset-ing them out is cheaper than copy-on-write mappings,
            // whose page faults and madvise calls dominated instantiation.
            config.memory_init_cow(false);
            match Engine::new(&config) {
                Ok(engine) => (engine, true),
                Err(e) => {
                    tracing::warn!(error = %e, "pooling allocator unavailable (address space too small?); using on-demand allocation");
                    let engine = Engine::new(&base_config())
                        .map_err(|e| RuntimeError::Engine(e.to_string()))?;
                    (engine, false)
                }
            }
        } else {
            let engine =
                Engine::new(&base_config()).map_err(|e| RuntimeError::Engine(e.to_string()))?;
            (engine, false)
        };

        let mut connector_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut connector_linker)
            .map_err(|e| RuntimeError::Engine(e.to_string()))?;
        Connector::add_to_linker::<HostState, HasSelf<HostState>>(&mut connector_linker, |s| s)
            .map_err(|e| RuntimeError::Engine(e.to_string()))?;

        let mut mapper_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut mapper_linker)
            .map_err(|e| RuntimeError::Engine(e.to_string()))?;
        Mapper::add_to_linker::<HostState, HasSelf<HostState>>(&mut mapper_linker, |s| s)
            .map_err(|e| RuntimeError::Engine(e.to_string()))?;

        let metrics = Arc::new(Metrics::new());
        let clients = HttpClients::new(options.http, metrics.clone())?;
        let ticker = EpochTicker::start(engine.clone());
        Ok(Self {
            engine,
            connector_linker,
            mapper_linker,
            clients,
            metrics,
            cache_dir: options.cache_dir,
            pooling,
            mailbox_limits: std::sync::Mutex::default(),
            _ticker: ticker,
        })
    }

    /// The metrics of this runtime's process: its plugin calls and outbound
    /// requests, and what the runner and scheduler using it record.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Whether the pooling allocator is in use.
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    /// Compiles (or loads from the cache) and links a component, checking that
    /// it implements the world its manifest names.
    pub fn load(
        &self,
        manifest: Manifest,
        digest: &str,
        wasm: &[u8],
    ) -> Result<LoadedPlugin, RuntimeError> {
        let component = self.compile_cached(&manifest.id, digest, wasm)?;
        let world_error = |world: &'static str, e: wasmtime::Error| RuntimeError::World {
            id: manifest.id.clone(),
            world,
            reason: format!("{e:#}"),
        };
        let since_fields = manifest.wit >= semver::Version::new(0, 1, 2);
        let (pre, fields, mailbox, owner) = match manifest.kind {
            PluginKind::Connector => {
                let instance_pre = self
                    .connector_linker
                    .instantiate_pre(&component)
                    .map_err(|e| world_error("connector", e))?;
                // Since 0.1.2 a connector exports `field-selection` too.
                let fields = since_fields
                    .then(|| {
                        super::bindings::connector_fields::ConnectorFieldsPre::new(
                            instance_pre.clone(),
                        )
                    })
                    .transpose()
                    .map_err(|e| world_error("connector", e))?
                    .map(FieldsPre::Connector);
                // Since 0.1.3 a connector exports `mailbox-api` too.
                let mailbox = (manifest.wit >= semver::Version::new(0, 1, 3))
                    .then(|| {
                        super::bindings::connector_mailbox::ConnectorMailboxPre::new(
                            instance_pre.clone(),
                        )
                    })
                    .transpose()
                    .map_err(|e| world_error("connector", e))?
                    .map(MailboxPre::Connector);
                // Since 0.1.5 a connector exports `mailbox-owner-api` too.
                let owner = (manifest.wit >= semver::Version::new(0, 1, 5))
                    .then(|| {
                        super::bindings::connector_owner::ConnectorOwnerPre::new(
                            instance_pre.clone(),
                        )
                    })
                    .transpose()
                    .map_err(|e| world_error("connector", e))?;
                let pre = PluginPre::Connector(
                    super::bindings::connector::ConnectorPre::new(instance_pre)
                        .map_err(|e| world_error("connector", e))?,
                );
                (pre, fields, mailbox, owner)
            }
            PluginKind::Mapper => {
                let instance_pre = self
                    .mapper_linker
                    .instantiate_pre(&component)
                    .map_err(|e| world_error("mapper", e))?;
                // Since 0.1.2 a mapper exports `source-fields` too.
                let fields = since_fields
                    .then(|| {
                        super::bindings::mapper_fields::MapperFieldsPre::new(instance_pre.clone())
                    })
                    .transpose()
                    .map_err(|e| world_error("mapper", e))?
                    .map(FieldsPre::Mapper);
                // Since 0.1.4 a mapper exports `mailbox-mapper-api` too.
                let mailbox = (manifest.wit >= semver::Version::new(0, 1, 4))
                    .then(|| {
                        super::bindings::mapper_mailbox::MapperMailboxPre::new(instance_pre.clone())
                    })
                    .transpose()
                    .map_err(|e| world_error("mapper", e))?
                    .map(MailboxPre::Mapper);
                // 0.1.0 mappers have no `decide`; they load through the frozen bindings.
                let pre = if manifest.wit < semver::Version::new(0, 1, 1) {
                    PluginPre::MapperV0_1_0(
                        super::bindings::v0_1_0::MapperPre::new(instance_pre)
                            .map_err(|e| world_error("mapper", e))?,
                    )
                } else {
                    PluginPre::Mapper(
                        super::bindings::mapper::MapperPre::new(instance_pre)
                            .map_err(|e| world_error("mapper", e))?,
                    )
                };
                (pre, fields, mailbox, None)
            }
        };
        Ok(LoadedPlugin::new(
            manifest,
            digest.to_owned(),
            pre,
            fields,
            mailbox,
            owner,
        ))
    }

    fn compile_cached(
        &self,
        id: &str,
        digest: &str,
        wasm: &[u8],
    ) -> Result<Component, RuntimeError> {
        let compile_error = |e: wasmtime::Error| RuntimeError::Compile {
            id: id.to_owned(),
            reason: format!("{e:#}"),
        };
        let Some(dir) = &self.cache_dir else {
            return Component::new(&self.engine, wasm).map_err(compile_error);
        };
        let cache_error = |path: &Path, source| RuntimeError::Cache {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| cache_error(dir, e))?;
        let path = dir.join(format!("{digest}.cwasm"));
        if path.exists() {
            // SAFETY: the cache directory is private to syncbridge and its files
            // are written only by `precompile_component` below; wasmtime checks
            // that the artifact matches this engine's version and settings.
            match unsafe { Component::deserialize_file(&self.engine, &path) } {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::info!(plugin = id, error = %e, "compiled artifact is stale; recompiling");
                }
            }
        }
        let bytes = self
            .engine
            .precompile_component(wasm)
            .map_err(compile_error)?;
        // A temporary name of this writer's own: processes and threads sharing the cache
        // may compile the same component at once; each renames a whole file into place.
        let tmp = dir.join(format!(
            "{digest}.cwasm.{}.{:?}.tmp",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&tmp, &bytes).map_err(|e| cache_error(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| cache_error(&path, e))?;
        // SAFETY: as above; the bytes were produced by this engine just now.
        unsafe { Component::deserialize(&self.engine, &bytes) }.map_err(compile_error)
    }
}
