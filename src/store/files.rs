//! Artifacts: audio, transcripts, summaries, as files in the data directory or, with
//! `STORAGE_URL`, as objects in an S3-compatible bucket ([`crate::storage::Bucket`]).
//!
//! Every path is built from a [`JobId`], which is checked to be safe in a file name, and stored
//! relative to the data directory so that moving the directory (or a container volume) keeps
//! every job readable. A bucket keeps the same relative paths as keys under the job's folder,
//! so the database rows are the same whichever holds the artifacts (and `focusflow migrate`
//! copies them unchanged).
//!
//! Callers use the domain operations here (read or write a text, the size of an artifact, a
//! local copy of the audio for a provider, remove what a job has); only the download, the audio
//! route and the audio export reach for the bucket itself, to stream without a local copy.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use crate::jobs::{Job, JobId};
use crate::storage::Bucket;

pub use crate::storage::{AUDIO_DIR, SUMMARIES_DIR, TRANSCRIPTS_DIR};

#[derive(Debug, Clone)]
pub struct Artifacts {
    data_dir: PathBuf,
    /// Where the artifacts are when not in `data_dir` (which then holds only temporary files:
    /// local copies of audio for providers that need a file).
    bucket: Option<Bucket>,
}

/// A local file of a job's audio, for a provider that reads a file. When the audio is in a
/// bucket this is a temporary copy (`files/.<id>.<random>.part`, which the start-up cleanup
/// also finds), removed when this is dropped.
#[derive(Debug)]
pub struct LocalAudio {
    path: PathBuf,
    temporary: bool,
}

impl LocalAudio {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LocalAudio {
    fn drop(&mut self) {
        if self.temporary
            && let Err(error) = std::fs::remove_file(&self.path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), %error, "could not remove a temporary copy of audio");
        }
    }
}

/// A temporary file that an artifact is written to before it is put in place
/// (`.<id>.<random>.part` beside its destination: the prefix lets a delete of the job, or the
/// start-up cleanup, find what an interrupted write left). Removed when dropped unless
/// [`Artifacts::place_part`] put it in place, so every way out of a failed write cleans up.
#[derive(Debug)]
pub struct PartFile {
    path: PathBuf,
    placed: bool,
}

