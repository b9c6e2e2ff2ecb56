//! One peer connection inside a shard: the `rtc` state machine plus what the shard knows about it
//! (its ICE credentials, the remote addresses it proved, its timers).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::ice::tcp_type::TcpType;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::certificate::RTCCertificate;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_RTX;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::RTCTrackEventInit;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RTCRtpHeaderExtensionParameters, RTCRtpRtxParameters,
};
use rtc::rtp_transceiver::{
    RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverId, RTCRtpTransceiverInit,
};

use super::codecs::{codec_for_mime, media_kind, rtc_kind, sfu_media_engine};
use super::config::{DtlsRole, TransportConfig};
use super::error::TransportError;
use super::events::{
    IncomingTrack, MediaKind, NegotiatedCodec, NegotiatedExtension, NegotiatedOutgoingTrack,
    OutgoingTrack, ReceiveSection,
};
use super::rtcp_delivery;
use super::sections::{SectionDirection, sections};

/// At most this many remote addresses are bound to one peer (each one proved by an authenticated
/// binding request); older ones are forgotten first.
pub(crate) const MAX_ADDRESSES_PER_PEER: usize = 4;

/// Everything shared by the peers of one shard when building their connections.
pub(crate) struct PeerFactory {
    pub(crate) certificate: RTCCertificate,
    /// The advertised address and the socket's port: the UDP host candidate.
    pub(crate) local_addr: SocketAddr,
    /// The advertised address and the ICE-TCP listener's port: the `tcptype passive` host
    /// candidate, when ICE-TCP is on.
    pub(crate) tcp_addr: Option<SocketAddr>,
    pub(crate) dtls_role: DtlsRole,
    pub(crate) consent_timeout: Duration,
}

impl PeerFactory {
    pub(crate) fn new(
        config: &TransportConfig,
        port: u16,
        tcp_addr: Option<SocketAddr>,
    ) -> Result<Self, String> {
        let provider = rtc::crypto::default_provider().map_err(|e| e.to_string())?;
        let params = rcgen_params()?;
        let certificate = RTCCertificate::generate(
            provider.crypto(),
            rtc::crypto::SignatureScheme::EcdsaP256Sha256,
            params,
        )
        .map_err(|e| e.to_string())?;
        Ok(Self {
            certificate,
            local_addr: SocketAddr::new(config.advertised_ip, port),
            tcp_addr,
            dtls_role: config.dtls_role,
            consent_timeout: config.consent_timeout,
        })
    }

    fn build_connection(
        &self,
        ufrag: &str,
        pwd: &str,
        now: Instant,
    ) -> Result<RTCPeerConnection, TransportError> {
        let mut networks = vec![if self.local_addr.is_ipv4() {
            NetworkType::Udp4
        } else {
            NetworkType::Udp6
        }];
        if let Some(tcp) = self.tcp_addr {
            networks.push(if tcp.is_ipv4() {
                NetworkType::Tcp4
            } else {
                NetworkType::Tcp6
            });
        }
        // rtc's own ICE failure detection is a backstop behind the shard's consent check: it
        // fires a third later, so the shard's `ConsentExpired` is what normally ends a silent
        // peer.
        let disconnected = self.consent_timeout / 3;
        let setting_engine = SettingEngineBuilder::new()
            .with_lite(true)
            .with_ice_credentials(ufrag.to_owned(), pwd.to_owned())
            .with_answering_dtls_role(match self.dtls_role {
                DtlsRole::Server => RTCDtlsRole::Server,
                DtlsRole::Client => RTCDtlsRole::Client,
            })
            .with_ice_timeouts(
                Some(disconnected),
                Some(self.consent_timeout),
                Some(Duration::from_secs(2)),
            )
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_network_types(networks)
            .build();
        let configuration = RTCConfigurationBuilder::new()
            .with_certificates(vec![self.certificate.clone()])
            .build();
        Ok(RTCPeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_setting_engine(setting_engine)
            .with_media_engine(sfu_media_engine()?)
            .with_interceptor_registry(rtc::interceptor::Registry::new().with(
                rtc::interceptor::Slot::from(rtcp_delivery::SLOT),
                rtcp_delivery::DeliverRtcp::default(),
            ))
            .build(now)?)
    }

