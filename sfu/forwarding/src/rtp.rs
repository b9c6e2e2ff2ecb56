//! RTP fixed header (RFC 3550 §5.1) and header extensions (RFC 8285, one-byte and two-byte
//! forms), parsed as a zero-copy view over the packet, and the writer for outgoing headers.

use thiserror::Error;

/// Why an RTP packet was refused. Every variant is counted as `malformed` by the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    #[error("packet shorter than the RTP fixed header")]
    TooShort,
    /// The version field is not 2.
    #[error("RTP version is not 2")]
    BadVersion,
    /// The second byte is in the RTCP packet-type range (RFC 5761 §4): this is RTCP, not RTP.
    #[error("payload type in the RTCP range")]
    RtcpPayloadType,
    /// The CSRC list or the extension block runs past the end of the packet.
    #[error("RTP header runs past the end of the packet")]
    HeaderOverrun,
    /// The padding count is zero or larger than the payload.
    #[error("RTP padding count is invalid")]
    BadPadding,
    /// An extension element runs past the end of its extension block.
    #[error("RTP header extension element overruns its block")]
    ExtensionOverrun,
}

/// Profile value of the RFC 8285 one-byte header form.
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// Profile value of the RFC 8285 two-byte header form (low 4 bits are "appbits").
pub const TWO_BYTE_PROFILE: u16 = 0x1000;

/// A parsed RTP packet: header fields copied out, extension block and payload as offsets into
/// the original buffer. Parsing never allocates.
#[derive(Debug, Clone, Copy)]
pub struct RtpPacket<'a> {
    /// The marker bit (last packet of a video frame).
    pub marker: bool,
    /// The payload type (7 bits).
    pub payload_type: u8,
    /// The sequence number.
    pub sequence_number: u16,
    /// The RTP timestamp.
    pub timestamp: u32,
    /// The synchronisation source.
    pub ssrc: u32,
    /// The extension block as (profile, data) when the X bit is set.
    pub extension: Option<(u16, &'a [u8])>,
    /// Offset of the payload from the start of the packet.
    pub payload_offset: usize,
    /// End of the payload (exclusive), before any padding.
    pub payload_end: usize,
    /// Whether the P bit is set (the packet ends with padding).
    pub padding: bool,
    buf: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Parses the fixed header, CSRC list, extension block and padding of `buf`.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        let fixed: &[u8; 12] = buf.first_chunk().ok_or(RtpError::TooShort)?;
        let b0 = fixed[0];
        if b0 >> 6 != 2 {
            return Err(RtpError::BadVersion);
        }
        let b1 = fixed[1];
        if (192..=223).contains(&b1) {
            return Err(RtpError::RtcpPayloadType);
        }
        let padding = b0 & 0x20 != 0;
        let has_extension = b0 & 0x10 != 0;
        let csrc_count = usize::from(b0 & 0x0f);
        let mut offset = 12 + 4 * csrc_count;
        if offset > buf.len() {
            return Err(RtpError::HeaderOverrun);
        }
        let mut extension = None;
        if has_extension {
            let head = buf.get(offset..offset + 4).ok_or(RtpError::HeaderOverrun)?;
            let profile = u16::from_be_bytes([head[0], head[1]]);
            let words = usize::from(u16::from_be_bytes([head[2], head[3]]));
            let data = buf
                .get(offset + 4..offset + 4 + 4 * words)
                .ok_or(RtpError::HeaderOverrun)?;
            extension = Some((profile, data));
            offset += 4 + 4 * words;
        }
        let mut payload_end = buf.len();
        if padding {
            let count = usize::from(*buf.last().ok_or(RtpError::BadPadding)?);
            if count == 0 || count > payload_end - offset {
                return Err(RtpError::BadPadding);
            }
            payload_end -= count;
        }
        Ok(Self {
            marker: b1 & 0x80 != 0,
            payload_type: b1 & 0x7f,
            sequence_number: u16::from_be_bytes([fixed[2], fixed[3]]),
            timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
            ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
            extension,
            payload_offset: offset,
            payload_end,
            padding,
            buf,
        })
    }

    /// The payload without padding.
    pub fn payload(&self) -> &'a [u8] {
        // Both bounds were checked against `buf` in `parse`.
        &self.buf[self.payload_offset..self.payload_end]
    }

    /// The whole packet this view was parsed from.
    pub fn buffer(&self) -> &'a [u8] {
        self.buf
    }
}

/// Header-extension ids negotiated in one participant's SDP (`a=extmap`), handed to the core by
/// the shell. `None` means not negotiated. Ids 1–14 fit the one-byte form, 1–255 the two-byte.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtensionIds {
    /// `urn:ietf:params:rtp-hdrext:sdes:mid`.
    pub mid: Option<u8>,
    /// `urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id`.
    pub rid: Option<u8>,
    /// `urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id`.
    pub repaired_rid: Option<u8>,
    /// `urn:ietf:params:rtp-hdrext:ssrc-audio-level` (RFC 6464).
    pub audio_level: Option<u8>,
    /// `http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01`.
    pub transport_cc: Option<u8>,
}

