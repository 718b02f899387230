//! Answers that depend only on the database, kept while the database stays as it was.
//!
//! A listing of jobs is the most requested answer (browsers poll it while jobs run, API clients
//! page through it) and the most expensive to build: a page of the API is some 100 KB of JSON
//! with every job's summary and log, the list page a hundred cards of HTML. Each entry is tagged with the store's
//! [generation](crate::store::Store::generation) read *before* the store was read, and is
//! served only while the generation is unchanged: any write to the store makes every entry
//! stale at once. No time-based expiry is needed, and no answer can be older than the store.

use std::collections::HashMap;
use std::sync::Mutex;

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
        }
    }
}

impl<V: Clone> AnswerCache<V> {
    /// The answer for `key` built at `generation`, if there is one.
    pub fn get(&self, generation: u64, key: &str) -> Option<V> {
        let entries = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if entries.generation != generation {
            return None;
        }
        entries.answers.get(key).map(|(answer, _)| answer.clone())
    }

    /// Keeps an answer of about `size` bytes built from reads that began at `generation`.
    pub fn put(&self, generation: u64, key: String, answer: V, size: usize) {
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

        // Replacing a key does not count its bytes twice.
        let cache = AnswerCache::<Bytes>::default();
        put(&cache, 1, "a", Bytes::from_static(b"1234"));
        put(&cache, 1, "a", Bytes::from_static(b"12"));
        assert_eq!(cache.inner.lock().unwrap().bytes, 2);
    }
}
