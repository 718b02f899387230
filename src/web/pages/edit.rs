//! Changes a person makes to a job on its page: the title and meeting date edited in place
//! (htmx swaps the heading for a form and back; without JavaScript the job page shows the form),
//! and names for the transcript's speakers.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::flash::{self, Flash};
use super::templates::{HeadingPartial, HeadingSaved};
use super::view::{EditForm, Heading, ListState};
use super::{
    FormRequest, Media, Outcome, answer, form_zone, job_list, list_of, safe_return, shown_list,
    whole_job_page,
};
use crate::domain::{MeetingDate, Title};
use crate::error::{AppError, AppResult};
use crate::jobs::{Job, JobId};
use crate::service::jobs::Edit;
use crate::web::AppState;
use crate::web::error::{is_htmx, sentence};
use crate::web::middleware::csrf::{CsrfForm, CsrfToken};

/// `GET /jobs/{id}/edit`: the heading as a form; the whole job page without htmx.
pub async fn edit_form(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    request: FormRequest,
) -> AppResult<Response> {
    let id = request.job_id(&raw)?;
    let FormRequest {
        uri,
        headers,
        session,
        token,
    } = request;
    let job = state.store.job(&id).await?;
    let zone = state.config.display_timezone;
    let heading = Heading::new(&job, zone).editing(EditForm::of(&job, zone));
    let list = super::list_state(&uri);
    heading_or_page(&state, &headers, &session, token, &id, heading, &list).await
}

/// The heading alone for htmx; otherwise the whole job page with it, the list as `list` asks.
async fn heading_or_page(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    token: CsrfToken,
    id: &JobId,
    heading: Heading,
    list: &ListState,
) -> AppResult<Response> {
    if is_htmx(headers) {
        return Ok(HeadingPartial {
            csrf_token: token.0,
            heading,
        }
        .into_response());
    }
    whole_job_page(state, session, headers, token, id, Some(heading), list).await
}

