// Chat messages (docs/e2ee.md §6): the vectors of e2ee-frames/tests/data/chat-v1.json (made with
// Python's cryptography, checked by the Rust crate too), a round trip, and refusals.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fromHex, toHex } from '../bytes.mjs';
import { chatAad, deriveChatKey, MAX_CHAT_PLAINTEXT_BYTES, openChat, sealChat } from '../chat.mjs';
import { ratchetBaseKey } from '../sframe.mjs';
import { readRepoJson, rejectsWithCode } from './helpers.mjs';

const vectors = readRepoJson('e2ee-frames/tests/data/chat-v1.json');
const CTX = { room: 'standup', call: 'c-9aQ', sender: 'dev-A', slot: 3 };

describe('chat', () => {
  test('chat vectors: the JS twin matches the key, AAD and ciphertext of every case', async () => {
    assert.ok(vectors.cases.length >= 2);
    for (const c of vectors.cases) {
      const baseKey = fromHex(c.base_key);
      const ctx = { room: c.room, call: c.call, sender: c.sender, slot: Number(c.slot) };
      const at = { generation: Number(c.generation), step: Number(c.step) };
      assert.equal(toHex(await deriveChatKey(baseKey)), c.chat_key, `${c.sender} chat key`);
      assert.equal(toHex(chatAad(ctx, at.generation, at.step)), c.aad, `${c.sender} aad`);
      const sealed = await sealChat(baseKey, ctx, at, fromHex(c.plaintext), fromHex(c.nonce));
      assert.equal(toHex(Buffer.from(sealed.ct, 'base64url')), c.ct, `${c.sender} ct`);
      assert.equal(toHex(await openChat(baseKey, ctx, sealed)), c.plaintext);
    }
  });

  test('chat seals and opens; another generation, sender or a relabelled message fails', async () => {
    const gen7 = crypto.getRandomValues(new Uint8Array(32));
    const gen8 = crypto.getRandomValues(new Uint8Array(32));
    const sealed = await sealChat(gen7, CTX, { generation: 7, step: 0 }, 'Lunch at 1? ☕');
    assert.equal(new TextDecoder().decode(await openChat(gen7, CTX, sealed)), 'Lunch at 1? ☕');
    assert.ok(!JSON.stringify(sealed).includes('Lunch'));
    await rejectsWithCode(() => openChat(gen8, CTX, sealed), 'auth_failed', 'generation 8 key');
    await rejectsWithCode(() => openChat(gen7, { ...CTX, sender: 'dev-B' }, sealed), 'auth_failed', 'other sender');
    await rejectsWithCode(() => openChat(gen7, CTX, { ...sealed, generation: 8 }), 'auth_failed', 'relabelled');
    const step1 = await ratchetBaseKey(5, gen7);
    await rejectsWithCode(() => openChat(step1, CTX, sealed), 'auth_failed', 'ratcheted key');
  });

  test('chat over the size bound is refused before sealing', async () => {
    const key = new Uint8Array(32).fill(1);
    await rejectsWithCode(() => sealChat(key, CTX, { generation: 0, step: 0 }, 'x'.repeat(MAX_CHAT_PLAINTEXT_BYTES + 1)), 'invalid_argument', 'too long');
    const fits = await sealChat(key, CTX, { generation: 0, step: 0 }, 'x'.repeat(MAX_CHAT_PLAINTEXT_BYTES));
    assert.equal(Buffer.from(fits.ct, 'base64url').length, 4096);
  });
});
