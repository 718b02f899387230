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
//! [`MAX_TRACKED`] addresses are live at once, idle ones are forgotten first, then the table is
//! emptied rather than grown. A client that is refused now is remembered apart, until its wait
//! is over, so emptying the table never hands it a fresh bucket.
//!
//! Refusals are not logged one by one (a client hammering the server would write a line per
//! request): the first refusal of a period is logged, the rest are counted and reported in one
//! line every ten seconds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::error::AppError;
use crate::web::AppState;
use crate::web::middleware::client::ClientAddress;

type Keyed = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>;

/// More live addresses than this at once, and the tables are cleared.
pub const MAX_TRACKED: usize = crate::config::RATE_LIMIT_MAX_TRACKED;
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
    /// More live addresses than this per table, and the table is emptied.
    max_tracked: usize,
    refusals: Mutex<Refusals>,
}

/// Refusals since the last report.
#[derive(Default)]
struct Refusals {
    count: u64,
    clients: std::collections::HashSet<IpAddr>,
    /// When the current period's first refusal was logged; None when no period is open.
    period_started: Option<Instant>,
}

/// How long refusals are counted before they are reported in one line.
const REPORT_EVERY: Duration = Duration::from_secs(10);
/// Distinct clients named in a report at most (the count goes on).
const REPORTED_CLIENTS: usize = 1000;

/// A keyed limiter that can be replaced by an empty one, and the clients it refuses now.
struct Table {
    quota: Quota,
    limiter: RwLock<Arc<Keyed>>,
    /// Clients refused now, and until when. Kept apart from the limiter, which may be emptied:
    /// a client stays refused until its wait is over, whatever happens to the table.
    limited: Mutex<HashMap<IpAddr, Instant>>,
}

impl Table {
    fn new(quota: Quota) -> Self {
        Self {
            quota,
            limiter: RwLock::new(Arc::new(RateLimiter::keyed(quota))),
            limited: Mutex::default(),
        }
    }

    fn limited(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.limited.lock().unwrap_or_else(|e| e.into_inner())
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
pub(crate) fn key(ip: IpAddr) -> IpAddr {
    match crate::web::middleware::client::canonical(ip) {
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
        Self::with_capacity(window, max, MAX_TRACKED)
    }

    /// As [`Self::new`], remembering at most `max_tracked` addresses per bucket.
    pub fn with_capacity(window: Duration, max: u32, max_tracked: usize) -> Self {
        let actions = quota(window, max);
        let views = quota(window, max.saturating_mul(VIEWS_FACTOR));
        let inner = match (actions, views) {
            (Some(actions), Some(views)) => Some(Arc::new(Limiters {
                actions: Table::new(actions),
                views: Table::new(views),
                clock: DefaultClock::default(),
                max_tracked: max_tracked.max(1),
                refusals: Mutex::default(),
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
        let key = key(client);
        let now = Instant::now();
        if let Some(until) = table.limited().get(&key).copied()
            && until > now
        {
            return Err(until - now);
        }
        let mut limiter = table.get();
        if limiter.len() >= limiters.max_tracked {
            // Idle addresses first: their buckets are full, so forgetting them changes nothing.
            limiter.retain_recent();
            if limiter.len() >= limiters.max_tracked {
                tracing::warn!(
                    tracked = limiter.len(),
                    "the rate limiter tracks too many busy addresses; starting afresh (clients \
                     refused now stay refused)"
                );
                table.reset();
                limiter = table.get();
            }
        }
        limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiters.clock.now());
            let mut limited = table.limited();
            if limited.len() < limiters.max_tracked {
                limited.insert(key, now + wait);
            }
            wait
        })
    }

    /// Notes a refused request for the log: the first of a period is logged at once, the rest
    /// are counted and reported by [`Self::report_refusals`].
    pub fn note_refusal(&self, client: IpAddr, bucket: Bucket, retry_after_secs: u64) {
        let Some(limiters) = &self.inner else {
            return;
        };
        let mut refusals = limiters.refusals.lock().unwrap_or_else(|e| e.into_inner());
        if refusals.period_started.is_none() {
            refusals.period_started = Some(Instant::now());
            drop(refusals);
            tracing::info!(
                %client,
                ?bucket,
                retry_after_secs,
                "rate limited (further refusals are counted and reported every 10 s)"
            );
            return;
        }
        refusals.count += 1;
        if refusals.clients.len() < REPORTED_CLIENTS {
            refusals.clients.insert(key(client));
        }
    }

    /// Logs one line for the refusals counted since the last report, if any, and closes the
    /// period once it has lasted [`REPORT_EVERY`].
    pub fn report_refusals(&self) {
        let Some(limiters) = &self.inner else {
            return;
        };
        let mut refusals = limiters.refusals.lock().unwrap_or_else(|e| e.into_inner());
        let Some(started) = refusals.period_started else {
            return;
        };
        if started.elapsed() < REPORT_EVERY {
            return;
        }
        let taken = std::mem::take(&mut *refusals);
        drop(refusals);
        if taken.count > 0 {
            let mut clients: Vec<String> = taken
                .clients
                .iter()
                .take(5)
                .map(IpAddr::to_string)
                .collect();
            if taken.clients.len() > 5 {
                clients.push(format!("and {} more", taken.clients.len() - 5));
            }
            tracing::info!(
                refused = taken.count,
                clients = %clients.join(", "),
                seconds = started.elapsed().as_secs(),
                "rate limited more requests"
            );
        }
    }

    /// A failed login costs an action, so guessing is as slow as the limit.
    pub fn charge_failure(&self, client: IpAddr) {
        let _ = self.check(Bucket::Actions, client);
    }

    /// Forgets addresses whose buckets are full again, and refusals that are over.
    pub fn prune(&self) {
        if let Some(limiters) = &self.inner {
            let now = Instant::now();
            for table in [&limiters.actions, &limiters.views] {
                let limiter = table.get();
                limiter.retain_recent();
                limiter.shrink_to_fit();
                let mut limited = table.limited();
                limited.retain(|_, until| *until > now);
                limited.shrink_to_fit();
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
            let mut prune = tokio::time::interval(Duration::from_secs(10));
            let mut report = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = prune.tick() => limits.prune(),
                    _ = report.tick() => limits.report_refusals(),
                }
            }
        });
    }
}

/// Which buckets a group of routes draws from (the route table says which; the health probe
/// and static files have no limit at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buckets {
    /// Every request is an action: the API.
    Actions,
    /// Reading (GET, HEAD, OPTIONS) is a view, anything else an action: the pages.
    ByMethod,
}

