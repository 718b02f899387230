//! What an update of a job writes, column by column, in values both drivers take: each backend
//! turns a [`Cell`] into its own parameter type and binds the statement [`update_sql`] writes
//! with its own placeholder. The mapping from a [`Change`] to columns is written once here.

use std::time::Duration;

use super::changes::{Change, Changes};
use super::leases::LeaseChange;
use crate::jobs::{Job, JobId, Status};

/// A value for one column, before a driver binds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Text(Option<String>),
    Integer(Option<i64>),
}

/// `until` as ms since the epoch, `lease` from `now`.
pub(crate) fn lease_end(now: i64, lease: Duration) -> i64 {
    now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

/// The columns `changes` and `lease` set at `now`, in order (`updated_at` is not among them).
pub(crate) fn update_columns(
    changes: &Changes,
    lease: &LeaseChange,
    now: i64,
) -> Vec<(&'static str, Cell)> {
    let mut sets = Vec::with_capacity(changes.fields().len() + 2);
    for change in changes.fields() {
        columns(change, now, &mut sets);
    }
    match lease {
        LeaseChange::Keep => {}
        LeaseChange::Hold { owner, duration } => {
            sets.push(("lease_owner", Cell::Text(Some(owner.as_str().to_string()))));
            sets.push((
                "lease_until",
                Cell::Integer(Some(lease_end(now, *duration))),
            ));
        }
        LeaseChange::Release => {
            sets.push(("lease_owner", Cell::Text(None)));
            sets.push(("lease_until", Cell::Integer(None)));
        }
    }
    sets
}

/// `UPDATE jobs SET updated_at = <1>, <column> = <2>, … WHERE id = <n>`, each placeholder
/// `prefix` and its position (`?` for SQLite, `$` for PostgreSQL); the values are bound as
/// [`update_values`] orders them.
pub(crate) fn update_sql(columns: &[(&'static str, Cell)], prefix: char) -> String {
    let mut sql = format!("UPDATE jobs SET updated_at = {prefix}1");
    for (index, (column, _)) in columns.iter().enumerate() {
        sql.push_str(&format!(", {column} = {prefix}{}", index + 2));
    }
    sql.push_str(&format!(" WHERE id = {prefix}{}", columns.len() + 2));
    sql
}

/// The values for [`update_sql`]: `now`, the columns' values, the job's id.
pub(crate) fn update_values(columns: Vec<(&'static str, Cell)>, now: i64, id: &JobId) -> Vec<Cell> {
    let mut values = Vec::with_capacity(columns.len() + 2);
    values.push(Cell::Integer(Some(now)));
    values.extend(columns.into_iter().map(|(_, value)| value));
    values.push(Cell::Text(Some(id.as_str().to_string())));
    values
}

/// A job's first fifteen columns as written when it comes whole from elsewhere (an import of
/// the old `jobs.json`, a migration between databases): id, url, resolved_url, meeting_date,
/// sort_ms, status, title, summary, summary_path, transcript_path, file_path, created_at,
/// updated_at, error, checkpoint.
pub(crate) fn whole_job_cells(job: &Job, sort_ms: i64) -> Vec<Cell> {
    vec![
        Cell::Text(Some(job.id.as_str().to_string())),
        Cell::Text(Some(job.url.clone())),
        text(&job.resolved_url),
        text(&job.meeting_date),
        Cell::Integer(Some(sort_ms)),
        Cell::Text(Some(job.status.as_str().to_string())),
        text(&job.title),
        text(&job.summary),
        text(&job.summary_path),
        text(&job.transcript_path),
        text(&job.file_path),
        Cell::Integer(Some(job.created_at)),
        Cell::Integer(Some(job.updated_at)),
        text(&job.error),
        Cell::Text(job.checkpoint.map(|stage| stage.as_str().to_string())),
    ]
}

/// What a migrated job carries beyond [`whole_job_cells`], in order: attempts, progress_bytes,
/// progress_total, transcription_ref, queued_at, speakers, template.
pub(crate) fn migrated_job_cells(job: &Job) -> Vec<Cell> {
    let speakers = (!job.speakers.is_empty())
        .then(|| serde_json::to_string(&job.speakers).ok())
        .flatten();
    vec![
        Cell::Integer(Some(i64::from(job.attempts))),
        Cell::Integer(job.progress.as_ref().map(|p| p.bytes as i64)),
        Cell::Integer(
            job.progress
                .as_ref()
                .and_then(|p| p.total)
                .map(|t| t as i64),
        ),
        text(&job.transcription_ref),
        Cell::Integer((job.status == Status::Queued).then_some(job.updated_at)),
        Cell::Text(speakers),
        text(&job.template),
    ]
}

fn text(value: &Option<String>) -> Cell {
    Cell::Text(value.clone())
}

/// The columns one change sets.
fn columns(change: &Change, now: i64, sets: &mut Vec<(&'static str, Cell)>) {
    match change {
        Change::Status(status) => {
            sets.push(("status", Cell::Text(Some(status.as_str().into()))));
            if *status == Status::Queued {
                sets.push(("queued_at", Cell::Integer(Some(now))));
            }
        }
        Change::Error { message, kind } => {
            sets.push(("error", text(message)));
            let kind = kind.map(|kind| kind.as_str().to_string());
            sets.push(("error_kind", Cell::Text(kind)));
        }
        Change::Checkpoint(stage) => {
            let stage = stage.map(|stage| stage.as_str().to_string());
            sets.push(("checkpoint", Cell::Text(stage)));
        }
        Change::ResolvedUrl(url) => sets.push(("resolved_url", text(url))),
        Change::MeetingDate { date, sort_ms } => {
            sets.push(("meeting_date", text(date)));
            sets.push(("sort_ms", Cell::Integer(Some(*sort_ms))));
        }
        Change::Title(title) => sets.push(("title", text(title))),
        Change::Summary(summary) => sets.push(("summary", text(summary))),
        Change::SummaryPath(path) => sets.push(("summary_path", text(path))),
        Change::TranscriptPath(path) => sets.push(("transcript_path", text(path))),
        Change::FilePath(path) => sets.push(("file_path", text(path))),
        Change::Progress(progress) => {
            let bytes = progress.map(|progress| progress.bytes as i64);
            let total = progress.and_then(|progress| progress.total.map(|total| total as i64));
            sets.push(("progress_bytes", Cell::Integer(bytes)));
            sets.push(("progress_total", Cell::Integer(total)));
        }
        Change::Speakers(speakers) => {
            let value =
                (!speakers.is_empty()).then(|| serde_json::to_string(speakers).unwrap_or_default());
            sets.push(("speakers", Cell::Text(value)));
        }
        Change::TranscriptionRef(reference) => sets.push(("transcription_ref", text(reference))),
        Change::ResetAttempts => sets.push(("attempts", Cell::Integer(Some(0)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_numbers_its_placeholders_in_the_order_of_its_values() {
        let changes = Changes::new().status(Status::Queued).title(None);
        let columns = update_columns(&changes, &LeaseChange::Release, 7);
        assert_eq!(
            update_sql(&columns, '?'),
            "UPDATE jobs SET updated_at = ?1, status = ?2, queued_at = ?3, title = ?4, \
             lease_owner = ?5, lease_until = ?6 WHERE id = ?7"
        );
        let id = JobId::parse("abc").unwrap();
        let values = update_values(columns, 7, &id);
        assert_eq!(values.len(), 7);
        assert_eq!(values[2], Cell::Integer(Some(7)));
        assert_eq!(values[6], Cell::Text(Some("abc".into())));
    }
}
