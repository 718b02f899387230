//! OpenAI-compatible speech-to-text (`POST {root}/audio/transcriptions`, multipart), which
//! OpenAI and local whisper servers speak. `verbose_json` gives segments with start and end
//! seconds. Audio above the server's upload limit is sent in parts when it is MP3 (cut at frame
//! boundaries into parts of near-equal size, see [`super::mp3`]); the segments are joined with
//! each part's offset added. Every part streams from disk. Each part's answer is kept as it
//! comes, so a retry after a failed part sends only the parts not yet done.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::mp3::{self, Part, PlanError};
use super::{Transcript, Utterance};
use crate::config::Config;
use crate::jobs::Job;
use crate::net::retry::{ProviderError, with_retry};
use crate::pipeline::download::human_bytes;
use crate::pipeline::{StageContext, StageError, StageResult};

/// Room left under the limit for the multipart envelope (boundaries, headers, form fields).
const ENVELOPE_BYTES: u64 = 16 * 1024;

/// The speech-to-text server's wire format: built once from the configuration, it sends one
/// part of an audio file as a multipart upload and returns the answer as an [`Answer`]. The
/// stage below plans the parts, keeps the answers and writes the job's log.
#[derive(Clone)]
pub struct SpeechToText {
    http: reqwest::Client,
    /// `{root}/audio/transcriptions`.
    url: String,
    key: Option<String>,
    model: String,
    /// TRANSCRIBE_MAX_UPLOAD_BYTES: the largest request the server takes.
    limit: u64,
}

impl std::fmt::Debug for SpeechToText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeechToText")
            .field("url", &self.url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

/// One part's `verbose_json` answer: kept whole (it is the transcript's raw record and what a
/// retry reuses), and read once into utterances and a duration.
#[derive(Debug, Clone)]
pub struct Answer {
    raw: Value,
    /// The answer's segments (or its whole text as one), times from the part's start.
    utterances: Vec<Utterance>,
    /// The length the server measured, in ms.
    duration_millis: Option<u64>,
}

impl Answer {
    /// Reads an answer as the server gave it (or as kept from an earlier attempt).
    pub fn read(raw: Value) -> Self {
        Self {
            utterances: segments(&raw, 0),
            duration_millis: raw
                .get("duration")
                .and_then(Value::as_f64)
                .map(seconds_to_millis),
            raw,
        }
    }

    /// The utterances, shifted by `offset` ms.
    fn utterances_from(&self, offset: u64) -> impl Iterator<Item = Utterance> + '_ {
        self.utterances.iter().map(move |utterance| Utterance {
            speaker: utterance.speaker.clone(),
            text: utterance.text.clone(),
            start: utterance.start.map(|start| offset + start),
            end: utterance.end.map(|end| offset + end),
        })
    }
}

impl SpeechToText {
    /// None without TRANSCRIBE_BASE_URL.
    pub fn from_config(config: &Config, http: reqwest::Client) -> Option<Self> {
        let root = config.transcribe_base_url.as_deref()?;
        Some(Self {
            http,
            url: format!("{root}/audio/transcriptions"),
            key: config
                .transcribe_api_key
                .as_ref()
                .map(|key| key.expose().to_string()),
            model: config.transcribe_model.clone(),
            limit: config.transcribe_max_upload_bytes,
        })
    }

    /// Sends `part` of `audio`, streamed from disk, as `file_name` (servers tell the format by
    /// the name).
    pub async fn transcribe_part(
        &self,
        audio: &Path,
        file_name: &str,
        part: Part,
    ) -> Result<Answer, ProviderError> {
        let mut file = tokio::fs::File::open(audio)
            .await
            .map_err(|error| ProviderError::permanent(format!("cannot read the audio: {error}")))?;
        file.seek(std::io::SeekFrom::Start(part.offset))
            .await
            .map_err(|error| ProviderError::permanent(format!("cannot read the audio: {error}")))?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(part.length), 64 * 1024);
        let mime = mime_guess::from_path(file_name)
            .first_raw()
            .unwrap_or("application/octet-stream");
        let file_part = reqwest::multipart::Part::stream_with_length(
            reqwest::Body::wrap_stream(stream),
            part.length,
        )
        .file_name(file_name.to_string())
        .mime_str(mime)
        .map_err(|error| ProviderError::permanent(format!("bad media type: {error}")))?;
        let form = reqwest::multipart::Form::new()
            .text("model", self.model.clone())
            .text("response_format", "verbose_json")
            .part("file", file_part);
        let mut builder = self.http.post(&self.url).multipart(form);
        if let Some(key) = &self.key {
            builder = builder.bearer_auth(key);
        }
        let response = builder.send().await.map_err(|error| {
            ProviderError::from_reqwest("the speech-to-text request failed", &error)
        })?;
        self.answer(response, part).await
    }

    /// The answer to one request, or why it failed.
    async fn answer(
        &self,
        response: reqwest::Response,
        part: Part,
    ) -> Result<Answer, ProviderError> {
        let status = response.status();
        if status == reqwest::StatusCode::PAYLOAD_TOO_LARGE {
            return Err(ProviderError::permanent(format!(
                "the speech-to-text server refused {} as too large (413), although it is under \
                 TRANSCRIBE_MAX_UPLOAD_BYTES ({}); set TRANSCRIBE_MAX_UPLOAD_BYTES to the server's real limit",
                human_bytes(part.length),
                human_bytes(self.limit)
            )));
        }
        if !status.is_success() {
            return Err(ProviderError::from_response(
                "the speech-to-text request failed",
                response,
            )
            .await);
        }
        response
            .json::<Value>()
            .await
            .map(Answer::read)
            .map_err(|_| {
                ProviderError::transient("the speech-to-text server's answer was not JSON")
            })
    }
}

