//! The all-jobs listing (`GET /api/jobs` without parameters) keeps each job's JSON until that
//! job is written: every answer must still be what the store holds now, byte for byte the
//! answer of the whole list serialised at once.

use serde_json::{Value, json};

use crate::archive::archive_app;
use crate::helpers::{TestApp, delete_job, patch_job};

async fn body(app: &TestApp, path: &str) -> String {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.unwrap()
}

fn titles(body: &str) -> Vec<(String, Option<String>)> {
    let list: Value = serde_json::from_str(body).expect("the listing is whole JSON");
    list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| {
            (
                job["id"].as_str().unwrap().to_string(),
                job["title"].as_str().map(str::to_string),
            )
        })
        .collect()
}

async fn patch_title(app: &TestApp, id: &str, title: &str) {
    patch_job(app, id, json!({ "title": title })).await;
}

/// A page as large as the list is serialised whole, as the all-jobs answer always was.
const WHOLE: &str = "/api/jobs?limit=100";

#[tokio::test]
async fn the_listing_is_the_whole_list_byte_for_byte_and_follows_each_write() {
    let app = archive_app(40).await;
    let first = body(&app, "/api/jobs").await;
    assert_eq!(
        first,
        body(&app, WHOLE).await,
        "the same bytes as the list built whole"
    );
    assert_eq!(titles(&first).len(), 43);
    // Kept now: served again as it was.
    assert_eq!(body(&app, "/api/jobs").await, first);

    // A change to one job shows in the very next answer, and nothing else changes.
    patch_title(&app, "filler-007", "Seventh filler").await;
    let changed = body(&app, "/api/jobs").await;
    assert_eq!(changed, body(&app, WHOLE).await);
    let before = titles(&first);
    let after = titles(&changed);
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(old.0, new.0, "the order stays");
        if new.0 == "filler-007" {
            assert_eq!(new.1.as_deref(), Some("Seventh filler"));
        } else {
            assert_eq!(old.1, new.1);
        }
    }

    // A new date moves the job: the order follows.
    patch_job(&app, "budget", json!({ "meetingDate": "2030-01-01" })).await;
    let moved = body(&app, "/api/jobs").await;
    assert_eq!(titles(&moved)[0].0, "budget");
    assert_eq!(moved, body(&app, WHOLE).await);

    // A deleted job is gone from the next answer.
    delete_job(&app, "hiring").await;
    let deleted = body(&app, "/api/jobs").await;
    assert!(!titles(&deleted).iter().any(|(id, _)| id == "hiring"));
    assert_eq!(titles(&deleted).len(), 42);
    assert_eq!(deleted, body(&app, WHOLE).await);

    // The first job of the list changes too (it is sent without a comma before it).
    patch_title(&app, "budget", "Budget, again").await;
    let first_changed = body(&app, "/api/jobs").await;
    assert_eq!(
        titles(&first_changed)[0].1.as_deref(),
        Some("Budget, again")
    );
    assert_eq!(first_changed, body(&app, WHOLE).await);
}

#[tokio::test]
async fn listings_during_writes_are_whole_and_the_last_write_wins() {
    let app = std::sync::Arc::new(archive_app(60).await);
    body(&app, "/api/jobs").await;
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let app = app.clone();
            tokio::spawn(async move {
                for round in 0..15 {
                    let id = format!("filler-{:03}", (writer * 15 + round) % 60);
                    patch_title(&app, &id, &format!("w{writer} r{round}")).await;
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    let listing = body(&app, "/api/jobs").await;
                    assert_eq!(titles(&listing).len(), 63, "every job, once");
                }
            })
        })
        .collect();
    for task in writers.into_iter().chain(readers) {
        task.await.unwrap();
    }
    // Every job as written last, in the very next answer.
    let listing = body(&app, "/api/jobs").await;
    assert_eq!(listing, body(&app, WHOLE).await);
    let titles = titles(&listing);
    for writer in 0..4 {
        let id = format!("filler-{:03}", writer * 15 + 14);
        let title = titles.iter().find(|(job, _)| *job == id).unwrap();
        assert_eq!(title.1.as_deref(), Some(format!("w{writer} r14").as_str()));
    }
}

