//! FocusFlow: meeting recordings in, executive summaries out.
//!
//! [`Application::build`] wires configuration, store, worker and router together and binds the
//! listener; [`Application::run_until_stopped`] serves until the shutdown token is cancelled.
//! Tests drive the same entry point on port 0.

pub mod ask;
pub mod config;
pub mod domain;
pub mod error;
pub mod export;
pub mod jobs;
pub mod markdown;
pub mod metrics;
pub mod net;
pub mod pipeline;
pub mod service;
pub mod storage;
pub mod store;
pub mod telemetry;
pub mod web;
pub mod zone;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use config::Config;
use net::Clients;
use pipeline::{Queue, Worker};
use store::Store;
use web::AppState;

/// How long running work gets to reach a resumable state after shutdown is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(7);

pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    worker: Worker,
}

impl Application {
    /// Opens the store (importing a legacy `jobs.json` once), re-queues interrupted jobs and
    /// binds the listener. Nothing is served until [`Self::run_until_stopped`].
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let address = SocketAddr::new(config.host, config.port);
        Self::build_with_listener(
            config,
            TcpListener::bind(address)
                .await
                .with_context(|| format!("could not listen on {address}"))?,
        )
        .await
    }

    pub async fn build_with_listener(
        config: Config,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let config = Arc::new(config);
        log_network_trust(&config);
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("could not create DATA_DIR {}", config.data_dir.display()))?;
        let store = open_store(&config).await?;
        clean_up_after_last_run(&store).await?;

        let clients = Clients::new(&config).context("could not build the HTTP clients")?;
        let queue = Queue::new();
        let metrics = metrics::Metrics::new();
        let worker = Worker {
            store,
            config,
            clients,
            queue,
            metrics,
            owner: store::LeaseOwner::generate(),
        };
        let address = listener.local_addr()?;
        Ok(Self {
            listener,
            address,
            worker,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn store(&self) -> &Store {
        &self.worker.store
    }

    /// Serves and works until `shutdown` is cancelled; then stops taking work, leaves running
    /// jobs resumable, and returns within a few seconds.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self {
            listener,
            address,
            worker,
        } = self;
        let state = AppState::new(
            worker.config.clone(),
            worker.store.clone(),
            worker.queue.clone(),
            worker.clients.clone(),
            worker.metrics.clone(),
            shutdown.clone(),
        );
        let dispatcher = pipeline::webhook::Dispatcher {
            store: worker.store.clone(),
            config: worker.config.clone(),
            clients: worker.clients.clone(),
            metrics: worker.metrics.clone(),
            wake: worker.queue.webhooks.clone(),
        }
        .spawn(shutdown.clone());
        if state.store.events_name() != "in-process" {
            state.queue.follow(&state.store, shutdown.clone());
        }
        // Ask's passages: built for jobs that have none in the background (start-up does not
        // wait for it), then for each job as it completes.
        let indexer = ask::index::Indexer {
            store: worker.store.clone(),
            embedder: ask::embeddings::Embedder::from_config(
                &worker.config,
                worker.clients.trusted.clone(),
            ),
            vectors: state.ask_vectors.clone(),
        }
        .spawn(shutdown.clone());
        let workers = worker.spawn(shutdown.clone());
        // Anything already waiting (re-queued or imported) starts now.
        state.queue.wake();
        tracing::info!(%address, "FocusFlow is listening");

        state.limits.spawn_pruner(shutdown.clone());
        let header_timeout = state.config.header_timeout;
        let app = web::router(state);
        let serve = tokio::spawn(web::serve::serve(
            listener,
            app,
            header_timeout,
            shutdown.clone(),
            SHUTDOWN_GRACE - Duration::from_secs(2),
        ));
        shutdown.cancelled().await;
        tracing::info!(
            "shutting down: no new work is taken; running jobs will resume at the next start"
        );

        let deadline = tokio::time::sleep(SHUTDOWN_GRACE);
        tokio::pin!(deadline);
        let drain = async {
            for worker in workers {
                let _ = worker.await;
            }
            let _ = dispatcher.await;
            let _ = indexer.await;
            let _ = serve.await;
        };
        tokio::select! {
            _ = drain => tracing::info!("stopped cleanly"),
            _ = &mut deadline => tracing::warn!("stopped with connections still open after the grace period"),
        }
        Ok(())
    }
}

