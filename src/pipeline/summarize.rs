//! The summarize stage: the summary from the summary prompt, streamed and saved as it grows,
//! then a short title from the title prompt.

use std::time::Duration;

use tokio::sync::watch;

use super::llm::Llm;
use super::split::{estimated_tokens, split_transcript};
use super::templates;
use super::transcribe::apply_speaker_names;
use super::{StageContext, StageError, StageResult};
use crate::jobs::Job;
use crate::net::retry::with_retry;
use crate::store::Changes;

/// Used when the operator's prompt file is missing, so a fresh checkout still works.
pub const DEFAULT_SUMMARY_PROMPT: &str = include_str!("../../prompts/meeting_summary.md");
pub const DEFAULT_TITLE_PROMPT: &str = include_str!("../../prompts/title_generator.md");

/// The original app's placeholder line in title prompts.
const LEGACY_TITLE_PLACEHOLDER: &str = "[The meeting transcript/summary will be inserted here]";
const TITLE_MAX_CHARS: usize = 60;
/// How often a growing summary is written out for readers.
const SAVE_EVERY: Duration = Duration::from_millis(750);

pub async fn run(context: &StageContext, job: &Job) -> StageResult<()> {
    let artifacts = context.store.artifacts();
    let transcript = artifacts
        .read_text(job.transcript_path.as_deref())
        .await
        .map_err(|error| StageError::failed(format!("cannot read the transcript: {error}")))?;
    let Some(transcript) = transcript.filter(|text| !text.trim().is_empty()) else {
        context.log("Summary skipped: there is no transcript").await;
        return Ok(());
    };
    let Some(llm) = context.services.llm.as_ref() else {
        context.log("Summary skipped: no LLM is configured").await;
        return Ok(());
    };

    // People's names in place of speaker labels, so the summary can say who did what.
    let transcript = apply_speaker_names(&transcript, &job.speakers);
    let template = summary_template(context, job).await;
    let prompt = prompt_for(context, llm, &template, &transcript, job).await?;
    let summary = write_summary(context, llm, job, &prompt).await?;
    let title = title_for(context, llm, &summary).await;
    match &title {
        Some(title) => context.log(format!("Title: {title}")).await,
        None => context.log("No title could be made").await,
    }
    context.update(Changes::new().title(title)).await?;
    Ok(())
}

/// The job's prompt template (its own choice, or the default when it chose none or its choice
/// is gone), as text.
async fn summary_template(context: &StageContext, job: &Job) -> String {
    let template_path = match &job.template {
        Some(name) => match templates::resolve(&context.config.prompts_dir(), name) {
            Ok(path) => {
                context
                    .log(format!("Using the prompt template {name:?}"))
                    .await;
                path
            }
            Err(error) => {
                context
                    .log(format!(
                        "The job's template {name:?} is gone ({error}); using the default prompt"
                    ))
                    .await;
                context.config.prompt_path.clone()
            }
        },
        None => context.config.prompt_path.clone(),
    };
    read_prompt(context, &template_path, DEFAULT_SUMMARY_PROMPT).await
}

/// The prompt for the summary: the whole transcript, or for one longer than a request takes,
/// the combined summaries of its parts (which are made here).
async fn prompt_for(
    context: &StageContext,
    llm: &Llm,
    template: &str,
    transcript: &str,
    job: &Job,
) -> StageResult<String> {
    let date = job.meeting_date.as_deref();
    let budget_chars = context.config.summary_max_input_tokens.saturating_mul(4);
    let prompt = if transcript.chars().count() > budget_chars {
        let parts = split_transcript(transcript, budget_chars);
        context
            .log(format!(
                "The transcript (about {} tokens) is longer than one request to the model takes ({} tokens): summarising it in {} parts, then combining them",
                estimated_tokens(transcript),
                context.config.summary_max_input_tokens,
                parts.len()
            ))
            .await;
        let summaries = summarise_parts(context, llm, template, &parts, date).await?;
        let summaries =
            reduce_summaries(context, llm, template, summaries, budget_chars, date).await?;
        context
            .log(format!(
                "Combining the {} part summaries into one with {}",
                summaries.len(),
                context.config.openai_model
            ))
            .await;
        render_combine_prompt(template, &summaries, date)
    } else {
        context
            .log(format!(
                "Writing the summary with {} ({} characters of transcript)",
                context.config.openai_model,
                transcript.chars().count()
            ))
            .await;
        render_summary_prompt(template, transcript, date)
    };
    Ok(prompt)
}

