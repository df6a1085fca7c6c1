//! Calling plugin exports: a fresh store per invocation, limits, classification.

use super::bindings::connector::{Connector, ConnectorPre};
use super::bindings::connector_fields::{ConnectorFields, ConnectorFieldsPre};
use super::bindings::connector_mailbox::{ConnectorMailbox, ConnectorMailboxPre};
use super::bindings::connector_owner::{ConnectorOwner, ConnectorOwnerPre};
use super::bindings::mapper::{Mapper, MapperPre};
use super::bindings::mapper_fields::{MapperFields, MapperFieldsPre};
use super::bindings::mapper_mailbox::{MapperMailbox, MapperMailboxPre};
use super::bindings::{connector_api, mailbox_mapper_api, types, v0_1_0, Lift, Lower, OtherApi};
use super::engine::Runtime;
use super::host::{ConnectionContext, HostState, StateChanges};
use super::limits::MemoryLimiter;
use super::trap::TrapKind;
use crate::manifest::{Manifest, PluginKind};
use crate::memo::Memo;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use syncbridge_model::{
    Description, Explanation, FieldError, Finding, Intent, InvalidInput, Item, Page, PluginError,
    PullRequest, WriteOp, WriteResult,
};
use tokio::sync::Semaphore;
use wasmtime::component::ResourceTable;
use wasmtime::Store;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::WasiCtxBuilder;

/// Bytes of plugin stdout/stderr kept per invocation.
const OUTPUT_CAPTURE: usize = 64 * 1024;

/// Grace added to the outer timeout over the epoch deadline.
const OUTER_GRACE: Duration = Duration::from_millis(250);

pub(super) enum PluginPre {
    Connector(ConnectorPre<HostState>),
    Mapper(MapperPre<HostState>),
    MapperV0_1_0(v0_1_0::MapperPre<HostState>),
}

/// The exports added in WIT 0.1.2, bound on their own.
pub(super) enum FieldsPre {
    Connector(ConnectorFieldsPre<HostState>),
    Mapper(MapperFieldsPre<HostState>),
}

/// The exports that carry mailbox items, bound on their own: `mailbox-api`
/// of connectors (WIT 0.1.3), `mailbox-mapper-api` of mappers (0.1.4).
pub(super) enum MailboxPre {
    Connector(ConnectorMailboxPre<HostState>),
    Mapper(MapperMailboxPre<HostState>),
}

/// A plugin compiled and linked, ready to be instantiated per call.
pub struct LoadedPlugin {
    manifest: Manifest,
    digest: String,
    label: Arc<str>,
    pre: PluginPre,
    /// `None` for plugins built against a WIT older than 0.1.2.
    fields: Option<FieldsPre>,
    /// `mailbox-api` of connectors built against WIT 0.1.3 or later,
    /// `mailbox-mapper-api` of mappers built against 0.1.4 or later.
    mailbox: Option<MailboxPre>,
    /// The scope kinds `mailbox-api` serves, asked once.
    mailbox_scopes: tokio::sync::OnceCell<Vec<String>>,
    /// `mailbox-owner-api` of connectors built against WIT 0.1.5 or later.
    owner: Option<ConnectorOwnerPre<HostState>>,
    /// `source-fields` answers, by options.
    source_fields: Memo<Vec<String>>,
    /// `select-fields` answers, by configuration, scope and fields.
    selected_scopes: Memo<String>,
}

impl LoadedPlugin {
    pub(super) fn new(
        manifest: Manifest,
        digest: String,
        pre: PluginPre,
        fields: Option<FieldsPre>,
        mailbox: Option<MailboxPre>,
        owner: Option<ConnectorOwnerPre<HostState>>,
    ) -> Self {
        let label = format!("{}@{}", manifest.id, manifest.version).into();
        Self {
            manifest,
            digest,
            label,
            pre,
            fields,
            mailbox,
            mailbox_scopes: tokio::sync::OnceCell::new(),
            owner,
            source_fields: Memo::default(),
            selected_scopes: Memo::default(),
        }
    }

    /// Whether it keeps the mark of a mailbox's organization (`mailbox-owner-api`, WIT 0.1.5).
    pub fn marks_sync_owner(&self) -> bool {
        self.owner.is_some()
    }

    /// Its manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// sha256 of its component.
    pub fn digest(&self) -> &str {
        &self.digest
    }
}

