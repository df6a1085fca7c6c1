//! Which addresses are not on the public internet: the rule behind a
//! connection's `allow_private_network`.
//!
//! Non-global are every range of the IANA IPv4 and IPv6 Special-Purpose
//! Address Registries that is not globally reachable, multicast, reserved
//! space, and IPv6 outside global unicast (2000::/3). An IPv4 address embedded
//! in IPv6 (IPv4-mapped, IPv4-compatible, NAT64 64:ff9b::/96) is judged by the
//! IPv4 address. Stricter than the registries in two ways, since no service a
//! connector calls lives there: a block that is not globally reachable counts
//! as a whole, including the anycast and overlay addresses carved out of it
//! (192.0.0.9, 2001:1::1, ORCHIDv2...); and the 6to4 (2002::/16) and Teredo
//! (2001::/32) tunnels count as non-global, since they can reach private IPv4.

use ipnet::IpNet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

/// A special-purpose range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub name: &'static str,
    pub net: IpNet,
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.net)
    }
}

/// Why an address is not global.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonGlobal {
    /// The range the address (or the IPv4 address it embeds) is in.
    pub range: Range,
    /// The IPv6 form embedding that IPv4 address, if any.
    pub embedded_in: Option<Range>,
}

impl fmt::Display for NonGlobal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.embedded_in {
            Some(form) => write!(f, "{}, inside {form}", self.range),
            None => write!(f, "{}", self.range),
        }
    }
}

/// Non-global IPv4 ranges; the first match names the address.
const V4: &[(&str, &str)] = &[
    ("0.0.0.0/8", "\"this network\""),
    ("10.0.0.0/8", "private-use"),
    ("100.64.0.0/10", "shared address space"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private-use"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast"),
    ("192.168.0.0/16", "private-use"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "limited broadcast"),
    ("240.0.0.0/4", "reserved"),
];