/// The audio being sent, and where.
struct Upload<'a> {
    client: &'a SpeechToText,
    audio: &'a Path,
    /// `<job id>.<extension>`: servers tell the format by the name.
    file_name: String,
    size: u64,
    limit: u64,
}

pub async fn transcribe(
    context: &StageContext,
    job: &Job,
    audio: &Path,
) -> StageResult<Transcript> {
    let client = context.services.speech_to_text.as_ref().ok_or_else(|| {
        StageError::failed("no OpenAI-compatible transcription server is configured")
    })?;
    let size = tokio::fs::metadata(audio)
        .await
        .map_err(|error| StageError::failed(format!("cannot read the audio: {error}")))?
        .len();
    let extension = audio
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let upload = Upload {
        client,
        audio,
        file_name: format!("{}.{extension}", job.id),
        size,
        limit: client.limit,
    };

    let parts = if size + ENVELOPE_BYTES <= upload.limit {
        vec![Part {
            offset: 0,
            length: size,
            duration_nanos: 0,
        }]
    } else {
        plan_split(context, &upload, &extension).await?
    };
    // Only audio sent in parts has answers worth keeping between attempts.
    let plan = if parts.len() > 1 {
        Some(plan_fingerprint(audio, &client.model, &parts).await?)
    } else {
        None
    };
    let answers = send_parts(context, job, &upload, &parts, plan.as_deref()).await?;
    Ok(join_answers(&parts, answers))
}

/// Every part's answer, in order: those kept for `plan` by an earlier attempt, then the rest
/// as the server gives them, each kept as it comes.
async fn send_parts(
    context: &StageContext,
    job: &Job,
    upload: &Upload<'_>,
    parts: &[Part],
    plan: Option<&str>,
) -> StageResult<Vec<Answer>> {
    let client = upload.client;
    let log_retry = |message: String| {
        context.retrying("openai_transcribe", format!("Speech-to-text: {message}"))
    };
    let mut answers = match plan {
        Some(plan) => finished_parts(context, job, plan, parts.len()).await,
        None => Vec::new(),
    };
    for (index, part) in parts.iter().enumerate().skip(answers.len()) {
        let sending = if parts.len() == 1 {
            format!(
                "Sending {} to {} ({})",
                human_bytes(upload.size),
                client.url,
                client.model
            )
        } else {
            format!(
                "Sending part {} of {} ({}, {}) to {}",
                index + 1,
                parts.len(),
                human_bytes(part.length),
                human_duration(part.duration_millis()),
                client.url
            )
        };
        context.log(sending).await;
        let answer = with_retry(
            &context.config.retry,
            || client.transcribe_part(upload.audio, &upload.file_name, *part),
            log_retry,
        )
        .await
        .map_err(|error| match (plan, index) {
            (None, _) => StageError::from(error),
            (Some(_), 0) => StageError::failed(format!("part 1 of {}: {error}", parts.len())),
            (Some(_), done) => StageError::failed(format!(
                "part {} of {}: {error} (the answers to {} are kept: a retry sends only the \
                 parts not yet done)",
                done + 1,
                parts.len(),
                first_parts(done)
            )),
        })?;
        if let Some(plan) = plan {
            keep_part(context, job, plan, index, &answer.raw).await;
        }
        answers.push(answer);
    }
    Ok(answers)
}

