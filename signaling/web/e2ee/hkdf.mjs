/**
 * HMAC and HKDF (RFC 5869) on WebCrypto. WebCrypto's own HKDF does extract and expand in one
 * call, which is all SFrame needs ({@link hkdf}); HPKE's labeled functions need the two halves
 * apart, so {@link hkdfExtract} and {@link hkdfExpand} are written on HMAC.
 *
 * @module hkdf
 */
import { concat } from './bytes.mjs';
import { ErrorCode, fail } from './errors.mjs';
import { guard } from './webcrypto.mjs';

/** Output length in bytes of the hashes used here. */
export const HASH_LENGTH = Object.freeze({ 'SHA-256': 32, 'SHA-512': 64 });

/** Imports raw bytes as an HMAC signing key (non-extractable). The key must not be empty. */
export function importHmacKey(hash, key) {
  return guard(ErrorCode.CRYPTO_UNAVAILABLE, `HMAC-${hash} key import failed`, (s) =>
    s.importKey('raw', key, { name: 'HMAC', hash }, false, ['sign']),
  );
}

/** HMAC(key, data) with an imported HMAC CryptoKey. */
export async function hmacWithKey(cryptoKey, data) {
  const mac = await guard(ErrorCode.CRYPTO_UNAVAILABLE, 'HMAC failed', (s) =>
    s.sign('HMAC', cryptoKey, data),
  );
  return new Uint8Array(mac);
}

/** HMAC-`hash`(key, data). */
export async function hmac(hash, key, data) {
  return hmacWithKey(await importHmacKey(hash, key), data);
}

/**
 * HKDF-Extract(salt, ikm). An empty salt means HashLen zero bytes (RFC 5869 §2.2); it is passed
 * as such because WebCrypto refuses empty HMAC keys.
 */
export function hkdfExtract(hash, salt, ikm) {
  const key = salt.length === 0 ? new Uint8Array(HASH_LENGTH[hash]) : salt;
  return hmac(hash, key, ikm);
}

/** HKDF-Expand(prk, info, length), length <= 255 * HashLen. */
export async function hkdfExpand(hash, prk, info, length) {
  const hashLength = HASH_LENGTH[hash];
  if (length > 255 * hashLength) fail(ErrorCode.INVALID_ARGUMENT, 'HKDF-Expand length too large');
  const key = await importHmacKey(hash, prk);
  const out = new Uint8Array(length);
  let previous = new Uint8Array(0);
  for (let i = 1, off = 0; off < length; i++) {
    previous = await hmacWithKey(key, concat(previous, info, Uint8Array.of(i)));
    out.set(previous.subarray(0, Math.min(hashLength, length - off)), off);
    off += hashLength;
  }
  return out;
}

/**
 * HKDF-Expand(HKDF-Extract(salt, ikm), info, length) in one WebCrypto call.
 * `ikm` is a byte array; the result is `length` bytes.
 */
export async function hkdf(hash, salt, ikm, info, length) {
  const bits = await guard(ErrorCode.CRYPTO_UNAVAILABLE, `HKDF-${hash} failed`, async (s) => {
    const key = await s.importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
    return s.deriveBits({ name: 'HKDF', hash, salt, info }, key, length * 8);
  });
  return new Uint8Array(bits);
}
