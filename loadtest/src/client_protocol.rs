//! The client side of the signaling protocol (docs/protocol.md, version 1): the messages a
//! load-test participant sends and the ones it understands, and the HS256 access token.
//!
//! Written from the protocol document, independently of the service's own types, as any
//! third-party client would be: unknown server message types and unknown fields are ignored
//! (protocol §1), everything else that does not parse is an error the caller counts.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The protocol version this client speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// A device bundle as it travels in `join` and the roster (docs/e2ee.md §2): base64url fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireBundle {
    /// Bundle format version, 1.
    pub v: u32,
    /// Device id.
    pub device: String,
    /// Ed25519 identity key, base64url.
    pub identity_key: String,
    /// X25519 HPKE key, base64url.
    pub hpke_key: String,
    /// Signature, base64url.
    pub sig: String,
}

/// A track a client announces in its `offer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackAnnouncement {
    /// The media section.
    pub mid: String,
    /// `audio` or `video`.
    pub kind: String,
    /// `microphone`, `camera`, `screen` or `screen_audio`.
    pub source: String,
    /// Simulcast layers sent (`low`, `medium`, `high`), empty for a single layer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
}

/// One wanted track in a `subscribe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscription {
    /// Track id from `track_published`.
    pub track: String,
    /// Highest layer wanted, if capped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// Visible width in CSS pixels, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Visible height in CSS pixels, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

/// A message from the client.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Enter a room.
    Join {
        /// Protocol version.
        v: u32,
        /// Room name (the token's grant).
        room: String,
        /// The access token.
        token: String,
        /// Display name.
        name: String,
        /// This device's bundle.
        device: WireBundle,
    },
    /// The client's SDP offer and the tracks it publishes.
    Offer {
        /// Complete (non-trickle) SDP.
        sdp: String,
        /// Published tracks.
        tracks: Vec<TrackAnnouncement>,
    },
    /// Answer to a server offer.
    Answer {
        /// SDP.
        sdp: String,
    },
    /// The full set of wanted tracks.
    Subscribe {
        /// Wanted tracks.
        subscriptions: Vec<Subscription>,
    },
    /// A wrapped key for one device (docs/e2ee.md §3 wire form).
    KeyEnvelope {
        /// The envelope.
        envelope: serde_json::Value,
    },
    /// This device holds `to`'s key of that generation and step.
    KeyAck {
        /// The key's sender.
        to: String,
        /// Generation.
        generation: u16,
        /// Ratchet step.
        step: u8,
    },
    /// Decrypt statistics (deltas).
    Stats {
        /// Frames that failed to decrypt since the last report.
        decrypt_failures: u64,
        /// Frames decrypted since the last report.
        frames_decrypted: u64,
    },
    /// Leave the room.
    Leave {},
}

/// A device in the roster.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RosterDevice {
    /// Device id.
    pub device: String,
    /// Role (`caller`, `presenter`, `viewer`, `recorder`).
    pub role: String,
    /// KID slot.
    pub slot: u16,
    /// Whether it may publish.
    #[serde(default)]
    pub can_publish: bool,
    /// Its bundle.
    pub bundle: WireBundle,
}

/// The roster snapshot in `joined`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Roster {
    /// Roster version.
    pub version: u64,
    /// Every device this one sees.
    pub devices: Vec<RosterDevice>,
}

/// A published track.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TrackInfo {
    /// Track id to subscribe with.
    pub id: String,
    /// Publishing device.
    pub publisher: String,
    /// `audio` or `video`.
    pub kind: String,
    /// Source.
    pub source: String,
    /// Simulcast layers.
    #[serde(default)]
    pub layers: Vec<String>,
}

/// The `joined` message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Joined {
    /// Protocol version.
    pub v: u32,
    /// Room name.
    pub room: String,
    /// Call id (envelopes are bound to it).
    pub call: String,
    /// This device's id.
    pub device: String,
    /// This device's KID slot.
    pub slot: u16,
    /// Whether this device may publish.
    pub can_publish: bool,
    /// Whether a media node is attached.
    #[serde(default)]
    pub media: bool,
    /// The roster.
    pub roster: Roster,
    /// Tracks already published.
    #[serde(default)]
    pub tracks: Vec<TrackInfo>,
}

/// A message from the server. Unknown types parse as [`ServerMessage::Unknown`].
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Joined the room.
    Joined(Box<Joined>),
    /// Roster delta.
    Roster {
        /// New roster version.
        version: u64,
        /// Devices added.
        #[serde(default)]
        added: Vec<RosterDevice>,
        /// Device ids removed.
        #[serde(default)]
        removed: Vec<String>,
    },
    /// Who should ratchet or rekey.
    Membership {
        /// `ratchet` or `rekey`.
        action: String,
        /// Joiners.
        #[serde(default)]
        joined: Vec<String>,
        /// Leavers.
        #[serde(default)]
        left: Vec<String>,
    },
    /// Server (SFU) offer.
    Offer {
        /// SDP.
        sdp: String,
    },
    /// Answer to this client's offer.
    Answer {
        /// SDP.
        sdp: String,
    },
    /// A track was published.
    TrackPublished {
        /// The track.
        track: TrackInfo,
    },
    /// A track went away.
    TrackUnpublished {
        /// Its id.
        track: String,
    },
    /// The SFU lost this device's media session: start a fresh one (new peer connection, new
    /// offer); keys are unaffected.
    MediaReset {
        /// Why (`media_node_restarted`, `media_events_lost`).
        #[serde(default)]
        reason: String,
    },
    /// A key envelope addressed to this device.
    KeyEnvelope {
        /// The envelope (parsed by `e2ee-frames`).
        envelope: serde_json::Value,
    },
    /// A recipient acknowledged this device's key.
    KeyAck {
        /// The recipient.
        from: String,
        /// Generation.
        generation: u16,
        /// Step.
        step: u8,
    },
    /// A device asks for this device's key.
    KeyRequest {
        /// The asking device.
        from: String,
    },
    /// Something was refused.
    Error {
        /// Stable code.
        code: String,
        /// Human-readable text.
        #[serde(default)]
        message: String,
    },
    /// The server removed this device.
    Left {
        /// Why.
        reason: String,
    },
    /// A message type this client does not use (`speakers`, newer types).
    #[serde(other)]
    Unknown,
}