    /// The host candidates: UDP, and ICE-TCP passive when it is on. The TCP one's priority is
    /// lower (RFC 6544 §4.2: its local preference carries the direction, 4 for passive, under
    /// UDP's 65535), so a client that reaches both uses UDP.
    fn host_candidates(
        &self,
    ) -> Result<Vec<rtc::peer_connection::transport::RTCIceCandidateInit>, TransportError> {
        let udp = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".to_owned(),
                address: self.local_addr.ip().to_string(),
                port: self.local_addr.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()?;
        let mut candidates = vec![RTCIceCandidate::from(&udp).to_json()?];
        if let Some(tcp_addr) = self.tcp_addr {
            let tcp = CandidateHostConfig {
                base_config: CandidateConfig {
                    network: "tcp".to_owned(),
                    address: tcp_addr.ip().to_string(),
                    port: tcp_addr.port(),
                    component: 1,
                    ..Default::default()
                },
                tcp_type: TcpType::Passive,
            }
            .new_candidate_host()?;
            candidates.push(RTCIceCandidate::from(&tcp).to_json()?);
        }
        Ok(candidates)
    }
}

fn rcgen_params() -> Result<rtc::peer_connection::certificate::CertificateParams, String> {
    rtc::peer_connection::certificate::CertificateParams::new(vec!["sfu".to_owned()])
        .map_err(|e| e.to_string())
}

/// One outgoing track and the `rtc` sender carrying it.
struct OutgoingSender {
    ssrc: u32,
    sender: RTCRtpSenderId,
}

/// A peer connection held by a shard.
pub(crate) struct Peer {
    pub(crate) pc: RTCPeerConnection,
    pub(crate) ufrag: String,
    pub(crate) pwd: String,
    /// Remote addresses proved by authenticated binding requests, newest last.
    pub(crate) addresses: Vec<SocketAddr>,
    pub(crate) created: Instant,
    pub(crate) last_consent: Option<Instant>,
    pub(crate) connected: bool,
    /// The deadline this peer is filed under in the shard's timer set.
    pub(crate) scheduled: Option<Instant>,
    /// Whether the peer is queued for the shard's next output pass.
    pub(crate) dirty: bool,
    /// An outgoing track changed while an offer was outstanding: offer again after the answer.
    pub(crate) renegotiate_after_answer: bool,
    /// A datagram went into the `rtc` pipeline since the shard last drained the session's
    /// output: until it is drained the short receive path waits, so the media handler sees the
    /// peer's packets, and the tracks they open, in arrival order.
    pub(crate) pipeline_reads_pending: bool,
    outgoing: Vec<OutgoingSender>,
    /// Outgoing tracks added before the peer connected: the shard attaches them and offers once
    /// it is.
    deferred: Vec<OutgoingTrack>,
    /// Whether the shard offers once the peer is connected (deferred tracks, tracks the first
    /// answer had no section for, tracks removed before then).
    offer_on_connect: bool,
    /// Sections placed in the SDP with nothing to send and nothing to receive (`inactive`): a
    /// viewer's `recvonly` section the SFU had no track for, or one a removed track left. The
    /// next outgoing track of their kind takes one before a section is added.
    idle: Vec<RTCRtpTransceiverId>,
    /// Sections the SFU added to receive on at a participant's request
    /// ([`Peer::add_receive_section`]): never taken for an outgoing track, receiving or not.
    receive_sections: Vec<RTCRtpTransceiverId>,
}

