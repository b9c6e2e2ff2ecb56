//! Whether an SDP (offer or answer) from a device lets it send media, judged the way the SFU's
//! WebRTC stack (`rtc`) or a browser could read it. A device without a publish grant (a viewer)
//! must send an SDP in which no media section can send; anything doubtful counts as sending:
//!
//! - a media section whose direction is `sendrecv` or `sendonly`, or that has no direction of
//!   its own and inherits one of those from the session level (none at all is `sendrecv`,
//!   RFC 8866 §6.7);
//! - a media section with more than one direction attribute (`rtc` reads the first one, other
//!   parsers the last: no reading may be left to chance);
//! - a media section announcing a send track: `a=msid`, `a=ssrc:… msid:…`, `a=ssrc-group`,
//!   `a=simulcast` with a `send` part, `a=rid:… send`. (A bare `a=ssrc:… cname:…` is what some
//!   browsers write for their receiver reports and is allowed.)
//!
//! The port does not matter: `rtc` judges a section by its attributes, so a port-0
//! (`a=bundle-only` or rejected-looking) section is judged like any other. Data channel sections
//! (`m=application`) carry no RTP and are not judged. Attribute names are compared without case.
//!
//! Only attribute names and directions are read; nothing of the SDP is kept or logged.

use std::fmt;

/// The four SDP direction attributes.
const DIRECTIONS: [&str; 4] = ["sendrecv", "sendonly", "recvonly", "inactive"];

/// What in a media section lets the device send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendSign {
    /// `a=sendrecv` or `a=sendonly` in the section.
    Direction(&'static str),
    /// No direction in the section; the session level's (or the default `sendrecv`) applies.
    InheritedDirection(&'static str),
    /// Two or more direction attributes in one section.
    ConflictingDirections,
    /// An attribute that announces a send track (`msid`, `ssrc … msid`, `ssrc-group`,
    /// `simulcast … send`, `rid … send`).
    SendTrack(&'static str),
    /// Two or more direction attributes at the session level.
    ConflictingSessionDirections,
}

impl fmt::Display for SendSign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendSign::Direction(d) => write!(f, "a={d}"),
            SendSign::InheritedDirection(d) => {
                write!(f, "no direction attribute, so {d} applies")
            }
            SendSign::ConflictingDirections => write!(f, "more than one direction attribute"),
            SendSign::SendTrack(a) => write!(f, "a={a} announces a send track"),
            SendSign::ConflictingSessionDirections => {
                write!(f, "more than one session-level direction attribute")
            }
        }
    }
}

/// The first media section of an SDP that can send, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendingSection {
    /// Position of the section among the `m=` lines, from 0 (`None`: the session level).
    pub index: Option<usize>,
    /// Why it can send.
    pub sign: SendSign,
}

impl fmt::Display for SendingSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "media section {i} can send: {}", self.sign),
            None => write!(f, "session level: {}", self.sign),
        }
    }
}

/// One media section as far as the check needs it.
#[derive(Default)]
struct Section {
    /// `m=application` (data channels): not judged.
    application: bool,
    /// Direction attributes in order.
    directions: Vec<&'static str>,
    /// The first send-track attribute seen.
    send_track: Option<&'static str>,
}

/// The first media section of `sdp` in which the sender could send media, or `None` when every
/// section is receive-only or inactive.
pub fn sdp_sending_section(sdp: &str) -> Option<SendingSection> {
    let mut session_directions: Vec<&'static str> = Vec::new();
    let mut sections: Vec<Section> = Vec::new();
    for line in sdp.lines() {
        let line = line.trim();
        if let Some(media) = line.strip_prefix("m=") {
            let kind = media.split_whitespace().next().unwrap_or("");
            sections.push(Section {
                application: kind.eq_ignore_ascii_case("application"),
                ..Section::default()
            });
            continue;
        }
        let Some(attribute) = line.strip_prefix("a=") else {
            continue;
        };
        let (name, value) = attribute.split_once(':').unwrap_or((attribute, ""));
        let name = name.trim();
        let direction = DIRECTIONS
            .iter()
            .find(|d| d.eq_ignore_ascii_case(name))
            .copied();
        match sections.last_mut() {
            None => session_directions.extend(direction),
            Some(section) => {
                section.directions.extend(direction);
                if section.send_track.is_none() {
                    section.send_track = send_track_attribute(name, value);
                }
            }
        }
    }
    if session_directions.len() > 1 {
        return Some(SendingSection {
            index: None,
            sign: SendSign::ConflictingSessionDirections,
        });
    }
    let inherited = session_directions.first().copied().unwrap_or("sendrecv");
    sections
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.application)
        .find_map(|(index, s)| {
            let sign = judge(s, inherited)?;
            Some(SendingSection {
                index: Some(index),
                sign,
            })
        })
}

