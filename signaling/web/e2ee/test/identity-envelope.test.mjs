// Device identities, bundles (docs/e2ee.md §2) and key envelopes (§3): signatures, info/aad
// binding, the recipient/room/call/sender checks, and typed errors for malformed wire objects.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fromBase64Url, toBase64Url } from '../bytes.mjs';
import { createEnvelope, envelopeSignedMessage, openEnvelope, parseEnvelope } from '../envelope.mjs';
import { createBundle, generateDeviceIdentity, randomDeviceId, signWithIdentity, verifyBundle } from '../identity.mjs';
import { rejectsTyped, rejectsWithCode, seededRandom } from './helpers.mjs';

const alice = await generateDeviceIdentity({ deviceId: 'dev-alice' });
const bob = await generateDeviceIdentity({ deviceId: 'dev-bob' });
const mallory = await generateDeviceIdentity({ deviceId: 'dev-mallory' });
const [aliceBundle, bobBundle, malloryBundle] = await Promise.all([alice, bob, mallory].map(createBundle));
const baseKey = Uint8Array.from({ length: 32 }, (_, i) => i * 7);
const params = { room: 'standup', call: 'c-9a', slot: 3, generation: 7, step: 0, suite: 5 };

function flip(b64, byte = 0) {
  const bytes = fromBase64Url(b64);
  bytes[byte] ^= 0x01;
  return toBase64Url(bytes);
}

describe('device identity and bundles', () => {
  test('generated keys: non-extractable private keys, 32-byte public keys, default random device id', async () => {
    assert.equal(alice.identity.privateKey.extractable, false);
    assert.equal(alice.hpke.privateKey.extractable, false);
    assert.equal(alice.identity.publicKey.length, 32);
    assert.equal(alice.hpke.publicKey.length, 32);
    const anon = await generateDeviceIdentity();
    assert.match(anon.deviceId, /^[A-Za-z0-9_-]{22}$/);
    assert.notEqual(randomDeviceId(), randomDeviceId());
    // CryptoKeys are structured-cloneable, which is what IndexedDB stores.
    const cloned = structuredClone(alice);
    const sig = await signWithIdentity(cloned, Uint8Array.of(1));
    assert.equal(sig.length, 64);
  });

  test('bundle: wire form per spec, verifies, any changed field is refused', async () => {
    assert.deepEqual(Object.keys(aliceBundle).sort(), ['device', 'hpke_key', 'identity_key', 'sig', 'v']);
    assert.equal(aliceBundle.v, 1);
    assert.ok(!aliceBundle.sig.includes('='));
    const verified = await verifyBundle(aliceBundle);
    assert.equal(verified.device, 'dev-alice');
    assert.deepEqual(verified.hpkeKey, alice.hpke.publicKey);
    assert.deepEqual(await verifyBundle(JSON.stringify(aliceBundle)), verified);
    await rejectsWithCode(verifyBundle({ ...aliceBundle, device: 'dev-alicf' }), 'bad_signature', 'other device id');
    await rejectsWithCode(verifyBundle({ ...aliceBundle, hpke_key: bobBundle.hpke_key }), 'bad_signature', 'swapped HPKE key');
    await rejectsWithCode(verifyBundle({ ...aliceBundle, identity_key: bobBundle.identity_key }), 'bad_signature', 'swapped IK');
    for (let byte = 0; byte < 64; byte += 7) {
      await rejectsWithCode(verifyBundle({ ...aliceBundle, sig: flip(aliceBundle.sig, byte) }), 'bad_signature', `sig byte ${byte}`);
    }
  });

  test('bundle: malformed inputs give specific codes', async () => {
    await rejectsWithCode(verifyBundle({ ...aliceBundle, v: 2 }), 'unsupported_version');
    await rejectsWithCode(verifyBundle(null), 'malformed');
    await rejectsWithCode(verifyBundle('{not json'), 'malformed');
    await rejectsWithCode(verifyBundle([]), 'malformed');
    await rejectsWithCode(verifyBundle({ ...aliceBundle, device: 'has space' }), 'bad_device_id');
    await rejectsWithCode(verifyBundle({ ...aliceBundle, device: 'x'.repeat(65) }), 'bad_device_id');
    await rejectsWithCode(verifyBundle({ ...aliceBundle, device: 7 }), 'malformed');
    await rejectsWithCode(verifyBundle({ ...aliceBundle, sig: `${aliceBundle.sig}==` }), 'bad_base64');
    await rejectsWithCode(verifyBundle({ ...aliceBundle, sig: aliceBundle.sig.replace(/[-_]/g, '+') + 'A' }), ['bad_base64', 'malformed']);
    await rejectsWithCode(verifyBundle({ ...aliceBundle, hpke_key: toBase64Url(new Uint8Array(31)) }), 'malformed');
    const { sig: _sig, ...unsigned } = aliceBundle;
    await rejectsWithCode(verifyBundle(unsigned), 'malformed');
  });
});

