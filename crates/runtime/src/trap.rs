//! Classifying why a plugin call failed at the wasm level.

use serde::Serialize;

/// Why a plugin call was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrapKind {
    /// It ran past its deadline (epoch interruption or the outer timeout).
    Timeout,
    /// It tried to grow memory past its limit.
    OutOfMemory,
    /// The Rust code panicked (or otherwise aborted through `unreachable`).
    Panic,
    /// Any other trap: bad memory access, stack overflow, a host call refused.
    Other,
}

impl TrapKind {
    /// Decides the kind from the wasmtime error and what the store observed.
    pub fn classify(error: &wasmtime::Error, memory_denied: bool, stderr: &str) -> Self {
        match error.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => TrapKind::Timeout,
            Some(wasmtime::Trap::UnreachableCodeReached) if memory_denied => TrapKind::OutOfMemory,
            Some(wasmtime::Trap::UnreachableCodeReached)
                if stderr.contains("memory allocation of") =>
            {
                TrapKind::OutOfMemory
            }
            Some(wasmtime::Trap::UnreachableCodeReached) => TrapKind::Panic,
            _ if memory_denied => TrapKind::OutOfMemory,
            _ => TrapKind::Other,
        }
    }

    /// Its name in metrics and serialised forms: `timeout`, `out-of-memory`,
    /// `panic`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrapKind::Timeout => "timeout",
            TrapKind::OutOfMemory => "out-of-memory",
            TrapKind::Panic => "panic",
            TrapKind::Other => "other",
        }
    }

    /// What an operator should do about it.
    pub fn remedy(self) -> &'static str {
        match self {
            TrapKind::Timeout => "the plugin ran past its call deadline; raise limits.call-timeout-ms or report a hang to its vendor",
            TrapKind::OutOfMemory => "the plugin exceeded its memory limit; raise limits.memory-mib or ask its vendor to page smaller",
            TrapKind::Panic => "the plugin crashed (panic); report it to its vendor with the log lines above",
            TrapKind::Other => "the plugin trapped; report it to its vendor with the log lines above",
        }
    }
}

impl std::fmt::Display for TrapKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TrapKind::Timeout => "timeout",
            TrapKind::OutOfMemory => "out of memory",
            TrapKind::Panic => "panic",
            TrapKind::Other => "trap",
        })
    }
}
