//! The project's KID layout (docs/e2ee.md §1.1): step, stream, slot and generation packed in
//! the low 40 bits of the SFrame KID.

use thiserror::Error;

/// Highest slot number (12 bits).
pub const MAX_SLOT: u16 = 4095;

/// Which of a sender's media streams a KID belongs to (bits 8–11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Stream {
    /// Microphone audio (0).
    Audio,
    /// Camera video (1).
    Camera,
    /// Screen-share video (2).
    ScreenVideo,
    /// Screen-share audio (3).
    ScreenAudio,
}

impl Stream {
    /// Every defined stream, by number.
    pub const ALL: [Stream; 4] = [
        Stream::Audio,
        Stream::Camera,
        Stream::ScreenVideo,
        Stream::ScreenAudio,
    ];

    /// The stream's number in the KID.
    pub const fn number(self) -> u8 {
        match self {
            Stream::Audio => 0,
            Stream::Camera => 1,
            Stream::ScreenVideo => 2,
            Stream::ScreenAudio => 3,
        }
    }

    /// Index into per-stream tables.
    pub(crate) const fn index(self) -> usize {
        self.number() as usize
    }
}

impl TryFrom<u8> for Stream {
    type Error = KidError;

    fn try_from(n: u8) -> Result<Self, KidError> {
        Stream::ALL
            .into_iter()
            .find(|s| s.number() == n)
            .ok_or(KidError::ReservedStream(n))
    }
}

/// Why a KID or its fields were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KidError {
    /// Bits 40–63 of the KID are not zero.
    #[error("KID 0x{0:x} has bits above 40 set")]
    HighBitsSet(u64),
    /// Stream numbers 4–15 are reserved.
    #[error("reserved stream number {0}")]
    ReservedStream(u8),
    /// Slots are 12 bits (0–4095).
    #[error("slot {0} exceeds 4095")]
    SlotOutOfRange(u16),
}

/// A decoded KID: which sender slot, stream, key generation and ratchet step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kid {
    slot: u16,
    stream: Stream,
    generation: u16,
    step: u8,
}

impl Kid {
    /// Builds a KID; refuses a slot above [`MAX_SLOT`].
    pub fn new(slot: u16, stream: Stream, generation: u16, step: u8) -> Result<Self, KidError> {
        if slot > MAX_SLOT {
            return Err(KidError::SlotOutOfRange(slot));
        }
        Ok(Kid {
            slot,
            stream,
            generation,
            step,
        })
    }

    /// Decodes a KID from its `u64` form; refuses high bits and reserved streams.
    pub fn from_u64(kid: u64) -> Result<Self, KidError> {
        if kid >> 40 != 0 {
            return Err(KidError::HighBitsSet(kid));
        }
        Ok(Kid {
            step: (kid & 0xff) as u8,
            stream: Stream::try_from(((kid >> 8) & 0x0f) as u8)?,
            slot: ((kid >> 12) & 0x0fff) as u16,
            generation: ((kid >> 24) & 0xffff) as u16,
        })
    }

    /// The `u64` KID that goes in the SFrame header.
    pub const fn to_u64(self) -> u64 {
        (self.generation as u64) << 24
            | (self.slot as u64) << 12
            | (self.stream.number() as u64) << 8
            | self.step as u64
    }

    /// RFC 9605 §5.1 key id: the KID without its ratchet step (`kid >> 8`).
    pub const fn key_id(self) -> u64 {
        self.to_u64() >> 8
    }

    /// The sender's slot in the room.
    pub const fn slot(self) -> u16 {
        self.slot
    }

    /// The media stream.
    pub const fn stream(self) -> Stream {
        self.stream
    }

    /// The sender's key generation.
    pub const fn generation(self) -> u16 {
        self.generation
    }

    /// The ratchet step within the generation.
    pub const fn step(self) -> u8 {
        self.step
    }

    /// The same KID at another ratchet step.
    pub const fn with_step(self, step: u8) -> Self {
        Kid { step, ..self }
    }
}

impl From<Kid> for u64 {
    fn from(kid: Kid) -> u64 {
        kid.to_u64()
    }
}

impl TryFrom<u64> for Kid {
    type Error = KidError;

    fn try_from(kid: u64) -> Result<Self, KidError> {
        Kid::from_u64(kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_and_limits() {
        // docs/e2ee.md §5 example: generation 3 << 24 | slot 1 << 12 | stream 2 << 8 | step 4.
        let kid = Kid::new(1, Stream::ScreenVideo, 3, 4).unwrap();
        assert_eq!(kid.to_u64(), (3 << 24) | (1 << 12) | (2 << 8) | 4);
        assert_eq!(kid.to_u64(), 50_336_260);
        assert_eq!(Kid::from_u64(50_336_260), Ok(kid));
        let max = Kid::new(MAX_SLOT, Stream::ScreenAudio, u16::MAX, u8::MAX).unwrap();
        assert_eq!(max.to_u64(), 0xff_ffff_f3ff);
        assert_eq!(Kid::from_u64(max.to_u64()), Ok(max));
        assert_eq!(Kid::from_u64(1 << 40), Err(KidError::HighBitsSet(1 << 40)));
        assert_eq!(Kid::from_u64(4 << 8), Err(KidError::ReservedStream(4)));
        assert_eq!(
            Kid::new(4096, Stream::Audio, 0, 0),
            Err(KidError::SlotOutOfRange(4096))
        );
    }
}
