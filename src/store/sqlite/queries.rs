//! The statements on jobs and their logs.

use std::collections::HashMap;
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::rows::{JOB_COLUMNS, begin, get_job, job_from_row};
use crate::jobs::{Job, JobId, LogLine, Stage, Status, now_millis};
use crate::store::backend::{Update, Updated, with_logs};
use crate::store::columns::{
    self, Cell, migrated_job_cells, update_columns, update_sql, update_values, whole_job_cells,
};
use crate::store::legacy::ImportedJob;
use crate::store::{
    Changes, Claimed, LEASE_LOST, LeaseChange, LeaseOwner, NewJob, StoreError, StoreResult,
};

/// The statuses of a job a stage works on, as SQL.
const RUNNING: &str = "('resolving', 'downloading', 'transcribing', 'summarizing')";

fn log_from_row(row: &Row<'_>) -> rusqlite::Result<LogLine> {
    Ok(LogLine {
        seq: row.get(0)?,
        ts: row.get(1)?,
        message: row.get(2)?,
    })
}

/// `until` as ms since the epoch, `lease` from now.
fn lease_end(lease: Duration) -> i64 {
    columns::lease_end(now_millis(), lease)
}

/// Ok while `holder` (if any) holds the job's lease: NotFound without the job, Conflict when
/// the lease is someone else's (or nobody's: it was taken over and finished or handed back).
pub fn check_holder(
    connection: &Connection,
    id: &JobId,
    holder: Option<&LeaseOwner>,
) -> StoreResult<()> {
    let Some(holder) = holder else {
        return Ok(());
    };
    let owner: Option<String> = connection
        .prepare_cached("SELECT lease_owner FROM jobs WHERE id = ?1")?
        .query_row(params![id.as_str()], |row| row.get(0))
        .optional()?
        .ok_or(StoreError::NotFound)?;
    if owner.as_deref() == Some(holder.as_str()) {
        Ok(())
    } else {
        Err(StoreError::Conflict(LEASE_LOST.into()))
    }
}

pub fn logs_after(connection: &Connection, id: &JobId, seq: i64) -> StoreResult<Vec<LogLine>> {
    let mut statement = connection.prepare_cached(
        "SELECT seq, ts, message FROM job_logs WHERE job_id = ?1 AND seq > ?2 ORDER BY seq",
    )?;
    let lines = statement
        .query_map(params![id.as_str(), seq], log_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(lines)
}

/// The log lines of several jobs in one query (the ids go in as one JSON array, so the statement
/// is the same for every page and stays in the statement cache). Jobs without lines are absent.
pub fn logs_of_jobs(
    connection: &Connection,
    ids: &[&str],
) -> StoreResult<HashMap<JobId, Vec<LogLine>>> {
    let mut all: HashMap<JobId, Vec<LogLine>> = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(all);
    }
    let ids = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
    let mut statement = connection.prepare_cached(
        "SELECT job_id, seq, ts, message FROM job_logs
         WHERE job_id IN (SELECT value FROM json_each(?1)) ORDER BY job_id, seq",
    )?;
    let mut rows = statement.query(params![ids])?;
    let mut current: Option<(String, Vec<LogLine>)> = None;
    while let Some(row) = rows.next()? {
        let job_id = row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
        if current.as_ref().is_none_or(|(id, _)| id != job_id) {
            if let Some((id, lines)) = current.take()
                && let Ok(id) = JobId::parse(&id)
            {
                all.insert(id, lines);
            }
            current = Some((job_id.to_string(), Vec::with_capacity(8)));
        }
        if let Some((_, lines)) = current.as_mut() {
            lines.push(LogLine {
                seq: row.get(1)?,
                ts: row.get(2)?,
                message: row.get(3)?,
            });
        }
    }
    if let Some((id, lines)) = current
        && let Ok(id) = JobId::parse(&id)
    {
        all.insert(id, lines);
    }
    Ok(all)
}

