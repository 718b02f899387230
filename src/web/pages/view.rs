//! What the pages show, worked out from the store's jobs: words, icons and states, so the
//! templates only lay them out. Nothing here is HTML; askama escapes every string.

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::jobs::{ErrorKind, Job, JobId, LogLine, Stage, Status};
use crate::markdown::render_summary;
use crate::web::error::sentence;
use crate::zone::Zone;

/// A status in words, with the icon that goes with it (never colour alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusShown {
    /// `queued`, `downloading`, … for the CSS class.
    pub key: &'static str,
    pub label: String,
    pub icon: &'static str,
}

impl StatusShown {
    pub fn of(job: &Job) -> Self {
        let (label, icon) = match job.status {
            Status::Queued => ("Waiting to start".to_string(), "clock"),
            Status::Resolving => ("Finding the audio".to_string(), "spin"),
            Status::Downloading => (
                match job.progress.and_then(|progress| progress.percent) {
                    Some(percent) => format!("Downloading, {percent} %"),
                    None => "Downloading".to_string(),
                },
                "spin",
            ),
            Status::Transcribing => ("Transcribing".to_string(), "spin"),
            Status::Summarizing => ("Writing the summary".to_string(), "spin"),
            Status::Completed => ("Completed".to_string(), "check"),
            Status::Error => ("Failed".to_string(), "cross"),
        };
        Self {
            key: job.status.as_str(),
            label,
            icon,
        }
    }
}

/// One step of the stepper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: &'static str,
    /// `done`, `current`, `next`, `pending`, `failed` or `skipped`, for the CSS class.
    pub state: &'static str,
    /// The state in words, for screen readers and the tooltip.
    pub words: &'static str,
    pub icon: &'static str,
    /// Download progress, while downloading with a known size.
    pub percent: Option<u8>,
}

fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Resolve => "Resolve",
        Stage::Download => "Download",
        Stage::Transcribe => "Transcribe",
        Stage::Summarize => "Summarize",
    }
}

/// The four stages and where the job is among them.
pub fn steps(job: &Job) -> Vec<Step> {
    let next = Stage::first_after(job.checkpoint);
    Stage::ALL
        .into_iter()
        .map(|stage| {
            let finished = job.checkpoint.is_some_and(|done| stage <= done);
            let (state, words, icon) = if finished {
                let produced = match stage {
                    Stage::Transcribe => job.transcript_path.is_some(),
                    Stage::Summarize => job.summary.is_some() || job.summary_path.is_some(),
                    _ => true,
                };
                if produced || job.status.is_running() || job.status == Status::Queued {
                    ("done", "done", "check")
                } else {
                    ("skipped", "skipped", "dash")
                }
            } else if job.status.is_running() && job.current_stage() == Some(stage) {
                ("current", "in progress", "spin")
            } else if job.status == Status::Error && next == Some(stage) {
                ("failed", "failed", "cross")
            } else if job.status == Status::Queued && next == Some(stage) {
                ("next", "up next", "clock")
            } else if job.status == Status::Completed {
                ("skipped", "skipped", "dash")
            } else {
                ("pending", "not started", "dot")
            };
            let percent = (state == "current" && stage == Stage::Download)
                .then(|| job.progress.and_then(|progress| progress.percent))
                .flatten();
            Step {
                name: stage_name(stage),
                state,
                words,
                icon,
                percent,
            }
        })
        .collect()
}

/// A date to show, with its machine-readable form for `<time datetime>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateShown {
    pub text: String,
    pub iso: String,
    /// It has a time of day: shown in the display zone, with the zone named, and app.js shows
    /// it in the browser's zone instead. A date alone is a day wherever one is.
    pub local: bool,
}

impl DateShown {
    fn from_datetime(date: DateTime<Utc>, with_time: bool, zone: Zone) -> Self {
        let text = if with_time {
            date.with_timezone(&zone)
                .format("%a %-d %b %Y, %H:%M %Z")
                .to_string()
        } else {
            date.format("%a %-d %b %Y").to_string()
        };
        Self {
            text,
            iso: date.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            local: with_time,
        }
    }

    /// A meeting date as stored (ISO 8601); a midnight date (UTC) is shown without its time.
    pub fn meeting(iso: &str, zone: Zone) -> Option<Self> {
        let date = DateTime::parse_from_rfc3339(iso).ok()?.with_timezone(&Utc);
        let midnight = date.time() == chrono::NaiveTime::MIN;
        Some(Self::from_datetime(date, !midnight, zone))
    }

    pub fn millis(millis: i64, zone: Zone) -> Self {
        Self::from_datetime(
            DateTime::from_timestamp_millis(millis).unwrap_or_default(),
            true,
            zone,
        )
    }
}

/// The link a page may make of a URL: only http(s), so a `javascript:` URL from an imported
/// file can never become a link.
pub fn safe_href(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    matches!(parsed.scheme(), "http" | "https").then(|| parsed.to_string())
}

/// `web.plaud.ai` or `example.com · meeting.mp3`: enough of a link to recognise it.
pub fn source_hint(url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url.trim()) else {
        return url.chars().take(60).collect();
    };
    let host = parsed.host_str().unwrap_or_default().to_string();
    let file = parsed
        .path_segments()
        .and_then(|mut segments| segments.next_back())
        .filter(|name| name.contains('.'))
        .map(|name| percent_decode(name).chars().take(60).collect::<String>());
    match file {
        Some(file) if !host.is_empty() => format!("{host} · {file}"),
        Some(file) => file,
        None => host,
    }
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| text.to_string())
}

