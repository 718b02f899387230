//! The second security round: silent connections, DNS rebinding, echoed secrets, trusted
//! proxies, and the rate limiter's log and memory under a flood. Each of these failed before.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::header;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::helpers::{Fakes, ServerProcess, TestApp, logs_of};

/// Opens a TCP connection to `server` from the loopback address `from` (any 127.x.y.z), and
/// sends nothing.
async fn silent_connection(
    from: &str,
    server: SocketAddr,
) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse().unwrap())?;
    socket.connect(server).await
}

fn socket_address(app_address: &str) -> SocketAddr {
    app_address.trim_start_matches("http://").parse().unwrap()
}

// ------------------------------------------------------------------ silent connections

#[tokio::test]
async fn silent_connections_are_closed_in_time_and_health_answers_meanwhile() {
    // The default header timeout (15 s): a connection must send its head within it.
    let app = TestApp::spawn().await;
    assert_eq!(app.config.header_timeout, Duration::from_secs(15));
    let server = socket_address(&app.address);
    let opened = Instant::now();
    let mut waits = Vec::new();
    for _ in 0..500 {
        let mut stream = silent_connection("127.0.0.2", server).await.unwrap();
        waits.push(tokio::spawn(async move {
            let mut buffer = Vec::new();
            let ended =
                tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut buffer))
                    .await;
            ended.is_ok()
        }));
    }
    // While they are held, others are answered at once.
    let started = Instant::now();
    let health = app.get("/api/health").await;
    assert_eq!(health.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2));
    for wait in waits {
        assert!(wait.await.unwrap(), "a silent connection was held for 30 s");
    }
    let all_closed = opened.elapsed();
    assert!(
        all_closed <= Duration::from_secs(16),
        "the last silent connection was closed after {all_closed:?}"
    );
}

#[tokio::test]
async fn one_address_with_5000_silent_connections_starves_nobody() {
    let data = tempfile::tempdir().unwrap();
    let server =
        ServerProcess::start(data.path(), &[("RATE_LIMIT_MAX_REQUESTS", "0".into())]).await;
    let address = socket_address(&server.address);
    let mut held = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    // In batches, each connect bounded: a busy machine must not turn this into a long wait.
    for _ in 0..50 {
        let batch: Vec<_> = (0..100)
            .map(|_| {
                tokio::spawn(tokio::time::timeout(
                    Duration::from_secs(3),
                    silent_connection("127.0.0.3", address),
                ))
            })
            .collect();
        for connect in batch {
            // Past its share, the server closes them at once; the client keeps its end.
            if let Ok(Ok(Ok(stream))) = connect.await {
                held.push(stream);
            }
        }
        if Instant::now() > deadline {
            break;
        }
    }
    assert!(held.len() > 1000, "only {} connections opened", held.len());
    // Another client is answered.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let started = Instant::now();
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        client.get(format!("{}/api/jobs", server.address)).send(),
    )
    .await
    .expect("another client waited more than 5 s")
    .unwrap();
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(5));
    // And the container's health check passes.
    let port = address.port().to_string();
    let probe = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_focusflow"))
            .arg("healthcheck")
            .env("PORT", port)
            .env("HOST", "127.0.0.1")
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        probe.status.success(),
        "healthcheck failed: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    drop(held);
}

// ------------------------------------------------------------------ DNS rebinding

const REBOUND: &str = "rebind.attacker.example:3312";

#[tokio::test]
async fn a_foreign_host_is_refused_and_an_allowed_one_accepted() {
    let app = TestApp::spawn().await;
    let job = app.create_job(&app.fakes.audio.url("meeting.mp3")).await;
    let id = job["id"].as_str().unwrap().to_string();
    let rebound = |request: reqwest::RequestBuilder| {
        request
            .header(header::HOST, REBOUND)
            .header(header::ORIGIN, format!("http://{REBOUND}"))
    };

    // A page on the attacker's name can neither list, create nor delete.
    let list = rebound(app.client.get(app.url("/api/jobs")))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 421);
    let body: Value = list.json().await.unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("ALLOWED_HOSTS"), "{message}");
    assert!(message.contains("rebind.attacker.example"), "{message}");
    let create = rebound(app.client.post(app.url("/api/jobs")))
        .json(&json!({ "url": app.fakes.audio.url("meeting.mp3") }))
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), 421);
    let delete = rebound(app.client.delete(app.url(&format!("/api/jobs/{id}"))))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 421);
    let page = rebound(app.client.get(app.url("/")))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 421);
    assert!(page.text().await.unwrap().contains("ALLOWED_HOSTS"));
    let jobs: Value = app.get("/api/jobs").await.json().await.unwrap();
    assert_eq!(
        jobs["jobs"].as_array().unwrap().len(),
        1,
        "nothing was created or deleted"
    );

    // The health probe answers whatever the name.
    let health = rebound(app.client.get(app.url("/api/health")))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // Loopback names and addresses are answered.
    let port = socket_address(&app.address).port();
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let response = app
            .client
            .get(app.url("/api/jobs"))
            .header(header::HOST, &host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{host}");
    }
}

