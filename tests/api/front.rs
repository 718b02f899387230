//! The layers in front of the app: basic auth over every route, per-client rate limits (also
//! behind a trusted proxy and against spoofed headers), cross-site refusals, security headers,
//! slow clients, and the outbound URL guard.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use focusflow::config::{BasicAuth, Secret};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Fakes, TestApp, logs_of, test_config};

const USER: &str = "ana";
const PASSWORD: &str = "correct horse battery";

fn with_auth(config: &mut focusflow::config::Config) {
    config.basic_auth = Some(BasicAuth {
        user: USER.into(),
        password: Secret::new(PASSWORD),
    });
}

#[tokio::test]
async fn every_route_but_health_and_static_needs_basic_auth() {
    let app = TestApp::spawn_with(with_auth).await;
    let job = app
        .client
        .post(app.url("/api/jobs"))
        .basic_auth(USER, Some(PASSWORD))
        .json(&json!({ "url": app.fakes.audio.url("page.html") }))
        .send()
        .await
        .unwrap();
    assert_eq!(job.status(), 201);
    let id = job.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let routes = focusflow::web::routes();
    assert!(routes.len() >= 11, "the route table is walked: {routes:?}");
    let mut paths: Vec<(axum::http::Method, String)> = routes
        .iter()
        .map(|(method, path)| (method.clone(), path.replace("{id}", "no-such-job")))
        .collect();
    paths.push((axum::http::Method::GET, "/no/such/page".into()));
    paths.push((axum::http::Method::GET, "/api/no-such-route".into()));
    for (method, path) in &paths {
        let public = path == "/api/health";
        let request = |credentials: Option<(&str, &str)>| {
            let mut request = app.client.request(method.clone(), app.url(path));
            if let Some((user, password)) = credentials {
                request = request.basic_auth(user, Some(password));
            }
            request.send()
        };
        for credentials in [
            None,
            Some((USER, "wrong")),
            Some(("eve", PASSWORD)),
            Some((USER, "")),
        ] {
            let response = request(credentials).await.unwrap();
            if public {
                assert_eq!(response.status(), 200, "{method} {path}");
                continue;
            }
            assert_eq!(
                response.status(),
                401,
                "{method} {path} with {credentials:?}"
            );
            assert_eq!(
                response.headers()[header::WWW_AUTHENTICATE],
                r#"Basic realm="FocusFlow", charset="UTF-8""#
            );
            let body = response.text().await.unwrap();
            assert!(!body.contains(PASSWORD));
        }
        let response = request(Some((USER, PASSWORD))).await.unwrap();
        assert_ne!(
            response.status(),
            401,
            "{method} {path} with the right credentials"
        );
        assert!(response.status().as_u16() < 500, "{method} {path}");
    }
    // Static assets are public (missing ones are simply not found).
    let response = app.get("/static/no-such-file.css").await;
    assert_ne!(response.status(), 401);
    // The job is readable with credentials only.
    let response = app
        .client
        .get(app.url(&format!("/api/jobs/{id}")))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // A browser gets a page, still with the challenge.
    let response = app
        .client
        .get(app.url("/"))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn failed_sign_ins_use_up_the_rate_limit() {
    let app = TestApp::spawn_with(|config| {
        with_auth(config);
        config.rate_limit_max_requests = 3;
    })
    .await;
    // Each failure costs an action (and the request itself is one).
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = app
            .client
            .get(app.url("/api/jobs"))
            .basic_auth(USER, Some("guess"))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses[0], 401);
    assert!(statuses.contains(&429), "{statuses:?}");
    // Now even the right password waits.
    let response = app
        .client
        .get(app.url("/api/jobs"))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
}

