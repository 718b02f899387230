//! Ask over HTTP: `POST /api/ask` (JSON, or server-sent events when the client asks for
//! `text/event-stream`), and the pages: `GET /ask` (the form and the questions kept),
//! `POST /ask` (the form; without JavaScript it answers the page with the finished answer, to
//! htmx the answer alone) and `POST /ask/{id}/delete`.

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use utoipa::ToSchema;

use crate::ask::{Answer, AskError, Asker, Citation, Question};
use crate::domain::MeetingDate;
use crate::error::{AppError, AppResult};
use crate::jobs::JobId;
use crate::store::{AskRecord, PassageScope, StoreError};
use crate::web::AppState;
use crate::web::api::extract::ApiJson;
use crate::web::error::{Rendering, is_htmx};
use crate::web::middleware::csrf::{CsrfForm, CsrfToken};

/// The longest question taken, in characters.
const MAX_QUESTION: usize = 2000;
/// The most meetings one question may name.
const MAX_JOBS: usize = 100;
/// How many kept questions a page shows.
const RECENT: usize = 20;

/// `POST /api/ask`: a question about the meetings.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AskBody {
    /// What to ask, in any language.
    #[schema(
        example = "What did we decide about the vendor freeze?",
        min_length = 1,
        max_length = 2000
    )]
    pub question: String,
    /// Only these meetings (job ids); one id asks that meeting. Without it: the whole archive.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub jobs: Option<Vec<String>>,
    /// Only meetings on or after this date (`2025-09-25`, or ISO 8601).
    #[serde(default)]
    #[schema(example = "2025-01-01")]
    pub from: Option<String>,
    /// Only meetings up to this date (a day includes all of it).
    #[serde(default)]
    #[schema(example = "2025-12-31")]
    pub to: Option<String>,
}

fn date_bound(name: &str, value: Option<&str>, whole_day: bool) -> AppResult<Option<i64>> {
    value
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(|value| MeetingDate::bound(name, value, whole_day))
        .transpose()
}

/// The question checked: words within bounds, meetings that exist, dates that are dates.
async fn question_of(state: &AppState, body: AskBody) -> AppResult<Question> {
    let text = body.question.trim().to_string();
    if text.is_empty() {
        return Err(AppError::bad_request("\"question\" is empty"));
    }
    if text.chars().count() > MAX_QUESTION {
        return Err(AppError::bad_request(format!(
            "\"question\" is longer than {MAX_QUESTION} characters"
        )));
    }
    let given = body.jobs.unwrap_or_default();
    if given.len() > MAX_JOBS {
        return Err(AppError::bad_request(format!(
            "\"jobs\" names more than {MAX_JOBS} meetings"
        )));
    }
    let mut jobs = Vec::with_capacity(given.len());
    for raw in given {
        let id = JobId::parse(&raw)
            .map_err(|_| AppError::bad_request(format!("\"jobs\" holds a bad id {raw:?}")))?;
        match state.store.job(&id).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => return Err(AppError::job_not_found()),
            Err(error) => return Err(error.into()),
        }
        if !jobs.contains(&id) {
            jobs.push(id);
        }
    }
    Ok(Question {
        text,
        scope: PassageScope {
            jobs,
            from_ms: date_bound("from", body.from.as_deref(), false)?,
            to_ms: date_bound("to", body.to.as_deref(), true)?,
        },
    })
}

fn app_error(error: AskError) -> AppError {
    match error {
        AskError::Store(error) => error.into(),
        AskError::Provider(message) => {
            AppError::Unavailable(format!("the answer could not be made: {message}"))
        }
        AskError::NoLlm => AppError::Unavailable(error.to_string()),
    }
}

fn asker(state: &AppState) -> Asker<'_> {
    Asker {
        store: &state.store,
        config: &state.config,
        client: state.clients.trusted.clone(),
        vectors: &state.ask_vectors,
    }
}

fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"))
}

/// Answers a question from the meetings: the passages that match go to the LLM, numbered,
/// and the numbers its answer cites come back as `citations` (job, title, meeting date,
/// speaker, start in seconds, the passage). A question nothing matches is answered so,
/// without the LLM.
///
/// With `Accept: text/event-stream` the answer streams as server-sent events: `delta`
/// (`{"text"}`, the model's words as they come), then one `answer` (the same object as the
/// JSON answer) or one `error` (`{"error"}`).
#[utoipa::path(
    post,
    path = "/api/ask",
    tag = "ask",
    request_body(content = AskBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The answer with its citations", content(
            (Answer = "application/json"),
            (String = "text/event-stream"),
        )),
        (status = 404, description = "A meeting in `jobs` does not exist", body = crate::web::api::view::ErrorBody),
        (status = 415, description = "Not JSON", body = crate::web::api::view::ErrorBody),
        (status = 503, description = "No LLM is configured, or it failed", body = crate::web::api::view::ErrorBody),
    )
)]
pub async fn ask(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AskBody>,
) -> Response {
    let question = match question_of(&state, body).await {
        Ok(question) => question,
        Err(error) => return error.into_response(),
    };
    if wants_stream(&headers) {
        return stream(state, question).into_response();
    }
    match asker(&state).answer(&question, None).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(error) => app_error(error).into_response(),
    }
}

