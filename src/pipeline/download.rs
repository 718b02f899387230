//! The download stage: the audio streams to a temporary file under `files/`, which is renamed
//! into place once whole. Memory does not grow with the file; the size limit holds while
//! streaming; progress is recorded about once a second.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use url::Url;

use super::{StageContext, StageError, StageResult};
use crate::jobs::{Job, Progress};
use crate::net::describe_error;
use crate::net::retry::{ProviderError, with_retry};
use crate::store::Changes;

const AUDIO_VIDEO_EXTENSIONS: &[&str] = &[
    "mp3", "m4a", "wav", "ogg", "oga", "opus", "webm", "mp4", "m4v", "mov", "aac", "flac", "wma",
    "amr", "3gp", "mkv", "mpga", "mpeg",
];

pub async fn run(context: &StageContext, job: &Job) -> StageResult<()> {
    let source = job.resolved_url.clone().unwrap_or_else(|| job.url.clone());
    let url = Url::parse(&source)
        .map_err(|error| StageError::failed(format!("the audio URL is not valid: {error}")))?;
    context
        .clients
        .policy
        .check_url(&url)
        .map_err(|refusal| StageError::failed(refusal.to_string()))?;

    context
        .log(format!("Downloading audio from {}", redacted(&url)))
        .await;
    let relative = with_retry(
        &context.config.retry,
        || attempt(context, job, &url),
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
    let media = content_type
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    media.starts_with("audio/")
        || media.starts_with("video/")
        || media == "application/octet-stream"
        || path_extension(url).is_some()
}

fn path_extension(url: &Url) -> Option<String> {
    let name = url.path_segments()?.next_back()?.to_ascii_lowercase();
    let (_, extension) = name.rsplit_once('.')?;
    AUDIO_VIDEO_EXTENSIONS
        .contains(&extension)
        .then(|| extension.to_string())
}

/// The file extension to store the audio under: the path's, else one for the media type.
pub fn extension_for(content_type: Option<&str>, url: &Url) -> String {
    if let Some(extension) = path_extension(url) {
        return extension;
    }
    let media = content_type
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default();
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

async fn attempt(context: &StageContext, job: &Job, url: &Url) -> Result<String, ProviderError> {
    let max = context.config.max_download_bytes;
    let mut response = context
        .clients
        .user
        .get(url.clone())
        .send()
        .await
        .map_err(|error| ProviderError::from_reqwest("the download failed", &error))?;
    if !response.status().is_success() {
        return Err(ProviderError::from_response(
            "the audio URL could not be downloaded",
            response,
        )
        .await);
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    // The final URL after redirects names the file better than the first.
    let final_url = response.url().clone();
    if !accepts(content_type.as_deref(), &final_url) && !accepts(content_type.as_deref(), url) {
        let got = content_type.as_deref().unwrap_or("no Content-Type");
        let got = got.split(';').next().unwrap_or(got).trim();
        return Err(ProviderError::permanent(format!(
            "the URL did not serve audio (got {got})"
        )));
    }
    let total = response.content_length();
    if let Some(length) = total
        && length > max
    {
        return Err(ProviderError::permanent(too_large(length, max)));
    }

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
    let destination = artifacts
        .resolve(&relative)
        .ok_or_else(|| ProviderError::permanent("unsafe audio path"))?;
    let temp = destination.with_file_name(format!(
        ".{}.{}.part",
        job.id,
        uuid::Uuid::new_v4().simple()
    ));

    let result = stream_to(context, &mut response, &temp, total, max).await;
    match result {
        Ok(bytes) => {
            tokio::fs::rename(&temp, &destination)
                .await
                .map_err(|error| {
                    ProviderError::permanent(format!("could not store the audio: {error}"))
                })?;
            context
                .log(format!(
                    "Downloaded {} ({})",
                    human_bytes(bytes),
                    content_type.as_deref().unwrap_or("unknown type")
                ))
                .await;
            Ok(relative)
        }
        Err(error) => {
            let _ = tokio::fs::remove_file(&temp).await;
            Err(error)
        }
    }
}

async fn stream_to(
    context: &StageContext,
    response: &mut reqwest::Response,
    temp: &Path,
    total: Option<u64>,
    max: u64,
) -> Result<u64, ProviderError> {
    let mut file = tokio::fs::File::create(temp)
        .await
        .map_err(|error| ProviderError::permanent(format!("could not store the audio: {error}")))?;
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
            return Err(ProviderError::permanent(too_large(written, max)));
        }
        file.write_all(&chunk).await.map_err(|error| {
            ProviderError::permanent(format!("could not store the audio: {error}"))
        })?;
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            // Progress is best effort; a failure here must not stop the download.
            let _ = context
                .update(Changes::new().progress(Some(Progress::new(written, total))))
                .await;
        }
    }
    file.flush()
        .await
        .and(file.sync_all().await)
        .map_err(|error| ProviderError::permanent(format!("could not store the audio: {error}")))?;
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

fn too_large(bytes: u64, max: u64) -> String {
    format!(
        "the audio is larger than the limit of {} (MAX_DOWNLOAD_BYTES); got at least {}",
        human_bytes(max),
        human_bytes(bytes)
    )
}

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
