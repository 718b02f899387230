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
