//! `syncbridge`: the command-line entry point.

mod diagnose_cmd;
mod dynamics_cmd;
mod exchange_cmd;

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use syncbridge::capability::http::HttpSettings;
use syncbridge::cli::{
    Cli, Command, CompanyCommand, ConflictsCommand, ConnectionCommand, LogFormat, MailboxCommand,
    PluginCommand, ProfileCommand, QuarantineCommand, TokenCommand, UpdateConnection, Winner,
};
use syncbridge::console;
use syncbridge::control::runs::{RunMode, RunStatus};
use syncbridge::engine::profiles::{self, Profile};
use syncbridge::hub::{Hub, NewConnection};
use syncbridge::model::{Finding, Outcome};
use syncbridge::outln;
use syncbridge::runtime::{EngineOptions, Runtime};
use syncbridge::secrets::{Credential, MasterKey};
use syncbridge::store::Store;

fn main() -> std::process::ExitCode {
    disable_library_backtraces();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<Incomplete>() {
                Some(Incomplete::Partial { .. }) => std::process::ExitCode::from(2),
                _ => std::process::ExitCode::FAILURE,
            }
        }
    }
}

/// A run that did not apply everything: exit status 1 when it failed or its
/// plan was stale, 2 when it applied but some items failed (partial).
#[derive(Debug, thiserror::Error)]
enum Incomplete {
    #[error("run {run} did not complete")]
    Failed { run: String },
    #[error("run {run} applied, but {failed} item(s) failed; they are quarantined and retried on the next run (`syncbridge quarantine list`)")]
    Partial { run: String, failed: u64 },
}

async fn run(cli: Cli) -> Result<()> {
    // The compiler and database layers are chatty below `info`; keep them
    // quiet unless the filter names them.
    let filter = format!(
        "cranelift_codegen=warn,cranelift_frontend=warn,wasmtime_internal_cranelift=warn,wasmtime=info,sqlx=warn,{}",
        cli.global.log
    );
    let filter =
        tracing_subscriber::EnvFilter::try_new(&filter).context("--log is not a valid filter")?;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.global.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => {
            use std::io::IsTerminal;
            logs.with_ansi(std::io::stderr().is_terminal()).init()
        }
    }
    let hub = Arc::new(open_hub(&cli.global).await?);
    match cli.command {
        Command::Serve(args) => {
            if let Some(dir) = &args.install_from {
                install_all(&hub, dir).await?;
            }
            let listener = tokio::net::TcpListener::bind(&args.listen)
                .await
                .with_context(|| {
                    format!(
                        "cannot listen on {}; is another syncbridge running?",
                        args.listen
                    )
                })?;
            tracing::info!(address = %listener.local_addr()?, "syncbridge serving; GET /healthz, GET /metrics, API under /api/v1");
            let mail = notifier_from_env(&args, &cli.global.ca_certs).await?;
            let scheduler = if args.no_scheduler {
                None
            } else {
                Some(start_scheduler(hub.clone(), &args, mail.clone()).await?)
            };
            let options = syncbridge::server::ServeOptions {
                metrics_public: args.metrics_public,
                notifier: mail.map(|(notifier, _)| notifier),
            };
            syncbridge::server::serve(hub, listener, options).await?;
            if let Some((stop, task)) = scheduler {
                let _ = stop.send(());
                // Runs in flight keep their leases until they expire; another
                // process (or the next start) takes them over and recovers them.
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
            }
        }
        Command::Plugin(cmd) => plugin_command(&hub, cmd).await?,
        Command::Connection(cmd) => connection_command(&hub, cmd).await?,
        Command::Profile(cmd) => profile_command(&hub, cmd).await?,
        Command::Run {
            profile,
            dry_run,
            apply,
            quiet,
            full,
        } => {
            let mode = match (dry_run, &apply) {
                (true, _) => RunMode::DryRun,
                (false, Some(_)) => RunMode::ApplyPlan,
                (false, None) => RunMode::Run,
            };
            if full {
                syncbridge::control::profiles::request_full_reconcile(
                    &hub,
                    syncbridge::control::Actor::Msp,
                    &profile,
                )
                .await?;
            }
            let done = console::run_now(hub, &profile, mode, apply.as_deref(), quiet).await?;
            match done.status {
                RunStatus::Failed | RunStatus::Stale => {
                    return Err(Incomplete::Failed { run: done.id }.into())
                }
                RunStatus::Partial => {
                    let failed = done.report.map(|r| r.report.failed).unwrap_or_default();
                    return Err(Incomplete::Partial {
                        run: done.id,
                        failed,
                    }
                    .into());
                }
                _ => {}
            }
        }
        Command::Preview { profile } => console::preview(hub, &profile).await?,
        Command::Plan {
            plan,
            discard: true,
            ..
        } => {
            let info = syncbridge::control::plans::discard(hub.store(), &plan).await?;
            outln!(
                "discarded plan {} of {}; nothing was written",
                info.id,
                info.profile_id
            );
        }
        Command::Plan { plan, all, .. } => console::print_plan(&hub, &plan, all).await?,
        Command::Plans { profile } => console::print_plans(&hub, profile.as_deref()).await?,
        Command::Quarantine(cmd) => quarantine_command(&hub, cmd).await?,
        Command::Conflicts(cmd) => conflicts_command(&hub, cmd).await?,
        Command::Alerts { all, resolve } => match resolve {
            Some(id) => {
                syncbridge::control::alerts::get(hub.store(), &id).await?;
                syncbridge::control::alerts::resolve(hub.store(), &id).await?;
                outln!("resolved alert {id}");
            }
            None => console::print_alerts(&hub, all).await?,
        },
        Command::Runs {
            run,
            profile,
            limit,
            items,
        } => console::print_runs(&hub, run.as_deref(), profile.as_deref(), limit, items).await?,
        Command::Explain {
            profile,
            record,
            field,
        } => console::print_explain(&hub, &profile, &record, field.as_deref()).await?,
        Command::Token(cmd) => token_command(&hub, cmd).await?,
        Command::Company(cmd) => company_command(&hub, cmd).await?,
        Command::Mailbox(cmd) => mailbox_command(&hub, cmd).await?,
        Command::Exchange(cmd) => exchange_cmd::run(&hub, cmd, &cli.global.ca_certs).await?,
        Command::EmailProfile(cmd) => dynamics_cmd::run_profile(&hub, cmd).await?,
        Command::Dynamics(cmd) => dynamics_cmd::run(&hub, cmd).await?,
        Command::Diagnose {
            profile,
            resource,
            json,
        } => diagnose_cmd::run(&hub, &profile, resource.as_deref(), json).await?,
    }
    Ok(())
}

