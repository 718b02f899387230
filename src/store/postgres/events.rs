//! Live events shared by every process on one database, through `LISTEN/NOTIFY`.
//!
//! An event is told to this process's subscribers at once (as [`InProcess`] does) and sent on
//! the `focusflow_events` channel, in order, by one task; a listening connection hands other
//! processes' events to the subscribers here. Every event from elsewhere also moves the write
//! generation, so no process's listing cache outlives another's write. Each message names the
//! process it came from, which ignores its own.
//!
//! A notification carries at most 8000 bytes: a long log line travels cut short (the stored
//! line is whole). While the listening connection is down, events from elsewhere are missed;
//! it is made again with a pause, and the generation moves when it is back (anything may have
//! changed meanwhile).

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio_postgres::AsyncMessage;

use crate::jobs::{JobId, LogLine, Status};
use crate::store::{Events, InProcess, JobEvent, Written};

const CHANNEL: &str = "focusflow_events";
/// A log line's text in a notification, at most (the payload limit is 8000 bytes).
const MAX_MESSAGE_BYTES: usize = 6000;
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// What crosses between processes.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    /// The process that sent it.
    from: String,
    #[serde(flatten)]
    what: What,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum What {
    Log {
        job: String,
        seq: i64,
        ts: i64,
        message: String,
    },
    Status {
        job: String,
        status: String,
    },
    Deleted {
        job: String,
    },
    /// Something was written (progress, an edit, or what an event describes): caches must not
    /// outlive it. Without a job (or from a process that names none), anything may have
    /// changed.
    Written {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job: Option<String>,
        /// `job`, `queue` or `order`: see [`Written`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change: Option<String>,
    },
}

impl What {
    fn of(event: &JobEvent) -> Self {
        match event {
            JobEvent::Log { job_id, line } => What::Log {
                job: job_id.to_string(),
                seq: line.seq,
                ts: line.ts,
                message: cut(&line.message),
            },
            JobEvent::Status { job_id, status } => What::Status {
                job: job_id.to_string(),
                status: status.as_str().into(),
            },
            JobEvent::Deleted { job_id } => What::Deleted {
                job: job_id.to_string(),
            },
        }
    }

    fn event(self) -> Option<JobEvent> {
        let job = |id: &str| JobId::parse(id).ok();
        Some(match self {
            What::Log {
                job: id,
                seq,
                ts,
                message,
            } => JobEvent::Log {
                job_id: job(&id)?,
                line: LogLine { seq, ts, message },
            },
            What::Status { job: id, status } => JobEvent::Status {
                job_id: job(&id)?,
                status: status.parse::<Status>().ok()?,
            },
            What::Deleted { job: id } => JobEvent::Deleted { job_id: job(&id)? },
            What::Written { .. } => return None,
        })
    }

    fn of_write(written: &Written) -> Self {
        let (job, change) = match written {
            Written::Job(id) => (Some(id), "job"),
            Written::Queue(id) => (Some(id), "queue"),
            Written::Order(id) => (Some(id), "order"),
            Written::Everything => (None, "everything"),
        };
        What::Written {
            job: job.map(JobId::to_string),
            change: job.map(|_| change.to_string()),
        }
    }

    /// What a message from another process changed, for this process's caches.
    fn write(&self) -> Written {
        let job = |id: &str| JobId::parse(id).ok();
        let known = match self {
            What::Log { job: id, .. } => job(id).map(Written::Job),
            What::Status { job: id, .. } => job(id).map(Written::Queue),
            What::Deleted { job: id } => job(id).map(Written::Order),
            What::Written {
                job: Some(id),
                change: Some(change),
            } => job(id).and_then(|id| match change.as_str() {
                "job" => Some(Written::Job(id)),
                "queue" => Some(Written::Queue(id)),
                "order" => Some(Written::Order(id)),
                _ => None,
            }),
            What::Written { .. } => None,
        };
        known.unwrap_or(Written::Everything)
    }
}

fn cut(message: &str) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message.to_string();
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

pub struct SharedEvents {
    local: Arc<InProcess>,
    outgoing: mpsc::UnboundedSender<What>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SharedEvents {
    /// Starts the sending task (over `pool`) and the listening connection (made from
    /// `config`, reconnecting on failure).
    pub fn start(pool: Pool, config: tokio_postgres::Config) -> Self {
        let local = Arc::new(InProcess::new());
        let me = uuid::Uuid::new_v4().simple().to_string();
        let (outgoing, receiver) = mpsc::unbounded_channel();
        let tasks = vec![
            tokio::spawn(send(pool, me.clone(), receiver)),
            tokio::spawn(listen(config, me, local.clone())),
        ];
        Self {
            local,
            outgoing,
            tasks,
        }
    }
}

impl Drop for SharedEvents {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Events for SharedEvents {
    fn name(&self) -> &'static str {
        "postgresql"
    }

    fn announce(&self, event: JobEvent) {
        let _ = self.outgoing.send(What::of(&event));
        self.local.announce(event);
    }

    fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.local.subscribe()
    }

    fn written(&self, what: Written) {
        let _ = self.outgoing.send(What::of_write(&what));
        self.local.written(what);
    }

    fn subscribe_writes(&self) -> broadcast::Receiver<Written> {
        self.local.subscribe_writes()
    }

    fn generation(&self) -> u64 {
        self.local.generation()
    }
}

