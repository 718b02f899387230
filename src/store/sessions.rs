//! Browser sessions as the store keeps them: an opaque id, the session's data (JSON the web
//! layer writes and reads back) and when it expires. The web layer's session store
//! (`web::middleware::sessions`) is built on these; the store knows nothing of cookies.

/// Sessions kept at once. A client that never sends its cookie back makes a new session with
/// every form it loads; past this many, the sessions closest to expiry make room, so such
/// clients cannot grow the table without end.
pub const MAX_SESSIONS: u64 = 20_000;

/// How many of `count` stored sessions, the closest to expiry first, make room for one more
/// under `cap`: none below the cap, else a tenth of the cap at once, so that a full table is not
/// trimmed by one row with every new session.
pub fn to_evict(count: u64, cap: u64) -> u64 {
    if count < cap {
        0
    } else {
        (count - cap + 1).max(cap / 10)
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
        assert!(
            backend
                .create_session(session(0, now - 1), 0, cap)
                .await
                .unwrap()
        );
        assert!(
            backend
                .create_session(session(1, now * 10), now, cap)
                .await
                .unwrap()
        );
        for n in 2..130 {
            let created = backend.create_session(session(n, now + n as i64), now, cap);
            assert!(created.await.unwrap());
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
            !backend
                .create_session(session(129, 5), now, cap)
                .await
                .unwrap(),
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
    }
}
