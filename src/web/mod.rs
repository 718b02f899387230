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
use tower::ServiceBuilder;
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
    /// The form tokens of sessions read in the last minute (see [`csrf::FormTokens`]).
    pub form_tokens: csrf::FormTokens,
    /// The summary templates' names, listed again when their folder changes.
    pub template_names: crate::pipeline::templates::Names,
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
            form_tokens: csrf::FormTokens::default(),
            template_names: Default::default(),
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

/// The health probe: answered to anyone, whatever host name it was sent to (a container's
/// health check), never limited.
fn probe_routes() -> RouteTable {
    RouteTable::new().get("/api/health", jobs::health)
}

/// The JSON API (and the metrics): every request is an action, errors are JSON, no sessions,
/// no form tokens.
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
        .get("/ask", ask::page)
        .post("/ask", ask::submit)
        .post("/ask/{id}/delete", ask::delete)
}

/// Another app's share (the web app manifest's share target): a page like the others, except
/// that the browser posts to it of its own accord, with no page and no form token. A link or a
/// recording, streamed to disk under MAX_DOWNLOAD_BYTES like the add form's.
fn share_routes() -> RouteTable {
    RouteTable::new()
        .get(pages::share::PATH, pages::share::page)
        .post(
            pages::share::PATH,
            pages::share::receive.layer(DefaultBodyLimit::disable()),
        )
}

/// The (method, path pattern) of every route, from the tables the router is built from.
pub fn routes() -> Vec<(Method, &'static str)> {
    [page_routes(), share_routes(), api_routes(), probe_routes()]
        .into_iter()
        .flat_map(|table| table.routes)
        .collect()
}

/// JSON bodies are small: a URL and a date.
pub(crate) const JSON_BODY_LIMIT: usize = 64 * 1024;

/// The groups of routes. Each has its own layers, so the route table (not a path check in each
/// layer) says who may reach a route, what it costs and how its errors are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    /// The health probe ([`probe_routes`]): only the request timeout.
    Probe,
    /// Embedded static files: anyone, never limited, but only under an allowed host name.
    Assets,
    /// [`api_routes`], and any other path under `/api`: errors stay JSON.
    Api,
    /// [`page_routes`]: sessions; reading draws from the views bucket.
    Pages,
    /// [`share_routes`]: as the pages, but the browser's own post passes the cross-site check.
    Share,
    /// No route at all: behind the same auth and limit as a page, so an unknown path tells a
    /// stranger no more than a known one.
    Unknown,
}

impl Group {
    /// The rate limit's buckets, for the groups that have one.
    fn buckets(self) -> Option<rate_limit::Buckets> {
        match self {
            Group::Probe | Group::Assets => None,
            Group::Api => Some(rate_limit::Buckets::Actions),
            Group::Pages | Group::Share | Group::Unknown => Some(rate_limit::Buckets::ByMethod),
        }
    }

    fn cross_site(self) -> csrf::Policy {
        match self {
            Group::Share => csrf::Policy::AllowBrowserItself,
            _ => csrf::Policy::Strict,
        }
    }

    /// The groups whose routes have sessions (and so their cookies).
    fn has_sessions(self) -> bool {
        matches!(self, Group::Pages | Group::Share)
    }

    fn renders_errors(self) -> bool {
        !matches!(self, Group::Api | Group::Probe)
    }

    /// A group's routes with its layers. A request passes, in one layer (see [`guard`]): the
    /// error rendering (not for the API, which answers JSON whatever the client accepts), the
    /// allowed host names (not for the probe), then for the groups that are limited: client
    /// identification, the rate limit, basic auth and the cross-site check; then the request
    /// timeout, and for the pages their cookies marked `Secure` over https. Then the body
    /// limit, and the pages' sessions.
    ///
    /// Few layers, stacked with a `ServiceBuilder`: each `Router::layer` boxes the routes anew,
    /// and each middleware clones the whole service inside it for every request (measured in
    /// docs/benchmarks.md, "Sixth pass": with a layer per check the list page made 342
    /// allocations a request, 99 with the checks in one layer).
    fn guard(self, routes: Router<AppState>, state: &AppState) -> Router<AppState> {
        let mut router = routes.method_not_allowed_fallback(method_not_allowed);
        if self.has_sessions() {
            router = router.layer(
                ServiceBuilder::new()
                    .layer(sessions::layer(state.store.clone()))
                    .layer(from_fn(pages::flash::keep_marker)),
            );
        }
        let checks = Guard {
            state: state.clone(),
            group: self,
        };
        router.layer(
            ServiceBuilder::new()
                .layer(from_fn_with_state(checks, guard))
                .option_layer(
                    self.buckets()
                        .map(|_| DefaultBodyLimit::max(JSON_BODY_LIMIT)),
                ),
        )
    }
}

