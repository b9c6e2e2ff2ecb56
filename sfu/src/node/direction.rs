//! Which media sections of a participant's SDP offer to send. A participant whose role may not
//! publish (viewer, recorder) must offer only `recvonly` or `inactive` sections; the node
//! refuses any other offer itself, so a client that gets past signaling's check (two direction
//! attributes, a missing one, a port-0 `bundle-only` section) still cannot send.
//!
//! A section sends when its direction is `sendonly` or `sendrecv`, when it has no direction
//! attribute and the session level none either (the default is `sendrecv`, RFC 8866 §6.7), or
//! when it has more than one (ambiguous: a parser may take either). Port and `bundle-only` do
//! not matter: a bundled section on port 0 is as live as the first. Data-channel
//! (`m=application`) sections carry no direction and are not media.

/// The 1-based positions (in `m=` order) of the audio and video sections of `sdp` that offer
/// to send.
pub(crate) fn sending_sections(sdp: &str) -> Vec<usize> {
    let mut session: Vec<&str> = Vec::new();
    let mut sections: Vec<(bool, Vec<&str>)> = Vec::new();
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(media) = line.strip_prefix("m=") {
            let is_media = matches!(media.split(' ').next(), Some("audio" | "video"));
            sections.push((is_media, Vec::new()));
            continue;
        }
        let Some(attribute) = line.strip_prefix("a=") else {
            continue;
        };
        if !matches!(attribute, "sendrecv" | "sendonly" | "recvonly" | "inactive") {
            continue;
        }
        match sections.last_mut() {
            Some((_, directions)) => directions.push(attribute),
            None => session.push(attribute),
        }
    }
    sections
        .iter()
        .enumerate()
        .filter(|(_, (is_media, directions))| {
            let effective = if directions.is_empty() {
                &session
            } else {
                directions
            };
            *is_media && sends(effective)
        })
        .map(|(index, _)| index + 1)
        .collect()
}

/// How many audio and video sections of `sdp` are `recvonly` (exactly one direction attribute,
/// `a=recvonly`): the sections an answer can give receive slots.
pub(crate) fn receive_only_sections(sdp: &str) -> (usize, usize) {
    let (mut audio, mut video) = (0, 0);
    for section in sdp.split("\nm=").skip(1) {
        let directions: Vec<&str> = section
            .lines()
            .map(str::trim_end)
            .filter(|l| {
                matches!(
                    *l,
                    "a=sendrecv" | "a=sendonly" | "a=recvonly" | "a=inactive"
                )
            })
            .collect();
        if directions != ["a=recvonly"] {
            continue;
        }
        match section.split(' ').next() {
            Some("audio") => audio += 1,
            Some("video") => video += 1,
            _ => {}
        }
    }
    (audio, video)
}

/// Whether a list of direction attributes (of one section, or of the session when the section
/// has none) lets the section send.
fn sends(directions: &[&str]) -> bool {
    match directions {
        [] => true,
        [one] => matches!(*one, "sendonly" | "sendrecv"),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::{receive_only_sections, sending_sections};

    const SESSION: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

    fn sdp(sections: &[&str]) -> String {
        let mut text = SESSION.to_owned();
        for section in sections {
            text.push_str(section);
        }
        text
    }

    #[test]
    fn recvonly_and_inactive_sections_do_not_send() {
        let offer = sdp(&[
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=recvonly\r\n",
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=inactive\r\n",
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n",
        ]);
        assert!(sending_sections(&offer).is_empty());
    }

    #[test]
    fn sending_ambiguous_missing_and_bundle_only_sections_send() {
        let offer = sdp(&[
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\na=recvonly\r\n",
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n",
            "m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=bundle-only\r\na=mid:2\r\na=sendonly\r\n",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:3\r\na=sendrecv\r\n",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:4\r\na=recvonly\r\n",
        ]);
        assert_eq!(sending_sections(&offer), vec![1, 2, 3, 4]);
    }

    #[test]
    fn receive_only_sections_are_counted_by_kind() {
        let offer = sdp(&[
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendrecv\r\n",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=recvonly\r\n",
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=recvonly\r\n",
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:3\r\na=recvonly\r\n",
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:4\r\na=inactive\r\n",
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:5\r\n",
        ]);
        assert_eq!(receive_only_sections(&offer), (1, 2));
    }

    #[test]
    fn session_level_direction_is_the_default_of_sections_without_one() {
        let recv = format!("{SESSION}a=recvonly\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n");
        assert!(sending_sections(&recv).is_empty());
        let send = format!("{SESSION}a=sendonly\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n");
        assert_eq!(sending_sections(&send), vec![1]);
    }
}
