//! The OpenAPI document and the API page: served, generated from the running code, and true to
//! what the server answers.

use serde_json::{Value, json};

use crate::helpers::TestApp;

#[tokio::test]
async fn the_document_is_served_and_describes_the_answers_the_server_gives() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/api/health",
        "/api/jobs",
        "/api/jobs/{id}",
        "/api/jobs/{id}/export",
        "/api/jobs/{id}/speakers",
        "/api/templates",
    ] {
        assert!(paths.contains_key(path), "{path} is not described");
    }

    // A real job has every field the schema requires, of the documented kind.
    let job = app
        .create_job_with(json!({"transcript": "Ana: the budget is tight."}))
        .await;
    let schema = &document["components"]["schemas"]["JobView"];
    for field in schema["required"].as_array().unwrap() {
        let field = field.as_str().unwrap();
        assert!(job.get(field).is_some(), "the job has no {field}: {job}");
    }
    for (field, value) in job.as_object().unwrap() {
        assert!(
            schema["properties"].get(field).is_some(),
            "{field} ({value}) is not in the schema"
        );
    }
}

#[tokio::test]
async fn the_api_page_lists_every_operation_and_links_the_document() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/api/docs"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("href=\"/api/openapi.json\""));
    let document: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let shown = format!("{}</span> <code>{path}</code>", method.to_uppercase());
            assert!(html.contains(&shown), "the page does not show {shown}");
        }
    }
    // The home page links it.
    let home = app
        .client
        .get(app.url("/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("href=\"/api/docs\""));

    // A client that asks for JSON gets the document itself.
    let response = app
        .client
        .get(app.url("/api/docs"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, document);
}

#[tokio::test]
async fn flags_and_page_sizes_outside_the_documented_values_are_refused() {
    let app = TestApp::spawn().await;
    let job = app
        .create_job_with(json!({"transcript": "Ana: the budget is tight."}))
        .await;
    let id = job["id"].as_str().unwrap();
    for (path, word) in [
        (format!("/api/jobs/{id}?content=perhaps"), "\"content\""),
        ("/api/jobs?limit=0".to_string(), "\"limit\""),
        ("/api/jobs?limit=501".to_string(), "\"limit\""),
        ("/api/jobs?offset=-1".to_string(), "\"offset\""),
        ("/api/jobs?limit=".to_string(), "\"limit\""),
        ("/api/jobs?offset=".to_string(), "\"offset\""),
    ] {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains(word),
            "{path}: {body}"
        );
    }
    // The flags are booleans, as documented: an empty value, a bare name or a number is refused
    // (the property test sends `?full=` as a schema violation and expects a 400).
    for query in ["full=maybe", "full=", "full", "full=1"] {
        let response = app
            .client
            .post(app.url(&format!("/api/jobs/{id}/retry?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("\"full\""),
            "{body}"
        );
    }
    for query in ["content=", "content", "content=1"] {
        let response = app.get(&format!("/api/jobs/{id}?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
    }
    for (path, content) in [
        (format!("/api/jobs/{id}?content=false"), false),
        (format!("/api/jobs/{id}?content=True"), true),
        (format!("/api/jobs/{id}?content=true"), true),
    ] {
        let body: Value = app.get(&path).await.json().await.unwrap();
        assert_eq!(body.get("transcript").is_some(), content, "{path}");
    }
}