/// Streams the summary from the LLM, saving it as it grows, and records it on the job.
async fn write_summary(
    context: &StageContext,
    llm: &Llm,
    job: &Job,
    prompt: &str,
) -> StageResult<String> {
    let artifacts = context.store.artifacts();
    let summary_path = artifacts.summary_relative(&job.id);
    let (sender, receiver) = watch::channel(String::new());
    let generate = async {
        let result = with_retry(
            &context.config.retry,
            || llm.complete(prompt, Some(&sender)),
            |message| context.retrying("llm", message),
        )
        .await;
        // Closing the channel ends the saver once it has written what it holds.
        drop(sender);
        result
    };
    let save = save_while_streaming(context, &summary_path, receiver);
    let (summary, ()) = tokio::join!(generate, save);
    let summary = summary?;
    let summary = summary.trim().to_string();
    if summary.is_empty() {
        return Err(StageError::failed("the LLM answered with an empty summary"));
    }
    artifacts
        .write_text(&summary_path, summary.clone())
        .await
        .map_err(|error| StageError::failed(format!("could not store the summary: {error}")))?;
    context
        .update(Changes::new().summary(Some(summary.clone()), Some(summary_path)))
        .await?;
    context
        .log(format!(
            "Summary saved ({} characters)",
            summary.chars().count()
        ))
        .await;
    Ok(summary)
}

/// Summarises each part of a long transcript with the job's prompt, told which part it is.
async fn summarise_parts(
    context: &StageContext,
    llm: &Llm,
    template: &str,
    parts: &[String],
    date: Option<&str>,
) -> StageResult<Vec<String>> {
    let mut summaries = Vec::with_capacity(parts.len());
    for (index, part) in parts.iter().enumerate() {
        let prompt = render_part_prompt(template, part, index + 1, parts.len(), date);
        let summary = with_retry(
            &context.config.retry,
            || llm.complete(&prompt, None),
            |message| context.retrying("llm", message),
        )
        .await?;
        let summary = summary.trim().to_string();
        if summary.is_empty() {
            return Err(StageError::failed(format!(
                "the LLM answered with an empty summary of part {} of {}",
                index + 1,
                parts.len()
            )));
        }
        context
            .log(format!(
                "Part {} of {} summarised ({} characters)",
                index + 1,
                parts.len(),
                summary.chars().count()
            ))
            .await;
        summaries.push(summary);
    }
    Ok(summaries)
}

/// While the part summaries together are still too long for one combining call, combines
/// them in groups, so the final call always fits.
async fn reduce_summaries(
    context: &StageContext,
    llm: &Llm,
    template: &str,
    mut summaries: Vec<String>,
    budget_chars: usize,
    date: Option<&str>,
) -> StageResult<Vec<String>> {
    let total = |summaries: &[String]| {
        summaries
            .iter()
            .map(|s| s.chars().count() + 40)
            .sum::<usize>()
    };
    while summaries.len() > 2 && total(&summaries) > budget_chars {
        let mut groups: Vec<Vec<String>> = vec![Vec::new()];
        for summary in summaries {
            let group = groups.last_mut().expect("one group at least");
            if !group.is_empty() && total(group) + summary.chars().count() > budget_chars {
                groups.push(vec![summary]);
            } else {
                group.push(summary);
            }
        }
        if groups.iter().all(|group| group.len() == 1) {
            // Each summary alone fills the budget: combining cannot shrink them further.
            return Ok(groups.into_iter().flatten().collect());
        }
        context
            .log(format!(
                "The part summaries are still too long to combine at once: combining them in {} groups first",
                groups.len()
            ))
            .await;
        let mut next = Vec::with_capacity(groups.len());
        for group in groups {
            if group.len() == 1 {
                next.extend(group);
                continue;
            }
            let prompt = render_combine_prompt(template, &group, date);
            let combined = with_retry(
                &context.config.retry,
                || llm.complete(&prompt, None),
                |message| context.retrying("llm", message),
            )
            .await?;
            next.push(combined.trim().to_string());
        }
        summaries = next;
    }
    Ok(summaries)
}

