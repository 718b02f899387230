//! Everything that can be done to a job: create it (from a link, an uploaded recording, or a
//! pasted or uploaded transcript), edit its title and date, name its speakers, retry it, write
//! its summary again, delete it. A job's id is made here ([`new_id`]) and nowhere else.
//!
//! Inputs arrive parsed (a [`MeetingDate`], a [`TemplateName`], a checked link): the handlers
//! build them at the edge and this module never checks them again. It knows nothing of HTTP;
//! its errors are [`AppError`] kinds that the web layer renders.

use crate::domain::{MeetingDate, TemplateName, Title};
use crate::error::{AppError, AppResult};
use crate::jobs::{Job, JobId, JobSource, LogLine, SpeakerNames, Stage, Status};
use crate::net::guard::AudioUrl;
use crate::pipeline::Queue;
use crate::pipeline::download::human_bytes;
use crate::pipeline::transcribe::captions::{self, CaptionFormat};
use crate::pipeline::transcribe::{self, Transcript, speakers_in};
use crate::store::{Changes, NewJob, PartFile, Store};

/// Statuses from which a job may be retried or re-summarised.
const FINISHED: &[Status] = &[Status::Completed, Status::Error];
const MAX_SPEAKER_NAME: usize = 60;

/// A new job's id. Uploads ask for theirs before the job exists (the recording streams to a
/// file named after it); every other job gets one when it is created.
pub fn new_id() -> JobId {
    JobId::generate()
}

/// The service, as cheap to clone as the store and the queue it holds.
#[derive(Clone)]
pub struct Jobs {
    store: Store,
    queue: Queue,
}

/// What a new job is made from.
pub enum Source {
    /// A link that passed the address guard: a Plaud share link or an audio URL.
    Link(AudioUrl),
    /// A recording already on disk under its temporary name.
    Recording(Recording),
    /// A transcript, pasted (`name` is "pasted") or uploaded, in the format it came in.
    Transcript {
        name: String,
        format: CaptionFormat,
        text: String,
    },
}

/// An uploaded recording, streamed to a temporary file that goes away unless the job is made.
pub struct Recording {
    /// From [`crate::store::Artifacts::part_file`], beside where the audio goes.
    pub file: PartFile,
    /// The file name the client gave, safe to show.
    pub name: String,
    pub bytes: u64,
    pub extension: String,
    /// Its media type as sent ("" when none was).
    pub media: String,
}

/// The choices every new job may carry.
#[derive(Default)]
pub struct Options {
    pub meeting_date: Option<MeetingDate>,
    pub template: Option<TemplateName>,
}

/// A change of title and meeting date: `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Default)]
pub struct Edit {
    pub title: Option<Option<Title>>,
    pub meeting_date: Option<Option<MeetingDate>>,
}

impl Jobs {
    pub fn new(store: Store, queue: Queue) -> Self {
        Self { store, queue }
    }

    /// Creates a queued job (`id` from [`new_id`]) and wakes the worker.
    pub async fn create(
        &self,
        id: JobId,
        source: Source,
        options: Options,
    ) -> AppResult<(Job, Vec<LogLine>)> {
        let (job, logs) = match source {
            Source::Link(url) => {
                let new = new_job(JobSource::Link(url.to_string()), options, None);
                self.store.create_job_with_id(id, new).await?
            }
            Source::Recording(recording) => self.create_recorded(id, recording, options).await?,
            Source::Transcript { name, format, text } => {
                self.create_transcribed(id, &name, format, text, options)
                    .await?
            }
        };
        self.queue.wake();
        tracing::info!(job = %job.id, url = %job.url, "job created");
        Ok((job, logs))
    }

