//! Two applications on one data folder, as during a rolling deploy: a job belongs to the
//! worker that holds its lease, never to whoever started last; a job whose worker died is taken
//! over once its lease runs out, and completes once.

use std::time::Duration;

use focusflow::Application;
use focusflow::config::Config;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::fakes::AssemblyBehaviour;
use crate::helpers::{Fakes, TestApp, files_in, logs_of, test_config};

/// An application on a runtime of its own, so that a test can stop it the way a crash does:
/// the runtime dropped, nothing released, nothing written on the way out.
struct Detached {
    runtime: Option<tokio::runtime::Runtime>,
    address: String,
}

impl Detached {
    async fn start(mut config: Config) -> Self {
        crate::database::configure(&mut config).await;
        crate::storage::configure(&mut config);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let application = runtime
                .block_on(Application::build(config))
                .expect("the app builds");
            let address = format!("http://{}", application.address());
            runtime.spawn(application.run_until_stopped(CancellationToken::new()));
            let _ = sender.send((runtime, address));
        });
        let (runtime, address) = receiver.await.unwrap();
        Self {
            runtime: Some(runtime),
            address,
        }
    }

    /// Gone at once: its tasks are dropped where they stand.
    fn crash(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn job_at(address: &str, id: &str) -> Value {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{address}/api/jobs/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_second_application_leaves_the_first_ones_job_and_takes_it_over_when_it_dies() {
    let fakes = Fakes::start().await;
    fakes.assemblyai.set(AssemblyBehaviour {
        polls_before_done: usize::MAX,
        error: None,
    });
    let data = tempfile::tempdir().unwrap();
    let lease = Duration::from_secs(1);
    let mut config = test_config(data.path(), &fakes);
    config.job_lease = lease;

    let first = Detached::start(config.clone()).await;
    let created: Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/api/jobs", first.address))
        .json(&json!({ "url": fakes.audio.url("meeting.mp3") }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while fakes.assemblyai.calls.get("poll") < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "transcription never started: {:#}",
            job_at(&first.address, &id).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // What a worker of the first writes now, and what a process that died left.
    let held_partial = data.path().join(format!("files/.{id}.inflight.part"));
    std::fs::write(&held_partial, b"partial").unwrap();
    std::fs::write(data.path().join("files/.long-gone.1.part"), b"partial").unwrap();

    // The second starts while the first works on the job, and stays beside it for several
    // lease lengths: it neither re-queues nor takes the job, nor removes its files.
    let second = TestApp::start(config.clone(), fakes.clone()).await;
    let polls = fakes.assemblyai.calls.get("poll");
    tokio::time::sleep(lease * 3).await;
    let job = second.job(&id).await;
    assert_eq!(job["status"], "transcribing", "{job:#}");
    assert_eq!(job["attempts"], 1, "{job:#}");
    assert!(!logs_of(&job).contains("Taken over"), "{job:#}");
    assert!(
        fakes.assemblyai.calls.get("poll") > polls,
        "the first kept working on it"
    );
    assert_eq!(fakes.assemblyai.calls.get("upload"), 1);
    assert_eq!(fakes.assemblyai.calls.get("create"), 1);
    assert!(
        held_partial.exists(),
        "the first's partial file was removed"
    );
    assert_eq!(
        files_in(&data.path().join("files"))
            .iter()
            // On S3 a transcription's temporary copy of the audio (`.copy.`) is the held job's too.
            .filter(|name| name.starts_with('.') && !name.contains(".copy."))
            .count(),
        1,
        "the old leftover goes, the held job's file stays"
    );

    // The first dies without releasing anything. Once its lease has run out, the second takes
    // the job over from its checkpoint (the transcript in flight is polled, not sent again)
    // and completes it, once.
    first.crash();
    fakes.assemblyai.set(AssemblyBehaviour {
        polls_before_done: 0,
        error: None,
    });
    let job = second.wait_for_status(&id, "completed").await;
    let logs = logs_of(&job);
    assert!(logs.contains("Taken over"), "{logs}");
    assert!(
        logs.contains("Resuming: polling AssemblyAI transcript"),
        "{logs}"
    );
    assert_eq!(logs.matches("Job completed").count(), 1, "{logs}");
    assert_eq!(job["attempts"], 2);
    assert_eq!(fakes.assemblyai.calls.get("upload"), 1);
    assert_eq!(fakes.assemblyai.calls.get("create"), 1);
    assert_eq!(fakes.audio.calls.get("meeting.mp3"), 1);
    assert_eq!(fakes.llm.summary_calls(), 1);
    assert!(
        !held_partial.exists(),
        "the new holder cleans up after the old"
    );
}

#[tokio::test]
async fn a_job_handed_back_at_shutdown_is_taken_by_the_other_application_at_once() {
    let fakes = Fakes::start().await;
    fakes.assemblyai.set(AssemblyBehaviour {
        polls_before_done: usize::MAX,
        error: None,
    });
    let data = tempfile::tempdir().unwrap();
    let mut config = test_config(data.path(), &fakes);
    // Long: only a released lease lets the other take the job within the test.
    config.job_lease = Duration::from_secs(60);
    let mut first = TestApp::start(config.clone(), fakes.clone()).await;
    let job = first.create_job(&fakes.audio.url("meeting.mp3")).await;
    let id = job["id"].as_str().unwrap().to_string();
    // Stopped once the transcript was asked for (its id recorded), not during the upload:
    // only then does the other resume by polling.
    first
        .wait_for(&id, "the AssemblyAI transcript created", |job| {
            logs_of(job).contains("waiting for it")
        })
        .await;
    let second = TestApp::start(config, fakes.clone()).await;

    first.stop().await;
    fakes.assemblyai.set(AssemblyBehaviour {
        polls_before_done: 0,
        error: None,
    });
    // A new job wakes the second's workers (wake-ups do not cross processes yet); the handed
    // back job, queued before it, is taken first.
    second.create_job(&fakes.audio.url("meeting.mp3")).await;
    let job = second.wait_for_status(&id, "completed").await;
    let logs = logs_of(&job);
    assert!(logs.contains("Interrupted by shutdown"), "{logs}");
    assert!(!logs.contains("Taken over"), "{logs}");
    assert!(
        logs.contains("Resuming: polling AssemblyAI transcript"),
        "{logs}"
    );
    assert_eq!(job["attempts"], 2);
}