/// One transcript from the parts' answers, each part's times shifted by where it starts.
fn join_answers(parts: &[Part], answers: Vec<Answer>) -> Transcript {
    let mut utterances = Vec::new();
    let mut offset_millis = 0;
    for (part, answer) in parts.iter().zip(&answers) {
        utterances.extend(answer.utterances_from(offset_millis));
        // Provider durations drift; the frames' own count is exact.
        offset_millis += if part.duration_nanos > 0 {
            part.duration_millis()
        } else {
            answer.duration_millis.unwrap_or(0)
        };
    }
    let text = utterances
        .iter()
        .map(|u: &Utterance| u.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let raw: Vec<Value> = answers.into_iter().map(|answer| answer.raw).collect();
    Transcript {
        text,
        utterances,
        raw: serde_json::json!({ "parts": raw }),
    }
}

/// One part's answer as kept in `transcripts/<id>.part-<index>.json`, with the fingerprint of
/// the plan it belongs to.
#[derive(Debug, Serialize, Deserialize)]
struct FinishedPart {
    plan: String,
    answer: Value,
}

/// The SHA-256 of the audio's bytes, the model and the cuts: a kept answer counts only for
/// the same recording, sent to the same model in the same parts (another
/// TRANSCRIBE_MAX_UPLOAD_BYTES cuts other parts). Reads the whole file, off the runtime.
async fn plan_fingerprint(audio: &Path, model: &str, parts: &[Part]) -> StageResult<String> {
    let path = audio.to_path_buf();
    let mut hasher = Sha256::new();
    hasher.update(model.as_bytes());
    for part in parts {
        hasher.update(part.offset.to_le_bytes());
        hasher.update(part.length.to_le_bytes());
    }
    let digest = tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(path)?;
        std::io::copy(&mut file, &mut hasher)?;
        Ok::<_, std::io::Error>(hasher.finalize())
    })
    .await
    .map_err(|error| StageError::failed(format!("could not read the audio: {error}")))?
    .map_err(|error| StageError::failed(format!("could not read the audio: {error}")))?;
    Ok(digest.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// The answers kept for the first parts of this plan, in order, up to the first part without
/// one. Answers of another plan, or files that cannot be read, are not used (those parts are
/// sent again).
async fn finished_parts(
    context: &StageContext,
    job: &Job,
    plan: &str,
    count: usize,
) -> Vec<Answer> {
    let artifacts = context.store.artifacts();
    let mut answers = Vec::new();
    let mut stale = false;
    for index in 0..count {
        let relative = artifacts.transcript_part_relative(&job.id, index);
        let kept = match artifacts.read_text(Some(&relative)).await {
            Ok(Some(text)) => serde_json::from_str::<FinishedPart>(&text).ok(),
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(job = %job.id, %error, "could not read a kept part answer");
                None
            }
        };
        match kept {
            Some(kept) if kept.plan == plan => answers.push(Answer::read(kept.answer)),
            Some(_) => {
                stale = true;
                break;
            }
            None => break,
        }
    }
    if stale {
        context
            .log(
                "Answers kept from an earlier attempt are not used: the audio, the model or \
                 TRANSCRIBE_MAX_UPLOAD_BYTES has changed since",
            )
            .await;
    }
    if !answers.is_empty() {
        context
            .log(format!(
                "The answers to {} of {count} are kept from an earlier attempt: sending only the other {}",
                first_parts(answers.len()),
                count - answers.len()
            ))
            .await;
    }
    answers
}

/// Keeps a part's answer for a retry. A failure to keep it costs only a resend later, so it is
/// logged, not fatal.
async fn keep_part(context: &StageContext, job: &Job, plan: &str, index: usize, answer: &Value) {
    let artifacts = context.store.artifacts();
    let relative = artifacts.transcript_part_relative(&job.id, index);
    let kept = FinishedPart {
        plan: plan.to_string(),
        answer: answer.clone(),
    };
    let written = match serde_json::to_string(&kept) {
        Ok(text) => artifacts.write_text(&relative, text).await,
        Err(error) => Err(std::io::Error::other(error)),
    };
    if let Err(error) = written {
        tracing::warn!(job = %job.id, %error, "could not keep a part's answer for a retry");
    }
}

/// `part 1` or `parts 1 to 3`: the first `count` parts, for a sentence.
fn first_parts(count: usize) -> String {
    if count == 1 {
        "part 1".to_string()
    } else {
        format!("parts 1 to {count}")
    }
}

/// `4 min 05 s`, `17 s`: a part's length for the log.
fn human_duration(millis: u64) -> String {
    let seconds = millis / 1000;
    if seconds >= 60 {
        format!("{} min {:02} s", seconds / 60, seconds % 60)
    } else {
        format!("{seconds} s")
    }
}

