//! The askama templates: full pages embed their partials, and each partial that htmx swaps has
//! a struct of its own with the same field names, so the one file serves both.

use askama::Template;
use askama_web::WebTemplate;

use super::flash::Flash;
use super::view::{JobList, JobPanel, Providers};

/// The add form, with what was typed and what is wrong with it.
#[derive(Debug, Clone, Default)]
pub struct AddForm {
    pub url: String,
    pub meeting_date: String,
    pub url_error: Option<String>,
    pub date_error: Option<String>,
    /// The page the form sits on, where a browser without JavaScript comes back to.
    pub return_to: String,
}

impl AddForm {
    pub fn empty(return_to: &str) -> Self {
        Self {
            return_to: return_to.to_string(),
            ..Self::default()
        }
    }
}

#[derive(Template, WebTemplate)]
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

#[derive(Template, WebTemplate)]
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

#[derive(Template, WebTemplate)]
#[template(path = "partials/job_list.html")]
pub struct ListPartial {
    pub csrf_token: String,
    pub list: JobList,
}

#[derive(Template, WebTemplate)]
#[template(path = "partials/panel_poll.html")]
pub struct PanelPartial {
    pub csrf_token: String,
    pub providers: Providers,
    pub panel: JobPanel,
    pub list: Option<JobList>,
}

#[derive(Template, WebTemplate)]
#[template(path = "partials/add_form.html")]
pub struct FormPartial {
    pub csrf_token: String,
    pub form: AddForm,
}

/// The answer to an htmx action: what changed, swapped out of band.
#[derive(Template, WebTemplate)]
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

/// The panel of a job that no longer exists; it does not poll.
#[derive(Template, WebTemplate)]
#[template(path = "partials/gone.html")]
pub struct Gone;
