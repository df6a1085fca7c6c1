//! Flow 1's troubleshooting tree, run by the product: `syncbridge diagnose`
//! and `POST /exchange-profiles/{id}/diagnose` both call [`diagnose`].
//!
//! The tree is the MS Exchange Extension's
//! (`../shared/seeds/autotask-exchange-troubleshooting.txt`), step by step:
//!
//! 1. **General settings and save test**: the settings pass the save rules,
//!    and the connector's test with the synchronization account passes —
//!    host name resolves, port open, TLS chains to a trusted CA, the EWS
//!    endpoint answers (virtual directory), Autodiscover answers for the
//!    account's address, the account signs in (wrong password, MFA without an
//!    app password, Basic disabled) and its own mailbox opens.
//! 2. **Service account or individual credentials**: with "use these
//!    credentials for synchronizing individual user accounts" (impersonation)
//!    on to step 3, off straight to step 5.
//! 3. **Impersonation rights** of the account for each enabled resource's
//!    mailbox.
//! 4. **Try the other mode**: advice when step 3 failed (uncheck the box to
//!    rule out the account; the account must be a licensed user with a real
//!    mailbox).
//! 5. **Resource test connection**: each enabled resource's mailbox opened as
//!    the sync opens it (impersonated, or with that user's own credential).
//! 6. **Multi-factor authentication** of a resource whose own credential is
//!    refused: an app password, else the credentials are wrong (re-type them,
//!    test them with the Microsoft Remote Connectivity Analyzer).
//!
//! The diagnosis stops at the first step that fails, as the tree does; the
//! steps after it are `skipped`. Every check comes from the connector's own
//! test-connection (no host-side call to a customer's server): the
//! diagnosis runs it with the profile's stored configuration plus the
//! resources' mailboxes (`test_mailboxes`) and the server's Autodiscover
//! service (`autodiscover_url`), and nothing it runs is stored.

use super::exchange_profiles::{self as profiles, ExchangeError, ExchangeProfile};
use super::exchange_resources::{self as resources, Resource, ResourceError};
use super::Actor;
use crate::hub::Hub;
use serde::{Deserialize, Serialize};
use syncbridge_model::{Finding, Outcome};

/// The steps of the tree: number and name.
pub const STEPS: [(u8, &str); 6] = [
    (1, "general settings and save test"),
    (2, "service account or individual credentials"),
    (3, "impersonation rights"),
    (4, "try the other mode"),
    (5, "resource test connection"),
    (6, "multi-factor authentication"),
];

/// One check of the diagnosis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DiagnosisFinding {
    /// The tree step (1 to 6).
    pub step: u8,
    /// The step's name.
    pub step_name: String,
    /// What was checked, e.g. `credentials`, `tls`, `impersonation:ann@contoso.com`.
    pub check: String,
    /// ok | warning | failed | skipped
    pub outcome: String,
    /// What was found (for an `ok` or `skipped` check: what it means).
    pub detail: Option<String>,
    /// Why the check failed or warned.
    pub cause: Option<String>,
    /// What the operator does about it.
    pub remedy: Option<String>,
}

/// What the tree found for a profile (and optionally one resource).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Diagnosis {
    pub profile: String,
    /// The resource the diagnosis was limited to.
    pub resource: Option<String>,
    /// `ews` or `graph`.
    pub transport: String,
    /// The synchronization account impersonates each user (step 2).
    pub impersonation: bool,
    /// ok | warning | failed
    pub outcome: String,
    /// The step the tree stopped at (the first that failed), if any.
    pub stopped_at: Option<u8>,
    pub stopped_at_name: Option<String>,
    /// The conclusion in a sentence: what is wrong and what to do, or that all passed.
    pub conclusion: String,
    pub findings: Vec<DiagnosisFinding>,
}

impl Diagnosis {
    /// Whether a step failed.
    pub fn failed(&self) -> bool {
        self.stopped_at.is_some()
    }
}

