//! Jobs that bring their own input: an uploaded audio or video file (streamed to disk under
//! `MAX_DOWNLOAD_BYTES`, then the pipeline from the transcribe stage), or a transcript —
//! uploaded as `.txt`/`.vtt`/`.srt` or sent as text — which goes straight to the summary.
//! Also the speaker names of a job and the list of prompt templates.

use std::path::Path;

use axum::Json;
use axum::body::Bytes;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::io::AsyncWriteExt;

use crate::domain::{MeetingDate, TemplateName};
use crate::error::{AppError, AppResult};
use crate::jobs::{Job, JobId, LogLine};
use crate::pipeline::download::{extension_for_name, human_bytes, is_audio_or_video, media_type};
use crate::pipeline::transcribe::apply_speaker_names;
use crate::pipeline::transcribe::captions::CaptionFormat;
use crate::service::jobs::{Options, Recording, Source, new_id};
use crate::web::AppState;
use crate::web::api::extract::{ApiJson, JobPath};
use crate::web::api::requests::{CreateJobUpload, SpeakerNamesBody};
use crate::web::api::view::{JobView, TemplateInfo, TemplateList};

/// A transcript is text: generous for a day of talk, small next to audio.
const MAX_TRANSCRIPT_BYTES: usize = 10 * 1024 * 1024;
/// Form fields other than the file (a date, a template name).
const MAX_FIELD_BYTES: usize = 1024;
/// Parts in one create request: a real form sends fewer than ten.
const MAX_PARTS: usize = 64;
/// After a file is refused as too large, this much more of the body is read (and thrown away)
/// so the client gets to read the 413 instead of a reset connection.
const DRAIN_AFTER_REFUSAL: u64 = 64 * 1024 * 1024;

/// True for `multipart/form-data` requests.
pub fn is_multipart(request: &Request) -> bool {
    request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

/// A template name as sent, checked against the prompts folder; 400 lists the ones there are.
pub fn template(state: &AppState, name: &str) -> AppResult<Option<TemplateName>> {
    TemplateName::parse(name, &state.config.prompts_dir())
}

/// A job's source from pasted transcript text, in the format it looks like.
pub fn pasted(text: String) -> Source {
    Source::Transcript {
        name: "pasted".into(),
        format: CaptionFormat::sniff(&text),
        text,
    }
}

/// `POST /api/jobs` as `multipart/form-data`: a `file` part (audio, video, or a transcript
/// file), or a `transcript` text field; optional `meetingDate` and `template`.
pub async fn create_from_multipart(state: &AppState, request: Request) -> AppResult<Response> {
    let received = receive(state, request, None, &[]).await?;
    // On an error the received recording is dropped, which removes its file.
    let options = received.options(state)?;
    let (job, logs) = create_received(state, received, options).await?;
    Ok((StatusCode::CREATED, Json(JobView::new(job, &logs))).into_response())
}

/// A multipart create request as read: the file (already on disk when it is audio), the
/// pasted transcript, and the small text fields. Nothing is created yet.
pub struct Received {
    id: JobId,
    /// The request's parts as the API documents them; the file is on disk already.
    pub body: CreateJobUpload,
    /// The short text fields asked for (the HTML form's `url`, `return_to` and `timezone`; a
    /// share's `url`, `text` and `title`), first value wins.
    pub fields: Vec<(String, String)>,
}

impl Received {
    pub fn has_file(&self) -> bool {
        self.body.file.is_some()
    }

    /// The name of the file sent, if one was.
    pub fn file_name(&self) -> Option<&str> {
        match &self.body.file {
            Some(Source::Recording(Recording { name, .. }) | Source::Transcript { name, .. }) => {
                Some(name)
            }
            Some(Source::Link(_)) | None => None,
        }
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }

    /// The meeting date and template, checked.
    pub fn options(&self, state: &AppState) -> AppResult<Options> {
        Ok(Options {
            meeting_date: MeetingDate::from_api(self.body.meeting_date.as_deref().unwrap_or(""))?,
            template: template(state, self.body.template.as_deref().unwrap_or(""))?,
        })
    }
}

/// Reads a multipart create request, streaming a recording to a temporary file. With
/// `expected_token` (an HTML form), the form's `csrf_token` must come before the file and the
/// transcript and match it, so nothing from a forged form is written to disk. The short text
/// fields named in `keep` are kept (first value wins), the rest read past.
pub async fn receive(
    state: &AppState,
    request: Request,
    expected_token: Option<&str>,
    keep: &[&str],
) -> AppResult<Received> {
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|rejection| {
            AppError::bad_request(format!(
                "the form could not be read: {}",
                rejection.body_text()
            ))
        })?;
    let mut reading = Reading {
        received: Received {
            id: new_id(),
            body: CreateJobUpload {
                file: None,
                transcript: None,
                meeting_date: None,
                template: None,
            },
            fields: Vec::new(),
        },
        expected_token,
        token_checked: expected_token.is_none(),
        keep,
    };
    // Whatever goes wrong below, a half-written file does not stay behind.
    let result: AppResult<()> = async {
        let mut parts = 0;
        while let Some(mut field) = multipart.next_field().await.map_err(form_error)? {
            parts += 1;
            if parts > MAX_PARTS {
                return Err(AppError::bad_request(format!(
                    "the form has more than {MAX_PARTS} parts"
                )));
            }
            reading.part(state, &mut field).await?;
        }
        if !reading.token_checked {
            return Err(crate::web::middleware::csrf::expired_form());
        }
        Ok(())
    }
    .await;
    if let Err(error) = result {
        if matches!(error, AppError::PayloadTooLarge(_)) {
            drain(&mut multipart).await;
        }
        // Dropping what was received removes a recording's temporary file.
        return Err(error);
    }
    Ok(reading.received)
}

