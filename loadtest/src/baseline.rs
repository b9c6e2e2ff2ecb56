//! The baseline: the same packet stream a publisher sends in the scenarios, fanned out to N
//! receivers by the simplest possible relay, so an SFU's cost per forwarded packet has a floor
//! to be compared with.
//!
//! A publisher thread sends real Opus frames (20 ms) and a VP8-shaped camera stream (one
//! simulcast layer, the one a subscriber receives), each frame SFrame-encrypted with its
//! [`Probe`] inside as a participant's are ([`FrameSealer`]), packetized into RTP exactly as a
//! WebRTC stack does (VP8 payload descriptor, 1200-byte packets). A relay thread receives each
//! packet on one UDP socket and sends it to every receiver with one `send_to` per receiver (no
//! batching, no encryption, no per-subscriber state); it measures its own CPU time with the
//! thread CPU clock. The receivers do what a viewer of the scenarios does with a packet after
//! SRTP: reassemble VP8 frames, SFrame-decrypt **every** frame and check its probe (latency,
//! loss, jitter); their thread's CPU time is the load generator's receive cost without a
//! WebRTC transport (there is none to a plain relay: no ICE, DTLS or SRTP). With an
//! impairment, the publisher's packets cross an [`ImpairmentRelay`] before the relay.
//! Everything is on 127.0.0.1 and stops by itself after the configured duration.

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use call_client::media::{Codec, Vp8Packetizer};
use e2ee_frames::{BaseKey, CipherSuite, Sender, Stream};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use sfu_forwarding::rtp::RtpPacket;
use shared::marshal::Marshal;
use thiserror::Error;

use crate::impairment::{Impairment, ImpairmentRelay, RelayConfig, RelayError, RelayStats};
use crate::media::opus_tone::{FRAME_MS, OpusSourceError, OpusToneSource};
use crate::media::vp8_frames::{Vp8Config, Vp8ConfigError, Vp8FrameGenerator};
use crate::process_usage::{ProcessUsageError, thread_cpu_time};
use crate::receiver_stats::StatsTotals;
use crate::secure_media::{FrameSealer, SealError};
use crate::viewer_engine::{MediaReceiver, RECV_BATCH, RecvBatch, RtpView};

/// RTP packets are at most this long, as WebRTC stacks send them.
pub const RTP_MTU: usize = 1200;

/// Size of the fixed RTP header (no CSRCs, no extensions).
const RTP_HEADER_LEN: usize = 12;

/// Most receivers a baseline run accepts.
pub const MAX_RECEIVERS: usize = 1000;

/// Longest baseline run accepted.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// Probe stream numbers used by the baseline publisher.
const AUDIO_STREAM: u8 = 0;
const VIDEO_STREAM: u8 = 1;

/// RTP payload types of the publisher's audio and video.
const AUDIO_PT: u8 = 111;
const VIDEO_PT: u8 = 96;

/// The SFrame suite the baseline's frames are sealed with (the participants' default).
const SUITE: CipherSuite = CipherSuite::Aes256GcmSha512_128;

/// The publisher's slot (its KID's sender part) and key generation.
const PUBLISHER_SLOT: u16 = 0;
const GENERATION: u16 = 1;

/// What a baseline run sends and to how many receivers.
#[derive(Debug, Clone)]
pub struct BaselineConfig {
    /// Receivers each packet is fanned out to.
    pub receivers: usize,
    /// How long the publisher sends.
    pub duration: Duration,
    /// Bitrate of the video layer (0 for audio only).
    pub video_bitrate_bps: u32,
    /// Whether the publisher sends Opus audio too.
    pub audio: bool,
    /// Impairment between the publisher and the relay.
    pub impairment: Option<Impairment>,
    /// Seed of the frame generator and the impairment.
    pub seed: u64,
}

impl Default for BaselineConfig {
    /// 50 receivers for 10 s, audio plus the 1.7 Mb/s top camera layer, no impairment.
    fn default() -> Self {
        BaselineConfig {
            receivers: 50,
            duration: Duration::from_secs(10),
            video_bitrate_bps: 1_700_000,
            audio: true,
            impairment: None,
            seed: 1,
        }
    }
}

