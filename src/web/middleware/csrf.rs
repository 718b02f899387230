//! Protection against cross-site requests.
//!
//! Browsers resend cached Basic credentials to any site's form, so every state-changing route is
//! a target. Two defences: (1) a state-changing request that a browser marks as cross-site (an
//! `Origin` that is not this host, or `Sec-Fetch-Site: cross-site`) is refused on every route;
//! API clients that send no `Origin` (curl, scripts) are unaffected. (2) HTML forms carry a
//! per-session token (tower-sessions, kept in the database: see `sessions`, so any replica
//! checks it) that a form handler checks with [`CsrfForm`].
//!
//! A page needs its session's token, and a browser polls its pages: each replica keeps the
//! tokens of the sessions it has read for a minute ([`FormTokens`]), so a page read again soon
//! reads no session row. That is safe for any number of replicas because a session's token
//! never changes once made; the minute bounds how long a replica shows the token of a session
//! that has meanwhile been removed (expired or evicted), after which the form is refused and
//! the page reloaded as for any expired form. Checking a submitted form always reads the
//! database. Flash messages, which do change, are never read from here (see `pages::flash`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;
use tower_sessions::Session;
use tower_sessions::session::Id;
use url::Url;

use crate::error::AppError;
use crate::web::AppState;
use crate::web::middleware::client::Forwarded;

/// The hidden form field that carries the token.
pub const FORM_FIELD: &str = "csrf_token";
const SESSION_KEY: &str = "csrf_token";
/// When the session's expiry was last pushed back (seconds since the epoch).
const RENEWED_KEY: &str = "renewed_at";
/// An active session's expiry is pushed back at most this often: tower-sessions writes a
/// session only when it changed, so reading the token of a session renewed less than a day ago
/// writes nothing, and a session in use never expires.
const RENEW_EVERY_SECS: i64 = 24 * 3600;

/// Why a request looks cross-site, if it does. `forwarded` is what a trusted proxy said of the
/// host and scheme the browser used; another client's `X-Forwarded-*` headers are not looked at.
pub fn cross_site_reason(
    method: &Method,
    headers: &HeaderMap,
    forwarded: Option<&Forwarded>,
) -> Option<String> {
    if matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) {
        return None;
    }
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if header("sec-fetch-site").is_some_and(|site| site.eq_ignore_ascii_case("cross-site")) {
        return Some("the browser marked this request as cross-site".into());
    }
    let origin = header("origin")?;
    let Some((scheme, origin_host, origin_port)) = Url::parse(origin)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"))
        .and_then(|url| {
            Some((
                url.scheme().to_string(),
                url.host_str()?.to_ascii_lowercase(),
                url.port_or_known_default()?,
            ))
        })
    else {
        return Some(format!("the request came from an opaque origin ({origin})"));
    };
    // The scheme the browser used is known when a trusted proxy says it: a page served over
    // plain http (which anyone on the path can write) may not post to the https site.
    if let Some(proto) = forwarded.and_then(|forwarded| forwarded.proto.as_deref())
        && proto != scheme
    {
        return Some(format!(
            "the request came from {origin}, but this site was reached over {proto}"
        ));
    }
    let default_port = if scheme == "https" { 443 } else { 80 };
    let matches = |host_header: &str| {
        host_header
            .trim()
            .parse::<axum::http::uri::Authority>()
            .is_ok_and(|authority| {
                authority.host().eq_ignore_ascii_case(&origin_host)
                    && authority.port_u16().unwrap_or(default_port) == origin_port
            })
    };
    let forwarded_host = forwarded.and_then(|forwarded| forwarded.host.as_deref());
    if [header("host"), forwarded_host]
        .into_iter()
        .flatten()
        .any(|host| host.split(',').any(matches))
    {
        None
    } else {
        Some(format!("the request came from another site ({origin})"))
    }
}

/// What a group of routes accepts from other sites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// State-changing requests only from this site's own pages.
    Strict,
    /// As strict, but a request the browser sent of its own accord passes too: the share
    /// target (the web app manifest's `share_target`), the one route a browser posts to
    /// without a page or a form token (see `pages::share`).
    AllowBrowserItself,
}

