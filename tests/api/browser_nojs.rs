//! The UI with JavaScript turned off, in real Chromium: every form posts, is accepted and ends on
//! the page a person expects. Chromium sends the page's real `Origin` with these posts (the
//! pages' `Referrer-Policy: same-origin`); under `no-referrer` it sent `Origin: null` and every
//! one was refused. A form on another site that posts here is still refused, whether its
//! browser names that site or sends `Origin: null`.

use axum::Router;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::Value;

use crate::browser::{DESKTOP, screenshots};
use crate::helpers::TestApp;
use crate::webdriver::{Browser, Driver, find_chromedriver};

/// A browser without JavaScript, or None (after saying why) without chromedriver outside CI.
async fn open_browser_without_javascript() -> Option<(Driver, Browser, tempfile::TempDir)> {
    let Some(chromedriver) = find_chromedriver() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromedriver is missing: install the Debian packages chromium and chromium-driver"
        );
        eprintln!("SKIPPED a browser test: chromedriver is not installed");
        return None;
    };
    let driver = Driver::start(&chromedriver).await;
    let profile = tempfile::tempdir().unwrap();
    let browser = Browser::without_javascript(&driver, profile.path()).await;
    browser.set_window_rect(DESKTOP.0, DESKTOP.1).await;
    Some((driver, browser, profile))
}

/// The page's path (and query), without the origin.
async fn path_of(browser: &Browser) -> String {
    let url = browser.current_url().await;
    let parsed = url::Url::parse(&url).unwrap();
    match parsed.query() {
        Some(query) => format!("{}?{query}", parsed.path()),
        None => parsed.path().to_string(),
    }
}

/// The flash message the page shows, after checking the post was not refused.
async fn flash_after_post(browser: &Browser, what: &str) -> String {
    let body = browser.text_of("body").await.unwrap_or_default();
    assert!(
        !body.to_lowercase().contains("cross-site request refused")
            && !body.contains("form has expired"),
        "{what} was refused: {body}"
    );
    browser
        .text_of("#flash .flash")
        .await
        .unwrap_or_else(|| panic!("{what}: no message on {}", body))
}

/// Opens the add form's "More options" (file, paste, date, style) when it is closed.
pub(crate) async fn open_more_options(browser: &Browser) {
    if browser
        .try_find("#add-job details.more-options:not([open])")
        .await
        .is_some()
    {
        browser
            .click(
                &browser
                    .find("#add-job details.more-options > summary")
                    .await,
            )
            .await;
    }
}

fn job_id_of(path: &str) -> String {
    path.strip_prefix("/jobs/")
        .unwrap_or_else(|| panic!("not a job page: {path}"))
        .to_string()
}

