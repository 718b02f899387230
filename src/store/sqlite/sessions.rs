//! The sessions table's statements.

use rusqlite::{Connection, OptionalExtension, params};

use super::rows::begin;
use crate::store::StoreResult;
use crate::store::sessions::{StoredSession, to_evict};

pub fn get(connection: &Connection, id: &str, now: i64) -> StoreResult<Option<StoredSession>> {
    let mut statement = connection.prepare_cached(
        "SELECT id, data, expires_at FROM sessions WHERE id = ?1 AND expires_at > ?2",
    )?;
    Ok(statement
        .query_row(params![id, now], |row| {
            Ok(StoredSession {
                id: row.get(0)?,
                data: row.get(1)?,
                expires_at: row.get(2)?,
            })
        })
        .optional()?)
}

/// Removes the expired sessions and, when `adding` more would not fit under `cap`, the ones
/// closest to expiry.
fn make_room(connection: &Connection, now: i64, cap: u64, adding: usize) -> StoreResult<()> {
    connection
        .prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")?
        .execute(params![now])?;
    let count: i64 = connection
        .prepare_cached("SELECT COUNT(*) FROM sessions")?
        .query_row([], |row| row.get(0))?;
    let count = u64::try_from(count).unwrap_or(0);
    let evicted = to_evict(count, cap, adding as u64);
    if evicted > 0 {
        let evicted = i64::try_from(evicted).unwrap_or(i64::MAX);
        connection
            .prepare_cached(
                "DELETE FROM sessions WHERE id IN
                     (SELECT id FROM sessions ORDER BY expires_at LIMIT ?1)",
            )?
            .execute(params![evicted])?;
    }
    Ok(())
}

pub fn create(
    connection: &mut Connection,
    sessions: &[StoredSession],
    now: i64,
    cap: u64,
) -> StoreResult<Vec<bool>> {
    let transaction = begin(connection)?;
    make_room(&transaction, now, cap, sessions.len())?;
    let created = {
        let mut insert = transaction.prepare_cached(
            "INSERT INTO sessions (id, data, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO NOTHING",
        )?;
        sessions
            .iter()
            .map(|session| {
                let inserted =
                    insert.execute(params![session.id, session.data, session.expires_at])?;
                Ok(inserted == 1)
            })
            .collect::<StoreResult<Vec<bool>>>()?
    };
    transaction.commit()?;
    Ok(created)
}

pub fn save(
    connection: &mut Connection,
    session: &StoredSession,
    now: i64,
    cap: u64,
) -> StoreResult<()> {
    let updated = connection
        .prepare_cached("UPDATE sessions SET data = ?2, expires_at = ?3 WHERE id = ?1")?
        .execute(params![session.id, session.data, session.expires_at])?;
    if updated == 0 {
        let transaction = begin(connection)?;
        make_room(&transaction, now, cap, 1)?;
        transaction
            .prepare_cached(
                "INSERT INTO sessions (id, data, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
            )?
            .execute(params![session.id, session.data, session.expires_at])?;
        transaction.commit()?;
    }
    Ok(())
}

pub fn delete(connection: &Connection, id: &str) -> StoreResult<()> {
    connection
        .prepare_cached("DELETE FROM sessions WHERE id = ?1")?
        .execute(params![id])?;
    Ok(())
}

pub fn count(connection: &Connection) -> StoreResult<u64> {
    let count: i64 = connection.query_row("SELECT COUNT(*) FROM sessions", [], |row| row.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}
