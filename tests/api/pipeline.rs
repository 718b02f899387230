//! The pipeline end to end: download, transcription, summary and title, and what happens when
//! a provider misbehaves.

use serde_json::json;

use crate::fakes::{self, AssemblyBehaviour, LlmBehaviour, TITLE};
use crate::helpers::{TestApp, logs_of};

#[tokio::test]
async fn a_direct_audio_url_becomes_a_summary_and_a_title() {
    let app = TestApp::spawn().await;
    let url = app.fakes.audio.url("meeting.mp3");
    let created = app
        .create_job_with(json!({ "url": url, "meetingDate": "2025-09-25T20:05:39Z" }))
        .await;
    assert_eq!(created["status"], "queued");
    assert_eq!(created["meeting_date"], "2025-09-25T20:05:39.000Z");
    let id = created["id"].as_str().unwrap();

    let job = app.wait_for_status(id, "completed").await;
    assert_eq!(job["title"], TITLE);
    assert_eq!(job["resolved_url"], url.as_str());
    assert_eq!(job["checkpoint"], json!({ "step": "summarize" }));
    assert_eq!(job["attempts"], 1);
    assert!(job.get("error").is_none());
    let summary = job["summary"].as_str().unwrap();
    assert!(
        summary.contains("| Ship the beta | Speaker B |"),
        "{summary}"
    );
    let transcript = job["transcript"].as_str().unwrap();
    assert_eq!(
        transcript,
        "[Speaker A]: Hello everyone. Let's plan the launch.\n\n[Speaker B]: I will ship the beta by Friday."
    );
    // Paths are relative to the data directory: no server path is shown.
    for field in ["summary_path", "transcript_path", "file_path"] {
        let path = job[field].as_str().unwrap();
        assert!(std::path::Path::new(path).is_relative(), "{field} {path}");
        assert!(
            !crate::storage::read_artifact(&app.data_dir, path).is_empty(),
            "{field} {path}"
        );
    }
    assert_eq!(job["transcript_path"], format!("transcripts/{id}.txt"));
    assert!(job["file_path"].as_str().unwrap().ends_with(".mp3"));
    // The whole audio reached AssemblyAI, streamed from disk.
    assert_eq!(app.fakes.assemblyai.uploaded_bytes(), 4096);
    let utterances: serde_json::Value = serde_json::from_str(&crate::storage::read_artifact_text(
        &app.data_dir,
        &format!("transcripts/{id}.json"),
    ))
    .unwrap();
    assert_eq!(utterances["utterances"].as_array().unwrap().len(), 3);

    // The prompt carried the transcript and the meeting date in words.
    let prompts = app.fakes.llm.prompts.lock().unwrap().clone();
    assert!(prompts[0].contains("[Speaker B]: I will ship the beta by Friday."));
    assert!(prompts[0].contains("Thursday, 25 September 2025, 20:05 UTC"));
    assert!(prompts[1].contains("Version 1. The team planned the launch."));

    let logs = logs_of(&job);
    for expected in [
        "Job created",
        "Downloaded",
        "AssemblyAI transcript",
        "Summary saved",
        "Job completed",
    ] {
        assert!(logs.contains(expected), "missing {expected:?} in\n{logs}");
    }
    // A log line is the original's shape: "[ISO time] message".
    assert!(job["logs"][0].as_str().unwrap().starts_with("[20"));
}

#[tokio::test]
async fn the_responses_style_streams_too_and_junk_lines_are_skipped() {
    let app = TestApp::spawn_with(|config| {
        config.openai_api_style = focusflow::config::ApiStyle::Responses;
    })
    .await;
    app.fakes.llm.set(LlmBehaviour {
        junk: true,
        ..Default::default()
    });
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let job = app
        .wait_for_status(job["id"].as_str().unwrap(), "completed")
        .await;
    assert_eq!(
        job["summary"].as_str().unwrap(),
        fakes::summary_text(1).trim()
    );
    assert_eq!(job["title"], TITLE);
}