/// The browser sent the request of its own accord (a share, the address bar), not a page:
/// `Sec-Fetch-Site: none`. Pages cannot set this header.
pub fn sent_by_the_browser_itself(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|site| site.eq_ignore_ascii_case("none"))
}

/// A check (see `web::Guard`): refuses cross-site state-changing requests with 403.
pub fn refuse_cross_site(policy: Policy, request: &Request) -> Result<(), Box<Response>> {
    // A share from another app is sent by the browser itself, with `Origin: null` and no form
    // token; pages cannot send `Sec-Fetch-Site: none`, so no site can forge one (see
    // `pages::share`).
    if policy == Policy::AllowBrowserItself && sent_by_the_browser_itself(request.headers()) {
        return Ok(());
    }
    let forwarded = request.extensions().get::<Forwarded>();
    match cross_site_reason(request.method(), request.headers(), forwarded) {
        None => Ok(()),
        Some(reason) => {
            tracing::warn!(path = request.uri().path(), %reason, "cross-site request refused");
            Err(Box::new(
                AppError::Forbidden(format!("cross-site request refused: {reason}"))
                    .into_response(),
            ))
        }
    }
}

/// The session's form token, created on first use. Pages put it in every form.
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

impl FromRequestParts<AppState> for CsrfToken {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = session_of(parts, state).await?;
        // The id the cookie names; the session itself is read only when the token is not kept.
        if let Some(token) = session.id().and_then(|id| state.form_tokens.get(id)) {
            return Ok(CsrfToken(token));
        }
        let token = token_for(&session).await?;
        // A new session has no id until it is saved (after the handler); it is kept from its
        // next page on. A cookie naming a session that is gone has lost its id by now.
        if let Some(id) = session.id() {
            state.form_tokens.keep(id, token.clone());
        }
        Ok(CsrfToken(token))
    }
}

/// The form tokens of the sessions this process read in the last [`FormTokens::KEPT_FOR`],
/// at most [`FormTokens::MAX`] of them (see the module's documentation for why this is safe
/// with replicas).
#[derive(Debug, Default)]
pub struct FormTokens {
    kept: Mutex<HashMap<Id, (String, Instant)>>,
}

impl FormTokens {
    /// How long a token read from the database is used without reading it again. Also bounds
    /// how late the daily renewal of an active session's expiry comes (see `token_for`).
    pub const KEPT_FOR: Duration = Duration::from_secs(60);
    /// At most this many tokens are kept (about 150 bytes each).
    pub const MAX: usize = 4096;

    /// The token kept for session `id`, if it was read less than [`Self::KEPT_FOR`] ago.
    pub fn get(&self, id: Id) -> Option<String> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        kept.get(&id)
            .filter(|(_, read)| read.elapsed() < Self::KEPT_FOR)
            .map(|(token, _)| token.clone())
    }

    /// Keeps session `id`'s token, just read. When full, the stale ones go first, and all of
    /// them when none is stale (they are read again on their next page).
    pub fn keep(&self, id: Id, token: String) {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if kept.len() >= Self::MAX && !kept.contains_key(&id) {
            kept.retain(|_, (_, read)| read.elapsed() < Self::KEPT_FOR);
            if kept.len() >= Self::MAX {
                kept.clear();
            }
        }
        kept.insert(id, (token, Instant::now()));
    }
}

/// The request's session (the session layer must be on the route).
pub async fn session_of<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<Session, AppError> {
    Session::from_request_parts(parts, state)
        .await
        .map_err(|(_, message)| AppError::Internal(anyhow::anyhow!(message)))
}

/// A session that cannot be read or written: a database that cannot answer is a 503, as
/// everywhere else (see `error`), anything else a 500.
pub fn session_error(error: tower_sessions::session::Error) -> AppError {
    use tower_sessions::session::Error;
    use tower_sessions::session_store::Error as StoreError;
    match error {
        Error::Store(StoreError::Backend(message)) => {
            crate::store::StoreError::Unavailable(message).into()
        }
        other => AppError::Internal(other.into()),
    }
}

