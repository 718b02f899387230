//! What a person can do to jobs, shared by the JSON API and the HTML forms, so both take the
//! same checks and make the same changes.

use url::Url;

use super::AppState;
use crate::domain::{MeetingDate, TemplateName};
use crate::error::{AppError, AppResult};
use crate::jobs::{Job, JobId, LogLine, Stage, Status};
use crate::store::{Changes, NewJob};

const MAX_URL_LENGTH: usize = 4096;

/// Statuses from which a job may be retried or re-summarised.
const FINISHED: &[Status] = &[Status::Completed, Status::Error];

/// Why a URL cannot become a job. The API and the form word it differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlProblem {
    Empty,
    TooLong,
    NotAUrl(String),
    Scheme(String),
    NoHost,
    Refused(String),
}

impl UrlProblem {
    /// The API's message, which names the JSON field.
    pub fn api_message(&self) -> String {
        match self {
            UrlProblem::Empty => {
                "\"url\" is empty; paste a Plaud share link or an audio URL".into()
            }
            UrlProblem::TooLong => format!("\"url\" is longer than {MAX_URL_LENGTH} characters"),
            UrlProblem::NotAUrl(error) => format!("\"url\" is not a valid URL ({error})"),
            UrlProblem::Scheme(scheme) => {
                format!("\"url\" must start with http:// or https:// (got {scheme}:)")
            }
            UrlProblem::NoHost => "\"url\" has no host".into(),
            UrlProblem::Refused(reason) => reason.clone(),
        }
    }

    /// The form's message, shown next to the field.
    pub fn form_message(&self) -> String {
        match self {
            UrlProblem::Empty => "Paste a Plaud share link or a link to an audio file.".into(),
            UrlProblem::TooLong => {
                format!("This link is longer than {MAX_URL_LENGTH} characters.")
            }
            UrlProblem::NotAUrl(_) => {
                "This is not a web address. It should look like https://web.plaud.ai/share/… \
                 or https://example.com/meeting.mp3."
                    .into()
            }
            UrlProblem::Scheme(scheme) => {
                format!("The link must start with http:// or https:// (this one is {scheme}:).")
            }
            UrlProblem::NoHost => "The link has no host name.".into(),
            UrlProblem::Refused(reason) => {
                let mut reason = reason.clone();
                if let Some(first) = reason.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                if !reason.ends_with('.') {
                    reason.push('.');
                }
                reason
            }
        }
    }
}

/// A URL a user asks us to fetch: http(s), a host, not absurdly long, and (when it can be
/// known now) not aimed at a refused address.
pub fn validate_url(state: &AppState, raw: &str) -> Result<String, UrlProblem> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(UrlProblem::Empty);
    }
    if trimmed.len() > MAX_URL_LENGTH {
        return Err(UrlProblem::TooLong);
    }
    let url = Url::parse(trimmed).map_err(|error| UrlProblem::NotAUrl(error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlProblem::Scheme(url.scheme().to_string()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UrlProblem::NoHost);
    }
    state
        .clients
        .policy
        .check_url(&url)
        .map_err(|refusal| UrlProblem::Refused(refusal.to_string()))?;
    Ok(url.to_string())
}

/// Creates a queued job from a checked URL and wakes the worker.
pub async fn create_job(
    state: &AppState,
    url: String,
    meeting_date: Option<MeetingDate>,
    template: Option<TemplateName>,
) -> AppResult<(Job, Vec<LogLine>)> {
    let (job, logs) = state
        .store
        .create_job(NewJob {
            url,
            meeting_date: meeting_date.map(MeetingDate::into_string),
            template: template.map(TemplateName::into_string),
            ..Default::default()
        })
        .await?;
    state.queue.wake();
    tracing::info!(job = %job.id, "job created");
    Ok((job, logs))
}

/// Stops the job's pipeline if it runs, then removes the job and its files.
pub async fn delete_job(state: &AppState, id: &JobId) -> AppResult<()> {
    // A running pipeline is stopped first, so it writes no file after the delete.
    if state.queue.cancel(id) {
        for _ in 0..50 {
            if !state.queue.is_running(id) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    state.store.delete_job(id).await?;
    tracing::info!(job = %id, "job deleted");
    Ok(())
}

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

/// Queues a finished job again: from its checkpoint, or (`full`) from the beginning with its
/// files removed. Returns a sentence saying what will happen.
pub async fn retry_job(state: &AppState, id: &JobId, full: bool) -> AppResult<String> {
    let current = state.store.job(id).await?;
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
    let Some(_) = state.store.update_if(id, FINISHED, changes).await? else {
        return Err(not_finished(state, id).await);
    };
    state
        .store
        .append_log(
            id,
            if full {
                "Retry requested: starting over"
            } else {
                "Retry requested: resuming from the checkpoint"
            },
        )
        .await?;
    state.queue.wake();
    Ok(message)
}

/// Queues a new summary of the existing transcript.
pub async fn queue_summary(state: &AppState, id: &JobId) -> AppResult<Job> {
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
