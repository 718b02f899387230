//! The askama templates: full pages embed their partials, and each partial that htmx swaps has
//! a struct of its own with the same field names, so the one file serves both.

use askama::Template;
use askama_web::WebTemplate;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::flash::Flash;
use super::view::{Cards, Heading, JobList, JobPanel, ListRefresh, Providers};
use crate::pipeline::download::human_bytes;
use crate::web::AppState;

/// Renders a page that holds the job list, whose cards are most of it (some 80 KB for 100).
/// The cards are not copied: the answer is sent as the page's own text around slices of the
/// list's joined cards, which every answer for the same list shares (see [`PageWriter`]).
fn page_with_list<T: Template>(page: &T, cards: &Cards) -> Response {
    let mut writer = PageWriter::new(cards.joined().bytes(), T::SIZE_HINT);
    match page.render_into(&mut writer) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            Body::new(writer.finish()),
        )
            .into_response(),
        Err(error) => crate::error::AppError::Internal(anyhow::anyhow!(
            "a page could not be rendered: {error}"
        ))
        .into_response(),
    }
}

/// The answers that hold the job list: rendered by [`page_with_list`].
macro_rules! rendered_with_their_list {
    ($($page:ty),*) => {$(
        impl IntoResponse for $page {
            fn into_response(self) -> Response {
                page_with_list(&self, &self.list.cards)
            }
        }
    )*};
}

rendered_with_their_list!(HomePage, JobPage, ListPartial, Updates, HeadingSaved);

/// Writes a page as body chunks: its text goes into a buffer, but a run of at least
/// [`PageWriter::SHARE_FROM`] bytes written from `shared`'s own memory becomes a slice of it
/// (a reference count, not a copy). Runs are recognised by their address, so nothing else
/// written can be mistaken for them.
struct PageWriter<'a> {
    shared: &'a Bytes,
    chunks: Vec<Bytes>,
    text: String,
}

impl<'a> PageWriter<'a> {
    /// Shorter runs are copied: a chunk of its own costs the socket a piece of a `writev`.
    const SHARE_FROM: usize = 4096;

    fn new(shared: &'a Bytes, capacity: usize) -> Self {
        Self {
            shared,
            chunks: Vec::new(),
            text: String::with_capacity(capacity),
        }
    }

    /// Where `run` lies in `shared`, if it lies wholly within it.
    fn within_shared(&self, run: &str) -> Option<std::ops::Range<usize>> {
        let start = (run.as_ptr() as usize).checked_sub(self.shared.as_ptr() as usize)?;
        let end = start.checked_add(run.len())?;
        (end <= self.shared.len()).then_some(start..end)
    }

    fn finish(mut self) -> Chunks {
        if !self.text.is_empty() {
            self.chunks.push(Bytes::from(self.text));
        }
        Chunks::new(self.chunks)
    }
}

impl std::fmt::Write for PageWriter<'_> {
    fn write_str(&mut self, run: &str) -> std::fmt::Result {
        if run.len() >= Self::SHARE_FROM
            && let Some(range) = self.within_shared(run)
        {
            if !self.text.is_empty() {
                let text = std::mem::take(&mut self.text);
                self.chunks.push(Bytes::from(text));
            }
            self.chunks.push(self.shared.slice(range));
            return Ok(());
        }
        self.text.push_str(run);
        Ok(())
    }
}

/// A body sent as the chunks it was made of, with its exact length (so it goes out with a
/// `Content-Length`, as a page rendered whole would).
struct Chunks {
    chunks: std::collections::VecDeque<Bytes>,
    remaining: u64,
}

