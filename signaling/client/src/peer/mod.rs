//! A loopback-only WebRTC peer (feature `peer`): the one native WebRTC client of the project,
//! used by the load generator and by the integration tests and benchmarks of the SFU and of
//! signaling. Built on the async `webrtc` 0.21 crate.
//!
//! Network rule: the peer binds `127.0.0.1:0`, gathers UDP4 host candidates only (TCP4 only with
//! [`PeerBuilder::ice_tcp_only`]), mDNS is off, the ICE server list is explicitly empty, and
//! every remote description is stripped of the candidates outside 127.0.0.0/8 before it is
//! applied ([`loopback_only_sdp`]). No trickle: an offer or answer is returned once gathering is
//! complete.
//!
//! Publishing: [`Peer::add_audio`] adds an Opus track, [`Peer::add_video`] a VP8 track with one
//! SSRC per simulcast layer (each named by its rid); [`LocalTrack`] writes their RTP. A source
//! added after the first answer goes on the section the SFU offers for it
//! ([`Peer::answer_publishing_video`], after `Session::publish`).
//! Receiving: every packet of every remote track goes to one channel ([`Peer::incoming`]) with
//! its kind and the mid of its media section ([`Incoming`]); [`Peer::add_receive_slots`] offers
//! one receive-only section per receive slot of a room with them. [`Peer::route_media_via`] sends
//! the media meant for the SFU to an impairment relay instead.
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | [`Peer`], [`PeerBuilder`], [`PeerError`]: building the connection, offer/answer, state |
//! | `events.rs` | the stack's events: connection state, gathering, remote tracks → [`Incoming`] |
//! | `local_track.rs` | [`LocalTrack`], [`VideoLayer`]: publishing Opus/VP8 and simulcast layers |
//! | `sdp.rs` | loopback filtering, candidate rewriting, mids and header-extension ids |
//!
//! The VP8 payload descriptor of received packets is [`crate::media`]'s, re-exported here.

mod events;
mod local_track;
mod sdp;

pub use crate::media::{vp8_descriptor_len, vp8_frame_bytes};
pub use events::Incoming;
pub use local_track::{LocalTrack, VideoLayer};
pub use rtc::peer_connection::state::RTCPeerConnectionState;
pub use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
pub use sdp::{
    AUDIO_LEVEL_URI, MID_URI, RID_URI, extmap_id, first_mid_of_kind, loopback_only_sdp,
    mid_of_track, rewrite_candidates,
};
pub use webrtc::peer_connection::Registry;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc_receiver_only,
    register_default_interceptors,
};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RTCRtpHeaderExtensionCapability,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use thiserror::Error;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::{PeerConnection, PeerConnectionBuilder};

use events::Events;
use local_track::Negotiated;

/// Opus payload type of the default codecs.
pub const OPUS_PT: u8 = 111;
/// VP8 payload type of the default codecs.
pub const VP8_PT: u8 = 96;

/// How long ICE gathering may take (host candidates on loopback: milliseconds).
const GATHER_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// The connection did not reach the awaited state in time.
    #[error("the connection did not become {wanted} within {timeout:?} (it is {current})")]
    StateTimeout {
        /// The awaited state.
        wanted: RTCPeerConnectionState,
        /// How long it was awaited.
        timeout: Duration,
        /// The state it was in at the end.
        current: RTCPeerConnectionState,
    },
    /// A write named a layer the track does not have.
    #[error("the track has no layer {0}")]
    NoSuchLayer(usize),
}

fn webrtc_err(e: impl std::fmt::Display) -> PeerError {
    PeerError::Webrtc(e.to_string())
}

/// Which interceptors the peer's RTP/RTCP passes through.
enum Interceptors {
    /// None beyond what `registry` holds (the tests' peers: the SFU sees only what a test
    /// writes).
    Only,
    /// Receiver-side transport-wide CC feedback and RTCP reports: the SFU learns what arrived
    /// when (its bandwidth estimate for this subscriber).
    TwccFeedback,
    /// The stack's defaults, as a browser has them: NACK, RTCP reports, TWCC.
    Defaults,
}

/// How a [`Peer`] is built: its media engine's extensions and its interceptors, and UDP or
/// ICE-TCP; the other network settings are not configurable (module docs).
pub struct PeerBuilder {
    simulcast_extensions: bool,
    ice_tcp_only: bool,
    audio_level: bool,
    interceptors: Interceptors,
    registry: Registry,
}

