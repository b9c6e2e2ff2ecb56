/**
 * The media transform worker: every outgoing encoded frame is SFrame-encrypted with this
 * device's current sender key, every incoming frame is decrypted with the sender's key from one
 * {@link ReceiverKeyStore}. A frame that cannot be encrypted (no key yet, refused codec) is
 * dropped, never sent in clear; a frame that fails to decrypt is dropped, never decoded, and
 * counted.
 *
 * Attach with `new RTCRtpScriptTransform(worker, options)` (the `rtctransform` event), or, where
 * only `createEncodedStreams()` exists, post `{type: 'stream', readable, writable, options}`.
 * `options`: `{side: 'send'|'recv', id: string, kind: 'audio'|'video', stream?: number,
 * held?: boolean}` (`stream` is the KID stream of a sender: 0 audio, 1 camera, 2 screen video, 3
 * screen audio).
 *
 * Strict recording (docs/protocol.md `recording_ready`): a sender attached `held` sends no
 * media until `release {id}`. While held, its first frame of each RTP stream (SSRC) goes out
 * as a probe whose data is replaced by one byte (no media, not encrypted, nothing to decode: a
 * VP8 delta tag, an Opus TOC byte), so that the SFU publishes the track and the recorder can
 * subscribe to it; every other frame is dropped and counted as `held`. After `release`, audio
 * flows at once; video asks the encoder for a keyframe and drops each stream's frames until its
 * first keyframe, so what is sent starts with one.
 *
 * Messages in: `sender-key {slot, generation, step, suite, baseKey}`, `receiver-key {slot,
 * generation, step, suite, baseKey}`, `remove-sender {slot}`, `release {id}`, `stats`. Messages
 * out: `stats {transforms, totals, senders}` (answer to `stats` and every second; `senders`:
 * `[{slot, decrypted, failures}]` by the KID slot in the frames), `unknown-kid {slot,
 * generation}` (throttled per slot: the page asks that sender for its key), `opened-by {id,
 * slot}` (receiver transform `id`'s frames are now opened with the key of KID slot `slot`: sent
 * on its first decrypted frame and when the slot changes, at most every 200 ms per transform;
 * `stats` carries the latest as `lastSlot` too). Only a frame a roster key authenticated names a
 * slot: the page names the tile by it (remote-media.js), never by the server's word.
 *
 * Test hook: `record-plaintext {limit}` makes the worker keep a short hash (first 8 bytes of
 * SHA-256, hex) of up to `limit` decrypted frames, returned by `plaintext-hashes` as
 * `plaintext-hashes {hashes}`. The loopback tests compare them with what a keyless party on the
 * SFU's path received; the page only turns it on in test mode.
 *
 * @module e2ee-worker
 */
import { decodeKid, encodeKid } from './e2ee/kid.mjs';
import { SenderContext } from './e2ee/media.mjs';
import { ReceiverKeyStore } from './e2ee/receiver.mjs';
import { decodeHeader } from './e2ee/sframe-header.mjs';

const store = new ReceiverKeyStore();
/** @type {{slot: number, generation: number, step: number, suite: number, baseKey: Uint8Array} | null} */
let senderKey = null;
/** Sender contexts of the current key, per KID stream (promises, created on first use). */
let senderContexts = new Map();
/** Every attached transform: id -> state. */
const transforms = new Map();
const unknownKidReported = new Map();
/**
 * Frames per sender, by the KID slot in their header: slot -> {decrypted, failures}. A failing
 * frame is counted under the slot its (unauthenticated) KID names, the only name it has; one
 * whose header does not parse is counted in its transform only.
 */
const bySlot = new Map();
const MAX_COUNTED_SLOTS = 1024;
let keyChanges = 0;
/** Test hook: short hashes of decrypted frames (null: not recording). */
let plaintextHashes = null;
let plaintextLimit = 0;

function recordPlaintext(bytes) {
  if (!plaintextHashes || plaintextHashes.length >= plaintextLimit) return;
  plaintextHashes.push(null);
  const at = plaintextHashes.length - 1;
  crypto.subtle.digest('SHA-256', bytes).then((d) => {
    plaintextHashes[at] = [...new Uint8Array(d, 0, 8)].map((b) => b.toString(16).padStart(2, '0')).join('');
  });
}

function newState(options, transformer) {
  return {
    id: String(options.id ?? `t${transforms.size}`),
    side: options.side,
    kind: options.kind,
    stream: options.stream ?? (options.kind === 'audio' ? 0 : 1),
    transformer,
    frames: 0,
    failures: 0,
    dropped: 0,
    empty: 0,
    lastError: null,
    lastSlot: null,
    lastGeneration: null,
    reportedSlot: null,
    reportedAt: -Infinity,
    keyframesRequested: 0,
    held: options.side === 'send' && !!options.held,
    /** SSRCs that got their probe while held. */
    probed: new Set(),
    /** Video after a release: SSRCs that sent their first keyframe (null: not waiting). */
    started: null,
    heldFrames: 0,
    probes: 0,
  };
}

