//! Prometheus metrics of one process: runs by profile and outcome, items by
//! action, item errors by class, plugin call durations and traps, outbound
//! requests and throttles per connection, and scheduler lag; rendered in the
//! text exposition format (0.0.4) for `GET /metrics`.
//!
//! One [`Metrics`] belongs to each [`crate::Runtime`] (one per
//! process) and is reached through it: no global recorder, so hubs in one
//! process (the tests) count on their own. Labels are bounded: profile,
//! connection and plugin ids, export names, fixed words and outbound host
//! names; never item ids, URLs or secrets.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Duration;

/// The `Content-Type` of [`Metrics::render`].
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    profile: String,
    mode: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunModeLabels {
    profile: String,
    mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ItemLabels {
    profile: String,
    action: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ItemErrorLabels {
    profile: String,
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    plugin: String,
    export: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TrapLabels {
    plugin: String,
    export: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboundLabels {
    connection: String,
    host: String,
    status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostLabels {
    connection: String,
    host: String,
}

/// How an item's write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Written, or linked without a write.
    Applied,
    /// Failed and quarantined.
    Failed,
}

impl ItemOutcome {
    fn as_str(self) -> &'static str {
        match self {
            ItemOutcome::Applied => "applied",
            ItemOutcome::Failed => "failed",
        }
    }
}

/// Seconds a whole run may take: half a second to two hours.
const RUN_BUCKETS: [f64; 12] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 7200.0,
];
/// Seconds one plugin call may take: milliseconds to its deadline.
const CALL_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Seconds a queued run may wait for a worker: one tick to an hour.
const LAG_BUCKETS: [f64; 12] = [
    0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0,
];

/// The metrics of one process; share it behind an `Arc`.
pub struct Metrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    run_duration: Histograms<RunModeLabels>,
    items: Family<ItemLabels, Counter>,
    item_errors: Family<ItemErrorLabels, Counter>,
    plugin_calls: Histograms<CallLabels>,
    plugin_traps: Family<TrapLabels, Counter>,
    outbound: Family<OutboundLabels, Counter>,
    throttles: Family<HostLabels, Counter>,
    scheduler_lag: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Every metric registered, all at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("syncbridge");
        let runs = Family::default();
        registry.register(
            "runs",
            "Runs recorded as ended, by profile, mode and status",
            runs.clone(),
        );
        let run_duration: Histograms<RunModeLabels> =
            Family::new_with_constructor(|| Histogram::new(RUN_BUCKETS));
        registry.register(
            "run_duration_seconds",
            "Wall time of ended runs, from start to recorded end",
            run_duration.clone(),
        );
        let items = Family::default();
        registry.register(
            "items",
            "Items applied or failed, by profile, planned action and outcome",
            items.clone(),
        );
        let item_errors = Family::default();
        registry.register(
            "item_errors",
            "Items that failed and went to quarantine, by profile and error class",
            item_errors.clone(),
        );
        let plugin_calls: Histograms<CallLabels> =
            Family::new_with_constructor(|| Histogram::new(CALL_BUCKETS));
        registry.register(
            "plugin_call_duration_seconds",
            "Duration of plugin calls, by plugin and export, trapped calls included",
            plugin_calls.clone(),
        );
        let plugin_traps = Family::default();
        registry.register(
            "plugin_traps",
            "Plugin calls stopped by a trap, by plugin, export and kind (timeout, out-of-memory, panic, other)",
            plugin_traps.clone(),
        );
        let outbound = Family::default();
        registry.register(
            "outbound_requests",
            "Outbound HTTP requests of plugins, by connection, host and status class (error: no response)",
            outbound.clone(),
        );
        let throttles = Family::default();
        registry.register(
            "outbound_throttles",
            "Outbound requests answered 429, or 503 with Retry-After, by connection and host",
            throttles.clone(),
        );
        let scheduler_lag = Histogram::new(LAG_BUCKETS);
        registry.register(
            "scheduler_lag_seconds",
            "How long a queued run waited, from its request until this process claimed it",
            scheduler_lag.clone(),
        );
        Self {
            registry,
            runs,
            run_duration,
            items,
            item_errors,
            plugin_calls,
            plugin_traps,
            outbound,
            throttles,
            scheduler_lag,
        }
    }

    /// A run was recorded as ended; `took` from its start, when it started.
    pub fn run_ended(
        &self,
        profile: &str,
        mode: &'static str,
        status: &'static str,
        took: Option<Duration>,
    ) {
        self.runs
            .get_or_create(&RunLabels {
                profile: profile.to_owned(),
                mode,
                status,
            })
            .inc();
        if let Some(took) = took {
            self.run_duration
                .get_or_create(&RunModeLabels {
                    profile: profile.to_owned(),
                    mode,
                })
                .observe(took.as_secs_f64());
        }
    }

    /// `count` items of `profile` planned as `action` ended as `outcome`.
    pub fn items(&self, profile: &str, action: &'static str, outcome: ItemOutcome, count: u64) {
        self.items
            .get_or_create(&ItemLabels {
                profile: profile.to_owned(),
                action,
                outcome: outcome.as_str(),
            })
            .inc_by(count);
    }

    /// `count` items of `profile` failed with error `class`.
    pub fn item_errors(&self, profile: &str, class: &str, count: u64) {
        self.item_errors
            .get_or_create(&ItemErrorLabels {
                profile: profile.to_owned(),
                class: class.to_owned(),
            })
            .inc_by(count);
    }

    /// A call of `export` of `plugin` took `took`, whatever its outcome.
    pub fn plugin_call(&self, plugin: &str, export: &'static str, took: Duration) {
        self.plugin_calls
            .get_or_create(&CallLabels {
                plugin: plugin.to_owned(),
                export,
            })
            .observe(took.as_secs_f64());
    }

    /// A call of `export` of `plugin` was stopped by a trap of `kind`.
    pub fn plugin_trap(&self, plugin: &str, export: &'static str, kind: &'static str) {
        self.plugin_traps
            .get_or_create(&TrapLabels {
                plugin: plugin.to_owned(),
                export,
                kind,
            })
            .inc();
    }

    /// An outbound request of `connection` to `host` was answered with
    /// `status`, or (`None`) got no answer.
    pub fn outbound(&self, connection: &str, host: &str, status: Option<u16>) {
        self.outbound
            .get_or_create(&OutboundLabels {
                connection: connection.to_owned(),
                host: host.to_owned(),
                status_class: status_class(status),
            })
            .inc();
    }

    /// `host` throttled an outbound request of `connection`.
    pub fn throttled(&self, connection: &str, host: &str) {
        self.throttles
            .get_or_create(&HostLabels {
                connection: connection.to_owned(),
                host: host.to_owned(),
            })
            .inc();
    }

    /// A queued run was claimed `lag` after it was requested.
    pub fn scheduler_lag(&self, lag: Duration) {
        self.scheduler_lag.observe(lag.as_secs_f64());
    }

    /// Everything, in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

fn status_class(status: Option<u16>) -> &'static str {
    match status {
        None => "error",
        Some(100..=199) => "1xx",
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        Some(_) => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_total_and_histograms_in_seconds() {
        let m = Metrics::new();
        m.run_ended("p", "run", "succeeded", Some(Duration::from_secs(3)));
        m.outbound("c", "example.com", Some(429));
        m.outbound("c", "example.com", None);
        m.throttled("c", "example.com");
        let text = m.render();
        for line in [
            "# TYPE syncbridge_runs_total counter",
            r#"syncbridge_runs_total{profile="p",mode="run",status="succeeded"} 1"#,
            "# TYPE syncbridge_run_duration_seconds histogram",
            r#"syncbridge_run_duration_seconds_bucket{profile="p",mode="run",le="5"} 1"#,
            r#"syncbridge_run_duration_seconds_count{profile="p",mode="run"} 1"#,
            r#"syncbridge_outbound_requests_total{connection="c",host="example.com",status_class="4xx"} 1"#,
            r#"syncbridge_outbound_requests_total{connection="c",host="example.com",status_class="error"} 1"#,
            r#"syncbridge_outbound_throttles_total{connection="c",host="example.com"} 1"#,
            "syncbridge_scheduler_lag_seconds_count 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn each_instance_counts_on_its_own() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.scheduler_lag(Duration::from_secs(1));
        assert!(a
            .render()
            .contains("syncbridge_scheduler_lag_seconds_count 1"));
        assert!(b
            .render()
            .contains("syncbridge_scheduler_lag_seconds_count 0"));
    }
}
