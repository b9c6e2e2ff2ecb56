/**
 * What the encryption badge says, from what this device holds and what its transform worker
 * counted (sans-IO: time is passed in). Three states:
 *
 * - `waiting` "Waiting for keys": a remote publisher's key has not arrived yet, or this
 *   publishing device has no key of its own yet. Its frames cannot open until it does (they
 *   count as failures meanwhile: that is this state, not the next).
 * - `failing` "Frames from X fail to decrypt": a sender whose key this device has held for the
 *   whole last window had frames fail ({@link FAILING_MIN} or more) and none open in that
 *   window. X is named by the KID slot of the failing frames (the worker's per-slot counts),
 *   the only name a frame that does not authenticate has.
 * - `encrypted` "End-to-end encrypted": every publisher's key is here and nobody's frames fail.
 *
 * Also the calm notice when the call security code changes ({@link securityCodeChangedText}).
 *
 * Failures while a key is fresh (frames sent before it arrived, a rotation) are not a problem:
 * only a window in which the key was held throughout and nothing opened counts.
 *
 * @module e2ee-status
 */

/** How far back the failing check looks (ms): three of the worker's one-second reports. */
export const WINDOW_MS = 3000;
/** Failures in a window, with nothing opened, that make a sender `failing`. */
export const FAILING_MIN = 5;

/** The roles whose devices send media (and so a key). */
const PUBLISHING_ROLES = new Set(['caller', 'presenter']);

/** "Bob", "Bob and Carol", "Bob and 2 others". */
export function namesText(names) {
  if (names.length <= 1) return names[0] ?? '';
  if (names.length === 2) return `${names[0]} and ${names[1]}`;
  return `${names[0]} and ${names.length - 1} others`;
}

/**
 * The remote devices whose keys the badge waits for: `[{device, name, slot, hasKey}]` from the
 * call's participants and the devices a key was received from.
 */
export function remotePublishers(participants, received) {
  return [...participants.values()]
    .filter((p) => !p.self && PUBLISHING_ROLES.has(p.role))
    .map((p) => ({ device: p.device, name: p.name, slot: p.slot, hasKey: received.has(p.device) }));
}

/** Follows the worker's per-sender counts over time; `observe` says what the badge shows. */
export class EncryptionStatus {
  constructor({ windowMs = WINDOW_MS, failingMin = FAILING_MIN } = {}) {
    this.windowMs = windowMs;
    this.failingMin = failingMin;
    /** `[{at, counts: Map slot -> {decrypted, failures}}]`, oldest first. */
    this.history = [];
    /** device -> when this device was first seen holding its key (ms). */
    this.keyedSince = new Map();
  }

  /** Forgets everything (a new session: a new worker counts from zero). */
  reset() {
    this.history = [];
    this.keyedSince.clear();
  }

  /**
   * One worker report.
   * @param {number} now ms
   * @param {{slot: number, decrypted: number, failures: number}[]} senders the worker's per-slot counts
   * @param {{device: string, name: string, slot: number, hasKey: boolean}[]} publishers see {@link remotePublishers}
   * @param {boolean|null} selfKeyed whether this device has its sender key (null: it publishes nothing)
   * @returns {{state: 'waiting'|'encrypted'|'failing', text: string, detail: string, failing: string[], waitingFor: string[]}}
   */
  observe(now, senders, publishers, selfKeyed) {
    const counts = new Map((senders ?? []).map((c) => [c.slot, { decrypted: c.decrypted, failures: c.failures }]));
    const last = this.history.at(-1);
    // Counts that went down come from a new worker (a rejoin) or a slot given up: start over.
    if (last && [...last.counts].some(([slot, c]) => { const n = counts.get(slot); return n && (n.decrypted < c.decrypted || n.failures < c.failures); })) {
      this.reset();
    }
    this.history.push({ at: now, counts });
    // Keep the newest report at least a window old, and everything after it.
    while (this.history.length > 1 && this.history[1].at <= now - this.windowMs) this.history.shift();
    const base = this.history[0].at <= now - this.windowMs ? this.history[0] : null;

    const waitingFor = [];
    const failing = [];
    const failingDevices = [];
    const present = new Set();
    for (const p of publishers) {
      present.add(p.device);
      if (!p.hasKey) {
        this.keyedSince.delete(p.device);
        waitingFor.push(p.name);
        continue;
      }
      if (!this.keyedSince.has(p.device)) this.keyedSince.set(p.device, now);
      if (!base || this.keyedSince.get(p.device) > base.at) continue;
      const was = base.counts.get(p.slot) ?? { decrypted: 0, failures: 0 };
      const is = counts.get(p.slot) ?? { decrypted: 0, failures: 0 };
      if (is.failures - was.failures >= this.failingMin && is.decrypted === was.decrypted) {
        failing.push(p.name);
        failingDevices.push(p.device);
      }
    }
    for (const d of [...this.keyedSince.keys()]) if (!present.has(d)) this.keyedSince.delete(d);

    if (failing.length) {
      return {
        state: 'failing',
        text: `Frames from ${namesText(failing)} fail to decrypt`,
        detail: `This device holds ${namesText(failing)}'s key, but their frames do not open with it: their audio and video cannot be shown. Nothing is shown unencrypted.`,
        failing,
        failingDevices,
        waitingFor,
      };
    }
    if (waitingFor.length || selfKeyed === false) {
      return {
        state: 'waiting',
        text: 'Waiting for keys',
        detail: waitingFor.length
          ? `No key from ${namesText(waitingFor)} yet: their audio and video appear once it arrives.`
          : 'This device is making its key: the others see and hear you once it is sent.',
        failing,
        failingDevices,
        waitingFor,
      };
    }
    return {
      state: 'encrypted',
      text: 'End-to-end encrypted',
      detail: 'Media is encrypted on each device; the servers cannot read it. Frames from every sender open with their key.',
      failing,
      failingDevices,
      waitingFor,
    };
  }
}

/**
 * The notice when the call security code changed because the roster did: "Bob joined — the
 * security code changed; compare it again" (also "Carol left", or both). Not an error: the
 * code is meant to change with the roster; the notice says why, so the others compare again.
 */
export function securityCodeChangedText({ joined = [], left = [] }) {
  const parts = [];
  if (joined.length) parts.push(`${namesText(joined)} joined`);
  if (left.length) parts.push(`${namesText(left)} left`);
  const who = parts.join(', ') || 'The participants changed';
  return `${who} — the security code changed; compare it again`;
}
