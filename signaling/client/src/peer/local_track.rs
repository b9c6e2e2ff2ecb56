//! A track the peer publishes: Opus audio, or VP8 video as one stream or as simulcast layers
//! (one SSRC per layer, each named by its rid), and the RTP state to write it.
//!
//! Simulcast packets carry the negotiated `sdes:mid` and `sdes:rtp-stream-id` header
//! extensions as a browser's do, which is how the SFU tells the layers apart; audio packets
//! carry the RFC 6464 audio level when it was negotiated and set. The mid and the extension ids
//! come from the first local description that holds the track ([`super::Peer::offer`] or
//! [`super::Peer::answer`] fills them in).

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

use super::sdp::{AUDIO_LEVEL_URI, MID_URI, RID_URI, extmap_id, mid_of_track};
use super::{OPUS_PT, PeerError, VP8_PT, webrtc_err};

/// RTP timestamp units per packet of [`LocalTrack::write_next`]: 20 ms of Opus at 48 kHz.
const AUDIO_TICKS_PER_PACKET: u32 = 960;
/// RTP timestamp units per packet of [`LocalTrack::write_next`]: one 30 fps frame at 90 kHz.
const VIDEO_TICKS_PER_PACKET: u32 = 3000;

/// One simulcast layer (or the only stream) of a published track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoLayer {
    /// The rid (`q`, `h`, `f`), or `None` for a track without simulcast.
    pub rid: Option<String>,
    /// Its SSRC.
    pub ssrc: u32,
}

impl VideoLayer {
    /// The only stream of a track without simulcast.
    pub fn single(ssrc: u32) -> Self {
        Self { rid: None, ssrc }
    }

    /// A simulcast layer named `rid`.
    pub fn simulcast(rid: &str, ssrc: u32) -> Self {
        Self {
            rid: Some(rid.to_owned()),
            ssrc,
        }
    }
}

/// What negotiation decided for a local track: its media section and the header-extension ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Negotiated {
    pub(super) mid: Option<String>,
    /// `(sdes:mid id, sdes:rtp-stream-id id)`, when both were negotiated.
    pub(super) simulcast_ids: Option<(u8, u8)>,
    pub(super) audio_level_id: Option<u8>,
}

impl Negotiated {
    /// Reads what `sdp` (a local description) says about the track `track_id`.
    pub(super) fn from_sdp(sdp: &str, track_id: &str) -> Self {
        let simulcast_ids = match (extmap_id(sdp, MID_URI), extmap_id(sdp, RID_URI)) {
            (Some(mid), Some(rid)) => Some((mid, rid)),
            _ => None,
        };
        Self {
            mid: mid_of_track(sdp, track_id),
            simulcast_ids,
            audio_level_id: extmap_id(sdp, AUDIO_LEVEL_URI),
        }
    }
}

/// One layer's RTP state.
#[derive(Debug)]
struct LayerState {
    layer: VideoLayer,
    sequence: u16,
}

/// A track this peer publishes and the RTP state to write it. Written from one task: every
/// write takes `&mut self`.
pub struct LocalTrack {
    track: Arc<TrackLocalStaticRTP>,
    kind: RtpCodecKind,
    layers: Vec<LayerState>,
    /// Filled in once, by the peer, from the first local description holding the track.
    negotiated: Arc<OnceLock<Negotiated>>,
    /// The RFC 6464 byte (V bit and -dBov) audio packets carry, when set.
    audio_level: Option<u8>,
    /// Packets written by [`LocalTrack::write_next`].
    next_count: u32,
}

impl std::fmt::Debug for LocalTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTrack")
            .field("kind", &self.kind)
            .field("layers", &self.layers)
            .field("negotiated", &self.negotiated.get())
            .finish_non_exhaustive()
    }
}

impl LocalTrack {
    pub(super) fn new(
        track: Arc<TrackLocalStaticRTP>,
        kind: RtpCodecKind,
        layers: &[VideoLayer],
        negotiated: Arc<OnceLock<Negotiated>>,
    ) -> Self {
        Self {
            track,
            kind,
            layers: layers
                .iter()
                .map(|layer| LayerState {
                    layer: layer.clone(),
                    sequence: rand::random(),
                })
                .collect(),
            negotiated,
            audio_level: None,
            next_count: 0,
        }
    }

    /// Audio or video.
    pub fn kind(&self) -> RtpCodecKind {
        self.kind
    }

    /// The media section the track was negotiated in, once a local description holds it.
    pub fn mid(&self) -> Option<&str> {
        self.negotiated.get()?.mid.as_deref()
    }

    /// The SSRC of layer `layer` (in the order the layers were added).
    pub fn ssrc(&self, layer: usize) -> Option<u32> {
        self.layers.get(layer).map(|l| l.layer.ssrc)
    }

    /// The layers as added.
    pub fn layers(&self) -> impl Iterator<Item = &VideoLayer> {
        self.layers.iter().map(|l| &l.layer)
    }

