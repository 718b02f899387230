//! The interface every database behind the store implements. It speaks domain types only;
//! each backend turns its driver's errors into [`StoreError`](super::StoreError) and keeps its
//! connections, transactions and SQL to itself.
//!
//! A backend does database work and nothing else: announcing events and removing artifact
//! files happen in [`Store`](super::Store), after the backend's transaction has committed, so
//! every backend gets them right the same way.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;

use super::leases::{Claimed, LeaseChange, LeaseOwner};
use super::legacy::ImportedJob;
use super::migrate::MigratedJob;
use super::outbox::{Delivery, EventMaker};
use super::passages::{AskRecord, NewPassage, Passage, PassageScope};
use super::search::{JobFilter, JobPage};
use super::sessions::StoredSession;
use super::{Changes, NewJob, StoreResult};
use crate::jobs::{Job, JobId, LogLine, Status};

/// A change to one job, with what must happen in the same transaction.
pub struct Update {
    pub changes: Changes,
    /// Apply only while the job's status is one of these (None: whatever it is).
    pub from: Option<&'static [Status]>,
    /// A log line written with the change.
    pub log: Option<String>,
    /// The webhook event of the job as changed, recorded in the outbox with it.
    pub event: Option<EventMaker>,
    /// Apply only while this owner holds the job's lease (a worker's stage results):
    /// `Conflict` once another has taken it over.
    pub holder: Option<LeaseOwner>,
    pub lease: LeaseChange,
}

impl Update {
    pub fn new(changes: Changes) -> Self {
        Self {
            changes,
            from: None,
            log: None,
            event: None,
            holder: None,
            lease: LeaseChange::Keep,
        }
    }
}

/// Each job with its log lines (taken from `logs`, keyed by the job's id), in the jobs' order.
pub(crate) fn with_logs<K>(
    jobs: Vec<Job>,
    mut logs: HashMap<K, Vec<LogLine>>,
) -> Vec<(Job, Vec<LogLine>)>
where
    K: std::hash::Hash + Eq + std::borrow::Borrow<str>,
{
    jobs.into_iter()
        .map(|job| {
            let lines = logs.remove(job.id.as_str()).unwrap_or_default();
            (job, lines)
        })
        .collect()
}

/// A committed change.
pub struct Updated {
    /// The job as it was before, when the change removes files (they are named by it).
    pub before: Option<Job>,
    pub job: Job,
    pub line: Option<LogLine>,
}

/// A held [`Backend::exclusive`] lock: whatever keeps it held (a connection of its own on
/// PostgreSQL, a mutex guard on SQLite), released on drop.
pub struct Exclusive {
    _held: Box<dyn Send + Sync>,
}

impl Exclusive {
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        Self {
            _held: Box::new(held),
        }
    }
}

#[async_trait]
pub trait Backend: Send + Sync {
    /// What the database is, for `/api/health`: `sqlite` or `postgresql`.
    fn name(&self) -> &'static str;

    /// Answers when the database does (the health probe).
    async fn ping(&self) -> StoreResult<()> {
        self.count_jobs().await.map(|_| ())
    }

    /// Inserts a queued job with its first log lines, in one transaction.
    async fn create_job(&self, id: JobId, new: NewJob) -> StoreResult<(Job, Vec<LogLine>)>;

    async fn job(&self, id: &JobId) -> StoreResult<Job>;

    /// The job and its log lines, of the same moment.
    async fn job_with_logs(&self, id: &JobId) -> StoreResult<(Job, Vec<LogLine>)>;

    /// Every job, newest meeting first, each with its logs.
    async fn all_jobs_with_logs(&self) -> StoreResult<Vec<(Job, Vec<LogLine>)>>;

    /// Every job's id, newest meeting first (the order of [`Self::all_jobs_with_logs`]).
    async fn job_order(&self) -> StoreResult<Vec<JobId>>;

    /// These jobs, those that exist, each with its logs of the same moment, in no particular
    /// order (the all-jobs listing fetches the jobs it does not keep, a batch at a time).
    async fn jobs_with_logs(&self, ids: &[JobId]) -> StoreResult<Vec<(Job, Vec<LogLine>)>>;