/// Writes the summary as it grows, at most every `SAVE_EVERY`, until the stream ends.
async fn save_while_streaming(
    context: &StageContext,
    relative: &str,
    mut receiver: watch::Receiver<String>,
) {
    loop {
        if receiver.changed().await.is_err() {
            return;
        }
        let text = receiver.borrow_and_update().clone();
        if !text.is_empty() {
            let _ = context
                .store
                .artifacts()
                .write_text(relative, text.clone())
                .await;
            let _ = context.update(Changes::new().summary_text(text)).await;
        }
        tokio::time::sleep(SAVE_EVERY).await;
    }
}

async fn title_for(context: &StageContext, llm: &Llm, summary: &str) -> Option<String> {
    let template = read_prompt(
        context,
        &context.config.title_prompt_path,
        DEFAULT_TITLE_PROMPT,
    )
    .await;
    let prompt = render_title_prompt(&template, summary);
    let answer = with_retry(
        &context.config.retry,
        || llm.complete(&prompt, None),
        |message| context.retrying("llm", message),
    )
    .await;
    match answer {
        Ok(answer) => clean_title(&answer).or_else(|| heading_title(summary)),
        Err(error) => {
            context
                .log(format!(
                    "The title request failed ({error}); using the summary's first heading"
                ))
                .await;
            heading_title(summary)
        }
    }
}

/// Prompt files are re-read for every job, so operators can edit them without a restart.
async fn read_prompt(context: &StageContext, path: &std::path::Path, fallback: &str) -> String {
    match tokio::fs::read_to_string(path).await {
        Ok(text) if !text.trim().is_empty() => text,
        Ok(_) => {
            context
                .log(format!(
                    "The prompt {} is empty; using the built-in one",
                    path.display()
                ))
                .await;
            fallback.to_string()
        }
        Err(error) => {
            context
                .log(format!(
                    "The prompt {} could not be read ({error}); using the built-in one",
                    path.display()
                ))
                .await;
            fallback.to_string()
        }
    }
}

/// Fills `{{transcript}}` and `{{meeting_date}}`; a template without the transcript
/// placeholder gets the transcript appended, so it is never silently left out.
pub fn render_summary_prompt(
    template: &str,
    transcript: &str,
    meeting_date: Option<&str>,
) -> String {
    let date = meeting_date
        .and_then(|date| chrono::DateTime::parse_from_rfc3339(date).ok())
        .map(|date| date.format("%A, %-d %B %Y, %H:%M UTC").to_string())
        .unwrap_or_else(|| "unknown (no date was given)".to_string());
    // Fill the date first, so a transcript that happens to contain "{{meeting_date}}" stays as it is.
    let with_date = template.replace("{{meeting_date}}", &date);
    if with_date.contains("{{transcript}}") {
        with_date.replace("{{transcript}}", transcript)
    } else {
        format!("{with_date}\n\n{transcript}")
    }
}

/// The summary prompt for one part of a long transcript.
pub fn render_part_prompt(
    template: &str,
    part: &str,
    number: usize,
    count: usize,
    meeting_date: Option<&str>,
) -> String {
    format!(
        "This is part {number} of {count} of the transcript of one long meeting, which was split \
         at speaker turns because of its length. Summarise this part only, following the \
         instructions below. The summaries of all {count} parts will be combined into one \
         afterwards, so keep every decision, action item, owner, date, number and open question \
         that appears in this part.\n\n{}",
        render_summary_prompt(template, part, meeting_date)
    )
}

/// The prompt that combines part summaries into one summary in the template's structure.
pub fn render_combine_prompt(
    template: &str,
    summaries: &[String],
    meeting_date: Option<&str>,
) -> String {
    let count = summaries.len();
    let instructions = render_summary_prompt(
        template,
        "(The transcript is not repeated here: work from the part summaries below.)",
        meeting_date,
    );
    let mut prompt = format!(
        "You are writing the final summary of one long meeting. Its transcript was too long to \
         read at once, so it was summarised in {count} consecutive parts; the part summaries \
         follow, in order. Combine them into one coherent summary of the whole meeting, in \
         exactly the structure the summary instructions below ask for (the same headings, \
         sections and tables, each appearing once). Merge what the parts repeat, keep every \
         decision, action item, owner, date and open question, and keep events in the order \
         they happened. Do not mention the parts.\n\n\
         === Summary instructions (written for the whole transcript) ===\n{instructions}\n\
         === End of the summary instructions ===\n\n=== Part summaries ===\n"
    );
    for (index, summary) in summaries.iter().enumerate() {
        prompt.push_str(&format!(
            "\n--- Part {} of {count} ---\n{}\n",
            index + 1,
            summary.trim()
        ));
    }
    prompt.push_str("\n=== End of the part summaries ===\n");
    prompt
}

