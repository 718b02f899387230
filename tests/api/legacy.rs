//! Importing the original Next.js app's jobs.json: everything comes across, once.

use serde_json::{Value, json};

use crate::helpers::{Fakes, TestApp, files_in, test_config};

#[tokio::test]
async fn jobs_json_is_imported_once_with_titles_summaries_logs_and_files() {
    if crate::storage::skipped_on_s3(
        "the legacy import reads files from the data folder only (see docs/scaling.md)",
    ) {
        return;
    }
    let fakes = Fakes::start().await;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    // The old app kept its files under /app/data/... and wrote those absolute paths.
    std::fs::create_dir_all(dir.join("transcripts")).unwrap();
    std::fs::create_dir_all(dir.join("summaries")).unwrap();
    std::fs::write(
        dir.join("transcripts/old-1.txt"),
        "[Speaker A]: legacy words",
    )
    .unwrap();
    std::fs::write(
        dir.join("summaries/old-1.md"),
        "# Legacy summary\n\nFrom a file.",
    )
    .unwrap();
    let legacy = json!([
        {
            "id": "old-1",
            "url": "https://web.plaud.ai/share/abc",
            "resolved_url": "https://cdn.example.com/old.mp3",
            "meeting_date": "2025-09-25T20:05:39.000Z",
            "status": "completed",
            "title": "Board meeting",
            "summary_path": "/app/data/summaries/old-1.md",
            "transcript_path": "/app/data/transcripts/old-1.txt",
            "created_at": 1758830000000_i64,
            "updated_at": 1758831000000_i64,
            "logs": ["[2025-09-25T20:10:00.000Z] Job completed"],
            "checkpoint": { "step": "summarize" }
        },
        {
            "id": "old-2",
            "url": "https://example.com/b.mp3",
            "status": "error",
            "error": "AssemblyAI could not transcribe the audio: too short",
            "summary": "inline summary",
            "created_at": 1758000000000_i64,
            "updated_at": 1758000000000_i64,
            "logs": [],
            "checkpoint": { "step": "download" }
        },
        {
            "id": "old-3",
            "url": "https://example.com/c.mp3",
            "status": "transcribing",
            "created_at": 1757000000000_i64,
            "updated_at": 1757000000000_i64,
            "logs": ["plain line without a time"],
            "checkpoint": { "step": "download" }
        }
    ]);
    std::fs::write(dir.join("jobs.json"), legacy.to_string()).unwrap();

    let mut config = test_config(dir, &fakes);
    // Nothing is fetched in this test: the unfinished job would fail to download anyway.
    config.assemblyai_api_key = None;
    let app = TestApp::start(config, fakes).await;

    let first: Value = app
        .get("/api/jobs/old-1?content=true")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["title"], "Board meeting");
    assert_eq!(first["status"], "completed");
    assert_eq!(first["summary"], "# Legacy summary\n\nFrom a file.");
    assert_eq!(first["transcript"], "[Speaker A]: legacy words");
    assert_eq!(first["meeting_date"], "2025-09-25T20:05:39.000Z");
    assert_eq!(first["created_at"], 1758830000000_i64);
    assert_eq!(first["checkpoint"], json!({ "step": "summarize" }));
    assert_eq!(first["logs"][0], "[2025-09-25T20:10:00.000Z] Job completed");

    let second: Value = app.get("/api/jobs/old-2").await.json().await.unwrap();
    assert_eq!(second["status"], "error");
    assert_eq!(second["summary"], "inline summary");
    assert_eq!(
        second["error"],
        "AssemblyAI could not transcribe the audio: too short"
    );

    // A job the old app was working on is resumed from its checkpoint (a worker may be at
    // its next stage for a moment; one left as it was would stay "transcribing").
    let third = app
        .wait_for("old-3", "the interrupted job resumed", |job| {
            job["status"] != "transcribing"
        })
        .await;
    assert!(
        third["logs"][0]
            .as_str()
            .unwrap()
            .ends_with("plain line without a time")
    );

    let names = files_in(dir);
    assert!(!names.contains(&"jobs.json".to_string()), "{names:?}");
    assert!(
        names
            .iter()
            .any(|name| name.starts_with("jobs.json.imported-")),
        "{names:?}"
    );

    // Once, not twice: a restart (even with a jobs.json put back) imports nothing again.
    let imported = names
        .iter()
        .find(|name| name.starts_with("jobs.json.imported-"))
        .unwrap();
    std::fs::copy(dir.join(imported), dir.join("jobs.json")).unwrap();
    let app = app.restart().await;
    let list: Value = app.get("/api/jobs").await.json().await.unwrap();
    assert_eq!(list["jobs"].as_array().unwrap().len(), 3);
    let first: Value = app.get("/api/jobs/old-1").await.json().await.unwrap();
    let imported_lines = first["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|line| {
            line.as_str()
                .unwrap()
                .contains("Imported from the previous FocusFlow")
        })
        .count();
    assert_eq!(imported_lines, 1);
    assert!(
        dir.join("jobs.json").exists(),
        "a second jobs.json is left alone"
    );
}

#[tokio::test]
async fn a_malformed_jobs_json_is_left_untouched_and_the_server_still_starts() {
    let fakes = Fakes::start().await;
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("jobs.json"), "{ this is not json").unwrap();
    let app = TestApp::start(test_config(data.path(), &fakes), fakes).await;
    assert_eq!(app.get("/api/health").await.status(), 200);
    assert_eq!(
        std::fs::read_to_string(data.path().join("jobs.json")).unwrap(),
        "{ this is not json"
    );
}

/// A 48 MB jobs.json (10,000 jobs) is read as a stream and imported in batches: the process
/// is not left the size of the parsed file. Parsed whole, it stayed about 100 MB larger.
#[tokio::test]
async fn a_48_mb_jobs_json_leaves_the_process_small() {
    let data = tempfile::tempdir().unwrap();
    let summary = "## Decisions\n- Ship the importer behind a flag. ".repeat(90);
    let jobs: Vec<Value> = (0..10_000)
        .map(|n| {
            json!({
                "id": format!("legacy-{n}"),
                "url": format!("https://example.com/recordings/{n}.mp3"),
                "status": "completed",
                "title": format!("Weekly planning {n}"),
                "summary": summary,
                "created_at": 1_700_000_000_000i64 + n,
                "updated_at": 1_700_000_000_000i64 + n,
                "logs": ["[2025-09-25T20:05:39.000Z] Job created", "[2025-09-25T20:07:39.000Z] Job completed"],
            })
        })
        .collect();
    let text = serde_json::to_string(&jobs).unwrap();
    assert!(text.len() > 45_000_000, "{}", text.len());
    std::fs::write(data.path().join("jobs.json"), text).unwrap();
    drop(jobs);

    // Healthy means imported: the import runs before the server listens.
    let server = crate::helpers::ServerProcess::start(data.path(), &[]).await;
    let listed = server.get_json("/api/jobs?limit=1").await;
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 1);
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let kib = |field: &str| -> u64 {
        status
            .lines()
            .find(|line| line.starts_with(field))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|value| value.parse().ok())
            .unwrap()
    };
    let (rss, peak) = (kib("VmRSS:") / 1024, kib("VmHWM:") / 1024);
    eprintln!("after importing 48 MB: RSS {rss} MiB, peak {peak} MiB");
    assert!(
        rss < 64,
        "the process stayed {rss} MiB after the import (peak {peak} MiB)"
    );
    assert!(peak < 100, "the import peaked at {peak} MiB");
}
