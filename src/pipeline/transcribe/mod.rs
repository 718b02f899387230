//! The transcribe stage: audio in, a speaker-labelled transcript out (`transcripts/<id>.txt`,
//! with the provider's raw utterances as JSON beside it).

pub mod assemblyai;

use serde::{Deserialize, Serialize};

use super::{StageContext, StageError, StageResult};
use crate::jobs::Job;
use crate::store::Changes;

/// One stretch of speech by one speaker. Times are milliseconds from the start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Utterance {
    pub speaker: Option<String>,
    pub text: String,
    #[serde(default)]
    pub start: Option<u64>,
    #[serde(default)]
    pub end: Option<u64>,
}

/// What a provider hands back.
#[derive(Debug, Clone)]
pub struct Transcript {
    /// The whole text, for when there are no utterances.
    pub text: String,
    pub utterances: Vec<Utterance>,
    /// The provider's answer as it came, kept beside the transcript.
    pub raw: serde_json::Value,
}

/// The configured transcription provider.
pub enum Transcriber {
    AssemblyAi,
    None { reason: &'static str },
}

impl Transcriber {
    pub fn from_config(config: &crate::config::Config) -> Self {
        if config.assemblyai_api_key.is_some() {
            Transcriber::AssemblyAi
        } else {
            Transcriber::None {
                reason: "no transcription provider is configured (set ASSEMBLYAI_API_KEY)",
            }
        }
    }
}

pub async fn run(context: &StageContext, job: &Job) -> StageResult<()> {
    let provider = Transcriber::from_config(&context.config);
    if let Transcriber::None { reason } = provider {
        context
            .log(format!("Transcription skipped: {reason}"))
            .await;
        return Ok(());
    }
    let artifacts = context.store.artifacts();
    let audio = job
        .file_path
        .as_deref()
        .and_then(|relative| artifacts.resolve(relative))
        .filter(|path| path.is_file())
        .ok_or_else(|| {
            StageError::failed(
                "the downloaded audio is missing; start the job over to download it again",
            )
        })?;

    let transcript = match provider {
        Transcriber::AssemblyAi => assemblyai::transcribe(context, job, &audio).await?,
        Transcriber::None { .. } => unreachable!("handled above"),
    };

    let text = format_transcript(&transcript);
    if text.trim().is_empty() {
        context
            .log("The transcript is empty: no speech was recognised")
            .await;
    }
    let transcript_path = artifacts.transcript_relative(&job.id);
    let utterances_path = artifacts.utterances_relative(&job.id);
    let raw = serde_json::json!({
        "utterances": transcript.utterances,
        "provider": transcript.raw,
    });
    artifacts
        .write_text(&utterances_path, raw.to_string())
        .await
        .map_err(|error| StageError::failed(format!("could not store the transcript: {error}")))?;
    artifacts
        .write_text(&transcript_path, text.clone())
        .await
        .map_err(|error| StageError::failed(format!("could not store the transcript: {error}")))?;
    context
        .update(Changes::new().transcript_path(Some(transcript_path)))
        .await?;
    context
        .store
        .index_transcript(&job.id, text.clone())
        .await?;
    context
        .log(format!(
            "Transcript saved: {} speaker turns, {} characters",
            transcript.utterances.len(),
            text.chars().count()
        ))
        .await;
    Ok(())
}

/// `[Speaker A]: …` blocks, one per turn; consecutive utterances of a speaker are merged.
pub fn format_transcript(transcript: &Transcript) -> String {
    if transcript.utterances.is_empty() {
        return transcript.text.trim().to_string();
    }
    let mut blocks: Vec<(Option<&str>, String)> = Vec::new();
    for utterance in &transcript.utterances {
        let text = utterance.text.trim();
        if text.is_empty() {
            continue;
        }
        let speaker = utterance.speaker.as_deref();
        match blocks.last_mut() {
            Some((last, block)) if *last == speaker => {
                block.push(' ');
                block.push_str(text);
            }
            _ => blocks.push((speaker, text.to_string())),
        }
    }
    blocks
        .into_iter()
        .map(|(speaker, text)| match speaker {
            Some(speaker) => format!("[Speaker {speaker}]: {text}"),
            None => text,
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utterance(speaker: &str, text: &str) -> Utterance {
        Utterance {
            speaker: Some(speaker.into()),
            text: text.into(),
            start: None,
            end: None,
        }
    }

    #[test]
    fn consecutive_utterances_of_a_speaker_are_merged() {
        let transcript = Transcript {
            text: String::new(),
            utterances: vec![
                utterance("A", "Hello."),
                utterance("A", "Shall we start?"),
                utterance("B", "Yes."),
                utterance("A", "Good."),
            ],
            raw: serde_json::Value::Null,
        };
        assert_eq!(
            format_transcript(&transcript),
            "[Speaker A]: Hello. Shall we start?\n\n[Speaker B]: Yes.\n\n[Speaker A]: Good."
        );
    }

    #[test]
    fn without_utterances_the_text_is_used() {
        let transcript = Transcript {
            text: " just text ".into(),
            utterances: vec![],
            raw: serde_json::Value::Null,
        };
        assert_eq!(format_transcript(&transcript), "just text");
    }
}