/// A group's checks on every request, in one layer (see [`Group::guard`]).
#[derive(Clone)]
struct Guard {
    state: AppState,
    group: Group,
}

impl Guard {
    /// The checks a request must pass before its handler sees it, in order; the first that
    /// refuses answers. The client's address, the bucket drawn from and, from a trusted proxy,
    /// the forwarded headers go into the request's extensions on the way.
    fn admit(&self, request: &mut Request) -> Result<(), Box<Response>> {
        let (state, group) = (&self.state, self.group);
        if group != Group::Probe {
            hosts::require_allowed_host(state, request)?;
        }
        if let Some(buckets) = group.buckets() {
            client::identify(state, request);
            rate_limit::limit(state, buckets, request)?;
            auth::require(state, request)?;
            csrf::refuse_cross_site(group.cross_site(), request)?;
        }
        Ok(())
    }
}

/// [`Guard::admit`], then the handler within its time; errors shown as the request wants.
async fn guard(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let shown = guard
        .group
        .renders_errors()
        .then(|| error::ErrorsShown::wanted_by(request.headers()));
    let response = match guard.admit(&mut request) {
        Ok(()) => {
            let secure_cookies = guard.group.has_sessions() && sessions::over_https(&request);
            let mut response = within_time(request, next).await;
            if secure_cookies {
                sessions::secure_cookies(&mut response);
            }
            response
        }
        Err(refused) => *refused,
    };
    match shown {
        Some(shown) => shown.render(response),
        None => response,
    }
}

/// The router: each group of routes with its own layers (see [`Group::guard`]), then, around
/// every route, tracing, compression, the request count and the security headers.
pub fn router(state: AppState) -> Router {
    let assets = Router::new()
        .route("/static/{*path}", axum::routing::get(assets::serve))
        // Browsers ask for it of their own accord; the pages name favicon.svg instead.
        .route("/favicon.ico", axum::routing::get(not_found));
    // Every other path under /api is the API's: a JSON 404 that costs an action.
    let api = api_routes()
        .router
        .route("/api", axum::routing::any(api_not_found))
        .route("/api/", axum::routing::any(api_not_found))
        .route("/api/{*rest}", axum::routing::any(api_not_found));
    let unknown = Router::new().fallback(not_found);
    Router::new()
        .merge(Group::Probe.guard(probe_routes().router, &state))
        .merge(Group::Assets.guard(assets, &state))
        .merge(Group::Api.guard(api, &state))
        .merge(Group::Pages.guard(page_routes().router, &state))
        .merge(Group::Share.guard(share_routes().router, &state))
        .merge(Group::Unknown.guard(unknown, &state))
        .layer(
            ServiceBuilder::new()
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
                .layer(compression::layer())
                .layer(from_fn_with_state(state.clone(), count_and_secure)),
        )
        .with_state(state)
}

/// Time for a request to be answered: a minute, except an upload (which may be a recording of a
/// gigabyte over a slow link, streamed to disk while it arrives).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

async fn within_time(request: Request, next: Next) -> Response {
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

/// Counts every request by its route pattern (not its path, which would grow without bound),
/// and adds the security headers to its answer.
async fn count_and_secure(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Cheap clones (a shared string, a method's constant): no allocation per request.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let mut response = next.run(request).await;
    headers::secure(&mut response);
    state.metrics.http_request(
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        method.as_str(),
        response.status().as_u16(),
    );
    response
}

async fn not_found() -> Response {
    AppError::NotFound("there is no page at this address".into()).into_response()
}

async fn api_not_found() -> Response {
    AppError::NotFound("no such API route".into()).into_response()
}

async fn method_not_allowed() -> Response {
    AppError::MethodNotAllowed("this method is not allowed on this route".into()).into_response()
}
