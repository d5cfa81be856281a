//! Network interfaces (`getifaddrs` and /sys/class/net) and IPv4 routes (/proc/net/route).
//! IPv6 routes are read by [`super::ipv6_routes`], into the same [`Route`].

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
};

use nix::net::if_::InterfaceFlags;
use serde::Serialize;

use super::HostError;

/// One network interface.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Interface {
    pub name: String,
    /// `operstate` of /sys/class/net: up, down, unknown (loopback, some virtual links), ...
    pub state: String,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    pub loopback: bool,
    pub mtu: Option<u32>,
    /// Hardware address, `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
    /// Addresses with their prefix length, `192.168.1.5/24`, `fe80::1/64`.
    pub addresses: Vec<String>,
    pub rx_bytes: Option<u64>,
    pub tx_bytes: Option<u64>,
}

/// Every interface, by name.
pub fn interfaces() -> Result<Vec<Interface>, HostError> {
    let found = nix::ifaddrs::getifaddrs().map_err(|source| HostError::Sys {
        call: "getifaddrs",
        source,
    })?;
    let mut by_name: BTreeMap<String, Interface> = BTreeMap::new();
    for entry in found {
        let interface = by_name
            .entry(entry.interface_name.clone())
            .or_insert_with(|| new_interface(&entry.interface_name, entry.flags));
        let Some(address) = entry.address else {
            continue;
        };
        if let Some(link) = address.as_link_addr() {
            if let Some(mac) = link.addr().filter(|mac| mac.iter().any(|byte| *byte != 0)) {
                interface.mac = Some(
                    mac.iter()
                        .map(|byte| format!("{byte:02x}"))
                        .collect::<Vec<_>>()
                        .join(":"),
                );
            }
            continue;
        }
        let ip: Option<IpAddr> = address
            .as_sockaddr_in()
            .map(|v4| IpAddr::V4(v4.ip()))
            .or_else(|| address.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())));
        let Some(ip) = ip else { continue };
        let prefix = entry.netmask.as_ref().and_then(|mask| {
            mask.as_sockaddr_in()
                .map(|v4| v4.ip().to_bits().count_ones())
                .or_else(|| {
                    mask.as_sockaddr_in6()
                        .map(|v6| v6.ip().to_bits().count_ones())
                })
        });
        interface.addresses.push(match prefix {
            Some(prefix) => format!("{ip}/{prefix}"),
            None => ip.to_string(),
        });
    }
    Ok(by_name.into_values().collect())
}

fn new_interface(name: &str, flags: InterfaceFlags) -> Interface {
    let read = |file: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{name}/{file}"))
            .ok()
            .map(|text| text.trim().to_owned())
    };
    Interface {
        name: name.to_owned(),
        state: read("operstate").unwrap_or_else(|| "unknown".to_owned()),
        up: flags.contains(InterfaceFlags::IFF_UP),
        loopback: flags.contains(InterfaceFlags::IFF_LOOPBACK),
        mtu: read("mtu").and_then(|mtu| mtu.parse().ok()),
        mac: None,
        addresses: Vec::new(),
        rx_bytes: read("statistics/rx_bytes").and_then(|n| n.parse().ok()),
        tx_bytes: read("statistics/tx_bytes").and_then(|n| n.parse().ok()),
    }
}

/// One route of the main table (IPv4 here, IPv6 from [`super::ipv6_routes`]).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Route {
    /// `default`, or the network with its prefix: `10.0.0.0/8`.
    pub destination: String,
    /// The next hop, when the route goes through a gateway.
    pub gateway: Option<String>,
    pub interface: String,
    pub metric: u32,
}

/// The IPv4 routes that are up.
pub fn routes() -> Result<Vec<Route>, HostError> {
    const RTF_UP: u16 = 0x1;
    const RTF_GATEWAY: u16 = 0x2;
    let entries = procfs::net::route().map_err(HostError::proc("net/route"))?;
    Ok(entries
        .into_iter()
        .filter(|entry| entry.flags & RTF_UP != 0)
        .map(|entry| {
            let prefix = entry.mask.to_bits().count_ones();
            Route {
                destination: if entry.destination == Ipv4Addr::UNSPECIFIED && prefix == 0 {
                    "default".to_owned()
                } else {
                    format!("{}/{prefix}", entry.destination)
                },
                gateway: (entry.flags & RTF_GATEWAY != 0).then(|| entry.gateway.to_string()),
                interface: entry.iface,
                metric: entry.metrics,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(args: &[&str]) -> String {
        let output = std::process::Command::new("ip")
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    }

    #[test]
    fn interfaces_and_addresses_match_ip_addr() {
        let interfaces = interfaces().unwrap();
        let shown = ip(&["-o", "addr", "show"]);
        for line in shown.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (name, address) = (fields[1].split('@').next().unwrap(), fields[3]);
            let interface = interfaces.iter().find(|i| i.name == name).unwrap();
            assert!(
                interface.addresses.iter().any(|a| a == address),
                "{address} not in {interface:?}"
            );
        }
        let lo = interfaces.iter().find(|i| i.name == "lo").unwrap();
        assert!(lo.loopback && lo.up);
        assert!(lo.addresses.iter().any(|a| a == "127.0.0.1/8"));
        assert_eq!(lo.mtu, Some(65536));
    }

    #[test]
    fn routes_match_ip_route() {
        let routes = routes().unwrap();
        let shown = ip(&["-4", "route", "show", "table", "main"]);
        for line in shown.lines() {
            let destination = line.split_whitespace().next().unwrap();
            let destination = if destination.contains('/') || destination == "default" {
                destination.to_owned()
            } else {
                format!("{destination}/32")
            };
            assert!(
                routes.iter().any(|route| route.destination == destination),
                "{destination} not in {routes:?}"
            );
            if let Some(via) = line.split(" via ").nth(1) {
                let gateway = via.split_whitespace().next().unwrap();
                assert!(routes.iter().any(|r| r.gateway.as_deref() == Some(gateway)));
            }
        }
    }
}