/// The mail notifier of `syncbridge serve` when `SYNCBRIDGE_SMTP_URL` is set
/// (checked once, a failure only warned), with `--notify` as the fallback
/// recipients.
async fn notifier_from_env(
    args: &syncbridge::cli::ServeArgs,
    ca_certs: &[std::path::PathBuf],
) -> Result<
    Option<(
        Arc<dyn syncbridge::notify::Notifier>,
        Option<syncbridge::notify::Recipients>,
    )>,
> {
    let Some(mut settings) = syncbridge::notify::SmtpSettings::from_env()? else {
        if args.notify.is_some() {
            tracing::warn!("--notify is set but SYNCBRIDGE_SMTP_URL is not: no mail will be sent");
        }
        return Ok(None);
    };
    for path in ca_certs {
        settings.extra_ca_pems.push(
            std::fs::read(path)
                .with_context(|| format!("cannot read CA certificate {}", path.display()))?,
        );
    }
    let notifier = syncbridge::notify::SmtpNotifier::new(settings)?;
    let server = notifier.settings().server();
    match tokio::time::timeout(std::time::Duration::from_secs(10), notifier.check()).await {
        Ok(Ok(())) => tracing::info!(%server, "SMTP server accepts us: notices will be mailed"),
        Ok(Err(e)) => {
            tracing::warn!(%server, error = %e, "SMTP check failed; notices may not be delivered")
        }
        Err(_) => tracing::warn!(%server, "SMTP check timed out; notices may not be delivered"),
    }
    let fallback = args
        .notify
        .as_deref()
        .map(syncbridge::notify::Recipients::parse)
        .transpose()
        .context("--notify")?;
    Ok(Some((Arc::new(notifier), fallback)))
}

