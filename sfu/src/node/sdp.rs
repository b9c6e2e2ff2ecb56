//! The little SDP reading the node needs itself: header-extension ids (`a=extmap`) of a session
//! description, so the forwarding core knows where to find mid, rid, audio level and the
//! transport-wide sequence number in a participant's packets before its first packet arrives;
//! and the simulcast layers (`a=rid` / `a=simulcast`) each media section sends, so a simulcast
//! track is published with all its layers, lowest first.

use std::collections::HashMap;

use sfu_forwarding::{ExtensionIds, MAX_LAYERS};

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

/// The first `a=ice-ufrag` of `sdp` (session or media level; bundled sections share one).
pub(crate) fn ice_ufrag(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim_end().strip_prefix("a=ice-ufrag:"))
        .map(|u| u.trim().to_owned())
}

/// One simulcast layer a publisher announced with `a=rid:<id> send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RidLayer {
    /// The rid.
    pub(crate) rid: String,
    /// `max-width` restriction of the `a=rid` line, 0 when absent.
    pub(crate) width: u32,
    /// `max-height` restriction of the `a=rid` line, 0 when absent.
    pub(crate) height: u32,
}

/// Longest rid accepted (RFC 8851 allows any length; 16 characters is generous for real
/// clients and keeps hostile SDP from growing the node's maps).
const MAX_RID_LEN: usize = 16;

/// The simulcast layers each media section of `sdp` sends, by `a=mid`, **lowest first** and at
/// most [`MAX_LAYERS`] of them. Sections without at least two `send` rids are left out (they
/// are not simulcast).
///
/// Order, first rule that applies:
/// 1. every layer has a `max-height` (or `max-width`) restriction: by that size, smallest first;
/// 2. every rid is a known quality name: `q`/`l`/`lo`/`low`/`quarter` < `h`/`m`/`mid`/`medium`/
///    `half` < `f`/`hi`/`high`/`full` (LiveKit's `q;h;f` and the `l;m;h` style both work:
///    `h` means *half* when an `f` is present and *high* otherwise);
/// 3. otherwise the order of `a=simulcast:send` (or of the `a=rid` lines when that is
///    missing), taken as lowest first: the `sendEncodings` convention of mediasoup, LiveKit and
///    Chromium's `scaleResolutionDownBy` 4, 2, 1 examples.
///
/// When more than [`MAX_LAYERS`] remain, the highest ones are kept.
pub(crate) fn simulcast_layers(sdp: &str) -> HashMap<String, Vec<RidLayer>> {
    let mut out = HashMap::new();
    for section in sdp.split("\nm=").skip(1) {
        let mut mid = None;
        let mut rids: Vec<RidLayer> = Vec::new();
        let mut announced: Option<Vec<String>> = None;
        for line in section.lines().map(str::trim_end) {
            if let Some(m) = line.strip_prefix("a=mid:") {
                mid = Some(m.trim().to_owned());
            } else if let Some(rest) = line.strip_prefix("a=rid:") {
                if let Some(layer) = parse_rid_line(rest)
                    && !rids.iter().any(|r| r.rid == layer.rid)
                    && rids.len() < 8
                {
                    rids.push(layer);
                }
            } else if let Some(rest) = line.strip_prefix("a=simulcast:") {
                announced = parse_simulcast_send(rest);
            }
        }
        let Some(mid) = mid else { continue };
        if let Some(order) = announced {
            // Only rids both described and announced, in the announced order.
            let mut ordered = Vec::with_capacity(order.len());
            for rid in order {
                if let Some(i) = rids.iter().position(|r| r.rid == rid) {
                    ordered.push(rids.swap_remove(i));
                }
            }
            rids = ordered;
        }
        if rids.len() < 2 {
            continue;
        }
        order_lowest_first(&mut rids);
        if rids.len() > MAX_LAYERS {
            rids.drain(..rids.len() - MAX_LAYERS);
        }
        out.insert(mid, rids);
    }
    out
}

/// Parses the part after `a=rid:` of a `send` rid line: `<id> send [pt=..;max-width=..;..]`.
fn parse_rid_line(rest: &str) -> Option<RidLayer> {
    let mut parts = rest.split_ascii_whitespace();
    let rid = parts.next()?;
    if parts.next()? != "send"
        || rid.is_empty()
        || rid.len() > MAX_RID_LEN
        || !rid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    let mut layer = RidLayer {
        rid: rid.to_owned(),
        width: 0,
        height: 0,
    };
    for restriction in parts.next().unwrap_or("").split(';') {
        let Some((key, value)) = restriction.split_once('=') else {
            continue;
        };
        let value = value.trim().parse::<u32>().unwrap_or(0);
        match key.trim() {
            "max-width" => layer.width = value,
            "max-height" => layer.height = value,
            _ => {}
        }
    }
    Some(layer)
}

/// Parses the part after `a=simulcast:`: the `send` list's rids in order (the first
/// alternative of each `,`-group, a paused `~` prefix dropped). `None` without a send list.
fn parse_simulcast_send(rest: &str) -> Option<Vec<String>> {
    let mut parts = rest.split_ascii_whitespace();
    while let Some(direction) = parts.next() {
        let list = parts.next()?;
        if direction == "send" {
            return Some(
                list.split(';')
                    .filter_map(|group| group.split(',').next())
                    .map(|rid| rid.trim_start_matches('~').to_owned())
                    .filter(|rid| !rid.is_empty())
                    .collect(),
            );
        }
    }
    None
}