pub fn create_job(
    connection: &mut Connection,
    id: &JobId,
    new: NewJob,
) -> StoreResult<(Job, Vec<LogLine>)> {
    let now = now_millis();
    let sort = new.sort_ms(now);
    let transaction = begin(connection)?;
    transaction.execute(
        "INSERT INTO jobs (id, url, meeting_date, sort_ms, status, created_at, updated_at, queued_at,
                           template, checkpoint, file_path, transcript_path)
         VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?5, ?5, ?6, ?7, ?8, ?9)",
        params![
            id.as_str(),
            new.url,
            new.meeting_date,
            sort,
            now,
            new.template,
            new.checkpoint.map(Stage::as_str),
            new.file_path,
            new.transcript_path
        ],
    )?;
    transaction.execute(
        "INSERT INTO job_logs (job_id, ts, message) VALUES (?1, ?2, 'Job created')",
        params![id.as_str(), now],
    )?;
    if let Some(line) = &new.origin_log {
        transaction.execute(
            "INSERT INTO job_logs (job_id, ts, message) VALUES (?1, ?2, ?3)",
            params![id.as_str(), now, line],
        )?;
    }
    let job = get_job(&transaction, id)?;
    let logs = logs_after(&transaction, id, 0)?;
    transaction.commit()?;
    Ok((job, logs))
}

pub fn all_jobs_with_logs(connection: &Connection) -> StoreResult<Vec<(Job, Vec<LogLine>)>> {
    // The jobs and the logs of the same moment.
    let connection = connection.unchecked_transaction()?;
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs ORDER BY sort_ms DESC, id DESC"
    ))?;
    let jobs = statement
        .query_map([], job_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut logs: HashMap<String, Vec<LogLine>> = HashMap::with_capacity(jobs.len());
    let mut statement =
        connection.prepare_cached("SELECT job_id, seq, ts, message FROM job_logs ORDER BY seq")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let job_id: String = row.get(0)?;
        logs.entry(job_id).or_default().push(LogLine {
            seq: row.get(1)?,
            ts: row.get(2)?,
            message: row.get(3)?,
        });
    }
    Ok(with_logs(jobs, logs))
}

pub fn job_order(connection: &Connection) -> StoreResult<Vec<JobId>> {
    let mut statement =
        connection.prepare_cached("SELECT id FROM jobs ORDER BY sort_ms DESC, id DESC")?;
    let ids = statement
        .query_map([], |row| row.get::<_, String>(0))?
        .filter_map(|id| id.ok().and_then(|id| JobId::parse(&id).ok()))
        .collect();
    Ok(ids)
}

/// The jobs of `ids` that exist, with their logs (the ids go in as one JSON array, as in
/// [`logs_of_jobs`]). The caller reads both in one transaction.
pub fn jobs_with_logs(
    connection: &Connection,
    ids: &[JobId],
) -> StoreResult<Vec<(Job, Vec<LogLine>)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = ids.iter().map(JobId::as_str).collect();
    let list = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE id IN (SELECT value FROM json_each(?1))"
    ))?;
    let jobs = statement
        .query_map(params![list], job_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let logs = logs_of_jobs(connection, &ids)?;
    Ok(with_logs(jobs, logs))
}

pub fn list_jobs(connection: &Connection, limit: usize, offset: usize) -> StoreResult<Vec<Job>> {
    let columns = JOB_COLUMNS.replacen(" summary,", " NULL,", 1);
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {columns} FROM jobs ORDER BY sort_ms DESC, id DESC LIMIT ?1 OFFSET ?2"
    ))?;
    let jobs = statement
        .query_map(params![limit as i64, offset as i64], job_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(jobs)
}

pub fn count_by_status(connection: &Connection) -> StoreResult<Vec<(String, u64)>> {
    let mut statement = connection
        .prepare_cached("SELECT status, COUNT(*) FROM jobs GROUP BY status ORDER BY status")?;
    let counts = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(counts)
}

