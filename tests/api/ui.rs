//! The UI's newer forms and fragments over HTTP: the add form with a file, pasted text and a
//! template; live search with snippets, filters and pages; inline edit of the title and date;
//! speaker names; and the start-up cleanup of partial transfers.

use axum::http::header;
use regex::Regex;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::fakes;
use crate::helpers::{Fakes, TestApp, test_config};
use crate::pages::{Browser, assert_no_injected_markup, location, spawn};

const HTMX: (&str, &str) = ("hx-request", "true");

impl Browser<'_> {
    /// Sends the add form as the page does: multipart, the token first.
    async fn post_multipart(&mut self, form: Form, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self
            .app
            .client
            .post(self.app.url("/jobs"))
            .header(header::ACCEPT, "text/html")
            .multipart(form);
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

/// The add form's fields in the page's order, with `extra` fields and then `file`.
fn add_form(token: &str, extra: &[(&str, &str)], file: Option<Part>) -> Form {
    let mut form = Form::new()
        .text("csrf_token", token.to_string())
        .text("return_to", "/");
    for (name, value) in extra {
        form = form.text(name.to_string(), value.to_string());
    }
    match file {
        Some(part) => form.part("file", part),
        // A browser sends an empty, nameless file part when nothing was chosen.
        None => form.part(
            "file",
            Part::bytes(Vec::new())
                .file_name("")
                .mime_str("application/octet-stream")
                .unwrap(),
        ),
    }
}

fn mp3(name: &str, size: usize) -> Part {
    Part::bytes(fakes::fake_mp3(size))
        .file_name(name.to_string())
        .mime_str("audio/mpeg")
        .unwrap()
}

fn job_id(location: &str) -> String {
    location
        .strip_prefix("/jobs/")
        .expect("a job page")
        .to_string()
}

#[tokio::test]
async fn the_add_form_uploads_a_recording_and_lists_the_templates() {
    let app = spawn().await;
    let mut browser = Browser::new(&app);
    let home = browser.page("/").await;
    // The form is multipart (a file can go without JavaScript) and offers every template,
    // the default chosen, from the same folder as GET /api/templates.
    assert!(home.contains(r#"enctype="multipart/form-data""#), "{home}");
    assert!(home.contains(r#"<input id="job-file" class="file-input" name="file" type="file""#));
    let templates: Value = app.get("/api/templates").await.json().await.unwrap();
    let names: Vec<&str> = templates["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.len() >= 3, "{names:?}");
    let options = Regex::new(r#"<option value="([a-z_]+)"( selected)?>"#).unwrap();
    let select = &home[home
        .find(r#"<select id="job-template""#)
        .expect("a template select")..];
    let select = &select[..select.find("</select>").unwrap()];
    let listed: Vec<(String, bool)> = options
        .captures_iter(select)
        .map(|c| (c[1].to_string(), c.get(2).is_some()))
        .collect();
    assert_eq!(
        listed
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>(),
        names
    );
    assert_eq!(
        listed
            .iter()
            .filter(|(_, selected)| *selected)
            .collect::<Vec<_>>(),
        vec![&("meeting_summary".to_string(), true)]
    );
    assert!(select.contains(">One on one</option>"), "{select}");
    assert!(
        !select.contains(r#"<option value="""#),
        "the default is listed: {select}"
    );

    // Without JavaScript: the file, a date and a template; then the job's page.
    let token = browser.token().await;
    let response = browser
        .post_multipart(
            add_form(
                &token,
                &[
                    ("url", ""),
                    ("meeting_date", "2025-09-25T14:30"),
                    ("template", "one_on_one"),
                ],
                Some(mp3("standup.mp3", 40_000)),
            ),
            &[],
        )
        .await;
    assert_eq!(response.status(), 303);
    let id = job_id(&location(&response));
    let page = browser.page(&format!("/jobs/{id}")).await;
    assert!(page.contains("Uploaded “standup.mp3”"), "{page}");
    let job = app.wait_for_status(&id, "completed").await;
    assert_eq!(job["url"], "upload:standup.mp3");
    assert_eq!(job["template"], "one_on_one");
    assert_eq!(job["meeting_date"], "2025-09-25T14:30:00.000Z");

    // With htmx (the page's upload script): the form again, the list with the job, the message.
    let response = browser
        .post_multipart(
            add_form(&token, &[], Some(mp3("second.mp3", 20_000))),
            &[HTMX],
        )
        .await;
    assert_eq!(response.status(), 200);
    let new_id = response.headers()["x-focusflow-job"]
        .to_str()
        .unwrap()
        .to_string();
    let html = response.text().await.unwrap();
    assert!(html.starts_with("<form id=\"add-job\"") || html.contains("<form id=\"add-job\""));
    assert!(
        html.contains(&format!("id=\"job-card-{new_id}\"")),
        "{html}"
    );
    assert!(html.contains("Uploaded “second.mp3”"));
    let job = app.job(&new_id).await;
    // The default template is no choice: the job follows PROMPT_PATH.
    assert!(job.get("template").is_none_or(Value::is_null), "{job}");
}

#[tokio::test]
async fn the_add_form_still_takes_links_and_pasted_transcripts() {
    let app = spawn().await;
    let mut browser = Browser::new(&app);
    let token = browser.token().await;

    let response = browser
        .post_multipart(
            add_form(
                &token,
                &[("url", &app.fakes.audio.url("meeting.mp3"))],
                None,
            ),
            &[],
        )
        .await;
    assert_eq!(response.status(), 303);
    let job = app.job(&job_id(&location(&response))).await;
    assert_eq!(job["url"], app.fakes.audio.url("meeting.mp3"));

    let transcript = "Ana: Shall we look at the budget?\nBen: Yes, it is tight.";
    let response = browser
        .post_multipart(add_form(&token, &[("transcript", transcript)], None), &[])
        .await;
    assert_eq!(response.status(), 303);
    let id = job_id(&location(&response));
    let job = app.wait_for_status(&id, "completed").await;
    assert_eq!(job["url"], "transcript:pasted");
    assert!(
        job["transcript"].as_str().unwrap().contains("[Ana]:"),
        "{job}"
    );

    // The URL-encoded form of older pages works too.
    let response = browser
        .post(
            "/jobs",
            &[
                ("csrf_token", token.as_str()),
                ("transcript", transcript),
                ("return_to", "/"),
            ],
            &[],
        )
        .await;
    assert_eq!(response.status(), 303);

    // Nothing at all, or two sources at once: said beside the fields, nothing created.
    let before = app.get("/api/jobs").await.json::<Value>().await.unwrap()["jobs"]
        .as_array()
        .unwrap()
        .len();
    let response = browser
        .post_multipart(add_form(&token, &[("url", "")], None), &[HTMX])
        .await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("choose a file, or paste a transcript"),
        "{html}"
    );
    let response = browser
        .post_multipart(
            add_form(
                &token,
                &[("url", &app.fakes.audio.url("meeting.mp3"))],
                Some(mp3("x.mp3", 1000)),
            ),
            &[HTMX],
        )
        .await;
    assert_eq!(response.status(), 422);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Leave the link empty")
    );
    let response = browser
        .post_multipart(
            add_form(&token, &[("template", "../secrets")], None),
            &[HTMX],
        )
        .await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(html.contains("id=\"job-template-error\""), "{html}");
    let after = app.get("/api/jobs").await.json::<Value>().await.unwrap()["jobs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after);
    assert!(
        app.files_in("files")
            .iter()
            .all(|name| !name.starts_with('.'))
    );
}

#[tokio::test]
async fn uploads_need_the_token_before_the_file_and_leave_nothing_when_refused() {
    let app = TestApp::spawn_with(|config| config.max_download_bytes = 50_000).await;
    let mut browser = Browser::new(&app);
    let token = browser.token().await;
    let audio_files = || {
        app.files_in("files")
            .into_iter()
            .filter(|name| name != "." && name != "..")
            .collect::<Vec<_>>()
    };

    // No token, a wrong one, or the token after the file: refused before anything is kept.
    let no_token = Form::new().part("file", mp3("a.mp3", 10_000));
    let wrong = Form::new()
        .text("csrf_token", "0".repeat(64))
        .part("file", mp3("a.mp3", 10_000));
    let late = Form::new()
        .part("file", mp3("a.mp3", 10_000))
        .text("csrf_token", token.clone());
    for form in [no_token, wrong, late] {
        let response = browser.post_multipart(form, &[]).await;
        assert_eq!(response.status(), 403);
        assert!(response.text().await.unwrap().contains("expired"));
    }
    // Another site's form is refused whatever it carries.
    let response = browser
        .post_multipart(
            add_form(&token, &[], Some(mp3("a.mp3", 10_000))),
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(response.status(), 403);

    // Too large and not audio: the reason beside the file field.
    let response = browser
        .post_multipart(
            add_form(&token, &[], Some(mp3("long.mp3", 60_000))),
            &[HTMX],
        )
        .await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(html.contains("id=\"job-file-error\""), "{html}");
    assert!(html.contains("larger than the largest upload"), "{html}");
    assert!(html.contains(r#"name="return_to" value="/""#), "{html}");
    // Sent from a job's page, the form that comes back keeps that page as its return.
    let job_page = "/jobs/00000000-0000-4000-8000-000000000001";
    let current = app.url(job_page);
    let response = browser
        .post_multipart(
            add_form(&token, &[], Some(mp3("long.mp3", 60_000))),
            &[HTMX, ("hx-current-url", current.as_str())],
        )
        .await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(
        html.contains(&format!(r#"name="return_to" value="{job_page}""#)),
        "{html}"
    );
    let pdf = Part::bytes(b"%PDF-1.4".to_vec())
        .file_name("minutes.pdf")
        .mime_str("application/pdf")
        .unwrap();
    let response = browser
        .post_multipart(add_form(&token, &[], Some(pdf)), &[])
        .await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(html.contains("is not audio or video"), "{html}");
    assert!(
        html.contains("<!doctype html>"),
        "a whole page without htmx"
    );
    // A form that repeats a field without end is cut off, not kept in memory: before the
    // token (which would refuse it only at its end) and after it.
    let mut flood = Form::new();
    for _ in 0..200 {
        flood = flood.text("url", "x".repeat(8000));
    }
    let response = browser.post_multipart(flood, &[]).await;
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("more than 64 parts"), "said why: {html}");
    let mut flood = add_form(&token, &[], None);
    for _ in 0..100 {
        flood = flood.text("return_to", "/");
    }
    // With a valid token, the form comes back with the reason (as other refusals do).
    let response = browser.post_multipart(flood, &[]).await;
    assert_eq!(response.status(), 422);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("more than 64 parts")
    );

    assert_eq!(audio_files(), Vec::<String>::new());
    let jobs: Value = app.get("/api/jobs").await.json().await.unwrap();
    assert_eq!(jobs["jobs"], json!([]));
}

/// 120 finished meetings an hour apart, one with hostile text, imported as the old app's file.
async fn archive_app() -> TestApp {
    let fakes = Fakes::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut jobs: Vec<Value> = (0..120)
        .map(|n| {
            json!({
                "id": format!("m{n:03}"),
                "url": "https://example.com/a.mp3",
                "meeting_date": format!("2025-03-{:02}T{:02}:00:00.000Z", 1 + n / 24, n % 24),
                "status": if n % 10 == 0 { "error" } else { "completed" },
                "title": format!("Weekly standup {n}"),
                "summary": format!("Notes of standup number {n}."),
                "created_at": 1_740_000_000_000_i64 + n,
                "updated_at": 1_740_000_000_000_i64 + n,
                "logs": [],
                "checkpoint": { "step": "summarize" }
            })
        })
        .collect();
    jobs.push(json!({
        "id": "hostile",
        "url": "https://example.com/b.mp3",
        "meeting_date": "2025-02-01T10:00:00.000Z",
        "status": "completed",
        "title": "Board <b>meeting</b>",
        "summary": "We argued about the <script>alert('x')</script> zeppelin budget & more.",
        "created_at": 1_740_000_000_000_i64,
        "updated_at": 1_740_000_000_000_i64,
        "logs": [],
        "checkpoint": { "step": "summarize" }
    }));
    std::fs::write(
        data.path().join("jobs.json"),
        serde_json::to_string(&jobs).unwrap(),
    )
    .unwrap();
    let config = test_config(data.path(), &fakes);
    let mut app = TestApp::start(config, fakes).await;
    app.keep_dir(data);
    app.client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    app
}

fn card_ids(html: &str) -> Vec<String> {
    Regex::new(r#"id="job-card-([a-z0-9-]+)""#)
        .unwrap()
        .captures_iter(html)
        .map(|c| c[1].to_string())
        .collect()
}

fn attribute(html: &str, pattern: &str) -> String {
    Regex::new(pattern).unwrap().captures(html).expect(pattern)[1].replace("&#38;", "&")
}

#[tokio::test]
async fn live_search_finds_escapes_filters_and_pages() {
    let app = archive_app().await;
    let mut browser = Browser::new(&app);

    // The list page: 100 meetings, newest first, and a keyset link to older ones.
    let home = browser.page("/").await;
    assert!(home.contains(r#"id="search-form""#));
    assert!(home.contains(r#"hx-trigger="keyup changed delay:300ms from:#search-q"#));
    let first = card_ids(&home);
    assert_eq!(first.len(), 100);
    assert_eq!(first[0], "m119");
    let older = attribute(
        &home,
        r#"class="button button-small pager-older" href="([^"]+)""#,
    );
    assert!(older.starts_with("/?cursor="), "{older}");
    let page_two = browser.page(&older).await;
    let second = card_ids(&page_two);
    assert_eq!(second.len(), 21, "{second:?}");
    assert!(second.iter().all(|id| !first.contains(id)));
    assert_eq!(second.last().unwrap(), "hostile");
    assert!(page_two.contains(">Newest</span>"));
    assert!(!page_two.contains("pager-older"));

    // Search: the fragment htmx swaps in, with the snippet escaped and the match marked.
    let response = browser
        .request(
            "/partials/jobs?q=zeppelin",
            &[HTMX, ("hx-trigger", "search-form")],
        )
        .await;
    assert_eq!(response.status(), 200);
    // Typing puts the page's address in the history (reload and back work)…
    assert_eq!(response.headers()["hx-push-url"], "/?q=zeppelin");
    let html = response.text().await.unwrap();
    assert_eq!(card_ids(&html), ["hostile"]);
    let snippet = attribute(&html, r#"(?s)<span class="job-snippet">(.*?)</span>"#);
    assert!(snippet.contains("<mark>zeppelin</mark>"), "{snippet}");
    assert!(snippet.contains("&lt;script&gt;"), "{snippet}");
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(html.contains("Board &#60;b&#62;meeting&#60;/b&#62;"));
    assert_no_injected_markup(&html, "search results");
    // …a poll of the same list does not.
    let response = browser.request("/partials/jobs?q=zeppelin", &[HTMX]).await;
    assert!(response.headers().get("hx-push-url").is_none());
    // The page itself shows the same results without JavaScript.
    let page = browser.page("/?q=zeppelin").await;
    assert_eq!(card_ids(&page), ["hostile"]);
    assert!(page.contains(r#"value="zeppelin""#));
    assert!(page.contains("Clear search"));
    // Marked words in a title cannot become markup either: search for a tag's name.
    let html = browser.page("/partials/jobs?q=meeting").await;
    assert!(!html.contains("<b>"), "{html}");

    // Filters: status and meeting-date range, alone and with words.
    let failed = card_ids(&browser.page("/partials/jobs?status=error").await);
    assert_eq!(failed.len(), 12);
    assert!(
        failed
            .iter()
            .all(|id| id[1..].parse::<usize>().unwrap() % 10 == 0)
    );
    let day = card_ids(
        &browser
            .page("/partials/jobs?from=2025-03-02&to=2025-03-02")
            .await,
    );
    assert_eq!(day.len(), 24, "{day:?}");
    assert!(day.contains(&"m024".to_string()) && day.contains(&"m047".to_string()));
    let both = card_ids(
        &browser
            .page("/partials/jobs?q=standup&status=error&from=2025-03-02&to=2025-03-03")
            .await,
    );
    assert_eq!(both, ["m070", "m060", "m050", "m040", "m030"]);
    // A search matching everything pages by offset.
    let html = browser.page("/?q=standup").await;
    assert_eq!(card_ids(&html).len(), 100);
    let more = attribute(
        &html,
        r#"class="button button-small pager-older" href="([^"]+)""#,
    );
    assert_eq!(more, "/?q=standup&offset=100");
    assert_eq!(card_ids(&browser.page(&more).await).len(), 20);
    // No match, and a filter that makes no sense: said in words, never an error page.
    let none = browser.page("/?q=nothing-like-this").await;
    assert!(
        none.contains("No meetings match “nothing-like-this”"),
        "{none}"
    );
    let bad = browser.page("/?from=yesterday").await;
    assert!(bad.contains("class=\"list-problem\""), "{bad}");
    assert!(bad.contains("is not a date"));
    assert_eq!(card_ids(&bad).len(), 100);

    // A job opened from the results keeps them beside it, and its panel's answers (which
    // carry the list) follow the page's address that htmx names.
    let page = browser.page("/jobs/hostile?q=zeppelin").await;
    assert_eq!(card_ids(&page), ["hostile"]);
    let current = app.url("/jobs/hostile?q=zeppelin");
    let panel = browser
        .request(
            "/jobs/hostile/panel",
            &[HTMX, ("hx-current-url", current.as_str())],
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(card_ids(&panel), ["hostile"]);
    let panel = browser.page("/jobs/hostile/panel").await;
    assert_eq!(card_ids(&panel).len(), 100);
}

#[tokio::test]
async fn the_title_and_date_are_edited_in_place_with_errors_beside_the_fields() {
    let app = archive_app().await;
    let mut browser = Browser::new(&app);
    let token = browser.token().await;

    // Edit swaps the heading for a form filled in with what the job has.
    let page = browser.page("/jobs/m005").await;
    assert!(page.contains(r#"hx-get="/jobs/m005/edit""#), "{page}");
    let form = browser.request("/jobs/m005/edit", &[HTMX]).await;
    assert_eq!(form.status(), 200);
    let form = form.text().await.unwrap();
    assert!(form.starts_with("<div id=\"job-heading\""), "{form}");
    assert!(form.contains(r#"value="Weekly standup 5""#));
    assert!(form.contains(r#"value="2025-03-01T05:00""#));
    // Without JavaScript the Edit link opens the page with the form.
    let page = browser.page("/jobs/m005/edit").await;
    assert!(page.contains("<!doctype html>") && page.contains(r#"id="edit-title""#));
    // Cancel swaps the heading back.
    let heading = browser.request("/jobs/m005/heading", &[HTMX]).await;
    assert!(
        heading
            .text()
            .await
            .unwrap()
            .contains(">Weekly standup 5</h1>")
    );

    // Errors are shown in the form (422), nothing is saved.
    let long = "x".repeat(201);
    for (title, date, error) in [
        (
            long.as_str(),
            "",
            "The title is longer than 200 characters.",
        ),
        ("Fine", "next tuesday", "not a date FocusFlow understands"),
    ] {
        let response = browser
            .post(
                "/jobs/m005/edit",
                &[
                    ("csrf_token", token.as_str()),
                    ("title", title),
                    ("meeting_date", date),
                ],
                &[HTMX],
            )
            .await;
        assert_eq!(response.status(), 422);
        let html = response.text().await.unwrap();
        assert!(html.contains(error), "{html}");
        assert!(html.contains("aria-invalid=\"true\""));
        assert!(
            html.contains(&format!("value=\"{title}\"")),
            "what was typed stays"
        );
    }
    assert_eq!(app.job("m005").await["title"], "Weekly standup 5");
    // Without the token: refused.
    let response = browser
        .post("/jobs/m005/edit", &[("title", "Forged")], &[HTMX])
        .await;
    assert_eq!(response.status(), 403);

    // Saved: the heading comes back with the new title; the list follows out of band.
    let response = browser
        .post(
            "/jobs/m005/edit",
            &[
                ("csrf_token", token.as_str()),
                ("title", "  Budget <review>  "),
                ("meeting_date", "2024-12-31T09:15"),
                ("return_to", "/jobs/m005"),
            ],
            &[HTMX],
        )
        .await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.starts_with("<div id=\"job-heading\""), "{html}");
    assert!(html.contains(">Budget &#60;review&#62;</h1>"), "{html}");
    assert!(html.contains("Tue 31 Dec 2024, 09:15 UTC"));
    assert!(html.contains(
        r#"id="job-list" class="job-list" aria-labelledby="job-list-title" hx-swap-oob="true""#
    ));
    let job = app.job("m005").await;
    assert_eq!(job["title"], "Budget <review>");
    assert_eq!(job["meeting_date"], "2024-12-31T09:15:00.000Z");
    // Searchable under its new title.
    assert_eq!(
        card_ids(&browser.page("/partials/jobs?q=review").await),
        ["m005"]
    );

    // A date the form shows to the minute stays as stored when only the title changes.
    let response = app
        .client
        .patch(app.url("/api/jobs/m005"))
        .json(&json!({ "meetingDate": "2024-12-31T09:15:42.250Z" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = browser
        .post(
            "/jobs/m005/edit",
            &[
                ("csrf_token", token.as_str()),
                ("title", "Budget review"),
                ("meeting_date", "2024-12-31T09:15"),
            ],
            &[HTMX],
        )
        .await;
    assert_eq!(response.status(), 200);
    let job = app.job("m005").await;
    assert_eq!(job["title"], "Budget review");
    assert_eq!(job["meeting_date"], "2024-12-31T09:15:42.250Z");

    // Without JavaScript: a redirect to the job and a message there. Empty fields clear.
    let response = browser
        .post(
            "/jobs/m005/edit",
            &[
                ("csrf_token", token.as_str()),
                ("title", ""),
                ("meeting_date", ""),
                ("return_to", "/jobs/m005"),
            ],
            &[],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/jobs/m005");
    let page = browser.page("/jobs/m005").await;
    assert!(page.contains("Saved."));
    assert!(page.contains(">Untitled meeting</h1>"));
    let job = app.job("m005").await;
    assert!(job.get("title").is_none_or(Value::is_null), "{job}");
    assert!(job.get("meeting_date").is_none_or(Value::is_null), "{job}");
}

#[tokio::test]
async fn speakers_are_named_on_the_job_page_and_reach_the_next_summary() {
    let app = spawn().await;
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let id = job["id"].as_str().unwrap().to_string();
    app.wait_for_status(&id, "completed").await;
    let mut browser = Browser::new(&app);
    let token = browser.token().await;

    let page = browser.page(&format!("/jobs/{id}")).await;
    assert!(page.contains(r#"name="speaker.A""#), "{page}");
    assert!(page.contains(r#"name="speaker.B""#));
    assert!(page.contains("<span class=\"speaker\">Speaker A</span>"));

    // A name with brackets is refused with a message; nothing changes.
    let response = browser
        .post(
            &format!("/jobs/{id}/speakers"),
            &[
                ("csrf_token", token.as_str()),
                ("speaker.A", "[Ana]"),
                ("return_to", &format!("/jobs/{id}")),
            ],
            &[],
        )
        .await;
    assert_eq!(response.status(), 303);
    let page = browser.page(&format!("/jobs/{id}")).await;
    assert!(
        page.contains("must not contain line breaks or brackets"),
        "{page}"
    );
    let speakers = app.job(&id).await["speakers"].clone();
    assert!(
        speakers.as_object().is_none_or(|names| names.is_empty()),
        "{speakers}"
    );
    // Without the token: refused.
    let response = browser
        .post(
            &format!("/jobs/{id}/speakers"),
            &[("speaker.A", "Eve")],
            &[],
        )
        .await;
    assert_eq!(response.status(), 403);

    // With htmx: the transcript comes back open with the names, and a new summary starts.
    let prompts_before = app.fakes.llm.prompts.lock().unwrap().len();
    let response = browser
        .post(
            &format!("/jobs/{id}/speakers"),
            &[
                ("csrf_token", token.as_str()),
                ("speaker.A", "Ana <Lopez>"),
                ("speaker.B", ""),
                ("resummarize", "on"),
                ("return_to", &format!("/jobs/{id}")),
            ],
            &[HTMX],
        )
        .await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("<span class=\"speaker\">Ana &#60;Lopez&#62;</span>"),
        "{html}"
    );
    assert!(html.contains("<span class=\"speaker\">Speaker B</span>"));
    assert!(html.contains(r#"<details class="transcript" open>"#));
    assert!(html.contains("A new summary is being written with them."));
    assert_eq!(
        app.job(&id).await["speakers"],
        json!({ "A": "Ana <Lopez>" })
    );
    app.wait_for(&id, "the new summary", |job| {
        job["status"] == "completed" && job["logs"].to_string().contains("New summary requested")
    })
    .await;
    let prompts = app.fakes.llm.prompts.lock().unwrap().clone();
    assert!(
        prompts[prompts_before..]
            .iter()
            .any(|prompt| prompt.contains("[Ana <Lopez>]:")),
        "the named transcript reached the LLM"
    );
    // The page shows the names from now on, and the form has them.
    let page = browser.page(&format!("/jobs/{id}")).await;
    assert!(page.contains("<span class=\"speaker\">Ana &#60;Lopez&#62;</span>"));
    assert!(
        page.contains(r#"name="speaker.A" type="text" value="Ana &#60;Lopez&#62;""#),
        "{page}"
    );
}

#[tokio::test]
async fn partial_transfers_left_by_a_crash_are_removed_at_start_up() {
    let fakes = Fakes::start().await;
    let data = tempfile::tempdir().unwrap();
    let files = data.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::create_dir_all(data.path().join("summaries")).unwrap();
    for name in [".job1.4f3a.part", ".job2.77.part", "keep.mp3"] {
        std::fs::write(files.join(name), b"partial").unwrap();
    }
    std::fs::write(data.path().join("summaries/.job1.md.5e.tmp"), b"half").unwrap();
    let app = TestApp::start(test_config(data.path(), &fakes), fakes).await;
    assert_eq!(app.files_in("files"), ["keep.mp3"]);
    assert_eq!(app.files_in("summaries"), Vec::<String>::new());
}

#[tokio::test]
async fn a_configured_prompt_outside_the_list_stays_the_forms_default() {
    // PROMPT_PATH names a file whose name is not a template name (capital letter): the
    // folder's templates are offered, but none of them is chosen in its place.
    let prompts = tempfile::tempdir().unwrap();
    std::fs::write(
        prompts.path().join("Custom.md"),
        "Summarise this meeting:\n{{transcript}}",
    )
    .unwrap();
    std::fs::write(
        prompts.path().join("interview.md"),
        "Summarise this interview:\n{{transcript}}",
    )
    .unwrap();
    let folder = prompts.path().to_path_buf();
    let app =
        TestApp::spawn_with(move |config| config.prompt_path = folder.join("Custom.md")).await;
    let home = Browser::new(&app).page("/").await;
    let select = &home[home
        .find(r#"<select id="job-template""#)
        .expect("a template select")..];
    let select = &select[..select.find("</select>").unwrap()];
    assert!(
        select.contains(r#"<option value="" selected>Default</option>"#),
        "{select}"
    );
    assert_eq!(select.matches(" selected").count(), 1, "{select}");
    assert!(select.contains(r#"<option value="interview">"#), "{select}");
}
