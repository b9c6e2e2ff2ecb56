/**
 * The receiving side (docs/e2ee.md §1.3): a key store keyed by KID, holding per sender slot at
 * most 3 generations of base keys, each at one ratchet step, with
 * - bounded look-ahead: steps `s..=s+16` are reached by ratcheting forward; further: refused;
 * - forward secrecy: once a later step authenticated, earlier steps are refused, except the
 *   previous step, kept for a 2 s grace period for in-flight frames;
 * - a replay window per KID (128 counters below the highest authenticated), moved only after a
 *   frame authenticated;
 * - eviction: a 4th generation evicts the oldest, and a generation is evicted 10 s after a newer
 *   one authenticated its first frame.
 *
 * Time is passed in (`now`, milliseconds on any monotonic clock); nothing here reads a clock.
 * Imported CryptoKeys are cached per KID, so the per-frame cost is one header parse and one AEAD.
 *
 * @module receiver
 */
import { asBytes, asInt, bytesEqual } from './bytes.mjs';
import { ErrorCode, fail } from './errors.mjs';
import { decodeKid, MAX_GENERATION, MAX_SLOT, MAX_STEP } from './kid.mjs';
import { checkCandidateLength, openMediaFrame } from './media.mjs';
import { decodeHeader } from './sframe-header.mjs';
import { ratchetBaseKey, SframeKey } from './sframe.mjs';
import { suiteParams } from './suites.mjs';

/** Defaults of docs/e2ee.md §1.3. */
export const RECEIVER_DEFAULTS = Object.freeze({
  /** Steps a receiver ratchets forward on its own. */
  lookahead: 16,
  /** How long the previous step's key stays usable after a later step authenticated (ms). */
  previousStepGraceMs: 2000,
  /** Generations kept per sender slot. */
  maxGenerations: 3,
  /** Delay before an older generation is evicted once a newer one authenticated (ms). */
  generationRetireMs: 10000,
  /** Counters below the highest authenticated one that are still accepted once. */
  replayWindow: 128,
});

/**
 * Replay window of one KID: remembers the highest authenticated counter and which of the
 * `size` counters below it were seen.
 */
export class ReplayWindow {
  /** @param {number} [size] counters tracked below the highest */
  constructor(size = RECEIVER_DEFAULTS.replayWindow) {
    this._size = BigInt(size);
    this._all = (1n << (this._size + 1n)) - 1n;
    this._highest = -1n;
    this._seen = 0n; // bit i: counter highest - i was authenticated
  }

  /** The highest authenticated counter, or null before the first. */
  get highest() {
    return this._highest < 0n ? null : this._highest;
  }

  /** True if `ctr` may still be accepted (not seen, not below the window). */
  accepts(ctr) {
    if (ctr > this._highest) return true;
    const offset = this._highest - ctr;
    return offset <= this._size && ((this._seen >> offset) & 1n) === 0n;
  }

  /** Records an authenticated `ctr`; call only after {@link accepts} returned true. */
  commit(ctr) {
    if (ctr > this._highest) {
      const shift = ctr - this._highest;
      this._seen = shift > this._size ? 1n : ((this._seen << shift) | 1n) & this._all;
      this._highest = ctr;
    } else {
      this._seen |= 1n << (this._highest - ctr);
    }
  }
}

/** Key state of one (slot, generation). */
class Generation {
  constructor(suite, step, baseKey) {
    this.suite = suite;
    this.step = step;
    this.baseKey = baseKey;
    /** @type {{step: number, baseKey: Uint8Array, until: number} | null} */
    this.previous = null;
    /** Base keys of steps ahead of `step`, derived on demand (promises, shared by callers). */
    this.ahead = new Map();
    /** Per-KID state: `{ key: Promise<SframeKey>, replay: ReplayWindow, step, baseKey }`. */
    this.kids = new Map();
    this.firstAuthAt = null;
    this.retireAt = Infinity;
  }

  baseKeyAhead(step) {
    let pending = this.ahead.get(step);
    if (!pending) {
      const before = step - 1 === this.step ? Promise.resolve(this.baseKey) : this.baseKeyAhead(step - 1);
      pending = before.then((key) => ratchetBaseKey(this.suite.id, key));
      this.ahead.set(step, pending);
      pending.catch(() => this.ahead.delete(step));
    }
    return pending;
  }

  dropPreviousIfExpired(now) {
    if (this.previous && now >= this.previous.until) {
      this.forgetStepsBelow(this.step);
      this.previous = null;
    }
  }

  forgetStepsBelow(step, except = -1) {
    for (const [kid, state] of this.kids) {
      if (state.step < step && state.step !== except) this.kids.delete(kid);
    }
  }

