//! Live events: what happened to a job, told to whoever shows it (log streams, pages), and a
//! number that moves with every write (the listing caches' key).
//!
//! The store announces an event after the change it describes has committed. Today the events
//! stay in this process ([`InProcess`]); a backend shared by several processes (PostgreSQL with
//! `LISTEN/NOTIFY`) brings its own [`Events`], and callers keep subscribing the same way.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::broadcast;

use crate::jobs::{JobId, LogLine, Status};

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

/// What a write changed, as far as answers kept per job care: caches drop only what shows the
/// jobs written, and a listing's order only when it may have moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// The job's fields or log lines; not its place in the list, nor the queue.
    Job(JobId),
    /// The job, and the queue's order (its status changed: it may have entered or left it).
    Queue(JobId),
    /// The job appeared, went, or moved in the list (a new meeting date).
    Order(JobId),
    /// Anything at all (many jobs at once, or writes that went unheard).
    Everything,
}

impl Written {
    /// The job written, unless the write may have touched any.
    pub fn job(&self) -> Option<&JobId> {
        match self {
            Written::Job(id) | Written::Queue(id) | Written::Order(id) => Some(id),
            Written::Everything => None,
        }
    }

    /// The list's order or membership may have changed.
    pub fn reorders(&self) -> bool {
        matches!(self, Written::Order(_) | Written::Everything)
    }

    /// The queue's order may have changed.
    pub fn requeues(&self) -> bool {
        !matches!(self, Written::Job(_))
    }
}

/// Where events go and how a reader learns that the store changed.
pub trait Events: Send + Sync {
    /// What carries the events, for `/api/health`: `in-process`, or a shared channel.
    fn name(&self) -> &'static str;

    /// Tells every subscriber; nobody listening is fine.
    fn announce(&self, event: JobEvent);

    /// Events from now on; subscribe before reading the state they update, so none is missed.
    fn subscribe(&self) -> broadcast::Receiver<JobEvent>;

    /// Called after every write to the store (committed or not: one too many only costs a
    /// cache miss), before the write's caller goes on: a cache that takes the writes told so
    /// far before answering never answers older than a write that returned.
    fn written(&self, what: Written);

    /// The writes told from now on (this process's at once, others' as they arrive). A
    /// receiver that falls behind learns it (`Lagged`) and must assume anything changed.
    fn subscribe_writes(&self) -> broadcast::Receiver<Written>;

    /// A number that changes whenever the store may have changed. Read it *before* reading the
    /// store: an answer built from those reads may be reused for as long as the number stays
    /// the same (it can only be newer than the number says, never older).
    fn generation(&self) -> u64;
}

/// Events within one process: a broadcast channel and a counter.
pub struct InProcess {
    sender: broadcast::Sender<JobEvent>,
    writes: broadcast::Sender<Written>,
    generation: AtomicU64,
}

impl InProcess {
    pub fn new() -> Self {
        // The ring is allocated whole, and written, at start: it is memory held for the
        // process's life (4,096 events took 364 KB). A live view that falls 1,024 events behind
        // catches up from the store (`Lagged`), and the queue only wakes.
        let (sender, _) = broadcast::channel(1024);
        // Caches take the writes on every request: a short channel suffices, and a lagging
        // cache only starts over.
        let (writes, _) = broadcast::channel(1024);
        Self {
            sender,
            writes,
            generation: AtomicU64::new(0),
        }
    }
}

impl Default for InProcess {
    fn default() -> Self {
        Self::new()
    }
}

impl Events for InProcess {
    fn name(&self) -> &'static str {
        "in-process"
    }

    fn announce(&self, event: JobEvent) {
        let _ = self.sender.send(event);
    }

    fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.sender.subscribe()
    }

    fn written(&self, what: Written) {
        // Told before the generation moves: whoever sees the new generation finds the write.
        let _ = self.writes.send(what);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn subscribe_writes(&self) -> broadcast::Receiver<Written> {
        self.writes.subscribe()
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}