/// What a baseline run measured.
#[derive(Debug, Clone)]
pub struct BaselineOutcome {
    /// Wall-clock seconds the publisher sent for.
    pub measured_s: f64,
    /// RTP packets the publisher sent.
    pub packets_sent: u64,
    /// Packets the relay received.
    pub relay_packets_in: u64,
    /// Packets the relay sent (received × receivers).
    pub relay_packets_out: u64,
    /// CPU seconds of the relay thread.
    pub relay_cpu_seconds: f64,
    /// Receivers that decrypted at least one frame.
    pub receivers_reached: u64,
    /// Latency, loss and jitter of the decrypted frames over all receivers.
    pub totals: StatsTotals,
    /// RTP packets the receivers read (every one reassembled into its frame).
    pub receiver_packets: u64,
    /// Frames the receivers decrypted and whose probe they checked.
    pub frames_decrypted: u64,
    /// Frames that did not decrypt or carried no valid probe.
    pub decrypt_failures: u64,
    /// CPU seconds of the receivers' thread (reading, reassembly, SFrame, measurement).
    pub receiver_cpu_seconds: f64,
    /// Counters of the impairment relay, when there was one.
    pub impairment: Option<RelayStats>,
}

/// Progress of a running baseline, passed to the caller's callback about ten times a second.
#[derive(Debug, Clone, Copy)]
pub struct BaselineProgress {
    /// Time since the publisher started.
    pub elapsed: Duration,
    /// The configured duration.
    pub duration: Duration,
    /// Packets the relay has sent so far.
    pub relayed: u64,
}

