//! Executes one run: the profile's plugins through the engine, with the
//! run's lease renewed by heartbeats, the plan stored when it is a dry run
//! or held by the brakes, a stored plan applied exactly when approved, and
//! the outcome recorded, alerted and mailed.

use crate::control::alerts::{self, NewAlert};
use crate::control::approval::{self, ApplyError, Start};
use crate::control::companies;
use crate::control::dynamics_flow;
use crate::control::dynamics_owner;
use crate::control::exchange_flow::{self, AfterRun, RunEnd};
use crate::control::exchange_profiles;
use crate::control::plans::{self, ApplyOutcome, PlanError, PlanInfo, PlanStatus};
use crate::control::quarantine;
use crate::control::runs::{NewRun, RunMode, RunRecord, RunStatus, RunSummary, Runs, RunsError};
use crate::hub::Hub;
use crate::notify::{Notification, Notifier, Recipients};
use crate::plugin_endpoints::{run_spec, ProfileEndpoints};
use std::sync::Arc;
use std::time::Duration;
use syncbridge_model::PluginError;
use syncbridge_runtime::metrics::{ItemOutcome, Metrics};
use syncbridge_store::StoreError;
use syncbridge_sync::endpoint::EndpointError;
use syncbridge_sync::plan::PlanCounts;
use syncbridge_sync::profiles::{self, Profile};
use syncbridge_sync::run::{PageTally, Plan};
use syncbridge_sync::{Engine, Ledger, RunError, RunReport, RunSpec};

/// Progress callbacks for a caller that shows them (the CLI's bar).
pub trait Progress: Send + Sync {
    /// Planning finished: what will be applied, in how many pages.
    fn planned(&self, _counts: &PlanCounts, _pages: usize) {}
    /// One page was applied.
    fn page_done(&self, _applied: u64, _failed: u64) {}
}

/// Shows nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Why a run could not be executed to a recorded end.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runs(#[from] RunsError),
    #[error(
        "run {0} was taken over by another process (its lease expired); that process finishes it"
    )]
    LeaseLost(String),
}

/// How a run ended, before it is recorded.
struct Ended {
    status: RunStatus,
    report: RunReport,
    plan: Option<PlanInfo>,
    error: Option<String>,
    conflicts: Vec<String>,
    /// The connection a permanent auth error stopped.
    stopped: Option<String>,
    /// How the run's plan differs from the preview just before it.
    differs_from_preview: Vec<String>,
}

impl Ended {
    fn failed(error: String) -> Self {
        Ended {
            status: RunStatus::Failed,
            report: RunReport::default(),
            plan: None,
            error: Some(error),
            conflicts: Vec::new(),
            stopped: None,
            differs_from_preview: Vec::new(),
        }
    }
}

/// A spawned task aborted when this guard is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Executes runs for one process (`owner` names it in leases).
pub struct Runner {
    hub: Arc<Hub>,
    owner: String,
    lease: Duration,
    notifier: Option<Arc<dyn Notifier>>,
    /// Recipients when a run's company names none.
    fallback_recipients: Option<Recipients>,
}

impl Runner {
    pub fn new(hub: Arc<Hub>, owner: impl Into<String>, lease: Duration) -> Self {
        Self {
            hub,
            owner: owner.into(),
            lease,
            notifier: None,
            fallback_recipients: None,
        }
    }

    /// Mails failures, holds and confirmations through `notifier`.
    pub fn with_notifier(
        mut self,
        notifier: Arc<dyn Notifier>,
        fallback: Option<Recipients>,
    ) -> Self {
        self.notifier = Some(notifier);
        self.fallback_recipients = fallback;
        self
    }

    /// The hub the runner works with.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The name this process holds leases under.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The lease length.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The metrics this process records its runs in.
    pub fn metrics(&self) -> &Metrics {
        self.hub.runtime().metrics()
    }

    fn runs(&self) -> Runs {
        Runs::new(self.hub.store().clone())
    }

