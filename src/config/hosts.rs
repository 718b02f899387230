//! `ALLOWED_HOSTS`: the host names this server answers to, against DNS rebinding.
//!
//! A web page on another site cannot read this server's answers, unless its own host name
//! starts resolving to this server's address (DNS rebinding): the browser then sends the
//! attacker's name in `Host` and treats the answers as same-origin. So a request whose `Host`
//! is a name nobody configured is refused.
//!
//! Always answered, whatever the setting: IP literals (a rebinding needs a name the attacker
//! controls; an address in the address bar is no such name), `localhost` and `*.localhost`
//! (which browsers resolve to loopback themselves), and this machine's own host name. The names
//! in `ALLOWED_HOSTS` come on top; `*` answers every name, and `*.example.com` every name under
//! `example.com`.

use std::net::IpAddr;

use super::{ConfigError, bad};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts {
    /// `*`: every name is answered.
    any: bool,
    /// Exact names, lower case, without a trailing dot.
    names: Vec<String>,
    /// `*.example.com` as `.example.com`.
    suffixes: Vec<String>,
}

impl AllowedHosts {
    /// The setting as given (`None`: unset), plus the machine's own name.
    pub fn parse(value: Option<&str>, machine_name: Option<&str>) -> Result<Self, ConfigError> {
        let mut hosts = Self {
            any: false,
            names: vec!["localhost".into()],
            suffixes: vec![".localhost".into()],
        };
        if let Some(name) = machine_name.map(normalize).filter(|name| !name.is_empty()) {
            hosts.names.push(name);
        }
        for entry in value.unwrap_or("").split(',').map(str::trim) {
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                hosts.any = true;
                continue;
            }
            let (wildcard, name) = match entry.strip_prefix("*.") {
                Some(rest) => (true, rest),
                None => (false, entry),
            };
            let name = normalize(name);
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
                && !name.starts_with('.')
                && !name.contains("..");
            if !valid {
                return Err(bad(
                    "ALLOWED_HOSTS",
                    format!(
                        "has an entry that is not a host name: {entry:?} (expected e.g. \
                         focusflow.example.com, *.example.com or *; no scheme, port or path)"
                    ),
                ));
            }
            if wildcard {
                hosts.suffixes.push(format!(".{name}"));
            } else {
                hosts.names.push(name);
            }
        }
        hosts.names.sort();
        hosts.names.dedup();
        Ok(hosts)
    }

    /// Whether a request whose `Host` header is `host` (with or without a port) is answered.
    pub fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        let name = host_without_port(host);
        let unbracketed = name.trim_start_matches('[').trim_end_matches(']');
        if unbracketed.parse::<IpAddr>().is_ok() {
            return true;
        }
        let name = normalize(name);
        self.names.contains(&name)
            || self
                .suffixes
                .iter()
                .any(|suffix| name.ends_with(suffix.as_str()))
    }

    /// For the start-up log: what is answered besides IP addresses.
    pub fn describe(&self) -> String {
        if self.any {
            return "every host name (ALLOWED_HOSTS=*)".into();
        }
        let mut shown: Vec<String> = self.names.clone();
        shown.extend(self.suffixes.iter().map(|suffix| format!("*{suffix}")));
        shown.join(", ")
    }
}

fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `example.com:3000` → `example.com`; `[::1]:3000` → `[::1]`; `::1` stays as it is.
fn host_without_port(host: &str) -> &str {
    let host = host.trim();
    if let Some(end) = host.find(']') {
        return &host[..=end];
    }
    match host.rsplit_once(':') {
        // More than one colon and no brackets: a bare IPv6 address.
        Some((name, _)) if !name.contains(':') => name,
        _ => host,
    }
}

/// This machine's host name, as the kernel knows it (in a container: its id, or the name
/// Compose gave it).
pub fn machine_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_addresses_and_the_machine_are_always_answered() {
        let hosts = AllowedHosts::parse(None, Some("nas")).unwrap();
        for host in [
            "localhost",
            "localhost:3000",
            "LOCALHOST.",
            "app.localhost:3000",
            "127.0.0.1:3000",
            "192.168.1.20:3000",
            "[::1]:3000",
            "[fe80::1]",
            "nas:3000",
        ] {
            assert!(hosts.allows(host), "{host}");
        }
        for host in [
            "rebind.attacker.example:3312",
            "localhost.attacker.example",
            "attacker-localhost",
            "nas.attacker.example",
            "",
        ] {
            assert!(!hosts.allows(host), "{host}");
        }
    }

    #[test]
    fn configured_names_and_wildcards() {
        let hosts =
            AllowedHosts::parse(Some("FocusFlow.Example.com, *.corp.example"), None).unwrap();
        assert!(hosts.allows("focusflow.example.com"));
        assert!(hosts.allows("focusflow.example.com.:443"));
        assert!(hosts.allows("meetings.corp.example"));
        assert!(!hosts.allows("corp.example"));
        assert!(!hosts.allows("example.com"));
        assert!(!hosts.allows("evilcorp.example"));
        assert!(
            AllowedHosts::parse(Some("*"), None)
                .unwrap()
                .allows("anything.example")
        );
    }

    #[test]
    fn entries_that_are_not_host_names_are_refused() {
        for value in [
            "https://focusflow.example.com",
            "focusflow.example.com:443",
            "focusflow.example.com/",
            "*.",
            "a..b",
            ".example.com",
        ] {
            let error = AllowedHosts::parse(Some(value), None).unwrap_err();
            assert_eq!(error.variable, "ALLOWED_HOSTS", "{value}");
        }
    }
}
