//! The schema, from the SQL files in `migrations/postgres/`, applied in order at start-up.
//!
//! All of it runs in one transaction that first takes a transaction-level advisory lock: when
//! replicas start together, one migrates and the others wait, then find nothing left to do.

use deadpool_postgres::GenericClient;

use crate::store::{StoreError, StoreResult};

/// Applied in this order; `focusflow_schema` records how many a database has.
pub const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/postgres/0001_init.sql"),
    include_str!("../../../migrations/postgres/0002_job_leases.sql"),
    include_str!("../../../migrations/postgres/0003_passages.sql"),
    include_str!("../../../migrations/postgres/0004_sessions.sql"),
    include_str!("../../../migrations/postgres/0005_error_kind.sql"),
];

/// The advisory lock's key: "FocusFlo" in ASCII, so it is unlikely to meet another program's.
const LOCK_KEY: i64 = 0x466f_6375_7346_6c6f;

pub async fn migrate(client: &mut deadpool_postgres::Client) -> StoreResult<()> {
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS focusflow_schema (
                 version    INTEGER PRIMARY KEY,
                 applied_at BIGINT NOT NULL
             )",
        )
        .await?;
    let version: i32 = transaction
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM focusflow_schema",
            &[],
        )
        .await?
        .try_get(0)?;
    if version as usize > MIGRATIONS.len() {
        return Err(StoreError::Unavailable(format!(
            "the database is newer than this program (schema version {version}); upgrade FocusFlow"
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        transaction.batch_execute(sql).await.map_err(|error| {
            StoreError::Unavailable(format!(
                "the PostgreSQL schema could not be brought up to date (step {}): {}",
                index + 1,
                super::words(&error)
            ))
        })?;
        transaction
            .execute(
                "INSERT INTO focusflow_schema (version, applied_at) VALUES ($1, $2)",
                &[&((index + 1) as i32), &crate::jobs::now_millis()],
            )
            .await?;
    }
    transaction.commit().await?;
    Ok(())
}
