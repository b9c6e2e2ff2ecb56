//! Attack: connections to the ICE-TCP port that never prove an ICE password: one silent, one
//! sending binding requests with a wrong password. Both are closed when the 5 s STUN timeout
//! runs out (not before, not much later) and counted as `stun_timeout`; nothing stays bound.

use crate::common;

use std::time::{Duration, Instant};

use sfu::transport::{DEFAULT_ICE_TCP_STUN_TIMEOUT, IceTcpClose};
use tokio::net::TcpStream;

use crate::common::TestSfu;
use crate::common::ice_tcp::{closed_by_sfu, ice_tcp_config, write_frame};
use crate::common::peers::publisher;
use crate::common::poll_until;
use crate::common::stun::{binding_request, ice_credentials};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_tcp_connection_without_stun_times_out() {
    common::init_tracing();
    assert_eq!(DEFAULT_ICE_TCP_STUN_TIMEOUT, Duration::from_secs(5));
    let sfu = TestSfu::start(ice_tcp_config()).await;
    let tcp_addr = sfu.handle.ice_tcp_addr().expect("ICE-TCP is on");
    let (client, _video) = publisher().await;
    let offer = client.offer().await.expect("offer");
    let (client_ufrag, _) = ice_credentials(&offer);
    let added = sfu.handle.add_peer(offer, vec![]).await.unwrap();
    let (sfu_ufrag, _) = ice_credentials(&added.answer);

    let start = Instant::now();
    let mut silent = TcpStream::connect(tcp_addr).await.unwrap();
    let mut wrong_password = TcpStream::connect(tcp_addr).await.unwrap();
    let username = format!("{sfu_ufrag}:{client_ufrag}");
    write_frame(
        &mut wrong_password,
        &binding_request(&username, "not-the-password-0123456"),
    )
    .await;
    poll_until(Duration::from_secs(1), "two connections open", async || {
        sfu.handle.stats().await.unwrap().ice_tcp_connections == 2
    })
    .await;

    let limit = DEFAULT_ICE_TCP_STUN_TIMEOUT + Duration::from_secs(2);
    assert_eq!(closed_by_sfu(&mut silent, limit).await, 0);
    assert_eq!(
        closed_by_sfu(&mut wrong_password, limit).await,
        0,
        "a wrong password is not answered"
    );
    let elapsed = start.elapsed();
    assert!(
        elapsed >= DEFAULT_ICE_TCP_STUN_TIMEOUT - Duration::from_millis(100),
        "closed after {elapsed:?}, before the timeout"
    );

    poll_until(Duration::from_secs(1), "both closes counted", async || {
        let stats = sfu.handle.stats().await.unwrap();
        stats.ice_tcp_closed.get(IceTcpClose::StunTimeout) == 2
    })
    .await;
    let stats = sfu.handle.stats().await.unwrap();
    assert_eq!(stats.ice_tcp_connections, 0);
    assert_eq!(stats.bound_addresses, 0);
    assert_eq!(
        stats.stun_bad_integrity, 1,
        "the wrong password was refused"
    );
    assert_eq!(stats.ice_tcp_closed.iter().map(|(_, n)| n).sum::<u64>(), 2);
}