pub fn count_jobs(connection: &Connection) -> StoreResult<u64> {
    Ok(connection.query_row("SELECT COUNT(*) FROM jobs", [], |row| row.get::<_, i64>(0))? as u64)
}

/// The queued jobs in the order `claim_next` takes them.
pub fn queue_order(connection: &Connection) -> StoreResult<Vec<JobId>> {
    let mut statement = connection.prepare_cached(
        "SELECT id FROM jobs WHERE status = 'queued' ORDER BY queued_at, created_at",
    )?;
    let ids = statement
        .query_map([], |row| row.get::<_, String>(0))?
        .filter_map(|id| id.ok().and_then(|id| JobId::parse(&id).ok()))
        .collect();
    Ok(ids)
}

pub fn append_log(
    connection: &mut Connection,
    id: &JobId,
    message: String,
    holder: Option<LeaseOwner>,
) -> StoreResult<LogLine> {
    if holder.is_some() {
        // The check and the line in one transaction: no takeover in between.
        let transaction = begin(connection)?;
        check_holder(&transaction, id, holder.as_ref())?;
        let line = insert_log(&transaction, id, message)?;
        transaction.commit()?;
        return Ok(line);
    }
    insert_log(connection, id, message)
}

fn insert_log(connection: &Connection, id: &JobId, message: String) -> StoreResult<LogLine> {
    let ts = now_millis();
    let mut statement = connection
        .prepare_cached("INSERT INTO job_logs (job_id, ts, message) VALUES (?1, ?2, ?3)")?;
    statement
        .execute(params![id.as_str(), ts, message])
        .map_err(|error| {
            // The foreign key refuses lines for a job that is gone.
            if matches!(
                error.sqlite_error_code(),
                Some(rusqlite::ErrorCode::ConstraintViolation)
            ) {
                StoreError::NotFound
            } else {
                error.into()
            }
        })?;
    Ok(LogLine {
        seq: connection.last_insert_rowid(),
        ts,
        message,
    })
}

/// A column's value as SQLite binds it.
pub(super) fn value(cell: Cell) -> Value {
    match cell {
        Cell::Text(Some(text)) => Value::Text(text),
        Cell::Integer(Some(number)) => Value::Integer(number),
        Cell::Text(None) | Cell::Integer(None) => Value::Null,
    }
}

/// Applies `changes` (and `lease`) in one statement with `updated_at`; NotFound when no such
/// job.
fn update_job(
    connection: &Connection,
    id: &JobId,
    changes: &Changes,
    lease: &LeaseChange,
) -> StoreResult<()> {
    let now = now_millis();
    let columns = update_columns(changes, lease, now);
    let sql = update_sql(&columns, '?');
    let values = update_values(columns, now, id).into_iter().map(value);
    let updated = connection
        .prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(values))?;
    if updated == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// The change, its log line and its webhook event in one transaction.
pub fn apply_update(
    connection: &mut Connection,
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
    let transaction = begin(connection)?;
    check_holder(&transaction, id, holder.as_ref())?;
    let before = if from.is_some() || changes.removal().is_some() {
        Some(get_job(&transaction, id)?)
    } else {
        None
    };
    if let (Some(from), Some(before)) = (from, &before)
        && !from.contains(&before.status)
    {
        return Ok(None);
    }
    update_job(&transaction, id, &changes, &lease)?;
    if let Some(names) = changes.speaker_names() {
        super::passages::rename_speakers(&transaction, id, names)?;
    }
    let ts = now_millis();
    let line = match log {
        Some(message) => {
            transaction.execute(
                "INSERT INTO job_logs (job_id, ts, message) VALUES (?1, ?2, ?3)",
                params![id.as_str(), ts, message],
            )?;
            Some(LogLine {
                seq: transaction.last_insert_rowid(),
                ts,
                message,
            })
        }
        None => None,
    };
    let job = get_job(&transaction, id)?;
    if let Some(event) = event {
        super::outbox::insert(&transaction, event(&job), ts)?;
    }
    transaction.commit()?;
    Ok(Some(Updated {
        before: before.filter(|_| changes.removal().is_some()),
        job,
        line,
    }))
}

