//! Loopback fakes of every external service, speaking the real wire protocols: an audio host,
//! Plaud's share page and APIs, AssemblyAI's REST API, and an OpenAI-compatible server in both
//! the chat-completions and the Responses streaming formats.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

pub const ASSEMBLYAI_KEY: &str = "aai-test-key";
pub const OPENAI_KEY: &str = "sk-test-key";
pub const TITLE: &str = "Quarterly Planning Sync";

/// Starts `router` on 127.0.0.1 port 0 and returns its base URL.
pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{address}")
}

/// Counts calls by name.
#[derive(Default, Clone)]
pub struct Counter(Arc<Mutex<HashMap<String, usize>>>);

impl Counter {
    pub fn hit(&self, name: &str) -> usize {
        let mut map = self.0.lock().unwrap();
        let count = map.entry(name.to_string()).or_default();
        *count += 1;
        *count
    }

    pub fn get(&self, name: &str) -> usize {
        self.0.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

// ---------------------------------------------------------------- audio host

#[derive(Clone, Default)]
pub struct AudioHost {
    pub base: String,
    pub calls: Counter,
}

/// A few hundred bytes that start like an MP3 file.
pub fn fake_mp3(size: usize) -> Vec<u8> {
    let mut bytes = b"ID3\x04\x00\x00\x00\x00\x00\x00".to_vec();
    bytes.extend((0..size.saturating_sub(10)).map(|i| (i % 251) as u8));
    bytes
}

impl AudioHost {
    pub async fn start() -> Self {
        let calls = Counter::default();
        let router = Router::new()
            .route("/media/{name}", get(audio_file))
            .with_state(calls.clone());
        let base = serve(router).await;
        Self { base, calls }
    }

    pub fn url(&self, name: &str) -> String {
        format!("{}/media/{name}", self.base)
    }
}

async fn audio_file(State(calls): State<Counter>, Path(name): Path<String>) -> Response {
    calls.hit(&name);
    match name.as_str() {
        "meeting.mp3" | "plaud.mp3" => {
            ([(header::CONTENT_TYPE, "audio/mpeg")], fake_mp3(4096)).into_response()
        }
        // No extension: the type must come from the Content-Type.
        "recording" => ([(header::CONTENT_TYPE, "audio/mp4")], fake_mp3(2048)).into_response(),
        "zoom.mp4" => ([(header::CONTENT_TYPE, "video/mp4")], fake_mp3(2048)).into_response(),
        "page.html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<html><body>Sign in to listen</body></html>",
        )
            .into_response(),
        "large.mp3" => ([(header::CONTENT_TYPE, "audio/mpeg")], fake_mp3(50_000)).into_response(),
        "huge.mp3" => ([(header::CONTENT_TYPE, "audio/mpeg")], fake_mp3(4 << 20)).into_response(),
        "large-stream.mp3" => {
            // Chunked, no Content-Length: the limit must hold while streaming.
            let chunks = (0..50).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![7u8; 1000])));
            Response::builder()
                .header(header::CONTENT_TYPE, "audio/mpeg")
                .body(Body::from_stream(futures_util::stream::iter(chunks)))
                .unwrap()
        }
        "missing.mp3" => StatusCode::NOT_FOUND.into_response(),
        // `job-<n>.mp3`: a recording that says which it is (see `Traces`).
        name if numbered(name).is_some() => {
            let mut bytes = fake_mp3(4096);
            let marker = format!("{name};");
            bytes[10..10 + marker.len()].copy_from_slice(marker.as_bytes());
            ([(header::CONTENT_TYPE, "audio/mpeg")], bytes).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `n` of a `job-<n>.mp3` name.
fn numbered(name: &str) -> Option<usize> {
    name.strip_prefix("job-")?
        .strip_suffix(".mp3")?
        .parse()
        .ok()
}

/// The recording `job-<n>.mp3` named in a body (an upload), if one is.
fn numbered_in(body: &[u8]) -> Option<usize> {
    let start = body.windows(4).position(|window| window == b"job-")?;
    let rest = &body[start..];
    let end = rest.iter().position(|byte| *byte == b';')?;
    numbered(std::str::from_utf8(&rest[..end]).ok()?)
}

/// What the providers did for each numbered recording (`job-<n>.mp3`), to tell which stage ran
/// when and how often for which job, whichever process asked.
#[derive(Default, Debug)]
pub struct Traces {
    /// Upload number → recording number.
    uploads: HashMap<usize, usize>,
    /// Transcript id → recording number.
    transcripts: HashMap<String, usize>,
    /// Every poll: (recording, transcript id, when).
    pub polls: Vec<(usize, String, std::time::Instant)>,
    /// Summaries asked for, by recording.
    pub summaries: HashMap<usize, usize>,
    /// Summaries being written now, by recording.
    writing: HashMap<usize, usize>,
    /// Recordings whose summary was asked for while another for it was being written.
    pub overlapping_summaries: Vec<usize>,
}

impl Traces {
    /// Recordings whose transcription ran twice at once: a transcript polled after another
    /// transcript of the same recording had been created and polled.
    pub fn overlapping_transcriptions(&self) -> Vec<usize> {
        let mut last_of: HashMap<usize, String> = HashMap::new();
        let mut left: HashMap<usize, Vec<String>> = HashMap::new();
        let mut overlapping = Vec::new();
        for (job, transcript, _) in &self.polls {
            let abandoned = left.entry(*job).or_default();
            if abandoned.contains(transcript) {
                overlapping.push(*job);
            }
            if let Some(previous) = last_of.insert(*job, transcript.clone())
                && previous != *transcript
            {
                abandoned.push(previous);
            }
        }
        overlapping.sort_unstable();
        overlapping.dedup();
        overlapping
    }

    /// Transcripts made for each recording.
    pub fn transcriptions(&self, job: usize) -> usize {
        self.transcripts.values().filter(|n| **n == job).count()
    }
}

/// A summary being written; done when the response ends or its connection drops.
struct Writing {
    traces: Arc<Mutex<Traces>>,
    job: usize,
}

impl Drop for Writing {
    fn drop(&mut self) {
        let mut traces = self.traces.lock().unwrap();
        if let Some(count) = traces.writing.get_mut(&self.job) {
            *count = count.saturating_sub(1);
        }
    }
}

/// A server that accepts connections and never answers: the worst kind of provider.
pub async fn black_hole() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (format!("http://{address}"), accepted)
}

