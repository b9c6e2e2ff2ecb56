//! What the recorder presents and checks to join a room: its access tokens (minted with the API
//! key, protocol §7) and the room's signed recording policy, which must be signed by an admin key
//! the recorder trusts and name this very device and identity key before anything is recorded.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use call_client::access_token::{Claims, GrantClaims};
use call_client::protocol::{PolicyVerifyError, RecordingDocument, RecordingPolicy, Role};
use e2ee_frames::DeviceKeys;

use super::metrics::RoomRefusal;

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

/// The admin keys whose recording policies this recorder obeys (`--trusted-admin-key`): the
/// public halves of the admins' signing keys, as `signaling policy keygen` prints them. Never
/// empty: a recorder trusting no key would refuse every room, so it does not start (default
/// deny).
#[derive(Clone, PartialEq, Eq)]
pub struct TrustedAdminKeys(Vec<[u8; 32]>);

/// Why a set of trusted admin keys was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminKeyError {
    /// No key at all.
    #[error(
        "no trusted admin key: the recorder records only rooms whose policy an admin key it \
         trusts signed (--trusted-admin-key or RECORDER_TRUSTED_ADMIN_KEYS, the public key \
         `signaling policy keygen` printed)"
    )]
    None,
    /// A key is not base64url (no padding) of 32 bytes.
    #[error(
        "not an admin public key (base64url of 32 bytes, as `signaling policy keygen` prints it)"
    )]
    Malformed,
}

impl TrustedAdminKeys {
    /// The set of `keys` (duplicates kept once); at least one.
    pub fn new(keys: impl IntoIterator<Item = [u8; 32]>) -> Result<Self, AdminKeyError> {
        let mut set: Vec<[u8; 32]> = Vec::new();
        for key in keys {
            if !set.contains(&key) {
                set.push(key);
            }
        }
        if set.is_empty() {
            return Err(AdminKeyError::None);
        }
        Ok(TrustedAdminKeys(set))
    }

    /// One admin public key as `signaling policy keygen` prints it (base64url, 32 bytes;
    /// surrounding spaces ignored).
    pub fn parse_key(text: &str) -> Result<[u8; 32], AdminKeyError> {
        URL_SAFE_NO_PAD
            .decode(text.trim())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or(AdminKeyError::Malformed)
    }

    /// The keys.
    pub fn keys(&self) -> &[[u8; 32]] {
        &self.0
    }
}

/// Public keys: shown as base64url (what an operator compares with what keygen printed).
impl std::fmt::Debug for TrustedAdminKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|k| URL_SAFE_NO_PAD.encode(k)))
            .finish()
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
    /// The policy is signed by an admin key this recorder does not trust: whoever set it is not
    /// an admin the recorder answers to.
    #[error(
        "the recording policy is signed by admin key {admin_key}, which this recorder does not trust"
    )]
    UntrustedAdminKey {
        /// The admin key the policy presents (public, base64url).
        admin_key: String,
    },
    /// The policy presents a trusted admin key but its signature does not verify under it (a
    /// forged or altered document).
    #[error("the recording policy's signature does not verify under its (trusted) admin key")]
    BadSignature,
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

impl PolicyError {
    /// The `recorder_rooms_refused_total` reason.
    pub fn refusal(&self) -> RoomRefusal {
        match self {
            PolicyError::NoPolicy => RoomRefusal::NoPolicy,
            PolicyError::Malformed(_) => RoomRefusal::Malformed,
            PolicyError::UntrustedAdminKey { .. } => RoomRefusal::UntrustedPolicy,
            PolicyError::BadSignature => RoomRefusal::BadSignature,
            PolicyError::OtherRoom { .. } => RoomRefusal::OtherRoom,
            PolicyError::NotNamed { .. } => RoomRefusal::NotNamed,
        }
    }
}

