// The receiver key store (docs/e2ee.md §1.3): bounded ratchet look-ahead, forward secrecy with
// a 2 s grace for the previous step, per-KID replay window moved only after authentication,
// generation eviction; and the sender context's counter rules.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { U64_MAX } from '../bytes.mjs';
import { encodeKid, Stream } from '../kid.mjs';
import { SenderContext } from '../media.mjs';
import { ReceiverKeyStore, ReplayWindow } from '../receiver.mjs';
import { decodeHeader } from '../sframe-header.mjs';
import { ratchetBaseKeyBy, SframeKey } from '../sframe.mjs';
import { flipBit, rejectsWithCode, seededRandom } from './helpers.mjs';

const SUITE = 5;
const SLOT = 12;

/** A sender for (SLOT, generation, step, stream), its base key ratcheted `step` times from `baseKey`. */
async function sender(baseKey, { generation = 1, step = 0, stream = Stream.CAMERA, counter = 0n, suite = SUITE } = {}) {
  const kid = encodeKid({ slot: SLOT, stream, generation, step });
  return SenderContext.create({ suite, baseKey: await ratchetBaseKeyBy(suite, baseKey, step), kid, counter });
}

function frame(rng) {
  const f = rng.bytes(60);
  f[0] |= 1; // VP8 delta frame
  return f;
}

