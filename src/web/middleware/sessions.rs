//! Sessions (tower-sessions) for form tokens and flash messages, kept in the application's
//! database through [`DatabaseSessionStore`].
//!
//! In the database rather than in memory so that consecutive requests may land on different
//! replicas (no sticky sessions: every process on one `DATABASE_URL` sees the same sessions) and
//! so that sessions survive a restart. The table is bounded (`store::sessions::MAX_SESSIONS`,
//! expired sessions removed and the ones closest to expiry evicted when a new one needs room),
//! so clients that never send their cookie back cannot grow it without end.
//!
//! tower-sessions writes a session only when a request changed it: a page that reads the form
//! token of an existing session reads one row and writes nothing, and reads it at most once a
//! minute (`csrf::FormTokens`); it looks for flash messages only when the `focusflow.flash`
//! cookie says one waits (`pages::flash`). To keep an active session alive without a write per
//! page view, its expiry is renewed at most once a day (see `csrf::CsrfToken`).

use std::str::FromStr;

use async_trait::async_trait;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use tower_sessions::cookie::SameSite;
use tower_sessions::cookie::time::{Duration, OffsetDateTime};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::store::{Store, StoreError, StoredSession};
use crate::web::middleware::client::Forwarded;

/// The session cookie's name.
pub const COOKIE: &str = "focusflow.sid";
/// The cookie that says a flash message waits in the session (see `pages::flash`).
pub const FLASH_MARKER: &str = "focusflow.flash";
/// A session ends after this long without a change (see `csrf` for how an active session is
/// renewed).
pub const INACTIVITY: Duration = Duration::days(7);

/// tower-sessions' store over the application's database (SQLite or PostgreSQL, whichever
/// `Store` has). Database errors become tower-sessions' backend error; the session layer then
/// answers 500 for a failed save, and handlers turn a failed load into a 503.
#[derive(Debug, Clone)]
pub struct DatabaseSessionStore {
    store: Store,
}

impl DatabaseSessionStore {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

fn backend_error(error: StoreError) -> session_store::Error {
    session_store::Error::Backend(error.to_string())
}

fn millis(date: OffsetDateTime) -> i64 {
    i64::try_from(date.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn stored(record: &Record) -> session_store::Result<StoredSession> {
    Ok(StoredSession {
        id: record.id.to_string(),
        data: serde_json::to_string(&record.data)
            .map_err(|error| session_store::Error::Encode(error.to_string()))?,
        expires_at: millis(record.expiry_date),
    })
}

fn record(session: StoredSession) -> session_store::Result<Record> {
    let decode = |message: String| session_store::Error::Decode(message);
    Ok(Record {
        id: Id::from_str(&session.id).map_err(|error| decode(error.to_string()))?,
        data: serde_json::from_str(&session.data).map_err(|error| decode(error.to_string()))?,
        expiry_date: OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(session.expires_at) * 1_000_000,
        )
        .map_err(|error| decode(error.to_string()))?,
    })
}

#[async_trait]
impl SessionStore for DatabaseSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // Ids are 128 random bits; a taken one is drawn again rather than overwritten.
        loop {
            let created = self
                .store
                .create_session(stored(record)?)
                .await
                .map_err(backend_error)?;
            if created {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.store
            .save_session(stored(record)?)
            .await
            .map_err(backend_error)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(session) = self
            .store
            .session(&id.to_string())
            .await
            .map_err(backend_error)?
        else {
            return Ok(None);
        };
        match record(session) {
            Ok(record) => Ok(Some(record)),
            // A row this program cannot read is no session: the browser gets a new one.
            Err(error) => {
                tracing::warn!(%error, "a stored session could not be read; starting a new one");
                Ok(None)
            }
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.store
            .delete_session(&id.to_string())
            .await
            .map_err(backend_error)
    }
}

/// The session layer: the `focusflow.sid` cookie (HttpOnly, SameSite=Lax, Path=/, kept for
/// [`INACTIVITY`]) naming a session in the database. `Secure` is added by
/// [`secure_cookies`] when the browser came over https.
pub fn layer(store: Store) -> SessionManagerLayer<DatabaseSessionStore> {
    SessionManagerLayer::new(DatabaseSessionStore::new(store))
        .with_name(COOKIE)
        .with_secure(false)
        .with_same_site(SameSite::Lax)
        .with_http_only(true)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(INACTIVITY))
}

/// The browser came over https, as a trusted proxy says (see [`secure_cookies`]).
pub fn over_https(request: &Request) -> bool {
    request
        .extensions()
        .get::<Forwarded>()
        .and_then(|forwarded| forwarded.proto.as_deref())
        == Some("https")
}

/// Marks the session cookie (and the flash marker) in `response` `Secure`, for a browser that
/// came [`over_https`], so the cookie never travels over plain http afterwards. Over plain
/// http (a LAN install without TLS) a `Secure` cookie would be dropped by the browser and no
/// form would work, hence not always. Applied around the session layer (by `web::Guard`).
pub fn secure_cookies(response: &mut Response) {
    let ours = |line: &str| {
        [COOKIE, FLASH_MARKER].iter().any(|name| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('='))
        })
    };
    let headers = response.headers_mut();
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|value| match value.to_str() {
            Ok(line) if ours(line) && !line.contains("; Secure") => {
                HeaderValue::from_str(&format!("{line}; Secure")).unwrap_or_else(|_| value.clone())
            }
            _ => value.clone(),
        })
        .collect();
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_record(expires_in: Duration) -> Record {
        Record {
            id: Id::default(),
            data: [("csrf_token".to_string(), serde_json::json!("abc"))]
                .into_iter()
                .collect(),
            expiry_date: OffsetDateTime::now_utc() + expires_in,
        }
    }

    #[tokio::test]
    async fn a_session_survives_reopening_the_database_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let sessions = DatabaseSessionStore::new(Store::open(dir.path()).unwrap());
        let mut live = new_record(Duration::hours(1));
        let mut expired = new_record(Duration::seconds(-1));
        sessions.create(&mut live).await.unwrap();
        sessions.create(&mut expired).await.unwrap();
        drop(sessions);

        let sessions = DatabaseSessionStore::new(Store::open(dir.path()).unwrap());
        let loaded = sessions.load(&live.id).await.unwrap().unwrap();
        assert_eq!(loaded.data, live.data);
        assert_eq!(
            millis(loaded.expiry_date),
            millis(live.expiry_date),
            "the expiry is kept to the millisecond"
        );
        assert_eq!(sessions.load(&expired.id).await.unwrap(), None);

        live.data
            .insert("flash".into(), serde_json::json!([{"kind": "success"}]));
        sessions.save(&live).await.unwrap();
        assert_eq!(
            sessions.load(&live.id).await.unwrap().unwrap().data,
            live.data
        );
        sessions.delete(&live.id).await.unwrap();
        assert_eq!(sessions.load(&live.id).await.unwrap(), None);
        // A save of a session that is gone stores it again (it expired between load and save).
        sessions.save(&live).await.unwrap();
        assert!(sessions.load(&live.id).await.unwrap().is_some());
    }
}
