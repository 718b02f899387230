//! `TestApp`: the real application on port 0 with a temporary data directory, wired to the
//! loopback fakes; plus named helpers for what tests do again and again.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use focusflow::Application;
use focusflow::config::{Config, RetryPolicy, Secret};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::fakes::{self, AssemblyAi, AudioHost, Llm, Plaud, SpeechToText};

/// Every fake service, started once per test.
#[derive(Clone)]
pub struct Fakes {
    pub audio: AudioHost,
    pub plaud: Plaud,
    pub assemblyai: AssemblyAi,
    pub llm: Llm,
    pub speech: SpeechToText,
}

impl Fakes {
    pub async fn start() -> Self {
        let audio = AudioHost::start().await;
        let plaud = Plaud::start(audio.url("plaud.mp3")).await;
        // One record of what the providers did for which numbered recording.
        let traces = std::sync::Arc::default();
        Self {
            plaud,
            audio,
            assemblyai: AssemblyAi::start(std::sync::Arc::clone(&traces)).await,
            llm: Llm::start(traces).await,
            speech: SpeechToText::start().await,
        }
    }

    /// The environment a server process needs to use these fakes.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OPENAI_API_KEY", fakes::OPENAI_KEY.into()),
            ("OPENAI_BASE_URL", format!("{}/v1", self.llm.base)),
            ("ASSEMBLYAI_API_KEY", fakes::ASSEMBLYAI_KEY.into()),
            ("ASSEMBLYAI_BASE_URL", self.assemblyai.base.clone()),
            ("ASSEMBLYAI_POLL_INTERVAL_MS", "20".into()),
            ("PLAUD_WEB_BASE_URL", self.plaud.web_base.clone()),
            ("PLAUD_API_BASE_URL", self.plaud.api_base.clone()),
            ("ALLOW_PRIVATE_URLS", "true".into()),
            // A server killed with -9 holds its jobs until their leases run out; keep that
            // short, so the next server takes them over within a test's patience.
            ("JOB_LEASE_SECS", "2".into()),
        ]
    }
}

/// Quiet unless TEST_LOG is set.
fn init_tracing() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = focusflow::telemetry::init(focusflow::config::LogFormat::Text, "info");
    }
}

