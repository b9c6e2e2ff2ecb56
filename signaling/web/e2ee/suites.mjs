/**
 * The five SFrame cipher suites of RFC 9605 §4.5 with their sizes (docs/e2ee.md §1).
 *
 * @module suites
 */
import { ErrorCode, fail } from './errors.mjs';

/** Suite ids (RFC 9605 §8.1 registry). */
export const Suite = Object.freeze({
  AES_128_CTR_HMAC_SHA256_80: 0x0001,
  AES_128_CTR_HMAC_SHA256_64: 0x0002,
  AES_128_CTR_HMAC_SHA256_32: 0x0003,
  AES_128_GCM_SHA256_128: 0x0004,
  AES_256_GCM_SHA512_128: 0x0005,
});

/** The suite a sender uses unless told otherwise (docs/e2ee.md §1). */
export const DEFAULT_SUITE = Suite.AES_256_GCM_SHA512_128;

/**
 * @typedef {object} SuiteParams
 * @property {number} id suite id
 * @property {string} name registry name
 * @property {'ctr-hmac'|'gcm'} kind AEAD construction
 * @property {'SHA-256'|'SHA-512'} hash HKDF hash
 * @property {number} nh hash output length (ratchet output length)
 * @property {number} nk AEAD key length (for CTR suites: AES key + HMAC key)
 * @property {number} nka AES key length within `nk`
 * @property {number} nn nonce length
 * @property {number} nt tag length
 */

function params(id, name, kind, hash, nk, nka, nt) {
  return Object.freeze({ id, name, kind, hash, nh: hash === 'SHA-256' ? 32 : 64, nk, nka, nn: 12, nt });
}

const PARAMS = new Map([
  [1, params(1, 'AES_128_CTR_HMAC_SHA256_80', 'ctr-hmac', 'SHA-256', 48, 16, 10)],
  [2, params(2, 'AES_128_CTR_HMAC_SHA256_64', 'ctr-hmac', 'SHA-256', 48, 16, 8)],
  [3, params(3, 'AES_128_CTR_HMAC_SHA256_32', 'ctr-hmac', 'SHA-256', 48, 16, 4)],
  [4, params(4, 'AES_128_GCM_SHA256_128', 'gcm', 'SHA-256', 16, 16, 16)],
  [5, params(5, 'AES_256_GCM_SHA512_128', 'gcm', 'SHA-512', 32, 32, 16)],
]);

/** All suite ids, ascending. */
export const ALL_SUITES = Object.freeze([...PARAMS.keys()]);

/** Parameters of `id`; an unknown id (or a non-integer) throws `unsupported_suite`. */
export function suiteParams(id) {
  const p = PARAMS.get(id);
  if (!p) fail(ErrorCode.UNSUPPORTED_SUITE, `SFrame cipher suite ${String(id)} is not supported`);
  return p;
}
