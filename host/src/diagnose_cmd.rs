//! `syncbridge diagnose PROFILE [--resource R] [--json]`: flow 1's
//! troubleshooting tree, run by `control::exchange_diagnose` (the call the
//! REST API's `POST /exchange-profiles/{id}/diagnose` makes), printed as a
//! table or as JSON. Exits 1 when a step failed.

use anyhow::{bail, Result};
use syncbridge::console::table;
use syncbridge::control::exchange_diagnose::{self, Diagnosis};
use syncbridge::control::Actor;
use syncbridge::hub::Hub;
use syncbridge::outln;

/// The finding's text column: what was found, or the cause and the remedy.
fn text(f: &exchange_diagnose::DiagnosisFinding) -> String {
    match (&f.cause, &f.remedy) {
        (Some(c), Some(r)) => format!("{c}\n→ {r}"),
        (Some(c), None) => c.clone(),
        (None, Some(r)) => format!("→ {r}"),
        (None, None) => f.detail.clone().unwrap_or_default(),
    }
}

fn print(d: &Diagnosis) {
    outln!(
        "exchange profile {} ({}, {}){}",
        d.profile,
        d.transport,
        if d.impersonation {
            "the account impersonates each user"
        } else {
            "each user's own credentials"
        },
        d.resource
            .as_deref()
            .map(|r| format!(", resource {r}"))
            .unwrap_or_default()
    );
    let mut t = table(["STEP", "CHECK", "OUTCOME", "FINDING"]);
    for f in &d.findings {
        t.add_row([
            format!("{} {}", f.step, f.step_name),
            f.check.clone(),
            f.outcome.clone(),
            text(f),
        ]);
    }
    outln!("{t}");
    outln!("{}", d.conclusion);
}

/// Runs the tree as the operator of the whole installation.
pub async fn run(hub: &Hub, profile: &str, resource: Option<&str>, json: bool) -> Result<()> {
    let d = exchange_diagnose::diagnose(hub, Actor::Msp, profile, resource).await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        print(&d);
    }
    if let (Some(step), Some(name)) = (d.stopped_at, &d.stopped_at_name) {
        bail!("the diagnosis of {profile} stopped at step {step} ({name})");
    }
    Ok(())
}
