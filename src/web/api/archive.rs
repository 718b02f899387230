//! The archive side of the API: search, filters and pages of the job list, exports, and edits of
//! a job's title and meeting date.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;

use crate::domain::MeetingDate;
use crate::error::{AppError, AppResult};
use crate::jobs::{Job, LogLine, Status};
use crate::pipeline::transcribe::{Utterance, apply_speaker_names};
use crate::service::jobs::Edit;
use crate::store::search::{MATCH_END, MATCH_START};
use crate::store::{Cursor, JobFilter};
use crate::web::AppState;
use crate::web::api::extract::{ApiJson, ApiQuery, JobPath};
use crate::web::api::requests::PatchJob;
use crate::web::api::view::{JobExport, JobList, JobView};
use crate::web::cache::Shows;

pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 500;

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Words to find in titles, transcripts and summaries (SQLite FTS5: `budget`, `"exact
    /// phrase"`, `plan*`). Results come best match first, each with a `snippet`.
    pub q: Option<String>,
    /// Only jobs in these states, comma-separated (`completed,error`).
    #[param(example = "completed,error")]
    pub status: Option<String>,
    /// Meetings on or after this date (`2025-09-01` or an ISO 8601 time).
    #[param(example = "2025-09-01")]
    pub from: Option<String>,
    /// Meetings on or before this date (a whole day when given as `2025-09-30`).
    #[param(example = "2025-09-30")]
    pub to: Option<String>,
    /// Jobs per page (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
    /// Where the page starts: a `next_cursor` from an earlier answer.
    pub cursor: Option<String>,
    /// Skip this many jobs (paging by number; `cursor` stays fast on large archives).
    #[param(value_type = Option<u32>, minimum = 0, maximum = 1000000)]
    pub offset: Option<String>,
}

impl ListQuery {
    fn is_empty(&self) -> bool {
        self.q.is_none()
            && self.status.is_none()
            && self.from.is_none()
            && self.to.is_none()
            && self.limit.is_none()
            && self.cursor.is_none()
            && self.offset.is_none()
    }

    /// The filter it asks for, or a 400 naming the bad parameter.
    pub fn filter(&self) -> AppResult<JobFilter> {
        let number = |name: &str,
                      value: &Option<String>,
                      min: usize,
                      max: usize|
         -> AppResult<Option<usize>> {
            // An empty `limit=` is refused like any other non-number: the API documents an
            // integer, and no form of ours sends these two empty.
            value
                .as_deref()
                .map(|v| {
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| (min..=max).contains(n))
                        .ok_or_else(|| {
                            AppError::bad_request(format!(
                                "\"{name}\" must be a whole number from {min} to {max}"
                            ))
                        })
                })
                .transpose()
        };
        let date = |name: &str, value: &Option<String>, whole_day: bool| {
            value
                .as_deref()
                .filter(|v| !v.is_empty())
                .map(|v| MeetingDate::bound(name, v, whole_day))
                .transpose()
        };
        let statuses = match self.status.as_deref().filter(|v| !v.is_empty()) {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|name| {
                    name.trim().parse::<Status>().map_err(|_| {
                        AppError::bad_request(format!(
                            "\"status\" has an unknown value {:?} (use queued, resolving, downloading, transcribing, summarizing, completed or error)",
                            name.trim()
                        ))
                    })
                })
                .collect::<AppResult<Vec<_>>>()?,
        };
        let after = match self.cursor.as_deref().filter(|v| !v.is_empty()) {
            None => None,
            Some(text) => Some(Cursor::decode(text).ok_or_else(|| {
                AppError::bad_request("\"cursor\" is not one this server handed out")
            })?),
        };
        Ok(JobFilter {
            query: self
                .q
                .as_deref()
                .map(str::trim)
                .filter(|q| !q.is_empty())
                .map(|q| q.chars().take(200).collect()),
            statuses,
            from_ms: date("from", &self.from, false)?,
            // "to" given as a day includes all of it.
            to_ms: date("to", &self.to, true)?,
            limit: number("limit", &self.limit, 1, MAX_PAGE)?.unwrap_or(DEFAULT_PAGE),
            after,
            offset: number("offset", &self.offset, 0, 1_000_000)?.unwrap_or(0),
        })
    }
}

