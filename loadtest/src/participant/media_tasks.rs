//! The participant's media tasks: the publisher (Opus tone and VP8-shaped frames, sealed with
//! SFrame, packetized into RTP) and the receiver (reassembly, decryption, measurement).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use call_client::media::{Vp8Packetizer, Vp8Reassembler};
use call_client::peer::{Incoming, LocalTrack, RtpCodecKind};
use e2ee_frames::{Codec, Stream};
use tokio::sync::{mpsc, watch};

use super::send_gate::SendGate;
use super::{
    LiveCounters, ParticipantSpec, Role, SCREEN_FPS, SCREEN_LAYER, SharedOpener, SharedSealer,
    lock, stopped,
};
use crate::media::opus_tone::OpusToneSource;
use crate::media::vp8_frames::{CAMERA_FPS, CAMERA_LAYERS, SimulcastLayer, SimulcastSource};
use crate::probe::PROBE_LEN;

/// Seconds between periodic keyframes. Short because the publisher does not answer PLI yet
/// (the `webrtc` crate delivers RTCP to the application only through a custom interceptor):
/// a new subscriber's video starts at the next periodic keyframe.
const KEYFRAME_INTERVAL_S: u32 = 1;

/// Decrypts and measures every frame that arrives; returns the VP8 frames lost to missing
/// packets when the channel closes (or counts them until aborted).
pub(super) async fn receive_media(
    mut incoming: mpsc::UnboundedReceiver<Incoming>,
    opener: SharedOpener,
    epoch: Instant,
    counters: Arc<LiveCounters>,
) -> u64 {
    let mut video: HashMap<u32, Vp8Reassembler> = HashMap::new();
    let mut broken = 0;
    while let Some(Incoming { kind, packet, .. }) = incoming.recv().await {
        let arrival_us = epoch.elapsed().as_micros() as u64;
        let now = Instant::now();
        // Frames this packet let decrypt: a late packet can complete several.
        let opened: u64 = if kind == RtpCodecKind::Audio {
            u64::from(
                lock(&opener)
                    .open(now, Codec::Opus, &packet.payload, arrival_us)
                    .is_ok(),
            )
        } else {
            let r = video.entry(packet.header.ssrc).or_default();
            let before = r.counts().incomplete_frames;
            let pushed = r.push(
                packet.header.sequence_number,
                packet.header.timestamp,
                packet.header.marker,
                &packet.payload,
            );
            let mut opened = 0;
            if pushed.is_ok() {
                let mut opener = lock(&opener);
                while let Some(frame) = r.next_frame() {
                    opened +=
                        u64::from(opener.open(now, Codec::Vp8, frame.data, arrival_us).is_ok());
                }
            }
            broken += r.counts().incomplete_frames - before;
            opened
        };
        if opened > 0 {
            counters
                .frames_decrypted
                .fetch_add(opened, Ordering::Relaxed);
        }
    }
    broken
}

/// How often a held track that the SFU has not published yet gets a padding probe again (the
/// first one goes at once; on a lossy path one may be lost).
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// Publishes until `stop`: Opus every 20 ms, each video layer at its frame rate, each track only
/// while `gate` has it open (strict recording: a held track makes no frame, so its video starts
/// with the generator's first frame, a keyframe). A held track not published yet gets one
/// padding-only packet per layer every [`PROBE_EVERY`]. Returns the frames sent.
pub(super) async fn publish_media(
    spec: ParticipantSpec,
    sealer: SharedSealer,
    mut tracks: Vec<LocalTrack>,
    counters: Arc<LiveCounters>,
    gate: watch::Receiver<SendGate>,
    mut stop: watch::Receiver<bool>,
) -> u64 {
    let mut sent = 0u64;
    let Ok(mut tone) = OpusToneSource::new(440.0, 32_000) else {
        return 0;
    };
    let (layers, fps): (Vec<SimulcastLayer>, u32) = match spec.role {
        Role::Caller => (CAMERA_LAYERS.to_vec(), CAMERA_FPS),
        _ => (vec![SCREEN_LAYER], SCREEN_FPS),
    };
    let Ok(mut video) = SimulcastSource::new(
        &layers,
        fps,
        fps * KEYFRAME_INTERVAL_S,
        PROBE_LEN,
        spec.seed ^ u64::from(spec.index),
    ) else {
        return 0;
    };
    let mut packetizers: Vec<Vp8Packetizer> = (0..layers.len())
        .map(|i| Vp8Packetizer::new(spec.index.wrapping_mul(97).wrapping_add(i as u16)))
        .collect();
    let mut audio_tick = tokio::time::interval(Duration::from_millis(20));
    let mut video_tick = tokio::time::interval(Duration::from_micros(1_000_000 / u64::from(fps)));
    let mut probe_tick = tokio::time::interval(PROBE_EVERY);
    audio_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    video_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    probe_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (mut audio_n, mut video_n) = (0u32, 0u32);
    let mut wire = Vec::new();
    let mut payloads = Vec::new();
    let [audio_track, video_track] = &mut tracks[..] else {
        return 0;
    };
    loop {
        tokio::select! {
            _ = probe_tick.tick() => {
                let now = *gate.borrow();
                if now.audio.wants_probe() {
                    let _ = audio_track.write_padding(0, 0).await;
                }
                if now.video.wants_probe() {
                    for layer in 0..layers.len() {
                        let _ = video_track.write_padding(layer, 0).await;
                    }
                }
            }
            _ = audio_tick.tick() => {
                if !gate.borrow().audio.is_open() {
                    continue;
                }
                let Ok(frame) = tone.next_frame() else { break };
                let t = spec.epoch.elapsed().as_micros() as u64;
                let Ok(probe) = lock(&sealer).seal(Stream::Audio, Codec::Opus, 0, &frame, t, &mut wire) else {
                    continue;
                };
                counters.sent_streams.record(&probe);
                audio_n = audio_n.wrapping_add(1);
                if audio_track
                    .write(0, audio_n.wrapping_mul(960), true, bytes::Bytes::copy_from_slice(&wire))
                    .await
                    .is_ok()
                {
                    sent += 1;
                    counters.frames_sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ = video_tick.tick() => {
                if !gate.borrow().video.is_open() {
                    continue;
                }
                video_n = video_n.wrapping_add(1);
                let ts = video_n.wrapping_mul(90_000 / fps);
                let stream = if spec.role == Role::Caller { Stream::Camera } else { Stream::ScreenVideo };
                for (i, (_, frame)) in video.next_frames().into_iter().enumerate() {
                    let t = spec.epoch.elapsed().as_micros() as u64;
                    let Ok(probe) = lock(&sealer)
                        .seal(stream, Codec::Vp8, 1 + i as u8, &frame.data, t, &mut wire)
                    else {
                        continue;
                    };
                    counters.sent_streams.record(&probe);
                    packetizers[i].packetize(&wire, &mut payloads);
                    let last = payloads.len().saturating_sub(1);
                    let mut ok = true;
                    for (n, p) in payloads.drain(..).enumerate() {
                        ok &= video_track.write(i, ts, n == last, p).await.is_ok();
                    }
                    if ok {
                        sent += 1;
                        counters.frames_sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            _ = stopped(&mut stop) => break,
        }
    }
    sent
}
