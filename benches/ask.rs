//! Ask's retrieval, measured: quality (recall@8 and MRR of a planted passage) and latency
//! (one question's retrieval, without the LLM) over a generated archive, and the time to build
//! the passages index for it (the start-up backfill).
//!
//! ```text
//! cargo bench --bench ask                  # release; or, quicker to build: cargo test --release --bench ask
//! ASK_BENCH_MEETINGS=100 cargo bench --bench ask
//! ASK_BENCH_EMBEDDINGS_URL=http://127.0.0.1:8080/v1 ASK_BENCH_EMBEDDINGS_MODEL=nomic-embed-text \
//!     cargo bench --bench ask               # a real embeddings server instead of the fake
//! ```
//!
//! The archive is made deterministically: `ASK_BENCH_MEETINGS` meetings (500) of about 4,000
//! words each (about 2 million words), in speaker turns of 30–130 words of made-up filler,
//! with a start time each. 100 facts are planted in known turns of known meetings, each asked
//! by one question that paraphrases it: 60 share a keyword with their fact (a project's name
//! and the word "budget", where the name also appears in three other meetings), 40 share none
//! (the fact's words and the question's are different words of the same meanings).
//!
//! Embeddings come from a deterministic fake `/embeddings` server on loopback that knows those
//! meanings (as a real model knows synonyms): each meaning is an axis, every other word is
//! hashed onto the remaining axes. Everything is sent to loopback only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::post;
use focusflow::ask::embeddings::Embedder;
use focusflow::ask::index::Indexer;
use focusflow::ask::{Question, Retrieval, VectorCache, retrieve};
use focusflow::config::Config;
use focusflow::jobs::Status;
use focusflow::store::{Changes, NewJob, PassageScope, Store};
use serde_json::{Value, json};

const FACTS: usize = 100;
const KEYWORD_FACTS: usize = 60;
const DIMS: usize = 256;
/// Axes kept for meanings; filler words hash onto the rest.
const MEANING_AXES: usize = 128;
const RECALL_AT: usize = 8;

/// A small deterministic generator (xorshift64*).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ren", "sa", "tor", "vi", "del", "no", "pra", "qui", "zu", "fen", "gar",
    "hol", "jes", "mur", "pel", "sol", "tan", "ur", "ves", "wim", "yor",
];

/// A made-up word from a number (distinct numbers, distinct words).
fn word(mut n: usize, prefix: &str) -> String {
    let mut out = prefix.to_string();
    loop {
        out.push_str(SYLLABLES[n % SYLLABLES.len()]);
        n /= SYLLABLES.len();
        if n == 0 {
            break;
        }
    }
    out
}

/// The filler vocabulary: made-up words and the usual small words of speech.
fn vocabulary() -> Vec<String> {
    let mut words: Vec<String> = (0..3000).map(|n| word(n + 600, "")).collect();
    for small in [
        "the", "and", "we", "to", "of", "a", "that", "is", "it", "so", "yes", "think", "maybe",
        "next", "week", "about", "with", "for", "on", "they",
    ] {
        for _ in 0..40 {
            words.push(small.to_string());
        }
    }
    words
}

/// Meaning `m`'s two words: one the meeting says, one the question says.
fn meaning_words(m: usize) -> (String, String) {
    (word(m, "say"), word(m, "ask"))
}

struct Fact {
    meeting: usize,
    turn: usize,
    text: String,
    question: String,
    keyword: bool,
}

fn facts(meetings: usize) -> Vec<Fact> {
    (0..FACTS)
        .map(|i| {
            let meeting = (i * 7919) % meetings;
            let turn = 3 + (i * 13) % 40;
            if i < KEYWORD_FACTS {
                let name = word(i, "proj");
                Fact {
                    meeting,
                    turn,
                    text: format!(
                        "About {name} we agreed the budget rises to {} thousand and Dana owns it.",
                        10 + i
                    ),
                    question: format!("What is the budget of {name} now?"),
                    keyword: true,
                }
            } else {
                let m = (i - KEYWORD_FACTS) * 3;
                let said: Vec<String> = (m..m + 3).map(|m| meaning_words(m).0).collect();
                let asked: Vec<String> = (m..m + 3).map(|m| meaning_words(m).1).collect();
                Fact {
                    meeting,
                    turn,
                    text: format!(
                        "Honestly the {} of the {} will {} soon, I am told.",
                        said[0], said[1], said[2]
                    ),
                    question: format!("When does the {} {} {}?", asked[0], asked[1], asked[2]),
                    keyword: false,
                }
            }
        })
        .collect()
}

/// Every meaning word, with its meaning.
static MEANINGS: std::sync::LazyLock<std::collections::HashMap<String, usize>> =
    std::sync::LazyLock::new(|| {
        (0..FACTS * 3)
            .flat_map(|m| {
                let (said, asked) = meaning_words(m);
                [(said, m), (asked, m)]
            })
            .collect()
    });