/// One job in the list.
#[derive(Debug, Clone)]
pub struct JobCard {
    pub id: String,
    pub title: String,
    pub untitled: bool,
    pub date: DateShown,
    /// "Meeting" or "Added", for the date above.
    pub date_kind: &'static str,
    pub status: StatusShown,
    pub steps: Vec<Step>,
    pub error: Option<String>,
    /// Host and file name of the link, to tell untitled meetings apart.
    pub source: String,
    pub can_retry: bool,
    pub active: bool,
    /// The stages are shown: while the job runs, and where it failed. A finished card is
    /// its title, date and status alone.
    pub show_steps: bool,
    pub open: bool,
    /// The job's page, keeping the list's search and filters.
    pub href: String,
    /// With a search: the matching passage as safe HTML (escaped text, `<mark>` around the
    /// matches; see [`crate::web::api::archive::snippet_html`]). The only other unescaped string.
    pub snippet_html: Option<String>,
}

impl JobCard {
    pub fn new(job: &Job, open: Option<&JobId>, zone: Zone) -> Self {
        let meeting = job
            .meeting_date
            .as_deref()
            .and_then(|iso| DateShown::meeting(iso, zone));
        let (date, date_kind) = match meeting {
            Some(date) => (date, "Meeting"),
            None => (DateShown::millis(job.created_at, zone), "Added"),
        };
        let title = job
            .title
            .as_deref()
            .map(str::trim)
            .filter(|title| !title.is_empty());
        Self {
            id: job.id.to_string(),
            title: title.unwrap_or("Untitled meeting").to_string(),
            untitled: title.is_none(),
            date,
            date_kind,
            status: StatusShown::of(job),
            steps: steps(job),
            error: job
                .error
                .as_deref()
                .filter(|_| job.status == Status::Error)
                .map(sentence),
            source: source_hint(&job.url),
            can_retry: job.status == Status::Error,
            active: !job.status.is_finished(),
            show_steps: job.status != Status::Completed,
            open: open.is_some_and(|open| *open == job.id),
            href: format!("/jobs/{}", job.id),
            snippet_html: None,
        }
    }
}

impl JobCard {
    /// A queued job's place in the queue (1 for the next one), said in its status.
    pub fn with_queue_place(mut self, queue: &[JobId]) -> Self {
        if let Some(index) = queue.iter().position(|id| *id.as_str() == *self.id) {
            self.status.label = queue_place(index + 1);
        }
        self
    }
}

/// "Next in the queue", "2nd in the queue", …
pub fn queue_place(place: usize) -> String {
    if place <= 1 {
        return "Next in the queue".into();
    }
    let suffix = match (place % 10, place % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{place}{suffix} in the queue")
}

/// What the list shows: the search words, filters and place, as they travel in URLs
/// (`q`, `status`, `from`, `to`, `cursor`, `offset`: the names `GET /api/jobs` uses).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListState {
    pub q: String,
    pub status: String,
    pub from: String,
    pub to: String,
    pub cursor: String,
    pub offset: usize,
}

/// The status filter's choices: (value of `status`, words).
pub const STATUS_CHOICES: &[(&str, &str)] = &[
    ("", "Any status"),
    (
        "queued,resolving,downloading,transcribing,summarizing",
        "In progress",
    ),
    ("completed", "Completed"),
    ("error", "Failed"),
];

impl ListState {
    /// From a query string; unknown parameters are ignored, overlong ones cut.
    pub fn from_query(query: &str) -> Self {
        let mut state = Self::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let value: String = value.trim().chars().take(200).collect();
            match name.as_ref() {
                "q" => state.q = value,
                "status" => state.status = value,
                "from" => state.from = value,
                "to" => state.to = value,
                "cursor" => state.cursor = value,
                "offset" => state.offset = value.parse().unwrap_or(0).min(1_000_000),
                _ => {}
            }
        }
        state
    }

    /// The query string (without `?`), empty for the first page of everything.
    pub fn to_query(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("q", self.q.as_str()),
            ("status", self.status.as_str()),
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
            ("cursor", self.cursor.as_str()),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        if self.offset > 0 {
            query.append_pair("offset", &self.offset.to_string());
        }
        query.finish()
    }

    /// `path` with this state's query.
    pub fn url(&self, path: &str) -> String {
        let query = self.to_query();
        if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        }
    }

    /// Searching or filtering (not just paging).
    pub fn is_filtered(&self) -> bool {
        !(self.q.is_empty() && self.status.is_empty() && self.from.is_empty() && self.to.is_empty())
    }

    /// The same search and filters from the first page.
    pub fn first_page(&self) -> Self {
        Self {
            cursor: String::new(),
            offset: 0,
            ..self.clone()
        }
    }

    /// The API's query, to build the store's filter with the API's checks.
    pub fn api_query(&self) -> crate::web::api::archive::ListQuery {
        let some = |value: &str| (!value.is_empty()).then(|| value.to_string());
        crate::web::api::archive::ListQuery {
            q: some(&self.q),
            status: some(&self.status),
            from: some(&self.from),
            to: some(&self.to),
            limit: Some(LIST_PAGE.to_string()),
            cursor: some(&self.cursor),
            offset: (self.offset > 0).then(|| self.offset.to_string()),
        }
    }
}

/// A link of the pager: the page's address, and the list fragment htmx fetches for it.
#[derive(Debug, Clone)]
pub struct PageLink {
    pub label: &'static str,
    pub url: String,
    pub partial_url: String,
}

/// The cards of a list, rendered once and shared by every page that shows the same list while
/// the store stays as it was (see `AnswerCache`). The person's form token is not in them: a
/// stand-in is, and [`Cards::html`] puts the token in its place. Each card is kept apart, so a
/// poll can send the running ones alone.
#[derive(Debug, Clone)]
pub struct Cards(std::sync::Arc<RenderedCards>);

