//! The download stage: the audio streams to a temporary file under `files/`, which is renamed
//! into place once whole. Memory does not grow with the file; the size limit holds while
//! streaming; progress is recorded about once a second.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use url::Url;

use super::{StageContext, StageResult};
use crate::jobs::{ErrorKind, Job, Progress};
use crate::net::describe_error;
use crate::net::guard::AudioUrl;
use crate::net::retry::{ProviderError, with_retry};
use crate::store::Changes;

const AUDIO_VIDEO_EXTENSIONS: &[&str] = &[
    "mp3", "m4a", "wav", "ogg", "oga", "opus", "webm", "mp4", "m4v", "mov", "aac", "flac", "wma",
    "amr", "3gp", "mkv", "mpga", "mpeg",
];

/// `url` is the audio to fetch, checked by the guard; every address a host name resolves to is
/// checked again when connecting (the `user` client's resolver).
pub async fn run(context: &StageContext, job: &Job, url: &AudioUrl) -> StageResult<()> {
    context
        .log(format!("Downloading audio from {}", redacted(url.as_url())))
        .await;
    let relative = with_retry(
        &context.config.retry,
        || attempt(context, job, url),
        |message| context.retrying("download", message),
    )
    .await?;
    context
        .update(
            Changes::new()
                .file_path(Some(relative.clone()))
                .progress(None),
        )
        .await?;
    Ok(())
}

/// The URL as safe to log: without credentials and without its query (which often carries a
/// signature).
fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    if shown.query().is_some() {
        shown.set_query(Some("…"));
    }
    shown.to_string()
}

/// Whether the answer is audio or video we can transcribe.
pub fn accepts(content_type: Option<&str>, url: &Url) -> bool {
    is_audio_or_video(content_type, url_file_name(url).as_deref(), true)
}

/// Whether a file (downloaded, or uploaded under `file_name`) is audio or video: by its media
/// type, or by a known audio/video extension. `application/octet-stream` counts only when
/// `trust_octet_stream` (servers send it for audio; browsers send it for anything unknown).
pub fn is_audio_or_video(
    content_type: Option<&str>,
    file_name: Option<&str>,
    trust_octet_stream: bool,
) -> bool {
    let media = media_type(content_type);
    media.starts_with("audio/")
        || media.starts_with("video/")
        || (trust_octet_stream && media == "application/octet-stream")
        || file_name.and_then(name_extension).is_some()
}

