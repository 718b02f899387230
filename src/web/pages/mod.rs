//! The browser UI: full pages, the small partials that htmx polls and swaps, and the forms.
//!
//! Every page answers JSON (the API's shapes) to a client that asks for `application/json`.
//! Forms work without JavaScript (POST, then a redirect to a page that shows a flash message);
//! with htmx the same POST answers the parts of the page that changed, swapped in place.
//! Polling: the open job's panel polls while the job is unfinished and carries the list's
//! running cards with it; otherwise the list polls by itself while any job is unfinished. A
//! poll names the running cards the page shows and gets those cards back, swapped one by one
//! (the rest of the list, and the focus and scroll in it, stay); only a list whose jobs changed
//! is sent whole. One request every two seconds per tab at most, and none once every job has
//! finished.

mod edit;
pub(super) mod flash;
pub mod share;
mod templates;
pub mod view;

pub use self::edit::{edit_form, heading, save_edit, speakers};

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower::ServiceExt;
use tower_http::services::ServeFile;
use tower_sessions::Session;

use self::flash::Flash;
use self::templates::{
    AddForm, Gone, HomePage, JobPage, ListPartial, ListRefreshPartial, PanelPartial, Updates,
};
use self::view::{
    AudioShown, JobList, JobPanel, LIST_PAGE, ListState, PanelInputs, Providers, TranscriptShown,
};
use crate::domain::{MeetingDate, TemplateName};
use crate::error::{AppError, AppResult};
use crate::jobs::{Job, JobId, LogLine, Status};
use crate::pipeline::transcribe::apply_speaker_names;
use crate::service::jobs::{Options, Source, new_id};
use crate::web::AppState;
use crate::web::api::extract::{ApiQuery, JobPath};
use crate::web::api::link;
use crate::web::api::{archive, intake, jobs as api};
use crate::web::cache::Shows;
use crate::web::error::{Rendering, is_htmx, sentence};
use crate::web::listing::ListPage;
use crate::web::middleware::csrf::{CsrfForm, CsrfToken};

fn rendering(headers: &HeaderMap) -> Rendering {
    Rendering::negotiated(headers)
}

/// Query parameters of the pages besides the list's; anything unexpected is ignored.
#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    open: Option<String>,
    /// The recording and transcript the browser shows (see [`media_key`]).
    media: Option<String>,
    /// The running jobs the browser's list shows (see [`JobList::refresh`]); sent by pollers.
    running: Option<String>,
}

impl PageQuery {
    fn of(uri: &Uri) -> Self {
        uri.query()
            .and_then(|query| serde_urlencoded::from_str(query).ok())
            .unwrap_or_default()
    }
}

fn list_state(uri: &Uri) -> ListState {
    ListState::from_query(uri.query().unwrap_or(""))
}

/// Where a form may send the browser back to: the home page or a job page (with the list's
/// search, filters and place), nothing else.
fn safe_return(raw: &str) -> (String, Option<JobId>) {
    let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
    let list = ListState::from_query(query);
    if let Some(id) = path
        .strip_prefix("/jobs/")
        .and_then(|id| JobId::parse(id).ok())
    {
        return (list.url(&format!("/jobs/{id}")), Some(id));
    }
    (list.url("/"), None)
}

/// The path and query of the page a request was sent from (htmx names it; a browser without
/// JavaScript sends its `Referer`), or "" when neither says. Only a guess of where to return:
/// it goes through [`safe_return`] like every return address.
fn sending_page(headers: &HeaderMap) -> String {
    ["hx-current-url", "referer"]
        .iter()
        .filter_map(|name| headers.get(*name)?.to_str().ok())
        .filter_map(|value| url::Url::parse(value).ok())
        .map(|url| match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        })
        .next()
        .unwrap_or_default()
}

/// The list the browser shows now: an htmx request names the page's address (which holds the
/// search, see `hx-push-url`), so a poll or an action answers the list the person is looking
/// at; otherwise the list in `fallback` (a return address or a request's own address).
fn shown_list(headers: &HeaderMap, fallback: &str) -> ListState {
    let current = headers
        .get("hx-current-url")
        .filter(|_| is_htmx(headers))
        .and_then(|value| value.to_str().ok())
        .and_then(|value| url::Url::parse(value).ok());
    match current {
        Some(url) => ListState::from_query(url.query().unwrap_or("")),
        None => list_of(fallback),
    }
}

/// The list's search, filters and place in a (safe) return address.
fn list_of(return_to: &str) -> ListState {
    ListState::from_query(return_to.split_once('?').map_or("", |(_, query)| query))
}

/// The zone a form's typed date is read in: the browser's, which app.js puts in the form's
/// `timezone` field, or without JavaScript `DISPLAY_TIMEZONE` (the zone the page showed).
fn form_zone(state: &AppState, given: &str) -> crate::zone::Zone {
    given
        .trim()
        .parse()
        .unwrap_or(state.config.display_timezone)
}

