//! Answers that depend only on the database, kept until a write changes what they show.
//!
//! A listing of jobs is the most requested answer (browsers poll it while jobs run, API clients
//! page through it) and the most expensive to build: a page of the API is some 100 KB of JSON
//! with every job's summary and log, the list page a hundred cards of HTML. Each entry records
//! what it [shows](Shows): the jobs on it, and whether it shows queue places. The store tells
//! every write ([`Written`]: which job, and whether the list's or the queue's order may have
//! moved), this process's at once and other processes' as they arrive (PostgreSQL), and a write
//! drops only the entries that show what it changed. With jobs running (a write every few
//! hundred milliseconds each), the pages that do not show them stay kept.
//!
//! The writes are taken before every lookup ([`Follow`]), so no answer is older than a write
//! that returned. An answer whose build began before a write it shows is not kept.
//!
//! Requests that miss the same key at the same time build it one after another, not all at
//! once: the first builds and keeps it, the others then find it. After a write, a crowd of
//! pollers therefore costs one build instead of one each. An answer that cannot be kept (a
//! write to what it shows landed while it was built) is still handed to those who waited for
//! it, as long as its reads began after every write they had seen: with writes arriving faster
//! than builds, the crowd would otherwise build it again one after another.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast::{self, error::TryRecvError};

use crate::jobs::JobId;
use crate::store::{Store, Written};

/// What all entries together may hold. A page of 50 jobs is about 110 KB.
const BUDGET_BYTES: usize = 8 * 1024 * 1024;
/// Larger answers are built every time.
const MAX_ENTRY_BYTES: usize = 4 * 1024 * 1024;
/// A bound on the number of keys, whatever their size (many small distinct queries).
const MAX_ENTRIES: usize = 256;
/// The writes remembered for builds in flight: one that began further back is not kept.
const RECENT_WRITES: usize = 256;

/// The store's writes as one cache takes them: told on a channel, and found cheaply absent by
/// the store's generation (which moves only after a write is on the channel).
#[derive(Debug)]
pub struct Follow {
    writes: broadcast::Receiver<Written>,
    generation: u64,
    /// How many writes were taken, and the latest of them (for builds that began earlier).
    taken: u64,
    recent: VecDeque<(u64, Written)>,
}

impl Follow {
    pub fn new(store: &Store) -> Self {
        Self {
            writes: store.subscribe_writes(),
            generation: store.generation(),
            taken: 0,
            recent: VecDeque::new(),
        }
    }

    /// Takes the writes told since the last call, handing each to `apply`. A cache that fell
    /// behind the channel is handed [`Written::Everything`].
    pub fn catch_up(&mut self, store: &Store, mut apply: impl FnMut(&Written)) {
        // Read first: every write that moved the generation this far is on the channel now.
        let now = store.generation();
        if now == self.generation {
            return;
        }
        self.generation = now;
        loop {
            let written = match self.writes.try_recv() {
                Ok(written) => written,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(_)) => Written::Everything,
                Err(TryRecvError::Closed) => {
                    apply(&Written::Everything);
                    break;
                }
            };
            apply(&written);
            self.taken += 1;
            if self.recent.len() == RECENT_WRITES {
                self.recent.pop_front();
            }
            self.recent.push_back((self.taken, written));
        }
    }

    /// Where the writes taken stand: a build that begins now notes it.
    pub fn mark(&self) -> u64 {
        self.taken
    }

    /// The writes taken since `mark`, or None when they are no longer all remembered.
    pub fn since(&self, mark: u64) -> Option<impl Iterator<Item = &Written>> {
        let oldest = self.recent.front().map_or(self.taken + 1, |(at, _)| *at);
        if mark + 1 < oldest && mark < self.taken {
            return None;
        }
        Some(
            self.recent
                .iter()
                .filter(move |(at, _)| *at > mark)
                .map(|(_, written)| written),
        )
    }
}

/// What an answer shows, so a write drops it only when it changed some of that.
#[derive(Debug, Clone, Default)]
pub struct Shows {
    /// The jobs shown, or None when any write may change the answer (a search, a status
    /// filter: a job may enter or leave it).
    pub jobs: Option<Vec<JobId>>,
    /// Queue places are shown (any job entering or leaving the queue moves them).
    pub queue: bool,
}

