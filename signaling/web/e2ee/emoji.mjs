/**
 * The emoji sequence of two devices (docs/e2ee.md §4.1): the safety number's short form, compared
 * by eye or read aloud as words; the same on both sides.
 *
 * Each device's 30-digit safety-number half gives 8 symbols of its own: `HKDF-SHA256(salt = "",
 * ikm = ASCII(half), info = "e2ee-sfu/emoji/v1", L = 6)` read as eight 6-bit big-endian indices
 * into {@link EMOJI_TABLE}; the sequence is both halves' symbols in the safety number's order
 * (smaller half first), 16 in all. The Rust twin is `e2ee-frames/src/emoji_sequence.rs`; both
 * check `e2ee-frames/tests/data/emoji-v1.json`.
 *
 * @module emoji
 */
import { utf8 } from './bytes.mjs';
import { hkdf } from './hkdf.mjs';
import { fingerprintHalf } from './verification.mjs';

/** Symbols per device half. */
export const SYMBOLS_PER_HALF = 8;
const HALF_BYTES = (SYMBOLS_PER_HALF * 6) / 8;
const EMOJI_LABEL = utf8('e2ee-sfu/emoji/v1');

/**
 * The 64 symbols, index = 6-bit value: the Matrix specification's SAS emoji table
 * (`data-definitions/sas-emoji.json` of matrix-org/matrix-spec, Apache-2.0), emoji and English
 * word.
 * @type {ReadonlyArray<Readonly<{emoji: string, word: string}>>}
 */
export const EMOJI_TABLE = Object.freeze(
  [
    ['🐶', 'Dog'], ['🐱', 'Cat'], ['🦁', 'Lion'], ['🐎', 'Horse'],
    ['🦄', 'Unicorn'], ['🐷', 'Pig'], ['🐘', 'Elephant'], ['🐰', 'Rabbit'],
    ['🐼', 'Panda'], ['🐓', 'Rooster'], ['🐧', 'Penguin'], ['🐢', 'Turtle'],
    ['🐟', 'Fish'], ['🐙', 'Octopus'], ['🦋', 'Butterfly'], ['🌷', 'Flower'],
    ['🌳', 'Tree'], ['🌵', 'Cactus'], ['🍄', 'Mushroom'], ['🌏', 'Globe'],
    ['🌙', 'Moon'], ['☁\u{fe0f}', 'Cloud'], ['🔥', 'Fire'], ['🍌', 'Banana'],
    ['🍎', 'Apple'], ['🍓', 'Strawberry'], ['🌽', 'Corn'], ['🍕', 'Pizza'],
    ['🎂', 'Cake'], ['❤\u{fe0f}', 'Heart'], ['😀', 'Smiley'], ['🤖', 'Robot'],
    ['🎩', 'Hat'], ['👓', 'Glasses'], ['🔧', 'Spanner'], ['🎅', 'Santa'],
    ['👍', 'Thumbs Up'], ['☂\u{fe0f}', 'Umbrella'], ['⌛', 'Hourglass'], ['⏰', 'Clock'],
    ['🎁', 'Gift'], ['💡', 'Light Bulb'], ['📕', 'Book'], ['✏\u{fe0f}', 'Pencil'],
    ['📎', 'Paperclip'], ['✂\u{fe0f}', 'Scissors'], ['🔒', 'Lock'], ['🔑', 'Key'],
    ['🔨', 'Hammer'], ['☎\u{fe0f}', 'Telephone'], ['🏁', 'Flag'], ['🚂', 'Train'],
    ['🚲', 'Bicycle'], ['✈\u{fe0f}', 'Aeroplane'], ['🚀', 'Rocket'], ['🏆', 'Trophy'],
    ['⚽', 'Ball'], ['🎸', 'Guitar'], ['🎺', 'Trumpet'], ['🔔', 'Bell'],
    ['⚓', 'Anchor'], ['🎧', 'Headphones'], ['📁', 'Folder'], ['📌', 'Pin'],
  ].map(([emoji, word]) => Object.freeze({ emoji, word })),
);

/** The 8 table indices of one 30-digit safety-number half. */
export async function halfIndices(halfDigits) {
  const okm = await hkdf('SHA-256', new Uint8Array(0), utf8(halfDigits), EMOJI_LABEL, HALF_BYTES);
  let bits = 0n;
  for (const b of okm) bits = (bits << 8n) | BigInt(b);
  return Array.from({ length: SYMBOLS_PER_HALF }, (_, i) => Number((bits >> BigInt(6 * (SYMBOLS_PER_HALF - 1 - i))) & 0x3fn));
}

/** A sequence from its 16 indices: `{indices, symbols, emoji, words}` (emoji and words joined by spaces). */
function sequenceOf(indices) {
  const symbols = indices.map((i) => EMOJI_TABLE[i]);
  return { indices, symbols, emoji: symbols.map((s) => s.emoji).join(' '), words: symbols.map((s) => s.word).join(' ') };
}

/**
 * The safety number and the emoji sequence of devices `a` and `b` (`{device, identityKey}`
 * each), from one computation of the two halves (2 × 5,201 SHA-512).
 * @returns {Promise<{safetyNumber: string, emoji: {indices: number[], symbols: {emoji: string, word: string}[], emoji: string, words: string}}>}
 */
export async function pairVerification(a, b) {
  const [x, y] = await Promise.all([fingerprintHalf(a), fingerprintHalf(b)]);
  const [first, second] = x < y ? [x, y] : [y, x];
  const indices = [...(await halfIndices(first)), ...(await halfIndices(second))];
  return { safetyNumber: first + second, emoji: sequenceOf(indices) };
}

/** The emoji sequence of devices `a` and `b`: the same whichever side computes it. */
export async function emojiSequence(a, b) {
  return (await pairVerification(a, b)).emoji;
}