/// One page of the list for `list`. A search or filter that cannot be used is said in words
/// and the list shows everything instead (a page never fails over a query parameter).
async fn job_list(state: &AppState, open: Option<&Job>, list: &ListState) -> AppResult<JobList> {
    // The list depends on the store, the list's state and the open job (which one, and whether
    // its panel polls): nothing else.
    let key = format!(
        "{}|{}|{}",
        open.map_or("", |job| job.id.as_str()),
        open.is_some_and(|job| job.status.is_finished()),
        list.to_query()
    );
    state
        .lists
        .get_or_build(&state.store, key.clone(), || async {
            let (filter, problem, list) = match list.api_query().filter() {
                Ok(filter) => (filter, None, list.clone()),
                Err(error) => (
                    crate::store::JobFilter {
                        limit: LIST_PAGE,
                        ..Default::default()
                    },
                    Some(sentence(&error.public_message())),
                    ListState::default(),
                ),
            };
            // A search or a status filter may gain or lose any job that is written.
            let any_job = filter.query.is_some() || !filter.statuses.is_empty();
            if !any_job
                && problem.is_none()
                && let Some(built) = list_of_kept_cards(state, open, &list, &key, &filter).await?
            {
                return Ok(built);
            }
            let page = state.store.find_jobs(filter).await?;
            let shows = Shows {
                jobs: (!any_job).then(|| {
                    page.jobs
                        .iter()
                        .map(|found| found.job.id.clone())
                        .chain(open.map(|job| job.id.clone()))
                        .collect()
                }),
                // Queued cards show their place in the queue.
                queue: page
                    .jobs
                    .iter()
                    .any(|found| found.job.status == Status::Queued),
            };
            let queued = page
                .jobs
                .iter()
                .any(|found| found.job.status == Status::Queued);
            let queue = if queued {
                state.store.queue_order().await?
            } else {
                Vec::new()
            };
            let list = JobList::new(
                page,
                open,
                list,
                problem,
                &queue,
                state.config.display_timezone,
            );
            let size = list.cards.size();
            Ok::<_, AppError>((list, size, shows))
        })
        .await
}

/// A page of the plain list (no search, no status filter) put together from its jobs' kept
/// cards, so that a write to one job renders that job's card, not the page's hundred. The
/// page's ids are kept until the list's order moves (see `AllJobs`). None when the page shows
/// a queued job: queue places move with every other job's status, and such a list is built
/// whole.
async fn list_of_kept_cards(
    state: &AppState,
    open: Option<&Job>,
    list: &ListState,
    key: &str,
    filter: &crate::store::JobFilter,
) -> AppResult<Option<(JobList, usize, Shows)>> {
    let (all, store) = (&state.all_jobs, &state.store);
    let (page, mut jobs, mark) = kept_or_read_page(state, key, filter).await?;
    let return_to = JobList::return_to(open, list);
    let view = format!("{}|{return_to}", open.map_or("", |job| job.id.as_str()));
    let mut cards = all.cards(store, &page.ids, &view);
    let missing: Vec<JobId> = page
        .ids
        .iter()
        .zip(&cards)
        .filter(|(id, card)| card.is_none() && !jobs.contains_key(*id))
        .map(|(id, _)| id.clone())
        .collect();
    if !missing.is_empty() {
        for (job, _) in store.jobs_with_logs(&missing).await? {
            jobs.insert(job.id.clone(), job);
        }
    }
    // Kept cards are never of queued jobs: a job entering the queue drops its cards.
    if jobs.values().any(|job| job.status == Status::Queued) {
        return Ok(None);
    }
    let mut rendered = Vec::new();
    for (id, card) in page.ids.iter().zip(cards.iter_mut()) {
        if card.is_some() {
            continue;
        }
        // A job gone since the page was read is left out.
        if let Some(job) = jobs.get(id) {
            let shown = JobList::card(job, open, list, state.config.display_timezone);
            let new = std::sync::Arc::new(view::RenderedCard::render(&shown, &return_to));
            rendered.push((id.clone(), new.clone()));
            *card = Some(new);
        }
    }
    all.keep_cards(store, &view, rendered, mark);
    let shows = Shows {
        jobs: Some(
            page.ids
                .iter()
                .cloned()
                .chain(open.map(|job| job.id.clone()))
                .collect(),
        ),
        queue: false,
    };
    let list = JobList::assemble(
        view::Cards::of(cards.into_iter().flatten().collect()),
        page.next.as_ref(),
        page.next_offset,
        open,
        list.clone(),
        None,
    );
    let size = list.cards.size();
    Ok(Some((list, size, shows)))
}

