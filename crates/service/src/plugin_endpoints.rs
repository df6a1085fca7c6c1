//! Engine endpoints backed by plugins: a connector connection as source or
//! target, a mapper plugin as the transform. Every call goes through the
//! runtime with the connection's grants; state changes are committed after
//! each successful call; throttled and transient failures are retried.

use crate::hub::{Hub, HubError};
use std::sync::Arc;
use syncbridge_model::Intent;
use syncbridge_model::{Item, PluginError};
use syncbridge_model::{Page, PullRequest, WriteOp, WriteResult};
use syncbridge_runtime::{CallError, Called, ConnectionContext, LoadedPlugin};
use syncbridge_store::{ConnectionRecord, StoreError};
use syncbridge_sync::endpoint::{EndpointError, Source, Target, Transform};
use syncbridge_sync::profiles::Profile;
use syncbridge_sync::retry::RetryPolicy;
use syncbridge_sync::{Engine, Ledger, RunSpec};

/// A plugin call that produced no answer (trap, timeout, out of memory).
fn stopped(e: CallError) -> EndpointError {
    EndpointError::Stopped(Box::new(e))
}

/// A hub error as the engine sees it, keeping its type: only a database
/// that did not answer is worth retrying.
fn hub_error(e: HubError) -> EndpointError {
    match e {
        HubError::Call(c) => stopped(c),
        // Permanent until an operator enters the credentials again: stop the
        // connection (as for a 401) instead of retrying.
        e @ (HubError::CredentialUnbound { .. } | HubError::CorruptBinding { .. }) => {
            EndpointError::Plugin(PluginError::Auth(e.to_string()))
        }
        HubError::Store(e @ (StoreError::Query(_) | StoreError::Connect(_))) => {
            EndpointError::Plugin(PluginError::Transient(e.to_string()))
        }
        HubError::ShuttingDown => EndpointError::Interrupted(HubError::ShuttingDown.to_string()),
        other => EndpointError::Host(Box::new(other)),
    }
}

/// A connector connection.
pub struct ConnectionEndpoint<'a> {
    pub hub: &'a Hub,
    pub connection: String,
    pub retry: RetryPolicy,
}

impl ConnectionEndpoint<'_> {
    /// What a call needs: the connection's record, plugin and context.
    async fn context(
        &self,
    ) -> Result<(ConnectionRecord, Arc<LoadedPlugin>, ConnectionContext), EndpointError> {
        self.hub
            .connection_context(&self.connection)
            .await
            .map_err(hub_error)
    }

    /// Commits the call's state changes and unwraps the plugin's answer.
    async fn finish<T>(&self, called: Called<Result<T, PluginError>>) -> Result<T, EndpointError> {
        self.hub
            .store()
            .apply_state_changes(&self.connection, &called.state_changes)
            .await
            .map_err(|e| hub_error(e.into()))?;
        Ok(called.value?)
    }

    async fn pull_once(
        &self,
        scope: &str,
        cursor: Option<String>,
        max_items: u32,
    ) -> Result<Page, EndpointError> {
        let (record, plugin, ctx) = self.context().await?;
        let request = PullRequest {
            scope: scope.to_owned(),
            cursor,
            max_items,
        };
        self.finish(
            self.hub
                .runtime()
                .pull(&plugin, ctx, &record.config, request)
                .await
                .map_err(stopped)?,
        )
        .await
    }

    async fn lookup_once(
        &self,
        scope: &str,
        keys: Vec<String>,
    ) -> Result<Vec<Item>, EndpointError> {
        let (record, plugin, ctx) = self.context().await?;
        self.finish(
            self.hub
                .runtime()
                .lookup_items(&plugin, ctx, &record.config, scope, keys)
                .await
                .map_err(stopped)?,
        )
        .await
    }

    async fn push_once(
        &self,
        scope: &str,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<WriteResult>, EndpointError> {
        let (record, plugin, ctx) = self.context().await?;
        self.finish(
            self.hub
                .runtime()
                .push(&plugin, ctx, &record.config, scope, ops)
                .await
                .map_err(stopped)?,
        )
        .await
    }
}

impl ConnectionEndpoint<'_> {
    /// The organization marked in `mailbox` as the one it syncs with
    /// (`mailbox-owner-api`, WIT 0.1.5), none when unmarked.
    pub async fn read_sync_owner(&self, mailbox: &str) -> Result<Option<String>, EndpointError> {
        self.retry
            .run("read-sync-owner", || async {
                let (record, plugin, ctx) = self.context().await?;
                self.finish(
                    self.hub
                        .runtime()
                        .read_sync_owner(&plugin, ctx, &record.config, mailbox)
                        .await
                        .map_err(stopped)?,
                )
                .await
            })
            .await
    }

    /// Marks `owner` in `mailbox` as the organization it syncs with.
    pub async fn write_sync_owner(&self, mailbox: &str, owner: &str) -> Result<(), EndpointError> {
        self.retry
            .run("write-sync-owner", || async {
                let (record, plugin, ctx) = self.context().await?;
                self.finish(
                    self.hub
                        .runtime()
                        .write_sync_owner(&plugin, ctx, &record.config, mailbox, owner)
                        .await
                        .map_err(stopped)?,
                )
                .await
            })
            .await
    }
}

