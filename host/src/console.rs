//! What the CLI prints for runs, plans and explanations: a progress bar
//! while a run applies, and tables after.

/// `println!` for the CLI's output: when stdout is a closed pipe
/// (`syncbridge runs | head -1`), the process ends quietly with the status
/// a process killed by SIGPIPE has (141), as other command-line tools do,
/// instead of panicking.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::console::write_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::console::write_line(format_args!($($arg)*))
    };
}

/// Writes one line to stdout; see [`outln!`].
pub fn write_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(141),
        Err(e) => {
            eprintln!("error: cannot write to standard output: {e}");
            std::process::exit(1)
        }
    }
}

use crate::control::plans;
use crate::control::profiles::ProfileSaved;
use crate::control::runs::{RunFilter, RunMode, RunRecord, RunStatus, Runs};
use crate::hub::Hub;
use crate::runner::{NoProgress, Progress, RunNow, Runner};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Arc;
use std::time::Duration;
use syncbridge_sync::explain::explain;
use syncbridge_sync::plan::PlanCounts;
use syncbridge_sync::profiles::{Profile, ProfileSettings};
use syncbridge_sync::Ledger;

/// A progress bar over the pages of a run.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn planned(&self, counts: &PlanCounts, pages: usize) {
        let writes =
            counts.create + counts.update + counts.deactivate + counts.reactivate + counts.delete;
        self.0.set_length(pages as u64);
        self.0.set_message(format!("{writes} writes planned"));
    }
    fn page_done(&self, _applied: u64, _failed: u64) {
        self.0.inc(1);
    }
}

/// Runs a profile in this process and prints the outcome. With
/// [`RunMode::ApplyPlan`], `plan_id` (a plan of `profile`) is claimed first,
/// as `POST /plans/{id}/apply` does.
pub async fn run_now(
    hub: Arc<Hub>,
    profile: &str,
    mode: RunMode,
    plan_id: Option<&str>,
    quiet: bool,
) -> Result<RunRecord> {
    let owner = format!("cli-{}", std::process::id());
    let runner = Runner::new(hub, owner, Duration::from_secs(30));
    let bar = if quiet {
        None
    } else {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:30}] page {pos}/{len} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message("planning");
        bar.enable_steady_tick(Duration::from_millis(120));
        Some(Bar(bar))
    };
    let progress: &dyn Progress = match &bar {
        Some(b) => b,
        None => &NoProgress,
    };
    let request = RunNow {
        profile,
        mode,
        plan: plan_id,
        trigger: "manual",
    };
    let done = runner.run_now(request, progress).await;
    if let Some(b) = bar {
        b.0.finish_and_clear();
    }
    let done = done?;
    print_run(&done);
    Ok(done)
}

fn counts_rows(c: &PlanCounts) -> Vec<(&'static str, u64)> {
    vec![
        ("create", c.create),
        ("update", c.update),
        ("deactivate", c.deactivate),
        ("reactivate", c.reactivate),
        ("delete", c.delete),
        ("link", c.link),
        ("unlink", c.unlink),
        ("write back", c.write_back),
        ("unchanged", c.noop),
    ]
}

/// Prints a finished run: a summary table and what to do next.
pub fn print_run(run: &RunRecord) {
    let summary = run.report.clone().unwrap_or_default();
    let report = &summary.report;
    outln!(
        "run {} of {} ({}, {})",
        run.id,
        run.profile_id,
        run.mode.as_str(),
        run.status.as_str()
    );
    let mut t = table(["ACTION", "ITEMS"]);
    for (name, n) in counts_rows(&report.planned) {
        t.add_row([name.to_owned(), n.to_string()]);
    }
    outln!("{t}");
    match run.status {
        RunStatus::Succeeded | RunStatus::Partial => {
            outln!(
                "\napplied {} · failed {} (quarantined, retried next run) · recovered {} · pages {}",
                report.applied,
                report.failed,
                report.recovered,
                report.pages
            );
            if !summary.differs_from_preview.is_empty() {
                outln!("\nDiffers from the preview before it:");
                for line in &summary.differs_from_preview {
                    outln!("  {line}");
                }
            }
        }
        RunStatus::Planned => outln!(
            "\ndry run: nothing was written. Plan {}: `syncbridge plan {0}` shows every change; `syncbridge run {} --apply {0}` applies exactly it.",
            run.plan_id.as_deref().unwrap_or("?"),
            run.profile_id
        ),
        RunStatus::Held => outln!(
            "\nHELD: {}\nNothing was written. Review `syncbridge plan {}`, then approve with `syncbridge run {} --apply {1}`.",
            report.held.as_deref().unwrap_or(""),
            run.plan_id.as_deref().unwrap_or("?"),
            run.profile_id
        ),
        RunStatus::Stale | RunStatus::Failed => outln!(
            "\n{}: {}",
            run.status.as_str().to_uppercase(),
            run.error.as_deref().unwrap_or("")
        ),
        RunStatus::Queued | RunStatus::Running | RunStatus::Cancelled => {}
    }
}

