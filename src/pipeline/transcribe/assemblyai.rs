//! AssemblyAI's REST API: upload (streamed from disk), create a transcript with speaker labels,
//! poll it. The transcript's id is recorded as soon as it exists, so a restart polls the same
//! transcript instead of uploading the audio again.

use std::path::Path;

use serde_json::{Value, json};

use super::{Transcript, Utterance};
use crate::config::Config;
use crate::jobs::Job;
use crate::net::retry::{ProviderError, with_retry};
use crate::pipeline::download::human_bytes;
use crate::pipeline::{StageContext, StageError, StageResult};
use crate::store::Changes;

/// AssemblyAI's wire format: built once from the configuration, it uploads, creates and polls
/// transcripts and returns what they say as types. The stage below keeps the job's log.
#[derive(Clone)]
pub struct AssemblyAi {
    http: reqwest::Client,
    origin: String,
    key: String,
}

impl std::fmt::Debug for AssemblyAi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssemblyAi")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// What a transcript's status check found.
#[derive(Debug)]
pub enum Poll {
    /// Still queued or processing, with AssemblyAI's name for the state.
    Waiting(String),
    Completed(Transcript),
    /// AssemblyAI gave up on it, with its reason.
    Failed(String),
}

impl AssemblyAi {
    /// None without an API key.
    pub fn from_config(config: &Config, http: reqwest::Client) -> Option<Self> {
        Some(Self {
            http,
            origin: config.assemblyai_base_url.clone(),
            key: config.assemblyai_api_key.as_ref()?.expose().to_string(),
        })
    }

    /// Streams the audio file up; answers the URL AssemblyAI keeps it under.
    pub async fn upload(&self, audio: &Path, size: u64) -> Result<String, ProviderError> {
        let file = tokio::fs::File::open(audio)
            .await
            .map_err(|error| ProviderError::permanent(format!("cannot read the audio: {error}")))?;
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
            file,
            64 * 1024,
        ));
        let response = self
            .http
            .post(format!("{}/v2/upload", self.origin))
            .header(reqwest::header::AUTHORIZATION, &self.key)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(body)
            .send()
            .await
            .map_err(|error| ProviderError::from_reqwest("AssemblyAI upload failed", &error))?;
        let answer = json_answer("AssemblyAI upload failed", response).await?;
        string_field(&answer, "upload_url").ok_or_else(|| {
            ProviderError::permanent("AssemblyAI upload answered without an upload_url")
        })
    }

    /// Asks for a transcript with speaker labels; answers its id.
    pub async fn create(&self, upload_url: &str) -> Result<String, ProviderError> {
        const WHAT: &str = "AssemblyAI transcript request failed";
        let response = self
            .http
            .post(format!("{}/v2/transcript", self.origin))
            .header(reqwest::header::AUTHORIZATION, &self.key)
            .json(&json!({ "audio_url": upload_url, "speaker_labels": true }))
            .send()
            .await
            .map_err(|error| ProviderError::from_reqwest(WHAT, &error))?;
        let answer = json_answer(WHAT, response).await?;
        string_field(&answer, "id")
            .ok_or_else(|| ProviderError::permanent("AssemblyAI answered without a transcript id"))
    }

    pub async fn poll(&self, id: &str) -> Result<Poll, ProviderError> {
        const WHAT: &str = "AssemblyAI status check failed";
        let response = self
            .http
            .get(format!("{}/v2/transcript/{id}", self.origin))
            .header(reqwest::header::AUTHORIZATION, &self.key)
            .send()
            .await
            .map_err(|error| ProviderError::from_reqwest(WHAT, &error))?;
        let answer = json_answer(WHAT, response).await?;
        Ok(
            match string_field(&answer, "status").unwrap_or_default().as_str() {
                "completed" => Poll::Completed(parse_completed(answer)),
                "error" => Poll::Failed(
                    string_field(&answer, "error").unwrap_or_else(|| "no reason given".into()),
                ),
                status => Poll::Waiting(status.to_string()),
            },
        )
    }
}