/// Why a diagnosis could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum DiagnoseError {
    #[error(transparent)]
    Profile(#[from] ExchangeError),
    #[error(transparent)]
    Resource(#[from] ResourceError),
}

fn step_name(step: u8) -> &'static str {
    STEPS
        .iter()
        .find(|(n, _)| *n == step)
        .map(|(_, name)| *name)
        .unwrap_or("")
}

/// The findings under construction.
struct Tree {
    findings: Vec<DiagnosisFinding>,
}

impl Tree {
    fn push(
        &mut self,
        step: u8,
        check: impl Into<String>,
        outcome: Outcome,
        detail: Option<String>,
        cause: Option<String>,
        remedy: Option<String>,
    ) {
        self.findings.push(DiagnosisFinding {
            step,
            step_name: step_name(step).to_owned(),
            check: check.into(),
            outcome: outcome.as_str().to_owned(),
            detail,
            cause,
            remedy,
        });
    }

    fn ok(&mut self, step: u8, check: impl Into<String>, detail: impl Into<String>) {
        self.push(step, check, Outcome::Ok, Some(detail.into()), None, None);
    }

    fn skipped(&mut self, step: u8, detail: impl Into<String>) {
        self.push(
            step,
            "step",
            Outcome::Skipped,
            Some(detail.into()),
            None,
            None,
        );
    }

    fn failed(
        &mut self,
        step: u8,
        check: impl Into<String>,
        cause: impl Into<String>,
        remedy: impl Into<String>,
    ) {
        self.push(
            step,
            check,
            Outcome::Failed,
            None,
            Some(cause.into()),
            Some(remedy.into()),
        );
    }

    /// A connector finding under `step`.
    fn connector(&mut self, step: u8, f: &Finding) {
        let detail = (f.outcome == Outcome::Ok).then(|| ok_detail(&f.check));
        self.push(
            step,
            f.check.clone(),
            f.outcome,
            detail,
            f.cause.clone(),
            f.remedy.clone(),
        );
    }

    fn failed_in(&self, step: u8) -> bool {
        self.findings
            .iter()
            .any(|f| f.step == step && f.outcome == Outcome::Failed.as_str())
    }

    /// Marks the steps after `stop` as not reached and concludes.
    fn finish(
        mut self,
        p: &ExchangeProfile,
        resource: Option<&str>,
        stop: Option<u8>,
    ) -> Diagnosis {
        if let Some(stop) = stop {
            for (n, _) in STEPS.iter().filter(|(n, _)| *n > stop) {
                if !self.findings.iter().any(|f| f.step == *n) {
                    self.skipped(*n, format!("not reached: the tree stopped at step {stop}"));
                }
            }
        }
        self.findings.sort_by_key(|f| f.step);
        let warned = self
            .findings
            .iter()
            .any(|f| f.outcome == Outcome::Warning.as_str());
        let conclusion = match stop {
            Some(stop) => {
                let first = self
                    .findings
                    .iter()
                    .find(|f| f.step == stop && f.outcome == Outcome::Failed.as_str());
                match first {
                    Some(f) => format!(
                        "stopped at step {stop} ({}): {} — {}",
                        step_name(stop),
                        f.cause.as_deref().unwrap_or(&f.check),
                        f.remedy.as_deref().unwrap_or("see the findings")
                    ),
                    None => format!("stopped at step {stop} ({})", step_name(stop)),
                }
            }
            None if warned => "every step passed, with warnings (see them): the profile can synchronize".to_owned(),
            None => match resource {
                Some(r) => format!("every step passed: resource {r} is not experiencing a sync issue (test other resources the same way); if you changed the account's settings to get here, the account was misconfigured"),
                None => "every step passed: the server, the synchronization account and every enabled resource work; if you changed the account's settings to get here, the account was misconfigured".to_owned(),
            },
        };
        Diagnosis {
            profile: p.id.clone(),
            resource: resource.map(str::to_owned),
            transport: if p.settings.server.use_graph {
                "graph"
            } else {
                "ews"
            }
            .to_owned(),
            impersonation: p.settings.account.use_for_users,
            outcome: if stop.is_some() {
                Outcome::Failed
            } else if warned {
                Outcome::Warning
            } else {
                Outcome::Ok
            }
            .as_str()
            .to_owned(),
            stopped_at: stop,
            stopped_at_name: stop.map(|s| step_name(s).to_owned()),
            conclusion,
            findings: self.findings,
        }
    }
}

