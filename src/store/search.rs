//! Finding jobs: pages of the list (keyset pagination, so page 200 costs what page 1 costs),
//! filters by status and meeting date, and full-text search over titles, summaries and
//! transcripts (SQLite FTS5) with highlighted snippets.

use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};

use super::{JOB_COLUMNS, Store, StoreResult, job_from_row};
use std::collections::HashMap;

use crate::jobs::{Job, JobId, LogLine, Status};

/// Marks around a matched word in a snippet: characters from Unicode's private use area, which
/// no transcript contains, so the view can escape the snippet and then turn them into `<mark>`.
pub const MATCH_START: char = '\u{E000}';
pub const MATCH_END: char = '\u{E001}';

/// What to list. Empty means everything.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Words to search for (all of them, the last one also as a prefix).
    pub query: Option<String>,
    pub statuses: Vec<Status>,
    /// Meeting date (or creation time) range in ms, `from` inclusive, `to` exclusive.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub limit: usize,
    /// Continue after this job (keyset pagination of the list; ignored by a search, which is
    /// ordered by relevance and pages with `offset`).
    pub after: Option<Cursor>,
    pub offset: usize,
}

/// A place in the list: the sort key of the last job seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub sort_ms: i64,
    pub id: JobId,
}

impl Cursor {
    /// `<sort_ms>_<id>`: opaque to clients, safe in a URL.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.sort_ms, self.id)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let (sort, id) = text.split_once('_')?;
        Some(Self {
            sort_ms: sort.parse().ok()?,
            id: JobId::parse(id).ok()?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Found {
    pub job: Job,
    /// With a search: the best matching passage, with [`MATCH_START`]/[`MATCH_END`] marks.
    pub snippet: Option<String>,
}

#[derive(Debug, Clone)]
pub struct JobPage {
    pub jobs: Vec<Found>,
    /// Where the next page starts, if there is one.
    pub next: Option<Cursor>,
    /// For searches: the offset of the next page.
    pub next_offset: Option<usize>,
}

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

pub(super) fn list(connection: &Connection, filter: &JobFilter) -> StoreResult<JobPage> {
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
        let snippet_index = super::JOB_COLUMNS.split(',').count();
        let mut found = statement
            .query_map(params_from_iter(values), |row| {
                Ok(Found {
                    job: job_from_row(row)?,
                    snippet: row.get(snippet_index)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let more = found.len() > limit;
        found.truncate(limit);
        return Ok(JobPage {
            jobs: found,
            next: None,
            next_offset: more.then_some(filter.offset + limit),
        });
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
    let where_clause = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
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
    let sort_index = super::JOB_COLUMNS.split(',').count();
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

impl Store {
    /// A page of jobs matching `filter`, newest meeting first (or most relevant first when
    /// searching).
    pub async fn find_jobs(&self, filter: JobFilter) -> StoreResult<JobPage> {
        self.read(move |connection| list(connection, &filter)).await
    }

    /// As [`Self::find_jobs`], with every listed job's log lines: one trip to the blocking pool,
    /// one read transaction (the page and its logs are of the same moment), one query for the
    /// logs of the whole page.
    pub async fn find_jobs_with_logs(
        &self,
        filter: JobFilter,
    ) -> StoreResult<(JobPage, HashMap<JobId, Vec<LogLine>>)> {
        self.read(move |connection| {
            let transaction = connection.unchecked_transaction()?;
            let page = list(&transaction, &filter)?;
            let ids: Vec<&str> = page
                .jobs
                .iter()
                .map(|found| found.job.id.as_str())
                .collect();
            let logs = super::logs_of_jobs(&transaction, &ids)?;
            transaction.finish()?;
            Ok((page, logs))
        })
        .await
    }

    /// Makes a job's transcript searchable (or unsearchable, with an empty text).
    pub async fn index_transcript(&self, id: &JobId, text: String) -> StoreResult<()> {
        let id = id.clone();
        self.write(move |connection| {
            connection.execute(
                "UPDATE job_search SET transcript = ?2
                 WHERE rowid = (SELECT rowid FROM jobs WHERE id = ?1)",
                rusqlite::params![id.as_str(), text],
            )?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Changes, NewJob};

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

    #[tokio::test]
    async fn search_finds_words_in_titles_summaries_and_transcripts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut ids = Vec::new();
        for (title, summary, transcript) in [
            (
                "Budget review",
                "We cut the marketing budget.",
                "[Speaker A]: the budget is tight",
            ),
            (
                "Hiring sync",
                "Two engineers to hire.",
                "[Speaker B]: we talked about the budget once",
            ),
            (
                "Launch plan",
                "Ship the beta in October.",
                "[Speaker A]: the rocket launch",
            ),
        ] {
            let (job, _) = store
                .create_job(NewJob {
                    url: "https://a.example/x.mp3".into(),
                    meeting_date: None,
                    ..Default::default()
                })
                .await
                .unwrap();
            store
                .update(
                    &job.id,
                    Changes::new()
                        .title(Some(title.into()))
                        .summary(Some(summary.into()), None),
                )
                .await
                .unwrap();
            store
                .index_transcript(&job.id, transcript.into())
                .await
                .unwrap();
            ids.push(job.id);
        }
        let search = |query: &str| {
            let store = store.clone();
            let query = query.to_string();
            async move {
                store
                    .find_jobs(JobFilter {
                        query: Some(query),
                        limit: 10,
                        ..Default::default()
                    })
                    .await
                    .unwrap()
            }
        };
        // The title and summary match outrank a passing mention in a transcript.
        let page = search("budget").await;
        assert_eq!(page.jobs.len(), 2);
        assert_eq!(page.jobs[0].job.id, ids[0]);
        assert!(
            page.jobs[0]
                .snippet
                .as_deref()
                .unwrap()
                .contains(&format!("{MATCH_START}"))
        );
        // Transcript words, prefixes, accents folded.
        assert_eq!(search("rocket").await.jobs[0].job.id, ids[2]);
        assert_eq!(search("engin").await.jobs[0].job.id, ids[1]);
        assert_eq!(search("Octóber").await.jobs.len(), 1);
        assert!(search("nothing-like-this").await.jobs.is_empty());

        // Edits and deletes are followed.
        store
            .update(&ids[2], Changes::new().title(Some("Budget launch".into())))
            .await
            .unwrap();
        assert_eq!(search("budget").await.jobs.len(), 3);
        store.delete_job(&ids[0]).await.unwrap();
        assert_eq!(search("budget").await.jobs.len(), 2);
        store
            .update(&ids[2], Changes::new().transcript_path(None))
            .await
            .unwrap();
        assert!(search("rocket").await.jobs.is_empty());
    }

    #[tokio::test]
    async fn pages_follow_each_other_without_gaps_or_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for day in 0..25 {
            store
                .create_job(NewJob {
                    url: "https://a.example/x.mp3".into(),
                    meeting_date: Some(format!("2025-01-{:02}T10:00:00.000Z", day + 1)),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .find_jobs(JobFilter {
                    limit: 10,
                    after: after.clone(),
                    ..Default::default()
                })
                .await
                .unwrap();
            seen.extend(
                page.jobs
                    .iter()
                    .map(|found| found.job.meeting_date.clone().unwrap()),
            );
            match page.next {
                Some(next) => after = Some(Cursor::decode(&next.encode()).unwrap()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 25);
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.reverse();
        assert_eq!(seen, sorted, "newest meeting first");

        let january_10_to_20 = store
            .find_jobs(JobFilter {
                limit: 100,
                from_ms: crate::jobs::meeting_date_millis("2025-01-10"),
                to_ms: crate::jobs::meeting_date_millis("2025-01-20"),
                statuses: vec![Status::Queued],
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(january_10_to_20.jobs.len(), 10);
    }
}