/// Why a baseline run failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BaselineError {
    /// Receivers or duration out of range.
    #[error("invalid baseline configuration: {0}")]
    Config(&'static str),
    /// A socket or thread could not be set up.
    #[error("baseline I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The Opus encoder failed.
    #[error(transparent)]
    Opus(#[from] OpusSourceError),
    /// The video generator refused its configuration.
    #[error(transparent)]
    Video(#[from] Vp8ConfigError),
    /// The impairment relay failed to start.
    #[error(transparent)]
    Impairment(#[from] RelayError),
    /// The relay could not read its CPU clock.
    #[error(transparent)]
    Cpu(#[from] ProcessUsageError),
    /// RTP packetization failed.
    #[error("RTP packetization: {0}")]
    Rtp(String),
    /// SFrame refused to seal a frame.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The SFrame key could not be set up.
    #[error("SFrame key: {0}")]
    Key(String),
    /// A worker thread panicked.
    #[error("baseline {0} thread panicked")]
    Panicked(&'static str),
}

/// Runs the baseline, calling `progress` about every 100 ms, and returns what it measured.
pub fn run_baseline(
    config: &BaselineConfig,
    progress: &mut dyn FnMut(BaselineProgress),
) -> Result<BaselineOutcome, BaselineError> {
    if config.receivers == 0 || config.receivers > MAX_RECEIVERS {
        return Err(BaselineError::Config("receivers must be 1..=1000"));
    }
    if config.duration.is_zero() || config.duration > MAX_DURATION {
        return Err(BaselineError::Config("duration must be 1 ms..=1 h"));
    }
    if !config.audio && config.video_bitrate_bps == 0 {
        return Err(BaselineError::Config(
            "nothing to send: no audio and no video",
        ));
    }
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let epoch = Instant::now();
    let key = BaseKey::random(&mut rand::rng());

    // Receivers first, so the relay knows where to send.
    let receivers = Receivers::start(config.receivers, epoch, &key)?;

    // The relay.
    let relay_socket = StdUdpSocket::bind(loopback)?;
    relay_socket.set_read_timeout(Some(Duration::from_millis(20)))?;
    let relay_addr = relay_socket.local_addr()?;
    let relay_stop = Arc::new(AtomicBool::new(false));
    let relayed = Arc::new(AtomicU64::new(0));
    let relay = {
        let stop = Arc::clone(&relay_stop);
        let relayed = Arc::clone(&relayed);
        let targets = receivers.addrs.clone();
        std::thread::Builder::new()
            .name("baseline-relay".into())
            .spawn(move || relay_loop(&relay_socket, &targets, &stop, &relayed))?
    };

    // Optional impaired link in front of the relay.
    let impairment = match config.impairment {
        Some(imp) if !imp.is_none() => {
            let mut rc = RelayConfig::symmetric(relay_addr, imp);
            rc.to_client = Impairment::default();
            rc.seed = config.seed;
            rc.lifetime = config.duration + Duration::from_secs(30);
            Some(ImpairmentRelay::start(rc)?)
        }
        _ => None,
    };
    let publish_to = impairment
        .as_ref()
        .map_or(relay_addr, ImpairmentRelay::local_addr);

    // The publisher.
    let publisher = {
        let config = config.clone();
        let sender = Sender::new(SUITE, PUBLISHER_SLOT, GENERATION, key)
            .map_err(|e| BaselineError::Key(e.to_string()))?;
        let sealer = FrameSealer::new(sender, PUBLISHER_SLOT);
        std::thread::Builder::new()
            .name("baseline-publisher".into())
            .spawn(move || publish(&config, sealer, publish_to, epoch))?
    };

    let started = Instant::now();
    while !publisher.is_finished() {
        progress(BaselineProgress {
            elapsed: started.elapsed().min(config.duration),
            duration: config.duration,
            relayed: relayed.load(Ordering::Relaxed),
        });
        std::thread::sleep(Duration::from_millis(100));
    }
    let measured_s = started.elapsed().as_secs_f64();
    let packets_sent = publisher
        .join()
        .map_err(|_| BaselineError::Panicked("publisher"))??;

    // Let packets in flight (including the impairment's delay line) arrive.
    let drain = config
        .impairment
        .map_or(Duration::ZERO, |i| i.delay + i.jitter)
        + Duration::from_millis(200);
    std::thread::sleep(drain);
    let impairment = impairment.map(ImpairmentRelay::stop);
    relay_stop.store(true, Ordering::Relaxed);
    let (relay_in, relay_out, relay_cpu) = relay
        .join()
        .map_err(|_| BaselineError::Panicked("relay"))??;
    let (per_receiver, receiver_cpu) = receivers.stop()?;
    progress(BaselineProgress {
        elapsed: config.duration,
        duration: config.duration,
        relayed: relay_out,
    });

    let mut totals = StatsTotals::default();
    let (mut reached, mut receiver_packets, mut frames_decrypted, mut decrypt_failures) =
        (0, 0, 0, 0);
    for media in &per_receiver {
        let t = media.opener.stats().totals();
        if t.received > 0 {
            reached += 1;
        }
        totals.merge(&t);
        receiver_packets += media.packets;
        frames_decrypted += media.frames_decrypted;
        decrypt_failures += media.opener.decrypt_failures() + media.opener.probe_failures();
    }
    Ok(BaselineOutcome {
        measured_s,
        packets_sent,
        relay_packets_in: relay_in,
        relay_packets_out: relay_out,
        relay_cpu_seconds: relay_cpu.as_secs_f64(),
        receivers_reached: reached,
        totals,
        receiver_packets,
        frames_decrypted,
        decrypt_failures,
        receiver_cpu_seconds: receiver_cpu.as_secs_f64(),
        impairment,
    })
}

/// The relay: receive one packet, send it to every receiver. Returns packets in, packets out
/// and the thread's CPU time spent in the loop.
fn relay_loop(
    socket: &StdUdpSocket,
    targets: &[SocketAddr],
    stop: &AtomicBool,
    relayed: &AtomicU64,
) -> Result<(u64, u64, Duration), BaselineError> {
    let cpu_start = thread_cpu_time()?;
    let mut buf = [0u8; 2048];
    let (mut packets_in, mut packets_out) = (0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        let len = match socket.recv(&mut buf) {
            Ok(len) => len,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        packets_in += 1;
        for target in targets {
            // A full receive buffer at one receiver is that receiver's loss, not the relay's
            // failure: keep serving the others.
            if socket.send_to(&buf[..len], target).is_ok() {
                packets_out += 1;
            }
        }
        relayed.store(packets_out, Ordering::Relaxed);
    }
    let cpu = thread_cpu_time()?.saturating_sub(cpu_start);
    Ok((packets_in, packets_out, cpu))
}

/// Builds RTP packets and sends them to one address.
struct RtpSender {
    socket: StdUdpSocket,
    ssrc: u32,
    payload_type: u8,
    seq: u16,
    sent: u64,
}

impl RtpSender {
    fn new(socket: StdUdpSocket, ssrc: u32, payload_type: u8) -> Self {
        RtpSender {
            socket,
            ssrc,
            payload_type,
            seq: 0,
            sent: 0,
        }
    }

    fn send(&mut self, payload: &[u8], timestamp: u32, marker: bool) -> Result<(), BaselineError> {
        let packet = rtp::Packet {
            header: rtp::Header {
                version: 2,
                marker,
                payload_type: self.payload_type,
                sequence_number: self.seq,
                timestamp,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(payload),
        };
        let wire = packet
            .marshal()
            .map_err(|e| BaselineError::Rtp(e.to_string()))?;
        // Loopback UDP only fails on a full socket buffer; that packet is lost like on a
        // real network and the receivers count it.
        let _ = self.socket.send(&wire);
        self.seq = self.seq.wrapping_add(1);
        self.sent += 1;
        Ok(())
    }
}

/// The publisher: audio every 20 ms, video every 1/30 s, each frame sealed with its probe,
/// until the duration is over.
fn publish(
    config: &BaselineConfig,
    mut sealer: FrameSealer,
    to: SocketAddr,
    epoch: Instant,
) -> Result<u64, BaselineError> {
    let socket = || -> std::io::Result<StdUdpSocket> {
        let s = StdUdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        s.connect(to)?;
        Ok(s)
    };
    let mut audio = if config.audio {
        Some((
            OpusToneSource::new(440.0, 32_000)?,
            RtpSender::new(socket()?, 0x1111_0001, AUDIO_PT),
        ))
    } else {
        None
    };
    let mut video = if config.video_bitrate_bps > 0 {
        let generator = Vp8FrameGenerator::new(Vp8Config {
            width: 1280,
            height: 720,
            fps: 30,
            bitrate_bps: config.video_bitrate_bps,
            keyframe_interval: 300,
            keyframe_factor: 6.0,
            trailer_len: 0,
            seed: config.seed,
        })?;
        Some((
            generator,
            Vp8Packetizer::with_max_payload(0, RTP_MTU - RTP_HEADER_LEN),
            Vec::new(),
            RtpSender::new(socket()?, 0x2222_0002, VIDEO_PT),
        ))
    } else {
        None
    };

    let mut sealed = Vec::new();
    let start = Instant::now();
    let end = start + config.duration;
    let audio_interval = Duration::from_millis(u64::from(FRAME_MS));
    let video_interval = Duration::from_secs(1) / 30;
    let (mut next_audio, mut next_video) = (start, start);
    let (mut audio_frames, mut video_frames) = (0u32, 0u32);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if let Some((source, sender)) = audio.as_mut()
            && now >= next_audio
        {
            let frame = source.next_frame()?;
            let ts = audio_frames.wrapping_mul(48_000 / 1000 * FRAME_MS);
            let now_us = epoch.elapsed().as_micros() as u64;
            sealer.seal(
                Stream::Audio,
                Codec::Opus,
                AUDIO_STREAM,
                &frame,
                now_us,
                &mut sealed,
            )?;
            sender.send(&sealed, ts, false)?;
            audio_frames += 1;
            next_audio += audio_interval;
        }
        if let Some((generator, packetizer, chunks, sender)) = video.as_mut()
            && now >= next_video
        {
            let frame = generator.next_frame();
            let now_us = epoch.elapsed().as_micros() as u64;
            sealer.seal(
                Stream::Camera,
                Codec::Vp8,
                VIDEO_STREAM,
                &frame.data,
                now_us,
                &mut sealed,
            )?;
            packetizer.packetize(&sealed, chunks);
            let ts = video_frames.wrapping_mul(90_000 / 30);
            let last = chunks.len().saturating_sub(1);
            for (i, chunk) in chunks.iter().enumerate() {
                sender.send(chunk, ts, i == last)?;
            }
            video_frames += 1;
            next_video += video_interval;
        }
        let mut next = end;
        if audio.is_some() {
            next = next.min(next_audio);
        }
        if video.is_some() {
            next = next.min(next_video);
        }
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let sent = audio.map_or(0, |(_, s)| s.sent) + video.map_or(0, |(_, _, _, s)| s.sent);
    Ok(sent)
}

/// The receivers: one socket each, all served by one thread the way the viewer engine serves
/// its viewers (one level-triggered `epoll` for every socket, each ready socket read with
/// `recvmmsg`, no task or channel per packet), each holding the publisher's key as a viewer
/// does.
struct Receivers {
    addrs: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<(Vec<MediaReceiver>, Duration), BaselineError>>,
}

impl Receivers {
    fn start(n: usize, epoch: Instant, key: &BaseKey) -> Result<Self, BaselineError> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(std::io::Error::from)?;
        let mut receivers = Vec::with_capacity(n);
        let mut addrs = Vec::with_capacity(n);
        for i in 0..n {
            let s = StdUdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
            s.set_nonblocking(true)?;
            addrs.push(s.local_addr()?);
            epoll
                .add(s.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, i as u64))
                .map_err(std::io::Error::from)?;
            let mut media = MediaReceiver::default();
            media
                .opener
                .keys_mut()
                .install(
                    Instant::now(),
                    PUBLISHER_SLOT,
                    GENERATION,
                    0,
                    SUITE,
                    key.clone(),
                )
                .map_err(|e| BaselineError::Key(e.to_string()))?;
            receivers.push((s, media));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("baseline-receivers".into())
                .spawn(move || receive_loop(&epoll, receivers, epoch, &stop))?
        };
        Ok(Receivers {
            addrs,
            stop,
            thread,
        })
    }

    /// Stops the receivers; returns what each received and the thread's CPU time.
    fn stop(self) -> Result<(Vec<MediaReceiver>, Duration), BaselineError> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| BaselineError::Panicked("receivers"))?
    }
}

/// Epoll events taken per wait.
const EVENTS_PER_WAIT: usize = 64;

/// The receivers' loop until `stop`: every datagram parsed, reassembled into its frame, every
/// frame SFrame-opened and its probe measured ([`MediaReceiver`], as a sans-IO viewer does after
/// SRTP). Returns what each receiver got and the loop's CPU time.
fn receive_loop(
    epoll: &Epoll,
    mut receivers: Vec<(StdUdpSocket, MediaReceiver)>,
    epoch: Instant,
    stop: &AtomicBool,
) -> Result<(Vec<MediaReceiver>, Duration), BaselineError> {
    let cpu_start = thread_cpu_time()?;
    let mut events = vec![EpollEvent::empty(); EVENTS_PER_WAIT];
    let mut batch = RecvBatch::new();
    while !stop.load(Ordering::Relaxed) {
        let ready = match epoll.wait(&mut events, EpollTimeout::from(20u16)) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(std::io::Error::from(e).into()),
        };
        for event in &events[..ready] {
            let Some((socket, media)) = receivers.get_mut(event.data() as usize) else {
                continue;
            };
            loop {
                let n = batch.read(socket)?;
                let now = Instant::now();
                let arrival_us = epoch.elapsed().as_micros() as u64;
                for i in 0..n {
                    // Anything that is not RTP of the publisher's two payload types is ignored.
                    // Parsed in the receive buffer: no copy before reassembly.
                    let Ok(packet) = RtpPacket::parse(batch.datagram(i)) else {
                        continue;
                    };
                    let kind = match packet.payload_type {
                        AUDIO_PT => RtpCodecKind::Audio,
                        VIDEO_PT => RtpCodecKind::Video,
                        _ => continue,
                    };
                    media.on_rtp(kind, RtpView::from(&packet), now, arrival_us);
                }
                // Fewer than a full batch: the socket is drained (level-triggered: a datagram
                // that arrives now wakes the next wait).
                if n < RECV_BATCH {
                    break;
                }
            }
        }
    }
    let cpu = thread_cpu_time()?.saturating_sub(cpu_start);
    Ok((receivers.into_iter().map(|(_, media)| media).collect(), cpu))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_out_of_range_configs() {
        let mut noop = |_: BaselineProgress| {};
        for config in [
            BaselineConfig {
                receivers: 0,
                ..BaselineConfig::default()
            },
            BaselineConfig {
                receivers: MAX_RECEIVERS + 1,
                ..BaselineConfig::default()
            },
            BaselineConfig {
                duration: Duration::ZERO,
                ..BaselineConfig::default()
            },
            BaselineConfig {
                audio: false,
                video_bitrate_bps: 0,
                ..BaselineConfig::default()
            },
        ] {
            assert!(matches!(
                run_baseline(&config, &mut noop),
                Err(BaselineError::Config(_))
            ));
        }
    }

    #[test]
    fn short_run_relays_every_packet_to_every_receiver_which_decrypts_every_frame() {
        let config = BaselineConfig {
            receivers: 5,
            duration: Duration::from_millis(600),
            video_bitrate_bps: 500_000,
            ..BaselineConfig::default()
        };
        let mut ticks = 0;
        let out = run_baseline(&config, &mut |_| ticks += 1).unwrap();
        assert!(ticks >= 2);
        // 30 audio frames and ~18 video frames of several packets each.
        assert!(out.packets_sent >= 40, "{out:?}");
        assert_eq!(out.relay_packets_in, out.packets_sent);
        assert_eq!(out.relay_packets_out, out.packets_sent * 5);
        assert_eq!(out.receivers_reached, 5);
        assert_eq!(out.receiver_packets, out.packets_sent * 5);
        // Every frame decrypted and measured: one probe per frame.
        assert_eq!(out.decrypt_failures, 0, "{out:?}");
        assert_eq!(out.totals.received, out.frames_decrypted);
        assert!(out.frames_decrypted >= 5 * 40, "{out:?}");
        assert_eq!(out.totals.lost, 0);
        assert!(out.relay_cpu_seconds > 0.0);
        assert!(out.receiver_cpu_seconds > 0.0);
        assert!(out.totals.latency.p99_ms().unwrap() < 500.0);
    }
}
