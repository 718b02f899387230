//! A job's row: the columns read, how they become a [`Job`], and the read and the
//! transaction every statement file starts from (so that the files of statements need not
//! name each other for them).

use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use crate::jobs::{Job, JobId, Progress};
use crate::store::{StoreError, StoreResult};

pub const JOB_COLUMNS: &str = "id, url, resolved_url, meeting_date, status, title, summary, \
    summary_path, transcript_path, file_path, created_at, updated_at, error, checkpoint, \
    attempts, progress_bytes, progress_total, transcription_ref, speakers, template, error_kind";

/// How many columns [`JOB_COLUMNS`] names: what a query selects after them starts here.
pub fn job_column_count() -> usize {
    JOB_COLUMNS.split(',').count()
}

pub fn job_from_row(row: &Row<'_>) -> rusqlite::Result<Job> {
    let id: String = row.get(0)?;
    let status: String = row.get(4)?;
    let checkpoint: Option<String> = row.get(13)?;
    let progress_bytes: Option<i64> = row.get(15)?;
    let progress_total: Option<i64> = row.get(16)?;
    let bad_text = |index: usize, what: String| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, what.into())
    };
    Ok(Job {
        id: JobId::parse(&id).map_err(|_| bad_text(0, format!("bad job id {id:?}")))?,
        url: row.get(1)?,
        resolved_url: row.get(2)?,
        meeting_date: row.get(3)?,
        status: status.parse().map_err(|e| bad_text(4, format!("{e}")))?,
        title: row.get(5)?,
        summary: row.get(6)?,
        summary_path: row.get(7)?,
        transcript_path: row.get(8)?,
        file_path: row.get(9)?,
        created_at: row.get(10)?,
        updated_at: row.get(11)?,
        error: row.get(12)?,
        checkpoint: checkpoint
            .map(|step| step.parse().map_err(|e| bad_text(13, format!("{e}"))))
            .transpose()?,
        attempts: row.get(14)?,
        progress: progress_bytes
            .map(|bytes| Progress::new(bytes.max(0) as u64, progress_total.map(|t| t as u64))),
        transcription_ref: row.get(17)?,
        speakers: {
            let speakers: Option<String> = row.get(18)?;
            speakers
                .map(|json| {
                    serde_json::from_str(&json)
                        .map_err(|e| bad_text(18, format!("bad speakers {json:?}: {e}")))
                })
                .transpose()?
                .unwrap_or_default()
        },
        template: row.get(19)?,
        error_kind: {
            let kind: Option<String> = row.get(20)?;
            kind.map(|kind| kind.parse().map_err(|e| bad_text(20, format!("{e}"))))
                .transpose()?
        },
    })
}

/// A write transaction that takes the write lock at once: another process writing between this
/// one's reads and its writes would otherwise fail it (a stale snapshot cannot be upgraded),
/// while waiting for the lock is what the busy timeout is for.
pub fn begin(connection: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    connection.transaction_with_behavior(TransactionBehavior::Immediate)
}

pub fn get_job(connection: &Connection, id: &JobId) -> StoreResult<Job> {
    let mut statement =
        connection.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))?;
    statement
        .query_row(params![id.as_str()], job_from_row)
        .optional()?
        .ok_or(StoreError::NotFound)
}
