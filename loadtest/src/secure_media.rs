//! Frames as a load-test participant sends and receives them: the probe appended to the encoded
//! frame, the result encrypted with SFrame (crate `e2ee-frames`, docs/e2ee.md), and on the
//! receiving side decrypted, checked and measured.
//!
//! On the wire a frame is `clear_prefix || sframe_header || ciphertext || tag` exactly as a real
//! client sends it ([`call_client::media::seal_frame`]/[`call_client::media::open_frame`]): the
//! SFU reads the clear prefix (VP8 frame tag, start code and size; Opus TOC) and nothing else. The probe is at the end of the plaintext, so it is encrypted and
//! authenticated with the frame; a receiver can only measure a frame it decrypted.

use std::time::{Duration, Instant};

use call_client::media::{self as client_media, Codec};
use e2ee_frames::{
    Header, KeyStore, Kid, ReceiveError, SendError, Sender, Stream, clear_prefix_len,
};
use thiserror::Error;

use crate::probe::{PROBE_LEN, Probe, ProbeError};
use crate::receiver_stats::ReceiverStats;

/// Why a frame could not be sealed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SealError {
    /// SFrame refused to encrypt (counter or ratchet step exhausted).
    #[error(transparent)]
    Send(#[from] SendError),
}

/// Why a received frame was not accepted.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// SFrame refused the frame: no key, replay, bad header, failed authentication.
    #[error(transparent)]
    Decrypt(#[from] client_media::OpenError),
    /// The frame decrypted but carries no valid probe (not a load-test frame).
    #[error(transparent)]
    Probe(#[from] ProbeError),
}

/// One participant's sending side: numbers frames per probe stream and encrypts them.
#[derive(Debug)]
pub struct FrameSealer {
    sender: Sender,
    participant: u16,
    next_seq: [u32; 256],
    plaintext: Vec<u8>,
}

impl FrameSealer {
    /// A sealer for `participant` encrypting with `sender` (its current generation's keys).
    pub fn new(sender: Sender, participant: u16) -> Self {
        FrameSealer {
            sender,
            participant,
            next_seq: [0; 256],
            plaintext: Vec::new(),
        }
    }

    /// The SFrame sender (to ratchet it or start a new generation).
    pub fn sender_mut(&mut self) -> &mut Sender {
        &mut self.sender
    }

    /// Appends a probe for `probe_stream` stamped `send_time_us` to `frame` (an encoded Opus
    /// or VP8 frame), encrypts it on SFrame stream `stream` and writes the wire form to `out`.
    /// Returns the probe that was sent.
    pub fn seal(
        &mut self,
        stream: Stream,
        codec: Codec,
        probe_stream: u8,
        frame: &[u8],
        send_time_us: u64,
        out: &mut Vec<u8>,
    ) -> Result<Probe, SealError> {
        let seq = &mut self.next_seq[usize::from(probe_stream)];
        let probe = Probe {
            sender: self.participant,
            stream: probe_stream,
            seq: *seq,
            send_time_us,
        };
        self.plaintext.clear();
        self.plaintext.extend_from_slice(frame);
        probe.append_to(&mut self.plaintext);
        client_media::seal_frame(&mut self.sender, stream, codec, &self.plaintext, out)?;
        *seq = seq.wrapping_add(1);
        Ok(probe)
    }
}

/// A frame could not be opened because no key is held for its sender and generation (or its
/// step is beyond the look-ahead): the control loop feeds it to the key policy
/// (`call_client::keys::KeyInput::Undecryptable`), which asks the sender with a `key_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingKey {
    /// The sender's slot.
    pub slot: u16,
    /// The frame's generation.
    pub generation: u16,
}

/// Least time between two reports of the same sender's missing key: the key policy asks at
/// most once a second (`call_client::keys::REQUEST_INTERVAL`); this keeps the reports at
/// control rate however many frames arrive without a key.
const MISSING_KEY_REPORT_EVERY: Duration = Duration::from_millis(250);

/// Senders whose missing key waits to be reported; more at once are reported on a later frame.
const MAX_MISSING_PENDING: usize = 16;

/// One participant's receiving side: its key store, what it measured and what it refused.
#[derive(Debug, Default)]
pub struct FrameOpener {
    keys: KeyStore,
    stats: ReceiverStats,
    decrypt_failures: u64,
    keyless: u64,
    replays: u64,
    probe_failures: u64,
    first_frame_us: Option<u64>,
    plaintext: Vec<u8>,
    /// Missing keys not yet taken by the control loop ([`Self::take_missing_keys`]).
    missing: Vec<MissingKey>,
    /// When each sender's missing key was last reported.
    missing_reported: Vec<(u16, Instant)>,
}

