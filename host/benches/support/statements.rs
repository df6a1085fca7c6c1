//! Counts the SQL statements the store issues, by statement, from sqlx's `sqlx::query`
//! events. Turned on by an environment variable only: sqlx formats every statement it logs,
//! which costs CPU, so a counted cycle's CPU figures are not the bench's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Statement counts since the last [`Statements::take`], keyed by the statement's first line.
#[derive(Clone, Default)]
pub struct Statements(Arc<Mutex<BTreeMap<String, u64>>>);

impl Statements {
    /// Installs the counting layer as the process's subscriber when `var` is set, and answers
    /// the counter; `None` when it is not set.
    pub fn install_if(var: &str) -> Option<Self> {
        std::env::var_os(var)?;
        let counts = Self::default();
        tracing_subscriber::registry()
            .with(
                Counting(counts.clone()).with_filter(
                    tracing_subscriber::filter::Targets::new()
                        .with_target("sqlx::query", tracing::Level::TRACE),
                ),
            )
            .init();
        Some(counts)
    }

    /// The counts since the last call, most frequent first, and resets them.
    pub fn take(&self) -> Vec<(String, u64)> {
        let taken = std::mem::take(&mut *self.0.lock().unwrap());
        let mut v: Vec<(String, u64)> = taken.into_iter().collect();
        v.sort_by_key(|(k, n)| (std::cmp::Reverse(*n), k.clone()));
        v
    }
}

struct Counting(Statements);

impl<S: tracing::Subscriber> Layer<S> for Counting {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut statement = StatementField(None);
        event.record(&mut statement);
        let key = statement.0.unwrap_or_else(|| "(unnamed)".into());
        *self.0 .0.lock().unwrap().entry(key).or_default() += 1;
    }
}

/// The statement's text (`db.statement`), else sqlx's summary, cut to one short line.
struct StatementField(Option<String>);

impl Visit for StatementField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "db.statement" || (field.name() == "summary" && self.0.is_none()) {
            let one_line: String = value.split_whitespace().collect::<Vec<_>>().join(" ");
            self.0 = Some(one_line.chars().take(110).collect());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}