// ---------------------------------------------------------------- Plaud

#[derive(Clone)]
pub struct Plaud {
    pub web_base: String,
    pub api_base: String,
    pub calls: Counter,
}

#[derive(Clone)]
struct PlaudState {
    audio_url: String,
    calls: Counter,
}

impl Plaud {
    /// `audio_url` is where every route of the chain points to.
    pub async fn start(audio_url: String) -> Self {
        let calls = Counter::default();
        let state = PlaudState {
            audio_url,
            calls: calls.clone(),
        };
        let web = Router::new()
            .route("/share/{token}", get(plaud_page))
            .with_state(state.clone());
        let api = Router::new()
            .route("/file/share-file-temp/{token}", get(plaud_temp))
            .route("/file/share-content/{token}", get(plaud_content))
            .with_state(state);
        Self {
            web_base: serve(web).await,
            api_base: serve(api).await,
            calls,
        }
    }
}

/// Tokens choose which link of the chain works: `temp`, `content`, `direct`, `nextdata`,
/// `field`, or `none` (nothing works).
async fn plaud_page(State(state): State<PlaudState>, Path(token): Path<String>) -> Response {
    state.calls.hit(&format!("page:{token}"));
    let audio = &state.audio_url;
    let escaped = audio.replace('/', "\\u002F");
    let double_escaped = audio.replace('/', "\\\\u002F");
    let body = match token.as_str() {
        "direct" => format!("<a href=\"{audio}\">Download</a>"),
        "nextdata" => format!(
            r#"<script id="__NEXT_DATA__" type="application/json">{{"props":{{"pageProps":{{"detail":{{"name":"x","media":{{"src":"{double_escaped}"}}}}}}}}}}</script>"#
        ),
        "field" => format!(r#"<script>self.__data = {{"audioUrl":"{escaped}"}};</script>"#),
        _ => "<div id=\"app\"></div>".to_string(),
    };
    let title = if token == "content" {
        "Shared recording - Plaud".to_string()
    } else {
        "Weekly sync 2025-09-25 20:05:39 - Plaud".to_string()
    };
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            "<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"
        ),
    )
        .into_response()
}