/// The plain list's page under `key`: its ids as kept, or read from the store (then kept,
/// with the jobs read on the way), and where the writes taken stand.
async fn kept_or_read_page(
    state: &AppState,
    key: &str,
    filter: &crate::store::JobFilter,
) -> AppResult<(ListPage, std::collections::HashMap<JobId, Job>, u64)> {
    let (all, store) = (&state.all_jobs, &state.store);
    let (kept_page, mark) = all.list_page(store, key);
    if let Some(page) = kept_page {
        return Ok((page, std::collections::HashMap::new(), mark));
    }
    let found = store.find_jobs(filter.clone()).await?;
    let page = ListPage {
        ids: found
            .jobs
            .iter()
            .map(|found| found.job.id.clone())
            .collect(),
        next: found.next,
        next_offset: found.next_offset,
    };
    let jobs = found
        .jobs
        .into_iter()
        .map(|found| (found.job.id.clone(), found.job))
        .collect();
    all.keep_list_page(store, key, page.clone(), mark);
    Ok((page, jobs, mark))
}

/// Which recording and transcript a job has now: their sizes, cheap to compare on every poll.
async fn media_key(state: &AppState, job: &Job) -> String {
    let artifacts = state.store.artifacts();
    let mut key = String::new();
    for (letter, relative) in [('a', &job.file_path), ('t', &job.transcript_path)] {
        let size = artifacts.size(relative.as_deref()).await.ok().flatten();
        if let Some(size) = size {
            key.push(letter);
            key.push_str(&size.to_string());
        }
    }
    // Names given to the speakers change the transcript shown, not its file.
    if !job.speakers.is_empty() {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        job.speakers.hash(&mut hasher);
        key.push('s');
        key.push_str(&hasher.finish().to_string());
    }
    if key.is_empty() { "none".into() } else { key }
}

/// How much of the panel to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    /// Everything: a full page, or an action that may have changed the files.
    Always,
    /// The recording and transcript only if they differ from what the browser has (a poll).
    IfChanged,
    /// Not the recording and transcript: an action that leaves them as they are.
    Never,
}

/// The panel of a job, with its artifacts read from disk.
async fn job_panel(
    state: &AppState,
    job: &Job,
    logs: &[LogLine],
    media: Media,
    client_media: Option<&str>,
) -> AppResult<JobPanel> {
    let artifacts = state.store.artifacts();
    let summary = match job.summary.clone() {
        Some(summary) => Some(summary),
        None => artifacts.read_text(job.summary_path.as_deref()).await?,
    };
    let key = media_key(state, job).await;
    let include_media = match media {
        Media::Always => true,
        Media::IfChanged => client_media != Some(key.as_str()),
        Media::Never => false,
    };
    let (transcript, audio, speakers) = if include_media {
        panel_media(state, job, &key).await?
    } else {
        (None, None, Vec::new())
    };
    // Subtitles need the timed utterances; looked for once a job has finished.
    let timed_transcript = job.status.is_finished()
        && job.transcript_path.is_some()
        && artifacts
            .size(Some(&artifacts.utterances_relative(&job.id)))
            .await
            .is_ok_and(|size| size.is_some());
    let queue = if job.status == Status::Queued {
        state.store.queue_order().await?
    } else {
        Vec::new()
    };
    let mut panel = JobPanel::new(
        job,
        logs,
        PanelInputs {
            summary,
            transcript,
            audio,
            media_key: key,
            include_media,
            timed_transcript,
            speakers,
            zone: state.config.display_timezone,
        },
    );
    panel.card = panel.card.with_queue_place(&queue);
    Ok(panel)
}

/// The job's transcript (with speaker names, and each turn's start when known), its
/// recording's player and its speakers' name fields.
async fn panel_media(
    state: &AppState,
    job: &Job,
    key: &str,
) -> AppResult<(
    Option<TranscriptShown>,
    Option<AudioShown>,
    Vec<view::SpeakerField>,
)> {
    let raw = state
        .store
        .artifacts()
        .read_text(job.transcript_path.as_deref())
        .await?
        .filter(|text| !text.trim().is_empty());
    let speakers = raw
        .as_deref()
        .map(|raw| view::speaker_fields(raw, &job.speakers))
        .unwrap_or_default();
    let starts = match &raw {
        Some(_) => utterances_of(state, job).await,
        None => None,
    };
    let transcript = raw
        .map(|raw| apply_speaker_names(&raw, &job.speakers))
        .map(TranscriptShown::new)
        .map(|shown| {
            let turns = shown.turns.len();
            shown.with_starts(starts.and_then(|utterances| view::turn_starts(&utterances, turns)))
        });
    let audio = key.contains('a').then(|| AudioShown {
        url: format!("/jobs/{}/audio", job.id),
        mime: job
            .file_path
            .as_deref()
            .map(|path| audio_type(std::path::Path::new(path)))
            .unwrap_or_default(),
    });
    Ok((transcript, audio, speakers))
}

/// The provider's utterances kept beside the transcript, if there are any and they can be
/// read (a transcript without them is shown without times).
async fn utterances_of(
    state: &AppState,
    job: &Job,
) -> Option<Vec<crate::pipeline::transcribe::Utterance>> {
    #[derive(Deserialize)]
    struct Kept {
        #[serde(default)]
        utterances: Vec<crate::pipeline::transcribe::Utterance>,
    }
    let artifacts = state.store.artifacts();
    let text = artifacts
        .read_text(Some(&artifacts.utterances_relative(&job.id)))
        .await
        .ok()??;
    serde_json::from_str::<Kept>(&text)
        .ok()
        .map(|kept| kept.utterances)
}

