//! Checkpoints, retries, re-summaries, deletes, restarts and crashes.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fakes::{AssemblyBehaviour, LlmBehaviour};
use crate::helpers::{Fakes, ServerProcess, TestApp, files_in, logs_of};

#[tokio::test]
async fn retry_resumes_after_the_checkpoint_and_a_full_retry_starts_over() {
    let app = TestApp::spawn().await;
    app.fakes.llm.set(LlmBehaviour {
        fail_with_400: 1,
        ..Default::default()
    });
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let id = job["id"].as_str().unwrap();
    let failed = app.wait_for_status(id, "error").await;
    assert_eq!(failed["checkpoint"], json!({ "step": "transcribe" }));
    assert_eq!(failed["attempts"], 1);

    let response = app
        .client
        .post(app.url(&format!("/api/jobs/{id}/retry")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["success"], true);
    assert_eq!(
        body["message"],
        "Job queued to resume at the summarize stage"
    );
    let job = app.wait_for_status(id, "completed").await;
    assert_eq!(job["attempts"], 2);
    assert_eq!(
        app.fakes.audio.calls.get("meeting.mp3"),
        1,
        "no second download"
    );
    assert_eq!(
        app.fakes.assemblyai.calls.get("upload"),
        1,
        "no second upload"
    );
    assert!(logs_of(&job).contains("resuming at the summarize stage"));

    let response = app
        .client
        .post(app.url(&format!("/api/jobs/{id}/retry?full=true")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let job = app.wait_for_status(id, "completed").await;
    assert_eq!(
        app.fakes.audio.calls.get("meeting.mp3"),
        2,
        "a full retry downloads again"
    );
    assert_eq!(app.fakes.assemblyai.calls.get("upload"), 2);
    assert!(job["title"].is_string());
}

#[tokio::test]
async fn regenerate_and_resummarize_write_a_new_summary() {
    let app = TestApp::spawn().await;
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let id = job["id"].as_str().unwrap();
    let first = app.wait_for_status(id, "completed").await;
    assert!(first["summary"].as_str().unwrap().contains("Version 1."));

    let response = app
        .client
        .post(app.url(&format!("/api/jobs/{id}/regenerate-summary")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "success": true, "message": "Summary regeneration started" })
    );
    let second = app
        .wait_for(id, "a second summary", |job| {
            job["status"] == "completed"
                && job["summary"]
                    .as_str()
                    .is_some_and(|s| s.contains("Version 2."))
        })
        .await;
    let on_disk =
        crate::storage::read_artifact_text(&app.data_dir, second["summary_path"].as_str().unwrap());
    assert!(on_disk.contains("Version 2."));

    // resummarize answers the job itself (the original answered an empty object).
    let response = app
        .client
        .post(app.url(&format!("/api/jobs/{id}/resummarize")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], id);
    assert_eq!(body["status"], "queued");
    app.wait_for(id, "a third summary", |job| {
        job["status"] == "completed"
            && job["summary"]
                .as_str()
                .is_some_and(|s| s.contains("Version 3."))
    })
    .await;
    assert_eq!(
        app.fakes.assemblyai.calls.get("upload"),
        1,
        "the transcript was reused"
    );
}

#[tokio::test]
async fn running_jobs_refuse_retry_and_regenerate_with_409() {
    let app = TestApp::spawn().await;
    app.fakes.assemblyai.set(AssemblyBehaviour {
        polls_before_done: usize::MAX,
        error: None,
    });
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let id = job["id"].as_str().unwrap();
    app.wait_for_status(id, "transcribing").await;
    for path in [
        "retry",
        "retry?full=true",
        "regenerate-summary",
        "resummarize",
    ] {
        let response = app
            .client
            .post(app.url(&format!("/api/jobs/{id}/{path}")))
            .send()
            .await
            .unwrap();
        // regenerate needs a transcript, which a transcribing job does not have yet: 400 first.
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert!(
            status == 409 || (status == 400 && path != "retry" && path != "retry?full=true"),
            "{path}: {status} {body}"
        );
        assert!(body["error"].is_string());
    }
}

#[tokio::test]
async fn delete_removes_the_job_and_every_file() {
    let app = TestApp::spawn().await;
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let id = job["id"].as_str().unwrap().to_string();
    app.wait_for_status(&id, "completed").await;
    assert_eq!(app.files_in("files").len(), 1);
    assert_eq!(app.files_in("transcripts").len(), 2, "text and utterances");
    assert_eq!(app.files_in("summaries").len(), 1);

    let response = app
        .client
        .delete(app.url(&format!("/api/jobs/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "success": true })
    );
    for folder in ["files", "transcripts", "summaries"] {
        assert!(app.files_in(folder).is_empty(), "{folder} still has files");
    }
    assert_eq!(app.get(&format!("/api/jobs/{id}")).await.status(), 404);
    let response = app
        .client
        .delete(app.url(&format!("/api/jobs/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn deleting_a_running_job_stops_it() {
    let app = TestApp::spawn().await;
    app.fakes.assemblyai.set(AssemblyBehaviour {
        polls_before_done: usize::MAX,
        error: None,
    });
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let id = job["id"].as_str().unwrap().to_string();
    app.wait_for_status(&id, "transcribing").await;
    let response = app
        .client
        .delete(app.url(&format!("/api/jobs/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let polls = app.fakes.assemblyai.calls.get("poll");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        app.fakes.assemblyai.calls.get("poll") <= polls + 1,
        "the pipeline kept polling"
    );
    // The files go with the job (at once, or once a pipeline slow to stop has let go).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !app.files_in("files").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "files left after the delete: {:?}",
            app.files_in("files")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_hundred_concurrent_creations_persist_with_unique_ids_across_a_restart() {
    let app = TestApp::spawn_with(|config| {
        // Keep the worker busy-free: nothing to fetch.
        config.openai_api_key = None;
        config.assemblyai_api_key = None;
    })
    .await;
    let url = app.fakes.audio.url("meeting.mp3");
    let mut tasks = Vec::new();
    for n in 0..200 {
        let client = app.client.clone();
        let endpoint = app.url("/api/jobs");
        let url = format!("{url}?n={n}");
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(endpoint)
                .json(&json!({ "url": url }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
            response.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 200);

    let app = app.restart().await;
    let list: Value = app.get("/api/jobs").await.json().await.unwrap();
    let listed: std::collections::HashSet<&str> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 200);
    for id in &ids {
        assert!(listed.contains(id.as_str()), "{id} lost");
    }
}

#[tokio::test]
async fn the_list_is_newest_meeting_first() {
    let app = TestApp::spawn_with(|config| config.worker_concurrency = 1).await;
    let url = app.fakes.audio.url("meeting.mp3");
    let old = app
        .create_job_with(json!({ "url": url, "meetingDate": "2020-01-01" }))
        .await;
    let new = app
        .create_job_with(json!({ "url": url, "meetingDate": "2030-01-01" }))
        .await;
    let mid = app
        .create_job_with(json!({ "url": url, "meetingDate": "2025-06-01" }))
        .await;
    let list: Value = app.get("/api/jobs").await.json().await.unwrap();
    let order: Vec<&str> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        vec![
            new["id"].as_str().unwrap(),
            mid["id"].as_str().unwrap(),
            old["id"].as_str().unwrap()
        ]
    );
}

#[tokio::test]
async fn a_server_killed_in_transcription_resumes_without_uploading_again() {
    let fakes = Fakes::start().await;
    fakes.assemblyai.set(AssemblyBehaviour {
        polls_before_done: usize::MAX,
        error: None,
    });
    let data = tempfile::tempdir().unwrap();
    let env = fakes.env();
    let mut server = ServerProcess::start(data.path(), &env).await;
    let created: Value = server
        .post_json(
            "/api/jobs",
            json!({ "url": fakes.audio.url("meeting.mp3") }),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    // Wait until AssemblyAI is being polled: the upload and the transcript exist.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while fakes.assemblyai.calls.get("poll") < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "transcription never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill9();

    fakes.assemblyai.set(AssemblyBehaviour {
        polls_before_done: 0,
        error: None,
    });
    let server = ServerProcess::start(data.path(), &env).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let job = loop {
        let job: Value = server.get_json(&format!("/api/jobs/{id}")).await;
        if job["status"] == "completed" {
            break job;
        }
        assert_ne!(job["status"], "error", "{job:#}");
        assert!(
            std::time::Instant::now() < deadline,
            "not completed: {job:#}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    };
    assert_eq!(
        fakes.assemblyai.calls.get("upload"),
        1,
        "the audio was uploaded again"
    );
    assert_eq!(fakes.assemblyai.calls.get("create"), 1);
    assert_eq!(
        fakes.audio.calls.get("meeting.mp3"),
        1,
        "the audio was downloaded again"
    );
    assert!(logs_of(&job).contains("Resuming: polling AssemblyAI transcript tr-1"));
    assert_eq!(job["attempts"], 2);
    assert!(
        files_in(&data.path().join("files"))
            .iter()
            .all(|name| !name.ends_with(".part"))
    );
}

#[tokio::test]
async fn sigterm_stops_the_server_quickly_and_the_job_resumes() {
    let fakes = Fakes::start().await;
    fakes.assemblyai.set(AssemblyBehaviour {
        polls_before_done: usize::MAX,
        error: None,
    });
    let data = tempfile::tempdir().unwrap();
    let env = fakes.env();
    let mut server = ServerProcess::start(data.path(), &env).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let created: Value = server
        .post_json(
            "/api/jobs",
            json!({ "url": fakes.audio.url("meeting.mp3") }),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    // A log stream is open while the server stops: it must not hold the shutdown up.
    let stream = client
        .get(format!("{}/api/jobs/{id}/logs/stream", server.address))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    while fakes.assemblyai.calls.get("poll") < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, took) = tokio::task::spawn_blocking(move || {
        let result = server.terminate();
        drop(server);
        result
    })
    .await
    .unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    drop(stream);

    fakes.assemblyai.set(AssemblyBehaviour {
        polls_before_done: 0,
        error: None,
    });
    let server = ServerProcess::start(data.path(), &env).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let job: Value = server.get_json(&format!("/api/jobs/{id}")).await;
        if job["status"] == "completed" {
            assert!(logs_of(&job).contains("Interrupted by shutdown"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not completed: {job:#}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(fakes.assemblyai.calls.get("upload"), 1);
}
