//! VP8-shaped frames: valid VP8 frame headers (RFC 6386 §9.1) in front of filler, at a set
//! bitrate and frame rate, with a keyframe/delta pattern like a real encoder's.
//!
//! The SFU never decodes video; what it reads is the frame tag (keyframe bit) and, for a
//! keyframe, the start code and picture size, all in the clear prefix of the E2EE frame. The
//! generator therefore makes those bytes exactly right and the rest random (encrypted video looks
//! random to the SFU anyway). Sizes follow an encoder under a rate controller: a keyframe is
//! several times the size of a delta frame, frame sizes wander by a few percent, and the average
//! over a keyframe interval hits the target bitrate.
//!
//! The header layout (frame tag; for a keyframe, start code and picture size) and its parser are
//! the client library's ([`call_client::media::Vp8Header`]); a keyframe's header is 10 bytes and a
//! delta frame's 3, exactly the clear-prefix lengths of docs/e2ee.md §1.2.

use call_client::media::{VP8_DELTA_HEADER_LEN, VP8_KEYFRAME_HEADER_LEN, VP8_START_CODE};
use rand::rngs::ChaCha8Rng;
use rand::{Rng, RngExt, SeedableRng};
use thiserror::Error;

/// Largest first-partition size the 19-bit field holds.
const MAX_FIRST_PARTITION: usize = (1 << 19) - 1;

/// How a VP8 stream is shaped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vp8Config {
    /// Picture width in pixels (at most 16383).
    pub width: u16,
    /// Picture height in pixels (at most 16383).
    pub height: u16,
    /// Frames per second.
    pub fps: u32,
    /// Target average bitrate in bits per second, counting every byte of every frame.
    pub bitrate_bps: u32,
    /// Frames from one periodic keyframe to the next (a keyframe requested by PLI comes on top).
    pub keyframe_interval: u32,
    /// How many delta frames' worth of bytes a keyframe takes (real encoders: about 5–10).
    pub keyframe_factor: f64,
    /// Bytes the caller appends to each frame (the probe trailer); they count toward the
    /// bitrate, so the generated frame is this much shorter than its budget.
    pub trailer_len: usize,
    /// Seed of the size variation and filler bytes, for reproducible runs.
    pub seed: u64,
}

/// Why a [`Vp8Config`] cannot be used.
#[derive(Debug, Error, PartialEq)]
#[non_exhaustive]
pub enum Vp8ConfigError {
    /// Width or height is zero or does not fit VP8's 14-bit field.
    #[error("picture size {0}x{1} outside 1..=16383")]
    PictureSize(u16, u16),
    /// Frame rate, bitrate or keyframe interval is zero.
    #[error("fps, bitrate and keyframe interval must be positive")]
    ZeroRate,
    /// The keyframe factor is not a finite number of at least 1.
    #[error("keyframe factor {0} must be finite and >= 1")]
    KeyframeFactor(f64),
}

/// One generated frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vp8Frame {
    /// The encoded frame: VP8 header then filler (the caller appends the probe).
    pub data: Vec<u8>,
    /// Whether this is a keyframe (bit 0 of the frame tag is 0).
    pub keyframe: bool,
    /// Index of the frame in the stream, from 0.
    pub index: u64,
}

/// Makes VP8-shaped frames one at a time; the caller paces them at `fps`.
#[derive(Debug)]
pub struct Vp8FrameGenerator {
    config: Vp8Config,
    rng: ChaCha8Rng,
    index: u64,
    frames_since_key: u32,
    key_requested: bool,
    delta_bytes: f64,
}

impl Vp8FrameGenerator {
    /// A generator for `config`; its first frame is a keyframe.
    pub fn new(config: Vp8Config) -> Result<Self, Vp8ConfigError> {
        let size_ok = |v: u16| (1..=16383).contains(&v);
        if !size_ok(config.width) || !size_ok(config.height) {
            return Err(Vp8ConfigError::PictureSize(config.width, config.height));
        }
        if config.fps == 0 || config.bitrate_bps == 0 || config.keyframe_interval == 0 {
            return Err(Vp8ConfigError::ZeroRate);
        }
        if !config.keyframe_factor.is_finite() || config.keyframe_factor < 1.0 {
            return Err(Vp8ConfigError::KeyframeFactor(config.keyframe_factor));
        }
        // Bytes per keyframe interval = bitrate/8 * interval/fps = delta * (factor + interval - 1).
        let interval = f64::from(config.keyframe_interval);
        let bytes_per_interval =
            f64::from(config.bitrate_bps) / 8.0 * interval / f64::from(config.fps);
        let delta_bytes = bytes_per_interval / (config.keyframe_factor + interval - 1.0);
        Ok(Vp8FrameGenerator {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            config,
            index: 0,
            frames_since_key: 0,
            key_requested: true,
            delta_bytes,
        })
    }

    /// The configuration this generator was built with.
    pub fn config(&self) -> &Vp8Config {
        &self.config
    }

    /// Makes the next frame a keyframe (what a client does on PLI/FIR).
    pub fn request_keyframe(&mut self) {
        self.key_requested = true;
    }

