//! The domain: a job, its status, its checkpoint and the transitions between them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A job's identifier. Checked once at the edge, so it is always safe inside a file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct JobId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a valid job id")]
pub struct InvalidJobId;

impl JobId {
    /// A fresh random id (a UUID, like the original app's `crypto.randomUUID()`).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn parse(value: &str) -> Result<Self, InvalidJobId> {
        let valid = !value.is_empty()
            && value.len() <= 100
            && value
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
            && !value.starts_with('-');
        if valid {
            Ok(Self(value.to_string()))
        } else {
            Err(InvalidJobId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A map keyed by job ids answers for the id's text too (the id hashes and compares as its
/// text does).
impl std::borrow::Borrow<str> for JobId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        JobId::parse(&value).map_err(serde::de::Error::custom)
    }
}

/// Where a job is in its life. The names are the contract's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Queued,
    Resolving,
    Downloading,
    Transcribing,
    Summarizing,
    Completed,
    Error,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Queued,
        Status::Resolving,
        Status::Downloading,
        Status::Transcribing,
        Status::Summarizing,
        Status::Completed,
        Status::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Resolving => "resolving",
            Status::Downloading => "downloading",
            Status::Transcribing => "transcribing",
            Status::Summarizing => "summarizing",
            Status::Completed => "completed",
            Status::Error => "error",
        }
    }

    /// Completed or failed: nothing will happen to the job until someone acts.
    pub fn is_finished(self) -> bool {
        matches!(self, Status::Completed | Status::Error)
    }

    /// A stage is working on the job right now.
    pub fn is_running(self) -> bool {
        matches!(
            self,
            Status::Resolving | Status::Downloading | Status::Transcribing | Status::Summarizing
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown status {0:?}")]
pub struct UnknownName(pub String);

impl FromStr for Status {
    type Err = UnknownName;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
            .ok_or_else(|| UnknownName(value.to_string()))
    }
}

/// The pipeline's stages, in order.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Resolve,
    Download,
    Transcribe,
    Summarize,
}

impl Stage {
    pub const ALL: [Stage; 4] = [
        Stage::Resolve,
        Stage::Download,
        Stage::Transcribe,
        Stage::Summarize,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Resolve => "resolve",
            Stage::Download => "download",
            Stage::Transcribe => "transcribe",
            Stage::Summarize => "summarize",
        }
    }

    /// The status a job shows while this stage runs.
    pub fn status(self) -> Status {
        match self {
            Stage::Resolve => Status::Resolving,
            Stage::Download => Status::Downloading,
            Stage::Transcribe => Status::Transcribing,
            Stage::Summarize => Status::Summarizing,
        }
    }

    /// The stage that runs after this one, if any.
    pub fn next(self) -> Option<Stage> {
        match self {
            Stage::Resolve => Some(Stage::Download),
            Stage::Download => Some(Stage::Transcribe),
            Stage::Transcribe => Some(Stage::Summarize),
            Stage::Summarize => None,
        }
    }

    /// The first stage still to run for a job whose last finished stage is `checkpoint`.
    pub fn first_after(checkpoint: Option<Stage>) -> Option<Stage> {
        match checkpoint {
            None => Some(Stage::Resolve),
            Some(done) => done.next(),
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = UnknownName;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.as_str() == value)
            .ok_or_else(|| UnknownName(value.to_string()))
    }
}

/// The last finished stage, in the original's JSON shape `{"step": "download"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Checkpoint {
    pub step: Stage,
}

/// Download progress, recorded about once a second while the audio streams in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Progress {
    pub bytes: u64,
    pub total: Option<u64>,
    pub percent: Option<u8>,
}

impl Progress {
    pub fn new(bytes: u64, total: Option<u64>) -> Self {
        let percent = total
            .filter(|total| *total > 0)
            .map(|total| ((bytes.min(total) * 100) / total) as u8);
        Self {
            bytes,
            total,
            percent,
        }
    }
}

