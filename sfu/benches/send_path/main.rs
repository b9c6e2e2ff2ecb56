//! The send path: one RTP packet fanned out to N connected subscribers through the shard's real
//! path (rtc SRTP encryption, then the shard's UDP socket) against a plain UDP relay sending the
//! same bytes to the same loopback receivers in the same run.
//!
//! Both sides receive their work through the same kind of channel (the shard's command channel,
//! a plain relay task's channel) and end with the same kind of barrier, so the difference is what
//! the shard adds: `rtc`'s write pipeline and SRTP (AES-GCM or AES-CM+HMAC as negotiated).
//!
//! Receivers: each subscriber is a real `webrtc` client connected through a loopback relay; once
//! every subscriber is connected the relays stop forwarding and just read and discard, so both
//! sides pay the same receive cost. `cargo bench -p sfu --bench send_path`.

mod loopback;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use call_client::peer::Peer;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use loopback::{ConnectionsOnly, QuietableRelay, Shard};
use rtc::shared::marshal::Marshal;
use sfu::transport::{MediaKind, OutgoingTrack, PeerId, ShardHandle, TransportConfig};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

const PAYLOAD: usize = 1100;

struct Setup {
    sfu: ShardHandle<ConnectionsOnly>,
    subscribers: Vec<(PeerId, Bytes)>,
    plain: mpsc::Sender<PlainCommand>,
    plain_targets: Vec<(SocketAddr, Bytes)>,
    _keep: Vec<(Peer, QuietableRelay)>,
    _sfu: Shard,
}

enum PlainCommand {
    Send(SocketAddr, Bytes),
    Barrier(oneshot::Sender<()>),
}

/// The baseline: a task owning a plain UDP socket, sending what it is told.
async fn plain_relay() -> mpsc::Sender<PlainCommand> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (tx, mut rx) = mpsc::channel(1024);
    tokio::spawn(async move {
        while let Some(command) = rx.recv().await {
            match command {
                PlainCommand::Send(dest, bytes) => {
                    let _ = socket.try_send_to(&bytes, dest);
                }
                PlainCommand::Barrier(done) => {
                    let _ = done.send(());
                }
            }
        }
    });
    tx
}

fn rtp(ssrc: u32) -> Bytes {
    let packet = rtc::rtp::Packet {
        header: rtc::rtp::Header {
            version: 2,
            payload_type: 96,
            sequence_number: 1,
            timestamp: 90_000,
            ssrc,
            marker: true,
            ..Default::default()
        },
        payload: Bytes::from(vec![0x5a; PAYLOAD]),
    };
    packet.marshal().expect("packet marshals").freeze()
}

async fn setup(n: usize) -> Setup {
    // The relays stop forwarding consent checks once everyone is connected.
    let config = TransportConfig {
        consent_timeout: Duration::from_secs(3600),
        ..TransportConfig::loopback()
    };
    let mut sfu = Shard::start(config).await;
    let mut keep = Vec::new();
    let mut subscribers = Vec::new();
    let mut plain_targets = Vec::new();
    for i in 0..n {
        let ssrc = 0x1000 + i as u32;
        let (peer, client, relay) = sfu
            .connect_receiver(OutgoingTrack {
                kind: MediaKind::Video,
                ssrc,
                rtx_ssrc: None,
                stream_id: "bench".to_owned(),
                track_id: format!("bench-{i}"),
                mime_type: "video/VP8".to_owned(),
            })
            .await;
        let packet = rtp(ssrc);
        subscribers.push((peer, packet.clone()));
        plain_targets.push((relay.sfu_facing, packet));
        keep.push((client, relay));
    }
    for (_, relay) in &keep {
        relay.go_quiet();
    }
    Setup {
        sfu: sfu.handle.clone(),
        subscribers,
        plain: plain_relay().await,
        plain_targets,
        _keep: keep,
        _sfu: sfu,
    }
}

fn send_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("fanout_1100B");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for n in [1usize, 10] {
        let setup = rt.block_on(setup(n));
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("sfu_srtp", n), &n, |b, _| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        for (peer, packet) in &setup.subscribers {
                            setup.sfu.send_rtp(*peer, packet.clone()).await.unwrap();
                        }
                    }
                    // Commands run in order, each pass flushed before the next command: when
                    // stats answers, every packet above has been handed to the socket.
                    setup.sfu.stats().await.unwrap();
                    start.elapsed()
                })
            })
        });
        group.bench_with_input(BenchmarkId::new("plain_udp_relay", n), &n, |b, _| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        for (dest, packet) in &setup.plain_targets {
                            setup
                                .plain
                                .send(PlainCommand::Send(*dest, packet.clone()))
                                .await
                                .unwrap();
                        }
                    }
                    let (tx, rx) = oneshot::channel();
                    setup.plain.send(PlainCommand::Barrier(tx)).await.unwrap();
                    rx.await.unwrap();
                    start.elapsed()
                })
            })
        });
        let stats = rt.block_on(setup.sfu.stats()).unwrap();
        assert_eq!(
            stats.send_queue_full, 0,
            "no packet was dropped for a full queue"
        );
        assert_eq!(stats.send_unvalidated_destination, 0);
    }
    group.finish();
}

criterion_group!(benches, send_path);
criterion_main!(benches);