/// Starts the scheduler with this process's runner; returns its stop switch.
async fn start_scheduler(
    hub: Arc<Hub>,
    args: &syncbridge::cli::ServeArgs,
    mail: Option<(
        Arc<dyn syncbridge::notify::Notifier>,
        Option<syncbridge::notify::Recipients>,
    )>,
) -> Result<(
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
)> {
    let owner = format!(
        "serve-{}-{}",
        std::process::id(),
        syncbridge::control::new_id("p")
    );
    let mut runner =
        syncbridge::runner::Runner::new(hub.clone(), owner, std::time::Duration::from_secs(60));
    if let Some((notifier, fallback)) = mail {
        runner = runner.with_notifier(notifier, fallback);
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let store = hub.store().clone();
    let config = syncbridge::scheduler::SchedulerConfig {
        workers: args.workers.max(1),
        ..Default::default()
    };
    let task = tokio::spawn(syncbridge::scheduler::run(
        Arc::new(runner),
        store,
        config,
        async move {
            let _ = stopped.await;
        },
    ));
    Ok((stop, task))
}

/// wasmtime builds (and discards) internal errors on every instantiation;
/// with `RUST_BACKTRACE=1` each captures a backtrace, which costs a third of
/// an instantiation. Panics keep their backtraces; set `RUST_LIB_BACKTRACE=1`
/// to get library backtraces back.
fn disable_library_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: called first thing in `main`, before any other thread exists.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
}

async fn open_hub(global: &syncbridge::cli::Global) -> Result<Hub> {
    // It holds the database, the plugins and the compile cache: owner only.
    let tightened = syncbridge::owner_only::dir(&global.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {} or restrict it to its owner (mode 0700)",
            global.data_dir.display()
        )
    })?;
    if let Some(previous) = tightened {
        tracing::warn!(
            "data directory {} was open to other users (mode {previous:04o}); tightened it to 0700",
            global.data_dir.display()
        );
    }
    let url = match &global.database_url {
        Some(url) => url.clone(),
        None => format!(
            "sqlite://{}",
            global.data_dir.join("syncbridge.db").display()
        ),
    };
    let store = Store::open(&url).await?;
    let key_file = global
        .key_file
        .clone()
        .unwrap_or_else(|| global.data_dir.join("master.key"));
    let key = MasterKey::load_or_create(&key_file)?;
    let mut http = HttpSettings::default();
    for path in &global.ca_certs {
        http.extra_ca_pems.push(
            std::fs::read(path)
                .with_context(|| format!("cannot read CA certificate {}", path.display()))?,
        );
    }
    let runtime = Runtime::new(EngineOptions {
        cache_dir: Some(global.data_dir.join("cache")),
        http,
        ..EngineOptions::default()
    })?;
    Ok(Hub::new(
        store,
        Arc::new(runtime),
        key,
        global.data_dir.join("plugins"),
    ))
}

async fn install_all(hub: &Hub, dir: &std::path::Path) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read plugin directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("plugin.toml").exists())
        .collect();
    entries.sort();
    for path in entries {
        let record = hub.install_plugin(&path, None).await?;
        outln!(
            "installed {} {} ({})",
            record.id,
            record.version,
            &record.digest[..12]
        );
    }
    Ok(())
}

async fn plugin_command(hub: &Hub, cmd: PluginCommand) -> Result<()> {
    match cmd {
        PluginCommand::Install { path, sha256 } => {
            let r = hub.install_plugin(&path, sha256.as_deref()).await?;
            outln!(
                "installed {} {} ({}, WIT {}) sha256 {}",
                r.id,
                r.version,
                r.kind,
                r.wit_version,
                r.digest
            );
        }
        PluginCommand::List => {
            let plugins = hub.store().list_plugins().await?;
            if plugins.is_empty() {
                outln!("no plugins installed; install one with `syncbridge plugin install PATH`");
            }
            outln!(
                "{:<20} {:<10} {:<10} {:<16} {:<6} SHA256",
                "ID",
                "VERSION",
                "KIND",
                "VENDOR",
                "WIT"
            );
            for p in plugins {
                outln!(
                    "{:<20} {:<10} {:<10} {:<16} {:<6} {}",
                    p.id,
                    p.version,
                    p.kind,
                    p.vendor,
                    p.wit_version,
                    &p.digest[..16]
                );
            }
        }
        PluginCommand::Remove { id } => {
            hub.remove_plugin(&id).await?;
            outln!("removed {id}");
        }
    }
    Ok(())
}