impl Peer {
    /// Builds a peer connection answering `offer`. Each `outgoing` track gets a `sendonly`
    /// transceiver of its own (see [`Peer::attach_outgoing`]): the answer carries those a
    /// `recvonly` section of the offer took (a viewer's); the others are offered once the peer
    /// is connected ([`Peer::take_deferred`]).
    pub(crate) fn from_offer(
        factory: &PeerFactory,
        ufrag: String,
        pwd: String,
        offer: String,
        outgoing: &[OutgoingTrack],
        now: Instant,
    ) -> Result<(Self, String), TransportError> {
        let pc = factory.build_connection(&ufrag, &pwd, now)?;
        let mut peer = Self {
            pc,
            ufrag,
            pwd,
            addresses: Vec::new(),
            created: now,
            last_consent: None,
            connected: false,
            scheduled: None,
            dirty: false,
            renegotiate_after_answer: false,
            pipeline_reads_pending: false,
            outgoing: Vec::new(),
            deferred: Vec::new(),
            offer_on_connect: false,
            idle: Vec::new(),
            receive_sections: Vec::new(),
        };
        for track in outgoing {
            peer.attach_outgoing(track)?;
        }
        let offer_sdp = offer.clone();
        peer.pc
            .set_remote_description(now, RTCSessionDescription::offer(offer)?)?;
        peer.idle_sections_inactive(&offer_sdp);
        for candidate in factory.host_candidates()? {
            peer.pc.add_local_candidate(candidate)?;
        }
        let answer = peer.pc.create_answer(None)?;
        peer.pc.set_local_description(now, answer)?;
        // Tracks the offer had no `recvonly` section for (a publisher's offer has none) wait for
        // the offer the shard sends once the peer is connected.
        peer.offer_on_connect = peer.outgoing.iter().any(|o| {
            peer.pc
                .rtp_transceiver(RTCRtpTransceiverId::from(o.sender))
                .is_none_or(|t| t.mid().is_none())
        });
        let sdp = peer
            .pc
            .local_description()
            .ok_or_else(|| TransportError::Negotiation("no local description".to_owned()))?
            .sdp;
        Ok((peer, sdp))
    }

