//! Attacks on the ICE-TCP port's resources: more connections than the caps allow (per source IP
//! and in all), a second peer on a connection that carries one, and a client that sends binding
//! requests without ever reading the answers. Each is refused or closed by the SFU and counted
//! by reason; the connections inside the caps and the first peer are not affected.

use crate::common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use sfu::transport::{IceTcpClose, IceTcpConfig, ShardHandle, TransportConfig};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

use crate::common::ice_tcp::{closed_by_sfu, ice_tcp_config, read_frame, write_frame};
use crate::common::peers::publisher;
use crate::common::poll_until;
use crate::common::stun::{binding_request, ice_credentials};
use crate::common::{PassThrough, TestSfu};

const LIMIT: Duration = Duration::from_secs(2);

async fn closed(handle: &ShardHandle<PassThrough>, reason: IceTcpClose) -> u64 {
    handle.stats().await.unwrap().ice_tcp_closed.get(reason)
}

/// A connection to `to` from the loopback address `from` (any port).
async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(IpAddr::V4(from), 0))
        .expect("bind a loopback source");
    socket.connect(to).await.expect("connected")
}

/// A peer on `sfu` and the USERNAME and password a binding request for it carries.
async fn add_peer(sfu: &TestSfu) -> (String, String) {
    let (client, _video) = publisher().await;
    let offer = client.offer().await.expect("offer");
    let (client_ufrag, _) = ice_credentials(&offer);
    let added = sfu.handle.add_peer(offer, vec![]).await.unwrap();
    let (sfu_ufrag, sfu_pwd) = ice_credentials(&added.answer);
    (format!("{sfu_ufrag}:{client_ufrag}"), sfu_pwd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_tcp_connections_over_the_caps_are_refused() {
    common::init_tracing();
    let mut config = TransportConfig::loopback();
    config.ice_tcp = Some(IceTcpConfig {
        max_connections: 4,
        max_connections_per_ip: 3,
        ..IceTcpConfig::on_port(0)
    });
    let sfu = TestSfu::start(config).await;
    let tcp_addr = sfu.handle.ice_tcp_addr().unwrap();
    let first_ip = Ipv4Addr::new(127, 0, 0, 1);
    let second_ip = Ipv4Addr::new(127, 0, 0, 2);

    let mut kept = Vec::new();
    for _ in 0..3 {
        kept.push(connect_from(first_ip, tcp_addr).await);
    }
    poll_until(LIMIT, "three connections open", async || {
        sfu.handle.stats().await.unwrap().ice_tcp_connections == 3
    })
    .await;
    // A fourth from the same IP is over the per-IP cap.
    let mut over_ip = connect_from(first_ip, tcp_addr).await;
    assert_eq!(closed_by_sfu(&mut over_ip, LIMIT).await, 0);
    // Another IP still gets one (4 in all)...
    kept.push(connect_from(second_ip, tcp_addr).await);
    poll_until(LIMIT, "four connections open", async || {
        sfu.handle.stats().await.unwrap().ice_tcp_connections == 4
    })
    .await;
    // ...but not a second: the listener holds its maximum.
    let mut over_all = connect_from(second_ip, tcp_addr).await;
    assert_eq!(closed_by_sfu(&mut over_all, LIMIT).await, 0);

    // The refusals are counted as the shard reports them, which can be just after the close
    // the client saw.
    poll_until(LIMIT, "both refusals counted", async || {
        let s = sfu.handle.stats().await.unwrap();
        s.ice_tcp_closed.get(IceTcpClose::PerIpLimit) == 1
            && s.ice_tcp_closed.get(IceTcpClose::GlobalLimit) == 1
    })
    .await;
    let stats = sfu.handle.stats().await.unwrap();
    assert_eq!(stats.ice_tcp_closed.get(IceTcpClose::PerIpLimit), 1);
    assert_eq!(stats.ice_tcp_closed.get(IceTcpClose::GlobalLimit), 1);
    assert_eq!(
        stats.ice_tcp_connections, 4,
        "the connections inside the caps stay"
    );

    // A place freed is a place given again.
    drop(kept.pop());
    poll_until(LIMIT, "the closed connection is counted", async || {
        closed(&sfu.handle, IceTcpClose::RemoteClosed).await == 1
    })
    .await;
    let _again = connect_from(second_ip, tcp_addr).await;
    poll_until(LIMIT, "four connections open again", async || {
        sfu.handle.stats().await.unwrap().ice_tcp_connections == 4
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_tcp_second_peer_on_one_connection_is_closed() {
    common::init_tracing();
    let sfu = TestSfu::start(ice_tcp_config()).await;
    let tcp_addr = sfu.handle.ice_tcp_addr().unwrap();
    let (first_user, first_pwd) = add_peer(&sfu).await;
    let (second_user, second_pwd) = add_peer(&sfu).await;

    let mut stream = TcpStream::connect(tcp_addr).await.unwrap();
    write_frame(&mut stream, &binding_request(&first_user, &first_pwd)).await;
    let response = read_frame(&mut stream, LIMIT).await.expect("answered");
    assert_eq!(
        response[..2],
        [0x01, 0x01],
        "binding success for the first peer"
    );
    assert_eq!(sfu.handle.stats().await.unwrap().bound_addresses, 1);

    // The second peer's correct credentials on the same connection end it.
    write_frame(&mut stream, &binding_request(&second_user, &second_pwd)).await;
    closed_by_sfu(&mut stream, LIMIT).await;
    poll_until(LIMIT, "second_peer counted", async || {
        closed(&sfu.handle, IceTcpClose::SecondPeer).await == 1
    })
    .await;
    let stats = sfu.handle.stats().await.unwrap();
    assert_eq!(stats.bound_addresses, 0, "neither peer keeps the address");
    assert_eq!(stats.peers, 2);
    assert_eq!(stats.ice_tcp_connections, 0);

    // Each peer on a connection of its own is fine.
    let mut own_connections = Vec::new();
    for (user, pwd) in [(&first_user, &first_pwd), (&second_user, &second_pwd)] {
        let mut own = TcpStream::connect(tcp_addr).await.unwrap();
        write_frame(&mut own, &binding_request(user, pwd)).await;
        assert!(read_frame(&mut own, LIMIT).await.is_some());
        own_connections.push(own);
    }
    assert_eq!(sfu.handle.stats().await.unwrap().bound_addresses, 2);
}

/// Binding requests sent per write in the flood.
const FLOOD_BATCH: usize = 500;
/// Upper bound on binding requests sent (about 10 MB); the test ends well before it.
const FLOOD_MAX: usize = 200_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_tcp_client_that_does_not_read_is_dropped() {
    common::init_tracing();
    let sfu = TestSfu::start(ice_tcp_config()).await;
    let tcp_addr = sfu.handle.ice_tcp_addr().unwrap();
    let (user, pwd) = add_peer(&sfu).await;

    // A small receive buffer, never read: the SFU's answers pile up on its side.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(tcp_addr).await.unwrap();
    let mut batch = Vec::new();
    for _ in 0..FLOOD_BATCH {
        let request = binding_request(&user, &pwd);
        batch.extend_from_slice(&u16::try_from(request.len()).unwrap().to_be_bytes());
        batch.extend_from_slice(&request);
    }
    let start = Instant::now();
    let mut sent = 0;
    while sent < FLOOD_MAX && start.elapsed() < Duration::from_secs(20) {
        // The SFU ends the connection once its queue for it is full: the write fails.
        if stream.write_all(&batch).await.is_err() {
            break;
        }
        sent += FLOOD_BATCH;
        if closed(&sfu.handle, IceTcpClose::WriteBacklog).await > 0 {
            break;
        }
    }
    poll_until(
        Duration::from_secs(5),
        "write_backlog counted",
        async || closed(&sfu.handle, IceTcpClose::WriteBacklog).await == 1,
    )
    .await;
    let stats = sfu.handle.stats().await.unwrap();
    assert_eq!(stats.ice_tcp_connections, 0, "after {sent} requests");
    assert_eq!(stats.bound_addresses, 0);
    assert_eq!(stats.peers, 1, "the peer itself stays");
}
