//! Verification codes (docs/e2ee.md §4): the per-pair safety number and the per-call security
//! code that users compare out of band.

use sha2::{Digest as _, Sha256, Sha512};
use thiserror::Error;

use crate::wire::{FieldTooLong, put_lp};

/// Hash iterations per safety-number half.
const SAFETY_ITERATIONS: usize = 5_200;
const SECURITY_CODE_LABEL: &[u8] = b"e2ee-sfu/security-code/v1";

/// Why a security code could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VerificationError {
    /// A text field is longer than 65,535 bytes.
    #[error(transparent)]
    FieldTooLong(#[from] FieldTooLong),
    /// More than 65,535 roster entries.
    #[error("roster of {0} devices is too large")]
    RosterTooLarge(usize),
}

/// One device as seen by verification: its id and Ed25519 identity key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceIdentity<'a> {
    /// Device id.
    pub device: &'a str,
    /// Ed25519 public identity key.
    pub identity_key: &'a [u8; 32],
}

/// A 60-digit safety number (two 30-digit halves, smaller first).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SafetyNumber(String);

impl SafetyNumber {
    /// The 60 digits without separators.
    pub fn digits(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SafetyNumber {
    /// 12 groups of 5 digits separated by spaces.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_groups(f, &self.0)
    }
}

/// A 25-digit call security code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecurityCode(String);

impl SecurityCode {
    /// The 25 digits without separators.
    pub fn digits(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SecurityCode {
    /// 5 groups of 5 digits separated by spaces.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_groups(f, &self.0)
    }
}

fn write_groups(f: &mut std::fmt::Formatter<'_>, digits: &str) -> std::fmt::Result {
    for (i, group) in digits.as_bytes().chunks(5).enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        // Digits are ASCII.
        f.write_str(std::str::from_utf8(group).map_err(|_| std::fmt::Error)?)?;
    }
    Ok(())
}

/// `bytes` as 5-byte big-endian integers, each `mod 100000` as 5 digits.
fn digits_of(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.chunks_exact(5) {
        let v = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        out.push_str(&format!("{:05}", v % 100_000));
    }
    out
}

/// One half: `h = SHA-512(u16(0) || ik || device)`, then 5,200 times `h = SHA-512(h || ik)`;
/// the first 30 bytes as six 5-digit groups.
pub(crate) fn fingerprint_half(id: DeviceIdentity<'_>) -> String {
    let mut h = Sha512::new()
        .chain_update(0u16.to_be_bytes())
        .chain_update(id.identity_key)
        .chain_update(id.device.as_bytes())
        .finalize();
    for _ in 0..SAFETY_ITERATIONS {
        h = Sha512::new()
            .chain_update(h)
            .chain_update(id.identity_key)
            .finalize();
    }
    digits_of(&h[..30])
}

/// The safety number of two devices (Signal's numeric fingerprint, version 0): the same
/// whichever side computes it.
pub fn safety_number(a: DeviceIdentity<'_>, b: DeviceIdentity<'_>) -> SafetyNumber {
    let (x, y) = (fingerprint_half(a), fingerprint_half(b));
    let (first, second) = if x <= y { (x, y) } else { (y, x) };
    SafetyNumber(first + &second)
}

/// One roster device for the call security code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RosterEntry<'a> {
    /// Device id.
    pub device: &'a str,
    /// Ed25519 public identity key.
    pub identity_key: &'a [u8; 32],
    /// Role (`caller`, `presenter`, `viewer`, `recorder`).
    pub role: &'a str,
    /// Slot in the room.
    pub slot: u16,
}

/// The call security code: entries `lp(device) || ik || lp(role) || u16(slot)` sorted bytewise,
/// `h = SHA-256("e2ee-sfu/security-code/v1" || lp(room) || lp(call) || u16(count) ||
/// entries…)`, first 25 bytes as five 5-digit groups.
pub fn security_code(
    room: &str,
    call: &str,
    roster: &[RosterEntry<'_>],
) -> Result<SecurityCode, VerificationError> {
    let count =
        u16::try_from(roster.len()).map_err(|_| VerificationError::RosterTooLarge(roster.len()))?;
    let mut entries = roster
        .iter()
        .map(|e| {
            let mut out = Vec::with_capacity(e.device.len() + e.role.len() + 38);
            put_lp(&mut out, e.device.as_bytes())?;
            out.extend_from_slice(e.identity_key);
            put_lp(&mut out, e.role.as_bytes())?;
            out.extend_from_slice(&e.slot.to_be_bytes());
            Ok(out)
        })
        .collect::<Result<Vec<_>, FieldTooLong>>()?;
    entries.sort();
    let mut head = Vec::with_capacity(SECURITY_CODE_LABEL.len() + room.len() + call.len() + 6);
    head.extend_from_slice(SECURITY_CODE_LABEL);
    put_lp(&mut head, room.as_bytes())?;
    put_lp(&mut head, call.as_bytes())?;
    head.extend_from_slice(&count.to_be_bytes());
    let mut hasher = Sha256::new().chain_update(&head);
    for e in &entries {
        hasher.update(e);
    }
    Ok(SecurityCode(digits_of(&hasher.finalize()[..25])))
}