impl PartFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.placed {
            // A small blocking call, once per abandoned write; a file not there is fine.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Artifacts {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            bucket: None,
        }
    }

    /// Artifacts in `bucket`; `data_dir` keeps temporary files only.
    pub fn in_bucket(data_dir: PathBuf, bucket: Bucket) -> Self {
        Self {
            data_dir,
            bucket: Some(bucket),
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The bucket, when the artifacts are objects (for streaming without a local copy).
    pub fn bucket(&self) -> Option<&Bucket> {
        self.bucket.as_ref()
    }

    /// `local` or `s3`, as `/api/health` names it.
    pub fn kind(&self) -> &'static str {
        if self.bucket.is_some() { "s3" } else { "local" }
    }

    /// The size of a stored artifact; None when it does not exist.
    pub async fn size(&self, relative: Option<&str>) -> std::io::Result<Option<u64>> {
        let Some(relative) = relative else {
            return Ok(None);
        };
        if let Some(bucket) = &self.bucket {
            return bucket.size(relative).await.map_err(std::io::Error::other);
        }
        let Some(path) = self.resolve(relative) else {
            return Ok(None);
        };
        match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            Ok(_) => Ok(None),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// A file of the job's audio for a provider that reads files; None when there is none.
    pub async fn local_audio(
        &self,
        id: &JobId,
        relative: Option<&str>,
    ) -> std::io::Result<Option<LocalAudio>> {
        let Some(relative) = relative else {
            return Ok(None);
        };
        let Some(path) = self.resolve(relative) else {
            return Ok(None);
        };
        let Some(bucket) = &self.bucket else {
            return Ok(path.is_file().then_some(LocalAudio {
                path,
                temporary: false,
            }));
        };
        // The extension stays last: providers and the splitter look at it.
        let extension = Path::new(relative)
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_else(|| "bin".into());
        let copy = LocalAudio {
            path: self.data_dir.join(AUDIO_DIR).join(format!(
                ".{id}.{}.copy.{extension}",
                uuid::Uuid::new_v4().simple()
            )),
            temporary: true,
        };
        match bucket.download_file(relative, &copy.path).await {
            Ok(true) => Ok(Some(copy)),
            Ok(false) => Ok(None),
            Err(error) => Err(std::io::Error::other(error)),
        }
    }

    /// A temporary file to write the job's artifact `relative` to; None for a path that would
    /// leave the data directory.
    pub fn part_file(&self, id: &JobId, relative: &str) -> Option<PartFile> {
        let destination = self.resolve(relative)?;
        let path =
            destination.with_file_name(format!(".{id}.{}.part", uuid::Uuid::new_v4().simple()));
        Some(PartFile {
            path,
            placed: false,
        })
    }

    /// Puts a finished [`PartFile`] at `relative` (see [`Artifacts::place_file`]). On failure
    /// the part file goes.
    pub async fn place_part(&self, mut part: PartFile, relative: &str) -> std::io::Result<()> {
        self.place_file(&part.path, relative).await?;
        part.placed = true;
        Ok(())
    }

    /// Puts a finished temporary file (an upload received) at `relative`: renamed into place,
    /// or uploaded to the bucket and then removed.
    pub async fn place_file(&self, temp: &Path, relative: &str) -> std::io::Result<()> {
        match &self.bucket {
            Some(bucket) => {
                let uploaded = bucket.upload_file(temp, relative).await;
                let _ = tokio::fs::remove_file(temp).await;
                uploaded.map(drop).map_err(std::io::Error::other)
            }
            None => {
                let destination = self.resolve(relative).ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "unsafe artifact path")
                })?;
                tokio::fs::rename(temp, destination).await
            }
        }
    }

    /// Removes the artifacts at `relatives` (gone already is fine; other failures are logged).
    pub async fn remove_paths(&self, relatives: Vec<String>) {
        match &self.bucket {
            Some(bucket) => {
                if let Err(error) = bucket.remove(&relatives).await {
                    tracing::warn!(%error, "could not remove artifacts");
                }
            }
            None => {
                let paths = relatives
                    .iter()
                    .filter_map(|relative| self.resolve(relative))
                    .collect();
                let _ = tokio::task::spawn_blocking(move || remove_files(paths)).await;
            }
        }
    }

    /// What `removal` says to remove of `job`, from the folder or the bucket.
    pub(crate) async fn remove_of(&self, job: Job, removal: super::changes::Removal) {
        use super::changes::Removal;
        let Some(bucket) = &self.bucket else {
            let artifacts = self.clone();
            let removed = tokio::task::spawn_blocking(move || match removal {
                Removal::All => artifacts.remove_all(&job),
                Removal::After(kept) => artifacts.remove_after(&job, kept),
            })
            .await;
            if let Err(error) = removed {
                tracing::warn!(%error, "the removal of a job's files stopped");
            }
            return;
        };
        let removed = match removal {
            Removal::All => bucket.remove_job(&job.id).await.map(drop),
            Removal::After(kept) => {
                let (relatives, parts) = self.after(&job, kept);
                match bucket.remove(&relatives).await {
                    Ok(()) if parts => bucket.remove_transcript_parts(&job.id).await,
                    other => other,
                }
            }
        };
        if let Err(error) = removed {
            tracing::warn!(job = %job.id, %error, "could not remove the job's objects");
        }
    }

    pub fn create_dirs(&self) -> std::io::Result<()> {
        for dir in [AUDIO_DIR, TRANSCRIPTS_DIR, SUMMARIES_DIR] {
            std::fs::create_dir_all(self.data_dir.join(dir))?;
        }
        Ok(())
    }

    /// `files/<id>.<extension>`, relative.
    pub fn audio_relative(&self, id: &JobId, extension: &str) -> String {
        let extension: String = extension
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(8)
            .collect::<String>()
            .to_ascii_lowercase();
        let extension = if extension.is_empty() {
            "bin".into()
        } else {
            extension
        };
        format!("{AUDIO_DIR}/{id}.{extension}")
    }

    pub fn transcript_relative(&self, id: &JobId) -> String {
        format!("{TRANSCRIPTS_DIR}/{id}.txt")
    }

    pub fn utterances_relative(&self, id: &JobId) -> String {
        format!("{TRANSCRIPTS_DIR}/{id}.json")
    }

    /// `transcripts/<id>.part-<index>.json`: the speech-to-text answer for one part of audio
    /// sent in parts, kept until the transcript is saved so that a retry sends only the parts
    /// not yet done.
    pub fn transcript_part_relative(&self, id: &JobId, index: usize) -> String {
        format!("{TRANSCRIPTS_DIR}/{id}.part-{index}.json")
    }

    /// Every part answer the job has stored (see [`Self::transcript_part_relative`]), found by
    /// listing: their number depends on the plan that made them. Ids hold no dot, so the
    /// prefix is the job's own.
    fn transcript_part_paths(&self, id: &JobId) -> Vec<PathBuf> {
        let prefix = format!("{id}.part-");
        let Ok(entries) = std::fs::read_dir(self.data_dir.join(TRANSCRIPTS_DIR)) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
            .map(|entry| entry.path())
            .collect()
    }

    /// The relative paths of every file the job has in the data folder (what it names, the
    /// utterances beside its transcript, kept part answers), for `focusflow migrate`.
    pub fn local_files_of(&self, job: &Job) -> Vec<String> {
        let mut relatives: Vec<String> = [
            job.file_path.clone(),
            job.transcript_path.clone(),
            job.summary_path.clone(),
            Some(self.transcript_relative(&job.id)),
            Some(self.utterances_relative(&job.id)),
            Some(self.summary_relative(&job.id)),
        ]
        .into_iter()
        .flatten()
        .collect();
        relatives.retain(|relative| {
            relative == job.file_path.as_deref().unwrap_or_default()
                || relative == job.transcript_path.as_deref().unwrap_or_default()
                || relative == job.summary_path.as_deref().unwrap_or_default()
                || self.resolve(relative).is_some_and(|path| path.is_file())
        });
        for path in self.transcript_part_paths(&job.id) {
            if let Some(name) = path.file_name() {
                relatives.push(format!("{TRANSCRIPTS_DIR}/{}", name.to_string_lossy()));
            }
        }
        relatives.sort();
        relatives.dedup();
        relatives
    }

    /// Removes the job's stored part answers, once its transcript is saved.
    pub async fn remove_transcript_parts(&self, id: &JobId) {
        if let Some(bucket) = &self.bucket {
            if let Err(error) = bucket.remove_transcript_parts(id).await {
                tracing::warn!(job = %id, %error, "could not remove the kept part answers");
            }
            return;
        }
        let paths = self.transcript_part_paths(id);
        let _ = tokio::task::spawn_blocking(move || remove_files(paths)).await;
    }

    pub fn summary_relative(&self, id: &JobId) -> String {
        format!("{SUMMARIES_DIR}/{id}.md")
    }

    /// The absolute (or data-dir-based) path of a stored relative path. Refuses anything that
    /// would leave the data directory.
    pub fn resolve(&self, relative: &str) -> Option<PathBuf> {
        let path = Path::new(relative);
        let safe = path
            .components()
            .all(|component| matches!(component, Component::Normal(_)));
        safe.then(|| self.data_dir.join(path))
    }

    /// Reads a text artifact; None when it does not exist.
    pub async fn read_text(&self, relative: Option<&str>) -> std::io::Result<Option<String>> {
        if let Some(bucket) = &self.bucket {
            return match relative {
                Some(relative) => bucket
                    .read_text(relative)
                    .await
                    .map_err(std::io::Error::other),
                None => Ok(None),
            };
        }
        let Some(path) = relative.and_then(|relative| self.resolve(relative)) else {
            return Ok(None);
        };
        match tokio::fs::read_to_string(&path).await {
            Ok(text) => Ok(Some(text)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Writes a text artifact atomically (temp file, then rename).
    pub async fn write_text(&self, relative: &str, text: String) -> std::io::Result<()> {
        if let Some(bucket) = &self.bucket {
            return bucket
                .write(relative, text.into())
                .await
                .map_err(std::io::Error::other);
        }
        let path = self.resolve(relative).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "unsafe artifact path")
        })?;
        tokio::task::spawn_blocking(move || write_atomic(&path, text.as_bytes()))
            .await
            .map_err(std::io::Error::other)?
    }

    /// Removes every file the job has, including ones under names it no longer points to.
    pub fn remove_all(&self, job: &Job) {
        let mut paths: Vec<PathBuf> = [
            job.file_path.as_deref(),
            job.transcript_path.as_deref(),
            job.summary_path.as_deref(),
        ]
        .into_iter()
        .flatten()
        .filter_map(|relative| self.resolve(relative))
        .collect();
        for relative in [
            self.transcript_relative(&job.id),
            self.utterances_relative(&job.id),
            self.summary_relative(&job.id),
        ] {
            paths.push(self.data_dir.join(relative));
        }
        // Audio of any extension, and temp files left by an interrupted download.
        if let Ok(entries) = std::fs::read_dir(self.data_dir.join(AUDIO_DIR)) {
            let prefix = format!("{}.", job.id);
            let partial = format!(".{}.", job.id);
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(&prefix) || name.starts_with(&partial) {
                    paths.push(entry.path());
                }
            }
        }
        paths.extend(self.transcript_part_paths(&job.id));
        remove_files(paths);
    }
}

