//! The log stream: existing lines first, live lines after, a status event and the end.

use std::time::Duration;

use serde_json::Value;

use crate::fakes::LlmBehaviour;
use crate::helpers::TestApp;

/// Reads a whole SSE body into (event, data) pairs; fails if it does not end by itself.
async fn read_events(response: reqwest::Response) -> Vec<(String, Value)> {
    let body = tokio::time::timeout(Duration::from_secs(20), response.text())
        .await
        .expect("the stream ends when the job ends")
        .unwrap();
    let mut events = Vec::new();
    for block in body.split("\n\n") {
        let mut event = String::from("message");
        let mut data = String::new();
        for line in block.lines() {
            if let Some(value) = line
                .strip_prefix("event: ")
                .or_else(|| line.strip_prefix("event:"))
            {
                event = value.to_string();
            } else if let Some(value) = line
                .strip_prefix("data: ")
                .or_else(|| line.strip_prefix("data:"))
            {
                data.push_str(value);
            }
        }
        if !data.is_empty() {
            events.push((event, serde_json::from_str(&data).unwrap()));
        }
    }
    events
}

#[tokio::test]
async fn the_stream_sends_existing_lines_then_live_ones_and_ends_with_the_status() {
    let app = TestApp::spawn().await;
    app.fakes.llm.set(LlmBehaviour {
        slow: true,
        ..Default::default()
    });
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let id = job["id"].as_str().unwrap();
    app.wait_for_status(id, "summarizing").await;

    let response = app.get(&format!("/api/jobs/{id}/logs/stream")).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = read_events(response).await;
    let (last_event, last_data) = events.last().unwrap();
    assert_eq!(last_event, "status");
    assert_eq!(last_data["status"], "completed");
    let messages: Vec<&str> = events
        .iter()
        .filter(|(event, _)| event == "message")
        .map(|(_, data)| data["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages[0], "Job created", "existing lines come first");
    assert!(
        messages.contains(&"Summary saved (266 characters)")
            || messages.iter().any(|m| m.starts_with("Summary saved"))
    );
    assert_eq!(
        *messages.last().unwrap(),
        "Job completed",
        "live lines follow to the end"
    );
    assert!(
        events
            .iter()
            .all(|(event, data)| event != "message" || data["ts"].is_i64())
    );
    // No line twice.
    let mut seen = std::collections::HashSet::new();
    let stored: Value = app.job(id).await;
    assert_eq!(messages.len(), stored["logs"].as_array().unwrap().len());
    for message in &messages {
        seen.insert(*message);
    }
}

#[tokio::test]
async fn a_finished_jobs_stream_replays_and_closes_at_once() {
    let app = TestApp::spawn().await;
    let job = app.create_job(&app.fakes.audio.url("page.html")).await;
    let id = job["id"].as_str().unwrap();
    app.wait_for_status(id, "error").await;
    let events = read_events(app.get(&format!("/api/jobs/{id}/logs/stream")).await).await;
    assert_eq!(events.last().unwrap().0, "status");
    assert_eq!(events.last().unwrap().1["status"], "error");
    assert!(events.len() > 3);
}