/** The probe of a held sender: one byte and no media (a VP8 delta-frame tag, an Opus TOC). */
function probe(frame, controller, state) {
  const ssrc = frame.getMetadata?.().synchronizationSource ?? 0;
  if (state.probed.has(ssrc)) {
    state.heldFrames += 1;
    return;
  }
  state.probed.add(ssrc);
  state.probes += 1;
  frame.data = new Uint8Array([state.kind === 'audio' ? 0xf8 : 0x01]).buffer;
  controller.enqueue(frame);
}

/** Whether a released video sender may send `frame`: from each stream's first keyframe on. */
function startsAtKeyframe(frame, state) {
  if (!state.started) return true;
  const ssrc = frame.getMetadata?.().synchronizationSource ?? 0;
  if (state.started.has(ssrc)) return true;
  if (frame.type !== 'key') return false;
  state.started.add(ssrc);
  return true;
}

function codecOf(frame, state) {
  const mime = frame.getMetadata?.().mimeType;
  if (typeof mime === 'string' && mime.includes('/')) return mime.split('/')[1].toLowerCase();
  return state.kind === 'audio' ? 'opus' : 'vp8';
}

function exactBuffer(bytes) {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer;
}

function senderContext(stream) {
  let ctx = senderContexts.get(stream);
  if (!ctx) {
    const { slot, generation, step, suite, baseKey } = senderKey;
    ctx = SenderContext.create({ suite, baseKey, kid: encodeKid({ slot, stream, generation, step }) });
    senderContexts.set(stream, ctx);
  }
  return ctx;
}

async function encrypt(frame, controller, state) {
  if (state.held) {
    probe(frame, controller, state);
    return;
  }
  if (state.kind === 'video' && !startsAtKeyframe(frame, state)) {
    state.heldFrames += 1;
    return;
  }
  if (!senderKey) {
    state.dropped += 1;
    return;
  }
  try {
    const ctx = await senderContext(state.stream);
    const wire = await ctx.encryptFrame(codecOf(frame, state), new Uint8Array(frame.data));
    frame.data = exactBuffer(wire);
    state.frames += 1;
    controller.enqueue(frame);
  } catch (err) {
    state.dropped += 1;
    state.lastError = err?.code ?? String(err);
  }
}

/** The KID fields of an encrypted frame (after the codec's clear prefix), or null. */
function kidOf(frame, state) {
  const data = new Uint8Array(frame.data);
  const prefix = state.kind === 'audio' ? 1 : data.length > 0 && (data[0] & 1) === 0 ? 10 : 3;
  try {
    return decodeKid(decodeHeader(data.subarray(prefix)).kid);
  } catch {
    return null;
  }
}

/** The counts of `slot`; past {@link MAX_COUNTED_SLOTS} a new slot gets a throwaway record. */
function senderCounts(slot) {
  let c = bySlot.get(slot);
  if (!c) {
    c = { slot, decrypted: 0, failures: 0 };
    // Failing frames name whatever slot their header says: a flood of made-up ones must not
    // grow the map without bound (only their transform counts them then).
    if (bySlot.size >= MAX_COUNTED_SLOTS) return c;
    bySlot.set(slot, c);
  }
  return c;
}

function reportUnknownKid(fields) {
  // The KID names the sender whose key is missing.
  if (!fields) return;
  const now = performance.now();
  if ((unknownKidReported.get(fields.slot) ?? -Infinity) > now - 1000) return;
  unknownKidReported.set(fields.slot, now);
  self.postMessage({ type: 'unknown-kid', slot: fields.slot, generation: fields.generation });
}

/** `opened-by` when a receiver's KID slot changed (rate-limited; `stats` catches up the rest). */
function reportOpener(state) {
  if (state.lastSlot === state.reportedSlot) return;
  const now = performance.now();
  if (now - state.reportedAt < 200) return;
  state.reportedSlot = state.lastSlot;
  state.reportedAt = now;
  self.postMessage({ type: 'opened-by', id: state.id, slot: state.lastSlot });
}

