//! The JSON bodies and path parameters the API takes, as the types handlers receive. The same
//! types describe them in the OpenAPI document, so the description is the parser.
//!
//! Each body is read as a whole, then checked member by member in the order the API always
//! checked them, with the API's own words for what is wrong (`"url" is required`, `"template"
//! must be a string`): a client gets the same 400 it always got. A refusal travels through
//! serde as a [`Refusal`], which [`crate::web::api::extract::ApiJson`] answers word for word.

use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::{MeetingDate, Title};

/// The `{id}` of every job route.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct JobIdParam {
    /// The job's id (a UUID for jobs this server created).
    pub id: String,
}

/// `POST /api/jobs` as JSON: a link, or a pasted transcript.
#[derive(Deserialize, ToSchema)]
#[serde(untagged, try_from = "Value")]
pub enum CreateJob {
    Link(CreateFromLink),
    Transcript(CreateFromTranscript),
}

/// A job from an audio or video URL, or a Plaud share link.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct CreateFromLink {
    /// `http` or `https`; hosts that resolve to private addresses are refused unless the server
    /// allows them.
    #[schema(
        example = "https://web.plaud.ai/share/0123456789abcdef",
        max_length = 2048
    )]
    pub url: String,
    pub meeting_date: Option<MeetingDate>,
    pub template: Option<TemplateName>,
}

/// A job from a pasted transcript (plain text, WebVTT or SRT): it goes straight to the summary.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct CreateFromTranscript {
    #[schema(example = "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n<v Ana>Shall we start?")]
    pub transcript: String,
    pub meeting_date: Option<MeetingDate>,
    pub template: Option<TemplateName>,
}

/// A prompt template from `GET /api/templates`, e.g. `one_on_one`; the default one otherwise.
#[derive(ToSchema)]
#[schema(example = "one_on_one")]
// As sent: whether it names a template is known only to the server's prompts folder, so the
// handler makes it a `domain::TemplateName`.
pub struct TemplateName(pub String);

/// `POST /api/jobs` as `multipart/form-data`: a `file` (audio, video, or a `.txt`, `.vtt` or
/// `.srt` transcript), or a `transcript` text field. The file streams to disk under the
/// server's size limit.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct CreateJobUpload {
    #[schema(value_type = Option<String>, format = Binary)]
    pub file: Option<crate::service::jobs::Source>,
    pub transcript: Option<String>,
    pub meeting_date: Option<String>,
    pub template: Option<String>,
}

/// `PATCH /api/jobs/{id}`: the fields to change.
#[derive(Deserialize, ToSchema)]
#[serde(try_from = "Value", rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchJob {
    /// One line, at most 200 characters; `null` or `""` clears it.
    #[schema(value_type = Option<String>, nullable, max_length = 200, example = "Quarterly budget review")]
    pub title: Option<Option<Title>>,
    /// ISO 8601 or a day; `null` or `""` clears it.
    #[schema(value_type = Option<String>, nullable, example = "2025-09-25")]
    pub meeting_date: Option<Option<MeetingDate>>,
}

/// `PUT /api/jobs/{id}/speakers`: a name for each speaker label of the transcript.
#[derive(Deserialize, ToSchema)]
#[serde(try_from = "Value")]
pub struct SpeakerNamesBody {
    /// Label to name, e.g. `{"A": "Ana", "B": "Ben"}`; `null` or `""` removes a name.
    #[schema(value_type = Object, example = json!({"A": "Ana", "B": "Ben"}))]
    pub speakers: Vec<(String, String)>,
}

// ------------------------------------------------------------------------------ reading

/// Why a body was refused, in the API's words. Displayed between two private-use characters
/// so the extractor finds it word for word inside serde's error (which adds a position).
#[derive(Debug)]
pub struct Refusal(String);

const REFUSAL_START: char = '\u{E000}';
const REFUSAL_END: char = '\u{E001}';

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{REFUSAL_START}{}{REFUSAL_END}", self.0)
    }
}

impl Refusal {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// The refusal inside a deserialisation error's text, if the error is one.
    pub fn find(text: &str) -> Option<&str> {
        let start = text.find(REFUSAL_START)? + REFUSAL_START.len_utf8();
        let end = start + text[start..].find(REFUSAL_END)?;
        Some(&text[start..end])
    }
}

/// A member as sent: `null`, a value of the expected type, or something else.
enum Given<T> {
    Null,
    Value(T),
    Wrong,
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Given<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        if value.is_null() {
            return Ok(Given::Null);
        }
        Ok(serde_json::from_value(value).map_or(Given::Wrong, Given::Value))
    }
}

/// A member that is there (`Some`, even when `null`); absent members stay `None` by default.
fn present<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    deserializer: D,
) -> Result<Option<Given<T>>, D::Error> {
    Given::deserialize(deserializer).map(Some)
}

