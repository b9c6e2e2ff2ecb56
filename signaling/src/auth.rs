//! Access tokens: JWT HS256 signed with an API key's secret, `iss` naming the key.
//!
//! Verification is default-deny: the algorithm is pinned to HS256 before anything else is read
//! (so `alg: none` and every other algorithm are refused), the issuer must be a configured API
//! key, `exp` is required and `nbf` checked, and every grant must be present and consistent with
//! the role. Tokens are never logged.
//!
//! The signatures themselves are HMAC-SHA-2 from `jwt_hmac.rs`, `jsonwebtoken`'s crypto provider
//! for this crate (no RSA or elliptic-curve code is built; see that file for why).

mod jwt_hmac;

use std::collections::BTreeMap;
use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::policy::Role;
use crate::protocol::ErrorCode;
use crate::protocol::{ShapeError, validate_device_id};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECONDS: u64 = 5;

/// Longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;

pub use call_client::access_token::{Claims, GrantClaims};

/// Verified grants: what a connection may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grants {
    /// The room.
    pub room: String,
    /// The identity.
    pub identity: String,
    /// The role.
    pub role: Role,
    /// May publish.
    pub can_publish: bool,
    /// May subscribe.
    pub can_subscribe: bool,
    /// May moderate the room (docs/protocol.md §10).
    pub moderator: bool,
}

/// Why a token is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// Not a JWT, bad signature, unknown key, or a refused algorithm.
    #[error("invalid token: {0}")]
    BadToken(&'static str),
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// A grant is missing or grants nothing.
    #[error("token lacks the {0} grant")]
    MissingGrant(&'static str),
    /// The grants contradict the role (e.g. a viewer allowed to publish).
    #[error("{0}")]
    Inconsistent(&'static str),
}

impl AuthError {
    /// The error code a client is sent.
    pub fn code(&self) -> ErrorCode {
        match self {
            AuthError::BadToken(_) => ErrorCode::BadToken,
            AuthError::Expired => ErrorCode::TokenExpired,
            AuthError::NotYetValid => ErrorCode::TokenNotYetValid,
            AuthError::MissingGrant(_) => ErrorCode::MissingGrant,
            AuthError::Inconsistent(_) => ErrorCode::Forbidden,
        }
    }
}

/// A secret that never shows up in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret string.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Verifies tokens against the configured API keys.
pub struct TokenVerifier {
    keys: BTreeMap<String, DecodingKey>,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("api_keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TokenVerifier {
    /// A verifier for these API keys (key id → secret).
    pub fn new(keys: &BTreeMap<String, Secret>) -> Self {
        install_jwt_crypto();
        TokenVerifier {
            keys: keys
                .iter()
                .map(|(id, s)| (id.clone(), DecodingKey::from_secret(s.expose().as_bytes())))
                .collect(),
        }
    }

    /// Verifies a token and returns its grants, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<Grants, AuthError> {
        grants_from(self.verified_claims(token)?)
    }

    /// Verifies a recorder event stream token (`GET /v1/recorder/events`): grants with
    /// `role: "recorder"`, a valid `device` and no `room`. A join token (it names a room) or any
    /// other role is refused.
    pub fn verify_recorder_stream(&self, token: &str) -> Result<RecorderStreamGrant, AuthError> {
        let g = self
            .verified_claims(token)?
            .grants
            .ok_or(AuthError::MissingGrant("grants"))?;
        if g.role != Some(Role::Recorder) {
            return Err(AuthError::Inconsistent(
                "the recorder event stream needs a token with role recorder",
            ));
        }
        if g.room.is_some() {
            return Err(AuthError::Inconsistent(
                "a join token (it names a room) does not open the recorder event stream",
            ));
        }
        let device = g.device.ok_or(AuthError::MissingGrant("device"))?;
        validate_device_id(&device).map_err(|_| AuthError::MissingGrant("device"))?;
        Ok(RecorderStreamGrant { device })
    }

    /// Checks the signature, algorithm, issuer and times of `token` and returns its claims.
    fn verified_claims(&self, token: &str) -> Result<Claims, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::BadToken("too long"));
        }
        install_jwt_crypto();
        // Pin the algorithm before trusting anything in the token: `none` does not even parse
        // as an `Algorithm`, and any other algorithm is refused here.
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| AuthError::BadToken("malformed"))?;
        if header.alg != Algorithm::HS256 {
            return Err(AuthError::BadToken("algorithm not allowed"));
        }
        // The issuer selects the key; it is read unverified only to pick the key, then
        // checked again by the verified decode below.
        let unverified: IssOnly = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| AuthError::BadToken("malformed"))?;
        let key = self
            .keys
            .get(&unverified.iss)
            .ok_or(AuthError::BadToken("unknown API key"))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.set_issuer(&[&unverified.iss]);
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidSignature => AuthError::BadToken("bad signature"),
                ErrorKind::InvalidAlgorithm => AuthError::BadToken("algorithm not allowed"),
                ErrorKind::MissingRequiredClaim(_) => AuthError::BadToken("missing exp or iss"),
                _ => AuthError::BadToken("malformed"),
            }
        })?;
        Ok(data.claims)
    }
}