/// Prints a stored plan.
pub async fn print_plan(hub: &Hub, id: &str, all: bool) -> Result<()> {
    let info = plans::get(hub.store(), id).await?;
    outln!(
        "plan {} of {} (run {}): {}{}",
        info.id,
        info.profile_id,
        info.run_id,
        info.status,
        info.reason
            .as_deref()
            .map(|r| format!(" — {r}"))
            .unwrap_or_default()
    );
    let c = info.counts;
    outln!(
        "create {} · update {} · deactivate {} · reactivate {} · delete {} · link {} · unlink {} · write back {} · unchanged {}\n",
        c.create, c.update, c.deactivate, c.reactivate, c.delete, c.link, c.unlink, c.write_back, c.noop
    );
    for item in plans::items(hub.store(), id, !all, 0, 10_000).await? {
        let op = &item.op;
        outln!(
            "{:<11} {} -> {}   [{}]",
            op.action.as_str(),
            op.source_id,
            op.target_id.as_deref().unwrap_or("(new)"),
            op.decided
        );
        for ch in &op.changes {
            outln!(
                "              {}: {} -> {}",
                ch.field,
                value(ch.before.as_deref()),
                value(ch.after.as_deref())
            );
        }
    }
    if info.status.open() {
        outln!(
            "\napply exactly this plan: syncbridge run {} --apply {}",
            info.profile_id,
            info.id
        );
    }
    Ok(())
}

/// Lists runs or shows one.
pub async fn print_runs(
    hub: &Hub,
    run: Option<&str>,
    profile: Option<&str>,
    limit: u32,
    items: u32,
) -> Result<()> {
    let runs = Runs::new(hub.store().clone());
    if let Some(id) = run {
        let r = runs.get(id).await?;
        print_run(&r);
        return print_run_items(hub, id, items).await;
    }
    let mut t = table(["RUN", "PROFILE", "MODE", "TRIGGER", "STATUS", "STARTED"]);
    for r in runs
        .list(RunFilter {
            profile_id: profile,
            company_id: None,
            limit: Some(limit),
        })
        .await?
    {
        t.add_row([
            r.id.clone(),
            r.profile_id.clone(),
            r.mode.as_str().to_owned(),
            r.trigger.clone(),
            r.status.as_str().to_owned(),
            utc(r.started_at.unwrap_or(r.requested_at)),
        ]);
    }
    outln!("{t}");
    Ok(())
}

/// Prints the first `limit` item outcomes of a run.
async fn print_run_items(hub: &Hub, run: &str, limit: u32) -> Result<()> {
    let (entries, more) = Ledger::new(hub.store().clone())
        .run_entries(run, 0, limit)
        .await?;
    if entries.is_empty() {
        outln!("\nno item outcomes recorded (a dry run or held run records its plan: `syncbridge plan PLAN`)");
        return Ok(());
    }
    let mut t = table([
        "#",
        "PHASE",
        "ACTION",
        "SOURCE",
        "TARGET",
        "CHANGES / DETAIL",
    ]);
    for e in &entries {
        let mut what: Vec<String> = e
            .changes
            .iter()
            .map(|c| {
                format!(
                    "{}: {} -> {}",
                    c.field,
                    value(c.before.as_deref()),
                    value(c.after.as_deref())
                )
            })
            .collect();
        what.extend(e.detail.clone());
        t.add_row([
            e.seq.to_string(),
            e.phase.clone(),
            e.action.clone(),
            e.source_id.clone(),
            e.target_id.clone().unwrap_or_else(|| "-".into()),
            what.join("; "),
        ]);
    }
    outln!("\n{t}");
    if more {
        outln!("(first {limit} item outcomes; `--items N` shows more, GET /api/v1/runs/{run}?offset={limit} pages)");
    }
    Ok(())
}

