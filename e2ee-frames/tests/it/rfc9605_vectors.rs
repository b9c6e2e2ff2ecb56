//! RFC 9605 Appendix C test vectors (header encodings, AES-CTR+HMAC AEAD, full SFrame
//! encryption for every suite), run through the crate's public API.

use e2ee_frames::aead::SframeAead;
use e2ee_frames::{BaseKey, CipherSuite, Header, SframeKey};
use serde_json::Value;

fn vectors() -> Value {
    let text = include_str!("../data/sframe-rfc9605.json");
    serde_json::from_str(text).expect("vector file is valid JSON")
}

fn hex(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(
        v[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} missing")),
    )
    .expect("vector hex is valid")
}

fn num(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} missing"))
}

fn suite(v: &Value) -> CipherSuite {
    CipherSuite::try_from(u16::try_from(num(v, "cipher_suite")).unwrap()).unwrap()
}

#[test]
fn rfc9605_header_encodings() {
    let v = vectors();
    let cases = v["header"].as_array().unwrap();
    assert_eq!(cases.len(), 289);
    for case in cases {
        let header = Header::new(num(case, "kid"), num(case, "ctr"));
        let encoded = hex(case, "encoded");
        assert_eq!(header.encode().as_bytes(), &encoded[..], "{case}");
        assert_eq!(header.encoded_len(), encoded.len());
        assert_eq!(
            Header::parse(&encoded),
            Ok((header, encoded.len())),
            "{case}"
        );
        // Trailing bytes are the ciphertext: parsing stops at the header's end.
        let mut longer = encoded.clone();
        longer.extend_from_slice(&[0xaa; 5]);
        assert_eq!(Header::parse(&longer), Ok((header, encoded.len())));
    }
}

#[test]
fn rfc9605_aes_ctr_hmac_aead() {
    let v = vectors();
    let cases = v["aes_ctr_hmac"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let suite = suite(case);
        let aead = SframeAead::new(suite, &hex(case, "key")).unwrap();
        let nonce: [u8; 12] = hex(case, "nonce").try_into().unwrap();
        let (aad, pt, ct) = (hex(case, "aad"), hex(case, "pt"), hex(case, "ct"));
        assert_eq!(aead.seal(&nonce, &aad, &pt), ct, "{suite:?}");
        assert_eq!(aead.open(&nonce, &aad, &ct).unwrap(), pt, "{suite:?}");
        let mut bad = ct.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(aead.open(&nonce, &aad, &bad).is_err());
    }
}

#[test]
fn rfc9605_sframe_encryption_every_suite() {
    let v = vectors();
    let cases = v["sframe"].as_array().unwrap();
    let mut seen: Vec<CipherSuite> = cases.iter().map(suite).collect();
    seen.sort();
    assert_eq!(seen, CipherSuite::ALL.to_vec());
    for case in cases {
        let suite = suite(case);
        let base = BaseKey::from_bytes(&hex(case, "base_key")).unwrap();
        let key = SframeKey::derive(suite, &base, num(case, "kid"));
        let ctr = num(case, "ctr");
        assert_eq!(key.nonce(ctr).to_vec(), hex(case, "nonce"), "{suite:?}");
        let (metadata, pt, ct) = (hex(case, "metadata"), hex(case, "pt"), hex(case, "ct"));

        let mut out = Vec::new();
        let header = key.encrypt_into(ctr, &metadata, &pt, &mut out).unwrap();
        assert_eq!(out, ct, "{suite:?}");
        // AAD = header || metadata, as listed in the vector.
        let aad = hex(case, "aad");
        assert_eq!(&aad[..header.encoded_len()], header.encode().as_bytes());
        assert_eq!(&aad[header.encoded_len()..], &metadata[..]);

        let mut plain = Vec::new();
        assert_eq!(key.decrypt_into(&ct, &metadata, &mut plain), Ok(header));
        assert_eq!(plain, pt, "{suite:?}");
        // Wrong metadata does not authenticate.
        assert!(key.decrypt_into(&ct, b"other", &mut plain).is_err());
    }
}