describe('key envelopes', () => {
  test('create and open: base key and fields come back; wire form per spec', async () => {
    const env = await createEnvelope({ ...params, sender: alice, recipientBundle: bobBundle, baseKey });
    assert.deepEqual(Object.keys(env).sort(), ['call', 'ct', 'enc', 'generation', 'recipient', 'room', 'sender', 'sig', 'slot', 'step', 'suite', 'v']);
    assert.equal(fromBase64Url(env.enc).length, 32);
    assert.equal(fromBase64Url(env.ct).length, 48);
    assert.equal(fromBase64Url(env.sig).length, 64);
    const opened = await openEnvelope(JSON.parse(JSON.stringify(env)), { room: 'standup', call: 'c-9a', recipient: bob, senderBundle: aliceBundle });
    assert.deepEqual(opened.baseKey, baseKey);
    assert.deepEqual({ ...opened, baseKey: undefined }, { ...params, sender: 'dev-alice', recipient: 'dev-bob', baseKey: undefined });
    assert.deepEqual((await openEnvelope(JSON.stringify(env), { room: 'standup', call: 'c-9a', recipient: bob, senderBundle: aliceBundle })).baseKey, baseKey);
  });

  test('refusals: wrong recipient, room, call, sender; changed signed fields; tampered ct', async () => {
    const env = await createEnvelope({ ...params, sender: alice, recipientBundle: bobBundle, baseKey });
    const ctx = { room: 'standup', call: 'c-9a', recipient: bob, senderBundle: aliceBundle };
    await rejectsWithCode(openEnvelope(env, { ...ctx, recipient: mallory }), 'wrong_recipient');
    await rejectsWithCode(openEnvelope(env, { ...ctx, room: 'other' }), 'wrong_context');
    await rejectsWithCode(openEnvelope(env, { ...ctx, call: 'c-9b' }), 'wrong_context');
    await rejectsWithCode(openEnvelope(env, { ...ctx, senderBundle: malloryBundle }), 'wrong_sender');
    // Mallory relabels Alice's envelope as her own: her signature would be needed.
    await rejectsWithCode(openEnvelope({ ...env, sender: 'dev-mallory' }, { ...ctx, senderBundle: malloryBundle }), 'bad_signature');
    for (const [name, value] of [['slot', 4], ['generation', 8], ['step', 1], ['suite', 4], ['enc', flip(env.enc)], ['ct', flip(env.ct, 40)], ['sig', flip(env.sig, 63)]]) {
      // A later step with suite 5 means a 64-byte key, so the 48-byte ct no longer parses.
      const expected = name === 'step' ? 'malformed' : 'bad_signature';
      await rejectsWithCode(openEnvelope({ ...env, [name]: value }, ctx), expected, `changed ${name}`);
    }
    // A correctly signed envelope whose HPKE layer does not open (ct changed, then re-signed):
    // shows the AAD and the AEAD are checked after the signature.
    const f = parseEnvelope(env);
    for (const [name, value] of [['ct', flip(env.ct, 5)], ['enc', malloryBundle.hpke_key]]) {
      const changed = { ...env, [name]: value };
      const p = parseEnvelope(changed);
      changed.sig = toBase64Url(await signWithIdentity(alice, envelopeSignedMessage(f, p.enc, p.ct)));
      await rejectsWithCode(openEnvelope(changed, ctx), 'auth_failed', `re-signed with ${name} changed`);
    }
    // Sealed to Bob, opened by Mallory claiming Bob's device id: HPKE fails.
    await rejectsWithCode(openEnvelope(env, { ...ctx, recipient: { ...mallory, deviceId: 'dev-bob' } }), 'auth_failed');
  });

  test('create refuses bad parameters with typed errors', async () => {
    const ok = { ...params, sender: alice, recipientBundle: bobBundle, baseKey };
    await rejectsWithCode(createEnvelope({ ...ok, baseKey: new Uint8Array(31) }), 'bad_key');
    await rejectsWithCode(createEnvelope({ ...ok, slot: 4096 }), 'malformed');
    await rejectsWithCode(createEnvelope({ ...ok, step: 256 }), 'malformed');
    await rejectsWithCode(createEnvelope({ ...ok, suite: 6 }), 'unsupported_suite');
    await rejectsWithCode(createEnvelope({ ...ok, room: 'r'.repeat(70000) }), 'field_too_long');
    await rejectsWithCode(createEnvelope({ ...ok, recipientBundle: { ...bobBundle, sig: flip(bobBundle.sig) } }), 'bad_signature');
  });

  test('malformed wire objects (seeded mutations): always a typed error', async () => {
    const env = await createEnvelope({ ...params, sender: alice, recipientBundle: bobBundle, baseKey });
    const ctx = { room: 'standup', call: 'c-9a', recipient: bob, senderBundle: aliceBundle };
    const rng = seededRandom(40);
    const junk = [null, undefined, true, -1, 1.5, 2 ** 60, '', 'A', '====', '💥', [], {}, 'x'.repeat(100)];
    const keys = Object.keys(env);
    for (let i = 0; i < 300; i++) {
      const mutated = { ...env };
      for (let j = 0, n = 1 + rng.int(2); j < n; j++) {
        const k = rng.pick(keys);
        if (rng.next() < 0.2) delete mutated[k];
        else mutated[k] = rng.pick(junk);
      }
      const err = await rejectsTyped(() => openEnvelope(mutated, ctx), `mutation ${i}`);
      assert.ok(err, `mutation ${i} was accepted: ${JSON.stringify(mutated)}`);
    }
    for (const text of ['', '[', '"x"', '1', 'null', '{"v":1}']) {
      assert.ok(await rejectsTyped(() => openEnvelope(text, ctx)), `text ${text}`);
    }
  });
});
