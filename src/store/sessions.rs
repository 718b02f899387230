//! Browser sessions as the store keeps them: an opaque id, the session's data (JSON the web
//! layer writes and reads back) and when it expires. The web layer's session store
//! (`web::middleware::sessions`) is built on these; the store knows nothing of cookies.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::store::{StoreError, StoreResult};

/// Sessions kept at once. A client that never sends its cookie back makes a new session with
/// every form it loads; past this many, the sessions closest to expiry make room, so such
/// clients cannot grow the table without end.
pub const MAX_SESSIONS: u64 = 20_000;

/// How many of `count` stored sessions, the closest to expiry first, make room for `adding`
/// more under `cap`: none while they fit, else at least a tenth of the cap at once, so that a
/// full table is not trimmed by one row with every new session.
pub fn to_evict(count: u64, cap: u64, adding: u64) -> u64 {
    if count + adding <= cap {
        0
    } else {
        (count + adding - cap).max(cap / 10)
    }
}

/// At most this many new sessions are stored in one transaction.
pub const MAX_BATCH: usize = 256;

/// A new session waiting to be stored, and who waits for the answer.
type Waiting = (StoredSession, oneshot::Sender<StoreResult<bool>>);

/// New sessions waiting to be stored together (group commit). A browser's first page makes a
/// session; many new visitors at once would each take the one writer for a transaction of
/// their own. Instead the first one stores what is waiting, and those that come while it does
/// are stored together by the next transaction: no one waits longer than one transaction
/// before theirs starts, and a burst costs a few transactions instead of one each. Each caller
/// is answered only once its session is committed, so another replica can read it at once.
#[derive(Default)]
pub struct Creations {
    waiting: Mutex<(Vec<Waiting>, bool)>,
}

impl Creations {
    /// Queues `session`; true when no one is storing the queue, and the caller must.
    fn add(&self, session: StoredSession, answer: oneshot::Sender<StoreResult<bool>>) -> bool {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.0.push((session, answer));
        !std::mem::replace(&mut waiting.1, true)
    }

    /// The next sessions to store, or none (and the storing ends) when the queue is empty.
    fn next_batch(&self) -> Option<Vec<Waiting>> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if waiting.0.is_empty() {
            waiting.1 = false;
            return None;
        }
        let count = waiting.0.len().min(MAX_BATCH);
        Some(waiting.0.drain(..count).collect())
    }

    /// Stores `session` with whatever else is waiting: true when stored, false when its id is
    /// taken. `store_batch` writes one batch (the backend's `create_sessions`).
    pub async fn create<F, Fut>(
        self: &Arc<Self>,
        session: StoredSession,
        store_batch: F,
    ) -> StoreResult<bool>
    where
        F: Fn(Vec<StoredSession>) -> Fut + Send + 'static,
        Fut: Future<Output = StoreResult<Vec<bool>>> + Send + 'static,
    {
        let (sender, answer) = oneshot::channel();
        if self.add(session, sender) {
            // On a task of its own: a caller that goes away (its client hung up) does not stop
            // the others' sessions from being stored.
            let creations = self.clone();
            tokio::spawn(async move {
                let _reset = Reset(&creations);
                while let Some(batch) = creations.next_batch() {
                    let (sessions, answers): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                    match store_batch(sessions).await {
                        Ok(created) => {
                            for (answer, created) in answers.into_iter().zip(created) {
                                let _ = answer.send(Ok(created));
                            }
                        }
                        Err(error) => {
                            for answer in answers {
                                let _ = answer.send(Err(error.clone()));
                            }
                        }
                    }
                }
            });
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the session could not be stored: its writer stopped".into(),
            ))
        })
    }
}

/// Should the storing task panic, the queue is open again (and its waiting callers are
/// answered with an error as their senders drop), instead of never being stored.
struct Reset<'a>(&'a Creations);

impl Drop for Reset<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut waiting = self.0.waiting.lock().unwrap_or_else(|e| e.into_inner());
            waiting.0.clear();
            waiting.1 = false;
        }
    }
}