/// The audio level of one packet (RFC 6464).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioLevel {
    /// The sender's voice-activity flag.
    pub voice: bool,
    /// Level in -dBov, 0 (loudest) to 127 (silence).
    pub level: u8,
}

/// The extensions the core reads from one packet. Elements with an unexpected length for their
/// kind are ignored (treated as absent), as RFC 8285 receivers do with elements they cannot use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extensions<'a> {
    /// The `mid` value (bytes of an SDES string).
    pub mid: Option<&'a [u8]>,
    /// The `rid` (RtpStreamId) value.
    pub rid: Option<&'a [u8]>,
    /// The `repaired-rid` value (RTX streams).
    pub repaired_rid: Option<&'a [u8]>,
    /// The audio level.
    pub audio_level: Option<AudioLevel>,
    /// The transport-wide sequence number.
    pub transport_cc: Option<u16>,
}

impl<'a> Extensions<'a> {
    /// Reads the elements of an extension block with the given ids. An unknown profile yields no
    /// elements; a block whose elements overrun it is an error.
    pub fn parse(block: Option<(u16, &'a [u8])>, ids: &ExtensionIds) -> Result<Self, RtpError> {
        let mut out = Extensions::default();
        let Some((profile, data)) = block else {
            return Ok(out);
        };
        let two_byte = if profile == ONE_BYTE_PROFILE {
            false
        } else if profile & 0xfff0 == TWO_BYTE_PROFILE {
            true
        } else {
            return Ok(out);
        };
        let mut i = 0;
        while i < data.len() {
            let (id, len, start) = if two_byte {
                let id = data[i];
                if id == 0 {
                    i += 1;
                    continue;
                }
                let len = usize::from(*data.get(i + 1).ok_or(RtpError::ExtensionOverrun)?);
                (id, len, i + 2)
            } else {
                let b = data[i];
                let id = b >> 4;
                if id == 0 {
                    i += 1;
                    continue;
                }
                if id == 15 {
                    break;
                }
                (id, usize::from(b & 0x0f) + 1, i + 1)
            };
            let value = data
                .get(start..start + len)
                .ok_or(RtpError::ExtensionOverrun)?;
            i = start + len;
            let id = Some(id);
            if id == ids.transport_cc {
                if let [a, b] = value {
                    out.transport_cc = Some(u16::from_be_bytes([*a, *b]));
                }
            } else if id == ids.audio_level {
                if let [v] = value {
                    out.audio_level = Some(AudioLevel {
                        voice: v & 0x80 != 0,
                        level: v & 0x7f,
                    });
                }
            } else if id == ids.mid {
                out.mid = Some(value).filter(|v| !v.is_empty());
            } else if id == ids.rid {
                out.rid = Some(value).filter(|v| !v.is_empty());
            } else if id == ids.repaired_rid {
                out.repaired_rid = Some(value).filter(|v| !v.is_empty());
            }
        }
        Ok(out)
    }
}

/// Capacity of [`HeaderBuf`]: fixed header, extension block with transport-cc, audio level and
/// a 16-byte mid, RTX original sequence number and the longest VP8 descriptor.
pub const HEADER_BUF_CAPACITY: usize = 64;

/// An outgoing packet's per-subscriber bytes, built in place without allocation: the RTP header,
/// the SFU's own extension block, for RTX the original sequence number, and the rewritten VP8
/// payload descriptor. The rest of the payload is shared among subscribers as `Bytes`.
#[derive(Clone, Copy)]
pub struct HeaderBuf {
    buf: [u8; HEADER_BUF_CAPACITY],
    len: u8,
}

impl Default for HeaderBuf {
    fn default() -> Self {
        Self {
            buf: [0; HEADER_BUF_CAPACITY],
            len: 0,
        }
    }
}

impl std::fmt::Debug for HeaderBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("HeaderBuf").field(&self.as_slice()).finish()
    }
}

impl HeaderBuf {
    /// The bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// Appends bytes. Callers size their writes from fixed maxima that add up to less than
    /// [`HEADER_BUF_CAPACITY`], so this never truncates; it refuses rather than panics if they did.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> bool {
        let start = usize::from(self.len);
        let Some(dst) = self.buf.get_mut(start..start + bytes.len()) else {
            return false;
        };
        dst.copy_from_slice(bytes);
        // start + len <= 64 was checked by `get_mut` above.
        self.len = (start + bytes.len()) as u8;
        true
    }

    fn set(&mut self, at: usize, byte: u8) {
        if let Some(b) = self.buf.get_mut(at) {
            *b = byte;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }
}

/// The fields of an outgoing RTP header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutHeader<'m> {
    pub(crate) marker: bool,
    pub(crate) padding: bool,
    pub(crate) payload_type: u8,
    pub(crate) sequence_number: u16,
    pub(crate) timestamp: u32,
    pub(crate) ssrc: u32,
    pub(crate) transport_cc: Option<(u8, u16)>,
    pub(crate) audio_level: Option<(u8, AudioLevel)>,
    pub(crate) mid: Option<(u8, &'m [u8])>,
}