/// Why a call produced no answer from the plugin.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin was stopped: it trapped, ran too long or ran out of memory.
    #[error("plugin {plugin} {version}, export `{export}`: stopped ({kind}): {detail}. {}", kind.remedy())]
    Trap {
        plugin: String,
        version: String,
        export: &'static str,
        kind: TrapKind,
        detail: String,
    },
    /// The plugin implements the other world.
    #[error("plugin {plugin} is a {actual}, so it has no `{export}`")]
    WrongKind {
        plugin: String,
        actual: &'static str,
        export: &'static str,
    },
}

impl CallError {
    /// The trap kind, if the plugin was stopped.
    pub fn trap_kind(&self) -> Option<TrapKind> {
        match self {
            CallError::Trap { kind, .. } => Some(*kind),
            CallError::WrongKind { .. } => None,
        }
    }
}

/// A plugin's answer and the state changes it made (connectors only).
#[derive(Debug)]
pub struct Called<T> {
    pub value: T,
    pub state_changes: StateChanges,
}

type BoxFut<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

impl Runtime {
    fn new_store(
        &self,
        plugin: &LoadedPlugin,
        connection: Option<ConnectionContext>,
        deadline: Instant,
    ) -> Store<HostState> {
        let stdout = MemoryOutputPipe::new(OUTPUT_CAPTURE);
        let stderr = MemoryOutputPipe::new(OUTPUT_CAPTURE);
        // No filesystem, environment, arguments or sockets: only captured stdio.
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        let memory = (plugin.manifest.limits.memory_mib as usize) << 20;
        let data = HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory.min(super::engine::MAX_PLUGIN_MEMORY)),
            stdout,
            stderr,
            label: plugin.label.clone(),
            deadline,
            clients: self.clients.clone(),
            connection,
            state_changes: StateChanges::new(),
        };
        let mut store = Store::new(&self.engine, data);
        store.limiter(|s| &mut s.limiter);
        // Every epoch tick the plugin yields to the async executor, so a
        // spinning plugin never starves other tasks; past its deadline it traps.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Err(wasmtime::Trap::Interrupt.into())
            } else {
                Ok(wasmtime::UpdateDeadline::Yield(1))
            }
        });
        store
    }

    /// Calls an export of the plugin's core world.
    async fn invoke<R: Send>(
        &self,
        plugin: &LoadedPlugin,
        connection: Option<ConnectionContext>,
        export: &'static str,
        call: impl for<'a> FnOnce(Instance<'a>, &'a mut Store<HostState>) -> BoxFut<'a, R>,
    ) -> Result<Called<R>, CallError> {
        self.invoke_at(plugin, connection, export, Entry::Core, call)
            .await
    }

    async fn invoke_at<R: Send>(
        &self,
        plugin: &LoadedPlugin,
        connection: Option<ConnectionContext>,
        export: &'static str,
        entry: Entry,
        call: impl for<'a> FnOnce(Instance<'a>, &'a mut Store<HostState>) -> BoxFut<'a, R>,
    ) -> Result<Called<R>, CallError> {
        let started = Instant::now();
        let timeout = Duration::from_millis(plugin.manifest.limits.call_timeout_ms.max(1));
        let deadline = started + timeout;
        let mut store = self.new_store(plugin, connection, deadline);
        let pre = &plugin.pre;
        let outcome = tokio::time::timeout(timeout + OUTER_GRACE, async {
            if let Entry::Owner = entry {
                let Some(pre) = &plugin.owner else {
                    return Err(wasmtime::Error::msg(
                        "host bug: a 0.1.5 export called on an older plugin",
                    ));
                };
                let instance = pre.instantiate_async(&mut store).await?;
                return call(Instance::ConnectorOwner(&instance), &mut store).await;
            }
            if let Entry::Mailbox = entry {
                return match &plugin.mailbox {
                    Some(MailboxPre::Connector(pre)) => {
                        let instance = pre.instantiate_async(&mut store).await?;
                        call(Instance::ConnectorMailbox(&instance), &mut store).await
                    }
                    Some(MailboxPre::Mapper(pre)) => {
                        let instance = pre.instantiate_async(&mut store).await?;
                        call(Instance::MapperMailbox(&instance), &mut store).await
                    }
                    None => Err(wasmtime::Error::msg(
                        "host bug: a mailbox export called on a plugin without it",
                    )),
                };
            }
            if let Entry::Fields = entry {
                return match &plugin.fields {
                    Some(FieldsPre::Connector(pre)) => {
                        let instance = pre.instantiate_async(&mut store).await?;
                        call(Instance::ConnectorFields(&instance), &mut store).await
                    }
                    Some(FieldsPre::Mapper(pre)) => {
                        let instance = pre.instantiate_async(&mut store).await?;
                        call(Instance::MapperFields(&instance), &mut store).await
                    }
                    None => Err(wasmtime::Error::msg(
                        "host bug: a 0.1.2 export called on an older plugin",
                    )),
                };
            }
            match pre {
                PluginPre::Connector(pre) => {
                    let instance = pre.instantiate_async(&mut store).await?;
                    call(Instance::Connector(&instance), &mut store).await
                }
                PluginPre::Mapper(pre) => {
                    let instance = pre.instantiate_async(&mut store).await?;
                    call(Instance::Mapper(&instance), &mut store).await
                }
                PluginPre::MapperV0_1_0(pre) => {
                    let instance = pre.instantiate_async(&mut store).await?;
                    call(Instance::MapperV0_1_0(&instance), &mut store).await
                }
            }
        })
        .await;
        forward_output(plugin, &store);
        let id = &plugin.manifest.id;
        self.metrics.plugin_call(id, export, started.elapsed());
        let trap = |kind: TrapKind, detail: String| {
            self.metrics.plugin_trap(id, export, kind.as_str());
            CallError::Trap {
                plugin: id.clone(),
                version: plugin.manifest.version.to_string(),
                export,
                kind,
                detail,
            }
        };
        match outcome {
            Err(_elapsed) => Err(trap(
                TrapKind::Timeout,
                format!(
                    "no answer within {} ms (waiting on a host call)",
                    timeout.as_millis()
                ),
            )),
            Ok(Err(error)) => {
                let stderr = String::from_utf8_lossy(&store.data().stderr.contents()).into_owned();
                let kind = TrapKind::classify(&error, store.data().limiter.denied, &stderr);
                let detail = match kind {
                    TrapKind::Timeout => format!("ran longer than {} ms", timeout.as_millis()),
                    TrapKind::OutOfMemory => format!(
                        "tried to use more than {} MiB of memory",
                        plugin.manifest.limits.memory_mib
                    ),
                    TrapKind::Panic => last_line(&stderr).unwrap_or_else(|| format!("{error:#}")),
                    TrapKind::Other => format!("{error:#}"),
                };
                tracing::warn!(plugin = &*plugin.label, export, kind = %kind, %detail, "plugin call stopped");
                Err(trap(kind, detail))
            }
            Ok(Ok(value)) => Ok(Called {
                value,
                state_changes: std::mem::take(&mut store.data_mut().state_changes),
            }),
        }
    }

    fn expect_kind(
        plugin: &LoadedPlugin,
        kind: PluginKind,
        export: &'static str,
    ) -> Result<(), CallError> {
        if plugin.manifest.kind == kind {
            Ok(())
        } else {
            Err(CallError::WrongKind {
                plugin: plugin.manifest.id.clone(),
                actual: plugin.manifest.kind.as_str(),
                export,
            })
        }
    }

    /// `describe` of a connector.
    pub async fn describe(&self, plugin: &LoadedPlugin) -> Result<Description, CallError> {
        Self::expect_kind(plugin, PluginKind::Connector, "describe")?;
        self.invoke(plugin, None, "describe", |i, s| {
            Box::pin(async move {
                let api = i.connector()?.syncbridge_plugin_connector_api();
                Ok(api.call_describe(s).await?.lift())
            })
        })
        .await
        .map(|c| c.value)
    }

    /// `validate-config` of a connector.
    pub async fn validate_config(
        &self,
        plugin: &LoadedPlugin,
        config: &str,
    ) -> Result<Vec<Finding>, CallError> {
        Self::expect_kind(plugin, PluginKind::Connector, "validate-config")?;
        let config = config.to_owned();
        self.invoke(plugin, None, "validate-config", move |i, s| {
            Box::pin(async move {
                let api = i.connector()?.syncbridge_plugin_connector_api();
                Ok(api.call_validate_config(s, &config).await?.lift())
            })
        })
        .await
        .map(|c| c.value)
    }

    /// `test-connection` of a connector.
    pub async fn test_connection(
        &self,
        plugin: &LoadedPlugin,
        connection: ConnectionContext,
        config: &str,
    ) -> Result<Called<Result<Vec<Finding>, PluginError>>, CallError> {
        Self::expect_kind(plugin, PluginKind::Connector, "test-connection")?;
        let config = config.to_owned();
        self.invoke(plugin, Some(connection), "test-connection", move |i, s| {
            Box::pin(async move {
                let api = i.connector()?.syncbridge_plugin_connector_api();
                Ok(api.call_test_connection(s, &config).await?.lift())
            })
        })
        .await
    }

    /// `pull` of a connector.
    pub async fn pull(
        &self,
        plugin: &LoadedPlugin,
        connection: ConnectionContext,
        config: &str,
        request: PullRequest,
    ) -> Result<Called<Result<Page, PluginError>>, CallError> {
        Self::expect_kind(plugin, PluginKind::Connector, "pull")?;
        if self.serves_mailbox(plugin, &request.scope).await? {
            return self.pull_mailbox(plugin, connection, config, request).await;
        }
        let config = config.to_owned();
        let request: connector_api::PullRequest = request.lift();
        self.invoke(plugin, Some(connection), "pull", move |i, s| {
            Box::pin(async move {
                let api = i.connector()?.syncbridge_plugin_connector_api();
                Ok(api.call_pull(s, &config, &request).await?.lift())
            })
        })
        .await
    }

    /// `lookup-items` of a connector.
    pub async fn lookup_items(
        &self,
        plugin: &LoadedPlugin,
        connection: ConnectionContext,
        config: &str,
        scope: &str,
        keys: Vec<String>,
    ) -> Result<Called<Result<Vec<Item>, PluginError>>, CallError> {
        Self::expect_kind(plugin, PluginKind::Connector, "lookup-items")?;
        if self.serves_mailbox(plugin, scope).await? {
            return self
                .lookup_mailbox(plugin, connection, config, scope, keys)
                .await;
        }
        let (config, scope) = (config.to_owned(), scope.to_owned());
        self.invoke(plugin, Some(connection), "lookup-items", move |i, s| {
            Box::pin(async move {
                let api = i.connector()?.syncbridge_plugin_connector_api();
                Ok(api
                    .call_lookup_items(s, &config, &scope, &keys)
                    .await?
                    .lift())
            })
        })
        .await
    }

    /// `push` of a connector.
    pub async fn push(
        &self,
        plugin: &LoadedPlugin,
        connection: ConnectionContext,
        config: &str,
        scope: &str,
        batch: Vec<WriteOp>,
    ) -> Result<Called<Result<Vec<WriteResult>, PluginError>>, CallError> {
        Self::expect_kind(plugin, PluginKind::Connector, "push")?;
        if self.serves_mailbox(plugin, scope).await? {
            return self
                .push_mailbox(plugin, connection, config, scope, batch)
                .await;
        }
        let batch: Vec<connector_api::WriteOp> = match batch.lower() {
            Ok(batch) => batch,
            Err(other) => return Ok(Called::nothing(other_api(plugin, scope, other))),
        };
        let (config, scope) = (config.to_owned(), scope.to_owned());
        self.invoke(plugin, Some(connection), "push", move |i, s| {
            Box::pin(async move {
                let api = i.connector()?.syncbridge_plugin_connector_api();
                Ok(api.call_push(s, &config, &scope, &batch).await?.lift())
            })
        })
        .await
    }

    /// The decisions of a mapper: `mailbox-mapper-api.decide` (items of
    /// either model) since WIT 0.1.4, `mapper-api.decide` since 0.1.1,
    /// `map-items` (with the policy read from route attributes) for 0.1.0
    /// mappers. Mappers older than 0.1.4 are refused mailbox items by name.
    pub async fn decide(
        &self,
        plugin: &LoadedPlugin,
        items: Vec<Item>,
        options: &str,
    ) -> Result<Result<Vec<Intent>, PluginError>, CallError> {
        Self::expect_kind(plugin, PluginKind::Mapper, "decide")?;
        let options = options.to_owned();
        if let Some(MailboxPre::Mapper(_)) = plugin.mailbox {
            let items: Vec<mailbox_mapper_api::AnyItem> = items.lift();
            return self
                .invoke_at(plugin, None, "decide", Entry::Mailbox, move |i, s| {
                    Box::pin(async move {
                        let api = i.mapper_mailbox()?.syncbridge_plugin_mailbox_mapper_api();
                        Ok(api.call_decide(s, &items, &options).await?.lift())
                    })
                })
                .await
                .map(|c| c.value);
        }
        let items: Vec<types::Item> = match items.lower() {
            Ok(items) => items,
            Err(other) => return Ok(Err(mapper_other_api(plugin, other))),
        };
        let export = match plugin.pre {
            PluginPre::MapperV0_1_0(_) => "map-items",
            _ => "decide",
        };
        self.invoke(plugin, None, export, move |i, s| {
            Box::pin(async move {
                Ok(match i {
                    Instance::Mapper(m) => m
                        .syncbridge_plugin_mapper_api()
                        .call_decide(s, &items, &options)
                        .await?
                        .lift(),
                    Instance::MapperV0_1_0(m) => m
                        .syncbridge_plugin_mapper_api()
                        .call_map_items(s, &items, &options)
                        .await?
                        .lift(),
                    _ => return Err(not_this_world()),
                })
            })
        })
        .await
        .map(|c| c.value)
    }

    /// The JSON Schema of a mapper's options: `options-schema` since WIT 0.1.1;
    /// `None` for 0.1.0 mappers, which cannot say.
    pub async fn options_schema(&self, plugin: &LoadedPlugin) -> Result<Option<String>, CallError> {
        Self::expect_kind(plugin, PluginKind::Mapper, "options-schema")?;
        if let PluginPre::MapperV0_1_0(_) = plugin.pre {
            return Ok(None);
        }
        self.invoke(plugin, None, "options-schema", |i, s| {
            Box::pin(async move {
                match i {
                    Instance::Mapper(m) => Ok(Some(
                        m.syncbridge_plugin_mapper_api()
                            .call_options_schema(s)
                            .await?,
                    )),
                    _ => Err(not_this_world()),
                }
            })
        })
        .await
        .map(|c| c.value)
    }

    /// `select-fields` of a connector (WIT 0.1.2): the scope whose items also
    /// carry `fields` as attributes. A connector built against an older WIT
    /// reads no extra fields: it answers `scope` for none and refuses any.
    pub async fn select_fields(
        &self,
        plugin: &LoadedPlugin,
        config: &str,
        scope: &str,
        fields: Vec<String>,
    ) -> Result<Result<String, PluginError>, CallError> {
        Self::expect_kind(plugin, PluginKind::Connector, "select-fields")?;
        if plugin.fields.is_none() {
            return Ok(match fields.first() {
                None => Ok(scope.to_owned()),
                Some(field) => {
                    let message = format!(
                        "connector {} is built against WIT {}, which reads no fields beyond its canonical ones; install a version built against 0.1.2 or later",
                        plugin.manifest.id, plugin.manifest.wit
                    );
                    Err(PluginError::Invalid(InvalidInput {
                        message: format!("{field}: {message}"),
                        fields: vec![FieldError {
                            field: field.clone(),
                            message,
                        }],
                    }))
                }
            });
        }
        // The answer depends on the arguments only: asked once per loaded plugin.
        let key = Memo::<String>::key(&[config, scope, &fields.join("\u{0}")]);
        if let Some(selected) = plugin.selected_scopes.get(&key) {
            return Ok(Ok(selected));
        }
        let (config, scope) = (config.to_owned(), scope.to_owned());
        let answer = self
            .invoke_at(plugin, None, "select-fields", Entry::Fields, move |i, s| {
                Box::pin(async move {
                    match i {
                        Instance::ConnectorFields(c) => Ok(c
                            .syncbridge_plugin_field_selection()
                            .call_select_fields(s, &config, &scope, &fields)
                            .await?
                            .lift()),
                        _ => Err(not_this_world()),
                    }
                })
            })
            .await?
            .value;
        if let Ok(selected) = &answer {
            plugin.selected_scopes.put(key, selected.clone());
        }
        Ok(answer)
    }

    /// `source-fields` of a mapper (WIT 0.1.2): the source attributes its rules
    /// read under `options`; none for mappers built against an older WIT.
    pub async fn source_fields(
        &self,
        plugin: &LoadedPlugin,
        options: &str,
    ) -> Result<Result<Vec<String>, PluginError>, CallError> {
        Self::expect_kind(plugin, PluginKind::Mapper, "source-fields")?;
        if plugin.fields.is_none() {
            return Ok(Ok(Vec::new()));
        }
        // The answer depends on the options only: asked once per loaded plugin.
        if let Some(fields) = plugin.source_fields.get(options) {
            return Ok(Ok(fields));
        }
        let key = options.to_owned();
        let options = options.to_owned();
        let answer = self
            .invoke_at(plugin, None, "source-fields", Entry::Fields, move |i, s| {
                Box::pin(async move {
                    match i {
                        Instance::MapperFields(m) => Ok(m
                            .syncbridge_plugin_source_fields()
                            .call_source_fields(s, &options)
                            .await?
                            .lift()),
                        _ => Err(not_this_world()),
                    }
                })
            })
            .await?
            .value;
        if let Ok(fields) = &answer {
            plugin.source_fields.put(key, fields.clone());
        }
        Ok(answer)
    }

    /// Whether `scope` is one the connector's `mailbox-api` (WIT 0.1.3)
    /// serves: its kind (the text before `:`) is one of `mailbox-scopes`,
    /// asked once per loaded plugin.
    pub async fn serves_mailbox(
        &self,
        plugin: &LoadedPlugin,
        scope: &str,
    ) -> Result<bool, CallError> {
        if !matches!(plugin.mailbox, Some(MailboxPre::Connector(_))) {
            return Ok(false);
        }
        let kinds = plugin
            .mailbox_scopes
            .get_or_try_init(|| async {
                self.invoke_at(plugin, None, "mailbox-scopes", Entry::Mailbox, |i, s| {
                    Box::pin(async move {
                        let api = i.connector_mailbox()?.syncbridge_plugin_mailbox_api();
                        api.call_mailbox_scopes(s).await
                    })
                })
                .await
                .map(|c| c.value)
            })
            .await?;
        let kind = scope.split_once(':').map_or(scope, |(kind, _)| kind).trim();
        Ok(kinds.iter().any(|k| k.eq_ignore_ascii_case(kind)))
    }

    /// The request limit of the mailbox `scope` names (its `mailbox=`
    /// option), shared by every call on that mailbox of the connection.
    fn limit_mailbox(
        &self,
        plugin: &LoadedPlugin,
        mut connection: ConnectionContext,
        scope: &str,
    ) -> ConnectionContext {
        let Some(mailbox) = mailbox_of(scope) else {
            return connection;
        };
        let key = format!("{}\u{0}{mailbox}", connection.http.connection_id);
        let mut limits = self.mailbox_limits.lock().expect("mailbox limits lock");
        let limit = match limits.get(&key).and_then(Weak::upgrade) {
            Some(limit) => limit,
            None => {
                limits.retain(|_, l| l.strong_count() > 0);
                let max = plugin.manifest.limits.max_concurrent_per_mailbox.max(1) as usize;
                let limit = Arc::new(Semaphore::new(max));
                limits.insert(key, Arc::downgrade(&limit));
                limit
            }
        };
        connection.http.mailbox = Some(limit);
        connection
    }

    /// `mailbox-owner-api.read-sync-owner` (WIT 0.1.5): the organization
    /// marked in `mailbox`, none when unmarked. A connector built against an
    /// older WIT answers `unsupported`, naming what to install.
    pub async fn read_sync_owner(
        &self,
        plugin: &LoadedPlugin,
        connection: ConnectionContext,
        config: &str,
        mailbox: &str,
    ) -> Result<Called<Result<Option<String>, PluginError>>, CallError> {
        Self::expect_kind(plugin, PluginKind::Connector, "read-sync-owner")?;
        if plugin.owner.is_none() {
            return Ok(Called::nothing(Err(no_owner_api(plugin))));
        }
        let scope = format!("sync-owner:mailbox={mailbox}");
        let connection = self.limit_mailbox(plugin, connection, &scope);
        let (config, mailbox) = (config.to_owned(), mailbox.to_owned());
        self.invoke_at(
            plugin,
            Some(connection),
            "read-sync-owner",
            Entry::Owner,
            move |i, s| {
                Box::pin(async move {
                    let api = i.connector_owner()?.syncbridge_plugin_mailbox_owner_api();
                    Ok(api.call_read_sync_owner(s, &config, &mailbox).await?.lift())
                })
            },
        )
        .await
    }

    /// `mailbox-owner-api.write-sync-owner` (WIT 0.1.5): marks `owner` in
    /// `mailbox`, replacing any earlier mark.
    pub async fn write_sync_owner(
        &self,
        plugin: &LoadedPlugin,
        connection: ConnectionContext,
        config: &str,
        mailbox: &str,
        owner: &str,
    ) -> Result<Called<Result<(), PluginError>>, CallError> {
        Self::expect_kind(plugin, PluginKind::Connector, "write-sync-owner")?;
        if plugin.owner.is_none() {
            return Ok(Called::nothing(Err(no_owner_api(plugin))));
        }
        let scope = format!("sync-owner:mailbox={mailbox}");
        let connection = self.limit_mailbox(plugin, connection, &scope);
        let (config, mailbox, owner) = (config.to_owned(), mailbox.to_owned(), owner.to_owned());
        self.invoke_at(
            plugin,
            Some(connection),
            "write-sync-owner",
            Entry::Owner,
            move |i, s| {
                Box::pin(async move {
                    let api = i.connector_owner()?.syncbridge_plugin_mailbox_owner_api();
                    Ok(api
                        .call_write_sync_owner(s, &config, &mailbox, &owner)
                        .await?
                        .lift())
                })
            },
        )
        .await
    }

    async fn pull_mailbox(
        &self,
        plugin: &LoadedPlugin,
        connection: ConnectionContext,
        config: &str,
        request: PullRequest,
    ) -> Result<Called<Result<Page, PluginError>>, CallError> {
        let connection = self.limit_mailbox(plugin, connection, &request.scope);
        let config = config.to_owned();
        let request = request.lift();
        self.invoke_at(
            plugin,
            Some(connection),
            "pull-mailbox",
            Entry::Mailbox,
            move |i, s| {
                Box::pin(async move {
                    let api = i.connector_mailbox()?.syncbridge_plugin_mailbox_api();
                    Ok(api.call_pull_mailbox(s, &config, &request).await?.lift())
                })
            },
        )
        .await
    }

    async fn lookup_mailbox(
        &self,
        plugin: &LoadedPlugin,
        connection: ConnectionContext,
        config: &str,
        scope: &str,
        keys: Vec<String>,
    ) -> Result<Called<Result<Vec<Item>, PluginError>>, CallError> {
        let connection = self.limit_mailbox(plugin, connection, scope);
        let (config, scope) = (config.to_owned(), scope.to_owned());
        self.invoke_at(
            plugin,
            Some(connection),
            "lookup-mailbox-items",
            Entry::Mailbox,
            move |i, s| {
                Box::pin(async move {
                    let api = i.connector_mailbox()?.syncbridge_plugin_mailbox_api();
                    Ok(api
                        .call_lookup_mailbox_items(s, &config, &scope, &keys)
                        .await?
                        .lift())
                })
            },
        )
        .await
    }

    async fn push_mailbox(
        &self,
        plugin: &LoadedPlugin,
        connection: ConnectionContext,
        config: &str,
        scope: &str,
        batch: Vec<WriteOp>,
    ) -> Result<Called<Result<Vec<WriteResult>, PluginError>>, CallError> {
        let batch: Vec<_> = match batch.lower() {
            Ok(batch) => batch,
            Err(other) => return Ok(Called::nothing(other_api(plugin, scope, other))),
        };
        let connection = self.limit_mailbox(plugin, connection, scope);
        let (config, scope) = (config.to_owned(), scope.to_owned());
        self.invoke_at(
            plugin,
            Some(connection),
            "push-mailbox",
            Entry::Mailbox,
            move |i, s| {
                Box::pin(async move {
                    let api = i.connector_mailbox()?.syncbridge_plugin_mailbox_api();
                    Ok(api
                        .call_push_mailbox(s, &config, &scope, &batch)
                        .await?
                        .lift())
                })
            },
        )
        .await
    }

    /// `explain` of a mapper: `mailbox-mapper-api.explain` (items of either
    /// model) since WIT 0.1.4, `mapper-api.explain` before.
    pub async fn explain(
        &self,
        plugin: &LoadedPlugin,
        item: Item,
        options: &str,
    ) -> Result<Result<Explanation, PluginError>, CallError> {
        Self::expect_kind(plugin, PluginKind::Mapper, "explain")?;
        let options = options.to_owned();
        if let Some(MailboxPre::Mapper(_)) = plugin.mailbox {
            let item: mailbox_mapper_api::AnyItem = item.lift();
            return self
                .invoke_at(plugin, None, "explain", Entry::Mailbox, move |i, s| {
                    Box::pin(async move {
                        let api = i.mapper_mailbox()?.syncbridge_plugin_mailbox_mapper_api();
                        Ok(api.call_explain(s, &item, &options).await?.lift())
                    })
                })
                .await
                .map(|c| c.value);
        }
        let item: types::Item = match item.lower() {
            Ok(item) => item,
            Err(other) => return Ok(Err(mapper_other_api(plugin, other))),
        };
        self.invoke(plugin, None, "explain", move |i, s| {
            Box::pin(async move {
                Ok(match i {
                    Instance::Mapper(m) => m
                        .syncbridge_plugin_mapper_api()
                        .call_explain(s, &item, &options)
                        .await?
                        .lift(),
                    Instance::MapperV0_1_0(m) => m
                        .syncbridge_plugin_mapper_api()
                        .call_explain(s, &item, &options)
                        .await?
                        .lift(),
                    _ => return Err(not_this_world()),
                })
            })
        })
        .await
        .map(|c| c.value)
    }
}

