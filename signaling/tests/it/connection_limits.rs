//! Connection-level limits on real sockets: idle TCP connections are closed after the
//! header-read timeout or refused past the per-IP cap while a client from another address joins;
//! a request stalled mid-body is closed after the idle timeout; a client that stops reading is
//! dropped after the write timeout, counted, and nobody else notices.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use signaling::policy::Role;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{ADMIN, Client, TestServer, config, envelope, join_msg, poll_until, token};

/// A TCP connection to `to` from the loopback address `from`, with `recv_buffer` bytes of
/// receive buffer when given.
async fn tcp_from(from: [u8; 4], to: SocketAddr, recv_buffer: Option<u32>) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
    }
    socket
        .bind(SocketAddr::from((from, 0)))
        .expect("bind a loopback source address");
    socket.connect(to).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tcp_connections_do_not_exhaust_descriptors() {
    const IDLE: usize = 200;
    const PER_IP: usize = 50;
    let mut c = config();
    c.limits.max_connections_per_ip = PER_IP;
    c.limits.header_read_timeout_ms = 500;
    let s = TestServer::start(c).await;
    let addr = s.server.local_addr();
    s.meeting("m").await;

    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(tcp_from([127, 0, 0, 1], addr, None).await);
    }

    // Meanwhile an honest client from another address joins.
    let tcp = MaybeTlsStream::Plain(tcp_from([127, 0, 0, 2], addr, None).await);
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/v1/rtc"), tcp)
        .await
        .expect("handshake from 127.0.0.2");
    let mut honest = Client {
        ws,
        transcript: Vec::new(),
    };
    honest
        .join("m", &token("m", "alice", Role::Caller), "dev-a")
        .await;

    // Every idle connection is closed by the server: at once past the cap, the others after the
    // header-read timeout.
    let closed_within = tokio::time::timeout(Duration::from_secs(5), async {
        for conn in &mut idle {
            let mut byte = [0u8; 1];
            match conn.read(&mut byte).await {
                Ok(0) | Err(_) => {}
                Ok(_) => panic!("the server wrote to a connection that sent nothing"),
            }
        }
    })
    .await;
    assert!(
        closed_within.is_ok(),
        "idle connections still open after 5 s"
    );
    let refused = s
        .metric("signaling_connection_drops_total{reason=\"per_ip_limit\"}")
        .await;
    let timed_out = s
        .metric("signaling_connection_drops_total{reason=\"header_timeout\"}")
        .await;
    assert!(refused >= (IDLE - PER_IP) as f64, "refused {refused}");
    assert!(timed_out >= 1.0, "header timeouts {timed_out}");
    // Each idle connection is counted; the test's own idle keep-alive HTTP connection (room
    // creation) may be closed by the header-read timeout too.
    assert!(
        refused + timed_out >= IDLE as f64,
        "{refused} + {timed_out} < {IDLE}"
    );

    // The honest client is still served.
    honest
        .send(&json!({"type": "stats", "decrypt_failures": 0}))
        .await;
    honest.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_request_body_is_closed_after_the_idle_timeout() {
    let mut c = config();
    c.limits.http_idle_timeout_ms = 500;
    let s = TestServer::start(c).await;
    let addr = s.server.local_addr();
    // A complete head (so the header-read timeout is passed), then a body that never comes.
    let mut tcp = tcp_from([127, 0, 0, 1], addr, None).await;
    let head = format!(
        "POST /v1/rooms HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":"
    );
    tcp.write_all(head.as_bytes()).await.expect("send head");
    let started = tokio::time::Instant::now();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut byte))
        .await
        .expect("closed within 5 s");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed without an answer: {read:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "not before the idle timeout"
    );
    assert_eq!(
        s.metric("signaling_connection_drops_total{reason=\"http_idle_timeout\"}")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_that_never_reads_is_dropped() {
    let mut c = config();
    c.limits.write_timeout_ms = 500;
    c.limits.messages_per_second = 5000;
    c.limits.message_burst = 5000;
    // The writer's bursts may outrun the rate limit now and then: those drops must not close it
    // as a flood, this test is about the reader.
    c.limits.flood_close_after = u32::MAX;
    let s = TestServer::start(c).await;
    let addr = s.server.local_addr();
    s.meeting("k").await;

    // The reader joins over a socket with a small receive buffer, then never reads again.
    let tcp = tcp_from([127, 0, 0, 1], addr, Some(4096)).await;
    let (mut reader, _) = tokio_tungstenite::client_async(format!("ws://{addr}/v1/rtc"), tcp)
        .await
        .expect("handshake");
    reader
        .send(Message::text(
            join_msg("k", &token("k", "rita", Role::Caller), "dev-r").to_string(),
        ))
        .await
        .expect("send join");
    let joined = loop {
        match reader.next().await {
            Some(Ok(Message::Text(t))) => break t,
            Some(Ok(_)) => continue,
            other => panic!("no joined: {other:?}"),
        }
    };
    assert!(joined.as_str().contains("\"joined\""), "{joined}");

    // The writer relays key envelopes to the reader until the server gives up on it.
    let mut writer = s.connect().await;
    let jw = writer
        .join("k", &token("k", "walt", Role::Caller), "dev-w")
        .await;
    let call = jw["call"].as_str().expect("call").to_owned();
    let slot = jw["slot"].as_u64().expect("slot");
    let (mut w_tx, mut w_rx) = writer.ws.split();
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        while let Some(Ok(m)) = w_rx.next().await {
            if let Message::Text(t) = m
                && let Ok(v) = serde_json::from_str::<Value>(t.as_str())
                && seen_tx.send(v).is_err()
            {
                break;
            }
        }
    });
    let env =
        json!({"type": "key_envelope", "envelope": envelope("k", &call, "dev-w", "dev-r", slot)})
            .to_string();
    let series = "signaling_connection_drops_total{reason=\"write_timeout\"}";
    let mut sent = 0;
    while s.metric(series).await < 1.0 {
        assert!(sent < 40_000, "the server never gave up on the reader");
        for _ in 0..200 {
            w_tx.send(Message::text(env.clone()))
                .await
                .expect("writer sends");
        }
        sent += 200;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    poll_until(
        Duration::from_secs(3),
        "the reader's session ended",
        async || s.metric("signaling_connections").await == 1.0,
    )
    .await;

    // The server closed the reader's connection: reading now ends (after what was queued).
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = reader.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the reader's connection is still open");

    // The writer goes on: it sees a newcomer join.
    let mut carol = s.connect().await;
    carol
        .join("k", &token("k", "carol", Role::Caller), "dev-c")
        .await;
    let saw_carol = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(v) = seen.recv().await {
            if v["type"] == "roster" && v.to_string().contains("dev-c") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(saw_carol, Ok(true), "the writer was affected");
}
