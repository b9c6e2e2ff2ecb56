//! SRTP of an SFU-to-SFU relay link (architecture §7.55): the link's two SRTP contexts, keyed
//! over the authenticated control API instead of by a DTLS handshake, and the one place that
//! protects and unprotects the link's packets. One direction's key protects what this node
//! sends, the other's authenticates what it takes, so a packet from anyone without the key —
//! or a packet of ours reflected back — is refused. Replays are refused by the contexts'
//! replay windows. These are transport keys of one link; the media inside stays SFrame.

use bytes::BytesMut;
use rtc::shared::marshal::Unmarshal;
use rtc::srtp::context::Context;
use rtc::srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc::srtp::protection_profile::ProtectionProfile;
use sfu_control_api::{RelayKey, RelayProfile};

/// Bytes of an `AEAD_AES_128_GCM` master key.
const KEY_LEN: usize = 16;
/// Bytes of an `AEAD_AES_128_GCM` master salt.
const SALT_LEN: usize = 12;
/// Replay window of both directions, in packets (a link carries many streams at once, but the
/// window is per SSRC).
const REPLAY_WINDOW: usize = 512;

/// One direction's SRTP master key and salt. Its `Debug` shows neither.
#[derive(Clone, PartialEq, Eq)]
pub struct RelayKeyMaterial {
    key: [u8; KEY_LEN],
    salt: [u8; SALT_LEN],
}

impl std::fmt::Debug for RelayKeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelayKeyMaterial(redacted)")
    }
}

/// Why a key from the control API was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelayKeyError {
    /// Not lowercase or uppercase hex.
    #[error("a relay key is not hex")]
    NotHex,
    /// Hex of the wrong length for the profile.
    #[error("a relay key has the wrong length for its profile")]
    WrongLength,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str) -> Result<[u8; N], RelayKeyError> {
    if text.len() != 2 * N {
        return Err(RelayKeyError::WrongLength);
    }
    let mut out = [0u8; N];
    for (i, pair) in text.as_bytes().chunks_exact(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16).ok_or(RelayKeyError::NotHex);
        // `to_digit(16)` is below 16, so the byte fits.
        out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Ok(out)
}

impl RelayKeyMaterial {
    /// Fresh random key and salt from the operating system's generator.
    pub fn generate() -> Self {
        use ring::rand::SecureRandom as _;
        let rng = ring::rand::SystemRandom::new();
        let mut key = [0u8; KEY_LEN];
        let mut salt = [0u8; SALT_LEN];
        // The system generator fails only when the OS has none, where nothing secure can run.
        rng.fill(&mut key).expect("the OS random generator works");
        rng.fill(&mut salt).expect("the OS random generator works");
        Self { key, salt }
    }

    /// As the control API spells it.
    pub fn to_wire(&self) -> RelayKey {
        RelayKey {
            master_key: hex(&self.key),
            master_salt: hex(&self.salt),
        }
    }

    /// From the control API's spelling for `profile`.
    pub fn from_wire(profile: RelayProfile, wire: &RelayKey) -> Result<Self, RelayKeyError> {
        match profile {
            RelayProfile::AeadAes128Gcm => Ok(Self {
                key: unhex(&wire.master_key)?,
                salt: unhex(&wire.master_salt)?,
            }),
        }
    }
}

/// What a datagram of the link turned out to be, decrypted.
#[derive(Debug)]
pub enum Unprotected {
    /// RTP: the plaintext packet is the first `len` bytes of the datagram's buffer.
    Rtp(usize),
    /// RTCP (a compound packet), decrypted into a buffer of its own.
    Rtcp(BytesMut),
}

/// Why a datagram of the link was refused (`sfu_relay_rejected_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayRefusal {
    /// Not RTP or RTCP, or too short to parse.
    Malformed,
    /// A packet the context has accepted before.
    Replay,
    /// The authentication tag does not verify with the link's key.
    Unauthenticated,
}

