//! A soak: steady HTTP load on the pages and the API for a minute while the worker takes a
//! stream of jobs through the fakes. No request may fail, every job must complete, and the
//! server's memory must stay flat. `SOAK_SECS` changes the length (default 60).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::helpers::{Fakes, ServerProcess, logs_of};

/// Concurrent clients, each sending one request every `PAUSE` (about 50 requests per second
/// in all: steady, and gentle enough that the other tests running beside it keep their pace).
const CLIENTS: usize = 2;
const PAUSE: Duration = Duration::from_millis(40);
/// A new job this often: well within what the worker finishes (WORKER_CONCURRENCY=4 below), so
/// the queue stays short and every job can be expected to complete soon after the load stops.
const JOB_EVERY: Duration = Duration::from_secs(1);
/// Memory is compared from the end of the warm-up to the end of the run.
const WARM_UP: Duration = Duration::from_secs(15);
/// How much the server's RSS may grow after the warm-up: its caches (SQLite's page cache of
/// 2 MB per connection on five connections, the allocator's arenas) are warm by then. Some
/// 2,000 requests and 45 jobs follow the warm-up, so anything kept per request (about 6 KB or
/// more) or per job (about 270 KB or more) exceeds it; a measured run grew by 2.3 MiB.
const MAX_GROWTH_KIB: u64 = 12 * 1024;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minute_of_steady_load_while_jobs_run() {
    let seconds: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let duration = Duration::from_secs(seconds);
    let warm_up = WARM_UP.min(duration / 4);
    let fakes = Fakes::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut env = fakes.env();
    env.push(("RATE_LIMIT_MAX_REQUESTS", "0".into()));
    env.push(("WORKER_CONCURRENCY", "4".into()));
    let server = ServerProcess::start(data.path(), &env).await;
    let pid = server.child.id();
    let address = server.address.clone();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let ids: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicUsize::new(0));
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let started = Instant::now();

    // The stream of jobs.
    let producer = {
        let (client, address, ids, stop, failures) = (
            client.clone(),
            address.clone(),
            ids.clone(),
            stop.clone(),
            failures.clone(),
        );
        let audio = fakes.audio.url("meeting.mp3");
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let response = client
                    .post(format!("{address}/api/jobs"))
                    .json(&json!({ "url": format!("{audio}?soak={n}") }))
                    .send()
                    .await;
                match response {
                    Ok(response) if response.status() == 201 => {
                        let job: Value = response.json().await.unwrap();
                        ids.lock()
                            .await
                            .push(job["id"].as_str().unwrap().to_string());
                    }
                    Ok(response) => failures
                        .lock()
                        .await
                        .push(format!("POST /api/jobs: {}", response.status())),
                    Err(error) => failures
                        .lock()
                        .await
                        .push(format!("POST /api/jobs: {error}")),
                }
                n += 1;
                tokio::time::sleep(JOB_EVERY).await;
            }
        })
    };

    // Browsers and API clients reading the list, job pages and the API.
    let mut readers = Vec::new();
    for reader in 0..CLIENTS {
        let (client, address, ids, stop, requests, failures) = (
            client.clone(),
            address.clone(),
            ids.clone(),
            stop.clone(),
            requests.clone(),
            failures.clone(),
        );
        readers.push(tokio::spawn(async move {
            // A browser keeps its session cookie.
            let cookie = client
                .get(format!("{address}/"))
                .send()
                .await
                .ok()
                .and_then(|response| {
                    response
                        .headers()
                        .get("set-cookie")
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.split(';').next())
                        .map(str::to_string)
                })
                .unwrap_or_default();
            let mut turn = reader;
            while !stop.load(Ordering::Relaxed) {
                let some_job = {
                    let ids = ids.lock().await;
                    (!ids.is_empty()).then(|| ids[turn % ids.len()].clone())
                };
                let path = match (turn % 7, &some_job) {
                    (0, _) => "/".to_string(),
                    (1, _) => "/api/jobs?limit=20".to_string(),
                    (2, Some(id)) => format!("/api/jobs/{id}"),
                    (3, Some(id)) => format!("/jobs/{id}"),
                    (4, _) => "/partials/jobs".to_string(),
                    (5, Some(id)) => format!("/api/jobs/{id}?content=true"),
                    _ => "/api/health".to_string(),
                };
                let response = client
                    .get(format!("{address}{path}"))
                    .header("cookie", &cookie)
                    .send()
                    .await;
                match response {
                    Ok(response) if response.status().is_success() => {
                        // Read the whole body: a response that breaks off is a failure too.
                        if let Err(error) = response.bytes().await {
                            failures.lock().await.push(format!("GET {path}: {error}"));
                        }
                    }
                    Ok(response) => failures
                        .lock()
                        .await
                        .push(format!("GET {path}: {}", response.status())),
                    Err(error) => failures.lock().await.push(format!("GET {path}: {error}")),
                }
                requests.fetch_add(1, Ordering::Relaxed);
                turn += 1;
                tokio::time::sleep(PAUSE).await;
            }
        }));
    }

    tokio::time::sleep(warm_up).await;
    let warm_rss = rss_kib(pid);
    let mut highest = warm_rss;
    while started.elapsed() < duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        highest = highest.max(rss_kib(pid));
    }
    stop.store(true, Ordering::Relaxed);
    producer.await.unwrap();
    for reader in readers {
        reader.await.unwrap();
    }
    let end_rss = rss_kib(pid);

    let ids = ids.lock().await.clone();
    let failures = failures.lock().await;
    let requests = requests.load(Ordering::Relaxed);
    eprintln!(
        "soak: {seconds} s, {requests} requests, {} jobs, RSS {} KiB after warm-up, {} KiB at \
         the end, {} KiB at most",
        ids.len(),
        warm_rss,
        end_rss,
        highest
    );
    assert!(failures.is_empty(), "failed requests: {failures:#?}");
    // Every job completes (the last ones get a few seconds), exactly once.
    let deadline = Instant::now() + Duration::from_secs(15);
    for id in &ids {
        loop {
            let job = server.get_json(&format!("/api/jobs/{id}")).await;
            if job["status"] == "completed" {
                assert_eq!(logs_of(&job).matches("Job completed").count(), 1, "{job:#}");
                break;
            }
            assert_ne!(
                job["status"], "error",
                "a job failed during the soak: {job:#}"
            );
            assert!(
                Instant::now() < deadline,
                "job {id} did not complete: {job:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    assert!(
        ids.len() as u64 >= seconds / 2,
        "jobs kept coming: {}",
        ids.len()
    );
    assert!(
        requests as u64 >= seconds * 20,
        "the load was steady: {requests} requests"
    );
    assert!(
        end_rss <= warm_rss + MAX_GROWTH_KIB && highest <= warm_rss + MAX_GROWTH_KIB,
        "memory grew: {warm_rss} KiB after warm-up, {end_rss} KiB at the end, {highest} KiB at \
         most (bound +{MAX_GROWTH_KIB} KiB)"
    );
}