fn audio_type(path: &std::path::Path) -> String {
    mime_guess::from_path(path)
        .first_or_octet_stream()
        .essence_str()
        .to_string()
}

/// A job that may be gone: `None` for an unknown id, other failures are errors.
async fn maybe_job(state: &AppState, id: &JobId) -> AppResult<Option<(Job, Vec<LogLine>)>> {
    match state.store.job_with_logs(id).await {
        Ok(found) => Ok(Some(found)),
        Err(crate::store::StoreError::NotFound) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

// ------------------------------------------------------------------------------ pages

/// `GET /`: the list and the add form; JSON clients get `GET /api/jobs` (with its filters).
pub async fn home(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    session: Session,
    token: CsrfToken,
    query: Result<ApiQuery<archive::ListQuery>, AppError>,
) -> AppResult<Response> {
    if rendering(&headers) == Rendering::Json {
        return Ok(archive::list_jobs(State(state), query?)
            .await
            .into_response());
    }
    let list = job_list(&state, None, &list_state(&uri)).await?;
    Ok(HomePage {
        csrf_token: token.0,
        flash: flash::take(&session, &headers).await,
        flash_oob: false,
        providers: Providers::new(&state.config),
        form: AddForm::new(&state, &list.return_to),
        list,
        panel_oob: false,
    }
    .into_response())
}

/// `GET /jobs/{id}`: the job beside the list; JSON clients get `GET /api/jobs/{id}`.
pub async fn job_page(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    session: Session,
    token: CsrfToken,
    query: Result<ApiQuery<api::ContentQuery>, AppError>,
) -> AppResult<Response> {
    let id = JobId::parse(&raw).map_err(|_| AppError::JobNotFound)?;
    if rendering(&headers) == Rendering::Json {
        return Ok(api::get_job(State(state), JobPath(id), query?)
            .await
            .into_response());
    }
    let list = list_state(&uri);
    whole_job_page(&state, &session, &headers, token, &id, None, &list).await
}

/// A job's whole page: its panel (with `heading` in place of the plain one, when given) beside
/// the list as `list` asks.
pub(super) async fn whole_job_page(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    token: CsrfToken,
    id: &JobId,
    heading: Option<view::Heading>,
    list: &ListState,
) -> AppResult<Response> {
    let (job, logs) = state.store.job_with_logs(id).await?;
    let mut panel = job_panel(state, &job, &logs, Media::Always, None).await?;
    if let Some(heading) = heading {
        panel.heading = heading;
    }
    let list = job_list(state, Some(&job), list).await?;
    Ok(JobPage {
        csrf_token: token.0,
        flash: flash::take(session, headers).await,
        flash_oob: false,
        providers: Providers::new(&state.config),
        form: AddForm::new(state, &list.return_to),
        list,
        panel,
    }
    .into_response())
}

/// `GET /partials/jobs`: the list alone, polled while jobs run.
pub async fn list_partial(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    token: CsrfToken,
) -> AppResult<Response> {
    let query = PageQuery::of(&uri);
    let open = match query.open.as_deref().and_then(|id| JobId::parse(id).ok()) {
        Some(id) => maybe_job(&state, &id).await?.map(|(job, _)| job),
        None => None,
    };
    let list = job_list(&state, open.as_ref(), &list_state(&uri)).await?;
    // The list's poller names the running cards it shows, and gets those back.
    if query.running.is_some() {
        return Ok(ListRefreshPartial {
            refresh: list.refresh(query.running.as_deref(), &token.0),
            csrf_token: token.0,
        }
        .into_response());
    }
    let url = list.return_to.clone();
    let mut response = ListPartial {
        csrf_token: token.0,
        list,
    }
    .into_response();
    // A search typed in the search form puts its page's address in the history, so a reload
    // or the back button shows the same results; a poll leaves the address alone.
    if headers
        .get("hx-trigger")
        .is_some_and(|id| id == "search-form")
        && let Ok(value) = HeaderValue::from_str(&url)
    {
        response.headers_mut().insert("hx-push-url", value);
    }
    Ok(response)
}

/// `GET /jobs/{id}/panel`: the job's panel, polled while the job is unfinished. A job deleted
/// meanwhile answers a panel that says so and polls no more.
pub async fn panel_partial(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    token: CsrfToken,
) -> AppResult<Response> {
    let query = PageQuery::of(&uri);
    let Ok(id) = JobId::parse(&raw) else {
        return Ok(Gone.into_response());
    };
    let result = async {
        let Some((job, logs)) = maybe_job(&state, &id).await? else {
            return Ok(None);
        };
        let panel = job_panel(
            &state,
            &job,
            &logs,
            Media::IfChanged,
            query.media.as_deref(),
        )
        .await?
        .polled();
        // While the panel polls it carries the list; the response that ends its polling
        // carries the list too, so the list can take over if other jobs still run.
        let list = job_list(&state, Some(&job), &shown_list(&headers, &uri.to_string())).await?;
        let refresh = list.refresh(query.running.as_deref(), &token.0);
        Ok::<_, AppError>(Some(PanelPartial {
            csrf_token: token.0,
            providers: Providers::new(&state.config),
            panel,
            refresh: Some(refresh),
        }))
    }
    .await;
    Ok(match result? {
        Some(partial) => partial.into_response(),
        None => Gone.into_response(),
    })
}

/// `GET /jobs/{id}/audio`: the downloaded recording, with its type and Range support.
pub async fn audio(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    request: Request,
) -> AppResult<Response> {
    let id = JobId::parse(&raw).map_err(|_| AppError::JobNotFound)?;
    let job = state.store.job(&id).await?;
    let no_audio = || AppError::NotFound("this meeting has no downloaded recording (yet)".into());
    if let Some(bucket) = state.store.artifacts().bucket() {
        let relative = job.file_path.as_deref().ok_or_else(no_audio)?;
        return crate::web::ranged::serve(bucket, relative, request.headers())
            .await
            .map_err(|error| {
                AppError::Unavailable(format!("the recording cannot be read now: {error}"))
            })?
            .ok_or_else(no_audio);
    }
    let path = job
        .file_path
        .as_deref()
        .and_then(|relative| state.store.artifacts().resolve(relative))
        .ok_or_else(no_audio)?;
    let mime = mime_guess::from_path(&path).first_or_octet_stream();
    let Ok(response) = ServeFile::new_with_mime(&path, &mime)
        .oneshot(request)
        .await;
    if response.status() == StatusCode::NOT_FOUND {
        return Err(no_audio());
    }
    let mut response = response.map(Body::new);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    Ok(response)
}

// ------------------------------------------------------------------------------ forms

#[derive(Debug, Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    meeting_date: String,
    #[serde(default)]
    template: String,
    #[serde(default)]
    transcript: String,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    return_to: String,
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    return_to: String,
}

/// What an action did, for the person: a flash message and where to look next.
struct Outcome {
    flash: Flash,
    /// Show the transcript open (its speakers were just named).
    open_transcript: bool,
    /// The job the action was about is gone (deleted).
    deleted: Option<JobId>,
    /// Whether the open job's recording and transcript must be sent again.
    media: Media,
}

/// The answer to a form: a redirect for a plain browser, the changed parts for htmx.
async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    token: String,
    return_to: &str,
    outcome: Outcome,
) -> AppResult<Response> {
    let (mut back, open) = safe_return(return_to);
    let open_deleted = open.is_some() && open == outcome.deleted;
    if open_deleted {
        back = "/".into();
    }
    if !is_htmx(headers) {
        flash::push(session, outcome.flash).await;
        return Ok(Redirect::to(&back).into_response());
    }
    let result = async {
        let open_job = match open.as_ref().filter(|_| !open_deleted) {
            Some(id) => maybe_job(state, id).await?,
            None => None,
        };
        let panel = match &open_job {
            Some((job, logs)) => {
                let mut panel = job_panel(state, job, logs, outcome.media, None)
                    .await?
                    .out_of_band();
                panel.transcript_open = outcome.open_transcript;
                Some(panel)
            }
            None => None,
        };
        let list = job_list(
            state,
            open_job.as_ref().map(|(job, _)| job),
            &shown_list(headers, &back),
        )
        .await?
        .out_of_band();
        Ok::<_, AppError>(Updates {
            csrf_token: token,
            providers: Providers::new(&state.config),
            add_form: None,
            panel,
            panel_oob: open_deleted,
            list,
            flash: vec![outcome.flash],
            flash_oob: true,
        })
    }
    .await;
    let mut response = result?.into_response();
    if open_deleted {
        response
            .headers_mut()
            .insert("hx-replace-url", HeaderValue::from_static("/"));
    }
    Ok(response)
}

