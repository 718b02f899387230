//! Ask: questions answered from the meetings through `POST /api/ask` and the pages, against
//! the real server with the loopback LLM (and embeddings) fakes, on SQLite and, with
//! FOCUSFLOW_TEST_DATABASE_URL, PostgreSQL.

use std::time::{Duration, Instant};

use reqwest::header;
use serde_json::{Value, json};

use crate::fakes::LlmBehaviour;
use crate::helpers::TestApp;
use crate::pages::{Browser, TOKEN};

const NOTHING: &str = "Nothing in your meetings matches this question";

/// A meeting as a WebVTT transcript: Ana, then Ben at 4.5 s, then Ana again at 7.25 s.
fn vtt(first: &str, second: &str, third: &str) -> String {
    format!(
        "WEBVTT\n\n00:00:01.000 --> 00:00:04.500\n<v Ana>{first}</v>\n\n00:00:04.500 --> 00:00:07.250\n<v Ben>{second}</v>\n\n00:00:07.250 --> 00:00:09.000\n<v Ana>{third}</v>\n"
    )
}

/// Creates a meeting of three turns (as [`vtt`] writes them) on `date` and waits until it is
/// completed.
async fn meeting(app: &TestApp, [first, second, third]: [&str; 3], date: &str) -> String {
    let transcript = vtt(first, second, third);
    let job = app
        .create_job_with(json!({ "transcript": transcript, "meetingDate": date }))
        .await;
    completed(app, &job).await
}

/// A meeting from the fake audio (AssemblyAI's fake: "[Speaker A]: Hello everyone. Let's plan
/// the launch." then B at 2.6 s), completed.
async fn audio_meeting(app: &TestApp) -> String {
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    completed(app, &job).await
}

/// Waits until the job just created is completed; its id.
async fn completed(app: &TestApp, job: &Value) -> String {
    let id = job["id"].as_str().unwrap().to_string();
    app.wait_for_status(&id, "completed").await;
    id
}

