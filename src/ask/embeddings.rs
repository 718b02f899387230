//! Vectors from an OpenAI-compatible `/embeddings` endpoint (`EMBEDDINGS_MODEL`, at
//! `EMBEDDINGS_BASE_URL` or else `OPENAI_BASE_URL`), for Ask's ranking by meaning.

use serde_json::{Value, json};

use crate::config::Config;
use crate::net::retry::ProviderError;

#[derive(Clone)]
pub struct Embedder {
    client: reqwest::Client,
    url: String,
    key: Option<String>,
    model: String,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("url", &self.url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

/// How many texts go in one request.
pub const BATCH: usize = 64;

impl Embedder {
    /// None without `EMBEDDINGS_MODEL`. The key is `OPENAI_API_KEY` when set (a local server
    /// needs none).
    pub fn from_config(config: &Config, client: reqwest::Client) -> Option<Self> {
        let model = config.embeddings_model.clone()?;
        let root = config
            .embeddings_base_url
            .clone()
            .unwrap_or_else(|| config.openai_base_url.clone());
        Some(Self {
            client,
            url: format!("{root}/embeddings"),
            key: config
                .openai_api_key
                .as_ref()
                .map(|key| key.expose().to_string()),
            model,
        })
    }

    /// One vector per text, in order.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ProviderError> {
        let mut request = self
            .client
            .post(&self.url)
            .json(&json!({ "model": self.model, "input": texts }));
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|error| {
            ProviderError::from_reqwest("the embeddings request failed", &error)
        })?;
        if !response.status().is_success() {
            return Err(
                ProviderError::from_response("the embeddings request failed", response).await,
            );
        }
        let answer: Value = response.json().await.map_err(|_| {
            ProviderError::transient(
                "the embeddings server answered with something other than JSON",
            )
        })?;
        vectors_of(&answer, texts.len())
    }
}

/// The vectors of an answer, put in input order by their `index`; every one must be there,
/// of one length, finite.
fn vectors_of(answer: &Value, count: usize) -> Result<Vec<Vec<f32>>, ProviderError> {
    let bad = |what: &str| ProviderError::permanent(format!("the embeddings answer {what}"));
    let data = answer
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("has no \"data\" list"))?;
    let mut vectors: Vec<Option<Vec<f32>>> = vec![None; count];
    for (position, item) in data.iter().enumerate() {
        let index = item
            .get("index")
            .and_then(Value::as_u64)
            .map(|index| index as usize)
            .unwrap_or(position);
        let values = item
            .get("embedding")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("has an item without an \"embedding\" list"))?;
        let vector = values
            .iter()
            .map(|value| value.as_f64().map(|number| number as f32))
            .collect::<Option<Vec<f32>>>()
            .filter(|vector| !vector.is_empty() && vector.iter().all(|v| v.is_finite()))
            .ok_or_else(|| bad("has an embedding that is not a list of numbers"))?;
        let slot = vectors
            .get_mut(index)
            .ok_or_else(|| bad("has more vectors than texts were sent"))?;
        *slot = Some(vector);
    }
    let vectors: Vec<Vec<f32>> = vectors
        .into_iter()
        .collect::<Option<_>>()
        .ok_or_else(|| bad("is missing vectors for some texts"))?;
    if vectors
        .windows(2)
        .any(|pair| pair[0].len() != pair[1].len())
    {
        return Err(bad("has vectors of different lengths"));
    }
    Ok(vectors)
}

/// Cosine similarity; 0 for vectors of different lengths or no length.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut aa, mut bb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        dot / (aa.sqrt() * bb.sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_come_back_in_input_order() {
        let answer = json!({"data": [
            {"index": 1, "embedding": [0.0, 1.0]},
            {"index": 0, "embedding": [1.0, 0.0]},
        ]});
        assert_eq!(
            vectors_of(&answer, 2).unwrap(),
            vec![vec![1.0, 0.0], vec![0.0, 1.0]]
        );
    }

    #[test]
    fn a_garbled_answer_is_an_error_not_a_panic() {
        for answer in [
            json!({}),
            json!({"data": [{"index": 0}]}),
            json!({"data": [{"index": 0, "embedding": ["x"]}]}),
            json!({"data": [{"index": 7, "embedding": [1.0]}]}),
            json!({"data": [{"index": 0, "embedding": [1.0]}]}),
            json!({"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [1.0, 2.0]}]}),
        ] {
            assert!(vectors_of(&answer, 2).is_err(), "{answer}");
        }
    }

    #[test]
    fn cosine_of_alike_and_unlike() {
        assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 1.0]), 0.0);
        assert_eq!(cosine(&[1.0], &[1.0, 2.0]), 0.0);
    }
}