impl std::fmt::Debug for PeerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerBuilder")
            .field("simulcast_extensions", &self.simulcast_extensions)
            .field("ice_tcp_only", &self.ice_tcp_only)
            .field("audio_level", &self.audio_level)
            .finish_non_exhaustive()
    }
}

impl Default for PeerBuilder {
    fn default() -> Self {
        Self {
            simulcast_extensions: false,
            ice_tcp_only: false,
            audio_level: false,
            interceptors: Interceptors::Only,
            registry: Registry::new(),
        }
    }
}

impl PeerBuilder {
    /// Registers the mid / rid / repaired-rid header extensions (simulcast by rid, as browsers
    /// send it).
    pub fn simulcast_extensions(mut self) -> Self {
        self.simulcast_extensions = true;
        self
    }

    /// ICE over TCP only (RFC 6544), no UDP socket at all: the peer gathers TCP4 host
    /// candidates on `127.0.0.1` (active and passive) and connects to the `tcptype passive`
    /// candidate of the SFU's answer (its ICE-TCP listener), as a browser on a network that
    /// blocks UDP does.
    pub fn ice_tcp_only(mut self) -> Self {
        self.ice_tcp_only = true;
        self
    }

    /// Registers the RFC 6464 audio-level extension for audio (the SFU's speaker detection).
    pub fn audio_level(mut self) -> Self {
        self.audio_level = true;
        self
    }

    /// Runs the receiver-side transport-wide CC and RTCP report interceptors: the peer tells
    /// the SFU what arrived when.
    pub fn twcc_feedback(mut self) -> Self {
        self.interceptors = Interceptors::TwccFeedback;
        self
    }

    /// Runs the stack's default interceptors (NACK, RTCP reports, TWCC), as a browser would.
    pub fn default_interceptors(mut self) -> Self {
        self.interceptors = Interceptors::Defaults;
        self
    }

    /// Starts the interceptor chain from `registry` (e.g. one that hands inbound RTCP to the
    /// application); the other interceptor choices add to it.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = registry;
        self
    }

    /// Builds the peer connection, bound to `127.0.0.1:0`.
    ///
    /// # Errors
    ///
    /// [`PeerError::Webrtc`] when the stack refuses the configuration or cannot bind.
    pub async fn build(self) -> Result<Peer, PeerError> {
        let mut media_engine = MediaEngine::default();
        media_engine.register_default_codecs().map_err(webrtc_err)?;
        if self.simulcast_extensions {
            configure_simulcast_extension_headers(&mut media_engine).map_err(webrtc_err)?;
        }
        if self.audio_level {
            media_engine
                .register_header_extension(
                    RTCRtpHeaderExtensionCapability {
                        uri: AUDIO_LEVEL_URI.to_owned(),
                    },
                    RtpCodecKind::Audio,
                    None,
                )
                .map_err(webrtc_err)?;
        }
        let registry = match self.interceptors {
            Interceptors::Only => self.registry,
            Interceptors::TwccFeedback => configure_rtcp_reports(
                configure_twcc_receiver_only(self.registry, &mut media_engine)
                    .map_err(webrtc_err)?,
            ),
            Interceptors::Defaults => {
                register_default_interceptors(self.registry, &mut media_engine)
                    .map_err(webrtc_err)?
            }
        };
        let network = if self.ice_tcp_only {
            NetworkType::Tcp4
        } else {
            NetworkType::Udp4
        };
        let setting_engine = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_network_types(vec![network])
            .build();
        let configuration = RTCConfigurationBuilder::new()
            .with_ice_servers(vec![])
            .build();
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let (gathered_tx, gathered) = watch::channel(false);
        let (incoming_tx, incoming) = mpsc::unbounded_channel();
        let connection_slot = Arc::new(OnceLock::new());
        let builder = PeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_media_engine(media_engine)
            .with_setting_engine(setting_engine)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Events {
                state: state_tx,
                gathered: gathered_tx,
                incoming: incoming_tx,
                connection: connection_slot.clone(),
            }));
        let builder = if self.ice_tcp_only {
            builder.with_tcp_addrs(vec!["127.0.0.1:0"])
        } else {
            builder.with_udp_addrs(vec!["127.0.0.1:0"])
        };
        let connection = builder.build().await.map_err(webrtc_err)?;
        let connection: Arc<dyn PeerConnection> = Arc::new(connection);
        // Set once, right here; nothing else sets it.
        let _ = connection_slot.set(Arc::downgrade(&connection));
        Ok(Peer {
            connection,
            state,
            gathered,
            incoming,
            media_via: None,
            ice_tcp_only: self.ice_tcp_only,
            local_tracks: Mutex::new(Vec::new()),
        })
    }
}

