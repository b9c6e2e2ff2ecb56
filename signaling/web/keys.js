/**
 * Key manager: this device's sender key (generations, ratchet steps) and the keys it receives,
 * following docs/architecture.md §3.3 and the membership notices of docs/protocol.md §4.
 *
 * Sending (only when the device may publish):
 * - start: generation 0 with a random 32-byte base key, wrapped to every recipient in the roster
 *   and used at once (nobody holds an older key to protect).
 * - `membership` `ratchet` (somebody joined): the current key is ratcheted one step (RFC 9605
 *   §5.1) and used at once; only the joiners get the ratcheted key, one envelope each (the
 *   others ratchet by themselves, within their look-ahead), and no new generation starts. The
 *   ratcheted key is the suite's Nh bytes (64 with the default SHA-512 suite 0x0005) and the
 *   envelope carries it as it is (docs/e2ee.md §3). Past step 255 a new generation is made
 *   instead.
 * - `membership` `rekey` (somebody left), and every {@link KEY_DEFAULTS.periodicMs} (5 min): a
 *   new generation, wrapped to every remaining recipient; it is used once all of them acked, or
 *   after {@link KEY_DEFAULTS.ackTimeoutMs}. A rekey while one is pending replaces it (the
 *   pending key went to devices that have since left).
 * - every switch of the sending key reports `onSenderKey`, which makes the media layer send a
 *   keyframe under the new key.
 * Receiving: envelopes are verified and opened against the sender's bundle from the roster,
 * handed to `onReceiverKey` and acknowledged with `key_ack`.
 * Recovery: a frame the key store refused for want of a key (`unknown_kid`, or
 * `ratchet_out_of_range`: the sender ratcheted more than the look-ahead while this device saw
 * none of its frames) asks that sender for its current key with `key_request`, at most once per
 * {@link KEY_DEFAULTS.requestIntervalMs} per sender (docs/architecture.md §7.24), the same rule
 * as `call_client::keys`.
 *
 * Sans-IO: time is passed in (`now`, ms); the owner calls {@link KeyManager#poll} at
 * {@link KeyManager#nextDeadline}. Crypto is the real e2ee module; the only outputs are the
 * callbacks and the `send` function (signaling messages).
 *
 * @module keys
 */
import { createEnvelope, openEnvelope } from './e2ee/envelope.mjs';
import { ratchetBaseKey } from './e2ee/sframe.mjs';
import { MAX_GENERATION, MAX_STEP } from './e2ee/kid.mjs';
import { DEFAULT_SUITE } from './e2ee/suites.mjs';

/** Timing defaults (ms). */
export const KEY_DEFAULTS = Object.freeze({
  /** A new generation is used after this long even if some recipients did not ack. */
  ackTimeoutMs: 3000,
  /** Periodic rotation (docs/architecture.md §3.3). */
  periodicMs: 5 * 60 * 1000,
  /** Least time between two `key_request`s to the same sender. */
  requestIntervalMs: 1000,
});

/**
 * @typedef {object} RosterDevice
 * @property {string} device
 * @property {string} role
 * @property {number} slot
 * @property {object} bundle device bundle (docs/e2ee.md §2)
 * @property {boolean} [recipient] false to never wrap keys to it (e.g. a recorder the policy does not name)
 */

/** The sender/receiver key manager of one device in one call. */
export class KeyManager {
  /**
   * @param {object} o
   * @param {import('./e2ee/identity.mjs').DeviceIdentity} o.identity this device
   * @param {string} o.room
   * @param {string} o.call
   * @param {number} o.slot this device's slot
   * @param {boolean} o.canPublish whether this device sends media (and so holds a sender key)
   * @param {(msg: object) => void} o.send sends a signaling message
   * @param {(key: {generation: number, step: number, suite: number, baseKey: Uint8Array, reason: string}) => void} [o.onSenderKey]
   * @param {(key: {device: string, slot: number, generation: number, step: number, suite: number, baseKey: Uint8Array}) => void} [o.onReceiverKey]
   * @param {(err: Error, context: string) => void} [o.onError]
   * @param {(n: number) => Uint8Array} [o.randomBytes]
   * @param {Partial<typeof KEY_DEFAULTS>} [o.options]
   * @param {number} [o.suite] SFrame suite to send with (default 0x0005)
   */
  constructor(o) {
    this.identity = o.identity;
    this.room = o.room;
    this.call = o.call;
    this.slot = o.slot;
    this.canPublish = o.canPublish;
    this.suite = o.suite ?? DEFAULT_SUITE;
    this._send = o.send;
    this._onSenderKey = o.onSenderKey ?? (() => {});
    this._onReceiverKey = o.onReceiverKey ?? (() => {});
    this._onError = o.onError ?? (() => {});
    this._random = o.randomBytes ?? ((n) => crypto.getRandomValues(new Uint8Array(n)));
    this.options = { ...KEY_DEFAULTS, ...o.options };
    /** @type {Map<string, RosterDevice>} every other device in this device's roster */
    this.roster = new Map();
    /** The key frames are sent under: `{generation, step, baseKey, since}` or null. */
    this.current = null;
    /** A generation wrapped but not yet used: `{generation, baseKey, waiting: Set, deadline}`. */
    this.pending = null;
    this._nextGeneration = 0;
    /** Newest key received per sender device: `{generation, step}` (for the UI and tests). */
    this.received = new Map();
    /** Envelopes this device could not open. */
    this.refusedEnvelopes = 0;
    /** When this device last asked each sender for its key (ms). */
    this._asked = new Map();
  }