async fn token_for(session: &Session) -> Result<String, AppError> {
    let now = chrono::Utc::now().timestamp();
    if let Some(token) = session_token(session).await? {
        let renewed: Option<i64> = session.get(RENEWED_KEY).await.map_err(session_error)?;
        if renewed.is_none_or(|renewed| now - renewed >= RENEW_EVERY_SECS) {
            session
                .insert(RENEWED_KEY, now)
                .await
                .map_err(session_error)?;
        }
        return Ok(token);
    }
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    session
        .insert(SESSION_KEY, &token)
        .await
        .map_err(session_error)?;
    session
        .insert(RENEWED_KEY, now)
        .await
        .map_err(session_error)?;
    Ok(token)
}

/// The session's token, if it has one yet (a form can only be valid when it has).
pub async fn session_token(session: &Session) -> Result<Option<String>, AppError> {
    session.get(SESSION_KEY).await.map_err(session_error)
}

/// The refusal of a form whose token is missing or wrong.
pub fn expired_form() -> AppError {
    AppError::Forbidden(
        "the form has expired or did not come from this site; reload the page and try again".into(),
    )
}

/// Compares a submitted token with the session's in constant time.
pub fn tokens_match(submitted: &str, expected: &str) -> bool {
    !submitted.is_empty() && bool::from(submitted.as_bytes().ct_eq(expected.as_bytes()))
}