/// The media type without parameters, lowercase; empty when there is none.
pub fn media_type(content_type: Option<&str>) -> String {
    content_type
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

fn url_file_name(url: &Url) -> Option<String> {
    url.path_segments()?.next_back().map(str::to_string)
}

/// The extension of a file name, if it is a known audio or video one.
fn name_extension(name: &str) -> Option<String> {
    let name = name.to_ascii_lowercase();
    let (_, extension) = name.rsplit_once('.')?;
    AUDIO_VIDEO_EXTENSIONS
        .contains(&extension)
        .then(|| extension.to_string())
}

/// The file extension to store the audio under: the path's, else one for the media type.
pub fn extension_for(content_type: Option<&str>, url: &Url) -> String {
    extension_for_name(content_type, url_file_name(url).as_deref())
}

/// The file extension to store audio under: the name's, else one for the media type.
pub fn extension_for_name(content_type: Option<&str>, file_name: Option<&str>) -> String {
    if let Some(extension) = file_name.and_then(name_extension) {
        return extension;
    }
    let media = media_type(content_type);
    let preferred = match media.as_str() {
        "audio/mpeg" | "audio/mp3" => Some("mp3"),
        "audio/mp4" | "audio/x-m4a" | "audio/m4a" | "audio/aac-mp4" => Some("m4a"),
        "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => Some("wav"),
        "audio/ogg" => Some("ogg"),
        "audio/opus" => Some("opus"),
        "audio/webm" | "video/webm" => Some("webm"),
        "audio/flac" | "audio/x-flac" => Some("flac"),
        "audio/aac" => Some("aac"),
        "video/mp4" => Some("mp4"),
        "video/quicktime" => Some("mov"),
        _ => None,
    };
    preferred
        .map(str::to_string)
        .or_else(|| {
            mime_guess::get_mime_extensions_str(&media)
                .and_then(|extensions| extensions.first())
                .map(|extension| extension.to_string())
        })
        .unwrap_or_else(|| "bin".into())
}

/// Asks for the audio; an answer other than a success is the attempt's error.
async fn request(context: &StageContext, url: &Url) -> Result<reqwest::Response, ProviderError> {
    let response = context
        .clients
        .user
        .get(url.clone())
        .send()
        .await
        .map_err(|error| ProviderError::from_reqwest("the download failed", &error))?;
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let error =
        ProviderError::from_response("the audio URL could not be downloaded", response).await;
    // The link's host is not a provider with a key: a refusal means the link is wrong.
    Err(match status {
        404 | 410 => error.with_kind(ErrorKind::LinkNotFound),
        401 | 403 => error.with_kind(ErrorKind::DownloadFailed),
        _ => error,
    })
}

/// Refuses an answer that is not audio (by its type, or the name of the first or the final
/// URL) or that says it is larger than `max`, before a byte of it is stored.
fn check_answer(
    content_type: Option<&str>,
    final_url: &Url,
    url: &Url,
    total: Option<u64>,
    max: u64,
) -> Result<(), ProviderError> {
    if !accepts(content_type, final_url) && !accepts(content_type, url) {
        let got = content_type.unwrap_or("no Content-Type");
        let got = got.split(';').next().unwrap_or(got).trim();
        return Err(
            ProviderError::permanent(format!("the URL did not serve audio (got {got})"))
                .with_kind(ErrorKind::NotAudio),
        );
    }
    if let Some(length) = total
        && length > max
    {
        return Err(ProviderError::permanent(too_large(length, max)).with_kind(ErrorKind::TooLarge));
    }
    Ok(())
}

async fn attempt(
    context: &StageContext,
    job: &Job,
    audio: &AudioUrl,
) -> Result<String, ProviderError> {
    let url = audio.as_url();
    let max = context.config.max_download_bytes;
    let mut response = request(context, url).await?;
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    // The final URL after redirects names the file better than the first.
    let final_url = response.url().clone();
    let total = response.content_length();
    check_answer(content_type.as_deref(), &final_url, url, total, max)?;
    let extension = {
        let from_final = extension_for(content_type.as_deref(), &final_url);
        if from_final == "bin" {
            extension_for(content_type.as_deref(), url)
        } else {
            from_final
        }
    };
    let artifacts = context.store.artifacts();
    let relative = artifacts.audio_relative(&job.id, &extension);
    if let Some(bucket) = artifacts.bucket() {
        let bytes = stream_to_bucket(context, &mut response, bucket, &relative, total, max).await?;
        context
            .log(format!(
                "Downloaded {} ({}) to the object store",
                human_bytes(bytes),
                content_type.as_deref().unwrap_or("unknown type")
            ))
            .await;
        return Ok(relative);
    }
    let part = artifacts
        .part_file(&job.id, &relative)
        .ok_or_else(|| ProviderError::permanent("unsafe audio path"))?;
    let bytes = stream_to(context, &mut response, part.path(), total, max).await?;
    artifacts
        .place_part(part, &relative)
        .await
        .map_err(|error| ProviderError::permanent(format!("could not store the audio: {error}")))?;
    context
        .log(format!(
            "Downloaded {} ({})",
            human_bytes(bytes),
            content_type.as_deref().unwrap_or("unknown type")
        ))
        .await;
    Ok(relative)
}

/// Chunks of the download that may wait for the disk at once. A chunk is what hyper read from
/// the socket (at most a few hundred KB), so this bounds the memory the download uses while
/// letting the network and the disk work at the same time.
const CHUNKS_IN_FLIGHT: usize = 16;

/// Streams the body into `temp`: this task reads from the network while a blocking thread
/// writes what arrived (no copy into another buffer, and the network never waits for a write
/// unless the disk falls [`CHUNKS_IN_FLIGHT`] chunks behind), then syncs the file.
async fn stream_to(
    context: &StageContext,
    response: &mut reqwest::Response,
    temp: &Path,
    total: Option<u64>,
    max: u64,
) -> Result<u64, ProviderError> {
    let (chunks, mut incoming) = tokio::sync::mpsc::channel::<bytes::Bytes>(CHUNKS_IN_FLIGHT);
    let abandoned = Arc::new(AtomicBool::new(false));
    // Created here, not on the writer's thread: a job deleted while that thread had not yet
    // run would have its part file made after the part file's guard removed it.
    let mut file = std::fs::File::create(temp)
        .map_err(|error| ProviderError::permanent(format!("could not store the audio: {error}")))?;
    let writer = {
        let abandoned = abandoned.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            while let Some(chunk) = incoming.blocking_recv() {
                file.write_all(&chunk)?;
            }
            if abandoned.load(Ordering::Acquire) {
                return Ok(());
            }
            // Durable before it is renamed into place and the checkpoint is recorded.
            file.sync_all()
        })
    };
    let streamed = receive(context, response, &chunks, total, max).await;
    if streamed.is_err() {
        abandoned.store(true, Ordering::Release);
    }
    drop(chunks);
    let stored = writer
        .await
        .map_err(|error| ProviderError::permanent(format!("could not store the audio: {error}")))
        .and_then(|result| {
            result.map_err(|error| {
                ProviderError::permanent(format!("could not store the audio: {error}"))
            })
        });
    let written = streamed?;
    stored?;
    if let Some(total) = total
        && written < total
    {
        return Err(ProviderError::transient(format!(
            "the download ended early ({written} of {total} bytes)"
        )));
    }
    if written == 0 {
        return Err(ProviderError::permanent("the URL served an empty file"));
    }
    Ok(written)
}

