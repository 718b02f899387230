//! Artifacts in an S3-compatible bucket (`STORAGE_URL=s3://bucket/prefix`), through the
//! `object_store` crate.
//!
//! Callers never see this module's types: [`crate::store::Artifacts`] decides between the data
//! folder and a [`Bucket`] and offers the same domain operations for both (read or write a text,
//! stream audio in, read a byte range, remove everything of a job). No `object_store` type
//! crosses this module either: errors become [`StorageError`], bodies become [`ByteStream`].
//!
//! Layout: a stored relative path such as `files/<id>.mp3` (the one the database keeps, the same
//! as on disk) is the key `<prefix>/jobs/<id>/files/<id>.mp3`. Every object of a job is under
//! one key prefix, so a delete lists and removes one "folder", and the start-up sweep finds
//! orphans by listing the job folders only.

use std::ops::Range;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectStore, RetryConfig, WriteMultipart,
    aws::AmazonS3Builder,
};

use crate::config::StorageUrl;
use crate::jobs::JobId;

/// The folder under the prefix that holds one folder per job.
const JOBS: &str = "jobs";

/// The folders a job's artifacts are kept in, the same under `DATA_DIR` and in a bucket
/// (`store::Artifacts` names the files in them). Defined here, the lower layer, so that the
/// bucket knows its keys without naming the store.
pub const AUDIO_DIR: &str = "files";
pub const TRANSCRIPTS_DIR: &str = "transcripts";
pub const SUMMARIES_DIR: &str = "summaries";

/// Bytes buffered per part of a multipart upload: S3's minimum part size (every part but the
/// last must be at least 5 MiB).
const PART_BYTES: usize = 5 * 1024 * 1024;

/// Parts being sent before [`Upload::write`] waits: `wait_for_capacity(n)` waits until fewer
/// than n are in progress, so with 1 a part is sent before the next one fills, and a
/// streaming upload holds about one part (5 MiB) whatever the size of the recording. Two
/// (a part sent while the next fills) measured no faster against the test server and grew the
/// RSS more (docs/benchmarks.md).
const PARTS_IN_FLIGHT: usize = 1;

/// A failure of the object store, worded for a job's log or an error page (never a credential:
/// `object_store` does not put them in its messages).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the object store ({shown}) failed: {message}")]
pub struct StorageError {
    shown: String,
    message: String,
}