/// Prints where a record's fields came from.
pub async fn print_explain(
    hub: &Hub,
    profile: &str,
    record: &str,
    field: Option<&str>,
) -> Result<()> {
    let e = explain(hub.store(), profile, record, field)
        .await
        .context("cannot explain that record")?;
    outln!(
        "{} -> {} ({}, {})",
        e.source_id,
        e.target_id,
        e.origin,
        if e.active { "active" } else { "inactive" }
    );
    for f in &e.fields {
        match (&f.system, &f.run_id) {
            (Some(system), Some(run)) => outln!(
                "  {} = {}: written from the {system} by run {run} (rule {})",
                f.field,
                value(f.value.as_deref()),
                f.rule.as_deref().unwrap_or("?")
            ),
            _ => outln!(
                "  {} = {}: the target's own value (found when matched; never written)",
                f.field,
                value(f.value.as_deref())
            ),
        }
        for h in &f.history {
            outln!(
                "      run {} {}: {} -> {}",
                h.run_id,
                h.action,
                value(h.before.as_deref()),
                value(h.after.as_deref())
            );
        }
    }
    Ok(())
}

/// Lists stored plans.
pub async fn print_plans(hub: &Hub, profile: Option<&str>) -> Result<()> {
    let mut t = table(["PLAN", "PROFILE", "STATUS", "WRITES", "CREATED", "REASON"]);
    for p in plans::list(hub.store(), profile).await? {
        let c = p.counts;
        t.add_row([
            p.id.clone(),
            p.profile_id.clone(),
            p.status.to_string(),
            (c.create + c.update + c.deactivate + c.reactivate + c.delete).to_string(),
            utc(p.created_at),
            p.reason.clone().unwrap_or_default(),
        ]);
    }
    outln!("{t}");
    Ok(())
}

/// Lists quarantined items.
pub fn print_quarantine(items: &[crate::control::quarantine::QuarantinedItem]) {
    let mut t = table(["PROFILE", "SOURCE", "CLASS", "ATTEMPTS", "SINCE", "ERROR"]);
    for q in items {
        t.add_row([
            q.profile_id.clone(),
            q.source_id.clone(),
            if q.skipped {
                format!("{} (skipped)", q.error_class)
            } else {
                q.error_class.clone()
            },
            q.attempts.to_string(),
            utc(q.at),
            q.error.clone(),
        ]);
    }
    outln!("{t}");
}

/// Lists alerts, open ones only unless `all`.
pub async fn print_alerts(hub: &Hub, all: bool) -> Result<()> {
    let mut t = table(["ALERT", "SEVERITY", "CODE", "AT", "MESSAGE"]);
    for a in crate::control::alerts::list(hub.store(), None, None, all).await? {
        let code = match a.resolved_at {
            Some(_) => format!("{} (resolved)", a.code),
            None => a.code.clone(),
        };
        t.add_row([
            a.id.clone(),
            a.severity.clone(),
            code,
            utc(a.at),
            a.message.clone(),
        ]);
    }
    outln!("{t}");
    Ok(())
}

/// Prints held conflicts.
pub fn print_conflicts(items: &[crate::control::conflicts::Conflict]) {
    let mut t = table([
        "PROFILE",
        "SOURCE ID",
        "FIELD",
        "AGREED",
        "SOURCE",
        "TARGET",
        "WHY",
        "RESOLUTION",
    ]);
    let v = |s: &Option<String>| s.clone().unwrap_or_else(|| "(blank)".into());
    for c in items {
        t.add_row([
            c.profile_id.clone(),
            c.source_id.clone(),
            c.field.clone(),
            v(&c.base),
            v(&c.source),
            v(&c.target),
            c.reason.clone(),
            c.resolution
                .map(|s| format!("{} wins (next run)", s.as_str()))
                .unwrap_or_else(|| "held".into()),
        ]);
    }
    outln!("{t}");
    if items.iter().any(|c| c.resolution.is_none()) {
        outln!("\nResolve one: syncbridge conflicts resolve PROFILE SOURCE_ID FIELD --winner source|target");
    }
}

/// Runs a dry run and prints its filter preview.
pub async fn preview(hub: Arc<Hub>, profile: &str) -> Result<()> {
    let run = run_now(hub.clone(), profile, RunMode::Preview, None, true).await?;
    let Some(plan) = run.plan_id.as_deref() else {
        anyhow::bail!(
            "the dry run stored no plan: {}",
            run.error.as_deref().unwrap_or("unknown error")
        );
    };
    let items = plans::items(hub.store(), plan, false, 0, 100_000).await?;
    outln!(
        "\n{:<34} {:<10} {:<28} {:<22} {:<18} WHY",
        "WHO",
        "ACTION",
        "FILTER",
        "SITE",
        "CONTACT TYPE"
    );
    for row in crate::control::preview::rows(&items) {
        outln!(
            "{:<34} {:<10} {:<28} {:<22} {:<18} {}",
            row.who.as_deref().unwrap_or(&row.source_id),
            row.action.as_str(),
            row.rule,
            row.site.as_deref().unwrap_or("-"),
            if row.contact_types.is_empty() {
                "-".to_owned()
            } else {
                row.contact_types.join(", ")
            },
            row.reason
        );
    }
    Ok(())
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Err(_) => format!("{ms} ms (out of range)"),
    }
}

