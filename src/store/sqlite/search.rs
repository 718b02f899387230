//! Finding jobs in SQLite: keyset pages of the list, and full-text search (FTS5, with the
//! `job_search` table that triggers keep in step with `jobs`).

use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};

use super::queries::check_holder;
use super::queries::value;
use super::rows::{JOB_COLUMNS, begin, job_column_count, job_from_row};
use crate::jobs::JobId;
use crate::store::search::{
    Found, JobFilter, JobPage, MATCH_END, MATCH_START, listing_sql, prefixed_columns,
};
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

/// A page of jobs: ranked by a search when the filter has words, else in date order.
pub fn list(connection: &Connection, filter: &JobFilter) -> StoreResult<JobPage> {
    let mut clauses = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    filters(filter, &mut clauses, &mut values);
    match filter.query.as_deref().and_then(fts_query) {
        Some(query) => search(connection, filter, query, clauses, values),
        None => listing(connection, filter, clauses, values),
    }
}

/// The jobs matching the words of `query` (already in the backend's query syntax), best first,
/// each with the passage that matched.
fn search(
    connection: &Connection,
    filter: &JobFilter,
    query: String,
    mut clauses: Vec<String>,
    mut values: Vec<Value>,
) -> StoreResult<JobPage> {
    let limit = filter.page_size();
    values.push(Value::Text(query));
    clauses.insert(0, format!("job_search MATCH ?{}", values.len()));
    let sql = format!(
        "SELECT {}, snippet(job_search, -1, '{MATCH_START}', '{MATCH_END}', '…', 16)
         FROM job_search JOIN jobs ON jobs.rowid = job_search.rowid
         WHERE {}
         ORDER BY bm25(job_search, 10.0, 4.0, 1.0), jobs.sort_ms DESC
         LIMIT {} OFFSET {}",
        prefixed_columns(JOB_COLUMNS),
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
    Ok(JobPage::of_search(found, limit, filter.offset))
}

/// The jobs in date order, newest first, from the filter's cursor or offset.
fn listing(
    connection: &Connection,
    filter: &JobFilter,
    clauses: Vec<String>,
    mut values: Vec<Value>,
) -> StoreResult<JobPage> {
    let limit = filter.page_size();
    let (sql, after) = listing_sql(filter, JOB_COLUMNS, clauses, values.len(), '?');
    values.extend(after.into_iter().map(value));
    let mut statement = connection.prepare_cached(&sql)?;
    // The sort key follows the job's columns.
    let sort_index = job_column_count();
    let rows = statement
        .query_map(params_from_iter(values), |row| {
            Ok((job_from_row(row)?, row.get::<_, i64>(sort_index)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(JobPage::of_listing(rows, limit))
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
