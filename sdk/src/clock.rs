//! Wall-clock time from the host.

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::connector::syncbridge::plugin::clock::now_ms()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::now_ms()
    }
}
