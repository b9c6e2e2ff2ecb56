/**
 * Device identities and device bundles (docs/e2ee.md §2): an Ed25519 identity key (IK) and an
 * X25519 HPKE key (HK) per device, the HK signed by the IK in a JSON bundle that travels in the
 * roster.
 *
 * Private keys are WebCrypto CryptoKeys, non-extractable by default: the web client stores the
 * {@link DeviceIdentity} object in IndexedDB as is (CryptoKeys are structured-cloneable), and
 * script can use but never read the private keys.
 *
 * @module identity
 */
import { asBytes, asBytesOfLength, concat, fromBase64Url, lp, toBase64Url, utf8 } from './bytes.mjs';
import { ErrorCode, fail } from './errors.mjs';
import { generateX25519KeyPair, X25519_KEY_LENGTH } from './hpke.mjs';
import { guard, randomBytes } from './webcrypto.mjs';

/** Length of an Ed25519 public key. */
export const ED25519_PUBLIC_KEY_LENGTH = 32;
/** Length of an Ed25519 signature. */
export const ED25519_SIGNATURE_LENGTH = 64;
/** Wire format version of bundles and envelopes. */
export const WIRE_VERSION = 1;

const DEVICE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const BUNDLE_LABEL = utf8('e2ee-sfu/bundle/v1');

/** Returns `id` if it is a valid device id (1..64 of `[A-Za-z0-9_-]`), else `bad_device_id`. */
export function checkDeviceId(id) {
  if (typeof id !== 'string' || !DEVICE_ID.test(id)) {
    fail(ErrorCode.BAD_DEVICE_ID, 'device id must be 1..64 characters of [A-Za-z0-9_-]');
  }
  return id;
}

/** A random 128-bit device id, base64url (22 characters). */
export function randomDeviceId() {
  return toBase64Url(randomBytes(16));
}

/**
 * @typedef {object} DeviceIdentity
 * @property {string} deviceId
 * @property {{privateKey: CryptoKey, publicKey: Uint8Array}} identity Ed25519 IK
 * @property {{privateKey: CryptoKey, publicKey: Uint8Array}} hpke X25519 HK
 */

/**
 * Generates a device identity. Private keys are non-extractable unless `extractable` is set
 * (only test tools that must print a private key set it).
 * @returns {Promise<DeviceIdentity>}
 */
export async function generateDeviceIdentity({ deviceId = randomDeviceId(), extractable = false } = {}) {
  checkDeviceId(deviceId);
  const ik = await guard(ErrorCode.CRYPTO_UNAVAILABLE, 'Ed25519 key generation failed', (s) =>
    s.generateKey({ name: 'Ed25519' }, extractable, ['sign', 'verify']),
  );
  const ikPublic = new Uint8Array(
    await guard(ErrorCode.CRYPTO_UNAVAILABLE, 'Ed25519 public key export failed', (s) =>
      s.exportKey('raw', ik.publicKey),
    ),
  );
  const hk = await generateX25519KeyPair({ extractable });
  return {
    deviceId,
    identity: { privateKey: ik.privateKey, publicKey: ikPublic },
    hpke: { privateKey: hk.privateKey, publicKey: hk.publicKey },
  };
}

/** Ed25519 signature of `message` by the identity's IK (64 bytes). */
export async function signWithIdentity(identity, message) {
  const sig = await guard(ErrorCode.CRYPTO_UNAVAILABLE, 'Ed25519 signing failed', (s) =>
    s.sign({ name: 'Ed25519' }, identity.identity.privateKey, asBytes(message, 'message')),
  );
  return new Uint8Array(sig);
}

/**
 * Verifies an Ed25519 signature; a failure of any kind (bad signature, key that is not a
 * curve point) throws `bad_signature`.
 */