/// A multipart request being read, part by part.
struct Reading<'a> {
    received: Received,
    expected_token: Option<&'a str>,
    token_checked: bool,
    keep: &'a [&'a str],
}

impl Reading<'_> {
    async fn part(&mut self, state: &AppState, field: &mut Field<'_>) -> AppResult<()> {
        let name = field.name().unwrap_or("").to_string();
        if !self.token_checked && matches!(name.as_str(), "file" | "transcript") {
            return Err(crate::web::middleware::csrf::expired_form());
        }
        let body = &mut self.received.body;
        match name.as_str() {
            "file" => {
                if body.file.is_some() {
                    return Err(AppError::bad_request("send one \"file\" per job"));
                }
                // A browser form with no file chosen sends an empty part without a name.
                if field.file_name().is_some_and(str::is_empty) {
                    return skip(field).await;
                }
                body.file = Some(receive_file(state, &self.received.id, field).await?);
            }
            "transcript" => {
                let bytes = read_limited(field, MAX_TRANSCRIPT_BYTES, "\"transcript\"").await?;
                body.transcript = Some(text_of(bytes, "\"transcript\"")?);
            }
            "meetingDate" | "meeting_date" => {
                let bytes = read_limited(field, MAX_FIELD_BYTES, "\"meetingDate\"").await?;
                body.meeting_date = Some(text_of(bytes, "\"meetingDate\"")?);
            }
            "template" => {
                let bytes = read_limited(field, MAX_FIELD_BYTES, "\"template\"").await?;
                body.template = Some(text_of(bytes, "\"template\"")?);
            }
            crate::web::middleware::csrf::FORM_FIELD if self.expected_token.is_some() => {
                let bytes = read_limited(field, MAX_FIELD_BYTES, "the form token").await?;
                let given = text_of(bytes, "the form token")?;
                if !self.expected_token.is_some_and(|expected| {
                    crate::web::middleware::csrf::tokens_match(&given, expected)
                }) {
                    return Err(crate::web::middleware::csrf::expired_form());
                }
                self.token_checked = true;
            }
            // First value wins; later ones are read past, not kept.
            _ if self.keep.contains(&name.as_str())
                && !self.received.fields.iter().any(|(kept, _)| *kept == name) =>
            {
                let what = format!("{name:?}");
                let bytes = read_limited(field, MAX_FIELD_BYTES * 8, &what).await?;
                let text = text_of(bytes, &what)?;
                self.received.fields.push((name, text));
            }
            // Unknown fields (a form token, a submit button) are read past.
            _ => return skip(field).await,
        }
        Ok(())
    }
}