#[tokio::test]
async fn junk_lines_in_a_chat_stream_are_skipped() {
    let app = TestApp::spawn().await;
    app.fakes.llm.set(LlmBehaviour {
        junk: true,
        ..Default::default()
    });
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let job = app
        .wait_for_status(job["id"].as_str().unwrap(), "completed")
        .await;
    assert_eq!(
        job["summary"].as_str().unwrap(),
        fakes::summary_text(1).trim()
    );
}

#[tokio::test]
async fn two_503s_from_the_llm_heal_without_a_manual_retry() {
    let app = TestApp::spawn().await;
    app.fakes.llm.set(LlmBehaviour {
        fail_with_503: 2,
        ..Default::default()
    });
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let job = app
        .wait_for_status(job["id"].as_str().unwrap(), "completed")
        .await;
    assert_eq!(app.fakes.llm.calls.get("503"), 2);
    assert_eq!(app.fakes.llm.summary_calls(), 1);
    assert_eq!(job["attempts"], 1, "healed inside the stage");
    let logs = logs_of(&job);
    assert!(logs.contains("503 Service Unavailable"), "{logs}");
    assert!(logs.contains("trying again"), "{logs}");
}

#[tokio::test]
async fn a_4xx_from_the_llm_fails_at_once_with_its_message() {
    let app = TestApp::spawn().await;
    app.fakes.llm.set(LlmBehaviour {
        fail_with_400: 5,
        ..Default::default()
    });
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let job = app
        .wait_for_status(job["id"].as_str().unwrap(), "error")
        .await;
    assert_eq!(app.fakes.llm.calls.get("400"), 1, "no retry of a 400");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("maximum context length"), "{error}");
    assert_eq!(job["checkpoint"], json!({ "step": "transcribe" }));
}

#[tokio::test]
async fn assemblyai_error_status_becomes_the_jobs_error() {
    let app = TestApp::spawn().await;
    app.fakes.assemblyai.set(AssemblyBehaviour {
        polls_before_done: 1,
        error: Some("Transcoding failed. File does not appear to contain audio.".into()),
    });
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let job = app
        .wait_for_status(job["id"].as_str().unwrap(), "error")
        .await;
    assert_eq!(
        job["error"],
        "AssemblyAI could not transcribe the audio: Transcoding failed. File does not appear to contain audio."
    );
    assert_eq!(job["checkpoint"], json!({ "step": "download" }));
    assert_eq!(app.fakes.llm.summary_calls(), 0);
}

#[tokio::test]
async fn a_url_that_serves_html_is_refused_clearly() {
    let app = TestApp::spawn().await;
    let job = app.create_job(&app.fakes.audio.url("page.html")).await;
    let job = app
        .wait_for_status(job["id"].as_str().unwrap(), "error")
        .await;
    assert_eq!(job["error"], "the URL did not serve audio (got text/html)");
    assert!(app.files_in("files").is_empty());
}

#[tokio::test]
async fn video_and_extensionless_audio_are_accepted_by_their_type() {
    let app = TestApp::spawn().await;
    let zoom = app.create_job(&app.fakes.audio.url("zoom.mp4")).await;
    let bare = app.create_job(&app.fakes.audio.url("recording")).await;
    let zoom = app
        .wait_for_status(zoom["id"].as_str().unwrap(), "completed")
        .await;
    let bare = app
        .wait_for_status(bare["id"].as_str().unwrap(), "completed")
        .await;
    assert!(zoom["file_path"].as_str().unwrap().ends_with(".mp4"));
    assert!(bare["file_path"].as_str().unwrap().ends_with(".m4a"));
}

#[tokio::test]
async fn a_missing_audio_file_fails_with_the_servers_answer() {
    let app = TestApp::spawn().await;
    let job = app.create_job(&app.fakes.audio.url("missing.mp3")).await;
    let job = app
        .wait_for_status(job["id"].as_str().unwrap(), "error")
        .await;
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("404 Not Found"), "{error}");
    assert_eq!(
        app.fakes.audio.calls.get("missing.mp3"),
        1,
        "a 404 is not retried"
    );
}

