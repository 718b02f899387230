//! Prometheus metrics, kept in memory and written out in the text exposition format at
//! `/metrics`: HTTP requests by route and status, stage durations, provider retries and stage
//! failures, webhook deliveries; jobs by status are read from the store at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds of the stage-duration histogram, in seconds.
const STAGE_BUCKETS: [f64; 9] = [0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; STAGE_BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    /// By route, method, then status: a request finds its counter by `&str` (no allocation on
    /// the hot path); the nesting sorts as the tuple would.
    http_requests: BTreeMap<String, BTreeMap<String, BTreeMap<u16, u64>>>,
    stage_seconds: BTreeMap<String, Histogram>,
    provider_retries: BTreeMap<String, u64>,
    stage_failures: BTreeMap<String, u64>,
    webhook_deliveries: BTreeMap<String, u64>,
}

#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Inner>>,
}

/// Label values are escaped as the format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, work: impl FnOnce(&mut Inner) -> T) -> T {
        work(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn http_request(&self, route: &str, method: &str, status: u16) {
        self.with(|inner| {
            let methods = match inner.http_requests.get_mut(route) {
                Some(methods) => methods,
                None => inner.http_requests.entry(route.to_string()).or_default(),
            };
            let statuses = match methods.get_mut(method) {
                Some(statuses) => statuses,
                None => methods.entry(method.to_string()).or_default(),
            };
            *statuses.entry(status).or_default() += 1;
        });
    }

    pub fn stage_finished(&self, stage: &str, took: Duration) {
        let seconds = took.as_secs_f64();
        self.with(|inner| {
            let histogram = inner.stage_seconds.entry(stage.to_string()).or_default();
            for (index, bound) in STAGE_BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    histogram.counts[index] += 1;
                }
            }
            histogram.count += 1;
            histogram.sum += seconds;
        });
    }

    pub fn provider_retry(&self, provider: &str) {
        self.with(|inner| {
            *inner
                .provider_retries
                .entry(provider.to_string())
                .or_default() += 1
        });
    }

    pub fn stage_failed(&self, stage: &str) {
        self.with(|inner| *inner.stage_failures.entry(stage.to_string()).or_default() += 1);
    }

    pub fn webhook_delivery(&self, outcome: &str) {
        self.with(|inner| {
            *inner
                .webhook_deliveries
                .entry(outcome.to_string())
                .or_default() += 1
        });
    }

    /// The exposition text; `jobs_by_status` comes from the store.
    pub fn render(&self, jobs_by_status: &[(String, u64)], webhooks_pending: u64) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP focusflow_webhooks_pending Webhook events in the outbox, waiting to be delivered.\n# TYPE focusflow_webhooks_pending gauge\nfocusflow_webhooks_pending {webhooks_pending}"
        );
        out.push_str(
            "# HELP focusflow_jobs Jobs in the store by status.\n# TYPE focusflow_jobs gauge\n",
        );
        for (status, count) in jobs_by_status {
            let _ = writeln!(
                out,
                "focusflow_jobs{{status=\"{}\"}} {count}",
                label(status)
            );
        }
        self.with(|inner| {
            out.push_str("# HELP focusflow_http_requests_total HTTP requests by route, method and status.\n# TYPE focusflow_http_requests_total counter\n");
            for (route, methods) in &inner.http_requests {
                for (method, statuses) in methods {
                    for (status, count) in statuses {
                        let _ = writeln!(
                            out,
                            "focusflow_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {count}",
                            label(route),
                            label(method)
                        );
                    }
                }
            }
            out.push_str("# HELP focusflow_stage_duration_seconds How long pipeline stages took.\n# TYPE focusflow_stage_duration_seconds histogram\n");
            for (stage, histogram) in &inner.stage_seconds {
                let stage = label(stage);
                for (index, bound) in STAGE_BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "focusflow_stage_duration_seconds_bucket{{stage=\"{stage}\",le=\"{bound}\"}} {}",
                        histogram.counts[index]
                    );
                }
                let _ = writeln!(
                    out,
                    "focusflow_stage_duration_seconds_bucket{{stage=\"{stage}\",le=\"+Inf\"}} {}",
                    histogram.count
                );
                let _ = writeln!(out, "focusflow_stage_duration_seconds_sum{{stage=\"{stage}\"}} {}", histogram.sum);
                let _ = writeln!(out, "focusflow_stage_duration_seconds_count{{stage=\"{stage}\"}} {}", histogram.count);
            }
            out.push_str("# HELP focusflow_provider_retries_total Provider calls retried after a transient failure.\n# TYPE focusflow_provider_retries_total counter\n");
            for (provider, count) in &inner.provider_retries {
                let _ = writeln!(out, "focusflow_provider_retries_total{{provider=\"{}\"}} {count}", label(provider));
            }
            out.push_str("# HELP focusflow_stage_failures_total Jobs that failed, by the stage they failed in.\n# TYPE focusflow_stage_failures_total counter\n");
            for (stage, count) in &inner.stage_failures {
                let _ = writeln!(out, "focusflow_stage_failures_total{{stage=\"{}\"}} {count}", label(stage));
            }
            out.push_str("# HELP focusflow_webhook_deliveries_total Webhook delivery attempts by outcome.\n# TYPE focusflow_webhook_deliveries_total counter\n");
            for (outcome, count) in &inner.webhook_deliveries {
                let _ = writeln!(out, "focusflow_webhook_deliveries_total{{outcome=\"{}\"}} {count}", label(outcome));
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_has_help_type_and_samples() {
        let metrics = Metrics::new();
        metrics.http_request("/api/jobs/{id}", "GET", 200);
        metrics.http_request("/api/jobs/{id}", "GET", 200);
        metrics.stage_finished("download", Duration::from_millis(700));
        metrics.provider_retry("llm");
        let text = metrics.render(&[("completed".into(), 3)], 2);
        assert!(text.contains("focusflow_jobs{status=\"completed\"} 3"));
        assert!(text.contains("\nfocusflow_webhooks_pending 2\n"));
        assert!(text.contains(
            "focusflow_http_requests_total{route=\"/api/jobs/{id}\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(
            text.contains(
                "focusflow_stage_duration_seconds_bucket{stage=\"download\",le=\"0.5\"} 0"
            )
        );
        assert!(
            text.contains("focusflow_stage_duration_seconds_bucket{stage=\"download\",le=\"1\"} 1")
        );
        assert!(text.contains("focusflow_provider_retries_total{provider=\"llm\"} 1"));
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
