//! The HTML pages over HTTP: they show what the store holds, escaped; they answer JSON when asked;
//! forms need their token, redirect without JavaScript and swap in place with htmx; polling
//! stops when jobs finish; the recording seeks; static files are typed and cached.

use std::sync::LazyLock;

use axum::http::header;
use regex::Regex;
use serde_json::{Value, json};

use crate::fakes::{self, LlmBehaviour};
use crate::helpers::{CookieJar, Fakes, TestApp, test_config};

/// A browser without JavaScript: keeps its cookies, reads form tokens from pages.
pub(crate) struct Browser<'a> {
    pub(crate) app: &'a TestApp,
    pub(crate) cookies: CookieJar,
}

pub(crate) static TOKEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"name="csrf_token" value="([0-9a-f]+)""#).unwrap());

impl<'a> Browser<'a> {
    pub(crate) fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookies: CookieJar::default(),
        }
    }

    pub(crate) fn remember(&mut self, response: &reqwest::Response) {
        self.cookies.remember(response);
    }

    pub(crate) async fn get(&mut self, path: &str) -> reqwest::Response {
        self.request(path, &[]).await
    }

    pub(crate) async fn request(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .app
            .client
            .get(self.app.url(path))
            .header(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8");
        if let Some(cookie) = self.cookies.header() {
            request = request.header(header::COOKIE, cookie);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        self.remember(&response);
        response
    }

    /// Loads a page and returns its HTML (asserting 200 and the HTML type).
    pub(crate) async fn page(&mut self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "GET {path}"
        );
        response.text().await.unwrap()
    }

    pub(crate) async fn token(&mut self) -> String {
        let html = self.page("/").await;
        TOKEN
            .captures(&html)
            .expect("the page has a form token")
            .get(1)
            .unwrap()
            .as_str()
            .to_string()
    }

    pub(crate) async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let body = serde_urlencoded::to_string(form).unwrap();
        let mut request = self
            .app
            .client
            .post(self.app.url(path))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "text/html")
            .body(body);
        if let Some(cookie) = self.cookies.header() {
            request = request.header(header::COOKIE, cookie);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        self.remember(&response);
        response
    }
}

/// The client must not follow redirects, so tests can see them.
pub(crate) async fn spawn() -> TestApp {
    let mut app = TestApp::spawn().await;
    app.client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    app
}

pub(crate) fn location(response: &reqwest::Response) -> String {
    response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string()
}

/// No element carries a handler or a script URL, and the only scripts are our own files.
pub(crate) fn assert_no_injected_markup(html: &str, page: &str) {
    static HANDLER: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)<[^>]*\son[a-z]+\s*=").unwrap());
    static SCRIPT_URL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"(?i)(href|src|action)\s*=\s*["']?\s*(javascript|data):"#).unwrap()
    });
    static SCRIPT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)<script\b[^>]*>").unwrap());
    static TAGS: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)<(iframe|object|embed|svg\s+onload|img)\b").unwrap());
    assert!(
        !HANDLER.is_match(html),
        "{page}: an event handler attribute"
    );
    assert!(!SCRIPT_URL.is_match(html), "{page}: a script URL");
    assert!(!TAGS.is_match(html), "{page}: an embedded element");
    for script in SCRIPT.find_iter(html) {
        assert!(
            script.as_str().starts_with("<script src=\"/static/"),
            "{page}: {}",
            script.as_str()
        );
    }
    assert!(!html.contains("<script>alert"), "{page}");
}