/// What a verified recorder event stream token allows: the events of one recorder device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecorderStreamGrant {
    /// The recorder device whose rooms the stream announces.
    pub device: String,
}

#[derive(Deserialize)]
struct IssOnly {
    iss: String,
}

fn grants_from(claims: Claims) -> Result<Grants, AuthError> {
    let g = claims.grants.ok_or(AuthError::MissingGrant("grants"))?;
    let room = g
        .room
        .filter(|r| !r.is_empty())
        .ok_or(AuthError::MissingGrant("room"))?;
    let identity = g
        .identity
        .filter(|i| !i.is_empty() && i.len() <= 256)
        .ok_or(AuthError::MissingGrant("identity"))?;
    let role = g.role.ok_or(AuthError::MissingGrant("role"))?;
    if !g.can_publish && !g.can_subscribe {
        return Err(AuthError::MissingGrant("can_publish or can_subscribe"));
    }
    if g.can_publish && !role.may_publish() {
        return Err(AuthError::Inconsistent(
            "this role cannot be granted can_publish",
        ));
    }
    validate_room_name(&room).map_err(|_| AuthError::MissingGrant("room"))?;
    Ok(Grants {
        room,
        identity,
        role,
        can_publish: g.can_publish,
        can_subscribe: g.can_subscribe,
        moderator: g.moderator,
    })
}

/// Checks a room name: 1–64 characters `[A-Za-z0-9_-]` (the same alphabet as device ids).
pub fn validate_room_name(name: &str) -> Result<(), ShapeError> {
    validate_device_id(name)
}

/// Installs this crate's HMAC-only `jsonwebtoken` crypto provider (once per process; later
/// calls do nothing). Every function here that signs or verifies calls it; code that calls
/// `jsonwebtoken::encode`/`decode` directly (tests signing odd tokens) calls it first, since
/// `jsonwebtoken` is built without a provider of its own and would panic.
pub fn install_jwt_crypto() {
    jwt_hmac::install();
}

/// What the `signaling token` command and tests put in a token.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    /// API key id (`iss`).
    pub api_key: String,
    /// Its secret.
    pub secret: Secret,
    /// Grants.
    pub grants: GrantClaims,
    /// Lifetime from now, seconds.
    pub ttl_seconds: u64,
}

/// Signs a development token (HS256) valid from now for `ttl_seconds` (minted by
/// `call_client::access_token`, the one definition of the claims).
pub fn issue_token(req: &TokenRequest) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    Claims::new(
        req.api_key.clone(),
        req.grants.clone(),
        now,
        req.ttl_seconds,
    )
    .sign(req.secret.expose().as_bytes())
}