/// What the add form sent, however it was encoded.
struct Submitted {
    url: String,
    meeting_date: String,
    template: String,
    transcript: String,
    /// The browser's zone (see [`form_zone`]).
    timezone: String,
    return_to: String,
    /// A multipart form: the file (on disk already when it is a recording) and the fields.
    received: Option<intake::Received>,
}

/// Reads the add form: `multipart/form-data` (the page's form, which can carry a file) or
/// URL-encoded (older pages and scripts). Both need the session's form token.
async fn read_add_form(
    state: &AppState,
    session: &Session,
    request: Request,
) -> Result<Submitted, AppError> {
    if intake::is_multipart(&request) {
        let expected = crate::web::middleware::csrf::session_token(session)
            .await?
            .unwrap_or_default();
        let mut received = intake::receive(
            state,
            request,
            Some(&expected),
            &["url", "return_to", "timezone"],
        )
        .await?;
        let pasted = received.body.transcript.take().unwrap_or_default();
        let field = |name: &str| received.field(name).unwrap_or("").to_string();
        return Ok(Submitted {
            url: field("url"),
            meeting_date: received.body.meeting_date.clone().unwrap_or_default(),
            template: received.body.template.clone().unwrap_or_default(),
            return_to: field("return_to"),
            timezone: field("timezone"),
            transcript: pasted,
            received: Some(received),
        });
    }
    // The route lifts the body limit for uploads; a URL-encoded form keeps the usual one.
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, crate::web::JSON_BODY_LIMIT)
        .await
        .map_err(|_| AppError::PayloadTooLarge("the form is too large".into()))?;
    let request = Request::from_parts(parts, Body::from(bytes));
    let CsrfForm(form) = CsrfForm::<CreateForm>::from_request(request, state).await?;
    Ok(Submitted {
        url: form.url,
        meeting_date: form.meeting_date,
        template: form.template,
        transcript: form.transcript,
        timezone: form.timezone,
        return_to: form.return_to,
        received: None,
    })
}

