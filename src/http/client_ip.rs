//! The client's address, as rate limits key on it: the TCP peer, unless the peer is one
//! of the configured trusted proxies (`http.trusted_proxies`, none by default), whose
//! forwarding headers then name the client.
//!
//! Through trusted proxies, the client is the right-most `X-Forwarded-For` address that
//! is not itself a trusted proxy (every proxy appends the address it received the
//! request from, so addresses left of the first untrusted one may be forged). When
//! every listed address is a trusted proxy, the left-most one is the client; without
//! `X-Forwarded-For`, a trusted peer's `X-Real-IP` names the client.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Parses a trusted-proxy entry: a CIDR (`10.0.0.0/8`, `fd00::/8`) or one address.
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("`{text}` is not a CIDR (e.g. 10.0.0.0/8) or an IP address"))
}

/// The configured trusted proxies.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parses the configured list (validated with the configuration).
    pub fn parse(list: &[String]) -> Result<Self, String> {
        let nets = list
            .iter()
            .map(|s| parse_cidr(s))
            .collect::<Result<_, _>>()?;
        Ok(Self { nets })
    }

    /// Whether `ip` is a trusted proxy (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client's address of a request that came from `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if hops.is_empty() {
            return headers
                .get("x-real-ip")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_hop)
                .unwrap_or(peer);
        }
        // Walk from the nearest hop outwards while the hops are trusted proxies.
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                // A malformed entry was not written by a trusted proxy: stop at the
                // last address a trusted one vouched for.
                return client;
            };
            client = ip;
            if !self.contains(ip) {
                return ip;
            }
        }
        client
    }
}

/// One forwarded address: `1.2.3.4`, `2001:db8::1`, `1.2.3.4:5678` or `[2001:db8::1]:80`.
fn parse_hop(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .or_else(|_| text.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// The client address of a request as a rate-limit key: see [`TrustedProxies::client_ip`];
/// `unknown` without a peer address (not served from a socket).
pub fn client_address(
    proxies: &TrustedProxies,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> String {
    match peer {
        Some(peer) => proxies.client_ip(peer.ip(), headers).to_string(),
        None => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
            .expect("valid list")
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn parses_cidrs_and_single_addresses() {
        assert_eq!(
            parse_cidr("10.0.0.0/8").expect("cidr").to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            parse_cidr(" 127.0.0.1 ").expect("ip").to_string(),
            "127.0.0.1/32"
        );
        assert_eq!(parse_cidr("::1").expect("ip6").to_string(), "::1/128");
        // Host bits are cleared: 10.1.2.3/8 means 10.0.0.0/8.
        assert_eq!(
            parse_cidr("10.1.2.3/8").expect("cidr").to_string(),
            "10.0.0.0/8"
        );
        for bad in ["", "10.0.0.0/33", "localhost", "10.0.0/8", "*"] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_are_ignored_without_trusted_proxies() {
        let none = TrustedProxies::default();
        let h = headers(&[("x-real-ip", "1.2.3.4"), ("x-forwarded-for", "5.6.7.8")]);
        // Not even from loopback.
        assert_eq!(none.client_ip(ip("127.0.0.1"), &h), ip("127.0.0.1"));
        assert_eq!(none.client_ip(ip("10.0.0.5"), &h), ip("10.0.0.5"));
    }

    #[test]
    fn headers_of_an_untrusted_peer_are_ignored() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-real-ip", "1.2.3.4"), ("x-forwarded-for", "5.6.7.8")]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("127.0.0.1"));
        assert_eq!(p.client_ip(ip("203.0.113.9"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn the_rightmost_untrusted_forwarded_address_is_the_client() {
        let p = proxies(&["127.0.0.1/32", "10.0.0.0/8"]);
        // A client forging the left part: the balancer (10.0.0.7) appended the real one.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.4, 10.0.0.7")]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("198.51.100.4"));
        // Several headers are one list, in order.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.4, 10.0.0.7"),
        ]);
        assert_eq!(p.client_ip(ip("10.1.1.1"), &h), ip("198.51.100.4"));
        // X-Forwarded-For wins over X-Real-IP (a balancer passes a client's X-Real-IP on).
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.4"),
            ("x-real-ip", "6.6.6.6"),
        ]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("198.51.100.4"));
        // Ports and brackets, IPv6.
        let h = headers(&[("x-forwarded-for", "[2001:db8::1]:4711, 10.0.0.7:80")]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("2001:db8::1"));
    }

    #[test]
    fn all_trusted_or_malformed_chains_stop_at_what_a_proxy_vouched_for() {
        let p = proxies(&["127.0.0.1/32", "10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "10.0.0.3, 127.0.0.1")]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("10.0.0.3"));
        let h = headers(&[("x-forwarded-for", "6.6.6.6, garbage, 10.0.0.7")]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("10.0.0.7"));
        let h = headers(&[("x-forwarded-for", "garbage")]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("127.0.0.1"));
    }

    #[test]
    fn x_real_ip_counts_only_without_x_forwarded_for() {
        let p = proxies(&["127.0.0.1"]);
        let h = headers(&[("x-real-ip", "198.51.100.4")]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("198.51.100.4"));
        let h = headers(&[("x-real-ip", "not an address")]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("127.0.0.1"));
        // An IPv4-mapped peer is the IPv4 address.
        let h = headers(&[("x-real-ip", "198.51.100.4")]);
        assert_eq!(p.client_ip(ip("::ffff:127.0.0.1"), &h), ip("198.51.100.4"));
        assert_eq!(
            client_address(&p, None, &h),
            "unknown",
            "no socket, no trust"
        );
    }
}