impl FrameOpener {
    /// An opener with an empty key store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The key store, to install keys from envelopes.
    pub fn keys_mut(&mut self) -> &mut KeyStore {
        &mut self.keys
    }

    /// Decrypts a wire frame of `codec` that arrived at `arrival_us` (run clock; `now` is the
    /// same instant for the key store's timers), records its probe and returns it with the
    /// encoded frame (probe removed). Failures are counted and returned.
    pub fn open(
        &mut self,
        now: Instant,
        codec: Codec,
        wire: &[u8],
        arrival_us: u64,
    ) -> Result<(Probe, &[u8]), OpenError> {
        if let Err(e) =
            client_media::open_frame(&mut self.keys, now, codec, wire, &mut self.plaintext)
        {
            match &e {
                client_media::OpenError::Replay(_) => self.replays += 1,
                client_media::OpenError::KeyMissing(cause) => {
                    self.keyless += 1;
                    self.note_missing_key(now, codec, wire, cause);
                }
                _ => self.decrypt_failures += 1,
            }
            return Err(e.into());
        }
        let (frame, probe) = match Probe::split_trailer(&self.plaintext) {
            Ok(v) => v,
            Err(e) => {
                self.probe_failures += 1;
                return Err(e.into());
            }
        };
        self.first_frame_us.get_or_insert(arrival_us);
        self.stats.on_probe(&probe, arrival_us);
        Ok((probe, frame))
    }

    /// A frame refused for want of a key: remember its sender and generation for the key
    /// policy, unless reported within [`MISSING_KEY_REPORT_EVERY`]. A step older than the held
    /// one is not reported: that key is gone on purpose (forward secrecy on join), asking again
    /// would not bring it back.
    fn note_missing_key(&mut self, now: Instant, codec: Codec, wire: &[u8], cause: &ReceiveError) {
        if !matches!(
            cause,
            ReceiveError::UnknownKid(_) | ReceiveError::RatchetBeyondBound { .. }
        ) {
            return;
        }
        let Some(kid) = frame_kid(codec, wire) else {
            return;
        };
        let slot = kid.slot();
        match self.missing_reported.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, at)) if now < *at + MISSING_KEY_REPORT_EVERY => return,
            Some((_, at)) => *at = now,
            None => self.missing_reported.push((slot, now)),
        }
        if self.missing.len() < MAX_MISSING_PENDING {
            self.missing.push(MissingKey {
                slot,
                generation: kid.generation(),
            });
        }
    }

    /// The missing keys noted since the last call, for the key policy (at most one per sender
    /// per [`MISSING_KEY_REPORT_EVERY`]).
    pub fn take_missing_keys(&mut self) -> impl Iterator<Item = MissingKey> + '_ {
        self.missing.drain(..)
    }

    /// Whether missing keys wait to be taken.
    pub fn has_missing_keys(&self) -> bool {
        !self.missing.is_empty()
    }

    /// Latency, loss and jitter of the frames that decrypted.
    pub fn stats(&self) -> &ReceiverStats {
        &self.stats
    }

    /// Frames refused by SFrame that were held keys for but did not authenticate or parse
    /// (bad header, bad KID, truncated, failed authentication): the report's
    /// `decrypt_failures`.
    pub fn decrypt_failures(&self) -> u64 {
        self.decrypt_failures
    }

    /// Frames that arrived before their key (no key for the KID's sender and generation, a
    /// step older than the held one or beyond the look-ahead): the report's
    /// `frames_without_key`, separate from authentication failures.
    pub fn frames_without_key(&self) -> u64 {
        self.keyless
    }

    /// Frames refused as replays (a counter already seen).
    pub fn replays(&self) -> u64 {
        self.replays
    }

    /// Frames that decrypted but held no probe.
    pub fn probe_failures(&self) -> u64 {
        self.probe_failures
    }

    /// Arrival time (run clock, µs) of the first frame that decrypted, for the report's
    /// `first_decrypted_frame_ms`.
    pub fn first_frame_us(&self) -> Option<u64> {
        self.first_frame_us
    }
}

