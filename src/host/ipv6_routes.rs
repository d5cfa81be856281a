//! IPv6 routes of the main table, from /proc/net/ipv6_route (procfs 0.18 parses only the
//! IPv4 table; no netlink crate is in the tree, and this file is ten columns of hex).
//!
//! The file lists the kernel's local table too, with nothing naming the table. Its entries
//! are told apart by what only they carry: `RTF_LOCAL` (the host's own addresses), the
//! multicast prefix `ff00::/8`, and (on some kernels) rejecting routes through `lo`. Cached
//! clones (`RTF_CACHE`) and routes that are not up are left out as well, so the list is
//! what `ip -6 route show table main` prints.

use std::net::Ipv6Addr;

use super::{HostError, network::Route};

const RTF_UP: u32 = 0x0001;
const RTF_GATEWAY: u32 = 0x0002;
const RTF_REJECT: u32 = 0x0200;
const RTF_CACHE: u32 = 0x0100_0000;
const RTF_LOCAL: u32 = 0x8000_0000;

/// The IPv6 routes of the main table that are up.
pub fn routes() -> Result<Vec<Route>, HostError> {
    match std::fs::read_to_string("/proc/net/ipv6_route") {
        Ok(text) => Ok(parse(&text)),
        // A kernel without IPv6 has no such file: no IPv6 routes.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(HostError::io("/proc/net/ipv6_route")(error)),
    }
}

/// The main-table routes of /proc/net/ipv6_route's `text`; lines that do not parse are
/// skipped.
pub fn parse(text: &str) -> Vec<Route> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Route> {
    // dest prefix src src_prefix next_hop metric refcnt use flags device
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [
        destination,
        prefix,
        _,
        _,
        next_hop,
        metric,
        _,
        _,
        flags,
        device,
    ] = fields[..]
    else {
        return None;
    };
    let destination = address(destination)?;
    let prefix = u8::from_str_radix(prefix, 16).ok()?;
    let flags = u32::from_str_radix(flags, 16).ok()?;
    let metric = u32::from_str_radix(metric, 16).ok()?;
    let multicast = destination.segments()[0] == 0xff00 && prefix == 8;
    if flags & RTF_UP == 0
        || flags & (RTF_LOCAL | RTF_CACHE) != 0
        || multicast
        || (flags & RTF_REJECT != 0 && device == "lo")
    {
        return None;
    }
    Some(Route {
        destination: if destination.is_unspecified() && prefix == 0 {
            "default".to_owned()
        } else {
            format!("{destination}/{prefix}")
        },
        gateway: (flags & RTF_GATEWAY != 0)
            .then(|| address(next_hop))
            .flatten()
            .map(|hop| hop.to_string()),
        interface: device.to_owned(),
        metric,
    })
}

/// 32 hex digits, as the kernel writes an address.
fn address(hex: &str) -> Option<Ipv6Addr> {
    (hex.len() == 32)
        .then(|| u128::from_str_radix(hex, 16).ok())
        .flatten()
        .map(Ipv6Addr::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This host's file, as read when this was written: three main-table routes, four of
    /// the local table.
    const SAMPLE: &str = "\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000004 00000000 80200001       lo
fd000000000000000000000000000002 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000004 00000000 80200001     eth0
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000004 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
";

    #[test]
    fn the_main_table_is_kept_and_the_local_table_left_out() {
        let routes = parse(SAMPLE);
        let shown: Vec<_> = routes
            .iter()
            .map(|r| {
                (
                    r.destination.as_str(),
                    r.gateway.as_deref(),
                    r.interface.as_str(),
                    r.metric,
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("fd00::/64", None, "eth0", 256),
                ("fe80::/64", None, "eth0", 256),
                ("default", Some("fd00::1"), "eth0", 1024),
            ]
        );
    }

    /// What `ip -6 route show table main` prints, each line's destination and gateway,
    /// against this reader on the same host (skipped where `ip` is missing).
    #[test]
    fn routes_match_ip_6_route() {
        let Ok(out) = std::process::Command::new("ip")
            .args(["-6", "route", "show", "table", "main"])
            .output()
        else {
            return;
        };
        let routes = routes().unwrap();
        let shown = String::from_utf8_lossy(&out.stdout);
        let mut expected: Vec<(String, Option<String>)> = shown
            .lines()
            .filter_map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                let destination = (*words.first()?).to_owned();
                let gateway = words
                    .iter()
                    .position(|word| *word == "via")
                    .and_then(|at| words.get(at + 1))
                    .map(|hop| (*hop).to_owned());
                Some((destination, gateway))
            })
            .collect();
        let mut got: Vec<(String, Option<String>)> = routes
            .into_iter()
            .map(|route| (route.destination, route.gateway))
            .collect();
        expected.sort();
        got.sort();
        assert_eq!(got, expected);
    }
}
