//! AssemblyAI's REST API: upload (streamed from disk), create a transcript with speaker labels,
//! poll it. The transcript's id is recorded as soon as it exists, so a restart polls the same
//! transcript instead of uploading the audio again.

use std::path::Path;

use serde_json::{Value, json};

use super::{Transcript, Utterance};
use crate::jobs::Job;
use crate::net::retry::{ProviderError, with_retry};
use crate::pipeline::download::human_bytes;
use crate::pipeline::{StageContext, StageError, StageResult};
use crate::store::Changes;

pub async fn transcribe(
    context: &StageContext,
    job: &Job,
    audio: &Path,
) -> StageResult<Transcript> {
    let config = &context.config;
    let key = config
        .assemblyai_api_key
        .as_ref()
        .ok_or_else(|| StageError::failed("no AssemblyAI key is configured"))?
        .expose()
        .to_string();
    let origin = config.assemblyai_base_url.clone();
    let client = &context.clients.trusted;
    let log_retry =
        |message: String| context.retrying("assemblyai", format!("AssemblyAI: {message}"));

    let transcript_id = match &job.transcription_ref {
        Some(id) => {
            context
                .log(format!("Resuming: polling AssemblyAI transcript {id}"))
                .await;
            id.clone()
        }
        None => {
            let size = tokio::fs::metadata(audio)
                .await
                .map_err(|error| StageError::failed(format!("cannot read the audio: {error}")))?
                .len();
            context
                .log(format!("Uploading {} to AssemblyAI", human_bytes(size)))
                .await;
            let upload_url = with_retry(
                &config.retry,
                || upload(client, &origin, &key, audio, size),
                log_retry,
            )
            .await?;
            let id = with_retry(
                &config.retry,
                || create(client, &origin, &key, &upload_url),
                log_retry,
            )
            .await?;
            context
                .update(Changes::new().transcription_ref(Some(id.clone())))
                .await?;
            context
                .log(format!(
                    "AssemblyAI transcript {id} created; waiting for it"
                ))
                .await;
            id
        }
    };

    let mut last_status = String::new();
    loop {
        let answer = with_retry(
            &config.retry,
            || poll(client, &origin, &key, &transcript_id),
            log_retry,
        )
        .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                if let ProviderError::Permanent { .. } = error {
                    // The transcript is gone or refused: a retry must start a new one.
                    context
                        .update(Changes::new().transcription_ref(None))
                        .await?;
                }
                return Err(error.into());
            }
        };
        let status = answer
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match status.as_str() {
            "completed" => return Ok(parse_completed(answer)),
            "error" => {
                context
                    .update(Changes::new().transcription_ref(None))
                    .await?;
                let message = answer
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given");
                return Err(StageError::failed(format!(
                    "AssemblyAI could not transcribe the audio: {message}"
                )));
            }
            _ => {
                if status != last_status {
                    context.log(format!("AssemblyAI status: {status}")).await;
                    last_status = status;
                }
                tokio::time::sleep(config.assemblyai_poll_interval).await;
            }
        }
    }
}

async fn upload(
    client: &reqwest::Client,
    origin: &str,
    key: &str,
    audio: &Path,
    size: u64,
) -> Result<String, ProviderError> {
    let file = tokio::fs::File::open(audio)
        .await
        .map_err(|error| ProviderError::permanent(format!("cannot read the audio: {error}")))?;
    let body =
        reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024));
    let response = client
        .post(format!("{origin}/v2/upload"))
        .header(reqwest::header::AUTHORIZATION, key)
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .header(reqwest::header::CONTENT_LENGTH, size)
        .body(body)
        .send()
        .await
        .map_err(|error| ProviderError::from_reqwest("AssemblyAI upload failed", &error))?;
    let answer = json_answer("AssemblyAI upload failed", response).await?;
    answer
        .get("upload_url")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ProviderError::permanent("AssemblyAI upload answered without an upload_url"))
}

async fn create(
    client: &reqwest::Client,
    origin: &str,
    key: &str,
    upload_url: &str,
) -> Result<String, ProviderError> {
    let response = client
        .post(format!("{origin}/v2/transcript"))
        .header(reqwest::header::AUTHORIZATION, key)
        .json(&json!({ "audio_url": upload_url, "speaker_labels": true }))
        .send()
        .await
        .map_err(|error| {
            ProviderError::from_reqwest("AssemblyAI transcript request failed", &error)
        })?;
    let answer = json_answer("AssemblyAI transcript request failed", response).await?;
    answer
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ProviderError::permanent("AssemblyAI answered without a transcript id"))
}

async fn poll(
    client: &reqwest::Client,
    origin: &str,
    key: &str,
    id: &str,
) -> Result<Value, ProviderError> {
    let response = client
        .get(format!("{origin}/v2/transcript/{id}"))
        .header(reqwest::header::AUTHORIZATION, key)
        .send()
        .await
        .map_err(|error| ProviderError::from_reqwest("AssemblyAI status check failed", &error))?;
    json_answer("AssemblyAI status check failed", response).await
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
