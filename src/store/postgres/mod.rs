//! The PostgreSQL backend (`DATABASE_URL`): one database that several FocusFlow processes share.
//!
//! Connections come from a small pool; every call that writes more than one row runs in one
//! transaction, as with SQLite. Reads that must see one moment (a job with its log lines, a
//! page with its jobs' lines) run in a read-only REPEATABLE READ transaction. The driver's and
//! the pool's errors become [`StoreError`]s here and go no further: an unreachable server or a
//! full pool is `Unavailable`, with words that say which.

mod events;
mod migrations;
mod outbox;
mod passages;
mod queries;
mod rows;
mod search;
mod sessions;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::{IsolationLevel, NoTls};

use super::backend::{Backend, Exclusive, Update, Updated};
use super::leases::{Claimed, LeaseOwner};
use super::legacy::ImportedJob;
use super::outbox::Delivery;
use super::passages::{AskRecord, NewPassage, Passage, PassageScope};
use super::search::{JobFilter, JobPage};
use super::sessions::StoredSession;
use super::{NewJob, StoreError, StoreResult};
use crate::config::DatabaseUrl;
use crate::jobs::{Job, JobId, LogLine};

/// Connections per process: requests and workers share them, and each call holds one only
/// for its statements.
const POOL_SIZE: usize = 16;
/// How long a call waits for a free connection, and for a new one to be made.
const WAIT: Duration = Duration::from_secs(10);
const CONNECT: Duration = Duration::from_secs(5);
/// How often, and after what pause, a claim that found only locked queued jobs looks again.
const CLAIM_TRIES: usize = 5;
const CLAIM_PAUSE: Duration = Duration::from_millis(20);

/// The driver's error in words: the server's message (and detail) when it sent one.
fn words(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        let Some(code) = error.code() else {
            return StoreError::Unavailable(format!(
                "the connection to PostgreSQL failed: {}",
                words(&error)
            ));
        };
        match code {
            code if *code == SqlState::UNIQUE_VIOLATION => StoreError::Conflict(
                "the change conflicts with what is stored (the record exists already)".into(),
            ),
            code if *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::LOCK_NOT_AVAILABLE =>
            {
                StoreError::Unavailable(format!(
                    "the database was busy with a conflicting change; try again: {}",
                    words(&error)
                ))
            }
            code if *code == SqlState::DISK_FULL => StoreError::Unavailable(format!(
                "the disk that holds the database is full: {}",
                words(&error)
            )),
            code if code.code().starts_with("08") || code.code().starts_with("57") => {
                StoreError::Unavailable(format!(
                    "PostgreSQL is unreachable or shutting down: {}",
                    words(&error)
                ))
            }
            _ => StoreError::Unavailable(format!("database error: {}", words(&error))),
        }
    }
}

pub struct PostgresBackend {
    pool: Pool,
    /// How to connect, for the connection that listens for other processes' events.
    config: tokio_postgres::Config,
    /// The server, without its password, for error messages.
    shown: String,
}

