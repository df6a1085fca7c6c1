//! Start-up configuration of a [`crate::Simulator`].

use std::time::Duration;

use crate::error::SimError;
use crate::generate::GeneratorSpec;
use crate::seed::Seed;

/// Which simulated services are mounted on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Services {
    /// Microsoft Graph `/v1.0` plus the Entra token endpoint.
    pub graph: bool,
    /// Autotask REST `/ATServicesRest/V1.0`.
    pub autotask: bool,
    /// ConnectWise Manage `/v4_6_release/apis/3.0`.
    pub connectwise: bool,
    /// Exchange Web Services `/EWS/Exchange.asmx` and POX Autodiscover.
    pub ews: bool,
    /// Dynamics 365 Web API `/api/data/v9.2`.
    pub dynamics: bool,
}

impl Services {
    /// All five services.
    pub const ALL: Services = Services {
        graph: true,
        autotask: true,
        connectwise: true,
        ews: true,
        dynamics: true,
    };
    /// No service (enable them one by one).
    pub const NONE: Services = Services {
        graph: false,
        autotask: false,
        connectwise: false,
        ews: false,
        dynamics: false,
    };
}

impl Default for Services {
    fn default() -> Self {
        Services::ALL
    }
}

/// TLS mode of the listening socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Plain HTTP.
    #[default]
    Off,
    /// HTTPS with a leaf certificate issued by a freshly generated CA; clients can trust
    /// [`crate::Simulator::ca_pem`].
    GeneratedCa,
    /// HTTPS with a self-signed leaf certificate that no client should accept.
    SelfSigned,
}

/// Configuration of [`crate::Simulator::start`].
#[derive(Debug, Clone, Default)]
pub struct SimConfig {
    /// Services to mount.
    pub services: Services,
    /// Port to bind on 127.0.0.1; `0` (the default) picks an ephemeral port.
    pub port: u16,
    /// Latency added to every request of a simulated service.
    pub latency: Option<Duration>,
    /// Data loaded before the server starts.
    pub seed: Option<Seed>,
    /// Deterministic bulk data generated before the server starts (after `seed`).
    pub generate: Option<GeneratorSpec>,
    /// TLS mode.
    pub tls: TlsMode,
    /// Seed of the random generator used by rate-based faults (deterministic runs).
    pub rng_seed: u64,
}

impl SimConfig {
    /// All services, ephemeral port, no data.
    pub fn all() -> Self {
        SimConfig::default()
    }

    /// Only the given services.
    pub fn with_services(services: Services) -> Self {
        SimConfig {
            services,
            ..SimConfig::default()
        }
    }
}

/// Parses `50ms`, `2s`, `1.5s`, `250us` or a bare number of milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, SimError> {
    let t = s.trim();
    let err = || SimError::Duration(s.to_string());
    let (num, mul_us) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1_000.0)
    } else if let Some(n) = t.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1_000_000.0)
    } else {
        (t, 1_000.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| err())?;
    if !(v >= 0.0 && v.is_finite()) {
        return Err(err());
    }
    Ok(Duration::from_micros((v * mul_us) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("50ms").unwrap(), Duration::from_millis(50));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_millis(7));
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("-3ms").is_err());
    }
}
