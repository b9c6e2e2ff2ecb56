//! Attack: bytes on the ICE-TCP port that are no ICE-TCP. A frame of no WebRTC protocol, a
//! first frame that is not STUN, a length field over the limit, garbage after a proved binding
//! request: each connection is closed by the SFU and counted by reason, and the shard binds no
//! address for it. A correctly keyed binding request over TCP is the positive control: it is
//! answered with a framed STUN response and the answer advertises the `tcptype passive`
//! candidate on the listener's port.

use crate::common;

use std::time::Duration;

use sfu::transport::{IceTcpClose, ShardHandle, ShardStats};
use tokio::net::TcpStream;

use crate::common::ice_tcp::{closed_by_sfu, ice_tcp_config, read_frame, write_frame};
use crate::common::peers::publisher;
use crate::common::poll_until;
use crate::common::stun::{binding_request, ice_credentials};
use crate::common::{PassThrough, TestSfu};

const CLOSE_LIMIT: Duration = Duration::from_secs(2);

async fn closed(handle: &ShardHandle<PassThrough>, reason: IceTcpClose) -> u64 {
    handle.stats().await.unwrap().ice_tcp_closed.get(reason)
}

async fn wait_counted(
    handle: &ShardHandle<PassThrough>,
    reason: IceTcpClose,
    want: u64,
) -> ShardStats {
    poll_until(CLOSE_LIMIT, reason.label(), async || {
        closed(handle, reason).await >= want
    })
    .await;
    handle.stats().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_tcp_framing_garbage_is_counted_and_closed() {
    common::init_tracing();
    let sfu = TestSfu::start(ice_tcp_config()).await;
    let tcp_addr = sfu.handle.ice_tcp_addr().expect("ICE-TCP is on");
    let (client, _video) = publisher().await;
    let offer = client.offer().await.expect("offer");
    let (client_ufrag, _) = ice_credentials(&offer);
    let added = sfu.handle.add_peer(offer, vec![]).await.unwrap();
    let (sfu_ufrag, sfu_pwd) = ice_credentials(&added.answer);
    let username = format!("{sfu_ufrag}:{client_ufrag}");

    // The answer offers both candidates, UDP first by priority.
    let candidates: Vec<&str> = added
        .answer
        .lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .collect();
    let tcp_line = candidates
        .iter()
        .find(|l| l.contains(" tcp "))
        .expect("a TCP candidate in the answer");
    assert!(
        tcp_line.contains(&format!(" {} typ host tcptype passive", tcp_addr.port())),
        "{tcp_line}"
    );
    let priority = |line: &str| -> u32 { line.split(' ').nth(3).unwrap().parse().unwrap() };
    let udp_line = candidates.iter().find(|l| l.contains(" udp ")).unwrap();
    assert!(priority(udp_line) > priority(tcp_line), "UDP is preferred");

    // A first byte of no protocol (RFC 7983).
    let mut garbage = TcpStream::connect(tcp_addr).await.unwrap();
    write_frame(&mut garbage, &[0xff; 40]).await;
    assert_eq!(
        closed_by_sfu(&mut garbage, CLOSE_LIMIT).await,
        0,
        "nothing answered"
    );
    wait_counted(&sfu.handle, IceTcpClose::Garbage, 1).await;

    // A first frame that is DTLS, not the binding request ICE-TCP starts with.
    let mut dtls_first = TcpStream::connect(tcp_addr).await.unwrap();
    let mut record = vec![22u8, 0xfe, 0xfd];
    record.extend_from_slice(&[0; 30]);
    write_frame(&mut dtls_first, &record).await;
    assert_eq!(closed_by_sfu(&mut dtls_first, CLOSE_LIMIT).await, 0);
    wait_counted(&sfu.handle, IceTcpClose::Garbage, 2).await;

    // A length field over the limit: refused from the header, before any body.
    let mut oversized = TcpStream::connect(tcp_addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut oversized, &[0xff, 0xff, 0x00, 0x01])
        .await
        .unwrap();
    assert_eq!(closed_by_sfu(&mut oversized, CLOSE_LIMIT).await, 0);
    wait_counted(&sfu.handle, IceTcpClose::OversizedFrame, 1).await;

    // Positive control: a correctly keyed binding request is answered on the connection.
    let mut proved = TcpStream::connect(tcp_addr).await.unwrap();
    write_frame(&mut proved, &binding_request(&username, &sfu_pwd)).await;
    let response = read_frame(&mut proved, CLOSE_LIMIT)
        .await
        .expect("a binding response");
    assert!(
        response.len() >= 20 && response[..2] == [0x01, 0x01],
        "a STUN binding success response"
    );
    let stats = sfu.handle.stats().await.unwrap();
    assert_eq!(
        stats.ice_tcp_connections, 1,
        "the proved connection stays open"
    );
    assert_eq!(stats.bound_addresses, 1, "its address is the peer's");

    // Garbage after the proof still ends the connection, and the address is forgotten.
    write_frame(&mut proved, &[0x50; 8]).await;
    closed_by_sfu(&mut proved, CLOSE_LIMIT).await;
    let stats = wait_counted(&sfu.handle, IceTcpClose::Garbage, 3).await;
    assert_eq!(stats.ice_tcp_connections, 0);
    assert_eq!(stats.bound_addresses, 0, "no address left bound");
    assert_eq!(stats.peers, 1, "the peer itself is not harmed");
}