/// A job as the store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub url: String,
    pub resolved_url: Option<String>,
    /// ISO 8601, as given or as found.
    pub meeting_date: Option<String>,
    pub status: Status,
    pub title: Option<String>,
    pub summary: Option<String>,
    /// Paths relative to the data directory.
    pub summary_path: Option<String>,
    pub transcript_path: Option<String>,
    pub file_path: Option<String>,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub updated_at: i64,
    pub error: Option<String>,
    /// Why the job failed, beside `error`; None for a job that has not failed, and for one that
    /// failed before kinds were stored (see [`Job::failure_kind`]).
    pub error_kind: Option<ErrorKind>,
    pub checkpoint: Option<Stage>,
    /// How many times a worker has started on this job.
    pub attempts: u32,
    pub progress: Option<Progress>,
    /// The transcription provider's id for a transcript in flight, so a restart polls it
    /// instead of uploading the audio again.
    pub transcription_ref: Option<String>,
    /// Names for the transcript's speaker labels (`"A"` → `"Ana"`).
    pub speakers: SpeakerNames,
    /// The prompt template chosen for the job; None = the default.
    pub template: Option<String>,
}

/// Why a job failed, stored beside its error text so that what the page suggests follows from
/// what went wrong, not from the wording of a message. Stored as [`ErrorKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The job's link is not a URL that can be fetched.
    BadLink,
    /// The address guard refused the URL: a private, loopback or metadata address.
    AddressRefused,
    /// The link answered 404 or 410: nothing is there.
    LinkNotFound,
    /// The link served something other than audio or video.
    NotAudio,
    /// The recording is larger than the server takes.
    TooLarge,
    /// The download failed otherwise.
    DownloadFailed,
    /// A provider turned the key down (401 or 403).
    ProviderAuth,
    /// A provider was rate limited or unavailable, and stayed so through the retries.
    ProviderUnavailable,
    /// A service, or the job's time budget, ran out of time.
    TimedOut,
    /// Transcription failed otherwise.
    TranscriptionFailed,
    /// The summary failed otherwise.
    SummaryFailed,
    /// Anything else (the store, a file that could not be written).
    Other,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::BadLink,
        ErrorKind::AddressRefused,
        ErrorKind::LinkNotFound,
        ErrorKind::NotAudio,
        ErrorKind::TooLarge,
        ErrorKind::DownloadFailed,
        ErrorKind::ProviderAuth,
        ErrorKind::ProviderUnavailable,
        ErrorKind::TimedOut,
        ErrorKind::TranscriptionFailed,
        ErrorKind::SummaryFailed,
        ErrorKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadLink => "bad_link",
            ErrorKind::AddressRefused => "address_refused",
            ErrorKind::LinkNotFound => "link_not_found",
            ErrorKind::NotAudio => "not_audio",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::DownloadFailed => "download_failed",
            ErrorKind::ProviderAuth => "provider_auth",
            ErrorKind::ProviderUnavailable => "provider_unavailable",
            ErrorKind::TimedOut => "timed_out",
            ErrorKind::TranscriptionFailed => "transcription_failed",
            ErrorKind::SummaryFailed => "summary_failed",
            ErrorKind::Other => "other",
        }
    }

    /// The kind of an error recorded before kinds were stored, guessed from its text the way
    /// the job page used to. None when the text says nothing recognisable.
    fn from_legacy_text(error: &str) -> Option<Self> {
        let error = error.to_ascii_lowercase();
        if error.contains("refused") {
            Some(Self::AddressRefused)
        } else if error.contains("did not serve audio") || error.contains("text/html") {
            Some(Self::NotAudio)
        } else if error.contains("too large") || error.contains("larger than") {
            Some(Self::TooLarge)
        } else if error.contains("timed out") || error.contains("time budget") {
            Some(Self::TimedOut)
        } else {
            None
        }
    }
}

impl FromStr for ErrorKind {
    type Err = UnknownName;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        ErrorKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == value)
            .ok_or_else(|| UnknownName(value.to_string()))
    }
}

