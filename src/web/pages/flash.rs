//! Flash messages: a sentence saved in the session by a form's POST and shown once by the page
//! the browser is redirected to (POST, redirect, GET). The session is in the database (see
//! `web::middleware::sessions`), so the page may come from another replica than the POST.
//!
//! A page looks in the session only when the browser says a message waits: the
//! `focusflow.flash` cookie, set with the message and removed once it has been shown
//! ([`keep_marker`]). It travels with the browser to whichever replica answers, so a page
//! without messages (nearly every page, and every poll) reads no session row, and a page after
//! a form never misses its message.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;
use tower_sessions::cookie::time::Duration;
use tower_sessions::cookie::{Cookie, SameSite};

use crate::web::middleware::sessions::{FLASH_MARKER as MARKER, INACTIVITY};

const SESSION_KEY: &str = "flash";
/// A message's longest text (longer ones are cut, with an ellipsis).
const MAX_TEXT: usize = 300;
/// A session never collects more than this many unread messages.
const MAX_WAITING: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Success,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    pub kind: Kind,
    pub text: String,
}

impl Flash {
    pub fn success(text: impl Into<String>) -> Self {
        Self {
            kind: Kind::Success,
            text: text.into(),
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self {
            kind: Kind::Error,
            text: text.into(),
        }
    }

    /// `success` or `error`, for the CSS class.
    pub fn key(&self) -> &'static str {
        match self.kind {
            Kind::Success => "success",
            Kind::Error => "error",
        }
    }

    pub fn icon(&self) -> &'static str {
        match self.kind {
            Kind::Success => "check",
            Kind::Error => "alert",
        }
    }
}

/// Saves a message for the next page (in the session, so the page may come from another
/// replica). A session that cannot be written loses the message, which is not worth failing
/// the action for.
pub async fn push(session: &Session, flash: Flash) {
    let mut waiting: Vec<Flash> = session
        .get(SESSION_KEY)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    waiting.push(Flash {
        kind: flash.kind,
        text: shortened(flash.text),
    });
    let excess = waiting.len().saturating_sub(MAX_WAITING);
    waiting.drain(..excess);
    if let Err(error) = session.insert(SESSION_KEY, waiting).await {
        tracing::warn!(%error, "could not save a flash message");
    }
}

/// The messages waiting for this session, removed as they are read. Removed only when there
/// are some: a removal marks the session changed, and a page view without messages must not
/// write the session. Read only when the request carries the marker (`headers`).
pub async fn take(session: &Session, headers: &HeaderMap) -> Vec<Flash> {
    if !marked(headers) {
        return Vec::new();
    }
    let waiting: Vec<Flash> = session
        .get(SESSION_KEY)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    if !waiting.is_empty()
        && let Err(error) = session.remove_value(SESSION_KEY).await
    {
        tracing::warn!(%error, "could not remove the flash messages just shown");
    }
    waiting
}

/// Whether the request carries the marker cookie (a message waits).
pub fn marked(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .any(|cookie| cookie.is_ok_and(|cookie| cookie.name() == MARKER))
}

/// Middleware inside the session layer: keeps the marker in step with the session. A request
/// that left a message sets it; a page that showed the messages (or found none where the
/// marker said some were) removes it. A request without the marker that changed nothing
/// costs nothing here.
pub async fn keep_marker(request: Request, next: Next) -> Response {
    let was_marked = marked(request.headers());
    let session = request.extensions().get::<Session>().cloned();
    let mut response = next.run(request).await;
    let Some(session) = session.filter(|session| was_marked || session.is_modified()) else {
        return response;
    };
    // Read by now unless a marked request never looked (a page that shows no messages): then
    // the marker stays, and this reads the session once.
    let Ok(waiting) = session.get::<Vec<Flash>>(SESSION_KEY).await else {
        return response;
    };
    let waiting = waiting.is_some_and(|waiting| !waiting.is_empty());
    let cookie = match (was_marked, waiting) {
        (false, true) => Cookie::build((MARKER, "1")).max_age(INACTIVITY),
        (true, false) => Cookie::build((MARKER, "")).max_age(Duration::ZERO),
        _ => return response,
    };
    let cookie = cookie
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .build();
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `text` cut to at most [`MAX_TEXT`] bytes, on a character boundary: a session row stays small
/// whatever an error message says.
fn shortened(mut text: String) -> String {
    if text.len() > MAX_TEXT {
        let mut end = MAX_TEXT - '…'.len_utf8();
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_found_among_other_cookies() {
        let with = |line: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::COOKIE, HeaderValue::from_str(line).unwrap());
            marked(&headers)
        };
        assert!(with("focusflow.flash=1"));
        assert!(with("focusflow.sid=abc; focusflow.flash=1"));
        assert!(!with("focusflow.sid=abc"));
        assert!(!with("focusflow.flash2=1; x=focusflow.flash"));
        assert!(!marked(&HeaderMap::new()));
    }

    #[test]
    fn long_texts_are_cut_on_a_character_boundary() {
        let cut = shortened("é".repeat(400));
        assert!(cut.len() <= MAX_TEXT, "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert_eq!(shortened("Saved.".into()), "Saved.");
    }
}
