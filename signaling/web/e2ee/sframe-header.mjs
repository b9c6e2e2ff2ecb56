/**
 * The SFrame header (RFC 9605 §4.3): one config byte `X KKK Y CCC`, then the KID and CTR in
 * big-endian, each either inline (values 0..7) or as 1..8 extra bytes. KID and CTR are up to
 * 64 bits, so both are bigints here.
 *
 * @module sframe-header
 */
import { asBytes, asU64, bigEndian } from './bytes.mjs';
import { ErrorCode, fail } from './errors.mjs';

/** Longest header: config byte + 8 KID bytes + 8 CTR bytes. */
export const MAX_HEADER_LENGTH = 17;

function minimalLength(v) {
  let n = 1;
  while (v >= 1n << BigInt(8 * n)) n++;
  return n;
}

/**
 * Encodes the header for `kid` and `ctr` (bigint or safe-integer number, 0..2^64-1) with the
 * shortest encoding, as RFC 9605 §4.3 requires.
 */
export function encodeHeader(kid, ctr) {
  const k = asU64(kid, 'kid');
  const c = asU64(ctr, 'ctr');
  const kidLength = k < 8n ? 0 : minimalLength(k);
  const ctrLength = c < 8n ? 0 : minimalLength(c);
  const out = new Uint8Array(1 + kidLength + ctrLength);
  const kBits = kidLength === 0 ? Number(k) : 0x8 | (kidLength - 1);
  const cBits = ctrLength === 0 ? Number(c) : 0x8 | (ctrLength - 1);
  out[0] = (kBits << 4) | cBits;
  if (kidLength) out.set(bigEndian(k, kidLength), 1);
  if (ctrLength) out.set(bigEndian(c, ctrLength), 1 + kidLength);
  return out;
}

function readBigEndian(data, offset, length) {
  let v = 0n;
  for (let i = 0; i < length; i++) v = (v << 8n) | BigInt(data[offset + i]);
  return v;
}

/**
 * @typedef {object} SframeHeader
 * @property {bigint} kid key id
 * @property {bigint} ctr frame counter
 * @property {number} length header length in bytes
 */

/**
 * Decodes the header at the start of `data` (trailing bytes are the ciphertext and are ignored).
 * Missing bytes: `truncated_header`. A non-minimal encoding is accepted: the header is
 * authenticated as AAD, so it cannot be changed in transit.
 * @returns {SframeHeader}
 */
export function decodeHeader(data) {
  const bytes = asBytes(data, 'SFrame');
  if (bytes.length === 0) fail(ErrorCode.TRUNCATED_HEADER, 'empty SFrame');
  const config = bytes[0];
  const kidExtended = (config & 0x80) !== 0;
  const ctrExtended = (config & 0x08) !== 0;
  const kidLength = kidExtended ? ((config >> 4) & 0x7) + 1 : 0;
  const ctrLength = ctrExtended ? (config & 0x7) + 1 : 0;
  const length = 1 + kidLength + ctrLength;
  if (bytes.length < length) {
    fail(ErrorCode.TRUNCATED_HEADER, `SFrame header needs ${length} bytes, got ${bytes.length}`);
  }
  const kid = kidExtended ? readBigEndian(bytes, 1, kidLength) : BigInt((config >> 4) & 0x7);
  const ctr = ctrExtended ? readBigEndian(bytes, 1 + kidLength, ctrLength) : BigInt(config & 0x7);
  return { kid, ctr, length };
}
