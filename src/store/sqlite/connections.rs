//! The backend's connections: one writer and a few readers, each used on the blocking pool.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;

use crate::store::{StoreError, StoreResult};

const READERS: usize = 4;
/// A reader's page cache, in KiB.
const READER_CACHE_KIB: usize = 1024;

/// How long a statement waits for another connection (or process) to finish writing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Connections {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

pub fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;",
    )?;
    Ok(connection)
}

fn stopped(error: tokio::task::JoinError) -> StoreError {
    StoreError::Unavailable(format!("the database's worker thread stopped: {error}"))
}

impl Connections {
    /// Opens the writer, runs `prepare` on it (the migrations), then opens the readers.
    pub fn open(
        path: &Path,
        prepare: impl FnOnce(&mut Connection) -> StoreResult<()>,
    ) -> StoreResult<Self> {
        let mut writer = open_connection(path)?;
        prepare(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| {
                let reader = open_connection(path)?;
                // Each connection keeps its own page cache (2 MB by default): four readers
                // that each went through a large listing held 8 MB. The pages stay in the
                // operating system's cache, a read away.
                reader.execute_batch(&format!("PRAGMA cache_size = -{READER_CACHE_KIB};"))?;
                Ok(Mutex::new(reader))
            })
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
            }),
        })
    }

    /// Runs `work` with the writer connection, one writer at a time.
    pub async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
            work(&mut connection)
        })
        .await
        .map_err(stopped)?
    }

    /// Runs `work` with one of the reader connections.
    pub async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let index = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            let connection = inner.readers[index]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            work(&connection)
        })
        .await
        .map_err(stopped)?
    }
}