async fn plaud_temp(State(state): State<PlaudState>, Path(token): Path<String>) -> Response {
    state.calls.hit(&format!("temp:{token}"));
    if token == "temp" {
        Json(json!({ "status": 0, "data": { "temp_url": state.audio_url } })).into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(json!({ "status": -1, "msg": "not found" })),
        )
            .into_response()
    }
}

async fn plaud_content(State(state): State<PlaudState>, Path(token): Path<String>) -> Response {
    state.calls.hit(&format!("content:{token}"));
    if token == "content" {
        Json(json!({
            "data": { "fileUrl": state.audio_url, "createTime": 1_758_830_739_000_i64 }
        }))
        .into_response()
    } else {
        Json(json!({ "data": { "title": "no file here" } })).into_response()
    }
}

// ---------------------------------------------------------------- AssemblyAI

#[derive(Clone)]
pub struct AssemblyAi {
    pub base: String,
    pub calls: Counter,
    pub behaviour: Arc<Mutex<AssemblyBehaviour>>,
    uploaded_bytes: Arc<AtomicUsize>,
    /// How long every request waits before it is answered (a provider's own latency).
    pub delay: Arc<Mutex<Duration>>,
    pub traces: Arc<Mutex<Traces>>,
}

#[derive(Clone, Debug)]
pub struct AssemblyBehaviour {
    /// Polls answered "processing" before the transcript completes.
    pub polls_before_done: usize,
    /// Completes with `status: "error"` and this message instead.
    pub error: Option<String>,
}

impl Default for AssemblyBehaviour {
    fn default() -> Self {
        Self {
            polls_before_done: 2,
            error: None,
        }
    }
}

#[derive(Clone)]
struct AssemblyState {
    calls: Counter,
    behaviour: Arc<Mutex<AssemblyBehaviour>>,
    uploaded_bytes: Arc<AtomicUsize>,
    delay: Arc<Mutex<Duration>>,
    traces: Arc<Mutex<Traces>>,
}

impl AssemblyState {
    async fn wait(&self) {
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

impl AssemblyAi {
    /// Starts the fake; numbered recordings' transcriptions are recorded in `traces`.
    pub async fn start(traces: Arc<Mutex<Traces>>) -> Self {
        let calls = Counter::default();
        let behaviour = Arc::new(Mutex::new(AssemblyBehaviour::default()));
        let uploaded_bytes = Arc::new(AtomicUsize::new(0));
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let state = AssemblyState {
            calls: calls.clone(),
            behaviour: behaviour.clone(),
            uploaded_bytes: uploaded_bytes.clone(),
            delay: delay.clone(),
            traces: traces.clone(),
        };
        let router = Router::new()
            .route("/v2/upload", post(assembly_upload))
            .route("/v2/transcript", post(assembly_create))
            .route("/v2/transcript/{id}", get(assembly_poll))
            .with_state(state)
            // Recordings larger than a multipart upload's part (the S3 tests send 12 MiB).
            .layer(axum::extract::DefaultBodyLimit::max(64 << 20));
        Self {
            base: serve(router).await,
            calls,
            behaviour,
            uploaded_bytes,
            delay,
            traces,
        }
    }

    pub fn set(&self, behaviour: AssemblyBehaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    pub fn uploaded_bytes(&self) -> usize {
        self.uploaded_bytes.load(Ordering::SeqCst)
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .is_some_and(|value| value == ASSEMBLYAI_KEY)
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({ "error": "Authentication error, API token missing/invalid" })),
    )
        .into_response()
}

async fn assembly_upload(
    State(state): State<AssemblyState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    state.wait().await;
    let count = state.calls.hit("upload");
    state.uploaded_bytes.fetch_add(body.len(), Ordering::SeqCst);
    if let Some(job) = numbered_in(&body) {
        state.traces.lock().unwrap().uploads.insert(count, job);
    }
    Json(json!({ "upload_url": format!("https://cdn.assemblyai.example/upload/{count}") }))
        .into_response()
}

async fn assembly_create(
    State(state): State<AssemblyState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    if body.get("speaker_labels") != Some(&Value::Bool(true)) || body.get("audio_url").is_none() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "speaker_labels and audio_url are required by this fake" })),
        )
            .into_response();
    }
    state.wait().await;
    let count = state.calls.hit("create");
    let upload = body
        .get("audio_url")
        .and_then(Value::as_str)
        .and_then(|url| url.rsplit('/').next())
        .and_then(|n| n.parse::<usize>().ok());
    let mut traces = state.traces.lock().unwrap();
    if let Some(job) = upload.and_then(|upload| traces.uploads.get(&upload).copied()) {
        traces.transcripts.insert(format!("tr-{count}"), job);
    }
    Json(json!({ "id": format!("tr-{count}"), "status": "queued" })).into_response()
}

