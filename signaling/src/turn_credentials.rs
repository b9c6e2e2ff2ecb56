//! TURN credentials for each join, minted with the TURN REST API scheme that coturn checks with
//! `use-auth-secret` and `static-auth-secret` (the same shared secret on both sides):
//!
//! - username = `<unix expiry>:<opaque id>`: the expiry is `now + ttl`; the id is 96 random bits
//!   (base64url), new for every join. It carries no identity, room or device: the TURN server,
//!   its logs and anyone on the path see only an expiry and a random id. Signaling logs the id
//!   with room and device at `debug` level, so an operator can tie a relay session to a device
//!   when they must (abuse), without the TURN server learning it;
//! - credential = base64(HMAC-SHA1(secret, username)) (standard alphabet, padded).
//!
//! coturn refuses a username whose expiry has passed and a credential made with another
//! secret. The credential and the secret never appear in `Debug` output or logs.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha1::Sha1;

use crate::auth::Secret;
use crate::protocol::IceServer;

/// Mints time-limited TURN credentials for the configured TURN servers.
#[derive(Clone, Debug)]
pub struct TurnCredentials {
    urls: Vec<String>,
    secret: Secret,
    ttl: Duration,
}

/// Why TURN settings are refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TurnSettingsError {
    /// No URL given.
    #[error("turn.urls is empty")]
    NoUrls,
    /// A URL is not a `turn:`, `turns:` or `stun:` URI (RFC 7064/7065).
    #[error("turn.urls: {0:?} is not a turn:, turns: or stun: URL")]
    BadUrl(String),
    /// The shared secret is empty.
    #[error("the TURN shared secret is empty")]
    EmptySecret,
    /// The lifetime is zero.
    #[error("turn.ttl_seconds must be > 0")]
    ZeroTtl,
}

impl TurnCredentials {
    /// Credentials for `urls` (e.g. `turn:<host>:3478?transport=udp`,
    /// `turns:<host>:443?transport=tcp`), signed with `secret`, valid `ttl` from
    /// minting.
    pub fn new(
        urls: Vec<String>,
        secret: Secret,
        ttl: Duration,
    ) -> Result<Self, TurnSettingsError> {
        if urls.is_empty() {
            return Err(TurnSettingsError::NoUrls);
        }
        if let Some(bad) = urls.iter().find(|u| !is_ice_url(u)) {
            return Err(TurnSettingsError::BadUrl(bad.clone()));
        }
        if secret.expose().is_empty() {
            return Err(TurnSettingsError::EmptySecret);
        }
        if ttl.as_secs() == 0 {
            return Err(TurnSettingsError::ZeroTtl);
        }
        Ok(TurnCredentials { urls, secret, ttl })
    }

    /// The TURN server URLs.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// How long minted credentials are valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A fresh ICE server entry: a new random id, valid from `now_unix` (seconds since the
    /// epoch) for the configured lifetime.
    pub fn mint(&self, now_unix: u64) -> IceServer {
        let id = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 12]>());
        self.mint_with_id(now_unix, &id)
    }

    /// Like [`mint`](Self::mint) with a given opaque id (tests, and reproducing a credential).
    pub fn mint_with_id(&self, now_unix: u64, id: &str) -> IceServer {
        let ttl = self.ttl.as_secs();
        let username = format!("{}:{id}", now_unix.saturating_add(ttl));
        let credential = turn_rest_credential(self.secret.expose().as_bytes(), &username);
        IceServer {
            urls: self.urls.clone(),
            username,
            credential,
            ttl,
        }
    }
}

/// The TURN REST API credential of `username`: base64(HMAC-SHA1(`secret`, `username`)).
pub fn turn_rest_credential(secret: &[u8], username: &str) -> String {
    STANDARD.encode(hmac_sha1(secret, username.as_bytes()))
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    // HMAC takes a key of any length (longer ones are hashed), so this cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// A `turn:`, `turns:` or `stun:` URI with a host (RFC 7064, RFC 7065).
fn is_ice_url(url: &str) -> bool {
    ["turn:", "turns:", "stun:", "stuns:"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme))
        .is_some_and(|rest| {
            let host = rest.split(['?', ':']).next().unwrap_or("");
            !host.is_empty() && !rest.chars().any(char::is_whitespace)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(secret: &str, ttl: u64) -> TurnCredentials {
        TurnCredentials::new(
            vec!["turn:127.0.0.1:3478?transport=udp".into()],
            Secret::new(secret),
            Duration::from_secs(ttl),
        )
        .expect("valid settings")
    }

    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        // RFC 2202 §3, test case 1.
        let mac = hmac_sha1(&[0x0b; 20], b"Hi There");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "b617318655057264e28bc0b6fb378c8ef146be00");
    }

    #[test]
    fn minting_follows_the_turn_rest_api_scheme() {
        // username = "<expiry>:<id>", credential = base64(HMAC-SHA1(secret, username)); the
        // expected value was computed apart from this code, with Python's hmac module:
        // base64.b64encode(hmac.new(b"north", b"1700086400:q3x9Zl0V", hashlib.sha1).digest()).
        let s = creds("north", 86_400).mint_with_id(1_700_000_000, "q3x9Zl0V");
        assert_eq!(s.username, "1700086400:q3x9Zl0V");
        assert_eq!(s.credential, "fH/+D4iqqSjjTKMs2+2RSLvTWg0=");
        assert_eq!(s.ttl, 86_400);
        assert_eq!(s.urls, ["turn:127.0.0.1:3478?transport=udp"]);
    }

    #[test]
    fn each_mint_has_a_new_opaque_id_and_no_secret_in_debug() {
        let c = creds("north", 600);
        let (a, b) = (c.mint(1_000), c.mint(1_000));
        assert_ne!(a.username, b.username);
        let (expiry, id) = a.username.split_once(':').expect("expiry:id");
        assert_eq!(expiry, "1600");
        assert_eq!(id.len(), 16, "96 random bits, base64url");
        let shown = format!("{c:?} {a:?}");
        assert!(!shown.contains("north"), "{shown}");
        assert!(!shown.contains(&a.credential), "{shown}");
    }

    #[test]
    fn bad_settings_are_refused() {
        let ok = || Secret::new("s");
        let ttl = Duration::from_secs(60);
        assert_eq!(
            TurnCredentials::new(vec![], ok(), ttl).unwrap_err(),
            TurnSettingsError::NoUrls
        );
        for bad in [
            "http://turn.example.com",
            "turn:",
            "turn: x",
            "turn.example.com:3478",
        ] {
            assert_eq!(
                TurnCredentials::new(vec![bad.into()], ok(), ttl).unwrap_err(),
                TurnSettingsError::BadUrl(bad.into()),
                "{bad}"
            );
        }
        let url = || vec!["turns:127.0.0.1:5349?transport=tcp".to_string()];
        assert_eq!(
            TurnCredentials::new(url(), Secret::new(""), ttl).unwrap_err(),
            TurnSettingsError::EmptySecret
        );
        assert_eq!(
            TurnCredentials::new(url(), ok(), Duration::ZERO).unwrap_err(),
            TurnSettingsError::ZeroTtl
        );
        assert!(TurnCredentials::new(url(), ok(), ttl).is_ok());
    }
}
