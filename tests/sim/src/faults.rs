//! Fault injection: rules matched against request routes that answer with an error status, add
//! latency, corrupt the body or drop the connection.

use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::SimError;

/// What a matching [`FaultRule`] does to a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Successive matching requests answer with these statuses in order; `0` lets one request
    /// through unharmed. Once the list is exhausted the rule stops firing.
    Sequence {
        /// HTTP statuses, e.g. `[429, 429, 0]`.
        statuses: Vec<u16>,
    },
    /// Each matching request fails with `status` with probability `rate` (0.0..=1.0).
    Rate {
        /// HTTP status to answer with.
        status: u16,
        /// Probability in `0.0..=1.0`.
        rate: f64,
    },
    /// Adds latency to each matching request.
    Latency {
        /// Milliseconds to wait before answering.
        ms: u64,
    },
    /// The real answer is sent with a truncated, unparseable body.
    Malformed,
    /// The connection is dropped before a complete response is sent.
    Drop,
}

/// A fault rule. `route` is a case-insensitive glob (`*` matches anything, including `/`)
/// over the request path without query, e.g. `/v1.0/users*` or `*/contacts*`. It may start
/// with a method (`"GET /v1.0/users"`), or set [`FaultRule::method`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawFaultRule")]
pub struct FaultRule {
    /// Glob over the request path.
    pub route: String,
    /// Only requests with this method (any when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// What to do.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// `Retry-After` for 429/503 answers: seconds, may be decimal (`"2.128"`). Absent → `"1"`;
    /// empty string → no header at all (Graph sometimes omits it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
    /// Stop after this many firings (unlimited when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
}

impl FaultRule {
    /// A rule answering the next requests of `route` with `statuses` in order.
    pub fn sequence(route: &str, statuses: &[u16]) -> Self {
        Self::new(
            route,
            FaultKind::Sequence {
                statuses: statuses.to_vec(),
            },
        )
    }
    /// A rule failing a fraction `rate` of the requests of `route` with `status`.
    pub fn rate(route: &str, status: u16, rate: f64) -> Self {
        Self::new(route, FaultKind::Rate { status, rate })
    }
    /// A rule adding `ms` milliseconds to each request of `route`.
    pub fn latency(route: &str, ms: u64) -> Self {
        Self::new(route, FaultKind::Latency { ms })
    }
    /// A rule corrupting the response bodies of `route`.
    pub fn malformed(route: &str) -> Self {
        Self::new(route, FaultKind::Malformed)
    }
    /// A rule dropping the connections of `route`.
    pub fn drop_connection(route: &str) -> Self {
        Self::new(route, FaultKind::Drop)
    }
    fn new(route: &str, kind: FaultKind) -> Self {
        let (method, route) = match split_method(route) {
            Some((m, r)) => (Some(m), r),
            None => (None, route.to_string()),
        };
        FaultRule {
            route,
            method,
            kind,
            retry_after: None,
            times: None,
        }
    }

    /// The rule with a method prefix of `route` (`"GET /v1.0/users*"`) moved into `method`
    /// and the method upper-cased; refuses routes that could never match a request path and
    /// a prefix that contradicts `method`.
    pub fn normalized(mut self) -> Result<Self, SimError> {
        if let Some((m, r)) = split_method(&self.route) {
            if let Some(own) = &self.method {
                if !own.eq_ignore_ascii_case(&m) {
                    return Err(SimError::Fault(format!(
                        "route {:?} names method {m} but \"method\" is {own:?}",
                        self.route
                    )));
                }
            }
            self.method = Some(m);
            self.route = r;
        }
        if let Some(m) = &self.method {
            let up = m.to_ascii_uppercase();
            if !METHODS.contains(&up.as_str()) {
                return Err(SimError::Fault(format!("unknown method {m:?}")));
            }
            self.method = Some(up);
        }
        if !(self.route.starts_with('/') || self.route.starts_with('*')) {
            return Err(SimError::Fault(format!(
                "route {:?} must be a path glob starting with '/' or '*', optionally after a \
                 method (\"GET /v1.0/users*\")",
                self.route
            )));
        }
        Ok(self)
    }
    /// Sets the `Retry-After` value (see [`FaultRule::retry_after`]).
    pub fn with_retry_after(mut self, v: &str) -> Self {
        self.retry_after = Some(v.to_string());
        self
    }
    /// Limits the number of firings.
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    /// Checks the rule's values (see also [`FaultRule::normalized`]).
    pub fn validate(&self) -> Result<(), SimError> {
        match &self.kind {
            FaultKind::Rate { rate, status } if !(0.0..=1.0).contains(rate) || *status < 100 => {
                Err(SimError::Fault(format!(
                    "rate {rate} / status {status} out of range"
                )))
            }
            FaultKind::Sequence { statuses } if statuses.iter().any(|s| *s != 0 && *s < 100) => {
                Err(SimError::Fault("statuses must be 0 or >= 100".into()))
            }
            _ => Ok(()),
        }
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        if let Some(m) = &self.method {
            if !m.eq_ignore_ascii_case(method) {
                return false;
            }
        }
        glob_match(&self.route.to_ascii_lowercase(), &path.to_ascii_lowercase())
    }
}

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// `"GET /x"` → `("GET", "/x")` when the first word is an HTTP method (any case).
fn split_method(route: &str) -> Option<(String, String)> {
    let (m, r) = route.trim().split_once(char::is_whitespace)?;
    let up = m.to_ascii_uppercase();
    METHODS
        .contains(&up.as_str())
        .then(|| (up, r.trim().to_string()))
}

