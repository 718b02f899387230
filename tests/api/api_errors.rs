//! Every malformed request gets a 4xx with a JSON error, never a 5xx.

use serde_json::{Value, json};

use crate::fakes::AssemblyBehaviour;
use crate::helpers::TestApp;

async fn assert_error(response: reqwest::Response, status: u16, contains: &str) {
    assert_eq!(response.status().as_u16(), status, "{contains}");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: Value = response.json().await.unwrap();
    let message = body["error"].as_str().expect("an error message");
    assert!(
        message.contains(contains),
        "{message:?} should mention {contains:?}"
    );
}

#[tokio::test]
async fn malformed_creations_are_refused_clearly() {
    let app = TestApp::spawn().await;
    let endpoint = app.url("/api/jobs");
    let post = |body: &'static str, content_type: Option<&'static str>| {
        let mut request = app.client.post(&endpoint).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };
    let json_type = Some("application/json");
    assert_error(
        post("{\"url\":\"https://a.example/x.mp3\"}", None)
            .await
            .unwrap(),
        415,
        "Content-Type: application/json",
    )
    .await;
    assert_error(
        post("{\"url\":\"https://a.example/x.mp3\"}", Some("text/plain"))
            .await
            .unwrap(),
        415,
        "application/json",
    )
    .await;
    assert_error(
        post("{\"url\":", json_type).await.unwrap(),
        400,
        "not valid JSON",
    )
    .await;
    assert_error(
        post("[1,2]", json_type).await.unwrap(),
        400,
        "must be a JSON object",
    )
    .await;
    assert_error(
        post("\"https://a.example/x.mp3\"", json_type)
            .await
            .unwrap(),
        400,
        "must be a JSON object",
    )
    .await;
    assert_error(
        post("{}", json_type).await.unwrap(),
        400,
        "\"url\" is required",
    )
    .await;
    assert_error(
        post("{\"url\":42}", json_type).await.unwrap(),
        400,
        "must be a string",
    )
    .await;
    assert_error(
        post("{\"url\":\"   \"}", json_type).await.unwrap(),
        400,
        "empty",
    )
    .await;
    assert_error(
        post("{\"url\":\"not a url\"}", json_type).await.unwrap(),
        400,
        "not a valid URL",
    )
    .await;
    assert_error(
        post("{\"url\":\"ftp://a.example/x.mp3\"}", json_type)
            .await
            .unwrap(),
        400,
        "http:// or https://",
    )
    .await;
    assert_error(
        post("{\"url\":\"file:///etc/passwd\"}", json_type)
            .await
            .unwrap(),
        400,
        "http:// or https://",
    )
    .await;
    assert_error(
        post("{\"url\":\"javascript:alert(1)\"}", json_type)
            .await
            .unwrap(),
        400,
        "http:// or https://",
    )
    .await;
    assert_error(
        post(
            "{\"url\":\"https://a.example/x.mp3\",\"meetingDate\":\"someday\"}",
            json_type,
        )
        .await
        .unwrap(),
        400,
        "meetingDate",
    )
    .await;
    assert_error(
        post(
            "{\"url\":\"https://a.example/x.mp3\",\"meetingDate\":5}",
            json_type,
        )
        .await
        .unwrap(),
        400,
        "meetingDate",
    )
    .await;
    let long = format!("{{\"url\":\"https://a.example/{}\"}}", "a".repeat(5000));
    let response = app
        .client
        .post(&endpoint)
        .header("content-type", "application/json")
        .body(long)
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "longer than").await;
    let huge = format!(
        "{{\"url\":\"https://a.example/x.mp3\",\"pad\":\"{}\"}}",
        "a".repeat(200_000)
    );
    let response = app
        .client
        .post(&endpoint)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_error(response, 413, "too large").await;
    let invalid_utf8 = app
        .client
        .post(&endpoint)
        .header("content-type", "application/json")
        .body(vec![b'{', 0xff, 0xfe, b'}'])
        .send()
        .await
        .unwrap();
    assert_eq!(invalid_utf8.status(), 400);

    let list: Value = app.get("/api/jobs").await.json().await.unwrap();
    assert!(
        list["jobs"].as_array().unwrap().is_empty(),
        "nothing was created"
    );
}

#[tokio::test]
async fn unknown_jobs_are_404_on_every_route() {
    let app = TestApp::spawn().await;
    for id in ["does-not-exist", "..%2F..%2Fetc", "a%20b", &"x".repeat(300)] {
        for (method, path) in [
            ("GET", format!("/api/jobs/{id}")),
            ("DELETE", format!("/api/jobs/{id}")),
            ("POST", format!("/api/jobs/{id}/retry")),
            ("POST", format!("/api/jobs/{id}/regenerate-summary")),
            ("POST", format!("/api/jobs/{id}/resummarize")),
            ("GET", format!("/api/jobs/{id}/transcript")),
            ("GET", format!("/api/jobs/{id}/logs/stream")),
        ] {
            let response = app
                .client
                .request(method.parse().unwrap(), app.url(&path))
                .send()
                .await
                .unwrap();
            assert_error(response, 404, "job not found").await;
        }
    }
    assert_error(app.get("/api/nothing-here").await, 404, "no such API route").await;
    let response = app.client.put(app.url("/api/jobs")).send().await.unwrap();
    assert_error(response, 405, "not allowed").await;
}

