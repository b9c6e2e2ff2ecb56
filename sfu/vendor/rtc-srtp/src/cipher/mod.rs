pub mod cipher_aead_aes_gcm;
pub mod cipher_aes_cm_hmac_sha1;

use bytes::BytesMut;
use crypto::{CryptoError, RTCCrypto};

use shared::error::{Error, Result};

type Kdf = fn(&dyn RTCCrypto, u8, &[u8], &[u8], usize, usize) -> Result<Vec<u8>>;

pub(crate) fn crypto_error(error: CryptoError) -> Error {
    Error::Crypto(error.to_string())
}

///NOTE: Auth tag and AEAD auth tag are placed at the different position in SRTCP
///
///In non-AEAD cipher, the authentication tag is placed *after* the ESRTCP word
///(Encrypted-flag and SRTCP index).
///
///> AES_128_CM_HMAC_SHA1_80
///> | RTCP Header | Encrypted payload |E| SRTCP Index | Auth tag |
///>                                   ^               |----------|
///>                                   |                ^
///>                                   |                authTagLen=10
///>                                   aeadAuthTagLen=0
///
///In AEAD cipher, the AEAD authentication tag is embedded in the ciphertext.
///It is *before* the ESRTCP word (Encrypted-flag and SRTCP index).
///
///> AEAD_AES_128_GCM
///> | RTCP Header | Encrypted payload | AEAD auth tag |E| SRTCP Index |
///>                                   |---------------|               ^
///>                                    ^                              authTagLen=0
///>                                    aeadAuthTagLen=16
///
///See https://tools.ietf.org/html/rfc7714 for the full specifications.
///
/// Cipher represents a implementation of one
/// of the SRTP Specific ciphers.
pub(crate) trait Cipher: Send {
    /// Get RTP authenticated tag length.
    fn rtp_auth_tag_len(&self) -> usize;

    /// Get RTCP authenticated tag length.
    fn rtcp_auth_tag_len(&self) -> usize;

    /// Get AEAD auth key length of the cipher.
    fn aead_auth_tag_len(&self) -> usize;

    /// Retrieved RTCP index.
    fn get_rtcp_index(&self, input: &[u8]) -> usize;

    /// Encrypt RTP payload.
    ///
    /// PATCH (e2ee-sfu): one encryption, [`Cipher::encrypt_rtp_into`], into a new buffer.
    fn encrypt_rtp(&mut self, payload: &[u8], header: &rtp::Header, roc: u32) -> Result<BytesMut> {
        // The cipher reserves room for the packet and its tag.
        let mut writer = BytesMut::new();
        self.encrypt_rtp_into(payload, header, roc, &mut writer)?;
        Ok(writer)
    }

    /// PATCH (e2ee-sfu): encrypts the RTP packet `payload` (header included) and appends the
    /// protected packet, auth tag included, to `out`. On an error `out` is as it was.
    fn encrypt_rtp_into(
        &mut self,
        payload: &[u8],
        header: &rtp::Header,
        roc: u32,
        out: &mut BytesMut,
    ) -> Result<()>;

    /// Decrypt RTP payload.
    ///
    /// PATCH (e2ee-sfu): one decryption, [`Cipher::decrypt_rtp_in_place`], on a copy.
    fn decrypt_rtp(&mut self, payload: &[u8], header: &rtp::Header, roc: u32) -> Result<BytesMut> {
        let mut writer = BytesMut::from(payload);
        let len = self.decrypt_rtp_in_place(&mut writer, header, roc)?;
        writer.truncate(len);
        Ok(writer)
    }

    /// PATCH (e2ee-sfu): authenticates and decrypts the SRTP packet `packet` (header included)
    /// where it lies and returns the length of the plaintext RTP packet at its start (the auth
    /// tag is dropped). A packet refused as unauthenticated or too short is an error; its bytes
    /// are then unspecified (an AEAD profile may have decrypted them), the buffer reusable.
    fn decrypt_rtp_in_place(
        &mut self,
        packet: &mut [u8],
        header: &rtp::Header,
        roc: u32,
    ) -> Result<usize>;

    /// Encrypt RTCP payload.
    fn encrypt_rtcp(&mut self, payload: &[u8], srtcp_index: usize, ssrc: u32) -> Result<BytesMut>;

    /// Decrypt RTCP payload.
    fn decrypt_rtcp(&mut self, payload: &[u8], srtcp_index: usize, ssrc: u32) -> Result<BytesMut>;
}
