//! What the `webrtc` stack tells the peer: connection state, the end of ICE gathering, and the
//! remote tracks, whose packets go to one channel tagged with their kind and media section.

use std::sync::{Arc, OnceLock, Weak};

use rtc::peer_connection::state::{RTCIceGatheringState, RTCPeerConnectionState};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{PeerConnection, PeerConnectionEventHandler};

/// A received RTP packet, the kind of the track it came on and that track's media section.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Audio or video.
    pub kind: RtpCodecKind,
    /// The mid of the media section the track arrived on (`None` when the stack no longer
    /// knows the transceiver, e.g. while the connection closes).
    pub mid: Option<Arc<str>>,
    /// The packet (SRTP already removed).
    pub packet: rtc::rtp::Packet,
}

/// The peer connection's event handler: one owner of each watch it feeds.
pub(super) struct Events {
    pub(super) state: watch::Sender<RTCPeerConnectionState>,
    pub(super) gathered: watch::Sender<bool>,
    pub(super) incoming: mpsc::UnboundedSender<Incoming>,
    /// The connection, set once it is built (the handler is built before it), to look up the
    /// media section of a remote track.
    pub(super) connection: Arc<OnceLock<Weak<dyn PeerConnection>>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.state.send(state);
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(true);
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let incoming = self.incoming.clone();
        let connection = self.connection.get().and_then(Weak::upgrade);
        tokio::spawn(async move {
            let kind = track.kind().await;
            let mid = match connection {
                Some(connection) => mid_of_remote_track(connection.as_ref(), &track).await,
                None => None,
            };
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(packet) = event
                    && incoming
                        .send(Incoming {
                            kind,
                            mid: mid.clone(),
                            packet,
                        })
                        .is_err()
                {
                    return;
                }
            }
        });
    }
}

/// The mid of the transceiver whose receiver carries `track`.
async fn mid_of_remote_track(
    connection: &dyn PeerConnection,
    track: &Arc<dyn TrackRemote>,
) -> Option<Arc<str>> {
    for transceiver in connection.get_transceivers().await {
        let Ok(Some(receiver)) = transceiver.receiver().await else {
            continue;
        };
        // The stack hands `on_track` the very track its receiver holds.
        if std::ptr::addr_eq(Arc::as_ptr(receiver.track()), Arc::as_ptr(track)) {
            return transceiver.mid().await.ok().flatten().map(Arc::from);
        }
    }
    None
}
