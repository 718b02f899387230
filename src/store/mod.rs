//! The store: jobs and their logs in SQLite, artifacts as files beside it.
//!
//! SQL lives here and nowhere else. Every call runs on the blocking pool, so the async runtime
//! never waits on the disk. One connection writes; a few more read, which WAL lets run alongside.

pub mod backup;
mod files;
pub mod legacy;
mod outbox;
pub mod search;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params};
use tokio::sync::broadcast;

pub use files::{Artifacts, write_atomic};
pub use outbox::{Delivery, EventMaker, NewDelivery};
pub use search::{Cursor, Found, JobFilter, JobPage};

use crate::jobs::{Job, JobId, LogLine, Progress, Stage, Status, meeting_date_millis, now_millis};

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0003_search.sql"),
    // Applied after 0003, which databases may already have (user_version counts the entries).
    include_str!("../../migrations/0002_speakers_and_templates.sql"),
    include_str!("../../migrations/0004_webhook_outbox.sql"),
];
const READERS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("job not found")]
    NotFound,
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
    #[error("the store's worker thread failed: {0}")]
    Join(String),
    #[error("the database is newer than this program (schema version {0}); upgrade FocusFlow")]
    TooNew(i64),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Something that happened to a job, for live views (log streams, pages).
#[derive(Debug, Clone)]
pub enum JobEvent {
    Log { job_id: JobId, line: LogLine },
    Status { job_id: JobId, status: Status },
    Deleted { job_id: JobId },
}

impl JobEvent {
    pub fn job_id(&self) -> &JobId {
        match self {
            JobEvent::Log { job_id, .. }
            | JobEvent::Status { job_id, .. }
            | JobEvent::Deleted { job_id } => job_id,
        }
    }
}

/// What a new job starts with.
#[derive(Debug, Clone, Default)]
pub struct NewJob {
    pub url: String,
    pub meeting_date: Option<String>,
    /// The prompt template chosen for the job (a name checked against the prompts folder).
    pub template: Option<String>,
    /// Stages already done at creation: an upload starts after `download`, a transcript
    /// brought along starts after `transcribe`.
    pub checkpoint: Option<Stage>,
    pub file_path: Option<String>,
    pub transcript_path: Option<String>,
    /// A log line after "Job created" that says where the job came from.
    pub origin_log: Option<String>,
}

/// A set of column changes, applied in one statement with `updated_at`.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    sets: Vec<(&'static str, Value)>,
    status: Option<Status>,
    remove_artifacts: bool,
    /// With `remove_artifacts`: the inputs a job brought along (for stages up to this one)
    /// are kept.
    keep_inputs_of: Option<Stage>,
}

fn text(value: Option<String>) -> Value {
    value.map(Value::Text).unwrap_or(Value::Null)
}

impl Changes {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn status(mut self, status: Status) -> Self {
        self.sets
            .push(("status", Value::Text(status.as_str().into())));
        if status == Status::Queued {
            self.sets.push(("queued_at", Value::Integer(now_millis())));
        }
        self.status = Some(status);
        self
    }

    pub fn error(mut self, error: Option<String>) -> Self {
        self.sets.push(("error", text(error)));
        self
    }

    pub fn checkpoint(mut self, stage: Option<Stage>) -> Self {
        self.sets
            .push(("checkpoint", text(stage.map(|s| s.as_str().to_string()))));
        self
    }

    pub fn resolved_url(mut self, url: Option<String>) -> Self {
        self.sets.push(("resolved_url", text(url)));
        self
    }

    /// Sets the meeting date and, with it, the job's place in the list.
    pub fn meeting_date(mut self, date: Option<String>, created_at: i64) -> Self {
        let sort = date
            .as_deref()
            .and_then(meeting_date_millis)
            .unwrap_or(created_at);
        self.sets.push(("meeting_date", text(date)));
        self.sets.push(("sort_ms", Value::Integer(sort)));
        self
    }

    pub fn title(mut self, title: Option<String>) -> Self {
        self.sets.push(("title", text(title)));
        self
    }