/// The JSON form of a rule: every field of every kind, unknown fields refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFaultRule {
    route: String,
    #[serde(default)]
    method: Option<String>,
    kind: String,
    #[serde(default)]
    statuses: Option<Vec<u16>>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    rate: Option<f64>,
    #[serde(default)]
    ms: Option<u64>,
    #[serde(default)]
    retry_after: Option<String>,
    #[serde(default)]
    times: Option<u64>,
}

impl TryFrom<RawFaultRule> for FaultRule {
    type Error = String;
    fn try_from(r: RawFaultRule) -> Result<Self, String> {
        let extra = |allowed: &[&str]| -> Result<(), String> {
            let given = [
                ("statuses", r.statuses.is_some()),
                ("status", r.status.is_some()),
                ("rate", r.rate.is_some()),
                ("ms", r.ms.is_some()),
            ];
            match given
                .iter()
                .find(|(name, set)| *set && !allowed.contains(name))
            {
                Some((name, _)) => Err(format!(
                    "field `{name}` does not belong to kind `{}`",
                    r.kind
                )),
                None => Ok(()),
            }
        };
        let need = |name: &str| format!("kind `{}` needs field `{name}`", r.kind);
        let kind = match r.kind.as_str() {
            "sequence" => {
                extra(&["statuses"])?;
                FaultKind::Sequence {
                    statuses: r.statuses.clone().ok_or_else(|| need("statuses"))?,
                }
            }
            "rate" => {
                extra(&["status", "rate"])?;
                FaultKind::Rate {
                    status: r.status.ok_or_else(|| need("status"))?,
                    rate: r.rate.ok_or_else(|| need("rate"))?,
                }
            }
            "latency" => {
                extra(&["ms"])?;
                FaultKind::Latency {
                    ms: r.ms.ok_or_else(|| need("ms"))?,
                }
            }
            "malformed" => {
                extra(&[])?;
                FaultKind::Malformed
            }
            "drop" => {
                extra(&[])?;
                FaultKind::Drop
            }
            k => {
                return Err(format!(
                    "unknown kind `{k}` (sequence, rate, latency, malformed, drop)"
                ))
            }
        };
        let rule = FaultRule {
            route: r.route,
            method: r.method,
            kind,
            retry_after: r.retry_after,
            times: r.times,
        }
        .normalized()
        .map_err(|e| e.to_string())?;
        rule.validate().map_err(|e| e.to_string())?;
        Ok(rule)
    }
}

/// Case-sensitive glob with `*` only.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// The combined effect of all rules matching one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultDecision {
    /// Answer with this status instead of the real answer.
    pub status: Option<u16>,
    /// `Retry-After` to send with `status` (None = no header).
    pub retry_after: Option<String>,
    /// Extra latency.
    pub latency: Duration,
    /// Corrupt the body.
    pub malformed: bool,
    /// Drop the connection.
    pub drop: bool,
}

struct ActiveRule {
    rule: FaultRule,
    fired: u64,
    position: usize,
}

