//! The worker: takes queued jobs from the store and moves each through its stages, recording a
//! checkpoint after every stage so that a retry or a restart resumes where it stopped.

pub mod download;
mod lease;
pub mod llm;
pub mod plaud;
pub mod resolve;
pub mod split;
pub mod summarize;
pub mod templates;
pub mod transcribe;
pub mod webhook;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::Config;
use crate::jobs::{ErrorKind, Job, JobId, Stage, Status, now_millis};
use crate::metrics::Metrics;
use crate::net::Clients;
use crate::net::guard::{AudioUrl, AudioUrlError};
use crate::store::{Changes, Claimed, HeldJob, JobEvent, LeaseOwner, Store, StoreError};

/// Why a stage failed, in words for the person who reads the job, and of which kind when the
/// place that failed knows (else the stage's own kind is recorded: `stage_failure`).
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{message}")]
    Failed {
        message: String,
        kind: Option<ErrorKind>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StageError {
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed {
            message: message.into(),
            kind: None,
        }
    }

    pub fn of_kind(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::Failed {
            message: message.into(),
            kind: Some(kind),
        }
    }

    /// The same error, of `default` when it has no kind yet.
    fn or_kind(self, default: ErrorKind) -> Self {
        match self {
            Self::Failed { message, kind } => Self::Failed {
                message,
                kind: kind.or(Some(default)),
            },
            other => other,
        }
    }

    /// The kind recorded for the job: a store failure is `Other`.
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Failed { kind, .. } => kind.unwrap_or(ErrorKind::Other),
            Self::Store(_) => ErrorKind::Other,
        }
    }
}

impl From<crate::net::retry::ProviderError> for StageError {
    fn from(error: crate::net::retry::ProviderError) -> Self {
        Self::Failed {
            message: error.message().to_string(),
            kind: error.kind(),
        }
    }
}

/// What a failure in `stage` is when the code that failed did not say.
fn stage_failure(stage: Stage) -> ErrorKind {
    match stage {
        Stage::Resolve => ErrorKind::BadLink,
        Stage::Download => ErrorKind::DownloadFailed,
        Stage::Transcribe => ErrorKind::TranscriptionFailed,
        Stage::Summarize => ErrorKind::SummaryFailed,
    }
}

pub type StageResult<T> = Result<T, StageError>;

/// The clients of the external services the stages call, built once when the workers start
/// (not per job): each speaks its service's wire format. None where no key is configured.
#[derive(Debug)]
pub struct Services {
    pub llm: Option<llm::Llm>,
    pub assemblyai: Option<transcribe::assemblyai::AssemblyAi>,
    pub speech_to_text: Option<transcribe::openai::SpeechToText>,
    pub plaud: plaud::Plaud,
}

impl Services {
    pub fn new(config: &Config, clients: &Clients) -> Self {
        Self {
            llm: llm::Llm::from_config(config, clients.trusted.clone()),
            assemblyai: transcribe::assemblyai::AssemblyAi::from_config(
                config,
                clients.trusted.clone(),
            ),
            speech_to_text: transcribe::openai::SpeechToText::from_config(
                config,
                clients.trusted.clone(),
            ),
            plaud: plaud::Plaud::from_config(config, clients.trusted.clone()),
        }
    }
}

/// What a stage needs: the store, the configuration, the HTTP clients, and the job it works on.
#[derive(Clone)]
pub struct StageContext {
    pub store: Store,
    pub config: Arc<Config>,
    pub clients: Clients,
    pub services: Arc<Services>,
    pub job_id: JobId,
    /// The job's writes, each refused once this worker no longer holds the job's lease.
    pub held: HeldJob,
    pub metrics: Metrics,
}

impl StageContext {
    /// Appends a line to the job's log (and to the tracing output), with any secret a
    /// provider echoed redacted.
    pub async fn log(&self, message: impl Into<String>) {
        let message = self.config.redact(&message.into());
        tracing::info!(job = %self.job_id, "{message}");
        if let Err(error) = self.held.log(message).await {
            tracing::warn!(job = %self.job_id, %error, "could not append a log line");
        }
    }

