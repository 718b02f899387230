//! Ask: a question answered from the meetings, with citations of the moments it rests on.
//!
//! Retrieval ranks the passages (whole speaker turns, see [`index`]) by the full-text index
//! (BM25 on SQLite, `ts_rank` on PostgreSQL) and, with `EMBEDDINGS_MODEL`, by meaning too (a
//! brute-force cosine over the vectors stored in the database); the two rankings are fused by
//! reciprocal rank. The best passages that fit `ASK_MAX_INPUT_TOKENS` go to the LLM, numbered,
//! in the `prompts/ask.md` template; the server maps the numbers the answer cites back to
//! jobs, speakers and times, and drops any number that names no passage. With nothing found,
//! the answer says so without asking the model.

pub mod embeddings;
pub mod index;

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::Config;
use crate::jobs::JobId;
use crate::net::retry::ProviderError;
use crate::pipeline::llm::Llm;
use crate::store::passages::question_words;
use crate::store::{Passage, PassageScope, Store, StoreError};
use embeddings::{Embedder, cosine};

/// How many passages each ranking contributes before fusion.
const CANDIDATES: usize = 40;
/// Reciprocal rank fusion's constant (the usual 60): a passage ranked r adds 1 / (60 + r).
const RRF_K: f64 = 60.0;
/// At most this many passages in a prompt, however small they are.
const MAX_PASSAGES: usize = 24;
/// Characters per token, as the summary's splitting estimates them.
const CHARS_PER_TOKEN: usize = 4;
/// The answer given, without asking the model, when no passage matches.
pub const NOTHING_FOUND: &str = "Nothing in your meetings matches this question, so there is no answer to give. Try other words, or a wider choice of meetings.";
/// The template used when `prompts/ask.md` cannot be read.
const DEFAULT_PROMPT: &str = include_str!("../../prompts/ask.md");

/// One moment an answer rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Citation {
    /// The passage's number in the answer's text (`[n]`).
    pub n: usize,
    /// The job (meeting) id.
    pub job: String,
    pub title: Option<String>,
    pub meeting_date: Option<String>,
    /// The speaker, with the name people gave when they gave one.
    pub speaker: Option<String>,
    /// When the turn starts, in seconds from the recording's start (null when unknown).
    pub start: Option<f64>,
    /// The passage quoted: the speaker's whole turn.
    pub text: String,
}

/// A question's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Answer {
    /// The kept question's id.
    pub id: String,
    pub question: String,
    /// The answer, citing passages as `[n]`; numbers that named no passage are taken out.
    pub answer: String,
    pub citations: Vec<Citation>,
    /// The meeting the question was about, when it was about one.
    pub job: Option<String>,
    /// When it was answered (ms since the epoch).
    pub created_at: i64,
}

/// What was asked, checked.
#[derive(Debug, Clone)]
pub struct Question {
    pub text: String,
    pub scope: PassageScope,
}

/// Why a question got no answer.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The LLM (or the embeddings server) failed, or said something that is not an answer.
    #[error("{0}")]
    Provider(String),
    /// No LLM is configured.
    #[error("Ask needs an LLM: set OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible server)")]
    NoLlm,
}

/// Every stored vector of the archive, in memory and normalised, for questions about the whole
/// archive: reading them from the database for each question would cost more than the search.
/// This process drops it whenever it changes passages (see [`index::Indexer`]); changes made by
/// another process (replicas on one PostgreSQL) are seen within [`VECTORS_FRESH`]. A passage
/// deleted meanwhile is never cited: candidates are read back from the database.
#[derive(Default)]
pub struct VectorCache {
    loaded: std::sync::Mutex<Option<Arc<Vectors>>>,
}

/// How long loaded vectors are trusted when this process did not change them.
const VECTORS_FRESH: std::time::Duration = std::time::Duration::from_secs(30);

struct Vectors {
    at: std::time::Instant,
    ids: Vec<i64>,
    dims: usize,
    /// `ids.len() * dims` values, each vector of length 1.
    values: Vec<f32>,
}

