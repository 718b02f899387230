//! Transcripts people bring along: WebVTT and SRT caption files and plain text.
//!
//! Each becomes [`Utterance`]s (times in milliseconds, a speaker when the file names one) that
//! the rest of the pipeline treats like a provider's answer. Speakers come from WebVTT voice
//! tags (`<v Ana>`), or from a `Name: text` (or `[Name]: text`) prefix in any of the formats.
//! Parsing is lenient about what real files get wrong (a BOM, CRLF, a missing blank line, a
//! comma before the milliseconds, hours beyond 99) and strict about what would lose or garble
//! text: a line that belongs to no cue, or a timestamp that cannot be read, is an error that
//! names the line.

use std::fmt;

use super::{Transcript, Utterance};

/// What kind of transcript a file or a pasted text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptionFormat {
    WebVtt,
    Srt,
    Text,
}

impl CaptionFormat {
    /// By file extension (`.vtt`, `.srt`, `.txt`); None for any other extension.
    pub fn from_file_name(name: &str) -> Option<Self> {
        let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match extension.as_str() {
            "vtt" | "webvtt" => Some(Self::WebVtt),
            "srt" => Some(Self::Srt),
            "txt" | "text" | "md" => Some(Self::Text),
            _ => None,
        }
    }

    /// By content, for pasted text: a `WEBVTT` header, else cue timing lines, else plain text.
    pub fn sniff(text: &str) -> Self {
        let text = text.trim_start_matches('\u{feff}').trim_start();
        if text.starts_with("WEBVTT") {
            Self::WebVtt
        } else if text.lines().take(20).any(|line| line.contains("-->")) {
            Self::Srt
        } else {
            Self::Text
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::WebVtt => "WebVTT",
            Self::Srt => "SRT",
            Self::Text => "text",
        }
    }
}

/// Why a transcript file could not be read; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptionError {
    pub line: Option<usize>,
    pub message: String,
}

impl CaptionError {
    fn at(line: usize, message: impl Into<String>) -> Self {
        Self {
            line: Some(line),
            message: message.into(),
        }
    }

