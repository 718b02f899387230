//! The JSON shape of a job: the original app's field names and types, plus a few more.

use serde::Serialize;

use crate::jobs::{Checkpoint, Job, LogLine, Progress, Stage, Status};
use crate::store::Artifacts;

#[derive(Debug, Serialize)]
pub struct JobView {
    pub id: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meeting_date: Option<String>,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub logs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
    /// The stage working on the job now, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Names given to the transcript's speakers (`{"A": "Ana"}`).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub speakers: crate::jobs::SpeakerNames,
    /// The prompt template chosen for the job, if not the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Only with `?content=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
}

/// The answer of `GET /api/jobs`, serialised straight from the views: no JSON tree is built in
/// between, which matters for the all-jobs form (every job with its summary and logs).
#[derive(Debug, Serialize)]
pub struct JobListing {
    pub jobs: Vec<ListedJob>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<usize>,
}

impl axum::response::IntoResponse for JobListing {
    fn into_response(self) -> axum::response::Response {
        // Sized for the whole answer up front: a page of summaries is some 100 KB, and growing
        // the buffer by doubling copied it several times over.
        let estimate: usize = self
            .jobs
            .iter()
            .map(|listed| {
                let job = &listed.job;
                let text = |value: &Option<String>| value.as_ref().map_or(0, String::len);
                512 + job.url.len()
                    + text(&job.title)
                    + text(&job.summary) * 11 / 10
                    + text(&job.error)
                    + job.logs.iter().map(|line| line.len() + 4).sum::<usize>()
                    + text(&listed.snippet)
            })
            .sum();
        let mut body = Vec::with_capacity(estimate + 64);
        match serde_json::to_writer(&mut body, &self) {
            Ok(()) => (
                [(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(error) => {
                tracing::error!(%error, "could not serialise a job listing");
                axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

/// A job in a listing: its view, and with a search the matching passage as safe HTML.
#[derive(Debug, Serialize)]
pub struct ListedJob {
    #[serde(flatten)]
    pub job: JobView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
}

impl JobView {
    pub fn new(job: Job, logs: &[LogLine], artifacts: &Artifacts) -> Self {
        let shown = |relative: Option<String>| {
            relative.map(|relative| {
                artifacts
                    .resolve(&relative)
                    .map(|path| path.display().to_string())
                    .unwrap_or(relative)
            })
        };
        let stage = job.current_stage();
        Self {
            id: job.id.to_string(),
            url: job.url,
            resolved_url: job.resolved_url,
            meeting_date: job.meeting_date,
            status: job.status,
            title: job.title,
            summary: job.summary,
            summary_path: shown(job.summary_path),
            transcript_path: shown(job.transcript_path),
            file_path: shown(job.file_path),
            created_at: job.created_at,
            updated_at: job.updated_at,
            error: job.error,
            logs: logs.iter().map(LogLine::to_legacy_string).collect(),
            checkpoint: job.checkpoint.map(|step| Checkpoint { step }),
            stage,
            attempts: job.attempts,
            progress: job.progress.filter(|_| job.status == Status::Downloading),
            speakers: job.speakers,
            template: job.template,
            transcript: None,
        }
    }
}
