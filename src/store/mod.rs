//! The store: jobs, their logs and webhook events in a database, artifacts as files beside it.
//!
//! Callers hold a [`Store`], a cheap-to-clone handle that takes and returns domain types and
//! fails with [`StoreError`] only: no driver type, transaction or SQL value crosses it. Behind it
//! sits one [`Backend`] per database, each in a module of its own (`sqlite/`, and `postgres/`
//! when `DATABASE_URL` is set), and all SQL lives in those modules.
//!
//! The handle wraps an `Arc<dyn Backend>` rather than an enum over the backends: a backend is a
//! module that implements one trait, added without a forwarding `match` in each of thirty
//! methods, and what every backend must do the same way — announce an event only after its
//! change has committed, remove artifact files only after the change that stops pointing at
//! them has committed — is written once, here, instead of in each. A boxed future per call
//! costs nothing beside a database round trip.
//!
//! Live events and the write counter the listing caches key on are behind [`Events`], which a
//! backend shared by several processes can replace.

mod backend;
pub mod backup;
mod changes;
mod columns;
mod events;
mod files;
mod held;
mod leases;
pub mod legacy;
pub mod migrate;
mod outbox;
pub mod passages;
mod postgres;
pub mod search;
pub mod sessions;
mod sqlite;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

pub use backend::{Backend, Exclusive, Update, Updated};
pub use changes::{Changes, NewJob};
pub use events::{Events, InProcess, JobEvent, Written};
pub use files::{
    AUDIO_DIR, Artifacts, LocalAudio, PartFile, SUMMARIES_DIR, TRANSCRIPTS_DIR, write_atomic,
};
pub use held::HeldJob;
pub use leases::{Claimed, LEASE_LOST, LeaseChange, LeaseOwner};
pub use outbox::{Delivery, EventMaker, NewDelivery};
pub use passages::{AskRecord, NewPassage, Passage, PassageScope};
pub use search::{Cursor, Found, JobFilter, JobPage};
pub use sessions::StoredSession;

use crate::jobs::{Job, JobId, LogLine, Status};
use changes::Removal;