impl RelayRefusal {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            RelayRefusal::Malformed => "malformed",
            RelayRefusal::Replay => "replay",
            RelayRefusal::Unauthenticated => "unauthenticated",
        }
    }
}

fn refusal(e: &rtc::shared::error::Error) -> RelayRefusal {
    use rtc::shared::error::Error;
    match e {
        Error::SrtpSsrcDuplicated(..) | Error::SrtcpSsrcDuplicated(..) => RelayRefusal::Replay,
        Error::ErrFailedToVerifyAuthTag => RelayRefusal::Unauthenticated,
        _ => RelayRefusal::Malformed,
    }
}

/// The SRTP contexts of one relay link at one end.
pub struct RelayCrypto {
    /// Protects what this end sends.
    send: Context,
    /// Authenticates and decrypts what this end takes.
    receive: Context,
}

impl std::fmt::Debug for RelayCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelayCrypto(redacted)")
    }
}

fn context(material: &RelayKeyMaterial) -> Result<Context, String> {
    let provider = rtc::crypto::default_provider().map_err(|e| e.to_string())?;
    Context::new(
        &material.key,
        &material.salt,
        ProtectionProfile::AeadAes128Gcm,
        Some(srtp_replay_protection(REPLAY_WINDOW)),
        Some(srtcp_replay_protection(REPLAY_WINDOW)),
        provider.crypto(),
    )
    .map_err(|e| e.to_string())
}

impl RelayCrypto {
    /// Contexts that protect with `send` and take what `receive` protects.
    pub fn new(send: &RelayKeyMaterial, receive: &RelayKeyMaterial) -> Result<Self, String> {
        Ok(Self {
            send: context(send)?,
            receive: context(receive)?,
        })
    }

    /// Protects the RTP packet `rtp`, appending the datagram to `out`.
    pub fn protect_rtp_into(&mut self, rtp: &[u8], out: &mut BytesMut) -> Result<(), String> {
        let header = rtc::rtp::Header::unmarshal(&mut &rtp[..]).map_err(|e| e.to_string())?;
        self.send
            .encrypt_rtp_with_header_into(rtp, &header, out)
            .map_err(|e| e.to_string())
    }

    /// Protects the RTCP compound packet `rtcp`.
    pub fn protect_rtcp(&mut self, rtcp: &[u8]) -> Result<BytesMut, String> {
        self.send.encrypt_rtcp(rtcp).map_err(|e| e.to_string())
    }

    /// Authenticates and decrypts an SRTCP datagram of the link into a buffer of its own;
    /// `data` is not touched, so a datagram may be tried against several links' keys.
    pub fn unprotect_rtcp(&mut self, data: &[u8]) -> Result<BytesMut, RelayRefusal> {
        if !matches!(data.first(), Some(128..=191)) || data.len() < 8 {
            return Err(RelayRefusal::Malformed);
        }
        self.receive.decrypt_rtcp(data).map_err(|e| refusal(&e))
    }

