//! A UDP relay between a client and the SFU on loopback: lets a test duplicate (replay) or
//! forge SRTP packets, silence a peer, or police the SFU→client direction to a bit rate (a slow, lossy
//! downlink) without the client knowing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use tokio::net::UdpSocket;

/// Controls shared with the relay task.
#[derive(Default)]
pub(crate) struct RelayControl {
    /// Drop everything in both directions.
    pub(crate) blackhole: AtomicBool,
    /// Send the next client→SFU SRTP packet twice (set back to false once done).
    pub(crate) replay_next_srtp: AtomicBool,
    /// SRTP packets replayed so far.
    pub(crate) replayed: AtomicUsize,
    /// Send a forged copy of the next client→SFU SRTP packet (its authentication tag's last
    /// byte flipped) just before the packet itself (set back to false once done).
    pub(crate) forge_next_srtp: AtomicBool,
    /// Forged SRTP packets sent so far.
    pub(crate) forged: AtomicUsize,
    /// Police SFU→client datagrams to this many bit/s (0 = no limit): a token bucket of
    /// [`POLICER_BURST_BYTES`] drops what does not fit, like a slow link with a short queue.
    pub(crate) downlink_bps: AtomicU64,
    /// SFU→client datagrams dropped by the policer.
    pub(crate) policed: AtomicUsize,
    /// Drop every n-th client→SFU RTP datagram (0 = none): a lossy uplink.
    pub(crate) drop_uplink_rtp_every: AtomicUsize,
    /// Client→SFU RTP datagrams dropped that way.
    pub(crate) dropped_uplink: AtomicUsize,
}

/// Depth of the downlink policer's token bucket.
pub(crate) const POLICER_BURST_BYTES: f64 = 4000.0;

pub(crate) struct Relay {
    /// The address the client should send to (`Peer::route_media_via` moves the SFU's
    /// candidate here).
    pub(crate) client_facing: SocketAddr,
    /// The address the SFU sees the client's datagrams come from.
    pub(crate) sfu_facing: SocketAddr,
    pub(crate) control: Arc<RelayControl>,
}

impl Relay {
    /// Starts a relay forwarding datagrams from one client to `sfu`, using one socket facing the
    /// client and one facing the SFU (so the SFU sees a single remote address).
    pub(crate) async fn start(sfu: SocketAddr) -> Self {
        let client_side = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let sfu_side = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let client_facing = client_side.local_addr().unwrap();
        let sfu_facing = sfu_side.local_addr().unwrap();
        let control = Arc::new(RelayControl::default());
        let client_addr = Arc::new(tokio::sync::Mutex::new(None::<SocketAddr>));

        {
            let (client_side, sfu_side, control, client_addr) = (
                client_side.clone(),
                sfu_side.clone(),
                control.clone(),
                client_addr.clone(),
            );
            tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                let mut rtp_seen = 0usize;
                while let Ok((n, from)) = client_side.recv_from(&mut buf).await {
                    *client_addr.lock().await = Some(from);
                    if control.blackhole.load(Ordering::SeqCst) {
                        continue;
                    }
                    let is_rtp =
                        matches!(buf[0], 128..=191) && n > 12 && !matches!(buf[1], 192..=223);
                    if is_rtp {
                        rtp_seen += 1;
                        let every = control.drop_uplink_rtp_every.load(Ordering::SeqCst);
                        if every > 0 && rtp_seen.is_multiple_of(every) {
                            control.dropped_uplink.fetch_add(1, Ordering::SeqCst);
                            continue;
                        }
                    }
                    if is_rtp && control.forge_next_srtp.swap(false, Ordering::SeqCst) {
                        let mut forged = buf[..n].to_vec();
                        forged[n - 1] ^= 0x01;
                        let _ = sfu_side.send_to(&forged, sfu).await;
                        control.forged.fetch_add(1, Ordering::SeqCst);
                    }
                    let _ = sfu_side.send_to(&buf[..n], sfu).await;
                    if is_rtp && control.replay_next_srtp.swap(false, Ordering::SeqCst) {
                        let _ = sfu_side.send_to(&buf[..n], sfu).await;
                        control.replayed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
        {
            let control = control.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                let mut tokens = POLICER_BURST_BYTES;
                let mut refilled = Instant::now();
                while let Ok((n, _)) = sfu_side.recv_from(&mut buf).await {
                    if control.blackhole.load(Ordering::SeqCst) {
                        continue;
                    }
                    let bps = control.downlink_bps.load(Ordering::SeqCst);
                    let now = Instant::now();
                    if bps > 0 {
                        let elapsed = now.duration_since(refilled).as_secs_f64();
                        tokens = (tokens + elapsed * bps as f64 / 8.0).min(POLICER_BURST_BYTES);
                        if tokens < n as f64 {
                            control.policed.fetch_add(1, Ordering::SeqCst);
                            refilled = now;
                            continue;
                        }
                        tokens -= n as f64;
                    } else {
                        tokens = POLICER_BURST_BYTES;
                    }
                    refilled = now;
                    if let Some(client) = *client_addr.lock().await {
                        let _ = client_side.send_to(&buf[..n], client).await;
                    }
                }
            });
        }
        Self {
            client_facing,
            sfu_facing,
            control,
        }
    }
}
