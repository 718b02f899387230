//! `GET /api/jobs` without parameters: every job, newest meeting first, the original app's
//! answer and the largest one (some 4.4 KB a job with its summary and log lines).
//!
//! Each job's JSON is kept until that job is written (see [`Follow`]: the store tells which
//! job each write touched, across processes on PostgreSQL), and the list's order until a job
//! appears, goes or moves. An answer is the kept pieces in order, streamed as they are: with
//! nothing written since, it costs no query and no copy. Jobs not kept are read a batch at a
//! time by id, serialised, kept and sent on, so the answer is never built whole.
//!
//! Memory: the kept JSON has a budget ([`BUDGET_BYTES`]); past it, jobs are read for every
//! answer. At most [`FETCHES`] batches are read and serialised at once, and each answer holds
//! at most one run (up to [`RUN`] kept jobs, or one batch read) it has not sent yet, looked up
//! as it goes: many connections cost one run each, not an
//! answer each.
//!
//! Pages of the plain list (`?limit=50`, a cursor, an offset, a date range; not a search nor a
//! status filter) are put together from the same pieces ([`AllJobs::page`]): each page's ids and
//! what follows them (the next cursor or offset) are kept until a job appears, goes or moves,
//! and a write to one job on a page costs the serialisation of that job, not of the page.
//! The list page does the same with its cards: each page's ids and next cursor, and each job's
//! card as rendered for a list (its return address and open job), kept the same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use tokio::sync::Semaphore;

use crate::error::{AppError, AppResult};
use crate::jobs::JobId;
use crate::store::{Cursor, JobFilter, Store};
use crate::web::api::view::JobView;
use crate::web::cache::Follow;
use crate::web::pages::view::RenderedCard;

/// What the kept JSON of jobs may take. 1,000 jobs take some 4.4 MB.
const BUDGET_BYTES: usize = 12 * 1024 * 1024;
/// Jobs read from the store at once for an answer.
const BATCH: usize = 32;
/// Kept jobs looked up at once for an answer.
const RUN: usize = 128;
/// Batches read and serialised at once, across all answers (one per core of a small machine).
const FETCHES: usize = 2;
/// What a kept job costs beside its JSON (its id twice, the map's slot).
const ENTRY_OVERHEAD: usize = 96;
/// Ids of pages kept at once (some 60 bytes each: a page of 50 takes 3 KB); past it, the pages
/// kept start over.
const MAX_PAGE_IDS: usize = 16 * 1024;
/// What the kept cards of the list page may take (a card is some 1–2 KB): the home page's 100
/// cards and a few job pages' lists (each job page's list is a view of its own, its cards
/// sending the person back there). 4 MiB let a minute of browsing 60 job pages grow the
/// process by 14 MiB (the soak test's bound is 12); with 512 KiB it stays within it.
const CARD_BUDGET_BYTES: usize = 512 * 1024;

const OPEN: &[u8] = b"{\"jobs\":[";
const CLOSE: &[u8] = b"]}";

/// The kept JSON of jobs and the list's order.
pub struct AllJobs {
    kept: Mutex<Kept>,
    fetching: Semaphore,
    /// The turn to read the list's order when it is not kept (see [`AllJobs::read_order`]).
    ordering: tokio::sync::Mutex<()>,
}

struct Kept {
    follow: Follow,
    /// Every job's id in the list's order, until a job appears, goes or moves.
    order: Option<Arc<[JobId]>>,
    /// Each job's JSON, after a comma (the first job's is sent without it).
    jobs: HashMap<JobId, Bytes>,
    bytes: usize,
    /// Pages of the plain list by their query, until a job appears, goes or moves.
    pages: HashMap<String, Page>,
    /// Pages of the list page by their key, until a job appears, goes or moves.
    lists: HashMap<String, ListPage>,
    /// How many ids `pages` and `lists` hold.
    page_ids: usize,
    /// Each job's cards, by the list they were rendered for (see [`AllJobs::cards`]).
    cards: HashMap<JobId, Vec<(String, Arc<RenderedCard>)>>,
    card_bytes: usize,
}

/// A page of the list page without its cards: its jobs and where the next page starts.
#[derive(Debug, Clone)]
pub struct ListPage {
    pub ids: Arc<[JobId]>,
    pub next: Option<Cursor>,
    pub next_offset: Option<usize>,
}

