//! The UI in a real browser: headless Chromium over WebDriver against the real server and the
//! loopback fakes. A person adds a meeting, watches it complete without reloading, opens it,
//! reads the summary table, asks for a new summary and deletes the meeting. Screenshots at
//! desktop and phone widths go to `target/screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without chromedriver the test is skipped
//! with a message, except in CI (`CI` set), where it fails.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::fakes::LlmBehaviour;
use crate::helpers::TestApp;
use crate::webdriver::{Browser, Driver, find_chromedriver};

const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (375, 812);

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

/// True when the page is no wider than the viewport (no sideways scrolling).
async fn fits_width(browser: &Browser) -> Value {
    browser
        .execute(
            "return { page: document.documentElement.scrollWidth, viewport: window.innerWidth };",
            vec![],
        )
        .await
}

async fn assert_fits(browser: &Browser, page: &str) {
    let sizes = fits_width(browser).await;
    assert!(
        sizes["page"].as_u64() <= sizes["viewport"].as_u64(),
        "{page} scrolls sideways: {sizes}"
    );
}

/// A desktop-sized headless browser, or None (after saying why) when chromedriver is missing
/// outside CI.
async fn open_browser() -> Option<(Driver, Browser, tempfile::TempDir)> {
    let Some(chromedriver) = find_chromedriver() else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "chromedriver is missing: install the Debian packages chromium and chromium-driver"
            );
        }
        eprintln!(
            "SKIPPED a browser test: chromedriver is not installed \
             (apt-get install chromium chromium-driver)"
        );
        return None;
    };
    let driver = Driver::start(&chromedriver).await;
    let profile = tempfile::tempdir().unwrap();
    let browser = Browser::new(&driver, profile.path()).await;
    browser.set_window_rect(DESKTOP.0, DESKTOP.1).await;
    browser.emulate_viewport(DESKTOP.0, DESKTOP.1, false).await;
    Some((driver, browser, profile))
}