impl PostgresBackend {
    /// Connects to the database and brings its schema up to date. Fails (Unavailable, with
    /// words) when the server cannot be reached.
    pub async fn connect(url: &DatabaseUrl) -> StoreResult<Self> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&url.host)
            .port(url.port)
            .user(&url.user)
            .dbname(&url.database)
            .application_name(url.application_name.as_deref().unwrap_or("focusflow"))
            .connect_timeout(url.connect_timeout.unwrap_or(CONNECT))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .ssl_mode(tokio_postgres::config::SslMode::Disable);
        if let Some(password) = &url.password {
            config.password(password.expose());
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(WAIT))
            .create_timeout(Some(url.connect_timeout.unwrap_or(CONNECT)))
            .recycle_timeout(Some(CONNECT))
            .build()
            .map_err(|error| {
                StoreError::Unavailable(format!("could not set up the connection pool: {error}"))
            })?;
        let backend = Self {
            pool,
            config,
            shown: url.shown(),
        };
        let mut client = backend.client().await?;
        migrations::migrate(&mut client).await?;
        Ok(backend)
    }

    /// Live events shared with every other process on this database (`LISTEN/NOTIFY`).
    pub fn events(&self) -> events::SharedEvents {
        events::SharedEvents::start(self.pool.clone(), self.config.clone())
    }

    /// A connection from the pool, or Unavailable saying why there is none.
    async fn client(&self) -> StoreResult<deadpool_postgres::Client> {
        self.pool.get().await.map_err(|error| match error {
            PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
                StoreError::Unavailable(format!(
                    "no connection to PostgreSQL was free within {} s (the database is slow or overloaded)",
                    WAIT.as_secs()
                ))
            }
            PoolError::Timeout(_) => StoreError::Unavailable(format!(
                "PostgreSQL at {} did not answer in time",
                self.shown
            )),
            PoolError::Backend(error) => StoreError::Unavailable(format!(
                "could not connect to PostgreSQL at {}: {}",
                self.shown,
                words(&error)
            )),
            other => StoreError::Unavailable(format!(
                "could not connect to PostgreSQL at {}: {other}",
                self.shown
            )),
        })
    }

    /// A read-only transaction that sees one moment of the database.
    async fn snapshot<'a>(
        client: &'a mut deadpool_postgres::Client,
    ) -> StoreResult<deadpool_postgres::Transaction<'a>> {
        Ok(client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?)
    }
}

#[async_trait]
impl Backend for PostgresBackend {
    fn name(&self) -> &'static str {
        "postgresql"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    async fn create_job(&self, id: JobId, new: NewJob) -> StoreResult<(Job, Vec<LogLine>)> {
        let mut client = self.client().await?;
        queries::create_job(&mut client, &id, new).await
    }

    async fn job(&self, id: &JobId) -> StoreResult<Job> {
        rows::get_job(&self.client().await?, id, rows::RowLock::None).await
    }

    async fn job_with_logs(&self, id: &JobId) -> StoreResult<(Job, Vec<LogLine>)> {
        let mut client = self.client().await?;
        let transaction = Self::snapshot(&mut client).await?;
        let job = rows::get_job(&transaction, id, rows::RowLock::None).await?;
        let logs = queries::logs_after(&transaction, id, 0).await?;
        transaction.commit().await?;
        Ok((job, logs))
    }

    async fn all_jobs_with_logs(&self) -> StoreResult<Vec<(Job, Vec<LogLine>)>> {
        let mut client = self.client().await?;
        let transaction = Self::snapshot(&mut client).await?;
        let jobs = queries::all_jobs(&transaction).await?;
        let logs = queries::all_logs(&transaction).await?;
        transaction.commit().await?;
        Ok(super::backend::with_logs(jobs, logs))
    }

    async fn job_order(&self) -> StoreResult<Vec<JobId>> {
        queries::job_order(&self.client().await?).await
    }

