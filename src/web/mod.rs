//! HTTP: the route table, its layers, and the extractors that turn requests into domain types.

mod api;
mod extract;
mod logs;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::error::AppError;
use crate::net::Clients;
use crate::pipeline::Queue;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub queue: Queue,
    pub clients: Clients,
    /// Cancelled when the server is stopping; long-lived responses (log streams) end with it.
    pub shutdown: CancellationToken,
}

/// JSON bodies are small: a URL and a date.
const JSON_BODY_LIMIT: usize = 64 * 1024;

/// The whole route table, and the order of its layers.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/health", get(api::health))
        .route("/jobs", get(api::list_jobs).post(api::create_job))
        .route("/jobs/{id}", get(api::get_job).delete(api::delete_job))
        .route("/jobs/{id}/retry", post(api::retry_job))
        .route(
            "/jobs/{id}/regenerate-summary",
            post(api::regenerate_summary),
        )
        .route("/jobs/{id}/resummarize", post(api::resummarize))
        .route("/jobs/{id}/transcript", get(api::transcript))
        .route("/jobs/{id}/logs/stream", get(logs::stream))
        .fallback(api_not_found)
        .method_not_allowed_fallback(method_not_allowed);

    Router::new()
        .route("/", get(home))
        .nest("/api", api)
        .fallback(page_not_found)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map(MatchedPath::as_str)
                    .unwrap_or("unmatched");
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    route,
                    path = %request.uri().path(),
                )
            }),
        )
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(60),
        ))
        .with_state(state)
}

async fn home() -> Html<&'static str> {
    Html(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>FocusFlow</title></head>\
         <body><h1>FocusFlow</h1><p>The server is running. The JSON API is at \
         <a href=\"/api/jobs\">/api/jobs</a>; health at <a href=\"/api/health\">/api/health</a>.</p></body></html>",
    )
}

async fn api_not_found() -> AppError {
    AppError::NotFound("no such API route".into())
}

async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed("this method is not allowed on this route".into())
}

async fn page_not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        Html(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found</title></head><body><h1>Not found</h1><p><a href=\"/\">FocusFlow</a></p></body></html>",
        ),
    )
}