/// The oldest job nobody holds, of those `condition` picks.
fn oldest_free(
    transaction: &Transaction<'_>,
    condition: &str,
    now: i64,
) -> StoreResult<Option<JobId>> {
    let next: Option<String> = transaction
        .prepare_cached(&format!(
            "SELECT id FROM jobs WHERE {condition} AND (lease_until IS NULL OR lease_until <= ?1)
             ORDER BY queued_at, created_at LIMIT 1"
        ))?
        .query_row(params![now], |row| row.get(0))
        .optional()?;
    next.map(|id| {
        JobId::parse(&id)
            .map_err(|_| StoreError::Unavailable(format!("a stored job id is not valid: {id:?}")))
    })
    .transpose()
}

pub fn claim_next(
    connection: &mut Connection,
    owner: &LeaseOwner,
    lease: Duration,
) -> StoreResult<Option<Claimed>> {
    let transaction = begin(connection)?;
    let now = now_millis();
    // A job whose worker stopped renewing its lease has waited since before anything queued.
    let (id, taken_over) = match oldest_free(&transaction, &format!("status IN {RUNNING}"), now)? {
        Some(id) => (id, true),
        None => match oldest_free(&transaction, "status = 'queued'", now)? {
            Some(id) => (id, false),
            None => return Ok(None),
        },
    };
    let job = get_job(&transaction, &id)?;
    let status = job
        .next_stage()
        .map(Stage::status)
        .unwrap_or(Status::Summarizing);
    transaction.execute(
        "UPDATE jobs SET status = ?2, attempts = attempts + 1, error = NULL, error_kind = NULL,
                         updated_at = ?3,
                         lease_owner = ?4, lease_until = ?5
         WHERE id = ?1",
        params![
            id.as_str(),
            status.as_str(),
            now,
            owner.as_str(),
            lease_end(lease)
        ],
    )?;
    let job = get_job(&transaction, &id)?;
    transaction.commit()?;
    Ok(Some(Claimed { job, taken_over }))
}

pub fn renew_lease(
    connection: &mut Connection,
    id: &JobId,
    owner: &LeaseOwner,
    lease: Duration,
) -> StoreResult<bool> {
    // Still in the owner's name, even if it ran out: nobody has taken the job over yet.
    let renewed = connection
        .prepare_cached("UPDATE jobs SET lease_until = ?3 WHERE id = ?1 AND lease_owner = ?2")?
        .execute(params![id.as_str(), owner.as_str(), lease_end(lease)])?;
    Ok(renewed == 1)
}

pub fn next_lease_expiry(connection: &Connection) -> StoreResult<Option<i64>> {
    Ok(connection
        .prepare_cached("SELECT MIN(lease_until) FROM jobs WHERE lease_until > ?1")?
        .query_row(params![now_millis()], |row| row.get(0))?)
}

pub fn leased_jobs(connection: &Connection) -> StoreResult<Vec<JobId>> {
    let mut statement = connection.prepare_cached("SELECT id FROM jobs WHERE lease_until > ?1")?;
    let ids = statement
        .query_map(params![now_millis()], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(ids.iter().filter_map(|id| JobId::parse(id).ok()).collect())
}

pub fn requeue_interrupted(connection: &mut Connection) -> StoreResult<usize> {
    let now = now_millis();
    Ok(connection.execute(
        &format!(
            "UPDATE jobs SET status = 'queued', queued_at = ?1, updated_at = ?1,
                             lease_owner = NULL, lease_until = NULL
             WHERE status IN {RUNNING} AND (lease_until IS NULL OR lease_until <= ?1)"
        ),
        params![now],
    )?)
}

pub fn delete_job(connection: &mut Connection, id: &JobId) -> StoreResult<Job> {
    let transaction = begin(connection)?;
    let job = get_job(&transaction, id)?;
    transaction.execute("DELETE FROM jobs WHERE id = ?1", params![id.as_str()])?;
    transaction.commit()?;
    Ok(job)
}

pub fn meta(connection: &Connection, key: &str) -> StoreResult<Option<String>> {
    Ok(connection
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            params![key],
            |row| row.get(0),
        )
        .optional()?)
}