/// An FTS snippet as safe HTML: the text escaped, the matches in `<mark>`.
pub fn snippet_html(snippet: &str) -> String {
    let mut html = String::with_capacity(snippet.len() + 16);
    for c in snippet.chars() {
        match c {
            '&' => html.push_str("&amp;"),
            '<' => html.push_str("&lt;"),
            '>' => html.push_str("&gt;"),
            '"' => html.push_str("&quot;"),
            '\'' => html.push_str("&#39;"),
            MATCH_START => html.push_str("<mark>"),
            MATCH_END => html.push_str("</mark>"),
            other => html.push(other),
        }
    }
    html
}

/// The job list. Without parameters, every job, newest meeting first (the original app's
/// answer); with any of them, one page plus where the next one starts.
#[utoipa::path(
    get,
    path = "/api/jobs",
    tag = "jobs",
    params(ListQuery),
    responses(
        (status = 200, description = "Jobs, newest meeting first (best match first with `q`)", body = JobList),
        (status = 400, description = "A parameter that is not understood, named in the message", body = crate::web::api::view::ErrorBody),
    )
)]
pub async fn list_jobs(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> AppResult<Response> {
    if query.is_empty() {
        return state.all_jobs.answer(&state.store).await;
    }
    // The query as read names the answer, whatever the order of its parameters.
    let key = format!("{query:?}");
    let body = state
        .answers
        .get_or_build(&state.store, key.clone(), || async {
            let filter = query.filter()?;
            // A page of the plain list is put together from each job's kept JSON.
            if filter.query.is_none() && filter.statuses.is_empty() {
                let (body, jobs) = state.all_jobs.page(&state.store, &key, filter).await?;
                let shows = Shows {
                    jobs: Some(jobs),
                    queue: false,
                };
                return Ok((body.clone(), body.len(), shows));
            }
            let (list, shows) = list_page(&state, &query).await?;
            let body = Bytes::from(
                list.to_json()
                    .map_err(|error| AppError::Internal(error.into()))?,
            );
            let size = body.len();
            Ok::<_, AppError>((body, size, shows))
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// One page of jobs, where the next one starts, and what the page shows.
async fn list_page(state: &AppState, query: &ListQuery) -> AppResult<(JobList, Shows)> {
    let filter = query.filter()?;
    // A search or a status filter may gain or lose any job that is written; a plain page (or
    // one of a date range) changes with its own jobs, or when jobs appear, go or move.
    let any_job = filter.query.is_some() || !filter.statuses.is_empty();
    let (page, mut logs) = state.store.find_jobs_with_logs(filter).await?;
    let shows = Shows {
        jobs: (!any_job).then(|| page.jobs.iter().map(|found| found.job.id.clone()).collect()),
        queue: false,
    };
    let jobs = page
        .jobs
        .into_iter()
        .map(|found| {
            let lines = logs.remove(&found.job.id).unwrap_or_default();
            let mut view = JobView::new(found.job, &lines);
            view.snippet = found.snippet.as_deref().map(snippet_html);
            view
        })
        .collect();
    let list = JobList {
        jobs,
        next_cursor: page.next.map(|next| next.encode()),
        next_offset: page.next_offset,
    };
    Ok((list, shows))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `md` (the summary), `txt`, `srt` or `vtt` (the transcript), `json` (the whole job,
    /// the default) or `audio` (the original file).
    #[param(value_type = Option<ExportFormat>)]
    format: Option<String>,
}

/// The export formats (`markdown` and `text` are accepted for `md` and `txt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ExportFormat {
    Md,
    Markdown,
    Txt,
    Text,
    Srt,
    Vtt,
    Json,
    Audio,
}

impl ExportFormat {
    fn parse(name: &str) -> AppResult<Self> {
        Ok(match name {
            "md" => Self::Md,
            "markdown" => Self::Markdown,
            "txt" => Self::Txt,
            "text" => Self::Text,
            "srt" => Self::Srt,
            "vtt" => Self::Vtt,
            "json" => Self::Json,
            "audio" => Self::Audio,
            other => {
                return Err(AppError::bad_request(format!(
                    "unknown export format {other:?} (use md, txt, srt, vtt, json or audio)"
                )));
            }
        })
    }
}

/// A file name from the job's title (or id), safe in a header.
fn file_stem(job: &Job) -> String {
    let base = job.title.as_deref().unwrap_or("meeting");
    let mut stem: String = base
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while stem.contains("--") {
        stem = stem.replace("--", "-");
    }
    let stem = stem.trim_matches('-').chars().take(80).collect::<String>();
    let date = job
        .meeting_date
        .as_deref()
        .and_then(|date| date.get(..10))
        .map(|day| format!("{day}-"))
        .unwrap_or_default();
    if stem.is_empty() {
        format!("{date}{}", job.id)
    } else {
        format!("{date}{stem}")
    }
}

/// `attachment; filename="ascii"; filename*=UTF-8''percent-encoded`.
pub fn content_disposition(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect();
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

fn download(name: String, content_type: &str, body: impl Into<Body>) -> Response {
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
        )],
        body.into(),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_DISPOSITION, content_disposition(&name));
    response
}

async fn utterances(state: &AppState, job: &Job) -> AppResult<Vec<Utterance>> {
    /// The stored file's part that exports read (a file that cannot be read has none).
    #[derive(Default, Deserialize)]
    struct Stored {
        #[serde(default)]
        utterances: Vec<Utterance>,
    }
    let artifacts = state.store.artifacts();
    let raw = artifacts
        .read_text(Some(&artifacts.utterances_relative(&job.id)))
        .await?;
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let mut utterances = serde_json::from_str::<Stored>(&raw)
        .unwrap_or_default()
        .utterances;
    // The names people gave the speakers, as in every other view of the transcript.
    for utterance in &mut utterances {
        if let Some(name) = utterance.speaker.as_ref().and_then(|s| job.speakers.get(s)) {
            utterance.speaker = Some(name.clone());
        }
    }
    Ok(utterances)
}

/// Downloads the summary, the transcript, the whole job or its audio, as an attachment named
/// after the meeting's date and title.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}/export",
    tag = "archive",
    params(crate::web::api::requests::JobIdParam, ExportQuery),
    responses(
        (status = 200, description = "The file, with `Content-Disposition: attachment`",
            headers(("Content-Disposition" = String, description = "`attachment; filename=…; filename*=UTF-8''…`")),
            content(
                (crate::web::api::view::JobExport = "application/json"),
                (String = "text/markdown"),
                (String = "text/plain"),
                (String = "application/x-subrip"),
                (String = "text/vtt"),
                (Vec<u8> = "audio/*"),
                (Vec<u8> = "video/*"),
                (Vec<u8> = "application/octet-stream"),
            )),
        (status = 400, description = "An unknown format", body = crate::web::api::view::ErrorBody),
        (status = 404, description = "No such job, or it has nothing of that kind yet", body = crate::web::api::view::ErrorBody),
    )
)]
pub async fn export(
    State(state): State<AppState>,
    JobPath(id): JobPath,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> AppResult<Response> {
    let (job, logs) = state.store.job_with_logs(&id).await?;
    let format = ExportFormat::parse(query.format.as_deref().unwrap_or("json"))?;
    let artifacts = state.store.artifacts();
    let stem = file_stem(&job);
    match format {
        ExportFormat::Md | ExportFormat::Markdown => {
            let summary = artifacts
                .read_text(job.summary_path.as_deref())
                .await?
                .or(job.summary.clone())
                .ok_or_else(|| missing("summary"))?;
            Ok(download(
                format!("{stem}.md"),
                "text/markdown; charset=utf-8",
                summary,
            ))
        }
        ExportFormat::Txt | ExportFormat::Text => {
            let transcript = artifacts
                .read_text(job.transcript_path.as_deref())
                .await?
                .map(|text| apply_speaker_names(&text, &job.speakers))
                .ok_or_else(|| missing("transcript"))?;
            Ok(download(
                format!("{stem}.txt"),
                "text/plain; charset=utf-8",
                transcript,
            ))
        }
        ExportFormat::Srt => {
            let text = crate::export::to_srt(&utterances(&state, &job).await?)
                .ok_or_else(|| missing("timed transcript"))?;
            Ok(download(
                format!("{stem}.srt"),
                "application/x-subrip; charset=utf-8",
                text,
            ))
        }
        ExportFormat::Vtt => {
            let text = crate::export::to_vtt(&utterances(&state, &job).await?)
                .ok_or_else(|| missing("timed transcript"))?;
            Ok(download(
                format!("{stem}.vtt"),
                "text/vtt; charset=utf-8",
                text,
            ))
        }
        ExportFormat::Json => export_json(&state, job, &logs, &stem).await,
        ExportFormat::Audio => export_audio(&state, &job, &stem).await,
    }
}

fn missing(what: &str) -> AppError {
    AppError::NotFound(format!("this job has no {what} yet"))
}

/// `export?format=json`: the job with its transcript and timed utterances.
async fn export_json(
    state: &AppState,
    job: Job,
    logs: &[LogLine],
    stem: &str,
) -> AppResult<Response> {
    let transcript = state
        .store
        .artifacts()
        .read_text(job.transcript_path.as_deref())
        .await?
        .map(|text| apply_speaker_names(&text, &job.speakers));
    let utterances = utterances(state, &job).await?;
    let mut view = JobView::new(job, logs);
    view.transcript = transcript;
    let export = JobExport {
        job: view,
        utterances,
    };
    let body =
        serde_json::to_string_pretty(&export).map_err(|error| AppError::Internal(error.into()))?;
    Ok(download(format!("{stem}.json"), "application/json", body))
}

/// `export?format=audio`: the recording as uploaded or downloaded, streamed with its length.
async fn export_audio(state: &AppState, job: &Job, stem: &str) -> AppResult<Response> {
    let artifacts = state.store.artifacts();
    let (relative, length, body) = if let Some(bucket) = artifacts.bucket() {
        let relative = job.file_path.as_deref().ok_or_else(|| missing("audio"))?;
        let unavailable = |error: crate::storage::StorageError| {
            AppError::Unavailable(format!("the recording cannot be read now: {error}"))
        };
        let length = bucket
            .size(relative)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| missing("audio"))?;
        let stream = bucket
            .read(relative, None)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| missing("audio"))?;
        (relative.to_string(), length, Body::from_stream(stream))
    } else {
        let path = job
            .file_path
            .as_deref()
            .and_then(|relative| artifacts.resolve(relative))
            .ok_or_else(|| missing("audio"))?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(missing("audio"));
            }
            Err(error) => return Err(error.into()),
        };
        let length = file.metadata().await?.len();
        let stream = tokio_util::io::ReaderStream::new(file);
        (
            path.to_string_lossy().into_owned(),
            length,
            Body::from_stream(stream),
        )
    };
    let extension = std::path::Path::new(&relative)
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bin".into());
    let mime = mime_guess::from_path(&relative).first_or_octet_stream();
    let mut response = download(format!("{stem}.{extension}"), mime.as_ref(), body);
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    Ok(response)
}

