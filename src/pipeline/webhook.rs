//! Webhooks: when a job completes or fails, a JSON event is POSTed to `WEBHOOK_URL`, signed with
//! HMAC-SHA256 when `WEBHOOK_SECRET` is set. The event is written to an outbox in the same
//! transaction that finishes the job, and a dispatcher task of its own delivers it, retrying with
//! backoff: the worker never waits on a receiver, and a restart (even `kill -9`) loses no event.
//! The URL is guarded like every URL a user could influence.
//!
//! Receivers verify `X-FocusFlow-Signature: sha256=<hex>`, the HMAC-SHA256 of
//! `"<X-FocusFlow-Timestamp>.<raw body>"` keyed with the secret, compared in constant time; and
//! reject old timestamps to stop replays (every attempt is signed afresh, with its own
//! timestamp). `X-FocusFlow-Delivery` stays the same across attempts, to drop duplicates.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::Config;
use crate::jobs::{Job, JobId, now_millis};
use crate::metrics::Metrics;
use crate::net::Clients;
use crate::net::guard::AddressPolicy;
use crate::net::retry::{Backoff, ProviderError};
use crate::store::{Delivery, EventMaker, NewDelivery, Store};

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

/// Attempts per event, the first included. With the default backoff (1 s doubling, capped at
/// 5 min) the last is about 2 min after the first; a receiver that is down for a restart or a
/// deploy gets its events.
pub const MAX_ATTEMPTS: u32 = 8;
/// How long one attempt may take, the whole request included: a receiver that is slower has
/// failed this attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a claimed event is left to its dispatcher before it is due again. Longer than an
/// attempt, so that while a dispatcher is at work no other (on another replica) takes the
/// event; a dispatcher that died mid-attempt only delays the event by this.
const CLAIM: Duration = Duration::from_secs(90);
/// Looks at the outbox at least this often, even without a wake-up.
const IDLE_POLL: Duration = Duration::from_secs(60);

