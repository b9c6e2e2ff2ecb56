/**
 * HPKE (RFC 9180) base mode with DHKEM(X25519, HKDF-SHA256) and HKDF-SHA256, generic over the
 * AES-GCM AEADs (AES-128-GCM for the RFC's A.1.1 vector, AES-256-GCM for key envelopes,
 * docs/e2ee.md §3). Built on WebCrypto: X25519 for the DH, HMAC for LabeledExtract/LabeledExpand
 * (WebCrypto's HKDF cannot split extract from expand), AES-GCM for the AEAD.
 *
 * X25519 private keys are CryptoKeys (non-extractable unless asked), so a device's HPKE key can
 * live in IndexedDB without its bytes ever being readable by script.
 *
 * @module hpke
 */
import { asBytes, asBytesOfLength, concat, u16, utf8 } from './bytes.mjs';
import { ErrorCode, fail } from './errors.mjs';
import { hkdfExpand, hkdfExtract } from './hkdf.mjs';
import { guard } from './webcrypto.mjs';

/** KEM id of DHKEM(X25519, HKDF-SHA256). */
export const KEM_X25519_HKDF_SHA256 = 0x0020;
/** KDF id of HKDF-SHA256. */
export const KDF_HKDF_SHA256 = 0x0001;
/** AEAD ids supported here. */
export const HpkeAead = Object.freeze({ AES_128_GCM: 0x0001, AES_256_GCM: 0x0002 });

const AEAD_KEY_LENGTH = new Map([
  [HpkeAead.AES_128_GCM, 16],
  [HpkeAead.AES_256_GCM, 32],
]);
const NN = 12;
const NT = 16;
const NSECRET = 32;
const HASH = 'SHA-256';
/** Length of an X25519 public key, private key and `enc`. */
export const X25519_KEY_LENGTH = 32;

const HPKE_V1 = utf8('HPKE-v1');
const KEM_SUITE_ID = concat(utf8('KEM'), u16(KEM_X25519_HKDF_SHA256));
const EMPTY = new Uint8Array(0);
const MODE_BASE = 0x00;
// PKCS#8 PrivateKeyInfo for an X25519 key (RFC 8410) up to the 32 key bytes.
const PKCS8_X25519_PREFIX = Uint8Array.of(
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
);
const BASE_POINT = Uint8Array.of(9, ...new Uint8Array(31));

function hpkeSuiteId(aead) {
  return concat(utf8('HPKE'), u16(KEM_X25519_HKDF_SHA256), u16(KDF_HKDF_SHA256), u16(aead));
}

function aeadKeyLength(aead) {
  const nk = AEAD_KEY_LENGTH.get(aead);
  if (!nk) fail(ErrorCode.UNSUPPORTED_SUITE, `HPKE AEAD ${String(aead)} is not supported`);
  return nk;
}

/** LabeledExtract(salt, label, ikm) of RFC 9180 §4 for `suiteId`. */
export function labeledExtract(suiteId, salt, label, ikm) {
  return hkdfExtract(HASH, salt, concat(HPKE_V1, suiteId, utf8(label), ikm));
}

/** LabeledExpand(prk, label, info, L) of RFC 9180 §4 for `suiteId`. */
export function labeledExpand(suiteId, prk, label, info, length) {
  return hkdfExpand(HASH, prk, concat(u16(length), HPKE_V1, suiteId, utf8(label), info), length);
}

/** Imports a raw 32-byte X25519 private key (wrapped as PKCS#8, which WebCrypto requires). */
export function importX25519PrivateKey(raw, { extractable = false } = {}) {
  const bytes = asBytesOfLength(raw, X25519_KEY_LENGTH, 'X25519 private key', ErrorCode.BAD_KEY);
  return guard(ErrorCode.BAD_KEY, 'X25519 private key import failed', (s) =>
    s.importKey('pkcs8', concat(PKCS8_X25519_PREFIX, bytes), { name: 'X25519' }, extractable, ['deriveBits']),
  );
}

/** The raw 32 bytes of an extractable X25519 private CryptoKey. */
export async function exportX25519PrivateKey(privateKey) {
  const pkcs8 = new Uint8Array(
    await guard(ErrorCode.BAD_KEY, 'X25519 private key export failed (not extractable?)', (s) =>
      s.exportKey('pkcs8', privateKey),
    ),
  );
  return pkcs8.slice(pkcs8.length - X25519_KEY_LENGTH);
}