    /// The interval between frames in microseconds.
    pub fn frame_interval_us(&self) -> u64 {
        1_000_000 / u64::from(self.config.fps)
    }

    /// Produces the next frame.
    pub fn next_frame(&mut self) -> Vp8Frame {
        let keyframe = self.key_requested || self.frames_since_key >= self.config.keyframe_interval;
        if keyframe {
            self.key_requested = false;
            self.frames_since_key = 1;
        } else {
            self.frames_since_key += 1;
        }
        let budget = if keyframe {
            self.delta_bytes * self.config.keyframe_factor
        } else {
            self.delta_bytes
        };
        // Rate-controlled encoders land within a few percent of the budget per frame.
        let wobble: f64 = self.rng.random_range(0.9..1.1);
        let header_len = if keyframe {
            VP8_KEYFRAME_HEADER_LEN
        } else {
            VP8_DELTA_HEADER_LEN
        };
        let total = ((budget * wobble).round() as usize).saturating_sub(self.config.trailer_len);
        let total = total.max(header_len + 1);
        let mut data = vec![0u8; total];
        let body_len = total - header_len;
        // The first partition (modes, motion vectors) is a minority of a frame.
        let first_partition = (body_len / 8).clamp(1, MAX_FIRST_PARTITION);
        let tag = (first_partition as u32) << 5 | 1 << 4 | u32::from(!keyframe);
        data[0..3].copy_from_slice(&tag.to_le_bytes()[0..3]);
        if keyframe {
            data[3..6].copy_from_slice(&VP8_START_CODE);
            data[6..8].copy_from_slice(&self.config.width.to_le_bytes());
            data[8..10].copy_from_slice(&self.config.height.to_le_bytes());
        }
        self.rng.fill_bytes(&mut data[header_len..]);
        let frame = Vp8Frame {
            data,
            keyframe,
            index: self.index,
        };
        self.index += 1;
        frame
    }
}

/// One simulcast layer: its RTP stream id, picture size and bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulcastLayer {
    /// RTP stream id as in the SDP (`q`, `h`, `f`).
    pub rid: &'static str,
    /// Picture width.
    pub width: u16,
    /// Picture height.
    pub height: u16,
    /// Target bitrate in bits per second.
    pub bitrate_bps: u32,
}

/// The three camera layers a client publishes, lowest first: 320x180 at 150 kb/s, 640x360 at
/// 500 kb/s and 1280x720 at 1.7 Mb/s (the usual WebRTC conferencing ladder: each layer half
/// the size of the next, bitrates about 3x apart).
pub const CAMERA_LAYERS: [SimulcastLayer; 3] = [
    SimulcastLayer {
        rid: "q",
        width: 320,
        height: 180,
        bitrate_bps: 150_000,
    },
    SimulcastLayer {
        rid: "h",
        width: 640,
        height: 360,
        bitrate_bps: 500_000,
    },
    SimulcastLayer {
        rid: "f",
        width: 1280,
        height: 720,
        bitrate_bps: 1_700_000,
    },
];

/// Frame rate of the camera layers.
pub const CAMERA_FPS: u32 = 30;

/// Three simulcast generators stepped together: each call yields one frame per layer for the
/// same capture instant, and a keyframe request applies to all layers (as a browser encoder
/// does on PLI).
#[derive(Debug)]
pub struct SimulcastSource {
    layers: Vec<(SimulcastLayer, Vp8FrameGenerator)>,
}