    /// Authenticates and decrypts a datagram of the link: RTP where it lies, RTCP into a buffer
    /// of its own. A refused datagram changes no state.
    pub fn unprotect(&mut self, data: &mut [u8]) -> Result<Unprotected, RelayRefusal> {
        if !matches!(data.first(), Some(128..=191)) || data.len() < 8 {
            return Err(RelayRefusal::Malformed);
        }
        if rtc::shared::util::is_rtcp(data) {
            return self.unprotect_rtcp(data).map(Unprotected::Rtcp);
        }
        let header =
            rtc::rtp::Header::unmarshal(&mut &data[..]).map_err(|_| RelayRefusal::Malformed)?;
        self.receive
            .decrypt_rtp_in_place_with_header(data, &header)
            .map(Unprotected::Rtp)
            .map_err(|e| refusal(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(seq: u16) -> Vec<u8> {
        let mut p = vec![
            0x80,
            96,
            (seq >> 8) as u8,
            seq as u8,
            0,
            0,
            0,
            9,
            0,
            0,
            0,
            42,
        ];
        p.extend_from_slice(b"sframe payload, opaque");
        p
    }

    fn pair() -> (RelayCrypto, RelayCrypto) {
        let down = RelayKeyMaterial::generate();
        let up = RelayKeyMaterial::generate();
        (
            RelayCrypto::new(&down, &up).unwrap(),
            RelayCrypto::new(&up, &down).unwrap(),
        )
    }

    #[test]
    fn rtp_and_rtcp_cross_the_link_unchanged() {
        let (mut origin, mut edge) = pair();
        let mut datagram = BytesMut::new();
        origin.protect_rtp_into(&rtp(1), &mut datagram).unwrap();
        assert_ne!(&datagram[12..], &rtp(1)[12..]);
        let Unprotected::Rtp(len) = edge.unprotect(&mut datagram).unwrap() else {
            panic!("not RTP");
        };
        assert_eq!(&datagram[..len], &rtp(1)[..]);
        // A PLI from the edge back up.
        let pli = [0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 42];
        let mut up = origin_bound(&mut edge, &pli);
        let Unprotected::Rtcp(plain) = origin.unprotect(&mut up).unwrap() else {
            panic!("not RTCP");
        };
        assert_eq!(&plain[..], &pli[..]);
    }

    fn origin_bound(edge: &mut RelayCrypto, rtcp: &[u8]) -> Vec<u8> {
        edge.protect_rtcp(rtcp).unwrap().to_vec()
    }

    #[test]
    fn a_wrong_key_a_replay_a_reflection_and_garbage_are_refused() {
        let (mut origin, mut edge) = pair();
        let (mut stranger, _) = pair();
        let mut forged = BytesMut::new();
        stranger.protect_rtp_into(&rtp(1), &mut forged).unwrap();
        assert_eq!(
            edge.unprotect(&mut forged).unwrap_err(),
            RelayRefusal::Unauthenticated
        );
        let mut genuine = BytesMut::new();
        origin.protect_rtp_into(&rtp(2), &mut genuine).unwrap();
        let mut again = genuine.clone();
        assert!(edge.unprotect(&mut genuine).is_ok());
        assert_eq!(
            edge.unprotect(&mut again).unwrap_err(),
            RelayRefusal::Replay
        );
        // What the origin sent, reflected back at it, does not verify with the upstream key.
        let mut reflected = BytesMut::new();
        origin.protect_rtp_into(&rtp(3), &mut reflected).unwrap();
        assert_eq!(
            origin.unprotect(&mut reflected).unwrap_err(),
            RelayRefusal::Unauthenticated
        );
        for len in 0..40 {
            let mut junk = vec![0x80u8; len];
            assert!(edge.unprotect(&mut junk).is_err(), "{len}");
        }
        assert_eq!(
            edge.unprotect(&mut [0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0])
                .unwrap_err(),
            RelayRefusal::Malformed
        );
    }

    #[test]
    fn keys_round_trip_through_the_wire_form_and_bad_ones_are_refused() {
        let k = RelayKeyMaterial::generate();
        let wire = k.to_wire();
        assert_eq!(wire.master_key.len(), 32);
        assert_eq!(
            RelayKeyMaterial::from_wire(RelayProfile::AeadAes128Gcm, &wire).unwrap(),
            k
        );
        let short = RelayKey {
            master_key: "00".into(),
            master_salt: wire.master_salt.clone(),
        };
        assert_eq!(
            RelayKeyMaterial::from_wire(RelayProfile::AeadAes128Gcm, &short).unwrap_err(),
            RelayKeyError::WrongLength
        );
        let not_hex = RelayKey {
            master_key: "zz".repeat(16),
            master_salt: wire.master_salt,
        };
        assert_eq!(
            RelayKeyMaterial::from_wire(RelayProfile::AeadAes128Gcm, &not_hex).unwrap_err(),
            RelayKeyError::NotHex
        );
        assert!(!format!("{k:?}").contains(&wire.master_key[..8]));
    }
}