#[tokio::test]
async fn every_form_works_without_javascript() {
    let Some((_driver, browser, _profile)) = open_browser_without_javascript().await else {
        return;
    };
    let app = TestApp::spawn().await;
    let shots = screenshots();
    let files = tempfile::tempdir().unwrap();
    let recording = files.path().join("standup.mp3");
    std::fs::write(&recording, crate::fakes::fake_mp3(50_000)).unwrap();

    browser.goto(&app.url("/")).await;
    // Really without JavaScript: app.js would have marked the page.
    assert!(browser.try_find("html.js").await.is_none());

    // Add a link: the new meeting's page, saying so.
    let field = browser.find("#job-url").await;
    browser
        .send_keys(&field, &app.fakes.audio.url("meeting.mp3"))
        .await;
    browser
        .click(&browser.find("#add-job button[type=submit]").await)
        .await;
    let flash = flash_after_post(&browser, "adding a link").await;
    assert!(flash.contains("Meeting added"), "{flash}");
    let linked = job_id_of(&path_of(&browser).await);
    app.wait_for_status(&linked, "completed").await;
    // Nothing polls without JavaScript: a person reloads.
    browser.refresh().await;
    let status = browser
        .text_of("#job-panel .job-status-large")
        .await
        .unwrap();
    assert!(status.contains("Completed"), "{status}");

    // Rename a speaker (and, as the form offers, write a new summary with the name).
    browser
        .click(&browser.find("details.speakers > summary").await)
        .await;
    let name = browser.find("input[name='speaker.A']").await;
    browser.send_keys(&name, "Ana").await;
    browser
        .click(&browser.find(".speakers-form button[type=submit]").await)
        .await;
    let flash = flash_after_post(&browser, "naming the speakers").await;
    assert!(flash.contains("Speaker names saved"), "{flash}");
    assert_eq!(path_of(&browser).await, format!("/jobs/{linked}"));
    assert_eq!(app.job(&linked).await["speakers"]["A"], "Ana");
    app.wait_for_status(&linked, "completed").await;

    // Edit the title: the edit page, then the job's page with the new title.
    browser.refresh().await;
    browser.click(&browser.find(".edit-heading").await).await;
    assert_eq!(path_of(&browser).await, format!("/jobs/{linked}/edit"));
    let title = browser.find("#edit-title").await;
    browser.clear(&title).await;
    browser.send_keys(&title, "Planning, without scripts").await;
    browser
        .click(&browser.find(".heading-form button[type=submit]").await)
        .await;
    let flash = flash_after_post(&browser, "editing the title").await;
    assert!(flash.contains("Saved"), "{flash}");
    assert_eq!(path_of(&browser).await, format!("/jobs/{linked}"));
    assert_eq!(
        browser.text_of("#job-title").await.unwrap(),
        "Planning, without scripts"
    );
    browser
        .screenshot(&shots.join("nojs-01-edited-desktop.png"))
        .await;

    // Upload a recording: its page, saying so.
    browser.goto(&app.url("/")).await;
    open_more_options(&browser).await;
    let input = browser.find("#job-file").await;
    browser.send_keys(&input, recording.to_str().unwrap()).await;
    browser
        .click(&browser.find("#add-job button[type=submit]").await)
        .await;
    let flash = flash_after_post(&browser, "uploading a file").await;
    assert!(flash.contains("Uploaded “standup.mp3”"), "{flash}");
    let uploaded = job_id_of(&path_of(&browser).await);
    assert_eq!(app.job(&uploaded).await["url"], "upload:standup.mp3");

    // Retry a failed job from the list: back on the list, saying what happens next.
    let failed = app.create_job(&app.fakes.audio.url("page.html")).await;
    let failed = failed["id"].as_str().unwrap().to_string();
    app.wait_for_status(&failed, "error").await;
    browser.goto(&app.url("/")).await;
    browser
        .click(
            &browser
                .find(&format!("#job-card-{failed} form button[type=submit]"))
                .await,
        )
        .await;
    let flash = flash_after_post(&browser, "retrying from the list").await;
    assert!(flash.contains("queued"), "{flash}");
    assert_eq!(path_of(&browser).await, "/");
    app.wait_for_status(&failed, "error").await;

    // Retry on the job's page: that page again.
    browser.goto(&app.url(&format!("/jobs/{failed}"))).await;
    browser
        .click(&browser.find(".actions button.button-primary").await)
        .await;
    let flash = flash_after_post(&browser, "retrying on the job's page").await;
    assert!(flash.contains("queued"), "{flash}");
    assert_eq!(path_of(&browser).await, format!("/jobs/{failed}"));
    app.wait_for_status(&failed, "error").await;

    // Delete, after saying yes: the list, without the meeting.
    browser.refresh().await;
    browser
        .click(&browser.find("details.confirm > summary").await)
        .await;
    browser
        .click(&browser.find("details.confirm .button-danger").await)
        .await;
    let flash = flash_after_post(&browser, "deleting").await;
    assert!(flash.contains("Deleted"), "{flash}");
    assert_eq!(path_of(&browser).await, "/");
    assert!(
        browser
            .try_find(&format!("#job-card-{failed}"))
            .await
            .is_none()
    );
    assert_eq!(app.get(&format!("/api/jobs/{failed}")).await.status(), 404);
    browser
        .screenshot(&shots.join("nojs-02-after-delete-desktop.png"))
        .await;
    browser.quit().await;
}

/// A page on another site with a form that posts to FocusFlow: what an attacker would put up.
async fn hostile_site(target: String, no_referrer: bool) -> String {
    let page = format!(
        "<!doctype html><html lang=en><title>Win a prize</title>\
         <form method=post action=\"{target}\"><input type=hidden name=return_to value=/>\
         <button id=go type=submit>Claim</button></form>"
    );
    let router = Router::new().route(
        "/",
        get(move || {
            let page = page.clone();
            async move {
                let mut response = Html(page).into_response();
                if no_referrer {
                    // The page's own policy makes Chromium send `Origin: null`.
                    response.headers_mut().insert(
                        axum::http::header::REFERRER_POLICY,
                        axum::http::HeaderValue::from_static("no-referrer"),
                    );
                }
                response
            }
        }),
    );
    crate::fakes::serve(router).await
}

#[tokio::test]
async fn a_form_on_another_site_is_still_refused() {
    let Some((_driver, browser, _profile)) = open_browser_without_javascript().await else {
        return;
    };
    let app = TestApp::spawn().await;
    let job = app.create_job(&app.fakes.audio.url("page.html")).await;
    let id = job["id"].as_str().unwrap().to_string();
    app.wait_for_status(&id, "error").await;
    let target = app.url(&format!("/jobs/{id}/delete"));
    for (no_referrer, origin) in [(false, "another site"), (true, "an opaque origin (null)")] {
        // On `localhost`: another site than FocusFlow's 127.0.0.1 (and another port).
        let site = hostile_site(target.clone(), no_referrer)
            .await
            .replace("127.0.0.1", "localhost");
        browser.goto(&format!("{site}/")).await;
        browser.click(&browser.find("#go").await).await;
        // (The answer arrives after the click returns: a page is not read before it does.)
        browser
            .wait_for(&format!("a post from {origin} refused"), || async {
                browser
                    .text_of("body")
                    .await
                    .filter(|body| body.to_lowercase().contains("cross-site request refused"))
            })
            .await;
        let job: Value = app.job(&id).await;
        assert_eq!(job["status"], "error", "the job is still there");
    }
}
