//! The list and the job page as they live in a real browser: the list's poll leaves the focus
//! and the scroll where they were, the compact list shows many meetings at once, a transcript's
//! time seeks the recording, times show in the reader's zone, and the share target.

use serde_json::{Value, json};

use crate::browser::{DESKTOP, PHONE, open_browser, screenshots, tone_wav};
use crate::fakes::AssemblyBehaviour;
use crate::helpers::{Fakes, TestApp, test_config};
use crate::webdriver::Browser;

/// Titles of the seeded meetings, newest first.
pub(crate) const SEEDED: [&str; 10] = [
    "Quarterly planning",
    "Design review: onboarding",
    "Customer call with Acme",
    "Weekly standup",
    "Hiring sync",
    "Budget review",
    "Retro: the beta launch",
    "1:1 with Ben",
    "Roadmap workshop",
    "Security incident debrief",
];

/// A summary as models write them: a top-level heading, facts on lines of their own, sections.
pub(crate) const SUMMARY: &str = "# Meeting summary\n\nTopic: Quarterly planning\nParticipants: \
    Ana, Ben\nDuration: 2 seconds\n\n## Key decisions\n- Ship the beta on **3 October**.\n- Keep \
    the hangar budget.\n\n## Action items\n| Action | Owner | Due |\n|---|---|---|\n| Ship the \
    beta | Ben | 3 October |\n";

/// A data folder with `SEEDED` meetings, all completed, one a day back from 25 September 2025;
/// the first has a two-second recording and a timed transcript of three turns.
pub(crate) fn seed(dir: &std::path::Path) {
    for folder in ["files", "transcripts", "summaries"] {
        std::fs::create_dir_all(dir.join(folder)).unwrap();
    }
    std::fs::write(dir.join("files/m0.wav"), tone_wav()).unwrap();
    std::fs::write(
        dir.join("transcripts/m0.txt"),
        "[Speaker A]: Morning all, shall we start with the beta?\n\n[Speaker B]: Yes. It ships \
         on the third.\n\n[Speaker A]: Then the hangar budget stays as it is.",
    )
    .unwrap();
    let utterances = json!({ "utterances": [
        { "speaker": "A", "text": "Morning all, shall we start with the beta?", "start": 0, "end": 700 },
        { "speaker": "B", "text": "Yes. It ships on the third.", "start": 800, "end": 1300 },
        { "speaker": "A", "text": "Then the hangar budget stays as it is.", "start": 1400, "end": 1990 },
    ]});
    std::fs::write(dir.join("transcripts/m0.json"), utterances.to_string()).unwrap();
    // Three hours of talk, a turn every four seconds.
    let (text, utterances) = long_transcript(2_700);
    std::fs::write(dir.join("transcripts/m1.txt"), text).unwrap();
    std::fs::write(dir.join("transcripts/m1.json"), utterances.to_string()).unwrap();
    let day = 86_400_000_i64;
    let newest = 1_758_830_400_000_i64; // 25 September 2025, 20:00 UTC
    let jobs: Vec<Value> = SEEDED
        .iter()
        .enumerate()
        .map(|(index, title)| {
            let at = newest - day * index as i64;
            let mut job = json!({
                "id": format!("m{index}"),
                "url": format!("https://recorder.example.com/share/m{index}"),
                "status": "completed",
                "title": title,
                "summary": SUMMARY.replace("Quarterly planning", title),
                "meeting_date": chrono::DateTime::from_timestamp_millis(at).unwrap().to_rfc3339(),
                "created_at": at,
                "updated_at": at,
                "logs": [],
                "checkpoint": { "step": "summarize" }
            });
            if index == 0 {
                job["file_path"] = json!("files/m0.wav");
                job["transcript_path"] = json!("transcripts/m0.txt");
            }
            if index == 1 {
                job["transcript_path"] = json!("transcripts/m1.txt");
            }
            job
        })
        .collect();
    std::fs::write(dir.join("jobs.json"), Value::from(jobs).to_string()).unwrap();
}

/// A transcript of `turns` turns, two speakers taking turns every four seconds, and its
/// utterances.
pub(crate) fn long_transcript(turns: usize) -> (String, Value) {
    let line = |index: usize| {
        format!(
            "Point {index}: we went through the numbers for item {index} and agreed to look \
             again next week."
        )
    };
    let speaker = |index: usize| if index.is_multiple_of(2) { "A" } else { "B" };
    let text = (0..turns)
        .map(|index| format!("[Speaker {}]: {}", speaker(index), line(index)))
        .collect::<Vec<_>>()
        .join("\n\n");
    let utterances: Vec<Value> = (0..turns)
        .map(|index| {
            json!({ "speaker": speaker(index), "text": line(index),
                    "start": index * 4000, "end": index * 4000 + 3500 })
        })
        .collect();
    (text, json!({ "utterances": utterances }))
}

