//! Attack: one subscriber floods the SFU with PLIs (200 a second for 3 s) for the video it
//! receives, through its real DTLS-SRTP session. The publisher is a real `webrtc` client that
//! reads the RTCP arriving on its sender: it must see keyframe requests at most 5 times a second
//! (the core's `keyframe_request_interval`), plus one for the window's edge, and at least one
//! (the flood is throttled, not swallowed).

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::deliver_rtcp::DeliverRtcp;
use crate::common::peers::{VIDEO_SSRC, join, publisher_with, subscriber, subscriptions};
use call_client::peer::{Peer, Registry};
use rtc::interceptor::Slot;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use sfu::node::{NodeConfig, NodeEvent, start_node};
use sfu_forwarding::{Role, RoomPolicy};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

/// How long the subscriber floods.
const FLOOD: Duration = Duration::from_secs(3);
/// PLIs per second the subscriber sends.
const FLOOD_RATE: u32 = 200;
/// The most keyframe requests per second the publisher may see.
const ALLOWED_PER_SECOND: f64 = 5.0;
/// How long no keyframe request may reach the publisher before the flood starts: longer than
/// the throttle's interval (1 / ALLOWED_PER_SECOND), so the joins' requests have aged out.
const QUIET: Duration = Duration::from_millis(300);
/// Slack on the window for the publisher's arrival times: its stack may hand two requests over
/// closer together than the SFU sent them.
const ARRIVAL_JITTER: Duration = Duration::from_millis(100);

/// A VP8 keyframe-shaped payload (descriptor with a 15-bit picture id, then frame bytes).
fn video_payload(i: u16) -> Vec<u8> {
    let picture_id = 0x8000 | (i & 0x7fff);
    let mut p = vec![0x90, 0x80, (picture_id >> 8) as u8, picture_id as u8];
    p.extend_from_slice(&[0x10, 0x02, 0x00, 0x9d]);
    p.extend((0..200u16).map(|b| (b ^ i) as u8));
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pli_flood_from_one_subscriber_reaches_the_publisher_at_most_5_times_a_second() {
    common::init_tracing();
    let node = start_node(NodeConfig::default(), None)
        .await
        .expect("node starts on loopback");
    let mut events = node.events();
    node.create_room("room-1", RoomPolicy::meeting())
        .await
        .expect("room created");

    // The publisher hands every inbound RTCP packet to its track.
    let registry = Registry::new().with(Slot::from(20_000), DeliverRtcp::default());
    let (publisher, mut video) =
        publisher_with(Peer::builder().registry(registry), VIDEO_SSRC).await;
    join(&node, "room-1", "alice", Role::Caller, &publisher, vec![]).await;

    // Every PLI the publisher's sender receives, with its arrival time.
    let (pli_tx, mut plis) = mpsc::unbounded_channel::<Instant>();
    let track = video.rtp_track().clone();
    tokio::spawn(async move {
        while let Some(event) = track.poll().await {
            let TrackLocalEvent::OnRtcpPacket(packets) = event else {
                continue;
            };
            for p in packets {
                if p.as_any().downcast_ref::<PictureLossIndication>().is_some() {
                    let _ = pli_tx.send(Instant::now());
                }
            }
        }
    });

    // The publisher sends video at 50 frames a second for the whole test, from its own task.
    let sending = Arc::new(AtomicBool::new(true));
    let keep_sending = sending.clone();
    let sender = tokio::spawn(async move {
        let mut i = 0u16;
        while keep_sending.load(Ordering::Relaxed) {
            i = i.wrapping_add(1);
            let payload = bytes::Bytes::from(video_payload(i));
            let _ = video.write(0, u32::from(i) * 1800, true, payload).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });

    let camera = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(NodeEvent::TrackPublished { track, .. }) = events.recv().await {
                break track;
            }
        }
    })
    .await
    .expect("the camera track is published");

    let mut subscriber = subscriber().await;
    let subscribe = subscriptions([&camera]);
    join(
        &node,
        "room-1",
        "mallory",
        Role::Caller,
        &subscriber,
        subscribe,
    )
    .await;
    let forwarded = tokio::time::timeout(Duration::from_secs(5), subscriber.incoming().recv())
        .await
        .expect("the subscriber receives video")
        .expect("subscriber channel open");
    let media_ssrc = forwarded.packet.header.ssrc;
    let receiver = subscriber
        .connection()
        .get_receivers()
        .await
        .into_iter()
        .next()
        .expect("the subscriber has its video receiver");
    let remote = receiver.track().clone();

    // Let the keyframe requests from the joins age out of the throttle (no request reaches the
    // publisher for QUIET, longer than the throttle interval), forgetting them as they come.
    let mut last_pli = Instant::now();
    common::poll_until(
        Duration::from_secs(5),
        "the joins' keyframe requests to settle",
        async || {
            while plis.try_recv().is_ok() {
                last_pli = Instant::now();
            }
            last_pli.elapsed() >= QUIET
        },
    )
    .await;

    // The flood: FLOOD_RATE PLIs a second for FLOOD, through the subscriber's real session.
    let start = Instant::now();
    let mut sent = 0u32;
    let total = FLOOD_RATE * FLOOD.as_secs() as u32;
    let mut ticker = tokio::time::interval(FLOOD / total);
    for _ in 0..total {
        ticker.tick().await;
        remote
            .write_rtcp(vec![Box::new(PictureLossIndication {
                sender_ssrc: 0x0bad_0001,
                media_ssrc,
            })])
            .await
            .expect("pli written");
        sent += 1;
    }
    // The window closes once the SFU has counted (nearly) every request of the flood: what it
    // forwards by then has left for the publisher, which is on loopback.
    common::poll_until(
        Duration::from_secs(2),
        "the SFU to count the flood's PLIs",
        async || node.snapshot().await.metrics.feedback.pli_received >= u64::from(sent) * 9 / 10,
    )
    .await;
    let window_end = Instant::now();
    let window = window_end - start;
    let mut received = 0u32;
    while let Ok(at) = plis.try_recv() {
        if at >= start && at <= window_end {
            received += 1;
        }
    }
    let snapshot = node.snapshot().await;

    sending.store(false, Ordering::Relaxed);
    let _ = sender.await;

    let seconds = (window + ARRIVAL_JITTER).as_secs_f64();
    let allowed = (ALLOWED_PER_SECOND * seconds).floor() as u32 + 1;
    eprintln!(
        "sent {sent} PLIs in {window:?}; publisher received {received} (allowed {allowed}); \
         core pli_received {} pli_sent {}",
        snapshot.metrics.feedback.pli_received, snapshot.metrics.feedback.pli_sent
    );
    assert!(
        snapshot.metrics.feedback.pli_received >= u64::from(sent) * 9 / 10,
        "the flood reached the SFU: {} of {sent}",
        snapshot.metrics.feedback.pli_received
    );
    assert!(
        received <= allowed,
        "publisher saw {received} PLIs in {seconds:.2} s, at most {allowed} allowed"
    );
    assert!(
        received >= 1,
        "the flood is throttled, not dropped entirely"
    );

    publisher.close().await;
    subscriber.close().await;
}