    pub fn summary(mut self, summary: Option<String>, path: Option<String>) -> Self {
        self.sets.push(("summary", text(summary)));
        self.sets.push(("summary_path", text(path)));
        self
    }

    pub fn summary_text(mut self, summary: String) -> Self {
        self.sets.push(("summary", Value::Text(summary)));
        self
    }

    pub fn transcript_path(mut self, path: Option<String>) -> Self {
        self.sets.push(("transcript_path", text(path)));
        self
    }

    pub fn file_path(mut self, path: Option<String>) -> Self {
        self.sets.push(("file_path", text(path)));
        self
    }

    pub fn progress(mut self, progress: Option<Progress>) -> Self {
        let (bytes, total) = match progress {
            Some(p) => (
                Value::Integer(p.bytes as i64),
                p.total
                    .map(|t| Value::Integer(t as i64))
                    .unwrap_or(Value::Null),
            ),
            None => (Value::Null, Value::Null),
        };
        self.sets.push(("progress_bytes", bytes));
        self.sets.push(("progress_total", total));
        self
    }

    /// The names given to the transcript's speakers; an empty map clears them.
    pub fn speakers(mut self, speakers: &crate::jobs::SpeakerNames) -> Self {
        let value = if speakers.is_empty() {
            Value::Null
        } else {
            Value::Text(serde_json::to_string(speakers).unwrap_or_default())
        };
        self.sets.push(("speakers", value));
        self
    }

    pub fn transcription_ref(mut self, reference: Option<String>) -> Self {
        self.sets.push(("transcription_ref", text(reference)));
        self
    }

    /// Deletes the job's artifact files in the same step (a full retry).
    pub fn remove_artifacts(mut self) -> Self {
        self.remove_artifacts = true;
        self
    }

    /// Deletes what the job's stages made, but keeps what it was created with (an uploaded
    /// recording for `Download`, a transcript brought along for `Transcribe`).
    pub fn remove_artifacts_after(mut self, kept: Stage) -> Self {
        self.remove_artifacts = true;
        self.keep_inputs_of = Some(kept);
        self
    }

    pub fn reset_attempts(mut self) -> Self {
        self.sets.push(("attempts", Value::Integer(0)));
        self
    }
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// Counts write transactions: whatever was read while it held a value describes the store
    /// as it was then (see [`Store::generation`]).
    generation: AtomicU64,
    artifacts: Artifacts,
    events: broadcast::Sender<JobEvent>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("data_dir", &self.inner.artifacts.data_dir())
            .finish()
    }
}

const JOB_COLUMNS: &str = "id, url, resolved_url, meeting_date, status, title, summary, \
    summary_path, transcript_path, file_path, created_at, updated_at, error, checkpoint, \
    attempts, progress_bytes, progress_total, transcription_ref, speakers, template";

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<Job> {
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
    })
}

fn log_from_row(row: &Row<'_>) -> rusqlite::Result<LogLine> {
    Ok(LogLine {
        seq: row.get(0)?,
        ts: row.get(1)?,
        message: row.get(2)?,
    })
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(std::time::Duration::from_secs(10))?;
    connection.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;",
    )?;
    Ok(connection)
}

