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

pub(crate) const DESKTOP: (u32, u32) = (1280, 900);
pub(crate) const PHONE: (u32, u32) = (390, 844);

/// `screenshots/` in the target folder the tests were built in (`CARGO_TARGET_DIR`, else the
/// repository's `target/`).
pub(crate) fn screenshots() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("screenshots")
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
pub(crate) async fn open_browser() -> Option<(Driver, Browser, tempfile::TempDir)> {
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
    let welcome = browser.text_of("#job-panel h2").await.unwrap();
    assert_eq!(welcome, "Pick a meeting");
    // A finished card is compact: no stages.
    assert!(browser.find_all("#job-list .stepper").await.is_empty());
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
pub(crate) fn tone_wav() -> Vec<u8> {
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
    if crate::storage::skipped_on_s3("it seeds artifact files in the data folder") {
        return;
    }
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

/// Records what the upload progress shows, every change, for the test to read afterwards.
const WATCH_PROGRESS: &str = "
    window.progressSeen = [];
    const watch = () => {
      const bar = document.getElementById('upload-bar');
      const label = document.getElementById('upload-label');
      if (!bar || bar.dataset.watched) return;
      bar.dataset.watched = 'yes';
      new MutationObserver(() => window.progressSeen.push({
        value: bar.value, label: label.textContent,
        visible: !document.getElementById('upload-progress').hidden,
      })).observe(bar, { attributes: true });
    };
    watch();
    document.addEventListener('htmx:afterSettle', watch);
    return true;";

/// Uploads slower than a LAN, so the progress can be seen.
async fn throttle_uploads(browser: &Browser, bytes_per_second: i64) {
    browser.devtools("Network.enable", json!({})).await;
    browser
        .devtools(
            "Network.emulateNetworkConditions",
            json!({
                "offline": false,
                "latency": 0,
                "downloadThroughput": -1,
                "uploadThroughput": bytes_per_second,
            }),
        )
        .await;
}

#[tokio::test]
async fn a_person_uploads_drops_searches_names_speakers_and_edits_a_title() {
    let Some((_driver, browser, _profile)) = open_browser().await else {
        return;
    };
    let app = TestApp::spawn().await;
    let shots = screenshots();
    let files = tempfile::tempdir().unwrap();
    let recording = files.path().join("standup.mp3");
    std::fs::write(&recording, crate::fakes::fake_mp3(900_000)).unwrap();
    let minutes = files.path().join("minutes.pdf");
    std::fs::write(&minutes, b"%PDF-1.4 not a recording").unwrap();

    browser.goto(&app.url("/")).await;
    browser
        .execute("window.focusflowNoReload = true; return true;", vec![])
        .await;

    // A file that is neither a recording nor a transcript is refused before it is sent.
    let input = browser.find("#job-file").await;
    browser.send_keys(&input, minutes.to_str().unwrap()).await;
    let error = browser
        .wait_for("the file's error", || async {
            browser.text_of("#job-file-error").await
        })
        .await;
    assert!(
        error.contains("is not a recording or a transcript"),
        "{error}"
    );
    browser
        .execute(
            "document.getElementById('job-file').value = ''; return true;",
            vec![],
        )
        .await;

    // A recording picked with the file input: real progress while it goes, then the job.
    browser.execute(WATCH_PROGRESS, vec![]).await;
    throttle_uploads(&browser, 300_000).await;
    let input = browser.find("#job-file").await;
    browser.send_keys(&input, recording.to_str().unwrap()).await;
    let chosen = browser.text_of("#job-file-status").await.unwrap();
    assert!(chosen.contains("standup.mp3"), "{chosen}");
    browser
        .click(&browser.find("#add-job button[type=submit]").await)
        .await;
    let label = browser
        .wait_for("the upload's progress", || async {
            browser
                .text_of("#upload-label")
                .await
                .filter(|text| text.contains(" of ") && !text.contains("(0 %)"))
        })
        .await;
    assert!(label.contains("standup.mp3"), "{label}");
    browser
        .screenshot(&shots.join("20-upload-progress-desktop.png"))
        .await;
    let flash = browser
        .wait_for("the upload's message", || async {
            browser
                .text_of("#flash .flash")
                .await
                .filter(|text| text.contains("Uploaded"))
        })
        .await;
    assert!(flash.contains("standup.mp3"), "{flash}");
    let seen = browser.execute("return window.progressSeen;", vec![]).await;
    let values: Vec<f64> = seen
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|step| step["value"].as_f64())
        .collect();
    assert!(
        values.iter().any(|value| *value > 0.0 && *value < 100.0),
        "progress between the ends: {seen}"
    );
    assert!(
        values.windows(2).all(|pair| pair[0] <= pair[1]),
        "progress only grows: {values:?}"
    );
    // The form is ready again, its progress hidden and its file field empty.
    let form = browser
        .execute(
            "return { hidden: document.getElementById('upload-progress').hidden, \
                      files: document.getElementById('job-file').files.length };",
            vec![],
        )
        .await;
    assert_eq!(form, json!({ "hidden": true, "files": 0 }));
    browser
        .wait_for("the uploaded job completed in the list", || async {
            let card = browser.text_of("#job-list .job-card").await?;
            card.contains("Completed").then_some(())
        })
        .await;

    // A second upload, cancelled half-way: nothing is added.
    browser.execute(WATCH_PROGRESS, vec![]).await;
    throttle_uploads(&browser, 100_000).await;
    let input = browser.find("#job-file").await;
    browser.send_keys(&input, recording.to_str().unwrap()).await;
    browser
        .click(&browser.find("#add-job button[type=submit]").await)
        .await;
    browser
        .wait_for("the second upload under way", || async {
            browser
                .text_of("#upload-label")
                .await
                .filter(|text| text.contains(" of "))
        })
        .await;
    browser.click(&browser.find("#upload-cancel").await).await;
    let error = browser
        .wait_for("the cancel message", || async {
            browser.text_of("#job-file-error").await
        })
        .await;
    assert!(error.contains("Upload cancelled"), "{error}");
    throttle_uploads(&browser, -1).await;
    let jobs: Value = app.get("/api/jobs").await.json().await.unwrap();
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1, "{jobs}");
    browser
        .execute(
            "document.getElementById('job-file').value = ''; return true;",
            vec![],
        )
        .await;

    // A transcript dropped on the page goes straight to the summary.
    browser
        .execute(
            "const data = new DataTransfer(); \
             data.items.add(new File(['Ana: The zeppelin hangar budget is tight.\\nBen: Then we cut the hangar.'], \
                                     'retro.txt', { type: 'text/plain' })); \
             window.dropped = data; \
             const over = document.querySelector('.pane-main'); \
             for (const type of ['dragenter', 'dragover']) \
               over.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: data })); \
             return true;",
            vec![],
        )
        .await;
    assert!(
        browser
            .execute(
                "return document.documentElement.classList.contains('is-dragging');",
                vec![]
            )
            .await
            .as_bool()
            .unwrap()
    );
    browser
        .screenshot(&shots.join("21-drop-overlay-desktop.png"))
        .await;
    browser
        .execute(
            "document.querySelector('.pane-main').dispatchEvent(new DragEvent('drop', \
               { bubbles: true, cancelable: true, dataTransfer: window.dropped })); return true;",
            vec![],
        )
        .await;
    browser
        .wait_for("the dropped transcript's message", || async {
            browser
                .text_of("#flash .flash")
                .await
                .filter(|text| text.contains("retro.txt"))
        })
        .await;
    browser
        .wait_for("both jobs completed", || async {
            let done = browser.find_all("#job-list .status-completed").await.len();
            (done == 2).then_some(())
        })
        .await;

    // Live search: the list follows the words, with the match marked, and the address too.
    let search = browser.find("#search-q").await;
    browser.send_keys(&search, "zeppel").await;
    let snippet = browser
        .wait_for("the search result", || async {
            let cards = browser.find_all("#job-list .job-card").await.len();
            let mark = browser.text_of("#job-list .job-snippet mark").await?;
            (cards == 1).then_some(mark)
        })
        .await;
    assert_eq!(snippet.to_lowercase(), "zeppelin");
    // Screen readers hear how many meetings were found.
    let announced = browser
        .wait_for("the result announced", || async {
            let text = browser
                .execute(
                    "return document.getElementById('search-announce').textContent;",
                    vec![],
                )
                .await;
            text.as_str()
                .filter(|text| !text.is_empty())
                .map(str::to_string)
        })
        .await;
    assert_eq!(announced, "1 meeting found.");
    browser
        .wait_for("the address with the search", || async {
            browser
                .current_url()
                .await
                .ends_with("/?q=zeppel")
                .then_some(())
        })
        .await;
    browser
        .screenshot(&shots.join("22-search-desktop.png"))
        .await;
    let no_reload = browser
        .execute("return window.focusflowNoReload === true;", vec![])
        .await;
    assert_eq!(no_reload, json!(true), "the page reloaded");
    // A reload shows the same results; back shows every meeting again.
    browser.refresh().await;
    assert_eq!(browser.find_all("#job-list .job-card").await.len(), 1);
    let typed = browser
        .execute("return document.getElementById('search-q').value;", vec![])
        .await;
    assert_eq!(typed, "zeppel");
    browser
        .execute("history.back(); return true;", vec![])
        .await;
    browser
        .wait_for("every meeting after going back", || async {
            (browser.find_all("#job-list .job-card").await.len() == 2).then_some(())
        })
        .await;
    // A status filter: nothing has failed.
    browser
        .execute(
            "const s = document.getElementById('search-status'); s.value = 'error'; \
             s.dispatchEvent(new Event('change', { bubbles: true })); return true;",
            vec![],
        )
        .await;
    browser
        .wait_for("no failed meetings", || async {
            browser
                .text_of("#job-list .empty-title")
                .await
                .filter(|text| text.contains("No meetings match"))
        })
        .await;
    browser.goto(&app.url("/")).await;

    // Open the recording: name Speaker A, and a new summary is written with the name.
    let upload = app.get("/api/jobs").await.json::<Value>().await.unwrap()["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|job| job["url"] == "upload:standup.mp3")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    browser
        .click(&browser.find(&format!("#job-card-{upload} .job-link")).await)
        .await;
    browser
        .wait_for("the job page", || async {
            browser.try_find("details.speakers > summary").await
        })
        .await;
    browser
        .execute("window.focusflowNoReload = true; return true;", vec![])
        .await;
    browser
        .click(&browser.find("details.speakers > summary").await)
        .await;
    let first = browser.find("input[name='speaker.A']").await;
    browser.send_keys(&first, "Ana").await;
    browser
        .screenshot(&shots.join("23-speakers-desktop.png"))
        .await;
    browser
        .click(&browser.find(".speakers-form button[type=submit]").await)
        .await;
    let named = browser
        .wait_for("the transcript with the name", || async {
            let speaker = browser
                .text_of("details.transcript[open] .turn .speaker")
                .await?;
            (speaker == "Ana").then_some(speaker)
        })
        .await;
    assert_eq!(named, "Ana");
    let flash = browser.text_of("#flash").await.unwrap_or_default();
    assert!(flash.contains("new summary"), "{flash}");
    browser
        .wait_for("the new summary", || async {
            let status = browser.text_of("#job-panel .job-status-large").await?;
            status.contains("Completed").then_some(())
        })
        .await;
    assert_eq!(app.job(&upload).await["speakers"], json!({ "A": "Ana" }));

    // Edit the title in place: a title too long is refused beside the field, then saved.
    browser.click(&browser.find(".edit-heading").await).await;
    let title = browser
        .wait_for("the edit form", || async {
            browser.try_find("#edit-title").await
        })
        .await;
    browser
        .execute(
            "document.getElementById('edit-title').value = ''; return true;",
            vec![],
        )
        .await;
    browser.send_keys(&title, &"x".repeat(201)).await;
    browser
        .click(&browser.find(".heading-form button[type=submit]").await)
        .await;
    let error = browser
        .wait_for("the title's error", || async {
            browser.text_of("#edit-title-error").await
        })
        .await;
    assert!(error.contains("longer than 200"), "{error}");
    browser
        .screenshot(&shots.join("24-edit-error-desktop.png"))
        .await;
    browser
        .execute(
            "document.getElementById('edit-title').value = ''; return true;",
            vec![],
        )
        .await;
    let title = browser.find("#edit-title").await;
    browser.send_keys(&title, "Roadmap review").await;
    browser
        .click(&browser.find(".heading-form button[type=submit]").await)
        .await;
    browser
        .wait_for("the new title", || async {
            browser
                .text_of("#job-title")
                .await
                .filter(|text| text == "Roadmap review")
        })
        .await;
    let listed = browser
        .text_of(&format!("#job-card-{upload} .job-title"))
        .await
        .unwrap();
    assert_eq!(listed, "Roadmap review");
    assert_eq!(app.job(&upload).await["title"], "Roadmap review");
    // The focus is back on Edit, not lost with the form.
    let focused = browser
        .execute(
            "return document.activeElement && document.activeElement.className;",
            vec![],
        )
        .await;
    assert!(
        focused
            .as_str()
            .is_some_and(|class| class.contains("edit-heading")),
        "focus on {focused}"
    );
    let no_reload = browser
        .execute("return window.focusflowNoReload === true;", vec![])
        .await;
    assert_eq!(no_reload, json!(true), "the page reloaded");
    assert_fits(&browser, "the edited job at desktop width").await;
    browser
        .screenshot(&shots.join("25-edited-desktop.png"))
        .await;

    // A phone: the add form with its file field, the job with its forms, nothing sideways.
    browser.emulate_viewport(PHONE.0, PHONE.1, true).await;
    browser.goto(&app.url("/?q=roadmap")).await;
    assert_fits(&browser, "search on a phone").await;
    browser
        .screenshot_full_page(&shots.join("26-home-search-phone-full.png"))
        .await;
    browser
        .goto(&app.url(&format!("/jobs/{upload}/edit")))
        .await;
    browser
        .click(&browser.find("details.speakers > summary").await)
        .await;
    assert_fits(&browser, "the job's forms on a phone").await;
    browser
        .screenshot_full_page(&shots.join("27-job-forms-phone-full.png"))
        .await;
    browser.quit().await;
}
