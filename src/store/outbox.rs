//! The webhook outbox: events recorded with the change that caused them, taken out when
//! delivered. The dispatcher in `pipeline::webhook` reads and updates it.

use super::{Store, StoreResult};
use crate::jobs::{Job, JobId};

/// Makes the event of a job as it was just changed (inside the store's transaction).
pub type EventMaker = Box<dyn FnOnce(&Job) -> NewDelivery + Send>;

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub delivery: String,
    pub job_id: JobId,
    pub event: String,
    pub body: Vec<u8>,
}

/// An event waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub delivery: String,
    pub job_id: String,
    pub event: String,
    pub body: Vec<u8>,
    /// Attempts made so far.
    pub attempts: u32,
}

impl Store {
    /// The oldest event due at `now`, taken for one attempt until `until` (see
    /// [`Backend::claim_delivery`](super::Backend::claim_delivery)).
    pub async fn claim_delivery(&self, now: i64, until: i64) -> StoreResult<Option<Delivery>> {
        self.backend.claim_delivery(now, until).await
    }

    /// When the next event falls due, if any wait.
    pub async fn next_delivery_at(&self) -> StoreResult<Option<i64>> {
        self.backend.next_delivery_at().await
    }

    /// Events waiting, for `/metrics` and tests.
    pub async fn pending_deliveries(&self) -> StoreResult<u64> {
        self.backend.pending_deliveries().await
    }

    /// The receiver took it, or it is given up: out of the outbox.
    pub async fn remove_delivery(&self, delivery: &str) -> StoreResult<()> {
        self.backend.remove_delivery(delivery).await
    }

    /// One more failed attempt; try again at `next_at`.
    pub async fn postpone_delivery(
        &self,
        delivery: &str,
        attempts: u32,
        next_at: i64,
    ) -> StoreResult<()> {
        self.backend
            .postpone_delivery(delivery, attempts, next_at)
            .await
    }
}
