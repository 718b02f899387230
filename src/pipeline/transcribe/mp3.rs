//! Splitting MP3 audio at frame boundaries, so a recording above a provider's upload limit can
//! be sent in parts that each decode on their own.
//!
//! An MPEG audio file is a sequence of frames, each with a 4-byte header (sync word, version,
//! layer, bitrate, sample rate, padding) from which its length and duration follow. A leading
//! ID3v2 tag is skipped; bytes between frames that do not form a header (junk, a trailing ID3v1
//! tag) are passed over by looking for the next header. The file is read through a buffer,
//! never whole: once to survey its frames, then to cut them into parts of near-equal size.

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

/// The shortest part a split makes. Servers built on ffmpeg cannot decode a lone frame and
/// OpenAI refuses audio under 0.1 s ("audio_too_short"); a few seconds leave a wide margin.
pub const MIN_PART_NANOS: u64 = 5_000_000_000;

/// Why audio cannot be split.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("could not read the audio: {0}")]
    Io(#[from] io::Error),
    /// Too little of the data is made of frames.
    #[error("its MP3 frames could not be read to split it")]
    NotMp3,
    /// Parts under the limit would play for less than [`MIN_PART_NANOS`] (0 ms: a single
    /// frame is larger than the limit).
    #[error("parts under the limit would last only {shortest_millis} ms")]
    LimitTooSmall { shortest_millis: u64 },
}

/// Plans parts of at most `max_bytes` each, cut between frames, as few as the limit allows and
/// of near-equal size, so no part is a short remainder: with `n` parts for a size just above
/// `(n - 1)` limits, each part holds more than half a limit. When that still plays for less
/// than [`MIN_PART_NANOS`] (the limit holds under about twice that much of this audio), no
/// plan is made: shorter parts are what servers refuse. Audio that fits in one part is one
/// part, however short.
pub fn plan_parts<R: Read + Seek>(reader: R, max_bytes: u64) -> Result<Vec<Part>, PlanError> {
    let mut frames = FrameReader::new(reader)?;
    let survey = Survey::of(&mut frames)?;
    // Stray sync patterns in other data must not pass as MP3.
    let audio_bytes = frames.total - frames.audio_start;
    if survey.frames == 0 || survey.frame_bytes * 10 < audio_bytes * 9 {
        return Err(PlanError::NotMp3);
    }
    if survey.largest_frame > max_bytes {
        return Err(PlanError::LimitTooSmall { shortest_millis: 0 });
    }
    let mut count = (survey.end - survey.start).div_ceil(max_bytes).max(1);
    loop {
        // Below this average, some part is shorter than the minimum whatever the cuts.
        if count > 1 && survey.duration_nanos / count < MIN_PART_NANOS {
            return Err(PlanError::LimitTooSmall {
                shortest_millis: survey.duration_nanos / count / 1_000_000,
            });
        }
        frames.rewind()?;
        let parts = cut(&mut frames, &survey, count, max_bytes)?;
        // A cut the limit forced early leaves more for the last part; one more part fixes that.
        if parts.iter().any(|part| part.length > max_bytes) {
            count += 1;
            continue;
        }
        let shortest = parts.iter().map(|part| part.duration_nanos).min();
        return match shortest {
            Some(shortest) if parts.len() > 1 && shortest < MIN_PART_NANOS => {
                Err(PlanError::LimitTooSmall {
                    shortest_millis: shortest / 1_000_000,
                })
            }
            _ => Ok(parts),
        };
    }
}

/// Plans the parts of an MP3 file on disk (blocking; call from `spawn_blocking`).
pub fn plan_file(path: &Path, max_bytes: u64) -> Result<Vec<Part>, PlanError> {
    plan_parts(std::fs::File::open(path)?, max_bytes)
}

/// Cuts the frames into `count` parts of near-equal size: each part ends at the frame boundary
/// nearest to its share of what is left, never above `max_bytes` (but the last part, which
/// takes the rest). Sharing out what is left, rather than fixed marks, keeps one early cut from
/// piling its difference onto the last part.
fn cut<R: Read + Seek>(
    frames: &mut FrameReader<R>,
    survey: &Survey,
    count: u64,
    max_bytes: u64,
) -> io::Result<Vec<Part>> {
    let mut parts: Vec<Part> = Vec::new();
    let mut current = Part {
        offset: survey.start,
        length: 0,
        duration_nanos: 0,
    };
    while let Some((offset, header)) = frames.next_frame()? {
        let end = offset + u64::from(header.length);
        let parts_left = count - parts.len() as u64;
        if parts_left > 1 && current.length > 0 {
            let share = (survey.end - current.offset).div_ceil(parts_left);
            let with_frame = end - current.offset;
            let overshoot = with_frame.saturating_sub(share);
            let shortfall = share.saturating_sub(offset - current.offset);
            if with_frame > max_bytes || overshoot > shortfall {
                parts.push(current);
                current = Part {
                    offset,
                    length: 0,
                    duration_nanos: 0,
                };
            }
        }
        current.length = end - current.offset;
        current.duration_nanos += header.duration_nanos();
    }
    if current.length > 0 {
        parts.push(current);
    }
    Ok(parts)
}