    fn whole(message: impl Into<String>) -> Self {
        Self {
            line: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for CaptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for CaptionError {}

/// Parses a transcript in the given format.
pub fn parse(format: CaptionFormat, text: &str) -> Result<Transcript, CaptionError> {
    let text = normalise(text);
    if text.trim().is_empty() {
        return Err(CaptionError::whole("the transcript is empty"));
    }
    let transcript = match format {
        CaptionFormat::WebVtt => cues_transcript(parse_webvtt(&text)?),
        CaptionFormat::Srt => cues_transcript(parse_srt(&text)?),
        CaptionFormat::Text => parse_text(&text),
    };
    if transcript.text.trim().is_empty()
        && transcript
            .utterances
            .iter()
            .all(|u| u.text.trim().is_empty())
    {
        return Err(CaptionError::whole(format!(
            "the {} file holds no transcript text",
            format.name()
        )));
    }
    Ok(transcript)
}

fn cues_transcript(utterances: Vec<Utterance>) -> Transcript {
    let text = utterances
        .iter()
        .map(|u| u.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    Transcript {
        text,
        utterances,
        raw: serde_json::Value::Null,
    }
}

/// Without a BOM, with `\n` line ends only.
fn normalise(text: &str) -> String {
    text.trim_start_matches('\u{feff}')
        .replace("\r\n", "\n")
        .replace('\r', "\n")
}

/// A caption timestamp in milliseconds: `[h:]mm:ss[.fff]` with a dot or a comma before the
/// fraction, any number of hour digits, and 1–3 (or more, truncated) fraction digits.
pub fn parse_timestamp(value: &str) -> Option<u64> {
    let value = value.trim();
    let (clock, fraction) = match value.rfind(['.', ',']) {
        Some(index) => (&value[..index], Some(&value[index + 1..])),
        None => (value, None),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let number = |part: &str, max_digits: usize| -> Option<u64> {
        (!part.is_empty() && part.len() <= max_digits && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse().ok())
            .flatten()
    };
    let (hours, minutes, seconds) = match parts.as_slice() {
        [minutes, seconds] => (0, number(minutes, 4)?, number(seconds, 2)?),
        [hours, minutes, seconds] => (number(hours, 6)?, number(minutes, 2)?, number(seconds, 2)?),
        _ => return None,
    };
    if seconds >= 60 || (parts.len() == 3 && minutes >= 60) {
        return None;
    }
    let millis = match fraction {
        None => 0,
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            let padded: String = digits.chars().chain("000".chars()).take(3).collect();
            padded.parse().ok()?
        }
        Some(_) => return None,
    };
    Some(((hours * 60 + minutes) * 60 + seconds) * 1000 + millis)
}

/// `00:00:01.000 --> 00:00:04.000 align:start` → (1000, 4000); settings are ignored.
fn parse_timing(line: &str, line_number: usize) -> Result<(u64, u64), CaptionError> {
    let (start, rest) = line
        .split_once("-->")
        .ok_or_else(|| CaptionError::at(line_number, "not a cue timing line"))?;
    let end = rest.split_whitespace().next().unwrap_or("");
    let read = |value: &str, which: &str| {
        parse_timestamp(value).ok_or_else(|| {
            CaptionError::at(
                line_number,
                format!(
                    "the cue's {which} time {:?} is not a timestamp (expected e.g. 00:01:02.500)",
                    value.trim()
                ),
            )
        })
    };
    let start = read(start, "start")?;
    let end = read(end, "end")?;
    if end < start {
        return Err(CaptionError::at(
            line_number,
            format!(
                "the cue ends ({}) before it starts ({})",
                format_timestamp(end),
                format_timestamp(start)
            ),
        ));
    }
    Ok((start, end))
}

/// `hh:mm:ss.mmm`, for messages.
pub fn format_timestamp(millis: u64) -> String {
    let seconds = millis / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60,
        millis % 1000
    )
}

/// A cue as read, before its text is cleaned.
struct RawCue {
    start: u64,
    end: u64,
    lines: Vec<String>,
}

impl RawCue {
    /// What `speaker` said in this cue, timed as the cue is.
    fn utterance(&self, speaker: Option<String>, text: String) -> Utterance {
        Utterance {
            speaker,
            text,
            start: Some(self.start),
            end: Some(self.end),
        }
    }
}

/// The cues of a caption file: a line machine rather than a block splitter, so that cues
/// without the blank line between them still come apart at their timing lines.
fn read_cues(text: &str, vtt: bool) -> Result<Vec<RawCue>, CaptionError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line));
    let mut reader = CueReader::new(vtt);
    if vtt {
        let (number, first) = lines.next().unwrap_or((1, ""));
        check_vtt_header(number, first)?;
        // The rest of the header block (metadata) runs to the first blank line.
        reader.skipping_block = true;
        reader.at_block_start = false;
    }
    for (number, line) in lines {
        if line.trim().is_empty() {
            reader.blank_line()?;
            continue;
        }
        let block_start = std::mem::replace(&mut reader.at_block_start, false);
        if reader.skipping_block {
            continue;
        }
        if line.contains("-->") {
            reader.timing_line(number, line)?;
        } else {
            reader.text_line(number, line, block_start)?;
        }
    }
    reader.finish()
}

/// `WEBVTT`, alone or followed by a space or tab, on the file's first line.
fn check_vtt_header(number: usize, first: &str) -> Result<(), CaptionError> {
    let header_ok = first
        .strip_prefix("WEBVTT")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']));
    if header_ok {
        Ok(())
    } else {
        Err(CaptionError::at(
            number,
            "a WebVTT file must start with the line WEBVTT",
        ))
    }
}

/// The state of [`read_cues`] between lines.
struct CueReader {
    vtt: bool,
    cues: Vec<RawCue>,
    current: Option<RawCue>,
    /// A line seen outside a cue: the next cue's identifier, if a timing line follows.
    pending: Option<(usize, String)>,
    /// Inside a WebVTT header, NOTE, STYLE or REGION block, which runs to the next blank line.
    skipping_block: bool,
    at_block_start: bool,
}