#[tokio::test]
async fn state_errors_are_400_and_409() {
    let app = TestApp::spawn().await;
    app.fakes.assemblyai.set(AssemblyBehaviour {
        polls_before_done: usize::MAX,
        error: None,
    });
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let id = job["id"].as_str().unwrap();
    app.wait_for_status(id, "transcribing").await;
    let response = app
        .client
        .post(app.url(&format!("/api/jobs/{id}/regenerate-summary")))
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "no transcript").await;
    let response = app
        .client
        .post(app.url(&format!("/api/jobs/{id}/retry")))
        .send()
        .await
        .unwrap();
    assert_error(response, 409, "running").await;
    let transcript: Value = app
        .get(&format!("/api/jobs/{id}/transcript"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(transcript, json!({ "transcript": null }));
}

fn text_has_absolute_path(value: &Value) -> bool {
    value.as_str().is_some_and(|text| text.starts_with('/'))
}

#[tokio::test]
async fn health_answers_the_contract_shape() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/health").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert!(body["timestamp"].is_string());
    assert_eq!(body["env"]["assemblyai"], true);
    assert_eq!(body["env"]["openai"], true);
    // No server path is shown: only the data folder's own name.
    assert_eq!(
        body["env"]["dataDir"],
        app.data_dir.file_name().unwrap().to_string_lossy().as_ref()
    );
    assert!(!text_has_absolute_path(&body["env"]["dataDir"]));
    let text = serde_json::to_string(&body).unwrap();
    assert!(
        !text.contains(crate::fakes::OPENAI_KEY) && !text.contains(crate::fakes::ASSEMBLYAI_KEY)
    );
}

#[tokio::test]
async fn one_error_is_json_a_page_or_an_htmx_fragment_as_the_request_wants() {
    let app = TestApp::spawn().await;
    let missing = app.url("/jobs/0b0f6b8e-8d0e-4a47-9a59-3a7d3f0f4e1c");
    let get = |accept: &'static str, htmx: bool| {
        let mut request = app.client.get(&missing).header("accept", accept);
        if htmx {
            request = request.header("hx-request", "true");
        }
        request.send()
    };

    let page = get("text/html", false).await.unwrap();
    assert_eq!(page.status(), 404);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = page.text().await.unwrap();
    assert!(
        page.contains("<html") && page.contains("We could not find that meeting"),
        "{page}"
    );

    let fragment = get("text/html", true).await.unwrap();
    assert_eq!(fragment.status(), 404);
    let fragment = fragment.text().await.unwrap();
    assert!(
        fragment.contains("We could not find that meeting"),
        "{fragment}"
    );
    assert!(
        !fragment.contains("<html"),
        "htmx gets the card alone: {fragment}"
    );

    assert_error(
        get("application/json", false).await.unwrap(),
        404,
        "job not found",
    )
    .await;
    // The API answers JSON whatever the client accepts.
    let api = app
        .client
        .get(app.url("/api/jobs/0b0f6b8e-8d0e-4a47-9a59-3a7d3f0f4e1c"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_error(api, 404, "job not found").await;
}

#[tokio::test]
async fn the_api_keeps_no_session_and_the_pages_do() {
    let app = TestApp::spawn().await;
    for path in ["/api/jobs", "/api/health", "/api/templates"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert!(
            response.headers().get("set-cookie").is_none(),
            "{path} set a cookie"
        );
    }
    let page = app
        .client
        .get(app.url("/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers().get("set-cookie").is_some(),
        "the home page keeps a session"
    );
}

#[tokio::test]
async fn a_patch_is_refused_for_its_first_member_in_name_order() {
    let app = TestApp::spawn().await;
    let job = app
        .create_job_with(json!({ "transcript": "[Speaker A]: Shall we start?" }))
        .await;
    let id = job["id"].as_str().unwrap();
    let patch = |body: Value| {
        app.client
            .patch(app.url(&format!("/api/jobs/{id}")))
            .json(&body)
            .send()
    };
    let cases = [
        (
            json!({"zzz": 1, "title": 5}),
            "\"title\" must be a string or null",
        ),
        (json!({"id": 1, "title": "x"}), "\"id\" cannot be changed"),
        (
            json!({"meeting_date": "soon"}),
            "\"meetingDate\" is not a date we understand: \"soon\"",
        ),
        (json!([1]), "the body must be a JSON object"),
    ];
    for (body, message) in cases {
        assert_error(patch(body).await.unwrap(), 400, message).await;
    }
    let changed: Value = patch(json!({"title": " Budget ", "meetingDate": "2025-09-25"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(changed["title"], "Budget");
    assert_eq!(changed["meeting_date"], "2025-09-25T00:00:00.000Z");
}