/// Changes a job's title and/or meeting date (`null` or `""` clears one).
#[utoipa::path(
    patch,
    path = "/api/jobs/{id}",
    tag = "archive",
    params(crate::web::api::requests::JobIdParam),
    request_body(content = crate::web::api::requests::PatchJob, content_type = "application/json"),
    responses(
        (status = 200, description = "The job as changed", body = JobView),
        (status = 400, description = "A field that cannot change, a bad date, or a title too long", body = crate::web::api::view::ErrorBody),
        (status = 415, description = "Not JSON", body = crate::web::api::view::ErrorBody),
    )
)]
pub async fn patch_job(
    State(state): State<AppState>,
    JobPath(id): JobPath,
    ApiJson(patch): ApiJson<PatchJob>,
) -> AppResult<Json<JobView>> {
    let edit = Edit {
        title: patch.title,
        meeting_date: patch.meeting_date,
    };
    state.jobs.edit(&id, edit).await?;
    let (job, logs) = state.store.job_with_logs(&id).await?;
    Ok(Json(JobView::new(job, &logs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_are_escaped_and_marked() {
        let snippet = format!("a <script>{MATCH_START}budget{MATCH_END}</script> & \"x\"");
        assert_eq!(
            snippet_html(&snippet),
            "a &lt;script&gt;<mark>budget</mark>&lt;/script&gt; &amp; &quot;x&quot;"
        );
    }

    #[test]
    fn file_names_are_safe_in_headers() {
        let header = content_disposition("2025-09-25-Réunion budget \"Q3\".md");
        let text = header.to_str().unwrap();
        assert!(
            text.starts_with("attachment; filename=\"2025-09-25-R_union_budget__Q3_.md\""),
            "{text}"
        );
        assert!(text.contains("filename*=UTF-8''2025-09-25-R%C3%A9union%20budget%20%22Q3%22.md"));
    }
}
