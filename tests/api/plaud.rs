//! Plaud share links through every link of the resolution chain.

use crate::helpers::{TestApp, logs_of};

async fn resolve_via(token: &str) -> (TestApp, serde_json::Value) {
    let app = TestApp::spawn().await;
    let job = app
        .create_job(&format!("https://web.plaud.ai/share/{token}"))
        .await;
    let job = app
        .wait_for_status(job["id"].as_str().unwrap(), "completed")
        .await;
    (app, job)
}

#[tokio::test]
async fn the_share_file_temp_api() {
    let (app, job) = resolve_via("temp").await;
    assert_eq!(
        job["resolved_url"],
        app.fakes.audio.url("plaud.mp3").as_str()
    );
    assert_eq!(
        job["meeting_date"], "2025-09-25T20:05:39.000Z",
        "from the page title"
    );
    assert_eq!(app.fakes.plaud.calls.get("page:temp"), 1);
    assert_eq!(app.fakes.plaud.calls.get("temp:temp"), 1);
    assert_eq!(
        app.fakes.plaud.calls.get("content:temp"),
        0,
        "the chain stops at the first URL"
    );
    assert!(logs_of(&job).contains("Plaud share-file-temp API gave the audio URL"));
}

#[tokio::test]
async fn the_share_content_api_with_its_date() {
    let (app, job) = resolve_via("content").await;
    assert_eq!(
        job["resolved_url"],
        app.fakes.audio.url("plaud.mp3").as_str()
    );
    // The page title has no date here: createTime gives it.
    assert_eq!(job["meeting_date"], "2025-09-25T20:05:39.000Z");
    let logs = logs_of(&job);
    assert!(
        logs.contains("Plaud share-file-temp API failed: the server answered 404 Not Found"),
        "{logs}"
    );
    assert!(
        logs.contains("Plaud share-content API gave the audio URL"),
        "{logs}"
    );
}

#[tokio::test]
async fn a_direct_link_in_the_page() {
    let (app, job) = resolve_via("direct").await;
    assert_eq!(
        job["resolved_url"],
        app.fakes.audio.url("plaud.mp3").as_str()
    );
    assert!(logs_of(&job).contains("Found the audio URL in the Plaud share page"));
}

#[tokio::test]
async fn double_escaped_next_data_in_the_page() {
    let (app, job) = resolve_via("nextdata").await;
    assert_eq!(
        job["resolved_url"],
        app.fakes.audio.url("plaud.mp3").as_str()
    );
}

#[tokio::test]
async fn a_json_url_field_in_the_page() {
    let (app, job) = resolve_via("field").await;
    assert_eq!(
        job["resolved_url"],
        app.fakes.audio.url("plaud.mp3").as_str()
    );
}

#[tokio::test]
async fn a_user_given_meeting_date_wins_over_the_pages() {
    let app = TestApp::spawn().await;
    let job = app
        .create_job_with(serde_json::json!({
            "url": "https://web.plaud.ai/share/temp",
            "meetingDate": "2024-01-02 03:04:05"
        }))
        .await;
    let job = app
        .wait_for_status(job["id"].as_str().unwrap(), "completed")
        .await;
    assert_eq!(job["meeting_date"], "2024-01-02T03:04:05.000Z");
}

#[tokio::test]
async fn when_nothing_is_found_the_link_itself_is_tried() {
    let app = TestApp::spawn().await;
    let job = app.create_job("https://web.plaud.ai/share/none").await;
    let id = job["id"].as_str().unwrap();
    let job = app
        .wait_for(id, "resolution", |job| job.get("resolved_url").is_some())
        .await;
    assert_eq!(job["resolved_url"], "https://web.plaud.ai/share/none");
    let logs = logs_of(&job);
    assert!(
        logs.contains("The Plaud share page names no audio URL"),
        "{logs}"
    );
    assert!(logs.contains("trying the link itself"), "{logs}");
}