/// One session row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub id: String,
    /// The session's data, as JSON.
    pub data: String,
    /// ms since the epoch; the session does not exist after it.
    pub expires_at: i64,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::Backend;

    fn session(id: usize, expires_at: i64) -> StoredSession {
        StoredSession {
            id: format!("s{id}"),
            data: format!(r#"{{"n":{id}}}"#),
            expires_at,
        }
    }

    /// What every backend's sessions table must do: expired sessions are not found and go
    /// first, the table stays under its cap with the soonest to expire evicted, a taken id is
    /// refused, a save updates or stores again.
    pub(crate) async fn sessions_meaning(backend: &dyn Backend) {
        let (now, cap) = (1_000_000, 50);
        assert!(create_one(backend, session(0, now - 1), 0, cap).await);
        assert!(create_one(backend, session(1, now * 10), now, cap).await);
        for n in 2..130 {
            assert!(create_one(backend, session(n, now + n as i64), now, cap).await);
            let count = backend.count_sessions().await.unwrap();
            assert!(count <= cap, "{count} sessions stored with a cap of {cap}");
        }
        assert_eq!(backend.session("s0", 0).await.unwrap(), None);
        assert_eq!(
            backend.session("s1", now).await.unwrap(),
            Some(session(1, now * 10)),
            "the one expiring last stays"
        );
        assert_eq!(backend.session("s2", now).await.unwrap(), None);
        assert!(backend.session("s129", now).await.unwrap().is_some());
        // Not found once expired, though still stored.
        assert_eq!(backend.session("s129", now + 129).await.unwrap(), None);

        assert!(
            !create_one(backend, session(129, 5), now, cap).await,
            "a taken id is refused, not overwritten"
        );
        let mut changed = session(129, now + 500);
        changed.data = r#"{"flash":[]}"#.into();
        backend
            .save_session(changed.clone(), now, cap)
            .await
            .unwrap();
        assert_eq!(backend.session("s129", now).await.unwrap(), Some(changed));
        backend
            .save_session(session(500, now + 1), now, cap)
            .await
            .unwrap();
        assert!(backend.count_sessions().await.unwrap() <= cap);
        assert!(backend.session("s500", now).await.unwrap().is_some());
        backend.delete_session("s500").await.unwrap();
        assert_eq!(backend.session("s500", now).await.unwrap(), None);

        // Several at once, in one transaction: each answered, a taken id refused alone, and
        // room made for all of them.
        let batch = vec![
            session(600, now * 2),
            session(129, now * 2),
            session(601, now * 2),
        ];
        let created = backend.create_sessions(batch, now, cap).await.unwrap();
        assert_eq!(created, [true, false, true]);
        assert_eq!(
            backend
                .session("s129", now)
                .await
                .unwrap()
                .unwrap()
                .expires_at,
            now + 500
        );
        let many = (700..740).map(|n| session(n, now * 3)).collect();
        let created = backend.create_sessions(many, now, cap).await.unwrap();
        assert!(created.iter().all(|&created| created));
        assert!(backend.count_sessions().await.unwrap() <= cap);
        assert!(backend.session("s739", now).await.unwrap().is_some());
        assert!(
            backend.session("s1", now).await.unwrap().is_some(),
            "the latest stay"
        );
    }

    async fn create_one(backend: &dyn Backend, session: StoredSession, now: i64, cap: u64) -> bool {
        let created = backend
            .create_sessions(vec![session], now, cap)
            .await
            .unwrap();
        assert_eq!(created.len(), 1);
        created[0]
    }

    #[test]
    fn room_is_made_for_what_is_added() {
        assert_eq!(to_evict(0, 100, 1), 0);
        assert_eq!(to_evict(99, 100, 1), 0);
        assert_eq!(to_evict(100, 100, 1), 10, "a tenth at once");
        assert_eq!(to_evict(95, 100, 30), 25);
        assert_eq!(to_evict(0, 100, 130), 30);
    }

    /// New sessions that come together are stored together, and each caller hears about its
    /// own: stored, taken, or the batch's error.
    #[tokio::test]
    async fn sessions_that_come_together_are_stored_in_one_batch() {
        let creations = Arc::new(Creations::default());
        let batches = Arc::new(Mutex::new(Vec::new()));
        let store = |batches: Arc<Mutex<Vec<usize>>>| {
            move |sessions: Vec<StoredSession>| {
                let batches = batches.clone();
                async move {
                    batches.lock().unwrap().push(sessions.len());
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    if sessions.iter().any(|session| session.id == "broken") {
                        return Err(StoreError::Unavailable("disk full".into()));
                    }
                    Ok(sessions.iter().map(|session| session.id != "s13").collect())
                }
            }
        };
        let answers = futures_util::future::join_all(
            (0..100).map(|n| creations.create(session(n, 1), store(batches.clone()))),
        )
        .await;
        assert_eq!(answers.len(), 100);
        for (n, answer) in answers.into_iter().enumerate() {
            assert_eq!(answer, Ok(n != 13), "session {n}");
        }
        let sizes = batches.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 100);
        assert!(sizes.len() < 10, "batches of {sizes:?}");
        assert!(sizes.iter().all(|&size| size <= MAX_BATCH));

        // A failed batch fails each of its callers, and the next batch is stored again.
        let mut broken = session(0, 1);
        broken.id = "broken".into();
        let (failed, fine) = tokio::join!(
            creations.create(broken, store(batches.clone())),
            creations.create(session(1, 1), store(batches.clone())),
        );
        assert_eq!(failed, Err(StoreError::Unavailable("disk full".into())));
        assert_eq!(fine, Err(StoreError::Unavailable("disk full".into())));
        assert_eq!(
            creations.create(session(2, 1), store(batches)).await,
            Ok(true)
        );
    }
}