/// The body of an object, or of a range of it, as it arrives.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// A bucket and key prefix on an S3-compatible server.
#[derive(Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    /// `<prefix>/jobs`, or `jobs` without a prefix.
    jobs: Path,
    shown: String,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Bucket {
    /// A client for `url`. Nothing is sent yet: an unreachable server shows at the first use
    /// (and in `/api/health`), so the app still starts and says what is wrong.
    pub fn connect(url: &StorageUrl) -> Result<Self, StorageError> {
        let shown = url.shown();
        let mut options = ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(60));
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&url.bucket)
            .with_region(&url.region)
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(20),
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &url.endpoint {
            options = options.with_allow_http(endpoint.starts_with("http://"));
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        if let (Some(id), Some(secret)) = (&url.access_key_id, &url.secret_access_key) {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret.expose());
        }
        let store = builder
            .with_client_options(options)
            .build()
            .map_err(|error| StorageError {
                shown: shown.clone(),
                message: error.to_string(),
            })?;
        let jobs = if url.prefix.is_empty() {
            Path::from(JOBS)
        } else {
            Path::from(format!("{}/{JOBS}", url.prefix))
        };
        Ok(Self {
            store: Arc::new(store),
            jobs,
            shown,
        })
    }

    /// `s3://bucket/prefix at endpoint`, for logs and errors.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn error(&self, error: impl std::fmt::Display) -> StorageError {
        StorageError {
            shown: self.shown.clone(),
            message: error.to_string(),
        }
    }

    /// The key of a stored relative path (`<dir>/<id>.<rest>`), None for anything else.
    fn key(&self, relative: &str) -> Option<Path> {
        let (dir, name) = relative.split_once('/')?;
        let id = name.split('.').next()?;
        let id = JobId::parse(id).ok()?;
        let known = [AUDIO_DIR, TRANSCRIPTS_DIR, SUMMARIES_DIR];
        if !known.contains(&dir) || name.contains('/') || name.starts_with('.') {
            return None;
        }
        Some(self.job_folder(&id).child(dir).child(name))
    }

    fn job_folder(&self, id: &JobId) -> Path {
        self.jobs.child(id.as_str())
    }

    fn key_of(&self, relative: &str) -> Result<Path, StorageError> {
        self.key(relative)
            .ok_or_else(|| self.error(format!("{relative:?} is not an artifact path")))
    }

    /// A text object; None when it does not exist.
    pub async fn read_text(&self, relative: &str) -> Result<Option<String>, StorageError> {
        let key = self.key_of(relative)?;
        let bytes = match self.store.get(&key).await {
            Ok(result) => result.bytes().await.map_err(|error| self.error(error))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(self.error(error)),
        };
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| self.error(format!("{relative} is not UTF-8 text")))
    }

    /// Writes a whole object in one request: a reader sees the old one or the new one, never
    /// half of it.
    pub async fn write(&self, relative: &str, bytes: Bytes) -> Result<(), StorageError> {
        let key = self.key_of(relative)?;
        self.store
            .put(&key, bytes.into())
            .await
            .map(drop)
            .map_err(|error| self.error(error))
    }

    /// The object's size; None when it does not exist.
    pub async fn size(&self, relative: &str) -> Result<Option<u64>, StorageError> {
        let key = self.key_of(relative)?;
        match self.store.head(&key).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(self.error(error)),
        }
    }

    /// `range` of the object (or all of it), streamed; None when it does not exist.
    pub async fn read(
        &self,
        relative: &str,
        range: Option<Range<u64>>,
    ) -> Result<Option<ByteStream>, StorageError> {
        let key = self.key_of(relative)?;
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        match self.store.get_opts(&key, options).await {
            Ok(result) => {
                let shown = self.shown.clone();
                Ok(Some(
                    result
                        .into_stream()
                        .map_err(move |error| {
                            std::io::Error::other(format!(
                                "the object store ({shown}) failed: {error}"
                            ))
                        })
                        .boxed(),
                ))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(self.error(error)),
        }
    }

    /// Starts a multipart upload to `relative`; nothing is visible until [`Upload::finish`].
    pub async fn upload(&self, relative: &str) -> Result<Upload, StorageError> {
        let key = self.key_of(relative)?;
        let upload = self
            .store
            .put_multipart(&key)
            .await
            .map_err(|error| self.error(error))?;
        Ok(Upload {
            writer: WriteMultipart::new_with_chunk_size(upload, PART_BYTES),
            bucket: self.clone(),
            bytes: 0,
        })
    }

    /// Uploads a local file (streamed, in parts) to `relative`; returns its size.
    pub async fn upload_file(&self, path: &FsPath, relative: &str) -> Result<u64, StorageError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|error| self.error(format!("could not read {}: {error}", path.display())))?;
        let mut upload = self.upload(relative).await?;
        let mut chunks = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(chunk) => {
                    if let Err(error) = upload.write(chunk).await {
                        upload.abort().await;
                        return Err(error);
                    }
                }
                Err(error) => {
                    upload.abort().await;
                    return Err(self.error(format!("could not read {}: {error}", path.display())));
                }
            }
        }
        upload.finish().await
    }

    /// Copies the object into a new local file; false when the object does not exist.
    pub async fn download_file(&self, relative: &str, path: &FsPath) -> Result<bool, StorageError> {
        use tokio::io::AsyncWriteExt;
        let Some(mut body) = self.read(relative, None).await? else {
            return Ok(false);
        };
        let written = async {
            // Created before any await: a `tokio::fs::File::create` cancelled in flight (the
            // job deleted meanwhile) still makes the file on a blocking thread, after the
            // caller's guard removed it, and it would stay behind.
            let mut file = tokio::fs::File::from_std(std::fs::File::create(path)?);
            while let Some(chunk) = body.next().await {
                file.write_all(&chunk?).await?;
            }
            file.flush().await
        }
        .await;
        written
            .map(|()| true)
            .map_err(|error| self.error(format!("could not copy {relative}: {error}")))
    }

    /// Removes the objects at `relatives` (those already gone count as removed).
    pub async fn remove(&self, relatives: &[String]) -> Result<(), StorageError> {
        for relative in relatives {
            let Some(key) = self.key(relative) else {
                continue;
            };
            match self.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(self.error(error)),
            }
        }
        Ok(())
    }

    /// Every object of the job: `(relative path, size)`.
    pub async fn list_job(&self, id: &JobId) -> Result<Vec<(String, u64)>, StorageError> {
        let folder = self.job_folder(id);
        let found = self.list_under(&folder).await?;
        Ok(found
            .into_iter()
            .filter_map(|meta| {
                let relative: Vec<_> = meta.location.prefix_match(&folder)?.collect();
                let relative = relative
                    .iter()
                    .map(|part| part.as_ref())
                    .collect::<Vec<_>>()
                    .join("/");
                Some((relative, meta.size))
            })
            .collect())
    }

    /// Every object under the prefix: `(relative path, size)` (diagnostics and tests; a
    /// listing of the whole bucket prefix).
    pub async fn list_all(&self) -> Result<Vec<(String, u64)>, StorageError> {
        let found = self.list_under(&self.jobs).await?;
        Ok(found
            .into_iter()
            .filter_map(|meta| {
                // `<id>/<dir>/<name>` under the jobs folder: the relative path is the last two.
                let parts: Vec<String> = meta
                    .location
                    .prefix_match(&self.jobs)?
                    .map(|part| part.as_ref().to_string())
                    .collect();
                match parts.as_slice() {
                    [_, dir, name] => Some((format!("{dir}/{name}"), meta.size)),
                    _ => None,
                }
            })
            .collect())
    }

    /// Removes every object of the job; returns how many went.
    pub async fn remove_job(&self, id: &JobId) -> Result<usize, StorageError> {
        let folder = self.job_folder(id);
        let keys = self.list_under(&folder).await?;
        self.delete_keys(keys.into_iter().map(|meta| meta.location).collect())
            .await
    }

    /// Every object under `folder`, at any depth.
    async fn list_under(
        &self,
        folder: &Path,
    ) -> Result<Vec<object_store::ObjectMeta>, StorageError> {
        self.store
            .list(Some(folder))
            .try_collect()
            .await
            .map_err(|error| self.error(error))
    }

    async fn delete_keys(&self, keys: Vec<Path>) -> Result<usize, StorageError> {
        let count = keys.len();
        let results: Vec<_> = self
            .store
            .delete_stream(futures_util::stream::iter(keys.into_iter().map(Ok)).boxed())
            .collect()
            .await;
        for result in results {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(self.error(error)),
            }
        }
        Ok(count)
    }

    /// Removes the job's kept answers for parts of split audio (`transcripts/<id>.part-N.json`).
    pub async fn remove_transcript_parts(&self, id: &JobId) -> Result<(), StorageError> {
        let prefix = format!("{TRANSCRIPTS_DIR}/{id}.part-");
        let parts: Vec<String> = self
            .list_job(id)
            .await?
            .into_iter()
            .map(|(relative, _)| relative)
            .filter(|relative| relative.starts_with(&prefix))
            .collect();
        self.remove(&parts).await
    }

    /// Removes the folders of jobs for which `exists` says no, when nothing in them was written
    /// in the last `grace` (a job being created on another replica uploads its audio before
    /// its row is committed). Returns how many objects went.
    pub async fn sweep_orphans<F, Fut>(
        &self,
        grace: Duration,
        exists: F,
    ) -> Result<usize, StorageError>
    where
        F: Fn(JobId) -> Fut,
        Fut: std::future::Future<Output = Result<bool, String>>,
    {
        let listed = self
            .store
            .list_with_delimiter(Some(&self.jobs))
            .await
            .map_err(|error| self.error(error))?;
        let cutoff = chrono::Utc::now()
            - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::zero());
        let mut removed = 0;
        for folder in listed.common_prefixes {
            let Some(name) = folder.filename() else {
                continue;
            };
            let Ok(id) = JobId::parse(name) else {
                continue;
            };
            match exists(id.clone()).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(message) => return Err(self.error(message)),
            }
            let objects = self.list_under(&folder).await?;
            if objects.iter().any(|meta| meta.last_modified > cutoff) {
                continue;
            }
            removed += self
                .delete_keys(objects.into_iter().map(|meta| meta.location).collect())
                .await?;
        }
        Ok(removed)
    }
}

