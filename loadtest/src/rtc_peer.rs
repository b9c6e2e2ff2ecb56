//! One participant's WebRTC peer connection (the async `webrtc` 0.21 crate), loopback only.
//!
//! Network rule: the peer binds `127.0.0.1:0`, gathers UDP4 host candidates only, mDNS is
//! off, the ICE server list is explicitly empty, and remote SDP is stripped of every candidate
//! that is not in 127.0.0.0/8 before it is applied ([`loopback_only_sdp`]).
//!
//! Publishing: [`RtcPeer::add_audio`] adds an Opus track; [`RtcPeer::add_video`] a VP8 track
//! with one SSRC per simulcast layer, each layer named by its rid (`q`, `h`, `f`). Simulcast
//! packets carry the negotiated `sdes:mid` and `sdes:rtp-stream-id` header extensions as a
//! browser's do, which is how the SFU tells the layers apart. Receiving: every packet of every
//! remote track goes to one channel with its media kind.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_simulcast_extension_headers, register_default_interceptors,
};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::{RTCIceGatheringState, RTCPeerConnectionState};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use thiserror::Error;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler};

/// Opus payload type of `register_default_codecs`.
pub const OPUS_PT: u8 = 111;
/// VP8 payload type of `register_default_codecs`.
pub const VP8_PT: u8 = 96;

/// How long ICE gathering may take (host candidates on loopback: milliseconds).
const GATHER_TIMEOUT: Duration = Duration::from_secs(10);

const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";

/// Why a peer-connection step failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The `webrtc` stack refused a step.
    #[error("webrtc: {0}")]
    Webrtc(String),
    /// ICE gathering did not complete in time.
    #[error("ICE gathering did not complete within {GATHER_TIMEOUT:?}")]
    GatherTimeout,
    /// A packet was written before the answer was applied.
    #[error("not negotiated yet")]
    NotNegotiated,
}

fn webrtc_err(e: impl std::fmt::Display) -> PeerError {
    PeerError::Webrtc(e.to_string())
}

/// A received RTP packet and the kind of the track it came on.
#[derive(Debug)]
pub struct Incoming {
    /// Audio or video.
    pub kind: RtpCodecKind,
    /// The packet (SRTP already removed).
    pub packet: rtc::rtp::Packet,
}

struct Handler {
    state: watch::Sender<RTCPeerConnectionState>,
    gathered: watch::Sender<bool>,
    incoming: mpsc::UnboundedSender<Incoming>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
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
        let kind = track.kind().await;
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(packet) = event
                    && incoming.send(Incoming { kind, packet }).is_err()
                {
                    return;
                }
            }
        });
    }
}

/// One simulcast layer (or the only layer) of a published video track.
#[derive(Debug, Clone, Copy)]
pub struct VideoLayer {
    /// The rid (`q`, `h`, `f`), or `None` for a single-layer track.
    pub rid: Option<&'static str>,
    /// Its SSRC.
    pub ssrc: u32,
}

/// A track this peer publishes and the RTP state to write it.
pub struct LocalTrack {
    track: Arc<TrackLocalStaticRTP>,
    kind: RtpCodecKind,
    layers: Vec<(VideoLayer, u16)>,
    mid: Option<String>,
    ext_ids: Option<(u8, u8)>,
}

impl std::fmt::Debug for LocalTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTrack")
            .field("kind", &self.kind)
            .field("layers", &self.layers)
            .field("mid", &self.mid)
            .finish_non_exhaustive()
    }
}

impl LocalTrack {
    /// The media section the track was negotiated in, once known.
    pub fn mid(&self) -> Option<&str> {
        self.mid.as_deref()
    }

