//! The passages index in PostgreSQL: `passages` with a generated, GIN-indexed tsvector of the
//! speaker and the words (English stemming, accents folded) ranked by `ts_rank`, as SQLite
//! ranks its Porter-stemmed FTS5 index by BM25; vectors as `bytea`; the questions asked.
//! See `migrations/postgres/0003_passages.sql`.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::rows::{Param, RowLock, get_job, params};
use crate::jobs::{JobId, SpeakerNames, now_millis};
use crate::store::passages::{
    AskRecord, NewPassage, Passage, PassageScope, shown_speaker, vector_bytes, vector_from_bytes,
};
use crate::store::{StoreError, StoreResult};

fn job_id(text: String) -> StoreResult<JobId> {
    JobId::parse(&text)
        .map_err(|_| StoreError::Unavailable(format!("the database holds a bad job id {text:?}")))
}

pub async fn replace(
    client: &mut deadpool_postgres::Client,
    id: &JobId,
    passages: &[NewPassage],
) -> StoreResult<()> {
    let transaction = client.transaction().await?;
    // Locks the job against a concurrent rename of its speakers, and says NotFound if gone.
    let locked = transaction
        .query_opt(
            "SELECT id FROM jobs WHERE id = $1 FOR NO KEY UPDATE",
            &[&id.as_str()],
        )
        .await?;
    if locked.is_none() {
        return Err(StoreError::NotFound);
    }
    let job = get_job(&transaction, id, RowLock::None).await?;
    transaction
        .execute("DELETE FROM passages WHERE job_id = $1", &[&id.as_str()])
        .await?;
    let insert = transaction
        .prepare_cached(
            "INSERT INTO passages (job_id, seq, label, speaker, start_ms, text)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await?;
    for passage in passages {
        let speaker = passage
            .label
            .as_deref()
            .map(|label| shown_speaker(label, &job.speakers));
        let seq = i32::try_from(passage.seq).unwrap_or(i32::MAX);
        transaction
            .execute(
                &insert,
                &[
                    &id.as_str(),
                    &seq,
                    &passage.label,
                    &speaker,
                    &passage.start_ms,
                    &passage.text,
                ],
            )
            .await?;
    }
    transaction
        .execute(
            "INSERT INTO passage_jobs (job_id, indexed_at) VALUES ($1, $2)
             ON CONFLICT (job_id) DO UPDATE SET indexed_at = excluded.indexed_at",
            &[&id.as_str(), &now_millis()],
        )
        .await?;
    transaction.commit().await?;
    Ok(())
}

/// Shows the names people gave in the job's passages (inside the transaction that saves them).
pub async fn rename_speakers(
    client: &impl GenericClient,
    id: &JobId,
    names: &SpeakerNames,
) -> StoreResult<()> {
    let labels: Vec<String> = client
        .query(
            "SELECT DISTINCT label FROM passages WHERE job_id = $1 AND label IS NOT NULL",
            &[&id.as_str()],
        )
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    for label in labels {
        client
            .execute(
                "UPDATE passages SET speaker = $3
                 WHERE job_id = $1 AND label = $2 AND speaker IS DISTINCT FROM $3",
                &[&id.as_str(), &label, &shown_speaker(&label, names)],
            )
            .await?;
    }
    Ok(())
}

pub async fn jobs_without_passages(
    client: &impl GenericClient,
    limit: usize,
) -> StoreResult<Vec<JobId>> {
    client
        .query(
            "SELECT id FROM jobs
             WHERE status = 'completed' AND transcript_path IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM passage_jobs WHERE passage_jobs.job_id = jobs.id)
             ORDER BY sort_ms DESC LIMIT $1",
            &[&(limit as i64)],
        )
        .await?
        .into_iter()
        .map(|row| job_id(row.try_get(0)?))
        .collect()
}

fn scope_clauses(scope: &PassageScope, values: &mut Vec<Param>) -> String {
    let mut sql = String::new();
    if !scope.jobs.is_empty() {
        let ids: Vec<String> = scope.jobs.iter().map(ToString::to_string).collect();
        values.push(Box::new(ids));
        sql.push_str(&format!(" AND p.job_id = ANY(${})", values.len()));
    }
    if let Some(from) = scope.from_ms {
        values.push(Box::new(from));
        sql.push_str(&format!(" AND jobs.sort_ms >= ${}", values.len()));
    }
    if let Some(to) = scope.to_ms {
        values.push(Box::new(to));
        sql.push_str(&format!(" AND jobs.sort_ms < ${}", values.len()));
    }
    sql
}

pub async fn search(
    client: &impl GenericClient,
    words: &[String],
    scope: &PassageScope,
    limit: usize,
) -> StoreResult<Vec<i64>> {
    // Letters and digits only (see `question_words`): no word can be tsquery syntax.
    let words: Vec<&String> = words
        .iter()
        .filter(|word| word.chars().all(char::is_alphanumeric))
        .collect();
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let query = words
        .iter()
        .map(|word| word.as_str())
        .collect::<Vec<_>>()
        .join(" | ");
    let mut values: Vec<Param> = vec![Box::new(query)];
    let clauses = scope_clauses(scope, &mut values);
    // Normalisation 1: the rank divided by 1 + the log of the passage's length, as BM25
    // discounts long passages.
    let sql = format!(
        "WITH query AS (SELECT to_tsquery('english', focusflow_unaccent($1)) AS q)
         SELECT p.id FROM passages AS p JOIN jobs ON jobs.id = p.job_id, query
         WHERE p.search @@ query.q{clauses}
         ORDER BY ts_rank('{{0.1, 0.2, 0.4, 1.0}}', p.search, query.q, 1) DESC, p.id
         LIMIT {}",
        limit.clamp(1, 1000)
    );
    let statement = client.prepare_cached(&sql).await?;
    client
        .query(&statement, &params(&values))
        .await?
        .iter()
        .map(|row| Ok(row.try_get::<_, i64>(0)?))
        .collect()
}

