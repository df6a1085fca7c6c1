//! What the end-to-end benches share: their knobs from the environment and their runtimes.

/// The unsigned integer in environment variable `name`, or `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A two-worker tokio runtime whose threads are named `name` (the benches tell the host's
/// CPU time from the in-process simulator's by thread name).
pub fn runtime(name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}