async function decrypt(frame, controller, state) {
  if (frame.data.byteLength === 0) {
    // Nothing to decode and nothing to authenticate (the depacketizer can hand over an empty
    // audio frame): dropped, not counted as a decrypt failure.
    state.empty += 1;
    return;
  }
  try {
    const out = await store.decryptFrame(codecOf(frame, state), new Uint8Array(frame.data), performance.now());
    frame.data = exactBuffer(out.frame);
    recordPlaintext(out.frame);
    state.frames += 1;
    state.lastSlot = out.slot;
    state.lastGeneration = out.generation;
    senderCounts(out.slot).decrypted += 1;
    controller.enqueue(frame);
    reportOpener(state);
  } catch (err) {
    state.failures += 1;
    state.lastError = err?.code ?? String(err);
    const fields = kidOf(frame, state);
    if (fields) senderCounts(fields.slot).failures += 1;
    // No key, or the sender ratcheted beyond the look-ahead: the page asks for the key.
    if (err?.code === 'unknown_kid' || err?.code === 'ratchet_out_of_range') reportUnknownKid(fields);
  }
}

function attach(readable, writable, options, transformer) {
  const state = newState(options, transformer);
  transforms.set(state.id, state);
  const run = state.side === 'send' ? encrypt : decrypt;
  readable
    .pipeThrough(new TransformStream({ transform: (frame, controller) => run(frame, controller, state) }))
    .pipeTo(writable)
    .catch((err) => {
      state.lastError = `pipe closed: ${err?.message ?? err}`;
    })
    .finally(() => transforms.delete(state.id));
}

function requestKeyframes(side, filter = () => true) {
  for (const state of transforms.values()) {
    if (state.side !== side || state.kind !== 'video' || !state.transformer || !filter(state)) continue;
    const t = state.transformer;
    const call = side === 'send' ? t.generateKeyFrame : t.sendKeyFrameRequest;
    if (typeof call !== 'function') continue;
    state.keyframesRequested += 1;
    Promise.resolve()
      .then(() => call.call(t))
      .catch(() => {});
  }
}

function stats() {
  const list = [...transforms.values()].map(({ transformer: _t, reportedSlot: _s, reportedAt: _a, ...rest }) => rest);
  const totals = { encrypted: 0, decrypted: 0, failures: 0, dropped: 0, keyChanges };
  for (const s of list) {
    if (s.side === 'send') totals.encrypted += s.frames;
    else totals.decrypted += s.frames;
    totals.failures += s.failures;
    totals.dropped += s.dropped;
  }
  return { type: 'stats', transforms: list, totals, senders: [...bySlot.values()].map((c) => ({ ...c })) };
}

self.addEventListener('rtctransform', (event) => {
  const t = event.transformer;
  attach(t.readable, t.writable, t.options ?? {}, t);
});

self.addEventListener('message', (event) => {
  const msg = event.data ?? {};
  switch (msg.type) {
    case 'stream':
      attach(msg.readable, msg.writable, msg.options ?? {}, null);
      break;
    case 'sender-key':
      senderKey = { slot: msg.slot, generation: msg.generation, step: msg.step, suite: msg.suite, baseKey: msg.baseKey };
      senderContexts = new Map();
      keyChanges += 1;
      requestKeyframes('send');
      break;
    case 'receiver-key': {
      const now = performance.now();
      try {
        store.addKey(msg, now);
      } catch (err) {
        self.postMessage({ type: 'error', message: `receiver key refused: ${err?.code ?? err}` });
        break;
      }
      keyChanges += 1;
      unknownKidReported.delete(msg.slot);
      // A decoder that missed frames under an unknown key needs a keyframe under the new one.
      requestKeyframes('recv', (s) => s.lastSlot === null || s.lastSlot === msg.slot || s.failures > 0);
      break;
    }
    case 'release': {
      const state = transforms.get(String(msg.id));
      if (!state || state.side !== 'send' || !state.held) break;
      state.held = false;
      if (state.kind === 'video') {
        state.started = new Set();
        requestKeyframes('send', (s) => s === state);
      }
      break;
    }
    case 'remove-sender':
      store.removeSender(msg.slot);
      bySlot.delete(msg.slot);
      // Its frames no longer open: nothing is attributed to it any more.
      for (const s of transforms.values()) {
        if (s.side === 'recv' && s.lastSlot === msg.slot) s.lastSlot = s.reportedSlot = null;
      }
      break;
    case 'stats':
      self.postMessage(stats());
      break;
    case 'record-plaintext':
      plaintextHashes = [];
      plaintextLimit = Math.max(0, Math.min(100_000, Number(msg.limit) || 0));
      break;
    case 'plaintext-hashes':
      self.postMessage({ type: 'plaintext-hashes', hashes: (plaintextHashes ?? []).filter(Boolean) });
      break;
    default:
      break;
  }
});

setInterval(() => {
  store.prune(performance.now());
  self.postMessage(stats());
}, 1000);