impl Shows {
    /// Whether `written` may have changed the answer.
    pub fn changed_by(&self, written: &Written) -> bool {
        if written.reorders() || (self.queue && written.requeues()) {
            return true;
        }
        match (&self.jobs, written.job()) {
            (Some(jobs), Some(job)) => jobs.contains(job),
            _ => true,
        }
    }
}

/// Answers of type `V` (cheap to clone: `Bytes`, an `Arc`), by a key naming the question.
pub struct AnswerCache<V> {
    inner: Mutex<Entries<V>>,
    /// A turn per key being built: who holds it builds, the others wait for it.
    building: Mutex<HashMap<String, Gate<V>>>,
}

/// A key's turn, with the last answer built under it and where the writes stood when its reads
/// began.
type Gate<V> = Arc<tokio::sync::Mutex<Option<(u64, V)>>>;

struct Entries<V> {
    follow: Follow,
    bytes: usize,
    answers: HashMap<String, Entry<V>>,
}

struct Entry<V> {
    answer: V,
    size: usize,
    shows: Shows,
}

impl<V> Entries<V> {
    fn catch_up(&mut self, store: &Store) {
        let Entries {
            follow,
            bytes,
            answers,
        } = self;
        follow.catch_up(store, |written| {
            if matches!(written, Written::Everything) {
                answers.clear();
                *bytes = 0;
                return;
            }
            answers.retain(|_, entry| {
                let keep = !entry.shows.changed_by(written);
                if !keep {
                    *bytes -= entry.size;
                }
                keep
            });
        });
    }
}

/// Gives a key's turn back, and forgets it when nobody else waits for it (also when the
/// request that held it is dropped half-way).
struct Turn<'a, V> {
    building: &'a Mutex<HashMap<String, Gate<V>>>,
    key: &'a str,
    gate: Gate<V>,
}

impl<V> Drop for Turn<'_, V> {
    fn drop(&mut self) {
        let mut building = self.building.lock().unwrap_or_else(|e| e.into_inner());
        // Only the map and this turn hold it: nobody is waiting.
        if Arc::strong_count(&self.gate) == 2 {
            building.remove(self.key);
        }
    }
}

impl<V: Clone> AnswerCache<V> {
    /// An empty cache that follows `store`'s writes.
    pub fn new(store: &Store) -> Self {
        Self {
            inner: Mutex::new(Entries {
                follow: Follow::new(store),
                bytes: 0,
                answers: HashMap::new(),
            }),
            building: Mutex::default(),
        }
    }

    /// The answer for `key`: kept, or built by `build` (which returns it, about how many bytes
    /// it holds, and what it shows) from reads that begin after the writes told so far.
    pub async fn get_or_build<E, F, Fut>(
        &self,
        store: &Store,
        key: String,
        build: F,
    ) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(V, usize, Shows), E>>,
    {
        let (found, arrived) = self.get(store, &key);
        if let Some(answer) = found {
            return Ok(answer);
        }
        let gate = {
            let mut building = self.building.lock().unwrap_or_else(|e| e.into_inner());
            building.entry(key.clone()).or_default().clone()
        };
        let turn = Turn {
            building: &self.building,
            key: &key,
            gate,
        };
        // Dropped before the turn (declared after it), whichever way this function ends.
        let mut held = turn.gate.lock().await;
        // Whoever held the turn before may have built it meanwhile: kept, or built from reads
        // that began after every write this request had seen when it came.
        let (found, mark) = self.get(store, &key);
        if let Some(answer) = found {
            return Ok(answer);
        }
        if let Some((built, answer)) = held.as_ref()
            && *built >= arrived
        {
            return Ok(answer.clone());
        }
        let (answer, size, shows) = build().await?;
        self.put(store, mark, key.clone(), answer.clone(), size, shows);
        *held = Some((mark, answer.clone()));
        Ok(answer)
    }

