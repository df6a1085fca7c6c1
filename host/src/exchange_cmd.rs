//! `syncbridge exchange …`: flow 1's Exchange profiles and their resources,
//! through `control::exchange_profiles` and `control::exchange_resources`
//! (the same calls the REST API makes).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use syncbridge::cli::ExchangeCommand;
use syncbridge::control::exchange_notify;
use syncbridge::control::exchange_profiles::{
    self as profiles, ExchangeProfile, ExchangeSaved, ExchangeSettings, TestOutcome,
    PUBLIC_FOLDER_WARNING,
};
use syncbridge::control::exchange_resources::{
    self as resources, Resource, ResourceSettings, Selection,
};
use syncbridge::control::Actor;
use syncbridge::hub::Hub;
use syncbridge::notify::{SmtpNotifier, SmtpSettings};
use syncbridge::outln;
use syncbridge::secrets::{Credential, SecretString};

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn settings(path: &Path) -> Result<ExchangeSettings> {
    serde_json::from_str(&read(path)?).with_context(|| {
        format!(
            "{} is not a profile's settings (see `syncbridge exchange add --help` for the fields)",
            path.display()
        )
    })
}

fn secret(path: &Path) -> Result<SecretString> {
    let text = read(path)?;
    let value = text.trim_end_matches(['\r', '\n']);
    if value.is_empty() {
        bail!(
            "{} is empty; it must hold the account's secret",
            path.display()
        );
    }
    Ok(SecretString::new(value))
}

fn show_profile(p: &ExchangeProfile) {
    let s = &p.settings;
    outln!("id:                 {}", p.id);
    outln!("name:               {}", s.name);
    outln!(
        "company:            {}",
        p.company_id.as_deref().unwrap_or("-")
    );
    outln!("enabled:            {}", s.enabled);
    outln!(
        "server:             {} (version {}, virtual directory {}, domain {}, {}{})",
        s.server.address,
        s.server.version.as_str(),
        s.server.virtual_directory.as_deref().unwrap_or("default"),
        s.server.domain.as_deref().unwrap_or("-"),
        if s.server.use_graph {
            "Microsoft Graph"
        } else {
            "EWS"
        },
        if s.server.hosted_by_third_party {
            ", hosted by a third party"
        } else {
            ""
        }
    );
    outln!("interval:           every {} minutes", s.interval_minutes);
    outln!(
        "account:            {} ({}), mailbox {}, {}",
        s.account.username,
        match s.account.auth {
            profiles::AccountAuth::Basic => "basic",
            profiles::AccountAuth::Oauth => "oauth",
        },
        s.account.mailbox,
        if s.account.use_for_users {
            "impersonates each user"
        } else {
            "each user's own credentials"
        }
    );
    outln!(
        "notify:             {}",
        if s.notify_to.is_empty() {
            "-"
        } else {
            &s.notify_to
        }
    );
    outln!(
        "sync:               {}",
        serde_json::to_string(&s.sync).unwrap_or_default()
    );
    outln!("psa connection:     {}", s.psa_connection);
    outln!("connection:         {}", p.connection_id);
    if s.sync.public_folder_all_contacts {
        outln!("warning:            {PUBLIC_FOLDER_WARNING}");
    }
    if let Some(t) = &p.last_test {
        outln!("last test:          {:?}", t.outcome);
    }
}

/// The engine profiles the Exchange profile runs as (per resource and kind).
async fn show_flow(hub: &Hub, id: &str) -> Result<()> {
    let rows = syncbridge::control::exchange_flow::rows(hub, id).await?;
    if rows.is_empty() {
        outln!("engine profiles:    none yet (enable resources to synchronize them)");
        return Ok(());
    }
    outln!("engine profiles (`syncbridge run ID`, `syncbridge runs --profile ID`):");
    for r in rows {
        let settings = syncbridge::engine::profiles::settings(hub.store(), &r.profile_id).await?;
        outln!(
            "  {:<40} {:<15} resource {:<8} {}",
            r.profile_id,
            r.kind.as_str(),
            r.resource_id.as_deref().unwrap_or("-"),
            if settings.enabled {
                "enabled"
            } else {
                "disabled"
            }
        );
    }
    Ok(())
}

fn show_saved(saved: &ExchangeSaved) -> Result<()> {
    let p = &saved.profile;
    for f in &saved.test.findings {
        outln!(
            "  {:<8} {}{}{}",
            f.outcome,
            f.check,
            f.cause
                .as_deref()
                .map(|c| format!(": {c}"))
                .unwrap_or_default(),
            f.remedy
                .as_deref()
                .map(|r| format!(" → {r}"))
                .unwrap_or_default()
        );
    }
    if let Some(e) = &saved.test.error {
        outln!("  failed   connection: {e}");
    }
    if !saved.resync_fields.is_empty() {
        outln!(
            "{} changed: every item will be synchronized again",
            saved.resync_fields.join(", ")
        );
    }
    if p.settings.sync.public_folder_all_contacts {
        outln!("warning: {PUBLIC_FOLDER_WARNING}");
    }
    for run in &saved.queued_runs {
        outln!("queued run {} of {}", run.id, run.profile_id);
    }
    match saved.test.outcome {
        TestOutcome::Success => outln!("saved exchange profile {}: the connection works", p.id),
        TestOutcome::Warning => outln!("saved exchange profile {}: some items could not be validated (warnings above)", p.id),
        TestOutcome::Error => bail!("saved exchange profile {}, but the connection test failed (above); nothing synchronizes until a save passes", p.id),
    }
    if !p.settings.enabled {
        outln!("the profile is disabled: nothing synchronizes until it is enabled");
    }
    Ok(())
}