impl CueReader {
    fn new(vtt: bool) -> Self {
        CueReader {
            vtt,
            cues: Vec::new(),
            current: None,
            pending: None,
            skipping_block: false,
            at_block_start: true,
        }
    }

    /// A blank line ends the cue or block it is in; a line left pending belonged to no cue.
    fn blank_line(&mut self) -> Result<(), CaptionError> {
        if let Some(cue) = self.current.take() {
            self.cues.push(cue);
        }
        if let Some((pending_line, text)) = self.pending.take() {
            return Err(orphan_line(pending_line, &text));
        }
        self.skipping_block = false;
        self.at_block_start = true;
        Ok(())
    }

    /// A timing line starts a cue and ends the one before (without a blank line, an SRT index,
    /// a bare number, ends the previous cue and is not its text).
    fn timing_line(&mut self, number: usize, line: &str) -> Result<(), CaptionError> {
        if let Some(mut cue) = self.current.take() {
            if cue
                .lines
                .last()
                .is_some_and(|last| last.trim().bytes().all(|b| b.is_ascii_digit()))
            {
                cue.lines.pop();
            }
            self.cues.push(cue);
        }
        self.pending = None;
        let (start, end) = parse_timing(line, number)?;
        self.current = Some(RawCue {
            start,
            end,
            lines: Vec::new(),
        });
        Ok(())
    }

    /// Any other line: the text of the cue it is in, the start of a WebVTT block to skip, or
    /// (outside a cue) a line held until a timing line shows it to be a cue identifier.
    fn text_line(
        &mut self,
        number: usize,
        line: &str,
        block_start: bool,
    ) -> Result<(), CaptionError> {
        if let Some(cue) = self.current.as_mut() {
            cue.lines.push(line.to_string());
            return Ok(());
        }
        if self.vtt && block_start && is_vtt_block_keyword(line) {
            self.skipping_block = true;
            return Ok(());
        }
        if let Some((pending_line, text)) = self.pending.take() {
            return Err(orphan_line(pending_line, &text));
        }
        self.pending = Some((number, line.to_string()));
        Ok(())
    }

    /// The cues read, once the last line is in: at least one, and no line left over.
    fn finish(mut self) -> Result<Vec<RawCue>, CaptionError> {
        if let Some(cue) = self.current.take() {
            self.cues.push(cue);
        }
        if let Some((pending_line, text)) = self.pending {
            return Err(orphan_line(pending_line, &text));
        }
        if self.cues.is_empty() {
            return Err(CaptionError::whole(
                "no cues were found (a cue is a timing line such as 00:00:01.000 --> 00:00:04.000 followed by its text)",
            ));
        }
        Ok(self.cues)
    }
}

fn orphan_line(line: usize, text: &str) -> CaptionError {
    let shown: String = text.trim().chars().take(60).collect();
    CaptionError::at(
        line,
        format!(
            "{shown:?} belongs to no cue (expected a timing line such as 00:00:01.000 --> 00:00:04.000)"
        ),
    )
}

fn is_vtt_block_keyword(line: &str) -> bool {
    ["NOTE", "STYLE", "REGION"].iter().any(|keyword| {
        line.strip_prefix(keyword)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
    })
}

/// WebVTT cues with voice tags; other markup is removed and entities decoded.
pub fn parse_webvtt(text: &str) -> Result<Vec<Utterance>, CaptionError> {
    let text = normalise(text);
    let cues = read_cues(&text, true)?;
    let mut utterances = Vec::new();
    for cue in cues {
        // One utterance per voice within the cue; lines without a voice tag continue the last.
        let mut speaker: Option<String> = None;
        let mut spans: Vec<(Option<String>, String)> = Vec::new();
        for line in &cue.lines {
            for (voice, text) in split_voices(line) {
                if let Some(voice) = voice {
                    speaker = Some(voice);
                }
                let text = decode_entities(&strip_tags(&text));
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                match spans.last_mut() {
                    Some((last, joined)) if *last == speaker => {
                        joined.push(' ');
                        joined.push_str(text);
                    }
                    _ => spans.push((speaker.clone(), text.to_string())),
                }
            }
        }
        for (voice, text) in spans {
            let (speaker, text) = match voice {
                Some(voice) => (Some(voice), text),
                None => split_speaker_prefix(&text),
            };
            utterances.push(cue.utterance(speaker, text));
        }
    }
    Ok(utterances)
}