#[derive(Debug)]
struct RenderedCards {
    cards: Vec<std::sync::Arc<RenderedCard>>,
    /// The cards' `<ul>` in one piece: what a page shows.
    joined: JoinedCards,
}

/// A list's cards joined into their `<ul>` once, with the form token's stand-ins found once.
/// A page takes the long runs between stand-ins as slices of [`JoinedCards::bytes`], shared
/// by every answer, instead of copying some 80 KB into each (see `templates::page_with_list`).
#[derive(Debug)]
pub struct JoinedCards {
    /// The HTML, as the templates write it.
    text: std::sync::Arc<str>,
    /// The same memory as a body chunk.
    bytes: bytes::Bytes,
    /// Where each stand-in for the form token starts in `text`.
    slots: Vec<usize>,
}

/// Lets [`bytes::Bytes`] hold the joined text without a copy.
struct SharedText(std::sync::Arc<str>);

impl AsRef<[u8]> for SharedText {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl JoinedCards {
    fn of(cards: &[std::sync::Arc<RenderedCard>]) -> Self {
        const OPEN: &str = "<ul class=\"cards\">";
        const CLOSE: &str = "</ul>";
        let length = cards.iter().map(|card| card.html.len()).sum::<usize>();
        let mut text = String::with_capacity(OPEN.len() + length + CLOSE.len());
        text.push_str(OPEN);
        for card in cards {
            text.push_str(&card.html);
        }
        text.push_str(CLOSE);
        let slots = if cards.iter().any(|card| card.can_retry) {
            text.match_indices(TOKEN_SLOT.as_str())
                .map(|(at, _)| at)
                .collect()
        } else {
            Vec::new()
        };
        let text: std::sync::Arc<str> = text.into();
        let bytes = bytes::Bytes::from_owner(SharedText(text.clone()));
        Self { text, bytes, slots }
    }

    /// The chunk a page's writer may take slices of.
    pub fn bytes(&self) -> &bytes::Bytes {
        &self.bytes
    }
}

/// One card as rendered, with the form token's stand-in: kept per job and shared by the
/// lists that show it the same way (see `AllJobs`'s cards).
#[derive(Debug)]
pub struct RenderedCard {
    id: String,
    /// The job is unfinished: its card changes while the job runs.
    active: bool,
    /// The card has a form (and so the form token's stand-in).
    can_retry: bool,
    /// The card's `<li>`.
    html: String,
}

impl RenderedCard {
    /// `card` as HTML, its forms sending the person back to `return_to`.
    pub fn render(card: &JobCard, return_to: &str) -> Self {
        use askama::Template;
        let fragment = CardFragment {
            card,
            return_to,
            csrf_token: TOKEN_SLOT.as_str(),
        };
        let html = fragment.render().unwrap_or_else(|error| {
            tracing::error!(%error, "could not render a job card");
            String::new()
        });
        Self {
            id: card.id.clone(),
            active: card.active,
            can_retry: card.can_retry,
            html,
        }
    }

    /// About how much memory the card holds.
    pub fn size(&self) -> usize {
        self.html.len() + self.id.len() + 64
    }
}

/// Stands in for the form token in rendered cards: random per process, so no text in a card
/// (always escaped, and unable to guess it) can be taken for it.
static TOKEN_SLOT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("token-slot-{}", uuid::Uuid::new_v4().simple()));

/// One card of a list, rendered once for the list's cache.
#[derive(askama::Template)]
#[template(path = "partials/job_card.html")]
struct CardFragment<'a> {
    card: &'a JobCard,
    return_to: &'a str,
    csrf_token: &'a str,
}

impl Cards {
    /// The cards rendered one by one, in this order.
    pub fn of(cards: Vec<std::sync::Arc<RenderedCard>>) -> Self {
        let joined = JoinedCards::of(&cards);
        Self(std::sync::Arc::new(RenderedCards { cards, joined }))
    }

    pub fn len(&self) -> usize {
        self.0.cards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.cards.is_empty()
    }

    fn with_token<'a>(&self, html: &'a str, csrf_token: &str) -> std::borrow::Cow<'a, str> {
        if !self.0.joined.slots.is_empty() {
            html.replace(TOKEN_SLOT.as_str(), csrf_token).into()
        } else {
            html.into()
        }
    }

    /// The cards' HTML, with `csrf_token` in their forms, written into the page from the
    /// joined cards (see [`JoinedCards`]).
    pub fn html<'a>(&'a self, csrf_token: &'a str) -> CardsHtml<'a> {
        CardsHtml {
            cards: self,
            csrf_token,
        }
    }

    /// One card, as an out-of-band swap that replaces the card the browser shows.
    pub fn card_out_of_band(&self, id: &str, csrf_token: &str) -> Option<String> {
        let card = self.0.cards.iter().find(|card| card.id == id)?;
        // The card template starts with its `<li`: the attribute goes right after it.
        let html = self.with_token(&card.html, csrf_token);
        Some(html.replacen("<li ", "<li hx-swap-oob=\"true\" ", 1))
    }

    /// The jobs shown, by id.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.cards.iter().map(|card| card.id.as_str())
    }

    /// The unfinished jobs shown, by id.
    pub fn running(&self) -> impl Iterator<Item = &str> {
        self.0
            .cards
            .iter()
            .filter(|card| card.active)
            .map(|card| card.id.as_str())
    }

    /// About how much memory the cards hold.
    pub fn size(&self) -> usize {
        let joined = self.0.joined.text.len() + self.0.joined.slots.len() * 8;
        self.0.cards.iter().map(|card| card.size()).sum::<usize>() + joined + 1024
    }

    /// The joined cards, which a page may send without copying them.
    pub fn joined(&self) -> &JoinedCards {
        &self.0.joined
    }
}