impl Buckets {
    pub fn bucket(self, method: &Method) -> Bucket {
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        match self {
            Buckets::ByMethod if safe => Bucket::Views,
            Buckets::Actions | Buckets::ByMethod => Bucket::Actions,
        }
    }
}

/// The bucket a request drew from, for the checks after the limit (a failed sign-in costs an
/// action in all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drawn(pub Bucket);

/// A check (see `web::Guard`): 429 with `Retry-After` when the client's bucket is empty.
pub fn limit(
    state: &AppState,
    buckets: Buckets,
    request: &mut Request,
) -> Result<(), Box<Response>> {
    let bucket = buckets.bucket(request.method());
    request.extensions_mut().insert(Drawn(bucket));
    let client = request
        .extensions()
        .get::<ClientAddress>()
        .map(|address| address.0)
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    match state.limits.check(bucket, client) {
        Ok(()) => Ok(()),
        Err(wait) => {
            let retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            state.limits.note_refusal(client, bucket, retry_after_secs);
            Err(Box::new(
                AppError::RateLimited {
                    retry_after_secs: retry_after_secs.max(1),
                }
                .into_response(),
            ))
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
    fn a_limited_client_stays_limited_when_the_table_is_full() {
        let limits = RateLimits::with_capacity(Duration::from_secs(60), 2, 100);
        let limited: IpAddr = "198.51.100.7".parse().unwrap();
        assert!(limits.check(Bucket::Actions, limited).is_ok());
        assert!(limits.check(Bucket::Actions, limited).is_ok());
        assert!(limits.check(Bucket::Actions, limited).is_err());
        // A crowd of busy addresses fills the table past its cap: it starts afresh.
        for n in 0..300u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            let _ = limits.check(Bucket::Actions, ip);
            assert!(
                limits.check(Bucket::Actions, limited).is_err(),
                "the limited client got a fresh bucket after {n} others"
            );
        }
        assert!(limits.tracked() <= 100 + 1, "{}", limits.tracked());
    }

    #[test]
    fn idle_addresses_are_forgotten_before_the_table_is_emptied() {
        // Two requests per 400 ms: a used bucket takes 400 ms to be full (idle) again.
        let limits = RateLimits::with_capacity(Duration::from_millis(400), 2, 10);
        for n in 0..10u32 {
            let _ = limits.check(Bucket::Actions, IpAddr::from([10, 0, 0, n as u8]));
        }
        std::thread::sleep(Duration::from_millis(500));
        // One of them is busy again: its bucket is empty, though it has not been refused yet.
        let busy = IpAddr::from([10, 0, 0, 0]);
        assert!(limits.check(Bucket::Actions, busy).is_ok());
        assert!(limits.check(Bucket::Actions, busy).is_ok());
        // A newcomer finds the table full: the nine idle ones are forgotten, the busy one is
        // not (emptying the table would have handed it a full bucket).
        assert!(
            limits
                .check(Bucket::Actions, "198.51.100.8".parse().unwrap())
                .is_ok()
        );
        assert_eq!(limits.inner.as_ref().unwrap().actions.get().len(), 2);
        assert!(limits.check(Bucket::Actions, busy).is_err());
    }

    #[test]
    fn refusals_are_reported_in_one_line_per_period() {
        let limits = RateLimits::new(Duration::from_secs(60), 1);
        let client: IpAddr = "198.51.100.7".parse().unwrap();
        for _ in 0..1000 {
            limits.note_refusal(client, Bucket::Actions, 1);
        }
        let inner = limits.inner.as_ref().unwrap();
        let refusals = inner.refusals.lock().unwrap();
        assert_eq!(
            refusals.count, 999,
            "the first was logged, the rest counted"
        );
        assert_eq!(refusals.clients.len(), 1);
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
    fn buckets_by_method() {
        assert_eq!(Buckets::Actions.bucket(&Method::GET), Bucket::Actions);
        assert_eq!(Buckets::Actions.bucket(&Method::POST), Bucket::Actions);
        assert_eq!(Buckets::ByMethod.bucket(&Method::POST), Bucket::Actions);
        assert_eq!(Buckets::ByMethod.bucket(&Method::DELETE), Bucket::Actions);
        assert_eq!(Buckets::ByMethod.bucket(&Method::GET), Bucket::Views);
        assert_eq!(Buckets::ByMethod.bucket(&Method::HEAD), Bucket::Views);
    }
}