impl VectorCache {
    pub fn invalidate(&self) {
        *self.loaded.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn get(&self, store: &Store) -> Result<Arc<Vectors>, StoreError> {
        if let Some(loaded) = self
            .loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|loaded| loaded.at.elapsed() < VECTORS_FRESH)
        {
            return Ok(loaded.clone());
        }
        let stored = store.passage_vectors(&PassageScope::default()).await?;
        // One model's vectors: those of another length (a model changed) are left out.
        let dims = stored.first().map(|(_, vector)| vector.len()).unwrap_or(0);
        let mut ids = Vec::with_capacity(stored.len());
        let mut values = Vec::with_capacity(stored.len() * dims);
        for (id, vector) in stored {
            if vector.len() != dims {
                continue;
            }
            let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm == 0.0 {
                continue;
            }
            ids.push(id);
            values.extend(vector.iter().map(|v| v / norm));
        }
        let loaded = Arc::new(Vectors {
            at: std::time::Instant::now(),
            ids,
            dims,
            values,
        });
        *self.loaded.lock().unwrap_or_else(|e| e.into_inner()) = Some(loaded.clone());
        Ok(loaded)
    }
}

impl Vectors {
    /// The `limit` passages most like `asked`, best first.
    fn nearest(&self, asked: &[f32], limit: usize) -> Vec<i64> {
        if asked.len() != self.dims || self.dims == 0 {
            return Vec::new();
        }
        let mut scored: Vec<(f32, i64)> = self
            .values
            .chunks_exact(self.dims)
            .zip(&self.ids)
            .map(|(vector, id)| (vector.iter().zip(asked).map(|(a, b)| a * b).sum(), *id))
            .collect();
        top(&mut scored, limit)
    }
}

/// The best `limit` of scored ids, best first (ties: the lower id).
fn top(scored: &mut Vec<(f32, i64)>, limit: usize) -> Vec<i64> {
    let limit = limit.min(scored.len());
    if limit == 0 {
        return Vec::new();
    }
    let by_score = |a: &(f32, i64), b: &(f32, i64)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    scored.select_nth_unstable_by(limit - 1, by_score);
    scored.truncate(limit);
    scored.sort_by(by_score);
    scored.iter().map(|(_, id)| *id).collect()
}

/// Where retrieval finds things: the store, the embeddings server (if any) and the vectors
/// kept in memory.
#[derive(Clone, Copy)]
pub struct Retrieval<'a> {
    pub store: &'a Store,
    pub embedder: Option<&'a Embedder>,
    pub vectors: &'a VectorCache,
}

/// The passages for a question, best first, within the budget.
pub async fn retrieve(
    retrieval: Retrieval<'_>,
    question: &Question,
    budget_tokens: usize,
) -> Result<Vec<Passage>, AskError> {
    let store = retrieval.store;
    let ranked = rank(retrieval, question).await?;
    let candidates = store.passages(&ranked).await?;
    Ok(within_budget(candidates, budget_tokens))
}

/// Passage ids, best first: the full-text ranking, fused with the ranking by meaning when
/// there are embeddings.
pub async fn rank(retrieval: Retrieval<'_>, question: &Question) -> Result<Vec<i64>, AskError> {
    let Retrieval {
        store,
        embedder,
        vectors,
    } = retrieval;
    let words = question_words(&question.text);
    let by_words = store
        .search_passages(&words, &question.scope, CANDIDATES)
        .await?;
    let Some(embedder) = embedder else {
        return Ok(by_words);
    };
    let by_meaning = match by_meaning(store, embedder, vectors, question).await {
        Ok(ranked) => ranked,
        // Ranking by words still answers; the operator sees why meaning did not help.
        Err(AskError::Provider(error)) => {
            tracing::warn!(%error, "Ask ranked by words only: the embeddings server failed");
            Vec::new()
        }
        Err(error) => return Err(error),
    };
    Ok(fuse(&[by_words, by_meaning]))
}