/// A page of the plain list without its jobs' JSON.
struct Page {
    ids: Arc<[JobId]>,
    /// What follows the jobs: `],"next_cursor":"…"}` or the like.
    tail: Bytes,
}

impl Kept {
    fn catch_up(&mut self, store: &Store) {
        let Kept {
            follow,
            order,
            jobs,
            bytes,
            pages,
            lists,
            page_ids,
            cards,
            card_bytes,
        } = self;
        follow.catch_up(store, |written| {
            if written.reorders() {
                *order = None;
                pages.clear();
                lists.clear();
                *page_ids = 0;
            }
            match written.job() {
                Some(id) => {
                    if let Some(json) = jobs.remove(id) {
                        *bytes -= json.len() + ENTRY_OVERHEAD;
                    }
                    for (view, card) in cards.remove(id).unwrap_or_default() {
                        *card_bytes -= card.size() + view.len();
                    }
                }
                None => {
                    jobs.clear();
                    *bytes = 0;
                    cards.clear();
                    *card_bytes = 0;
                }
            }
        });
    }

    fn forget_pages(&mut self) {
        self.pages.clear();
        self.lists.clear();
        self.page_ids = 0;
    }

    /// Keeps a job's JSON read from reads that began at `mark`, unless a write since touched
    /// the job, it is kept already, or the budget is spent.
    fn keep(&mut self, id: &JobId, json: &Bytes, mark: u64) {
        let size = json.len() + ENTRY_OVERHEAD;
        if self.bytes + size > BUDGET_BYTES
            || self.jobs.contains_key(id)
            || self.written_since(mark, Some(id))
        {
            return;
        }
        self.bytes += size;
        self.jobs.insert(id.clone(), json.clone());
    }

    /// Whether a write taken since `mark` touched `id` (or the order, with `id` None), or the
    /// writes since are no longer all known.
    fn written_since(&self, mark: u64, id: Option<&JobId>) -> bool {
        let Some(mut writes) = self.follow.since(mark) else {
            return true;
        };
        writes.any(|written| match (id, written.job()) {
            (None, _) => written.reorders(),
            (Some(id), Some(job)) => id == job,
            (Some(_), None) => true,
        })
    }
}