/// An object's members as `R`, or `not_object` when the body is no object.
fn members<R: DeserializeOwned>(body: Value, not_object: &str) -> Result<R, Refusal> {
    if !body.is_object() {
        return Err(Refusal::new(not_object));
    }
    serde_json::from_value(body)
        .map_err(|error| Refusal::new(format!("the JSON does not fit: {error}")))
}

/// `meetingDate` (or `meeting_date`) of a create request: a string, read as a date.
fn date_member(given: Option<Given<String>>) -> Result<Option<MeetingDate>, Refusal> {
    match given {
        None | Some(Given::Null) => Ok(None),
        Some(Given::Value(text)) => {
            MeetingDate::from_api(&text).map_err(|error| Refusal::new(error.public_message()))
        }
        Some(Given::Wrong) => Err(Refusal::new("\"meetingDate\" must be a string")),
    }
}

fn template_member(given: Option<Given<String>>) -> Result<Option<TemplateName>, Refusal> {
    match given {
        None | Some(Given::Null) => Ok(None),
        Some(Given::Value(name)) => Ok(Some(TemplateName(name))),
        Some(Given::Wrong) => Err(Refusal::new("\"template\" must be a string")),
    }
}

#[derive(Deserialize)]
struct CreateMembers {
    #[serde(default, deserialize_with = "present")]
    url: Option<Given<String>>,
    #[serde(default, deserialize_with = "present")]
    transcript: Option<Given<String>>,
    #[serde(default, rename = "meetingDate", deserialize_with = "present")]
    meeting_date: Option<Given<String>>,
    #[serde(default, rename = "meeting_date", deserialize_with = "present")]
    meeting_date_snake: Option<Given<String>>,
    #[serde(default, deserialize_with = "present")]
    template: Option<Given<String>>,
}

impl TryFrom<Value> for CreateJob {
    type Error = Refusal;

    fn try_from(body: Value) -> Result<Self, Refusal> {
        let members: CreateMembers = members(
            body,
            "the body must be a JSON object such as {\"url\": \"https://…\"}",
        )?;
        let date = members.meeting_date.or(members.meeting_date_snake);
        if let Some(transcript) = members.transcript {
            let Given::Value(transcript) = transcript else {
                return Err(Refusal::new("\"transcript\" must be a string"));
            };
            if members.url.is_some() {
                return Err(Refusal::new(
                    "send either a \"url\" or a \"transcript\", not both",
                ));
            }
            return Ok(CreateJob::Transcript(CreateFromTranscript {
                transcript,
                meeting_date: date_member(date)?,
                template: template_member(members.template)?,
            }));
        }
        let url = match members.url {
            Some(Given::Value(url)) => url,
            Some(_) => return Err(Refusal::new("\"url\" must be a string")),
            None => return Err(Refusal::new("\"url\" is required")),
        };
        Ok(CreateJob::Link(CreateFromLink {
            url,
            meeting_date: date_member(date)?,
            template: template_member(members.template)?,
        }))
    }
}

#[derive(Deserialize)]
struct PatchMembers {
    #[serde(default, deserialize_with = "present")]
    title: Option<Given<String>>,
    #[serde(default, rename = "meetingDate", deserialize_with = "present")]
    meeting_date: Option<Given<String>>,
    #[serde(default, rename = "meeting_date", deserialize_with = "present")]
    meeting_date_snake: Option<Given<String>>,
    #[serde(flatten)]
    others: BTreeMap<String, IgnoredAny>,
}

impl TryFrom<Value> for PatchJob {
    type Error = Refusal;

    /// Members are taken in name order (as the API always took them), so a body with two
    /// problems is told about the same one as before.
    fn try_from(body: Value) -> Result<Self, Refusal> {
        let members: PatchMembers = members(
            body,
            "the body must be a JSON object such as {\"title\": \"…\"}",
        )?;
        let mut sent: BTreeMap<String, Option<Given<String>>> = members
            .others
            .into_keys()
            .map(|name| (name, None))
            .collect();
        for (name, given) in [
            ("title", members.title),
            ("meetingDate", members.meeting_date),
            ("meeting_date", members.meeting_date_snake),
        ] {
            if let Some(given) = given {
                sent.insert(name.to_string(), Some(given));
            }
        }
        let mut patch = PatchJob {
            title: None,
            meeting_date: None,
        };
        for (name, given) in sent {
            match (name.as_str(), given) {
                ("title", Some(Given::Null)) => patch.title = Some(None),
                ("title", Some(Given::Value(title))) => {
                    let title = Title::parse(&title)
                        .map_err(|problem| Refusal::new(format!("\"title\" {problem}")))?;
                    patch.title = Some(title);
                }
                (_, Some(Given::Null)) => patch.meeting_date = Some(None),
                (_, Some(Given::Value(text))) => {
                    let date = MeetingDate::from_api(&text)
                        .map_err(|error| Refusal::new(error.public_message()))?;
                    patch.meeting_date = Some(date);
                }
                (_, Some(Given::Wrong)) => {
                    return Err(Refusal::new(format!("\"{name}\" must be a string or null")));
                }
                (other, None) => {
                    return Err(Refusal::new(format!(
                        "\"{other}\" cannot be changed (only \"title\" and \"meetingDate\")"
                    )));
                }
            }
        }
        if patch.title.is_none() && patch.meeting_date.is_none() {
            return Err(Refusal::new(
                "nothing to change: send \"title\" and/or \"meetingDate\"",
            ));
        }
        Ok(patch)
    }
}