/// `POST /jobs`: the add form, with a link, a file (recording or transcript) or a pasted
/// transcript.
pub async fn create(
    State(state): State<AppState>,
    request: FormRequest,
    raw: Request,
) -> AppResult<Response> {
    let (headers, session, token) = request.into_parts();
    let submitted = match read_add_form(&state, &session, raw).await {
        Ok(submitted) => submitted,
        Err(error @ (AppError::Forbidden(_) | AppError::Internal(_))) => return Err(error),
        // A file that is too large, not audio, or a form that could not be read: said beside
        // the file field. (The form the person filled in is gone with the request; the page
        // it was sent from is not: a job's page stays that job's.)
        Err(error) => {
            let mut shown = AddForm::new(&state, &safe_return(&sending_page(&headers)).0);
            shown.file_error = Some(sentence(&error.public_message()));
            return invalid_form(&state, &headers, &session, token, shown).await;
        }
    };
    let return_to = submitted.return_to.clone();
    let (mut shown, planned) = plan_job(&state, submitted);
    let Some(NewJobPlan {
        id,
        source,
        options,
        brought,
    }) = planned
    else {
        return invalid_form(&state, &headers, &session, token, shown).await;
    };
    let job = match state.jobs.create(id, source, options).await {
        Ok((job, _)) => job,
        Err(error @ AppError::Internal(_)) => return Err(error),
        // A transcript that cannot be read, a recording refused: said beside what was sent.
        Err(error) => {
            let message = Some(sentence(&error.public_message()));
            match brought {
                Brought::File(_) => shown.file_error = message,
                Brought::Pasted => shown.transcript_error = message,
                Brought::Link => shown.url_error = message,
            }
            return invalid_form(&state, &headers, &session, token, shown).await;
        }
    };
    let flash = brought.flash(&job);
    if !is_htmx(&headers) {
        flash::push(&session, flash).await;
        return Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response());
    }
    created(&state, &headers, token, &return_to, &job, flash).await
}

/// What the add form brought, for its flash message and for where a refusal is said.
enum Brought {
    Link,
    /// A file, by the name it was sent with.
    File(String),
    Pasted,
}

impl Brought {
    fn flash(&self, job: &Job) -> Flash {
        match self {
            Brought::Link => Flash::success("Meeting added. FocusFlow is working on it."),
            Brought::File(name) if job.file_path.is_some() => {
                Flash::success(format!("Uploaded “{name}”. FocusFlow is transcribing it."))
            }
            Brought::File(name) => Flash::success(format!(
                "Transcript “{name}” added. The summary is being written."
            )),
            Brought::Pasted => Flash::success("Transcript added. The summary is being written."),
        }
    }
}

/// A job the add form asks for, checked and ready to create.
struct NewJobPlan {
    id: JobId,
    source: Source,
    options: Options,
    brought: Brought,
}

/// The add form checked: the form to show again (with what was typed and, beside each field,
/// what is wrong with it), and the job to create when nothing is.
fn plan_job(state: &AppState, submitted: Submitted) -> (AddForm, Option<NewJobPlan>) {
    let Submitted {
        url,
        meeting_date,
        template,
        transcript,
        timezone,
        return_to,
        received,
    } = submitted;
    let mut shown = AddForm::new(state, &safe_return(&return_to).0);
    shown.url = url.trim().to_string();
    shown.meeting_date = meeting_date.trim().to_string();
    shown.transcript = transcript.clone();
    shown.timezone = timezone.trim().to_string();
    if !template.trim().is_empty() {
        shown.template = template.trim().to_string();
    }
    let meeting_date = if shown.meeting_date.is_empty() {
        None
    } else {
        let parsed = MeetingDate::parse_in(&shown.meeting_date, form_zone(state, &timezone));
        if parsed.is_none() {
            shown.date_error = Some(MeetingDate::FORM_PROBLEM.into());
        }
        parsed
    };
    // The default template is no choice at all: the job follows PROMPT_PATH.
    let template = match intake::template(state, &template) {
        Ok(name)
            if name.as_ref().map(TemplateName::as_str)
                == state.config.default_template().as_deref() =>
        {
            None
        }
        Ok(name) => name,
        Err(error) => {
            shown.template_error = Some(sentence(&error.public_message()));
            None
        }
    };
    let source = plan_source(state, &mut shown, transcript, received);
    let options = Options {
        meeting_date,
        template,
    };
    // A recording that will not become a job is dropped with its plan: its file is removed.
    let plan = source.filter(|_| !shown.has_errors());
    let plan = plan.map(|(id, source, brought)| NewJobPlan {
        id,
        source,
        options,
        brought,
    });
    (shown, plan)
}