/// Checks that `policy` (from `joined.recording` of `room`, or the event stream's
/// `room_active`) is signed by one of `trusted` over its unaltered document
/// ([`RecordingPolicy::verify`], as the clients check it), is for `room` and names `me` (device
/// id and identity key), and returns its document.
///
/// The service admits only a recorder its room's policy names, but it takes the policy from
/// whoever holds the admin API: the signature check is what ties a recording to an admin the
/// recorder's operator trusts.
pub fn check_policy(
    policy: Option<&RecordingPolicy>,
    room: &str,
    me: &DeviceKeys,
    trusted: &TrustedAdminKeys,
) -> Result<RecordingDocument, PolicyError> {
    let policy = policy.ok_or(PolicyError::NoPolicy)?;
    let doc = policy.verify(trusted.keys()).map_err(|e| match e {
        PolicyVerifyError::UntrustedAdminKey => PolicyError::UntrustedAdminKey {
            admin_key: policy.admin_key.clone(),
        },
        PolicyVerifyError::BadSignature => PolicyError::BadSignature,
        other => PolicyError::Malformed(other.to_string()),
    })?;
    if doc.room != room {
        return Err(PolicyError::OtherRoom {
            policy: doc.room,
            joined: room.to_owned(),
        });
    }
    let device = me.device().as_str();
    let identity_key = URL_SAFE_NO_PAD.encode(me.identity_key());
    if !doc.names_recorder(device, &identity_key) {
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
    use e2ee_frames::{DeviceId, DocumentSigner};

    fn keys(device: &str) -> DeviceKeys {
        DeviceKeys::generate(DeviceId::new(device).unwrap(), &mut rand::rng())
    }

    fn admin() -> DocumentSigner {
        DocumentSigner::from_secret(&[7u8; 32])
    }

    fn trusting(admin: &DocumentSigner) -> TrustedAdminKeys {
        TrustedAdminKeys::new([admin.public_key()]).unwrap()
    }

    fn policy(
        room: &str,
        recorders: &[(&str, [u8; 32])],
        admin: &DocumentSigner,
    ) -> RecordingPolicy {
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
        RecordingPolicy::sign(&doc, admin)
    }

    #[test]
    fn a_policy_naming_this_device_and_key_is_accepted() {
        let me = keys("rec-1");
        let p = policy(
            "r",
            &[("other", [3; 32]), ("rec-1", me.identity_key())],
            &admin(),
        );
        let doc = check_policy(Some(&p), "r", &me, &trusting(&admin())).unwrap();
        assert_eq!(doc.recorders.len(), 2);
        // One trusted key among several is enough.
        let several = TrustedAdminKeys::new([[9u8; 32], admin().public_key(), [9u8; 32]]).unwrap();
        assert_eq!(several.keys().len(), 2);
        assert!(check_policy(Some(&p), "r", &me, &several).is_ok());
    }

    #[test]
    fn recorder_refuses_a_policy_naming_its_device_with_another_key() {
        let me = keys("rec-1");
        let trusted = trusting(&admin());
        let p = policy("r", &[("rec-1", [3; 32])], &admin());
        assert_eq!(
            check_policy(Some(&p), "r", &me, &trusted),
            Err(PolicyError::NotNamed {
                device: "rec-1".into()
            })
        );
        assert_eq!(
            check_policy(None, "r", &me, &trusted),
            Err(PolicyError::NoPolicy)
        );
        let p = policy("elsewhere", &[("rec-1", me.identity_key())], &admin());
        assert!(matches!(
            check_policy(Some(&p), "r", &me, &trusted),
            Err(PolicyError::OtherRoom { .. })
        ));
    }

    #[test]
    fn recorder_refuses_a_policy_signed_by_an_untrusted_admin_key_in_check_policy() {
        let me = keys("rec-1");
        let rogue = DocumentSigner::from_secret(&[8u8; 32]);
        let p = policy("r", &[("rec-1", me.identity_key())], &rogue);
        let refused = check_policy(Some(&p), "r", &me, &trusting(&admin()));
        assert_eq!(
            refused,
            Err(PolicyError::UntrustedAdminKey {
                admin_key: URL_SAFE_NO_PAD.encode(rogue.public_key())
            })
        );
        assert_eq!(refused.unwrap_err().refusal(), RoomRefusal::UntrustedPolicy);
        // Signed by the rogue key but presenting the trusted one: a bad signature.
        let forged = RecordingPolicy {
            admin_key: URL_SAFE_NO_PAD.encode(admin().public_key()),
            ..p.clone()
        };
        assert_eq!(
            check_policy(Some(&forged), "r", &me, &trusting(&admin())),
            Err(PolicyError::BadSignature)
        );
        // A malformed blob is refused as such, whoever signed it.
        let bad = RecordingPolicy { v: 2, ..p };
        assert!(matches!(
            check_policy(Some(&bad), "r", &me, &trusting(&admin())),
            Err(PolicyError::Malformed(_))
        ));
    }

    #[test]
    fn trusted_admin_keys_are_never_empty_and_parse_as_keygen_prints_them() {
        assert_eq!(TrustedAdminKeys::new([]), Err(AdminKeyError::None));
        let printed = URL_SAFE_NO_PAD.encode(admin().public_key());
        assert_eq!(
            TrustedAdminKeys::parse_key(&format!(" {printed}\n")),
            Ok(admin().public_key())
        );
        for bad in [
            "",
            "not base64!",
            &URL_SAFE_NO_PAD.encode([1u8; 31]),
            &format!("{printed}="),
        ] {
            assert_eq!(
                TrustedAdminKeys::parse_key(bad),
                Err(AdminKeyError::Malformed),
                "{bad:?}"
            );
        }
        let shown = format!("{:?}", trusting(&admin()));
        assert!(shown.contains(&printed), "{shown}");
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
