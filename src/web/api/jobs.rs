//! The JSON API of contract §4, in the original app's shapes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::{AppError, AppResult};
use crate::jobs::{iso_millis, now_millis};
use crate::pipeline::transcribe::apply_speaker_names;
use crate::service::jobs::{Options, Source, new_id};
use crate::web::AppState;
use crate::web::api::extract::{ApiJson, ApiQuery, JobPath, flag};
use crate::web::api::intake;
use crate::web::api::link;
use crate::web::api::requests::{self, CreateJob};
use crate::web::api::view::{Health, HealthBackends, HealthEnv, JobView, Success, TranscriptBody};

/// Whether the server and its database answer, and which providers are configured.
#[utoipa::path(
    get,
    path = "/api/health",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "The server and its database answer", body = Health),
        (status = 503, description = "The database does not answer", body = Health),
    )
)]
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let healthy = state.database_check.healthy(&state.store).await;
    let body = Health {
        status: if healthy { "ok" } else { "error" }.into(),
        timestamp: iso_millis(now_millis()),
        env: HealthEnv {
            assemblyai: state.config.transcriber() == crate::config::TranscriberChoice::AssemblyAi,
            transcriber: state.config.transcriber().as_str().into(),
            openai: state.config.summaries_enabled(),
            data_dir: shown_data_dir(&state.config.data_dir),
        },
        backends: HealthBackends {
            database: state.store.database().into(),
            storage: state.store.artifacts().kind().into(),
            events: state.store.events_name().into(),
        },
    };
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// The health probe's database check, reused for a second: load balancers probing every
/// replica often cost one query a second, and a database that stops answering shows within one.
///
/// A fresh result is read under a plain lock held for a few instructions; only a stale one
/// takes the async turn that lets one probe ask the database while the others wait for it.
#[derive(Default)]
pub struct DatabaseCheck {
    last: std::sync::Mutex<Option<(std::time::Instant, bool)>>,
    asking: tokio::sync::Mutex<()>,
}

impl DatabaseCheck {
    const FRESH: std::time::Duration = std::time::Duration::from_secs(1);
    /// A probe answers in time even when the database hangs.
    const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

    fn fresh(&self) -> Option<bool> {
        let last = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.filter(|(at, _)| at.elapsed() < Self::FRESH)
            .map(|(_, healthy)| healthy)
    }

    pub async fn healthy(&self, store: &crate::store::Store) -> bool {
        if let Some(healthy) = self.fresh() {
            return healthy;
        }
        let _turn = self.asking.lock().await;
        // Whoever held the turn before has asked meanwhile.
        if let Some(healthy) = self.fresh() {
            return healthy;
        }
        let healthy = match tokio::time::timeout(Self::TIMEOUT, store.ping()).await {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::warn!(%error, "the health check found the database unreachable");
                false
            }
            Err(_) => {
                tracing::warn!("the health check's database query took over 3 s");
                false
            }
        };
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((std::time::Instant::now(), healthy));
        healthy
    }
}

/// `DATA_DIR` as a client may see it: as configured when relative (`./data`), else only its
/// last folder's name, so the health probe that anyone may call shows no server path.
fn shown_data_dir(data_dir: &std::path::Path) -> String {
    if data_dir.is_relative() {
        return data_dir.display().to_string();
    }
    data_dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into())
}

/// The route lifts the default body limit so that uploads can stream; JSON keeps the limit of
/// every other JSON route (a longer transcript comes as a multipart `file` or `transcript`).
const CREATE_JSON_LIMIT: usize = crate::web::JSON_BODY_LIMIT;

/// Creates a job from a link, a pasted transcript (JSON), or an uploaded audio, video or
/// transcript file (multipart). Without a `meetingDate` a Plaud link's date is used.
#[utoipa::path(
    post,
    path = "/api/jobs",
    tag = "jobs",
    request_body(content(
        (crate::web::api::requests::CreateJob = "application/json"),
        (crate::web::api::requests::CreateJobUpload = "multipart/form-data"),
    )),
    responses(
        (status = 201, description = "The job, queued", body = JobView),
        (status = 400, description = "A missing or refused URL, a bad date, an unknown template", body = crate::web::api::view::ErrorBody),
        (status = 413, description = "The body or the upload is too large", body = crate::web::api::view::ErrorBody),
        (status = 415, description = "Neither JSON nor multipart, or a file that is not audio, video or a transcript", body = crate::web::api::view::ErrorBody),
    )
)]
pub async fn create_job(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> AppResult<axum::response::Response> {
    if crate::web::api::intake::is_multipart(&request) {
        return crate::web::api::intake::create_from_multipart(&state, request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, CREATE_JSON_LIMIT)
        .await
        .map_err(|_| AppError::PayloadTooLarge("the body is too large".into()))?;
    let request = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
    let ApiJson(body) =
        <ApiJson<CreateJob> as axum::extract::FromRequest<()>>::from_request(request, &()).await?;
    let (source, options) = match body {
        CreateJob::Transcript(body) => (
            intake::pasted(body.transcript),
            Options {
                meeting_date: body.meeting_date,
                template: template(&state, body.template)?,
            },
        ),
        CreateJob::Link(body) => {
            let url = link::validate_url(&state, &body.url)
                .map_err(|problem| AppError::bad_request(problem.api_message()))?;
            let options = Options {
                meeting_date: body.meeting_date,
                template: template(&state, body.template)?,
            };
            (Source::Link(url), options)
        }
    };
    let (job, logs) = state.jobs.create(new_id(), source, options).await?;
    Ok((StatusCode::CREATED, Json(JobView::new(job, &logs))).into_response())
}

/// The template a JSON request names, checked against the prompts folder.
fn template(
    state: &AppState,
    name: Option<requests::TemplateName>,
) -> AppResult<Option<crate::domain::TemplateName>> {
    name.map_or(Ok(None), |name| intake::template(state, &name.0))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContentQuery {
    /// `true` adds the `transcript` (with speaker names) and `summary` texts.
    #[param(value_type = Option<bool>)]
    content: Option<String>,
}

/// One job.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}",
    tag = "jobs",
    params(crate::web::api::requests::JobIdParam, ContentQuery),
    responses(
        (status = 200, description = "The job", body = JobView),
    )
)]
pub async fn get_job(
    State(state): State<AppState>,
    JobPath(id): JobPath,
    ApiQuery(query): ApiQuery<ContentQuery>,
) -> AppResult<Response> {
    let want_content = match flag("content", query.content.as_deref()) {
        Ok(want) => want,
        Err(error) => {
            // An unknown job is a 404 whatever its flags, as it always was.
            state.store.job_with_logs(&id).await?;
            return Err(error);
        }
    };
    if !want_content {
        // The job's JSON as the all-jobs listing keeps it (until the job is written): the
        // same bytes `Json(JobView)` gives, without reading and serialising it per request.
        let json = state.all_jobs.job(&state.store, &id).await?;
        return Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response());
    }
    let (job, logs) = state.store.job_with_logs(&id).await?;
    let artifacts = state.store.artifacts();
    let transcript_path = job.transcript_path.clone();
    let summary_path = job.summary_path.clone();
    let speakers = job.speakers.clone();
    let mut view = JobView::new(job, &logs);
    if want_content {
        view.transcript = artifacts
            .read_text(transcript_path.as_deref())
            .await?
            .map(|text| apply_speaker_names(&text, &speakers));
        if let Some(summary) = artifacts.read_text(summary_path.as_deref()).await? {
            view.summary = Some(summary);
        }
    }
    Ok(Json(view).into_response())
}

