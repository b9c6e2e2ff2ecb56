//! The SDP facts the peer reads and the rewrites it applies: remote descriptions keep only
//! loopback candidates (the network rule), an impairment relay can stand in for the SFU's
//! address, and the negotiated mids and header-extension ids are read back from a description.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The `sdes:mid` RTP header extension (RFC 8843): which media section a packet belongs to.
pub const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// The `sdes:rtp-stream-id` RTP header extension (RFC 8852): a simulcast layer's rid.
pub const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
/// The client-to-mixer audio level RTP header extension (RFC 6464).
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// `sdp` without the candidate lines whose address is not in 127.0.0.0/8 (network rule: IPv6,
/// private, public and mDNS `.local` candidates are all dropped).
pub fn loopback_only_sdp(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        if let Some(candidate) = line.trim_end().strip_prefix("a=candidate:") {
            // foundation component transport priority address port typ ...
            let loopback = candidate
                .split_whitespace()
                .nth(4)
                .and_then(|a| a.parse::<Ipv4Addr>().ok())
                .is_some_and(|ip| ip.is_loopback());
            if !loopback {
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

/// `sdp` with every candidate at `from` (address and port) moved to `to`: the client then sends
/// to `to` (a relay in front of the SFU) what it would have sent to `from`.
pub fn rewrite_candidates(sdp: &str, from: SocketAddr, to: SocketAddr) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end();
        if body.starts_with("a=candidate:") {
            let mut fields: Vec<&str> = body.split(' ').collect();
            // a=candidate:foundation component transport priority address port typ ...
            let matches = fields.len() > 5
                && fields[4].parse::<IpAddr>().ok() == Some(from.ip())
                && fields[5].parse::<u16>().ok() == Some(from.port());
            if matches {
                let (ip, port) = (to.ip().to_string(), to.port().to_string());
                fields[4] = &ip;
                fields[5] = &port;
                out.push_str(&fields.join(" "));
                out.push_str(&line[body.len()..]);
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

/// The id `sdp` maps the RTP header extension `uri` to (`a=extmap:<id>[/<direction>] <uri>`).
pub fn extmap_id(sdp: &str, uri: &str) -> Option<u8> {
    sdp.lines().find_map(|line| {
        let rest = line.trim_end().strip_prefix("a=extmap:")?;
        let (id, mapped) = rest.split_once(' ')?;
        // Extension attributes may follow the URI.
        (mapped.split_whitespace().next() == Some(uri))
            .then(|| id.split('/').next()?.parse().ok())?
    })
}

/// The mid of the first media section of `kind` (`audio`, `video`) in `sdp`.
pub fn first_mid_of_kind(sdp: &str, kind: &str) -> Option<String> {
    let section = format!("m={kind} ");
    let mut in_kind = false;
    for line in sdp.lines() {
        if line.starts_with("m=") {
            in_kind = line.starts_with(&section);
        } else if in_kind && let Some(mid) = line.strip_prefix("a=mid:") {
            return Some(mid.trim().to_owned());
        }
    }
    None
}

/// The mid of the media section whose `a=msid` names the track `track_id` in `sdp`.
pub fn mid_of_track(sdp: &str, track_id: &str) -> Option<String> {
    let mut current_mid = None;
    let mut found = false;
    for line in sdp.lines() {
        let line = line.trim_end();
        if line.starts_with("m=") {
            if found {
                break;
            }
            current_mid = None;
        } else if let Some(mid) = line.strip_prefix("a=mid:") {
            current_mid = Some(mid.trim().to_owned());
        } else if let Some(msid) = line.strip_prefix("a=msid:")
            && msid.split_whitespace().nth(1) == Some(track_id)
        {
            found = true;
        }
    }
    found.then_some(current_mid).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_of_the_server_are_moved_to_the_relay() {
        let sdp = "v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n\
            a=candidate:2 1 udp 2130706431 127.0.0.1 40001 typ host\r\n";
        let out = rewrite_candidates(
            sdp,
            "127.0.0.1:40000".parse().expect("address"),
            "127.0.0.1:5555".parse().expect("address"),
        );
        assert_eq!(
            out,
            "v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5555 typ host\r\n\
             a=candidate:2 1 udp 2130706431 127.0.0.1 40001 typ host\r\n"
        );
    }

    #[test]
    fn only_loopback_candidates_survive() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
            a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n\
            a=candidate:2 1 udp 2130706431 192.168.1.4 40000 typ host\r\n\
            a=candidate:3 1 udp 2130706431 ::1 40000 typ host\r\n\
            a=candidate:4 1 udp 2130706431 abc.local 40000 typ host\r\n\
            a=candidate:5 1 udp\r\n\
            a=mid:0\r\n";
        let out = loopback_only_sdp(sdp);
        assert!(out.contains("127.0.0.1 40000"));
        for gone in ["192.168", "::1", ".local", "candidate:5"] {
            assert!(!out.contains(gone), "{gone}");
        }
        assert!(out.ends_with("a=mid:0\r\n"));
    }

    #[test]
    fn mids_and_extension_ids_are_read_from_the_sections() {
        let sdp = "v=0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
            a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
            a=msid:s mic\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n\
            a=extmap:4/sendrecv urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
            a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n\
            a=msid:s cam\r\n";
        assert_eq!(first_mid_of_kind(sdp, "audio").as_deref(), Some("0"));
        assert_eq!(first_mid_of_kind(sdp, "video").as_deref(), Some("1"));
        assert_eq!(mid_of_track(sdp, "cam").as_deref(), Some("1"));
        assert_eq!(mid_of_track(sdp, "mic").as_deref(), Some("0"));
        assert_eq!(mid_of_track(sdp, "screen"), None);
        assert_eq!(extmap_id(sdp, MID_URI), Some(4));
        assert_eq!(extmap_id(sdp, RID_URI), Some(10));
        assert_eq!(extmap_id(sdp, AUDIO_LEVEL_URI), Some(1));
    }
}
