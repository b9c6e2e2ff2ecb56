//! One viewer's `rtc` (sans-IO) peer connection: receive-only audio and video, loopback only
//! (UDP4, mDNS off, an explicitly empty ICE server list, one host candidate: the viewer's own
//! 127.0.0.1 socket; remote SDP stripped of every candidate outside 127.0.0.0/8 and routed via
//! the impairment relay when there is one), the same codecs and negotiated feedback (NACK,
//! PLI, transport-cc) as the `async` engine's peer, and no interceptor (see
//! [`receiver_interceptors`]).

use std::net::SocketAddr;
use std::time::Instant;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::peer_connection::certificate::RTCCertificate;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    Registry, configure_nack, configure_simulcast_extension_headers, configure_twcc_receiver_only,
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

use call_client::peer::{extmap_id, loopback_only_sdp, rewrite_candidates};
use sfu_forwarding::ExtensionIds;

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

/// The RTP header extension that carries the transport-wide sequence number.
const TRANSPORT_CC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// A peer that only receives negotiates what a browser does (NACK and PLI feedback,
/// transport-wide congestion control, the simulcast header extensions) but registers no
/// interceptor: most packets skip `rtc`'s pipeline (the worker's short path), so the viewer
/// writes its receiver reports, NACKs and transport-cc feedback itself (`feedback.rs`), for
/// the packets of both paths. An interceptor would see only the pipeline's few packets and
/// report the rest lost.
fn receiver_interceptors(media_engine: &mut MediaEngine) -> Result<Registry, String> {
    // Each registers its feedback and header extension with the media engine; the
    // interceptors they add to the registry are dropped with it.
    let _ = configure_nack(Registry::new(), media_engine);
    let _ = configure_twcc_receiver_only(Registry::new(), media_engine).map_err(err)?;
    configure_simulcast_extension_headers(media_engine).map_err(err)?;
    Ok(Registry::new())
}

/// A viewer's peer connection and how remote descriptions are rewritten for it.
pub(super) struct ViewerPeer {
    pub(super) pc: RTCPeerConnection,
    /// Candidates of the SFU at `.0` are reached at `.1` instead (an impairment relay).
    media_via: Option<(SocketAddr, SocketAddr)>,
    /// Where the SFU's packets carry their header extensions (the last remote description's
    /// `a=extmap`; only the transport-wide sequence number is read).
    pub(super) extension_ids: ExtensionIds,
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
        Ok((
            Self {
                pc,
                media_via,
                extension_ids: ExtensionIds::default(),
            },
            sdp,
        ))
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
        self.pc.set_remote_description(now, answer).map_err(err)?;
        self.extension_ids = extension_ids(sdp);
        Ok(())
    }

    /// Answers an offer of the SFU (a renegotiation: tracks added or removed).
    pub(super) fn answer(&mut self, sdp: &str, now: Instant) -> Result<String, String> {
        let offer = RTCSessionDescription::offer(self.remote_sdp(sdp)).map_err(err)?;
        self.pc.set_remote_description(now, offer).map_err(err)?;
        self.extension_ids = extension_ids(sdp);
        let answer = self.pc.create_answer(None).map_err(err)?;
        self.pc.set_local_description(now, answer).map_err(err)?;
        Ok(self
            .pc
            .local_description()
            .ok_or("no local description")?
            .sdp)
    }
}

/// The header-extension ids of a remote description the viewer reads packets with.
fn extension_ids(sdp: &str) -> ExtensionIds {
    ExtensionIds {
        transport_cc: extmap_id(sdp, TRANSPORT_CC_URI),
        ..ExtensionIds::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transport_wide_sequence_number_is_found_by_its_extmap() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
                   a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
                   a=extmap:5 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n";
        assert_eq!(extension_ids(sdp).transport_cc, Some(5));
        assert_eq!(extension_ids("v=0\r\n").transport_cc, None);
    }
}
