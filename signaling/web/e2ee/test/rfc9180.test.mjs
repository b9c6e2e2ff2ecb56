// RFC 9180 Appendix A.1.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode)
// through the module's HPKE path, which key envelopes use with AES-256-GCM.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromHex, toHex } from '../bytes.mjs';
import {
  deriveX25519KeyPair,
  exportX25519PrivateKey,
  generateX25519KeyPair,
  HpkeAead,
  hpkeOpen,
  hpkeSeal,
  importX25519PrivateKey,
  setupBaseR,
  setupBaseS,
  x25519PublicKeyOf,
} from '../hpke.mjs';
import { readRepoJson, rejectsWithCode } from './helpers.mjs';

const v = readRepoJson('e2ee-frames/tests/data/hpke-rfc9180-a1-1-base.json');
const { setup } = v;
const info = fromHex(setup.info);

test('rfc9180 A.1.1: suite is X25519 / HKDF-SHA256 / AES-128-GCM base mode', () => {
  assert.deepEqual([setup.mode, setup.kem_id, setup.kdf_id, setup.aead_id], [0, 0x20, 1, HpkeAead.AES_128_GCM]);
});

test('rfc9180 A.1.1: DeriveKeyPair gives skEm/pkEm and skRm/pkRm', async () => {
  const e = await deriveX25519KeyPair(fromHex(setup.ikmE), { extractable: true });
  const r = await deriveX25519KeyPair(fromHex(setup.ikmR), { extractable: true });
  assert.equal(toHex(e.privateKeyBytes), setup.skEm);
  assert.equal(toHex(e.publicKey), setup.pkEm);
  assert.equal(toHex(r.privateKeyBytes), setup.skRm);
  assert.equal(toHex(r.publicKey), setup.pkRm);
  assert.equal(toHex(await exportX25519PrivateKey(r.privateKey)), setup.skRm);
});

test('rfc9180 A.1.1: raw private key import (PKCS#8 wrapping) gives the public key', async () => {
  const sk = await importX25519PrivateKey(fromHex(setup.skRm));
  assert.equal(toHex(await x25519PublicKeyOf(sk)), setup.pkRm);
});

test('rfc9180 A.1.1: SetupBaseS/SetupBaseR, every encryption by sequence number, exports', async () => {
  const ephemeral = await deriveX25519KeyPair(fromHex(setup.ikmE));
  const recipient = await deriveX25519KeyPair(fromHex(setup.ikmR));
  const { enc, context: sender } = await setupBaseS(recipient.publicKey, info, { aead: HpkeAead.AES_128_GCM, ephemeral });
  assert.equal(toHex(enc), setup.enc);
  const receiver = await setupBaseR(enc, recipient, info, { aead: HpkeAead.AES_128_GCM });
  let seq = 0;
  for (const e of v.encryptions) {
    // Advance both contexts to the vector's sequence number with throwaway messages.
    for (; seq < e.sequence_number; seq++) {
      await receiver.open(new Uint8Array(0), await sender.seal(new Uint8Array(0), new Uint8Array(0)));
    }
    const ct = await sender.seal(fromHex(e.aad), fromHex(e.pt));
    assert.equal(toHex(ct), e.ct, `ct at sequence ${e.sequence_number}`);
    assert.equal(toHex(await receiver.open(fromHex(e.aad), ct)), e.pt);
    seq++;
  }
  for (const x of v.exports) {
    assert.equal(toHex(await sender.export(fromHex(x.exporter_context), x.L)), x.exported_value);
    assert.equal(toHex(await receiver.export(fromHex(x.exporter_context), x.L)), x.exported_value);
  }
});

test('rfc9180 A.1.1: single-shot seal and open match sequence 0', async () => {
  const ephemeral = await deriveX25519KeyPair(fromHex(setup.ikmE));
  const recipient = await deriveX25519KeyPair(fromHex(setup.ikmR));
  const e0 = v.encryptions.find((e) => e.sequence_number === 0);
  const { enc, ct } = await hpkeSeal(recipient.publicKey, info, fromHex(e0.aad), fromHex(e0.pt), { aead: HpkeAead.AES_128_GCM, ephemeral });
  assert.equal(toHex(enc), setup.enc);
  assert.equal(toHex(ct), e0.ct);
  const pt = await hpkeOpen(fromHex(setup.enc), recipient, info, fromHex(e0.aad), fromHex(e0.ct), { aead: HpkeAead.AES_128_GCM });
  assert.equal(toHex(pt), e0.pt);
  await rejectsWithCode(
    hpkeOpen(fromHex(setup.enc), recipient, info, fromHex(e0.aad), fromHex(e0.ct), { aead: HpkeAead.AES_256_GCM }),
    'auth_failed',
    'same secret under the other AEAD',
  );
});

test('rfc9180 path with AES-256-GCM (the envelope suite): round trip and refusals', async () => {
  const r = await generateX25519KeyPair();
  const other = await generateX25519KeyPair();
  const aad = Uint8Array.of(1, 2, 3);
  const { enc, ct } = await hpkeSeal(r.publicKey, info, aad, Uint8Array.of(9, 9, 9));
  assert.deepEqual(await hpkeOpen(enc, r, info, aad, ct), Uint8Array.of(9, 9, 9));
  await rejectsWithCode(hpkeOpen(enc, other, info, aad, ct), 'auth_failed', 'wrong recipient key');
  await rejectsWithCode(hpkeOpen(enc, r, Uint8Array.of(0), aad, ct), 'auth_failed', 'other info');
  await rejectsWithCode(hpkeOpen(enc, r, info, Uint8Array.of(0), ct), 'auth_failed', 'other aad');
  await rejectsWithCode(hpkeOpen(new Uint8Array(32), r, info, aad, ct), 'bad_key', 'low-order enc');
  await rejectsWithCode(hpkeOpen(enc.subarray(1), r, info, aad, ct), 'bad_key', 'short enc');
  await rejectsWithCode(hpkeOpen(enc, r, info, aad, ct.subarray(0, 15)), 'truncated_ciphertext');
  await rejectsWithCode(hpkeSeal(r.publicKey, info, aad, ct, { aead: 3 }), 'unsupported_suite', 'ChaCha20 not offered');
});