/// Where a job came from. Stored, and shown in the JSON API, as the job's `url`: the link
/// itself, or `upload:<file name>` / `transcript:<file name>` for input a person brought, so
/// the stored text and the API stay as they were while the code matches on variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobSource {
    /// A link to fetch: a Plaud share link or an audio URL, as submitted.
    Link(String),
    /// An uploaded recording, by its file name.
    Upload(String),
    /// A pasted or uploaded transcript, by its name.
    Transcript(String),
}

impl JobSource {
    const UPLOAD: &str = "upload:";
    const TRANSCRIPT: &str = "transcript:";

    /// Reads a stored `url`. Anything without one of the two prefixes is a link.
    pub fn parse(stored: &str) -> Self {
        if let Some(name) = stored.strip_prefix(Self::UPLOAD) {
            Self::Upload(name.to_string())
        } else if let Some(name) = stored.strip_prefix(Self::TRANSCRIPT) {
            Self::Transcript(name.to_string())
        } else {
            Self::Link(stored.to_string())
        }
    }

    /// The checkpoint a job with this source is created at: `Download` for an uploaded
    /// recording, `Transcribe` for a transcript, none for a link (it starts at the beginning).
    pub fn brought_input(&self) -> Option<Stage> {
        match self {
            Self::Link(_) => None,
            Self::Upload(_) => Some(Stage::Download),
            Self::Transcript(_) => Some(Stage::Transcribe),
        }
    }

    /// The link to fetch, for a job created from one.
    pub fn link(&self) -> Option<&str> {
        match self {
            Self::Link(link) => Some(link),
            Self::Upload(_) | Self::Transcript(_) => None,
        }
    }
}

impl fmt::Display for JobSource {
    /// The stored form, the job's `url`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Link(link) => f.write_str(link),
            Self::Upload(name) => write!(f, "{}{name}", Self::UPLOAD),
            Self::Transcript(name) => write!(f, "{}{name}", Self::TRANSCRIPT),
        }
    }
}

/// Speaker label (`A` of `[Speaker A]`, or a name a caption file gave) → a person's name.
pub type SpeakerNames = std::collections::BTreeMap<String, String>;

impl Job {
    /// The stage that a worker will run next (None once every stage is done).
    pub fn next_stage(&self) -> Option<Stage> {
        Stage::first_after(self.checkpoint)
    }

    /// Why the job failed: the stored kind, or for a job that failed before kinds were stored,
    /// the kind its error text suggests.
    pub fn failure_kind(&self) -> Option<ErrorKind> {
        self.error_kind
            .or_else(|| self.error.as_deref().and_then(ErrorKind::from_legacy_text))
    }

    /// Where the job came from, read from its stored `url`.
    pub fn source(&self) -> JobSource {
        JobSource::parse(&self.url)
    }

    /// The checkpoint a job was created at when it brought its own input. A full retry starts
    /// over from there, not from a URL.
    pub fn brought_input(&self) -> Option<Stage> {
        self.source().brought_input()
    }

    /// The stage working on the job now, from its status.
    pub fn current_stage(&self) -> Option<Stage> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.status() == self.status)
    }
}

/// One line of a job's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// Position in the store; increases across all jobs.
    #[serde(skip)]
    pub seq: i64,
    /// Milliseconds since the epoch.
    pub ts: i64,
    pub message: String,
}

impl LogLine {
    /// The original app's log string: `[2025-09-25T20:05:39.000Z] message`.
    pub fn to_legacy_string(&self) -> String {
        format!("[{}] {}", iso_millis(self.ts), self.message)
    }
}

pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Milliseconds since the epoch as `2025-09-25T20:05:39.000Z`, JavaScript's `toISOString()`.
pub fn iso_millis(millis: i64) -> String {
    // Not `format("%Y-…")`: that parses its pattern on every call, and every log line of every
    // listed job comes through here.
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The years a meeting date may fall in: a recording older or newer than these is a typo (or a
/// year such as -0001, which sorts and shows badly everywhere).
pub const MEETING_YEARS: std::ops::RangeInclusive<i32> = 1900..=2200;

/// Parses the meeting dates people and pages write: RFC 3339, `2025-09-25 20:05:39`,
/// `2025-09-25T20:05`, `2025-09-25`, or milliseconds/seconds since the epoch.
/// Returns the ISO 8601 form; local times without an offset are taken as UTC. Dates outside
/// [`MEETING_YEARS`] are refused.
pub fn parse_meeting_date(value: &str) -> Option<String> {
    parse_meeting_date_in(value, crate::zone::Zone::UTC)
}

/// As [`parse_meeting_date`], with a date and time that name no offset (what a form's
/// `datetime-local` field sends) read in `zone`, the zone of the person who typed it. A date
/// alone stays that day (midnight UTC), whatever the zone.
pub fn parse_meeting_date_in(value: &str, zone: crate::zone::Zone) -> Option<String> {
    use chrono::Datelike;
    parse_instant(value.trim(), zone)
        .filter(|date| MEETING_YEARS.contains(&date.year()))
        .map(|date| date.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

fn parse_instant(value: &str, zone: crate::zone::Zone) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
    if value.is_empty() {
        return None;
    }
    if let Ok(date) = DateTime::parse_from_rfc3339(value) {
        return Some(date.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(date) = NaiveDateTime::parse_from_str(value, format) {
            // A time skipped by a clock change does not exist: it is not guessed at.
            return zone
                .from_local_datetime(&date)
                .earliest()
                .map(|local| local.with_timezone(&Utc));
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Some(date.and_hms_opt(0, 0, 0)?.and_utc());
    }
    if let Ok(number) = value.parse::<i64>() {
        // Ten digits are seconds (until 2286), more are milliseconds.
        let millis = if number.abs() < 100_000_000_000 {
            number.checked_mul(1000)?
        } else {
            number
        };
        return DateTime::from_timestamp_millis(millis).filter(|date| date.timestamp() > 0);
    }
    None
}

/// Milliseconds since the epoch of an ISO 8601 meeting date, for ordering.
pub fn meeting_date_millis(value: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|date| date.timestamp_millis())
        .or_else(|| {
            parse_meeting_date(value).and_then(|iso| {
                chrono::DateTime::parse_from_rfc3339(&iso)
                    .ok()
                    .map(|date| date.timestamp_millis())
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_are_stored_by_name_and_old_errors_are_read_by_their_text() {
        for kind in ErrorKind::ALL {
            assert_eq!(kind.as_str().parse::<ErrorKind>().ok(), Some(kind));
        }
        assert!("nonsense".parse::<ErrorKind>().is_err());
        assert_eq!(
            ErrorKind::from_legacy_text("refused to fetch from 10.0.0.1: it is private"),
            Some(ErrorKind::AddressRefused)
        );
        assert_eq!(
            ErrorKind::from_legacy_text("the URL did not serve audio (got text/html)"),
            Some(ErrorKind::NotAudio)
        );
        assert_eq!(
            ErrorKind::from_legacy_text("the audio is 3 GB, larger than the limit"),
            Some(ErrorKind::TooLarge)
        );
        assert_eq!(
            ErrorKind::from_legacy_text("the job took longer than its time budget of 5 s"),
            Some(ErrorKind::TimedOut)
        );
        assert_eq!(ErrorKind::from_legacy_text("the LLM said no"), None);
    }

    #[test]
    fn a_source_is_stored_as_the_url_it_was_read_from() {
        for (stored, source, start) in [
            (
                "https://web.plaud.ai/share/abc",
                JobSource::Link("https://web.plaud.ai/share/abc".into()),
                None,
            ),
            (
                "upload:meeting.mp3",
                JobSource::Upload("meeting.mp3".into()),
                Some(Stage::Download),
            ),
            (
                "transcript:notes.vtt",
                JobSource::Transcript("notes.vtt".into()),
                Some(Stage::Transcribe),
            ),
        ] {
            let parsed = JobSource::parse(stored);
            assert_eq!(parsed, source);
            assert_eq!(parsed.to_string(), stored);
            assert_eq!(parsed.brought_input(), start);
        }
        assert_eq!(JobSource::parse("upload:x").link(), None);
        assert_eq!(JobSource::parse("https://a/b").link(), Some("https://a/b"));
    }

    #[test]
    fn times_are_written_as_javascript_writes_them() {
        assert_eq!(iso_millis(1_758_830_739_000), "2025-09-25T20:05:39.000Z");
        assert_eq!(iso_millis(1_758_830_739_042), "2025-09-25T20:05:39.042Z");
        assert_eq!(iso_millis(0), "1970-01-01T00:00:00.000Z");
        let line = LogLine {
            seq: 1,
            ts: 1_758_830_739_007,
            message: "Job created".into(),
        };
        assert_eq!(
            line.to_legacy_string(),
            "[2025-09-25T20:05:39.007Z] Job created"
        );
    }

    #[test]
    fn job_ids_are_safe_in_paths() {
        assert!(JobId::parse("3f2b8c1e-9d4a-4c2e-8f00-1234567890ab").is_ok());
        assert!(JobId::parse("1695672339000").is_ok());
        for bad in ["", "../etc", "a/b", "a.b", "-rf", "a b", &"x".repeat(101)] {
            assert!(JobId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stages_follow_their_checkpoint() {
        assert_eq!(Stage::first_after(None), Some(Stage::Resolve));
        assert_eq!(
            Stage::first_after(Some(Stage::Download)),
            Some(Stage::Transcribe)
        );
        assert_eq!(Stage::first_after(Some(Stage::Summarize)), None);
        let json = serde_json::to_string(&Checkpoint {
            step: Stage::Download,
        })
        .unwrap();
        assert_eq!(json, r#"{"step":"download"}"#);
    }

    #[test]
    fn statuses_round_trip_their_names() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>().unwrap(), status);
        }
        assert!("running".parse::<Status>().is_err());
    }

    #[test]
    fn meeting_dates_in_many_spellings() {
        let expected = "2025-09-25T20:05:39.000Z";
        for value in [
            "2025-09-25 20:05:39",
            "2025-09-25T20:05:39Z",
            "2025-09-25T22:05:39+02:00",
            "1758830739",
            "1758830739000",
        ] {
            assert_eq!(
                parse_meeting_date(value).as_deref(),
                Some(expected),
                "{value}"
            );
        }
        assert_eq!(
            parse_meeting_date("2025-09-25").as_deref(),
            Some("2025-09-25T00:00:00.000Z")
        );
        assert_eq!(parse_meeting_date("yesterday"), None);
        assert_eq!(parse_meeting_date("99999999999999999999"), None);
    }

    #[test]
    fn a_typed_time_is_read_in_the_typists_zone() {
        let berlin = crate::zone::Zone::named("Europe/Berlin").unwrap();
        assert_eq!(
            parse_meeting_date_in("2025-09-25T14:30", berlin).as_deref(),
            Some("2025-09-25T12:30:00.000Z")
        );
        // An offset given wins; a date alone stays its day.
        assert_eq!(
            parse_meeting_date_in("2025-09-25T14:30:00Z", berlin).as_deref(),
            Some("2025-09-25T14:30:00.000Z")
        );
        assert_eq!(
            parse_meeting_date_in("2025-09-25", berlin).as_deref(),
            Some("2025-09-25T00:00:00.000Z")
        );
        // 02:30 on the night clocks go forward does not exist in Berlin.
        assert_eq!(parse_meeting_date_in("2025-03-30T02:30", berlin), None);
    }

    #[test]
    fn meeting_dates_outside_sane_years_are_refused() {
        for value in [
            "-0001-01-01T00:00:00Z",
            "0000-01-01",
            "1899-12-31T23:59:59Z",
            "2201-01-01",
            "9999-12-31T23:59:59Z",
            "+12345-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_meeting_date(value), None, "{value}");
        }
        assert!(parse_meeting_date("1900-01-01").is_some());
        assert!(parse_meeting_date("2200-12-31T23:59:59Z").is_some());
    }

    #[test]
    fn progress_percent() {
        assert_eq!(Progress::new(50, Some(200)).percent, Some(25));
        assert_eq!(Progress::new(50, None).percent, None);
        assert_eq!(Progress::new(500, Some(200)).percent, Some(100));
        assert_eq!(Progress::new(0, Some(0)).percent, None);
    }
}