    /// The answer kept for `key`, if any, and where the writes taken stand.
    fn get(&self, store: &Store, key: &str) -> (Option<V>, u64) {
        let mut entries = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        entries.catch_up(store);
        let found = entries.answers.get(key).map(|entry| entry.answer.clone());
        (found, entries.follow.mark())
    }

    /// Keeps an answer of about `size` bytes built from reads that began at `mark`, unless a
    /// write since changed what it shows.
    fn put(&self, store: &Store, mark: u64, key: String, answer: V, size: usize, shows: Shows) {
        // The key counts too: it holds the query as given, which a client chooses.
        let size = size + key.len() + shows.jobs.as_ref().map_or(0, |jobs| jobs.len() * 48);
        if size > MAX_ENTRY_BYTES {
            return;
        }
        let mut entries = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        entries.catch_up(store);
        let stale = match entries.follow.since(mark) {
            Some(mut writes) => writes.any(|written| shows.changed_by(written)),
            None => true,
        };
        if stale {
            return;
        }
        if entries.bytes + size > BUDGET_BYTES || entries.answers.len() >= MAX_ENTRIES {
            // No room: start again. Under a budget this small, clearing beats tracking which
            // entry was used last.
            entries.answers.clear();
            entries.bytes = 0;
        }
        entries.bytes += size;
        let entry = Entry {
            answer,
            size,
            shows,
        };
        if let Some(replaced) = entries.answers.insert(key, entry) {
            entries.bytes -= replaced.size;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::{Changes, NewJob};
    use bytes::Bytes;

    /// A new job in `store`, for the kept answers' tests.
    pub(crate) async fn job(store: &Store) -> JobId {
        let (job, _) = store
            .create_job(NewJob {
                url: "https://example.com/a.mp3".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        job.id
    }

    /// Asks for `key`; returns the answer and whether it was built (not found kept).
    async fn ask(
        cache: &AnswerCache<Bytes>,
        store: &Store,
        key: &str,
        answer: &'static str,
        shows: Shows,
    ) -> (Bytes, bool) {
        let mut built = false;
        let got =
            cache
                .get_or_build(store, key.into(), || {
                    built = true;
                    async move {
                        Ok::<_, ()>((Bytes::from_static(answer.as_bytes()), answer.len(), shows))
                    }
                })
                .await
                .unwrap();
        (got, built)
    }

    fn showing(jobs: &[&JobId]) -> Shows {
        Shows {
            jobs: Some(jobs.iter().map(|id| (*id).clone()).collect()),
            queue: false,
        }
    }

    #[tokio::test]
    async fn a_write_drops_only_the_answers_that_show_its_job() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = (job(&store).await, job(&store).await);
        let cache = AnswerCache::<Bytes>::new(&store);
        assert!(ask(&cache, &store, "with a", "1", showing(&[&a])).await.1);
        assert!(ask(&cache, &store, "with b", "2", showing(&[&b])).await.1);
        let search = Shows::default();
        assert!(ask(&cache, &store, "search", "3", search.clone()).await.1);
        assert!(
            !ask(&cache, &store, "with a", "x", showing(&[&a])).await.1,
            "kept"
        );

        // A write to b: the page of a stays, b's page and the search go.
        store.append_log(&b, "progress").await.unwrap();
        let (kept, built) = ask(&cache, &store, "with a", "x", showing(&[&a])).await;
        assert!(!built);
        assert_eq!(kept, Bytes::from_static(b"1"));
        assert!(ask(&cache, &store, "with b", "2", showing(&[&b])).await.1);
        assert!(ask(&cache, &store, "search", "3", search.clone()).await.1);

        // A status change moves the queue: pages that show queue places go too.
        let queue = Shows {
            queue: true,
            ..showing(&[&a])
        };
        assert!(ask(&cache, &store, "queue", "4", queue.clone()).await.1);
        store
            .update(&b, Changes::new().title(Some("B".into())))
            .await
            .unwrap();
        assert!(
            !ask(&cache, &store, "queue", "4", queue.clone()).await.1,
            "a title is no status"
        );
        store
            .update(&b, Changes::new().status(crate::jobs::Status::Error))
            .await
            .unwrap();
        assert!(ask(&cache, &store, "queue", "4", queue).await.1);
        assert!(!ask(&cache, &store, "with a", "x", showing(&[&a])).await.1);

        // A new job (or one gone) may shift every page.
        let _c = job(&store).await;
        assert!(ask(&cache, &store, "with a", "1", showing(&[&a])).await.1);
        store.delete_job(&b).await.unwrap();
        assert!(ask(&cache, &store, "with a", "1", showing(&[&a])).await.1);
    }

    #[tokio::test]
    async fn an_answer_read_before_a_write_it_shows_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = (job(&store).await, job(&store).await);
        let cache = AnswerCache::<Bytes>::new(&store);
        // The write lands while the answer is being built from older reads.
        let built = cache
            .get_or_build(&store, "with a".into(), || async {
                store.append_log(&a, "meanwhile").await.unwrap();
                Ok::<_, ()>((Bytes::from_static(b"old"), 3, showing(&[&a])))
            })
            .await
            .unwrap();
        assert_eq!(
            built,
            Bytes::from_static(b"old"),
            "served to the one who asked"
        );
        assert!(
            ask(&cache, &store, "with a", "new", showing(&[&a])).await.1,
            "not kept"
        );
        // A write to another job meanwhile does not stop it being kept.
        cache
            .get_or_build(&store, "with b".into(), || async {
                store.append_log(&a, "meanwhile").await.unwrap();
                Ok::<_, ()>((Bytes::from_static(b"b"), 1, showing(&[&b])))
            })
            .await
            .unwrap();
        assert!(!ask(&cache, &store, "with b", "x", showing(&[&b])).await.1);
    }

    #[tokio::test]
    async fn the_cache_stays_within_its_budget() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cache = AnswerCache::<Bytes>::new(&store);
        let mark = 0;
        let put = |key: &str, answer: Bytes| {
            let size = answer.len();
            cache.put(&store, mark, key.into(), answer, size, Shows::default());
        };
        let kept = |key: &str| cache.get(&store, key).0;
        put("huge", Bytes::from(vec![b'x'; MAX_ENTRY_BYTES + 1]));
        assert_eq!(kept("huge"), None, "too large to keep");

        let page = Bytes::from(vec![b'x'; 1024 * 1024]);
        for n in 0..20 {
            put(&format!("page{n}"), page.clone());
            let held = cache.inner.lock().unwrap().bytes;
            assert!(held <= BUDGET_BYTES, "{held} bytes after {n} pages");
        }
        assert!(kept("page19").is_some(), "the newest is kept");
        for n in 0..(MAX_ENTRIES + 10) {
            put(&format!("small{n}"), Bytes::from_static(b"{}"));
        }
        assert!(cache.inner.lock().unwrap().answers.len() <= MAX_ENTRIES);

        // Replacing a key does not count its bytes twice; keys count as well.
        let cache = AnswerCache::<Bytes>::new(&store);
        cache.put(
            &store,
            0,
            "a".into(),
            Bytes::from_static(b"1234"),
            4,
            Shows::default(),
        );
        cache.put(
            &store,
            0,
            "a".into(),
            Bytes::from_static(b"12"),
            2,
            Shows::default(),
        );
        assert_eq!(cache.inner.lock().unwrap().bytes, 3);
        let long_key = "q".repeat(MAX_ENTRY_BYTES);
        cache.put(
            &store,
            0,
            long_key.clone(),
            Bytes::from_static(b"{}"),
            2,
            Shows::default(),
        );
        assert_eq!(
            cache.get(&store, &long_key).0,
            None,
            "a key too long to keep"
        );
    }

    #[tokio::test]
    async fn a_crowd_that_misses_together_builds_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cache = Arc::new(AnswerCache::<Bytes>::new(&store));
        let builds = Arc::new(AtomicUsize::new(0));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let ask = |key: &'static str, size: usize| {
            let (cache, builds, running, most, store) = (
                cache.clone(),
                builds.clone(),
                running.clone(),
                most.clone(),
                store.clone(),
            );
            tokio::spawn(async move {
                cache
                    .get_or_build(&store, key.to_string(), || async move {
                        builds.fetch_add(1, Ordering::SeqCst);
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, ()>((Bytes::from(vec![b'x'; size]), size, Shows::default()))
                    })
                    .await
                    .unwrap()
            })
        };
        let crowd: Vec<_> = (0..16).map(|_| ask("page", 10)).collect();
        for request in crowd {
            assert_eq!(request.await.unwrap().len(), 10);
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1, "one build for the crowd");

