//! One track's WebM writer: Opus or VP8 frames as given (never transcoded) muxed by libwebm into
//! an in-memory WebM file, cut into numbered parts so memory stays bounded.
//!
//! A part is closed when it holds [`PART_MAX_BYTES`] of frames or spans [`PART_MAX_DURATION`]:
//! at once for audio, at the next keyframe for video (so every part starts decodable), and at
//! [`PART_HARD_MAX_BYTES`] even without one. The plaintext exists in memory only; the session
//! encrypts each closed part before it is stored.

use std::io::Cursor;
use std::time::Duration;

use webm::mux::{AudioCodecId, SegmentBuilder, SegmentMode, VideoCodecId, Writer};

use crate::sink::{Codec, Frame, SinkError, TrackMeta};

/// Frame bytes after which a part is closed (at the next keyframe for video).
pub const PART_MAX_BYTES: usize = 64 << 20;
/// Frame bytes after which a video part is closed even between keyframes.
pub const PART_HARD_MAX_BYTES: usize = 96 << 20;
/// Time span after which a part is closed (at the next keyframe for video).
pub const PART_MAX_DURATION: Duration = Duration::from_secs(600);

/// Opus `CodecPrivate` (RFC 7845 `OpusHead`): version 1, 2 channels (WebRTC's `opus/48000/2`),
/// no pre-skip, 48 kHz, no gain, mapping family 0.
const OPUS_HEAD: [u8; 19] = [
    b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', 1, 2, 0, 0, 0x80, 0xbb, 0, 0, 0, 0, 0,
];

type Segment = webm::mux::Segment<Cursor<Vec<u8>>>;

/// When a part is closed (the memory bound of a track).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartLimits {
    /// Frame bytes after which a part is closed (at the next keyframe for video).
    pub max_bytes: usize,
    /// Frame bytes after which a video part is closed even between keyframes.
    pub hard_max_bytes: usize,
    /// Time span after which a part is closed (at the next keyframe for video).
    pub max_duration: Duration,
}

impl Default for PartLimits {
    /// [`PART_MAX_BYTES`], [`PART_HARD_MAX_BYTES`], [`PART_MAX_DURATION`].
    fn default() -> Self {
        Self {
            max_bytes: PART_MAX_BYTES,
            hard_max_bytes: PART_HARD_MAX_BYTES,
            max_duration: PART_MAX_DURATION,
        }
    }
}

/// A closed part: its WebM bytes (plaintext) and what the manifest says of it.
#[derive(Debug)]
pub struct ClosedPart {
    /// Part number, from 1.
    pub part: u32,
    /// The WebM file.
    pub webm: Vec<u8>,
    /// Frames in it.
    pub frames: u64,
    /// First frame's time from the session's start.
    pub first_pts: Duration,
    /// Last frame's time from the session's start.
    pub last_pts: Duration,
}

struct OpenPart {
    segment: Segment,
    track_number: u64,
    frames: u64,
    bytes: usize,
    first_pts: Duration,
    last_pts: Duration,
    /// The gap between the last two frames (the last frame's duration, as best known).
    last_gap: Duration,
}

/// A track being written.
pub struct TrackWriter {
    meta: TrackMeta,
    limits: PartLimits,
    width: u16,
    height: u16,
    open: Option<OpenPart>,
    parts_closed: u32,
    last_pts: Option<Duration>,
    frames: u64,
    frames_before_keyframe: u64,
}

fn mux_error(what: &str, e: webm::mux::Error) -> SinkError {
    SinkError::Refused(format!("webm muxer: {what}: {e}"))
}

/// A VP8 keyframe's picture size (RFC 6386 §9.1: start code `9d 01 2a` at byte 3, then two
/// 14-bit little-endian dimensions).
pub fn vp8_keyframe_size(data: &[u8]) -> Option<(u16, u16)> {
    let header = data.get(3..10)?;
    if header[..3] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([header[3], header[4]]) & 0x3fff;
    let height = u16::from_le_bytes([header[5], header[6]]) & 0x3fff;
    (width > 0 && height > 0).then_some((width, height))
}

impl TrackWriter {
    /// A writer for `meta`'s frames, cutting parts at `limits`.
    pub fn new(meta: TrackMeta, limits: PartLimits) -> Self {
        Self {
            limits,
            width: meta.width,
            height: meta.height,
            meta,
            open: None,
            parts_closed: 0,
            last_pts: None,
            frames: 0,
            frames_before_keyframe: 0,
        }
    }

    /// The track.
    pub fn meta(&self) -> &TrackMeta {
        &self.meta
    }