/// A local track's name and where its negotiated facts go.
type TrackBinding = (String, Arc<OnceLock<Negotiated>>);

/// A loopback-only peer connection (module docs).
pub struct Peer {
    connection: Arc<dyn PeerConnection>,
    state: watch::Receiver<RTCPeerConnectionState>,
    gathered: watch::Receiver<bool>,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    /// Candidates of the SFU at `.0` are reached at `.1` instead (an impairment relay).
    media_via: Option<(SocketAddr, SocketAddr)>,
    /// Built with [`PeerBuilder::ice_tcp_only`].
    ice_tcp_only: bool,
    /// The local tracks whose mid is not known yet; only touched when tracks are added and
    /// descriptions set, never per packet.
    local_tracks: Mutex<Vec<TrackBinding>>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("state", &*self.state.borrow())
            .field("media_via", &self.media_via)
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// How to build one: [`PeerBuilder::build`].
    pub fn builder() -> PeerBuilder {
        PeerBuilder::default()
    }

    /// Adds an Opus track named `name` with `ssrc`.
    ///
    /// # Errors
    ///
    /// [`PeerError::Webrtc`] when the stack refuses the track.
    pub async fn add_audio(&self, name: &str, ssrc: u32) -> Result<LocalTrack, PeerError> {
        let codec = RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            ..Default::default()
        };
        self.add_track(
            name,
            RtpCodecKind::Audio,
            codec,
            &[VideoLayer::single(ssrc)],
        )
        .await
    }

    /// Adds a VP8 track named `name` with these layers (several: simulcast, each with a rid,
    /// announced in this order).
    ///
    /// # Errors
    ///
    /// [`PeerError::Webrtc`] when the stack refuses the track.
    pub async fn add_video(
        &self,
        name: &str,
        layers: &[VideoLayer],
    ) -> Result<LocalTrack, PeerError> {
        let codec = RTCRtpCodec {
            mime_type: MIME_TYPE_VP8.to_owned(),
            clock_rate: 90_000,
            ..Default::default()
        };
        self.add_track(name, RtpCodecKind::Video, codec, layers)
            .await
    }

    async fn add_track(
        &self,
        name: &str,
        kind: RtpCodecKind,
        codec: RTCRtpCodec,
        layers: &[VideoLayer],
    ) -> Result<LocalTrack, PeerError> {
        let encodings = layers
            .iter()
            .map(|l| RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    rid: l.rid.clone().unwrap_or_default(),
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
        self.connection
            .add_track(track.clone() as Arc<dyn TrackLocal>)
            .await
            .map_err(webrtc_err)?;
        let negotiated = Arc::new(OnceLock::new());
        self.bindings().push((name.to_owned(), negotiated.clone()));
        Ok(LocalTrack::new(track, kind, layers, negotiated))
    }

    /// Adds a receive-only transceiver of `kind` (a viewer's offer needs at least one media
    /// section; a subscriber's offer announces what it can receive).
    ///
    /// # Errors
    ///
    /// [`PeerError::Webrtc`] when the stack refuses it.
    pub async fn add_recvonly(&self, kind: RtpCodecKind) -> Result<(), PeerError> {
        self.add_recvonly_with(kind, None).await
    }

    /// Adds a receive-only transceiver of `kind`, offering only `codec` when given.
    async fn add_recvonly_with(
        &self,
        kind: RtpCodecKind,
        codec: Option<RTCRtpCodecParameters>,
    ) -> Result<(), PeerError> {
        let transceiver = self
            .connection
            .add_transceiver_from_kind(
                kind,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                }),
            )
            .await
            .map_err(webrtc_err)?;
        if let Some(codec) = codec {
            transceiver
                .set_codec_preferences(vec![codec])
                .await
                .map_err(webrtc_err)?;
        }
        Ok(())
    }

    /// Adds `audio` receive-only audio sections, then `video` receive-only video sections: one
    /// per receive slot of a room with receive slots (`joined.receive_slots`: `audio`, then
    /// `video` + `screen`), so the SFU's first answer carries every slot and it never has to
    /// offer them after the join. Each offers only the slot codec (Opus, or VP8 with its RTX):
    /// with every default codec, 31 sections would not fit the protocol's 60 KiB SDP cap.
    /// Call it after adding the local tracks: a track added later takes over a receive-only
    /// transceiver of its kind (as `addTrack` does in browsers), which then sends, and the SFU
    /// has to offer the slot it lost after the join.
    ///
    /// # Errors
    ///
    /// [`PeerError::Webrtc`] when the stack refuses a transceiver.
    pub async fn add_receive_slots(&self, audio: usize, video: usize) -> Result<(), PeerError> {
        let opus = RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            ..Default::default()
        };
        let vp8 = RTCRtpCodec {
            mime_type: MIME_TYPE_VP8.to_owned(),
            clock_rate: 90_000,
            ..Default::default()
        };
        for (kind, codec, payload_type, n) in [
            (RtpCodecKind::Audio, opus, OPUS_PT, audio),
            (RtpCodecKind::Video, vp8, VP8_PT, video),
        ] {
            for _ in 0..n {
                let only = RTCRtpCodecParameters {
                    rtp_codec: codec.clone(),
                    payload_type,
                };
                self.add_recvonly_with(kind, Some(only)).await?;
            }
        }
        Ok(())
    }

    /// Creates the offer, waits for gathering (no trickle) and returns the complete SDP.
    ///
    /// # Errors
    ///
    /// [`PeerError::Webrtc`], or [`PeerError::GatherTimeout`].
    pub async fn offer(&self) -> Result<String, PeerError> {
        let offer = self
            .connection
            .create_offer(None)
            .await
            .map_err(webrtc_err)?;
        self.connection
            .set_local_description(offer)
            .await
            .map_err(webrtc_err)?;
        self.local_sdp().await
    }

    /// Applies the SFU's answer to our offer (loopback candidates only, routed via the relay
    /// when one is set).
    ///
    /// # Errors
    ///
    /// [`PeerError::Webrtc`] when the answer does not parse or apply.
    pub async fn apply_answer(&self, sdp: &str) -> Result<(), PeerError> {
        let sdp = self.remote_sdp(sdp);
        let answer = RTCSessionDescription::answer(sdp.clone()).map_err(webrtc_err)?;
        self.connection
            .set_remote_description(answer)
            .await
            .map_err(webrtc_err)?;
        self.add_tcp_passive_candidates(&sdp).await
    }

    /// With [`PeerBuilder::ice_tcp_only`]: hands each distinct `tcptype passive` candidate of
    /// `sdp` to the stack once more as a remote candidate. The `webrtc` crate's ICE agent checks
    /// a TCP candidate only when it was added this way (one inside a description is not), and
    /// then opens the connection itself; it may open a second one to the same candidate, which
    /// the SFU closes when it carries no binding request.
    async fn add_tcp_passive_candidates(&self, sdp: &str) -> Result<(), PeerError> {
        if !self.ice_tcp_only {
            return Ok(());
        }
        let mut seen: Vec<&str> = Vec::new();
        for line in sdp.lines().map(str::trim) {
            let Some(candidate) = line.strip_prefix("a=") else {
                continue;
            };
            if candidate.starts_with("candidate:")
                && candidate.contains(" tcp ")
                && candidate.ends_with("tcptype passive")
                && !seen.contains(&candidate)
            {
                seen.push(candidate);
                self.connection
                    .add_ice_candidate(RTCIceCandidateInit {
                        candidate: candidate.to_owned(),
                        sdp_mline_index: Some(0),
                        ..Default::default()
                    })
                    .await
                    .map_err(webrtc_err)?;
            }
        }
        Ok(())
    }

    /// Answers an offer from the SFU (renegotiation) and returns the complete answer.
    ///
    /// # Errors
    ///
    /// [`PeerError::Webrtc`], or [`PeerError::GatherTimeout`].
    pub async fn answer(&self, offer: &str) -> Result<String, PeerError> {
        let offer = RTCSessionDescription::offer(self.remote_sdp(offer)).map_err(webrtc_err)?;
        self.connection
            .set_remote_description(offer)
            .await
            .map_err(webrtc_err)?;
        let answer = self
            .connection
            .create_answer(None)
            .await
            .map_err(webrtc_err)?;
        self.connection
            .set_local_description(answer)
            .await
            .map_err(webrtc_err)?;
        self.local_sdp().await
    }

    /// Answers the SFU's offer after a `publish` (docs/protocol.md §5): a VP8 track named
    /// `name` with `layers` goes on the section the SFU added to receive on (the stack puts a
    /// new track on the first video section with nothing sent on it, so call it on a peer
    /// whose other video sections send or whose offer the SFU made has no other such section),
    /// and the answer sends on it. Returns the complete answer and the track.
    ///
    /// # Errors
    ///
    /// [`PeerError::Webrtc`], or [`PeerError::GatherTimeout`].
    pub async fn answer_publishing_video(
        &self,
        offer: &str,
        name: &str,
        layers: &[VideoLayer],
    ) -> Result<(String, LocalTrack), PeerError> {
        let offer = RTCSessionDescription::offer(self.remote_sdp(offer)).map_err(webrtc_err)?;
        self.connection
            .set_remote_description(offer)
            .await
            .map_err(webrtc_err)?;
        let track = self.add_video(name, layers).await?;
        let answer = self
            .connection
            .create_answer(None)
            .await
            .map_err(webrtc_err)?;
        self.connection
            .set_local_description(answer)
            .await
            .map_err(webrtc_err)?;
        Ok((self.local_sdp().await?, track))
    }

    /// Sends the media meant for the SFU at `server` to `relay` instead (an impairment relay in
    /// front of the SFU): the server's candidates in every later remote description are moved
    /// there before they apply.
    pub fn route_media_via(&mut self, server: SocketAddr, relay: SocketAddr) {
        self.media_via = Some((server, relay));
    }

    /// A watch of the connection state.
    pub fn state(&self) -> watch::Receiver<RTCPeerConnectionState> {
        self.state.clone()
    }

    /// The connection state now.
    pub fn connection_state(&self) -> RTCPeerConnectionState {
        *self.state.borrow()
    }

    /// Waits up to `timeout` for the connection to reach `wanted`.
    ///
    /// # Errors
    ///
    /// [`PeerError::StateTimeout`] with the state it is in instead.
    pub async fn wait_for_state(
        &self,
        wanted: RTCPeerConnectionState,
        timeout: Duration,
    ) -> Result<(), PeerError> {
        let mut state = self.state.clone();
        match tokio::time::timeout(timeout, state.wait_for(|s| *s == wanted)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(PeerError::StateTimeout {
                wanted,
                timeout,
                current: self.connection_state(),
            }),
        }
    }

    /// Waits up to `timeout` for the connection to be connected (ICE and DTLS done).
    ///
    /// # Errors
    ///
    /// [`PeerError::StateTimeout`] with the state it is in instead.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), PeerError> {
        self.wait_for_state(RTCPeerConnectionState::Connected, timeout)
            .await
    }

    /// The packets received on every remote track, in arrival order.
    pub fn incoming(&mut self) -> &mut mpsc::UnboundedReceiver<Incoming> {
        &mut self.incoming
    }

    /// Takes the received packets' channel (to read them from another task); the peer's own
    /// [`Peer::incoming`] is closed and empty from then on.
    pub fn take_incoming(&mut self) -> mpsc::UnboundedReceiver<Incoming> {
        let (_, closed) = mpsc::unbounded_channel();
        std::mem::replace(&mut self.incoming, closed)
    }

    /// The `webrtc` connection under this peer, for what this API does not cover (its
    /// receivers' RTCP, statistics).
    pub fn connection(&self) -> &Arc<dyn PeerConnection> {
        &self.connection
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = self.connection.close().await;
    }

    /// Waits for gathering, returns the local description and records the mids and extension
    /// ids of the local tracks it holds.
    async fn local_sdp(&self) -> Result<String, PeerError> {
        let mut gathered = self.gathered.clone();
        tokio::time::timeout(GATHER_TIMEOUT, gathered.wait_for(|g| *g))
            .await
            .map_err(|_| PeerError::GatherTimeout)?
            .map_err(webrtc_err)?;
        let sdp = self
            .connection
            .local_description()
            .await
            .map(|d| d.sdp)
            .ok_or_else(|| PeerError::Webrtc("no local description".into()))?;
        self.bindings().retain(|(name, negotiated)| {
            let facts = Negotiated::from_sdp(&sdp, name);
            if facts.mid.is_none() {
                return true;
            }
            // Only this peer sets it, once; a track leaves the list when it is set.
            let _ = negotiated.set(facts);
            false
        });
        Ok(sdp)
    }

    /// A remote description as it is applied: loopback candidates only, routed via the relay.
    fn remote_sdp(&self, sdp: &str) -> String {
        let sdp = loopback_only_sdp(sdp);
        match self.media_via {
            Some((server, relay)) => rewrite_candidates(&sdp, server, relay),
            None => sdp,
        }
    }

    fn bindings(&self) -> std::sync::MutexGuard<'_, Vec<TrackBinding>> {
        // A panic while the lock is held cannot leave the list half-changed (push and retain
        // are whole), so a poisoned lock's list is still right.
        self.local_tracks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