#[tokio::test]
async fn pages_show_what_the_store_holds_escaped() {
    if crate::storage::skipped_on_s3("it seeds artifact files in the data folder") {
        return;
    }
    let fakes = Fakes::start().await;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    std::fs::create_dir_all(dir.join("transcripts")).unwrap();
    std::fs::write(
        dir.join("transcripts/xss.txt"),
        "[Speaker <b>A</b>]: <script>alert(\"transcript\")</script>\n\n[Speaker B]: Fine & well.",
    )
    .unwrap();
    let legacy = json!([
        {
            "id": "xss",
            "url": "https://example.com/a.mp3?x=\"><script>alert(\"url\")</script>",
            "resolved_url": "javascript:alert(\"resolved\")",
            "meeting_date": "2025-09-25T20:05:39.000Z",
            "status": "error",
            "title": "<img src=x onerror=alert(\"title\")>Board",
            "summary": "# Notes\n\n<script>alert(\"summary\")</script>\n\n<img src=x onerror=alert(1)>\n\n[click](javascript:alert(1))\n\n<iframe src=\"https://evil.example\"></iframe>\n\n| A | B |\n|---|---|\n| <svg onload=alert(1)> | 2 |\n",
            "transcript_path": "/app/data/transcripts/xss.txt",
            "error": "<svg onload=alert(\"error\")> went wrong",
            "created_at": 1758830000000_i64,
            "updated_at": 1758831000000_i64,
            "logs": ["[2025-09-25T20:10:00.000Z] <script>alert(\"log\")</script>"],
            "checkpoint": { "step": "transcribe" }
        },
        {
            "id": "plain",
            "url": "javascript:alert(\"link\")",
            "status": "completed",
            "created_at": 1758000000000_i64,
            "updated_at": 1758000000000_i64,
            "logs": [],
            "checkpoint": { "step": "summarize" }
        }
    ]);
    std::fs::write(dir.join("jobs.json"), legacy.to_string()).unwrap();
    let mut config = test_config(dir, &fakes);
    config.assemblyai_api_key = None;
    let app = TestApp::start(config, fakes).await;
    let mut browser = Browser::new(&app);

    let home = browser.page("/").await;
    let job = browser.page("/jobs/xss").await;
    let panel = browser.page("/jobs/xss/panel").await;
    let list = browser.page("/partials/jobs").await;
    let other = browser.page("/jobs/plain").await;
    for (name, html) in [
        ("home", &home),
        ("job", &job),
        ("panel", &panel),
        ("list", &list),
        ("other", &other),
    ] {
        assert_no_injected_markup(html, name);
    }

    // What the store holds is there, as text.
    for html in [&home, &job, &list] {
        assert!(html.contains("&#60;img src=x onerror=alert(&#34;title&#34;)&#62;Board"));
        assert!(html.contains(
            "Meeting </span><time datetime=\"2025-09-25T20:05:39Z\" data-local=\"datetime\">Thu 25 Sep 2025, 20:05 UTC</time>"
        ));
        assert!(html.contains("Failed"), "status in words");
        assert!(html.contains("&#60;svg onload=alert(&#34;error&#34;)&#62; went wrong"));
    }
    assert!(home.contains("Untitled meeting"));
    assert!(job.contains("&#60;script&#62;alert(&#34;log&#34;)&#60;/script&#62;"));
    assert!(job.contains("https://example.com/a.mp3?x=&#34;&#62;&#60;script&#62;"));
    // The transcript: turns set apart, speaker names and words escaped.
    assert!(job.contains("<span class=\"speaker\">Speaker &#60;b&#62;A&#60;/b&#62;</span>"));
    assert!(job.contains("Fine &#38; well."));
    // The summary is rendered markdown, sanitised: the heading and table stay, the rest goes.
    let rendered = job
        .split_once("<div class=\"prose summary\">")
        .and_then(|(_, rest)| rest.split_once("</div>"))
        .expect("the rendered summary")
        .0;
    // Below the page's own headings.
    assert!(rendered.contains("<h3>Notes</h3>"), "{rendered}");
    assert!(rendered.contains("<table>"));
    assert!(!rendered.contains("alert"), "{rendered}");
    // The markdown itself is there to copy, as escaped text.
    assert!(job.contains("&#60;script&#62;alert(&#34;summary&#34;)&#60;/script&#62;"));
    // A failed job offers a retry from where it stopped, and says what went wrong.
    assert!(job.contains("Retry from summarize"));
    assert!(job.contains("This job stopped"));
    // A javascript: URL is shown as text, never as a link.
    assert!(other.contains("javascript:alert(&#34;link&#34;)"));
    assert!(!other.contains("href=\"javascript"));
}