async fn ask(app: &TestApp, body: Value) -> (u16, Value) {
    let response = app.post_json("/api/ask", body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Asks until the answer cites something (the index is built just after a job completes, in
/// the background), at most 30 s: generous, for CI machines whose 2 cores run many servers at
/// once.
async fn ask_until_cited(app: &TestApp, body: Value) -> Value {
    let started = Instant::now();
    loop {
        let (status, answer) = ask(app, body.clone()).await;
        assert_eq!(status, 200, "{answer}");
        if !answer["citations"].as_array().unwrap().is_empty() {
            return answer;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no citation within 30 s: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ask_prompts(app: &TestApp) -> Vec<String> {
    app.fakes
        .llm
        .prompts
        .lock()
        .unwrap()
        .iter()
        .filter(|prompt| prompt.contains(crate::fakes::ASK_MARK))
        .cloned()
        .collect()
}

#[tokio::test]
async fn an_answer_cites_the_moment_from_the_relevant_meeting_only() {
    let app = TestApp::spawn().await;
    let freeze = meeting(
        &app,
        [
            "Welcome to the review.",
            "We decided on a vendor freeze until March.",
            "Good.",
        ],
        "2025-03-04",
    )
    .await;
    let _party = meeting(
        &app,
        [
            "The office party is on Friday.",
            "Bring snacks and music.",
            "Noted.",
        ],
        "2025-03-05",
    )
    .await;

    let answer = ask_until_cited(
        &app,
        json!({ "question": "What did we decide about the vendor freeze?" }),
    )
    .await;

    // The prompt holds the relevant passage, numbered, and nothing of the other meeting.
    let prompt = ask_prompts(&app).pop().unwrap();
    assert!(
        prompt.contains("We decided on a vendor freeze until March."),
        "{prompt}"
    );
    assert!(prompt.contains("[1] Meeting:"), "{prompt}");
    assert!(!prompt.contains("office party"), "{prompt}");
    assert!(!prompt.contains("snacks"), "{prompt}");

    // The citation is Ben's turn in that meeting, at 4.5 s; the invented [99] is gone.
    let citations = answer["citations"].as_array().unwrap();
    assert_eq!(citations.len(), 1, "{answer}");
    let citation = &citations[0];
    assert_eq!(citation["n"], 1);
    assert_eq!(citation["job"], freeze.as_str());
    assert_eq!(citation["speaker"], "Ben");
    assert_eq!(citation["start"], 4.5);
    assert_eq!(
        citation["text"],
        "We decided on a vendor freeze until March."
    );
    assert!(
        citation["meeting_date"]
            .as_str()
            .unwrap()
            .starts_with("2025-03-04")
    );
    assert_eq!(citation["title"], app.job(&freeze).await["title"]);
    let text = answer["answer"].as_str().unwrap();
    assert!(text.contains("[1]") && !text.contains("[99]"), "{text}");
    assert!(answer["id"].as_str().is_some_and(|id| !id.is_empty()));
}

#[tokio::test]
async fn nothing_relevant_is_said_without_asking_the_model() {
    let app = TestApp::spawn().await;
    meeting(
        &app,
        ["Budget review.", "Costs are up.", "Fine."],
        "2025-01-01",
    )
    .await;
    let (status, answer) = ask(&app, json!({ "question": "Who won the chess tournament?" })).await;
    assert_eq!(status, 200);
    assert!(
        answer["answer"].as_str().unwrap().starts_with(NOTHING),
        "{answer}"
    );
    assert_eq!(answer["citations"], json!([]));
    assert_eq!(app.fakes.llm.calls.get("ask"), 0);
}

/// Reads an SSE answer: the deltas' text joined, and the final event's name and data.
async fn streamed(app: &TestApp, body: Value) -> (String, String, Value) {
    let response = app
        .client
        .post(app.url("/api/ask"))
        .header(header::ACCEPT, "text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = response.text().await.unwrap();
    let mut deltas = String::new();
    let mut last = (String::new(), Value::Null);
    for block in text.split("\n\n").filter(|block| !block.trim().is_empty()) {
        let mut kind = "message".to_string();
        let mut data = String::new();
        for line in block.lines() {
            if let Some(name) = line.strip_prefix("event:") {
                kind = name.trim().to_string();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push_str(value.trim_start());
            }
        }
        if data.is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&data).unwrap();
        if kind == "delta" {
            deltas.push_str(value["text"].as_str().unwrap());
        } else {
            last = (kind, value);
        }
    }
    (deltas, last.0, last.1)
}

#[tokio::test]
async fn the_streamed_answer_is_the_json_answer() {
    let app = TestApp::spawn().await;
    meeting(
        &app,
        [
            "Pricing first.",
            "The customer said the pricing is too high.",
            "Noted.",
        ],
        "2025-02-02",
    )
    .await;
    let body = json!({ "question": "What did the customer say about pricing?" });
    let whole = ask_until_cited(&app, body.clone()).await;
    let (deltas, kind, answer) = streamed(&app, body).await;
    assert_eq!(kind, "answer", "{answer}");
    assert_eq!(answer["answer"], whole["answer"]);
    assert_eq!(answer["citations"], whole["citations"]);
    assert_eq!(answer["question"], whole["question"]);
    // The deltas are the model's words as they came (with the invented number the answer
    // then drops).
    assert!(deltas.contains("[99]"), "{deltas}");
    assert!(deltas.starts_with("They said:"), "{deltas}");
}

#[tokio::test]
async fn a_deleted_meeting_is_never_cited_again() {
    let app = TestApp::spawn().await;
    let id = meeting(
        &app,
        ["Hello.", "The kangaroo budget was approved.", "Great."],
        "2025-04-01",
    )
    .await;
    let body = json!({ "question": "Was the kangaroo budget approved?" });
    ask_until_cited(&app, body.clone()).await;
    let calls = app.fakes.llm.calls.get("ask");
    crate::helpers::delete_job(&app, &id).await;
    let (status, answer) = ask(&app, body).await;
    assert_eq!(status, 200);
    assert!(
        answer["answer"].as_str().unwrap().starts_with(NOTHING),
        "{answer}"
    );
    assert_eq!(
        app.fakes.llm.calls.get("ask"),
        calls,
        "the model was not asked"
    );
}

#[tokio::test]
async fn named_speakers_appear_in_citations() {
    let app = TestApp::spawn().await;
    // Speaker B speaks at 2.6 s.
    let id = audio_meeting(&app).await;
    let body = json!({ "question": "Who will ship the beta?", "jobs": [id] });
    app.fakes.llm.set(LlmBehaviour {
        ask_answer: Some("Speaker B will [1].".into()),
        ..Default::default()
    });
    let before = ask_until_cited(&app, body.clone()).await;
    assert_eq!(before["citations"][0]["speaker"], "Speaker B");
    assert_eq!(before["citations"][0]["start"], 2.6);

    let response = app
        .client
        .put(app.url(&format!("/api/jobs/{id}/speakers")))
        .json(&json!({ "speakers": { "A": "Ana", "B": "Ben Smith" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, after) = ask(&app, body).await;
    assert_eq!(after["citations"][0]["speaker"], "Ben Smith", "{after}");
    let prompt = ask_prompts(&app).pop().unwrap();
    assert!(prompt.contains("— Ben Smith at 0:02"), "{prompt}");
}

#[tokio::test]
async fn a_question_about_one_meeting_reads_only_that_meeting() {
    let app = TestApp::spawn().await;
    let first = meeting(
        &app,
        ["Hi.", "The roadmap slips by a month.", "Ok."],
        "2025-05-01",
    )
    .await;
    let second = meeting(
        &app,
        ["Hi.", "The roadmap is on track.", "Ok."],
        "2025-05-02",
    )
    .await;
    // Both are indexed before the scoped question.
    ask_until_cited(&app, json!({ "question": "roadmap", "jobs": [second] })).await;
    let answer = ask_until_cited(
        &app,
        json!({ "question": "What about the roadmap?", "jobs": [first] }),
    )
    .await;
    let prompt = ask_prompts(&app).pop().unwrap();
    assert!(prompt.contains("slips by a month"), "{prompt}");
    assert!(!prompt.contains("on track"), "{prompt}");
    for citation in answer["citations"].as_array().unwrap() {
        assert_eq!(citation["job"], first.as_str());
    }
    // Dates narrow the archive the same way.
    let (_, dated) = ask(
        &app,
        json!({ "question": "What about the roadmap?", "from": "2025-05-02", "to": "2025-05-02" }),
    )
    .await;
    let prompt = ask_prompts(&app).pop().unwrap();
    assert!(
        prompt.contains("on track") && !prompt.contains("slips"),
        "{prompt}"
    );
    assert_eq!(dated["citations"][0]["job"], second.as_str());
}

#[tokio::test]
async fn embeddings_find_what_shares_no_word_with_the_question() {
    let app = TestApp::spawn_with(|config| {
        config.embeddings_model = Some("fake-embed".into());
    })
    .await;
    let id = meeting(
        &app,
        [
            "Morning.",
            "We halt every contractor until April.",
            "Right.",
        ],
        "2025-06-01",
    )
    .await;
    // No word of the question is in the meeting: only the meaning matches.
    let answer = ask_until_cited(&app, json!({ "question": "Which suppliers are frozen?" })).await;
    assert_eq!(answer["citations"][0]["job"], id.as_str());
    assert_eq!(
        answer["citations"][0]["text"],
        "We halt every contractor until April."
    );
    assert!(app.fakes.llm.calls.get("embeddings") >= 2);
}

#[tokio::test]
async fn without_embeddings_a_question_without_shared_words_finds_nothing() {
    let app = TestApp::spawn().await;
    meeting(
        &app,
        [
            "Morning.",
            "We halt every contractor until April.",
            "Right.",
        ],
        "2025-06-01",
    )
    .await;
    // The meeting is indexed (a question with its words is answered)...
    ask_until_cited(&app, json!({ "question": "contractor" })).await;
    // ...but words alone cannot match a paraphrase.
    let (_, answer) = ask(&app, json!({ "question": "Which suppliers are frozen?" })).await;
    assert!(answer["answer"].as_str().unwrap().starts_with(NOTHING));
}

#[tokio::test]
async fn provider_failures_and_garbage_streams_are_clear_errors() {
    let app = TestApp::spawn().await;
    meeting(
        &app,
        ["Hello.", "The zeppelin launch is Tuesday.", "Ok."],
        "2025-07-01",
    )
    .await;
    let body = json!({ "question": "When is the zeppelin launch?" });
    ask_until_cited(&app, body.clone()).await;

    app.fakes.llm.set(LlmBehaviour {
        ask_garbage: true,
        ..Default::default()
    });
    let (status, error) = ask(&app, body.clone()).await;
    assert_eq!(status, 503, "{error}");
    let message = error["error"].as_str().unwrap();
    assert!(message.contains("stream ended before"), "{message}");
    let (_, kind, event) = streamed(&app, body.clone()).await;
    assert_eq!(kind, "error");
    assert!(
        event["error"]
            .as_str()
            .unwrap()
            .contains("stream ended before")
    );

    app.fakes.llm.set(LlmBehaviour {
        fail_with_400: 1,
        ..Default::default()
    });
    let (status, error) = ask(&app, body).await;
    assert_eq!(status, 503);
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("maximum context length"),
        "{error}"
    );
}

#[tokio::test]
async fn bad_questions_are_refused_with_words() {
    let app = TestApp::spawn().await;
    for (body, status, word) in [
        (json!({ "question": "   " }), 400, "empty"),
        (json!({ "question": "x".repeat(2001) }), 400, "2000"),
        (
            json!({ "question": "x", "jobs": ["../etc"] }),
            400,
            "bad id",
        ),
        (
            json!({ "question": "x", "jobs": ["nosuchjob"] }),
            404,
            "not found",
        ),
        (
            json!({ "question": "x", "from": "yesterday" }),
            400,
            "\"from\"",
        ),
        (json!({ "jobs": [] }), 400, "question"),
    ] {
        let (got, error) = ask(&app, body.clone()).await;
        assert_eq!(got, status, "{body}: {error}");
        assert!(
            error["error"].as_str().unwrap().contains(word),
            "{body}: {error}"
        );
    }
}

#[tokio::test]
async fn passages_are_backfilled_for_meetings_indexed_before_ask_existed() {
    // The backfill is the same code on PostgreSQL; this test reaches into the SQLite file to
    // forget the index.
    if crate::database::skipped_on_postgres("it edits the SQLite file") {
        return;
    }
    let app = TestApp::spawn().await;
    meeting(
        &app,
        ["Hi.", "The walrus project is cancelled.", "Sad."],
        "2025-08-01",
    )
    .await;
    let body = json!({ "question": "What happened to the walrus project?" });
    ask_until_cited(&app, body.clone()).await;
    let data_dir = app.data_dir.clone();
    let mut app = app;
    app.stop().await;
    {
        let connection = rusqlite::Connection::open(data_dir.join("focusflow.db")).unwrap();
        connection
            .execute_batch("DELETE FROM passages; DELETE FROM passage_jobs;")
            .unwrap();
    }
    let app = app.restart().await;
    let answer = ask_until_cited(&app, body).await;
    assert_eq!(
        answer["citations"][0]["text"],
        "The walrus project is cancelled."
    );
}

#[tokio::test]
async fn the_pages_ask_without_javascript_and_keep_the_questions() {
    let app = TestApp::spawn().await;
    let id = meeting(
        &app,
        ["Hi.", "Ana promised the report by Friday.", "Thanks."],
        "2025-09-01",
    )
    .await;
    ask_until_cited(&app, json!({ "question": "report", "jobs": [id] })).await;

    let mut browser = Browser::new(&app);
    let home = browser.page("/").await;
    assert!(
        home.contains("action=\"/ask\""),
        "the home page has the ask box"
    );
    let job_page = browser.page(&format!("/jobs/{id}")).await;
    assert!(job_page.contains("Ask about this meeting"));
    let token = TOKEN.captures(&job_page).unwrap()[1].to_string();

    // Without JavaScript: the form posts and the page shows the finished answer.
    let response = browser
        .post(
            "/ask",
            &[
                ("csrf_token", &token),
                ("question", "When is the report due?"),
                ("job", &id),
            ],
            &[],
        )
        .await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("When is the report due?"), "{html}");
    let link = format!("href=\"/jobs/{id}#t=4.500\"");
    assert!(
        html.contains(&link),
        "a citation links to the moment: {html}"
    );
    assert!(html.contains(&format!("/jobs/{id}/audio#t=4.500")));
    assert!(!html.contains("[99]"));

    // With htmx: the answer alone.
    let response = browser
        .post(
            "/ask",
            &[
                ("csrf_token", &token),
                ("question", "Who promised the report?"),
            ],
            &[("hx-request", "true")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let part = response.text().await.unwrap();
    assert!(!part.contains("<html"), "{part}");
    assert!(part.contains("class=\"ask-answer\""), "{part}");

    // Kept: the meeting's questions, and the archive's, each can be forgotten.
    let kept = browser.page(&format!("/ask?job={id}")).await;
    assert!(kept.contains("When is the report due?"));
    assert!(
        !kept.contains("Who promised the report?"),
        "that one was about every meeting"
    );
    let archive = browser.page("/ask").await;
    assert!(archive.contains("Who promised the report?"));
    let forget = regex::Regex::new(r#"action="/ask/([0-9a-f-]+)/delete""#).unwrap();
    let kept_id = forget.captures(&archive).unwrap()[1].to_string();
    let response = browser
        .post(
            &format!("/ask/{kept_id}/delete"),
            &[("csrf_token", &token)],
            &[],
        )
        .await;
    assert!(response.status().is_success() || response.status().is_redirection());
    let archive = browser.page("/ask").await;
    assert!(!archive.contains("Who promised the report?"));

    // A form without its token is refused, as every form is.
    let response = browser.post("/ask", &[("question", "x")], &[]).await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn in_a_browser_the_answer_streams_in_and_a_citation_plays_the_recording_from_its_second() {
    if crate::storage::skipped_on_s3("seeds a finished job's files in the data folder") {
        return;
    }
    let Some((_driver, browser, _profile)) = crate::browser::open_browser().await else {
        return;
    };
    let fakes = crate::helpers::Fakes::start().await;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    for folder in ["files", "transcripts"] {
        std::fs::create_dir_all(dir.join(folder)).unwrap();
    }
    std::fs::write(dir.join("files/standup.wav"), crate::browser::tone_wav()).unwrap();
    std::fs::write(
        dir.join("transcripts/standup.txt"),
        "[Speaker A]: Morning all.\n\n[Speaker B]: The walrus budget is approved.",
    )
    .unwrap();
    std::fs::write(
        dir.join("transcripts/standup.json"),
        json!({ "utterances": [
            { "speaker": "A", "text": "Morning all.", "start": 0, "end": 1000 },
            { "speaker": "B", "text": "The walrus budget is approved.", "start": 1250, "end": 1900 }
        ] })
        .to_string(),
    )
    .unwrap();
    let jobs = json!([{
        "id": "standup",
        "url": "https://example.com/standup.wav",
        "status": "completed",
        "title": "Daily standup",
        "summary": "# Standup\n\nAll good.",
        "file_path": "files/standup.wav",
        "transcript_path": "transcripts/standup.txt",
        "created_at": 1758830000000_i64,
        "updated_at": 1758830000000_i64,
        "logs": [],
        "checkpoint": { "step": "summarize" }
    }]);
    std::fs::write(dir.join("jobs.json"), jobs.to_string()).unwrap();
    let app = TestApp::start(crate::helpers::test_config(dir, &fakes), fakes).await;
    // The imported meeting is indexed by the start-up backfill.
    ask_until_cited(&app, json!({ "question": "walrus" })).await;

    browser.goto(&app.url("/")).await;
    let question = browser.find("#ask-question").await;
    browser
        .send_keys(&question, "Is the walrus budget approved?")
        .await;
    browser
        .click(&browser.find(".welcome .ask-form button").await)
        .await;
    let href = browser
        .wait_for("the answer with its citation", || async {
            let href = browser
                .execute(
                    "const a = document.querySelector('#ask-result a.ask-cite'); \
                     return a ? a.getAttribute('href') : null;",
                    vec![],
                )
                .await;
            href.as_str().map(str::to_string)
        })
        .await;
    assert_eq!(href, "/jobs/standup#t=1.250");
    let text = browser.text_of("#ask-result .ask-text").await.unwrap();
    assert!(
        text.contains("The walrus budget is approved. [1]"),
        "{text}"
    );
    assert!(!text.contains("[99]"), "{text}");

    browser
        .click(&browser.find("#ask-result a.ask-cite").await)
        .await;
    let at = browser
        .wait_for("the recording at the cited second", || async {
            let time = browser
                .execute(
                    "const a = document.querySelector('audio.player'); \
                     return a && a.readyState >= 1 && location.pathname === '/jobs/standup' \
                       ? a.currentTime : null;",
                    vec![],
                )
                .await;
            time.as_f64().filter(|time| *time > 0.0)
        })
        .await;
    // Where the citation said (it may have played on a little since).
    assert!((1.25..1.9).contains(&at), "currentTime {at}");
    browser.quit().await;
}

#[tokio::test]
async fn a_full_retry_forgets_the_old_transcripts_passages() {
    let app = TestApp::spawn().await;
    let id = audio_meeting(&app).await;
    let body = json!({ "question": "Who will ship the beta?" });
    ask_until_cited(&app, body.clone()).await;

    // Started over, the job fails at its summary this time: its transcript is new, never
    // indexed, and the old one's passages are gone.
    app.fakes.llm.set(LlmBehaviour {
        fail_with_400: 100,
        ..Default::default()
    });
    let response = app
        .client
        .post(app.url(&format!("/api/jobs/{id}/retry?full=true")))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    app.wait_for_status(&id, "error").await;
    let (status, answer) = ask(&app, body).await;
    assert_eq!(status, 200);
    assert!(
        answer["answer"].as_str().unwrap().starts_with(NOTHING),
        "{answer}"
    );
}
