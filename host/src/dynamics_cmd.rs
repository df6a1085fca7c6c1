//! `syncbridge email-profile …` and `syncbridge dynamics …`: flow 3's email
//! server profiles and a Dynamics organization's mailboxes, through
//! `control::email_server_profiles` and `control::dynamics_mailboxes` (the
//! same calls the REST API makes).

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::sync::Arc;
use syncbridge::cli::{DynamicsCommand, EmailProfileCommand};
use syncbridge::control::dynamics_flow;
use syncbridge::control::dynamics_mailboxes::{
    self as mailboxes, Delivery, DynamicsMailbox, MailboxEdit, TestsRun,
};
use syncbridge::control::email_server_profiles::{
    self as profiles, EmailServerProfile, EmailServerSettings, ProfileSecrets,
};
use syncbridge::control::Actor;
use syncbridge::hub::Hub;
use syncbridge::outln;
use syncbridge::secrets::SecretString;
use syncbridge::store::now_ms;

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn settings(path: &Path) -> Result<EmailServerSettings> {
    serde_json::from_str(&read(path)?).with_context(|| {
        format!(
            "{} is not an email server profile's settings (see `syncbridge email-profile add --help` for the fields)",
            path.display()
        )
    })
}

fn secret(path: Option<&Path>) -> Result<Option<SecretString>> {
    let Some(path) = path else { return Ok(None) };
    let text = read(path)?;
    let value = text.trim_end_matches(['\r', '\n']);
    if value.is_empty() {
        bail!("{} is empty; it must hold the secret", path.display());
    }
    Ok(Some(SecretString::new(value)))
}

fn delivery(v: Option<&str>) -> Option<Delivery> {
    v.map(|v| {
        if v == "none" {
            Delivery::None
        } else {
            Delivery::ServerSideSync
        }
    })
}

fn show_profile(p: &EmailServerProfile) {
    let s = &p.settings;
    outln!("id:                      {}", p.id);
    outln!("name:                    {}", s.name);
    outln!("description:             {}", s.description);
    outln!(
        "company:                 {}",
        p.company_id.as_deref().unwrap_or("-")
    );
    outln!("server type:             {:?}", s.server_type);
    if s.use_autodiscover {
        outln!(
            "locations:               autodiscover within {}",
            s.autodiscover_domains.join(", ")
        );
    } else {
        outln!(
            "incoming location:       {}",
            s.incoming_location.as_deref().unwrap_or("(default)")
        );
        outln!(
            "outgoing location:       {}",
            s.outgoing_location.as_deref().unwrap_or("(default)")
        );
    }
    outln!(
        "authenticate using:      {:?} {}",
        s.incoming.credentials,
        s.incoming.username.as_deref().unwrap_or("")
    );
    outln!("same for outgoing:       {}", s.same_settings_for_outgoing);
    outln!(
        "process email from:      {}",
        s.process_email_from.as_deref().unwrap_or("-")
    );
    outln!("min polling (minutes):   {}", s.min_polling_minutes);
    outln!("max connections:         {}", s.max_concurrent_connections);
    outln!(
        "failed to Undeliverable: {}",
        s.move_failed_to_undeliverable
    );
    outln!("connection:              {}", p.connection_id);
}

fn status(v: i64) -> &'static str {
    match v {
        1 => "Success",
        2 => "Failure",
        _ => "Not Run",
    }
}

fn show_mailboxes(list: &[DynamicsMailbox]) {
    outln!(
        "{:<40} {:<9} {:<8} {:<16} {:<8} {:<8} {:<8} {}",
        "MAILBOX",
        "APPROVED",
        "ENABLED",
        "PROFILE",
        "INCOMING",
        "OUTGOING",
        "ACT",
        "LAST ERROR"
    );
    for d in list {
        let m = &d.mailbox;
        let profile = m
            .settings
            .get("server_profile")
            .and_then(|v| v.as_str())
            .unwrap_or("-");
        let (i, o, a, err) = match &d.test {
            Some(t) => (
                status(t.incoming_status),
                status(t.outgoing_status),
                status(t.act_status),
                t.error_message.clone().unwrap_or_default(),
            ),
            None => ("Not Run", "Not Run", "Not Run", String::new()),
        };
        outln!(
            "{:<40} {:<9} {:<8} {:<16} {:<8} {:<8} {:<8} {}",
            m.id,
            m.approved,
            m.enabled,
            profile,
            i,
            o,
            a,
            err
        );
    }
}

