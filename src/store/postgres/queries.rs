//! The statements on jobs and their logs, with the same meaning as `sqlite/queries.rs`.

use std::collections::HashMap;
use std::time::Duration;

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::rows::{JOB_COLUMNS, Param, RowLock, get_job, job_from_row, one_job, params};
use crate::jobs::{ErrorKind, Job, JobId, LogLine, Stage, Status, now_millis};
use crate::store::backend::{Update, Updated};
use crate::store::columns::{
    self, Cell, migrated_job_cells, update_columns, update_sql, update_values, whole_job_cells,
};
use crate::store::legacy::ImportedJob;
use crate::store::{
    Changes, Claimed, LEASE_LOST, LeaseChange, LeaseOwner, NewJob, StoreError, StoreResult,
};

/// The statuses of a job a stage works on, as SQL.
const RUNNING: &str = "('resolving', 'downloading', 'transcribing', 'summarizing')";

/// `until` as ms since the epoch, `lease` from now.
fn lease_end(lease: Duration) -> i64 {
    columns::lease_end(now_millis(), lease)
}

/// Ok while `holder` (if any) holds the job's lease: NotFound without the job, Conflict when
/// the lease is someone else's (or nobody's). The row stays locked (`lock`: `FOR SHARE` for
/// a write beside the row, `FOR NO KEY UPDATE` for a change of it) until the transaction
/// ends, so no takeover comes between the check and the write.
pub async fn check_holder(
    client: &impl GenericClient,
    id: &JobId,
    holder: Option<&LeaseOwner>,
    lock: &str,
) -> StoreResult<()> {
    let Some(holder) = holder else {
        return Ok(());
    };
    let statement = client
        .prepare_cached(&format!(
            "SELECT lease_owner FROM jobs WHERE id = $1 FOR {lock}"
        ))
        .await?;
    let owner: Option<String> = client
        .query_opt(&statement, &[&id.as_str()])
        .await?
        .ok_or(StoreError::NotFound)?
        .try_get(0)?;
    if owner.as_deref() == Some(holder.as_str()) {
        Ok(())
    } else {
        Err(StoreError::Conflict(LEASE_LOST.into()))
    }
}

fn log_from_row(row: &Row, first: usize) -> StoreResult<LogLine> {
    Ok(LogLine {
        seq: row.try_get(first)?,
        ts: row.try_get(first + 1)?,
        message: row.try_get(first + 2)?,
    })
}

pub async fn logs_after(
    client: &impl GenericClient,
    id: &JobId,
    seq: i64,
) -> StoreResult<Vec<LogLine>> {
    let statement = client
        .prepare_cached(
            "SELECT seq, ts, message FROM job_logs WHERE job_id = $1 AND seq > $2 ORDER BY seq",
        )
        .await?;
    client
        .query(&statement, &[&id.as_str(), &seq])
        .await?
        .iter()
        .map(|row| log_from_row(row, 0))
        .collect()
}

/// The log lines of several jobs in one query. Jobs without lines are absent.
pub async fn logs_of_jobs(
    client: &impl GenericClient,
    ids: &[&str],
) -> StoreResult<HashMap<JobId, Vec<LogLine>>> {
    let mut all: HashMap<JobId, Vec<LogLine>> = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(all);
    }
    let statement = client
        .prepare_cached(
            "SELECT job_id, seq, ts, message FROM job_logs
             WHERE job_id = ANY($1) ORDER BY job_id, seq",
        )
        .await?;
    for row in client.query(&statement, &[&ids]).await? {
        let job_id: &str = row.try_get(0)?;
        let Ok(id) = JobId::parse(job_id) else {
            continue;
        };
        all.entry(id).or_default().push(log_from_row(&row, 1)?);
    }
    Ok(all)
}

/// The queued jobs in the order the workers take them (the order of `claim_next`).
pub async fn queue_order(client: &impl GenericClient) -> StoreResult<Vec<JobId>> {
    job_ids(
        client,
        "SELECT id FROM jobs WHERE status = 'queued' ORDER BY queued_at, created_at",
    )
    .await
}

/// A log line; with a `holder`, only while it holds the job's lease.
pub async fn append_log(
    client: &mut deadpool_postgres::Client,
    id: &JobId,
    message: &str,
    holder: Option<&LeaseOwner>,
) -> StoreResult<LogLine> {
    let ts = now_millis();
    if holder.is_none() {
        return insert_log(&*client, id, ts, message).await;
    }
    let transaction = client.transaction().await?;
    check_holder(&transaction, id, holder, "SHARE").await?;
    let line = insert_log(&transaction, id, ts, message).await?;
    transaction.commit().await?;
    Ok(line)
}