/// Streams the body into a multipart upload to the bucket: this task reads from the network
/// while [`crate::storage::Upload`] sends parts of 5 MiB one at a time, so memory stays about
/// one part whatever the size. The object appears only once the whole body arrived; any
/// failure aborts the upload.
async fn stream_to_bucket(
    context: &StageContext,
    response: &mut reqwest::Response,
    bucket: &crate::storage::Bucket,
    relative: &str,
    total: Option<u64>,
    max: u64,
) -> Result<u64, ProviderError> {
    let store_error = |error: crate::storage::StorageError| {
        ProviderError::transient(format!("could not store the audio: {error}"))
    };
    let mut upload = bucket.upload(relative).await.map_err(store_error)?;
    let (chunks, mut incoming) = tokio::sync::mpsc::channel::<bytes::Bytes>(CHUNKS_IN_FLIGHT);
    let writer = async move {
        while let Some(chunk) = incoming.recv().await {
            if let Err(error) = upload.write(chunk).await {
                // Dropping the receiver stops the download; the upload goes away.
                drop(incoming);
                upload.abort().await;
                return Err(error);
            }
        }
        Ok(upload)
    };
    let reader = async {
        let streamed = receive(context, response, &chunks, total, max).await;
        drop(chunks);
        streamed
    };
    let (streamed, upload) = tokio::join!(reader, writer);
    let upload = upload.map_err(store_error)?;
    let written = match streamed {
        Ok(written) => written,
        Err(error) => {
            upload.abort().await;
            return Err(error);
        }
    };
    let short = total.is_some_and(|total| written < total);
    if short || written == 0 {
        upload.abort().await;
        if let Some(total) = total
            && short
        {
            return Err(ProviderError::transient(format!(
                "the download ended early ({written} of {total} bytes)"
            )));
        }
        return Err(ProviderError::permanent("the URL served an empty file"));
    }
    upload.finish().await.map_err(store_error)
}

/// Reads the body chunk by chunk and hands each to the writer, holding the size limit and
/// recording progress about once a second. Returns the bytes received.
async fn receive(
    context: &StageContext,
    response: &mut reqwest::Response,
    chunks: &tokio::sync::mpsc::Sender<bytes::Bytes>,
    total: Option<u64>,
    max: u64,
) -> Result<u64, ProviderError> {
    let mut written: u64 = 0;
    let mut last_report = Instant::now();
    context
        .update(Changes::new().progress(Some(Progress::new(0, total))))
        .await
        .map_err(|error| ProviderError::permanent(error.to_string()))?;
    while let Some(chunk) = response.chunk().await.map_err(|error| {
        ProviderError::transient(format!(
            "the download broke off: {}",
            describe_error(&error)
        ))
    })? {
        written += chunk.len() as u64;
        if written > max {
            return Err(
                ProviderError::permanent(too_large(written, max)).with_kind(ErrorKind::TooLarge)
            );
        }
        if chunks.send(chunk).await.is_err() {
            // The writer stopped: its error says why.
            return Ok(written);
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            // Progress is best effort; a failure here must not stop the download.
            let _ = context
                .update(Changes::new().progress(Some(Progress::new(written, total))))
                .await;
        }
    }
    Ok(written)
}

pub fn too_large(bytes: u64, max: u64) -> String {
    format!(
        "the audio is larger than the largest recording this server takes ({}); got at least {}",
        human_bytes(max),
        human_bytes(bytes)
    )
}

/// `900 B`, `64.0 KB`, `1.0 GB`: 1024 to a KB. The only way sizes are written, in pages, job
/// logs and errors alike (app.js's `size` writes them the same way).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