/// The KID of a sealed frame (behind its clear prefix), when its header parses.
fn frame_kid(codec: Codec, wire: &[u8]) -> Option<Kid> {
    let rest = wire.get(clear_prefix_len(codec, wire)..)?;
    let (header, _) = Header::parse(rest).ok()?;
    Kid::from_u64(header.kid).ok()
}

/// Bytes SFrame adds to a frame of `suite` at most (header up to 17 bytes plus the tag), plus
/// the probe: what a sender budgets per frame on top of the encoded media.
pub fn overhead_bytes(suite: e2ee_frames::CipherSuite) -> usize {
    e2ee_frames::MAX_HEADER_LEN + suite.tag_len() + PROBE_LEN
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::opus_tone::{OpusToneSource, SAMPLE_RATE, SAMPLES_PER_FRAME};
    use crate::media::vp8_frames::{CAMERA_LAYERS, SimulcastSource};
    use call_client::media::{OpenError as ClientOpenError, Vp8Header};
    use e2ee_frames::{BaseKey, CipherSuite, ReceiveError};

    const SUITE: CipherSuite = CipherSuite::Aes256GcmSha512_128;

    fn pair(slot: u16) -> (FrameSealer, FrameOpener) {
        let key_bytes = [slot as u8 ^ 0x5a; 32];
        let sender = Sender::new(SUITE, slot, 0, BaseKey::from_bytes(&key_bytes).unwrap()).unwrap();
        let mut opener = FrameOpener::new();
        opener
            .keys_mut()
            .install(
                Instant::now(),
                slot,
                0,
                0,
                SUITE,
                BaseKey::from_bytes(&key_bytes).unwrap(),
            )
            .unwrap();
        (FrameSealer::new(sender, slot), opener)
    }

    #[test]
    fn opus_frames_survive_encryption_and_decode() {
        let (mut sealer, mut opener) = pair(3);
        let mut source = OpusToneSource::new(1000.0, 32_000).unwrap();
        let mut decoder = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono).unwrap();
        let mut wire = Vec::new();
        for i in 0..25u64 {
            let frame = source.next_frame().unwrap();
            let sent = sealer
                .seal(Stream::Audio, Codec::Opus, 0, &frame, i * 20_000, &mut wire)
                .unwrap();
            // The TOC byte stays readable for the SFU; the rest is ciphertext.
            assert_eq!(wire[0], frame[0]);
            assert!(wire.len() > frame.len() + PROBE_LEN);
            assert!(wire.len() <= frame.len() + overhead_bytes(SUITE));
            let (probe, opened) = opener
                .open(Instant::now(), Codec::Opus, &wire, i * 20_000 + 3_000)
                .unwrap();
            assert_eq!(probe, sent);
            assert_eq!(opened, &frame[..]);
            let mut pcm = vec![0i16; SAMPLES_PER_FRAME];
            assert_eq!(
                decoder.decode(opened, &mut pcm, false).unwrap(),
                SAMPLES_PER_FRAME
            );
        }
        let t = opener.stats().totals();
        assert_eq!((t.received, t.lost), (25, 0));
        assert_eq!(opener.first_frame_us(), Some(3_000));
        assert_eq!(opener.decrypt_failures(), 0);
    }

    #[test]
    fn vp8_clear_prefix_is_what_the_sfu_reads() {
        let (mut sealer, mut opener) = pair(9);
        let mut video = SimulcastSource::new(&CAMERA_LAYERS, 30, 90, 0, 4).unwrap();
        let mut wire = Vec::new();
        for _ in 0..3 {
            for (n, (layer, frame)) in video.next_frames().into_iter().enumerate() {
                sealer
                    .seal(
                        Stream::Camera,
                        Codec::Vp8,
                        1 + n as u8,
                        &frame.data,
                        0,
                        &mut wire,
                    )
                    .unwrap();
                let seen = Vp8Header::parse(&wire).unwrap();
                assert_eq!(seen.keyframe, frame.keyframe);
                if frame.keyframe {
                    assert_eq!(&wire[..10], &frame.data[..10]);
                    assert_eq!(seen.picture_size, Some((layer.width, layer.height)));
                } else {
                    assert_eq!(&wire[..3], &frame.data[..3]);
                }
                // Past the prefix the SFU sees ciphertext, not the frame.
                assert_ne!(&wire[10..40], &frame.data[10..40]);
                let (_, opened) = opener.open(Instant::now(), Codec::Vp8, &wire, 1).unwrap();
                assert_eq!(opened, &frame.data[..]);
            }
        }
        // Three probe streams (one per layer), three frames each.
        assert_eq!(opener.stats().streams().len(), 3);
        assert_eq!(opener.stats().totals().received, 9);
    }

    #[test]
    fn tampering_replay_and_unknown_keys_are_counted_not_measured() {
        let (mut sealer, mut opener) = pair(1);
        let mut wire = Vec::new();
        let frame = [0xfcu8, 1, 2, 3, 4, 5, 6, 7];
        sealer
            .seal(Stream::Audio, Codec::Opus, 0, &frame, 0, &mut wire)
            .unwrap();
        let now = Instant::now();
        for flip in [0usize, 5, wire.len() - 1] {
            let mut bad = wire.clone();
            bad[flip] ^= 0x01;
            assert!(
                opener.open(now, Codec::Opus, &bad, 0).is_err(),
                "flip {flip}"
            );
        }
        assert_eq!(opener.decrypt_failures(), 3);
        opener.open(now, Codec::Opus, &wire, 0).unwrap();
        assert!(matches!(
            opener.open(now, Codec::Opus, &wire, 0),
            Err(OpenError::Decrypt(ClientOpenError::Replay(
                ReceiveError::Replay(_)
            )))
        ));
        assert_eq!(opener.replays(), 1);
        let (mut stranger, _) = pair(2);
        stranger
            .seal(Stream::Audio, Codec::Opus, 0, &frame, 0, &mut wire)
            .unwrap();
        // A sender whose key this receiver never got: counted apart from forgeries.
        assert!(opener.open(now, Codec::Opus, &wire, 0).is_err());
        assert_eq!(opener.decrypt_failures(), 3);
        assert_eq!(opener.frames_without_key(), 1);
        assert_eq!(opener.stats().totals().received, 1);
    }

    #[test]
    fn a_frame_without_its_key_is_reported_for_the_key_policy_once_per_interval() {
        let (_, mut opener) = pair(1);
        let (mut stranger, _) = pair(7);
        let mut wire = Vec::new();
        let now = Instant::now();
        for i in 0..50u64 {
            stranger
                .seal(Stream::Audio, Codec::Opus, 0, &[0xfc; 20], i, &mut wire)
                .unwrap();
            assert!(opener.open(now, Codec::Opus, &wire, i).is_err());
        }
        assert_eq!(opener.frames_without_key(), 50);
        // Fifty frames, one report: the sender's slot and the frame's generation.
        let missing: Vec<MissingKey> = opener.take_missing_keys().collect();
        assert_eq!(
            missing,
            vec![MissingKey {
                slot: 7,
                generation: 0
            }]
        );
        assert!(!opener.has_missing_keys());
        // Within the interval: counted, not reported again; after it: reported again.
        stranger
            .seal(Stream::Audio, Codec::Opus, 0, &[0xfc; 20], 0, &mut wire)
            .unwrap();
        assert!(opener.open(now, Codec::Opus, &wire, 0).is_err());
        assert!(!opener.has_missing_keys());
        let later = now + MISSING_KEY_REPORT_EVERY;
        stranger
            .seal(Stream::Audio, Codec::Opus, 0, &[0xfc; 20], 0, &mut wire)
            .unwrap();
        assert!(opener.open(later, Codec::Opus, &wire, 0).is_err());
        assert_eq!(opener.take_missing_keys().count(), 1);
        // A forged frame is a decrypt failure, never a missing key.
        let (mut own, _) = pair(1);
        own.seal(Stream::Audio, Codec::Opus, 0, &[0xfc; 20], 0, &mut wire)
            .unwrap();
        let last = wire.len() - 1;
        wire[last] ^= 1;
        assert!(opener.open(later, Codec::Opus, &wire, 0).is_err());
        assert_eq!(opener.decrypt_failures(), 1);
        assert!(!opener.has_missing_keys());
    }

    #[test]
    fn truncated_wire_frames_are_errors_for_every_length() {
        let (mut sealer, mut opener) = pair(4);
        let mut wire = Vec::new();
        sealer
            .seal(Stream::Audio, Codec::Opus, 0, &[0xfc; 60], 0, &mut wire)
            .unwrap();
        for len in 0..wire.len() {
            assert!(
                opener
                    .open(Instant::now(), Codec::Opus, &wire[..len], 0)
                    .is_err()
            );
        }
        assert_eq!(opener.decrypt_failures(), wire.len() as u64);
    }
}