async fn assembly_poll(
    State(state): State<AssemblyState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    state.wait().await;
    state.calls.hit("poll");
    let polls = state.calls.hit(&format!("poll:{id}"));
    let job = {
        let mut traces = state.traces.lock().unwrap();
        let job = traces.transcripts.get(&id).copied();
        if let Some(job) = job {
            traces
                .polls
                .push((job, id.clone(), std::time::Instant::now()));
        }
        job
    };
    let behaviour = state.behaviour.lock().unwrap().clone();
    if polls <= behaviour.polls_before_done {
        return Json(
            json!({ "id": id, "status": if polls == 1 { "queued" } else { "processing" } }),
        )
        .into_response();
    }
    if let Some(error) = behaviour.error {
        return Json(json!({ "id": id, "status": "error", "error": error })).into_response();
    }
    // A numbered recording's transcript says its number, so the summary's prompt does too.
    let hello = match job {
        Some(job) => format!("Hello everyone, this is meeting number {job}."),
        None => "Hello everyone.".to_string(),
    };
    Json(json!({
        "id": id,
        "status": "completed",
        "text": format!("{hello} Let's plan the launch. I will ship the beta by Friday."),
        "utterances": [
            { "speaker": "A", "text": hello, "start": 0, "end": 1200, "confidence": 0.98 },
            { "speaker": "A", "text": "Let's plan the launch.", "start": 1300, "end": 2500, "confidence": 0.97 },
            { "speaker": "B", "text": "I will ship the beta by Friday.", "start": 2600, "end": 4100, "confidence": 0.95 }
        ]
    }))
    .into_response()
}

// ---------------------------------------------------------------- OpenAI-compatible LLM

#[derive(Clone)]
pub struct Llm {
    pub base: String,
    pub calls: Counter,
    pub behaviour: Arc<Mutex<LlmBehaviour>>,
    pub prompts: Arc<Mutex<Vec<String>>>,
    /// How long every request waits before its answer starts (a provider's own latency).
    pub delay: Arc<Mutex<Duration>>,
}

#[derive(Clone, Debug, Default)]
pub struct LlmBehaviour {
    /// The next this-many calls answer 503 (with `Retry-After: 0`).
    pub fail_with_503: usize,
    /// The next this-many calls answer 400 with an OpenAI error body.
    pub fail_with_400: usize,
    /// Interleave comments, keep-alives, blank data and junk lines in the stream.
    pub junk: bool,
    /// Stream the summary slowly (a pause between chunks), to watch it grow.
    pub slow: bool,
    /// What an Ask prompt is answered with (default: [`ask_answer`]).
    pub ask_answer: Option<String>,
    /// Answer an Ask prompt with a stream of junk that ends without saying it is done.
    pub ask_garbage: bool,
}

/// The instruction that marks an Ask prompt (from `prompts/ask.md`).
pub const ASK_MARK: &str = "numbered passages";

/// The fake's default answer to an Ask prompt: the first passage's words, cited, and a
/// citation of a passage that does not exist.
pub fn ask_answer(prompt: &str) -> String {
    let first = prompt
        .split("\n[1] ")
        .nth(1)
        .and_then(|rest| rest.lines().nth(1))
        .unwrap_or("nothing");
    format!("They said: {first} [1]. Also this [99].")
}

#[derive(Clone)]
struct LlmState {
    calls: Counter,
    behaviour: Arc<Mutex<LlmBehaviour>>,
    prompts: Arc<Mutex<Vec<String>>>,
    delay: Arc<Mutex<Duration>>,
    traces: Arc<Mutex<Traces>>,
}

