//! The `log` facade, forwarded to the host's tracing.
//!
//! Call [`init`] once at the start of an export (the export macros do it), then
//! use `log::info!` and friends.

use crate::bindings::connector::syncbridge::plugin::log::Level;

struct HostLogger;

fn to_level(level: log::Level) -> Level {
    match level {
        log::Level::Error => Level::Error,
        log::Level::Warn => Level::Warn,
        log::Level::Info => Level::Info,
        log::Level::Debug => Level::Debug,
        log::Level::Trace => Level::Trace,
    }
}

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        enabled(to_level(metadata.level()))
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            emit(to_level(record.level()), &record.args().to_string());
        }
    }

    fn flush(&self) {}
}

static LOGGER: HostLogger = HostLogger;

/// Routes the `log` macros to the host. Safe to call more than once.
pub fn init() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
}

#[cfg(target_arch = "wasm32")]
fn enabled(level: Level) -> bool {
    crate::bindings::connector::syncbridge::plugin::log::enabled(level)
}

#[cfg(target_arch = "wasm32")]
fn emit(level: Level, message: &str) {
    crate::bindings::connector::syncbridge::plugin::log::log(level, message)
}

#[cfg(not(target_arch = "wasm32"))]
fn enabled(_level: Level) -> bool {
    true
}

#[cfg(not(target_arch = "wasm32"))]
fn emit(level: Level, message: &str) {
    eprintln!("[plugin {level:?}] {message}");
}