/// Where the add form's job comes from: one of a link, a file and a pasted transcript.
fn plan_source(
    state: &AppState,
    shown: &mut AddForm,
    transcript: String,
    received: Option<intake::Received>,
) -> Option<(JobId, Source, Brought)> {
    let file_name = received
        .as_ref()
        .filter(|received| received.has_file())
        .map(|received| received.file_name().unwrap_or("recording").to_string());
    let pasted = !transcript.trim().is_empty();
    if (file_name.is_some() || pasted) && !shown.url.is_empty() {
        shown.url_error = Some(
            "Leave the link empty when you upload a file or paste a transcript: one meeting \
             comes from one place."
                .into(),
        );
    }
    if file_name.is_some() && pasted {
        shown.transcript_error = Some("Choose a file or paste a transcript, not both.".into());
    }
    if let (Some(name), Some(received)) = (file_name, received) {
        let (id, source) = intake::into_source(received).ok()?;
        return Some((id, source, Brought::File(name)));
    }
    if pasted {
        return Some((new_id(), intake::pasted(transcript), Brought::Pasted));
    }
    match link::validate_url(state, &shown.url) {
        Ok(url) => Some((new_id(), Source::Link(url), Brought::Link)),
        Err(link::UrlProblem::Empty) => {
            shown.url_error = Some(
                "Paste a Plaud share link or a link to an audio file, choose a file, \
                 or paste a transcript."
                    .into(),
            );
            None
        }
        Err(problem) => {
            shown.url_error = Some(problem.form_message());
            None
        }
    }
}

/// The answer to htmx after a job is created: the list with the new job, a fresh add form and
/// the flash message.
async fn created(
    state: &AppState,
    headers: &HeaderMap,
    token: CsrfToken,
    return_to: &str,
    job: &Job,
    flash: Flash,
) -> AppResult<Response> {
    let (back, open) = safe_return(return_to);
    let open_job = match open {
        Some(id) => maybe_job(state, &id).await?.map(|(job, _)| job),
        None => None,
    };
    let list = job_list(state, open_job.as_ref(), &shown_list(headers, &back))
        .await?
        .out_of_band();
    // On the home page the welcome beside the list changes with it.
    let welcome = open_job.is_none();
    let mut response = Updates {
        csrf_token: token.0,
        providers: Providers::new(&state.config),
        add_form: Some(AddForm::new(state, &back)),
        panel: None,
        panel_oob: welcome,
        list,
        flash: vec![flash],
        flash_oob: true,
    }
    .into_response();
    // Names the new job for scripts (the list above shows it to people).
    if let Ok(value) = HeaderValue::from_str(job.id.as_str()) {
        response.headers_mut().insert("x-focusflow-job", value);
    }
    Ok(response)
}

/// The add form again, with what was typed and what is wrong with it (422).
async fn invalid_form(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    token: CsrfToken,
    form: AddForm,
) -> AppResult<Response> {
    let (back, open) = safe_return(&form.return_to);
    let result = async {
        if is_htmx(headers) {
            return Ok(templates::FormPartial {
                csrf_token: token.0,
                form,
            }
            .into_response());
        }
        let open = match open {
            Some(id) => maybe_job(state, &id).await?,
            None => None,
        };
        let list = job_list(state, open.as_ref().map(|(job, _)| job), &list_of(&back)).await?;
        let providers = Providers::new(&state.config);
        let flash = flash::take(session, headers).await;
        Ok::<_, AppError>(match open {
            Some((job, logs)) => JobPage {
                csrf_token: token.0,
                flash,
                flash_oob: false,
                providers,
                form,
                list,
                panel: job_panel(state, &job, &logs, Media::Always, None).await?,
            }
            .into_response(),
            None => HomePage {
                csrf_token: token.0,
                flash,
                flash_oob: false,
                providers,
                form,
                list,
                panel_oob: false,
            }
            .into_response(),
        })
    };
    let mut response = result.await?;
    *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    Ok(response)
}

/// The job-changing forms differ only in what they do.
#[derive(Debug, Clone, Copy)]
enum Action {
    Retry,
    StartOver,
    Resummarize,
    Delete,
}