impl LlmState {
    /// Waits the fixed delay; for a summary of a numbered recording, records it as being
    /// written until the returned guard goes.
    async fn begin(&self, prompt: &str) -> Option<Writing> {
        let delay = *self.delay.lock().unwrap();
        let writing = meeting_number(prompt)
            .filter(|_| !prompt.contains("Write a title for the meeting"))
            .map(|job| {
                let mut traces = self.traces.lock().unwrap();
                *traces.summaries.entry(job).or_default() += 1;
                let now = traces.writing.entry(job).or_default();
                *now += 1;
                if *now > 1 {
                    traces.overlapping_summaries.push(job);
                }
                Writing {
                    traces: self.traces.clone(),
                    job,
                }
            });
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        writing
    }
}

/// `n` of "meeting number <n>" in a prompt.
fn meeting_number(prompt: &str) -> Option<usize> {
    let start = prompt.find("meeting number ")? + "meeting number ".len();
    let digits: String = prompt[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

impl Llm {
    /// Starts the fake; numbered recordings' summaries are recorded in `traces` (the
    /// transcriptions' record, see `Fakes::start`).
    pub async fn start(traces: Arc<Mutex<Traces>>) -> Self {
        let calls = Counter::default();
        let behaviour = Arc::new(Mutex::new(LlmBehaviour::default()));
        let prompts = Arc::new(Mutex::new(Vec::new()));
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let state = LlmState {
            calls: calls.clone(),
            behaviour: behaviour.clone(),
            prompts: prompts.clone(),
            delay: delay.clone(),
            traces,
        };
        let router = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/responses", post(responses))
            .route("/v1/embeddings", post(embeddings))
            .with_state(state);
        Self {
            base: serve(router).await,
            calls,
            behaviour,
            prompts,
            delay,
        }
    }

    pub fn set(&self, behaviour: LlmBehaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    pub fn summary_calls(&self) -> usize {
        self.calls.get("summary")
    }
}

/// The summary the fake writes; `n` makes each one different.
pub fn summary_text(n: usize) -> String {
    format!(
        "# Launch planning\n\n## Overview\nVersion {n}. The team planned the launch.\n\n## Action items\n| Action | Owner | Due date |\n|---|---|---|\n| Ship the beta | Speaker B | 3 October 2025 |\n\n## Next steps\n- Review on Monday.\n"
    )
}

/// Splits a text into stream chunks of a few characters (on char boundaries).
fn chunks(text: &str) -> Vec<String> {
    let characters: Vec<char> = text.chars().collect();
    characters.chunks(7).map(|c| c.iter().collect()).collect()
}

enum Answer {
    Fail(Response),
    /// Junk, then the end of the stream without `[DONE]` or a finish reason.
    Garbage,
    Text {
        text: String,
        junk: bool,
        slow: bool,
    },
}

fn answer_for(state: &LlmState, headers: &HeaderMap, prompt: &str) -> Answer {
    let bearer = format!("Bearer {OPENAI_KEY}");
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if given != bearer {
        // As OpenAI does: the key it received, echoed in the message.
        let key = given.trim_start_matches("Bearer ");
        return Answer::Fail(
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({ "error": {
                    "message": format!("Incorrect API key provided: {key}. You can find your API key at https://platform.openai.com/account/api-keys."),
                    "type": "invalid_request_error",
                    "code": "invalid_api_key"
                } })),
            )
                .into_response(),
        );
    }
    state.prompts.lock().unwrap().push(prompt.to_string());
    let mut behaviour = state.behaviour.lock().unwrap();
    if behaviour.fail_with_503 > 0 {
        behaviour.fail_with_503 -= 1;
        state.calls.hit("503");
        return Answer::Fail(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "0")],
                Json(json!({ "error": { "message": "The server is overloaded" } })),
            )
                .into_response(),
        );
    }
    if behaviour.fail_with_400 > 0 {
        behaviour.fail_with_400 -= 1;
        state.calls.hit("400");
        return Answer::Fail(
            (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": { "message": "This model's maximum context length is 8192 tokens" } })),
            )
                .into_response(),
        );
    }
    if prompt.contains(ASK_MARK) {
        state.calls.hit("ask");
        if behaviour.ask_garbage {
            return Answer::Garbage;
        }
        let text = behaviour
            .ask_answer
            .clone()
            .unwrap_or_else(|| ask_answer(prompt));
        return Answer::Text {
            text,
            junk: behaviour.junk,
            slow: false,
        };
    }
    let is_title = prompt.contains("Write a title for the meeting");
    let text = if is_title {
        state.calls.hit("title");
        format!("\"{TITLE}\"")
    } else {
        let n = state.calls.hit("summary");
        summary_text(n)
    };
    Answer::Text {
        text,
        junk: behaviour.junk,
        slow: behaviour.slow && !is_title,
    }
}

