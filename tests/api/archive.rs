//! The archive: search, filters and pages of the list, exports, edits.

use serde_json::{Value, json};

use crate::fakes;
use crate::helpers::{Fakes, TestApp, test_config};

/// A store with jobs whose words differ, brought in through the legacy import.
pub(crate) async fn archive_app(extra: usize) -> TestApp {
    let fakes = Fakes::start().await;
    let data = tempfile::tempdir().unwrap().keep();
    std::fs::create_dir_all(data.join("transcripts")).unwrap();
    let mut jobs = vec![
        (
            "budget",
            "Budget review",
            "We cut the marketing budget by ten percent.",
            "[Speaker A]: the budget is tight <script>alert(1)</script>",
            "2025-03-01",
        ),
        (
            "hiring",
            "Hiring sync",
            "Two engineers to hire before summer.",
            "[Speaker B]: we mentioned the budget once",
            "2025-04-01",
        ),
        (
            "launch",
            "Launch plan",
            "Ship the beta in October.",
            "[Speaker A]: the rocket launch is near",
            "2025-05-01",
        ),
    ];
    let filler: Vec<(String, String)> = (0..extra)
        .map(|n| {
            (
                format!("filler-{n:03}"),
                format!("2024-01-{:02}", n % 28 + 1),
            )
        })
        .collect();
    let mut items = Vec::new();
    for (id, title, summary, transcript, date) in jobs.drain(..) {
        std::fs::write(data.join(format!("transcripts/{id}.txt")), transcript).unwrap();
        items.push(json!({
            "id": id, "url": format!("https://example.com/{id}.mp3"), "status": "completed",
            "title": title, "summary": summary, "meeting_date": date,
            "transcript_path": format!("/app/data/transcripts/{id}.txt"),
            "created_at": 1_700_000_000_000_i64, "updated_at": 1_700_000_000_000_i64, "logs": []
        }));
    }
    for (id, date) in &filler {
        items.push(json!({
            "id": id, "url": "https://example.com/f.mp3", "status": "error", "error": "x",
            "meeting_date": date, "created_at": 1_600_000_000_000_i64, "updated_at": 1_600_000_000_000_i64,
            "logs": []
        }));
    }
    std::fs::write(data.join("jobs.json"), Value::Array(items).to_string()).unwrap();
    TestApp::start(test_config(&data, &fakes), fakes).await
}

