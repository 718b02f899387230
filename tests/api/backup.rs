//! `focusflow backup DIR` while the server works, and a server started on the copy.

use std::process::Command;

use serde_json::Value;

use crate::fakes::AssemblyBehaviour;
use crate::helpers::{TestApp, files_in, focusflow_binary, test_config};

/// `focusflow backup <dir>/snapshot` with only `DATA_DIR=<dir>` set, before the test adds what
/// makes it refuse.
fn refused_backup(dir: &std::path::Path) -> Command {
    let mut command = Command::new(focusflow_binary());
    command
        .arg("backup")
        .arg(dir.join("snapshot"))
        .env_clear()
        .env("DATA_DIR", dir);
    command
}

/// With PostgreSQL the command copies nothing and says what to use instead.
#[test]
fn a_backup_with_postgresql_points_to_pg_dump() {
    let target = tempfile::tempdir().unwrap();
    let output = refused_backup(target.path())
        .env(
            "DATABASE_URL",
            "postgres://focus:pg-secret@db.internal/focusflow",
        )
        .current_dir(target.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("pg_dump"), "{said}");
    assert!(!said.contains("pg-secret"), "{said}");
    assert!(!target.path().join("snapshot").exists());
}

/// With a bucket the command copies nothing (the objects are not in DATA_DIR) and names the
/// bucket's own tools, with the bucket and prefix to copy.
#[test]
fn a_backup_with_a_bucket_points_to_its_own_tools() {
    let target = tempfile::tempdir().unwrap();
    let output = refused_backup(target.path())
        .env("STORAGE_URL", "s3://meetings/team-a")
        .env("AWS_ACCESS_KEY_ID", "key-id")
        .env("AWS_SECRET_ACCESS_KEY", "s3-secret")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_REGION", "us-east-1")
        .current_dir(target.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(said.contains("s3://meetings/team-a"), "{said}");
    assert!(said.contains("focusflow.db"), "{said}");
    assert!(!said.contains("s3-secret"), "{said}");
    assert!(!target.path().join("snapshot").exists());
}

#[tokio::test]
async fn a_backup_taken_while_jobs_run_restores_every_job() {
    if crate::database::skipped_on_postgres(
        "focusflow backup copies the SQLite file; PostgreSQL is backed up with pg_dump",
    ) || crate::storage::skipped_on_s3(
        "focusflow backup refuses with a bucket (a_backup_with_a_bucket_points_to_its_own_tools)",
    ) {
        return;
    }
    let app = TestApp::spawn().await;
    let done = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let done_id = done["id"].as_str().unwrap().to_string();
    app.wait_for_status(&done_id, "completed").await;
    // Keep one job transcribing while the backup runs.
    app.fakes.assemblyai.set(AssemblyBehaviour {
        polls_before_done: usize::MAX,
        error: None,
    });
    let running = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let running_id = running["id"].as_str().unwrap().to_string();
    app.wait_for_status(&running_id, "transcribing").await;
    let queued: Vec<String> = {
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(
                app.create_job(&app.fakes.audio.url("page.html")).await["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        ids
    };

    let target = tempfile::tempdir().unwrap();
    let backup_dir = target.path().join("snapshot");
    let output = Command::new(focusflow_binary())
        .arg("backup")
        .arg(&backup_dir)
        .env_clear()
        .env("DATA_DIR", &app.data_dir)
        .current_dir(target.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("backed up 7 jobs"), "{said}");

    // Backing up into a folder that is not empty is refused, and nothing is overwritten.
    let again = Command::new(focusflow_binary())
        .arg("backup")
        .arg(&backup_dir)
        .env_clear()
        .env("DATA_DIR", &app.data_dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let fakes = app.fakes.clone();
    fakes.assemblyai.set(AssemblyBehaviour::default());
    let restored = TestApp::start(test_config(&backup_dir, &fakes), fakes).await;
    let list: Value = restored.get("/api/jobs").await.json().await.unwrap();
    let ids: Vec<&str> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 7);
    for id in queued.iter().chain([&done_id, &running_id]) {
        assert!(ids.contains(&id.as_str()), "{id} missing from the restore");
    }
    let job = restored.job(&done_id).await;
    assert_eq!(job["status"], "completed");
    assert!(job["transcript"].as_str().unwrap().contains("[Speaker B]"));
    assert!(job["summary"].as_str().unwrap().contains("Launch planning"));
    assert_eq!(files_in(&backup_dir.join("summaries")).len(), 1);
    // The job that was running resumes on the restored server and completes.
    restored.wait_for_status(&running_id, "completed").await;
}
