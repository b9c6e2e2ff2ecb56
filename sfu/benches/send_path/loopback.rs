//! The bench's receivers: real `call_client::peer` clients connected to a shard through
//! loopback relays that forward until they are told to go quiet, and a shard handler that only
//! reports connections (the bench sends with `ShardHandle::send_rtp` itself).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use call_client::peer::{Peer, RtpCodecKind};
use sfu::transport::{
    MediaHandler, Outbox, OutgoingTrack, PeerEvent, PeerId, ShardHandle, TransportConfig,
    start_shard,
};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Reports every connected peer; drops all media (nothing is forwarded).
pub(crate) struct ConnectionsOnly(mpsc::UnboundedSender<PeerId>);

impl MediaHandler for ConnectionsOnly {
    fn on_peer_event(&mut self, event: PeerEvent, _out: &mut Outbox<'_>) {
        if let PeerEvent::Connected { peer, .. } = event {
            let _ = self.0.send(peer);
        }
    }

    fn on_rtp(&mut self, _peer: PeerId, _rtp: &[u8], _now: Instant, _out: &mut Outbox<'_>) {}

    fn on_rtcp(&mut self, _peer: PeerId, _rtcp: &[u8], _now: Instant, _out: &mut Outbox<'_>) {}
}

/// A shard on loopback and the peers it reports connected.
pub(crate) struct Shard {
    pub(crate) handle: ShardHandle<ConnectionsOnly>,
    connected: mpsc::UnboundedReceiver<PeerId>,
}

impl Shard {
    pub(crate) async fn start(config: TransportConfig) -> Self {
        let (tx, connected) = mpsc::unbounded_channel();
        let handle = start_shard(config, ConnectionsOnly(tx))
            .await
            .expect("shard starts");
        Self { handle, connected }
    }

    /// Connects a receive-only client through a relay of its own to the shard, which sends it
    /// `track`; returns the shard's id for it, the client and the relay.
    pub(crate) async fn connect_receiver(
        &mut self,
        track: OutgoingTrack,
    ) -> (PeerId, Peer, QuietableRelay) {
        let relay = QuietableRelay::start(self.handle.local_addr()).await;
        let mut client = Peer::builder().build().await.expect("client builds");
        client
            .add_recvonly(RtpCodecKind::Video)
            .await
            .expect("recvonly video");
        client.route_media_via(self.handle.local_addr(), relay.client_facing);
        let added = self
            .handle
            .add_peer(client.offer().await.expect("offer"), vec![track])
            .await
            .expect("peer added");
        client
            .apply_answer(&added.answer)
            .await
            .expect("answer applies");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let peer = tokio::time::timeout_at(deadline, self.connected.recv())
                .await
                .expect("the receiver connects within 10 s")
                .expect("shard running");
            if peer == added.peer {
                break;
            }
        }
        (added.peer, client, relay)
    }
}

/// A UDP relay between one client and the shard that forwards both ways until
/// [`QuietableRelay::go_quiet`], then reads and discards (the receive cost stays, the client
/// hears nothing more).
pub(crate) struct QuietableRelay {
    /// Where the client sends (its answer's candidate is moved here).
    client_facing: SocketAddr,
    /// The address the shard sees and sends to.
    pub(crate) sfu_facing: SocketAddr,
    quiet: Arc<AtomicBool>,
}

impl QuietableRelay {
    async fn start(sfu: SocketAddr) -> Self {
        let client_side = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let sfu_side = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let client_facing = client_side.local_addr().expect("bound");
        let sfu_facing = sfu_side.local_addr().expect("bound");
        let quiet = Arc::new(AtomicBool::new(false));
        let (client_tx, mut client_rx) = tokio::sync::watch::channel(None::<SocketAddr>);
        {
            let (client_side, sfu_side, quiet) =
                (client_side.clone(), sfu_side.clone(), quiet.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                while let Ok((n, from)) = client_side.recv_from(&mut buf).await {
                    let _ = client_tx.send(Some(from));
                    if !quiet.load(Ordering::Relaxed) {
                        let _ = sfu_side.send_to(&buf[..n], sfu).await;
                    }
                }
            });
        }
        {
            let quiet = quiet.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                while let Ok((n, _)) = sfu_side.recv_from(&mut buf).await {
                    let client = *client_rx.borrow_and_update();
                    if let Some(client) = client
                        && !quiet.load(Ordering::Relaxed)
                    {
                        let _ = client_side.send_to(&buf[..n], client).await;
                    }
                }
            });
        }
        Self {
            client_facing,
            sfu_facing,
            quiet,
        }
    }

    /// Stops forwarding in both directions.
    pub(crate) fn go_quiet(&self) {
        self.quiet.store(true, Ordering::Relaxed);
    }
}
