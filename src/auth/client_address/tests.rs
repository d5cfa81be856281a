//! Client-address resolution: each believed header with its near miss (the same header
//! from an untrusted peer, a forged entry left of the proxy's), and the budget's grouping.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderValue};

use super::*;

fn proxies(nets: &[&str]) -> TrustedProxies {
    TrustedProxies::new(nets.iter().map(|net| net.parse::<ProxyNet>().unwrap()))
}

fn headers(lines: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in lines {
        map.append(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

fn peer(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn resolved(trusted: &[&str], from: &str, lines: &[(&'static str, &str)]) -> String {
    proxies(trusted)
        .resolve(peer(from), &headers(lines))
        .to_string()
}

#[test]
fn x_forwarded_for_is_believed_from_a_trusted_proxy_only() {
    let lines = [("x-forwarded-for", "203.0.113.9")];
    assert_eq!(
        resolved(&["10.0.0.0/8"], "10.1.2.3:4000", &lines),
        "203.0.113.9"
    );
    // Near miss: the same header from a peer outside the trusted network.
    assert_eq!(
        resolved(&["10.0.0.0/8"], "192.0.2.1:4000", &lines),
        "192.0.2.1:4000"
    );
    // And with no trusted proxies at all (the default).
    assert_eq!(resolved(&[], "10.1.2.3:4000", &lines), "10.1.2.3:4000");
}

#[test]
fn forwarded_is_believed_from_a_trusted_proxy_only() {
    let lines = [(
        "forwarded",
        r#"for="[2001:db8:cafe::17]:4711";proto=https;by=10.0.0.1"#,
    )];
    assert_eq!(
        resolved(&["10.0.0.1"], "10.0.0.1:4000", &lines),
        "2001:db8:cafe::17"
    );
    assert_eq!(
        resolved(&["10.0.0.1"], "10.0.0.2:4000", &lines),
        "10.0.0.2:4000"
    );
}

#[test]
fn the_rightmost_address_that_is_not_a_trusted_proxy_wins() {
    // The caller forged the left-most entry; the edge proxy appended the real one, an
    // inner proxy (also trusted) appended the edge's.
    let lines = [("x-forwarded-for", "198.51.100.66, 203.0.113.9, 10.0.0.7")];
    assert_eq!(
        resolved(&["10.0.0.0/8"], "10.0.0.1:80", &lines),
        "203.0.113.9"
    );
    // Near miss: without the inner proxy trusted, its own address is the client.
    assert_eq!(resolved(&["10.0.0.1"], "10.0.0.1:80", &lines), "10.0.0.7");
    // Several header lines are one list, in order.
    let split = [
        ("x-forwarded-for", "198.51.100.66"),
        ("x-forwarded-for", "203.0.113.9, 10.0.0.7"),
    ];
    assert_eq!(
        resolved(&["10.0.0.0/8"], "10.0.0.1:80", &split),
        "203.0.113.9"
    );
}

#[test]
fn forwarded_elements_are_split_outside_quotes() {
    let lines = [(
        "forwarded",
        r#"for=198.51.100.66, for="203.0.113.9:1234";by="a,b", for=10.0.0.7"#,
    )];
    assert_eq!(
        resolved(&["10.0.0.0/8"], "10.0.0.1:80", &lines),
        "203.0.113.9"
    );
    let ports = [("forwarded", "For=\"192.0.2.60:8080\"")];
    assert_eq!(
        resolved(&["10.0.0.0/8"], "10.0.0.1:80", &ports),
        "192.0.2.60"
    );
}

#[test]
fn an_entry_that_names_no_address_stops_at_the_proxy_that_wrote_it() {
    for chain in [
        "unknown",
        "_hidden",
        "not an address",
        "203.0.113.9, unknown",
    ] {
        let lines = [("x-forwarded-for", chain)];
        assert_eq!(
            resolved(&["10.0.0.0/8"], "10.0.0.1:80", &lines),
            "10.0.0.1:80",
            "{chain}"
        );
    }
    // Near miss: garbage left of a real address does not matter.
    let lines = [("x-forwarded-for", "unknown, 203.0.113.9")];
    assert_eq!(
        resolved(&["10.0.0.0/8"], "10.0.0.1:80", &lines),
        "203.0.113.9"
    );
    let lines = [("forwarded", "for=unknown, for=10.0.0.9")];
    assert_eq!(resolved(&["10.0.0.0/8"], "10.0.0.1:80", &lines), "10.0.0.9");
}

#[test]
fn two_headers_that_disagree_count_as_the_proxy() {
    let both = [
        ("forwarded", "for=198.51.100.66"),
        ("x-forwarded-for", "203.0.113.9"),
    ];
    assert_eq!(
        resolved(&["10.0.0.0/8"], "10.0.0.1:80", &both),
        "10.0.0.1:80"
    );
    // Near miss: the two agree.
    let agreeing = [
        ("forwarded", "for=198.51.100.66, for=203.0.113.9"),
        ("x-forwarded-for", "203.0.113.9"),
    ];
    assert_eq!(
        resolved(&["10.0.0.0/8"], "10.0.0.1:80", &agreeing),
        "203.0.113.9"
    );
}

#[test]
fn a_trusted_proxy_without_headers_is_the_client() {
    assert_eq!(resolved(&["10.0.0.0/8"], "10.0.0.1:80", &[]), "10.0.0.1:80");
    let only_proxies = [("x-forwarded-for", "10.0.0.8, 10.0.0.7")];
    assert_eq!(
        resolved(&["10.0.0.0/8"], "10.0.0.1:80", &only_proxies),
        "10.0.0.8"
    );
}

#[test]
fn ipv4_mapped_peers_and_hops_are_ipv4() {
    let lines = [("x-forwarded-for", "::ffff:203.0.113.9")];
    assert_eq!(
        resolved(&["127.0.0.1"], "[::ffff:127.0.0.1]:80", &lines),
        "203.0.113.9"
    );
    assert_eq!(resolved(&[], "[::ffff:127.0.0.1]:80", &[]), "127.0.0.1:80");
}

#[test]
fn the_budget_counts_ipv6_per_64_and_ipv4_per_address() {
    let key = |text: &str| {
        proxies(&[])
            .resolve(peer(text), &HeaderMap::new())
            .budget_key()
    };
    assert_eq!(key("[2001:db8:1:2:aaaa::1]:1"), ip("2001:db8:1:2::"));
    assert_eq!(
        key("[2001:db8:1:2:ffff:1:2:3]:9"),
        key("[2001:db8:1:2::5]:1")
    );
    // Near miss: the neighbouring /64 is another key.
    assert_ne!(key("[2001:db8:1:3::5]:1"), key("[2001:db8:1:2::5]:1"));
    assert_eq!(key("192.0.2.1:1"), ip("192.0.2.1"));
    assert_ne!(key("192.0.2.1:1"), key("192.0.2.2:1"));
    assert_eq!(key("[::ffff:192.0.2.1]:1"), ip("192.0.2.1"));
}

#[test]
fn proxy_entries_parse_as_networks_or_addresses() {
    assert_eq!(
        "10.0.0.0/8".parse::<ProxyNet>().unwrap().to_string(),
        "10.0.0.0/8"
    );
    assert_eq!(
        "10.1.2.3/8".parse::<ProxyNet>().unwrap().to_string(),
        "10.0.0.0/8"
    );
    assert_eq!(" ::1 ".parse::<ProxyNet>().unwrap().to_string(), "::1/128");
    assert_eq!(
        "192.0.2.7".parse::<ProxyNet>().unwrap().to_string(),
        "192.0.2.7/32"
    );
    for bad in ["", "10.0.0.0/33", "proxy.example", "10.0.0/8", "*"] {
        assert_eq!(
            bad.parse::<ProxyNet>(),
            Err(BadProxyNet(bad.to_owned())),
            "{bad:?}"
        );
    }
}