/// The advisory lock class of a job's log: with the job id's hash, one lock per job.
const LOG_LOCK_CLASS: i32 = 0x466c_6f67;

/// Appends a line under the job's log lock (an advisory lock, held to the end of the
/// transaction): one job's lines take their numbers and commit one after the other, so a
/// reader that continues after the last number it saw misses none. The job's row is not
/// locked, so a worker claiming the job never skips it for a log line. NotFound when the job
/// is gone.
pub async fn insert_log(
    client: &impl GenericClient,
    id: &JobId,
    ts: i64,
    message: &str,
) -> StoreResult<LogLine> {
    let statement = client
        .prepare_cached(&format!(
            "WITH locked AS (SELECT pg_advisory_xact_lock({LOG_LOCK_CLASS}, hashtext($1)))
             INSERT INTO job_logs (job_id, ts, message)
             SELECT jobs.id, $2, $3 FROM locked, jobs WHERE jobs.id = $1
             RETURNING seq"
        ))
        .await?;
    let row = client
        .query_opt(&statement, &[&id.as_str(), &ts, &message])
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(LogLine {
        seq: row.try_get(0)?,
        ts,
        message: message.to_string(),
    })
}

pub async fn create_job(
    client: &mut deadpool_postgres::Client,
    id: &JobId,
    new: NewJob,
) -> StoreResult<(Job, Vec<LogLine>)> {
    let now = now_millis();
    let sort = new.sort_ms(now);
    let transaction = client.transaction().await?;
    let statement = transaction
        .prepare_cached(
            "INSERT INTO jobs (id, url, meeting_date, sort_ms, status, created_at, updated_at,
                               queued_at, template, checkpoint, file_path, transcript_path)
             VALUES ($1, $2, $3, $4, 'queued', $5, $5, $5, $6, $7, $8, $9)",
        )
        .await?;
    transaction
        .execute(
            &statement,
            &[
                &id.as_str(),
                &new.url,
                &new.meeting_date,
                &sort,
                &now,
                &new.template,
                &new.checkpoint.map(Stage::as_str),
                &new.file_path,
                &new.transcript_path,
            ],
        )
        .await?;
    insert_log(&transaction, id, now, "Job created").await?;
    if let Some(line) = &new.origin_log {
        insert_log(&transaction, id, now, line).await?;
    }
    let job = get_job(&transaction, id, RowLock::None).await?;
    let logs = logs_after(&transaction, id, 0).await?;
    transaction.commit().await?;
    Ok((job, logs))
}

pub async fn job_order(client: &impl GenericClient) -> StoreResult<Vec<JobId>> {
    job_ids(client, "SELECT id FROM jobs ORDER BY sort_ms DESC, id DESC").await
}

/// The ids `sql` (a query of `id` alone) selects, in its order.
async fn job_ids(client: &impl GenericClient, sql: &str) -> StoreResult<Vec<JobId>> {
    let statement = client.prepare_cached(sql).await?;
    let rows = client.query(&statement, &[]).await?;
    Ok(rows
        .iter()
        .filter_map(|row| row.try_get::<_, &str>(0).ok())
        .filter_map(|id| JobId::parse(id).ok())
        .collect())
}

/// The jobs of `ids` that exist, in no particular order.
pub async fn jobs_by_ids(client: &impl GenericClient, ids: &[&str]) -> StoreResult<Vec<Job>> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE id = ANY($1)"
        ))
        .await?;
    client
        .query(&statement, &[&ids])
        .await?
        .iter()
        .map(job_from_row)
        .collect()
}

pub async fn all_jobs(client: &impl GenericClient) -> StoreResult<Vec<Job>> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs ORDER BY sort_ms DESC, id DESC"
        ))
        .await?;
    client
        .query(&statement, &[])
        .await?
        .iter()
        .map(job_from_row)
        .collect()
}

pub async fn all_logs(client: &impl GenericClient) -> StoreResult<HashMap<String, Vec<LogLine>>> {
    let statement = client
        .prepare_cached("SELECT job_id, seq, ts, message FROM job_logs ORDER BY seq")
        .await?;
    let mut logs: HashMap<String, Vec<LogLine>> = HashMap::new();
    for row in client.query(&statement, &[]).await? {
        let job_id: String = row.try_get(0)?;
        logs.entry(job_id).or_default().push(log_from_row(&row, 1)?);
    }
    Ok(logs)
}

