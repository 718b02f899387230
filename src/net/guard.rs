//! Outbound URL guard: keeps user-supplied URLs from reaching this machine or
//! its network (server-side request forgery).
//!
//! Three checks work together, because each one alone can be bypassed:
//! - [`AddressPolicy::check_url`] refuses non-http(s) schemes and IP-literal
//!   hosts that are not public. Callers must run it on the first URL: hyper
//!   connects to an IP literal directly, without asking the resolver.
//! - [`GuardedResolver`] checks every address a host name resolves to, at
//!   connect time, so a name that points at 127.0.0.1 (or is re-pointed there
//!   after a first check, "DNS rebinding") gets no connection at all.
//! - [`redirect_policy`] runs `check_url` on every redirect hop.
//!
//! [`guarded_client_builder`] wires the last two into a reqwest client and
//! turns proxies off (a proxy resolves names itself, out of our sight).
//!
//! URLs may carry user info (`https://user:pass@host/`); nothing here logs a
//! whole URL or puts one in an error, only host names and addresses.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Redirect hops a [`guarded_client_builder`] client follows, as reqwest's default.
pub const MAX_REDIRECTS: usize = 10;

const METADATA_KIND: &str = "a cloud metadata address";

/// Cloud instance-metadata endpoints. They hand out credentials, so they stay
/// refused even with `allow_private`; only an explicit `allowed` entry lifts
/// them.
const METADATA_V4: [Ipv4Addr; 4] = [
    Ipv4Addr::new(169, 254, 169, 254), // AWS, GCP, Azure, OpenStack, DigitalOcean...
    Ipv4Addr::new(169, 254, 170, 2),   // AWS ECS task metadata
    Ipv4Addr::new(100, 100, 100, 200), // Alibaba Cloud
    Ipv4Addr::new(168, 63, 129, 16),   // Azure WireServer (a public address!)
];
const METADATA_V6: [Ipv6Addr; 1] = [
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254), // AWS IMDS over IPv6
];

/// Why a fetch was refused. `Display` is meant for the person who submitted
/// the URL, so it names the host and the rule, never the whole URL.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum GuardError {
    /// The URL's scheme, without the colon.
    #[error("only http and https URLs can be fetched (got {0}:)")]
    Scheme(String),
    #[error("the URL has no host to fetch from")]
    NoHost,
    #[error(
        "refused to fetch from {}: it is {kind}, not a public one ({})",
        describe_target(.host, .ip),
        refusal_hint(.kind)
    )]
    Refused {
        /// Host name as written in the URL, or the address itself.
        host: String,
        ip: IpAddr,
        kind: &'static str,
    },
    #[error("{host} did not resolve to any address")]
    NoAddress { host: String },
    #[error("could not look up {host}: {message}")]
    Lookup { host: String, message: String },
    #[error("stopped after {max} redirects: the page keeps redirecting")]
    TooManyRedirects { max: usize },
}

fn describe_target(host: &str, ip: &IpAddr) -> String {
    if host == ip.to_string() {
        host.to_owned()
    } else {
        format!("{host} ({ip})")
    }
}

fn refusal_hint(kind: &str) -> &'static str {
    if kind == METADATA_KIND {
        "cloud metadata addresses stay refused even where private addresses are allowed; an operator can allow one range of them explicitly"
    } else {
        "an operator can allow private addresses in FocusFlow's settings"
    }
}

/// A URL that passed [`AddressPolicy::check_url`]: http(s), with a host, and not an IP literal
/// the policy refuses. Built once where a URL comes in (a form, the API, a stored job, a Plaud
/// answer), so a stage that takes one fetches it without parsing or checking it again. Host
/// names are still checked when connecting, by [`GuardedResolver`], against DNS rebinding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioUrl(Url);