    /// Writes one RTP packet of layer `layer` with `payload`.
    pub async fn write(
        &mut self,
        layer: usize,
        timestamp: u32,
        marker: bool,
        payload: Bytes,
    ) -> Result<(), PeerError> {
        let (info, seq) = self.layers.get_mut(layer).ok_or(PeerError::NotNegotiated)?;
        *seq = seq.wrapping_add(1);
        let mut header = rtc::rtp::Header {
            version: 2,
            payload_type: if self.kind == RtpCodecKind::Audio {
                OPUS_PT
            } else {
                VP8_PT
            },
            sequence_number: *seq,
            timestamp,
            ssrc: info.ssrc,
            marker,
            ..Default::default()
        };
        if let (Some(rid), Some((mid_id, rid_id)), Some(mid)) = (info.rid, self.ext_ids, &self.mid)
        {
            header
                .set_extension(mid_id, Bytes::copy_from_slice(mid.as_bytes()))
                .map_err(webrtc_err)?;
            header
                .set_extension(rid_id, Bytes::from_static(rid.as_bytes()))
                .map_err(webrtc_err)?;
        }
        self.track
            .write_rtp(rtc::rtp::Packet { header, payload })
            .await
            .map_err(webrtc_err)
    }
}

/// A loopback-only peer connection.
pub struct RtcPeer {
    pc: Arc<dyn PeerConnection>,
    state: watch::Receiver<RTCPeerConnectionState>,
    gathered: watch::Receiver<bool>,
    /// Candidates of the SFU at `.0` are reached at `.1` instead (an impairment relay).
    media_via: Option<(std::net::SocketAddr, std::net::SocketAddr)>,
}

impl std::fmt::Debug for RtcPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtcPeer")
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