#[tokio::test]
async fn the_size_limit_holds_with_and_without_content_length() {
    let app = TestApp::spawn_with(|config| config.max_download_bytes = 10_000).await;
    for name in ["large.mp3", "large-stream.mp3"] {
        let job = app.create_job(&app.fakes.audio.url(name)).await;
        let job = app
            .wait_for_status(job["id"].as_str().unwrap(), "error")
            .await;
        let error = job["error"].as_str().unwrap();
        assert!(error.contains("largest recording"), "{name}: {error}");
        assert!(
            app.files_in("files").is_empty(),
            "{name}: partial files were left"
        );
    }
}

#[tokio::test]
async fn without_provider_keys_the_stages_are_skipped_and_the_job_completes() {
    let app = TestApp::spawn_with(|config| {
        config.openai_api_key = None;
        config.assemblyai_api_key = None;
    })
    .await;
    let health: serde_json::Value = app.get("/api/health").await.json().await.unwrap();
    assert_eq!(health["env"]["openai"], false);
    assert_eq!(health["env"]["assemblyai"], false);
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let job = app
        .wait_for_status(job["id"].as_str().unwrap(), "completed")
        .await;
    let logs = logs_of(&job);
    assert!(
        logs.contains("Transcription skipped: no transcription provider is configured"),
        "{logs}"
    );
    assert!(
        logs.contains("Summary skipped: there is no transcript"),
        "{logs}"
    );
    assert_eq!(app.fakes.assemblyai.calls.get("upload"), 0);
}

#[tokio::test]
async fn a_job_over_its_time_budget_fails_saying_so() {
    let app =
        TestApp::spawn_with(|config| config.job_timeout = std::time::Duration::from_secs(1)).await;
    app.fakes.assemblyai.set(AssemblyBehaviour {
        polls_before_done: usize::MAX,
        error: None,
    });
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let job = app
        .wait_for_status(job["id"].as_str().unwrap(), "error")
        .await;
    assert_eq!(
        job["error"],
        "the job took longer than its time budget of 1 s"
    );
}

#[tokio::test]
async fn the_summary_grows_while_it_streams() {
    let app = TestApp::spawn().await;
    app.fakes.llm.set(LlmBehaviour {
        slow: true,
        ..Default::default()
    });
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let id = job["id"].as_str().unwrap();
    let full = fakes::summary_text(1);
    let partial = app
        .wait_for(id, "a partial summary", |job| {
            job["status"] == "summarizing"
                && job["summary"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty() && s.len() < full.trim().len())
        })
        .await;
    assert!(full.starts_with(partial["summary"].as_str().unwrap()));
    app.wait_for_status(id, "completed").await;
}

/// Why a job failed is stored as a kind beside its text, the job page's hint follows that kind,
/// and the job's JSON is as it was (no field for the kind).
#[tokio::test]
async fn a_failed_jobs_kind_is_stored_and_picks_the_pages_hint() {
    use focusflow::jobs::{ErrorKind, JobId};

    let app = TestApp::spawn().await;
    let html = app.create_job(&app.fakes.audio.url("page.html")).await;
    let missing = app.create_job(&app.fakes.audio.url("missing.mp3")).await;
    let html = html["id"].as_str().unwrap();
    let missing = missing["id"].as_str().unwrap();
    let html_json = app.wait_for_status(html, "error").await;
    app.wait_for_status(missing, "error").await;
    assert!(html_json.get("error_kind").is_none(), "{html_json}");
    assert!(html_json.get("errorKind").is_none(), "{html_json}");

    let store = focusflow::store::Store::connect(&app.config).await.unwrap();
    let kind_of = |id: &str| {
        let store = store.clone();
        let id = JobId::parse(id).unwrap();
        async move { store.job(&id).await.unwrap().error_kind }
    };
    assert_eq!(kind_of(html).await, Some(ErrorKind::NotAudio));
    assert_eq!(kind_of(missing).await, Some(ErrorKind::LinkNotFound));

    let mut browser = crate::pages::Browser::new(&app);
    let page = browser.page(&format!("/jobs/{html}")).await;
    assert!(
        page.contains("The link opened a web page, not a recording."),
        "{page}"
    );
    let page = browser.page(&format!("/jobs/{missing}")).await;
    assert!(!page.contains("The link opened a web page"), "{page}");
    assert!(
        page.contains("Retrying resumes after the last stage that finished"),
        "{page}"
    );
}
