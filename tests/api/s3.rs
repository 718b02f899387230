//! Artifacts in S3-compatible storage, against the real server `.ci/s3.sh` starts (these tests
//! say they are skipped without `FOCUSFLOW_TEST_STORAGE_URL`): the objects a job makes, the
//! player's Range requests served from the bucket, delete, the orphan sweep, the store going
//! away mid-download, and `focusflow migrate` from a single-machine DATA_DIR.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use focusflow::jobs::JobId;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::fakes;
use crate::helpers::{Fakes, TestApp, files_in, focusflow_binary, test_config};
use crate::storage::{bucket_of, skipped_without_s3, url_for};

/// Larger than two 5 MiB parts: the download goes up as a multipart upload of three parts.
const AUDIO_BYTES: usize = 12 << 20;

/// A loopback server of one MP3 of `size` bytes at `/big.mp3`; returns its URL and the bytes.
async fn big_audio(size: usize) -> (String, Vec<u8>) {
    let body = fakes::fake_mp3(size);
    let served = body.clone();
    let router = Router::new().route(
        "/big.mp3",
        get(move || {
            let served = served.clone();
            async move { ([(header::CONTENT_TYPE, "audio/mpeg")], served) }
        }),
    );
    (format!("{}/big.mp3", fakes::serve(router).await), body)
}

async fn object_names(app: &TestApp, id: &str) -> Vec<(String, u64)> {
    let mut names = bucket_of(&app.config)
        .list_job(&JobId::parse(id).unwrap())
        .await
        .unwrap();
    names.sort();
    names
}

#[tokio::test]
async fn a_job_keeps_its_artifacts_in_the_bucket_and_the_player_reads_ranges_from_it() {
    if skipped_without_s3("the S3 round trip") {
        return;
    }
    let app = TestApp::spawn().await;
    let health: Value = app.get("/api/health").await.json().await.unwrap();
    assert_eq!(health["backends"]["storage"], "s3", "{health:#}");
    let (url, audio) = big_audio(AUDIO_BYTES).await;
    let created = app.create_job(&url).await;
    let id = created["id"].as_str().unwrap().to_string();
    let job = app.wait_for_status(&id, "completed").await;
    assert!(
        job["transcript"]
            .as_str()
            .unwrap()
            .contains("ship the beta"),
        "{job:#}"
    );
    assert!(job["summary"].as_str().unwrap().contains("Ship the beta"));

    assert_eq!(
        object_names(&app, &id)
            .await
            .into_iter()
            .map(|(name, _)| name)
            .collect::<Vec<_>>(),
        [
            format!("files/{id}.mp3"),
            format!("summaries/{id}.md"),
            format!("transcripts/{id}.json"),
            format!("transcripts/{id}.txt"),
        ]
    );
    let (_, size) = object_names(&app, &id).await[0].clone();
    assert_eq!(size, AUDIO_BYTES as u64);
    // The provider got the whole recording from a temporary copy, gone now; the data folder
    // holds no artifact.
    assert_eq!(app.fakes.assemblyai.uploaded_bytes(), AUDIO_BYTES);
    for folder in ["files", "transcripts", "summaries"] {
        let local = files_in(&app.data_dir.join(folder));
        assert!(local.is_empty(), "{folder}: {local:?}");
    }
    let summary = bucket_of(&app.config)
        .read_text(&format!("summaries/{id}.md"))
        .await
        .unwrap()
        .unwrap();
    assert!(summary.contains("Ship the beta"), "{summary}");

    // The player's requests: a range, the last bytes, the whole, past the end.
    let audio_url = app.url(&format!("/jobs/{id}/audio"));
    let response = app
        .client
        .get(&audio_url)
        .header("Range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(
        response.headers()["content-range"],
        format!("bytes 1000-1999/{AUDIO_BYTES}").as_str()
    );
    assert_eq!(response.headers()["content-type"], "audio/mpeg");
    assert_eq!(response.bytes().await.unwrap(), audio[1000..2000]);
    let response = app
        .client
        .get(&audio_url)
        .header("Range", "bytes=-100")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(response.bytes().await.unwrap(), audio[AUDIO_BYTES - 100..]);
    let response = app.client.get(&audio_url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["accept-ranges"], "bytes");
    assert_eq!(response.bytes().await.unwrap(), audio);
    let response = app
        .client
        .get(&audio_url)
        .header("Range", format!("bytes={AUDIO_BYTES}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 416);
    // The audio export streams from the bucket too.
    let response = app
        .get(&format!("/api/jobs/{id}/export?format=audio"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().len(), AUDIO_BYTES);

    // Delete removes every object of the job.
    let deleted = app
        .client
        .delete(app.url(&format!("/api/jobs/{id}")))
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    assert!(object_names(&app, &id).await.is_empty());
    let response = app.client.get(&audio_url).send().await.unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn an_upload_goes_to_the_bucket_and_the_sweep_removes_only_orphans_past_their_grace() {
    if skipped_without_s3("the orphan sweep") {
        return;
    }
    let app = TestApp::spawn().await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(fakes::fake_mp3(4096))
            .file_name("standup.mp3")
            .mime_str("audio/mpeg")
            .unwrap(),
    );
    let response = app
        .client
        .post(app.url("/api/jobs"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    app.wait_for_status(&id, "completed").await;
    assert_eq!(
        object_names(&app, &id).await[0],
        (format!("files/{id}.mp3"), 4096)
    );
    let local = files_in(&app.data_dir.join("files"));
    assert!(local.is_empty(), "{local:?}");

    // What a crash between an upload and its job's commit leaves: objects of no job.
    let bucket = bucket_of(&app.config);
    bucket
        .write("files/ghost.mp3", bytes::Bytes::from_static(b"orphan"))
        .await
        .unwrap();
    bucket
        .write("summaries/ghost.md", bytes::Bytes::from_static(b"orphan"))
        .await
        .unwrap();
    let exists = |id: JobId| {
        let client = app.client.clone();
        let url = app.url(&format!("/api/jobs/{id}"));
        async move {
            let status = client
                .get(url)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .status();
            Ok(status != 404)
        }
    };
    // Within the grace period (another replica may be about to commit the job): kept.
    assert_eq!(
        bucket
            .sweep_orphans(focusflow::ORPHAN_GRACE, exists)
            .await
            .unwrap(),
        0
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        bucket
            .sweep_orphans(Duration::from_secs(1), exists)
            .await
            .unwrap(),
        2
    );
    let ghost = JobId::parse("ghost").unwrap();
    assert!(bucket.list_job(&ghost).await.unwrap().is_empty());
    // The job that exists keeps everything.
    assert_eq!(object_names(&app, &id).await.len(), 4);
}

/// A TCP forwarder to `target` that can be switched off: then it refuses new connections and
/// cuts the ones open, as a store that went away does.
async fn switch(target: String) -> (String, Arc<AtomicBool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let up = Arc::new(AtomicBool::new(true));
    let flag = up.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            if !flag.load(Ordering::SeqCst) {
                drop(inbound);
                continue;
            }
            let flag = flag.clone();
            let target = target.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                let cut = async {
                    while flag.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = cut => {}
                }
            });
        }
    });
    (format!("http://{address}"), up)
}

