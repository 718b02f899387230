//! A claimed job's writes, made on behalf of the worker that holds its lease (see `leases`).

use super::backend::Update;
use super::leases::LeaseOwner;
use super::outbox::EventMaker;
use super::{Changes, Store, StoreResult};
use crate::jobs::{Job, JobId, LogLine};

/// Writes to one job on behalf of the worker that holds its lease: each is refused with
/// `Conflict` once the lease is someone else's, and `NotFound` once the job is gone.
#[derive(Debug, Clone)]
pub struct HeldJob {
    store: Store,
    id: JobId,
    owner: LeaseOwner,
}

impl HeldJob {
    pub(super) fn new(store: Store, id: JobId, owner: LeaseOwner) -> Self {
        Self { store, id, owner }
    }

    pub fn id(&self) -> &JobId {
        &self.id
    }

    pub fn owner(&self) -> &LeaseOwner {
        &self.owner
    }

    /// Applies `changes` and returns the job as it is now.
    pub async fn update(&self, changes: Changes) -> StoreResult<Job> {
        let update = Update {
            holder: Some(self.owner.clone()),
            ..Update::new(changes)
        };
        self.store.apply_or_not_found(&self.id, update).await
    }

    pub async fn log(&self, message: impl Into<String>) -> StoreResult<LogLine> {
        self.store
            .append_log_as(&self.id, message.into(), Some(self.owner.clone()))
            .await
    }

    /// Makes the job's transcript searchable.
    pub async fn index_transcript(&self, text: String) -> StoreResult<()> {
        self.store
            .index_transcript_as(&self.id, text, Some(self.owner.clone()))
            .await
    }

    /// The worker is done with the job (finished, failed or handed back to the queue): the
    /// change, its log line and its webhook event in one transaction, and the lease released.
    pub async fn finish(
        &self,
        changes: Changes,
        message: impl Into<String>,
        event: Option<EventMaker>,
    ) -> StoreResult<Job> {
        self.store
            .apply_with_log(
                &self.id,
                changes,
                message.into(),
                event,
                Some(self.owner.clone()),
            )
            .await
    }
}
