//! HTTP: the route table, its layers, and the extractors that turn requests into domain types.

pub mod api;
pub mod assets;
mod cache;
pub mod error;
mod listing;
pub mod middleware;
mod pages;
mod ranged;
pub mod serve;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::{Method, StatusCode};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

use crate::metrics::Metrics;
use api::{archive, ask, intake, jobs, logs, openapi};
use middleware::rate_limit::{self, RateLimits};
use middleware::{auth, client, compression, csrf, headers, hosts, sessions};

use crate::config::Config;
use crate::error::AppError;
use crate::net::Clients;
use crate::pipeline::Queue;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

/// Cloning the state is one reference count: every layer and the handler take their own copy
/// per request (measured: about 20 counts and a path copied per clone before, 18% of a health
/// probe's CPU in the allocator).
impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

/// What the handlers reach through [`AppState`].
pub struct AppStateInner {
    pub config: Arc<Config>,
    pub store: Store,
    pub queue: Queue,
    /// What can be done to a job, for the API and the pages alike.
    pub jobs: crate::service::jobs::Jobs,
    pub clients: Clients,
    /// Cancelled when the server is stopping; long-lived responses (log streams) end with it.
    pub shutdown: CancellationToken,
    pub limits: RateLimits,
    pub metrics: Metrics,
    /// `GET /api/jobs` pages as served, until a write changes what they show.
    pub answers: Arc<cache::AnswerCache<bytes::Bytes>>,
    /// The list page's lists (cards rendered), until a write changes what they show.
    pub lists: Arc<cache::AnswerCache<pages::view::JobList>>,
    /// `GET /api/jobs` without parameters: each job's JSON, until that job is written.
    pub all_jobs: Arc<listing::AllJobs>,
    /// `/api/health`'s database check, reused for a second.
    pub database_check: Arc<jobs::DatabaseCheck>,
    /// Ask's vectors of the whole archive, kept in memory (see [`crate::ask::VectorCache`]).
    pub ask_vectors: Arc<crate::ask::VectorCache>,
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        store: Store,
        queue: Queue,
        clients: Clients,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> Self {
        let limits = RateLimits::with_capacity(
            config.rate_limit_window,
            config.rate_limit_max_requests,
            config.rate_limit_max_tracked,
        );
        let answers = Arc::new(cache::AnswerCache::new(&store));
        let lists = Arc::new(cache::AnswerCache::new(&store));
        let all_jobs = Arc::new(listing::AllJobs::new(&store));
        Self(Arc::new(AppStateInner {
            jobs: crate::service::jobs::Jobs::new(store.clone(), queue.clone()),
            config,
            store,
            queue,
            clients,
            shutdown,
            limits,
            metrics,
            answers,
            lists,
            all_jobs,
            database_check: Arc::default(),
            ask_vectors: Arc::default(),
        }))
    }
}

/// The route table as it is being built: every route is recorded with its method, so tests can
/// walk the real table (an auth matrix that a new route cannot skip).
struct RouteTable {
    router: Router<AppState>,
    routes: Vec<(Method, &'static str)>,
}

impl RouteTable {
    fn new() -> Self {
        Self {
            router: Router::new(),
            routes: Vec::new(),
        }
    }

    fn add<H, T>(mut self, method: Method, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a routable method");
        self.router = self.router.route(path, on(filter, handler));
        self.routes.push((method, path));
        self
    }

    fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::GET, path, handler)
    }

    fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::POST, path, handler)
    }

    fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::DELETE, path, handler)
    }

    fn patch<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::PATCH, path, handler)
    }

    fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::PUT, path, handler)
    }
}

/// The routes anyone may reach, without a session: the health probe (static assets are added
/// by [`router`], outside the recorded table).
fn public_routes() -> RouteTable {
    RouteTable::new().get("/api/health", jobs::health)
}

/// The JSON API (and the metrics): no sessions, no form tokens.
fn api_routes() -> RouteTable {
    RouteTable::new()
        .post("/api/ask", ask::ask)
        .get("/api/jobs", archive::list_jobs)
        // Uploads stream to disk under MAX_DOWNLOAD_BYTES, counted by the handler, which also
        // bounds the JSON form of this route.
        .post(
            "/api/jobs",
            jobs::create_job.layer(DefaultBodyLimit::disable()),
        )
        .get("/api/jobs/{id}", jobs::get_job)
        .delete("/api/jobs/{id}", jobs::delete_job)
        .patch("/api/jobs/{id}", archive::patch_job)
        .get("/api/jobs/{id}/export", archive::export)
        .post("/api/jobs/{id}/retry", jobs::retry_job)
        .post(
            "/api/jobs/{id}/regenerate-summary",
            jobs::regenerate_summary,
        )
        .post("/api/jobs/{id}/resummarize", jobs::resummarize)
        .get("/api/jobs/{id}/transcript", jobs::transcript)
        .get("/api/jobs/{id}/logs/stream", logs::stream)
        .put("/api/jobs/{id}/speakers", intake::set_speakers)
        .get("/api/templates", intake::list_templates)
        .get("/api/openapi.json", openapi::openapi_json)
        .get("/api/docs", openapi::docs_page)
        .get("/metrics", metrics)
}

