// Media frames (docs/e2ee.md §1.2): the codec-aware clear prefix, passed as authenticated
// metadata, and frames shorter than their prefix.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { concat } from '../bytes.mjs';
import { decodeKid, encodeKid, keyIdOf } from '../kid.mjs';
import { clearPrefixLength, decryptMediaFrameWithKey, encryptMediaFrame, normalizeCodec } from '../media.mjs';
import { decodeHeader } from '../sframe-header.mjs';
import { SframeKey } from '../sframe.mjs';
import { ALL_SUITES } from '../suites.mjs';
import { rejectsWithCode, seededRandom } from './helpers.mjs';

const rng = seededRandom(30);
const keyframe = (n) => concat(Uint8Array.of(0x10), rng.bytes(n - 1)); // bit 0 clear
const delta = (n) => concat(Uint8Array.of(0x11), rng.bytes(n - 1)); // bit 0 set

test('clear prefix: VP8 keyframe 10, VP8 delta 3, Opus 1, VP9 0, shorter frames whole', () => {
  assert.equal(clearPrefixLength('vp8', keyframe(500)), 10);
  assert.equal(clearPrefixLength('vp8', delta(500)), 3);
  assert.equal(clearPrefixLength('opus', rng.bytes(60)), 1);
  assert.equal(clearPrefixLength('vp9', rng.bytes(60)), 0);
  assert.equal(clearPrefixLength('video/VP8', keyframe(4)), 4);
  assert.equal(clearPrefixLength('VP8', delta(2)), 2);
  assert.equal(clearPrefixLength('audio/opus', new Uint8Array(0)), 0);
  assert.equal(normalizeCodec('video/VP9'), 'vp9');
});

test('wire layout: prefix in clear, then the SFrame; the prefix is authenticated', async () => {
  for (const suite of ALL_SUITES) {
    const kid = encodeKid({ slot: 3, stream: 1, generation: 7, step: 0 });
    const key = await SframeKey.derive(suite, rng.bytes(32), kid);
    for (const [codec, frame, p] of [['vp8', keyframe(200), 10], ['vp8', delta(200), 3], ['opus', rng.bytes(90), 1], ['vp9', rng.bytes(90), 0]]) {
      const wire = await encryptMediaFrame(key, 77n, codec, frame);
      assert.deepEqual(wire.subarray(0, p), frame.subarray(0, p));
      const header = decodeHeader(wire.subarray(p));
      assert.equal(header.kid, BigInt(kid));
      assert.equal(header.ctr, 77n);
      assert.equal(wire.length, p + header.length + (frame.length - p) + key.suite.nt);
      // Same SFrame with the prefix as metadata.
      assert.deepEqual((await key.decrypt(wire.subarray(p), frame.subarray(0, p))).plaintext, frame.subarray(p));
      if (p > 0) {
        const changed = Uint8Array.from(wire);
        changed[p - 1] ^= 0x40;
        await rejectsWithCode(decryptMediaFrameWithKey(key, codec, changed), 'auth_failed', `${codec} prefix change`);
      }
    }
  }
});

test('frames shorter than their prefix: sent whole as prefix with an empty plaintext, and received', async () => {
  for (const suite of ALL_SUITES) {
    const key = await SframeKey.derive(suite, rng.bytes(32), 0x0102_0304n);
    const cases = [['vp8', keyframe(1)], ['vp8', keyframe(9)], ['vp8', delta(1)], ['vp8', delta(2)], ['opus', new Uint8Array(0)], ['vp8', new Uint8Array(0)]];
    for (const [codec, frame] of cases) {
      const wire = await encryptMediaFrame(key, 5n, codec, frame);
      const header = decodeHeader(wire.subarray(frame.length));
      assert.equal(wire.length, frame.length + header.length + key.suite.nt, 'empty plaintext');
      const got = await decryptMediaFrameWithKey(key, codec, wire);
      assert.deepEqual(got.frame, frame, `${codec} of ${frame.length} bytes, suite ${suite}`);
      assert.equal(got.prefixLength, frame.length);
    }
  }
});

test('KID layout: fields round trip, key id is kid >> 8, bits 40..63 and reserved streams refused', async () => {
  for (let i = 0; i < 500; i++) {
    const fields = { slot: rng.int(4095), stream: rng.int(3), generation: rng.int(65535), step: rng.int(255) };
    const kid = encodeKid(fields);
    assert.ok(kid < 2 ** 40);
    assert.deepEqual(decodeKid(kid), fields);
    assert.deepEqual(decodeKid(BigInt(kid)), fields);
    assert.equal(keyIdOf(kid), Math.floor(kid / 256));
    assert.equal(BigInt(kid), (BigInt(fields.generation) << 24n) | (BigInt(fields.slot) << 12n) | (BigInt(fields.stream) << 8n) | BigInt(fields.step));
  }
  assert.equal(encodeKid({ slot: 1, stream: 2, generation: 3, step: 4 }), (3 << 24) | (1 << 12) | (2 << 8) | 4);
  await rejectsWithCode(() => decodeKid(1n << 40n), 'bad_kid');
  await rejectsWithCode(() => decodeKid((1n << 64n) - 1n), 'bad_kid');
  await rejectsWithCode(() => decodeKid(-1), 'bad_kid');
  await rejectsWithCode(() => decodeKid('7'), 'bad_kid');
  await rejectsWithCode(() => decodeKid(4 << 8), 'bad_kid', 'reserved stream 4');
  await rejectsWithCode(() => decodeKid(15 << 8), 'bad_kid', 'reserved stream 15');
  for (const bad of [{ slot: 4096 }, { stream: 4 }, { stream: 16 }, { generation: 65536 }, { step: 256 }, { step: -1 }, { slot: 1.5 }]) {
    await rejectsWithCode(() => encodeKid({ slot: 0, stream: 0, generation: 0, step: 0, ...bad }), 'bad_kid', JSON.stringify(bad));
  }
});
