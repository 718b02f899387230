//! The sessions table's statements.
//!
//! Replicas making room at the same moment may each evict a batch; the table still never
//! holds more than the cap plus the sessions being created at that moment.

use deadpool_postgres::GenericClient;

use crate::store::StoreResult;
use crate::store::sessions::{StoredSession, to_evict};

pub async fn get(
    client: &impl GenericClient,
    id: &str,
    now: i64,
) -> StoreResult<Option<StoredSession>> {
    let statement = client
        .prepare_cached(
            "SELECT id, data, expires_at FROM sessions WHERE id = $1 AND expires_at > $2",
        )
        .await?;
    let Some(row) = client.query_opt(&statement, &[&id, &now]).await? else {
        return Ok(None);
    };
    Ok(Some(StoredSession {
        id: row.try_get(0)?,
        data: row.try_get(1)?,
        expires_at: row.try_get(2)?,
    }))
}

/// Removes the expired sessions and, when `adding` more would not fit under `cap`, the ones
/// closest to expiry.
async fn make_room(
    client: &impl GenericClient,
    now: i64,
    cap: u64,
    adding: usize,
) -> StoreResult<()> {
    let expired = client
        .prepare_cached("DELETE FROM sessions WHERE expires_at <= $1")
        .await?;
    client.execute(&expired, &[&now]).await?;
    let count = client
        .prepare_cached("SELECT COUNT(*) FROM sessions")
        .await?;
    let count: i64 = client.query_one(&count, &[]).await?.try_get(0)?;
    let count = u64::try_from(count).unwrap_or(0);
    let evicted = to_evict(count, cap, adding as u64);
    if evicted > 0 {
        let evicted = i64::try_from(evicted).unwrap_or(i64::MAX);
        let evict = client
            .prepare_cached(
                "DELETE FROM sessions WHERE id IN
                     (SELECT id FROM sessions ORDER BY expires_at LIMIT $1)",
            )
            .await?;
        client.execute(&evict, &[&evicted]).await?;
    }
    Ok(())
}

/// Inserts `sessions` in one transaction (see `Backend::create_sessions`).
pub async fn create(
    client: &mut deadpool_postgres::Client,
    sessions: &[StoredSession],
    now: i64,
    cap: u64,
) -> StoreResult<Vec<bool>> {
    let transaction = client.transaction().await?;
    make_room(&transaction, now, cap, sessions.len()).await?;
    let insert = transaction
        .prepare_cached(
            "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO NOTHING",
        )
        .await?;
    let mut created = Vec::with_capacity(sessions.len());
    for session in sessions {
        let inserted = transaction
            .execute(&insert, &[&session.id, &session.data, &session.expires_at])
            .await?;
        created.push(inserted == 1);
    }
    transaction.commit().await?;
    Ok(created)
}

pub async fn save(
    client: &impl GenericClient,
    session: &StoredSession,
    now: i64,
    cap: u64,
) -> StoreResult<()> {
    let update = client
        .prepare_cached("UPDATE sessions SET data = $2, expires_at = $3 WHERE id = $1")
        .await?;
    let updated = client
        .execute(&update, &[&session.id, &session.data, &session.expires_at])
        .await?;
    if updated == 0 {
        make_room(client, now, cap, 1).await?;
        let upsert = client
            .prepare_cached(
                "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
            )
            .await?;
        client
            .execute(&upsert, &[&session.id, &session.data, &session.expires_at])
            .await?;
    }
    Ok(())
}

pub async fn delete(client: &impl GenericClient, id: &str) -> StoreResult<()> {
    let statement = client
        .prepare_cached("DELETE FROM sessions WHERE id = $1")
        .await?;
    client.execute(&statement, &[&id]).await?;
    Ok(())
}

pub async fn count(client: &impl GenericClient) -> StoreResult<u64> {
    let statement = client
        .prepare_cached("SELECT COUNT(*) FROM sessions")
        .await?;
    let count: i64 = client.query_one(&statement, &[]).await?.try_get(0)?;
    Ok(u64::try_from(count).unwrap_or(0))
}
