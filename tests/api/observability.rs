//! `/metrics` in the Prometheus text format, and signed webhooks with retries.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::fakes::{LlmBehaviour, serve};
use crate::helpers::{TestApp, logs_of};

/// Parses the exposition format strictly enough to catch a malformed line: returns every sample
/// as (name with labels, value), and checks each sample's family was declared by `# TYPE`.
fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    let mut declared = Vec::new();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kind = parts.next().unwrap();
            let name = parts.next().expect("a metric name after # HELP/# TYPE");
            assert!(kind == "HELP" || kind == "TYPE", "{line}");
            if kind == "TYPE" {
                let kind = parts.next().unwrap();
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "{line}"
                );
                declared.push(name.to_string());
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name: {line}"
        );
        if let Some(labels) = series.strip_prefix(name)
            && !labels.is_empty()
        {
            assert!(
                labels.starts_with('{') && labels.ends_with('}'),
                "bad labels: {line}"
            );
            let inner = &labels[1..labels.len() - 1];
            let mut rest = inner;
            while !rest.is_empty() {
                let (key, after) = rest
                    .split_once("=\"")
                    .unwrap_or_else(|| panic!("bad label: {line}"));
                assert!(
                    key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{line}"
                );
                let mut end = None;
                let mut escaped = false;
                for (index, c) in after.char_indices() {
                    match (escaped, c) {
                        (true, _) => escaped = false,
                        (false, '\\') => escaped = true,
                        (false, '"') => {
                            end = Some(index);
                            break;
                        }
                        _ => {}
                    }
                }
                let end = end.unwrap_or_else(|| panic!("unterminated label: {line}"));
                rest = after[end + 1..].trim_start_matches(',');
            }
        }
        let family = ["_bucket", "_sum", "_count", "_total"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| declared.iter().any(|d| d == base))
            })
            .unwrap_or(name);
        assert!(
            declared.iter().any(|d| d == family || d == name),
            "{name} has no # TYPE line"
        );
        samples.insert(series.to_string(), value);
    }
    samples
}

#[tokio::test]
async fn metrics_count_jobs_requests_stages_and_retries() {
    let app = TestApp::spawn().await;
    app.fakes.llm.set(LlmBehaviour {
        fail_with_503: 1,
        ..Default::default()
    });
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    app.wait_for_status(job["id"].as_str().unwrap(), "completed")
        .await;
    let failed = app.create_job(&app.fakes.audio.url("page.html")).await;
    app.wait_for_status(failed["id"].as_str().unwrap(), "error")
        .await;

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let samples = parse_prometheus(&response.text().await.unwrap());
    assert_eq!(samples["focusflow_jobs{status=\"completed\"}"], 1.0);
    assert_eq!(samples["focusflow_jobs{status=\"error\"}"], 1.0);
    assert_eq!(
        samples["focusflow_http_requests_total{route=\"/api/jobs\",method=\"POST\",status=\"201\"}"],
        2.0
    );
    assert!(
        samples["focusflow_http_requests_total{route=\"/api/jobs/{id}\",method=\"GET\",status=\"200\"}"]
            >= 2.0
    );
    // Both jobs resolved; only the first got past its download.
    for (stage, count) in [
        ("resolve", 2.0),
        ("download", 1.0),
        ("transcribe", 1.0),
        ("summarize", 1.0),
    ] {
        assert_eq!(
            samples[&format!("focusflow_stage_duration_seconds_count{{stage=\"{stage}\"}}")],
            count,
            "{stage}"
        );
    }
    assert_eq!(
        samples["focusflow_provider_retries_total{provider=\"llm\"}"],
        1.0
    );
    assert_eq!(
        samples["focusflow_stage_failures_total{stage=\"download\"}"],
        1.0
    );
}

pub type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A webhook receiver that fails the first `failures` deliveries with 500.
pub async fn receiver(failures: usize) -> (String, Received) {
    let (url, received, _) = switchable_receiver(failures, true).await;
    (url, received)
}

