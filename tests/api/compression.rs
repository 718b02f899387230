//! Compression: negotiated for JSON, HTML, CSS and JS; never for event streams or audio; static
//! assets compressed once with an ETag per encoding; nothing changes for a client that sends no
//! `Accept-Encoding`.

use std::io::Read;

use reqwest::header;
use serde_json::Value;

use crate::helpers::TestApp;

fn decode(encoding: &str, body: &[u8]) -> Vec<u8> {
    let mut decoded = Vec::new();
    match encoding {
        "gzip" => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut decoded)
                .unwrap();
        }
        "br" => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut decoded)
                .unwrap();
        }
        "zstd" => {
            zstd::stream::read::Decoder::new(body)
                .unwrap()
                .read_to_end(&mut decoded)
                .unwrap();
        }
        other => panic!("unexpected encoding {other}"),
    }
    decoded
}

async fn get(app: &TestApp, path: &str, accept_encoding: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    if let Some(value) = accept_encoding {
        request = request.header(header::ACCEPT_ENCODING, value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn compressed_answers_decode_to_the_same_bytes() {
    let app = TestApp::spawn().await;
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let id = job["id"].as_str().unwrap().to_string();
    app.wait_for_status(&id, "completed").await;
    for path in [
        "/api/jobs",
        "/",
        &format!("/jobs/{id}"),
        "/api/openapi.json",
    ] {
        let plain = get(&app, path, None).await;
        assert!(
            plain.headers().get(header::CONTENT_ENCODING).is_none(),
            "{path}"
        );
        let plain = plain.bytes().await.unwrap();
        for encoding in ["gzip", "br", "zstd"] {
            let response = get(&app, path, Some(encoding)).await;
            assert_eq!(response.status(), 200, "{path} {encoding}");
            assert_eq!(
                response.headers()[header::CONTENT_ENCODING],
                encoding,
                "{path}"
            );
            let body = response.bytes().await.unwrap();
            assert!(body.len() < plain.len(), "{path} {encoding} did not shrink");
            let decoded = decode(encoding, &body);
            if path == "/api/jobs" || path == "/api/openapi.json" {
                assert_eq!(decoded, plain, "{path} {encoding}");
            } else {
                // Pages carry a per-session form token: the same page, another token.
                let text = String::from_utf8(decoded).unwrap();
                assert!(text.contains("<html"), "{path} {encoding}");
            }
        }
    }
    // A client's preference order is respected.
    let response = get(&app, "/api/jobs", Some("zstd;q=0.5, gzip")).await;
    assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
    let listed: Value =
        serde_json::from_slice(&decode("gzip", &response.bytes().await.unwrap())).unwrap();
    assert_eq!(listed["jobs"][0]["id"], id.as_str());
}

#[tokio::test]
async fn event_streams_and_audio_are_never_compressed() {
    let app = TestApp::spawn().await;
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let id = job["id"].as_str().unwrap().to_string();
    app.wait_for_status(&id, "completed").await;
    let stream = get(
        &app,
        &format!("/api/jobs/{id}/logs/stream"),
        Some("gzip, br, zstd"),
    )
    .await;
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(stream.headers().get(header::CONTENT_ENCODING).is_none());
    let text = stream.text().await.unwrap();
    assert!(text.contains("event: status"), "{text}");

    let range = app
        .client
        .get(app.url(&format!("/jobs/{id}/audio")))
        .header(header::RANGE, "bytes=0-99")
        .header(header::ACCEPT_ENCODING, "gzip, br, zstd")
        .send()
        .await
        .unwrap();
    assert_eq!(range.status(), 206);
    assert!(range.headers().get(header::CONTENT_ENCODING).is_none());
    assert_eq!(range.bytes().await.unwrap().len(), 100);
    let whole = get(&app, &format!("/jobs/{id}/audio"), Some("gzip, br, zstd")).await;
    assert!(whole.headers().get(header::CONTENT_ENCODING).is_none());
    assert_eq!(whole.bytes().await.unwrap().len(), 4096);
}

#[tokio::test]
async fn static_assets_are_served_precompressed_with_their_own_etags() {
    let app = TestApp::spawn().await;
    let page = app.get("/").await.text().await.unwrap();
    let start = page.find("/static/app.css?v=").unwrap();
    let css_url = &page[start..start + page[start..].find('"').unwrap()];
    let plain = get(&app, css_url, None).await;
    let plain_etag = plain.headers()[header::ETAG].to_str().unwrap().to_string();
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    assert_eq!(plain.headers()[header::VARY], "accept-encoding");
    let plain = plain.bytes().await.unwrap();
    let mut etags = vec![plain_etag.clone()];
    for encoding in ["gzip", "br", "zstd"] {
        let response = get(&app, css_url, Some(encoding)).await;
        assert_eq!(response.headers()[header::CONTENT_ENCODING], encoding);
        assert_eq!(response.headers()[header::VARY], "accept-encoding");
        let etag = response.headers()[header::ETAG]
            .to_str()
            .unwrap()
            .to_string();
        assert!(!etags.contains(&etag), "{encoding}: {etag} is not its own");
        etags.push(etag.clone());
        let body = response.bytes().await.unwrap();
        assert_eq!(decode(encoding, &body), plain, "{encoding}");
        // Revalidation with that ETag: 304, and nothing is sent again.
        let again = app
            .client
            .get(app.url(css_url))
            .header(header::ACCEPT_ENCODING, encoding)
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{encoding}");
        assert_eq!(again.headers()[header::ETAG], etag.as_str());
        assert!(again.bytes().await.unwrap().is_empty());
    }
    // The uncompressed ETag still revalidates a client that takes no encoding.
    let again = app
        .client
        .get(app.url(css_url))
        .header(header::IF_NONE_MATCH, &plain_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}
