//! A real WebRTC client for the tests: the async `webrtc` 0.21 crate, bound to 127.0.0.1:0,
//! mDNS disabled, UDP4 only, an explicitly empty ICE server list.

use std::sync::Arc;
use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc_receiver_only,
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
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, Registry,
};

/// The publisher's VP8 payload type in `register_default_codecs`.
pub(crate) const VP8_PT: u8 = 96;

struct Handler {
    state: watch::Sender<RTCPeerConnectionState>,
    gathered: watch::Sender<bool>,
    rtp: mpsc::UnboundedSender<rtc::rtp::Packet>,
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
        let rtp = self.rtp.clone();
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(packet) = event {
                    let _ = rtp.send(packet);
                }
            }
        });
    }
}

/// A test client.
pub(crate) struct TestPeer {
    pub(crate) pc: Arc<dyn PeerConnection>,
    pub(crate) state: watch::Receiver<RTCPeerConnectionState>,
    gathered: watch::Receiver<bool>,
    /// RTP packets received on any remote track.
    pub(crate) rtp: mpsc::UnboundedReceiver<rtc::rtp::Packet>,
    /// The publisher's VP8 track and its SSRC, when publishing.
    pub(crate) track: Option<(Arc<TrackLocalStaticRTP>, u32)>,
    seq: u16,
    /// Simulcast layers when publishing simulcast: rid, SSRC and that stream's last sequence
    /// number.
    pub(crate) layers: Vec<(String, u32, u16)>,
}

/// What [`TestPeer::build_with`] adds to the default codecs.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PeerOptions {
    /// Register the mid / rid / repaired-rid header extensions (simulcast by rid).
    pub(crate) simulcast_extensions: bool,
    /// Register the transport-wide CC extension and feedback, and run the receiver-side TWCC
    /// and RTCP report interceptors (the client then tells the SFU what arrived when).
    pub(crate) twcc_feedback: bool,
    /// Register the RFC 6464 audio-level extension for audio (the SFU's speaker detection).
    pub(crate) audio_level: bool,
}

impl TestPeer {
    /// A client whose media engine has the default codecs plus what `options` asks for.
    pub(crate) async fn build_with(options: PeerOptions) -> Self {
        let mut media_engine = MediaEngine::default();
        media_engine
            .register_default_codecs()
            .expect("default codecs register");
        if options.simulcast_extensions {
            configure_simulcast_extension_headers(&mut media_engine)
                .expect("simulcast extensions register");
        }
        if options.audio_level {
            media_engine
                .register_header_extension(
                    rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability {
                        uri: "urn:ietf:params:rtp-hdrext:ssrc-audio-level".to_owned(),
                    },
                    RtpCodecKind::Audio,
                    None,
                )
                .expect("audio-level extension registers");
        }
        let mut registry = Registry::new();
        if options.twcc_feedback {
            registry = configure_twcc_receiver_only(registry, &mut media_engine)
                .expect("twcc receiver registers");
            registry = configure_rtcp_reports(registry);
        }
        let setting_engine = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_network_types(vec![NetworkType::Udp4])
            .build();
        let configuration = RTCConfigurationBuilder::new()
            .with_ice_servers(vec![])
            .build();
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let (gathered_tx, gathered) = watch::channel(false);
        let (rtp_tx, rtp) = mpsc::unbounded_channel();
        let pc = PeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .with_setting_engine(setting_engine)
            .with_handler(Arc::new(Handler {
                state: state_tx,
                gathered: gathered_tx,
                rtp: rtp_tx,
            }))
            .with_udp_addrs(vec!["127.0.0.1:0"])
            .build()
            .await
            .expect("client peer connection builds");
        Self {
            pc: Arc::new(pc),
            state,
            gathered,
            rtp,
            track: None,
            seq: 0,
            layers: Vec::new(),
        }
    }