#[tokio::test]
async fn pages_answer_json_when_asked() {
    let app = spawn().await;
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let id = job["id"].as_str().unwrap();
    app.wait_for_status(id, "completed").await;

    let list = app
        .client
        .get(app.url("/"))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    assert!(
        list.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let list: Value = list.json().await.unwrap();
    let api: Value = app.get("/api/jobs").await.json().await.unwrap();
    assert_eq!(list, api);

    let page: Value = app
        .client
        .get(app.url(&format!("/jobs/{id}?content=true")))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["id"], id);
    assert_eq!(page["status"], "completed");
    assert_eq!(page, app.job(id).await);

    let missing = app
        .client
        .get(app.url("/jobs/no-such-job"))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "job not found");
}

#[tokio::test]
async fn forms_without_a_valid_token_are_refused() {
    let app = spawn().await;
    let failed = app.create_job(&app.fakes.audio.url("page.html")).await;
    let id = failed["id"].as_str().unwrap().to_string();
    app.wait_for_status(&id, "error").await;
    let url = app.fakes.audio.url("meeting.mp3");

    let mut browser = Browser::new(&app);
    let token = browser.token().await;
    let forms = [
        "/jobs".to_string(),
        format!("/jobs/{id}/retry"),
        format!("/jobs/{id}/start-over"),
        format!("/jobs/{id}/resummarize"),
        format!("/jobs/{id}/delete"),
    ];
    for path in &forms {
        for bad in ["", "0000", &token[..token.len() - 1]] {
            let response = browser
                .post(path, &[("url", &url), ("csrf_token", bad)], &[])
                .await;
            assert_eq!(response.status(), 403, "{path} with {bad:?}");
            assert!(
                response.headers()[header::CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html")
            );
        }
        // No token field at all.
        let response = browser.post(path, &[("url", &url)], &[]).await;
        assert_eq!(response.status(), 403, "{path} without a token");
    }
    // A token from another session is no good either.
    let mut stranger = Browser::new(&app);
    let response = stranger
        .post("/jobs", &[("url", &url), ("csrf_token", &token)], &[])
        .await;
    assert_eq!(response.status(), 403);

    // Nothing happened.
    let jobs: Value = app.get("/api/jobs").await.json().await.unwrap();
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(app.job(&id).await["status"], "error");
}

/// Sessions live in the database through tower-sessions: the cookie is HttpOnly, SameSite=Lax
/// and Path=/ (Secure when a trusted proxy says the browser came over https); a page that only
/// reads an existing session's token writes nothing (no cookie sent again); a form loaded
/// before a restart is accepted after it, and its message is shown once.
#[tokio::test]
async fn a_session_is_written_once_and_survives_a_restart() {
    let app = spawn().await;
    let mut browser = Browser::new(&app);
    let first = browser.get("/").await;
    let cookie = first.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("focusflow.sid="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=604800"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "over plain http: {cookie}");
    let token = TOKEN.captures(&first.text().await.unwrap()).unwrap()[1].to_string();
    for _ in 0..3 {
        let again = browser.get("/").await;
        assert_eq!(
            again.headers().get(header::SET_COOKIE),
            None,
            "a page that only reads the token saves nothing"
        );
        let html = again.text().await.unwrap();
        assert_eq!(TOKEN.captures(&html).unwrap()[1], token);
    }
    let over_https = Browser::new(&app)
        .request("/", &[("x-forwarded-proto", "https")])
        .await;
    let secure = over_https.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(secure.ends_with("; Secure"), "{secure}");

    let session = browser.cookies.clone();
    let url = app.fakes.audio.url("meeting.mp3");
    let mut app = app.restart().await;
    app.client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut browser = Browser::new(&app);
    browser.cookies = session;
    let response = browser
        .post("/jobs", &[("csrf_token", &token), ("url", &url)], &[])
        .await;
    assert_eq!(response.status(), 303, "the form outlived the restart");
    let target = location(&response);
    // The message waits in the session; a cookie tells the next page to look for it.
    let marker = set_cookie(&response, "focusflow.flash=");
    for attribute in ["focusflow.flash=1", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(marker.contains(attribute), "{attribute} in {marker}");
    }
    let shown = browser.get(&target).await;
    let removed = set_cookie(&shown, "focusflow.flash=");
    assert!(removed.contains("Max-Age=0"), "{removed}");
    assert!(shown.text().await.unwrap().contains("Meeting added"));
    let again = browser.get(&target).await;
    assert_eq!(again.headers().get(header::SET_COOKIE), None);
    assert!(!again.text().await.unwrap().contains("Meeting added"));
    let id = target.strip_prefix("/jobs/").unwrap().to_string();
    app.wait_for_status(&id, "completed").await;

    // Over https (a trusted proxy says so) the marker is Secure like the session cookie.
    let mut secure = Browser::new(&app);
    let https = [("x-forwarded-proto", "https")];
    let page = secure.request("/", &https).await.text().await.unwrap();
    let token = TOKEN.captures(&page).unwrap()[1].to_string();
    let response = secure
        .post("/jobs", &[("csrf_token", &token), ("url", &url)], &https)
        .await;
    assert_eq!(response.status(), 303);
    let marker = set_cookie(&response, "focusflow.flash=");
    assert!(marker.ends_with("; Secure"), "{marker}");
}

/// The response's `Set-Cookie` line that starts with `prefix`.
fn set_cookie(response: &reqwest::Response, prefix: &str) -> String {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().to_string())
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} cookie in {:?}", response.headers()))
}

