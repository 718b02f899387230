//! Import of the `jobs.json` left by the original Next.js FocusFlow.
//!
//! Runs on start-up, once, and the file is then kept on disk under a new name. Artifact files
//! stay where the old app put them (wherever that was inside the data directory); the jobs
//! point at them.
//!
//! The file is read as a stream, twice: once to check that it is a JSON array of objects (so a
//! malformed file imports nothing), then to import its jobs in batches of [`BATCH`], the marker
//! that says the import ran committing with the last batch. Memory stays that of a batch
//! whatever the file's size: a 48 MB `jobs.json` parsed whole (and its transcripts read) left
//! the process about 100 MB larger for the rest of its life. A crash halfway leaves no marker,
//! so the next start imports again, skipping the jobs that made it. Processes on one database
//! that start together import once: the import runs under a lock they share
//! ([`Store::exclusive`]), and whoever comes next finds the marker.

use std::fmt;
use std::io::BufReader;
use std::path::{Component, Path, PathBuf};

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use tokio::sync::mpsc;

use super::{Store, StoreError};
use crate::jobs::{Job, JobId, Stage, Status, meeting_date_millis, now_millis, parse_meeting_date};

const MARKER: &str = "legacy_import";
/// Jobs imported per transaction.
const BATCH: usize = 200;

#[derive(Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    NoFile,
    AlreadyImported,
    Imported { jobs: usize, renamed_to: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("could not read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a JSON array of jobs: {message}")]
    Malformed { path: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One job of the old file, as the store records it: a [`Job`] no worker has started yet, with
/// its place in the list, its log and the text for the search index.
#[derive(Debug, Clone)]
pub struct ImportedJob {
    pub job: Job,
    /// The job's place in the list (see `NewJob`).
    pub sort_ms: i64,
    /// `(ms, message)`, oldest first.
    pub logs: Vec<(i64, String)>,
    /// For the search index.
    pub transcript_text: Option<String>,
}

pub async fn import_if_present(store: &Store) -> Result<ImportOutcome, ImportError> {
    let path = store.data_dir().join("jobs.json");
    if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Ok(ImportOutcome::NoFile);
    }
    // Replicas that start together take turns here: the first imports, the others then find
    // the marker (or no file). Held until the import is done, even on an error.
    let _turn = store.exclusive(MARKER).await?;
    if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Ok(ImportOutcome::NoFile);
    }
    if store.meta(MARKER).await?.is_some() {
        tracing::warn!(
            path = %path.display(),
            "a jobs.json is present but the legacy import already ran; it is left alone"
        );
        return Ok(ImportOutcome::AlreadyImported);
    }
    // First pass: the whole file must be well-formed before a single job is imported.
    let checked = path.clone();
    tokio::task::spawn_blocking(move || read_jobs(&checked, |_| Ok(())))
        .await
        .map_err(|error| ImportError::Malformed {
            path: path.display().to_string(),
            message: error.to_string(),
        })??;
    let (count, skipped) = import_jobs(store, &path).await?;
    let renamed = set_aside(store, &path).await;
    if skipped > 0 {
        tracing::warn!(
            skipped,
            "jobs.json entries without an id or url were not imported"
        );
    }
    Ok(ImportOutcome::Imported {
        jobs: count,
        renamed_to: renamed.display().to_string(),
    })
}

/// The second pass: jobs mapped on a blocking thread (which also reads their transcripts) and
/// imported in batches as they come; the channel's bound keeps memory at a batch or two. The
/// last batch sets the marker. Returns how many jobs were imported and how many skipped.
async fn import_jobs(store: &Store, path: &Path) -> Result<(usize, usize), ImportError> {
    let (sender, mut batches) = mpsc::channel::<Vec<ImportedJob>>(1);
    let reading = path.to_path_buf();
    let data_dir = store.data_dir().to_path_buf();
    let reader = tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(BATCH);
        let mut skipped = 0usize;
        read_jobs(&reading, |item| {
            match map_job(&item, &data_dir) {
                Some(job) => batch.push(job),
                None => skipped += 1,
            }
            if batch.len() >= BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                // The importer has stopped (a store error): stop reading too.
                sender
                    .blocking_send(full)
                    .map_err(|_| serde::de::Error::custom("the import stopped"))?;
            }
            Ok(())
        })?;
        Ok::<_, ImportError>((batch, skipped))
    });
    let mut count = 0usize;
    while let Some(batch) = batches.recv().await {
        count += batch.len();
        store.import_jobs(batch, None).await?;
    }
    let (last, skipped) = reader.await.map_err(|error| ImportError::Malformed {
        path: path.display().to_string(),
        message: error.to_string(),
    })??;
    count += last.len();
    store
        .import_jobs(
            last,
            Some((MARKER, format!("{count} jobs at {}", now_millis()))),
        )
        .await?;
    Ok((count, skipped))
}