/// Signs arbitrary claims with HS256 (tests use it to build expired or odd tokens).
pub fn sign_claims(claims: &Claims, secret: &str) -> String {
    claims.sign(secret.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn verifier() -> TokenVerifier {
        let mut keys = BTreeMap::new();
        keys.insert("k1".to_string(), Secret::new("s1"));
        TokenVerifier::new(&keys)
    }

    fn claims(grants: GrantClaims) -> Claims {
        let now = jsonwebtoken::get_current_timestamp();
        Claims {
            iss: "k1".into(),
            exp: now + 60,
            nbf: Some(now),
            iat: Some(now),
            grants: Some(grants),
        }
    }

    fn caller() -> GrantClaims {
        GrantClaims {
            room: Some("r".into()),
            identity: Some("alice".into()),
            role: Some(Role::Caller),
            can_publish: true,
            can_subscribe: true,
            moderator: false,
            device: None,
        }
    }

    #[test]
    fn good_token_gives_grants() {
        let t = sign_claims(&claims(caller()), "s1");
        let g = verifier().verify(&t).unwrap();
        assert_eq!(g.room, "r");
        assert_eq!(g.role, Role::Caller);
        assert!(g.can_publish && g.can_subscribe);
    }

    #[test]
    fn refusals() {
        let v = verifier();
        let wrong_secret = sign_claims(&claims(caller()), "s2");
        assert_eq!(
            v.verify(&wrong_secret),
            Err(AuthError::BadToken("bad signature"))
        );
        let mut c = claims(caller());
        c.iss = "nobody".into();
        assert_eq!(
            v.verify(&sign_claims(&c, "s1")),
            Err(AuthError::BadToken("unknown API key"))
        );
        let mut c = claims(caller());
        c.exp = jsonwebtoken::get_current_timestamp() - 120;
        assert_eq!(v.verify(&sign_claims(&c, "s1")), Err(AuthError::Expired));
        let mut c = claims(caller());
        c.nbf = Some(jsonwebtoken::get_current_timestamp() + 120);
        assert_eq!(
            v.verify(&sign_claims(&c, "s1")),
            Err(AuthError::NotYetValid)
        );
        let mut g = caller();
        g.role = Some(Role::Viewer);
        assert_eq!(
            v.verify(&sign_claims(&claims(g), "s1")).unwrap_err().code(),
            ErrorCode::Forbidden
        );
        let mut g = caller();
        g.can_publish = false;
        g.can_subscribe = false;
        assert!(matches!(
            v.verify(&sign_claims(&claims(g), "s1")),
            Err(AuthError::MissingGrant(_))
        ));
        let mut c = claims(caller());
        c.grants = None;
        assert_eq!(
            v.verify(&sign_claims(&c, "s1")),
            Err(AuthError::MissingGrant("grants"))
        );
        assert!(v.verify("not a token").is_err());
        assert!(v.verify("").is_err());
    }

    #[test]
    fn recorder_stream_tokens_need_role_recorder_a_device_and_no_room() {
        let v = verifier();
        let stream = GrantClaims {
            role: Some(Role::Recorder),
            device: Some("rec-1".into()),
            ..GrantClaims::default()
        };
        assert_eq!(
            v.verify_recorder_stream(&sign_claims(&claims(stream.clone()), "s1")),
            Ok(RecorderStreamGrant {
                device: "rec-1".into()
            })
        );
        let join = sign_claims(&claims(caller()), "s1");
        assert!(matches!(
            v.verify_recorder_stream(&join),
            Err(AuthError::Inconsistent(_))
        ));
        let mut with_room = stream.clone();
        with_room.room = Some("r".into());
        assert!(matches!(
            v.verify_recorder_stream(&sign_claims(&claims(with_room), "s1")),
            Err(AuthError::Inconsistent(_))
        ));
        let mut no_device = stream.clone();
        no_device.device = None;
        assert_eq!(
            v.verify_recorder_stream(&sign_claims(&claims(no_device), "s1")),
            Err(AuthError::MissingGrant("device"))
        );
        let mut bad_device = stream.clone();
        bad_device.device = Some("no spaces".into());
        assert_eq!(
            v.verify_recorder_stream(&sign_claims(&claims(bad_device), "s1")),
            Err(AuthError::MissingGrant("device"))
        );
        assert_eq!(
            v.verify_recorder_stream(&sign_claims(&claims(stream), "s2")),
            Err(AuthError::BadToken("bad signature"))
        );
        // A recorder stream token does not join a room either.
        let stream_token = sign_claims(
            &claims(GrantClaims {
                role: Some(Role::Recorder),
                device: Some("rec-1".into()),
                can_subscribe: true,
                ..GrantClaims::default()
            }),
            "s1",
        );
        assert_eq!(
            v.verify(&stream_token),
            Err(AuthError::MissingGrant("room"))
        );
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let v = verifier();
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(caller())).unwrap());
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
            body
        );
        assert!(matches!(v.verify(&none), Err(AuthError::BadToken(_))));
        install_jwt_crypto();
        let hs512 = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS512),
            &claims(caller()),
            &jsonwebtoken::EncodingKey::from_secret(b"s1"),
        )
        .unwrap();
        assert_eq!(
            v.verify(&hs512),
            Err(AuthError::BadToken("algorithm not allowed"))
        );
    }
}