pub async fn vectors(
    client: &impl GenericClient,
    scope: &PassageScope,
) -> StoreResult<Vec<(i64, Vec<f32>)>> {
    let mut values: Vec<Param> = Vec::new();
    let clauses = scope_clauses(scope, &mut values);
    let sql = format!(
        "SELECT p.id, p.embedding FROM passages AS p JOIN jobs ON jobs.id = p.job_id
         WHERE p.embedding IS NOT NULL{clauses}"
    );
    let statement = client.prepare_cached(&sql).await?;
    let rows = client.query(&statement, &params(&values)).await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        let id: i64 = row.try_get(0)?;
        let bytes: &[u8] = row.try_get(1)?;
        if let Some(vector) = vector_from_bytes(bytes) {
            found.push((id, vector));
        }
    }
    Ok(found)
}

fn passage_from_row(row: &Row) -> StoreResult<Passage> {
    Ok(Passage {
        id: row.try_get(0)?,
        job_id: job_id(row.try_get(1)?)?,
        title: row.try_get(2)?,
        meeting_date: row.try_get(3)?,
        speaker: row.try_get(4)?,
        start_ms: row.try_get(5)?,
        text: row.try_get(6)?,
    })
}

pub async fn by_ids(client: &impl GenericClient, ids: &[i64]) -> StoreResult<Vec<Passage>> {
    let rows = client
        .query(
            "SELECT p.id, p.job_id, jobs.title, jobs.meeting_date, p.speaker, p.start_ms, p.text
             FROM passages AS p JOIN jobs ON jobs.id = p.job_id WHERE p.id = ANY($1)",
            &[&ids],
        )
        .await?;
    let mut found: Vec<Passage> = rows
        .iter()
        .map(passage_from_row)
        .collect::<StoreResult<_>>()?;
    found.sort_by_key(|passage| ids.iter().position(|id| *id == passage.id));
    Ok(found)
}

pub async fn without_vectors(
    client: &impl GenericClient,
    limit: usize,
) -> StoreResult<Vec<(i64, String)>> {
    client
        .query(
            "SELECT id, text FROM passages WHERE embedding IS NULL ORDER BY id LIMIT $1",
            &[&(limit as i64)],
        )
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

pub async fn set_vectors(
    client: &mut deadpool_postgres::Client,
    vectors: &[(i64, Vec<f32>)],
) -> StoreResult<()> {
    let transaction = client.transaction().await?;
    let update = transaction
        .prepare_cached("UPDATE passages SET embedding = $2 WHERE id = $1")
        .await?;
    for (id, vector) in vectors {
        transaction
            .execute(&update, &[id, &vector_bytes(vector)])
            .await?;
    }
    transaction.commit().await?;
    Ok(())
}

pub async fn save_ask(client: &impl GenericClient, record: &AskRecord) -> StoreResult<()> {
    client
        .execute(
            "INSERT INTO asks (id, job_id, question, answer, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &record.id,
                &record.job_id.as_ref().map(JobId::as_str),
                &record.question,
                &record.answer,
                &record.created_at,
            ],
        )
        .await
        .map_err(|error| match error.code() {
            // The meeting was deleted while its question was answered.
            Some(code) if *code == tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION => {
                StoreError::NotFound
            }
            _ => error.into(),
        })?;
    Ok(())
}

fn ask_from_row(row: &Row) -> StoreResult<AskRecord> {
    let job: Option<String> = row.try_get(1)?;
    Ok(AskRecord {
        id: row.try_get(0)?,
        job_id: job.map(job_id).transpose()?,
        question: row.try_get(2)?,
        answer: row.try_get(3)?,
        created_at: row.try_get(4)?,
    })
}

pub async fn recent_asks(
    client: &impl GenericClient,
    job: Option<&JobId>,
    limit: usize,
) -> StoreResult<Vec<AskRecord>> {
    let limit = limit as i64;
    let rows = match job {
        Some(job) => {
            client
                .query(
                    "SELECT id, job_id, question, answer, created_at FROM asks
                     WHERE job_id = $2 ORDER BY created_at DESC, id DESC LIMIT $1",
                    &[&limit, &job.as_str()],
                )
                .await?
        }
        None => {
            client
                .query(
                    "SELECT id, job_id, question, answer, created_at FROM asks
                     WHERE job_id IS NULL ORDER BY created_at DESC, id DESC LIMIT $1",
                    &[&limit],
                )
                .await?
        }
    };
    rows.iter().map(ask_from_row).collect()
}

pub async fn ask(client: &impl GenericClient, id: &str) -> StoreResult<AskRecord> {
    let row = client
        .query_opt(
            "SELECT id, job_id, question, answer, created_at FROM asks WHERE id = $1",
            &[&id],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    ask_from_row(&row)
}

pub async fn delete_ask(client: &impl GenericClient, id: &str) -> StoreResult<()> {
    match client
        .execute("DELETE FROM asks WHERE id = $1", &[&id])
        .await?
    {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}