/// Renames the imported file to `jobs.json.imported-<ms>` so that it is kept but not read
/// again; a failed rename is only logged (the marker already prevents a second import).
async fn set_aside(store: &Store, path: &Path) -> PathBuf {
    let renamed = store
        .data_dir()
        .join(format!("jobs.json.imported-{}", now_millis()));
    if let Err(error) = tokio::fs::rename(path, &renamed).await {
        tracing::warn!(%error, "imported jobs.json but could not rename it; it will not be imported again");
    }
    renamed
}

/// Reads the jobs of `path` one at a time, handing each to `each`. The original wrote a bare
/// array; `{"jobs": [...]}` is accepted too.
fn read_jobs(
    path: &PathBuf,
    each: impl FnMut(Value) -> Result<(), serde_json::Error>,
) -> Result<(), ImportError> {
    let display = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| ImportError::Read {
        path: display.clone(),
        source,
    })?;
    let mut deserializer = serde_json::Deserializer::from_reader(BufReader::new(file));
    let malformed = |error: serde_json::Error| ImportError::Malformed {
        path: display.clone(),
        message: error.to_string(),
    };
    deserializer
        .deserialize_any(TopLevel { each })
        .map_err(malformed)?;
    deserializer.end().map_err(malformed)
}

/// The file's top level: the array of jobs, or an object holding it under `jobs`.
struct TopLevel<F> {
    each: F,
}

/// The array of jobs, each handed on as it is read.
struct Jobs<F> {
    each: F,
}

impl<'de, F: FnMut(Value) -> Result<(), serde_json::Error>> Visitor<'de> for TopLevel<F> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an array of jobs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        Jobs { each: self.each }.visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut jobs = Some(Jobs { each: self.each });
        while let Some(key) = map.next_key::<String>()? {
            match (key.as_str(), jobs.take()) {
                ("jobs", Some(seed)) => map.next_value_seed(seed)?,
                (_, unused) => {
                    jobs = unused;
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if jobs.is_some() {
            return Err(serde::de::Error::custom("expected an array"));
        }
        Ok(())
    }
}

impl<'de, F: FnMut(Value) -> Result<(), serde_json::Error>> DeserializeSeed<'de> for Jobs<F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(Value) -> Result<(), serde_json::Error>> Visitor<'de> for Jobs<F> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an array of jobs")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<Value>()? {
            (self.each)(item).map_err(serde::de::Error::custom)?;
        }
        Ok(())
    }
}

fn string_field(item: &Value, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| match item.get(*name) {
        Some(Value::String(text)) if !text.trim().is_empty() => Some(text.clone()),
        Some(Value::Number(number)) => Some(number.to_string()),
        _ => None,
    })
}

fn millis_field(item: &Value, names: &[&str]) -> Option<i64> {
    names.iter().find_map(|name| match item.get(*name)? {
        Value::Number(number) => number
            .as_i64()
            .or_else(|| number.as_f64().map(|f| f as i64)),
        Value::String(text) => meeting_date_millis(text).or_else(|| text.parse().ok()),
        _ => None,
    })
}

/// One legacy job as the store takes it; None when it has no id or url.
fn map_job(item: &Value, data_dir: &Path) -> Option<ImportedJob> {
    let id = job_id(&string_field(item, &["id"])?);
    let url = string_field(item, &["url"])?;
    let created_at = millis_field(item, &["created_at", "createdAt"]).unwrap_or_else(now_millis);
    let updated_at = millis_field(item, &["updated_at", "updatedAt"]).unwrap_or(created_at);
    let meeting_date = string_field(item, &["meeting_date", "meetingDate"])
        .map(|date| parse_meeting_date(&date).unwrap_or(date));
    let sort_ms = meeting_date
        .as_deref()
        .and_then(meeting_date_millis)
        .unwrap_or(created_at);
    let (status, error) = status_and_error(item);

    let locate = |names: &[&str]| {
        string_field(item, names).and_then(|old| {
            let found = locate_in_data_dir(&old, data_dir);
            if found.is_none() {
                tracing::warn!(job = %id, path = %old, "a file of a legacy job was not found in the data directory");
            }
            found
        })
    };
    let summary_path = locate(&["summary_path", "summaryPath"]);
    let transcript_path = locate(&["transcript_path", "transcriptPath"]);
    let file_path = locate(&["file_path", "filePath"]);
    let read = |relative: &Option<String>| {
        relative
            .as_deref()
            .and_then(|relative| std::fs::read_to_string(data_dir.join(relative)).ok())
    };
    let transcript_text = read(&transcript_path);
    let summary = string_field(item, &["summary"]).or_else(|| read(&summary_path));

    let job = Job {
        id,
        url,
        resolved_url: string_field(item, &["resolved_url", "resolvedUrl"]),
        meeting_date,
        status,
        title: string_field(item, &["title"]),
        summary,
        summary_path,
        transcript_path,
        file_path,
        created_at,
        updated_at,
        error,
        error_kind: None,
        checkpoint: checkpoint(item),
        attempts: 0,
        progress: None,
        transcription_ref: None,
        speakers: Default::default(),
        template: None,
    };
    Some(ImportedJob {
        job,
        sort_ms,
        logs: log_lines(item, updated_at),
        transcript_text,
    })
}