/// The server binary tests start: `FOCUSFLOW_BIN` when set (a release build, or a copy kept
/// apart from a target folder that other builds write to), else the one Cargo built.
pub fn focusflow_binary() -> PathBuf {
    std::env::var_os("FOCUSFLOW_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_focusflow")))
}

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A configuration pointing at the fakes, with fast polling and retries.
pub fn test_config(data_dir: &Path, fakes: &Fakes) -> Config {
    let mut config = Config::for_data_dir(data_dir);
    config.host = "127.0.0.1".parse().unwrap();
    config.port = 0;
    config.openai_api_key = Some(Secret::new(fakes::OPENAI_KEY));
    config.openai_base_url = format!("{}/v1", fakes.llm.base);
    config.assemblyai_api_key = Some(Secret::new(fakes::ASSEMBLYAI_KEY));
    config.assemblyai_base_url = fakes.assemblyai.base.clone();
    config.assemblyai_poll_interval = Duration::from_millis(20);
    config.plaud_web_base_url = fakes.plaud.web_base.clone();
    config.plaud_api_base_url = fakes.plaud.api_base.clone();
    config.allow_private_urls = true;
    config.prompt_path = repo_path("prompts/meeting_summary.md");
    config.title_prompt_path = repo_path("prompts/title_generator.md");
    config.retry = RetryPolicy {
        attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    };
    // The OpenAI-compatible speech-to-text fake is used only by tests that set
    // `transcribe_base_url` (see `TestApp::spawn_with_openai_transcriber`).
    config.transcribe_api_key = Some(Secret::new(fakes::TRANSCRIBE_KEY));
    config.transcribe_model = fakes::TRANSCRIBE_MODEL.into();
    config.provider_read_timeout = Duration::from_secs(10);
    // Tests poll fast; the limiter has tests of its own.
    config.rate_limit_max_requests = 0;
    config
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    pub fakes: Fakes,
    pub config: Config,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<()>>,
    // Kept alive for the test's duration; None when the directory belongs to someone else.
    _temp: Option<tempfile::TempDir>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_with_fakes(|config, _| adjust(config)).await
    }

    /// Transcription by the OpenAI-compatible fake instead of AssemblyAI.
    pub async fn spawn_with_openai_transcriber(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_with_fakes(|config, fakes| {
            config.transcriber = focusflow::config::TranscriberChoice::OpenAi;
            config.transcribe_base_url = Some(format!("{}/v1", fakes.speech.base));
            adjust(config);
        })
        .await
    }

    pub async fn spawn_with_fakes(adjust: impl FnOnce(&mut Config, &Fakes)) -> Self {
        let fakes = Fakes::start().await;
        let temp = tempfile::tempdir().unwrap();
        let mut config = test_config(temp.path(), &fakes);
        adjust(&mut config, &fakes);
        let mut app = Self::start(config, fakes).await;
        app._temp = Some(temp);
        app
    }

    /// Starts an application with exactly this configuration (on PostgreSQL, in the database
    /// of its data directory unless the configuration names one).
    pub async fn start(mut config: Config, fakes: Fakes) -> Self {
        init_tracing();
        crate::database::configure(&mut config).await;
        crate::storage::configure(&mut config);
        let application = Application::build(config.clone())
            .await
            .expect("the app builds");
        let address = format!("http://{}", application.address());
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let server = tokio::spawn(async move {
            application.run_until_stopped(token).await.unwrap();
        });
        Self {
            address,
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            data_dir: config.data_dir.clone(),
            fakes,
            config,
            shutdown,
            server: Some(server),
            _temp: None,
        }
    }

    /// Removes `dir` (the app's data directory) when the app goes.
    pub fn keep_dir(&mut self, dir: tempfile::TempDir) {
        self._temp = Some(dir);
    }

    /// Stops this server (as SIGTERM would) and starts a new one on the same data directory.
    pub async fn restart(mut self) -> Self {
        self.stop().await;
        let temp = self._temp.take();
        let mut again = Self::start(self.config.clone(), self.fakes.clone()).await;
        again._temp = temp;
        again
    }

    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("the server stops within 10 s")
                .unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// Creates a job and returns its JSON; panics unless the answer is 201.
    pub async fn create_job(&self, url: &str) -> Value {
        self.create_job_with(json!({ "url": url })).await
    }

    pub async fn create_job_with(&self, body: Value) -> Value {
        let response = self.post_json("/api/jobs", body).await;
        assert_eq!(response.status(), 201, "creating a job");
        response.json().await.unwrap()
    }

    pub async fn job(&self, id: &str) -> Value {
        let response = self.get(&format!("/api/jobs/{id}?content=true")).await;
        assert_eq!(response.status(), 200, "reading job {id}");
        response.json().await.unwrap()
    }

    /// Polls the job until its status is `status`; fails fast if it ends in another state.
    pub async fn wait_for_status(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let job = self.job(id).await;
            let current = job["status"].as_str().unwrap_or_default().to_string();
            if current == status {
                return job;
            }
            let finished = current == "completed" || current == "error";
            if finished && status != current {
                panic!("job {id} ended as {current}, not {status}: {job:#}");
            }
            if Instant::now() > deadline {
                panic!("job {id} did not reach {status} in time: {job:#}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until `check` holds for the job.
    pub async fn wait_for(&self, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let job = self.job(id).await;
            if check(&job) {
                return job;
            }
            if Instant::now() > deadline {
                panic!("job {id}: {what} did not happen in time: {job:#}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The names in `folder` of the data directory and, on S3, of the app's bucket.
    pub fn files_in(&self, folder: &str) -> Vec<String> {
        let mut names = files_in(&self.data_dir.join(folder));
        names.extend(crate::storage::objects_in(&self.data_dir, folder));
        names.sort();
        names
    }
}

pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

pub fn logs_of(job: &Value) -> String {
    job["logs"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// The release or debug binary as a separate process, for kill -9 and signal tests.
pub struct ServerProcess {
    pub child: Child,
    pub address: String,
}

impl ServerProcess {
    pub async fn start(data_dir: &Path, env: &[(&str, String)]) -> Self {
        let stderr = if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        Self::start_with_output(data_dir, env, stderr).await
    }

    /// As [`Self::start`], with everything the server logs written to `log`.
    pub async fn start_logging_to(data_dir: &Path, env: &[(&str, String)], log: &Path) -> Self {
        let file = std::fs::File::create(log).unwrap();
        Self::start_with_output(data_dir, env, Stdio::from(file)).await
    }

    async fn start_with_output(data_dir: &Path, env: &[(&str, String)], stderr: Stdio) -> Self {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let mut command = Command::new(focusflow_binary());
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("DATA_DIR", data_dir)
            .env("PROMPT_PATH", repo_path("prompts/meeting_summary.md"))
            .env("RUST_LOG", "warn")
            .current_dir(data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        if !env.iter().any(|(name, _)| *name == "DATABASE_URL")
            && let Some(url) = crate::database::url_for(data_dir).await
        {
            command.env("DATABASE_URL", url);
        }
        if !env.iter().any(|(name, _)| *name == "STORAGE_URL") {
            command.envs(crate::storage::env_for(data_dir));
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("the binary starts");
        let server = Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
        };
        server.wait_healthy().await;
        server
    }

    async fn wait_healthy(&self) {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(response) = client
                .get(format!("{}/api/health", self.address))
                .send()
                .await
                && response.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not become healthy"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// GET `path` and the JSON it answers.
    pub async fn get_json(&self, path: &str) -> Value {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let response = client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    /// POST `body` as JSON to `path` and the JSON it answers.
    pub async fn post_json(&self, path: &str, body: Value) -> Value {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let response = client
            .post(format!("{}{path}", self.address))
            .json(&body)
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM and returns how the process ended and how long it took.
    pub fn terminate(&mut self) -> (std::process::ExitStatus, Duration) {
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, started.elapsed());
            }
            assert!(Instant::now() < deadline, "the server ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `PATCH /api/jobs/<id>` with `change`, which must be taken (200).
pub async fn patch_job(app: &TestApp, id: &str, change: Value) {
    let response = app
        .client
        .patch(app.url(&format!("/api/jobs/{id}")))
        .json(&change)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// `DELETE /api/jobs/<id>`, which must succeed.
pub async fn delete_job(app: &TestApp, id: &str) {
    let response = app
        .client
        .delete(app.url(&format!("/api/jobs/{id}")))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
}

/// Cookies as a browser keeps them: by name, replaced by a later `Set-Cookie` of the same
/// name, removed by one with `Max-Age=0`, all sent back together.
#[derive(Clone, Debug, Default)]
pub struct CookieJar(std::collections::BTreeMap<String, String>);

impl CookieJar {
    /// Takes every `Set-Cookie` of `response`.
    pub fn remember(&mut self, response: &reqwest::Response) {
        for line in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let line = line.to_str().unwrap();
            let mut parts = line.split(';');
            let (name, value) = parts.next().unwrap().trim().split_once('=').unwrap();
            let removed = parts.any(|attribute| attribute.trim().eq_ignore_ascii_case("max-age=0"));
            if removed {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_string(), value.to_string());
            }
        }
    }

    /// The `Cookie` header a browser sends, if it has any cookie.
    pub fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// Whether the jar holds cookie `name`.
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}
