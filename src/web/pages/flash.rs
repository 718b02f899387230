//! Flash messages: a sentence saved in the session by a form's POST and shown once by the page
//! the browser is redirected to (POST, redirect, GET). The session is in the database (see
//! `web::middleware::sessions`), so the page may come from another replica than the POST.

use serde::{Deserialize, Serialize};
use tower_sessions::Session;

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
/// write the session.
pub async fn take(session: &Session) -> Vec<Flash> {
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
    fn long_texts_are_cut_on_a_character_boundary() {
        let cut = shortened("é".repeat(400));
        assert!(cut.len() <= MAX_TEXT, "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert_eq!(shortened("Saved.".into()), "Saved.");
    }
}