pub async fn list_jobs(
    client: &impl GenericClient,
    limit: usize,
    offset: usize,
) -> StoreResult<Vec<Job>> {
    let columns = JOB_COLUMNS.replacen(" summary,", " NULL::text,", 1);
    let statement = client
        .prepare_cached(&format!(
            "SELECT {columns} FROM jobs ORDER BY sort_ms DESC, id DESC LIMIT $1 OFFSET $2"
        ))
        .await?;
    client
        .query(&statement, &[&(limit as i64), &(offset as i64)])
        .await?
        .iter()
        .map(job_from_row)
        .collect()
}

pub async fn count_by_status(client: &impl GenericClient) -> StoreResult<Vec<(String, u64)>> {
    let statement = client
        .prepare_cached("SELECT status, COUNT(*) FROM jobs GROUP BY status ORDER BY status")
        .await?;
    client
        .query(&statement, &[])
        .await?
        .iter()
        .map(|row| {
            let count: i64 = row.try_get(1)?;
            Ok((row.try_get(0)?, count as u64))
        })
        .collect()
}

pub async fn count_jobs(client: &impl GenericClient) -> StoreResult<u64> {
    let statement = client.prepare_cached("SELECT COUNT(*) FROM jobs").await?;
    let count: i64 = client.query_one(&statement, &[]).await?.try_get(0)?;
    Ok(count as u64)
}

/// A column's value as PostgreSQL binds it.
pub(super) fn param(cell: Cell) -> Param {
    match cell {
        Cell::Text(text) => Box::new(text),
        Cell::Integer(number) => Box::new(number),
    }
}

/// Applies `changes` (and `lease`) in one statement with `updated_at`; NotFound when no such
/// job.
async fn update_job(
    client: &impl GenericClient,
    id: &JobId,
    changes: &Changes,
    lease: &LeaseChange,
) -> StoreResult<()> {
    let now = now_millis();
    let columns = update_columns(changes, lease, now);
    let sql = update_sql(&columns, '$');
    let values: Vec<Param> = update_values(columns, now, id)
        .into_iter()
        .map(param)
        .collect();
    let statement = client.prepare_cached(&sql).await?;
    if client.execute(&statement, &params(&values)).await? == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// The change, its log line and its webhook event in one transaction.
pub async fn apply_update(
    client: &mut deadpool_postgres::Client,
    id: &JobId,
    update: Update,
) -> StoreResult<Option<Updated>> {
    let Update {
        changes,
        from,
        log,
        event,
        holder,
        lease,
    } = update;
    let transaction = client.transaction().await?;
    check_holder(&transaction, id, holder.as_ref(), "NO KEY UPDATE").await?;
    let before = if from.is_some() || changes.removal().is_some() {
        Some(get_job(&transaction, id, RowLock::ForChange).await?)
    } else {
        None
    };
    if let (Some(from), Some(before)) = (from, &before)
        && !from.contains(&before.status)
    {
        return Ok(None);
    }
    update_job(&transaction, id, &changes, &lease).await?;
    if let Some(names) = changes.speaker_names() {
        super::passages::rename_speakers(&transaction, id, names).await?;
    }
    let ts = now_millis();
    let line = match log {
        Some(message) => Some(insert_log(&transaction, id, ts, &message).await?),
        None => None,
    };
    let job = get_job(&transaction, id, RowLock::None).await?;
    if let Some(event) = event {
        super::outbox::insert(&transaction, event(&job), ts).await?;
    }
    transaction.commit().await?;
    Ok(Some(Updated {
        before: before.filter(|_| changes.removal().is_some()),
        job,
        line,
    }))
}

/// What a claim found.
pub enum Claim {
    Job(Box<Claimed>),
    /// Nothing to take.
    Empty,
    /// Jobs to take, each locked by another transaction just now (a replica claiming it, an
    /// edit): worth another look in a moment, where a worker would otherwise sleep.
    Busy,
}

/// The oldest job nobody holds, of those `condition` picks, locked; other claimers skip it.
async fn oldest_free(
    transaction: &deadpool_postgres::Transaction<'_>,
    condition: &str,
    now: i64,
) -> StoreResult<Option<Job>> {
    let statement = transaction
        .prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE {condition} AND (lease_until IS NULL OR lease_until <= $1)
             ORDER BY queued_at, created_at LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED"
        ))
        .await?;
    transaction
        .query_opt(&statement, &[&now])
        .await?
        .map(|row| job_from_row(&row))
        .transpose()
}