    async fn jobs_with_logs(&self, ids: &[JobId]) -> StoreResult<Vec<(Job, Vec<LogLine>)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = ids.iter().map(JobId::as_str).collect();
        let mut client = self.client().await?;
        let transaction = Self::snapshot(&mut client).await?;
        let jobs = queries::jobs_by_ids(&transaction, &ids).await?;
        let logs = queries::logs_of_jobs(&transaction, &ids).await?;
        transaction.commit().await?;
        Ok(super::backend::with_logs(jobs, logs))
    }

    async fn list_jobs(&self, limit: usize, offset: usize) -> StoreResult<Vec<Job>> {
        queries::list_jobs(&self.client().await?, limit, offset).await
    }

    async fn find_jobs(&self, filter: JobFilter) -> StoreResult<JobPage> {
        search::list(&self.client().await?, &filter).await
    }

    async fn find_jobs_with_logs(
        &self,
        filter: JobFilter,
    ) -> StoreResult<(JobPage, HashMap<JobId, Vec<LogLine>>)> {
        let mut client = self.client().await?;
        let transaction = Self::snapshot(&mut client).await?;
        let page = search::list(&transaction, &filter).await?;
        let ids: Vec<&str> = page
            .jobs
            .iter()
            .map(|found| found.job.id.as_str())
            .collect();
        let logs = queries::logs_of_jobs(&transaction, &ids).await?;
        transaction.commit().await?;
        Ok((page, logs))
    }

    async fn count_by_status(&self) -> StoreResult<Vec<(String, u64)>> {
        queries::count_by_status(&self.client().await?).await
    }

    async fn count_jobs(&self) -> StoreResult<u64> {
        queries::count_jobs(&self.client().await?).await
    }

    async fn queue_order(&self) -> StoreResult<Vec<JobId>> {
        queries::queue_order(&self.client().await?).await
    }

    async fn logs_after(&self, id: &JobId, seq: i64) -> StoreResult<Vec<LogLine>> {
        queries::logs_after(&self.client().await?, id, seq).await
    }

    async fn append_log(
        &self,
        id: &JobId,
        message: String,
        holder: Option<LeaseOwner>,
    ) -> StoreResult<LogLine> {
        let mut client = self.client().await?;
        queries::append_log(&mut client, id, &message, holder.as_ref()).await
    }

    async fn update(&self, id: &JobId, update: Update) -> StoreResult<Option<Updated>> {
        let mut client = self.client().await?;
        queries::apply_update(&mut client, id, update).await
    }

    async fn index_transcript(
        &self,
        id: &JobId,
        text: String,
        holder: Option<LeaseOwner>,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        search::index_transcript(&mut client, id, &text, holder.as_ref()).await
    }

    async fn claim_next(
        &self,
        owner: &LeaseOwner,
        lease: Duration,
    ) -> StoreResult<Option<Claimed>> {
        let mut client = self.client().await?;
        // A free job whose row another transaction holds for a moment is looked at again (a
        // few times, briefly): the wake-up that sent the worker here is spent.
        for _ in 0..CLAIM_TRIES {
            match queries::claim_next(&mut client, owner, lease).await? {
                queries::Claim::Job(claimed) => return Ok(Some(*claimed)),
                queries::Claim::Empty => return Ok(None),
                queries::Claim::Busy => tokio::time::sleep(CLAIM_PAUSE).await,
            }
        }
        Ok(None)
    }

    async fn renew_lease(
        &self,
        id: &JobId,
        owner: &LeaseOwner,
        lease: Duration,
    ) -> StoreResult<bool> {
        queries::renew_lease(&self.client().await?, id, owner, lease).await
    }

    async fn next_lease_expiry(&self) -> StoreResult<Option<i64>> {
        queries::next_lease_expiry(&self.client().await?).await
    }

    async fn leased_jobs(&self) -> StoreResult<Vec<JobId>> {
        queries::leased_jobs(&self.client().await?).await
    }

    async fn requeue_interrupted(&self) -> StoreResult<usize> {
        queries::requeue_interrupted(&self.client().await?).await
    }

    async fn delete_job(&self, id: &JobId) -> StoreResult<Job> {
        queries::delete_job(&self.client().await?, id).await
    }

    async fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        queries::meta(&self.client().await?, key).await
    }

    async fn import_jobs(
        &self,
        jobs: Vec<ImportedJob>,
        marker: Option<(&'static str, String)>,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        queries::import_jobs(&mut client, &jobs, marker.as_ref()).await
    }

    async fn insert_migrated(&self, job: crate::store::migrate::MigratedJob) -> StoreResult<bool> {
        let mut client = self.client().await?;
        queries::insert_migrated(&mut client, &job).await
    }

    async fn session(&self, id: &str, now: i64) -> StoreResult<Option<StoredSession>> {
        sessions::get(&self.client().await?, id, now).await
    }

    async fn create_sessions(
        &self,
        batch: Vec<StoredSession>,
        now: i64,
        cap: u64,
    ) -> StoreResult<Vec<bool>> {
        sessions::create(&mut self.client().await?, &batch, now, cap).await
    }

    async fn save_session(&self, session: StoredSession, now: i64, cap: u64) -> StoreResult<()> {
        sessions::save(&self.client().await?, &session, now, cap).await
    }

    async fn delete_session(&self, id: &str) -> StoreResult<()> {
        sessions::delete(&self.client().await?, id).await
    }

    async fn count_sessions(&self) -> StoreResult<u64> {
        sessions::count(&self.client().await?).await
    }

    async fn meta_or_insert(&self, key: &str, value: String) -> StoreResult<String> {
        queries::meta_or_insert(&self.client().await?, key, &value).await
    }

    /// A session-level advisory lock on a connection of its own (not the pool's, which would
    /// keep the lock after the guard is gone): dropping the guard closes that connection, and
    /// the server releases the lock with it, as it does when the process dies.
    async fn exclusive(&self, name: &'static str) -> StoreResult<Exclusive> {
        let (client, connection) = self.config.connect(NoTls).await?;
        let connection = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "the connection holding a lock ended");
            }
        });
        client
            .execute(
                "SELECT pg_advisory_lock(hashtextextended($1, 0))",
                &[&format!("focusflow:{name}")],
            )
            .await?;
        struct Held {
            _client: tokio_postgres::Client,
            connection: tokio::task::JoinHandle<()>,
        }
        impl Drop for Held {
            fn drop(&mut self) {
                // The client goes with this; the connection task ends on its own then. Aborting
                // it too makes sure the socket is closed even if the task is not polled again.
                self.connection.abort();
            }
        }
        Ok(Exclusive::new(Held {
            _client: client,
            connection,
        }))
    }

    async fn claim_delivery(&self, now: i64, until: i64) -> StoreResult<Option<Delivery>> {
        outbox::claim(&self.client().await?, now, until).await
    }

    async fn next_delivery_at(&self) -> StoreResult<Option<i64>> {
        outbox::next_at(&self.client().await?).await
    }

    async fn pending_deliveries(&self) -> StoreResult<u64> {
        outbox::pending(&self.client().await?).await
    }

    async fn remove_delivery(&self, delivery: &str) -> StoreResult<()> {
        outbox::remove(&self.client().await?, delivery).await
    }

    async fn postpone_delivery(
        &self,
        delivery: &str,
        attempts: u32,
        next_at: i64,
    ) -> StoreResult<()> {
        outbox::postpone(&self.client().await?, delivery, attempts, next_at).await
    }

    async fn replace_passages(&self, id: &JobId, passages: Vec<NewPassage>) -> StoreResult<()> {
        let mut client = self.client().await?;
        passages::replace(&mut client, id, &passages).await
    }

    async fn jobs_without_passages(&self, limit: usize) -> StoreResult<Vec<JobId>> {
        passages::jobs_without_passages(&self.client().await?, limit).await
    }

    async fn search_passages(
        &self,
        words: &[String],
        scope: &PassageScope,
        limit: usize,
    ) -> StoreResult<Vec<i64>> {
        passages::search(&self.client().await?, words, scope, limit).await
    }

    async fn passage_vectors(&self, scope: &PassageScope) -> StoreResult<Vec<(i64, Vec<f32>)>> {
        passages::vectors(&self.client().await?, scope).await
    }

    async fn passages(&self, ids: &[i64]) -> StoreResult<Vec<Passage>> {
        passages::by_ids(&self.client().await?, ids).await
    }

    async fn passages_without_vectors(&self, limit: usize) -> StoreResult<Vec<(i64, String)>> {
        passages::without_vectors(&self.client().await?, limit).await
    }

    async fn set_passage_vectors(&self, vectors: Vec<(i64, Vec<f32>)>) -> StoreResult<()> {
        let mut client = self.client().await?;
        passages::set_vectors(&mut client, &vectors).await
    }

    async fn save_ask(&self, record: AskRecord) -> StoreResult<()> {
        passages::save_ask(&self.client().await?, &record).await
    }

    async fn recent_asks(&self, job: Option<&JobId>, limit: usize) -> StoreResult<Vec<AskRecord>> {
        passages::recent_asks(&self.client().await?, job, limit).await
    }

    async fn ask(&self, id: &str) -> StoreResult<AskRecord> {
        passages::ask(&self.client().await?, id).await
    }

    async fn delete_ask(&self, id: &str) -> StoreResult<()> {
        passages::delete_ask(&self.client().await?, id).await
    }
}

