//! Static files, embedded in the binary so `cargo run` and the container (which holds only the
//! binary) serve the same bytes.
//!
//! Pages link each file with its content hash (`/static/app.css?v=…`): such a URL never changes
//! meaning, so it is cached for a year; a request without the current hash is cached briefly and
//! revalidated with its ETag.
//!
//! Text files are also served compressed (zstd, brotli or gzip, as the client accepts), each
//! compressed once at its best level on first use and kept; every encoding has its own ETag
//! (`"<hash>-br"`), as representations of one resource must, and answers `Vary:
//! Accept-Encoding`.

use std::sync::{LazyLock, OnceLock};

use axum::extract::{Path, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::web::middleware::compression::{Encoding, negotiate};

struct Asset {
    path: &'static str,
    bytes: &'static [u8],
}

const FILES: &[Asset] = &[
    Asset {
        path: "app.css",
        bytes: include_bytes!("../../static/app.css"),
    },
    Asset {
        path: "app.js",
        bytes: include_bytes!("../../static/app.js"),
    },
    Asset {
        path: "favicon.svg",
        bytes: include_bytes!("../../static/favicon.svg"),
    },
    Asset {
        path: "manifest.webmanifest",
        bytes: include_bytes!("../../static/manifest.webmanifest"),
    },
    Asset {
        path: "sw.js",
        bytes: include_bytes!("../../static/sw.js"),
    },
    Asset {
        path: "icon-192.png",
        bytes: include_bytes!("../../static/icon-192.png"),
    },
    Asset {
        path: "icon-512.png",
        bytes: include_bytes!("../../static/icon-512.png"),
    },
    Asset {
        path: "icon-maskable-512.png",
        bytes: include_bytes!("../../static/icon-maskable-512.png"),
    },
    Asset {
        path: "vendor/htmx/htmx.min.js",
        bytes: include_bytes!("../../static/vendor/htmx/htmx.min.js"),
    },
    Asset {
        path: "vendor/htmx/LICENSE",
        bytes: include_bytes!("../../static/vendor/htmx/LICENSE"),
    },
    Asset {
        path: "vendor/htmx/VERSION",
        bytes: include_bytes!("../../static/vendor/htmx/VERSION"),
    },
];

/// The service worker (see static/sw.js).
pub const SERVICE_WORKER: &str = "sw.js";

const LONG_CACHE: &str = "public, max-age=31536000, immutable";
const SHORT_CACHE: &str = "public, max-age=300, must-revalidate";

/// FNV-1a, 64 bits: enough to tell versions of a handful of files apart.
fn content_hash(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

static HASHES: LazyLock<Vec<String>> =
    LazyLock::new(|| FILES.iter().map(|file| content_hash(file.bytes)).collect());

/// Each file's compressed forms, in [`Encoding::ALL`]'s order, made on first use. None where
/// compressing does not pay (images already compressed, tiny files).
type Variants = [OnceLock<Option<Vec<u8>>>; 3];

static COMPRESSED: LazyLock<Vec<Variants>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|_| std::array::from_fn(|_| OnceLock::new()))
        .collect()
});

fn find(path: &str) -> Option<(usize, &'static Asset, &'static str)> {
    FILES
        .iter()
        .zip(HASHES.iter())
        .enumerate()
        .find(|(_, (file, _))| file.path == path)
        .map(|(index, (file, hash))| (index, file, hash.as_str()))
}

/// Whether a file is text, which compresses well.
fn compressible(path: &str) -> bool {
    let content_type = content_type(path);
    content_type.starts_with("text/")
        || content_type.contains("javascript")
        || content_type.contains("svg")
}

/// The file compressed with `encoding`, if that pays; made once.
fn compressed(index: usize, file: &Asset, encoding: Encoding) -> Option<&'static [u8]> {
    let slot = Encoding::ALL.iter().position(|e| *e == encoding)?;
    COMPRESSED.get(index)?[slot]
        .get_or_init(|| {
            if !compressible(file.path) || file.bytes.len() < 256 {
                return None;
            }
            encoding
                .compress_best(file.bytes)
                .ok()
                .filter(|bytes| bytes.len() < file.bytes.len())
        })
        .as_deref()
}

/// The URL pages use for a static file: with its content hash, so it may be cached for long.
pub fn url(path: &str) -> String {
    match find(path) {
        Some((_, _, hash)) => format!("/static/{path}?v={hash}"),
        None => format!("/static/{path}"),
    }
}

