//! The codecs and RTP header extensions the SFU negotiates.
//!
//! Opus; VP8 and VP9 (profile 0) with RTX for video (docs/architecture.md §2.1: H.264 and AV1 are
//! refused in E2EE rooms, so they are never offered or accepted). Header extensions are those the
//! forwarding core routes on: mid, rid, repaired rid, audio level, transport-wide CC, absolute
//! send time and the dependency descriptor.

use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8, MIME_TYPE_VP9, MediaEngine,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};

use super::events::MediaKind;

/// Transport-wide congestion control extension (TWCC).
pub const TRANSPORT_CC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
/// RFC 6464 audio level.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// RFC 8843 mid.
pub const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// RFC 8852 rtp-stream-id (simulcast rid).
pub const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
/// RFC 8852 repaired-rtp-stream-id.
pub const REPAIRED_RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";
/// Absolute send time.
pub const ABS_SEND_TIME_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
/// AV1 dependency descriptor (also used with VP8/VP9 SVC).
pub const DEPENDENCY_DESCRIPTOR_URI: &str =
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";

fn video_feedback() -> Vec<RTCPFeedback> {
    [
        ("goog-remb", ""),
        ("ccm", "fir"),
        ("nack", ""),
        ("nack", "pli"),
        ("transport-cc", ""),
    ]
    .into_iter()
    .map(|(typ, parameter)| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    })
    .collect()
}

/// The SFU's codec table: `(kind, parameters)`.
pub(crate) fn sfu_codecs() -> Vec<(RtpCodecKind, RTCRtpCodecParameters)> {
    let codec = |mime: &str, clock_rate, channels, fmtp: &str, feedback, payload_type| {
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: mime.to_owned(),
                clock_rate,
                channels,
                sdp_fmtp_line: fmtp.to_owned(),
                rtcp_feedback: feedback,
            },
            payload_type,
        }
    };
    let audio_feedback = vec![RTCPFeedback {
        typ: "transport-cc".to_owned(),
        parameter: String::new(),
    }];
    vec![
        (
            RtpCodecKind::Audio,
            codec(
                MIME_TYPE_OPUS,
                48000,
                2,
                "minptime=10;useinbandfec=1",
                audio_feedback,
                111,
            ),
        ),
        (
            RtpCodecKind::Video,
            codec(MIME_TYPE_VP8, 90000, 0, "", video_feedback(), 96),
        ),
        (
            RtpCodecKind::Video,
            codec(MIME_TYPE_RTX, 90000, 0, "apt=96", vec![], 97),
        ),
        (
            RtpCodecKind::Video,
            codec(
                MIME_TYPE_VP9,
                90000,
                0,
                "profile-id=0",
                video_feedback(),
                98,
            ),
        ),
        (
            RtpCodecKind::Video,
            codec(MIME_TYPE_RTX, 90000, 0, "apt=98", vec![], 99),
        ),
    ]
}

/// A media engine with the SFU's codecs and header extensions.
pub(crate) fn sfu_media_engine() -> Result<MediaEngine, rtc::shared::error::Error> {
    let mut engine = MediaEngine::default();
    for (kind, codec) in sfu_codecs() {
        engine.register_codec(codec, kind)?;
    }
    let audio = [
        MID_URI,
        AUDIO_LEVEL_URI,
        TRANSPORT_CC_URI,
        ABS_SEND_TIME_URI,
    ];
    let video = [
        MID_URI,
        RID_URI,
        REPAIRED_RID_URI,
        TRANSPORT_CC_URI,
        ABS_SEND_TIME_URI,
        DEPENDENCY_DESCRIPTOR_URI,
    ];
    for (kind, uris) in [
        (RtpCodecKind::Audio, &audio[..]),
        (RtpCodecKind::Video, &video[..]),
    ] {
        for uri in uris {
            engine.register_header_extension(
                RTCRtpHeaderExtensionCapability {
                    uri: (*uri).to_owned(),
                },
                kind,
                None,
            )?;
        }
    }
    Ok(engine)
}

/// The codec the SFU sends for `mime_type`, if it is one the SFU negotiates.
pub(crate) fn codec_for_mime(mime_type: &str) -> Option<RTCRtpCodec> {
    sfu_codecs()
        .into_iter()
        .map(|(_, c)| c.rtp_codec)
        .find(|c| c.mime_type.eq_ignore_ascii_case(mime_type) && c.mime_type != MIME_TYPE_RTX)
}

pub(crate) fn rtc_kind(kind: MediaKind) -> RtpCodecKind {
    match kind {
        MediaKind::Audio => RtpCodecKind::Audio,
        MediaKind::Video => RtpCodecKind::Video,
    }
}

pub(crate) fn media_kind(kind: RtpCodecKind) -> Option<MediaKind> {
    match kind {
        RtpCodecKind::Audio => Some(MediaKind::Audio),
        RtpCodecKind::Video => Some(MediaKind::Video),
        _ => None,
    }
}
