//! Transcripts as subtitles: SRT and WebVTT from the utterances a provider returned.

use std::fmt::Write;

use crate::pipeline::transcribe::Utterance;

/// `HH:MM:SS<sep>mmm`.
fn timestamp(millis: u64, separator: char) -> String {
    let hours = millis / 3_600_000;
    let minutes = millis / 60_000 % 60;
    let seconds = millis / 1000 % 60;
    let rest = millis % 1000;
    format!("{hours:02}:{minutes:02}:{seconds:02}{separator}{rest:03}")
}

/// Utterances that carry times, each ending no earlier than it starts.
fn timed(utterances: &[Utterance]) -> impl Iterator<Item = (u64, u64, &Utterance)> {
    utterances.iter().filter_map(|utterance| {
        let start = utterance.start?;
        let end = utterance.end.unwrap_or(start).max(start + 1);
        (!utterance.text.trim().is_empty()).then_some((start, end, utterance))
    })
}

fn speaker_label(speaker: &str) -> String {
    if speaker.chars().count() <= 2 {
        format!("Speaker {speaker}")
    } else {
        speaker.to_string()
    }
}

/// SubRip: numbered cues, `00:00:01,200 --> 00:00:02,500`, "Speaker A: text". None without times.
pub fn to_srt(utterances: &[Utterance]) -> Option<String> {
    let mut out = String::new();
    for (index, (start, end, utterance)) in timed(utterances).enumerate() {
        let text = utterance
            .text
            .trim()
            .replace("\r\n", "\n")
            .replace("\n\n", "\n");
        let _ = write!(
            out,
            "{}\n{} --> {}\n",
            index + 1,
            timestamp(start, ','),
            timestamp(end, ',')
        );
        match &utterance.speaker {
            Some(speaker) => {
                let _ = writeln!(out, "{}: {text}\n", speaker_label(speaker));
            }
            None => {
                let _ = writeln!(out, "{text}\n");
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// WebVTT with `<v Speaker>` voice tags; text is escaped as the format requires.
pub fn to_vtt(utterances: &[Utterance]) -> Option<String> {
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace("-->", "--&gt;")
    };
    let mut out = String::from("WEBVTT\n\n");
    let mut any = false;
    for (start, end, utterance) in timed(utterances) {
        any = true;
        let text = escape(utterance.text.trim()).replace("\n\n", "\n");
        let _ = writeln!(out, "{} --> {}", timestamp(start, '.'), timestamp(end, '.'));
        match &utterance.speaker {
            Some(speaker) => {
                let voice = escape(&speaker_label(speaker)).replace('\n', " ");
                let _ = writeln!(out, "<v {voice}>{text}\n");
            }
            None => {
                let _ = writeln!(out, "{text}\n");
            }
        }
    }
    any.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::pipeline::transcribe::timed_utterance as utterance;

    #[test]
    fn srt_and_vtt_have_their_formats() {
        let utterances = vec![
            utterance(Some("A"), "Hello <everyone> & all.", 0, 1200),
            utterance(Some("Ana Lopez"), "Next --> item.", 3_723_004, 3_725_000),
            utterance(None, "untimed?", 4_000_000, 4_000_000),
        ];
        let srt = to_srt(&utterances).unwrap();
        assert!(srt.starts_with("1\n00:00:00,000 --> 00:00:01,200\nSpeaker A: Hello <everyone> & all.\n\n2\n01:02:03,004 --> 01:02:05,000\nAna Lopez: Next --> item.\n\n3\n"));
        let vtt = to_vtt(&utterances).unwrap();
        assert!(vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.200\n<v Speaker A>Hello &lt;everyone&gt; &amp; all.\n\n01:02:03.004 --> 01:02:05.000\n<v Ana Lopez>Next --&gt; item.\n\n"));
        // A zero-length cue still ends after it starts.
        assert!(vtt.contains("01:06:40.000 --> 01:06:40.001"));
        let untimed = vec![Utterance {
            speaker: None,
            text: "x".into(),
            start: None,
            end: None,
        }];
        assert_eq!(to_srt(&untimed), None);
        assert_eq!(to_vtt(&untimed), None);
    }
}
