//! Per-client rate limiting with governor.
//!
//! Two buckets per client address. **Actions** — every state-changing request, every JSON API
//! request, every failed login — get `RATE_LIMIT_MAX_REQUESTS` per `RATE_LIMIT_WINDOW_MS`.
//! **Views** — pages and the small partials the UI polls while a job runs — get ten times as
//! much, so a person watching a job in two tabs for an hour never sees a 429 at the defaults,
//! while a script hammering the API or guessing passwords is slowed to the configured rate.
//! Static assets and the health probe are not limited.
//!
//! Memory stays bounded: idle keys are pruned every few seconds, and if more than
//! [`MAX_TRACKED`] addresses are live at once, the table is emptied rather than grown.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::AppState;
use super::client::ClientAddress;
use super::negotiate::{Rendering, error_response};
use crate::error::AppError;

type Keyed = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>;

/// More live addresses than this at once, and the tables are cleared.
pub const MAX_TRACKED: usize = 100_000;
/// How much more the views bucket holds than the actions bucket.
pub const VIEWS_FACTOR: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Actions,
    Views,
}

#[derive(Clone)]
pub struct RateLimits {
    inner: Option<Arc<Limiters>>,
}

struct Limiters {
    actions: Table,
    views: Table,
    clock: DefaultClock,
}

/// A keyed limiter that can be replaced by an empty one.
struct Table {
    quota: Quota,
    limiter: RwLock<Arc<Keyed>>,
}

impl Table {
    fn new(quota: Quota) -> Self {
        Self {
            quota,
            limiter: RwLock::new(Arc::new(RateLimiter::keyed(quota))),
        }
    }

    fn get(&self) -> Arc<Keyed> {
        self.limiter
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forgets every address: each client gets a full bucket, the safe direction to fail.
    fn reset(&self) {
        *self.limiter.write().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(RateLimiter::keyed(self.quota));
    }
}

/// Clients share a key per IPv6 /64: one household or server gets a whole /64 to pick from.
fn key(ip: IpAddr) -> IpAddr {
    match super::client::canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

fn quota(window: Duration, max: u32) -> Option<Quota> {
    let max = NonZeroU32::new(max)?;
    let period = (window / max.get()).max(Duration::from_nanos(1));
    Some(Quota::with_period(period)?.allow_burst(max))
}

impl RateLimits {
    /// `max == 0` disables limiting.
    pub fn new(window: Duration, max: u32) -> Self {
        let actions = quota(window, max);
        let views = quota(window, max.saturating_mul(VIEWS_FACTOR));
        let inner = match (actions, views) {
            (Some(actions), Some(views)) => Some(Arc::new(Limiters {
                actions: Table::new(actions),
                views: Table::new(views),
                clock: DefaultClock::default(),
            })),
            _ => None,
        };
        Self { inner }
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Takes one request from the client's bucket, or says how long to wait.
    pub fn check(&self, bucket: Bucket, client: IpAddr) -> Result<(), Duration> {
        let Some(limiters) = &self.inner else {
            return Ok(());
        };
        let table = match bucket {
            Bucket::Actions => &limiters.actions,
            Bucket::Views => &limiters.views,
        };
        let mut limiter = table.get();
        if limiter.len() >= MAX_TRACKED {
            limiter.retain_recent();
            if limiter.len() >= MAX_TRACKED {
                tracing::warn!(
                    tracked = limiter.len(),
                    "the rate limiter tracks too many addresses; starting afresh"
                );
                table.reset();
                limiter = table.get();
            }
        }
        limiter
            .check_key(&key(client))
            .map_err(|not_until| not_until.wait_time_from(limiters.clock.now()))
    }

    /// A failed login costs an action, so guessing is as slow as the limit.
    pub fn charge_failure(&self, client: IpAddr) {
        let _ = self.check(Bucket::Actions, client);
    }

    /// Forgets addresses whose buckets are full again.
    pub fn prune(&self) {
        if let Some(limiters) = &self.inner {
            for table in [&limiters.actions, &limiters.views] {
                let limiter = table.get();
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
    }

    /// How many addresses are remembered now (both buckets).
    pub fn tracked(&self) -> usize {
        self.inner
            .as_ref()
            .map(|limiters| limiters.actions.get().len() + limiters.views.get().len())
            .unwrap_or(0)
    }

    /// Prunes every few seconds until `shutdown`.
    pub fn spawn_pruner(&self, shutdown: tokio_util::sync::CancellationToken) {
        if !self.enabled() {
            return;
        }
        let limits = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => limits.prune(),
                }
            }
        });
    }
}

/// Which bucket a request draws from; None for requests that are never limited.
pub fn bucket_for(method: &Method, path: &str) -> Option<Bucket> {
    if path == "/api/health" || path.starts_with("/static/") || path == "/favicon.ico" {
        return None;
    }
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe || path.starts_with("/api/") || path == "/api" {
        Some(Bucket::Actions)
    } else {
        Some(Bucket::Views)
    }
}

/// Middleware: 429 with `Retry-After` when the client's bucket is empty.
pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(bucket) = bucket_for(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let client = request
        .extensions()
        .get::<ClientAddress>()
        .map(|address| address.0)
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    match state.limits.check(bucket, client) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            tracing::info!(%client, ?bucket, retry_after_secs, "rate limited");
            let rendering = Rendering::of(&request);
            error_response(
                rendering,
                AppError::RateLimited {
                    retry_after_secs: retry_after_secs.max(1),
                },
            )
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_actions_bucket_holds_max_requests() {
        let limits = RateLimits::new(Duration::from_secs(60), 3);
        let client: IpAddr = "198.51.100.7".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.check(Bucket::Actions, client).is_ok());
        }
        let wait = limits.check(Bucket::Actions, client).unwrap_err();
        assert!(
            wait > Duration::from_secs(10) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        // Another client is not affected; views have their own, larger bucket.
        assert!(
            limits
                .check(Bucket::Actions, "198.51.100.8".parse().unwrap())
                .is_ok()
        );
        for _ in 0..30 {
            assert!(limits.check(Bucket::Views, client).is_ok());
        }
        assert!(limits.check(Bucket::Views, client).is_err());
    }

