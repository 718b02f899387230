//! Finding jobs in PostgreSQL: keyset pages of the list, and full-text search over the `search`
//! document (title, summary and transcript, accents folded, GIN-indexed) that a trigger keeps.

use deadpool_postgres::GenericClient;

use super::queries::check_holder;
use super::queries::param;
use super::rows::{JOB_COLUMNS, Param, job_column_count, job_from_row, params};
use crate::jobs::JobId;
use crate::store::search::{
    Found, JobFilter, JobPage, MATCH_END, MATCH_START, listing_sql, prefixed_columns,
};
use crate::store::{LeaseOwner, StoreResult};

/// Turns what a person typed into a `to_tsquery` text that cannot be a syntax error: only
/// letters and digits reach it. Every whitespace-separated term must match; a term with
/// punctuation inside (`follow-up`, `o'brien`) is a phrase of its parts; the last part is also
/// a prefix (live search). Accents are folded by the database, as in the document.
pub fn ts_query(text: &str) -> Option<String> {
    let terms: Vec<Vec<&str>> = text
        .split_whitespace()
        .map(|term| {
            term.split(|c: char| !c.is_alphanumeric())
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|parts| !parts.is_empty())
        .take(16)
        .collect();
    if terms.is_empty() {
        return None;
    }
    let mut query = terms
        .iter()
        .map(|parts| {
            if parts.len() == 1 {
                parts[0].to_string()
            } else {
                format!("({})", parts.join(" <-> "))
            }
        })
        .collect::<Vec<_>>()
        .join(" & ");
    // The last part of the last term is a prefix: `(a <-> b)` becomes `(a <-> b:*)`.
    if query.ends_with(')') {
        query.insert_str(query.len() - 1, ":*");
    } else {
        query.push_str(":*");
    }
    Some(query)
}

fn filters(filter: &JobFilter, clauses: &mut Vec<String>, values: &mut Vec<Param>) {
    if !filter.statuses.is_empty() {
        let statuses: Vec<String> = filter
            .statuses
            .iter()
            .map(|status| status.as_str().to_string())
            .collect();
        values.push(Box::new(statuses));
        clauses.push(format!("jobs.status = ANY(${})", values.len()));
    }
    if let Some(from) = filter.from_ms {
        values.push(Box::new(from));
        clauses.push(format!("jobs.sort_ms >= ${}", values.len()));
    }
    if let Some(to) = filter.to_ms {
        values.push(Box::new(to));
        clauses.push(format!("jobs.sort_ms < ${}", values.len()));
    }
}

/// Stand-ins for `<` and `&` while `ts_headline` reads a text: its parser drops what looks like
/// an HTML tag (`<script>`, `<review>`) from the passage, where the passage must show the text
/// as written (the view escapes it). Private-use characters, like the match marks.
const HIDDEN_LT: char = '\u{E002}';
const HIDDEN_AMP: char = '\u{E003}';

/// Options of `ts_headline`: one passage of about sixteen words, matches between the marks
/// the view turns into `<mark>` after escaping.
fn headline_options() -> String {
    format!(
        "StartSel={MATCH_START}, StopSel={MATCH_END}, MaxFragments=1, MaxWords=16, MinWords=6, FragmentDelimiter=…"
    )
}

/// A page of jobs: ranked by a search when the filter has words, else in date order.
pub async fn list(client: &impl GenericClient, filter: &JobFilter) -> StoreResult<JobPage> {
    let mut clauses = Vec::new();
    let mut values: Vec<Param> = Vec::new();
    filters(filter, &mut clauses, &mut values);
    match filter.query.as_deref().and_then(ts_query) {
        Some(query) => search(client, filter, query, clauses, values).await,
        None => listing(client, filter, clauses, values).await,
    }
}

/// The jobs matching the words of `query` (already in the backend's query syntax), best first,
/// each with the passage that matched.
async fn search(
    client: &impl GenericClient,
    filter: &JobFilter,
    query: String,
    mut clauses: Vec<String>,
    mut values: Vec<Param>,
) -> StoreResult<JobPage> {
    let limit = filter.page_size();
    values.push(Box::new(query));
    let query_index = values.len();
    values.push(Box::new(headline_options()));
    let options_index = values.len();
    clauses.insert(0, "jobs.search @@ query.q".to_string());
    // The snippet comes from the first field that matches, as SQLite's `snippet` picks
    // the best column; the page is ranked and cut before any snippet is made.
    let sql = format!(
        "WITH query AS (SELECT to_tsquery('simple', focusflow_unaccent(${query_index})) AS q),
         page AS (
             SELECT {columns}, jobs.sort_ms, jobs.transcript_text, query.q,
                    ts_rank(jobs.search, query.q) AS rank
             FROM jobs, query
             WHERE {clauses}
             ORDER BY rank DESC, jobs.sort_ms DESC, jobs.id DESC
             LIMIT {limit_plus} OFFSET {offset})
         SELECT {plain}, ts_headline('simple', translate(
             CASE
                 WHEN to_tsvector('simple', focusflow_fold(coalesce(title, ''))) @@ q THEN title
                 WHEN to_tsvector('simple', focusflow_fold(coalesce(summary, ''))) @@ q THEN summary
                 ELSE coalesce(transcript_text, summary, title, '')
             END, '<&', '{HIDDEN_LT}{HIDDEN_AMP}'), q, ${options_index})
         FROM page ORDER BY rank DESC, sort_ms DESC, id DESC",
        columns = prefixed_columns(JOB_COLUMNS),
        clauses = clauses.join(" AND "),
        limit_plus = limit + 1,
        offset = filter.offset,
        plain = JOB_COLUMNS,
    );
    let statement = client.prepare_cached(&sql).await?;
    let snippet_index = job_column_count();
    let rows = client.query(&statement, &params(&values)).await?;
    let found = rows
        .iter()
        .map(|row| {
            let snippet: Option<String> = row.try_get(snippet_index)?;
            Ok(Found {
                job: job_from_row(row)?,
                snippet: snippet.map(|text| text.replace(HIDDEN_LT, "<").replace(HIDDEN_AMP, "&")),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(JobPage::of_search(found, limit, filter.offset))
}

/// The jobs in date order, newest first, from the filter's cursor or offset.
async fn listing(
    client: &impl GenericClient,
    filter: &JobFilter,
    clauses: Vec<String>,
    mut values: Vec<Param>,
) -> StoreResult<JobPage> {
    let limit = filter.page_size();
    let (sql, after) = listing_sql(filter, JOB_COLUMNS, clauses, values.len(), '$');
    values.extend(after.into_iter().map(param));
    let statement = client.prepare_cached(&sql).await?;
    let sort_index = job_column_count();
    let rows = client
        .query(&statement, &params(&values))
        .await?
        .iter()
        .map(|row| Ok((job_from_row(row)?, row.try_get::<_, i64>(sort_index)?)))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(JobPage::of_listing(rows, limit))
}

/// Makes a job's transcript searchable (or unsearchable, with an empty text); with a
/// `holder`, only while it holds the job's lease.
pub async fn index_transcript(
    client: &mut deadpool_postgres::Client,
    id: &JobId,
    text: &str,
    holder: Option<&LeaseOwner>,
) -> StoreResult<()> {
    let text = (!text.is_empty()).then_some(text);
    let transaction = client.transaction().await?;
    check_holder(&transaction, id, holder, "NO KEY UPDATE").await?;
    let statement = transaction
        .prepare_cached("UPDATE jobs SET transcript_text = $2 WHERE id = $1")
        .await?;
    transaction
        .execute(&statement, &[&id.as_str(), &text])
        .await?;
    transaction.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_text_becomes_a_safe_query() {
        assert_eq!(
            ts_query("budget review").as_deref(),
            Some("budget & review:*")
        );
        assert_eq!(
            ts_query("  \"quoted\" AND (x) ").as_deref(),
            Some("quoted & AND & x:*")
        );
        assert_eq!(ts_query("NEAR( * ^ - !").as_deref(), Some("NEAR:*"));
        assert_eq!(
            ts_query("follow-up o'brien").as_deref(),
            Some("(follow <-> up) & (o <-> brien:*)")
        );
        assert_eq!(ts_query("'&|!:*()<->").as_deref(), None);
        assert_eq!(ts_query(" - * "), None);
    }
}