/// The app over a seeded data folder (kept as long as the app).
pub(crate) async fn seeded_app() -> TestApp {
    let fakes = Fakes::start().await;
    let data = tempfile::tempdir().unwrap();
    seed(data.path());
    let mut app = TestApp::start(test_config(data.path(), &fakes), fakes).await;
    app.keep_dir(data);
    app
}

/// Counts the list's polls (and the panel's) from now on.
const COUNT_POLLS: &str = "
    window.polls = 0;
    document.body.addEventListener('htmx:afterRequest', (event) => {
      const path = event.detail.pathInfo && event.detail.pathInfo.requestPath || '';
      if (path.startsWith('/partials/jobs') || path.includes('/panel')) window.polls += 1;
    });
    return true;";

async fn polls(browser: &Browser) -> u64 {
    browser
        .execute("return window.polls;", vec![])
        .await
        .as_u64()
        .unwrap_or(0)
}

async fn wait_for_polls(browser: &Browser, more: u64) {
    let start = polls(browser).await;
    browser
        .wait_for("the list's polls", || async {
            (polls(browser).await >= start + more).then_some(())
        })
        .await;
}

async fn focused_id(browser: &Browser) -> Value {
    browser
        .execute(
            "return document.activeElement ? document.activeElement.id : null;",
            vec![],
        )
        .await
}

#[tokio::test]
async fn the_list_poll_keeps_the_focus_and_the_scroll() {
    let Some((_driver, browser, _profile)) = open_browser().await else {
        return;
    };
    let app = seeded_app().await;
    // A transcription that takes its time: the job runs until the test lets it finish.
    app.fakes.assemblyai.set(AssemblyBehaviour {
        polls_before_done: 1_000_000,
        ..Default::default()
    });
    let running = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let running = running["id"].as_str().unwrap().to_string();
    app.wait_for_status(&running, "transcribing").await;

    browser.goto(&app.url("/")).await;
    browser.execute(COUNT_POLLS, vec![]).await;
    assert!(browser.try_find("#list-poll[hx-trigger]").await.is_some());
    // The list element is marked: a poll that replaced it would lose the mark.
    browser
        .execute(
            "document.getElementById('job-list').dataset.kept = 'yes'; \
             const pane = document.querySelector('.pane-list'); pane.scrollTop = 60; \
             document.getElementById('job-link-m2').focus(); return pane.scrollTop;",
            vec![],
        )
        .await;
    let scrolled = browser
        .execute(
            "return document.querySelector('.pane-list').scrollTop;",
            vec![],
        )
        .await;
    wait_for_polls(&browser, 2).await;
    assert_eq!(focused_id(&browser).await, "job-link-m2");
    let after = browser
        .execute(
            "return { kept: document.getElementById('job-list').dataset.kept || null, \
                      scroll: document.querySelector('.pane-list').scrollTop };",
            vec![],
        )
        .await;
    assert_eq!(after["kept"], "yes", "the list was replaced: {after}");
    assert_eq!(after["scroll"], scrolled, "the list scrolled: {after}");

    // The running job's own card is swapped; its link keeps the focus through the swap.
    browser
        .execute(
            &format!("document.getElementById('job-link-{running}').focus(); return true;"),
            vec![],
        )
        .await;
    wait_for_polls(&browser, 2).await;
    assert_eq!(focused_id(&browser).await, format!("job-link-{running}"));

    // It finishes: its card says so, in place, and the polling stops.
    app.fakes.assemblyai.set(AssemblyBehaviour::default());
    browser
        .wait_for("the finished card", || async {
            browser
                .text_of(&format!("#job-card-{running} .badge-label"))
                .await
                .filter(|text| text == "Completed")
        })
        .await;
    browser
        .wait_for("the polling stopped", || async {
            browser
                .try_find("#list-poll:not([hx-trigger])")
                .await
                .map(|_| ())
        })
        .await;
    let kept = browser
        .execute(
            "return document.getElementById('job-list').dataset.kept || null;",
            vec![],
        )
        .await;
    assert_eq!(kept, "yes");
    assert_eq!(focused_id(&browser).await, format!("job-link-{running}"));
    browser.quit().await;
}
#[tokio::test]
async fn six_meetings_show_at_once_on_a_desktop_and_the_first_on_a_phone() {
    let Some((_driver, browser, _profile)) = open_browser().await else {
        return;
    };
    let app = seeded_app().await;
    browser.goto(&app.url("/")).await;
    // Cards whose whole box is inside the window.
    let visible = "return [...document.querySelectorAll('#job-list .job-card')].filter((card) => { \
         const box = card.getBoundingClientRect(); \
         return box.top >= 0 && box.bottom <= window.innerHeight; }).length;";
    browser
        .screenshot(&screenshots().join("30-home-desktop.png"))
        .await;
    let shown = browser.execute(visible, vec![]).await.as_u64().unwrap();
    assert!(
        shown >= 6,
        "{shown} meetings visible at {}×{}",
        DESKTOP.0,
        DESKTOP.1
    );
    // A job's page scrolled to its end: the list beside it still reaches the window's bottom.
    browser.goto(&app.url("/jobs/m0")).await;
    let list_bottom = browser
        .execute(
            "window.scrollTo(0, document.body.scrollHeight); \
             return [document.querySelector('.pane-list').getBoundingClientRect().bottom, \
                     window.innerHeight, window.scrollY];",
            vec![],
        )
        .await;
    assert!(
        (list_bottom[0].as_f64().unwrap() - list_bottom[1].as_f64().unwrap()).abs() < 1.0,
        "a gap under the list: {list_bottom}"
    );
    assert!(
        list_bottom[2].as_f64().unwrap() > 56.0,
        "the page scrolled past the top bar"
    );
    browser.emulate_viewport(PHONE.0, PHONE.1, true).await;
    browser.goto(&app.url("/")).await;
    browser
        .screenshot(&screenshots().join("31-home-phone.png"))
        .await;
    let first = browser
        .execute(
            "return document.querySelector('#job-list .job-card').getBoundingClientRect().bottom;",
            vec![],
        )
        .await;
    assert!(
        first.as_f64().unwrap() <= f64::from(PHONE.1),
        "the first meeting ends at y={first} on a {}×{} phone",
        PHONE.0,
        PHONE.1
    );
    browser.quit().await;
}

