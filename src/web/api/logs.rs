//! `GET /api/jobs/{id}/logs/stream`: the job's log as server-sent events. Existing lines come
//! first, then new ones as they are written; a `status` event ends the stream when the job ends.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use crate::error::AppResult;
use crate::jobs::{JobId, LogLine, Status};
use crate::store::{JobEvent, Store};
use crate::web::AppState;
use crate::web::api::extract::JobPath;

/// The job's log as server-sent events: `event: message` with `{"message", "ts"}` for each
/// line (existing ones first), then `event: status` with `{"status"}` when the job ends.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}/logs/stream",
    tag = "jobs",
    params(crate::web::api::requests::JobIdParam),
    responses(
        (status = 200, description = "The log, as it is written", content_type = "text/event-stream", body = String),
    )
)]
pub async fn stream(
    State(state): State<AppState>,
    JobPath(id): JobPath,
) -> AppResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    // Subscribe before reading, so a line written in between is not lost.
    let events = state.store.subscribe();
    let (job, lines) = state.store.job_with_logs(&id).await?;
    let (sender, receiver) = mpsc::channel::<Event>(64);
    tokio::spawn(forward(
        state.store.clone(),
        id,
        job.status,
        lines,
        events,
        sender,
        state.shutdown.clone(),
    ));
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|event| (Ok(event), receiver))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn line_event(line: &LogLine) -> Event {
    Event::default()
        .event("message")
        .data(json!({ "message": line.message, "ts": line.ts }).to_string())
}

fn status_event(status: &str) -> Event {
    Event::default()
        .event("status")
        .data(json!({ "status": status }).to_string())
}

async fn forward(
    store: Store,
    id: JobId,
    status: Status,
    lines: Vec<LogLine>,
    mut events: broadcast::Receiver<JobEvent>,
    sender: mpsc::Sender<Event>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut last_seq = 0;
    for line in &lines {
        last_seq = line.seq;
        if sender.send(line_event(line)).await.is_err() {
            return;
        }
    }
    if status.is_finished() {
        let _ = sender.send(status_event(status.as_str())).await;
        return;
    }
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = sender.closed() => return,
            event = events.recv() => event,
        };
        match event {
            Ok(JobEvent::Log { job_id, line }) if job_id == id => {
                if line.seq > last_seq {
                    last_seq = line.seq;
                    if sender.send(line_event(&line)).await.is_err() {
                        return;
                    }
                }
            }
            Ok(JobEvent::Status { job_id, status }) if job_id == id && status.is_finished() => {
                // Lines written just before the end may still be in flight on the channel.
                if let Ok(rest) = store.logs_after(&id, last_seq).await {
                    for line in &rest {
                        if sender.send(line_event(line)).await.is_err() {
                            return;
                        }
                    }
                }
                let _ = sender.send(status_event(status.as_str())).await;
                return;
            }
            Ok(JobEvent::Deleted { job_id }) if job_id == id => {
                let _ = sender.send(status_event("deleted")).await;
                return;
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => {
                // Too slow to follow live: catch up from the store.
                let Ok((job, rest)) = store.job_with_logs(&id).await else {
                    return;
                };
                let seen = last_seq;
                for line in rest.iter().filter(|line| line.seq > seen) {
                    last_seq = line.seq;
                    if sender.send(line_event(line)).await.is_err() {
                        return;
                    }
                }
                if job.status.is_finished() {
                    let _ = sender.send(status_event(job.status.as_str())).await;
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
