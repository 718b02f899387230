//! Answers that depend only on the database, kept while the database stays as it was.
//!
//! A listing of jobs is the most requested answer (browsers poll it while jobs run, API clients
//! page through it) and the most expensive to build: a page of the API is some 100 KB of JSON
//! with every job's summary and log, the list page a hundred cards of HTML. Each entry is tagged with the store's
//! [generation](crate::store::Store::generation) read *before* the store was read, and is
//! served only while the generation is unchanged: any write to the store makes every entry
//! stale at once. No time-based expiry is needed, and no answer can be older than the store.
//!
//! Requests that miss the same key at the same time build it one after another, not all at
//! once: the first builds and keeps it, the others then find it. After a write, a crowd of
//! pollers therefore costs one build instead of one each (and for answers too large to keep,
//! the memory of one build at a time instead of one per request).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// What all entries together may hold. A page of 50 jobs is about 110 KB; the all-jobs answer
/// of a 1,000-job archive about 2 MB.
const BUDGET_BYTES: usize = 8 * 1024 * 1024;
/// Larger answers (the all-jobs form of a large archive) are built every time.
const MAX_ENTRY_BYTES: usize = 4 * 1024 * 1024;
/// A bound on the number of keys, whatever their size (many small distinct queries).
const MAX_ENTRIES: usize = 256;

/// Answers of type `V` (cheap to clone: `Bytes`, an `Arc`), by a key naming the question.
#[derive(Debug)]
pub struct AnswerCache<V> {
    inner: Mutex<Entries<V>>,
    /// A turn per key being built: who holds it builds, the others wait for it.
    building: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Debug)]
struct Entries<V> {
    generation: u64,
    bytes: usize,
    answers: HashMap<String, (V, usize)>,
}

impl<V> Default for AnswerCache<V> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Entries {
                generation: 0,
                bytes: 0,
                answers: HashMap::new(),
            }),
            building: Mutex::default(),
        }
    }
}

/// Gives a key's turn back, and forgets it when nobody else waits for it (also when the
/// request that held it is dropped half-way).
struct Turn<'a> {
    building: &'a Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    key: &'a str,
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut building = self.building.lock().unwrap_or_else(|e| e.into_inner());
        // Only the map and this turn hold it: nobody is waiting.
        if Arc::strong_count(&self.gate) == 2 {
            building.remove(self.key);
        }
    }
}