/// A URL-encoded form whose `csrf_token` matches the session's; else 403.
pub struct CsrfForm<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for CsrfForm<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let is_form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(AppError::UnsupportedMediaType(
                "send the form as application/x-www-form-urlencoded".into(),
            ));
        }
        let session = session_of(&mut parts, state).await?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::PayloadTooLarge("the form is too large".into())
                } else {
                    AppError::bad_request(rejection.body_text())
                }
            })?;
        let fields: Vec<(String, String)> =
            serde_urlencoded::from_bytes(&bytes).map_err(|error| {
                AppError::bad_request(format!("the form could not be read: {error}"))
            })?;
        let submitted = fields
            .iter()
            .find(|(name, _)| name == FORM_FIELD)
            .map(|(_, value)| value.as_str())
            .unwrap_or("");
        let expected = session_token(&session).await?;
        if !expected.is_some_and(|expected| tokens_match(submitted, &expected)) {
            return Err(expired_form());
        }
        serde_urlencoded::from_bytes(&bytes)
            .map(CsrfForm)
            .map_err(|error| AppError::bad_request(format!("the form could not be read: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_tokens_are_kept_for_a_minute_and_bounded() {
        let tokens = FormTokens::default();
        let id = Id::default();
        assert_eq!(tokens.get(id), None);
        tokens.keep(id, "a".repeat(64));
        assert_eq!(tokens.get(id), Some("a".repeat(64)));
        assert_eq!(tokens.get(Id::default()), None, "another session's is not");

        // Read a minute ago: read again.
        let stale = Instant::now() - FormTokens::KEPT_FOR;
        tokens.kept.lock().unwrap().insert(id, ("b".into(), stale));
        assert_eq!(tokens.get(id), None);

        // Full of stale ones: they make room.
        for _ in 0..FormTokens::MAX {
            tokens
                .kept
                .lock()
                .unwrap()
                .insert(Id::default(), ("c".into(), stale));
        }
        let fresh = Id::default();
        tokens.keep(fresh, "d".into());
        assert_eq!(tokens.kept.lock().unwrap().len(), 1);
        // Full of fresh ones: all go, and the new one is kept.
        for _ in 1..FormTokens::MAX {
            tokens.keep(Id::default(), "e".into());
        }
        assert_eq!(tokens.kept.lock().unwrap().len(), FormTokens::MAX);
        let newest = Id::default();
        tokens.keep(newest, "f".into());
        assert_eq!(tokens.kept.lock().unwrap().len(), 1);
        assert_eq!(tokens.get(newest), Some("f".into()));
        // Keeping one that is there replaces it without making room.
        tokens.keep(newest, "g".into());
        assert_eq!(tokens.get(newest), Some("g".into()));
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        headers
    }

    #[test]
    fn same_origin_and_originless_requests_pass() {
        let post = Method::POST;
        assert_eq!(
            cross_site_reason(&post, &headers(&[("host", "localhost:3000")]), None),
            None
        );
        assert_eq!(
            cross_site_reason(
                &post,
                &headers(&[
                    ("host", "localhost:3000"),
                    ("origin", "http://localhost:3000")
                ]),
                None
            ),
            None
        );
        assert_eq!(
            cross_site_reason(
                &post,
                &headers(&[
                    ("host", "focus.example.com"),
                    ("origin", "https://focus.example.com")
                ]),
                None
            ),
            None
        );
        assert_eq!(
            cross_site_reason(
                &post,
                &headers(&[("host", "[::1]:3000"), ("origin", "http://[::1]:3000")]),
                None
            ),
            None
        );
        assert_eq!(
            cross_site_reason(
                &post,
                &headers(&[("host", "x:1"), ("sec-fetch-site", "same-origin")]),
                None
            ),
            None
        );
        // Reads are never refused.
        assert_eq!(
            cross_site_reason(
                &Method::GET,
                &headers(&[("origin", "https://evil.example")]),
                None
            ),
            None
        );
    }

    #[test]
    fn cross_site_requests_are_refused() {
        let post = Method::POST;
        for pairs in [
            vec![
                ("host", "localhost:3000"),
                ("origin", "https://evil.example"),
            ],
            vec![
                ("host", "localhost:3000"),
                ("origin", "http://localhost:3001"),
            ],
            vec![("host", "localhost:3000"), ("origin", "null")],
            vec![("host", "localhost:3000"), ("sec-fetch-site", "cross-site")],
            vec![
                ("host", "focus.example.com"),
                ("origin", "https://focus.example.com.evil.example"),
            ],
        ] {
            assert!(
                cross_site_reason(&post, &headers(&pairs), None).is_some(),
                "{pairs:?}"
            );
            assert!(
                cross_site_reason(&Method::DELETE, &headers(&pairs), None).is_some(),
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn forwarded_headers_count_only_from_a_trusted_proxy() {
        let post = Method::POST;
        // Behind Traefik: Host is the container's, the browser's host is forwarded.
        let behind_proxy = headers(&[
            ("host", "focusflow:3000"),
            ("origin", "https://meetings.example.com"),
            ("x-forwarded-host", "meetings.example.com"),
        ]);
        let traefik = Forwarded {
            host: Some("meetings.example.com".into()),
            proto: Some("https".into()),
        };
        assert_eq!(
            cross_site_reason(&post, &behind_proxy, Some(&traefik)),
            None
        );
        // The same headers from any other client prove nothing.
        assert!(cross_site_reason(&post, &behind_proxy, None).is_some());
    }

    #[test]
    fn the_scheme_must_match_when_a_trusted_proxy_tells_it() {
        let post = Method::POST;
        let plain_page = headers(&[
            ("host", "meetings.example.com"),
            ("origin", "http://meetings.example.com:443"),
        ]);
        let over_tls = Forwarded {
            host: None,
            proto: Some("https".into()),
        };
        let reason = cross_site_reason(&post, &plain_page, Some(&over_tls)).unwrap();
        assert!(reason.contains("over https"), "{reason}");
        let tls_page = headers(&[
            ("host", "meetings.example.com"),
            ("origin", "https://meetings.example.com"),
        ]);
        assert_eq!(cross_site_reason(&post, &tls_page, Some(&over_tls)), None);
        let over_http = Forwarded {
            host: None,
            proto: Some("http".into()),
        };
        assert!(cross_site_reason(&post, &tls_page, Some(&over_http)).is_some());
    }
}