    /// A client that publishes one VP8 track as rid simulcast, one encoding per rid in
    /// `rids` (announced in that order), with SSRCs `0x5100_0000 + index`.
    pub(crate) async fn simulcast_publisher(rids: &[&str]) -> Self {
        let mut peer = Self::build_with(PeerOptions {
            simulcast_extensions: true,
            ..Default::default()
        })
        .await;
        let codings = rids
            .iter()
            .enumerate()
            .map(|(i, rid)| RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    rid: (*rid).to_owned(),
                    ssrc: Some(0x5100_0000 + i as u32),
                    ..Default::default()
                },
                active: true,
                codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_VP8.to_owned(),
                    clock_rate: 90000,
                    ..Default::default()
                },
                ..Default::default()
            })
            .collect();
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "pub-stream".to_owned(),
            "pub-simulcast".to_owned(),
            "pub-simulcast".to_owned(),
            RtpCodecKind::Video,
            codings,
        )));
        peer.pc
            .add_track(track.clone() as Arc<dyn TrackLocal>)
            .await
            .expect("simulcast track added");
        peer.layers = rids
            .iter()
            .enumerate()
            .map(|(i, rid)| ((*rid).to_owned(), 0x5100_0000 + i as u32, 0))
            .collect();
        peer.track = Some((track, 0x5100_0000));
        peer
    }

    /// Sends one VP8-shaped RTP packet on simulcast layer `index` (as created), with the mid
    /// and rid header extensions under the ids `ext` = `(mid id, rid id)` the offer carried.
    pub(crate) async fn send_layer(
        &mut self,
        index: usize,
        ext: (u8, u8),
        mid: &str,
        timestamp: u32,
        payload: &[u8],
    ) {
        let (track, _) = self.track.as_ref().expect("publisher");
        let (rid, ssrc, seq) = &mut self.layers[index];
        *seq = seq.wrapping_add(1);
        let mut header = rtc::rtp::Header {
            version: 2,
            payload_type: VP8_PT,
            sequence_number: *seq,
            timestamp,
            ssrc: *ssrc,
            marker: true,
            ..Default::default()
        };
        header
            .set_extension(ext.0, bytes::Bytes::copy_from_slice(mid.as_bytes()))
            .expect("mid extension fits");
        header
            .set_extension(ext.1, bytes::Bytes::copy_from_slice(rid.as_bytes()))
            .expect("rid extension fits");
        let packet = rtc::rtp::Packet {
            header,
            payload: bytes::Bytes::copy_from_slice(payload),
        };
        track.write_rtp(packet).await.expect("rtp written");
    }

    /// A client that publishes one VP8 track.
    pub(crate) async fn publisher() -> Self {
        Self::publisher_with(PeerOptions::default()).await
    }

    /// A client with `options` that publishes one VP8 track.
    pub(crate) async fn publisher_with(options: PeerOptions) -> Self {
        let mut peer = Self::build_with(options).await;
        let ssrc = 0x1234_5678;
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "pub-stream".to_owned(),
            "pub-video".to_owned(),
            "pub-video".to_owned(),
            RtpCodecKind::Video,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                active: true,
                codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_VP8.to_owned(),
                    clock_rate: 90000,
                    ..Default::default()
                },
                ..Default::default()
            }],
        )));
        peer.pc
            .add_track(track.clone() as Arc<dyn TrackLocal>)
            .await
            .expect("track added");
        peer.track = Some((track, ssrc));
        peer
    }

    /// Adds an Opus track with `ssrc` (before the offer) and returns it for writing RTP.
    pub(crate) async fn add_audio_track(&self, ssrc: u32) -> Arc<TrackLocalStaticRTP> {
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            format!("stream-{ssrc:08x}"),
            format!("audio-{ssrc:08x}"),
            format!("audio-{ssrc:08x}"),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                active: true,
                codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_OPUS.to_owned(),
                    clock_rate: 48000,
                    channels: 2,
                    ..Default::default()
                },
                ..Default::default()
            }],
        )));
        self.pc
            .add_track(track.clone() as Arc<dyn TrackLocal>)
            .await
            .expect("audio track added");
        track
    }

    /// A client that only receives: one video and one audio track.
    pub(crate) async fn audio_video_subscriber() -> Self {
        let peer = Self::subscriber().await;
        peer.pc
            .add_transceiver_from_kind(
                RtpCodecKind::Audio,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                }),
            )
            .await
            .expect("recvonly audio transceiver added");
        peer
    }

    /// A client that only receives one video track.
    pub(crate) async fn subscriber() -> Self {
        Self::subscriber_with(PeerOptions::default()).await
    }

    /// A client with `options` that only receives one video track.
    pub(crate) async fn subscriber_with(options: PeerOptions) -> Self {
        let peer = Self::build_with(options).await;
        peer.pc
            .add_transceiver_from_kind(
                RtpCodecKind::Video,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                }),
            )
            .await
            .expect("recvonly transceiver added");
        peer
    }

    /// Creates an offer, waits for gathering (no trickle) and returns the complete SDP.
    pub(crate) async fn offer(&self) -> String {
        let offer = self.pc.create_offer(None).await.expect("offer");
        self.pc
            .set_local_description(offer)
            .await
            .expect("set local offer");
        let mut gathered = self.gathered.clone();
        tokio::time::timeout(Duration::from_secs(5), gathered.wait_for(|g| *g))
            .await
            .expect("gathering completes")
            .expect("handler alive");
        self.pc
            .local_description()
            .await
            .expect("local description")
            .sdp
    }

    pub(crate) async fn apply_answer(&self, sdp: String) {
        self.pc
            .set_remote_description(RTCSessionDescription::answer(sdp).expect("answer parses"))
            .await
            .expect("answer applies");
    }

    /// Answers an offer from the SFU (renegotiation).
    pub(crate) async fn answer(&self, sdp: String) -> String {
        self.pc
            .set_remote_description(RTCSessionDescription::offer(sdp).expect("offer parses"))
            .await
            .expect("offer applies");
        let answer = self.pc.create_answer(None).await.expect("answer");
        self.pc
            .set_local_description(answer)
            .await
            .expect("set local answer");
        self.pc
            .local_description()
            .await
            .expect("local description")
            .sdp
    }

    /// Waits until the connection reaches `wanted`.
    pub(crate) async fn wait_state(
        &self,
        wanted: RTCPeerConnectionState,
        timeout: Duration,
    ) -> bool {
        let mut state = self.state.clone();
        tokio::time::timeout(timeout, state.wait_for(|s| *s == wanted))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Sends one VP8-shaped RTP packet with `payload` on the published track.
    pub(crate) async fn send_rtp(&mut self, payload: &[u8]) {
        let (track, ssrc) = self.track.as_ref().expect("publisher");
        self.seq = self.seq.wrapping_add(1);
        let packet = rtc::rtp::Packet {
            header: rtc::rtp::Header {
                version: 2,
                payload_type: VP8_PT,
                sequence_number: self.seq,
                timestamp: u32::from(self.seq) * 3000,
                ssrc: *ssrc,
                marker: true,
                ..Default::default()
            },
            payload: bytes::Bytes::copy_from_slice(payload),
        };
        track.write_rtp(packet).await.expect("rtp written");
    }

    pub(crate) async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

impl TestPeer {
    /// A client with the default codecs whose interceptor chain is `registry`: lets a test
    /// install its own interceptor, e.g. one that hands inbound RTCP to the application.
    pub(crate) async fn build_with_registry(registry: Registry) -> Self {
        let mut media_engine = MediaEngine::default();
        media_engine
            .register_default_codecs()
            .expect("default codecs register");
        let setting_engine = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_network_types(vec![NetworkType::Udp4])
            .build();
        let configuration = RTCConfigurationBuilder::new()
            .with_ice_servers(vec![])
            .build();
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let (gathered_tx, gathered) = watch::channel(false);
        let (rtp_tx, rtp) = mpsc::unbounded_channel();
        let pc = PeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .with_setting_engine(setting_engine)
            .with_handler(Arc::new(Handler {
                state: state_tx,
                gathered: gathered_tx,
                rtp: rtp_tx,
            }))
            .with_udp_addrs(vec!["127.0.0.1:0"])
            .build()
            .await
            .expect("client peer connection builds");
        Self {
            pc: Arc::new(pc),
            state,
            gathered,
            rtp,
            track: None,
            seq: 0,
            layers: Vec::new(),
        }
    }

    /// Adds one VP8 track with SSRC `ssrc` to a client built without one, as
    /// [`TestPeer::publisher`] does; [`TestPeer::send_rtp`] then writes on it.
    pub(crate) async fn add_video_track(&mut self, ssrc: u32) {
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "pub-stream".to_owned(),
            "pub-video".to_owned(),
            "pub-video".to_owned(),
            RtpCodecKind::Video,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                active: true,
                codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_VP8.to_owned(),
                    clock_rate: 90000,
                    ..Default::default()
                },
                ..Default::default()
            }],
        )));
        self.pc
            .add_track(track.clone() as Arc<dyn TrackLocal>)
            .await
            .expect("track added");
        self.track = Some((track, ssrc));
    }
}

/// Length of a VP8 payload descriptor (RFC 7741 §4.2), read independently of the SFU's parser.
pub(crate) fn vp8_descriptor_len(p: &[u8]) -> usize {
    let mut len = 1;
    if p[0] & 0x80 != 0 {
        let x = p[1];
        len += 1;
        if x & 0x80 != 0 {
            len += if p[len] & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            len += 1;
        }
        if x & 0x30 != 0 {
            len += 1;
        }
    }
    len
}