impl Artifacts {
    /// Removes the temporary files that an earlier process left when it stopped mid-write:
    /// uploads and downloads (`files/.<id>.<random>.part`), local copies of audio kept in a
    /// bucket (`files/.<id>.<random>.copy.<extension>`) and atomic writes
    /// (`.<name>.<random>.tmp`, see [`write_atomic`]) in every artifact folder. Called at
    /// start-up, before this process transfers or writes anything (a resumed download starts a
    /// new temp file). Another process may still be at work on the same folder (a rolling
    /// deploy runs two): the files of a job it holds (`in_use(id)`) stay, and go when a worker
    /// takes that job over (see [`Self::remove_partial_of`]). Returns how many went.
    pub fn remove_partial_transfers(&self, in_use: impl Fn(&str) -> bool) -> usize {
        self.remove_partial(|name| !partial_owner(name).is_some_and(&in_use))
    }

    /// Removes the temporary files of one job, left by a worker that stopped mid-write. Called
    /// by the worker that takes the job over, before it writes anything.
    pub fn remove_partial_of(&self, id: &JobId) -> usize {
        self.remove_partial(|name| partial_owner(name) == Some(id.as_str()))
    }

    /// Removes every temporary file whose name `chosen` picks.
    fn remove_partial(&self, chosen: impl Fn(&str) -> bool) -> usize {
        let mut removed = 0;
        for dir in [AUDIO_DIR, TRANSCRIPTS_DIR, SUMMARIES_DIR] {
            let Ok(entries) = std::fs::read_dir(self.data_dir.join(dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let leftover = name.starts_with('.')
                    && (name.ends_with(".tmp")
                        || (dir == AUDIO_DIR
                            && (name.ends_with(".part") || name.contains(".copy."))));
                if !leftover
                    || !entry.file_type().is_ok_and(|kind| kind.is_file())
                    || !chosen(&name)
                {
                    continue;
                }
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(error) => {
                        tracing::warn!(path = %entry.path().display(), %error, "could not remove a leftover temporary file")
                    }
                }
            }
        }
        removed
    }