/// Thread-safe list of active fault rules.
pub struct Faults {
    rules: Mutex<Vec<ActiveRule>>,
    rng: Mutex<StdRng>,
}

impl Faults {
    /// An empty rule list whose rate decisions come from a generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Faults {
            rules: Mutex::new(Vec::new()),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        }
    }

    /// Adds a rule (rules fire in insertion order; effects combine).
    pub fn add(&self, rule: FaultRule) -> Result<(), SimError> {
        let rule = rule.normalized()?;
        rule.validate()?;
        crate::util::lock(&self.rules).push(ActiveRule {
            rule,
            fired: 0,
            position: 0,
        });
        Ok(())
    }

    /// Removes every rule.
    pub fn clear(&self) {
        crate::util::lock(&self.rules).clear();
    }

    /// The active rules.
    pub fn list(&self) -> Vec<FaultRule> {
        crate::util::lock(&self.rules)
            .iter()
            .map(|r| r.rule.clone())
            .collect()
    }

    /// Evaluates the rules for one request (advancing sequences and counters).
    pub fn evaluate(&self, method: &str, path: &str) -> FaultDecision {
        let mut d = FaultDecision::default();
        let mut rules = crate::util::lock(&self.rules);
        for ar in rules.iter_mut() {
            if !ar.rule.matches(method, path) {
                continue;
            }
            if let Some(max) = ar.rule.times {
                if ar.fired >= max {
                    continue;
                }
            }
            let mut fired = true;
            match &ar.rule.kind {
                FaultKind::Sequence { statuses } => match statuses.get(ar.position) {
                    Some(s) => {
                        ar.position += 1;
                        if *s != 0 && d.status.is_none() {
                            d.status = Some(*s);
                            d.retry_after = retry_after_of(&ar.rule);
                        }
                    }
                    None => fired = false,
                },
                FaultKind::Rate { status, rate } => {
                    let roll: f64 = crate::util::lock(&self.rng).random();
                    if roll < *rate && d.status.is_none() {
                        d.status = Some(*status);
                        d.retry_after = retry_after_of(&ar.rule);
                    } else {
                        fired = false;
                    }
                }
                FaultKind::Latency { ms } => d.latency += Duration::from_millis(*ms),
                FaultKind::Malformed => d.malformed = true,
                FaultKind::Drop => d.drop = true,
            }
            if fired {
                ar.fired += 1;
            }
        }
        d
    }
}

fn retry_after_of(rule: &FaultRule) -> Option<String> {
    match &rule.retry_after {
        None => Some("1".to_string()),
        Some(s) if s.is_empty() => None,
        Some(s) => Some(s.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        assert!(glob_match("/v1.0/users*", "/v1.0/users/abc/events"));
        assert!(glob_match("*/contacts", "/x/y/contacts"));
        assert!(!glob_match("/v1.0/users", "/v1.0/users/x"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn sequence_then_pass() {
        let f = Faults::new(1);
        f.add(FaultRule::sequence("GET /a*", &[429, 0, 503]))
            .unwrap();
        assert_eq!(f.evaluate("GET", "/abc").status, Some(429));
        assert_eq!(f.evaluate("POST", "/abc").status, None);
        assert_eq!(f.evaluate("GET", "/abc").status, None);
        assert_eq!(f.evaluate("GET", "/abc").status, Some(503));
        assert_eq!(f.evaluate("GET", "/abc").status, None);
    }

    #[test]
    fn json_route_with_method_prefix_matches() {
        let rule: FaultRule = serde_json::from_str(
            r#"{"route": "GET /v1.0/users*", "kind": "sequence", "statuses": [429]}"#,
        )
        .unwrap();
        assert_eq!(rule.method.as_deref(), Some("GET"));
        let f = Faults::new(1);
        f.add(rule).unwrap();
        assert_eq!(f.evaluate("GET", "/v1.0/users/u1").status, Some(429));
    }

    #[test]
    fn rate_is_roughly_respected() {
        let f = Faults::new(7);
        f.add(FaultRule::rate("*", 500, 0.25)).unwrap();
        let n = (0..4000)
            .filter(|_| f.evaluate("GET", "/x").status.is_some())
            .count();
        assert!((800..1200).contains(&n), "{n}");
        assert!(FaultRule::rate("*", 500, 2.0).validate().is_err());
    }
}