describe('receiver key store', () => {
  test('ratchet look-ahead: steps s..=s+16 accepted by ratcheting forward, s+17 refused', async () => {
    const rng = seededRandom(10);
    const baseKey = rng.bytes(32);
    for (const [ahead, ok] of [[0, true], [1, true], [16, true], [17, false], [40, false]]) {
      const store = new ReceiverKeyStore();
      store.addKey({ slot: SLOT, generation: 1, step: 3, suite: SUITE, baseKey: await ratchetBaseKeyBy(SUITE, baseKey, 3) }, 0);
      const s = await sender(baseKey, { step: 3 + ahead });
      const wire = await s.encryptFrame('vp8', frame(rng));
      if (ok) assert.equal((await store.decryptFrame('vp8', wire, 0)).step, 3 + ahead);
      else await rejectsWithCode(store.decryptFrame('vp8', wire, 0), 'ratchet_out_of_range', `+${ahead}`);
    }
  });

  test('forward secrecy: once a later step authenticated, earlier steps are refused, the previous one after 2 s', async () => {
    const rng = seededRandom(11);
    const baseKey = rng.bytes(32);
    const store = new ReceiverKeyStore();
    store.addKey({ slot: SLOT, generation: 1, step: 0, suite: SUITE, baseKey }, 0);
    const s0 = await sender(baseKey, { step: 0 });
    const s1 = await sender(baseKey, { step: 1 });
    const s3 = await sender(baseKey, { step: 3 });
    await store.decryptFrame('vp8', await s0.encryptFrame('vp8', frame(rng)), 1000);
    // Frames of step 1 are prepared before the receiver moves to step 3.
    const lateStep1 = await s1.encryptFrame('vp8', frame(rng));
    await store.decryptFrame('vp8', await s3.encryptFrame('vp8', frame(rng)), 1000);
    // Previous step (0) still accepted within 2 s; step 1 (skipped, below current) refused.
    await store.decryptFrame('vp8', await s0.encryptFrame('vp8', frame(rng)), 2999);
    await rejectsWithCode(store.decryptFrame('vp8', lateStep1, 1500), 'key_expired', 'skipped step');
    await rejectsWithCode(store.decryptFrame('vp8', await s0.encryptFrame('vp8', frame(rng)), 3000), 'key_expired', 'grace over');
    // The current step keeps working.
    await store.decryptFrame('vp8', await s3.encryptFrame('vp8', frame(rng)), 3000);
  });

  test('a forged frame at a later step does not advance the ratchet', async () => {
    const rng = seededRandom(12);
    const baseKey = rng.bytes(32);
    const store = new ReceiverKeyStore();
    store.addKey({ slot: SLOT, generation: 1, step: 0, suite: SUITE, baseKey }, 0);
    const s5 = await sender(baseKey, { step: 5 });
    const forged = flipBit(await s5.encryptFrame('vp8', frame(rng)), 8 * 50);
    await rejectsWithCode(store.decryptFrame('vp8', forged, 0), 'auth_failed');
    const s0 = await sender(baseKey, { step: 0 });
    // Much later: step 0 still current, so no grace period applies and it is accepted.
    await store.decryptFrame('vp8', await s0.encryptFrame('vp8', frame(rng)), 60_000);
  });

  test('replay window: duplicates refused, reordering within 128 accepted once, older refused', async () => {
    const rng = seededRandom(13);
    const baseKey = rng.bytes(32);
    const store = new ReceiverKeyStore();
    store.addKey({ slot: SLOT, generation: 1, step: 0, suite: SUITE, baseKey }, 0);
    const s = await sender(baseKey);
    const wires = [];
    for (let i = 0; i < 300; i++) wires.push(await s.encryptFrame('vp8', frame(rng)));
    await store.decryptFrame('vp8', wires[200], 0);
    await rejectsWithCode(store.decryptFrame('vp8', wires[200], 0), 'replay', 'duplicate');
    await store.decryptFrame('vp8', wires[72], 0); // 200 - 128: the oldest still in the window
    await rejectsWithCode(store.decryptFrame('vp8', wires[72], 0), 'replay', 'duplicate in window');
    await rejectsWithCode(store.decryptFrame('vp8', wires[71], 0), 'replay', 'below window');
    await store.decryptFrame('vp8', wires[150], 0);
    await store.decryptFrame('vp8', wires[299], 0);
    await rejectsWithCode(store.decryptFrame('vp8', wires[170], 0), 'replay', 'now below the moved window');
    await store.decryptFrame('vp8', wires[171], 0);
  });

  test('replay window moves only after authentication (a forged high counter changes nothing)', async () => {
    const rng = seededRandom(14);
    const baseKey = rng.bytes(32);
    const store = new ReceiverKeyStore();
    store.addKey({ slot: SLOT, generation: 1, step: 0, suite: SUITE, baseKey }, 0);
    const high = await sender(baseKey, { counter: 1_000_000n });
    const forged = flipBit(await high.encryptFrame('vp8', frame(rng)), 8 * 40);
    await rejectsWithCode(store.decryptFrame('vp8', forged, 0), 'auth_failed');
    const s = await sender(baseKey);
    await store.decryptFrame('vp8', await s.encryptFrame('vp8', frame(rng)), 0);
  });

  test('replay window is per KID: streams of one sender have independent counters', async () => {
    const rng = seededRandom(15);
    const baseKey = rng.bytes(32);
    const store = new ReceiverKeyStore();
    store.addKey({ slot: SLOT, generation: 1, step: 0, suite: SUITE, baseKey }, 0);
    const camera = await sender(baseKey, { stream: Stream.CAMERA });
    const audio = await sender(baseKey, { stream: Stream.AUDIO });
    const a = await store.decryptFrame('vp8', await camera.encryptFrame('vp8', frame(rng)), 0);
    const b = await store.decryptFrame('opus', await audio.encryptFrame('opus', rng.bytes(40)), 0);
    assert.equal(a.ctr, 0n);
    assert.equal(b.ctr, 0n);
    assert.notEqual(a.kid, b.kid);
  });

  test('concurrent delivery of the same frame: exactly one succeeds', async () => {
    const rng = seededRandom(16);
    const baseKey = rng.bytes(32);
    const store = new ReceiverKeyStore();
    store.addKey({ slot: SLOT, generation: 1, step: 0, suite: SUITE, baseKey }, 0);
    const wire = await (await sender(baseKey)).encryptFrame('vp8', frame(rng));
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => store.decryptFrame('vp8', wire, 0)));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results.filter((x) => x.status === 'rejected')) assert.equal(r.reason.code, 'replay');
  });

  test('generations: at most 3 kept; older evicted 10 s after a newer one authenticated', async () => {
    const rng = seededRandom(17);
    const keys = [0, 1, 2, 3, 4].map(() => rng.bytes(32));
    const store = new ReceiverKeyStore();
    for (const g of [1, 2, 3]) assert.ok(store.addKey({ slot: SLOT, generation: g, step: 0, suite: SUITE, baseKey: keys[g] }, 0));
    const senders = await Promise.all([1, 2, 3, 4].map((g) => sender(keys[g], { generation: g })));
    const g1frame = await senders[0].encryptFrame('vp8', frame(rng));
    assert.ok(store.addKey({ slot: SLOT, generation: 4, step: 0, suite: SUITE, baseKey: keys[4] }, 0));
    await rejectsWithCode(store.decryptFrame('vp8', g1frame, 0), 'unknown_kid', 'oldest evicted by the 4th');
    assert.equal(store.addKey({ slot: SLOT, generation: 1, step: 0, suite: SUITE, baseKey: keys[1] }, 0), false, 'too old to add');
    assert.equal(store.generationCount, 3);
    // Generation 3 authenticates its first frame at t=5 s: 2 retires at t=15 s, 4 is newer and stays.
    await store.decryptFrame('vp8', await senders[1].encryptFrame('vp8', frame(rng)), 1000);
    await store.decryptFrame('vp8', await senders[2].encryptFrame('vp8', frame(rng)), 5000);
    await store.decryptFrame('vp8', await senders[1].encryptFrame('vp8', frame(rng)), 14_999);
    await rejectsWithCode(store.decryptFrame('vp8', await senders[1].encryptFrame('vp8', frame(rng)), 15_000), 'unknown_kid', 'retired');
    await store.decryptFrame('vp8', await senders[3].encryptFrame('vp8', frame(rng)), 15_000);
    await store.decryptFrame('vp8', await senders[2].encryptFrame('vp8', frame(rng)), 15_001);
    store.prune(30_000);
    // Generation 4 authenticated at 15 s, so 3 retires at 25 s.
    assert.equal(store.generationCount, 1);
  });

  test('addKey: a lower step than held is refused, a higher one replaces it with a grace for the old', async () => {
    const rng = seededRandom(18);
    const baseKey = rng.bytes(32);
    const store = new ReceiverKeyStore();
    store.addKey({ slot: SLOT, generation: 1, step: 2, suite: SUITE, baseKey: await ratchetBaseKeyBy(SUITE, baseKey, 2) }, 0);
    assert.equal(store.addKey({ slot: SLOT, generation: 1, step: 1, suite: SUITE, baseKey: await ratchetBaseKeyBy(SUITE, baseKey, 1) }, 0), false);
    assert.ok(store.addKey({ slot: SLOT, generation: 1, step: 4, suite: SUITE, baseKey: await ratchetBaseKeyBy(SUITE, baseKey, 4) }, 100));
    await store.decryptFrame('vp8', await (await sender(baseKey, { step: 2 })).encryptFrame('vp8', frame(rng)), 2099);
    await rejectsWithCode(store.decryptFrame('vp8', await (await sender(baseKey, { step: 2 })).encryptFrame('vp8', frame(rng)), 2100), 'key_expired');
    await store.decryptFrame('vp8', await (await sender(baseKey, { step: 4 })).encryptFrame('vp8', frame(rng)), 2100);
  });

  test('addKey of a key already held (re-delivered envelope) keeps the replay windows', async () => {
    const rng = seededRandom(22);
    const baseKey = rng.bytes(32);
    const store = new ReceiverKeyStore();
    store.addKey({ slot: SLOT, generation: 1, step: 0, suite: SUITE, baseKey }, 0);
    const s = await sender(baseKey);
    const wire = await s.encryptFrame('vp8', frame(rng));
    await store.decryptFrame('vp8', wire, 0);
    assert.ok(store.addKey({ slot: SLOT, generation: 1, step: 0, suite: SUITE, baseKey: Uint8Array.from(baseKey) }, 10));
    await rejectsWithCode(store.decryptFrame('vp8', wire, 20), 'replay');
    // Advancing by envelope keeps the old step's windows for its grace period too.
    assert.ok(store.addKey({ slot: SLOT, generation: 1, step: 2, suite: SUITE, baseKey: await ratchetBaseKeyBy(SUITE, baseKey, 2) }, 30));
    await rejectsWithCode(store.decryptFrame('vp8', wire, 40), 'replay');
    await store.decryptFrame('vp8', await s.encryptFrame('vp8', frame(rng)), 40);
  });

  test('unknown sender, bad KID, removed sender and bad arguments give their codes', async () => {
    const rng = seededRandom(19);
    const baseKey = rng.bytes(32);
    const store = new ReceiverKeyStore();
    store.addKey({ slot: SLOT, generation: 1, step: 0, suite: SUITE, baseKey }, 0);
    const other = await SenderContext.create({ suite: SUITE, baseKey, kid: encodeKid({ slot: SLOT + 1, stream: 1, generation: 1, step: 0 }) });
    await rejectsWithCode(store.decryptFrame('vp8', await other.encryptFrame('vp8', frame(rng)), 0), 'unknown_kid');
    const wide = await SenderContext.create({ suite: SUITE, baseKey, kid: 1n << 40n });
    await rejectsWithCode(store.decrypt(await wide.encrypt(rng.bytes(10)), null, 0), 'bad_kid');
    const mine = await sender(baseKey);
    const wire = await mine.encryptFrame('vp8', frame(rng));
    store.removeSender(SLOT);
    await rejectsWithCode(store.decryptFrame('vp8', wire, 0), 'unknown_kid', 'sender removed');
    await rejectsWithCode(() => store.addKey({ slot: 4096, generation: 0, step: 0, suite: 5, baseKey }, 0), 'invalid_argument');
    await rejectsWithCode(() => store.addKey({ slot: 1, generation: 0, step: 0, suite: 9, baseKey }, 0), 'unsupported_suite');
    await rejectsWithCode(() => store.addKey({ slot: 1, generation: 0, step: 0, suite: 5, baseKey: new Uint8Array(0) }, 0), 'bad_key');
    await rejectsWithCode(() => store.decryptFrame('vp8', wire, Number.NaN), 'invalid_argument');
    await rejectsWithCode(() => store.decryptFrame('h264', wire, 0), 'unsupported_codec');
  });

  test('ReplayWindow: random order of 2000 counters; each accepted at most once, never below the window', () => {
    const rng = seededRandom(20);
    const w = new ReplayWindow(128);
    const seen = new Set();
    let highest = -1;
    for (let i = 0; i < 2000; i++) {
      const ctr = Math.max(0, highest + rng.int(40) - 30);
      const ok = w.accepts(BigInt(ctr));
      const expected = !seen.has(ctr) && (highest < 0 || ctr >= highest - 128);
      assert.equal(ok, expected, `ctr ${ctr} highest ${highest}`);
      if (ok) {
        w.commit(BigInt(ctr));
        seen.add(ctr);
        highest = Math.max(highest, ctr);
      }
    }
  });
});

