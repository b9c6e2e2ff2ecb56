/**
 * The project's KID layout (docs/e2ee.md §1.1): a u64 holding
 * `generation (bits 24..39) | slot (12..23) | stream (8..11) | step (0..7)`; bits 40..63 zero.
 * Every KID fits in 40 bits, so the encoded KID is a plain number.
 *
 * @module kid
 */
import { asInt } from './bytes.mjs';
import { ErrorCode, fail } from './errors.mjs';

/** Stream numbers of the KID's `stream` field (4..15 are reserved). */
export const Stream = Object.freeze({ AUDIO: 0, CAMERA: 1, SCREEN_VIDEO: 2, SCREEN_AUDIO: 3 });

/** Highest ratchet step; past it the sender starts a new generation. */
export const MAX_STEP = 255;
/** Highest slot. */
export const MAX_SLOT = 4095;
/** Highest generation. */
export const MAX_GENERATION = 65535;
/**
 * Highest stream number in use. The field has 4 bits; 4..15 are reserved, and a KID carrying one
 * is refused (`bad_kid`) like the Rust crate does, until a stream is defined for it.
 */
export const MAX_STREAM = Stream.SCREEN_AUDIO;

/**
 * @typedef {object} KidFields
 * @property {number} slot 0..4095
 * @property {number} stream 0..3 (see {@link Stream})
 * @property {number} generation 0..65535
 * @property {number} step 0..255
 */

/** Packs the fields into a KID (a number below 2^40). Out-of-range fields: `bad_kid`. */
export function encodeKid({ slot, stream, generation, step }) {
  asInt(slot, 0, MAX_SLOT, 'slot', ErrorCode.BAD_KID);
  asInt(stream, 0, MAX_STREAM, 'stream', ErrorCode.BAD_KID);
  asInt(generation, 0, MAX_GENERATION, 'generation', ErrorCode.BAD_KID);
  asInt(step, 0, MAX_STEP, 'step', ErrorCode.BAD_KID);
  return generation * 2 ** 24 + slot * 2 ** 12 + stream * 2 ** 8 + step;
}

/**
 * Splits a KID (bigint or number) into its fields. Any of bits 40..63 set, a reserved stream
 * number, a negative or non-integer value: `bad_kid`.
 * @returns {KidFields}
 */
export function decodeKid(kid) {
  let n;
  if (typeof kid === 'bigint') {
    if (kid < 0n || kid >= 1n << 40n) fail(ErrorCode.BAD_KID, 'KID has bits above 39 set');
    n = Number(kid);
  } else if (typeof kid === 'number' && Number.isSafeInteger(kid) && kid >= 0) {
    if (kid >= 2 ** 40) fail(ErrorCode.BAD_KID, 'KID has bits above 39 set');
    n = kid;
  } else {
    fail(ErrorCode.BAD_KID, 'KID must be a non-negative integer');
  }
  const low = n % 2 ** 24;
  const stream = (low >>> 8) & 0xf;
  if (stream > MAX_STREAM) fail(ErrorCode.BAD_KID, `KID uses reserved stream number ${stream}`);
  return {
    slot: low >>> 12,
    stream,
    generation: Math.floor(n / 2 ** 24),
    step: low & 0xff,
  };
}

/** RFC 9605 §5.1 key id of a KID: `kid >> 8` (the KID without its ratchet step). */
export function keyIdOf(kid) {
  const { step } = decodeKid(kid);
  return (Number(kid) - step) / 256;
}