/// The answer as events: deltas while the model writes, then the answer (or the error).
fn stream(state: AppState, question: Question) -> impl IntoResponse {
    let (sender, receiver) = mpsc::channel::<Event>(64);
    tokio::spawn(async move {
        let (progress, mut watcher) = watch::channel(String::new());
        let deltas = {
            let sender = sender.clone();
            async move {
                let mut sent = 0;
                while watcher.changed().await.is_ok() {
                    let text = watcher.borrow_and_update().clone();
                    // A model that rewrites its text (Responses' `done`) sends no delta for it:
                    // the answer event carries the final words.
                    if text.len() > sent && text.is_char_boundary(sent) {
                        let delta = &text[sent..];
                        sent = text.len();
                        let event = Event::default()
                            .event("delta")
                            .data(json!({ "text": delta }).to_string());
                        if sender.send(event).await.is_err() {
                            return;
                        }
                    }
                }
            }
        };
        let answering = async {
            let result = asker(&state).answer(&question, Some(&progress)).await;
            drop(progress);
            result
        };
        let (result, ()) = tokio::join!(answering, deltas);
        let event = match result {
            Ok(answer) => Event::default()
                .event("answer")
                .data(serde_json::to_string(&answer).unwrap_or_default()),
            Err(error) => Event::default()
                .event("error")
                .data(json!({ "error": app_error(error).public_message() }).to_string()),
        };
        let _ = sender.send(event).await;
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|event| (Ok::<_, Infallible>(event), receiver))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

// ------------------------------------------------------------------------------ pages

/// A citation as the pages show it: a link to the job page at the moment (`#t=`, which the
/// page's player seeks to), and to the recording itself at that time (which a browser seeks
/// to without JavaScript).
pub struct CitationShown {
    pub n: usize,
    pub href: String,
    pub audio_href: Option<String>,
    pub title: String,
    pub date: Option<String>,
    pub speaker: Option<String>,
    pub at: Option<String>,
    pub text: String,
}

impl CitationShown {
    fn of(citation: &Citation) -> Self {
        let seconds = citation.start.map(|start| format!("{start:.3}"));
        let fragment = seconds
            .as_ref()
            .map(|seconds| format!("#t={seconds}"))
            .unwrap_or_default();
        Self {
            n: citation.n,
            href: format!("/jobs/{}{fragment}", citation.job),
            audio_href: seconds
                .as_ref()
                .map(|seconds| format!("/jobs/{}/audio#t={seconds}", citation.job)),
            title: citation
                .title
                .clone()
                .unwrap_or_else(|| "Untitled meeting".into()),
            date: citation
                .meeting_date
                .as_deref()
                .map(|date| date.get(..10).unwrap_or(date).to_string()),
            speaker: citation.speaker.clone(),
            at: citation.start.map(|start| {
                let seconds = start.max(0.0) as u64;
                let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
                if hours > 0 {
                    format!("{hours}:{minutes:02}:{seconds:02}")
                } else {
                    format!("{minutes}:{seconds:02}")
                }
            }),
            text: citation.text.clone(),
        }
    }
}

/// A question and its answer, as the pages show it.
pub struct AnswerShown {
    pub id: String,
    pub question: String,
    pub answer: String,
    pub citations: Vec<CitationShown>,
}

impl AnswerShown {
    fn of(answer: &Answer) -> Self {
        Self {
            id: answer.id.clone(),
            question: answer.question.clone(),
            answer: answer.answer.clone(),
            citations: answer.citations.iter().map(CitationShown::of).collect(),
        }
    }

    fn of_record(record: &AskRecord) -> Option<Self> {
        serde_json::from_str::<Answer>(&record.answer)
            .ok()
            .map(|answer| Self::of(&answer))
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "ask.html")]
pub struct AskPage {
    pub csrf_token: String,
    /// The meeting asked about, with its title.
    pub ask_job: Option<(String, String)>,
    pub question: String,
    pub answer: Option<AnswerShown>,
    pub error: Option<String>,
    pub recent: Vec<AnswerShown>,
}

#[derive(Template, WebTemplate)]
#[template(path = "partials/ask_result.html")]
pub struct AskResult {
    pub csrf_token: String,
    pub answer: Option<AnswerShown>,
    pub error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct AskPageQuery {
    job: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct AskForm {
    #[serde(default)]
    question: String,
    #[serde(default)]
    job: Option<String>,
}

/// The meeting a page asks about: its id and title (None for the whole archive).
async fn scope_job(state: &AppState, raw: Option<&str>) -> AppResult<Option<(String, String)>> {
    let Some(raw) = raw.map(str::trim).filter(|raw| !raw.is_empty()) else {
        return Ok(None);
    };
    let id = JobId::parse(raw).map_err(|_| AppError::job_not_found())?;
    let job = state.store.job(&id).await?;
    Ok(Some((
        id.to_string(),
        job.title.unwrap_or_else(|| "this meeting".into()),
    )))
}

async fn recent(state: &AppState, job: Option<&str>) -> AppResult<Vec<AnswerShown>> {
    let job = job.and_then(|id| JobId::parse(id).ok());
    Ok(state
        .store
        .recent_asks(job.as_ref(), RECENT)
        .await?
        .iter()
        .filter_map(AnswerShown::of_record)
        .collect())
}

/// `GET /ask`: the form and the questions kept (`?job=` for one meeting's).
pub async fn page(
    State(state): State<AppState>,
    uri: Uri,
    token: CsrfToken,
) -> AppResult<Response> {
    let query: AskPageQuery = uri
        .query()
        .and_then(|query| serde_urlencoded::from_str(query).ok())
        .unwrap_or_default();
    let ask_job = scope_job(&state, query.job.as_deref()).await?;
    let recent = recent(&state, ask_job.as_ref().map(|(id, _)| id.as_str())).await?;
    Ok(AskPage {
        csrf_token: token.0,
        ask_job,
        question: String::new(),
        answer: None,
        error: None,
        recent,
    }
    .into_response())
}

/// `POST /ask`: the form. To htmx, the answer (or the error) alone; without JavaScript, the
/// page with the finished answer; to a client that asks for JSON, the API's answer.
pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    token: CsrfToken,
    CsrfForm(form): CsrfForm<AskForm>,
) -> Response {
    let rendering = Rendering::negotiated(&headers);
    let job = form.job.clone().filter(|job| !job.trim().is_empty());
    let body = AskBody {
        question: form.question.clone(),
        jobs: job.clone().map(|job| vec![job]),
        from: None,
        to: None,
    };
    let result = match question_of(&state, body).await {
        Ok(question) => asker(&state)
            .answer(&question, None)
            .await
            .map_err(app_error),
        Err(error) => Err(error),
    };
    if rendering == Rendering::Json {
        return match result {
            Ok(answer) => axum::Json(answer).into_response(),
            Err(error) => error.into_response(),
        };
    }
    let status = match &result {
        Ok(_) => StatusCode::OK,
        // A form with a problem is answered with the form (htmx swaps 422 in).
        Err(AppError::BadRequest(_)) => StatusCode::UNPROCESSABLE_ENTITY,
        Err(error) => crate::web::error::status_of(error),
    };
    let (answer, error) = match &result {
        Ok(answer) => (Some(AnswerShown::of(answer)), None),
        Err(error) => (None, Some(error.public_message())),
    };
    if is_htmx(&headers) {
        let status = if status.is_server_error() {
            // Shown in place: htmx swaps only 2xx and 422.
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            status
        };
        return (
            status,
            AskResult {
                csrf_token: token.0,
                answer,
                error,
            },
        )
            .into_response();
    }
    let page = async {
        let ask_job = scope_job(&state, job.as_deref()).await.ok().flatten();
        let recent = recent(&state, ask_job.as_ref().map(|(id, _)| id.as_str()))
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|kept| answer.as_ref().is_none_or(|answer| answer.id != kept.id))
            .collect();
        AskPage {
            csrf_token: token.0,
            ask_job,
            question: form.question.trim().to_string(),
            answer,
            error,
            recent,
        }
    }
    .await;
    (status, page).into_response()
}

/// `POST /ask/{id}/delete`: forgets a kept question. To htmx: nothing (the answer is taken
/// off the page); without JavaScript: back to the questions.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    CsrfForm(_): CsrfForm<std::collections::HashMap<String, String>>,
) -> AppResult<Response> {
    let rendering = Rendering::negotiated(&headers);
    let kept = match state.store.ask(&id).await {
        Ok(kept) => kept,
        Err(StoreError::NotFound) => {
            return Err(AppError::NotFound("that question is no longer kept".into()));
        }
        Err(error) => return Err(error.into()),
    };
    match state.store.delete_ask(&id).await {
        Ok(()) | Err(StoreError::NotFound) => {}
        Err(error) => return Err(error.into()),
    }
    if rendering == Rendering::Json {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    if is_htmx(&headers) {
        return Ok((StatusCode::OK, "").into_response());
    }
    let back = match kept.job_id {
        Some(job) => format!("/ask?job={job}"),
        None => "/ask".to_string(),
    };
    Ok(Redirect::to(&back).into_response())
}