function importX25519PublicKey(raw) {
  const bytes = asBytesOfLength(raw, X25519_KEY_LENGTH, 'X25519 public key', ErrorCode.BAD_KEY);
  return guard(ErrorCode.BAD_KEY, 'X25519 public key import failed', (s) =>
    s.importKey('raw', bytes, { name: 'X25519' }, true, []),
  );
}

/** DH(sk, pk): the X25519 shared secret. A low-order `pk` (all-zero result): `bad_key`. */
async function dh(privateKey, publicKeyRaw) {
  const pk = await importX25519PublicKey(publicKeyRaw);
  const bits = await guard(ErrorCode.BAD_KEY, 'X25519 key agreement failed', (s) =>
    s.deriveBits({ name: 'X25519', public: pk }, privateKey, 256),
  );
  return new Uint8Array(bits);
}

/**
 * The public key of an X25519 private CryptoKey, computed as DH(sk, base point): works for
 * non-extractable keys and in every WebCrypto implementation.
 */
export function x25519PublicKeyOf(privateKey) {
  return dh(privateKey, BASE_POINT);
}

/**
 * @typedef {object} X25519KeyPair
 * @property {CryptoKey} privateKey
 * @property {Uint8Array} publicKey raw 32 bytes
 */

/** A fresh X25519 key pair (the private key non-extractable unless `extractable`). */
export async function generateX25519KeyPair({ extractable = false } = {}) {
  const pair = await guard(ErrorCode.CRYPTO_UNAVAILABLE, 'X25519 key generation failed', (s) =>
    s.generateKey({ name: 'X25519' }, extractable, ['deriveBits']),
  );
  const publicKey = new Uint8Array(
    await guard(ErrorCode.CRYPTO_UNAVAILABLE, 'X25519 public key export failed', (s) =>
      s.exportKey('raw', pair.publicKey),
    ),
  );
  return { privateKey: pair.privateKey, publicKey };
}

/**
 * DeriveKeyPair(ikm) of RFC 9180 §7.1.3 for X25519 (deterministic; for test vectors).
 * @returns {Promise<X25519KeyPair & {privateKeyBytes: Uint8Array}>}
 */
export async function deriveX25519KeyPair(ikm, { extractable = false } = {}) {
  const dkpPrk = await labeledExtract(KEM_SUITE_ID, EMPTY, 'dkp_prk', asBytes(ikm, 'ikm'));
  const sk = await labeledExpand(KEM_SUITE_ID, dkpPrk, 'sk', EMPTY, X25519_KEY_LENGTH);
  const privateKey = await importX25519PrivateKey(sk, { extractable });
  return { privateKey, publicKey: await x25519PublicKeyOf(privateKey), privateKeyBytes: sk };
}

async function extractAndExpand(dhOut, kemContext) {
  const eaePrk = await labeledExtract(KEM_SUITE_ID, EMPTY, 'eae_prk', dhOut);
  return labeledExpand(KEM_SUITE_ID, eaePrk, 'shared_secret', kemContext, NSECRET);
}

/** A context after SetupBaseS/SetupBaseR: seals or opens with a sequence number. */
export class HpkeContext {
  /** Use {@link setupBaseS} or {@link setupBaseR}. */
  constructor(suiteId, key, baseNonce, exporterSecret) {
    this._suiteId = suiteId;
    this._key = key;
    this._baseNonce = baseNonce;
    this._exporterSecret = exporterSecret;
    this._seq = 0;
  }

  _nonce() {
    const nonce = Uint8Array.from(this._baseNonce);
    const view = new DataView(nonce.buffer);
    // seq < 2^53 always (one message per call); it fills the low 8 bytes of the 12.
    view.setBigUint64(NN - 8, view.getBigUint64(NN - 8) ^ BigInt(this._seq));
    return nonce;
  }

  /** Seal(aad, pt) with the next sequence number. */
  async seal(aad, plaintext) {
    const iv = this._nonce();
    const ct = await guard(ErrorCode.CRYPTO_UNAVAILABLE, 'HPKE seal failed', (s) =>
      s.encrypt({ name: 'AES-GCM', iv, additionalData: asBytes(aad, 'aad'), tagLength: 128 }, this._key, asBytes(plaintext, 'plaintext')),
    );
    this._seq++;
    return new Uint8Array(ct);
  }