/// The list's order is read by one request at a time and shared (`AllJobs::read_order`):
/// requests that arrive together before it is kept, and requests while writes move jobs
/// around, each get every job once, and the next answer follows the last move.
#[tokio::test]
async fn answers_asking_together_for_the_order_get_every_job_once_while_jobs_move() {
    let app = std::sync::Arc::new(archive_app(60).await);
    let together: Vec<_> = (0..12)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { body(&app, "/api/jobs").await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in together {
        answers.push(task.await.unwrap());
    }
    let whole = body(&app, WHOLE).await;
    for answer in &answers {
        assert_eq!(answer, &whole, "the same bytes as the list built whole");
    }

    let movers: Vec<_> = (0..3)
        .map(|mover| {
            let app = app.clone();
            tokio::spawn(async move {
                for round in 0..8 {
                    let id = format!("filler-{:03}", mover * 8 + round);
                    let response = app
                        .client
                        .patch(app.url(&format!("/api/jobs/{id}")))
                        .json(&json!({ "meetingDate": format!("2031-0{}-1{mover}", round + 1) }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200);
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..6)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                for _ in 0..6 {
                    let listing = body(&app, "/api/jobs").await;
                    let ids = titles(&listing);
                    let unique: std::collections::HashSet<_> = ids.iter().map(|t| &t.0).collect();
                    assert_eq!(ids.len(), 63, "every job");
                    assert_eq!(unique.len(), 63, "each once");
                }
            })
        })
        .collect();
    for task in movers.into_iter().chain(readers) {
        task.await.unwrap();
    }
    let listing = body(&app, "/api/jobs").await;
    assert_eq!(listing, body(&app, WHOLE).await, "the order as moved last");
    // The latest date written: the third mover's last round.
    assert_eq!(titles(&listing)[0].0, "filler-023");
}

#[tokio::test]
async fn a_kept_page_follows_writes_to_its_jobs() {
    let app = archive_app(40).await;
    let page = |path: &'static str| {
        let app = &app;
        async move { titles(&body(app, path).await) }
    };
    let first = page("/api/jobs?limit=5").await;
    let second = page("/api/jobs?limit=5&offset=5").await;
    // A write to a job on the second page: the first stays as it is, the second shows it.
    let on_second = second[2].0.clone();
    patch_title(&app, &on_second, "Changed").await;
    assert_eq!(page("/api/jobs?limit=5").await, first);
    let again = page("/api/jobs?limit=5&offset=5").await;
    assert_eq!(again[2], (on_second, Some("Changed".to_string())));
    // A search follows a write to any job.
    patch_title(&app, &first[4].0, "Quarterly zebra").await;
    let found = page("/api/jobs?q=zebra").await;
    assert_eq!(
        found,
        vec![(first[4].0.clone(), Some("Quarterly zebra".into()))]
    );
    patch_title(&app, &first[4].0, "Quarterly").await;
    assert!(page("/api/jobs?q=zebra").await.is_empty());
}

/// Every status: a status filter is still serialised whole, so with all of them it gives the
/// reference bytes of a plain page, which is put together from each job's kept JSON.
const EVERY_STATUS: &str =
    "status=queued,resolving,downloading,transcribing,summarizing,completed,error";

/// The plain page `query` and the same page built whole are the same bytes.
async fn same_as_whole(app: &TestApp, query: &str) -> String {
    let page = body(app, &format!("/api/jobs?{query}")).await;
    let whole = body(app, &format!("/api/jobs?{query}&{EVERY_STATUS}")).await;
    assert_eq!(page, whole, "{query}");
    page
}

#[tokio::test]
async fn pages_are_the_page_built_whole_byte_for_byte_through_writes() {
    let app = archive_app(40).await;
    let first = same_as_whole(&app, "limit=5").await;
    let cursor = serde_json::from_str::<Value>(&first).unwrap()["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let pages = [
        "limit=5".to_string(),
        format!("limit=5&cursor={cursor}"),
        "limit=5&offset=5".to_string(),
        "limit=1".to_string(),
        "limit=500".to_string(),
        "limit=7&from=2025-01-01&to=2025-12-31".to_string(),
    ];
    for query in &pages {
        same_as_whole(&app, query).await;
    }
    // Kept now; a write to a job on the first page, one on the second, a move, a deletion:
    // each page is still what building it whole gives.
    let ids: Vec<String> = titles(&body(&app, "/api/jobs?limit=10").await)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    patch_title(&app, &ids[0], "First, \"quoted\"").await;
    patch_title(&app, &ids[7], "On the second page").await;
    for query in &pages {
        same_as_whole(&app, query).await;
    }
    let changed = titles(&same_as_whole(&app, "limit=5").await);
    assert_eq!(changed[0].1.as_deref(), Some("First, \"quoted\""));
    let second = titles(&same_as_whole(&app, "limit=5&offset=5").await);
    assert_eq!(second[2].1.as_deref(), Some("On the second page"));

    patch_job(&app, &ids[8], json!({ "meetingDate": "2031-01-01" })).await;
    let moved = titles(&same_as_whole(&app, "limit=5").await);
    assert_eq!(moved[0].0, ids[8], "the moved job leads the first page");
    let response = app
        .client
        .delete(app.url(&format!("/api/jobs/{}", ids[1])))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    for query in &pages {
        let page = same_as_whole(&app, query).await;
        assert!(!titles(&page).iter().any(|(id, _)| *id == ids[1]));
    }
}

#[tokio::test]
async fn a_write_rebuilds_only_the_pages_showing_its_job_and_only_that_job() {
    let app = archive_app(40).await;
    if app.config.database_url.is_some() {
        // What is kept shows through titles changed behind the server's back, in the file.
        eprintln!("skipped on PostgreSQL: the test writes to the SQLite file directly");
        return;
    }
    let page = |path: &'static str| {
        let app = &app;
        async move { titles(&body(app, path).await) }
    };
    let first = page("/api/jobs?limit=5").await;
    let second = page("/api/jobs?limit=5&offset=5").await;
    // Changed in the database without the server knowing: only a page or a job read again
    // shows it.
    {
        let connection = rusqlite::Connection::open(app.data_dir.join("focusflow.db")).unwrap();
        for id in [&first[0].0, &second[0].0] {
            connection
                .execute(
                    "UPDATE jobs SET title = 'behind the cache' WHERE id = ?1",
                    [id],
                )
                .unwrap();
        }
    }
    // A write through the server to the second job of the second page.
    patch_title(&app, &second[1].0, "Written").await;
    assert_eq!(
        page("/api/jobs?limit=5").await,
        first,
        "the first page, without the job written, is kept as it was"
    );
    let again = page("/api/jobs?limit=5&offset=5").await;
    assert_eq!(again[1], (second[1].0.clone(), Some("Written".into())));
    assert_eq!(
        again[0], second[0],
        "the page is rebuilt from the other jobs' kept JSON, not read again"
    );
    assert_eq!(again[2..], second[2..]);
}