#[derive(Deserialize)]
struct SpeakerMembers {
    #[serde(default, deserialize_with = "present")]
    speakers: Option<Given<BTreeMap<String, Given<String>>>>,
}

impl TryFrom<Value> for SpeakerNamesBody {
    type Error = Refusal;

    fn try_from(body: Value) -> Result<Self, Refusal> {
        const SHAPE: &str = "the body must be {\"speakers\": {\"A\": \"Ana\", …}}";
        let members: SpeakerMembers = members(body, SHAPE)?;
        let Some(Given::Value(given)) = members.speakers else {
            return Err(Refusal::new(SHAPE));
        };
        let mut speakers = Vec::with_capacity(given.len());
        for (label, name) in given {
            match name {
                Given::Null => speakers.push((label, String::new())),
                Given::Value(name) => speakers.push((label, name)),
                Given::Wrong => {
                    return Err(Refusal::new(format!(
                        "the name for speaker {label:?} must be a string"
                    )));
                }
            }
        }
        Ok(Self { speakers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal<T: DeserializeOwned>(body: &str) -> String {
        match serde_json::from_str::<T>(body) {
            Ok(_) => panic!("{body} was taken"),
            Err(error) => Refusal::find(&error.to_string())
                .expect("a refusal in the API's words")
                .to_string(),
        }
    }

    #[test]
    fn create_bodies_are_refused_in_the_apis_words() {
        assert_eq!(
            refusal::<CreateJob>("[1]"),
            "the body must be a JSON object such as {\"url\": \"https://…\"}"
        );
        assert_eq!(refusal::<CreateJob>("{}"), "\"url\" is required");
        assert_eq!(
            refusal::<CreateJob>(r#"{"url": null}"#),
            "\"url\" must be a string"
        );
        assert_eq!(
            refusal::<CreateJob>(r#"{"transcript": "x", "url": null}"#),
            "send either a \"url\" or a \"transcript\", not both"
        );
        assert_eq!(
            refusal::<CreateJob>(r#"{"url": "https://a.example/x.mp3", "meetingDate": 5}"#),
            "\"meetingDate\" must be a string"
        );
        let Ok(CreateJob::Link(link)) = serde_json::from_str::<CreateJob>(
            r#"{"url": "https://a.example/x.mp3", "meeting_date": "2025-09-25", "template": "t"}"#,
        ) else {
            panic!("a link job");
        };
        assert_eq!(
            link.meeting_date.unwrap().as_str(),
            "2025-09-25T00:00:00.000Z"
        );
        assert_eq!(link.template.unwrap().0, "t");
    }

    #[test]
    fn patches_name_the_first_member_that_cannot_change() {
        assert_eq!(
            refusal::<PatchJob>(r#"{"zzz": 1, "title": 5}"#),
            "\"title\" must be a string or null"
        );
        assert_eq!(
            refusal::<PatchJob>(r#"{"id": 1}"#),
            "\"id\" cannot be changed (only \"title\" and \"meetingDate\")"
        );
        assert_eq!(
            refusal::<PatchJob>("{}"),
            "nothing to change: send \"title\" and/or \"meetingDate\""
        );
        let patch: PatchJob =
            serde_json::from_str(r#"{"title": null, "meetingDate": ""}"#).unwrap();
        assert_eq!(patch.title, Some(None));
        assert_eq!(patch.meeting_date, Some(None));
    }

    #[test]
    fn speaker_names_are_strings_or_null() {
        let body: SpeakerNamesBody =
            serde_json::from_str(r#"{"speakers": {"B": null, "A": "Ana"}}"#).unwrap();
        assert_eq!(
            body.speakers,
            vec![
                ("A".to_string(), "Ana".to_string()),
                ("B".to_string(), String::new())
            ]
        );
        assert_eq!(
            refusal::<SpeakerNamesBody>(r#"{"speakers": {"A": 1}}"#),
            "the name for speaker \"A\" must be a string"
        );
        assert_eq!(
            refusal::<SpeakerNamesBody>("[]"),
            "the body must be {\"speakers\": {\"A\": \"Ana\", …}}"
        );
    }
}