    /// A page of jobs, newest meeting first, without their summary text.
    async fn list_jobs(&self, limit: usize, offset: usize) -> StoreResult<Vec<Job>>;

    /// A page of jobs matching `filter`.
    async fn find_jobs(&self, filter: JobFilter) -> StoreResult<JobPage>;

    /// As [`Self::find_jobs`], with every listed job's log lines, of the same moment.
    async fn find_jobs_with_logs(
        &self,
        filter: JobFilter,
    ) -> StoreResult<(JobPage, HashMap<JobId, Vec<LogLine>>)>;

    /// How many jobs have each status (statuses with none are left out).
    async fn count_by_status(&self) -> StoreResult<Vec<(String, u64)>>;

    async fn count_jobs(&self) -> StoreResult<u64>;

    /// The queued jobs in the order the workers take them (the order of `claim_next`).
    async fn queue_order(&self) -> StoreResult<Vec<JobId>>;

    /// Log lines of a job after position `seq` (0 for all).
    async fn logs_after(&self, id: &JobId, seq: i64) -> StoreResult<Vec<LogLine>>;

    /// NotFound when the job is gone; with a `holder`, Conflict when the job's lease is not
    /// (or no longer) in its name.
    async fn append_log(
        &self,
        id: &JobId,
        message: String,
        holder: Option<LeaseOwner>,
    ) -> StoreResult<LogLine>;

    /// Applies the update in one transaction; None when the job's status was not one of
    /// `update.from`.
    async fn update(&self, id: &JobId, update: Update) -> StoreResult<Option<Updated>>;

    /// Makes a job's transcript searchable (or unsearchable, with an empty text); with a
    /// `holder`, as [`Self::append_log`].
    async fn index_transcript(
        &self,
        id: &JobId,
        text: String,
        holder: Option<LeaseOwner>,
    ) -> StoreResult<()>;

    /// Takes the job nobody holds that has waited longest — one left mid-stage under a lease
    /// that ran out, else a queued one — marks it as started, and leases it to `owner` for
    /// `lease`. Two claimers never get the same job.
    async fn claim_next(&self, owner: &LeaseOwner, lease: Duration)
    -> StoreResult<Option<Claimed>>;

    /// Extends `owner`'s lease on the job to `lease` from now; false when the lease is no
    /// longer in its name (taken over, or the job is gone).
    async fn renew_lease(
        &self,
        id: &JobId,
        owner: &LeaseOwner,
        lease: Duration,
    ) -> StoreResult<bool>;

    /// When the soonest live lease runs out (ms since the epoch), if any is held.
    async fn next_lease_expiry(&self) -> StoreResult<Option<i64>>;

    /// The jobs whose lease is live now.
    async fn leased_jobs(&self) -> StoreResult<Vec<JobId>>;

    /// Every job left mid-stage whose lease ran out (or that has none) goes back to the queue;
    /// jobs under a live lease are someone's work and stay. Returns how many.
    async fn requeue_interrupted(&self) -> StoreResult<usize>;

    /// Removes the job and its logs; returns it as it was (its files are named by it).
    async fn delete_job(&self, id: &JobId) -> StoreResult<Job>;

    async fn meta(&self, key: &str) -> StoreResult<Option<String>>;

    /// The value of `key`, set to `value` first when it has none. Processes that ask at the
    /// same moment all get the one value that was stored first (a secret they must share).
    async fn meta_or_insert(&self, key: &str, value: String) -> StoreResult<String>;

    /// The session `id` if it expires after `now`.
    async fn session(&self, id: &str, now: i64) -> StoreResult<Option<StoredSession>>;

    /// Inserts new sessions in one transaction; for each, false when its id is taken (that
    /// one not written). First removes the sessions expired at `now` and, when they would not
    /// all fit under `cap`, the ones closest to expiry.
    async fn create_sessions(
        &self,
        sessions: Vec<StoredSession>,
        now: i64,
        cap: u64,
    ) -> StoreResult<Vec<bool>>;