fn sse_response(frames: Vec<String>, slow: bool, writing: Option<Writing>) -> Response {
    // `writing` lives as long as the stream: until its last frame or a dropped connection.
    let stream = futures_util::stream::unfold(
        (frames.into_iter(), slow, writing),
        |(mut frames, slow, writing)| async move {
            let frame = frames.next()?;
            if slow {
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
            Some((
                Ok::<_, std::io::Error>(Bytes::from(frame)),
                (frames, slow, writing),
            ))
        },
    );
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// A stream of junk that ends without finishing.
fn garbage() -> Response {
    let mut frames: Vec<String> = JUNK.iter().map(|line| line.to_string()).collect();
    frames.push("data: {\"choices\": \"not a list\"}\n\n".to_string());
    frames.push("\u{0}\u{1}binary\n\n".to_string());
    sse_response(frames, false, None)
}

const JUNK: &[&str] = &[
    ": keep-alive\n\n",
    "\n",
    "data: \n\n",
    "this line is not SSE at all\n\n",
    "data: {not json\n\n",
    "event: ping\ndata: {}\n\n",
    "id: 42\nretry: 1000\n\n",
];

async fn chat(
    State(state): State<LlmState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    assert_eq!(
        body.get("stream"),
        Some(&Value::Bool(true)),
        "the app must stream"
    );
    let prompt = body
        .pointer("/messages/0/content")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let writing = state.begin(&prompt).await;
    let (text, junk, slow) = match answer_for(&state, &headers, &prompt) {
        Answer::Fail(response) => return response,
        Answer::Garbage => return garbage(),
        Answer::Text { text, junk, slow } => (text, junk, slow),
    };
    let mut frames = Vec::new();
    frames.push(format!(
        "data: {}\n\n",
        json!({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})
    ));
    for (index, piece) in chunks(&text).into_iter().enumerate() {
        if junk {
            frames.push(JUNK[index % JUNK.len()].to_string());
        }
        frames.push(format!(
            "data: {}\n\n",
            json!({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":piece},"finish_reason":null}]})
        ));
    }
    frames.push(format!(
        "data: {}\n\n",
        json!({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})
    ));
    frames.push("data: [DONE]\n\n".to_string());
    sse_response(frames, slow, writing)
}

async fn responses(
    State(state): State<LlmState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    assert_eq!(
        body.get("stream"),
        Some(&Value::Bool(true)),
        "the app must stream"
    );
    let prompt = body
        .get("input")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let writing = state.begin(&prompt).await;
    let (text, junk, slow) = match answer_for(&state, &headers, &prompt) {
        Answer::Fail(response) => return response,
        Answer::Garbage => return garbage(),
        Answer::Text { text, junk, slow } => (text, junk, slow),
    };
    let event = |kind: &str, data: Value| format!("event: {kind}\ndata: {data}\n\n");
    let mut frames = vec![
        event(
            "response.created",
            json!({"type":"response.created","response":{"id":"resp_1","status":"in_progress"}}),
        ),
        event(
            "response.output_item.added",
            json!({"type":"response.output_item.added","output_index":0,"item":{"type":"message","role":"assistant","content":[]}}),
        ),
    ];
    for (index, piece) in chunks(&text).into_iter().enumerate() {
        if junk {
            frames.push(JUNK[index % JUNK.len()].to_string());
        }
        frames.push(event(
            "response.output_text.delta",
            json!({"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":piece}),
        ));
    }
    frames.push(event(
        "response.output_text.done",
        json!({"type":"response.output_text.done","item_id":"msg_1","output_index":0,"content_index":0,"text":text}),
    ));
    frames.push(event(
        "response.completed",
        json!({"type":"response.completed","response":{"id":"resp_1","status":"completed"}}),
    ));
    sse_response(frames, slow, writing)
}

/// Words of one meaning: the fake embeddings put each group on one axis, so a question and a
/// passage that share no word but mean the same are close, as with a real model.
const CONCEPTS: &[&[&str]] = &[
    &[
        "freeze",
        "frozen",
        "halt",
        "halted",
        "pause",
        "stop",
        "suspend",
        "moratorium",
    ],
    &[
        "vendor",
        "vendors",
        "supplier",
        "suppliers",
        "contractor",
        "contractors",
    ],
    &[
        "price",
        "pricing",
        "cost",
        "costs",
        "expensive",
        "fee",
        "fees",
    ],
    &["report", "writeup", "document", "memo"],
    &["promise", "promised", "commit", "committed", "pledged"],
    &["holiday", "vacation", "leave", "break"],
];
pub const EMBEDDING_DIMS: usize = 64;

/// The fake's vector of a text: its words (concepts first) counted on hashed axes.
pub fn fake_embedding(text: &str) -> Vec<f32> {
    let mut vector = vec![0.0f32; EMBEDDING_DIMS];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| word.len() > 2)
    {
        let word = word.to_lowercase();
        let axis = match CONCEPTS
            .iter()
            .position(|group| group.contains(&word.as_str()))
        {
            Some(concept) => concept,
            None => {
                CONCEPTS.len()
                    + word
                        .bytes()
                        .fold(7usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize))
                        % (EMBEDDING_DIMS - CONCEPTS.len())
            }
        };
        vector[axis] += if axis < CONCEPTS.len() { 3.0 } else { 1.0 };
    }
    vector
}

async fn embeddings(State(state): State<LlmState>, Json(body): Json<Value>) -> Response {
    state.calls.hit("embeddings");
    if state.behaviour.lock().unwrap().fail_with_503 > 0 {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": { "message": "The server is overloaded" } })),
        )
            .into_response();
    }
    let inputs: Vec<String> = match body.get("input") {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().unwrap_or("").to_string())
            .collect(),
        _ => return (StatusCode::BAD_REQUEST, "no input").into_response(),
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| json!({ "object": "embedding", "index": index, "embedding": fake_embedding(text) }))
        .collect();
    Json(json!({ "object": "list", "data": data, "model": body["model"] })).into_response()
}