/// Which bindings of a plugin a call instantiates.
#[derive(Clone, Copy)]
enum Entry {
    /// The core world ([`PluginPre`]).
    Core,
    /// The exports added in 0.1.2 ([`FieldsPre`]).
    Fields,
    /// The exports carrying mailbox items ([`MailboxPre`]): `mailbox-api`
    /// (0.1.3), `mailbox-mapper-api` (0.1.4).
    Mailbox,
    /// `mailbox-owner-api` (0.1.5).
    Owner,
}

impl<T> Called<T> {
    /// An answer the host gave without calling the plugin.
    fn nothing(value: T) -> Self {
        Self {
            value,
            state_changes: StateChanges::new(),
        }
    }
}

/// A write of a mailbox body to a scope `connector-api` serves, or the reverse.
fn other_api<T>(plugin: &LoadedPlugin, scope: &str, other: OtherApi) -> Result<T, PluginError> {
    Err(PluginError::Unsupported(format!(
        "connector {} does not take {} items in scope {scope:?}: mailbox items (event, mailbox-contact, todo) go only to the scopes its mailbox-api serves (WIT 0.1.3, e.g. `calendar:mailbox=…`), other items only to its other scopes; check the profile's target scope",
        plugin.manifest.id, other.kind
    )))
}

/// A connector built before WIT 0.1.5 asked for the mark of a mailbox's organization.
fn no_owner_api(plugin: &LoadedPlugin) -> PluginError {
    PluginError::Unsupported(format!(
        "connector {} is built against WIT {}, which has no mark of the organization a mailbox syncs with; install a version of it built against WIT 0.1.5 or later (mailbox-owner-api)",
        plugin.manifest.id, plugin.manifest.wit
    ))
}

