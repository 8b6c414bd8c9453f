//! Which addresses a webhook may reach: public unicast addresses only, unless
//! the operator allows a network explicitly (e.g. `127.0.0.0/8` for a local
//! receiver).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Why an address is refused, in a few words; `None` if it is a public
/// unicast address (or one of `allowed`).
pub fn refusal(ip: IpAddr, allowed: &[IpNet]) -> Option<&'static str> {
    // An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) is that IPv4 address.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        IpAddr::V4(_) => ip,
    };
    if allowed.iter().any(|net| net.contains(&ip)) {
        return None;
    }
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, _, _) => Some("an unspecified address"),
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => Some("a private address"),
        (100, 64..=127, _) => Some("a shared (carrier-grade NAT) address"),
        (127, _, _) => Some("a loopback address"),
        (169, 254, _) => Some("a link-local address (cloud metadata lives there)"),
        (192, 0, 0) => Some("an IETF protocol address"),
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Some("a documentation address"),
        (198, 18..=19, _) => Some("a benchmarking address"),
        (224..=239, _, _) => Some("a multicast address"),
        (240..=255, _, _) => Some("a reserved address"),
        _ => None,
    }
}

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    // Addresses that carry an IPv4 address: judged by that address.
    let embedded = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match segments {
        // IPv4-compatible (deprecated): ::a.b.c.d
        [0, 0, 0, 0, 0, 0, high, low] => {
            return refusal_v4(embedded(high, low)).or(Some("an IPv4-compatible address"));
        }
        // NAT64, well-known prefix: 64:ff9b::a.b.c.d; 6to4: 2002:aabb:ccdd::
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] | [0x2002, high, low, ..] => {
            return refusal_v4(embedded(high, low));
        }
        _ => {}
    }
    let first = segments[0];
    if first == 0x64 && segments[1] == 0xff9b && segments[2] == 1 {
        return Some("a local-use NAT64 address");
    }
    if first == 0x100 && segments[1..4] == [0, 0, 0] {
        return Some("a discard-only address");
    }
    if first == 0x2001 && segments[1] == 0 {
        return Some("a Teredo tunnel address");
    }
    if first == 0x2001 && segments[1] == 0x0db8 {
        return Some("a documentation address");
    }
    if first & 0xfe00 == 0xfc00 {
        return Some("a unique local (private) address (cloud metadata lives there)");
    }
    if first & 0xffc0 == 0xfe80 {
        return Some("a link-local address");
    }
    if first & 0xffc0 == 0xfec0 {
        return Some("a site-local address");
    }
    if first & 0xff00 == 0xff00 {
        return Some("a multicast address");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str) -> bool {
        refusal(ip.parse().unwrap(), &[]).is_some()
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "151.101.1.69",
            "2a00:1450:4001:82a::200e",
            "2606:4700::6810:84e5",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ] {
            assert!(!refused(ip), "{ip} was refused");
        }
    }

    #[test]
    fn internal_addresses_are_refused() {
        for ip in [
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "127.0.0.1",
            "127.8.9.10",
            "169.254.169.254",
            "192.0.0.170",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "2002:7f00:0001::1",
            "2001:0:4136:e378::1",
            "2001:db8::1",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "100::1",
        ] {
            assert!(refused(ip), "{ip} was allowed");
        }
    }

    #[test]
    fn allowed_networks_are_exceptions() {
        let loopback: Vec<IpNet> = vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        assert_eq!(refusal("127.0.0.1".parse().unwrap(), &loopback), None);
        assert_eq!(refusal("::1".parse().unwrap(), &loopback), None);
        assert_eq!(
            refusal("::ffff:127.0.0.1".parse().unwrap(), &loopback),
            None
        );
        assert!(refusal("10.0.0.1".parse().unwrap(), &loopback).is_some());
        assert!(refusal("169.254.169.254".parse().unwrap(), &loopback).is_some());
    }
}
