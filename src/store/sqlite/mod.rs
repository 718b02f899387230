//! The SQLite backend: one database file in the data directory.
//!
//! Every call runs on the blocking pool, so the async runtime never waits on the disk. One
//! connection writes; a few more read, which WAL lets run alongside. The driver's errors become
//! [`StoreError`]s here and go no further.

pub mod backup;
mod connections;
mod migrations;
mod outbox;
mod passages;
mod queries;
mod rows;
mod search;
mod sessions;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::ErrorCode;

use super::backend::{Backend, Exclusive, Update, Updated};
use super::leases::{Claimed, LeaseOwner};
use super::legacy::ImportedJob;
use super::outbox::Delivery;
use super::passages::{AskRecord, NewPassage, Passage, PassageScope};
use super::search::{JobFilter, JobPage};
use super::sessions::StoredSession;
use super::{NewJob, StoreError, StoreResult};
use crate::jobs::{Job, JobId, LogLine};
use connections::Connections;

/// The database's file name inside the data directory.
pub const DATABASE_FILE: &str = "focusflow.db";

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        let code = error.sqlite_error_code();
        match code {
            _ if matches!(error, rusqlite::Error::QueryReturnedNoRows) => StoreError::NotFound,
            Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(
                "the change conflicts with what is stored (the record exists already)".into(),
            ),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Unavailable(
                format!("the database stayed busy (another process writes to it): {error}"),
            ),
            Some(ErrorCode::DiskFull) => StoreError::Unavailable(format!(
                "the disk that holds the database is full: {error}"
            )),
            _ => StoreError::Unavailable(format!("database error: {error}")),
        }
    }
}

