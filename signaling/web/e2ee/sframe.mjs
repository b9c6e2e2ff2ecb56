/**
 * SFrame (RFC 9605) encryption and decryption with one key: key and salt derivation (§4.4.2),
 * nonce (§4.4.3), AAD = `header || metadata` (§4.4.3), and the ratchet (§5.1, docs/e2ee.md §1).
 *
 * An {@link SframeKey} holds the imported CryptoKeys and salt for one KID; derive it once and
 * reuse it for every frame of that KID.
 *
 * @module sframe
 */
import { asBytes, asU64, concat, u16, u64, utf8, U64_MAX } from './bytes.mjs';
import { ErrorCode, fail } from './errors.mjs';
import { hkdf } from './hkdf.mjs';
import { aeadOpen, aeadSeal, importAeadKey } from './sframe-aead.mjs';
import { decodeHeader, encodeHeader } from './sframe-header.mjs';
import { suiteParams } from './suites.mjs';

const KEY_LABEL = utf8('SFrame 1.0 Secret key ');
const SALT_LABEL = utf8('SFrame 1.0 Secret salt ');
const RATCHET_LABEL = utf8('SFrame 1.0 Ratchet');
const EMPTY = new Uint8Array(0);

function baseKeyBytes(baseKey) {
  const bytes = asBytes(baseKey, 'base key');
  if (bytes.length === 0) fail(ErrorCode.BAD_KEY, 'base key is empty');
  return bytes;
}

/**
 * The raw SFrame key and salt of (`suite`, `baseKey`, `kid`) (RFC 9605 §4.4.2):
 * `HKDF-Expand(HKDF-Extract("", base_key), "SFrame 1.0 Secret key " || u64(kid) || u16(suite), Nk)`
 * and the same with "salt" and Nn.
 * @returns {Promise<{key: Uint8Array, salt: Uint8Array}>}
 */
export async function deriveKeyMaterial(suiteId, baseKey, kid) {
  const suite = suiteParams(suiteId);
  const ikm = baseKeyBytes(baseKey);
  const context = concat(u64(asU64(kid, 'kid')), u16(suite.id));
  const [key, salt] = await Promise.all([
    hkdf(suite.hash, EMPTY, ikm, concat(KEY_LABEL, context), suite.nk),
    hkdf(suite.hash, EMPTY, ikm, concat(SALT_LABEL, context), suite.nn),
  ]);
  return { key, salt };
}

/**
 * One ratchet step (RFC 9605 §5.1): `HKDF-Expand(HKDF-Extract("", base_key), "SFrame 1.0 Ratchet",
 * Nh)` with the suite's hash; the result (Nh bytes) is the next base key.
 */
export async function ratchetBaseKey(suiteId, baseKey) {
  const suite = suiteParams(suiteId);
  return hkdf(suite.hash, EMPTY, baseKeyBytes(baseKey), RATCHET_LABEL, suite.nh);
}

/** Applies {@link ratchetBaseKey} `steps` times. */
export async function ratchetBaseKeyBy(suiteId, baseKey, steps) {
  let key = baseKeyBytes(baseKey);
  for (let i = 0; i < steps; i++) key = await ratchetBaseKey(suiteId, key);
  return key;
}

/**
 * @typedef {object} SframeOpened
 * @property {Uint8Array} plaintext
 * @property {bigint} kid
 * @property {bigint} ctr
 * @property {number} headerLength
 */

/** The SFrame key, salt and imported CryptoKeys of one KID. Immutable; safe to share. */
export class SframeKey {
  /** Use {@link SframeKey.derive} (or {@link SframeKey.fromKeyMaterial} for raw material). */
  constructor(suite, kid, salt, aeadKey) {
    /** Suite parameters. */
    this.suite = suite;
    /** @type {bigint} the KID this key belongs to */
    this.kid = kid;
    this._salt = salt;
    this._aead = aeadKey;
    Object.freeze(this);
  }

  /** Derives and imports the key of (`suiteId`, `baseKey`, `kid`). */
  static async derive(suiteId, baseKey, kid) {
    const { key, salt } = await deriveKeyMaterial(suiteId, baseKey, kid);
    return SframeKey.fromKeyMaterial(suiteId, kid, key, salt);
  }

  /** Imports an already derived SFrame key and salt. */
  static async fromKeyMaterial(suiteId, kid, key, salt) {
    const suite = suiteParams(suiteId);
    const saltBytes = asBytes(salt, 'salt');
    if (saltBytes.length !== suite.nn) fail(ErrorCode.BAD_KEY, `salt must be ${suite.nn} bytes`);
    const aead = await importAeadKey(suiteId, key);
    return new SframeKey(suite, asU64(kid, 'kid'), Uint8Array.from(saltBytes), aead);
  }

  /** The nonce of counter `ctr`: `salt XOR u96(ctr)` (RFC 9605 §4.4.3). */
  nonce(ctr) {
    const c = asU64(ctr, 'ctr');
    const out = Uint8Array.from(this._salt);
    const n = out.length;
    const view = new DataView(out.buffer);
    view.setBigUint64(n - 8, view.getBigUint64(n - 8) ^ c);
    return out;
  }

  /**
   * Encrypts one frame with counter `ctr`: returns `header || ciphertext || tag`, the AAD being
   * `header || metadata`. The caller guarantees `ctr` is never reused with this key
   * ({@link import('./media.mjs').SenderContext} does).
   */
  async encrypt(ctr, metadata, plaintext) {
    const header = encodeHeader(this.kid, ctr);
    const aad = concat(header, asBytes(metadata ?? EMPTY, 'metadata'));
    const sealed = await aeadSeal(this._aead, this.nonce(ctr), aad, asBytes(plaintext, 'plaintext'));
    return concat(header, sealed);
  }

  /**
   * Decrypts `sframe` (`header || ciphertext || tag`) with `metadata`. A header naming another
   * KID: `unknown_kid`. Failure codes: `truncated_header`, `truncated_ciphertext`, `auth_failed`.
   * @returns {Promise<SframeOpened>}
   */
  async decrypt(sframe, metadata) {
    const data = asBytes(sframe, 'SFrame');
    const header = decodeHeader(data);
    if (header.kid !== this.kid) fail(ErrorCode.UNKNOWN_KID, 'SFrame KID does not match this key');
    const plaintext = await this.openWithHeader(header, data, asBytes(metadata ?? EMPTY, 'metadata'));
    return { plaintext, kid: header.kid, ctr: header.ctr, headerLength: header.length };
  }

  /** Decrypts `data` whose header the caller already decoded (and matched to this key). */
  openWithHeader(header, data, metadata) {
    const aad = concat(data.subarray(0, header.length), metadata);
    return aeadOpen(this._aead, this.nonce(header.ctr), aad, data.subarray(header.length));
  }
}

/** Convenience: the highest counter a sender may use (2^64 - 1). */
export const MAX_COUNTER = U64_MAX;
