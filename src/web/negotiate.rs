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
    title: String,
    message: String,
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
        429 => "Slow down a little",
        503 => "Unavailable",
        _ => "Something went wrong",
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
            let page = ErrorPage {
                title: title_for(status).to_string(),
                message: error.public_message(),
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
