// RFC 9605 Appendix C test vectors (header encodings, AES-CTR-HMAC AEAD, full SFrame encryption
// for every suite) through the module's public API.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { concat, fromHex, toHex, utf8, u16, u64 } from '../bytes.mjs';
import { hkdfExpand, hkdfExtract } from '../hkdf.mjs';
import { decodeKid, MAX_GENERATION } from '../kid.mjs';
import { ReceiverKeyStore } from '../receiver.mjs';
import { aeadOpen, aeadSeal, importAeadKey } from '../sframe-aead.mjs';
import { decodeHeader, encodeHeader } from '../sframe-header.mjs';
import { deriveKeyMaterial, SframeKey } from '../sframe.mjs';
import { suiteParams } from '../suites.mjs';
import { readRepoJson, rejectsWithCode } from './helpers.mjs';

const vectors = readRepoJson('e2ee-frames/tests/data/sframe-rfc9605.json');

describe('rfc9605 header vectors', () => {
  test(`rfc9605 header: all ${vectors.header.length} encodings round trip`, async () => {
    assert.ok(vectors.header.length > 200);
    for (const v of vectors.header) {
      const encoded = fromHex(v.encoded);
      assert.equal(toHex(encodeHeader(BigInt(v.kid), BigInt(v.ctr))), v.encoded, `encode kid=${v.kid} ctr=${v.ctr}`);
      const withPayload = concat(encoded, Uint8Array.of(0xaa, 0xbb));
      const decoded = decodeHeader(withPayload);
      assert.equal(decoded.kid, BigInt(v.kid));
      assert.equal(decoded.ctr, BigInt(v.ctr));
      assert.equal(decoded.length, encoded.length);
      for (let cut = 0; cut < encoded.length; cut++) {
        await rejectsWithCode(() => decodeHeader(encoded.subarray(0, cut)), 'truncated_header', `${v.encoded} cut to ${cut}`);
      }
    }
  });

  test('rfc9605 header: vectors include 64-bit KID and CTR extremes', () => {
    const max = (1n << 64n) - 1n;
    assert.ok(vectors.header.some((v) => BigInt(v.kid) === max && BigInt(v.ctr) === max));
    // Config byte X=1 KLEN=8, Y=1 CLEN=8 is 0xff, then eight 0xff bytes each.
    assert.equal(toHex(encodeHeader(max, max)), 'ff'.repeat(17));
  });
});

describe('rfc9605 aes_ctr_hmac vectors', () => {
  for (const v of vectors.aes_ctr_hmac) {
    test(`rfc9605 aes_ctr_hmac suite ${v.cipher_suite}: seal and open`, async () => {
      const suite = suiteParams(v.cipher_suite);
      assert.equal(toHex(fromHex(v.key).subarray(0, suite.nka)), v.enc_key);
      assert.equal(toHex(fromHex(v.key).subarray(suite.nka)), v.auth_key);
      const key = await importAeadKey(v.cipher_suite, fromHex(v.key));
      const ct = await aeadSeal(key, fromHex(v.nonce), fromHex(v.aad), fromHex(v.pt));
      assert.equal(toHex(ct), v.ct);
      assert.equal(toHex(await aeadOpen(key, fromHex(v.nonce), fromHex(v.aad), ct)), v.pt);
      const tampered = Uint8Array.from(ct);
      tampered[tampered.length - 1] ^= 1;
      await rejectsWithCode(aeadOpen(key, fromHex(v.nonce), fromHex(v.aad), tampered), 'auth_failed');
    });
  }
});

describe('rfc9605 sframe vectors', () => {
  for (const v of vectors.sframe) {
    test(`rfc9605 sframe suite ${v.cipher_suite}: derivation, nonce, aad, encrypt, decrypt`, async () => {
      const suite = suiteParams(v.cipher_suite);
      const baseKey = fromHex(v.base_key);
      const kid = BigInt(v.kid);
      const ctr = BigInt(v.ctr);
      // The labels and the HMAC-based HKDF halves against the vector's intermediates.
      assert.equal(toHex(concat(utf8('SFrame 1.0 Secret key '), u64(kid), u16(suite.id))), v.sframe_key_label);
      assert.equal(toHex(concat(utf8('SFrame 1.0 Secret salt '), u64(kid), u16(suite.id))), v.sframe_salt_label);
      const secret = await hkdfExtract(suite.hash, new Uint8Array(0), baseKey);
      assert.equal(toHex(secret), v.sframe_secret);
      assert.equal(toHex(await hkdfExpand(suite.hash, secret, fromHex(v.sframe_key_label), suite.nk)), v.sframe_key);
      // The module's own derivation (WebCrypto HKDF in one call).
      const material = await deriveKeyMaterial(v.cipher_suite, baseKey, kid);
      assert.equal(toHex(material.key), v.sframe_key);
      assert.equal(toHex(material.salt), v.sframe_salt);
      const key = await SframeKey.derive(v.cipher_suite, baseKey, kid);
      assert.equal(toHex(key.nonce(ctr)), v.nonce);
      assert.equal(toHex(concat(encodeHeader(kid, ctr), fromHex(v.metadata))), v.aad);
      const ct = await key.encrypt(ctr, fromHex(v.metadata), fromHex(v.pt));
      assert.equal(toHex(ct), v.ct);
      const opened = await key.decrypt(fromHex(v.ct), fromHex(v.metadata));
      assert.equal(toHex(opened.plaintext), v.pt);
      assert.equal(opened.kid, kid);
      assert.equal(opened.ctr, ctr);
      await rejectsWithCode(key.decrypt(fromHex(v.ct), new Uint8Array(0)), 'auth_failed', 'metadata is authenticated');
      // The same frame through the receiver key store (the vector KIDs fit the KID layout).
      const fields = decodeKid(kid);
      assert.ok(fields.generation <= MAX_GENERATION);
      const store = new ReceiverKeyStore();
      assert.ok(store.addKey({ ...fields, suite: v.cipher_suite, baseKey }, 0));
      const received = await store.decrypt(fromHex(v.ct), fromHex(v.metadata), 0);
      assert.equal(toHex(received.plaintext), v.pt);
      await rejectsWithCode(store.decrypt(fromHex(v.ct), fromHex(v.metadata), 1), 'replay');
    });
  }

  test('rfc9605 sframe: vectors cover all five suites', () => {
    assert.deepEqual(vectors.sframe.map((v) => v.cipher_suite).sort(), [1, 2, 3, 4, 5]);
  });
});