/// Runs every due test now (the CLI's `--wait`), until none is due.
async fn run_tests_now(hub: &Arc<Hub>) -> Result<TestsRun> {
    let mut total = TestsRun::default();
    loop {
        let done = mailboxes::run_due(hub, now_ms(), 500).await?;
        if done.tested == 0 {
            break;
        }
        total.tested += done.tested;
        total.succeeded += done.succeeded;
        total.failed += done.failed;
        total.postponed += done.postponed;
        total.not_written += done.not_written;
    }
    Ok(total)
}

fn show_run(run: &TestsRun) {
    outln!(
        "tested {}: {} succeeded and enabled, {} failed and disabled, {} to be tried again in 5 minutes{}",
        run.tested,
        run.succeeded,
        run.failed,
        run.postponed,
        if run.not_written > 0 {
            format!(
                "; {} statuses not written to Dynamics (see the log)",
                run.not_written
            )
        } else {
            String::new()
        }
    );
    if run.processing > 0 {
        outln!(
            "{} processing profile(s) run now (syncbridge dynamics processing MAILBOX)",
            run.processing
        );
    }
    if run.mapper_missing {
        outln!("processing cannot start: the dynamics-exchange mapper is not installed (syncbridge plugin install target/plugins/dynamics-exchange), then test and enable the mailboxes again");
    }
}

/// `syncbridge email-profile …`.
pub async fn run_profile(hub: &Arc<Hub>, cmd: EmailProfileCommand) -> Result<()> {
    match cmd {
        EmailProfileCommand::List => {
            for p in profiles::list(hub, Actor::Msp).await? {
                outln!(
                    "{:<24} {:<16} {:<28} {}",
                    p.id,
                    format!("{:?}", p.settings.server_type),
                    p.settings.name,
                    p.connection_id
                );
            }
        }
        EmailProfileCommand::Show { id } => {
            show_profile(&profiles::get(hub, Actor::Msp, &id).await?)
        }
        EmailProfileCommand::Add {
            id,
            settings_file,
            secret_file,
            outgoing_secret_file,
            company,
        } => {
            let p = profiles::create(
                hub,
                Actor::Msp,
                &id,
                company.as_deref(),
                settings(&settings_file)?,
                ProfileSecrets {
                    incoming: secret(secret_file.as_deref())?,
                    outgoing: secret(outgoing_secret_file.as_deref())?,
                },
            )
            .await?;
            outln!("saved email server profile {}", p.id);
            show_profile(&p);
        }
        EmailProfileCommand::Update {
            id,
            settings_file,
            secret_file,
            outgoing_secret_file,
        } => {
            let p = profiles::update(
                hub,
                Actor::Msp,
                &id,
                settings(&settings_file)?,
                ProfileSecrets {
                    incoming: secret(secret_file.as_deref())?,
                    outgoing: secret(outgoing_secret_file.as_deref())?,
                },
            )
            .await?;
            outln!("saved email server profile {}", p.id);
            show_profile(&p);
        }
        EmailProfileCommand::Remove { id } => {
            profiles::remove(hub, Actor::Msp, &id).await?;
            outln!("removed email server profile {id} and its connection");
        }
        EmailProfileCommand::Credential {
            id,
            address,
            username,
            secret_file,
        } => {
            let s = secret(Some(&secret_file))?.expect("a file was given");
            profiles::set_mailbox_credential(hub, Actor::Msp, &id, &address, &username, s).await?;
            outln!("sealed the credentials of mailbox {address} in profile {id}");
        }
        EmailProfileCommand::Test { id, wait } => {
            let ids = mailboxes::test_profile(hub, Actor::Msp, &id).await?;
            outln!("scheduled Test & Enable of {} mailbox(es)", ids.len());
            if wait {
                show_run(&run_tests_now(hub).await?);
            }
        }
    }
    Ok(())
}