/// `<v Ana>Hi</v> <v.loud Ben>Hello` → [(Ana, "Hi "), (Ben, "Hello")]; text before the first
/// tag has no voice of its own.
fn split_voices(line: &str) -> Vec<(Option<String>, String)> {
    let mut result = Vec::new();
    let mut rest = line;
    let mut voice: Option<String> = None;
    loop {
        let next = rest.find("<v").filter(|&index| {
            rest[index + 2..]
                .chars()
                .next()
                .is_some_and(|c| c == ' ' || c == '.' || c == '\t')
        });
        match next {
            None => {
                result.push((voice.take(), rest.to_string()));
                return result;
            }
            Some(index) => {
                if index > 0 || voice.is_some() {
                    result.push((voice.take(), rest[..index].to_string()));
                }
                let tag_end = rest[index..]
                    .find('>')
                    .map(|end| index + end)
                    .unwrap_or(rest.len());
                let tag = &rest[index + 2..tag_end];
                // `<v.class.other Name Surname>`: the classes end at the first space.
                let name = tag
                    .trim_start_matches(|c: char| c != ' ' && c != '\t')
                    .trim();
                voice = Some(clean_speaker(name)).filter(|name| !name.is_empty());
                rest = &rest[(tag_end + 1).min(rest.len())..];
            }
        }
    }
}

/// Removes `<…>` markup (`<i>`, `</v>`, `<c.yellow>`, `<00:00:01.000>`); a lone `<` stays.
fn strip_tags(text: &str) -> String {
    strip_between(text, "<", '>')
}

/// Removes every span from `open` to the next `close`; an unclosed `open` stays as text.
fn strip_between(text: &str, open: &str, close: char) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        out.push_str(&rest[..start]);
        match rest[start..].find(close) {
            Some(end) => rest = &rest[start + end + close.len_utf8()..],
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&lrm;", "")
        .replace("&rlm;", "")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// SRT cues: an index line (optional), a timing line with a comma or a dot, text lines.
/// Basic markup (`<i>`, `{\an8}`) is removed; `Ana: text` names the speaker.
pub fn parse_srt(text: &str) -> Result<Vec<Utterance>, CaptionError> {
    let text = normalise(text);
    let cues = read_cues(&text, false)?;
    let mut utterances = Vec::new();
    for cue in cues {
        let mut spans: Vec<(Option<String>, String)> = Vec::new();
        for line in &cue.lines {
            let line = strip_ass_overrides(&decode_entities(&strip_tags(line)));
            let line = line.trim().trim_start_matches("- ").trim();
            if line.is_empty() {
                continue;
            }
            let (speaker, text) = split_speaker_prefix(line);
            match (spans.last_mut(), speaker) {
                (Some((_, joined)), None) => {
                    joined.push(' ');
                    joined.push_str(&text);
                }
                (_, speaker) => spans.push((speaker, text)),
            }
        }
        for (speaker, text) in spans {
            utterances.push(cue.utterance(speaker, text));
        }
    }
    Ok(utterances)
}

/// `{\an8}` and similar positioning codes some SRT files carry.
fn strip_ass_overrides(text: &str) -> String {
    strip_between(text, "{\\", '}')
}

/// Plain text: lines that start with `Name:` (or `[Name]:`, our own format) begin a speaker's
/// turn; lines without one continue it. A text with no speaker names at all is kept as it is.
pub fn parse_text(text: &str) -> Transcript {
    let mut utterances: Vec<Utterance> = Vec::new();
    let mut any_speaker = false;
    let mut paragraph_break = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            paragraph_break = true;
            continue;
        }
        let (speaker, body) = split_speaker_prefix(line);
        if speaker.is_some() {
            any_speaker = true;
            utterances.push(Utterance {
                speaker,
                text: body,
                start: None,
                end: None,
            });
        } else if let Some(last) = utterances.last_mut() {
            last.text
                .push_str(if paragraph_break { "\n\n" } else { " " });
            last.text.push_str(&body);
        } else {
            utterances.push(Utterance {
                speaker: None,
                text: body,
                start: None,
                end: None,
            });
        }
        paragraph_break = false;
    }
    if !any_speaker {
        return Transcript {
            text: text.trim().to_string(),
            utterances: Vec::new(),
            raw: serde_json::Value::Null,
        };
    }
    cues_transcript(utterances)
}

