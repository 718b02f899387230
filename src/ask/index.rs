//! Building Ask's passages: a completed job's transcript cut into whole speaker turns, each
//! with the time its first utterance starts; and the task that keeps them built — when a job
//! completes (any process: it follows the store's events), and for every job left without
//! them at start-up, in the background. Deleting a job removes its passages in the database;
//! naming speakers renames them there, in the same transaction.
//!
//! The transcript's files are read here and nowhere else in Ask, through the store's
//! artifacts.

use std::time::Duration;

use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::embeddings::{BATCH, Embedder};
use crate::jobs::{Job, JobId, Status};
use crate::pipeline::transcribe::{Utterance, turn_starts};
use crate::store::{JobEvent, NewPassage, Store, StoreError};

/// The turns of a stored transcript: blocks separated by a blank line, each `[Heading]: words`
/// (a block without a heading is a turn of no one in particular).
fn turns(transcript: &str) -> Vec<(Option<String>, String)> {
    crate::pipeline::transcribe::transcript_blocks(transcript)
        .filter(|(_, text)| !text.is_empty())
        .collect()
}

/// The passages of a transcript and its utterances (if any).
pub fn passages_of(transcript: &str, utterances: Option<&[Utterance]>) -> Vec<NewPassage> {
    let turns = turns(transcript);
    let starts = utterances.and_then(|utterances| turn_starts(utterances, turns.len()));
    turns
        .into_iter()
        .enumerate()
        .map(|(seq, (label, text))| NewPassage {
            seq: seq as i64,
            label,
            text,
            start_ms: starts
                .as_ref()
                .and_then(|starts| starts.get(seq).copied().flatten())
                .and_then(|ms| i64::try_from(ms).ok()),
        })
        .collect()
}

/// Reads the job's transcript and utterances (the only reads of artifacts Ask makes).
async fn read_transcript(
    store: &Store,
    job: &Job,
) -> std::io::Result<(Option<String>, Option<Vec<Utterance>>)> {
    #[derive(Deserialize)]
    struct Kept {
        #[serde(default)]
        utterances: Vec<Utterance>,
    }
    let artifacts = store.artifacts();
    let Some(text) = artifacts.read_text(job.transcript_path.as_deref()).await? else {
        return Ok((None, None));
    };
    let utterances = artifacts
        .read_text(Some(&artifacts.utterances_relative(&job.id)))
        .await?
        .and_then(|json| serde_json::from_str::<Kept>(&json).ok())
        .map(|kept| kept.utterances);
    Ok((Some(text), utterances))
}