impl RtcPeer {
    /// A new peer; received packets go to the returned channel.
    pub async fn new() -> Result<(Self, mpsc::UnboundedReceiver<Incoming>), PeerError> {
        let mut media_engine = MediaEngine::default();
        media_engine.register_default_codecs().map_err(webrtc_err)?;
        configure_simulcast_extension_headers(&mut media_engine).map_err(webrtc_err)?;
        let registry = register_default_interceptors(Default::default(), &mut media_engine)
            .map_err(webrtc_err)?;
        let setting_engine = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_network_types(vec![NetworkType::Udp4])
            .build();
        let configuration = RTCConfigurationBuilder::new()
            .with_ice_servers(vec![])
            .build();
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let (gathered_tx, gathered) = watch::channel(false);
        let (incoming_tx, incoming) = mpsc::unbounded_channel();
        let pc = PeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_media_engine(media_engine)
            .with_setting_engine(setting_engine)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Handler {
                state: state_tx,
                gathered: gathered_tx,
                incoming: incoming_tx,
            }))
            .with_udp_addrs(vec!["127.0.0.1:0"])
            .build()
            .await
            .map_err(webrtc_err)?;
        Ok((
            RtcPeer {
                pc: Arc::new(pc),
                state,
                gathered,
                media_via: None,
            },
            incoming,
        ))
    }

    /// Adds an Opus track with `ssrc`.
    pub async fn add_audio(&self, name: &str, ssrc: u32) -> Result<LocalTrack, PeerError> {
        self.add_track(name, RtpCodecKind::Audio, &[VideoLayer { rid: None, ssrc }])
            .await
    }

    /// Adds a VP8 track with these layers (several: simulcast, lowest first).
    pub async fn add_video(
        &self,
        name: &str,
        layers: &[VideoLayer],
    ) -> Result<LocalTrack, PeerError> {
        self.add_track(name, RtpCodecKind::Video, layers).await
    }

    async fn add_track(
        &self,
        name: &str,
        kind: RtpCodecKind,
        layers: &[VideoLayer],
    ) -> Result<LocalTrack, PeerError> {
        let codec = match kind {
            RtpCodecKind::Audio => RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48_000,
                channels: 2,
                ..Default::default()
            },
            _ => RTCRtpCodec {
                mime_type: MIME_TYPE_VP8.to_owned(),
                clock_rate: 90_000,
                ..Default::default()
            },
        };
        let encodings = layers
            .iter()
            .map(|l| RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    rid: l.rid.unwrap_or_default().to_owned(),
                    ssrc: Some(l.ssrc),
                    ..Default::default()
                },
                active: true,
                codec: codec.clone(),
                ..Default::default()
            })
            .collect();
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            format!("{name}-stream"),
            name.to_owned(),
            name.to_owned(),
            kind,
            encodings,
        )));
        self.pc
            .add_track(track.clone() as Arc<dyn TrackLocal>)
            .await
            .map_err(webrtc_err)?;
        Ok(LocalTrack {
            track,
            kind,
            layers: layers.iter().map(|l| (*l, rand::random::<u16>())).collect(),
            mid: None,
            ext_ids: None,
        })
    }

    /// Adds a receive-only transceiver (a viewer's offer needs at least one media section).
    pub async fn add_recvonly(&self, kind: RtpCodecKind) -> Result<(), PeerError> {
        self.pc
            .add_transceiver_from_kind(
                kind,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                }),
            )
            .await
            .map(|_| ())
            .map_err(webrtc_err)
    }

    /// Creates the offer, waits for gathering (no trickle) and returns the complete SDP.
    pub async fn offer(&self) -> Result<String, PeerError> {
        let offer = self.pc.create_offer(None).await.map_err(webrtc_err)?;
        self.pc
            .set_local_description(offer)
            .await
            .map_err(webrtc_err)?;
        self.local_sdp().await
    }

    async fn local_sdp(&self) -> Result<String, PeerError> {
        let mut gathered = self.gathered.clone();
        tokio::time::timeout(GATHER_TIMEOUT, gathered.wait_for(|g| *g))
            .await
            .map_err(|_| PeerError::GatherTimeout)?
            .map_err(webrtc_err)?;
        self.pc
            .local_description()
            .await
            .map(|d| d.sdp)
            .ok_or_else(|| PeerError::Webrtc("no local description".into()))
    }

    /// Sends media for the SFU at `server` to `relay` instead (an impairment relay in front of
    /// the SFU): its candidates in every remote description are rewritten before they apply.
    pub fn route_media_via(&mut self, server: std::net::SocketAddr, relay: std::net::SocketAddr) {
        self.media_via = Some((server, relay));
    }

    /// A remote description as it is applied: loopback candidates only, routed via the relay.
    fn remote_sdp(&self, sdp: &str) -> String {
        let sdp = loopback_only_sdp(sdp);
        match self.media_via {
            Some((server, relay)) => rewrite_candidates(&sdp, server, relay),
            None => sdp,
        }
    }

    /// Applies the SFU's answer to our offer.
    pub async fn apply_answer(&self, sdp: &str) -> Result<(), PeerError> {
        let desc = RTCSessionDescription::answer(self.remote_sdp(sdp)).map_err(webrtc_err)?;
        self.pc
            .set_remote_description(desc)
            .await
            .map_err(webrtc_err)
    }

    /// Answers an offer from the SFU (renegotiation).
    pub async fn answer(&self, sdp: &str) -> Result<String, PeerError> {
        let desc = RTCSessionDescription::offer(self.remote_sdp(sdp)).map_err(webrtc_err)?;
        self.pc
            .set_remote_description(desc)
            .await
            .map_err(webrtc_err)?;
        let answer = self.pc.create_answer(None).await.map_err(webrtc_err)?;
        self.pc
            .set_local_description(answer)
            .await
            .map_err(webrtc_err)?;
        self.local_sdp().await
    }

    /// A watch of the connection state.
    pub fn state(&self) -> watch::Receiver<RTCPeerConnectionState> {
        self.state.clone()
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

/// Fills in `track`'s media section and simulcast extension ids from the negotiated SDP (our
/// offer: the section whose `a=msid` names the track).
pub fn bind_local_track(track: &mut LocalTrack, track_name: &str, offer_sdp: &str) {
    let mut mid = None;
    let mut current_mid = None;
    for line in offer_sdp.lines() {
        if line.starts_with("m=") {
            current_mid = None;
        } else if let Some(m) = line.strip_prefix("a=mid:") {
            current_mid = Some(m.trim().to_owned());
        } else if let Some(msid) = line.strip_prefix("a=msid:")
            && msid.split_whitespace().nth(1) == Some(track_name)
        {
            mid = current_mid.clone();
        }
    }
    track.mid = mid;
    let ext = |uri: &str| {
        offer_sdp.lines().find_map(|l| {
            let rest = l.strip_prefix("a=extmap:")?;
            let (id, u) = rest.split_once(' ')?;
            (u.trim() == uri).then(|| id.split('/').next()?.parse::<u8>().ok())?
        })
    };
    if let (Some(m), Some(r)) = (ext(MID_URI), ext(RID_URI)) {
        track.ext_ids = Some((m, r));
    }
}

/// `sdp` without candidate lines whose address is not in 127.0.0.0/8 (network rule).
pub fn loopback_only_sdp(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        if let Some(cand) = line.trim_end().strip_prefix("a=candidate:") {
            // foundation component transport priority address port typ ...
            let loopback = cand
                .split_whitespace()
                .nth(4)
                .and_then(|a| a.parse::<std::net::Ipv4Addr>().ok())
                .is_some_and(|ip| ip.is_loopback());
            if !loopback {
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

/// `sdp` with every candidate at `from` (address and port) moved to `to`.
pub fn rewrite_candidates(
    sdp: &str,
    from: std::net::SocketAddr,
    to: std::net::SocketAddr,
) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end();
        if body.starts_with("a=candidate:") {
            let mut fields: Vec<&str> = body.split(' ').collect();
            // a=candidate:foundation component transport priority address port typ ...
            let matches = fields.len() > 5
                && fields[4].parse::<std::net::IpAddr>().ok() == Some(from.ip())
                && fields[5].parse::<u16>().ok() == Some(from.port());
            if matches {
                let (ip, port) = (to.ip().to_string(), to.port().to_string());
                fields[4] = &ip;
                fields[5] = &port;
                out.push_str(&fields.join(" "));
                out.push_str(&line[body.len()..]);
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_of_the_server_are_moved_to_the_relay() {
        let sdp = "v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n\
            a=candidate:2 1 udp 2130706431 127.0.0.1 40001 typ host\r\n";
        let out = rewrite_candidates(
            sdp,
            "127.0.0.1:40000".parse().unwrap(),
            "127.0.0.1:5555".parse().unwrap(),
        );
        assert_eq!(
            out,
            "v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5555 typ host\r\n\
             a=candidate:2 1 udp 2130706431 127.0.0.1 40001 typ host\r\n"
        );
    }

    #[test]
    fn only_loopback_candidates_survive() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
            a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n\
            a=candidate:2 1 udp 2130706431 192.168.1.4 40000 typ host\r\n\
            a=candidate:3 1 udp 2130706431 ::1 40000 typ host\r\n\
            a=candidate:4 1 udp 2130706431 abc.local 40000 typ host\r\n\
            a=candidate:5 1 udp\r\n\
            a=mid:0\r\n";
        let out = loopback_only_sdp(sdp);
        assert!(out.contains("127.0.0.1 40000"));
        for gone in ["192.168", "::1", ".local", "candidate:5"] {
            assert!(!out.contains(gone), "{gone}");
        }
        assert!(out.ends_with("a=mid:0\r\n"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn offer_is_loopback_only_and_announces_three_rids() {
        let (peer, _rx) = RtcPeer::new().await.unwrap();
        let layers = [
            VideoLayer {
                rid: Some("q"),
                ssrc: 11,
            },
            VideoLayer {
                rid: Some("h"),
                ssrc: 12,
            },
            VideoLayer {
                rid: Some("f"),
                ssrc: 13,
            },
        ];
        let _audio = peer.add_audio("mic", 10).await.unwrap();
        let mut video = peer.add_video("cam", &layers).await.unwrap();
        let sdp = peer.offer().await.unwrap();
        bind_local_track(&mut video, "cam", &sdp);
        assert_eq!(video.mid(), Some("1"));
        assert!(video.ext_ids.is_some(), "mid and rid extensions offered");
        for rid in ["q", "h", "f"] {
            assert!(sdp.contains(&format!("a=rid:{rid} send")), "{sdp}");
        }
        let candidates: Vec<&str> = sdp
            .lines()
            .filter(|l| l.starts_with("a=candidate:"))
            .collect();
        assert!(!candidates.is_empty());
        assert!(
            candidates.iter().all(|c| c.contains(" 127.0.0.1 ")),
            "{candidates:?}"
        );
        peer.close().await;
    }
}