#[tokio::test]
async fn the_store_going_away_mid_download_fails_the_job_clearly_and_a_retry_succeeds() {
    if skipped_without_s3("the object store fault test") {
        return;
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("s3.sh exports AWS_ENDPOINT_URL");
    let (proxy, up) = switch(endpoint.trim_start_matches("http://").to_string()).await;
    let app = TestApp::spawn_with(|config| {
        let mut url = url_for(&config.data_dir).unwrap();
        url.endpoint = Some(proxy.clone());
        config.storage_url = Some(url);
    })
    .await;
    let (url, audio) = big_audio(AUDIO_BYTES).await;
    up.store(false, Ordering::SeqCst);
    let created = app.create_job(&url).await;
    let id = created["id"].as_str().unwrap().to_string();
    let failed = app.wait_for_status(&id, "error").await;
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("could not store the audio") && error.contains("object store"),
        "{error}"
    );
    assert!(!error.contains("focusflow-test-secret"), "{error}");
    up.store(true, Ordering::SeqCst);
    // Nothing half-written is visible.
    assert!(object_names(&app, &id).await.is_empty());

    let retried = app
        .client
        .post(app.url(&format!("/api/jobs/{id}/retry")))
        .send()
        .await
        .unwrap();
    assert!(retried.status().is_success(), "{}", retried.status());
    app.wait_for_status(&id, "completed").await;
    let response = app
        .client
        .get(app.url(&format!("/jobs/{id}/audio")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.bytes().await.unwrap(), audio);
}

/// A plain single-machine install (SQLite and files in its DATA_DIR), not the suite's
/// PostgreSQL or bucket: what `focusflow migrate` copies from.
struct SingleMachine {
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<()>,
    address: String,
}

impl SingleMachine {
    async fn start(data_dir: &std::path::Path, fakes: &Fakes) -> Self {
        let config = test_config(data_dir, fakes);
        assert!(config.database_url.is_none() && config.storage_url.is_none());
        let application = focusflow::Application::build(config).await.unwrap();
        let address = format!("http://{}", application.address());
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let server = tokio::spawn(async move {
            application.run_until_stopped(token).await.unwrap();
        });
        Self {
            shutdown,
            server,
            address,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.server.await.unwrap();
    }
}

fn run_migrate(data_dir: &std::path::Path, to: &str, storage: &str) -> String {
    let mut command = std::process::Command::new(focusflow_binary());
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", data_dir)
        .current_dir(data_dir)
        .args(["migrate", "--to", to, "--storage", storage]);
    for name in [
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        if let Ok(value) = std::env::var(name) {
            command.env(name, value);
        }
    }
    let output = command.output().expect("focusflow migrate runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "migrate failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!stdout.contains("focusflow-test-secret"), "{stdout}");
    stdout
}

#[tokio::test]
async fn migrate_copies_a_single_machine_install_into_postgresql_and_the_bucket_once() {
    if skipped_without_s3("migrate") {
        return;
    }
    if !crate::database::on_postgres() {
        eprintln!("skipped: migrate needs FOCUSFLOW_TEST_DATABASE_URL too (.ci/postgres.sh)");
        return;
    }
    let fakes = Fakes::start().await;
    let source = tempfile::tempdir().unwrap();
    let old = SingleMachine::start(source.path(), &fakes).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut ids = Vec::new();
    for name in ["meeting.mp3", "huge.mp3", "plaud.mp3"] {
        let created: Value = client
            .post(format!("{}/api/jobs", old.address))
            .json(&serde_json::json!({ "url": fakes.audio.url(name) }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    let mut before = Vec::new();
    for id in &ids {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let job: Value = client
                .get(format!("{}/api/jobs/{id}?content=true", old.address))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if job["status"] == "completed" {
                before.push(job);
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{job:#}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    // A speaker named on one job: names travel with it.
    let named = client
        .put(format!("{}/api/jobs/{}/speakers", old.address, ids[0]))
        .json(&serde_json::json!({ "speakers": { "A": "Ana" } }))
        .send()
        .await
        .unwrap();
    let speakers_named = named.status().is_success();
    let first: Value = client
        .get(format!("{}/api/jobs/{}?content=true", old.address, ids[0]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    before[0] = first;
    let audio_before = client
        .get(format!("{}/jobs/{}/audio", old.address, ids[1]))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    old.stop().await;

    let target_dir = tempfile::tempdir().unwrap();
    let database = crate::database::url_for(target_dir.path()).await.unwrap();
    let storage = url_for(target_dir.path()).unwrap();
    let storage_arg = format!("s3://{}/{}", storage.bucket, storage.prefix);
    let first_run = run_migrate(source.path(), &database, &storage_arg);
    assert!(first_run.contains("jobs: 3 copied"), "{first_run}");
    // Audio, transcript, utterances and summary of each of the three.
    assert!(first_run.contains("objects: 12 copied"), "{first_run}");
    let second_run = run_migrate(source.path(), &database, &storage_arg);
    assert!(
        second_run.contains("jobs: 0 copied (0 log lines), 3 already"),
        "{second_run}"
    );
    assert!(
        second_run.contains("objects: 0 copied (0 bytes), 12 already"),
        "{second_run}"
    );

    // The app on the target serves the same jobs, logs and audio.
    let mut config = test_config(target_dir.path(), &fakes);
    config.database_url = Some(focusflow::config::DatabaseUrl::parse(&database).unwrap());
    config.storage_url = Some(storage);
    let mut app = TestApp::start(config, fakes.clone()).await;
    let listed: Value = app.get("/api/jobs").await.json().await.unwrap();
    let listed = listed["jobs"].as_array().cloned().unwrap();
    assert_eq!(listed.len(), 3, "{listed:#?}");
    for old_job in &before {
        let id = old_job["id"].as_str().unwrap();
        let job = app.job(id).await;
        for field in [
            "status",
            "title",
            "summary",
            "transcript",
            "meeting_date",
            "file_path",
            "logs",
            "checkpoint",
        ] {
            assert_eq!(job[field], old_job[field], "{field} of {id}");
        }
        if speakers_named && id == ids[0] {
            assert!(
                job["transcript"].as_str().unwrap().contains("[Ana]"),
                "{job:#}"
            );
        }
    }
    let audio_after = app
        .client
        .get(app.url(&format!("/jobs/{}/audio", ids[1])))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(audio_after, audio_before);
    assert_eq!(audio_after.len(), 4 << 20);
    // Search works on the copied transcripts.
    let found: Value = app.get("/api/jobs?q=beta").await.json().await.unwrap();
    assert_eq!(found["jobs"].as_array().unwrap().len(), 3, "{found:#}");
    app.stop().await;
}
