//! Which peers' `X-Forwarded-*` headers are believed, when `TRUSTED_PROXIES` is not set.
//!
//! Trusting every private range let any client on the LAN (or behind docker-proxy, when the
//! port is published directly) send a new `X-Forwarded-For` with every request and so choose
//! its own rate-limit key. The default now trusts only what can be a proxy in front of this
//! server without being a client itself:
//!
//! - loopback, always (a reverse proxy on the same host);
//! - inside a container (Docker, Podman), the networks the container is attached to, except
//!   their gateways. Traefik reaches the container over such a network; a published port is
//!   reached through the gateway (docker-proxy), which stays untrusted. So the Dokploy setup
//!   needs no setting, and a direct client is limited by its own address.
//!
//! Outside a container the machine's own networks are the LAN, whose clients must not be
//! trusted, so only loopback is.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use ipnet::{IpNet, Ipv4Net};

/// Loopback: a proxy on the same machine.
pub const LOOPBACK: &str = "127.0.0.0/8,::1/128";

/// Whether this process runs in a container.
pub fn in_container() -> bool {
    Path::new("/.dockerenv").exists()
        || Path::new("/run/.containerenv").exists()
        || std::env::var_os("container").is_some()
}

/// The default trusted proxies, given whether this runs in a container and the kernel's IPv4
/// routing table (`/proc/net/route`).
pub fn automatic(in_container: bool, route_table: &str) -> Vec<IpNet> {
    let mut trusted: Vec<IpNet> = LOOPBACK
        .split(',')
        .filter_map(|net| net.parse().ok())
        .collect();
    if !in_container {
        return trusted;
    }
    let routes = parse_routes(route_table);
    let gateways: Vec<Ipv4Addr> = routes.iter().filter_map(|route| route.gateway).collect();
    for route in routes.iter().filter(|route| route.gateway.is_none()) {
        let network = route.network;
        if network.prefix_len() == 0 || network.addr().is_loopback() {
            continue;
        }
        // Docker gives each network's first address to its gateway.
        let mut excluded: Vec<Ipv4Addr> = gateways.clone();
        if network.prefix_len() < 31 {
            excluded.push(Ipv4Addr::from(u32::from(network.network()) + 1));
        }
        let mut pieces = vec![network];
        for address in excluded {
            pieces = pieces
                .into_iter()
                .flat_map(|piece| without(piece, address))
                .collect();
        }
        trusted.extend(pieces.into_iter().map(IpNet::V4));
    }
    trusted
}

/// The trusted proxies of this machine when `TRUSTED_PROXIES` is unset.
pub fn automatic_here() -> Vec<IpNet> {
    let inside = in_container();
    let routes = if inside {
        std::fs::read_to_string("/proc/net/route").unwrap_or_default()
    } else {
        String::new()
    };
    automatic(inside, &routes)
}

struct Route {
    network: Ipv4Net,
    gateway: Option<Ipv4Addr>,
}

/// `/proc/net/route`: `Iface Destination Gateway Flags RefCnt Use Metric Mask …`, addresses as
/// little-endian hexadecimal.
fn parse_routes(table: &str) -> Vec<Route> {
    let hex = |field: &str| u32::from_str_radix(field, 16).ok().map(u32::from_be);
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let destination = Ipv4Addr::from(hex(fields.get(1)?)?);
            let gateway = Ipv4Addr::from(hex(fields.get(2)?)?);
            let mask = hex(fields.get(7)?)?;
            let network = Ipv4Net::new(destination, mask.count_ones() as u8).ok()?;
            Some(Route {
                network: network.trunc(),
                gateway: (!gateway.is_unspecified()).then_some(gateway),
            })
        })
        .collect()
}

/// `network` without one address: the halves that do not hold it, down to a single address.
fn without(network: Ipv4Net, address: Ipv4Addr) -> Vec<Ipv4Net> {
    if !network.contains(&address) {
        return vec![network];
    }
    let mut pieces = Vec::new();
    let mut current = network;
    while current.prefix_len() < 32 {
        let Ok(mut halves) = current.subnets(current.prefix_len() + 1) else {
            break;
        };
        let (Some(low), Some(high)) = (halves.next(), halves.next()) else {
            break;
        };
        if low.contains(&address) {
            pieces.push(high);
            current = low;
        } else {
            pieces.push(low);
            current = high;
        }
    }
    pieces
}

/// Whether `ip` is in one of `proxies`.
pub fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A container on Docker's default bridge and on a Dokploy (Traefik) network.
    const ROUTES: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010011AC\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
eth1\t0001000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
";

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn outside_a_container_only_loopback_is_trusted() {
        let trusted_here = automatic(false, ROUTES);
        assert!(trusted(ip("127.0.0.1"), &trusted_here));
        assert!(trusted(ip("::1"), &trusted_here));
        for lan in ["192.168.1.50", "10.0.1.5", "172.17.0.3"] {
            assert!(!trusted(ip(lan), &trusted_here), "{lan}");
        }
    }

    #[test]
    fn in_a_container_its_networks_are_trusted_but_not_their_gateways() {
        let trusted_here = automatic(true, ROUTES);
        // Traefik on the Dokploy network, another container on the bridge.
        assert!(trusted(ip("10.0.1.7"), &trusted_here));
        assert!(trusted(ip("172.17.0.3"), &trusted_here));
        assert!(trusted(ip("127.0.0.1"), &trusted_here));
        // docker-proxy (a published port) comes from the gateway; LAN clients from elsewhere.
        for untrusted in ["172.17.0.1", "10.0.1.1", "192.168.1.50", "8.8.8.8"] {
            assert!(!trusted(ip(untrusted), &trusted_here), "{untrusted}");
        }
    }

    #[test]
    fn an_address_is_cut_out_of_a_network_exactly() {
        let network: Ipv4Net = "172.17.0.0/16".parse().unwrap();
        let pieces = without(network, "172.17.0.1".parse().unwrap());
        assert_eq!(pieces.len(), 16);
        let total: u64 = pieces.iter().map(|p| 1u64 << (32 - p.prefix_len())).sum();
        assert_eq!(total, 65_535);
        assert!(
            !pieces
                .iter()
                .any(|p| p.contains(&"172.17.0.1".parse::<Ipv4Addr>().unwrap()))
        );
    }
}