#[tokio::test]
async fn times_show_in_the_readers_zone() {
    let Some((_driver, browser, _profile)) = open_browser().await else {
        return;
    };
    let fakes = Fakes::start().await;
    let data = tempfile::tempdir().unwrap();
    seed(data.path());
    let mut config = test_config(data.path(), &fakes);
    config.display_timezone = focusflow::zone::Zone::named("Europe/Berlin").unwrap();
    let app = TestApp::start(config, fakes).await;

    // Without JavaScript: DISPLAY_TIMEZONE, named. (The meeting is 20:00 UTC.)
    let page = app.get("/").await.text().await.unwrap();
    assert!(
        page.contains(">Thu 25 Sep 2025, 22:00 CEST</time>"),
        "{page}"
    );
    // The API stays ISO 8601.
    assert_eq!(
        app.job("m0").await["meeting_date"],
        "2025-09-25T20:00:00.000Z"
    );

    // With JavaScript: the browser's zone, here Tokyo's (set through the DevTools protocol).
    browser
        .devtools(
            "Emulation.setTimezoneOverride",
            json!({ "timezoneId": "Asia/Tokyo" }),
        )
        .await;
    browser.goto(&app.url("/jobs/m0")).await;
    let card = browser
        .wait_for("the card in Tokyo's time", || async {
            browser
                .text_of("#job-card-m0 time")
                .await
                .filter(|text| text.starts_with("Fri 26 Sep 2025, 05:00"))
        })
        .await;
    assert!(card.ends_with("GMT+9") || card.ends_with("JST"), "{card}");
    let heading = browser.text_of(".job-when time").await.unwrap();
    assert!(heading.starts_with("Fri 26 Sep 2025, 05:00"), "{heading}");

    // The edit form shows and reads the date in Tokyo's time too.
    browser.click(&browser.find(".edit-heading").await).await;
    browser
        .wait_for("the edit form", || async {
            browser.try_find("#edit-date").await
        })
        .await;
    let shown = browser
        .execute(
            "return [document.getElementById('edit-date').value, \
                     document.querySelector('.heading-form input[name=timezone]').value];",
            vec![],
        )
        .await;
    assert_eq!(shown, json!(["2025-09-26T05:00", "Asia/Tokyo"]));
    browser
        .execute(
            "document.getElementById('edit-date').value = '2025-09-27T09:30'; return true;",
            vec![],
        )
        .await;
    browser
        .click(&browser.find(".heading-form button[type=submit]").await)
        .await;
    browser
        .wait_for("the saved date", || async {
            browser
                .text_of(".job-when time")
                .await
                .filter(|text| text.starts_with("Sat 27 Sep 2025, 09:30"))
        })
        .await;
    assert_eq!(
        app.job("m0").await["meeting_date"],
        "2025-09-27T00:30:00.000Z"
    );
    browser.quit().await;
}

