//! One viewer's `rtc` (sans-IO) peer connection: receive-only audio and video, loopback only
//! (UDP4, mDNS off, an explicitly empty ICE server list, one host candidate: the viewer's own
//! 127.0.0.1 socket; remote SDP stripped of every candidate outside 127.0.0.0/8 and routed via
//! the impairment relay when there is one), the same codecs and default interceptors (NACK,
//! RTCP reports) as the `async` engine's peer.

use std::net::SocketAddr;
use std::time::Instant;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::interceptor::{NackGeneratorBuilder, ReceiverReportBuilder};
use rtc::peer_connection::certificate::RTCCertificate;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    Registry, Slot, configure_nack, configure_simulcast_extension_headers,
    configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};

use call_client::peer::{loopback_only_sdp, rewrite_candidates};

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The certificate a worker's viewers share (each viewer's DTLS handshake is still its own).
pub(super) fn certificate() -> Result<RTCCertificate, String> {
    let provider = rtc::crypto::default_provider().map_err(err)?;
    let params =
        rtc::peer_connection::certificate::CertificateParams::new(vec!["loadtest".to_owned()])
            .map_err(err)?;
    RTCCertificate::generate(
        provider.crypto(),
        rtc::crypto::SignatureScheme::EcdsaP256Sha256,
        params,
    )
    .map_err(err)
}

/// The interceptors of a peer that only receives: the default set's receiving halves. It
/// negotiates what a browser does (NACK and PLI feedback, transport-wide congestion control,
/// the simulcast header extensions) and runs the NACK generator, the transport-cc feedback and
/// receiver reports, so the SFU sees the RTCP it would from a browser; the NACK responder and
/// the sender reports (send side: they only pass every received packet along) are left out,
/// two fewer hops of the handler chain per packet.
fn receiver_interceptors(media_engine: &mut MediaEngine) -> Result<Registry, String> {
    // Registers the `nack` and `nack pli` feedback; its registry (both NACK halves) is dropped.
    let _ = configure_nack(Registry::new(), media_engine);
    configure_simulcast_extension_headers(media_engine).map_err(err)?;
    let registry = Registry::new()
        .with(Slot::NackGenerator, NackGeneratorBuilder::new().build())
        .with(Slot::ReceiverReport, ReceiverReportBuilder::new().build());
    configure_twcc_receiver_only(registry, media_engine).map_err(err)
}

/// A viewer's peer connection and how remote descriptions are rewritten for it.
pub(super) struct ViewerPeer {
    pub(super) pc: RTCPeerConnection,
    /// Candidates of the SFU at `.0` are reached at `.1` instead (an impairment relay).
    media_via: Option<(SocketAddr, SocketAddr)>,
}

impl ViewerPeer {
    /// A new connection with receive-only audio and video whose offer (complete: its one host
    /// candidate is `local`) is returned with it.
    pub(super) fn offer(
        certificate: &RTCCertificate,
        local: SocketAddr,
        media_via: Option<(SocketAddr, SocketAddr)>,
        now: Instant,
    ) -> Result<(Self, String), String> {
        let mut media_engine = MediaEngine::default();
        media_engine.register_default_codecs().map_err(err)?;
        let registry = receiver_interceptors(&mut media_engine)?;
        let setting_engine = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_network_types(vec![NetworkType::Udp4])
            .build();
        let configuration = RTCConfigurationBuilder::new()
            .with_ice_servers(vec![])
            .with_certificates(vec![certificate.clone()])
            .build();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_media_engine(media_engine)
            .with_setting_engine(setting_engine)
            .with_interceptor_registry(registry)
            .build(now)
            .map_err(err)?;
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            pc.add_transceiver_from_kind(
                kind,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    streams: vec![],
                    send_encodings: vec![],
                }),
            )
            .map_err(err)?;
        }
        let offer = pc.create_offer(None).map_err(err)?;
        pc.set_local_description(now, offer).map_err(err)?;
        let candidate = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".to_owned(),
                address: local.ip().to_string(),
                port: local.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()
        .map_err(err)?;
        pc.add_local_candidate(RTCIceCandidate::from(&candidate).to_json().map_err(err)?)
            .map_err(err)?;
        // End of gathering: the one host candidate is all there is.
        pc.add_local_candidate(RTCIceCandidateInit::default())
            .map_err(err)?;
        let sdp = pc.local_description().ok_or("no local description")?.sdp;
        Ok((Self { pc, media_via }, sdp))
    }

    /// A remote description as it is applied: loopback candidates only, routed via the relay.
    fn remote_sdp(&self, sdp: &str) -> String {
        let sdp = loopback_only_sdp(sdp);
        match self.media_via {
            Some((server, relay)) => rewrite_candidates(&sdp, server, relay),
            None => sdp,
        }
    }

    /// Applies the SFU's answer to the offer.
    pub(super) fn apply_answer(&mut self, sdp: &str, now: Instant) -> Result<(), String> {
        let answer = RTCSessionDescription::answer(self.remote_sdp(sdp)).map_err(err)?;
        self.pc.set_remote_description(now, answer).map_err(err)
    }

    /// Answers an offer of the SFU (a renegotiation: tracks added or removed).
    pub(super) fn answer(&mut self, sdp: &str, now: Instant) -> Result<String, String> {
        let offer = RTCSessionDescription::offer(self.remote_sdp(sdp)).map_err(err)?;
        self.pc.set_remote_description(now, offer).map_err(err)?;
        let answer = self.pc.create_answer(None).map_err(err)?;
        self.pc.set_local_description(now, answer).map_err(err)?;
        Ok(self
            .pc
            .local_description()
            .ok_or("no local description")?
            .sdp)
    }
}