/// The list fragment at `path`, its form tokens (one per visitor) blanked.
async fn list_html(app: &TestApp, path: &str) -> String {
    let html = body(app, path).await;
    let marker = "name=\"csrf_token\" value=\"";
    let mut out = String::with_capacity(html.len());
    let mut rest = html.as_str();
    while let Some(at) = rest.find(marker) {
        let value = at + marker.len();
        out.push_str(&rest[..value]);
        let end = rest[value..]
            .find('"')
            .map_or(rest.len(), |end| value + end);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn the_list_page_is_put_together_from_kept_cards() {
    let app = archive_app(40).await;
    if app.config.database_url.is_some() {
        eprintln!("skipped on PostgreSQL: the test writes to the SQLite file directly");
        return;
    }
    let lists = ["/partials/jobs", "/partials/jobs?open=filler-003"];
    for list in lists {
        list_html(&app, list).await;
    }
    // Writes through the server: a title, a move, a deletion.
    patch_title(&app, "filler-002", "Second <filler> & co").await;
    patch_job(&app, "filler-009", json!({ "meetingDate": "2031-01-01" })).await;
    delete_job(&app, "hiring").await;
    let mut served = Vec::new();
    for list in lists {
        served.push(list_html(&app, list).await);
    }
    assert!(
        served[0].contains("Second &#60;filler&#62; &#38; co"),
        "{}",
        served[0]
    );
    assert!(!served[0].contains("/jobs/hiring"));
    // A server started afresh renders every card from the database: the same bytes.
    let app = app.restart().await;
    for (list, before) in lists.iter().zip(&served) {
        assert_eq!(&list_html(&app, list).await, before, "{list}");
    }

    // Titles changed behind the server's back show only where a card is rendered again.
    {
        let connection = rusqlite::Connection::open(app.data_dir.join("focusflow.db")).unwrap();
        for id in ["launch", "budget"] {
            connection
                .execute(
                    "UPDATE jobs SET title = 'behind the cache' WHERE id = ?1",
                    [id],
                )
                .unwrap();
        }
    }
    patch_title(&app, "filler-004", "Written").await;
    let html = list_html(&app, "/partials/jobs").await;
    assert!(
        html.contains("Written"),
        "the card written is rendered again"
    );
    assert!(
        !html.contains("behind the cache"),
        "the other cards are the kept ones"
    );
}

/// `GET /api/jobs/{id}` answers the job's kept JSON: the very bytes it has in a list built
/// whole, before and after a write to it, and a missing job or a bad flag is refused as before.
#[tokio::test]
async fn a_single_job_is_its_bytes_in_the_list_and_follows_its_writes() {
    let app = archive_app(5).await;
    for round in 0..2 {
        let job = body(&app, "/api/jobs/budget").await;
        let parsed: Value = serde_json::from_str(&job).expect("one whole JSON object");
        assert_eq!(parsed["id"], "budget");
        let whole = body(&app, WHOLE).await;
        assert!(
            whole.contains(&job),
            "round {round}: the job's bytes stand in the list built whole:\n{job}"
        );
        // Asked twice, the same bytes (the second from what was kept).
        assert_eq!(body(&app, "/api/jobs/budget").await, job);
        if round == 0 {
            patch_title(&app, "budget", "Budget, renamed").await;
        } else {
            assert_eq!(parsed["title"], "Budget, renamed");
        }
    }
    let missing = app.get("/api/jobs/no-such-job?content=maybe").await;
    assert_eq!(
        missing.status(),
        404,
        "an unknown job is a 404 whatever its flags"
    );
    let bad = app.get("/api/jobs/budget?content=maybe").await;
    assert_eq!(bad.status(), 400);
    let full: Value = app
        .get("/api/jobs/budget?content=true")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(full["title"], "Budget, renamed");
    assert!(full.get("summary").is_some(), "{full}");
}