/// What a finished job's event is, for the outbox; None when no webhook is configured.
pub fn event_maker(config: &Config) -> Option<EventMaker> {
    config.webhook_url.as_ref()?;
    Some(Box::new(|job: &Job| {
        let event = if job.status == crate::jobs::Status::Completed {
            "job.completed"
        } else {
            "job.failed"
        };
        let delivery = uuid::Uuid::new_v4().to_string();
        let body = serde_json::to_vec(&Event {
            event,
            delivery: delivery.clone(),
            timestamp: now_millis(),
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
        NewDelivery {
            delivery,
            job_id: job.id.clone(),
            event: event.to_string(),
            body,
        }
    }))
}

/// The webhook's wire format: built once from the configuration (the URL, the secret, the
/// guarded client), it signs an event afresh and posts it once, and says what came of it. The
/// dispatcher below keeps the outbox, the retries and the job's log.
pub struct WebhookSender {
    http: reqwest::Client,
    policy: Arc<AddressPolicy>,
    url: Option<String>,
    secret: Option<String>,
}

impl std::fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSender")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// What came of one attempt to send one event.
#[derive(Debug)]
pub enum SendOutcome {
    /// The receiver answered with a success.
    Delivered,
    /// Not sent, and never will be as configured: the outcome for the metrics (`failed` or
    /// `refused`) and the job's log line that says why.
    NotSent {
        outcome: &'static str,
        message: String,
    },
    /// Sent, and the receiver failed or could not be reached.
    Failed(ProviderError),
}

impl WebhookSender {
    /// Uses the client for user URLs: the receiver's address is checked like any other.
    pub fn new(config: &Config, clients: &Clients) -> Self {
        Self {
            http: clients.user.clone(),
            policy: clients.policy.clone(),
            url: config.webhook_url.clone(),
            secret: config
                .webhook_secret
                .as_ref()
                .map(|secret| secret.expose().to_string()),
        }
    }

    /// One attempt: the event's body, signed when a secret is set, posted once.
    pub async fn send(&self, delivery: &Delivery) -> SendOutcome {
        let url = match self.target(delivery) {
            Ok(url) => url,
            Err((outcome, message)) => return SendOutcome::NotSent { outcome, message },
        };
        let timestamp = now_millis();
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(EVENT_HEADER, delivery.event.as_str())
            .header(DELIVERY_HEADER, delivery.delivery.as_str())
            .timeout(ATTEMPT_TIMEOUT)
            .body(delivery.body.clone());
        if let Some(secret) = &self.secret {
            request = request.header(
                SIGNATURE_HEADER,
                signature(secret, timestamp, &delivery.body),
            );
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => SendOutcome::Delivered,
            Ok(response) => SendOutcome::Failed(
                ProviderError::from_response("the webhook failed", response).await,
            ),
            Err(error) => {
                SendOutcome::Failed(ProviderError::from_reqwest("the webhook failed", &error))
            }
        }
    }

    /// Where the event goes: the configured URL, if it is set, a URL, and allowed by the
    /// address policy; else the outcome and the job's log line that say why not.
    fn target(&self, delivery: &Delivery) -> Result<url::Url, (&'static str, String)> {
        let Some(url) = self.url.as_deref() else {
            return Err((
                "failed",
                format!(
                    "Webhook {} not sent: WEBHOOK_URL is no longer set",
                    delivery.event
                ),
            ));
        };
        let parsed = url::Url::parse(url).map_err(|error| {
            (
                "refused",
                format!("Webhook not sent: WEBHOOK_URL is not a URL ({error})"),
            )
        })?;
        self.policy
            .check_url(&parsed)
            .map_err(|refusal| ("refused", format!("Webhook not sent: {refusal}")))?;
        Ok(parsed)
    }
}

/// Delivers the outbox's events, one at a time, until shutdown. Each event is claimed first
/// (see [`Store::claim_delivery`]): with several replicas on one database, each event is
/// attempted by one dispatcher at a time, so a receiver gets it once (barring a replica that
/// dies after the receiver answered and before the outbox heard of it: `X-FocusFlow-Delivery`
/// lets receivers drop that duplicate).
#[derive(Clone)]
pub struct Dispatcher {
    pub store: Store,
    pub config: Arc<Config>,
    pub clients: Clients,
    pub metrics: Metrics,
    pub wake: Arc<Notify>,
}

impl Dispatcher {
    /// Builds the sender once and delivers until shutdown.
    pub fn spawn(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let sender = WebhookSender::new(&self.config, &self.clients);
        tokio::spawn(
            async move { self.run(&sender, shutdown).await }
                .instrument(tracing::info_span!("webhooks")),
        )
    }

    async fn run(&self, sender: &WebhookSender, shutdown: CancellationToken) {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if shutdown.is_cancelled() {
                return;
            }
            match self
                .store
                .claim_delivery(now_millis(), now_millis() + CLAIM.as_millis() as i64)
                .await
            {
                Ok(Some(delivery)) => {
                    let id = delivery.delivery.clone();
                    let attempts = delivery.attempts;
                    tokio::select! {
                        _ = shutdown.cancelled() => {
                            // Stopping mid-attempt: the event is due again at once, for the
                            // next process (or this one restarted), not after the claim.
                            let _ = self.store.postpone_delivery(&id, attempts, now_millis()).await;
                            return;
                        }
                        _ = self.attempt(sender, delivery) => {}
                    }
                    continue;
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "could not read the webhook outbox"),
            }
            let wait = match self.store.next_delivery_at().await {
                Ok(Some(at)) => Duration::from_millis((at - now_millis()).max(0) as u64),
                _ => IDLE_POLL,
            }
            .min(IDLE_POLL);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = &mut notified => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn log(&self, job_id: &str, message: String) {
        let message = self.config.redact(&message);
        tracing::info!(job = job_id, "{message}");
        if let Ok(id) = JobId::parse(job_id) {
            // The job may have been deleted since; its event is still delivered.
            let _ = self.store.append_log(&id, message).await;
        }
    }

    /// The event's last attempt (delivered, refused or failed): counted, logged, removed.
    async fn finish(&self, delivery: &Delivery, outcome: &'static str, message: String) {
        self.metrics.webhook_delivery(outcome);
        self.log(&delivery.job_id, message).await;
        if let Err(error) = self.store.remove_delivery(&delivery.delivery).await {
            tracing::warn!(%error, "could not update the webhook outbox");
        }
    }

    /// One attempt at one event: delivered and removed, given up, or postponed.
    async fn attempt(&self, sender: &WebhookSender, delivery: Delivery) {
        let attempts = delivery.attempts + 1;
        match sender.send(&delivery).await {
            SendOutcome::Delivered => {
                let message = format!("Webhook {} delivered", delivery.event);
                self.finish(&delivery, "delivered", message).await;
            }
            SendOutcome::NotSent { outcome, message } => {
                self.finish(&delivery, outcome, message).await;
            }
            SendOutcome::Failed(ProviderError::Transient {
                message,
                retry_after,
                ..
            }) if attempts < MAX_ATTEMPTS => {
                self.postpone(&delivery, attempts, &message, retry_after)
                    .await
            }
            SendOutcome::Failed(error) => {
                let message = format!(
                    "Webhook {} not delivered after {attempts} attempt{}: {error}",
                    delivery.event,
                    if attempts == 1 { "" } else { "s" }
                );
                self.finish(&delivery, "failed", message).await;
            }
        }
    }

    /// Another attempt later: logged for the job and recorded in the outbox.
    async fn postpone(
        &self,
        delivery: &Delivery,
        attempts: u32,
        message: &str,
        retry_after: Option<Duration>,
    ) {
        let wait = Backoff::for_deliveries(&self.config.retry).wait(attempts, retry_after);
        self.metrics.webhook_delivery("retry");
        self.log(
            &delivery.job_id,
            format!(
                "Webhook: {message} — trying again in {:.1} s (attempt {} of {MAX_ATTEMPTS})",
                wait.as_secs_f64(),
                attempts + 1
            ),
        )
        .await;
        let next_at = now_millis() + wait.as_millis() as i64;
        if let Err(error) = self
            .store
            .postpone_delivery(&delivery.delivery, attempts, next_at)
            .await
        {
            tracing::warn!(%error, "could not update the webhook outbox");
        }
    }
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