/// The passages closest in meaning to the question, best first (brute force over the scope's
/// stored vectors).
async fn by_meaning(
    store: &Store,
    embedder: &Embedder,
    cache: &VectorCache,
    question: &Question,
) -> Result<Vec<i64>, AskError> {
    let whole_archive = question.scope.jobs.is_empty()
        && question.scope.from_ms.is_none()
        && question.scope.to_ms.is_none();
    // The whole archive from memory; a part of it (small, as a rule) from the database.
    let (cached, scoped) = if whole_archive {
        (Some(cache.get(store).await?), Vec::new())
    } else {
        (None, store.passage_vectors(&question.scope).await?)
    };
    if cached.as_ref().is_some_and(|cached| cached.ids.is_empty())
        || (cached.is_none() && scoped.is_empty())
    {
        return Ok(Vec::new());
    }
    let asked = embedder
        .embed(std::slice::from_ref(&question.text))
        .await
        .map_err(|error| AskError::Provider(error.to_string()))?;
    let Some(asked) = asked.first() else {
        return Ok(Vec::new());
    };
    Ok(match cached {
        Some(cached) => {
            let norm = asked.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm == 0.0 {
                return Ok(Vec::new());
            }
            let asked: Vec<f32> = asked.iter().map(|v| v / norm).collect();
            cached.nearest(&asked, CANDIDATES)
        }
        None => nearest(asked, &scoped, CANDIDATES),
    })
}

/// The `limit` ids whose vectors are most like `asked`, best first.
pub fn nearest(asked: &[f32], vectors: &[(i64, Vec<f32>)], limit: usize) -> Vec<i64> {
    let mut scored: Vec<(f32, i64)> = vectors
        .iter()
        .map(|(id, vector)| (cosine(asked, vector), *id))
        .collect();
    top(&mut scored, limit)
}

/// Reciprocal rank fusion: each ranking gives a passage 1 / (60 + its rank); the sum orders
/// them (ties: the first ranking's order).
pub fn fuse(rankings: &[Vec<i64>]) -> Vec<i64> {
    let mut scores: HashMap<i64, (f64, usize)> = HashMap::new();
    let mut order = 0;
    for ranking in rankings {
        for (rank, id) in ranking.iter().enumerate() {
            let entry = scores.entry(*id).or_insert_with(|| {
                order += 1;
                (0.0, order)
            });
            entry.0 += 1.0 / (RRF_K + rank as f64 + 1.0);
        }
    }
    let mut fused: Vec<(i64, (f64, usize))> = scores.into_iter().collect();
    fused.sort_by(|a, b| b.1.0.total_cmp(&a.1.0).then(a.1.1.cmp(&b.1.1)));
    fused.into_iter().map(|(id, _)| id).collect()
}

/// The best passages whose text fits `budget_tokens` (a passage too long for what is left is
/// skipped; a smaller one after it may still fit).
fn within_budget(passages: Vec<Passage>, budget_tokens: usize) -> Vec<Passage> {
    let mut left = budget_tokens.saturating_mul(CHARS_PER_TOKEN);
    let mut chosen = Vec::new();
    for passage in passages {
        // The heading line costs about as much as 80 characters of text.
        let cost = passage.text.len() + 80;
        if cost > left {
            continue;
        }
        left -= cost;
        chosen.push(passage);
        if chosen.len() == MAX_PASSAGES {
            break;
        }
    }
    chosen
}

/// `1:02:03` or `2:03`.
fn clock(ms: i64) -> String {
    let seconds = ms.max(0) / 1000;
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}

/// The numbered passages as the prompt shows them.
pub fn numbered_passages(passages: &[Passage]) -> String {
    let mut out = String::new();
    for (index, passage) in passages.iter().enumerate() {
        let mut heading = format!(
            "[{}] Meeting: {}",
            index + 1,
            passage.title.as_deref().unwrap_or("Untitled meeting")
        );
        if let Some(date) = &passage.meeting_date {
            heading.push_str(&format!(" ({})", date.get(..10).unwrap_or(date)));
        }
        heading.push_str(&format!(
            " — {}",
            passage.speaker.as_deref().unwrap_or("Unknown speaker")
        ));
        if let Some(start) = passage.start_ms {
            heading.push_str(&format!(" at {}", clock(start)));
        }
        out.push_str(&heading);
        out.push('\n');
        out.push_str(passage.text.trim());
        out.push_str("\n\n");
    }
    out
}

/// The prompt: the template with `{{question}}` and `{{passages}}` filled in (either missing
/// is added at the end, so an edited template cannot lose them).
pub fn render_prompt(template: &str, question: &str, passages: &[Passage]) -> String {
    let numbered = numbered_passages(passages);
    let mut prompt = template.to_string();
    if prompt.contains("{{question}}") {
        prompt = prompt.replace("{{question}}", question);
    } else {
        prompt.push_str(&format!("\n\nQuestion: {question}"));
    }
    if prompt.contains("{{passages}}") {
        prompt = prompt.replace("{{passages}}", &numbered);
    } else {
        prompt.push_str(&format!("\n\nPassages:\n\n{numbered}"));
    }
    prompt
}

