//! What the node's state being owned by the shard rests on, shown on the transport alone with a
//! recording handler: a job sent with `ShardHandle::run` runs on the shard with the handler and
//! the transport together (the events its calls emit reach the handler before it returns); the
//! handler's own timer wakes an idle shard (the forwarding core's timers, with no side task);
//! work a callback defers runs on the shard right after it.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::loopback_config;
use crate::common::peers::publisher;
use crate::common::poll_until;
use sfu::transport::{
    CloseReason, MediaHandler, Outbox, PeerEvent, PeerId, ShardAccess, ShardHandle, start_shard,
};

/// How often the recording handler's own timer fires.
const TICK: Duration = Duration::from_millis(20);

/// Records what the shard hands it; on request, removes each peer as soon as it connects, from
/// `run_deferred` (a callback cannot call the transport itself).
struct Recorder {
    events: Vec<PeerEvent>,
    next_tick: Instant,
    ticks: u32,
    remove_on_connect: bool,
    to_remove: Vec<PeerId>,
}

impl Recorder {
    fn new(remove_on_connect: bool) -> Self {
        Recorder {
            events: Vec::new(),
            next_tick: Instant::now() + TICK,
            ticks: 0,
            remove_on_connect,
            to_remove: Vec::new(),
        }
    }

    fn connected(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, PeerEvent::Connected { .. }))
            .count()
    }

    fn closed(&self) -> Vec<(PeerId, CloseReason)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                PeerEvent::Closed { peer, reason } => Some((*peer, reason.clone())),
                _ => None,
            })
            .collect()
    }
}

impl MediaHandler for Recorder {
    fn on_peer_event(&mut self, event: PeerEvent, _out: &mut Outbox<'_>) {
        if let (true, PeerEvent::Connected { peer, .. }) = (self.remove_on_connect, &event) {
            self.to_remove.push(*peer);
        }
        self.events.push(event);
    }

    fn on_rtp(&mut self, _peer: PeerId, _rtp: &[u8], _arrival: Instant, _out: &mut Outbox<'_>) {}

    fn on_rtcp(&mut self, _peer: PeerId, _rtcp: &[u8], _arrival: Instant, _out: &mut Outbox<'_>) {}

    fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next_tick)
    }

    fn on_timeout(&mut self, now: Instant, _out: &mut Outbox<'_>) {
        assert!(
            now >= self.next_tick,
            "the handler's timer never fires early"
        );
        self.ticks += 1;
        self.next_tick = now + TICK;
    }

    fn run_deferred(shard: &mut ShardAccess<'_, Self>) {
        for peer in std::mem::take(&mut shard.handler().to_remove) {
            assert!(shard.remove_peer(peer), "the connected peer is there");
        }
    }
}

async fn recorder_shard(remove_on_connect: bool) -> ShardHandle<Recorder> {
    start_shard(loopback_config(), Recorder::new(remove_on_connect))
        .await
        .expect("shard starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_on_the_shard_with_the_handler_and_the_transport() {
    common::init_tracing();
    let shard = recorder_shard(false).await;
    let (client, _video) = publisher().await;
    let offer = client.offer().await.expect("offer");

    // One step: the peer is added, and the shard and the handler are read right after it.
    let (added, peers_after, events_before) = shard
        .run(move |s| {
            let events_before = s.handler().events.len();
            let added = s.add_peer(offer, &[]).expect("peer added");
            (added, s.stats().peers, events_before)
        })
        .await
        .expect("the shard runs the job");
    assert_eq!(events_before, 0, "nothing happened before the job");
    assert_eq!(
        peers_after, 1,
        "the job saw its own change to the transport"
    );
    client
        .apply_answer(&added.answer)
        .await
        .expect("answer applies");
    poll_until(
        Duration::from_secs(10),
        "the handler sees the peer connect",
        async || {
            shard
                .run(|s| s.handler().connected())
                .await
                .expect("the shard runs the job")
                == 1
        },
    )
    .await;

    // The transport's calls in a job emit to the handler before the job goes on.
    let closed = shard
        .run(move |s| {
            assert!(s.remove_peer(added.peer));
            s.handler().closed()
        })
        .await
        .expect("the shard runs the job");
    assert_eq!(closed, vec![(added.peer, CloseReason::Removed)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handlers_timer_wakes_an_idle_shard() {
    common::init_tracing();
    let shard = recorder_shard(false).await;
    // No peer, no datagram, no command: only the handler's timer wakes the shard.
    tokio::time::sleep(TICK * 15).await;
    let ticks = shard
        .run(|s| s.handler().ticks)
        .await
        .expect("the shard runs the job");
    // 15 ticks were due; a loaded test machine may run them late, never early (the handler
    // asserts that, and a panic there stops the shard: the job above would have failed).
    assert!(
        ticks >= 5,
        "the handler's timer fired {ticks} times in 15 ticks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_a_callback_defers_runs_on_the_shard_after_it() {
    common::init_tracing();
    let shard = recorder_shard(true).await;
    let (client, _video) = publisher().await;
    let added = shard
        .add_peer(client.offer().await.expect("offer"), vec![])
        .await
        .expect("peer added");
    client
        .apply_answer(&added.answer)
        .await
        .expect("answer applies");
    // The `Connected` callback queued the removal; `run_deferred` did it on the shard.
    poll_until(
        Duration::from_secs(10),
        "the connected peer removed",
        async || {
            shard
                .run(|s| s.handler().closed())
                .await
                .expect("the shard runs the job")
                == vec![(added.peer, CloseReason::Removed)]
        },
    )
    .await;
    assert_eq!(shard.stats().await.expect("stats").peers, 0);
}