/// The mailbox a scope names (`calendar:mailbox=ada@contoso.com,past=30`),
/// lower case.
fn mailbox_of(scope: &str) -> Option<String> {
    let (_, options) = scope.split_once(':')?;
    options
        .split([',', ';'])
        .filter_map(|o| o.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("mailbox"))
        .map(|(_, v)| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
}

/// A mapper built before WIT 0.1.4 asked to map mailbox items, which its
/// `mapper-api` cannot carry.
fn mapper_other_api(plugin: &LoadedPlugin, other: OtherApi) -> PluginError {
    PluginError::Unsupported(format!(
        "mapper {} cannot receive {} items: it is built against WIT {}, whose mapper-api carries no mailbox items; install a version of it built against WIT 0.1.4 or later (mailbox-mapper-api), or use a mapper whose source is a PSA or directory scope",
        plugin.manifest.id, other.kind, plugin.manifest.wit
    ))
}

/// An instantiated plugin of one world and WIT version.
pub(super) enum Instance<'a> {
    Connector(&'a Connector),
    Mapper(&'a Mapper),
    MapperV0_1_0(&'a v0_1_0::Mapper),
    ConnectorFields(&'a ConnectorFields),
    ConnectorMailbox(&'a ConnectorMailbox),
    ConnectorOwner(&'a ConnectorOwner),
    MapperFields(&'a MapperFields),
    MapperMailbox(&'a MapperMailbox),
}

/// The kind is checked before every call, so this is a host bug if it shows.
fn not_this_world() -> wasmtime::Error {
    wasmtime::Error::msg("host bug: export called on a plugin of the other world")
}

impl<'a> Instance<'a> {
    fn connector(&self) -> wasmtime::Result<&'a Connector> {
        match self {
            Instance::Connector(c) => Ok(c),
            _ => Err(not_this_world()),
        }
    }

    fn connector_mailbox(&self) -> wasmtime::Result<&'a ConnectorMailbox> {
        match self {
            Instance::ConnectorMailbox(c) => Ok(c),
            _ => Err(not_this_world()),
        }
    }

    fn connector_owner(&self) -> wasmtime::Result<&'a ConnectorOwner> {
        match self {
            Instance::ConnectorOwner(c) => Ok(c),
            _ => Err(not_this_world()),
        }
    }

    fn mapper_mailbox(&self) -> wasmtime::Result<&'a MapperMailbox> {
        match self {
            Instance::MapperMailbox(m) => Ok(m),
            _ => Err(not_this_world()),
        }
    }
}

/// The panic line of captured stderr and the message line after it.
fn last_line(text: &str) -> Option<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let picked = match lines.iter().position(|l| l.contains("panicked")) {
        Some(i) => lines[i..lines.len().min(i + 2)].join(" "),
        None => lines.last()?.to_string(),
    };
    Some(picked.chars().take(500).collect())
}

/// Plugin stdout/stderr go to tracing, one event per line, capped.
fn forward_output(plugin: &LoadedPlugin, store: &Store<HostState>) {
    for (stream, pipe) in [
        ("stdout", &store.data().stdout),
        ("stderr", &store.data().stderr),
    ] {
        let bytes = pipe.contents();
        if bytes.is_empty() {
            continue;
        }
        for line in String::from_utf8_lossy(&bytes).lines().take(200) {
            tracing::info!(target: "plugin::output", plugin = &*plugin.label, stream, "{line}");
        }
    }
}