#[tokio::test]
async fn a_person_adds_watches_reads_resummarizes_and_deletes_a_meeting() {
    let Some((_driver, browser, _profile)) = open_browser().await else {
        return;
    };
    let app = TestApp::spawn().await;
    let shots = screenshots();

    // A new user: the empty state says what to paste.
    browser.goto(&app.url("/")).await;
    let empty = browser.text_of(".empty-state").await.unwrap();
    assert!(empty.contains("Plaud share link"), "{empty}");
    browser
        .screenshot(&shots.join("01-home-empty-desktop.png"))
        .await;

    // Add a meeting with the form; from now on the page must not reload.
    browser
        .execute("window.focusflowNoReload = true; return true;", vec![])
        .await;
    let field = browser.find("#job-url").await;
    browser
        .send_keys(&field, &app.fakes.audio.url("meeting.mp3"))
        .await;
    browser
        .click(&browser.find("#add-job button[type=submit]").await)
        .await;
    let flash = browser
        .wait_for("the flash message", || async {
            browser
                .text_of("#flash .flash")
                .await
                .filter(|text| text.contains("Meeting added"))
        })
        .await;
    assert!(flash.contains("working on it"));
    // The field is empty again, ready for the next link.
    let value = browser
        .execute("return document.getElementById('job-url').value;", vec![])
        .await;
    assert_eq!(value, "");

    // The list follows the job to the end by polling.
    browser
        .wait_for("the job completed in the list", || async {
            browser
                .text_of("#job-list .job-card .badge-label")
                .await
                .filter(|text| text == "Completed")
        })
        .await;
    let title = browser.text_of("#job-list .job-title").await.unwrap();
    assert_eq!(title, crate::fakes::TITLE);
    let no_reload = browser
        .execute("return window.focusflowNoReload === true;", vec![])
        .await;
    assert_eq!(no_reload, json!(true), "the page reloaded");
    // The welcome beside the list changed with it.
    let welcome = browser.text_of("#job-panel h1").await.unwrap();
    assert_eq!(welcome, "Pick a meeting");
    let done_steps = browser.find_all("#job-list .step-done").await.len();
    assert_eq!(done_steps, 4);
    browser.screenshot(&shots.join("02-home-desktop.png")).await;
    assert_fits(&browser, "home at desktop width").await;

    // Open it: the summary's table is rendered.
    browser
        .click(&browser.find("#job-list .job-link").await)
        .await;
    browser
        .wait_for("the summary table", || async {
            browser.try_find("#job-panel .summary table").await
        })
        .await;
    let table = browser.text_of("#job-panel .summary table").await.unwrap();
    assert!(table.contains("Ship the beta"), "{table}");
    assert!(table.contains("Speaker B"));
    let heading = browser.text_of("#job-title").await.unwrap();
    assert_eq!(heading, crate::fakes::TITLE);
    let id = browser
        .current_url()
        .await
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    // The copy buttons are there with JavaScript, the recording has a player.
    assert!(
        browser
            .text_of("[data-copy^=summary-source]")
            .await
            .is_some_and(|text| text.contains("Copy summary"))
    );
    assert!(browser.try_find("audio.player source").await.is_some());
    browser
        .click(&browser.find("details.transcript > summary").await)
        .await;
    let turns = browser.find_all(".turns .turn").await.len();
    assert_eq!(turns, 2, "two speaker turns");
    browser.screenshot(&shots.join("03-job-desktop.png")).await;
    browser
        .screenshot_full_page(&shots.join("04-job-desktop-full.png"))
        .await;
    assert_fits(&browser, "job at desktop width").await;
    browser.emulate_dark_mode(true).await;
    // Let the buttons' colour transitions finish before the picture.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    browser
        .screenshot_full_page(&shots.join("05-job-desktop-dark.png"))
        .await;
    browser.emulate_dark_mode(false).await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;

    // A phone: one column, nothing sideways.
    browser.emulate_viewport(PHONE.0, PHONE.1, true).await;
    browser.refresh().await;
    browser
        .wait_for("the job page", || async {
            browser.try_find("#job-panel .summary table").await
        })
        .await;
    assert_fits(&browser, "job on a phone").await;
    browser
        .execute("window.scrollTo(0, 0); return true;", vec![])
        .await;
    browser.screenshot(&shots.join("06-job-phone.png")).await;
    browser
        .screenshot_full_page(&shots.join("07-job-phone-full.png"))
        .await;
    browser.goto(&app.url("/")).await;
    assert_fits(&browser, "home on a phone").await;
    browser.screenshot(&shots.join("08-home-phone.png")).await;

    // Back on a desktop: re-summarize swaps in place, and the new summary streams in.
    browser.emulate_viewport(DESKTOP.0, DESKTOP.1, false).await;
    browser.goto(&app.url(&format!("/jobs/{id}"))).await;
    browser
        .execute("window.focusflowNoReload = true; return true;", vec![])
        .await;
    // A slow model, to see the summary while it is written.
    app.fakes.llm.set(LlmBehaviour {
        slow: true,
        ..Default::default()
    });
    browser
        .click(&browser.find(&format!("#resummarize-{id}")).await)
        .await;
    browser
        .wait_for("the message about the new summary", || async {
            browser
                .text_of("#flash")
                .await
                .filter(|text| text.contains("new summary"))
        })
        .await;
    browser
        .wait_for("the summary being written", || async {
            let status = browser.text_of("#job-panel .job-status-large").await?;
            let summary = browser.text_of("#job-panel .summary.is-streaming").await?;
            (status.contains("Writing the summary") && summary.contains("Version 2")).then_some(())
        })
        .await;
    browser
        .screenshot(&shots.join("09-job-streaming-desktop.png"))
        .await;
    browser
        .wait_for("the new summary", || async {
            let summary = browser.text_of("#job-panel .summary").await?;
            let status = browser.text_of("#job-panel .job-status-large").await?;
            (summary.contains("Version 2") && status.contains("Completed")).then_some(())
        })
        .await;
    let no_reload = browser
        .execute("return window.focusflowNoReload === true;", vec![])
        .await;
    assert_eq!(no_reload, json!(true), "the page reloaded");

    // Delete, after saying yes.
    browser
        .click(&browser.find("details.confirm > summary").await)
        .await;
    browser
        .screenshot(&shots.join("10-delete-confirm-desktop.png"))
        .await;
    browser
        .click(&browser.find("details.confirm .button-danger").await)
        .await;
    browser
        .wait_for("the job gone from the page", || async {
            let gone = browser.try_find("#job-list .job-card").await.is_none();
            let welcome = browser
                .try_find("#job-panel.job-panel-empty")
                .await
                .is_some();
            (gone && welcome).then_some(())
        })
        .await;
    let flash = browser.text_of("#flash").await.unwrap_or_default();
    assert!(flash.contains("Deleted"), "{flash}");
    assert!(browser.current_url().await.ends_with('/'));
    assert_eq!(app.get(&format!("/api/jobs/{id}")).await.status(), 404);
    browser
        .screenshot(&shots.join("11-after-delete-desktop.png"))
        .await;

    // A failed job on a phone: the error in words and a retry button.
    let failed = app.create_job(&app.fakes.audio.url("page.html")).await;
    let failed_id = failed["id"].as_str().unwrap();
    app.wait_for_status(failed_id, "error").await;
    browser.emulate_viewport(PHONE.0, PHONE.1, true).await;
    browser.goto(&app.url("/")).await;
    let error = browser.text_of("#job-list .job-error").await.unwrap();
    assert!(error.contains("text/html"), "{error}");
    assert!(browser.try_find("#job-list form button").await.is_some());
    assert_fits(&browser, "a failed job on a phone").await;
    browser
        .screenshot(&shots.join("12-failed-home-phone.png"))
        .await;
    browser.goto(&app.url(&format!("/jobs/{failed_id}"))).await;
    assert_fits(&browser, "a failed job page on a phone").await;
    browser
        .screenshot(&shots.join("13-failed-job-phone.png"))
        .await;

    browser.quit().await;
}