  /** Open(aad, ct) with the next sequence number; failure: `auth_failed`. */
  async open(aad, ciphertext) {
    const ct = asBytes(ciphertext, 'ciphertext');
    if (ct.length < NT) fail(ErrorCode.TRUNCATED_CIPHERTEXT, 'HPKE ciphertext shorter than its tag');
    const iv = this._nonce();
    const pt = await guard(ErrorCode.AUTH_FAILED, 'HPKE open failed', (s) =>
      s.decrypt({ name: 'AES-GCM', iv, additionalData: asBytes(aad, 'aad'), tagLength: 128 }, this._key, ct),
    );
    this._seq++;
    return new Uint8Array(pt);
  }

  /** Export(exporter_context, L) of RFC 9180 §5.3. */
  export(exporterContext, length) {
    return labeledExpand(this._suiteId, this._exporterSecret, 'sec', asBytes(exporterContext, 'exporter context'), length);
  }
}

async function keyScheduleBase(aead, sharedSecret, info) {
  const suiteId = hpkeSuiteId(aead);
  const nk = aeadKeyLength(aead);
  const pskIdHash = await labeledExtract(suiteId, EMPTY, 'psk_id_hash', EMPTY);
  const infoHash = await labeledExtract(suiteId, EMPTY, 'info_hash', asBytes(info, 'info'));
  const context = concat(Uint8Array.of(MODE_BASE), pskIdHash, infoHash);
  const secret = await labeledExtract(suiteId, sharedSecret, 'secret', EMPTY);
  const [keyBytes, baseNonce, exporterSecret] = await Promise.all([
    labeledExpand(suiteId, secret, 'key', context, nk),
    labeledExpand(suiteId, secret, 'base_nonce', context, NN),
    labeledExpand(suiteId, secret, 'exp', context, 32),
  ]);
  const key = await guard(ErrorCode.CRYPTO_UNAVAILABLE, 'AES-GCM key import failed', (s) =>
    s.importKey('raw', keyBytes, 'AES-GCM', false, ['encrypt', 'decrypt']),
  );
  return new HpkeContext(suiteId, key, baseNonce, exporterSecret);
}

/**
 * SetupBaseS(pkR, info): encapsulates to `recipientPublicKey` (raw 32 bytes). `ephemeral` (an
 * {@link X25519KeyPair}) is for deterministic tests only; by default a fresh one is generated.
 * @returns {Promise<{enc: Uint8Array, context: HpkeContext}>}
 */
export async function setupBaseS(recipientPublicKey, info, { aead = HpkeAead.AES_256_GCM, ephemeral } = {}) {
  aeadKeyLength(aead);
  const pkR = asBytesOfLength(recipientPublicKey, X25519_KEY_LENGTH, 'recipient public key', ErrorCode.BAD_KEY);
  const eph = ephemeral ?? (await generateX25519KeyPair());
  const dhOut = await dh(eph.privateKey, pkR);
  const enc = Uint8Array.from(eph.publicKey);
  const sharedSecret = await extractAndExpand(dhOut, concat(enc, pkR));
  return { enc, context: await keyScheduleBase(aead, sharedSecret, info) };
}

/**
 * SetupBaseR(enc, skR, info). `recipient` is `{privateKey: CryptoKey, publicKey: raw}` (the
 * public key is needed for the KEM context and cannot be read from a non-extractable key).
 */
export async function setupBaseR(enc, recipient, info, { aead = HpkeAead.AES_256_GCM } = {}) {
  aeadKeyLength(aead);
  const encBytes = asBytesOfLength(enc, X25519_KEY_LENGTH, 'enc', ErrorCode.BAD_KEY);
  const pkR = asBytesOfLength(recipient?.publicKey, X25519_KEY_LENGTH, 'recipient public key', ErrorCode.BAD_KEY);
  const dhOut = await dh(recipient.privateKey, encBytes);
  const sharedSecret = await extractAndExpand(dhOut, concat(encBytes, pkR));
  return keyScheduleBase(aead, sharedSecret, info);
}

/** Single-shot seal (RFC 9180 §6.1). @returns {Promise<{enc: Uint8Array, ct: Uint8Array}>} */
export async function hpkeSeal(recipientPublicKey, info, aad, plaintext, options) {
  const { enc, context } = await setupBaseS(recipientPublicKey, info, options);
  return { enc, ct: await context.seal(aad, plaintext) };
}

/** Single-shot open (RFC 9180 §6.1). Any failure to authenticate: `auth_failed`. */
export async function hpkeOpen(enc, recipient, info, aad, ciphertext, options) {
  const context = await setupBaseR(enc, recipient, info, options);
  return context.open(aad, ciphertext);
}