/// Takes the job nobody holds that has waited longest (one whose lease ran out mid-stage
/// first, else a queued one) and leases it to `owner`. Replicas that claim at the same moment
/// skip each other's row instead of waiting for it.
pub async fn claim_next(
    client: &mut deadpool_postgres::Client,
    owner: &LeaseOwner,
    lease: Duration,
) -> StoreResult<Claim> {
    let transaction = client.transaction().await?;
    let now = now_millis();
    let running = format!("status IN {RUNNING}");
    let (job, taken_over) = match oldest_free(&transaction, &running, now).await? {
        Some(job) => (job, true),
        None => match oldest_free(&transaction, "status = 'queued'", now).await? {
            Some(job) => (job, false),
            None => {
                let statement = transaction
                    .prepare_cached(&format!(
                        "SELECT EXISTS (SELECT 1 FROM jobs
                             WHERE (status = 'queued' OR status IN {RUNNING})
                               AND (lease_until IS NULL OR lease_until <= $1))"
                    ))
                    .await?;
                let waiting: bool = transaction
                    .query_one(&statement, &[&now])
                    .await?
                    .try_get(0)?;
                transaction.commit().await?;
                return Ok(if waiting { Claim::Busy } else { Claim::Empty });
            }
        },
    };
    let status = job
        .next_stage()
        .map(Stage::status)
        .unwrap_or(Status::Summarizing);
    let statement = transaction
        .prepare_cached(&format!(
            "UPDATE jobs SET status = $2, attempts = attempts + 1, error = NULL, error_kind = NULL,
                             updated_at = $3,
                             lease_owner = $4, lease_until = $5
             WHERE id = $1 RETURNING {JOB_COLUMNS}"
        ))
        .await?;
    let row = transaction
        .query_one(
            &statement,
            &[
                &job.id.as_str(),
                &status.as_str(),
                &now,
                &owner.as_str(),
                &lease_end(lease),
            ],
        )
        .await?;
    let job = job_from_row(&row)?;
    transaction.commit().await?;
    Ok(Claim::Job(Box::new(Claimed { job, taken_over })))
}

pub async fn renew_lease(
    client: &impl GenericClient,
    id: &JobId,
    owner: &LeaseOwner,
    lease: Duration,
) -> StoreResult<bool> {
    // Still in the owner's name, even if it ran out: nobody has taken the job over yet.
    let statement = client
        .prepare_cached("UPDATE jobs SET lease_until = $3 WHERE id = $1 AND lease_owner = $2")
        .await?;
    let renewed = client
        .execute(
            &statement,
            &[&id.as_str(), &owner.as_str(), &lease_end(lease)],
        )
        .await?;
    Ok(renewed == 1)
}

pub async fn next_lease_expiry(client: &impl GenericClient) -> StoreResult<Option<i64>> {
    let statement = client
        .prepare_cached("SELECT MIN(lease_until) FROM jobs WHERE lease_until > $1")
        .await?;
    Ok(client
        .query_one(&statement, &[&now_millis()])
        .await?
        .try_get(0)?)
}

pub async fn leased_jobs(client: &impl GenericClient) -> StoreResult<Vec<JobId>> {
    let statement = client
        .prepare_cached("SELECT id FROM jobs WHERE lease_until > $1")
        .await?;
    let rows = client.query(&statement, &[&now_millis()]).await?;
    Ok(rows
        .iter()
        .filter_map(|row| row.try_get::<_, &str>(0).ok())
        .filter_map(|id| JobId::parse(id).ok())
        .collect())
}

pub async fn requeue_interrupted(client: &impl GenericClient) -> StoreResult<usize> {
    let statement = client
        .prepare_cached(&format!(
            "UPDATE jobs SET status = 'queued', queued_at = $1, updated_at = $1,
                                 lease_owner = NULL, lease_until = NULL
                 WHERE status IN {RUNNING} AND (lease_until IS NULL OR lease_until <= $1)"
        ))
        .await?;
    Ok(client.execute(&statement, &[&now_millis()]).await? as usize)
}