async fn connection_command(hub: &Hub, cmd: ConnectionCommand) -> Result<()> {
    match cmd {
        ConnectionCommand::Add(args) => {
            let config = match &args.config_file {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                None => args.config.clone(),
            };
            let credentials_text =
                read_credentials_text(args.credentials_stdin, args.credentials_file.as_deref())?;
            let credentials = match credentials_text {
                Some(text) => parse_credentials(&text)?,
                None => BTreeMap::new(),
            };
            let new = NewConnection {
                id: args.name,
                plugin_id: args.plugin,
                config,
                allowed_hosts: args.allow_hosts,
                allow_private_network: args.allow_private_network,
                max_concurrent: args.max_concurrent,
                credentials,
            };
            let record = syncbridge::control::connections::create(
                hub,
                syncbridge::control::Actor::Msp,
                new,
                args.company.as_deref(),
            )
            .await?;
            outln!(
                "added connection {} (plugin {})",
                record.id,
                record.plugin_id
            );
            if record.allowed_hosts.is_empty() {
                outln!("note: no --allow-host given, so this connection can reach no host");
            }
        }
        ConnectionCommand::Update(args) => update_connection(hub, args).await?,
        ConnectionCommand::List => {
            outln!(
                "{:<24} {:<16} {:<8} ALLOWED HOSTS",
                "NAME",
                "PLUGIN",
                "PRIVATE"
            );
            for c in hub.store().list_connections().await? {
                let slots: Vec<String> = hub
                    .store()
                    .credentials(&c.id)
                    .await?
                    .into_iter()
                    .map(|s| format!("{}({})", s.slot, s.kind))
                    .collect();
                outln!(
                    "{:<24} {:<16} {:<8} {}  credentials: {}",
                    c.id,
                    c.plugin_id,
                    if c.allow_private_network { "yes" } else { "no" },
                    c.allowed_hosts.join(","),
                    if slots.is_empty() {
                        "none".to_owned()
                    } else {
                        slots.join(",")
                    }
                );
            }
        }
        ConnectionCommand::Test { name } => {
            let report = hub.test_connection(&name).await?;
            let mut failed = false;
            for f in report.config.iter() {
                failed |= print_finding(f);
            }
            match report.connection {
                Ok(findings) => {
                    for f in &findings {
                        failed |= print_finding(f);
                    }
                }
                Err(e) => {
                    outln!("FAILED   connection: {e}");
                    failed = true;
                }
            }
            if failed {
                bail!("connection {name} has failed checks; see the remedies above");
            }
        }
        ConnectionCommand::Remove { name } => {
            syncbridge::control::connections::remove(hub, &name).await?;
            outln!("removed connection {name}");
        }
    }
    Ok(())
}

/// Credentials JSON from standard input or a file, if either was named.
fn read_credentials_text(stdin: bool, file: Option<&std::path::Path>) -> Result<Option<String>> {
    if stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read credentials from standard input")?;
        Ok(Some(text))
    } else if let Some(path) = file {
        Ok(Some(std::fs::read_to_string(path).with_context(|| {
            format!("cannot read {}", path.display())
        })?))
    } else {
        Ok(None)
    }
}

async fn update_connection(hub: &Hub, args: UpdateConnection) -> Result<()> {
    use syncbridge::control::connections::{self, Actor, ConnectionChange};
    let config_text = match (&args.config, &args.config_file) {
        (Some(text), _) => Some(text.clone()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        ),
        (None, None) => None,
    };
    let config = config_text
        .map(|t| serde_json::from_str::<serde_json::Value>(&t))
        .transpose()
        .context("the configuration is not valid JSON")?;
    let mut credentials: BTreeMap<String, Option<Credential>> = BTreeMap::new();
    if let Some(text) =
        read_credentials_text(args.credentials_stdin, args.credentials_file.as_deref())?
    {
        for (slot, credential) in parse_credentials(&text)? {
            credentials.insert(slot, Some(credential));
        }
    }
    for slot in args.remove_credentials {
        if credentials.insert(slot.clone(), None).is_some() {
            bail!("credential slot {slot:?} is both set and removed; name it once");
        }
    }
    let allowed_hosts = if args.no_allowed_hosts {
        Some(Vec::new())
    } else if args.allow_hosts.is_empty() {
        None
    } else {
        Some(args.allow_hosts)
    };
    let max_concurrent = if args.plugin_limit {
        Some(None)
    } else {
        args.max_concurrent.map(Some)
    };
    let done = connections::update(
        hub,
        Actor::Msp,
        &args.name,
        ConnectionChange {
            config,
            allowed_hosts,
            allow_private_network: args.allow_private_network,
            max_concurrent,
            credentials,
            company_id: None,
        },
    )
    .await?;
    outln!("updated connection {}", done.record.id);
    if !done.credentials_changed.is_empty() {
        outln!(
            "credentials changed: {}",
            done.credentials_changed.join(", ")
        );
    }
    if !done.changed_server_settings.is_empty() {
        outln!(
            "server settings changed ({}): the next run of {} is a full re-sync",
            done.changed_server_settings.join(", "),
            if done.resync_profiles.is_empty() {
                "any profile using it".to_owned()
            } else {
                done.resync_profiles.join(", ")
            }
        );
    }
    Ok(())
}