async fn act(state: &AppState, id: &JobId, action: Action) -> AppResult<Outcome> {
    let outcome = |flash| Outcome {
        flash,
        open_transcript: false,
        deleted: None,
        media: Media::Never,
    };
    Ok(match action {
        Action::Retry => {
            let message = state.jobs.retry(id, false).await?;
            outcome(Flash::success(format!("{message}.")))
        }
        Action::StartOver => {
            state.jobs.retry(id, true).await?;
            Outcome {
                media: Media::Always,
                ..outcome(Flash::success(
                    "Starting over: the recording is fetched and transcribed again.",
                ))
            }
        }
        Action::Resummarize => {
            state.jobs.resummarize(id).await?;
            outcome(Flash::success(
                "A new summary is being written from the transcript.",
            ))
        }
        Action::Delete => {
            let title = state
                .store
                .job(id)
                .await?
                .title
                .unwrap_or_else(|| "Untitled meeting".into());
            state.jobs.delete(id).await?;
            Outcome {
                flash: Flash::success(format!("Deleted “{title}”.")),
                open_transcript: false,
                deleted: Some(id.clone()),
                media: Media::Never,
            }
        }
    })
}

/// What a form handler needs besides its form: the address and headers (to choose the kind
/// of answer), the session (for flash messages) and the token (for the forms it sends back).
pub struct FormRequest {
    uri: Uri,
    headers: HeaderMap,
    session: Session,
    token: CsrfToken,
}

impl FromRequestParts<AppState> for FormRequest {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let session = crate::web::middleware::csrf::session_of(parts, state).await?;
        let token = CsrfToken::from_request_parts(parts, state).await?;
        Ok(Self {
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
            session,
            token,
        })
    }
}

impl FormRequest {
    /// What a handler answers with: the headers (which kind of answer), the session (flash
    /// messages) and the form token (for the forms it sends back).
    fn into_parts(self) -> (HeaderMap, Session, CsrfToken) {
        (self.headers, self.session, self.token)
    }

    /// The job named in the path (unknown when it cannot be one).
    fn job_id(&self, raw: &str) -> AppResult<JobId> {
        JobId::parse(raw).map_err(|_| AppError::job_not_found())
    }

    /// The job named in the path and its form, whose token held; a refusal comes first.
    fn job_form<T>(&self, raw: &str, form: Result<CsrfForm<T>, AppError>) -> AppResult<(JobId, T)> {
        let CsrfForm(form) = form?;
        Ok((self.job_id(raw)?, form))
    }
}

async fn job_action(
    state: AppState,
    raw: String,
    request: FormRequest,
    form: Result<CsrfForm<ActionForm>, AppError>,
    action: Action,
) -> AppResult<Response> {
    let (id, form) = request.job_form(&raw, form)?;
    let (headers, session, token) = request.into_parts();
    let outcome = match act(&state, &id, action).await {
        Ok(outcome) => outcome,
        Err(error @ AppError::Internal(_)) => return Err(error),
        // The person is told in words on the page they come back to.
        Err(error) => Outcome {
            flash: Flash::error(sentence(&error.public_message())),
            open_transcript: false,
            deleted: matches!(error, AppError::JobNotFound).then(|| id.clone()),
            media: Media::Never,
        },
    };
    answer(
        &state,
        &headers,
        &session,
        token.0,
        &form.return_to,
        outcome,
    )
    .await
}

macro_rules! action_handler {
    ($name:ident, $action:expr) => {
        pub async fn $name(
            State(state): State<AppState>,
            Path(raw): Path<String>,
            request: FormRequest,
            form: Result<CsrfForm<ActionForm>, AppError>,
        ) -> AppResult<Response> {
            job_action(state, raw, request, form, $action).await
        }
    };
}

action_handler!(retry, Action::Retry);
action_handler!(start_over, Action::StartOver);
action_handler!(resummarize, Action::Resummarize);
action_handler!(delete, Action::Delete);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_send_the_browser_back_only_to_pages_of_this_app() {
        assert_eq!(safe_return("/").0, "/");
        // The list's search and place come back, re-encoded; anything else is dropped.
        assert_eq!(
            safe_return("/?q=a+b&status=error&cursor=5_x&evil=%22%3E").0,
            "/?q=a+b&status=error&cursor=5_x"
        );
        assert_eq!(
            safe_return("/jobs/abc-1?q=%3Cscript%3E&offset=100").0,
            "/jobs/abc-1?q=%3Cscript%3E&offset=100"
        );
        let (path, open) = safe_return("/jobs/abc-1");
        assert_eq!(path, "/jobs/abc-1");
        assert_eq!(open.unwrap().as_str(), "abc-1");
        for hostile in [
            "https://evil.example/",
            "//evil.example",
            "/jobs/../admin",
            "/\\evil.example",
            "javascript:alert(1)",
            "",
        ] {
            assert_eq!(safe_return(hostile), ("/".to_string(), None), "{hostile}");
        }
    }
}
