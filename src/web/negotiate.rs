//! One error, two renderings: JSON for API clients, a short page for browsers.

use askama::Template;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendering {
    Json,
    Html,
}

impl Rendering {
    /// API routes always answer JSON; other routes answer HTML to browsers (which ask for
    /// `text/html`) and JSON to clients that ask for `application/json`.
    pub fn for_parts(path: &str, headers: &HeaderMap) -> Self {
        if path == "/api" || path.starts_with("/api/") {
            return Rendering::Json;
        }
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

    pub fn of(request: &Request) -> Self {
        Self::for_parts(request.uri().path(), request.headers())
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

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    code: u16,
    title: String,
    message: String,
    hint: Option<&'static str>,
}

fn title_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "That request did not work",
        401 => "Sign in to FocusFlow",
        403 => "Not allowed",
        404 => "Not found",
        409 => "Not right now",
        413 => "Too large",
        415 => "Wrong kind of request",
        421 => "Wrong address for this FocusFlow",
        429 => "Slow down a little",
        503 => "Unavailable",
        _ => "Something went wrong",
    }
}

/// What a person can do about an error, where there is something to say.
fn hint_for(error: &AppError) -> Option<&'static str> {
    match error {
        AppError::NotFound(message) if message == "job not found" => Some(
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

/// Renders `error` for the client.
pub fn error_response(rendering: Rendering, error: AppError) -> Response {
    match rendering {
        Rendering::Json => error.into_response(),
        Rendering::Html => {
            let status = error.status();
            if let AppError::Internal(cause) = &error {
                tracing::error!(error = ?cause, "request failed");
            }
            let job_missing =
                matches!(&error, AppError::NotFound(message) if message == "job not found");
            let page = ErrorPage {
                code: status.as_u16(),
                title: if job_missing {
                    "We could not find that meeting".to_string()
                } else {
                    title_for(status).to_string()
                },
                message: sentence(&error.public_message()),
                hint: hint_for(&error),
            };
            let body = page
                .render()
                .unwrap_or_else(|_| "FocusFlow: something went wrong".to_string());
            let mut response = (status, Html(body)).into_response();
            if let AppError::RateLimited { retry_after_secs } = error {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs.max(1)),
                );
            }
            response
        }
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
        assert_eq!(Rendering::for_parts("/", &headers), Rendering::Html);
        assert_eq!(Rendering::for_parts("/api/jobs", &headers), Rendering::Json);
        headers.insert(
            header::ACCEPT,
            "text/html,application/xhtml+xml,*/*;q=0.8".parse().unwrap(),
        );
        assert_eq!(Rendering::for_parts("/jobs/x", &headers), Rendering::Html);
        headers.insert(header::ACCEPT, "application/json".parse().unwrap());
        assert_eq!(Rendering::for_parts("/jobs/x", &headers), Rendering::Json);
    }
}