/// Reads past a part.
async fn skip(field: &mut Field<'_>) -> AppResult<()> {
    while field.chunk().await.map_err(form_error)?.is_some() {}
    Ok(())
}

/// Creates the job a [`Received`] request asks for: from the recording or from the
/// transcript (file or pasted). A recording that does not become a job is removed.
pub async fn create_received(
    state: &AppState,
    received: Received,
    options: Options,
) -> AppResult<(Job, Vec<LogLine>)> {
    let (id, source) = into_source(received)?;
    state.jobs.create(id, source, options).await
}

/// The job's id and source a [`Received`] request brought: its file or its transcript.
pub fn into_source(received: Received) -> AppResult<(JobId, Source)> {
    let Received { id, body, .. } = received;
    let source = match (body.file, body.transcript) {
        (Some(file), None) => file,
        (None, Some(text)) => pasted(text),
        (None, None) => {
            return Err(AppError::bad_request(
                "send a \"file\" part (audio, video, or a .txt, .vtt or .srt transcript) or a \"transcript\" field",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(AppError::bad_request(
                "send either a \"file\" or a \"transcript\", not both",
            ));
        }
    };
    Ok((id, source))
}

/// What the client called the file, safe to show: no folders, no control characters.
fn clean_file_name(name: Option<&str>) -> String {
    let name = name.unwrap_or("").rsplit(['/', '\\']).next().unwrap_or("");
    let name: String = name.chars().filter(|c| !c.is_control()).take(200).collect();
    let name = name.trim();
    if name.is_empty() {
        "recording".to_string()
    } else {
        name.to_string()
    }
}

fn caption_format(name: &str, content_type: &str) -> Option<CaptionFormat> {
    CaptionFormat::from_file_name(name).or(match content_type {
        "text/vtt" => Some(CaptionFormat::WebVtt),
        "application/x-subrip" | "text/srt" => Some(CaptionFormat::Srt),
        "text/plain" => Some(CaptionFormat::Text),
        _ => None,
    })
}

async fn receive_file(state: &AppState, id: &JobId, field: &mut Field<'_>) -> AppResult<Source> {
    let name = clean_file_name(field.file_name());
    let content_type = field.content_type().map(str::to_string);
    let media = media_type(content_type.as_deref());
    if let Some(format) = caption_format(&name, &media) {
        let bytes = read_limited(field, MAX_TRANSCRIPT_BYTES, "the transcript file").await?;
        let text = text_of(bytes, "the transcript file")?;
        return Ok(Source::Transcript { name, format, text });
    }
    if !is_audio_or_video(content_type.as_deref(), Some(&name), false) {
        let got = if media.is_empty() {
            "no media type".to_string()
        } else {
            media
        };
        return Err(AppError::UnsupportedMediaType(format!(
            "{name:?} ({got}) is not audio or video; upload a recording (mp3, m4a, wav, mp4, …) or a transcript (.txt, .vtt, .srt)"
        )));
    }
    let extension = extension_for_name(content_type.as_deref(), Some(&name));
    let artifacts = state.store.artifacts();
    let relative = artifacts.audio_relative(id, &extension);
    let part = artifacts
        .part_file(id, &relative)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("unsafe audio path {relative}")))?;
    let max = state.config.max_download_bytes;
    let written = stream_to_file(field, part.path(), max).await?;
    if written == 0 {
        return Err(AppError::bad_request(format!("the file {name:?} is empty")));
    }
    Ok(Source::Recording(Recording {
        file: part,
        name,
        bytes: written,
        extension,
        media: content_type.unwrap_or_default(),
    }))
}