fn show_resource(r: &Resource) {
    outln!(
        "{:<12} {:<24} {:<30} {:<8} {:<14} {:<14} {}",
        r.resource_id,
        r.name.as_deref().unwrap_or("-"),
        r.email.as_deref().unwrap_or("-"),
        r.enabled,
        r.status.as_deref().unwrap_or("-"),
        r.last_attempted_at
            .map(|t| t.to_string())
            .unwrap_or_else(|| "N/A".into()),
        r.settings
            .map(|s| serde_json::to_string(&s).unwrap_or_default())
            .unwrap_or_default()
    );
}

fn which(all: bool, ids: Vec<String>) -> Selection {
    if all {
        Selection::All
    } else {
        Selection::Ids(ids)
    }
}

/// The SMTP notifier of `SYNCBRIDGE_SMTP_*`, if mail is configured.
fn smtp(ca_certs: &[PathBuf]) -> Result<Option<SmtpNotifier>> {
    let Some(mut settings) = SmtpSettings::from_env()? else {
        return Ok(None);
    };
    for path in ca_certs {
        settings.extra_ca_pems.push(
            std::fs::read(path)
                .with_context(|| format!("cannot read CA certificate {}", path.display()))?,
        );
    }
    Ok(Some(SmtpNotifier::new(settings)?))
}

/// Runs one `exchange` command as the operator of the whole installation.
pub async fn run(hub: &Hub, cmd: ExchangeCommand, ca_certs: &[PathBuf]) -> Result<()> {
    let me = Actor::Msp;
    match cmd {
        ExchangeCommand::List => {
            outln!(
                "{:<24} {:<8} {:<30} {:<9} LAST TEST",
                "ID",
                "ENABLED",
                "SERVER",
                "INTERVAL"
            );
            for p in profiles::list(hub, me).await? {
                outln!(
                    "{:<24} {:<8} {:<30} {:<9} {}",
                    p.id,
                    p.settings.enabled,
                    p.settings.server.address,
                    format!("{}m", p.settings.interval_minutes),
                    p.last_test
                        .map(|t| format!("{:?}", t.outcome).to_lowercase())
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
        ExchangeCommand::Show { id } => {
            show_profile(&profiles::get(hub, me, &id).await?);
            show_flow(hub, &id).await?;
        }
        ExchangeCommand::Add {
            id,
            settings_file,
            secret_file,
            company,
        } => {
            let saved = profiles::create(
                hub,
                me,
                &id,
                company.as_deref(),
                settings(&settings_file)?,
                Some(secret(&secret_file)?),
            )
            .await?;
            show_saved(&saved)?;
        }
        ExchangeCommand::Update {
            id,
            settings_file,
            secret_file,
        } => {
            let secret = secret_file.as_deref().map(secret).transpose()?;
            let saved = profiles::update(hub, me, &id, settings(&settings_file)?, secret).await?;
            show_saved(&saved)?;
        }
        ExchangeCommand::Remove { id } => {
            profiles::remove(hub, me, &id).await?;
            outln!("removed exchange profile {id} with its resources and connection");
        }
        ExchangeCommand::Resources { id } => {
            outln!(
                "{:<12} {:<24} {:<30} {:<8} {:<14} {:<14} SETTINGS",
                "RESOURCE",
                "NAME",
                "E-MAIL",
                "ENABLED",
                "STATUS",
                "LAST ATTEMPT"
            );
            for r in resources::list(hub, me, &id).await? {
                show_resource(&r);
            }
        }
        ExchangeCommand::Discover { id } => {
            let f = resources::discover(hub, me, &id).await?;
            outln!(
                "{id}: {} new resource(s) (disabled), {} already known",
                f.new,
                f.known
            );
        }
        ExchangeCommand::Enable {
            id,
            resources: ids,
            all,
        } => {
            let notifier = smtp(ca_certs)?;
            let enabled = exchange_notify::enable_and_confirm(
                hub,
                me,
                &id,
                &which(all, ids),
                notifier
                    .as_ref()
                    .map(|n| n as &dyn syncbridge::notify::Notifier),
            )
            .await?;
            for r in &enabled.resources {
                show_resource(r);
            }
            outln!("enabled {} resource(s)", enabled.resources.len());
            match enabled.mailed {
                Some(Ok(sent)) if !enabled.resources.is_empty() => {
                    outln!("mailed {sent} confirmation(s) with how to customise the settings")
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None if enabled.resources.is_empty() => {}
                None => outln!("no confirmation mailed: SYNCBRIDGE_SMTP_URL is not set (docs/notifications.md)"),
            }
        }
        ExchangeCommand::Disable {
            id,
            resources: ids,
            all,
        } => {
            let done = resources::disable(hub, me, &id, &which(all, ids)).await?;
            outln!("disabled {} resource(s)", done.len());
        }
        ExchangeCommand::ResourceSettings { id, resource, json } => {
            let s: ResourceSettings = serde_json::from_str(&json).context(
                "--json takes the resource's toggles: psa_appointments_to_exchange, exchange_appointments_to_psa, contacts, service_calls, todos (each true or false)",
            )?;
            show_resource(&resources::set_settings(hub, me, &id, &resource, s).await?);
        }
        ExchangeCommand::UserCredential {
            id,
            resource,
            credential_file,
        } => {
            let credential = Credential::from_json(&read(&credential_file)?)
                .context("the credential file is not a credential, e.g. {\"kind\": \"basic\", \"username\": \"...\", \"password\": \"...\"}")?;
            resources::set_own_credential(hub, me, &id, &resource, credential).await?;
            outln!("sealed the own credential of resource {resource}; it is never shown");
        }
    }
    Ok(())
}