/// Rank of a rid named for its quality (rule 2 of [`simulcast_layers`]).
fn quality_rank(rid: &str, full_present: bool) -> Option<u8> {
    match rid.to_ascii_lowercase().as_str() {
        "q" | "l" | "lo" | "low" | "quarter" => Some(0),
        "m" | "mid" | "medium" | "half" => Some(1),
        "h" if full_present => Some(1),
        "f" | "hi" | "high" | "full" | "h" => Some(2),
        _ => None,
    }
}

fn order_lowest_first(rids: &mut [RidLayer]) {
    if rids.iter().all(|r| r.height > 0) {
        rids.sort_by_key(|r| (r.height, r.width));
    } else if rids.iter().all(|r| r.width > 0) {
        rids.sort_by_key(|r| r.width);
    } else {
        let full_present = rids
            .iter()
            .any(|r| r.rid.eq_ignore_ascii_case("f") || r.rid.eq_ignore_ascii_case("full"));
        let ranks: Option<Vec<u8>> = rids
            .iter()
            .map(|r| quality_rank(&r.rid, full_present))
            .collect();
        if let Some(ranks) = ranks {
            let mut unique = ranks.clone();
            unique.sort_unstable();
            unique.dedup();
            if unique.len() == ranks.len() {
                // Stable sort by each rid's rank; ranks are distinct, so the order is total.
                let mut indexed: Vec<(u8, RidLayer)> =
                    ranks.into_iter().zip(rids.iter().cloned()).collect();
                indexed.sort_by_key(|(rank, _)| *rank);
                for (slot, (_, layer)) in rids.iter_mut().zip(indexed) {
                    *slot = layer;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video_section(mid: &str, lines: &[&str]) -> String {
        let mut s = format!("m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:{mid}\r\n");
        for l in lines {
            s.push_str(l);
            s.push_str("\r\n");
        }
        s
    }

    fn rids(sdp: &str, mid: &str) -> Vec<String> {
        simulcast_layers(sdp)
            .get(mid)
            .map(|v| v.iter().map(|r| r.rid.clone()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn livekit_names_are_ordered_by_quality_whatever_the_announced_order() {
        let sdp = format!(
            "v=0\r\n{}",
            video_section(
                "1",
                &[
                    "a=rid:f send",
                    "a=rid:h send",
                    "a=rid:q send",
                    "a=simulcast:send f;h;q"
                ]
            )
        );
        assert_eq!(rids(&sdp, "1"), ["q", "h", "f"]);
    }

    #[test]
    fn high_medium_low_names_put_h_on_top() {
        let sdp = format!(
            "v=0\r\n{}",
            video_section(
                "0",
                &[
                    "a=rid:h send",
                    "a=rid:m send",
                    "a=rid:l send",
                    "a=simulcast:send h;m;l"
                ]
            )
        );
        assert_eq!(rids(&sdp, "0"), ["l", "m", "h"]);
    }

    #[test]
    fn size_restrictions_win_over_names_and_order() {
        let sdp = format!(
            "v=0\r\n{}",
            video_section(
                "v",
                &[
                    "a=rid:a send max-width=1280;max-height=720",
                    "a=rid:b send max-width=320;max-height=180",
                    "a=rid:c send max-width=640;max-height=360",
                    "a=simulcast:send a;b;c",
                ]
            )
        );
        let layers = simulcast_layers(&sdp);
        let v = &layers["v"];
        assert_eq!(
            v.iter()
                .map(|r| (r.rid.as_str(), r.height))
                .collect::<Vec<_>>(),
            [("b", 180), ("c", 360), ("a", 720)]
        );
    }

    #[test]
    fn unknown_names_keep_the_announced_order_and_paused_or_alternative_rids_are_read() {
        let sdp = format!(
            "v=0\r\n{}{}",
            video_section(
                "0",
                &[
                    "a=rid:r0 send",
                    "a=rid:r1 send",
                    "a=rid:r2 send",
                    "a=simulcast:send r0;~r1;r2,r9"
                ]
            ),
            video_section("1", &["a=rid:x send", "a=rid:y send"])
        );
        assert_eq!(rids(&sdp, "0"), ["r0", "r1", "r2"]);
        assert_eq!(
            rids(&sdp, "1"),
            ["x", "y"],
            "a=rid order without a=simulcast"
        );
    }

    #[test]
    fn non_simulcast_recv_and_hostile_lines_are_left_out() {
        let long = format!("a=rid:{} send", "x".repeat(40));
        let sdp = format!(
            "v=0\r\n{}{}{}{}",
            video_section("0", &["a=rid:only send"]),
            video_section(
                "1",
                &["a=rid:a recv", "a=rid:b recv", "a=simulcast:recv a;b"]
            ),
            video_section(
                "2",
                &[&long, "a=rid:b\u{0} send", "a=rid:", "a=simulcast:send"]
            ),
            video_section(
                "3",
                &[
                    "a=rid:a send",
                    "a=rid:b send",
                    "a=rid:c send",
                    "a=rid:d send"
                ]
            ),
        );
        let layers = simulcast_layers(&sdp);
        assert!(!layers.contains_key("0"));
        assert!(!layers.contains_key("1"));
        assert!(!layers.contains_key("2"));
        assert_eq!(rids(&sdp, "3"), ["b", "c", "d"], "highest three kept");
    }

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