#[tokio::test]
async fn a_name_in_allowed_hosts_is_answered() {
    let app = TestApp::spawn_with(|config| {
        config.allowed_hosts =
            focusflow::config::AllowedHosts::parse(Some("meetings.example.com"), None).unwrap();
    })
    .await;
    let response = app
        .client
        .post(app.url("/api/jobs"))
        .header(header::HOST, "meetings.example.com")
        .header(header::ORIGIN, "http://meetings.example.com")
        .json(&json!({ "url": app.fakes.audio.url("meeting.mp3") }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let other = app
        .client
        .get(app.url("/api/jobs"))
        .header(header::HOST, "meetings.example.com.attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 421);
}

// ------------------------------------------------------------------ echoed secrets

#[tokio::test]
async fn a_provider_that_echoes_the_key_leaves_no_trace_anywhere() {
    const WRONG_KEY: &str = "wrong-llm-key-0123456789abcdef";
    let fakes = Fakes::start().await;
    let (hook, received) = crate::observability::receiver(0).await;
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("server.log");
    let mut env = fakes.env();
    env.retain(|(name, _)| *name != "OPENAI_API_KEY");
    env.extend([
        ("OPENAI_API_KEY", WRONG_KEY.to_string()),
        ("WEBHOOK_URL", hook),
        ("RUST_LOG", "info".into()),
    ]);
    let server = ServerProcess::start_logging_to(data.path(), &env, &log).await;
    let created = server
        .post_json(
            "/api/jobs",
            json!({ "url": fakes.audio.url("meeting.mp3") }),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let job = loop {
        let job = server.get_json(&format!("/api/jobs/{id}")).await;
        if job["status"] == "error" {
            break job;
        }
        assert!(Instant::now() < deadline, "the job did not fail: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("Incorrect API key provided"), "{error}");
    assert!(error.contains("[redacted]"), "{error}");
    // The webhook for the failure arrives.
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no webhook was delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut seen = vec![
        ("the job", job.to_string()),
        ("the list", server.get_json("/api/jobs").await.to_string()),
        ("the logs", logs_of(&job)),
    ];
    for path in [
        format!("/api/jobs/{id}/export"),
        format!("/jobs/{id}"),
        "/".to_string(),
        "/api/jobs?q=key".to_string(),
    ] {
        let text = client
            .get(format!("{}{path}", server.address))
            .header(header::ACCEPT, "text/html,application/json")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        seen.push(("a page or answer", text));
    }
    for (_, body) in received.lock().unwrap().iter() {
        seen.push(("the webhook", String::from_utf8_lossy(body).into_owned()));
    }
    drop(server);
    seen.push(("the server log", std::fs::read_to_string(&log).unwrap()));
    for (place, text) in &seen {
        assert!(!text.contains(WRONG_KEY), "the key is in {place}: {text}");
        assert!(
            !text.contains("0123456789abcdef"),
            "part of the key is in {place}"
        );
    }
}

// ------------------------------------------------------------------ the rate limiter

#[tokio::test]
async fn a_flood_of_429s_writes_a_bounded_number_of_log_lines() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("server.log");
    let server = ServerProcess::start_logging_to(
        data.path(),
        &[
            ("RATE_LIMIT_MAX_REQUESTS", "2".into()),
            ("RUST_LOG", "info".into()),
        ],
        &log,
    )
    .await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut limited = 0;
    for _ in 0..2000 {
        let response = client
            .get(format!("{}/api/jobs", server.address))
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            limited += 1;
        }
    }
    assert!(limited >= 1990, "only {limited} were limited");
    drop(server);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines = text
        .lines()
        .filter(|line| line.contains("rate limited"))
        .count();
    assert!(
        (1..=5).contains(&lines),
        "{limited} refusals wrote {lines} log lines"
    );
}

#[tokio::test]
async fn a_limited_client_stays_limited_when_the_table_is_full() {
    let app = TestApp::spawn_with(|config| {
        config.rate_limit_max_requests = 2;
        config.rate_limit_max_tracked = 50;
    })
    .await;
    // The test client is a trusted (loopback) proxy: X-Forwarded-For names the client.
    let get_as = |client: String| {
        app.client
            .get(app.url("/api/jobs"))
            .header("x-forwarded-for", client)
            .send()
    };
    let limited = "198.51.100.7".to_string();
    assert_eq!(get_as(limited.clone()).await.unwrap().status(), 200);
    assert_eq!(get_as(limited.clone()).await.unwrap().status(), 200);
    assert_eq!(get_as(limited.clone()).await.unwrap().status(), 429);
    for n in 0..120 {
        let crowd = format!("203.0.113.{n}");
        let _ = get_as(crowd.clone()).await.unwrap();
        let _ = get_as(crowd).await.unwrap();
        assert_eq!(
            get_as(limited.clone()).await.unwrap().status(),
            429,
            "the limited client got a fresh bucket after {n} others filled the table"
        );
    }
}

#[tokio::test]
async fn a_failed_sign_in_costs_one_action() {
    let app = TestApp::spawn_with(|config| {
        config.rate_limit_max_requests = 4;
        config.basic_auth = Some(focusflow::config::BasicAuth {
            user: "ana".into(),
            password: focusflow::config::Secret::new("correct horse"),
        });
    })
    .await;
    for attempt in 1..=4 {
        let response = app
            .client
            .get(app.url("/api/jobs"))
            .basic_auth("ana", Some(format!("guess {attempt}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "guess {attempt}");
    }
    let fifth = app
        .client
        .get(app.url("/api/jobs"))
        .basic_auth("ana", Some("guess 5"))
        .send()
        .await
        .unwrap();
    assert_eq!(fifth.status(), 429);
}

// ------------------------------------------------------------------ forwarded headers

#[tokio::test]
async fn forwarded_host_is_believed_only_from_a_trusted_proxy() {
    let untrusted = TestApp::spawn_with(|config| config.trusted_proxies = Vec::new()).await;
    let post = |app: &TestApp| {
        app.client
            .post(app.url("/api/jobs"))
            .header(header::ORIGIN, "http://evil.example")
            .header("x-forwarded-host", "evil.example")
            .json(&json!({ "url": app.fakes.audio.url("meeting.mp3") }))
            .send()
    };
    let response = post(&untrusted).await.unwrap();
    assert_eq!(
        response.status(),
        403,
        "a client chose the host it is checked against"
    );
    // From a trusted proxy (loopback is), the forwarded host is the browser's.
    let trusted = TestApp::spawn().await;
    assert_eq!(post(&trusted).await.unwrap().status(), 201);
}

#[tokio::test]
async fn a_page_over_http_may_not_post_to_the_https_site() {
    let app = TestApp::spawn().await;
    let port = socket_address(&app.address).port();
    let response = app
        .client
        .post(app.url("/api/jobs"))
        .header(header::HOST, format!("127.0.0.1:{port}"))
        .header(header::ORIGIN, format!("http://127.0.0.1:{port}"))
        .header("x-forwarded-proto", "https")
        .json(&json!({ "url": app.fakes.audio.url("meeting.mp3") }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("over https"),
        "{body}"
    );
}

// ------------------------------------------------------------------ smaller ones

#[tokio::test]
async fn meeting_dates_outside_sane_years_are_refused() {
    let app = TestApp::spawn().await;
    for date in [
        "-0001-01-01T00:00:00Z",
        "0000-01-01",
        "9999-12-31T00:00:00Z",
    ] {
        let response = app
            .post_json(
                "/api/jobs",
                json!({ "url": app.fakes.audio.url("meeting.mp3"), "meetingDate": date }),
            )
            .await;
        assert_eq!(response.status(), 400, "{date}");
    }
    let fine = app
        .post_json(
            "/api/jobs",
            json!({ "url": app.fakes.audio.url("meeting.mp3"), "meetingDate": "1999-12-31" }),
        )
        .await;
    assert_eq!(fine.status(), 201);
}