/// The cards as the page shows them (see [`Cards::html`]).
pub struct CardsHtml<'a> {
    cards: &'a Cards,
    csrf_token: &'a str,
}

impl std::fmt::Display for CardsHtml<'_> {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let joined = &self.cards.0.joined;
        let mut start = 0;
        for &slot in &joined.slots {
            out.write_str(&joined.text[start..slot])?;
            out.write_str(self.csrf_token)?;
            start = slot + TOKEN_SLOT.len();
        }
        out.write_str(&joined.text[start..])
    }
}

/// The job list, and whether it polls for changes by itself.
#[derive(Debug, Clone)]
pub struct JobList {
    pub cards: Cards,
    /// Sent as an out-of-band swap inside another partial's response.
    pub oob: bool,
    /// The list polls by itself: some job is unfinished and no open job's panel polls for it.
    pub poll: bool,
    pub poll_url: String,
    /// The page the list sits on (`/` or a job's page) with the list's query: where forms in
    /// the list send the person back to without JavaScript.
    pub return_to: String,
    pub newer: Option<PageLink>,
    pub older: Option<PageLink>,
    pub state: ListState,
    /// Where "clear the search" leads.
    pub clear_url: String,
    /// A search or filter that could not be used, in words; the list shows everything instead.
    pub filter_error: Option<String>,
    /// The open job, for the search form (so its results keep the job open).
    pub open_id: Option<String>,
    /// The list's poller is sent by itself, out of band (see [`JobList::refresh`]).
    pub poll_oob: bool,
}

/// Jobs shown per page of the list.
pub const LIST_PAGE: usize = 100;

/// The list's own address for `state`, which the poller and the page links fetch.
fn partial_url(open: Option<&Job>, state: &ListState) -> String {
    let mut params = url::form_urlencoded::Serializer::new(String::new());
    if let Some(job) = open {
        params.append_pair("open", job.id.as_str());
    }
    let mut url = format!("/partials/jobs?{}", params.finish());
    let query = state.to_query();
    if !query.is_empty() {
        if !url.ends_with('?') {
            url.push('&');
        }
        url.push_str(&query);
    }
    url.trim_end_matches('?').to_string()
}

/// The links to the newer and the older page of a list, where there are such pages.
fn page_links(
    next: Option<&crate::store::Cursor>,
    next_offset: Option<usize>,
    state: &ListState,
    open: Option<&Job>,
    base: &str,
) -> (Option<PageLink>, Option<PageLink>) {
    let link = |label: &'static str, state: ListState| PageLink {
        label,
        url: state.url(base),
        partial_url: partial_url(open, &state),
    };
    let older = if let Some(next) = next {
        Some(link(
            "Older",
            ListState {
                cursor: next.encode(),
                offset: 0,
                ..state.clone()
            },
        ))
    } else {
        next_offset.map(|offset| {
            link(
                "More results",
                ListState {
                    offset,
                    ..state.clone()
                },
            )
        })
    };
    let newer = if !state.cursor.is_empty() {
        Some(link("Newest", state.first_page()))
    } else if state.offset > 0 {
        Some(link(
            "Previous results",
            ListState {
                offset: state.offset.saturating_sub(LIST_PAGE),
                ..state.clone()
            },
        ))
    } else {
        None
    };
    (newer, older)
}

impl JobList {
    /// One page of the store's answer for `state`.
    pub fn new(
        page: crate::store::JobPage,
        open: Option<&Job>,
        state: ListState,
        filter_error: Option<String>,
        queue: &[JobId],
        zone: Zone,
    ) -> Self {
        let return_to = state.url(&Self::base(open));
        let cards = page
            .jobs
            .iter()
            .map(|found| {
                let mut card = Self::card(&found.job, open, &state, zone).with_queue_place(queue);
                card.snippet_html = found.snippet.as_deref().map(|snippet| {
                    // A passage of a summary is Markdown: the list shows its words.
                    crate::web::api::archive::snippet_html(&crate::markdown::plain_text(snippet))
                });
                std::sync::Arc::new(RenderedCard::render(&card, &return_to))
            })
            .collect();
        Self::assemble(
            Cards::of(cards),
            page.next.as_ref(),
            page.next_offset,
            open,
            state,
            filter_error,
        )
    }

    /// The page the list sits on: `/` or the open job's.
    fn base(open: Option<&Job>) -> String {
        match open {
            Some(job) => format!("/jobs/{}", job.id),
            None => "/".to_string(),
        }
    }

    /// Where the forms of a list for `state` beside `open` send the person back to.
    pub fn return_to(open: Option<&Job>, state: &ListState) -> String {
        state.url(&Self::base(open))
    }

    /// A job's card in the list for `state` beside `open` (without its queue place).
    pub fn card(job: &Job, open: Option<&Job>, state: &ListState, zone: Zone) -> JobCard {
        let mut card = JobCard::new(job, open.map(|job| &job.id), zone);
        card.href = state.url(&card.href);
        card
    }

    /// The list of `cards` (rendered with [`Self::return_to`]), with links to the pages
    /// after `next` (a cursor) or `next_offset` (a search's) and before `state`'s.
    pub fn assemble(
        cards: Cards,
        next: Option<&crate::store::Cursor>,
        next_offset: Option<usize>,
        open: Option<&Job>,
        state: ListState,
        filter_error: Option<String>,
    ) -> Self {
        // The open job's panel polls while the job runs and carries the list with it.
        let panel_polls = open.is_some_and(|job| !job.status.is_finished());
        let any_active = cards.running().next().is_some();
        let base = Self::base(open);
        let (newer, older) = page_links(next, next_offset, &state, open, &base);
        let return_to = state.url(&base);
        Self {
            cards,
            oob: false,
            poll: any_active && !panel_polls,
            poll_url: partial_url(open, &state),
            return_to,
            clear_url: base.clone(),
            newer,
            older,
            state,
            filter_error,
            open_id: open.map(|job| job.id.to_string()),
            poll_oob: false,
        }
    }