        // Too large to keep: built once, and handed to those who waited for it.
        builds.store(0, Ordering::SeqCst);
        let crowd: Vec<_> = (0..4).map(|_| ask("all", MAX_ENTRY_BYTES + 1)).collect();
        for request in crowd {
            assert_eq!(request.await.unwrap().len(), MAX_ENTRY_BYTES + 1);
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        assert_eq!(most.load(Ordering::SeqCst), 1, "never two builds at once");
        // Who comes later builds it again.
        ask("all", MAX_ENTRY_BYTES + 1).await.unwrap();
        assert_eq!(builds.load(Ordering::SeqCst), 2);
        assert!(cache.building.lock().unwrap().is_empty(), "no turn is left");
    }

    #[tokio::test]
    async fn an_answer_not_kept_goes_to_those_who_waited_before_the_write_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = job(&store).await;
        let cache = Arc::new(AnswerCache::<Bytes>::new(&store));
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let (written, learn) = tokio::sync::oneshot::channel::<()>();
        let builder = {
            let (cache, store, a) = (cache.clone(), store.clone(), a.clone());
            tokio::spawn(async move {
                cache
                    .get_or_build(&store, "with a".into(), || async {
                        wait.await.unwrap();
                        // The write lands while the answer is built from older reads.
                        store.append_log(&a, "meanwhile").await.unwrap();
                        written.send(()).unwrap();
                        Ok::<_, ()>((Bytes::from_static(b"old"), 3, showing(&[&a])))
                    })
                    .await
                    .unwrap()
            })
        };
        tokio::task::yield_now().await;
        // Came before the write: waits for the build and is handed its answer.
        let waiter = {
            let (cache, store, a) = (cache.clone(), store.clone(), a.clone());
            tokio::spawn(async move { ask(&cache, &store, "with a", "new", showing(&[&a])).await })
        };
        tokio::task::yield_now().await;
        go.send(()).unwrap();
        learn.await.unwrap();
        // Came after the write: must not get the answer read before it.
        let late = {
            let (cache, store, a) = (cache.clone(), store.clone(), a.clone());
            tokio::spawn(async move { ask(&cache, &store, "with a", "new", showing(&[&a])).await })
        };
        assert_eq!(builder.await.unwrap(), Bytes::from_static(b"old"));
        assert_eq!(waiter.await.unwrap(), (Bytes::from_static(b"old"), false));
        assert_eq!(late.await.unwrap(), (Bytes::from_static(b"new"), true));
    }

    #[tokio::test]
    async fn a_failed_or_abandoned_build_leaves_the_key_free() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cache = Arc::new(AnswerCache::<Bytes>::new(&store));
        let failed = cache
            .get_or_build(&store, "k".into(), || async {
                Err::<(Bytes, usize, Shows), _>("no")
            })
            .await;
        assert_eq!(failed, Err("no"));
        // A request dropped half-way through its build.
        let slow = {
            let (cache, store) = (cache.clone(), store.clone());
            tokio::spawn(async move {
                cache
                    .get_or_build(&store, "k".into(), || async {
                        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                        Ok::<_, ()>((Bytes::new(), 0, Shows::default()))
                    })
                    .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        slow.abort();
        let _ = slow.await;
        assert!(cache.building.lock().unwrap().is_empty());
        let answer = cache
            .get_or_build(&store, "k".into(), || async {
                Ok::<_, ()>((Bytes::from_static(b"ok"), 2, Shows::default()))
            })
            .await;
        assert_eq!(answer.unwrap(), Bytes::from_static(b"ok"));
    }
}