/// Run against a real server when `FOCUSFLOW_TEST_DATABASE_URL` is set (`.ci/postgres.sh`);
/// each test makes a database of its own and drops it.
#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::search::tests::{find, pages_meaning, search_meaning};
    use crate::store::tests::{job_at, lease_meaning, lost_lease_meaning};
    use crate::store::{Artifacts, InProcess, Store};

    /// The test server's URL (a test setting, not one of the application's).
    const SERVER_VARIABLE: &str = "FOCUSFLOW_TEST_DATABASE_URL";

    /// A fresh database on the test server, dropped when this goes.
    struct Scratch {
        server: String,
        name: String,
    }

    impl Scratch {
        async fn new() -> Option<Self> {
            let server = std::env::var(SERVER_VARIABLE).ok()?;
            static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let name = format!(
                "focusflow_unit_{}_{}",
                std::process::id(),
                COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            Self::admin(
                &server,
                &format!("CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0"),
            )
            .await;
            Some(Self { server, name })
        }

        async fn admin(server: &str, sql: &str) {
            let (client, connection) = tokio_postgres::connect(server, NoTls).await.unwrap();
            let connection = tokio::spawn(connection);
            client.batch_execute(sql).await.unwrap();
            drop(client);
            let _ = connection.await;
        }

        fn url(&self) -> DatabaseUrl {
            let (base, _) = self.server.rsplit_once('/').unwrap();
            DatabaseUrl::parse(&format!("{base}/{}", self.name)).unwrap()
        }

        async fn store(&self) -> Store {
            let backend = PostgresBackend::connect(&self.url()).await.unwrap();
            let dir = std::env::temp_dir().join(&self.name);
            Store::with_backend(
                Arc::new(backend),
                Arc::new(InProcess::new()),
                Artifacts::new(dir),
            )
        }

        async fn drop_database(self) {
            Self::admin(
                &self.server,
                &format!("DROP DATABASE {} WITH (FORCE)", self.name),
            )
            .await;
        }
    }

    #[tokio::test]
    async fn sessions_mean_what_they_mean_on_postgresql() {
        let Some(scratch) = Scratch::new().await else {
            eprintln!("skipped: FOCUSFLOW_TEST_DATABASE_URL is not set");
            return;
        };
        let backend = PostgresBackend::connect(&scratch.url()).await.unwrap();
        crate::store::sessions::tests::sessions_meaning(&backend).await;
        drop(backend);
        scratch.drop_database().await;
    }

    #[tokio::test]
    async fn search_and_pages_mean_what_they_mean_on_sqlite() {
        let Some(scratch) = Scratch::new().await else {
            eprintln!("skipped: FOCUSFLOW_TEST_DATABASE_URL is not set");
            return;
        };
        search_meaning(scratch.store().await).await;
        scratch.drop_database().await;
        let Some(scratch) = Scratch::new().await else {
            return;
        };
        pages_meaning(scratch.store().await).await;
        scratch.drop_database().await;
    }

    /// Whatever a person types, the search answers (no syntax error reaches the database).
    #[tokio::test]
    async fn odd_queries_never_fail() {
        let Some(scratch) = Scratch::new().await else {
            eprintln!("skipped: FOCUSFLOW_TEST_DATABASE_URL is not set");
            return;
        };
        let store = scratch.store().await;
        let job = job_at(&store, "https://a.example/x.mp3").await;
        store
            .update(
                &job.id,
                crate::store::Changes::new()
                    .title(Some("Café <b>budget</b> & R&D: follow-up".into())),
            )
            .await
            .unwrap();
        for query in [
            "'",
            "\"",
            "\\",
            ":*",
            "a:b",
            "&&",
            "|",
            "!",
            "!!x",
            "<->",
            "<2>",
            "(",
            ")",
            "()",
            "a & | b",
            "x:A",
            "*",
            "-",
            "nothing-like-this",
            "o'brien",
            "Ωμέγα",
            "²",
            "🙂",
            "x\u{301}",
            "\u{301}",
            "NEAR(a b)",
            "a AND b OR c",
            "'; DROP TABLE jobs; --",
            "follow-up",
            "r&d",
            "café",
            "cafe",
            "<b>",
            "&amp;",
            "\u{E000}",
            "\0",
        ] {
            let page = store
                .find_jobs(JobFilter {
                    query: Some(query.into()),
                    limit: 10,
                    ..Default::default()
                })
                .await;
            assert!(page.is_ok(), "{query:?}: {page:?}");
        }
        let found = |query: &str| find(store.clone(), query.to_string());
        for query in ["cafe", "café", "budget", "follow-up", "r&d", "follow"] {
            assert_eq!(found(query).await.jobs.len(), 1, "{query}");
        }
        let snippet = found("budget").await.jobs[0].snippet.clone().unwrap();
        assert!(
            snippet.contains("<b>\u{E000}budget\u{E001}</b>"),
            "the text as written, the match marked: {snippet}"
        );
        scratch.drop_database().await;
    }

    /// Replicas claiming at once each get a different job; every job is claimed once.
    #[tokio::test]
    async fn replicas_that_claim_together_never_take_the_same_job() {
        let Some(scratch) = Scratch::new().await else {
            eprintln!("skipped: FOCUSFLOW_TEST_DATABASE_URL is not set");
            return;
        };
        let (one, two) = tokio::join!(scratch.store(), scratch.store());
        for n in 0..20 {
            job_at(&one, &format!("https://a.example/{n}")).await;
        }
        let claim_all = |store: Store| async move {
            let owner = LeaseOwner::generate();
            let mut claimed = Vec::new();
            while let Some(found) = store
                .claim_next(&owner, Duration::from_secs(60))
                .await
                .unwrap()
            {
                claimed.push(found.job.id);
            }
            claimed
        };
        let (a, b) = tokio::join!(
            tokio::spawn(claim_all(one.clone())),
            tokio::spawn(claim_all(two.clone()))
        );
        let mut all: Vec<_> = a.unwrap().into_iter().chain(b.unwrap()).collect();
        assert_eq!(all.len(), 20);
        all.sort_by(|x, y| x.as_str().cmp(y.as_str()));
        all.dedup();
        assert_eq!(all.len(), 20, "no job claimed twice");
        scratch.drop_database().await;
    }

    #[tokio::test]
    async fn leases_mean_what_they_mean_on_sqlite() {
        let Some(scratch) = Scratch::new().await else {
            eprintln!("skipped: FOCUSFLOW_TEST_DATABASE_URL is not set");
            return;
        };
        lease_meaning(scratch.store().await).await;
        scratch.drop_database().await;
        let Some(scratch) = Scratch::new().await else {
            return;
        };
        lost_lease_meaning(scratch.store().await).await;
        scratch.drop_database().await;
    }

    /// Three replicas starting at once: one migrates, the others find the schema ready.
    #[tokio::test]
    async fn replicas_that_start_together_migrate_once() {
        let Some(scratch) = Scratch::new().await else {
            eprintln!("skipped: FOCUSFLOW_TEST_DATABASE_URL is not set");
            return;
        };
        let url = scratch.url();
        let (a, b, c) = tokio::join!(
            PostgresBackend::connect(&url),
            PostgresBackend::connect(&url),
            PostgresBackend::connect(&url)
        );
        let backend = a.unwrap();
        b.unwrap();
        c.unwrap();
        let client = backend.client().await.unwrap();
        let steps: i64 = client
            .query_one("SELECT COUNT(*) FROM focusflow_schema", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(steps as usize, migrations::MIGRATIONS.len());
        drop(client);
        drop(backend);
        scratch.drop_database().await;
    }

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable_in_words_without_the_password() {
        // Port 1 on loopback: nothing listens, the refusal is immediate.
        let url = DatabaseUrl::parse("postgres://focus:pg-secret@127.0.0.1:1/focusflow").unwrap();
        let Err(StoreError::Unavailable(message)) = PostgresBackend::connect(&url).await else {
            panic!("connecting to nothing must fail as Unavailable");
        };
        assert!(
            message.contains("could not connect to PostgreSQL at postgres://focus:[redacted]@127.0.0.1:1/focusflow"),
            "{message}"
        );
        assert!(!message.contains("pg-secret"), "{message}");
    }
}