  /** Moves the current step to `step` (> current) after a frame of `step` authenticated. */
  advanceTo(step, baseKey, now, graceMs) {
    this.previous = { step: this.step, baseKey: this.baseKey, until: now + graceMs };
    this.step = step;
    this.baseKey = baseKey;
    for (const s of this.ahead.keys()) if (s <= step) this.ahead.delete(s);
    this.forgetStepsBelow(step, this.previous.step);
  }
}

/**
 * @typedef {object} ReceivedFrame
 * @property {Uint8Array} plaintext SFrame plaintext
 * @property {number} kid
 * @property {bigint} ctr
 * @property {number} slot
 * @property {number} stream
 * @property {number} generation
 * @property {number} step
 */

/** Receiver key store: all senders' keys for one call, one instance per receiving device. */
export class ReceiverKeyStore {
  /** @param {Partial<typeof RECEIVER_DEFAULTS>} [options] */
  constructor(options = {}) {
    this._opts = { ...RECEIVER_DEFAULTS, ...options };
    /** @type {Map<number, Map<number, Generation>>} slot -> generation -> state */
    this._senders = new Map();
  }

  /**
   * Stores the base key of (`slot`, `generation`) at ratchet `step` for `suite` (from an opened
   * key envelope). Returns true if stored (or already held); false when it is older than what is
   * held: a step below the held one (the receiver ratcheted past it) or a generation older than
   * the 3 kept. A later step of a held generation advances it like an authenticated frame would
   * (the held step stays usable for the 2 s grace period).
   */
  addKey({ slot, generation, step = 0, suite, baseKey }, now) {
    asInt(slot, 0, MAX_SLOT, 'slot');
    asInt(generation, 0, MAX_GENERATION, 'generation');
    asInt(step, 0, MAX_STEP, 'step');
    checkNow(now);
    const params = suiteParams(suite);
    const key = Uint8Array.from(asBytes(baseKey, 'base key'));
    if (key.length === 0) fail(ErrorCode.BAD_KEY, 'base key is empty');
    let gens = this._senders.get(slot);
    if (!gens) {
      gens = new Map();
      this._senders.set(slot, gens);
    }
    this._evictRetired(gens, now);
    const held = gens.get(generation);
    if (held) {
      if (step < held.step) return false;
      if (held.suite === params && step === held.step && bytesEqual(held.baseKey, key)) return true;
      if (held.suite === params && step > held.step) {
        // The sender moved on (join): advance in place so the replay windows of the step in
        // flight survive. States derived ahead of `step` came from the old chain: drop them.
        for (const [kid, state] of held.kids) if (state.step >= step) held.kids.delete(kid);
        held.ahead.clear();
        held.advanceTo(step, key, now, this._opts.previousStepGraceMs);
        return true;
      }
      // Same step with another key, or another suite: a new key entirely. Frames under the old
      // key cannot authenticate under the new one, so fresh replay windows are safe.
      const fresh = new Generation(params, step, key);
      fresh.firstAuthAt = held.firstAuthAt;
      fresh.retireAt = held.retireAt;
      gens.set(generation, fresh);
      return true;
    }
    if (gens.size >= this._opts.maxGenerations) {
      const oldest = Math.min(...gens.keys());
      if (generation < oldest) return false;
      gens.delete(oldest);
    }
    gens.set(generation, new Generation(params, step, key));
    return true;
  }

  /** Forgets every key of a sender slot (the sender left). */
  removeSender(slot) {
    this._senders.delete(slot);
  }

  /** Drops expired previous-step keys and retired generations. */
  prune(now) {
    checkNow(now);
    for (const [slot, gens] of this._senders) {
      this._evictRetired(gens, now);
      for (const gen of gens.values()) gen.dropPreviousIfExpired(now);
      if (gens.size === 0) this._senders.delete(slot);
    }
  }

  /** Number of (slot, generation) entries held (for tests and stats). */
  get generationCount() {
    let n = 0;
    for (const gens of this._senders.values()) n += gens.size;
    return n;
  }

  /**
   * Decrypts one SFrame (`header || ct || tag`) authenticated with `metadata`.
   * Errors: `truncated_header`, `bad_kid`, `unknown_kid`, `key_expired`, `ratchet_out_of_range`,
   * `replay`, `truncated_ciphertext`, `auth_failed`.
   * @returns {Promise<ReceivedFrame>}
   */
  async decrypt(sframe, metadata, now) {
    const data = asBytes(sframe, 'SFrame');
    const meta = asBytes(metadata ?? new Uint8Array(0), 'metadata');
    checkNow(now);
    const finish = await this._prepare(meta, data, false, now);
    return finish();
  }

