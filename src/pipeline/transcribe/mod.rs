//! The transcribe stage: audio in, a speaker-labelled transcript out (`transcripts/<id>.txt`,
//! with the provider's raw utterances as JSON beside it).

pub mod assemblyai;
pub mod captions;
pub mod mp3;
pub mod openai;

use serde::{Deserialize, Serialize};

use super::{StageContext, StageError, StageResult};
use crate::config::TranscriberChoice;
use crate::jobs::{Job, JobId, SpeakerNames};
use crate::store::Artifacts;
use crate::store::Changes;

/// One stretch of speech by one speaker. Times are milliseconds from the start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Utterance {
    pub speaker: Option<String>,
    pub text: String,
    #[serde(default)]
    pub start: Option<u64>,
    #[serde(default)]
    pub end: Option<u64>,
}

/// An utterance with both times, for the tests of the caption reader and the exports.
#[cfg(test)]
pub(crate) fn timed_utterance(
    speaker: Option<&str>,
    text: &str,
    start: u64,
    end: u64,
) -> Utterance {
    Utterance {
        speaker: speaker.map(str::to_string),
        text: text.into(),
        start: Some(start),
        end: Some(end),
    }
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
    /// An OpenAI-compatible `/audio/transcriptions` endpoint (OpenAI, local whisper servers).
    OpenAi,
    None {
        reason: &'static str,
    },
}