fn migrate(connection: &mut Connection) -> StoreResult<()> {
    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > MIGRATIONS.len() as i64 {
        return Err(StoreError::TooNew(version));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(sql)?;
        transaction.pragma_update(None, "user_version", (index + 1) as i64)?;
        transaction.commit()?;
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir`, with its artifact folders.
    pub fn open(data_dir: &Path) -> StoreResult<Self> {
        let artifacts = Artifacts::new(data_dir.to_path_buf());
        artifacts.create_dirs()?;
        let path = data_dir.join("focusflow.db");
        let mut writer = open_connection(&path)?;
        migrate(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| open_connection(&path).map(Mutex::new))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let (events, _) = broadcast::channel(4096);
        Ok(Self {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
                generation: AtomicU64::new(0),
                artifacts,
                events,
            }),
        })
    }

    pub fn artifacts(&self) -> &Artifacts {
        &self.inner.artifacts
    }

    pub fn data_dir(&self) -> &Path {
        self.inner.artifacts.data_dir()
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir().join("focusflow.db")
    }

    /// Live events; subscribe before reading the state they update, so none is missed.
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.inner.events.subscribe()
    }

    fn announce(&self, event: JobEvent) {
        // Nobody listening is fine.
        let _ = self.inner.events.send(event);
    }

    /// A number that changes whenever the database may have changed. Read it *before* reading
    /// the store: an answer built from those reads may then be reused for as long as the number
    /// stays the same (it can only be newer than the number says, never older).
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
            let result = work(&mut connection);
            // After the commit (or the rollback: counting one too many only costs a cache miss).
            inner.generation.fetch_add(1, Ordering::Release);
            result
        })
        .await
        .map_err(|error| StoreError::Join(error.to_string()))?
    }

    async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let index = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            let connection = inner.readers[index]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            work(&connection)
        })
        .await
        .map_err(|error| StoreError::Join(error.to_string()))?
    }

    /// Inserts a queued job with its first log line, in one transaction. Returns both as
    /// written, before any worker can have touched the job.
    pub async fn create_job(&self, new: NewJob) -> StoreResult<(Job, Vec<LogLine>)> {
        self.create_job_with_id(JobId::generate(), new).await
    }

    /// As [`Self::create_job`], under an id chosen beforehand (an upload's files are named
    /// after the job before the job exists).
    pub async fn create_job_with_id(
        &self,
        id: JobId,
        new: NewJob,
    ) -> StoreResult<(Job, Vec<LogLine>)> {
        let now = now_millis();
        let sort = new
            .meeting_date
            .as_deref()
            .and_then(meeting_date_millis)
            .unwrap_or(now);
        let job_id = id.clone();
        let created = self
            .write(move |connection| {
                let transaction = connection.transaction()?;
                transaction.execute(
                    "INSERT INTO jobs (id, url, meeting_date, sort_ms, status, created_at, updated_at, queued_at,
                                       template, checkpoint, file_path, transcript_path)
                     VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?5, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        job_id.as_str(),
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
                    params![job_id.as_str(), now],
                )?;
                if let Some(line) = &new.origin_log {
                    transaction.execute(
                        "INSERT INTO job_logs (job_id, ts, message) VALUES (?1, ?2, ?3)",
                        params![job_id.as_str(), now, line],
                    )?;
                }
                let job = get_job(&transaction, &job_id)?;
                let logs = logs_after(&transaction, &job_id, 0)?;
                transaction.commit()?;
                Ok((job, logs))
            })
            .await?;
        self.announce(JobEvent::Status {
            job_id: id,
            status: Status::Queued,
        });
        Ok(created)
    }

    pub async fn job(&self, id: &JobId) -> StoreResult<Job> {
        let id = id.clone();
        self.read(move |connection| get_job(connection, &id)).await
    }

    pub async fn job_with_logs(&self, id: &JobId) -> StoreResult<(Job, Vec<LogLine>)> {
        let id = id.clone();
        self.read(move |connection| {
            let job = get_job(connection, &id)?;
            let logs = logs_after(connection, &id, 0)?;
            Ok((job, logs))
        })
        .await
    }

    /// Every job, newest meeting first, each with its logs.
    pub async fn all_jobs_with_logs(&self) -> StoreResult<Vec<(Job, Vec<LogLine>)>> {
        self.read(|connection| {
            // The jobs and the logs of the same moment.
            let connection = connection.unchecked_transaction()?;
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs ORDER BY sort_ms DESC, id DESC"
            ))?;
            let jobs = statement
                .query_map([], job_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut logs: std::collections::HashMap<String, Vec<LogLine>> =
                std::collections::HashMap::with_capacity(jobs.len());
            let mut statement = connection
                .prepare_cached("SELECT job_id, seq, ts, message FROM job_logs ORDER BY seq")?;
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                let job_id: String = row.get(0)?;
                logs.entry(job_id).or_default().push(LogLine {
                    seq: row.get(1)?,
                    ts: row.get(2)?,
                    message: row.get(3)?,
                });
            }
            Ok(jobs
                .into_iter()
                .map(|job| {
                    let lines = logs.remove(job.id.as_str()).unwrap_or_default();
                    (job, lines)
                })
                .collect())
        })
        .await
    }

    /// A page of jobs, newest meeting first, without logs and without their summary text
    /// (`summary` is None; `summary_path` says whether there is one): the list shows neither,
    /// and copying a page of summaries out of SQLite was a good part of the list page's cost.
    pub async fn list_jobs(&self, limit: usize, offset: usize) -> StoreResult<Vec<Job>> {
        self.read(move |connection| {
            let columns = JOB_COLUMNS.replacen(" summary,", " NULL,", 1);
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {columns} FROM jobs ORDER BY sort_ms DESC, id DESC LIMIT ?1 OFFSET ?2"
            ))?;
            let jobs = statement
                .query_map(params![limit as i64, offset as i64], job_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(jobs)
        })
        .await
    }

    /// How many jobs have each status (statuses with none are left out).
    /// The queued jobs in the order the worker takes them (the order of `claim_next`).
    pub async fn queue_order(&self) -> StoreResult<Vec<JobId>> {
        self.read(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT id FROM jobs WHERE status = 'queued' ORDER BY queued_at, created_at",
            )?;
            let ids = statement
                .query_map([], |row| row.get::<_, String>(0))?
                .filter_map(|id| id.ok().and_then(|id| JobId::parse(&id).ok()))
                .collect();
            Ok(ids)
        })
        .await
    }

    pub async fn count_by_status(&self) -> StoreResult<Vec<(String, u64)>> {
        self.read(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT status, COUNT(*) FROM jobs GROUP BY status ORDER BY status",
            )?;
            let counts = statement
                .query_map([], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(counts)
        })
        .await
    }

    pub async fn count_jobs(&self) -> StoreResult<u64> {
        self.read(|connection| {
            Ok(
                connection.query_row("SELECT COUNT(*) FROM jobs", [], |row| row.get::<_, i64>(0))?
                    as u64,
            )
        })
        .await
    }

    /// Log lines of a job after position `seq` (0 for all).
    pub async fn logs_after(&self, id: &JobId, seq: i64) -> StoreResult<Vec<LogLine>> {
        let id = id.clone();
        self.read(move |connection| logs_after(connection, &id, seq))
            .await
    }

    pub async fn append_log(&self, id: &JobId, message: impl Into<String>) -> StoreResult<LogLine> {
        let job_id = id.clone();
        let message = message.into();
        let line = self
            .write(move |connection| {
                let ts = now_millis();
                let mut statement = connection.prepare_cached(
                    "INSERT INTO job_logs (job_id, ts, message) VALUES (?1, ?2, ?3)",
                )?;
                statement
                    .execute(params![job_id.as_str(), ts, message])
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
            })
            .await?;
        self.announce(JobEvent::Log {
            job_id: id.clone(),
            line: line.clone(),
        });
        Ok(line)
    }

    /// Applies `changes` to a job and returns it as it is now.
    pub async fn update(&self, id: &JobId, changes: Changes) -> StoreResult<Job> {
        let job_id = id.clone();
        let status = changes.status;
        let job = self
            .write(move |connection| {
                update_job(connection, &job_id, &changes)?;
                get_job(connection, &job_id)
            })
            .await?;
        if let Some(status) = status {
            self.announce(JobEvent::Status {
                job_id: id.clone(),
                status,
            });
        }
        Ok(job)
    }

    /// Applies `changes` and appends a log line in one transaction: a crash leaves both or
    /// neither (a job never says "completed" in its log without being completed).
    pub async fn update_with_log(
        &self,
        id: &JobId,
        changes: Changes,
        message: impl Into<String>,
    ) -> StoreResult<Job> {
        self.update_with_log_and_event(id, changes, message, None)
            .await
    }

    /// [`Store::update_with_log`], and in the same transaction the webhook event that `event`
    /// makes of the job as changed: the job is finished and its event recorded, or neither.
    pub async fn update_with_log_and_event(
        &self,
        id: &JobId,
        changes: Changes,
        message: impl Into<String>,
        event: Option<outbox::EventMaker>,
    ) -> StoreResult<Job> {
        let job_id = id.clone();
        let status = changes.status;
        let message = message.into();
        let (job, line) = self
            .write(move |connection| {
                let transaction = connection.transaction()?;
                update_job(&transaction, &job_id, &changes)?;
                let ts = now_millis();
                transaction.execute(
                    "INSERT INTO job_logs (job_id, ts, message) VALUES (?1, ?2, ?3)",
                    params![job_id.as_str(), ts, message],
                )?;
                let line = LogLine {
                    seq: transaction.last_insert_rowid(),
                    ts,
                    message,
                };
                let job = get_job(&transaction, &job_id)?;
                if let Some(event) = event {
                    outbox::insert(&transaction, event(&job), ts)?;
                }
                transaction.commit()?;
                Ok((job, line))
            })
            .await?;
        self.announce(JobEvent::Log {
            job_id: id.clone(),
            line,
        });
        if let Some(status) = status {
            self.announce(JobEvent::Status {
                job_id: id.clone(),
                status,
            });
        }
        Ok(job)
    }

    /// Applies `changes` only while the job's status is one of `from`; None if it was not.
    /// This is how state transitions stay atomic (e.g. "retry unless running").
    pub async fn update_if(
        &self,
        id: &JobId,
        from: &'static [Status],
        changes: Changes,
    ) -> StoreResult<Option<Job>> {
        let job_id = id.clone();
        let status = changes.status;
        let artifacts = self.inner.artifacts.clone();
        let job = self
            .write(move |connection| {
                let transaction = connection.transaction()?;
                let current = get_job(&transaction, &job_id)?;
                if !from.contains(&current.status) {
                    return Ok(None);
                }
                update_job(&transaction, &job_id, &changes)?;
                let job = get_job(&transaction, &job_id)?;
                if changes.remove_artifacts {
                    // Under the writer lock: no worker can claim the job until this commits.
                    match changes.keep_inputs_of {
                        None => artifacts.remove_all(&current),
                        Some(kept) => artifacts.remove_after(&current, kept),
                    }
                }
                transaction.commit()?;
                Ok(Some(job))
            })
            .await?;
        if let (Some(status), Some(_)) = (status, &job) {
            self.announce(JobEvent::Status {
                job_id: id.clone(),
                status,
            });
        }
        Ok(job)
    }

    /// Takes the job that has waited longest and marks it as started by a worker.
    pub async fn claim_next(&self) -> StoreResult<Option<Job>> {
        let job = self
            .write(|connection| {
                let transaction = connection.transaction()?;
                let next: Option<String> = transaction
                    .query_row(
                        "SELECT id FROM jobs WHERE status = 'queued' ORDER BY queued_at, created_at LIMIT 1",
                        [],
                        |row| row.get(0),
                    )
                    .optional()?;
                let Some(id) = next else {
                    return Ok(None);
                };
                let id = JobId::parse(&id).map_err(|_| StoreError::NotFound)?;
                let job = get_job(&transaction, &id)?;
                let status = job.next_stage().map(Stage::status).unwrap_or(Status::Summarizing);
                transaction.execute(
                    "UPDATE jobs SET status = ?2, attempts = attempts + 1, error = NULL, updated_at = ?3 WHERE id = ?1",
                    params![id.as_str(), status.as_str(), now_millis()],
                )?;
                let job = get_job(&transaction, &id)?;
                transaction.commit()?;
                Ok(Some(job))
            })
            .await?;
        if let Some(job) = &job {
            self.announce(JobEvent::Status {
                job_id: job.id.clone(),
                status: job.status,
            });
        }
        Ok(job)
    }

    /// At start-up: every job a previous process left mid-stage goes back to the queue,
    /// to resume from its checkpoint. Returns how many.
    pub async fn requeue_interrupted(&self) -> StoreResult<usize> {
        self.write(|connection| {
            let now = now_millis();
            Ok(connection.execute(
                "UPDATE jobs SET status = 'queued', queued_at = ?1, updated_at = ?1
                 WHERE status IN ('resolving', 'downloading', 'transcribing', 'summarizing')",
                params![now],
            )?)
        })
        .await
    }

    /// Removes the job, its logs and every artifact file it has.
    pub async fn delete_job(&self, id: &JobId) -> StoreResult<()> {
        let job_id = id.clone();
        let artifacts = self.inner.artifacts.clone();
        self.write(move |connection| {
            let job = get_job(connection, &job_id)?;
            let deleted =
                connection.execute("DELETE FROM jobs WHERE id = ?1", params![job_id.as_str()])?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            artifacts.remove_all(&job);
            Ok(())
        })
        .await?;
        self.announce(JobEvent::Deleted { job_id: id.clone() });
        Ok(())
    }

    pub async fn meta(&self, key: &'static str) -> StoreResult<Option<String>> {
        self.read(move |connection| {
            Ok(connection
                .query_row(
                    "SELECT value FROM meta WHERE key = ?1",
                    params![key],
                    |row| row.get(0),
                )
                .optional()?)
        })
        .await
    }

    /// Runs `work` with the writer connection inside one transaction (used by the importer).
    pub(crate) async fn in_transaction<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.write(move |connection| {
            let transaction = connection.transaction()?;
            let result = work(&transaction)?;
            transaction.commit()?;
            Ok(result)
        })
        .await
    }
}

fn get_job(connection: &Connection, id: &JobId) -> StoreResult<Job> {
    let mut statement =
        connection.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))?;
    statement
        .query_row(params![id.as_str()], job_from_row)
        .optional()?
        .ok_or(StoreError::NotFound)
}

fn logs_after(connection: &Connection, id: &JobId, seq: i64) -> StoreResult<Vec<LogLine>> {
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
fn logs_of_jobs(
    connection: &Connection,
    ids: &[&str],
) -> StoreResult<std::collections::HashMap<JobId, Vec<LogLine>>> {
    let mut all: std::collections::HashMap<JobId, Vec<LogLine>> =
        std::collections::HashMap::with_capacity(ids.len());
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

fn update_job(connection: &Connection, id: &JobId, changes: &Changes) -> StoreResult<()> {
    let mut sql = String::from("UPDATE jobs SET updated_at = ?1");
    let mut values: Vec<Value> = vec![Value::Integer(now_millis())];
    for (column, value) in &changes.sets {
        values.push(value.clone());
        sql.push_str(&format!(", {column} = ?{}", values.len()));
    }
    values.push(Value::Text(id.as_str().to_string()));
    sql.push_str(&format!(" WHERE id = ?{}", values.len()));
    let updated = connection
        .prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(values))?;
    if updated == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_survives_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (job, _) = store
            .create_job(NewJob {
                url: "https://example.com/a.mp3".into(),
                meeting_date: Some("2025-09-25T20:05:39.000Z".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        store.append_log(&job.id, "hello").await.unwrap();
        store
            .update(&job.id, Changes::new().checkpoint(Some(Stage::Download)))
            .await
            .unwrap();
        drop(store);

        let store = Store::open(dir.path()).unwrap();
        let (again, logs) = store.job_with_logs(&job.id).await.unwrap();
        assert_eq!(logs[0].message, "Job created");
        let logs = &logs[1..];
        assert_eq!(again.url, job.url);
        assert_eq!(again.checkpoint, Some(Stage::Download));
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].message, "hello");
    }

    #[tokio::test]
    async fn a_database_at_the_search_migration_gets_speakers_and_templates() {
        let dir = tempfile::tempdir().unwrap();
        {
            // What a build without migration 0002 left: 0001 and 0003, user_version 2.
            let mut connection = open_connection(&dir.path().join("focusflow.db")).unwrap();
            let transaction = connection.transaction().unwrap();
            transaction.execute_batch(MIGRATIONS[0]).unwrap();
            transaction
                .execute_batch(include_str!("../../migrations/0003_search.sql"))
                .unwrap();
            transaction.pragma_update(None, "user_version", 2).unwrap();
            transaction.commit().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let (job, _) = store
            .create_job(NewJob {
                url: "upload:a.mp3".into(),
                template: Some("one_on_one".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let names: crate::jobs::SpeakerNames =
            [("A".to_string(), "Ana".to_string())].into_iter().collect();
        let job = store
            .update(&job.id, Changes::new().speakers(&names))
            .await
            .unwrap();
        assert_eq!(job.speakers, names);
        assert_eq!(job.template.as_deref(), Some("one_on_one"));
        assert_eq!(job.brought_input(), Some(Stage::Download));
    }

    #[tokio::test]
    async fn claim_takes_the_oldest_and_counts_the_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (first, _) = store
            .create_job(NewJob {
                url: "https://a.example/1".into(),
                meeting_date: None,
                ..Default::default()
            })
            .await
            .unwrap();
        let _second = store
            .create_job(NewJob {
                url: "https://a.example/2".into(),
                meeting_date: None,
                ..Default::default()
            })
            .await
            .unwrap();
        let claimed = store.claim_next().await.unwrap().unwrap();
        assert_eq!(claimed.id, first.id);
        assert_eq!(claimed.status, Status::Resolving);
        assert_eq!(claimed.attempts, 1);
        assert_eq!(store.requeue_interrupted().await.unwrap(), 1);
        assert_eq!(store.job(&first.id).await.unwrap().status, Status::Queued);
    }

    #[tokio::test]
    async fn a_page_comes_with_the_logs_of_its_jobs_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut ids = Vec::new();
        for n in 0..3 {
            let (job, _) = store
                .create_job(NewJob {
                    url: format!("https://a.example/{n}"),
                    ..Default::default()
                })
                .await
                .unwrap();
            ids.push(job.id);
        }
        // Interleaved, as jobs running side by side write them.
        for round in 0..3 {
            for id in &ids[..2] {
                store.append_log(id, format!("line {round}")).await.unwrap();
            }
        }
        let (page, logs) = store
            .find_jobs_with_logs(JobFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.jobs.len(), 3);
        for id in &ids[..2] {
            let messages: Vec<&str> = logs[id].iter().map(|line| line.message.as_str()).collect();
            assert_eq!(messages, ["Job created", "line 0", "line 1", "line 2"]);
        }
        assert_eq!(logs[&ids[2]].len(), 1);
        store
            .update(&ids[0], Changes::new().summary_text("# Notes".into()))
            .await
            .unwrap();
        let listed = store.list_jobs(10, 0).await.unwrap();
        assert_eq!(listed.len(), 3);
        assert!(
            listed.iter().all(|job| job.summary.is_none()),
            "the list leaves summaries out"
        );
        assert_eq!(
            store.job(&ids[0]).await.unwrap().summary.as_deref(),
            Some("# Notes")
        );
        let (_, none) = store
            .find_jobs_with_logs(JobFilter {
                limit: 10,
                query: Some("nothing matches this".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(none.is_empty());
    }

    #[tokio::test]
    async fn update_if_refuses_the_wrong_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (job, _) = store
            .create_job(NewJob {
                url: "https://a.example/1".into(),
                meeting_date: None,
                ..Default::default()
            })
            .await
            .unwrap();
        let refused = store
            .update_if(
                &job.id,
                &[Status::Error],
                Changes::new().status(Status::Completed),
            )
            .await
            .unwrap();
        assert!(refused.is_none());
        let missing = JobId::parse("nope").unwrap();
        assert!(matches!(
            store.job(&missing).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.append_log(&missing, "x").await,
            Err(StoreError::NotFound)
        ));
    }
}
