//! A native client verifies the room's recording policy before trusting any recorder in it: a
//! policy signed by a key other than the admin key it trusts is refused, as is one whose signed
//! document was altered.

use call_client::protocol::{
    PolicyVerifyError, RecorderDevice, RecordingDocument, RecordingPolicy,
};
use e2ee_frames::DocumentSigner;
use e2ee_frames::wire::b64_encode;

fn doc() -> RecordingDocument {
    RecordingDocument {
        v: 1,
        room: "standup".into(),
        recorders: vec![RecorderDevice {
            device: "rec-1".into(),
            identity_key: b64_encode(&[9u8; 32]),
        }],
        issued_at: 1_700_000_000,
        retention_days: 365,
    }
}

#[test]
fn policy_signed_by_another_key_is_rejected_by_native_clients() {
    let trusted = DocumentSigner::generate(&mut rand::rng());
    let attacker = DocumentSigner::generate(&mut rand::rng());
    let good = RecordingPolicy::sign(&doc(), &trusted);
    assert_eq!(good.verify(&[trusted.public_key()]), Ok(doc()));

    // Signed by the attacker, presenting the attacker's key: not trusted.
    let by_attacker = RecordingPolicy::sign(&doc(), &attacker);
    assert_eq!(
        by_attacker.verify(&[trusted.public_key()]),
        Err(PolicyVerifyError::UntrustedAdminKey)
    );
    // Signed by the attacker, presenting the trusted key: the signature fails.
    let presenting_trusted = RecordingPolicy {
        admin_key: good.admin_key.clone(),
        ..by_attacker
    };
    assert_eq!(
        presenting_trusted.verify(&[trusted.public_key()]),
        Err(PolicyVerifyError::BadSignature)
    );
    // The trusted signature over another document (a recorder added).
    let mut more = doc();
    more.recorders.push(RecorderDevice {
        device: "evil".into(),
        identity_key: b64_encode(&[7u8; 32]),
    });
    let altered = RecordingPolicy {
        document: b64_encode(&serde_json::to_vec(&more).expect("json")),
        ..good.clone()
    };
    assert_eq!(
        altered.verify(&[trusted.public_key()]),
        Err(PolicyVerifyError::BadSignature)
    );
    // A client that trusts no admin key trusts no policy.
    assert_eq!(good.verify(&[]), Err(PolicyVerifyError::UntrustedAdminKey));
}