/// A webhook receiver that answers 500 to the first `failures` deliveries, and to every one
/// while its switch is off.
async fn switchable_receiver(failures: usize, on: bool) -> (String, Received, Arc<AtomicBool>) {
    let received: Received = Arc::default();
    let switch = Arc::new(AtomicBool::new(on));
    let store = received.clone();
    let accepting = switch.clone();
    let router = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let store = store.clone();
            let accepting = accepting.clone();
            async move {
                let mut all = store.lock().unwrap();
                all.push((headers, body));
                if all.len() <= failures || !accepting.load(Ordering::SeqCst) {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    (format!("{}/hook", serve(router).await), received, switch)
}

#[tokio::test]
async fn webhooks_are_signed_and_retried_until_delivered() {
    let (url, received) = receiver(2).await;
    let app = TestApp::spawn_with(|config| {
        config.webhook_url = Some(url);
        config.webhook_secret = Some(focusflow::config::Secret::new("s3cret"));
    })
    .await;
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let id = job["id"].as_str().unwrap().to_string();
    let job = app
        .wait_for(&id, "the webhook delivery", |job| {
            logs_of(job).contains("Webhook job.completed delivered")
        })
        .await;
    assert!(logs_of(&job).contains("trying again"));

    let deliveries = received.lock().unwrap().clone();
    assert_eq!(deliveries.len(), 3, "two failures, then a success");
    for (headers, body) in &deliveries {
        // Verify as a receiver would: HMAC-SHA256 over "timestamp.body", constant-time compare.
        let timestamp = headers["x-focusflow-timestamp"].to_str().unwrap();
        let given = headers["x-focusflow-signature"].to_str().unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        let expected = given.strip_prefix("sha256=").unwrap();
        let bytes: Vec<u8> = (0..expected.len() / 2)
            .map(|i| u8::from_str_radix(&expected[i * 2..i * 2 + 2], 16).unwrap())
            .collect();
        mac.verify_slice(&bytes).expect("the signature verifies");
        assert_eq!(headers["x-focusflow-event"], "job.completed");
        let event: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(event["event"], "job.completed");
        assert_eq!(event["job"]["id"], id.as_str());
        assert_eq!(event["job"]["title"], crate::fakes::TITLE);
        // Each attempt is signed afresh, at or after the event.
        assert!(timestamp.parse::<i64>().unwrap() >= event["timestamp"].as_i64().unwrap());
    }
    // The same delivery id on every retry, so receivers can drop duplicates.
    let ids: Vec<_> = deliveries
        .iter()
        .map(|(h, _)| h["x-focusflow-delivery"].clone())
        .collect();
    assert!(ids.windows(2).all(|pair| pair[0] == pair[1]));

    // A failure is reported too.
    let failed = app.create_job(&app.fakes.audio.url("page.html")).await;
    let failed_id = failed["id"].as_str().unwrap().to_string();
    app.wait_for(&failed_id, "the failure webhook", |job| {
        logs_of(job).contains("Webhook job.failed delivered")
    })
    .await;
    let last: Value = serde_json::from_slice(&received.lock().unwrap().last().unwrap().1).unwrap();
    assert_eq!(last["event"], "job.failed");
    assert_eq!(
        last["job"]["error"],
        "the URL did not serve audio (got text/html)"
    );
}

#[tokio::test]
async fn a_webhook_to_a_private_address_is_refused_by_the_guard() {
    let (url, received) = receiver(0).await;
    let app = TestApp::spawn_with(|config| {
        config.webhook_url = Some(url);
        config.allow_private_urls = false;
        // The job itself may reach the loopback fakes; the webhook's address is not listed.
        config.allow_private_cidrs = vec![];
    })
    .await;
    let job = app.create_job("https://web.plaud.ai/share/none").await;
    let id = job["id"].as_str().unwrap().to_string();
    let job = app
        .wait_for(&id, "the refused webhook", |job| {
            logs_of(job).contains("Webhook not sent")
        })
        .await;
    assert!(logs_of(&job).contains("refused"));
    assert!(
        received.lock().unwrap().is_empty(),
        "the refused receiver got a request"
    );
}

#[tokio::test]
async fn a_webhook_waiting_to_be_retried_survives_a_restart() {
    let (url, received, switch) = switchable_receiver(0, false).await;
    let app = TestApp::spawn_with(|config| {
        config.webhook_url = Some(url);
        config.webhook_secret = Some(focusflow::config::Secret::new("s3cret"));
        // Slow enough that the stop comes between two attempts.
        config.retry.base_delay = Duration::from_millis(300);
        config.retry.max_delay = Duration::from_millis(300);
    })
    .await;
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let id = job["id"].as_str().unwrap().to_string();
    app.wait_for(&id, "a failed delivery", |job| {
        logs_of(job).contains("Webhook: ") && logs_of(job).contains("trying again")
    })
    .await;

    // Stopped while the event waits for its next attempt; the receiver comes back meanwhile.
    let mut app = app;
    app.stop().await;
    let waiting = focusflow::store::Store::connect(&app.config)
        .await
        .unwrap()
        .pending_deliveries()
        .await
        .unwrap();
    assert_eq!(waiting, 1, "the event waits in the outbox on disk");
    switch.store(true, Ordering::SeqCst);
    let app = app.restart().await;

    app.wait_for(&id, "the delivery after the restart", |job| {
        logs_of(job).contains("Webhook job.completed delivered")
    })
    .await;
    let deliveries = received.lock().unwrap().clone();
    assert!(deliveries.len() >= 2, "failed before, delivered after");
    let ids: Vec<_> = deliveries
        .iter()
        .map(|(headers, _)| headers["x-focusflow-delivery"].clone())
        .collect();
    assert!(
        ids.windows(2).all(|pair| pair[0] == pair[1]),
        "one event, one delivery id, across the restart"
    );
    let left = focusflow::store::Store::connect(&app.config)
        .await
        .unwrap()
        .pending_deliveries()
        .await
        .unwrap();
    assert_eq!(left, 0, "a delivered event leaves the outbox");
}
