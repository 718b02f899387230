//! The webhook outbox: events recorded with the change that caused them, taken out when
//! delivered. The dispatcher in `pipeline::webhook` reads and updates it.

use rusqlite::{Connection, params};

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

pub(super) fn insert(connection: &Connection, new: NewDelivery, now: i64) -> StoreResult<()> {
    connection.execute(
        "INSERT OR IGNORE INTO webhook_outbox (delivery, job_id, event, body, attempts, next_at, created_at)
         VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
        params![new.delivery, new.job_id.as_str(), new.event, new.body, now],
    )?;
    Ok(())
}

impl Store {
    /// Events due at `now`, oldest first, at most `limit`.
    pub async fn due_deliveries(&self, now: i64, limit: usize) -> StoreResult<Vec<Delivery>> {
        self.read(move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT delivery, job_id, event, body, attempts FROM webhook_outbox
                 WHERE next_at <= ?1 ORDER BY next_at, created_at LIMIT ?2",
            )?;
            let rows = statement.query_map(params![now, limit as i64], |row| {
                Ok(Delivery {
                    delivery: row.get(0)?,
                    job_id: row.get(1)?,
                    event: row.get(2)?,
                    body: row.get(3)?,
                    attempts: row.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// When the next event falls due, if any wait.
    pub async fn next_delivery_at(&self) -> StoreResult<Option<i64>> {
        self.read(|connection| {
            Ok(
                connection.query_row("SELECT MIN(next_at) FROM webhook_outbox", [], |row| {
                    row.get(0)
                })?,
            )
        })
        .await
    }

    /// Events waiting, for `/metrics` and tests.
    pub async fn pending_deliveries(&self) -> StoreResult<u64> {
        self.read(|connection| {
            Ok(
                connection
                    .query_row("SELECT COUNT(*) FROM webhook_outbox", [], |row| row.get(0))?,
            )
        })
        .await
    }

    /// The receiver took it, or it is given up: out of the outbox.
    pub async fn remove_delivery(&self, delivery: &str) -> StoreResult<()> {
        let delivery = delivery.to_string();
        self.write(move |connection| {
            connection.execute(
                "DELETE FROM webhook_outbox WHERE delivery = ?1",
                params![delivery],
            )?;
            Ok(())
        })
        .await
    }

    /// One more failed attempt; try again at `next_at`.
    pub async fn postpone_delivery(
        &self,
        delivery: &str,
        attempts: u32,
        next_at: i64,
    ) -> StoreResult<()> {
        let delivery = delivery.to_string();
        self.write(move |connection| {
            connection.execute(
                "UPDATE webhook_outbox SET attempts = ?2, next_at = ?3 WHERE delivery = ?1",
                params![delivery, attempts, next_at],
            )?;
            Ok(())
        })
        .await
    }
}