    pub fn out_of_band(mut self) -> Self {
        self.oob = true;
        self
    }

    /// `h1` on the home page, where the list is the page's subject; `h2` beside a job.
    pub fn heading_level(&self) -> &'static str {
        if self.open_id.is_none() { "h1" } else { "h2" }
    }

    /// The unfinished jobs the list shows, comma-separated: what the browser sends back when
    /// it polls.
    pub fn running_ids(&self) -> String {
        self.cards.running().collect::<Vec<_>>().join(",")
    }

    /// What a poll answers, given the running jobs the browser shows (`shown`, as
    /// [`JobList::running_ids`] gave them): those cards again, and the poller, each swapped out
    /// of band, so the rest of the list (and the focus and scroll in it) stays as it is. When
    /// the list itself changed (a running job the browser does not show, or one it shows that
    /// is gone), the whole list.
    pub fn refresh(mut self, shown: Option<&str>, csrf_token: &str) -> ListRefresh {
        // A browser that names no running jobs has an older page: it gets the whole list.
        let Some(shown) = shown else {
            self.oob = true;
            return ListRefresh {
                list: self,
                cards: None,
            };
        };
        let shown: Vec<&str> = shown
            .split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .collect();
        let listed: Vec<&str> = self.cards.ids().collect();
        let same_list = shown.iter().all(|id| listed.contains(id))
            && self.cards.running().all(|id| shown.contains(&id));
        let cards = same_list.then(|| {
            shown
                .iter()
                .filter_map(|id| self.cards.card_out_of_band(id, csrf_token))
                .collect()
        });
        if cards.is_some() {
            self.poll_oob = true;
        } else {
            self.oob = true;
        }
        ListRefresh { list: self, cards }
    }
}

/// A poll's answer for the list: the poller and the running cards, or the whole list.
#[derive(Debug, Clone)]
pub struct ListRefresh {
    pub list: JobList,
    /// The cards' out-of-band HTML; None when the whole list is sent.
    pub cards: Option<Vec<String>>,
}

/// One speaker's turn in a transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub speaker: Option<String>,
    /// A small number per speaker, for a CSS class that sets the speaker's colour; the name is
    /// always shown too.
    pub tone: usize,
    pub text: String,
    /// Where the turn starts in the recording, when the transcriber said.
    pub start: Option<TurnStart>,
}

/// A turn's start: `1:02:03` for people, seconds for the player.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnStart {
    pub label: String,
    pub seconds: String,
}

impl TurnStart {
    pub fn new(millis: u64) -> Self {
        let total = millis / 1000;
        let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
        let label = if hours > 0 {
            format!("{hours}:{minutes:02}:{seconds:02}")
        } else {
            format!("{minutes}:{seconds:02}")
        };
        Self {
            label,
            seconds: format!("{}.{:03}", millis / 1000, millis % 1000),
        }
    }
}

/// The start of each block of the stored transcript, from the provider's utterances: blocks
/// are made from them as [`crate::pipeline::transcribe::format_transcript`] makes them (empty
/// ones left out, one speaker's run joined). None when they do not match the text's turns.
pub fn turn_starts(
    utterances: &[crate::pipeline::transcribe::Utterance],
    turns: usize,
) -> Option<Vec<Option<u64>>> {
    crate::pipeline::transcribe::turn_starts(utterances, turns)
        .filter(|starts| starts.iter().any(Option::is_some))
}

/// Splits `[Speaker A]: …` blocks into turns; text without a label is a turn of its own.
pub fn turns(transcript: &str) -> Vec<Turn> {
    let mut speakers: Vec<String> = Vec::new();
    crate::pipeline::transcribe::transcript_blocks(transcript)
        .map(|(speaker, text)| match speaker {
            Some(speaker) => {
                let tone = match speakers.iter().position(|known| *known == speaker) {
                    Some(index) => index,
                    None => {
                        speakers.push(speaker.clone());
                        speakers.len() - 1
                    }
                } % 6;
                Turn {
                    speaker: Some(speaker),
                    tone,
                    text,
                    start: None,
                }
            }
            None => Turn {
                speaker: None,
                tone: 0,
                text,
                start: None,
            },
        })
        .collect()
}

/// The transcript section of a job page.
#[derive(Debug, Clone)]
pub struct TranscriptShown {
    pub turns: Vec<Turn>,
    pub text: String,
    pub speakers: usize,
}

impl TranscriptShown {
    /// With each turn's start, when `starts` has one per turn.
    pub fn with_starts(mut self, starts: Option<Vec<Option<u64>>>) -> Self {
        if let Some(starts) = starts.filter(|starts| starts.len() == self.turns.len()) {
            for (turn, start) in self.turns.iter_mut().zip(starts) {
                turn.start = start.map(TurnStart::new);
            }
        }
        self
    }

    pub fn new(text: String) -> Self {
        let turns = turns(&text);
        let mut names: Vec<&str> = turns
            .iter()
            .filter_map(|turn| turn.speaker.as_deref())
            .collect();
        names.sort_unstable();
        names.dedup();
        let speakers = names.len();
        Self {
            turns,
            text,
            speakers,
        }
    }
}

/// A log line with its time.
#[derive(Debug, Clone)]
pub struct LogShown {
    pub time: String,
    pub iso: String,
    pub message: String,
}