/// The parts of an audio file above the limit, or a failure that says what to do.
async fn plan_split(
    context: &StageContext,
    upload: &Upload<'_>,
    extension: &str,
) -> StageResult<Vec<Part>> {
    let (size, limit) = (upload.size, upload.limit);
    let budget = limit.saturating_sub(ENVELOPE_BYTES);
    let cannot = |why: &str| {
        StageError::failed(format!(
            "the audio is {}, above the speech-to-text server's upload limit of {} \
             (TRANSCRIBE_MAX_UPLOAD_BYTES), and {why}; convert the recording to MP3 \
             (e.g. ffmpeg -i recording.{extension} -ac 1 -b:a 64k recording.mp3) so it can be \
             sent in parts, or use AssemblyAI (TRANSCRIBER=assemblyai), which takes large files",
            human_bytes(size),
            human_bytes(limit)
        ))
    };
    if !matches!(extension, "mp3" | "mpga" | "mpeg") {
        return Err(cannot(&format!(
            "only MP3 can be split automatically (this is .{extension})"
        )));
    }
    let path = upload.audio.to_path_buf();
    let plan = tokio::task::spawn_blocking(move || mp3::plan_file(&path, budget))
        .await
        .map_err(|error| StageError::failed(format!("could not read the audio: {error}")))?;
    let parts = match plan {
        Ok(parts) => parts,
        Err(error @ PlanError::Io(_)) => return Err(StageError::failed(error.to_string())),
        Err(error @ PlanError::NotMp3) => return Err(cannot(&error.to_string())),
        Err(PlanError::LimitTooSmall { shortest_millis }) => {
            return Err(limit_too_small(size, limit, shortest_millis));
        }
    };
    context
        .log(format!(
            "The audio ({}) is above the speech-to-text upload limit of {}: sending it in {} parts cut at MP3 frame boundaries, of about {} each",
            human_bytes(size),
            human_bytes(limit),
            parts.len(),
            human_bytes(size / parts.len() as u64)
        ))
        .await;
    Ok(parts)
}

/// The limit holds too little of this recording for parts servers accept.
fn limit_too_small(size: u64, limit: u64, shortest_millis: u64) -> StageError {
    let minimum = mp3::MIN_PART_NANOS / 1_000_000_000;
    let parts = if shortest_millis == 0 {
        "a single MP3 frame does not fit in it".to_string()
    } else {
        format!(
            "parts under it would last only {:.1} s",
            shortest_millis as f64 / 1000.0
        )
    };
    StageError::failed(format!(
        "the audio is {}, above the speech-to-text server's upload limit of {} \
         (TRANSCRIBE_MAX_UPLOAD_BYTES), and that limit is too small to send it in parts of at \
         least {minimum} s ({parts}; servers refuse or fail on very short audio); set \
         TRANSCRIBE_MAX_UPLOAD_BYTES to the server's real limit, or use AssemblyAI \
         (TRANSCRIBER=assemblyai), which takes large files",
        human_bytes(size),
        human_bytes(limit)
    ))
}

fn seconds_to_millis(seconds: f64) -> u64 {
    if seconds.is_finite() && seconds > 0.0 {
        (seconds * 1000.0).round() as u64
    } else {
        0
    }
}

/// The answer's segments as utterances, shifted by `offset` ms; without segments, the whole
/// text as one utterance.
fn segments(answer: &Value, offset: u64) -> Vec<Utterance> {
    let from_segments: Vec<Utterance> = answer
        .get("segments")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|segment| {
                    let text = segment.get("text")?.as_str()?.trim();
                    (!text.is_empty()).then(|| Utterance {
                        speaker: segment
                            .get("speaker")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        text: text.to_string(),
                        start: segment
                            .get("start")
                            .and_then(Value::as_f64)
                            .map(|s| offset + seconds_to_millis(s)),
                        end: segment
                            .get("end")
                            .and_then(Value::as_f64)
                            .map(|s| offset + seconds_to_millis(s)),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if !from_segments.is_empty() {
        return from_segments;
    }
    let text = answer
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim();
    if text.is_empty() {
        return Vec::new();
    }
    vec![Utterance {
        speaker: None,
        text: text.to_string(),
        start: Some(offset),
        end: answer
            .get("duration")
            .and_then(Value::as_f64)
            .map(|s| offset + seconds_to_millis(s)),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn segments_are_shifted_by_the_part_offset() {
        let answer = json!({
            "text": "Hello. World.",
            "segments": [
                { "start": 0.0, "end": 1.5, "text": " Hello." },
                { "start": 1.5, "end": 2.25, "text": "World. " },
                { "start": 2.25, "end": 3.0, "text": "  " }
            ]
        });
        let utterances = segments(&answer, 60_000);
        assert_eq!(utterances.len(), 2);
        assert_eq!(utterances[0].text, "Hello.");
        assert_eq!(utterances[0].start, Some(60_000));
        assert_eq!(utterances[1].end, Some(62_250));
        assert_eq!(utterances[1].speaker, None);
    }

    #[test]
    fn a_plain_answer_becomes_one_utterance() {
        let utterances = segments(&json!({ "text": " Just text ", "duration": 4.0 }), 1000);
        assert_eq!(utterances.len(), 1);
        assert_eq!(utterances[0].text, "Just text");
        assert_eq!(utterances[0].end, Some(5000));
        assert!(segments(&json!({ "text": "" }), 0).is_empty());
    }
}