async fn stream_to_file(field: &mut Field<'_>, path: &Path, max: u64) -> AppResult<u64> {
    // Created before any await: a `tokio::fs::File::create` cancelled in flight (the client
    // gone) still makes the file on a blocking thread, after the part file's guard removed it.
    let mut file = tokio::fs::File::from_std(std::fs::File::create(path)?);
    let mut written: u64 = 0;
    while let Some(chunk) = field.chunk().await.map_err(form_error)? {
        written += chunk.len() as u64;
        if written > max {
            return Err(AppError::PayloadTooLarge(format!(
                "the file is larger than the largest upload this server takes ({})",
                human_bytes(max)
            )));
        }
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    file.sync_all().await?;
    Ok(written)
}

/// Reads the rest of a refused body, up to a bound, so the client reads the answer.
async fn drain(multipart: &mut Multipart) {
    let mut drained: u64 = 0;
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(chunk)) = field.chunk().await {
            drained += chunk.len() as u64;
            if drained > DRAIN_AFTER_REFUSAL {
                return;
            }
        }
    }
}

async fn read_limited(field: &mut Field<'_>, max: usize, what: &str) -> AppResult<Bytes> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(form_error)? {
        if bytes.len() + chunk.len() > max {
            return Err(AppError::PayloadTooLarge(format!(
                "{what} is larger than {}",
                human_bytes(max as u64)
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes.into())
}

fn text_of(bytes: Bytes, what: &str) -> AppResult<String> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| AppError::bad_request(format!("{what} is not UTF-8 text")))
}

fn form_error(error: MultipartError) -> AppError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge("the upload is too large".into())
    } else {
        AppError::bad_request(format!("the form could not be read: {}", error.body_text()))
    }
}

/// The summary templates a job may choose: the `.md` files in the prompts folder (re-read on
/// every request, so operators add one without a restart).
#[utoipa::path(
    get,
    path = "/api/templates",
    tag = "jobs",
    responses((status = 200, description = "The templates", body = TemplateList))
)]
pub async fn list_templates(State(state): State<AppState>) -> Json<TemplateList> {
    let default = state.config.default_template();
    let templates = state
        .template_names
        .list(&state.config.prompts_dir())
        .iter()
        .cloned()
        .map(|name| TemplateInfo {
            default: Some(&name) == default.as_ref(),
            name,
        })
        .collect();
    Json(TemplateList { templates, default })
}

/// Names the transcript's speakers (`{"speakers": {"A": "Ana"}}`; an empty name or `null`
/// removes one). Later views, exports and summaries use the names. Answers the job with its
/// named transcript.
#[utoipa::path(
    put,
    path = "/api/jobs/{id}/speakers",
    tag = "archive",
    params(crate::web::api::requests::JobIdParam),
    request_body(content = crate::web::api::requests::SpeakerNamesBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The job with its named transcript and summary", body = JobView),
        (status = 400, description = "No transcript yet, an unknown speaker, or a bad name", body = crate::web::api::view::ErrorBody),
        (status = 415, description = "Not JSON", body = crate::web::api::view::ErrorBody),
    )
)]
pub async fn set_speakers(
    State(state): State<AppState>,
    JobPath(id): JobPath,
    ApiJson(body): ApiJson<SpeakerNamesBody>,
) -> AppResult<Json<JobView>> {
    let (job, transcript) = state.jobs.name_speakers(&id, body.speakers).await?;
    let artifacts = state.store.artifacts();
    let (job, logs) = (job.clone(), state.store.logs_after(&job.id, 0).await?);
    let summary_path = job.summary_path.clone();
    let speakers = job.speakers.clone();
    let mut view = JobView::new(job, &logs);
    view.transcript = Some(apply_speaker_names(&transcript, &speakers));
    if let Some(summary) = artifacts.read_text(summary_path.as_deref()).await? {
        view.summary = Some(summary);
    }
    Ok(Json(view))
}
