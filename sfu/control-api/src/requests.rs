//! Request bodies signaling sends to the node's control API.

use serde::{Deserialize, Serialize};

/// Room kind in `POST /control/rooms`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RoomKindBody {
    /// Up to 100 callers.
    Meeting,
    /// Up to 16 presenters and 500 viewers.
    Broadcast,
}

/// The largest `last_n` a room may have: 25 camera slots (with loudest-N + 1 audio and 2 screen
/// slots) is what a browser's slot offer fits in the signaling protocol's 60 KiB SDP cap, and it
/// is the forwarding core's default. The smallest is 1.
pub const MAX_LAST_N: usize = 25;

/// Body of `POST /control/rooms`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct CreateRoom {
    /// Room name (signaling's id).
    pub room: String,
    /// Meeting or broadcast.
    pub kind: RoomKindBody,
    /// Forward only this many loudest audio tracks in large rooms (default 3).
    #[serde(default)]
    pub loudest_n: Option<usize>,
    /// Cameras of this many recent speakers per subscriber (default and most:
    /// [`MAX_LAST_N`]); in a room with receive slots, the number of video slots. Outside
    /// `1..=MAX_LAST_N` the room is refused (400 `invalid_last_n`).
    #[serde(default)]
    pub last_n: Option<usize>,
    /// Give every participant receive slots (docs/architecture.md §7.18): a fixed set of
    /// receive sections from the policy, onto which the node maps the room's tracks, in place
    /// of per-track subscriptions. Off unless set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub receive_slots: bool,
}

/// A participant role.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RoleBody {
    /// Meeting participant (publishes and subscribes).
    Caller,
    /// Broadcast presenter.
    Presenter,
    /// Broadcast viewer (never publishes).
    Viewer,
    /// Recorder (never publishes).
    Recorder,
}

/// One wanted subscription (`PUT …/subscriptions` takes a list of them).
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq, Eq)]
pub struct SubscriptionBody {
    /// Track id from `track_published`.
    pub track: String,
    /// Highest layer (0 = lowest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_layer: Option<u8>,
    /// Visible width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Visible height (0 hides the video).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Forward on top of last-N.
    #[serde(default)]
    pub pinned: bool,
}

/// Body of `POST /control/rooms/{room}/participants`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct AddParticipant {
    /// Device id (unique in the room).
    pub device: String,
    /// Role.
    pub role: RoleBody,
    /// The client's SDP offer.
    pub offer: String,
    /// Tracks to subscribe in the first answer.
    #[serde(default)]
    pub subscribe: Vec<SubscriptionBody>,
    /// Media sections (`a=mid`) whose video is screen share.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub screen_mids: Vec<String>,
    /// The media session's id, chosen by the caller (signaling) and unique to this session of
    /// the device. A device already on the node with another session is replaced in the same
    /// step (no moment without either, no removal racing the new session); a session that was
    /// removed cannot be added again (`409 session_ended`). Absent: no id (the participant is
    /// named by its device alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<u64>,
}

/// Query of the calls about one participant (`…/participants/{device}`, its `/sdp` and
/// `/subscriptions`): `?session=ID` names the media session the call is for. When the device's
/// current session has another id the call is refused as `404 unknown_participant` (a
/// `DELETE` does nothing, `204`), so a late call about a replaced or reset session cannot
/// touch its successor. Without it the call is for whichever session the device has.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct SessionQuery {
    /// The media session's id ([`AddParticipant::session`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<u64>,
}

/// Body of `POST /control/rooms/{room}/participants/{device}/sdp`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct SdpBody {
    /// `offer` or `answer`.
    #[serde(rename = "type")]
    pub kind: SdpKind,
    /// The SDP.
    pub sdp: String,
    /// With an offer: media sections (`a=mid`) whose video is screen share.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub screen_mids: Vec<String>,
}

/// A source a participant asks to publish after its first answer (docs/architecture.md §7.53).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PublishSource {
    /// Screen-share video.
    Screen,
}

impl PublishSource {
    /// The source as the API spells it (also the last segment of its `DELETE` path).
    pub fn as_str(self) -> &'static str {
        match self {
            PublishSource::Screen => "screen",
        }
    }
}

/// Body of `POST /control/rooms/{room}/participants/{device}/publications`: the node adds a
/// section it receives `source` on and offers it (`offer` event); `204`. `DELETE
/// …/publications/{source}` turns it `inactive`, offers, and unpublishes the source's track.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
pub struct PublishBody {
    /// The source.
    pub source: PublishSource,
}