#[tokio::test]
async fn a_turns_time_plays_the_recording_from_there() {
    if crate::storage::skipped_on_s3("it seeds artifact files in the data folder") {
        return;
    }
    let Some((_driver, browser, _profile)) = open_browser().await else {
        return;
    };
    let app = seeded_app().await;
    browser.goto(&app.url("/jobs/m0")).await;
    browser
        .click(&browser.find("details.transcript > summary").await)
        .await;
    let labels = browser
        .execute(
            "return [...document.querySelectorAll('.turn .turn-time')].map((t) => t.textContent);",
            vec![],
        )
        .await;
    assert_eq!(
        labels,
        json!(["Play from 0:00", "Play from 0:00", "Play from 0:01"])
    );
    browser
        .wait_for("the recording's length", || async {
            browser
                .execute(
                    "const a = document.querySelector('audio.player'); \
                     return a.readyState >= 1 ? a.duration : null;",
                    vec![],
                )
                .await
                .as_f64()
        })
        .await;
    // The third turn starts at 1.4 s: its time moves the player there, and marks the turn.
    let third = browser.find_all(".turn .turn-time").await.remove(2);
    browser.click(&third).await;
    let state = browser
        .wait_for("the player at the turn", || async {
            let state = browser
                .execute(
                    "const a = document.querySelector('audio.player'); \
                     const marked = document.querySelector('.turn.is-playing .turn-text'); \
                     return { time: a.currentTime, marked: marked && marked.textContent };",
                    vec![],
                )
                .await;
            (state["time"].as_f64()? >= 1.4 && !state["marked"].is_null()).then_some(state)
        })
        .await;
    assert!(
        state["marked"]
            .as_str()
            .unwrap()
            .contains("hangar budget stays"),
        "{state}"
    );
    assert_eq!(
        browser.current_url().await,
        app.url("/jobs/m0"),
        "no navigation"
    );
    browser
        .execute(
            "document.querySelector('audio.player').pause(); return true;",
            vec![],
        )
        .await;
    browser
        .screenshot(&screenshots().join("32-transcript-playing-desktop.png"))
        .await;

    // The filter keeps the turns with its words.
    let filter = browser.find(".transcript-filter").await;
    browser.send_keys(&filter, "Ships").await;
    let count = browser
        .wait_for("the filtered transcript", || async {
            browser
                .text_of(".transcript-count")
                .await
                .filter(|text| !text.is_empty())
        })
        .await;
    assert_eq!(count, "1 of 3 turns");
    assert_eq!(browser.find_all(".turn:not([hidden])").await.len(), 1);

    // Three hours of talk: the page opens, the transcript opens and the filter answers
    // quickly (measured, and said; only a very slow page fails).
    let started = std::time::Instant::now();
    browser.goto(&app.url("/jobs/m1")).await;
    let loaded = started.elapsed();
    let timings = browser
        .execute(
            "const started = performance.now(); \
             document.querySelector('details.transcript').open = true; \
             document.body.getBoundingClientRect(); \
             const opened = performance.now() - started; \
             const input = document.querySelector('.transcript-filter'); \
             input.value = 'item 2699 '; \
             const filtering = performance.now(); \
             input.dispatchEvent(new Event('input', { bubbles: true })); \
             return { opened, turns: document.querySelectorAll('.turn').length, filtering };",
            vec![],
        )
        .await;
    assert_eq!(timings["turns"], 2_700);
    let count = browser
        .wait_for("the long transcript filtered", || async {
            browser
                .text_of(".transcript-count")
                .await
                .filter(|text| !text.is_empty())
        })
        .await;
    assert_eq!(count, "1 of 2700 turns");
    eprintln!(
        "a three-hour transcript (2,700 turns): page loaded in {loaded:?}, opened in {:.0} ms",
        timings["opened"].as_f64().unwrap_or_default()
    );
    assert!(timings["opened"].as_f64().unwrap() < 2_000.0, "{timings}");
    browser.quit().await;
}

