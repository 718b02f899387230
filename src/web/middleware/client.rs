//! Who is asking: the client's address, as the rate limiter and the logs should see it.
//!
//! It is the peer's address, unless the peer is a trusted proxy (Traefik on a private Docker
//! network): then it is the right-most `X-Forwarded-For` entry that is not itself a trusted
//! proxy. Entries further left were written by the client and prove nothing, so a client
//! cannot pick its own key by sending a made-up header.
//!
//! Only a trusted proxy's `X-Forwarded-Host` and `X-Forwarded-Proto` are believed too: they
//! are recorded as [`Forwarded`] for the cross-site check.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use crate::web::AppState;

/// The client's address, set on every request by [`identify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// IPv4 addresses that arrive wrapped in IPv6 (`::ffff:a.b.c.d`) are plain IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

use crate::config::proxies::trusted;

/// What a trusted proxy said about the request it forwarded: the host and scheme the browser
/// used. Absent when the peer is not a trusted proxy (its headers prove nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forwarded {
    /// `X-Forwarded-Host`, as sent (possibly a comma-separated list).
    pub host: Option<String>,
    /// `X-Forwarded-Proto` of the first hop, lower case (`https`).
    pub proto: Option<String>,
}

impl Forwarded {
    fn from_headers(headers: &HeaderMap) -> Self {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::trim)
                .filter(|value| !value.is_empty())
        };
        Self {
            host: header("x-forwarded-host").map(str::to_string),
            proto: header("x-forwarded-proto")
                .and_then(|value| value.split(',').next())
                .map(|value| value.trim().to_ascii_lowercase()),
        }
    }
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:80`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim().trim_matches('"');
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(socket) = entry.parse::<SocketAddr>() {
        return Some(canonical(socket.ip()));
    }
    None
}

/// The client address for a request from `peer` with these headers.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if !trusted(peer, proxies) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        match parse_entry(entry) {
            Some(ip) if trusted(ip, proxies) => client = ip,
            Some(ip) => return ip,
            // Garbage: nothing to its left can be believed either.
            None => return client,
        }
    }
    client
}

/// Records the [`ClientAddress`] for the checks and handlers after it (see `web::Guard`).
pub fn identify(state: &AppState, request: &mut Request) {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let proxies = &state.config.trusted_proxies;
    let address = client_address(peer, request.headers(), proxies);
    if trusted(canonical(peer), proxies) {
        let forwarded = Forwarded::from_headers(request.headers());
        request.extensions_mut().insert(forwarded);
    } else {
        warn_of_direct_access(canonical(peer), proxies);
    }
    request.extensions_mut().insert(ClientAddress(address));
}

/// When proxies other than loopback are trusted, a request from an untrusted peer means the
/// port was reached around the proxy (a published port, or another network). Said once an hour
/// at most: it may be on purpose, and the log must not fill with it.
fn warn_of_direct_access(peer: IpAddr, proxies: &[IpNet]) {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST_WARNED: AtomicI64 = AtomicI64::new(i64::MIN);
    if proxies.iter().all(|net| net.addr().is_loopback()) {
        return;
    }
    let now = crate::jobs::now_millis();
    let last = LAST_WARNED.load(Ordering::Relaxed);
    if now.saturating_sub(last) < 3_600_000
        || LAST_WARNED
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    tracing::warn!(
        %peer,
        "a request reached FocusFlow directly, not through a trusted proxy: it is rate limited by \
         its own address and its X-Forwarded-* headers are ignored. Expected if the port is \
         published on purpose; if a proxy sits in front, add its address to TRUSTED_PROXIES \
         (said at most once an hour)"
    );
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientAddress>()
            .copied()
            .unwrap_or(ClientAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loopback, and the private ranges a Docker network may use.
    fn proxies() -> Vec<IpNet> {
        "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"
            .split(',')
            .map(|net| net.parse().unwrap())
            .collect()
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let address = client_address(ip("203.0.113.9"), &headers(&["1.2.3.4"]), &proxies());
        assert_eq!(address, ip("203.0.113.9"));
    }

    #[test]
    fn behind_traefik_the_rightmost_untrusted_entry_counts() {
        // The client sent a made-up header; Traefik (172.18.0.2) appended the real address.
        let address = client_address(
            ip("172.18.0.2"),
            &headers(&["6.6.6.6, 198.51.100.7"]),
            &proxies(),
        );
        assert_eq!(address, ip("198.51.100.7"));
        // Two proxies in a row, headers split over several lines.
        let address = client_address(
            ip("10.0.0.5"),
            &headers(&["6.6.6.6", "198.51.100.7, 10.0.0.9"]),
            &proxies(),
        );
        assert_eq!(address, ip("198.51.100.7"));
    }

    #[test]
    fn odd_entries_are_handled() {
        let trusted = ip("127.0.0.1");
        assert_eq!(
            client_address(trusted, &headers(&["[2001:db8::7]:443"]), &proxies()),
            ip("2001:db8::7")
        );
        assert_eq!(
            client_address(trusted, &headers(&["198.51.100.7:5000"]), &proxies()),
            ip("198.51.100.7")
        );
        // Garbage stops the walk at the last believable hop.
        assert_eq!(
            client_address(trusted, &headers(&["6.6.6.6, not-an-ip"]), &proxies()),
            trusted
        );
        // No header at all: the proxy itself.
        assert_eq!(
            client_address(trusted, &HeaderMap::new(), &proxies()),
            trusted
        );
        // Mapped addresses are IPv4.
        assert_eq!(
            client_address(ip("::ffff:203.0.113.9"), &HeaderMap::new(), &proxies()),
            ip("203.0.113.9")
        );
    }
}