impl Source for ConnectionEndpoint<'_> {
    async fn pull(
        &self,
        scope: &str,
        cursor: Option<String>,
        max_items: u32,
    ) -> Result<Page, EndpointError> {
        self.retry
            .run("pull", || self.pull_once(scope, cursor.clone(), max_items))
            .await
    }

    async fn lookup(&self, scope: &str, ids: Vec<String>) -> Result<Vec<Item>, EndpointError> {
        let keys: Vec<String> = ids.iter().map(|id| format!("id:{id}")).collect();
        self.retry
            .run("lookup", || self.lookup_once(scope, keys.clone()))
            .await
    }

    async fn push(
        &self,
        scope: &str,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<WriteResult>, EndpointError> {
        // As for the target: never retried as a whole.
        self.push_once(scope, ops).await
    }
}

impl Target for ConnectionEndpoint<'_> {
    async fn lookup(&self, scope: &str, keys: Vec<String>) -> Result<Vec<Item>, EndpointError> {
        self.retry
            .run("lookup", || self.lookup_once(scope, keys.clone()))
            .await
    }

    async fn push(
        &self,
        scope: &str,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<WriteResult>, EndpointError> {
        // Never retried as a whole: some writes may have landed. The engine
        // retries items the connector reports throttled or transient, and a
        // failed call leaves its ops pending for recovery by lookup.
        self.push_once(scope, ops).await
    }

    async fn changes(
        &self,
        scope: &str,
        cursor: Option<String>,
        max_items: u32,
    ) -> Result<Page, EndpointError> {
        self.retry
            .run("pull", || self.pull_once(scope, cursor.clone(), max_items))
            .await
    }
}

/// A mapper plugin with the profile's options.
pub struct MapperEndpoint<'a> {
    pub hub: &'a Hub,
    pub plugin: String,
    pub options: String,
}

impl Transform for MapperEndpoint<'_> {
    async fn map(&self, items: Vec<Item>) -> Result<Vec<Intent>, EndpointError> {
        let plugin = self.hub.plugin(&self.plugin).await.map_err(hub_error)?;
        Ok(self
            .hub
            .runtime()
            .decide(&plugin, items, &self.options)
            .await
            .map_err(stopped)??)
    }
}

/// How many batches of a page to push at once to `connection`: its
/// request limit (the connection's `max_concurrent`, else the plugin
/// manifest's), so concurrent batches overlap latency without ever
/// exceeding what the connection allows.
pub async fn push_concurrency(hub: &Hub, connection: &str) -> usize {
    // The record and the manifest only: no credentials to decrypt, no state to load.
    let Ok(record) = hub.store().get_connection(connection).await else {
        return 1;
    };
    let limit = match record.max_concurrent {
        Some(n) => n,
        None => match hub.plugin(&record.plugin_id).await {
            Ok(plugin) => plugin.manifest().limits.max_concurrent_requests,
            Err(_) => return 1,
        },
    };
    limit.clamp(1, 64) as usize
}

/// A profile's source, mapper and target as plugin-backed endpoints.
pub struct ProfileEndpoints<'a> {
    pub source: ConnectionEndpoint<'a>,
    pub transform: MapperEndpoint<'a>,
    pub target: ConnectionEndpoint<'a>,
}

impl<'a> ProfileEndpoints<'a> {
    pub fn new(hub: &'a Hub, profile: &Profile) -> Self {
        let connection = |id: &str| ConnectionEndpoint {
            hub,
            connection: id.to_owned(),
            retry: RetryPolicy::default(),
        };
        Self {
            source: connection(&profile.source_connection),
            transform: MapperEndpoint {
                hub,
                plugin: profile.mapper_plugin.clone(),
                options: profile.mapper_options.clone(),
            },
            target: connection(&profile.target_connection),
        }
    }

    /// The engine over these endpoints and `ledger`.
    pub fn engine<'e>(
        &'e self,
        ledger: &'e Ledger,
    ) -> Engine<'e, ConnectionEndpoint<'a>, MapperEndpoint<'a>, ConnectionEndpoint<'a>> {
        Engine {
            ledger,
            source: &self.source,
            transform: &self.transform,
            target: &self.target,
        }
    }
}

/// What a run of `profile` needs to know; `from_start` plans a full pass
/// whatever the stored cursor. Fails when the source cannot read the fields
/// the rules name (the mapper or connector changed since the profile was saved).
pub async fn run_spec(
    hub: &Hub,
    profile: &Profile,
    dry_run: bool,
    from_start: bool,
) -> Result<RunSpec, EndpointError> {
    let read_scope = hub
        .source_read_scope(
            &profile.mapper_plugin,
            &profile.mapper_options,
            &profile.source_connection,
            &profile.source_scope,
        )
        .await
        .map_err(hub_error)?;
    Ok(RunSpec {
        profile_id: profile.id.clone(),
        source_read_scope: (read_scope != profile.source_scope).then_some(read_scope),
        source_scope: profile.source_scope.clone(),
        target_scope: profile.target_scope.clone(),
        rules: profile.rules.clone(),
        page_size: profile.page_size.max(1),
        dry_run,
        retry: RetryPolicy::default(),
        push_concurrency: push_concurrency(hub, &profile.target_connection).await,
        from_start,
    })
}
