//! `focusflow migrate`: copies a single-machine install (the SQLite store and the artifact
//! files in `DATA_DIR`) into another store, PostgreSQL and optionally a bucket.
//!
//! Safe to run again: a job whose id the target has is left as it is (the insert is one
//! transaction per job, so a job is there whole or not at all), and an object already in the
//! bucket with the same size is not sent again. A job's objects are copied before its row, so
//! the target never has a job whose recording is missing; an interrupted run leaves at most
//! objects without a job, which the next run completes (or the start-up sweep removes).
//!
//! Stop the old server first: jobs it changes after they were copied are not copied again.

use super::files::Artifacts;
use super::{Store, StoreError};
use crate::jobs::{Job, LogLine, meeting_date_millis};
use crate::storage::Bucket;

/// A whole job as another store has it.
#[derive(Debug, Clone)]
pub struct MigratedJob {
    pub job: Job,
    /// Oldest first; they get new positions in the target, in the same order.
    pub logs: Vec<LogLine>,
    /// The job's place in the list (its meeting date, or its creation time).
    pub sort_ms: i64,
    /// For the search index.
    pub transcript_text: Option<String>,
}

/// What a run copied and what it found already there.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub jobs_copied: u64,
    pub jobs_present: u64,
    pub log_lines: u64,
    pub objects_copied: u64,
    pub objects_present: u64,
    pub bytes_copied: u64,
    /// Files a job names that are not in `DATA_DIR` (the job is copied without them).
    pub files_missing: u64,
    /// Webhook events still waiting in the source: not copied (their receivers would get them
    /// twice if the old server ever ran again); see the command's output.
    pub deliveries_pending: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("could not read the source store: {0}")]
    Source(StoreError),
    #[error("could not write to the target database: {0}")]
    Target(StoreError),
    #[error("could not copy {relative}: {message}")]
    Object { relative: String, message: String },
}

/// Copies every job of `source` (SQLite and files in `DATA_DIR`) into `target`; `progress`
/// hears one line per job copied.
pub async fn migrate(
    source: &Store,
    target: &Store,
    progress: impl Fn(&str),
) -> Result<MigrationReport, MigrateError> {
    let mut report = MigrationReport::default();
    let jobs = source
        .backend
        .all_jobs_with_logs()
        .await
        .map_err(MigrateError::Source)?;
    let from = source.artifacts();
    for (job, logs) in jobs {
        // Objects first: the job appears in the target with everything it names.
        match target.artifacts().bucket() {
            Some(bucket) => copy_objects(from, bucket, &job, &mut report).await?,
            None => count_missing_files(from, &job, &mut report),
        }
        let lines = logs.len() as u64;
        let id = job.id.clone();
        if copy_job(from, target, job, logs).await? {
            report.jobs_copied += 1;
            report.log_lines += lines;
            progress(&format!("copied job {id} ({lines} log lines)"));
        } else {
            report.jobs_present += 1;
        }
    }
    report.deliveries_pending = source
        .backend
        .pending_deliveries()
        .await
        .map_err(MigrateError::Source)?;
    Ok(report)
}

/// Uploads the local files `job` names into `bucket`, skipping an object already there with
/// the same size and counting a file that is not in `DATA_DIR`.
async fn copy_objects(
    from: &Artifacts,
    bucket: &Bucket,
    job: &Job,
    report: &mut MigrationReport,
) -> Result<(), MigrateError> {
    for relative in from.local_files_of(job) {
        let Some(path) = from.resolve(&relative) else {
            continue;
        };
        let Ok(meta) = tokio::fs::metadata(&path).await else {
            report.files_missing += 1;
            continue;
        };
        let object_error = |message: String| MigrateError::Object {
            relative: relative.clone(),
            message,
        };
        let present = bucket
            .size(&relative)
            .await
            .map_err(|error| object_error(error.to_string()))?;
        if present == Some(meta.len()) {
            report.objects_present += 1;
            continue;
        }
        let bytes = bucket
            .upload_file(&path, &relative)
            .await
            .map_err(|error| object_error(error.to_string()))?;
        report.objects_copied += 1;
        report.bytes_copied += bytes;
    }
    Ok(())
}

/// Without a bucket the files stay in `DATA_DIR`: counts the ones `job` names that are not
/// there.
fn count_missing_files(from: &Artifacts, job: &Job, report: &mut MigrationReport) {
    for relative in [&job.file_path, &job.transcript_path, &job.summary_path]
        .into_iter()
        .flatten()
    {
        if from.resolve(relative).is_none_or(|path| !path.is_file()) {
            report.files_missing += 1;
        }
    }
}

/// Inserts `job` and its log into `target` with its list position and search text; false
/// when the target already had a job with its id.
async fn copy_job(
    from: &Artifacts,
    target: &Store,
    job: Job,
    logs: Vec<LogLine>,
) -> Result<bool, MigrateError> {
    let transcript_text = from
        .read_text(job.transcript_path.as_deref())
        .await
        .ok()
        .flatten();
    let sort_ms = job
        .meeting_date
        .as_deref()
        .and_then(meeting_date_millis)
        .unwrap_or(job.created_at);
    target
        .backend
        .insert_migrated(MigratedJob {
            job,
            logs,
            sort_ms,
            transcript_text,
        })
        .await
        .map_err(MigrateError::Target)
}
