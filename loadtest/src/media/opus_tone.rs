//! Real Opus audio: a sine test tone encoded by libopus into 20 ms frames.
//!
//! Load-test callers publish what a browser would: one Opus packet every 20 ms at 48 kHz. The
//! tone is encoded for real (not a canned byte string) so the packet sizes, the TOC byte the SFU
//! reads in the clear, and the decoder's view of the stream are all genuine.

use std::f64::consts::TAU;

use thiserror::Error;

/// Opus' native sample rate, the one WebRTC negotiates.
pub const SAMPLE_RATE: u32 = 48_000;

/// Duration of one frame in milliseconds.
pub const FRAME_MS: u32 = 20;

/// Samples per channel in one 20 ms frame at 48 kHz.
pub const SAMPLES_PER_FRAME: usize = (SAMPLE_RATE / 1000 * FRAME_MS) as usize;

/// Largest Opus packet libopus is asked to produce (RFC 6716 caps a frame at 1275 bytes).
const MAX_PACKET: usize = 1275;

/// Errors of the Opus test-tone source.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpusSourceError {
    /// libopus refused to create or configure the encoder, or to encode.
    #[error("opus encoder: {0}")]
    Codec(#[from] opus::Error),
}

/// A mono sine tone encoded to 20 ms Opus frames.
pub struct OpusToneSource {
    encoder: opus::Encoder,
    frequency_hz: f64,
    amplitude: f64,
    /// Samples produced so far, so the phase is continuous across frames.
    position: u64,
    pcm: Vec<i16>,
}

impl std::fmt::Debug for OpusToneSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusToneSource")
            .field("frequency_hz", &self.frequency_hz)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl OpusToneSource {
    /// A source of a `frequency_hz` tone at half full scale, encoded at `bitrate_bps`
    /// (constant bitrate, VoIP mode, as a conferencing client would).
    pub fn new(frequency_hz: f64, bitrate_bps: i32) -> Result<Self, OpusSourceError> {
        let mut encoder =
            opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)?;
        encoder.set_bitrate(opus::Bitrate::Bits(bitrate_bps))?;
        encoder.set_vbr(false)?;
        Ok(OpusToneSource {
            encoder,
            frequency_hz,
            amplitude: 0.5 * f64::from(i16::MAX),
            position: 0,
            pcm: vec![0; SAMPLES_PER_FRAME],
        })
    }

    /// Encodes the next 20 ms of the tone and returns the Opus packet.
    pub fn next_frame(&mut self) -> Result<Vec<u8>, OpusSourceError> {
        let rate = f64::from(SAMPLE_RATE);
        for (i, sample) in self.pcm.iter_mut().enumerate() {
            let t = (self.position + i as u64) as f64 / rate;
            *sample = (self.amplitude * (TAU * self.frequency_hz * t).sin()).round() as i16;
        }
        self.position += SAMPLES_PER_FRAME as u64;
        Ok(self.encoder.encode_vec(&self.pcm, MAX_PACKET)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Power of `samples` at `freq` (Goertzel), normalised by the sample count.
    fn tone_power(samples: &[i16], freq: f64) -> f64 {
        let w = TAU * freq / f64::from(SAMPLE_RATE);
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &x in samples {
            let s0 = f64::from(x) + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        (s1 * s1 + s2 * s2 - coeff * s1 * s2) / samples.len() as f64
    }

    #[test]
    fn frames_are_20ms_and_decode_back_to_the_tone() {
        let mut source = OpusToneSource::new(1000.0, 32_000).unwrap();
        let mut decoder = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono).unwrap();
        let mut decoded = Vec::new();
        let mut bytes = 0usize;
        let frames = 50;
        for _ in 0..frames {
            let packet = source.next_frame().unwrap();
            assert!(!packet.is_empty() && packet.len() <= MAX_PACKET);
            bytes += packet.len();
            assert_eq!(
                opus::packet::get_nb_samples(&packet, SAMPLE_RATE).unwrap(),
                SAMPLES_PER_FRAME
            );
            let mut pcm = vec![0i16; SAMPLES_PER_FRAME];
            let n = decoder.decode(&packet, &mut pcm, false).unwrap();
            assert_eq!(n, SAMPLES_PER_FRAME);
            decoded.extend_from_slice(&pcm);
        }
        // CBR at 32 kb/s: 80 bytes per 20 ms frame.
        let kbps = bytes as f64 * 8.0 / (f64::from(frames) * 0.020) / 1000.0;
        assert!((kbps - 32.0).abs() < 2.0, "bitrate {kbps} kb/s");
        // Skip the codec's start-up, then the 1 kHz tone must dominate other frequencies.
        let steady = &decoded[SAMPLES_PER_FRAME * 5..];
        let at_tone = tone_power(steady, 1000.0);
        let off_tone = tone_power(steady, 2500.0);
        assert!(
            at_tone > 100.0 * off_tone,
            "tone {at_tone} vs off {off_tone}"
        );
        // A sine of amplitude A has an RMS of A / sqrt(2); the codec keeps the level.
        let rms = (steady.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / steady.len() as f64)
            .sqrt();
        let expected_rms = 0.5 * f64::from(i16::MAX) / 2f64.sqrt();
        assert!(
            (rms - expected_rms).abs() < 0.2 * expected_rms,
            "rms {rms} vs {expected_rms}"
        );
    }
}
