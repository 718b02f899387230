//! `focusflow backup <dir>`: a consistent copy of the data directory, safe while the server runs.
//!
//! The database is copied first, as it was at one instant (see `sqlite::backup`), while the
//! server keeps writing. The artifact files are copied after it; files a half-finished write left
//! behind (temporary names) are skipped. Starting a server on the copy brings every job back;
//! jobs that were running resume from their checkpoint.

use std::path::{Path, PathBuf};

use super::StoreError;
use super::files::{AUDIO_DIR, SUMMARIES_DIR, TRANSCRIPTS_DIR};
use super::sqlite::DATABASE_FILE;
use super::sqlite::backup::copy_database;

#[derive(Debug)]
pub struct BackupReport {
    pub database: PathBuf,
    pub jobs: u64,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("there is no FocusFlow database in {0}")]
    NoDatabase(String),
    #[error("{0} is not empty; back up into a new or empty folder")]
    NotEmpty(String),
    #[error("could not write the backup: {0}")]
    Io(#[from] std::io::Error),
    #[error("could not copy the database: {0}")]
    Database(#[from] StoreError),
}

/// Copies the store in `data_dir` into `target` (created if needed, must be empty).
pub fn backup(data_dir: &Path, target: &Path) -> Result<BackupReport, BackupError> {
    let source_path = data_dir.join(DATABASE_FILE);
    if !source_path.is_file() {
        return Err(BackupError::NoDatabase(data_dir.display().to_string()));
    }
    if target.exists() && std::fs::read_dir(target)?.next().is_some() {
        return Err(BackupError::NotEmpty(target.display().to_string()));
    }
    std::fs::create_dir_all(target)?;

    let database = target.join(DATABASE_FILE);
    let jobs = copy_database(&source_path, &database)?;

    let mut report = BackupReport {
        database,
        jobs,
        files: 0,
        bytes: 0,
    };
    for folder in [AUDIO_DIR, TRANSCRIPTS_DIR, SUMMARIES_DIR] {
        let from = data_dir.join(folder);
        let to = target.join(folder);
        std::fs::create_dir_all(&to)?;
        let Ok(entries) = std::fs::read_dir(&from) else {
            continue;
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let text = name.to_string_lossy();
            // Temporary files of writes in progress start with a dot.
            if text.starts_with('.') || !entry.file_type()?.is_file() {
                continue;
            }
            match std::fs::copy(entry.path(), to.join(&name)) {
                Ok(bytes) => {
                    report.files += 1;
                    report.bytes += bytes;
                }
                // Deleted since the snapshot: its job is gone too, nothing is lost.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(error.into()),
            }
        }
    }
    Ok(report)
}
