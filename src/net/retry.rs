//! Retries of provider calls: connection errors, timeouts, 429 and 5xx are tried again with
//! exponential backoff (honouring `Retry-After`); other failures end the call at once.

use std::future::Future;
use std::time::Duration;

use crate::config::RetryPolicy;
use crate::jobs::ErrorKind;

/// A failed call to a provider, classified by whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderError {
    Transient {
        message: String,
        retry_after: Option<Duration>,
        /// What went wrong, when the answer says (a refused key, a busy provider).
        kind: Option<ErrorKind>,
    },
    Permanent {
        message: String,
        kind: Option<ErrorKind>,
    },
}

impl ProviderError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Transient {
            message: message.into(),
            retry_after: None,
            kind: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent {
            message: message.into(),
            kind: None,
        }
    }

    /// The same error, of the given kind.
    pub fn with_kind(mut self, new: ErrorKind) -> Self {
        match &mut self {
            Self::Transient { kind, .. } | Self::Permanent { kind, .. } => *kind = Some(new),
        }
        self
    }

    pub fn message(&self) -> &str {
        match self {
            Self::Transient { message, .. } | Self::Permanent { message, .. } => message,
        }
    }

    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            Self::Transient { kind, .. } | Self::Permanent { kind, .. } => *kind,
        }
    }

    /// Classifies a transport error (no HTTP answer at all).
    pub fn from_reqwest(what: &str, error: &reqwest::Error) -> Self {
        let message = format!("{what}: {}", super::describe_error(error));
        if super::guard::find_guard_error(error).is_some() {
            Self::permanent(message).with_kind(ErrorKind::AddressRefused)
        } else if error.is_builder() {
            Self::permanent(message)
        } else if error.is_timeout() {
            Self::transient(message).with_kind(ErrorKind::TimedOut)
        } else {
            Self::transient(message).with_kind(ErrorKind::ProviderUnavailable)
        }
    }

    /// Classifies an HTTP answer that was not a success; `body` is what it said.
    pub fn from_status(
        what: &str,
        status: reqwest::StatusCode,
        headers: &reqwest::header::HeaderMap,
        body: &str,
    ) -> Self {
        let detail = provider_message(body);
        let message = if detail.is_empty() {
            format!("{what}: the server answered {status}")
        } else {
            format!("{what}: the server answered {status}: {detail}")
        };
        if status.as_u16() == 429 || status.is_server_error() || status.as_u16() == 408 {
            Self::Transient {
                message,
                retry_after: retry_after(headers),
                kind: Some(ErrorKind::ProviderUnavailable),
            }
        } else if status.as_u16() == 401 || status.as_u16() == 403 {
            Self::permanent(message).with_kind(ErrorKind::ProviderAuth)
        } else {
            Self::permanent(message)
        }
    }

    /// Reads (a bounded part of) a failed answer's body and classifies it.
    pub async fn from_response(what: &str, mut response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            body.extend_from_slice(&chunk);
            if body.len() > 16 * 1024 {
                break;
            }
        }
        Self::from_status(what, status, &headers, &String::from_utf8_lossy(&body))
    }
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ProviderError {}

/// The human part of a provider's error body: `{"error": {"message": ...}}`,
/// `{"error": "..."}`, `{"message": ...}`, or the first 300 characters of text.
pub fn provider_message(body: &str) -> String {
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(body) {
        let found = value
            .pointer("/error/message")
            .or_else(|| value.get("error").filter(|e| e.is_string()))
            .or_else(|| value.get("message"))
            .or_else(|| value.get("detail"))
            .and_then(|v| v.as_str());
        if let Some(found) = found {
            return truncate(found, 300);
        }
    }
    truncate(body.trim(), 300)
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((index, _)) => format!("{}…", &text[..index]),
        None => text.to_string(),
    }
}

/// `Retry-After` in seconds or as an HTTP date.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = date.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(Duration::from_millis(wait.max(0) as u64))
}

/// How long to wait before trying again: doubling from the policy's base delay up to `longest`,
/// or what the server asked for in `Retry-After`, up to `longest_asked`. One formula for provider
/// calls (seconds apart, inside a job) and webhook deliveries (minutes apart, from the outbox).
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    base: Duration,
    longest: Duration,
    longest_asked: Duration,
}

