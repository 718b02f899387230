//! Finding jobs in SQLite: keyset pages of the list, and full-text search (FTS5, with the
//! `job_search` table that triggers keep in step with `jobs`).

use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};

use super::queries::check_holder;
use super::rows::{JOB_COLUMNS, begin, job_column_count, job_from_row};
use crate::jobs::JobId;
use crate::store::search::{Cursor, Found, JobFilter, JobPage, MATCH_END, MATCH_START};
use crate::store::{LeaseOwner, StoreResult};

/// Turns what a person typed into an FTS5 query that cannot be a syntax error: every word is
/// quoted (quotes doubled), all must match, the last may be a prefix (live search).
pub fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == '"')
        .map(|word| word.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|word| !word.is_empty())
        .take(16)
        .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
        .collect();
    let (last, rest) = words.split_last()?;
    let mut query = rest.join(" ");
    if !query.is_empty() {
        query.push(' ');
    }
    query.push_str(last);
    query.push('*');
    Some(query)
}

fn filters(filter: &JobFilter, clauses: &mut Vec<String>, values: &mut Vec<Value>) {
    if !filter.statuses.is_empty() {
        let marks: Vec<String> = filter
            .statuses
            .iter()
            .map(|status| {
                values.push(Value::Text(status.as_str().into()));
                format!("?{}", values.len())
            })
            .collect();
        clauses.push(format!("jobs.status IN ({})", marks.join(", ")));
    }
    if let Some(from) = filter.from_ms {
        values.push(Value::Integer(from));
        clauses.push(format!("jobs.sort_ms >= ?{}", values.len()));
    }
    if let Some(to) = filter.to_ms {
        values.push(Value::Integer(to));
        clauses.push(format!("jobs.sort_ms < ?{}", values.len()));
    }
}

fn prefixed_columns() -> String {
    JOB_COLUMNS
        .split(',')
        .map(|column| format!("jobs.{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn list(connection: &Connection, filter: &JobFilter) -> StoreResult<JobPage> {
    let limit = filter.limit.clamp(1, 1000);
    let mut clauses = Vec::new();
    let mut values = Vec::new();
    filters(filter, &mut clauses, &mut values);

    if let Some(query) = filter.query.as_deref().and_then(fts_query) {
        values.push(Value::Text(query));
        clauses.insert(0, format!("job_search MATCH ?{}", values.len()));
        let sql = format!(
            "SELECT {}, snippet(job_search, -1, '{MATCH_START}', '{MATCH_END}', '…', 16)
             FROM job_search JOIN jobs ON jobs.rowid = job_search.rowid
             WHERE {}
             ORDER BY bm25(job_search, 10.0, 4.0, 1.0), jobs.sort_ms DESC
             LIMIT {} OFFSET {}",
            prefixed_columns(),
            clauses.join(" AND "),
            limit + 1,
            filter.offset
        );
        let mut statement = connection.prepare_cached(&sql)?;
        // The snippet follows the job's columns.
        let snippet_index = job_column_count();
        let found = statement
            .query_map(params_from_iter(values), |row| {
                Ok(Found {
                    job: job_from_row(row)?,
                    snippet: row.get(snippet_index)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        return Ok(JobPage::of_search(found, limit, filter.offset));
    }

    if let Some(after) = &filter.after {
        values.push(Value::Integer(after.sort_ms));
        let sort = values.len();
        values.push(Value::Text(after.id.to_string()));
        clauses.push(format!(
            "(jobs.sort_ms, jobs.id) < (?{sort}, ?{})",
            values.len()
        ));
    }
    let where_clause = crate::store::search::where_clause(&clauses);
    let sql = format!(
        "SELECT {}, jobs.sort_ms FROM jobs {where_clause}
         ORDER BY jobs.sort_ms DESC, jobs.id DESC LIMIT {} OFFSET {}",
        prefixed_columns(),
        limit + 1,
        if filter.after.is_some() {
            0
        } else {
            filter.offset
        }
    );
    let mut statement = connection.prepare_cached(&sql)?;
    // The sort key follows the job's columns.
    let sort_index = job_column_count();
    let mut rows = statement
        .query_map(params_from_iter(values), |row| {
            Ok((job_from_row(row)?, row.get::<_, i64>(sort_index)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more {
        rows.last().map(|(job, sort_ms)| Cursor {
            sort_ms: *sort_ms,
            id: job.id.clone(),
        })
    } else {
        None
    };
    Ok(JobPage {
        jobs: rows
            .into_iter()
            .map(|(job, _)| Found { job, snippet: None })
            .collect(),
        next,
        next_offset: None,
    })
}

/// Makes a job's transcript searchable (or unsearchable, with an empty text); with a `holder`,
/// only while it holds the job's lease.
pub fn index_transcript(
    connection: &mut Connection,
    id: &JobId,
    text: &str,
    holder: Option<&LeaseOwner>,
) -> StoreResult<()> {
    let transaction = begin(connection)?;
    check_holder(&transaction, id, holder)?;
    transaction.execute(
        "UPDATE job_search SET transcript = ?2
         WHERE rowid = (SELECT rowid FROM jobs WHERE id = ?1)",
        params![id.as_str(), text],
    )?;
    transaction.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_text_becomes_a_safe_query() {
        assert_eq!(
            fts_query("budget review").as_deref(),
            Some("\"budget\" \"review\"*")
        );
        assert_eq!(
            fts_query("  \"quoted\" AND (x) ").as_deref(),
            Some("\"quoted\" \"AND\" \"x\"*")
        );
        assert_eq!(fts_query("NEAR( * ^ -"), Some("\"NEAR\"*".into()));
        assert_eq!(fts_query(" - * "), None);
    }
}
