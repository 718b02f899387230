//! Compression: what the client accepts, and the codecs.
//!
//! Dynamic answers (JSON, HTML) are compressed on the way out by tower-http's layer, at a fast
//! level: they are built for one request. Static assets are compressed once, at the best level,
//! and served with their own ETag per encoding (see [`crate::web::assets`]). Event streams and audio
//! are never compressed: a stream must not wait for a compressor's buffer, and audio is
//! compressed already (and served in ranges).

use std::io::Write;

use axum::http::HeaderMap;
use axum::http::header;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::compression::{CompressionLayer, CompressionLevel};

/// A content coding this server can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Zstd,
    Brotli,
    Gzip,
}

impl Encoding {
    /// In the order this server prefers them: smallest and fastest to decode first.
    pub const ALL: [Encoding; 3] = [Encoding::Zstd, Encoding::Brotli, Encoding::Gzip];

    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Zstd => "zstd",
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }

    /// `bytes` compressed at the codec's best level (for content compressed once).
    pub fn compress_best(self, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Encoding::Zstd => zstd::bulk::compress(bytes, 19),
            Encoding::Brotli => {
                let mut output = Vec::new();
                let params = brotli::enc::BrotliEncoderParams {
                    quality: 11,
                    ..Default::default()
                };
                brotli::BrotliCompress(&mut &bytes[..], &mut output, &params)?;
                Ok(output)
            }
            Encoding::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                encoder.write_all(bytes)?;
                encoder.finish()
            }
        }
    }
}

/// The encoding to send for a request with these headers, of those `available`; None when the
/// client accepts none of them (or sent no `Accept-Encoding`: then it gets what it always got).
pub fn negotiate(headers: &HeaderMap, available: &[Encoding]) -> Option<Encoding> {
    let mut accepted: Vec<(Encoding, u32)> = Vec::new();
    let mut wildcard: Option<u32> = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let token = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|parameter| {
                    let (name, value) = parameter.split_once('=')?;
                    (name.trim() == "q").then(|| quality(value.trim()))
                })
                .next()
                .unwrap_or(1000);
            match token.as_str() {
                "*" => wildcard = Some(quality),
                other => {
                    if let Some(encoding) = Encoding::ALL.into_iter().find(|e| e.token() == other) {
                        accepted.push((encoding, quality));
                    }
                }
            }
        }
    }
    let quality_of = |encoding: Encoding| {
        accepted
            .iter()
            .find(|(accepted, _)| *accepted == encoding)
            .map(|(_, quality)| *quality)
            .or(wildcard)
            .unwrap_or(0)
    };
    Encoding::ALL
        .into_iter()
        .filter(|encoding| available.contains(encoding))
        .filter(|encoding| quality_of(*encoding) > 0)
        // The highest quality wins; among equals, this server's order (ALL) decides.
        .max_by_key(|encoding| {
            let rank = Encoding::ALL
                .iter()
                .position(|e| e == encoding)
                .unwrap_or(0);
            (quality_of(*encoding), usize::MAX - rank)
        })
}

/// `q=0.8` as thousandths (800); anything unreadable counts as 0 (not acceptable).
fn quality(text: &str) -> u32 {
    text.parse::<f32>()
        .ok()
        .filter(|q| (0.0..=1.0).contains(q))
        .map(|q| (q * 1000.0).round() as u32)
        .unwrap_or(0)
}

/// The layer that compresses dynamic answers: gzip, brotli and zstd at a fast level, never an
/// event stream, audio or video, and never an answer that already carries an encoding (the
/// static assets, compressed once).
pub fn layer() -> CompressionLayer<impl Predicate> {
    let predicate = DefaultPredicate::new()
        .and(NotForContentType::const_new("audio/"))
        .and(NotForContentType::const_new("video/"))
        .and(NotForContentType::const_new("application/octet-stream"));
    CompressionLayer::new()
        .quality(CompressionLevel::Fastest)
        .compress_when(predicate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, value.parse().unwrap());
        headers
    }

    #[test]
    fn the_clients_preference_then_ours_decides() {
        let all = &Encoding::ALL;
        assert_eq!(negotiate(&HeaderMap::new(), all), None);
        assert_eq!(
            negotiate(&accept("gzip, deflate, br, zstd"), all),
            Some(Encoding::Zstd)
        );
        assert_eq!(negotiate(&accept("gzip, br"), all), Some(Encoding::Brotli));
        assert_eq!(
            negotiate(&accept("br;q=0.5, gzip;q=0.9"), all),
            Some(Encoding::Gzip)
        );
        assert_eq!(negotiate(&accept("identity"), all), None);
        assert_eq!(negotiate(&accept("br;q=0, gzip;q=0"), all), None);
        assert_eq!(negotiate(&accept("*"), all), Some(Encoding::Zstd));
        assert_eq!(
            negotiate(&accept("*;q=0.1, zstd;q=0"), all),
            Some(Encoding::Brotli)
        );
        assert_eq!(
            negotiate(&accept("zstd"), &[Encoding::Gzip, Encoding::Brotli]),
            None
        );
        assert_eq!(negotiate(&accept("GZIP;Q=1.0"), all), Some(Encoding::Gzip));
    }

    #[test]
    fn every_codec_gives_back_the_same_bytes() {
        use std::io::Read;
        let text = "a stylesheet, a script, a page ".repeat(200);
        let bytes = text.as_bytes();
        for encoding in Encoding::ALL {
            let compressed = encoding.compress_best(bytes).unwrap();
            assert!(compressed.len() < bytes.len() / 5, "{encoding:?}");
            let mut decoded = Vec::new();
            match encoding {
                Encoding::Zstd => {
                    decoded = zstd::bulk::decompress(&compressed, bytes.len()).unwrap();
                }
                Encoding::Brotli => {
                    brotli::Decompressor::new(&compressed[..], 4096)
                        .read_to_end(&mut decoded)
                        .unwrap();
                }
                Encoding::Gzip => {
                    flate2::read::GzDecoder::new(&compressed[..])
                        .read_to_end(&mut decoded)
                        .unwrap();
                }
            }
            assert_eq!(decoded, bytes, "{encoding:?}");
        }
    }
}
