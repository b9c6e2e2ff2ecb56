//! Builds ICE binding requests like a client would, for the STUN attack tests.

use rtc::stun::attributes::ATTR_USERNAME;
use rtc::stun::fingerprint::FINGERPRINT;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{BINDING_REQUEST, Message, Setter, TransactionId};
use rtc::stun::textattrs::Username;

/// A binding request with USERNAME `username`, MESSAGE-INTEGRITY keyed with `password` and a
/// FINGERPRINT.
pub(crate) fn binding_request(username: &str, password: &str) -> Vec<u8> {
    let provider = rtc::crypto::default_provider().expect("ring provider");
    let mut msg = Message::new();
    let setters: Vec<Box<dyn Setter>> = vec![
        Box::new(BINDING_REQUEST),
        Box::new(TransactionId::new()),
        Box::new(Username::new(ATTR_USERNAME, username.to_owned())),
        Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
            password.to_owned(),
            provider.crypto(),
        )),
        Box::new(FINGERPRINT),
    ];
    msg.build(&setters).expect("binding request builds");
    msg.raw.clone()
}

/// The `a=ice-ufrag` and `a=ice-pwd` of an SDP.
pub(crate) fn ice_credentials(sdp: &str) -> (String, String) {
    let find = |key: &str| {
        sdp.lines()
            .find_map(|l| l.trim().strip_prefix(key).map(str::to_owned))
            .expect("SDP carries ICE credentials")
    };
    (find("a=ice-ufrag:"), find("a=ice-pwd:"))
}
