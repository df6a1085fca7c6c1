//! Date-times: Dataverse's `modifiedon` marks (UTC, `…Z`) and the RFC 3339 times of messages.

/// Splits an RFC 3339 date-time into its `YYYY-MM-DDTHH:MM:SS` part, its fraction in
/// nanoseconds and its zone (`Z` or `±HH:MM`); none when `s` is not one.
fn parts(s: &str) -> Option<(&str, u32, &str)> {
    let b = s.as_bytes();
    if b.len() < 20 || !s.is_ascii() {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().ok();
    let shape = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape
        || !(1..=12).contains(&num(5..7)?)
        || !(1..=31).contains(&num(8..10)?)
        || num(11..13)? > 23
        || num(14..16)? > 59
        || num(17..19)? > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if !(1..=9).contains(&n) {
            return None;
        }
        nanos = format!("{:0<9}", &frac[..n]).parse().ok()?;
        rest = &frac[n..];
    }
    let zone_ok = rest == "Z"
        || (rest.len() == 6
            && matches!(rest.as_bytes()[0], b'+' | b'-')
            && rest.as_bytes()[3] == b':'
            && rest[1..3].bytes().all(|c| c.is_ascii_digit())
            && rest[4..6].bytes().all(|c| c.is_ascii_digit()));
    zone_ok.then_some((&s[..19], nanos, rest))
}

/// The ordering key of a UTC date-time as Dataverse writes it (`2026-01-02T03:04:05Z`, a
/// fraction allowed): its seconds and nanoseconds. None for anything else, offsets included.
pub fn utc_key(s: &str) -> Option<(&str, u32)> {
    match parts(s)? {
        (secs, nanos, "Z") => Some((secs, nanos)),
        _ => None,
    }
}

/// Whether `s` is an RFC 3339 date-time (`2026-01-02T03:04:05Z`, `…+02:00`, a fraction allowed).
pub fn is_rfc3339(s: &str) -> bool {
    parts(s).is_some()
}