/// Opens the store (SQLite in `DATA_DIR`, or PostgreSQL) and imports a legacy `jobs.json` once.
async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(config)
        .await
        .with_context(|| match &config.database_url {
            Some(url) => format!("could not open the store in PostgreSQL ({})", url.shown()),
            None => format!("could not open the store in {}", config.data_dir.display()),
        })?;
    if let Some(url) = config
        .database_url
        .as_ref()
        .filter(|url| !url.is_loopback())
    {
        tracing::warn!(
            database = %url.shown(),
            "PostgreSQL is reached without TLS (not built in yet): keep it on a private network"
        );
    }

    match store::legacy::import_if_present(&store).await {
        Ok(store::legacy::ImportOutcome::Imported { jobs, renamed_to }) => {
            tracing::info!(
                jobs,
                renamed_to,
                "imported the previous FocusFlow's jobs.json"
            );
        }
        Ok(_) => {}
        // Never fatal: the file stays where it is, to be fixed and imported at the next start.
        Err(error) => {
            tracing::error!(%error, "could not import jobs.json; it was left untouched")
        }
    }
    Ok(store)
}

/// What the last run left: partial transfers, a bucket's orphaned objects (in the background),
/// and interrupted jobs, which go back to the queue.
async fn clean_up_after_last_run(store: &Store) -> anyhow::Result<()> {
    // Nothing transfers here yet, so a partial file is a leftover of a process that stopped,
    // unless another process at work on the same folder (a rolling deploy) holds its job.
    let artifacts = store.artifacts().clone();
    let in_use: std::collections::HashSet<String> = store
        .leased_jobs()
        .await?
        .into_iter()
        .map(|id| id.to_string())
        .collect();
    let removed = tokio::task::spawn_blocking(move || {
        artifacts.remove_partial_transfers(|id| in_use.contains(id))
    })
    .await
    .context("the start-up cleanup stopped")?;
    if removed > 0 {
        tracing::info!(
            removed,
            "removed partial uploads, downloads and writes left by the last run"
        );
    } else {
        tracing::debug!("no partial uploads, downloads or writes to remove");
    }
    // Objects of jobs that do not exist (a crash between an upload and its job's commit, or
    // during a delete): found by listing the job folders, in the background so a slow
    // bucket never holds up the start.
    if store.artifacts().bucket().is_some() {
        tokio::spawn(sweep_orphan_objects(store.clone()));
    }
    // Jobs another process holds are its work; those whose worker stopped renewing go back.
    let requeued = store.requeue_interrupted().await?;
    if requeued > 0 {
        tracing::info!(requeued, "resuming jobs interrupted by the last shutdown");
    }
    Ok(())
}

/// Says at start-up whose forwarded headers are believed and which host names are answered:
/// both decide who can do what, and both have defaults an operator should be able to see.
fn log_network_trust(config: &Config) {
    let proxies: Vec<String> = config
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    let shown = if proxies.len() > 12 {
        format!("{} … ({} ranges)", proxies[..12].join(", "), proxies.len())
    } else if proxies.is_empty() {
        "none".to_string()
    } else {
        proxies.join(", ")
    };
    tracing::info!(
        trusted_proxies = %shown,
        source = config.trusted_proxies_source,
        "X-Forwarded-For, X-Forwarded-Host and X-Forwarded-Proto are believed only from these peers"
    );
    tracing::info!(
        allowed_hosts = %config.allowed_hosts.describe(),
        "answering requests for these host names and for any IP address (ALLOWED_HOSTS adds names)"
    );
}

/// How old the newest object of a job folder without a job must be before the start-up sweep
/// removes it: another replica may be between uploading a recording and committing its job.
pub const ORPHAN_GRACE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Removes the bucket's objects whose job does not exist (see [`ORPHAN_GRACE`]).
async fn sweep_orphan_objects(store: Store) {
    let Some(bucket) = store.artifacts().bucket() else {
        return;
    };
    let exists = |id: jobs::JobId| {
        let store = store.clone();
        async move {
            match store.job(&id).await {
                Ok(_) => Ok(true),
                Err(store::StoreError::NotFound) => Ok(false),
                Err(error) => Err(error.to_string()),
            }
        }
    };
    match bucket.sweep_orphans(ORPHAN_GRACE, exists).await {
        Ok(0) => tracing::debug!("no orphaned objects in the bucket"),
        Ok(removed) => tracing::info!(removed, "removed objects of jobs that no longer exist"),
        Err(error) => tracing::warn!(%error, "could not sweep the bucket for orphaned objects"),
    }
}