/// The browser's pages and forms: they keep a session (flash messages, form tokens).
fn page_routes() -> RouteTable {
    RouteTable::new()
        .get("/", pages::home)
        // The add form can carry a recording: streamed to disk under MAX_DOWNLOAD_BYTES by
        // the handler, which keeps the usual limit for a URL-encoded form.
        .post("/jobs", pages::create.layer(DefaultBodyLimit::disable()))
        .get("/jobs/{id}", pages::job_page)
        .get("/jobs/{id}/edit", pages::edit_form)
        .post("/jobs/{id}/edit", pages::save_edit)
        .get("/jobs/{id}/heading", pages::heading)
        .post("/jobs/{id}/speakers", pages::speakers)
        .get("/jobs/{id}/panel", pages::panel_partial)
        .get("/jobs/{id}/audio", pages::audio)
        .post("/jobs/{id}/retry", pages::retry)
        .post("/jobs/{id}/start-over", pages::start_over)
        .post("/jobs/{id}/resummarize", pages::resummarize)
        .post("/jobs/{id}/delete", pages::delete)
        .get("/partials/jobs", pages::list_partial)
        // Another app's share (the web app manifest's share target): a link or a recording,
        // streamed to disk under MAX_DOWNLOAD_BYTES like the add form's.
        .get(pages::share::PATH, pages::share::page)
        .post(
            pages::share::PATH,
            pages::share::receive.layer(DefaultBodyLimit::disable()),
        )
        .get("/ask", ask::page)
        .post("/ask", ask::submit)
        .post("/ask/{id}/delete", ask::delete)
}

/// The (method, path pattern) of every route, from the tables the router is built from.
pub fn routes() -> Vec<(Method, &'static str)> {
    [page_routes(), api_routes(), public_routes()]
        .into_iter()
        .flat_map(|table| table.routes)
        .collect()
}

/// JSON bodies are small: a URL and a date.
pub(crate) const JSON_BODY_LIMIT: usize = 64 * 1024;

/// The router with its layers. Requests pass them top to bottom: tracing, security headers,
/// the error rendering, the allowed host names, the request timeout, client identification,
/// the rate limit, basic auth, the cross-site check, the body limit, then the route's group
/// (the pages' group keeps sessions; the API and the public routes have none), then the route.
pub fn router(state: AppState) -> Router {
    // Public and never limited (see auth and rate_limit), so outside the recorded table.
    let public = public_routes()
        .router
        .route("/static/{*path}", axum::routing::get(assets::serve));
    let pages = page_routes()
        .router
        .layer(sessions::layer(state.store.clone()))
        .layer(from_fn(sessions::secure_over_https));
    Router::new()
        .merge(public)
        .merge(api_routes().router)
        .merge(pages)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(from_fn_with_state(state.clone(), csrf::refuse_cross_site))
        .layer(from_fn_with_state(state.clone(), auth::require))
        .layer(from_fn_with_state(state.clone(), rate_limit::limit))
        .layer(from_fn_with_state(state.clone(), client::identify))
        .layer(from_fn(request_timeout))
        .layer(from_fn_with_state(
            state.clone(),
            hosts::require_allowed_host,
        ))
        // Outside every layer that can refuse a request, so their refusals are shown like a
        // handler's errors (see `error`).
        .layer(from_fn(error::render_errors))
        .layer(from_fn(headers::secure))
        .layer(from_fn_with_state(state.clone(), count_request))
        .layer(compression::layer())
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
        .with_state(state)
}

/// Time for a request to be answered: a minute, except an upload (which may be a recording of a
/// gigabyte over a slow link, streamed to disk while it arrives).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

async fn request_timeout(request: Request, next: Next) -> Response {
    let budget = if request.method() == Method::POST && intake::is_multipart(&request) {
        UPLOAD_TIMEOUT
    } else {
        REQUEST_TIMEOUT
    };
    match tokio::time::timeout(budget, next.run(request)).await {
        Ok(response) => response,
        Err(_) => StatusCode::REQUEST_TIMEOUT.into_response(),
    }
}

/// Prometheus text format; behind the same auth as everything else.
async fn metrics(State(state): State<AppState>) -> Result<Response, AppError> {
    let jobs = state.store.count_by_status().await?;
    let webhooks_pending = state.store.pending_deliveries().await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&jobs, webhooks_pending),
    )
        .into_response())
}

/// Counts every request by its route pattern (not its path, which would grow without bound).
async fn count_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Cheap clones (a shared string, a method's constant): no allocation per request.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let response = next.run(request).await;
    state.metrics.http_request(
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        method.as_str(),
        response.status().as_u16(),
    );
    response
}

async fn not_found(request: Request) -> Response {
    let path = request.uri().path();
    let message = if path == "/api" || path.starts_with("/api/") {
        "no such API route"
    } else {
        "there is no page at this address"
    };
    AppError::NotFound(message.into()).into_response()
}

async fn method_not_allowed() -> Response {
    AppError::MethodNotAllowed("this method is not allowed on this route".into()).into_response()
}