    /// The `webrtc` track under this one: for RTCP (`write_rtcp`, and `poll` for the RTCP an
    /// interceptor delivers to the application) and for packets written as they are.
    pub fn rtp_track(&self) -> &Arc<TrackLocalStaticRTP> {
        &self.track
    }

    /// Sets the RFC 6464 audio level later audio packets carry (`voice` the V bit, `dbov` the
    /// level in -dBov, 0..=127), when the peer negotiated the extension; `None` stops it.
    pub fn set_audio_level(&mut self, level: Option<(bool, u8)>) {
        self.audio_level = level.map(|(voice, dbov)| (u8::from(voice) << 7) | (dbov & 0x7f));
    }

    /// Writes one RTP packet of layer `layer` with `payload`: the next sequence number of that
    /// layer, the codec's payload type, the simulcast extensions on a simulcast layer and the
    /// audio level on audio.
    ///
    /// # Errors
    ///
    /// [`PeerError::NoSuchLayer`] for a layer the track does not have; [`PeerError::Webrtc`]
    /// when the stack refuses the packet (the connection is gone).
    pub async fn write(
        &mut self,
        layer: usize,
        timestamp: u32,
        marker: bool,
        payload: Bytes,
    ) -> Result<(), PeerError> {
        self.write_rtp(layer, timestamp, marker, false, payload)
            .await
    }

    /// Writes a padding-only RTP packet on layer `layer`: no payload, only RTP padding, with the
    /// layer's next sequence number and its extensions. It carries no media; what it does is
    /// make the SFU see the layer's SSRC (the SFU publishes a track on its first packet), which
    /// a device holding its media (strict recording: nothing is sent before a recorder receives
    /// the track) needs so that the track exists for the recorder to subscribe to. Send it only
    /// while the track is not published: a subscriber would get an empty packet.
    ///
    /// # Errors
    ///
    /// As [`LocalTrack::write`].
    pub async fn write_padding(&mut self, layer: usize, timestamp: u32) -> Result<(), PeerError> {
        self.write_rtp(layer, timestamp, false, true, Bytes::new())
            .await
    }

    async fn write_rtp(
        &mut self,
        layer: usize,
        timestamp: u32,
        marker: bool,
        padding: bool,
        payload: Bytes,
    ) -> Result<(), PeerError> {
        let state = self
            .layers
            .get_mut(layer)
            .ok_or(PeerError::NoSuchLayer(layer))?;
        state.sequence = state.sequence.wrapping_add(1);
        let audio = self.kind == RtpCodecKind::Audio;
        let mut header = rtc::rtp::Header {
            version: 2,
            payload_type: if audio { OPUS_PT } else { VP8_PT },
            sequence_number: state.sequence,
            timestamp,
            ssrc: state.layer.ssrc,
            marker,
            padding,
            ..Default::default()
        };
        let negotiated = self.negotiated.get();
        if let (
            Some(rid),
            Some(Negotiated {
                mid: Some(mid),
                simulcast_ids: Some((mid_id, rid_id)),
                ..
            }),
        ) = (&state.layer.rid, negotiated)
        {
            header
                .set_extension(*mid_id, Bytes::copy_from_slice(mid.as_bytes()))
                .map_err(webrtc_err)?;
            header
                .set_extension(*rid_id, Bytes::copy_from_slice(rid.as_bytes()))
                .map_err(webrtc_err)?;
        }
        if audio
            && let (Some(level), Some(id)) =
                (self.audio_level, negotiated.and_then(|n| n.audio_level_id))
        {
            header
                .set_extension(id, Bytes::copy_from_slice(&[level]))
                .map_err(webrtc_err)?;
        }
        self.track
            .write_rtp(rtc::rtp::Packet { header, payload })
            .await
            .map_err(webrtc_err)
    }

    /// Writes `payload` as the next whole frame of the first layer: marker set, the timestamp
    /// one frame on (20 ms of audio, a 30 fps video frame). For media that is one packet per
    /// frame; a packetizer with frames of several packets uses [`LocalTrack::write`].
    ///
    /// # Errors
    ///
    /// As [`LocalTrack::write`].
    pub async fn write_next(&mut self, payload: &[u8]) -> Result<(), PeerError> {
        self.next_count = self.next_count.wrapping_add(1);
        let ticks = if self.kind == RtpCodecKind::Audio {
            AUDIO_TICKS_PER_PACKET
        } else {
            VIDEO_TICKS_PER_PACKET
        };
        let timestamp = self.next_count.wrapping_mul(ticks);
        self.write(0, timestamp, true, Bytes::copy_from_slice(payload))
            .await
    }

    /// Writes `packet` as it is (its own header, sequence numbers and extensions).
    ///
    /// # Errors
    ///
    /// [`PeerError::Webrtc`] when the stack refuses the packet.
    pub async fn write_packet(&self, packet: rtc::rtp::Packet) -> Result<(), PeerError> {
        self.track.write_rtp(packet).await.map_err(webrtc_err)
    }
}
