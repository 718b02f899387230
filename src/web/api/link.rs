//! A link a person asks us to fetch, checked at the edge (the API, the add form, a share) and
//! worded for each: what is done with it is the job service's (`crate::service::jobs`).

use url::Url;

use crate::net::guard::AudioUrl;
use crate::web::AppState;

const MAX_URL_LENGTH: usize = 4096;

/// Why a URL cannot become a job. The API and the form word it differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlProblem {
    Empty,
    TooLong,
    NotAUrl(String),
    Scheme(String),
    NoHost,
    Refused(String),
}

impl UrlProblem {
    /// The API's message, which names the JSON field.
    pub fn api_message(&self) -> String {
        match self {
            UrlProblem::Empty => {
                "\"url\" is empty; paste a Plaud share link or an audio URL".into()
            }
            UrlProblem::TooLong => format!("\"url\" is longer than {MAX_URL_LENGTH} characters"),
            UrlProblem::NotAUrl(error) => format!("\"url\" is not a valid URL ({error})"),
            UrlProblem::Scheme(scheme) => {
                format!("\"url\" must start with http:// or https:// (got {scheme}:)")
            }
            UrlProblem::NoHost => "\"url\" has no host".into(),
            UrlProblem::Refused(reason) => reason.clone(),
        }
    }

    /// The form's message, shown next to the field.
    pub fn form_message(&self) -> String {
        match self {
            UrlProblem::Empty => "Paste a Plaud share link or a link to an audio file.".into(),
            UrlProblem::TooLong => {
                format!("This link is longer than {MAX_URL_LENGTH} characters.")
            }
            UrlProblem::NotAUrl(_) => {
                "This is not a web address. It should look like https://web.plaud.ai/share/… \
                 or https://example.com/meeting.mp3."
                    .into()
            }
            UrlProblem::Scheme(scheme) => {
                format!("The link must start with http:// or https:// (this one is {scheme}:).")
            }
            UrlProblem::NoHost => "The link has no host name.".into(),
            UrlProblem::Refused(reason) => {
                let mut reason = reason.clone();
                if let Some(first) = reason.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                if !reason.ends_with('.') {
                    reason.push('.');
                }
                reason
            }
        }
    }
}

/// A URL a user asks us to fetch: http(s), a host, not absurdly long, and (when it can be
/// known now) not aimed at a refused address.
pub fn validate_url(state: &AppState, raw: &str) -> Result<AudioUrl, UrlProblem> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(UrlProblem::Empty);
    }
    if trimmed.len() > MAX_URL_LENGTH {
        return Err(UrlProblem::TooLong);
    }
    let url = Url::parse(trimmed).map_err(|error| UrlProblem::NotAUrl(error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlProblem::Scheme(url.scheme().to_string()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UrlProblem::NoHost);
    }
    AudioUrl::check(url, &state.clients.policy)
        .map_err(|refusal| UrlProblem::Refused(refusal.to_string()))
}