/// `Ana: Hello` → (Some("Ana"), "Hello"); `[Speaker B]: Hi` → (Some("B"), "Hi");
/// `Speaker 1: Hi` → (Some("1"), "Hi"). A prefix counts only if it looks like a name: up to
/// four words starting with a letter, at most 40 characters.
pub fn split_speaker_prefix(line: &str) -> (Option<String>, String) {
    let line = line.trim();
    let candidate = if let Some(rest) = line.strip_prefix('[') {
        rest.split_once("]:")
            .map(|(name, text)| (name.trim(), text.trim()))
    } else {
        line.split_once(": ")
            .or_else(|| line.strip_suffix(':').map(|name| (name, "")))
            .map(|(name, text)| (name.trim(), text.trim()))
    };
    match candidate {
        Some((name, text)) if looks_like_speaker(name) && !text.is_empty() => {
            let name = clean_speaker(name);
            let label = name
                .strip_prefix("Speaker ")
                .filter(|label| is_label(label))
                .map(str::to_string)
                .unwrap_or(name);
            (Some(label), text.to_string())
        }
        _ => (None, line.to_string()),
    }
}

fn looks_like_speaker(name: &str) -> bool {
    let words: Vec<&str> = name.split_whitespace().collect();
    !name.is_empty()
        && name.chars().count() <= 40
        && (1..=4).contains(&words.len())
        && words
            .first()
            .and_then(|word| word.chars().next())
            .is_some_and(char::is_alphabetic)
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '.' | '\'' | '-' | '_'))
}

/// A provider's speaker label (`A`, `B`, `AA`, `1`) as opposed to a person's name.
pub fn is_label(speaker: &str) -> bool {
    (!speaker.is_empty() && speaker.len() <= 2 && speaker.bytes().all(|b| b.is_ascii_uppercase()))
        || (!speaker.is_empty()
            && speaker.len() <= 3
            && speaker.bytes().all(|b| b.is_ascii_digit()))
}