impl Transcriber {
    pub fn from_config(config: &crate::config::Config) -> Self {
        match config.transcriber() {
            TranscriberChoice::AssemblyAi => Transcriber::AssemblyAi,
            TranscriberChoice::OpenAi => Transcriber::OpenAi,
            TranscriberChoice::None => Transcriber::None {
                reason: if config.transcriber == TranscriberChoice::None {
                    "transcription is turned off in the server's settings"
                } else {
                    "no transcription provider is configured (AssemblyAI, or an OpenAI-compatible server)"
                },
            },
            TranscriberChoice::Auto => unreachable!("Config::transcriber resolves auto"),
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
    // With a bucket this is a temporary local copy (the providers upload or split a file),
    // removed when `audio` is dropped at the end of this stage, whatever its outcome.
    let audio = artifacts
        .local_audio(&job.id, job.file_path.as_deref())
        .await
        .map_err(|error| {
            StageError::failed(format!("could not read the downloaded audio: {error}"))
        })?
        .ok_or_else(|| {
            StageError::failed(
                "the downloaded audio is missing; start the job over to download it again",
            )
        })?;

    let transcript = match provider {
        Transcriber::AssemblyAi => assemblyai::transcribe(context, job, audio.path()).await?,
        Transcriber::OpenAi => openai::transcribe(context, job, audio.path()).await?,
        Transcriber::None { .. } => unreachable!("handled above"),
    };
    drop(audio);
    save(context, job, transcript).await?;
    // The answers kept for parts of split audio are in the saved transcript now.
    artifacts.remove_transcript_parts(&job.id).await;
    Ok(())
}

/// Writes the transcript (`transcripts/<id>.txt`) and its utterances beside it, and records
/// the path on the job.
pub async fn save(context: &StageContext, job: &Job, transcript: Transcript) -> StageResult<()> {
    let artifacts = context.store.artifacts();
    let turns = transcript.utterances.len();
    let (transcript_path, text) = write_files(artifacts, &job.id, transcript)
        .await
        .map_err(|error| StageError::failed(format!("could not store the transcript: {error}")))?;
    if text.trim().is_empty() {
        context
            .log("The transcript is empty: no speech was recognised")
            .await;
    }
    context
        .update(Changes::new().transcript_path(Some(transcript_path)))
        .await?;
    context.held.index_transcript(text.clone()).await?;
    context
        .log(format!(
            "Transcript saved: {turns} speaker turns, {} characters",
            text.chars().count()
        ))
        .await;
    Ok(())
}

/// Writes `transcripts/<id>.json` (the utterances and the provider's answer), then
/// `transcripts/<id>.txt`; returns the transcript's relative path and its text. The text and
/// the JSON are made off the async runtime: an hour's transcript is megabytes of formatting.
pub async fn write_files(
    artifacts: &Artifacts,
    id: &JobId,
    transcript: Transcript,
) -> std::io::Result<(String, String)> {
    let (text, raw) = tokio::task::spawn_blocking(move || {
        let text = format_transcript(&transcript);
        let raw = serde_json::json!({
            "utterances": transcript.utterances,
            "provider": transcript.raw,
        });
        (text, raw.to_string())
    })
    .await
    .map_err(std::io::Error::other)?;
    let transcript_path = artifacts.transcript_relative(id);
    let utterances_path = artifacts.utterances_relative(id);
    artifacts.write_text(&utterances_path, raw).await?;
    artifacts.write_text(&transcript_path, text.clone()).await?;
    Ok((transcript_path, text))
}

/// The blocks of a stored transcript (as [`format_transcript`] writes it), separated by a blank
/// line: `[Heading]: words` gives the heading and the words; a block without a heading (or with
/// one over 60 characters, not bytes: "名字" is six) is `None` and the whole block.
pub fn transcript_blocks(transcript: &str) -> impl Iterator<Item = (Option<String>, String)> + '_ {
    transcript
        .split("\n\n")
        .map(str::trim)
        .filter(|block| !block.is_empty())
        .map(|block| {
            let labelled = block.strip_prefix('[').and_then(|rest| {
                let (heading, text) = rest.split_once("]:")?;
                (!heading.is_empty() && heading.chars().count() <= 60 && !heading.contains('\n'))
                    .then(|| (heading.trim().to_string(), text.trim().to_string()))
            });
            match labelled {
                Some((heading, text)) => (Some(heading), text),
                None => (None, block.to_string()),
            }
        })
}

/// Each block's start from the provider's utterances, grouped into blocks as
/// [`format_transcript`] groups them (empty ones left out, one speaker's run joined); None when
/// they do not line up with the `count` blocks of the stored text.
pub fn turn_starts(utterances: &[Utterance], count: usize) -> Option<Vec<Option<u64>>> {
    let mut starts: Vec<Option<u64>> = Vec::new();
    let mut last: Option<Option<&str>> = None;
    for utterance in utterances {
        if utterance.text.trim().is_empty() {
            continue;
        }
        let speaker = utterance.speaker.as_deref();
        if last != Some(speaker) {
            starts.push(utterance.start);
            last = Some(speaker);
        }
    }
    (starts.len() == count).then_some(starts)
}

/// `[Speaker A]` for a provider's label, `[Ana]` for a name a caption file gave.
pub fn speaker_heading(speaker: &str) -> String {
    if captions::is_label(speaker) {
        format!("[Speaker {speaker}]")
    } else {
        format!("[{speaker}]")
    }
}

/// The transcript with people's names in place of speaker labels: a block that starts with
/// `[Speaker A]:` (or `[A]:`) becomes `[Ana]:` when `names` has `"A": "Ana"`. Only the
/// heading of a block changes, never the words spoken.
pub fn apply_speaker_names(transcript: &str, names: &SpeakerNames) -> String {
    if names.is_empty() {
        return transcript.to_string();
    }
    let mut out = String::with_capacity(transcript.len());
    let mut block_start = true;
    for line in transcript.split_inclusive('\n') {
        if block_start
            && let Some(rest) = line.strip_prefix('[')
            && let Some((heading, after)) = rest.split_once("]:")
        {
            let label = heading.strip_prefix("Speaker ").unwrap_or(heading);
            let name = names.get(label).or_else(|| names.get(heading));
            if let Some(name) = name {
                out.push('[');
                out.push_str(name);
                out.push_str("]:");
                out.push_str(after);
                block_start = line.trim().is_empty();
                continue;
            }
        }
        out.push_str(line);
        block_start = line.trim().is_empty();
    }
    out
}

/// The speaker labels of a formatted transcript, in order of first appearance.
pub fn speakers_in(transcript: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut block_start = true;
    for line in transcript.lines() {
        if block_start
            && let Some(rest) = line.strip_prefix('[')
            && let Some((heading, _)) = rest.split_once("]:")
        {
            let label = heading
                .strip_prefix("Speaker ")
                .filter(|label| captions::is_label(label))
                .unwrap_or(heading)
                .to_string();
            if !found.contains(&label) {
                found.push(label);
            }
        }
        block_start = line.trim().is_empty();
    }
    found
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
            Some(speaker) => format!("{}: {text}", speaker_heading(speaker)),
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
    fn names_replace_labels_only_in_headings() {
        let transcript =
            "[Speaker A]: Hello [Speaker B]: inside.\n\n[Speaker B]: Yes.\nmore\n\n[Cleo]: Hi.";
        let names: SpeakerNames = [
            ("A".to_string(), "Ana".to_string()),
            ("Cleo".into(), "Cleo P".into()),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            apply_speaker_names(transcript, &names),
            "[Ana]: Hello [Speaker B]: inside.\n\n[Speaker B]: Yes.\nmore\n\n[Cleo P]: Hi."
        );
        assert_eq!(speakers_in(transcript), vec!["A", "B", "Cleo"]);
        let named = Transcript {
            text: String::new(),
            utterances: vec![utterance("Ana", "Hi."), utterance("B", "Yo.")],
            raw: serde_json::Value::Null,
        };
        assert_eq!(format_transcript(&named), "[Ana]: Hi.\n\n[Speaker B]: Yo.");
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