async fn profile_command(hub: &Hub, cmd: ProfileCommand) -> Result<()> {
    use syncbridge::control::profiles::{self as service, NewProfile, ProfileChange};
    use syncbridge::control::Actor;
    match cmd {
        ProfileCommand::Add(a) => {
            let rules =
                serde_json::from_str(&a.rules).context("--rules is not a valid rules object")?;
            let new = NewProfile {
                profile: Profile {
                    id: a.name,
                    source_connection: a.source,
                    source_scope: a.source_scope,
                    mapper_plugin: a.mapper,
                    mapper_options: a.mapper_options,
                    target_connection: a.target,
                    target_scope: a.target_scope,
                    rules,
                    page_size: a.page_size,
                },
                settings: profiles::ProfileSettings {
                    company_id: a.company,
                    enabled: true,
                    interval_secs: a.every,
                    daily_at: a.daily,
                    unreadable_interval: None,
                },
            };
            let saved = service::create(hub, Actor::Msp, new, !a.no_run).await?;
            console::print_profile_saved(&saved);
        }
        ProfileCommand::List => console::print_profiles(&service::list(hub, Actor::Msp).await?),
        ProfileCommand::Show { name, json } => {
            let (profile, settings) = service::get(hub, Actor::Msp, &name).await?;
            if json {
                let out = syncbridge::api::profiles::ProfileOut::new(profile, settings);
                outln!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                console::print_profile(&profile, &settings);
            }
        }
        ProfileCommand::Update(u) => {
            let rules = u
                .rules
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .context("--rules is not a valid rules object")?;
            let change = ProfileChange {
                source_connection: u.source,
                source_scope: u.source_scope,
                mapper_plugin: u.mapper,
                mapper_options: u.mapper_options,
                target_connection: u.target,
                target_scope: u.target_scope,
                rules,
                page_size: u.page_size,
                enabled: u.enabled,
                interval_secs: cleared(u.no_every, u.every),
                daily_at: cleared(u.no_daily, u.daily),
                company_id: cleared(u.no_company, u.company),
            };
            let saved = service::update(hub, Actor::Msp, &u.name, change, !u.no_run).await?;
            console::print_profile_saved(&saved);
        }
        ProfileCommand::Remove { name } => {
            service::remove(hub, Actor::Msp, &name).await?;
            outln!("removed profile {name} with its links, cursors, plans and quarantine; what it wrote stays in the target");
        }
    }
    Ok(())
}

async fn quarantine_command(hub: &Hub, cmd: QuarantineCommand) -> Result<()> {
    use syncbridge::control::quarantine;
    match cmd {
        QuarantineCommand::List { profile } => {
            console::print_quarantine(&quarantine::list(hub.store(), profile.as_deref()).await?)
        }
        QuarantineCommand::Retry { profile, source_id } => {
            quarantine::retry(hub.store(), &profile, &source_id).await?;
            outln!("{source_id} of {profile} is retried on the profile's next run");
        }
        QuarantineCommand::Skip { profile, source_id } => {
            quarantine::skip(hub.store(), &profile, &source_id).await?;
            outln!("{source_id} of {profile} is skipped until the source brings it again");
        }
        QuarantineCommand::Relink {
            profile,
            source_id,
            target_id,
        } => {
            quarantine::relink(hub.store(), &profile, &source_id, &target_id).await?;
            outln!("{source_id} of {profile} now points at {target_id} (matched, not owned); retried on the next run");
        }
    }
    Ok(())
}