/// Reads the Ask template (falling back to the built-in one, with a warning).
pub async fn template(config: &Config) -> String {
    match tokio::fs::read_to_string(&config.ask_prompt_path).await {
        Ok(text) if !text.trim().is_empty() => text,
        Ok(_) | Err(_) => {
            tracing::warn!(path = %config.ask_prompt_path.display(), "the Ask prompt template cannot be read; using the built-in one");
            DEFAULT_PROMPT.to_string()
        }
    }
}

/// The numbers cited in `answer` (`[3]`, `[1][4]`, `[2, 5]`), in order of first citation,
/// each once; and the answer with every citation of a number in 1..=count kept and every other
/// taken out.
pub fn cited_numbers(answer: &str, count: usize) -> (Vec<usize>, String) {
    let mut cited: Vec<usize> = Vec::new();
    let mut cleaned = String::with_capacity(answer.len());
    let mut rest = answer;
    while let Some(open) = rest.find('[') {
        cleaned.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else {
            cleaned.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let inside = &after[..close];
        let numbers: Option<Vec<usize>> = inside
            .split(',')
            .map(|part| part.trim().parse::<usize>().ok())
            .collect();
        match numbers {
            Some(numbers) if !inside.trim().is_empty() => {
                let valid: Vec<usize> = numbers
                    .into_iter()
                    .filter(|n| (1..=count).contains(n))
                    .collect();
                for n in &valid {
                    if !cited.contains(n) {
                        cited.push(*n);
                    }
                }
                if !valid.is_empty() {
                    let kept: Vec<String> = valid.iter().map(ToString::to_string).collect();
                    cleaned.push('[');
                    cleaned.push_str(&kept.join(", "));
                    cleaned.push(']');
                } else if cleaned.ends_with(' ') {
                    // "claim [9]." reads "claim." once [9] is gone.
                    cleaned.pop();
                }
            }
            // Not a citation: brackets in the answer's words.
            _ => {
                cleaned.push('[');
                cleaned.push_str(inside);
                cleaned.push(']');
            }
        }
        rest = &after[close + 1..];
    }
    cleaned.push_str(rest);
    (cited, cleaned)
}

/// The citations of an answer: the passages its valid numbers name.
pub fn citations(answer: &str, passages: &[Passage]) -> (Vec<Citation>, String) {
    let (cited, cleaned) = cited_numbers(answer, passages.len());
    let citations = cited
        .into_iter()
        .filter_map(|n| {
            let passage = passages.get(n - 1)?;
            Some(Citation {
                n,
                job: passage.job_id.to_string(),
                title: passage.title.clone(),
                meeting_date: passage.meeting_date.clone(),
                speaker: passage.speaker.clone(),
                start: passage.start_ms.map(|ms| ms as f64 / 1000.0),
                text: passage.text.clone(),
            })
        })
        .collect();
    (citations, cleaned)
}

/// Everything an answer needs from the server.
pub struct Asker<'a> {
    pub store: &'a Store,
    pub config: &'a Config,
    pub client: reqwest::Client,
    pub vectors: &'a VectorCache,
}