    /// Hears about a provider call that will be tried again: counted, and logged for the job.
    pub async fn retrying(&self, provider: &'static str, message: String) {
        self.metrics.provider_retry(provider);
        self.log(message).await;
    }

    pub async fn update(&self, changes: Changes) -> StageResult<Job> {
        Ok(self.held.update(changes).await?)
    }

    /// A URL the store holds, through the address guard once more (the policy may have
    /// changed since it was stored, and a Plaud answer was never checked). `what` names it in
    /// the message when it is not a URL at all.
    fn audio_url(&self, stored: &str, what: &str) -> StageResult<AudioUrl> {
        AudioUrl::parse(stored, &self.clients.policy).map_err(|error| match error {
            AudioUrlError::NotAUrl(error) => {
                StageError::of_kind(ErrorKind::BadLink, format!("{what} is not valid: {error}"))
            }
            AudioUrlError::Refused(refusal) => {
                StageError::of_kind(ErrorKind::AddressRefused, refusal.to_string())
            }
        })
    }

    /// The link a job was created from, for the resolve stage.
    fn job_link(&self, job: &Job) -> StageResult<AudioUrl> {
        match job.source().link() {
            Some(link) => self.audio_url(link, "the job's URL"),
            None => Err(StageError::of_kind(
                ErrorKind::BadLink,
                "the job brought its own input and has no link to resolve",
            )),
        }
    }

    /// What the download stage fetches: the resolved URL, else the job's link.
    fn download_url(&self, job: &Job) -> StageResult<AudioUrl> {
        let stored = job.resolved_url.as_deref().unwrap_or(&job.url);
        self.audio_url(stored, "the audio URL")
    }
}

/// Wakes the workers when a job is queued. Cheap to clone.
#[derive(Clone, Default)]
pub struct Queue {
    notify: Arc<Notify>,
    running: Arc<Mutex<HashMap<JobId, CancellationToken>>>,
    /// Wakes the webhook dispatcher when an event is written to the outbox.
    pub webhooks: Arc<Notify>,
}