impl LogShown {
    pub fn new(line: &LogLine, zone: Zone) -> Self {
        let date = DateTime::from_timestamp_millis(line.ts).unwrap_or_default();
        Self {
            time: date.with_timezone(&zone).format("%H:%M:%S").to_string(),
            iso: date.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            message: line.message.clone(),
        }
    }
}

/// The audio player's source.
#[derive(Debug, Clone)]
pub struct AudioShown {
    pub url: String,
    pub mime: String,
}

/// A file the job can be downloaded as (the archive API's exports).
#[derive(Debug, Clone)]
pub struct Download {
    pub label: &'static str,
    pub href: String,
}

/// The title and meeting date at the top of a job, or the form that edits them.
#[derive(Debug, Clone)]
pub struct Heading {
    pub id: String,
    pub title: String,
    pub untitled: bool,
    pub date_kind: &'static str,
    pub date: DateShown,
    pub source: String,
    /// Editing is offered once the job has finished (a running job's title is still to come,
    /// and its header is replaced every two seconds).
    pub can_edit: bool,
    pub editing: Option<EditForm>,
}

impl Heading {
    pub fn new(job: &Job, zone: Zone) -> Self {
        let card = JobCard::new(job, None, zone);
        Self {
            id: card.id,
            title: card.title,
            untitled: card.untitled,
            date_kind: card.date_kind,
            date: card.date,
            source: card.source,
            can_edit: job.status.is_finished(),
            editing: None,
        }
    }

    pub fn editing(mut self, form: EditForm) -> Self {
        self.editing = Some(form);
        self
    }
}

/// The inline form for a job's title and meeting date, with what is wrong with it.
#[derive(Debug, Clone, Default)]
pub struct EditForm {
    pub title: String,
    /// As a `datetime-local` input wants it: `2025-09-25T14:30`, in `zone`.
    pub meeting_date: String,
    /// The IANA zone the date is shown and read in (app.js puts the browser's there).
    pub zone: String,
    /// The stored meeting date, for app.js to show in the browser's zone instead.
    pub iso: Option<String>,
    pub title_error: Option<String>,
    pub date_error: Option<String>,
}

impl EditForm {
    /// The job's title and meeting date, the date in `zone` (the one the form's times are
    /// read in).
    pub fn of(job: &Job, zone: Zone) -> Self {
        Self {
            title: job.title.clone().unwrap_or_default(),
            meeting_date: job
                .meeting_date
                .as_deref()
                .and_then(|iso| DateTime::parse_from_rfc3339(iso).ok())
                .map(|date| {
                    date.with_timezone(&zone)
                        .format("%Y-%m-%dT%H:%M")
                        .to_string()
                })
                .unwrap_or_default(),
            zone: zone.name().to_string(),
            iso: job.meeting_date.clone(),
            title_error: None,
            date_error: None,
        }
    }
}

/// One speaker of the transcript in the rename form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerField {
    /// The label in the stored transcript (`A`, or a name a caption file gave).
    pub label: String,
    /// How the transcript says it without a name: `Speaker A`.
    pub shown: String,
    pub name: String,
}

/// The transcript's speakers with the names given so far.
pub fn speaker_fields(
    raw_transcript: &str,
    names: &crate::jobs::SpeakerNames,
) -> Vec<SpeakerField> {
    crate::pipeline::transcribe::speakers_in(raw_transcript)
        .into_iter()
        .map(|label| SpeakerField {
            shown: if crate::pipeline::transcribe::captions::is_label(&label) {
                format!("Speaker {label}")
            } else {
                label.clone()
            },
            name: names.get(&label).cloned().unwrap_or_default(),
            label,
        })
        .collect()
}

/// Everything the job panel shows.
#[derive(Debug, Clone)]
pub struct JobPanel {
    pub card: JobCard,
    pub heading: Heading,
    /// The transcript's speakers, for the rename form (with the transcript, when sent).
    pub speakers: Vec<SpeakerField>,
    /// The transcript is shown open (after the person renamed its speakers).
    pub transcript_open: bool,
    pub url: String,
    pub url_href: Option<String>,
    pub resolved_url: Option<String>,
    pub resolved_href: Option<String>,
    pub added: DateShown,
    pub attempts: u32,
    /// The stage a retry resumes at, in words.
    pub resume_at: Option<&'static str>,
    pub can_start_over: bool,
    pub can_resummarize: bool,
    pub summary_markdown: Option<String>,
    /// Sanitised HTML from [`render_summary`]; the only string a template shows unescaped.
    pub summary_html: Option<String>,
    pub summary_streaming: bool,
    pub transcript: Option<TranscriptShown>,
    pub audio: Option<AudioShown>,
    pub logs: Vec<LogShown>,
    pub downloads: Vec<Download>,
    pub error_hint: Option<&'static str>,
    pub poll: bool,
    pub poll_url: String,
    /// The live part is an out-of-band swap (in an action's answer).
    pub oob: bool,
    /// The other parts are out-of-band swaps (in a poll's or an action's answer).
    pub oob_rest: bool,
    /// The recording and the transcript are sent (they changed, or the whole page is built).
    pub include_media: bool,
}

/// What the panel needs besides the job: artifacts read by the handler.
pub struct PanelInputs {
    pub summary: Option<String>,
    pub transcript: Option<TranscriptShown>,
    pub audio: Option<AudioShown>,
    /// Names the recording and transcript files as they are now (their sizes), so a poll can
    /// tell whether the browser's copy is current.
    pub media_key: String,
    pub include_media: bool,
    /// The transcript's timed utterances exist (for subtitle exports).
    pub timed_transcript: bool,
    pub speakers: Vec<SpeakerField>,
    /// The display zone (`DISPLAY_TIMEZONE`).
    pub zone: Zone,
}

