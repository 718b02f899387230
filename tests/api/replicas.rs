//! Replicas and their health. Two applications on one PostgreSQL database: what one writes, the other
//! shows at once, and a job queued on one wakes the other's idle worker. Meaningful only with
//! PostgreSQL (SQLite's events stay within one process): skipped without it.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fakes::AssemblyBehaviour;
use crate::helpers::{Fakes, TestApp, logs_of, test_config};

async fn listed(app: &TestApp) -> usize {
    let list: Value = app.get("/api/jobs").await.json().await.unwrap();
    list["jobs"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_second_replica_shows_the_firsts_lines_lists_its_jobs_and_wakes_for_its_queue() {
    if !crate::database::on_postgres() {
        eprintln!(
            "skipped on SQLite: live events shared by two processes need PostgreSQL (FOCUSFLOW_TEST_DATABASE_URL)"
        );
        return;
    }
    let fakes = Fakes::start().await;
    // Transcription waits until the test lets it finish.
    fakes.assemblyai.set(AssemblyBehaviour {
        polls_before_done: usize::MAX,
        error: None,
    });
    let data = tempfile::tempdir().unwrap();
    let mut config = test_config(data.path(), &fakes);
    // One worker each: the first's is busy with the first job, so only the second can take
    // the next one.
    config.worker_concurrency = 1;
    let first = TestApp::start(config.clone(), fakes.clone()).await;
    let job = first.create_job(&fakes.audio.url("meeting.mp3")).await;
    let id = job["id"].as_str().unwrap().to_string();
    first.wait_for_status(&id, "transcribing").await;

    // The second starts beside it (same database, same files) and leaves the job to the first.
    let second = TestApp::start(first.config.clone(), fakes.clone()).await;
    assert_eq!(listed(&second).await, 1);
    let stream = second.get(&format!("/api/jobs/{id}/logs/stream")).await;
    assert_eq!(stream.status(), 200);

    // A job created on the first: the second's listing shows it within a second (its cache
    // does not outlive the other's write), and the second's idle worker starts it at once.
    let started = Instant::now();
    let other = first.create_job(&fakes.audio.url("meeting.mp3")).await;
    let other_id = other["id"].as_str().unwrap().to_string();
    loop {
        if listed(&second).await == 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the second replica's listing missed the first's new job"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let taken = second
        .wait_for(&other_id, "a worker takes the new job", |job| {
            job["status"] != "queued"
        })
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the new job waited for a poll instead of a wake-up: {taken:#}"
    );

    // The first finishes its job: the second's stream shows the lines the first writes, and
    // ends with the status.
    fakes.assemblyai.set(AssemblyBehaviour::default());
    let body = tokio::time::timeout(Duration::from_secs(20), stream.text())
        .await
        .expect("the second's stream ends when the first finishes the job")
        .unwrap();
    assert!(body.contains("Transcript saved"), "{body}");
    assert!(body.contains("Job completed"), "{body}");
    assert!(body.contains("event: status"), "{body}");
    let done = second.wait_for_status(&id, "completed").await;
    assert_eq!(done["attempts"], 1, "the first ran it alone: {done:#}");
    assert!(!logs_of(&done).contains("Taken over"), "{done:#}");
}

#[tokio::test]
async fn health_names_the_backends_in_use() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/health").await;
    assert_eq!(response.status(), 200);
    let health: Value = response.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let (database, events) = if crate::database::on_postgres() {
        ("postgresql", "postgresql")
    } else {
        ("sqlite", "in-process")
    };
    assert_eq!(health["backends"]["database"], database, "{health:#}");
    assert_eq!(health["backends"]["events"], events, "{health:#}");
    let storage = if crate::storage::on_s3() {
        "s3"
    } else {
        "local"
    };
    assert_eq!(health["backends"]["storage"], storage, "{health:#}");
    assert!(
        health["env"]["dataDir"].is_string(),
        "the contract's fields stay"
    );
}

/// While the database refuses connections, the health probe answers 503 (within about a
/// second: its check is reused that long), and 200 again once it is back.
#[tokio::test]
async fn health_is_503_while_postgresql_is_unreachable_and_recovers() {
    let Some(server) = crate::database::server_url() else {
        eprintln!("skipped on SQLite: the database is a file of the process itself");
        return;
    };
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/api/health").await.status(), 200);
    let database = app.config.database_url.as_ref().unwrap().database.clone();
    let (admin, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {database} ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}';"
        ))
        .await
        .unwrap();
    let until = |status: u16| {
        let app = &app;
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let response = app.get("/api/health").await;
                if response.status() == status {
                    return response.json::<Value>().await.unwrap();
                }
                assert!(Instant::now() < deadline, "health never answered {status}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let down = until(503).await;
    assert_eq!(down["status"], "error", "{down:#}");
    // Other requests fail as unavailable too, not with a wrong answer.
    let listing = app.get("/api/jobs?limit=5").await;
    assert!(listing.status().is_server_error(), "{}", listing.status());
    admin
        .batch_execute(&format!("ALTER DATABASE {database} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    let up = until(200).await;
    assert_eq!(up["status"], "ok");
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    app.wait_for_status(job["id"].as_str().unwrap(), "completed")
        .await;
}

/// A delete on one replica stops the pipeline another runs: its worker stops polling the
/// provider within 2 s, and nothing of the job is left.
#[tokio::test]
async fn a_delete_on_one_replica_stops_the_pipeline_on_another() {
    if !crate::database::on_postgres() {
        eprintln!(
            "skipped on SQLite: live events shared by two processes need PostgreSQL (FOCUSFLOW_TEST_DATABASE_URL)"
        );
        return;
    }
    let fakes = Fakes::start().await;
    fakes.assemblyai.set(AssemblyBehaviour {
        polls_before_done: usize::MAX,
        error: None,
    });
    let data = tempfile::tempdir().unwrap();
    let first = TestApp::start(test_config(data.path(), &fakes), fakes.clone()).await;
    let job = first.create_job(&fakes.audio.url("meeting.mp3")).await;
    let id = job["id"].as_str().unwrap().to_string();
    first.wait_for_status(&id, "transcribing").await;
    let second = TestApp::start(first.config.clone(), fakes.clone()).await;

    let response = second
        .client
        .delete(second.url(&format!("/api/jobs/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let polls = fakes.assemblyai.calls.get("poll");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        fakes.assemblyai.calls.get("poll"),
        polls,
        "the first replica still polls for a deleted job"
    );
    assert_eq!(first.get(&format!("/api/jobs/{id}")).await.status(), 404);
    assert!(
        first.files_in("files").is_empty(),
        "{:?}",
        first.files_in("files")
    );
}