/// Sends what this process announces, in order. Within a run waiting together, a write told
/// twice goes once, and a run of many writes goes as one `Written` of everything.
async fn send(pool: Pool, me: String, mut receiver: mpsc::UnboundedReceiver<What>) {
    /// More writes than this waiting at once: the others' caches start over anyway.
    const MANY_WRITES: usize = 64;
    let mut batch = Vec::new();
    while receiver.recv_many(&mut batch, 256).await > 0 {
        let writes: Vec<(Option<String>, Option<String>)> = batch
            .iter()
            .filter_map(|what| match what {
                What::Written { job, change } => Some((job.clone(), change.clone())),
                _ => None,
            })
            .collect();
        let mut sent = std::collections::HashSet::new();
        let many = writes.len() > MANY_WRITES;
        let mut payloads = Vec::with_capacity(batch.len());
        for mut what in batch.drain(..) {
            if let What::Written { job, change } = &mut what {
                if many {
                    *job = None;
                    *change = None;
                }
                if !sent.insert((job.clone(), change.clone())) {
                    continue;
                }
            }
            let message = Message {
                from: me.clone(),
                what,
            };
            if let Ok(payload) = serde_json::to_string(&message) {
                payloads.push(payload);
            }
        }
        if let Err(error) = notify(&pool, &payloads).await {
            tracing::warn!(%error, "live events could not be sent to other processes");
        }
    }
}

async fn notify(pool: &Pool, payloads: &[String]) -> Result<(), String> {
    let client = pool.get().await.map_err(|error| error.to_string())?;
    let statement = client
        .prepare_cached("SELECT pg_notify($1, $2)")
        .await
        .map_err(|error| error.to_string())?;
    for payload in payloads {
        client
            .execute(&statement, &[&CHANNEL, payload])
            .await
            .map_err(|error| error.to_string())?;
    }
    Ok(())
}

/// Hands other processes' events to this one's subscribers, for as long as the process runs.
async fn listen(config: tokio_postgres::Config, me: String, local: Arc<InProcess>) {
    let mut first = true;
    loop {
        match listen_once(&config, &me, &local, first).await {
            Ok(()) => tracing::warn!("the connection for live events closed; making it again"),
            Err(error) => {
                tracing::warn!(%error, "the connection for live events failed; trying again")
            }
        }
        first = false;
        tokio::time::sleep(RECONNECT_PAUSE).await;
    }
}

async fn listen_once(
    config: &tokio_postgres::Config,
    me: &str,
    local: &InProcess,
    first: bool,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tokio_postgres::NoTls).await?;
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let listen = format!("LISTEN {CHANNEL}");
    let listened = client.batch_execute(&listen);
    tokio::pin!(listened);
    // The connection is driven by reading its messages: both at once until LISTEN is done.
    loop {
        tokio::select! {
            done = &mut listened => { done?; break; }
            message = messages.next() => match message {
                Some(Ok(message)) => receive(message, me, local),
                Some(Err(error)) => return Err(error),
                None => return Ok(()),
            },
        }
    }
    if !first {
        // Writes elsewhere while this was down went unheard.
        local.written(Written::Everything);
    }
    // The client must live while the connection listens: dropping it closes the connection.
    while let Some(message) = messages.next().await {
        receive(message?, me, local);
    }
    Ok(())
}

fn receive(message: AsyncMessage, me: &str, local: &InProcess) {
    let AsyncMessage::Notification(notification) = message else {
        return;
    };
    let Ok(message) = serde_json::from_str::<Message>(notification.payload()) else {
        return;
    };
    if message.from == me {
        return;
    }
    local.written(message.what.write());
    if let Some(event) = message.what.event() {
        local.announce(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_long_lines_are_cut() {
        let id = JobId::parse("job-1").unwrap();
        let event = JobEvent::Log {
            job_id: id.clone(),
            line: LogLine {
                seq: 7,
                ts: 9,
                message: "é".repeat(5000),
            },
        };
        let message = Message {
            from: "me".into(),
            what: What::of(&event),
        };
        let payload = serde_json::to_string(&message).unwrap();
        assert!(payload.len() < 8000, "{}", payload.len());
        let back: Message = serde_json::from_str(&payload).unwrap();
        let Some(JobEvent::Log { job_id, line }) = back.what.event() else {
            panic!("a log line");
        };
        assert_eq!((job_id, line.seq, line.ts), (id.clone(), 7, 9));
        assert!(line.message.ends_with('…'));
        let status = What::of(&JobEvent::Status {
            job_id: id,
            status: Status::Queued,
        });
        assert!(matches!(
            status.event(),
            Some(JobEvent::Status {
                status: Status::Queued,
                ..
            })
        ));
        let bare = What::Written {
            job: None,
            change: None,
        };
        assert_eq!(bare.write(), Written::Everything);
        assert!(bare.event().is_none());
    }

    #[test]
    fn a_write_names_its_job_to_other_processes() {
        let id = JobId::parse("job-2").unwrap();
        for written in [
            Written::Job(id.clone()),
            Written::Queue(id.clone()),
            Written::Order(id.clone()),
            Written::Everything,
        ] {
            let payload = serde_json::to_string(&Message {
                from: "me".into(),
                what: What::of_write(&written),
            })
            .unwrap();
            let back: Message = serde_json::from_str(&payload).unwrap();
            assert_eq!(back.what.write(), written, "{payload}");
        }
        // A process of the version before names no job: anything may have changed.
        let old: Message = serde_json::from_str(r#"{"from":"x","kind":"written"}"#).unwrap();
        assert_eq!(old.what.write(), Written::Everything);
        // An event from elsewhere names the job it changed.
        let deleted = What::of(&JobEvent::Deleted { job_id: id.clone() });
        assert_eq!(deleted.write(), Written::Order(id));
    }
}