impl Asker<'_> {
    /// Answers the question; `progress` sees the model's text as it grows (not for the
    /// "nothing found" answer, which comes whole). The answer is kept.
    pub async fn answer(
        &self,
        question: &Question,
        progress: Option<&watch::Sender<String>>,
    ) -> Result<Answer, AskError> {
        let embedder = Embedder::from_config(self.config, self.client.clone());
        let retrieval = Retrieval {
            store: self.store,
            embedder: embedder.as_ref(),
            vectors: self.vectors,
        };
        let passages = retrieve(retrieval, question, self.config.ask_max_input_tokens).await?;
        let (text, citations) = if passages.is_empty() {
            (NOTHING_FOUND.to_string(), Vec::new())
        } else {
            let llm = Llm::from_config(self.config, self.client.clone()).ok_or(AskError::NoLlm)?;
            let prompt = render_prompt(&template(self.config).await, &question.text, &passages);
            let said = llm
                .complete(&prompt, progress)
                .await
                .map_err(|error: ProviderError| {
                    AskError::Provider(self.config.redact(error.message()))
                })?;
            if said.trim().is_empty() {
                return Err(AskError::Provider("the LLM's answer was empty".to_string()));
            }
            let (citations, cleaned) = citations(&said, &passages);
            (cleaned.trim().to_string(), citations)
        };
        let job = (question.scope.jobs.len() == 1).then(|| question.scope.jobs[0].clone());
        let answer = Answer {
            id: JobId::generate().to_string(),
            question: question.text.clone(),
            answer: text,
            citations,
            job: job.as_ref().map(ToString::to_string),
            created_at: crate::jobs::now_millis(),
        };
        let record = crate::store::AskRecord {
            id: answer.id.clone(),
            job_id: job,
            question: answer.question.clone(),
            answer: serde_json::to_string(&answer).unwrap_or_default(),
            created_at: answer.created_at,
        };
        match self.store.save_ask(record).await {
            // The meeting went while the answer was made: the answer stands, unkept.
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(error) => tracing::warn!(%error, "could not keep an Ask answer"),
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(id: i64, text: &str) -> Passage {
        Passage {
            id,
            job_id: JobId::parse("job1").unwrap(),
            title: Some("Weekly".into()),
            meeting_date: Some("2025-03-04T10:00:00.000Z".into()),
            speaker: Some("Ana".into()),
            start_ms: Some(61_500),
            text: text.into(),
        }
    }

    #[test]
    fn invented_numbers_are_dropped_and_real_ones_kept() {
        let (cited, cleaned) = cited_numbers("Yes [2]. Also [9]. Both [1, 7][2]. See [note].", 2);
        assert_eq!(cited, [2, 1]);
        assert_eq!(cleaned, "Yes [2]. Also. Both [1][2]. See [note].");
        let (cited, cleaned) = cited_numbers("Unclosed [1", 3);
        assert!(cited.is_empty());
        assert_eq!(cleaned, "Unclosed [1");
        assert_eq!(cited_numbers("[0] [] [ ]", 3).0, Vec::<usize>::new());
    }

    #[test]
    fn citations_carry_the_moment() {
        let passages = [passage(10, "first"), passage(11, "second")];
        let (citations, _) = citations("It was said [2].", &passages);
        assert_eq!(citations.len(), 1);
        assert_eq!(citations[0].n, 2);
        assert_eq!(citations[0].text, "second");
        assert_eq!(citations[0].start, Some(61.5));
        assert_eq!(citations[0].speaker.as_deref(), Some("Ana"));
    }

    #[test]
    fn fusion_rewards_agreement() {
        let fused = fuse(&[vec![1, 2, 3], vec![3, 4]]);
        assert_eq!(fused[0], 3);
        assert_eq!(fused.len(), 4);
        assert_eq!(fuse(&[vec![5, 6], vec![]]), [5, 6]);
    }

    #[test]
    fn the_budget_holds_the_best_that_fit() {
        let long = "x".repeat(1000);
        let passages = vec![passage(1, &long), passage(2, "short"), passage(3, &long)];
        // 300 tokens = 1200 characters: the first long one and the short one.
        let chosen = within_budget(passages, 300);
        let ids: Vec<i64> = chosen.iter().map(|p| p.id).collect();
        assert_eq!(ids, [1, 2]);
    }

    #[test]
    fn nearest_orders_by_similarity() {
        let vectors = vec![
            (1, vec![0.0, 1.0]),
            (2, vec![1.0, 0.1]),
            (3, vec![1.0, 0.0]),
        ];
        assert_eq!(nearest(&[1.0, 0.0], &vectors, 2), [3, 2]);
        assert!(nearest(&[1.0, 0.0], &[], 2).is_empty());
    }

    #[test]
    fn the_prompt_numbers_the_passages() {
        let prompt = render_prompt(
            "Q: {{question}}\n{{passages}}",
            "Who?",
            &[passage(1, "We freeze vendors.")],
        );
        assert!(prompt.starts_with(
            "Q: Who?\n[1] Meeting: Weekly (2025-03-04) — Ana at 1:01\nWe freeze vendors."
        ));
        let bare = render_prompt("Answer.", "Who?", &[passage(1, "x")]);
        assert!(bare.contains("Question: Who?") && bare.contains("[1] Meeting"));
    }
}