    /// Adds an outgoing track to the connection (negotiated by the next offer or answer).
    pub(crate) fn attach_outgoing(&mut self, track: &OutgoingTrack) -> Result<(), TransportError> {
        let codec = codec_for_mime(&track.mime_type).ok_or_else(|| {
            TransportError::Negotiation(format!("codec {} is not offered", track.mime_type))
        })?;
        let media_track = MediaStreamTrack::new(
            track.stream_id.clone(),
            track.track_id.clone(),
            track.track_id.clone(),
            rtc_kind(track.kind),
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(track.ssrc),
                    rtx: track.rtx_ssrc.map(|ssrc| RTCRtpRtxParameters { ssrc }),
                    ..Default::default()
                },
                active: true,
                codec,
                ..Default::default()
            }],
        );
        // An idle (`inactive`, trackless) section of the right kind is reused before a section
        // is added: a viewer's `recvonly` section the SFU had nothing for, or one a removed
        // track left. `add_track` takes the first trackless section of the kind, so it is used
        // only when that one is idle; never a section the client sends its own media on (where
        // Chromium drops what arrives on a simulcast section). Otherwise a new `sendonly`
        // section: a client's `sendrecv` section never matches a `sendonly` transceiver.
        let sender = if self.first_trackless_section_is_idle(track.kind) {
            let sender = self.pc.add_track(media_track)?;
            self.idle
                .retain(|i| *i != RTCRtpTransceiverId::from(sender));
            sender
        } else {
            RTCRtpSenderId::from(self.pc.add_transceiver_from_track(
                media_track,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    streams: vec![],
                    send_encodings: vec![],
                }),
            )?)
        };
        self.outgoing.push(OutgoingSender {
            ssrc: track.ssrc,
            sender,
        });
        Ok(())
    }

    /// Whether the section `add_track` would take for `kind` (the first one of that kind
    /// without a sending track that is not stopped) is an idle one of [`Peer::idle`].
    fn first_trackless_section_is_idle(&mut self, kind: MediaKind) -> bool {
        let kinds = self
            .pc
            .local_description()
            .map(|d| sections(&d.sdp))
            .unwrap_or_default();
        let ids: Vec<RTCRtpTransceiverId> = self.pc.get_transceivers().collect();
        for id in ids {
            let idle = self.idle.contains(&id);
            // A section the SFU receives a participant's source on (or did) is trackless and
            // not stopped, so `add_track` would take it: a new section instead.
            let requested = self.receive_sections.contains(&id);
            let Some(t) = self.pc.rtp_transceiver(id) else {
                continue;
            };
            if t.sender().is_some() {
                continue;
            }
            if requested {
                return false;
            }
            // Trackless and neither idle nor receiving: stopped (a section the client's offer
            // made `inactive`), which `add_track` skips too.
            if !idle && !t.direction().has_recv() {
                continue;
            }
            let Some(mid) = t.mid().clone() else {
                return false;
            };
            match kinds.iter().find(|s| s.mid == mid) {
                Some(s) if s.kind == Some(kind) => return idle,
                Some(_) => {}
                None => return false,
            }
        }
        false
    }

    /// Turns the sections a client's offer asked to receive on, for which the SFU has no
    /// track, `inactive` (an answerer may answer `recvonly` with `inactive`, RFC 3264 §6.1):
    /// `rtc` would answer them `sendonly` with nothing to send, and a standards-following
    /// client then holds a receiver per section. A later subscription reuses them
    /// ([`Peer::attach_outgoing`]). Idle sections the client's offer no longer asks to receive
    /// on (`inactive`: stopped; `sendrecv`/`sendonly`: now receiving) stop being idle.
    fn idle_sections_inactive(&mut self, offer: &str) {
        let offered = sections(offer);
        let ids: Vec<RTCRtpTransceiverId> = self.pc.get_transceivers().collect();
        for id in ids {
            let Some(mut t) = self.pc.rtp_transceiver(id) else {
                continue;
            };
            let recvonly = t.mid().as_ref().is_some_and(|mid| {
                offered
                    .iter()
                    .any(|s| &s.mid == mid && s.direction == SectionDirection::RecvOnly)
            });
            let trackless = t.sender().is_none();
            if trackless && t.direction() == RTCRtpTransceiverDirection::Sendonly {
                t.set_direction(RTCRtpTransceiverDirection::Inactive);
                if recvonly && !self.idle.contains(&id) {
                    self.idle.push(id);
                }
            } else if self.idle.contains(&id)
                && !(recvonly && trackless && t.direction() == RTCRtpTransceiverDirection::Inactive)
            {
                self.idle.retain(|i| *i != id);
            }
        }
    }

    /// Adds a media section of `kind` the SFU receives on (`recvonly` on its side), for a
    /// source the participant asked to publish; negotiated by the next offer.
    pub(crate) fn add_receive_section(
        &mut self,
        kind: MediaKind,
    ) -> Result<ReceiveSection, TransportError> {
        let id = self.pc.add_transceiver_from_kind(
            rtc_kind(kind),
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                streams: vec![],
                send_encodings: vec![],
            }),
        )?;
        self.receive_sections.push(id);
        Ok(ReceiveSection(id))
    }

    /// Turns a section of [`Peer::add_receive_section`] `inactive` (the source is no longer
    /// published); negotiated by the next offer.
    pub(crate) fn stop_receiving(&mut self, section: ReceiveSection) -> Result<(), TransportError> {
        let unknown = || TransportError::Negotiation("no such receive section".to_owned());
        if !self.receive_sections.contains(&section.0) {
            return Err(unknown());
        }
        let mut t = self.pc.rtp_transceiver(section.0).ok_or_else(unknown)?;
        t.set_direction(RTCRtpTransceiverDirection::Inactive);
        Ok(())
    }

    /// The `a=mid` of a section of [`Peer::add_receive_section`], once an offer carried it.
    pub(crate) fn receive_section_mid(&mut self, section: ReceiveSection) -> Option<String> {
        if !self.receive_sections.contains(&section.0) {
            return None;
        }
        self.pc
            .rtp_transceiver(section.0)
            .and_then(|t| t.mid().clone())
    }

    /// Holds an outgoing track back until the peer is connected (see [`Peer::take_deferred`]).
    pub(crate) fn defer_outgoing(&mut self, track: OutgoingTrack) {
        self.deferred.push(track);
        self.offer_on_connect = true;
    }

    /// Asks for an offer once the peer is connected (an outgoing track removed before then).
    pub(crate) fn offer_when_connected(&mut self) {
        self.offer_on_connect = true;
    }

    /// On connect: the outgoing tracks held back until then (the shard attaches them) and
    /// whether the shard should offer.
    pub(crate) fn take_deferred(&mut self) -> (Vec<OutgoingTrack>, bool) {
        let offer = std::mem::take(&mut self.offer_on_connect);
        (std::mem::take(&mut self.deferred), offer)
    }

    /// Removes the outgoing track sending `ssrc` (negotiated by the next offer).
    pub(crate) fn detach_outgoing(&mut self, ssrc: u32) -> Result<(), TransportError> {
        if let Some(i) = self.deferred.iter().position(|t| t.ssrc == ssrc) {
            self.deferred.remove(i);
            return Ok(());
        }
        let index = self
            .outgoing
            .iter()
            .position(|o| o.ssrc == ssrc)
            .ok_or_else(|| TransportError::Negotiation(format!("no outgoing track {ssrc}")))?;
        let sender = self.outgoing.remove(index).sender;
        self.pc.remove_track(sender)?;
        // The section stays, `inactive` and trackless: the next subscription of its kind
        // reuses it rather than growing the SDP.
        let id = RTCRtpTransceiverId::from(sender);
        if !self.idle.contains(&id) {
            self.idle.push(id);
        }
        Ok(())
    }

    /// Whether an offer/answer exchange can start now.
    pub(crate) fn is_stable(&self) -> bool {
        self.pc.pending_local_description().is_none()
            && self.pc.pending_remote_description().is_none()
    }

    /// Creates and applies a local offer (server-initiated renegotiation).
    pub(crate) fn create_offer(&mut self, now: Instant) -> Result<String, TransportError> {
        if !self.is_stable() {
            return Err(TransportError::NegotiationInProgress);
        }
        let offer = self.pc.create_offer(None)?;
        let sdp = offer.sdp.clone();
        self.pc.set_local_description(now, offer)?;
        Ok(sdp)
    }

    /// Applies the client's answer to the SFU's outstanding offer.
    pub(crate) fn apply_answer(&mut self, now: Instant, sdp: String) -> Result<(), TransportError> {
        self.pc
            .set_remote_description(now, RTCSessionDescription::answer(sdp)?)?;
        Ok(())
    }

    /// Answers a client-initiated renegotiation offer. Returns the answer and whether an offer
    /// of the SFU's own was withdrawn for it.
    ///
    /// Glare (the client's offer crossed one of ours, RFC 8829 §4.1.8.2 / perfect negotiation):
    /// the SFU is the polite side. It rolls its own offer back, answers the client's, and offers
    /// its change again once stable (`renegotiate_after_answer`): the client's offer is answered,
    /// not lost, and the change is not lost either. The client is the impolite side: it drops an
    /// SFU offer that reached it while its own was unanswered (signaling re-sends an SFU offer
    /// left unanswered).
    pub(crate) fn apply_offer(
        &mut self,
        now: Instant,
        sdp: String,
    ) -> Result<(String, bool), TransportError> {
        let withdrawn = self.pc.pending_local_description().is_some()
            && self.pc.pending_remote_description().is_none();
        if withdrawn {
            self.pc
                .set_local_description(now, RTCSessionDescription::rollback(None)?)?;
            self.renegotiate_after_answer = true;
        } else if !self.is_stable() {
            return Err(TransportError::NegotiationInProgress);
        }
        self.pc
            .set_remote_description(now, RTCSessionDescription::offer(sdp.clone())?)?;
        self.idle_sections_inactive(&sdp);
        let answer = self.pc.create_answer(None)?;
        let sdp = answer.sdp.clone();
        self.pc.set_local_description(now, answer)?;
        Ok((sdp, withdrawn))
    }

    /// Binds `addr` to this peer after an authenticated request; returns the address forgotten to
    /// stay within [`MAX_ADDRESSES_PER_PEER`], if any.
    pub(crate) fn bind_address(&mut self, addr: SocketAddr) -> Option<SocketAddr> {
        if let Some(pos) = self.addresses.iter().position(|a| *a == addr) {
            // Most recently proved goes last.
            let a = self.addresses.remove(pos);
            self.addresses.push(a);
            return None;
        }
        self.addresses.push(addr);
        if self.addresses.len() > MAX_ADDRESSES_PER_PEER {
            Some(self.addresses.remove(0))
        } else {
            None
        }
    }

    /// What `rtc` negotiated for a track the peer opened.
    pub(crate) fn incoming_track(&mut self, init: &RTCTrackEventInit) -> Option<IncomingTrack> {
        let transceiver_id = RTCRtpTransceiverId::from(init.receiver_id);
        let mid = self
            .pc
            .rtp_transceiver(transceiver_id)
            .and_then(|t| t.mid().clone())
            .unwrap_or_default();
        let mut receiver = self.pc.rtp_receiver(init.receiver_id)?;
        let kind = media_kind(receiver.track().kind())?;
        let params = receiver.get_parameters();
        Some(IncomingTrack {
            mid,
            rid: init.rid.clone().filter(|r| !r.is_empty()),
            ssrc: init.ssrc,
            kind,
            codecs: negotiated_codecs(&params.rtp_parameters.codecs),
            header_extensions: negotiated_extensions(&params.rtp_parameters.header_extensions),
        })
    }

    /// Whether the peer sends any track.
    pub(crate) fn has_outgoing(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// What the last negotiation settled for every outgoing track.
    pub(crate) fn negotiated_outgoing(&mut self) -> Vec<NegotiatedOutgoingTrack> {
        let mut out = Vec::with_capacity(self.outgoing.len());
        for o in &self.outgoing {
            // A track not placed in any media section yet waits for the next negotiation.
            let Some(mid) = self
                .pc
                .rtp_transceiver(RTCRtpTransceiverId::from(o.sender))
                .and_then(|t| t.mid().clone())
            else {
                continue;
            };
            let Some(mut sender) = self.pc.rtp_sender(o.sender) else {
                continue;
            };
            let params = sender.get_parameters();
            out.push(NegotiatedOutgoingTrack {
                ssrc: o.ssrc,
                mid: Some(mid),
                codecs: negotiated_codecs(&params.rtp_parameters.codecs),
                header_extensions: negotiated_extensions(&params.rtp_parameters.header_extensions),
            });
        }
        out
    }
}