/// Builds (or rebuilds) the job's passages; a job that is not completed gets none. Returns how
/// many were stored.
pub async fn index_job(store: &Store, id: &JobId) -> Result<usize, StoreError> {
    let job = store.job(id).await?;
    let passages = if job.status == Status::Completed {
        let (text, utterances) = read_transcript(store, &job).await.map_err(|error| {
            StoreError::Unavailable(format!(
                "could not read the transcript of job {id}: {error}"
            ))
        })?;
        text.map(|text| passages_of(&text, utterances.as_deref()))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let count = passages.len();
    store.replace_passages(id, passages).await?;
    Ok(count)
}

/// Gives every passage without a vector one, in batches; stops at the first failure (the next
/// run goes on from there). Returns how many were embedded.
pub async fn embed_missing(store: &Store, embedder: &Embedder) -> Result<usize, String> {
    let mut done = 0;
    loop {
        let missing = store
            .passages_without_vectors(BATCH)
            .await
            .map_err(|error| error.to_string())?;
        if missing.is_empty() {
            return Ok(done);
        }
        let (ids, texts): (Vec<i64>, Vec<String>) = missing.into_iter().unzip();
        let vectors = embedder
            .embed(&texts)
            .await
            .map_err(|error| error.to_string())?;
        done += ids.len();
        store
            .set_passage_vectors(ids.into_iter().zip(vectors).collect())
            .await
            .map_err(|error| error.to_string())?;
    }
}

/// Keeps the passages built: the backfill at start-up, then each job as it completes.
pub struct Indexer {
    pub store: Store,
    pub embedder: Option<Embedder>,
    /// Dropped whenever passages change, so questions see them at once.
    pub vectors: std::sync::Arc<super::VectorCache>,
}

impl Indexer {
    pub fn spawn(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            tokio::select! {
                _ = self.run() => {}
                _ = shutdown.cancelled() => {}
            }
        })
    }

    /// Every job left without passages, a batch at a time. A job that cannot be indexed is
    /// logged and left (it is tried again at the next start).
    pub async fn backfill(&self) -> usize {
        let started = std::time::Instant::now();
        let mut indexed = 0;
        let mut failed: Vec<JobId> = Vec::new();
        loop {
            let batch = match self.store.jobs_without_passages(100 + failed.len()).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(%error, "the Ask index backfill stopped");
                    break;
                }
            };
            let batch: Vec<JobId> = batch
                .into_iter()
                .filter(|id| !failed.contains(id))
                .collect();
            if batch.is_empty() {
                break;
            }
            for id in batch {
                match index_job(&self.store, &id).await {
                    Ok(_) => indexed += 1,
                    Err(StoreError::NotFound) => {}
                    Err(error) => {
                        tracing::warn!(job = %id, %error, "could not build a job's Ask passages");
                        failed.push(id);
                    }
                }
            }
        }
        if indexed > 0 {
            tracing::info!(
                jobs = indexed,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "built the Ask passages of existing jobs"
            );
        }
        indexed
    }

    /// Embeds what has no vector yet; either way, questions see the passages as they are now.
    async fn embed(&self) {
        self.vectors.invalidate();
        if let Some(embedder) = &self.embedder
            && let Err(error) = embed_missing(&self.store, embedder).await
        {
            tracing::warn!(%error, "could not embed Ask passages; Ask ranks the rest by words until the next try");
        }
        self.vectors.invalidate();
    }

    async fn run(self) {
        // Subscribed first, so a job completing during the backfill is not missed.
        let mut events = self.store.subscribe();
        self.backfill().await;
        self.embed().await;
        loop {
            match events.recv().await {
                Ok(JobEvent::Status {
                    job_id,
                    status: Status::Completed,
                }) => {
                    match index_job(&self.store, &job_id).await {
                        Ok(_) | Err(StoreError::NotFound) => {}
                        Err(error) => {
                            tracing::warn!(job = %job_id, %error, "could not build a job's Ask passages")
                        }
                    }
                    self.embed().await;
                }
                Ok(JobEvent::Deleted { .. }) => self.vectors.invalidate(),
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    // Events were missed: whatever completed meanwhile is found as the backfill
                    // finds it.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    self.backfill().await;
                    self.embed().await;
                }
                Err(RecvError::Closed) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_become_passages_with_their_starts() {
        let said = |speaker: &str, text: &str, start: u64| Utterance {
            speaker: Some(speaker.into()),
            text: text.into(),
            start: Some(start),
            end: None,
        };
        let transcript =
            "[Speaker A]: Hello there. More.\n\n[Speaker B]: The freeze is on.\n\nNo label here";
        let utterances = [
            said("A", "Hello there.", 1000),
            said("A", "More.", 2000),
            said("B", " ", 2500),
            said("B", "The freeze is on.", 3000),
            said("C", "No label here", 9000),
        ];
        let passages = passages_of(transcript, Some(&utterances));
        assert_eq!(passages.len(), 3);
        assert_eq!(passages[0].label.as_deref(), Some("Speaker A"));
        assert_eq!(passages[0].start_ms, Some(1000));
        assert_eq!(passages[1].text, "The freeze is on.");
        assert_eq!(passages[1].start_ms, Some(3000));
        assert_eq!(passages[2].label, None);
        // Utterances that do not line up give no times rather than wrong ones.
        let passages = passages_of(transcript, Some(&utterances[..2]));
        assert!(passages.iter().all(|passage| passage.start_ms.is_none()));
    }
}
