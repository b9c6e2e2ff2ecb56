//! Access tokens (protocol §7): the claims of the HS256 JWT a client presents in `join`, and
//! their signing. The signaling service verifies tokens (`signaling/src/auth.rs`) and mints
//! development ones (`signaling token`) with these claims; the load generator and tests mint
//! theirs here too, so the claims have one definition.

use hmac::{Hmac, KeyInit as _, Mac as _};
use serde::{Deserialize, Serialize};

use crate::protocol::Role;

/// The claims of an access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// API key id; selects the secret the token is verified with.
    pub iss: String,
    /// Expiry, Unix seconds (required).
    pub exp: u64,
    /// Not-before, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued-at, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// What the bearer may do. Absent means nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<GrantClaims>,
}

/// The `grants` object as written in a token: every field optional so a missing one is reported
/// as such rather than as a parse error.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantClaims {
    /// The only room the token admits to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// The user identity (shown to others in the roster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The role in the room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// May publish media (default false).
    #[serde(default)]
    pub can_publish: bool,
    /// May subscribe to media (default false).
    #[serde(default)]
    pub can_subscribe: bool,
    /// May moderate the room (default false): ask others to mute, remove them, lock the room,
    /// run its lobby, end the call (docs/protocol.md §10).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub moderator: bool,
    /// The recorder device a recorder event stream token is for (`GET /v1/recorder/events`,
    /// with `role: "recorder"` and no room).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

impl Claims {
    /// Claims issued by `api_key` at `now_unix`, valid from then for `ttl_seconds`.
    pub fn new(
        api_key: impl Into<String>,
        grants: GrantClaims,
        now_unix: u64,
        ttl_seconds: u64,
    ) -> Self {
        Claims {
            iss: api_key.into(),
            exp: now_unix.saturating_add(ttl_seconds),
            nbf: Some(now_unix),
            iat: Some(now_unix),
            grants: Some(grants),
        }
    }

    /// The token: these claims as an HS256 JWT signed with the API key's `secret`.
    pub fn sign(&self, secret: &[u8]) -> String {
        let header = e2ee_frames::wire::b64_encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        // Strings, numbers and booleans only: serializing cannot fail.
        let claims = serde_json::to_vec(self).expect("claims serialize");
        let signing_input = format!("{header}.{}", e2ee_frames::wire::b64_encode(&claims));
        // HMAC takes keys of any length.
        let mut mac =
            Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(signing_input.as_bytes());
        let sig = e2ee_frames::wire::b64_encode(&mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_an_hs256_jwt_over_its_claims() {
        let grants = GrantClaims {
            room: Some("r1".into()),
            identity: Some("alice".into()),
            role: Some(Role::Caller),
            can_publish: true,
            can_subscribe: true,
            moderator: false,
            device: None,
        };
        let claims = Claims::new("devkey", grants, 1_700_000_000, 60);
        let token = claims.sign(b"devsecret");
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"devsecret").unwrap();
        mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
        mac.verify_slice(&e2ee_frames::wire::b64_decode(parts[2]).unwrap())
            .unwrap();
        let read: Claims =
            serde_json::from_slice(&e2ee_frames::wire::b64_decode(parts[1]).unwrap()).unwrap();
        assert_eq!(read, claims);
        assert_eq!(read.exp, 1_700_000_060);
        let header: serde_json::Value =
            serde_json::from_slice(&e2ee_frames::wire::b64_decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "HS256");
    }
}
