//! Spots DTLS alert records in datagrams, which is how the shard learns that a DTLS handshake
//! failed (for example on a certificate fingerprint mismatch).
//!
//! `rtc` 0.21 verifies the peer certificate's fingerprint and sends a fatal `bad_certificate`
//! alert when it does not match, but it never moves its DTLS transport or peer connection to a
//! failed state: the connection would sit in `connecting` until ICE consent ran out. An alert sent
//! or received before the connection is up therefore ends the peer at once.

/// DTLS record content type for alerts (RFC 6347 §4.1, RFC 5246 §6.2.1).
const CONTENT_TYPE_ALERT: u8 = 21;
/// DTLS record header length: type, version, epoch, sequence number, length.
const RECORD_HEADER_LEN: usize = 13;

/// RFC 7983 demultiplexing: DTLS records start with a byte in 20..=63.
pub(crate) fn looks_like_dtls(datagram: &[u8]) -> bool {
    matches!(datagram.first(), Some(20..=63))
}

/// Whether any DTLS record in `datagram` is an alert (encrypted or not).
pub(crate) fn contains_alert(datagram: &[u8]) -> bool {
    if !looks_like_dtls(datagram) {
        return false;
    }
    let mut offset = 0;
    while let Some(header) = datagram.get(offset..offset + RECORD_HEADER_LEN) {
        if header[0] == CONTENT_TYPE_ALERT {
            return true;
        }
        let length = usize::from(u16::from_be_bytes([header[11], header[12]]));
        offset += RECORD_HEADER_LEN + length;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(content_type: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![content_type, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn finds_an_alert_after_a_handshake_record() {
        let mut datagram = record(22, &[1, 2, 3, 4]);
        assert!(!contains_alert(&datagram));
        datagram.extend(record(21, &[2, 42]));
        assert!(contains_alert(&datagram));
        assert!(!contains_alert(&[0u8; 40]));
        assert!(!contains_alert(&[128u8; 40]));
        for len in 0..datagram.len() {
            let _ = contains_alert(&datagram[..len]);
        }
    }
}