/// What a first reading of the frames finds.
#[derive(Debug, Default)]
struct Survey {
    frames: u64,
    /// Where the first frame starts and the last one ends.
    start: u64,
    end: u64,
    frame_bytes: u64,
    largest_frame: u64,
    duration_nanos: u64,
}

impl Survey {
    fn of<R: Read + Seek>(frames: &mut FrameReader<R>) -> io::Result<Self> {
        let mut survey = Survey::default();
        while let Some((offset, header)) = frames.next_frame()? {
            let length = u64::from(header.length);
            if survey.frames == 0 {
                survey.start = offset;
            }
            survey.frames += 1;
            survey.end = offset + length;
            survey.frame_bytes += length;
            survey.largest_frame = survey.largest_frame.max(length);
            survey.duration_nanos += header.duration_nanos();
        }
        Ok(survey)
    }
}

/// Reads the frames of a stream in order: after a leading ID3v2 tag, and passing over bytes
/// that do not form a frame header. Reads through a buffer, never the whole stream at once.
struct FrameReader<R> {
    reader: BufReader<R>,
    /// The first byte after the ID3v2 tag.
    audio_start: u64,
    total: u64,
    position: u64,
}

impl<R: Read + Seek> FrameReader<R> {
    fn new(reader: R) -> io::Result<Self> {
        let mut reader = BufReader::with_capacity(64 * 1024, reader);
        let total = reader.seek(SeekFrom::End(0))?;
        reader.seek(SeekFrom::Start(0))?;
        let mut head = [0u8; 10];
        let read = read_up_to(&mut reader, &mut head)?;
        let audio_start = id3v2_size(&head[..read]).min(total);
        let mut frames = Self {
            reader,
            audio_start,
            total,
            position: audio_start,
        };
        frames.rewind()?;
        Ok(frames)
    }

    /// Back to the first byte after the ID3v2 tag.
    fn rewind(&mut self) -> io::Result<()> {
        self.reader.seek(SeekFrom::Start(self.audio_start))?;
        self.position = self.audio_start;
        Ok(())
    }

    /// The next frame's offset and header; None at the end of the stream.
    fn next_frame(&mut self) -> io::Result<Option<(u64, FrameHeader)>> {
        let mut window = [0u8; 4];
        while self.position + 4 <= self.total {
            if read_up_to(&mut self.reader, &mut window)? < 4 {
                break;
            }
            let header =
                parse_header(window).filter(|h| self.position + u64::from(h.length) <= self.total);
            let Some(header) = header else {
                // Not a frame here: look one byte further.
                self.position += 1;
                self.reader.seek_relative(-3)?;
                continue;
            };
            let offset = self.position;
            self.position += u64::from(header.length);
            self.reader.seek_relative(i64::from(header.length) - 4)?;
            return Ok(Some((offset, header)));
        }
        Ok(None)
    }
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

    /// Checks what every plan must hold, and returns the parts' sizes.
    fn check_plan(bytes: &[u8], parts: &[Part], max_bytes: u64) -> Vec<u64> {
        let mut expected_offset = parts[0].offset;
        for part in parts {
            assert!(part.length <= max_bytes, "{part:?} is above {max_bytes}");
            assert_eq!(part.offset, expected_offset, "parts are contiguous");
            // Each part starts with a frame header.
            let at = part.offset as usize;
            assert!(parse_header(bytes[at..at + 4].try_into().unwrap()).is_some());
            if parts.len() > 1 {
                assert!(
                    part.duration_nanos >= MIN_PART_NANOS,
                    "{part:?} is too short"
                );
            }
            expected_offset += part.length;
        }
        parts.iter().map(|part| part.length).collect()
    }

    /// The shortest stream longer than `bytes`: above it by less than a frame.
    fn stream_just_above(bytes: u64) -> Vec<u8> {
        let mut frames = bytes as usize / 418;
        while (stream(frames).len() as u64) <= bytes {
            frames += 1;
        }
        let stream = stream(frames);
        assert!(stream.len() as u64 - bytes <= 418);
        stream
    }

    fn plan(bytes: &[u8], max_bytes: u64) -> Vec<Part> {
        plan_parts(Cursor::new(bytes), max_bytes).unwrap()
    }

    #[test]
    fn parts_are_cut_between_frames_under_the_limit() {
        let bytes = stream(1000);
        let parts = plan(&bytes, 100_000);
        assert_eq!(parts.len(), 5);
        check_plan(&bytes, &parts, 100_000);
        assert_eq!(
            parts.iter().map(|p| p.length).sum::<u64>(),
            bytes.len() as u64
        );
        let total: u64 = parts.iter().map(|p| p.duration_nanos).sum();
        // 1000 frames of 1152 samples at 44.1 kHz.
        assert_eq!(total / 1_000_000, 26_122);
    }

    #[test]
    fn parts_are_of_near_equal_size() {
        let bytes = stream(1000);
        let sizes = check_plan(&bytes, &plan(&bytes, 100_000), 100_000);
        let (smallest, largest) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        // 417,667 bytes in 5 parts: about 83,533 each, within a frame or two.
        assert!(largest - smallest <= 2 * 418, "{sizes:?}");
        assert!(*smallest >= 83_533 - 418, "{sizes:?}");
    }

