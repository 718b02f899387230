//! The Web Share Target: FocusFlow, installed on a phone, is offered in other apps' share
//! sheets (see `static/manifest.webmanifest`). The browser posts what was shared to `/share` as
//! a form: a link, text (which often holds the link), a title, or a file. A link or a recording
//! becomes a job, and the browser is sent to its page.
//!
//! A share carries no form token: the browser itself sends it, from outside any page. So the
//! cross-site check lets `/share` through with `Origin: null` only when the browser says the
//! request came from itself (`Sec-Fetch-Site: none`, which no page can send); a form on another
//! site is refused as everywhere. With Basic auth the browser sends the credentials it has.

use std::sync::LazyLock;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use super::flash::{self, Flash};
use crate::error::AppError;
use crate::service::jobs::{Options, Source, new_id};
use crate::web::AppState;
use crate::web::api::intake;
use crate::web::api::link::{self, UrlProblem};
use crate::web::error::sentence;

/// Where the manifest's `share_target` posts.
/// The share target's address, as the web app manifest names it.
pub const PATH: &str = "/share";

/// The first web link in shared text: apps share "Listen to my recording: https://…".
pub fn first_link(text: &str) -> Option<String> {
    static LINK: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r#"https?://[^\s<>"']+"#).expect("a valid pattern"));
    let found = LINK.find(text)?.as_str();
    // Sentence punctuation after a link is not part of it.
    let link = found.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '»', '”', '’']);
    Some(link.to_string())
}

/// `GET /share`: nothing to add; the list.
pub async fn page() -> Redirect {
    Redirect::to("/")
}

/// `POST /share`: what another app shared becomes a job, and its page opens; a share that
/// cannot become one says why on the list.
pub async fn receive(
    State(state): State<AppState>,
    session: Session,
    request: Request,
) -> Response {
    let outcome = async {
        if !intake::is_multipart(&request) {
            return Err(AppError::UnsupportedMediaType(
                "a share is sent as multipart/form-data".into(),
            ));
        }
        let received = intake::receive(&state, request, None, &["url", "text", "title"]).await?;
        if received.has_file() {
            let name = received.file_name().unwrap_or("recording").to_string();
            let (job, _) = intake::create_received(&state, received, Options::default()).await?;
            let flash = if job.file_path.is_some() {
                Flash::success(format!(
                    "Shared “{name}” added. FocusFlow is transcribing it."
                ))
            } else {
                Flash::success(format!(
                    "Shared transcript “{name}” added. The summary is being written."
                ))
            };
            return Ok((job, flash));
        }
        let link = ["url", "text", "title"]
            .iter()
            .filter_map(|field| received.field(field))
            .find_map(first_link)
            .ok_or_else(|| {
                AppError::bad_request(
                    "the share held no link and no recording: share a Plaud link, a link to \
                     an audio file, or the recording itself",
                )
            })?;
        let url = link::validate_url(&state, &link).map_err(|problem| match problem {
            UrlProblem::Refused(reason) => AppError::bad_request(reason),
            other => AppError::bad_request(other.form_message()),
        })?;
        let (job, _) = state
            .jobs
            .create(new_id(), Source::Link(url), Options::default())
            .await?;
        Ok((
            job,
            Flash::success("Shared link added. FocusFlow is working on it."),
        ))
    }
    .await;
    match outcome {
        Ok((job, message)) => {
            flash::push(&session, message).await;
            Redirect::to(&format!("/jobs/{}", job.id)).into_response()
        }
        Err(error) => {
            if let AppError::Internal(cause) = &error {
                tracing::error!(error = %cause, "a share could not be added");
            }
            flash::push(&session, Flash::error(sentence(&error.public_message()))).await;
            Redirect::to("/").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_is_found_in_shared_text() {
        assert_eq!(
            first_link("Listen to my recording: https://web.plaud.ai/share/abc123.").as_deref(),
            Some("https://web.plaud.ai/share/abc123")
        );
        assert_eq!(
            first_link("(see https://example.com/a.mp3?x=1)").as_deref(),
            Some("https://example.com/a.mp3?x=1")
        );
        assert_eq!(first_link("no link here"), None);
        assert_eq!(first_link("ftp://example.com/a.mp3"), None);
    }
}