/// The route table's groups decide what each request costs and how its errors look: the
/// probe and static files are never limited (the probe whatever host name it is sent to), the
/// API draws actions and answers JSON even to a browser, the pages draw views.
#[tokio::test]
async fn the_route_groups_decide_limits_hosts_and_error_shapes() {
    let app = TestApp::spawn_with(|config| {
        with_auth(config);
        config.rate_limit_max_requests = 2;
    })
    .await;
    let get = |path: &str| {
        app.client
            .get(app.url(path))
            .basic_auth(USER, Some(PASSWORD))
            .header(header::ACCEPT, "text/html")
    };
    // Never limited, never behind auth.
    for _ in 0..6 {
        assert_eq!(app.get("/api/health").await.status(), 200);
        let asset = app.get("/static/app.css").await;
        assert_eq!(asset.status(), 200);
        assert_eq!(app.get("/favicon.ico").await.status(), 404);
    }
    // The probe answers whatever the name; a static file only under an allowed one.
    let probe = app
        .client
        .get(app.url("/api/health"))
        .header(header::HOST, "rebind.attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), 200);
    let asset = app
        .client
        .get(app.url("/static/app.css"))
        .header(header::HOST, "rebind.attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(asset.status(), 421);

    // An unknown API path is the API's: JSON to a browser too. An unknown page is a page.
    let missing = get("/api/no/such/route").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "no such API route");
    let missing = get("/no/such/page").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(
        missing.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    // Those two cost an action and a view; one more action empties the bucket of two.
    assert_eq!(get("/api/templates").send().await.unwrap().status(), 200);
    let limited = get("/api/templates").send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key(header::RETRY_AFTER));
    let body: Value = limited.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    // Pages draw from the views bucket, ten times larger.
    for _ in 0..5 {
        assert_eq!(get("/").send().await.unwrap().status(), 200);
    }
    // A page's refusal is a page.
    let refused = app
        .client
        .post(app.url("/jobs"))
        .basic_auth(USER, Some(PASSWORD))
        .header(header::ACCEPT, "text/html")
        .form(&[("url", "https://example.com/a.mp3")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.text().await.unwrap().contains("Slow down"));
}

async fn hit(app: &TestApp, path: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    if let Some(value) = forwarded_for {
        request = request.header("x-forwarded-for", value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_limit_is_per_client_behind_a_trusted_proxy() {
    // The test client connects from 127.0.0.1, a trusted proxy by default (like Traefik).
    let app = TestApp::spawn_with(|config| config.rate_limit_max_requests = 5).await;
    for _ in 0..5 {
        assert_eq!(
            hit(&app, "/api/jobs", Some("198.51.100.1")).await.status(),
            200
        );
    }
    let limited = hit(&app, "/api/jobs", Some("198.51.100.1")).await;
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=12).contains(&retry_after), "{retry_after}");
    let body: Value = limited.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("too many requests")
    );
    // Another client behind the same proxy is not affected.
    assert_eq!(
        hit(&app, "/api/jobs", Some("198.51.100.2")).await.status(),
        200
    );
    // A client that writes its own X-Forwarded-For entries to the left cannot escape.
    for spoof in ["1.1.1.1", "2.2.2.2", "3.3.3.3"] {
        let value = format!("{spoof}, 198.51.100.1");
        assert_eq!(hit(&app, "/api/jobs", Some(&value)).await.status(), 429);
    }
    // Health and static assets are never limited.
    for _ in 0..20 {
        assert_eq!(
            hit(&app, "/api/health", Some("198.51.100.1"))
                .await
                .status(),
            200
        );
    }
    // Browsers get a short page, not JSON.
    for _ in 0..60 {
        let _ = hit(&app, "/", Some("198.51.100.3")).await;
    }
    let page = app
        .client
        .get(app.url("/"))
        .header("x-forwarded-for", "198.51.100.3")
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 429);
    assert!(
        page.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.headers().contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = TestApp::spawn_with(|config| {
        config.rate_limit_max_requests = 5;
        config.trusted_proxies = Vec::new();
    })
    .await;
    for n in 0..5 {
        let value = format!("203.0.113.{n}");
        assert_eq!(hit(&app, "/api/jobs", Some(&value)).await.status(), 200);
    }
    // A new made-up address each time does not buy a new bucket.
    assert_eq!(
        hit(&app, "/api/jobs", Some("203.0.113.99")).await.status(),
        429
    );
    assert_eq!(hit(&app, "/api/jobs", None).await.status(), 429);
}

#[tokio::test]
async fn cross_site_state_changes_are_refused_on_every_route() {
    let app = TestApp::spawn().await;
    let job = app.create_job(&app.fakes.audio.url("page.html")).await;
    let id = job["id"].as_str().unwrap().to_string();
    app.wait_for_status(&id, "error").await;
    let host = app.address.trim_start_matches("http://").to_string();

    let cross_site: Vec<Vec<(&str, String)>> = vec![
        vec![("origin", "https://evil.example".into())],
        vec![("origin", "null".into())],
        vec![(
            "origin",
            format!("http://{}", host.replace("127.0.0.1", "localhost")),
        )],
        vec![("sec-fetch-site", "cross-site".into())],
    ];
    let state_changing = [
        (reqwest::Method::POST, "/api/jobs".to_string()),
        (reqwest::Method::DELETE, format!("/api/jobs/{id}")),
        (reqwest::Method::POST, format!("/api/jobs/{id}/retry")),
        (
            reqwest::Method::POST,
            format!("/api/jobs/{id}/regenerate-summary"),
        ),
        (reqwest::Method::POST, format!("/api/jobs/{id}/resummarize")),
    ];
    for (method, path) in &state_changing {
        for headers in &cross_site {
            let mut request = app
                .client
                .request(method.clone(), app.url(path))
                .json(&json!({ "url": "https://example.com/a.mp3" }));
            for (name, value) in headers {
                request = request.header(*name, value);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 403, "{method} {path} {headers:?}");
            let body: Value = response.json().await.unwrap();
            assert!(
                body["error"]
                    .as_str()
                    .unwrap()
                    .starts_with("cross-site request refused")
            );
        }
    }
    // Nothing happened to the job.
    assert_eq!(app.job(&id).await["status"], "error");
    assert_eq!(
        app.get("/api/jobs").await.json::<Value>().await.unwrap()["jobs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The same request from this site, or from a script that sends no Origin, works.
    let same_origin = app
        .client
        .post(app.url("/api/jobs"))
        .header("origin", format!("http://{host}"))
        .header("sec-fetch-site", "same-origin")
        .json(&json!({ "url": app.fakes.audio.url("page.html") }))
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status(), 201);
    let scripted = app
        .post_json(
            "/api/jobs",
            json!({ "url": app.fakes.audio.url("page.html") }),
        )
        .await;
    assert_eq!(scripted.status(), 201);
    // A cross-site form can only send text/plain, which the API refuses.
    let form = app
        .client
        .post(app.url("/api/jobs"))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(r#"{"url":"https://example.com/a.mp3"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
}

#[tokio::test]
async fn responses_carry_security_headers() {
    let app = TestApp::spawn().await;
    let page = app
        .client
        .get(app.url("/"))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    for directive in [
        "script-src 'self'",
        "frame-ancestors 'none'",
        "default-src 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(page.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(page.headers()[header::REFERRER_POLICY], "same-origin");
    let api = app.get("/api/jobs").await;
    assert_eq!(api.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let not_found = app.get("/api/jobs/none").await;
    assert_eq!(
        not_found.headers()[header::X_CONTENT_TYPE_OPTIONS],
        "nosniff"
    );
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let app =
        TestApp::spawn_with(|config| config.header_timeout = Duration::from_millis(300)).await;
    let address = app.address.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buffer)).await;
    assert!(read.is_ok(), "the connection was held open");
    assert!(started.elapsed() < Duration::from_secs(3));
    // The server still serves others.
    assert_eq!(app.get("/api/health").await.status(), 200);
}

// ------------------------------------------------------------------ the outbound URL guard

fn guarded(config: &mut focusflow::config::Config) {
    config.allow_private_urls = false;
}

#[tokio::test]
async fn urls_aimed_at_private_addresses_are_refused_at_creation() {
    let app = TestApp::spawn_with(guarded).await;
    for url in [
        "http://127.0.0.1/a.mp3",
        "http://127.1/a.mp3",
        "http://0x7f000001/a.mp3",
        "http://2130706433/a.mp3",
        "http://017700000001/a.mp3",
        "http://[::1]/a.mp3",
        "http://[::ffff:127.0.0.1]/a.mp3",
        "http://[::ffff:7f00:1]/a.mp3",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.0.0.8/a.mp3",
        "http://172.16.5.4/a.mp3",
        "http://192.168.1.20/a.mp3",
        "http://100.64.0.1/a.mp3",
        "http://0.0.0.0/a.mp3",
        "http://224.0.0.1/a.mp3",
        "http://[fe80::1]/a.mp3",
        "http://[fc00::1]/a.mp3",
    ] {
        let response = app.post_json("/api/jobs", json!({ "url": url })).await;
        assert_eq!(response.status(), 400, "{url}");
        let body: Value = response.json().await.unwrap();
        let message = body["error"].as_str().unwrap();
        assert!(message.contains("refused"), "{url}: {message}");
        // What an operator can do, in words (no setting's name).
        assert!(
            message.contains("an operator can allow"),
            "{url}: {message}"
        );
    }
    let list: Value = app.get("/api/jobs").await.json().await.unwrap();
    assert!(list["jobs"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_when_connecting() {
    let fakes = Fakes::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut config = test_config(data.path(), &fakes);
    guarded(&mut config);
    config.hosts_override.insert(
        "audio.example.net".into(),
        vec!["127.0.0.1".parse::<IpAddr>().unwrap()],
    );
    let app = TestApp::start(config, fakes).await;
    let port = app.fakes.audio.base.rsplit(':').next().unwrap().to_string();
    let job = app
        .create_job(&format!(
            "http://audio.example.net:{port}/media/meeting.mp3"
        ))
        .await;
    let job = app
        .wait_for_status(job["id"].as_str().unwrap(), "error")
        .await;
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("refused") && error.contains("loopback"),
        "{error}"
    );
    assert_eq!(
        app.fakes.audio.calls.get("meeting.mp3"),
        0,
        "the refused target got a request"
    );
}

#[tokio::test]
async fn a_public_looking_redirect_to_loopback_is_refused() {
    let fakes = Fakes::start().await;
    // A "public" server (allowed by an explicit CIDR) that redirects to the loopback fake.
    let target = fakes.audio.url("meeting.mp3");
    let redirector = Router::new().route(
        "/a.mp3",
        get(move || {
            let target = target.clone();
            async move { Redirect::temporary(&target).into_response() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let redirect_address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, redirector).await.unwrap() });

    let data = tempfile::tempdir().unwrap();
    let mut config = test_config(data.path(), &fakes);
    guarded(&mut config);
    config.allow_private_cidrs = vec!["127.0.0.2/32".parse().unwrap()];
    let app = TestApp::start(config, fakes).await;
    let job = app
        .create_job(&format!("http://{redirect_address}/a.mp3"))
        .await;
    let job = app
        .wait_for_status(job["id"].as_str().unwrap(), "error")
        .await;
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("refused to fetch from 127.0.0.1"), "{error}");
    assert_eq!(
        app.fakes.audio.calls.get("meeting.mp3"),
        0,
        "the loopback target got a request"
    );
}

#[tokio::test]
async fn an_audio_url_found_behind_a_plaud_link_is_guarded_too() {
    let app = TestApp::spawn_with(guarded).await;
    // The Plaud fakes are operator-configured (trusted); the audio URL they hand out is not.
    let job = app.create_job("https://web.plaud.ai/share/temp").await;
    let job = app
        .wait_for_status(job["id"].as_str().unwrap(), "error")
        .await;
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("refused"), "{error}");
    assert_eq!(app.fakes.audio.calls.get("plaud.mp3"), 0);
    assert!(logs_of(&job).contains("Plaud share-file-temp API gave the audio URL"));
    assert_eq!(StatusCode::OK, app.get("/api/health").await.status());
}