async fn conflicts_command(hub: &Hub, cmd: ConflictsCommand) -> Result<()> {
    use syncbridge::control::conflicts;
    use syncbridge::engine::merge::Side;
    match cmd {
        ConflictsCommand::List { profile } => {
            console::print_conflicts(&conflicts::list(hub.store(), profile.as_deref()).await?)
        }
        ConflictsCommand::Resolve {
            profile,
            source_id,
            field,
            winner,
        } => {
            let side = match winner {
                Winner::Source => Side::Source,
                Winner::Target => Side::Target,
            };
            conflicts::resolve(hub.store(), &profile, &source_id, &field, side).await?;
            outln!(
                "field {field} of {source_id} in {profile}: the {} value wins; the next run writes it to the other side",
                side.as_str()
            );
        }
    }
    Ok(())
}

/// A CLI change of an optional value: `--no-X` clears it, `--X V` sets it,
/// neither keeps it.
fn cleared<T>(clear: bool, value: Option<T>) -> Option<Option<T>> {
    match (clear, value) {
        (true, _) => Some(None),
        (false, Some(v)) => Some(Some(v)),
        (false, None) => None,
    }
}

fn print_finding(f: &Finding) -> bool {
    let (label, failed) = match f.outcome {
        Outcome::Ok => ("ok", false),
        Outcome::Warning => ("WARNING", false),
        Outcome::Failed => ("FAILED", true),
        Outcome::Skipped => ("skipped", false),
    };
    outln!("{label:<8} {}", f.check);
    if let Some(cause) = &f.cause {
        outln!("         cause:  {cause}");
    }
    if let Some(remedy) = &f.remedy {
        outln!("         remedy: {remedy}");
    }
    failed
}

