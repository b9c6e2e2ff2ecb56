//! The SFU's control event stream survives being cut: the real control router of an SFU node
//! serves `GET /control/events` on loopback through a small TCP proxy started here, signaling's
//! `RemoteSfu` follows it, and while a thousand events are produced the proxy drops every open
//! connection five times (each time once the client has reconnected, while events keep coming).
//! Each cut client resumes after the last sequence number it read, so
//! every event arrives exactly once and in order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use sfu::control::{ControlState, EventLog, REPLAY_CAPACITY};
use sfu::node::{NodeConfig, NodeEvent, start_node};
use signaling::auth::Secret;
use signaling::media_node::{MediaEvent, MediaNode, RemoteSfu};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::task::AbortHandle;

const SECRET: &str = "control-secret-for-the-test-0123456789";
const EVENTS: u32 = 1000;

/// A loopback TCP proxy whose open connections can be dropped at once.
struct CuttingProxy {
    addr: std::net::SocketAddr,
    open: Arc<Mutex<Vec<AbortHandle>>>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
}

impl CuttingProxy {
    async fn start(upstream: std::net::SocketAddr) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy port");
        let addr = listener.local_addr().expect("bound");
        let open: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (conns, count) = (open.clone(), accepted.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns.lock().expect("lock").push(task.abort_handle());
            }
        });
        CuttingProxy {
            addr,
            open,
            accepted,
        }
    }

    /// Drops every open connection (both sockets close).
    fn cut(&self) {
        for task in self.open.lock().expect("lock").drain(..) {
            task.abort();
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A node event the test can number: an `offer` whose SDP is the number.
fn numbered(room: &str, i: u32) -> NodeEvent {
    NodeEvent::Offer {
        room: room.into(),
        device: "d".into(),
        sdp: i.to_string(),
        session: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_cut_loses_no_event() {
    // The node's control router, its event log fed by the test (the log numbers and buffers
    // exactly as it does for the node's own events).
    let node = start_node(NodeConfig::default(), None)
        .await
        .expect("node starts on loopback");
    let (events, source) = broadcast::channel(2 * EVENTS as usize);
    let log = EventLog::start(source, REPLAY_CAPACITY);
    let app = sfu::control::router_with_log(
        ControlState {
            node,
            secret: SECRET.into(),
            node_id: "sfu-test".into(),
        },
        log,
    );
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("control port");
    let control = listener.local_addr().expect("bound");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let proxy = CuttingProxy::start(control).await;

    let remote = RemoteSfu::new(&format!("http://{}", proxy.addr), Secret::new(SECRET), None)
        .expect("client");
    let mut stream = remote.events();

    // Warm up until the client follows the stream: a stream starts with the next event.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        events.send(numbered("warmup", 0)).expect("the log listens");
        match tokio::time::timeout(Duration::from_millis(50), stream.next()).await {
            Ok(Some(_)) => break,
            Ok(None) => panic!("the event stream ended"),
            Err(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "the client follows the events within 10 s"
            ),
        }
    }

    // A thousand events in bursts; the connection is cut five times meanwhile.
    let producer = tokio::spawn({
        let events = events.clone();
        let cuts = [150, 350, 550, 750, 900];
        async move {
            let mut cut = 0;
            for i in 0..EVENTS {
                events.send(numbered("run", i)).expect("the log listens");
                if i % 50 == 49 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                if cuts.contains(&i) {
                    // Cut a live connection: the client's reconnect after the previous cut.
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                    while proxy.accepted() <= cut {
                        assert!(
                            tokio::time::Instant::now() < deadline,
                            "the client reconnects within 10 s"
                        );
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    proxy.cut();
                    cut += 1;
                }
            }
            proxy
        }
    });

    let mut seen: Vec<u32> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < EVENTS as usize {
        let event = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("all events within 30 s; {} arrived", seen.len()))
            .expect("the event stream goes on");
        match event {
            MediaEvent::Offer { room, sdp, .. } if room == "run" => {
                seen.push(sdp.parse().expect("a number"));
            }
            MediaEvent::Offer { room, .. } if room == "warmup" => {}
            other => panic!("unexpected event {other:?}"),
        }
    }
    let proxy = producer.await.expect("producer ran");
    assert_eq!(
        seen,
        (0..EVENTS).collect::<Vec<_>>(),
        "every event exactly once, in order"
    );
    // Nothing arrives twice after the last one either.
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_millis(500), stream.next()).await {
        panic!("an event after the last: {extra:?}");
    }
    assert!(
        proxy.accepted() >= 6,
        "the stream was cut and resumed five times: {} connections",
        proxy.accepted()
    );
    assert!(remote.is_attached(), "a resumed stream stays attached");
}