/// `syncbridge dynamics …`.
pub async fn run(hub: &Arc<Hub>, cmd: DynamicsCommand) -> Result<()> {
    match cmd {
        DynamicsCommand::Defaults {
            org,
            server_profile,
            incoming,
            outgoing,
            act,
            require_approval,
        } => {
            let mut d = mailboxes::defaults(hub, Actor::Msp, &org).await?;
            let changing = server_profile.is_some()
                || incoming.is_some()
                || outgoing.is_some()
                || act.is_some()
                || require_approval.is_some();
            if changing {
                if server_profile.is_some() {
                    d.server_profile = server_profile;
                }
                d.incoming = delivery(incoming.as_deref()).unwrap_or(d.incoming);
                d.outgoing = delivery(outgoing.as_deref()).unwrap_or(d.outgoing);
                d.act = delivery(act.as_deref()).unwrap_or(d.act);
                d.require_approval = require_approval.unwrap_or(d.require_approval);
                d = mailboxes::set_defaults(hub, Actor::Msp, &org, d).await?;
            }
            outln!(
                "server profile:                   {}",
                d.server_profile.as_deref().unwrap_or("-")
            );
            outln!("incoming email:                   {:?}", d.incoming);
            outln!("outgoing email:                   {:?}", d.outgoing);
            outln!("appointments, contacts and tasks: {:?}", d.act);
            outln!("only approved mailboxes:          {}", d.require_approval);
        }
        DynamicsCommand::Refresh { org } => {
            let r = mailboxes::refresh(hub, Actor::Msp, &org).await?;
            outln!(
                "read the mailboxes of {org}: {} new, {} known, {} approved in Dynamics",
                r.new,
                r.known,
                r.approved_in_dynamics
            );
        }
        DynamicsCommand::Mailboxes { org } => {
            show_mailboxes(&mailboxes::list(hub, Actor::Msp, &org).await?)
        }
        DynamicsCommand::ApplyDefaults { ids, no_test } => {
            let list = mailboxes::apply_defaults(hub, Actor::Msp, &ids, !no_test).await?;
            outln!(
                "applied the default email settings to {} mailbox(es)",
                list.len()
            );
            if !no_test {
                outln!("Test & Enable scheduled; `syncbridge serve` runs it, or `syncbridge dynamics test-enable --wait`");
            }
        }
        DynamicsCommand::Edit {
            ids,
            server_profile,
            incoming,
            outgoing,
            act,
            sync_from_this_org_only,
        } => {
            let edit = MailboxEdit {
                server_profile,
                incoming: delivery(incoming.as_deref()),
                outgoing: delivery(outgoing.as_deref()),
                act: delivery(act.as_deref()),
                sync_from_this_org_only,
            };
            let list = mailboxes::edit_many(hub, Actor::Msp, &ids, &edit).await?;
            show_mailboxes(&list);
        }
        DynamicsCommand::Approve { ids } => {
            let list = mailboxes::approve_many(hub, Actor::Msp, &ids).await?;
            outln!("approved email for {} mailbox(es)", list.len());
        }
        DynamicsCommand::Diagnose { id, json } => {
            let d = mailboxes::diagnose(hub, Actor::Msp, &id).await?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                outln!(
                    "mailbox {} ({}), profile {}",
                    d.mailbox_id,
                    d.address,
                    d.profile.as_deref().unwrap_or("-")
                );
                for e in &d.evidence {
                    outln!(
                        "  {:<8} {:<40} {}",
                        e.outcome,
                        e.check,
                        e.detail.as_deref().unwrap_or("")
                    );
                }
                outln!("{}", d.summary);
                if let Some(r) = &d.resolution {
                    outln!("resolution: {r}");
                }
            }
            if d.cause.is_some() {
                std::process::exit(1);
            }
        }
        DynamicsCommand::Processing { id, json } => {
            let list = dynamics_flow::processing(hub, Actor::Msp, &id).await?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                outln!("mailbox {id} processes nothing yet: it is processed once Test & Enable succeeds (syncbridge dynamics test-enable {id} --wait)");
            } else {
                for p in &list {
                    let every = p
                        .interval_secs
                        .map(|s| format!("every {} min", s / 60))
                        .unwrap_or_else(|| "-".into());
                    let last = p
                        .last_run
                        .as_ref()
                        .map(|r| format!("{} {}", r.id, r.status))
                        .unwrap_or_else(|| "never run".into());
                    outln!(
                        "{:<15} {:<9} {:<14} {}  (profile {})",
                        p.kind,
                        if p.enabled { "running" } else { "stopped" },
                        every,
                        last,
                        p.profile_id
                    );
                    if p.unmarked_sent > 0 {
                        outln!("  {} sent e-mail(s) not yet marked sent in Dynamics (tried after each run)", p.unmarked_sent);
                    }
                    for m in &p.undeliverable {
                        outln!("  moved to Undeliverable: {} ({})", m.message_id, m.error);
                    }
                }
            }
        }
        DynamicsCommand::TestEnable { ids, wait } => {
            mailboxes::test_and_enable(hub, Actor::Msp, &ids).await?;
            outln!("scheduled Test & Enable of {} mailbox(es)", ids.len());
            if wait {
                show_run(&run_tests_now(hub).await?);
                let mut shown = Vec::new();
                for id in &ids {
                    shown.push(mailboxes::get(hub, Actor::Msp, id).await?);
                }
                show_mailboxes(&shown);
            }
        }
    }
    Ok(())
}