/// A field value for people: quoted text, or `(none)`.
pub fn value(v: Option<&str>) -> String {
    match v {
        Some(text) => format!("\"{text}\""),
        None => "(none)".to_owned(),
    }
}

/// A table with the CLI's look: a header row, no borders, columns as wide
/// as their widest cell (measured in characters as shown, so wide ids and
/// non-ASCII names line up).
pub fn table<I, S>(header: I) -> comfy_table::Table
where
    I: IntoIterator<Item = S>,
    S: Into<comfy_table::Cell>,
{
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
        .set_header(header);
    t
}

/// Prints a saved profile and the run saving it queued.
pub fn print_profile_saved(saved: &ProfileSaved) {
    let p = &saved.profile;
    outln!(
        "saved profile {}: {} ({}) -> {} -> {} ({})",
        p.id,
        p.source_connection,
        p.source_scope,
        p.mapper_plugin,
        p.target_connection,
        p.target_scope
    );
    match &saved.queued_run {
        Some(run) => outln!(
            "queued run {} (a running `syncbridge serve` starts it within seconds; `syncbridge run {}` runs it here)",
            run.id, p.id
        ),
        None if !saved.settings.enabled => {
            outln!("scheduled runs are off (`syncbridge profile update {} --enabled true`)", p.id)
        }
        None => {}
    }
}

/// Prints profiles as a table.
pub fn print_profiles(profiles: &[(Profile, ProfileSettings)]) {
    let mut t = table(["NAME", "COMPANY", "SOURCE", "MAPPER", "TARGET", "SCHEDULE"]);
    for (p, s) in profiles {
        t.add_row([
            p.id.clone(),
            s.company_id.clone().unwrap_or_else(|| "-".into()),
            format!("{}:{}", p.source_connection, p.source_scope),
            p.mapper_plugin.clone(),
            format!("{}:{}", p.target_connection, p.target_scope),
            schedule(s),
        ]);
    }
    outln!("{t}");
}

fn schedule(s: &ProfileSettings) -> String {
    let mut parts = Vec::new();
    if let Some(n) = s.interval_secs {
        parts.push(format!("every {n} s"));
    }
    if let Some(at) = &s.daily_at {
        // Local time in the company's zone (`company list` shows it).
        match s.company_id {
            Some(_) => parts.push(format!("daily {at} company time")),
            None => parts.push(format!("daily {at} UTC")),
        }
    }
    if parts.is_empty() {
        parts.push("manual".into());
    }
    if !s.enabled {
        parts.push("(disabled)".into());
    }
    parts.join(", ")
}

/// Prints one profile.
pub fn print_profile(p: &Profile, s: &ProfileSettings) {
    let rules = serde_json::to_string_pretty(&p.rules).expect("rules serialise");
    let options = serde_json::from_str::<serde_json::Value>(&p.mapper_options)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| p.mapper_options.clone());
    let mut t = table(["", ""]);
    t.add_row(["profile", p.id.as_str()]);
    t.add_row(["company", s.company_id.as_deref().unwrap_or("-")]);
    t.add_row([
        "source",
        &format!("{} ({})", p.source_connection, p.source_scope),
    ]);
    t.add_row(["mapper", p.mapper_plugin.as_str()]);
    t.add_row([
        "target",
        &format!("{} ({})", p.target_connection, p.target_scope),
    ]);
    t.add_row(["page size", &p.page_size.to_string()]);
    t.add_row(["schedule", &schedule(s)]);
    if let Err(e) = s.validate(p) {
        t.add_row(["SCHEDULE ERROR", &e.to_string()]);
    }
    outln!("{t}");
    outln!("\nmapper options:\n{options}\n\nrules:\n{rules}");
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_times() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            super::utc(1_795_392_000_000 + 3_723_000),
            "2026-11-23 01:02:03 UTC"
        );
        assert_eq!(super::utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn values_are_shown_without_rust_syntax() {
        assert_eq!(super::value(Some("W.")), "\"W.\"");
        assert_eq!(super::value(None), "(none)");
    }
}