/// `GET /jobs/{id}/heading`: the heading as it is (the edit form's Cancel, with htmx).
pub async fn heading(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    request: FormRequest,
) -> AppResult<Response> {
    let id = request.job_id(&raw)?;
    let FormRequest { headers, token, .. } = request;
    if !is_htmx(&headers) {
        return Ok(Redirect::to(&format!("/jobs/{id}")).into_response());
    }
    let job = state.store.job(&id).await?;
    Ok(HeadingPartial {
        csrf_token: token.0,
        heading: Heading::new(&job, state.config.display_timezone),
    }
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct EditFields {
    #[serde(default)]
    title: String,
    #[serde(default)]
    meeting_date: String,
    /// The browser's zone, which app.js puts in the form; the date is read in it.
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    return_to: String,
}

/// `POST /jobs/{id}/edit`: saves the title and meeting date (an empty one clears it). Errors
/// are shown in the form (422); a saved edit swaps the heading back, or redirects without htmx.
pub async fn save_edit(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    request: FormRequest,
    form: Result<CsrfForm<EditFields>, AppError>,
) -> AppResult<Response> {
    let (id, fields) = request.job_form(&raw, form)?;
    let (headers, session, token) = request.into_parts();
    let (back, back_to) = safe_return(&fields.return_to);
    let back = if back_to.as_ref() == Some(&id) {
        back
    } else {
        format!("/jobs/{id}")
    };
    let job = state.store.job(&id).await?;
    let (shown, edit) = check_edit(&job, &fields, form_zone(&state, &fields.timezone));
    let Some(edit) = edit else {
        let heading = Heading::new(&job, state.config.display_timezone).editing(shown);
        let list = list_of(&back);
        let mut response =
            heading_or_page(&state, &headers, &session, token, &id, heading, &list).await?;
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(response);
    };
    let job = state.jobs.edit(&id, edit).await?;
    let flash = Flash::success("Saved.");
    if !is_htmx(&headers) {
        flash::push(&session, flash).await;
        return Ok(Redirect::to(&back).into_response());
    }
    let list = job_list(&state, Some(&job), &shown_list(&headers, &back))
        .await?
        .out_of_band();
    Ok(HeadingSaved {
        csrf_token: token.0,
        heading: Heading::new(&job, state.config.display_timezone),
        list,
        flash: vec![flash],
        flash_oob: true,
    }
    .into_response())
}

/// The edit form checked: the form to show again (with what is wrong beside each field), and
/// the edit to make when nothing is.
fn check_edit(job: &Job, fields: &EditFields, zone: crate::zone::Zone) -> (EditForm, Option<Edit>) {
    let mut shown = EditForm {
        title: fields.title.trim().to_string(),
        meeting_date: fields.meeting_date.trim().to_string(),
        zone: zone.name().to_string(),
        iso: None,
        title_error: None,
        date_error: None,
    };
    let title = Title::parse(&fields.title).unwrap_or_else(|problem| {
        shown.title_error = Some(format!("The title {problem}."));
        None
    });
    // The form shows the date to the minute (and nothing for a date it cannot show, such as an
    // imported one it does not understand): left as shown, the stored date stays as it is,
    // seconds and all.
    let date_unchanged = shown.meeting_date == EditForm::of(job, zone).meeting_date;
    let meeting_date = if date_unchanged || shown.meeting_date.is_empty() {
        None
    } else {
        let parsed = MeetingDate::parse_in(&shown.meeting_date, zone);
        if parsed.is_none() {
            shown.date_error = Some(MeetingDate::FORM_PROBLEM.into());
        }
        parsed
    };
    if shown.title_error.is_some() || shown.date_error.is_some() {
        return (shown, None);
    }
    let edit = Edit {
        title: Some(title),
        meeting_date: (!date_unchanged).then_some(meeting_date),
    };
    (shown, Some(edit))
}

/// The speaker form's field for a label: `speaker.A`.
const SPEAKER_FIELD: &str = "speaker.";

/// `POST /jobs/{id}/speakers`: names for the transcript's speakers (`speaker.<label>` fields;
/// an empty one removes the name), and with `resummarize` a new summary that uses them.
pub async fn speakers(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    request: FormRequest,
    form: Result<CsrfForm<Vec<(String, String)>>, AppError>,
) -> AppResult<Response> {
    let (id, fields) = request.job_form(&raw, form)?;
    let (headers, session, token) = request.into_parts();
    let value = |name: &str| {
        fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    };
    let return_to = value("return_to").unwrap_or_default().to_string();
    let resummarize = value("resummarize").is_some();
    let names: Vec<(String, String)> = fields
        .iter()
        .filter_map(|(field, name)| {
            field
                .strip_prefix(SPEAKER_FIELD)
                .map(|label| (label.to_string(), name.clone()))
        })
        .collect();
    let outcome = async {
        let (job, _) = state.jobs.name_speakers(&id, names).await?;
        let named = job.speakers.len();
        let mut words = if named == 0 {
            "Speaker names cleared.".to_string()
        } else {
            "Speaker names saved.".to_string()
        };
        if resummarize {
            state.jobs.resummarize(&id).await?;
            words.push_str(" A new summary is being written with them.");
        } else if job.summary_path.is_some() || job.summary.is_some() {
            words.push_str(" Re-summarize to use them in the summary.");
        }
        Ok::<_, AppError>(Flash::success(words))
    }
    .await;
    let outcome = match outcome {
        Ok(flash) => Outcome {
            flash,
            open_transcript: true,
            deleted: None,
            media: Media::Always,
        },
        Err(error @ AppError::Internal(_)) => return Err(error),
        Err(error) => Outcome {
            flash: Flash::error(sentence(&error.public_message())),
            open_transcript: true,
            deleted: matches!(error, AppError::JobNotFound).then(|| id.clone()),
            media: Media::Always,
        },
    };
    answer(&state, &headers, &session, token.0, &return_to, outcome).await
}
