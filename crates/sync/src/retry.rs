//! What the error classes make the engine do on a call: wait out
//! `throttled`, back off and retry `transient` (with jitter, within a budget),
//! and hand everything else back at once.

use super::endpoint::EndpointError;
use rand::Rng;
use std::future::Future;
use std::time::Duration;
use syncbridge_model::PluginError;

/// Retry budget of one call.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// First backoff of a transient failure; doubles each time.
    pub base: Duration,
    /// Longest single wait (also caps `Retry-After`).
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base: Duration::from_millis(500),
            max_wait: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// How long to wait before attempt `attempt + 1` after `error`, or `None` to give up.
    pub fn wait(&self, attempt: u32, error: &EndpointError) -> Option<Duration> {
        if attempt + 1 >= self.attempts {
            return None;
        }
        match error {
            EndpointError::Plugin(PluginError::Throttled(t)) => {
                let wait = t
                    .retry_after_ms
                    .map(Duration::from_millis)
                    .unwrap_or(self.base * 2u32.pow(attempt));
                Some(wait.min(self.max_wait))
            }
            EndpointError::Plugin(PluginError::Transient(_)) => {
                let backoff = self
                    .base
                    .saturating_mul(2u32.saturating_pow(attempt))
                    .min(self.max_wait);
                // Full jitter: anywhere between half and all of the backoff.
                let jitter = rand::thread_rng().gen_range(0.5..=1.0);
                Some(backoff.mul_f64(jitter))
            }
            _ => None,
        }
    }

    /// Runs `call` until it succeeds, fails for good, or the budget is spent.
    pub async fn run<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T, EndpointError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, EndpointError>>,
    {
        let mut attempt = 0;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) => match self.wait(attempt, &e) {
                    Some(wait) => {
                        tracing::info!(call = what, attempt = attempt + 1, wait_ms = wait.as_millis() as u64, error = %e, "retrying");
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                    None => return Err(e),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syncbridge_model::Throttle;

    #[test]
    fn throttled_waits_retry_after_and_transient_backs_off() {
        let p = RetryPolicy::default();
        let throttled = EndpointError::Plugin(PluginError::Throttled(Throttle {
            retry_after_ms: Some(2128),
            message: String::new(),
        }));
        assert_eq!(p.wait(0, &throttled), Some(Duration::from_millis(2128)));
        let transient = EndpointError::Plugin(PluginError::Transient("x".into()));
        let w0 = p.wait(0, &transient).unwrap();
        let w2 = p.wait(2, &transient).unwrap();
        assert!(
            w0 >= Duration::from_millis(250) && w0 <= Duration::from_millis(500),
            "{w0:?}"
        );
        assert!(
            w2 >= Duration::from_millis(1000) && w2 <= Duration::from_millis(2000),
            "{w2:?}"
        );
        assert_eq!(p.wait(4, &transient), None, "budget spent");
        assert_eq!(
            p.wait(0, &EndpointError::Plugin(PluginError::Auth("no".into()))),
            None
        );
    }

    #[tokio::test]
    async fn run_retries_until_success() {
        let mut calls = 0;
        let p = RetryPolicy {
            base: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        let out = p
            .run("test", || {
                calls += 1;
                let n = calls;
                async move {
                    if n < 3 {
                        Err(EndpointError::Plugin(PluginError::Transient(
                            "flaky".into(),
                        )))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await
            .unwrap();
        assert_eq!(out, 3);
    }
}
