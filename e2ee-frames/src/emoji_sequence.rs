//! The emoji sequence of two devices (docs/e2ee.md §4.1): a shorter form of the safety number that
//! people compare by eye or read aloud as words, the same on both sides.
//!
//! Each device's 30-digit safety-number half (5,201 SHA-512 of its identity key and device id)
//! gives 8 symbols of its own: `HKDF-SHA256(salt = "", ikm = ASCII(half), info =
//! "e2ee-sfu/emoji/v1", L = 6)`, read as eight 6-bit big-endian indices into [`EMOJI_TABLE`]. The
//! sequence is the two halves' symbols in the safety number's order (the smaller half first): 16
//! symbols. Per-device halves (rather than one hash over both keys) make an impostor match a
//! *given* device's 48 bits (a second preimage, about 2^60 SHA-512 with the iterations) instead
//! of any collision between two keys it chooses (a birthday search of 2^24).

use hkdf::Hkdf;
use sha2::Sha256;

use crate::verification::{DeviceIdentity, fingerprint_half};

const EMOJI_LABEL: &[u8] = b"e2ee-sfu/emoji/v1";
/// Symbols per device half.
pub const SYMBOLS_PER_HALF: usize = 8;
/// Symbols in a sequence (two halves).
pub const SEQUENCE_LEN: usize = 2 * SYMBOLS_PER_HALF;
/// HKDF output bytes per half: 8 symbols × 6 bits.
const HALF_BYTES: usize = SYMBOLS_PER_HALF * 6 / 8;

/// One symbol: the emoji and the English word said for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmojiSymbol {
    /// The emoji (one grapheme; some carry U+FE0F).
    pub emoji: &'static str,
    /// The word for screen readers and for reading the sequence aloud.
    pub word: &'static str,
}

const fn sym(emoji: &'static str, word: &'static str) -> EmojiSymbol {
    EmojiSymbol { emoji, word }
}

/// The 64 symbols, index = 6-bit value. The list (emoji and English descriptions) is the Matrix
/// specification's SAS emoji table (`data-definitions/sas-emoji.json` of matrix-org/matrix-spec,
/// Apache-2.0), chosen there to be distinct at a glance and in words.
pub const EMOJI_TABLE: [EmojiSymbol; 64] = [
    sym("🐶", "Dog"),
    sym("🐱", "Cat"),
    sym("🦁", "Lion"),
    sym("🐎", "Horse"),
    sym("🦄", "Unicorn"),
    sym("🐷", "Pig"),
    sym("🐘", "Elephant"),
    sym("🐰", "Rabbit"),
    sym("🐼", "Panda"),
    sym("🐓", "Rooster"),
    sym("🐧", "Penguin"),
    sym("🐢", "Turtle"),
    sym("🐟", "Fish"),
    sym("🐙", "Octopus"),
    sym("🦋", "Butterfly"),
    sym("🌷", "Flower"),
    sym("🌳", "Tree"),
    sym("🌵", "Cactus"),
    sym("🍄", "Mushroom"),
    sym("🌏", "Globe"),
    sym("🌙", "Moon"),
    sym("☁\u{fe0f}", "Cloud"),
    sym("🔥", "Fire"),
    sym("🍌", "Banana"),
    sym("🍎", "Apple"),
    sym("🍓", "Strawberry"),
    sym("🌽", "Corn"),
    sym("🍕", "Pizza"),
    sym("🎂", "Cake"),
    sym("❤\u{fe0f}", "Heart"),
    sym("😀", "Smiley"),
    sym("🤖", "Robot"),
    sym("🎩", "Hat"),
    sym("👓", "Glasses"),
    sym("🔧", "Spanner"),
    sym("🎅", "Santa"),
    sym("👍", "Thumbs Up"),
    sym("☂\u{fe0f}", "Umbrella"),
    sym("⌛", "Hourglass"),
    sym("⏰", "Clock"),
    sym("🎁", "Gift"),
    sym("💡", "Light Bulb"),
    sym("📕", "Book"),
    sym("✏\u{fe0f}", "Pencil"),
    sym("📎", "Paperclip"),
    sym("✂\u{fe0f}", "Scissors"),
    sym("🔒", "Lock"),
    sym("🔑", "Key"),
    sym("🔨", "Hammer"),
    sym("☎\u{fe0f}", "Telephone"),
    sym("🏁", "Flag"),
    sym("🚂", "Train"),
    sym("🚲", "Bicycle"),
    sym("✈\u{fe0f}", "Aeroplane"),
    sym("🚀", "Rocket"),
    sym("🏆", "Trophy"),
    sym("⚽", "Ball"),
    sym("🎸", "Guitar"),
    sym("🎺", "Trumpet"),
    sym("🔔", "Bell"),
    sym("⚓", "Anchor"),
    sym("🎧", "Headphones"),
    sym("📁", "Folder"),
    sym("📌", "Pin"),
];

/// 16 symbols both devices of a pair show (indices into [`EMOJI_TABLE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EmojiSequence([u8; SEQUENCE_LEN]);

impl EmojiSequence {
    /// The 6-bit indices, in display order.
    pub fn indices(&self) -> &[u8; SEQUENCE_LEN] {
        &self.0
    }

    /// The symbols, in display order.
    pub fn symbols(&self) -> impl Iterator<Item = &'static EmojiSymbol> + '_ {
        // Indices are 6-bit values (`half_indices` masks them), so they are in the table.
        self.0.iter().map(|&i| &EMOJI_TABLE[usize::from(i)])
    }

    /// The words separated by spaces (what a screen reader or a phone call says).
    pub fn words(&self) -> String {
        self.symbols().map(|s| s.word).collect::<Vec<_>>().join(" ")
    }
}

impl std::fmt::Display for EmojiSequence {
    /// The emoji, two groups of 8 separated by " · ", symbols by spaces.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, s) in self.symbols().enumerate() {
            if i == SYMBOLS_PER_HALF {
                f.write_str(" · ")?;
            } else if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(s.emoji)?;
        }
        Ok(())
    }
}

/// The 8 indices of one safety-number half.
fn half_indices(half_digits: &str) -> [u8; SYMBOLS_PER_HALF] {
    let mut okm = [0u8; HALF_BYTES];
    Hkdf::<Sha256>::new(None, half_digits.as_bytes())
        .expand(EMOJI_LABEL, &mut okm)
        .expect("6 bytes is within HKDF-SHA256's output limit");
    let bits = okm.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let mut out = [0u8; SYMBOLS_PER_HALF];
    for (i, slot) in out.iter_mut().enumerate() {
        let shift = 6 * (SYMBOLS_PER_HALF - 1 - i);
        // Masked to 6 bits, so the cast keeps the value.
        *slot = ((bits >> shift) & 0x3f) as u8;
    }
    out
}

/// The emoji sequence of two devices: the same whichever side computes it, changed by either
/// device's identity key or id (docs/e2ee.md §4.1).
pub fn emoji_sequence(a: DeviceIdentity<'_>, b: DeviceIdentity<'_>) -> EmojiSequence {
    let (x, y) = (fingerprint_half(a), fingerprint_half(b));
    let (first, second) = if x <= y { (x, y) } else { (y, x) };
    let mut out = [0u8; SEQUENCE_LEN];
    out[..SYMBOLS_PER_HALF].copy_from_slice(&half_indices(&first));
    out[SYMBOLS_PER_HALF..].copy_from_slice(&half_indices(&second));
    EmojiSequence(out)
}