export async function verifyEd25519(publicKey, message, signature) {
  const pk = asBytesOfLength(publicKey, ED25519_PUBLIC_KEY_LENGTH, 'Ed25519 public key', ErrorCode.BAD_KEY);
  const sig = asBytesOfLength(signature, ED25519_SIGNATURE_LENGTH, 'signature', ErrorCode.BAD_SIGNATURE);
  const ok = await guard(ErrorCode.BAD_SIGNATURE, 'Ed25519 verification failed', async (s) => {
    const key = await s.importKey('raw', pk, { name: 'Ed25519' }, false, ['verify']);
    return s.verify({ name: 'Ed25519' }, key, sig, asBytes(message, 'message'));
  });
  if (!ok) fail(ErrorCode.BAD_SIGNATURE, 'Ed25519 signature does not verify');
}

function bundleMessage(device, hpkeKey) {
  return concat(BUNDLE_LABEL, lp(device), hpkeKey);
}

/**
 * The device bundle JSON object of docs/e2ee.md §2:
 * `{v, device, identity_key, hpke_key, sig}`, sig over `"e2ee-sfu/bundle/v1" || lp(device) || hpke_key`.
 */
export async function createBundle(identity) {
  checkDeviceId(identity?.deviceId);
  const sig = await signWithIdentity(identity, bundleMessage(identity.deviceId, identity.hpke.publicKey));
  return {
    v: WIRE_VERSION,
    device: identity.deviceId,
    identity_key: toBase64Url(identity.identity.publicKey),
    hpke_key: toBase64Url(identity.hpke.publicKey),
    sig: toBase64Url(sig),
  };
}

/** Reads a required field of a wire object, checking its JS type (`malformed` otherwise). */
export function field(obj, name, type) {
  const value = obj[name];
  const ok = type === 'integer' ? Number.isSafeInteger(value) : typeof value === type;
  if (!ok) fail(ErrorCode.MALFORMED, `field "${name}" missing or not a${type === 'integer' ? 'n' : ''} ${type}`);
  return value;
}

/** Decodes a base64url field that must hold exactly `length` bytes (`malformed` otherwise). */
export function b64Field(obj, name, length) {
  const bytes = fromBase64Url(field(obj, name, 'string'));
  if (bytes.length !== length) fail(ErrorCode.MALFORMED, `field "${name}" must hold ${length} bytes`);
  return bytes;
}

/** Checks `obj` is a JSON object of wire version 1. */
export function checkWireObject(obj, what) {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) fail(ErrorCode.MALFORMED, `${what} must be a JSON object`);
  if (obj.v !== WIRE_VERSION) fail(ErrorCode.UNSUPPORTED_VERSION, `${what} version ${String(obj.v)} is not 1`);
}

/**
 * @typedef {object} VerifiedBundle
 * @property {string} device
 * @property {Uint8Array} identityKey Ed25519 public key
 * @property {Uint8Array} hpkeKey X25519 public key
 */

/**
 * Parses and verifies a device bundle (a JSON object, or its text). Errors: `malformed`,
 * `unsupported_version`, `bad_device_id`, `bad_base64`, `bad_key`, `bad_signature`.
 * @returns {Promise<VerifiedBundle>}
 */
export async function verifyBundle(bundle) {
  const obj = typeof bundle === 'string' ? parseJson(bundle) : bundle;
  checkWireObject(obj, 'device bundle');
  const device = checkDeviceId(field(obj, 'device', 'string'));
  const identityKey = b64Field(obj, 'identity_key', ED25519_PUBLIC_KEY_LENGTH);
  const hpkeKey = b64Field(obj, 'hpke_key', X25519_KEY_LENGTH);
  const sig = b64Field(obj, 'sig', ED25519_SIGNATURE_LENGTH);
  await verifyEd25519(identityKey, bundleMessage(device, hpkeKey), sig);
  return { device, identityKey, hpkeKey };
}

/** JSON.parse that throws `malformed` instead of SyntaxError. */
export function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch (err) {
    return fail(ErrorCode.MALFORMED, 'not valid JSON', err);
  }
}
