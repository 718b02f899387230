//! Audio from a bucket with HTTP Range support: the player seeks with `Range: bytes=a-b`, and
//! each request becomes one ranged GET to the object store, streamed through (never the whole
//! recording in memory). Local files keep tower-http's `ServeFile`, which does the same on disk.

use std::ops::Range;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::storage::{Bucket, StorageError};

/// What a `Range` header asks of an object of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Wanted {
    /// No usable Range (absent, several ranges, or not `bytes=`): the whole object, 200.
    Whole,
    /// One satisfiable range, 206.
    Part(Range<u64>),
    /// A range that starts past the end, 416.
    Unsatisfiable,
}

/// Reads one `bytes=` range (`a-b`, `a-`, `-n`) against `size`. Anything else is ignored, as
/// RFC 9110 allows, and the whole object is served.
pub fn wanted(header: Option<&str>, size: u64) -> Wanted {
    let Some(spec) = header.and_then(|value| value.trim().strip_prefix("bytes=")) else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let (start, end) = (start.trim(), end.trim());
    let parse = |text: &str| text.parse::<u64>().ok();
    match (start.is_empty(), end.is_empty()) {
        // `-n`: the last n bytes.
        (true, false) => match parse(end) {
            Some(0) => Wanted::Unsatisfiable,
            Some(n) if size > 0 => Wanted::Part(size.saturating_sub(n)..size),
            Some(_) => Wanted::Unsatisfiable,
            None => Wanted::Whole,
        },
        (false, _) => {
            let Some(first) = parse(start) else {
                return Wanted::Whole;
            };
            let last = if end.is_empty() {
                Some(size.saturating_sub(1))
            } else {
                parse(end)
            };
            match last {
                None => Wanted::Whole,
                Some(_) if first >= size => Wanted::Unsatisfiable,
                Some(last) if last < first => Wanted::Whole,
                Some(last) => Wanted::Part(first..last.min(size - 1) + 1),
            }
        }
        (true, true) => Wanted::Whole,
    }
}

/// The answer to a GET of the audio at `relative`; None when the object does not exist.
pub async fn serve(
    bucket: &Bucket,
    relative: &str,
    headers: &HeaderMap,
) -> Result<Option<Response>, StorageError> {
    let Some(size) = bucket.size(relative).await? else {
        return Ok(None);
    };
    let range = headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok());
    let mime = mime_guess::from_path(relative).first_or_octet_stream();
    let mut builder = Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "private, no-cache");
    let (status, part) = match wanted(range, size) {
        Wanted::Unsatisfiable => {
            let response = builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                .body(Body::empty())
                .unwrap_or_default();
            return Ok(Some(response));
        }
        Wanted::Whole => (StatusCode::OK, 0..size),
        Wanted::Part(part) => {
            builder = builder.header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", part.start, part.end - 1),
            );
            (StatusCode::PARTIAL_CONTENT, part)
        }
    };
    let length = part.end - part.start;
    let body = if length == 0 {
        Body::empty()
    } else {
        match bucket.read(relative, Some(part)).await? {
            Some(stream) => Body::from_stream(stream),
            None => return Ok(None),
        }
    };
    let response = builder
        .status(status)
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_str(mime.as_ref())
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
        )
        .header(header::CONTENT_LENGTH, length)
        .body(body)
        .unwrap_or_default();
    Ok(Some(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ranges_players_send() {
        assert_eq!(wanted(None, 100), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=0-"), 100), Wanted::Part(0..100));
        assert_eq!(wanted(Some("bytes=10-19"), 100), Wanted::Part(10..20));
        assert_eq!(wanted(Some("bytes=90-500"), 100), Wanted::Part(90..100));
        assert_eq!(wanted(Some("bytes=-10"), 100), Wanted::Part(90..100));
        assert_eq!(wanted(Some("bytes=-500"), 100), Wanted::Part(0..100));
        assert_eq!(wanted(Some("bytes=100-"), 100), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=-0"), 100), Wanted::Unsatisfiable);
        // Ignored, as RFC 9110 allows: the whole object.
        assert_eq!(wanted(Some("bytes=0-1,5-6"), 100), Wanted::Whole);
        assert_eq!(wanted(Some("items=0-1"), 100), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=5-1"), 100), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=0-"), 0), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=x-"), 100), Wanted::Whole);
    }
}
