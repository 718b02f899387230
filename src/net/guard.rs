//! TEMPORARY stub: the real guard is being written (replaced wholesale).
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

#[derive(Debug)]
pub struct AddressPolicy {
    allow_private: bool,
    allowed: Vec<ipnet::IpNet>,
}
impl AddressPolicy {
    pub fn new(allow_private: bool, allowed: Vec<ipnet::IpNet>) -> Self {
        Self {
            allow_private,
            allowed,
        }
    }
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), GuardError> {
        if self.allow_private || self.allowed.iter().any(|n| n.contains(&ip)) || !(ip.is_loopback())
        {
            Ok(())
        } else {
            Err(GuardError::Refused {
                host: ip.to_string(),
            })
        }
    }
    pub fn check_url(&self, url: &url::Url) -> Result<(), GuardError> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(ip.into()),
            Some(url::Host::Ipv6(ip)) => self.check_ip(ip.into()),
            _ => Ok(()),
        }
    }
}
#[derive(Debug, thiserror::Error, Clone)]
pub enum GuardError {
    #[error("refused to fetch from {host}: not a public address")]
    Refused { host: String },
}
pub struct GuardedResolver {
    _policy: Arc<AddressPolicy>,
    _overrides: HashMap<String, Vec<IpAddr>>,
}
impl GuardedResolver {
    pub fn new(policy: Arc<AddressPolicy>) -> Self {
        Self {
            _policy: policy,
            _overrides: HashMap::new(),
        }
    }
    pub fn with_override(self, _host: &str, _addrs: Vec<IpAddr>) -> Self {
        self
    }
}
pub fn guarded_client_builder(
    _policy: Arc<AddressPolicy>,
    _resolver: GuardedResolver,
) -> reqwest::ClientBuilder {
    reqwest::Client::builder().no_proxy()
}
pub fn find_guard_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a GuardError> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(g) = e.downcast_ref::<GuardError>() {
            return Some(g);
        }
        current = e.source();
    }
    None
}
