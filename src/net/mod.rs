//! Outbound HTTP: the clients, the public-address guard, retries and the SSE reader.

pub mod guard;
pub mod retry;
pub mod sse;

use std::sync::Arc;

use crate::config::Config;
use guard::{AddressPolicy, GuardedResolver};

const USER_AGENT: &str = concat!("FocusFlow/", env!("CARGO_PKG_VERSION"));

/// The two clients the server uses, built once.
#[derive(Clone, Debug)]
pub struct Clients {
    /// For URLs a user supplied or a scraped page pointed to: every connection is checked
    /// against the address policy, every redirect hop too.
    pub user: reqwest::Client,
    /// For endpoints the operator configured (LLM, transcription, Plaud): trusted.
    pub trusted: reqwest::Client,
    pub policy: Arc<AddressPolicy>,
}

impl Clients {
    pub fn new(config: &Config) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(AddressPolicy::new(
            config.allow_private_urls,
            config.allow_private_cidrs.clone(),
        ));
        let mut resolver = GuardedResolver::new(policy.clone());
        for (host, addresses) in &config.hosts_override {
            resolver = resolver.with_override(host, addresses.clone());
        }
        let user = guard::guarded_client_builder(policy.clone(), resolver)
            .user_agent(USER_AGENT)
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.provider_read_timeout)
            .build()?;
        let trusted = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.provider_read_timeout)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()?;
        Ok(Self {
            user,
            trusted,
            policy,
        })
    }
}

/// The message of an error and of everything that caused it, for a log line or a job's error.
/// A refusal by the address guard is reported as itself, without reqwest's wrapping.
pub fn describe_error(error: &reqwest::Error) -> String {
    if let Some(refusal) = guard::find_guard_error(error) {
        return refusal.to_string();
    }
    let mut message = if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_connect() {
        "could not connect".to_string()
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    let mut seen = 0;
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) && seen < 3 {
            message.push_str(": ");
            message.push_str(&text);
            seen += 1;
        }
        source = cause.source();
    }
    // Never echo credentials that a URL may carry.
    redact_userinfo(&message)
}

/// `https://user:pass@host/` → `https://***@host/` inside a message.
pub fn redact_userinfo(text: &str) -> String {
    static PATTERN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)\b(https?://)[^/\s@]+@").expect("a valid pattern")
    });
    PATTERN.replace_all(text, "${1}***@").into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn userinfo_is_redacted() {
        assert_eq!(
            super::redact_userinfo("failed for https://ana:secret@example.com/a.mp3"),
            "failed for https://***@example.com/a.mp3"
        );
    }
}
