//! What the recorder presents and checks to join a room: its access tokens (minted with the API
//! key, protocol §7) and the room's signed recording policy, which must name this very device
//! and identity key before anything is recorded.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use call_client::access_token::{Claims, GrantClaims};
use call_client::protocol::{RecordingDocument, RecordingPolicy, Role};
use e2ee_frames::DeviceKeys;

/// The identity the recorder's join tokens carry (shown in the roster).
pub const RECORDER_IDENTITY: &str = "recorder";

/// Lifetime of a minted join token: it is presented once, at join.
const JOIN_TOKEN_TTL: u64 = 10 * 60;

/// Lifetime of an event-stream token (presented at each reconnect; a fresh one each time).
const EVENTS_TOKEN_TTL: u64 = 10 * 60;

/// The API key the recorder mints its tokens with.
#[derive(Clone)]
pub struct ApiCredentials {
    /// The API key id (`iss`).
    pub key: String,
    /// Its secret.
    pub secret: String,
}

impl std::fmt::Debug for ApiCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiCredentials")
            .field("key", &self.key)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl ApiCredentials {
    /// A token admitting the recorder to `room`: role recorder, subscribe only.
    pub fn join_token(&self, room: &str) -> String {
        let grants = GrantClaims {
            room: Some(room.to_owned()),
            identity: Some(RECORDER_IDENTITY.to_owned()),
            role: Some(Role::Recorder),
            can_publish: false,
            can_subscribe: true,
            moderator: false,
            device: None,
        };
        Claims::new(&self.key, grants, now_unix(), JOIN_TOKEN_TTL).sign(self.secret.as_bytes())
    }

    /// A token for the recorder event stream of `device` (`GET /v1/recorder/events`).
    pub fn events_token(&self, device: &str) -> String {
        let grants = GrantClaims {
            room: None,
            identity: Some(RECORDER_IDENTITY.to_owned()),
            role: Some(Role::Recorder),
            can_publish: false,
            can_subscribe: false,
            moderator: false,
            device: Some(device.to_owned()),
        };
        Claims::new(&self.key, grants, now_unix(), EVENTS_TOKEN_TTL).sign(self.secret.as_bytes())
    }
}

/// Why the recorder will not record a room under its policy.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// `joined` carries no recording policy: the room is not recorded.
    #[error("the room carries no recording policy")]
    NoPolicy,
    /// The policy blob is malformed.
    #[error("the recording policy is malformed: {0}")]
    Malformed(String),
    /// The policy is for another room.
    #[error("the recording policy is for room {policy:?}, not {joined:?}")]
    OtherRoom {
        /// The room the document names.
        policy: String,
        /// The room joined.
        joined: String,
    },
    /// The policy names no recorder with this device id and identity key.
    #[error("the recording policy does not name this recorder ({device} with its identity key)")]
    NotNamed {
        /// This recorder's device id.
        device: String,
    },
}

/// Checks that `policy` (from `joined.recording` of `room`) names `me` (device id and identity
/// key) and returns its document.
///
/// The signature against trusted admin keys is not checked here: the service only admits a
/// recorder its room's policy names, and the clients verify the signature before they wrap keys
/// to the recorder, so frames of a room whose policy they reject do not decrypt (and are counted).
pub fn check_policy(
    policy: Option<&RecordingPolicy>,
    room: &str,
    me: &DeviceKeys,
) -> Result<RecordingDocument, PolicyError> {
    let policy = policy.ok_or(PolicyError::NoPolicy)?;
    let doc = policy
        .document()
        .map_err(|e| PolicyError::Malformed(e.to_string()))?;
    if doc.room != room {
        return Err(PolicyError::OtherRoom {
            policy: doc.room,
            joined: room.to_owned(),
        });
    }
    let device = me.device().as_str();
    let identity_key = URL_SAFE_NO_PAD.encode(me.identity_key());
    if !doc
        .recorders
        .iter()
        .any(|r| r.device == device && r.identity_key == identity_key)
    {
        return Err(PolicyError::NotNamed {
            device: device.to_owned(),
        });
    }
    Ok(doc)
}

/// How long a session recorded under `doc` is kept (the signed policy's retention).
pub fn policy_retention(doc: &RecordingDocument) -> Duration {
    Duration::from_secs(u64::from(doc.retention_days) * 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;
    use call_client::protocol::RecorderDevice;
    use e2ee_frames::DeviceId;

    fn keys(device: &str) -> DeviceKeys {
        DeviceKeys::generate(DeviceId::new(device).unwrap(), &mut rand::rng())
    }

    fn policy(room: &str, recorders: &[(&str, [u8; 32])]) -> RecordingPolicy {
        let doc = RecordingDocument {
            v: 1,
            room: room.into(),
            recorders: recorders
                .iter()
                .map(|(d, ik)| RecorderDevice {
                    device: (*d).into(),
                    identity_key: URL_SAFE_NO_PAD.encode(ik),
                })
                .collect(),
            issued_at: 1_700_000_000,
            retention_days: 30,
        };
        RecordingPolicy {
            v: 1,
            document: URL_SAFE_NO_PAD.encode(serde_json::to_vec(&doc).unwrap()),
            admin_key: URL_SAFE_NO_PAD.encode([1u8; 32]),
            sig: URL_SAFE_NO_PAD.encode([2u8; 64]),
        }
    }

    #[test]
    fn a_policy_naming_this_device_and_key_is_accepted() {
        let me = keys("rec-1");
        let p = policy("r", &[("other", [3; 32]), ("rec-1", me.identity_key())]);
        let doc = check_policy(Some(&p), "r", &me).unwrap();
        assert_eq!(doc.recorders.len(), 2);
    }

    #[test]
    fn recorder_refuses_a_policy_naming_its_device_with_another_key() {
        let me = keys("rec-1");
        let p = policy("r", &[("rec-1", [3; 32])]);
        assert_eq!(
            check_policy(Some(&p), "r", &me),
            Err(PolicyError::NotNamed {
                device: "rec-1".into()
            })
        );
        assert_eq!(check_policy(None, "r", &me), Err(PolicyError::NoPolicy));
        let p = policy("elsewhere", &[("rec-1", me.identity_key())]);
        assert!(matches!(
            check_policy(Some(&p), "r", &me),
            Err(PolicyError::OtherRoom { .. })
        ));
    }

    #[test]
    fn tokens_carry_the_recorder_grants() {
        let creds = ApiCredentials {
            key: "k".into(),
            secret: "s".into(),
        };
        let claims = |token: &str| -> Claims {
            let body = token.split('.').nth(1).unwrap();
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap()
        };
        let join = claims(&creds.join_token("room-a")).grants.unwrap();
        assert_eq!(join.role, Some(Role::Recorder));
        assert_eq!(join.room.as_deref(), Some("room-a"));
        assert!(join.can_subscribe && !join.can_publish);
        let events = claims(&creds.events_token("rec-1")).grants.unwrap();
        assert_eq!(events.device.as_deref(), Some("rec-1"));
        assert_eq!(events.room, None);
        assert!(format!("{creds:?}").contains("<redacted>"));
    }
}