pub struct SqliteBackend {
    connections: Connections,
    /// [`Backend::exclusive`]: one process uses the file, so a lock of its own is enough.
    exclusive: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl SqliteBackend {
    /// Opens (creating if needed) `focusflow.db` in `data_dir` and brings its schema up to date.
    pub fn open(data_dir: &Path) -> StoreResult<Self> {
        let path = data_dir.join(DATABASE_FILE);
        let connections = Connections::open(&path, migrations::migrate)?;
        Ok(Self {
            connections,
            exclusive: Default::default(),
        })
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn create_job(&self, id: JobId, new: NewJob) -> StoreResult<(Job, Vec<LogLine>)> {
        self.connections
            .write(move |connection| queries::create_job(connection, &id, new))
            .await
    }

    async fn job(&self, id: &JobId) -> StoreResult<Job> {
        let id = id.clone();
        self.connections
            .read(move |connection| rows::get_job(connection, &id))
            .await
    }

    async fn job_with_logs(&self, id: &JobId) -> StoreResult<(Job, Vec<LogLine>)> {
        let id = id.clone();
        self.connections
            .read(move |connection| {
                let transaction = connection.unchecked_transaction()?;
                let job = rows::get_job(&transaction, &id)?;
                let logs = queries::logs_after(&transaction, &id, 0)?;
                transaction.finish()?;
                Ok((job, logs))
            })
            .await
    }

    async fn all_jobs_with_logs(&self) -> StoreResult<Vec<(Job, Vec<LogLine>)>> {
        self.connections.read(queries::all_jobs_with_logs).await
    }

    async fn job_order(&self) -> StoreResult<Vec<JobId>> {
        self.connections.read(queries::job_order).await
    }

    async fn jobs_with_logs(&self, ids: &[JobId]) -> StoreResult<Vec<(Job, Vec<LogLine>)>> {
        let ids = ids.to_vec();
        self.connections
            .read(move |connection| {
                let transaction = connection.unchecked_transaction()?;
                let jobs = queries::jobs_with_logs(&transaction, &ids)?;
                transaction.finish()?;
                Ok(jobs)
            })
            .await
    }

    async fn list_jobs(&self, limit: usize, offset: usize) -> StoreResult<Vec<Job>> {
        self.connections
            .read(move |connection| queries::list_jobs(connection, limit, offset))
            .await
    }

    async fn find_jobs(&self, filter: JobFilter) -> StoreResult<JobPage> {
        self.connections
            .read(move |connection| search::list(connection, &filter))
            .await
    }

    async fn find_jobs_with_logs(
        &self,
        filter: JobFilter,
    ) -> StoreResult<(JobPage, HashMap<JobId, Vec<LogLine>>)> {
        self.connections
            .read(move |connection| {
                let transaction = connection.unchecked_transaction()?;
                let page = search::list(&transaction, &filter)?;
                let ids: Vec<&str> = page
                    .jobs
                    .iter()
                    .map(|found| found.job.id.as_str())
                    .collect();
                let logs = queries::logs_of_jobs(&transaction, &ids)?;
                transaction.finish()?;
                Ok((page, logs))
            })
            .await
    }

    async fn count_by_status(&self) -> StoreResult<Vec<(String, u64)>> {
        self.connections.read(queries::count_by_status).await
    }

    async fn count_jobs(&self) -> StoreResult<u64> {
        self.connections.read(queries::count_jobs).await
    }

    async fn queue_order(&self) -> StoreResult<Vec<JobId>> {
        self.connections.read(queries::queue_order).await
    }

    async fn logs_after(&self, id: &JobId, seq: i64) -> StoreResult<Vec<LogLine>> {
        let id = id.clone();
        self.connections
            .read(move |connection| queries::logs_after(connection, &id, seq))
            .await
    }

    async fn append_log(
        &self,
        id: &JobId,
        message: String,
        holder: Option<LeaseOwner>,
    ) -> StoreResult<LogLine> {
        let id = id.clone();
        self.connections
            .write(move |connection| queries::append_log(connection, &id, message, holder))
            .await
    }

    async fn update(&self, id: &JobId, update: Update) -> StoreResult<Option<Updated>> {
        let id = id.clone();
        self.connections
            .write(move |connection| queries::apply_update(connection, &id, update))
            .await
    }

    async fn index_transcript(
        &self,
        id: &JobId,
        text: String,
        holder: Option<LeaseOwner>,
    ) -> StoreResult<()> {
        let id = id.clone();
        self.connections
            .write(move |connection| {
                search::index_transcript(connection, &id, &text, holder.as_ref())
            })
            .await
    }

    async fn claim_next(
        &self,
        owner: &LeaseOwner,
        lease: Duration,
    ) -> StoreResult<Option<Claimed>> {
        let owner = owner.clone();
        self.connections
            .write(move |connection| queries::claim_next(connection, &owner, lease))
            .await
    }

    async fn renew_lease(
        &self,
        id: &JobId,
        owner: &LeaseOwner,
        lease: Duration,
    ) -> StoreResult<bool> {
        let (id, owner) = (id.clone(), owner.clone());
        self.connections
            .write(move |connection| queries::renew_lease(connection, &id, &owner, lease))
            .await
    }

    async fn next_lease_expiry(&self) -> StoreResult<Option<i64>> {
        self.connections.read(queries::next_lease_expiry).await
    }

    async fn leased_jobs(&self) -> StoreResult<Vec<JobId>> {
        self.connections.read(queries::leased_jobs).await
    }

    async fn requeue_interrupted(&self) -> StoreResult<usize> {
        self.connections.write(queries::requeue_interrupted).await
    }

    async fn delete_job(&self, id: &JobId) -> StoreResult<Job> {
        let id = id.clone();
        self.connections
            .write(move |connection| queries::delete_job(connection, &id))
            .await
    }

    async fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_string();
        self.connections
            .read(move |connection| queries::meta(connection, &key))
            .await
    }

    async fn import_jobs(
        &self,
        jobs: Vec<ImportedJob>,
        marker: Option<(&'static str, String)>,
    ) -> StoreResult<()> {
        self.connections
            .write(move |connection| queries::import_jobs(connection, &jobs, marker.as_ref()))
            .await
    }

    async fn insert_migrated(&self, job: crate::store::migrate::MigratedJob) -> StoreResult<bool> {
        self.connections
            .write(move |connection| queries::insert_migrated(connection, &job))
            .await
    }

    async fn meta_or_insert(&self, key: &str, value: String) -> StoreResult<String> {
        let key = key.to_string();
        self.connections
            .write(move |connection| queries::meta_or_insert(connection, &key, &value))
            .await
    }

    async fn session(&self, id: &str, now: i64) -> StoreResult<Option<StoredSession>> {
        let id = id.to_string();
        self.connections
            .read(move |connection| sessions::get(connection, &id, now))
            .await
    }

    async fn create_sessions(
        &self,
        batch: Vec<StoredSession>,
        now: i64,
        cap: u64,
    ) -> StoreResult<Vec<bool>> {
        self.connections
            .write(move |connection| sessions::create(connection, &batch, now, cap))
            .await
    }

    async fn save_session(&self, session: StoredSession, now: i64, cap: u64) -> StoreResult<()> {
        self.connections
            .write(move |connection| sessions::save(connection, &session, now, cap))
            .await
    }

    async fn delete_session(&self, id: &str) -> StoreResult<()> {
        let id = id.to_string();
        self.connections
            .write(move |connection| sessions::delete(connection, &id))
            .await
    }

    async fn count_sessions(&self) -> StoreResult<u64> {
        self.connections.read(sessions::count).await
    }

    async fn exclusive(&self, _name: &'static str) -> StoreResult<Exclusive> {
        Ok(Exclusive::new(self.exclusive.clone().lock_owned().await))
    }

    async fn claim_delivery(&self, now: i64, until: i64) -> StoreResult<Option<Delivery>> {
        self.connections
            .write(move |connection| outbox::claim(connection, now, until))
            .await
    }

    async fn next_delivery_at(&self) -> StoreResult<Option<i64>> {
        self.connections.read(outbox::next_at).await
    }

    async fn pending_deliveries(&self) -> StoreResult<u64> {
        self.connections.read(outbox::pending).await
    }

    async fn remove_delivery(&self, delivery: &str) -> StoreResult<()> {
        let delivery = delivery.to_string();
        self.connections
            .write(move |connection| outbox::remove(connection, &delivery))
            .await
    }

    async fn postpone_delivery(
        &self,
        delivery: &str,
        attempts: u32,
        next_at: i64,
    ) -> StoreResult<()> {
        let delivery = delivery.to_string();
        self.connections
            .write(move |connection| outbox::postpone(connection, &delivery, attempts, next_at))
            .await
    }

    async fn replace_passages(&self, id: &JobId, passages: Vec<NewPassage>) -> StoreResult<()> {
        let id = id.clone();
        self.connections
            .write(move |connection| passages::replace(connection, &id, &passages))
            .await
    }

    async fn jobs_without_passages(&self, limit: usize) -> StoreResult<Vec<JobId>> {
        self.connections
            .read(move |connection| passages::jobs_without_passages(connection, limit))
            .await
    }

    async fn search_passages(
        &self,
        words: &[String],
        scope: &PassageScope,
        limit: usize,
    ) -> StoreResult<Vec<i64>> {
        let (words, scope) = (words.to_vec(), scope.clone());
        self.connections
            .read(move |connection| passages::search(connection, &words, &scope, limit))
            .await
    }

    async fn passage_vectors(&self, scope: &PassageScope) -> StoreResult<Vec<(i64, Vec<f32>)>> {
        let scope = scope.clone();
        self.connections
            .read(move |connection| passages::vectors(connection, &scope))
            .await
    }

    async fn passages(&self, ids: &[i64]) -> StoreResult<Vec<Passage>> {
        let ids = ids.to_vec();
        self.connections
            .read(move |connection| passages::by_ids(connection, &ids))
            .await
    }

    async fn passages_without_vectors(&self, limit: usize) -> StoreResult<Vec<(i64, String)>> {
        self.connections
            .read(move |connection| passages::without_vectors(connection, limit))
            .await
    }

    async fn set_passage_vectors(&self, vectors: Vec<(i64, Vec<f32>)>) -> StoreResult<()> {
        self.connections
            .write(move |connection| passages::set_vectors(connection, &vectors))
            .await
    }

    async fn save_ask(&self, record: AskRecord) -> StoreResult<()> {
        self.connections
            .write(move |connection| passages::save_ask(connection, &record))
            .await
    }

    async fn recent_asks(&self, job: Option<&JobId>, limit: usize) -> StoreResult<Vec<AskRecord>> {
        let job = job.cloned();
        self.connections
            .read(move |connection| passages::recent_asks(connection, job.as_ref(), limit))
            .await
    }

    async fn ask(&self, id: &str) -> StoreResult<AskRecord> {
        let id = id.to_string();
        self.connections
            .read(move |connection| passages::ask(connection, &id))
            .await
    }

    async fn delete_ask(&self, id: &str) -> StoreResult<()> {
        let id = id.to_string();
        self.connections
            .write(move |connection| passages::delete_ask(connection, &id))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_mean_what_they_mean_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let backend = SqliteBackend::open(dir.path()).unwrap();
        crate::store::sessions::tests::sessions_meaning(&backend).await;
    }

    #[test]
    fn driver_errors_become_store_errors_with_words() {
        assert_eq!(
            StoreError::from(rusqlite::Error::QueryReturnedNoRows),
            StoreError::NotFound
        );
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(matches!(
            StoreError::from(busy),
            StoreError::Unavailable(message) if message.contains("busy")
        ));
        let taken = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
            Some("UNIQUE constraint failed: jobs.id".into()),
        );
        assert!(matches!(StoreError::from(taken), StoreError::Conflict(_)));
    }

    #[tokio::test]
    async fn a_duplicate_job_id_is_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let id = JobId::parse("same").unwrap();
        store
            .create_job_with_id(id.clone(), NewJob::default())
            .await
            .unwrap();
        assert!(matches!(
            store.create_job_with_id(id, NewJob::default()).await,
            Err(StoreError::Conflict(_))
        ));
    }
}
