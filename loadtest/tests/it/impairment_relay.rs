//! The impairment relay on real UDP sockets on loopback: measured loss, delay, jitter,
//! reordering and rate cap are within tolerance of the configured values, runs with the same
//! seed drop the same packets, and replies find their way back to each client.

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use loadtest::impairment::{Impairment, ImpairmentRelay, RelayConfig, RelayError};

use crate::common::poll_until;

fn bind() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s
}

/// Sends `n` packets (sequence number + send time since `epoch`, padded to `size`) from a
/// client through a relay configured with `to_server`, spacing them `gap` apart, and returns
/// what the server received: (seq, one-way delay) in arrival order, plus the relay.
fn run_one_way(
    to_server: Impairment,
    seed: u64,
    n: u32,
    size: usize,
    gap: Duration,
) -> (Vec<(u32, Duration)>, ImpairmentRelay) {
    let server = bind();
    let mut config = RelayConfig::symmetric(server.local_addr().unwrap(), Impairment::default());
    config.to_server = to_server;
    config.seed = seed;
    config.lifetime = Duration::from_secs(60);
    let relay = ImpairmentRelay::start(config).unwrap();
    let client = bind();
    client.connect(relay.local_addr()).unwrap();
    let epoch = Instant::now();
    let receiver = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        // Stop once nothing arrived for the read timeout (the sender is done by then).
        while let Ok(len) = server.recv(&mut buf) {
            let now = epoch.elapsed();
            assert!(len >= 12);
            let seq = u32::from_be_bytes(buf[0..4].try_into().unwrap());
            let sent = Duration::from_nanos(u64::from_be_bytes(buf[4..12].try_into().unwrap()));
            got.push((seq, now - sent));
        }
        got
    });
    let mut packet = vec![0u8; size];
    let mut next = Instant::now();
    for seq in 0..n {
        packet[0..4].copy_from_slice(&seq.to_be_bytes());
        let sent = epoch.elapsed().as_nanos() as u64;
        packet[4..12].copy_from_slice(&sent.to_be_bytes());
        client.send(&packet).unwrap();
        next += gap;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    (receiver.join().unwrap(), relay)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn loss_and_delay_match_the_configuration() {
    let link: Impairment = "loss=20%,delay=30ms".parse().unwrap();
    let n = 1000;
    let (got, relay) = run_one_way(link, 7, n, 100, Duration::from_micros(500));
    let stats = relay.stop();
    let received = got.len() as f64;
    let loss = 1.0 - received / f64::from(n);
    // Binomial(1000, 0.2): standard deviation 1.3 %; allow about 4 of them.
    assert!((0.15..0.25).contains(&loss), "measured loss {loss}");
    assert_eq!(stats.to_server.received, u64::from(n));
    assert_eq!(
        stats.to_server.dropped_loss + stats.to_server.forwarded,
        u64::from(n)
    );
    assert_eq!(stats.to_server.forwarded, got.len() as u64);
    let delays: Vec<Duration> = got.iter().map(|(_, d)| *d).collect();
    let min = *delays.iter().min().unwrap();
    assert!(
        min >= Duration::from_millis(30),
        "no packet may beat the delay: {min:?}"
    );
    let med = median(delays);
    // Slack for a loaded machine: the relay thread may be scheduled late, never early.
    assert!(med < Duration::from_millis(55), "median delay {med:?}");
    // Without jitter or reorder the order is kept.
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(stats.flows, 1);
}

#[test]
fn same_seed_drops_the_same_packets() {
    let link: Impairment = "loss=30%".parse().unwrap();
    let seqs = |seed| -> BTreeSet<u32> {
        let (got, _relay) = run_one_way(link, seed, 300, 60, Duration::from_micros(300));
        got.into_iter().map(|(s, _)| s).collect()
    };
    let a = seqs(42);
    let b = seqs(42);
    let c = seqs(43);
    assert_eq!(a, b, "same seed, same packet order: same drops");
    assert_ne!(a, c, "another seed drops other packets");
}

#[test]
fn jitter_spreads_delays_and_reorder_overtakes() {
    let link: Impairment = "delay=20ms,jitter=10ms,reorder=10%".parse().unwrap();
    let n = 600;
    let (got, relay) = run_one_way(link, 3, n, 80, Duration::from_millis(1));
    let stats = relay.stop();
    assert_eq!(got.len(), n as usize, "nothing is lost");
    let reordered_arrivals = got.windows(2).filter(|w| w[1].0 < w[0].0).count();
    assert!(stats.to_server.reordered > 30, "{stats:?}");
    assert!(
        reordered_arrivals > 20,
        "{reordered_arrivals} out-of-order arrivals"
    );
    // Packets in the delay line wait 20 ms +- 10 ms (never less than 10 ms); reordered ones
    // skip it, so only they can arrive in under 10 ms.
    let fast = got
        .iter()
        .filter(|(_, d)| *d < Duration::from_millis(9))
        .count() as u64;
    assert!(
        fast <= stats.to_server.reordered,
        "{fast} fast arrivals, {stats:?}"
    );
    assert!(
        fast >= stats.to_server.reordered / 2,
        "{fast} fast arrivals, {stats:?}"
    );
    let slow: Vec<Duration> = got
        .iter()
        .map(|(_, d)| *d)
        .filter(|d| *d >= Duration::from_millis(10))
        .collect();
    let spread = *slow.iter().max().unwrap() - *slow.iter().min().unwrap();
    assert!(
        spread >= Duration::from_millis(8),
        "jitter spread {spread:?}"
    );
}

#[test]
fn rate_cap_paces_a_burst() {
    // 200 packets of 1000 bytes = 1.6 Mbit sent at about 80 Mbit/s through an 8 Mbit/s cap:
    // the last one leaves about 200 ms after the first.
    let link: Impairment = "rate=8mbit".parse().unwrap();
    let (got, relay) = run_one_way(link, 1, 200, 1000, Duration::from_micros(100));
    let stats = relay.stop();
    assert_eq!(got.len(), 200);
    assert_eq!(stats.to_server.forwarded_bytes, 200_000);
    let last = got.last().unwrap().1;
    assert!(
        (Duration::from_millis(180)..Duration::from_millis(400)).contains(&last),
        "last packet of the burst waited {last:?}"
    );
}

#[test]
fn small_queue_tail_drops_under_the_cap() {
    let link: Impairment = "rate=1mbit,queue=10kb".parse().unwrap();
    let (got, relay) = run_one_way(link, 1, 100, 1000, Duration::ZERO);
    let stats = relay.stop();
    assert!(stats.to_server.dropped_queue > 50, "{stats:?}");
    assert_eq!(got.len() as u64, stats.to_server.forwarded);
}

#[test]
fn replies_return_to_each_client_through_its_own_flow() {
    let server = bind();
    let server_addr = server.local_addr().unwrap();
    let relay = ImpairmentRelay::start(RelayConfig::symmetric(
        server_addr,
        "delay=5ms".parse().unwrap(),
    ))
    .unwrap();
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let mut sources = BTreeSet::new();
        for _ in 0..6 {
            let (len, from) = server.recv_from(&mut buf).unwrap();
            sources.insert(from);
            server.send_to(&buf[..len], from).unwrap();
        }
        sources
    });
    let clients: Vec<UdpSocket> = (0..3).map(|_| bind()).collect();
    for round in 0..2u8 {
        for (i, c) in clients.iter().enumerate() {
            c.send_to(&[i as u8, round], relay.local_addr()).unwrap();
            let mut buf = [0u8; 8];
            let (len, from) = c.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..len], &[i as u8, round]);
            assert_eq!(from, relay.local_addr());
        }
    }
    let sources = echo.join().unwrap();
    assert_eq!(sources.len(), 3, "one upstream address per client");
    assert!(
        !sources
            .iter()
            .any(|s: &SocketAddr| *s == relay.local_addr())
    );
    let stats = relay.stop();
    assert_eq!(stats.flows, 3);
    assert_eq!(stats.to_client.forwarded, 6);
}

#[test]
fn stops_by_itself_and_refuses_non_loopback() {
    let server = bind();
    let mut config = RelayConfig::symmetric(server.local_addr().unwrap(), Impairment::default());
    config.lifetime = Duration::from_millis(100);
    let relay = ImpairmentRelay::start(config).unwrap();
    // The relay's port is free again once the relay has ended and closed its socket.
    poll_until(
        Duration::from_secs(1),
        "the relay to close its port after its 100 ms lifetime",
        || UdpSocket::bind(relay.local_addr()).is_ok(),
    );
    let client = bind();
    client.send_to(b"late", relay.local_addr()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        relay.stats().to_server.received,
        0,
        "relay ended after its lifetime"
    );
    drop(relay);

    let outside: SocketAddr = "192.0.2.1:9".parse().unwrap();
    let err = ImpairmentRelay::start(RelayConfig::symmetric(outside, Impairment::default()));
    assert!(matches!(err, Err(RelayError::NotLoopback(_))));
}