/// The legacy id when it is safe in file names, else a new one (logged with the old).
fn job_id(raw_id: &str) -> JobId {
    JobId::parse(raw_id).unwrap_or_else(|_| {
        let id = JobId::generate();
        tracing::warn!(old = %raw_id, new = %id, "a legacy job id is not safe in file names; it gets a new id");
        id
    })
}

/// The job's status and error: a job the old app was working on is queued again (it resumes
/// from its checkpoint); an unknown status is an error that says so.
fn status_and_error(item: &Value) -> (Status, Option<String>) {
    let mut error = string_field(item, &["error"]);
    let raw_status = string_field(item, &["status"]).unwrap_or_else(|| "queued".into());
    let status = match raw_status.parse::<Status>() {
        Ok(status) if status.is_running() => Status::Queued,
        Ok(status) => status,
        Err(_) => {
            error.get_or_insert_with(|| format!("imported with an unknown status {raw_status:?}"));
            Status::Error
        }
    };
    (status, error)
}

/// The stage to resume from: `checkpoint` as a string or as `{"step": …}`.
fn checkpoint(item: &Value) -> Option<Stage> {
    item.get("checkpoint")
        .and_then(|c| c.get("step").or(Some(c)))
        .and_then(Value::as_str)
        .and_then(|step| step.parse::<Stage>().ok())
}

/// The job's log as `(ms, message)`: lines as strings (`[stamp] message`) or objects; a line
/// without a time of its own gets `fallback_ts`.
fn log_lines(item: &Value, fallback_ts: i64) -> Vec<(i64, String)> {
    let Some(Value::Array(lines)) = item.get("logs") else {
        return Vec::new();
    };
    lines
        .iter()
        .filter_map(|line| match line {
            Value::String(text) => Some(split_log_line(text, fallback_ts)),
            Value::Object(_) => {
                let message = string_field(line, &["message", "msg"])?;
                let ts = millis_field(line, &["ts", "timestamp", "time"]).unwrap_or(fallback_ts);
                Some((ts, message))
            }
            _ => None,
        })
        .collect()
}

/// `[2025-09-25T20:05:39.000Z] message` → (ms, "message"); other lines keep their text.
fn split_log_line(line: &str, fallback_ts: i64) -> (i64, String) {
    if let Some(rest) = line.strip_prefix('[')
        && let Some((stamp, message)) = rest.split_once("] ")
        && let Some(ts) = meeting_date_millis(stamp)
    {
        return (ts, message.to_string());
    }
    (fallback_ts, line.to_string())
}

/// Finds a file the old app recorded under some absolute or relative path: the longest tail of
/// that path that names a file inside the data directory. Returns it relative to the data dir.
fn locate_in_data_dir(old: &str, data_dir: &Path) -> Option<String> {
    let parts: Vec<&str> = old
        .split(['/', '\\'])
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    if parts.contains(&"..") {
        return None;
    }
    (0..parts.len()).find_map(|start| {
        let relative = parts[start..].join("/");
        let safe = Path::new(&relative)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        (safe && data_dir.join(&relative).is_file()).then_some(relative)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_paths_are_found_wherever_they_lived() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("transcripts")).unwrap();
        std::fs::write(dir.path().join("transcripts/a.txt"), "hi").unwrap();
        for old in [
            "/app/data/transcripts/a.txt",
            "data/transcripts/a.txt",
            "./data/transcripts/a.txt",
            "transcripts/a.txt",
            "C:\\app\\data\\transcripts\\a.txt",
        ] {
            assert_eq!(
                locate_in_data_dir(old, dir.path()).as_deref(),
                Some("transcripts/a.txt"),
                "{old}"
            );
        }
        assert_eq!(
            locate_in_data_dir("/etc/../transcripts/a.txt", dir.path()),
            None
        );
        assert_eq!(
            locate_in_data_dir("/app/data/transcripts/b.txt", dir.path()),
            None
        );
    }

    #[test]
    fn log_lines_keep_their_time() {
        let (ts, message) = split_log_line("[2025-09-25T20:05:39.000Z] Downloading", 1);
        assert_eq!(ts, 1_758_830_739_000);
        assert_eq!(message, "Downloading");
        assert_eq!(split_log_line("plain", 7), (7, "plain".to_string()));
    }
}
