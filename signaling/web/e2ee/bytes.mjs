/**
 * Byte helpers shared by every module: argument checks, big-endian integers, `lp()` fields,
 * UTF-8, lowercase hex and base64url without padding (docs/e2ee.md "Notation").
 *
 * @module bytes
 */
import { ErrorCode, fail } from './errors.mjs';

/** Largest u64, the top of the SFrame KID and CTR ranges. */
export const U64_MAX = (1n << 64n) - 1n;

const textEncoder = new TextEncoder();

/**
 * Returns `value` as a Uint8Array, refusing anything else with `invalid_argument`.
 * ArrayBuffers and other typed-array views are accepted (viewed, not copied).
 */
export function asBytes(value, what) {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  return fail(ErrorCode.INVALID_ARGUMENT, `${what} must be a Uint8Array`);
}

/** Like {@link asBytes} but also requires an exact length. */
export function asBytesOfLength(value, length, what, code = ErrorCode.INVALID_ARGUMENT) {
  const bytes = asBytes(value, what);
  if (bytes.length !== length) {
    fail(code, `${what} must be ${length} bytes, got ${bytes.length}`);
  }
  return bytes;
}

/** Returns `value` (bigint or non-negative safe integer) as a bigint in 0..=max. */
export function asU64(value, what, max = U64_MAX) {
  let big;
  if (typeof value === 'bigint') big = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) big = BigInt(value);
  else fail(ErrorCode.INVALID_ARGUMENT, `${what} must be an integer (number or bigint)`);
  if (big < 0n || big > max) fail(ErrorCode.INVALID_ARGUMENT, `${what} out of range 0..=${max}`);
  return big;
}

/** Returns `value` as a number when it is an integer in min..=max, else throws `code`. */
export function asInt(value, min, max, what, code = ErrorCode.INVALID_ARGUMENT) {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(code, `${what} must be an integer in ${min}..=${max}`);
  }
  return value;
}

/** Concatenates byte arrays into a new Uint8Array. */
export function concat(...parts) {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** `u8(n)` */
export function u8(n) {
  return Uint8Array.of(n & 0xff);
}

/** `u16(n)`, big-endian. */
export function u16(n) {
  return Uint8Array.of((n >>> 8) & 0xff, n & 0xff);
}

/** `u64(n)`, big-endian, from a bigint. */
export function u64(n) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, n);
  return out;
}

/** Encodes `n` (bigint, 0 <= n < 256^length) as `length` big-endian bytes. */
export function bigEndian(n, length) {
  const out = new Uint8Array(length);
  let v = n;
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** UTF-8 bytes of a string. */
export function utf8(text) {
  if (typeof text !== 'string') fail(ErrorCode.INVALID_ARGUMENT, 'expected a string');
  return textEncoder.encode(text);
}

/** `lp(x)` = `u16(len(x)) || x`; strings are UTF-8. Longer than 65,535 bytes: `field_too_long`. */
export function lp(value) {
  const bytes = typeof value === 'string' ? utf8(value) : asBytes(value, 'lp field');
  if (bytes.length > 0xffff) fail(ErrorCode.FIELD_TOO_LONG, `field of ${bytes.length} bytes`);
  return concat(u16(bytes.length), bytes);
}

/** Equality of two byte arrays without an early exit on the first difference. */
export function bytesEqual(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** Bytewise (lexicographic) order: negative, zero or positive like a sort comparator. */
export function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Lowercase hex of bytes. */
export function toHex(bytes) {
  let out = '';
  for (const b of asBytes(bytes, 'bytes')) out += HEX[b];
  return out;
}

/** Bytes of a hex string (either case); anything else: `bad_hex`. */
export function fromHex(text) {
  if (typeof text !== 'string' || text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    fail(ErrorCode.BAD_HEX, 'not an even-length hex string');
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64URL_VALUE = new Int16Array(128).fill(-1);
for (let i = 0; i < B64URL.length; i++) B64URL_VALUE[B64URL.charCodeAt(i)] = i;

/** base64url (RFC 4648 §5) without padding. */
export function toBase64Url(bytes) {
  const b = asBytes(bytes, 'bytes');
  let out = '';
  let i = 0;
  for (; i + 3 <= b.length; i += 3) {
    const n = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    out += B64URL[n >> 18] + B64URL[(n >> 12) & 63] + B64URL[(n >> 6) & 63] + B64URL[n & 63];
  }
  if (b.length - i === 1) {
    const n = b[i] << 16;
    out += B64URL[n >> 18] + B64URL[(n >> 12) & 63];
  } else if (b.length - i === 2) {
    const n = (b[i] << 16) | (b[i + 1] << 8);
    out += B64URL[n >> 18] + B64URL[(n >> 12) & 63] + B64URL[(n >> 6) & 63];
  }
  return out;
}

/**
 * Decodes canonical base64url without padding. Padding, other alphabets, a dangling character
 * and non-zero trailing bits are all refused with `bad_base64`, so every value has one encoding.
 */
export function fromBase64Url(text) {
  if (typeof text !== 'string' || text.length % 4 === 1) {
    fail(ErrorCode.BAD_BASE64, 'not base64url without padding');
  }
  const values = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? B64URL_VALUE[c] : -1;
    if (v < 0) fail(ErrorCode.BAD_BASE64, 'character outside the base64url alphabet');
    values[i] = v;
  }
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let o = 0;
  let i = 0;
  for (; i + 4 <= values.length; i += 4) {
    const n = (values[i] << 18) | (values[i + 1] << 12) | (values[i + 2] << 6) | values[i + 3];
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 0xff;
    out[o++] = n & 0xff;
  }
  const rest = values.length - i;
  if (rest === 2) {
    if (values[i + 1] & 0x0f) fail(ErrorCode.BAD_BASE64, 'non-zero trailing bits');
    out[o++] = (values[i] << 2) | (values[i + 1] >> 4);
  } else if (rest === 3) {
    if (values[i + 2] & 0x03) fail(ErrorCode.BAD_BASE64, 'non-zero trailing bits');
    const n = (values[i] << 10) | (values[i + 1] << 4) | (values[i + 2] >> 2);
    out[o++] = n >> 8;
    out[o++] = n & 0xff;
  }
  return out;
}