    /// Removes what the stages after `kept` made: a job created from an upload keeps its
    /// audio (`Download`), one created from a transcript keeps that too (`Transcribe`).
    pub fn remove_after(&self, job: &Job, kept: crate::jobs::Stage) {
        let (relatives, parts) = self.after(job, kept);
        let mut paths: Vec<PathBuf> = relatives
            .iter()
            .filter_map(|relative| self.resolve(relative))
            .collect();
        if parts {
            paths.extend(self.transcript_part_paths(&job.id));
        }
        remove_files(paths);
    }

    /// The artifacts the stages after `kept` made, and whether the part answers go too.
    fn after(&self, job: &Job, kept: crate::jobs::Stage) -> (Vec<String>, bool) {
        use crate::jobs::Stage;
        let mut relatives = vec![self.summary_relative(&job.id)];
        relatives.extend(job.summary_path.clone());
        let parts = kept < Stage::Transcribe;
        if parts {
            relatives.push(self.transcript_relative(&job.id));
            relatives.push(self.utterances_relative(&job.id));
            relatives.extend(job.transcript_path.clone());
        }
        (relatives, parts)
    }
}

/// Removes files that may already be gone; other failures are logged, not fatal.
fn remove_files(paths: Vec<PathBuf>) {
    for path in paths {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "could not remove an artifact")
            }
        }
    }
}

