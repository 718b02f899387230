//! Cutting a long transcript into parts that fit a model's input, at speaker turns, so a long
//! meeting is summarised part by part rather than truncated. Nothing is dropped: a turn longer
//! than a part is cut at sentence ends, and a sentence longer than a part at spaces (or, in a
//! text without spaces, anywhere between characters).

/// Tokens estimated from characters (about four per token in English text).
pub fn estimated_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// Parts of at most `max_chars` characters each (a part is longer only if `max_chars` is
/// smaller than a speaker heading). Turns are the blocks between blank lines.
pub fn split_transcript(text: &str, max_chars: usize) -> Vec<String> {
    let max_chars = max_chars.max(1);
    let mut parts: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut current_chars = 0;
    fn flush(parts: &mut Vec<String>, current: &mut String, current_chars: &mut usize) {
        if !current.trim().is_empty() {
            parts.push(std::mem::take(current));
        }
        current.clear();
        *current_chars = 0;
    }
    for turn in text.split("\n\n").map(str::trim).filter(|t| !t.is_empty()) {
        let chars = turn.chars().count();
        if chars > max_chars {
            flush(&mut parts, &mut current, &mut current_chars);
            parts.extend(split_turn(turn, max_chars));
            continue;
        }
        let needed = if current.is_empty() { chars } else { chars + 2 };
        if current_chars + needed > max_chars {
            flush(&mut parts, &mut current, &mut current_chars);
        }
        if !current.is_empty() {
            current.push_str("\n\n");
            current_chars += 2;
        }
        current.push_str(turn);
        current_chars += chars;
    }
    flush(&mut parts, &mut current, &mut current_chars);
    parts
}

/// One speaker's turn, longer than a part: sentences packed into pieces; each piece after the
/// first repeats the speaker heading, so the model knows who is still speaking.
fn split_turn(turn: &str, max_chars: usize) -> Vec<String> {
    let (heading, body) = match turn
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("]: "))
    {
        Some((name, body)) => (format!("[{name}]: "), body),
        None => (String::new(), turn),
    };
    let room = max_chars
        .saturating_sub(heading.chars().count())
        .max(max_chars / 2)
        .max(1);
    let mut pieces: Vec<String> = Vec::new();
    let mut current = String::new();
    for sentence in sentences(body).into_iter().flat_map(|s| cut(s, room)) {
        if !current.is_empty() && current.chars().count() + sentence.chars().count() > room {
            pieces.push(std::mem::take(&mut current));
        }
        current.push_str(sentence);
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
        .into_iter()
        .map(|piece| format!("{heading}{}", piece.trim()))
        .collect()
}

/// Sentences with the space after them, so joining them gives back the text.
fn sentences(text: &str) -> Vec<&str> {
    let mut result = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        let ends = matches!(c, '.' | '!' | '?' | '…' | '\n')
            && chars.peek().is_none_or(|(_, next)| next.is_whitespace());
        if ends {
            let mut end = index + c.len_utf8();
            while let Some(&(next_index, next)) = chars.peek() {
                if !next.is_whitespace() {
                    break;
                }
                end = next_index + next.len_utf8();
                chars.next();
            }
            result.push(&text[start..end]);
            start = end;
        }
    }
    if start < text.len() {
        result.push(&text[start..]);
    }
    result
}

/// A sentence in pieces of at most `max` characters, cut after a space where there is one.
fn cut(sentence: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = sentence;
    while rest.chars().count() > max {
        let limit = rest
            .char_indices()
            .nth(max)
            .map(|(index, _)| index)
            .unwrap_or(rest.len());
        let at = rest[..limit]
            .rfind(' ')
            .map(|space| space + 1)
            .filter(|&at| at > 0)
            .unwrap_or(limit);
        pieces.push(&rest[..at]);
        rest = &rest[at..];
    }
    if !rest.is_empty() {
        pieces.push(rest);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace()
            .filter(|w| !w.starts_with('['))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn short_transcripts_stay_whole() {
        let text = "[Speaker A]: Hi.\n\n[Speaker B]: Hello.";
        assert_eq!(split_transcript(text, 1000), vec![text.to_string()]);
        assert_eq!(estimated_tokens("abcdefgh"), 2);
        assert_eq!(estimated_tokens("abcdefghi"), 3);
    }

    #[test]
    fn parts_end_at_speaker_turns() {
        let turns: Vec<String> = (0..40)
            .map(|i| {
                format!(
                    "[Speaker {}]: Turn number {i} says something.",
                    if i % 2 == 0 { "A" } else { "B" }
                )
            })
            .collect();
        let text = turns.join("\n\n");
        let parts = split_transcript(&text, 200);
        assert!(parts.len() > 5);
        for part in &parts {
            assert!(part.chars().count() <= 200, "{part}");
            assert!(part.starts_with("[Speaker "), "{part}");
        }
        assert_eq!(parts.join("\n\n"), text, "nothing lost or changed");
    }

    #[test]
    fn a_turn_longer_than_a_part_is_cut_at_sentences_then_spaces() {
        let long = format!(
            "[Ana]: {} {}",
            "This is a sentence. ".repeat(30).trim(),
            "x".repeat(150)
        );
        let text = format!("[Ben]: Before.\n\n{long}\n\n[Ben]: After.");
        let parts = split_transcript(&text, 100);
        for part in &parts {
            assert!(
                part.chars().count() <= 100,
                "{} chars: {part}",
                part.chars().count()
            );
        }
        assert!(parts.iter().filter(|p| p.starts_with("[Ana]: ")).count() > 3);
        assert_eq!(words(&parts.join(" ")).concat(), words(&text).concat());
        let unbroken = "é".repeat(250);
        let parts = split_transcript(&unbroken, 100);
        assert_eq!(parts.concat(), unbroken);
    }
}