    /// Picture size written (video).
    pub fn size(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    /// Frames written.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Video frames dropped before the first keyframe.
    pub fn frames_before_keyframe(&self) -> u64 {
        self.frames_before_keyframe
    }

    /// Adds a frame; returns the part it closed, if it closed one (the frame then starts the
    /// next part).
    pub fn push(&mut self, frame: &Frame<'_>) -> Result<Option<ClosedPart>, SinkError> {
        if let Some(last) = self.last_pts
            && frame.pts < last
        {
            return Err(SinkError::Refused(format!(
                "track {}: frame at {:?} after one at {last:?} (pts must not go back)",
                self.meta.track_id, frame.pts
            )));
        }
        let keyframe = frame.keyframe || self.meta.codec == Codec::Opus;
        let mut closed = None;
        if let Some(open) = &self.open {
            let due = open.bytes >= self.limits.max_bytes
                || frame.pts.saturating_sub(open.first_pts) >= self.limits.max_duration;
            if (due && keyframe) || open.bytes >= self.limits.hard_max_bytes {
                closed = self.close()?;
            }
        }
        if self.open.is_none() {
            if self.last_pts.is_none() && !keyframe {
                // Before the track's first keyframe: undecodable, counted in the manifest. (A
                // part cut at the hard bound goes on with interframes: decodable with the part
                // before it.)
                self.frames_before_keyframe += 1;
                return Ok(closed);
            }
            self.open = Some(self.start_part(frame)?);
        }
        let open = self.open.as_mut().expect("a part was opened above");
        open.segment
            .add_frame(
                open.track_number,
                frame.data,
                u64::try_from(frame.pts.as_nanos()).unwrap_or(u64::MAX),
                keyframe,
            )
            .map_err(|e| mux_error("adding a frame", e))?;
        if open.frames > 0 {
            open.last_gap = frame.pts - open.last_pts;
        }
        open.frames += 1;
        open.bytes += frame.data.len();
        open.last_pts = frame.pts;
        self.last_pts = Some(frame.pts);
        self.frames += 1;
        Ok(closed)
    }

    fn start_part(&mut self, first: &Frame<'_>) -> Result<OpenPart, SinkError> {
        let builder = SegmentBuilder::new(Writer::new(Cursor::new(Vec::new())))
            .and_then(|b| b.set_mode(SegmentMode::File))
            .and_then(|b| b.set_writing_app("e2ee-sfu recorder"))
            .map_err(|e| mux_error("starting a file", e))?;
        let (builder, track_number) = match self.meta.codec {
            Codec::Opus => {
                let (builder, track) = builder
                    .add_audio_track(48_000, 2, AudioCodecId::Opus, None)
                    .map_err(|e| mux_error("adding the audio track", e))?;
                let number = webm::mux::Track::track_number(&track);
                let builder = builder
                    .set_codec_private(track, &OPUS_HEAD)
                    .map_err(|e| mux_error("setting OpusHead", e))?;
                (builder, number)
            }
            Codec::Vp8 => {
                if let Some((width, height)) = vp8_keyframe_size(first.data) {
                    (self.width, self.height) = (width, height);
                }
                if self.width == 0 || self.height == 0 {
                    return Err(SinkError::Refused(format!(
                        "track {}: VP8 keyframe without a picture size",
                        self.meta.track_id
                    )));
                }
                let (builder, track) = builder
                    .add_video_track(
                        self.width.into(),
                        self.height.into(),
                        VideoCodecId::VP8,
                        None,
                    )
                    .map_err(|e| mux_error("adding the video track", e))?;
                (builder, webm::mux::Track::track_number(&track))
            }
        };
        Ok(OpenPart {
            segment: builder.build(),
            track_number,
            frames: 0,
            bytes: 0,
            first_pts: first.pts,
            last_pts: first.pts,
            last_gap: Duration::ZERO,
        })
    }

    /// Closes the open part, if any, and returns it.
    pub fn close(&mut self) -> Result<Option<ClosedPart>, SinkError> {
        let Some(open) = self.open.take() else {
            return Ok(None);
        };
        // The segment's duration in its timecode scale (1 ms): up to the end of the last frame.
        let end_ms = (open.last_pts + open.last_gap).as_millis().max(1);
        let writer = open
            .segment
            .finalize(Some(u64::try_from(end_ms).unwrap_or(u64::MAX)))
            .map_err(|_| {
                SinkError::Refused(format!(
                    "webm muxer: closing track {} part {}",
                    self.meta.track_id,
                    self.parts_closed + 1
                ))
            })?;
        self.parts_closed += 1;
        Ok(Some(ClosedPart {
            part: self.parts_closed,
            webm: writer.into_inner().into_inner(),
            frames: open.frames,
            first_pts: open.first_pts,
            last_pts: open.last_pts,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::MediaKind;

    fn meta(codec: Codec) -> TrackMeta {
        TrackMeta {
            track_id: "t".to_owned(),
            device: "d".to_owned(),
            kind: if codec == Codec::Opus {
                MediaKind::Audio
            } else {
                MediaKind::Video
            },
            codec,
            source: "camera".to_owned(),
            width: 0,
            height: 0,
        }
    }

    /// A VP8 frame of `len` bytes (at least 10): a keyframe with the 320x240 header, or an
    /// interframe.
    fn vp8(keyframe: bool, len: usize) -> Vec<u8> {
        let mut data = vec![0x55; len];
        if keyframe {
            data[..10]
                .copy_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]);
        } else {
            data[0] = 0x11;
        }
        data
    }

    fn push(writer: &mut TrackWriter, ms: u64, keyframe: bool, data: &[u8]) -> Option<ClosedPart> {
        writer
            .push(&Frame {
                track_id: "t",
                pts: Duration::from_millis(ms),
                keyframe,
                data,
            })
            .unwrap()
    }

    const SMALL: PartLimits = PartLimits {
        max_bytes: 1000,
        hard_max_bytes: 3000,
        max_duration: Duration::from_secs(600),
    };

    #[test]
    fn audio_part_is_cut_as_soon_as_it_is_full() {
        let mut writer = TrackWriter::new(meta(Codec::Opus), SMALL);
        let packet = [0xfc; 100];
        let mut parts = Vec::new();
        for i in 0..25 {
            parts.extend(push(&mut writer, i * 20, true, &packet));
        }
        parts.extend(writer.close().unwrap());
        assert_eq!(
            parts.iter().map(|p| p.frames).collect::<Vec<_>>(),
            [10, 10, 5]
        );
        assert_eq!(parts[1].first_pts, Duration::from_millis(200));
        assert!(
            parts
                .iter()
                .all(|p| p.webm.starts_with(&[0x1a, 0x45, 0xdf, 0xa3]))
        );
    }

    #[test]
    fn video_part_waits_for_a_keyframe_up_to_the_hard_bound() {
        let mut writer = TrackWriter::new(meta(Codec::Vp8), SMALL);
        let mut parts = Vec::new();
        // Frames before the first keyframe are counted, not written.
        assert!(push(&mut writer, 0, false, &vp8(false, 200)).is_none());
        assert_eq!(writer.frames_before_keyframe(), 1);
        // A keyframe, then interframes past the soft bound: the part goes on to the next
        // keyframe.
        parts.extend(push(&mut writer, 33, true, &vp8(true, 200)));
        for i in 2..8 {
            parts.extend(push(&mut writer, i * 33, false, &vp8(false, 200)));
        }
        assert!(parts.is_empty(), "no keyframe yet: the part stays open");
        parts.extend(push(&mut writer, 8 * 33, true, &vp8(true, 200)));
        assert_eq!(parts.len(), 1, "cut at the keyframe");
        assert_eq!(parts[0].frames, 7);
        assert_eq!(writer.size(), (320, 240));
        // No keyframe for long: cut at the hard bound anyway.
        for i in 9..30 {
            parts.extend(push(&mut writer, i * 33, false, &vp8(false, 200)));
        }
        assert_eq!(parts.len(), 2, "cut at the hard bound");
        assert_eq!(parts[1].frames, 15);
        assert_eq!(writer.frames(), 29);
    }

    #[test]
    fn a_frame_going_back_in_time_is_refused() {
        let mut writer = TrackWriter::new(meta(Codec::Opus), PartLimits::default());
        push(&mut writer, 40, true, &[0xfc; 10]);
        let err = writer
            .push(&Frame {
                track_id: "t",
                pts: Duration::from_millis(20),
                keyframe: true,
                data: &[0xfc; 10],
            })
            .unwrap_err();
        assert!(err.to_string().contains("must not go back"), "{err}");
    }

    #[test]
    fn vp8_header_parser_takes_any_length() {
        let key = vp8(true, 10);
        for len in 0..=key.len() {
            assert_eq!(
                vp8_keyframe_size(&key[..len]).is_some(),
                len == 10,
                "length {len}"
            );
        }
        for len in 0..64 {
            assert_eq!(vp8_keyframe_size(&vec![0x9d; len]), None);
        }
    }
}
