//! Webhooks: when a job completes or fails, a JSON event is POSTed to `WEBHOOK_URL`, signed with
//! HMAC-SHA256 when `WEBHOOK_SECRET` is set, retried with backoff, in its own task so the worker
//! never waits on a receiver. The URL is guarded like every URL a user could influence.
//!
//! Receivers verify `X-FocusFlow-Signature: sha256=<hex>`, the HMAC-SHA256 of
//! `"<X-FocusFlow-Timestamp>.<raw body>"` keyed with the secret, compared in constant time; and
//! reject old timestamps to stop replays.

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::StageContext;
use crate::config::RetryPolicy;
use crate::jobs::{Job, now_millis};
use crate::net::retry::{ProviderError, with_retry};

pub const SIGNATURE_HEADER: &str = "x-focusflow-signature";
pub const TIMESTAMP_HEADER: &str = "x-focusflow-timestamp";
pub const EVENT_HEADER: &str = "x-focusflow-event";
pub const DELIVERY_HEADER: &str = "x-focusflow-delivery";

#[derive(Debug, Serialize)]
struct Event<'a> {
    event: &'a str,
    delivery: String,
    timestamp: i64,
    job: EventJob<'a>,
}

#[derive(Debug, Serialize)]
struct EventJob<'a> {
    id: &'a str,
    url: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meeting_date: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a str>,
    created_at: i64,
    updated_at: i64,
}

/// `sha256=<hex>` of `"{timestamp}.{body}"`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256={hex}")
}

/// Sends the event for `job` (completed or failed) in the background.
pub fn notify(context: &StageContext, job: &Job) {
    let Some(url) = context.config.webhook_url.clone() else {
        return;
    };
    let event = if job.status == crate::jobs::Status::Completed {
        "job.completed"
    } else {
        "job.failed"
    };
    let timestamp = now_millis();
    let delivery = uuid::Uuid::new_v4().to_string();
    let body = serde_json::to_vec(&Event {
        event,
        delivery: delivery.clone(),
        timestamp,
        job: EventJob {
            id: job.id.as_str(),
            url: &job.url,
            status: job.status.as_str(),
            title: job.title.as_deref(),
            meeting_date: job.meeting_date.as_deref(),
            error: job.error.as_deref(),
            summary: job.summary.as_deref(),
            created_at: job.created_at,
            updated_at: job.updated_at,
        },
    })
    .unwrap_or_default();
    let signed = context
        .config
        .webhook_secret
        .as_ref()
        .map(|secret| signature(secret.expose(), timestamp, &body));
    let context = context.clone();
    // Receivers get more patience than providers: a restart of the receiver should not lose events.
    let policy = RetryPolicy {
        attempts: 6,
        ..context.config.retry.clone()
    };
    tokio::spawn(async move {
        let parsed = match url::Url::parse(&url) {
            Ok(parsed) => parsed,
            Err(_) => return,
        };
        if let Err(refusal) = context.clients.policy.check_url(&parsed) {
            context.metrics.webhook_delivery("refused");
            context.log(format!("Webhook not sent: {refusal}")).await;
            return;
        }
        let send = || {
            let mut request = context
                .clients
                .user
                .post(parsed.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(TIMESTAMP_HEADER, timestamp.to_string())
                .header(EVENT_HEADER, event)
                .header(DELIVERY_HEADER, delivery.as_str())
                .body(body.clone());
            if let Some(signed) = &signed {
                request = request.header(SIGNATURE_HEADER, signed.as_str());
            }
            async move {
                let response = request
                    .send()
                    .await
                    .map_err(|error| ProviderError::from_reqwest("the webhook failed", &error))?;
                if response.status().is_success() {
                    Ok(())
                } else {
                    Err(ProviderError::from_response("the webhook failed", response).await)
                }
            }
        };
        let result = with_retry(&policy, send, |message| {
            context.metrics.webhook_delivery("retry");
            context.log(format!("Webhook: {message}"))
        })
        .await;
        match result {
            Ok(()) => {
                context.metrics.webhook_delivery("delivered");
                context.log(format!("Webhook {event} delivered")).await;
            }
            Err(error) => {
                context.metrics.webhook_delivery("failed");
                context
                    .log(format!("Webhook {event} not delivered: {error}"))
                    .await;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: printf '1700000000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            super::signature("secret", 1_700_000_000_000, br#"{"a":1}"#),
            "sha256=4ef2732b0d632a6897af3a6d02a6de287f60d6c5f15dabdb0ceb045a34e3c5a7"
        );
    }
}
