// Property-style tests (seeded, bounded loops) over SFrame and media frames: round trips,
// every flipped bit refused, typed errors for every malformed input, a 0..2048 length sweep.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { concat, U64_MAX } from '../bytes.mjs';
import { E2eeError } from '../errors.mjs';
import { encodeKid, Stream } from '../kid.mjs';
import { clearPrefixLength, decryptMediaFrameWithKey, encryptMediaFrame } from '../media.mjs';
import { ReceiverKeyStore } from '../receiver.mjs';
import { decodeHeader, encodeHeader } from '../sframe-header.mjs';
import { SframeKey } from '../sframe.mjs';
import { ALL_SUITES } from '../suites.mjs';
import { flipBit, rejectsTyped, rejectsWithCode, seededRandom } from './helpers.mjs';

function randomU64(rng) {
  // Mix magnitudes so every header length 1..9 bytes shows up.
  const bits = BigInt(rng.int(64));
  return BigInt.asUintN(64, (BigInt(rng.int(0xffffffff)) << 32n) | BigInt(rng.int(0xffffffff))) & ((1n << bits) - 1n);
}

describe('sframe properties', () => {
  test('header: encode/decode round trip for random 64-bit KID and CTR (2000 cases)', () => {
    const rng = seededRandom(1);
    for (let i = 0; i < 2000; i++) {
      const kid = randomU64(rng);
      const ctr = randomU64(rng);
      const h = encodeHeader(kid, ctr);
      const d = decodeHeader(concat(h, rng.bytes(rng.int(4))));
      assert.equal(d.kid, kid);
      assert.equal(d.ctr, ctr);
      assert.equal(d.length, h.length);
    }
  });

  test('sframe: round trip with random keys, KIDs, counters, metadata and plaintexts, every suite', async () => {
    const rng = seededRandom(2);
    for (let i = 0; i < 100; i++) {
      const suite = ALL_SUITES[i % ALL_SUITES.length];
      const key = await SframeKey.derive(suite, rng.bytes(1 + rng.int(63)), randomU64(rng));
      const ctr = randomU64(rng);
      const metadata = rng.bytes(rng.int(20));
      const pt = rng.bytes(rng.int(700));
      const ct = await key.encrypt(ctr, metadata, pt);
      const opened = await key.decrypt(ct, metadata);
      assert.deepEqual(opened.plaintext, pt);
      assert.equal(opened.ctr, ctr);
    }
  });

  test('media: round trip through the receiver key store for random frames of every codec', async () => {
    const rng = seededRandom(3);
    const store = new ReceiverKeyStore();
    const baseKey = rng.bytes(32);
    for (const suite of ALL_SUITES) store.addKey({ slot: suite, generation: 1, step: 0, suite, baseKey }, 0);
    const ctrs = new Map();
    for (let i = 0; i < 300; i++) {
      const suite = rng.pick(ALL_SUITES);
      const codec = rng.pick(['vp8', 'vp9', 'opus']);
      const stream = codec === 'opus' ? Stream.AUDIO : Stream.CAMERA;
      // Lengths include frames shorter than their prefix (0..9 bytes) and longer ones.
      const frame = rng.bytes(rng.next() < 0.3 ? rng.int(12) : rng.int(1500));
      const kid = encodeKid({ slot: suite, stream, generation: 1, step: 0 });
      const ctr = ctrs.get(kid) ?? 0n;
      ctrs.set(kid, ctr + 1n);
      const key = await SframeKey.derive(suite, baseKey, kid);
      const wire = await encryptMediaFrame(key, ctr, codec, frame);
      const p = clearPrefixLength(codec, frame);
      assert.deepEqual(wire.subarray(0, p), frame.subarray(0, p), 'prefix travels in clear');
      const got = await store.decryptFrame(codec, wire, i);
      assert.deepEqual(got.frame, frame, `codec ${codec} length ${frame.length} suite ${suite}`);
      assert.equal(got.prefixLength, p);
      assert.equal(got.ctr, ctr);
    }
  });

  test('every single flipped bit in prefix, header, ciphertext and tag is refused (every suite)', async () => {
    const rng = seededRandom(4);
    for (const suite of ALL_SUITES) {
      const baseKey = rng.bytes(32);
      const kid = encodeKid({ slot: 7, stream: Stream.CAMERA, generation: 2, step: 0 });
      const key = await SframeKey.derive(suite, baseKey, kid);
      const frame = rng.bytes(40);
      frame[0] &= 0xfe; // VP8 keyframe: 10-byte prefix
      const wire = await encryptMediaFrame(key, 300n, 'vp8', frame);
      const headerLength = decodeHeader(wire.subarray(10)).length;
      // One store for all attempts: refused frames must leave no trace in it.
      const store = new ReceiverKeyStore();
      store.addKey({ slot: 7, generation: 2, step: 0, suite, baseKey }, 0);
      for (let bit = 0; bit < wire.length * 8; bit++) {
        const tampered = flipBit(wire, bit);
        const byte = bit >> 3;
        // Direct key: a flipped KID is unknown_kid; everything else must fail authentication
        // (or, for a flipped keyframe bit / header length bits, fail to parse).
        const direct = await rejectsTyped(() => decryptMediaFrameWithKey(key, 'vp8', tampered), `bit ${bit}`);
        assert.ok(direct, `suite ${suite} bit ${bit} (byte ${byte}) was accepted`);
        if (byte >= 10 + headerLength || (byte > 0 && byte < 10)) {
          assert.equal(direct.code, 'auth_failed', `suite ${suite} byte ${byte}`);
        }
        const viaStore = await rejectsTyped(() => store.decryptFrame('vp8', tampered, 0), `store bit ${bit}`);
        assert.ok(viaStore, `store accepted suite ${suite} bit ${bit}`);
      }
      // And the untampered frame still decrypts, in the store too (no replay state was moved).
      assert.deepEqual((await decryptMediaFrameWithKey(key, 'vp8', wire)).frame, frame);
      assert.deepEqual((await store.decryptFrame('vp8', wire, 0)).frame, frame);
    }
  });

  test('length sweep 0..2048: random bytes and every truncation give typed errors, never a throw of another kind', async () => {
    const rng = seededRandom(5);
    const baseKey = rng.bytes(32);
    const store = new ReceiverKeyStore();
    store.addKey({ slot: 1, generation: 0, step: 0, suite: 5, baseKey }, 0);
    const key = await SframeKey.derive(5, baseKey, encodeKid({ slot: 1, stream: 1, generation: 0, step: 0 }));
    const valid = await key.encrypt(0n, new Uint8Array(0), rng.bytes(2048));
    for (let n = 0; n <= 2048; n++) {
      const noise = rng.bytes(n);
      // Half the inputs start with a valid header so the sweep reaches the AEAD, not only the parser.
      if (n > 2 && n % 2 === 0) noise.set(encodeHeader(key.kid, BigInt(n)).subarray(0, Math.min(n, 5)));
      for (const input of [noise, valid.subarray(0, n)]) {
        assert.ok(await rejectsTyped(() => key.decrypt(input, new Uint8Array(0))), `key.decrypt len ${n}`);
        assert.ok(await rejectsTyped(() => store.decrypt(input, new Uint8Array(0), 0)), `store.decrypt len ${n}`);
        assert.ok(await rejectsTyped(() => store.decryptFrame(rng.pick(['vp8', 'opus', 'vp9']), input, 0)), `decryptFrame len ${n}`);
        assert.doesNotThrow(() => {
          try {
            decodeHeader(input);
          } catch (err) {
            if (!(err instanceof E2eeError)) throw err;
          }
        });
      }
    }
  });

  test('bad arguments give invalid_argument or the specific code, never an untyped error', async () => {
    const key = await SframeKey.derive(5, new Uint8Array(32), 1n);
    await rejectsWithCode(() => encodeHeader(-1, 0), 'invalid_argument');
    await rejectsWithCode(() => encodeHeader(0, U64_MAX + 1n), 'invalid_argument');
    await rejectsWithCode(() => encodeHeader(0.5, 0), 'invalid_argument');
    await rejectsWithCode(() => decodeHeader('abc'), 'invalid_argument');
    await rejectsWithCode(() => decodeHeader(new Uint8Array(0)), 'truncated_header');
    await rejectsWithCode(() => decodeHeader(Uint8Array.of(0x80)), 'truncated_header');
    await rejectsWithCode(() => decodeHeader(Uint8Array.of(0x0f, 1, 2, 3, 4, 5, 6, 7)), 'truncated_header');
    await rejectsWithCode(key.encrypt(0n, null, 'text'), 'invalid_argument');
    await rejectsWithCode(key.encrypt(-1n, null, new Uint8Array(1)), 'invalid_argument');
    await rejectsWithCode(key.decrypt(encodeHeader(1n, 0n), null), 'truncated_ciphertext');
    await rejectsWithCode(key.decrypt(concat(encodeHeader(2n, 0n), new Uint8Array(16)), null), 'unknown_kid');
    await rejectsWithCode(key.decrypt(concat(encodeHeader(1n, 0n), new Uint8Array(16)), null), 'auth_failed');
    await rejectsWithCode(SframeKey.derive(6, new Uint8Array(32), 1n), 'unsupported_suite');
    await rejectsWithCode(SframeKey.derive(0, new Uint8Array(32), 1n), 'unsupported_suite');
    await rejectsWithCode(SframeKey.derive('5', new Uint8Array(32), 1n), 'unsupported_suite');
    await rejectsWithCode(SframeKey.derive(5, new Uint8Array(0), 1n), 'bad_key');
    await rejectsWithCode(SframeKey.derive(5, 'key', 1n), 'invalid_argument');
    await rejectsWithCode(SframeKey.fromKeyMaterial(4, 1n, new Uint8Array(15), new Uint8Array(12)), 'bad_key');
    await rejectsWithCode(() => clearPrefixLength('h264', new Uint8Array(10)), 'unsupported_codec');
    await rejectsWithCode(() => clearPrefixLength('AV1', new Uint8Array(10)), 'unsupported_codec');
    await rejectsWithCode(() => clearPrefixLength(42, new Uint8Array(10)), 'unsupported_codec');
    await rejectsWithCode(decryptMediaFrameWithKey(key, 'vp8', new Uint8Array(0)), 'truncated_frame');
  });
});
