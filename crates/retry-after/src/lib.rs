//! The one `Retry-After` parser, shared by the host (429/503 answers of
//! outbound requests), the plugin SDK (which compiles to `wasm32-wasip2`) and
//! the simulators.
//!
//! RFC 9110 §10.2.3: the value is either delay-seconds (`120`) or an HTTP-date.
//! HTTP-dates are read with [`httpdate`], which accepts the IMF-fixdate form
//! (`Sun, 06 Nov 1994 08:49:37 GMT`) and the obsolete RFC 850
//! (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`)
//! forms recipients should accept.
//!
//! One leniency: delay-seconds with a decimal fraction (`2.128`) are accepted
//! and rounded up to the millisecond. The RFC allows only digits, but Microsoft
//! Graph answers with fractions in the wild and the simulators send them.
//! Anything else (signs, exponents, `inf`, text) is not a delay.

#![forbid(unsafe_code)]

use std::time::{Duration, SystemTime};

/// The longest delay this parser answers: larger values (and dates further
/// away) are capped here instead of overflowing. Callers cap it again with
/// their own longest wait.
pub const MAX_DELAY: Duration = Duration::from_millis(u64::MAX);

/// How long `value` asks to wait, counted from `now`: `None` when it is
/// neither delay-seconds nor an HTTP-date (never a panic), zero for a date
/// that is not in the future.
pub fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.starts_with(|c: char| c.is_ascii_digit()) {
        return parse_seconds(value);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_DELAY),
    )
}

/// `value` in milliseconds (saturating), the unit plugins report throttles in.
pub fn parse_ms(value: &str, now: SystemTime) -> Option<u64> {
    parse(value, now).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `DIGITS` or `DIGITS.DIGITS`, rounded up to the millisecond, saturating.
fn parse_seconds(value: &str) -> Option<Duration> {
    let (whole, fraction) = match value.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (value, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
        return None;
    }
    // Saturate: a number too large for u64 is "wait as long as allowed".
    let secs = whole.parse::<u64>().unwrap_or(u64::MAX);
    let mut ms = secs.saturating_mul(1000);
    if let Some(f) = fraction {
        let padded: String = f.chars().chain("000".chars()).take(3).collect();
        let mut frac_ms: u64 = padded.parse().expect("three digits");
        if f.len() > 3 && f.bytes().skip(3).any(|b| b != b'0') {
            frac_ms += 1;
        }
        ms = ms.saturating_add(frac_ms);
    }
    Some(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sun, 06 Nov 1994 08:49:37 GMT.
    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    fn ms(value: &str) -> Option<u64> {
        parse_ms(value, now())
    }

    #[test]
    fn delay_seconds() {
        assert_eq!(ms("0"), Some(0));
        assert_eq!(ms("120"), Some(120_000));
        assert_eq!(ms(" 3 "), Some(3_000));
        assert_eq!(ms("007"), Some(7_000));
    }

    #[test]
    fn decimal_seconds_are_accepted_and_rounded_up() {
        assert_eq!(ms("0.2"), Some(200));
        assert_eq!(ms("2.128"), Some(2128));
        assert_eq!(ms("1.5"), Some(1500));
        assert_eq!(ms("0.0001"), Some(1));
        assert_eq!(ms("1.2500"), Some(1250));
    }

    #[test]
    fn imf_fixdate() {
        assert_eq!(ms("Sun, 06 Nov 1994 08:50:07 GMT"), Some(30_000));
        assert_eq!(ms("Sun, 06 Nov 1994 09:49:37 GMT"), Some(3_600_000));
    }

    #[test]
    fn obsolete_rfc850_and_asctime_dates() {
        assert_eq!(ms("Sunday, 06-Nov-94 08:50:37 GMT"), Some(60_000));
        assert_eq!(ms("Sun Nov  6 08:51:37 1994"), Some(120_000));
    }

    #[test]
    fn a_date_in_the_past_or_now_is_no_wait() {
        assert_eq!(ms("Sun, 06 Nov 1994 08:49:37 GMT"), Some(0));
        assert_eq!(ms("Sat, 05 Nov 1994 08:49:37 GMT"), Some(0));
        assert_eq!(ms("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
    }

    #[test]
    fn far_future_saturates_instead_of_overflowing() {
        assert_eq!(ms("99999999999999999999999999"), Some(u64::MAX));
        assert_eq!(ms("18446744073709551615.999"), Some(u64::MAX));
        assert_eq!(parse("99999999999999999999999999", now()), Some(MAX_DELAY));
        let far = ms("Fri, 31 Dec 9999 23:59:59 GMT").expect("a date");
        assert!(far > 250_000_000_000_000, "{far}");
    }

    #[test]
    fn garbage_is_no_delay() {
        for v in [
            "",
            " ",
            "-1",
            "+5",
            "1e3",
            "inf",
            "NaN",
            "1.",
            ".5",
            "1.2.3",
            "5 seconds",
            "soon",
            "Sun, 06 Nov 1994 25:00:00 GMT",
            "Sun, 06 Nov 1994",
            "06 Nov 1994 08:49:37 GMT",
            "\u{1F600}",
        ] {
            assert_eq!(ms(v), None, "{v:?}");
        }
    }
}