  /**
   * Decrypts one received media frame (`prefix || sframe`) of `codec` (see media.mjs).
   * Returns the decrypted encoded frame (`prefix || plaintext`) and where it came from.
   * @returns {Promise<ReceivedFrame & {frame: Uint8Array, prefixLength: number}>}
   */
  decryptFrame(codec, wire, now) {
    checkNow(now);
    return openMediaFrame(codec, wire, (prefix, sframe, emptyPlaintext) =>
      this._prepare(prefix, sframe, emptyPlaintext, now),
    );
  }

  /** Structural checks and key lookup; returns the function that authenticates and commits. */
  async _prepare(metadata, data, emptyPlaintext, now) {
    const header = decodeHeader(data);
    const fields = decodeKid(header.kid);
    const kid = Number(header.kid);
    const gen = this._generation(fields, now);
    const state = await this._kidState(gen, kid, fields.step, now);
    checkCandidateLength(data, header, gen.suite, emptyPlaintext);
    return async () => {
      if (!state.replay.accepts(header.ctr)) fail(ErrorCode.REPLAY, 'SFrame counter replayed or too old');
      const key = await state.key;
      const plaintext = await key.openWithHeader(header, data, metadata);
      this._commit(fields, gen, state, header.ctr, now);
      return { plaintext, kid, ctr: header.ctr, ...fields };
    };
  }

  _generation({ slot, generation }, now) {
    const gens = this._senders.get(slot);
    if (gens) this._evictRetired(gens, now);
    const gen = gens?.get(generation);
    if (!gen) fail(ErrorCode.UNKNOWN_KID, `no key for slot ${slot} generation ${generation}`);
    gen.dropPreviousIfExpired(now);
    return gen;
  }

  async _kidState(gen, kid, step, now) {
    checkStep(gen, step, now, this._opts.lookahead);
    let state = gen.kids.get(kid);
    if (state) return state;
    let baseKey;
    if (step === gen.step) baseKey = gen.baseKey;
    else if (step < gen.step) baseKey = gen.previous.baseKey;
    else baseKey = await gen.baseKeyAhead(step);
    // Another frame may have created the state while this one awaited the ratchet.
    state = gen.kids.get(kid);
    if (state) return state;
    const key = SframeKey.derive(gen.suite.id, baseKey, kid);
    state = { key, replay: new ReplayWindow(this._opts.replayWindow), step, baseKey };
    gen.kids.set(kid, state);
    key.catch(() => gen.kids.get(kid) === state && gen.kids.delete(kid));
    return state;
  }

  /** After authentication: replay window, ratchet advance, generation retirement. */
  _commit({ slot, generation, step }, gen, state, ctr, now) {
    // Re-check everything that may have changed while the AEAD ran.
    if (this._senders.get(slot)?.get(generation) !== gen) {
      fail(ErrorCode.UNKNOWN_KID, `generation ${generation} was replaced or evicted`);
    }
    checkStep(gen, step, now, Infinity);
    if (!state.replay.accepts(ctr)) fail(ErrorCode.REPLAY, 'SFrame counter replayed or too old');
    state.replay.commit(ctr);
    if (step > gen.step) gen.advanceTo(step, state.baseKey, now, this._opts.previousStepGraceMs);
    if (gen.firstAuthAt === null) {
      gen.firstAuthAt = now;
      const retireAt = now + this._opts.generationRetireMs;
      for (const [g, other] of this._senders.get(slot)) {
        if (g < generation) other.retireAt = Math.min(other.retireAt, retireAt);
      }
    }
  }

  _evictRetired(gens, now) {
    for (const [g, gen] of gens) if (now >= gen.retireAt) gens.delete(g);
  }
}

/** Refuses a step the generation no longer (or not yet) accepts. */
function checkStep(gen, step, now, lookahead) {
  if (step < gen.step) {
    const prev = gen.previous;
    if (!prev || prev.step !== step || now >= prev.until) {
      fail(ErrorCode.KEY_EXPIRED, `ratchet step ${step} was ratcheted past`);
    }
  } else if (step - gen.step > lookahead) {
    fail(ErrorCode.RATCHET_OUT_OF_RANGE, `ratchet step ${step} is more than ${lookahead} steps ahead`);
  }
}

function checkNow(now) {
  if (typeof now !== 'number' || !Number.isFinite(now)) {
    fail(ErrorCode.INVALID_ARGUMENT, 'now must be a finite number of milliseconds');
  }
}
