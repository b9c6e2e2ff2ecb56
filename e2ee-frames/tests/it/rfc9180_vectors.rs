//! RFC 9180 Appendix A.1.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode)
//! through the crate's HPKE path — the same generic code key envelopes use with AES-256-GCM.

use std::convert::Infallible;

use e2ee_frames::hpke_base::{self, AesGcm128, HpkeError};
use rand::rand_core::{TryCryptoRng, TryRng};
use serde_json::Value;

/// An RNG that yields fixed bytes: the vector's `ikmE`, so the ephemeral key is the vector's.
struct FixedBytes(Vec<u8>);

impl TryRng for FixedBytes {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        assert!(dst.len() <= self.0.len(), "test RNG ran out of fixed bytes");
        let rest = self.0.split_off(dst.len());
        dst.copy_from_slice(&self.0);
        self.0 = rest;
        Ok(())
    }
}

impl TryCryptoRng for FixedBytes {}

fn clamp(mut k: [u8; 32]) -> [u8; 32] {
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
    k
}

fn vector() -> Value {
    serde_json::from_str(include_str!("../data/hpke-rfc9180-a1-1-base.json")).unwrap()
}

fn hex(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(
        v[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} missing")),
    )
    .unwrap()
}

fn arr(v: &Value, field: &str) -> [u8; 32] {
    hex(v, field).try_into().unwrap()
}

#[test]
fn rfc9180_a1_1_base_seal_and_open() {
    let v = vector();
    let setup = &v["setup"];
    assert_eq!(setup["mode"], 0);
    assert_eq!(setup["kem_id"], 32);
    assert_eq!(setup["kdf_id"], 1);
    assert_eq!(setup["aead_id"], 1);

    // DeriveKeyPair reproduces both key pairs of the vector (the private key comes back
    // clamped, RFC 7748 §5, which is the same X25519 scalar).
    for (ikm, sk, pk) in [("ikmR", "skRm", "pkRm"), ("ikmE", "skEm", "pkEm")] {
        assert_eq!(
            hpke_base::derive_keypair(&hex(setup, ikm)),
            (clamp(arr(setup, sk)), arr(setup, pk))
        );
    }

    // Single-shot seal uses sequence number 0: the first encryption of the vector.
    let first = &v["encryptions"][0];
    assert_eq!(first["sequence_number"], 0);
    let info = hex(setup, "info");
    let (aad, pt, ct) = (hex(first, "aad"), hex(first, "pt"), hex(first, "ct"));
    let mut rng = FixedBytes(hex(setup, "ikmE"));
    let (enc, sealed) =
        hpke_base::seal::<AesGcm128>(&arr(setup, "pkRm"), &info, &aad, &pt, &mut rng).unwrap();
    assert_eq!(enc, arr(setup, "enc"));
    assert_eq!(sealed, ct);

    let opened = hpke_base::open::<AesGcm128>(&arr(setup, "skRm"), &enc, &info, &aad, &ct).unwrap();
    assert_eq!(opened, pt);

    // Altered inputs do not open.
    let mut bad_ct = ct.clone();
    bad_ct[0] ^= 1;
    let other_sk = hpke_base::derive_keypair(b"some other recipient key material").0;
    for (sk, enc, info, aad, ct) in [
        (
            arr(setup, "skRm"),
            &enc[..],
            &info[..],
            &aad[..],
            &bad_ct[..],
        ),
        (
            arr(setup, "skRm"),
            &enc[..],
            &b"other info"[..],
            &aad[..],
            &ct[..],
        ),
        (
            arr(setup, "skRm"),
            &enc[..],
            &info[..],
            &b"Count-1"[..],
            &ct[..],
        ),
        (other_sk, &enc[..], &info[..], &aad[..], &ct[..]),
    ] {
        assert_eq!(
            hpke_base::open::<AesGcm128>(&sk, enc, info, aad, ct),
            Err(HpkeError::Open)
        );
    }
    assert_eq!(
        hpke_base::open::<AesGcm128>(&arr(setup, "skRm"), &enc[..31], &info, &aad, &ct),
        Err(HpkeError::InvalidKey)
    );
}
