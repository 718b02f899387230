//! The passages index in SQLite: `passages` with the FTS5 table `passage_search` (Porter
//! stemmed, ranked by BM25) that triggers keep in step, embedding vectors as BLOBs, and the
//! questions asked (`asks`). See `migrations/0006_passages.sql`.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::rows::{begin, get_job};
use crate::jobs::{JobId, SpeakerNames, now_millis};
use crate::store::passages::{
    AskRecord, NewPassage, Passage, PassageScope, shown_speaker, vector_bytes, vector_from_bytes,
};
use crate::store::{StoreError, StoreResult};

fn bad_id(index: usize, id: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        index,
        rusqlite::types::Type::Text,
        format!("bad job id {id:?}").into(),
    )
}

/// Replaces the job's passages and marks it indexed, in one transaction.
pub fn replace(
    connection: &mut Connection,
    id: &JobId,
    passages: &[NewPassage],
) -> StoreResult<()> {
    let transaction = begin(connection)?;
    let job = get_job(&transaction, id)?;
    transaction.execute(
        "DELETE FROM passages WHERE job_id = ?1",
        params![id.as_str()],
    )?;
    {
        let mut insert = transaction.prepare_cached(
            "INSERT INTO passages (job_id, seq, label, speaker, start_ms, text)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for passage in passages {
            let speaker = passage
                .label
                .as_deref()
                .map(|label| shown_speaker(label, &job.speakers));
            insert.execute(params![
                id.as_str(),
                passage.seq,
                passage.label,
                speaker,
                passage.start_ms,
                passage.text
            ])?;
        }
    }
    transaction.execute(
        "INSERT INTO passage_jobs (job_id, indexed_at) VALUES (?1, ?2)
         ON CONFLICT (job_id) DO UPDATE SET indexed_at = excluded.indexed_at",
        params![id.as_str(), now_millis()],
    )?;
    transaction.commit()?;
    Ok(())
}

