//! The Web Share Target, tested with what Chromium sends when a person shares to the installed
//! app: a top-level POST navigation from the browser itself (`Origin: null`, `Sec-Fetch-Site:
//! none`), a multipart body with the manifest's `title`, `text`, `url` and `file` fields, the
//! session cookie and, with Basic auth, the credentials it holds. The same post from a page on
//! another site is refused.

use reqwest::header;
use serde_json::Value;

use focusflow::config::{BasicAuth, Secret};

use crate::helpers::{CookieJar, TestApp};

const BOUNDARY: &str = "----WebKitFormBoundaryq3Fh2y8N1vKc0ZbP";

/// A part of the body, as Chromium writes it.
enum Part<'a> {
    Text(&'a str, &'a str),
    File {
        name: &'a str,
        file_name: &'a str,
        content_type: &'a str,
        bytes: &'a [u8],
    },
}

fn body(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match part {
            Part::Text(name, value) => {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                        .as_bytes(),
                );
            }
            Part::File {
                name,
                file_name,
                content_type,
                bytes,
            } => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\n\
                         Content-Type: {content_type}\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(bytes);
                body.extend_from_slice(b"\r\n");
            }
        }
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// The share as the browser sends it; `from` adds or replaces headers (a forged one).
async fn share(
    app: &TestApp,
    parts: &[Part<'_>],
    from: &[(&str, &str)],
    auth: Option<(&str, &str)>,
) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let mut headers = vec![
        ("origin", "null"),
        ("sec-fetch-site", "none"),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-dest", "document"),
        ("sec-fetch-user", "?1"),
        ("upgrade-insecure-requests", "1"),
        (
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
    ];
    for (name, value) in from {
        headers.retain(|(kept, _)| kept != name);
        if !value.is_empty() {
            headers.push((name, value));
        }
    }
    let mut request = client
        .post(app.url("/share"))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body(parts));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    request.send().await.unwrap()
}

/// Where a 303 sends the browser, and the page there with the session's message.
async fn follow(app: &TestApp, response: reqwest::Response) -> (String, String) {
    assert_eq!(response.status(), 303, "{:?}", response.headers());
    let location = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    let mut cookies = CookieJar::default();
    cookies.remember(&response);
    let mut request = app.client.get(app.url(&location));
    if let Some(cookie) = cookies.header() {
        request = request.header(header::COOKIE, cookie);
    }
    let page = request
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (location, page)
}

fn job_of(location: &str) -> String {
    location
        .strip_prefix("/jobs/")
        .unwrap_or_else(|| panic!("not a job page: {location}"))
        .to_string()
}

#[tokio::test]
async fn a_shared_link_text_or_recording_becomes_a_job_and_opens_it() {
    let app = TestApp::spawn().await;

    // Text with a link in it, as most apps share: the link is found.
    let link = app.fakes.audio.url("meeting.mp3");
    let text = format!("Listen to our planning call: {link}.");
    let response = share(
        &app,
        &[
            Part::Text("title", "Planning call"),
            Part::Text("text", &text),
            Part::Text("url", ""),
        ],
        &[],
        None,
    )
    .await;
    let (location, page) = follow(&app, response).await;
    let id = job_of(&location);
    assert_eq!(app.job(&id).await["url"], link);
    assert!(page.contains("Shared link added"), "{page}");

    // A link in the url field.
    let plaud = format!("{}/share/abc123", app.fakes.plaud.web_base);
    let response = share(&app, &[Part::Text("url", &plaud)], &[], None).await;
    let (location, _) = follow(&app, response).await;
    assert_eq!(app.job(&job_of(&location)).await["url"], plaud);

    // A recording shared from a recorder app.
    let recording = crate::fakes::fake_mp3(20_000);
    let response = share(
        &app,
        &[
            Part::Text("title", ""),
            Part::Text("text", ""),
            Part::File {
                name: "file",
                file_name: "Voice 042.m4a",
                content_type: "audio/mp4",
                bytes: &recording,
            },
        ],
        &[],
        None,
    )
    .await;
    let (location, page) = follow(&app, response).await;
    let id = job_of(&location);
    assert_eq!(app.job(&id).await["url"], "upload:Voice 042.m4a");
    assert!(page.contains("Shared “Voice 042.m4a” added"), "{page}");

    // Nothing to add: the list, saying why.
    let response = share(&app, &[Part::Text("text", "see you at ten")], &[], None).await;
    let (location, page) = follow(&app, response).await;
    assert_eq!(location, "/");
    assert!(page.contains("no link and no recording"), "{page}");
    let jobs: Value = app.get("/api/jobs").await.json().await.unwrap();
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_share_works_with_basic_auth_once_signed_in() {
    let app = TestApp::spawn_with(|config| {
        config.basic_auth = Some(BasicAuth {
            user: "ana".into(),
            password: Secret::new("correct horse battery"),
        });
    })
    .await;
    let link = app.fakes.audio.url("meeting.mp3");
    let parts = [Part::Text("url", link.as_str())];
    // Not signed in: the browser is asked to sign in.
    let response = share(&app, &parts, &[], None).await;
    assert_eq!(response.status(), 401);
    // Signed in, the browser sends its credentials with the share.
    let response = share(&app, &parts, &[], Some(("ana", "correct horse battery"))).await;
    assert_eq!(response.status(), 303);
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    assert!(location.starts_with("/jobs/"), "{location}");
}

#[tokio::test]
async fn a_share_forged_by_another_site_is_refused() {
    let app = TestApp::spawn().await;
    let link = app.fakes.audio.url("meeting.mp3");
    let parts = [Part::Text("url", link.as_str())];
    for forged in [
        // A form on another site.
        vec![
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ],
        // A sandboxed frame or a data: page: a null origin, but a page sent it.
        vec![("sec-fetch-site", "cross-site")],
        // A null origin from a browser that does not say where the request came from.
        vec![("sec-fetch-site", "")],
    ] {
        let response = share(&app, &parts, &forged, None).await;
        assert_eq!(response.status(), 403, "{forged:?}");
    }
    let jobs: Value = app.get("/api/jobs").await.json().await.unwrap();
    assert_eq!(jobs["jobs"], serde_json::json!([]));
}