/// Non-global IPv6 ranges; the first match names the address.
const V6: &[(&str, &str)] = &[
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation"),
    ("100::/64", "discard-only"),
    ("100:0:0:1::/64", "dummy prefix"),
    ("2001::/32", "Teredo"),
    ("2001:2::/48", "benchmarking"),
    ("2001::/23", "IETF protocol assignments"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment routing SIDs"),
    ("fc00::/7", "unique local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "deprecated site-local"),
    ("ff00::/8", "multicast"),
];

/// IPv6 forms whose last 32 bits are an IPv4 address, judged by that address.
const EMBEDDING_V4: &[(&str, &str)] = &[
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("::/96", "IPv4-compatible"),
    ("64:ff9b::/96", "NAT64"),
];

/// The only IPv6 space allocated for global unicast.
const GLOBAL_UNICAST: (&str, &str) = ("2000::/3", "outside global unicast");

static V4_RANGES: LazyLock<Vec<Range>> = LazyLock::new(|| ranges(V4));
static V6_RANGES: LazyLock<Vec<Range>> = LazyLock::new(|| ranges(V6));
static EMBEDDING_RANGES: LazyLock<Vec<Range>> = LazyLock::new(|| ranges(EMBEDDING_V4));
static GLOBAL_UNICAST_RANGE: LazyLock<Range> = LazyLock::new(|| ranges(&[GLOBAL_UNICAST])[0]);

fn ranges(table: &[(&str, &'static str)]) -> Vec<Range> {
    table
        .iter()
        .map(|&(cidr, name)| Range {
            name,
            net: cidr.parse().expect("the address tables hold valid CIDRs"),
        })
        .collect()
}

fn find(ranges: &[Range], ip: IpAddr) -> Option<Range> {
    ranges.iter().copied().find(|r| r.net.contains(&ip))
}

/// Why `ip` is not a global address, or `None` when it is one.
pub fn non_global(ip: IpAddr) -> Option<NonGlobal> {
    let direct = |range| NonGlobal {
        range,
        embedded_in: None,
    };
    match ip {
        IpAddr::V4(_) => find(&V4_RANGES, ip).map(direct),
        IpAddr::V6(v6) => {
            if let Some(range) = find(&V6_RANGES, ip) {
                return Some(direct(range));
            }
            if let Some(form) = find(&EMBEDDING_RANGES, ip) {
                return find(&V4_RANGES, IpAddr::V4(embedded_v4(v6))).map(|range| NonGlobal {
                    range,
                    embedded_in: Some(form),
                });
            }
            let unicast = *GLOBAL_UNICAST_RANGE;
            (!unicast.net.contains(&ip)).then_some(direct(unicast))
        }
    }
}

/// Whether `ip` is not a global address (see [`non_global`]).
pub fn is_non_global(ip: IpAddr) -> bool {
    non_global(ip).is_some()
}

fn embedded_v4(ip: Ipv6Addr) -> Ipv4Addr {
    let [.., a, b, c, d] = ip.octets();
    Ipv4Addr::new(a, b, c, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At least one address of every special-purpose range, both edges of some.
    const NON_GLOBAL: &[&str] = &[
        // IPv4
        "0.0.0.0",
        "0.1.2.3",
        "0.255.255.255",
        "10.0.0.0",
        "10.255.255.255",
        "100.64.0.0",
        "100.127.255.255",
        "127.0.0.1",
        "127.255.255.254",
        "169.254.0.1",
        "169.254.169.254",
        "172.16.0.1",
        "172.31.255.255",
        "192.0.0.0",
        "192.0.0.8",
        "192.0.0.9",
        "192.0.0.170",
        "192.0.0.255",
        "192.0.2.1",
        "192.88.99.1",
        "192.168.0.1",
        "192.168.255.255",
        "198.18.0.0",
        "198.18.0.1",
        "198.19.255.255",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.1",
        "239.255.255.255",
        "240.0.0.1",
        "255.255.255.254",
        "255.255.255.255",
        // IPv6
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:198.18.0.1",
        "::ffff:0.0.0.0",
        "::10.0.0.1",
        "::198.18.0.1",
        "::192.168.1.1",
        "64:ff9b::10.0.0.1",
        "64:ff9b::127.0.0.1",
        "64:ff9b::198.18.0.1",
        "64:ff9b:1::",
        "64:ff9b:1::8.8.8.8",
        "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
        "100::",
        "100::ffff:ffff:ffff:ffff",
        "100:0:0:1::1",
        "2001::",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "2001:0:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:1::1",
        "2001:1::2",
        "2001:2::1",
        "2001:3::1",
        "2001:4:112::1",
        "2001:10::1",
        "2001:20::1",
        "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db8::",
        "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
        "2002::",
        "2002:c0a8:101::1",
        "2002:808:808::1",
        "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "3fff::1",
        "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
        "5f00::1",
        "fc00::1",
        "fd12:3456:789a::1",
        "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fe80::1",
        "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fec0::1",
        "ff02::1",
        "ff0e::1",
        "::1:0:0:1",
        "400::1",
        "4000::1",
        "e000::1",
    ];

    /// Real public addresses (and the edges next to special ranges) that must stay allowed.
    const GLOBAL: &[&str] = &[
        "1.1.1.1",
        "8.8.8.8",
        "9.255.255.255",
        "11.0.0.0",
        "13.107.42.14",
        "20.190.128.1",
        "40.126.0.1",
        "52.96.0.1",
        "100.63.255.255",
        "100.128.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "169.253.255.255",
        "169.255.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "191.255.255.255",
        "192.0.1.0",
        "192.0.3.0",
        "192.31.196.1",
        "192.52.193.1",
        "192.88.98.255",
        "192.88.100.0",
        "192.167.255.255",
        "192.169.0.0",
        "192.175.48.1",
        "198.17.255.255",
        "198.20.0.0",
        "198.51.99.255",
        "203.0.112.255",
        "203.0.114.0",
        "223.255.255.255",
        "::ffff:8.8.8.8",
        "::ffff:13.107.42.14",
        "::8.8.8.8",
        "64:ff9b::8.8.8.8",
        "64:ff9b::1.1.1.1",
        "2001:200::1",
        "2001:4860:4860::8888",
        "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db9::",
        "2003::1",
        "2603:1036::1",
        "2606:4700::1111",
        "2620:1ec:21::14",
        "2620:4f:8000::1",
        "2a00:1450:4001::1",
        "3ffe::1",
        "3fff:1000::",
    ];

    #[test]
    fn every_special_purpose_range_is_non_global() {
        let wrong: Vec<&str> = NON_GLOBAL
            .iter()
            .copied()
            .filter(|ip| !is_non_global(ip.parse().unwrap()))
            .collect();
        assert!(wrong.is_empty(), "treated as global: {wrong:?}");
    }

    #[test]
    fn the_reason_names_the_range_and_the_embedding() {
        let why = |ip: &str| non_global(ip.parse().unwrap()).unwrap().to_string();
        assert_eq!(why("198.18.0.1"), "benchmarking (198.18.0.0/15)");
        assert_eq!(
            why("255.255.255.255"),
            "limited broadcast (255.255.255.255/32)"
        );
        assert_eq!(why("2001:0:4136::1"), "Teredo (2001::/32)");
        assert_eq!(why("e000::1"), "outside global unicast (2000::/3)");
        assert_eq!(
            why("::ffff:10.1.2.3"),
            "private-use (10.0.0.0/8), inside IPv4-mapped (::ffff:0.0.0.0/96)"
        );
        assert_eq!(
            why("64:ff9b::7f00:1"),
            "loopback (127.0.0.0/8), inside NAT64 (64:ff9b::/96)"
        );
    }

    #[test]
    fn public_addresses_stay_global() {
        let wrong: Vec<&str> = GLOBAL
            .iter()
            .copied()
            .filter(|ip| is_non_global(ip.parse().unwrap()))
            .collect();
        assert!(wrong.is_empty(), "treated as non-global: {wrong:?}");
    }
}
