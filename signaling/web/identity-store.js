/**
 * What this browser keeps between calls, in IndexedDB:
 * - the device identity (Ed25519 IK + X25519 HK), generated on first use; its private keys are
 *   non-extractable CryptoKeys stored as they are (structured clone), so script can use but never
 *   read them;
 * - pinned identity keys of other users (trust on first use): `identity -> {identityKey, devices}`;
 * - verified marks: a user's identity key this user compared by safety number.
 *
 * @module identity-store
 */
import { generateDeviceIdentity } from './e2ee/identity.mjs';
import { toBase64Url } from './e2ee/bytes.mjs';

const DB_NAME = 'e2ee-sfu-client';
const DB_VERSION = 1;
const DEVICE = 'device';
const PINS = 'pins';

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Opens (creating when needed) the client's database. */
export function openDatabase(name = DB_NAME) {
  const req = indexedDB.open(name, DB_VERSION);
  req.onupgradeneeded = () => {
    const db = req.result;
    if (!db.objectStoreNames.contains(DEVICE)) db.createObjectStore(DEVICE);
    if (!db.objectStoreNames.contains(PINS)) db.createObjectStore(PINS);
  };
  return request(req);
}

/**
 * The outcome of seeing a user's identity key: `new` (first time: pinned), `same` (matches the
 * pin) or `changed` (differs from the pin: warn; the verified mark is cleared).
 * @typedef {'new'|'same'|'changed'} PinResult
 */

/** This browser's persistent identity and trust store. */
export class IdentityStore {
  constructor(db) {
    this.db = db;
  }

  /** Opens the store. */
  static async open(name) {
    return new IdentityStore(await openDatabase(name));
  }

  async _get(store, key) {
    return request(this.db.transaction(store).objectStore(store).get(key));
  }

  async _put(store, key, value) {
    const tx = this.db.transaction(store, 'readwrite');
    tx.objectStore(store).put(value, key);
    await new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }

  /**
   * This device's identity: loaded, or generated (non-extractable) and saved on first use.
   * @returns {Promise<import('./e2ee/identity.mjs').DeviceIdentity>}
   */
  async deviceIdentity() {
    const held = await this._get(DEVICE, 'identity');
    if (held) return held;
    const fresh = await generateDeviceIdentity();
    await this._put(DEVICE, 'identity', fresh);
    return fresh;
  }

  /**
   * Records that `identity` (a user name from the token) uses `identityKey` (bytes) on
   * `device`. Keys are pinned per user and device.
   * @returns {Promise<{result: PinResult, verified: boolean}>}
   */
  async observe(identity, device, identityKey) {
    const key = `${identity}\u0000${device}`;
    const ik = toBase64Url(identityKey);
    const pin = await this._get(PINS, key);
    if (!pin) {
      await this._put(PINS, key, { identityKey: ik, verified: false, firstSeen: Date.now() });
      return { result: 'new', verified: false };
    }
    if (pin.identityKey === ik) return { result: 'same', verified: pin.verified };
    await this._put(PINS, key, { identityKey: ik, verified: false, firstSeen: Date.now(), previous: pin.identityKey });
    return { result: 'changed', verified: false };
  }

  /** Marks (or unmarks) `identity`'s current key on `device` as verified. */
  async setVerified(identity, device, identityKey, verified) {
    const key = `${identity}\u0000${device}`;
    const pin = (await this._get(PINS, key)) ?? { firstSeen: Date.now() };
    await this._put(PINS, key, { ...pin, identityKey: toBase64Url(identityKey), verified });
  }
}