/// Why a text is not an [`AudioUrl`].
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AudioUrlError {
    #[error("{0}")]
    NotAUrl(#[from] url::ParseError),
    #[error(transparent)]
    Refused(#[from] GuardError),
}

impl AudioUrl {
    /// Parses `text` and runs the policy's checks on it.
    pub fn parse(text: &str, policy: &AddressPolicy) -> Result<Self, AudioUrlError> {
        Ok(Self::check(Url::parse(text)?, policy)?)
    }

    /// Runs the policy's checks on a parsed URL.
    pub fn check(url: Url, policy: &AddressPolicy) -> Result<Self, GuardError> {
        policy.check_url(&url)?;
        Ok(Self(url))
    }

    pub fn as_url(&self) -> &Url {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl std::fmt::Display for AudioUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// Which addresses outbound fetches may reach. The default reaches public
/// unicast addresses only.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allow_private: bool,
    allowed: Vec<IpNet>,
}

impl AddressPolicy {
    /// `allow_private` lifts every refusal except cloud metadata endpoints
    /// (for home labs fetching from their own network). `allowed` lists CIDRs
    /// reachable even though they are not public, metadata included.
    pub fn new(allow_private: bool, allowed: Vec<IpNet>) -> Self {
        Self {
            allow_private,
            allowed,
        }
    }

    /// Everything is reachable: for endpoints the operator configured (an LLM
    /// server on localhost, say), never for URLs a user typed.
    pub fn allow_all() -> Self {
        // 0.0.0.0/0 and ::/0.
        let everything = [
            IpNet::V4(ipnet::Ipv4Net::default()),
            IpNet::V6(ipnet::Ipv6Net::default()),
        ];
        Self::new(true, everything.to_vec())
    }

    /// Whether a connection to `ip` is allowed. The error names the address
    /// as the host; callers that know a host name replace it.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), GuardError> {
        if self.is_listed(ip) {
            return Ok(());
        }
        match refusal(ip) {
            None => Ok(()),
            Some(kind) if self.allow_private && kind != METADATA_KIND => Ok(()),
            Some(kind) => Err(GuardError::Refused {
                host: ip.to_string(),
                ip,
                kind,
            }),
        }
    }

    /// Checks the scheme and, for an IP-literal host, the address. A host
    /// name passes: its addresses are checked when connecting, by
    /// [`GuardedResolver`].
    ///
    /// The `url` crate has already normalised odd IPv4 spellings (`127.1`,
    /// `0x7f000001`, `2130706433`, `%31%32%37.0.0.1`) into an IPv4 host.
    pub fn check_url(&self, url: &Url) -> Result<(), GuardError> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(GuardError::Scheme(scheme.to_owned()));
        }
        let ip = match url.host() {
            None => return Err(GuardError::NoHost),
            Some(Host::Domain("")) => return Err(GuardError::NoHost),
            Some(Host::Domain(name)) => match name.parse::<IpAddr>() {
                // Not produced by `url` for http(s); checked in case it ever is.
                Ok(ip) => ip,
                Err(_) => return Ok(()),
            },
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
        };
        self.check_ip(ip)
    }

    /// Keeps the allowed addresses of a DNS answer. Fails, naming the first
    /// refused address, when none is left, so the caller connects nowhere.
    fn screen(&self, host: &str, addrs: Vec<IpAddr>) -> Result<Vec<IpAddr>, GuardError> {
        let mut first_refusal = None;
        let mut kept = Vec::with_capacity(addrs.len());
        for ip in addrs {
            match self.check_ip(ip) {
                Ok(()) => kept.push(ip),
                Err(err) => {
                    if let GuardError::Refused { kind, .. } = &err {
                        tracing::warn!(host, %ip, kind, "dropped a non-public address from a DNS answer");
                    }
                    first_refusal.get_or_insert(err);
                }
            }
        }
        if !kept.is_empty() {
            return Ok(kept);
        }
        Err(match first_refusal {
            Some(GuardError::Refused { ip, kind, .. }) => GuardError::Refused {
                host: host.to_owned(),
                ip,
                kind,
            },
            Some(other) => other,
            None => GuardError::NoAddress {
                host: host.to_owned(),
            },
        })
    }

    fn is_listed(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 address reaches the same host as its IPv4 form.
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.allowed
            .iter()
            .any(|net| net.contains(&ip) || mapped.is_some_and(|v4| net.contains(&v4)))
    }
}