#[tokio::test]
async fn search_results_show_the_summarys_words_not_its_markdown() {
    let app = seeded_app().await;
    let page = app.get("/?q=hangar").await.text().await.unwrap();
    let snippet = page
        .split_once("<span class=\"job-snippet\">")
        .and_then(|(_, rest)| rest.split_once("</span>"))
        .unwrap_or_else(|| panic!("no search result: {page}"))
        .0;
    assert!(snippet.contains("<mark>hangar</mark>"), "{snippet}");
    for markdown in ["##", "**", "- Ship", "|"] {
        assert!(!snippet.contains(markdown), "{markdown:?} in {snippet}");
    }
}

#[tokio::test]
async fn the_app_can_be_installed_and_receive_shares() {
    let Some((_driver, browser, _profile)) = open_browser().await else {
        return;
    };
    let app = seeded_app().await;
    browser.goto(&app.url("/")).await;
    browser
        .execute(
            "navigator.serviceWorker.ready.then((r) => { window.workerScope = r.scope; }); \
             return true;",
            vec![],
        )
        .await;
    let scope = browser
        .wait_for("the service worker", || async {
            browser
                .execute("return window.workerScope || null;", vec![])
                .await
                .as_str()
                .map(str::to_string)
        })
        .await;
    assert_eq!(scope, app.url("/"));
    let manifest = browser.devtools("Page.getAppManifest", json!({})).await;
    assert_eq!(manifest["errors"], json!([]), "{manifest}");
    let parsed: Value = serde_json::from_str(manifest["data"].as_str().unwrap()).unwrap();
    assert_eq!(parsed["share_target"]["action"], "/share");
    let installable = browser
        .wait_for("installability checked", || async {
            let answer = browser
                .devtools("Page.getInstallabilityErrors", json!({}))
                .await;
            answer["installabilityErrors"].as_array().cloned()
        })
        .await;
    assert_eq!(installable, Vec::<Value>::new(), "installable");
    browser.quit().await;
}

/// Every kind of page at a desktop's and a phone's size, light and dark, for people to look at
/// (`screenshots/` in the target folder): the home page, a finished job, a running job, a
/// failed job and a search.
#[tokio::test]
async fn screenshots_of_every_page() {
    if crate::storage::skipped_on_s3("it seeds artifact files in the data folder") {
        return;
    }
    let Some((_driver, browser, _profile)) = open_browser().await else {
        return;
    };
    let app = seeded_app().await;
    app.fakes.assemblyai.set(AssemblyBehaviour {
        polls_before_done: 1_000_000,
        ..Default::default()
    });
    let running = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let running = running["id"].as_str().unwrap().to_string();
    app.wait_for_status(&running, "transcribing").await;
    let failed = app.create_job(&app.fakes.audio.url("page.html")).await;
    let failed = failed["id"].as_str().unwrap().to_string();
    app.wait_for_status(&failed, "error").await;
    let pages = [
        ("home", "/".to_string()),
        ("job", "/jobs/m0".to_string()),
        ("running", format!("/jobs/{running}")),
        ("failed", format!("/jobs/{failed}")),
        ("search", "/?q=beta".to_string()),
    ];
    let shots = screenshots();
    for (size, (width, height), mobile) in [("desktop", DESKTOP, false), ("phone", PHONE, true)] {
        browser.emulate_viewport(width, height, mobile).await;
        for dark in [false, true] {
            browser.emulate_dark_mode(dark).await;
            let scheme = if dark { "dark" } else { "light" };
            for (name, path) in &pages {
                browser.goto(&app.url(path)).await;
                if *name == "job" {
                    browser
                        .execute(
                            "document.querySelector('details.transcript').open = true; return true;",
                            vec![],
                        )
                        .await;
                }
                // Past the buttons' colour transitions.
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                browser
                    .screenshot(&shots.join(format!("ui-{name}-{size}-{scheme}.png")))
                    .await;
            }
            // The add form's other ways in.
            browser.goto(&app.url("/")).await;
            browser
                .click(
                    &browser
                        .find("#add-job details.more-options > summary")
                        .await,
                )
                .await;
            browser
                .screenshot(&shots.join(format!("ui-more-options-{size}-{scheme}.png")))
                .await;
        }
    }
    browser.quit().await;
}