  /** Replaces the roster (from `joined`). `devices` may include this device; it is skipped. */
  setRoster(devices) {
    this.roster.clear();
    for (const d of devices) this.addDevice(d);
  }

  /** Adds or replaces one device (a `roster` delta's `added`). */
  addDevice(d) {
    if (d.device === this.identity.deviceId) return;
    this.roster.set(d.device, { recipient: true, ...d });
  }

  /** Removes devices (a `roster` delta's `removed`); their pending acks are no longer awaited. */
  removeDevices(ids, now) {
    for (const id of ids) {
      this.roster.delete(id);
      this.received.delete(id);
      this.pending?.waiting.delete(id);
      this._asked.delete(id);
    }
    return this._maybeSwitch(now);
  }

  /** Devices keys are wrapped to. */
  recipients() {
    return [...this.roster.values()].filter((d) => d.recipient !== false && d.bundle);
  }

  /** Makes and uses generation 0 (call once after `joined` when the device may publish). */
  async start(now) {
    if (!this.canPublish || this.current) return;
    const generation = this._takeGeneration();
    const baseKey = this._random(32);
    this._use({ generation, step: 0, baseKey }, now, 'start');
    await this._wrapTo(this.recipients(), generation, 0, baseKey);
  }

  /** Handles a `membership` message. */
  async onMembership(msg, now) {
    if (!this.canPublish || !this.current) return;
    if (msg.action === 'ratchet') await this._ratchetFor(msg.joined ?? [], now);
    else if (msg.action === 'rekey') await this._newGeneration(now, 'rekey');
  }

  async _ratchetFor(joined, now) {
    const joiners = joined.map((id) => this.roster.get(id)).filter((d) => d && d.recipient !== false && d.bundle);
    const cur = this.current;
    if (cur.step >= MAX_STEP) {
      // The KID has no room for another step: a new generation for everyone instead.
      await this._newGeneration(now, 'step-exhausted');
      return;
    }
    // Nh bytes: 32 with a SHA-256 suite, 64 with the SHA-512 suite 0x0005 (docs/e2ee.md §3).
    const baseKey = await ratchetBaseKey(this.suite, cur.baseKey);
    const step = cur.step + 1;
    this._use({ generation: cur.generation, step, baseKey }, now, 'ratchet');
    await this._wrapTo(joiners, cur.generation, step, baseKey);
    // A pending generation was wrapped before the joiners were there: they need it too.
    if (this.pending) {
      for (const d of joiners) this.pending.waiting.add(d.device);
      await this._wrapTo(joiners, this.pending.generation, 0, this.pending.baseKey);
    }
  }

  async _newGeneration(now, reason) {
    const generation = this._takeGeneration();
    const baseKey = this._random(32);
    const targets = this.recipients();
    this.pending = {
      generation,
      baseKey,
      reason,
      waiting: new Set(targets.map((d) => d.device)),
      deadline: now + this.options.ackTimeoutMs,
    };
    await this._wrapTo(targets, generation, 0, baseKey);
    this._maybeSwitch(now);
  }

  /** Handles a `key_ack` from another device. */
  onKeyAck({ from, generation, step }, now) {
    const p = this.pending;
    if (p && generation === p.generation && (step ?? 0) === 0) p.waiting.delete(from);
    return this._maybeSwitch(now);
  }