/// The fake model's vector: a meaning word on its meaning's axis, any other word hashed.
fn embedding(text: &str) -> Vec<f32> {
    let mut vector = vec![0.0f32; DIMS];
    for token in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
    {
        let token = token.to_lowercase();
        match MEANINGS.get(&token) {
            Some(m) => vector[m % MEANING_AXES] += 3.0,
            None => {
                let hash = token.bytes().fold(1469598103934665603u64, |h, b| {
                    (h ^ b as u64).wrapping_mul(1099511628211)
                });
                vector[MEANING_AXES + (hash as usize) % (DIMS - MEANING_AXES)] += 1.0;
            }
        }
    }
    vector
}

async fn fake_embeddings(Json(body): Json<Value>) -> Json<Value> {
    let inputs: Vec<String> = match &body["input"] {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().unwrap_or("").to_string())
            .collect(),
        _ => Vec::new(),
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| json!({"index": index, "embedding": embedding(text)}))
        .collect();
    Json(json!({ "data": data }))
}

/// A meeting's transcript (`[Speaker X]: …` turns) and its utterances, with the planted facts.
fn meeting(
    random: &mut Random,
    vocabulary: &[String],
    planted: &[&Fact],
) -> (String, Value, usize) {
    let mut blocks = Vec::new();
    let mut utterances = Vec::new();
    let mut words = 0;
    let mut start_ms = 0u64;
    let mut turn = 0;
    while words < 4000 {
        let speaker = ["A", "B", "C", "D"][turn % 4];
        let text = match planted.iter().find(|fact| fact.turn == turn) {
            Some(fact) => fact.text.clone(),
            None => {
                let length = 30 + random.below(100);
                (0..length)
                    .map(|_| vocabulary[random.below(vocabulary.len())].as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        };
        words += text.split_whitespace().count();
        blocks.push(format!("[Speaker {speaker}]: {text}"));
        utterances.push(
            json!({"speaker": speaker, "text": text, "start": start_ms, "end": start_ms + 1000}),
        );
        start_ms += 400 * text.split_whitespace().count() as u64;
        turn += 1;
    }
    (
        blocks.join("\n\n"),
        json!({ "utterances": utterances }),
        words,
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

struct Quality {
    recall_keyword: f64,
    recall_all: f64,
    mrr_keyword: f64,
    mrr_all: f64,
    p50: Duration,
    p95: Duration,
}

async fn measure(
    retrieval: Retrieval<'_>,
    facts: &[Fact],
    ids: &[String],
    texts: &[String],
) -> Quality {
    let mut times = Vec::new();
    let (mut found_kw, mut found_all, mut rr_kw, mut rr_all) = (0.0, 0.0, 0.0, 0.0);
    for (fact, text) in facts.iter().zip(texts) {
        let question = Question {
            text: fact.question.clone(),
            scope: PassageScope::default(),
        };
        let started = Instant::now();
        let passages = retrieve(retrieval, &question, 6000)
            .await
            .expect("retrieval");
        times.push(started.elapsed());
        let rank = passages
            .iter()
            .take(RECALL_AT)
            .position(|p| p.job_id.as_str() == ids[fact.meeting] && &p.text == text);
        if let Some(rank) = rank {
            let rr = 1.0 / (rank as f64 + 1.0);
            found_all += 1.0;
            rr_all += rr;
            if fact.keyword {
                found_kw += 1.0;
                rr_kw += rr;
            }
        }
    }
    times.sort();
    let keyword = facts.iter().filter(|fact| fact.keyword).count() as f64;
    Quality {
        recall_keyword: found_kw / keyword,
        recall_all: found_all / facts.len() as f64,
        mrr_keyword: rr_kw / keyword,
        mrr_all: rr_all / facts.len() as f64,
        p50: percentile(&times, 0.5),
        p95: percentile(&times, 0.95),
    }
}

fn print(label: &str, quality: &Quality) {
    println!(
        "{label:<22} recall@{RECALL_AT} keyword {:.2}  all {:.2}   MRR keyword {:.3}  all {:.3}   retrieval p50 {:.1} ms  p95 {:.1} ms",
        quality.recall_keyword,
        quality.recall_all,
        quality.mrr_keyword,
        quality.mrr_all,
        quality.p50.as_secs_f64() * 1000.0,
        quality.p95.as_secs_f64() * 1000.0,
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run());
}

async fn run() {
    let meetings: usize = std::env::var("ASK_BENCH_MEETINGS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = Store::open(dir.path()).expect("the store opens");
    let facts = facts(meetings);
    let vocabulary = vocabulary();
    let mut random = Random(0x5eed_1234_abcd_ef01);

    // The archive, as completed jobs with their transcripts (not yet indexed).
    let started = Instant::now();
    let mut ids = Vec::with_capacity(meetings);
    let mut total_words = 0;
    for n in 0..meetings {
        let mut planted: Vec<&Fact> = facts.iter().filter(|fact| fact.meeting == n).collect();
        // Each project's name is also said, in passing, in three other meetings.
        let mentions: Vec<Fact> = facts
            .iter()
            .enumerate()
            .filter(|(i, fact)| {
                fact.keyword
                    && (1..=3)
                        .any(|k| (fact.meeting + k * 101) % meetings == n && *i < KEYWORD_FACTS)
            })
            .map(|(i, _)| Fact {
                meeting: n,
                turn: 45 + i % 5,
                text: format!(
                    "We should talk about {} again later, not today.",
                    word(i, "proj")
                ),
                question: String::new(),
                keyword: true,
            })
            .collect();
        for mention in &mentions {
            if !planted.iter().any(|fact| fact.turn == mention.turn) {
                planted.push(mention);
            }
        }
        let (transcript, utterances, words) = meeting(&mut random, &vocabulary, &planted);
        total_words += words;
        let (job, _) = store
            .create_job(NewJob {
                url: format!("transcript:meeting-{n}.txt"),
                meeting_date: Some("2025-01-01T00:00:00Z".to_string()),
                ..Default::default()
            })
            .await
            .expect("a job");
        let artifacts = store.artifacts();
        let transcript_path = artifacts.transcript_relative(&job.id);
        artifacts
            .write_text(&transcript_path, transcript)
            .await
            .expect("the transcript is written");
        artifacts
            .write_text(
                &artifacts.utterances_relative(&job.id),
                utterances.to_string(),
            )
            .await
            .expect("the utterances are written");
        store
            .update(
                &job.id,
                Changes::new()
                    .status(Status::Completed)
                    .title(Some(format!("Meeting {n}")))
                    .transcript_path(Some(transcript_path)),
            )
            .await
            .expect("the job completes");
        ids.push(job.id.to_string());
    }
    println!(
        "archive: {meetings} meetings, {total_words} words, {FACTS} planted facts ({KEYWORD_FACTS} asked with a shared keyword), made in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The start-up backfill builds every job's passages.
    let vectors = Arc::new(VectorCache::default());
    let indexer = Indexer {
        store: store.clone(),
        embedder: None,
        vectors: vectors.clone(),
    };
    let started = Instant::now();
    let indexed = indexer.backfill().await;
    println!(
        "backfill: {indexed} meetings indexed in {:.2} s",
        started.elapsed().as_secs_f64()
    );

    let texts: Vec<String> = facts.iter().map(|fact| fact.text.clone()).collect();
    let words_only = Retrieval {
        store: &store,
        embedder: None,
        vectors: &vectors,
    };
    print(
        "full text (BM25)",
        &measure(words_only, &facts, &ids, &texts).await,
    );

    // Embeddings: the fake server on loopback, or a real one.
    let (url, model) = match (
        std::env::var("ASK_BENCH_EMBEDDINGS_URL"),
        std::env::var("ASK_BENCH_EMBEDDINGS_MODEL"),
    ) {
        (Ok(url), Ok(model)) => (url, model),
        _ => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a loopback port");
            let address = listener.local_addr().expect("its address");
            tokio::spawn(async move {
                let router = axum::Router::new().route("/v1/embeddings", post(fake_embeddings));
                // Without TCP_NODELAY every answer waits for the client's delayed ACK (40 ms).
                let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
                    let _ = stream.set_nodelay(true);
                });
                let _ = axum::serve(listener, router).await;
            });
            (format!("http://{address}/v1"), "fake-meanings".to_string())
        }
    };
    let mut config = Config::for_data_dir(dir.path());
    config.embeddings_model = Some(model);
    config.embeddings_base_url = Some(url);
    let embedder = Embedder::from_config(&config, reqwest::Client::new()).expect("an embedder");
    let started = Instant::now();
    let embedded = focusflow::ask::index::embed_missing(&store, &embedder)
        .await
        .expect("the passages are embedded");
    println!(
        "embeddings: {embedded} passages embedded in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    vectors.invalidate();
    let fused = Retrieval {
        store: &store,
        embedder: Some(&embedder),
        vectors: &vectors,
    };
    // The first question loads the vectors into memory; measured apart from the rest.
    let started = Instant::now();
    let _ = retrieve(
        fused,
        &Question {
            text: "warm up".into(),
            scope: PassageScope::default(),
        },
        6000,
    )
    .await;
    println!(
        "vectors loaded into memory in {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    print(
        "fused (BM25 + vectors)",
        &measure(fused, &facts, &ids, &texts).await,
    );
}