describe('sender context', () => {
  test('counters start at 0, grow by one and never repeat, even for concurrent calls', async () => {
    const s = await SenderContext.create({ baseKey: new Uint8Array(32), kid: 5n });
    const rng = seededRandom(21);
    const wires = await Promise.all(Array.from({ length: 200 }, () => s.encryptFrame('opus', rng.bytes(30))));
    const ctrs = wires.map((w) => decodeHeader(w.subarray(1)).ctr);
    assert.deepEqual(ctrs, Array.from({ length: 200 }, (_, i) => BigInt(i)));
    assert.equal(s.nextCounter, 200n);
  });

  test('refuses to wrap: after counter 2^64-1 every call is counter_exhausted', async () => {
    const key = await SframeKey.derive(SUITE, new Uint8Array(32), 9n);
    const s = new SenderContext(key, U64_MAX - 1n);
    const a = await s.encrypt(Uint8Array.of(1));
    const b = await s.encrypt(Uint8Array.of(2));
    assert.equal(decodeHeader(a).ctr, U64_MAX - 1n);
    assert.equal(decodeHeader(b).ctr, U64_MAX);
    await rejectsWithCode(() => s.encrypt(Uint8Array.of(3)), 'counter_exhausted');
    await rejectsWithCode(() => s.encryptFrame('vp8', Uint8Array.of(3)), 'counter_exhausted');
    assert.equal(s.nextCounter, null);
  });

  test('bad arguments are typed errors and do not consume a counter', async () => {
    const s = await SenderContext.create({ baseKey: new Uint8Array(32), kid: 5n });
    await rejectsWithCode(() => s.encryptFrame('h264', new Uint8Array(10)), 'unsupported_codec');
    await rejectsWithCode(() => s.encryptFrame('vp8', 'frame'), 'invalid_argument');
    await rejectsWithCode(() => s.encrypt([1, 2]), 'invalid_argument');
    await rejectsWithCode(() => s.encrypt(Uint8Array.of(1), 'meta'), 'invalid_argument');
    assert.equal(s.nextCounter, 0n);
    await rejectsWithCode(() => new SenderContext({}, 0n), 'invalid_argument');
    await rejectsWithCode(SenderContext.create({ baseKey: new Uint8Array(32), kid: -1 }), 'invalid_argument');
  });
});