/// What an `ok` connector check means, in words.
fn ok_detail(check: &str) -> String {
    let (kind, who) = check.split_once(':').unwrap_or((check, ""));
    match kind {
        "config" => "the connection's configuration is valid".into(),
        "dns" => "the server's host name resolves".into(),
        "port" => "the server answers on its port".into(),
        "tls" => "the server's TLS certificate chains to a trusted certificate authority".into(),
        "endpoint" => "the EWS endpoint answers (address and virtual directory)".into(),
        "credentials" if who.is_empty() => "the synchronization account signs in".into(),
        "credentials" => format!("{who} signs in"),
        "autodiscover" => format!("Autodiscover answers for {who} with the EWS URL in use"),
        "impersonation" => format!("the account may impersonate {who}"),
        "mailbox" => format!("the mailbox {who} opens"),
        _ => format!("{check} passed"),
    }
}

/// The address part of a per-mailbox check (`kind:address`).
fn who(f: &Finding) -> Option<(&str, String)> {
    f.check
        .split_once(':')
        .map(|(k, w)| (k, w.trim().to_ascii_lowercase()))
}

/// The EWS configuration the diagnosis tests: the stored one, plus the
/// resources' mailboxes and the server's own Autodiscover service.
fn ews_test_config(p: &ExchangeProfile, stored: &str, mailboxes: &[String]) -> String {
    let mut config: serde_json::Value = serde_json::from_str(stored).unwrap_or_default();
    if config.get("autodiscover_url").is_none() {
        if let Ok((host, port)) = profiles::check_address(&p.settings.server.address) {
            let authority = match port {
                Some(port) => format!("{host}:{port}"),
                None => host,
            };
            config["autodiscover_url"] = serde_json::Value::String(format!(
                "https://{authority}/autodiscover/autodiscover.svc"
            ));
        }
    }
    config["test_mailboxes"] = serde_json::json!(mailboxes);
    config.to_string()
}

/// The Graph configuration the diagnosis tests: the stored one, plus the
/// resources' mailboxes (the app's right to each is Graph's impersonation).
fn graph_test_config(stored: &str, mailboxes: &[String]) -> String {
    let mut config: serde_json::Value = serde_json::from_str(stored).unwrap_or_default();
    config["test_mailboxes"] = serde_json::json!(mailboxes);
    config.to_string()
}

