//! The one place where an [`AppError`] becomes a response: JSON for API clients, a whole page
//! for browsers, a fragment for htmx. Logging, `Retry-After`, titles and hints happen here.
//!
//! Handlers and middleware only return the error (`Err(error)` or `error.into_response()`),
//! which answers JSON and records what it was in the response's extensions; the
//! [`ErrorsShown`], which knows how the request wants its answers, turns that into HTML
//! for a browser. A handler never chooses a rendering for its errors.

use askama::Template;
use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::web::api::view::ErrorBody;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendering {
    Json,
    Html,
}

impl Rendering {
    /// Outside the API (which always answers JSON, and has no [`ErrorsShown`]): HTML
    /// to browsers (which ask for `text/html`) and JSON to clients that ask for
    /// `application/json`.
    pub fn negotiated(headers: &HeaderMap) -> Self {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        if wants_json(accept) {
            Rendering::Json
        } else if accept.contains("text/html") || accept.is_empty() || accept.contains("*/*") {
            Rendering::Html
        } else {
            Rendering::Json
        }
    }
}

/// `application/json` preferred over `text/html` in an Accept header.
pub fn wants_json(accept: &str) -> bool {
    let position = |needle: &str| accept.find(needle);
    match (position("application/json"), position("text/html")) {
        (Some(_), None) => true,
        (Some(json), Some(html)) => json < html,
        _ => false,
    }
}

/// A request sent by htmx (it says so in a header), which gets page parts instead of pages.
pub fn is_htmx(headers: &HeaderMap) -> bool {
    headers
        .get("hx-request")
        .is_some_and(|value| value.as_bytes() == b"true")
}

/// The status of each kind of error.
pub fn status_of(error: &AppError) -> StatusCode {
    match error {
        AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
        AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) => StatusCode::FORBIDDEN,
        AppError::JobNotFound | AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::Conflict(_) => StatusCode::CONFLICT,
        AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        AppError::MisdirectedRequest(_) => StatusCode::MISDIRECTED_REQUEST,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A page's heading for each kind of error.
fn title_of(error: &AppError) -> &'static str {
    match error {
        AppError::BadRequest(_) => "That request did not work",
        AppError::Unauthorized(_) => "Sign in to FocusFlow",
        AppError::Forbidden(_) => "Not allowed",
        AppError::JobNotFound => "We could not find that meeting",
        AppError::NotFound(_) => "Not found",
        AppError::Conflict(_) => "Not right now",
        AppError::PayloadTooLarge(_) => "Too large",
        AppError::UnsupportedMediaType(_) => "Wrong kind of request",
        AppError::MisdirectedRequest(_) => "Wrong address for this FocusFlow",
        AppError::RateLimited { .. } => "Slow down a little",
        AppError::Unavailable(_) => "Unavailable",
        AppError::MethodNotAllowed(_) | AppError::Internal(_) => "Something went wrong",
    }
}

/// What a person can do about an error, where there is something to say.
fn hint_of(error: &AppError) -> Option<&'static str> {
    match error {
        AppError::JobNotFound => Some(
            "It may have been deleted, or the link is incomplete. Your other meetings are on \
             the home page.",
        ),
        AppError::NotFound(_) => Some("Check the address, or start again from the home page."),
        AppError::Forbidden(_) => Some("Reload the page, then try once more."),
        AppError::RateLimited { .. } => {
            Some("FocusFlow limits how fast one address may send requests. Wait a moment.")
        }
        AppError::Internal(_) => {
            Some("Try again in a moment; if it keeps happening, tell whoever runs this FocusFlow.")
        }
        _ => None,
    }
}

/// What an error response was, kept in its extensions until [`ErrorsShown`] sees how the
/// request wants it shown.
#[derive(Debug, Clone)]
struct Shown {
    code: u16,
    title: &'static str,
    message: String,
    hint: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    code: u16,
    title: &'a str,
    message: &'a str,
    hint: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "partials/error_card.html")]
struct ErrorFragment<'a> {
    code: u16,
    title: &'a str,
    message: &'a str,
    hint: Option<&'a str>,
}

impl IntoResponse for AppError {
    /// The JSON answer (`{"error": "…"}`), which [`ErrorsShown`] replaces with HTML for a
    /// browser. An internal failure's cause is logged here, once.
    fn into_response(self) -> Response {
        if let AppError::Internal(cause) = &self {
            tracing::error!(error = ?cause, "request failed");
        }
        let status = status_of(&self);
        let message = self.public_message();
        let shown = Shown {
            code: status.as_u16(),
            title: title_of(&self),
            message: sentence(&message),
            hint: hint_of(&self),
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: message,
                details: None,
            }),
        )
            .into_response();
        if let AppError::RateLimited { retry_after_secs } = self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(1)),
            );
        }
        response.extensions_mut().insert(shown);
        response
    }
}

/// How the request wants its errors shown: an error answered to a browser becomes the error
/// page, to htmx the error card alone; JSON stays JSON. Every other response passes untouched
/// (one look in its extensions). Taken before the request goes on, applied to its answer (see
/// `Group::guard`).
#[derive(Debug, Clone, Copy)]
pub struct ErrorsShown {
    rendering: Rendering,
    htmx: bool,
}

impl ErrorsShown {
    pub fn wanted_by(headers: &HeaderMap) -> Self {
        Self {
            rendering: Rendering::negotiated(headers),
            htmx: is_htmx(headers),
        }
    }

    /// `response`, its error (if it is one) rendered as wanted.
    pub fn render(self, mut response: Response) -> Response {
        if self.rendering == Rendering::Json {
            return response;
        }
        let Some(shown) = response.extensions_mut().remove::<Shown>() else {
            return response;
        };
        let rendered = if self.htmx {
            ErrorFragment {
                code: shown.code,
                title: shown.title,
                message: &shown.message,
                hint: shown.hint,
            }
            .render()
        } else {
            ErrorPage {
                code: shown.code,
                title: shown.title,
                message: &shown.message,
                hint: shown.hint,
            }
            .render()
        };
        let body = rendered.unwrap_or_else(|_| "FocusFlow: something went wrong".to_string());
        let headers = response.headers_mut();
        headers.remove(header::CONTENT_LENGTH);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        *response.body_mut() = axum::body::Body::from(body);
        response
    }
}

/// A message as a sentence: capital first letter, full stop at the end.
pub fn sentence(message: &str) -> String {
    let mut text = message.trim().to_string();
    if let Some(first) = text.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    if !text.ends_with(['.', '!', '?']) {
        text.push('.');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_choose_the_rendering() {
        let mut headers = HeaderMap::new();
        assert_eq!(Rendering::negotiated(&headers), Rendering::Html);
        headers.insert(
            header::ACCEPT,
            "text/html,application/xhtml+xml,*/*;q=0.8".parse().unwrap(),
        );
        assert_eq!(Rendering::negotiated(&headers), Rendering::Html);
        headers.insert(header::ACCEPT, "application/json".parse().unwrap());
        assert_eq!(Rendering::negotiated(&headers), Rendering::Json);
        headers.insert(header::ACCEPT, "image/avif".parse().unwrap());
        assert_eq!(Rendering::negotiated(&headers), Rendering::Json);
    }
}
