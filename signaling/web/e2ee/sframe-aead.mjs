/**
 * The SFrame AEADs (RFC 9605 §4.5): AES-GCM directly on WebCrypto, and the AES-CTR + HMAC-SHA256
 * construction of §4.5.1 (tag = truncated HMAC over `len(aad) || len(ct) || Nt || nonce || aad ||
 * ct`, each length a u64; AES-CTR starting at `nonce || 0x00000000`).
 *
 * Keys are imported once into an {@link AeadKey} and reused for every frame.
 *
 * @module sframe-aead
 */
import { asBytes, asBytesOfLength, bytesEqual, concat, u64 } from './bytes.mjs';
import { ErrorCode, fail } from './errors.mjs';
import { importHmacKey, hmacWithKey } from './hkdf.mjs';
import { suiteParams } from './suites.mjs';
import { guard } from './webcrypto.mjs';

/**
 * An SFrame AEAD key imported into WebCrypto (non-extractable).
 * @typedef {object} AeadKey
 * @property {import('./suites.mjs').SuiteParams} suite
 * @property {CryptoKey} enc AES-GCM or AES-CTR key
 * @property {CryptoKey|null} auth HMAC-SHA256 key for the CTR suites
 */

/** Imports `key` (suite.nk bytes; for CTR suites `enc_key || auth_key`) for `suiteId`. */
export async function importAeadKey(suiteId, key) {
  const suite = suiteParams(suiteId);
  const bytes = asBytesOfLength(key, suite.nk, 'SFrame key', ErrorCode.BAD_KEY);
  const encBytes = bytes.subarray(0, suite.nka);
  const name = suite.kind === 'gcm' ? 'AES-GCM' : 'AES-CTR';
  const enc = await guard(ErrorCode.CRYPTO_UNAVAILABLE, `${name} key import failed`, (s) =>
    s.importKey('raw', encBytes, name, false, ['encrypt', 'decrypt']),
  );
  const auth = suite.kind === 'gcm' ? null : await importHmacKey('SHA-256', bytes.subarray(suite.nka));
  return Object.freeze({ suite, enc, auth });
}

async function ctrTag(key, nonce, aad, ct) {
  const { nt } = key.suite;
  const authData = concat(u64(BigInt(aad.length)), u64(BigInt(ct.length)), u64(BigInt(nt)), nonce, aad, ct);
  return (await hmacWithKey(key.auth, authData)).subarray(0, nt);
}

function ctrParams(nonce) {
  const counter = new Uint8Array(16);
  counter.set(nonce);
  return { name: 'AES-CTR', counter, length: 32 };
}

/** AEAD.Encrypt(key, nonce, aad, pt) = `ct || tag`. */
export async function aeadSeal(key, nonce, aad, plaintext) {
  const n = asBytesOfLength(nonce, key.suite.nn, 'nonce');
  const a = asBytes(aad, 'aad');
  const pt = asBytes(plaintext, 'plaintext');
  if (key.suite.kind === 'gcm') {
    const out = await guard(ErrorCode.CRYPTO_UNAVAILABLE, 'AES-GCM encrypt failed', (s) =>
      s.encrypt({ name: 'AES-GCM', iv: n, additionalData: a, tagLength: 128 }, key.enc, pt),
    );
    return new Uint8Array(out);
  }
  const ct = new Uint8Array(
    await guard(ErrorCode.CRYPTO_UNAVAILABLE, 'AES-CTR encrypt failed', (s) =>
      s.encrypt(ctrParams(n), key.enc, pt),
    ),
  );
  return concat(ct, await ctrTag(key, n, a, ct));
}

/**
 * AEAD.Decrypt(key, nonce, aad, ct || tag) = plaintext. Input shorter than the tag:
 * `truncated_ciphertext`; any authentication failure: `auth_failed`.
 */
export async function aeadOpen(key, nonce, aad, ciphertext) {
  const n = asBytesOfLength(nonce, key.suite.nn, 'nonce');
  const a = asBytes(aad, 'aad');
  const data = asBytes(ciphertext, 'ciphertext');
  const { nt } = key.suite;
  if (data.length < nt) {
    fail(ErrorCode.TRUNCATED_CIPHERTEXT, `ciphertext of ${data.length} bytes is shorter than the ${nt}-byte tag`);
  }
  if (key.suite.kind === 'gcm') {
    const out = await guard(ErrorCode.AUTH_FAILED, 'SFrame authentication failed', (s) =>
      s.decrypt({ name: 'AES-GCM', iv: n, additionalData: a, tagLength: 128 }, key.enc, data),
    );
    return new Uint8Array(out);
  }
  const ct = data.subarray(0, data.length - nt);
  const tag = data.subarray(data.length - nt);
  if (!bytesEqual(await ctrTag(key, n, a, ct), tag)) {
    fail(ErrorCode.AUTH_FAILED, 'SFrame authentication failed');
  }
  const pt = await guard(ErrorCode.CRYPTO_UNAVAILABLE, 'AES-CTR decrypt failed', (s) =>
    s.decrypt(ctrParams(n), key.enc, ct),
  );
  return new Uint8Array(pt);
}
