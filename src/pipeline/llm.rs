//! An OpenAI-compatible LLM, streamed, in either published wire format:
//! chat completions (`choices[0].delta.content` chunks, ending with `data: [DONE]`) or Responses
//! (`response.output_text.delta` events with `delta`, `response.output_text.done` with `text`).
//! Comments, keep-alives and lines that are not JSON are skipped.

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::config::{ApiStyle, Config};
use crate::net::retry::ProviderError;
use crate::net::sse::{SseEvent, SseParser};

#[derive(Clone)]
pub struct Llm {
    client: reqwest::Client,
    root: String,
    key: String,
    model: String,
    style: ApiStyle,
}

impl std::fmt::Debug for Llm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llm")
            .field("root", &self.root)
            .field("model", &self.model)
            .field("style", &self.style)
            .finish_non_exhaustive()
    }
}

/// How far a stream has got: enough to decide whether it ended properly.
#[derive(Default)]
struct StreamState {
    text: String,
    finished: bool,
}

impl Llm {
    /// None without an API key.
    pub fn from_config(config: &Config, client: reqwest::Client) -> Option<Self> {
        let key = config.openai_api_key.as_ref()?;
        Some(Self {
            client,
            root: config.openai_base_url.clone(),
            key: key.expose().to_string(),
            model: config.openai_model.clone(),
            style: config.openai_api_style,
        })
    }

    /// Sends one prompt and streams the answer; `progress` sees the text as it grows.
    pub async fn complete(
        &self,
        prompt: &str,
        progress: Option<&watch::Sender<String>>,
    ) -> Result<String, ProviderError> {
        let response = self.request(prompt).await?;
        let is_stream = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.contains("event-stream"));
        let text = if is_stream {
            self.read_stream(response, progress).await?
        } else {
            // Some compatible servers ignore `stream: true` and answer with one JSON object.
            let answer: Value = response.json().await.map_err(|_| {
                ProviderError::transient("the LLM answered with neither a stream nor JSON")
            })?;
            whole_answer_text(&answer)
                .ok_or_else(|| ProviderError::permanent("the LLM's answer holds no text"))?
        };
        if let Some(progress) = progress {
            progress.send_replace(text.clone());
        }
        Ok(text)
    }

    /// Posts the prompt in the configured wire format, asking for a stream; an answer other
    /// than a success is the error.
    async fn request(&self, prompt: &str) -> Result<reqwest::Response, ProviderError> {
        let (url, body) = match self.style {
            ApiStyle::Chat => (
                format!("{}/chat/completions", self.root),
                json!({
                    "model": self.model,
                    "messages": [{ "role": "user", "content": prompt }],
                    "stream": true,
                }),
            ),
            ApiStyle::Responses => (
                format!("{}/responses", self.root),
                json!({ "model": self.model, "input": prompt, "stream": true }),
            ),
        };
        let response = self
            .client
            .post(url)
            .bearer_auth(&self.key)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .json(&body)
            .send()
            .await
            .map_err(|error| ProviderError::from_reqwest("the LLM request failed", &error))?;
        if !response.status().is_success() {
            return Err(ProviderError::from_response("the LLM request failed", response).await);
        }
        Ok(response)
    }

    /// Reads the event stream to its end, showing `progress` the text as it grows.
    async fn read_stream(
        &self,
        mut response: reqwest::Response,
        progress: Option<&watch::Sender<String>>,
    ) -> Result<String, ProviderError> {
        let mut parser = SseParser::new();
        let mut state = StreamState::default();
        loop {
            let chunk = response.chunk().await.map_err(|error| {
                ProviderError::transient(format!(
                    "the LLM stream broke off: {}",
                    crate::net::describe_error(&error)
                ))
            })?;
            let events = match &chunk {
                Some(bytes) => parser.push(bytes),
                None => parser.finish().into_iter().collect(),
            };
            let before = state.text.len();
            for event in events {
                self.apply(&event, &mut state)?;
                if state.finished {
                    break;
                }
            }
            if state.text.len() != before
                && let Some(progress) = progress
            {
                progress.send_replace(state.text.clone());
            }
            if state.finished {
                return Ok(state.text);
            }
            if chunk.is_none() {
                return Err(ProviderError::transient(
                    "the LLM stream ended before it said it was done",
                ));
            }
        }
    }

    fn apply(&self, event: &SseEvent, state: &mut StreamState) -> Result<(), ProviderError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            state.finished = true;
            return Ok(());
        }
        let Ok(value) = serde_json::from_str::<Value>(data) else {
            tracing::debug!(line = %data.chars().take(80).collect::<String>(), "skipping a stream line that is not JSON");
            return Ok(());
        };
        if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .or_else(|| error.as_str())
                .unwrap_or("unknown error");
            return Err(ProviderError::permanent(format!(
                "the LLM reported an error: {message}"
            )));
        }
        match self.style {
            ApiStyle::Chat => {
                let choice = value.pointer("/choices/0");
                if let Some(content) = choice
                    .and_then(|c| c.pointer("/delta/content"))
                    .and_then(Value::as_str)
                {
                    state.text.push_str(content);
                }
                if choice
                    .and_then(|c| c.get("finish_reason"))
                    .is_some_and(|reason| !reason.is_null())
                {
                    // [DONE] normally follows; a server that omits it has still finished.
                    state.finished = true;
                }
            }
            ApiStyle::Responses => {
                let kind = value
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or(event.event.as_str());
                match kind {
                    "response.output_text.delta" => {
                        if let Some(delta) = value.get("delta").and_then(Value::as_str) {
                            state.text.push_str(delta);
                        }
                    }
                    "response.output_text.done" => {
                        if let Some(text) = value.get("text").and_then(Value::as_str) {
                            state.text = text.to_string();
                        }
                    }
                    "response.completed" => state.finished = true,
                    "response.failed" | "response.incomplete" => {
                        let message = value
                            .pointer("/response/error/message")
                            .or_else(|| value.pointer("/response/incomplete_details/reason"))
                            .and_then(Value::as_str)
                            .unwrap_or("no reason given");
                        return Err(ProviderError::permanent(format!(
                            "the LLM did not finish its answer: {message}"
                        )));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// The text of a non-streamed answer in either format.
fn whole_answer_text(answer: &Value) -> Option<String> {
    if let Some(text) = answer
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
    {
        return Some(text.to_string());
    }
    if let Some(text) = answer.get("output_text").and_then(Value::as_str) {
        return Some(text.to_string());
    }
    let parts: Vec<&str> = answer
        .get("output")?
        .as_array()?
        .iter()
        .filter_map(|item| item.get("content")?.as_array())
        .flatten()
        .filter_map(|part| part.get("text")?.as_str())
        .collect();
    (!parts.is_empty()).then(|| parts.concat())
}