/// Deletes a job and its files. A job being worked on is stopped first.
#[utoipa::path(
    delete,
    path = "/api/jobs/{id}",
    tag = "jobs",
    params(crate::web::api::requests::JobIdParam),
    responses(
        (status = 200, description = "Deleted", body = Success),
    )
)]
pub async fn delete_job(
    State(state): State<AppState>,
    JobPath(id): JobPath,
) -> AppResult<Json<Success>> {
    state.jobs.delete(&id).await?;
    Ok(Json(Success::new(None)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RetryQuery {
    /// `true` starts over from the link instead of resuming after the last checkpoint.
    #[param(value_type = Option<bool>)]
    full: Option<String>,
}

/// Queues a job again, resuming after its last finished stage.
#[utoipa::path(
    post,
    path = "/api/jobs/{id}/retry",
    tag = "jobs",
    params(crate::web::api::requests::JobIdParam, RetryQuery),
    responses(
        (status = 200, description = "Queued again", body = Success),
        (status = 409, description = "The job is being worked on", body = crate::web::api::view::ErrorBody),
    )
)]
pub async fn retry_job(
    State(state): State<AppState>,
    JobPath(id): JobPath,
    ApiQuery(query): ApiQuery<RetryQuery>,
) -> AppResult<Json<Success>> {
    let full = flag("full", query.full.as_deref())?;
    let message = state.jobs.retry(&id, full).await?;
    Ok(Json(Success::new(Some(message))))
}

/// Writes the summary and title again from the transcript (the original app's route).
#[utoipa::path(
    post,
    path = "/api/jobs/{id}/regenerate-summary",
    tag = "jobs",
    params(crate::web::api::requests::JobIdParam),
    responses(
        (status = 200, description = "Queued for a new summary", body = Success),
        (status = 400, description = "The job has no transcript", body = crate::web::api::view::ErrorBody),
        (status = 409, description = "The job is being worked on", body = crate::web::api::view::ErrorBody),
    )
)]
pub async fn regenerate_summary(
    State(state): State<AppState>,
    JobPath(id): JobPath,
) -> AppResult<Json<Success>> {
    state.jobs.resummarize(&id).await?;
    Ok(Json(Success::new(Some(
        "Summary regeneration started".into(),
    ))))
}

/// Writes the summary and title again from the transcript, answering the job.
#[utoipa::path(
    post,
    path = "/api/jobs/{id}/resummarize",
    tag = "jobs",
    params(crate::web::api::requests::JobIdParam),
    responses(
        (status = 200, description = "The job, queued for a new summary", body = JobView),
        (status = 400, description = "The job has no transcript", body = crate::web::api::view::ErrorBody),
        (status = 409, description = "The job is being worked on", body = crate::web::api::view::ErrorBody),
    )
)]
pub async fn resummarize(
    State(state): State<AppState>,
    JobPath(id): JobPath,
) -> AppResult<Json<JobView>> {
    // The job as queued: read again, a worker may already have taken it.
    let job = state.jobs.resummarize(&id).await?;
    let logs = state.store.logs_after(&id, 0).await?;
    Ok(Json(JobView::new(job, &logs)))
}

/// The transcript as text, with speaker names.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}/transcript",
    tag = "jobs",
    params(crate::web::api::requests::JobIdParam),
    responses(
        (status = 200, description = "The transcript, or null before there is one", body = TranscriptBody),
    )
)]
pub async fn transcript(
    State(state): State<AppState>,
    JobPath(id): JobPath,
) -> AppResult<Json<TranscriptBody>> {
    let job = state.store.job(&id).await?;
    let text = state
        .store
        .artifacts()
        .read_text(job.transcript_path.as_deref())
        .await?
        .map(|text| apply_speaker_names(&text, &job.speakers));
    Ok(Json(TranscriptBody { transcript: text }))
}