impl SimulcastSource {
    /// Generators for `layers` at `fps`, a periodic keyframe every `keyframe_interval` frames,
    /// `trailer_len` bytes reserved per frame, seeded from `seed`.
    pub fn new(
        layers: &[SimulcastLayer],
        fps: u32,
        keyframe_interval: u32,
        trailer_len: usize,
        seed: u64,
    ) -> Result<Self, Vp8ConfigError> {
        let layers = layers
            .iter()
            .zip(0u64..)
            .map(|(layer, i)| {
                let generator = Vp8FrameGenerator::new(Vp8Config {
                    width: layer.width,
                    height: layer.height,
                    fps,
                    bitrate_bps: layer.bitrate_bps,
                    keyframe_interval,
                    keyframe_factor: 6.0,
                    trailer_len,
                    seed: seed.wrapping_mul(31).wrapping_add(i),
                })?;
                Ok((*layer, generator))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SimulcastSource { layers })
    }

    /// Makes the next frame of every layer a keyframe.
    pub fn request_keyframe(&mut self) {
        for (_, g) in &mut self.layers {
            g.request_keyframe();
        }
    }

    /// One frame per layer, lowest layer first.
    pub fn next_frames(&mut self) -> Vec<(SimulcastLayer, Vp8Frame)> {
        self.layers
            .iter_mut()
            .map(|(layer, g)| (*layer, g.next_frame()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use call_client::media::Vp8Header;

    fn config(bitrate_bps: u32) -> Vp8Config {
        Vp8Config {
            width: 640,
            height: 360,
            fps: 30,
            bitrate_bps,
            keyframe_interval: 90,
            keyframe_factor: 6.0,
            trailer_len: 20,
            seed: 1,
        }
    }

    #[test]
    fn keyframe_and_delta_headers_are_valid_vp8() {
        let mut g = Vp8FrameGenerator::new(config(500_000)).unwrap();
        let key = g.next_frame();
        assert!(key.keyframe);
        assert_eq!(key.data[0] & 1, 0, "keyframe bit is 0 in a keyframe");
        assert_eq!(&key.data[3..6], &VP8_START_CODE);
        let header = Vp8Header::parse(&key.data).unwrap();
        assert!(header.keyframe && header.show_frame);
        assert_eq!(header.version, 0);
        assert_eq!(header.picture_size, Some((640, 360)));
        assert!(
            (header.first_partition_size as usize) < key.data.len() - VP8_KEYFRAME_HEADER_LEN,
            "first partition fits in the frame"
        );

        let delta = g.next_frame();
        assert!(!delta.keyframe);
        assert_eq!(delta.data[0] & 1, 1);
        let header = Vp8Header::parse(&delta.data).unwrap();
        assert!(!header.keyframe);
        assert_eq!(header.picture_size, None);
        assert!(
            key.data.len() > 4 * delta.data.len(),
            "keyframes are much larger"
        );
    }

    #[test]
    fn keyframes_come_at_the_interval_and_on_request() {
        let mut g = Vp8FrameGenerator::new(config(500_000)).unwrap();
        let keys: Vec<u64> = (0..200)
            .map(|_| g.next_frame())
            .filter(|f| f.keyframe)
            .map(|f| f.index)
            .collect();
        assert_eq!(keys, vec![0, 90, 180]);
        g.request_keyframe();
        let f = g.next_frame();
        assert!(f.keyframe && f.index == 200);
        // The interval restarts from the requested keyframe.
        let next_key = (0..100)
            .map(|_| g.next_frame())
            .find(|f| f.keyframe)
            .unwrap();
        assert_eq!(next_key.index, 290);
    }

    #[test]
    fn bitrate_over_time_matches_the_target() {
        for bitrate in [150_000u32, 500_000, 1_700_000] {
            let cfg = config(bitrate);
            let mut g = Vp8FrameGenerator::new(cfg).unwrap();
            // Ten seconds: whole keyframe intervals, trailer counted as the caller adds it.
            let frames = 300;
            let bytes: usize = (0..frames)
                .map(|_| g.next_frame().data.len() + cfg.trailer_len)
                .sum();
            let actual = bytes as f64 * 8.0 / (f64::from(frames) / f64::from(cfg.fps));
            let err = (actual - f64::from(bitrate)).abs() / f64::from(bitrate);
            assert!(err < 0.03, "{bitrate} b/s target, {actual} b/s made");
        }
    }

    #[test]
    fn same_seed_same_stream() {
        let mut a = Vp8FrameGenerator::new(config(300_000)).unwrap();
        let mut b = Vp8FrameGenerator::new(config(300_000)).unwrap();
        for _ in 0..20 {
            assert_eq!(a.next_frame(), b.next_frame());
        }
    }

    #[test]
    fn invalid_configs_are_refused() {
        let mut c = config(100_000);
        c.width = 0;
        assert!(matches!(
            Vp8FrameGenerator::new(c),
            Err(Vp8ConfigError::PictureSize(0, 360))
        ));
        let mut c = config(100_000);
        c.fps = 0;
        assert_eq!(
            Vp8FrameGenerator::new(c).unwrap_err(),
            Vp8ConfigError::ZeroRate
        );
        let mut c = config(100_000);
        c.keyframe_factor = f64::NAN;
        assert!(Vp8FrameGenerator::new(c).is_err());
    }

    #[test]
    fn simulcast_layers_share_keyframes_and_keep_their_rates() {
        let mut s = SimulcastSource::new(&CAMERA_LAYERS, CAMERA_FPS, 60, 20, 9).unwrap();
        let mut bytes = [0usize; 3];
        for i in 0..120 {
            let frames = s.next_frames();
            assert_eq!(frames.len(), 3);
            let key = frames[0].1.keyframe;
            assert!(frames.iter().all(|(_, f)| f.keyframe == key));
            assert_eq!(key, i % 60 == 0);
            for (n, (layer, f)) in frames.iter().enumerate() {
                bytes[n] += f.data.len() + 20;
                if f.keyframe {
                    let h = Vp8Header::parse(&f.data).unwrap();
                    assert_eq!(h.picture_size, Some((layer.width, layer.height)));
                }
            }
        }
        for (n, layer) in CAMERA_LAYERS.iter().enumerate() {
            let bps = bytes[n] as f64 * 8.0 / 4.0;
            let err = (bps - f64::from(layer.bitrate_bps)).abs() / f64::from(layer.bitrate_bps);
            assert!(err < 0.03, "layer {} made {bps} b/s", layer.rid);
        }
        s.request_keyframe();
        assert!(s.next_frames().iter().all(|(_, f)| f.keyframe));
    }
}