/// Two seconds of a 440 Hz tone as a WAV file: real audio the browser can decode and seek.
fn tone_wav() -> Vec<u8> {
    let rate: u32 = 8000;
    let samples: Vec<i16> = (0..rate * 2)
        .map(|n| {
            let t = n as f64 / f64::from(rate);
            ((t * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16
        })
        .collect();
    let data_len = (samples.len() * 2) as u32;
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        wav.extend_from_slice(&sample.to_le_bytes());
    }
    wav
}

#[tokio::test]
async fn the_recording_plays_seeks_and_keeps_playing_through_live_updates() {
    let Some((_driver, browser, _profile)) = open_browser().await else {
        return;
    };
    let fakes = crate::helpers::Fakes::start().await;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    for folder in ["files", "transcripts"] {
        std::fs::create_dir_all(dir.join(folder)).unwrap();
    }
    std::fs::write(dir.join("files/standup.wav"), tone_wav()).unwrap();
    std::fs::write(
        dir.join("transcripts/standup.txt"),
        "[Speaker A]: Morning all.\n\n[Speaker B]: Morning.",
    )
    .unwrap();
    let jobs = json!([{
        "id": "standup",
        "url": "https://example.com/standup.wav",
        "status": "completed",
        "title": "Daily standup",
        "summary": "# Standup\n\nAll good.",
        "file_path": "files/standup.wav",
        "transcript_path": "transcripts/standup.txt",
        "created_at": 1758830000000_i64,
        "updated_at": 1758830000000_i64,
        "logs": [],
        "checkpoint": { "step": "summarize" }
    }]);
    std::fs::write(dir.join("jobs.json"), jobs.to_string()).unwrap();
    let app = TestApp::start(crate::helpers::test_config(dir, &fakes), fakes).await;

    browser.goto(&app.url("/jobs/standup")).await;
    let duration = browser
        .wait_for("the recording's length", || async {
            let duration = browser
                .execute(
                    "const a = document.querySelector('audio.player'); \
                     return a && a.readyState >= 1 ? a.duration : null;",
                    vec![],
                )
                .await;
            duration.as_f64()
        })
        .await;
    assert!((duration - 2.0).abs() < 0.05, "{duration}");
    // Seeking works because the server answers ranges.
    let seekable = browser
        .execute(
            "const a = document.querySelector('audio.player'); \
             return a.seekable.length > 0 ? a.seekable.end(0) : 0;",
            vec![],
        )
        .await;
    assert!(seekable.as_f64().unwrap() > 1.9, "{seekable}");
    browser
        .execute(
            "const a = document.querySelector('audio.player'); a.dataset.kept = 'yes'; \
             a.currentTime = 1.5; return true;",
            vec![],
        )
        .await;

    browser
        .click(&browser.find("details.transcript > summary").await)
        .await;

    // A new summary makes the panel poll; the player is the same element throughout.
    app.fakes.llm.set(LlmBehaviour {
        slow: true,
        ..Default::default()
    });
    browser
        .click(&browser.find("#resummarize-standup").await)
        .await;
    browser
        .wait_for("a poll while the summary is written", || async {
            browser
                .text_of("#job-panel .summary.is-streaming")
                .await
                .filter(|text| text.contains("Launch planning"))
        })
        .await;
    browser
        .screenshot(&screenshots().join("14-audio-while-polling-desktop.png"))
        .await;
    browser
        .wait_for("the new summary", || async {
            let status = browser.text_of("#job-panel .job-status-large").await?;
            status.contains("Completed").then_some(())
        })
        .await;
    let player = browser
        .execute(
            "const a = document.querySelector('audio.player'); \
             return { kept: a.dataset.kept || null, time: a.currentTime, duration: a.duration };",
            vec![],
        )
        .await;
    assert_eq!(player["kept"], "yes", "the player was replaced: {player}");
    assert!(
        (player["time"].as_f64().unwrap() - 1.5).abs() < 0.1,
        "{player}"
    );
    assert!(player["duration"].as_f64().unwrap() > 1.9, "{player}");
    // The transcript, opened by the person, stays open through the updates too.
    assert!(
        browser
            .try_find("details.transcript[open] .turn")
            .await
            .is_some()
    );
    browser.quit().await;
}
