//! Arrival times are the kernel's receive times, not the times the shard reads the datagrams: a
//! publisher sends a burst of RTP packets a few milliseconds apart while the shard is stalled
//! (its media handler sleeps inside a callback, as a shard waiting for a CPU would); the shard
//! reads the whole burst late, in one batch, and still hands each packet to the handler with
//! the time it arrived. That `now` is the arrival time the forwarding core reports in its
//! transport-wide CC feedback, so a browser's probe burst read late keeps its receive rate.

use crate::common;

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::common::peers::publisher;
use crate::common::{Observed, TestSfu, loopback_config};
use sfu::transport::{MediaHandler, Outbox, PeerId, start_shard};

/// First payload byte of the packet whose delivery stalls the shard.
const STALL_MARKER: u8 = 0xEE;
/// First payload byte of the packets that show the stream flows before the burst.
const WARM_MARKER: u8 = 0xDD;
/// How long the shard stalls: far longer than the burst takes to send (a debug `webrtc` client on
/// a loaded 2-core host took 460 ms for it).
const STALL: Duration = Duration::from_secs(3);
/// Packets in the burst (markers 0..BURST) and the pause between two of them.
const BURST: u8 = 10;
const SPACING: Duration = Duration::from_millis(6);

/// One RTP packet as the handler saw it.
#[derive(Debug, Clone, Copy)]
struct Delivery {
    marker: u8,
    /// The `now` the shard passed with it: the packet's arrival time.
    arrival: Instant,
    /// When the handler was called.
    handled: Instant,
}

/// Reports peer events to [`TestSfu`] and every RTP packet's arrival to the test; sleeps for
/// [`STALL`] on the stall marker's packet, holding the shard's task (and thread).
struct StallingRecorder {
    observed: mpsc::UnboundedSender<Observed>,
    deliveries: mpsc::UnboundedSender<Delivery>,
}

impl MediaHandler for StallingRecorder {
    fn on_peer_event(&mut self, event: sfu::transport::PeerEvent, _out: &mut Outbox<'_>) {
        let _ = self.observed.send(Observed::Event(event));
    }

    fn on_rtp(&mut self, _peer: PeerId, rtp: &[u8], now: Instant, _out: &mut Outbox<'_>) {
        let Some(&marker) = rtp.get(payload_offset(rtp)) else {
            return;
        };
        let _ = self.deliveries.send(Delivery {
            marker,
            arrival: now,
            handled: Instant::now(),
        });
        if marker == STALL_MARKER {
            std::thread::sleep(STALL);
        }
    }

    fn on_rtcp(&mut self, _peer: PeerId, _rtcp: &[u8], _now: Instant, _out: &mut Outbox<'_>) {}
}

/// Where the payload of an RTP packet without CSRCs starts (after its extensions, if any).
fn payload_offset(rtp: &[u8]) -> usize {
    let mut offset = 12;
    if rtp.first().is_some_and(|b| b & 0x10 != 0)
        && let Some(words) = rtp.get(14..16)
    {
        offset += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    offset
}

/// The next delivery with `marker`, skipping others; panics after `limit`.
async fn delivery(
    deliveries: &mut mpsc::UnboundedReceiver<Delivery>,
    marker: u8,
    limit: Duration,
) -> Delivery {
    tokio::time::timeout(limit, async {
        loop {
            let d = deliveries.recv().await.expect("the shard runs");
            if d.marker == marker {
                return d;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("packet {marker:#x} not delivered within {limit:?}"))
}

#[test]
fn arrival_times_are_kernel_receive_times_not_read_times() {
    common::init_tracing();
    // The shard on a runtime (and thread) of its own, so that stalling it stalls nothing of
    // the publisher's.
    let shard_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("shard runtime builds");
    let test_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("test runtime builds");
    test_runtime.block_on(async {
        let (observed_tx, observed) = mpsc::unbounded_channel();
        let (deliveries_tx, mut deliveries) = mpsc::unbounded_channel();
        let handler = StallingRecorder {
            observed: observed_tx,
            deliveries: deliveries_tx,
        };
        let handle = shard_runtime
            .spawn(start_shard(loopback_config(), handler))
            .await
            .expect("shard start joined")
            .expect("shard starts");
        let mut sfu = TestSfu {
            handle,
            observed,
            routes: std::sync::mpsc::channel().0,
        };
        let (publisher, mut video) = publisher().await;
        sfu.connect(&publisher, vec![]).await;

        // The stream flows: packets are delivered (SRTP keys in place on both sides).
        let warm = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                video.write_next(&[WARM_MARKER]).await.expect("rtp written");
                if let Ok(Some(_)) =
                    tokio::time::timeout(Duration::from_millis(50), deliveries.recv()).await
                {
                    return;
                }
            }
        })
        .await;
        assert!(warm.is_ok(), "no packet delivered before the burst");

        // Stall the shard, then send the burst while it cannot read.
        video
            .write_next(&[STALL_MARKER])
            .await
            .expect("rtp written");
        let stall = delivery(&mut deliveries, STALL_MARKER, Duration::from_secs(5)).await;
        let mut sent = Vec::new();
        for marker in 0..BURST {
            let before = Instant::now();
            video.write_next(&[marker]).await.expect("rtp written");
            // `write_next` returns once the datagram is handed to the kernel, which on
            // loopback stamps it inside that send.
            sent.push((before, Instant::now()));
            tokio::time::sleep(SPACING).await;
        }
        let sent_all = Instant::now();
        let stall_end = stall.handled + STALL;
        assert!(
            sent_all < stall_end,
            "the burst was sent within the stall ({:?} after it began)",
            sent_all - stall.handled
        );
        let mut burst = Vec::new();
        for marker in 0..BURST {
            burst.push(delivery(&mut deliveries, marker, Duration::from_secs(5)).await);
        }

        let read_spread = burst[burst.len() - 1].handled - burst[0].handled;
        let arrival_spread = burst[burst.len() - 1].arrival - burst[0].arrival;
        let send_spread = sent[sent.len() - 1].0 - sent[0].0;
        let figures = format!(
            "sent over {send_spread:?}, arrivals over {arrival_spread:?}, read over \
             {read_spread:?}; arrivals after the stall began: {:?}",
            burst
                .iter()
                .map(|d| d.arrival.saturating_duration_since(stall.handled))
                .collect::<Vec<_>>()
        );
        // The burst was read late: none of it before the stall ended.
        assert!(
            burst.iter().all(|d| d.handled >= stall_end),
            "read during the stall: {figures}"
        );
        // Yet each packet's arrival is its receive, during the stall, while it was being sent
        // (the kernel's clock is paired with the shard's by two reads in a row: allow 2 ms).
        let slack = Duration::from_millis(2);
        for (d, (before, after)) in burst.iter().zip(&sent) {
            assert!(
                d.arrival < stall_end,
                "packet {} arrives at its read time: {figures}",
                d.marker
            );
            assert!(
                d.arrival + slack >= *before && d.arrival <= *after + slack,
                "packet {} arrives {:?} after its send began, which took {:?}: {figures}",
                d.marker,
                d.arrival.saturating_duration_since(*before),
                *after - *before
            );
        }
        // And the arrivals are spaced as the packets were sent, not bunched as they were read.
        assert!(
            arrival_spread * 2 >= send_spread,
            "arrivals bunched: {figures}"
        );
        let stats = sfu.handle.stats().await.expect("shard running");
        assert_eq!(
            stats.datagrams_without_kernel_time, 0,
            "every datagram came with a kernel time"
        );
        publisher.close().await;
    });
    shard_runtime.shutdown_background();
}