fn negotiated_codecs(codecs: &[RTCRtpCodecParameters]) -> Vec<NegotiatedCodec> {
    let mut out: Vec<NegotiatedCodec> = codecs
        .iter()
        .filter(|c| !c.rtp_codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_RTX))
        .map(|c| NegotiatedCodec {
            payload_type: c.payload_type,
            mime_type: c.rtp_codec.mime_type.clone(),
            clock_rate: c.rtp_codec.clock_rate,
            fmtp: c.rtp_codec.sdp_fmtp_line.clone(),
            rtx_payload_type: None,
        })
        .collect();
    for rtx in codecs
        .iter()
        .filter(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_RTX))
    {
        let apt = rtx
            .rtp_codec
            .sdp_fmtp_line
            .split(';')
            .find_map(|p| p.trim().strip_prefix("apt="))
            .and_then(|v| v.parse::<u8>().ok());
        if let Some(primary) = out.iter_mut().find(|c| Some(c.payload_type) == apt) {
            primary.rtx_payload_type = Some(rtx.payload_type);
        }
    }
    out
}

fn negotiated_extensions(exts: &[RTCRtpHeaderExtensionParameters]) -> Vec<NegotiatedExtension> {
    exts.iter()
        .filter_map(|e| {
            Some(NegotiatedExtension {
                uri: e.uri.clone(),
                id: u8::try_from(e.id).ok()?,
            })
        })
        .collect()
}