    /// Executes a run this process holds the lease of, to its recorded end.
    /// If the lease is lost (this process stalled and another took the run
    /// over), execution stops at once and the other process finishes it.
    pub async fn execute(
        &self,
        run: RunRecord,
        progress: &dyn Progress,
    ) -> Result<RunRecord, RunnerError> {
        let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
        // Stops renewing the lease as soon as this call ends or is dropped
        // (a cancelled or killed run must let its lease lapse).
        let _heartbeat = AbortOnDrop({
            let runs = self.runs();
            let (id, owner, lease) = (run.id.clone(), self.owner.clone(), self.lease);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(lease / 3).await;
                    match runs.heartbeat(&id, &owner, lease).await {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => tracing::warn!(run = %id, error = %e, "lease heartbeat failed"),
                    }
                }
                let _ = lost_tx.send(());
            })
        });
        // Whether flow 1 derived this profile: its runs are booked and mailed by the flow.
        let flow = exchange_flow::row(&self.hub, &run.profile_id).await?;
        // Whether flow 3 derived it: its runs speak for one mailbox. (One flow derives a profile.)
        let flow3 = match flow {
            Some(_) => None,
            None => dynamics_flow::row(&self.hub, &run.profile_id).await?,
        };
        let ended = tokio::select! {
            ended = self.drive(&run, progress, flow.as_ref(), flow3.as_ref()) => ended,
            _ = lost_rx => {
                return Err(RunnerError::LeaseLost(run.id.clone()));
            }
        };
        let ended = match ended {
            Ok(e) => e,
            Err(e) => Ended::failed(e.to_string()),
        };
        self.settle_unfinished_apply(&run, &ended).await;
        self.record(&run, ended, flow.is_some()).await
    }

    /// An apply-plan run that ended before settling its plan (an error, a
    /// stopped connection) leaves it `failed`, never `applying` for good.
    async fn settle_unfinished_apply(&self, run: &RunRecord, ended: &Ended) {
        let (RunMode::ApplyPlan, Some(plan)) = (run.mode, run.plan_id.as_deref()) else {
            return;
        };
        let reason = ended
            .error
            .as_deref()
            .unwrap_or("the apply-plan run ended before applying it");
        match plans::settle(
            self.hub.store(),
            plan,
            &run.id,
            ApplyOutcome::Failed,
            Some(reason),
        )
        .await
        {
            Ok(true) => tracing::warn!(run = %run.id, plan, "the apply failed: plan marked failed"),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(run = %run.id, plan, error = %e, "cannot mark the plan failed")
            }
        }
    }

    async fn record(
        &self,
        run: &RunRecord,
        ended: Ended,
        flow_run: bool,
    ) -> Result<RunRecord, RunnerError> {
        let summary = RunSummary {
            report: ended.report.clone(),
            conflicts: ended.conflicts.clone(),
            differs_from_preview: ended.differs_from_preview.clone(),
        };
        let Some(finished) = self
            .runs()
            .finish(
                &run.id,
                &self.owner,
                ended.status,
                ended.plan.as_ref().map(|p| p.id.as_str()),
                Some(&summary),
                ended.error.as_deref(),
            )
            .await?
        else {
            return Err(RunnerError::LeaseLost(run.id.clone()));
        };
        let took = finished
            .started_at
            .zip(finished.finished_at)
            .map(|(start, end)| Duration::from_millis(end.saturating_sub(start).max(0) as u64));
        self.metrics().run_ended(
            &finished.profile_id,
            finished.mode.as_str(),
            finished.status.as_str(),
            took,
        );
        self.announce(&finished, &ended, flow_run).await;
        Ok(finished)
    }

    /// Raises alerts and sends mail for what needs an operator.
    async fn announce(&self, run: &RunRecord, ended: &Ended, flow_run: bool) {
        let store = self.hub.store();
        let company = run.company_id.as_deref();
        let mut mail: Option<Notification> = None;
        let alert = |code: &'static str, severity: &'static str, message: String| async move {
            let raised = alerts::raise(
                store,
                NewAlert {
                    company_id: company,
                    connection_id: ended.stopped.as_deref(),
                    profile_id: Some(&run.profile_id),
                    run_id: Some(&run.id),
                    mailbox_id: None,
                    severity,
                    code,
                    message: &message,
                },
            )
            .await;
            if let Err(e) = raised {
                tracing::error!(error = %e, "cannot record an alert");
            }
        };
        let company_name = company.unwrap_or("(no company)");
        match ended.status {
            RunStatus::Failed => {
                let error = ended.error.clone().unwrap_or_default();
                if let Some(conn) = &ended.stopped {
                    let todo = format!("Fix the credentials of connection {conn}, then test it (`syncbridge connection test {conn}` or POST /api/v1/connections/{conn}/test); a passing test restarts it.");
                    alert(
                        "connection_auth_failed",
                        "error",
                        format!("connection {conn} stopped: {error}. {todo}"),
                    )
                    .await;
                    mail = Some(Notification::connection_auth_failed(conn, &error, &todo));
                } else {
                    let todo = "Read the error; fix the cause; the next scheduled run retries. `syncbridge run PROFILE` or POST /api/v1/profiles/{id}/run runs it now.";
                    alert(
                        "run_failed",
                        "error",
                        format!("run {} failed: {error}", run.id),
                    )
                    .await;
                    mail = Some(Notification::run_failed(
                        &run.profile_id,
                        company_name,
                        &run.id,
                        &error,
                        todo,
                    ));
                }
            }
            RunStatus::Held => {
                let reason = ended.report.held.clone().unwrap_or_default();
                let plan = ended.plan.as_ref().map(|p| p.id.as_str()).unwrap_or("?");
                let how = format!("Review plan {plan} (GET /api/v1/plans/{plan}); approve it with POST /api/v1/plans/{plan}/apply or discard it with POST /api/v1/plans/{plan}/discard.");
                alert(
                    "plan_held",
                    "warning",
                    format!("run {} held by the brakes: {reason}. {how}", run.id),
                )
                .await;
                mail = Some(Notification::brakes_held(
                    &run.profile_id,
                    &run.id,
                    &reason,
                    &how,
                ));
            }
            RunStatus::Stale => {
                alert(
                    "plan_stale",
                    "warning",
                    format!(
                        "plan {} was not applied, the data changed underneath: {}. Make a new dry run.",
                        run.plan_id.as_deref().unwrap_or("?"),
                        ended.conflicts.join("; ")
                    ),
                )
                .await;
            }
            RunStatus::Partial => {
                // An item failing run after run needs a person: say which, why and what to do.
                match quarantine::failing_for(store, &run.profile_id, FAILING_ITEM_RUNS).await {
                    Ok(items) => {
                        for item in items {
                            alert(
                                "item_failing",
                                "error",
                                format!(
                                    "item {} of profile {} failed on {} runs in a row ({}: {}). {}",
                                    item.source_id,
                                    run.profile_id,
                                    item.attempts,
                                    item.error_class,
                                    item.error,
                                    quarantine::remedy(&item.error_class)
                                ),
                            )
                            .await;
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "cannot read the quarantine"),
                }
            }
            RunStatus::Succeeded if run.mode == RunMode::ApplyPlan => {
                let c = ended.report.planned;
                mail = Some(Notification::run_succeeded(
                    &run.profile_id,
                    &run.id,
                    &[
                        ("created", c.create),
                        ("updated", c.update),
                        ("deactivated", c.deactivate),
                        ("reactivated", c.reactivate),
                        ("deleted", c.delete),
                        ("failed", ended.report.failed),
                    ],
                ));
            }
            _ => {}
        }
        // Flow 1 mails its own notice, once per incident, to the Exchange
        // profile's list (`exchange_flow::after_run`): not every failed run.
        if flow_run && matches!(ended.status, RunStatus::Failed) {
            mail = None;
        }
        if let (Some(n), Some(notifier)) = (mail, &self.notifier) {
            let to = match company {
                Some(c) => companies::get(store, c)
                    .await
                    .ok()
                    .filter(|c| !c.notify_to.trim().is_empty())
                    .and_then(|c| Recipients::parse(&c.notify_to).ok()),
                None => None,
            }
            .or_else(|| self.fallback_recipients.clone());
            if let Some(to) = to {
                if let Err(e) = notifier.send(&to, &n).await {
                    tracing::error!(run = %run.id, error = %e, "cannot send the notification");
                }
            }
        }
    }

    async fn drive(
        &self,
        run: &RunRecord,
        progress: &dyn Progress,
        flow: Option<&exchange_flow::FlowRow>,
        flow3: Option<&dynamics_flow::FlowRow>,
    ) -> Result<Ended, StoreError> {
        let store = self.hub.store();
        let (profile, resync_requested) = profiles::get_with_resync(store, &run.profile_id).await?;
        let connections = [
            profile.source_connection.as_str(),
            profile.target_connection.as_str(),
        ];
        if let Some((conn, why)) = store.first_stopped(&connections).await? {
            return Ok(Ended::failed(format!(
                "connection {conn} is stopped ({why}); fix its credentials and test it to restart it"
            )));
        }
        if let (Some(row), RunMode::Run | RunMode::ApplyPlan) = (flow, run.mode) {
            if let Err(busy) =
                exchange_flow::wait_for_siblings(&self.hub, row, run, exchange_flow::SIBLING_WAIT)
                    .await?
            {
                return Ok(Ended::failed(busy));
            }
        }
        if let (Some(row), RunMode::Run | RunMode::ApplyPlan) = (flow3, run.mode) {
            // Flow 3: a mailbox another organization took over syncs nothing more here.
            if let Some(why) = dynamics_owner::check_before_run(&self.hub, row).await? {
                return Ok(Ended::failed(why));
            }
        }
        let ledger = Ledger::new(store.clone());
        let endpoints = ProfileEndpoints::new(&self.hub, &profile);
        let engine = endpoints.engine(&ledger);
        let spec = run_spec(
            &self.hub,
            &profile,
            matches!(run.mode, RunMode::DryRun | RunMode::Preview),
            run.mode == RunMode::Preview,
        )
        .await
        .map_err(|error| RunError::Endpoint {
            side: "source fields",
            error,
        });
        let result = match spec {
            Err(e) => Err(e),
            Ok(spec) => match run.mode {
                RunMode::Run => {
                    self.full_run(run, &profile, resync_requested, &engine, &spec, progress)
                        .await
                }
                RunMode::DryRun | RunMode::Preview => self.dry_run(run, &engine, &spec).await,
                RunMode::ApplyPlan => self.apply_plan(run, &engine, &spec, progress).await,
            },
        };
        match result {
            Ok(ended) => {
                if let Some(row) = flow {
                    let end = match ended.status {
                        RunStatus::Failed => RunEnd::Other,
                        _ => RunEnd::Ran,
                    };
                    self.after_flow_run(row, end).await;
                }
                if let (Some(row), RunMode::Run | RunMode::ApplyPlan) = (flow3, run.mode) {
                    if ended.status != RunStatus::Failed {
                        self.after_flow3_run(row, dynamics_flow::RunEnd::Ran { run_id: &run.id })
                            .await;
                    }
                }
                Ok(ended)
            }
            Err(RunError::Store(e)) => Err(e),
            Err(RunError::Endpoint { side, error }) => {
                let mut ended = Ended::failed(format!("{side} failed: {error}"));
                let conn = if side.starts_with("source") {
                    Some(&profile.source_connection)
                } else if side.starts_with("target") {
                    Some(&profile.target_connection)
                } else {
                    None
                };
                // Flow 1: the Exchange side's auth errors are the resource's
                // unless the synchronization account itself was refused.
                let mut stop = matches!(&error, EndpointError::Plugin(PluginError::Auth(_)));
                if let Some(row) = flow {
                    let exchange = exchange_profiles::connection_id(&row.exchange_profile_id);
                    let exchange_side = conn == Some(&exchange);
                    let after = self
                        .after_flow_run(
                            row,
                            RunEnd::Failed {
                                exchange_side,
                                error: &error,
                            },
                        )
                        .await;
                    if exchange_side {
                        stop = after.is_some_and(|a| a.stop_connection);
                    }
                }
                if let Some(row) = flow3 {
                    // Flow 3: the Exchange side refusing one mailbox disables that
                    // mailbox; the profile's connection serves the others.
                    let mail_side =
                        conn.map(String::as_str) == Some(row.kind.mail_connection(&profile));
                    self.after_flow3_run(
                        row,
                        dynamics_flow::RunEnd::Failed {
                            mail_side,
                            error: &error,
                        },
                    )
                    .await;
                    if mail_side {
                        stop = false;
                    }
                }
                if let (true, Some(conn)) = (stop, conn) {
                    store.stop_connection(conn, &error.to_string()).await?;
                    ended.stopped = Some(conn.clone());
                }
                Ok(ended)
            }
        }
    }

    /// Flow 1's bookkeeping after a run of one of its engine profiles; a
    /// failure here is logged, never the run's.
    async fn after_flow_run(
        &self,
        row: &exchange_flow::FlowRow,
        end: RunEnd<'_>,
    ) -> Option<AfterRun> {
        match exchange_flow::after_run(&self.hub, self.notifier.as_deref(), row, end).await {
            Ok(done) => Some(done),
            Err(e) => {
                tracing::error!(profile = %row.profile_id, error = %e, "flow 1 could not record the run's outcome");
                None
            }
        }
    }

    /// Flow 3's bookkeeping after a run of one of its engine profiles; a
    /// failure here is logged, never the run's.
    async fn after_flow3_run(&self, row: &dynamics_flow::FlowRow, end: dynamics_flow::RunEnd<'_>) {
        match dynamics_flow::after_run(&self.hub, row, end).await {
            Ok(done) => {
                if done != dynamics_flow::AfterRun::default() {
                    tracing::info!(profile = %row.profile_id, marked_sent = done.marked_sent, moved_undeliverable = done.moved_undeliverable, disabled_mailbox = done.disabled_mailbox, "flow 3 after the run");
                }
            }
            Err(e) => {
                tracing::error!(profile = %row.profile_id, error = %e, "flow 3 could not record the run's outcome")
            }
        }
    }

    async fn full_run<S, M, T>(
        &self,
        run: &RunRecord,
        profile: &Profile,
        resync_requested: bool,
        engine: &Engine<'_, S, M, T>,
        spec: &RunSpec,
        progress: &dyn Progress,
    ) -> Result<Ended, RunError>
    where
        S: syncbridge_sync::Source,
        M: syncbridge_sync::Transform,
        T: syncbridge_sync::Target,
    {
        let store = self.hub.store();
        // Taken atomically; read with the profile, so a run without a request writes nothing.
        if resync_requested && profiles::take_resync(store, &profile.id).await? {
            tracing::info!(profile = %profile.id, "settings changed: starting a full re-sync");
            engine
                .ledger
                .reset_cursor(&profile.id, &profile.source_scope)
                .await?;
            // The target's change feed starts again too (its server may have changed).
            engine
                .ledger
                .reset_cursor(&profile.id, &spec.target_feed())
                .await?;
        } else if reconcile_due(engine.ledger, profile).await? {
            tracing::info!(profile = %profile.id, "a full reconcile is due: reading every item of both sides");
            engine
                .ledger
                .reset_cursor(&profile.id, &profile.source_scope)
                .await?;
        }
        let mut report = RunReport {
            recovered: engine.recover(spec, &run.id).await?,
            ..RunReport::default()
        };
        let preview = self.preview_before(&profile.id).await?;
        let plan = engine.plan(spec, &run.id).await?;
        let differs_from_preview = match &preview {
            Some(preview) => {
                let shown = plans::items(store, &preview.id, false, 0, u32::MAX).await?;
                let differs = plans::differences(&shown, &plan);
                if !differs.is_empty() {
                    tracing::info!(profile = %profile.id, preview = %preview.id, items = differs.len(), "the run differs from the preview before it");
                }
                differs
            }
            None => Vec::new(),
        };
        report.planned = plan.counts;
        report.pages = plan.pages.len() as u64;
        if let Some(reason) = &plan.held {
            report.held = Some(reason.clone());
            // Planning commits no cursor: the stored one is still the plan's base.
            let base = engine
                .ledger
                .cursor(&spec.profile_id, &spec.source_scope)
                .await?
                .0;
            let info = self.store_plan(run, &plan, base.as_deref()).await?;
            return Ok(Ended {
                status: RunStatus::Held,
                report,
                plan: Some(info),
                error: None,
                conflicts: Vec::new(),
                stopped: None,
                differs_from_preview: Vec::new(),
            });
        }
        progress.planned(&plan.counts, plan.pages.len());
        apply_with_progress(
            engine,
            spec,
            &run.id,
            &plan,
            &mut report,
            progress,
            self.metrics(),
        )
        .await?;
        if let Some(preview) = preview {
            // Compared once: the next run is not measured against it again.
            if let Err(e) = plans::discard(store, &preview.id).await {
                tracing::info!(plan = %preview.id, error = %e, "the preview's plan was not discarded");
            }
        }
        Ok(Ended {
            status: applied_status(&report),
            report,
            plan: None,
            error: None,
            conflicts: Vec::new(),
            stopped: None,
            differs_from_preview,
        })
    }

    /// The open plan of a preview, when it is the profile's newest plan: the
    /// run that follows is compared with what it showed.
    async fn preview_before(&self, profile: &str) -> Result<Option<PlanInfo>, StoreError> {
        let Some(newest) = plans::list(self.hub.store(), Some(profile))
            .await?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        if newest.status != PlanStatus::Proposed {
            return Ok(None);
        }
        let made_by = self.runs().get(&newest.run_id).await?;
        Ok((made_by.mode == RunMode::Preview).then_some(newest))
    }

    async fn dry_run<S, M, T>(
        &self,
        run: &RunRecord,
        engine: &Engine<'_, S, M, T>,
        spec: &RunSpec,
    ) -> Result<Ended, RunError>
    where
        S: syncbridge_sync::Source,
        M: syncbridge_sync::Transform,
        T: syncbridge_sync::Target,
    {
        let base = engine
            .ledger
            .cursor(&spec.profile_id, &spec.source_scope)
            .await?
            .0;
        let plan = engine.plan(spec, &run.id).await?;
        let info = self.store_plan(run, &plan, base.as_deref()).await?;
        if run.mode == RunMode::Preview && plan.counts.writes() > 0 {
            // The preview read every item; the run after it must too, or it
            // would only see changes and skip what the preview showed.
            profiles::request_profile_resync(self.hub.store(), &run.profile_id).await?;
        }
        Ok(Ended {
            status: RunStatus::Planned,
            report: RunReport {
                planned: plan.counts,
                pages: plan.pages.len() as u64,
                held: plan.held.clone(),
                ..RunReport::default()
            },
            plan: Some(info),
            error: None,
            conflicts: Vec::new(),
            stopped: None,
            differs_from_preview: Vec::new(),
        })
    }

    async fn apply_plan<S, M, T>(
        &self,
        run: &RunRecord,
        engine: &Engine<'_, S, M, T>,
        spec: &RunSpec,
        progress: &dyn Progress,
    ) -> Result<Ended, RunError>
    where
        S: syncbridge_sync::Source,
        M: syncbridge_sync::Transform,
        T: syncbridge_sync::Target,
    {
        let store = self.hub.store();
        let Some(plan_id) = run.plan_id.clone() else {
            return Ok(Ended::failed(format!(
                "apply-plan run {} names no plan",
                run.id
            )));
        };
        let (info, mut plan, base) = plans::load(store, &plan_id).await?;
        let stale = |conflicts: Vec<String>, report: RunReport| Ended {
            status: RunStatus::Stale,
            report,
            plan: Some(info.clone()),
            error: Some(format!(
                "plan {plan_id} was not applied: {}; make a new dry run",
                conflicts.join("; ")
            )),
            conflicts,
            stopped: None,
            differs_from_preview: Vec::new(),
        };
        // Only the run that claimed the plan (POST /plans/{id}/apply or
        // `run --apply`) applies it.
        if info.status != PlanStatus::Applying || info.apply_run.as_deref() != Some(&run.id) {
            return Ok(Ended::failed(format!(
                "plan {plan_id} is {} and not claimed by run {}; apply it with POST /api/v1/plans/{plan_id}/apply or `syncbridge run {} --apply {plan_id}` (only proposed or held plans can be applied)",
                info.status, run.id, info.profile_id
            )));
        }
        let report = RunReport {
            planned: info.counts,
            pages: plan.pages.len() as u64,
            ..RunReport::default()
        };
        let now = engine
            .ledger
            .cursor(&spec.profile_id, &spec.source_scope)
            .await?
            .0;
        let mut conflicts = Vec::new();
        if now != base {
            conflicts.push("another run has synced this profile since the plan was made".into());
        }
        if !engine.ledger.unfinished(&spec.profile_id).await?.is_empty() {
            conflicts.push("an interrupted run left writes to recover".into());
        }
        if conflicts.is_empty() {
            conflicts = engine.verify(spec, &plan).await?;
        }
        if !conflicts.is_empty() {
            let reason = conflicts.join("; ");
            self.settle(&plan_id, &run.id, ApplyOutcome::Stale, Some(&reason))
                .await?;
            return Ok(stale(conflicts, report));
        }
        // A held plan is approved: apply it as planned, brakes satisfied.
        plan.held = None;
        let mut report = report;
        progress.planned(&plan.counts, plan.pages.len());
        // An error here ends the run; `settle_unfinished_apply` marks the plan failed.
        apply_with_progress(
            engine,
            spec,
            &run.id,
            &plan,
            &mut report,
            progress,
            self.metrics(),
        )
        .await?;
        self.settle(&plan_id, &run.id, ApplyOutcome::Applied, None)
            .await?;
        Ok(Ended {
            status: applied_status(&report),
            report,
            plan: Some(info),
            error: None,
            conflicts: Vec::new(),
            stopped: None,
            differs_from_preview: Vec::new(),
        })
    }

    /// Moves the plan this run claimed to its outcome.
    async fn settle(
        &self,
        plan: &str,
        run: &str,
        outcome: ApplyOutcome,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        if !plans::settle(self.hub.store(), plan, run, outcome, reason).await? {
            tracing::warn!(
                plan,
                run,
                ?outcome,
                "the plan was no longer applying for this run"
            );
        }
        Ok(())
    }

    async fn store_plan(
        &self,
        run: &RunRecord,
        plan: &Plan,
        base: Option<&str>,
    ) -> Result<PlanInfo, StoreError> {
        let id = crate::control::new_id("plan");
        plans::save(self.hub.store(), &id, &run.profile_id, &run.id, plan, base).await
    }
}