/// The exports a job's panel offers: only those it has something for.
fn downloads(job: &Job, has_summary: bool, timed: bool, media_key: &str) -> Vec<Download> {
    let export = |format: &str| format!("/api/jobs/{}/export?format={format}", job.id);
    let mut downloads = Vec::new();
    if has_summary {
        downloads.push(Download {
            label: "Summary (.md)",
            href: export("md"),
        });
    }
    if job.transcript_path.is_some() {
        downloads.push(Download {
            label: "Transcript (.txt)",
            href: export("txt"),
        });
    }
    if timed {
        for (label, format) in [("Subtitles (.srt)", "srt"), ("Subtitles (.vtt)", "vtt")] {
            downloads.push(Download {
                label,
                href: export(format),
            });
        }
    }
    if media_key.contains('a') {
        downloads.push(Download {
            label: "Recording",
            href: export("audio"),
        });
    }
    downloads.push(Download {
        label: "Everything (.json)",
        href: export("json"),
    });
    downloads
}

impl JobPanel {
    pub fn new(job: &Job, logs: &[LogLine], inputs: PanelInputs) -> Self {
        let zone = inputs.zone;
        let card = JobCard::new(job, Some(&job.id), zone);
        let finished = job.status.is_finished();
        let has_transcript = job.transcript_path.is_some();
        let summary_markdown = inputs.summary.filter(|text| !text.trim().is_empty());
        let summary_html = summary_markdown.as_deref().map(render_summary);
        let resume_at = (job.status == Status::Error).then(|| {
            let checkpoint = match job.checkpoint {
                Some(Stage::Summarize) => Some(Stage::Transcribe),
                other => other,
            };
            stage_name(Stage::first_after(checkpoint).unwrap_or(Stage::Summarize))
        });
        let poll_url = format!("/jobs/{}/panel?media={}", job.id, inputs.media_key);
        let downloads = downloads(
            job,
            summary_markdown.is_some(),
            inputs.timed_transcript,
            &inputs.media_key,
        );
        Self {
            url: job.url.clone(),
            url_href: safe_href(&job.url),
            resolved_href: job.resolved_url.as_deref().and_then(safe_href),
            resolved_url: job
                .resolved_url
                .clone()
                .filter(|resolved| *resolved != job.url),
            added: DateShown::millis(job.created_at, zone),
            attempts: job.attempts,
            resume_at,
            can_start_over: finished,
            can_resummarize: finished && has_transcript,
            summary_markdown,
            summary_html,
            summary_streaming: job.status == Status::Summarizing,
            transcript: inputs.transcript,
            audio: inputs.audio,
            logs: logs.iter().map(|line| LogShown::new(line, zone)).collect(),
            downloads,
            error_hint: job
                .error
                .as_deref()
                .filter(|_| job.status == Status::Error)
                .map(|_| error_hint(job.failure_kind())),
            poll: !finished,
            poll_url,
            oob: false,
            oob_rest: false,
            include_media: inputs.include_media,
            heading: Heading::new(job, zone),
            speakers: inputs.speakers,
            transcript_open: false,
            card,
        }
    }

    /// For an action's answer: every part is swapped out of band.
    pub fn out_of_band(mut self) -> Self {
        self.oob = true;
        self.oob_rest = true;
        self
    }

    /// For a poll's answer: the live part replaces the polling element, the rest out of band.
    pub fn polled(mut self) -> Self {
        self.oob_rest = true;
        self
    }
}

/// A next step for the person, from the words of an error.
fn error_hint(kind: Option<ErrorKind>) -> &'static str {
    match kind {
        Some(ErrorKind::AddressRefused) => {
            "FocusFlow only fetches public addresses. An operator can allow private ones in its \
             settings."
        }
        Some(ErrorKind::NotAudio) => {
            "The link opened a web page, not a recording. Use a Plaud share link or a direct \
             link to the audio file."
        }
        Some(ErrorKind::TooLarge) => {
            "The recording is larger than this server takes. An operator can raise the limit."
        }
        Some(ErrorKind::TimedOut) => "A service was too slow. Retrying usually works.",
        _ => {
            "Retrying resumes after the last stage that finished; starting over fetches \
             everything again."
        }
    }
}

/// Which services are set up, and what is skipped without them.
#[derive(Debug, Clone)]
pub struct Providers {
    pub transcription: bool,
    pub summaries: bool,
    pub model: String,
}

