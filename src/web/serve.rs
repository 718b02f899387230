//! The accept loop. axum's `serve` has no header timeout, so a client that trickles its request
//! head a byte at a time, or opens a connection and sends nothing, could hold a connection (and
//! a task) forever. Here:
//!
//! - every connection must send a complete request head within `header_timeout` of being
//!   accepted (and of its previous response, on a kept-alive connection), or it is closed;
//! - the number of open connections is capped, in all and per client address, so one client
//!   cannot take every slot and starve the health probe;
//! - shutdown is graceful: in-flight requests finish, idle connections close.
//!
//! Only HTTP/1 is served (the router is built without HTTP/2), so hyper's HTTP/1 connection is
//! used directly: its header timer starts when the connection is first read, before any byte
//! has arrived. hyper-util's protocol-detecting builder read the first bytes without a timer,
//! and a silent connection was never closed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::Request;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Open connections at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 4096;
/// Open connections at once from one client address (an IPv6 /64 counts as one address).
/// A browser opens six per site; a busy reverse proxy keeps a pool of a few dozen.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 256;

/// How many connections each address holds open now. Entries go when their count reaches zero,
/// so the table is never larger than the number of open connections.
#[derive(Clone, Default)]
pub struct ConnectionCounts {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open connection's place in [`ConnectionCounts`]; gives it back when dropped.
pub struct ConnectionSlot {
    counts: ConnectionCounts,
    address: IpAddr,
}

impl ConnectionCounts {
    /// A slot for a new connection from `peer`, unless that address already holds `limit`.
    pub fn try_open(&self, peer: IpAddr, limit: usize) -> Option<ConnectionSlot> {
        let address = crate::web::middleware::rate_limit::key(peer);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(address).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            counts: self.clone(),
            address,
        })
    }

    /// Connections open now from `peer`'s address.
    pub fn open_from(&self, peer: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&crate::web::middleware::rate_limit::key(peer))
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// Connections closed because their address held the most allowed at once: counted, not
/// logged one by one (a client that opens thousands of connections must not write thousands
/// of lines), reported at most every 10 seconds.
#[derive(Default)]
struct Refusals {
    refused: u64,
    last_report: Option<tokio::time::Instant>,
}

impl Refusals {
    fn note(&mut self, peer: SocketAddr) {
        self.refused += 1;
        if self
            .last_report
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(10))
        {
            tracing::warn!(
                client = %peer.ip(),
                refused = self.refused,
                limit = MAX_CONNECTIONS_PER_ADDRESS,
                "closed connections from addresses that already hold the most allowed at once"
            );
            self.refused = 0;
            self.last_report = Some(tokio::time::Instant::now());
        }
    }
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets open requests finish
/// for up to `grace`. A client must send each request head within `header_timeout`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let counts = ConnectionCounts::default();
    let mut refusals = Refusals::default();

    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a moment, keep serving.
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = counts.try_open(peer.ip(), MAX_CONNECTIONS_PER_ADDRESS) else {
            // Closed at once; the permit goes back with it.
            drop(stream);
            refusals.note(peer);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service =
            router
                .clone()
                .map_request(move |mut request: Request<hyper::body::Incoming>| {
                    request
                        .extensions_mut()
                        .insert(ConnectInfo::<SocketAddr>(peer));
                    request
                });
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, error = %error, "connection ended with an error");
            }
            drop(slot);
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after the grace period");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_own_count_and_slots_are_given_back() {
        let counts = ConnectionCounts::default();
        let one: IpAddr = "198.51.100.7".parse().unwrap();
        let other: IpAddr = "198.51.100.8".parse().unwrap();
        let slots: Vec<_> = (0..3).map(|_| counts.try_open(one, 3).unwrap()).collect();
        assert!(counts.try_open(one, 3).is_none());
        assert!(counts.try_open(other, 3).is_some());
        // An IPv4 address wrapped in IPv6 is the same client.
        assert!(
            counts
                .try_open("::ffff:198.51.100.7".parse().unwrap(), 3)
                .is_none()
        );
        drop(slots);
        assert_eq!(counts.open_from(one), 0);
        assert!(counts.open.lock().unwrap().is_empty(), "no entry is kept");
        assert!(counts.try_open(one, 3).is_some());
    }
}