#[tokio::test]
async fn a_form_post_creates_a_job_and_redirects_with_a_message() {
    let app = spawn().await;
    let mut browser = Browser::new(&app);
    let token = browser.token().await;
    let url = app.fakes.audio.url("meeting.mp3");

    let response = browser
        .post(
            "/jobs",
            &[
                ("csrf_token", &token),
                ("url", &url),
                ("meeting_date", "2025-09-25T14:30"),
                ("return_to", "/"),
            ],
            &[],
        )
        .await;
    assert_eq!(response.status(), 303);
    let target = location(&response);
    let id = target
        .strip_prefix("/jobs/")
        .expect("to the new job")
        .to_string();
    let job = app.job(&id).await;
    assert_eq!(job["url"], url.as_str());
    assert_eq!(job["meeting_date"], "2025-09-25T14:30:00.000Z");

    // The page it leads to says so, once.
    let page = browser.page(&target).await;
    assert!(page.contains("Meeting added"), "{page}");
    let again = browser.page(&target).await;
    assert!(!again.contains("Meeting added"));
    app.wait_for_status(&id, "completed").await;

    // A bad URL and a bad date: the form comes back with the errors beside the fields.
    let response = browser
        .post(
            "/jobs",
            &[
                ("csrf_token", &token),
                ("url", "ftp://example.com/a.mp3"),
                ("meeting_date", "next tuesday"),
            ],
            &[],
        )
        .await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(html.contains("id=\"job-url-error\""), "{html}");
    assert!(html.contains("must start with http:// or https://"));
    assert!(html.contains("id=\"job-date-error\""));
    assert!(html.contains("aria-invalid=\"true\""));
    assert!(
        html.contains("value=\"ftp://example.com/a.mp3\""),
        "what was typed stays"
    );
    let response = browser
        .post("/jobs", &[("csrf_token", &token), ("url", "  ")], &[])
        .await;
    assert_eq!(response.status(), 422);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Paste a Plaud share link")
    );

    // With htmx: the form is swapped for an empty one and the list comes along out of band.
    let response = browser
        .post(
            "/jobs",
            &[("csrf_token", &token), ("url", &url), ("return_to", "/")],
            &[("hx-request", "true")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(
        html.trim_start().starts_with("<form id=\"add-job\""),
        "{html}"
    );
    assert!(html.contains("id=\"job-list\"") && html.contains("hx-swap-oob=\"true\""));
    assert!(html.contains("Meeting added"));
    let jobs: Value = app.get("/api/jobs").await.json().await.unwrap();
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 2);
    // htmx gets a 422 form alone when something is wrong.
    let response = browser
        .post(
            "/jobs",
            &[("csrf_token", &token), ("url", "nonsense")],
            &[("hx-request", "true")],
        )
        .await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(html.trim_start().starts_with("<form id=\"add-job\""));
    assert!(!html.contains("<html"));
}

