/**
 * Verification codes (docs/e2ee.md §4): per-pair safety numbers (Signal-style numeric
 * fingerprints of two identity keys) and the per-call security code (hash of the sorted roster).
 *
 * @module verification
 */
import { asBytesOfLength, compareBytes, concat, lp, u16, utf8 } from './bytes.mjs';
import { ErrorCode, fail } from './errors.mjs';
import { checkDeviceId, ED25519_PUBLIC_KEY_LENGTH } from './identity.mjs';
import { guard } from './webcrypto.mjs';

/** SHA-512 iterations after the first hash. */
export const SAFETY_NUMBER_ITERATIONS = 5200;
const SECURITY_CODE_LABEL = utf8('e2ee-sfu/security-code/v1');

async function digest(hash, data) {
  return new Uint8Array(await guard(ErrorCode.CRYPTO_UNAVAILABLE, `${hash} failed`, (s) => s.digest(hash, data)));
}

/** `count` groups of 5 digits: each 5-byte big-endian chunk of `bytes` mod 100000. */
function digits(bytes, count) {
  let out = '';
  for (let i = 0; i < count; i++) {
    let v = 0;
    for (let j = 0; j < 5; j++) v = v * 256 + bytes[5 * i + j];
    out += String(v % 100000).padStart(5, '0');
  }
  return out;
}

/**
 * One device's 30-digit half: `h = SHA-512(u16(0) || ik || device_id)`, then 5,200 times
 * `h = SHA-512(h || ik)`; the first 30 bytes as six 5-digit groups.
 */
export async function fingerprintHalf({ device, identityKey }) {
  checkDeviceId(device);
  const ik = asBytesOfLength(identityKey, ED25519_PUBLIC_KEY_LENGTH, 'identity key', ErrorCode.BAD_KEY);
  let h = await digest('SHA-512', concat(u16(0), ik, utf8(device)));
  const buf = new Uint8Array(h.length + ik.length);
  buf.set(ik, h.length);
  for (let i = 0; i < SAFETY_NUMBER_ITERATIONS; i++) {
    buf.set(h, 0);
    h = await digest('SHA-512', buf);
  }
  return digits(h, 6);
}

/**
 * The 60-digit safety number of devices `a` and `b` (`{device, identityKey}` each): both halves,
 * the smaller string first, so both sides compute the same number.
 */
export async function safetyNumber(a, b) {
  const [x, y] = await Promise.all([fingerprintHalf(a), fingerprintHalf(b)]);
  return x < y ? x + y : y + x;
}

/** Splits a digit string into space-separated groups of 5 (how codes are shown). */
export function formatDigitGroups(code) {
  return code.match(/.{1,5}/g)?.join(' ') ?? '';
}

/**
 * The call security code: 25 digits from SHA-256 over the room, call and the bytewise-sorted
 * roster entries `lp(device) || identity_key || lp(role) || u16(slot)` (docs/e2ee.md §4).
 * `roster` is an array of `{device, identityKey, role, slot}`.
 */
export async function securityCode({ room, call, roster }) {
  if (!Array.isArray(roster)) fail(ErrorCode.INVALID_ARGUMENT, 'roster must be an array');
  if (roster.length > 0xffff) fail(ErrorCode.FIELD_TOO_LONG, 'roster longer than 65,535 entries');
  const entries = roster.map(({ device, identityKey, role, slot }) => {
    checkDeviceId(device);
    if (typeof role !== 'string') fail(ErrorCode.INVALID_ARGUMENT, 'role must be a string');
    if (!Number.isInteger(slot) || slot < 0 || slot > 0xffff) fail(ErrorCode.INVALID_ARGUMENT, 'slot must be a u16');
    const ik = asBytesOfLength(identityKey, ED25519_PUBLIC_KEY_LENGTH, 'identity key', ErrorCode.BAD_KEY);
    return concat(lp(device), ik, lp(role), u16(slot));
  });
  entries.sort(compareBytes);
  const h = await digest('SHA-256', concat(SECURITY_CODE_LABEL, lp(room), lp(call), u16(entries.length), ...entries));
  return digits(h, 5);
}