pub fn render_title_prompt(template: &str, summary: &str) -> String {
    if template.contains("{{summary}}") {
        template.replace("{{summary}}", summary)
    } else if template.contains(LEGACY_TITLE_PLACEHOLDER) {
        template.replace(LEGACY_TITLE_PLACEHOLDER, summary)
    } else {
        format!("{template}\n\n{summary}")
    }
}

/// The model's title, trimmed: first non-empty line, no quotes, no "Title:", at most 60 chars.
pub fn clean_title(answer: &str) -> Option<String> {
    let line = answer
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())?;
    let line = line.trim_start_matches('#').trim();
    let line = line
        .strip_prefix("Title:")
        .or_else(|| line.strip_prefix("title:"))
        .unwrap_or(line)
        .trim();
    let line = line
        .trim_matches(|c: char| {
            matches!(
                c,
                '"' | '\'' | '`' | '“' | '”' | '‘' | '’' | '*' | '«' | '»'
            )
        })
        .trim();
    let line = line.strip_suffix('.').unwrap_or(line).trim();
    (!line.is_empty()).then(|| shorten(line, TITLE_MAX_CHARS))
}

/// The summary's first heading, as a fallback title.
pub fn heading_title(summary: &str) -> Option<String> {
    summary
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with('#'))
        .and_then(clean_title)
}

/// At most `max` characters, cut at a word boundary when one is near, with an ellipsis.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max - 1).collect();
    let cut = match cut.rfind(' ') {
        Some(space) if space > max / 2 => cut[..space].trim_end().to_string(),
        _ => cut,
    };
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_prompt_gets_transcript_and_date() {
        let prompt = render_summary_prompt(
            "Date: {{meeting_date}}\n---\n{{transcript}}",
            "[Speaker A]: hi {{meeting_date}}",
            Some("2025-09-25T20:05:39.000Z"),
        );
        assert_eq!(
            prompt,
            "Date: Thursday, 25 September 2025, 20:05 UTC\n---\n[Speaker A]: hi {{meeting_date}}"
        );
        let appended = render_summary_prompt("Summarise:", "text", None);
        assert!(appended.ends_with("\n\ntext"));
    }

    #[test]
    fn part_and_combine_prompts_keep_the_template_structure() {
        let template = "## Overview\n## Action items\n---\n{{transcript}}";
        let part = render_part_prompt(template, "[Ana]: hi", 2, 3, None);
        assert!(part.starts_with("This is part 2 of 3 "), "{part}");
        assert!(part.ends_with("---\n[Ana]: hi"));
        let combined = render_combine_prompt(template, &["one".into(), "two".into()], None);
        assert!(combined.contains("## Overview\n## Action items"));
        assert!(combined.contains("--- Part 1 of 2 ---\none\n"));
        assert!(combined.contains("--- Part 2 of 2 ---\ntwo\n"));
        assert!(!combined.contains("{{transcript}}"));
    }

    #[test]
    fn the_title_prompt_accepts_the_legacy_placeholder() {
        assert_eq!(render_title_prompt("T: {{summary}}", "S"), "T: S");
        assert_eq!(
            render_title_prompt(
                "Make a title.\n[The meeting transcript/summary will be inserted here]",
                "S"
            ),
            "Make a title.\nS"
        );
    }

    #[test]
    fn titles_are_cleaned_and_shortened() {
        assert_eq!(
            clean_title("  \"Quarterly planning\"  \n").as_deref(),
            Some("Quarterly planning")
        );
        assert_eq!(
            clean_title("Title: Budget review.").as_deref(),
            Some("Budget review")
        );
        assert_eq!(
            clean_title("# **Roadmap sync**").as_deref(),
            Some("Roadmap sync")
        );
        assert_eq!(clean_title("   \n  "), None);
        let long = clean_title(&"word ".repeat(30)).unwrap();
        assert!(long.chars().count() <= 60, "{long}");
        assert!(long.ends_with('…'));
        let unbroken = clean_title(&"é".repeat(100)).unwrap();
        assert_eq!(unbroken.chars().count(), 60);
    }

    #[test]
    fn the_first_heading_is_the_fallback_title() {
        assert_eq!(
            heading_title("Intro\n\n## Launch plan review\n\ntext").as_deref(),
            Some("Launch plan review")
        );
        assert_eq!(heading_title("no headings"), None);
    }
}