pub async fn delete_job(client: &impl GenericClient, id: &JobId) -> StoreResult<Job> {
    one_job(
        client,
        &format!("DELETE FROM jobs WHERE id = $1 RETURNING {JOB_COLUMNS}"),
        id,
    )
    .await
}

pub async fn meta(client: &impl GenericClient, key: &str) -> StoreResult<Option<String>> {
    let statement = client
        .prepare_cached("SELECT value FROM meta WHERE key = $1")
        .await?;
    Ok(client
        .query_opt(&statement, &[&key])
        .await?
        .map(|row| row.try_get(0))
        .transpose()?)
}

/// The value of `key`, stored as `value` first when there is none.
pub async fn meta_or_insert(
    client: &impl GenericClient,
    key: &str,
    value: &str,
) -> StoreResult<String> {
    let statement = client
        .prepare_cached(
            "WITH inserted AS (
                 INSERT INTO meta (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO NOTHING RETURNING value
             )
             SELECT value FROM inserted UNION ALL SELECT value FROM meta WHERE key = $1",
        )
        .await?;
    if let Some(row) = client.query_opt(&statement, &[&key, &value]).await? {
        return Ok(row.try_get(0)?);
    }
    // Another process stored it while this statement ran (its snapshot is older): read it now.
    meta(client, key).await?.ok_or(StoreError::NotFound)
}

/// A batch of imported jobs (ids that exist are skipped, with their lines), and with the last
/// batch the marker, written first: a second replica finishing at the same moment waits for
/// the first one's transaction, then fails on the marker (Conflict) and adds nothing.
pub async fn import_jobs(
    client: &mut deadpool_postgres::Client,
    jobs: &[ImportedJob],
    marker: Option<&(&'static str, String)>,
) -> StoreResult<()> {
    let transaction = client.transaction().await?;
    if let Some((key, value)) = marker {
        transaction
            .execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2)",
                &[key, value],
            )
            .await?;
    }
    let insert_job = transaction
        .prepare(
            "INSERT INTO jobs (id, url, resolved_url, meeting_date, sort_ms, status, title,
                summary, summary_path, transcript_path, file_path, created_at, updated_at,
                error, checkpoint, attempts, queued_at, transcript_text)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 0, $13, $16)
             ON CONFLICT (id) DO NOTHING",
        )
        .await?;
    for imported in jobs {
        let job = &imported.job;
        let mut values: Vec<Param> = whole_job_cells(job, imported.sort_ms)
            .into_iter()
            .map(param)
            .collect();
        values.push(Box::new(imported.transcript_text.clone()));
        let inserted = transaction.execute(&insert_job, &params(&values)).await?;
        if inserted == 0 {
            continue;
        }
        for (ts, message) in &imported.logs {
            insert_log(&transaction, &job.id, *ts, message).await?;
        }
        insert_log(
            &transaction,
            &job.id,
            now_millis(),
            "Imported from the previous FocusFlow's jobs.json",
        )
        .await?;
    }
    transaction.commit().await?;
    Ok(())
}

/// See [`crate::store::Backend::insert_migrated`].
pub async fn insert_migrated(
    client: &mut deadpool_postgres::Client,
    migrated: &crate::store::migrate::MigratedJob,
) -> StoreResult<bool> {
    let job = &migrated.job;
    let transaction = client.transaction().await?;
    let mut values: Vec<Param> = whole_job_cells(job, migrated.sort_ms)
        .into_iter()
        .chain(migrated_job_cells(job))
        .map(param)
        .collect();
    values.push(Box::new(migrated.transcript_text.clone()));
    values.push(Box::new(job.error_kind.map(ErrorKind::as_str)));
    let inserted = transaction
        .execute(
            "INSERT INTO jobs (id, url, resolved_url, meeting_date, sort_ms, status, title,
                summary, summary_path, transcript_path, file_path, created_at, updated_at,
                error, checkpoint, attempts, progress_bytes, progress_total, transcription_ref,
                queued_at, speakers, template, transcript_text, error_kind)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                $17, $18, $19, $20, $21, $22, $23, $24)
             ON CONFLICT (id) DO NOTHING",
            &params(&values),
        )
        .await?;
    if inserted == 0 {
        return Ok(false);
    }
    for line in &migrated.logs {
        insert_log(&transaction, &job.id, line.ts, &line.message).await?;
    }
    transaction.commit().await?;
    Ok(true)
}
