//! OpenAI-compatible speech-to-text (`POST {root}/audio/transcriptions`, multipart), which
//! OpenAI and local whisper servers speak. `verbose_json` gives segments with start and end
//! seconds. Audio above the server's upload limit is sent in parts when it is MP3 (cut at frame
//! boundaries, see [`super::mp3`]); the segments are joined with each part's offset added.
//! Every part streams from disk.

use std::path::Path;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::mp3::{self, Part};
use super::{Transcript, Utterance};
use crate::jobs::Job;
use crate::net::retry::{ProviderError, with_retry};
use crate::pipeline::download::human_bytes;
use crate::pipeline::{StageContext, StageError, StageResult};

/// Room left under the limit for the multipart envelope (boundaries, headers, form fields).
const ENVELOPE_BYTES: u64 = 16 * 1024;

/// What the request needs, read once from the configuration.
struct Endpoint {
    url: String,
    key: Option<String>,
    model: String,
}

pub async fn transcribe(
    context: &StageContext,
    job: &Job,
    audio: &Path,
) -> StageResult<Transcript> {
    let config = &context.config;
    let root = config.transcribe_base_url.as_deref().ok_or_else(|| {
        StageError::failed("no OpenAI-compatible transcription server is configured")
    })?;
    let endpoint = Endpoint {
        url: format!("{root}/audio/transcriptions"),
        key: config
            .transcribe_api_key
            .as_ref()
            .map(|key| key.expose().to_string()),
        model: config.transcribe_model.clone(),
    };
    let size = tokio::fs::metadata(audio)
        .await
        .map_err(|error| StageError::failed(format!("cannot read the audio: {error}")))?
        .len();
    let limit = config.transcribe_max_upload_bytes;
    let extension = audio
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let file_name = format!("{}.{extension}", job.id);

    let parts = if size + ENVELOPE_BYTES <= limit {
        vec![Part {
            offset: 0,
            length: size,
            duration_nanos: 0,
        }]
    } else {
        plan_split(context, audio, size, limit, &extension).await?
    };
    let log_retry = |message: String| {
        context.retrying("openai_transcribe", format!("Speech-to-text: {message}"))
    };

    let mut utterances = Vec::new();
    let mut answers = Vec::new();
    let mut offset_millis = 0;
    for (index, part) in parts.iter().enumerate() {
        if parts.len() == 1 {
            context
                .log(format!(
                    "Sending {} to {} ({})",
                    human_bytes(size),
                    endpoint.url,
                    endpoint.model
                ))
                .await;
        } else {
            context
                .log(format!(
                    "Sending part {} of {} ({}) to {}",
                    index + 1,
                    parts.len(),
                    human_bytes(part.length),
                    endpoint.url
                ))
                .await;
        }
        let answer = with_retry(
            &config.retry,
            || request(context, &endpoint, audio, *part, &file_name, limit),
            log_retry,
        )
        .await?;
        utterances.extend(segments(&answer, offset_millis));
        // Provider durations drift; the frames' own count is exact.
        offset_millis += if part.duration_nanos > 0 {
            part.duration_millis()
        } else {
            answer
                .get("duration")
                .and_then(Value::as_f64)
                .map(seconds_to_millis)
                .unwrap_or(0)
        };
        answers.push(answer);
    }
    let text = utterances
        .iter()
        .map(|u: &Utterance| u.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Transcript {
        text,
        utterances,
        raw: serde_json::json!({ "parts": answers }),
    })
}

/// The parts of an audio file above the limit, or a failure that says what to do.
async fn plan_split(
    context: &StageContext,
    audio: &Path,
    size: u64,
    limit: u64,
    extension: &str,
) -> StageResult<Vec<Part>> {
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
    let path = audio.to_path_buf();
    let plan = tokio::task::spawn_blocking(move || mp3::plan_file(&path, budget))
        .await
        .map_err(|error| StageError::failed(format!("could not read the audio: {error}")))?
        .map_err(|error| StageError::failed(format!("could not read the audio: {error}")))?;
    let Some(parts) = plan else {
        return Err(cannot("its MP3 frames could not be read to split it"));
    };
    context
        .log(format!(
            "The audio ({}) is above the speech-to-text upload limit of {}: sending it in {} parts cut at MP3 frame boundaries",
            human_bytes(size),
            human_bytes(limit),
            parts.len()
        ))
        .await;
    Ok(parts)
}

async fn request(
    context: &StageContext,
    endpoint: &Endpoint,
    audio: &Path,
    part: Part,
    file_name: &str,
    limit: u64,
) -> Result<Value, ProviderError> {
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
        .text("model", endpoint.model.clone())
        .text("response_format", "verbose_json")
        .part("file", file_part);
    let mut builder = context.clients.trusted.post(&endpoint.url).multipart(form);
    if let Some(key) = &endpoint.key {
        builder = builder.bearer_auth(key);
    }
    let response = builder.send().await.map_err(|error| {
        ProviderError::from_reqwest("the speech-to-text request failed", &error)
    })?;
    let status = response.status();
    if status == reqwest::StatusCode::PAYLOAD_TOO_LARGE {
        return Err(ProviderError::permanent(format!(
            "the speech-to-text server refused {} as too large (413), although it is under \
             TRANSCRIBE_MAX_UPLOAD_BYTES ({}); set TRANSCRIBE_MAX_UPLOAD_BYTES to the server's real limit",
            human_bytes(part.length),
            human_bytes(limit)
        )));
    }
    if !status.is_success() {
        return Err(
            ProviderError::from_response("the speech-to-text request failed", response).await,
        );
    }
    response
        .json::<Value>()
        .await
        .map_err(|_| ProviderError::transient("the speech-to-text server's answer was not JSON"))
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