async fn apply_with_progress<S, M, T>(
    engine: &Engine<'_, S, M, T>,
    spec: &RunSpec,
    run_id: &str,
    plan: &Plan,
    report: &mut RunReport,
    progress: &dyn Progress,
    metrics: &Metrics,
) -> Result<(), RunError>
where
    S: syncbridge_sync::Source,
    M: syncbridge_sync::Transform,
    T: syncbridge_sync::Target,
{
    for page in &plan.pages {
        let tally = engine.apply_page(spec, run_id, page).await?;
        count_items(metrics, &spec.profile_id, &tally);
        let (applied, failed) = (tally.applied_total(), tally.failed_total());
        report.applied += applied;
        report.failed += failed;
        progress.page_done(applied, failed);
    }
    engine.finish(spec, plan, report.applied > 0).await
}

/// Runs in a row an item fails before an alert names it.
pub const FAILING_ITEM_RUNS: i64 = 3;

/// `partial` when items failed (they are quarantined and retried), else `succeeded`.
fn applied_status(report: &RunReport) -> RunStatus {
    if report.failed > 0 {
        RunStatus::Partial
    } else {
        RunStatus::Succeeded
    }
}

/// Whether the profile's periodic full reconcile is due: never done, or
/// longer ago than its interval.
async fn reconcile_due(ledger: &Ledger, profile: &Profile) -> Result<bool, StoreError> {
    let Some(every) = profile.rules.full_reconcile_secs else {
        return Ok(false);
    };
    Ok(match ledger.last_full_reconcile(&profile.id).await? {
        None => true,
        Some(at) => syncbridge_store::now_ms().saturating_sub(at) >= every as i64 * 1000,
    })
}

