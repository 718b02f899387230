//! Splitting MP3 audio at frame boundaries, so a recording above a provider's upload limit can
//! be sent in parts that each decode on their own.
//!
//! An MPEG audio file is a sequence of frames, each with a 4-byte header (sync word, version,
//! layer, bitrate, sample rate, padding) from which its length and duration follow. A leading
//! ID3v2 tag is skipped; bytes between frames that do not form a header (junk, a trailing ID3v1
//! tag) are passed over by looking for the next header. The file is read through a buffer,
//! never whole.

use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// One frame header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Bytes in the frame, header included.
    pub length: u32,
    pub samples: u32,
    pub sample_rate: u32,
}

impl FrameHeader {
    /// The frame's playing time in nanoseconds.
    pub fn duration_nanos(&self) -> u64 {
        u64::from(self.samples) * 1_000_000_000 / u64::from(self.sample_rate)
    }
}

const BITRATES_V1: [[u32; 15]; 3] = [
    // Layer I
    [
        0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
    ],
    // Layer II
    [
        0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
    ],
    // Layer III
    [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ],
];
const BITRATES_V2: [[u32; 15]; 2] = [
    // Layer I
    [
        0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
    ],
    // Layers II and III
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
];

/// Decodes a frame header; None for anything that is not a valid one (including the
/// free-format bitrate, whose frame length cannot be known from the header).
pub fn parse_header(bytes: [u8; 4]) -> Option<FrameHeader> {
    if bytes[0] != 0xFF || bytes[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = (bytes[1] >> 3) & 0b11; // 0 = 2.5, 1 = reserved, 2 = 2, 3 = 1
    let layer = (bytes[1] >> 1) & 0b11; // 1 = III, 2 = II, 3 = I
    let bitrate_index = usize::from(bytes[2] >> 4);
    let rate_index = usize::from((bytes[2] >> 2) & 0b11);
    let padding = u32::from((bytes[2] >> 1) & 1);
    if version == 1 || layer == 0 || bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
        return None;
    }
    let mpeg1 = version == 3;
    let kbps = if mpeg1 {
        BITRATES_V1[usize::from(3 - layer)][bitrate_index]
    } else if layer == 3 {
        BITRATES_V2[0][bitrate_index]
    } else {
        BITRATES_V2[1][bitrate_index]
    };
    let sample_rate = match version {
        3 => [44_100, 48_000, 32_000][rate_index],
        2 => [22_050, 24_000, 16_000][rate_index],
        _ => [11_025, 12_000, 8_000][rate_index],
    };
    let bitrate = kbps * 1000;
    let (length, samples) = match layer {
        3 => ((12 * bitrate / sample_rate + padding) * 4, 384),
        2 => (144 * bitrate / sample_rate + padding, 1152),
        _ if mpeg1 => (144 * bitrate / sample_rate + padding, 1152),
        _ => (72 * bitrate / sample_rate + padding, 576),
    };
    Some(FrameHeader {
        length,
        samples,
        sample_rate,
    })
}

/// The size of a leading ID3v2 tag (header, body and footer), or 0.
fn id3v2_size(head: &[u8]) -> u64 {
    if head.len() < 10 || &head[..3] != b"ID3" || head[6..10].iter().any(|b| b & 0x80 != 0) {
        return 0;
    }
    let size = head[6..10]
        .iter()
        .fold(0u64, |size, byte| (size << 7) | u64::from(*byte));
    let footer = if head[5] & 0x10 != 0 { 10 } else { 0 };
    10 + size + footer
}

/// A contiguous byte range of whole frames, and how long it plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub offset: u64,
    pub length: u64,
    pub duration_nanos: u64,
}

impl Part {
    pub fn duration_millis(&self) -> u64 {
        self.duration_nanos / 1_000_000
    }
}

/// Plans parts of at most `max_bytes` each, cut between frames. None when the data is not
/// MP3 (too little of it is made of frames) or a single frame exceeds `max_bytes`.
pub fn plan_parts<R: Read + Seek>(reader: R, max_bytes: u64) -> io::Result<Option<Vec<Part>>> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let total = reader.seek(SeekFrom::End(0))?;
    reader.seek(SeekFrom::Start(0))?;
    let mut head = [0u8; 10];
    let read = read_up_to(&mut reader, &mut head)?;
    let mut position = id3v2_size(&head[..read]).min(total);
    reader.seek(SeekFrom::Start(position))?;

    let mut parts: Vec<Part> = Vec::new();
    let mut current: Option<Part> = None;
    let mut frame_bytes: u64 = 0;
    let mut window = [0u8; 4];
    while position + 4 <= total {
        if read_up_to(&mut reader, &mut window)? < 4 {
            break;
        }
        let header = parse_header(window).filter(|h| position + u64::from(h.length) <= total);
        let Some(header) = header else {
            // Not a frame here: look one byte further.
            position += 1;
            reader.seek_relative(-3)?;
            continue;
        };
        let length = u64::from(header.length);
        if length > max_bytes {
            return Ok(None);
        }
        let part = current.get_or_insert(Part {
            offset: position,
            length: 0,
            duration_nanos: 0,
        });
        if position + length - part.offset > max_bytes && part.length > 0 {
            parts.push(*part);
            *part = Part {
                offset: position,
                length: 0,
                duration_nanos: 0,
            };
        }
        part.length = position + length - part.offset;
        part.duration_nanos += header.duration_nanos();
        frame_bytes += length;
        position += length;
        reader.seek_relative(length as i64 - 4)?;
    }
    if let Some(part) = current {
        parts.push(part);
    }
    // Stray sync patterns in other data must not pass as MP3.
    let audio_bytes = total.saturating_sub(id3v2_size(&head[..read]));
    if parts.is_empty() || frame_bytes * 10 < audio_bytes * 9 {
        return Ok(None);
    }
    Ok(Some(parts))
}

