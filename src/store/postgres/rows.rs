//! A job's row: the columns read, how they become a [`Job`], the read every statement file
//! starts from, and run-time parameters (so that the files of statements need not name each
//! other for them).

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::jobs::{Job, JobId, Progress};
use crate::store::{StoreError, StoreResult};

pub const JOB_COLUMNS: &str = "id, url, resolved_url, meeting_date, status, title, summary, \
    summary_path, transcript_path, file_path, created_at, updated_at, error, checkpoint, \
    attempts, progress_bytes, progress_total, transcription_ref, speakers, template, error_kind";

/// How many columns [`JOB_COLUMNS`] names: what a query selects after them starts here.
pub fn job_column_count() -> usize {
    JOB_COLUMNS.split(',').count()
}

/// A parameter of a statement built at run time.
pub type Param = Box<dyn ToSql + Sync + Send>;

pub fn params(values: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    values
        .iter()
        .map(|value| value.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

fn unreadable(what: String) -> StoreError {
    StoreError::Unavailable(format!(
        "the database holds a job that cannot be read: {what}"
    ))
}

pub fn job_from_row(row: &Row) -> StoreResult<Job> {
    let id: String = row.try_get(0)?;
    let status: String = row.try_get(4)?;
    let checkpoint: Option<String> = row.try_get(13)?;
    let progress_bytes: Option<i64> = row.try_get(15)?;
    let progress_total: Option<i64> = row.try_get(16)?;
    let speakers: Option<String> = row.try_get(18)?;
    let attempts: i64 = row.try_get(14)?;
    Ok(Job {
        id: JobId::parse(&id).map_err(|_| unreadable(format!("bad job id {id:?}")))?,
        url: row.try_get(1)?,
        resolved_url: row.try_get(2)?,
        meeting_date: row.try_get(3)?,
        status: status.parse().map_err(|e| unreadable(format!("{e}")))?,
        title: row.try_get(5)?,
        summary: row.try_get(6)?,
        summary_path: row.try_get(7)?,
        transcript_path: row.try_get(8)?,
        file_path: row.try_get(9)?,
        created_at: row.try_get(10)?,
        updated_at: row.try_get(11)?,
        error: row.try_get(12)?,
        checkpoint: checkpoint
            .map(|step| step.parse().map_err(|e| unreadable(format!("{e}"))))
            .transpose()?,
        attempts: attempts.clamp(0, u32::MAX as i64) as u32,
        progress: progress_bytes
            .map(|bytes| Progress::new(bytes.max(0) as u64, progress_total.map(|t| t as u64))),
        transcription_ref: row.try_get(17)?,
        speakers: speakers
            .map(|json| {
                serde_json::from_str(&json)
                    .map_err(|e| unreadable(format!("bad speakers {json:?}: {e}")))
            })
            .transpose()?
            .unwrap_or_default(),
        template: row.try_get(19)?,
        error_kind: row
            .try_get::<_, Option<String>>(20)?
            .map(|kind| kind.parse().map_err(|e| unreadable(format!("{e}"))))
            .transpose()?,
    })
}

/// How a read of a job's row locks it.
#[derive(Debug, Clone, Copy)]
pub enum RowLock {
    /// Not at all: a plain read.
    None,
    /// Until the transaction ends, against a change of the row (the state a conditional
    /// change reads).
    ForChange,
}

impl RowLock {
    fn clause(self) -> &'static str {
        match self {
            Self::None => "",
            Self::ForChange => " FOR NO KEY UPDATE",
        }
    }
}

/// The job `id`, its row locked as `lock` says; NotFound without it.
pub async fn get_job(client: &impl GenericClient, id: &JobId, lock: RowLock) -> StoreResult<Job> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1{}",
        lock.clause()
    );
    one_job(client, &sql, id).await
}

/// The job row `sql` (with `$1` for `id`, answering [`JOB_COLUMNS`]) gives; NotFound without it.
pub async fn one_job(client: &impl GenericClient, sql: &str, id: &JobId) -> StoreResult<Job> {
    let statement = client.prepare_cached(sql).await?;
    let row = client
        .query_opt(&statement, &[&id.as_str()])
        .await?
        .ok_or(StoreError::NotFound)?;
    job_from_row(&row)
}