/// The value of `key`, stored as `value` first when there is none.
pub fn meta_or_insert(connection: &mut Connection, key: &str, value: &str) -> StoreResult<String> {
    connection.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
        params![key, value],
    )?;
    Ok(connection.query_row(
        "SELECT value FROM meta WHERE key = ?1",
        params![key],
        |row| row.get(0),
    )?)
}

pub fn import_jobs(
    connection: &mut Connection,
    jobs: &[ImportedJob],
    marker: Option<&(&'static str, String)>,
) -> StoreResult<()> {
    let transaction = begin(connection)?;
    {
        let mut insert_job = transaction.prepare(
            "INSERT OR IGNORE INTO jobs (id, url, resolved_url, meeting_date, sort_ms, status,
                title, summary, summary_path, transcript_path, file_path, created_at,
                updated_at, error, checkpoint, attempts, queued_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, 0, ?13)",
        )?;
        let mut insert_log = transaction
            .prepare("INSERT INTO job_logs (job_id, ts, message) VALUES (?1, ?2, ?3)")?;
        for imported in jobs {
            let job = &imported.job;
            let cells = whole_job_cells(job, imported.sort_ms);
            let inserted =
                insert_job.execute(rusqlite::params_from_iter(cells.into_iter().map(value)))?;
            if inserted == 0 {
                continue;
            }
            if let Some(text) = &imported.transcript_text {
                transaction.execute(
                    "UPDATE job_search SET transcript = ?1 WHERE rowid = last_insert_rowid()",
                    params![text],
                )?;
            }
            for (ts, message) in &imported.logs {
                insert_log.execute(params![job.id.as_str(), ts, message])?;
            }
            insert_log.execute(params![
                job.id.as_str(),
                now_millis(),
                "Imported from the previous FocusFlow's jobs.json"
            ])?;
        }
    }
    if let Some((key, value)) = marker {
        transaction.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            params![key, value],
        )?;
    }
    transaction.commit()?;
    Ok(())
}

/// See [`crate::store::Backend::insert_migrated`].
pub fn insert_migrated(
    connection: &mut Connection,
    migrated: &crate::store::migrate::MigratedJob,
) -> StoreResult<bool> {
    let job = &migrated.job;
    let transaction = begin(connection)?;
    let mut cells = whole_job_cells(job, migrated.sort_ms);
    cells.extend(migrated_job_cells(job));
    cells.push(Cell::Text(
        job.error_kind.map(|kind| kind.as_str().to_string()),
    ));
    let inserted = transaction.execute(
        "INSERT OR IGNORE INTO jobs (id, url, resolved_url, meeting_date, sort_ms, status,
            title, summary, summary_path, transcript_path, file_path, created_at, updated_at,
            error, checkpoint, attempts, progress_bytes, progress_total, transcription_ref,
            queued_at, speakers, template, error_kind)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
            ?18, ?19, ?20, ?21, ?22, ?23)",
        rusqlite::params_from_iter(cells.into_iter().map(value)),
    )?;
    if inserted == 0 {
        return Ok(false);
    }
    if let Some(text) = &migrated.transcript_text {
        transaction.execute(
            "UPDATE job_search SET transcript = ?1 WHERE rowid = last_insert_rowid()",
            params![text],
        )?;
    }
    {
        let mut insert_log = transaction
            .prepare("INSERT INTO job_logs (job_id, ts, message) VALUES (?1, ?2, ?3)")?;
        for line in &migrated.logs {
            insert_log.execute(params![job.id.as_str(), line.ts, line.message])?;
        }
    }
    transaction.commit()?;
    Ok(true)
}
