//! A check (see `web::Guard`): requests for a host name this server does not answer are refused (DNS
//! rebinding; see [`crate::config::hosts`]). The health probe's group has no such check, so a
//! container's health check works however it is addressed (see `web::Group`).

use std::sync::atomic::{AtomicI64, Ordering};

use axum::extract::Request;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::web::AppState;

pub fn require_allowed_host(state: &AppState, request: &Request) -> Result<(), Box<Response>> {
    // HTTP/1.1 requires Host; an absolute-form request carries it in the target instead. A
    // request with neither did not come from a browser, which always sends one.
    // Borrowed: the request goes on unchanged when the name is allowed (most of the time).
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(|authority| authority.as_str())
        });
    let Some(host) = host else {
        return Ok(());
    };
    if state.config.allowed_hosts.allows(host) {
        return Ok(());
    }
    let host = host.to_string();
    warn_of_refusal(&host);
    let shown: String = host.chars().take(100).collect();
    Err(Box::new(
        AppError::MisdirectedRequest(format!(
            "this FocusFlow does not answer to the host name {shown:?}. If that is its address, \
             add the name to ALLOWED_HOSTS (comma-separated host names, e.g. \
             ALLOWED_HOSTS=meetings.example.com) and restart it"
        ))
        .into_response(),
    ))
}

/// One line a minute at most: a page trying names in a loop must not fill the log.
fn warn_of_refusal(host: &str) {
    static LAST_WARNED: AtomicI64 = AtomicI64::new(i64::MIN);
    let now = crate::jobs::now_millis();
    let last = LAST_WARNED.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= 60_000
        && LAST_WARNED
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        let shown: String = host.chars().take(100).collect();
        tracing::warn!(
            host = %shown,
            "refused a request for a host name not in ALLOWED_HOSTS (possible DNS rebinding); \
             if this is FocusFlow's own address, add it to ALLOWED_HOSTS (said once a minute at most)"
        );
    }
}
