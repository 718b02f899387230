//! Finding jobs: pages of the list (keyset pagination, so page 200 costs what page 1 costs),
//! filters by status and meeting date, and full-text search over titles, summaries and
//! transcripts with highlighted snippets. What a search means is fixed here; each backend
//! finds the jobs its own way.

use super::columns::Cell;
use crate::jobs::{Job, JobId, Status};

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

impl JobPage {
    /// A page of search results: `found` holds up to one more than `limit` (which says there
    /// is a next page, at the next offset).
    pub(crate) fn of_search(mut found: Vec<Found>, limit: usize, offset: usize) -> Self {
        let more = found.len() > limit;
        found.truncate(limit);
        JobPage {
            jobs: found,
            next: None,
            next_offset: more.then_some(offset + limit),
        }
    }
}

impl JobPage {
    /// A page of the listing in date order: `rows` (each job with its sort key) holds up to
    /// one more than `limit`, which says there is a next page, after the last job shown.
    pub(crate) fn of_listing(mut rows: Vec<(Job, i64)>, limit: usize) -> Self {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = more
            .then(|| rows.last())
            .flatten()
            .map(|(job, sort_ms)| Cursor {
                sort_ms: *sort_ms,
                id: job.id.clone(),
            });
        JobPage {
            jobs: rows
                .into_iter()
                .map(|(job, _)| Found { job, snippet: None })
                .collect(),
            next,
            next_offset: None,
        }
    }
}

impl JobFilter {
    /// Jobs on a page: as asked, within reason.
    pub(crate) fn page_size(&self) -> usize {
        self.limit.clamp(1, 1000)
    }

    /// Rows to skip in the date-ordered listing: none after a cursor (it says where the page
    /// starts), else the offset.
    pub(crate) fn listing_offset(&self) -> usize {
        if self.after.is_some() { 0 } else { self.offset }
    }
}

/// `columns` (a backend's list of a job's columns) each as `jobs.<column>`, for a query that
/// joins another table.
pub(crate) fn prefixed_columns(columns: &str) -> String {
    columns
        .split(',')
        .map(|column| format!("jobs.{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `WHERE a AND b` of the clauses, or nothing when there are none (every backend's filters).
pub(crate) fn where_clause(clauses: &[String]) -> String {
    if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    }
}

/// A listing page's statement: the jobs `clauses` allow, in date order, newest first, from
/// the filter's cursor or offset; and the values of the cursor's condition, to bind after the
/// `bound` values `clauses` already number (placeholders `prefix` and a position: `?` for
/// SQLite, `$` for PostgreSQL). The sort key follows the job's `columns` in each row.
pub(crate) fn listing_sql(
    filter: &JobFilter,
    columns: &str,
    mut clauses: Vec<String>,
    bound: usize,
    prefix: char,
) -> (String, Vec<Cell>) {
    let mut values = Vec::new();
    if let Some(after) = &filter.after {
        values.push(Cell::Integer(Some(after.sort_ms)));
        values.push(Cell::Text(Some(after.id.to_string())));
        clauses.push(format!(
            "(jobs.sort_ms, jobs.id) < ({prefix}{}, {prefix}{})",
            bound + 1,
            bound + 2
        ));
    }
    let sql = format!(
        "SELECT {}, jobs.sort_ms FROM jobs {}
         ORDER BY jobs.sort_ms DESC, jobs.id DESC LIMIT {} OFFSET {}",
        prefixed_columns(columns),
        where_clause(&clauses),
        filter.page_size() + 1,
        filter.listing_offset()
    );
    (sql, values)
}

/// What a search means, checked the same way on every backend.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::tests::job_at;
    use crate::store::{Changes, NewJob, Store};

    #[tokio::test]
    async fn search_finds_words_in_titles_summaries_and_transcripts() {
        let dir = tempfile::tempdir().unwrap();
        search_meaning(Store::open(dir.path()).unwrap()).await;
    }

    #[tokio::test]
    async fn pages_follow_each_other_without_gaps_or_repeats() {
        let dir = tempfile::tempdir().unwrap();
        pages_meaning(Store::open(dir.path()).unwrap()).await;
    }

    /// The first ten jobs `query` finds.
    pub(crate) async fn find(store: Store, query: String) -> JobPage {
        store
            .find_jobs(JobFilter {
                query: Some(query),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
    }

    pub(crate) async fn search_meaning(store: Store) {
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
            let job = job_at(&store, "https://a.example/x.mp3").await;
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
        let search = |query: &str| find(store.clone(), query.to_string());
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

    pub(crate) async fn pages_meaning(store: Store) {
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