impl Backoff {
    /// For a provider call inside a job.
    pub fn for_calls(policy: &RetryPolicy) -> Self {
        Self {
            base: policy.base_delay,
            longest: policy.max_delay,
            longest_asked: Duration::from_secs(120),
        }
    }

    /// For a webhook delivery: a receiver may be down for a while, and nothing waits on it.
    pub fn for_deliveries(policy: &RetryPolicy) -> Self {
        Self {
            base: policy.base_delay,
            longest: policy.max_delay.saturating_mul(10),
            longest_asked: Duration::from_secs(600),
        }
    }

    /// The wait after the `failed`-th attempt (1 for the first) failed.
    pub fn wait(&self, failed: u32, retry_after: Option<Duration>) -> Duration {
        let doubled = self
            .base
            .saturating_mul(2u32.saturating_pow(failed.saturating_sub(1)))
            .min(self.longest);
        retry_after
            .map(|asked| asked.min(self.longest_asked))
            .unwrap_or(doubled)
    }
}

/// Runs `call` until it succeeds, fails permanently, or the policy's attempts are spent.
/// `on_retry` hears about each transient failure before the wait (for the job log).
pub async fn with_retry<T, F, Fut, L, LFut>(
    policy: &RetryPolicy,
    mut call: F,
    mut on_retry: L,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
    L: FnMut(String) -> LFut,
    LFut: Future<Output = ()>,
{
    let attempts = policy.attempts.max(1);
    let backoff = Backoff::for_calls(policy);
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(ProviderError::Transient {
                message,
                retry_after,
                ..
            }) if attempt < attempts => {
                let wait = backoff.wait(attempt, retry_after);
                on_retry(format!(
                    "{message} — trying again in {:.1} s (attempt {} of {attempts})",
                    wait.as_secs_f64(),
                    attempt + 1
                ))
                .await;
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        }
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_the_attempts_run_out() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retry(
            &fast(),
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(ProviderError::transient("503"))
            },
            |_| async {},
        )
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn permanent_failures_end_at_once_and_success_heals() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retry(
            &fast(),
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(ProviderError::permanent("401"))
            },
            |_| async {},
        )
        .await;
        assert_eq!(result.unwrap_err().message(), "401");
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = AtomicU32::new(0);
        let value = with_retry(
            &fast(),
            || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(ProviderError::transient("503"))
                } else {
                    Ok(7)
                }
            },
            |_| async {},
        )
        .await;
        assert_eq!(value.unwrap(), 7);
    }

    #[test]
    fn provider_messages_are_found_in_common_shapes() {
        assert_eq!(
            provider_message(r#"{"error":{"message":"bad key","type":"x"}}"#),
            "bad key"
        );
        assert_eq!(provider_message(r#"{"error":"nope"}"#), "nope");
        assert_eq!(provider_message("plain text"), "plain text");
        assert_eq!(provider_message(&"x".repeat(400)).chars().count(), 301);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_heeds_retry_after_within_reason() {
        let policy = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
        };
        let calls = Backoff::for_calls(&policy);
        let waits: Vec<_> = (1..=5).map(|failed| calls.wait(failed, None)).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5].map(Duration::from_secs));
        let asked = Some(Duration::from_secs(3600));
        assert_eq!(calls.wait(1, asked), Duration::from_secs(120));
        let deliveries = Backoff::for_deliveries(&policy);
        assert_eq!(deliveries.wait(9, None), Duration::from_secs(50));
        assert_eq!(deliveries.wait(1, asked), Duration::from_secs(600));
    }

    #[test]
    fn answers_say_what_kind_of_failure_they_are() {
        let headers = reqwest::header::HeaderMap::new();
        let kind = |status: u16| {
            let status = reqwest::StatusCode::from_u16(status).unwrap();
            ProviderError::from_status("the call failed", status, &headers, "").kind()
        };
        assert_eq!(kind(401), Some(ErrorKind::ProviderAuth));
        assert_eq!(kind(403), Some(ErrorKind::ProviderAuth));
        assert_eq!(kind(429), Some(ErrorKind::ProviderUnavailable));
        assert_eq!(kind(503), Some(ErrorKind::ProviderUnavailable));
        assert_eq!(kind(400), None);
        let error = ProviderError::permanent("no").with_kind(ErrorKind::NotAudio);
        assert_eq!(error.kind(), Some(ErrorKind::NotAudio));
        assert_eq!(error.message(), "no");
    }

    #[test]
    fn retry_after_reads_seconds() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }
}
