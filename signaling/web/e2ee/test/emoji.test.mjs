// The emoji sequence (docs/e2ee.md §4.1): the vectors of e2ee-frames/tests/data/emoji-v1.json
// (made with Python's hashlib/hmac, checked by the Rust crate too), symmetry and sensitivity.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromHex } from '../bytes.mjs';
import { EMOJI_TABLE, emojiSequence, pairVerification, SYMBOLS_PER_HALF } from '../emoji.mjs';
import { safetyNumber } from '../verification.mjs';
import { readRepoJson, rejectsWithCode } from './helpers.mjs';

const vectors = readRepoJson('e2ee-frames/tests/data/emoji-v1.json');

test('emoji_sequence_matches_the_vectors', async () => {
  assert.deepEqual(EMOJI_TABLE.map((s) => ({ emoji: s.emoji, word: s.word })), vectors.table);
  assert.ok(vectors.cases.length >= 3);
  for (const c of vectors.cases) {
    const a = { device: c.a.device, identityKey: fromHex(c.a.identity_key) };
    const b = { device: c.b.device, identityKey: fromHex(c.b.identity_key) };
    const got = await pairVerification(a, b);
    assert.equal(got.safetyNumber, c.safety_number);
    assert.equal(await safetyNumber(a, b), c.safety_number);
    assert.deepEqual(got.emoji.indices, c.indices, c.a.device);
    assert.equal(got.emoji.emoji, c.emoji);
    assert.equal(got.emoji.words, c.words);
  }
});

test('emoji_sequence_is_the_same_from_both_sides', async () => {
  const a = { device: 'dev-A', identityKey: new Uint8Array(32).fill(0x11) };
  const b = { device: 'dev-B', identityKey: new Uint8Array(32).fill(0x22) };
  const ab = await emojiSequence(a, b);
  assert.deepEqual(await emojiSequence(b, a), ab);
  assert.equal(ab.indices.length, 2 * SYMBOLS_PER_HALF);
  assert.ok(ab.indices.every((i) => Number.isInteger(i) && i >= 0 && i < 64));
});

test('different_identity_keys_give_a_different_sequence', async () => {
  const a = { device: 'dev-A', identityKey: new Uint8Array(32).fill(0x11) };
  const b = { device: 'dev-B', identityKey: new Uint8Array(32).fill(0x22) };
  const seq = (await emojiSequence(a, b)).indices;
  const aHalf = (await emojiSequence(a, a)).indices.slice(0, SYMBOLS_PER_HALF).join();
  const halves = (s) => [s.slice(0, SYMBOLS_PER_HALF).join(), s.slice(SYMBOLS_PER_HALF).join()];
  for (const flip of [0, 17, 31]) {
    const forged = Uint8Array.from(b.identityKey);
    forged[flip] ^= 1;
    const other = (await emojiSequence(a, { ...b, identityKey: forged })).indices;
    assert.notDeepEqual(other, seq, `flipped byte ${flip}`);
    // A's own 8 symbols stay; the impostor changes only B's.
    assert.ok(halves(seq).includes(aHalf) && halves(other).includes(aHalf));
  }
  assert.notDeepEqual((await emojiSequence(a, { ...b, device: 'dev-C' })).indices, seq);
  await rejectsWithCode(emojiSequence(a, { ...b, identityKey: new Uint8Array(31) }), 'bad_key');
  await rejectsWithCode(emojiSequence(a, { ...b, device: 'bad id' }), 'bad_device_id');
});