    /// Updates the session's data and expiry; inserts it as [`Self::create_sessions`] does
    /// when it is not there.
    async fn save_session(&self, session: StoredSession, now: i64, cap: u64) -> StoreResult<()>;

    async fn delete_session(&self, id: &str) -> StoreResult<()>;

    async fn count_sessions(&self) -> StoreResult<u64>;

    /// Waits for, then holds, the lock named `name` that every process on this database
    /// shares; it is released when the returned guard is dropped (or the process dies).
    /// SQLite serves one process, so its lock holds within the process alone.
    async fn exclusive(&self, name: &'static str) -> StoreResult<Exclusive>;

    /// Inserts imported jobs (skipping ids that exist) and, when given, the marker
    /// `key = value` that says the import ran, in one transaction: Conflict if the marker is
    /// already there. A large import comes in batches, the marker with the last.
    async fn import_jobs(
        &self,
        jobs: Vec<ImportedJob>,
        marker: Option<(&'static str, String)>,
    ) -> StoreResult<()>;

    /// Inserts a whole job copied from another store (`focusflow migrate`) with its log lines
    /// and search text, in one transaction, unless a job with its id exists: false then, and
    /// nothing is written, so a second run duplicates nothing.
    async fn insert_migrated(&self, job: MigratedJob) -> StoreResult<bool>;

    /// Takes the oldest webhook event due at `now` for one attempt: it is not due again before
    /// `until`, so no other dispatcher (another replica) takes it meanwhile; a dispatcher that
    /// dies mid-attempt leaves it due again at `until`. Two claimers never get the same event.
    async fn claim_delivery(&self, now: i64, until: i64) -> StoreResult<Option<Delivery>>;

    /// When the next webhook event falls due, if any wait.
    async fn next_delivery_at(&self) -> StoreResult<Option<i64>>;

    async fn pending_deliveries(&self) -> StoreResult<u64>;

    async fn remove_delivery(&self, delivery: &str) -> StoreResult<()>;

    async fn postpone_delivery(
        &self,
        delivery: &str,
        attempts: u32,
        next_at: i64,
    ) -> StoreResult<()>;

    /// Replaces the job's passages (none: it has nothing to index) and marks it indexed, in
    /// one transaction; speakers are shown with the names the job gives them. NotFound when
    /// the job is gone.
    async fn replace_passages(&self, id: &JobId, passages: Vec<NewPassage>) -> StoreResult<()>;

    /// Completed jobs with a transcript whose passages were never built, at most `limit`.
    async fn jobs_without_passages(&self, limit: usize) -> StoreResult<Vec<JobId>>;

    /// The ids of the passages in `scope` that hold any of `words`, most relevant first
    /// (BM25, or its equivalent), at most `limit`.
    async fn search_passages(
        &self,
        words: &[String],
        scope: &PassageScope,
        limit: usize,
    ) -> StoreResult<Vec<i64>>;

    /// Every stored embedding vector in `scope`, with its passage's id.
    async fn passage_vectors(&self, scope: &PassageScope) -> StoreResult<Vec<(i64, Vec<f32>)>>;

    /// The passages of these ids that exist, in the order given, with their meetings.
    async fn passages(&self, ids: &[i64]) -> StoreResult<Vec<Passage>>;

    /// Passages that have no vector yet, oldest first, at most `limit`.
    async fn passages_without_vectors(&self, limit: usize) -> StoreResult<Vec<(i64, String)>>;

    async fn set_passage_vectors(&self, vectors: Vec<(i64, Vec<f32>)>) -> StoreResult<()>;

    async fn save_ask(&self, record: AskRecord) -> StoreResult<()>;

    /// The latest questions about one meeting (or, with None, about the whole archive).
    async fn recent_asks(&self, job: Option<&JobId>, limit: usize) -> StoreResult<Vec<AskRecord>>;

    async fn ask(&self, id: &str) -> StoreResult<AskRecord>;

    /// NotFound when there is no such question.
    async fn delete_ask(&self, id: &str) -> StoreResult<()>;
}