/// Plans the parts of an MP3 file on disk (blocking; call from `spawn_blocking`).
pub fn plan_file(path: &Path, max_bytes: u64) -> io::Result<Option<Vec<Part>>> {
    plan_parts(std::fs::File::open(path)?, max_bytes)
}

fn read_up_to<R: Read>(reader: &mut R, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// MPEG-1 Layer III, 128 kbps, 44.1 kHz; `padded` adds the padding byte.
    fn frame(padded: bool) -> Vec<u8> {
        let header = [0xFF, 0xFB, if padded { 0x92 } else { 0x90 }, 0x64];
        let length = parse_header(header).unwrap().length as usize;
        let mut bytes = header.to_vec();
        bytes.resize(length, 0);
        bytes
    }

    fn stream(frames: usize) -> Vec<u8> {
        (0..frames).flat_map(|i| frame(i % 3 == 0)).collect()
    }

    #[test]
    fn headers_give_length_and_duration() {
        let plain = parse_header([0xFF, 0xFB, 0x90, 0x64]).unwrap();
        assert_eq!(plain.length, 417);
        assert_eq!(plain.samples, 1152);
        assert_eq!(plain.sample_rate, 44_100);
        assert_eq!(parse_header([0xFF, 0xFB, 0x92, 0x64]).unwrap().length, 418);
        // MPEG-2 Layer III, 64 kbps, 22.05 kHz.
        let mpeg2 = parse_header([0xFF, 0xF3, 0x80, 0xC4]).unwrap();
        assert_eq!(
            (mpeg2.length, mpeg2.samples, mpeg2.sample_rate),
            (208, 576, 22_050)
        );
        // MPEG-1 Layer II, 192 kbps, 48 kHz.
        let layer2 = parse_header([0xFF, 0xFD, 0xA4, 0x04]).unwrap();
        assert_eq!((layer2.length, layer2.sample_rate), (576, 48_000));
        // MPEG-1 Layer I, 32 kbps, 32 kHz: (12 * 32000 / 32000) * 4.
        assert_eq!(parse_header([0xFF, 0xFF, 0x18, 0x00]).unwrap().length, 48);
        for bad in [
            [0xFF, 0xFB, 0x00, 0x00], // free format
            [0xFF, 0xFB, 0xF0, 0x00], // bad bitrate
            [0xFF, 0xFB, 0x9C, 0x00], // reserved sample rate
            [0xFF, 0xEB, 0x90, 0x00], // reserved version
            [0xFF, 0xF9, 0x90, 0x00], // reserved layer
            [0xFE, 0xFB, 0x90, 0x00], // no sync
        ] {
            assert_eq!(parse_header(bad), None, "{bad:x?}");
        }
    }

    #[test]
    fn parts_are_cut_between_frames_under_the_limit() {
        let bytes = stream(1000);
        let parts = plan_parts(Cursor::new(&bytes), 100_000).unwrap().unwrap();
        assert_eq!(parts.len(), 5);
        let mut expected_offset = 0;
        for part in &parts {
            assert!(part.length <= 100_000);
            assert_eq!(part.offset, expected_offset, "parts are contiguous");
            // Each part starts with a frame header.
            let at = part.offset as usize;
            assert!(parse_header(bytes[at..at + 4].try_into().unwrap()).is_some());
            expected_offset += part.length;
        }
        assert_eq!(expected_offset, bytes.len() as u64);
        let total: u64 = parts.iter().map(|p| p.duration_nanos).sum();
        // 1000 frames of 1152 samples at 44.1 kHz.
        assert_eq!(total / 1_000_000, 26_122);
    }

    #[test]
    fn id3_tags_and_junk_are_passed_over() {
        let mut bytes = b"ID3\x04\x00\x00\x00\x00\x01\x00".to_vec(); // 128-byte tag body
        bytes.extend(vec![0xFFu8; 128]);
        let audio_start = bytes.len() as u64;
        bytes.extend(stream(50));
        bytes.extend(b"TAG");
        bytes.extend(vec![0u8; 125]);
        let parts = plan_parts(Cursor::new(&bytes), 10_000).unwrap().unwrap();
        assert_eq!(parts[0].offset, audio_start);
        let frames: u64 =
            parts.iter().map(|p| p.duration_nanos).sum::<u64>() * 44_100 / 1152 / 1_000_000_000;
        assert!((49..=50).contains(&frames), "{frames}");
    }

    #[test]
    fn other_data_is_not_mp3() {
        let noise: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(plan_parts(Cursor::new(&noise), 10_000).unwrap(), None);
        let mut wav = b"RIFF\x00\x00\x00\x00WAVEfmt ".to_vec();
        wav.extend(vec![0u8; 20_000]);
        assert_eq!(plan_parts(Cursor::new(&wav), 10_000).unwrap(), None);
        // A limit below one frame cannot be met.
        assert_eq!(plan_parts(Cursor::new(&stream(10)), 100).unwrap(), None);
    }
}
