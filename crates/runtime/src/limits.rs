//! Per-invocation memory ceiling that remembers whether it refused growth,
//! so an out-of-memory abort can be told apart from other traps.

/// A `ResourceLimiter` with a memory ceiling.
pub struct MemoryLimiter {
    max_bytes: usize,
    /// Set when a growth request was refused.
    pub denied: bool,
}

impl MemoryLimiter {
    /// A limiter allowing at most `max_bytes` of linear memory per memory.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            denied: false,
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_bytes && maximum.is_none_or(|m| desired <= m);
        if !allowed {
            self.denied = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000 && maximum.is_none_or(|m| desired <= m))
    }
}
