//! The schema, from the SQL files in `migrations/`, applied in order at start-up.

use rusqlite::Connection;

use crate::store::{StoreError, StoreResult};

/// Applied in this order; `PRAGMA user_version` counts how many a database has.
pub const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/0001_init.sql"),
    include_str!("../../../migrations/0003_search.sql"),
    // Applied after 0003, which databases may already have (user_version counts the entries).
    include_str!("../../../migrations/0002_speakers_and_templates.sql"),
    include_str!("../../../migrations/0004_webhook_outbox.sql"),
    include_str!("../../../migrations/0005_job_leases.sql"),
    include_str!("../../../migrations/0006_passages.sql"),
    include_str!("../../../migrations/0007_sessions.sql"),
    include_str!("../../../migrations/0008_error_kind.sql"),
];

/// Brings the schema up to date, one migration per transaction. A database newer than this
/// program is refused: it would be read wrongly.
pub fn migrate(connection: &mut Connection) -> StoreResult<()> {
    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > MIGRATIONS.len() as i64 {
        return Err(StoreError::Unavailable(format!(
            "the database is newer than this program (schema version {version}); upgrade FocusFlow"
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(sql)?;
        transaction.pragma_update(None, "user_version", (index + 1) as i64)?;
        transaction.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::connections::open_connection;
    use super::*;
    use crate::jobs::Stage;
    use crate::store::{Changes, NewJob, Store};

    #[tokio::test]
    async fn a_database_at_the_search_migration_gets_speakers_and_templates() {
        let dir = tempfile::tempdir().unwrap();
        {
            // What a build without migration 0002 left: 0001 and 0003, user_version 2.
            let mut connection = open_connection(&dir.path().join("focusflow.db")).unwrap();
            let transaction = connection.transaction().unwrap();
            transaction.execute_batch(MIGRATIONS[0]).unwrap();
            transaction
                .execute_batch(include_str!("../../../migrations/0003_search.sql"))
                .unwrap();
            transaction.pragma_update(None, "user_version", 2).unwrap();
            transaction.commit().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let (job, _) = store
            .create_job(NewJob {
                url: "upload:a.mp3".into(),
                template: Some("one_on_one".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let names: crate::jobs::SpeakerNames =
            [("A".to_string(), "Ana".to_string())].into_iter().collect();
        let job = store
            .update(&job.id, Changes::new().speakers(&names))
            .await
            .unwrap();
        assert_eq!(job.speakers, names);
        assert_eq!(job.template.as_deref(), Some("one_on_one"));
        assert_eq!(job.brought_input(), Some(Stage::Download));
    }

    #[test]
    fn a_database_newer_than_the_program_is_refused_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let connection = open_connection(&dir.path().join("focusflow.db")).unwrap();
        connection.pragma_update(None, "user_version", 999).unwrap();
        drop(connection);
        let error = Store::open(dir.path()).unwrap_err();
        assert_eq!(
            error,
            StoreError::Unavailable(
                "the database is newer than this program (schema version 999); upgrade FocusFlow"
                    .into()
            )
        );
    }
}