/// Why a server message was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Not JSON, or a known type with the wrong shape.
    #[error("malformed server message: {0}")]
    Malformed(#[from] serde_json::Error),
}

impl ServerMessage {
    /// Parses one text message.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        Ok(serde_json::from_str(text)?)
    }
}

impl ClientMessage {
    /// The JSON text of the message.
    pub fn to_json(&self) -> String {
        // Strings, numbers and JSON values only: serialization cannot fail.
        serde_json::to_string(self).expect("client messages serialize")
    }
}

/// What an access token grants (protocol §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    /// Room.
    pub room: String,
    /// Identity.
    pub identity: String,
    /// `caller`, `presenter` or `viewer`.
    pub role: String,
    /// May publish.
    pub can_publish: bool,
}

/// Signs an HS256 JWT for `grants` with the API key `key_id` and `secret`, valid from
/// `now_unix` for `ttl_s` seconds.
pub fn sign_token(
    grants: &Grants,
    key_id: &str,
    secret: &str,
    now_unix: u64,
    ttl_s: u64,
) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "iss": key_id,
        "iat": now_unix,
        "nbf": now_unix,
        "exp": now_unix + ttl_s,
        "grants": {
            "room": grants.room,
            "identity": grants.identity,
            "role": grants.role,
            "can_publish": grants.can_publish,
            "can_subscribe": true,
        }
    });
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_a_verifiable_hs256_jwt() {
        let grants = Grants {
            room: "r1".into(),
            identity: "alice".into(),
            role: "caller".into(),
            can_publish: true,
        };
        let t = sign_token(&grants, "devkey", "devsecret", 1_700_000_000, 60);
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"devsecret").unwrap();
        mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
        mac.verify_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
            .unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "devkey");
        assert_eq!(claims["exp"], 1_700_000_060u64);
        assert_eq!(claims["grants"]["role"], "caller");
        assert_eq!(claims["grants"]["can_subscribe"], true);
    }

    #[test]
    fn server_messages_parse_and_unknown_types_are_tolerated() {
        let joined = r#"{"type":"joined","v":1,"room":"r","call":"c-1","kind":"meeting",
            "device":"d1","slot":4,"role":"caller","can_publish":true,"can_subscribe":true,
            "media":true,"roster":{"version":2,"devices":[{"device":"d0","identity":"a",
            "role":"caller","slot":3,"can_publish":true,"bundle":{"v":1,"device":"d0",
            "identity_key":"x","hpke_key":"y","sig":"z"}}]},"tracks":[],"future":1}"#;
        match ServerMessage::parse(joined).unwrap() {
            ServerMessage::Joined(j) => {
                assert_eq!((j.slot, j.roster.devices.len()), (4, 1));
                assert_eq!(j.roster.devices[0].bundle.device, "d0");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            ServerMessage::parse(r#"{"type":"speakers","speakers":[]}"#).unwrap(),
            ServerMessage::Unknown
        ));
        assert!(matches!(
            ServerMessage::parse(r#"{"type":"brand_new","x":1}"#).unwrap(),
            ServerMessage::Unknown
        ));
        for bad in [
            "",
            "[]",
            "{}",
            r#"{"type":"answer"}"#,
            r#"{"type":"joined"}"#,
        ] {
            assert!(ServerMessage::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn client_messages_have_the_documented_shape() {
        let offer = ClientMessage::Offer {
            sdp: "v=0".into(),
            tracks: vec![TrackAnnouncement {
                mid: "1".into(),
                kind: "video".into(),
                source: "camera".into(),
                layers: vec!["low".into(), "medium".into(), "high".into()],
            }],
        };
        let v: serde_json::Value = serde_json::from_str(&offer.to_json()).unwrap();
        assert_eq!(v["type"], "offer");
        assert_eq!(v["tracks"][0]["layers"][2], "high");
        let leave: serde_json::Value =
            serde_json::from_str(&ClientMessage::Leave {}.to_json()).unwrap();
        assert_eq!(leave, serde_json::json!({"type": "leave"}));
        let sub = ClientMessage::Subscribe {
            subscriptions: vec![Subscription {
                track: "TR_a_0".into(),
                layer: None,
                width: Some(320),
                height: Some(180),
            }],
        };
        let v: serde_json::Value = serde_json::from_str(&sub.to_json()).unwrap();
        assert!(v["subscriptions"][0].get("layer").is_none());
    }
}