impl<V: Clone> AnswerCache<V> {
    /// The answer for `key`: kept, or built by `build` (which returns it and about how many
    /// bytes it holds) from reads that begin after `generation` is read.
    pub async fn get_or_build<E, F, Fut>(
        &self,
        generation: impl Fn() -> u64,
        key: String,
        build: F,
    ) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(V, usize), E>>,
    {
        if let Some(answer) = self.get(generation(), &key) {
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
        let _held = turn.gate.lock().await;
        // Whoever held the turn before may have built it meanwhile.
        let at = generation();
        if let Some(answer) = self.get(at, &key) {
            return Ok(answer);
        }
        let (answer, size) = build().await?;
        self.put(at, key.clone(), answer.clone(), size);
        Ok(answer)
    }

    /// The answer for `key` built at `generation`, if there is one.
    fn get(&self, generation: u64, key: &str) -> Option<V> {
        let entries = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if entries.generation != generation {
            return None;
        }
        entries.answers.get(key).map(|(answer, _)| answer.clone())
    }

    /// Keeps an answer of about `size` bytes built from reads that began at `generation`.
    fn put(&self, generation: u64, key: String, answer: V, size: usize) {
        // The key counts too: it holds the query as given, which a client chooses.
        let size = size + key.len();
        if size > MAX_ENTRY_BYTES {
            return;
        }
        let mut entries = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if generation < entries.generation {
            // Built before a write that newer entries already reflect.
            return;
        }
        if generation > entries.generation
            || entries.bytes + size > BUDGET_BYTES
            || entries.answers.len() >= MAX_ENTRIES
        {
            // Everything kept so far is stale, or there is no room: start again. Under a
            // budget this small, clearing beats tracking which entry was used last.
            entries.answers.clear();
            entries.bytes = 0;
            entries.generation = generation;
        }
        entries.bytes += size;
        if let Some((_, replaced)) = entries.answers.insert(key, (answer, size)) {
            entries.bytes -= replaced;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn put(cache: &AnswerCache<Bytes>, generation: u64, key: &str, answer: Bytes) {
        let size = answer.len();
        cache.put(generation, key.into(), answer, size);
    }

    #[test]
    fn an_answer_is_served_only_at_the_generation_it_was_built_at() {
        let cache = AnswerCache::<Bytes>::default();
        put(&cache, 3, "limit=5", Bytes::from_static(b"page"));
        assert_eq!(cache.get(3, "limit=5").as_deref(), Some(&b"page"[..]));
        assert_eq!(cache.get(3, "limit=6"), None);
        assert_eq!(cache.get(4, "limit=5"), None, "a write happened since");
        // A newer answer replaces everything older.
        put(&cache, 4, "limit=6", Bytes::from_static(b"new"));
        assert_eq!(cache.get(4, "limit=5"), None);
        assert_eq!(cache.get(4, "limit=6").as_deref(), Some(&b"new"[..]));
        // An answer that began before the newest write is not kept.
        put(&cache, 3, "limit=7", Bytes::from_static(b"old"));
        assert_eq!(cache.get(3, "limit=7"), None);
        assert_eq!(cache.get(4, "limit=7"), None);
    }

    #[test]
    fn the_cache_stays_within_its_budget() {
        let cache = AnswerCache::<Bytes>::default();
        let big = Bytes::from(vec![b'x'; MAX_ENTRY_BYTES + 1]);
        put(&cache, 1, "huge", big);
        assert_eq!(cache.get(1, "huge"), None, "too large to keep");

        let page = Bytes::from(vec![b'x'; 1024 * 1024]);
        for n in 0..20 {
            put(&cache, 1, &format!("page{n}"), page.clone());
            let held = cache.inner.lock().unwrap().bytes;
            assert!(held <= BUDGET_BYTES, "{held} bytes after {n} pages");
        }
        assert!(cache.get(1, "page19").is_some(), "the newest is kept");
        for n in 0..(MAX_ENTRIES + 10) {
            put(&cache, 1, &format!("small{n}"), Bytes::from_static(b"{}"));
        }
        assert!(cache.inner.lock().unwrap().answers.len() <= MAX_ENTRIES);

        // Replacing a key does not count its bytes twice; keys count as well.
        let cache = AnswerCache::<Bytes>::default();
        put(&cache, 1, "a", Bytes::from_static(b"1234"));
        put(&cache, 1, "a", Bytes::from_static(b"12"));
        assert_eq!(cache.inner.lock().unwrap().bytes, 3);
        let long_key = "q".repeat(MAX_ENTRY_BYTES);
        put(&cache, 1, &long_key, Bytes::from_static(b"{}"));
        assert_eq!(cache.get(1, &long_key), None, "a key too long to keep");
    }

    #[tokio::test]
    async fn a_crowd_that_misses_together_builds_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let cache = Arc::new(AnswerCache::<Bytes>::default());
        let builds = Arc::new(AtomicUsize::new(0));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let ask = |key: &'static str, size: usize| {
            let (cache, builds, running, most) =
                (cache.clone(), builds.clone(), running.clone(), most.clone());
            tokio::spawn(async move {
                cache
                    .get_or_build(
                        || 7,
                        key.to_string(),
                        || async move {
                            builds.fetch_add(1, Ordering::SeqCst);
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                            running.fetch_sub(1, Ordering::SeqCst);
                            Ok::<_, ()>((Bytes::from(vec![b'x'; size]), size))
                        },
                    )
                    .await
                    .unwrap()
            })
        };
        let crowd: Vec<_> = (0..16).map(|_| ask("page", 10)).collect();
        for request in crowd {
            assert_eq!(request.await.unwrap().len(), 10);
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1, "one build for the crowd");

        // Too large to keep: built for each, but one at a time.
        builds.store(0, Ordering::SeqCst);
        let crowd: Vec<_> = (0..4).map(|_| ask("all", MAX_ENTRY_BYTES + 1)).collect();
        for request in crowd {
            request.await.unwrap();
        }
        assert_eq!(builds.load(Ordering::SeqCst), 4);
        assert_eq!(most.load(Ordering::SeqCst), 1, "never two builds at once");
        assert!(cache.building.lock().unwrap().is_empty(), "no turn is left");
    }

    #[tokio::test]
    async fn a_failed_or_abandoned_build_leaves_the_key_free() {
        let cache = Arc::new(AnswerCache::<Bytes>::default());
        let failed = cache
            .get_or_build(
                || 1,
                "k".into(),
                || async { Err::<(Bytes, usize), _>("no") },
            )
            .await;
        assert_eq!(failed, Err("no"));
        // A request dropped half-way through its build.
        let slow = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_build(
                        || 1,
                        "k".into(),
                        || async {
                            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                            Ok::<_, ()>((Bytes::new(), 0))
                        },
                    )
                    .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        slow.abort();
        let _ = slow.await;
        assert!(cache.building.lock().unwrap().is_empty());
        let answer = cache
            .get_or_build(
                || 1,
                "k".into(),
                || async { Ok::<_, ()>((Bytes::from_static(b"ok"), 2)) },
            )
            .await;
        assert_eq!(answer.unwrap(), Bytes::from_static(b"ok"));
    }
}