// ---------------------------------------------------------------- OpenAI-compatible speech-to-text

pub const TRANSCRIBE_KEY: &str = "stt-test-key";
pub const TRANSCRIBE_MODEL: &str = "whisper-test";
/// OpenAI's own limit, which the fake enforces like the real service.
pub const TRANSCRIBE_LIMIT: usize = 25 * 1024 * 1024;

/// One request the fake accepted.
#[derive(Clone, Debug)]
pub struct SpeechRequest {
    pub file_name: String,
    pub bytes: usize,
    pub content_type: String,
    /// How long the audio played, as the fake heard it.
    pub seconds: f64,
}

/// Counts, under `calls`: `request` (every well-formed request), `transcribe` (answered),
/// `audio_too_short`, `undecodable` (a failure asked for by `fail_request`) and `413`.
#[derive(Clone)]
pub struct SpeechToText {
    pub base: String,
    pub calls: Counter,
    pub requests: Arc<Mutex<Vec<SpeechRequest>>>,
    fail_at: Arc<Mutex<Option<usize>>>,
}

#[derive(Clone)]
struct SpeechState {
    calls: Counter,
    requests: Arc<Mutex<Vec<SpeechRequest>>>,
    fail_at: Arc<Mutex<Option<usize>>>,
}

impl SpeechToText {
    pub async fn start() -> Self {
        let calls = Counter::default();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let fail_at = Arc::new(Mutex::new(None));
        let state = SpeechState {
            calls: calls.clone(),
            requests: requests.clone(),
            fail_at: fail_at.clone(),
        };
        let router = Router::new()
            .route("/v1/audio/transcriptions", post(speech_transcribe))
            // Read past the limit, so the fake can answer 413 itself (as OpenAI does).
            .layer(axum::extract::DefaultBodyLimit::max(TRANSCRIBE_LIMIT * 2))
            .with_state(state);
        Self {
            base: serve(router).await,
            calls,
            requests,
            fail_at,
        }
    }

    pub fn requests(&self) -> Vec<SpeechRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// The `nth` request from now (1 = the next) fails once, with the 400 a server gives for
    /// audio it cannot decode; the requests after it are answered again.
    pub fn fail_request(&self, nth: usize) {
        *self.fail_at.lock().unwrap() = Some(self.calls.get("request") + nth);
    }
}

/// `{"error": {...}}` as OpenAI words it.
fn openai_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "message": message, "type": "invalid_request_error" } })),
    )
        .into_response()
}