/// What kind of non-public address `ip` is, or `None` for a public one.
fn refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    if METADATA_V4.contains(&ip) {
        return Some(METADATA_KIND);
    }
    let [a, b, c, _] = ip.octets();
    let kind = match (a, b, c) {
        (255, 255, 255) if ip.is_broadcast() => "the broadcast address",
        (0, _, _) => "an unspecified (\"this network\") address",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "a private address",
        (100, 64..=127, _) => "a shared (carrier-grade NAT) address",
        (127, _, _) => "a loopback address",
        (169, 254, _) => "a link-local address",
        (192, 0, 0) => "a reserved (IETF protocol) address",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (192, 88, 99) => "a reserved (6to4 relay) address",
        (198, 18..=19, _) => "a benchmarking address",
        (224..=239, _, _) => "a multicast address",
        (240..=255, _, _) => "a reserved address",
        _ => return None,
    };
    Some(kind)
}

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if METADATA_V6.contains(&ip) {
        return Some(METADATA_KIND);
    }
    // ::ffff:a.b.c.d — a dual-stack socket connects to a.b.c.d.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refusal_v4(v4);
    }
    if ip.is_unspecified() {
        return Some("the unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    let s = ip.segments();
    let o = ip.octets();
    let low_v4 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match s {
        // ::a.b.c.d, deprecated IPv4-compatible: refused whatever it embeds.
        [0, 0, 0, 0, 0, 0, _, _] => {
            Some(refusal_v4(low_v4).unwrap_or("a deprecated IPv4-compatible address"))
        }
        // NAT64 (64:ff9b::/96): reaches the embedded IPv4 address through a
        // translator; DNS64 networks answer public names with these.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => refusal_v4(low_v4),
        [0x64, 0xff9b, 1, ..] => Some("a private (local-use NAT64) address"),
        // 6to4 (2002::/16): the next 32 bits are the IPv4 address.
        [0x2002, hi, lo, ..] => refusal_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))),
        [0x2001, 0x0db8, ..] => Some("a documentation address"),
        [0x3fff, second, ..] if second < 0x1000 => Some("a documentation address"),
        // 2001::/23: IETF protocol assignments (Teredo, benchmarking, ORCHID).
        [0x2001, second, ..] if second < 0x0200 => Some("a reserved (IETF protocol) address"),
        // Global unicast lives in 2000::/3; outside it only special ranges.
        [first, ..] if first & 0xe000 == 0x2000 => None,
        [first, ..] if first & 0xfe00 == 0xfc00 => Some("a private (unique local) address"),
        [first, ..] if first & 0xffc0 == 0xfe80 => Some("a link-local address"),
        [first, ..] if first & 0xffc0 == 0xfec0 => Some("a private (site-local) address"),
        [first, ..] if first & 0xff00 == 0xff00 => Some("a multicast address"),
        _ => Some("a reserved address"),
    }
}

/// reqwest resolver that checks every address it returns against the policy.
/// Since reqwest connects only to what the resolver returns, the address
/// checked is the address connected to.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<AddressPolicy>,
    overrides: HashMap<String, Vec<IpAddr>>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<AddressPolicy>) -> Self {
        Self {
            policy,
            overrides: HashMap::new(),
        }
    }

    /// Answers `host` with `addrs` instead of asking DNS; the answer is still
    /// screened by the policy. Lets tests point names at loopback servers.
    pub fn with_override(mut self, host: &str, addrs: Vec<IpAddr>) -> Self {
        self.overrides.insert(normalise_host(host), addrs);
        self
    }
}

fn normalise_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let policy = Arc::clone(&self.policy);
        let overridden = self.overrides.get(&normalise_host(&host)).cloned();
        Box::pin(async move {
            let addrs = match overridden {
                Some(addrs) => addrs,
                None => tokio::net::lookup_host((host.as_str(), 0))
                    .await
                    .map_err(|err| GuardError::Lookup {
                        host: host.clone(),
                        message: err.to_string(),
                    })?
                    .map(|addr| addr.ip())
                    .collect(),
            };
            let kept = policy.screen(&host, addrs)?;
            // Port 0 is replaced by the URL's port (or the scheme default).
            let addrs: Addrs = Box::new(kept.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// Follows at most `max_hops` redirects, each only after `check_url` passes.
/// Host names among them are checked again by the resolver on connect.
pub fn redirect_policy(policy: Arc<AddressPolicy>, max_hops: usize) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if let Err(err) = policy.check_url(attempt.url()) {
            tracing::warn!(host = attempt.url().host_str(), error = %err, "refused a redirect");
            return attempt.error(err);
        }
        // `previous` holds the first URL and every hop already followed.
        if attempt.previous().len() > max_hops {
            return attempt.error(GuardError::TooManyRedirects { max: max_hops });
        }
        attempt.follow()
    })
}

/// A reqwest client builder with the guard in place: resolver, redirect
/// policy (at most [`MAX_REDIRECTS`] hops) and no proxy. Callers still run
/// [`AddressPolicy::check_url`] on the first URL, and must not add
/// `resolve()` overrides or a proxy, which would bypass the resolver.
pub fn guarded_client_builder(
    policy: Arc<AddressPolicy>,
    resolver: GuardedResolver,
) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(resolver))
        .redirect(redirect_policy(policy, MAX_REDIRECTS))
        .no_proxy()
}