impl Queue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells one idle worker there is work (or the next worker to look, if none is idle).
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Stops the job's pipeline if a worker runs it now (e.g. because it is being deleted).
    pub fn cancel(&self, id: &JobId) -> bool {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match running.get(id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    pub fn is_running(&self, id: &JobId) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(id)
    }

    /// With events that several processes share: a job queued by another process wakes an
    /// idle worker here at once (not at the next poll), and a job deleted by another process
    /// stops its pipeline here. This process's own events do the same again, which costs a
    /// claim that finds nothing.
    pub fn follow(&self, store: &Store, shutdown: CancellationToken) {
        let queue = self.clone();
        let mut events = store.subscribe();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    event = events.recv() => event,
                };
                match event {
                    Ok(JobEvent::Status {
                        status: Status::Queued,
                        ..
                    }) => queue.wake(),
                    Ok(JobEvent::Deleted { job_id }) => {
                        queue.cancel(&job_id);
                    }
                    Ok(_) => {}
                    // Missed some: any of them may have queued a job.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => queue.wake(),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
}

#[derive(Clone)]
pub struct Worker {
    pub store: Store,
    pub config: Arc<Config>,
    pub clients: Clients,
    pub queue: Queue,
    pub metrics: Metrics,
    /// This application's name on the leases of the jobs it runs.
    pub owner: LeaseOwner,
}

/// The safety net: a worker looks for work this often even if no wake-up came.
const IDLE_POLL: Duration = Duration::from_secs(30);

impl Worker {
    /// Starts `WORKER_CONCURRENCY` worker loops; they end when `shutdown` is cancelled.
    pub fn spawn(self, shutdown: CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
        let services = Arc::new(Services::new(&self.config, &self.clients));
        (0..self.config.worker_concurrency)
            .map(|index| {
                let worker = self.clone();
                let shutdown = shutdown.clone();
                let services = services.clone();
                tokio::spawn(
                    async move { worker.run(services, shutdown).await }
                        .instrument(tracing::info_span!("worker", index)),
                )
            })
            .collect()
    }

    /// One worker loop: take jobs until there are none, then wait for a wake-up.
    pub async fn run(&self, services: Arc<Services>, shutdown: CancellationToken) {
        loop {
            // Register interest before looking, so a job queued in between is not missed.
            let notified = self.queue.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if shutdown.is_cancelled() {
                return;
            }
            let claim = self
                .store
                .claim_next(&self.owner, self.config.job_lease)
                .await;
            let (error, what) = match claim {
                Ok(Some(claimed)) => {
                    // A worker that found a job stops listening before it works on it: a
                    // wake-up meant for an idle worker must not be spent on a busy one (with two
                    // workers, a job queued while one waited on a silent provider sat in the
                    // queue until that one was done). Replacing the registered future with a
                    // fresh one drops it, and tokio hands a wake-up it already got to another
                    // worker. Then one more wake-up, for any other job queued in a burst.
                    notified.set(self.queue.notify.notified());
                    self.queue.wake();
                    match self.run_job(claimed, &services, &shutdown).await {
                        Ok(()) => continue,
                        Err(error) => (error, "the worker could not record a job's end; pausing"),
                    }
                }
                Ok(None) => {
                    let wait = self.until_a_lease_runs_out().await;
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = &mut notified => {}
                        _ = tokio::time::sleep(wait) => {}
                    }
                    continue;
                }
                Err(error) => (error, "the worker could not read the queue; pausing"),
            };
            tracing::error!(%error, "{what}");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    }

    /// How long an idle worker waits before it looks again: until the soonest lease runs out
    /// (its holder may have stopped, and the job is then this worker's to take over), at most
    /// the idle poll.
    async fn until_a_lease_runs_out(&self) -> Duration {
        match self.store.next_lease_expiry().await {
            Ok(Some(until)) => {
                let left = u64::try_from(until - now_millis()).unwrap_or(0);
                // A moment after, so the lease has run out when the claim looks.
                Duration::from_millis(left + 10).min(IDLE_POLL)
            }
            _ => IDLE_POLL,
        }
    }

    /// Runs a claimed job to its end (or until shutdown, deletion, or the loss of its lease),
    /// renewing the job's lease meanwhile.
    async fn run_job(
        &self,
        claimed: Claimed,
        services: &Arc<Services>,
        shutdown: &CancellationToken,
    ) -> Result<(), StoreError> {
        let id = claimed.job.id.clone();
        let cancel = shutdown.child_token();
        self.queue
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), cancel.clone());
        let keeper = tokio::spawn(lease::keep(
            self.store.clone(),
            id.clone(),
            self.owner.clone(),
            self.config.job_lease,
            cancel.clone(),
        ));
        let span = tracing::info_span!("job", job = %id, attempt = claimed.job.attempts);
        let outcome = self
            .process(claimed, services, &cancel, shutdown)
            .instrument(span)
            .await;
        keeper.abort();
        self.queue
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        outcome
    }

    /// Before the stages: what an earlier attempt left half-written goes, and the log says how
    /// the job starts.
    async fn start(&self, context: &StageContext, job: &Job, taken_over: bool) {
        if job.attempts > 1 {
            // A worker that stopped mid-write (a crash, a lost lease) may have left temporary
            // files; the job is this worker's now, so they can go.
            let artifacts = self.store.artifacts().clone();
            let id = job.id.clone();
            let _ = tokio::task::spawn_blocking(move || artifacts.remove_partial_of(&id)).await;
        }
        if taken_over {
            context
                .log("Taken over: the worker that ran the job stopped renewing its lease")
                .await;
        }
        match job.next_stage() {
            Some(Stage::Resolve) | None if job.attempts > 1 => {
                context
                    .log(format!("Attempt {}: starting over", job.attempts))
                    .await
            }
            Some(Stage::Resolve) | None => context.log("Job started").await,
            Some(stage) => {
                context
                    .log(format!(
                        "Attempt {}: resuming at the {stage} stage (checkpoint: {})",
                        job.attempts,
                        job.checkpoint.map(Stage::as_str).unwrap_or("none")
                    ))
                    .await
            }
        }
    }

    async fn process(
        &self,
        claimed: Claimed,
        services: &Arc<Services>,
        cancel: &CancellationToken,
        shutdown: &CancellationToken,
    ) -> Result<(), StoreError> {
        let Claimed { job, taken_over } = claimed;
        let id = job.id.clone();
        let held = self.store.held(id.clone(), self.owner.clone());
        let context = StageContext {
            store: self.store.clone(),
            config: self.config.clone(),
            clients: self.clients.clone(),
            services: services.clone(),
            job_id: id.clone(),
            held: held.clone(),
            metrics: self.metrics.clone(),
        };
        self.start(&context, &job, taken_over).await;

        let budget = self.config.job_timeout;
        let result = tokio::select! {
            result = tokio::time::timeout(budget, run_stages(&context, job)) => match result {
                Ok(result) => result,
                Err(_) => Err(StageError::of_kind(ErrorKind::TimedOut, format!(
                    "the job took longer than its time budget of {} s",
                    budget.as_secs()
                ))),
            },
            _ = cancel.cancelled() => {
                if shutdown.is_cancelled() {
                    // Leave it resumable, and free: back in the queue, checkpoint kept, lease
                    // released so the next start (or another process) takes it at once.
                    let _ = held
                        .finish(
                            Changes::new().status(Status::Queued),
                            "Interrupted by shutdown; the job resumes from its checkpoint at the next start",
                            None,
                        )
                        .await;
                }
                // Otherwise deleted, or taken over by another worker: nothing to record.
                return Ok(());
            }
        };

        self.record_end(&held, result).await
    }

    /// The job's end as its stages left it: completed, or failed with the reason, and its
    /// webhook event, in one write that also releases the lease.
    async fn record_end(&self, held: &HeldJob, result: StageResult<()>) -> Result<(), StoreError> {
        let (changes, message) = match result {
            Ok(()) => {
                tracing::info!("Job completed");
                let changes = Changes::new()
                    .status(Status::Completed)
                    .error(None)
                    .progress(None);
                (changes, "Job completed".to_string())
            }
            // Deleted while it ran, or taken over by another worker: nothing to record.
            Err(StageError::Store(StoreError::NotFound | StoreError::Conflict(_))) => {
                return Ok(());
            }
            Err(error) => {
                // Provider messages may echo a key: never stored, shown or logged as is.
                let message = self.config.redact(&error.to_string());
                let kind = error.kind();
                tracing::warn!(error = %message, kind = kind.as_str(), "job failed");
                if let Ok(failed) = self.store.job(held.id()).await {
                    let stage = failed.current_stage().map(Stage::as_str).unwrap_or("queue");
                    self.metrics.stage_failed(stage);
                }
                let changes = Changes::new()
                    .status(Status::Error)
                    .failure(message.clone(), kind);
                (changes, format!("Failed: {message}"))
            }
        };
        match held
            .finish(changes, message, webhook::event_maker(&self.config))
            .await
        {
            Ok(_) => {
                self.queue.webhooks.notify_one();
                Ok(())
            }
            Err(StoreError::NotFound | StoreError::Conflict(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// Runs every stage after the job's checkpoint, recording each checkpoint as it is reached.
async fn run_stages(context: &StageContext, mut job: Job) -> StageResult<()> {
    while let Some(stage) = job.next_stage() {
        if job.status != stage.status() {
            job = context
                .update(Changes::new().status(stage.status()))
                .await?;
        }
        let started = std::time::Instant::now();
        async {
            match stage {
                Stage::Resolve => resolve::run(context, &job, &context.job_link(&job)?).await,
                Stage::Download => download::run(context, &job, &context.download_url(&job)?).await,
                Stage::Transcribe => transcribe::run(context, &job).await,
                Stage::Summarize => summarize::run(context, &job).await,
            }
        }
        .instrument(tracing::info_span!("stage", stage = stage.as_str()))
        .await
        .map_err(|error| error.or_kind(stage_failure(stage)))?;
        job = context
            .update(Changes::new().checkpoint(Some(stage)))
            .await?;
        context
            .metrics
            .stage_finished(stage.as_str(), started.elapsed());
        tracing::info!(
            stage = stage.as_str(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "stage finished"
        );
    }
    Ok(())
}
