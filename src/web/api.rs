//! The JSON API of contract §4, in the original app's shapes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::AppState;
use super::extract::{ApiJson, ApiQuery, JobPath, flag};
use super::view::JobView;
use crate::error::{AppError, AppResult};
use crate::jobs::{Job, JobId, Stage, Status, iso_millis, now_millis, parse_meeting_date};
use crate::pipeline::transcribe::apply_speaker_names;
use crate::store::{Changes, NewJob};

const MAX_URL_LENGTH: usize = 4096;

pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let healthy = state.store.count_jobs().await.is_ok();
    let body = json!({
        "status": if healthy { "ok" } else { "error" },
        "timestamp": iso_millis(now_millis()),
        "env": {
            "assemblyai": state.config.transcriber() == crate::config::TranscriberChoice::AssemblyAi,
            "transcriber": state.config.transcriber().as_str(),
            "openai": state.config.summaries_enabled(),
            "dataDir": state.config.data_dir.display().to_string(),
        }
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

pub async fn list_jobs(State(state): State<AppState>) -> AppResult<Json<Value>> {
    let jobs = state.store.all_jobs_with_logs().await?;
    let artifacts = state.store.artifacts();
    let jobs: Vec<JobView> = jobs
        .into_iter()
        .map(|(job, logs)| JobView::new(job, &logs, artifacts))
        .collect();
    Ok(Json(json!({ "jobs": jobs })))
}

/// The route lifts the default body limit so that uploads can stream; JSON keeps the limit of
/// every other JSON route (a longer transcript comes as a multipart `file` or `transcript`).
const CREATE_JSON_LIMIT: usize = super::JSON_BODY_LIMIT;

pub async fn create_job(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> AppResult<axum::response::Response> {
    if super::intake::is_multipart(&request) {
        return super::intake::create_from_multipart(&state, request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, CREATE_JSON_LIMIT)
        .await
        .map_err(|_| AppError::PayloadTooLarge("the body is too large".into()))?;
    let request = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
    let ApiJson(body) =
        <ApiJson<Value> as axum::extract::FromRequest<()>>::from_request(request, &()).await?;
    create_from_json(state, body).await
}

async fn create_from_json(state: AppState, body: Value) -> AppResult<axum::response::Response> {
    let Value::Object(mut body) = body else {
        return Err(AppError::bad_request(
            "the body must be a JSON object such as {\"url\": \"https://…\"}",
        ));
    };
    if let Some(transcript) = body.remove("transcript") {
        let Value::String(text) = transcript else {
            return Err(AppError::bad_request("\"transcript\" must be a string"));
        };
        if body.contains_key("url") {
            return Err(AppError::bad_request(
                "send either a \"url\" or a \"transcript\", not both",
            ));
        }
        let meeting_date = match body
            .remove("meetingDate")
            .or_else(|| body.remove("meeting_date"))
        {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => super::intake::meeting_date(&text)?,
            Some(_) => return Err(AppError::bad_request("\"meetingDate\" must be a string")),
        };
        let template = super::intake::template_from_json(&state, &mut body)?;
        return super::intake::create_from_json_transcript(
            &state,
            text,
            super::intake::CommonFields {
                meeting_date,
                template,
            },
        )
        .await;
    }
    let url = match body.remove("url") {
        Some(Value::String(url)) => url,
        Some(_) => return Err(AppError::bad_request("\"url\" must be a string")),
        None => return Err(AppError::bad_request("\"url\" is required")),
    };
    let url = validate_url(&state, &url)?;
    let meeting_date = match body.remove("meetingDate").or_else(|| body.remove("meeting_date")) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.trim().is_empty() => None,
        Some(Value::String(text)) => Some(parse_meeting_date(&text).ok_or_else(|| {
            AppError::bad_request(format!(
                "\"meetingDate\" is not a date we understand: {text:?} (use e.g. 2025-09-25T20:05:00Z)"
            ))
        })?),
        Some(_) => return Err(AppError::bad_request("\"meetingDate\" must be a string")),
    };
    let template = super::intake::template_from_json(&state, &mut body)?;

    let (job, logs) = state
        .store
        .create_job(NewJob {
            url,
            meeting_date,
            template,
            ..Default::default()
        })
        .await?;
    state.queue.wake();
    tracing::info!(job = %job.id, "job created");
    Ok((
        StatusCode::CREATED,
        Json(JobView::new(job, &logs, state.store.artifacts())),
    )
        .into_response())
}

/// A URL a user asks us to fetch: http(s), a host, not absurdly long, and (when it can be
/// known now) not aimed at a refused address.
fn validate_url(state: &AppState, raw: &str) -> AppResult<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(AppError::bad_request(
            "\"url\" is empty; paste a Plaud share link or an audio URL",
        ));
    }
    if trimmed.len() > MAX_URL_LENGTH {
        return Err(AppError::bad_request(format!(
            "\"url\" is longer than {MAX_URL_LENGTH} characters"
        )));
    }
    let url = Url::parse(trimmed)
        .map_err(|error| AppError::bad_request(format!("\"url\" is not a valid URL ({error})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(AppError::bad_request(format!(
            "\"url\" must start with http:// or https:// (got {}:)",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(AppError::bad_request("\"url\" has no host"));
    }
    state
        .clients
        .policy
        .check_url(&url)
        .map_err(|refusal| AppError::bad_request(refusal.to_string()))?;
    Ok(url.to_string())
}

#[derive(Debug, Deserialize)]
pub struct ContentQuery {
    content: Option<String>,
}

pub async fn get_job(
    State(state): State<AppState>,
    JobPath(id): JobPath,
    ApiQuery(query): ApiQuery<ContentQuery>,
) -> AppResult<Json<JobView>> {
    let (job, logs) = state.store.job_with_logs(&id).await?;
    let artifacts = state.store.artifacts();
    let want_content = flag(query.content.as_deref());
    let transcript_path = job.transcript_path.clone();
    let summary_path = job.summary_path.clone();
    let speakers = job.speakers.clone();
    let mut view = JobView::new(job, &logs, artifacts);
    if want_content {
        view.transcript = artifacts
            .read_text(transcript_path.as_deref())
            .await?
            .map(|text| apply_speaker_names(&text, &speakers));
        if let Some(summary) = artifacts.read_text(summary_path.as_deref()).await? {
            view.summary = Some(summary);
        }
    }
    Ok(Json(view))
}

pub async fn delete_job(
    State(state): State<AppState>,
    JobPath(id): JobPath,
) -> AppResult<Json<Value>> {
    // A running pipeline is stopped first, so it writes no file after the delete.
    if state.queue.cancel(&id) {
        for _ in 0..50 {
            if !state.queue.is_running(&id) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    state.store.delete_job(&id).await?;
    tracing::info!(job = %id, "job deleted");
    Ok(Json(json!({ "success": true })))
}

#[derive(Debug, Deserialize)]
pub struct RetryQuery {
    full: Option<String>,
}

const FINISHED: &[Status] = &[Status::Completed, Status::Error];

/// 409 for a job that is queued or running, 404 for one that does not exist.
async fn not_finished(state: &AppState, id: &JobId) -> AppError {
    match state.store.job(id).await {
        Ok(job) if job.status == Status::Queued => {
            AppError::Conflict("the job is already queued".into())
        }
        Ok(job) => AppError::Conflict(format!(
            "the job is running (status: {}); wait for it to finish",
            job.status
        )),
        Err(error) => error.into(),
    }
}

pub async fn retry_job(
    State(state): State<AppState>,
    JobPath(id): JobPath,
    ApiQuery(query): ApiQuery<RetryQuery>,
) -> AppResult<Json<Value>> {
    let full = flag(query.full.as_deref());
    let current = state.store.job(&id).await?;
    let mut changes = Changes::new()
        .status(Status::Queued)
        .error(None)
        .progress(None);
    let message = if let (true, Some(kept)) = (full, current.brought_input()) {
        // An upload or a transcript brought along is the job's only source: keep it.
        changes = changes
            .checkpoint(Some(kept))
            .summary(None, None)
            .title(None)
            .transcription_ref(None)
            .remove_artifacts_after(kept);
        if kept < Stage::Transcribe {
            changes = changes.transcript_path(None);
        }
        let next = Stage::first_after(Some(kept)).unwrap_or(Stage::Summarize);
        format!("Job queued to start over from the {next} stage (its uploaded input is kept)")
    } else if full {
        changes = changes
            .checkpoint(None)
            .resolved_url(None)
            .file_path(None)
            .transcript_path(None)
            .summary(None, None)
            .title(None)
            .transcription_ref(None)
            .remove_artifacts();
        "Job queued to start over from the beginning".to_string()
    } else {
        // A job with every stage done redoes its last one.
        let checkpoint = match current.checkpoint {
            Some(Stage::Summarize) => Some(Stage::Transcribe),
            other => other,
        };
        changes = changes.checkpoint(checkpoint);
        let next = Stage::first_after(checkpoint).unwrap_or(Stage::Summarize);
        format!("Job queued to resume at the {next} stage")
    };
    let Some(_) = state.store.update_if(&id, FINISHED, changes).await? else {
        return Err(not_finished(&state, &id).await);
    };
    state
        .store
        .append_log(
            &id,
            if full {
                "Retry requested: starting over"
            } else {
                "Retry requested: resuming from the checkpoint"
            },
        )
        .await?;
    state.queue.wake();
    Ok(Json(json!({ "success": true, "message": message })))
}

/// Queues a new summary of the existing transcript.
async fn queue_summary(state: &AppState, id: &JobId) -> AppResult<Job> {
    let job = state.store.job(id).await?;
    let transcript = state
        .store
        .artifacts()
        .read_text(job.transcript_path.as_deref())
        .await?;
    if transcript.is_none_or(|text| text.trim().is_empty()) {
        return Err(AppError::bad_request(
            "the job has no transcript to summarise yet",
        ));
    }
    let changes = Changes::new()
        .status(Status::Queued)
        .error(None)
        .checkpoint(Some(Stage::Transcribe));
    let Some(job) = state.store.update_if(id, FINISHED, changes).await? else {
        return Err(not_finished(state, id).await);
    };
    state.store.append_log(id, "New summary requested").await?;
    state.queue.wake();
    Ok(job)
}

pub async fn regenerate_summary(
    State(state): State<AppState>,
    JobPath(id): JobPath,
) -> AppResult<Json<Value>> {
    queue_summary(&state, &id).await?;
    Ok(Json(
        json!({ "success": true, "message": "Summary regeneration started" }),
    ))
}

pub async fn resummarize(
    State(state): State<AppState>,
    JobPath(id): JobPath,
) -> AppResult<Json<JobView>> {
    queue_summary(&state, &id).await?;
    let (job, logs) = state.store.job_with_logs(&id).await?;
    Ok(Json(JobView::new(job, &logs, state.store.artifacts())))
}

pub async fn transcript(
    State(state): State<AppState>,
    JobPath(id): JobPath,
) -> AppResult<Json<Value>> {
    let job = state.store.job(&id).await?;
    let text = state
        .store
        .artifacts()
        .read_text(job.transcript_path.as_deref())
        .await?
        .map(|text| apply_speaker_names(&text, &job.speakers));
    Ok(Json(json!({ "transcript": text })))
}