    /// Moves the recording into place and records the job, together or not at all, even if
    /// the request is dropped half-way (a timeout, a client gone): in a task of their own.
    async fn create_recorded(
        &self,
        id: JobId,
        recording: Recording,
        options: Options,
    ) -> AppResult<(Job, Vec<LogLine>)> {
        let artifacts = self.store.artifacts().clone();
        let relative = artifacts.audio_relative(&id, &recording.extension);
        let media = if recording.media.is_empty() {
            "unknown type"
        } else {
            &recording.media
        };
        let log = format!(
            "Uploaded {} ({}, {media}); the resolve and download stages are not needed",
            recording.name,
            human_bytes(recording.bytes)
        );
        let mut new = new_job(JobSource::Upload(recording.name), options, Some(log));
        new.checkpoint = Some(Stage::Download);
        new.file_path = Some(relative.clone());
        let store = self.store.clone();
        let part = recording.file;
        tokio::spawn(async move {
            // Put in place first (renamed, or uploaded to the bucket: the temporary file goes
            // either way), then recorded; audio whose job was never recorded is removed here
            // (an object left by a crash in between, by the start-up sweep of the bucket).
            artifacts.place_part(part, &relative).await?;
            match store.create_job_with_id(id, new).await {
                Ok(created) => Ok(created),
                Err(error) => {
                    artifacts.remove_paths(vec![relative]).await;
                    Err(AppError::from(error))
                }
            }
        })
        .await
        .map_err(|error| AppError::Internal(anyhow::anyhow!("creating the job stopped: {error}")))?
    }

    /// A job that starts at the summary: the transcript is read (off the async runtime: a
    /// caption file of megabytes takes a while) and written as the pipeline writes its own.
    async fn create_transcribed(
        &self,
        id: JobId,
        name: &str,
        format: CaptionFormat,
        text: String,
        options: Options,
    ) -> AppResult<(Job, Vec<LogLine>)> {
        let parsed: Transcript =
            tokio::task::spawn_blocking(move || captions::parse(format, &text))
                .await
                .map_err(|error| {
                    AppError::Internal(anyhow::anyhow!("reading the transcript stopped: {error}"))
                })?
                .map_err(|error| {
                    AppError::bad_request(format!(
                        "the {} transcript could not be read: {error}",
                        format.name()
                    ))
                })?;
        let artifacts = self.store.artifacts();
        let cues = parsed.utterances.len();
        let (transcript_path, formatted) = transcribe::write_files(artifacts, &id, parsed).await?;
        let speakers = speakers_in(&formatted);
        let log = format!(
            "Transcript received ({}, {} cues, {} speakers, {} characters); transcription is not needed",
            format.name(),
            cues,
            speakers.len(),
            formatted.chars().count()
        );
        let mut new = new_job(JobSource::Transcript(name.to_string()), options, Some(log));
        new.checkpoint = Some(Stage::Transcribe);
        new.transcript_path = Some(transcript_path.clone());
        let (job, logs) = match self.store.create_job_with_id(id.clone(), new).await {
            Ok(created) => created,
            Err(error) => {
                artifacts
                    .remove_paths(vec![transcript_path, artifacts.utterances_relative(&id)])
                    .await;
                return Err(error.into());
            }
        };
        // Searchable like a transcript the pipeline made (best effort: the job exists already).
        if let Err(error) = self.store.index_transcript(&job.id, formatted).await {
            tracing::warn!(job = %job.id, %error, "could not index the transcript for search");
        }
        Ok((job, logs))
    }

    /// Changes the title and meeting date as `edit` says; answers the job as changed.
    pub async fn edit(&self, id: &JobId, edit: Edit) -> AppResult<Job> {
        let job = self.store.job(id).await?;
        let mut changes = Changes::new();
        if let Some(title) = edit.title {
            changes = changes.title(title.map(Title::into_string));
        }
        if let Some(date) = edit.meeting_date {
            changes = changes.meeting_date(date.map(MeetingDate::into_string), job.created_at);
        }
        Ok(self
            .store
            .update_with_log(id, changes, "Title or meeting date edited")
            .await?)
    }