impl OutHeader<'_> {
    /// Writes the header and extension block into `out` (which is cleared first). Uses the
    /// one-byte form when every id and length allows, otherwise the two-byte form.
    pub(crate) fn write(&self, out: &mut HeaderBuf) {
        out.clear();
        let mid = self.mid.filter(|(_, m)| !m.is_empty() && m.len() <= 16);
        let any_ext = self.transport_cc.is_some() || self.audio_level.is_some() || mid.is_some();
        let b0 = 0x80 | if self.padding { 0x20 } else { 0 } | if any_ext { 0x10 } else { 0 };
        let b1 = (self.payload_type & 0x7f) | if self.marker { 0x80 } else { 0 };
        let seq = self.sequence_number.to_be_bytes();
        let ts = self.timestamp.to_be_bytes();
        let ssrc = self.ssrc.to_be_bytes();
        out.push(&[
            b0, b1, seq[0], seq[1], ts[0], ts[1], ts[2], ts[3], ssrc[0], ssrc[1], ssrc[2], ssrc[3],
        ]);
        if !any_ext {
            return;
        }
        let ids_small = [
            self.transport_cc.map(|t| t.0),
            self.audio_level.map(|a| a.0),
            mid.map(|m| m.0),
        ]
        .into_iter()
        .flatten()
        .all(|id| (1..=14).contains(&id));
        let block_start = usize::from(out.len);
        let profile = if ids_small {
            ONE_BYTE_PROFILE
        } else {
            TWO_BYTE_PROFILE
        };
        let p = profile.to_be_bytes();
        out.push(&[p[0], p[1], 0, 0]);
        let element = |out: &mut HeaderBuf, id: u8, value: &[u8]| {
            if ids_small {
                // value length is 1..=16 here (checked above for mid, fixed for others).
                out.push(&[(id << 4) | (value.len() as u8 - 1)]);
            } else {
                out.push(&[id, value.len() as u8]);
            }
            out.push(value);
        };
        if let Some((id, seq)) = self.transport_cc {
            element(out, id, &seq.to_be_bytes());
        }
        if let Some((id, level)) = self.audio_level {
            element(
                out,
                id,
                &[u8::from(level.voice) << 7 | (level.level & 0x7f)],
            );
        }
        if let Some((id, m)) = mid {
            element(out, id, m);
        }
        while (usize::from(out.len) - block_start) % 4 != 0 {
            out.push(&[0]);
        }
        let words = ((usize::from(out.len) - block_start - 4) / 4) as u16;
        let w = words.to_be_bytes();
        out.set(block_start + 2, w[0]);
        out.set(block_start + 3, w[1]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_header_parses_back_in_both_forms() {
        for (tcc_id, level_id, mid_id) in [(3u8, 1u8, 4u8), (3, 1, 20)] {
            let mut buf = HeaderBuf::default();
            OutHeader {
                marker: true,
                padding: false,
                payload_type: 96,
                sequence_number: 65535,
                timestamp: 0xdead_beef,
                ssrc: 0x1234_5678,
                transport_cc: Some((tcc_id, 777)),
                audio_level: Some((
                    level_id,
                    AudioLevel {
                        voice: true,
                        level: 33,
                    },
                )),
                mid: Some((mid_id, b"video0")),
            }
            .write(&mut buf);
            let mut packet = buf.as_slice().to_vec();
            packet.extend_from_slice(b"payload");
            let p = RtpPacket::parse(&packet).expect("written header parses");
            assert!(p.marker);
            assert_eq!(p.payload_type, 96);
            assert_eq!(p.sequence_number, 65535);
            assert_eq!(p.timestamp, 0xdead_beef);
            assert_eq!(p.ssrc, 0x1234_5678);
            assert_eq!(p.payload(), b"payload");
            let ids = ExtensionIds {
                mid: Some(mid_id),
                audio_level: Some(level_id),
                transport_cc: Some(tcc_id),
                ..Default::default()
            };
            let e = Extensions::parse(p.extension, &ids).expect("extensions parse");
            assert_eq!(e.transport_cc, Some(777));
            assert_eq!(
                e.audio_level,
                Some(AudioLevel {
                    voice: true,
                    level: 33
                })
            );
            assert_eq!(e.mid, Some(&b"video0"[..]));
        }
    }

    #[test]
    fn padding_is_stripped_and_checked() {
        let mut p = vec![0xa0, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 1, 2, 3, 0, 0, 3];
        let parsed = RtpPacket::parse(&p).expect("valid padding");
        assert_eq!(parsed.payload(), &[1, 2, 3]);
        *p.last_mut().expect("non-empty") = 7;
        assert_eq!(RtpPacket::parse(&p).unwrap_err(), RtpError::BadPadding);
    }
}
