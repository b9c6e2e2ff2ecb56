//! Wire types of the SFU-to-SFU relay (architecture §7.55): a room's published tracks forwarded
//! from an *origin* node to an *edge* node over one SRTP link keyed here.
//!
//! The flow: the caller (signaling) asks the origin for an export of a room
//! ([`RelayExportRequest`], answered with a [`RelayExport`]), hands that answer unchanged to the
//! edge as the import of the same room, and keeps the two in step with
//! [`RelayTracks`] (read from the origin's export, put to the edge's import) whenever the origin
//! reports a `track_published` or `track_unpublished` in the room. The keys are transport keys
//! of this one link (SRTP master keys), never media keys: the media stays SFrame-encrypted end
//! to end and neither node can read it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::events::TrackClass;

/// Body of `POST /control/rooms/{room}/relay/exports` (on the origin).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RelayExportRequest {
    /// The edge node's media (UDP) address, `ip:port`: the only address the origin sends the
    /// link's packets to and takes its feedback from.
    pub edge_media_address: String,
}

/// The SRTP protection profile of a relay link.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RelayProfile {
    /// `SRTP_AEAD_AES_128_GCM` (RFC 7714): 16-byte master key, 12-byte master salt.
    AeadAes128Gcm,
}

/// One direction's SRTP master key and salt, lowercase hex. Its `Debug` shows neither.
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RelayKey {
    /// SRTP master key, hex.
    pub master_key: String,
    /// SRTP master salt, hex.
    pub master_salt: String,
}

impl fmt::Debug for RelayKey {
    // Transport keys: never in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RelayKey(redacted)")
    }
}

/// The link's transport keys: one per direction, so neither side can replay the other's
/// packets back at it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RelayKeys {
    /// Protection profile of both directions.
    pub profile: RelayProfile,
    /// Protects media and reports the origin sends to the edge.
    pub origin_to_edge: RelayKey,
    /// Protects the feedback the edge sends to the origin (PLI, FIR, NACK, reports).
    pub edge_to_origin: RelayKey,
}

/// One track the link carries, as the origin sends it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RelayTrack {
    /// The track's id on the origin (`t…`).
    pub track: String,
    /// The publishing device on the origin; the edge presents the track as published by the
    /// same device.
    pub publisher: String,
    /// Audio, camera or screen.
    pub kind: TrackClass,
    /// Codec MIME type (`audio/opus`, `video/VP8`, `video/VP9`).
    pub mime: String,
    /// The SSRC the track has on the link.
    pub ssrc: u32,
    /// The RTP payload type it has on the link.
    pub payload_type: u8,
}

/// Answer of `POST /control/rooms/{room}/relay/exports` (201), and the body of
/// `POST /control/rooms/{room}/relay/imports` on the edge (the answer, unchanged).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RelayExport {
    /// The link's id (chosen by the origin at random); names the link in later calls on both
    /// nodes.
    pub link: String,
    /// The origin node's media (UDP) address, `ip:port`: the only address the edge takes the
    /// link's packets from and sends its feedback to.
    pub origin_media_address: String,
    /// The edge's media address the origin sends to (as the export request named it).
    pub edge_media_address: String,
    /// Transport keys of the link.
    pub keys: RelayKeys,
    /// The room's published tracks, with their publishers.
    pub tracks: Vec<RelayTrack>,
}

/// Answer of `GET /control/relay/exports/{link}` (the tracks the link carries now) and body of
/// `PUT /control/relay/imports/{link}/tracks` (the edge then presents exactly these).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RelayTracks {
    /// The tracks.
    pub tracks: Vec<RelayTrack>,
}

/// Answer of `POST …/relay/imports` (201) and `PUT /control/relay/imports/{link}/tracks`
/// (200): the edge's track ids of the relayed tracks (the edge also reports each as
/// `track_published` with the original publisher).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RelayImported {
    /// The link's id.
    pub link: String,
    /// Origin track id → edge track id, one entry per relayed track.
    pub tracks: Vec<ImportedTrack>,
}

/// One relayed track on the edge.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ImportedTrack {
    /// Its id on the origin.
    pub origin_track: String,
    /// Its id on the edge (subscribe to this one there).
    pub track: String,
    /// The publishing device (the same on both nodes).
    pub publisher: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_show_in_debug() {
        let key = RelayKey {
            master_key: "00112233445566778899aabbccddeeff".into(),
            master_salt: "001122334455667788990011".into(),
        };
        let shown = format!("{key:?}");
        assert!(!shown.contains("0011"), "{shown}");
    }

    #[test]
    fn an_export_round_trips_and_unknown_fields_are_refused() {
        let export = RelayExport {
            link: "l1".into(),
            origin_media_address: "127.0.0.1:5000".into(),
            edge_media_address: "127.0.0.1:6000".into(),
            keys: RelayKeys {
                profile: RelayProfile::AeadAes128Gcm,
                origin_to_edge: RelayKey {
                    master_key: "aa".into(),
                    master_salt: "bb".into(),
                },
                edge_to_origin: RelayKey {
                    master_key: "cc".into(),
                    master_salt: "dd".into(),
                },
            },
            tracks: vec![RelayTrack {
                track: "t1".into(),
                publisher: "alice".into(),
                kind: TrackClass::Camera,
                mime: "video/VP8".into(),
                ssrc: 7,
                payload_type: 96,
            }],
        };
        let json = serde_json::to_string(&export).unwrap();
        assert!(json.contains("\"aead_aes128_gcm\""), "{json}");
        let back: RelayExport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, export);
        let extra = json.replacen("{", "{\"x\":1,", 1);
        assert!(serde_json::from_str::<RelayExport>(&extra).is_err());
    }
}