async fn get_json(app: &TestApp, path: &str) -> (u16, Value) {
    let response = app.get(path).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

fn ids(body: &Value) -> Vec<String> {
    body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn search_finds_titles_summaries_and_transcripts_and_follows_edits() {
    let app = archive_app(0).await;
    let (status, body) = get_json(&app, "/api/jobs?q=budget").await;
    assert_eq!(status, 200);
    // The job about the budget ranks above the one that mentions it once.
    assert_eq!(ids(&body), vec!["budget", "hiring"]);
    let snippet = body["jobs"][0]["snippet"].as_str().unwrap();
    assert!(snippet.contains("<mark>"), "{snippet}");
    assert!(
        !snippet.contains("<script"),
        "the snippet must be escaped: {snippet}"
    );
    assert_eq!(
        ids(&get_json(&app, "/api/jobs?q=rocket").await.1),
        vec!["launch"]
    );
    assert_eq!(
        ids(&get_json(&app, "/api/jobs?q=engin").await.1),
        vec!["hiring"],
        "prefix"
    );
    // FTS operators typed by a person are words, not syntax errors.
    let (status, body) = get_json(&app, "/api/jobs?q=%22%29%28*+NEAR").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), vec!["launch"], "\"near\" is in its transcript");

    // An edit is searchable at once; a delete disappears.
    let response = app
        .client
        .patch(app.url("/api/jobs/launch"))
        .json(&json!({ "title": "Budget for the launch" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(ids(&get_json(&app, "/api/jobs?q=budget").await.1).len(), 3);
    app.client
        .delete(app.url("/api/jobs/budget"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ids(&get_json(&app, "/api/jobs?q=budget").await.1),
        vec!["launch", "hiring"]
    );
}

#[tokio::test]
async fn pages_filters_and_the_all_jobs_form() {
    let app = archive_app(30).await;
    let (_, all) = get_json(&app, "/api/jobs").await;
    assert_eq!(
        all["jobs"].as_array().unwrap().len(),
        33,
        "no parameters: every job"
    );
    assert!(all.get("next_cursor").is_none());

    let mut seen = Vec::new();
    let mut path = "/api/jobs?limit=10".to_string();
    loop {
        let (status, page) = get_json(&app, &path).await;
        assert_eq!(status, 200);
        assert!(page["jobs"].as_array().unwrap().len() <= 10);
        assert!(
            page["jobs"][0]["logs"].is_array(),
            "pages keep the job shape"
        );
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/jobs?limit=10&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ids(&all),
        "the pages add up to the whole list, in order"
    );

    let (_, completed) = get_json(&app, "/api/jobs?status=completed").await;
    assert_eq!(ids(&completed), vec!["launch", "hiring", "budget"]);
    let (_, spring) = get_json(&app, "/api/jobs?from=2025-03-15&to=2025-04-30").await;
    assert_eq!(ids(&spring), vec!["hiring"]);
    let (_, inclusive) = get_json(&app, "/api/jobs?from=2025-04-01&to=2025-04-01").await;
    assert_eq!(
        ids(&inclusive),
        vec!["hiring"],
        "\"to\" includes its whole day"
    );

    for (path, mention) in [
        ("/api/jobs?limit=abc", "limit"),
        ("/api/jobs?limit=100000", "limit"),
        ("/api/jobs?status=done", "status"),
        ("/api/jobs?from=yesterday", "from"),
        ("/api/jobs?cursor=nonsense", "cursor"),
        ("/api/jobs?offset=-1", "offset"),
    ] {
        let (status, body) = get_json(&app, path).await;
        assert_eq!(status, 400, "{path}");
        assert!(
            body["error"].as_str().unwrap().contains(mention),
            "{path}: {body}"
        );
    }
}

/// A minimal SRT/VTT reader: (start ms, end ms, text) per cue; panics on anything malformed.
fn parse_cues(text: &str, vtt: bool) -> Vec<(u64, u64, String)> {
    let body = if vtt {
        text.strip_prefix("WEBVTT\n\n").expect("a WEBVTT header")
    } else {
        text
    };
    let parse_time = |t: &str| -> u64 {
        let t = t.replace(',', ".");
        let (hms, millis) = t.split_once('.').expect("milliseconds");
        let parts: Vec<u64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
        assert_eq!(parts.len(), 3, "{t}");
        ((parts[0] * 60 + parts[1]) * 60 + parts[2]) * 1000 + millis.parse::<u64>().unwrap()
    };
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .enumerate()
        .map(|(index, block)| {
            let mut lines = block.lines();
            if !vtt {
                assert_eq!(lines.next().unwrap(), (index + 1).to_string(), "cue number");
            }
            let timing = lines.next().unwrap();
            let (start, end) = timing.split_once(" --> ").expect("a timing line");
            let (start, end) = (parse_time(start), parse_time(end));
            assert!(end > start, "{timing}");
            (start, end, lines.collect::<Vec<_>>().join("\n"))
        })
        .collect()
}

#[tokio::test]
async fn exports_in_every_format() {
    let app = TestApp::spawn().await;
    let job = app
        .create_job_with(
            json!({ "url": app.fakes.audio.url("meeting.mp3"), "meetingDate": "2025-09-25" }),
        )
        .await;
    let id = job["id"].as_str().unwrap().to_string();
    app.wait_for_status(&id, "completed").await;
    let export = |format: &'static str| {
        let app = &app;
        let id = id.clone();
        async move {
            app.get(&format!("/api/jobs/{id}/export?format={format}"))
                .await
        }
    };

    let md = export("md").await;
    assert_eq!(md.status(), 200);
    assert!(
        md.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/markdown")
    );
    let disposition = md.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"2025-09-25-Quarterly-Planning-Sync.md\""),
        "{disposition}"
    );
    assert_eq!(md.text().await.unwrap(), fakes::summary_text(1).trim());

    let txt = export("txt").await.text().await.unwrap();
    assert!(txt.starts_with("[Speaker A]: Hello everyone."));

    let srt = parse_cues(&export("srt").await.text().await.unwrap(), false);
    assert_eq!(srt.len(), 3);
    assert_eq!(srt[0], (0, 1200, "Speaker A: Hello everyone.".to_string()));
    assert_eq!(srt[2].0, 2600);
    let vtt_response = export("vtt").await;
    assert!(
        vtt_response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/vtt")
    );
    let vtt = parse_cues(&vtt_response.text().await.unwrap(), true);
    assert_eq!(
        vtt[2],
        (
            2600,
            4100,
            "<v Speaker B>I will ship the beta by Friday.".to_string()
        )
    );

    let whole: Value = export("json").await.json().await.unwrap();
    assert_eq!(whole["id"], id.as_str());
    assert_eq!(whole["utterances"].as_array().unwrap().len(), 3);
    assert!(
        whole["transcript"]
            .as_str()
            .unwrap()
            .contains("[Speaker B]")
    );

    let audio = export("audio").await;
    assert_eq!(audio.headers()["content-type"], "audio/mpeg");
    assert!(
        audio.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(".mp3")
    );
    assert_eq!(audio.bytes().await.unwrap().to_vec(), fakes::fake_mp3(4096));

    let bad = export("docx").await;
    assert_eq!(bad.status(), 400);
    // A job without a summary has nothing to export as Markdown.
    let failed = app.create_job(&app.fakes.audio.url("page.html")).await;
    let failed_id = failed["id"].as_str().unwrap();
    app.wait_for_status(failed_id, "error").await;
    let response = app
        .get(&format!("/api/jobs/{failed_id}/export?format=md"))
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        app.get("/api/jobs/none/export?format=md").await.status(),
        404
    );
}