impl AllJobs {
    pub fn new(store: &Store) -> Self {
        Self {
            kept: Mutex::new(Kept {
                follow: Follow::new(store),
                order: None,
                jobs: HashMap::new(),
                bytes: 0,
                pages: HashMap::new(),
                lists: HashMap::new(),
                page_ids: 0,
                cards: HashMap::new(),
                card_bytes: 0,
            }),
            fetching: Semaphore::new(FETCHES),
            ordering: tokio::sync::Mutex::new(()),
        }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The answer: `{"jobs":[…]}`, byte for byte what serialising the whole list gives.
    pub async fn answer(self: &Arc<Self>, store: &Store) -> AppResult<Response> {
        let order = {
            let mut kept = self.kept();
            kept.catch_up(store);
            kept.order.clone()
        };
        let order = match order {
            Some(order) => order,
            None => self.read_order(store).await?,
        };
        let sending = Sending {
            all: self.clone(),
            store: store.clone(),
            order,
            next: 0,
            ready: std::collections::VecDeque::new(),
            first: true,
            opened: false,
            closed: false,
        };
        // Fused: a body may be polled again after its end (the compression layer does).
        let body = Body::from_stream(
            stream::unfold(sending, |mut sending| async move {
                let next = sending.next().await.transpose()?;
                Some((next, sending))
            })
            .fuse(),
        );
        Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
    }

    /// The list's order, read by one request at a time: those that ask while it is read wait
    /// for it and take it once kept. Read by each request that found it missing, 64 connections
    /// asking at once held a copy each while their answers were sent (some 720 KB each at
    /// 10,000 jobs: 23 MB of a 85 MiB peak; docs/benchmarks.md, "Fourth pass"). A write that moves the order while it
    /// is read leaves it unkept, and the next in turn reads it again.
    async fn read_order(&self, store: &Store) -> AppResult<Arc<[JobId]>> {
        let _turn = self.ordering.lock().await;
        let mark = {
            let mut kept = self.kept();
            kept.catch_up(store);
            if let Some(order) = &kept.order {
                return Ok(order.clone());
            }
            kept.follow.mark()
        };
        let order: Arc<[JobId]> = store.job_order().await?.into();
        let mut kept = self.kept();
        kept.catch_up(store);
        if !kept.written_since(mark, None) {
            kept.order = Some(order.clone());
        }
        Ok(order)
    }

    /// A page of the plain list (no search, no status filter; `key` names its query), byte for
    /// byte what serialising it whole gives ([`crate::web::api::view::JobList::to_json`]), with the jobs it
    /// shows. Its ids are kept until the list's order moves; its jobs' JSON until they are
    /// written.
    pub async fn page(
        &self,
        store: &Store,
        key: &str,
        filter: JobFilter,
    ) -> AppResult<(Bytes, Vec<JobId>)> {
        let (page, mark) = {
            let mut kept = self.kept();
            kept.catch_up(store);
            let page = kept
                .pages
                .get(key)
                .map(|page| (page.ids.clone(), page.tail.clone()));
            (page, kept.follow.mark())
        };
        let (ids, tail, jobs) = match page {
            Some((ids, tail)) => {
                let jobs = self.pieces(store, &ids, mark).await?;
                (ids, tail, jobs)
            }
            None => self.read_page(store, key, filter, mark).await?,
        };
        let size = tail.len() + jobs.iter().map(Bytes::len).sum::<usize>() + OPEN.len();
        let mut body = Vec::with_capacity(size);
        body.extend_from_slice(OPEN);
        for (n, json) in jobs.iter().enumerate() {
            body.extend_from_slice(if n == 0 { &json[1..] } else { json });
        }
        body.extend_from_slice(&tail);
        Ok((Bytes::from(body), ids.to_vec()))
    }

    /// The JSON of the jobs `ids`, kept or read (those that still exist, in that order).
    async fn pieces(&self, store: &Store, ids: &[JobId], mark: u64) -> AppResult<Vec<Bytes>> {
        let mut found: Vec<Option<Bytes>> = {
            let mut kept = self.kept();
            kept.catch_up(store);
            ids.iter().map(|id| kept.jobs.get(id).cloned()).collect()
        };
        let missing: Vec<JobId> = ids
            .iter()
            .zip(&found)
            .filter(|(_, json)| json.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        if missing.is_empty() {
            return Ok(found.into_iter().flatten().collect());
        }
        let mut read = self.read_by_id(store, missing, mark).await?;
        for (id, json) in ids.iter().zip(found.iter_mut()) {
            if json.is_none() {
                *json = read.remove(id);
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    /// Reads a page from the store: its ids, its tail and its jobs' JSON, keeping all three
    /// as far as no write since `mark` changed them.
    async fn read_page(
        &self,
        store: &Store,
        key: &str,
        filter: JobFilter,
        mark: u64,
    ) -> AppResult<(Arc<[JobId]>, Bytes, Vec<Bytes>)> {
        let (page, mut logs) = store.find_jobs_with_logs(filter).await?;
        let mut tail = b"]".to_vec();
        let internal = |error: serde_json::Error| AppError::Internal(error.into());
        if let Some(next) = &page.next {
            tail.extend_from_slice(b",\"next_cursor\":");
            serde_json::to_writer(&mut tail, &next.encode()).map_err(internal)?;
        }
        if let Some(offset) = page.next_offset {
            tail.extend_from_slice(b",\"next_offset\":");
            serde_json::to_writer(&mut tail, &offset).map_err(internal)?;
        }
        tail.push(b'}');
        let tail = Bytes::from(tail);
        let mut ids = Vec::with_capacity(page.jobs.len());
        let mut jobs = Vec::with_capacity(page.jobs.len());
        for found in page.jobs {
            let lines = logs.remove(&found.job.id).unwrap_or_default();
            ids.push(found.job.id.clone());
            jobs.push(serialise(found.job, &lines)?);
        }
        let ids: Arc<[JobId]> = ids.into();
        let mut kept = self.kept();
        kept.catch_up(store);
        for (id, json) in ids.iter().zip(&jobs) {
            kept.keep(id, json, mark);
        }
        if !kept.written_since(mark, None) {
            if kept.page_ids + ids.len() > MAX_PAGE_IDS {
                kept.forget_pages();
            }
            let page = Page {
                ids: ids.clone(),
                tail: tail.clone(),
            };
            kept.page_ids += ids.len();
            if let Some(replaced) = kept.pages.insert(key.to_string(), page) {
                kept.page_ids -= replaced.ids.len();
            }
        }
        Ok((ids, tail, jobs))
    }

    /// One job's JSON (`GET /api/jobs/{id}` without its content), byte for byte what
    /// serialising its [`JobView`] gives: kept until the job is written, shared with the
    /// listings. A job that does not exist is the store's error, as before.
    pub async fn job(&self, store: &Store, id: &JobId) -> AppResult<Bytes> {
        let mark = {
            let mut kept = self.kept();
            kept.catch_up(store);
            if let Some(json) = kept.jobs.get(id) {
                return Ok(json.slice(1..));
            }
            kept.follow.mark()
        };
        let (job, logs) = store.job_with_logs(id).await?;
        let json = serialise(job, &logs)?;
        let mut kept = self.kept();
        kept.catch_up(store);
        kept.keep(id, &json, mark);
        Ok(json.slice(1..))
    }

    /// The page of the list page kept under `key`, and where the writes taken stand (for
    /// [`Self::keep_list_page`] and [`Self::keep_cards`]).
    pub fn list_page(&self, store: &Store, key: &str) -> (Option<ListPage>, u64) {
        let mut kept = self.kept();
        kept.catch_up(store);
        (kept.lists.get(key).cloned(), kept.follow.mark())
    }

    /// Keeps a page of the list page read from reads that began at `mark`, unless the list's
    /// order moved since.
    pub fn keep_list_page(&self, store: &Store, key: &str, page: ListPage, mark: u64) {
        let mut kept = self.kept();
        kept.catch_up(store);
        if kept.written_since(mark, None) {
            return;
        }
        if kept.page_ids + page.ids.len() > MAX_PAGE_IDS {
            kept.forget_pages();
        }
        kept.page_ids += page.ids.len();
        if let Some(replaced) = kept.lists.insert(key.to_string(), page) {
            kept.page_ids -= replaced.ids.len();
        }
    }

    /// The cards of `ids` kept for the list `view` (a name for everything a card shows besides
    /// its job: the list's return address, the open job), None for those not kept.
    pub fn cards(
        &self,
        store: &Store,
        ids: &[JobId],
        view: &str,
    ) -> Vec<Option<Arc<RenderedCard>>> {
        let mut kept = self.kept();
        kept.catch_up(store);
        ids.iter()
            .map(|id| {
                let cards = kept.cards.get(id)?;
                let (_, card) = cards.iter().find(|(shown, _)| shown == view)?;
                Some(card.clone())
            })
            .collect()
    }

    /// Keeps cards for the list `view`, rendered from reads that began at `mark`, unless a
    /// write since touched their job.
    pub fn keep_cards(
        &self,
        store: &Store,
        view: &str,
        cards: impl IntoIterator<Item = (JobId, Arc<RenderedCard>)>,
        mark: u64,
    ) {
        let mut kept = self.kept();
        kept.catch_up(store);
        for (id, card) in cards {
            let size = card.size() + view.len();
            if kept.written_since(mark, Some(&id)) {
                continue;
            }
            if kept.card_bytes + size > CARD_BUDGET_BYTES {
                // No room: start again, as the answers' cache does.
                kept.cards.clear();
                kept.card_bytes = 0;
            }
            let shown = kept.cards.entry(id).or_default();
            if shown.iter().any(|(other, _)| other == view) {
                continue;
            }
            shown.push((view.to_string(), card));
            kept.card_bytes += size;
        }
    }

    /// The next jobs of `order`: the JSON kept for a run of them, or else (the first is not
    /// kept) the ids of a run to read, with where the writes taken stand. Looked up a run at a
    /// time, so an answer holds no more than a run whatever the number of jobs.
    fn next_run(&self, store: &Store, order: &[JobId]) -> (Vec<Bytes>, Vec<JobId>, u64) {
        let mut kept = self.kept();
        kept.catch_up(store);
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for id in order.iter().take(RUN) {
            match kept.jobs.get(id) {
                Some(json) if missing.is_empty() => found.push(json.clone()),
                None if found.is_empty() && missing.len() < BATCH => missing.push(id.clone()),
                _ => break,
            }
        }
        (found, missing, kept.follow.mark())
    }

    /// Reads `ids` from the store and serialises them, keeping what is still current. Returns
    /// the JSON of those that exist, in the order of `ids`.
    async fn read(&self, store: &Store, ids: Vec<JobId>, mark: u64) -> AppResult<Vec<Bytes>> {
        let order = ids.clone();
        let mut found = self.read_by_id(store, ids, mark).await?;
        Ok(order.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// Reads `ids` from the store and serialises them, keeping what is still current. Returns
    /// the JSON of those that exist, by id.
    async fn read_by_id(
        &self,
        store: &Store,
        ids: Vec<JobId>,
        mark: u64,
    ) -> AppResult<HashMap<JobId, Bytes>> {
        let _permit = self
            .fetching
            .acquire()
            .await
            .map_err(|error| AppError::Internal(error.into()))?;
        let mut found: HashMap<JobId, Bytes> = HashMap::with_capacity(ids.len());
        for (job, logs) in store.jobs_with_logs(&ids).await? {
            let id = job.id.clone();
            found.insert(id, serialise(job, &logs)?);
        }
        let mut kept = self.kept();
        kept.catch_up(store);
        for (id, json) in &found {
            kept.keep(id, json, mark);
        }
        Ok(found)
    }
}

/// A job's JSON as kept: after a comma.
fn serialise(job: crate::jobs::Job, logs: &[crate::jobs::LogLine]) -> AppResult<Bytes> {
    let mut json = Vec::with_capacity(4096);
    json.push(b',');
    serde_json::to_writer(&mut json, &JobView::new(job, logs))
        .map_err(|error| AppError::Internal(error.into()))?;
    // Kept for long: without the room the buffer grew by (up to as much again).
    json.shrink_to_fit();
    Ok(Bytes::from(json))
}

/// An answer being sent: the opening, each job, the closing.
struct Sending {
    all: Arc<AllJobs>,
    store: Store,
    order: Arc<[JobId]>,
    /// The first job of `order` not yet looked up.
    next: usize,
    /// Jobs looked up or read and not yet sent (one run at most).
    ready: std::collections::VecDeque<Bytes>,
    first: bool,
    opened: bool,
    closed: bool,
}

impl Sending {
    /// The next chunk of the body, None at the end.
    async fn next(&mut self) -> Result<Option<Bytes>, AppError> {
        if !self.opened {
            self.opened = true;
            return Ok(Some(Bytes::from_static(OPEN)));
        }
        loop {
            if let Some(json) = self.ready.pop_front() {
                return Ok(Some(self.job(json)));
            }
            if self.next >= self.order.len() {
                if self.closed {
                    return Ok(None);
                }
                self.closed = true;
                return Ok(Some(Bytes::from_static(CLOSE)));
            }
            let (found, missing, mark) = self.all.next_run(&self.store, &self.order[self.next..]);
            self.next += found.len() + missing.len();
            self.ready.extend(found);
            if !missing.is_empty() {
                let read = self.all.read(&self.store, missing, mark).await;
                let read = read.inspect_err(|error| {
                    tracing::warn!(%error, "the all-jobs listing stopped half-way");
                })?;
                self.ready.extend(read);
            }
        }
    }

    /// A job's JSON as sent: after a comma unless it is the first.
    fn job(&mut self, json: Bytes) -> Bytes {
        if std::mem::take(&mut self.first) {
            json.slice(1..)
        } else {
            json
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Changes;
    use crate::web::cache::tests::job as new_job;

    #[tokio::test]
    async fn a_job_is_its_view_serialised_and_follows_its_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = new_job(&store).await;
        let all = AllJobs::new(&store);
        let whole = |store: Store, id: JobId| async move {
            let (job, logs) = store.job_with_logs(&id).await.unwrap();
            serde_json::to_vec(&JobView::new(job, &logs)).unwrap()
        };
        let first = all.job(&store, &id).await.unwrap();
        assert_eq!(first, whole(store.clone(), id.clone()).await);
        assert_eq!(all.job(&store, &id).await.unwrap(), first, "kept");
        store
            .update(&id, Changes::new().title(Some("Quoted \"title\"".into())))
            .await
            .unwrap();
        let changed = all.job(&store, &id).await.unwrap();
        assert_ne!(changed, first);
        assert_eq!(changed, whole(store.clone(), id.clone()).await);
        let missing = JobId::parse("no-such-job").unwrap();
        assert!(all.job(&store, &missing).await.is_err());
    }
}