/// Seconds of audio the fake "hears": 128 kbps MP3 frames are 16 000 bytes a second; the
/// small test files count as three seconds.
fn heard_seconds(audio: &[u8]) -> f64 {
    if audio.len() > 4 && audio[0] == 0xFF && audio[1] & 0xE0 == 0xE0 {
        audio.len() as f64 / 16_000.0
    } else {
        3.0
    }
}

async fn speech_transcribe(
    State(state): State<SpeechState>,
    headers: HeaderMap,
    mut form: axum::extract::Multipart,
) -> Response {
    let bearer = format!("Bearer {TRANSCRIBE_KEY}");
    if headers
        .get(header::AUTHORIZATION)
        .is_none_or(|value| value != bearer.as_str())
    {
        return openai_error(StatusCode::UNAUTHORIZED, "Incorrect API key provided");
    }
    let declared: usize = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    // The whole form is read before answering, so the client reads the answer, 413 or not.
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut file: Option<(String, String, Bytes)> = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => {
                return openai_error(StatusCode::BAD_REQUEST, &format!("bad form: {error}"));
            }
        };
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            let file_name = field.file_name().unwrap_or("").to_string();
            let content_type = field.content_type().unwrap_or("").to_string();
            let bytes = field.bytes().await.unwrap_or_default();
            file = Some((file_name, content_type, bytes));
        } else {
            fields.insert(name, field.text().await.unwrap_or_default());
        }
    }
    if declared > TRANSCRIBE_LIMIT {
        state.calls.hit("413");
        return openai_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Maximum content size limit (26214400) exceeded",
        );
    }
    if fields.get("model").map(String::as_str) != Some(TRANSCRIBE_MODEL) {
        return openai_error(StatusCode::BAD_REQUEST, "model must be whisper-test here");
    }
    if fields.get("response_format").map(String::as_str) != Some("verbose_json") {
        return openai_error(StatusCode::BAD_REQUEST, "this fake wants verbose_json");
    }
    let Some((file_name, content_type, audio)) = file else {
        return openai_error(StatusCode::BAD_REQUEST, "the file part is missing");
    };
    if file_name.is_empty() || audio.is_empty() {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "the file part needs a name and bytes",
        );
    }
    let request = state.calls.hit("request");
    let duration = heard_seconds(&audio);
    if duration < 0.1 {
        // OpenAI's answer word for word; ffmpeg-based servers fail on a lone frame too.
        state.calls.hit("audio_too_short");
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": {
                "message": "Audio file is too short. Minimum audio length is 0.1 seconds.",
                "type": "invalid_request_error",
                "param": "file",
                "code": "audio_too_short"
            } })),
        )
            .into_response();
    }
    {
        let mut fail_at = state.fail_at.lock().unwrap();
        if *fail_at == Some(request) {
            *fail_at = None;
            state.calls.hit("undecodable");
            return openai_error(
                StatusCode::BAD_REQUEST,
                "The audio file could not be decoded or its format is not supported.",
            );
        }
    }
    let n = state.calls.hit("transcribe");
    state.requests.lock().unwrap().push(SpeechRequest {
        file_name,
        bytes: audio.len(),
        content_type,
        seconds: duration,
    });
    let half = duration / 2.0;
    let first = format!("Part {n} begins.");
    let second = format!("Part {n} ends.");
    Json(json!({
        "task": "transcribe",
        "language": "english",
        "duration": duration,
        "text": format!("{first} {second}"),
        "segments": [
            { "id": 0, "seek": 0, "start": 0.0, "end": half, "text": format!(" {first}") },
            { "id": 1, "seek": 0, "start": half, "end": duration, "text": format!(" {second}") }
        ]
    }))
    .into_response()
}

/// A valid MPEG-1 Layer III stream (128 kbps, 44.1 kHz) of `frames` frames with silent
/// (zero) payloads, padded the way an encoder pads, so it can be cut at frame boundaries.
pub fn mp3_frames(frames: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(frames * 418);
    for index in 0..frames {
        let padded = index % 3 != 2;
        bytes.extend_from_slice(&[0xFF, 0xFB, if padded { 0x92 } else { 0x90 }, 0x64]);
        let length = if padded { 418 } else { 417 };
        bytes.resize(bytes.len() + length - 4, 0);
    }
    bytes
}
