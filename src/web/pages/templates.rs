//! The askama templates: full pages embed their partials, and each partial that htmx swaps has
//! a struct of its own with the same field names, so the one file serves both.

use askama::Template;
use askama_web::WebTemplate;
use axum::response::{Html, IntoResponse, Response};

use super::flash::Flash;
use super::view::{Heading, JobList, JobPanel, ListRefresh, Providers};
use crate::pipeline::download::human_bytes;
use crate::web::AppState;

/// Renders `page` into a buffer made for `expected` bytes more than the template's own text.
/// The pages with the job list are mostly its cards (some 90 KB for 100): rendered into
/// askama's size hint, the buffer would be grown, and copied, by doubling.
fn sized_page<T: Template>(page: &T, expected: usize) -> Response {
    let mut html = String::with_capacity(T::SIZE_HINT + expected);
    match page.render_into(&mut html) {
        Ok(()) => Html(html).into_response(),
        Err(error) => crate::error::AppError::Internal(anyhow::anyhow!(
            "a page could not be rendered: {error}"
        ))
        .into_response(),
    }
}

/// The answers that hold the job list: rendered by [`sized_page`].
macro_rules! sized_by_their_list {
    ($($page:ty),*) => {$(
        impl IntoResponse for $page {
            fn into_response(self) -> Response {
                sized_page(&self, self.list.cards.size())
            }
        }
    )*};
}

sized_by_their_list!(HomePage, JobPage, ListPartial, Updates, HeadingSaved);

/// A summary template to choose in the add form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateChoice {
    pub name: String,
    /// `one_on_one` → `One on one`.
    pub label: String,
}

impl TemplateChoice {
    fn new(name: String) -> Self {
        let spaced = name.replace(['_', '-'], " ");
        let mut label = String::with_capacity(spaced.len());
        let mut chars = spaced.chars();
        if let Some(first) = chars.next() {
            label.extend(first.to_uppercase());
            label.extend(chars);
        }
        Self { name, label }
    }
}

/// The add form, with what was typed and what is wrong with it.
#[derive(Debug, Clone, Default)]
pub struct AddForm {
    pub url: String,
    pub meeting_date: String,
    pub transcript: String,
    /// The chosen template's name.
    pub template: String,
    pub url_error: Option<String>,
    pub date_error: Option<String>,
    pub file_error: Option<String>,
    pub transcript_error: Option<String>,
    pub template_error: Option<String>,
    /// The page the form sits on, where a browser without JavaScript comes back to.
    pub return_to: String,
    /// The summary templates in the prompts folder (the same list as `GET /api/templates`).
    pub templates: Vec<TemplateChoice>,
    /// The configured prompt (`PROMPT_PATH`) is not one of `templates` (another folder, name or
    /// extension): the form then offers it as "Default" (an empty value), so that no listed
    /// template is chosen in its place.
    pub default_unlisted: bool,
    /// `MAX_DOWNLOAD_BYTES`, for the page's own check before an upload starts.
    pub max_bytes: u64,
    pub max_size: String,
    /// The zone typed dates are read in without JavaScript (`DISPLAY_TIMEZONE`).
    pub zone: String,
    /// The browser's zone, as the form last sent it (app.js fills it in).
    pub timezone: String,
}

impl AddForm {
    /// An empty form with the default template chosen.
    pub fn new(state: &AppState, return_to: &str) -> Self {
        let templates: Vec<TemplateChoice> = state
            .template_names
            .list(&state.config.prompts_dir())
            .iter()
            .cloned()
            .map(TemplateChoice::new)
            .collect();
        let max_bytes = state.config.max_download_bytes;
        let default = state
            .config
            .default_template()
            .filter(|name| templates.iter().any(|choice| choice.name == *name));
        Self {
            return_to: return_to.to_string(),
            default_unlisted: default.is_none(),
            template: default.unwrap_or_default(),
            templates,
            max_bytes,
            max_size: human_bytes(max_bytes),
            zone: state.config.display_timezone.name().to_string(),
            ..Self::default()
        }
    }

    /// "More options" opens by itself when something in it was filled in or is wrong.
    pub fn shows_options(&self) -> bool {
        !self.meeting_date.is_empty()
            || !self.transcript.is_empty()
            || self.date_error.is_some()
            || self.transcript_error.is_some()
            || self.template_error.is_some()
    }

    pub fn has_errors(&self) -> bool {
        self.url_error.is_some()
            || self.date_error.is_some()
            || self.file_error.is_some()
            || self.transcript_error.is_some()
            || self.template_error.is_some()
    }
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub csrf_token: String,
    pub flash: Vec<Flash>,
    pub flash_oob: bool,
    pub providers: Providers,
    pub form: AddForm,
    pub list: JobList,
    pub panel_oob: bool,
}

#[derive(Template)]
#[template(path = "job.html")]
pub struct JobPage {
    pub csrf_token: String,
    pub flash: Vec<Flash>,
    pub flash_oob: bool,
    pub providers: Providers,
    pub form: AddForm,
    pub list: JobList,
    pub panel: JobPanel,
}

#[derive(Template)]
#[template(path = "partials/job_list.html")]
pub struct ListPartial {
    pub csrf_token: String,
    pub list: JobList,
}

/// The list poller's answer (see [`super::view::JobList::refresh`]).
#[derive(Template, WebTemplate)]
#[template(path = "partials/list_refresh.html")]
pub struct ListRefreshPartial {
    pub csrf_token: String,
    pub refresh: ListRefresh,
}

#[derive(Template, WebTemplate)]
#[template(path = "partials/panel_poll.html")]
pub struct PanelPartial {
    pub csrf_token: String,
    pub providers: Providers,
    pub panel: JobPanel,
    pub refresh: Option<ListRefresh>,
}

#[derive(Template, WebTemplate)]
#[template(path = "partials/add_form.html")]
pub struct FormPartial {
    pub csrf_token: String,
    pub form: AddForm,
}

/// The answer to an htmx action: what changed, swapped out of band.
#[derive(Template)]
#[template(path = "partials/updates.html")]
pub struct Updates {
    pub csrf_token: String,
    pub providers: Providers,
    pub add_form: Option<AddForm>,
    pub panel: Option<JobPanel>,
    /// The open job was deleted: its panel becomes the welcome panel.
    pub panel_oob: bool,
    pub list: JobList,
    pub flash: Vec<Flash>,
    pub flash_oob: bool,
}

/// A job's title and meeting date, or the form that edits them (inline edit).
#[derive(Template, WebTemplate)]
#[template(path = "partials/job_heading.html")]
pub struct HeadingPartial {
    pub csrf_token: String,
    pub heading: Heading,
}

/// The answer to a saved edit: the heading, and out of band the list and the message.
#[derive(Template)]
#[template(path = "partials/heading_saved.html")]
pub struct HeadingSaved {
    pub csrf_token: String,
    pub heading: Heading,
    pub list: JobList,
    pub flash: Vec<Flash>,
    pub flash_oob: bool,
}

/// The panel of a job that no longer exists; it does not poll.
#[derive(Template, WebTemplate)]
#[template(path = "partials/gone.html")]
pub struct Gone;