    #[test]
    fn a_file_just_above_a_multiple_of_the_limit_has_no_short_last_part() {
        // The limit of the report: TRANSCRIBE_MAX_UPLOAD_BYTES 383,352 less the envelope. Filled
        // up to the limit, this file's parts were 366,967 / 366,968 / 366,968 / 418 bytes.
        let max_bytes = 366_968;
        let bytes = stream_just_above(3 * max_bytes);
        let parts = plan(&bytes, max_bytes);
        assert_eq!(parts.len(), 4);
        let sizes = check_plan(&bytes, &parts, max_bytes);
        assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 2 * 418);
        // About 17 s each.
        assert!(
            parts.iter().all(|p| p.duration_millis() > 17_000),
            "{parts:?}"
        );
        assert_eq!(sizes.iter().sum::<u64>(), bytes.len() as u64);

        // Just above one limit, too: two halves, not a limit and a frame.
        let bytes = stream_just_above(max_bytes);
        let sizes = check_plan(&bytes, &plan(&bytes, max_bytes), max_bytes);
        assert_eq!(sizes.len(), 2);
        assert!(sizes[0].abs_diff(sizes[1]) <= 418, "{sizes:?}");
    }

    #[test]
    fn a_size_of_exactly_whole_limits_takes_a_part_more_only_when_frames_do_not_fit() {
        // 2995 frames are exactly three limits of 416,638 bytes, but no frame boundary lies
        // at 416,638 or twice that: a fourth part takes the overflow, and all four stay
        // balanced.
        let bytes = stream(2995);
        let max_bytes = 416_638;
        assert_eq!(bytes.len() as u64, 3 * max_bytes);
        let parts = plan(&bytes, max_bytes);
        let sizes = check_plan(&bytes, &parts, max_bytes);
        assert_eq!(sizes.len(), 4, "{sizes:?}");
        assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 2 * 418);
        // Where boundaries do lie at the limits, three parts of exactly the limit.
        let bytes = stream(2997);
        let sizes = check_plan(&bytes, &plan(&bytes, 416_916), 416_916);
        assert_eq!(sizes, [416_916; 3]);
    }

    #[test]
    fn many_sizes_and_limits_make_valid_balanced_plans() {
        for frames in [1_001, 2_345, 4_000, 10_000] {
            let bytes = stream(frames);
            for max_bytes in [180_000, 250_001, 400_000, 1_000_000] {
                if bytes.len() as u64 <= max_bytes {
                    continue;
                }
                let parts = plan(&bytes, max_bytes);
                let sizes = check_plan(&bytes, &parts, max_bytes);
                assert_eq!(
                    sizes.len() as u64,
                    (bytes.len() as u64).div_ceil(max_bytes),
                    "{frames} frames, limit {max_bytes}: {sizes:?}"
                );
                assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 2 * 418);
            }
        }
    }

    #[test]
    fn a_limit_holding_too_little_audio_is_refused() {
        // 300 frames (7.8 s) above a 100,000-byte limit: two parts of 3.9 s at best.
        match plan_parts(Cursor::new(&stream(300)), 100_000) {
            Err(PlanError::LimitTooSmall { shortest_millis }) => {
                assert!(
                    (3_800..4_000).contains(&shortest_millis),
                    "{shortest_millis}"
                )
            }
            other => panic!("{other:?}"),
        }
        // A limit below one frame cannot be met.
        assert!(matches!(
            plan_parts(Cursor::new(&stream(10)), 100),
            Err(PlanError::LimitTooSmall { shortest_millis: 0 })
        ));
        // Audio that fits in one part is sent whole, however short.
        assert_eq!(plan(&stream(10), 100_000).len(), 1);
    }

    #[test]
    fn id3_tags_and_junk_are_passed_over() {
        let mut bytes = b"ID3\x04\x00\x00\x00\x00\x01\x00".to_vec(); // 128-byte tag body
        bytes.extend(vec![0xFFu8; 128]);
        let audio_start = bytes.len() as u64;
        bytes.extend(stream(600));
        bytes.extend(b"TAG");
        bytes.extend(vec![0u8; 125]);
        let parts = plan(&bytes, 100_000);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].offset, audio_start);
        check_plan(&bytes, &parts, 100_000);
        let frames: u64 =
            parts.iter().map(|p| p.duration_nanos).sum::<u64>() * 44_100 / 1152 / 1_000_000_000;
        assert!((599..=600).contains(&frames), "{frames}");
    }

    #[test]
    fn other_data_is_not_mp3() {
        let noise: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
        assert!(matches!(
            plan_parts(Cursor::new(&noise), 10_000),
            Err(PlanError::NotMp3)
        ));
        let mut wav = b"RIFF\x00\x00\x00\x00WAVEfmt ".to_vec();
        wav.extend(vec![0u8; 20_000]);
        assert!(matches!(
            plan_parts(Cursor::new(&wav), 10_000),
            Err(PlanError::NotMp3)
        ));
    }
}