    #[test]
    fn zero_disables_limiting() {
        let limits = RateLimits::new(Duration::from_secs(60), 0);
        assert!(!limits.enabled());
        for _ in 0..1000 {
            assert!(
                limits
                    .check(Bucket::Actions, "198.51.100.7".parse().unwrap())
                    .is_ok()
            );
        }
    }

    #[test]
    fn an_ipv6_64_is_one_client() {
        let limits = RateLimits::new(Duration::from_secs(60), 1);
        assert!(
            limits
                .check(Bucket::Actions, "2001:db8:1:2::1".parse().unwrap())
                .is_ok()
        );
        assert!(
            limits
                .check(Bucket::Actions, "2001:db8:1:2::ffff".parse().unwrap())
                .is_err()
        );
        assert!(
            limits
                .check(Bucket::Actions, "2001:db8:1:3::1".parse().unwrap())
                .is_ok()
        );
    }

    #[test]
    fn memory_stays_bounded_after_100_000_addresses() {
        let limits = RateLimits::new(Duration::from_millis(100), 1);
        for n in 0..100_000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            let _ = limits.check(Bucket::Actions, ip);
        }
        assert!(limits.tracked() <= MAX_TRACKED, "{}", limits.tracked());
        // More than the cap: the table starts afresh instead of growing.
        for n in 0..(MAX_TRACKED as u32 + 10) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0b00_0000 + n));
            let _ = limits.check(Bucket::Actions, ip);
        }
        assert!(limits.tracked() <= MAX_TRACKED, "{}", limits.tracked());
        // Once their buckets refill, idle addresses are forgotten.
        std::thread::sleep(Duration::from_millis(250));
        limits.prune();
        assert_eq!(limits.tracked(), 0);
    }

    #[test]
    fn two_tabs_watching_a_job_for_an_hour_never_run_dry_at_the_defaults() {
        use governor::clock::FakeRelativeClock;
        let clock = FakeRelativeClock::default();
        let views = RateLimiter::direct_with_clock(
            quota(Duration::from_secs(60), 60 * VIEWS_FACTOR).unwrap(),
            clock.clone(),
        );
        // Each tab polls its partial every 2 s and reloads the page once a minute.
        for second in 0..3600 {
            let requests =
                if second % 2 == 0 { 2 } else { 0 } + if second % 60 == 0 { 2 } else { 0 };
            for _ in 0..requests {
                assert!(views.check().is_ok(), "denied at second {second}");
            }
            clock.advance(Duration::from_secs(1));
        }
    }

    #[test]
    fn buckets_by_route() {
        assert_eq!(bucket_for(&Method::GET, "/api/health"), None);
        assert_eq!(bucket_for(&Method::GET, "/static/app.css"), None);
        assert_eq!(bucket_for(&Method::GET, "/api/jobs"), Some(Bucket::Actions));
        assert_eq!(bucket_for(&Method::POST, "/jobs"), Some(Bucket::Actions));
        assert_eq!(
            bucket_for(&Method::GET, "/jobs/abc/status"),
            Some(Bucket::Views)
        );
        assert_eq!(bucket_for(&Method::GET, "/"), Some(Bucket::Views));
    }
}