  /** Handles a `key_request`: sends the current (and a pending) key to that device again. */
  async onKeyRequest({ from }) {
    const d = this.roster.get(from);
    if (!d || d.recipient === false || !d.bundle || !this.current) return;
    await this._wrapTo([d], this.current.generation, this.current.step, this.current.baseKey);
    if (this.pending) await this._wrapTo([d], this.pending.generation, 0, this.pending.baseKey);
  }

  /**
   * A frame from `slot` could not be opened for want of a key (`unknown_kid` or
   * `ratchet_out_of_range`): asks its sender for its current key, at most once per
   * `requestIntervalMs` per sender. Returns whether a `key_request` was sent.
   */
  onUndecryptable({ slot, generation }, now) {
    const d = [...this.roster.values()].find((x) => x.slot === slot);
    if (!d) return false;
    const last = this._asked.get(d.device);
    if (last !== undefined && now - last < this.options.requestIntervalMs) return false;
    this._asked.set(d.device, now);
    this._send({ type: 'key_request', to: d.device, generation });
    return true;
  }

  /**
   * Handles a `key_envelope` addressed to this device: verifies and opens it against the
   * sender's roster bundle, reports the key and acks it. Returns the key, or null if refused.
   */
  async onKeyEnvelope(envelope) {
    const sender = this.roster.get(envelope?.sender);
    if (!sender?.bundle) {
      this.refusedEnvelopes += 1;
      this._onError(new Error(`key envelope from a device not in the roster`), 'envelope');
      return null;
    }
    let opened;
    try {
      opened = await openEnvelope(envelope, {
        room: this.room,
        call: this.call,
        recipient: this.identity,
        senderBundle: sender.bundle,
      });
    } catch (err) {
      this.refusedEnvelopes += 1;
      this._onError(err, 'envelope');
      return null;
    }
    if (opened.slot !== sender.slot) {
      this.refusedEnvelopes += 1;
      this._onError(new Error(`envelope slot ${opened.slot} is not the sender's slot ${sender.slot}`), 'envelope');
      return null;
    }
    const key = {
      device: sender.device,
      slot: opened.slot,
      generation: opened.generation,
      step: opened.step,
      suite: opened.suite,
      baseKey: opened.baseKey,
    };
    const prev = this.received.get(sender.device);
    if (!prev || key.generation > prev.generation || (key.generation === prev.generation && key.step >= prev.step)) {
      this.received.set(sender.device, { generation: key.generation, step: key.step });
    }
    this._onReceiverKey(key);
    this._send({ type: 'key_ack', to: sender.device, generation: key.generation, step: key.step });
    return key;
  }

  /** When {@link poll} must next be called (ms), or Infinity. */
  nextDeadline() {
    if (!this.canPublish || !this.current) return Infinity;
    const periodic = this.current.since + this.options.periodicMs;
    return Math.min(periodic, this.pending ? this.pending.deadline : Infinity);
  }

  /** Runs what is due at `now`: an ack timeout switch, the periodic rotation. */
  async poll(now) {
    if (!this.canPublish || !this.current) return;
    if (this.pending && now >= this.pending.deadline) {
      this._switchToPending(now, 'ack-timeout');
    }
    if (!this.pending && now >= this.current.since + this.options.periodicMs) {
      await this._newGeneration(now, 'periodic');
    }
  }

  _maybeSwitch(now) {
    if (this.pending && this.pending.waiting.size === 0) this._switchToPending(now, 'acked');
  }

  _switchToPending(now, why) {
    const p = this.pending;
    this.pending = null;
    this._use({ generation: p.generation, step: 0, baseKey: p.baseKey }, now, `${p.reason}:${why}`);
  }

  _use({ generation, step, baseKey }, now, reason) {
    this.current = { generation, step, baseKey, since: step === 0 ? now : (this.current?.since ?? now) };
    this._onSenderKey({ generation, step, suite: this.suite, baseKey, reason });
  }

  _takeGeneration() {
    if (this._nextGeneration > MAX_GENERATION) throw new Error('sender key generations exhausted');
    return this._nextGeneration++;
  }

  async _wrapTo(devices, generation, step, baseKey) {
    await Promise.all(
      devices.map(async (d) => {
        try {
          const envelope = await createEnvelope({
            room: this.room,
            call: this.call,
            sender: this.identity,
            recipientBundle: d.bundle,
            slot: this.slot,
            generation,
            step,
            suite: this.suite,
            baseKey,
          });
          this._send({ type: 'key_envelope', envelope });
        } catch (err) {
          this._onError(err, `wrap to ${d.device}`);
        }
      }),
    );
  }
}
