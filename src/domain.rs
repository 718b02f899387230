//! The values a request carries into the application, each parsed once at the edge (the API,
//! the forms) so that what takes one never checks it again: a meeting date, a job title, a
//! prompt template's name. Each type owns its parse and the words that refuse bad input.

use std::path::Path;

use crate::error::AppError;
use crate::jobs::{meeting_date_millis, parse_meeting_date_in};

/// When the meeting took place: ISO 8601 (`2025-09-25T20:05:00Z`) or a day (`2025-09-25`).
/// Without one, a Plaud link's date or the upload time is used.
#[derive(Debug, Clone, PartialEq, Eq, utoipa::ToSchema)]
#[schema(example = "2025-09-25T20:05:00Z")]
// (The lines above are the API document's description.) Held as ISO 8601 in UTC with
// milliseconds (`2025-09-25T20:05:00.000Z`), within the years a meeting can have.
pub struct MeetingDate(String);

impl MeetingDate {
    /// What a form says under a date field it cannot read.
    pub const FORM_PROBLEM: &'static str = "This is not a date FocusFlow understands. Pick one \
        with the date field, or write it like 2025-09-25 14:30.";

    /// RFC 3339, `2025-09-25 20:05`, a day, or seconds/milliseconds since the epoch; a time
    /// without an offset is read in UTC.
    pub fn parse(text: &str) -> Option<Self> {
        Self::parse_in(text, crate::zone::Zone::UTC)
    }

    /// As [`Self::parse`], a time without an offset read in `zone` (the zone of the person who
    /// typed it in a form).
    pub fn parse_in(text: &str, zone: crate::zone::Zone) -> Option<Self> {
        parse_meeting_date_in(text, zone).map(Self)
    }

    /// The API's `meetingDate`: empty is none, anything else must be a date, or the request is
    /// refused with how to write one.
    pub fn from_api(text: &str) -> Result<Option<Self>, AppError> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        Self::parse(text).map(Some).ok_or_else(|| {
            AppError::bad_request(format!(
                "\"meetingDate\" is not a date we understand: {text:?} (use e.g. 2025-09-25T20:05:00Z)"
            ))
        })
    }

    /// A filter's bound (`from`, `to`) in milliseconds since the epoch; a `to` given as a day
    /// (`whole_day`) includes all of it.
    pub fn bound(name: &str, text: &str, whole_day: bool) -> Result<i64, AppError> {
        let ms = Self::parse(text)
            .and_then(|date| meeting_date_millis(&date.0))
            .ok_or_else(|| {
                AppError::bad_request(format!("\"{name}\" is not a date (use e.g. 2025-09-25)"))
            })?;
        Ok(if whole_day && text.trim().len() == 10 {
            ms + 86_400_000
        } else {
            ms
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A job's title as a person gave it: one line, trimmed, at most [`Title::MAX_CHARS`]
/// characters. An empty one is no title (it clears the title it replaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    pub const MAX_CHARS: usize = 200;

    /// The title, `None` when empty, or what is wrong with it worded to follow the field's
    /// name ("is longer than 200 characters").
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        let text = text.trim();
        if text.chars().count() > Self::MAX_CHARS {
            return Err(format!("is longer than {} characters", Self::MAX_CHARS));
        }
        if text.chars().any(char::is_control) {
            return Err("must be one line without control characters".into());
        }
        Ok((!text.is_empty()).then(|| Self(text.to_string())))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The name of a prompt template that exists in the prompts folder (`one_on_one`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateName(String);

impl TemplateName {
    /// The name, trimmed, `None` when empty; one not in `prompts_dir` is refused with the
    /// names there are.
    pub fn parse(text: &str, prompts_dir: &Path) -> Result<Option<Self>, AppError> {
        let name = text.trim();
        if name.is_empty() {
            return Ok(None);
        }
        crate::pipeline::templates::resolve(prompts_dir, name)
            .map_err(|error| AppError::bad_request(error.to_string()))?;
        Ok(Some(Self(name.to_string())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_read_once_with_one_message() {
        assert_eq!(
            MeetingDate::from_api("2025-09-25")
                .unwrap()
                .unwrap()
                .as_str(),
            "2025-09-25T00:00:00.000Z"
        );
        assert_eq!(MeetingDate::from_api("  ").unwrap(), None);
        let refused = MeetingDate::from_api("soon").unwrap_err().public_message();
        assert_eq!(
            refused,
            "\"meetingDate\" is not a date we understand: \"soon\" (use e.g. 2025-09-25T20:05:00Z)"
        );
        let day = MeetingDate::bound("to", "2025-09-25", true).unwrap();
        assert_eq!(
            day - MeetingDate::bound("to", "2025-09-25", false).unwrap(),
            86_400_000
        );
        assert!(MeetingDate::bound("from", "x", false).is_err());
    }

    #[test]
    fn titles_are_one_short_line() {
        assert_eq!(Title::parse("  ").unwrap(), None);
        assert_eq!(
            Title::parse(" Budget ").unwrap().unwrap().into_string(),
            "Budget"
        );
        assert!(Title::parse(&"x".repeat(201)).is_err());
        assert!(Title::parse("a\nb").is_err());
    }
}