/// Items of a page by action and outcome, failures by error class.
fn count_items(metrics: &Metrics, profile: &str, tally: &PageTally) {
    for (outcome, counts) in [
        (ItemOutcome::Applied, &tally.applied),
        (ItemOutcome::Failed, &tally.failed),
    ] {
        for (action, n) in counts {
            metrics.items(profile, action.as_str(), outcome, *n);
        }
    }
    for (class, n) in &tally.errors {
        metrics.item_errors(profile, class, *n);
    }
}

/// A run started in this process, now: by the CLI, by tests and benches.
/// The same path as a scheduled run (recorded, leased, heartbeats, stopped
/// connections, re-sync, plans), only claimed at once instead of queued.
#[derive(Debug, Clone, Copy)]
pub struct RunNow<'a> {
    pub profile: &'a str,
    pub mode: RunMode,
    /// With [`RunMode::ApplyPlan`]: the plan of `profile` to apply.
    pub plan: Option<&'a str>,
    /// What asked for it (`manual` for the CLI).
    pub trigger: &'a str,
}

/// Why a run could not be started or finished in this process.
#[derive(Debug, thiserror::Error)]
pub enum RunNowError {
    #[error("applying needs a plan id: `syncbridge run PROFILE --apply PLAN`")]
    NoPlan,
    #[error("plan {plan} belongs to profile {owner}, not {profile}; apply it with `syncbridge run {owner} --apply {plan}`")]
    OtherProfile {
        plan: String,
        owner: String,
        profile: String,
    },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Runs(#[from] RunsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runner(#[from] RunnerError),
}

impl Runner {
    /// Records `request` as a run this process holds the lease of and
    /// executes it to its recorded end. A queued run of the profile that no
    /// process has claimed yet gives way to it; with a plan, the plan is
    /// claimed first, as `POST /plans/{id}/apply` does.
    pub async fn run_now(
        &self,
        request: RunNow<'_>,
        progress: &dyn Progress,
    ) -> Result<RunRecord, RunNowError> {
        let store = self.hub.store();
        let profile = request.profile;
        let settings = profiles::settings(store, profile).await?;
        let apply = match (request.mode, request.plan) {
            (RunMode::ApplyPlan, Some(plan)) => Some(plan),
            (RunMode::ApplyPlan, None) => return Err(RunNowError::NoPlan),
            _ => None,
        };
        if let Some(plan) = apply {
            let info = plans::get(store, plan).await?;
            if info.profile_id != profile {
                return Err(RunNowError::OtherProfile {
                    plan: plan.to_owned(),
                    owner: info.profile_id,
                    profile: profile.to_owned(),
                });
            }
            // Checked again, atomically, by the claim; this only spares a queued run.
            if !info.status.open() {
                return Err(PlanError::NotOpen {
                    id: info.id,
                    status: info.status,
                }
                .into());
            }
        }
        let runs = self.runs();
        let why = format!("replaced by a run started by hand ({})", self.owner);
        if let Some(queued) = runs.cancel_queued(profile, &why).await? {
            tracing::info!(run = %queued.id, "cancelled the queued run in favour of this one");
            if approval::release_cancelled(store, &queued).await? {
                tracing::info!(run = %queued.id, plan = ?queued.plan_id, "its plan is open again");
            }
        }
        let run = match apply {
            Some(plan) => {
                let start = Start::Now {
                    owner: &self.owner,
                    lease: self.lease,
                };
                approval::start(store, plan, request.trigger, start).await?
            }
            None => {
                runs.start_now(
                    NewRun {
                        profile_id: profile,
                        company_id: settings.company_id.as_deref(),
                        trigger: request.trigger,
                        mode: request.mode,
                        plan_id: None,
                    },
                    &self.owner,
                    self.lease,
                )
                .await?
            }
        };
        Ok(self.execute(run, progress).await?)
    }
}