fn string_field(answer: &Value, name: &str) -> Option<String> {
    answer.get(name).and_then(Value::as_str).map(str::to_string)
}

/// The stage's part: the transcript of `audio`, resuming the one a previous attempt created.
pub async fn transcribe(
    context: &StageContext,
    job: &Job,
    audio: &Path,
) -> StageResult<Transcript> {
    let client = context
        .services
        .assemblyai
        .as_ref()
        .ok_or_else(|| StageError::failed("no AssemblyAI key is configured"))?;
    let transcript_id = match &job.transcription_ref {
        Some(id) => {
            context
                .log(format!("Resuming: polling AssemblyAI transcript {id}"))
                .await;
            id.clone()
        }
        None => start(context, client, audio).await?,
    };
    wait_for(context, client, &transcript_id).await
}

/// Uploads the audio and creates its transcript, recording the transcript's id at once.
async fn start(context: &StageContext, client: &AssemblyAi, audio: &Path) -> StageResult<String> {
    let retry = &context.config.retry;
    let log_retry =
        |message: String| context.retrying("assemblyai", format!("AssemblyAI: {message}"));
    let size = tokio::fs::metadata(audio)
        .await
        .map_err(|error| StageError::failed(format!("cannot read the audio: {error}")))?
        .len();
    context
        .log(format!("Uploading {} to AssemblyAI", human_bytes(size)))
        .await;
    let upload_url = with_retry(retry, || client.upload(audio, size), log_retry).await?;
    let id = with_retry(retry, || client.create(&upload_url), log_retry).await?;
    context
        .update(Changes::new().transcription_ref(Some(id.clone())))
        .await?;
    context
        .log(format!(
            "AssemblyAI transcript {id} created; waiting for it"
        ))
        .await;
    Ok(id)
}

/// Polls the transcript until it is done, logging each new status.
async fn wait_for(
    context: &StageContext,
    client: &AssemblyAi,
    transcript_id: &str,
) -> StageResult<Transcript> {
    let log_retry =
        |message: String| context.retrying("assemblyai", format!("AssemblyAI: {message}"));
    let mut last_status = String::new();
    loop {
        let answer = with_retry(
            &context.config.retry,
            || client.poll(transcript_id),
            log_retry,
        )
        .await;
        match answer {
            Ok(Poll::Completed(transcript)) => return Ok(transcript),
            Ok(Poll::Failed(message)) => {
                context
                    .update(Changes::new().transcription_ref(None))
                    .await?;
                return Err(StageError::failed(format!(
                    "AssemblyAI could not transcribe the audio: {message}"
                )));
            }
            Ok(Poll::Waiting(status)) => {
                if status != last_status {
                    context.log(format!("AssemblyAI status: {status}")).await;
                    last_status = status;
                }
                tokio::time::sleep(context.config.assemblyai_poll_interval).await;
            }
            Err(error) => {
                if let ProviderError::Permanent { .. } = error {
                    // The transcript is gone or refused: a retry must start a new one.
                    context
                        .update(Changes::new().transcription_ref(None))
                        .await?;
                }
                return Err(error.into());
            }
        }
    }
}

async fn json_answer(what: &str, response: reqwest::Response) -> Result<Value, ProviderError> {
    if !response.status().is_success() {
        return Err(ProviderError::from_response(what, response).await);
    }
    response
        .json::<Value>()
        .await
        .map_err(|_| ProviderError::transient(format!("{what}: the answer was not JSON")))
}

fn parse_completed(answer: Value) -> Transcript {
    let text = answer
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let utterances = answer
        .get("utterances")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| {
                    Some(Utterance {
                        speaker: item.get("speaker").and_then(|s| match s {
                            Value::String(text) => Some(text.clone()),
                            Value::Number(number) => Some(number.to_string()),
                            _ => None,
                        }),
                        text: item.get("text")?.as_str()?.to_string(),
                        start: item.get("start").and_then(Value::as_u64),
                        end: item.get("end").and_then(Value::as_u64),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Transcript {
        text,
        utterances,
        raw: answer,
    }
}
