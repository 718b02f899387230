//! What callers ask the store to write, in domain terms: a new job, and a set of changes to one.
//! Each backend turns them into its own statements.

use crate::jobs::{ErrorKind, Progress, SpeakerNames, Stage, Status, meeting_date_millis};

/// What a new job starts with.
#[derive(Debug, Clone, Default)]
pub struct NewJob {
    pub url: String,
    pub meeting_date: Option<String>,
    /// The prompt template chosen for the job (a name checked against the prompts folder).
    pub template: Option<String>,
    /// Stages already done at creation: an upload starts after `download`, a transcript
    /// brought along starts after `transcribe`.
    pub checkpoint: Option<Stage>,
    pub file_path: Option<String>,
    pub transcript_path: Option<String>,
    /// A log line after "Job created" that says where the job came from.
    pub origin_log: Option<String>,
}

impl NewJob {
    /// The job's place in the list: its meeting date, or without one its creation time.
    pub(crate) fn sort_ms(&self, created_at: i64) -> i64 {
        self.meeting_date
            .as_deref()
            .and_then(meeting_date_millis)
            .unwrap_or(created_at)
    }
}

/// One field of a job set to a value. Later changes of the same field win.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change {
    /// With `Queued`, the job also goes to the back of the queue.
    Status(Status),
    /// The error text and its kind, always written together.
    Error {
        message: Option<String>,
        kind: Option<ErrorKind>,
    },
    Checkpoint(Option<Stage>),
    ResolvedUrl(Option<String>),
    /// The date and the job's place in the list that follows from it.
    MeetingDate {
        date: Option<String>,
        sort_ms: i64,
    },
    Title(Option<String>),
    Summary(Option<String>),
    SummaryPath(Option<String>),
    TranscriptPath(Option<String>),
    FilePath(Option<String>),
    Progress(Option<Progress>),
    /// An empty map clears the names.
    Speakers(SpeakerNames),
    TranscriptionRef(Option<String>),
    ResetAttempts,
}

/// Which artifact files go once a change has committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    /// Every file of the job (a full retry).
    All,
    /// What the stages after this one made; the inputs the job was created with stay.
    After(Stage),
}

/// A set of changes to one job, applied in one statement with `updated_at`.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    fields: Vec<Change>,
    removal: Option<Removal>,
}

impl Changes {
    pub fn new() -> Self {
        Self::default()
    }

    fn with(mut self, change: Change) -> Self {
        self.fields.push(change);
        self
    }

    pub(crate) fn fields(&self) -> &[Change] {
        &self.fields
    }

    /// The speakers' names this change sets, if it sets them (the last such change wins).
    pub(crate) fn speaker_names(&self) -> Option<&SpeakerNames> {
        self.fields().iter().rev().find_map(|change| match change {
            Change::Speakers(names) => Some(names),
            _ => None,
        })
    }

    pub(crate) fn removal(&self) -> Option<Removal> {
        self.removal
    }

    /// Whether the change moves the job in the list (its meeting date sets its place).
    pub(crate) fn moves(&self) -> bool {
        self.fields
            .iter()
            .any(|change| matches!(change, Change::MeetingDate { .. }))
    }

    /// The status this change sets, if it sets one (the last one wins).
    pub(crate) fn new_status(&self) -> Option<Status> {
        self.fields.iter().rev().find_map(|change| match change {
            Change::Status(status) => Some(*status),
            _ => None,
        })
    }

    pub fn status(self, status: Status) -> Self {
        self.with(Change::Status(status))
    }

    /// Sets (or with None clears) the error text; its kind is cleared.
    pub fn error(self, error: Option<String>) -> Self {
        self.with(Change::Error {
            message: error,
            kind: None,
        })
    }

    /// Records why the job failed: the text for people, the kind for what the page suggests.
    pub fn failure(self, message: String, kind: ErrorKind) -> Self {
        self.with(Change::Error {
            message: Some(message),
            kind: Some(kind),
        })
    }

    pub fn checkpoint(self, stage: Option<Stage>) -> Self {
        self.with(Change::Checkpoint(stage))
    }

    pub fn resolved_url(self, url: Option<String>) -> Self {
        self.with(Change::ResolvedUrl(url))
    }

    /// Sets the meeting date and, with it, the job's place in the list.
    pub fn meeting_date(self, date: Option<String>, created_at: i64) -> Self {
        let sort_ms = date
            .as_deref()
            .and_then(meeting_date_millis)
            .unwrap_or(created_at);
        self.with(Change::MeetingDate { date, sort_ms })
    }

    pub fn title(self, title: Option<String>) -> Self {
        self.with(Change::Title(title))
    }

    pub fn summary(self, summary: Option<String>, path: Option<String>) -> Self {
        self.with(Change::Summary(summary))
            .with(Change::SummaryPath(path))
    }

    pub fn summary_text(self, summary: String) -> Self {
        self.with(Change::Summary(Some(summary)))
    }

    pub fn transcript_path(self, path: Option<String>) -> Self {
        self.with(Change::TranscriptPath(path))
    }

    pub fn file_path(self, path: Option<String>) -> Self {
        self.with(Change::FilePath(path))
    }

    pub fn progress(self, progress: Option<Progress>) -> Self {
        self.with(Change::Progress(progress))
    }

    /// The names given to the transcript's speakers; an empty map clears them.
    pub fn speakers(self, speakers: &SpeakerNames) -> Self {
        self.with(Change::Speakers(speakers.clone()))
    }

    pub fn transcription_ref(self, reference: Option<String>) -> Self {
        self.with(Change::TranscriptionRef(reference))
    }

    /// Deletes the job's artifact files once the change has committed (a full retry).
    pub fn remove_artifacts(mut self) -> Self {
        self.removal = Some(Removal::All);
        self
    }

    /// Deletes what the job's stages made, but keeps what it was created with (an uploaded
    /// recording for `Download`, a transcript brought along for `Transcribe`).
    pub fn remove_artifacts_after(mut self, kept: Stage) -> Self {
        self.removal = Some(Removal::After(kept));
        self
    }

    pub fn reset_attempts(self) -> Self {
        self.with(Change::ResetAttempts)
    }
}