fn parse_credentials(text: &str) -> Result<BTreeMap<String, Credential>> {
    let raw: BTreeMap<String, serde_json::Value> = serde_json::from_str(text).map_err(|e| {
        anyhow::anyhow!(
            "credentials are not a JSON object of slots (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    raw.into_iter()
        .map(|(slot, value)| {
            let cred = Credential::from_json(&value.to_string())
                .with_context(|| format!("credential slot {slot:?}"))?;
            Ok((slot, cred))
        })
        .collect()
}

async fn token_command(hub: &Hub, cmd: TokenCommand) -> Result<()> {
    use syncbridge::control::{companies, tokens};
    match cmd {
        TokenCommand::Create {
            name,
            role,
            company,
        } => {
            let role: tokens::Role = role.parse().map_err(anyhow::Error::msg)?;
            if let Some(c) = &company {
                companies::get(hub.store(), c)
                    .await
                    .with_context(|| format!("add it first with `syncbridge company add {c}`"))?;
            }
            let (info, token) =
                tokens::create(hub.store(), &name, role, company.as_deref()).await?;
            outln!(
                "created token {} ({}, {}{})",
                info.id,
                info.name,
                info.role.as_str(),
                info.company_id
                    .as_deref()
                    .map(|c| format!(", company {c}"))
                    .unwrap_or_default()
            );
            outln!("{token}");
            eprintln!(
                "store it now: it is shown only once (send it as `Authorization: Bearer <token>`)"
            );
        }
        TokenCommand::List => {
            outln!(
                "{:<20} {:<20} {:<9} {:<16} {:<8} LAST USED",
                "ID",
                "NAME",
                "ROLE",
                "COMPANY",
                "REVOKED"
            );
            for t in tokens::list(hub.store()).await? {
                outln!(
                    "{:<20} {:<20} {:<9} {:<16} {:<8} {}",
                    t.id,
                    t.name,
                    t.role.as_str(),
                    t.company_id.as_deref().unwrap_or("(all)"),
                    if t.revoked { "yes" } else { "no" },
                    t.last_used_at
                        .map(console::utc)
                        .unwrap_or_else(|| "never".into())
                );
            }
        }
        TokenCommand::Revoke { id } => {
            tokens::revoke(hub.store(), &id).await?;
            outln!("revoked token {id}");
        }
    }
    Ok(())
}

async fn company_command(hub: &Hub, cmd: CompanyCommand) -> Result<()> {
    use syncbridge::control::companies::{self, Company};
    fn recipients(notify: &str) -> Result<String> {
        let notify_to = notify.trim().to_owned();
        if !notify_to.is_empty() {
            syncbridge::notify::Recipients::parse(&notify_to)
                .context("--notify takes e-mail addresses separated by `;`")?;
        }
        Ok(notify_to)
    }
    fn zone(time_zone: &str) -> Result<String> {
        companies::check_time_zone(time_zone).context("--time-zone")
    }
    match cmd {
        CompanyCommand::Add {
            id,
            name,
            notify,
            time_zone,
        } => {
            syncbridge::ids::check_company_id(&id)?;
            let notify_to = recipients(&notify)?;
            let time_zone = match time_zone {
                Some(z) => zone(&z)?,
                None => match companies::get(hub.store(), &id).await {
                    Ok(existing) => existing.time_zone,
                    Err(syncbridge::store::StoreError::NotFound { .. }) => {
                        companies::DEFAULT_TIME_ZONE.to_owned()
                    }
                    Err(e) => return Err(e.into()),
                },
            };
            companies::save(
                hub.store(),
                &Company {
                    id: id.clone(),
                    name,
                    notify_to,
                    time_zone,
                },
            )
            .await?;
            outln!("saved company {id}");
        }
        CompanyCommand::Update {
            id,
            name,
            notify,
            time_zone,
        } => {
            let mut company = companies::get(hub.store(), &id).await?;
            if let Some(name) = name {
                anyhow::ensure!(!name.trim().is_empty(), "--name must not be empty");
                company.name = name;
            }
            if let Some(notify) = notify {
                company.notify_to = recipients(&notify)?;
            }
            if let Some(z) = time_zone {
                company.time_zone = zone(&z)?;
            }
            companies::save(hub.store(), &company).await?;
            outln!("saved company {id}");
        }
        CompanyCommand::List => {
            outln!("{:<20} {:<28} {:<20} NOTIFY", "ID", "NAME", "TIME ZONE");
            for c in companies::list(hub.store(), None).await? {
                outln!(
                    "{:<20} {:<28} {:<20} {}",
                    c.id,
                    c.name,
                    c.time_zone,
                    c.notify_to
                );
            }
        }
    }
    Ok(())
}

async fn mailbox_command(hub: &Hub, cmd: MailboxCommand) -> Result<()> {
    use syncbridge::control::mailboxes::{self, Mailbox, SettingsMode};
    fn show(m: &Mailbox) {
        outln!(
            "{:<40} {:<8} {:<9} {:<14} {}",
            m.id,
            if m.enabled { "enabled" } else { "disabled" },
            if m.approved { "approved" } else { "pending" },
            m.status,
            m.settings
        );
    }
    match cmd {
        MailboxCommand::List { connection } => {
            outln!(
                "{:<40} {:<8} {:<9} {:<14} SETTINGS",
                "ID",
                "ENABLED",
                "APPROVED",
                "STATUS"
            );
            for m in mailboxes::list(hub.store(), connection.as_deref(), None).await? {
                show(&m);
            }
        }
        MailboxCommand::Discover { connection } => {
            let d = mailboxes::discover(hub, &connection).await?;
            outln!(
                "{connection}: {} new mailbox(es) (disabled, awaiting approval), {} already known",
                d.new,
                d.known
            );
        }
        MailboxCommand::Enable { id } => {
            show(&mailboxes::set_enabled(hub.store(), &id, true).await?)
        }
        MailboxCommand::Disable { id } => {
            show(&mailboxes::set_enabled(hub.store(), &id, false).await?)
        }
        MailboxCommand::Approve { id } => show(&mailboxes::approve(hub.store(), &id).await?),
        MailboxCommand::Settings { id, json, merge } => {
            let settings: serde_json::Value = serde_json::from_str(&json)
                .context("--json takes a JSON object, e.g. '{\"sync_calendar\": true}'")?;
            if !settings.is_object() {
                bail!("--json takes a JSON object, e.g. '{{\"sync_calendar\": true}}'");
            }
            let mode = if merge {
                SettingsMode::Merge
            } else {
                SettingsMode::Replace
            };
            show(&mailboxes::set_settings(hub.store(), &id, &settings, mode).await?);
        }
    }
    Ok(())
}