/// Offer or answer.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SdpKind {
    /// A client offer.
    Offer,
    /// The client's answer to a node offer.
    Answer,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn create_room_round_trips() {
        let body = CreateRoom {
            room: "r1".into(),
            kind: RoomKindBody::Broadcast,
            loudest_n: None,
            last_n: Some(9),
            receive_slots: false,
        };
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(
            v,
            json!({"room": "r1", "kind": "broadcast", "loudest_n": null, "last_n": 9})
        );
        assert_eq!(serde_json::from_value::<CreateRoom>(v).unwrap(), body);
        let minimal: CreateRoom =
            serde_json::from_value(json!({"room": "r", "kind": "meeting"})).unwrap();
        assert_eq!(
            (
                minimal.kind,
                minimal.loudest_n,
                minimal.last_n,
                minimal.receive_slots
            ),
            (RoomKindBody::Meeting, None, None, false)
        );
        let slots = CreateRoom {
            receive_slots: true,
            ..body
        };
        let v = serde_json::to_value(&slots).unwrap();
        assert_eq!(v["receive_slots"], json!(true));
        assert_eq!(serde_json::from_value::<CreateRoom>(v).unwrap(), slots);
    }

    #[test]
    fn add_participant_round_trips() {
        let body = AddParticipant {
            device: "d1".into(),
            role: RoleBody::Recorder,
            offer: "v=0".into(),
            subscribe: vec![SubscriptionBody {
                track: "t1".into(),
                max_layer: Some(2),
                width: Some(640),
                height: Some(360),
                pinned: true,
            }],
            screen_mids: vec!["1".into()],
            session: Some(42),
        };
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(
            v,
            json!({
                "device": "d1",
                "role": "recorder",
                "offer": "v=0",
                "subscribe": [{"track": "t1", "max_layer": 2, "width": 640, "height": 360, "pinned": true}],
                "screen_mids": ["1"],
                "session": 42,
            })
        );
        assert_eq!(serde_json::from_value::<AddParticipant>(v).unwrap(), body);
        let no_screen = AddParticipant {
            screen_mids: vec![],
            subscribe: vec![],
            session: None,
            ..body
        };
        let v = serde_json::to_value(&no_screen).unwrap();
        assert!(
            v.get("screen_mids").is_none(),
            "empty screen_mids is left out"
        );
        assert!(v.get("session").is_none(), "no session id is left out");
        assert_eq!(
            serde_json::from_value::<AddParticipant>(v).unwrap(),
            no_screen
        );
    }

    #[test]
    fn subscription_leaves_out_unset_fields() {
        let bare = SubscriptionBody {
            track: "t".into(),
            ..SubscriptionBody::default()
        };
        assert_eq!(
            serde_json::to_value(&bare).unwrap(),
            json!({"track": "t", "pinned": false})
        );
        let parsed: SubscriptionBody = serde_json::from_value(json!({"track": "t"})).unwrap();
        assert_eq!(parsed, bare);
    }

    #[test]
    fn sdp_body_round_trips() {
        for (kind, name) in [(SdpKind::Offer, "offer"), (SdpKind::Answer, "answer")] {
            let body = SdpBody {
                kind,
                sdp: "v=0".into(),
                screen_mids: vec![],
            };
            let v = serde_json::to_value(&body).unwrap();
            assert_eq!(v, json!({"type": name, "sdp": "v=0"}));
            assert_eq!(serde_json::from_value::<SdpBody>(v).unwrap(), body);
        }
    }

    #[test]
    fn publish_body_round_trips() {
        let body = PublishBody {
            source: PublishSource::Screen,
        };
        let v = serde_json::to_value(body).unwrap();
        assert_eq!(v, json!({"source": "screen"}));
        assert_eq!(serde_json::from_value::<PublishBody>(v).unwrap(), body);
        assert_eq!(PublishSource::Screen.as_str(), "screen");
        assert!(serde_json::from_value::<PublishBody>(json!({"source": "camera"})).is_err());
    }

    #[test]
    fn session_query_is_optional() {
        let q: SessionQuery = serde_json::from_value(json!({"session": 7})).unwrap();
        assert_eq!(q.session, Some(7));
        let q: SessionQuery = serde_json::from_value(json!({})).unwrap();
        assert_eq!(q, SessionQuery::default());
    }
}
