//! The passages index behind Ask: a completed job's transcript in whole speaker turns, with
//! their start times, full-text indexed (and, with an embeddings model, with a vector each),
//! and the questions people asked with their answers. Types and the parts every backend
//! shares; the SQL is in each backend's `passages` module.

use crate::jobs::{JobId, SpeakerNames};

/// One speaker turn to index.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPassage {
    /// Its place in the transcript (0 first).
    pub seq: i64,
    /// The heading in the stored transcript: `Speaker A`, or a name a caption file gave.
    pub label: Option<String>,
    /// The words.
    pub text: String,
    /// When the turn starts, in ms from the recording's start, when the provider said.
    pub start_ms: Option<i64>,
}

/// A passage as Ask shows it, with its meeting.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    pub id: i64,
    pub job_id: JobId,
    pub title: Option<String>,
    pub meeting_date: Option<String>,
    /// The speaker as shown: a name people gave, else the transcript's heading.
    pub speaker: Option<String>,
    pub start_ms: Option<i64>,
    pub text: String,
}

/// Which passages a question reads: all, or those of some jobs, and of meetings in a time span
/// (ms since the epoch, on the job's meeting date or, without one, its creation time).
#[derive(Debug, Clone, Default)]
pub struct PassageScope {
    pub jobs: Vec<JobId>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

/// A question asked and its answer (JSON, as the API returned it), kept so a person can come
/// back to it.
#[derive(Debug, Clone, PartialEq)]
pub struct AskRecord {
    pub id: String,
    /// The meeting it was about, when it was about one.
    pub job_id: Option<JobId>,
    pub question: String,
    pub answer: String,
    pub created_at: i64,
}

/// The speaker as shown for a transcript heading: `names` has `"A": "Ana"` for `Speaker A`
/// (as [`crate::pipeline::transcribe::apply_speaker_names`] does it for the transcript).
pub fn shown_speaker(label: &str, names: &SpeakerNames) -> String {
    let short = label.strip_prefix("Speaker ").unwrap_or(label);
    names
        .get(short)
        .or_else(|| names.get(label))
        .cloned()
        .unwrap_or_else(|| label.to_string())
}

/// Words too common to say anything about which passage answers a question. Left out of the
/// full-text query: with OR between the words, each of them would match most passages, and
/// ranking (and its time) would be spent on them.
const STOPWORDS: &[&str] = &[
    "a", "about", "all", "am", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by",
    "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "he", "her", "his",
    "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "no", "not", "of", "on", "or",
    "our", "say", "said", "she", "so", "that", "the", "their", "them", "then", "there", "they",
    "this", "to", "us", "was", "we", "were", "what", "when", "where", "which", "who", "whom",
    "why", "will", "with", "would", "you", "your",
];

/// The words of a question that can find passages: letters and digits only (so no word can be
/// query syntax in either database), lowercased, common words and repeats left out, at most 24.
pub fn question_words(question: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in question.split(|c: char| !c.is_alphanumeric()) {
        let word = word.to_lowercase();
        if word.is_empty() || STOPWORDS.contains(&word.as_str()) || words.contains(&word) {
            continue;
        }
        words.push(word);
        if words.len() == 24 {
            break;
        }
    }
    words
}

/// A vector as stored: little-endian f32s.
pub fn vector_bytes(vector: &[f32]) -> Vec<u8> {
    vector
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect()
}

/// A stored vector; None for bytes that are not whole f32s.
pub fn vector_from_bytes(bytes: &[u8]) -> Option<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_question_keeps_its_telling_words() {
        assert_eq!(
            question_words("What did we decide about the vendor freeze? Vendor!"),
            ["decide", "vendor", "freeze"]
        );
        assert_eq!(
            question_words("\"x\" OR (y*) NEAR z^"),
            ["x", "y", "near", "z"]
        );
        assert!(question_words("what was it?").is_empty());
    }

    #[test]
    fn names_replace_labels() {
        let names: SpeakerNames = [("A".to_string(), "Ana".to_string())].into();
        assert_eq!(shown_speaker("Speaker A", &names), "Ana");
        assert_eq!(shown_speaker("Speaker B", &names), "Speaker B");
        assert_eq!(shown_speaker("Bob", &names), "Bob");
    }

    #[test]
    fn vectors_round_trip() {
        let vector = vec![0.5, -1.25, 3.0];
        assert_eq!(vector_from_bytes(&vector_bytes(&vector)), Some(vector));
        assert_eq!(vector_from_bytes(&[1, 2, 3]), None);
    }
}