#[tokio::test]
async fn job_actions_redirect_or_swap_in_place() {
    let app = spawn().await;
    // A slow summary, so a job can be caught while it is being summarised.
    app.fakes.llm.set(LlmBehaviour {
        slow: true,
        ..Default::default()
    });
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let id = job["id"].as_str().unwrap().to_string();
    app.wait_for_status(&id, "completed").await;
    let mut browser = Browser::new(&app);
    let token = browser.token().await;
    let back = format!("/jobs/{id}");

    // Re-summarize without JavaScript: back to the job, which says what happens.
    let response = browser
        .post(
            &format!("/jobs/{id}/resummarize"),
            &[("csrf_token", &token), ("return_to", &back)],
            &[],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), back);
    let page = browser.page(&back).await;
    assert!(page.contains("A new summary is being written"));

    // Retrying a job that is not finished is refused in words, on the page.
    let response = browser
        .post(
            &format!("/jobs/{id}/retry"),
            &[("csrf_token", &token), ("return_to", &back)],
            &[],
        )
        .await;
    assert_eq!(response.status(), 303);
    let page = browser.page(&back).await;
    assert!(page.contains("flash-error"), "{page}");
    let done = app
        .wait_for(&id, "the second summary", |job| {
            job["status"] == "completed"
                && job["summary"].as_str().unwrap_or("").contains("Version 2")
        })
        .await;
    assert_eq!(done["status"], "completed");

    // An open redirect is not possible.
    let response = browser
        .post(
            &format!("/jobs/{id}/start-over"),
            &[
                ("csrf_token", &token),
                ("return_to", "https://evil.example/"),
            ],
            &[],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/");
    app.wait_for_status(&id, "completed").await;

    // With htmx: the panel and the list come back out of band.
    let response = browser
        .post(
            &format!("/jobs/{id}/resummarize"),
            &[("csrf_token", &token), ("return_to", &back)],
            &[("hx-request", "true")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("<div id=\"job-live\""), "{html}");
    assert!(html.contains("id=\"job-list\""));
    assert!(html.contains("id=\"flash\""));
    // The live part, the details, the list and the message; not the recording.
    assert_eq!(html.matches("hx-swap-oob=\"true\"").count(), 4, "{html}");
    assert!(!html.contains("id=\"job-media\""));
    app.wait_for_status(&id, "completed").await;

    // Deleting the open job with htmx: the panel becomes the welcome, the address becomes /.
    let response = browser
        .post(
            &format!("/jobs/{id}/delete"),
            &[("csrf_token", &token), ("return_to", &back)],
            &[("hx-request", "true")],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["hx-replace-url"], "/");
    let html = response.text().await.unwrap();
    assert!(html.contains("Deleted “Quarterly Planning Sync”"), "{html}");
    assert_eq!(app.get(&format!("/api/jobs/{id}")).await.status(), 404);
    // The panel of a deleted job says so and stops polling.
    let gone = browser.page(&format!("/jobs/{id}/panel")).await;
    assert!(gone.contains("This meeting was deleted"));
    assert!(!gone.contains("hx-trigger"));
}

#[tokio::test]
async fn polling_runs_while_a_job_works_and_stops_when_it_is_done() {
    let app = spawn().await;
    app.fakes.llm.set(LlmBehaviour {
        slow: true,
        ..Default::default()
    });
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let id = job["id"].as_str().unwrap().to_string();
    let mut browser = Browser::new(&app);

    // While the summary streams, the panel polls and shows what has been written so far.
    app.wait_for(&id, "part of the summary", |job| {
        job["status"] == "summarizing" && job["summary"].as_str().is_some_and(|s| !s.is_empty())
    })
    .await;
    let panel = browser.page(&format!("/jobs/{id}/panel")).await;
    assert!(panel.contains("hx-trigger=\"every 2s\""), "{panel}");
    assert!(panel.contains("is-streaming"));
    assert!(panel.contains("writing…"));
    // The poll names the recording and transcript the browser has, so they are not resent.
    let media = Regex::new(r#"hx-get="/jobs/[^"/]+/panel\?media=([a-z0-9]+)""#)
        .unwrap()
        .captures(&panel)
        .expect("the poll URL")[1]
        .to_string();
    assert!(media.starts_with("a4096t"), "{media}");
    // On the job page only the panel polls (it carries the list); on the home page, the list.
    let page = browser.page(&format!("/jobs/{id}")).await;
    assert_eq!(page.matches("hx-trigger=\"every 2s\"").count(), 1, "{page}");
    let home = browser.page("/").await;
    assert_eq!(home.matches("hx-trigger=\"every 2s\"").count(), 1);
    assert!(home.contains("hx-get=\"/partials/jobs\""));

    app.wait_for_status(&id, "completed").await;
    for path in [
        format!("/jobs/{id}/panel"),
        format!("/jobs/{id}/panel?media={media}"),
        "/partials/jobs".to_string(),
        format!("/partials/jobs?open={id}"),
        format!("/jobs/{id}"),
        "/".to_string(),
    ] {
        let html = browser.page(&path).await;
        // (The search form's trigger is typing, not time.)
        assert!(!html.contains("every 2s"), "{path} still polls: {html}");
    }
    let panel = browser.page(&format!("/jobs/{id}/panel")).await;
    assert!(panel.contains("<table>") && panel.contains("Ship the beta"));
    // A finished job offers its exports.
    for format in ["md", "txt", "srt", "vtt", "audio", "json"] {
        let href = format!("href=\"/api/jobs/{id}/export?format={format}\"");
        assert!(panel.contains(&href), "{format}: {panel}");
        let export = app
            .get(&format!("/api/jobs/{id}/export?format={format}"))
            .await;
        assert_eq!(export.status(), 200, "{format}");
    }
    assert!(!panel.contains("is-streaming"));
    // A browser that has the recording and transcript is not sent them again: a poll never
    // interrupts playback or closes the transcript.
    let unchanged = browser
        .page(&format!("/jobs/{id}/panel?media={media}"))
        .await;
    assert!(!unchanged.contains("id=\"job-media\""));
    assert!(!unchanged.contains("I will ship the beta by Friday"));
    assert!(panel.contains("id=\"job-media\" class=\"job-region\" hx-swap-oob=\"true\""));
    assert!(panel.contains("I will ship the beta by Friday"));
}

#[tokio::test]
async fn the_recording_is_served_with_its_type_and_seeks() {
    let app = spawn().await;
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let id = job["id"].as_str().unwrap().to_string();
    app.wait_for_status(&id, "completed").await;

    let response = app
        .client
        .get(app.url(&format!("/jobs/{id}/audio")))
        .header(header::RANGE, "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "audio/mpeg");
    assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes 0-99/4096");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes.len(), 100);
    assert_eq!(&bytes[..], &fakes::fake_mp3(4096)[..100]);

    let whole = app.get(&format!("/jobs/{id}/audio")).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()[header::ACCEPT_RANGES], "bytes");
    assert_eq!(whole.bytes().await.unwrap().len(), 4096);

    let page = Browser::new(&app).page(&format!("/jobs/{id}")).await;
    assert!(page.contains(&format!(
        "<source src=\"/jobs/{id}/audio\" type=\"audio/mpeg\">"
    )));

    let missing = app.get("/jobs/no-such-job/audio").await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn static_files_are_typed_and_cached() {
    let app = spawn().await;
    let home = Browser::new(&app).page("/").await;
    let href = Regex::new(r#"href="(/static/app\.css\?v=[0-9a-f]{16})""#)
        .unwrap()
        .captures(&home)
        .expect("the stylesheet is linked with its version")[1]
        .to_string();
    let css = app.get(&href).await;
    assert_eq!(css.status(), 200);
    assert_eq!(
        css.headers()[header::CONTENT_TYPE],
        "text/css; charset=utf-8"
    );
    assert_eq!(
        css.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    let etag = css.headers()[header::ETAG].to_str().unwrap().to_string();
    let revalidated = app
        .client
        .get(app.url("/static/app.css"))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    let unversioned = app.get("/static/app.css").await;
    assert!(
        unversioned.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("max-age=300")
    );

    let script = Regex::new(r#"src="(/static/vendor/htmx/htmx\.min\.js\?v=[0-9a-f]{16})""#)
        .unwrap()
        .captures(&home)
        .expect("htmx is linked")[1]
        .to_string();
    let htmx = app.get(&script).await;
    assert_eq!(htmx.status(), 200);
    assert!(
        htmx.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    assert!(htmx.text().await.unwrap().contains("htmx"));
    for (path, kind) in [
        ("/static/app.js", "javascript"),
        ("/static/favicon.svg", "image/svg+xml"),
        ("/static/vendor/htmx/LICENSE", "text/plain"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .contains(kind),
            "{path}"
        );
        assert_eq!(
            response.headers()[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff"
        );
    }
    assert_eq!(app.get("/static/nope.js").await.status(), 404);
    assert_eq!(app.get("/static/../Cargo.toml").await.status(), 404);
}

#[tokio::test]
async fn an_unknown_job_gets_a_friendly_page() {
    let app = spawn().await;
    let mut browser = Browser::new(&app);
    for path in ["/jobs/no-such-job", "/jobs/bad.id", "/no/such/page"] {
        let response = browser.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = response.text().await.unwrap();
        assert!(html.contains("Back to your meetings"), "{html}");
        assert!(html.contains("/static/app.css"), "styled like the rest");
        if path.starts_with("/jobs/") {
            assert!(html.contains("We could not find that meeting"), "{html}");
        }
    }
}

#[tokio::test]
async fn the_home_page_welcomes_a_new_user_and_names_missing_services() {
    let app = TestApp::spawn_with(|config| {
        config.assemblyai_api_key = None;
    })
    .await;
    let home = Browser::new(&app).page("/").await;
    assert!(home.contains("No meetings yet"));
    assert!(home.contains("Plaud share link"));
    assert!(home.contains("Transcription</strong> (AssemblyAI): not configured"));
    assert!(
        home.contains("Summaries</strong> (LLM, gpt-4): configured"),
        "{home}"
    );
    assert!(home.contains("An operator turns it on with an AssemblyAI key"));
    // Labels for every field, and the htmx settings the CSP needs.
    assert!(home.contains("<label for=\"job-url\" class=\"add-label\">"));
    assert!(home.contains("<label for=\"job-date\">"));
    assert!(
        home.contains("&quot;includeIndicatorStyles&quot;:false")
            || home.contains("\"includeIndicatorStyles\":false")
    );
    assert!(!home.contains("style="));
}

#[tokio::test]
async fn the_shared_list_carries_each_persons_own_token_and_follows_every_change() {
    let app = spawn().await;
    // A job that failed: its card has a retry form, which needs the person's token.
    let failed = app.create_job(&app.fakes.audio.url("page.html")).await;
    let failed_id = failed["id"].as_str().unwrap().to_string();
    app.wait_for_status(&failed_id, "error").await;
    let retry_form = format!("action=\"/jobs/{failed_id}/retry\"");

    // Two people see the same list, each with their own token in it (the cards are rendered
    // once and shared; the token is put in per page).
    let mut ana = Browser::new(&app);
    let mut ben = Browser::new(&app);
    let ana_page = ana.page("/").await;
    let ben_page = ben.page("/").await;
    let tokens_in = |html: &str| -> Vec<String> {
        TOKEN
            .captures_iter(html)
            .map(|c| c[1].to_string())
            .collect()
    };
    let (ana_tokens, ben_tokens) = (tokens_in(&ana_page), tokens_in(&ben_page));
    assert!(ana_page.contains(&retry_form), "{ana_page}");
    assert!(ana_tokens.len() >= 2, "the add form's and the retry form's");
    assert!(
        ana_tokens.iter().all(|t| *t == ana_tokens[0]),
        "{ana_tokens:?}"
    );
    assert!(
        ben_tokens.iter().all(|t| *t == ben_tokens[0]),
        "{ben_tokens:?}"
    );
    assert_ne!(ana_tokens[0], ben_tokens[0]);
    assert!(!ana_page.contains("token-slot-"), "no stand-in is left");
    // The list partial that polls is the same list with the same token.
    let partial = ana.page("/partials/jobs").await;
    assert!(tokens_in(&partial).iter().all(|t| *t == ana_tokens[0]));

    // Ben's retry form works with his token.
    let response = ben
        .post(
            &format!("/jobs/{failed_id}/retry"),
            &[("csrf_token", &ben_tokens[0]), ("return_to", "/")],
            &[],
        )
        .await;
    assert_eq!(response.status(), 303);

    // Every change shows at once in the list and in the API's pages, however it was made.
    let response = app
        .client
        .patch(app.url(&format!("/api/jobs/{failed_id}")))
        .json(&json!({ "title": "Renamed & <b>bold</b>" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let page = ana.page("/").await;
    assert!(
        page.contains("Renamed &#38; &#60;b&#62;bold&#60;/b&#62;"),
        "{page}"
    );
    let listed: Value = app.get("/api/jobs?limit=5").await.json().await.unwrap();
    assert_eq!(listed["jobs"][0]["title"], "Renamed & <b>bold</b>");
    let second = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let second_id = second["id"].as_str().unwrap().to_string();
    app.wait_for_status(&second_id, "completed").await;
    assert!(
        ana.page("/")
            .await
            .contains(&format!("job-card-{second_id}"))
    );
    let listed: Value = app.get("/api/jobs?limit=5").await.json().await.unwrap();
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 2);
    assert!(
        listed["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|job| job["id"] == second_id.as_str() && job["status"] == "completed"),
        "{listed:#}"
    );
    app.client
        .delete(app.url(&format!("/api/jobs/{second_id}")))
        .send()
        .await
        .unwrap();
    assert!(
        !ana.page("/")
            .await
            .contains(&format!("job-card-{second_id}"))
    );
    let listed: Value = app.get("/api/jobs?limit=5").await.json().await.unwrap();
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_poll_gets_the_running_cards_alone_unless_the_list_changed() {
    let app = spawn().await;
    app.fakes.assemblyai.set(crate::fakes::AssemblyBehaviour {
        polls_before_done: 1_000_000,
        ..Default::default()
    });
    let running = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let running = running["id"].as_str().unwrap().to_string();
    app.wait_for_status(&running, "transcribing").await;
    let mut browser = Browser::new(&app);
    let home = browser.page("/").await;
    assert!(
        home.contains(&format!(
            r#"<input type="hidden" id="list-running" name="running" value="{running}">"#
        )),
        "{home}"
    );
    let app = &app;
    let poll = |running: String| async move {
        app.client
            .get(app.url(&format!("/partials/jobs?running={running}")))
            .header("hx-request", "true")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // The browser shows this running job: its card and the poller come back, nothing else.
    let answer = poll(running.clone()).await;
    assert!(
        answer.contains(&format!(
            r#"<li hx-swap-oob="true" id="job-card-{running}""#
        )),
        "{answer}"
    );
    assert!(answer.contains(r#"<div id="list-poll" hidden hx-swap-oob="true""#));
    assert!(!answer.contains(r#"id="job-list""#), "{answer}");
    // A browser that does not show it (the job is new to it): the whole list.
    let answer = poll(String::new()).await;
    assert!(
        answer.contains(r#"<section id="job-list" class="job-list" aria-labelledby="job-list-title" hx-swap-oob="true">"#),
        "{answer}"
    );
    app.fakes
        .assemblyai
        .set(crate::fakes::AssemblyBehaviour::default());
    app.wait_for_status(&running, "completed").await;
    // Finished: its card once more, and a poller that polls no more.
    let answer = poll(running.clone()).await;
    assert!(answer.contains("Completed"), "{answer}");
    assert!(!answer.contains("hx-trigger"), "{answer}");
}