/// The job a temporary file belongs to: every one is named `.<id>.<…>` (job ids hold no dot).
fn partial_owner(name: &str) -> Option<&str> {
    name.strip_prefix('.')?.split('.').next()
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames it into place, so a
/// reader never sees half a file and a crash never leaves one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_being_received_is_removed_unless_placed_whichever_way_the_request_ends() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = Artifacts::new(dir.path().to_path_buf());
        let id = JobId::parse("abc").unwrap();
        let relative = artifacts.audio_relative(&id, "mp3");
        std::fs::create_dir_all(dir.path().join(AUDIO_DIR)).unwrap();
        let part = artifacts.part_file(&id, &relative).unwrap();
        let path = part.path().to_path_buf();
        std::fs::write(&path, b"half a recording").unwrap();
        drop(part);
        assert!(!path.exists(), "an abandoned upload is removed");

        let part = artifacts.part_file(&id, &relative).unwrap();
        std::fs::write(part.path(), b"a whole recording").unwrap();
        artifacts.place_part(part, &relative).await.unwrap();
        let placed = artifacts.resolve(&relative).unwrap();
        assert_eq!(
            std::fs::read(&placed).unwrap(),
            b"a whole recording",
            "a placed one stays"
        );

        // A request dropped while it waits (as the request timeout drops it) removes it too.
        let held = artifacts.part_file(&id, &relative).unwrap();
        let path = held.path().to_path_buf();
        std::fs::write(&path, b"half a recording").unwrap();
        let waiting = tokio::spawn(async move {
            let _held = held;
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        });
        tokio::task::yield_now().await;
        assert!(path.exists());
        waiting.abort();
        let _ = waiting.await;
        assert!(!path.exists(), "removed when the request is dropped");
    }

    #[test]
    fn stored_paths_never_leave_the_data_dir() {
        let artifacts = Artifacts::new(PathBuf::from("/data"));
        assert_eq!(
            artifacts.resolve("summaries/a.md"),
            Some(PathBuf::from("/data/summaries/a.md"))
        );
        assert_eq!(artifacts.resolve("../etc/passwd"), None);
        assert_eq!(artifacts.resolve("/etc/passwd"), None);
        assert_eq!(artifacts.resolve("files/../../x"), None);
        let id = JobId::parse("abc").unwrap();
        assert_eq!(artifacts.audio_relative(&id, "MP3"), "files/abc.mp3");
        assert_eq!(artifacts.audio_relative(&id, "../x"), "files/abc.x");
        assert_eq!(artifacts.audio_relative(&id, ""), "files/abc.bin");
    }

    #[test]
    fn partial_transfers_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = Artifacts::new(dir.path().to_path_buf());
        artifacts.create_dirs().unwrap();
        let files = dir.path().join(AUDIO_DIR);
        for name in [
            ".abc.1f2e.part",
            ".def.99.part",
            "abc.mp3",
            "notes.part",
            ".abc.mp3.9.tmp",
            ".abc.7c.copy.mp3",
            "keep.tmp",
        ] {
            std::fs::write(files.join(name), b"x").unwrap();
        }
        std::fs::create_dir(files.join(".folder.part")).unwrap();
        let summaries = dir.path().join(SUMMARIES_DIR);
        std::fs::write(summaries.join(".abc.md.77.tmp"), b"half").unwrap();
        std::fs::write(summaries.join("abc.md"), b"whole").unwrap();
        std::fs::write(summaries.join(".abc.part"), b"not ours").unwrap();
        assert_eq!(artifacts.remove_partial_transfers(|_| false), 5);
        let mut left: Vec<String> = std::fs::read_dir(&files)
            .unwrap()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".folder.part", "abc.mp3", "keep.tmp", "notes.part"]);
        assert!(summaries.join("abc.md").exists() && summaries.join(".abc.part").exists());
        // No folder yet: nothing to do.
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            Artifacts::new(empty.path().to_path_buf()).remove_partial_transfers(|_| false),
            0
        );
    }

    #[tokio::test]
    async fn kept_part_answers_are_removed_for_their_job_only() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = Artifacts::new(dir.path().to_path_buf());
        artifacts.create_dirs().unwrap();
        let id = JobId::parse("abc").unwrap();
        assert_eq!(
            artifacts.transcript_part_relative(&id, 12),
            "transcripts/abc.part-12.json"
        );
        let transcripts = dir.path().join(TRANSCRIPTS_DIR);
        for name in [
            "abc.part-0.json",
            "abc.part-12.json",
            "abc.json",
            "abc.txt",
            "abcd.part-0.json",
            "abc_d.part-0.json",
        ] {
            std::fs::write(transcripts.join(name), b"{}").unwrap();
        }
        artifacts.remove_transcript_parts(&id).await;
        let mut left: Vec<String> = std::fs::read_dir(&transcripts)
            .unwrap()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "abc.json",
                "abc.txt",
                "abc_d.part-0.json",
                "abcd.part-0.json"
            ]
        );
    }

    #[test]
    fn partial_files_of_jobs_in_use_stay_until_the_job_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = Artifacts::new(dir.path().to_path_buf());
        artifacts.create_dirs().unwrap();
        let files = dir.path().join(AUDIO_DIR);
        let summaries = dir.path().join(SUMMARIES_DIR);
        for name in [".held.1.part", ".free.2.part", ".upload.3.part"] {
            std::fs::write(files.join(name), b"x").unwrap();
        }
        std::fs::write(summaries.join(".held.md.4.tmp"), b"x").unwrap();
        std::fs::write(summaries.join(".free.md.5.tmp"), b"x").unwrap();
        assert_eq!(artifacts.remove_partial_transfers(|id| id == "held"), 3);
        let left = |dir: &Path| {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        assert_eq!(left(&files), [".held.1.part"]);
        assert_eq!(left(&summaries), [".held.md.4.tmp"]);
        // The worker that takes the job over removes its leftovers, and only its.
        std::fs::write(files.join(".other.6.part"), b"x").unwrap();
        let held = JobId::parse("held").unwrap();
        assert_eq!(artifacts.remove_partial_of(&held), 2);
        assert_eq!(left(&files), [".other.6.part"]);
        assert!(left(&summaries).is_empty());
    }

    #[test]
    fn atomic_writes_replace_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.md");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
