//! The webhook outbox's statements.

use rusqlite::{Connection, params};

use crate::store::StoreResult;
use crate::store::outbox::{Delivery, NewDelivery};

/// Records an event (inside the transaction of the change that caused it).
pub fn insert(connection: &Connection, new: NewDelivery, now: i64) -> StoreResult<()> {
    connection.execute(
        "INSERT OR IGNORE INTO webhook_outbox (delivery, job_id, event, body, attempts, next_at, created_at)
         VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
        params![new.delivery, new.job_id.as_str(), new.event, new.body, now],
    )?;
    Ok(())
}

/// Takes the oldest due event and makes it due again only at `until` (the claim), in one
/// statement: the write lock SQLite takes for it keeps a second claimer out.
pub fn claim(connection: &mut Connection, now: i64, until: i64) -> StoreResult<Option<Delivery>> {
    let mut statement = connection.prepare_cached(
        "UPDATE webhook_outbox SET next_at = ?2
         WHERE delivery = (SELECT delivery FROM webhook_outbox
                           WHERE next_at <= ?1 ORDER BY next_at, created_at LIMIT 1)
         RETURNING delivery, job_id, event, body, attempts",
    )?;
    let mut rows = statement.query_map(params![now, until], |row| {
        Ok(Delivery {
            delivery: row.get(0)?,
            job_id: row.get(1)?,
            event: row.get(2)?,
            body: row.get(3)?,
            attempts: row.get(4)?,
        })
    })?;
    Ok(rows.next().transpose()?)
}

pub fn next_at(connection: &Connection) -> StoreResult<Option<i64>> {
    Ok(
        connection.query_row("SELECT MIN(next_at) FROM webhook_outbox", [], |row| {
            row.get(0)
        })?,
    )
}

pub fn pending(connection: &Connection) -> StoreResult<u64> {
    Ok(connection.query_row("SELECT COUNT(*) FROM webhook_outbox", [], |row| row.get(0))?)
}

pub fn remove(connection: &mut Connection, delivery: &str) -> StoreResult<()> {
    connection.execute(
        "DELETE FROM webhook_outbox WHERE delivery = ?1",
        params![delivery],
    )?;
    Ok(())
}

pub fn postpone(
    connection: &mut Connection,
    delivery: &str,
    attempts: u32,
    next_at: i64,
) -> StoreResult<()> {
    connection.execute(
        "UPDATE webhook_outbox SET attempts = ?2, next_at = ?3 WHERE delivery = ?1",
        params![delivery, attempts, next_at],
    )?;
    Ok(())
}