/// Runs the troubleshooting tree for `profile` (every enabled resource, or
/// only `resource`).
pub async fn diagnose(
    hub: &Hub,
    actor: Actor<'_>,
    profile: &str,
    resource: Option<&str>,
) -> Result<Diagnosis, DiagnoseError> {
    let p = profiles::get(hub, actor, profile).await?;
    let chosen: Vec<Resource> = match resource {
        Some(r) => {
            let one = resources::get(hub, actor, profile, r).await?;
            if !one.enabled {
                return Err(ResourceError::NotEnabled {
                    resource: r.to_owned(),
                }
                .into());
            }
            vec![one]
        }
        None => resources::list(hub, actor, profile)
            .await?
            .into_iter()
            .filter(|r| r.enabled)
            .collect(),
    };
    let mailboxes: Vec<String> = chosen
        .iter()
        .filter_map(|r| r.email.as_deref())
        .map(str::to_ascii_lowercase)
        .collect();
    let account = p.settings.account.mailbox.trim().to_ascii_lowercase();
    let impersonation = p.settings.account.use_for_users;
    let mut tree = Tree {
        findings: Vec::new(),
    };

    // Step 1: the general settings, and the save's test with the account.
    if let Err(e) = profiles::validate(&p.settings) {
        tree.failed(
            1,
            "settings",
            e.to_string(),
            "correct that field and save the profile again (see the configuration guide for on-premises, hosted and Exchange Online servers)",
        );
        return Ok(tree.finish(&p, resource, Some(1)));
    }
    tree.ok(1, "settings", "the general settings pass every save rule");
    let record = hub
        .store()
        .get_connection(&p.connection_id)
        .await
        .map_err(ExchangeError::from)?;
    // Without impersonation the users' mailboxes are tested with their own credentials
    // (`mailbox_credentials`), not opened by the account.
    let extra: &[String] = if impersonation { &mailboxes } else { &[] };
    let config = if p.settings.server.use_graph {
        graph_test_config(&record.config, extra)
    } else {
        ews_test_config(&p, &record.config, extra)
    };
    let report = hub
        .test_connection_as(&p.connection_id, &config)
        .await
        .map_err(ExchangeError::from)?;
    let checks = match &report.connection {
        Ok(found) => found.clone(),
        Err(e) => {
            tree.failed(
                1,
                "connection",
                format!("the connection test could not run: {e}"),
                "check the server address and that the server is reachable from syncbridge, then diagnose again",
            );
            return Ok(tree.finish(&p, resource, Some(1)));
        }
    };
    let mut per_mailbox: Vec<&Finding> = Vec::new();
    for f in report.config.iter().chain(&checks) {
        match who(f) {
            Some(("autodiscover", _)) => tree.connector(1, f),
            Some((kind, w)) if w == account && kind != "impersonation" => tree.connector(1, f),
            Some(_) => per_mailbox.push(f),
            None => tree.connector(1, f),
        }
    }
    if tree.failed_in(1) {
        return Ok(tree.finish(&p, resource, Some(1)));
    }

    // Step 2: the branch.
    if impersonation {
        tree.ok(
            2,
            "use_for_users",
            "the synchronization account's credentials are used for every user (it impersonates each mailbox): on to step 3",
        );
    } else {
        tree.ok(
            2,
            "use_for_users",
            "each user synchronizes with their own credentials: the tree skips to step 5",
        );
    }

    // Step 3: impersonation rights, step 4: the advice when they fail.
    if impersonation {
        let denied: Vec<&&Finding> = per_mailbox
            .iter()
            .filter(|f| {
                f.outcome == Outcome::Failed && who(f).is_some_and(|(k, _)| k == "impersonation")
            })
            .collect();
        if denied.is_empty() {
            let granted = per_mailbox
                .iter()
                .filter(|f| who(f).is_some_and(|(k, _)| k == "impersonation"))
                .count();
            tree.ok(
                3,
                "impersonation",
                format!("the account may impersonate the {granted} mailbox(es) tested"),
            );
            tree.skipped(
                4,
                "not needed: the account is configured correctly for impersonation",
            );
        } else {
            for f in denied {
                tree.connector(3, f);
            }
            tree.push(
                4,
                "other-mode",
                Outcome::Warning,
                None,
                Some("the synchronization account cannot act for every user yet".into()),
                Some(format!(
                    "once the impersonation right is granted, diagnose again; if it still fails, turn off \"use these credentials for synchronizing individual user accounts\" (account.use_for_users) and enter a user's own credential: if that user's test passes, the account or the Exchange configuration is at fault; or enter a different synchronization account — it must be a fully licensed user with a real mailbox ({} is the one in use)",
                    p.settings.account.mailbox.trim()
                )),
            );
            return Ok(tree.finish(&p, resource, Some(3)));
        }
    } else {
        tree.skipped(
            3,
            "individual credentials: no impersonation to check (the tree skips to step 5)",
        );
        tree.skipped(4, "individual credentials: the tree skips to step 5");
    }

    // Step 5: each resource's own test, step 6: MFA of a refused own credential.
    if chosen.is_empty() {
        tree.push(
            5,
            "resources",
            Outcome::Warning,
            None,
            Some("no resource of the profile is enabled, so no user's synchronization was tested".into()),
            Some("enable resources (syncbridge exchange enable PROFILE RESOURCE…), then diagnose again".into()),
        );
        tree.skipped(6, "no resource tested");
        return Ok(tree.finish(&p, resource, None));
    }
    let mut refused = Vec::new();
    for r in &chosen {
        let Some(email) = r.email.as_deref().map(str::to_ascii_lowercase) else {
            continue;
        };
        let check = format!("resource:{}", r.resource_id);
        let name = r.name.as_deref().unwrap_or(&r.resource_id);
        if !impersonation && !r.has_own_credential {
            tree.failed(
                5,
                check,
                format!("{name} ({email}) has no own credential entered, and the account does not impersonate users"),
                format!("enter the user's own user name and password (an app password with MFA): syncbridge exchange user-credential {} {} --credential-file FILE, or PUT /exchange-profiles/{}/resources/{}/credential", p.id, r.resource_id, p.id, r.resource_id),
            );
            continue;
        }
        let mine: Vec<&&Finding> = per_mailbox
            .iter()
            .filter(|f| who(f).is_some_and(|(_, w)| w == email))
            .collect();
        let failed = mine.iter().find(|f| f.outcome == Outcome::Failed);
        match (failed, mine.is_empty()) {
            (_, true) => tree.push(
                5,
                check,
                Outcome::Warning,
                None,
                Some(format!("the connector reported nothing for {email}")),
                Some("test the connection (syncbridge connection test) and diagnose again".into()),
            ),
            (None, false) => tree.ok(
                5,
                check,
                if impersonation {
                    format!("{name}'s mailbox {email} opens as the account impersonates it")
                } else {
                    format!(
                        "{name} ({email}) signs in with their own credential and the mailbox opens"
                    )
                },
            ),
            (Some(f), false) => {
                let sign_in = who(f).is_some_and(|(k, _)| k == "credentials");
                let remedy = if sign_in {
                    format!("type {name}'s user name, password and e-mail address again by hand (autofill and password managers can change them), then diagnose again; if it still fails, see step 6")
                } else {
                    f.remedy.clone().unwrap_or_default()
                };
                tree.failed(
                    5,
                    check,
                    format!(
                        "{name} ({email}): {}",
                        f.cause.as_deref().unwrap_or(&f.check)
                    ),
                    remedy,
                );
                if sign_in {
                    refused.push((r, name.to_owned(), email.clone()));
                }
            }
        }
    }
    if !tree.failed_in(5) {
        tree.skipped(6, "every tested resource signs in");
        return Ok(tree.finish(&p, resource, None));
    }
    if refused.is_empty() {
        tree.skipped(
            6,
            "no resource's own credential was refused (the failure above is not a sign-in)",
        );
        return Ok(tree.finish(&p, resource, Some(5)));
    }
    for (r, name, email) in refused {
        tree.failed(
            6,
            format!("mfa:{}", r.resource_id),
            format!("Exchange refuses {name}'s own credential ({email}): if {name} has multi-factor (two-factor) authentication, a password alone is refused"),
            format!("with MFA: create an app password for {name} and enter it as the credential's password (syncbridge exchange user-credential {} {} --credential-file FILE). Without MFA the user name or password is wrong: test them with the Microsoft Remote Connectivity Analyzer — if it cannot run, the combination is invalid; if it can, contact support", p.id, r.resource_id),
        );
    }
    Ok(tree.finish(&p, resource, Some(6)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_numbered_in_order() {
        for (i, (n, name)) in STEPS.iter().enumerate() {
            assert_eq!(usize::from(*n), i + 1);
            assert!(!name.is_empty());
        }
        assert_eq!(step_name(6), "multi-factor authentication");
    }
}