/// Finds the [`GuardError`] behind an error (typically a `reqwest::Error`
/// from a refused connect or redirect), so the user sees why instead of
/// "error sending request".
pub fn find_guard_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a GuardError> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(guard) = err.downcast_ref::<GuardError>() {
            return Some(guard);
        }
        current = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    fn net(text: &str) -> IpNet {
        text.parse().expect("test CIDR")
    }

    fn url(text: &str) -> Url {
        Url::parse(text).expect("test URL")
    }

    fn strict() -> AddressPolicy {
        AddressPolicy::new(false, Vec::new())
    }

    /// Every non-public address class, with the kind the error must name.
    const REFUSED_IPS: &[(&str, &str)] = &[
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("10.255.255.255", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "unique local"),
        ("fd12:3456::1", "unique local"),
        ("169.254.0.1", "link-local"),
        ("169.254.169.254", "metadata"),
        ("169.254.170.2", "metadata"),
        ("100.100.100.200", "metadata"),
        ("168.63.129.16", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("fe80::1", "link-local"),
        ("febf::1", "link-local"),
        ("fec0::1", "site-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("ff0e::1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("192.0.0.8", "IETF protocol"),
        ("192.0.2.1", "documentation"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.9", "documentation"),
        ("2001:db8::1", "documentation"),
        ("3fff::1", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("198.19.255.255", "benchmarking"),
        ("192.88.99.1", "6to4 relay"),
        ("240.0.0.1", "reserved"),
        ("254.1.2.3", "reserved"),
        // IPv4 wrapped in IPv6.
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "metadata"),
        ("::127.0.0.1", "loopback"),
        ("::10.1.2.3", "private"),
        ("::8.8.8.8", "IPv4-compatible"),
        ("64:ff9b::7f00:1", "loopback"),
        ("64:ff9b::10.0.0.1", "private"),
        ("64:ff9b::169.254.169.254", "metadata"),
        ("64:ff9b:1::1", "local-use NAT64"),
        ("2002:7f00:1::1", "loopback"),
        ("2002:c0a8:101::1", "private"),
        ("2002:a9fe:a9fe::", "metadata"),
        // Other special IPv6 space.
        ("2001::1", "IETF protocol"),
        ("2001:2::1", "IETF protocol"),
        ("::ffff:0:7f00:1", "reserved"),
        ("100::1", "reserved"),
        ("5f00::1", "reserved"),
        ("4000::1", "reserved"),
    ];

    const PUBLIC_IPS: &[&str] = &[
        "8.8.8.8",
        "1.1.1.1",
        "93.184.215.14",
        "172.15.255.255",
        "172.32.0.1",
        "100.63.255.255",
        "100.128.0.1",
        "169.253.1.1",
        "192.0.1.1",
        "198.17.255.255",
        "223.255.255.255",
        "2606:4700::1111",
        "2a00:1450:4001::200e",
        "2001:4860:4860::8888",
        "::ffff:8.8.8.8",
        "64:ff9b::8.8.8.8",
        "2002:808:808::1",
    ];

    #[test]
    fn refuses_non_public_addresses() {
        let policy = strict();
        for &(text, kind) in REFUSED_IPS {
            match policy.check_ip(ip(text)) {
                Err(GuardError::Refused {
                    host,
                    ip: refused,
                    kind: got,
                }) => {
                    assert!(got.contains(kind), "{text}: kind {got:?}, want {kind:?}");
                    assert_eq!(refused, ip(text));
                    assert_eq!(host, ip(text).to_string());
                }
                other => panic!("{text} was not refused: {other:?}"),
            }
        }
    }

    #[test]
    fn allows_public_addresses() {
        let policy = strict();
        for &text in PUBLIC_IPS {
            assert_eq!(policy.check_ip(ip(text)), Ok(()), "{text}");
        }
    }

    #[test]
    fn refuses_urls_with_odd_spellings_of_private_hosts() {
        let policy = strict();
        let cases = [
            ("http://127.0.0.1/", "127.0.0.1"),
            ("http://127.1/", "127.0.0.1"),
            ("http://0x7f000001/", "127.0.0.1"),
            ("http://2130706433/", "127.0.0.1"),
            ("http://017700000001/", "127.0.0.1"),
            ("http://0x7f.0.0.1/", "127.0.0.1"),
            ("http://127.0.0.1./", "127.0.0.1"),
            ("http://%31%32%37.0.0.1/", "127.0.0.1"),
            ("http://①②⑦.0.0.1/", "127.0.0.1"),
            ("HTTP://127.0.0.1:8080/x", "127.0.0.1"),
            ("https://user:secret@127.0.0.1/", "127.0.0.1"),
            ("http://0/", "0.0.0.0"),
            ("http://0.0.0.0:11434/", "0.0.0.0"),
            ("http://10.0.0.1/", "10.0.0.1"),
            ("http://192.168.0.1/", "192.168.0.1"),
            ("http://172.16.0.1/", "172.16.0.1"),
            ("http://100.64.0.1/", "100.64.0.1"),
            (
                "http://169.254.169.254/latest/meta-data/",
                "169.254.169.254",
            ),
            ("http://0xa9fea9fe/", "169.254.169.254"),
            ("http://224.0.0.1/", "224.0.0.1"),
            ("http://255.255.255.255/", "255.255.255.255"),
            ("http://192.0.2.1/", "192.0.2.1"),
            ("http://[::1]/", "::1"),
            ("http://[0:0:0:0:0:0:0:1]/", "::1"),
            ("http://[::]/", "::"),
            ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
            ("http://[::ffff:7f00:1]/", "::ffff:127.0.0.1"),
            ("http://[0:0:0:0:0:ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
            ("http://[::127.0.0.1]/", "::127.0.0.1"),
            ("http://[64:ff9b::192.168.1.1]/", "64:ff9b::c0a8:101"),
            ("http://[2002:c0a8:0101::1]/", "2002:c0a8:101::1"),
            ("http://[fe80::1]/", "fe80::1"),
            ("http://[fd00::1]/", "fd00::1"),
            ("http://[ff02::1]/", "ff02::1"),
            ("http://[2001:db8::1]/", "2001:db8::1"),
        ];
        for (text, refused) in cases {
            match policy.check_url(&url(text)) {
                Err(GuardError::Refused { ip: got, .. }) => {
                    assert_eq!(got, ip(refused), "{text}");
                }
                other => panic!("{text} was not refused: {other:?}"),
            }
        }
    }

    #[test]
    fn audio_url_carries_the_verdict() {
        let policy = strict();
        let url = AudioUrl::parse("https://example.com/a.mp3", &policy).unwrap();
        assert_eq!(url.as_str(), "https://example.com/a.mp3");
        assert!(matches!(
            AudioUrl::parse("not a url", &policy),
            Err(AudioUrlError::NotAUrl(_))
        ));
        assert!(matches!(
            AudioUrl::parse("http://127.0.0.1/a.mp3", &policy),
            Err(AudioUrlError::Refused(GuardError::Refused { .. }))
        ));
        assert!(matches!(
            AudioUrl::parse("ftp://example.com/a.mp3", &policy),
            Err(AudioUrlError::Refused(GuardError::Scheme(_)))
        ));
    }

    #[test]
    fn refuses_non_http_schemes() {
        let policy = AddressPolicy::allow_all();
        for (text, scheme) in [
            ("file:///etc/passwd", "file"),
            ("ftp://example.com/x", "ftp"),
            ("gopher://example.com:70/1", "gopher"),
            ("data:text/html,<script>alert(1)</script>", "data"),
            ("javascript:alert(1)", "javascript"),
            ("JavaScript:alert(1)", "javascript"),
            ("ws://example.com/", "ws"),
            ("mailto:a@example.com", "mailto"),
            ("dict://127.0.0.1:11211/", "dict"),
        ] {
            assert_eq!(
                policy.check_url(&url(text)),
                Err(GuardError::Scheme(scheme.to_owned())),
                "{text}"
            );
        }
    }

    #[test]
    fn allows_public_urls_and_host_names() {
        let policy = strict();
        for text in [
            "http://8.8.8.8/",
            "https://1.1.1.1/dns-query",
            "https://[2606:4700::1111]/",
            "https://example.com/",
            "HTTPS://EXAMPLE.COM/",
            "http://example.com:8080/path?q=1#frag",
            "https://user:pass@example.com/",
            "https://sub.example.co.uk./",
            // Names are checked when they resolve, by GuardedResolver.
            "http://localhost/",
            "http://127.0.0.1.nip.io/",
        ] {
            assert_eq!(policy.check_url(&url(text)), Ok(()), "{text}");
        }
    }

    #[test]
    fn allow_private_lifts_everything_but_metadata() {
        let policy = AddressPolicy::new(true, Vec::new());
        for &(text, kind) in REFUSED_IPS {
            let result = policy.check_ip(ip(text));
            if kind == "metadata" {
                assert!(result.is_err(), "{text} must stay refused");
            } else {
                assert_eq!(result, Ok(()), "{text}");
            }
        }
        assert_eq!(policy.check_url(&url("http://[::1]:11434/")), Ok(()));
        assert_eq!(policy.check_url(&url("http://127.1/")), Ok(()));
    }

    #[test]
    fn allowed_list_lifts_only_its_cidr() {
        let policy = AddressPolicy::new(false, vec![net("10.1.0.0/16"), net("fd00:1::/32")]);
        assert_eq!(policy.check_ip(ip("10.1.2.3")), Ok(()));
        assert_eq!(policy.check_ip(ip("::ffff:10.1.2.3")), Ok(()));
        assert_eq!(policy.check_ip(ip("fd00:1:2::3")), Ok(()));
        for text in [
            "10.2.0.1",
            "10.0.255.255",
            "127.0.0.1",
            "fd00:2::1",
            "169.254.169.254",
        ] {
            assert!(policy.check_ip(ip(text)).is_err(), "{text}");
        }
        assert_eq!(policy.check_url(&url("http://10.1.0.9:8080/")), Ok(()));
        assert!(policy.check_url(&url("http://10.9.0.9/")).is_err());
    }

    #[test]
    fn metadata_needs_an_explicit_entry() {
        let policy = AddressPolicy::new(true, vec![net("169.254.169.254/32")]);
        assert_eq!(policy.check_ip(ip("169.254.169.254")), Ok(()));
        assert!(policy.check_ip(ip("fd00:ec2::254")).is_err());
    }

    #[test]
    fn allow_all_allows_everything() {
        let policy = AddressPolicy::allow_all();
        for &(text, _) in REFUSED_IPS {
            assert_eq!(policy.check_ip(ip(text)), Ok(()), "{text}");
        }
        assert_eq!(policy.check_url(&url("http://localhost:11434/api")), Ok(()));
    }

    #[test]
    fn messages_are_clear() {
        let policy = strict();
        let err = policy.check_url(&url("http://127.0.0.1/")).err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some(
                "refused to fetch from 127.0.0.1: it is a loopback address, not a public one \
                 (an operator can allow private addresses in FocusFlow's settings)"
            )
        );
        let err = policy.check_url(&url("file:///etc/passwd")).err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("only http and https URLs can be fetched (got file:)")
        );
        let err = policy.check_url(&url("http://169.254.169.254/")).err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("cloud metadata address"), "{text}");
        assert!(text.contains("stay refused"), "{text}");

        let err = policy
            .screen("intranet.example", vec![ip("10.0.0.7")])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with(
                "refused to fetch from intranet.example (10.0.0.7): it is a private address"
            ),
            "{err}"
        );
    }

    #[test]
    fn user_info_never_reaches_the_error() {
        let err = strict()
            .check_url(&url("http://admin:hunter2@10.0.0.1/"))
            .err()
            .map(|e| format!("{e} {e:?}"))
            .unwrap_or_default();
        assert!(err.contains("10.0.0.1"), "{err}");
        assert!(!err.contains("hunter2") && !err.contains("admin"), "{err}");
    }

    #[test]
    fn screen_keeps_public_addresses_and_drops_the_rest() {
        let policy = strict();
        let answer = vec![
            ip("127.0.0.1"),
            ip("93.184.215.14"),
            ip("::1"),
            ip("2606:4700::1111"),
        ];
        assert_eq!(
            policy.screen("mixed.example", answer),
            Ok(vec![ip("93.184.215.14"), ip("2606:4700::1111")])
        );
        assert_eq!(
            policy.screen("rebind.example", vec![ip("10.0.0.1"), ip("127.0.0.1")]),
            Err(GuardError::Refused {
                host: "rebind.example".into(),
                ip: ip("10.0.0.1"),
                kind: "a private address",
            })
        );
        assert_eq!(
            policy.screen("empty.example", Vec::new()),
            Err(GuardError::NoAddress {
                host: "empty.example".into()
            })
        );
    }

    async fn resolve(resolver: &GuardedResolver, host: &str) -> Result<Vec<SocketAddr>, String> {
        let name: Name = host.parse().map_err(|_| "bad name".to_owned())?;
        match resolver.resolve(name).await {
            Ok(addrs) => Ok(addrs.collect()),
            Err(err) => Err(find_guard_error(&*err)
                .map(|e| format!("{e:?}"))
                .unwrap_or_else(|| err.to_string())),
        }
    }

    #[tokio::test]
    async fn resolver_screens_overrides_and_lookups() {
        let policy = Arc::new(AddressPolicy::new(false, vec![net("127.0.0.2/32")]));
        let resolver = GuardedResolver::new(policy)
            .with_override("Evil.Example.", vec![ip("127.0.0.1")])
            .with_override("lab.example", vec![ip("127.0.0.1"), ip("127.0.0.2")]);

        let err = resolve(&resolver, "evil.example")
            .await
            .err()
            .unwrap_or_default();
        assert!(
            err.contains("Refused") && err.contains("127.0.0.1"),
            "{err}"
        );
        assert_eq!(
            resolve(&resolver, "lab.example").await,
            Ok(vec!["127.0.0.2:0".parse().expect("addr")])
        );
        // Not overridden: a real lookup, which for an address needs no DNS.
        let err = resolve(&resolver, "127.0.0.1")
            .await
            .err()
            .unwrap_or_default();
        assert!(err.contains("Refused"), "{err}");
        assert_eq!(
            resolve(&resolver, "127.0.0.2").await,
            Ok(vec!["127.0.0.2:0".parse().expect("addr")])
        );
    }

    #[test]
    fn find_guard_error_walks_the_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] Box<dyn StdError + Send + Sync>);

        let inner: Box<dyn StdError + Send + Sync> = Box::new(GuardError::NoHost);
        let outer = Outer(Box::new(Outer(inner)));
        assert_eq!(find_guard_error(&outer), Some(&GuardError::NoHost));
        assert_eq!(find_guard_error(&std::fmt::Error), None);
    }

    /// A loopback HTTP/1.1 server that answers every request with `response`
    /// and counts the connections it accepts.
    struct TestServer {
        addr: SocketAddr,
        connections: Arc<AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl TestServer {
        async fn start(bind: &str, response: String) -> Self {
            let listener = TcpListener::bind((ip(bind), 0)).await.expect("bind");
            let addr = listener.local_addr().expect("local addr");
            let connections = Arc::new(AtomicUsize::new(0));
            let counter = Arc::clone(&connections);
            let task = tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let response = response.clone();
                    tokio::spawn(async move {
                        let mut request = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !request.windows(4).any(|w| w == b"\r\n\r\n")
                            && request.len() < 16_384
                        {
                            match stream.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => request.extend_from_slice(&buf[..n]),
                            }
                        }
                        let _ = stream.write_all(response.as_bytes()).await;
                        let _ = stream.shutdown().await;
                    });
                }
            });
            Self {
                addr,
                connections,
                task,
            }
        }

        async fn ok(bind: &str) -> Self {
            let body = "hello";
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            Self::start(bind, response).await
        }

        async fn redirect(bind: &str, location: &str) -> Self {
            let response = format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            Self::start(bind, response).await
        }

        /// Connections accepted so far, after letting pending ones arrive.
        async fn connections(&self) -> usize {
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.connections.load(Ordering::SeqCst)
        }
    }

    fn client(policy: AddressPolicy, overrides: &[(&str, &str)]) -> reqwest::Client {
        let policy = Arc::new(policy);
        let resolver = overrides.iter().fold(
            GuardedResolver::new(Arc::clone(&policy)),
            |r, (host, addr)| r.with_override(host, vec![ip(addr)]),
        );
        guarded_client_builder(policy, resolver)
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client")
    }

    fn refused_ip(err: &reqwest::Error) -> Option<IpAddr> {
        match find_guard_error(err) {
            Some(GuardError::Refused { ip, .. }) => Some(*ip),
            _ => None,
        }
    }

    #[tokio::test]
    async fn name_resolving_to_loopback_gets_no_connection() {
        let server = TestServer::ok("127.0.0.1").await;
        let target = format!("http://internal.test:{}/", server.addr.port());
        assert_eq!(strict().check_url(&url(&target)), Ok(()));

        let client = client(strict(), &[("internal.test", "127.0.0.1")]);
        let err = client.get(&target).send().await.expect_err("must fail");
        let guard = find_guard_error(&err).cloned();
        assert_eq!(
            guard,
            Some(GuardError::Refused {
                host: "internal.test".into(),
                ip: ip("127.0.0.1"),
                kind: "a loopback address",
            }),
            "{err:?}"
        );
        assert_eq!(server.connections().await, 0);

        // Control: the same request with 127.0.0.1 allowed does connect.
        let allowed = AddressPolicy::new(false, vec![net("127.0.0.1/32")]);
        let client = self::client(allowed, &[("internal.test", "127.0.0.1")]);
        let body = client
            .get(&target)
            .send()
            .await
            .expect("allowed")
            .text()
            .await;
        assert_eq!(body.ok().as_deref(), Some("hello"));
        assert_eq!(server.connections().await, 1);
    }

    #[tokio::test]
    async fn redirect_to_loopback_literal_is_refused() {
        let target = TestServer::ok("127.0.0.1").await;
        let location = format!("http://127.0.0.1:{}/", target.addr.port());
        let hop = TestServer::redirect("127.0.0.2", &location).await;
        let start = format!("http://127.0.0.2:{}/", hop.addr.port());

        let policy = AddressPolicy::new(false, vec![net("127.0.0.2/32")]);
        assert_eq!(policy.check_url(&url(&start)), Ok(()));
        let err = client(policy, &[])
            .get(&start)
            .send()
            .await
            .expect_err("must fail");
        assert!(err.is_redirect(), "{err:?}");
        assert_eq!(refused_ip(&err), Some(ip("127.0.0.1")), "{err:?}");
        assert_eq!(hop.connections().await, 1);
        assert_eq!(target.connections().await, 0);

        // Control: with both allowed the redirect is followed.
        let both = AddressPolicy::new(false, vec![net("127.0.0.0/30")]);
        let response = client(both, &[])
            .get(&start)
            .send()
            .await
            .expect("followed");
        assert_eq!(response.url().as_str(), location);
        assert_eq!(target.connections().await, 1);
    }

    #[tokio::test]
    async fn redirect_to_name_resolving_to_loopback_is_refused() {
        let target = TestServer::ok("127.0.0.1").await;
        let location = format!("http://sneaky.test:{}/", target.addr.port());
        let hop = TestServer::redirect("127.0.0.2", &location).await;
        let start = format!("http://127.0.0.2:{}/", hop.addr.port());

        let policy = AddressPolicy::new(false, vec![net("127.0.0.2/32")]);
        let client = client(policy, &[("sneaky.test", "127.0.0.1")]);
        let err = client.get(&start).send().await.expect_err("must fail");
        let guard = find_guard_error(&err);
        assert!(
            matches!(guard, Some(GuardError::Refused { host, .. }) if host == "sneaky.test"),
            "{err:?}"
        );
        assert_eq!(target.connections().await, 0);
    }

    /// A server on 127.0.0.2 that redirects every request to `location`, and what a request
    /// to it through a client that may reach 127.0.0.2 only came back with.
    async fn redirected(location: &str) -> (TestServer, reqwest::Result<reqwest::Response>) {
        let hop = TestServer::redirect("127.0.0.2", location).await;
        let start = format!("http://127.0.0.2:{}/", hop.addr.port());
        let policy = AddressPolicy::new(false, vec![net("127.0.0.2/32")]);
        let sent = client(policy, &[]).get(&start).send().await;
        (hop, sent)
    }

    #[tokio::test]
    async fn redirect_to_other_scheme_is_refused() {
        let (_hop, sent) = redirected("gopher://127.0.0.1:70/_x").await;
        let err = sent.expect_err("must fail");
        assert_eq!(
            find_guard_error(&err),
            Some(&GuardError::Scheme("gopher".into())),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn redirect_to_file_url_is_not_followed() {
        // http::Uri cannot hold `file:///...`, so it never reaches the policy;
        // the redirect response itself comes back.
        let (hop, sent) = redirected("file:///etc/passwd").await;
        let response = sent.expect("response");
        assert_eq!(response.status(), reqwest::StatusCode::FOUND);
        assert_eq!(hop.connections().await, 1);
    }

    #[tokio::test]
    async fn redirect_loop_stops_after_max_hops() {
        // A relative Location sends the client back to the same server.
        let (listener, sent) = redirected("/again").await;
        let err = sent.expect_err("must fail");
        assert_eq!(
            find_guard_error(&err),
            Some(&GuardError::TooManyRedirects { max: MAX_REDIRECTS }),
            "{err:?}"
        );
        assert_eq!(listener.connections().await, MAX_REDIRECTS + 1);
        assert!(
            find_guard_error(&err)
                .map(|e| e.to_string())
                .is_some_and(|m| m.contains("stopped after 10 redirects"))
        );
    }
}