#[tokio::test]
async fn patch_edits_title_and_date_and_validates() {
    let app = archive_app(0).await;
    let patch = |body: Value| {
        let app = &app;
        async move {
            let response = app
                .client
                .patch(app.url("/api/jobs/hiring"))
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let (status, job) =
        patch(json!({ "title": "  Hiring plan  ", "meetingDate": "2026-01-02 09:30" })).await;
    assert_eq!(status, 200);
    assert_eq!(job["title"], "Hiring plan");
    assert_eq!(job["meeting_date"], "2026-01-02T09:30:00.000Z");
    // The new date moves the job to the top of the list.
    assert_eq!(ids(&get_json(&app, "/api/jobs").await.1)[0], "hiring");

    for (body, mention) in [
        (json!({ "title": "x".repeat(201) }), "longer than"),
        (json!({ "title": "two\nlines" }), "one line"),
        (json!({ "title": 5 }), "string or null"),
        (json!({ "meetingDate": "soon" }), "meetingDate"),
        (json!({ "status": "completed" }), "cannot be changed"),
        (json!({}), "nothing to change"),
        (json!(["title"]), "JSON object"),
    ] {
        let (status, answer) = patch(body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            answer["error"].as_str().unwrap().contains(mention),
            "{body}: {answer}"
        );
    }
    let (status, job) = patch(json!({ "title": null, "meetingDate": null })).await;
    assert_eq!(status, 200);
    assert!(job.get("title").is_none() && job.get("meeting_date").is_none());
    let response = app
        .client
        .patch(app.url("/api/jobs/none"))
        .json(&json!({ "title": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}
