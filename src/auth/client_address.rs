//! Which client a request comes from: the connecting peer, or — only when that peer is a
//! trusted reverse proxy — the address the proxies wrote in `Forwarded` (RFC 7239) or
//! `X-Forwarded-For`. Owns [`TrustedProxies`] (the `trusted_proxies` setting),
//! [`ClientAddress`] (what the failed-authentication budget counts and the audit log
//! records) and the grouping of addresses for that budget.
//!
//! The rules, in order:
//!
//! 1. A peer that is not in `trusted_proxies` is the client. Its forwarding headers are
//!    ignored: anybody can write them.
//! 2. From a trusted peer, each header is read as a chain of hops (all its lines, in order)
//!    and walked from the right: trusted proxies are skipped, and the first address that is
//!    not a trusted proxy is the client. An entry that names no address (`unknown`, an
//!    obfuscated `_name`, garbage) stops the walk at the trusted hop to its right: nobody
//!    vouches for what stands left of it. A chain of trusted proxies only names its left-most.
//! 3. When both headers are present and name different clients, one of them came from the
//!    caller through a proxy that does not write it: the request counts as the peer's.
//!
//! Addresses are compared in canonical form (`::ffff:10.0.0.1` is `10.0.0.1`). For the
//! budget, IPv6 addresses count per /64 (one host usually holds a whole /64).
//!
//! CIDR matching is `ipnet`'s; the two header grammars are parsed here because only the
//! `for=` node of each element matters.

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    str::FromStr,
};

use axum::http::{HeaderMap, HeaderName, header};
use ipnet::IpNet;

/// `X-Forwarded-For`: not in `http`'s list of standard headers.
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// One entry of `trusted_proxies`: a network in CIDR notation, or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct ProxyNet(IpNet);

/// A `trusted_proxies` entry that is neither a CIDR network nor an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or a CIDR network such as 10.0.0.0/8 or fd00::/8")]
pub struct BadProxyNet(pub String);

impl FromStr for ProxyNet {
    type Err = BadProxyNet;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        text.parse::<IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
            .map(|net| Self(net.trunc()))
            .map_err(|_| BadProxyNet(text.to_owned()))
    }
}

impl TryFrom<String> for ProxyNet {
    type Error = BadProxyNet;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl fmt::Display for ProxyNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The peers whose forwarding headers are believed. Empty (the default): none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: impl IntoIterator<Item = ProxyNet>) -> Self {
        Self(nets.into_iter().map(|ProxyNet(net)| net).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Is `ip` (in any form) inside one of the trusted networks?
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request that arrived from `peer` carrying `headers`.
    pub fn resolve(&self, peer: SocketAddr, headers: &HeaderMap) -> ClientAddress {
        let direct = ClientAddress {
            ip: peer.ip().to_canonical(),
            port: Some(peer.port()),
        };
        if !self.contains(peer.ip()) {
            return direct;
        }
        let named = |chain: Vec<Option<IpAddr>>| {
            (!chain.is_empty()).then(|| self.rightmost_untrusted(direct.ip, &chain))
        };
        let by_forwarded = named(hops(headers, &header::FORWARDED, forwarded_for_nodes));
        let by_x_forwarded_for = named(hops(headers, &X_FORWARDED_FOR, x_forwarded_for_nodes));
        let client = match (by_forwarded, by_x_forwarded_for) {
            (Some(one), Some(other)) if one != other => None,
            (Some(ip), _) | (None, Some(ip)) => Some(ip),
            (None, None) => None,
        };
        match client {
            Some(ip) if ip != direct.ip => ClientAddress { ip, port: None },
            _ => direct,
        }
    }

    /// Walk `chain` (left = farthest from us) from the right, starting at the trusted peer.
    fn rightmost_untrusted(&self, peer: IpAddr, chain: &[Option<IpAddr>]) -> IpAddr {
        let mut nearest_trusted = peer;
        for hop in chain.iter().rev() {
            match hop {
                Some(ip) if self.contains(*ip) => nearest_trusted = *ip,
                Some(ip) => return *ip,
                None => return nearest_trusted,
            }
        }
        nearest_trusted
    }
}

/// Where a request comes from, as resolved by [`TrustedProxies::resolve`]. The auth layer
/// puts it in the request's extensions; the audit log writes it as the record's `client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddress {
    ip: IpAddr,
    /// The peer's port for a direct connection; none for an address a proxy reported.
    port: Option<u16>,
}

impl ClientAddress {
    pub fn ip(self) -> IpAddr {
        self.ip
    }

    /// What the failed-authentication budget counts: an IPv4 address, or an IPv6 /64.
    pub fn budget_key(self) -> IpAddr {
        match self.ip.to_canonical() {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        }
    }
}

/// `10.0.0.5:51234` or `[2001:db8::1]:51234` for a direct peer; the bare address for a
/// forwarded one.
impl fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => SocketAddr::new(self.ip, port).fmt(f),
            None => self.ip.fmt(f),
        }
    }
}

/// Every hop named by all lines of header `name`, left to right; `None` for an entry that
/// names no address. A line that is not text yields one `None`.
fn hops(
    headers: &HeaderMap,
    name: &HeaderName,
    nodes: fn(&str) -> Vec<Option<IpAddr>>,
) -> Vec<Option<IpAddr>> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| value.to_str().map_or_else(|_| vec![None], nodes))
        .map(|hop| hop.map(|ip| ip.to_canonical()))
        .collect()
}

/// `X-Forwarded-For: client, proxy1, proxy2`: comma-separated addresses (some proxies add
/// a port).
fn x_forwarded_for_nodes(line: &str) -> Vec<Option<IpAddr>> {
    line.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(node_address)
        .collect()
}

/// `Forwarded: for=192.0.2.43;proto=https, for="[2001:db8::17]:4711"`: the `for=` of each
/// comma-separated element (an element without one names no address).
fn forwarded_for_nodes(line: &str) -> Vec<Option<IpAddr>> {
    split_outside_quotes(line, ',')
        .into_iter()
        .filter(|element| !element.trim().is_empty())
        .map(|element| {
            split_outside_quotes(element, ';')
                .into_iter()
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| key.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, value)| node_address(unquote(value.trim())))
        })
        .collect()
}

/// `text` split at `separator`s that are not inside a quoted string.
fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (index, character) in text.char_indices() {
        match character {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..index]);
                start = index + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(value)
}

/// An address in any of the forms proxies write: `192.0.2.43`, `192.0.2.43:4711`,
/// `2001:db8::17`, `[2001:db8::17]`, `[2001:db8::17]:4711`. Anything else names none.
fn node_address(node: &str) -> Option<IpAddr> {
    if let Some(bracketed) = node.strip_prefix('[') {
        let (inside, _port) = bracketed.split_once(']')?;
        return inside.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    node.parse::<IpAddr>().ok().or_else(|| {
        let (host, port) = node.split_once(':')?;
        port.parse::<u16>().ok()?;
        host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
    })
}

#[cfg(test)]
mod tests;
