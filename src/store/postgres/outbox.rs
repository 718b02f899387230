//! The webhook outbox's statements.

use deadpool_postgres::GenericClient;

use crate::store::StoreResult;
use crate::store::outbox::{Delivery, NewDelivery};

/// Records an event (inside the transaction of the change that caused it).
pub async fn insert(client: &impl GenericClient, new: NewDelivery, now: i64) -> StoreResult<()> {
    let statement = client
        .prepare_cached(
            "INSERT INTO webhook_outbox (delivery, job_id, event, body, attempts, next_at, created_at)
             VALUES ($1, $2, $3, $4, 0, $5, $5) ON CONFLICT (delivery) DO NOTHING",
        )
        .await?;
    client
        .execute(
            &statement,
            &[
                &new.delivery,
                &new.job_id.as_str(),
                &new.event,
                &new.body,
                &now,
            ],
        )
        .await?;
    Ok(())
}

/// Takes the oldest due event and makes it due again only at `until` (the claim). An event
/// another dispatcher is claiming at this moment is skipped, not waited for.
pub async fn claim(
    client: &impl GenericClient,
    now: i64,
    until: i64,
) -> StoreResult<Option<Delivery>> {
    let statement = client
        .prepare_cached(
            "UPDATE webhook_outbox SET next_at = $2
             WHERE delivery = (SELECT delivery FROM webhook_outbox
                               WHERE next_at <= $1 ORDER BY next_at, created_at LIMIT 1
                               FOR UPDATE SKIP LOCKED)
             RETURNING delivery, job_id, event, body, attempts",
        )
        .await?;
    client
        .query_opt(&statement, &[&now, &until])
        .await?
        .map(|row| {
            let attempts: i64 = row.try_get(4)?;
            Ok(Delivery {
                delivery: row.try_get(0)?,
                job_id: row.try_get(1)?,
                event: row.try_get(2)?,
                body: row.try_get(3)?,
                attempts: attempts.clamp(0, u32::MAX as i64) as u32,
            })
        })
        .transpose()
}

pub async fn next_at(client: &impl GenericClient) -> StoreResult<Option<i64>> {
    let statement = client
        .prepare_cached("SELECT MIN(next_at) FROM webhook_outbox")
        .await?;
    Ok(client.query_one(&statement, &[]).await?.try_get(0)?)
}

pub async fn pending(client: &impl GenericClient) -> StoreResult<u64> {
    let statement = client
        .prepare_cached("SELECT COUNT(*) FROM webhook_outbox")
        .await?;
    let count: i64 = client.query_one(&statement, &[]).await?.try_get(0)?;
    Ok(count as u64)
}

pub async fn remove(client: &impl GenericClient, delivery: &str) -> StoreResult<()> {
    let statement = client
        .prepare_cached("DELETE FROM webhook_outbox WHERE delivery = $1")
        .await?;
    client.execute(&statement, &[&delivery]).await?;
    Ok(())
}

pub async fn postpone(
    client: &impl GenericClient,
    delivery: &str,
    attempts: u32,
    next_at: i64,
) -> StoreResult<()> {
    let statement = client
        .prepare_cached("UPDATE webhook_outbox SET attempts = $2, next_at = $3 WHERE delivery = $1")
        .await?;
    client
        .execute(&statement, &[&delivery, &(attempts as i64), &next_at])
        .await?;
    Ok(())
}