    /// Gives the transcript's speakers names (an empty name removes one); every label must be
    /// one of the transcript's. Answers the job and its stored (unnamed) transcript.
    pub async fn name_speakers(
        &self,
        id: &JobId,
        given: Vec<(String, String)>,
    ) -> AppResult<(Job, String)> {
        let job = self.store.job(id).await?;
        let transcript = self
            .store
            .artifacts()
            .read_text(job.transcript_path.as_deref())
            .await?
            .filter(|text| !text.trim().is_empty())
            .ok_or_else(|| {
                AppError::bad_request("the job has no transcript yet, so no speakers to name")
            })?;
        let names = speaker_names(&speakers_in(&transcript), given)?;
        let described = if names.is_empty() {
            "Speaker names cleared".to_string()
        } else {
            let pairs: Vec<String> = names
                .iter()
                .map(|(label, name)| format!("{label} → {name}"))
                .collect();
            format!("Speaker names set: {}", pairs.join(", "))
        };
        let job = self
            .store
            .update_with_log(id, Changes::new().speakers(&names), described)
            .await?;
        Ok((job, transcript))
    }

    /// Stops the job's pipeline if it runs, then removes the job and its files.
    pub async fn delete(&self, id: &JobId) -> AppResult<()> {
        // A running pipeline is stopped first, so it writes no file after the delete.
        if self.queue.cancel(id) {
            for _ in 0..50 {
                if !self.queue.is_running(id) {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        // A pipeline still busy after a second (an upload under load) may place one more file
        // once the job is gone: its files are removed again when it has stopped.
        let still_running = if self.queue.is_running(id) {
            Some(self.store.job(id).await?)
        } else {
            None
        };
        self.store.delete_job(id).await?;
        tracing::info!(job = %id, "job deleted");
        if let Some(job) = still_running {
            self.remove_when_stopped(job);
        }
        Ok(())
    }

    /// Removes a deleted job's files again once its pipeline has stopped (a minute at most).
    fn remove_when_stopped(&self, job: Job) {
        let (queue, store) = (self.queue.clone(), self.store.clone());
        tokio::spawn(async move {
            for _ in 0..600 {
                if !queue.is_running(&job.id) {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            tracing::info!(job = %job.id, "files of a deleted job removed after its pipeline stopped");
            store.remove_leftovers(job).await;
        });
    }

    /// Queues a finished job again: from its checkpoint, or (`full`) from the beginning with
    /// its files removed. Returns a sentence saying what will happen.
    pub async fn retry(&self, id: &JobId, full: bool) -> AppResult<String> {
        let current = self.store.job(id).await?;
        let (changes, message) = retry_changes(&current, full);
        let Some(_) = self.store.update_if(id, FINISHED, changes).await? else {
            return Err(self.not_finished(id).await);
        };
        let log = if full {
            "Retry requested: starting over"
        } else {
            "Retry requested: resuming from the checkpoint"
        };
        self.store.append_log(id, log).await?;
        self.queue.wake();
        Ok(message)
    }

    /// Queues a new summary of the existing transcript; answers the job as queued.
    pub async fn resummarize(&self, id: &JobId) -> AppResult<Job> {
        let job = self.store.job(id).await?;
        let transcript = self
            .store
            .artifacts()
            .read_text(job.transcript_path.as_deref())
            .await?;
        if transcript.is_none_or(|text| text.trim().is_empty()) {
            return Err(AppError::bad_request(
                "the job has no transcript to summarise yet",
            ));
        }
        let changes = Changes::new()
            .status(Status::Queued)
            .error(None)
            .checkpoint(Some(Stage::Transcribe));
        let Some(job) = self.store.update_if(id, FINISHED, changes).await? else {
            return Err(self.not_finished(id).await);
        };
        self.store.append_log(id, "New summary requested").await?;
        self.queue.wake();
        Ok(job)
    }

    /// 409 for a job that is queued or running, 404 for one that does not exist.
    async fn not_finished(&self, id: &JobId) -> AppError {
        match self.store.job(id).await {
            Ok(job) if job.status == Status::Queued => {
                AppError::Conflict("the job is already queued".into())
            }
            Ok(job) => AppError::Conflict(format!(
                "the job is running (status: {}); wait for it to finish",
                job.status
            )),
            Err(error) => error.into(),
        }
    }
}

fn new_job(source: JobSource, options: Options, origin_log: Option<String>) -> NewJob {
    NewJob {
        url: source.to_string(),
        meeting_date: options.meeting_date.map(MeetingDate::into_string),
        template: options.template.map(TemplateName::into_string),
        origin_log,
        ..Default::default()
    }
}

/// What a retry changes, and the sentence that says so.
fn retry_changes(current: &Job, full: bool) -> (Changes, String) {
    let changes = Changes::new()
        .status(Status::Queued)
        .error(None)
        .progress(None);
    if let (true, Some(kept)) = (full, current.brought_input()) {
        // An upload or a transcript brought along is the job's only source: keep it.
        let mut changes = changes
            .checkpoint(Some(kept))
            .summary(None, None)
            .title(None)
            .transcription_ref(None)
            .remove_artifacts_after(kept);
        if kept < Stage::Transcribe {
            changes = changes.transcript_path(None);
        }
        let next = Stage::first_after(Some(kept)).unwrap_or(Stage::Summarize);
        let message =
            format!("Job queued to start over from the {next} stage (its uploaded input is kept)");
        return (changes, message);
    }
    if full {
        let changes = changes
            .checkpoint(None)
            .resolved_url(None)
            .file_path(None)
            .transcript_path(None)
            .summary(None, None)
            .title(None)
            .transcription_ref(None)
            .remove_artifacts();
        return (
            changes,
            "Job queued to start over from the beginning".into(),
        );
    }
    // A job with every stage done redoes its last one.
    let checkpoint = match current.checkpoint {
        Some(Stage::Summarize) => Some(Stage::Transcribe),
        other => other,
    };
    let next = Stage::first_after(checkpoint).unwrap_or(Stage::Summarize);
    (
        changes.checkpoint(checkpoint),
        format!("Job queued to resume at the {next} stage"),
    )
}

/// The names given, checked against the transcript's speakers; empty names are left out.
fn speaker_names(known: &[String], given: Vec<(String, String)>) -> AppResult<SpeakerNames> {
    let mut names = SpeakerNames::new();
    for (label, name) in given {
        if !known.contains(&label) {
            return Err(AppError::bad_request(format!(
                "the transcript has no speaker {label:?} (its speakers: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        if let Some(problem) = speaker_name_problem(&label, name) {
            return Err(AppError::bad_request(problem));
        }
        names.insert(label, name.to_string());
    }
    Ok(names)
}

/// Why a speaker name was refused, in words for the API and the form alike.
pub fn speaker_name_problem(label: &str, name: &str) -> Option<String> {
    if name.chars().count() > MAX_SPEAKER_NAME {
        return Some(format!(
            "the name for speaker {label:?} is longer than {MAX_SPEAKER_NAME} characters"
        ));
    }
    if name
        .chars()
        .any(|c| c.is_control() || matches!(c, '[' | ']'))
    {
        return Some(format!(
            "the name for speaker {label:?} must not contain line breaks or brackets"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speakers_must_be_the_transcripts_and_names_short() {
        let known = vec!["A".to_string(), "B".to_string()];
        let names = speaker_names(
            &known,
            vec![("A".into(), " Ana ".into()), ("B".into(), "".into())],
        )
        .unwrap();
        assert_eq!(names.get("A").map(String::as_str), Some("Ana"));
        assert!(!names.contains_key("B"));
        let refused = speaker_names(&known, vec![("C".into(), "x".into())]).unwrap_err();
        assert_eq!(
            refused.public_message(),
            "the transcript has no speaker \"C\" (its speakers: A, B)"
        );
        assert!(speaker_names(&known, vec![("A".into(), "a[b]".into())]).is_err());
    }
}