/// Why `section` can send, if it can.
fn judge(section: &Section, inherited: &'static str) -> Option<SendSign> {
    let sign = match section.directions.as_slice() {
        [] if sends(inherited) => Some(SendSign::InheritedDirection(inherited)),
        [d] if sends(d) => Some(SendSign::Direction(d)),
        [_, _, ..] => Some(SendSign::ConflictingDirections),
        _ => None,
    };
    sign.or(section.send_track.map(SendSign::SendTrack))
}

fn sends(direction: &str) -> bool {
    direction == "sendrecv" || direction == "sendonly"
}

/// The attribute's name when `name:value` announces a send track.
fn send_track_attribute(name: &str, value: &str) -> Option<&'static str> {
    let has_word = |word: &str| {
        value
            .split(|c: char| c.is_whitespace() || c == ';' || c == ',')
            .any(|w| w.eq_ignore_ascii_case(word))
    };
    if name.eq_ignore_ascii_case("msid") {
        Some("msid")
    } else if name.eq_ignore_ascii_case("ssrc-group") {
        Some("ssrc-group")
    } else if name.eq_ignore_ascii_case("ssrc")
        && value
            .split_whitespace()
            .nth(1)
            .is_some_and(|a| a.to_ascii_lowercase().starts_with("msid:"))
    {
        Some("ssrc")
    } else if name.eq_ignore_ascii_case("simulcast") && has_word("send") {
        Some("simulcast")
    } else if name.eq_ignore_ascii_case("rid") && has_word("send") {
        Some("rid")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

    fn sdp(body: &str) -> String {
        format!("{HEAD}{body}")
    }

    fn sign(body: &str) -> Option<SendSign> {
        sdp_sending_section(&sdp(body)).map(|s| s.sign)
    }

    #[test]
    fn receive_only_and_inactive_sections_do_not_send() {
        let clean = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=recvonly\r\na=ssrc:1 cname:x\r\n\
                     m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=inactive\r\n\
                     m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n";
        assert_eq!(sign(clean), None);
        assert_eq!(sdp_sending_section(""), None);
        assert_eq!(sdp_sending_section("garbage\nwithout media"), None);
    }

    #[test]
    fn sending_directions_in_any_order_are_found() {
        let cases = [
            ("a=sendonly\r\n", SendSign::Direction("sendonly")),
            ("a=sendrecv\r\n", SendSign::Direction("sendrecv")),
            ("a=SENDONLY\r\n", SendSign::Direction("sendonly")),
            (
                "a=sendonly\r\na=recvonly\r\n",
                SendSign::ConflictingDirections,
            ),
            (
                "a=recvonly\r\na=sendonly\r\n",
                SendSign::ConflictingDirections,
            ),
            (
                "a=recvonly\r\na=recvonly\r\n",
                SendSign::ConflictingDirections,
            ),
            ("a=mid:0\r\n", SendSign::InheritedDirection("sendrecv")),
        ];
        for (attrs, want) in cases {
            let body = format!("m=video 9 UDP/TLS/RTP/SAVPF 96\r\n{attrs}");
            assert_eq!(sign(&body), Some(want), "{attrs:?}");
        }
    }

    #[test]
    fn the_port_does_not_matter() {
        let body = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=recvonly\r\n\
                    m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=bundle-only\r\na=mid:1\r\na=sendonly\r\n";
        let found = sdp_sending_section(&sdp(body)).expect("found");
        assert_eq!(found.index, Some(1));
        assert_eq!(found.sign, SendSign::Direction("sendonly"));
        assert!(sign("m=video 0 UDP/TLS/RTP/SAVPF 96\r\n").is_some());
    }

    #[test]
    fn the_session_level_direction_is_inherited() {
        let body = "a=sendonly\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n";
        assert_eq!(sign(body), Some(SendSign::InheritedDirection("sendonly")));
        let body = "a=recvonly\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n";
        assert_eq!(sign(body), None);
        let body = "a=recvonly\r\na=sendrecv\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n";
        assert_eq!(sign(body), Some(SendSign::ConflictingSessionDirections));
    }

    #[test]
    fn send_tracks_are_found_in_receive_only_sections() {
        let cases = [
            ("a=msid:stream track", "msid"),
            ("a=ssrc:1234 msid:stream track", "ssrc"),
            ("a=ssrc-group:FID 1 2", "ssrc-group"),
            ("a=simulcast:send h;m;l", "simulcast"),
            ("a=rid:h send", "rid"),
        ];
        for (attr, want) in cases {
            let body = format!("m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n{attr}\r\n");
            assert_eq!(sign(&body), Some(SendSign::SendTrack(want)), "{attr}");
        }
        let receive = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\na=simulcast:recv h;l\r\na=rid:h recv\r\n";
        assert_eq!(sign(receive), None);
    }

    #[test]
    fn the_reason_reads_well() {
        let found = sdp_sending_section(&sdp(
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\na=recvonly\r\n",
        ))
        .expect("found");
        assert_eq!(
            found.to_string(),
            "media section 0 can send: more than one direction attribute"
        );
    }
}
