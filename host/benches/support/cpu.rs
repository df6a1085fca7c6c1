//! CPU time of this process and of some of its threads, from `/proc` (Linux), for the
//! benches that report host CPU apart from an in-process simulator's.

/// utime + stime (seconds) from a `/proc/.../stat` line.
fn stat_cpu(stat: &str) -> f64 {
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// CPU seconds of the whole process.
#[allow(dead_code)] // not every bench splits threads out
pub fn process_seconds() -> f64 {
    stat_cpu(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default())
}

/// CPU seconds of the whole process and of its threads whose name starts with `prefix`.
#[allow(dead_code)] // not every bench splits threads out
pub fn process_and_threads(prefix: &str) -> (f64, f64) {
    let process = process_seconds();
    let mut threads = 0.0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if comm.trim_end().starts_with(prefix) {
                threads +=
                    stat_cpu(&std::fs::read_to_string(t.path().join("stat")).unwrap_or_default());
            }
        }
    }
    (process, threads)
}
