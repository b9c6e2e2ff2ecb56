//! The media sections of a session description as the transport needs them to manage idle
//! sections: each section's mid, kind and direction (`rtc` does not expose a transceiver's kind).

use super::events::MediaKind;

/// The direction attribute of a media section (RFC 8866 §6.7; `sendrecv` when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SectionDirection {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

/// One media section: its mid, kind (`None` for anything but audio and video) and direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Section {
    pub(crate) mid: String,
    pub(crate) kind: Option<MediaKind>,
    pub(crate) direction: SectionDirection,
}

/// The media sections of `sdp` that carry an `a=mid`, in order.
pub(crate) fn sections(sdp: &str) -> Vec<Section> {
    let mut out = Vec::new();
    for section in sdp.split("\nm=").skip(1) {
        let kind = match section.split_ascii_whitespace().next() {
            Some("audio") => Some(MediaKind::Audio),
            Some("video") => Some(MediaKind::Video),
            _ => None,
        };
        let mut mid = None;
        let mut direction = SectionDirection::SendRecv;
        for line in section.lines().map(str::trim_end) {
            match line {
                "a=sendonly" => direction = SectionDirection::SendOnly,
                "a=recvonly" => direction = SectionDirection::RecvOnly,
                "a=inactive" => direction = SectionDirection::Inactive,
                "a=sendrecv" => direction = SectionDirection::SendRecv,
                _ => {
                    if let Some(m) = line.strip_prefix("a=mid:") {
                        mid = Some(m.trim().to_owned());
                    }
                }
            }
        }
        if let Some(mid) = mid {
            out.push(Section {
                mid,
                kind,
                direction,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_read_mid_kind_and_direction() {
        let sdp = "v=0\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=recvonly\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n\
                   m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n\
                   m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=inactive\r\n";
        assert_eq!(
            sections(sdp),
            vec![
                Section {
                    mid: "0".into(),
                    kind: Some(MediaKind::Audio),
                    direction: SectionDirection::RecvOnly
                },
                Section {
                    mid: "1".into(),
                    kind: Some(MediaKind::Video),
                    direction: SectionDirection::SendRecv
                },
                Section {
                    mid: "2".into(),
                    kind: None,
                    direction: SectionDirection::SendRecv
                },
            ]
        );
    }
}
