//! Flash messages: a sentence saved in the session by a form's POST and shown once by the page
//! the browser is redirected to (POST, redirect, GET). They travel in a signed cookie (see
//! `web::sessions`), so the page may come from another replica than the POST.

use crate::web::csrf::Session;
use serde::{Deserialize, Serialize};

/// A message's longest text in the cookie (longer ones are cut, with an ellipsis).
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

fn waiting(session: &Session) -> Vec<Flash> {
    session
        .flash_payload()
        .and_then(|payload| serde_json::from_str(&payload).ok())
        .unwrap_or_default()
}

/// `text` cut to at most [`MAX_TEXT`] bytes, on a character boundary.
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

/// Saves a message for the next page. The oldest waiting ones make room when the cookie would
/// be too large.
pub async fn push(session: &Session, flash: Flash) {
    let mut waiting = waiting(session);
    waiting.push(Flash {
        kind: flash.kind,
        text: shortened(flash.text),
    });
    let excess = waiting.len().saturating_sub(MAX_WAITING);
    waiting.drain(..excess);
    loop {
        let payload = serde_json::to_string(&waiting).unwrap_or_default();
        if payload.len() <= crate::web::sessions::MAX_FLASH_PAYLOAD || waiting.len() <= 1 {
            session.set_flash_payload(Some(payload));
            return;
        }
        waiting.remove(0);
    }
}

/// The messages waiting for this session, removed as they are read.
pub async fn take(session: &Session) -> Vec<Flash> {
    let waiting = waiting(session);
    session.set_flash_payload(None);
    waiting
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
