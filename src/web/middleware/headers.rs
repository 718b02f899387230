//! Security headers: every response says `nosniff` and sends a referrer only to this site; HTML
//! pages also get a Content-Security-Policy that allows scripts from this site only (no inline
//! script or event handler) and forbids framing.
//!
//! `same-origin`, not `no-referrer`: under `no-referrer` Chromium sends `Origin: null` with every
//! form post, even to the page's own site, and the cross-site check must refuse a null origin (a
//! sandboxed frame or a `data:` page sends one). Under `same-origin` a form posted to this site
//! carries its real origin, while links to other sites still leak nothing (and a post from
//! another site still arrives with a foreign or null origin, and is refused).

use axum::http::{HeaderValue, header};
use axum::response::Response;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; media-src 'self'; connect-src 'self'; \
    font-src 'self'; manifest-src 'self'; worker-src 'self'; form-action 'self'; \
    base-uri 'none'; frame-ancestors 'none'";

/// Adds the security headers to `response` (every answer passes here: see `web::router`).
pub fn secure(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if is_html {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
}