/// The type from the file name; text gets its charset, and the licence and version notes
/// (no extension) are plain text.
fn content_type(path: &str) -> String {
    if !path.rsplit('/').next().unwrap_or(path).contains('.') {
        return "text/plain; charset=utf-8".into();
    }
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let essence = mime.essence_str();
    let textual = mime.type_() == mime_guess::mime::TEXT
        || matches!(essence, "application/javascript" | "image/svg+xml");
    if textual {
        format!("{essence}; charset=utf-8")
    } else {
        essence.to_string()
    }
}

/// `GET /static/{*path}`.
pub async fn serve(Path(path): Path<String>, request: Request) -> Response {
    let Some((index, file, hash)) = find(&path) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, "no-store")],
            "no such file",
        )
            .into_response();
    };
    let versioned = request
        .uri()
        .query()
        .is_some_and(|query| query.split('&').any(|pair| pair == format!("v={hash}")));
    let cache = if versioned { LONG_CACHE } else { SHORT_CACHE };
    let content_type = content_type(file.path);
    // Compressing the first time takes a moment (brotli at its best level): off the runtime.
    let encoding = match negotiate(request.headers(), &Encoding::ALL) {
        Some(encoding) if compressible(file.path) => tokio::task::spawn_blocking(move || {
            compressed(index, file, encoding).map(|b| (encoding, b))
        })
        .await
        .ok()
        .flatten(),
        _ => None,
    };
    let etag = match encoding {
        Some((encoding, _)) => format!("\"{hash}-{}\"", encoding.token()),
        None => format!("\"{hash}\""),
    };
    let not_modified = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match encoding {
            Some((_, bytes)) => bytes.into_response(),
            None => file.bytes.into_response(),
        }
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if let Some((encoding, _)) = encoding {
        headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(encoding.token()),
        );
    }
    if compressible(file.path) {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if file.path == SERVICE_WORKER {
        // Served from /static/ but in charge of the whole site (the pages register it so).
        headers.insert(
            HeaderName::from_static("service-worker-allowed"),
            HeaderValue::from_static("/"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_the_content_hash() {
        let css = url("app.css");
        assert!(css.starts_with("/static/app.css?v="), "{css}");
        assert_eq!(css.len(), "/static/app.css?v=".len() + 16);
        assert_eq!(url("nope.css"), "/static/nope.css");
        assert_ne!(content_hash(b"a"), content_hash(b"b"));
        assert_eq!(content_type("app.css"), "text/css; charset=utf-8");
        assert!(content_type("app.js").ends_with("javascript; charset=utf-8"));
        assert_eq!(
            content_type("vendor/htmx/LICENSE"),
            "text/plain; charset=utf-8"
        );
    }

    /// Every block of the stylesheet closes, and no rule opens inside a declaration block: a
    /// lost `}` makes browsers ignore everything after it (a merge once dropped one, and the
    /// add form and the search lost their styles without any other test noticing).
    #[test]
    fn the_stylesheet_is_well_formed() {
        let css = std::str::from_utf8(include_bytes!("../../static/app.css")).unwrap();
        let mut depth = 0usize;
        let mut in_comment = false;
        let mut in_string: Option<char> = None;
        // Whether each open block is an at-rule (which holds rules) or a rule (declarations).
        let mut blocks: Vec<bool> = Vec::new();
        let mut prelude = String::new();
        let mut chars = css.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            // Worked out only for a message (the argument of a failed assertion).
            let line = || css[..at].lines().count().max(1);
            if in_comment {
                if c == '*' && chars.peek().map(|&(_, n)| n) == Some('/') {
                    chars.next();
                    in_comment = false;
                }
                continue;
            }
            if let Some(quote) = in_string {
                if c == '\\' {
                    chars.next();
                } else if c == quote {
                    in_string = None;
                }
                continue;
            }
            match c {
                '/' if chars.peek().map(|&(_, n)| n) == Some('*') => {
                    chars.next();
                    in_comment = true;
                }
                '"' | '\'' => in_string = Some(c),
                '{' => {
                    let inside_rule = blocks.last() == Some(&false);
                    assert!(!inside_rule, "line {}: a block opens inside a rule", line());
                    blocks.push(prelude.trim_start().starts_with('@'));
                    depth += 1;
                    prelude.clear();
                }
                '}' => {
                    assert!(depth > 0, "line {}: a `}}` closes nothing", line());
                    blocks.pop();
                    depth -= 1;
                    prelude.clear();
                }
                ';' => prelude.clear(),
                other => prelude.push(other),
            }
        }
        assert!(!in_comment, "a comment never ends");
        assert_eq!(depth, 0, "{depth} block(s) never closed");
    }
}