/// Shows the names people gave in the job's passages (inside the transaction that saves them).
pub fn rename_speakers(
    connection: &Connection,
    id: &JobId,
    names: &SpeakerNames,
) -> rusqlite::Result<()> {
    let labels: Vec<String> = connection
        .prepare_cached(
            "SELECT DISTINCT label FROM passages WHERE job_id = ?1 AND label IS NOT NULL",
        )?
        .query_map(params![id.as_str()], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut update = connection.prepare_cached(
        "UPDATE passages SET speaker = ?3
         WHERE job_id = ?1 AND label = ?2 AND speaker IS NOT ?3",
    )?;
    for label in labels {
        update.execute(params![id.as_str(), label, shown_speaker(&label, names)])?;
    }
    Ok(())
}

pub fn jobs_without_passages(connection: &Connection, limit: usize) -> StoreResult<Vec<JobId>> {
    let mut statement = connection.prepare_cached(
        "SELECT id FROM jobs
         WHERE status = 'completed' AND transcript_path IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM passage_jobs WHERE passage_jobs.job_id = jobs.id)
         ORDER BY sort_ms DESC LIMIT ?1",
    )?;
    let ids = statement
        .query_map(params![limit as i64], |row| {
            let id: String = row.get(0)?;
            JobId::parse(&id).map_err(|_| bad_id(0, &id))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(ids)
}

/// `AND …` conditions on `passages AS p` joined with `jobs`, for a scope.
fn scope_clauses(scope: &PassageScope, values: &mut Vec<Value>) -> String {
    let mut sql = String::new();
    if !scope.jobs.is_empty() {
        let marks: Vec<String> = scope
            .jobs
            .iter()
            .map(|id| {
                values.push(Value::Text(id.to_string()));
                format!("?{}", values.len())
            })
            .collect();
        sql.push_str(&format!(" AND p.job_id IN ({})", marks.join(", ")));
    }
    if let Some(from) = scope.from_ms {
        values.push(Value::Integer(from));
        sql.push_str(&format!(" AND jobs.sort_ms >= ?{}", values.len()));
    }
    if let Some(to) = scope.to_ms {
        values.push(Value::Integer(to));
        sql.push_str(&format!(" AND jobs.sort_ms < ?{}", values.len()));
    }
    sql
}

/// The passages that hold any of `words`, best first by BM25 (the speaker's name counts
/// twice a word of the text).
pub fn search(
    connection: &Connection,
    words: &[String],
    scope: &PassageScope,
    limit: usize,
) -> StoreResult<Vec<i64>> {
    if words.is_empty() {
        return Ok(Vec::new());
    }
    // Each word quoted: nothing in it can be FTS5 syntax (they hold only letters and digits).
    let query = words
        .iter()
        .map(|word| format!("\"{}\"", word.replace('"', "")))
        .collect::<Vec<_>>()
        .join(" OR ");
    let mut values = vec![Value::Text(query)];
    let clauses = scope_clauses(scope, &mut values);
    let sql = format!(
        "SELECT p.id FROM passage_search
         JOIN passages AS p ON p.id = passage_search.rowid
         JOIN jobs ON jobs.id = p.job_id
         WHERE passage_search MATCH ?1{clauses}
         ORDER BY bm25(passage_search, 2.0, 1.0), p.id
         LIMIT {}",
        limit.clamp(1, 1000)
    );
    let mut statement = connection.prepare_cached(&sql)?;
    let ids = statement
        .query_map(params_from_iter(values), |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

/// Every stored vector in the scope, with its passage's id.
pub fn vectors(connection: &Connection, scope: &PassageScope) -> StoreResult<Vec<(i64, Vec<f32>)>> {
    let mut values = Vec::new();
    let clauses = scope_clauses(scope, &mut values);
    let sql = format!(
        "SELECT p.id, p.embedding FROM passages AS p JOIN jobs ON jobs.id = p.job_id
         WHERE p.embedding IS NOT NULL{clauses}"
    );
    let mut statement = connection.prepare_cached(&sql)?;
    let mut rows = statement.query(params_from_iter(values))?;
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        if let Some(vector) = row
            .get_ref(1)?
            .as_blob_or_null()
            .ok()
            .flatten()
            .and_then(vector_from_bytes)
        {
            found.push((id, vector));
        }
    }
    Ok(found)
}

fn passage_from_row(row: &Row<'_>) -> rusqlite::Result<Passage> {
    let job_id: String = row.get(1)?;
    Ok(Passage {
        id: row.get(0)?,
        job_id: JobId::parse(&job_id).map_err(|_| bad_id(1, &job_id))?,
        title: row.get(2)?,
        meeting_date: row.get(3)?,
        speaker: row.get(4)?,
        start_ms: row.get(5)?,
        text: row.get(6)?,
    })
}

/// The passages of these ids that still exist, in the order given.
pub fn by_ids(connection: &Connection, ids: &[i64]) -> StoreResult<Vec<Passage>> {
    let mut statement = connection.prepare_cached(
        "SELECT p.id, p.job_id, jobs.title, jobs.meeting_date, p.speaker, p.start_ms, p.text
         FROM passages AS p JOIN jobs ON jobs.id = p.job_id WHERE p.id = ?1",
    )?;
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(passage) = statement
            .query_row(params![id], passage_from_row)
            .optional()?
        {
            found.push(passage);
        }
    }
    Ok(found)
}

pub fn without_vectors(connection: &Connection, limit: usize) -> StoreResult<Vec<(i64, String)>> {
    let mut statement = connection.prepare_cached(
        "SELECT id, text FROM passages WHERE embedding IS NULL ORDER BY id LIMIT ?1",
    )?;
    let found = statement
        .query_map(params![limit as i64], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(found)
}

pub fn set_vectors(connection: &mut Connection, vectors: &[(i64, Vec<f32>)]) -> StoreResult<()> {
    let transaction = begin(connection)?;
    {
        let mut update =
            transaction.prepare_cached("UPDATE passages SET embedding = ?2 WHERE id = ?1")?;
        for (id, vector) in vectors {
            update.execute(params![id, vector_bytes(vector)])?;
        }
    }
    transaction.commit()?;
    Ok(())
}

pub fn save_ask(connection: &mut Connection, record: &AskRecord) -> StoreResult<()> {
    connection.execute(
        // Not for a meeting deleted while its question was answered.
        "INSERT INTO asks (id, job_id, question, answer, created_at)
         SELECT ?1, ?2, ?3, ?4, ?5
         WHERE ?2 IS NULL OR EXISTS (SELECT 1 FROM jobs WHERE id = ?2)",
        params![
            record.id,
            record.job_id.as_ref().map(JobId::as_str),
            record.question,
            record.answer,
            record.created_at
        ],
    )?;
    Ok(())
}

fn ask_from_row(row: &Row<'_>) -> rusqlite::Result<AskRecord> {
    let job_id: Option<String> = row.get(1)?;
    Ok(AskRecord {
        id: row.get(0)?,
        job_id: job_id
            .map(|id| JobId::parse(&id).map_err(|_| bad_id(1, &id)))
            .transpose()?,
        question: row.get(2)?,
        answer: row.get(3)?,
        created_at: row.get(4)?,
    })
}

pub fn recent_asks(
    connection: &Connection,
    job: Option<&JobId>,
    limit: usize,
) -> StoreResult<Vec<AskRecord>> {
    let sql = format!(
        "SELECT id, job_id, question, answer, created_at FROM asks {}
         ORDER BY created_at DESC, id DESC LIMIT ?1",
        if job.is_some() {
            "WHERE job_id = ?2"
        } else {
            "WHERE job_id IS NULL"
        }
    );
    let mut statement = connection.prepare_cached(&sql)?;
    let limit = limit as i64;
    let rows = match job {
        Some(job) => statement.query_map(params![limit, job.as_str()], ask_from_row)?,
        None => statement.query_map(params![limit], ask_from_row)?,
    };
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub fn ask(connection: &Connection, id: &str) -> StoreResult<AskRecord> {
    Ok(connection.query_row(
        "SELECT id, job_id, question, answer, created_at FROM asks WHERE id = ?1",
        params![id],
        ask_from_row,
    )?)
}

pub fn delete_ask(connection: &mut Connection, id: &str) -> StoreResult<()> {
    match connection.execute("DELETE FROM asks WHERE id = ?1", params![id])? {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}