/// A multipart upload in progress. [`Upload::write`] waits while [`PARTS_IN_FLIGHT`] parts are
/// being sent, so a stream of any length holds about one part.
pub struct Upload {
    writer: WriteMultipart,
    bucket: Bucket,
    bytes: u64,
}

impl Upload {
    /// Adds `chunk`, waiting while the parts in flight are at their bound.
    ///
    /// The bytes are copied into the part being filled rather than kept by reference: a chunk
    /// from the HTTP client is a slice of its read buffer, and holding five megabytes of such
    /// slices would keep every buffer they came from alive (the first measurement, keeping
    /// them, grew the RSS by 39.5 MiB during a 1 GiB download; copied, see
    /// docs/benchmarks.md). One copy of each byte costs little beside the network.
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), StorageError> {
        self.writer
            .wait_for_capacity(PARTS_IN_FLIGHT)
            .await
            .map_err(|error| self.bucket.error(error))?;
        self.bytes += chunk.len() as u64;
        self.writer.write(&chunk);
        Ok(())
    }

    /// Sends the rest and makes the object visible; returns its size.
    pub async fn finish(self) -> Result<u64, StorageError> {
        let bucket = self.bucket;
        let bytes = self.bytes;
        self.writer
            .finish()
            .await
            .map(|_| bytes)
            .map_err(|error| bucket.error(error))
    }

    /// Gives the upload up, asking the server to drop the parts it has (best effort: a
    /// bucket lifecycle rule removes what an unreachable server kept, see docs/scaling.md).
    pub async fn abort(self) {
        let bucket = self.bucket.shown.clone();
        if let Err(error) = self.writer.abort().await {
            tracing::warn!(%bucket, %error, "could not abort a multipart upload");
        }
    }
}
