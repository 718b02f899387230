//! The JSON shape of a job: the original app's field names and types, plus a few more.

use serde::Serialize;
use serde_json::Value;

use crate::jobs::{Checkpoint, Job, LogLine, Progress, Stage, Status};

/// A job (contract §4): the original app's fields, plus the stage, attempts, progress, speaker
/// names and template. Paths are relative to the data directory (`transcripts/<id>.txt`): the
/// server's own folders are nobody's business, and clients of the original only read the names.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobView {
    #[schema(example = "0b0f6b8e-8d0e-4a47-9a59-3a7d3f0f4e1c")]
    pub id: String,
    /// The link the job was created from (`upload:<name>` or `transcript:<name>` for uploads).
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_url: Option<String>,
    /// ISO 8601.
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
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Milliseconds since the epoch.
    pub updated_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub logs: Vec<String>,
    /// The last finished stage: a retry resumes after it.
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
    /// Only in search results: where the words were found, as HTML (text escaped, matches in
    /// `<mark>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
}

impl JobView {
    pub fn new(job: Job, logs: &[LogLine]) -> Self {
        let stage = job.current_stage();
        Self {
            id: job.id.to_string(),
            url: job.url,
            resolved_url: job.resolved_url,
            meeting_date: job.meeting_date,
            status: job.status,
            title: job.title,
            summary: job.summary,
            summary_path: job.summary_path,
            transcript_path: job.transcript_path,
            file_path: job.file_path,
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
            snippet: None,
        }
    }
}

/// `GET /api/jobs`: every job, or one page of them with where the next page starts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Pass as `offset` for the next page (when paging by `offset`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<usize>,
}

impl JobList {
    /// The answer as JSON, serialised straight from the views into a buffer sized for the whole
    /// answer: no JSON tree is built in between, which matters for the all-jobs form (every job
    /// with its summary and logs), and growing the buffer by doubling copied it several times.
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        let estimate: usize = self
            .jobs
            .iter()
            .map(|job| {
                let text = |value: &Option<String>| value.as_ref().map_or(0, String::len);
                512 + job.url.len()
                    + text(&job.title)
                    + text(&job.summary) * 11 / 10
                    + text(&job.error)
                    + job.logs.iter().map(|line| line.len() + 4).sum::<usize>()
                    + text(&job.snippet)
            })
            .sum();
        let mut body = Vec::with_capacity(estimate + 64);
        serde_json::to_writer(&mut body, self)?;
        Ok(body)
    }
}

/// The answer of an action: `{"success": true, "message": "…"}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Success {
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Success {
    pub fn new(message: Option<String>) -> Self {
        Self {
            success: true,
            message,
        }
    }
}

/// `GET /api/jobs/{id}/transcript`: the transcript with speaker names, or `null` before there is
/// one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TranscriptBody {
    pub transcript: Option<String>,
}

/// `GET /api/health`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, or `error` (with status 503) when the database does not answer.
    #[schema(example = "ok")]
    pub status: String,
    /// ISO 8601, with milliseconds.
    pub timestamp: String,
    pub env: HealthEnv,
    pub backends: HealthBackends,
}

/// What holds the jobs, the files and the live events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthBackends {
    /// `sqlite` (a file in `DATA_DIR`) or `postgresql` (`DATABASE_URL`).
    #[schema(example = "sqlite")]
    pub database: String,
    /// `local`: recordings, transcripts and summaries are files in `DATA_DIR`.
    #[schema(example = "local")]
    pub storage: String,
    /// `in-process` (SQLite: live events reach this process only) or `postgresql`
    /// (`LISTEN/NOTIFY`: every process on the database hears them).
    #[schema(example = "in-process")]
    pub events: String,
}

/// Which providers are configured.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthEnv {
    /// AssemblyAI is the transcriber.
    pub assemblyai: bool,
    /// `assemblyai`, `openai` or `none`.
    pub transcriber: String,
    /// Summaries and titles are written (an LLM key is set).
    pub openai: bool,
    #[serde(rename = "dataDir")]
    pub data_dir: String,
}

/// `GET /api/templates`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateList {
    pub templates: Vec<TemplateInfo>,
    /// The template used when a job names none.
    pub default: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateInfo {
    /// The file name without `.md`, e.g. `one_on_one`.
    pub name: String,
    pub default: bool,
}

/// Every error: a message for a human, with a fitting status.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

/// `export?format=json`: the job with its transcript and timed utterances.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobExport {
    #[serde(flatten)]
    pub job: JobView,
    pub utterances: Vec<crate::pipeline::transcribe::Utterance>,
}
