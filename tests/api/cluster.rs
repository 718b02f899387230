//! Three FocusFlow processes (the real binary) on one PostgreSQL database and one data folder,
//! as behind a load balancer with no sticky sessions: jobs complete once each when a replica is
//! killed with `kill -9` mid-stage, a log stream on one replica shows another's lines, a delete
//! on one stops the pipeline another runs, a form loaded from one is posted to another, and each
//! webhook event is delivered once. Then PostgreSQL itself stopped for 10 s.
//!
//! Skipped (with the reason printed) without `FOCUSFLOW_TEST_DATABASE_URL`: replicas need
//! PostgreSQL (see `.ci/postgres.sh`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use serde_json::{Value, json};

use crate::fakes::{self, AssemblyBehaviour};
use crate::helpers::{CookieJar, Fakes, ServerProcess, logs_of, repo_path};

/// Each provider request waits this long, as a real provider's latency would.
const PROVIDER_DELAY: Duration = Duration::from_millis(100);

fn skipped() -> bool {
    if crate::database::on_postgres() {
        return false;
    }
    eprintln!(
        "skipped: replicas share PostgreSQL; set FOCUSFLOW_TEST_DATABASE_URL (bash .ci/postgres.sh start)"
    );
    true
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The fakes with the fixed delay (their traces are one record, see `fakes::Traces`).
async fn delayed_fakes() -> Fakes {
    let fakes = Fakes::start().await;
    *fakes.assemblyai.delay.lock().unwrap() = PROVIDER_DELAY;
    *fakes.llm.delay.lock().unwrap() = PROVIDER_DELAY;
    fakes
}

/// `count` server processes on one data folder and so on one database.
async fn replicas(
    data: &Path,
    fakes: &Fakes,
    extra: &[(&str, String)],
    count: usize,
) -> Vec<ServerProcess> {
    let mut env = fakes.env();
    env.push((
        "TITLE_PROMPT_PATH",
        repo_path("prompts/title_generator.md")
            .display()
            .to_string(),
    ));
    // The tests poll every job often; the limiter has tests of its own.
    env.push(("RATE_LIMIT_MAX_REQUESTS", "0".into()));
    env.extend(extra.iter().cloned());
    let mut servers = Vec::new();
    for _ in 0..count {
        servers.push(ServerProcess::start(data, &env).await);
    }
    servers
}

async fn create(server: &ServerProcess, url: &str) -> String {
    let response = client()
        .post(format!("{}/api/jobs", server.address))
        .json(&json!({ "url": url }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let job: Value = response.json().await.unwrap();
    job["id"].as_str().unwrap().to_string()
}

/// The job as `server` shows it, or the status it answered instead.
async fn job(server: &ServerProcess, id: &str) -> Result<Value, String> {
    let response = client()
        .get(format!("{}/api/jobs/{id}", server.address))
        .send()
        .await
        .map_err(|error| error.to_string())?;
    if response.status() != 200 {
        return Err(response.status().to_string());
    }
    response.json().await.map_err(|error| error.to_string())
}

/// Waits until every job is done (completed or failed), asking `server`.
async fn wait_all_done(server: &ServerProcess, ids: &[String], patience: Duration) -> Vec<Value> {
    let deadline = Instant::now() + patience;
    loop {
        let mut done = Vec::new();
        let mut waiting = Vec::new();
        for id in ids {
            match job(server, id).await {
                Ok(job) if matches!(job["status"].as_str(), Some("completed" | "failed")) => {
                    done.push(job)
                }
                other => waiting.push(other),
            }
        }
        if done.len() == ids.len() {
            return done;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} jobs done after {patience:?}; the first waiting: {:?}",
            done.len(),
            ids.len(),
            waiting.first()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The recording number a job was made from (`…/media/job-<n>.mp3`).
fn recording(job: &Value) -> usize {
    let url = job["url"].as_str().unwrap();
    url.rsplit("job-")
        .next()
        .and_then(|rest| rest.strip_suffix(".mp3"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a numbered recording: {url}"))
}

fn count_lines(logs: &str, line: &str) -> usize {
    logs.lines().filter(|l| l.contains(line)).count()
}

#[tokio::test]
async fn sixty_jobs_on_three_replicas_complete_once_each_when_one_is_killed_mid_stage() {
    if skipped() {
        return;
    }
    let fakes = delayed_fakes().await;
    let data = tempfile::tempdir().unwrap();
    let mut servers = replicas(
        data.path(),
        &fakes,
        &[("WORKER_CONCURRENCY", "2".into())],
        3,
    )
    .await;
    let mut ids = Vec::new();
    for n in 0..60 {
        let server = &servers[n % 3];
        ids.push(create(server, &fakes.audio.url(&format!("job-{n}.mp3"))).await);
    }
    // Kill the second replica while jobs are at work (some completed, many still running).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list: Value = servers[0].get_json("/api/jobs?limit=100").await;
        let jobs = list["jobs"].as_array().unwrap();
        let completed = jobs.iter().filter(|j| j["status"] == "completed").count();
        let running = jobs
            .iter()
            .filter(|j| {
                !matches!(
                    j["status"].as_str(),
                    Some("queued" | "completed" | "failed")
                )
            })
            .count();
        if completed >= 10 && running >= 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the jobs never got going: {list:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    servers[1].kill9();
    let killed_at = Instant::now();

    let done = wait_all_done(&servers[0], &ids, Duration::from_secs(120)).await;
    let taken_over: Vec<usize> = done
        .iter()
        .filter(|job| logs_of(job).contains("Taken over"))
        .map(recording)
        .collect();
    assert!(
        !taken_over.is_empty(),
        "the killed replica held no job mid-stage (nothing was taken over)"
    );
    let traces = fakes.assemblyai.traces.lock().unwrap();
    for job in &done {
        let n = recording(job);
        let logs = logs_of(job);
        assert_eq!(job["status"], "completed", "job {n}: {job:#}");
        assert!(
            job["summary"]
                .as_str()
                .is_some_and(|s| s.contains("Launch planning")),
            "job {n} has no summary: {job:#}"
        );
        assert_eq!(count_lines(&logs, "Job completed"), 1, "job {n}: {logs}");
        // A stage runs again only for a job the killed replica held; then at most twice.
        let summaries = traces.summaries.get(&n).copied().unwrap_or(0);
        let transcriptions = traces.transcriptions(n);
        if taken_over.contains(&n) {
            assert!(
                summaries <= 2 && transcriptions <= 2,
                "job {n}: {summaries} summaries, {transcriptions} transcriptions"
            );
        } else {
            assert_eq!(
                summaries, 1,
                "job {n} was summarized {summaries} times: {logs}"
            );
            assert_eq!(
                transcriptions, 1,
                "job {n} was transcribed {transcriptions} times: {logs}"
            );
        }
        assert!(summaries >= 1 && transcriptions >= 1, "job {n}");
    }
    assert_eq!(
        traces.overlapping_summaries,
        Vec::<usize>::new(),
        "summaries written twice at once"
    );
    assert_eq!(
        traces.overlapping_transcriptions(),
        Vec::<usize>::new(),
        "transcriptions run twice at once"
    );
    // Every summary file is there once: one per job.
    // (A write the kill cut short may leave a hidden `.….tmp`; finished files only.)
    // On S3 (FOCUSFLOW_TEST_STORAGE_URL) the summaries are objects in the bucket.
    let summaries_on_disk = if crate::storage::on_s3() {
        crate::storage::objects_in(data.path(), "summaries")
            .iter()
            .filter(|name| !name.starts_with('.'))
            .count()
    } else {
        std::fs::read_dir(data.path().join("summaries"))
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(summaries_on_disk, 60, "summary files");
    eprintln!(
        "60 jobs on 3 replicas, one killed: {} taken over, all done {:.1} s after the kill",
        taken_over.len(),
        killed_at.elapsed().as_secs_f64()
    );
}

/// A stream on one replica of a job another runs; a delete on a third of a job the first runs.
#[tokio::test]
async fn a_replica_streams_anothers_log_lines_and_a_delete_on_one_stops_anothers_pipeline() {
    if skipped() {
        return;
    }
    let fakes = Fakes::start().await;
    fakes.assemblyai.set(AssemblyBehaviour {
        polls_before_done: usize::MAX,
        error: None,
    });
    let data = tempfile::tempdir().unwrap();
    // The first replica alone takes both jobs (two workers), then the others start.
    let first = replicas(
        data.path(),
        &fakes,
        &[("WORKER_CONCURRENCY", "2".into())],
        1,
    )
    .await
    .remove(0);
    let streamed = create(&first, &fakes.audio.url("job-1.mp3")).await;
    let deleted = create(&first, &fakes.audio.url("job-2.mp3")).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while fakes.assemblyai.calls.get("poll:tr-1") == 0
        || fakes.assemblyai.calls.get("poll:tr-2") == 0
    {
        assert!(
            Instant::now() < deadline,
            "the first replica never transcribed both jobs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let others = replicas(data.path(), &fakes, &[], 2).await;
    let (second, third) = (&others[0], &others[1]);

    let stream = client()
        .get(format!("{}/api/jobs/{streamed}/logs/stream", third.address))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);

    // Delete on the second: the first stops polling for that job within 2 s.
    let transcript = {
        let traces = fakes.assemblyai.traces.lock().unwrap();
        traces
            .polls
            .iter()
            .find(|(n, _, _)| *n == 2)
            .map(|(_, id, _)| id.clone())
            .expect("job 2 is being transcribed")
    };
    let response = client()
        .delete(format!("{}/api/jobs/{deleted}", second.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let polls = fakes.assemblyai.calls.get(&format!("poll:{transcript}"));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        fakes.assemblyai.calls.get(&format!("poll:{transcript}")),
        polls,
        "the first replica still polls for the job deleted on the second"
    );
    assert_eq!(
        job(&first, &deleted).await,
        Err("404 Not Found".to_string()),
        "the deleted job is gone everywhere"
    );

    // The first finishes the other job: the third's stream shows the first's lines, live.
    fakes.assemblyai.set(AssemblyBehaviour::default());
    let body = tokio::time::timeout(Duration::from_secs(30), stream.text())
        .await
        .expect("the third's stream ends when the first finishes the job")
        .unwrap();
    assert!(body.contains("Transcript saved"), "{body}");
    assert!(body.contains("Job completed"), "{body}");
    assert!(body.contains("event: status"), "{body}");
    let done = job(third, &streamed).await.unwrap();
    assert_eq!(done["status"], "completed");
    assert!(
        !logs_of(&done).contains("Taken over"),
        "the first ran it alone: {done:#}"
    );
}

/// A browser with real headers behind a load balancer that sends each request to another
/// replica: the host it sees is the balancer's; cookies go with it.
struct Browser {
    cookies: CookieJar,
    host: String,
}

impl Browser {
    fn new(host: String) -> Self {
        Self {
            cookies: CookieJar::default(),
            host,
        }
    }

    fn remember(&mut self, response: &reqwest::Response) {
        self.cookies.remember(response);
    }

    fn headers(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let request = request
            .header(header::HOST, &self.host)
            .header(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
            .header(
                header::USER_AGENT,
                "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
            );
        match self.cookies.header() {
            Some(cookie) => request.header(header::COOKIE, cookie),
            None => request,
        }
    }

    async fn page(&mut self, server: &ServerProcess, path: &str) -> String {
        let response = self
            .headers(client().get(format!("{}{path}", server.address)))
            .header("sec-fetch-site", "same-origin")
            .header("sec-fetch-mode", "navigate")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        self.remember(&response);
        response.text().await.unwrap()
    }

    async fn post(
        &mut self,
        server: &ServerProcess,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let response = self
            .headers(client().post(format!("{}{path}", server.address)))
            .header(header::ORIGIN, format!("http://{}", self.host))
            .header("sec-fetch-site", "same-origin")
            .header("sec-fetch-mode", "navigate")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap())
            .send()
            .await
            .unwrap();
        self.remember(&response);
        response
    }
}

fn token_in(html: &str) -> String {
    crate::pages::TOKEN
        .captures(html)
        .expect("the page has a form token")
        .get(1)
        .unwrap()
        .as_str()
        .to_string()
}

#[tokio::test]
async fn a_form_loaded_from_one_replica_is_accepted_by_another_and_its_message_shown_by_a_third() {
    if skipped() {
        return;
    }
    let fakes = Fakes::start().await;
    let data = tempfile::tempdir().unwrap();
    let servers = replicas(data.path(), &fakes, &[], 3).await;
    // The balancer's address, as the browser knows it (loopback: allowed without settings).
    let host = servers[0].address.trim_start_matches("http://").to_string();
    let mut browser = Browser::new(host);

    let token = token_in(&browser.page(&servers[0], "/").await);
    // The third has read the session too (and keeps its token) before the message is left.
    assert_eq!(token_in(&browser.page(&servers[2], "/").await), token);
    let url = fakes.audio.url("meeting.mp3");
    let response = browser
        .post(
            &servers[1],
            "/jobs",
            &[("url", &url), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let location = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        browser.cookies.has("focusflow.flash"),
        "the browser is told that a message waits"
    );
    let page = browser.page(&servers[2], &location).await;
    assert!(
        page.contains("Meeting added"),
        "the third replica shows the second's message: {page}"
    );
    assert!(!browser.cookies.has("focusflow.flash"), "and it was shown");
    // Shown once: the next page, from the first, has no message.
    let again = browser.page(&servers[0], &location).await;
    assert!(
        !again.contains("Meeting added"),
        "the message is shown once"
    );

    // A token from a browser with another cookie is refused on every replica.
    let mut stranger = Browser::new(browser.host.clone());
    stranger.page(&servers[2], "/").await;
    let refused = stranger
        .post(
            &servers[1],
            "/jobs",
            &[("url", &url), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(refused.status(), 403);
    // And the form token a replica gives works on all three.
    for server in &servers {
        let token = token_in(&browser.page(&servers[2], "/").await);
        let response = browser
            .post(server, "/jobs", &[("url", &url), ("csrf_token", &token)])
            .await;
        assert_eq!(response.status(), 303, "{}", server.address);
    }
}

/// Counts webhook deliveries by job and by delivery id.
#[derive(Clone, Default)]
struct Receiver {
    by_job: Arc<Mutex<HashMap<String, usize>>>,
    by_delivery: Arc<Mutex<HashMap<String, usize>>>,
}

async fn receive(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let event: Value = serde_json::from_slice(&body).unwrap_or_default();
    let job = event["job"]["id"].as_str().unwrap_or("").to_string();
    let delivery = headers
        .get("x-focusflow-delivery")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_string();
    // A receiver that takes its time, so that replicas race for the same events.
    tokio::time::sleep(Duration::from_millis(50)).await;
    *receiver.by_job.lock().unwrap().entry(job).or_default() += 1;
    *receiver
        .by_delivery
        .lock()
        .unwrap()
        .entry(delivery)
        .or_default() += 1;
    StatusCode::NO_CONTENT
}

#[tokio::test]
async fn each_webhook_event_is_delivered_once_by_one_of_three_replicas() {
    if skipped() {
        return;
    }
    let fakes = Fakes::start().await;
    let receiver = Receiver::default();
    let hook = fakes::serve(
        axum::Router::new()
            .route("/hook", post(receive))
            .with_state(receiver.clone()),
    )
    .await;
    let data = tempfile::tempdir().unwrap();
    let servers = replicas(
        data.path(),
        &fakes,
        &[("WEBHOOK_URL", format!("{hook}/hook"))],
        3,
    )
    .await;
    let mut ids = Vec::new();
    for n in 0..24 {
        ids.push(create(&servers[n % 3], &fakes.audio.url("meeting.mp3")).await);
    }
    wait_all_done(&servers[0], &ids, Duration::from_secs(90)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.by_job.lock().unwrap().len() < ids.len() {
        assert!(Instant::now() < deadline, "events missing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Time for any second delivery to show.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let by_job = receiver.by_job.lock().unwrap().clone();
    for id in &ids {
        assert_eq!(by_job.get(id), Some(&1), "deliveries for {id}: {by_job:?}");
    }
    assert!(
        receiver
            .by_delivery
            .lock()
            .unwrap()
            .values()
            .all(|n| *n == 1)
    );
    for server in &servers {
        let metrics = client()
            .get(format!("{}/metrics", server.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        eprintln!(
            "{}: {}",
            server.address,
            metrics
                .lines()
                .filter(|line| line.starts_with("focusflow_webhook_deliveries_total"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// A PostgreSQL of this test's own (started with `.ci/postgres.sh`), so it can be stopped.
struct OwnPostgres {
    dir: PathBuf,
    url: String,
}

impl OwnPostgres {
    fn start() -> Self {
        let output = std::process::Command::new("bash")
            .arg(repo_path(".ci/postgres.sh"))
            .arg("start")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let exports = String::from_utf8(output.stdout).unwrap();
        let value = |name: &str| {
            exports
                .lines()
                .find_map(|line| line.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("postgres.sh printed no {name}: {exports}"))
                .to_string()
        };
        let server = value("FOCUSFLOW_TEST_DATABASE_URL");
        let (base, _) = server.rsplit_once('/').unwrap();
        Self {
            dir: PathBuf::from(value("FOCUSFLOW_TEST_PG_DIR")),
            url: format!("{base}/postgres"),
        }
    }

    fn run(&self, command: &str) {
        let status = std::process::Command::new("bash")
            .arg(repo_path(".ci/postgres.sh"))
            .arg(command)
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "postgres.sh {command}");
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        self.run("stop");
    }
}

async fn status_of(server: &ServerProcess, path: &str) -> Option<u16> {
    client()
        .get(format!("{}{path}", server.address))
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .ok()
        .map(|response| response.status().as_u16())
}

#[tokio::test]
async fn postgresql_stopped_for_ten_seconds_means_503s_then_every_job_completes() {
    if skipped() {
        return;
    }
    let postgres = OwnPostgres::start();
    let fakes = delayed_fakes().await;
    let data = tempfile::tempdir().unwrap();
    let servers = replicas(
        data.path(),
        &fakes,
        &[("DATABASE_URL", postgres.url.clone())],
        2,
    )
    .await;
    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(create(&servers[n % 2], &fakes.audio.url(&format!("job-{n}.mp3"))).await);
    }
    // Down while jobs are at every stage.
    tokio::time::sleep(Duration::from_millis(600)).await;
    postgres.run("down");
    let stopped = Instant::now();
    let mut answers: HashMap<String, Vec<Option<u16>>> = HashMap::new();
    while stopped.elapsed() < Duration::from_secs(10) {
        for server in &servers {
            for path in ["/api/health", "/api/jobs?limit=5"] {
                answers
                    .entry(path.to_string())
                    .or_default()
                    .push(status_of(server, path).await);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    postgres.run("up");
    // After the first second (health reuses its check that long), every answer was a 503.
    for (path, statuses) in &answers {
        let late = &statuses[statuses.len() / 4..];
        assert!(
            late.iter().all(|status| *status == Some(503)),
            "{path} during the outage: {statuses:?}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for server in &servers {
        while status_of(server, "/api/health").await != Some(200) {
            assert!(
                Instant::now() < deadline,
                "{} never recovered",
                server.address
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let done = wait_all_done(&servers[1], &ids, Duration::from_secs(120)).await;
    for job in &done {
        let logs = logs_of(job);
        assert_eq!(job["status"], "completed", "{job:#}");
        assert_eq!(count_lines(&logs, "Job completed"), 1, "{logs}");
    }
    {
        let traces = fakes.assemblyai.traces.lock().unwrap();
        assert!(
            traces.overlapping_summaries.is_empty(),
            "{:?}",
            traces.overlapping_summaries
        );
        assert!(traces.overlapping_transcriptions().is_empty());
    }
    // And new work is taken again.
    let after = create(&servers[0], &fakes.audio.url("job-99.mp3")).await;
    wait_all_done(&servers[1], &[after], Duration::from_secs(30)).await;
}

/// Benchmark, not a check (ignored; run by hand, see docs/benchmarks.md "Replicas"): jobs
/// finished per minute by one and by three replicas against fakes whose every request takes
/// `CLUSTER_BENCH_DELAY_MS` (default 500), `CLUSTER_BENCH_JOBS` jobs (default 36) each time.
#[tokio::test]
#[ignore = "a benchmark: cargo test --test api cluster::jobs_per_minute -- --ignored --nocapture"]
async fn jobs_per_minute_with_one_and_three_replicas() {
    if skipped() {
        return;
    }
    let setting = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let delay = Duration::from_millis(setting("CLUSTER_BENCH_DELAY_MS", 500));
    let jobs = setting("CLUSTER_BENCH_JOBS", 36) as usize;
    for count in [1, 3] {
        let fakes = Fakes::start().await;
        *fakes.assemblyai.delay.lock().unwrap() = delay;
        *fakes.llm.delay.lock().unwrap() = delay;
        let data = tempfile::tempdir().unwrap();
        let servers = replicas(
            data.path(),
            &fakes,
            &[("WORKER_CONCURRENCY", "2".into())],
            count,
        )
        .await;
        let started = Instant::now();
        let mut ids = Vec::new();
        for n in 0..jobs {
            ids.push(
                create(
                    &servers[n % count],
                    &fakes.audio.url(&format!("job-{n}.mp3")),
                )
                .await,
            );
        }
        let done = wait_all_done(&servers[0], &ids, Duration::from_secs(1800)).await;
        let elapsed = started.elapsed();
        let completed = done
            .iter()
            .filter(|job| job["status"] == "completed")
            .count();
        eprintln!(
            "replicas={count} workers_each=2 provider_delay_ms={} jobs={jobs} completed={completed} seconds={:.1} jobs_per_minute={:.1}",
            delay.as_millis(),
            elapsed.as_secs_f64(),
            completed as f64 * 60.0 / elapsed.as_secs_f64()
        );
    }
}

/// Replicas that start together on one database and one data folder with a `jobs.json` import
/// it once: one process imports, the others wait for it and find it done.
#[tokio::test]
async fn replicas_that_start_together_import_jobs_json_once() {
    if skipped() {
        return;
    }
    let fakes = Fakes::start().await;
    let data = tempfile::tempdir().unwrap();
    let jobs: Vec<Value> = (0..500)
        .map(|n| {
            json!({
                "id": format!("old-{n}"),
                "url": format!("https://example.com/{n}.mp3"),
                "status": "completed",
                "summary": format!("summary {n}"),
                "created_at": 1_758_000_000_000_i64 + n,
                "updated_at": 1_758_000_000_000_i64 + n,
                "logs": ["[2025-09-25T20:10:00.000Z] Job completed"],
                "checkpoint": { "step": "summarize" }
            })
        })
        .collect();
    std::fs::write(
        data.path().join("jobs.json"),
        Value::Array(jobs).to_string(),
    )
    .unwrap();
    // The database exists before the three start, as a shared one would.
    crate::database::url_for(data.path()).await;
    let mut env = fakes.env();
    env.push(("RUST_LOG", "info".into()));
    env.push(("LOG_FORMAT", "text".into()));
    let logs = tempfile::tempdir().unwrap();
    let starting = (0..3).map(|n| {
        let env = env.clone();
        let log = logs.path().join(format!("replica-{n}.log"));
        let data = data.path().to_path_buf();
        async move { ServerProcess::start_logging_to(&data, &env, &log).await }
    });
    let servers = futures_util::future::join_all(starting).await;
    let metrics = client()
        .get(format!("{}/metrics", servers[2].address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("focusflow_jobs{status=\"completed\"} 500\n"),
        "{metrics}"
    );
    let imported: usize = (0..3)
        .map(|n| {
            let log =
                std::fs::read_to_string(logs.path().join(format!("replica-{n}.log"))).unwrap();
            assert!(!log.contains("could not import jobs.json"), "{log}");
            log.matches("imported the previous FocusFlow's jobs.json")
                .count()
        })
        .sum();
    assert_eq!(imported, 1, "replicas that imported jobs.json");
    let old: Value = servers[1].get_json("/api/jobs/old-7").await;
    assert_eq!(logs_of(&old).matches("Job completed").count(), 1, "{old:#}");
}