impl Providers {
    pub fn new(config: &Config) -> Self {
        Self {
            transcription: config.transcription_enabled(),
            summaries: config.summaries_enabled(),
            model: config.openai_model.clone(),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::jobs::Progress;

    pub(in crate::web::pages) fn job(status: Status, checkpoint: Option<Stage>) -> Job {
        Job {
            id: JobId::parse("j1").unwrap(),
            url: "https://example.com/a.mp3".into(),
            resolved_url: None,
            meeting_date: None,
            status,
            title: None,
            summary: None,
            summary_path: None,
            transcript_path: None,
            file_path: None,
            created_at: 1_758_830_739_000,
            updated_at: 1_758_830_739_000,
            error: None,
            error_kind: None,
            checkpoint,
            attempts: 1,
            progress: None,
            transcription_ref: None,
            speakers: Default::default(),
            template: None,
        }
    }

    fn states(job: &Job) -> Vec<&'static str> {
        steps(job).into_iter().map(|step| step.state).collect()
    }

    #[test]
    fn the_stepper_follows_the_checkpoint() {
        let mut downloading = job(Status::Downloading, Some(Stage::Resolve));
        downloading.progress = Some(Progress::new(42, Some(100)));
        assert_eq!(
            states(&downloading),
            ["done", "current", "pending", "pending"]
        );
        assert_eq!(steps(&downloading)[1].percent, Some(42));
        assert_eq!(StatusShown::of(&downloading).label, "Downloading, 42 %");

        let failed = job(Status::Error, Some(Stage::Download));
        assert_eq!(states(&failed), ["done", "done", "failed", "pending"]);

        let queued = job(Status::Queued, None);
        assert_eq!(states(&queued), ["next", "pending", "pending", "pending"]);

        // Completed without transcription or LLM: those stages were skipped.
        let skipped = job(Status::Completed, Some(Stage::Summarize));
        assert_eq!(states(&skipped), ["done", "done", "skipped", "skipped"]);
        let mut full = job(Status::Completed, Some(Stage::Summarize));
        full.transcript_path = Some("transcripts/j1.txt".into());
        full.summary = Some("# S".into());
        assert_eq!(states(&full), ["done", "done", "done", "done"]);
    }

    #[test]
    fn transcripts_split_into_speaker_turns() {
        let turns =
            turns("[Speaker A]: Hello.\n\n[Speaker B]: Hi.\n\n[Speaker A]: Bye.\n\nno label here");
        assert_eq!(turns.len(), 4);
        assert_eq!(turns[0].speaker.as_deref(), Some("Speaker A"));
        assert_eq!(turns[1].tone, 1);
        assert_eq!(turns[2].tone, 0);
        assert_eq!(turns[3].speaker, None);
        assert_eq!(turns[3].text, "no label here");
        // A name as long as a name may be (60 characters), in three-byte characters.
        let name = "名".repeat(60);
        let named = super::turns(&format!("[{name}]: 你好。"));
        assert_eq!(named[0].speaker.as_deref(), Some(name.as_str()));
        assert_eq!(named[0].text, "你好。");
    }

    #[test]
    fn queued_jobs_say_their_place() {
        assert_eq!(queue_place(1), "Next in the queue");
        assert_eq!(queue_place(2), "2nd in the queue");
        assert_eq!(queue_place(3), "3rd in the queue");
        assert_eq!(queue_place(11), "11th in the queue");
        assert_eq!(queue_place(21), "21st in the queue");
        let queued = job(Status::Queued, None);
        let others = [JobId::parse("j0").unwrap(), JobId::parse("j1").unwrap()];
        let card = JobCard::new(&queued, None, Zone::UTC).with_queue_place(&others);
        assert_eq!(card.status.label, "2nd in the queue");
        assert!(card.show_steps);
        let done = JobCard::new(
            &job(Status::Completed, Some(Stage::Summarize)),
            None,
            Zone::UTC,
        );
        assert!(!done.show_steps);
    }

    #[test]
    fn turns_get_their_start_from_the_utterances() {
        use crate::pipeline::transcribe::Utterance;
        let said = |speaker: &str, text: &str, start: u64| Utterance {
            speaker: Some(speaker.into()),
            text: text.into(),
            start: Some(start),
            end: None,
        };
        // Two utterances of A in a row make one turn, as in the stored text; an empty one
        // makes none.
        let utterances = [
            said("A", "Hello.", 0),
            said("A", "Shall we?", 1_500),
            said("B", " ", 2_000),
            said("B", "Yes.", 3_725_250),
        ];
        let starts = turn_starts(&utterances, 2).unwrap();
        assert_eq!(starts, [Some(0), Some(3_725_250)]);
        assert_eq!(
            turn_starts(&utterances, 3),
            None,
            "a different text is not timed"
        );
        let shown =
            TranscriptShown::new("[Speaker A]: Hello. Shall we?\n\n[Speaker B]: Yes.".into())
                .with_starts(Some(starts));
        let start = shown.turns[1].start.clone().unwrap();
        assert_eq!(start.label, "1:02:05");
        assert_eq!(start.seconds, "3725.250");
        assert_eq!(TurnStart::new(65_000).label, "1:05");
    }

    #[test]
    fn untitled_meetings_are_told_apart_by_their_link() {
        assert_eq!(
            source_hint("https://cdn.example.com/rec/Team%20sync.mp3?sig=1"),
            "cdn.example.com · Team sync.mp3"
        );
        assert_eq!(
            source_hint("https://web.plaud.ai/share/abc123"),
            "web.plaud.ai"
        );
    }

    #[test]
    fn only_web_links_become_links() {
        assert!(safe_href("https://example.com/a").is_some());
        assert_eq!(safe_href("javascript:alert(1)"), None);
        assert_eq!(safe_href("data:text/html,x"), None);
    }

    #[test]
    fn meeting_dates_read_well() {
        let date = DateShown::meeting("2025-09-25T20:05:39.000Z", Zone::UTC).unwrap();
        assert_eq!(date.text, "Thu 25 Sep 2025, 20:05 UTC");
        assert!(date.local);
        let day = DateShown::meeting("2025-09-25T00:00:00.000Z", Zone::UTC).unwrap();
        assert_eq!(day.text, "Thu 25 Sep 2025");
        assert!(!day.local);
        // In the display zone, named; a day stays the same day.
        let berlin = DateShown::meeting(
            "2025-09-25T20:05:39.000Z",
            Zone::named("Europe/Berlin").unwrap(),
        )
        .unwrap();
        assert_eq!(berlin.text, "Thu 25 Sep 2025, 22:05 CEST");
        assert_eq!(berlin.iso, "2025-09-25T20:05:39Z");
        let day = DateShown::meeting(
            "2025-09-25T00:00:00.000Z",
            Zone::named("America/New_York").unwrap(),
        )
        .unwrap();
        assert_eq!(day.text, "Thu 25 Sep 2025");
    }
}