impl Chunks {
    fn new(chunks: Vec<Bytes>) -> Self {
        let remaining = chunks.iter().map(|chunk| chunk.len() as u64).sum();
        Self {
            chunks: chunks.into(),
            remaining,
        }
    }
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let chunk = self.chunks.pop_front();
        if let Some(chunk) = &chunk {
            self.remaining -= chunk.len() as u64;
        }
        std::task::Poll::Ready(chunk.map(|chunk| Ok(http_body::Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::jobs::{JobId, Status};
    use crate::web::pages::view::{ListState, RenderedCard};

    /// A list of `count` meetings, the first `failed` of them failed (so with a retry form).
    fn list(count: usize, failed: usize) -> JobList {
        let cards = (0..count)
            .map(|n| {
                let status = if n < failed {
                    Status::Error
                } else {
                    Status::Completed
                };
                let mut job = crate::web::pages::view::tests::job(status, None);
                job.id = JobId::parse(&format!("job{n}")).unwrap();
                job.title = Some(format!("Weekly planning {n}"));
                let card = JobList::card(&job, None, &ListState::default(), crate::zone::Zone::UTC);
                Arc::new(RenderedCard::render(&card, "/"))
            })
            .collect();
        JobList::assemble(
            Cards::of(cards),
            None,
            None,
            None,
            ListState::default(),
            None,
        )
    }

    fn partial(list: JobList) -> ListPartial {
        ListPartial {
            csrf_token: "the-token".into(),
            list,
        }
    }

    /// The chunks `page` is sent as.
    fn chunks(page: &ListPartial) -> Vec<Bytes> {
        let mut writer = PageWriter::new(page.list.cards.joined().bytes(), 0);
        page.render_into(&mut writer).unwrap();
        writer.finish().chunks.into()
    }

    fn shares_the_cards(chunk: &Bytes, page: &ListPartial) -> bool {
        let joined = page.list.cards.joined().bytes();
        let (start, end) = (
            joined.as_ptr() as usize,
            joined.as_ptr() as usize + joined.len(),
        );
        (start..end).contains(&(chunk.as_ptr() as usize))
    }

    #[test]
    fn the_cards_are_sent_from_the_list_not_copied() {
        let page = partial(list(100, 0));
        let whole = page.render().unwrap();
        let chunks = chunks(&page);
        assert_eq!(chunks.concat(), whole.as_bytes());
        // The page's text before the cards, the cards, the page's text after them.
        assert_eq!(
            chunks.len(),
            3,
            "{:?}",
            chunks.iter().map(Bytes::len).collect::<Vec<_>>()
        );
        assert!(shares_the_cards(&chunks[1], &page));
        assert!(chunks[1].len() > 50_000, "{}", chunks[1].len());
        assert!(!shares_the_cards(&chunks[0], &page) && !shares_the_cards(&chunks[2], &page));
    }

    #[test]
    fn forms_in_the_cards_get_the_token_and_the_rest_is_shared() {
        let page = partial(list(100, 3));
        let whole = page.render().unwrap();
        assert_eq!(whole.matches("value=\"the-token\"").count(), 3);
        assert!(!whole.contains("token-slot-"));
        let chunks = chunks(&page);
        assert_eq!(chunks.concat(), whole.as_bytes());
        let shared: usize = chunks
            .iter()
            .filter(|chunk| shares_the_cards(chunk, &page))
            .map(Bytes::len)
            .sum();
        // The three forms are near the top: everything after the last is one shared run.
        assert!(shared > 50_000, "{shared}");
        assert!(chunks.len() <= 6, "{}", chunks.len());
    }

    #[test]
    fn a_short_list_is_copied_into_one_chunk() {
        let page = partial(list(2, 1));
        let chunks = chunks(&page);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0], page.render().unwrap().as_bytes());
    }

    #[test]
    fn only_runs_of_the_shared_memory_are_taken_from_it() {
        let shared = Bytes::from("x".repeat(10_000));
        let mut writer = PageWriter::new(&shared, 0);
        use std::fmt::Write;
        // Equal text elsewhere in memory is copied; a run of the shared memory is not.
        writer.write_str(&"x".repeat(5_000)).unwrap();
        let inside = std::str::from_utf8(&shared[100..9_100]).unwrap();
        writer.write_str(inside).unwrap();
        writer.write_str("tail").unwrap();
        let chunks: Vec<Bytes> = writer.finish().chunks.into();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0].len(), 5_000);
        assert_ne!(chunks[0].as_ptr(), shared.as_ptr());
        assert_eq!(chunks[1].as_ptr(), shared[100..].as_ptr());
        assert_eq!(chunks[1].len(), 9_000);
        assert_eq!(chunks[2], "tail");
    }

    #[tokio::test]
    async fn the_answer_is_html_of_the_exact_length() {
        use axum::body::HttpBody;
        let page = partial(list(100, 2));
        let whole = page.render().unwrap();
        let response = page.into_response();
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let body = response.into_body();
        assert_eq!(body.size_hint().exact(), Some(whole.len() as u64));
        let sent = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        assert_eq!(sent, whole.as_bytes());
    }
}