/// What can go wrong in the store, whatever the database. Drivers' errors are turned into one
/// of these inside the backend, with a message that says what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("job not found")]
    NotFound,
    /// The change contradicts what is stored (a key that exists, a state that moved on).
    #[error("{0}")]
    Conflict(String),
    /// The database or the disk cannot do it now: unreachable, busy, full, too new a schema.
    #[error("{0}")]
    Unavailable(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How long a job stays out of every worker's reach while the files of its last run are
/// removed (a full retry). Released as soon as they are gone; the time only matters when this
/// process dies in between.
const REMOVAL_HOLD: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    events: Arc<dyn Events>,
    artifacts: Artifacts,
    /// New sessions waiting to be stored together.
    creations: Arc<sessions::Creations>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("data_dir", &self.artifacts.data_dir())
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the SQLite store in `data_dir`, with its artifact folders.
    pub fn open(data_dir: &Path) -> StoreResult<Self> {
        let artifacts = Artifacts::new(data_dir.to_path_buf());
        artifacts.create_dirs().map_err(|error| {
            StoreError::Unavailable(format!(
                "could not create the data folders in {}: {error}",
                data_dir.display()
            ))
        })?;
        let backend = sqlite::SqliteBackend::open(data_dir)?;
        Ok(Self::with_backend(
            Arc::new(backend),
            Arc::new(InProcess::new()),
            artifacts,
        ))
    }

    /// The store the configuration asks for: PostgreSQL when `DATABASE_URL` is set, else the
    /// SQLite file in `DATA_DIR`; artifacts in the bucket of `STORAGE_URL` when it is set, else
    /// files in `DATA_DIR`.
    pub async fn connect(config: &crate::config::Config) -> StoreResult<Self> {
        let artifacts = Self::artifacts_for(config)?;
        let Some(url) = &config.database_url else {
            let data_dir = config.data_dir.clone();
            let store = tokio::task::spawn_blocking(move || Self::open(&data_dir))
                .await
                .map_err(|error| {
                    StoreError::Unavailable(format!("opening the database stopped: {error}"))
                })??;
            return Ok(Self { artifacts, ..store });
        };
        let backend = postgres::PostgresBackend::connect(url).await?;
        let events = backend.events();
        Ok(Self::with_backend(
            Arc::new(backend),
            Arc::new(events),
            artifacts,
        ))
    }

    /// The artifact storage `config` asks for, its local folders created.
    pub fn artifacts_for(config: &crate::config::Config) -> StoreResult<Artifacts> {
        let artifacts = match &config.storage_url {
            Some(url) => Artifacts::in_bucket(
                config.data_dir.clone(),
                crate::storage::Bucket::connect(url)
                    .map_err(|error| StoreError::Unavailable(error.to_string()))?,
            ),
            None => Artifacts::new(config.data_dir.clone()),
        };
        artifacts.create_dirs().map_err(|error| {
            StoreError::Unavailable(format!(
                "could not create the data folders in {}: {error}",
                config.data_dir.display()
            ))
        })?;
        Ok(artifacts)
    }

    /// A store over any backend and events.
    pub fn with_backend(
        backend: Arc<dyn Backend>,
        events: Arc<dyn Events>,
        artifacts: Artifacts,
    ) -> Self {
        Self {
            backend,
            events,
            artifacts,
            creations: Arc::default(),
        }
    }

    /// Which database holds the jobs: `sqlite` or `postgresql`.
    pub fn database(&self) -> &'static str {
        self.backend.name()
    }

    /// What carries live events: `in-process`, or a channel shared by processes.
    pub fn events_name(&self) -> &'static str {
        self.events.name()
    }

    /// Whether the database answers now.
    pub async fn ping(&self) -> StoreResult<()> {
        self.backend.ping().await
    }

    pub fn artifacts(&self) -> &Artifacts {
        &self.artifacts
    }

    pub fn data_dir(&self) -> &Path {
        self.artifacts.data_dir()
    }

    /// Live events; subscribe before reading the state they update, so none is missed.
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.events.subscribe()
    }

    /// The writes told from now on (see [`Events::subscribe_writes`]).
    pub fn subscribe_writes(&self) -> broadcast::Receiver<Written> {
        self.events.subscribe_writes()
    }

    /// See [`Events::generation`].
    pub fn generation(&self) -> u64 {
        self.events.generation()
    }

    /// Runs a write and tells what it changed, committed or not.
    async fn write<T>(
        &self,
        what: Written,
        work: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let result = work.await;
        self.events.written(what);
        result
    }

    /// The all-jobs listing's order: every job's id, newest meeting first.
    pub async fn job_order(&self) -> StoreResult<Vec<JobId>> {
        self.backend.job_order().await
    }

    /// These jobs (those that still exist) with their logs, in no particular order.
    pub async fn jobs_with_logs(&self, ids: &[JobId]) -> StoreResult<Vec<(Job, Vec<LogLine>)>> {
        self.backend.jobs_with_logs(ids).await
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
        let created = self
            .write(
                Written::Order(id.clone()),
                self.backend.create_job(id.clone(), new),
            )
            .await?;
        self.events.announce(JobEvent::Status {
            job_id: id,
            status: Status::Queued,
        });
        Ok(created)
    }

    pub async fn job(&self, id: &JobId) -> StoreResult<Job> {
        self.backend.job(id).await
    }

    pub async fn job_with_logs(&self, id: &JobId) -> StoreResult<(Job, Vec<LogLine>)> {
        self.backend.job_with_logs(id).await
    }

    /// Every job, newest meeting first, each with its logs.
    pub async fn all_jobs_with_logs(&self) -> StoreResult<Vec<(Job, Vec<LogLine>)>> {
        self.backend.all_jobs_with_logs().await
    }

    /// A page of jobs, newest meeting first, without logs and without their summary text
    /// (`summary` is None; `summary_path` says whether there is one): the list shows neither,
    /// and copying a page of summaries out of the database was a good part of its cost.
    pub async fn list_jobs(&self, limit: usize, offset: usize) -> StoreResult<Vec<Job>> {
        self.backend.list_jobs(limit, offset).await
    }

    /// A page of jobs matching `filter`, newest meeting first (or most relevant first when
    /// searching).
    pub async fn find_jobs(&self, filter: JobFilter) -> StoreResult<JobPage> {
        self.backend.find_jobs(filter).await
    }

    /// As [`Self::find_jobs`], with every listed job's log lines, read at the same moment as
    /// the page.
    pub async fn find_jobs_with_logs(
        &self,
        filter: JobFilter,
    ) -> StoreResult<(JobPage, HashMap<JobId, Vec<LogLine>>)> {
        self.backend.find_jobs_with_logs(filter).await
    }

    /// The queued jobs in the order the workers take them (the order of `claim_next`).
    pub async fn queue_order(&self) -> StoreResult<Vec<JobId>> {
        self.backend.queue_order().await
    }

    /// How many jobs have each status (statuses with none are left out).
    pub async fn count_by_status(&self) -> StoreResult<Vec<(String, u64)>> {
        self.backend.count_by_status().await
    }

    pub async fn count_jobs(&self) -> StoreResult<u64> {
        self.backend.count_jobs().await
    }

    /// Log lines of a job after position `seq` (0 for all).
    pub async fn logs_after(&self, id: &JobId, seq: i64) -> StoreResult<Vec<LogLine>> {
        self.backend.logs_after(id, seq).await
    }

    pub async fn append_log(&self, id: &JobId, message: impl Into<String>) -> StoreResult<LogLine> {
        self.append_log_as(id, message.into(), None).await
    }

    async fn append_log_as(
        &self,
        id: &JobId,
        message: String,
        holder: Option<LeaseOwner>,
    ) -> StoreResult<LogLine> {
        let line = self
            .write(
                Written::Job(id.clone()),
                self.backend.append_log(id, message, holder),
            )
            .await?;
        self.events.announce(JobEvent::Log {
            job_id: id.clone(),
            line: line.clone(),
        });
        Ok(line)
    }

    /// Makes a job's transcript searchable (or unsearchable, with an empty text).
    pub async fn index_transcript(&self, id: &JobId, text: String) -> StoreResult<()> {
        self.index_transcript_as(id, text, None).await
    }

    async fn index_transcript_as(
        &self,
        id: &JobId,
        text: String,
        holder: Option<LeaseOwner>,
    ) -> StoreResult<()> {
        self.write(
            Written::Job(id.clone()),
            self.backend.index_transcript(id, text, holder),
        )
        .await
    }

    /// Applies `changes` to a job and returns it as it is now.
    pub async fn update(&self, id: &JobId, changes: Changes) -> StoreResult<Job> {
        self.apply_or_not_found(id, Update::new(changes)).await
    }

    /// Applies `changes` and appends a log line in one transaction: a crash leaves both or
    /// neither (a job never says "completed" in its log without being completed).
    pub async fn update_with_log(
        &self,
        id: &JobId,
        changes: Changes,
        message: impl Into<String>,
    ) -> StoreResult<Job> {
        self.apply_with_log(id, changes, message.into(), None, None)
            .await
    }

    /// `changes`, a log line and the webhook event that `event` makes of the job as changed,
    /// in one transaction: the job is finished and its event recorded, or neither. With a
    /// `holder` (a worker finishing a job), only while it holds the job's lease, which it
    /// releases.
    async fn apply_with_log(
        &self,
        id: &JobId,
        changes: Changes,
        message: String,
        event: Option<EventMaker>,
        holder: Option<LeaseOwner>,
    ) -> StoreResult<Job> {
        let lease = match holder {
            Some(_) => LeaseChange::Release,
            None => LeaseChange::Keep,
        };
        let update = Update {
            log: Some(message),
            event,
            holder,
            lease,
            ..Update::new(changes)
        };
        self.apply_or_not_found(id, update).await
    }

    /// An update without a status condition: it happened, or the job is gone.
    async fn apply_or_not_found(&self, id: &JobId, update: Update) -> StoreResult<Job> {
        self.apply(id, update).await?.ok_or(StoreError::NotFound)
    }

    /// Applies `changes` only while the job's status is one of `from`; None if it was not.
    /// This is how state transitions stay atomic (e.g. "retry unless running").
    pub async fn update_if(
        &self,
        id: &JobId,
        from: &'static [Status],
        changes: Changes,
    ) -> StoreResult<Option<Job>> {
        let update = Update {
            from: Some(from),
            ..Update::new(changes)
        };
        self.apply(id, update).await
    }

    /// One update: committed, then its files removed, then announced.
    ///
    /// A change that removes files holds the job in a lease of its own while they go, so no
    /// worker (of any process) starts on it and writes new files that the removal would take.
    async fn apply(&self, id: &JobId, mut update: Update) -> StoreResult<Option<Job>> {
        let status = update.changes.new_status();
        let removal = update.changes.removal();
        let remover = removal.map(|_| LeaseOwner::generate());
        if let Some(owner) = &remover {
            update.lease = LeaseChange::Hold {
                owner: owner.clone(),
                duration: REMOVAL_HOLD,
            };
        }
        let what = if update.changes.moves() {
            Written::Order(id.clone())
        } else if status.is_some() {
            Written::Queue(id.clone())
        } else {
            Written::Job(id.clone())
        };
        let Some(updated) = self.write(what, self.backend.update(id, update)).await? else {
            return Ok(None);
        };
        if let (Some(removal), Some(remover)) = (removal, remover) {
            if let Some(before) = updated.before {
                self.remove_files(before, removal).await;
            }
            let release = Update {
                holder: Some(remover),
                lease: LeaseChange::Release,
                ..Update::new(Changes::new())
            };
            match self
                .write(Written::Job(id.clone()), self.backend.update(id, release))
                .await
            {
                // Deleted meanwhile, or this process was so slow that the hold ran out.
                Ok(_) | Err(StoreError::NotFound | StoreError::Conflict(_)) => {}
                Err(error) => {
                    tracing::warn!(job = %id, %error, "could not release a job after removing its files; it waits for the hold to run out")
                }
            }
        }
        if let Some(line) = updated.line {
            self.events.announce(JobEvent::Log {
                job_id: id.clone(),
                line,
            });
        }
        if let Some(status) = status {
            self.events.announce(JobEvent::Status {
                job_id: id.clone(),
                status,
            });
        }
        Ok(Some(updated.job))
    }

    /// Removes the files `job` pointed at (or, with `After`, those its stages made), on the
    /// blocking pool.
    async fn remove_files(&self, job: Job, removal: Removal) {
        self.artifacts.remove_of(job, removal).await;
    }

    /// Takes the job nobody holds that has waited longest (one whose worker stopped renewing
    /// its lease first), marks it as started and leases it to `owner` for `lease`.
    pub async fn claim_next(
        &self,
        owner: &LeaseOwner,
        lease: Duration,
    ) -> StoreResult<Option<Claimed>> {
        let claimed = self.backend.claim_next(owner, lease).await;
        match &claimed {
            Ok(Some(claimed)) => self.events.written(Written::Queue(claimed.job.id.clone())),
            // Nothing was waiting: nothing changed.
            Ok(None) => {}
            // Whether a job was taken is unknown.
            Err(_) => self.events.written(Written::Everything),
        }
        let claimed = claimed?;
        if let Some(claimed) = &claimed {
            self.events.announce(JobEvent::Status {
                job_id: claimed.job.id.clone(),
                status: claimed.job.status,
            });
        }
        Ok(claimed)
    }

    /// Extends `owner`'s lease on the job to `lease` from now; false once it is no longer in
    /// its name (another worker took the job over, or the job is gone).
    pub async fn renew_lease(
        &self,
        id: &JobId,
        owner: &LeaseOwner,
        lease: Duration,
    ) -> StoreResult<bool> {
        // Not counted as a write: nothing a page or a listing shows changes.
        self.backend.renew_lease(id, owner, lease).await
    }

    /// Writes to the job as the worker `owner`, which holds its lease.
    pub fn held(&self, id: JobId, owner: LeaseOwner) -> HeldJob {
        HeldJob::new(self.clone(), id, owner)
    }

    /// When the soonest live lease runs out (ms since the epoch): an idle worker looks again
    /// then, to take the job over if its holder stopped renewing it.
    pub async fn next_lease_expiry(&self) -> StoreResult<Option<i64>> {
        self.backend.next_lease_expiry().await
    }

    /// The jobs some worker (of this process or another) holds now.
    pub async fn leased_jobs(&self) -> StoreResult<HashSet<JobId>> {
        Ok(self.backend.leased_jobs().await?.into_iter().collect())
    }

    /// At start-up: every job left mid-stage by a worker whose lease ran out goes back to the
    /// queue, to resume from its checkpoint. A job under a live lease is another process's
    /// work (a rolling deploy runs two) and stays. Returns how many.
    pub async fn requeue_interrupted(&self) -> StoreResult<usize> {
        self.write(Written::Everything, self.backend.requeue_interrupted())
            .await
    }

    /// Removes the job and its logs, then every artifact file it has.
    pub async fn delete_job(&self, id: &JobId) -> StoreResult<()> {
        let job = self
            .write(Written::Order(id.clone()), self.backend.delete_job(id))
            .await?;
        self.remove_files(job, Removal::All).await;
        self.events
            .announce(JobEvent::Deleted { job_id: id.clone() });
        Ok(())
    }

    /// Removes the files of a job already deleted, which its pipeline may have written while
    /// it was being stopped.
    pub async fn remove_leftovers(&self, job: Job) {
        self.remove_files(job, Removal::All).await;
    }

    /// Replaces the job's passages (Ask's index) and marks the job indexed. Not counted as a
    /// write: no page shows passages, so the listing caches stay.
    pub async fn replace_passages(&self, id: &JobId, passages: Vec<NewPassage>) -> StoreResult<()> {
        self.backend.replace_passages(id, passages).await
    }

    /// Completed jobs with a transcript whose passages were never built (the backfill).
    pub async fn jobs_without_passages(&self, limit: usize) -> StoreResult<Vec<JobId>> {
        self.backend.jobs_without_passages(limit).await
    }

    /// Passage ids in `scope` holding any of `words`, best first.
    pub async fn search_passages(
        &self,
        words: &[String],
        scope: &PassageScope,
        limit: usize,
    ) -> StoreResult<Vec<i64>> {
        self.backend.search_passages(words, scope, limit).await
    }

    /// Every stored embedding vector in `scope`.
    pub async fn passage_vectors(&self, scope: &PassageScope) -> StoreResult<Vec<(i64, Vec<f32>)>> {
        self.backend.passage_vectors(scope).await
    }

    /// The passages of these ids that exist, in the order given.
    pub async fn passages(&self, ids: &[i64]) -> StoreResult<Vec<Passage>> {
        self.backend.passages(ids).await
    }

    pub async fn passages_without_vectors(&self, limit: usize) -> StoreResult<Vec<(i64, String)>> {
        self.backend.passages_without_vectors(limit).await
    }

    pub async fn set_passage_vectors(&self, vectors: Vec<(i64, Vec<f32>)>) -> StoreResult<()> {
        self.backend.set_passage_vectors(vectors).await
    }

    /// Keeps a question and its answer.
    pub async fn save_ask(&self, record: AskRecord) -> StoreResult<()> {
        self.backend.save_ask(record).await
    }

    /// The latest questions about `job` (or, with None, about the whole archive), newest first.
    pub async fn recent_asks(
        &self,
        job: Option<&JobId>,
        limit: usize,
    ) -> StoreResult<Vec<AskRecord>> {
        self.backend.recent_asks(job, limit).await
    }

    pub async fn ask(&self, id: &str) -> StoreResult<AskRecord> {
        self.backend.ask(id).await
    }

    pub async fn delete_ask(&self, id: &str) -> StoreResult<()> {
        self.backend.delete_ask(id).await
    }

    pub async fn meta(&self, key: &'static str) -> StoreResult<Option<String>> {
        self.backend.meta(key).await
    }

    /// The value of `key`, stored as `value` first when there is none (see
    /// [`Backend::meta_or_insert`]).
    pub async fn meta_or_insert(&self, key: &'static str, value: String) -> StoreResult<String> {
        self.backend.meta_or_insert(key, value).await
    }

    /// The session `id`, unless it has expired (or never was).
    pub async fn session(&self, id: &str) -> StoreResult<Option<StoredSession>> {
        self.backend.session(id, crate::jobs::now_millis()).await
    }

    /// Stores a new session; false (and nothing written) when its id is taken. Expired
    /// sessions are removed first, and a full table makes room (see [`sessions::MAX_SESSIONS`]).
    /// Sessions created at the same moment share a transaction ([`sessions::Creations`]);
    /// each is committed before this returns.
    pub async fn create_session(&self, session: StoredSession) -> StoreResult<bool> {
        let backend = self.backend.clone();
        self.creations
            .create(session, move |batch| {
                let backend = backend.clone();
                async move {
                    backend
                        .create_sessions(batch, crate::jobs::now_millis(), sessions::MAX_SESSIONS)
                        .await
                }
            })
            .await
    }

    /// Writes the session's data and expiry, creating it (as [`Self::create_session`]) when it
    /// is not stored (it expired, or made room for others, meanwhile).
    pub async fn save_session(&self, session: StoredSession) -> StoreResult<()> {
        self.backend
            .save_session(session, crate::jobs::now_millis(), sessions::MAX_SESSIONS)
            .await
    }

    pub async fn delete_session(&self, id: &str) -> StoreResult<()> {
        self.backend.delete_session(id).await
    }

    /// How many sessions are stored, expired or not.
    pub async fn count_sessions(&self) -> StoreResult<u64> {
        self.backend.count_sessions().await
    }

    /// Waits for, then holds, the lock `name` shared by every process on this database.
    pub async fn exclusive(&self, name: &'static str) -> StoreResult<Exclusive> {
        self.backend.exclusive(name).await
    }

    /// Inserts imported jobs, and with the last batch the marker `key = value`, in one
    /// transaction.
    pub(crate) async fn import_jobs(
        &self,
        jobs: Vec<legacy::ImportedJob>,
        marker: Option<(&'static str, String)>,
    ) -> StoreResult<()> {
        self.write(Written::Everything, self.backend.import_jobs(jobs, marker))
            .await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::jobs::Stage;

    /// A queued job for `url`, as the tests of every backend make one.
    pub(crate) async fn job_at(store: &Store, url: &str) -> Job {
        let (job, _) = store
            .create_job(NewJob {
                url: url.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        job
    }

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
    async fn claim_takes_the_oldest_and_counts_the_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let first = job_at(&store, "https://a.example/1").await;
        let _second = job_at(&store, "https://a.example/2").await;
        // A lease that has already run out: its worker is as good as gone.
        let claimed = store
            .claim_next(&LeaseOwner::generate(), Duration::ZERO)
            .await
            .unwrap()
            .unwrap()
            .job;
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
            let job = job_at(&store, &format!("https://a.example/{n}")).await;
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
        let job = job_at(&store, "https://a.example/1").await;
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

    #[tokio::test]
    async fn a_live_lease_is_nobody_elses_and_a_lapsed_one_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        lease_meaning(Store::open(dir.path()).unwrap()).await;
    }

    #[tokio::test]
    async fn a_worker_whose_lease_was_taken_over_writes_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        lost_lease_meaning(Store::open(dir.path()).unwrap()).await;
    }

    /// What a lease means, checked the same way on every backend.
    pub(crate) async fn lease_meaning(store: Store) {
        let (job, _) = store.create_job(NewJob::default()).await.unwrap();
        let first = LeaseOwner::generate();
        let second = LeaseOwner::generate();
        let lease = Duration::from_millis(400);
        let claimed = store.claim_next(&first, lease).await.unwrap().unwrap();
        assert!(!claimed.taken_over);

        // Live: start-up leaves it, another claimer does not get it, idle workers know when
        // to look again.
        assert_eq!(store.requeue_interrupted().await.unwrap(), 0);
        assert!(store.claim_next(&second, lease).await.unwrap().is_none());
        assert!(store.leased_jobs().await.unwrap().contains(&job.id));
        let expiry = store.next_lease_expiry().await.unwrap().unwrap();
        assert!(expiry > crate::jobs::now_millis());
        assert!(store.renew_lease(&job.id, &first, lease).await.unwrap());

        // Lapsed: taken over from where it was, as a new attempt.
        tokio::time::sleep(lease + Duration::from_millis(50)).await;
        assert!(store.leased_jobs().await.unwrap().is_empty());
        let taken = store.claim_next(&second, lease).await.unwrap().unwrap();
        assert!(taken.taken_over);
        assert_eq!(taken.job.id, job.id);
        assert_eq!(taken.job.attempts, 2);
        assert!(!store.renew_lease(&job.id, &first, lease).await.unwrap());
        assert!(store.renew_lease(&job.id, &second, lease).await.unwrap());
    }

    pub(crate) async fn lost_lease_meaning(store: Store) {
        let (job, _) = store.create_job(NewJob::default()).await.unwrap();
        let lease = Duration::from_millis(200);
        let first = LeaseOwner::generate();
        store.claim_next(&first, lease).await.unwrap().unwrap();
        let stale = store.held(job.id.clone(), first);
        stale.log("still mine").await.unwrap();
        tokio::time::sleep(lease + Duration::from_millis(50)).await;
        let second = LeaseOwner::generate();
        store.claim_next(&second, lease).await.unwrap().unwrap();
        let (before, lines) = store.job_with_logs(&job.id).await.unwrap();

        let lost = StoreError::Conflict(LEASE_LOST.into());
        assert_eq!(stale.log("late line").await.unwrap_err(), lost);
        assert_eq!(
            stale
                .update(Changes::new().checkpoint(Some(Stage::Summarize)))
                .await
                .unwrap_err(),
            lost
        );
        assert_eq!(
            stale
                .index_transcript("late words".into())
                .await
                .unwrap_err(),
            lost
        );
        let event: EventMaker = Box::new(|job: &Job| NewDelivery {
            delivery: "late".into(),
            job_id: job.id.clone(),
            event: "job.completed".into(),
            body: Vec::new(),
        });
        assert_eq!(
            stale
                .finish(
                    Changes::new().status(Status::Completed),
                    "Job completed",
                    Some(event)
                )
                .await
                .unwrap_err(),
            lost
        );
        let (after, after_lines) = store.job_with_logs(&job.id).await.unwrap();
        assert_eq!(after, before, "the job is as the new holder found it");
        assert_eq!(after_lines, lines, "no line was added");
        assert_eq!(store.pending_deliveries().await.unwrap(), 0);
        let search = store
            .find_jobs(JobFilter {
                query: Some("late".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(search.jobs.is_empty());

        // The holder's writes go through, and finishing frees the job.
        let held = store.held(job.id.clone(), second);
        held.update(Changes::new().title(Some("Mine".into())))
            .await
            .unwrap();
        held.finish(
            Changes::new().status(Status::Completed),
            "Job completed",
            None,
        )
        .await
        .unwrap();
        assert!(store.leased_jobs().await.unwrap().is_empty());
        // Gone: NotFound, not Conflict.
        store.delete_job(&job.id).await.unwrap();
        assert_eq!(held.log("x").await.unwrap_err(), StoreError::NotFound);
    }

    #[tokio::test]
    async fn a_full_retry_frees_the_job_once_its_files_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (job, _) = store.create_job(NewJob::default()).await.unwrap();
        let summary = store.artifacts().summary_relative(&job.id);
        store
            .artifacts()
            .write_text(&summary, "# Old".into())
            .await
            .unwrap();
        store
            .update(
                &job.id,
                Changes::new()
                    .status(Status::Completed)
                    .summary(Some("# Old".into()), Some(summary.clone())),
            )
            .await
            .unwrap();
        let retried = store
            .update_if(
                &job.id,
                &[Status::Completed],
                Changes::new()
                    .status(Status::Queued)
                    .summary(None, None)
                    .remove_artifacts(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(retried.status, Status::Queued);
        assert!(!store.artifacts().resolve(&summary).unwrap().exists());
        assert!(store.leased_jobs().await.unwrap().is_empty());
        let claimed = store
            .claim_next(&LeaseOwner::generate(), Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.job.id, job.id);
    }

    /// The error callers see has no driver inside: its variants carry words, it compares and
    /// clones (no driver error does both), and it has no source to downcast to one.
    #[test]
    fn a_store_error_carries_no_driver_type() {
        fn words(error: &StoreError) -> Option<&str> {
            // Exhaustive: a new variant must be looked at here.
            match error {
                StoreError::NotFound => None,
                StoreError::Conflict(message) | StoreError::Unavailable(message) => Some(message),
            }
        }
        fn plain<T: Clone + PartialEq + Eq + Send + Sync + 'static>() {}
        plain::<StoreError>();
        for error in [
            StoreError::NotFound,
            StoreError::Conflict("taken".into()),
            StoreError::Unavailable("down".into()),
        ] {
            assert!(std::error::Error::source(&error).is_none());
            assert_eq!(words(&error).is_none(), error == StoreError::NotFound);
        }
    }

    /// SQL and the SQLite driver stay in `store/sqlite/` (tests of the file itself aside).
    #[test]
    fn the_driver_is_named_only_in_the_sqlite_backend() {
        fn visit(dir: &Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    if !path.ends_with("store/sqlite") {
                        visit(&path, found);
                    }
                } else if std::fs::read_to_string(&path)
                    .unwrap_or_default()
                    .contains(concat!("rus", "qlite"))
                {
                    found.push(path.display().to_string());
                }
            }
        }
        let mut found = Vec::new();
        visit(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut found,
        );
        assert!(found.is_empty(), "the driver is named in {found:?}");
    }
}
