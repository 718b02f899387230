//! Flash messages: a sentence saved in the session by a form's POST and shown once by the page
//! the browser is redirected to (POST, redirect, GET).

use serde::{Deserialize, Serialize};
use tower_sessions::Session;

const SESSION_KEY: &str = "flash";
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

/// Saves a message for the next page. A session that cannot be written loses the message,
/// which is not worth failing the action for.
pub async fn push(session: &Session, flash: Flash) {
    let mut waiting: Vec<Flash> = session
        .get(SESSION_KEY)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    waiting.push(flash);
    let excess = waiting.len().saturating_sub(MAX_WAITING);
    waiting.drain(..excess);
    if let Err(error) = session.insert(SESSION_KEY, waiting).await {
        tracing::warn!(%error, "could not save a flash message");
    }
}

/// The messages waiting for this session, removed as they are read.
pub async fn take(session: &Session) -> Vec<Flash> {
    session
        .remove::<Vec<Flash>>(SESSION_KEY)
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}
