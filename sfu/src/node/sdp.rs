//! The little SDP reading the node needs itself: header-extension ids (`a=extmap`) of a session
//! description, so the forwarding core knows where to find mid, rid, audio level and the
//! transport-wide sequence number in a participant's packets before its first packet arrives.

use sfu_forwarding::ExtensionIds;

use crate::transport::{AUDIO_LEVEL_URI, MID_URI, REPAIRED_RID_URI, RID_URI, TRANSPORT_CC_URI};

/// Reads the `a=extmap:<id>[/<direction>] <uri>` lines of `sdp` into the core's
/// [`ExtensionIds`]. Unknown URIs, malformed lines and ids outside 1–255 are ignored (the SDP
/// comes from a client and is not trusted; the transport validates it separately).
pub(crate) fn extension_ids(sdp: &str) -> ExtensionIds {
    let mut ids = ExtensionIds::default();
    for line in sdp.lines() {
        let Some(rest) = line.trim_end().strip_prefix("a=extmap:") else {
            continue;
        };
        let mut parts = rest.split_ascii_whitespace();
        let (Some(id_part), Some(uri)) = (parts.next(), parts.next()) else {
            continue;
        };
        let id_text = id_part.split('/').next().unwrap_or(id_part);
        let Ok(id) = id_text.parse::<u8>() else {
            continue;
        };
        if id == 0 {
            continue;
        }
        let slot = match uri {
            MID_URI => &mut ids.mid,
            RID_URI => &mut ids.rid,
            REPAIRED_RID_URI => &mut ids.repaired_rid,
            AUDIO_LEVEL_URI => &mut ids.audio_level,
            TRANSPORT_CC_URI => &mut ids.transport_cc,
            _ => continue,
        };
        // The first mapping of a URI wins; bundled sections repeat the same id.
        slot.get_or_insert(id);
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_known_extensions_and_ignores_the_rest() {
        let sdp = format!(
            "v=0\r\na=extmap:1 {MID_URI}\r\na=extmap:3/sendonly {TRANSPORT_CC_URI}\r\n\
             a=extmap:x {RID_URI}\r\na=extmap:0 {AUDIO_LEVEL_URI}\r\na=extmap:9 urn:other\r\n\
             a=extmap:4 {AUDIO_LEVEL_URI}\r\na=extmap:7 {MID_URI}\r\na=extmap:\r\n"
        );
        let ids = extension_ids(&sdp);
        assert_eq!(ids.mid, Some(1));
        assert_eq!(ids.transport_cc, Some(3));
        assert_eq!(ids.rid, None);
        assert_eq!(ids.audio_level, Some(4));
        assert_eq!(ids.repaired_rid, None);
    }
}