/// A speaker name as it may appear inside `[…]:`: no brackets, no line breaks, trimmed.
fn clean_speaker(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| !matches!(c, '[' | ']' | '\n' | '\r'))
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::pipeline::transcribe::timed_utterance as utterance;

    #[test]
    fn timestamps_in_every_spelling() {
        for (value, millis) in [
            ("00:01:02.500", 62_500),
            ("00:01:02,500", 62_500),
            ("1:02.5", 62_500),
            ("01:02.05", 62_050),
            ("01:02", 62_000),
            ("00:00:00.000", 0),
            ("123:00:00.000", 442_800_000),
            ("100:59:59,999", 363_599_999),
            ("00:00:01.1234", 1_123),
            (" 00:00:03.000 ", 3_000),
            ("75:00.000", 4_500_000),
        ] {
            assert_eq!(parse_timestamp(value), Some(millis), "{value}");
        }
        for bad in [
            "",
            "1",
            "00:60:00.000",
            "00:00:60.000",
            "aa:bb:cc",
            "00:00:01.x",
            "1:2:3:4",
            "00:00:01.",
            "-1:00.000",
            "00:00:1a.000",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn webvtt_with_voices_settings_notes_and_styles() {
        let text = "\u{feff}WEBVTT - a meeting\r\nKind: captions\r\n\r\nSTYLE\r\n::cue { color: red }\r\n\r\nNOTE this is a comment\r\nthat spans lines\r\n\r\n1\r\n00:00:01.000 --> 00:00:04.000 align:start position:10%\r\n<v Ana>Hello <i>everyone</i>.</v>\r\n\r\nintro\r\n00:04.000 --> 00:06.500\r\n<v.loud Ben Smith>Shall we &amp; start?\r\nIt is late.\r\n\r\n00:00:07.000 --> 00:00:09.000\r\n<v Ana>Yes.</v> <v Ben Smith>Good.\r\n";
        let utterances = parse_webvtt(text).unwrap();
        assert_eq!(
            utterances,
            vec![
                utterance(Some("Ana"), "Hello everyone.", 1000, 4000),
                utterance(
                    Some("Ben Smith"),
                    "Shall we & start? It is late.",
                    4000,
                    6500
                ),
                utterance(Some("Ana"), "Yes.", 7000, 9000),
                utterance(Some("Ben Smith"), "Good.", 7000, 9000),
            ]
        );
    }

    #[test]
    fn webvtt_cues_without_blank_lines_and_zoom_style_prefixes() {
        let text = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nAna Lopez: First.\n00:00:02.000 --> 00:00:03.000\nsecond line\n00:00:03.000 --> 00:00:04.000\n<c.yellow>third</c> <00:00:03.500>part";
        let utterances = parse_webvtt(text).unwrap();
        assert_eq!(
            utterances,
            vec![
                utterance(Some("Ana Lopez"), "First.", 1000, 2000),
                utterance(None, "second line", 2000, 3000),
                utterance(None, "third part", 3000, 4000),
            ]
        );
    }

    #[test]
    fn webvtt_errors_name_the_line() {
        let missing_header = parse_webvtt("00:00:01.000 --> 00:00:02.000\nHi\n").unwrap_err();
        assert_eq!(missing_header.line, Some(1));
        assert!(missing_header.to_string().contains("WEBVTT"));

        let bad_time = parse_webvtt("WEBVTT\n\n00:00:01.000 --> 00:00:0x.000\nHi\n").unwrap_err();
        assert_eq!(bad_time.line, Some(3));
        assert!(bad_time.message.contains("00:00:0x.000"), "{bad_time}");

        let backwards =
            parse_webvtt("WEBVTT\n\n1\n00:00:05.000 --> 00:00:02.000\nHi\n").unwrap_err();
        assert_eq!(backwards.line, Some(4));
        assert!(
            backwards.message.contains("before it starts"),
            "{backwards}"
        );

        // An arrow with one dash is not a timing line: the text has no cue.
        let broken = parse_webvtt("WEBVTT\n\n00:00:01.000 -> 00:00:02.000\nHello\n").unwrap_err();
        assert_eq!(broken.line, Some(3), "{broken}");
        assert!(broken.message.contains("belongs to no cue"), "{broken}");

        let empty = parse_webvtt("WEBVTT\n\nNOTE nothing here\n").unwrap_err();
        assert_eq!(empty.line, None);
        assert!(empty.message.contains("no cues"));
    }

    #[test]
    fn srt_with_speakers_commas_and_markup() {
        let text = "1\r\n00:00:01,000 --> 00:00:03,500\r\nAna: Welcome, everyone.\r\nLet's begin.\r\n\r\n2\r\n00:00:03,500 --> 00:00:05,000\r\n<i>Ben:</i> Thanks.\r\n- Ana: Sure.\r\n\r\n3\r\n00:00:05,000 --> 00:00:07,250\r\n{\\an8}Speaker 2: Labels work too.\r\n";
        let utterances = parse_srt(text).unwrap();
        assert_eq!(
            utterances,
            vec![
                utterance(Some("Ana"), "Welcome, everyone. Let's begin.", 1000, 3500),
                utterance(Some("Ben"), "Thanks.", 3500, 5000),
                utterance(Some("Ana"), "Sure.", 3500, 5000),
                utterance(Some("2"), "Labels work too.", 5000, 7250),
            ]
        );
    }

    #[test]
    fn srt_without_blank_lines_drops_the_index_not_the_text() {
        let text = "1\n00:00:01,000 --> 00:00:02,000\nOne.\n2\n00:00:02,000 --> 00:00:03,000\nTwo.\n\n\n3\n100:00:00,000 --> 100:00:01,000\nLate.";
        let utterances = parse_srt(text).unwrap();
        let texts: Vec<&str> = utterances.iter().map(|u| u.text.as_str()).collect();
        assert_eq!(texts, vec!["One.", "Two.", "Late."]);
        assert_eq!(utterances[2].start, Some(360_000_000));
    }

    #[test]
    fn srt_errors_name_the_line() {
        let error = parse_srt("1\n00:00:01,000 --> 00:00:02,000\nOne.\n\n2\nTwo.\n").unwrap_err();
        assert_eq!(error.line, Some(5), "{error}");
        let error = parse_srt("1\n00:00:01,000 --> soon\nOne.\n").unwrap_err();
        assert_eq!(error.line, Some(2));
        assert!(error.to_string().starts_with("line 2: "), "{error}");
        // A text with no timing line at all is one orphan line, named.
        let error = parse(CaptionFormat::Srt, "no cues at all").unwrap_err();
        assert_eq!(error.line, Some(1), "{error}");
    }

    #[test]
    fn text_with_and_without_speakers() {
        let transcript =
            parse_text("Ana: Hello there.\nStill Ana.\n\n[Speaker B]: Hi.\nBen Smith: Hey.\n");
        let pairs: Vec<(Option<&str>, &str)> = transcript
            .utterances
            .iter()
            .map(|u| (u.speaker.as_deref(), u.text.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                (Some("Ana"), "Hello there. Still Ana."),
                (Some("B"), "Hi."),
                (Some("Ben Smith"), "Hey."),
            ]
        );
        let plain = parse_text("  Just notes.\n\nNo names at 10:30: none.  ");
        assert!(plain.utterances.is_empty());
        assert_eq!(plain.text, "Just notes.\n\nNo names at 10:30: none.");
    }

    #[test]
    fn empty_inputs_are_refused() {
        for format in [
            CaptionFormat::WebVtt,
            CaptionFormat::Srt,
            CaptionFormat::Text,
        ] {
            let error = parse(format, "\u{feff} \r\n\r\n").unwrap_err();
            assert!(error.to_string().contains("empty"), "{error}");
        }
        let error = parse(
            CaptionFormat::WebVtt,
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v Ana></v>\n",
        )
        .unwrap_err();
        assert!(error.to_string().contains("no transcript text"), "{error}");
    }

    #[test]
    fn formats_by_name_and_content() {
        assert_eq!(
            CaptionFormat::from_file_name("Call.VTT"),
            Some(CaptionFormat::WebVtt)
        );
        assert_eq!(
            CaptionFormat::from_file_name("a.srt"),
            Some(CaptionFormat::Srt)
        );
        assert_eq!(
            CaptionFormat::from_file_name("a.txt"),
            Some(CaptionFormat::Text)
        );
        assert_eq!(CaptionFormat::from_file_name("a.mp3"), None);
        assert_eq!(
            CaptionFormat::sniff("\u{feff}WEBVTT\n\n"),
            CaptionFormat::WebVtt
        );
        assert_eq!(
            CaptionFormat::sniff("1\n00:00:01,000 --> 00:00:02,000\nHi"),
            CaptionFormat::Srt
        );
        assert_eq!(CaptionFormat::sniff("Ana: hi"), CaptionFormat::Text);
    }

    #[test]
    fn speaker_prefixes_are_names_not_sentences() {
        assert_eq!(
            split_speaker_prefix("Ana: hi"),
            (Some("Ana".into()), "hi".into())
        );
        assert_eq!(
            split_speaker_prefix("Speaker A: hi").0.as_deref(),
            Some("A")
        );
        assert_eq!(
            split_speaker_prefix("[Ana Lopez]: hi").0.as_deref(),
            Some("Ana Lopez")
        );
        for not_a_name in [
            "10:30: the meeting started",
            "We agreed on one thing and then another: the budget",
            "https://example.com is the link",
            "Ana:",
        ] {
            assert_eq!(split_speaker_prefix(not_a_name).0, None, "{not_a_name}");
        }
    }
}
